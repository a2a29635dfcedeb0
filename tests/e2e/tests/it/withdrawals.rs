//! Issue 14's acceptance (client withdrawals), end to end through HTTP against the local stack, the
//! Dfns emulator (policies, approvals, transfers, faults) and the AWS stand-ins. Run with
//! `cargo xtask exec -- cargo test -p e2e --test it withdrawals::`.

use std::time::Duration;

use dfns_client::transfers::{TransferAsset, TransfersQuery};
use dfns_client::{Amount, ApprovalId, DecisionValue, ExternalId, WalletId};
use e2e::{Env, EnvOptions, client_id, random_address, wait_until};
use futures::{StreamExt, TryStreamExt};
use platform::settings::{PolicyActionSetting, Tier};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub(crate) const HALF_ETH: &str = "500000000000000000";
/// 0.001 ETH: 3 USD at the test price, within every test limit.
const SMALL: &str = "1000000000000000";
const WAIT: Duration = Duration::from_secs(30);

/// Adds `address` for `subject` and has an officer approve it.
pub(crate) async fn approved_destination(env: &Env, subject: &str, address: &str) {
    let (status, created) = env
        .request_destination(subject, address, "cold wallet")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let pending = env
        .wait_for_state(subject, &id, &["PendingApproval", "Approved"])
        .await;
    if pending["state"] == "PendingApproval" {
        env.decide(&pending, DecisionValue::Approved).await;
    }
    env.wait_for_state(subject, &id, &["Approved"]).await;
}

pub(crate) fn withdrawal(to: &str, amount: &str) -> Value {
    json!({"network": "EthereumSepolia", "to": to, "asset": "native", "amount": amount})
}

/// `POST /v1/withdrawals` as `subject` with `key`.
pub(crate) async fn withdraw(
    env: &Env,
    subject: &str,
    key: &str,
    body: &Value,
) -> (StatusCode, Value) {
    env.call_with_headers(
        Method::POST,
        "/v1/withdrawals",
        Some(&env.token(subject)),
        Some(body),
        &[("Idempotency-Key", key)],
    )
    .await
}

