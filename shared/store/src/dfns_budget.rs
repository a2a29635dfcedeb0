//! The organisation-wide Dfns request budget (issue 13): one token bucket, in one item, shared
//! by every container that calls Dfns. Dfns limits requests per minute per organisation
//! (docs/dfns.md §8.3), not per container, so the containers must draw from one budget.
//!
//! | item | `pk` | `sk` | attributes |
//! |---|---|---|---|
//! | Dfns request budget | `BUDGET#dfns` | `BUDGET` | `milliTokens`, `refilledAt`, `version` |
//!
//! - `milliTokens`: what is left, in thousandths of a request (so the refill of a few
//!   milliseconds is not rounded away); never negative.
//! - `refilledAt`: epoch milliseconds up to which the refill is counted in `milliTokens`.
//! - `version`: +1 on every write; each write is conditional on the version it read
//!   (`attribute_not_exists(pk)` for the first), so two containers that read the same state
//!   cannot both spend it: the loser re-reads (DynamoDB returns the current item with the
//!   refusal) and tries again.
//!
//! An absent item is a full bucket. The bucket's shape ([`BudgetShape`]: rate and capacity) is
//! not stored: each caller passes its own, from its settings.
//!
//! Callers lease tokens in blocks ([`Store::lease_dfns_budget`]) and spend them locally, so there
//! is one read and one write per block, not per Dfns request. A lease may not take the bucket
//! below the `floor` it names: interactive callers name a reserved floor, background ones zero.
//!
//! Clocks: the refill is counted from each caller's own clock (`now`, passed in). `refilledAt`
//! never moves backwards (a caller whose clock is behind the last writer's counts no refill
//! rather than refilling twice), except from a stored time more than [`MAX_CLOCK_SKEW`] ahead of
//! the caller's clock, which is taken as broken and replaced (so one bad clock cannot stop the
//! refill).

use std::time::Duration;

use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use rand::Rng as _;
use time::OffsetDateTime;

use crate::item::{Item, conditional_failure, epoch_millis, get_n, key, n};
use crate::{Store, StoreError};

/// Partition key of the budget item.
pub const DFNS_BUDGET_PK: &str = "BUDGET#dfns";
/// Sort key of the budget item.
pub const DFNS_BUDGET_SK: &str = "BUDGET";

/// A stored `refilledAt` further ahead of the caller's clock than this is a broken clock.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5);

/// Conditional writes tried per lease before [`StoreError::Contention`].
const LEASE_ATTEMPTS: u32 = 8;

/// The bucket: `per_minute` requests refill it per minute, up to `capacity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetShape {
    pub per_minute: u32,
    pub capacity: u32,
}

/// What one lease asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseAsk {
    /// Take up to this many (the block).
    pub want: u32,
    /// Take nothing unless at least this many are there (what the caller needs now).
    pub at_least: u32,
    /// Leave at least this many in the bucket (a reserve this caller may not use).
    pub floor: u32,
}

/// The answer to a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// This many tokens (from `at_least` to `want`) were taken from the bucket.
    Granted(u32),
    /// Not enough above the floor; at the refill rate, `at_least` will be there after this long
    /// (if nobody else takes them first). Nothing was written.
    Wait(Duration),
}

/// The bucket as of some instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetLevel {
    /// Requests available, refill counted.
    pub tokens: f64,
    /// Writes so far (0: the item does not exist yet).
    pub version: u64,
}

/// The stored state, refilled to `now`.
struct Refilled {
    milli_tokens: i128,
    refilled_at: i128,
    /// `None`: no item yet.
    version: Option<u64>,
}

fn budget_key() -> Item {
    key(DFNS_BUDGET_PK, DFNS_BUDGET_SK)
}

impl BudgetShape {
    fn check(self) -> Result<(), StoreError> {
        if self.per_minute == 0 || self.capacity == 0 {
            return Err(StoreError::InvalidInput {
                reason: format!("a Dfns budget needs a rate and a capacity: {self:?}"),
            });
        }
        Ok(())
    }

