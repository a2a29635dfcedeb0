//! The development issuer's authorization code flow with PKCE (RFC 6749 §4.1, RFC 7636 S256,
//! OpenID Connect Core §3.1), for a single-page app signing in exactly as it would against
//! Cognito's hosted UI or Auth0's Universal Login. It holds the protocol (checking an authorization
//! request, issuing one-time codes, the token endpoint's two grants); whoever serves it over HTTP
//! renders the login page and maps errors to responses.
//!
//! There is no password: the person types a username. One starting with
//! [`CodeFlowSettings::operator_prefix`] (`desk-`) gets the operator role, any other is a client
//! whose subject is the username. Codes and refresh tokens live in memory.
//!
//! ```
//! use std::sync::Arc;
//! use auth::dev_issuer::{DevIssuer, SigningAlgorithm, TokenShape};
//! use auth::dev_issuer::code_flow::{AuthorizeRequest, CodeFlow, CodeFlowSettings, TokenRequest};
//! let issuer = Arc::new(DevIssuer::generate("http://127.0.0.1:4010", SigningAlgorithm::Es256).unwrap());
//! let shape = TokenShape::Oidc { audience: "platform-api".into(), roles_claim: "roles".into() };
//! let flow = CodeFlow::new(issuer, CodeFlowSettings::new("dashboard", "http://127.0.0.1:4010", shape, "operators"));
//! let verifier = "a-code-verifier-of-at-least-forty-three-characters";
//! let request = AuthorizeRequest {
//!     response_type: Some("code".into()),
//!     client_id: Some("dashboard".into()),
//!     redirect_uri: Some("http://127.0.0.1:4010/callback".into()),
//!     scope: Some("openid profile".into()),
//!     code_challenge: Some(auth::dev_issuer::code_flow::s256_challenge(verifier)),
//!     code_challenge_method: Some("S256".into()),
//!     ..AuthorizeRequest::default()
//! };
//! let authorization = flow.check_authorize(&request).unwrap();
//! let location = flow.sign_in(&authorization, "alice").unwrap();
//! let code = url::Url::parse(&location).unwrap().query_pairs()
//!     .find(|(k, _)| k == "code").unwrap().1.into_owned();
//! let tokens = flow.token(&TokenRequest {
//!     grant_type: Some("authorization_code".into()),
//!     code: Some(code),
//!     redirect_uri: Some("http://127.0.0.1:4010/callback".into()),
//!     client_id: Some("dashboard".into()),
//!     code_verifier: Some(verifier.into()),
//!     ..TokenRequest::default()
//! }).unwrap();
//! assert_eq!(tokens.token_type, "Bearer");
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::json;
use url::Url;

use super::{DevIssuer, TokenShape, TokenSpec, now};

/// The client id the dashboard signs in with.
pub const DEFAULT_CLIENT_ID: &str = "dashboard";
/// Usernames starting with this sign in as operators.
pub const DEFAULT_OPERATOR_PREFIX: &str = "desk-";

/// How the flow behaves.
#[derive(Debug, Clone)]
pub struct CodeFlowSettings {
    /// The one client allowed (a public client: no secret, PKCE instead).
    pub client_id: String,
    /// `scheme://host:port` redirect URIs must be on (the stack's own origin: no open redirect).
    pub redirect_origin: String,
    /// Shape of the access tokens: what the platform's authenticator is configured to accept.
    pub access_token: TokenShape,
    /// Usernames starting with this get [`CodeFlowSettings::operator_role`].
    pub operator_prefix: String,
    /// The role meaning operator, put in the access token's roles claim.
    pub operator_role: String,
    /// Lifetime of access and ID tokens (short, so renewal is exercised).
    pub access_token_lifetime: Duration,
    /// Lifetime of an authorization code.
    pub code_lifetime: Duration,
    /// Lifetime of a refresh token (each use replaces it with a new one).
    pub refresh_token_lifetime: Duration,
}

