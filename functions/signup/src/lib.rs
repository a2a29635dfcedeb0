//! `signup`: opens (or resumes) the caller's managed account.
//!
//! | route | handler |
//! |---|---|
//! | `POST /v1/accounts` | [`open_account`] |
//!
//! See [`platform::onboarding`] for how concurrent calls end with one wallet per network and one
//! policy of each kind.

use axum::extract::State;
use axum::http::StatusCode;
use platform::App;
use platform::http::post_with;
use platform::http::{self, ApiError, Client, Either, FunctionRouter, RequestId};
use platform::onboarding::{self, AccountState, AccountStatus};

/// The secrets this function holds: it creates wallets and their policies.
pub const SECRETS: platform::SecretsHeld = platform::SecretsHeld::SIGNING;

/// This function's routes.
pub fn router() -> FunctionRouter {
    http::documented().api_route(
        "/v1/accounts",
        post_with(open_account, |op| {
            op.summary("Open (or resume) the caller's managed account")
                .response_with::<200, axum::Json<AccountState>, _>(|r| {
                    r.description("every wallet and policy exists")
                })
                .response_with::<202, axum::Json<AccountState>, _>(|r| {
                    r.description("another call is still creating part of it: call again")
                })
                .with(|op| http::retry_after_429(op, platform::rate_limit::RATE_LIMITED_429))
        }),
    )
}

/// `POST /v1/accounts`: 200 with the account when every wallet and policy exists, or 202 with the
/// account as it stands when another call is still creating part of it; 429 with `Retry-After`
/// over the client's rate of changes.
pub async fn open_account(
    State(app): State<App>,
    RequestId(request_id): RequestId,
    Client(client): Client,
) -> Result<Either<AccountState>, ApiError> {
    platform::rate_limit::admit_mutation(&app, &client).await?;
    let account = onboarding::open_account(&app, &client, &request_id).await?;
    let status = match account.status {
        AccountStatus::Open => StatusCode::OK,
        AccountStatus::Opening => StatusCode::ACCEPTED,
    };
    Ok(Either {
        status,
        body: account,
    })
}

/// The routes as the Lambda runtime calls them.
#[cfg(test)]
async fn handle(app: &App, req: lambda_http::Request) -> lambda_http::Response<lambda_http::Body> {
    http::call(router(), app, req).await
}

// Tests of the crate as its callers use it, against the stand-ins and the Dfns emulator.
// Kept in the library rather than tests/: an integration test would make cargo link the binary
// too (~45 MB of CI disk each) for nothing.
#[cfg(test)]
mod handler_tests;
