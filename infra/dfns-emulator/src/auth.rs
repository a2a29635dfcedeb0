//! Authentication (docs/dfns.md §2): bearer tokens on every Dfns route, the user-action challenge
//! flow (`/auth/action/init`, `/auth/action`) and the single-use `X-DFNS-USERACTION` token every
//! mutating route consumes.

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State as AxState};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::BTreeSet;
use time::OffsetDateTime;

use crate::audit;
use crate::errors::{ApiError, ApiResult};
use crate::extract::DfnsJson;
use crate::ids;
use crate::keys::CredentialKey;
use crate::state::{SharedApp, State};

/// A seeded user: the service account or a human (officer, admin).
#[derive(Debug, Clone)]
pub struct User {
    pub user_id: String,
    pub username: String,
    pub name: String,
    pub is_service_account: bool,
    pub token: String,
    pub token_id: String,
    pub cred_ids: Vec<String>,
    pub date_created: String,
}

/// A key credential (`Key` kind) owned by a user.
#[derive(Debug, Clone)]
pub struct Credential {
    /// Opaque id the signer sends back as `credId`.
    pub cred_id: String,
    /// `cr-…` record id shown in audit logs.
    pub record_id: String,
    /// Uuid-like id shown as `credentialUuid` on users.
    pub uuid: String,
    pub user_id: String,
    pub key: CredentialKey,
    pub date_created: String,
}

/// A challenge issued by `/auth/action/init`, bound to one request.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub challenge: String,
    pub user_id: String,
    pub binding: ActionBinding,
    pub expires_at: OffsetDateTime,
    pub used: bool,
}

/// What a user action authorises: one method, one path, one payload.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionBinding {
    pub method: String,
    pub path: String,
    pub payload: Value,
}

/// A user-action token minted by `/auth/action`.
#[derive(Debug, Clone)]
pub struct UserAction {
    pub user_id: String,
    pub binding: ActionBinding,
    pub expires_at: OffsetDateTime,
    pub used: bool,
    pub credential_id: String,
    pub client_data: String,
    pub signature: String,
    pub date_signed: OffsetDateTime,
}

/// The authenticated caller of a request (inserted by [`authenticate`]).
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub token_id: String,
    pub is_service_account: bool,
    pub operations: BTreeSet<String>,
}

impl Caller {
    /// 403 naming `operation` unless the caller's permissions include it (§9).
    pub fn require(&self, operation: &str) -> ApiResult<()> {
        if self.operations.contains(operation) {
            Ok(())
        } else {
            Err(ApiError::missing_permission(&self.user_id, operation))
        }
    }

    pub fn requester(&self) -> Value {
        json!({ "userId": self.user_id, "tokenId": self.token_id })
    }
}

/// Routes that are mutating but authorised by the bearer alone (§2.2).
const USER_ACTION_EXEMPT: &[&str] = &["/auth/action/init", "/auth/action"];

/// Turns a request body or a declared `userActionPayload` into the value the binding compares:
/// JSON-equal, with `""`, `{}` and no body all equal (U2).
pub fn normalize_payload(raw: &[u8]) -> Value {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return json!({});
    }
    serde_json::from_slice(raw)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(raw).into_owned()))
}

/// Middleware for every Dfns route: bearer → [`Caller`]; on a mutating route also the user action.
pub async fn authenticate(
    AxState(app): AxState<SharedApp>,
    request: Request,
    next: Next,
) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    match authenticate_inner(&app, request).await {
        Ok(request) => next.run(request).await,
        Err(error) => {
            // Never log the token or the user action itself, only why the call was refused.
            tracing::debug!(%method, %path, status = error.status.as_u16(), reason = %error.message, "refused");
            error.into_response()
        }
    }
}

async fn authenticate_inner(app: &SharedApp, request: Request) -> ApiResult<Request> {
    let token = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .map(str::to_owned)
        .ok_or_else(|| ApiError::unauthorized("Unauthorized: missing bearer token"))?;
    let caller = app
        .with_state(|s| caller_for_token(s, &token))
        .ok_or_else(|| ApiError::unauthorized("Unauthorized: invalid or expired token"))?;

    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut request = if method != Method::GET
        && method != Method::HEAD
        && !USER_ACTION_EXEMPT.contains(&path.as_str())
    {
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, 10 * 1024 * 1024)
            .await
            .map_err(|_| ApiError::bad_request("request body too large or unreadable"))?;
        let header = parts
            .headers
            .get("x-dfns-useraction")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let binding = ActionBinding {
            method: method.as_str().to_owned(),
            path: path.clone(),
            payload: normalize_payload(&bytes),
        };
        let audit_id =
            app.with_state(|s| consume_user_action(s, &caller, header.as_deref(), &binding))?;
        let mut request = Request::from_parts(parts, Body::from(bytes));
        request.extensions_mut().insert(audit::AuditRef(audit_id));
        request
    } else {
        request
    };
    request.extensions_mut().insert(caller);
    Ok(request)
}

