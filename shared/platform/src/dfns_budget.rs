//! The organisation-wide Dfns request budget (issue 13).
//!
//! Dfns limits requests per minute per organisation (docs/dfns.md §8.3), whatever the number of
//! containers calling it. Each Dfns client still spaces its own container's requests
//! (`DFNS_REQUESTS_PER_MINUTE`, `DFNS_BURST` in `settings.rs`), but the organisation's quota is
//! one token bucket in the table (`store::dfns_budget`, item `BUDGET#dfns`) that every container
//! draws from before it sends anything: a [`DfnsBudget`], attached to the function's Dfns clients
//! by [`crate::App::from_env`], which every attempt of a Dfns call awaits
//! ([`dfns_client::RequestBudget`]: 3 requests for a signed call, 1 for any other).
//!
//! **Leases.** A container does not write the item for each request: it leases a block of
//! [`BudgetSettings::lease`] tokens (one strongly consistent read and one conditional write) and
//! spends them locally; tasks of one container queue for its block, and only one of them asks
//! the table at a time.
//!
//! **Priority.** Two classes ([`Priority`]): `Background` (order execution, the reconciler: their
//! `main` says so with [`crate::App::with_dfns_priority`]) may take the bucket down to zero;
//! `Interactive` (every other function: client and operator page loads, webhook handling) may not
//! take it below a reserved floor, [`BudgetSettings::reserve_percent`] of its capacity. So
//! however many reporting containers run, the reserve is there for an order run at once, and
//! while background work keeps the bucket below the floor the whole refill goes to it.
//!
//! **Waiting.** An acquisition waits for the refill (as long as the bucket says it needs, polled
//! with jitter) for at most [`BudgetSettings::max_wait`], and the client stops waiting at its
//! call's deadline. Past that it is refused, and the client answers the call exactly as it answers
//! a Dfns 429 (retried with backoff within the call's deadline, then
//! `RetriesExhausted` with status 429, which the HTTP layer answers 429 "throttled"), without
//! sending anything. Dfns' own 429s are handled as before.
//!
//! **Overshoot bound.** The bucket itself never grants more than `capacity + rate × T` tokens in
//! any window of `T`: every grant is a conditional write on the version it read, so no two
//! containers spend the same tokens (the store's tests race them). Requests *sent* can exceed
//! that only by tokens leased before the window and spent inside it. A container leases only
//! when it holds fewer than the 1 to 3 requests it needs (so at most 2), and a lease brings at
//! most `max(lease, 3)`: it never holds more than `lease + 2` unspent (for `lease ≥ 3`). So in
//! any window of `T`, across `N` containers:
//!
//! ```text
//! sent ≤ capacity + rate × T + N × (lease + 2)      (defaults: 100 + 1000/min × T + N × 12)
//! ```
//!
//! The same `N × (lease + 2)` bounds how far interactive containers can dig into the reserve
//! (with tokens leased while the bucket was above the floor). Tokens leased by a container that
//! then stops (frozen or recycled by Lambda) are never spent: that errs on the safe side. To stay
//! under Dfns' quota in every minute, not just on average, set `DFNS_ORG_REQUESTS_PER_MINUTE`
//! and `DFNS_ORG_BURST` that much below it; a Dfns 429 is retried in any case.
//!
//! **If the table fails** (throttled, unreachable, denied), the container sends without the shared
//! budget for [`FAIL_OPEN_FOR`] and counts [`DFNS_BUDGET_UNAVAILABLE`]: the per-container limit and
//! Dfns' own 429s still apply, and a budget outage must not stop order execution. Repeated lost
//! races are not a failure: the acquisition waits and asks again.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `DFNS_ORG_REQUESTS_PER_MINUTE` | `1000` | the organisation's Dfns requests per minute, shared by every container (`0`: no shared budget) |
//! | `DFNS_ORG_BURST` | a tenth of the rate, at least 10 | the bucket's capacity: requests the whole organisation may send at once |
//! | `DFNS_BACKGROUND_RESERVE_PERCENT` | `30` | share of the capacity only order execution and the reconciler may use |
//! | `DFNS_BUDGET_LEASE` | `10` | tokens a container leases at once (its overshoot) |
//! | `DFNS_BUDGET_MAX_WAIT_MS` | `5000` | longest wait for tokens before a call is answered as throttled |
//!
//! Only [`crate::App::from_env`] (the deployed functions) reads these; apps built from parts
//! (tests, the local stack) have no shared budget unless they attach one
//! ([`crate::App::with_dfns_budget`]).

