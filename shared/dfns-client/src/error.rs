//! Typed errors. Every failure keeps what the caller needs to decide what to do next: the HTTP
//! status, Dfns' own message and details, and whether trying again later can help.

use std::time::Duration;

use serde_json::Value;

use crate::signer::SignerError;

/// An error answered by Dfns (any non-2xx status), in the shape of docs/dfns.md §8.1.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// `error.message` (or the top-level `message`, or the HTTP reason when the body is not JSON).
    pub message: String,
    /// `error.id`: Dfns' support reference, when given.
    pub id: Option<String>,
    /// `error.code`, when given.
    pub code: Option<String>,
    /// `error.details`, when given (e.g. `{"duplicate":{"id","externalId"}}` on a 409).
    pub details: Option<Value>,
    /// `Retry-After` header, when given (429/503).
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub(crate) fn from_response(status: u16, body: &[u8], retry_after: Option<Duration>) -> Self {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let error = parsed.as_ref().and_then(|v| v.get("error"));
        let text = |key: &str| -> Option<String> {
            error
                .and_then(|e| e.get(key))
                .or_else(|| parsed.as_ref().and_then(|v| v.get(key)))
                .and_then(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
        };
        let message = text("message").unwrap_or_else(|| {
            reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("unknown status")
                .to_owned()
        });
        Self {
            status,
            message,
            id: text("id"),
            code: text("code"),
            details: error.and_then(|e| e.get("details")).cloned(),
            retry_after,
        }
    }

    /// For a 409 on an `externalId` reused with another body: the id of the entity that already
    /// holds it (`details.duplicate.id`).
    pub fn duplicate_id(&self) -> Option<&str> {
        if self.status != 409 {
            return None;
        }
        self.details.as_ref()?.get("duplicate")?.get("id")?.as_str()
    }

    /// 429 and 5xx: the request was not served and may succeed later.
    pub fn is_retryable(&self) -> bool {
        self.status == 429 || self.status == 408 || (500..600).contains(&self.status)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dfns answered {}: {}", self.status, self.message)?;
        if let Some(id) = &self.id {
            write!(f, " (error id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// Everything a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Dfns answered with a non-success status.
    #[error(transparent)]
    Api(Box<ApiError>),
    /// No answer in time (per-request timeout).
    #[error("request to Dfns timed out")]
    Timeout,
    /// Connection refused/reset, DNS, TLS: the request may or may not have reached Dfns.
    #[error("could not talk to Dfns: {0}")]
    Connection(#[source] reqwest::Error),
    /// A 2xx answer whose body is not what the API documents.
    #[error("unexpected response body from Dfns (HTTP {status}): {reason}")]
    Decode { status: u16, reason: String },
    /// Producing the user-action signature failed (key, KMS, credential not allowed).
    #[error("user-action signing failed: {0}")]
    Signing(#[from] SignerError),
    /// Retryable failures kept coming until the call's deadline (or attempt cap); `last` is the
    /// final one. Retryable: the same call may succeed later.
    #[error("gave up after {attempts} attempt(s) in {elapsed:?}: {last}")]
    RetriesExhausted {
        attempts: u32,
        elapsed: Duration,
        last: Box<Error>,
    },
    /// The call cannot be made as asked (no signer configured, bad base URL, bad input).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl From<ApiError> for Error {
    fn from(error: ApiError) -> Self {
        Error::Api(Box::new(error))
    }
}

impl Error {
    /// Whether the same call may succeed if made again later. True for 429, 5xx, timeouts,
    /// connection errors, and a deadline exhausted on such errors.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api(api) => api.is_retryable(),
            Error::Timeout | Error::Connection(_) => true,
            Error::RetriesExhausted { last, .. } => last.is_retryable(),
            Error::Decode { .. } | Error::Signing(_) | Error::InvalidRequest(_) => false,
        }
    }

    /// Dfns refused *us*, not the request: our token (401: revoked, expired, rotated away) or our
    /// permissions (403). Fixing our credentials makes the same request worth sending again, so
    /// callers keep the work pending instead of failing it for the client.
    pub fn is_our_credentials(&self) -> bool {
        matches!(self.status(), Some(401 | 403))
    }

    /// The HTTP status of the (last) Dfns answer, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(api) => Some(api.status),
            Error::Decode { status, .. } => Some(*status),
            Error::RetriesExhausted { last, .. } => last.status(),
            _ => None,
        }
    }

    /// The Dfns error, looking through a deadline wrapper.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(api) => Some(api),
            Error::RetriesExhausted { last, .. } => last.api(),
            _ => None,
        }
    }

    /// The `Retry-After` Dfns asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        self.api().and_then(|api| api.retry_after)
    }

    pub(crate) fn from_transport(error: reqwest::Error) -> Self {
        if error.is_timeout() {
            Error::Timeout
        } else {
            Error::Connection(error.without_url())
        }
    }
}

/// Crate-wide result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
