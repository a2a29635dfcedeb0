//! [`App`]: everything a function builds once per container and shares between invocations.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dfns_client::{ClientConfig, DfnsClient, KeySigner, RetryPolicy, WebhookVerifier};
use platform_config::{
    ReadCredential, SecretCache, SecretIds, SecretKind, SigningCredential, WebhookSecrets,
};
use secrecy::{ExposeSecret, SecretString};
use store::Store;

use crate::dfns_budget::{DfnsBudget, Priority};
use crate::error::{PlatformError, Result};
use crate::settings::PlatformSettings;
use crate::webhook_queue::WebhookQueue;

/// Where one secret comes from.
pub enum SecretSource<T> {
    /// Secrets Manager, fetched on first use and cached with refresh (production, local stack).
    SecretsManager(Arc<SecretCache<T>>),
    /// A value already in hand (tests).
    Fixed(Arc<T>),
}

impl<T: SecretKind> std::fmt::Debug for SecretSource<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SecretsManager(cache) => cache.fmt(f),
            Self::Fixed(_) => write!(f, "Fixed({})", T::WHAT),
        }
    }
}

impl<T> Clone for SecretSource<T> {
    fn clone(&self) -> Self {
        match self {
            Self::SecretsManager(cache) => Self::SecretsManager(cache.clone()),
            Self::Fixed(value) => Self::Fixed(value.clone()),
        }
    }
}

impl<T: SecretKind> SecretSource<T> {
    /// A value in hand (tests).
    pub fn fixed(value: T) -> Self {
        Self::Fixed(Arc::new(value))
    }

    async fn get(&self) -> Result<Arc<T>> {
        match self {
            SecretSource::SecretsManager(cache) => Ok(cache.get().await?),
            SecretSource::Fixed(secret) => Ok(secret.clone()),
        }
    }

    async fn invalidate(&self) {
        if let SecretSource::SecretsManager(cache) = self {
            cache.invalidate().await;
        }
    }
}

/// Which of the platform's three secrets a function holds: each function declares it (its
/// crate's `SECRETS`), its `main` reads only those, and its template entry grants only those
/// (checked by `deploy-checks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SecretsHeld {
    /// The signing service account: changes things at Dfns.
    pub signing: bool,
    /// The read-only service account.
    pub read_only: bool,
    /// The webhook's HMAC secret(s).
    pub webhook: bool,
}

impl SecretsHeld {
    /// Functions that change things at Dfns (they read with the same credential).
    pub const SIGNING: Self = Self {
        signing: true,
        read_only: false,
        webhook: false,
    };
    /// Functions that only read Dfns.
    pub const READ_ONLY: Self = Self {
        signing: false,
        read_only: true,
        webhook: false,
    };
    /// The webhook receiver: verifies deliveries and queues them; reads nothing at Dfns.
    pub const WEBHOOK_RECEIVER: Self = Self {
        signing: false,
        read_only: false,
        webhook: true,
    };
    /// Every secret (the bootstrap and test tooling that sets them up).
    pub const ALL: Self = Self {
        signing: true,
        read_only: true,
        webhook: true,
    };
}

/// The secrets an [`App`] holds; absent ones cannot be used by it at all.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    pub signing: Option<SecretSource<SigningCredential>>,
    pub read_only: Option<SecretSource<ReadCredential>>,
    pub webhook: Option<SecretSource<WebhookSecrets>>,
}

