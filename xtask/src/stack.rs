//! The Dfns emulator and the local stack for `cargo xtask dev`, both in this process, plus a demo.
//!
//! Order matters: the emulator first (its bootstrap supplies the platform's Dfns credentials),
//! then the stack's port (so the emulator's webhook can point at its receiver before the secret,
//! which holds the webhook's signing secret, exists), then the org-wide `Policies:Modify` policy
//! (so every destination change waits for an officer), the three secrets in Secrets Manager,
//! the stack itself, and the demo clients.
//!
//! [`Purpose::Check`] starts the same platform for a check that needs one of its own
//! (`cargo xtask schemathesis`): any free port, nothing written under `.tools/`, no demo.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use dfns_client::webhooks::CreateWebhook;
use dfns_client::{
    ApprovalId, ClientConfig, DecisionValue, DfnsClient, KeySigner, PolicyBody, SecretString,
    UserId, WebhookEventKind,
};
use local_stack::{Config, IssuerKey, Listen, RunningStack};
use serde_json::{Value, json};

use crate::dev::{PlatformData, READ_SECRET_ID, SIGNING_SECRET_ID, TABLE_NAME, WEBHOOK_SECRET_ID};
use crate::token;
use platform_config::secret_json;

/// Where the stack listens by default (stable, so URLs and tokens survive a restart).
pub const DEFAULT_STACK_ADDR: &str = "127.0.0.1:4010";
/// How often the scheduled functions run.
const TICK: Duration = Duration::from_secs(10);
/// A valid EIP-55 address (mixed case) for the demo's approved destination.
const DEMO_DESTINATION: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
/// The demo's ETH price in USD (the emulator's quote).
const DEMO_ETH_USD: &str = "3000.00";
const DEMO_BTC_USD: &str = "90000.00";
const DEMO_SOL_USD: &str = "150.00";

/// Alice's demo deposit on `network`, in its smallest unit: 1.5 ETH, 0.05 BTC, 20 SOL.
fn demo_deposit(network: &str) -> Option<&'static str> {
    match domain::Network::parse(network).ok()?.family() {
        domain::NetworkFamily::Evm => Some("1500000000000000000"),
        domain::NetworkFamily::Bitcoin => Some("5000000"),
        domain::NetworkFamily::Solana => Some("20000000000"),
    }
}

/// The running emulator and stack, kept alive by `cargo xtask dev`.
pub struct LocalStack {
    pub emulator: dfns_emulator::RunningEmulator,
    pub stack: RunningStack,
    pub demo: Demo,
    /// The DynamoDB table the platform uses (a check's is its own).
    pub table: String,
}

/// What [`start`] sets up around the platform.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `cargo xtask dev`: [`DEFAULT_STACK_ADDR`] when free, the emulator's bootstrap, the issuer key
    /// and the stack's description in `.tools/local-stack/` (for `cargo xtask token`), the demo.
    Dev,
    /// A check against a platform of its own: any free port, an issuer key in memory, no files and
    /// no demo, so it shares nothing with a `cargo xtask dev` running beside it.
    Check,
}

/// What the demo created (nothing for [`Purpose::Check`]).
pub struct Demo {
    pub clients: Vec<(String, Value)>,
    /// When alice's destination ends its cooling-off (`usableFrom`), if it has one: it is
    /// approved in the background after that, not before the stack is shown.
    pub cooling_off_until: Option<String>,
}

fn identity_client(base_url: &str, identity: &dfns_emulator::Identity) -> Result<DfnsClient> {
    let signer = KeySigner::from_pkcs8_pem(
        identity.cred_id.clone(),
        &SecretString::from(identity.private_key_pem.clone()),
    )
    .context("loading an emulator key")?;
    Ok(DfnsClient::new(
        ClientConfig::new(
            SecretString::from(identity.token.clone()),
            Some(Arc::new(signer)),
        )
        .with_base_url(base_url),
    )?)
}

