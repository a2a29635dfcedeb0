//! Holding a burst (issue 19), not a test: `cargo xtask exec -- cargo bench -p e2e --bench burst`
//! (or `cargo xtask bench -- -p e2e --bench burst`).
//!
//! A dust attack as Dfns would report it: 5,000 deposits to one client's wallet sent within a
//! minute (`BURST_DEPOSITS`, `BURST_SECONDS`), while 100 other clients receive 10 each, every one a
//! signed webhook delivery posted to the local stack at a steady rate (open loop: a slow answer
//! does not slow the sender). Measures the receiver's answers (p50/p99, failures), the peak of
//! connections to DynamoDB Local (sampled from /proc/net/tcp every 50 ms), how long until every
//! event is applied, the dusted client's chain (exactly one `deposit.received` line per deposit,
//! verifying), and then the dusted client's reads against a client with 10 deposits.
//!
//! The deposits are webhook deliveries only: the emulator's ledger does not hold them, so reads
//! that come from Dfns (balances, the Dfns side of `/v1/activity`) do not grow with the burst.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use e2e::{Env, EnvOptions, deposit_delivery, sign_webhook};
use reqwest::{Method, StatusCode};
use serde_json::Value;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// Established TCP connections to `port` (either end), from /proc/net/tcp{,6}.
fn connections_to(port: u16) -> usize {
    let hex_port = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|text| {
            text.lines()
                .skip(1)
                .filter(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    // local, remote, state (01 = ESTABLISHED); count the client side only.
                    fields.len() > 3 && fields[3] == "01" && fields[2].ends_with(&hex_port)
                })
                .count()
        })
        .sum()
}

async fn deposit_lines(env: &Env, client: &str) -> usize {
    let client = domain::ClientId::parse(client).unwrap();
    let store = env.stack.app.store();
    let mut after = None;
    let mut count = 0;
    loop {
        let page = store.list_audit_events(&client, after, 1000).await.unwrap();
        count += page
            .entries
            .iter()
            .filter(|e| {
                e.event()
                    .map(|e| e.action.as_str() == "deposit.received")
                    .unwrap_or(false)
            })
            .count();
        match page.next_after_seq {
            Some(seq) => after = Some(seq),
            None => return count,
        }
    }
}