impl Secrets {
    /// Caches over Secrets Manager for the secrets `held` names, from their ids. No I/O. A held
    /// secret without an id is a deploy mistake, refused at start. The caches read with the
    /// process's Secrets Manager client, built on the first read.
    pub fn from_ids(
        ids: &SecretIds,
        refresh: Duration,
        held: SecretsHeld,
    ) -> std::result::Result<Self, platform_config::ConfigError> {
        fn source<T: SecretKind>(
            held: bool,
            id: &Option<String>,
            name: &'static str,
            refresh: Duration,
        ) -> std::result::Result<Option<SecretSource<T>>, platform_config::ConfigError> {
            match (held, id) {
                (false, _) => Ok(None),
                (true, None) => Err(platform_config::ConfigError::Missing { name }),
                (true, Some(id)) => Ok(Some(SecretSource::SecretsManager(Arc::new(
                    SecretCache::with_process_client(id.clone(), refresh),
                )))),
            }
        }
        Ok(Self {
            signing: source(
                held.signing,
                &ids.signing,
                platform_config::DFNS_SIGNING_SECRET_ID,
                refresh,
            )?,
            read_only: source(
                held.read_only,
                &ids.read_only,
                platform_config::DFNS_READ_SECRET_ID,
                refresh,
            )?,
            webhook: source(
                held.webhook,
                &ids.webhook,
                platform_config::DFNS_WEBHOOK_SECRET_ID,
                refresh,
            )?,
        })
    }

    /// Values in hand (tests).
    pub fn fixed(
        signing: SigningCredential,
        read_only: ReadCredential,
        webhook: WebhookSecrets,
    ) -> Self {
        Self {
            signing: Some(SecretSource::fixed(signing)),
            read_only: Some(SecretSource::fixed(read_only)),
            webhook: Some(SecretSource::fixed(webhook)),
        }
    }

    /// These secrets less those `held` does not name (the local stack gives each function only
    /// its own, as IAM does on AWS).
    pub fn only(&self, held: SecretsHeld) -> Self {
        Self {
            signing: self.signing.clone().filter(|_| held.signing),
            read_only: self.read_only.clone().filter(|_| held.read_only),
            webhook: self.webhook.clone().filter(|_| held.webhook),
        }
    }

    pub fn held(&self) -> SecretsHeld {
        SecretsHeld {
            signing: self.signing.is_some(),
            read_only: self.read_only.is_some(),
            webhook: self.webhook.is_some(),
        }
    }
}

/// A credential a Dfns client can be built from.
trait DfnsCredential: SecretKind {
    fn client_config(&self) -> Result<ClientConfig>;
}

impl DfnsCredential for SigningCredential {
    fn client_config(&self) -> Result<ClientConfig> {
        let signer =
            KeySigner::from_pkcs8_pem(self.credential_id.expose_secret(), &self.private_key_pem)
                .map_err(|e| PlatformError::Internal(format!("Dfns signing key unusable: {e}")))?;
        Ok(ClientConfig::new(
            SecretString::from(self.token.expose_secret()),
            Some(Arc::new(signer)),
        ))
    }
}

impl DfnsCredential for ReadCredential {
    fn client_config(&self) -> Result<ClientConfig> {
        // No signer: a call that needs a user-action signature fails here, before Dfns.
        Ok(ClientConfig::new(
            SecretString::from(self.token.expose_secret()),
            None,
        ))
    }
}

/// After Dfns refuses the token (401), the next Dfns call re-reads the secret at once instead of
/// waiting out the refresh interval, so a rotated token is picked up within one failed call. At
/// most once per this interval, so a token that is simply wrong does not turn every call into a
/// Secrets Manager read.
const FORCED_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// The parts of an [`App`], for callers that build them themselves (tests, the local stack).
pub struct AppParts {
    pub settings: PlatformSettings,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub authenticator: auth::Authenticator,
    pub secrets: Secrets,
    /// Retries of Dfns calls (`None`: the client's default, a 30 s deadline).
    pub dfns_retry: Option<RetryPolicy>,
}

/// The EventBridge client: built on first use. Only notifications use it, and building an AWS
/// client costs a cold start about 0.2 ms (issue 17's trace) that a request without a
/// notification never needs. Cloning shares the client once built.
#[derive(Clone)]
struct EventBridge {
    client: std::sync::OnceLock<aws_sdk_eventbridge::Client>,
    make: Arc<dyn Fn() -> aws_sdk_eventbridge::Client + Send + Sync>,
}

