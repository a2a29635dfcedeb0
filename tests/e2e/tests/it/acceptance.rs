//! Issue 6's acceptance list, end to end through HTTP against the local stack (every function
//! behind the gateway), the Dfns emulator (policies, approvals, webhooks) and the AWS stand-ins.
//! Run with `cargo xtask test`, or `cargo xtask exec -- cargo test -p e2e`.

use std::collections::BTreeSet;
use std::time::Duration;

use auth::dev_issuer::{DevIssuer, SigningAlgorithm};
use dfns_client::policies::{PoliciesQuery, PolicyStatus};
use dfns_client::wallets::WalletsQuery;
use dfns_client::{DecisionValue, ExternalId, PolicyId, PolicyRule, TransferAsset, WalletId};
use e2e::{Env, EnvOptions, client_id, random_address, sign_webhook, wait_until};
use futures::TryStreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// EIP-55 test vector (mixed case, valid checksum).
const CHECKSUMMED: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

async fn whitelist_addresses(env: &Env, policy_id: &str) -> Vec<String> {
    let policy = env
        .service()
        .get_policy(&PolicyId::new(policy_id))
        .await
        .expect("read the whitelist policy");
    match policy.rule {
        PolicyRule::TransactionRecipientWhitelist { configuration } => configuration.addresses,
        other => panic!("not a whitelist: {other:?}"),
    }
}

