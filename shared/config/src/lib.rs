//! Configuration of every platform process: settings from the environment, AWS clients built once
//! per container, and the platform's three secrets read from Secrets Manager.
//!
//! - [`Settings`]: `TABLE_NAME`; the secrets this process holds, each a name or ARN and each
//!   optional (`DFNS_SIGNING_SECRET_ID`, `DFNS_READ_SECRET_ID`, `DFNS_WEBHOOK_SECRET_ID`);
//!   `DFNS_BASE_URL` (default `https://api.dfns.io`; https except on loopback);
//!   `SECRET_REFRESH_SECONDS` (default 300).
//! - [`aws`]: one `SdkConfig` per process. Endpoints for local runs come from the SDK's standard
//!   variables (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SECRETS_MANAGER`, …): no code here
//!   knows about local stand-ins.
//! - [`SecretCache`]: one of the three secrets ([`SigningCredential`], [`ReadCredential`],
//!   [`WebhookSecrets`]), fetched on first use (not at start-up, so a cold start does not pay for
//!   it unless it needs it), cached per container and re-read after the refresh interval so a
//!   rotated value is picked up. Every field is a [`secrecy::SecretString`]; neither `Debug` nor
//!   `Display` shows secret material.

pub mod aws;
mod secret;
mod settings;

pub use secret::{
    FIELD_CREDENTIAL_ID, FIELD_PRIVATE_KEY_PEM, FIELD_READ_ONLY_TOKEN, FIELD_SERVICE_ACCOUNT_TOKEN,
    FIELD_WEBHOOK_SECRET, FIELD_WEBHOOK_SECRET_NEXT, MIN_WEBHOOK_SECRET_BYTES, ReadCredential,
    SecretCache, SecretError, SecretKind, SigningCredential, WEBHOOK_SECRET_PLACEHOLDER,
    WebhookSecrets, json as secret_json, webhook_secret_is_usable,
};
pub use settings::{
    ConfigError, DFNS_READ_SECRET_ID, DFNS_SIGNING_SECRET_ID, DFNS_WEBHOOK_SECRET_ID, SecretIds,
    Settings,
};
