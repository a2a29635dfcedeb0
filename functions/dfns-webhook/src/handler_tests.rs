//! `POST /v1/webhooks/dfns` as API Gateway calls it. Run with the stand-ins (`cargo xtask test`).

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request};
use platform::testing::{TestEnv, TestOptions};
use serde_json::{Value, json};

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
    let response = crate::handle(&env.app, request(Some("sha256=00"), &body)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let error: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(error["error"]["code"], "unauthorized");
    let response = crate::handle(&env.app, request(None, &body)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let signature = env.sign_webhook(&body);
    let response = crate::handle(&env.app, request(Some(&signature), &body)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let ack: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(ack["outcome"], "ignored");
    let again = crate::handle(&env.app, request(Some(&signature), &body)).await;
    let ack: Value = serde_json::from_slice(again.body().as_ref()).unwrap();
    assert_eq!(ack["outcome"], "duplicate");
}