    /// `item` (or a full bucket when there is none) with the refill up to `now`.
    fn refill(self, item: Option<&Item>, now: OffsetDateTime) -> Result<Refilled, StoreError> {
        let now = epoch_millis(now);
        let capacity = i128::from(self.capacity) * 1000;
        let Some(item) = item else {
            return Ok(Refilled {
                milli_tokens: capacity,
                refilled_at: now,
                version: None,
            });
        };
        let corrupt = |what: &str| StoreError::Corrupt {
            entity: "Dfns budget",
            key: DFNS_BUDGET_PK.to_owned(),
            reason: format!("{what} missing or not a number"),
        };
        let stored: i128 = get_n(item, "milliTokens").ok_or_else(|| corrupt("milliTokens"))?;
        let stored_at: i128 = get_n(item, "refilledAt").ok_or_else(|| corrupt("refilledAt"))?;
        let version: u64 = get_n(item, "version").ok_or_else(|| corrupt("version"))?;
        let refilled_at = if stored_at > now + MAX_CLOCK_SKEW.as_millis() as i128 {
            now
        } else {
            stored_at.max(now)
        };
        // `per_minute` requests per 60 000 ms = `per_minute / 60` milli-requests per ms.
        let refill = (refilled_at - stored_at).max(0) * i128::from(self.per_minute) / 60;
        Ok(Refilled {
            milli_tokens: (stored.max(0) + refill).min(capacity),
            refilled_at,
            version: Some(version),
        })
    }

    /// How long the refill takes to add `milli` thousandths of a request.
    fn time_to_refill(self, milli: i128) -> Duration {
        let per_minute = i128::from(self.per_minute);
        let millis = (milli.max(0) * 60 + per_minute - 1) / per_minute;
        Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
    }
}

impl Store {
    /// Takes between `ask.at_least` and `ask.want` tokens from the organisation's Dfns budget,
    /// never leaving fewer than `ask.floor`: one strongly consistent read and one conditional
    /// write (more only when another container wrote in between). When fewer than
    /// `at_least` are above the floor, writes nothing and says how long the refill needs.
    ///
    /// [`StoreError::Contention`] after 8 lost races in a row (retryable).
    pub async fn lease_dfns_budget(
        &self,
        shape: BudgetShape,
        ask: LeaseAsk,
        now: OffsetDateTime,
    ) -> Result<Lease, StoreError> {
        shape.check()?;
        if ask.at_least == 0
            || ask.at_least > ask.want
            || u64::from(ask.at_least) + u64::from(ask.floor) > u64::from(shape.capacity)
        {
            return Err(StoreError::InvalidInput {
                reason: format!(
                    "a Dfns budget lease that can never be granted: {ask:?} of {shape:?}"
                ),
            });
        }
        let mut current = self.get_raw(budget_key()).await?;
        for attempt in 1..=LEASE_ATTEMPTS {
            let state = shape.refill(current.as_ref(), now)?;
            let floor = i128::from(ask.floor) * 1000;
            let above_floor = state.milli_tokens - floor;
            let at_least = i128::from(ask.at_least) * 1000;
            if above_floor < at_least {
                return Ok(Lease::Wait(shape.time_to_refill(at_least - above_floor)));
            }
            let granted = i128::from(ask.want).min(above_floor / 1000);
            let update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(budget_key()))
                .update_expression("SET milliTokens = :tokens, refilledAt = :at, version = :next")
                .expression_attribute_values(":tokens", n(state.milli_tokens - granted * 1000))
                .expression_attribute_values(":at", n(state.refilled_at))
                .expression_attribute_values(":next", n(state.version.map_or(1, |v| v + 1)))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            let update = match state.version {
                None => update.condition_expression("attribute_not_exists(pk)"),
                Some(version) => update
                    .condition_expression("version = :version")
                    .expression_attribute_values(":version", n(version)),
            };
            match update.send().await {
                Ok(_) => {
                    return Ok(Lease::Granted(
                        u32::try_from(granted).expect("at most `want`, a u32"),
                    ));
                }
                Err(err) => match conditional_failure(&err) {
                    // Another container wrote first: start again from what it wrote.
                    Some(Some(old)) => current = Some(old),
                    Some(None) => current = self.get_raw(budget_key()).await?,
                    None => return Err(StoreError::aws("UpdateItem", err)),
                },
            }
            tracing::debug!(attempt, "Dfns budget lease lost a race; retrying");
            tokio::time::sleep(race_backoff(attempt)).await;
        }
        Err(StoreError::Contention {
            operation: "lease Dfns request budget",
            attempts: LEASE_ATTEMPTS,
        })
    }

    /// The organisation's Dfns budget as of `now` (refill counted), without taking anything.
    pub async fn dfns_budget_level(
        &self,
        shape: BudgetShape,
        now: OffsetDateTime,
    ) -> Result<BudgetLevel, StoreError> {
        shape.check()?;
        let item = self.get_raw(budget_key()).await?;
        let state = shape.refill(item.as_ref(), now)?;
        Ok(BudgetLevel {
            tokens: state.milli_tokens as f64 / 1000.0,
            version: state.version.unwrap_or(0),
        })
    }
}