impl EventBridge {
    fn given(client: aws_sdk_eventbridge::Client) -> Self {
        Self {
            client: std::sync::OnceLock::from(client.clone()),
            make: Arc::new(move || client.clone()),
        }
    }

    fn get(&self) -> &aws_sdk_eventbridge::Client {
        self.client.get_or_init(|| (self.make)())
    }
}

struct Inner {
    settings: PlatformSettings,
    store: Store,
    eventbridge: EventBridge,
    authenticator: Arc<auth::Authenticator>,
    signing: Option<DfnsSlot<SigningCredential>>,
    read_only: Option<DfnsSlot<ReadCredential>>,
    webhook: Option<SecretSource<WebhookSecrets>>,
    dfns_retry: Option<RetryPolicy>,
    /// The organisation-wide Dfns request budget the Dfns clients take from (`None`: none).
    dfns_budget: Option<DfnsBudget>,
    /// Where the webhook receiver puts verified deliveries (`WEBHOOK_QUEUE_URL`).
    webhook_queue: Option<WebhookQueue>,
}

/// A Dfns client built from one credential, rebuilt when the secret cache hands out a refreshed
/// (e.g. rotated) value.
struct DfnsSlot<T> {
    source: SecretSource<T>,
    client: tokio::sync::Mutex<Option<(Arc<T>, DfnsClient)>>,
    /// Set by the Dfns client when Dfns answers 401; see [`FORCED_REFRESH_INTERVAL`].
    refused: Arc<AtomicBool>,
    last_forced_refresh: Mutex<Option<Instant>>,
}

impl<T: DfnsCredential> DfnsSlot<T> {
    fn new(source: SecretSource<T>) -> Self {
        Self {
            source,
            client: tokio::sync::Mutex::new(None),
            refused: Arc::new(AtomicBool::new(false)),
            last_forced_refresh: Mutex::new(None),
        }
    }

    async fn client(
        &self,
        settings: &PlatformSettings,
        retry: Option<RetryPolicy>,
        budget: Option<&DfnsBudget>,
    ) -> Result<DfnsClient> {
        if self.refused.swap(false, Ordering::AcqRel) && self.may_force_refresh() {
            tracing::warn!(
                credential = T::WHAT,
                "Dfns refused the service-account token; re-reading its secret"
            );
            self.source.invalidate().await;
        }
        let secret = self.source.get().await?;
        let mut cached = self.client.lock().await;
        if let Some((made_with, client)) = cached.as_ref() {
            if Arc::ptr_eq(made_with, &secret) {
                return Ok(client.clone());
            }
        }
        let mut config = secret
            .client_config()?
            .with_base_url(settings.base.dfns_base_url.as_str())
            .with_rate_limit(settings.dfns_rate_limit)
            .with_budget(budget.map(DfnsBudget::for_client));
        if let Some(retry) = retry {
            config = config.with_retry(retry);
        }
        let refused = self.refused.clone();
        config = config.with_on_unauthorized(Arc::new(move || {
            refused.store(true, Ordering::Release);
        }));
        let client = DfnsClient::new(config)?;
        *cached = Some((secret, client.clone()));
        Ok(client)
    }

    fn may_force_refresh(&self) -> bool {
        let mut last = self
            .last_forced_refresh
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < FORCED_REFRESH_INTERVAL) {
            return false;
        }
        *last = Some(now);
        true
    }
}

/// Settings, DynamoDB store, EventBridge client, authenticator, and the Dfns clients of the
/// credentials this function holds (each created on first use from its secret, then cached). Cloning is cheap (one `Arc`).
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("table", &self.inner.store.table_name())
            .finish_non_exhaustive()
    }
}

/// Why an [`App`] could not be built from the environment.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] platform_config::ConfigError),
    #[error(transparent)]
    Auth(#[from] auth::SettingsError),
}

