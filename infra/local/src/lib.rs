//! # local-stack
//!
//! The platform on one loopback port, as it runs in AWS:
//!
//! - **Gateway** ([`gateway`]): every function's `ROUTES` in one table (a route served by two
//!   functions is a startup error). Each HTTP request becomes the API Gateway HTTP API (payload
//!   2.0) event AWS would send, converted into a `lambda_http::Request` by `lambda_http`'s own
//!   code, and handed to the function's `handle`, the very function its Lambda `main` calls. An
//!   unknown route answers 404 in the platform's error shape.
//! - **Identity**: a development OIDC issuer ([`auth::dev_issuer`]) whose issuer URL is the stack's
//!   base URL: `/.well-known/openid-configuration` and `/.well-known/jwks.json`, and the
//!   authorization code flow with PKCE under `/oauth2/` ([`oidc`]: a login page asking for a
//!   username, `desk-*` signs in as an operator). Its key can live in a file
//!   ([`IssuerKey::File`]) so `cargo xtask token` mints tokens the running stack accepts.
//! - **Dashboard** ([`web`]): the built single-page app (`PLATFORM_WEB_DIR`, default `web/dist`)
//!   at `/`, and `/config.json` naming the issuer and client id it signs in with.
//! - **`GET /openapi.json`**: an OpenAPI 3.1 document built from the same route table
//!   ([`openapi`]).
//! - **Scheduler**: the scheduled functions ([`functions::jobs`]) run every
//!   [`Config::tick_every`], as EventBridge would run them.
//! - **Webhook queue** ([`queue`]): with [`Config::webhook_queue`], the receiver enqueues verified
//!   deliveries on an SQS FIFO queue (LocalStack's SQS) and pollers hand each batch to `webhook-consumer`'s
//!   handler, as Lambda's SQS event source does.
//! - **Export bucket** ([`exports`]): with `AWS_ENDPOINT_URL_S3` set (the stand-ins), a bucket in
//!   moto created at start, where the reporting function writes whole CSV exports too large to
//!   answer inline (as `EXPORT_BUCKET` on AWS).
//!
//! ```no_run
//! # async fn demo(config: local_stack::Config) -> anyhow::Result<()> {
//! let stack = local_stack::spawn(config).await?;
//! let token = stack.token("alice");
//! let account = reqwest::Client::new()
//!     .post(format!("{}/v1/accounts", stack.base_url))
//!     .bearer_auth(token)
//!     .send()
//!     .await?;
//! # let _ = account; Ok(()) }
//! ```

pub mod exports;
pub mod functions;
pub mod gateway;
pub mod oidc;
pub mod openapi;
pub mod queue;
pub mod web;

#[cfg(test)]
mod dashboard_tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use auth::dev_issuer::code_flow::{CodeFlow, CodeFlowSettings};
use auth::dev_issuer::{DevIssuer, SigningAlgorithm, TokenShape, TokenSpec};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use platform::settings::PlatformSettings;
use platform::{App, AppParts, Secrets};
use serde::{Deserialize, Serialize};

/// Default audience of the stack's tokens.
pub const DEFAULT_AUDIENCE: &str = "platform-api";
/// Default claim carrying roles in the stack's tokens.
pub const DEFAULT_ROLE_CLAIM: &str = "roles";

/// Where the stack listens.
pub enum Listen {
    /// Bind this address (port 0: any free port).
    Addr(SocketAddr),
    /// A listener the caller bound already (so it knows the URL before the stack starts, e.g. to
    /// register a Dfns webhook pointing at it).
    Bound(tokio::net::TcpListener),
}

/// The development issuer's signing key.
pub enum IssuerKey {
    /// A fresh key (tests).
    Generate(SigningAlgorithm),
    /// A key kept in this file (PKCS#8 PEM): loaded if present, else generated and saved (mode
    /// 0600), so tokens minted by another process (`cargo xtask token`) verify.
    File(PathBuf),
}

/// Everything the stack needs.
pub struct Config {
    pub listen: Listen,
    /// Table, secret, Dfns URL, networks, policies, tiers, event bus.
    pub settings: PlatformSettings,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    /// Every secret; each function is served with only its own.
    pub secrets: Secrets,
    /// Retries of Dfns calls (`None`: the client's default).
    pub dfns_retry: Option<dfns_client::RetryPolicy>,
    pub issuer_key: IssuerKey,
    /// Accepted `aud`.
    pub audience: String,
    /// Claim holding roles.
    pub role_claim: String,
    /// Role meaning operator.
    pub operator_role: String,
    /// How often the scheduled functions run; `None`: only when asked ([`RunningStack::run_job`]).
    pub tick_every: Option<Duration>,
    /// The webhook queue (see [`queue::create`]); `None`: the receiver applies deliveries in the
    /// request.
    pub webhook_queue: Option<platform::webhook_queue::WebhookQueue>,
}

