use domain::{Amount, Network, OrderId, OrderState as S};
use futures::future::join_all;
use store::{Advance, NewOrder, OrderChanges, Store, StoreError};
use time::Duration;

use crate::{client_id, fresh_store, t0};

const LEASE: Duration = Duration::seconds(60);

pub(crate) fn order(client: &domain::ClientId, execute_in: Duration) -> NewOrder {
    NewOrder {
        id: OrderId::new(),
        client_id: client.clone(),
        network: Network::EthereumSepolia,
        kind: store::OrderKind::Exchange,
        exchange: "Kraken".into(),
        to: None,
        asset: "ETH".into(),
        amount: Amount::new(250_000_000_000_000_000),
        execute_at: t0() + execute_in,
        created_by: "operator-1".into(),
        created_at: t0() - Duration::hours(1),
        needs_confirmation: false,
    }
}

async fn due_ids(store: &Store, now: time::OffsetDateTime) -> Vec<OrderId> {
    let mut ids: Vec<_> = store
        .list_due_orders(now, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.id)
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn due_query_returns_only_due_unclaimed_orders() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let due = store
        .create_order(&order(&alice, -Duration::minutes(5)))
        .await
        .unwrap();
    let due_now = store
        .create_order(&order(&alice, Duration::ZERO))
        .await
        .unwrap();
    let future = store
        .create_order(&order(&alice, Duration::minutes(5)))
        .await
        .unwrap();
    let claimed = store
        .create_order(&order(&alice, -Duration::minutes(1)))
        .await
        .unwrap();
    let cancelled = store
        .create_order(&order(&alice, -Duration::minutes(2)))
        .await
        .unwrap();
    let submitted = store
        .create_order(&order(&alice, -Duration::minutes(3)))
        .await
        .unwrap();

    // A lease longer than the first look-ahead below, so the claimed order stays held at first.
    let long_lease = Duration::minutes(10);
    store
        .claim_order(&claimed.id, t0(), long_lease)
        .await
        .unwrap();
    store
        .transition_order(
            &cancelled.id,
            S::Scheduled,
            S::Cancelled,
            &OrderChanges::default(),
            None,
            t0(),
        )
        .await
        .unwrap();
    let held = store.claim_order(&submitted.id, t0(), LEASE).await.unwrap();
    store
        .transition_order(
            &submitted.id,
            S::Claimed,
            S::Submitted,
            &OrderChanges::default(),
            Some(&held.claim),
            t0(),
        )
        .await
        .unwrap();

    let mut expected = vec![due.id, due_now.id];
    expected.sort();
    assert_eq!(due_ids(&store, t0()).await, expected);
    // Earliest first, and the limit holds.
    let first = store.list_due_orders(t0(), 1).await.unwrap();
    assert_eq!(first.iter().map(|o| o.id).collect::<Vec<_>>(), vec![due.id]);
    // Later, the future order is due too, and the claimed one once its lease has expired.
    let mut later = vec![due.id, due_now.id, future.id];
    later.sort();
    assert_eq!(due_ids(&store, t0() + Duration::minutes(5)).await, later);
    let mut after_lease = vec![due.id, due_now.id, future.id, claimed.id];
    after_lease.sort();
    assert_eq!(due_ids(&store, t0() + long_lease).await, after_lease);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claimed_order_cannot_be_claimed_again_until_its_lease_expires() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let new = order(&alice, -Duration::minutes(1));
    store.create_order(&new).await.unwrap();

    // Ten concurrent runs: exactly one claim wins.
    let runs = (0..10).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.claim_order(&new.id, t0(), LEASE).await })
    });
    let results: Vec<_> = join_all(runs)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, StoreError::ConditionFailed { .. }))
    );
    let first = results.into_iter().find_map(Result::ok).unwrap();
    assert_eq!(first.order.state, S::Claimed);
    assert_eq!(first.order.claim_count, 1);
    assert_eq!(first.order.lease_expires_at, Some(t0() + LEASE));

    // Still held just before the lease ends.
    assert!(matches!(
        store
            .claim_order(&new.id, t0() + LEASE - Duration::seconds(1), LEASE)
            .await,
        Err(StoreError::ConditionFailed { .. })
    ));
    // The run died: after the lease another run takes it over.
    let later = t0() + LEASE + Duration::seconds(1);
    let second = store.claim_order(&new.id, later, LEASE).await.unwrap();
    assert_eq!(second.order.claim_count, 2);
    assert_ne!(second.claim, first.claim);

    // The first run's token no longer works; the second's does.
    let changes = OrderChanges {
        transfer_id: Some("xfr-aaaaa-bbbbb-cccccccccccccc".into()),
        ..Default::default()
    };
    assert!(matches!(
        store
            .transition_order(
                &new.id,
                S::Claimed,
                S::Submitted,
                &changes,
                Some(&first.claim),
                later
            )
            .await,
        Err(StoreError::ConditionFailed { .. })
    ));
    let sent = store
        .transition_order(
            &new.id,
            S::Claimed,
            S::Submitted,
            &changes,
            Some(&second.claim),
            later,
        )
        .await
        .unwrap();
    assert_eq!(sent.state, S::Submitted);
    assert_eq!(
        sent.transfer_id.as_deref(),
        Some("xfr-aaaaa-bbbbb-cccccccccccccc")
    );
    // Submitted orders are never claimable again, whatever the time.
    assert!(matches!(
        store
            .claim_order(&new.id, later + Duration::days(1), LEASE)
            .await,
        Err(StoreError::ConditionFailed { .. })
    ));
}

