//! The webhook receiver over a request put in `PendingApproval` by hand (no Dfns policy engine
//! needed), fed signed deliveries.

use domain::{
    DestinationAction, DestinationRequestId, DestinationRequestState, Network, NetworkAddress,
};
use platform::testing::{TestEnv, TestOptions};
use platform::webhook::{self, WebhookError, WebhookOutcome};
use serde_json::{Value, json};
use store::{DestinationRequest, NewDestinationRequest, RequestChanges};
use time::OffsetDateTime;

use crate::client_id;

const ADDRESS: &str = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";

async fn pending_request(env: &TestEnv, approval_id: &str) -> DestinationRequest {
    let store = env.app.store();
    let client = client_id("hooked");
    let id = DestinationRequestId::new();
    store
        .create_destination_request(&NewDestinationRequest {
            id,
            client_id: client.clone(),
            destination: NetworkAddress::parse(Network::EthereumSepolia, ADDRESS).unwrap(),
            label: "Exchange".into(),
            action: DestinationAction::Add,
            created_at: OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();
    store
        .submit_destination_request(&client, &id, OffsetDateTime::now_utc())
        .await
        .unwrap();
    store
        .transition_destination_request(
            &client,
            &id,
            DestinationRequestState::Submitted,
            DestinationRequestState::PendingApproval,
            &RequestChanges {
                approval_id: Some(approval_id.into()),
                change_request_id: Some(format!("cr-{approval_id}")),
                reason: None,
            },
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap()
}

fn approval(id: &str, status: &str) -> Value {
    json!({
        "id": id,
        "initiatorId": "us-service-account",
        "status": status,
        "activity": {
            "kind": "Policies:Modify",
            "changeRequest": {
                "id": format!("cr-{id}"),
                "kind": "Policy",
                "operationKind": "Update",
                "status": match status { "Approved" => "Applied", "Pending" => "Pending", _ => "Rejected" },
                "requester": {"userId": "us-service-account"},
                "entityId": "plc-whitelist",
                "approvalId": id,
                "dateCreated": "2026-01-01T00:00:00.000Z",
                "body": {}
            }
        },
        "policyEvaluations": [],
        "decisions": if status == "Pending" { json!([]) } else { json!([{
            "userId": "us-officer-1",
            "date": "2026-01-01T00:01:00.000Z",
            "value": if status == "Approved" { "Approved" } else { "Denied" },
            "reason": if status == "Approved" { Value::Null } else { json!("not a known exchange") }
        }]) },
        "dateUpdated": "2026-01-01T00:01:00.000Z"
    })
}

fn delivery(kind: &str, data: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": format!("whe-{}", ulid::Ulid::new().to_string().to_lowercase()),
        "kind": kind,
        "date": "2026-01-01T00:01:00.000Z",
        "timestampSent": OffsetDateTime::now_utc().unix_timestamp(),
        "deliveryAttempt": 1,
        "data": data,
    }))
    .unwrap()
}

async fn deliver(env: &TestEnv, body: &[u8]) -> Result<WebhookOutcome, WebhookError> {
    let signature = env.sign_webhook(body);
    webhook::receive(&env.app, Some(&signature), body, "test").await
}

async fn state_of(env: &TestEnv, request: &DestinationRequest) -> DestinationRequest {
    env.app
        .store()
        .get_destination_request(&request.client_id, &request.id)
        .await
        .unwrap()
        .unwrap()
}

