//! The organisation's request rate limit (docs/dfns.md §8.3): Dfns counts every API request of the
//! organisation against one limit in requests per minute and answers **429** over it. Off by
//! default; the control API sets it (`PUT /emulator/rate-limit`) and clears it (`DELETE`).
//!
//! Modelled as one token bucket in wall time (not the emulated clock: moving the clock must not
//! refill it): `requestsPerMinute` refill, capacity `burst` (Dfns does not publish one; default a
//! tenth of the rate, at least 1, as strict as the platform's default `DFNS_ORG_BURST`). Each Dfns
//! API request takes one token when it reaches Dfns (after injected faults, before auth: a
//! request refused for its token still counts, as at Dfns). Without a token it is answered 429
//! with `Retry-After` in whole seconds (rounded up, at least 1) until one is back, and takes none.
//!
//! Every Dfns API request is counted (`requests` in `GET /emulator/stats`), with or without a
//! limit, so a benchmark can read how many requests it made and how many were answered 429.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Request, State as AxState};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::errors::{ApiError, ApiResult};
use crate::state::SharedApp;

/// `PUT /emulator/rate-limit` body.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitSpec {
    pub requests_per_minute: u32,
    #[serde(default)]
    pub burst: Option<u32>,
}

/// The limit in force and its bucket.
#[derive(Debug)]
struct Bucket {
    per_minute: u32,
    burst: u32,
    tokens: f64,
    refilled_at: Instant,
}

impl Bucket {
    fn new(spec: RateLimitSpec, now: Instant) -> ApiResult<Self> {
        if spec.requests_per_minute == 0 {
            return Err(ApiError::bad_request(
                "requestsPerMinute must be at least 1 (DELETE /emulator/rate-limit turns it off)",
            ));
        }
        let burst = spec.burst.unwrap_or((spec.requests_per_minute / 10).max(1));
        if burst == 0 {
            return Err(ApiError::bad_request("burst must be at least 1"));
        }
        Ok(Self {
            per_minute: spec.requests_per_minute,
            burst,
            tokens: f64::from(burst),
            refilled_at: now,
        })
    }

    fn per_second(&self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }

    /// Takes one token at `now`, or says how long until one is back.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second()).min(f64::from(self.burst));
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.per_second(),
            ))
        }
    }
}

/// The org's limit (if any) and what it saw since the emulator started.
#[derive(Debug, Default)]
pub struct RateLimiter {
    bucket: Mutex<Option<Bucket>>,
    requests: AtomicU64,
    answered_429: AtomicU64,
}

impl RateLimiter {
    /// Sets the limit (a full bucket); answers it as JSON.
    pub fn set(&self, spec: RateLimitSpec) -> ApiResult<Value> {
        let bucket = Bucket::new(spec, Instant::now())?;
        let shown = settings_json(&bucket);
        *self.bucket.lock().unwrap_or_else(|p| p.into_inner()) = Some(bucket);
        Ok(shown)
    }

    pub fn clear(&self) {
        *self.bucket.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Counts one request reaching Dfns at `now`: `Err(retry after)` when it is over the limit.
    fn admit(&self, now: Instant) -> Result<(), Duration> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let verdict = bucket.as_mut().map_or(Ok(()), |b| b.take(now));
        if verdict.is_err() {
            self.answered_429.fetch_add(1, Ordering::Relaxed);
        }
        verdict
    }

    /// Dfns API requests received since start (answered 429 or not).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// `{"requestsPerMinute","burst"}` or `null` when off, and `"answered429"` since start.
    pub fn to_json(&self) -> Value {
        let bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        json!({
            "limit": bucket.as_ref().map(settings_json),
            "answered429": self.answered_429.load(Ordering::Relaxed),
        })
    }
}

fn settings_json(bucket: &Bucket) -> Value {
    json!({ "requestsPerMinute": bucket.per_minute, "burst": bucket.burst })
}

/// Middleware on the Dfns routes: counts the request, answers 429 over the limit.
pub async fn enforce(AxState(app): AxState<SharedApp>, request: Request, next: Next) -> Response {
    match app.rate_limit.admit(Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let mut error = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests: rate limit exceeded",
            );
            error.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
            error.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(requests_per_minute: u32, burst: Option<u32>) -> RateLimitSpec {
        RateLimitSpec {
            requests_per_minute,
            burst,
        }
    }

    #[test]
    fn a_full_bucket_then_the_refill_rate_and_the_wait_until_the_next_token() {
        let t0 = Instant::now();
        // 120/min = 2 per second, 3 at once.
        let mut bucket = Bucket::new(spec(120, Some(3)), t0).unwrap();
        for _ in 0..3 {
            assert_eq!(bucket.take(t0), Ok(()));
        }
        let wait = bucket.take(t0).unwrap_err();
        assert!(
            (wait.as_secs_f64() - 0.5).abs() < 1e-9,
            "half a second to the next token: {wait:?}"
        );
        // A refused request takes nothing: half a second later exactly one more goes.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(bucket.take(t1), Ok(()));
        assert!(bucket.take(t1).is_err());
        // Idle for a minute: the bucket holds its burst, not a minute's worth.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(bucket.take(t2), Ok(()));
        }
        assert!(bucket.take(t2).is_err());
    }

    #[test]
    fn over_a_minute_it_admits_the_rate_plus_the_burst() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(spec(1000, None), t0).unwrap();
        assert_eq!(bucket.burst, 100, "default burst: a tenth of the rate");
        // One request every millisecond for a minute: 60,000 asked.
        let admitted = (0..60_000u64)
            .filter(|ms| bucket.take(t0 + Duration::from_millis(*ms)).is_ok())
            .count();
        assert!(
            (1099..=1100).contains(&admitted),
            "1000/min + 100 of burst, got {admitted}"
        );
    }

    #[test]
    fn counts_every_request_and_each_429() {
        let limiter = RateLimiter::default();
        let now = Instant::now();
        assert!(limiter.admit(now).is_ok(), "no limit: everything goes");
        limiter.set(spec(60, Some(1))).unwrap();
        assert!(limiter.admit(now).is_ok());
        let wait = limiter.admit(now).unwrap_err();
        assert!(wait <= Duration::from_secs(1));
        assert_eq!(limiter.requests(), 3);
        assert_eq!(limiter.to_json()["answered429"], 1);
        assert_eq!(
            limiter.to_json()["limit"],
            json!({"requestsPerMinute": 60, "burst": 1})
        );
        limiter.clear();
        assert!(limiter.admit(now).is_ok());
        assert_eq!(limiter.to_json()["limit"], Value::Null);
        assert!(limiter.set(spec(0, None)).is_err());
        assert!(limiter.set(spec(10, Some(0))).is_err());
    }
}
