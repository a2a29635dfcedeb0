//! Flows 4 and 5 (docs/design.md): discretionary trading.
//!
//! - [`registry`]: the exchanges (venues) and their deposit addresses, from configuration.
//! - [`authorizations`]: a client authorizes an exchange → its deposit address goes through the
//!   destination flow ([`crate::destinations`]) → the authorization is active once approved;
//!   revocation stops new orders at once, cancels the exchange's orders still `Scheduled`, and
//!   requests the address's removal.
//! - [`orders`]: the trading desk's orders (create, list, cancel) and its view of a client.
//! - [`execution`]: the scheduled run: claim due orders under a lease, check authorization and
//!   destination, Dfns Transfer Asset with `externalId` = order id (a re-run never sends twice),
//!   bounded concurrency; orders then follow their transfer ([`on_transfer_event`]). An order
//!   claimed before is never ended "not sent" without asking Dfns for its transfer by
//!   `externalId`.
//! - [`preview`]: a dry-run of a transfer against the client's live policies ([`usd`] for the
//!   exact dollar arithmetic).
//!
//! Settings (environment, read once per container by [`config`]):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `EXCHANGES` | built-in local registry ([`registry::DEFAULT_EXCHANGES`]) | JSON venue → network → asset → `{address, contract?, decimals?}` |
//! | `ORDER_CONCURRENCY` | `8` | orders an execution run sends at once (1..=256) |
//! | `ORDER_LEASE_SECONDS` | `300` | how long a run holds an order; a run that died is retried after it (10..=3600) |
//! | `ORDER_BATCH_LIMIT` | `1000` | due orders one run takes on (1..=10000) |

pub mod authorizations;
pub mod execution;
pub mod orders;
pub mod preview;
pub mod registry;
pub mod usd;

use std::sync::OnceLock;

pub use authorizations::{AuthorizationStatus, AuthorizationView, on_destination_resolved};
pub use execution::{ExecutionHooks, Executor, RunReport, on_transfer_event, refresh_in_flight};
pub use registry::{ExchangeRegistry, RegistryError};

use crate::error::PlatformError;

pub const EXCHANGES: &str = "EXCHANGES";
pub const ORDER_CONCURRENCY: &str = "ORDER_CONCURRENCY";
pub const ORDER_LEASE_SECONDS: &str = "ORDER_LEASE_SECONDS";
pub const ORDER_BATCH_LIMIT: &str = "ORDER_BATCH_LIMIT";

/// Trading settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TradingConfig {
    pub registry: ExchangeRegistry,
    pub concurrency: usize,
    pub lease: time::Duration,
    pub batch_limit: usize,
}

/// A trading setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TradingConfigError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{name} must be a whole number from {min} to {max}")]
    Number {
        name: &'static str,
        min: u64,
        max: u64,
    },
}

impl Default for TradingConfig {
    fn default() -> Self {
        Self {
            registry: ExchangeRegistry::local_default(),
            concurrency: 8,
            lease: time::Duration::seconds(300),
            batch_limit: 1000,
        }
    }
}

impl TradingConfig {
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, TradingConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let number = |name: &'static str, min: u64, max: u64, default: u64| match get(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or(TradingConfigError::Number { name, min, max }),
        };
        let registry = match get(EXCHANGES) {
            Some(raw) => ExchangeRegistry::from_json(&raw)?,
            None => ExchangeRegistry::local_default(),
        };
        Ok(Self {
            registry,
            concurrency: number(ORDER_CONCURRENCY, 1, 256, 8)? as usize,
            lease: time::Duration::seconds(number(ORDER_LEASE_SECONDS, 10, 3600, 300)? as i64),
            batch_limit: number(ORDER_BATCH_LIMIT, 1, 10_000, 1000)? as usize,
        })
    }

    pub fn from_env() -> Result<Self, TradingConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

/// The container's trading settings, read from the environment on first use.
pub fn config() -> Result<&'static TradingConfig, PlatformError> {
    static CONFIG: OnceLock<Result<TradingConfig, TradingConfigError>> = OnceLock::new();
    CONFIG
        .get_or_init(TradingConfig::from_env)
        .as_ref()
        .map_err(|e| PlatformError::Internal(format!("trading configuration: {e}")))
}

/// A trading authorization's id (a ULID, canonical upper case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthorizationId(pub ulid::Ulid);

impl<'de> serde::Deserialize<'de> for AuthorizationId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Some(text.as_ref())
            .filter(|t| crate::reporting::query::is_canonical_ulid(t))
            .and_then(|t| ulid::Ulid::from_string(t).ok())
            .map(AuthorizationId)
            .ok_or_else(|| serde::de::Error::custom("not an authorization id"))
    }
}

impl schemars::JsonSchema for AuthorizationId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AuthorizationId".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": crate::reporting::query::ULID_PATTERN,
            "description": "a trading authorization's id"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        let config = TradingConfig::from_lookup(|_| None).unwrap();
        assert_eq!(config, TradingConfig::default());
        let custom = TradingConfig::from_lookup(|name| match name {
            ORDER_CONCURRENCY => Some("1".into()),
            ORDER_LEASE_SECONDS => Some("60".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!((custom.concurrency, custom.lease.whole_seconds()), (1, 60));
        for (name, bad) in [
            (ORDER_CONCURRENCY, "0"),
            (ORDER_LEASE_SECONDS, "5"),
            (ORDER_BATCH_LIMIT, "x"),
        ] {
            assert!(matches!(
                TradingConfig::from_lookup(|n| (n == name).then(|| bad.to_owned())),
                Err(TradingConfigError::Number { .. })
            ));
        }
        assert!(matches!(
            TradingConfig::from_lookup(|n| (n == EXCHANGES).then(|| "[]".to_owned())),
            Err(TradingConfigError::Registry(_))
        ));
    }
}
