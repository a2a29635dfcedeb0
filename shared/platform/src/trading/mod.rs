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
//! | `EXCHANGES` | required | JSON venue → network → asset → `{address, contract?, decimals?}`; or `dev`, the development registry ([`registry::DEFAULT_EXCHANGES`]: placeholder addresses nobody owns), for the local stack and tests only |
//! | `ORDER_CONCURRENCY` | `8` | orders an execution run sends at once (1..=256) |
//! | `ORDER_LEASE_SECONDS` | `300` | how long a run holds an order; a run that died is retried after it (10..=3600) |
//! | `ORDER_BATCH_LIMIT` | `1000` | due orders one run takes on (1..=10000) |
//! | `ORDER_RUN_SECONDS` | `60` | how long a run claims orders (5..=900); set it to the schedule's period. Past it (or 45 s before the invocation's deadline, whichever is first) the run finishes the orders in hand and leaves the rest due for the next run, so runs do not pile up on the Dfns budget and none is cut off holding claims |
//!
//! `EXCHANGES` has no default: unset or empty, the functions that send or authorize transfers to
//! exchanges (trading, operator, order-execution) refuse to start ([`check_at_startup`]) rather
//! than fall back to the development registry, whose deposit addresses nobody owns. The local
//! stack and the tests opt in with `EXCHANGES=dev`.

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
/// The value of `EXCHANGES` that selects the development registry
/// ([`ExchangeRegistry::local_default`]): the local stack's and the tests' explicit opt-in.
pub const DEVELOPMENT_REGISTRY: &str = "dev";
pub const ORDER_CONCURRENCY: &str = "ORDER_CONCURRENCY";
pub const ORDER_LEASE_SECONDS: &str = "ORDER_LEASE_SECONDS";
pub const ORDER_BATCH_LIMIT: &str = "ORDER_BATCH_LIMIT";
pub const ORDER_RUN_SECONDS: &str = "ORDER_RUN_SECONDS";

/// Trading settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TradingConfig {
    pub registry: ExchangeRegistry,
    pub concurrency: usize,
    pub lease: time::Duration,
    pub batch_limit: usize,
    /// How long a run claims orders.
    pub run_for: std::time::Duration,
}

/// A trading setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TradingConfigError {
    #[error(
        "EXCHANGES is not set: set it to this deployment's exchange registry (JSON: venue -> \
         network -> asset -> {{address, contract?, decimals?}}), or to `dev` for the development \
         registry (local stack and tests only: its deposit addresses are placeholders nobody owns)"
    )]
    MissingRegistry,
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{name} must be a whole number from {min} to {max}")]
    Number {
        name: &'static str,
        min: u64,
        max: u64,
    },
}

/// The development settings: the development registry and the default numbers, as
/// `EXCHANGES=dev` with nothing else set gives. For tests and benchmarks that build their
/// configuration in code; a function reading an environment without `EXCHANGES` gets
/// [`TradingConfigError::MissingRegistry`], never this.
impl Default for TradingConfig {
    fn default() -> Self {
        Self {
            registry: ExchangeRegistry::local_default(),
            concurrency: 8,
            lease: time::Duration::seconds(300),
            batch_limit: 1000,
            run_for: std::time::Duration::from_secs(60),
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
            None => return Err(TradingConfigError::MissingRegistry),
            Some(raw) if raw == DEVELOPMENT_REGISTRY => ExchangeRegistry::local_default(),
            Some(raw) => ExchangeRegistry::from_json(&raw)?,
        };
        Ok(Self {
            registry,
            concurrency: number(ORDER_CONCURRENCY, 1, 256, 8)? as usize,
            lease: time::Duration::seconds(number(ORDER_LEASE_SECONDS, 10, 3600, 300)? as i64),
            batch_limit: number(ORDER_BATCH_LIMIT, 1, 10_000, 1000)? as usize,
            run_for: std::time::Duration::from_secs(number(ORDER_RUN_SECONDS, 5, 900, 60)?),
        })
    }

    pub fn from_env() -> Result<Self, TradingConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Whether the registry is the development one (`EXCHANGES=dev`).
    pub fn uses_development_registry(&self) -> bool {
        self.registry == ExchangeRegistry::local_default()
    }
}

/// The container's trading settings as read from the environment on first use, or why they
/// cannot be used.
pub fn settings() -> Result<&'static TradingConfig, &'static TradingConfigError> {
    static CONFIG: OnceLock<Result<TradingConfig, TradingConfigError>> = OnceLock::new();
    CONFIG.get_or_init(TradingConfig::from_env).as_ref()
}

/// The container's trading settings, read from the environment on first use.
pub fn config() -> Result<&'static TradingConfig, PlatformError> {
    settings().map_err(|e| PlatformError::Internal(format!("trading configuration: {e}")))
}

/// For the `main` of a function that uses the trading settings (trading, operator,
/// order-execution), before it serves anything: `Err` with the reason (also logged) when they
/// cannot be used — `EXCHANGES` unset or empty, an invalid registry, a number out of bounds — so
/// the function refuses to start instead of failing every request, or sending funds to addresses
/// nobody owns. The development registry is accepted (it was asked for) with a warning.
pub fn check_at_startup() -> Result<&'static TradingConfig, String> {
    startup_verdict(settings())
}

