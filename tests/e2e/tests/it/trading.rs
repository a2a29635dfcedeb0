//! Issue 7's acceptance (discretionary trading), end to end through HTTP against the local stack,
//! the Dfns emulator (policies, approvals, transfers, webhooks) and the AWS stand-ins: a client
//! authorizes an exchange, an officer approves its deposit address, the trading desk places an
//! order, the scheduled run sends it; and orders that must not be sent are not, with a reason.
//! Run with `cargo xtask test`, or `cargo xtask exec -- cargo test -p e2e --test it trading::`.

use std::time::Duration;

use dfns_client::transfers::{TransferAsset, TransfersQuery};
use dfns_client::{Amount, ApprovalId, DecisionValue, ExternalId, WalletId};
use e2e::{Env, EnvOptions, client_id, wait_until};
use futures::TryStreamExt;
use platform::settings::{PolicyActionSetting, Tier};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The built-in registry's Coinbase deposit address on Ethereum Sepolia (ETH).
const COINBASE: &str = "0xc0ba5e0000000000000000000000000000000001";
const HALF_ETH: &str = "500000000000000000";
/// How long an asynchronous effect (webhook, approval) may take before a test gives up.
const WAIT: Duration = Duration::from_secs(30);

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
    let key = ulid::Ulid::new().to_string();
    let (status, order) = env
        .call_with_headers(
            Method::POST,
            "/v1/operator/orders",
            Some(&env.operator_token("desk-1")),
            Some(&json!({"clientId": client, "exchange": "Coinbase", "asset": "ETH", "amount": amount})),
            &[("idempotency-key", &key)],
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn authorized_exchange_order_is_sent_once_confirmed_and_shown_to_the_client() {
    let env = Env::start(EnvOptions::default()).await;
    let alice = client_id("alice");
    let wallet_id = env.funded_client(&alice).await;

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
        env.transfers_in_emulator().await,
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
    let sent = env.transfers_for(&wallet_id, &order_id).await;
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
    assert_eq!(env.transfers_in_emulator().await, 1);

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
    assert_eq!(env.transfers_in_emulator().await, 1);
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
    let bob_wallet = env.funded_client(&bob).await;

    // Authorized, approved, then revoked: the address is still on the Dfns whitelist while its
    // removal waits for compliance, so only the platform's own check can stop the order.
    let carol = client_id("carol");
    let carol_wallet = env.funded_client(&carol).await;
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
    let dave_wallet = env.funded_client(&dave).await;
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
            env.transfers_for(wallet, order_id).await.is_empty(),
            "{client}: nothing sent for {order_id}"
        );
    }
    assert_eq!(
        env.transfers_in_emulator().await,
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
    assert_eq!(env.transfers_in_emulator().await, 0);
}

/// `POST /v1/operator/orders` as the desk for each `(client, amount)`; the order ids, in order.
async fn place_orders(env: &Env, orders: &[(&str, &str)]) -> Vec<String> {
    let mut ids = Vec::new();
    for (client, amount) in orders {
        let order = place_order(env, client, amount).await;
        ids.push(order["id"].as_str().expect("order id").to_owned());
    }
    ids
}

/// Waits until `client`'s order `id` is in `state`, failing at once if it ends in another final
/// state; the order.
async fn wait_for_order(env: &Env, client: &str, id: &str, state: &str) -> Value {
    const FINAL: [&str; 4] = ["Confirmed", "Failed", "Rejected", "Cancelled"];
    wait_until(WAIT, || async {
        let order = order_of(env, client, id).await;
        let current = order["state"].as_str().unwrap_or("");
        assert!(
            current == state || !FINAL.contains(&current),
            "order {id} ended {current}, expected {state}: {order}"
        );
        (current == state).then_some(order)
    })
    .await
    .unwrap_or_else(|| panic!("order {id} never reached {state}"))
}

