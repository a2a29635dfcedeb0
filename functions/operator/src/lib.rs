//! `operator`: the trading desk's routes (docs/design.md, flow 5). Every route needs an operator
//! token; a client's token gets 403.
//!
//! | route | handler |
//! |---|---|
//! | `POST /v1/operator/orders` | [`create_order`] |
//! | `GET /v1/operator/orders?clientId&status` | [`list_orders`] |
//! | `POST /v1/operator/orders/preview` | [`preview_order`] |
//! | `POST /v1/operator/orders/{id}/cancel` | [`cancel_order`] |
//! | `POST /v1/operator/orders/{id}/confirm` | [`confirm_order`] |
//! | `GET /v1/operator/clients/{id}` | [`client_view`] |

use axum::extract::State;
use axum::http::StatusCode;
use domain::{ClientId, OrderId, OrderState};
use platform::App;
use platform::http::{
    self, ApiError, Created, FunctionRouter, IdempotentJson, Items, Json, Operator, Path, Query,
    RequestId,
};
use platform::http::{get_with, post_with};
use platform::trading::orders::{
    self, ClientView, ConfirmRefused, OrderInput, OrderPreviewInput, PreviewView,
};
use serde::Deserialize;
use store::Order;

/// The secrets this function holds: it previews orders against the client's live policies; the
/// orders themselves are sent by order-execution.
pub const SECRETS: platform::SecretsHeld = platform::SecretsHeld::READ_ONLY;

/// This function's routes.
pub fn router() -> FunctionRouter {
    http::documented()
        .api_route(
            "/v1/operator/orders",
            post_with(create_order, |op| {
                let op = http::errors(
                    op.summary("Schedule an order moving a client's funds to an exchange"),
                    &[404, 409],
                );
                http::link_id_to(
                    op,
                    201,
                    "CancelOrder",
                    "#/paths/~1v1~1operator~1orders~1{id}~1cancel/post",
                )
            })
            .get_with(list_orders, |op| op.summary("Orders, newest first")),
        )
        .api_route(
            "/v1/operator/orders/preview",
            post_with(preview_order, |op| {
                http::errors(
                    op.summary(
                        "Whether a transfer would pass the client's live policies now (nothing stored or sent)",
                    ),
                    &[404],
                )
            }),
        )
        .api_route(
            "/v1/operator/orders/{id}/cancel",
            post_with(cancel_order, |op| {
                http::errors(op.summary("Cancel an order while it is still Scheduled"), &[409])
            }),
        )
        .api_route(
            "/v1/operator/orders/{id}/confirm",
            post_with(confirm_order, |op| {
                http::errors(
                    op.summary(
                        "Confirm another operator's order that needs a second pair of eyes (four eyes)",
                    ),
                    &[403, 404, 409],
                )
            }),
        )
        .api_route(
            "/v1/operator/clients/{id}",
            get_with(client_view, |op| {
                op.summary("A client's account view with its trading authorizations and orders")
            }),
        )
}

/// `POST /v1/operator/orders` `{clientId, exchange, asset, amount, executeAt?, network?}` with a
/// required `Idempotency-Key` → 201 with the `Scheduled` order (400 on an unknown exchange or
/// asset, a bad amount or time; 404 for an unknown client). A retry with the same key and body
/// answers the same order; the same key with another body is a 409.
pub async fn create_order(
    State(app): State<App>,
    RequestId(request_id): RequestId,
    Operator(operator): Operator,
    request: IdempotentJson<OrderInput, true>,
) -> Result<Created<Order>, ApiError> {
    let config = platform::trading::config()?;
    let key = request
        .key
        .map(|key| key.for_caller(&format!("operator:{operator}")));
    let order = orders::create_order(
        &app,
        config,
        &operator,
        &request.body,
        &request_id,
        key.as_ref(),
    )
    .await?;
    Ok(Created(order))
}

/// `GET /v1/operator/orders` filters.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderFilter {
    /// Only this client's orders.
    pub client_id: Option<ClientId>,
    /// Only orders in this state.
    pub status: Option<OrderState>,
}

/// `GET /v1/operator/orders?clientId&status` → `{"items": [...]}`, newest first.
pub async fn list_orders(
    State(app): State<App>,
    Operator(_): Operator,
    Query(filter): Query<OrderFilter>,
) -> Result<Json<Items<Order>>, ApiError> {
    let items = orders::list_orders(&app, filter.client_id.as_ref(), filter.status).await?;
    Ok(Json(Items { items }))
}

/// `POST /v1/operator/orders/preview` `{clientId, exchange, asset, amount, network?}` → whether
/// the transfer would pass the client's live policies, which rule would stop it, and the headroom
/// left on each limit (a dry run: nothing is stored or sent).
pub async fn preview_order(
    State(app): State<App>,
    Operator(_): Operator,
    Json(input): Json<OrderPreviewInput>,
) -> Result<Json<PreviewView>, ApiError> {
    let config = platform::trading::config()?;
    let preview = orders::preview_order(&app, config, &input.into()).await?;
    Ok(Json(preview))
}

/// The `{id}` of an order.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct OrderPath {
    /// The order's id.
    pub id: OrderId,
}

/// `POST /v1/operator/orders/{id}/cancel` → 200 with the cancelled order; 409 once claimed.
pub async fn cancel_order(
    State(app): State<App>,
    RequestId(request_id): RequestId,
    Operator(operator): Operator,
    Path(OrderPath { id }): Path<OrderPath>,
) -> Result<Json<Order>, ApiError> {
    let cancelled = orders::cancel_order(&app, &operator, &id, &request_id).await?;
    Ok(Json(cancelled))
}

/// `POST /v1/operator/orders/{id}/confirm` → 200 with the order, now confirmed and due at its
/// `executeAt` (four eyes: an order over `FOUR_EYES_USD`, or of unknown value, waits for this).
/// Repeating it answers the confirmed order. 403 `own_order` when the caller created the order;
/// 409 `confirmation_not_needed` for an order that needs none, `conflict` once it was cancelled.
pub async fn confirm_order(
    State(app): State<App>,
    RequestId(request_id): RequestId,
    Operator(operator): Operator,
    Path(OrderPath { id }): Path<OrderPath>,
) -> Result<Json<Order>, ApiError> {
    match orders::confirm_order(&app, &operator, &id, &request_id).await? {
        Ok(order) => Ok(Json(order)),
        Err(ConfirmRefused::OwnOrder) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "own_order",
            "the order's creator cannot confirm it: another operator must",
        )),
        Err(ConfirmRefused::NotNeeded) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "confirmation_not_needed",
            "this order needs no second operator's confirmation",
        )),
        Err(ConfirmRefused::NotScheduled(state)) => Err(ApiError::conflict(format!(
            "only a scheduled order can be confirmed; this one is {state}"
        ))),
    }
}

/// The `{id}` of a client.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct ClientPath {
    /// The client's id.
    pub id: ClientId,
}

/// `GET /v1/operator/clients/{id}` → the client's account view with its trading authorizations
/// and orders.
pub async fn client_view(
    State(app): State<App>,
    Operator(_): Operator,
    Path(ClientPath { id }): Path<ClientPath>,
) -> Result<Json<ClientView>, ApiError> {
    let view = orders::client_view(&app, &id).await?;
    Ok(Json(view))
}

/// The routes as the Lambda runtime calls them.
#[cfg(test)]
async fn handle(app: &App, req: lambda_http::Request) -> lambda_http::Response<lambda_http::Body> {
    http::call(router(), app, req).await
}

// Tests of the routes against the stand-ins and the Dfns emulator.
#[cfg(test)]
mod route_tests;
