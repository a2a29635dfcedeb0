//! Cooling-off (issue 14): a new destination waits `DESTINATION_COOLING_OFF` before it goes to
//! Dfns, the client is told and may veto it meanwhile, and the reconciler submits it once the wait
//! has ended. The platform's clock is advanced by running the reconciler at a later `now`.

use std::time::Duration;

use dfns_client::{ApprovalId, DecisionValue, PolicyId, PolicyRule};
use domain::{ClientId, DestinationRequestState as S};
use platform::destinations::{self, DestinationInput};
use platform::reconcile::{self, RunLimits};
use platform::testing::{TestEnv, TestOptions};
use platform::trading::{TradingConfig, authorizations};
use platform::{PlatformError, onboarding};
use store::DestinationRequestView;
use time::OffsetDateTime;

use crate::{client_id, eventually};

const WAIT: Duration = Duration::from_secs(3600);
const ADDRESSES: [&str; 3] = [
    "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
    "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359",
    "0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb",
];

fn input(address: &str, action: &str) -> DestinationInput {
    DestinationInput {
        network: "EthereumSepolia".into(),
        address: address.into(),
        label: "Cold wallet".into(),
        action: action.into(),
    }
}

/// Every policy change waits for an officer; a client's own destination cools off an hour.
async fn env() -> TestEnv {
    TestEnv::start(TestOptions {
        policies_modify: true,
        destination_cooling_off: WAIT,
        ..TestOptions::default()
    })
    .await
}

async fn opened(env: &TestEnv, name: &str) -> ClientId {
    let client = client_id(name);
    onboarding::open_account(&env.app, &client, "open")
        .await
        .unwrap();
    client
}

async fn create(env: &TestEnv, client: &ClientId, address: &str) -> DestinationRequestView {
    destinations::create_request_keyed(&env.app, client, &input(address, "add"), "create", None)
        .await
        .unwrap()
}

async fn current(env: &TestEnv, r: &DestinationRequestView) -> DestinationRequestView {
    env.app
        .store()
        .get_destination_request_view(&r.client_id, &r.id)
        .await
        .unwrap()
        .unwrap()
}

/// The reconciler as it would run at `now` (the platform's clock advanced).
async fn reconcile_at(env: &TestEnv, now: OffsetDateTime) -> reconcile::ReconcileReport {
    let report = reconcile::run_at(&env.app, RunLimits::of(&env.app), now)
        .await
        .unwrap();
    assert_eq!(report.failures, 0, "{report:?}");
    report
}

