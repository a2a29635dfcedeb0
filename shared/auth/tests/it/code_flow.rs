//! The development issuer's authorization code flow with PKCE, end to end without HTTP: the
//! tokens it hands out are checked by the platform's own authenticator against the issuer's keys
//! served over HTTP, and each guard of the flow refuses what it is there to refuse.

use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use auth::dev_issuer::code_flow::{
    AuthorizeError, AuthorizeRequest, CodeFlow, CodeFlowSettings, TokenRequest, TokenResponse,
    s256_challenge,
};
use auth::dev_issuer::{DevIssuer, SigningAlgorithm, TokenShape};
use auth::{AuthSettings, Authenticator, Principal, Role};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

const ORIGIN: &str = "http://127.0.0.1:4010";
const REDIRECT: &str = "http://127.0.0.1:4010/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

struct Setup {
    flow: CodeFlow,
    authenticator: Authenticator,
    _server: JwksServer,
}

/// The stack's token shape: plain OIDC, audience `platform-api`, roles in `roles`.
async fn setup(adjust: impl FnOnce(&mut CodeFlowSettings)) -> Setup {
    let issuer = Arc::new(DevIssuer::generate(ORIGIN, SigningAlgorithm::Es256).unwrap());
    let server = JwksServer::start(issuer.jwks()).await;
    let mut auth_settings = AuthSettings::new(ORIGIN, vec!["platform-api".to_owned()]);
    auth_settings.jwks_url = server.url.clone();
    auth_settings.role_claim = "roles".into();
    let shape = TokenShape::Oidc {
        audience: "platform-api".into(),
        roles_claim: "roles".into(),
    };
    let mut settings = CodeFlowSettings::new("dashboard", ORIGIN, shape, "operators");
    adjust(&mut settings);
    Setup {
        flow: CodeFlow::new(issuer, settings),
        authenticator: Authenticator::new(auth_settings),
        _server: server,
    }
}

fn authorize_request() -> AuthorizeRequest {
    AuthorizeRequest {
        response_type: Some("code".into()),
        client_id: Some("dashboard".into()),
        redirect_uri: Some(REDIRECT.into()),
        scope: Some("openid profile".into()),
        state: Some("st-123".into()),
        code_challenge: Some(s256_challenge(VERIFIER)),
        code_challenge_method: Some("S256".into()),
        nonce: Some("n-456".into()),
    }
}

/// Signs `username` in and returns the code from the redirect.
fn code_for(flow: &CodeFlow, username: &str) -> String {
    let authorization = flow.check_authorize(&authorize_request()).unwrap();
    let location = url::Url::parse(&flow.sign_in(&authorization, username).unwrap()).unwrap();
    assert_eq!(
        location.as_str().split('?').next(),
        Some(REDIRECT),
        "back to the redirect URI"
    );
    let param = |name: &str| {
        location
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("state").as_deref(), Some("st-123"), "state echoed");
    param("code").expect("a code")
}

