//! `operator`: the trading desk's routes (flow 5). Every route needs an operator token; a client's
//! token gets 403.
//!
//! - `POST /v1/operator/orders` `{clientId, exchange, asset, amount, executeAt?, network?}` → 201
//!   with the `Scheduled` order (400 on an unknown exchange or asset, a bad amount or time; 404 for
//!   an unknown client);
//! - `GET /v1/operator/orders?clientId&status` → `{"items": [...]}`, newest first;
//! - `POST /v1/operator/orders/{id}/cancel` → 200 with the cancelled order; 409 once claimed;
//! - `GET /v1/operator/clients/{id}` → the client's account view with its trading authorizations
//!   and orders;
//! - `POST /v1/operator/orders/preview` `{clientId, exchange, asset, amount}` → whether the
//!   transfer would pass the client's live policies, which rule would stop it, and the headroom
//!   left on each limit (a dry run: nothing is stored or sent).

use std::collections::HashMap;

use domain::{ClientId, OrderId, OrderState};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use platform::http::{self, ApiError, Route};
use platform::trading::orders::{self, OrderInput};

pub const ROUTES: &[Route] = &[
    Route::new(Method::POST, "/v1/operator/orders"),
    Route::new(Method::GET, "/v1/operator/orders"),
    Route::new(Method::POST, "/v1/operator/orders/preview"),
    Route::new(Method::POST, "/v1/operator/orders/{id}/cancel"),
    Route::new(Method::GET, "/v1/operator/clients/{id}"),
];

/// The query string, from API Gateway's parsed parameters or, failing those, the URI.
fn query(req: &Request) -> HashMap<String, String> {
    let mut params = HashMap::new();
    if let Some(map) = req.query_string_parameters_ref() {
        for (name, _) in map.iter() {
            if let Some(value) = map.first(name) {
                params.insert(name.to_owned(), value.to_owned());
            }
        }
    }
    if params.is_empty() {
        if let Some(raw) = req.uri().query() {
            for (name, value) in url::form_urlencoded::parse(raw.as_bytes()) {
                params
                    .entry(name.into_owned())
                    .or_insert_with(|| value.into_owned());
            }
        }
    }
    params
}

/// The `{id}` of a matched template, from API Gateway's path parameters or the match itself.
fn id_param(req: &Request, matched: &[(String, String)]) -> Option<String> {
    http::path_param(req, "id").or_else(|| {
        matched
            .iter()
            .find(|(k, _)| k == "id")
            .map(|(_, v)| v.clone())
    })
}

pub async fn handle(app: &platform::App, req: Request) -> Response<Body> {
    // Boxed: the route futures are large (several Dfns and DynamoDB calls joined) and would
    // otherwise live on the caller's stack.
    Box::pin(http::serve(req, |req, request_id| async move {
        let path = req.uri().path().to_owned();
        let route = ROUTES
            .iter()
            .enumerate()
            .filter_map(|(i, r)| http::match_path(r.path, &path).map(|m| (i, r, m)))
            .collect::<Vec<_>>();
        if route.is_empty() {
            return Err(ApiError::not_found("no such route"));
        }
        let Some((index, _, matched)) =
            route.into_iter().find(|(_, r, _)| r.method == req.method())
        else {
            return Err(ApiError::method_not_allowed());
        };
        let principal = http::principal(app, &req).await?;
        if !principal.is_operator() {
            return Err(ApiError::forbidden("this route is for the trading desk"));
        }
        let operator = principal.subject.clone();
        let config = platform::trading::config().map_err(http::log_failure)?;
        match index {
            0 => {
                let input: OrderInput = http::json_body(&req)?;
                let order = orders::create_order(app, config, &operator, &input, &request_id)
                    .await
                    .map_err(http::log_failure)?;
                Ok(http::json_response(StatusCode::CREATED, &order))
            }
            1 => {
                let params = query(&req);
                let client = match params.get("clientId") {
                    Some(raw) => Some(
                        ClientId::parse(raw)
                            .map_err(|e| ApiError::bad_request(format!("clientId: {e}")))?,
                    ),
                    None => None,
                };
                let state = match params.get("status") {
                    Some(raw) => Some(OrderState::parse(raw).ok_or_else(|| {
                        ApiError::bad_request(format!("status `{raw}` is not an order state"))
                    })?),
                    None => None,
                };
                let items = orders::list_orders(app, client.as_ref(), state)
                    .await
                    .map_err(http::log_failure)?;
                Ok(http::json_response(
                    StatusCode::OK,
                    &serde_json::json!({ "items": items }),
                ))
            }
            2 => {
                let input: OrderInput = http::json_body(&req)?;
                if input.execute_at.is_some() {
                    return Err(ApiError::bad_request(
                        "a preview is for now: executeAt is not accepted",
                    ));
                }
                let preview = orders::preview_order(app, config, &input)
                    .await
                    .map_err(http::log_failure)?;
                Ok(http::json_response(StatusCode::OK, &preview))
            }
            3 => {
                let id = id_param(&req, &matched)
                    .and_then(|raw| OrderId::parse(&raw).ok())
                    .ok_or_else(|| ApiError::not_found("no such order"))?;
                let cancelled = orders::cancel_order(app, &operator, &id, &request_id)
                    .await
                    .map_err(http::log_failure)?;
                Ok(http::json_response(StatusCode::OK, &cancelled))
            }
            _ => {
                let client = id_param(&req, &matched)
                    .and_then(|raw| ClientId::parse(&raw).ok())
                    .ok_or_else(|| ApiError::not_found("no such client"))?;
                let view = orders::client_view(app, &client)
                    .await
                    .map_err(http::log_failure)?;
                Ok(http::json_response(StatusCode::OK, &view))
            }
        }
    }))
    .await
}

// Tests of the crate as its callers use it, against the stand-ins and the Dfns emulator.
// Kept in the library rather than tests/: an integration test would make cargo link the binary
// too (~45 MB of CI disk each) for nothing.
#[cfg(test)]
mod route_tests;
