//! # e2e
//!
//! The platform end to end, through HTTP: the local stack ([`local_stack::spawn`]) serving every
//! function, the in-process Dfns emulator delivering its webhooks to the stack's receiver, and the
//! AWS stand-ins (`cargo xtask test`, or `cargo xtask exec -- cargo test -p e2e`). Each [`Env`]
//! has its own table, event bus, emulator and stack, so tests run in parallel.
//!
//! [`counting`] is a counting HTTP proxy, used by the benchmark to count Dfns and DynamoDB calls
//! per route. [`dynamodb_local`] runs a DynamoDB Local of a test's own, on disk, which the test can
//! restart ([`EnvOptions::dynamodb_endpoint`] points an environment at it).

pub mod counting;
pub mod dynamodb_local;

use std::future::Future;
use std::time::{Duration, Instant};

use dfns_client::webhooks::CreateWebhook;
use dfns_client::{
    ApprovalId, DecisionValue, DfnsClient, PolicyBody, RetryPolicy, UserId, WebhookEventKind,
};
use local_stack::{Config, IssuerKey, Listen, RunningStack};
use platform::Secrets;
use platform::settings::{PlatformSettings, PolicyActionSetting, Tier};
use platform::testing::{FreshAws, spawn_emulator};
pub use platform::testing::{identity_client, sign_webhook};
use platform_config::{ReadCredential, SigningCredential, WebhookSecrets};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub use local_stack;

/// How to set one environment up.
#[derive(Debug, Clone)]
pub struct EnvOptions {
    /// What the client's whitelist does to an unlisted recipient.
    pub whitelist_action: PolicyActionSetting,
    /// The tier every client gets (default: no limits).
    pub tier: Tier,
    /// `PLATFORM_NETWORKS`, as deployed (default: EthereumSepolia alone).
    pub networks: Option<String>,
    /// An org-wide `Policies:Modify` policy decided by the compliance officers, as deployed.
    pub policies_modify: bool,
    /// Run the scheduled functions this often (default: only when a test asks).
    pub tick_every: Option<Duration>,
    /// Route Dfns and DynamoDB calls through counting proxies (benchmark).
    pub count_calls: bool,
    /// Another DynamoDB than the stand-in's (`AWS_ENDPOINT_URL_DYNAMODB`): the table is created
    /// there and the stack uses it, with the deployed SDK timeouts (a [`dynamodb_local`] the test
    /// restarts). Not with `count_calls`.
    pub dynamodb_endpoint: Option<String>,
    /// The emulator's webhook retry delays (default: 200 and 500 ms, three attempts).
    pub webhook_retry_delays: Option<Vec<Duration>>,
    /// The receiver applies each delivery in its request (the code the consumer runs, appending
    /// audit lines one at a time) instead of queueing it (default: queued, as deployed). For a
    /// benchmark that measures the read model, not the queue: thousands of deliveries go
    /// faster without it on this machine.
    pub apply_webhooks_in_request: bool,
    /// `RECONCILE_SUBMITTED_AFTER_SECONDS` (default: zero, so a test's reconciler run re-drives a
    /// `Submitted` request at once; deployed: 60 s).
    pub reconcile_submitted_after: Duration,
    /// `DESTINATION_COOLING_OFF`: how long a client's new destination waits, vetoable, before it
    /// goes to Dfns (default: no wait; the product's default is 24 hours).
    pub destination_cooling_off: Duration,
    /// `FOUR_EYES_USD` (default: off): a desk order worth more, or of unknown value, waits for a
    /// second operator's confirmation.
    pub four_eyes_usd: Option<u64>,
}

impl Default for EnvOptions {
    fn default() -> Self {
        Self {
            whitelist_action: PolicyActionSetting::Block,
            tier: Tier::default(),
            networks: None,
            policies_modify: true,
            tick_every: None,
            count_calls: false,
            dynamodb_endpoint: None,
            webhook_retry_delays: None,
            apply_webhooks_in_request: false,
            reconcile_submitted_after: Duration::ZERO,
            destination_cooling_off: Duration::ZERO,
            four_eyes_usd: None,
        }
    }
}

/// One running platform.
pub struct Env {
    pub stack: RunningStack,
    pub emulator: dfns_emulator::RunningEmulator,
    pub http: reqwest::Client,
    pub webhook_secret: String,
    pub table: String,
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Counts of the stack's Dfns calls (with [`EnvOptions::count_calls`]).
    pub dfns_calls: Option<counting::Counter>,
    /// Counts of the stack's DynamoDB calls (with [`EnvOptions::count_calls`]).
    pub dynamodb_calls: Option<counting::Counter>,
    /// The webhook queue and its dead-letter queue (LocalStack's SQS), and a client for them.
    pub webhook_queue: local_stack::queue::LocalQueue,
    pub sqs: aws_sdk_sqs::Client,
    _proxies: Vec<counting::Proxy>,
}