pub fn caller_for_token(state: &State, token: &str) -> Option<Caller> {
    let user_id = state.tokens.get(token)?;
    let user = state.users.get(user_id)?;
    Some(Caller {
        user_id: user.user_id.clone(),
        token_id: user.token_id.clone(),
        is_service_account: user.is_service_account,
        operations: crate::permissions::operations_of(state, &user.user_id),
    })
}

/// Checks and consumes a user-action token for the request described by `binding`, recording
/// the audit-log entry (§6: one per consumed user action); returns the entry's id.
fn consume_user_action(
    state: &mut State,
    caller: &Caller,
    token: Option<&str>,
    binding: &ActionBinding,
) -> ApiResult<String> {
    let token = token.ok_or_else(|| {
        ApiError::forbidden("user action signature is missing: X-DFNS-USERACTION header required")
    })?;
    let now = state.now();
    let action = state
        .user_actions
        .get_mut(token)
        .filter(|a| a.user_id == caller.user_id)
        .ok_or_else(|| ApiError::forbidden("user action signature is invalid"))?;
    if action.used {
        return Err(ApiError::forbidden("user action has already been used"));
    }
    if action.expires_at <= now {
        return Err(ApiError::forbidden("user action has expired"));
    }
    if action.binding.method != binding.method || action.binding.path != binding.path {
        return Err(ApiError::forbidden(
            "user action was signed for a different request (method or path mismatch)",
        )
        .with_details(json!({
            "signedFor": format!("{} {}", action.binding.method, action.binding.path),
            "request": format!("{} {}", binding.method, binding.path),
        })));
    }
    if action.binding.payload != binding.payload {
        return Err(ApiError::forbidden(
            "user action was signed for a different request (payload mismatch)",
        ));
    }
    action.used = true;
    let action = action.clone();
    Ok(audit::record(state, token, &action, now))
}

// ---------------------------------------------------------------------------------------------
// JWTs (bearer tokens and challenge identifiers): HS256, opaque to clients.

