//! The HTTP surface every function shares: the extractors that parse and authorize a request once
//! ([`Client`], [`Operator`], [`Json`], [`Query`], [`Path`], [`RequestIdentity`]), the one error
//! shape, and the outer layer ([`service`]) that gives each request its id, span and log line and
//! answers unknown paths (404) and wrong methods (405 with `Allow`) in that shape.
//!
//! Each HTTP function builds an [`aide`] `ApiRouter<App>` from named async handlers; its Lambda
//! `main` runs [`service`] of it with `lambda_http`, the local stack merges the routers, and the
//! OpenAPI document is generated from the same routers (handlers' extractors and return types).
//!
//! Every error answers `{"error":{"code","message","requestId"}}` with the statuses of
//! docs/design.md ("Errors"): 400 bad input (nothing changed), 401 no or bad token, 403 wrong role,
//! 404 not found or not yours, 405 wrong method, 409 conflict, 413 body over [`MAX_BODY_BYTES`],
//! 415 not JSON, 429 / 503 upstream throttled or down (retryable), 500 with no internals. A body
//! is refused (413) before it is read past the limit, and JSON nested deeper than
//! [`MAX_JSON_DEPTH`] (400) before it is deserialised: neither stores anything.

use std::collections::HashMap;

use aide::OperationInput;
use aide::OperationOutput;
use aide::axum::ApiRouter;
use aide::generate::GenContext;
use aide::openapi::{
    MediaType, Operation, Response as DocResponse, SchemaObject, StatusCode as DocStatus,
};
use axum::extract::rejection::{
    BytesRejection, FailedToBufferBody, JsonRejection, PathRejection, QueryRejection,
};
use axum::extract::{FromRequest, FromRequestParts, Request as AxumRequest};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lambda_http::request::RequestContext;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::App;

/// A function's routes, documented: what each HTTP function's `router()` returns.
pub type FunctionRouter = ApiRouter<App>;

/// The name of the bearer-token security scheme in the OpenAPI document.
pub const BEARER_SCHEME: &str = "bearer";

/// The error every route answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable, machine-readable.
    pub code: &'static str,
    /// For people; never carries internals.
    pub message: String,
    /// Seconds the caller should wait before trying again, sent as `Retry-After` (429 of a
    /// client's own quota or rate, [`ApiError::too_many_requests`]).
    pub retry_after_seconds: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_seconds: None,
        }
    }
    /// 429 for a limit of the caller's own (a quota, a rate), with `Retry-After`.
    pub fn too_many_requests(
        code: &'static str,
        message: impl Into<String>,
        retry_after_seconds: u32,
    ) -> Self {
        Self {
            retry_after_seconds: Some(retry_after_seconds),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, code, message)
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
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON, sent with `Content-Type: application/json`",
        )
    }
    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {} KiB", MAX_BODY_BYTES / 1024),
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

    /// The body on the wire, carrying the request id.
    pub fn body(&self, request_id: &str) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message.clone(),
                request_id: request_id.to_owned(),
            },
        }
    }

    /// The complete response, for code outside a router (the local stack's own refusals).
    pub fn into_response_with_id(self, request_id: &str) -> Response {
        let retry_after = self.retry_after_header();
        let mut response = (self.status, axum::Json(self.body(request_id))).into_response();
        if let Some(value) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }

    fn retry_after_header(&self) -> Option<HeaderValue> {
        self.retry_after_seconds.map(HeaderValue::from)
    }
}

/// Inside a router an error leaves its handler without the request id; the outer layer
/// ([`service`]) finds it in the response's extensions and writes the body with the id.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        if let Some(value) = self.retry_after_header() {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response.extensions_mut().insert(self);
        response
    }
}

/// What a handler's `ApiError` may be: documented per route by [`errors`]; the type itself adds
/// the statuses any route can answer (an upstream throttling or down, our own failure).
impl OperationOutput for ApiError {
    type Inner = ErrorBody;

    fn operation_response(ctx: &mut GenContext, operation: &mut Operation) -> Option<DocResponse> {
        axum::Json::<ErrorBody>::operation_response(ctx, operation)
    }

    fn inferred_responses(
        ctx: &mut GenContext,
        operation: &mut Operation,
    ) -> Vec<(Option<DocStatus>, DocResponse)> {
        error_responses(ctx, operation, &[429, 500, 503])
    }
}

/// The error responses with these statuses, each in the one error shape.
fn error_responses(
    ctx: &mut GenContext,
    operation: &mut Operation,
    statuses: &[u16],
) -> Vec<(Option<DocStatus>, DocResponse)> {
    statuses
        .iter()
        .filter_map(|status| {
            let mut response = ApiError::operation_response(ctx, operation)?;
            response.description = error_description(*status).to_owned();
            Some((Some(DocStatus::Code(*status)), response))
        })
        .collect()
}

