//! The organisation-wide Dfns request budget: refill, floor, and no lost updates under racing
//! containers. Time is passed in, so these tests do not depend on the machine clock.

use std::time::Duration;

use store::StoreError;
use store::dfns_budget::{BudgetShape, Lease, LeaseAsk};

use crate::{fresh_store, t0};

/// 10 requests a second, up to 100.
const SHAPE: BudgetShape = BudgetShape {
    per_minute: 600,
    capacity: 100,
};

fn ms(millis: i64) -> time::OffsetDateTime {
    t0() + time::Duration::milliseconds(millis)
}

fn ask(want: u32, at_least: u32, floor: u32) -> LeaseAsk {
    LeaseAsk {
        want,
        at_least,
        floor,
    }
}

/// Leases `want` blocks until the bucket answers `Wait`; the tokens granted.
async fn drain(store: &store::Store, want: u32, floor: u32, now: time::OffsetDateTime) -> u32 {
    let mut granted = 0;
    loop {
        match store
            .lease_dfns_budget(SHAPE, ask(want, 1, floor), now)
            .await
            .unwrap()
        {
            Lease::Granted(n) => granted += n,
            Lease::Wait(_) => return granted,
        }
    }
}

#[tokio::test]
async fn a_new_bucket_is_full_and_grants_its_capacity_and_no_more() {
    let store = fresh_store().await;
    assert_eq!(
        store.dfns_budget_level(SHAPE, t0()).await.unwrap().tokens,
        100.0
    );
    assert_eq!(
        store
            .lease_dfns_budget(SHAPE, ask(10, 3, 0), t0())
            .await
            .unwrap(),
        Lease::Granted(10)
    );
    assert_eq!(drain(&store, 10, 0, t0()).await, 90);
    // One request short: the refill of one request at 10/s.
    assert_eq!(
        store
            .lease_dfns_budget(SHAPE, ask(10, 1, 0), t0())
            .await
            .unwrap(),
        Lease::Wait(Duration::from_millis(100))
    );
    let level = store.dfns_budget_level(SHAPE, t0()).await.unwrap();
    assert_eq!(level.tokens, 0.0);
    assert_eq!(
        level.version, 10,
        "one write per granted lease, none for a wait"
    );
}

#[tokio::test]
async fn the_bucket_refills_with_elapsed_time_up_to_its_capacity() {
    let store = fresh_store().await;
    assert_eq!(drain(&store, 50, 0, t0()).await, 100);

    // 2.5 s at 10/s: 25 requests, a partial block down to what is there.
    assert_eq!(
        store
            .lease_dfns_budget(SHAPE, ask(40, 1, 0), ms(2_500))
            .await
            .unwrap(),
        Lease::Granted(25)
    );
    // Nothing more at the same instant; 3 requests take 300 ms.
    assert_eq!(
        store
            .lease_dfns_budget(SHAPE, ask(3, 3, 0), ms(2_500))
            .await
            .unwrap(),
        Lease::Wait(Duration::from_millis(300))
    );
    // Fractions of a request carry over: 150 ms is 1.5 requests, 1 taken, 0.5 kept.
    assert_eq!(
        store
            .lease_dfns_budget(SHAPE, ask(5, 1, 0), ms(2_650))
            .await
            .unwrap(),
        Lease::Granted(1)
    );
    assert_eq!(
        store
            .lease_dfns_budget(SHAPE, ask(5, 1, 0), ms(2_700))
            .await
            .unwrap(),
        Lease::Granted(1)
    );
    // An hour later the bucket is full, not 36 000.
    assert_eq!(
        store
            .dfns_budget_level(SHAPE, ms(3_600_000))
            .await
            .unwrap()
            .tokens,
        100.0
    );
    assert_eq!(drain(&store, 30, 0, ms(3_600_000)).await, 100);
}

#[tokio::test]
async fn interactive_leases_stop_at_the_reserved_floor_background_ones_do_not() {
    let store = fresh_store().await;
    let floor = 30;
    // Interactive callers take the bucket down to the floor and no further.
    assert_eq!(drain(&store, 10, floor, t0()).await, 70);
    assert_eq!(
        store
            .lease_dfns_budget(SHAPE, ask(10, 3, floor), t0())
            .await
            .unwrap(),
        Lease::Wait(Duration::from_millis(300)),
        "an interactive caller waits for 3 requests above the floor"
    );
    // Background callers are served from the reserve at once.
    assert_eq!(
        store
            .lease_dfns_budget(SHAPE, ask(10, 3, 0), t0())
            .await
            .unwrap(),
        Lease::Granted(10)
    );
    assert_eq!(drain(&store, 10, 0, t0()).await, 20);
    // Below the floor, an interactive caller waits for the whole reserve to refill first.
    assert_eq!(
        store
            .lease_dfns_budget(SHAPE, ask(10, 1, floor), t0())
            .await
            .unwrap(),
        Lease::Wait(Duration::from_millis(3_100))
    );
    // 1 s later 10 are back: for background callers, not yet for interactive ones.
    assert!(matches!(
        store
            .lease_dfns_budget(SHAPE, ask(1, 1, floor), ms(1_000))
            .await
            .unwrap(),
        Lease::Wait(_)
    ));
    assert_eq!(
        store
            .lease_dfns_budget(SHAPE, ask(10, 1, 0), ms(1_000))
            .await
            .unwrap(),
        Lease::Granted(10)
    );
}

#[tokio::test]
async fn racing_leases_never_spend_the_same_tokens_twice() {
    let store = fresh_store().await;
    // 30 containers at one instant (no refill), each wanting 5: exactly 100 can be had.
    let racers: Vec<_> = (0..30)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                loop {
                    match store.lease_dfns_budget(SHAPE, ask(5, 5, 0), t0()).await {
                        Ok(Lease::Granted(n)) => return n,
                        Ok(Lease::Wait(_)) => return 0,
                        // Too many lost races in a row: a real caller waits and asks again.
                        Err(StoreError::Contention { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    let mut granted = Vec::new();
    for racer in racers {
        granted.push(racer.await.unwrap());
    }
    let total: u32 = granted.iter().sum();
    assert_eq!(
        total, 100,
        "every token granted once and once only: {granted:?}"
    );
    assert_eq!(granted.iter().filter(|&&n| n == 5).count(), 20);
    let level = store.dfns_budget_level(SHAPE, t0()).await.unwrap();
    assert_eq!(level.tokens, 0.0);
    assert_eq!(level.version, 20, "one write per grant");
}

#[tokio::test]
async fn leases_that_can_never_be_granted_are_refused_before_any_io() {
    let store = fresh_store().await;
    for bad in [ask(0, 0, 0), ask(2, 3, 0), ask(10, 10, 95)] {
        assert!(
            matches!(
                store.lease_dfns_budget(SHAPE, bad, t0()).await,
                Err(StoreError::InvalidInput { .. })
            ),
            "{bad:?}"
        );
    }
    let no_rate = BudgetShape {
        per_minute: 0,
        capacity: 10,
    };
    assert!(matches!(
        store.lease_dfns_budget(no_rate, ask(1, 1, 0), t0()).await,
        Err(StoreError::InvalidInput { .. })
    ));
}