/// The org-wide `Policies:Modify` policy: every policy change waits for one officer, and is
/// rejected after the deployed default time (as bootstrap creates it).
pub fn policies_modify_policy(officers: &[String]) -> PolicyBody {
    PolicyBody::compliance_review(
        "compliance approves every policy change",
        officers.iter().map(|id| UserId::new(id.clone())),
        1,
        Some(platform::settings::DEFAULT_AUTO_REJECT_MINUTES),
    )
}

impl Env {
    pub async fn start(options: EnvOptions) -> Env {
        let FreshAws {
            sdk,
            dynamodb: direct_dynamodb,
            eventbridge,
            table,
            bus,
        } = match &options.dynamodb_endpoint {
            None => FreshAws::create("e2e").await,
            Some(endpoint) => fresh_aws_at(endpoint).await,
        };
        let emulator = match &options.webhook_retry_delays {
            None => spawn_emulator().await,
            Some(delays) => dfns_emulator::spawn(dfns_emulator::Options {
                webhook_retry_delays: delays.clone(),
                ..dfns_emulator::Options::default()
            })
            .await
            .expect("start the Dfns emulator"),
        };
        let bootstrap = emulator.bootstrap().clone();

        let mut proxies = Vec::new();
        let (dfns_url, dfns_calls, dynamodb, dynamodb_calls) = if let Some(endpoint) =
            &options.dynamodb_endpoint
        {
            assert!(
                !options.count_calls,
                "count_calls uses the stand-in's DynamoDB"
            );
            (
                emulator.base_url(),
                None,
                deployed_dynamodb(&sdk, endpoint),
                None,
            )
        } else if options.count_calls {
            let dfns = counting::Proxy::start(&emulator.base_url(), counting::Keying::DfnsRoute)
                .await
                .expect("Dfns proxy");
            let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect("checked above");
            let ddb = counting::Proxy::start(&endpoint, counting::Keying::AmzTarget)
                .await
                .expect("DynamoDB proxy");
            // Bounded as deployed: unbounded, a burst of webhook deliveries opened thousands of
            // connections through the proxy until the process ran out of file descriptors.
            let counted = deployed_dynamodb(&sdk, &ddb.url());
            let result = (
                dfns.url(),
                Some(dfns.counter()),
                counted,
                Some(ddb.counter()),
            );
            proxies.push(dfns);
            proxies.push(ddb);
            result
        } else {
            let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect("checked above");
            (
                emulator.base_url(),
                None,
                deployed_dynamodb(&sdk, &endpoint),
                None,
            )
        };

        // Bound first, so the webhook can point at it before the stack (which needs the secret
        // the registration returns) starts.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the stack");
        let stack_url = format!("http://{}", listener.local_addr().expect("bound"));
        let service = identity_client(&emulator.base_url(), &bootstrap.service_account);
        let created = service
            .create_webhook(&CreateWebhook {
                url: format!("{stack_url}/v1/webhooks/dfns"),
                events: vec![WebhookEventKind::All],
                status: None,
                description: Some("e2e".into()),
            })
            .await
            .expect("register the webhook");
        let webhook_secret = secrecy::ExposeSecret::expose_secret(&created.secret).to_owned();

        let officers: Vec<String> = bootstrap
            .officers
            .iter()
            .map(|o| o.user_id.clone())
            .collect();
        if options.policies_modify {
            identity_client(&emulator.base_url(), &bootstrap.admin)
                .create_policy(&policies_modify_policy(&officers))
                .await
                .expect("create the Policies:Modify policy");
        }

        let base = platform_config::Settings::from_lookup(|name| match name {
            "TABLE_NAME" => Some(table.clone()),
            "DFNS_BASE_URL" => Some(dfns_url.clone()),
            _ => None,
        })
        .expect("base settings");
        let networks = options.networks.clone();
        let mut settings = PlatformSettings::with_base(base, |name| {
            (name == "PLATFORM_NETWORKS")
                .then(|| networks.clone())
                .flatten()
        })
        .expect("settings");
        settings.whitelist_action = options.whitelist_action;
        settings.limits_action = options.whitelist_action;
        settings.compliance.approvers = officers;
        settings.tiers = std::collections::BTreeMap::from([("e2e".to_owned(), options.tier)]);
        settings.default_tier = "e2e".into();
        settings.event_bus_name = bus;
        // Tests drive the reconciler themselves: by default, re-drive at once when they do.
        settings.reconcile_submitted_after = options.reconcile_submitted_after;
        settings.destination_cooling_off = options.destination_cooling_off;
        settings.four_eyes_usd = options.four_eyes_usd;

        let secrets = Secrets::fixed(
            SigningCredential::new(
                &bootstrap.service_account.token,
                &bootstrap.service_account.cred_id,
                &bootstrap.service_account.private_key_pem,
            ),
            ReadCredential::new(&bootstrap.read_only_service_account.token),
            WebhookSecrets::new(&webhook_secret, None),
        );
        // Deliveries go through the webhook queue and its consumer, as deployed.
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let webhook_queue =
            local_stack::queue::create(&sqs, &format!("e2e-webhooks-{}", ulid::Ulid::new()))
                .await
                .expect("create the webhook queue");
        let stack = local_stack::spawn(Config {
            listen: Listen::Bound(listener),
            settings,
            dynamodb,
            eventbridge,
            secrets,
            dfns_retry: Some(RetryPolicy {
                deadline: Duration::from_secs(10),
                ..RetryPolicy::default()
            }),
            issuer_key: IssuerKey::Generate(auth::dev_issuer::SigningAlgorithm::Es256),
            audience: local_stack::DEFAULT_AUDIENCE.into(),
            role_claim: local_stack::DEFAULT_ROLE_CLAIM.into(),
            operator_role: auth::DEFAULT_OPERATOR_ROLE.into(),
            tick_every: options.tick_every,
            webhook_queue: (!options.apply_webhooks_in_request).then(|| {
                platform::webhook_queue::WebhookQueue::new(sqs.clone(), webhook_queue.url.clone())
            }),
        })
        .await
        .expect("start the local stack");
        Env {
            stack,
            emulator,
            http: reqwest::Client::new(),
            webhook_secret,
            table,
            dynamodb: direct_dynamodb,
            dfns_calls,
            dynamodb_calls,
            webhook_queue,
            sqs,
            _proxies: proxies,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.stack.base_url, path)
    }

