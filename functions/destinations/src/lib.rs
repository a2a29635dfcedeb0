//! `destinations`: a client's requests to add or remove a whitelisted destination.
//!
//! - `POST /v1/destination-requests` `{network, address, label, action: "add"|"remove"}` → 201
//!   with the request (its `state` says whether it is queued, pending approval, approved, …);
//! - `GET /v1/destination-requests` → `{"items": [...]}`, newest first;
//! - `DELETE /v1/destination-requests/{id}` → 200 with the cancelled request; 409 unless still
//!   queued; 404 when it is not the caller's.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use platform::destinations::{self, DestinationInput};
use platform::http::{self, ApiError, Route};

pub const ROUTES: &[Route] = &[
    Route::new(Method::POST, "/v1/destination-requests"),
    Route::new(Method::GET, "/v1/destination-requests"),
    Route::new(Method::DELETE, "/v1/destination-requests/{id}"),
];

pub async fn handle(app: &platform::App, req: Request) -> Response<Body> {
    http::serve(req, |req, request_id| async move {
        let path = req.uri().path().to_owned();
        let collection = http::match_path(ROUTES[0].path, &path).is_some();
        let item = http::match_path(ROUTES[2].path, &path).is_some();
        if !collection && !item {
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
        match *req.method() {
            Method::POST => {
                let input: DestinationInput = http::json_body(&req)?;
                let created = destinations::create_request(app, &client, &input, &request_id)
                    .await
                    .map_err(http::log_failure)?;
                Ok(http::json_response(StatusCode::CREATED, &created))
            }
            Method::GET => {
                let items = destinations::list_requests(app, &client)
                    .await
                    .map_err(http::log_failure)?;
                Ok(http::json_response(
                    StatusCode::OK,
                    &serde_json::json!({ "items": items }),
                ))
            }
            _ => {
                // A malformed id cannot name anyone's request: 404 like any unknown one.
                let id = http::path_param(&req, "id")
                    .and_then(|raw| domain::DestinationRequestId::parse(&raw).ok())
                    .ok_or_else(|| ApiError::not_found("no such destination request"))?;
                let cancelled = destinations::cancel_request(app, &client, &id, &request_id)
                    .await
                    .map_err(http::log_failure)?;
                Ok(http::json_response(StatusCode::OK, &cancelled))
            }
        }
    })
    .await
}

// Tests of the crate as its callers use it, against the stand-ins and the Dfns emulator.
// Kept in the library rather than tests/: an integration test would make cargo link the binary
// too (~45 MB of CI disk each) for nothing.
#[cfg(test)]
mod handler_tests;
