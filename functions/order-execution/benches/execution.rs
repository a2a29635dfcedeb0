//! Order-execution throughput: 1,000 due orders against the Dfns emulator with 20 ms added to
//! every Dfns call, at the default concurrency and at concurrency 1, in one run; prints wall time,
//! orders/s and the ratio. Not a test: it asserts only that every order was sent.
//!
//! Needs the local stand-ins: `cargo xtask exec -- cargo bench -p order-execution --bench execution`.
//! `BENCH_ORDERS` (default 1000) and `BENCH_LATENCY_MS` (default 20) change the load.
//!
//! The Dfns client used here has no client-side rate limit: against real Dfns the org's limit
//! (1,000 requests/min, 3 per transfer) would bound both runs to ~5 orders/s.

use std::time::{Duration, Instant};

use domain::ClientId;
use platform::testing::{TestEnv, TestOptions};
use platform::trading::{Executor, TradingConfig};
use serde_json::json;

mod common;
use common::{funded_traders, place_orders};

const CLIENTS: usize = 10;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn measure(
    env: &TestEnv,
    clients: &[ClientId],
    orders: usize,
    concurrency: usize,
) -> Duration {
    place_orders(env, clients, orders).await;
    let executor = Executor::new(&env.app, &TradingConfig::default())
        .with_dfns(env.service())
        .with_concurrency(concurrency);
    let now = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
    let started = Instant::now();
    let report = executor.run(now).await.expect("run");
    let elapsed = started.elapsed();
    assert_eq!(report.sent, orders, "every order sent: {report:?}");
    elapsed
}

fn main() {
    let orders = env_number("BENCH_ORDERS", 1000);
    let latency_ms = env_number("BENCH_LATENCY_MS", 20);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let env = TestEnv::start(TestOptions {
            webhooks: false,
            ..TestOptions::default()
        })
        .await;
        let clients = funded_traders(&env, CLIENTS).await;
        env.control(
            reqwest::Method::POST,
            "faults",
            json!({"pathPattern": "/**", "rate": 1.0, "latencyMs": latency_ms}),
        )
        .await;

        let default_concurrency = TradingConfig::default().concurrency;
        let parallel = measure(&env, &clients, orders, default_concurrency).await;
        let serial = measure(&env, &clients, orders, 1).await;
        let rate = |d: Duration| orders as f64 / d.as_secs_f64();
        println!(
            "order-execution: {orders} due orders, {latency_ms} ms added per Dfns call, {CLIENTS} clients"
        );
        println!(
            "  concurrency {default_concurrency:>2}: {:>8.2} s  {:>7.1} orders/s",
            parallel.as_secs_f64(),
            rate(parallel)
        );
        println!(
            "  concurrency  1: {:>8.2} s  {:>7.1} orders/s",
            serial.as_secs_f64(),
            rate(serial)
        );
        println!(
            "  speed-up: {:.2}x",
            serial.as_secs_f64() / parallel.as_secs_f64()
        );
    });
}
