//! The handler as API Gateway (or the local stack) calls it: `lambda_http` requests in, the one
//! error shape out. Run with the stand-ins (`cargo xtask test`).

use std::collections::HashMap;

use domain::{DestinationAction, DestinationRequestId, Network, NetworkAddress};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt};
use platform::testing::{TestEnv, TestOptions};
use serde_json::Value;
use store::NewDestinationRequest;
use time::OffsetDateTime;

fn request(method: Method, path: &str, token: Option<&str>, body: &str) -> Request {
    let mut builder = lambda_http::http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(Body::from(body.to_owned())).unwrap()
}

fn json(response: &lambda_http::Response<Body>) -> Value {
    serde_json::from_slice(response.body().as_ref()).unwrap()
}

fn assert_error_shape(response: &lambda_http::Response<Body>, status: StatusCode, code: &str) {
    assert_eq!(response.status(), status);
    let body = json(response);
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string());
    assert!(!body["error"]["requestId"].as_str().unwrap().is_empty());
}

fn unique(name: &str) -> String {
    format!("{name}-{}", ulid::Ulid::new())
}

#[tokio::test]
async fn bad_json_is_a_400_in_the_error_shape_and_stores_nothing() {
    let env = TestEnv::start(TestOptions::default()).await;
    let alice = unique("alice");
    let token = env.token(&alice);
    for body in [
        "{not json",
        "",
        r#"{"network":"EthereumSepolia"}"#,
        r#"{"network":"EthereumSepolia","address":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","label":"x","action":"add","extra":1}"#,
    ] {
        let response = crate::handle(
            &env.app,
            request(Method::POST, "/v1/destination-requests", Some(&token), body),
        )
        .await;
        assert_error_shape(&response, StatusCode::BAD_REQUEST, "bad_request");
    }
    let listed = crate::handle(
        &env.app,
        request(Method::GET, "/v1/destination-requests", Some(&token), ""),
    )
    .await;
    assert_eq!(listed.status(), StatusCode::OK);
    assert_eq!(json(&listed)["items"], serde_json::json!([]));
}