/// Whether anything at Dfns (a policy, a change request) carries `address`: what Dfns has seen of
/// it.
fn dfns_has_seen(env: &TestEnv, address: &str) -> bool {
    let needle = address.to_lowercase();
    env.emulator.app().with_state(|state| {
        state
            .policy
            .policies
            .values()
            .map(|p| p.to_json())
            .chain(state.policy.change_requests.values().map(|c| c.to_json()))
            .any(|json| json.to_string().to_lowercase().contains(&needle))
    })
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

async fn audit_actions(env: &TestEnv, client: &ClientId) -> Vec<String> {
    let page = env
        .app
        .store()
        .list_audit_events(client, None, 100)
        .await
        .unwrap();
    page.entries
        .iter()
        .map(|entry| {
            let body: serde_json::Value = serde_json::from_str(&entry.body).unwrap();
            body["action"].as_str().unwrap().to_owned()
        })
        .collect()
}

async fn notifications(
    env: &TestEnv,
    client: &ClientId,
) -> Vec<store::notifications::Notification> {
    env.app
        .store()
        .list_notifications(client, 20, None)
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn a_new_destination_cools_off_the_client_is_told_and_a_veto_keeps_it_from_dfns() {
    let env = env().await;
    let client = opened(&env, "vetoer").await;
    let before = OffsetDateTime::now_utc();
    let created = create(&env, &client, ADDRESSES[0]).await;
    assert_eq!(created.state, S::CoolingOff);
    let usable_from = created.usable_from.expect("usableFrom");
    assert!(
        usable_from >= before + WAIT && usable_from <= OffsetDateTime::now_utc() + WAIT,
        "{usable_from} is not an hour after the request"
    );
    // Shown in the API with the request.
    let shown = serde_json::to_value(&created).unwrap();
    assert_eq!(shown["state"], "CoolingOff");
    assert!(shown["usableFrom"].is_string(), "{shown}");

    // Told at once: a notification, published on the bus, saying until when and how to veto.
    let notes = notifications(&env, &client).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].kind, "destination_request.cooling_off");
    assert!(notes[0].published, "the bus event was sent");
    assert_eq!(notes[0].detail["requestId"], created.id.to_string());
    assert_eq!(notes[0].detail["address"], ADDRESSES[0]);
    assert_eq!(shown["usableFrom"], notes[0].detail["usableFrom"]);
    assert_eq!(
        notes[0].detail["veto"],
        format!("POST /v1/destination-requests/{}/veto", created.id)
    );

    // The reconciler leaves it alone while it cools off: nothing of it reaches Dfns.
    let report = reconcile_at(&env, OffsetDateTime::now_utc()).await;
    assert_eq!(report.cooling_off, 1, "{report:?}");
    assert_eq!(report.cooling_off_ended, 0, "{report:?}");
    assert_eq!(current(&env, &created).await.state, S::CoolingOff);
    assert!(!dfns_has_seen(&env, ADDRESSES[0]));

    let vetoed = destinations::veto_request(&env.app, &client, &created.id, "veto")
        .await
        .unwrap();
    assert_eq!(vetoed.state, S::Vetoed);
    assert_eq!(vetoed.usable_from, Some(usable_from));
    // Final: out of the open count, audited, told.
    assert_eq!(
        env.app
            .store()
            .open_destination_request_count(&client)
            .await
            .unwrap(),
        0
    );
    let actions = audit_actions(&env, &client).await;
    assert!(
        actions.contains(&"destination_request.vetoed".to_owned()),
        "{actions:?}"
    );
    let notes = notifications(&env, &client).await;
    assert_eq!(notes[0].kind, "destination_request.vetoed");
    assert!(notes[0].published);

    // Long after its wait would have ended, the reconciler still sends nothing: Dfns never sees
    // the address.
    let report = reconcile_at(&env, usable_from + Duration::from_secs(3600)).await;
    assert_eq!(report.cooling_off_ended, 0, "{report:?}");
    assert_eq!(current(&env, &created).await.state, S::Vetoed);
    assert!(!dfns_has_seen(&env, ADDRESSES[0]));
    assert!(live_whitelist(&env, &client).await.is_empty());

    // A second veto is a conflict, and records nothing twice.
    let again = destinations::veto_request(&env.app, &client, &created.id, "veto-2").await;
    assert!(
        matches!(again, Err(PlatformError::Conflict(_))),
        "{again:?}"
    );
    let vetoes = audit_actions(&env, &client)
        .await
        .into_iter()
        .filter(|a| a == "destination_request.vetoed")
        .count();
    assert_eq!(vetoes, 1);
}

#[tokio::test]
async fn the_reconciler_submits_a_request_once_its_wait_has_ended_and_not_before() {
    let env = env().await;
    let client = opened(&env, "patient").await;
    let created = create(&env, &client, ADDRESSES[0]).await;
    let usable_from = created.usable_from.expect("usableFrom");

    // A second before the end: still cooling off, not at Dfns.
    let report = reconcile_at(&env, usable_from - Duration::from_secs(1)).await;
    assert_eq!(
        (report.cooling_off, report.cooling_off_ended),
        (1, 0),
        "{report:?}"
    );
    assert_eq!(current(&env, &created).await.state, S::CoolingOff);
    assert!(!dfns_has_seen(&env, ADDRESSES[0]));

    // At the end: queued, then submitted to compliance in the same run.
    let report = reconcile_at(&env, usable_from).await;
    assert_eq!(report.cooling_off_ended, 1, "{report:?}");
    let pending = current(&env, &created).await;
    assert_eq!(pending.state, S::PendingApproval);
    assert_eq!(pending.usable_from, Some(usable_from), "still shown");
    assert!(dfns_has_seen(&env, ADDRESSES[0]), "the change request");
    let actions = audit_actions(&env, &client).await;
    assert!(
        actions.contains(&"destination_request.cooling_off_ended".to_owned()),
        "{actions:?}"
    );

    // Too late to veto now: only compliance decides.
    let refused = destinations::veto_request(&env.app, &client, &created.id, "veto").await;
    assert!(
        matches!(refused, Err(PlatformError::Conflict(_))),
        "{refused:?}"
    );

    // The officer approves: on the live whitelist.
    env.officer(0)
        .decide_approval(
            &ApprovalId::new(pending.approval_id.clone().unwrap()),
            DecisionValue::Approved,
            Some("checked"),
        )
        .await
        .unwrap();
    eventually(10, || async {
        (current(&env, &created).await.state == S::Approved).then_some(())
    })
    .await
    .expect("approved");
    assert_eq!(
        live_whitelist(&env, &client).await,
        vec![ADDRESSES[0].to_owned()]
    );
    // Once: a later run changes nothing.
    let report = reconcile_at(&env, usable_from + Duration::from_secs(60)).await;
    assert_eq!(report.cooling_off_ended, 0, "{report:?}");
}