fn error_description(status: u16) -> &'static str {
    match status {
        400 => "bad input; nothing was changed",
        401 => "no bearer token, or one that is not valid",
        403 => "the token's role may not use this route",
        404 => "not found, or not the caller's",
        409 => "the resource is not in a state that allows this",
        413 => "the body is larger than 64 KiB; nothing was changed",
        415 => "the body is not declared as JSON",
        429 => "an upstream service is throttling; retry later",
        500 => "internal error",
        503 => "an upstream service is unavailable; retry later",
        _ => "error",
    }
}

/// Documents the route-specific error statuses of a handler (beyond those its extractors and
/// [`ApiError`] already document): `post_with(h, |op| errors(op, &[404, 409]))`.
pub fn errors<'t>(
    mut op: aide::transform::TransformOperation<'t>,
    statuses: &[u16],
) -> aide::transform::TransformOperation<'t> {
    aide::generate::in_context(|ctx| {
        let operation = op.inner_mut();
        let responses = error_responses(ctx, operation, statuses);
        let documented = operation.responses.get_or_insert_with(Default::default);
        for (status, response) in responses {
            if let Some(status) = status {
                documented
                    .responses
                    .entry(status)
                    .or_insert(aide::openapi::ReferenceOr::Item(response));
            }
        }
    });
    op
}

/// Documents a route's 429 as a limit of the caller's own (`description`: which), answered with a
/// `Retry-After` header (seconds): `post_with(h, |op| http::retry_after_429(op, "…"))`.
pub fn retry_after_429<'t>(
    mut op: aide::transform::TransformOperation<'t>,
    description: &str,
) -> aide::transform::TransformOperation<'t> {
    aide::generate::in_context(|ctx| {
        let operation = op.inner_mut();
        let Some((_, mut response)) = error_responses(ctx, operation, &[429]).pop() else {
            return;
        };
        response.description = description.to_owned();
        let header = aide::openapi::Header {
            description: Some(
                "seconds to wait before trying again (only on the caller's own limits)".to_owned(),
            ),
            style: aide::openapi::HeaderStyle::Simple,
            required: false,
            deprecated: None,
            format: aide::openapi::ParameterSchemaOrContent::Schema(SchemaObject {
                json_schema: schemars::json_schema!({"type": "integer", "minimum": 1}),
                example: None,
                external_docs: None,
            }),
            example: None,
            examples: Default::default(),
            extensions: Default::default(),
        };
        response.headers.insert(
            "Retry-After".to_owned(),
            aide::openapi::ReferenceOr::Item(header),
        );
        operation
            .responses
            .get_or_insert_with(Default::default)
            .responses
            .insert(
                DocStatus::Code(429),
                aide::openapi::ReferenceOr::Item(response),
            );
    });
    op
}

/// Links the `status` response of a create to the operation that undoes it (its cancel or
/// delete), passing the created resource's `id` as that operation's `id` path parameter: clients
/// and API fuzzers (schemathesis' stateful phase) follow it. `target` is the OpenAPI
/// `operationRef` (`#/paths/~1v1~1things~1{id}/delete`).
pub fn link_id_to<'t>(
    mut op: aide::transform::TransformOperation<'t>,
    status: u16,
    name: &str,
    target: &str,
) -> aide::transform::TransformOperation<'t> {
    let link = aide::openapi::Link {
        description: None,
        operation: aide::openapi::LinkOperation::OperationRef(target.to_owned()),
        request_body: None,
        parameters: [("id".to_owned(), serde_json::json!("$response.body#/id"))]
            .into_iter()
            .collect(),
        server: None,
        extensions: Default::default(),
    };
    if let Some(aide::openapi::ReferenceOr::Item(response)) = op
        .inner_mut()
        .responses
        .as_mut()
        .and_then(|r| r.responses.get_mut(&DocStatus::Code(status)))
    {
        response
            .links
            .insert(name.to_owned(), aide::openapi::ReferenceOr::Item(link));
    }
    op
}

/// The one error shape on the wire: `{"error":{"code","message","requestId"}}`.
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
        log_failure(error)
    }
}

/// Logs a use-case failure at the right level and returns its public face.
pub fn log_failure(error: crate::PlatformError) -> ApiError {
    let api = error.to_api_error();
    // An upstream throttling us is ours to look at; a caller over its own limit is not.
    let upstream_throttled =
        api.status == StatusCode::TOO_MANY_REQUESTS && api.retry_after_seconds.is_none();
    if api.status.is_server_error() || upstream_throttled {
        tracing::error!(%error, "request failed");
    } else {
        tracing::debug!(%error, "request refused");
    }
    api
}

/// The request's id: API Gateway's, else a fresh one (local runs without a gateway, tests). Set
/// by the outer layer before any handler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    fn of(parts: &Parts) -> Self {
        if let Some(existing) = parts.extensions.get::<RequestId>() {
            return existing.clone();
        }
        let from_gateway = match parts.extensions.get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
            _ => None,
        };
        RequestId(
            from_gateway
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| ulid::Ulid::new().to_string()),
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestId::of(parts))
    }
}

