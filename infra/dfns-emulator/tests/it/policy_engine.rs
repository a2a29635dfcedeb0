//! The policy engine v2 through HTTP (docs/dfns.md §4–5): rules at their boundaries, filters,
//! Block vs RequestApproval, quorums, who may decide, expiry, velocity over the emulated clock,
//! `Policies:Modify` change requests, webhooks and audit entries.
//!
//! Prices: 1 wei of ETH is set to 1 USD, so a transfer's `amount` is its USD value.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{Client, Harness, RECIPIENT};
use axum::body::Bytes;
use axum::routing::post;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const OTHER: &str = "0x3f5ce5fbfe3e9af3971dd833d26ba9b5c936f0be";
const WEI_PER_ETH_AS_USD: &str = "1000000000000000000";

async fn start() -> Harness {
    let h = Harness::start().await;
    h.control(
        Method::PUT,
        "/prices",
        json!({ "prices": { "ETH": WEI_PER_ETH_AS_USD } }),
    )
    .await;
    h
}

fn admin(h: &Harness) -> Client {
    Client::new(&h.base(), &h.emulator.bootstrap().admin)
}

fn officer(h: &Harness, i: usize) -> Client {
    Client::new(&h.base(), &h.emulator.bootstrap().officers[i])
}

/// A funded wallet with `tags`.
async fn wallet(h: &Harness, tags: &[&str]) -> String {
    let w = h
        .create_wallet(json!({ "network": "EthereumSepolia", "tags": tags }))
        .await;
    let id = w["id"].as_str().unwrap().to_owned();
    h.deposit(&id, "1000000000000000000").await;
    id
}

async fn policy(client: &Client, body: Value) -> Value {
    client
        .signed(Method::POST, "/v2/policies", &body)
        .await
        .ok()
}

fn sign_policy(rule: Value, action: Value, filters: Value) -> Value {
    json!({ "name": "test", "activityKind": "Wallets:Sign", "rule": rule, "action": action, "filters": filters })
}

fn approvals_by(ids: &[&str], quorum: u64) -> Value {
    json!({
        "kind": "RequestApproval",
        "approvalGroups": [{ "name": "Compliance", "quorum": quorum, "approvers": { "userId": { "in": ids } } }],
    })
}

async fn transfer_by(client: &Client, wallet: &str, to: &str, amount: u64) -> Value {
    client
        .signed(
            Method::POST,
            &format!("/wallets/{wallet}/transfers"),
            &json!({ "kind": "Native", "to": to, "amount": amount.to_string() }),
        )
        .await
        .ok()
}

async fn transfer(h: &Harness, wallet: &str, to: &str, amount: u64) -> Value {
    transfer_by(&h.sa, wallet, to, amount).await
}

