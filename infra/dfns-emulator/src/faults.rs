//! Fault injection (control API `POST /emulator/faults`): per route pattern and method, at a rate,
//! from a seeded generator so a test sees the same sequence every run. A fault adds latency
//! and/or answers 429 (with `Retry-After`), 500 or 503 before the request reaches auth, as a
//! gateway in front of Dfns would.

use axum::extract::{Request, State as AxState};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use std::time::Duration;

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
    rules.iter_mut().find_map(|rule| {
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
    })
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
}
