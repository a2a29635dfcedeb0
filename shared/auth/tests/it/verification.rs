//! Tokens shaped like Cognito's and Auth0's, accepted or refused with the reason a caller would
//! expect, against keys served over HTTP by an in-process issuer.

use std::collections::HashMap;

use crate::common::*;
use auth::dev_issuer::{DevIssuer, SigningAlgorithm, TokenSpec};
use auth::{AuthError, AuthSettings, Authenticator, Principal, Role};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    headers
}

fn principal(subject: &str, role: Role) -> Principal {
    Principal {
        subject: subject.to_owned(),
        role,
    }
}

#[tokio::test]
async fn cognito_access_and_id_tokens_are_accepted_with_role_from_groups() {
    let (issuer, _server, authenticator) = cognito_setup(SigningAlgorithm::Rs256).await;
    assert!(
        issuer
            .issuer()
            .starts_with("https://cognito-idp.eu-west-1.amazonaws.com/")
    );

    let operator = issuer
        .mint(&TokenSpec::cognito_access("alice-0001", COGNITO_CLIENT_ID).role("operators"))
        .unwrap();
    assert_eq!(
        authenticator.authenticate(&bearer(&operator), None).await,
        Ok(principal("alice-0001", Role::Operator))
    );

    let client = issuer
        .mint(&TokenSpec::cognito_access("bob-0002", COGNITO_CLIENT_ID).role("readers"))
        .unwrap();
    assert_eq!(
        authenticator.authenticate(&bearer(&client), None).await,
        Ok(principal("bob-0002", Role::Client))
    );

    // ID tokens carry the app client in `aud` instead of `client_id`. Accepted because
    // `token_use` is not required here (abuse.rs covers `AUTH_TOKEN_USE`).
    let id_token = issuer
        .mint(&TokenSpec::new(
            "carol-0003",
            auth::dev_issuer::TokenShape::CognitoId {
                client_id: COGNITO_CLIENT_ID.into(),
            },
        ))
        .unwrap();
    assert_eq!(
        authenticator.verify_token(&id_token).await,
        Ok(principal("carol-0003", Role::Client))
    );
}

#[tokio::test]
async fn auth0_tokens_are_accepted_with_role_from_namespaced_claim_for_both_algorithms() {
    for alg in [SigningAlgorithm::Rs256, SigningAlgorithm::Es256] {
        let issuer = DevIssuer::auth0("platform-dev.eu.auth0.com", alg).unwrap();
        assert!(issuer.issuer().ends_with('/'));
        let server = JwksServer::start(issuer.jwks()).await;
        // Configured without the trailing slash Auth0 puts in `iss`: still the same issuer.
        let mut settings = AuthSettings::new(
            issuer.issuer().trim_end_matches('/'),
            vec![AUTH0_API.to_owned()],
        );
        settings.jwks_url = server.url.clone();
        settings.role_claim = AUTH0_ROLES_CLAIM.to_owned();
        settings.operator_role = "operator".to_owned();
        let authenticator = Authenticator::new(settings);

        let desk = issuer
            .mint(&TokenSpec::auth0("auth0|desk", AUTH0_API, AUTH0_ROLES_CLAIM).role("operator"))
            .unwrap();
        assert_eq!(
            authenticator
                .verify_bearer(Some(&format!("Bearer {desk}")))
                .await,
            Ok(principal("auth0|desk", Role::Operator)),
            "{alg:?}"
        );

        let client = issuer
            .mint(&TokenSpec::auth0(
                "auth0|client",
                AUTH0_API,
                AUTH0_ROLES_CLAIM,
            ))
            .unwrap();
        // The scheme is case-insensitive, as RFC 7235 says.
        assert_eq!(
            authenticator
                .verify_bearer(Some(&format!("bearer {client}")))
                .await,
            Ok(principal("auth0|client", Role::Client)),
            "{alg:?}"
        );
    }
}