async fn decide(client: &Client, approval_id: &str, value: &str) -> common::Response {
    client
        .signed(
            Method::POST,
            &format!("/v2/policy-approvals/{approval_id}/decisions"),
            &json!({ "value": value, "reason": format!("{value} in test") }),
        )
        .await
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// (recipient, USD amount, rejected?)
type Step = (&'static str, u64, bool);

#[tokio::test]
async fn each_rule_at_just_under_and_just_over_its_boundary() {
    let h = start().await;
    // (name, rule, [(recipient, USD amount, rejected?)]) — each case on its own wallet.
    let cases: Vec<(&str, Value, Vec<Step>)> = vec![
        (
            "amount limit 100",
            json!({ "kind": "TransactionAmountLimit", "configuration": { "limit": 100, "currency": "USD" } }),
            vec![
                (RECIPIENT, 99, false),
                (RECIPIENT, 100, false),
                (RECIPIENT, 101, true),
            ],
        ),
        (
            "whitelist, exact and case-sensitive",
            json!({ "kind": "TransactionRecipientWhitelist", "configuration": { "addresses": [RECIPIENT] } }),
            vec![
                (RECIPIENT, 1, false),
                ("0xB282DC7CDE21717F18337A596E91DED00B79B25F", 1, true),
                (OTHER, 1, true),
            ],
        ),
        (
            "count velocity 2 per hour (the current transfer counts)",
            json!({ "kind": "TransactionCountVelocity", "configuration": { "limit": 2, "timeframe": 60 } }),
            vec![
                (RECIPIENT, 1, false),
                (RECIPIENT, 1, false),
                (RECIPIENT, 1, true),
            ],
        ),
        (
            "amount velocity 100 USD per hour, reaching the limit exactly",
            json!({ "kind": "TransactionAmountVelocity", "configuration": { "limit": 100, "currency": "USD", "timeframe": 60 } }),
            vec![
                (RECIPIENT, 60, false),
                (RECIPIENT, 40, false),
                (RECIPIENT, 1, true),
            ],
        ),
        (
            "amount velocity 100 USD per hour, just under then just over",
            json!({ "kind": "TransactionAmountVelocity", "configuration": { "limit": 100, "currency": "USD", "timeframe": 60 } }),
            vec![
                (RECIPIENT, 60, false),
                (RECIPIENT, 39, false),
                (RECIPIENT, 2, true),
            ],
        ),
        (
            "always trigger",
            json!({ "kind": "AlwaysTrigger" }),
            vec![(RECIPIENT, 1, true)],
        ),
    ];
    for (name, rule, steps) in cases {
        let w = wallet(&h, &[]).await;
        policy(
            &h.sa,
            sign_policy(
                rule,
                json!({ "kind": "Block" }),
                json!({ "walletId": { "in": [w] } }),
            ),
        )
        .await;
        for (i, (to, amount, rejected)) in steps.into_iter().enumerate() {
            let t = transfer(&h, &w, to, amount).await;
            assert_eq!(
                t["status"] == "Rejected",
                rejected,
                "{name}, step {i} (USD {amount} to {to}): {t}"
            );
            if rejected {
                assert!(t["reason"].as_str().is_some_and(|r| !r.is_empty()));
                assert!(t["datePolicyResolved"].is_string());
            }
        }
    }
}

#[tokio::test]
async fn an_asset_without_a_price_fails_closed() {
    let h = start().await;
    let w = wallet(&h, &[]).await;
    policy(
        &h.sa,
        sign_policy(
            json!({ "kind": "TransactionAmountLimit", "configuration": { "limit": 1000000, "currency": "USD" } }),
            json!({ "kind": "Block" }),
            json!({ "walletId": { "in": [w] } }),
        ),
    )
    .await;
    let unpriced =
        h.sa.signed(
            Method::POST,
            &format!("/wallets/{w}/transfers"),
            &json!({ "kind": "Erc20", "contract": OTHER, "to": RECIPIENT, "amount": "1" }),
        )
        .await
        .ok();
    assert_eq!(unpriced["status"], "Rejected", "{unpriced}");
    assert!(unpriced["reason"].as_str().unwrap().contains("no price"));
}

#[tokio::test]
async fn has_any_versus_has_all_and_non_matching_policies_are_not_evaluated() {
    let h = start().await;
    policy(
        &h.sa,
        sign_policy(
            json!({ "kind": "AlwaysTrigger" }),
            json!({ "kind": "Block" }),
            json!({ "walletTags": { "hasAny": ["any-a", "any-b"] } }),
        ),
    )
    .await;
    policy(
        &h.sa,
        sign_policy(
            json!({ "kind": "AlwaysTrigger" }),
            json!({ "kind": "Block" }),
            json!({ "walletTags": { "hasAll": ["all-a", "all-b"] } }),
        ),
    )
    .await;
    for (tags, rejected) in [
        (vec!["any-b"], true),
        (vec!["unrelated"], false),
        (vec!["all-a"], false),
        (vec!["all-a", "all-b"], true),
        (vec!["all-b", "all-a", "x"], true),
    ] {
        let w = wallet(&h, &tags).await;
        let t = transfer(&h, &w, RECIPIENT, 1).await;
        assert_eq!(t["status"] == "Rejected", rejected, "tags {tags:?}: {t}");
    }

    // Only the matching policy shows in the approval.
    let officer_id = h.emulator.bootstrap().officers[0].user_id.clone();
    let held = wallet(&h, &["held"]).await;
    let elsewhere = wallet(&h, &[]).await;
    let matching = policy(
        &h.sa,
        sign_policy(
            json!({ "kind": "AlwaysTrigger" }),
            approvals_by(&[&officer_id], 1),
            json!({ "walletId": { "in": [held] } }),
        ),
    )
    .await;
    policy(
        &h.sa,
        sign_policy(
            json!({ "kind": "AlwaysTrigger" }),
            json!({ "kind": "Block" }),
            json!({ "walletId": { "in": [elsewhere] } }),
        ),
    )
    .await;
    let t = transfer(&h, &held, RECIPIENT, 1).await;
    assert_eq!(t["status"], "Pending");
    let approval =
        h.sa.get(&format!(
            "/v2/policy-approvals/{}",
            t["approvalId"].as_str().unwrap()
        ))
        .await
        .ok();
    let evaluated: Vec<&str> = approval["policyEvaluations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["policyId"].as_str().unwrap())
        .collect();
    assert_eq!(evaluated, vec![matching["id"].as_str().unwrap()]);
}

#[tokio::test]
async fn block_beats_request_approval() {
    let h = start().await;
    let officer_id = h.emulator.bootstrap().officers[0].user_id.clone();
    let w = wallet(&h, &["guarded"]).await;
    let filters = json!({ "walletTags": { "hasAll": ["guarded"] } });
    policy(
        &h.sa,
        sign_policy(
            json!({ "kind": "AlwaysTrigger" }),
            approvals_by(&[&officer_id], 1),
            filters.clone(),
        ),
    )
    .await;
    policy(
        &h.sa,
        sign_policy(
            json!({ "kind": "TransactionAmountLimit", "configuration": { "limit": 10, "currency": "USD" } }),
            json!({ "kind": "Block" }),
            filters,
        ),
    )
    .await;
    let blocked = transfer(&h, &w, RECIPIENT, 11).await;
    assert_eq!(blocked["status"], "Rejected");
    assert!(blocked.get("approvalId").is_none(), "{blocked}");
    assert_eq!(
        blocked["reason"],
        "Transfer amount (USD 11) is above limit (USD 10)."
    );
    let pending = h.sa.get("/v2/policy-approvals?status=Pending").await.ok();
    assert_eq!(pending["items"].as_array().unwrap().len(), 0, "{pending}");
    // Under the limit only the approval policy triggers.
    let held = transfer(&h, &w, RECIPIENT, 10).await;
    assert_eq!(held["status"], "Pending");
    assert!(held["approvalId"].is_string());
}

#[tokio::test]
async fn two_request_approval_policies_need_both_quorums() {
    let h = start().await;
    let boot = h.emulator.bootstrap();
    let (o1, o2) = (
        boot.officers[0].user_id.clone(),
        boot.officers[1].user_id.clone(),
    );
    let w = wallet(&h, &["two"]).await;
    let filters = json!({ "walletTags": { "hasAny": ["two"] } });
    policy(
        &h.sa,
        sign_policy(
            json!({ "kind": "AlwaysTrigger" }),
            approvals_by(&[&o1], 1),
            filters.clone(),
        ),
    )
    .await;
    policy(
        &h.sa,
        sign_policy(
            json!({ "kind": "AlwaysTrigger" }),
            approvals_by(&[&o1, &o2], 2),
            filters,
        ),
    )
    .await;
    let t = transfer(&h, &w, RECIPIENT, 5).await;
    let approval_id = t["approvalId"].as_str().unwrap().to_owned();

    let after_first = decide(&officer(&h, 0), &approval_id, "Approved").await.ok();
    assert_eq!(
        after_first["status"], "Pending",
        "the second policy needs two approvers"
    );
    assert_eq!(
        after_first["policyEvaluations"].as_array().unwrap().len(),
        2
    );
    let still =
        h.sa.get(&format!("/wallets/{w}/transfers/{}", id(&t)))
            .await
            .ok();
    assert_eq!(still["status"], "Pending");

    let after_second = decide(&officer(&h, 1), &approval_id, "Approved").await.ok();
    assert_eq!(after_second["status"], "Approved");
    assert!(after_second["dateResolved"].is_string());
    let decisions: Vec<&str> = after_second["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["userId"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, vec![o1.as_str(), o2.as_str()]);
    let done = h.wait_for_status(&w, &id(&t), "Confirmed").await;
    assert!(done["datePolicyResolved"].is_string());

    // A third decision on a resolved approval is a conflict.
    let late = decide(&admin(&h), &approval_id, "Denied").await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.text);
}

#[tokio::test]
async fn who_may_decide() {
    let h = start().await;
    let admin_client = admin(&h);
    let w = wallet(&h, &["open"]).await;
    // Anyone may approve; the admin initiates.
    policy(
        &h.sa,
        sign_policy(
            json!({ "kind": "AlwaysTrigger" }),
            json!({ "kind": "RequestApproval", "approvalGroups": [{ "quorum": 1, "approvers": {} }] }),
            json!({ "walletTags": { "hasAny": ["open"] } }),
        ),
    )
    .await;
    let by_admin = transfer_by(&admin_client, &w, RECIPIENT, 1).await;
    let approval_id = by_admin["approvalId"].as_str().unwrap().to_owned();

    // The service account lacks the approve permission: 403 naming it.
    let sa = decide(&h.sa, &approval_id, "Approved").await;
    assert_eq!(sa.status, StatusCode::FORBIDDEN);
    assert!(
        sa.error_message().contains("Policies:Approvals:Approve"),
        "{}",
        sa.text
    );
    // Even when granted it, a service account cannot decide.
    let sa_id = h.emulator.bootstrap().service_account.user_id.clone();
    h.control(
        Method::POST,
        "/permissions",
        json!({ "userId": sa_id, "operations": ["Policies:Approvals:Approve"] }),
    )
    .await;
    for value in ["Approved", "Denied"] {
        let refused = decide(&h.sa, &approval_id, value).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{value}: {}",
            refused.text
        );
    }

    // The initiator cannot approve, but may deny.
    let own = decide(&admin_client, &approval_id, "Approved").await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{}", own.text);
    let denied = decide(&admin_client, &approval_id, "Denied").await.ok();
    assert_eq!(denied["status"], "Denied");
    assert_eq!(denied["decisions"][0]["reason"], "Denied in test");
    let rejected = h.wait_for_status(&w, &id(&by_admin), "Rejected").await;
    assert!(rejected["reason"].as_str().unwrap().contains("denied"));

    // One decision per user; an officer's approval of another pending approval counts.
    let by_sa = transfer(&h, &w, RECIPIENT, 1).await;
    let second = by_sa["approvalId"].as_str().unwrap().to_owned();
    let o = officer(&h, 0);
    assert_eq!(
        decide(&o, &second, "Approved").await.ok()["status"],
        "Approved"
    );
    let again = decide(&o, &second, "Approved").await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    h.wait_for_status(&w, &id(&by_sa), "Confirmed").await;
}

#[tokio::test]
async fn expiry_rejects_after_the_auto_reject_timeout() {
    let h = start().await;
    let officer_id = h.emulator.bootstrap().officers[0].user_id.clone();
    let w = wallet(&h, &["slow"]).await;
    let mut action = approvals_by(&[&officer_id], 1);
    action["autoRejectTimeout"] = json!(10);
    policy(
        &h.sa,
        sign_policy(
            json!({ "kind": "AlwaysTrigger" }),
            action,
            json!({ "walletTags": { "hasAny": ["slow"] } }),
        ),
    )
    .await;
    let t = transfer(&h, &w, RECIPIENT, 1).await;
    let approval_id = t["approvalId"].as_str().unwrap().to_owned();
    let approval =
        h.sa.get(&format!("/v2/policy-approvals/{approval_id}"))
            .await
            .ok();
    assert!(approval["expirationDate"].is_string());

    h.control(Method::POST, "/clock/advance", json!({ "seconds": 9 * 60 }))
        .await;
    let early =
        h.sa.get(&format!("/v2/policy-approvals/{approval_id}"))
            .await
            .ok();
    assert_eq!(early["status"], "Pending", "not expired before its timeout");

    h.control(Method::POST, "/clock/advance", json!({ "seconds": 61 }))
        .await;
    let expired =
        h.sa.get(&format!("/v2/policy-approvals/{approval_id}"))
            .await
            .ok();
    assert_eq!(expired["status"], "Expired");
    let rejected =
        h.sa.get(&format!("/wallets/{w}/transfers/{}", id(&t)))
            .await
            .ok();
    assert_eq!(rejected["status"], "Rejected");
    assert!(rejected["reason"].as_str().unwrap().contains("expired"));
    let late = decide(&officer(&h, 0), &approval_id, "Approved").await;
    assert_eq!(late.status, StatusCode::CONFLICT);
    let listed = h.sa.get("/v2/policy-approvals?status=Expired").await.ok();
    assert_eq!(listed["items"][0]["id"], approval_id.as_str());
}

#[tokio::test]
async fn count_velocity_window_slides_with_the_emulated_clock() {
    let h = start().await;
    let w = wallet(&h, &[]).await;
    policy(
        &h.sa,
        sign_policy(
            json!({ "kind": "TransactionCountVelocity", "configuration": { "limit": 2, "timeframe": 10 } }),
            json!({ "kind": "Block" }),
            json!({ "walletId": { "in": [w] } }),
        ),
    )
    .await;
    let status = async |h: &Harness| transfer(h, &w, RECIPIENT, 1).await["status"].clone();
    assert_ne!(status(&h).await, "Rejected"); // 1 in window
    h.control(Method::POST, "/clock/advance", json!({ "seconds": 5 * 60 }))
        .await;
    assert_ne!(status(&h).await, "Rejected"); // 2 in window
    assert_eq!(status(&h).await, "Rejected"); // 3 > 2
    // The first transfer leaves the window; the rejected one never counted.
    h.control(
        Method::POST,
        "/clock/advance",
        json!({ "seconds": 5 * 60 + 1 }),
    )
    .await;
    assert_ne!(status(&h).await, "Rejected"); // second + this = 2
    assert_eq!(status(&h).await, "Rejected"); // 3 > 2
    h.control(
        Method::POST,
        "/clock/advance",
        json!({ "seconds": 11 * 60 }),
    )
    .await;
    assert_ne!(status(&h).await, "Rejected"); // all earlier ones fell out
}

#[tokio::test]
async fn amount_velocity_window_slides_with_the_emulated_clock() {
    let h = start().await;
    let w = wallet(&h, &[]).await;
    policy(
        &h.sa,
        sign_policy(
            json!({ "kind": "TransactionAmountVelocity", "configuration": { "limit": 100, "currency": "USD", "timeframe": 30 } }),
            json!({ "kind": "Block" }),
            json!({ "walletId": { "in": [w] } }),
        ),
    )
    .await;
    assert_ne!(transfer(&h, &w, RECIPIENT, 70).await["status"], "Rejected");
    h.control(
        Method::POST,
        "/clock/advance",
        json!({ "seconds": 20 * 60 }),
    )
    .await;
    let over = transfer(&h, &w, RECIPIENT, 31).await;
    assert_eq!(over["status"], "Rejected");
    assert_eq!(
        over["reason"],
        "Cumulative transfer amount (USD 101) is above limit (USD 100)."
    );
    assert_ne!(transfer(&h, &w, RECIPIENT, 30).await["status"], "Rejected");
    h.control(
        Method::POST,
        "/clock/advance",
        json!({ "seconds": 10 * 60 + 1 }),
    )
    .await;
    // The 70 left the window; 30 remain.
    assert_ne!(transfer(&h, &w, RECIPIENT, 70).await["status"], "Rejected");
    assert_eq!(transfer(&h, &w, RECIPIENT, 1).await["status"], "Rejected");
}

#[tokio::test]
async fn policies_crud_validation_and_pagination() {
    let h = start().await;
    let body = sign_policy(
        json!({ "kind": "TransactionRecipientWhitelist", "configuration": { "addresses": [RECIPIENT] } }),
        json!({ "kind": "Block" }),
        json!({ "walletTags": { "hasAll": ["client:1"] } }),
    );
    let created = policy(&h.sa, body.clone()).await;
    assert!(created["id"].as_str().unwrap().starts_with("plc-"));
    assert_eq!(created["status"], "Active");
    assert_eq!(created["rule"], body["rule"]);
    assert_eq!(created["filters"], body["filters"]);
    let got =
        h.sa.get(&format!("/v2/policies/{}", id(&created)))
            .await
            .ok();
    assert_eq!(got, created);

    let bad = h
        .sa
        .signed(
            Method::POST,
            "/v2/policies",
            &json!({ "name": "m", "activityKind": "Policies:Modify", "rule": { "kind": "AlwaysTrigger" }, "action": { "kind": "Block" } }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["error"]["status"], 400);
    assert!(bad.error_message().contains("Block"), "{}", bad.text);

    let officer_create = officer(&h, 0)
        .signed(Method::POST, "/v2/policies", &body)
        .await;
    assert_eq!(officer_create.status, StatusCode::FORBIDDEN);

    // Without a Policies:Modify policy, update and archive apply at once.
    let mut changed = body.clone();
    changed["name"] = json!("renamed");
    let updated =
        h.sa.signed(
            Method::PUT,
            &format!("/v2/policies/{}", id(&created)),
            &changed,
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(updated.json()["name"], "renamed");
    let second = policy(&h.sa, body.clone()).await;
    let archived =
        h.sa.signed(
            Method::DELETE,
            &format!("/v2/policies/{}", id(&second)),
            &json!({}),
        )
        .await
        .ok();
    assert_eq!(archived["status"], "Archived");
    let edit_archived =
        h.sa.signed(
            Method::PUT,
            &format!("/v2/policies/{}", id(&second)),
            &changed,
        )
        .await;
    assert_eq!(edit_archived.status, StatusCode::CONFLICT);

    let third = policy(&h.sa, body).await;
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let path = match &token {
            Some(t) => format!("/v2/policies?limit=1&paginationToken={t}"),
            None => "/v2/policies?limit=1".to_owned(),
        };
        let page = h.sa.get(&path).await.ok();
        seen.extend(page["items"].as_array().unwrap().iter().map(id));
        match page["nextPageToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, vec![id(&third), id(&second), id(&created)]);
    let active = h.sa.get("/v2/policies?status=Active").await.ok();
    let active: Vec<String> = active["items"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(active, vec![id(&third), id(&created)]);
    let missing =
        h.sa.get("/v2/policies/plc-00000-00000-0000000000000000")
            .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// A receiver recording every delivered webhook body.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let store = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: Bytes| {
            let store = store.clone();
            async move {
                store
                    .lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

async fn wait_for_event(seen: &Arc<Mutex<Vec<Value>>>, what: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..250 {
        if let Some(found) = seen.lock().unwrap().iter().find(|e| what(e)) {
            return found.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kinds: Vec<Value> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|e| e["kind"].clone())
        .collect();
    panic!("expected webhook not delivered; got {kinds:?}");
}

#[tokio::test]
async fn policies_modify_change_requests_webhooks_and_audit() {
    let h = start().await;
    let (url, seen) = receiver().await;
    h.sa.signed(
        Method::POST,
        "/webhooks",
        &json!({ "url": url, "events": ["*"] }),
    )
    .await
    .ok();
    let boot = h.emulator.bootstrap();
    let officer_ids: Vec<&str> = boot.officers.iter().map(|o| o.user_id.as_str()).collect();
    let whitelist = sign_policy(
        json!({ "kind": "TransactionRecipientWhitelist", "configuration": { "addresses": [RECIPIENT] } }),
        json!({ "kind": "Block" }),
        json!({ "walletTags": { "hasAll": ["client:7"] } }),
    );
    let target = policy(&h.sa, whitelist.clone()).await;
    let governing = policy(
        &h.sa,
        json!({
            "name": "compliance approves every policy change",
            "activityKind": "Policies:Modify",
            "rule": { "kind": "AlwaysTrigger" },
            "action": approvals_by(&officer_ids, 1),
        }),
    )
    .await;
    // Creating is not gated: the governing policy itself was created with 200.
    assert_eq!(governing["status"], "Active");

    let mut widened = whitelist.clone();
    widened["rule"]["configuration"]["addresses"] = json!([RECIPIENT, OTHER]);
    let path = format!("/v2/policies/{}", id(&target));
    let held = h.sa.signed(Method::PUT, &path, &widened).await;
    assert_eq!(held.status, StatusCode::ACCEPTED, "{}", held.text);
    let cr = held.json();
    assert!(cr["id"].as_str().unwrap().starts_with("cr-"));
    assert_eq!(cr["kind"], "Policy");
    assert_eq!(cr["operationKind"], "Update");
    assert_eq!(cr["status"], "Pending");
    assert_eq!(cr["entityId"], target["id"]);
    assert_eq!(
        cr["requester"]["userId"],
        boot.service_account.user_id.as_str()
    );
    assert_eq!(cr["body"]["rule"], widened["rule"]);
    let approval_id = cr["approvalId"].as_str().unwrap().to_owned();

    let unchanged = h.sa.get(&path).await.ok();
    assert_eq!(
        unchanged["rule"], whitelist["rule"],
        "the old configuration stays"
    );
    assert_eq!(unchanged["pendingChangeRequest"]["id"], cr["id"]);
    let second = h.sa.signed(Method::PUT, &path, &widened).await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    let archive_while_pending = h.sa.signed(Method::DELETE, &path, &json!({})).await;
    assert_eq!(archive_while_pending.status, StatusCode::CONFLICT);

    // The SA that asked cannot approve; an officer does.
    assert_eq!(
        decide(&h.sa, &approval_id, "Approved").await.status,
        StatusCode::FORBIDDEN
    );
    let approved = decide(&officer(&h, 0), &approval_id, "Approved").await.ok();
    assert_eq!(approved["status"], "Approved");
    assert_eq!(approved["activity"]["kind"], "Policies:Modify");
    assert_eq!(approved["activity"]["changeRequest"]["status"], "Applied");
    let applied = h.sa.get(&path).await.ok();
    assert_eq!(applied["rule"], widened["rule"]);
    assert!(applied.get("pendingChangeRequest").is_none());

    // Archive → 202; a denial leaves the policy active.
    let archive = h.sa.signed(Method::DELETE, &path, &json!({})).await;
    assert_eq!(archive.status, StatusCode::ACCEPTED);
    let archive_cr = archive.json();
    assert_eq!(archive_cr["body"]["status"], "Archived");
    let archive_approval = archive_cr["approvalId"].as_str().unwrap().to_owned();
    let denied = decide(&officer(&h, 1), &archive_approval, "Denied")
        .await
        .ok();
    assert_eq!(denied["status"], "Denied");
    assert_eq!(denied["activity"]["changeRequest"]["status"], "Rejected");
    let still = h.sa.get(&path).await.ok();
    assert_eq!(still["status"], "Active");
    assert!(still.get("pendingChangeRequest").is_none());

    // The governing policy governs itself too.
    let gov_path = format!("/v2/policies/{}", id(&governing));
    assert_eq!(
        h.sa.signed(Method::DELETE, &gov_path, &json!({}))
            .await
            .status,
        StatusCode::ACCEPTED
    );

    // Webhooks: triggered, pending and resolved for the change request.
    let triggered = wait_for_event(&seen, |e| {
        e["kind"] == "policy.triggered"
            && e["data"]["policyEvaluation"]["activity"]["changeRequest"]["id"] == cr["id"]
    })
    .await;
    assert_eq!(
        triggered["data"]["policyEvaluation"]["policy"]["id"],
        governing["id"]
    );
    wait_for_event(&seen, |e| {
        e["kind"] == "policy.approval.pending"
            && e["data"]["approval"]["id"] == approval_id.as_str()
    })
    .await;
    let resolved = wait_for_event(&seen, |e| {
        e["kind"] == "policy.approval.resolved"
            && e["data"]["approval"]["id"] == approval_id.as_str()
    })
    .await;
    assert_eq!(resolved["data"]["approval"]["status"], "Approved");

    // Transfers under the applied whitelist: OTHER is now allowed, a third address blocked.
    let w = wallet(&h, &["client:7"]).await;
    let ok = transfer(&h, &w, OTHER, 1).await;
    h.wait_for_status(&w, &id(&ok), "Confirmed").await;
    let third = "0x0000000000000000000000000000000000000001";
    let blocked = transfer(&h, &w, third, 1).await;
    assert_eq!(blocked["status"], "Rejected");
    wait_for_event(&seen, |e| {
        e["kind"] == "wallet.transfer.rejected"
            && e["data"]["transferRequest"]["id"] == blocked["id"]
    })
    .await;
    let blocked_trigger = wait_for_event(&seen, |e| {
        e["kind"] == "policy.triggered"
            && e["data"]["policyEvaluation"]["activity"]["transferRequest"]["id"] == blocked["id"]
    })
    .await;
    assert_eq!(
        blocked_trigger["data"]["policyEvaluation"]["policy"]["id"],
        target["id"]
    );

    // Audit: the update request and both decisions carry a summary.
    let now = h.control(Method::GET, "/clock", json!({})).await["now"]
        .as_str()
        .unwrap()
        .to_owned();
    let csv =
        h.sa.get(&format!(
            "/auth/action/logs?startTime=2000-01-01T00:00:00Z&endTime={now}"
        ))
        .await
        .text;
    assert!(
        csv.contains(&format!(
            "change request {} awaits approval {approval_id}",
            cr["id"].as_str().unwrap()
        )),
        "{csv}"
    );
    assert!(
        csv.contains(&format!(
            "Decision Approved on approval {approval_id} → Approved"
        )),
        "{csv}"
    );
    assert!(
        csv.contains(&format!(
            "Decision Denied on approval {archive_approval} → Denied"
        )),
        "{csv}"
    );
}

#[tokio::test]
async fn approval_webhooks_then_transfer_events() {
    let h = start().await;
    let (url, seen) = receiver().await;
    h.sa.signed(
        Method::POST,
        "/webhooks",
        &json!({ "url": url, "events": ["*"] }),
    )
    .await
    .ok();
    let officer_id = h.emulator.bootstrap().officers[0].user_id.clone();
    let w = wallet(&h, &["hooks"]).await;
    policy(
        &h.sa,
        sign_policy(
            json!({ "kind": "AlwaysTrigger" }),
            approvals_by(&[&officer_id], 1),
            json!({ "walletTags": { "hasAny": ["hooks"] } }),
        ),
    )
    .await;
    policy(
        &h.sa,
        sign_policy(
            json!({ "kind": "AlwaysTrigger" }),
            json!({ "kind": "NoAction" }),
            json!({ "walletTags": { "hasAny": ["hooks"] } }),
        ),
    )
    .await;
    let t = transfer(&h, &w, RECIPIENT, 3).await;
    let approval_id = t["approvalId"].as_str().unwrap().to_owned();
    let pending = wait_for_event(&seen, |e| e["kind"] == "policy.approval.pending").await;
    assert_eq!(pending["data"]["approval"]["id"], approval_id.as_str());
    assert_eq!(
        pending["data"]["approval"]["activity"]["transferRequest"]["approvalId"],
        approval_id.as_str()
    );
    // Both policies triggered (the NoAction one only notifies).
    for _ in 0..50 {
        let n = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "policy.triggered")
            .count();
        if n >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let triggered = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "policy.triggered")
        .count();
    assert_eq!(triggered, 2);

    decide(&officer(&h, 0), &approval_id, "Approved").await.ok();
    let resolved = wait_for_event(&seen, |e| e["kind"] == "policy.approval.resolved").await;
    assert_eq!(resolved["data"]["approval"]["status"], "Approved");
    wait_for_event(&seen, |e| {
        e["kind"] == "wallet.transfer.confirmed" && e["data"]["transferRequest"]["id"] == t["id"]
    })
    .await;
    let broadcasted = wait_for_event(&seen, |e| {
        e["kind"] == "wallet.transfer.broadcasted" && e["data"]["transferRequest"]["id"] == t["id"]
    })
    .await;
    assert_eq!(
        broadcasted["data"]["transferRequest"]["approvalId"],
        approval_id.as_str()
    );
}

#[tokio::test]
async fn a_denied_transfer_is_rejected_with_its_webhooks() {
    let h = start().await;
    let (url, seen) = receiver().await;
    h.sa.signed(
        Method::POST,
        "/webhooks",
        &json!({ "url": url, "events": ["policy.approval.resolved", "wallet.transfer.rejected"] }),
    )
    .await
    .ok();
    let officer_id = h.emulator.bootstrap().officers[1].user_id.clone();
    let w = wallet(&h, &["deny"]).await;
    policy(
        &h.sa,
        sign_policy(
            json!({ "kind": "AlwaysTrigger" }),
            approvals_by(&[&officer_id], 1),
            json!({ "walletTags": { "hasAny": ["deny"] } }),
        ),
    )
    .await;
    let t = transfer(&h, &w, RECIPIENT, 2).await;
    let approval_id = t["approvalId"].as_str().unwrap().to_owned();
    // Officer 0 is not in the group: neither approval nor denial counts.
    let outsider = decide(&officer(&h, 0), &approval_id, "Denied").await;
    assert_eq!(outsider.status, StatusCode::FORBIDDEN, "{}", outsider.text);
    let denied = decide(&officer(&h, 1), &approval_id, "Denied").await.ok();
    assert_eq!(denied["status"], "Denied");
    let resolved = wait_for_event(&seen, |e| e["kind"] == "policy.approval.resolved").await;
    assert_eq!(resolved["data"]["approval"]["status"], "Denied");
    let rejected = wait_for_event(&seen, |e| {
        e["kind"] == "wallet.transfer.rejected" && e["data"]["transferRequest"]["id"] == t["id"]
    })
    .await;
    let reason = rejected["data"]["transferRequest"]["reason"]
        .as_str()
        .unwrap();
    assert!(
        reason.contains(&approval_id) && reason.contains("Denied in test"),
        "{reason}"
    );
    let stored =
        h.sa.get(&format!("/wallets/{w}/transfers/{}", id(&t)))
            .await
            .ok();
    assert_eq!(stored["status"], "Rejected");
    assert!(
        stored.get("txHash").is_none(),
        "a rejected transfer never broadcasts"
    );
}

#[tokio::test]
async fn an_expired_change_request_is_rejected_and_changes_nothing() {
    let h = start().await;
    let officer_id = h.emulator.bootstrap().officers[0].user_id.clone();
    let body = sign_policy(
        json!({ "kind": "TransactionAmountLimit", "configuration": { "limit": 100, "currency": "USD" } }),
        json!({ "kind": "Block" }),
        json!({}),
    );
    let target = policy(&h.sa, body.clone()).await;
    let mut action = approvals_by(&[&officer_id], 1);
    action["autoRejectTimeout"] = json!(1);
    policy(
        &h.sa,
        json!({ "name": "gate", "activityKind": "Policies:Modify", "rule": { "kind": "AlwaysTrigger" }, "action": action }),
    )
    .await;
    let mut raised = body.clone();
    raised["rule"]["configuration"]["limit"] = json!(1000);
    let path = format!("/v2/policies/{}", id(&target));
    let held = h.sa.signed(Method::PUT, &path, &raised).await;
    assert_eq!(held.status, StatusCode::ACCEPTED);
    let approval_id = held.json()["approvalId"].as_str().unwrap().to_owned();

    h.control(Method::POST, "/clock/advance", json!({ "seconds": 61 }))
        .await;
    let approval =
        h.sa.get(&format!("/v2/policy-approvals/{approval_id}"))
            .await
            .ok();
    assert_eq!(approval["status"], "Expired");
    assert_eq!(approval["activity"]["changeRequest"]["status"], "Rejected");
    let policy_now = h.sa.get(&path).await.ok();
    assert_eq!(
        policy_now["rule"], body["rule"],
        "an expired change is not applied"
    );
    assert!(policy_now.get("pendingChangeRequest").is_none());
    // The limit still applies, and a new change may be requested.
    let w = wallet(&h, &[]).await;
    assert_eq!(transfer(&h, &w, RECIPIENT, 101).await["status"], "Rejected");
    assert_eq!(
        h.sa.signed(Method::PUT, &path, &raised).await.status,
        StatusCode::ACCEPTED
    );
}
