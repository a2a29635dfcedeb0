//! Moving a client opened with one shared set of policies (before whitelists were per network)
//! to one set per wallet: before, an address approved on Sepolia is sendable from the client's
//! Base wallet (the Wintermute/Optimism loss); after, it is not, and nothing approved is lost.

use dfns_client::{
    DecisionValue, PolicyAction, PolicyBody, PolicyFilters, PolicyId, PolicyRule, TransferAsset,
};
use domain::{ClientId, Network, StateMachine, WalletId};
use platform::destinations::{self, DestinationInput};
use platform::onboarding::{self, PolicyMigration, policy_kinds};
use platform::testing::{TestEnv, TestOptions};
use serde_json::json;

use crate::client_id;

const ON_SEPOLIA: &str = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
const ON_BASE: &str = "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359";

fn env_options(policies_modify: bool) -> TestOptions {
    TestOptions {
        networks: vec![Network::EthereumSepolia, Network::BaseSepolia],
        policies_modify,
        ..TestOptions::default()
    }
}

/// A client as the platform opened them before per-network whitelists: one whitelist bound to
/// every wallet, recorded under the bare kind; ON_SEPOLIA approved on Sepolia, ON_BASE on Base.
/// Returns the client and its wallets (Sepolia, Base), funded.
async fn older_client(env: &TestEnv, name: &str) -> (ClientId, WalletId, WalletId) {
    let client = client_id(name);
    let store = env.app.store();
    // A recorded shared whitelist makes onboarding create the wallets and no per-wallet set.
    store
        .record_client_policy(&client, policy_kinds::WHITELIST, "plc-placeholder")
        .await
        .unwrap();
    onboarding::open_account(&env.app, &client, "open")
        .await
        .unwrap();
    let wallets = store.list_wallets(&client).await.unwrap();
    let on = |network: Network| {
        wallets
            .iter()
            .find(|w| w.address.network() == network)
            .unwrap()
            .wallet_id
            .clone()
    };
    let (sepolia, base) = (on(Network::EthereumSepolia), on(Network::BaseSepolia));
    let shared = env
        .service()
        .create_policy(&PolicyBody {
            name: format!("client {client} whitelist (shared)"),
            activity_kind: dfns_client::ActivityKind::WalletsSign,
            rule: PolicyRule::recipient_whitelist(Vec::new()),
            action: PolicyAction::Block,
            filters: Some(PolicyFilters {
                wallet_id: Some(dfns_client::common::InList::new([
                    dfns_client::WalletId::new(sepolia.as_str()),
                    dfns_client::WalletId::new(base.as_str()),
                ])),
                ..PolicyFilters::default()
            }),
        })
        .await
        .unwrap();
    assert!(
        store
            .forget_client_policy(&client, policy_kinds::WHITELIST, "plc-placeholder")
            .await
            .unwrap()
    );
    store
        .record_client_policy(&client, policy_kinds::WHITELIST, shared.id.as_str())
        .await
        .unwrap();
    for (network, address) in [("EthereumSepolia", ON_SEPOLIA), ("BaseSepolia", ON_BASE)] {
        let input = DestinationInput {
            network: network.into(),
            address: address.into(),
            label: network.into(),
            action: "add".into(),
        };
        let request = destinations::create_request(&env.app, &client, &input, "add")
            .await
            .unwrap();
        crate::eventually(30, || async {
            let r = store
                .get_destination_request(&client, &request.id)
                .await
                .unwrap()?;
            (r.state == domain::DestinationRequestState::Approved).then_some(())
        })
        .await
        .unwrap_or_else(|| panic!("{address} never approved on {network}"));
    }
    for wallet in [&sepolia, &base] {
        env.control(
            reqwest::Method::POST,
            "deposits",
            json!({"walletId": wallet.as_str(), "kind": "Native", "amount": "1000000000000000000"}),
        )
        .await;
    }
    (client, sepolia, base)
}

