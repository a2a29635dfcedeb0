//! Destination requests against the emulator's policy engine.

use dfns_client::{ApprovalId, DecisionValue, PolicyId, PolicyRule};
use domain::{ClientId, DestinationRequestState};
use platform::destinations::{self, DestinationInput};
use platform::testing::{TestEnv, TestOptions};
use platform::{PlatformError, onboarding, reconcile};
use store::DestinationRequest;

use crate::{client_id, eventually};

/// Five addresses, given in EIP-55 mixed case (the first) or lowercase.
const ADDRESSES: [&str; 5] = [
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359",
    "0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb",
    "0xd1220a0cf47c7b9be7a2e6ba89f429762e7b9adb",
    "0xde709f2102306220921060314715629080e2fb77",
];

fn add(address: &str) -> DestinationInput {
    DestinationInput {
        network: "EthereumSepolia".into(),
        address: address.into(),
        label: "Exchange".into(),
        action: "add".into(),
    }
}

async fn opened(env: &TestEnv, name: &str) -> ClientId {
    let client = client_id(name);
    onboarding::open_account(&env.app, &client, "open")
        .await
        .unwrap();
    client
}

async fn live_whitelist(env: &TestEnv, client: &ClientId) -> Vec<String> {
    let policies = env.app.store().client_policies(client).await.unwrap();
    let policy = env
        .service()
        .get_policy(&PolicyId::new(
            policies["whitelist-ethereumsepolia"].clone(),
        ))
        .await
        .unwrap();
    match policy.rule {
        PolicyRule::TransactionRecipientWhitelist { configuration } => configuration.addresses,
        other => panic!("unexpected rule {other:?}"),
    }
}

async fn request(env: &TestEnv, r: &DestinationRequest) -> DestinationRequest {
    env.app
        .store()
        .get_destination_request(&r.client_id, &r.id)
        .await
        .unwrap()
        .unwrap()
}

async fn wait_for_state(
    env: &TestEnv,
    r: &DestinationRequest,
    state: DestinationRequestState,
) -> DestinationRequest {
    eventually(10, || async {
        let now = request(env, r).await;
        (now.state == state).then_some(now)
    })
    .await
    .unwrap_or_else(|| panic!("request {} never reached {state}", r.id))
}

/// What the bus event of a settled request makes the reconciler do on AWS (the webhook receiver
/// that settled it holds no signing credential): submit the client's next queued request.
async fn settled(env: &TestEnv, client: &ClientId) {
    reconcile::submit_next(&env.app, client, "settled")
        .await
        .unwrap();
}

async fn decide(env: &TestEnv, r: &DestinationRequest, value: DecisionValue) {
    let approval = r.approval_id.clone().expect("approval id stored");
    env.officer(0)
        .decide_approval(&ApprovalId::new(approval), value, Some("checked"))
        .await
        .unwrap();
}

#[tokio::test]
async fn without_policy_approval_an_add_is_applied_at_once_in_lowercase() {
    let env = TestEnv::start(TestOptions::default()).await;
    let client = opened(&env, "direct").await;
    let created = destinations::create_request(&env.app, &client, &add(ADDRESSES[0]), "r1")
        .await
        .unwrap();
    assert_eq!(created.state, DestinationRequestState::Approved);
    assert_eq!(
        created.destination.address().canonical(),
        ADDRESSES[0].to_lowercase()
    );
    assert_eq!(
        live_whitelist(&env, &client).await,
        vec![ADDRESSES[0].to_lowercase()]
    );
    let notes = env
        .app
        .store()
        .list_notifications(&client, 10, None)
        .await
        .unwrap();
    assert_eq!(notes.items[0].kind, "destination_request.approved");
}