/// Full jitter, up to 4, 8, 16 … 256 ms: racers that lost together do not collide again.
fn race_backoff(attempt: u32) -> Duration {
    let ceiling = 2u64 << attempt.min(7);
    Duration::from_millis(rand::thread_rng().gen_range(0..=ceiling))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
            + time::Duration::milliseconds(ms)
    }

    fn stored(milli_tokens: i128, refilled_at: OffsetDateTime, version: u64) -> Item {
        let mut item = budget_key();
        item.insert("milliTokens".into(), n(milli_tokens));
        item.insert("refilledAt".into(), n(epoch_millis(refilled_at)));
        item.insert("version".into(), n(version));
        item
    }

    const SHAPE: BudgetShape = BudgetShape {
        per_minute: 600, // 10 a second
        capacity: 100,
    };

    #[test]
    fn refill_is_proportional_to_elapsed_time_and_capped() {
        let item = stored(0, at(0), 3);
        let state = SHAPE.refill(Some(&item), at(250)).unwrap();
        assert_eq!(state.milli_tokens, 2_500);
        assert_eq!(state.refilled_at, epoch_millis(at(250)));
        assert_eq!(state.version, Some(3));
        let state = SHAPE.refill(Some(&item), at(3_600_000)).unwrap();
        assert_eq!(state.milli_tokens, 100_000, "never past capacity");
        let state = SHAPE.refill(None, at(0)).unwrap();
        assert_eq!((state.milli_tokens, state.version), (100_000, None));
    }

    #[test]
    fn a_clock_behind_the_last_writer_counts_no_refill_and_a_broken_one_is_replaced() {
        let item = stored(1_000, at(1_000), 1);
        let behind = SHAPE.refill(Some(&item), at(400)).unwrap();
        assert_eq!(behind.milli_tokens, 1_000);
        assert_eq!(
            behind.refilled_at,
            epoch_millis(at(1_000)),
            "never backwards"
        );
        let far_ahead = stored(1_000, at(60_000), 1);
        let state = SHAPE.refill(Some(&far_ahead), at(0)).unwrap();
        assert_eq!(state.refilled_at, epoch_millis(at(0)));
        assert_eq!(state.milli_tokens, 1_000);
    }

    #[test]
    fn waits_are_what_the_refill_needs_rounded_up() {
        assert_eq!(SHAPE.time_to_refill(1_000), Duration::from_millis(100));
        assert_eq!(SHAPE.time_to_refill(1), Duration::from_millis(1));
        assert_eq!(SHAPE.time_to_refill(0), Duration::ZERO);
    }
}