impl App {
    /// Reads the environment (`TABLE_NAME`, the ids of the secrets in `held`, `AUTH_*`, the
    /// platform settings) and builds the clients. No network call: secrets and Dfns clients come
    /// on first use. Secrets not in `held` are never read, whatever the environment says.
    pub async fn from_env(held: SecretsHeld) -> std::result::Result<Self, StartupError> {
        use crate::http::init_mark;
        let settings = PlatformSettings::from_env()?;
        let auth_settings = auth::AuthSettings::from_env()?;
        init_mark("settings");
        let sdk = platform_config::aws::sdk_config().await;
        init_mark("aws sdk config");
        // The Secrets Manager client is built on the first secret read, not here.
        let secrets = Secrets::from_ids(
            &settings.base.secret_ids,
            settings.base.secret_refresh,
            held,
        )?;
        init_mark("secret caches");
        let dynamodb = platform_config::aws::dynamodb_client().await;
        init_mark("dynamodb client");
        let eventbridge = EventBridge {
            client: std::sync::OnceLock::new(),
            make: Arc::new(move || aws_sdk_eventbridge::Client::new(sdk)),
        };
        let app = Self::assemble(
            settings,
            dynamodb,
            eventbridge,
            auth::Authenticator::new(auth_settings),
            secrets,
            None,
        );
        init_mark("app");
        // The organisation-wide Dfns budget, as an interactive caller unless `main` says otherwise.
        let budget = DfnsBudget::from_env(app.store(), Priority::Interactive)?;
        let app = app.with_dfns_budget(budget);
        let app = match WebhookQueue::from_env().await {
            Some(queue) => app.with_webhook_queue(queue),
            None => app,
        };
        init_mark("budget and queue");
        Ok(app)
    }

    pub fn new(parts: AppParts) -> Self {
        Self::assemble(
            parts.settings,
            parts.dynamodb,
            EventBridge::given(parts.eventbridge),
            parts.authenticator,
            parts.secrets,
            parts.dfns_retry,
        )
    }

    fn assemble(
        settings: PlatformSettings,
        dynamodb: aws_sdk_dynamodb::Client,
        eventbridge: EventBridge,
        authenticator: auth::Authenticator,
        secrets: Secrets,
        dfns_retry: Option<RetryPolicy>,
    ) -> Self {
        let store = Store::new(dynamodb, settings.base.table_name.clone());
        Self {
            inner: Arc::new(Inner {
                settings,
                store,
                eventbridge,
                authenticator: Arc::new(authenticator),
                signing: secrets.signing.map(DfnsSlot::new),
                read_only: secrets.read_only.map(DfnsSlot::new),
                webhook: secrets.webhook,
                dfns_retry,
                dfns_budget: None,
                webhook_queue: None,
            }),
        }
    }

    /// The same app, putting verified webhook deliveries on `queue` instead of applying them
    /// in the request.
    pub fn with_webhook_queue(&self, queue: WebhookQueue) -> Self {
        let mut app = self.holding_only(self.secrets_held());
        if let Some(inner) = Arc::get_mut(&mut app.inner) {
            inner.webhook_queue = Some(queue);
        }
        app
    }

    /// The same app, its Dfns clients taking from `budget` (`None`: no shared budget).
    pub fn with_dfns_budget(&self, budget: Option<DfnsBudget>) -> Self {
        let mut app = self.holding_only(self.secrets_held());
        if let Some(inner) = Arc::get_mut(&mut app.inner) {
            inner.dfns_budget = budget;
        }
        app
    }

    /// The same app, taking the shared Dfns budget as `priority` callers do (order execution and
    /// the reconciler: [`Priority::Background`]). No effect without a shared budget.
    pub fn with_dfns_priority(&self, priority: Priority) -> Self {
        let budget = self.inner.dfns_budget.as_ref();
        self.with_dfns_budget(budget.map(|budget| budget.with_priority(priority)))
    }

    /// The webhook queue, when this app has one.
    pub fn webhook_queue(&self) -> Option<&WebhookQueue> {
        self.inner.webhook_queue.as_ref()
    }