#[tokio::test]
async fn veto_refusals_another_clients_request_is_not_found_a_queued_one_a_conflict() {
    let env = env().await;
    let alice = opened(&env, "alice").await;
    let bob = opened(&env, "bob").await;
    let first = create(&env, &alice, ADDRESSES[0]).await;
    let second = create(&env, &alice, ADDRESSES[1]).await;

    // Bob cannot veto Alice's request, nor learn it exists.
    let stolen = destinations::veto_request(&env.app, &bob, &first.id, "b").await;
    assert!(
        matches!(stolen, Err(PlatformError::NotFound(_))),
        "{stolen:?}"
    );
    assert_eq!(current(&env, &first).await.state, S::CoolingOff);

    // Both waits end: the first goes to compliance, the second queues behind it.
    reconcile_at(&env, second.usable_from.unwrap()).await;
    assert_eq!(current(&env, &first).await.state, S::PendingApproval);
    assert_eq!(current(&env, &second).await.state, S::Queued);
    for (request, state) in [(&first, "PendingApproval"), (&second, "Queued")] {
        match destinations::veto_request(&env.app, &alice, &request.id, "a").await {
            Err(PlatformError::Conflict(message)) => assert!(message.contains(state), "{message}"),
            other => panic!("veto of a {state} request: {other:?}"),
        }
    }

    // A request still cooling off can also simply be cancelled; then there is nothing to veto.
    let fresh = create(&env, &alice, ADDRESSES[2]).await;
    assert_eq!(fresh.state, S::CoolingOff);
    let cancelled = destinations::cancel_request(&env.app, &alice, &fresh.id, "c")
        .await
        .unwrap();
    assert_eq!(cancelled.state, S::Cancelled);
    let refused = destinations::veto_request(&env.app, &alice, &fresh.id, "v").await;
    assert!(
        matches!(refused, Err(PlatformError::Conflict(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_removal_never_waits() {
    let env = env().await;
    let client = opened(&env, "remover").await;
    let removal = destinations::create_request_keyed(
        &env.app,
        &client,
        &input(ADDRESSES[0], "remove"),
        "remove",
        None,
    )
    .await
    .unwrap();
    assert_eq!(removal.usable_from, None);
    assert_ne!(removal.state, S::CoolingOff);
    // Submitted at once (the address was never listed: already in effect).
    assert_eq!(removal.state, S::Approved, "{removal:?}");
    let notes = notifications(&env, &client).await;
    assert!(
        notes
            .iter()
            .all(|n| n.kind != "destination_request.cooling_off"),
        "{notes:?}"
    );
}

#[tokio::test]
async fn an_exchange_deposit_address_cools_off_exchange_cooling_off_by_default_not_at_all() {
    // The client's own destinations cool off an hour; the exchange's address does not wait.
    let env = env().await;
    let client = opened(&env, "trader").await;
    let (view, _) = authorizations::authorize(
        &env.app,
        &TradingConfig::default(),
        &client,
        "Coinbase",
        "a",
    )
    .await
    .unwrap();
    let requests = destinations::list_requests(&env.app, &client)
        .await
        .unwrap();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].usable_from, None);
    assert_eq!(
        requests[0].state,
        S::PendingApproval,
        "sent to compliance at once"
    );
    assert_eq!(
        view.destinations[0].add_request_state,
        Some(S::PendingApproval)
    );

    // With EXCHANGE_COOLING_OFF set, the exchange's address waits that long, not the client's.
    let exchange_wait = Duration::from_secs(600);
    let env = TestEnv::start(TestOptions {
        policies_modify: true,
        destination_cooling_off: WAIT,
        exchange_cooling_off: exchange_wait,
        ..TestOptions::default()
    })
    .await;
    let client = opened(&env, "cautious").await;
    let before = OffsetDateTime::now_utc();
    let (view, _) = authorizations::authorize(
        &env.app,
        &TradingConfig::default(),
        &client,
        "Coinbase",
        "a",
    )
    .await
    .unwrap();
    assert_eq!(view.status, authorizations::AuthorizationStatus::Pending);
    let requests = destinations::list_requests(&env.app, &client)
        .await
        .unwrap();
    assert_eq!(requests[0].state, S::CoolingOff);
    let usable_from = requests[0].usable_from.expect("usableFrom");
    assert!(
        usable_from >= before + exchange_wait
            && usable_from <= OffsetDateTime::now_utc() + exchange_wait,
        "{usable_from}"
    );
    // Vetoed, the authorization is rejected with it.
    destinations::veto_request(&env.app, &client, &requests[0].id, "v")
        .await
        .unwrap();
    let listed = authorizations::list(&env.app, &client).await.unwrap();
    assert_eq!(
        listed[0].status,
        authorizations::AuthorizationStatus::Rejected,
        "{listed:?}"
    );
}