async fn bind_stack(purpose: Purpose) -> Result<tokio::net::TcpListener> {
    if purpose == Purpose::Check {
        return Ok(tokio::net::TcpListener::bind("127.0.0.1:0").await?);
    }
    let preferred: SocketAddr = DEFAULT_STACK_ADDR.parse().expect("a socket address");
    match tokio::net::TcpListener::bind(preferred).await {
        Ok(listener) => Ok(listener),
        Err(error) => {
            eprintln!("xtask: {DEFAULT_STACK_ADDR} is taken ({error}); using any free port");
            Ok(tokio::net::TcpListener::bind("127.0.0.1:0").await?)
        }
    }
}

/// Starts everything and, for [`Purpose::Dev`], seeds the demo. Runs on a multi-threaded runtime
/// that outlives it.
pub async fn start(repo_root: &Path, purpose: Purpose) -> Result<LocalStack> {
    // The functions' logs on stderr: warnings and errors unless RUST_LOG asks for more (`info`
    // shows one line per request).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .compact()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .try_init();
    let state_dir = token::state_dir(repo_root);
    if purpose == Purpose::Dev {
        std::fs::create_dir_all(&state_dir).context("creating .tools/local-stack")?;
    }

    let emulator = dfns_emulator::spawn(dfns_emulator::Options {
        webhook_retry_delays: vec![
            Duration::from_secs(1),
            Duration::from_secs(10),
            Duration::from_secs(60),
        ],
        ..dfns_emulator::Options::default()
    })
    .await
    .context("starting the Dfns emulator")?;
    let bootstrap = emulator.bootstrap().clone();
    if purpose == Purpose::Dev {
        std::fs::write(
            state_dir.join("emulator-bootstrap.json"),
            serde_json::to_vec_pretty(&bootstrap)?,
        )
        .context("writing the emulator bootstrap")?;
    }

    let listener = bind_stack(purpose).await?;
    let stack_url = format!("http://{}", listener.local_addr()?);
    let service = identity_client(&emulator.base_url(), &bootstrap.service_account)?;
    let webhook = service
        .create_webhook(&CreateWebhook {
            url: format!("{stack_url}/v1/webhooks/dfns"),
            events: vec![WebhookEventKind::All],
            status: None,
            description: Some("local stack".into()),
        })
        .await
        .context("registering the webhook")?;

    let officers: Vec<String> = bootstrap
        .officers
        .iter()
        .map(|o| o.user_id.clone())
        .collect();
    identity_client(&emulator.base_url(), &bootstrap.admin)?
        .create_policy(&PolicyBody::compliance_review(
            "compliance approves every policy change",
            officers.iter().map(|id| UserId::new(id.clone())),
            1,
            // Rejected after the deployed default, as bootstrap creates it.
            Some(platform::settings::DEFAULT_AUTO_REJECT_MINUTES),
        ))
        .await
        .context("creating the Policies:Modify policy")?;

    let webhook_secret = secrecy::ExposeSecret::expose_secret(&webhook.secret).to_owned();
    let sa = &bootstrap.service_account;
    // A check's platform has a table of its own: schemathesis' and the dashboard's checks run
    // one after the other on the same stand-ins, and one's orders must not show in the other's
    // lists (a fuzzed order left Scheduled once failed the desk's "No order matches.").
    let table = match purpose {
        Purpose::Dev => TABLE_NAME.to_owned(),
        Purpose::Check => format!("managed-accounts-check-{}", ulid::Ulid::new()),
    };
    PlatformData::create(
        &table,
        &[
            (
                SIGNING_SECRET_ID,
                secret_json::signing(&sa.token, &sa.cred_id, &sa.private_key_pem),
            ),
            (
                READ_SECRET_ID,
                secret_json::read_only(&bootstrap.read_only_service_account.token),
            ),
            (
                WEBHOOK_SECRET_ID,
                secret_json::webhook(&webhook_secret, None),
            ),
        ],
    )
    .await?;

    // The developer's environment may set any platform setting; these come from the stack.
    let emulator_url = emulator.base_url();
    let approvers = officers.join(",");
    let settings = platform::PlatformSettings::from_lookup(|name| match name {
        "TABLE_NAME" => Some(table.clone()),
        "DFNS_SIGNING_SECRET_ID" => Some(SIGNING_SECRET_ID.to_owned()),
        "DFNS_READ_SECRET_ID" => Some(READ_SECRET_ID.to_owned()),
        "DFNS_WEBHOOK_SECRET_ID" => Some(WEBHOOK_SECRET_ID.to_owned()),
        "DFNS_BASE_URL" => Some(emulator_url.clone()),
        "COMPLIANCE_APPROVERS" => Some(approvers.clone()),
        other => std::env::var(other).ok(),
    })
    .context("platform settings")?;
    // The platform's own AWS configuration: bounded in-flight requests, timeouts.
    let sdk = platform_config::aws::sdk_config().await;
    let secrets = platform::Secrets::from_ids(
        &settings.base.secret_ids,
        settings.base.secret_refresh,
        platform::SecretsHeld::ALL,
    )?;
    let webhook_queue = local_stack::queue::create(
        &aws_sdk_sqs::Client::new(sdk),
        &format!("managed-accounts-local-webhooks-{}", ulid::Ulid::new()),
    )
    .await
    .context("creating the webhook queue")?;
    let stack = local_stack::spawn(Config {
        listen: Listen::Bound(listener),
        settings,
        dynamodb: aws_sdk_dynamodb::Client::new(sdk),
        eventbridge: aws_sdk_eventbridge::Client::new(sdk),
        secrets,
        dfns_retry: None,
        issuer_key: match purpose {
            Purpose::Dev => IssuerKey::File(token::issuer_key_file(repo_root)),
            Purpose::Check => IssuerKey::Generate(auth::dev_issuer::SigningAlgorithm::Es256),
        },
        audience: local_stack::DEFAULT_AUDIENCE.into(),
        role_claim: local_stack::DEFAULT_ROLE_CLAIM.into(),
        operator_role: auth::DEFAULT_OPERATOR_ROLE.into(),
        tick_every: Some(TICK),
        webhook_queue: Some(platform::webhook_queue::WebhookQueue::new(
            aws_sdk_sqs::Client::new(sdk),
            webhook_queue.url.clone(),
        )),
    })
    .await
    .context("starting the local stack")?;
    if purpose == Purpose::Check {
        let demo = Demo {
            clients: Vec::new(),
            cooling_off_until: None,
        };
        return Ok(LocalStack {
            emulator,
            stack,
            demo,
            table,
        });
    }
    std::fs::write(
        token::info_file(repo_root),
        serde_json::to_vec_pretty(&stack.info)?,
    )
    .context("writing .tools/local-stack/stack.json")?;

    let demo = seed(&stack, &emulator).await.context("seeding the demo")?;
    Ok(LocalStack {
        emulator,
        stack,
        demo,
        table,
    })
}

