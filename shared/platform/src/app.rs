//! [`App`]: everything a function builds once per container and shares between invocations.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dfns_client::{ClientConfig, DfnsClient, KeySigner, RetryPolicy, WebhookVerifier};
use platform_config::{PlatformSecret, SecretCache};
use secrecy::{ExposeSecret, SecretString};
use store::Store;

use crate::error::{PlatformError, Result};
use crate::settings::PlatformSettings;

/// Where the platform secret comes from.
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// Secrets Manager, fetched on first use and cached with refresh (production, local stack).
    SecretsManager(Arc<SecretCache>),
    /// A value already in hand (tests).
    Fixed(Arc<PlatformSecret>),
}

impl SecretSource {
    async fn get(&self) -> Result<Arc<PlatformSecret>> {
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
    pub secrets: SecretSource,
    /// Retries of Dfns calls (`None`: the client's default, a 30 s deadline).
    pub dfns_retry: Option<RetryPolicy>,
}

struct Inner {
    settings: PlatformSettings,
    store: Store,
    eventbridge: aws_sdk_eventbridge::Client,
    authenticator: auth::Authenticator,
    secrets: SecretSource,
    dfns_retry: Option<RetryPolicy>,
    /// The Dfns client, built from the secret it was made with; rebuilt when the secret cache
    /// hands out a refreshed (e.g. rotated) secret.
    dfns: tokio::sync::Mutex<Option<(Arc<PlatformSecret>, DfnsClient)>>,
    /// Set by the Dfns client when Dfns answers 401; see [`FORCED_REFRESH_INTERVAL`].
    dfns_refused: Arc<AtomicBool>,
    last_forced_refresh: Mutex<Option<Instant>>,
}

/// Settings, DynamoDB store, EventBridge client, authenticator, and the Dfns client (created on
/// first use from the platform secret, then cached). Cloning is cheap (one `Arc`).
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
    /// Reads the environment (`TABLE_NAME`, `PLATFORM_SECRET_ID`, `AUTH_*`, the platform settings)
    /// and builds the clients. No network call: the secret and the Dfns client come on first use.
    pub async fn from_env() -> std::result::Result<Self, StartupError> {
        let settings = PlatformSettings::from_env()?;
        let auth_settings = auth::AuthSettings::from_env()?;
        let sdk = platform_config::aws::sdk_config().await;
        let secrets = SecretCache::new(
            platform_config::aws::secrets_manager_client().await,
            settings.base.platform_secret_id.clone(),
            settings.base.secret_refresh,
        );
        Ok(Self::new(AppParts {
            dynamodb: platform_config::aws::dynamodb_client().await,
            eventbridge: aws_sdk_eventbridge::Client::new(sdk),
            authenticator: auth::Authenticator::new(auth_settings),
            secrets: SecretSource::SecretsManager(Arc::new(secrets)),
            settings,
            dfns_retry: None,
        }))
    }

    pub fn new(parts: AppParts) -> Self {
        let store = Store::new(parts.dynamodb, parts.settings.base.table_name.clone());
        Self {
            inner: Arc::new(Inner {
                settings: parts.settings,
                store,
                eventbridge: parts.eventbridge,
                authenticator: parts.authenticator,
                secrets: parts.secrets,
                dfns_retry: parts.dfns_retry,
                dfns: tokio::sync::Mutex::new(None),
                dfns_refused: Arc::new(AtomicBool::new(false)),
                last_forced_refresh: Mutex::new(None),
            }),
        }
    }

    pub fn settings(&self) -> &PlatformSettings {
        &self.inner.settings
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn eventbridge(&self) -> &aws_sdk_eventbridge::Client {
        &self.inner.eventbridge
    }

    pub fn authenticator(&self) -> &auth::Authenticator {
        &self.inner.authenticator
    }

    /// The platform secret (cached).
    pub async fn secret(&self) -> Result<Arc<PlatformSecret>> {
        self.inner.secrets.get().await
    }

    /// The Dfns client, built on first use from the secret and reused while the secret is.
    pub async fn dfns(&self) -> Result<DfnsClient> {
        if self.inner.dfns_refused.swap(false, Ordering::AcqRel) && self.may_force_refresh() {
            tracing::warn!(
                "Dfns refused the service-account token; re-reading the platform secret"
            );
            self.inner.secrets.invalidate().await;
        }
        let secret = self.secret().await?;
        let mut cached = self.inner.dfns.lock().await;
        if let Some((made_with, client)) = cached.as_ref() {
            if Arc::ptr_eq(made_with, &secret) {
                return Ok(client.clone());
            }
        }
        let signer = KeySigner::from_pkcs8_pem(
            secret.dfns_credential_id.expose_secret(),
            &secret.dfns_private_key_pem,
        )
        .map_err(|e| PlatformError::Internal(format!("Dfns signing key unusable: {e}")))?;
        let mut config = ClientConfig::new(
            SecretString::from(secret.dfns_service_account_token.expose_secret()),
            Some(Arc::new(signer)),
        )
        .with_base_url(self.inner.settings.base.dfns_base_url.as_str())
        .with_rate_limit(self.inner.settings.dfns_rate_limit);
        if let Some(retry) = self.inner.dfns_retry {
            config = config.with_retry(retry);
        }
        let refused = self.inner.dfns_refused.clone();
        config = config.with_on_unauthorized(Arc::new(move || {
            refused.store(true, Ordering::Release);
        }));
        let client = DfnsClient::new(config)?;
        *cached = Some((secret, client.clone()));
        Ok(client)
    }

    fn may_force_refresh(&self) -> bool {
        let mut last = self
            .inner
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

    /// Verifier of Dfns webhook deliveries: the current webhook secret and, during a rotation,
    /// the next. `None` while the secret holds no usable key (the placeholder, or too short):
    /// then no delivery can be told from a forgery.
    pub async fn webhook_verifier(&self) -> Result<Option<WebhookVerifier>> {
        let secret = self.secret().await?;
        let tolerance = self.inner.settings.webhook_tolerance;
        let mut usable = secret
            .usable_webhook_secrets()
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
