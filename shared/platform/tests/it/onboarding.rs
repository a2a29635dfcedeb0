//! Onboarding against the emulator: concurrency and resumption.

use dfns_client::policies::PoliciesQuery;
use dfns_client::{CreateWallet, PolicyRule, PolicyStatus, TransferAsset};
use domain::Network;
use futures::TryStreamExt;
use platform::onboarding::{self, AccountStatus};
use platform::settings::{AmountVelocity, CountVelocity, Tier};
use platform::testing::{TestEnv, TestOptions};
use store::onboarding::StepClaim;
use time::OffsetDateTime;

use crate::client_id;

fn full_tier() -> Tier {
    Tier {
        amount_limit_usd: Some(10_000),
        amount_velocity: Some(AmountVelocity {
            limit_usd: 50_000,
            timeframe_minutes: 1440,
        }),
        count_velocity: Some(CountVelocity {
            limit: 20,
            timeframe_minutes: 60,
        }),
    }
}

async fn dfns_wallets_tagged(env: &TestEnv, tag: &str) -> Vec<dfns_client::Wallet> {
    env.service()
        .list_wallets(&Default::default())
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .into_iter()
        .filter(|w| w.tags.iter().any(|t| t == tag))
        .collect()
}

async fn dfns_policies_named(env: &TestEnv, prefix: &str) -> Vec<dfns_client::Policy> {
    env.service()
        .list_policies(&PoliciesQuery {
            status: Some(PolicyStatus::Active),
            page_size: None,
        })
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.name.starts_with(prefix))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_onboardings_create_one_wallet_per_network_and_one_policy_of_each_kind() {
    let env = TestEnv::start(TestOptions {
        tier: full_tier(),
        ..TestOptions::default()
    })
    .await;
    let client = client_id("concurrent");
    let calls = (0..10).map(|i| {
        let app = env.app.clone();
        let client = client.clone();
        tokio::spawn(
            async move { onboarding::open_account(&app, &client, &format!("req-{i}")).await },
        )
    });
    let results = futures::future::join_all(calls).await;
    for result in &results {
        let account = result.as_ref().unwrap().as_ref().unwrap();
        assert!(account.wallets.len() <= 1);
    }
    let settled = onboarding::open_account(&env.app, &client, "final")
        .await
        .unwrap();
    assert_eq!(settled.status, AccountStatus::Open);
    assert_eq!(settled.wallets.len(), 1);
    assert_eq!(settled.policies.len(), 4, "{:?}", settled.policies);

    let tag = client.wallet_tag();
    let wallets = dfns_wallets_tagged(&env, &tag).await;
    assert_eq!(wallets.len(), 1, "one wallet at Dfns");
    assert_eq!(
        wallets[0].id.as_str(),
        settled.wallets[0].wallet_id.as_str()
    );
    assert_eq!(wallets[0].network.as_str(), "EthereumSepolia");

    let policies = dfns_policies_named(&env, &tag).await;
    assert_eq!(policies.len(), 4, "one policy of each kind at Dfns");
    let mut kinds: Vec<&str> = policies
        .iter()
        .map(|p| match &p.rule {
            PolicyRule::TransactionRecipientWhitelist { .. } => "whitelist",
            PolicyRule::TransactionAmountLimit { .. } => "amount-limit",
            PolicyRule::TransactionAmountVelocity { .. } => "amount-velocity",
            PolicyRule::TransactionCountVelocity { .. } => "count-velocity",
            _ => "other",
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "amount-limit",
            "amount-velocity",
            "count-velocity",
            "whitelist"
        ]
    );
    for policy in &policies {
        let filters = policy.filters.as_ref().expect("filtered");
        assert_eq!(
            filters.wallet_id.as_ref().map(|ids| ids
                .values
                .iter()
                .map(|id| id.as_str())
                .collect::<Vec<_>>()),
            Some(vec![settled.wallets[0].wallet_id.as_str()]),
            "{} binds the client's wallet by id",
            policy.name
        );
        assert_eq!(
            filters.wallet_tags, None,
            "{} not bound by tag",
            policy.name
        );
        assert_eq!(
            settled
                .policies
                .values()
                .filter(|id| *id == policy.id.as_str())
                .count(),
            1
        );
    }
    // One `account.opened` in the trail despite ten calls.
    let trail = env
        .app
        .store()
        .list_audit_events(&client, None, 100)
        .await
        .unwrap();
    let opened = trail
        .entries
        .iter()
        .filter(|e| e.event().unwrap().action.as_str() == "account.opened")
        .count();
    assert_eq!(opened, 1);
}

