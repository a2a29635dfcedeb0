//! # platform
//!
//! The client-facing platform's use cases and the glue its Lambda functions share.
//!
//! - [`App`]: everything built once per container (settings, DynamoDB store, EventBridge client,
//!   authenticator, and the Dfns clients of the secrets the function holds ([`SecretsHeld`]),
//!   created lazily and cached).
//! - [`http`]: routes, request ids, the caller's identity, JSON bodies, the one error shape
//!   `{"error":{"code","message","requestId"}}`, a tracing span per request.
//! - Use cases: [`onboarding`] (open or resume an account), [`destinations`] (destination
//!   requests, serialised per client through the store's policy-change slot), [`webhook`] (Dfns
//!   events), [`reconcile`] (the fallback for lost webhooks), [`notify`] (client notifications on
//!   the event bus and in the client's list), [`whitelist`] (the pure whitelist rule).
//!
//! Every state change appends to the client's audit chain with its actor and request id.

pub mod app;
pub mod dfns_budget;
pub mod error;
pub mod http;
pub mod job;
pub mod metrics;
pub mod reporting;
pub mod request_schema;
pub mod settings;

pub use app::{App, AppParts, SecretSource, Secrets, SecretsHeld, StartupError};
pub use error::{PlatformError, Result};
pub use settings::PlatformSettings;

pub mod audit;
pub mod compliance;
pub mod destinations;
pub mod notify;
pub mod onboarding;
pub mod rate_limit;
pub mod reconcile;
pub mod trading;
pub mod webhook;
pub mod webhook_queue;
pub mod whitelist;
pub mod withdrawals;

#[cfg(feature = "testing")]
pub mod testing;
