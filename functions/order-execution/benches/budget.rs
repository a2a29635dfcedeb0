//! Order execution under the organisation's Dfns budget (issue 17): N due orders (default
//! 10,000) against the Dfns emulator with 20 ms added to every Dfns call and Dfns' rate limit
//! enforced by the emulator (1,000 requests/min, a token bucket answering 429), executed as the
//! deployed function is: an invocation of [`order_execution::run`] every schedule tick (60 s),
//! each one a container of its own (its own Dfns client and budget lease) taking from the shared
//! budget in DynamoDB as a `Background` caller, cut off at the function's timeout (240 s, as
//! Lambda would), until every order is final or a deadline.
//!
//! Prints: wall time, Dfns requests (the emulator's count), budget utilisation = requests /
//! (rate × wall minutes), 429s the emulator answered, transfers per order `externalId` at the
//! emulator (exactly one each = sent once), transfer calls per order (the emulator's audit log:
//! replays show there), orders by final state, and each invocation's report.
//!
//! Not a test: it asserts nothing. Needs the local stand-ins:
//! `cargo xtask exec -- cargo bench -p order-execution --bench budget`.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `BENCH_ORDERS` | `10000` | due orders |
//! | `BENCH_LATENCY_MS` | `20` | added to every Dfns call |
//! | `BENCH_REQUESTS_PER_MINUTE` | `1000` | Dfns' limit at the emulator and the platform's `DFNS_ORG_REQUESTS_PER_MINUTE` |
//! | `BENCH_BURST` | the platform's default (rate/10, at least 10) | the emulator's bucket; the platform's `DFNS_ORG_BURST` is set below it by 2 × (`DFNS_BUDGET_LEASE` + 2), as `platform::dfns_budget` says to configure it |
//! | `BENCH_SCHEDULE_SECONDS` | `60` | time between invocations (`rate(1 minute)`) |
//! | `BENCH_TIMEOUT_SECONDS` | `240` | an invocation is cut off after this (the function's `Timeout`) |
//! | `BENCH_DEADLINE_SECONDS` | 1.5 × the budget's minimum + 5 min | stop scheduling invocations |
//! | `DFNS_BUDGET_LEASE`, `DFNS_BUDGET_MAX_WAIT_MS`, `ORDER_CONCURRENCY`, `ORDER_BATCH_LIMIT`, `ORDER_LEASE_SECONDS`, `ORDER_RUN_SECONDS` | as deployed | read as the function reads them |

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use platform::dfns_budget::{self, BudgetSettings, DfnsBudget, Priority};
use platform::testing::{TestEnv, TestOptions};
use serde_json::{Value, json};

mod common;
use common::{funded_traders, place_orders};

const CLIENTS: usize = 10;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The emulator's request and 429 counts.
async fn emulator_counts(env: &TestEnv) -> (u64, u64) {
    let stats = env
        .control(reqwest::Method::GET, "stats", Value::Null)
        .await;
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    (
        n(&stats["requests"]),
        n(&stats["rateLimit"]["answered429"]) + n(&stats["faults"]["answered"]["429"]),
    )
}

/// Transfers the emulator holds per `externalId`, and their statuses.
fn transfers_by_external_id(env: &TestEnv) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    env.emulator.app().with_state(|s| {
        let mut per_order = BTreeMap::new();
        let mut statuses = BTreeMap::new();
        for transfer in s.transfers.values() {
            if let Some(external) = &transfer.external_id {
                *per_order.entry(external.clone()).or_insert(0) += 1;
            }
            *statuses
                .entry(format!("{:?}", transfer.status))
                .or_insert(0) += 1;
        }
        (per_order, statuses)
    })
}

/// Transfer calls that reached the emulator (one audit entry per consumed user action).
fn transfer_calls(env: &TestEnv) -> usize {
    env.emulator.app().with_state(|s| {
        s.audit
            .iter()
            .filter(|e| e.action.starts_with("POST /wallets/") && e.action.ends_with("/transfers"))
            .count()
    })
}