#[tokio::test]
async fn a_body_over_64_kib_is_a_413_and_one_nested_too_deep_a_400_and_neither_stores_anything() {
    let env = TestEnv::start(TestOptions::default()).await;
    let alice = unique("alice");
    let client = domain::ClientId::parse(&alice).unwrap();
    platform::onboarding::open_account(&env.app, &client, "open")
        .await
        .unwrap();
    let token = env.token(&alice);
    let valid = r#"{"network":"EthereumSepolia","address":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","label":"desk","action":"add"}"#;
    let padded = |len: usize| format!("{valid}{}", " ".repeat(len - valid.len()));
    let limit = platform::http::MAX_BODY_BYTES;
    let post = |body: String| {
        let request = request(
            Method::POST,
            "/v1/destination-requests",
            Some(&token),
            &body,
        );
        async { crate::handle(&env.app, request).await }
    };
    let response = post(padded(limit + 1)).await;
    assert_error_shape(
        &response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
    let response = post(deep).await;
    assert_error_shape(&response, StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(
        json(&response)["error"]["message"],
        "invalid JSON body: nested deeper than 32 levels"
    );
    let listed = crate::handle(
        &env.app,
        request(Method::GET, "/v1/destination-requests", Some(&token), ""),
    )
    .await;
    assert_eq!(json(&listed)["items"], serde_json::json!([]));

    // The same request at the limit is served.
    let response = post(padded(limit)).await;
    assert!(response.status().is_success(), "{:?}", response.body());
}

#[tokio::test]
async fn no_or_bad_token_is_a_401() {
    let env = TestEnv::start(TestOptions::default()).await;
    let response = crate::handle(
        &env.app,
        request(Method::GET, "/v1/destination-requests", None, ""),
    )
    .await;
    assert_error_shape(&response, StatusCode::UNAUTHORIZED, "unauthorized");
    let forged = format!("{}x", env.token("alice"));
    let response = crate::handle(
        &env.app,
        request(Method::GET, "/v1/destination-requests", Some(&forged), ""),
    )
    .await;
    assert_error_shape(&response, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn another_clients_request_is_not_found_and_the_owner_can_cancel_it() {
    let env = TestEnv::start(TestOptions::default()).await;
    let alice = domain::ClientId::parse(&unique("alice")).unwrap();
    let bob = unique("bob");
    let id = DestinationRequestId::new();
    env.app
        .store()
        .create_destination_request(&NewDestinationRequest {
            id,
            client_id: alice.clone(),
            destination: NetworkAddress::parse(
                Network::EthereumSepolia,
                "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
            )
            .unwrap(),
            label: "Exchange".into(),
            action: DestinationAction::Add,
            created_at: OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();
    let path = format!("/v1/destination-requests/{id}");
    let delete = |token: String| {
        request(Method::DELETE, &path, Some(&token), "")
            .with_path_parameters(HashMap::from([("id".to_owned(), id.to_string())]))
    };

    let response = crate::handle(&env.app, delete(env.token(&bob))).await;
    assert_error_shape(&response, StatusCode::NOT_FOUND, "not_found");
    let listed = crate::handle(
        &env.app,
        request(
            Method::GET,
            "/v1/destination-requests",
            Some(&env.token(&bob)),
            "",
        ),
    )
    .await;
    assert_eq!(json(&listed)["items"], serde_json::json!([]));

    let response = crate::handle(&env.app, delete(env.token(alice.as_str()))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json(&response)["state"], "Cancelled");
    let again = crate::handle(&env.app, delete(env.token(alice.as_str()))).await;
    assert_error_shape(&again, StatusCode::CONFLICT, "conflict");

    // An id that is not even well-formed names nobody's request.
    let malformed = request(
        Method::DELETE,
        "/v1/destination-requests/nope",
        Some(&env.token(&bob)),
        "",
    )
    .with_path_parameters(HashMap::from([("id".to_owned(), "nope".to_owned())]));
    let response = crate::handle(&env.app, malformed).await;
    assert_error_shape(&response, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn wrong_method_and_unknown_route() {
    let env = TestEnv::start(TestOptions::default()).await;
    let token = env.token("carol");
    let response = crate::handle(
        &env.app,
        request(Method::PUT, "/v1/destination-requests", Some(&token), "{}"),
    )
    .await;
    assert_error_shape(
        &response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    let mut allowed: Vec<&str> = allow.split(',').map(str::trim).collect();
    allowed.sort();
    assert_eq!(allowed, ["GET", "HEAD", "POST"], "Allow: {allow}");
    let response = crate::handle(
        &env.app,
        request(Method::GET, "/v1/other", Some(&token), ""),
    )
    .await;
    assert_error_shape(&response, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_body_not_declared_as_json_is_a_415_and_stores_nothing() {
    let env = TestEnv::start(TestOptions::default()).await;
    let token = env.token(&unique("dora"));
    let body = r#"{"network":"EthereumSepolia","address":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","label":"x","action":"add"}"#;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut req = request(Method::POST, "/v1/destination-requests", Some(&token), body);
        match content_type {
            Some(value) => {
                req.headers_mut()
                    .insert("content-type", value.parse().unwrap());
            }
            None => {
                req.headers_mut().remove("content-type");
            }
        }
        let response = crate::handle(&env.app, req).await;
        assert_error_shape(
            &response,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
    }
    let listed = crate::handle(
        &env.app,
        request(Method::GET, "/v1/destination-requests", Some(&token), ""),
    )
    .await;
    assert_eq!(json(&listed)["items"], serde_json::json!([]));
}

#[test]
fn routes_are_the_documented_ones() {
    let routes = platform::http::routes_of(crate::router());
    let expected: Vec<(String, String)> = [
        ("DELETE", "/v1/destination-requests/{id}"),
        ("GET", "/v1/destination-requests"),
        ("POST", "/v1/destination-requests"),
        ("POST", "/v1/destination-requests/{id}/veto"),
    ]
    .iter()
    .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
    .collect();
    assert_eq!(routes, expected);
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_is_the_same_request() {
    let env = TestEnv::start(TestOptions::default()).await;
    let erin = unique("erin");
    let token = env.token(&erin);
    let client = domain::ClientId::parse(&erin).unwrap();
    platform::onboarding::open_account(&env.app, &client, "open")
        .await
        .unwrap();
    let body = r#"{"network":"EthereumSepolia","address":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","label":"cold","action":"add"}"#;
    let keyed = |key: &str, body: &str| {
        let mut req = request(Method::POST, "/v1/destination-requests", Some(&token), body);
        req.headers_mut()
            .insert("idempotency-key", key.parse().unwrap());
        req
    };
    let first = crate::handle(&env.app, keyed("key-1", body)).await;
    assert_eq!(first.status(), StatusCode::CREATED, "{}", json(&first));
    // The same request again, keys in another order: the same answer, nothing new queued.
    let reordered = r#"{"action":"add","label":"cold","address":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","network":"EthereumSepolia"}"#;
    let again = crate::handle(&env.app, keyed("key-1", reordered)).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(json(&again)["id"], json(&first)["id"]);
    // Another body under the same key: refused.
    let other = body.replace("cold", "warm");
    let conflict = crate::handle(&env.app, keyed("key-1", &other)).await;
    assert_error_shape(&conflict, StatusCode::CONFLICT, "conflict");
    // A malformed key: refused.
    let bad = crate::handle(&env.app, keyed("a key with spaces", body)).await;
    assert_error_shape(&bad, StatusCode::BAD_REQUEST, "bad_request");

    let listed = crate::handle(
        &env.app,
        request(Method::GET, "/v1/destination-requests", Some(&token), ""),
    )
    .await;
    assert_eq!(json(&listed)["items"].as_array().unwrap().len(), 1);
    let trail = env
        .app
        .store()
        .list_audit_events(&client, None, 100)
        .await
        .unwrap();
    let id = json(&first)["id"].as_str().unwrap().to_owned();
    assert_eq!(
        trail
            .entries
            .iter()
            .filter(|e| e.body.contains(&id) && e.body.contains("destination_request.created"))
            .count(),
        1,
        "created once in the audit trail"
    );
}

fn stored_request(client: &domain::ClientId, i: usize) -> NewDestinationRequest {
    NewDestinationRequest {
        id: DestinationRequestId::new(),
        client_id: client.clone(),
        destination: NetworkAddress::parse(Network::EthereumSepolia, &format!("0x{i:040x}"))
            .unwrap(),
        label: "Exchange".into(),
        action: DestinationAction::Add,
        created_at: OffsetDateTime::now_utc(),
    }
}

#[tokio::test]
async fn over_the_quota_of_open_requests_a_create_is_a_429_with_retry_after() {
    let env = TestEnv::start(TestOptions::default()).await;
    let fred = unique("fred");
    let client = domain::ClientId::parse(&fred).unwrap();
    let token = env.token(&fred);
    platform::onboarding::open_account(&env.app, &client, "open")
        .await
        .unwrap();
    let max = env.app.settings().max_open_destination_requests as usize;
    for i in 0..max {
        env.app
            .store()
            .create_destination_request(&stored_request(&client, i + 1))
            .await
            .unwrap();
    }
    let body = r#"{"network":"EthereumSepolia","address":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","label":"x","action":"add"}"#;
    let mut req = request(Method::POST, "/v1/destination-requests", Some(&token), body);
    req.headers_mut()
        .insert("idempotency-key", "over-quota".parse().unwrap());
    let response = crate::handle(&env.app, req).await;
    assert_error_shape(
        &response,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_open_requests",
    );
    assert_eq!(response.headers()["retry-after"], "60");
    let listed = crate::handle(
        &env.app,
        request(Method::GET, "/v1/destination-requests", Some(&token), ""),
    )
    .await;
    assert_eq!(json(&listed)["items"].as_array().unwrap().len(), max);
}

#[tokio::test]
async fn over_the_rate_of_changes_a_mutation_is_a_429_with_retry_after() {
    let env = TestEnv::start(TestOptions::default()).await;
    let gina = unique("gina");
    let token = env.token(&gina);
    let per_minute = env.app.settings().client_mutations_per_minute.unwrap();
    // Not across a minute's end: start early in one.
    let second = OffsetDateTime::now_utc().second();
    if second > 40 {
        tokio::time::sleep(std::time::Duration::from_secs(u64::from(61 - second))).await;
    }
    let delete = || {
        let id = DestinationRequestId::new();
        request(
            Method::DELETE,
            &format!("/v1/destination-requests/{id}"),
            Some(&token),
            "",
        )
        .with_path_parameters(HashMap::from([("id".to_owned(), id.to_string())]))
    };
    for _ in 0..per_minute {
        let response = crate::handle(&env.app, delete()).await;
        assert_error_shape(&response, StatusCode::NOT_FOUND, "not_found");
    }
    let response = crate::handle(&env.app, delete()).await;
    assert_error_shape(&response, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let retry_after: u32 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // A create counts too; a malformed one is refused as such first.
    let body = r#"{"network":"EthereumSepolia","address":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","label":"x","action":"add"}"#;
    let response = crate::handle(
        &env.app,
        request(Method::POST, "/v1/destination-requests", Some(&token), body),
    )
    .await;
    assert_error_shape(&response, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    // And a veto.
    let id = DestinationRequestId::new();
    let veto = request(
        Method::POST,
        &format!("/v1/destination-requests/{id}/veto"),
        Some(&token),
        "",
    )
    .with_path_parameters(HashMap::from([("id".to_owned(), id.to_string())]));
    let response = crate::handle(&env.app, veto).await;
    assert_error_shape(&response, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let bad = body.replace("0x5a", "0xZZ");
    let response = crate::handle(
        &env.app,
        request(Method::POST, "/v1/destination-requests", Some(&token), &bad),
    )
    .await;
    assert_error_shape(&response, StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test]
async fn a_new_destination_cools_off_and_only_its_owner_can_veto_it_while_it_does() {
    let env = TestEnv::start(TestOptions {
        policies_modify: true,
        destination_cooling_off: std::time::Duration::from_secs(3600),
        ..TestOptions::default()
    })
    .await;
    let hana = unique("hana");
    let client = domain::ClientId::parse(&hana).unwrap();
    let ivan = unique("ivan");
    platform::onboarding::open_account(&env.app, &client, "open")
        .await
        .unwrap();
    let body = r#"{"network":"EthereumSepolia","address":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","label":"cold","action":"add"}"#;
    let created = crate::handle(
        &env.app,
        request(
            Method::POST,
            "/v1/destination-requests",
            Some(&env.token(&hana)),
            body,
        ),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created = json(&created);
    assert_eq!(created["state"], "CoolingOff", "{created}");
    let usable_from = created["usableFrom"].as_str().expect("usableFrom");
    let id = created["id"].as_str().unwrap().to_owned();
    let veto = |id: &str, subject: &str| {
        request(
            Method::POST,
            &format!("/v1/destination-requests/{id}/veto"),
            Some(&env.token(subject)),
            "",
        )
        .with_path_parameters(HashMap::from([("id".to_owned(), id.to_owned())]))
    };

    // Another client's id is not found, and changes nothing.
    let response = crate::handle(&env.app, veto(&id, &ivan)).await;
    assert_error_shape(&response, StatusCode::NOT_FOUND, "not_found");
    let listed = crate::handle(
        &env.app,
        request(
            Method::GET,
            "/v1/destination-requests",
            Some(&env.token(&hana)),
            "",
        ),
    )
    .await;
    let listed = json(&listed);
    assert_eq!(listed["items"][0]["state"], "CoolingOff");
    assert_eq!(listed["items"][0]["usableFrom"], usable_from);

    let response = crate::handle(&env.app, veto(&id, &hana)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let vetoed = json(&response);
    assert_eq!(vetoed["state"], "Vetoed", "{vetoed}");
    assert_eq!(vetoed["usableFrom"], usable_from);
    let again = crate::handle(&env.app, veto(&id, &hana)).await;
    assert_error_shape(&again, StatusCode::CONFLICT, "conflict");

    // A request no longer cooling off (queued: its wait ended) cannot be vetoed.
    let queued = env
        .app
        .store()
        .create_destination_request(&stored_request(&client, 7))
        .await
        .unwrap();
    let response = crate::handle(&env.app, veto(&queued.id.to_string(), &hana)).await;
    assert_error_shape(&response, StatusCode::CONFLICT, "conflict");
    // A malformed id names nobody's request.
    let response = crate::handle(&env.app, veto("nope", &hana)).await;
    assert_error_shape(&response, StatusCode::NOT_FOUND, "not_found");
}
