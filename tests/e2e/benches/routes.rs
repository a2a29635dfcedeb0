//! Per-route latency of the local stack and the Dfns and DynamoDB calls each route makes (not a
//! test): `cargo xtask exec -- cargo bench -p e2e --bench routes`.
//!
//! One platform (local stack, in-process emulator with the org's `Policies:Modify` policy, AWS
//! stand-ins), its Dfns and DynamoDB traffic through counting proxies. Each route is called
//! sequentially `n` times by one client (so latencies are not queueing), after one warm-up call;
//! calls are counted over the phase, including work the route set off asynchronously (e.g. the
//! webhook Dfns sends back after a policy change), after a short settle. Figures are for this
//! machine, debug or release as built, with everything (stand-ins included) on the same cores.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use e2e::{Env, EnvOptions, sign_webhook};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Row {
    route: String,
    n: usize,
    p50: Duration,
    p99: Duration,
    mean: Duration,
    dfns: f64,
    dynamodb: f64,
    dfns_detail: BTreeMap<String, u64>,
    dynamodb_detail: BTreeMap<String, u64>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn random_address() -> String {
    let bytes: [u8; 20] = std::array::from_fn(|_| (ulid::Ulid::new().random() & 0xff) as u8);
    format!("0x{}", hex::encode(bytes))
}

