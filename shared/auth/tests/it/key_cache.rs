//! How the issuer's keys are fetched: lazily, once per container, again on rotation (rate-limited),
//! again when old, and what happens when the issuer is down. Requests are counted at the server.

use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use auth::dev_issuer::{DevIssuer, SigningAlgorithm, TokenSpec};
use auth::{AuthError, Authenticator, Role};
use http::StatusCode;

fn token(issuer: &DevIssuer, sub: &str) -> String {
    issuer
        .mint(&TokenSpec::cognito_access(sub, COGNITO_CLIENT_ID))
        .unwrap()
}

#[tokio::test]
async fn keys_are_fetched_on_first_use_then_cached() {
    let (issuer, server, authenticator) = cognito_setup(SigningAlgorithm::Rs256).await;
    let authenticator = Arc::new(authenticator);
    wait(Duration::from_millis(50)).await;
    assert_eq!(
        server.requests(),
        0,
        "building the authenticator fetches nothing"
    );

    // Many concurrent first requests share one fetch.
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let authenticator = authenticator.clone();
            let token = token(&issuer, &format!("client-{i}"));
            tokio::spawn(async move { authenticator.verify_token(&token).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().role, Role::Client);
    }
    for i in 0..20 {
        authenticator
            .verify_token(&token(&issuer, &format!("later-{i}")))
            .await
            .unwrap();
    }
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn rotated_key_triggers_exactly_one_refetch() {
    let old = cognito_issuer(SigningAlgorithm::Rs256);
    let server = JwksServer::start(jwks_of(&[&old])).await;
    let authenticator = Arc::new(Authenticator::new(cognito_settings(&old, &server)));
    authenticator
        .verify_token(&token(&old, "alice"))
        .await
        .unwrap();
    assert_eq!(server.requests(), 1);

    // The issuer rotates: a new key is published and starts signing.
    let new = DevIssuer::generate(old.issuer(), SigningAlgorithm::Rs256).unwrap();
    server.publish(&[&old, &new]);
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let authenticator = authenticator.clone();
            let token = token(&new, &format!("client-{i}"));
            tokio::spawn(async move { authenticator.verify_token(&token).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(
        server.requests(),
        2,
        "one refetch for ten concurrent tokens"
    );

    // Both keys now verify from the cache.
    authenticator
        .verify_token(&token(&old, "alice"))
        .await
        .unwrap();
    authenticator
        .verify_token(&token(&new, "bob"))
        .await
        .unwrap();
    assert_eq!(server.requests(), 2);

    // A key id nobody publishes, right after a refetch: refused without asking the issuer again.
    let stranger = DevIssuer::generate(old.issuer(), SigningAlgorithm::Rs256).unwrap();
    for _ in 0..5 {
        assert_eq!(
            authenticator
                .verify_token(&token(&stranger, "mallory"))
                .await,
            Err(AuthError::UnknownKey)
        );
    }
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn unknown_key_refetches_are_rate_limited_by_the_cooldown() {
    let issuer = cognito_issuer(SigningAlgorithm::Es256);
    let server = JwksServer::start(issuer.jwks()).await;
    let mut settings = cognito_settings(&issuer, &server);
    settings.jwks_refetch_cooldown = Duration::from_millis(300);
    let authenticator = Authenticator::new(settings);
    authenticator
        .verify_token(&token(&issuer, "alice"))
        .await
        .unwrap();

    let stranger = DevIssuer::generate(issuer.issuer(), SigningAlgorithm::Es256).unwrap();
    let forged = token(&stranger, "mallory");
    assert_eq!(
        authenticator.verify_token(&forged).await,
        Err(AuthError::UnknownKey)
    );
    assert_eq!(server.requests(), 2, "first unknown key id: one refetch");
    assert_eq!(
        authenticator.verify_token(&forged).await,
        Err(AuthError::UnknownKey)
    );
    assert_eq!(server.requests(), 2, "within the cooldown: none");

    wait(Duration::from_millis(350)).await;
    assert_eq!(
        authenticator.verify_token(&forged).await,
        Err(AuthError::UnknownKey)
    );
    assert_eq!(server.requests(), 3, "after the cooldown: one more");
}

#[tokio::test]
async fn issuer_outage_is_retryable_and_not_cached() {
    let (issuer, server, authenticator) = cognito_setup(SigningAlgorithm::Rs256).await;
    server.answer_with(500);
    let error = authenticator
        .verify_token(&token(&issuer, "alice"))
        .await
        .unwrap_err();
    assert!(matches!(error, AuthError::JwksUnavailable(_)), "{error:?}");
    assert!(error.is_retryable());
    assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(server.requests(), 1);

    // A burst during the outage shares one failed fetch instead of queueing one each.
    let authenticator = Arc::new(authenticator);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let authenticator = authenticator.clone();
            let token = token(&issuer, &format!("client-{i}"));
            tokio::spawn(async move { authenticator.verify_token(&token).await })
        })
        .collect();
    for task in tasks {
        assert!(matches!(
            task.await.unwrap(),
            Err(AuthError::JwksUnavailable(_))
        ));
    }
    assert_eq!(server.requests(), 2);

    // Back up: the next request fetches and succeeds.
    server.answer_with(200);
    assert!(
        authenticator
            .verify_token(&token(&issuer, "alice"))
            .await
            .is_ok()
    );
    assert_eq!(server.requests(), 3);

    // Nobody listening at all.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut settings = authenticator.settings().clone();
    settings.jwks_url = format!(
        "http://{}/.well-known/jwks.json",
        closed.local_addr().unwrap()
    );
    drop(closed);
    let unreachable = Authenticator::new(settings);
    assert!(matches!(
        unreachable.verify_token(&token(&issuer, "alice")).await,
        Err(AuthError::JwksUnavailable(_))
    ));
}

#[tokio::test]
async fn old_keys_are_refreshed_so_withdrawn_keys_stop_working() {
    let issuer = cognito_issuer(SigningAlgorithm::Rs256);
    let server = JwksServer::start(issuer.jwks()).await;
    let mut settings = cognito_settings(&issuer, &server);
    settings.jwks_max_age = Duration::from_millis(200);
    settings.jwks_refetch_cooldown = Duration::from_millis(100);
    let authenticator = Authenticator::new(settings);
    authenticator
        .verify_token(&token(&issuer, "alice"))
        .await
        .unwrap();

    // Issuer down when the cache ages: the old keys keep serving rather than refusing everyone,
    // and the issuer is not asked again on every request while it is down.
    wait(Duration::from_millis(250)).await;
    server.answer_with(503);
    for _ in 0..3 {
        assert!(
            authenticator
                .verify_token(&token(&issuer, "alice"))
                .await
                .is_ok()
        );
    }
    assert_eq!(server.requests(), 2);

    // Issuer back, having withdrawn the key: tokens signed with it are refused.
    server.answer_with(200);
    let successor = DevIssuer::generate(issuer.issuer(), SigningAlgorithm::Rs256).unwrap();
    server.publish(&[&successor]);
    wait(Duration::from_millis(250)).await;
    assert_eq!(
        authenticator.verify_token(&token(&issuer, "alice")).await,
        Err(AuthError::UnknownKey)
    );
    assert!(
        authenticator
            .verify_token(&token(&successor, "alice"))
            .await
            .is_ok()
    );
}
