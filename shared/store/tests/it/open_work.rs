//! The reconciler's and the in-flight refresh's work lists: exactly the unfinished items, of
//! every client, read from the sparse `open` index.

use domain::{DestinationRequestState as D, OrderState as O};
use store::{OrderChanges, RequestChanges, Store};
use time::Duration;

use crate::destinations::{new_request, submitted};
use crate::orders::order;
use crate::{client_id, fresh_store, t0};

/// How many items the index holds under `kind`: a final item must have left it, not merely be
/// filtered out on reading.
async fn indexed(store: &Store, kind: &str) -> usize {
    let page = store
        .client()
        .query()
        .table_name(store.table_name())
        .index_name(store::schema::OPEN_INDEX)
        .key_condition_expression("openPk = :kind")
        .expression_attribute_values(
            ":kind",
            aws_sdk_dynamodb::types::AttributeValue::S(kind.into()),
        )
        .send()
        .await
        .unwrap();
    page.items.unwrap_or_default().len()
}

async fn open_request_ids(store: &Store) -> Vec<String> {
    let mut ids: Vec<String> = store
        .open_destination_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.id.to_string())
        .collect();
    ids.sort();
    ids
}

async fn in_flight_ids(store: &Store) -> Vec<String> {
    let mut ids: Vec<String> = store
        .in_flight_orders()
        .await
        .unwrap()
        .iter()
        .map(|o| o.id.to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn destination_requests_are_open_until_final() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let bob = client_id("bob");
    let queued = store
        .create_destination_request(&new_request(&alice))
        .await
        .unwrap();
    let cancelled = store
        .create_destination_request(&new_request(&alice))
        .await
        .unwrap();
    store
        .transition_destination_request(
            &alice,
            &cancelled.id,
            D::Queued,
            D::Cancelled,
            &RequestChanges::default(),
            t0(),
        )
        .await
        .unwrap();
    let pending = submitted(&store, &bob).await;
    store
        .transition_destination_request(
            &bob,
            &pending,
            D::Submitted,
            D::PendingApproval,
            &RequestChanges {
                approval_id: Some("ap-1".into()),
                change_request_id: Some("cr-1".into()),
                reason: None,
            },
            t0(),
        )
        .await
        .unwrap();
    let mut expected = vec![queued.id.to_string(), pending.to_string()];
    expected.sort();
    assert_eq!(open_request_ids(&store).await, expected);

    store
        .transition_destination_request(
            &bob,
            &pending,
            D::PendingApproval,
            D::Approved,
            &RequestChanges::default(),
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(open_request_ids(&store).await, vec![queued.id.to_string()]);
    assert_eq!(indexed(&store, "OPEN#DESTREQ").await, 1);
}

#[tokio::test]
async fn orders_are_in_flight_from_submitted_until_final() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let scheduled = store
        .create_order(&order(&alice, Duration::minutes(5)))
        .await
        .unwrap();
    let sent = store
        .create_order(&order(&alice, -Duration::minutes(1)))
        .await
        .unwrap();
    let held = store
        .claim_order(&sent.id, t0(), Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(
        in_flight_ids(&store).await,
        Vec::<String>::new(),
        "claimed is not in flight"
    );
    store
        .transition_order(
            &sent.id,
            O::Claimed,
            O::Submitted,
            &OrderChanges::default(),
            Some(&held.claim),
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(in_flight_ids(&store).await, vec![sent.id.to_string()]);
    store
        .transition_order(
            &sent.id,
            O::Submitted,
            O::Broadcasted,
            &OrderChanges::default(),
            None,
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(in_flight_ids(&store).await, vec![sent.id.to_string()]);
    store
        .transition_order(
            &sent.id,
            O::Broadcasted,
            O::Confirmed,
            &OrderChanges::default(),
            None,
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(in_flight_ids(&store).await, Vec::<String>::new());
    assert_eq!(indexed(&store, "OPEN#ORDER").await, 0);
    // Never sent: never in flight.
    assert_eq!(
        store.get_order(&scheduled.id).await.unwrap().unwrap().state,
        O::Scheduled
    );
}