/// p50 of `path` for each of two clients, their calls alternating so that whatever else the
/// machine does weighs on both alike.
async fn read_p50s(env: &Env, clients: [&str; 2], path: &str, n: usize) -> [Duration; 2] {
    let tokens = clients.map(|client| env.token(client));
    let mut latencies = [Vec::new(), Vec::new()];
    for _ in 0..n {
        for (token, samples) in tokens.iter().zip(latencies.iter_mut()) {
            let started = Instant::now();
            let (status, body) = env.call(Method::GET, path, Some(token), None).await;
            samples.push(started.elapsed());
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
        }
    }
    latencies.map(|mut samples| {
        samples.sort();
        percentile(&samples, 50.0)
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let burst = env_usize("BURST_DEPOSITS", 5000);
    let seconds = env_usize("BURST_SECONDS", 60);
    let others = env_usize("BURST_OTHER_CLIENTS", 100);
    let per_other = env_usize("BURST_OTHER_DEPOSITS", 10);
    let ddb_port: u16 = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
        .ok()
        .and_then(|u| u.rsplit(':').next()?.trim_end_matches('/').parse().ok())
        .expect("AWS_ENDPOINT_URL_DYNAMODB with a port (run through cargo xtask)");

    // BURST_COUNT_CALLS=1: the stack's DynamoDB calls go through a counting proxy, and the
    // bench prints them by operation per delivery (the proxy's own cost changes the timings).
    let count_calls = env_usize("BURST_COUNT_CALLS", 0) == 1;
    let env = Env::start(EnvOptions {
        count_calls,
        ..EnvOptions::default()
    })
    .await;
    let env = Arc::new(env);
    let wallet_of = |account: &Value| {
        account["wallets"][0]["walletId"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let dusted = format!("dusted-{}", ulid::Ulid::new());
    let quiet = format!("quiet-{}", ulid::Ulid::new());
    let dusted_wallet = wallet_of(&env.open_account(&dusted).await);
    let quiet_wallet = wallet_of(&env.open_account(&quiet).await);
    let started_setup = Instant::now();
    let mut other_wallets = Vec::new();
    for chunk in (0..others).collect::<Vec<_>>().chunks(8) {
        let opened = futures::future::join_all(chunk.iter().map(|i| {
            let env = env.clone();
            async move {
                env.open_account(&format!("other-{i}-{}", ulid::Ulid::new()))
                    .await
            }
        }))
        .await;
        other_wallets.extend(opened.iter().map(wallet_of));
    }
    eprintln!(
        "burst: {} accounts opened in {:.1}s",
        others + 2,
        started_setup.elapsed().as_secs_f64()
    );

    // The deliveries, interleaved: the dusted wallet's, the others', the quiet client's 10.
    let mut deliveries: Vec<Vec<u8>> = Vec::new();
    for i in 0..burst.max(others * per_other) {
        if i < burst {
            deliveries.push(deposit_delivery(&dusted_wallet, &format!("0xd{i:06}")));
        }
        if i < others * per_other {
            let wallet = &other_wallets[i % others];
            deliveries.push(deposit_delivery(wallet, &format!("0xo{i:06}")));
        }
    }
    for i in 0..per_other {
        deliveries.push(deposit_delivery(&quiet_wallet, &format!("0xq{i:06}")));
    }
    let total = deliveries.len();
    let interval = Duration::from_secs_f64(seconds as f64 / total as f64);

    // Connections to DynamoDB Local, sampled while the burst runs and is applied.
    let sampling = Arc::new(AtomicBool::new(true));
    let peak = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (sampling, peak) = (sampling.clone(), peak.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(connections_to(ddb_port), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    if let Some(calls) = &env.dynamodb_calls {
        calls.take();
    }
    let secret = env.webhook_secret.clone();
    let started = Instant::now();
    let mut ticker = tokio::time::interval(interval);
    let mut sends = Vec::with_capacity(total);
    for body in deliveries {
        ticker.tick().await;
        let env = env.clone();
        let signature = sign_webhook(&secret, &body);
        sends.push(tokio::spawn(async move {
            let sent = Instant::now();
            let (status, _) = env.deliver_webhook(&body, &signature).await;
            (status, sent, sent.elapsed(), body, signature)
        }));
    }
    let sent_in = started.elapsed();
    let mut latencies = Vec::with_capacity(total);
    // Answers by the 10 s window their request was sent in: where in the burst the slow ones are.
    let mut windows: Vec<Vec<Duration>> = Vec::new();
    let mut refused = Vec::new();
    for send in sends {
        let (status, sent, latency, body, signature) = send.await.unwrap();
        if status != StatusCode::OK {
            refused.push((body, signature));
        }
        latencies.push(latency);
        let window = (sent - started).as_secs() as usize / 10;
        if windows.len() <= window {
            windows.resize(window + 1, Vec::new());
        }
        windows[window].push(latency);
    }
    for (i, window) in windows.iter_mut().enumerate() {
        window.sort();
        if let Some(max) = window.last() {
            eprintln!(
                "burst: sent in {}-{} s: {} answers, p50 {} ms, p99 {} ms, max {} ms",
                i * 10,
                i * 10 + 10,
                window.len(),
                ms(percentile(window, 50.0)),
                ms(percentile(window, 99.0)),
                ms(*max)
            );
        }
    }
    let failed = refused.len();
    // As Dfns does, deliver the refused ones again until accepted.
    let mut redeliveries = 0;
    while !refused.is_empty() {
        let mut still = Vec::new();
        for (body, _) in refused {
            redeliveries += 1;
            // A redelivery is signed again with a new `timestampSent`, as Dfns does.
            let mut event: Value = serde_json::from_slice(&body).unwrap();
            event["timestampSent"] = time::OffsetDateTime::now_utc().unix_timestamp().into();
            let body = serde_json::to_vec(&event).unwrap();
            let signature = sign_webhook(&secret, &body);
            let (status, _) = env.deliver_webhook(&body, &signature).await;
            if status != StatusCode::OK {
                still.push((body, signature));
            }
        }
        refused = still;
    }
    eprintln!("burst: {redeliveries} redeliveries of refused deliveries");
    latencies.sort();
    eprintln!(
        "burst: {total} deliveries sent in {:.1}s; answers p50 {} ms, p99 {} ms, max {} ms; {failed} failed",
        sent_in.as_secs_f64(),
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(*latencies.last().unwrap()),
    );

    // Until every event is applied.
    let applied = e2e::wait_until(Duration::from_secs(1800), || {
        let env = env.clone();
        let dusted = dusted.clone();
        async move { (deposit_lines(&env, &dusted).await >= burst).then_some(()) }
    })
    .await;
    let all_applied_at = started.elapsed();
    sampling.store(false, Ordering::Relaxed);
    sampler.await.unwrap();
    assert!(applied.is_some(), "not all applied within 30 minutes");
    if let Some(calls) = &env.dynamodb_calls {
        // Up to here: the deliveries, their application, and this bench's polling of the chain.
        for (operation, count) in calls.take() {
            eprintln!(
                "burst: DynamoDB {operation}: {count} ({:.2} per delivery)",
                count as f64 / total as f64
            );
        }
    }
    let quiet_lines = deposit_lines(&env, &quiet).await;
    let dusted_lines = deposit_lines(&env, &dusted).await;
    let client = domain::ClientId::parse(&dusted).unwrap();
    let verdict = env
        .stack
        .app
        .store()
        .verify_audit_chain(&client)
        .await
        .unwrap();
    eprintln!(
        "burst: every dusted event applied {:.1}s after the first send ({:.1}s after the last); \
         deposit lines: dusted {dusted_lines} (expected {burst}), quiet {quiet_lines}; chain {verdict:?}",
        all_applied_at.as_secs_f64(),
        (all_applied_at - sent_in).as_secs_f64(),
    );
    eprintln!(
        "burst: peak connections to DynamoDB Local {} (bound per process: {})",
        peak.load(Ordering::Relaxed),
        platform_config::aws::MAX_IN_FLIGHT
    );
    // Let the other clients' events finish too, then compare reads.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for path in ["/v1/activity", "/v1/account", "/v1/audit"] {
        let [dusted_p50, quiet_p50] = read_p50s(&env, [&dusted, &quiet], path, 20).await;
        eprintln!(
            "burst: {path} p50 dusted {} ms, quiet {} ms ({:.2}x)",
            ms(dusted_p50),
            ms(quiet_p50),
            dusted_p50.as_secs_f64() / quiet_p50.as_secs_f64()
        );
    }
}
