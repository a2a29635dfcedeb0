//! `POST /v1/accounts` as API Gateway calls it. Run with the stand-ins (`cargo xtask test`).

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request};
use platform::testing::{TestEnv, TestOptions};
use serde_json::Value;

fn request(token: Option<&str>) -> Request {
    let mut builder = lambda_http::http::Request::builder()
        .method(Method::POST)
        .uri("/v1/accounts");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(Body::Empty).unwrap()
}

fn error_code(response: &lambda_http::Response<Body>) -> String {
    let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    body["error"]["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn no_token_is_a_401_and_an_operator_is_a_403() {
    let env = TestEnv::start(TestOptions::default()).await;
    let response = crate::handle(&env.app, request(None)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&response), "unauthorized");
    let response = crate::handle(&env.app, request(Some(&env.operator_token("desk-1")))).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(&response), "forbidden");
}

#[tokio::test]
async fn opening_twice_answers_the_same_account() {
    let env = TestEnv::start(TestOptions::default()).await;
    let client = format!("signup-{}", ulid::Ulid::new());
    let token = env.token(&client);
    let first = crate::handle(&env.app, request(Some(&token))).await;
    assert_eq!(first.status(), StatusCode::OK, "{:?}", first.body());
    let first: Value = serde_json::from_slice(first.body().as_ref()).unwrap();
    assert_eq!(first["status"], "Open");
    assert_eq!(first["clientId"], client);
    assert_eq!(first["wallets"].as_array().unwrap().len(), 1);
    assert!(first["policies"]["whitelist-ethereumsepolia"].is_string());
    let second = crate::handle(&env.app, request(Some(&token))).await;
    let second: Value = serde_json::from_slice(second.body().as_ref()).unwrap();
    assert_eq!(first, second);
}