use std::sync::Arc;
use std::time::Duration;

use dfns_client::{BudgetExhausted, RequestBudget, SIGNED_CALL_COST};
use futures::future::BoxFuture;
use platform_config::ConfigError;
use store::Store;
use store::dfns_budget::{BudgetShape, Lease, LeaseAsk};
use tokio::time::Instant;

pub const DFNS_ORG_REQUESTS_PER_MINUTE: &str = "DFNS_ORG_REQUESTS_PER_MINUTE";
pub const DFNS_ORG_BURST: &str = "DFNS_ORG_BURST";
pub const DFNS_BACKGROUND_RESERVE_PERCENT: &str = "DFNS_BACKGROUND_RESERVE_PERCENT";
pub const DFNS_BUDGET_LEASE: &str = "DFNS_BUDGET_LEASE";
pub const DFNS_BUDGET_MAX_WAIT_MS: &str = "DFNS_BUDGET_MAX_WAIT_MS";

/// Metric: a Dfns call's requests were refused by the shared budget (answered as throttled).
pub const DFNS_BUDGET_REFUSED: &str = "DfnsBudgetRefused";
/// Metric: the shared budget's item could not be read or written; the container sends without it
/// for [`FAIL_OPEN_FOR`].
pub const DFNS_BUDGET_UNAVAILABLE: &str = "DfnsBudgetUnavailable";

/// How long a container sends without the shared budget after the table failed it.
pub const FAIL_OPEN_FOR: Duration = Duration::from_secs(30);

/// Shortest pause between two asks of the table while waiting.
const MIN_POLL: Duration = Duration::from_millis(20);

/// Which share of the budget a function may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Work that must not be starved (order execution, the reconciler): may use the whole bucket.
    Background,
    /// Everything else (page loads, webhook handling): may not use the reserve.
    Interactive,
}

/// The shared budget's settings (module docs: the variables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetSettings {
    /// Refill rate: the organisation's requests per minute.
    pub per_minute: u32,
    /// Bucket capacity.
    pub capacity: u32,
    /// Percentage of `capacity` reserved for [`Priority::Background`].
    pub reserve_percent: u32,
    /// Tokens leased at once.
    pub lease: u32,
    /// Longest wait for tokens per acquisition.
    pub max_wait: Duration,
}

impl BudgetSettings {
    /// From the environment; `None` when `DFNS_ORG_REQUESTS_PER_MINUTE` is `0`.
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From any variable source (tests pass a map).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ConfigError> {
        let number = |name: &'static str, min: u32, max: u32| -> Result<Option<u32>, ConfigError> {
            match lookup(name).map(|raw| raw.trim().to_owned()) {
                None => Ok(None),
                Some(raw) if raw.is_empty() => Ok(None),
                Some(raw) => match raw.parse::<u32>() {
                    Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                    _ => Err(ConfigError::Invalid {
                        name,
                        reason: format!("must be a whole number from {min} to {max}"),
                    }),
                },
            }
        };
        let per_minute = number(DFNS_ORG_REQUESTS_PER_MINUTE, 0, 1_000_000)?.unwrap_or(1000);
        if per_minute == 0 {
            return Ok(None);
        }
        let settings = Self {
            per_minute,
            capacity: number(DFNS_ORG_BURST, 1, 1_000_000)?.unwrap_or((per_minute / 10).max(10)),
            reserve_percent: number(DFNS_BACKGROUND_RESERVE_PERCENT, 0, 90)?.unwrap_or(30),
            lease: number(DFNS_BUDGET_LEASE, 1, 1000)?.unwrap_or(10),
            max_wait: Duration::from_millis(u64::from(
                number(DFNS_BUDGET_MAX_WAIT_MS, 0, 60_000)?.unwrap_or(5000),
            )),
        };
        let usable = settings.capacity - settings.floor(Priority::Interactive);
        if usable < SIGNED_CALL_COST {
            return Err(ConfigError::Invalid {
                name: DFNS_ORG_BURST,
                reason: format!(
                    "leaves {usable} request(s) above the background reserve; a signed call needs {SIGNED_CALL_COST}"
                ),
            });
        }
        Ok(Some(settings))
    }

    /// The bucket's rate and capacity.
    pub fn shape(&self) -> BudgetShape {
        BudgetShape {
            per_minute: self.per_minute,
            capacity: self.capacity,
        }
    }

    /// Tokens a caller of `priority` must leave in the bucket.
    pub fn floor(&self, priority: Priority) -> u32 {
        match priority {
            Priority::Background => 0,
            Priority::Interactive => {
                let reserved = u64::from(self.capacity) * u64::from(self.reserve_percent);
                u32::try_from(reserved.div_ceil(100)).unwrap_or(self.capacity)
            }
        }
    }
}