/// Adds `address` for `subject` and has an officer approve it; the approved request.
async fn approved_destination(env: &Env, subject: &str, address: &str, label: &str) -> Value {
    let (status, created) = env.request_destination(subject, address, label).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let pending = env
        .wait_for_state(subject, &id, &["PendingApproval", "Approved"])
        .await;
    if pending["state"] == "PendingApproval" {
        env.decide(&pending, DecisionValue::Approved).await;
    }
    env.wait_for_state(subject, &id, &["Approved"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_openings_make_one_wallet_and_one_whitelist_policy() {
    let env = Env::start(EnvOptions::default()).await;
    let alice = client_id("alice");
    let token = env.token(&alice);
    let calls = (0..10).map(|_| env.call(Method::POST, "/v1/accounts", Some(&token), None));
    let answers = futures::future::join_all(calls).await;
    for (status, body) in &answers {
        assert!(
            *status == StatusCode::OK || *status == StatusCode::ACCEPTED,
            "{status} {body}"
        );
    }
    let account = env.open_account(&alice).await;
    assert_eq!(account["status"], "Open");
    let tag = format!("client:{alice}");

    let wallets: Vec<_> = env
        .service()
        .list_wallets(&WalletsQuery::default())
        .try_collect::<Vec<_>>()
        .await
        .expect("list wallets");
    let tagged: Vec<_> = wallets.iter().filter(|w| w.tags.contains(&tag)).collect();
    assert_eq!(tagged.len(), 1, "one wallet carries {tag}");
    assert_eq!(
        account["wallets"][0]["walletId"],
        tagged[0].id.as_str(),
        "the account shows that wallet"
    );

    let policies: Vec<_> = env
        .service()
        .list_policies(&PoliciesQuery {
            status: Some(PolicyStatus::Active),
            ..PoliciesQuery::default()
        })
        .try_collect::<Vec<_>>()
        .await
        .expect("list policies");
    let whitelists: Vec<_> = policies
        .iter()
        .filter(|p| matches!(p.rule, PolicyRule::TransactionRecipientWhitelist { .. }))
        .filter(|p| {
            p.filters
                .as_ref()
                .and_then(|f| f.wallet_id.as_ref())
                .is_some_and(|ids| ids.values == [tagged[0].id.clone()])
        })
        .collect();
    assert_eq!(
        whitelists.len(),
        1,
        "one whitelist policy binds {tag}'s wallet by id"
    );
    assert_eq!(whitelists[0].filters.as_ref().unwrap().wallet_tags, None);
    assert_eq!(
        account["policies"]["whitelist-ethereumsepolia"],
        whitelists[0].id.as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approved_destination_is_listed_and_denied_one_is_not() {
    let env = Env::start(EnvOptions::default()).await;
    let alice = client_id("alice");
    env.open_account(&alice).await;

    let approved_address = random_address();
    let (status, created) = env
        .request_destination(&alice, &approved_address, "Exchange, main")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let pending = env.wait_for_state(&alice, &id, &["PendingApproval"]).await;
    assert!(pending["approvalId"].is_string());
    let (_, account) = env.get("/v1/account", &alice).await;
    assert!(
        account["approvedDestinations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["address"] != approved_address.as_str()),
        "not approved before the decision: {account}"
    );

    env.decide(&pending, DecisionValue::Approved).await;
    let approved = env.wait_for_state(&alice, &id, &["Approved"]).await;
    assert_eq!(approved["address"], approved_address.as_str());
    let (status, account) = env.get("/v1/account", &alice).await;
    assert_eq!(status, StatusCode::OK, "{account}");
    let listed = account["approvedDestinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["address"] == approved_address.as_str())
        .unwrap_or_else(|| panic!("approved destination missing: {account}"))
        .clone();
    assert_eq!(listed["label"], "Exchange, main");

    let denied_address = random_address();
    let (_, created) = env
        .request_destination(&alice, &denied_address, "nope")
        .await;
    let denied_id = created["id"].as_str().unwrap().to_owned();
    let pending = env
        .wait_for_state(&alice, &denied_id, &["PendingApproval"])
        .await;
    env.decide(&pending, DecisionValue::Denied).await;
    env.wait_for_state(&alice, &denied_id, &["Rejected"]).await;
    let (_, account) = env.get("/v1/account", &alice).await;
    let addresses: Vec<&str> = account["approvedDestinations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["address"].as_str())
        .collect();
    assert!(addresses.contains(&approved_address.as_str()));
    assert!(!addresses.contains(&denied_address.as_str()), "{account}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_concurrent_requests_all_end_approved_and_in_the_dfns_policy() {
    let env = Env::start(EnvOptions::default()).await;
    let alice = client_id("alice");
    let account = env.open_account(&alice).await;
    let policy_id = account["policies"]["whitelist-ethereumsepolia"]
        .as_str()
        .unwrap()
        .to_owned();

    let addresses: Vec<String> = (0..5).map(|_| random_address()).collect();
    let created = futures::future::join_all(addresses.iter().enumerate().map(|(i, a)| {
        let label = format!("desk {i}");
        let env = &env;
        let alice = &alice;
        async move { env.request_destination(alice, a, &label).await }
    }))
    .await;
    let ids: Vec<String> = created
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, StatusCode::CREATED, "{body}");
            body["id"].as_str().unwrap().to_owned()
        })
        .collect();

    // An officer decides whatever is pending until all five are approved: one change at a time
    // reaches Dfns, the next is submitted when the previous resolves. An approval decided in an
    // earlier poll stays PendingApproval here until its webhook lands: not decided twice. The
    // webhook receiver cannot submit the next one (it holds no signing credential): the
    // reconciler does, invoked on AWS by the settlement's bus event, here by each poll.
    let decided = std::sync::Mutex::new(BTreeSet::<String>::new());
    let all_approved = wait_until(Duration::from_secs(90), || async {
        let (_, list) = env.get("/v1/destination-requests", &alice).await;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let mine: Vec<&Value> = items
            .iter()
            .filter(|r| ids.iter().any(|id| r["id"] == id.as_str()))
            .collect();
        assert!(
            mine.iter()
                .filter(|r| r["state"] == "PendingApproval")
                .count()
                <= 1,
            "one change pending per client at a time: {list}"
        );
        for request in &mine {
            let pending = request["state"] == "PendingApproval";
            let approval = request["approvalId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if pending && decided.lock().unwrap().insert(approval) {
                env.decide(request, DecisionValue::Approved).await;
            }
            assert!(
                !["Rejected", "Failed", "Cancelled"].contains(&request["state"].as_str().unwrap()),
                "{request}"
            );
        }
        env.stack
            .run_job("reconciler")
            .await
            .expect("reconciler run");
        (mine.len() == 5 && mine.iter().all(|r| r["state"] == "Approved")).then_some(())
    })
    .await;
    assert!(all_approved.is_some(), "not all five approved in time");

    let listed: BTreeSet<String> = whitelist_addresses(&env, &policy_id)
        .await
        .into_iter()
        .collect();
    for address in &addresses {
        assert!(
            listed.contains(address),
            "{address} missing from {listed:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn addresses_are_validated_and_sent_lowercase() {
    let env = Env::start(EnvOptions::default()).await;
    let alice = client_id("alice");
    let account = env.open_account(&alice).await;
    let policy_id = account["policies"]["whitelist-ethereumsepolia"]
        .as_str()
        .unwrap()
        .to_owned();

    let bad_checksum = "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
    let too_short = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea";
    for (network, address) in [
        ("EthereumSepolia", bad_checksum),
        ("EthereumSepolia", too_short),
        ("Dogecoin", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"),
    ] {
        let (status, body) = env
            .post(
                "/v1/destination-requests",
                &alice,
                &json!({"network": network, "address": address, "label": "x", "action": "add"}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{network} {address}: {body}"
        );
        assert_eq!(body["error"]["code"], "bad_request");
        assert!(body["error"]["requestId"].is_string());
    }
    let (_, list) = env.get("/v1/destination-requests", &alice).await;
    assert_eq!(list["items"], json!([]), "nothing stored");
    let policy = env
        .service()
        .get_policy(&PolicyId::new(policy_id.clone()))
        .await
        .unwrap();
    assert!(
        policy.pending_change_request.is_none(),
        "nothing sent to Dfns"
    );

    let approved = approved_destination(&env, &alice, CHECKSUMMED, "checksummed").await;
    let lower = CHECKSUMMED.to_lowercase();
    assert_eq!(approved["address"], lower.as_str(), "stored lowercase");
    let listed = whitelist_addresses(&env, &policy_id).await;
    assert!(listed.contains(&lower), "sent lowercase: {listed:?}");
    assert!(!listed.iter().any(|a| a == CHECKSUMMED));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_clients_request_is_not_found() {
    let env = Env::start(EnvOptions::default()).await;
    let alice = client_id("alice");
    let bob = client_id("bob");
    env.open_account(&alice).await;
    env.open_account(&bob).await;
    // Two queued-or-later requests for alice; cancel needs one still queued, so make the first
    // pending and the second wait behind it.
    let (_, first) = env
        .request_destination(&alice, &random_address(), "one")
        .await;
    env.wait_for_state(&alice, first["id"].as_str().unwrap(), &["PendingApproval"])
        .await;
    let (_, queued) = env
        .request_destination(&alice, &random_address(), "two")
        .await;
    let queued_id = queued["id"].as_str().unwrap().to_owned();
    assert_eq!(queued["state"], "Queued", "{queued}");

    let (_, bobs) = env.get("/v1/destination-requests", &bob).await;
    assert_eq!(
        bobs["items"],
        json!([]),
        "bob sees none of alice's requests"
    );
    let path = format!("/v1/destination-requests/{queued_id}");
    let (status, body) = env
        .call(Method::DELETE, &path, Some(&env.token(&bob)), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // A method the path does not serve is a 405 (with `Allow`), whoever asks.
    let (status, body) = env
        .call(Method::GET, &path, Some(&env.token(&bob)), None)
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(body["error"]["code"], "method_not_allowed");
    let unknown = format!("/v1/destination-requests/{}", ulid::Ulid::new());
    let (status, _) = env
        .call(Method::DELETE, &unknown, Some(&env.token(&bob)), None)
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "same answer as for no request at all"
    );

    let still = env.destination_request(&alice, &queued_id).await.unwrap();
    assert_eq!(still["state"], "Queued", "bob's cancel changed nothing");
    let (status, cancelled) = env
        .call(Method::DELETE, &path, Some(&env.token(&alice)), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["state"], "Cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_tokens_are_refused_with_401() {
    let env = Env::start(EnvOptions::default()).await;
    let alice = client_id("alice");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let spec = || env.stack.token_spec(&alice);

    let valid = env.token(&alice);
    let other_token = env.token(&client_id("mallory"));
    let mut parts: Vec<&str> = valid.split('.').collect();
    let foreign_signature = other_token.rsplit('.').next().unwrap();
    parts[2] = foreign_signature;
    let bad_signature = parts.join(".");
    let stranger =
        DevIssuer::generate(env.stack.base_url.clone(), SigningAlgorithm::Es256).unwrap();
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("bad signature", Some(bad_signature)),
        ("unknown key", Some(stranger.mint(&spec()).unwrap())),
        (
            "wrong issuer",
            Some(
                env.stack
                    .mint(&spec().claim("iss", json!("https://issuer.example/"))),
            ),
        ),
        (
            "wrong audience",
            Some(env.stack.mint(&spec().claim("aud", json!("someone-else")))),
        ),
        (
            "expired",
            Some(
                env.stack
                    .mint(&spec().issued_at(now - 7200).expires_at(now - 3600)),
            ),
        ),
        (
            "not yet valid",
            Some(env.stack.mint(&spec().not_before(now + 3600))),
        ),
    ];
    for (path, method) in [
        ("/v1/accounts", Method::POST),
        ("/v1/account", Method::GET),
        ("/v1/destination-requests", Method::GET),
        ("/v1/activity", Method::GET),
    ] {
        for (name, token) in &cases {
            let (status, body) = env.call(method.clone(), path, token.as_deref(), None).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{name} on {method} {path}: {body}"
            );
            assert_eq!(body["error"]["code"], "unauthorized", "{name}");
        }
    }
    // The same routes accept the valid token (so the 401s above are about the token).
    let (status, body) = env
        .call(Method::GET, "/v1/destination-requests", Some(&valid), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_are_verified_deduplicated_and_forward_only() {
    let env = Env::start(EnvOptions::default()).await;
    let alice = client_id("alice");
    env.open_account(&alice).await;
    let (_, created) = env
        .request_destination(&alice, &random_address(), "hook")
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let pending = env.wait_for_state(&alice, &id, &["PendingApproval"]).await;
    let approval_id = pending["approvalId"].as_str().unwrap().to_owned();

    // What Dfns would send once the approval is decided, forged before any decision.
    let officer = env.officer(0);
    let mut approval = serde_json::to_value(
        officer
            .get_approval(&dfns_client::ApprovalId::new(approval_id.clone()))
            .await
            .unwrap(),
    )
    .unwrap();
    approval["status"] = json!("Approved");
    let event = |id: &str, kind: &str, approval: &Value| {
        serde_json::to_vec(&json!({
            "id": id,
            "kind": kind,
            "date": "2026-01-01T00:00:00.000Z",
            "timestampSent": time::OffsetDateTime::now_utc().unix_timestamp(),
            "data": {"approval": approval},
        }))
        .unwrap()
    };
    let forged = event("wh-forged-1", "policy.approval.resolved", &approval);
    let (status, body) = env
        .deliver_webhook(&forged, &sign_webhook("not-the-secret", &forged))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = env.deliver_webhook(&forged, "sha256=").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let unchanged = env.destination_request(&alice, &id).await.unwrap();
    assert_eq!(
        unchanged["state"], "PendingApproval",
        "a bad signature changes nothing"
    );

    // The real decision, delivered by the emulator.
    env.decide(&pending, DecisionValue::Approved).await;
    env.wait_for_state(&alice, &id, &["Approved"]).await;
    // The state moves first, then the audit line and the notification are written: wait for
    // both before taking the "before" picture (on a busy machine the gap is visible).
    let settled = wait_until(Duration::from_secs(30), || async {
        let (_, audit) = env.get("/v1/audit?limit=100", &alice).await;
        let (_, notes) = env.get("/v1/notifications?limit=100", &alice).await;
        let approved_audited = audit["entries"].as_array().is_some_and(|e| {
            e.iter()
                .any(|e| e.to_string().contains("destination_request.approved"))
        });
        let notified = notes["items"]
            .as_array()
            .is_some_and(|n| n.iter().any(|n| n.to_string().contains(&id)));
        (approved_audited && notified).then_some((audit, notes))
    })
    .await;
    let (audit_before, notes_before) = settled.expect("the approval is audited and notified");

    // The same event delivered twice: applied once.
    let decided = serde_json::to_value(
        officer
            .get_approval(&dfns_client::ApprovalId::new(approval_id.clone()))
            .await
            .unwrap(),
    )
    .unwrap();
    let replay = event("wh-replay-1", "policy.approval.resolved", &decided);
    let signature = sign_webhook(&env.webhook_secret, &replay);
    let (first, first_body) = env.deliver_webhook(&replay, &signature).await;
    let (second, second_body) = env.deliver_webhook(&replay, &signature).await;
    assert_eq!(first, StatusCode::OK, "{first_body}");
    assert_eq!(second, StatusCode::OK, "{second_body}");
    assert_eq!(second_body["outcome"], "duplicate");

    // An older status after the newer one: no move back.
    let mut older = decided.clone();
    older["status"] = json!("Pending");
    older["decisions"] = json!([]);
    let late = event("wh-late-1", "policy.approval.pending", &older);
    let (status, body) = env
        .deliver_webhook(&late, &sign_webhook(&env.webhook_secret, &late))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let after = env.destination_request(&alice, &id).await.unwrap();
    assert_eq!(after["state"], "Approved", "never moved back");
    let (_, audit_after) = env.get("/v1/audit?limit=100", &alice).await;
    let (_, notes_after) = env.get("/v1/notifications?limit=100", &alice).await;
    assert_eq!(
        audit_after["entries"].as_array().unwrap().len(),
        audit_before["entries"].as_array().unwrap().len(),
        "replays add nothing to the audit trail"
    );
    assert_eq!(
        notes_after["items"].as_array().unwrap().len(),
        notes_before["items"].as_array().unwrap().len(),
        "replays notify nobody"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn activity_csv_and_audit_trail_show_everything() {
    let env = Env::start(EnvOptions::default()).await;
    let alice = client_id("alice");
    let account = env.open_account(&alice).await;
    let wallet_id = account["wallets"][0]["walletId"]
        .as_str()
        .unwrap()
        .to_owned();
    let destination = random_address();
    approved_destination(&env, &alice, &destination, "Exchange").await;

    env.control(
        Method::POST,
        "deposits",
        &json!({"walletId": wallet_id, "kind": "Native", "amount": "2000000000000000000"}),
    )
    .await;
    let sent = env
        .service()
        .transfer(
            &WalletId::new(wallet_id.clone()),
            ExternalId::new(format!("e2e-{}", ulid::Ulid::new())),
            TransferAsset::Native {
                to: destination.clone(),
                amount: dfns_client::Amount::parse("500000000000000000").unwrap(),
                memo: None,
                priority: None,
            },
        )
        .await
        .expect("transfer to the approved destination");
    assert!(!sent.is_rejected(), "{:?}", sent.rejection_reason());
    let transfer_id = sent.transfer().id.to_string();

    let activity = wait_until(Duration::from_secs(30), || async {
        let (status, page) = env.get("/v1/activity?limit=100", &alice).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let has = |category: &str| items.iter().any(|i| i["category"] == category);
        let confirmed = items.iter().any(|i| {
            i["category"] == "transfer"
                && i["reference"] == transfer_id.as_str()
                && i["status"] == "Confirmed"
        });
        (has("deposit") && confirmed).then_some(items)
    })
    .await
    .expect("deposit and confirmed transfer in the activity");
    let approval_row = activity
        .iter()
        .find(|i| i["category"] == "governance" && i["kind"] == "destination_request.approved")
        .unwrap_or_else(|| panic!("no approval row: {activity:?}"));
    assert_eq!(approval_row["to"], destination.as_str());
    let times: Vec<&str> = activity
        .iter()
        .map(|i| i["occurredAt"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");

    let response = env
        .http
        .get(env.url("/v1/activity?format=csv"))
        .bearer_auth(env.token(&alice))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().clone();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), activity.len(), "one CSV row per activity item");
    assert!(
        rows.iter().any(|r| &r[column("category")] == "deposit"
            && &r[column("amount")] == "2000000000000000000")
    );
    assert!(
        rows.iter().any(|r| &r[column("category")] == "transfer"
            && &r[column("amount")] == "500000000000000000")
    );
    assert!(
        rows.iter()
            .any(|r| &r[column("kind")] == "destination_request.approved")
    );

    // The activity's deposit row is Dfns' history; the trail's line comes from the deposit's
    // webhook, through the queue and its consumer: wait for it.
    let audit = wait_until(Duration::from_secs(30), || async {
        let (status, audit) = env.get("/v1/audit?limit=100", &alice).await;
        assert_eq!(status, StatusCode::OK, "{audit}");
        let deposited = audit["entries"]
            .as_array()?
            .iter()
            .any(|e| e["event"]["action"] == "deposit.received");
        deposited.then_some(audit)
    })
    .await
    .expect("the deposit's line in the audit trail");
    assert_eq!(audit["verification"]["verified"], true, "{audit}");
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event"]["action"].as_str())
        .collect();
    for expected in [
        "account.opened",
        "wallet.created",
        "policy.created",
        "destination_request.created",
        "destination_request.pending_approval",
        "destination_request.approved",
        "deposit.received",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gateway_serves_openapi_issuer_documents_and_404s_in_the_error_shape() {
    let env = Env::start(EnvOptions::default()).await;
    let (status, doc) = env.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    for (method, path, _) in env.stack.routes() {
        assert!(
            doc["paths"][&path][method.to_lowercase()].is_object(),
            "{method} {path} not in the document"
        );
    }
    let (_, discovery) = env
        .call(Method::GET, "/.well-known/openid-configuration", None, None)
        .await;
    assert_eq!(discovery["issuer"], env.stack.base_url.as_str());
    let (_, jwks) = env
        .call(Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    assert_eq!(jwks["keys"][0]["kid"], env.stack.issuer.key_id());

    let (status, body) = env
        .call(
            Method::GET,
            "/v1/nothing-here",
            Some(&env.token("alice")),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    assert!(body["error"]["requestId"].is_string());
    let (status, body) = env.call(Method::PUT, "/v1/accounts", None, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "no PUT route");
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_scheduler_reconciles_a_decision_whose_webhook_was_lost() {
    let env = Env::start(EnvOptions {
        tick_every: Some(Duration::from_millis(500)),
        ..EnvOptions::default()
    })
    .await;
    let alice = client_id("alice");
    env.open_account(&alice).await;
    // No more webhooks: only the scheduled reconciler can learn of the decision.
    let service = env.service();
    let hooks: Vec<_> = service.list_webhooks().try_collect().await.unwrap();
    for hook in hooks {
        service.delete_webhook(&hook.id).await.unwrap();
    }
    let (_, created) = env
        .request_destination(&alice, &random_address(), "lost")
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let pending = env.wait_for_state(&alice, &id, &["PendingApproval"]).await;
    env.decide(&pending, DecisionValue::Approved).await;
    let approved = env.wait_for_state(&alice, &id, &["Approved"]).await;
    assert_eq!(approved["id"], id.as_str());
}
