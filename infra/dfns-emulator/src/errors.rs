//! The one error shape every Dfns route answers with (docs/dfns.md §8.1):
//! `{"error":{"id","status","message","details"?}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error as Dfns returns it. Built by handlers, rendered once in `into_response`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub details: Option<Value>,
    /// Seconds for a `Retry-After` header (429 / 503 fault injection).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// The 403 Dfns answers when the caller's permissions lack `operation`.
    pub fn missing_permission(user_id: &str, operation: &str) -> Self {
        Self::forbidden(format!(
            "User {user_id} is not authorized to perform operation ({operation})"
        ))
        .with_details(json!({ "userId": user_id, "operation": operation }))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({
            "id": support_reference(),
            "status": self.status.as_u16(),
            "message": self.message,
        });
        if let Some(details) = self.details {
            error["details"] = details;
        }
        let mut response = (self.status, axum::Json(json!({ "error": error }))).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&seconds.to_string()).expect("digits are a valid header"),
            );
        }
        response
    }
}

/// Dfns error ids are long decimal numbers used as support references.
fn support_reference() -> String {
    use rand::Rng;
    rand::thread_rng()
        .gen_range(1_000_000_000_000_000_000u64..u64::MAX)
        .to_string()
}

pub type ApiResult<T> = Result<T, ApiError>;