/// Every order final: none due or claimed (whatever its lease), none in flight.
async fn all_final(env: &TestEnv, lease: time::Duration) -> bool {
    let store = env.app.store();
    let later = time::OffsetDateTime::now_utc() + lease + time::Duration::seconds(1);
    store.list_due_orders(later, 1).await.unwrap().is_empty()
        && store.in_flight_orders().await.unwrap().is_empty()
}

fn main() {
    // The function refuses to start without a registry; the bench uses the development one, as
    // the tests do. Set before any thread exists.
    if std::env::var_os(platform::trading::EXCHANGES).is_none() {
        // SAFETY: single-threaded here (the runtime is built below).
        unsafe { std::env::set_var(platform::trading::EXCHANGES, "dev") };
    }
    let orders = env_number("BENCH_ORDERS", 10_000) as usize;
    let latency_ms = env_number("BENCH_LATENCY_MS", 20);
    let per_minute = env_number("BENCH_REQUESTS_PER_MINUTE", 1000);
    let schedule = Duration::from_secs(env_number("BENCH_SCHEDULE_SECONDS", 60));
    let timeout = Duration::from_secs(env_number("BENCH_TIMEOUT_SECONDS", 240));
    let trading = platform::trading::config().expect("trading settings");
    // At least 3 requests per order (a signed transfer: init, action, the call).
    let minimum_s = (orders as u64 * 3 * 60).div_ceil(per_minute);
    let deadline = Duration::from_secs(env_number(
        "BENCH_DEADLINE_SECONDS",
        minimum_s * 3 / 2 + 300,
    ));
    // Dfns' bucket (the emulator's): BENCH_BURST, or the platform's default for the rate.
    let dfns_burst = env_number("BENCH_BURST", (per_minute / 10).max(10));
    let lease = env_number(dfns_budget::DFNS_BUDGET_LEASE, 10);
    // The platform's, configured as platform::dfns_budget says: below Dfns' by what leased
    // tokens can add, N × (lease + 2), for the N = 2 containers that overlap at a hand-over.
    let platform_burst = dfns_burst.saturating_sub(2 * (lease + 2)).max(10);
    let budget = BudgetSettings::from_lookup(|name| match name {
        dfns_budget::DFNS_ORG_REQUESTS_PER_MINUTE => Some(per_minute.to_string()),
        dfns_budget::DFNS_ORG_BURST => Some(platform_burst.to_string()),
        other => std::env::var(other).ok(),
    })
    .expect("budget settings")
    .expect("a shared budget");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let env = TestEnv::start(TestOptions::default()).await;
        let clients = funded_traders(&env, CLIENTS).await;
        let placing = Instant::now();
        let ids = place_orders(&env, &clients, orders).await;
        println!(
            "order-execution under the Dfns budget: {orders} due orders placed in {:.1} s, {CLIENTS} clients",
            placing.elapsed().as_secs_f64()
        );
        println!(
            "  emulator: {latency_ms} ms added per Dfns call, rate limit {per_minute}/min (burst {}); platform budget {budget:?}; trading concurrency {} batch {} lease {} s claiming for {} s; an invocation every {} s, cut off at {} s",
            dfns_burst,
            trading.concurrency,
            trading.batch_limit,
            trading.lease.whole_seconds(),
            trading.run_for.as_secs(),
            schedule.as_secs(),
            timeout.as_secs()
        );
        env.control(
            reqwest::Method::POST,
            "faults",
            json!({"pathPattern": "/**", "rate": 1.0, "latencyMs": latency_ms}),
        )
        .await;
        env.control(
            reqwest::Method::PUT,
            "rate-limit",
            json!({"requestsPerMinute": per_minute, "burst": dfns_burst}),
        )
        .await;
        let (requests_before, throttled_before) = emulator_counts(&env).await;
        let calls_before = transfer_calls(&env);

        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        // The schedule: an invocation per tick, each a fresh container (its own budget handle).
        let scheduler = {
            let app = env.app.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut invocations = Vec::new();
                let mut tick = tokio::time::interval(schedule);
                for n in 1.. {
                    tick.tick().await;
                    if stop.load(Ordering::Relaxed) || started.elapsed() > deadline {
                        break;
                    }
                    let container = app.with_dfns_budget(Some(DfnsBudget::new(
                        app.store().clone(),
                        budget,
                        Priority::Background,
                    )));
                    invocations.push(tokio::spawn(async move {
                        let at = started.elapsed();
                        let began = Instant::now();
                        let outcome = tokio::time::timeout(
                            timeout,
                            order_execution::run(
                                &container,
                                time::OffsetDateTime::now_utc(),
                                Some(began + timeout),
                            ),
                        )
                        .await;
                        (n, at, began.elapsed(), outcome)
                    }));
                }
                futures::future::join_all(invocations).await
            })
        };
        // Progress, and the end: every order final.
        let mut last_print = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let (requests, throttled) = emulator_counts(&env).await;
            let made = requests - requests_before;
            if last_print.elapsed() >= Duration::from_secs(30) {
                last_print = Instant::now();
                let minutes = started.elapsed().as_secs_f64() / 60.0;
                println!(
                    "  {:>6.0} s: {made} Dfns requests ({:.1}% of the budget), {} transfers, {} 429s",
                    started.elapsed().as_secs_f64(),
                    100.0 * made as f64 / (per_minute as f64 * minutes),
                    transfers_by_external_id(&env).0.len(),
                    throttled - throttled_before,
                );
            }
            let sent = transfers_by_external_id(&env).0.len();
            if (sent >= orders && all_final(&env, trading.lease).await)
                || started.elapsed() > deadline
            {
                break;
            }
        }
        let wall = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        let (requests, throttled) = emulator_counts(&env).await;
        let made = requests - requests_before;
        let calls = transfer_calls(&env) - calls_before;
        let invocations = scheduler.await.unwrap();

        let (per_order, statuses) = transfers_by_external_id(&env);
        let once = ids.iter().filter(|id| per_order.get(&id.to_string()) == Some(&1)).count();
        let twice = per_order.values().filter(|n| **n > 1).count();
        let none = ids.iter().filter(|id| !per_order.contains_key(&id.to_string())).count();
        let store = env.app.store();
        let states: Vec<String> = futures::stream::iter(&ids)
            .map(|id| async move {
                store
                    .get_order(id)
                    .await
                    .unwrap()
                    .map_or("missing".to_owned(), |o| o.state.to_string())
            })
            .buffer_unordered(16)
            .collect()
            .await;
        let mut by_state = BTreeMap::new();
        for state in states {
            *by_state.entry(state).or_insert(0usize) += 1;
        }
        let minutes = wall.as_secs_f64() / 60.0;
        println!("  invocations:");
        for (n, at, took, outcome) in invocations.into_iter().map(Result::unwrap) {
            let outcome = match outcome {
                Ok(Ok(report)) => format!("{report:?}"),
                Ok(Err(error)) => format!("failed: {error}"),
                Err(_) => "cut off at the timeout (its claims wait out their lease)".into(),
            };
            println!(
                "    #{n:<3} at {:>5.0} s, {:>5.1} s: {outcome}",
                at.as_secs_f64(),
                took.as_secs_f64()
            );
        }
        println!("  wall time: {:.1} s ({minutes:.2} min)", wall.as_secs_f64());
        println!(
            "  Dfns requests: {made} ({:.2} per order); transfer calls (audit log): {calls}",
            made as f64 / orders as f64
        );
        println!(
            "  budget utilisation: {:.1}% ({made} / ({per_minute}/min x {minutes:.2} min))",
            100.0 * made as f64 / (per_minute as f64 * minutes)
        );
        println!("  Dfns 429s: {}", throttled - throttled_before);
        println!(
            "  sent once: {once} of {orders} orders have exactly one transfer; {twice} externalIds with more than one; {none} orders with none"
        );
        println!("  transfers by status: {statuses:?}");
        println!("  orders by state: {by_state:?}");
    });
}
