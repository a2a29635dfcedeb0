//! `withdrawals`: a client's withdrawals to its own approved destinations (issue 14). Client
//! routes only: an operator's token gets 403, another client's ids 404.
//!
//! | route | handler |
//! |---|---|
//! | `POST /v1/withdrawals` | [`create_withdrawal`] |
//! | `GET /v1/withdrawals` | [`list_withdrawals`] |
//! | `POST /v1/withdrawals/preview` | [`preview_withdrawal`] |
//! | `GET /v1/withdrawals/{id}` | [`get_withdrawal`] |
//! | `POST /v1/withdrawals/{id}/cancel` | [`cancel_withdrawal`] |

use axum::extract::State;
use domain::OrderId;
use platform::http::{
    self, ApiError, Client, Created, FunctionRouter, IdempotentJson, Json, Path, Query, RequestId,
};
use platform::http::{get_with, post_with};
use platform::reporting::query::{NotificationCursor, PageLimit, PageQuery};
use platform::withdrawals::{self, Withdrawal, WithdrawalInput, WithdrawalPage, WithdrawalPreview};
use platform::{App, rate_limit};
use serde::Deserialize;

/// The secrets this function holds: it sends the client's withdrawals at once (the signing
/// account), and reads the client's policies for the preview with the same credential.
pub const SECRETS: platform::SecretsHeld = platform::SecretsHeld::SIGNING;

/// This function's routes.
pub fn router() -> FunctionRouter {
    http::documented()
        .api_route(
            "/v1/withdrawals",
            post_with(create_withdrawal, |op| {
                let op = http::errors(
                    op.summary("Withdraw to one of your approved destinations (sent at once)"),
                    &[409],
                );
                let op = http::retry_after_429(op, rate_limit::RATE_LIMITED_429);
                http::link_id_to(
                    op,
                    201,
                    "CancelWithdrawal",
                    "#/paths/~1v1~1withdrawals~1{id}~1cancel/post",
                )
            })
            .get_with(list_withdrawals, |op| {
                op.summary("Your withdrawals, newest first")
            }),
        )
        .api_route(
            "/v1/withdrawals/preview",
            post_with(preview_withdrawal, |op| {
                http::errors(
                    op.summary(
                        "What your rules would do with this withdrawal now, with each limit's headroom (nothing stored or sent)",
                    ),
                    &[409],
                )
            }),
        )
        .api_route(
            "/v1/withdrawals/{id}",
            get_with(get_withdrawal, |op| op.summary("One of your withdrawals")),
        )
        .api_route(
            "/v1/withdrawals/{id}/cancel",
            post_with(cancel_withdrawal, |op| {
                let op = http::errors(
                    op.summary("Cancel a withdrawal not yet sent"),
                    &[409],
                );
                http::retry_after_429(op, rate_limit::RATE_LIMITED_429)
            }),
        )
}

/// `POST /v1/withdrawals` `{network, to, asset, amount}` with a required `Idempotency-Key` → 201
/// with the withdrawal, sent at once (its `state` says how far it got: `Requested` when Dfns could
/// not take it now, and the next execution run sends it). 400 when `to` is not one of the caller's
/// approved destinations on that network (nothing stored or sent), 409 while it is still waiting
/// (cooling off or awaiting compliance); a retry with the same key and body answers the same
/// withdrawal, the same key with another body is a 409.
pub async fn create_withdrawal(
    State(app): State<App>,
    RequestId(request_id): RequestId,
    Client(client): Client,
    request: IdempotentJson<WithdrawalInput, true>,
) -> Result<Created<Withdrawal>, ApiError> {
    let config = platform::trading::config()?;
    withdrawals::validate(&app.settings().networks, &request.body)?;
    rate_limit::admit_mutation(&app, &client).await?;
    let key = request
        .key
        .map(|key| key.for_caller(&format!("client:{client}")));
    let created = withdrawals::create(
        &app,
        config,
        &client,
        &request.body,
        &request_id,
        key.as_ref(),
    )
    .await?;
    Ok(Created(created))
}

/// `GET /v1/withdrawals?limit&cursor` → a page, newest first, with `nextCursor` while older ones
/// exist.
pub async fn list_withdrawals(
    State(app): State<App>,
    Client(client): Client,
    Query(query): Query<PageQuery<NotificationCursor>>,
) -> Result<Json<WithdrawalPage>, ApiError> {
    let cursor = query.cursor.map(|c| c.0);
    let page = withdrawals::list(
        &app,
        &client,
        cursor.as_deref(),
        PageLimit::get(query.limit),
    )
    .await?;
    Ok(Json(page))
}

/// `POST /v1/withdrawals/preview` `{network, to, asset, amount}` → `{verdict: pass | approval |
/// block, destinationApproved, rules, …}`: the client's own rules evaluated on this withdrawal
/// now, each with its use and headroom in its window.
pub async fn preview_withdrawal(
    State(app): State<App>,
    Client(client): Client,
    Json(input): Json<WithdrawalInput>,
) -> Result<Json<WithdrawalPreview>, ApiError> {
    let preview = withdrawals::preview(&app, &client, &input).await?;
    Ok(Json(preview))
}

/// The `{id}` of a withdrawal.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct WithdrawalPath {
    /// The withdrawal's id.
    pub id: OrderId,
}

/// `GET /v1/withdrawals/{id}` → the withdrawal; 404 when it is not the caller's.
pub async fn get_withdrawal(
    State(app): State<App>,
    Client(client): Client,
    Path(WithdrawalPath { id }): Path<WithdrawalPath>,
) -> Result<Json<Withdrawal>, ApiError> {
    Ok(Json(withdrawals::get(&app, &client, &id).await?))
}

/// `POST /v1/withdrawals/{id}/cancel` → 200 with the cancelled withdrawal; 409 once it is at Dfns
/// (or while a run is sending it); 404 when it is not the caller's.
pub async fn cancel_withdrawal(
    State(app): State<App>,
    RequestId(request_id): RequestId,
    Client(client): Client,
    Path(WithdrawalPath { id }): Path<WithdrawalPath>,
) -> Result<Json<Withdrawal>, ApiError> {
    let config = platform::trading::config()?;
    rate_limit::admit_mutation(&app, &client).await?;
    Ok(Json(
        withdrawals::cancel(&app, config, &client, &id, &request_id).await?,
    ))
}
