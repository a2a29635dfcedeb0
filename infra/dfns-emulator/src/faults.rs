//! Fault injection, from seeded generators so a test sees the same sequence for the same order of
//! requests and deliveries.
//!
//! - **API faults** (control API `POST /emulator/faults`): per route pattern and method, at a
//!   rate. A fault adds latency and/or answers 429 (with `Retry-After`), 500 or 503 before the
//!   request reaches auth, as a gateway in front of Dfns would.
//! - **Webhook delivery faults** (control API `PUT /emulator/webhook-faults`): each delivery
//!   attempt may be dropped (it never reaches the receiver: the attempt fails as a connection
//!   error and is retried on the retry schedule, with a new event id and `retryOf`), duplicated
//!   (the same body and signature posted twice), delayed by a random time before it is posted (so
//!   later events overtake earlier ones), or have its answer lost (the receiver got it, but the
//!   attempt is recorded as a timeout and retried, as when an answer does not come back in time).
//!
//! Both count what they injected ([`FaultCounts`], [`WebhookFaultCounts`]), for `GET
//! /emulator/stats`.

use axum::extract::{Request, State as AxState};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::errors::{ApiError, ApiResult};
use crate::ids;
use crate::state::SharedApp;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSpec {
    pub path_pattern: String,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
    pub rate: f64,
    #[serde(default)]
    pub retry_after_seconds: Option<u64>,
    #[serde(default)]
    pub latency_ms: Option<u64>,
    #[serde(default)]
    pub seed: Option<u64>,
}

#[derive(Debug)]
pub struct FaultRule {
    pub id: String,
    segments: Vec<String>,
    method: Option<String>,
    status: Option<StatusCode>,
    rate: f64,
    retry_after_seconds: Option<u64>,
    latency: Option<Duration>,
    rng: StdRng,
}

impl FaultRule {
    pub fn from_spec(spec: FaultSpec) -> ApiResult<Self> {
        if !(0.0..=1.0).contains(&spec.rate) {
            return Err(ApiError::bad_request("rate must be between 0 and 1"));
        }
        if !spec.path_pattern.starts_with('/') {
            return Err(ApiError::bad_request("pathPattern must start with /"));
        }
        let status = match spec.status {
            None => None,
            Some(code @ (429 | 500 | 503)) => StatusCode::from_u16(code).ok(),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "status must be 429, 500 or 503, got {other}"
                )));
            }
        };
        if status.is_none() && spec.latency_ms.is_none() {
            return Err(ApiError::bad_request(
                "a fault needs a status, a latencyMs, or both",
            ));
        }
        let rng = match spec.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        };
        Ok(Self {
            id: ids::new_id("flt"),
            segments: split(&spec.path_pattern),
            method: spec.method.map(|m| m.to_ascii_uppercase()),
            status,
            rate: spec.rate,
            retry_after_seconds: spec.retry_after_seconds,
            latency: spec.latency_ms.map(Duration::from_millis),
            rng,
        })
    }

    /// `*` matches one path segment, `**` the rest of the path; other segments match exactly.
    fn matches(&self, method: &str, path: &str) -> bool {
        if self.method.as_deref().is_some_and(|m| m != method) {
            return false;
        }
        let path = split(path);
        let mut i = 0;
        for (j, seg) in self.segments.iter().enumerate() {
            if seg == "**" {
                return j == self.segments.len() - 1 || i <= path.len();
            }
            match path.get(i) {
                Some(p) if seg == "*" || seg == p => i += 1,
                _ => return false,
            }
        }
        i == path.len()
    }
}