#[tokio::test]
async fn an_approved_add_reaches_the_live_policy_and_a_denied_one_does_not() {
    let env = TestEnv::start(TestOptions {
        policies_modify: true,
        ..TestOptions::default()
    })
    .await;
    let client = opened(&env, "approved").await;
    let first = destinations::create_request(&env.app, &client, &add(ADDRESSES[0]), "r1")
        .await
        .unwrap();
    assert_eq!(first.state, DestinationRequestState::PendingApproval);
    assert!(first.change_request_id.is_some());
    assert!(
        live_whitelist(&env, &client).await.is_empty(),
        "nothing changes before approval"
    );

    decide(&env, &first, DecisionValue::Approved).await;
    wait_for_state(&env, &first, DestinationRequestState::Approved).await;
    assert_eq!(
        live_whitelist(&env, &client).await,
        vec![ADDRESSES[0].to_lowercase()]
    );

    let second = destinations::create_request(&env.app, &client, &add(ADDRESSES[1]), "r2")
        .await
        .unwrap();
    // The first approval's webhook may still be submitting it (`Submitted`) as we look.
    let second = wait_for_state(&env, &second, DestinationRequestState::PendingApproval).await;
    decide(&env, &second, DecisionValue::Denied).await;
    let rejected = wait_for_state(&env, &second, DestinationRequestState::Rejected).await;
    assert_eq!(rejected.reason.as_deref(), Some("checked"));
    assert_eq!(
        live_whitelist(&env, &client).await,
        vec![ADDRESSES[0].to_lowercase()]
    );

    // The client is told (just after the state moves).
    let kinds = eventually(10, || async {
        let kinds: Vec<String> = env
            .app
            .store()
            .list_notifications(&client, 10, None)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|n| n.kind)
            .collect();
        (kinds.len() == 2).then_some(kinds)
    })
    .await
    .expect("two notifications");
    assert_eq!(
        kinds,
        [
            "destination_request.rejected",
            "destination_request.approved"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_queue_and_are_submitted_in_order_until_all_are_approved() {
    let env = TestEnv::start(TestOptions {
        policies_modify: true,
        ..TestOptions::default()
    })
    .await;
    let client = opened(&env, "queue").await;
    let calls = ADDRESSES.iter().map(|address| {
        let app = env.app.clone();
        let client = client.clone();
        let input = add(address);
        tokio::spawn(
            async move { destinations::create_request(&app, &client, &input, "burst").await },
        )
    });
    let created: Vec<DestinationRequest> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    assert_eq!(created.len(), 5);

    // Approve whatever is pending, one at a time; each approval lets the oldest queued one go.
    let mut approved_order = Vec::new();
    for _ in 0..5 {
        let pending = eventually(10, || async {
            let all = destinations::list_requests(&env.app, &client)
                .await
                .unwrap();
            let in_flight: Vec<_> = all
                .iter()
                .filter(|r| r.state == DestinationRequestState::PendingApproval)
                .cloned()
                .collect();
            assert!(
                in_flight.len() <= 1,
                "one change pending per client at a time"
            );
            in_flight.into_iter().next()
        })
        .await
        .expect("a pending request");
        decide(&env, &pending, DecisionValue::Approved).await;
        wait_for_state(&env, &pending, DestinationRequestState::Approved).await;
        settled(&env, &client).await;
        approved_order.push(pending.id);
    }
    let mut by_id: Vec<_> = created.iter().map(|r| r.id).collect();
    by_id.sort();
    let mut approved_sorted = approved_order.clone();
    approved_sorted.sort();
    assert_eq!(approved_sorted, by_id, "every request approved once");
    let mut live = live_whitelist(&env, &client).await;
    live.sort();
    let mut expected: Vec<String> = ADDRESSES.iter().map(|a| a.to_lowercase()).collect();
    expected.sort();
    assert_eq!(live, expected, "no address lost");
}

#[tokio::test]
async fn queued_requests_are_submitted_in_the_order_they_were_made() {
    let env = TestEnv::start(TestOptions {
        policies_modify: true,
        ..TestOptions::default()
    })
    .await;
    let client = opened(&env, "ordered").await;
    let mut made = Vec::new();
    for (i, address) in ADDRESSES.iter().take(3).enumerate() {
        let request = destinations::create_request(&env.app, &client, &add(address), "o")
            .await
            .unwrap();
        let expected = if i == 0 {
            DestinationRequestState::PendingApproval
        } else {
            DestinationRequestState::Queued
        };
        assert_eq!(request.state, expected);
        made.push(request);
    }
    for (i, request) in made.iter().enumerate() {
        let pending = wait_for_state(&env, request, DestinationRequestState::PendingApproval).await;
        for later in &made[i + 1..] {
            assert_eq!(
                self::request(&env, later).await.state,
                DestinationRequestState::Queued,
                "a later request waits for the earlier one"
            );
        }
        decide(&env, &pending, DecisionValue::Approved).await;
        wait_for_state(&env, request, DestinationRequestState::Approved).await;
        settled(&env, &client).await;
    }
    assert_eq!(
        live_whitelist(&env, &client).await,
        ADDRESSES[..3]
            .iter()
            .map(|a| a.to_lowercase())
            .collect::<Vec<_>>(),
        "applied in order"
    );
}

#[tokio::test]
async fn a_queued_request_can_be_cancelled_a_pending_one_cannot_and_another_clients_is_not_found() {
    let env = TestEnv::start(TestOptions {
        policies_modify: true,
        ..TestOptions::default()
    })
    .await;
    let alice = opened(&env, "alice").await;
    let bob = opened(&env, "bob").await;
    let pending = destinations::create_request(&env.app, &alice, &add(ADDRESSES[0]), "a1")
        .await
        .unwrap();
    let queued = destinations::create_request(&env.app, &alice, &add(ADDRESSES[1]), "a2")
        .await
        .unwrap();
    assert_eq!(pending.state, DestinationRequestState::PendingApproval);
    assert_eq!(queued.state, DestinationRequestState::Queued);

    let stolen = destinations::cancel_request(&env.app, &bob, &queued.id, "b").await;
    assert!(
        matches!(stolen, Err(PlatformError::NotFound(_))),
        "{stolen:?}"
    );
    assert!(
        destinations::list_requests(&env.app, &bob)
            .await
            .unwrap()
            .is_empty()
    );

    let refused = destinations::cancel_request(&env.app, &alice, &pending.id, "a3").await;
    assert!(
        matches!(refused, Err(PlatformError::Conflict(_))),
        "{refused:?}"
    );
    let cancelled = destinations::cancel_request(&env.app, &alice, &queued.id, "a4")
        .await
        .unwrap();
    assert_eq!(cancelled.state, DestinationRequestState::Cancelled);

    // The cancelled one is not submitted when the pending one resolves.
    decide(&env, &pending, DecisionValue::Approved).await;
    wait_for_state(&env, &pending, DestinationRequestState::Approved).await;
    assert_eq!(
        request(&env, &queued).await.state,
        DestinationRequestState::Cancelled
    );
    assert_eq!(
        live_whitelist(&env, &alice).await,
        vec![ADDRESSES[0].to_lowercase()]
    );
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_stored() {
    let env = TestEnv::start(TestOptions::default()).await;
    let client = opened(&env, "careless").await;
    for input in [
        add("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"),
        add("0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea"),
        DestinationInput {
            network: "Solana".into(),
            ..add(ADDRESSES[1])
        },
    ] {
        let result = destinations::create_request(&env.app, &client, &input, "bad").await;
        assert!(
            matches!(result, Err(PlatformError::BadRequest(_))),
            "{result:?}"
        );
    }
    assert!(
        destinations::list_requests(&env.app, &client)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(live_whitelist(&env, &client).await.is_empty());
}

#[tokio::test]
async fn a_request_before_the_account_is_open_is_a_conflict() {
    let env = TestEnv::start(TestOptions::default()).await;
    let client = client_id("early");
    let result = destinations::create_request(&env.app, &client, &add(ADDRESSES[0]), "x").await;
    assert!(
        matches!(result, Err(PlatformError::Conflict(_))),
        "{result:?}"
    );
    assert!(
        destinations::list_requests(&env.app, &client)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_reconciler_applies_a_decision_whose_webhook_was_lost() {
    let env = TestEnv::start(TestOptions {
        policies_modify: true,
        webhooks: false,
        ..TestOptions::default()
    })
    .await;
    let client = opened(&env, "lost").await;
    let first = destinations::create_request(&env.app, &client, &add(ADDRESSES[0]), "l1")
        .await
        .unwrap();
    let second = destinations::create_request(&env.app, &client, &add(ADDRESSES[1]), "l2")
        .await
        .unwrap();
    assert_eq!(second.state, DestinationRequestState::Queued);
    decide(&env, &first, DecisionValue::Approved).await;
    // No webhook arrives: still pending here.
    assert_eq!(
        request(&env, &first).await.state,
        DestinationRequestState::PendingApproval
    );

    let report = reconcile::run(&env.app).await.unwrap();
    assert!(report.approvals_applied >= 1, "{report:?}");
    assert_eq!(
        request(&env, &first).await.state,
        DestinationRequestState::Approved
    );
    // The queued one went to Dfns as the slot freed.
    assert_eq!(
        request(&env, &second).await.state,
        DestinationRequestState::PendingApproval
    );
    assert_eq!(
        live_whitelist(&env, &client).await,
        vec![ADDRESSES[0].to_lowercase()]
    );
    // A second run finds nothing new to apply.
    let again = reconcile::run(&env.app).await.unwrap();
    assert_eq!(again.failures, 0);
}

#[tokio::test]
async fn the_reconciler_adopts_a_change_request_whose_answer_was_lost_instead_of_sending_another() {
    let env = TestEnv::start(TestOptions {
        policies_modify: true,
        webhooks: false,
        reconcile_submitted_after: std::time::Duration::ZERO,
        ..TestOptions::default()
    })
    .await;
    let client = opened(&env, "lost-answer").await;
    let store = env.app.store();
    // A request taken to `Submitted`; its update reached Dfns but the answer never came back.
    let id = domain::DestinationRequestId::new();
    store
        .create_destination_request(&store::NewDestinationRequest {
            id,
            client_id: client.clone(),
            destination: domain::NetworkAddress::parse(
                domain::Network::EthereumSepolia,
                ADDRESSES[2],
            )
            .unwrap(),
            label: "Exchange".into(),
            action: domain::DestinationAction::Add,
            created_at: time::OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();
    let submitted = store
        .submit_destination_request(&client, &id, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    let policy_id = PolicyId::new(
        store.client_policies(&client).await.unwrap()["whitelist-ethereumsepolia"].clone(),
    );
    let service = env.service();
    let mut body = service.get_policy(&policy_id).await.unwrap().body();
    body.rule = PolicyRule::recipient_whitelist([ADDRESSES[2].to_owned()]);
    let change = match service.update_policy(&policy_id, &body).await.unwrap() {
        dfns_client::UpdateOutcome::Pending(change) => change,
        other => panic!("expected a change request, got {other:?}"),
    };

    let report = reconcile::run(&env.app).await.unwrap();
    assert_eq!(report.submissions_redriven, 1, "{report:?}");
    assert_eq!(report.failures, 0, "{report:?}");
    let adopted = request(&env, &submitted).await;
    assert_eq!(adopted.state, DestinationRequestState::PendingApproval);
    assert_eq!(
        adopted.change_request_id.as_deref(),
        Some(change.id.as_str())
    );
    // Only that one change request exists at Dfns for the policy.
    let pending: Vec<_> = futures::TryStreamExt::try_collect::<Vec<_>>(service.list_approvals(
        &dfns_client::ApprovalsQuery {
            status: Some(dfns_client::ApprovalStatus::Pending),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    assert_eq!(pending.len(), 1);
}

#[tokio::test]
async fn the_reconciler_adopts_the_decision_on_a_change_whose_answer_was_lost_and_sends_nothing_again()
 {
    let env = TestEnv::start(TestOptions {
        policies_modify: true,
        webhooks: false,
        reconcile_submitted_after: std::time::Duration::ZERO,
        ..TestOptions::default()
    })
    .await;
    let service = env.service();
    let change_approvals = || async {
        futures::TryStreamExt::try_collect::<Vec<_>>(
            service.list_approvals(&dfns_client::ApprovalsQuery::default()),
        )
        .await
        .unwrap()
        .into_iter()
        .filter(|a| matches!(a.activity, dfns_client::Activity::PoliciesModify { .. }))
        .count()
    };
    for (name, decision, address, settles) in [
        (
            "lost-denied",
            DecisionValue::Denied,
            ADDRESSES[1],
            DestinationRequestState::Rejected,
        ),
        (
            "lost-approved",
            DecisionValue::Approved,
            ADDRESSES[4],
            DestinationRequestState::Approved,
        ),
    ] {
        let client = opened(&env, name).await;
        let store = env.app.store();
        // A request taken to `Submitted`; its update reached Dfns, but the answer (or the write of
        // `PendingApproval`) was lost, and an officer decided the change before the reconciler
        // came by: nothing is pending on the policy any more.
        let id = domain::DestinationRequestId::new();
        store
            .create_destination_request(&store::NewDestinationRequest {
                id,
                client_id: client.clone(),
                destination: domain::NetworkAddress::parse(
                    domain::Network::EthereumSepolia,
                    address,
                )
                .unwrap(),
                label: "Exchange".into(),
                action: domain::DestinationAction::Add,
                created_at: time::OffsetDateTime::now_utc(),
            })
            .await
            .unwrap();
        let submitted = store
            .submit_destination_request(&client, &id, time::OffsetDateTime::now_utc())
            .await
            .unwrap();
        let policy_id = PolicyId::new(
            store.client_policies(&client).await.unwrap()["whitelist-ethereumsepolia"].clone(),
        );
        let mut body = service.get_policy(&policy_id).await.unwrap().body();
        body.rule = PolicyRule::recipient_whitelist([address.to_owned()]);
        let change = match service.update_policy(&policy_id, &body).await.unwrap() {
            dfns_client::UpdateOutcome::Pending(change) => change,
            other => panic!("expected a change request, got {other:?}"),
        };
        let approval = change.approval_id.clone().expect("an approval id");
        env.officer(0)
            .decide_approval(&approval, decision.clone(), Some("checked"))
            .await
            .unwrap();
        let asked = change_approvals().await;

        let report = reconcile::run(&env.app).await.unwrap();
        assert_eq!(report.submissions_redriven, 1, "{name}: {report:?}");
        assert_eq!(report.failures, 0, "{name}: {report:?}");
        let settled = request(&env, &submitted).await;
        assert_eq!(settled.state, settles, "{name}: {settled:?}");
        assert_eq!(
            settled.approval_id.as_deref(),
            Some(approval.as_str()),
            "{name}: the request records the officer's approval"
        );
        assert_ne!(
            settled.reason.as_deref(),
            Some("already in effect"),
            "{name}: {settled:?}"
        );
        assert_eq!(
            change_approvals().await,
            asked,
            "{name}: the decided change is not sent to the officers again"
        );
        let events = store.list_audit_events(&client, None, 100).await.unwrap();
        let decided = events
            .entries
            .iter()
            .filter_map(|e| e.event().ok())
            .find(|e| {
                e.details["requestId"] == id.to_string()
                    && e.details["state"] == settles.to_string()
            })
            .unwrap_or_else(|| panic!("{name}: no audit line for the decision"));
        assert!(
            matches!(decided.actor, domain::Actor::Compliance { .. }),
            "{name}: the officer decided it: {decided:?}"
        );
    }
}

#[tokio::test]
async fn the_reconciler_resends_a_submission_that_never_reached_dfns() {
    let env = TestEnv::start(TestOptions {
        policies_modify: true,
        webhooks: false,
        reconcile_submitted_after: std::time::Duration::ZERO,
        ..TestOptions::default()
    })
    .await;
    let client = opened(&env, "never-sent").await;
    let store = env.app.store();
    let id = domain::DestinationRequestId::new();
    store
        .create_destination_request(&store::NewDestinationRequest {
            id,
            client_id: client.clone(),
            destination: domain::NetworkAddress::parse(
                domain::Network::EthereumSepolia,
                ADDRESSES[3],
            )
            .unwrap(),
            label: "Exchange".into(),
            action: domain::DestinationAction::Add,
            created_at: time::OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();
    // Submitted, then the process died before calling Dfns.
    let submitted = store
        .submit_destination_request(&client, &id, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    reconcile::run(&env.app).await.unwrap();
    let sent = request(&env, &submitted).await;
    assert_eq!(sent.state, DestinationRequestState::PendingApproval);
    decide(&env, &sent, DecisionValue::Approved).await;
    reconcile::run(&env.app).await.unwrap();
    assert_eq!(
        request(&env, &submitted).await.state,
        DestinationRequestState::Approved
    );
    assert_eq!(
        live_whitelist(&env, &client).await,
        vec![ADDRESSES[3].to_owned()]
    );
}

#[tokio::test]
async fn a_removal_takes_the_address_out_of_the_live_policy() {
    let env = TestEnv::start(TestOptions::default()).await;
    let client = opened(&env, "remover").await;
    for address in &ADDRESSES[..2] {
        let added = destinations::create_request(&env.app, &client, &add(address), "add")
            .await
            .unwrap();
        assert_eq!(added.state, DestinationRequestState::Approved);
    }
    let removal = DestinationInput {
        action: "remove".into(),
        // Any accepted spelling names the same address.
        address: ADDRESSES[0].to_uppercase().replacen("0X", "0x", 1),
        ..add(ADDRESSES[0])
    };
    let removed = destinations::create_request(&env.app, &client, &removal, "remove")
        .await
        .unwrap();
    assert_eq!(removed.state, DestinationRequestState::Approved);
    assert_eq!(
        live_whitelist(&env, &client).await,
        vec![ADDRESSES[1].to_owned()]
    );
    // Removing it again is already in effect: approved without a change at Dfns.
    let again = destinations::create_request(&env.app, &client, &removal, "remove-again")
        .await
        .unwrap();
    assert_eq!(again.state, DestinationRequestState::Approved);
    assert_eq!(again.reason.as_deref(), Some("already in effect"));
}

/// Issue 15: one whitelist per wallet. An EVM address approved for `EthereumSepolia` goes into
/// that wallet's whitelist only: the client's `BaseSepolia` wallet keeps its own (empty) one, so
/// Dfns blocks a transfer from it to the address, while the Sepolia wallet may send there.
#[tokio::test]
async fn an_address_approved_on_one_evm_network_is_whitelisted_only_for_that_networks_wallet() {
    use dfns_client::transfers::TransferAsset;
    use domain::Network;
    use platform::onboarding::policy_kinds;

    let env = TestEnv::start(TestOptions {
        networks: vec![Network::EthereumSepolia, Network::BaseSepolia],
        ..TestOptions::default()
    })
    .await;
    let client = opened(&env, "two-networks").await;
    let store = env.app.store();
    let policies = store.client_policies(&client).await.unwrap();
    let wallets = store.list_wallets(&client).await.unwrap();
    assert_eq!(wallets.len(), 2);
    let whitelist_of =
        |network: Network| PolicyId::new(policy_kinds::whitelist_of(&policies, network).unwrap());
    assert_ne!(
        whitelist_of(Network::EthereumSepolia),
        whitelist_of(Network::BaseSepolia)
    );
    // Each wallet's policies bind it alone.
    let service = env.service();
    for wallet in &wallets {
        let policy = service
            .get_policy(&whitelist_of(wallet.address.network()))
            .await
            .unwrap();
        let bound: Vec<&str> = policy
            .filters
            .as_ref()
            .and_then(|f| f.wallet_id.as_ref())
            .map(|ids| ids.values.iter().map(|id| id.as_str()).collect())
            .unwrap_or_default();
        assert_eq!(bound, [wallet.wallet_id.as_str()], "{}", policy.name);
    }

    let approved = destinations::create_request(&env.app, &client, &add(ADDRESSES[1]), "r1")
        .await
        .unwrap();
    assert_eq!(approved.state, DestinationRequestState::Approved);
    let live = |network: Network| {
        let service = &service;
        let id = whitelist_of(network);
        async move {
            match service.get_policy(&id).await.unwrap().rule {
                PolicyRule::TransactionRecipientWhitelist { configuration } => {
                    configuration.addresses
                }
                other => panic!("unexpected rule {other:?}"),
            }
        }
    };
    assert_eq!(live(Network::EthereumSepolia).await, [ADDRESSES[1]]);
    assert!(live(Network::BaseSepolia).await.is_empty());

    // Dfns agrees: from the Base wallet the address is blocked, from the Sepolia one it is not.
    for wallet in &wallets {
        let wallet_id = dfns_client::WalletId::new(wallet.wallet_id.as_str());
        env.control(
            reqwest::Method::POST,
            "deposits",
            serde_json::json!({"walletId": wallet_id.as_str(), "kind": "Native", "amount": "10000000000000000000"}),
        )
        .await;
        let outcome = service
            .transfer_without_external_id(
                &wallet_id,
                TransferAsset::Native {
                    to: ADDRESSES[1].to_owned(),
                    amount: dfns_client::Amount::from(1_000u128),
                    memo: None,
                    priority: None,
                },
            )
            .await
            .expect("Dfns answers the transfer");
        let from_base = wallet.address.network() == Network::BaseSepolia;
        assert_eq!(
            outcome.is_rejected(),
            from_base,
            "{}: {:?}",
            wallet.address.network(),
            outcome.transfer()
        );
    }
}