impl OperationInput for RequestId {}

/// Claims API Gateway's JWT authorizer verified, when there is one.
fn gateway_claims(parts: &Parts) -> Option<&HashMap<String, String>> {
    match parts.extensions.get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|jwt| &jwt.claims),
        _ => None,
    }
}

/// The verified caller (401, or 503 when the issuer's keys cannot be had).
async fn principal(parts: &Parts, app: &App) -> Result<auth::Principal, ApiError> {
    app.authenticator()
        .authenticate(&parts.headers, gateway_claims(parts))
        .await
        .map_err(ApiError::from)
}

/// Documents a bearer-token route: the security requirement and its refusals.
fn bearer_input(ctx: &mut GenContext, operation: &mut Operation) {
    let _ = ctx;
    let requirement: aide::openapi::SecurityRequirement = [(BEARER_SCHEME.to_owned(), Vec::new())]
        .into_iter()
        .collect();
    if !operation.security.contains(&requirement) {
        operation.security.push(requirement);
    }
}

/// The caller, a client: the verified token's subject as a client id. 401 without a valid token
/// (or with one whose subject cannot be a client id), 403 for an operator's token.
#[derive(Debug, Clone)]
pub struct Client(pub domain::ClientId);

impl FromRequestParts<App> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let principal = principal(parts, app).await?;
        if principal.is_operator() {
            return Err(ApiError::forbidden("this route is for clients"));
        }
        domain::ClientId::parse(&principal.subject)
            .map(Client)
            .map_err(|_| ApiError::unauthorized())
    }
}

impl OperationInput for Client {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        bearer_input(ctx, operation);
    }
    fn inferred_early_responses(
        ctx: &mut GenContext,
        operation: &mut Operation,
    ) -> Vec<(Option<DocStatus>, DocResponse)> {
        error_responses(ctx, operation, &[401, 403])
    }
}

/// The caller, a trading-desk operator (its token's subject). 401 without a valid token, 403 for
/// a client's.
#[derive(Debug, Clone)]
pub struct Operator(pub String);

impl FromRequestParts<App> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let principal = principal(parts, app).await?;
        if !principal.is_operator() {
            return Err(ApiError::forbidden("this route is for the trading desk"));
        }
        Ok(Operator(principal.subject))
    }
}

impl OperationInput for Operator {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        bearer_input(ctx, operation);
    }
    fn inferred_early_responses(
        ctx: &mut GenContext,
        operation: &mut Operation,
    ) -> Vec<(Option<DocStatus>, DocResponse)> {
        error_responses(ctx, operation, &[401, 403])
    }
}

/// Largest request body any route accepts: 64 KiB. The outer layer ([`service`]) refuses a larger
/// one with 413 before any handler runs (and before reading past the limit).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Deepest nesting of arrays and objects a JSON body may have. No request needs more than a few
/// levels; serde_json's own limit (128) is far above what any route's types take.
pub const MAX_JSON_DEPTH: usize = 32;

/// Whether `json` nests arrays or objects deeper than `max`: one pass over the bytes, counting
/// brackets outside strings (escapes inside strings honoured). Says nothing about validity: a
/// malformed body is serde's to refuse.
pub fn json_nests_deeper_than(json: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Whether the request declares a JSON body: `application/json` or `application/<x>+json`
/// (parameters such as `charset` allowed), as axum's own `Json` decides.
fn declares_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.split_once('/') {
        Some(("application", subtype)) => subtype == "json" || subtype.ends_with("+json"),
        _ => false,
    }
}

/// A JSON body parsed as `T` (whose serde attributes refuse unknown fields): 415 unless declared
/// `application/json`, 413 over [`MAX_BODY_BYTES`], 400 when nested deeper than
/// [`MAX_JSON_DEPTH`] (checked on the bytes, before deserialising) or with serde's reason when it
/// does not parse. As a response, JSON.
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: AxumRequest, state: &S) -> Result<Self, ApiError> {
        if !declares_json(req.headers()) {
            return Err(ApiError::unsupported_media_type());
        }
        let bytes = match axum::body::Bytes::from_request(req, state).await {
            Ok(bytes) => bytes,
            Err(BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_))) => {
                return Err(ApiError::payload_too_large());
            }
            Err(_) => return Err(ApiError::bad_request("could not read the body")),
        };
        if bytes.len() > MAX_BODY_BYTES {
            return Err(ApiError::payload_too_large());
        }
        if json_nests_deeper_than(&bytes, MAX_JSON_DEPTH) {
            return Err(ApiError::bad_request(format!(
                "invalid JSON body: nested deeper than {MAX_JSON_DEPTH} levels"
            )));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(JsonRejection::MissingJsonContentType(_)) => {
                Err(ApiError::unsupported_media_type())
            }
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::bad_request(format!(
                "invalid JSON body: {}",
                e.body_text()
            ))),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::bad_request(format!(
                "invalid JSON body: {}",
                e.body_text()
            ))),
            Err(other) => Err(ApiError::bad_request(format!(
                "invalid JSON body: {}",
                other.body_text()
            ))),
        }
    }
}

