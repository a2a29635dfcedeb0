//! The reporting routes through the function's handler, against DynamoDB Local and the Dfns
//! emulator (run through `cargo xtask test`, or `cargo xtask exec -- cargo test -p reporting`).

mod audit_checkpoint;
mod common;
mod exports;

use std::collections::HashSet;

use common::{Harness, Policies, body_text};
use lambda_http::http::{StatusCode, header};
use serde_json::{Value, json};

const DESK: &str = "0xb282dc7cde21717f18337a596e91ded00b79b25f";
const OTHER: &str = "0x52908400098527886e0f7030069857d2e4169ee7";
const FUNDER: &str = "0x8617e340b3d01fa5f11f306f4090fd50e238070d";
const TRICKY_LABEL: &str = "Desk, \"main\"\nline two";

fn items(page: &Value) -> &Vec<Value> {
    page["items"].as_array().expect("items")
}

fn error_code(response: &lambda_http::Response<lambda_http::Body>) -> String {
    let body: Value = serde_json::from_str(&body_text(response)).expect("JSON error body");
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn identity_comes_from_the_token_and_no_account_means_account_not_found() {
    let h = Harness::start().await;

    let response = h.get(None, "/v1/account").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&response), "unauthorized");

    let response = h.get(Some("not-a-jwt"), "/v1/activity").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let operator = h.operator_token("desk-1");
    assert_eq!(
        h.get(Some(&operator), "/v1/account").await.status(),
        StatusCode::FORBIDDEN
    );

    let nobody = h.token("nobody");
    for route in ["/v1/account", "/v1/activity", "/v1/activity?format=csv"] {
        let response = h.get(Some(&nobody), route).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{route}");
        let body: Value = serde_json::from_str(&body_text(&response)).unwrap();
        assert_eq!(body["error"]["code"], "account_not_found");
        assert!(
            body["error"]["requestId"]
                .as_str()
                .is_some_and(|id| !id.is_empty())
        );
    }
    // Nothing recorded yet: empty, verifying trail and no notifications.
    let audit = h.get_json(&nobody, "/v1/audit").await;
    assert_eq!(audit["entries"], json!([]));
    assert_eq!(audit["verification"]["verified"], true);
    let notifications = h.get_json(&nobody, "/v1/notifications").await;
    assert_eq!(notifications["items"], json!([]));

    assert_eq!(
        h.get(Some(&nobody), "/v1/nowhere").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn account_shows_wallets_balances_and_pending_requests() {
    let h = Harness::start().await;
    h.set_prices(json!({ "ETH": "3000.00" })).await;
    let alice = h.open_account("alice", Policies::None).await;
    h.deposit(&alice.wallet_id, "5000000000000000000", FUNDER)
        .await;
    let approved = h.approve_destination(&alice, DESK, "desk").await;
    let queued = h.queue_destination(&alice, OTHER, "later").await;

    let account = h.get_json(&h.token("alice"), "/v1/account").await;

    assert_eq!(account["clientId"], "alice");
    assert_eq!(account["tier"], "standard");
    let wallets = account["wallets"].as_array().unwrap();
    assert_eq!(wallets.len(), 1);
    assert_eq!(wallets[0]["walletId"], alice.wallet_id);
    assert_eq!(wallets[0]["address"], alice.address);
    assert_eq!(wallets[0]["network"], "EthereumSepolia");
    let eth = &wallets[0]["balances"].as_array().unwrap()[0];
    assert_eq!(eth["kind"], "Native");
    assert_eq!(eth["symbol"], "ETH");
    assert_eq!(eth["decimals"], 18);
    assert_eq!(eth["amount"], "5000000000000000000");
    assert_eq!(eth["quotes"]["USD"].as_f64(), Some(3000.0));

    let pending = account["pendingRequests"].as_array().unwrap();
    assert_eq!(
        pending.len(),
        1,
        "the approved request is no longer pending"
    );
    assert_eq!(pending[0]["id"], queued.to_string());
    assert_eq!(pending[0]["state"], "Queued");
    assert_eq!(pending[0]["label"], "later");
    assert_ne!(pending[0]["id"], approved.to_string());
    assert_eq!(account["tradingAuthorizations"], json!([]));
    // No whitelist policy recorded: nothing is shown as approved, whatever the records say.
    assert_eq!(account["approvedDestinations"], json!([]));
    assert_eq!(account["limits"], json!([]));
}

#[tokio::test]
async fn account_reads_approved_destinations_and_limits_from_the_live_policies() {
    let mut h = Harness::start().await;
    h.govern_policy_changes().await;
    let alice = h.open_account("alice", Policies::Created).await;
    let whitelist = alice.whitelist.clone().unwrap();
    let approved = h.approve_destination(&alice, DESK, TRICKY_LABEL).await;
    let token = h.token("alice");

    let account = h.get_json(&token, "/v1/account").await;
    let destinations = account["approvedDestinations"].as_array().unwrap();
    assert_eq!(destinations.len(), 1, "{account:#}");
    assert_eq!(destinations[0]["address"], DESK);
    assert_eq!(destinations[0]["label"], TRICKY_LABEL);
    assert_eq!(destinations[0]["network"], "EthereumSepolia");
    assert_eq!(destinations[0]["requestId"], approved.to_string());
    assert_eq!(account["whitelistPolicy"]["policyId"], whitelist.as_str());
    assert_eq!(account["whitelistPolicy"]["action"], "RequestApproval");
    // Per network: the wallet's own whitelist and what it allows.
    let whitelists = account["whitelists"].as_array().unwrap();
    assert_eq!(whitelists.len(), 1, "{account:#}");
    assert_eq!(whitelists[0]["network"], "EthereumSepolia");
    assert_eq!(whitelists[0]["walletId"], account["wallets"][0]["walletId"]);
    assert_eq!(whitelists[0]["policyId"], whitelist.as_str());
    assert_eq!(
        whitelists[0]["approvedDestinations"],
        account["approvedDestinations"]
    );
    let limits = account["limits"].as_array().unwrap();
    assert_eq!(limits.len(), 1);
    assert_eq!(limits[0]["kind"], "TransactionAmountLimit");
    assert_eq!(limits[0]["limit"], 10_000);
    assert_eq!(limits[0]["currency"], "USD");
    assert_eq!(limits[0]["action"], "Block");

    // The policies are read from the copies the platform keeps (no Dfns call per policy): a
    // change made at Dfns behind the platform's back shows once they are refreshed (the
    // reconciler's pass, or the platform's next change of that policy), from the policy itself,
    // though the store still holds DESK's request as approved.
    h.set_whitelist(&whitelist, vec![OTHER.to_owned()]).await;
    let account = h.get_json(&token, "/v1/account").await;
    assert_eq!(
        account["approvedDestinations"][0]["address"], DESK,
        "the kept copy"
    );
    platform::reporting::read_model::refresh_client_policies(&h.app, &alice.client)
        .await
        .unwrap();
    let account = h.get_json(&token, "/v1/account").await;
    // Listed on the Sepolia wallet's own whitelist: a Sepolia destination, without a label.
    assert_eq!(
        account["approvedDestinations"],
        json!([{ "address": OTHER, "network": "EthereumSepolia" }])
    );

    // Another client's policy, even if recorded against alice, is not shown to her.
    let bob = h.open_account("bob", Policies::Created).await;
    h.app
        .store()
        .record_client_policy(
            &alice.client,
            "stray",
            bob.whitelist.as_ref().unwrap().as_str(),
        )
        .await
        .unwrap();
    let account = h.get_json(&token, "/v1/account").await;
    assert_eq!(account["whitelistPolicy"]["policyId"], whitelist.as_str());
    assert_eq!(
        account["approvedDestinations"],
        json!([{ "address": OTHER, "network": "EthereumSepolia" }])
    );
}

#[tokio::test]
async fn activity_merges_deposit_transfer_and_destination_change_and_exports_them_as_csv() {
    let mut h = Harness::start().await;
    h.govern_policy_changes().await;
    h.set_prices(json!({ "ETH": "3000.00" })).await;
    let alice = h.open_account("alice", Policies::Created).await;
    let deposit = h
        .deposit(&alice.wallet_id, "5000000000000000000", FUNDER)
        .await;
    h.approve_destination(&alice, DESK, TRICKY_LABEL).await;
    let transfer = h.send(&alice, DESK, "1000000000000000000").await;
    h.sync_activity(&alice.client).await;
    // A second backfill writes nothing new (same keys): no row appears twice below.
    h.sync_activity(&alice.client).await;

    let token = h.token("alice");
    let page = h.get_json(&token, "/v1/activity?limit=200").await;
    let rows = items(&page);
    assert!(page.get("nextCursor").is_none(), "everything fits one page");

    let deposit_row = rows
        .iter()
        .find(|r| r["category"] == "deposit")
        .expect("the deposit is listed");
    assert_eq!(deposit_row["amount"], "5000000000000000000");
    assert_eq!(deposit_row["from"], FUNDER);
    assert_eq!(deposit_row["txHash"], deposit["txHash"]);
    assert_eq!(deposit_row["asset"], "ETH");

    let transfer_rows: Vec<&Value> = rows
        .iter()
        .filter(|r| r["category"] == "transfer")
        .collect();
    assert_eq!(transfer_rows.len(), 1);
    let transfer_row = transfer_rows[0];
    assert_eq!(transfer_row["reference"], transfer.id.as_str());
    assert_eq!(transfer_row["status"], "Confirmed");
    assert_eq!(transfer_row["amount"], "1000000000000000000");
    assert_eq!(transfer_row["to"], DESK);
    assert_eq!(transfer_row["label"], TRICKY_LABEL);
    // Its on-chain confirmation is the same movement: not listed a second time.
    assert!(
        !rows.iter().any(|r| r["category"] == "withdrawal"),
        "{rows:#?}"
    );

    let approval_row = rows
        .iter()
        .find(|r| r["kind"] == "destination_request.approved")
        .expect("the destination approval is listed");
    assert_eq!(approval_row["category"], "governance");
    assert_eq!(approval_row["to"], DESK);
    assert_eq!(approval_row["label"], TRICKY_LABEL);
    assert!(
        approval_row["actor"]
            .as_str()
            .unwrap()
            .starts_with("compliance:")
    );

    // Newest first.
    let times: Vec<time::OffsetDateTime> = rows
        .iter()
        .map(|r| {
            time::OffsetDateTime::parse(
                r["occurredAt"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap()
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    // Paging through with small pages gives the same rows, each once, in the same order.
    let all_ids: Vec<Value> = rows.iter().map(|r| r["id"].clone()).collect();
    let mut paged = Vec::new();
    let mut next = Some("/v1/activity?limit=2".to_owned());
    while let Some(route) = next.take() {
        let page = h.get_json(&token, &route).await;
        assert!(items(&page).len() <= 2);
        paged.extend(items(&page).iter().map(|r| r["id"].clone()));
        next = page["nextCursor"]
            .as_str()
            .map(|cursor| format!("/v1/activity?limit=2&cursor={cursor}"));
    }
    assert_eq!(paged, all_ids);

    // CSV: same rows, a header, one record each, the label intact.
    let response = h.get(Some(&token), "/v1/activity?format=csv").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = body_text(&response);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header_row = reader.headers().unwrap().clone();
    let column = |name: &str| header_row.iter().position(|h| h == name).unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), rows.len(), "one record per activity row");
    let csv_ids: Vec<&str> = records.iter().map(|r| &r[column("id")]).collect();
    let json_ids: Vec<&str> = all_ids.iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(csv_ids, json_ids);
    let by_category = |category: &str| {
        records
            .iter()
            .filter(|r| &r[column("category")] == category)
            .collect::<Vec<_>>()
    };
    assert_eq!(by_category("deposit").len(), 1);
    assert_eq!(
        &by_category("deposit")[0][column("amount")],
        "5000000000000000000"
    );
    assert_eq!(by_category("transfer").len(), 1);
    assert_eq!(&by_category("transfer")[0][column("label")], TRICKY_LABEL);
    assert!(
        records
            .iter()
            .any(|r| &r[column("kind")] == "destination_request.approved")
    );
    // A paged export: the first rows and where the rest start.
    let response = h.get(Some(&token), "/v1/activity?format=csv&limit=2").await;
    assert_eq!(response.status(), StatusCode::OK);
    let cursor = response.headers()[crate::NEXT_CURSOR_HEADER]
        .to_str()
        .unwrap()
        .to_owned();
    let text = body_text(&response);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let first: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[column("id")].to_owned())
        .collect();
    assert_eq!(first, csv_ids[..2]);
    let rest = h
        .get_json(&token, &format!("/v1/activity?limit=200&cursor={cursor}"))
        .await;
    let rest_ids: Vec<&str> = items(&rest)
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(rest_ids, csv_ids[2..]);
}

#[tokio::test]
async fn a_client_never_sees_another_clients_data() {
    let h = Harness::start().await;
    h.set_prices(json!({ "ETH": "3000.00" })).await;
    let alice = h.open_account("alice", Policies::Created).await;
    let bob = h.open_account("bob", Policies::Created).await;
    let alice_deposit = h
        .deposit(&alice.wallet_id, "7000000000000000000", FUNDER)
        .await;
    h.deposit(&bob.wallet_id, "1000000000000000000", FUNDER)
        .await;
    h.approve_destination(&alice, DESK, "alice's desk").await;
    h.send(&alice, DESK, "1000000000000000000").await;
    h.sync_activity(&alice.client).await;
    h.sync_activity(&bob.client).await;
    h.app
        .store()
        .append_notification(&store::notifications::NewNotification {
            client_id: alice.client.clone(),
            dedup_key: "deposit:alice:1".into(),
            kind: "deposit.received".into(),
            occurred_at: time::OffsetDateTime::now_utc(),
            detail: json!({ "walletId": alice.wallet_id }),
        })
        .await
        .unwrap();

    let bob_token = h.token("bob");
    let alice_marks = [
        alice.wallet_id.as_str(),
        alice.address.as_str(),
        alice_deposit["txHash"].as_str().unwrap(),
        "alice's desk",
        alice.whitelist.as_ref().unwrap().as_str(),
        DESK,
    ];
    for route in [
        "/v1/account",
        "/v1/activity?limit=200",
        "/v1/activity?format=csv",
        "/v1/audit?limit=200",
        "/v1/notifications",
    ] {
        let response = h.get(Some(&bob_token), route).await;
        assert_eq!(response.status(), StatusCode::OK, "{route}");
        let text = body_text(&response);
        for mark in alice_marks {
            assert!(!text.contains(mark), "{route} shows alice's {mark}: {text}");
        }
    }
    let bob_account = h.get_json(&bob_token, "/v1/account").await;
    assert_eq!(bob_account["wallets"][0]["walletId"], bob.wallet_id);
    assert_eq!(
        bob_account["wallets"][0]["balances"][0]["amount"],
        "1000000000000000000"
    );
    assert_eq!(bob_account["approvedDestinations"], json!([]));
    let bob_activity = h.get_json(&bob_token, "/v1/activity").await;
    let wallets: HashSet<&str> = items(&bob_activity)
        .iter()
        .filter_map(|r| r["walletId"].as_str())
        .collect();
    assert_eq!(wallets, HashSet::from([bob.wallet_id.as_str()]));
    let notifications = h.get_json(&bob_token, "/v1/notifications").await;
    assert_eq!(notifications["items"], json!([]));
    // Alice does see her own.
    let alice_notifications = h.get_json(&h.token("alice"), "/v1/notifications").await;
    assert_eq!(items(&alice_notifications).len(), 1);
}

#[tokio::test]
async fn the_audit_trail_pages_verifies_and_names_the_first_tampered_entry() {
    let h = Harness::start().await;
    let alice = h.open_account("alice", Policies::None).await;
    h.approve_destination(&alice, DESK, "desk").await;
    let token = h.token("alice");

    let mut entries = Vec::new();
    let mut next = Some("/v1/audit?limit=2".to_owned());
    while let Some(route) = next.take() {
        let page = h.get_json(&token, &route).await;
        assert_eq!(page["verification"]["verified"], true, "{page:#}");
        entries.extend(page["entries"].as_array().unwrap().iter().cloned());
        next = page["nextCursor"]
            .as_str()
            .map(|cursor| format!("/v1/audit?limit=2&cursor={cursor}"));
    }
    // account.opened, destination created and approved.
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["event"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "account.opened",
            "destination_request.created",
            "destination_request.approved"
        ]
    );
    let seqs: Vec<u64> = entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3]);
    for pair in entries.windows(2) {
        assert_eq!(pair[1]["prevHash"], pair[0]["hash"]);
    }
    let full = h.get_json(&token, "/v1/audit").await;
    assert_eq!(full["verification"]["length"], 3);
    assert_eq!(full["verification"]["headHash"], entries[2]["hash"]);

    // Someone with write access to the table edits entry 2: the trail says so.
    h.app
        .store()
        .client()
        .update_item()
        .table_name(h.app.store().table_name())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("CLIENT#alice".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("AUDIT#EVENT#{:020}", 2)),
        )
        .update_expression("SET body = :b")
        .expression_attribute_values(
            ":b",
            aws_sdk_dynamodb::types::AttributeValue::S(
                entries[1]["body"]
                    .as_str()
                    .unwrap()
                    .replace("\"desk\"", "\"evil\""),
            ),
        )
        .send()
        .await
        .unwrap();
    let tampered = h.get_json(&token, "/v1/audit").await;
    assert_eq!(tampered["verification"]["verified"], false);
    assert_eq!(tampered["verification"]["firstBadSeq"], 2);
    assert_eq!(tampered["verification"]["reason"], "hash_mismatch");

    assert_eq!(
        h.get(Some(&token), "/v1/audit?cursor=abc").await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn notifications_are_newest_first_and_paged() {
    let h = Harness::start().await;
    let alice = h.open_account("alice", Policies::None).await;
    for n in 1..=3 {
        h.app
            .store()
            .append_notification(&store::notifications::NewNotification {
                client_id: alice.client.clone(),
                dedup_key: format!("test:{n}"),
                kind: "destination_request.approved".into(),
                occurred_at: time::OffsetDateTime::now_utc(),
                detail: json!({ "n": n }),
            })
            .await
            .unwrap();
        // Notification ids are ULIDs: a new millisecond keeps their order certain.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let token = h.token("alice");
    let first = h.get_json(&token, "/v1/notifications?limit=2").await;
    let ns: Vec<&Value> = items(&first).iter().map(|i| &i["detail"]["n"]).collect();
    assert_eq!(ns, [&json!(3), &json!(2)]);
    let cursor = first["nextCursor"].as_str().expect("a second page");
    let second = h
        .get_json(
            &token,
            &format!("/v1/notifications?limit=2&cursor={cursor}"),
        )
        .await;
    let ns: Vec<&Value> = items(&second).iter().map(|i| &i["detail"]["n"]).collect();
    assert_eq!(ns, [&json!(1)]);
    assert!(second.get("nextCursor").is_none());
}

#[tokio::test]
async fn bad_query_parameters_are_400_and_change_nothing() {
    let h = Harness::start().await;
    h.open_account("alice", Policies::None).await;
    let token = h.token("alice");
    for route in [
        "/v1/activity?limit=0",
        "/v1/activity?limit=201",
        "/v1/activity?limit=ten",
        "/v1/activity?cursor=zz",
        "/v1/activity?cursor=6e6f7065",
        "/v1/activity?format=xml",
        "/v1/notifications?cursor=not-a-ulid",
        "/v1/audit?limit=-1",
    ] {
        let response = h.get(Some(&token), route).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{route}");
        assert_eq!(error_code(&response), "bad_request", "{route}");
    }
}

/// Every paged route refuses a cursor it did not hand out — wrong alphabet, wrong length, wrong
/// case — with a 400 naming the cursor, never answering some other page.
#[tokio::test]
async fn malformed_cursors_are_400_on_every_paged_route() {
    let h = Harness::start().await;
    let alice = h.open_account("alice", Policies::None).await;
    h.approve_destination(&alice, DESK, "desk").await;
    for n in 1..=3 {
        h.app
            .store()
            .append_notification(&store::notifications::NewNotification {
                client_id: alice.client.clone(),
                dedup_key: format!("cursor-test:{n}"),
                kind: "destination_request.approved".into(),
                occurred_at: time::OffsetDateTime::now_utc(),
                detail: json!({ "n": n }),
            })
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let token = h.token("alice");
    // A real cursor of each route, which pages as before.
    let mut real = Vec::new();
    for route in ["/v1/activity", "/v1/audit", "/v1/notifications"] {
        let page = h.get_json(&token, &format!("{route}?limit=1")).await;
        let cursor = page["nextCursor"]
            .as_str()
            .unwrap_or_else(|| panic!("{route}: a second page"))
            .to_owned();
        h.get_json(&token, &format!("{route}?limit=1&cursor={cursor}"))
            .await;
        real.push((route, cursor));
    }
    let [(_, activity), (_, audit), (_, notification)] = &real[..] else {
        unreachable!()
    };
    let flip_case = |c: &str| {
        if c.chars().any(|ch| ch.is_ascii_lowercase()) {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        }
    };
    let malformed: Vec<(&str, String, &str)> = vec![
        // Activity: lower-case hex of `<nanos>|<id>`.
        ("/v1/activity", flip_case(activity), "wrong case"),
        (
            "/v1/activity",
            activity[..activity.len() - 1].to_owned(),
            "odd length",
        ),
        ("/v1/activity", "3".repeat(2 * 222), "too long"),
        (
            "/v1/activity",
            format!("g{}", &activity[1..]),
            "wrong alphabet",
        ),
        ("/v1/activity", format!("{activity}00"), "not printable"),
        ("/v1/activity", "3331".to_owned(), "no separator"),
        ("/v1/activity", String::new(), "empty"),
        // Audit: 1 to 19 decimal digits.
        ("/v1/audit", format!("{audit}a"), "wrong alphabet"),
        ("/v1/audit", "-1".to_owned(), "sign"),
        ("/v1/audit", "1".repeat(20), "too long"),
        ("/v1/audit", "%201".to_owned(), "space"),
        ("/v1/audit", String::new(), "empty"),
        // Notifications: a ULID in canonical upper case.
        ("/v1/notifications", flip_case(notification), "wrong case"),
        (
            "/v1/notifications",
            notification[..25].to_owned(),
            "too short",
        ),
        ("/v1/notifications", format!("{notification}0"), "too long"),
        (
            "/v1/notifications",
            format!("8{}", &notification[1..]),
            "over 128 bits",
        ),
        (
            "/v1/notifications",
            format!("{}U", &notification[..25]),
            "not Crockford",
        ),
        (
            "/v1/notifications",
            format!("{}-", &notification[..25]),
            "wrong alphabet",
        ),
        ("/v1/notifications", String::new(), "empty"),
    ];
    for (route, cursor, what) in &malformed {
        for query in [
            format!("cursor={cursor}"),
            format!("limit=1&cursor={cursor}"),
        ] {
            let response = h.get(Some(&token), &format!("{route}?{query}")).await;
            let text = body_text(&response);
            assert_eq!(
                response.status(),
                StatusCode::BAD_REQUEST,
                "{route} {what} ({cursor}): {text}"
            );
            assert_eq!(error_code(&response), "bad_request", "{route} {what}");
            assert!(text.contains("cursor"), "{route} {what}: {text}");
        }
    }
    // The CSV export too.
    let response = h
        .get(
            Some(&token),
            &format!("/v1/activity?format=csv&cursor={}", flip_case(activity)),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn dfns_unavailable_is_503_and_throttled_is_429_with_nothing_leaked() {
    let h = Harness::start().await;
    let alice = h.open_account("alice", Policies::None).await;
    h.deposit(&alice.wallet_id, "1", FUNDER).await;
    let token = h.token("alice");

    h.inject_fault("/wallets/*/assets", 503).await;
    let response = h.get(Some(&token), "/v1/account").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = body_text(&response);
    assert_eq!(error_code(&response), "unavailable");
    assert!(!text.contains(&h.emulator.base_url()), "{text}");
    assert!(!text.contains("wa-"), "{text}");
    h.clear_faults().await;

    h.inject_fault("/wallets/*/assets", 429).await;
    let response = h.get(Some(&token), "/v1/account").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error_code(&response), "throttled");
    // The activity is read from the read model: Dfns throttling its history changes nothing.
    h.inject_fault("/wallets/*/history", 429).await;
    h.inject_fault("/wallets/*/transfers", 429).await;
    assert_eq!(
        h.get(Some(&token), "/v1/activity").await.status(),
        StatusCode::OK
    );
    h.clear_faults().await;

    // Once Dfns is back, the account answers again.
    assert_eq!(
        h.get(Some(&token), "/v1/account").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_transfer_held_by_the_whitelist_shows_as_pending() {
    let mut h = Harness::start().await;
    h.govern_policy_changes().await;
    h.set_prices(json!({ "ETH": "3000.00" })).await;
    let alice = h.open_account("alice", Policies::Created).await;
    h.deposit(&alice.wallet_id, "5000000000000000000", FUNDER)
        .await;
    // OTHER was never approved: the whitelist holds the transfer for compliance.
    let held = h.request_transfer(&alice, OTHER, "1000").await;
    assert!(held.approval_id.is_some(), "{held:?}");
    h.sync_activity(&alice.client).await;

    let page = h.get_json(&h.token("alice"), "/v1/activity").await;
    let row = items(&page)
        .iter()
        .find(|r| r["reference"] == held.id.as_str())
        .expect("the held transfer is listed");
    assert_eq!(row["category"], "transfer");
    assert_eq!(row["status"], "Pending");
    assert_eq!(row["to"], OTHER);
    assert_eq!(row["amount"], "1000");
    assert!(row.get("txHash").is_none());
}