#[tokio::test]
async fn a_half_finished_onboarding_is_resumed_without_a_second_wallet() {
    let env = TestEnv::start(TestOptions::default()).await;
    let client = client_id("resumed");
    let store = env.app.store();
    // A first attempt created the wallet at Dfns, then died before recording it.
    let mut body = CreateWallet::new(dfns_client::Network::EthereumSepolia);
    body.external_id = Some(onboarding::wallet_external_id(
        &client,
        Network::EthereumSepolia,
    ));
    body.tags = vec![client.wallet_tag()];
    let orphan = env.service().create_wallet(&body).await.unwrap();
    // A deposit reaches it before the mapping exists: kept.
    let early = platform::testing::deposit_delivery(orphan.id.as_str(), "0xbefore-mapping");
    let kept = platform::webhook::receive(&env.app, Some(&env.sign_webhook(&early)), &early, "t")
        .await
        .unwrap();
    assert_eq!(kept, platform::webhook::WebhookOutcome::Kept);
    let long_ago = OffsetDateTime::now_utc() - time::Duration::minutes(5);
    let claim = store
        .claim_onboarding_step(
            &client,
            "wallet:EthereumSepolia",
            "crashed",
            long_ago,
            time::Duration::seconds(30),
        )
        .await
        .unwrap();
    assert_eq!(claim, StepClaim::Claimed { resumed: false });

    let account = onboarding::open_account(&env.app, &client, "resume")
        .await
        .unwrap();
    assert_eq!(account.status, AccountStatus::Open);
    assert_eq!(account.wallets.len(), 1);
    assert_eq!(account.wallets[0].wallet_id.as_str(), orphan.id.as_str());
    // Mapping the wallet attached the kept deposit to the client's trail.
    let trail = store.list_audit_events(&client, None, 100).await.unwrap();
    let deposits: Vec<_> = trail
        .entries
        .iter()
        .map(|e| e.event().unwrap())
        .filter(|e| e.action.as_str() == "deposit.received")
        .map(|e| e.details["txHash"].clone())
        .collect();
    assert_eq!(deposits, vec![serde_json::json!("0xbefore-mapping")]);
    assert!(
        store
            .kept_events_of_wallet(orphan.id.as_str())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        dfns_wallets_tagged(&env, &client.wallet_tag()).await.len(),
        1
    );
    // And again: nothing new.
    let again = onboarding::open_account(&env.app, &client, "again")
        .await
        .unwrap();
    assert_eq!(again, account);
    assert_eq!(
        dfns_policies_named(&env, &client.wallet_tag()).await.len(),
        1
    );
}

#[tokio::test]
async fn a_step_held_by_a_live_call_makes_others_wait_then_answer_opening() {
    let env = TestEnv::start(TestOptions::default()).await;
    let client = client_id("held");
    // Someone holds the wallet step (lease 30 s) and is slow.
    let claim = env
        .app
        .store()
        .claim_onboarding_step(
            &client,
            "wallet:EthereumSepolia",
            "slow",
            OffsetDateTime::now_utc(),
            time::Duration::seconds(30),
        )
        .await
        .unwrap();
    assert_eq!(claim, StepClaim::Claimed { resumed: false });
    let started = std::time::Instant::now();
    let account = onboarding::open_account(&env.app, &client, "impatient")
        .await
        .unwrap();
    assert_eq!(account.status, AccountStatus::Opening);
    assert!(account.wallets.is_empty());
    assert!(
        started.elapsed() >= onboarding::WAIT_FOR_OTHERS - std::time::Duration::from_millis(500)
    );
    assert!(
        dfns_wallets_tagged(&env, &client.wallet_tag())
            .await
            .is_empty()
    );
}

