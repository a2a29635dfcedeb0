//! Webhook receiver latency, in-process against DynamoDB Local and the emulator:
//! `cargo xtask exec -- cargo bench -p platform --bench webhook`.
//!
//! Three cases: an event kind the platform ignores (verify + de-dup write), an approval that
//! resolves a destination request with nothing queued, and one that also submits the client's
//! next queued request to Dfns (the slowest path: get policy + signed update).

use std::time::{Duration, Instant};

use dfns_client::{ApprovalId, DecisionValue};
use platform::destinations::{self, DestinationInput};
use platform::testing::{TestEnv, TestOptions};
use serde_json::json;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    let p50 = percentile(&mut samples, 0.5);
    let p99 = percentile(&mut samples, 0.99);
    println!(
        "{name:<48} n={:<4} p50={p50:>10.2?} p99={p99:>10.2?}",
        samples.len()
    );
}

fn address(i: usize) -> String {
    format!("0x{:040x}", 0x1000 + i)
}

#[tokio::main]
async fn main() {
    let env = TestEnv::start(TestOptions {
        policies_modify: true,
        webhooks: false,
        ..TestOptions::default()
    })
    .await;

    // 1. Ignored kind.
    let mut samples = Vec::new();
    for _ in 0..200 {
        let body = serde_json::to_vec(&json!({
            "id": format!("whe-{}", ulid::Ulid::new().to_string().to_lowercase()),
            "kind": "wallet.offer.received",
            "date": "2026-01-01T00:00:00.000Z",
            "timestampSent": time::OffsetDateTime::now_utc().unix_timestamp(),
            "data": {}
        }))
        .unwrap();
        let signature = env.sign_webhook(&body);
        let started = Instant::now();
        platform::webhook::receive(&env.app, Some(&signature), &body, "bench")
            .await
            .unwrap();
        samples.push(started.elapsed());
    }
    report("ignored kind (verify + de-dup)", samples);

    // 2 and 3. Approvals resolving destination requests, with and without a queued successor.
    for (name, queued_behind) in [
        ("approval resolved, nothing queued", false),
        ("approval resolved, next queued request submitted", true),
    ] {
        let mut samples = Vec::new();
        for round in 0..30 {
            let client = domain::ClientId::parse(&format!("bench-{}", ulid::Ulid::new())).unwrap();
            platform::onboarding::open_account(&env.app, &client, "bench")
                .await
                .unwrap();
            let input = |i: usize| DestinationInput {
                network: "EthereumSepolia".into(),
                address: address(round * 2 + i),
                label: "bench".into(),
                action: "add".into(),
            };
            let first = destinations::create_request(&env.app, &client, &input(0), "bench")
                .await
                .unwrap();
            if queued_behind {
                destinations::create_request(&env.app, &client, &input(1), "bench")
                    .await
                    .unwrap();
            }
            let approval = env
                .officer(0)
                .decide_approval(
                    &ApprovalId::new(first.approval_id.clone().unwrap()),
                    DecisionValue::Approved,
                    None,
                )
                .await
                .unwrap();
            let body = serde_json::to_vec(&json!({
                "id": format!("whe-{}", ulid::Ulid::new().to_string().to_lowercase()),
                "kind": "policy.approval.resolved",
                "date": "2026-01-01T00:00:00.000Z",
                "timestampSent": time::OffsetDateTime::now_utc().unix_timestamp(),
                "data": { "approval": approval }
            }))
            .unwrap();
            let signature = env.sign_webhook(&body);
            let started = Instant::now();
            platform::webhook::receive(&env.app, Some(&signature), &body, "bench")
                .await
                .unwrap();
            samples.push(started.elapsed());
        }
        report(name, samples);
    }
}