fn exchange(code: &str, verifier: &str) -> TokenRequest {
    TokenRequest {
        grant_type: Some("authorization_code".into()),
        code: Some(code.into()),
        redirect_uri: Some(REDIRECT.into()),
        client_id: Some("dashboard".into()),
        code_verifier: Some(verifier.into()),
        ..TokenRequest::default()
    }
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn caller(setup: &Setup, tokens: &TokenResponse) -> Principal {
    setup
        .authenticator
        .verify_token(&tokens.access_token)
        .await
        .expect("the platform accepts the access token")
}

#[tokio::test]
async fn a_client_signs_in_and_the_platform_accepts_the_token_as_that_client() {
    let setup = setup(|_| {}).await;
    let code = code_for(&setup.flow, "alice");
    let tokens = setup.flow.token(&exchange(&code, VERIFIER)).unwrap();
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.expires_in, 15 * 60);
    assert_eq!(tokens.scope, "openid profile");
    assert_eq!(
        caller(&setup, &tokens).await,
        Principal {
            subject: "alice".into(),
            role: Role::Client
        }
    );
    let id = claims(&tokens.id_token);
    assert_eq!(id["sub"], "alice");
    assert_eq!(id["aud"], "dashboard");
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["preferred_username"], "alice");
    assert_eq!(id["iss"], ORIGIN);
    // The ID token is for the dashboard, not the API.
    assert!(
        setup
            .authenticator
            .verify_token(&tokens.id_token)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_desk_username_signs_in_as_an_operator() {
    let setup = setup(|_| {}).await;
    let code = code_for(&setup.flow, "desk-1");
    let tokens = setup.flow.token(&exchange(&code, VERIFIER)).unwrap();
    assert_eq!(
        caller(&setup, &tokens).await,
        Principal {
            subject: "desk-1".into(),
            role: Role::Operator
        }
    );
    // "desk" alone, or the prefix elsewhere in the name, is a client.
    for name in ["desk", "my-desk-1"] {
        let code = code_for(&setup.flow, name);
        let tokens = setup.flow.token(&exchange(&code, VERIFIER)).unwrap();
        assert_eq!(caller(&setup, &tokens).await.role, Role::Client, "{name}");
    }
}

#[tokio::test]
async fn a_wrong_verifier_is_refused() {
    let setup = setup(|_| {}).await;
    let code = code_for(&setup.flow, "alice");
    let other = "another-verifier-that-is-long-enough-to-be-valid-00000";
    let error = setup.flow.token(&exchange(&code, other)).unwrap_err();
    assert_eq!((error.status, error.error), (400, "invalid_grant"));
    assert!(error.error_description.contains("code_verifier"));
}

#[tokio::test]
async fn a_code_is_good_once_and_its_reuse_revokes_the_refresh_token() {
    let setup = setup(|_| {}).await;
    let code = code_for(&setup.flow, "alice");
    let tokens = setup.flow.token(&exchange(&code, VERIFIER)).unwrap();
    let again = setup.flow.token(&exchange(&code, VERIFIER)).unwrap_err();
    assert_eq!(again.error, "invalid_grant");
    assert_eq!(again.error_description, "code already used");
    let refresh = setup.flow.token(&TokenRequest {
        grant_type: Some("refresh_token".into()),
        refresh_token: Some(tokens.refresh_token),
        client_id: Some("dashboard".into()),
        ..TokenRequest::default()
    });
    assert_eq!(refresh.unwrap_err().error, "invalid_grant");
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let setup = setup(|s| s.code_lifetime = Duration::from_millis(50)).await;
    let code = code_for(&setup.flow, "alice");
    tokio::time::sleep(Duration::from_millis(80)).await;
    let error = setup.flow.token(&exchange(&code, VERIFIER)).unwrap_err();
    assert_eq!(
        (error.error, error.error_description.as_str()),
        ("invalid_grant", "code expired")
    );
}

#[tokio::test]
async fn the_token_request_must_repeat_the_redirect_uri_and_client() {
    let setup = setup(|_| {}).await;
    let code = code_for(&setup.flow, "alice");
    let mut request = exchange(&code, VERIFIER);
    request.redirect_uri = Some("http://127.0.0.1:4010/elsewhere".into());
    assert_eq!(
        setup.flow.token(&request).unwrap_err().error,
        "invalid_grant"
    );

    let code = code_for(&setup.flow, "alice");
    let mut request = exchange(&code, VERIFIER);
    request.client_id = Some("someone-else".into());
    let error = setup.flow.token(&request).unwrap_err();
    assert_eq!((error.status, error.error), (401, "invalid_client"));
}

#[tokio::test]
async fn authorization_requests_are_refused_without_redirecting() {
    let setup = setup(|_| {}).await;
    let refused = |adjust: &dyn Fn(&mut AuthorizeRequest)| {
        let mut request = authorize_request();
        adjust(&mut request);
        setup.flow.check_authorize(&request).unwrap_err()
    };
    assert_eq!(
        refused(&|r| r.client_id = Some("evil".into())),
        AuthorizeError::UnknownClient
    );
    for foreign in [
        "https://evil.example/callback",
        "http://127.0.0.1:4011/callback",
        "https://127.0.0.1:4010/callback",
        "http://localhost:4010/callback",
        "//evil.example/callback",
        "/callback",
        "http://127.0.0.1:4010/callback#x",
    ] {
        assert!(
            matches!(
                refused(&|r| r.redirect_uri = Some(foreign.into())),
                AuthorizeError::RedirectUri(_)
            ),
            "{foreign}"
        );
    }
    assert!(matches!(
        refused(&|r| r.code_challenge = None),
        AuthorizeError::CodeChallenge(_)
    ));
    assert!(matches!(
        refused(&|r| r.code_challenge_method = Some("plain".into())),
        AuthorizeError::CodeChallenge(_)
    ));
    assert!(matches!(
        refused(&|r| r.code_challenge_method = None),
        AuthorizeError::CodeChallenge(_)
    ));
    assert!(matches!(
        refused(&|r| r.code_challenge = Some("too-short".into())),
        AuthorizeError::CodeChallenge(_)
    ));
    assert_eq!(
        refused(&|r| r.response_type = Some("token".into())),
        AuthorizeError::ResponseType
    );
    // Sign-out redirects follow the same origin rule.
    assert!(
        setup
            .flow
            .logout_redirect(Some("https://evil.example/"), None)
            .is_err()
    );
    assert_eq!(
        setup
            .flow
            .logout_redirect(Some("http://127.0.0.1:4010/"), Some("s"))
            .unwrap()
            .as_deref(),
        Some("http://127.0.0.1:4010/?state=s")
    );
}

#[tokio::test]
async fn a_refresh_token_renews_once_and_keeps_the_role() {
    let setup = setup(|s| s.access_token_lifetime = Duration::from_secs(5)).await;
    let code = code_for(&setup.flow, "desk-2");
    let first = setup.flow.token(&exchange(&code, VERIFIER)).unwrap();
    assert_eq!(first.expires_in, 5);
    let refresh = |token: &str| TokenRequest {
        grant_type: Some("refresh_token".into()),
        refresh_token: Some(token.into()),
        client_id: Some("dashboard".into()),
        ..TokenRequest::default()
    };
    let renewed = setup.flow.token(&refresh(&first.refresh_token)).unwrap();
    assert_ne!(renewed.access_token, first.access_token);
    assert_ne!(renewed.refresh_token, first.refresh_token);
    assert_eq!(
        caller(&setup, &renewed).await,
        Principal {
            subject: "desk-2".into(),
            role: Role::Operator
        }
    );
    let (first_id, renewed_id) = (claims(&first.id_token), claims(&renewed.id_token));
    assert_eq!(renewed_id["sub"], "desk-2");
    assert_eq!(renewed_id["auth_time"], first_id["auth_time"]);
    // Rotated: the old refresh token is spent.
    let error = setup
        .flow
        .token(&refresh(&first.refresh_token))
        .unwrap_err();
    assert_eq!(error.error, "invalid_grant");
    // And another client cannot use this one.
    let mut stolen = refresh(&renewed.refresh_token);
    stolen.client_id = Some("other".into());
    assert_eq!(
        setup.flow.token(&stolen).unwrap_err().error,
        "invalid_client"
    );
}