/// The schema of what serde *accepts* as `T` (the deserialising contract: a field with a default
/// or an `Option` is optional), inline. Requests are documented with it; responses with what
/// serde *writes* (the generator [`documented`] sets up).
fn accepted_schema<T: JsonSchema>() -> schemars::Schema {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .for_deserialize()
        .into_generator();
    let mut schema = generator.root_schema_for::<T>().to_value();
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
        object.remove("title");
    }
    schema.try_into().unwrap_or_default()
}

/// Documents a required JSON request body with `schema`, and the 413 of one over
/// [`MAX_BODY_BYTES`] (which the outer layer answers on every route).
pub fn document_json_body(
    ctx: &mut GenContext,
    operation: &mut Operation,
    description: Option<&str>,
    schema: schemars::Schema,
) {
    let too_large = error_responses(ctx, operation, &[413]);
    let documented = operation.responses.get_or_insert_with(Default::default);
    for (status, response) in too_large {
        if let Some(status) = status {
            documented
                .responses
                .entry(status)
                .or_insert(aide::openapi::ReferenceOr::Item(response));
        }
    }
    aide::operation::set_body(
        ctx,
        operation,
        aide::openapi::RequestBody {
            description: description.map(str::to_owned),
            content: [(
                "application/json".to_owned(),
                MediaType {
                    schema: Some(SchemaObject {
                        json_schema: schema,
                        example: None,
                        external_docs: None,
                    }),
                    ..Default::default()
                },
            )]
            .into_iter()
            .collect(),
            required: true,
            extensions: Default::default(),
        },
    );
}

/// Documents a request header `name` with `schema`.
pub fn document_header(
    ctx: &mut GenContext,
    operation: &mut Operation,
    name: &str,
    description: &str,
    required: bool,
    schema: schemars::Schema,
) {
    aide::operation::add_parameters(
        ctx,
        operation,
        [aide::openapi::Parameter::Header {
            parameter_data: aide::openapi::ParameterData {
                name: name.to_owned(),
                description: Some(description.to_owned()),
                required,
                format: aide::openapi::ParameterSchemaOrContent::Schema(SchemaObject {
                    json_schema: schema,
                    example: None,
                    external_docs: None,
                }),
                extensions: Default::default(),
                deprecated: None,
                example: None,
                examples: Default::default(),
                explode: None,
            },
            style: aide::openapi::HeaderStyle::Simple,
        }],
    );
}

/// Documents `T`'s fields as parameters in `location`, as serde accepts them.
fn document_parameters<T: JsonSchema>(
    ctx: &mut GenContext,
    operation: &mut Operation,
    location: aide::operation::ParamLocation,
) {
    let params = aide::operation::parameters_from_schema(ctx, accepted_schema::<T>(), location);
    aide::operation::add_parameters(ctx, operation, params);
}

/// `T`'s JSON response under the one success status `status`.
pub fn json_response_at<T: JsonSchema>(
    ctx: &mut GenContext,
    operation: &mut Operation,
    status: u16,
) -> Vec<(Option<DocStatus>, DocResponse)> {
    axum::Json::<T>::operation_response(ctx, operation)
        .map(|r| vec![(Some(DocStatus::Code(status)), r)])
        .unwrap_or_default()
}

/// Request bodies are documented as what serde accepts.
impl<T: JsonSchema> OperationInput for Json<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        document_json_body(ctx, operation, None, accepted_schema::<T>());
    }
    fn inferred_early_responses(
        ctx: &mut GenContext,
        operation: &mut Operation,
    ) -> Vec<(Option<DocStatus>, DocResponse)> {
        error_responses(ctx, operation, &[400, 415])
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl<T: JsonSchema> OperationOutput for Json<T> {
    type Inner = T;

    fn operation_response(ctx: &mut GenContext, operation: &mut Operation) -> Option<DocResponse> {
        axum::Json::<T>::operation_response(ctx, operation)
    }

    fn inferred_responses(
        ctx: &mut GenContext,
        operation: &mut Operation,
    ) -> Vec<(Option<DocStatus>, DocResponse)> {
        json_response_at::<T>(ctx, operation, 200)
    }
}

/// The `Idempotency-Key` header: 1 to 255 visible ASCII characters, chosen by the caller.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// A JSON body parsed as `T` (as [`Json`]) with the request's `Idempotency-Key`, required when
/// `REQUIRED`. The key, scoped to the caller and the route, and a digest of the body go into the
/// create's own transaction (see `store::idempotency`): the same key and body answer what the first
/// request created, the same key with another body is a 409.
pub struct IdempotentJson<T, const REQUIRED: bool> {
    pub body: T,
    pub key: Option<Idempotency>,
}

/// A request's idempotency key, not yet scoped to its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    key: String,
    route: String,
    fingerprint: String,
}