/// The `externalId` of every transfer out of `wallet_id` in the emulator (one entry per transfer).
async fn external_ids(env: &Env, wallet_id: &str) -> Vec<String> {
    let transfers: Vec<_> = env
        .service()
        .list_transfers(&WalletId::new(wallet_id), &TransfersQuery::default())
        .try_collect()
        .await
        .expect("list the wallet's transfers");
    transfers
        .into_iter()
        .map(|t| {
            t.external_id
                .map(|e| e.as_str().to_owned())
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_over_the_per_transfer_limit_waits_for_an_officer_then_confirms_or_is_rejected() {
    let env = Env::start(EnvOptions {
        // The limit asks compliance rather than blocking outright.
        whitelist_action: PolicyActionSetting::RequestApproval,
        tier: Tier {
            amount_limit_usd: Some(1000),
            ..Tier::default()
        },
        ..EnvOptions::default()
    })
    .await;
    env.control(
        Method::PUT,
        "prices",
        &json!({"prices": {"ETH": "3000.00"}}),
    )
    .await;
    let erin = client_id("erin");
    let wallet_id = env.funded_client(&erin).await;
    active_authorization(&env, &erin).await;

    // 0.5 ETH = 1500 USD, over the 1000 USD per-transfer limit.
    let ids = place_orders(&env, &[(&erin, HALF_ETH), (&erin, HALF_ETH)]).await;
    let report = env
        .stack
        .run_job("order-execution")
        .await
        .expect("the run completes");
    assert_eq!(
        report["sent"], 2,
        "Dfns accepted both, for approval: {report}"
    );

    let mut approvals = Vec::new();
    for id in &ids {
        let held = wait_for_order(&env, &erin, id, "PendingApproval").await;
        let approval = held["approvalId"]
            .as_str()
            .unwrap_or_else(|| panic!("the order shows the approval it waits for: {held}"))
            .to_owned();
        approvals.push(approval);
    }
    assert_ne!(approvals[0], approvals[1], "one approval per transfer");
    let officer = env.officer(0);
    officer
        .decide_approval(
            &ApprovalId::new(approvals[0].clone()),
            DecisionValue::Approved,
            Some("desk confirmed the trade"),
        )
        .await
        .expect("the officer approves");
    officer
        .decide_approval(
            &ApprovalId::new(approvals[1].clone()),
            DecisionValue::Denied,
            Some("too large"),
        )
        .await
        .expect("the officer denies");

    let confirmed = wait_for_order(&env, &erin, &ids[0], "Confirmed").await;
    assert!(confirmed["transferId"].is_string(), "{confirmed}");
    let rejected = wait_for_order(&env, &erin, &ids[1], "Rejected").await;
    assert!(
        rejected["reason"].is_string(),
        "a rejected order says why: {rejected}"
    );
    for id in &ids {
        assert_eq!(
            env.transfers_for(&wallet_id, id).await.len(),
            1,
            "one transfer for {id}"
        );
    }
    let sent = env.transfers_for(&wallet_id, &ids[0]).await;
    assert_eq!(sent[0]["status"], "Confirmed", "{}", sent[0]);
    let denied = env.transfers_for(&wallet_id, &ids[1]).await;
    assert_eq!(denied[0]["status"], "Rejected", "{}", denied[0]);
    assert_eq!(env.transfers_in_emulator().await, 2);

    // Each officer decision on a desk order is in the client's audit chain, once: who, what, why.
    let officer_id = env.emulator.bootstrap().officers[0].user_id.clone();
    let decisions = wait_until(Duration::from_secs(30), || async {
        let (_, trail) = env.get("/v1/audit?limit=200", &erin).await;
        let lines: Vec<Value> = trail["entries"]
            .as_array()?
            .iter()
            .filter(|e| {
                e["event"]["action"] == "compliance.decision"
                    && e["event"]["details"]["subject"] == "order"
            })
            .map(|e| e["event"].clone())
            .collect();
        (lines.len() >= 2).then_some(lines)
    })
    .await
    .expect("both decisions in the client's audit chain");
    assert_eq!(decisions.len(), 2, "one line per decision: {decisions:?}");
    for (id, approval, decision, reason) in [
        (
            &ids[0],
            &approvals[0],
            "Approved",
            "desk confirmed the trade",
        ),
        (&ids[1], &approvals[1], "Denied", "too large"),
    ] {
        let line = decisions
            .iter()
            .find(|l| l["details"]["subjectId"] == id.as_str())
            .unwrap_or_else(|| panic!("no decision line for {id}: {decisions:?}"));
        assert_eq!(
            line["actor"],
            json!({"type": "compliance", "id": officer_id})
        );
        let details = &line["details"];
        assert_eq!(details["approvalId"], approval.as_str());
        assert_eq!(details["decision"], decision);
        assert_eq!(details["reason"], reason);
        assert_eq!(details["officer"], officer_id.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_that_died_after_dfns_accepted_is_finished_by_the_next_run_with_one_transfer() {
    let env = Env::start(EnvOptions::default()).await;
    let frank = client_id("frank");
    let wallet_id = env.funded_client(&frank).await;
    active_authorization(&env, &frank).await;
    let order = place_order(&env, &frank, HALF_ETH).await;
    let order_id = order["id"].as_str().expect("order id").to_owned();

    // The dead run: it claimed the order (its lease is over by now), Dfns accepted the transfer
    // with externalId = order id, and the run died before recording it.
    let store = store::Store::new(env.dynamodb.clone(), env.table.clone());
    let id = serde_json::from_value(json!(order_id)).expect("an order id");
    store
        .claim_order(&id, time::OffsetDateTime::now_utc(), time::Duration::ZERO)
        .await
        .expect("the dead run claimed the order");
    let accepted = env
        .service()
        .transfer(
            &WalletId::new(&wallet_id),
            ExternalId::new(order_id.clone()),
            TransferAsset::Native {
                to: COINBASE.to_owned(),
                amount: Amount::from(HALF_ETH.parse::<u128>().expect("an amount")),
                memo: None,
                priority: None,
            },
        )
        .await
        .expect("Dfns accepts the transfer")
        .into_transfer();
    assert_eq!(env.transfers_in_emulator().await, 1);
    let orphan = order_of(&env, &frank, &order_id).await;
    assert!(
        orphan["transferId"].is_null() || orphan["transferId"] == accepted.id.as_str(),
        "{orphan}"
    );

    let report = env
        .stack
        .run_job("order-execution")
        .await
        .expect("the run completes");
    // The run re-submits with the same externalId and records the transfer Dfns already had
    // (unless the transfer's own webhook got there first and left nothing to claim).
    for field in ["notSent", "retryLater", "errors"] {
        assert_eq!(report[field], 0, "{report}");
    }
    // Either the run re-submitted it (claimed and sent once), or the transfer's own webhook
    // finished the order before the run could claim it; either way nothing is sent anew (below).
    assert_eq!(report["sent"], report["claimed"], "{report}");
    assert!(
        report["claimed"] == 0 || report["claimed"] == 1,
        "the run finishes the orphaned order at most once: {report}; order before the run: {orphan}"
    );

    let finished = wait_for_order(&env, &frank, &order_id, "Confirmed").await;
    assert_eq!(
        finished["transferId"],
        accepted.id.as_str(),
        "the order records the transfer Dfns had accepted: {finished}"
    );
    let sent = env.transfers_for(&wallet_id, &order_id).await;
    assert_eq!(
        sent.len(),
        1,
        "exactly one transfer for the order: {sent:?}"
    );
    assert_eq!(env.transfers_in_emulator().await, 1, "exactly one transfer");

    let again = env
        .stack
        .run_job("order-execution")
        .await
        .expect("the next run completes");
    assert_eq!(again["claimed"], 0, "{again}");
    assert_eq!(env.transfers_in_emulator().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_overlapping_runs_send_each_order_exactly_once() {
    let env = Env::start(EnvOptions::default()).await;
    let grace = client_id("grace");
    let wallet_id = env.funded_client(&grace).await;
    active_authorization(&env, &grace).await;
    let amounts: Vec<String> = (0..10u128)
        .map(|i| (10_000_000_000_000_000 + i).to_string())
        .collect();
    let orders: Vec<(&str, &str)> = amounts
        .iter()
        .map(|a| (grace.as_str(), a.as_str()))
        .collect();
    let ids = place_orders(&env, &orders).await;

    let (first, second) = tokio::join!(
        env.stack.run_job("order-execution"),
        env.stack.run_job("order-execution")
    );
    let (first, second) = (
        first.expect("the first run completes"),
        second.expect("the second run completes"),
    );
    let sent = first["sent"].as_u64().unwrap_or(0) + second["sent"].as_u64().unwrap_or(0);
    assert_eq!(sent, 10, "each order sent by one run: {first} {second}");

    for id in &ids {
        wait_for_order(&env, &grace, id, "Confirmed").await;
    }
    let mut sent_for = external_ids(&env, &wallet_id).await;
    sent_for.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(sent_for, expected, "one transfer per order, none twice");
    assert_eq!(env.transfers_in_emulator().await, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_half_of_dfns_calls_throttled_200_due_orders_all_end_confirmed_none_twice() {
    const ORDERS: usize = 200;
    let env = Env::start(EnvOptions::default()).await;
    let mut clients = Vec::new();
    for name in ["heidi", "ivan", "judy", "kim"] {
        let client = client_id(name);
        let wallet_id = env.funded_client(&client).await;
        active_authorization(&env, &client).await;
        clients.push((client, wallet_id));
    }
    let small = "1000000000000000"; // 0.001 ETH
    let orders: Vec<(&str, &str)> = (0..ORDERS)
        .map(|i| (clients[i % clients.len()].0.as_str(), small))
        .collect();
    let ids = place_orders(&env, &orders).await;

    env.control(
        Method::POST,
        "faults",
        &json!({"pathPattern": "/**", "status": 429, "rate": 0.5, "retryAfterSeconds": 1, "seed": 7}),
    )
    .await;
    // The schedule ticks until nothing is left to send, within the time a user would wait: one
    // throttled run over 200 orders alone takes about 100 s here, and what Dfns throttled goes
    // to the next run.
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let mut reports = Vec::new();
    let unsent = loop {
        let report = env
            .stack
            .run_job("order-execution")
            .await
            .expect("the run completes");
        assert_eq!(
            report["notSent"], 0,
            "throttling never fails an order: {report}"
        );
        reports.push(report);
        let mut unsent = Vec::new();
        for (client, _) in &clients {
            let (status, body) = env
                .call(
                    Method::GET,
                    &format!("/v1/operator/orders?clientId={client}"),
                    Some(&env.operator_token("desk-1")),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            unsent.extend(
                body["items"]
                    .as_array()
                    .unwrap_or_else(|| panic!("no items: {body}"))
                    .iter()
                    .filter(|o| o["state"] == "Scheduled" || o["state"] == "Claimed")
                    .cloned(),
            );
        }
        if unsent.is_empty() || std::time::Instant::now() >= deadline {
            break unsent;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    env.control(Method::DELETE, "faults", &json!({})).await;
    assert!(
        unsent.is_empty(),
        "{} of {ORDERS} orders still unsent after {} scheduled runs over 300 s; run reports: {}; first unsent: {}",
        unsent.len(),
        reports.len(),
        Value::from(reports.clone()),
        unsent[0]
    );

    for (i, id) in ids.iter().enumerate() {
        wait_for_order(&env, &clients[i % clients.len()].0, id, "Confirmed").await;
    }
    let mut sent_for = Vec::new();
    for (_, wallet_id) in &clients {
        sent_for.extend(external_ids(&env, wallet_id).await);
    }
    sent_for.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(sent_for.len(), ORDERS, "one transfer per order");
    assert_eq!(sent_for, expected, "every order sent, none twice");
    assert_eq!(env.transfers_in_emulator().await, ORDERS as u64);
}

/// `POST /v1/operator/orders/{id}/confirm` as operator `desk`; the status and the body.
async fn confirm(env: &Env, desk: &str, id: &str) -> (StatusCode, Value) {
    env.call(
        Method::POST,
        &format!("/v1/operator/orders/{id}/confirm"),
        Some(&env.operator_token(desk)),
        None,
    )
    .await
}

/// Issue 18's four eyes: with `FOUR_EYES_USD` at 1000 and ETH at 3000 USD, the desk's 0.5 ETH
/// order (1500 USD) is not sent by an execution run until a second operator confirms it; its
/// creator cannot; a 0.1 ETH order (300 USD) is sent as before; an order whose value cannot be
/// determined (no quote yet) needs confirmation too. The confirmation is in the client's audit
/// chain with both operators.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_over_the_four_eyes_amount_waits_for_a_second_operator() {
    let env = Env::start(EnvOptions {
        four_eyes_usd: Some(1000),
        ..EnvOptions::default()
    })
    .await;
    let alice = client_id("alice");
    let wallet_id = env.funded_client(&alice).await;
    active_authorization(&env, &alice).await;

    // No quote for ETH yet: the value is unknown, so the order needs confirmation (fail closed).
    let unknown = place_order(&env, &alice, "100000000000000000").await;
    assert_eq!(unknown["needsConfirmation"], true, "{unknown}");
    let (status, cancelled) = env
        .call(
            Method::POST,
            &format!(
                "/v1/operator/orders/{}/cancel",
                unknown["id"].as_str().expect("id")
            ),
            Some(&env.operator_token("desk-1")),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");

    env.control(
        Method::PUT,
        "prices",
        &json!({"prices": {"ETH": "3000.00"}}),
    )
    .await;
    let big = place_order(&env, &alice, HALF_ETH).await;
    let big_id = big["id"].as_str().expect("order id").to_owned();
    assert_eq!(big["needsConfirmation"], true, "1500 USD > 1000: {big}");
    let small = place_order(&env, &alice, "100000000000000000").await;
    let small_id = small["id"].as_str().expect("order id").to_owned();
    assert!(
        small["needsConfirmation"].is_null(),
        "300 USD needs no second operator: {small}"
    );

    // The run sends the small order only.
    let report = env
        .stack
        .run_job("order-execution")
        .await
        .expect("the run completes");
    assert_eq!(report["sent"], 1, "{report}");
    wait_for_order(&env, &alice, &small_id, "Confirmed").await;
    assert!(env.transfers_for(&wallet_id, &big_id).await.is_empty());

    // Its creator cannot confirm it, and another run still leaves it alone.
    let (status, refused) = confirm(&env, "desk-1", &big_id).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["error"]["code"], "own_order", "{refused}");
    let report = env
        .stack
        .run_job("order-execution")
        .await
        .expect("the run completes");
    assert_eq!(report["claimed"], 0, "{report}");
    let waiting = order_of(&env, &alice, &big_id).await;
    assert_eq!(waiting["state"], "Scheduled", "{waiting}");
    assert_eq!(waiting["needsConfirmation"], true, "{waiting}");
    assert!(waiting["confirmedBy"].is_null(), "{waiting}");
    assert!(env.transfers_for(&wallet_id, &big_id).await.is_empty());

    // An order that needs no confirmation cannot be confirmed.
    let (status, refused) = confirm(&env, "desk-2", &small_id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(
        refused["error"]["code"], "confirmation_not_needed",
        "{refused}"
    );

    // A second operator confirms it (twice: the same answer), and the next run sends it.
    let (status, confirmed) = confirm(&env, "desk-2", &big_id).await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    assert_eq!(confirmed["confirmedBy"], "desk-2", "{confirmed}");
    let (status, again) = confirm(&env, "desk-2", &big_id).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, confirmed);
    let (status, refused) = confirm(&env, "desk-1", &big_id).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "still not the creator's: {refused}"
    );
    let listed = order_of(&env, &alice, &big_id).await;
    assert_eq!(listed["confirmedBy"], "desk-2", "{listed}");
    let report = env
        .stack
        .run_job("order-execution")
        .await
        .expect("the run completes");
    assert_eq!(report["sent"], 1, "{report}");
    wait_for_order(&env, &alice, &big_id, "Confirmed").await;
    assert_eq!(env.transfers_for(&wallet_id, &big_id).await.len(), 1);

    // The client's audit chain says who placed it and who confirmed it, once.
    let (status, trail) = env.get("/v1/audit?limit=200", &alice).await;
    assert_eq!(status, StatusCode::OK, "{trail}");
    let lines: Vec<&Value> = trail["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("no entries: {trail}"))
        .iter()
        .map(|e| &e["event"])
        .filter(|e| e["action"] == "order.confirmed_by_second_operator")
        .collect();
    assert_eq!(lines.len(), 1, "{trail}");
    let details = &lines[0]["details"];
    assert_eq!(details["orderId"], big_id.as_str(), "{details}");
    assert_eq!(details["createdBy"], "desk-1", "{details}");
    assert_eq!(details["confirmedBy"], "desk-2", "{details}");
}