/// Every way a token can be wrong is refused with its own error, never echoing the token, and
/// tokens with a forbidden algorithm are refused before any key is fetched.
#[tokio::test]
async fn bad_tokens_are_rejected_each_with_its_own_error() {
    let (issuer, server, authenticator) = cognito_setup(SigningAlgorithm::Rs256).await;
    let now = now();
    let spec = || TokenSpec::cognito_access("alice-0001", COGNITO_CLIENT_ID);

    // Algorithms the key set must never be consulted for.
    let payload =
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&spec().claims(issuer.issuer())).unwrap());
    let none_header = URL_SAFE_NO_PAD
        .encode(json!({"alg": "none", "typ": "JWT", "kid": issuer.key_id()}).to_string());
    let alg_none = format!("{none_header}.{payload}.");
    // The classic confusion attack: HMAC "signed" with the issuer's public key as the secret.
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some(issuer.key_id().to_owned());
    let public_key_as_secret = issuer.public_jwk().to_string();
    let hs256_forged = jsonwebtoken::encode(
        &hs_header,
        &spec().claims(issuer.issuer()),
        &EncodingKey::from_secret(public_key_as_secret.as_bytes()),
    )
    .unwrap();
    for (token, name) in [
        (&alg_none, "alg none"),
        (&hs256_forged, "HS256 with public key"),
    ] {
        let error = authenticator.verify_token(token).await.unwrap_err();
        assert!(
            matches!(error, AuthError::DisallowedAlgorithm(_)),
            "{name}: {error:?}"
        );
        assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        server.requests(),
        0,
        "forbidden algorithms are refused before fetching keys"
    );

    // Signed by another key while naming the issuer's key.
    let impostor = DevIssuer::generate(issuer.issuer(), SigningAlgorithm::Rs256).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(issuer.key_id().to_owned());
    let other_key = jsonwebtoken::encode(
        &header,
        &spec().claims(issuer.issuer()),
        &EncodingKey::from_rsa_pem(impostor.private_key_pem().as_bytes()).unwrap(),
    )
    .unwrap();
    // A genuine token whose claims were edited afterwards.
    let genuine = issuer.mint(&spec()).unwrap();
    let parts: Vec<&str> = genuine.split('.').collect();
    let edited_payload = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&spec().role("operators").claims(issuer.issuer())).unwrap());
    let tampered = format!("{}.{edited_payload}.{}", parts[0], parts[2]);
    // An ES256 signature offered for the issuer's RSA key.
    let ec = DevIssuer::generate(issuer.issuer(), SigningAlgorithm::Es256).unwrap();
    let mut es_header = Header::new(Algorithm::ES256);
    es_header.kid = Some(issuer.key_id().to_owned());
    let wrong_family = jsonwebtoken::encode(
        &es_header,
        &spec().claims(issuer.issuer()),
        &EncodingKey::from_ec_pem(ec.private_key_pem().as_bytes()).unwrap(),
    )
    .unwrap();

    let mint = |spec: TokenSpec| issuer.mint(&spec).unwrap();
    let cases: Vec<(&str, String, AuthError)> = vec![
        ("other key", other_key, AuthError::BadSignature),
        ("tampered claims", tampered, AuthError::BadSignature),
        (
            "wrong issuer",
            mint(spec().claim(
                "iss",
                json!("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Other"),
            )),
            AuthError::WrongIssuer,
        ),
        (
            "another app client",
            mint(TokenSpec::cognito_access("alice-0001", "some-other-client")),
            AuthError::WrongAudience,
        ),
        (
            "aud for another API",
            mint(spec().claim("aud", json!(["https://other.example", "x"]))),
            AuthError::WrongAudience,
        ),
        (
            "no audience at all",
            mint(spec().claim("client_id", json!(null))),
            AuthError::WrongAudience,
        ),
        (
            "expired an hour ago",
            mint(spec().issued_at(now - 7200).expires_at(now - 3600)),
            AuthError::Expired,
        ),
        (
            "valid only in an hour",
            mint(spec().not_before(now + 3600)),
            AuthError::NotYetValid,
        ),
        (
            "unknown key",
            DevIssuer::generate(issuer.issuer(), SigningAlgorithm::Rs256)
                .unwrap()
                .mint(&spec())
                .unwrap(),
            AuthError::UnknownKey,
        ),
        (
            "no subject",
            mint(spec().claim("sub", json!(""))),
            AuthError::Malformed("no subject"),
        ),
    ];
    for (name, token, expected) in cases {
        let error = authenticator
            .authenticate(&bearer(&token), None)
            .await
            .unwrap_err();
        assert_eq!(error, expected, "{name}");
        assert_eq!(error.status(), StatusCode::UNAUTHORIZED, "{name}");
        let text = format!("{error} {error:?}");
        for part in token.split('.').filter(|p| p.len() > 8) {
            assert!(!text.contains(part), "{name}: error text leaks the token");
        }
    }

    let wrong_family_error = authenticator.verify_token(&wrong_family).await.unwrap_err();
    assert!(
        matches!(wrong_family_error, AuthError::DisallowedAlgorithm(_)),
        "{wrong_family_error:?}"
    );

    for header in [
        None,
        Some("Basic YWxpY2U6cHc="),
        Some("Bearer "),
        Some("Bearer"),
    ] {
        assert_eq!(
            authenticator.verify_bearer(header).await,
            Err(AuthError::MissingToken),
            "{header:?}"
        );
    }
    assert_eq!(
        authenticator.authenticate(&HeaderMap::new(), None).await,
        Err(AuthError::MissingToken)
    );
    assert!(matches!(
        authenticator.verify_token("not.a-jwt").await,
        Err(AuthError::Malformed(_))
    ));
}

