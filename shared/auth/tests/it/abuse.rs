//! Tokens a genuine issuer signed but that must still not get in, or not as an operator: a Cognito
//! ID token where access tokens are required (`AUTH_TOKEN_USE`), and role claims that merely
//! contain the operator role.

use std::collections::HashMap;

use crate::common::*;
use auth::dev_issuer::{DevIssuer, SigningAlgorithm, TokenShape, TokenSpec};
use auth::{AuthError, Authenticator, Principal, Role, TokenUse};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value, json};

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    headers
}

fn access(issuer: &DevIssuer, sub: &str) -> String {
    issuer
        .mint(&TokenSpec::cognito_access(sub, COGNITO_CLIENT_ID).role("operators"))
        .unwrap()
}

fn id_token(issuer: &DevIssuer, sub: &str) -> String {
    let shape = TokenShape::CognitoId {
        client_id: COGNITO_CLIENT_ID.into(),
    };
    issuer
        .mint(&TokenSpec::new(sub, shape).role("operators"))
        .unwrap()
}

/// Cognito-like, but with no `token_use` claim at all.
fn without_token_use(issuer: &DevIssuer, sub: &str) -> String {
    let spec = TokenSpec::oidc(sub, COGNITO_CLIENT_ID, "cognito:groups").role("operators");
    assert!(!spec.claims(issuer.issuer()).contains_key("token_use"));
    issuer.mint(&spec).unwrap()
}

fn operator(subject: &str) -> Principal {
    Principal {
        subject: subject.to_owned(),
        role: Role::Operator,
    }
}

#[tokio::test]
async fn required_token_use_refuses_id_tokens_and_tokens_without_the_claim() {
    let issuer = cognito_issuer(SigningAlgorithm::Rs256);
    let server = JwksServer::start(issuer.jwks()).await;
    let mut settings = cognito_settings(&issuer, &server);
    settings.token_use = Some(TokenUse::Access);
    let authenticator = Authenticator::new(settings);

    let token = access(&issuer, "alice-0001");
    assert_eq!(
        authenticator.authenticate(&bearer(&token), None).await,
        Ok(operator("alice-0001"))
    );

    for (name, token, found) in [
        ("id token", id_token(&issuer, "alice-0001"), Some("id")),
        (
            "no token_use",
            without_token_use(&issuer, "alice-0001"),
            None,
        ),
        (
            "token_use not a string",
            issuer
                .mint(
                    &TokenSpec::cognito_access("alice-0001", COGNITO_CLIENT_ID)
                        .role("operators")
                        .claim("token_use", json!(["access"])),
                )
                .unwrap(),
            None,
        ),
    ] {
        let error = authenticator
            .authenticate(&bearer(&token), None)
            .await
            .unwrap_err();
        assert_eq!(
            error,
            AuthError::WrongTokenUse {
                required: TokenUse::Access,
                found: found.map(str::to_owned),
            },
            "{name}"
        );
        // The same refusal as any invalid token: 401 `unauthenticated`.
        assert_eq!(error.status(), StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(error.code(), "unauthenticated", "{name}");
        // What is logged says why, and carries no part of the token.
        let text = format!("{error} {error:?}");
        assert!(text.contains("token_use"), "{name}: {text}");
        for part in token.split('.').filter(|p| p.len() > 8) {
            assert!(!text.contains(part), "{name}: error text leaks the token");
        }
    }
}

#[tokio::test]
async fn unset_token_use_accepts_every_kind_as_before() {
    let (issuer, _server, authenticator) = cognito_setup(SigningAlgorithm::Es256).await;
    assert_eq!(authenticator.settings().token_use, None);
    for token in [
        access(&issuer, "alice-0001"),
        id_token(&issuer, "alice-0001"),
        without_token_use(&issuer, "alice-0001"),
    ] {
        assert_eq!(
            authenticator.verify_token(&token).await,
            Ok(operator("alice-0001"))
        );
    }
    // The development issuer's plain OIDC tokens carry no token_use at all.
    let oidc = DevIssuer::generate(issuer.issuer(), SigningAlgorithm::Es256).unwrap();
    let server = JwksServer::start(oidc.jwks()).await;
    let mut settings = cognito_settings(&oidc, &server);
    settings.role_claim = "roles".into();
    let local = Authenticator::new(settings);
    let token = oidc
        .mint(&TokenSpec::oidc("bob-0002", COGNITO_CLIENT_ID, "roles").role("operators"))
        .unwrap();
    assert_eq!(local.verify_token(&token).await, Ok(operator("bob-0002")));
}

/// Claims as API Gateway's JWT authorizer hands them over (strings only).
fn gateway_claims(issuer: &DevIssuer, token_use: Option<&str>) -> HashMap<String, String> {
    let mut claims: HashMap<String, String> = [
        ("sub", "alice-0001"),
        ("iss", issuer.issuer()),
        ("client_id", COGNITO_CLIENT_ID),
        ("cognito:groups", "[operators]"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if let Some(token_use) = token_use {
        claims.insert("token_use".into(), token_use.into());
    }
    claims
}

#[tokio::test]
async fn required_token_use_applies_to_gateway_claims_too() {
    let issuer = cognito_issuer(SigningAlgorithm::Rs256);
    let server = JwksServer::start(issuer.jwks()).await;
    let mut settings = cognito_settings(&issuer, &server);
    settings.trust_gateway_claims = true;
    settings.token_use = Some(TokenUse::Access);
    let authenticator = Authenticator::new(settings.clone());

    assert_eq!(
        authenticator.principal_from_gateway_claims(&gateway_claims(&issuer, Some("access"))),
        Ok(operator("alice-0001"))
    );
    for token_use in [Some("id"), None] {
        assert!(
            matches!(
                authenticator.principal_from_gateway_claims(&gateway_claims(&issuer, token_use)),
                Err(AuthError::WrongTokenUse { .. })
            ),
            "{token_use:?}"
        );
    }

    settings.token_use = None;
    let unchecked = Authenticator::new(settings);
    for token_use in [Some("access"), Some("id"), None] {
        assert_eq!(
            unchecked.principal_from_gateway_claims(&gateway_claims(&issuer, token_use)),
            Ok(operator("alice-0001")),
            "{token_use:?}"
        );
    }
}

#[tokio::test]
async fn operator_role_must_be_a_whole_value_of_the_signed_claim() {
    let (issuer, _server, authenticator) = cognito_setup(SigningAlgorithm::Rs256).await;
    let with_groups = |groups: Value| {
        issuer
            .mint(
                &TokenSpec::cognito_access("alice-0001", COGNITO_CLIENT_ID)
                    .claim("cognito:groups", groups),
            )
            .unwrap()
    };
    let cases = [
        (json!(["operators"]), Role::Operator),
        (json!("operators"), Role::Operator),
        (json!("not-operators"), Role::Client),
        (json!("operators-x"), Role::Client),
        (json!("clients operators"), Role::Client),
        (json!(["operatorsx"]), Role::Client),
        (json!([["operators"]]), Role::Client),
        (json!({"a": "operators"}), Role::Client),
    ];
    for (groups, role) in cases {
        let principal = authenticator
            .verify_token(&with_groups(groups.clone()))
            .await
            .unwrap();
        assert_eq!(principal.role, role, "{groups}");
    }
}
