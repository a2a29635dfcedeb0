//! The activity read model through the use cases (issue 17): deposits the emulator reports by
//! webhook become rows written by the receiver; a page of `/v1/activity` then reads no Dfns at
//! all, and `/v1/account` reads only the balances. Dfns reads are counted at the emulator: every
//! read the test forbids answers 503 and is counted in its stats.

use platform::onboarding;
use platform::reporting::{self, activity::Cursor};
use platform::testing::{TestEnv, TestOptions};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{client_id, eventually};

const FUNDER: &str = "0x8617e340b3d01fa5f11f306f4090fd50e238070d";

/// 503s the emulator has answered so far (injected faults hit).
async fn faults_hit(env: &TestEnv) -> u64 {
    let stats = env.control(Method::GET, "stats", Value::Null).await;
    stats["faults"]["answered"]["503"].as_u64().unwrap_or(0)
}

async fn fail_reads(env: &TestEnv, pattern: &str) {
    env.control(
        Method::POST,
        "faults",
        json!({ "pathPattern": pattern, "method": "GET", "status": 503, "rate": 1.0 }),
    )
    .await;
}

#[tokio::test]
async fn an_activity_page_reads_no_dfns_and_the_account_only_its_balances() {
    // Velocity limits: the account view also works out each limit's use in its window.
    let tier = platform::settings::default_tiers()["standard"];
    let env = TestEnv::start(TestOptions {
        tier,
        ..TestOptions::default()
    })
    .await;
    env.control(
        Method::PUT,
        "prices",
        json!({ "prices": { "ETH": "3000.00" } }),
    )
    .await;
    let client = client_id("reader");
    onboarding::open_account(&env.app, &client, "open")
        .await
        .unwrap();
    let wallet = env.app.store().list_wallets(&client).await.unwrap()[0]
        .wallet_id
        .to_string();
    for i in 1..=25 {
        env.control(
            Method::POST,
            "deposits",
            json!({ "walletId": wallet, "kind": "Native", "amount": format!("{i}000"), "from": FUNDER }),
        )
        .await;
    }
    // The receiver writes each deposit's row as its webhook arrives.
    let deposits = eventually(20, || async {
        let page = reporting::activity(&env.app, &client, None, 200)
            .await
            .ok()?;
        let deposits: Vec<String> = page
            .items
            .iter()
            .filter(|i| i.category == reporting::activity::ActivityCategory::Deposit)
            .filter_map(|i| i.amount.clone())
            .collect();
        (deposits.len() == 25).then_some(deposits)
    })
    .await
    .expect("every deposit's row written by the webhook receiver");
    assert_eq!(
        deposits.first().map(String::as_str),
        Some("25000"),
        "newest first"
    );

    // From here every Dfns read fails, and is counted.
    fail_reads(&env, "/**").await;
    let before = faults_hit(&env).await;
    let mut cursor: Option<Cursor> = None;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = reporting::activity(&env.app, &client, cursor.as_ref(), 10)
            .await
            .expect("a page without Dfns");
        pages += 1;
        seen.extend(page.items.iter().map(|i| i.id.clone()));
        cursor = page.next_cursor.map(|c| Cursor::decode(&c).unwrap());
        if cursor.is_none() {
            break;
        }
    }
    // 25 deposits and onboarding's governance rows (account, wallet, policies).
    assert!(pages >= 3, "{pages} pages");
    assert_eq!(
        seen.iter().filter(|id| id.starts_with("chain:")).count(),
        25
    );
    assert!(seen.iter().any(|id| id.starts_with("audit:")));
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no row served twice");
    assert_eq!(
        faults_hit(&env).await,
        before,
        "no Dfns read for activity pages"
    );

    // The account: policies and limit usage from DynamoDB, only the balances from Dfns.
    env.control(Method::DELETE, "faults", Value::Null).await;
    for pattern in [
        "/v2/policies/**",
        "/wallets/*/transfers/**",
        "/wallets/*/history/**",
        "/wallets/*/transfers",
        "/wallets/*/history",
    ] {
        fail_reads(&env, pattern).await;
    }
    let before = faults_hit(&env).await;
    let account = reporting::account(&env.app, &client)
        .await
        .expect("the account without policy or transfer reads");
    assert_eq!(
        faults_hit(&env).await,
        before,
        "no Dfns read but the balances"
    );
    assert_eq!(account.wallets[0].balances[0].amount, "325000");
    assert!(
        !account.limits.is_empty(),
        "the tier's limits, from the kept policies"
    );
    assert!(account.whitelist_policy.is_some());
    // The balances are its one Dfns read.
    fail_reads(&env, "/wallets/*/assets").await;
    assert!(reporting::account(&env.app, &client).await.is_err());
    // (The Dfns client retries a 503: several hits, all of them the balances read.)
    assert!(faults_hit(&env).await > before);
}
