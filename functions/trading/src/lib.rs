//! `trading`: a client's trading authorizations (flow 4).
//!
//! - `POST /v1/trading-authorizations` `{exchange}` → 201 with the new authorization (its
//!   deposit address goes through the destination flow; `status` is `Pending` until compliance
//!   approves it, then `Active`), or 200 with the client's live one for that exchange;
//! - `GET /v1/trading-authorizations` → `{"items": [...]}`, newest first;
//! - `DELETE /v1/trading-authorizations/{id}` → 200 with the revoked authorization (no new order
//!   is sent from now on; removal of the deposit address is requested). Repeatable. 404 when it
//!   is not the caller's.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use platform::http::{self, ApiError, Route};
use platform::trading::authorizations;
use serde::Deserialize;

pub const ROUTES: &[Route] = &[
    Route::new(Method::POST, "/v1/trading-authorizations"),
    Route::new(Method::GET, "/v1/trading-authorizations"),
    Route::new(Method::DELETE, "/v1/trading-authorizations/{id}"),
];

/// `POST /v1/trading-authorizations` body (public so the OpenAPI document derives its schema).
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeBody {
    /// Exchange name, as the registry names it.
    pub exchange: String,
}

pub async fn handle(app: &platform::App, req: Request) -> Response<Body> {
    // Boxed: the route futures are large (several Dfns and DynamoDB calls joined) and would
    // otherwise live on the caller's stack.
    Box::pin(http::serve(req, |req, request_id| async move {
        let path = req.uri().path().to_owned();
        let collection = http::match_path(ROUTES[0].path, &path).is_some();
        let item = http::match_path(ROUTES[2].path, &path);
        if !collection && item.is_none() {
            return Err(ApiError::not_found("no such route"));
        }
        let allowed = matches!(
            (collection, req.method()),
            (true, &Method::POST | &Method::GET) | (false, &Method::DELETE)
        );
        if !allowed {
            return Err(ApiError::method_not_allowed());
        }
        let client = http::client_principal(app, &req).await?;
        let config = platform::trading::config().map_err(http::log_failure)?;
        match *req.method() {
            Method::POST => {
                let body: AuthorizeBody = http::json_body(&req)?;
                let (view, created) = authorizations::authorize(
                    app,
                    config,
                    &client,
                    body.exchange.trim(),
                    &request_id,
                )
                .await
                .map_err(http::log_failure)?;
                let status = if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                Ok(http::json_response(status, &view))
            }
            Method::GET => {
                let items = authorizations::list(app, &client)
                    .await
                    .map_err(http::log_failure)?;
                Ok(http::json_response(
                    StatusCode::OK,
                    &serde_json::json!({ "items": items }),
                ))
            }
            _ => {
                // A malformed id cannot name anyone's authorization: 404 like an unknown one.
                let id = http::path_param(&req, "id")
                    .or_else(|| {
                        item.and_then(|params| params.into_iter().find(|(k, _)| k == "id"))
                            .map(|(_, v)| v)
                    })
                    .and_then(|raw| ulid::Ulid::from_string(&raw).ok())
                    .ok_or_else(|| ApiError::not_found("no such trading authorization"))?;
                let revoked = authorizations::revoke(app, &client, &id, &request_id)
                    .await
                    .map_err(http::log_failure)?;
                Ok(http::json_response(StatusCode::OK, &revoked))
            }
        }
    }))
    .await
}
