//! Issue 7's acceptance (discretionary trading), end to end through HTTP against the local stack,
//! the Dfns emulator (policies, approvals, transfers, webhooks) and the AWS stand-ins: a client
//! authorizes an exchange, an officer approves its deposit address, the trading desk places an
//! order, the scheduled run sends it; and orders that must not be sent are not, with a reason.
//! Run with `cargo xtask test`, or `cargo xtask exec -- cargo test -p e2e --test trading`.

use std::time::Duration;

use dfns_client::transfers::TransfersQuery;
use dfns_client::{DecisionValue, WalletId};
use e2e::{Env, EnvOptions, wait_until};
use futures::TryStreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The built-in registry's Coinbase deposit address on Ethereum Sepolia (ETH).
const COINBASE: &str = "0xc0ba5e0000000000000000000000000000000001";
const TWO_ETH: &str = "2000000000000000000";
const HALF_ETH: &str = "500000000000000000";
/// How long an asynchronous effect (webhook, approval) may take before a test gives up.
const WAIT: Duration = Duration::from_secs(30);

fn client_id(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// Opens `subject`'s account and deposits 2 ETH into its wallet; the wallet id.
async fn funded_client(env: &Env, subject: &str) -> String {
    let account = env.open_account(subject).await;
    let wallet_id = account["wallets"][0]["walletId"]
        .as_str()
        .unwrap_or_else(|| panic!("no wallet: {account}"))
        .to_owned();
    env.control(
        Method::POST,
        "deposits",
        &json!({"walletId": wallet_id, "kind": "Native", "amount": TWO_ETH}),
    )
    .await;
    wallet_id
}

/// `GET /emulator/stats` → `transfers` (distinct transfers ever created in this emulator).
async fn transfers_in_emulator(env: &Env) -> u64 {
    let stats: Value = env
        .http
        .get(format!("{}/emulator/stats", env.emulator.base_url()))
        .send()
        .await
        .expect("the emulator answers")
        .json()
        .await
        .expect("stats JSON");
    stats["transfers"]
        .as_u64()
        .unwrap_or_else(|| panic!("no transfers count: {stats}"))
}

/// `POST /v1/trading-authorizations {exchange}` as `subject`; the status and the authorization.
async fn authorize(env: &Env, subject: &str, exchange: &str) -> (StatusCode, Value) {
    env.post(
        "/v1/trading-authorizations",
        subject,
        &json!({"exchange": exchange}),
    )
    .await
}

/// `subject`'s authorization `id` as `GET /v1/trading-authorizations` shows it.
async fn authorization(env: &Env, subject: &str, id: &str) -> Option<Value> {
    let (status, body) = env.get("/v1/trading-authorizations", subject).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {body}"))
        .iter()
        .find(|a| a["id"] == id)
        .cloned()
}

/// The destination request behind the authorization's (single) deposit address, once it waits for
/// an officer.
async fn pending_add_request(env: &Env, subject: &str, authorization: &Value) -> Value {
    let destinations = authorization["destinations"]
        .as_array()
        .unwrap_or_else(|| panic!("no destinations: {authorization}"));
    assert_eq!(destinations.len(), 1, "{authorization}");
    assert_eq!(destinations[0]["address"], COINBASE, "{authorization}");
    let request_id = destinations[0]["addRequestId"]
        .as_str()
        .unwrap_or_else(|| panic!("no add request: {authorization}"))
        .to_owned();
    env.wait_for_state(subject, &request_id, &["PendingApproval"])
        .await
}

/// Authorizes Coinbase for `subject` and has officer 0 approve the address; the active
/// authorization.
async fn active_authorization(env: &Env, subject: &str) -> Value {
    let (status, created) = authorize(env, subject, "Coinbase").await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("authorization id").to_owned();
    let request = pending_add_request(env, subject, &created).await;
    env.decide(&request, DecisionValue::Approved).await;
    wait_until(WAIT, || async {
        authorization(env, subject, &id)
            .await
            .filter(|a| a["status"] == "Active")
    })
    .await
    .unwrap_or_else(|| panic!("authorization {id} never became Active"))
}

/// `POST /v1/operator/orders` as the desk: `amount` wei of ETH to Coinbase for `client`.
async fn place_order(env: &Env, client: &str, amount: &str) -> Value {
    let (status, order) = env
        .call(
            Method::POST,
            "/v1/operator/orders",
            Some(&env.operator_token("desk-1")),
            Some(&json!({"clientId": client, "exchange": "Coinbase", "asset": "ETH", "amount": amount})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["state"], "Scheduled", "{order}");
    order
}

/// `client`'s order `id` as `GET /v1/operator/orders?clientId=` shows it to the desk.
async fn order_of(env: &Env, client: &str, id: &str) -> Value {
    let (status, body) = env
        .call(
            Method::GET,
            &format!("/v1/operator/orders?clientId={client}"),
            Some(&env.operator_token("desk-1")),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {body}"))
        .iter()
        .find(|o| o["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("order {id} not listed for {client}: {body}"))
}

/// The emulator's transfers out of `wallet_id` whose `externalId` is `order_id`.
async fn transfers_for_order(env: &Env, wallet_id: &str, order_id: &str) -> Vec<Value> {
    let transfers: Vec<_> = env
        .service()
        .list_transfers(&WalletId::new(wallet_id), &TransfersQuery::default())
        .try_collect()
        .await
        .expect("list the wallet's transfers");
    transfers
        .into_iter()
        .filter(|t| t.external_id.as_ref().map(|e| e.as_str()) == Some(order_id))
        .map(|t| serde_json::to_value(t).expect("transfer JSON"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn authorized_exchange_order_is_sent_once_confirmed_and_shown_to_the_client() {
    let env = Env::start(EnvOptions::default()).await;
    let alice = client_id("alice");
    let wallet_id = funded_client(&env, &alice).await;

    // The client authorizes Coinbase: pending until compliance approves its deposit address.
    let (status, created) = authorize(&env, &alice, "Coinbase").await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "Pending", "{created}");
    assert_eq!(created["exchange"], "Coinbase");
    let authorization_id = created["id"].as_str().expect("id").to_owned();
    let request = pending_add_request(&env, &alice, &created).await;
    let (_, account) = env.get("/v1/account", &alice).await;
    assert!(
        account["approvedDestinations"]
            .as_array()
            .expect("approvedDestinations")
            .iter()
            .all(|d| d["address"] != COINBASE),
        "not an approved destination before the officer decides: {account}"
    );
    let listed = authorization(&env, &alice, &authorization_id)
        .await
        .expect("listed");
    assert_eq!(listed["status"], "Pending", "{listed}");

    // The officer approves with the officer's own key; the webhook activates the authorization.
    env.decide(&request, DecisionValue::Approved).await;
    let active = wait_until(WAIT, || async {
        authorization(&env, &alice, &authorization_id)
            .await
            .filter(|a| a["status"] == "Active")
    })
    .await
    .expect("the authorization becomes Active after the approval");
    assert_eq!(active["destinations"][0]["addRequestState"], "Approved");
    let (status, account) = env.get("/v1/account", &alice).await;
    assert_eq!(status, StatusCode::OK, "{account}");
    assert!(
        account["approvedDestinations"]
            .as_array()
            .expect("approvedDestinations")
            .iter()
            .any(|d| d["address"] == COINBASE),
        "the exchange's deposit address is an approved destination: {account}"
    );
    assert!(
        account["tradingAuthorizations"]
            .as_array()
            .expect("tradingAuthorizations")
            .iter()
            .any(|a| a["id"] == authorization_id.as_str() && a["status"] == "Active"),
        "the account lists the active authorization: {account}"
    );

    // Orders are the desk's: a client token is refused, and creates nothing.
    let order_body =
        json!({"clientId": alice, "exchange": "Coinbase", "asset": "ETH", "amount": HALF_ETH});
    let (status, body) = env
        .call(
            Method::POST,
            "/v1/operator/orders",
            Some(&env.token(&alice)),
            Some(&order_body),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
    let (status, body) = env
        .call(
            Method::GET,
            &format!("/v1/operator/orders?clientId={alice}"),
            Some(&env.token(&alice)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let order = place_order(&env, &alice, HALF_ETH).await;
    let order_id = order["id"].as_str().expect("order id").to_owned();
    assert_eq!(order["clientId"], alice.as_str());
    assert_eq!(order["amount"], HALF_ETH);
    assert_eq!(
        transfers_in_emulator(&env).await,
        0,
        "nothing sent before the run"
    );

    // The scheduled run sends it.
    let report = env
        .stack
        .run_job("order-execution")
        .await
        .expect("the run completes");
    assert_eq!(report["sent"], 1, "{report}");
    assert_eq!(report["notSent"], 0, "{report}");

    let confirmed = wait_until(WAIT, || async {
        let order = order_of(&env, &alice, &order_id).await;
        assert!(
            !["Failed", "Rejected", "Cancelled"].contains(&order["state"].as_str().unwrap_or("")),
            "the order must not end unsuccessfully: {order}"
        );
        (order["state"] == "Confirmed").then_some(order)
    })
    .await
    .unwrap_or_else(|| {
        panic!("order {order_id} never reached Confirmed through the transfer webhooks")
    });
    let transfer_id = confirmed["transferId"]
        .as_str()
        .unwrap_or_else(|| panic!("the order records its transfer: {confirmed}"))
        .to_owned();

    // Exactly one transfer, carrying the order id, to the exchange, for the amount.
    let sent = transfers_for_order(&env, &wallet_id, &order_id).await;
    assert_eq!(
        sent.len(),
        1,
        "one transfer with externalId = order id: {sent:?}"
    );
    assert_eq!(sent[0]["id"], transfer_id.as_str());
    assert_eq!(sent[0]["status"], "Confirmed", "{}", sent[0]);
    assert_eq!(
        sent[0]["requestBody"]["to"].as_str().map(str::to_lowercase),
        Some(COINBASE.to_owned()),
        "{}",
        sent[0]
    );
    assert_eq!(sent[0]["requestBody"]["amount"], HALF_ETH, "{}", sent[0]);
    assert_eq!(transfers_in_emulator(&env).await, 1);

    // The client sees it in its activity.
    let item = wait_until(WAIT, || async {
        let (status, page) = env.get("/v1/activity?limit=100", &alice).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|i| {
                    i["category"] == "transfer"
                        && i["reference"] == transfer_id.as_str()
                        && i["status"] == "Confirmed"
                })
                .cloned()
        })
    })
    .await
    .unwrap_or_else(|| panic!("transfer {transfer_id} not in the client's activity"));
    assert_eq!(item["direction"], "Out", "{item}");
    assert_eq!(item["amount"], HALF_ETH, "{item}");
    assert_eq!(
        item["to"].as_str().map(str::to_lowercase),
        Some(COINBASE.to_owned()),
        "{item}"
    );

    // A later run has nothing to do: never sent twice.
    let again = env
        .stack
        .run_job("order-execution")
        .await
        .expect("the second run completes");
    assert_eq!(again["claimed"], 0, "{again}");
    assert_eq!(transfers_in_emulator(&env).await, 1);
    assert_eq!(
        order_of(&env, &alice, &order_id).await["state"],
        "Confirmed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_without_a_live_approved_authorization_are_not_sent_and_say_why() {
    let env = Env::start(EnvOptions::default()).await;

    // Never authorized.
    let bob = client_id("bob");
    let bob_wallet = funded_client(&env, &bob).await;

    // Authorized, approved, then revoked: the address is still on the Dfns whitelist while its
    // removal waits for compliance, so only the platform's own check can stop the order.
    let carol = client_id("carol");
    let carol_wallet = funded_client(&env, &carol).await;
    let active = active_authorization(&env, &carol).await;
    let carol_authorization = active["id"].as_str().expect("id").to_owned();
    let (status, revoked) = env
        .call(
            Method::DELETE,
            &format!("/v1/trading-authorizations/{carol_authorization}"),
            Some(&env.token(&carol)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["status"], "Revoked", "{revoked}");
    assert!(
        revoked["destinations"][0]["removeRequestId"].is_string(),
        "removal of the address is requested: {revoked}"
    );
    let listed = authorization(&env, &carol, &carol_authorization)
        .await
        .expect("still listed");
    assert_eq!(listed["status"], "Revoked", "{listed}");

    // Authorized, but compliance has not decided yet.
    let dave = client_id("dave");
    let dave_wallet = funded_client(&env, &dave).await;
    let (status, pending) = authorize(&env, &dave, "Coinbase").await;
    assert_eq!(status, StatusCode::CREATED, "{pending}");
    pending_add_request(&env, &dave, &pending).await;

    let orders = [
        (&bob, &bob_wallet, "no_authorization"),
        (&carol, &carol_wallet, "authorization_revoked"),
        (&dave, &dave_wallet, "destination_not_approved"),
    ];
    let mut placed = Vec::new();
    for (client, wallet, code) in orders {
        let order = place_order(&env, client, HALF_ETH).await;
        placed.push((
            client,
            wallet,
            code,
            order["id"].as_str().expect("id").to_owned(),
        ));
    }

    let report = env
        .stack
        .run_job("order-execution")
        .await
        .expect("the run completes");
    assert_eq!(report["sent"], 0, "{report}");
    assert_eq!(report["notSent"], 3, "{report}");

    for (client, wallet, code, order_id) in &placed {
        let order = order_of(&env, client, order_id).await;
        assert_eq!(order["state"], "Failed", "{client}: {order}");
        let reason = order["reason"]
            .as_str()
            .unwrap_or_else(|| panic!("{client}: the order says why: {order}"));
        assert!(
            reason.starts_with(&format!("{code}: ")),
            "{client}: expected a `{code}` reason, got `{reason}`"
        );
        assert!(
            order["transferId"].is_null(),
            "{client}: no transfer: {order}"
        );
        assert!(
            transfers_for_order(&env, wallet, order_id).await.is_empty(),
            "{client}: nothing sent for {order_id}"
        );
    }
    assert_eq!(
        transfers_in_emulator(&env).await,
        0,
        "no transfer in the emulator at all"
    );

    // A later run does not pick them up again.
    let again = env
        .stack
        .run_job("order-execution")
        .await
        .expect("the second run completes");
    assert_eq!(again["claimed"], 0, "{again}");
    assert_eq!(transfers_in_emulator(&env).await, 0);
}
