//! `trading`: a client's trading authorizations (docs/design.md, flow 4).
//!
//! | route | handler |
//! |---|---|
//! | `POST /v1/trading-authorizations` | [`authorize`] |
//! | `GET /v1/trading-authorizations` | [`list_authorizations`] |
//! | `DELETE /v1/trading-authorizations/{id}` | [`revoke_authorization`] |

use axum::extract::State;
use axum::http::StatusCode;
use platform::http::{
    self, ApiError, Client, Either, FunctionRouter, IdempotentJson, Items, Json, Path, RequestId,
};
use platform::http::{delete_with, post_with};
use platform::trading::authorizations::{self, AuthorizationView};
use platform::{App, rate_limit};
use serde::Deserialize;

/// The secrets this function holds: its authorizations add and remove exchange addresses on the
/// client's whitelist.
pub const SECRETS: platform::SecretsHeld = platform::SecretsHeld::SIGNING;

/// This function's routes.
pub fn router() -> FunctionRouter {
    http::documented()
        .api_route(
            "/v1/trading-authorizations",
            post_with(authorize, |op| {
                let op = http::errors(
                    op.summary(
                        "Authorize trading through an exchange (its deposit address goes through the destination flow)",
                    )
                    .response_with::<201, axum::Json<AuthorizationView>, _>(|r| {
                        r.description("a new authorization, Pending until compliance approves its address")
                    })
                    .response_with::<200, axum::Json<AuthorizationView>, _>(|r| {
                        r.description("the client's live authorization for that exchange")
                    }),
                    &[409],
                );
                let op = http::retry_after_429(op, rate_limit::RATE_LIMITED_429);
                let target = "#/paths/~1v1~1trading-authorizations~1{id}/delete";
                let op = http::link_id_to(op, 201, "RevokeTradingAuthorization", target);
                http::link_id_to(op, 200, "RevokeTradingAuthorization", target)
            })
            .get_with(list_authorizations, |op| {
                op.summary("The caller's trading authorizations, newest first")
            }),
        )
        .api_route(
            "/v1/trading-authorizations/{id}",
            delete_with(revoke_authorization, |op| {
                let op = op.summary(
                    "Revoke an authorization: no new order is sent; removal of the deposit address is requested (repeatable)",
                );
                http::retry_after_429(op, rate_limit::RATE_LIMITED_429)
            }),
        )
}

/// `POST /v1/trading-authorizations` body.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeBody {
    /// Exchange name, as the registry names it.
    #[schemars(schema_with = "platform::request_schema::exchange")]
    pub exchange: String,
}

/// `POST /v1/trading-authorizations` `{exchange}` → 201 with the new authorization (`Pending`
/// until compliance approves its deposit address, then `Active`), or 200 with the client's live
/// one for that exchange.
pub async fn authorize(
    State(app): State<App>,
    RequestId(request_id): RequestId,
    Client(client): Client,
    request: IdempotentJson<AuthorizeBody, false>,
) -> Result<Either<AuthorizationView>, ApiError> {
    let config = platform::trading::config()?;
    rate_limit::admit_mutation(&app, &client).await?;
    let key = request
        .key
        .map(|key| key.for_caller(&format!("client:{client}")));
    let (view, created) = authorizations::authorize_keyed(
        &app,
        config,
        &client,
        &request.body.exchange,
        &request_id,
        key.as_ref(),
    )
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(Either { status, body: view })
}

/// `GET /v1/trading-authorizations` → `{"items": [...]}`, newest first.
pub async fn list_authorizations(
    State(app): State<App>,
    Client(client): Client,
) -> Result<Json<Items<AuthorizationView>>, ApiError> {
    let items = authorizations::list(&app, &client).await?;
    Ok(Json(Items { items }))
}

/// The `{id}` of a trading authorization.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct AuthorizationPath {
    /// The authorization's id.
    pub id: platform::trading::AuthorizationId,
}

/// `DELETE /v1/trading-authorizations/{id}` → 200 with the revoked authorization; 404 when it is
/// not the caller's; 429 with `Retry-After` over the client's rate of changes.
pub async fn revoke_authorization(
    State(app): State<App>,
    RequestId(request_id): RequestId,
    Client(client): Client,
    Path(AuthorizationPath { id }): Path<AuthorizationPath>,
) -> Result<Json<AuthorizationView>, ApiError> {
    rate_limit::admit_mutation(&app, &client).await?;
    let revoked = authorizations::revoke(&app, &client, &id.0, &request_id).await?;
    Ok(Json(revoked))
}
