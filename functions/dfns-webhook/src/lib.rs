//! `dfns-webhook`: the Dfns event receiver. No token: the body's HMAC signature (and
//! `timestampSent`) proves it comes from Dfns (docs/dfns.md, webhooks). See [`platform::webhook`].
//!
//! | route | handler |
//! |---|---|
//! | `POST /v1/webhooks/dfns` | [`receive_event`] |

use aide::generate::GenContext;
use aide::openapi::Operation;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use platform::App;
use platform::http::post_with;
use platform::http::{self, ApiError, FunctionRouter, Json, RequestId};
use platform::webhook::{self, WebhookError, WebhookOutcome};

/// The secrets this function holds: the webhook secret only. It verifies deliveries and queues
/// them; the consumer applies them (reading Dfns with the read-only account).
pub const SECRETS: platform::SecretsHeld = platform::SecretsHeld::WEBHOOK_RECEIVER;

/// Header carrying `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-dfns-webhook-signature";

/// This function's routes.
pub fn router() -> FunctionRouter {
    http::documented().api_route(
        "/v1/webhooks/dfns",
        post_with(receive_event, |op| {
            http::errors(
                op.summary("Dfns event delivery (HMAC-signed; no bearer token)")
                    .description(
                        "200 once applied, known, or not acted on; 401 and nothing changed when \
                         the signature or `timestampSent` is not accepted; 5xx when applying \
                         failed, so Dfns delivers again.",
                    ),
                &[401],
            )
        }),
    )
}

/// The acknowledgement Dfns gets.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Received {
    /// Always `true`.
    pub received: bool,
    /// What the platform did with the event.
    pub outcome: WebhookOutcome,
}

/// `POST /v1/webhooks/dfns`: verifies the signature over the raw body, then applies the event.
pub async fn receive_event(
    State(app): State<App>,
    RequestId(request_id): RequestId,
    Signature(signature): Signature,
    SignedBody(body): SignedBody,
) -> Result<Json<Received>, ApiError> {
    match webhook::receive(&app, signature.as_deref(), &body, &request_id).await {
        Ok(outcome) => Ok(Json(Received {
            received: true,
            outcome,
        })),
        Err(WebhookError::Unverified(reason)) => {
            tracing::warn!(%reason, "webhook delivery refused");
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "webhook signature or timestamp not accepted",
            ))
        }
        Err(WebhookError::Processing(error)) => Err(http::log_failure(error)),
        Err(WebhookError::NoUsableSecret) => {
            tracing::error!("webhook delivery refused: the webhook secret holds no usable key");
            Err(ApiError::unavailable())
        }
    }
}

/// The `X-DFNS-WEBHOOK-SIGNATURE` header, when present and text (anything else cannot be a
/// signature: treated as missing, which the verification refuses).
pub struct Signature(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Signature {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Signature(
            parts
                .headers
                .get(SIGNATURE_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        ))
    }
}

impl aide::OperationInput for Signature {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        let schema = schemars::json_schema!({
            "type": "string",
            "pattern": "^sha256=[0-9a-f]{64}$",
            "description": "HMAC-SHA256 of the raw body under the webhook's secret, hex"
        });
        http::document_header(
            ctx,
            operation,
            SIGNATURE_HEADER,
            "`sha256=` and the body's HMAC-SHA256, hex",
            true,
            schema,
        );
    }
}

/// The delivery's body, raw: the signature is over its exact bytes. Documented as the Dfns
/// webhook event it carries.
pub struct SignedBody(pub Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for SignedBody {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(SignedBody)
            .map_err(|_| ApiError::bad_request("could not read the body"))
    }
}

impl aide::OperationInput for SignedBody {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        http::document_json_body(
            ctx,
            operation,
            Some("a Dfns webhook event (docs/dfns.md, webhooks)"),
            schemars::json_schema!({
                "type": "object",
                "required": ["id", "kind", "date", "timestampSent", "data"],
                "properties": {
                    "id": { "type": "string" },
                    "kind": { "type": "string" },
                    "date": { "type": "string" },
                    "timestampSent": { "type": "integer" },
                    "data": { "type": "object" }
                }
            }),
        );
    }
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
