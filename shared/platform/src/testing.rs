//! Test harness (feature `testing`): a complete [`App`] over a fresh DynamoDB table, the
//! in-process Dfns emulator (webhooks delivered to an in-process receiver that runs
//! [`crate::webhook::receive`]), and a development OIDC issuer whose JWKS is served over HTTP.
//!
//! Needs the local stand-ins' environment (`cargo xtask test`, or
//! `cargo xtask exec -- cargo test -p …`): `AWS_ENDPOINT_URL_DYNAMODB`,
//! `AWS_ENDPOINT_URL_EVENTBRIDGE`, region and dummy credentials. Each [`TestEnv`] builds its own
//! SDK clients on the calling test's runtime and its own uniquely named table, so tests run in
//! parallel.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use auth::dev_issuer::{DevIssuer, SigningAlgorithm, TokenSpec};
use dfns_client::webhooks::CreateWebhook;
use dfns_client::{
    ClientConfig, DfnsClient, KeySigner, RetryPolicy, SecretString, WebhookEventKind,
};
use lambda_http::http::StatusCode;
use platform_config::{ReadCredential, SecretKind, SigningCredential, WebhookSecrets};

use crate::settings::{PlatformSettings, PolicyActionSetting, Tier};
use crate::{App, AppParts, SecretSource, Secrets, SecretsHeld};

/// Audience of the test tokens.
pub const AUDIENCE: &str = "platform-api";
/// Claim holding roles in the test tokens.
pub const ROLES_CLAIM: &str = "roles";

/// How to set the platform up.
#[derive(Debug, Clone)]
pub struct TestOptions {
    pub whitelist_action: PolicyActionSetting,
    /// Tier every client gets (default: no limits, so transfers need no prices).
    pub tier: Tier,
    /// Require compliance approval for every policy change (an org-wide `Policies:Modify`
    /// policy approved by the emulator's officers), as the platform is deployed.
    pub policies_modify: bool,
    /// Deliver the emulator's webhooks to the platform's receiver.
    pub webhooks: bool,
    /// How long a request stays `Submitted` before the reconciler re-drives it.
    pub reconcile_submitted_after: Duration,
    /// Read the signing secret from Secrets Manager (the stand-in) through the production cache
    /// (one-hour refresh) instead of handing it over in memory; see [`TestEnv::write_secret`].
    pub secret_in_secrets_manager: bool,
    /// Edits the secrets' fields (all three secrets' fields in one JSON object) before the
    /// platform starts (e.g. a placeholder webhook secret, or a rotation's next one).
    pub edit_secret: Option<fn(&mut serde_json::Value)>,
    /// The secrets [`TestEnv::app`] holds (all of them unless a test plays one function).
    pub held: SecretsHeld,
    /// `DESTINATION_COOLING_OFF` and `EXCHANGE_COOLING_OFF` (default: none, so a request goes
    /// to Dfns at once; the product's default is 24 hours for a client's own destination).
    pub destination_cooling_off: Duration,
    pub exchange_cooling_off: Duration,
    /// `PLATFORM_NETWORKS` (default: `EthereumSepolia` alone).
    pub networks: Vec<domain::Network>,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            whitelist_action: PolicyActionSetting::Block,
            tier: Tier::default(),
            policies_modify: false,
            webhooks: true,
            reconcile_submitted_after: Duration::from_secs(60),
            secret_in_secrets_manager: false,
            edit_secret: None,
            held: SecretsHeld::ALL,
            destination_cooling_off: Duration::ZERO,
            exchange_cooling_off: Duration::ZERO,
            networks: vec![domain::Network::EthereumSepolia],
        }
    }
}

/// A running platform for one test.
pub struct TestEnv {
    pub app: App,
    pub emulator: dfns_emulator::RunningEmulator,
    pub issuer: Arc<DevIssuer>,
    /// The webhook secret the platform verifies with.
    pub webhook_secret: String,
    /// The secrets' fields as the platform was started with.
    secret_json: serde_json::Value,
    /// The signing secret's Secrets Manager id, with
    /// [`TestOptions::secret_in_secrets_manager`].
    secret_id: Option<String>,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        for server in &self.servers {
            server.abort();
        }
    }
}

/// Panics with how to run the tests when a stand-in's endpoint is not set.
pub fn require_env(name: &str) {
    if std::env::var_os(name).is_none() {
        panic!(
            "{name} is not set: these tests need the local AWS stand-ins; run through `cargo xtask test` (or `cargo xtask exec -- cargo test -p …`)"
        );
    }
}