impl Idempotency {
    /// The key as the store keeps it: `caller` (e.g. `client:alice`) and the route scope it.
    pub fn for_caller(&self, caller: &str) -> store::IdempotencyKey {
        store::IdempotencyKey {
            scope: format!("{caller}:{}", self.route),
            key: self.key.clone(),
            fingerprint: self.fingerprint.clone(),
        }
    }
}

fn idempotency_key_is_valid(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| (b'!'..=b'~').contains(&b))
}

/// The body's digest: SHA-256 of its JSON with object keys sorted, so the same request sent
/// with other spacing or key order is the same request.
fn fingerprint(value: &serde_json::Value) -> String {
    fn canonical(value: &serde_json::Value, out: &mut String) {
        match value {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(key.clone()).to_string());
                    out.push(':');
                    canonical(&map[key], out);
                }
                out.push('}');
            }
            serde_json::Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    canonical(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    use sha2::Digest;
    let mut text = String::new();
    canonical(value, &mut text);
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

impl<T: DeserializeOwned, S: Send + Sync, const REQUIRED: bool> FromRequest<S>
    for IdempotentJson<T, REQUIRED>
{
    type Rejection = ApiError;

    async fn from_request(req: AxumRequest, state: &S) -> Result<Self, ApiError> {
        let header = req
            .headers()
            .get(IDEMPOTENCY_KEY_HEADER)
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let key = match header {
            Some(key) if idempotency_key_is_valid(&key) => Some(key),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "Idempotency-Key must be 1 to 255 visible ASCII characters",
                ));
            }
            None if REQUIRED => {
                return Err(ApiError::bad_request(
                    "an Idempotency-Key header is required on this route",
                ));
            }
            None => None,
        };
        let route = format!(
            "{} {}",
            req.method(),
            req.extensions()
                .get::<axum::extract::MatchedPath>()
                .map_or_else(|| req.uri().path().to_owned(), |m| m.as_str().to_owned())
        );
        let Json(value) = Json::<serde_json::Value>::from_request(req, state).await?;
        let fingerprint = fingerprint(&value);
        let body = serde_json::from_value::<T>(value)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
        Ok(IdempotentJson {
            body,
            key: key.map(|key| Idempotency {
                key,
                route,
                fingerprint,
            }),
        })
    }
}

impl<T: JsonSchema, const REQUIRED: bool> OperationInput for IdempotentJson<T, REQUIRED> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        let schema = schemars::json_schema!({
            "type": "string",
            "pattern": "^[!-~]{1,255}$",
            "description": "the caller's unique key for this create: a retry with the same key and body answers what the first created; the same key with another body is a 409"
        });
        document_header(
            ctx,
            operation,
            "Idempotency-Key",
            "makes a retry of this create safe (kept 24 hours)",
            REQUIRED,
            schema,
        );
        Json::<T>::operation_input(ctx, operation);
    }
    fn inferred_early_responses(
        ctx: &mut GenContext,
        operation: &mut Operation,
    ) -> Vec<(Option<DocStatus>, DocResponse)> {
        error_responses(ctx, operation, &[400, 409, 415])
    }
}

/// The query string parsed as `T` (bounds and formats checked by `T`'s own parsing): 400 with
/// the reason when it does not parse.
#[derive(Debug, Clone)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::bad_request(
                format!("invalid query string: {}", e.body_text()),
            )),
            Err(other) => Err(ApiError::bad_request(other.body_text())),
        }
    }
}

impl<T: JsonSchema> OperationInput for Query<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        document_parameters::<T>(ctx, operation, aide::operation::ParamLocation::Query);
    }
    fn inferred_early_responses(
        ctx: &mut GenContext,
        operation: &mut Operation,
    ) -> Vec<(Option<DocStatus>, DocResponse)> {
        error_responses(ctx, operation, &[400])
    }
}

/// The path's parameters parsed as `T`. A parameter that does not parse (a malformed id) cannot
/// name anyone's resource: 404, like an unknown one.
#[derive(Debug, Clone)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => {
                Err(ApiError::not_found("no such resource"))
            }
            Err(other) => {
                tracing::error!(error = %other.body_text(), "path parameters missing");
                Err(ApiError::internal())
            }
        }
    }
}

impl<T: JsonSchema> OperationInput for Path<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        document_parameters::<T>(ctx, operation, aide::operation::ParamLocation::Path);
    }
    fn inferred_early_responses(
        ctx: &mut GenContext,
        operation: &mut Operation,
    ) -> Vec<(Option<DocStatus>, DocResponse)> {
        error_responses(ctx, operation, &[404])
    }
}

