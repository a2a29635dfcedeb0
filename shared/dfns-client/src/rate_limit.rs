//! Client-side limits: a token bucket shared by every clone of the client (one per container),
//! and the [`RequestBudget`] a client may also await, shared beyond the container (the
//! organisation's Dfns quota, spread across every container that calls Dfns).

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::config::RateLimit;

/// Requests one attempt of a call sends: a signed call is three (init, `/auth/action`, the call,
/// docs/dfns.md §8.3), any other one.
pub const SIGNED_CALL_COST: u32 = 3;

/// A budget of Dfns requests shared beyond this client, e.g. the organisation's quota shared by
/// every container through a store (the platform's is `platform::dfns_budget`).
///
/// The client awaits [`RequestBudget::acquire`] before each attempt, for every request the attempt
/// will send ([`SIGNED_CALL_COST`] for a signed call, 1 otherwise, and 1 more for each retry of a
/// signing step), before the per-container [`RateLimit`] spaces the requests themselves. A
/// refusal is answered to the caller as a Dfns 429 would be (retried with backoff inside the
/// call's deadline, then [`crate::Error::RetriesExhausted`] with a 429), and nothing is sent. The
/// client also stops waiting when the call's deadline passes.
pub trait RequestBudget: Send + Sync + fmt::Debug {
    /// Waits until `cost` requests may be sent (`Ok`), or refuses: the budget will not have them
    /// within the wait it allows.
    fn acquire(&self, cost: u32) -> BoxFuture<'_, Result<(), BudgetExhausted>>;
}

/// The budget cannot grant the requests soon enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the Dfns request budget is spent; retry in {retry_after:?}")]
pub struct BudgetExhausted {
    /// When asking again may succeed (becomes the 429's `Retry-After`).
    pub retry_after: Duration,
}

#[derive(Debug)]
pub(crate) struct TokenBucket {
    per_second: f64,
    burst: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// May go negative: each waiter reserves its token up front, so waiters are served in order
    /// and none is starved.
    tokens: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    pub(crate) fn new(limit: RateLimit) -> Self {
        let burst = f64::from(limit.burst.max(1));
        Self {
            per_second: f64::from(limit.requests_per_minute.max(1)) / 60.0,
            burst,
            state: Mutex::new(State {
                tokens: burst,
                refilled_at: Instant::now(),
            }),
        }
    }

    /// Takes one token, waiting until it is available.
    pub(crate) async fn acquire(&self) {
        let wait = self.reserve();
        if !wait.is_zero() {
            tracing::debug!(wait_ms = wait.as_millis() as u64, "client-side rate limit");
            tokio::time::sleep(wait).await;
        }
    }

    fn reserve(&self) -> Duration {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        let elapsed = now.duration_since(state.refilled_at).as_secs_f64();
        state.tokens = (state.tokens + elapsed * self.per_second).min(self.burst);
        state.refilled_at = now;
        state.tokens -= 1.0;
        if state.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-state.tokens / self.per_second)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_is_free_then_requests_are_spaced_at_the_rate() {
        let bucket = TokenBucket::new(RateLimit {
            requests_per_minute: 600, // 10/s
            burst: 5,
        });
        let start = Instant::now();
        for _ in 0..5 {
            bucket.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        for _ in 0..10 {
            bucket.acquire().await;
        }
        // 10 more tokens at 10/s.
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(990) && elapsed <= Duration::from_millis(1010),
            "{elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_waiters_share_one_bucket() {
        let bucket = std::sync::Arc::new(TokenBucket::new(RateLimit {
            requests_per_minute: 60, // 1/s
            burst: 1,
        }));
        let start = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let bucket = bucket.clone();
                tokio::spawn(async move { bucket.acquire().await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        // First is free, the other three wait 1, 2 and 3 seconds.
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_secs(3) && elapsed < Duration::from_millis(3100),
            "{elapsed:?}"
        );
    }
}
