//! `dfns-webhook`: `POST /v1/webhooks/dfns`, the Dfns event receiver. No token: the body's
//! HMAC signature (and `timestampSent`) proves it comes from Dfns. 200 once applied (or known, or
//! not acted on); 401 and nothing changed on a bad signature; 5xx when applying failed, so Dfns
//! delivers again. See [`platform::webhook`].

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use platform::http::{self, ApiError, Route};
use platform::webhook::{self, WebhookError};

pub const ROUTES: &[Route] = &[Route::new(Method::POST, "/v1/webhooks/dfns")];

/// Header carrying `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-dfns-webhook-signature";

pub async fn handle(app: &platform::App, req: Request) -> Response<Body> {
    http::serve(req, |req, request_id| async move {
        if http::match_path(ROUTES[0].path, req.uri().path()).is_none() {
            return Err(ApiError::not_found("no such route"));
        }
        if req.method() != Method::POST {
            return Err(ApiError::method_not_allowed());
        }
        // Header values that are not text cannot be a signature: treat as missing.
        let signature = req
            .headers()
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok());
        let raw_body: &[u8] = req.body().as_ref();
        match webhook::receive(app, signature, raw_body, &request_id).await {
            Ok(outcome) => Ok(http::json_response(
                StatusCode::OK,
                &serde_json::json!({ "received": true, "outcome": outcome }),
            )),
            Err(WebhookError::Unverified(reason)) => {
                tracing::warn!(%reason, "webhook delivery refused");
                Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "webhook signature or timestamp not accepted",
                ))
            }
            Err(WebhookError::Processing(error)) => Err(http::log_failure(error)),
        }
    })
    .await
}

// Tests of the crate as its callers use it, against the stand-ins and the Dfns emulator.
// Kept in the library rather than tests/: an integration test would make cargo link the binary
// too (~45 MB of CI disk each) for nothing.
#[cfg(test)]
mod handler_tests;