impl Config {
    /// A config from the process environment, as a function's `main` reads it (`TABLE_NAME`,
    /// the three `DFNS_*_SECRET_ID`s, `DFNS_BASE_URL`, the platform settings; AWS endpoints from
    /// `AWS_ENDPOINT_URL_*`). `AUTH_AUDIENCE` (default `platform-api`), `AUTH_ROLE_CLAIM`
    /// (default `roles`) and `AUTH_OPERATOR_ROLE` (default `operators`) shape the tokens; the
    /// issuer is always the stack itself.
    pub async fn from_env(listen: Listen, issuer_key: IssuerKey) -> anyhow::Result<Config> {
        let settings = PlatformSettings::from_env().context("platform settings")?;
        let sdk = platform_config::aws::sdk_config().await;
        let secrets = Secrets::from_ids(
            &settings.base.secret_ids,
            settings.base.secret_refresh,
            platform::SecretsHeld::ALL,
        )
        .context("the stack serves every function: it needs every secret's id")?;
        let var = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        Ok(Config {
            listen,
            dynamodb: platform_config::aws::dynamodb_client().await,
            eventbridge: aws_sdk_eventbridge::Client::new(sdk),
            secrets,
            settings,
            dfns_retry: None,
            issuer_key,
            audience: var("AUTH_AUDIENCE", DEFAULT_AUDIENCE),
            role_claim: var("AUTH_ROLE_CLAIM", DEFAULT_ROLE_CLAIM),
            operator_role: var("AUTH_OPERATOR_ROLE", auth::DEFAULT_OPERATOR_ROLE),
            tick_every: Some(Duration::from_secs(10)),
            webhook_queue: platform::webhook_queue::WebhookQueue::from_env().await,
        })
    }
}

/// What another process needs to mint tokens for a running stack (`cargo xtask token`), written
/// by the binary's `--state-out`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackInfo {
    pub base_url: String,
    pub issuer: String,
    pub audience: String,
    pub role_claim: String,
    pub operator_role: String,
    /// Present when the issuer key lives in a file.
    pub issuer_key_file: Option<PathBuf>,
}

