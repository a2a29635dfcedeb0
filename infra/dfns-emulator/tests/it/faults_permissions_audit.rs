//! Fault injection, permissions (docs/dfns.md §9) and the audit log (§6).

use std::time::{Duration, Instant};

use crate::common::{Client, Harness};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn injected_429_carries_retry_after_and_is_repeatable_with_a_seed() {
    let h = Harness::start().await;
    let wallet = h
        .create_wallet(json!({ "network": "EthereumSepolia" }))
        .await;
    let path = format!("/wallets/{}", wallet["id"].as_str().unwrap());

    h.control(Method::POST, "/faults", json!({ "pathPattern": "/wallets/*", "method": "GET", "status": 429, "rate": 1.0, "retryAfterSeconds": 7 })).await;
    let limited = h.sa.get(&path).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers["retry-after"], "7");
    assert_eq!(limited.json()["error"]["status"], 429);
    // Other routes and methods are untouched.
    assert_eq!(h.sa.get("/wallets").await.status, StatusCode::OK);

    let pattern = async |seed: u64| {
        h.control(Method::DELETE, "/faults", json!({})).await;
        h.control(
            Method::POST,
            "/faults",
            json!({ "pathPattern": "/wallets/*", "status": 503, "rate": 0.5, "seed": seed }),
        )
        .await;
        let mut outcome = Vec::new();
        for _ in 0..24 {
            outcome.push(h.sa.get(&path).await.status.as_u16());
        }
        outcome
    };
    let first = pattern(42).await;
    assert_eq!(first, pattern(42).await, "same seed, same faults");
    assert!(first.contains(&503) && first.contains(&200), "{first:?}");

    h.control(Method::DELETE, "/faults", json!({})).await;
    h.control(
        Method::POST,
        "/faults",
        json!({ "pathPattern": "/wallets/*", "latencyMs": 150, "rate": 1.0 }),
    )
    .await;
    let started = Instant::now();
    assert_eq!(h.sa.get(&path).await.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(150));

    // What was injected, counted (clearing the rules keeps the counts).
    let fifty_fifty = first.iter().filter(|s| **s == 503).count() as u64;
    let counts = h.control(Method::GET, "/stats", json!(null)).await["faults"].clone();
    assert_eq!(counts["answered"]["429"], 1, "{counts}");
    assert_eq!(counts["answered"]["503"], 2 * fifty_fifty, "{counts}");
    assert_eq!(counts["answered"]["500"], 0, "{counts}");
    assert_eq!(counts["delayed"], 1, "{counts}");
}

