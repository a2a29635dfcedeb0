use domain::{
    DestinationAction, DestinationRequestId, DestinationRequestState as S, Network, NetworkAddress,
};
use futures::future::join_all;
use store::{Advance, NewDestinationRequest, RequestChanges, Store, StoreError};

use crate::{client_id, fresh_store, t0};

pub(crate) fn new_request(client: &domain::ClientId) -> NewDestinationRequest {
    NewDestinationRequest {
        id: DestinationRequestId::new(),
        client_id: client.clone(),
        destination: NetworkAddress::parse(
            Network::EthereumSepolia,
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        )
        .unwrap(),
        label: "Cold storage".into(),
        action: DestinationAction::Add,
        created_at: t0(),
    }
}

pub(crate) async fn submitted(store: &Store, client: &domain::ClientId) -> DestinationRequestId {
    let created = store
        .create_destination_request(&new_request(client))
        .await
        .unwrap();
    let submitted = store
        .submit_destination_request(client, &created.id, t0())
        .await
        .unwrap();
    assert_eq!(submitted.state, S::Submitted);
    created.id
}

#[tokio::test]
async fn create_get_list_and_address_stays_lowercase() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let new = new_request(&alice);
    let created = store.create_destination_request(&new).await.unwrap();
    assert_eq!(created.state, S::Queued);
    assert_eq!(
        created.destination.address().to_string(),
        "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359"
    );
    assert_eq!(
        store
            .get_destination_request(&alice, &new.id)
            .await
            .unwrap(),
        Some(created.clone())
    );
    // Same id again: conflict.
    assert!(matches!(
        store.create_destination_request(&new).await,
        Err(StoreError::Conflict { .. })
    ));
    let second = store
        .create_destination_request(&new_request(&alice))
        .await
        .unwrap();
    let listed = store.list_destination_requests(&alice).await.unwrap();
    assert_eq!(
        listed.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![created.id, second.id]
    );
}

#[tokio::test]
async fn another_clients_request_is_not_found() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let bob = client_id("bob");
    let created = store
        .create_destination_request(&new_request(&alice))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_destination_request(&bob, &created.id)
            .await
            .unwrap(),
        None
    );
    assert!(
        store
            .list_destination_requests(&bob)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store
            .transition_destination_request(
                &bob,
                &created.id,
                S::Queued,
                S::Cancelled,
                &RequestChanges::default(),
                t0()
            )
            .await,
        Err(StoreError::NotFound { .. })
    ));
    // Alice's request is untouched.
    let alices = store
        .get_destination_request(&alice, &created.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alices.state, S::Queued);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_racers_out_of_submitted_exactly_one_wins() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let id = submitted(&store, &alice).await;
    let targets = [S::PendingApproval, S::Approved, S::Rejected, S::Failed];
    let racers = (0..20).map(|i| {
        let (store, alice) = (store.clone(), alice.clone());
        let to = targets[i % targets.len()];
        let changes = RequestChanges {
            approval_id: Some(format!("ap-racer-{i}")),
            change_request_id: None,
            reason: Some(format!("racer {i}")),
        };
        tokio::spawn(async move {
            (
                to,
                store
                    .transition_destination_request(&alice, &id, S::Submitted, to, &changes, t0())
                    .await,
            )
        })
    });
    let results: Vec<_> = join_all(racers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let winners: Vec<_> = results
        .iter()
        .filter_map(|(to, r)| r.as_ref().ok().map(|rec| (*to, rec.clone())))
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for (_, result) in &results {
        if let Err(e) = result {
            assert!(
                matches!(e, StoreError::ConditionFailed { .. }),
                "loser got {e:?}"
            );
        }
    }
    let (winning_state, winning_record) = &winners[0];
    let stored = store
        .get_destination_request(&alice, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, *winning_state);
    assert_eq!(&stored, winning_record);
}

#[tokio::test]
async fn illegal_moves_are_refused_and_cancel_only_while_queued() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let id = submitted(&store, &alice).await;
    let err = store
        .transition_destination_request(
            &alice,
            &id,
            S::Submitted,
            S::Cancelled,
            &RequestChanges::default(),
            t0(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::IllegalTransition { .. }),
        "{err:?}"
    );
    // Expected state wrong: condition fails and nothing changes.
    let err = store
        .transition_destination_request(
            &alice,
            &id,
            S::Queued,
            S::Cancelled,
            &RequestChanges::default(),
            t0(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed { .. }), "{err:?}");
    assert_eq!(
        store
            .get_destination_request(&alice, &id)
            .await
            .unwrap()
            .unwrap()
            .state,
        S::Submitted
    );

    let queued = store
        .create_destination_request(&new_request(&alice))
        .await
        .unwrap();
    let cancelled = store
        .transition_destination_request(
            &alice,
            &queued.id,
            S::Queued,
            S::Cancelled,
            &RequestChanges::default(),
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(cancelled.state, S::Cancelled);
}