fn split(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What to do to one request.
struct Injection {
    latency: Option<Duration>,
    status: Option<StatusCode>,
    retry_after_seconds: Option<u64>,
}

fn pick(app: &SharedApp, method: &str, path: &str) -> Option<Injection> {
    let mut rules = app.faults.lock().unwrap_or_else(|p| p.into_inner());
    let injection = rules.iter_mut().find_map(|rule| {
        if !rule.matches(method, path) {
            return None;
        }
        // Draw for every matching request so the sequence depends only on the seed and order.
        let roll: f64 = rule.rng.r#gen();
        (roll < rule.rate).then_some(Injection {
            latency: rule.latency,
            status: rule.status,
            retry_after_seconds: rule.retry_after_seconds,
        })
    });
    if let Some(injection) = &injection {
        app.fault_counts.record(injection);
    }
    injection
}

/// What the API faults injected since the emulator started (clearing the rules keeps the counts).
#[derive(Debug, Default)]
pub struct FaultCounts {
    answered_429: AtomicU64,
    answered_500: AtomicU64,
    answered_503: AtomicU64,
    delayed: AtomicU64,
}

impl FaultCounts {
    fn record(&self, injection: &Injection) {
        if injection.latency.is_some() {
            self.delayed.fetch_add(1, Ordering::Relaxed);
        }
        let counter = match injection.status.map(|s| s.as_u16()) {
            Some(429) => &self.answered_429,
            Some(500) => &self.answered_500,
            Some(503) => &self.answered_503,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// `{"answered":{"429","500","503"},"delayed"}`: requests answered with an injected status,
    /// and requests given injected latency (some of them also answered with a status).
    pub fn to_json(&self) -> Value {
        json!({
            "answered": {
                "429": self.answered_429.load(Ordering::Relaxed),
                "500": self.answered_500.load(Ordering::Relaxed),
                "503": self.answered_503.load(Ordering::Relaxed),
            },
            "delayed": self.delayed.load(Ordering::Relaxed),
        })
    }
}

/// `PUT /emulator/webhook-faults` body. Every rate is per delivery attempt, in `[0, 1]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookFaultSpec {
    /// Attempts that never reach the receiver (recorded as `ConnectionError`, retried).
    #[serde(default)]
    pub drop_rate: f64,
    /// Attempts posted a second time, same body and signature (the copy's answer is ignored).
    #[serde(default)]
    pub duplicate_rate: f64,
    /// Attempts the receiver gets but whose answer is lost (recorded as `Timeout`, retried).
    #[serde(default)]
    pub lost_answer_rate: f64,
    /// Longest random wait before an attempt (or a duplicate) is posted, in milliseconds.
    #[serde(default)]
    pub reorder_delay_ms: u64,
    /// Attempts that wait (up to `reorderDelayMs`) before they are posted; default 1.
    #[serde(default)]
    pub reorder_rate: Option<f64>,
    #[serde(default)]
    pub seed: Option<u64>,
}

/// Longest accepted `reorderDelayMs` (a delivery must still fit in the receiver's tolerance).
pub const MAX_REORDER_DELAY_MS: u64 = 60_000;

/// The active webhook delivery faults.
#[derive(Debug)]
pub struct WebhookFaults {
    spec: WebhookFaultSpec,
    rng: StdRng,
}

/// What happens to one delivery attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttemptFaults {
    /// Wait this long before posting.
    pub delay: Option<Duration>,
    /// Never post it; the attempt fails as a connection error.
    pub drop: bool,
    /// Post a copy too, this long after the attempt is posted.
    pub duplicate: Option<Duration>,
    /// Post it, then record the attempt as timed out whatever the receiver answered.
    pub lose_answer: bool,
}

impl WebhookFaults {
    pub fn from_spec(spec: WebhookFaultSpec) -> ApiResult<Self> {
        let reorder_rate = spec.reorder_rate.unwrap_or(1.0);
        for (name, rate) in [
            ("dropRate", spec.drop_rate),
            ("duplicateRate", spec.duplicate_rate),
            ("lostAnswerRate", spec.lost_answer_rate),
            ("reorderRate", reorder_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(ApiError::bad_request(format!(
                    "{name} must be between 0 and 1"
                )));
            }
        }
        if spec.reorder_delay_ms > MAX_REORDER_DELAY_MS {
            return Err(ApiError::bad_request(format!(
                "reorderDelayMs must be at most {MAX_REORDER_DELAY_MS}"
            )));
        }
        let rng = match spec.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        };
        Ok(Self { spec, rng })
    }

    /// Draws the faults of the next attempt. Every draw is made for every attempt, so the
    /// sequence depends only on the seed and the order of attempts.
    pub fn draw(&mut self) -> AttemptFaults {
        let rolls: [f64; 6] = std::array::from_fn(|_| self.rng.r#gen());
        let [drop, duplicate, lose_answer, reorder, delay, copy_delay] = rolls;
        let max = self.spec.reorder_delay_ms as f64;
        let wait = |fraction: f64| Duration::from_millis((fraction * max) as u64);
        let dropped = drop < self.spec.drop_rate;
        AttemptFaults {
            delay: (max > 0.0 && reorder < self.spec.reorder_rate.unwrap_or(1.0))
                .then(|| wait(delay))
                .filter(|d| !d.is_zero()),
            drop: dropped,
            duplicate: (!dropped && duplicate < self.spec.duplicate_rate).then(|| wait(copy_delay)),
            lose_answer: !dropped && lose_answer < self.spec.lost_answer_rate,
        }
    }
}

/// The faults of the next delivery attempt (none while no webhook faults are set), counted.
pub fn draw_webhook_faults(app: &SharedApp) -> AttemptFaults {
    let drawn = app
        .webhook_faults
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_mut()
        .map(WebhookFaults::draw)
        .unwrap_or_default();
    app.webhook_fault_counts.record(&drawn);
    drawn
}

/// What the webhook delivery faults injected since the emulator started.
#[derive(Debug, Default)]
pub struct WebhookFaultCounts {
    dropped: AtomicU64,
    duplicated: AtomicU64,
    delayed: AtomicU64,
    answers_lost: AtomicU64,
}

impl WebhookFaultCounts {
    fn record(&self, faults: &AttemptFaults) {
        let bump = |counter: &AtomicU64, happened: bool| {
            if happened {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        };
        bump(&self.dropped, faults.drop);
        bump(&self.duplicated, faults.duplicate.is_some());
        bump(&self.delayed, faults.delay.is_some());
        bump(&self.answers_lost, faults.lose_answer);
    }

    /// `{"dropped","duplicated","delayed","answersLost"}`: attempts affected by each fault.
    pub fn to_json(&self) -> Value {
        json!({
            "dropped": self.dropped.load(Ordering::Relaxed),
            "duplicated": self.duplicated.load(Ordering::Relaxed),
            "delayed": self.delayed.load(Ordering::Relaxed),
            "answersLost": self.answers_lost.load(Ordering::Relaxed),
        })
    }
}

pub async fn inject(AxState(app): AxState<SharedApp>, request: Request, next: Next) -> Response {
    let injection = pick(&app, request.method().as_str(), request.uri().path());
    let Some(injection) = injection else {
        return next.run(request).await;
    };
    if let Some(latency) = injection.latency {
        tokio::time::sleep(latency).await;
    }
    match injection.status {
        None => next.run(request).await,
        Some(status) => {
            let message = match status {
                StatusCode::TOO_MANY_REQUESTS => "Too many requests: rate limit exceeded",
                StatusCode::SERVICE_UNAVAILABLE => "Service unavailable",
                _ => "Internal server error",
            };
            let mut error = ApiError::new(status, message);
            if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE
            {
                error.retry_after = Some(injection.retry_after_seconds.unwrap_or(1));
            }
            error.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pattern: &str, method: Option<&str>) -> FaultRule {
        FaultRule::from_spec(FaultSpec {
            path_pattern: pattern.into(),
            method: method.map(str::to_owned),
            status: Some(429),
            rate: 1.0,
            retry_after_seconds: None,
            latency_ms: None,
            seed: Some(1),
        })
        .unwrap()
    }

    #[test]
    fn patterns_match_segments() {
        let r = rule("/wallets/*/transfers", Some("POST"));
        assert!(r.matches("POST", "/wallets/wa-1/transfers"));
        assert!(!r.matches("GET", "/wallets/wa-1/transfers"));
        assert!(!r.matches("POST", "/wallets/wa-1/transfers/xfr-1"));
        assert!(!r.matches("POST", "/wallets"));
        let r = rule("/wallets/**", None);
        assert!(r.matches("GET", "/wallets/wa-1/transfers/xfr-1"));
        assert!(!r.matches("GET", "/webhooks"));
    }

    #[test]
    fn same_seed_same_sequence() {
        let draw = || {
            let mut r = FaultRule::from_spec(FaultSpec {
                path_pattern: "/x".into(),
                method: None,
                status: Some(500),
                rate: 0.5,
                retry_after_seconds: None,
                latency_ms: None,
                seed: Some(42),
            })
            .unwrap();
            (0..32)
                .map(|_| r.rng.r#gen::<f64>() < r.rate)
                .collect::<Vec<_>>()
        };
        let a = draw();
        assert_eq!(a, draw());
        assert!(a.iter().any(|x| *x) && a.iter().any(|x| !*x));
    }

    fn webhook_faults(spec: serde_json::Value) -> ApiResult<WebhookFaults> {
        WebhookFaults::from_spec(serde_json::from_value(spec).unwrap())
    }

    #[test]
    fn webhook_fault_rates_and_delays_are_validated() {
        for bad in [
            json!({"dropRate": 1.5}),
            json!({"duplicateRate": -0.1}),
            json!({"lostAnswerRate": 2}),
            json!({"reorderDelayMs": 10, "reorderRate": 1.1}),
            json!({"reorderDelayMs": MAX_REORDER_DELAY_MS + 1}),
        ] {
            assert!(webhook_faults(bad.clone()).is_err(), "{bad}");
        }
        let unknown = serde_json::from_value::<WebhookFaultSpec>(json!({"dropRatio": 0.1}));
        assert!(unknown.is_err(), "unknown fields are refused");
        assert!(
            webhook_faults(json!({})).is_ok(),
            "no fault at all is allowed"
        );
    }

    #[test]
    fn webhook_faults_follow_their_rates_and_seed() {
        let draws = |spec: serde_json::Value| {
            let mut faults = webhook_faults(spec).unwrap();
            (0..400).map(|_| faults.draw()).collect::<Vec<_>>()
        };
        let spec = json!({"dropRate": 0.25, "duplicateRate": 0.25, "lostAnswerRate": 0.25,
                          "reorderDelayMs": 200, "reorderRate": 0.5, "seed": 9});
        let first = draws(spec.clone());
        assert_eq!(first, draws(spec), "same seed, same faults");
        let dropped = first.iter().filter(|f| f.drop).count();
        assert!(
            (60..140).contains(&dropped),
            "about a quarter dropped: {dropped}"
        );
        let delayed = first.iter().filter(|f| f.delay.is_some()).count();
        assert!(
            (150..250).contains(&delayed),
            "about half delayed: {delayed}"
        );
        for f in &first {
            // Nothing posted, so neither a copy nor an answer to lose.
            if f.drop {
                assert!(f.duplicate.is_none() && !f.lose_answer, "{f:?}");
            }
            assert!(f.delay.is_none_or(|d| d <= Duration::from_millis(200)));
            assert!(f.duplicate.is_none_or(|d| d <= Duration::from_millis(200)));
        }
        assert!(first.iter().any(|f| f.duplicate.is_some()));
        assert!(first.iter().any(|f| f.lose_answer));

        let none = draws(json!({"seed": 9}));
        assert!(none.iter().all(|f| *f == AttemptFaults::default()));
        let all = draws(json!({"dropRate": 1, "seed": 1}));
        assert!(all.iter().all(|f| f.drop));
    }
}
