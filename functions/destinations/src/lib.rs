//! `destinations`: a client's requests to add or remove a whitelisted destination.
//!
//! | route | handler |
//! |---|---|
//! | `POST /v1/destination-requests` | [`create_request`] |
//! | `GET /v1/destination-requests` | [`list_requests`] |
//! | `DELETE /v1/destination-requests/{id}` | [`cancel_request`] |
//! | `POST /v1/destination-requests/{id}/veto` | [`veto_request`] |
//!
//! A new destination (`add`) first cools off (`DESTINATION_COOLING_OFF`, 24 h by default): it is
//! `CoolingOff` with `usableFrom`, and the client may veto it until the reconciler submits it.
//!
//! Every mutating route counts against the client's `CLIENT_MUTATIONS_PER_MINUTE`, and a create
//! against its quota of open requests (`MAX_OPEN_DESTINATION_REQUESTS`): over either, 429 in the
//! one error shape with `Retry-After` (see [`platform::destinations`]).

use axum::extract::State;
use domain::DestinationRequestId;
use platform::destinations::{self, DestinationInput};
use platform::http::post_with;
use platform::http::{
    self, ApiError, Client, Created, FunctionRouter, IdempotentJson, Items, Json, Path, RequestId,
};
use platform::{App, rate_limit};
use store::DestinationRequestView;

/// The secrets this function holds: it changes the client's whitelist policy.
pub const SECRETS: platform::SecretsHeld = platform::SecretsHeld::SIGNING;

/// This function's routes.
pub fn router() -> FunctionRouter {
    http::documented()
        .api_route(
            "/v1/destination-requests",
            post_with(create_request, |op| {
                let op = http::errors(
                    op.summary(
                        "Ask for a destination to be added to or removed from the whitelist",
                    ),
                    &[409],
                );
                let op = http::retry_after_429(
                    op,
                    "too many requests: the caller already has its quota of open destination \
                     requests (`too_many_open_requests`), or made its changes for this minute \
                     (`rate_limited`); nothing was changed; retry after `Retry-After` seconds \
                     (an upstream throttling: `throttled`, without it)",
                );
                let op = http::link_id_to(
                    op,
                    201,
                    "CancelDestinationRequest",
                    "#/paths/~1v1~1destination-requests~1{id}/delete",
                );
                http::link_id_to(
                    op,
                    201,
                    "VetoDestinationRequest",
                    "#/paths/~1v1~1destination-requests~1{id}~1veto/post",
                )
            })
            .get_with(list_requests, |op| {
                op.summary("The caller's destination requests, newest first")
            }),
        )
        .api_route(
            "/v1/destination-requests/{id}",
            http::delete_with(cancel_request, |op| {
                http::retry_after_429(
                    http::errors(
                        op.summary(
                            "Cancel a destination request while it is still cooling off or queued",
                        ),
                        &[409],
                    ),
                    "too many requests: the caller made its changes for this minute \
                     (`rate_limited`); nothing was changed; retry after `Retry-After` seconds \
                     (an upstream throttling: `throttled`, without it)",
                )
            }),
        )
        .api_route(
            "/v1/destination-requests/{id}/veto",
            post_with(veto_request, |op| {
                http::retry_after_429(
                    http::errors(
                        op.summary(
                            "Veto a new destination during its cooling-off: it never goes to \
                             compliance",
                        ),
                        &[409],
                    ),
                    "too many requests: the caller made its changes for this minute \
                     (`rate_limited`); nothing was changed; retry after `Retry-After` seconds \
                     (an upstream throttling: `throttled`, without it)",
                )
            }),
        )
}

/// `POST /v1/destination-requests` `{network, address, label, action: "add"|"remove"}` → 201 with
/// the request (its `state` says whether it is cooling off until `usableFrom`, queued, pending
/// approval, approved, …). With an `Idempotency-Key`, a retry answers the same request. 429 with
/// `Retry-After` over the client's quota of open requests or its rate of changes (checked after
/// the input: a bad one is a 400).
pub async fn create_request(
    State(app): State<App>,
    RequestId(request_id): RequestId,
    Client(client): Client,
    request: IdempotentJson<DestinationInput, false>,
) -> Result<Created<DestinationRequestView>, ApiError> {
    destinations::validate(&app.settings().networks, &request.body)?;
    rate_limit::admit_mutation(&app, &client).await?;
    let key = request
        .key
        .map(|key| key.for_caller(&format!("client:{client}")));
    let created =
        destinations::create_request_keyed(&app, &client, &request.body, &request_id, key.as_ref())
            .await?;
    Ok(Created(created))
}

/// `GET /v1/destination-requests` → `{"items": [...]}`, newest first.
pub async fn list_requests(
    State(app): State<App>,
    Client(client): Client,
) -> Result<Json<Items<DestinationRequestView>>, ApiError> {
    let items = destinations::list_requests(&app, &client).await?;
    Ok(Json(Items { items }))
}

/// The `{id}` of a destination request.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct RequestPath {
    /// The request's id.
    pub id: DestinationRequestId,
}

/// `DELETE /v1/destination-requests/{id}` → 200 with the cancelled request; 409 unless still
/// cooling off or queued; 404 when it is not the caller's; 429 with `Retry-After` over the
/// client's rate of changes.
pub async fn cancel_request(
    State(app): State<App>,
    RequestId(request_id): RequestId,
    Client(client): Client,
    Path(RequestPath { id }): Path<RequestPath>,
) -> Result<Json<DestinationRequestView>, ApiError> {
    rate_limit::admit_mutation(&app, &client).await?;
    let cancelled = destinations::cancel_request(&app, &client, &id, &request_id).await?;
    Ok(Json(cancelled))
}

/// `POST /v1/destination-requests/{id}/veto` → 200 with the request, now `Vetoed`: it never goes
/// to Dfns (audited and notified, `destination_request.vetoed`). 409 unless it is still
/// `CoolingOff`; 404 when it is not the caller's; 429 with `Retry-After` over the client's rate of
/// changes.
pub async fn veto_request(
    State(app): State<App>,
    RequestId(request_id): RequestId,
    Client(client): Client,
    Path(RequestPath { id }): Path<RequestPath>,
) -> Result<Json<DestinationRequestView>, ApiError> {
    rate_limit::admit_mutation(&app, &client).await?;
    let vetoed = destinations::veto_request(&app, &client, &id, &request_id).await?;
    Ok(Json(vetoed))
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