#[tokio::test]
async fn found_by_approval_and_change_request_id() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let id = submitted(&store, &alice).await;
    let changes = RequestChanges {
        approval_id: Some("ap-2a9in-tt2a1-983lho480p35ejd0".into()),
        change_request_id: Some("cr-2100g-abcde-xxxxxxxxxxxxxxxx".into()),
        reason: None,
    };
    let pending = store
        .transition_destination_request(
            &alice,
            &id,
            S::Submitted,
            S::PendingApproval,
            &changes,
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(
        pending.approval_id.as_deref(),
        Some("ap-2a9in-tt2a1-983lho480p35ejd0")
    );

    let by_approval = store
        .find_destination_request_by_approval_id("ap-2a9in-tt2a1-983lho480p35ejd0")
        .await
        .unwrap();
    assert_eq!(by_approval, Some(pending.clone()));
    let by_change = store
        .find_destination_request_by_change_request_id("cr-2100g-abcde-xxxxxxxxxxxxxxxx")
        .await
        .unwrap();
    assert_eq!(by_change, Some(pending));
    assert_eq!(
        store
            .find_destination_request_by_approval_id("ap-unknown")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .find_destination_request_by_change_request_id("cr-unknown")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn late_webhooks_never_move_a_request_back() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let id = submitted(&store, &alice).await;
    let none = RequestChanges::default();
    // The resolution overtakes the pending-approval report.
    let approved = store
        .advance_destination_request(&alice, &id, S::Approved, &none, t0())
        .await
        .unwrap();
    assert!(matches!(approved, Advance::Applied(ref r) if r.state == S::Approved));
    let late = store
        .advance_destination_request(&alice, &id, S::PendingApproval, &none, t0())
        .await
        .unwrap();
    assert!(matches!(late, Advance::Stale(ref r) if r.state == S::Approved));
    let repeated = store
        .advance_destination_request(&alice, &id, S::Approved, &none, t0())
        .await
        .unwrap();
    assert!(matches!(repeated, Advance::Stale(_)));
    assert_eq!(
        store
            .get_destination_request(&alice, &id)
            .await
            .unwrap()
            .unwrap()
            .state,
        S::Approved
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_policy_change_in_flight_per_client() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            store
                .create_destination_request(&new_request(&alice))
                .await
                .unwrap()
                .id,
        );
    }
    // Plain transitions cannot bypass the slot.
    assert!(matches!(
        store
            .transition_destination_request(
                &alice,
                &ids[0],
                S::Queued,
                S::Submitted,
                &RequestChanges::default(),
                t0()
            )
            .await,
        Err(StoreError::IllegalTransition { .. })
    ));

    // Five workers each try to submit a different request at once: exactly one gets through.
    let workers = ids.iter().map(|id| {
        let (store, alice, id) = (store.clone(), alice.clone(), *id);
        tokio::spawn(async move {
            (
                id,
                store.submit_destination_request(&alice, &id, t0()).await,
            )
        })
    });
    let results: Vec<_> = join_all(workers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let winners: Vec<_> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter_map(|(_, r)| r.as_ref().err())
            .all(|e| matches!(e, StoreError::ConditionFailed { .. }))
    );
    let first = winners[0];
    assert_eq!(
        store.policy_change_in_flight(&alice).await.unwrap(),
        Some(first)
    );

    // Another client is not blocked by Alice's change.
    let bob = client_id("bob");
    let bobs = store
        .create_destination_request(&new_request(&bob))
        .await
        .unwrap();
    store
        .submit_destination_request(&bob, &bobs.id, t0())
        .await
        .unwrap();

    // Resolving the change frees the slot, and the queue drains one at a time.
    let changes = RequestChanges {
        approval_id: Some("ap-1".into()),
        ..Default::default()
    };
    store
        .transition_destination_request(
            &alice,
            &first,
            S::Submitted,
            S::PendingApproval,
            &changes,
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(
        store.policy_change_in_flight(&alice).await.unwrap(),
        Some(first)
    );
    store
        .advance_destination_request(
            &alice,
            &first,
            S::Approved,
            &RequestChanges::default(),
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(store.policy_change_in_flight(&alice).await.unwrap(), None);
    for id in ids.iter().filter(|id| **id != first) {
        store
            .submit_destination_request(&alice, id, t0())
            .await
            .unwrap();
        let others = ids.iter().filter(|other| *other != id && **other != first);
        for other in others {
            let state = store
                .get_destination_request(&alice, other)
                .await
                .unwrap()
                .unwrap()
                .state;
            if state == S::Queued {
                assert!(matches!(
                    store.submit_destination_request(&alice, other, t0()).await,
                    Err(StoreError::ConditionFailed { .. })
                ));
            }
        }
        store
            .transition_destination_request(
                &alice,
                id,
                S::Submitted,
                S::Rejected,
                &RequestChanges::default(),
                t0(),
            )
            .await
            .unwrap();
    }
    let states: Vec<_> = store
        .list_destination_requests(&alice)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.state)
        .collect();
    assert_eq!(states.iter().filter(|s| **s == S::Approved).count(), 1);
    assert_eq!(states.iter().filter(|s| **s == S::Rejected).count(), 4);
}

#[tokio::test]
async fn a_slot_left_by_a_finished_request_is_taken_over() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let first = submitted(&store, &alice).await;
    store
        .transition_destination_request(
            &alice,
            &first,
            S::Submitted,
            S::Failed,
            &RequestChanges::default(),
            t0(),
        )
        .await
        .unwrap();
    // Simulate a release that never happened (a crash between the two writes).
    store
        .client()
        .put_item()
        .table_name(store.table_name())
        .item(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("CLIENT#{alice}")),
        )
        .item(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("POLICY#CHANGE_SLOT".into()),
        )
        .item(
            "holder",
            aws_sdk_dynamodb::types::AttributeValue::S(first.to_string()),
        )
        .send()
        .await
        .unwrap();
    let next = store
        .create_destination_request(&new_request(&alice))
        .await
        .unwrap();
    let submitted = store
        .submit_destination_request(&alice, &next.id, t0())
        .await
        .unwrap();
    assert_eq!(submitted.state, S::Submitted);
    assert_eq!(
        store.policy_change_in_flight(&alice).await.unwrap(),
        Some(next.id)
    );
    // Submitting twice is refused without disturbing the holder.
    assert!(matches!(
        store
            .submit_destination_request(&alice, &next.id, t0())
            .await,
        Err(StoreError::ConditionFailed { .. })
    ));
    assert_eq!(
        store.policy_change_in_flight(&alice).await.unwrap(),
        Some(next.id)
    );
}
