//! Configuration of every platform process: settings from the environment, AWS clients built once
//! per container, and the platform secret read from Secrets Manager.
//!
//! - [`Settings`]: `TABLE_NAME`, `PLATFORM_SECRET_ID` (name or ARN), `DFNS_BASE_URL` (default
//!   `https://api.dfns.io`), `SECRET_REFRESH_SECONDS` (default 300).
//! - [`aws`]: one `SdkConfig` per process. Endpoints for local runs come from the SDK's standard
//!   variables (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SECRETS_MANAGER`, …): no code here
//!   knows about local stand-ins.
//! - [`SecretCache`] / [`PlatformSecret`]: the Dfns credentials, fetched on first use (not at
//!   start-up, so a cold start does not pay for it unless it needs it), cached per container and
//!   re-read after the refresh interval so a rotated token is picked up. Every field is a
//!   [`secrecy::SecretString`]; neither `Debug` nor `Display` shows secret material.

pub mod aws;
mod secret;
mod settings;

pub use secret::{
    FIELD_WEBHOOK_SECRET_NEXT, MIN_WEBHOOK_SECRET_BYTES, PlatformSecret, SecretCache, SecretError,
    WEBHOOK_SECRET_PLACEHOLDER,
};
pub use settings::{ConfigError, Settings};

/// What a function's `main` needs, built once: settings, clients and the secret cache.
#[derive(Debug, Clone)]
pub struct Platform {
    pub settings: Settings,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub secrets: std::sync::Arc<SecretCache>,
}

impl Platform {
    /// Reads the environment and builds the clients. Makes no network call: the secret is
    /// fetched on first use.
    pub async fn load() -> Result<Self, ConfigError> {
        let settings = Settings::from_env()?;
        let secrets = SecretCache::new(
            aws::secrets_manager_client().await,
            settings.platform_secret_id.clone(),
            settings.secret_refresh,
        );
        Ok(Self {
            dynamodb: aws::dynamodb_client().await,
            secrets: std::sync::Arc::new(secrets),
            settings,
        })
    }
}