/// Runs `n` calls made by `make(i)`, sequentially; every answer must have `expect`ed status.
async fn measure<F, Fut>(env: &Env, route: &str, n: usize, expect: StatusCode, make: F) -> Row
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = (StatusCode, Value)>,
{
    let dfns = env.dfns_calls.as_ref().expect("counting");
    let ddb = env.dynamodb_calls.as_ref().expect("counting");
    tokio::time::sleep(Duration::from_millis(500)).await;
    dfns.take();
    ddb.take();
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        let (status, body) = make(i).await;
        latencies.push(started.elapsed());
        assert_eq!(status, expect, "{route} #{i}: {body}");
    }
    // Let what the calls set off (webhooks back from Dfns) finish inside this phase's counts.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let dfns_detail = dfns.take();
    let dynamodb_detail = ddb.take();
    latencies.sort();
    let total: Duration = latencies.iter().sum();
    Row {
        route: route.to_owned(),
        n,
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
        mean: total / n as u32,
        dfns: dfns_detail.values().sum::<u64>() as f64 / n as f64,
        dynamodb: dynamodb_detail.values().sum::<u64>() as f64 / n as f64,
        dfns_detail,
        dynamodb_detail,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("ROUTES_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    // The built-in `standard` tier, so onboarding creates the three limit policies too.
    let tier = platform::settings::default_tiers()["standard"];
    let env = Env::start(EnvOptions {
        count_calls: true,
        tier,
        ..EnvOptions::default()
    })
    .await;
    // A reference, so the `async move` blocks below copy it rather than take the environment.
    let env = &env;
    let mut rows = Vec::new();

    // Warm-up: JWKS fetch, secret, Dfns client and connection pools.
    env.open_account("warmup").await;

    let fresh: Vec<String> = (0..n)
        .map(|i| format!("bench-{i}-{}", ulid::Ulid::new()))
        .collect();
    rows.push(
        measure(
            env,
            "POST /v1/accounts (new client)",
            n,
            StatusCode::OK,
            |i| {
                let token = env.token(&fresh[i]);
                async move {
                    env.call(Method::POST, "/v1/accounts", Some(&token), None)
                        .await
                }
            },
        )
        .await,
    );
    rows.push(
        measure(
            env,
            "POST /v1/accounts (already open)",
            n,
            StatusCode::OK,
            |i| {
                let token = env.token(&fresh[i]);
                async move {
                    env.call(Method::POST, "/v1/accounts", Some(&token), None)
                        .await
                }
            },
        )
        .await,
    );
    rows.push(
        measure(
            env,
            "POST /v1/destination-requests (submitted)",
            n,
            StatusCode::CREATED,
            |i| {
                let subject = fresh[i].clone();
                async move {
                    env.request_destination(&subject, &random_address(), "bench")
                        .await
                }
            },
        )
        .await,
    );
    let queued: std::sync::Mutex<Vec<(String, String)>> = Default::default();
    rows.push(
        measure(
            env,
            "POST /v1/destination-requests (queued)",
            n,
            StatusCode::CREATED,
            |i| {
                let subject = fresh[i].clone();
                let queued = &queued;
                async move {
                    let (status, body) = env
                        .request_destination(&subject, &random_address(), "bench")
                        .await;
                    if let Some(id) = body["id"].as_str() {
                        queued.lock().unwrap().push((subject, id.to_owned()));
                    }
                    (status, body)
                }
            },
        )
        .await,
    );
    let queued = queued.into_inner().unwrap();
    rows.push(
        measure(
            env,
            "DELETE /v1/destination-requests/{id}",
            n,
            StatusCode::OK,
            |i| {
                let (subject, id) = queued[i].clone();
                async move {
                    env.call(
                        Method::DELETE,
                        &format!("/v1/destination-requests/{id}"),
                        Some(&env.token(&subject)),
                        None,
                    )
                    .await
                }
            },
        )
        .await,
    );

    // A client with history: an approved destination and a deposit.
    let rich = fresh[0].clone();
    let (_, list) = env.get("/v1/destination-requests", &rich).await;
    let pending = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["state"] == "PendingApproval")
        .cloned()
        .expect("the submitted request is pending");
    env.decide(&pending, dfns_client::DecisionValue::Approved)
        .await;
    let id = pending["id"].as_str().unwrap();
    env.wait_for_state(&rich, id, &["Approved"]).await;
    let account = env.open_account(&rich).await;
    env.control(
        Method::POST,
        "deposits",
        &json!({"walletId": account["wallets"][0]["walletId"], "kind": "Native", "amount": "1000000000000000000"}),
    )
    .await;

    for path in [
        "/v1/destination-requests",
        "/v1/account",
        "/v1/activity?limit=50",
        "/v1/activity?format=csv",
        "/v1/audit?limit=50",
        "/v1/notifications",
    ] {
        let token = env.token(&rich);
        rows.push(
            measure(env, &format!("GET {path}"), n, StatusCode::OK, |_| {
                let token = token.clone();
                async move { env.call(Method::GET, path, Some(&token), None).await }
            })
            .await,
        );
    }

    // The webhook receiver: fresh deliveries of an already-applied approval (verified, recorded,
    // applied forward-only), then one delivery id replayed (duplicate).
    let approval = env
        .officer(0)
        .get_approval(&dfns_client::ApprovalId::new(
            pending["approvalId"].as_str().unwrap(),
        ))
        .await
        .unwrap();
    let approval = serde_json::to_value(approval).unwrap();
    let body_for = |id: String| {
        serde_json::to_vec(&json!({
            "id": id,
            "kind": "policy.approval.resolved",
            "date": "2026-01-01T00:00:00.000Z",
            "timestampSent": time::OffsetDateTime::now_utc().unix_timestamp(),
            "data": {"approval": approval},
        }))
        .unwrap()
    };
    rows.push(
        measure(
            env,
            "POST /v1/webhooks/dfns (new event)",
            n,
            StatusCode::OK,
            |_| {
                let body = body_for(format!("wh-bench-{}", ulid::Ulid::new()));
                async move {
                    let signature = sign_webhook(&env.webhook_secret, &body);
                    env.deliver_webhook(&body, &signature).await
                }
            },
        )
        .await,
    );
    let replay = body_for("wh-bench-replayed".into());
    let signature = sign_webhook(&env.webhook_secret, &replay);
    env.deliver_webhook(&replay, &signature).await;
    rows.push(
        measure(
            env,
            "POST /v1/webhooks/dfns (duplicate)",
            n,
            StatusCode::OK,
            |_| {
                let (replay, signature) = (replay.clone(), signature.clone());
                async move { env.deliver_webhook(&replay, &signature).await }
            },
        )
        .await,
    );

    println!("\nper-route latency and calls, n = {n} sequential calls per route\n");
    println!(
        "{:<46} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "route", "p50 ms", "p99 ms", "mean ms", "Dfns", "DynamoDB"
    );
    for row in &rows {
        println!(
            "{:<46} {:>8} {:>8} {:>8} {:>8.1} {:>8.1}",
            row.route,
            ms(row.p50),
            ms(row.p99),
            ms(row.mean),
            row.dfns,
            row.dynamodb
        );
    }
    println!("\ncalls by operation (totals over the n calls):");
    for row in &rows {
        println!("  {} (n = {})", row.route, row.n);
        println!("    Dfns:     {:?}", row.dfns_detail);
        println!("    DynamoDB: {:?}", row.dynamodb_detail);
    }
}