/// Two clients: alice with a destination (approved by an officer with the officer's own key: at
/// once without a cooling-off, else in the background once its cooling-off has ended and the
/// reconciler submitted it) and a deposit; bob with an empty account.
async fn seed(stack: &RunningStack, emulator: &dfns_emulator::RunningEmulator) -> Result<Demo> {
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, subject: &str, body: Option<Value>| {
        let mut request = http
            .request(method, format!("{}{path}", stack.base_url))
            .bearer_auth(stack.token(subject));
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await?;
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            anyhow::Ok((status, body))
        }
    };
    let alice = open_account(&http, stack, "alice").await?;
    let bob = open_account(&http, stack, "bob").await?;

    let (status, request) = call(
        reqwest::Method::POST,
        "/v1/destination-requests",
        "alice",
        Some(json!({"network": "EthereumSepolia", "address": DEMO_DESTINATION, "label": "Demo exchange", "action": "add"})),
    )
    .await?;
    if status != reqwest::StatusCode::CREATED {
        bail!("alice's destination request: {status} {request}");
    }
    let request_id = request["id"].as_str().unwrap_or_default().to_owned();
    let officer = identity_client(&emulator.base_url(), &emulator.bootstrap().officers[0])?;
    let approval = approve_when_pending(
        http.clone(),
        stack.base_url.clone(),
        stack.token("alice"),
        request_id,
        officer,
    );
    let cooling_off_until = request["usableFrom"].as_str().map(str::to_owned);
    if cooling_off_until.is_none() {
        approval.await?;
    } else {
        // The runtime outlives `cargo xtask dev`'s wait for Ctrl-C.
        tokio::spawn(async move {
            if let Err(error) = approval.await {
                eprintln!("xtask dev: the demo destination: {error:#}");
            }
        });
    }

    // USD prices, so the account shows a net worth and the USD velocity limits have a value
    // to count (prices are the emulator's control API; real Dfns quotes them itself).
    let prices = http
        .put(format!("{}/emulator/prices", emulator.base_url()))
        .json(&json!({"prices": {"ETH": DEMO_ETH_USD, "BTC": DEMO_BTC_USD, "SOL": DEMO_SOL_USD, "USDC": "1.00"}}))
        .send()
        .await?;
    if !prices.status().is_success() {
        bail!("demo prices: {}", prices.status());
    }
    // A deposit to each of alice's wallets (one per network the stack offers).
    let wallets = alice["wallets"]
        .as_array()
        .filter(|w| !w.is_empty())
        .context("alice has no wallet")?;
    for wallet in wallets {
        let network = wallet["network"].as_str().unwrap_or_default();
        let Some(amount) = demo_deposit(network) else {
            continue;
        };
        let deposit = http
            .post(format!("{}/emulator/deposits", emulator.base_url()))
            .json(&json!({"walletId": wallet["walletId"], "kind": "Native", "amount": amount}))
            .send()
            .await?;
        if !deposit.status().is_success() {
            bail!("demo deposit on {network}: {}", deposit.status());
        }
        // On Solana also an SPL token: 250 devnet USDC (the mint the built-in venues list).
        if network.starts_with("Solana") {
            let usdc = http
                .post(format!("{}/emulator/deposits", emulator.base_url()))
                .json(&json!({"walletId": wallet["walletId"], "kind": "Spl", "mint": platform::trading::registry::DEVNET_USDC_MINT, "amount": "250000000", "symbol": "USDC", "decimals": 6}))
                .send()
                .await?;
            if !usdc.status().is_success() {
                bail!("demo USDC deposit on {network}: {}", usdc.status());
            }
        }
    }
    Ok(Demo {
        clients: vec![("alice".into(), alice), ("bob".into(), bob)],
        cooling_off_until,
    })
}

