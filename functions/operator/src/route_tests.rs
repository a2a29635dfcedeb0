//! The trading desk's and the client's trading routes through their handlers, against DynamoDB
//! Local and the in-process Dfns emulator (`cargo xtask exec -- cargo test -p operator`).

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use platform::settings::Tier;
use platform::testing::{TestEnv, TestOptions};
use serde_json::{Value, json};

struct Call<'a> {
    env: &'a TestEnv,
}

impl Call<'_> {
    fn request(
        &self,
        method: &str,
        path_and_query: &str,
        token: &str,
        body: Option<Value>,
    ) -> Request {
        let query = path_and_query.split_once('?').map(|(_, q)| q).unwrap_or("");
        let builder = lambda_http::http::Request::builder()
            .method(method)
            .uri(format!("https://api.example{path_and_query}"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("idempotency-key", ulid::Ulid::new().to_string());
        let body = match body {
            Some(json) => Body::Text(json.to_string()),
            None => Body::Empty,
        };
        let mut request: Request = builder.body(body).unwrap();
        let params: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
        if !params.is_empty() {
            request = request.with_query_string_parameters(params);
        }
        request
    }

    async fn operator(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        read(crate::handle(&self.env.app, self.request(method, path, token, body)).await)
    }

    async fn trading(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        read(
            platform::http::call(
                trading::router(),
                &self.env.app,
                self.request(method, path, token, body),
            )
            .await,
        )
    }
}

fn read(response: Response<Body>) -> (StatusCode, Value) {
    let status = response.status();
    let body = serde_json::from_slice(response.body().as_ref()).unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test]
async fn the_desk_orders_previews_and_sees_clients_and_clients_authorize_and_revoke() {
    let env = TestEnv::start(TestOptions {
        tier: Tier {
            amount_limit_usd: Some(1000),
            ..Tier::default()
        },
        ..TestOptions::default()
    })
    .await;
    let call = Call { env: &env };
    let alice = domain::ClientId::parse(&format!("alice-{}", ulid::Ulid::new())).unwrap();
    platform::onboarding::open_account(&env.app, &alice, "open")
        .await
        .unwrap();
    let wallet = env.app.store().list_wallets(&alice).await.unwrap()[0].clone();
    env.control(reqwest::Method::POST, "deposits", json!({"walletId": wallet.wallet_id.as_str(), "kind": "Native", "amount": "10000000000000000000"})).await;
    env.control(
        reqwest::Method::PUT,
        "prices",
        json!({"prices": {"ETH": "3000.00"}}),
    )
    .await;
    let alice_token = env.token(alice.as_str());
    let bob_token = env.token("bob");
    let desk = env.operator_token("desk-1");

    // A client's token cannot use the desk's routes.
    let order_body = json!({"clientId": alice.as_str(), "exchange": "Kraken", "asset": "ETH", "amount": "100000000000000000", "executeAt": "2099-01-01T00:00:00Z"});
    let (status, body) = call
        .operator(
            "POST",
            "/v1/operator/orders",
            &alice_token,
            Some(order_body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    // And the desk cannot authorize on a client's behalf.
    let (status, _) = call
        .trading(
            "POST",
            "/v1/trading-authorizations",
            &desk,
            Some(json!({"exchange": "Kraken"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Authorize: the address is whitelisted at once here (no Policies:Modify policy).
    let (status, body) = call
        .trading(
            "POST",
            "/v1/trading-authorizations",
            &alice_token,
            Some(json!({"exchange": "Kraken"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "Active");
    let authorization_id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        body["destinations"][0]["address"],
        "0x4b4a000000000000000000000000000000000003"
    );
    let (status, again) = call
        .trading(
            "POST",
            "/v1/trading-authorizations",
            &alice_token,
            Some(json!({"exchange": "Kraken"})),
        )
        .await;
    assert_eq!(
        (status, again["id"].as_str()),
        (StatusCode::OK, Some(authorization_id.as_str()))
    );
    let (status, _) = call
        .trading(
            "POST",
            "/v1/trading-authorizations",
            &alice_token,
            Some(json!({"exchange": "NoSuchVenue"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Preview: 0.3 ETH = 900 USD passes the 1000 USD limit with 100 left; 0.4 ETH does not.
    let preview = json!({"clientId": alice.as_str(), "exchange": "Kraken", "asset": "ETH", "amount": "300000000000000000"});
    let (status, body) = call
        .operator("POST", "/v1/operator/orders/preview", &desk, Some(preview))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["verdict"], "Allowed", "{body}");
    assert_eq!(body["valueUsd"], "900");
    assert_eq!(body["authorization"], "Active");
    let limit = body["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "TransactionAmountLimit")
        .expect("the tier's limit applies")
        .clone();
    assert_eq!(
        (
            limit["headroomAfter"].as_str(),
            limit["triggered"].as_bool()
        ),
        (Some("100"), Some(false))
    );
    let whitelist = body["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "TransactionRecipientWhitelist")
        .expect("the whitelist applies")
        .clone();
    assert_eq!(whitelist["triggered"], false);
    let over = json!({"clientId": alice.as_str(), "exchange": "Kraken", "asset": "ETH", "amount": "400000000000000000"});
    let (_, body) = call
        .operator("POST", "/v1/operator/orders/preview", &desk, Some(over))
        .await;
    assert_eq!(body["verdict"], "Blocked", "{body}");
    assert_eq!(body["stoppedBy"], json!([limit["policyId"]]));
    // Not whitelisted: Gemini was never authorized.
    let gemini =
        json!({"clientId": alice.as_str(), "exchange": "Gemini", "asset": "ETH", "amount": "1"});
    let (_, body) = call
        .operator("POST", "/v1/operator/orders/preview", &desk, Some(gemini))
        .await;
    assert_eq!(body["verdict"], "Blocked", "{body}");
    assert!(body["authorization"].is_null());

    // Orders: create, list, cancel (once), unknown ones.
    let (status, order) = call
        .operator("POST", "/v1/operator/orders", &desk, Some(order_body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(
        (order["state"].as_str(), order["createdBy"].as_str()),
        (Some("Scheduled"), Some("desk-1"))
    );
    let order_id = order["id"].as_str().unwrap().to_owned();
    let (status, list) = call
        .operator(
            "GET",
            &format!(
                "/v1/operator/orders?clientId={}&status=Scheduled",
                alice.as_str()
            ),
            &desk,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (_, none) = call
        .operator(
            "GET",
            &format!(
                "/v1/operator/orders?clientId={}&status=Confirmed",
                alice.as_str()
            ),
            &desk,
            None,
        )
        .await;
    assert!(none["items"].as_array().unwrap().is_empty());
    let (status, _) = call
        .operator("GET", "/v1/operator/orders?status=Nope", &desk, None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, cancelled) = call
        .operator(
            "POST",
            &format!("/v1/operator/orders/{order_id}/cancel"),
            &desk,
            None,
        )
        .await;
    assert_eq!(
        (status, cancelled["state"].as_str()),
        (StatusCode::OK, Some("Cancelled"))
    );
    let (status, _) = call
        .operator(
            "POST",
            &format!("/v1/operator/orders/{order_id}/cancel"),
            &desk,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = call
        .operator(
            "POST",
            &format!("/v1/operator/orders/{}/cancel", ulid::Ulid::new()),
            &desk,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let stranger =
        json!({"clientId": "nobody-here", "exchange": "Kraken", "asset": "ETH", "amount": "1"});
    let (status, _) = call
        .operator("POST", "/v1/operator/orders", &desk, Some(stranger))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call.operator("POST", "/v1/operator/orders", &desk, Some(json!({"clientId": alice.as_str(), "exchange": "Kraken", "asset": "ETH", "amount": "1.5"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The desk's view of the client.
    let (status, view) = call
        .operator(
            "GET",
            &format!("/v1/operator/clients/{}", alice.as_str()),
            &desk,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["tradingAuthorizations"][0]["status"], "Active");
    assert_eq!(view["orders"].as_array().unwrap().len(), 1);
    assert!(view["wallets"].as_array().is_some_and(|w| !w.is_empty()));

    // Revocation: not by another client; at once by the owner; removal requested.
    let path = format!("/v1/trading-authorizations/{authorization_id}");
    let (status, _) = call.trading("DELETE", &path, &bob_token, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, revoked) = call.trading("DELETE", &path, &alice_token, None).await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["status"], "Revoked");
    assert!(revoked["destinations"][0]["removeRequestId"].is_string());
    let (_, list) = call
        .trading("GET", "/v1/trading-authorizations", &alice_token, None)
        .await;
    assert_eq!(list["items"][0]["status"], "Revoked");
    // Removal applied at once here: the address is no longer whitelisted, so a preview blocks.
    let preview =
        json!({"clientId": alice.as_str(), "exchange": "Kraken", "asset": "ETH", "amount": "1"});
    let (_, body) = call
        .operator("POST", "/v1/operator/orders/preview", &desk, Some(preview))
        .await;
    assert_eq!(body["verdict"], "Blocked", "{body}");
}

/// `body`'s JSON followed by spaces, `len` bytes in all: the same JSON, only longer.
fn padded(body: &Value, len: usize) -> Vec<u8> {
    let mut text = body.to_string().into_bytes();
    assert!(text.len() <= len);
    text.resize(len, b' ');
    text
}

/// `[[…]]`, `depth` arrays deep.
fn nested(depth: usize) -> Vec<u8> {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()
}

/// A request with a raw body (no `Content-Length`: the limit holds on what is read).
fn raw(call: &Call<'_>, method: &str, path: &str, token: &str, body: Vec<u8>) -> Request {
    let (parts, _) = call.request(method, path, token, None).into_parts();
    Request::from_parts(parts, Body::Binary(body))
}

#[tokio::test]
async fn bodies_over_64_kib_are_413_and_too_deep_ones_400_and_neither_stores_anything() {
    let env = TestEnv::start(TestOptions::default()).await;
    let call = Call { env: &env };
    let alice = domain::ClientId::parse(&format!("alice-{}", ulid::Ulid::new())).unwrap();
    platform::onboarding::open_account(&env.app, &alice, "open")
        .await
        .unwrap();
    let alice_token = env.token(alice.as_str());
    let desk = env.operator_token("desk-1");
    let order = json!({"clientId": alice.as_str(), "exchange": "Kraken", "asset": "ETH", "amount": "1", "executeAt": "2099-01-01T00:00:00Z"});
    let preview =
        json!({"clientId": alice.as_str(), "exchange": "Kraken", "asset": "ETH", "amount": "1"});
    let authorize = json!({"exchange": "Kraken"});
    let limit = platform::http::MAX_BODY_BYTES;
    type Route = fn() -> platform::http::FunctionRouter;
    let cases: [(Route, &str, &str, &Value); 3] = [
        (crate::router, "/v1/operator/orders", &desk, &order),
        (
            crate::router,
            "/v1/operator/orders/preview",
            &desk,
            &preview,
        ),
        (
            trading::router,
            "/v1/trading-authorizations",
            &alice_token,
            &authorize,
        ),
    ];
    for (router, path, token, body) in cases {
        let send = |body: Vec<u8>| {
            let request = raw(&call, "POST", path, token, body);
            async { read(platform::http::call(router(), &env.app, request).await) }
        };
        let (status, error) = send(padded(body, limit + 1)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}: {error}");
        assert_eq!(error["error"]["code"], "payload_too_large", "{path}");
        assert_eq!(
            error["error"]["message"], "the body is larger than 64 KiB",
            "{path}"
        );
        for depth in [33, 65] {
            let (status, error) = send(nested(depth)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {depth}");
            assert_eq!(
                error["error"]["message"], "invalid JSON body: nested deeper than 32 levels",
                "{path} {depth}"
            );
        }
    }
    // Nothing was stored.
    let (status, orders) = call
        .operator(
            "GET",
            &format!("/v1/operator/orders?clientId={}", alice.as_str()),
            &desk,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(orders["items"], json!([]));
    let (_, authorizations) = call
        .trading("GET", "/v1/trading-authorizations", &alice_token, None)
        .await;
    assert_eq!(authorizations["items"], json!([]));

    // Bodies up to the limit are served as before.
    let request = raw(
        &call,
        "POST",
        "/v1/trading-authorizations",
        &alice_token,
        padded(&authorize, limit),
    );
    let (status, body) = read(platform::http::call(trading::router(), &env.app, request).await);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let request = raw(
        &call,
        "POST",
        "/v1/operator/orders",
        &desk,
        padded(&order, limit),
    );
    let (status, body) = read(crate::handle(&env.app, request).await);
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// `GET /v1/operator/orders` pages nothing: a cursor (well-formed or not) is an unknown parameter,
/// refused rather than ignored.
#[tokio::test]
async fn a_cursor_on_the_desks_order_list_is_400() {
    let env = TestEnv::start(TestOptions::default()).await;
    let call = Call { env: &env };
    let desk = env.operator_token("desk-1");
    for query in [
        format!("cursor={}", ulid::Ulid::new()),
        format!("cursor={}", ulid::Ulid::new().to_string().to_lowercase()),
        "cursor=abc".to_owned(),
        "cursor=".to_owned(),
        "clientId=alice&cursor=1".to_owned(),
    ] {
        let (status, error) = call
            .operator("GET", &format!("/v1/operator/orders?{query}"), &desk, None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {error}");
        assert_eq!(error["error"]["code"], "bad_request", "{query}");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("cursor"),
            "{query}: {error}"
        );
    }
    let (status, _) = call
        .operator("GET", "/v1/operator/orders", &desk, None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// `POST /v1/operator/orders` with `key` as its `Idempotency-Key` (or none).
async fn post_order(
    env: &TestEnv,
    desk: &str,
    key: Option<&str>,
    body: &Value,
) -> (StatusCode, Value) {
    let mut builder = lambda_http::http::Request::builder()
        .method("POST")
        .uri("https://api.example/v1/operator/orders")
        .header("authorization", format!("Bearer {desk}"))
        .header("content-type", "application/json");
    if let Some(key) = key {
        builder = builder.header("idempotency-key", key);
    }
    let request = builder.body(Body::Text(body.to_string())).unwrap();
    read(platform::http::call(crate::router(), &env.app, request).await)
}

#[tokio::test]
async fn an_order_retried_after_a_failed_audit_write_is_one_order_audited_once() {
    let env = TestEnv::start(TestOptions::default()).await;
    let alice = domain::ClientId::parse(&format!("alice-{}", ulid::Ulid::new())).unwrap();
    platform::onboarding::open_account(&env.app, &alice, "open")
        .await
        .unwrap();
    let desk = env.operator_token("desk-1");
    let body = json!({"clientId": alice.as_str(), "exchange": "Kraken", "asset": "ETH", "amount": "1000", "executeAt": "2099-01-01T00:00:00Z"});

    // No key: refused, nothing stored.
    let (status, refused) = post_order(&env, &desk, None, &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");

    // The audit append fails after the order is stored: a chain head the store cannot read.
    let store = env.app.store();
    let head_key = std::collections::HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("CLIENT#{alice}")),
        ),
        ("sk".to_owned(), AttributeValue::S("AUDIT#HEAD".into())),
    ]);
    let real_head = store
        .client()
        .get_item()
        .table_name(store.table_name())
        .set_key(Some(head_key.clone()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("the account's opening is audited");
    let mut broken = head_key.clone();
    broken.insert("seq".into(), AttributeValue::S("not a number".into()));
    let put = |item: std::collections::HashMap<String, AttributeValue>| {
        store
            .client()
            .put_item()
            .table_name(store.table_name())
            .set_item(Some(item))
            .send()
    };
    put(broken).await.unwrap();
    let key = ulid::Ulid::new().to_string();
    let (status, failed) = post_order(&env, &desk, Some(&key), &body).await;
    assert!(status.is_server_error(), "{status} {failed}");
    put(real_head).await.unwrap();
    assert_eq!(
        store.list_orders_for_client(&alice).await.unwrap().len(),
        1,
        "the order was stored before the audit append failed"
    );

    // The desk retries with the same key: the same order, now audited once.
    let (status, first) = post_order(&env, &desk, Some(&key), &body).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = post_order(&env, &desk, Some(&key), &body).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(first["id"], again["id"]);
    let orders = store.list_orders_for_client(&alice).await.unwrap();
    assert_eq!(orders.len(), 1, "one order: {orders:?}");
    let trail = store.list_audit_events(&alice, None, 100).await.unwrap();
    let created: Vec<_> = trail
        .entries
        .iter()
        .filter(|e| e.body.contains(first["id"].as_str().unwrap()))
        .collect();
    assert_eq!(
        created.len(),
        1,
        "the order's creation audited once: {created:?}"
    );

    // The same key with another body is a conflict, and creates nothing.
    let mut other = body.clone();
    other["amount"] = json!("2000");
    let (status, conflict) = post_order(&env, &desk, Some(&key), &other).await;
    assert_eq!(status, StatusCode::CONFLICT, "{conflict}");
    assert_eq!(store.list_orders_for_client(&alice).await.unwrap().len(), 1);

    // Another operator's identical key is another request.
    let (status, theirs) = post_order(&env, &env.operator_token("desk-2"), Some(&key), &body).await;
    assert_eq!(status, StatusCode::CREATED, "{theirs}");
    assert_ne!(theirs["id"], first["id"]);
}