/// Issue 12, point 1: the untag attack. With the service account's own credentials, a transfer
/// from the client's wallet to an unlisted address is refused; removing the client's tag from the
/// wallet must not let the same transfer through, because the client's policies bind the wallet
/// by id, not by tag. The service account is given `Wallets:Tags:Delete` here, as in the org
/// where the attack was seen (bootstrap now refuses such an account; see the next test).
#[tokio::test]
async fn untagging_a_wallet_does_not_unbind_it_from_the_clients_policies() {
    let env = TestEnv::start(TestOptions::default()).await;
    env.control(
        reqwest::Method::POST,
        "permissions",
        serde_json::json!({
            "userId": env.emulator.bootstrap().service_account.user_id,
            "operations": ["Wallets:Tags:Delete"],
        }),
    )
    .await;
    let client = client_id("untagged");
    let account = onboarding::open_account(&env.app, &client, "open")
        .await
        .unwrap();
    assert_eq!(account.status, AccountStatus::Open);
    let wallet_id = dfns_client::WalletId::new(account.wallets[0].wallet_id.as_str());
    env.control(
        reqwest::Method::POST,
        "deposits",
        serde_json::json!({"walletId": wallet_id.as_str(), "kind": "Native", "amount": "10000000000000000000"}),
    )
    .await;
    let service = env.service();
    let unlisted = "0x000000000000000000000000000000000000dead";
    let send = || async {
        service
            .transfer_without_external_id(
                &wallet_id,
                TransferAsset::Native {
                    to: unlisted.to_owned(),
                    amount: dfns_client::Amount::from(1_000_000_000_000_000_000u128),
                    memo: None,
                    priority: None,
                },
            )
            .await
            .expect("Dfns answers the transfer")
    };

    let before = send().await;
    assert!(
        before.is_rejected(),
        "an unlisted address is blocked: {:?}",
        before.transfer()
    );

    service
        .untag_wallet(&wallet_id, &[client.wallet_tag()])
        .await
        .expect("the service account may untag");
    let wallet = service.get_wallet(&wallet_id).await.unwrap();
    assert!(
        !wallet.tags.contains(&client.wallet_tag()),
        "untagged: {:?}",
        wallet.tags
    );

    let after = send().await;
    assert!(
        after.is_rejected(),
        "still blocked after the untag: {:?}",
        after.transfer()
    );
    assert_ne!(
        after.transfer().id,
        before.transfer().id,
        "a second transfer"
    );
}

/// Issue 12, least privilege: the service account as the platform needs it (docs/dfns.md §9)
/// cannot untag a client's wallet at all: 403, and the tag stays.
#[tokio::test]
async fn the_least_privilege_service_account_cannot_untag_a_wallet() {
    let env = TestEnv::start(TestOptions::default()).await;
    let client = client_id("least-privilege");
    let account = onboarding::open_account(&env.app, &client, "open")
        .await
        .unwrap();
    let wallet_id = dfns_client::WalletId::new(account.wallets[0].wallet_id.as_str());
    let service = env.service();
    let refused = service
        .untag_wallet(&wallet_id, &[client.wallet_tag()])
        .await
        .expect_err("the untag is refused");
    assert_eq!(refused.status(), Some(403), "{refused}");
    assert!(
        refused.to_string().contains("Wallets:Tags:Delete"),
        "the 403 names the operation: {refused}"
    );
    let wallet = service.get_wallet(&wallet_id).await.unwrap();
    assert!(
        wallet.tags.contains(&client.wallet_tag()),
        "{:?}",
        wallet.tags
    );
}