impl CodeFlowSettings {
    /// Settings with the defaults: `desk-` prefix, 15-minute tokens, 60-second codes, 8-hour
    /// refresh tokens.
    pub fn new(
        client_id: impl Into<String>,
        redirect_origin: impl Into<String>,
        access_token: TokenShape,
        operator_role: impl Into<String>,
    ) -> Self {
        CodeFlowSettings {
            client_id: client_id.into(),
            redirect_origin: redirect_origin.into(),
            access_token,
            operator_prefix: DEFAULT_OPERATOR_PREFIX.to_owned(),
            operator_role: operator_role.into(),
            access_token_lifetime: Duration::from_secs(15 * 60),
            code_lifetime: Duration::from_secs(60),
            refresh_token_lifetime: Duration::from_secs(8 * 3600),
        }
    }
}

/// The query of `GET /oauth2/authorize` (or the login form's fields), as sent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthorizeRequest {
    /// Must be `code`.
    pub response_type: Option<String>,
    /// Must be the configured client.
    pub client_id: Option<String>,
    /// Where the code goes; on the issuer's origin.
    pub redirect_uri: Option<String>,
    /// Must contain `openid`.
    pub scope: Option<String>,
    /// Returned unchanged with the code.
    pub state: Option<String>,
    /// BASE64URL(SHA-256(verifier)), 43 characters.
    pub code_challenge: Option<String>,
    /// Must be `S256` (`plain` is refused).
    pub code_challenge_method: Option<String>,
    /// Put in the ID token.
    pub nonce: Option<String>,
}

/// A checked authorization request, ready for the login page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The client.
    pub client_id: String,
    /// The redirect URI exactly as sent (the token request must repeat it).
    pub redirect_uri: String,
    /// Requested scopes.
    pub scope: String,
    /// The client's state.
    pub state: Option<String>,
    /// The S256 challenge.
    pub code_challenge: String,
    /// The client's nonce.
    pub nonce: Option<String>,
}

impl Authorization {
    /// The request's parameters, for the login form to send back with the username.
    pub fn parameters(&self) -> Vec<(&'static str, String)> {
        let mut params = vec![
            ("response_type", "code".to_owned()),
            ("client_id", self.client_id.clone()),
            ("redirect_uri", self.redirect_uri.clone()),
            ("scope", self.scope.clone()),
            ("code_challenge", self.code_challenge.clone()),
            ("code_challenge_method", "S256".to_owned()),
        ];
        if let Some(state) = &self.state {
            params.push(("state", state.clone()));
        }
        if let Some(nonce) = &self.nonce {
            params.push(("nonce", nonce.clone()));
        }
        params
    }
}

/// Why an authorization request (or a sign-out redirect) is refused. Answered with a page, never
/// with a redirect: the redirect URI is not trusted yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizeError {
    /// No or another client id.
    #[error("unknown client_id")]
    UnknownClient,
    /// A required parameter is absent.
    #[error("missing parameter {0}")]
    Missing(&'static str),
    /// `response_type` other than `code`.
    #[error("unsupported response_type: only code is supported")]
    ResponseType,
    /// The redirect URI is not an absolute URL on the issuer's origin.
    #[error("redirect URI not allowed: {0}")]
    RedirectUri(&'static str),
    /// `scope` without `openid`.
    #[error("scope must include openid")]
    Scope,
    /// No S256 challenge, or a malformed one.
    #[error("code challenge refused: {0}")]
    CodeChallenge(&'static str),
    /// A username that is empty or has other characters than letters, digits and `-_.@`.
    #[error("username must be 1 to 64 letters, digits or -_.@")]
    Username,
}

/// The form of `POST /oauth2/token`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenRequest {
    /// `authorization_code` or `refresh_token`.
    pub grant_type: Option<String>,
    /// The code (authorization_code).
    pub code: Option<String>,
    /// The redirect URI of the authorization request (authorization_code).
    pub redirect_uri: Option<String>,
    /// The client.
    pub client_id: Option<String>,
    /// The PKCE verifier (authorization_code).
    pub code_verifier: Option<String>,
    /// The refresh token (refresh_token).
    pub refresh_token: Option<String>,
    /// Ignored on refresh: the tokens keep the scope first granted.
    pub scope: Option<String>,
}

/// The token endpoint's success body (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// What the platform's API accepts.
    pub access_token: String,
    /// For the client only: `sub`, `aud` = client id, `nonce`, `preferred_username`.
    pub id_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Seconds the access token is valid.
    pub expires_in: u64,
    /// One use: the refresh grant answers a new one.
    pub refresh_token: String,
    /// Granted scopes.
    pub scope: String,
}