    /// The same clients, holding only the secrets `held` names (the local stack serves each
    /// function with its own).
    pub fn holding_only(&self, held: SecretsHeld) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(Inner {
                settings: inner.settings.clone(),
                store: inner.store.clone(),
                eventbridge: inner.eventbridge.clone(),
                authenticator: inner.authenticator.clone(),
                signing: inner
                    .signing
                    .as_ref()
                    .filter(|_| held.signing)
                    .map(|slot| DfnsSlot::new(slot.source.clone())),
                read_only: inner
                    .read_only
                    .as_ref()
                    .filter(|_| held.read_only)
                    .map(|slot| DfnsSlot::new(slot.source.clone())),
                webhook: inner.webhook.clone().filter(|_| held.webhook),
                dfns_retry: inner.dfns_retry,
                dfns_budget: inner.dfns_budget.clone(),
                webhook_queue: inner.webhook_queue.clone(),
            }),
        }
    }

    /// The secrets this app holds.
    pub fn secrets_held(&self) -> SecretsHeld {
        SecretsHeld {
            signing: self.inner.signing.is_some(),
            read_only: self.inner.read_only.is_some(),
            webhook: self.inner.webhook.is_some(),
        }
    }

    pub fn settings(&self) -> &PlatformSettings {
        &self.inner.settings
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn eventbridge(&self) -> &aws_sdk_eventbridge::Client {
        self.inner.eventbridge.get()
    }

    pub fn authenticator(&self) -> &auth::Authenticator {
        &self.inner.authenticator
    }

    /// The Dfns client of the signing service account: for calls that change something at Dfns
    /// (wallets, policies, transfers). Only functions that hold the signing credential have it;
    /// elsewhere this is an error, never a fallback.
    pub async fn dfns(&self) -> Result<DfnsClient> {
        match &self.inner.signing {
            Some(slot) => {
                slot.client(
                    &self.inner.settings,
                    self.inner.dfns_retry,
                    self.inner.dfns_budget.as_ref(),
                )
                .await
            }
            None => Err(PlatformError::Internal(
                "this function does not hold the Dfns signing credential".into(),
            )),
        }
    }

    /// A Dfns client for reads: the read-only service account's when this function holds it,
    /// else the signing one's (a function that changes things reads with the same account).
    pub async fn dfns_reader(&self) -> Result<DfnsClient> {
        match (&self.inner.read_only, &self.inner.signing) {
            (Some(slot), _) => {
                slot.client(
                    &self.inner.settings,
                    self.inner.dfns_retry,
                    self.inner.dfns_budget.as_ref(),
                )
                .await
            }
            (None, Some(slot)) => {
                slot.client(
                    &self.inner.settings,
                    self.inner.dfns_retry,
                    self.inner.dfns_budget.as_ref(),
                )
                .await
            }
            (None, None) => Err(PlatformError::Internal(
                "this function holds no Dfns credential".into(),
            )),
        }
    }

    /// Verifier of Dfns webhook deliveries: the current webhook secret and, during a rotation,
    /// the next. `None` while the secret holds no usable key (the placeholder, or too short):
    /// then no delivery can be told from a forgery.
    pub async fn webhook_verifier(&self) -> Result<Option<WebhookVerifier>> {
        let Some(source) = &self.inner.webhook else {
            return Err(PlatformError::Internal(
                "this function does not hold the webhook secret".into(),
            ));
        };
        let secrets = source.get().await?;
        let tolerance = self.inner.settings.webhook_tolerance;
        let mut usable = secrets
            .usable()
            .into_iter()
            .map(|s| SecretString::from(s.expose_secret()));
        let Some(first) = usable.next() else {
            return Ok(None);
        };
        Ok(Some(
            usable
                .fold(WebhookVerifier::new(first), WebhookVerifier::also_accepting)
                .with_tolerance(tolerance, tolerance),
        ))
    }
}