async fn withdrawal_of(env: &Env, subject: &str, id: &str) -> Value {
    let (status, body) = env.get(&format!("/v1/withdrawals/{id}"), subject).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

pub(crate) async fn wait_for_withdrawal(env: &Env, subject: &str, id: &str, state: &str) -> Value {
    const FINAL: [&str; 4] = ["Confirmed", "Failed", "Rejected", "Cancelled"];
    wait_until(WAIT, || async {
        let current = withdrawal_of(env, subject, id).await;
        let now = current["state"].as_str().unwrap_or("").to_owned();
        assert!(
            now == state || !FINAL.contains(&now.as_str()),
            "withdrawal {id} ended {now}, expected {state}: {current}"
        );
        (now == state).then_some(current)
    })
    .await
    .unwrap_or_else(|| panic!("withdrawal {id} never reached {state}"))
}

fn actions(trail: &Value) -> Vec<String> {
    trail["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["event"]["action"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Add a destination → an officer approves → a preview passes → a withdrawal within the limits
/// is sent at once and confirms, with exactly one transfer at Dfns; a retry with the same key is
/// the same withdrawal; the client sees it in its list, activity (and CSV), trail and
/// notifications, and each limit's use in its account; the desk sees it in the client's view.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_withdrawal_within_the_limits_confirms_with_exactly_one_transfer() {
    let env = Env::start(EnvOptions {
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
    let alice = client_id("alice");
    let wallet_id = env.funded_client(&alice).await;
    let cold = random_address();
    approved_destination(&env, &alice, &cold).await;

    let (status, preview) = env
        .post("/v1/withdrawals/preview", &alice, &withdrawal(&cold, SMALL))
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["verdict"], "pass", "{preview}");
    assert_eq!(preview["destinationApproved"], true, "{preview}");
    let (_, over) = env
        .post(
            "/v1/withdrawals/preview",
            &alice,
            &withdrawal(&cold, HALF_ETH),
        )
        .await;
    assert_eq!(
        over["verdict"], "block",
        "1500 USD over a 1000 USD limit: {over}"
    );

    let key = format!("w-{}", ulid::Ulid::new());
    let (status, created) = withdraw(&env, &alice, &key, &withdrawal(&cold, SMALL)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["to"], cold.as_str());
    assert_eq!(created["amount"], SMALL);
    assert_ne!(created["state"], "Requested", "sent at once: {created}");
    // The same key and body again: the same withdrawal, nothing new sent.
    let (status, again) = withdraw(&env, &alice, &key, &withdrawal(&cold, SMALL)).await;
    assert!(status.is_success(), "{status} {again}");
    assert_eq!(again["id"], id.as_str());
    // The same key with another body: refused.
    let (status, _) = withdraw(&env, &alice, &key, &withdrawal(&cold, "2")).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let confirmed = wait_for_withdrawal(&env, &alice, &id, "Confirmed").await;
    assert!(confirmed["transferId"].is_string(), "{confirmed}");
    let sent = env.transfers_for(&wallet_id, &id).await;
    assert_eq!(sent.len(), 1, "exactly one transfer: {sent:?}");
    assert_eq!(sent[0]["requestBody"]["to"], cold.as_str());
    assert_eq!(env.transfers_in_emulator().await, 1);

    let (_, listed) = env.get("/v1/withdrawals", &alice).await;
    assert_eq!(listed["items"][0]["id"], id.as_str(), "{listed}");
    let (_, trail) = env.get("/v1/audit?limit=200", &alice).await;
    let trail = actions(&trail);
    for action in ["withdrawal.requested", "withdrawal.confirmed"] {
        assert!(trail.iter().any(|a| a == action), "{action} in {trail:?}");
    }
    let notified = wait_until(WAIT, || async {
        let (_, notes) = env.get("/v1/notifications?limit=100", &alice).await;
        let kinds: Vec<String> = notes["items"]
            .as_array()?
            .iter()
            .filter_map(|n| n["kind"].as_str().map(str::to_owned))
            .collect();
        kinds
            .iter()
            .any(|k| k == "withdrawal.confirmed")
            .then_some(kinds)
    })
    .await
    .expect("the client is told it confirmed");
    assert!(
        notified.iter().any(|k| k == "withdrawal.requested"),
        "{notified:?}"
    );
    let (_, activity) = env.get("/v1/activity?limit=100", &alice).await;
    let rows = activity["items"].as_array().expect("items");
    assert!(
        rows.iter()
            .any(|r| r["kind"] == "withdrawal.requested" && r["reference"] == id.as_str()),
        "{activity}"
    );
    let (_, account) = env.get("/v1/account", &alice).await;
    let limit = &account["limits"][0];
    assert_eq!(limit["kind"], "TransactionAmountLimit", "{account}");
    assert_eq!(limit["usage"][0]["headroom"], "1000", "{account}");

    // The desk sees it; the desk cannot make one.
    let desk = env.operator_token("desk-1");
    let (status, view) = env
        .call(
            Method::GET,
            &format!("/v1/operator/clients/{alice}"),
            Some(&desk),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["withdrawals"][0]["id"], id.as_str(), "{view}");
    let (status, _) = env
        .call_with_headers(
            Method::POST,
            "/v1/withdrawals",
            Some(&desk),
            Some(&withdrawal(&cold, SMALL)),
            &[("Idempotency-Key", "desk")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(env.transfers_in_emulator().await, 1);
}

/// The whole path: a new destination cools off (withdrawing to it meanwhile is a 409, and Dfns
/// has not seen it); once the wait has ended (the emulated clock and the platform's clock
/// advanced) the reconciler submits it, an officer approves it, and a withdrawal to it confirms
/// with exactly one transfer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_cooling_off_and_approval_a_withdrawal_confirms() {
    use crate::cooling_off::{advance_dfns_clock, dfns_has_seen, reconcile_at, usable_from};
    const COOLING: Duration = Duration::from_secs(24 * 3600);
    let env = Env::start(EnvOptions {
        destination_cooling_off: COOLING,
        ..EnvOptions::default()
    })
    .await;
    let gina = client_id("gina");
    let wallet_id = env.funded_client(&gina).await;
    let cold = random_address();
    let (status, created) = env.request_destination(&gina, &cold, "cold wallet").await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["state"], "CoolingOff", "{created}");
    let request = created["id"].as_str().expect("id").to_owned();

    let (status, body) = withdraw(&env, &gina, "early", &withdrawal(&cold, SMALL)).await;
    assert_eq!(status, StatusCode::CONFLICT, "still cooling off: {body}");
    let (_, preview) = env
        .post("/v1/withdrawals/preview", &gina, &withdrawal(&cold, SMALL))
        .await;
    assert_eq!(preview["destinationApproved"], false, "{preview}");
    assert!(!dfns_has_seen(&env, &cold));

    advance_dfns_clock(&env, COOLING).await;
    reconcile_at(&env, usable_from(&created)).await;
    let pending = env
        .wait_for_state(&gina, &request, &["PendingApproval"])
        .await;
    env.decide(&pending, DecisionValue::Approved).await;
    env.wait_for_state(&gina, &request, &["Approved"]).await;

    let (status, made) = withdraw(&env, &gina, "now", &withdrawal(&cold, SMALL)).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let id = made["id"].as_str().expect("id").to_owned();
    wait_for_withdrawal(&env, &gina, &id, "Confirmed").await;
    assert_eq!(env.transfers_for(&wallet_id, &id).await.len(), 1);
    assert_eq!(env.transfers_in_emulator().await, 1);
}

/// Over the per-transfer limit with `RequestApproval`: Dfns holds it, an officer denies it, and it
/// ends `Rejected` with the officer's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_the_limit_an_officer_denies_it_and_it_is_rejected_with_the_reason() {
    let env = Env::start(EnvOptions {
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
    let bob = client_id("bob");
    let wallet_id = env.funded_client(&bob).await;
    let cold = random_address();
    approved_destination(&env, &bob, &cold).await;
    let (_, preview) = env
        .post(
            "/v1/withdrawals/preview",
            &bob,
            &withdrawal(&cold, HALF_ETH),
        )
        .await;
    assert_eq!(preview["verdict"], "approval", "{preview}");

    let (status, created) = withdraw(&env, &bob, "over", &withdrawal(&cold, HALF_ETH)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let held = wait_for_withdrawal(&env, &bob, &id, "PendingApproval").await;
    let approval = held["approvalId"].as_str().expect("approval id").to_owned();
    env.officer(0)
        .decide_approval(
            &ApprovalId::new(approval),
            DecisionValue::Denied,
            Some("larger than this client's usual withdrawals"),
        )
        .await
        .expect("the officer denies");
    let rejected = wait_for_withdrawal(&env, &bob, &id, "Rejected").await;
    let reason = rejected["reason"].as_str().unwrap_or_default();
    assert!(!reason.is_empty(), "a rejection says why: {rejected}");
    let sent = env.transfers_for(&wallet_id, &id).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["status"], "Rejected");
}

/// What must not be sent is not: an address never approved is a 400, one still awaiting
/// compliance a 409, neither stored; another client's ids are not found; without an
/// `Idempotency-Key` nothing happens; a withdrawal Dfns could not take yet can be cancelled and is
/// then never sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_withdrawals_store_and_send_nothing() {
    let env = Env::start(EnvOptions::default()).await;
    let carol = client_id("carol");
    let wallet_id = env.funded_client(&carol).await;

    let stranger = random_address();
    let (status, body) = withdraw(&env, &carol, "k1", &withdrawal(&stranger, SMALL)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let cold = random_address();
    approved_destination(&env, &carol, &cold).await;
    // Requested but not decided yet: not usable.
    let waiting = random_address();
    let (status, created) = env.request_destination(&carol, &waiting, "pending").await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    env.wait_for_state(
        &carol,
        created["id"].as_str().expect("id"),
        &["PendingApproval"],
    )
    .await;
    let (status, body) = withdraw(&env, &carol, "k2", &withdrawal(&waiting, SMALL)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = env
        .post("/v1/withdrawals", &carol, &withdrawal(&stranger, SMALL))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no Idempotency-Key");
    let (_, listed) = env.get("/v1/withdrawals", &carol).await;
    assert_eq!(listed["items"], json!([]), "nothing stored: {listed}");

    // Dfns does not take transfers now: the withdrawal stays Requested, and can be cancelled.
    env.control(
        Method::POST,
        "faults",
        &json!({"pathPattern": "/wallets/*/transfers", "method": "POST", "status": 503, "rate": 1.0}),
    )
    .await;
    let (status, created) = withdraw(&env, &carol, "k3", &withdrawal(&cold, SMALL)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["state"], "Requested", "{created}");
    let id = created["id"].as_str().expect("id").to_owned();

    let dave = client_id("dave");
    env.open_account(&dave).await;
    let (status, _) = env.get(&format!("/v1/withdrawals/{id}"), &dave).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = env
        .post(&format!("/v1/withdrawals/{id}/cancel"), &dave, &json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, daves) = env.get("/v1/withdrawals", &dave).await;
    assert_eq!(daves["items"], json!([]));

    let (status, cancelled) = env
        .post(&format!("/v1/withdrawals/{id}/cancel"), &carol, &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["state"], "Cancelled");
    env.control(Method::DELETE, "faults", &json!({})).await;
    env.stack
        .run_job("order-execution")
        .await
        .expect("the run completes");
    assert_eq!(withdrawal_of(&env, &carol, &id).await["state"], "Cancelled");
    assert!(env.transfers_for(&wallet_id, &id).await.is_empty());
    assert_eq!(env.transfers_in_emulator().await, 0);
}

/// A crash after Dfns accepted the transfer (before it was recorded): the next run finds the
/// transfer by its `externalId` and follows it; one transfer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_after_dfns_accepted_leaves_one_transfer() {
    let env = Env::start(EnvOptions::default()).await;
    let erin = client_id("erin");
    let wallet_id = env.funded_client(&erin).await;
    let cold = random_address();
    approved_destination(&env, &erin, &cold).await;
    env.control(
        Method::POST,
        "faults",
        &json!({"pathPattern": "/wallets/*/transfers", "method": "POST", "status": 503, "rate": 1.0}),
    )
    .await;
    let (status, created) = withdraw(&env, &erin, "crash", &withdrawal(&cold, SMALL)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    env.control(Method::DELETE, "faults", &json!({})).await;

    // The dead attempt: it claimed the withdrawal (its lease is over by now), Dfns accepted the
    // transfer with externalId = its id, and it died before recording it.
    let store = store::Store::new(env.dynamodb.clone(), env.table.clone());
    let order_id = serde_json::from_value(json!(id)).expect("an id");
    store
        .claim_order(
            &order_id,
            time::OffsetDateTime::now_utc(),
            time::Duration::ZERO,
        )
        .await
        .expect("the dead attempt claimed it");
    env.service()
        .transfer(
            &WalletId::new(&wallet_id),
            ExternalId::new(id.clone()),
            TransferAsset::Native {
                to: cold.clone(),
                amount: Amount::from(SMALL.parse::<u128>().expect("an amount")),
                memo: None,
                priority: None,
            },
        )
        .await
        .expect("Dfns accepts the transfer");

    // The client's cancel finds the transfer at Dfns: refused, and the withdrawal follows it.
    let (status, body) = env
        .post(&format!("/v1/withdrawals/{id}/cancel"), &erin, &json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_ne!(withdrawal_of(&env, &erin, &id).await["state"], "Cancelled");

    env.stack
        .run_job("order-execution")
        .await
        .expect("the run completes");
    wait_for_withdrawal(&env, &erin, &id, "Confirmed").await;
    assert_eq!(env.transfers_for(&wallet_id, &id).await.len(), 1);
    assert_eq!(env.transfers_in_emulator().await, 1);
}

/// 200 withdrawals while Dfns answers half of the transfer calls with 429: every one is sent
/// exactly once (at once, or by the next execution runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_withdrawals_under_half_429s_make_two_hundred_transfers() {
    const CLIENTS: usize = 4;
    const EACH: usize = 50;
    let env = Env::start(EnvOptions::default()).await;
    let mut clients = Vec::new();
    for n in 0..CLIENTS {
        let subject = client_id(&format!("busy{n}"));
        let wallet = env.funded_client(&subject).await;
        let cold = random_address();
        approved_destination(&env, &subject, &cold).await;
        clients.push((subject, wallet, cold));
    }
    env.control(
        Method::POST,
        "faults",
        &json!({"pathPattern": "/wallets/*/transfers", "method": "POST", "status": 429,
                "rate": 0.5, "retryAfterSeconds": 1, "seed": 14}),
    )
    .await;
    let mut ids = Vec::new();
    let env = &env;
    for (subject, _, cold) in &clients {
        let calls = (0..EACH).map(|i| {
            let key = format!("burst-{i}");
            async move {
                let (status, body) = withdraw(env, subject, &key, &withdrawal(cold, "1")).await;
                assert_eq!(status, StatusCode::CREATED, "{body}");
                body["id"].as_str().expect("id").to_owned()
            }
        });
        ids.extend(
            futures::stream::iter(calls)
                .buffer_unordered(8)
                .collect::<Vec<_>>()
                .await,
        );
    }
    assert_eq!(ids.len(), CLIENTS * EACH);
    // Whatever was not sent at once, the scheduled runs send (faults still on).
    let done = wait_until(Duration::from_secs(120), || async {
        env.stack.run_job("order-execution").await.ok()?;
        let mut requested = 0;
        for (subject, _, _) in &clients {
            let (_, page) = env.get("/v1/withdrawals?limit=200", subject).await;
            requested += page["items"]
                .as_array()?
                .iter()
                .filter(|w| w["state"] == "Requested")
                .count();
        }
        (requested == 0).then_some(())
    })
    .await;
    assert!(done.is_some(), "every withdrawal reached Dfns");
    env.control(Method::DELETE, "faults", &json!({})).await;
    let mut total = 0;
    for (_, wallet, _) in &clients {
        let transfers: Vec<_> = env
            .service()
            .list_transfers(&WalletId::new(wallet), &TransfersQuery::default())
            .try_collect()
            .await
            .expect("list transfers");
        let mut external: Vec<String> = transfers
            .iter()
            .filter_map(|t| t.external_id.as_ref().map(|e| e.as_str().to_owned()))
            .collect();
        let count = external.len();
        external.sort();
        external.dedup();
        assert_eq!(external.len(), count, "no withdrawal sent twice");
        total += count;
    }
    assert_eq!(total, CLIENTS * EACH, "one transfer per withdrawal");
    assert_eq!(env.transfers_in_emulator().await as usize, CLIENTS * EACH);
}