    /// A client's token.
    pub fn token(&self, subject: &str) -> String {
        self.stack.token(subject)
    }

    /// An operator's (trading desk's) token.
    pub fn operator_token(&self, subject: &str) -> String {
        self.stack.operator_token(subject)
    }

    /// Calls the stack; the answer's status and JSON body (`Null` when not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        self.call_with_headers(method, path, token, body, &[]).await
    }

    /// [`Env::call`] with extra request headers (e.g. `Idempotency-Key`).
    pub async fn call_with_headers(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("the stack answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, subject: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(&self.token(subject)), None)
            .await
    }

    pub async fn post(&self, path: &str, subject: &str, body: &Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(&self.token(subject)), Some(body))
            .await
    }

    /// Opens `subject`'s account, calling again while another call is still creating it.
    pub async fn open_account(&self, subject: &str) -> Value {
        let token = self.token(subject);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = self
                .call(Method::POST, "/v1/accounts", Some(&token), None)
                .await;
            match status {
                StatusCode::OK => return body,
                StatusCode::ACCEPTED if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                other => panic!("opening {subject}'s account: {other} {body}"),
            }
        }
    }

    /// Asks for `address` to be added; the created request.
    pub async fn request_destination(
        &self,
        subject: &str,
        address: &str,
        label: &str,
    ) -> (StatusCode, Value) {
        self.post(
            "/v1/destination-requests",
            subject,
            &json!({"network": "EthereumSepolia", "address": address, "label": label, "action": "add"}),
        )
        .await
    }

    /// `subject`'s destination request `id` as the API shows it.
    pub async fn destination_request(&self, subject: &str, id: &str) -> Option<Value> {
        let (status, body) = self.get("/v1/destination-requests", subject).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|item| item["id"] == id)
            .cloned()
    }

    /// Waits until `subject`'s request `id` is in one of `states`; the request.
    pub async fn wait_for_state(&self, subject: &str, id: &str, states: &[&str]) -> Value {
        wait_until(Duration::from_secs(30), || async {
            self.destination_request(subject, id)
                .await
                .filter(|r| states.iter().any(|s| r["state"] == *s))
        })
        .await
        .unwrap_or_else(|| panic!("request {id} never reached {states:?}"))
    }

    /// The platform's own Dfns client (the service account), straight at the emulator.
    pub fn service(&self) -> DfnsClient {
        identity_client(
            &self.emulator.base_url(),
            &self.emulator.bootstrap().service_account,
        )
    }

    /// Compliance officer `index`'s Dfns client, signing with the officer's own key.
    pub fn officer(&self, index: usize) -> DfnsClient {
        identity_client(
            &self.emulator.base_url(),
            &self.emulator.bootstrap().officers[index],
        )
    }

    /// Officer 0 decides the approval of request `request` (which must be pending approval).
    pub async fn decide(&self, request: &Value, value: DecisionValue) {
        let approval = request["approvalId"]
            .as_str()
            .unwrap_or_else(|| panic!("no approval id on {request}"));
        self.officer(0)
            .decide_approval(&ApprovalId::new(approval), value, Some("e2e decision"))
            .await
            .expect("the officer decides");
    }

    /// An emulator control-API call.
    pub async fn control(&self, method: Method, path: &str, body: &Value) -> Value {
        let response = self
            .http
            .request(
                method,
                format!("{}/emulator/{path}", self.emulator.base_url()),
            )
            .json(body)
            .send()
            .await
            .expect("the emulator answers");
        assert!(
            response.status().is_success(),
            "control {path}: {}",
            response.status()
        );
        response.json().await.unwrap_or(Value::Null)
    }

    /// Posts a raw webhook delivery to the stack with `signature`.
    pub async fn deliver_webhook(&self, body: &[u8], signature: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url("/v1/webhooks/dfns"))
            .header("content-type", "application/json")
            .header("x-dfns-webhook-signature", signature)
            .body(body.to_vec())
            .send()
            .await
            .expect("the stack answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// The stack's DynamoDB client at `endpoint` as deployed: at most MAX_IN_FLIGHT requests at once,
/// with the connect, attempt and call deadlines.
fn deployed_dynamodb(sdk: &aws_config::SdkConfig, endpoint: &str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(sdk)
            .endpoint_url(endpoint)
            .http_client(platform_config::aws::bounded_https_client(
                platform_config::aws::MAX_IN_FLIGHT,
            ))
            .timeout_config(platform_config::aws::timeouts())
            .build(),
    )
}

