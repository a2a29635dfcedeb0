//! `pending` and `show` with the platform's context (issue 18), against the Dfns emulator and the
//! platform's table on the stand-ins: a destination request reads with its client, label and
//! exact change on its network, and `show` adds the client's activity with that address; a
//! withdrawal held by a limit reads with its amount in the asset and in USD.
//! Run with `cargo xtask exec -- cargo test -p compliance context_tests`.

use std::time::Duration;

use domain::ClientId;
use platform::destinations::{self, DestinationInput};
use platform::settings::{PolicyActionSetting, Tier};
use platform::testing::{TestEnv, TestOptions};
use platform::{onboarding, withdrawals};
use serde_json::json;
use time::OffsetDateTime;

use crate::{InContext, pending_in_context, show};

const ADDRESS: &str = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";

fn client_id(name: &str) -> ClientId {
    ClientId::parse(&format!(
        "{name}-{}",
        ulid::Ulid::new().to_string().to_lowercase()
    ))
    .unwrap()
}

async fn opened(env: &TestEnv, name: &str) -> ClientId {
    let client = client_id(name);
    onboarding::open_account(&env.app, &client, "open")
        .await
        .unwrap();
    client
}

fn add(address: &str, label: &str) -> DestinationInput {
    DestinationInput {
        network: "EthereumSepolia".into(),
        address: address.into(),
        label: label.into(),
        action: "add".into(),
    }
}

