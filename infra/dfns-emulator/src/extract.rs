//! Extractors that turn malformed input into Dfns-shaped 400s instead of axum's plain-text
//! rejections.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::errors::ApiError;

/// JSON body; a missing or empty body is read as `{}` (the Python SDK sends none for bodiless
/// calls, the TS SDK sends `{}`).
pub struct DfnsJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for DfnsJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("unreadable body: {e}")))?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(text)
            .map(DfnsJson)
            .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
    }
}

/// Query string; a bad one answers 400 in the Dfns error shape.
pub struct DfnsQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for DfnsQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| DfnsQuery(q.0))
            .map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))
    }
}
