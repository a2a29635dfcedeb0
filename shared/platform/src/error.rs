//! The use cases' typed error, and how each case maps to the statuses of docs/design.md "Errors".

use crate::http::ApiError;

/// Why a use case did not complete. The HTTP layer maps each variant to a status in one place
/// ([`PlatformError::to_api_error`]); internals (store, Dfns, secret messages) stay in the logs.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The caller's input is invalid; nothing was changed.
    #[error("{0}")]
    BadRequest(String),
    /// The caller may not do this (e.g. an operator opening a client account).
    #[error("{0}")]
    Forbidden(String),
    /// Not found, or not the caller's.
    #[error("{0}")]
    NotFound(String),
    /// The resource is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    /// The caller is over a limit of its own (a quota, a rate); nothing was changed. 429 with
    /// `Retry-After: retry_after_seconds`.
    #[error("{message}")]
    TooManyRequests {
        /// The error's stable `code`.
        code: &'static str,
        message: String,
        retry_after_seconds: u32,
    },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Dfns(#[from] dfns_client::Error),
    #[error(transparent)]
    Secret(#[from] platform_config::SecretError),
    #[error("event bus: {0}")]
    EventBus(String),
    /// The webhook queue refused or did not answer (retryable).
    #[error("webhook queue: {0}")]
    Queue(String),
    /// Something the platform itself got wrong (a bug, or data it cannot read).
    #[error("internal: {0}")]
    Internal(String),
}

impl PlatformError {
    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            PlatformError::Store(e) => e.is_retryable(),
            PlatformError::Dfns(e) => e.is_retryable(),
            PlatformError::Secret(platform_config::SecretError::Fetch { retryable, .. }) => {
                *retryable
            }
            PlatformError::EventBus(_) | PlatformError::Queue(_) => true,
            _ => false,
        }
    }

    /// The public face of the error: statuses as docs/design.md "Errors" says, no internals leaked.
    pub fn to_api_error(&self) -> ApiError {
        match self {
            PlatformError::BadRequest(m) => ApiError::bad_request(m.clone()),
            PlatformError::Forbidden(m) => ApiError::forbidden(m.clone()),
            PlatformError::NotFound(m) => ApiError::not_found(m.clone()),
            PlatformError::Conflict(m) => ApiError::conflict(m.clone()),
            PlatformError::TooManyRequests {
                code,
                message,
                retry_after_seconds,
            } => ApiError::too_many_requests(code, message.clone(), *retry_after_seconds),
            PlatformError::Store(store::StoreError::IdempotencyKeyReused { .. }) => {
                ApiError::conflict("this Idempotency-Key was used for another request")
            }
            PlatformError::Dfns(e) if e.status() == Some(429) => ApiError::throttled(),
            PlatformError::Store(e) if e.is_retryable() => ApiError::unavailable(),
            PlatformError::Store(store::StoreError::Contention { .. }) => ApiError::unavailable(),
            other if other.is_retryable() => ApiError::unavailable(),
            _ => ApiError::internal(),
        }
    }
}

pub type Result<T, E = PlatformError> = std::result::Result<T, E>;