#[tokio::test]
async fn clock_skew_within_the_leeway_is_tolerated() {
    let (issuer, _server, authenticator) = cognito_setup(SigningAlgorithm::Es256).await;
    let now = now();
    let just_expired = issuer
        .mint(
            &TokenSpec::cognito_access("alice-0001", COGNITO_CLIENT_ID)
                .issued_at(now - 3600)
                .expires_at(now - 5),
        )
        .unwrap();
    let almost_valid = issuer
        .mint(&TokenSpec::cognito_access("alice-0001", COGNITO_CLIENT_ID).not_before(now + 5))
        .unwrap();
    assert!(authenticator.verify_token(&just_expired).await.is_ok());
    assert!(authenticator.verify_token(&almost_valid).await.is_ok());
}

/// A real API Gateway HTTP API event (JWT authorizer), as the Lambda runtime delivers it.
fn gateway_event_claims(groups: &str, iss: &str) -> HashMap<String, String> {
    let event = json!({
        "version": "2.0",
        "routeKey": "GET /v1/account",
        "rawPath": "/v1/account",
        "rawQueryString": "",
        "headers": {"authorization": "Bearer eyJraWQiOi...redacted"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api-id",
            "authorizer": {
                "jwt": {
                    "claims": {
                        "sub": "alice-0001",
                        "iss": iss,
                        "client_id": COGNITO_CLIENT_ID,
                        "token_use": "access",
                        "cognito:groups": groups,
                        "exp": "1893456000",
                        "iat": "1893452400"
                    },
                    "scopes": ["aws.cognito.signin.user.admin"]
                }
            },
            "domainName": "api.platform.example",
            "domainPrefix": "api",
            "http": {"method": "GET", "path": "/v1/account", "protocol": "HTTP/1.1",
                     "sourceIp": "192.0.2.1", "userAgent": "curl/8"},
            "requestId": "req-1",
            "routeKey": "GET /v1/account",
            "stage": "$default",
            "time": "25/Nov/2026:01:00:00 +0000",
            "timeEpoch": 1795568400000u64
        },
        "isBase64Encoded": false
    });
    let request: aws_lambda_events::apigw::ApiGatewayV2httpRequest =
        serde_json::from_value(event).unwrap();
    request
        .request_context
        .authorizer
        .and_then(|a| a.jwt)
        .map(|jwt| jwt.claims)
        .expect("event carries authorizer claims")
}

#[tokio::test]
async fn gateway_claims_are_used_only_when_trusted() {
    let issuer = cognito_issuer(SigningAlgorithm::Rs256);
    let server = JwksServer::start(issuer.jwks()).await;
    let mut settings = cognito_settings(&issuer, &server);
    settings.trust_gateway_claims = true;
    let trusting = Authenticator::new(settings.clone());

    // The gateway flattens `cognito:groups` to a string.
    let claims = gateway_event_claims("[traders operators]", issuer.issuer());
    assert_eq!(
        trusting
            .authenticate(&HeaderMap::new(), Some(&claims))
            .await,
        Ok(principal("alice-0001", Role::Operator))
    );
    let client_claims = gateway_event_claims("[traders]", issuer.issuer());
    assert_eq!(
        trusting
            .authenticate(&HeaderMap::new(), Some(&client_claims))
            .await,
        Ok(principal("alice-0001", Role::Client))
    );
    // A gateway wired to another issuer is caught.
    let foreign = gateway_event_claims(
        "[operators]",
        "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Else",
    );
    assert_eq!(
        trusting.principal_from_gateway_claims(&foreign),
        Err(AuthError::WrongIssuer)
    );
    let mut no_sub = claims.clone();
    no_sub.remove("sub");
    assert!(matches!(
        trusting.principal_from_gateway_claims(&no_sub),
        Err(AuthError::IncompleteGatewayClaims(_))
    ));
    assert_eq!(server.requests(), 0, "gateway claims need no key fetch");

    // Trusted, but no claims (local run, no gateway): the bearer token is verified here.
    let token = issuer
        .mint(&TokenSpec::cognito_access("bob-0002", COGNITO_CLIENT_ID))
        .unwrap();
    assert_eq!(
        trusting.authenticate(&bearer(&token), None).await,
        Ok(principal("bob-0002", Role::Client))
    );

    // Not trusted: claims anyone could have put in the request are ignored.
    settings.trust_gateway_claims = false;
    let cautious = Authenticator::new(settings);
    assert_eq!(
        cautious
            .authenticate(&HeaderMap::new(), Some(&claims))
            .await,
        Err(AuthError::MissingToken)
    );
    assert_eq!(
        cautious.authenticate(&bearer(&token), Some(&claims)).await,
        Ok(principal("bob-0002", Role::Client)),
        "the verified token wins over untrusted claims"
    );
}