pub fn mint_jwt(secret: &[u8], claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("hmac takes any key length");
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// Bearer JWT with the claims the SDKs read (`https://custom/app_metadata` → orgId, userId).
pub fn bearer_claims(
    org_id: &str,
    user: &User,
    issued_at: OffsetDateTime,
    token_kind: &str,
) -> Value {
    let iat = issued_at.unix_timestamp();
    json!({
        "iss": "auth.dfns.io",
        "aud": "dfns:auth:user",
        "sub": format!("{org_id}-{}", user.user_id),
        "jti": ids::new_id("to"),
        "iat": iat,
        // Service-account tokens are long lived; ten years keeps the emulator out of the way.
        "exp": iat + 10 * 365 * 24 * 3600,
        "https://custom/username": user.username,
        "https://custom/app_metadata": {
            "userId": user.user_id,
            "orgId": org_id,
            "tokenKind": token_kind,
            "tokenId": user.token_id,
        },
    })
}

// ---------------------------------------------------------------------------------------------
// POST /auth/action/init

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitBody {
    user_action_http_method: String,
    user_action_http_path: String,
    user_action_payload: String,
    #[serde(default)]
    user_action_server_kind: Option<String>,
}

pub async fn init_action(
    AxState(app): AxState<SharedApp>,
    axum::Extension(caller): axum::Extension<Caller>,
    DfnsJson(body): DfnsJson<InitBody>,
) -> ApiResult<Json<Value>> {
    caller.require("Auth:Action:Sign")?;
    let method = body.user_action_http_method.as_str();
    if !["POST", "PUT", "DELETE", "GET"].contains(&method) {
        return Err(ApiError::bad_request(
            "userActionHttpMethod must be one of POST, PUT, DELETE, GET",
        ));
    }
    if !body.user_action_http_path.starts_with('/') || body.user_action_http_path.contains('?') {
        return Err(ApiError::bad_request(
            "userActionHttpPath must be an absolute path without query string",
        ));
    }
    if let Some(kind) = &body.user_action_server_kind
        && kind != "Api"
        && kind != "Staff"
    {
        return Err(ApiError::bad_request(
            "userActionServerKind must be Api or Staff",
        ));
    }
    let secret = app.jwt_secret;
    let ttl = time::Duration::try_from(app.settings.user_action_ttl).unwrap_or_default();
    let response = app.with_state(|s| {
        let now = s.now();
        prune_expired(s, now);
        let challenge = ids::random_token(32);
        let challenge_identifier = mint_jwt(
            &secret,
            &json!({
                "iss": "auth.dfns.io",
                "aud": "dfns:auth:user-action",
                "sub": caller.user_id,
                "jti": ids::new_id("ch"),
                "iat": now.unix_timestamp(),
                "exp": (now + ttl).unix_timestamp(),
            }),
        );
        s.challenges.insert(
            challenge_identifier.clone(),
            Challenge {
                challenge: challenge.clone(),
                user_id: caller.user_id.clone(),
                binding: ActionBinding {
                    method: body.user_action_http_method.clone(),
                    path: body.user_action_http_path.clone(),
                    payload: normalize_payload(body.user_action_payload.as_bytes()),
                },
                expires_at: now + ttl,
                used: false,
            },
        );
        let keys: Vec<Value> = s
            .users
            .get(&caller.user_id)
            .map(|u| {
                u.cred_ids
                    .iter()
                    .map(|id| json!({ "type": "public-key", "id": id }))
                    .collect()
            })
            .unwrap_or_default();
        json!({
            "challenge": challenge,
            "challengeIdentifier": challenge_identifier,
            "allowCredentials": { "key": keys, "webauthn": [], "passwordProtectedKey": [] },
            "supportedCredentialKinds": [
                { "kind": "Key", "factor": "first", "requiresSecondFactor": false }
            ],
            "userVerification": "required",
            "attestation": "none",
            "externalAuthenticationUrl": "",
        })
    });
    Ok(Json(response))
}

/// Drops expired challenges and user actions when the maps pass a high-water mark, so a long
/// run does not grow memory without bound; the mark doubles with the live size so the sweep stays
/// amortised O(1) per request even when nothing has expired yet.
fn prune_expired(state: &mut State, now: OffsetDateTime) {
    let live = state.challenges.len() + state.user_actions.len();
    if live <= state.auth_prune_mark {
        return;
    }
    state.challenges.retain(|_, c| c.expires_at > now);
    state.user_actions.retain(|_, a| a.expires_at > now);
    let live = state.challenges.len() + state.user_actions.len();
    state.auth_prune_mark = (2 * live).max(AUTH_PRUNE_MIN);
}

pub const AUTH_PRUNE_MIN: usize = 8192;

// ---------------------------------------------------------------------------------------------
// POST /auth/action

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignBody {
    challenge_identifier: String,
    first_factor: Factor,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Factor {
    kind: String,
    #[serde(default)]
    credential_assertion: Option<Assertion>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assertion {
    cred_id: String,
    client_data: String,
    signature: String,
}

fn decode_b64url(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .or_else(|_| URL_SAFE.decode(s))
        .ok()
}

pub async fn sign_action(
    AxState(app): AxState<SharedApp>,
    axum::Extension(caller): axum::Extension<Caller>,
    DfnsJson(body): DfnsJson<SignBody>,
) -> ApiResult<Json<Value>> {
    caller.require("Auth:Action:Sign")?;
    let ttl = time::Duration::try_from(app.settings.user_action_ttl).unwrap_or_default();
    let token = app.with_state(|s| -> ApiResult<String> {
        let now = s.now();
        let challenge = s
            .challenges
            .get(&body.challenge_identifier)
            .filter(|c| c.user_id == caller.user_id)
            .ok_or_else(|| ApiError::bad_request("invalid challengeIdentifier"))?;
        if challenge.used {
            return Err(ApiError::bad_request("challenge has already been used"));
        }
        if challenge.expires_at <= now {
            return Err(ApiError::bad_request("challenge has expired"));
        }
        if body.first_factor.kind != "Key" {
            return Err(ApiError::bad_request(format!(
                "credential kind {} is not supported for this user; use Key",
                body.first_factor.kind
            )));
        }
        let assertion = body
            .first_factor
            .credential_assertion
            .as_ref()
            .ok_or_else(|| ApiError::bad_request("firstFactor.credentialAssertion is required"))?;
        let credential = s
            .credentials
            .get(&assertion.cred_id)
            .filter(|c| c.user_id == caller.user_id)
            .ok_or_else(|| ApiError::bad_request("credential not allowed for this challenge"))?;
        let client_data = decode_b64url(&assertion.client_data)
            .ok_or_else(|| ApiError::bad_request("clientData is not base64url"))?;
        let signature = decode_b64url(&assertion.signature)
            .ok_or_else(|| ApiError::bad_request("signature is not base64url"))?;
        let parsed: Value = serde_json::from_slice(&client_data)
            .map_err(|_| ApiError::bad_request("clientData is not JSON"))?;
        if parsed.get("type").and_then(Value::as_str) != Some("key.get") {
            return Err(ApiError::bad_request("clientData.type must be key.get"));
        }
        if parsed.get("challenge").and_then(Value::as_str) != Some(challenge.challenge.as_str()) {
            return Err(ApiError::bad_request(
                "clientData.challenge does not match the challenge",
            ));
        }
        credential
            .key
            .verify(&client_data, &signature)
            .map_err(|e| ApiError::bad_request(format!("invalid signature: {e}")))?;
        let binding = challenge.binding.clone();
        let credential_id = credential.record_id.clone();
        if let Some(c) = s.challenges.get_mut(&body.challenge_identifier) {
            c.used = true;
        }
        let token = format!("ua.{}", ids::random_token(32));
        s.user_actions.insert(
            token.clone(),
            UserAction {
                user_id: caller.user_id.clone(),
                binding,
                expires_at: now + ttl,
                used: false,
                credential_id,
                client_data: assertion.client_data.clone(),
                signature: assertion.signature.clone(),
                date_signed: now,
            },
        );
        Ok(token)
    })?;
    Ok(Json(json!({ "userAction": token })))
}