/// [`FreshAws::create`], with the table in the DynamoDB at `endpoint` (the event bus stays in
/// the stand-in).
async fn fresh_aws_at(endpoint: &str) -> FreshAws {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_EVENTBRIDGE").is_ok(),
        "AWS_ENDPOINT_URL_EVENTBRIDGE is not set: run through `cargo xtask test`"
    );
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .endpoint_url(endpoint)
            .build(),
    );
    let eventbridge = aws_sdk_eventbridge::Client::new(&sdk);
    let table = format!("e2e-{}", ulid::Ulid::new());
    store::schema::create_table(&dynamodb, &table)
        .await
        .expect("create the test table");
    let bus = format!("e2e-{}", ulid::Ulid::new());
    eventbridge
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .expect("create the test event bus");
    FreshAws {
        sdk,
        dynamodb,
        eventbridge,
        table,
        bus,
    }
}

/// Polls `probe` every 100 ms until it yields something or `timeout` passes.
pub async fn wait_until<T, F, Fut>(timeout: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = probe().await {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A fresh client id: `<prefix>-<ulid in lower case>`.
pub fn client_id(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// A random EVM address, lower case (ULIDs carry 80 random bits: distinct enough for tests).
pub fn random_address() -> String {
    let bytes: [u8; 20] = std::array::from_fn(|_| (ulid::Ulid::new().random() & 0xff) as u8);
    format!("0x{}", hex::encode(bytes))
}

impl Env {
    /// Opens `subject`'s account and deposits 2 ETH into its wallet; the wallet id.
    pub async fn funded_client(&self, subject: &str) -> String {
        let account = self.open_account(subject).await;
        let wallet_id = account["wallets"][0]["walletId"]
            .as_str()
            .unwrap_or_else(|| panic!("no wallet: {account}"))
            .to_owned();
        self.control(
            Method::POST,
            "deposits",
            &json!({"walletId": wallet_id, "kind": "Native", "amount": "2000000000000000000"}),
        )
        .await;
        wallet_id
    }

    /// The transfers of `wallet_id` at Dfns carrying `external_id` (an order's or withdrawal's id),
    /// as JSON.
    pub async fn transfers_for(&self, wallet_id: &str, external_id: &str) -> Vec<Value> {
        use futures::TryStreamExt;
        let transfers: Vec<_> = self
            .service()
            .list_transfers(
                &dfns_client::WalletId::new(wallet_id),
                &dfns_client::transfers::TransfersQuery::default(),
            )
            .try_collect()
            .await
            .expect("list the wallet's transfers");
        transfers
            .into_iter()
            .filter(|t| t.external_id.as_ref().map(|e| e.as_str()) == Some(external_id))
            .map(|t| serde_json::to_value(t).expect("transfer JSON"))
            .collect()
    }

    /// `GET /emulator/stats` → `transfers`: distinct transfers ever created in this emulator.
    pub async fn transfers_in_emulator(&self) -> u64 {
        let stats: Value = self
            .http
            .get(format!("{}/emulator/stats", self.emulator.base_url()))
            .send()
            .await
            .expect("the emulator answers")
            .json()
            .await
            .expect("stats JSON");
        stats["transfers"]
            .as_u64()
            .unwrap_or_else(|| panic!("no transfers count: {stats}"))
    }
}

/// A Dfns delivery (to be signed) reporting a 1-wei native deposit to a wallet.
pub use platform::testing::deposit_delivery;