/// A client holding `wallet_id` (at [`ADDRESS`]), as onboarding leaves it in the table.
async fn client_with_wallet(
    env: &TestEnv,
    name: &str,
    wallet_id: &domain::WalletId,
) -> domain::ClientId {
    let client = client_id(name);
    let store = env.app.store();
    store
        .create_client_profile(&store::ClientProfile {
            client_id: client.clone(),
            created_at: OffsetDateTime::now_utc(),
            tier: None,
        })
        .await
        .unwrap();
    store
        .attach_wallet(&store::WalletMapping {
            client_id: client.clone(),
            wallet_id: wallet_id.clone(),
            address: NetworkAddress::parse(Network::EthereumSepolia, ADDRESS).unwrap(),
            created_at: OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();
    client
}

fn no_webhooks() -> TestOptions {
    TestOptions {
        webhooks: false,
        ..TestOptions::default()
    }
}

#[tokio::test]
async fn a_bad_signature_is_refused_and_changes_nothing() {
    let env = TestEnv::start(no_webhooks()).await;
    let request = pending_request(&env, "ap-sig").await;
    let body = delivery(
        "policy.approval.resolved",
        json!({"approval": approval("ap-sig", "Approved")}),
    );

    let forged = platform::testing::sign_webhook("not-the-secret", &body);
    let refused = webhook::receive(&env.app, Some(&forged), &body, "t").await;
    assert!(
        matches!(refused, Err(WebhookError::Unverified(_))),
        "{refused:?}"
    );
    let unsigned = webhook::receive(&env.app, None, &body, "t").await;
    assert!(matches!(unsigned, Err(WebhookError::Unverified(_))));
    // The body altered after signing.
    let signature = env.sign_webhook(&body);
    let mut altered = body.clone();
    let at = altered.len() - 2;
    altered.insert(at, b' ');
    let tampered = webhook::receive(&env.app, Some(&signature), &altered, "t").await;
    assert!(matches!(tampered, Err(WebhookError::Unverified(_))));

    assert_eq!(
        state_of(&env, &request).await.state,
        DestinationRequestState::PendingApproval
    );
    let notes = env
        .app
        .store()
        .list_notifications(&request.client_id, 10, None)
        .await
        .unwrap();
    assert!(notes.items.is_empty());
    // Still accepted once signed properly: the refusals did not burn the delivery id.
    assert_eq!(
        deliver(&env, &body).await.unwrap(),
        WebhookOutcome::Processed
    );
    assert_eq!(
        state_of(&env, &request).await.state,
        DestinationRequestState::Approved
    );
}

#[tokio::test]
async fn a_stale_timestamp_is_refused() {
    let env = TestEnv::start(no_webhooks()).await;
    let request = pending_request(&env, "ap-old").await;
    let mut event: Value = serde_json::from_slice(&delivery(
        "policy.approval.resolved",
        json!({"approval": approval("ap-old", "Approved")}),
    ))
    .unwrap();
    event["timestampSent"] = json!(OffsetDateTime::now_utc().unix_timestamp() - 3600);
    let body = serde_json::to_vec(&event).unwrap();
    assert!(matches!(
        deliver(&env, &body).await,
        Err(WebhookError::Unverified(_))
    ));
    assert_eq!(
        state_of(&env, &request).await.state,
        DestinationRequestState::PendingApproval
    );
}

#[tokio::test]
async fn the_same_webhook_twice_applies_once() {
    let env = TestEnv::start(no_webhooks()).await;
    let request = pending_request(&env, "ap-twice").await;
    let body = delivery(
        "policy.approval.resolved",
        json!({"approval": approval("ap-twice", "Approved")}),
    );
    assert_eq!(
        deliver(&env, &body).await.unwrap(),
        WebhookOutcome::Processed
    );
    assert_eq!(
        deliver(&env, &body).await.unwrap(),
        WebhookOutcome::Duplicate
    );
    // A retry carries a new delivery id: the business object de-duplicates it.
    let retry = delivery(
        "policy.approval.resolved",
        json!({"approval": approval("ap-twice", "Approved")}),
    );
    assert_eq!(
        deliver(&env, &retry).await.unwrap(),
        WebhookOutcome::Processed
    );

    let stored = state_of(&env, &request).await;
    assert_eq!(stored.state, DestinationRequestState::Approved);
    let notes = env
        .app
        .store()
        .list_notifications(&request.client_id, 10, None)
        .await
        .unwrap();
    assert_eq!(notes.items.len(), 1, "{notes:?}");
    assert_eq!(notes.items[0].kind, "destination_request.approved");
    assert!(notes.items[0].published, "published to the event bus");
    let trail = env
        .app
        .store()
        .list_audit_events(&request.client_id, None, 100)
        .await
        .unwrap();
    let approvals = trail
        .entries
        .iter()
        .filter(|e| e.event().unwrap().action.as_str() == "destination_request.approved")
        .count();
    assert_eq!(approvals, 1);
    // The slot is free again.
    assert_eq!(
        env.app
            .store()
            .policy_change_in_flight(&request.client_id)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn an_older_status_after_a_newer_one_does_not_move_state_back() {
    let env = TestEnv::start(no_webhooks()).await;
    let request = pending_request(&env, "ap-order").await;
    let denied = delivery(
        "policy.approval.resolved",
        json!({"approval": approval("ap-order", "Denied")}),
    );
    deliver(&env, &denied).await.unwrap();
    let after_denial = state_of(&env, &request).await;
    assert_eq!(after_denial.state, DestinationRequestState::Rejected);
    assert_eq!(after_denial.reason.as_deref(), Some("not a known exchange"));

    // The pending notice arrives late, then a contradicting resolution: neither moves it.
    let late_pending = delivery(
        "policy.approval.pending",
        json!({"approval": approval("ap-order", "Pending")}),
    );
    deliver(&env, &late_pending).await.unwrap();
    let approved = delivery(
        "policy.approval.resolved",
        json!({"approval": approval("ap-order", "Approved")}),
    );
    deliver(&env, &approved).await.unwrap();
    let finally = state_of(&env, &request).await;
    assert_eq!(finally.state, DestinationRequestState::Rejected);
    assert_eq!(finally.updated_at, after_denial.updated_at);
    let notes = env
        .app
        .store()
        .list_notifications(&request.client_id, 10, None)
        .await
        .unwrap();
    assert_eq!(
        notes
            .items
            .iter()
            .map(|n| n.kind.as_str())
            .collect::<Vec<_>>(),
        vec!["destination_request.rejected"]
    );
}

#[tokio::test]
async fn unknown_kinds_are_acknowledged() {
    let env = TestEnv::start(no_webhooks()).await;
    let body = delivery("wallet.offer.received", json!({"offer": {"id": "x"}}));
    assert_eq!(deliver(&env, &body).await.unwrap(), WebhookOutcome::Ignored);
}

#[tokio::test]
async fn a_deposit_is_notified_once() {
    let env = TestEnv::start(no_webhooks()).await;
    let store = env.app.store();
    let wallet_id = domain::WalletId::parse("wa-test1-test2-deposit0000001").unwrap();
    let client = client_with_wallet(&env, "depositor", &wallet_id).await;
    let event = json!({"blockchainEvent": {
        "walletId": wallet_id.as_str(),
        "direction": "In",
        "network": "EthereumSepolia",
        "blockNumber": 7,
        "txHash": "0xdeadbeef",
        "index": "0",
        "timestamp": "2026-01-01T00:00:00.000Z",
        "kind": "NativeTransfer",
        "from": "0x8617e340b3d01fa5f11f306f4090fd50e238070d",
        "to": ADDRESS,
        "value": "1000000000000000000",
        "metadata": {"asset": {"symbol": "ETH", "decimals": 18}}
    }});
    let first = delivery("wallet.blockchainevent.detected", event.clone());
    let retry = delivery("wallet.blockchainevent.detected", event);
    assert_eq!(
        deliver(&env, &first).await.unwrap(),
        WebhookOutcome::Processed
    );
    assert_eq!(
        deliver(&env, &retry).await.unwrap(),
        WebhookOutcome::Processed
    );
    let notes = store.list_notifications(&client, 10, None).await.unwrap();
    assert_eq!(notes.items.len(), 1);
    assert_eq!(notes.items[0].kind, "deposit.received");
    assert_eq!(notes.items[0].detail["amount"], "1000000000000000000");
    let trail = store.list_audit_events(&client, None, 100).await.unwrap();
    let deposits = trail
        .entries
        .iter()
        .filter(|e| e.event().unwrap().action.as_str() == "deposit.received")
        .count();
    assert_eq!(deposits, 1);
}

/// A deposit that reaches a wallet before any client holds it (Dfns created the wallet; the
/// mapping is not written yet) is kept, not acknowledged and lost; once the mapping appears, the
/// reconciler's sweep attaches it: one audit line and one notification, however often it is
/// reported or attached.
#[tokio::test]
async fn a_deposit_to_an_unmapped_wallet_is_kept_and_attached_when_the_mapping_appears() {
    let env = TestEnv::start(no_webhooks()).await;
    let store = env.app.store();
    let wallet_id = domain::WalletId::parse(&format!(
        "wa-kept-{}",
        ulid::Ulid::new().to_string().to_lowercase()
    ))
    .unwrap();
    let early = platform::testing::deposit_delivery(wallet_id.as_str(), "0xearly");
    assert_eq!(deliver(&env, &early).await.unwrap(), WebhookOutcome::Kept);
    assert_eq!(
        store
            .kept_events_of_wallet(wallet_id.as_str())
            .await
            .unwrap()
            .len(),
        1
    );
    // Nobody holds the wallet yet: the sweep leaves it kept.
    assert_eq!(
        webhook::attach_recently_kept(&env.app, "t", 100)
            .await
            .unwrap(),
        0
    );

    let client = client_with_wallet(&env, "late-mapped", &wallet_id).await;
    assert_eq!(
        webhook::attach_recently_kept(&env.app, "t", 100)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        webhook::attach_recently_kept(&env.app, "t", 100)
            .await
            .unwrap(),
        0
    );
    assert!(
        store
            .kept_events_of_wallet(wallet_id.as_str())
            .await
            .unwrap()
            .is_empty()
    );
    // Dfns reports it again (a new event id): still one.
    let again = platform::testing::deposit_delivery(wallet_id.as_str(), "0xearly");
    assert_eq!(
        deliver(&env, &again).await.unwrap(),
        WebhookOutcome::Processed
    );

    let trail = store.list_audit_events(&client, None, 100).await.unwrap();
    assert_eq!(audit_count(&trail, "deposit.received"), 1);
    let notes = store.list_notifications(&client, 10, None).await.unwrap();
    assert_eq!(notes.items.len(), 1, "{notes:?}");
    assert_eq!(notes.items[0].kind, "deposit.received");
    assert!(store.verify_audit_chain(&client).await.unwrap().is_intact());
}

fn audit_count(trail: &store::AuditPage, action: &str) -> usize {
    trail
        .entries
        .iter()
        .filter(|e| e.event().unwrap().action.as_str() == action)
        .count()
}

/// A delivery that moved the request and then died (no audit line, no notification yet) is
/// finished by Dfns' retry; a further retry adds nothing.
#[tokio::test]
async fn a_retry_finishes_what_a_delivery_that_died_after_the_state_change_left_undone() {
    let env = TestEnv::start(no_webhooks()).await;
    let request = pending_request(&env, "ap-died").await;
    let store = env.app.store();
    // The dead delivery's state change, and nothing after it.
    store
        .advance_destination_request(
            &request.client_id,
            &request.id,
            DestinationRequestState::Approved,
            &RequestChanges::default(),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    let trail = store
        .list_audit_events(&request.client_id, None, 100)
        .await
        .unwrap();
    assert_eq!(audit_count(&trail, "destination_request.approved"), 0);

    for _ in 0..2 {
        let retry = delivery(
            "policy.approval.resolved",
            json!({"approval": approval("ap-died", "Approved")}),
        );
        assert_eq!(
            deliver(&env, &retry).await.unwrap(),
            WebhookOutcome::Processed
        );
    }
    let trail = store
        .list_audit_events(&request.client_id, None, 100)
        .await
        .unwrap();
    assert_eq!(audit_count(&trail, "destination_request.approved"), 1);
    let notes = store
        .list_notifications(&request.client_id, 10, None)
        .await
        .unwrap();
    assert_eq!(notes.items.len(), 1, "{notes:?}");
    assert_eq!(notes.items[0].kind, "destination_request.approved");
    assert!(
        store
            .verify_audit_chain(&request.client_id)
            .await
            .unwrap()
            .is_intact()
    );
}

/// Dfns reports one transfer status in several events (new event ids): the trail has one line per
/// status, not per event.
#[tokio::test]
async fn a_transfer_status_reported_twice_is_audited_once() {
    let env = TestEnv::start(no_webhooks()).await;
    let store = env.app.store();
    let wallet_id = domain::WalletId::parse("wa-test1-test2-transfer00000001").unwrap();
    let client = client_with_wallet(&env, "transferring", &wallet_id).await;
    let transfer = |status: &str| {
        json!({"transferRequest": {
            "id": "xfr-test1-test2-once0000000001",
            "walletId": wallet_id.as_str(),
            "network": "EthereumSepolia",
            "requester": {"userId": "us-service-account"},
            "requestBody": {"kind": "Native", "to": ADDRESS, "amount": "5"},
            "status": status,
            "dateRequested": "2026-01-01T00:00:00.000Z"
        }})
    };
    for (kind, status) in [
        ("wallet.transfer.broadcasted", "Broadcasted"),
        ("wallet.transfer.broadcasted", "Broadcasted"),
        ("wallet.transfer.confirmed", "Confirmed"),
        ("wallet.transfer.confirmed", "Confirmed"),
    ] {
        let body = delivery(kind, transfer(status));
        assert_eq!(
            deliver(&env, &body).await.unwrap(),
            WebhookOutcome::Processed
        );
    }
    let trail = store.list_audit_events(&client, None, 100).await.unwrap();
    let statuses: Vec<String> = trail
        .entries
        .iter()
        .map(|e| e.event().unwrap())
        .filter(|e| e.action.as_str() == "transfer.status_reported")
        .map(|e| e.details["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, ["Broadcasted", "Confirmed"]);
}