/// A running stack. Dropping it stops the server and the scheduler.
pub struct RunningStack {
    /// `http://127.0.0.1:PORT` (no trailing slash); also the issuer URL.
    pub base_url: String,
    pub issuer: Arc<DevIssuer>,
    /// The one `App` every function shares (as one warm container per function would).
    pub app: App,
    pub info: StackInfo,
    routes: Vec<(String, String, &'static str)>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    scheduler: Option<tokio::task::JoinHandle<()>>,
    pollers: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningStack {
    /// A client's token (1 hour).
    pub fn token(&self, subject: &str) -> String {
        self.mint(&self.token_spec(subject))
    }

    /// An operator's token (1 hour).
    pub fn operator_token(&self, subject: &str) -> String {
        self.mint(
            &self
                .token_spec(subject)
                .role(self.info.operator_role.clone()),
        )
    }

    /// The spec of a client token, to adjust (expiry, audience, …) before [`RunningStack::mint`].
    pub fn token_spec(&self, subject: &str) -> TokenSpec {
        TokenSpec::oidc(
            subject,
            self.info.audience.clone(),
            self.info.role_claim.clone(),
        )
    }

    pub fn mint(&self, spec: &TokenSpec) -> String {
        self.issuer.mint(spec).expect("the development key signs")
    }

    /// Every route with the function serving it.
    pub fn routes(&self) -> Vec<(String, String, &'static str)> {
        self.routes.clone()
    }

    /// Runs one scheduled function now (as an EventBridge rule would) and returns its report.
    pub async fn run_job(&self, name: &str) -> anyhow::Result<serde_json::Value> {
        let job = functions::jobs()
            .into_iter()
            .find(|job| job.name == name)
            .with_context(|| format!("no scheduled function `{name}`"))?;
        (job.run)(self.app.holding_only(job.secrets)).await
    }

    /// Stops accepting requests, lets those in flight finish, stops the scheduler.
    pub async fn shutdown(mut self) {
        if let Some(scheduler) = self.scheduler.take() {
            scheduler.abort();
        }
        for poller in self.pollers.drain(..) {
            poller.abort();
        }
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = (&mut self.server).await;
    }
}

impl Drop for RunningStack {
    fn drop(&mut self) {
        if let Some(scheduler) = &self.scheduler {
            scheduler.abort();
        }
        for poller in &self.pollers {
            poller.abort();
        }
        self.server.abort();
    }
}

#[derive(Clone)]
struct Shared {
    openapi: Arc<serde_json::Value>,
}

/// Loads or creates the issuer key.
fn load_issuer(key: &IssuerKey, issuer_url: &str) -> anyhow::Result<DevIssuer> {
    match key {
        IssuerKey::Generate(algorithm) => Ok(DevIssuer::generate(issuer_url, *algorithm)?),
        IssuerKey::File(path) => match std::fs::read_to_string(path) {
            Ok(pem) => DevIssuer::from_private_key_pem(issuer_url, &pem)
                .with_context(|| format!("loading the issuer key {}", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let issuer = DevIssuer::generate(issuer_url, SigningAlgorithm::Es256)?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                write_private(path, issuer.private_key_pem())
                    .with_context(|| format!("saving the issuer key {}", path.display()))?;
                Ok(issuer)
            }
            Err(error) => Err(anyhow::Error::new(error)
                .context(format!("reading the issuer key {}", path.display()))),
        },
    }
}

/// Writes a file only its owner can read.
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

/// Starts the stack on the current tokio runtime, with the dashboard settings of the environment
/// ([`web::Dashboard::from_env`]).
pub async fn spawn(config: Config) -> anyhow::Result<RunningStack> {
    spawn_with(config, web::Dashboard::from_env()).await
}

/// Starts the stack serving `dashboard`.
pub async fn spawn_with(config: Config, dashboard: web::Dashboard) -> anyhow::Result<RunningStack> {
    let routes = functions::routes();
    let listener = match config.listen {
        Listen::Addr(addr) => tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?,
        Listen::Bound(listener) => listener,
    };
    let addr = listener.local_addr()?;
    let reachable = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    let base_url = format!("http://{reachable}");
    let issuer = Arc::new(load_issuer(&config.issuer_key, &base_url)?);

    let mut auth_settings =
        auth::AuthSettings::new(base_url.clone(), vec![config.audience.clone()]);
    auth_settings.role_claim = config.role_claim.clone();
    auth_settings.operator_role = config.operator_role.clone();
    let app = App::new(AppParts {
        settings: config.settings,
        dynamodb: config.dynamodb,
        eventbridge: config.eventbridge,
        authenticator: auth::Authenticator::new(auth_settings),
        secrets: config.secrets,
        dfns_retry: config.dfns_retry,
    });
    let app = match &config.webhook_queue {
        Some(queue) => app.with_webhook_queue(queue.clone()),
        None => app,
    };

    let info = StackInfo {
        base_url: base_url.clone(),
        issuer: issuer.issuer().to_owned(),
        audience: config.audience,
        role_claim: config.role_claim,
        operator_role: config.operator_role,
        issuer_key_file: match &config.issuer_key {
            IssuerKey::File(path) => Some(path.clone()),
            IssuerKey::Generate(_) => None,
        },
    };
    let exports = exports::create().await?;
    let (_, mut document) = platform::http::document(functions::merged());
    openapi::serve_at(&mut document, &base_url);
    let functions_router = platform::http::with_outer_layer(
        functions::serving(&app, exports.as_ref())
            .route_layer(axum::middleware::from_fn(gateway::as_lambda_event)),
    );
    let shared = Shared {
        openapi: Arc::new(serde_json::to_value(&document)?),
    };
    let mut flow_settings = CodeFlowSettings::new(
        dashboard.client_id.clone(),
        base_url.clone(),
        // Exactly the tokens the stack's authenticator is configured to accept.
        TokenShape::Oidc {
            audience: info.audience.clone(),
            roles_claim: info.role_claim.clone(),
        },
        info.operator_role.clone(),
    );
    flow_settings.access_token_lifetime = dashboard.access_token_lifetime;
    let code_flow = Arc::new(CodeFlow::new(issuer.clone(), flow_settings));
    let stack_routes = Router::new()
        .route(
            "/openapi.json",
            get(|State(s): State<Shared>| async move { axum::Json((*s.openapi).clone()) }),
        )
        .with_state(shared)
        .merge(oidc::router(issuer.clone(), code_flow))
        .merge(functions_router);
    let router = web::compose(stack_routes, &dashboard, &base_url);

    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(listener, service)
            .with_graceful_shutdown(async move {
                let _ = shutdown_rx.await;
            })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "local stack server stopped");
        }
    });

    let scheduler = config
        .tick_every
        .map(|every| tokio::spawn(functions::run_schedule(app.clone(), every)));
    let pollers = match &config.webhook_queue {
        Some(webhook_queue) => (0..queue::POLLERS)
            .map(|_| {
                tokio::spawn(queue::poll(
                    app.clone(),
                    webhook_queue.client().clone(),
                    webhook_queue.url().to_owned(),
                ))
            })
            .collect(),
        None => Vec::new(),
    };
    tracing::info!(%base_url, routes = routes.len(), "local stack listening");
    Ok(RunningStack {
        base_url,
        issuer,
        app,
        info,
        routes,
        shutdown: Some(shutdown_tx),
        server,
        scheduler,
        pollers,
    })
}
