//! Onboarding against the emulator: concurrency and resumption.

use dfns_client::policies::PoliciesQuery;
use dfns_client::{CreateWallet, PolicyRule, PolicyStatus};
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
        let filter = policy.filters.as_ref().and_then(|f| f.wallet_tags.as_ref());
        assert_eq!(
            filter.and_then(|f| f.has_all.clone()),
            Some(vec![tag.clone()]),
            "{} filters on the client's tag",
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