/// One container's handle on the shared budget, for one [`Priority`]. Cheap to clone; clones
/// share the tokens leased.
#[derive(Clone)]
pub struct DfnsBudget {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    settings: BudgetSettings,
    priority: Priority,
    local: tokio::sync::Mutex<Local>,
}

/// What this container holds.
#[derive(Default)]
struct Local {
    /// Leased from the bucket and not spent yet.
    tokens: u32,
    /// The table failed: send without the shared budget until then.
    bypass_until: Option<Instant>,
}

impl std::fmt::Debug for DfnsBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DfnsBudget")
            .field("table", &self.inner.store.table_name())
            .field("settings", &self.inner.settings)
            .field("priority", &self.inner.priority)
            .finish()
    }
}

impl DfnsBudget {
    pub fn new(store: Store, settings: BudgetSettings, priority: Priority) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                settings,
                priority,
                local: tokio::sync::Mutex::new(Local::default()),
            }),
        }
    }

    /// The budget the environment configures, for `priority` callers; `None` when it is off.
    pub fn from_env(store: &Store, priority: Priority) -> Result<Option<Self>, ConfigError> {
        Ok(
            BudgetSettings::from_env()?
                .map(|settings| Self::new(store.clone(), settings, priority)),
        )
    }

    /// The same bucket for callers of another priority (tokens are leased afresh).
    pub fn with_priority(&self, priority: Priority) -> Self {
        Self::new(self.inner.store.clone(), self.inner.settings, priority)
    }

    pub fn priority(&self) -> Priority {
        self.inner.priority
    }

    pub fn settings(&self) -> &BudgetSettings {
        &self.inner.settings
    }

    /// This budget as a Dfns client takes it ([`dfns_client::ClientConfig::with_budget`]).
    pub fn for_client(&self) -> Arc<dyn RequestBudget> {
        Arc::new(self.clone())
    }

    /// Takes `cost` tokens, leasing a block from the table when this container holds too few,
    /// and waiting for the refill up to [`BudgetSettings::max_wait`].
    pub async fn take(&self, cost: u32) -> Result<(), BudgetExhausted> {
        let inner = &*self.inner;
        let settings = inner.settings;
        let deadline = Instant::now() + settings.max_wait;
        let refused = |retry_after: Duration| {
            crate::metrics::count(DFNS_BUDGET_REFUSED);
            tracing::info!(
                cost,
                priority = ?inner.priority,
                retry_after_ms = retry_after.as_millis() as u64,
                "Dfns request budget refused"
            );
            Err(BudgetExhausted { retry_after })
        };
        // Another task of this container is waiting for the bucket: queue behind it.
        let Ok(mut local) = tokio::time::timeout_at(deadline, inner.local.lock()).await else {
            return refused(settings.max_wait.max(MIN_POLL));
        };
        loop {
            if local
                .bypass_until
                .is_some_and(|until| Instant::now() < until)
            {
                return Ok(());
            }
            if local.tokens >= cost {
                local.tokens -= cost;
                return Ok(());
            }
            let need = cost - local.tokens;
            let ask = LeaseAsk {
                want: need.max(settings.lease),
                at_least: need,
                floor: settings.floor(inner.priority),
            };
            let pause = match inner
                .store
                .lease_dfns_budget(settings.shape(), ask, time::OffsetDateTime::now_utc())
                .await
            {
                Ok(Lease::Granted(tokens)) => {
                    local.tokens += tokens;
                    continue;
                }
                Ok(Lease::Wait(wait)) => wait.max(MIN_POLL),
                Err(store::StoreError::Contention { .. }) => MIN_POLL,
                Err(error) => {
                    crate::metrics::count(DFNS_BUDGET_UNAVAILABLE);
                    tracing::error!(
                        %error,
                        bypass_s = FAIL_OPEN_FOR.as_secs(),
                        "Dfns request budget unavailable; sending without it"
                    );
                    local.bypass_until = Some(Instant::now() + FAIL_OPEN_FOR);
                    return Ok(());
                }
            };
            if Instant::now() + pause > deadline {
                return refused(pause);
            }
            // Up to a fifth later, so containers told the same wait do not ask all at once.
            let jitter = pause.mul_f64(unit_random() * 0.2);
            tokio::time::sleep_until((Instant::now() + pause + jitter).min(deadline)).await;
        }
    }
}

