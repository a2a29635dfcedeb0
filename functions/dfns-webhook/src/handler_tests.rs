//! `POST /v1/webhooks/dfns` as API Gateway calls it. Run with the stand-ins (`cargo xtask test`).

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request};
use platform::testing::{TestEnv, TestOptions};
use serde_json::{Value, json};

/// The platform as this function holds it: the webhook secret only.
fn receiver(env: &TestEnv) -> platform::App {
    env.app.holding_only(crate::SECRETS)
}

fn request(signature: Option<&str>, body: &[u8]) -> Request {
    let mut builder = lambda_http::http::Request::builder()
        .method(Method::POST)
        .uri("/v1/webhooks/dfns")
        .header("content-type", "application/json");
    if let Some(signature) = signature {
        builder = builder.header(crate::SIGNATURE_HEADER, signature);
    }
    builder.body(Body::from(body.to_vec())).unwrap()
}

fn event() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": format!("whe-{}", ulid::Ulid::new().to_string().to_lowercase()),
        "kind": "wallet.offer.received",
        "date": "2026-01-01T00:00:00.000Z",
        "timestampSent": time::OffsetDateTime::now_utc().unix_timestamp(),
        "data": {}
    }))
    .unwrap()
}

#[tokio::test]
async fn a_signed_delivery_is_acknowledged_and_a_bad_signature_is_a_401() {
    let env = TestEnv::start(TestOptions {
        webhooks: false,
        ..TestOptions::default()
    })
    .await;
    let body = event();
    let response = crate::handle(&receiver(&env), request(Some("sha256=00"), &body)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let error: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(error["error"]["code"], "unauthorized");
    let response = crate::handle(&receiver(&env), request(None, &body)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let signature = env.sign_webhook(&body);
    let response = crate::handle(&receiver(&env), request(Some(&signature), &body)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let ack: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(ack["outcome"], "ignored");
    let again = crate::handle(&receiver(&env), request(Some(&signature), &body)).await;
    let ack: Value = serde_json::from_slice(again.body().as_ref()).unwrap();
    assert_eq!(ack["outcome"], "duplicate");
}

/// An unsigned or malformed delivery is refused before the secret is read: the receiver here
/// holds no secret at all, so reading one would be a 500, not the 401.
#[tokio::test]
async fn an_unsigned_or_malformed_delivery_is_refused_without_reading_the_secret() {
    let env = TestEnv::start(TestOptions {
        webhooks: false,
        ..TestOptions::default()
    })
    .await;
    let holding_nothing = env.app.holding_only(platform::SecretsHeld::default());
    let body = event();
    let well_formed = format!("sha256={}", "ab".repeat(32));
    for signature in [None, Some("sha256=00"), Some("deadbeef"), Some("sha256=")] {
        let response = crate::handle(&holding_nothing, request(signature, &body)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{signature:?}");
        let error: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        assert_eq!(error["error"]["code"], "unauthorized");
    }
    // A well-formed one needs the secret: this receiver cannot check it.
    let response = crate::handle(&holding_nothing, request(Some(&well_formed), &body)).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

/// A forged `wallet.transfer.failed` for an order the desk has in flight.
fn transfer_failed(order_id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": format!("whe-{}", ulid::Ulid::new().to_string().to_lowercase()),
        "kind": "wallet.transfer.failed",
        "date": "2026-01-01T00:00:00.000Z",
        "timestampSent": time::OffsetDateTime::now_utc().unix_timestamp(),
        "data": { "transferRequest": {
            "id": "xfr-forged", "walletId": "wa-forged", "network": "EthereumSepolia",
            "requester": { "userId": "us-x" },
            "requestBody": { "kind": "Native", "to": "0x52908400098527886e0f7030069857d2e4169ee7", "amount": "1", "externalId": order_id },
            "status": "Failed", "reason": "forged", "dateRequested": "2026-01-01T00:00:00.000Z"
        } }
    }))
    .unwrap()
}

#[tokio::test]
async fn with_the_placeholder_or_a_short_secret_nothing_is_applied() {
    fn placeholder(secret: &mut Value) {
        secret["dfnsWebhookSecret"] = json!("set-by-bootstrap");
    }
    fn short(secret: &mut Value) {
        secret["dfnsWebhookSecret"] = json!("too-short-to-be-a-key");
    }
    for (edit, key) in [
        (placeholder as fn(&mut Value), "set-by-bootstrap"),
        (short, "too-short-to-be-a-key"),
    ] {
        let env = TestEnv::start(TestOptions {
            webhooks: false,
            edit_secret: Some(edit),
            ..TestOptions::default()
        })
        .await;
        // An order in flight that a forged failure would end.
        let client = domain::ClientId::parse(&format!("c-{}", ulid::Ulid::new())).unwrap();
        let order = env
            .app
            .store()
            .create_order(&store::NewOrder {
                id: domain::OrderId::new(),
                client_id: client.clone(),
                network: domain::Network::EthereumSepolia,
                kind: store::OrderKind::Exchange,
                exchange: "Kraken".into(),
                to: None,
                asset: "ETH".into(),
                amount: domain::Amount::from(1u128),
                execute_at: time::OffsetDateTime::now_utc(),
                created_by: "desk-1".into(),
                created_at: time::OffsetDateTime::now_utc(),
                needs_confirmation: false,
            })
            .await
            .unwrap();
        // Signed with the very key the secret holds: anyone who read the README could do so.
        let body = transfer_failed(&order.id.to_string());
        let signature = platform::testing::sign_webhook(key, &body);
        let response = crate::handle(&receiver(&env), request(Some(&signature), &body)).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{key}");
        let error: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        assert_eq!(error["error"]["code"], "unavailable");
        let after = env.app.store().get_order(&order.id).await.unwrap().unwrap();
        assert_eq!(after, order, "the order is as it was");
        assert!(
            env.app
                .store()
                .list_audit_events(&client, None, 10)
                .await
                .unwrap()
                .entries
                .is_empty(),
            "nothing audited"
        );
    }
}

const NEXT_SECRET: &str = "whsec.the-next-webhooks-secret-0123456789";

#[tokio::test]
async fn during_a_rotation_both_secrets_verify_and_after_it_only_the_new_one() {
    fn rotating(secret: &mut Value) {
        secret["dfnsWebhookSecretNext"] = json!(NEXT_SECRET);
    }
    let env = TestEnv::start(TestOptions {
        webhooks: false,
        edit_secret: Some(rotating),
        ..TestOptions::default()
    })
    .await;
    for key in [env.webhook_secret.clone(), NEXT_SECRET.to_owned()] {
        let body = event();
        let signature = platform::testing::sign_webhook(&key, &body);
        let response = crate::handle(&receiver(&env), request(Some(&signature), &body)).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let body = event();
    let signature =
        platform::testing::sign_webhook("whsec.some-other-secret-0123456789abcdef", &body);
    let response = crate::handle(&receiver(&env), request(Some(&signature), &body)).await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "a third key is not accepted"
    );

    // Promoted: the next secret is now the current one, and the old one is gone.
    fn promoted(secret: &mut Value) {
        secret["dfnsWebhookSecret"] = json!(NEXT_SECRET);
    }
    let env = TestEnv::start(TestOptions {
        webhooks: false,
        edit_secret: Some(promoted),
        ..TestOptions::default()
    })
    .await;
    let body = event();
    let old = platform::testing::sign_webhook(&env.webhook_secret, &body);
    let response = crate::handle(&receiver(&env), request(Some(&old), &body)).await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "the old secret no longer verifies"
    );
    let new = platform::testing::sign_webhook(NEXT_SECRET, &body);
    let response = crate::handle(&receiver(&env), request(Some(&new), &body)).await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// `body` followed by spaces, `len` bytes in all: the same JSON event, signed as sent.
fn padded(body: &[u8], len: usize) -> Vec<u8> {
    let mut padded = body.to_vec();
    assert!(padded.len() <= len);
    padded.resize(len, b' ');
    padded
}

#[tokio::test]
async fn a_delivery_over_64_kib_is_413_before_verification_and_records_nothing() {
    let env = TestEnv::start(TestOptions {
        webhooks: false,
        ..TestOptions::default()
    })
    .await;
    let limit = platform::http::MAX_BODY_BYTES;
    let event = event();

    // Correctly signed, but one byte over: refused before the body is verified or applied.
    let oversized = padded(&event, limit + 1);
    let signature = env.sign_webhook(&oversized);
    let response = crate::handle(&receiver(&env), request(Some(&signature), &oversized)).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let error: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(error["error"]["code"], "payload_too_large");
    assert_eq!(error["error"]["message"], "the body is larger than 64 KiB");
    // Unsigned, the same.
    let response = crate::handle(&receiver(&env), request(None, &oversized)).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Nothing was recorded: the same event, at the limit, is new (not a duplicate).
    let at_limit = padded(&event, limit);
    let signature = env.sign_webhook(&at_limit);
    let response = crate::handle(&receiver(&env), request(Some(&signature), &at_limit)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let ack: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_ne!(ack["outcome"], "duplicate", "{ack}");
}

/// Issue 13: every way a delivery can end is counted (an EMF metric line in Lambda; alarms watch
/// the failures). Counts are per process and tests run in parallel, so each check is "went up".
#[tokio::test]
async fn each_outcome_is_counted_in_its_metric() {
    use platform::metrics::{
        WEBHOOK_ACCEPTED, WEBHOOK_BAD_SIGNATURE, WEBHOOK_STALE, WEBHOOK_UNPARSEABLE, counted,
    };
    let env = TestEnv::start(TestOptions {
        webhooks: false,
        ..TestOptions::default()
    })
    .await;
    let receiver = receiver(&env);
    let cases: Vec<(&'static str, Vec<u8>, Option<String>, StatusCode)> = {
        let good = event();
        let stale = serde_json::to_vec(&json!({
            "id": "whe-stale", "kind": "wallet.offer.received", "date": "2026-01-01T00:00:00.000Z",
            "timestampSent": time::OffsetDateTime::now_utc().unix_timestamp() - 3600, "data": {}
        }))
        .unwrap();
        // Signed and fresh, but not an event this code reads (no `kind`).
        let unparseable = serde_json::to_vec(&json!({
            "id": "whe-new-shape", "timestampSent": time::OffsetDateTime::now_utc().unix_timestamp(),
            "payload": {}
        }))
        .unwrap();
        vec![
            (
                WEBHOOK_ACCEPTED,
                good.clone(),
                Some(env.sign_webhook(&good)),
                StatusCode::OK,
            ),
            (
                WEBHOOK_BAD_SIGNATURE,
                good.clone(),
                Some("sha256=00".into()),
                StatusCode::UNAUTHORIZED,
            ),
            (WEBHOOK_BAD_SIGNATURE, good, None, StatusCode::UNAUTHORIZED),
            (
                WEBHOOK_STALE,
                stale.clone(),
                Some(env.sign_webhook(&stale)),
                StatusCode::UNAUTHORIZED,
            ),
            // Without a queue (this test), refused; with one, kept (see the e2e tests).
            (
                WEBHOOK_UNPARSEABLE,
                unparseable.clone(),
                Some(env.sign_webhook(&unparseable)),
                StatusCode::UNAUTHORIZED,
            ),
        ]
    };
    for (metric, body, signature, status) in cases {
        let before = counted(metric);
        let response = crate::handle(&receiver, request(signature.as_deref(), &body)).await;
        assert_eq!(response.status(), status, "{metric}");
        assert!(counted(metric) > before, "{metric} counted");
    }
}