/// The token endpoint's error (RFC 6749 §5.2): `{"error": ..., "error_description": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{error}: {error_description}")]
pub struct TokenError {
    /// HTTP status: 400, or 401 for `invalid_client`.
    #[serde(skip)]
    pub status: u16,
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unsupported_grant_type`.
    pub error: &'static str,
    /// For the developer.
    pub error_description: String,
}

impl TokenError {
    fn new(status: u16, error: &'static str, description: impl Into<String>) -> Self {
        TokenError {
            status,
            error,
            error_description: description.into(),
        }
    }
    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", description)
    }
    fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(400, "invalid_grant", description)
    }
}

/// The code flow of one development issuer.
pub struct CodeFlow {
    issuer: Arc<DevIssuer>,
    settings: CodeFlowSettings,
    store: Mutex<Store>,
}

impl std::fmt::Debug for CodeFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Codes and refresh tokens are credentials: never printed.
        f.debug_struct("CodeFlow")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Store {
    codes: HashMap<String, Code>,
    refresh_tokens: HashMap<String, Grant>,
}

struct Code {
    /// `None` once exchanged: kept as a tombstone so a second use is recognised.
    grant: Option<Pending>,
    expires: Instant,
}

#[derive(Clone)]
struct Pending {
    authorization: Authorization,
    grant: Grant,
}

/// Who signed in, carried from the code to each refresh token.
#[derive(Clone)]
struct Grant {
    client_id: String,
    username: String,
    scope: String,
    auth_time: i64,
    /// The code the grant came from: a second use of that code revokes the refresh tokens.
    family: String,
    expires: Instant,
}

/// How long exchanged or expired codes are remembered, to refuse a second use as reuse (and
/// revoke what the first use gave) rather than as unknown.
const TOMBSTONE: Duration = Duration::from_secs(600);

impl CodeFlow {
    /// The flow for `issuer`'s tokens.
    pub fn new(issuer: Arc<DevIssuer>, settings: CodeFlowSettings) -> Self {
        CodeFlow {
            issuer,
            settings,
            store: Mutex::new(Store::default()),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &CodeFlowSettings {
        &self.settings
    }

    /// Checks `GET /oauth2/authorize`: the client first and the redirect URI next (an error in
    /// either must not redirect), then the response type, scope and PKCE challenge.
    pub fn check_authorize(
        &self,
        request: &AuthorizeRequest,
    ) -> Result<Authorization, AuthorizeError> {
        if request.client_id.as_deref() != Some(self.settings.client_id.as_str()) {
            return Err(AuthorizeError::UnknownClient);
        }
        let redirect_uri = request
            .redirect_uri
            .as_deref()
            .ok_or(AuthorizeError::Missing("redirect_uri"))?;
        self.check_same_origin(redirect_uri)?;
        if request.response_type.as_deref() != Some("code") {
            return Err(AuthorizeError::ResponseType);
        }
        let scope = request
            .scope
            .as_deref()
            .ok_or(AuthorizeError::Missing("scope"))?;
        if !scope.split(' ').any(|s| s == "openid") {
            return Err(AuthorizeError::Scope);
        }
        let challenge = request
            .code_challenge
            .as_deref()
            .ok_or(AuthorizeError::CodeChallenge("code_challenge is required"))?;
        // RFC 7636 §4.3: absent means plain, which lets a stolen code be redeemed.
        if request.code_challenge_method.as_deref() != Some("S256") {
            return Err(AuthorizeError::CodeChallenge(
                "code_challenge_method must be S256",
            ));
        }
        let decoded = URL_SAFE_NO_PAD.decode(challenge).ok();
        if challenge.len() != 43 || decoded.is_none_or(|d| d.len() != 32) {
            return Err(AuthorizeError::CodeChallenge(
                "code_challenge must be BASE64URL(SHA-256(verifier)), 43 characters",
            ));
        }
        Ok(Authorization {
            client_id: self.settings.client_id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            scope: scope.to_owned(),
            state: request.state.clone(),
            code_challenge: challenge.to_owned(),
            nonce: request.nonce.clone(),
        })
    }

    /// Signs `username` in for `authorization`: a one-time code, and the redirect location
    /// `redirect_uri?code=..&state=..`.
    pub fn sign_in(
        &self,
        authorization: &Authorization,
        username: &str,
    ) -> Result<String, AuthorizeError> {
        let username = username.trim();
        if username.is_empty()
            || username.len() > 64
            || !username
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
        {
            return Err(AuthorizeError::Username);
        }
        let mut location = Url::parse(&authorization.redirect_uri)
            .map_err(|_| AuthorizeError::RedirectUri("not an absolute URL"))?;
        let code = random_token();
        let expires = Instant::now() + self.settings.code_lifetime;
        let pending = Pending {
            authorization: authorization.clone(),
            grant: Grant {
                client_id: authorization.client_id.clone(),
                username: username.to_owned(),
                scope: authorization.scope.clone(),
                auth_time: now(),
                family: code.clone(),
                expires,
            },
        };
        {
            let mut store = self.store.lock().expect("store lock");
            store.sweep();
            store.codes.insert(
                code.clone(),
                Code {
                    grant: Some(pending),
                    expires,
                },
            );
        }
        {
            let mut query = location.query_pairs_mut();
            query.append_pair("code", &code);
            if let Some(state) = &authorization.state {
                query.append_pair("state", state);
            }
        }
        Ok(location.into())
    }

    /// `POST /oauth2/token`.
    pub fn token(&self, request: &TokenRequest) -> Result<TokenResponse, TokenError> {
        let client_id = required(&request.client_id, "client_id")?;
        if client_id != self.settings.client_id {
            return Err(TokenError::new(401, "invalid_client", "unknown client_id"));
        }
        match request.grant_type.as_deref() {
            Some("authorization_code") => self.exchange_code(request),
            Some("refresh_token") => self.refresh(request),
            Some(_) => Err(TokenError::new(
                400,
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            )),
            None => Err(TokenError::invalid_request("missing grant_type")),
        }
    }

    fn exchange_code(&self, request: &TokenRequest) -> Result<TokenResponse, TokenError> {
        let code = required(&request.code, "code")?;
        let redirect_uri = required(&request.redirect_uri, "redirect_uri")?;
        let verifier = required(&request.code_verifier, "code_verifier")?;
        let client_id = required(&request.client_id, "client_id")?;
        let mut guard = self.store.lock().expect("store lock");
        let store = &mut *guard;
        store.sweep();
        let Some(entry) = store.codes.get_mut(code) else {
            return Err(TokenError::invalid_grant("unknown code"));
        };
        // Taken before any other check: a code is spent by its first presentation, right or wrong.
        let Some(pending) = entry.grant.take() else {
            // RFC 6749 §4.1.2: a code used twice revokes the tokens it gave.
            store.refresh_tokens.retain(|_, grant| grant.family != code);
            return Err(TokenError::invalid_grant("code already used"));
        };
        if Instant::now() >= entry.expires {
            return Err(TokenError::invalid_grant("code expired"));
        }
        let authorization = &pending.authorization;
        if authorization.client_id != client_id {
            return Err(TokenError::invalid_grant("code issued to another client"));
        }
        if authorization.redirect_uri != redirect_uri {
            return Err(TokenError::invalid_grant(
                "redirect_uri differs from the authorization request's",
            ));
        }
        if !valid_verifier(verifier) {
            return Err(TokenError::invalid_grant(
                "code_verifier must be 43 to 128 unreserved characters",
            ));
        }
        if s256_challenge(verifier) != authorization.code_challenge {
            return Err(TokenError::invalid_grant(
                "code_verifier does not match the code_challenge",
            ));
        }
        let nonce = authorization.nonce.clone();
        self.issue(store, pending.grant, nonce.as_deref())
    }

    fn refresh(&self, request: &TokenRequest) -> Result<TokenResponse, TokenError> {
        let token = required(&request.refresh_token, "refresh_token")?;
        let client_id = required(&request.client_id, "client_id")?;
        let mut store = self.store.lock().expect("store lock");
        store.sweep();
        // One use: rotated on every refresh.
        let Some(grant) = store.refresh_tokens.remove(token) else {
            return Err(TokenError::invalid_grant(
                "unknown or expired refresh token",
            ));
        };
        if grant.client_id != client_id {
            return Err(TokenError::invalid_grant(
                "refresh token issued to another client",
            ));
        }
        self.issue(&mut store, grant, None)
    }

    /// Access, ID and refresh tokens for `grant`; the refresh token is stored.
    fn issue(
        &self,
        store: &mut Store,
        grant: Grant,
        nonce: Option<&str>,
    ) -> Result<TokenResponse, TokenError> {
        let iat = now();
        let lifetime = self.settings.access_token_lifetime.as_secs();
        let exp = iat + lifetime as i64;
        let operator = grant.username.starts_with(&self.settings.operator_prefix);
        let mut access = TokenSpec::new(grant.username.clone(), self.settings.access_token.clone())
            .issued_at(iat)
            .expires_at(exp);
        if operator {
            access = access.role(self.settings.operator_role.clone());
        }
        let roles_claim = match &self.settings.access_token {
            TokenShape::Oidc { roles_claim, .. } | TokenShape::Auth0 { roles_claim, .. } => {
                roles_claim.clone()
            }
            TokenShape::CognitoAccess { .. } | TokenShape::CognitoId { .. } => {
                "cognito:groups".to_owned()
            }
        };
        // The ID token is for the client: its `aud` is the client id, so the API refuses it.
        let mut id = TokenSpec::oidc(grant.username.clone(), grant.client_id.clone(), roles_claim)
            .issued_at(iat)
            .expires_at(exp)
            .claim("preferred_username", json!(grant.username))
            .claim("auth_time", json!(grant.auth_time));
        if operator {
            id = id.role(self.settings.operator_role.clone());
        }
        if let Some(nonce) = nonce {
            id = id.claim("nonce", json!(nonce));
        }
        let sign = |spec: &TokenSpec| {
            self.issuer.mint(spec).map_err(|error| {
                tracing::error!(%error, "development issuer could not sign");
                TokenError::new(500, "server_error", "could not sign")
            })
        };
        let access_token = sign(&access)?;
        let id_token = sign(&id)?;
        let refresh_token = random_token();
        let scope = grant.scope.clone();
        store.refresh_tokens.insert(
            refresh_token.clone(),
            Grant {
                expires: Instant::now() + self.settings.refresh_token_lifetime,
                ..grant
            },
        );
        Ok(TokenResponse {
            access_token,
            id_token,
            token_type: "Bearer".to_owned(),
            expires_in: lifetime,
            refresh_token,
            scope,
        })
    }

    /// `GET /oauth2/logout`: where to send the browser back (`post_logout_redirect_uri` with
    /// `state`, on the issuer's origin only), or `None` when none was given. The issuer keeps no
    /// session, so nothing else is needed for the next sign-in to ask for a username again.
    pub fn logout_redirect(
        &self,
        post_logout_redirect_uri: Option<&str>,
        state: Option<&str>,
    ) -> Result<Option<String>, AuthorizeError> {
        let Some(uri) = post_logout_redirect_uri else {
            return Ok(None);
        };
        let mut location = self.check_same_origin(uri)?;
        if let Some(state) = state {
            location.query_pairs_mut().append_pair("state", state);
        }
        Ok(Some(location.into()))
    }

    /// `uri` parsed, if it is absolute, on [`CodeFlowSettings::redirect_origin`] and without a
    /// fragment (RFC 6749 §3.1.2).
    fn check_same_origin(&self, uri: &str) -> Result<Url, AuthorizeError> {
        let url =
            Url::parse(uri).map_err(|_| AuthorizeError::RedirectUri("not an absolute URL"))?;
        let allowed = Url::parse(&self.settings.redirect_origin)
            .map_err(|_| AuthorizeError::RedirectUri("the issuer's origin is not a URL"))?;
        if url.origin() != allowed.origin() || !url.origin().is_tuple() {
            return Err(AuthorizeError::RedirectUri("not on the issuer's origin"));
        }
        if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err(AuthorizeError::RedirectUri(
                "no fragment or user information allowed",
            ));
        }
        Ok(url)
    }
}

impl Store {
    fn sweep(&mut self) {
        let now = Instant::now();
        self.codes.retain(|_, code| code.expires + TOMBSTONE > now);
        self.refresh_tokens.retain(|_, grant| grant.expires > now);
    }
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, TokenError> {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| TokenError::invalid_request(format!("missing {name}")))
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// `BASE64URL(SHA-256(verifier))`, the S256 code challenge of RFC 7636 §4.2.
pub fn s256_challenge(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// 256 random bits, base64url: codes and refresh tokens.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("system randomness");
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
