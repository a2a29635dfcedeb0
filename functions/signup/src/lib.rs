//! `signup`: `POST /v1/accounts` opens (or resumes) the caller's managed account.
//!
//! Answers 200 with the account when every wallet and policy exists, or 202 with the account as
//! it stands when another call is still creating part of it (call again to see it finish). See
//! [`platform::onboarding`] for how concurrent calls end with one wallet per network and one
//! policy of each kind.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use platform::http::{self, ApiError, Route};
use platform::onboarding::{self, AccountStatus};

pub const ROUTES: &[Route] = &[Route::new(Method::POST, "/v1/accounts")];

pub async fn handle(app: &platform::App, req: Request) -> Response<Body> {
    http::serve(req, |req, request_id| async move {
        if req.method() != Method::POST {
            return Err(ApiError::method_not_allowed());
        }
        if http::match_path(ROUTES[0].path, req.uri().path()).is_none() {
            return Err(ApiError::not_found("no such route"));
        }
        let client = http::client_principal(app, &req).await?;
        let account = onboarding::open_account(app, &client, &request_id)
            .await
            .map_err(http::log_failure)?;
        let status = match account.status {
            AccountStatus::Open => StatusCode::OK,
            AccountStatus::Opening => StatusCode::ACCEPTED,
        };
        Ok(http::json_response(status, &account))
    })
    .await
}

// Tests of the crate as its callers use it, against the stand-ins and the Dfns emulator.
// Kept in the library rather than tests/: an integration test would make cargo link the binary
// too (~45 MB of CI disk each) for nothing.
#[cfg(test)]
mod handler_tests;