#[tokio::test]
async fn service_account_has_exactly_the_documented_permissions() {
    let h = Harness::start().await;
    let sa_id = &h.sa.identity.user_id;
    let record =
        h.sa.get(&format!("/auth/service-accounts/{sa_id}"))
            .await
            .ok();
    assert_eq!(record["userInfo"]["userId"], sa_id.as_str());
    assert_eq!(record["userInfo"]["isServiceAccount"], true);
    assert_eq!(
        record["accessTokens"][0]["credId"],
        h.sa.identity.cred_id.as_str()
    );
    let ops: Vec<&str> = record["userInfo"]["permissionAssignments"][0]["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    assert!(ops.contains(&"Wallets:Transfers:Create"));
    assert!(ops.contains(&"Policies:Approvals:Read"));
    assert!(!ops.contains(&"Policies:Approvals:Approve"));
    // Nothing that could take a wallet out of its rules (issue 12).
    assert!(!ops.contains(&"Wallets:Tags:Delete"));
    assert!(!ops.contains(&"Wallets:Update"));

    // The admin reads the same assignment through the permissions endpoints.
    let admin = Client::new(&h.base(), &h.emulator.bootstrap().admin);
    let permission_id = record["userInfo"]["permissionAssignments"][0]["permissionId"]
        .as_str()
        .unwrap();
    let assignments = admin
        .get(&format!("/permissions/{permission_id}/assignments"))
        .await
        .ok();
    assert_eq!(assignments["items"][0]["identityId"], sa_id.as_str());
    let permission = admin
        .get(&format!("/permissions/{permission_id}"))
        .await
        .ok();
    assert_eq!(
        permission["operations"].as_array().unwrap().len(),
        ops.len()
    );

    // Without the permission the service account cannot list permissions, and 403 names it.
    let refused = h.sa.get("/permissions").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.error_message().contains("(Permissions:Read)"));

    // The control API can build a misconfigured org.
    h.control(
        Method::POST,
        "/permissions",
        json!({ "userId": sa_id, "operations": ["Policies:Approvals:Approve"] }),
    )
    .await;
    let record =
        h.sa.get(&format!("/auth/service-accounts/{sa_id}"))
            .await
            .ok();
    assert!(
        record["userInfo"]["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("Policies:Approvals:Approve"))
    );
}

#[tokio::test]
async fn every_consumed_user_action_is_in_the_audit_log() {
    let h = Harness::start().await;
    let start = h.control(Method::GET, "/clock", json!({})).await["now"]
        .as_str()
        .unwrap()
        .to_owned();
    let wallet = h
        .create_wallet(json!({ "network": "EthereumSepolia" }))
        .await;
    let wallet_id = wallet["id"].as_str().unwrap();
    h.sa.signed(
        Method::PUT,
        &format!("/wallets/{wallet_id}/tags"),
        &json!({ "tags": ["x"] }),
    )
    .await
    .ok();
    // A refused (unsigned) call consumes nothing and logs nothing.
    h.sa.send(Method::POST, "/wallets", Some("{}"), None, true)
        .await;
    let end = h
        .control(Method::POST, "/clock/advance", json!({ "seconds": 1 }))
        .await["now"]
        .as_str()
        .unwrap()
        .to_owned();

    let csv =
        h.sa.get(&format!(
            "/auth/action/logs?startTime={start}&endTime={end}"
        ))
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(
        lines[0],
        "Date Performed,Audit Log ID,User ID,Username,Primary Credential ID,Action Path,Summary"
    );
    assert_eq!(lines.len(), 3, "{}", csv.text);
    assert!(
        lines[1].contains(&format!("/wallets/{wallet_id}/tags")),
        "newest first"
    );
    assert!(lines[2].contains(",/wallets,"));

    let id = lines[1].split(',').nth(1).unwrap();
    let entry = h.sa.get(&format!("/auth/action/logs/{id}")).await.ok();
    assert_eq!(entry["userId"], h.sa.identity.user_id.as_str());
    assert_eq!(entry["action"], format!("PUT /wallets/{wallet_id}/tags"));
    assert_eq!(entry["firstFactorCredential"]["kind"], "Key");
    assert!(entry["firstFactorCredential"]["assertion"]["signature"].is_string());

    let missing_range = h.sa.get("/auth/action/logs").await;
    assert_eq!(missing_range.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_org_rate_limit_answers_429_with_retry_after_over_it_and_counts_requests() {
    let h = Harness::start().await;
    let before = h.control(Method::GET, "/stats", json!(null)).await;
    assert_eq!(before["rateLimit"]["limit"], json!(null), "off by default");
    let set = h
        .control(
            Method::PUT,
            "/rate-limit",
            json!({ "requestsPerMinute": 60, "burst": 2 }),
        )
        .await;
    assert_eq!(set, json!({ "requestsPerMinute": 60, "burst": 2 }));
    // Org-wide: two identities share the bucket.
    assert_eq!(h.sa.get("/wallets").await.status, StatusCode::OK);
    let officer_id = h.officer.identity.user_id.clone();
    assert_eq!(
        h.officer
            .get(&format!("/auth/users/{officer_id}"))
            .await
            .status,
        StatusCode::OK
    );
    let limited = h.sa.get("/wallets").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers["retry-after"], "1");
    assert_eq!(limited.json()["error"]["status"], 429);
    // A second later one token is back.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(h.sa.get("/wallets").await.status, StatusCode::OK);
    let stats = h.control(Method::GET, "/stats", json!(null)).await;
    assert_eq!(
        stats["requests"].as_u64().unwrap() - before["requests"].as_u64().unwrap(),
        4
    );
    assert_eq!(stats["rateLimit"]["answered429"], 1, "{stats}");
    h.control(Method::DELETE, "/rate-limit", json!(null)).await;
    for _ in 0..5 {
        assert_eq!(h.sa.get("/wallets").await.status, StatusCode::OK);
    }
}
