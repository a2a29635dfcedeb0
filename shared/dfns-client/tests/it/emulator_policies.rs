//! Policies v2 and approvals against the emulator's policy engine.

use crate::common;

use std::time::Duration;

use crate::common::{As, emulator};
use dfns_client::approvals::{ApprovalsQuery, DecisionValue};
use dfns_client::common::InList;
use dfns_client::policies::{
    ApprovalGroup, Approvers, PoliciesQuery, PolicyFilters, WalletTagsFilter,
};
use dfns_client::{
    Activity, ActivityKind, Amount, ApprovalStatus, CreateWallet, DfnsClient, ExternalId, Network,
    PolicyAction, PolicyBody, PolicyId, PolicyRule, PolicyStatus, TransferAsset, TransferOutcome,
    TransferStatus, UpdateOutcome, UserId, WalletId,
};
use futures::TryStreamExt as _;

const RECIPIENT: &str = "0xb282dc7cde21717f18337a596e91ded00b79b25f";
const OTHER: &str = "0x1111111111111111111111111111111111111111";

fn native(amount: u128) -> TransferAsset {
    TransferAsset::Native {
        to: RECIPIENT.to_owned(),
        amount: Amount::from(amount),
        memo: None,
        priority: None,
    }
}

fn approval_by(officer: &str) -> PolicyAction {
    PolicyAction::RequestApproval {
        approval_groups: vec![ApprovalGroup {
            name: Some("Compliance".into()),
            quorum: 1,
            approvers: Approvers {
                user_id: Some(InList::new([UserId::new(officer)])),
                ..Default::default()
            },
            initiator_can_approve: None,
            service_accounts_can_approve: None,
        }],
        auto_reject_timeout: Some(1440),
    }
}

async fn wallet(emu: &common::Emulator, client: &DfnsClient, tags: &[&str]) -> WalletId {
    let mut body = CreateWallet::new(Network::EthereumSepolia);
    body.tags = tags.iter().map(|t| (*t).to_owned()).collect();
    let wallet = client.create_wallet(&body).await.unwrap();
    emu.deposit(wallet.id.as_str(), "1000000000000000000000")
        .await;
    wallet.id
}