/// Watches `subject`'s request `request_id` and, once it is pending approval, approves it as
/// officer 0 (with the officer's own key); returns when it is `Approved`. Gives up after its
/// cooling-off and a few scheduler ticks (five minutes).
async fn approve_when_pending(
    http: reqwest::Client,
    base_url: String,
    token: String,
    request_id: String,
    officer: DfnsClient,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut decided = false;
    loop {
        let list: Value = http
            .get(format!("{base_url}/v1/destination-requests"))
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await
            .unwrap_or(Value::Null);
        let current = list["items"]
            .as_array()
            .and_then(|items| {
                items
                    .iter()
                    .find(|r| r["id"] == request_id.as_str())
                    .cloned()
            })
            .unwrap_or(Value::Null);
        match current["state"].as_str() {
            Some("Approved") => return Ok(()),
            Some("PendingApproval") if !decided => {
                let approval = current["approvalId"].as_str().context("no approval id")?;
                officer
                    .decide_approval(
                        &ApprovalId::new(approval),
                        DecisionValue::Approved,
                        Some("demo: approved by compliance"),
                    )
                    .await
                    .context("the officer's decision")?;
                decided = true;
            }
            Some("Rejected" | "Failed" | "Cancelled" | "Vetoed") => {
                bail!("demo destination ended {current}")
            }
            _ => {}
        }
        if Instant::now() > deadline {
            bail!("the demo destination was not approved in time: {current}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Opens `subject`'s account: `POST /v1/accounts` until 200 (202 while its wallets are being
/// created). Returns the account.
pub async fn open_account(
    http: &reqwest::Client,
    stack: &RunningStack,
    subject: &str,
) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = http
            .post(format!("{}/v1/accounts", stack.base_url))
            .bearer_auth(stack.token(subject))
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status == reqwest::StatusCode::OK {
            return Ok(body);
        }
        if status != reqwest::StatusCode::ACCEPTED || Instant::now() > deadline {
            bail!("opening {subject}'s account: {status} {body}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl LocalStack {
    /// What to print once everything runs.
    pub fn summary(&self) -> String {
        let four_eyes = std::env::var("FOUR_EYES_USD").unwrap_or_else(|_| "off".into());
        let url = &self.stack.base_url;
        let alice = self.stack.token("alice");
        let bob = self.stack.token("bob");
        let operator = self.stack.operator_token("desk");
        let mut text = format!(
            "Local stack: {url}  (OpenAPI: {url}/openapi.json, issuer: {url}/.well-known/openid-configuration)\n\
             Dfns emulator: {}  (bootstrap with the officers' keys: .tools/local-stack/emulator-bootstrap.json)\n\n\
             Demo clients:\n",
            self.emulator.base_url()
        );
        for (name, account) in &self.demo.clients {
            for wallet in account["wallets"].as_array().into_iter().flatten() {
                text.push_str(&format!(
                    "  {name}: {} wallet {} {}\n",
                    wallet["network"].as_str().unwrap_or("?"),
                    wallet["walletId"].as_str().unwrap_or("?"),
                    wallet["address"].as_str().unwrap_or("?"),
                ));
            }
        }
        match &self.demo.cooling_off_until {
            None => text.push_str(&format!(
                "  alice has an approved destination ({DEMO_DESTINATION}, \"Demo exchange\")\n"
            )),
            Some(until) => text.push_str(&format!(
                "  alice's destination ({DEMO_DESTINATION}, \"Demo exchange\") cools off until {until} (DESTINATION_COOLING_OFF);\n\
                 \x20   then the reconciler submits it to compliance and a demo officer approves it (watch GET /v1/destination-requests)\n"
            )),
        }
        text.push_str(&format!(
            "  alice has deposits of 1.5 ETH, 0.05 BTC, 20 SOL and 250 USDC (SPL) on the networks she has wallets on\n\
             \x20   (ETH at {DEMO_ETH_USD}, BTC at {DEMO_BTC_USD}, SOL at {DEMO_SOL_USD} USD)\n\
             \x20 A desk order worth more than FOUR_EYES_USD (here {four_eyes}) waits for a second operator:\n\
             \x20   POST /v1/operator/orders/ID/confirm with another operator's token (`cargo xtask token --sub desk2 --role operator`)\n\n\
             Tokens (1 hour; more with `cargo xtask token --sub NAME [--role operator]`):\n\
             \x20 ALICE={alice}\n  BOB={bob}\n  OPERATOR={operator}\n\n\
             Try:\n\
             \x20 curl -s {url}/v1/account -H \"Authorization: Bearer $ALICE\"\n\
             \x20 curl -s '{url}/v1/activity?limit=10' -H \"Authorization: Bearer $ALICE\"\n\
             \x20 curl -s '{url}/v1/activity?format=csv' -H \"Authorization: Bearer $ALICE\"\n\
             \x20 curl -s {url}/v1/audit -H \"Authorization: Bearer $ALICE\"\n\
             \x20 curl -s -X POST {url}/v1/destination-requests -H \"Authorization: Bearer $BOB\" -H 'content-type: application/json' \\\n\
             \x20      -d '{{\"network\":\"EthereumSepolia\",\"address\":\"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359\",\"label\":\"Desk\",\"action\":\"add\"}}'\n\
             \x20 curl -s {url}/v1/destination-requests -H \"Authorization: Bearer $BOB\"\n\
             \x20 curl -s -X POST {url}/v1/destination-requests/ID/veto -H \"Authorization: Bearer $BOB\"   # while it cools off\n\
             \x20 curl -s {url}/openapi.json\n"
        ));
        text
    }
}

impl crate::dev::DevService for LocalStack {
    fn name(&self) -> &'static str {
        "Dfns emulator and local stack (in this process)"
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PLATFORM_API_URL", self.stack.base_url.clone()),
            ("DFNS_BASE_URL", self.emulator.base_url()),
        ]
    }
    fn check_alive(&mut self) -> Result<()> {
        Ok(())
    }
}
