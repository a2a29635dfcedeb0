//! The HTTP glue every function shares: routes, request ids, the caller's identity, JSON bodies,
//! the one error shape, and a span per request.
//!
//! Every error answers `{"error":{"code","message","requestId"}}` with design.md's statuses:
//! 400 bad input (nothing changed), 401 no or bad token, 403 wrong role, 404 not found or not
//! yours, 409 conflict, 429 / 503 upstream throttled or down (retryable), 500 with no internals.

use std::collections::HashMap;
use std::future::Future;

use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::App;

/// One route a function serves: method and path template (`/v1/destination-requests/{id}`), as
/// API Gateway names it. The local stack routes with the same table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
}

impl Route {
    pub const fn new(method: Method, path: &'static str) -> Self {
        Self { method, path }
    }
}

/// The error every route answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable, machine-readable.
    pub code: &'static str,
    /// For people; never carries internals.
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        )
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this route",
        )
    }
    pub fn throttled() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            "an upstream service is throttling; retry later",
        )
    }
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "an upstream service is unavailable; retry later",
        )
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    /// The response, carrying the request id.
    pub fn into_response(self, request_id: &str) -> Response<Body> {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                request_id: request_id.to_owned(),
            },
        };
        json_response(self.status, &body)
    }
}

/// The one error shape on the wire: `{"error":{"code","message","requestId"}}`. A type (rather
/// than a `json!`) so the OpenAPI document's schema is derived from what is actually sent.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[schemars(rename = "Error")]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    /// Stable, machine-readable.
    pub code: String,
    /// For people; never carries internals.
    pub message: String,
    /// The request id, for correlation with logs.
    pub request_id: String,
}

impl From<auth::AuthError> for ApiError {
    fn from(error: auth::AuthError) -> Self {
        if error.is_retryable() {
            ApiError::unavailable()
        } else {
            ApiError::unauthorized()
        }
    }
}

impl From<crate::PlatformError> for ApiError {
    fn from(error: crate::PlatformError) -> Self {
        error.to_api_error()
    }
}

/// A JSON response.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response<Body> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// API Gateway's request id, else a fresh one (local runs, tests).
pub fn request_id(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
        _ => None,
    }
    .filter(|id| !id.is_empty())
    .unwrap_or_else(|| ulid::Ulid::new().to_string())
}

/// Claims API Gateway's JWT authorizer verified, when there is one.
pub fn gateway_claims(req: &Request) -> Option<&HashMap<String, String>> {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|jwt| &jwt.claims),
        _ => None,
    }
}

/// The verified caller (401 / 503 when there is none).
pub async fn principal(app: &App, req: &Request) -> Result<auth::Principal, ApiError> {
    app.authenticator()
        .authenticate(req.headers(), gateway_claims(req))
        .await
        .map_err(ApiError::from)
}

/// The verified caller as a client (a token whose subject is not a usable client id is refused
/// with 401: we cannot tie it to an account).
pub async fn client_principal(app: &App, req: &Request) -> Result<domain::ClientId, ApiError> {
    let principal = principal(app, req).await?;
    if principal.is_operator() {
        return Err(ApiError::forbidden("this route is for clients"));
    }
    domain::ClientId::parse(&principal.subject).map_err(|_| ApiError::unauthorized())
}

/// Parses a JSON body (400 on a missing or malformed body, with serde's reason).
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.is_empty() {
        return Err(ApiError::bad_request("a JSON body is required"));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// A path parameter filled in by API Gateway (or the local stack) from the route template.
pub fn path_param(req: &Request, name: &str) -> Option<String> {
    req.path_parameters_ref()
        .and_then(|params| params.first(name))
        .map(str::to_owned)
}

/// Runs a handler inside a span carrying the request id, turns its error into the error shape,
/// and logs the outcome (status and latency; never bodies or tokens).
pub async fn serve<F, Fut>(req: Request, handler: F) -> Response<Body>
where
    F: FnOnce(Request, String) -> Fut,
    Fut: Future<Output = Result<Response<Body>, ApiError>>,
{
    let request_id = request_id(&req);
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    async move {
        let started = std::time::Instant::now();
        let response = match handler(req, request_id.clone()).await {
            Ok(response) => response,
            Err(error) => error.into_response(&request_id),
        };
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_millis() as u64,
            "request served"
        );
        response
    }
    .instrument(span)
    .await
}

/// Logs a use-case failure at the right level and returns its public face.
pub fn log_failure(error: crate::PlatformError) -> ApiError {
    let api = error.to_api_error();
    if api.status.is_server_error() || api.status == StatusCode::TOO_MANY_REQUESTS {
        tracing::error!(%error, "request failed");
    } else {
        tracing::debug!(%error, "request refused");
    }
    api
}

/// Tracing for a function: JSON lines in Lambda (CloudWatch), compact text elsewhere; level from
/// `RUST_LOG` (default `info`). Safe to call more than once.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let result = if in_lambda {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(true)
            .without_time() // CloudWatch stamps every line
            .try_init()
    } else {
        tracing_subscriber::fmt()
            .compact()
            .with_env_filter(filter)
            .try_init()
    };
    let _ = result;
}

/// Matches a concrete path against a template (`{name}` matches one segment) and returns the
/// captured parameters. Used by functions to dispatch between their routes.
pub fn match_path(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let mut template_segments = template.trim_end_matches('/').split('/');
    let mut path_segments = path.trim_end_matches('/').split('/');
    let mut params = Vec::new();
    loop {
        match (template_segments.next(), path_segments.next()) {
            (None, None) => return Some(params),
            (Some(t), Some(p)) => {
                if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                    if p.is_empty() {
                        return None;
                    }
                    params.push((name.to_owned(), p.to_owned()));
                } else if t != p {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_templates_match_one_segment_per_parameter() {
        assert_eq!(
            match_path(
                "/v1/destination-requests/{id}",
                "/v1/destination-requests/01AB"
            ),
            Some(vec![("id".to_owned(), "01AB".to_owned())])
        );
        assert_eq!(
            match_path("/v1/destination-requests", "/v1/destination-requests/"),
            Some(vec![])
        );
        assert_eq!(
            match_path("/v1/destination-requests/{id}", "/v1/destination-requests"),
            None
        );
        assert_eq!(
            match_path(
                "/v1/destination-requests/{id}",
                "/v1/destination-requests/a/b"
            ),
            None
        );
        assert_eq!(match_path("/v1/accounts", "/v1/account"), None);
    }

    #[test]
    fn error_shape_carries_code_message_and_request_id() {
        let response = ApiError::not_found("no such request").into_response("req-1");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": "not_found", "message": "no such request", "requestId": "req-1"}})
        );
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let error = crate::PlatformError::Internal("table t-secret-name is corrupt".into());
        let api = error.to_api_error();
        assert_eq!(api.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!api.message.contains("t-secret-name"));
    }

    #[test]
    fn bad_tokens_are_401_and_a_key_outage_is_503() {
        assert_eq!(
            ApiError::from(auth::AuthError::MissingToken).status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            ApiError::from(auth::AuthError::JwksUnavailable("down".into())).status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