fn startup_verdict(
    settings: Result<&'static TradingConfig, &'static TradingConfigError>,
) -> Result<&'static TradingConfig, String> {
    match settings {
        Ok(config) => {
            if config.uses_development_registry() {
                tracing::warn!(
                    "EXCHANGES=dev: the development exchange registry, whose deposit addresses \
                     nobody owns; never in production"
                );
            }
            Ok(config)
        }
        Err(error) => {
            let reason = format!("refusing to start: {error}");
            tracing::error!("{reason}");
            Err(reason)
        }
    }
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

    /// A lookup with `EXCHANGES` and `others`.
    fn with_exchanges<'a>(
        exchanges: Option<&'a str>,
        others: &'a [(&'a str, &'a str)],
    ) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            if name == EXCHANGES {
                return exchanges.map(str::to_owned);
            }
            others
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn defaults_and_bounds() {
        let config = TradingConfig::from_lookup(with_exchanges(Some("dev"), &[])).unwrap();
        assert_eq!(config, TradingConfig::default());
        let custom = TradingConfig::from_lookup(with_exchanges(
            Some("dev"),
            &[
                (ORDER_CONCURRENCY, "1"),
                (ORDER_LEASE_SECONDS, "60"),
                (ORDER_RUN_SECONDS, "300"),
            ],
        ))
        .unwrap();
        assert_eq!(
            (
                custom.concurrency,
                custom.lease.whole_seconds(),
                custom.run_for.as_secs()
            ),
            (1, 60, 300)
        );
        for (name, bad) in [
            (ORDER_CONCURRENCY, "0"),
            (ORDER_LEASE_SECONDS, "5"),
            (ORDER_BATCH_LIMIT, "x"),
            (ORDER_RUN_SECONDS, "4"),
            (ORDER_RUN_SECONDS, "901"),
        ] {
            assert!(matches!(
                TradingConfig::from_lookup(with_exchanges(Some("dev"), &[(name, bad)])),
                Err(TradingConfigError::Number { .. })
            ));
        }
        assert!(matches!(
            TradingConfig::from_lookup(with_exchanges(Some("[]"), &[])),
            Err(TradingConfigError::Registry(_))
        ));
    }

    #[test]
    fn without_exchanges_the_settings_are_refused_with_the_reason() {
        for unset in [None, Some(""), Some("  ")] {
            let refused = TradingConfig::from_lookup(with_exchanges(unset, &[]));
            assert_eq!(
                refused,
                Err(TradingConfigError::MissingRegistry),
                "{unset:?}"
            );
        }
        let message = TradingConfigError::MissingRegistry.to_string();
        assert!(message.starts_with("EXCHANGES is not set: "), "{message}");
        assert!(message.contains("`dev`"), "{message}");
        assert!(message.contains("nobody owns"), "{message}");
        // Other settings do not stand in for the registry.
        assert_eq!(
            TradingConfig::from_lookup(with_exchanges(None, &[(ORDER_CONCURRENCY, "4")])),
            Err(TradingConfigError::MissingRegistry)
        );
    }

    #[test]
    fn a_function_refuses_to_start_without_exchanges_and_starts_with_dev_or_a_registry() {
        static MISSING: TradingConfigError = TradingConfigError::MissingRegistry;
        let refusal = startup_verdict(Err(&MISSING)).unwrap_err();
        assert_eq!(
            refusal,
            format!("refusing to start: {}", TradingConfigError::MissingRegistry)
        );
        assert!(refusal.contains("EXCHANGES is not set"), "{refusal}");

        let dev: &'static TradingConfig = Box::leak(Box::new(
            TradingConfig::from_lookup(with_exchanges(Some("dev"), &[])).unwrap(),
        ));
        assert!(startup_verdict(Ok(dev)).is_ok());
    }

    #[test]
    fn dev_is_the_development_registry_only_when_asked_for() {
        let dev = TradingConfig::from_lookup(with_exchanges(Some(" dev "), &[])).unwrap();
        assert_eq!(dev.registry, ExchangeRegistry::local_default());
        assert!(dev.uses_development_registry());
        let names: Vec<&str> = dev.registry.venues().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["Coinbase", "Gemini", "Kraken"]);
        // Not a spelling of it: any other value is parsed as the JSON registry (and refused).
        for other in ["DEV", "development", "\"dev\""] {
            assert!(
                matches!(
                    TradingConfig::from_lookup(with_exchanges(Some(other), &[])),
                    Err(TradingConfigError::Registry(_))
                ),
                "{other}"
            );
        }
    }

    #[test]
    fn a_registry_in_exchanges_is_that_registry() {
        let raw = r#"{"Bitstamp": {"EthereumSepolia": {"ETH": {"address": "0x52908400098527886E0F7030069857D2E4169EE7"}}}}"#;
        let config = TradingConfig::from_lookup(with_exchanges(Some(raw), &[])).unwrap();
        assert_eq!(config.registry, ExchangeRegistry::from_json(raw).unwrap());
        assert!(!config.uses_development_registry());
        let names: Vec<&str> = config.registry.venues().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["Bitstamp"]);
        let venue = config.registry.venue("Bitstamp").unwrap();
        assert_eq!(venue.deposits.len(), 1);
        assert_eq!(venue.deposits[0].asset, "ETH");
        assert!(config.registry.venue("Kraken").is_none());
    }
}