/// A fresh, uniquely named table (the store's schema) and event bus on the stand-ins.
pub struct FreshAws {
    pub sdk: aws_config::SdkConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub table: String,
    pub bus: String,
}

impl FreshAws {
    /// Creates `<prefix>-<ulid>` as both the table and the bus.
    pub async fn create(prefix: &str) -> FreshAws {
        require_env("AWS_ENDPOINT_URL_DYNAMODB");
        require_env("AWS_ENDPOINT_URL_EVENTBRIDGE");
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let eventbridge = aws_sdk_eventbridge::Client::new(&sdk);
        let table = format!("{prefix}-{}", ulid::Ulid::new());
        store::schema::create_table(&dynamodb, &table)
            .await
            .expect("create the test table");
        let bus = format!("{prefix}-{}", ulid::Ulid::new());
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
}

/// The Dfns emulator in-process, retrying webhooks after 200 and 500 ms (tests wait on them).
pub async fn spawn_emulator() -> dfns_emulator::RunningEmulator {
    dfns_emulator::spawn(dfns_emulator::Options {
        webhook_retry_delays: vec![Duration::from_millis(200), Duration::from_millis(500)],
        ..dfns_emulator::Options::default()
    })
    .await
    .expect("start the Dfns emulator")
}

impl TestEnv {
    pub async fn start(options: TestOptions) -> TestEnv {
        // Logs of the code under test, shown for failing tests (`RUST_LOG` overrides `warn`).
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_test_writer()
            .try_init();
        let FreshAws {
            dynamodb,
            eventbridge,
            table,
            bus,
            ..
        } = FreshAws::create("platform-test").await;
        let emulator = spawn_emulator().await;
        let bootstrap = emulator.bootstrap().clone();

        // Webhook receiver: bound now so its URL can be registered, served once the app exists.
        let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver_url = format!("http://{}/v1/webhooks/dfns", receiver.local_addr().unwrap());
        let webhook_secret = if options.webhooks {
            let created = service_client(&emulator)
                .create_webhook(&CreateWebhook {
                    url: receiver_url,
                    events: vec![WebhookEventKind::All],
                    status: None,
                    description: Some("platform tests".into()),
                })
                .await
                .expect("register the webhook");
            secrecy::ExposeSecret::expose_secret(&created.secret).to_owned()
        } else {
            format!("whsec-test-{}", ulid::Ulid::new())
        };

        let officers: Vec<String> = bootstrap
            .officers
            .iter()
            .map(|o| o.user_id.clone())
            .collect();
        if options.policies_modify {
            use dfns_client::{PolicyBody, UserId};
            admin_client(&emulator)
                .create_policy(&PolicyBody::compliance_review(
                    "compliance approves every policy change",
                    officers.iter().map(|id| UserId::new(id.clone())),
                    1,
                    None,
                ))
                .await
                .expect("create the Policies:Modify policy");
        }

        let issuer =
            Arc::new(DevIssuer::generate("http://127.0.0.1:1/", SigningAlgorithm::Es256).unwrap());
        let (jwks_url, jwks_server) = serve_jwks(issuer.clone()).await;
        let mut auth_settings =
            auth::AuthSettings::new(issuer.issuer().to_owned(), vec![AUDIENCE.to_owned()]);
        auth_settings.jwks_url = jwks_url;
        auth_settings.role_claim = ROLES_CLAIM.to_owned();

        let base = platform_config::Settings::from_lookup(|name| match name {
            "TABLE_NAME" => Some(table.clone()),
            "DFNS_BASE_URL" => Some(bootstrap.base_url.clone()),
            _ => None,
        })
        .unwrap();
        let mut settings = PlatformSettings::with_base(base, |_| None).unwrap();
        settings.whitelist_action = options.whitelist_action;
        settings.limits_action = options.whitelist_action;
        settings.compliance.approvers = officers;
        settings.tiers = BTreeMap::from([("test".to_owned(), options.tier)]);
        settings.default_tier = "test".into();
        settings.event_bus_name = bus;
        settings.reconcile_submitted_after = options.reconcile_submitted_after;
        settings.destination_cooling_off = options.destination_cooling_off;
        settings.exchange_cooling_off = options.exchange_cooling_off;
        settings.networks = options.networks.clone();
        // The emulator is local and only injected faults throttle: no client-side limit.
        settings.dfns_rate_limit = None;

        let mut secret_json = serde_json::json!({
            "dfnsServiceAccountToken": bootstrap.service_account.token,
            "dfnsCredentialId": bootstrap.service_account.cred_id,
            "dfnsPrivateKeyPem": bootstrap.service_account.private_key_pem,
            "dfnsReadOnlyToken": bootstrap.read_only_service_account.token,
            "dfnsWebhookSecret": webhook_secret,
        });
        if let Some(edit) = options.edit_secret {
            edit(&mut secret_json);
        }
        let text = secret_json.to_string();
        let (secrets, secret_id) = if options.secret_in_secrets_manager {
            require_env("AWS_ENDPOINT_URL_SECRETS_MANAGER");
            let client = platform_config::aws::secrets_manager_client().await;
            let id = format!("platform-test-signing-{}", ulid::Ulid::new());
            client
                .create_secret()
                .name(&id)
                .secret_string(&text)
                .send()
                .await
                .expect("create the signing secret");
            let cache =
                platform_config::SecretCache::new(client, id.clone(), Duration::from_secs(3600));
            let secrets = Secrets {
                signing: Some(SecretSource::SecretsManager(Arc::new(cache))),
                read_only: Some(SecretSource::fixed(
                    ReadCredential::from_json(&text).unwrap(),
                )),
                webhook: Some(SecretSource::fixed(
                    WebhookSecrets::from_json(&text).unwrap(),
                )),
            };
            (secrets, Some(id))
        } else {
            let secrets = Secrets {
                signing: Some(SecretSource::fixed(
                    SigningCredential::from_json(&text).unwrap(),
                )),
                read_only: Some(SecretSource::fixed(
                    ReadCredential::from_json(&text).unwrap(),
                )),
                webhook: Some(SecretSource::fixed(
                    WebhookSecrets::from_json(&text).unwrap(),
                )),
            };
            (secrets, None)
        };
        let app = App::new(AppParts {
            settings,
            dynamodb,
            eventbridge,
            authenticator: auth::Authenticator::new(auth_settings),
            secrets,
            dfns_retry: Some(RetryPolicy {
                deadline: Duration::from_secs(10),
                ..RetryPolicy::default()
            }),
        });

        // The receiver applies in the request here (no queue): it holds what the dfns-webhook
        // function and the webhook consumer hold, as deployed, and no signing credential.
        let receiver_app = app.holding_only(SecretsHeld {
            read_only: true,
            ..SecretsHeld::WEBHOOK_RECEIVER
        });
        let app = app.holding_only(options.held);
        let webhook_server = tokio::spawn(async move {
            let route = axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let app = receiver_app.clone();
                    async move {
                        let signature = headers
                            .get("x-dfns-webhook-signature")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        let request_id = format!("webhook-{}", ulid::Ulid::new());
                        match crate::webhook::receive(
                            &app,
                            signature.as_deref(),
                            &body,
                            &request_id,
                        )
                        .await
                        {
                            Ok(_) => StatusCode::OK,
                            Err(crate::webhook::WebhookError::Unverified(_)) => {
                                StatusCode::UNAUTHORIZED
                            }
                            Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
                        }
                    }
                },
            );
            let router = axum::Router::new().route("/v1/webhooks/dfns", route);
            let _ = axum::serve(receiver, router).await;
        });