/// A number in [0, 1) for jitter (the standard library's per-process random hash keys; no
/// dependency for something this small).
fn unit_random() -> f64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

impl RequestBudget for DfnsBudget {
    fn acquire(&self, cost: u32) -> BoxFuture<'_, Result<(), BudgetExhausted>> {
        Box::pin(self.take(cost))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Option<BudgetSettings>, ConfigError> {
        let vars: std::collections::HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        BudgetSettings::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_share_dfns_quota_with_a_30_percent_background_reserve() {
        let s = settings(&[]).unwrap().unwrap();
        assert_eq!(
            s,
            BudgetSettings {
                per_minute: 1000,
                capacity: 100,
                reserve_percent: 30,
                lease: 10,
                max_wait: Duration::from_secs(5),
            }
        );
        assert_eq!(s.floor(Priority::Interactive), 30);
        assert_eq!(s.floor(Priority::Background), 0);
        assert_eq!(
            s.shape(),
            BudgetShape {
                per_minute: 1000,
                capacity: 100
            }
        );
    }

    #[test]
    fn zero_turns_the_shared_budget_off_and_the_burst_follows_the_rate() {
        assert_eq!(
            settings(&[(DFNS_ORG_REQUESTS_PER_MINUTE, "0")]).unwrap(),
            None
        );
        let trial = settings(&[(DFNS_ORG_REQUESTS_PER_MINUTE, "100")])
            .unwrap()
            .unwrap();
        assert_eq!(
            (trial.capacity, trial.floor(Priority::Interactive)),
            (10, 3)
        );
        let custom = settings(&[
            (DFNS_ORG_REQUESTS_PER_MINUTE, "600"),
            (DFNS_ORG_BURST, "45"),
            (DFNS_BACKGROUND_RESERVE_PERCENT, "50"),
            (DFNS_BUDGET_LEASE, "4"),
            (DFNS_BUDGET_MAX_WAIT_MS, "250"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(custom.capacity, 45);
        assert_eq!(custom.floor(Priority::Interactive), 23, "rounded up");
        assert_eq!(custom.lease, 4);
        assert_eq!(custom.max_wait, Duration::from_millis(250));
    }

    #[test]
    fn unusable_values_are_refused_naming_the_variable() {
        for (name, value) in [
            (DFNS_ORG_REQUESTS_PER_MINUTE, "-1"),
            (DFNS_ORG_REQUESTS_PER_MINUTE, "lots"),
            (DFNS_ORG_BURST, "0"),
            (DFNS_BACKGROUND_RESERVE_PERCENT, "95"),
            (DFNS_BUDGET_LEASE, "0"),
            (DFNS_BUDGET_MAX_WAIT_MS, "600000"),
        ] {
            assert!(
                matches!(settings(&[(name, value)]), Err(ConfigError::Invalid { name: n, .. }) if n == name),
                "{name}={value}"
            );
        }
        // 4 of 5 reserved leaves 1: an interactive caller could never sign a call.
        assert!(matches!(
            settings(&[
                (DFNS_ORG_BURST, "5"),
                (DFNS_BACKGROUND_RESERVE_PERCENT, "80")
            ]),
            Err(ConfigError::Invalid {
                name: DFNS_ORG_BURST,
                ..
            })
        ));
    }
}
