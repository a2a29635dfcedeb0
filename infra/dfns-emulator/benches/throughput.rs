//! Throughput of the emulator on this machine (not a test): `cargo bench -p dfns-emulator`.
//!
//! Measures requests/s for `GET /wallets/{id}` and signed transfers/s (init + action + transfer,
//! i.e. 3 HTTP requests each) with the client in the same process over loopback, so client and
//! server share the machine's cores. Each phase is bounded in time and count.

#[path = "../tests/it/common.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Harness, RECIPIENT};
use dfns_emulator::{Lifecycle, Options};
use reqwest::Method;
use serde_json::json;

const PHASE: Duration = Duration::from_secs(4);
const MAX_REQUESTS: u64 = 2_000_000;

async fn run<F, Fut>(concurrency: usize, op: F) -> (u64, Duration)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let op = op.clone();
            let done = done.clone();
            tokio::spawn(async move {
                while started.elapsed() < PHASE {
                    let n = done.fetch_add(1, Ordering::Relaxed);
                    if n >= MAX_REQUESTS {
                        break;
                    }
                    op(n).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    (
        done.load(Ordering::Relaxed).min(MAX_REQUESTS),
        started.elapsed(),
    )
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let h = Arc::new(
        Harness::with(Options {
            transfer_lifecycle: Lifecycle::Manual,
            ..Options::default()
        })
        .await,
    );
    let wallet = h
        .create_wallet(json!({ "network": "EthereumSepolia" }))
        .await;
    let wallet_id = wallet["id"].as_str().unwrap().to_owned();
    h.deposit(&wallet_id, "1000000000000000000000").await;

    for concurrency in [1usize, 8] {
        let (hh, path) = (h.clone(), format!("/wallets/{wallet_id}"));
        let (count, elapsed) = run(concurrency, move |_| {
            let (hh, path) = (hh.clone(), path.clone());
            async move {
                let r = hh.sa.get(&path).await;
                assert!(r.status.is_success());
            }
        })
        .await;
        println!(
            "GET /wallets/{{id}}        concurrency {concurrency}: {count} requests in {:.2}s = {:.0} req/s",
            elapsed.as_secs_f64(),
            count as f64 / elapsed.as_secs_f64()
        );
    }

    for concurrency in [1usize, 8] {
        let (hh, path) = (h.clone(), format!("/wallets/{wallet_id}/transfers"));
        let (count, elapsed) = run(concurrency, move |n| {
            let (hh, path) = (hh.clone(), path.clone());
            async move {
                let body = json!({ "kind": "Native", "to": RECIPIENT, "amount": "1",
                                   "externalId": format!("bench-{concurrency}-{n}") });
                let r = hh.sa.signed(Method::POST, &path, &body).await;
                assert!(r.status.is_success(), "{}", r.text);
            }
        })
        .await;
        println!(
            "signed transfer (3 calls)  concurrency {concurrency}: {count} transfers in {:.2}s = {:.0} transfers/s ({:.0} HTTP req/s)",
            elapsed.as_secs_f64(),
            count as f64 / elapsed.as_secs_f64(),
            3.0 * count as f64 / elapsed.as_secs_f64()
        );
    }
}