/// `201 Created` with a JSON body.
#[derive(Debug, Clone)]
pub struct Created<T>(pub T);

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        (StatusCode::CREATED, axum::Json(self.0)).into_response()
    }
}

impl<T: JsonSchema> OperationOutput for Created<T> {
    type Inner = T;

    fn operation_response(ctx: &mut GenContext, operation: &mut Operation) -> Option<DocResponse> {
        axum::Json::<T>::operation_response(ctx, operation)
    }

    fn inferred_responses(
        ctx: &mut GenContext,
        operation: &mut Operation,
    ) -> Vec<(Option<DocStatus>, DocResponse)> {
        json_response_at::<T>(ctx, operation, 201)
    }
}

/// A JSON body answered with one of two success statuses: `200 OK` for what already existed,
/// `201 Created` (or `202 Accepted`) for what this call started.
#[derive(Debug, Clone)]
pub struct Either<T> {
    pub status: StatusCode,
    pub body: T,
}

impl<T: Serialize> IntoResponse for Either<T> {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

impl<T: JsonSchema> OperationOutput for Either<T> {
    type Inner = T;
    fn operation_response(ctx: &mut GenContext, operation: &mut Operation) -> Option<DocResponse> {
        axum::Json::<T>::operation_response(ctx, operation)
    }
    // The statuses are the route's: documented by its transform.
}

/// `{"items": [...]}`, the shape of every unpaged list.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(rename = "{T}List")]
pub struct Items<T> {
    pub items: Vec<T>,
}

/// The outer layer of every function: a request id (API Gateway's, else a fresh one) on the
/// request and in a span, one log line per request (status, latency; never bodies or tokens), the
/// error shape with the request id for every refusal, 404 for an unknown path and 405 with
/// `Allow` for a method the path does not serve.
pub fn service(router: FunctionRouter, app: App) -> axum::Router {
    let router: axum::Router<App> = router.into();
    with_outer_layer(router).with_state(app)
}

/// [`service`]'s layer on a router that is not documented (the local stack's merged one).
pub fn with_outer_layer<S: Clone + Send + Sync + 'static>(
    router: axum::Router<S>,
) -> axum::Router<S> {
    router
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(limit_body))
        .layer(axum::middleware::from_fn(request_scope))
}

/// Refuses a body over [`MAX_BODY_BYTES`] with 413 before any handler runs, on every route (the
/// webhook's raw body included): at once when its declared length is over, else after reading at
/// most the limit and one frame more. The handler gets the body read so far, in memory (as Lambda
/// hands it over anyway).
async fn limit_body(req: AxumRequest, next: Next) -> Response {
    use axum::body::HttpBody;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let (parts, mut body) = req.into_parts();
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64)
        || body.size_hint().lower() > MAX_BODY_BYTES as u64
    {
        return ApiError::payload_too_large().into_response();
    }
    let mut read = Vec::new();
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        let Ok(frame) = frame else {
            return ApiError::bad_request("could not read the body").into_response();
        };
        if let Ok(data) = frame.into_data() {
            if read.len() + data.len() > MAX_BODY_BYTES {
                return ApiError::payload_too_large().into_response();
            }
            read.extend_from_slice(&data);
        }
    }
    next.run(AxumRequest::from_parts(parts, axum::body::Body::from(read)))
        .await
}

async fn unknown_route() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