/// The pending approval whose platform context is `subject_id`, once it is listed.
async fn listed(env: &TestEnv, subject_id: &str) -> InContext {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let entries =
            pending_in_context(&env.officer(0), env.app.store(), OffsetDateTime::now_utc())
                .await
                .unwrap();
        if let Some(found) = entries.into_iter().find(|e| {
            e.platform
                .as_ref()
                .is_some_and(|c| c.subject_id == subject_id)
        }) {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{subject_id} never listed with its context"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_destination_request_reads_with_its_client_label_and_change_and_show_adds_the_history()
 {
    let env = TestEnv::start(TestOptions {
        policies_modify: true,
        ..TestOptions::default()
    })
    .await;
    let client = opened(&env, "ctx").await;
    let request =
        destinations::create_request(&env.app, &client, &add(ADDRESS, "Cold storage"), "r1")
            .await
            .unwrap();
    // Another address of the client's: not this destination's history.
    destinations::create_request(
        &env.app,
        &client,
        &add("0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359", "Other"),
        "r2",
    )
    .await
    .unwrap();
    let entry = listed(&env, &request.id.to_string()).await;
    let context = entry.platform.as_ref().unwrap();
    assert_eq!(context.client_id, client.to_string());
    assert_eq!(context.subject, "destination_request");
    assert_eq!(context.state, "PendingApproval");
    assert_eq!(context.requested_by.kind, "client");
    assert_eq!(context.requested_by.id, client.to_string());
    assert_eq!(context.label.as_deref(), Some("Cold storage"));
    let change = context.change.as_ref().expect("the change");
    assert_eq!(change.action, "add");
    assert_eq!(change.network, "EthereumSepolia");
    assert_eq!(change.address, ADDRESS);
    // Dfns' side beside it.
    assert_eq!(entry.dfns.activity, "Policies:Modify");
    assert!(
        entry
            .dfns
            .summary
            .contains(&format!("add destination {ADDRESS}")),
        "{entry}"
    );
    // Text and JSON say the same.
    let text = entry.to_string();
    for needle in [
        format!("client {client}"),
        format!("destination request {}", request.id),
        "label: Cold storage".to_owned(),
        format!("change: add {ADDRESS} on EthereumSepolia"),
        format!(
            "expires {}",
            context.expires_at.as_deref().unwrap_or("never")
        ),
    ] {
        assert!(text.contains(&needle), "`{needle}` not in:\n{text}");
    }
    let value = serde_json::to_value(&entry).unwrap();
    assert_eq!(value["platform"]["clientId"], client.to_string(), "{value}");
    assert_eq!(
        value["platform"]["change"]["network"], "EthereumSepolia",
        "{value}"
    );
    assert_eq!(value["dfns"]["approvalId"], context.approval_id, "{value}");

    // `show`: the same, and the client's activity with that address.
    let shown = show(
        &env.officer(0),
        env.app.store(),
        &dfns_client::ApprovalId::new(context.approval_id.as_str()),
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    assert_eq!(
        shown.approval.platform.as_ref(),
        Some(context)
            .map(|c| {
                // Waited may have grown by a second between the two reads.
                let mut c = c.clone();
                c.waited_seconds = shown.approval.platform.as_ref().unwrap().waited_seconds;
                c
            })
            .as_ref()
    );
    assert_eq!(shown.recent_activity.len(), 1, "{shown}");
    assert_eq!(shown.recent_activity[0].kind, "destination_request");
    assert_eq!(shown.recent_activity[0].id, request.id.to_string());
    assert!(
        shown
            .to_string()
            .contains("recent activity with this destination"),
        "{shown}"
    );
    let value = serde_json::to_value(&shown).unwrap();
    assert_eq!(
        value["recentActivity"][0]["state"], "PendingApproval",
        "{value}"
    );
    assert_eq!(
        value["platform"]["subjectId"],
        request.id.to_string(),
        "{value}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_withdrawal_reads_with_its_amount_in_the_asset_and_in_usd() {
    let env = TestEnv::start(TestOptions {
        whitelist_action: PolicyActionSetting::RequestApproval,
        tier: Tier {
            amount_limit_usd: Some(1000),
            ..Tier::default()
        },
        ..TestOptions::default()
    })
    .await;
    let client = opened(&env, "held").await;
    // Without policy approval the add is applied at once: an approved destination.
    destinations::create_request(&env.app, &client, &add(ADDRESS, "My cold wallet"), "d1")
        .await
        .unwrap();
    let wallet = env.app.store().list_wallets(&client).await.unwrap()[0]
        .wallet_id
        .clone();
    env.control(
        reqwest::Method::POST,
        "deposits",
        json!({"walletId": wallet.as_str(), "kind": "Native", "amount": "2000000000000000000"}),
    )
    .await;
    env.control(
        reqwest::Method::PUT,
        "prices",
        json!({"prices": {"ETH": "3000.00"}}),
    )
    .await;
    let held = withdrawals::create(
        &env.app,
        &platform::trading::TradingConfig::default(),
        &client,
        &withdrawals::WithdrawalInput {
            network: "EthereumSepolia".into(),
            to: ADDRESS.into(),
            asset: "native".into(),
            amount: "500000000000000000".into(),
        },
        "w1",
        None,
    )
    .await
    .unwrap();
    let entry = listed(&env, &held.id.to_string()).await;
    let context = entry.platform.as_ref().unwrap();
    assert_eq!(context.subject, "withdrawal");
    assert_eq!(context.client_id, client.to_string());
    let transfer = context.transfer.as_ref().expect("the transfer");
    assert_eq!(transfer.amount, "500000000000000000");
    assert_eq!(transfer.network, "EthereumSepolia");
    assert_eq!(transfer.usd.as_deref(), Some("1500"), "{transfer:?}");
    assert_eq!(
        transfer.destination_label.as_deref(),
        Some("My cold wallet")
    );
    let text = entry.to_string();
    assert!(text.contains("= USD 1500"), "{text}");
    assert!(text.contains(&format!("withdrawal {}", held.id)), "{text}");

    let shown = show(
        &env.officer(0),
        env.app.store(),
        &dfns_client::ApprovalId::new(context.approval_id.as_str()),
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    let kinds: Vec<&str> = shown.recent_activity.iter().map(|l| l.kind).collect();
    assert_eq!(kinds, ["withdrawal", "destination_request"], "{shown}");
    assert_eq!(shown.recent_activity[0].id, held.id.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_desk_order_reads_with_its_amount_in_usd_and_its_exchange() {
    use platform::trading::orders::{self, OrderInput};
    use platform::trading::{Executor, TradingConfig, authorizations};
    let env = TestEnv::start(TestOptions {
        webhooks: false,
        whitelist_action: PolicyActionSetting::RequestApproval,
        tier: Tier {
            amount_limit_usd: Some(1000),
            ..Tier::default()
        },
        ..TestOptions::default()
    })
    .await;
    let client = opened(&env, "desk-held").await;
    let wallet = env.app.store().list_wallets(&client).await.unwrap()[0]
        .wallet_id
        .clone();
    env.control(
        reqwest::Method::POST,
        "deposits",
        json!({"walletId": wallet.as_str(), "kind": "Native", "amount": "2000000000000000000"}),
    )
    .await;
    env.control(
        reqwest::Method::PUT,
        "prices",
        json!({"prices": {"ETH": "3000.00"}}),
    )
    .await;
    let config = TradingConfig::default();
    authorizations::authorize(&env.app, &config, &client, "Kraken", "authorize")
        .await
        .unwrap();
    // 0.5 ETH = 1500 USD, above the 1000 USD per-transfer limit: Dfns holds it for an officer.
    let order = orders::create_order(
        &env.app,
        &config,
        "desk-1",
        &OrderInput {
            client_id: client.to_string(),
            exchange: "Kraken".into(),
            asset: "ETH".into(),
            amount: "500000000000000000".into(),
            execute_at: None,
            network: None,
        },
        "create",
        None,
    )
    .await
    .unwrap();
    Executor::new(&env.app, &config)
        .run(OffsetDateTime::now_utc() + time::Duration::seconds(1))
        .await
        .unwrap();

    let entry = listed(&env, &order.id.to_string()).await;
    let context = entry.platform.as_ref().unwrap();
    assert_eq!(context.subject, "order");
    assert_eq!(context.client_id, client.to_string());
    let transfer = context.transfer.as_ref().expect("the transfer");
    assert_eq!(transfer.amount, "500000000000000000");
    assert_eq!(transfer.usd.as_deref(), Some("1500"), "{transfer:?}");
    let text = entry.to_string();
    assert!(text.contains("= USD 1500"), "{text}");
    assert!(text.contains(&format!("order {}", order.id)), "{text}");
    assert!(text.contains("desk-1"), "who asked: {text}");
}
