//! The organisation-wide Dfns request budget as containers use it: several budgets ("containers")
//! over one bucket in DynamoDB Local, the background reserve, waiting for the refill, and the
//! app's Dfns clients answering a refusal as a Dfns 429.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dfns_client::{BUDGET_EXHAUSTED_CODE, ClientConfig, DfnsClient, RetryPolicy, SecretString};
use platform::PlatformError;
use platform::dfns_budget::{BudgetSettings, DFNS_BUDGET_UNAVAILABLE, DfnsBudget, Priority};
use platform::testing::{FreshAws, TestEnv, TestOptions};
use store::Store;

async fn fresh_store() -> Store {
    let aws = FreshAws::create("budget").await;
    Store::new(aws.dynamodb, aws.table)
}

fn level(store: &Store, settings: &BudgetSettings) -> impl Future<Output = f64> {
    let store = store.clone();
    let shape = settings.shape();
    async move {
        store
            .dfns_budget_level(shape, time::OffsetDateTime::now_utc())
            .await
            .unwrap()
            .tokens
    }
}

/// A client whose requests, if any went out, fail to connect (nothing listens on port 1).
fn client(budget: &DfnsBudget) -> DfnsClient {
    DfnsClient::new(
        ClientConfig::new(SecretString::from("t".to_owned()), None)
            .with_base_url("http://127.0.0.1:1/")
            .with_rate_limit(None)
            .with_retry(RetryPolicy {
                initial_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(100),
                deadline: Duration::from_secs(1),
                max_attempts: 1,
            })
            .with_budget(Some(budget.for_client())),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn containers_sharing_one_bucket_never_exceed_capacity_plus_refill_plus_their_leases() {
    let store = fresh_store().await;
    let settings = BudgetSettings {
        per_minute: 1200, // 20 a second
        capacity: 20,
        reserve_percent: 0,
        lease: 5,
        max_wait: Duration::from_secs(10),
    };
    let containers = 2;
    let run_for = Duration::from_secs(2);
    let granted: Arc<Mutex<Vec<(Instant, u32)>>> = Arc::default();
    let start = Instant::now();
    let end = start + run_for;
    let mut tasks = Vec::new();
    for _ in 0..containers {
        // One budget per container: its own leased tokens, the same bucket.
        let budget = DfnsBudget::new(store.clone(), settings, Priority::Background);
        for task in 0..6u32 {
            let budget = budget.clone();
            let granted = granted.clone();
            tasks.push(tokio::spawn(async move {
                // Signed calls and reads mixed.
                let cost = if task % 2 == 0 { 3 } else { 1 };
                loop {
                    budget.take(cost).await.expect("background callers wait");
                    let at = Instant::now();
                    if at > end {
                        return;
                    }
                    granted.lock().unwrap().push((at, cost));
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut granted = granted.lock().unwrap().clone();
    granted.sort();

    // Per container at most `lease + 2` leased and unspent (it leases only when it holds fewer
    // than a signed call's 3); +1 for the refill's millisecond rounding.
    let overshoot = containers * (settings.lease + 2) + 1;
    let bound = |window: Duration| {
        settings.capacity + (window.as_secs_f64() * 20.0).ceil() as u32 + overshoot
    };
    let total: u32 = granted.iter().map(|(_, cost)| cost).sum();
    assert!(
        total <= bound(run_for),
        "{total} requests granted in {run_for:?}, more than {}",
        bound(run_for)
    );
    // Every one-second window, from each grant on.
    for (i, (from, _)) in granted.iter().enumerate() {
        let in_window: u32 = granted[i..]
            .iter()
            .take_while(|(at, _)| *at <= *from + Duration::from_secs(1))
            .map(|(_, cost)| cost)
            .sum();
        assert!(
            in_window <= bound(Duration::from_secs(1)),
            "{in_window} requests in the second from {:?}",
            *from - start
        );
    }
    // And they did get the refill, not only the first bucketful (leases cannot make tokens).
    assert!(
        total > settings.capacity,
        "only {total} requests granted in {run_for:?}"
    );
}

#[tokio::test]
async fn at_the_reserved_floor_interactive_callers_are_refused_and_background_ones_served() {
    let store = fresh_store().await;
    let settings = BudgetSettings {
        per_minute: 1, // no refill to speak of during the test
        capacity: 30,
        reserve_percent: 50,
        lease: 5,
        max_wait: Duration::from_millis(300),
    };
    let interactive = DfnsBudget::new(store.clone(), settings, Priority::Interactive);
    let background = interactive.with_priority(Priority::Background);

    // Page loads take the bucket down to the floor, 15 of 30.
    for _ in 0..5 {
        interactive.take(3).await.unwrap();
    }
    let left = level(&store, &settings).await;
    assert!((15.0..15.5).contains(&left), "{left}");

    // Past it they are refused at once: the refill needs a minute, more than they may wait.
    let started = Instant::now();
    let refused = interactive.take(1).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(refused.retry_after > Duration::from_secs(30), "{refused:?}");
    // A call from another interactive container is answered as a Dfns 429 (HTTP 429
    // "throttled"), and nothing is sent.
    let other_container = interactive.with_priority(Priority::Interactive);
    let error = client(&other_container)
        .get_wallet(&dfns_client::WalletId::new("wa-1"))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(429), "{error:?}");
    assert_eq!(
        error.api().and_then(|api| api.code.as_deref()),
        Some(BUDGET_EXHAUSTED_CODE)
    );
    let answered = PlatformError::Dfns(error).to_api_error();
    assert_eq!(
        (answered.status.as_u16(), answered.code),
        (429, "throttled")
    );

    // Order execution goes on, from the reserve.
    background.take(3).await.unwrap();
    let error = client(&background)
        .get_wallet(&dfns_client::WalletId::new("wa-1"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, dfns_client::Error::Connection(_))
            || matches!(&error, dfns_client::Error::RetriesExhausted { last, .. } if matches!(**last, dfns_client::Error::Connection(_))),
        "the request went out (and found nobody): {error:?}"
    );
    let left = level(&store, &settings).await;
    assert!(
        (10.0..11.0).contains(&left),
        "one block of 5 leased: {left}"
    );
}

#[tokio::test]
async fn a_caller_waits_for_the_refill_when_it_comes_within_its_wait() {
    let store = fresh_store().await;
    let settings = BudgetSettings {
        per_minute: 600, // 10 a second
        capacity: 10,
        reserve_percent: 0,
        lease: 10,
        max_wait: Duration::from_secs(5),
    };
    let budget = DfnsBudget::new(store.clone(), settings, Priority::Interactive);
    let started = Instant::now();
    budget.take(10).await.unwrap();
    budget.take(3).await.unwrap();
    let waited = started.elapsed();
    // The bucket was empty after the first lease; 3 more at 10/s take 300 ms from it (plus up to
    // a fifth of jitter, the polls and DynamoDB's answers on a busy machine).
    assert!(
        waited >= Duration::from_millis(295) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

#[tokio::test]
async fn the_apps_dfns_clients_take_from_the_budget_with_the_functions_priority() {
    let env = TestEnv::start(TestOptions {
        webhooks: false,
        ..TestOptions::default()
    })
    .await;
    let settings = BudgetSettings {
        per_minute: 1,
        capacity: 20,
        reserve_percent: 50,
        lease: 10,
        max_wait: Duration::from_millis(200),
    };
    let store = env.app.store().clone();
    let reporting = env.app.with_dfns_budget(Some(DfnsBudget::new(
        store.clone(),
        settings,
        Priority::Interactive,
    )));
    let order_execution = reporting.with_dfns_priority(Priority::Background);
    // Page loads have taken everything above the reserve.
    DfnsBudget::new(store.clone(), settings, Priority::Interactive)
        .take(10)
        .await
        .unwrap();

    let missing = dfns_client::WalletId::new("wa-00000-00000-0000000000000000");
    let refused = reporting
        .dfns_reader()
        .await
        .unwrap()
        .get_wallet(&missing)
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(429), "{refused:?}");
    assert_eq!(
        refused.api().and_then(|api| api.code.as_deref()),
        Some(BUDGET_EXHAUSTED_CODE)
    );
    // The same call from order execution reaches Dfns (the emulator: no such wallet).
    let answered = order_execution
        .dfns_reader()
        .await
        .unwrap()
        .get_wallet(&missing)
        .await
        .unwrap_err();
    assert_eq!(answered.status(), Some(404), "{answered:?}");
    // Without a budget (tests, the local stack) nothing is taken.
    let before = level(&store, &settings).await;
    env.app
        .dfns_reader()
        .await
        .unwrap()
        .get_wallet(&missing)
        .await
        .unwrap_err();
    assert!(level(&store, &settings).await >= before);
}

#[tokio::test]
async fn an_unusable_table_is_bypassed_for_a_while_not_fatal() {
    let aws = FreshAws::create("budget").await;
    let store = Store::new(aws.dynamodb, format!("{}-missing", aws.table));
    let settings = BudgetSettings {
        per_minute: 60,
        capacity: 10,
        reserve_percent: 30,
        lease: 5,
        max_wait: Duration::from_millis(200),
    };
    let before = platform::metrics::counted(DFNS_BUDGET_UNAVAILABLE);
    let budget = DfnsBudget::new(store, settings, Priority::Interactive);
    budget.take(3).await.unwrap();
    assert_eq!(
        platform::metrics::counted(DFNS_BUDGET_UNAVAILABLE),
        before + 1
    );
    // Well past the bucket's capacity, without asking the table again.
    for _ in 0..20 {
        budget.take(3).await.unwrap();
    }
    assert_eq!(
        platform::metrics::counted(DFNS_BUDGET_UNAVAILABLE),
        before + 1
    );
}