/// Whether Dfns blocks a transfer of 1 wei from `wallet` to `to`.
async fn blocked(env: &TestEnv, wallet: &WalletId, to: &str) -> bool {
    env.service()
        .transfer_without_external_id(
            &dfns_client::WalletId::new(wallet.as_str()),
            TransferAsset::Native {
                to: to.into(),
                amount: dfns_client::Amount::from(1u128),
                memo: None,
                priority: None,
            },
        )
        .await
        .unwrap()
        .is_rejected()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_clients_shared_whitelist_becomes_one_per_wallet_and_the_cross_network_hole_closes()
 {
    let env = TestEnv::start(env_options(false)).await;
    let (client, sepolia, base) = older_client(&env, "older").await;
    // The hole: approved on Sepolia, sendable from Base.
    assert!(!blocked(&env, &base, ON_SEPOLIA).await);

    let outcome = onboarding::migrate_to_per_wallet_policies(&env.app, &client, "migrate")
        .await
        .unwrap();
    assert_eq!(outcome, PolicyMigration::Done);
    let recorded = env.app.store().client_policies(&client).await.unwrap();
    assert!(
        !recorded.contains_key(policy_kinds::WHITELIST),
        "{recorded:?}"
    );
    for network in [Network::EthereumSepolia, Network::BaseSepolia] {
        assert!(
            recorded.contains_key(&policy_kinds::on_network(policy_kinds::WHITELIST, network)),
            "{recorded:?}"
        );
    }
    // Each wallet keeps what was approved for its network, and only that.
    assert!(blocked(&env, &base, ON_SEPOLIA).await);
    assert!(blocked(&env, &sepolia, ON_BASE).await);
    assert!(!blocked(&env, &sepolia, ON_SEPOLIA).await);
    assert!(!blocked(&env, &base, ON_BASE).await);
    // The audit trail says so; a second run has nothing to do.
    let trail = env
        .app
        .store()
        .list_audit_events(&client, None, 500)
        .await
        .unwrap();
    assert!(
        trail
            .entries
            .iter()
            .any(|e| e.event().unwrap().action.as_str() == onboarding::POLICIES_MIGRATED),
        "no migration line"
    );
    assert_eq!(
        onboarding::migrate_to_per_wallet_policies(&env.app, &client, "again")
            .await
            .unwrap(),
        PolicyMigration::NotNeeded
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_policies_modify_the_shared_set_waits_for_compliance_and_nothing_is_looser_meanwhile()
{
    let env = TestEnv::start(env_options(true)).await;
    let store = env.app.store();
    let client = client_id("governed");
    store
        .record_client_policy(&client, policy_kinds::WHITELIST, "plc-placeholder")
        .await
        .unwrap();
    onboarding::open_account(&env.app, &client, "open")
        .await
        .unwrap();
    let wallets = store.list_wallets(&client).await.unwrap();
    let base = wallets
        .iter()
        .find(|w| w.address.network() == Network::BaseSepolia)
        .unwrap()
        .wallet_id
        .clone();
    let shared_policy = env
        .service()
        .create_policy(&PolicyBody {
            name: format!("client {client} whitelist (shared)"),
            activity_kind: dfns_client::ActivityKind::WalletsSign,
            rule: PolicyRule::recipient_whitelist(vec![ON_SEPOLIA.to_owned()]),
            action: PolicyAction::Block,
            filters: Some(PolicyFilters {
                wallet_id: Some(dfns_client::common::InList::new(
                    wallets
                        .iter()
                        .map(|w| dfns_client::WalletId::new(w.wallet_id.as_str())),
                )),
                ..PolicyFilters::default()
            }),
        })
        .await
        .unwrap();
    store
        .forget_client_policy(&client, policy_kinds::WHITELIST, "plc-placeholder")
        .await
        .unwrap();
    store
        .record_client_policy(&client, policy_kinds::WHITELIST, shared_policy.id.as_str())
        .await
        .unwrap();
    // A destination change in flight: its change would land in the shared whitelist only.
    let input = DestinationInput {
        network: "EthereumSepolia".into(),
        address: ON_BASE.into(),
        label: "in flight".into(),
        action: "add".into(),
    };
    let in_flight = destinations::create_request(&env.app, &client, &input, "add")
        .await
        .unwrap();
    let pending = crate::eventually(30, || async {
        let r = store
            .get_destination_request(&client, &in_flight.id)
            .await
            .unwrap()?;
        (r.state == domain::DestinationRequestState::PendingApproval).then_some(r)
    })
    .await
    .expect("the change waits for compliance");
    assert_eq!(
        onboarding::migrate_to_per_wallet_policies(&env.app, &client, "m1")
            .await
            .unwrap(),
        PolicyMigration::Busy {
            request_id: in_flight.id.to_string()
        }
    );
    env.officer(0)
        .decide_approval(
            &dfns_client::ApprovalId::new(pending.approval_id.clone().unwrap()),
            DecisionValue::Denied,
            Some("not this one"),
        )
        .await
        .unwrap();
    crate::eventually(30, || async {
        let r = store
            .get_destination_request(&client, &in_flight.id)
            .await
            .unwrap()?;
        r.state.is_terminal().then_some(())
    })
    .await
    .expect("the denial is applied");

    // Now it runs: per-wallet policies at once, the shared set's archive held for compliance.
    let PolicyMigration::ArchivePending { approvals } =
        onboarding::migrate_to_per_wallet_policies(&env.app, &client, "m2")
            .await
            .unwrap()
    else {
        panic!("the archive should wait for compliance");
    };
    assert_eq!(approvals.len(), 1, "{approvals:?}");
    // Meanwhile both apply: ON_SEPOLIA was never approved through the platform on any network
    // (only in the hand-made shared set), so every wallet's own whitelist blocks it.
    env.control(
        reqwest::Method::POST,
        "deposits",
        json!({"walletId": base.as_str(), "kind": "Native", "amount": "1000000000000000000"}),
    )
    .await;
    assert!(blocked(&env, &base, ON_SEPOLIA).await);
    // A repeat asks nothing twice.
    assert_eq!(
        onboarding::migrate_to_per_wallet_policies(&env.app, &client, "m3")
            .await
            .unwrap(),
        PolicyMigration::ArchivePending {
            approvals: approvals.clone()
        }
    );
    env.officer(0)
        .decide_approval(
            &dfns_client::ApprovalId::new(approvals[0].clone()),
            DecisionValue::Approved,
            Some("migration"),
        )
        .await
        .unwrap();
    let done = crate::eventually(30, || async {
        match onboarding::migrate_to_per_wallet_policies(&env.app, &client, "m4")
            .await
            .unwrap()
        {
            PolicyMigration::Done => Some(()),
            _ => None,
        }
    })
    .await;
    assert!(done.is_some(), "the shared set is forgotten once archived");
    let recorded = store.client_policies(&client).await.unwrap();
    assert!(
        !recorded.contains_key(policy_kinds::WHITELIST),
        "{recorded:?}"
    );
    let archived = env
        .service()
        .get_policy(&PolicyId::new(shared_policy.id.as_str()))
        .await
        .unwrap();
    assert_eq!(archived.status, dfns_client::PolicyStatus::Archived);
}