        TestEnv {
            app,
            emulator,
            issuer,
            webhook_secret,
            secret_json,
            secret_id,
            servers: vec![jwks_server, webhook_server],
        }
    }

    /// Writes a new version of the signing secret in Secrets Manager, as a rotation would, with
    /// `service_account_token` as the Dfns token (`None`: the emulator's real one). Needs
    /// [`TestOptions::secret_in_secrets_manager`].
    pub async fn write_secret(&self, service_account_token: Option<&str>) {
        let id = self
            .secret_id
            .as_ref()
            .expect("TestOptions::secret_in_secrets_manager is off");
        let mut secret = self.secret_json.clone();
        if let Some(token) = service_account_token {
            secret["dfnsServiceAccountToken"] = token.into();
        }
        platform_config::aws::secrets_manager_client()
            .await
            .put_secret_value()
            .secret_id(id)
            .secret_string(secret.to_string())
            .send()
            .await
            .expect("write the signing secret");
    }

    /// A client's bearer token.
    pub fn token(&self, subject: &str) -> String {
        self.issuer
            .mint(&TokenSpec::oidc(subject, AUDIENCE, ROLES_CLAIM))
            .unwrap()
    }

    /// An operator's bearer token.
    pub fn operator_token(&self, subject: &str) -> String {
        self.issuer
            .mint(
                &TokenSpec::oidc(subject, AUDIENCE, ROLES_CLAIM).role(auth::DEFAULT_OPERATOR_ROLE),
            )
            .unwrap()
    }

    /// The platform's own Dfns client (the service account).
    pub fn service(&self) -> DfnsClient {
        service_client(&self.emulator)
    }

    /// The service account's Dfns client presenting `token` instead of its own (a revoked or
    /// rotated-away token: Dfns answers 401).
    pub fn service_with_token(&self, token: &str) -> DfnsClient {
        let identity = dfns_emulator::Identity {
            token: token.to_owned(),
            ..self.emulator.bootstrap().service_account.clone()
        };
        identity_client(&self.emulator.base_url(), &identity)
    }

    /// A compliance officer's Dfns client (signing with the officer's own key).
    pub fn officer(&self, index: usize) -> DfnsClient {
        identity_client(
            &self.emulator.base_url(),
            &self.emulator.bootstrap().officers[index],
        )
    }

    /// Signs a webhook body as Dfns would: `sha256=<hex HMAC-SHA256>` with the webhook secret.
    pub fn sign_webhook(&self, body: &[u8]) -> String {
        sign_webhook(&self.webhook_secret, body)
    }

    /// An emulator control-API URL (`/emulator/...`).
    /// Calls the emulator's control API (`/emulator/<path>`), asserts success, returns the JSON
    /// answer (`Null` when there is none).
    pub async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        let response = reqwest::Client::new()
            .request(method, self.control_url(path))
            .json(&body)
            .send()
            .await
            .expect("control API reachable");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }

    pub fn control_url(&self, path: &str) -> String {
        format!(
            "{}/emulator/{}",
            self.emulator.base_url(),
            path.trim_start_matches('/')
        )
    }
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`, the `X-DFNS-WEBHOOK-SIGNATURE` Dfns sends.
pub fn sign_webhook(secret: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A Dfns delivery (to be signed) reporting a 1-wei native deposit to `wallet` in transaction `tx`;
/// each call is a new delivery, with its own event id, as Dfns' retries are.
pub fn deposit_delivery(wallet: &str, tx: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": format!("whe-{}", ulid::Ulid::new().to_string().to_lowercase()),
        "kind": "wallet.blockchainevent.detected",
        "date": "2026-01-01T00:01:00.000Z",
        "timestampSent": time::OffsetDateTime::now_utc().unix_timestamp(),
        "deliveryAttempt": 1,
        "data": {"blockchainEvent": {
            "walletId": wallet,
            "direction": "In",
            "network": "EthereumSepolia",
            "blockNumber": 7,
            "txHash": tx,
            "index": "0",
            "timestamp": "2026-01-01T00:00:00.000Z",
            "kind": "NativeTransfer",
            "from": "0x8617e340b3d01fa5f11f306f4090fd50e238070d",
            "to": "0x8617e340b3d01fa5f11f306f4090fd50e238070e",
            "value": "1",
            "metadata": {"asset": {"symbol": "ETH", "decimals": 18}}
        }},
    }))
    .expect("JSON")
}

fn service_client(emulator: &dfns_emulator::RunningEmulator) -> DfnsClient {
    identity_client(&emulator.base_url(), &emulator.bootstrap().service_account)
}

fn admin_client(emulator: &dfns_emulator::RunningEmulator) -> DfnsClient {
    identity_client(&emulator.base_url(), &emulator.bootstrap().admin)
}

/// A Dfns client acting as `identity` (its token and signing key) against `base_url`.
pub fn identity_client(base_url: &str, identity: &dfns_emulator::Identity) -> DfnsClient {
    let signer = KeySigner::from_pkcs8_pem(
        identity.cred_id.clone(),
        &SecretString::from(identity.private_key_pem.clone()),
    )
    .expect("the emulator's keys load");
    DfnsClient::new(
        ClientConfig::new(
            SecretString::from(identity.token.clone()),
            Some(Arc::new(signer)),
        )
        .with_base_url(base_url)
        .with_rate_limit(None),
    )
    .expect("a Dfns client")
}

async fn serve_jwks(issuer: Arc<DevIssuer>) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    let jwks = issuer.jwks();
    let router = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (url, server)
}