#[tokio::test]
async fn a_block_policy_rejects_transfers_of_the_wallets_it_filters() {
    let emu = emulator().await;
    let client = emu.client(As::ServiceAccount);
    let policy = client
        .create_policy(&PolicyBody {
            name: "block client 7".into(),
            activity_kind: ActivityKind::WalletsSign,
            rule: PolicyRule::always_trigger(),
            action: PolicyAction::Block,
            filters: Some(PolicyFilters {
                wallet_tags: Some(WalletTagsFilter {
                    has_all: Some(vec!["client:7".into()]),
                    has_any: None,
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    assert_eq!(policy.status, PolicyStatus::Active);
    assert_eq!(client.get_policy(&policy.id).await.unwrap().id, policy.id);

    let blocked = wallet(&emu, &client, &["client:7"]).await;
    let outcome = client
        .transfer(&blocked, ExternalId::new("blocked-1"), native(10))
        .await
        .unwrap();
    let TransferOutcome::Rejected(transfer) = &outcome else {
        panic!("expected Rejected, got {outcome:?}")
    };
    assert_eq!(transfer.status, TransferStatus::Rejected);
    assert!(outcome.rejection_reason().is_some_and(|r| !r.is_empty()));

    let free = wallet(&emu, &client, &["client:8"]).await;
    let outcome = client
        .transfer(&free, ExternalId::new("free-1"), native(10))
        .await
        .unwrap();
    assert!(
        matches!(outcome, TransferOutcome::Accepted(_)),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_transfer_held_for_approval_is_listed_and_approved_by_an_officer() {
    let emu = emulator().await;
    let client = emu.client(As::ServiceAccount);
    let officer_id = emu.user_id(As::Officer(0));
    client
        .create_policy(&PolicyBody {
            name: "whitelist".into(),
            activity_kind: ActivityKind::WalletsSign,
            rule: PolicyRule::recipient_whitelist([OTHER.to_owned()]),
            action: approval_by(&officer_id),
            filters: None,
        })
        .await
        .unwrap();
    let wallet_id = wallet(&emu, &client, &[]).await;
    let transfer = client
        .transfer(&wallet_id, ExternalId::new("held-1"), native(10))
        .await
        .unwrap()
        .into_transfer();
    assert_eq!(transfer.status, TransferStatus::Pending);
    let approval_id = transfer.approval_id.clone().expect("held for approval");

    let pending: Vec<_> = client
        .list_approvals(&ApprovalsQuery {
            status: Some(ApprovalStatus::Pending),
            page_size: Some(1),
            ..Default::default()
        })
        .try_collect()
        .await
        .unwrap();
    let listed = pending
        .iter()
        .find(|a| a.id == approval_id)
        .expect("pending approval listed");
    let Activity::WalletsSign {
        transfer_request: Some(held),
        ..
    } = &listed.activity
    else {
        panic!("{:?}", listed.activity)
    };
    assert_eq!(held.id, transfer.id);
    assert!(listed.policy_evaluations.iter().any(|e| e.triggered));

    // The service account cannot approve; the officer (P-256 key) can.
    let refused = client
        .decide_approval(&approval_id, DecisionValue::Approved, None)
        .await
        .unwrap_err();
    assert!(matches!(refused.status(), Some(403)), "{refused}");
    let officer = emu.client(As::Officer(0));
    let decided = officer
        .decide_approval(
            &approval_id,
            DecisionValue::Approved,
            Some("known recipient"),
        )
        .await
        .unwrap();
    assert_eq!(decided.status, ApprovalStatus::Approved);
    assert_eq!(decided.decisions.len(), 1);
    assert_eq!(decided.decisions[0].user_id.as_str(), officer_id);
    assert_eq!(
        client.get_approval(&approval_id).await.unwrap().status,
        ApprovalStatus::Approved
    );

    let mut status = TransferStatus::Pending;
    for _ in 0..100 {
        status = client
            .get_transfer(&wallet_id, &transfer.id)
            .await
            .unwrap()
            .status;
        if status != TransferStatus::Pending {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_ne!(status, TransferStatus::Pending);
    assert_ne!(status, TransferStatus::Rejected);
}

#[tokio::test]
async fn policy_changes_under_policies_modify_are_pending_until_decided() {
    let emu = emulator().await;
    let client = emu.client(As::ServiceAccount);
    let officer_id = emu.user_id(As::Officer(0));
    let officer = emu.client(As::Officer(0));
    let target_body = PolicyBody {
        name: "limit v1".into(),
        activity_kind: ActivityKind::WalletsSign,
        rule: PolicyRule::amount_limit_usd(5_000),
        action: PolicyAction::Block,
        filters: None,
    };
    let target = client.create_policy(&target_body).await.unwrap();
    let bystander = client
        .create_policy(&PolicyBody {
            name: "bystander".into(),
            ..target_body.clone()
        })
        .await
        .unwrap();
    client
        .create_policy(&PolicyBody {
            name: "four eyes on limit".into(),
            activity_kind: ActivityKind::PoliciesModify,
            rule: PolicyRule::always_trigger(),
            action: approval_by(&officer_id),
            filters: Some(PolicyFilters {
                policy_id: Some(InList::new([target.id.clone()])),
                ..Default::default()
            }),
        })
        .await
        .unwrap();

    // Update: held, nothing changes yet.
    let v2 = PolicyBody {
        name: "limit v2".into(),
        rule: PolicyRule::amount_limit_usd(10_000),
        ..target_body.clone()
    };
    let UpdateOutcome::Pending(change) = client.update_policy(&target.id, &v2).await.unwrap()
    else {
        panic!("update must be held for approval")
    };
    assert_eq!(change.entity_id, target.id.as_str());
    let approval_id = change.approval_id.clone().expect("approval to decide");
    let before = client.get_policy(&target.id).await.unwrap();
    assert_eq!(before.name, "limit v1");
    assert_eq!(
        before.pending_change_request.as_ref().map(|c| c.id.clone()),
        Some(change.id.clone())
    );
    let approval = officer
        .decide_approval(&approval_id, DecisionValue::Approved, None)
        .await
        .unwrap();
    assert!(matches!(approval.activity, Activity::PoliciesModify { .. }));
    let after = client.get_policy(&target.id).await.unwrap();
    assert_eq!(after.name, "limit v2");
    assert_eq!(after.rule, PolicyRule::amount_limit_usd(10_000));
    assert!(after.pending_change_request.is_none());

    // Archive: held, then denied, so the policy stays active.
    let UpdateOutcome::Pending(change) = client.archive_policy(&target.id).await.unwrap() else {
        panic!("archive must be held for approval")
    };
    officer
        .decide_approval(
            change.approval_id.as_ref().unwrap(),
            DecisionValue::Denied,
            Some("keep it"),
        )
        .await
        .unwrap();
    assert_eq!(
        client.get_policy(&target.id).await.unwrap().status,
        PolicyStatus::Active
    );

    // A policy the governance filter does not cover is archived at once.
    let UpdateOutcome::Applied(archived) = client.archive_policy(&bystander.id).await.unwrap()
    else {
        panic!("not governed: applied at once")
    };
    assert_eq!(archived.status, PolicyStatus::Archived);

    let active: Vec<PolicyId> = client
        .list_policies(&PoliciesQuery {
            status: Some(PolicyStatus::Active),
            page_size: Some(1),
        })
        .map_ok(|p| p.id)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(active.len(), 2, "{active:?}");
    assert!(active.contains(&target.id) && !active.contains(&bystander.id));
}

#[tokio::test]
async fn every_delivered_event_verifies_and_parses_into_its_typed_kind() {
    use dfns_client::webhooks::CreateWebhook;
    use dfns_client::{EventData, WebhookEventKind, WebhookVerifier};

    let emu = emulator().await;
    let client = emu.client(As::ServiceAccount);
    let receiver = common::receiver().await;
    let created = client
        .create_webhook(&CreateWebhook {
            url: receiver.url.clone(),
            events: vec![WebhookEventKind::All],
            status: None,
            description: None,
        })
        .await
        .unwrap();
    let verifier = WebhookVerifier::new(created.secret.clone());
    let officer_id = emu.user_id(As::Officer(0));
    client
        .create_policy(&PolicyBody {
            name: "whitelist".into(),
            activity_kind: ActivityKind::WalletsSign,
            rule: PolicyRule::recipient_whitelist([OTHER.to_owned()]),
            action: approval_by(&officer_id),
            filters: None,
        })
        .await
        .unwrap();
    let wallet_id = wallet(&emu, &client, &[]).await;
    let transfer = client
        .transfer(&wallet_id, ExternalId::new("typed-events"), native(10))
        .await
        .unwrap()
        .into_transfer();
    emu.client(As::Officer(0))
        .decide_approval(
            transfer.approval_id.as_ref().unwrap(),
            DecisionValue::Approved,
            None,
        )
        .await
        .unwrap();

    let has = |kind: &'static str| {
        move |d: &common::Delivery| {
            String::from_utf8_lossy(&d.body).contains(&format!("\"kind\":\"{kind}\""))
        }
    };
    for kind in [
        "wallet.created",
        "wallet.blockchainevent.detected",
        "wallet.transfer.requested",
        "policy.triggered",
        "policy.approval.pending",
        "policy.approval.resolved",
    ] {
        receiver.wait_for(has(kind)).await;
    }
    let deliveries = receiver.deliveries.lock().unwrap().clone();
    let mut seen = std::collections::HashSet::new();
    for delivery in &deliveries {
        let event = verifier
            .verify(delivery.signature.as_deref(), &delivery.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&delivery.body)));
        match (&event.kind, &event.data) {
            (WebhookEventKind::WalletCreated, EventData::Wallet(_))
            | (WebhookEventKind::BlockchainEventDetected, EventData::BlockchainEventDetected(_))
            | (WebhookEventKind::ApprovalPending, EventData::ApprovalPending(_)) => {}
            // requested, and broadcasted/confirmed once the approved transfer moves on
            (_, EventData::Transfer(t)) => assert_eq!(t.id, transfer.id),
            (WebhookEventKind::PolicyTriggered, EventData::PolicyTriggered(evaluation)) => {
                assert!(evaluation.triggered)
            }
            (WebhookEventKind::ApprovalResolved, EventData::ApprovalResolved { approval, .. }) => {
                let approval = approval.as_ref().expect("emulator sends the approval");
                assert_eq!(approval.status, ApprovalStatus::Approved);
            }
            (_, EventData::Other(_)) => {}
            (kind, data) => panic!("{kind} parsed as {data:?}"),
        }
        seen.insert(event.kind.clone());
    }
    assert!(seen.len() >= 6, "{seen:?}");
}