#[tokio::test]
async fn not_yet_due_orders_cannot_be_claimed_and_unknown_ones_are_not_found() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let new = order(&alice, Duration::minutes(10));
    store.create_order(&new).await.unwrap();
    assert!(matches!(
        store.claim_order(&new.id, t0(), LEASE).await,
        Err(StoreError::ConditionFailed { .. })
    ));
    assert!(matches!(
        store.claim_order(&OrderId::new(), t0(), LEASE).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.create_order(&new).await,
        Err(StoreError::Conflict { .. })
    ));
}

/// Four eyes: an order that needs a second operator is out of the due index and cannot be
/// claimed until another operator than its creator confirms it; a confirmation happens once.
#[tokio::test]
async fn an_order_needing_confirmation_is_not_due_until_another_operator_confirms() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let new = NewOrder {
        needs_confirmation: true,
        ..order(&alice, Duration::ZERO)
    };
    let created = store.create_order(&new).await.unwrap();
    assert!(created.needs_confirmation);
    assert_eq!(created.confirmed_by, None);
    let later = t0() + Duration::hours(1);
    assert!(due_ids(&store, later).await.is_empty());
    assert!(matches!(
        store.claim_order(&new.id, later, LEASE).await,
        Err(StoreError::ConditionFailed { .. })
    ));
    // The creator cannot be the second pair of eyes.
    assert!(matches!(
        store
            .confirm_order(&new.id, "operator-1", new.execute_at, t0())
            .await,
        Err(StoreError::ConditionFailed { .. })
    ));
    let confirmed = store
        .confirm_order(&new.id, "operator-2", new.execute_at, t0())
        .await
        .unwrap();
    assert_eq!(confirmed.confirmed_by.as_deref(), Some("operator-2"));
    assert_eq!(confirmed.confirmed_at, Some(t0()));
    assert_eq!(store.get_order(&new.id).await.unwrap(), Some(confirmed));
    assert!(matches!(
        store
            .confirm_order(&new.id, "operator-3", new.execute_at, t0())
            .await,
        Err(StoreError::ConditionFailed { .. })
    ));
    assert_eq!(due_ids(&store, later).await, vec![new.id]);
    store.claim_order(&new.id, later, LEASE).await.unwrap();
    // An order that needs no confirmation cannot be confirmed.
    let plain = order(&alice, Duration::ZERO);
    store.create_order(&plain).await.unwrap();
    assert!(matches!(
        store
            .confirm_order(&plain.id, "operator-2", plain.execute_at, t0())
            .await,
        Err(StoreError::ConditionFailed { .. })
    ));
}

#[tokio::test]
async fn cancel_only_while_scheduled_and_webhooks_only_move_forward() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let new = order(&alice, -Duration::minutes(1));
    store.create_order(&new).await.unwrap();
    let claimed = store.claim_order(&new.id, t0(), LEASE).await.unwrap();
    // A claimed order may be at Dfns: only the claim's holder may end it (and a cancel must ask
    // Dfns first), so a cancel without the claim is refused.
    assert!(matches!(
        store
            .transition_order(
                &new.id,
                S::Claimed,
                S::Cancelled,
                &OrderChanges::default(),
                None,
                t0()
            )
            .await,
        Err(StoreError::IllegalTransition { .. })
    ));

    // The run crashed after Dfns accepted the transfer; its webhooks arrive, out of order.
    let none = OrderChanges::default();
    let confirmed = store
        .advance_order(&new.id, S::Confirmed, &none, t0())
        .await
        .unwrap();
    assert!(matches!(confirmed, Advance::Applied(ref o) if o.state == S::Confirmed));
    let late = store
        .advance_order(&new.id, S::Broadcasted, &none, t0())
        .await
        .unwrap();
    assert!(matches!(late, Advance::Stale(ref o) if o.state == S::Confirmed));
    // And the crashed run's own late write cannot undo it.
    assert!(matches!(
        store
            .transition_order(
                &new.id,
                S::Claimed,
                S::Submitted,
                &none,
                Some(&claimed.claim),
                t0()
            )
            .await,
        Err(StoreError::ConditionFailed { .. })
    ));
    assert_eq!(
        store.get_order(&new.id).await.unwrap().unwrap().state,
        S::Confirmed
    );
    assert!(
        store
            .list_due_orders(t0() + Duration::days(1), 10)
            .await
            .unwrap()
            .is_empty()
    );

    let listed = store.list_orders_for_client(&alice).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, new.id);
}

/// A client's withdrawals page newest first, each once, strictly before the cursor; the desk's
/// orders and other clients' withdrawals are not among them.
#[tokio::test]
async fn withdrawals_page_newest_first_apart_from_orders() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let bob = client_id("bob");
    let withdrawal = |client: &domain::ClientId| NewOrder {
        kind: store::OrderKind::Withdrawal,
        exchange: String::new(),
        to: Some("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed".into()),
        asset: "native".into(),
        ..order(client, Duration::ZERO)
    };
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(store.create_order(&withdrawal(&alice)).await.unwrap().id);
        // ULIDs made in one millisecond still sort by creation; the pause only keeps it obvious.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    store
        .create_order(&order(&alice, Duration::ZERO))
        .await
        .unwrap();
    store.create_order(&withdrawal(&bob)).await.unwrap();
    created.reverse();

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let (page, more) = store
            .list_withdrawals_for_client(&alice, cursor.as_ref(), 2)
            .await
            .unwrap();
        assert!(page.iter().all(|o| o.kind == store::OrderKind::Withdrawal));
        seen.extend(page.iter().map(|o| o.id));
        if !more {
            break;
        }
        cursor = page.last().map(|o| o.id);
    }
    assert_eq!(seen, created);
    // The desk's listing of alice's orders holds the order only.
    assert_eq!(store.list_orders_for_client(&alice).await.unwrap().len(), 1);
}