async fn request_scope(mut req: AxumRequest, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let request_id = RequestId::of(&parts);
    parts.extensions.insert(request_id.clone());
    req = AxumRequest::from_parts(parts, body);
    let span = tracing::info_span!(
        "request",
        request_id = %request_id.0,
        method = %req.method(),
        path = %req.uri().path(),
    );
    async move {
        let started = std::time::Instant::now();
        let mut response = next.run(req).await;
        if let Some(error) = response.extensions_mut().remove::<ApiError>() {
            let (parts, _) = response.into_parts();
            let body = serde_json::to_vec(&error.body(&request_id.0)).unwrap_or_default();
            response = Response::from_parts(parts, axum::body::Body::from(body));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response.headers_mut().remove(header::CONTENT_LENGTH);
        }
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

/// Calls `router` once with a `lambda_http` request, as the Lambda runtime does, and collects
/// the response: for tests of a function's routes.
pub async fn call(
    router: FunctionRouter,
    app: &App,
    req: lambda_http::Request,
) -> lambda_http::Response<lambda_http::Body> {
    use tower::ServiceExt;
    let (parts, body) = req.into_parts();
    let bytes = body.as_ref().to_vec();
    let req = AxumRequest::from_parts(parts, axum::body::Body::from(bytes));
    let response = match service(router, app.clone()).oneshot(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let body = match String::from_utf8(bytes.to_vec()) {
        Ok(text) if text.is_empty() => lambda_http::Body::Empty,
        Ok(text) => lambda_http::Body::Text(text),
        Err(e) => lambda_http::Body::Binary(e.into_bytes()),
    };
    lambda_http::Response::from_parts(parts, body)
}

/// The OpenAPI document of these routers (merged; a path served twice is refused by axum).
pub fn document(router: FunctionRouter) -> (axum::Router<App>, aide::openapi::OpenApi) {
    let mut api = aide::openapi::OpenApi {
        info: aide::openapi::Info {
            title: "Managed accounts platform".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: Some(
                "Clients' managed accounts on Dfns: accounts, destinations, reporting, trading \
                 authorizations, the trading desk's orders, and the Dfns webhook."
                    .to_owned(),
            ),
            ..Default::default()
        },
        ..Default::default()
    };
    let router = router.finish_api_with(&mut api, |api| {
        api.security_scheme(
            BEARER_SCHEME,
            aide::openapi::SecurityScheme::Http {
                scheme: "bearer".to_owned(),
                bearer_format: Some("JWT".to_owned()),
                description: Some(
                    "an access token of the configured identity provider; its `sub` is the client id"
                        .to_owned(),
                ),
                extensions: Default::default(),
            },
        )
    });
    (router, api)
}

/// Every `(METHOD, path template)` these routers serve, from their documentation (which aide
/// builds from the same `api_route` calls that route).
pub fn routes_of(router: FunctionRouter) -> Vec<(String, String)> {
    let (_, api) = document(router);
    let mut routes = Vec::new();
    for (path, item) in api.paths.iter().flat_map(|p| p.paths.iter()) {
        if let Some(item) = item.as_item() {
            for (method, _) in item.iter() {
                routes.push((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    routes.sort();
    routes
}

/// Sets up the documentation generator for this thread: JSON Schema 2020-12 (what OpenAPI 3.1
/// uses), reusable schemas under `components/schemas`, responses documented as what serde writes.
/// Each function's `router()` calls it first; it is cheap and idempotent.
pub fn documented() -> FunctionRouter {
    thread_local! {
        static READY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if !READY.with(|ready| ready.replace(true)) {
        aide::generate::in_context(|ctx| {
            ctx.schema = SchemaSettings::draft2020_12()
                .with(|s| {
                    s.definitions_path = "#/components/schemas/".into();
                })
                .for_serialize()
                .into_generator();
        });
        aide::generate::infer_responses(true);
        aide::generate::all_error_responses(false);
    }
    ApiRouter::new()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_shape_carries_code_message_and_request_id() {
        let body = ApiError::not_found("no such request").body("req-1");
        assert_eq!(
            serde_json::to_value(body).unwrap(),
            serde_json::json!({"error": {"code": "not_found", "message": "no such request", "requestId": "req-1"}})
        );
    }

    #[test]
    fn a_callers_own_limit_is_a_429_with_retry_after_in_the_error_shape() {
        let error = ApiError::too_many_requests("rate_limited", "slow down", 17);
        let response = error.clone().into_response_with_id("req-9");
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "17");
        assert_eq!(
            serde_json::to_value(error.body("req-9")).unwrap(),
            serde_json::json!({"error": {"code": "rate_limited", "message": "slow down", "requestId": "req-9"}})
        );
        let in_router = error.into_response();
        assert_eq!(in_router.headers()[header::RETRY_AFTER], "17");
        assert!(
            ApiError::throttled().retry_after_seconds.is_none(),
            "an upstream's throttling names no time"
        );
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let error = crate::PlatformError::Internal("table t-secret-name is corrupt".into());
        let api = error.to_api_error();
        assert_eq!(api.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!api.message.contains("t-secret-name"));
    }

    /// A route taking a JSON body, behind the outer layer, and what it was handed.
    fn echo() -> axum::Router {
        async fn echo(Json(value): Json<serde_json::Value>) -> Json<serde_json::Value> {
            Json(value)
        }
        async fn raw(body: axum::body::Bytes) -> String {
            body.len().to_string()
        }
        with_outer_layer(
            axum::Router::new()
                .route("/echo", axum::routing::post(echo))
                .route("/raw", axum::routing::post(raw)),
        )
    }

    async fn post(path: &str, body: Vec<u8>, declare_length: bool) -> (StatusCode, String) {
        use tower::ServiceExt;
        let mut request = AxumRequest::builder()
            .method("POST")
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json");
        if declare_length {
            request = request.header(header::CONTENT_LENGTH, body.len());
        }
        let request = request.body(axum::body::Body::from(body)).unwrap();
        let response = echo().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    /// `{"pad":"…"}` of exactly `len` bytes.
    fn json_of_len(len: usize) -> Vec<u8> {
        let pad = len - r#"{"pad":""}"#.len();
        format!(r#"{{"pad":"{}"}}"#, "x".repeat(pad)).into_bytes()
    }

    fn error_of(text: &str) -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(text).unwrap()["error"].clone()
    }

    #[tokio::test]
    async fn a_body_over_64_kib_is_413_on_every_route_and_reaches_no_handler() {
        for path in ["/echo", "/raw"] {
            for declare_length in [true, false] {
                let (status, text) =
                    post(path, json_of_len(MAX_BODY_BYTES + 1), declare_length).await;
                assert_eq!(
                    status,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "{path} {declare_length}"
                );
                let error = error_of(&text);
                assert_eq!(error["code"], "payload_too_large");
                assert_eq!(error["message"], "the body is larger than 64 KiB");
                assert!(error["requestId"].is_string());
            }
        }
        // A declared length over the limit is refused without reading the body.
        use tower::ServiceExt;
        let request = AxumRequest::builder()
            .method("POST")
            .uri("/raw")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, MAX_BODY_BYTES + 1)
            .body(axum::body::Body::from_stream(futures::stream::pending::<
                Result<axum::body::Bytes, std::io::Error>,
            >()))
            .unwrap();
        let response =
            tokio::time::timeout(std::time::Duration::from_secs(5), echo().oneshot(request))
                .await
                .expect("answered without waiting for the body")
                .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn json_refuses_a_body_over_64_kib_even_without_the_outer_layer() {
        use tower::ServiceExt;
        async fn echo(Json(value): Json<serde_json::Value>) -> Json<serde_json::Value> {
            Json(value)
        }
        let bare = axum::Router::new().route("/echo", axum::routing::post(echo));
        for (len, expected) in [
            (MAX_BODY_BYTES + 1, StatusCode::PAYLOAD_TOO_LARGE),
            (MAX_BODY_BYTES, StatusCode::OK),
        ] {
            let request = AxumRequest::builder()
                .method("POST")
                .uri("/echo")
                .header(header::CONTENT_TYPE, "application/json")
                .body(axum::body::Body::from(json_of_len(len)))
                .unwrap();
            let response = bare.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), expected, "{len}");
            if expected != StatusCode::OK {
                let error = response.extensions().get::<ApiError>().unwrap();
                assert_eq!(error.code, "payload_too_large");
            }
        }
    }

    #[tokio::test]
    async fn a_body_of_64_kib_and_smaller_ones_are_served_as_before() {
        for len in [MAX_BODY_BYTES, 1000, 10] {
            let body = json_of_len(len);
            let (status, text) = post("/echo", body.clone(), true).await;
            assert_eq!(status, StatusCode::OK, "{len}");
            assert_eq!(text.as_bytes(), &body[..], "{len}");
            let (status, text) = post("/raw", body, false).await;
            assert_eq!((status, text), (StatusCode::OK, len.to_string()));
        }
        let (status, _) = post("/echo", b"{\"a\":[1,{\"b\":[2]}]}".to_vec(), true).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn json_nested_deeper_than_32_levels_is_400_before_deserialising() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        for depth in [33, 65, 1000] {
            let (status, text) = post("/echo", nested(depth).into_bytes(), true).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{depth}");
            let error = error_of(&text);
            assert_eq!(error["code"], "bad_request");
            assert_eq!(
                error["message"], "invalid JSON body: nested deeper than 32 levels",
                "{depth}"
            );
        }
        let (status, text) = post("/echo", nested(32).into_bytes(), true).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(text, nested(32));
        // Objects count as arrays do.
        let objects = format!("{}1{}", r#"{"a":"#.repeat(33), "}".repeat(33));
        let (status, _) = post("/echo", objects.into_bytes(), true).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn the_depth_scan_counts_brackets_outside_strings_only() {
        assert!(!json_nests_deeper_than(b"[[]]", 2));
        assert!(json_nests_deeper_than(b"[[[]]]", 2));
        assert!(json_nests_deeper_than(br#"{"a":{"b":[1]}}"#, 2));
        assert!(!json_nests_deeper_than(br#"{"a":"[[[[{{{{"}"#, 1));
        assert!(!json_nests_deeper_than(br#"["\"[[[[", "\\", "[[["]"#, 1));
        assert!(json_nests_deeper_than(br#"["\\", [[]]]"#, 2));
        // Closing brackets never go below zero: `]]]]` cannot buy depth for later brackets.
        assert!(json_nests_deeper_than(b"]]]][[[", 2));
        assert!(!json_nests_deeper_than("[\"é[[[\"]".as_bytes(), 1));
    }

    #[test]
    fn json_is_what_declares_application_json_or_a_json_suffix() {
        let declares = |value: &str| {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
            declares_json(&headers)
        };
        for yes in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/problem+json",
        ] {
            assert!(declares(yes), "{yes}");
        }
        for no in [
            "text/json",
            "application/jsonx",
            "text/plain",
            "application/x-www-form-urlencoded",
        ] {
            assert!(!declares(no), "{no}");
        }
        assert!(!declares_json(&axum::http::HeaderMap::new()));
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
