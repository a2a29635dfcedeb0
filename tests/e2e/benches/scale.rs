//! The activity read model at scale (issue 17), not a test:
//! `cargo xtask exec -- cargo bench -p e2e --bench scale` (or `cargo xtask bench -- -p e2e --bench
//! scale`).
//!
//! 1. A few **measured clients** (`SCALE_MEASURED`, default 3) open accounts through the API and
//!    receive `SCALE_ROWS` (default 1,000) deposits each at the emulator: its webhooks reach the
//!    stack, whose receiver writes each deposit's activity row with the consumer's code (applied
//!    in the request, as in this bench's first run; the queue under load is the burst bench's
//!    subject), `SCALE_DEPOSITS_PER_SECOND` (default 10) deposits a second. The bench
//!    checks that the read model lists exactly the rows the old path builds from Dfns' history, in
//!    the same order.
//! 2. **Background clients**: `SCALE_ROWS` history rows each, written straight into DynamoDB Local
//!    with `BatchWriteItem` (the items the receiver writes), until `SCALE_CLIENTS` (default
//!    10,000) or `SCALE_WRITE_SECONDS` (default 600) of writing, whichever comes first; the rate
//!    is printed. Writing also stops when the machine has less than `SCALE_MIN_FREE_MIB`
//!    (default 1,500) of memory available and swap free: DynamoDB Local holds about 2.4 KiB per
//!    item in native memory, so the full 10 million rows need about 24 GB (on a 23 GB machine,
//!    add swap: README, "Activity and account at scale").
//! 3. With `SCALE_DFNS_LATENCY_MS` (default 20) added to every Dfns read at the emulator, each
//!    measured client's reads are timed `SCALE_REPEAT` times (default 20), one at a time, with the
//!    Dfns and DynamoDB calls each made (counting proxies):
//!    after: `GET /v1/activity?limit=20` (first page), the 50th page (its cursor found by walking
//!    the pages once), and `GET /v1/account`, through the stack's HTTP routes;
//!    before: the code of commit 4b5ddf6 for the same reads (every wallet's whole transfer list
//!    and history from Dfns, merged and paged in memory; one Dfns read per policy and each
//!    wallet's recent transfers for the account), run in process on the stack's own `App` (so
//!    without the HTTP and token work the "after" figures include).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use dfns_client::wallets::HistoryQuery;
use dfns_client::{DfnsClient, PolicyId};
use domain::ClientId;
use e2e::{Env, EnvOptions};
use futures::{StreamExt, TryStreamExt};
use platform::App;
use platform::reporting::activity::{self, ActivityItem, Cursor, Labels};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use store::activity::ChainRow;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The machine's available memory and free swap (Linux), in MiB.
fn mem_available_mib() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = |name: &str| -> Option<u64> {
        let line = meminfo.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((kib("MemAvailable:")? + kib("SwapFree:").unwrap_or(0)) / 1024)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

struct Row {
    what: String,
    p50: Duration,
    p99: Duration,
    dfns: f64,
    dynamodb: f64,
    dfns_detail: BTreeMap<String, u64>,
    dynamodb_detail: BTreeMap<String, u64>,
}

/// Times `n` sequential calls of `call(i)` and counts the Dfns and DynamoDB calls they made.
async fn measure<F, Fut>(env: &Env, what: &str, n: usize, call: F) -> Row
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dfns = env.dfns_calls.as_ref().expect("counting");
    let ddb = env.dynamodb_calls.as_ref().expect("counting");
    tokio::time::sleep(Duration::from_millis(300)).await;
    dfns.take();
    ddb.take();
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        call(i).await;
        latencies.push(started.elapsed());
    }
    let dfns_detail = dfns.take();
    let dynamodb_detail = ddb.take();
    latencies.sort();
    Row {
        what: what.to_owned(),
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
        dfns: dfns_detail.values().sum::<u64>() as f64 / n as f64,
        dynamodb: dynamodb_detail.values().sum::<u64>() as f64 / n as f64,
        dfns_detail,
        dynamodb_detail,
    }
}

// ---------------------------------------------------------------------------------------------
// The old path (commit 4b5ddf6, shared/platform/src/reporting/mod.rs), kept here to measure it.

const OLD_MAX_ROWS_PER_SOURCE: usize = 10_000;

async fn old_activity_rows(app: &App, client: &ClientId) -> Vec<ActivityItem> {
    let store = app.store();
    store.get_client_profile(client).await.unwrap().unwrap();
    let (wallets, requests) = futures::try_join!(
        store.list_wallets(client),
        store.list_destination_requests(client),
    )
    .unwrap();
    let labels = Labels::from_requests(&requests);
    let dfns = app.dfns_reader().await.unwrap();
    let per_wallet = futures::future::try_join_all(wallets.iter().map(|wallet| {
        let dfns = dfns.clone();
        async move {
            let id = dfns_client::WalletId::new(wallet.wallet_id.as_str());
            let transfers = dfns
                .list_transfers(&id, &Default::default())
                .take(OLD_MAX_ROWS_PER_SOURCE)
                .try_collect::<Vec<_>>();
            let history = dfns
                .wallet_history(&id, &HistoryQuery::default())
                .take(OLD_MAX_ROWS_PER_SOURCE)
                .try_collect::<Vec<_>>();
            let (transfers, history) = futures::try_join!(transfers, history)?;
            Ok::<_, dfns_client::Error>((wallet, transfers, history))
        }
    }));
    let audit = async {
        let mut events = Vec::new();
        let mut after = None;
        loop {
            let page = store.list_audit_events(client, after, 500).await?;
            events.extend(
                page.entries
                    .iter()
                    .filter_map(|e| Some((e.seq, e.event().ok()?))),
            );
            match page.next_after_seq {
                Some(next) => after = Some(next),
                None => return Ok::<_, store::StoreError>(events),
            }
        }
    };
    let (per_wallet, governance) = futures::join!(per_wallet, audit);
    let (per_wallet, governance) = (per_wallet.unwrap(), governance.unwrap());
    let mut transfer_rows = Vec::new();
    let mut history_rows = Vec::new();
    for (wallet, transfers, history) in &per_wallet {
        let own = wallet.address.address().canonical();
        transfer_rows.extend(
            transfers
                .iter()
                .map(|t| activity::from_transfer(t, Some(&own), &labels)),
        );
        history_rows.extend(history.iter().map(|h| activity::from_history(h, &labels)));
    }
    let governance_rows = governance
        .iter()
        .filter_map(|(seq, e)| activity::from_audit(*seq, e, &labels))
        .collect();
    activity::merge(transfer_rows, history_rows, governance_rows)
}

/// The old account view's reads (its assembly is the same pure code as now, and is left out).
async fn old_account_reads(app: &App, client: &ClientId) {
    let store = app.store();
    store.get_client_profile(client).await.unwrap().unwrap();
    let (wallets, _requests, recorded, _authorizations) = futures::try_join!(
        store.list_wallets(client),
        store.list_destination_requests(client),
        store.client_policies(client),
        store.list_trading_authorizations(client),
    )
    .unwrap();
    let dfns: DfnsClient = app.dfns_reader().await.unwrap();
    let assets = futures::future::try_join_all(wallets.iter().map(|w| {
        let dfns = &dfns;
        async move {
            dfns.wallet_assets(&dfns_client::WalletId::new(w.wallet_id.as_str()), true)
                .await
        }
    }));
    let policies = futures::future::try_join_all(recorded.values().map(|id| {
        let dfns = &dfns;
        async move { dfns.get_policy(&PolicyId::new(id.as_str())).await }
    }));
    let transfers = futures::future::try_join_all(wallets.iter().map(|w| {
        let dfns = &dfns;
        async move {
            let query = dfns_client::transfers::TransfersQuery {
                page_size: Some(100),
            };
            dfns.list_transfers(&dfns_client::WalletId::new(w.wallet_id.as_str()), &query)
                .take(platform::trading::orders::PREVIEW_TRANSFER_SCAN)
                .try_collect::<Vec<_>>()
                .await
        }
    }));
    futures::try_join!(assets, policies, transfers).unwrap();
}

// ---------------------------------------------------------------------------------------------

const FUNDER: &str = "0x8617e340b3d01fa5f11f306f4090fd50e238070d";

/// A history entry as Dfns reports a deposit (the body the receiver keeps).
fn deposit_body(wallet: &str, tx: &str, at: time::OffsetDateTime) -> String {
    json!({
        "walletId": wallet, "direction": "In", "network": "EthereumSepolia",
        "blockNumber": 7, "txHash": tx,
        "timestamp": at.format(&time::format_description::well_known::Rfc3339).unwrap(),
        "kind": "NativeTransfer", "from": FUNDER, "to": "0xb292fe9c8fee4a3f0e2d2452027ad450a7230e8d",
        "value": "1000000000000000", "fee": "21000000000000",
        "metadata": { "asset": { "symbol": "ETH", "decimals": 18, "verified": true,
            "quotes": { "USD": 3000.0 } }, "fee": { "symbol": "ETH", "decimals": 18 } }
    })
    .to_string()
}

/// Writes one background client's `rows` history rows with `BatchWriteItem` (25 a call).
async fn write_background_client(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    index: usize,
    rows: usize,
) -> usize {
    let client = ClientId::parse(&format!("bg-{index:06}")).unwrap();
    let wallet = format!("wa-bg{index:06}-00000-0000000000000000");
    let start = time::OffsetDateTime::now_utc() - time::Duration::days(400);
    let items: Vec<WriteRequest> = (0..rows)
        .map(|i| {
            let at = start + time::Duration::minutes(i as i64 * 37);
            let tx = format!("0x{index:06x}{i:058x}");
            let row_id = format!("chain:{wallet}:{tx}:NativeTransfer::In");
            let item = store::activity::chain_row_item(
                &client,
                &ChainRow {
                    row_id: &row_id,
                    at_nanos: at.unix_timestamp_nanos(),
                    wallet_id: &wallet,
                    tx_hash: &tx,
                    outgoing: false,
                    body: deposit_body(&wallet, &tx, at),
                },
            );
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                .build()
        })
        .collect();
    let mut calls = 0;
    for chunk in items.chunks(25) {
        let mut pending = chunk.to_vec();
        while !pending.is_empty() {
            calls += 1;
            let out = ddb
                .batch_write_item()
                .request_items(table, pending.clone())
                .send()
                .await
                .expect("BatchWriteItem");
            pending = out
                .unprocessed_items
                .and_then(|mut u| u.remove(table))
                .unwrap_or_default();
        }
    }
    calls
}

async fn chain_rows(app: &App, client: &ClientId) -> usize {
    app.store()
        .activity_page(client, None, 5_000)
        .await
        .unwrap()
        .rows
        .iter()
        .filter(|r| r.source == store::activity::ActivitySource::Chain)
        .count()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let clients = env_usize("SCALE_CLIENTS", 10_000);
    let rows = env_usize("SCALE_ROWS", 1_000);
    let write_budget = Duration::from_secs(env_usize("SCALE_WRITE_SECONDS", 600) as u64);
    let min_free_mib = env_usize("SCALE_MIN_FREE_MIB", 1_500) as u64;
    let measured = env_usize("SCALE_MEASURED", 3);
    let repeat = env_usize("SCALE_REPEAT", 20);
    let latency = env_usize("SCALE_DFNS_LATENCY_MS", 20) as u64;
    let page_size = 20;
    // The stack's logs, with RUST_LOG set (e.g. `warn`: why a delivery failed).
    if std::env::var_os("RUST_LOG").is_some() {
        platform::http::init_tracing();
    }

    let tier = platform::settings::default_tiers()["standard"];
    let env = Env::start(EnvOptions {
        count_calls: true,
        tier,
        // The receiver applies each delivery itself (the consumer's code), as in this bench's
        // first run, when the queue's stand-in (moto's SQS) saturated at this rate; this bench
        // measures reads, the burst bench the queue. A delivery the receiver did not take in
        // time is retried every 5 s for 10 minutes, as Dfns retries, rather than lost.
        apply_webhooks_in_request: true,
        webhook_retry_delays: Some(vec![Duration::from_secs(5); 120]),
        ..EnvOptions::default()
    })
    .await;
    let env = &env;
    let app = &env.stack.app;

    // 1. Measured clients, their history written by the webhook receiver.
    let started = Instant::now();
    let mut subjects = Vec::new();
    for m in 0..measured {
        let subject = e2e::client_id(&format!("scale{m}"));
        let account = env.open_account(&subject).await;
        let wallet = account["wallets"][0]["walletId"]
            .as_str()
            .unwrap()
            .to_owned();
        subjects.push((subject, wallet));
    }
    // Paced (SCALE_DEPOSITS_PER_SECOND, default 10): the receiver applies in its request here,
    // and deliveries faster than it applies them pile up, time out at the emulator and come back
    // as retries, each racing the others on the client's audit chain (what the queue prevents
    // when deployed).
    let per_second = env_usize("SCALE_DEPOSITS_PER_SECOND", 10).max(1);
    let mut pace = tokio::time::interval(Duration::from_secs(1) / per_second as u32);
    for (_, wallet) in &subjects {
        for i in 0..rows {
            pace.tick().await;
            env.control(
                Method::POST,
                "deposits",
                &json!({"walletId": wallet, "kind": "Native", "amount": format!("{}", 1000 + i), "from": FUNDER}),
            )
            .await;
        }
    }
    for (subject, _) in &subjects {
        let client = ClientId::parse(subject).unwrap();
        let deadline = Instant::now() + Duration::from_secs(1800);
        while chain_rows(app, &client).await < rows {
            assert!(
                Instant::now() < deadline,
                "{subject}'s rows never all arrived"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    println!(
        "measured clients: {measured} x {rows} deposits through the emulator's webhooks, rows written by the receiver, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The read model lists what Dfns' history (and the audit chain) say, in the same order.
    for (subject, _) in &subjects {
        let client = ClientId::parse(subject).unwrap();
        let old: Vec<String> = old_activity_rows(app, &client)
            .await
            .into_iter()
            .map(|r| r.id)
            .collect();
        let mut new = Vec::new();
        let mut cursor: Option<Cursor> = None;
        loop {
            let page = platform::reporting::activity(app, &client, cursor.as_ref(), 200)
                .await
                .unwrap();
            new.extend(page.items.into_iter().map(|r| r.id));
            match page.next_cursor {
                Some(next) => cursor = Some(Cursor::decode(&next).unwrap()),
                None => break,
            }
        }
        assert_eq!(new, old, "{subject}: read model vs Dfns history");
        println!(
            "{subject}: read model = Dfns history + audit chain: {} rows, same order",
            new.len()
        );
    }

    // 2. Background clients, straight into DynamoDB Local.
    let endpoint =
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect("run through cargo xtask exec");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .load()
        .await;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let written = AtomicUsize::new(0);
    let calls = AtomicUsize::new(0);
    let stopped_for_memory = AtomicBool::new(false);
    let workers = (0..8).map(|_| async {
        loop {
            if started.elapsed() >= write_budget {
                return;
            }
            // DynamoDB Local keeps an in-memory table in native memory (about 2.4 KiB an item
            // here): stop writing before the machine runs out rather than lose the run.
            if mem_available_mib().is_some_and(|free| free < min_free_mib) {
                stopped_for_memory.store(true, Ordering::Relaxed);
                return;
            }
            let index = next.fetch_add(1, Ordering::Relaxed);
            if index >= clients {
                return;
            }
            let c = write_background_client(&ddb, &env.table, index, rows).await;
            calls.fetch_add(c, Ordering::Relaxed);
            let done = written.fetch_add(1, Ordering::Relaxed) + 1;
            if done % 100 == 0 {
                let secs = started.elapsed().as_secs_f64();
                println!(
                    "  {done} background clients ({} rows) in {secs:.0} s: {:.0} rows/s; {} MiB available with swap",
                    done * rows,
                    (done * rows) as f64 / secs,
                    mem_available_mib().unwrap_or(0)
                );
            }
        }
    });
    futures::future::join_all(workers).await;
    let secs = started.elapsed().as_secs_f64();
    let background = written.load(Ordering::Relaxed);
    println!(
        "background clients: {background} x {rows} rows in {secs:.1} s ({:.0} rows/s, {} BatchWriteItem calls){}",
        (background * rows) as f64 / secs,
        calls.load(Ordering::Relaxed),
        if stopped_for_memory.load(Ordering::Relaxed) {
            " - stopped by SCALE_MIN_FREE_MIB"
        } else if background < clients {
            " - stopped by SCALE_WRITE_SECONDS"
        } else {
            ""
        }
    );

    // 3. Measurements, with Dfns' latency.
    if latency > 0 {
        env.control(
            Method::POST,
            "faults",
            &json!({ "pathPattern": "/**", "method": "GET", "rate": 1.0, "latencyMs": latency }),
        )
        .await;
    }
    let mut results = Vec::new();
    for (subject, _) in &subjects {
        let client = ClientId::parse(subject).unwrap();
        let token = env.token(subject);
        // The 50th page's cursor: walk the first 49 pages once.
        let mut cursor = None::<String>;
        for _ in 0..49 {
            let path = match &cursor {
                None => format!("/v1/activity?limit={page_size}"),
                Some(c) => format!("/v1/activity?limit={page_size}&cursor={c}"),
            };
            let (status, body) = env.call(Method::GET, &path, Some(&token), None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            cursor = Some(body["nextCursor"].as_str().expect("a 50th page").to_owned());
        }
        let fiftieth = cursor.unwrap();
        let get = |path: String| {
            let token = token.clone();
            async move {
                let (status, body): (StatusCode, Value) =
                    env.call(Method::GET, &path, Some(&token), None).await;
                assert_eq!(status, StatusCode::OK, "{path}: {body}");
                assert!(body.is_object());
            }
        };
        let first_path = format!("/v1/activity?limit={page_size}");
        let fiftieth_path = format!("/v1/activity?limit={page_size}&cursor={fiftieth}");
        results.push(
            measure(env, "after: activity, page 1", repeat, |_| {
                get(first_path.clone())
            })
            .await,
        );
        results.push(
            measure(env, "after: activity, page 50", repeat, |_| {
                get(fiftieth_path.clone())
            })
            .await,
        );
        results.push(
            measure(env, "after: account", repeat, |_| {
                get("/v1/account".to_owned())
            })
            .await,
        );
        let old_cursor = Cursor::decode(&fiftieth).unwrap();
        results.push(
            measure(env, "before: activity, page 1", repeat, |_| async {
                let rows = old_activity_rows(app, &client).await;
                let page = activity::page(&rows, None, page_size);
                assert_eq!(page.items.len(), page_size);
            })
            .await,
        );
        results.push(
            measure(env, "before: activity, page 50", repeat, |_| async {
                let rows = old_activity_rows(app, &client).await;
                let page = activity::page(&rows, Some(&old_cursor), page_size);
                assert!(!page.items.is_empty());
            })
            .await,
        );
        results.push(
            measure(env, "before: account (its reads)", repeat, |_| {
                old_account_reads(app, &client)
            })
            .await,
        );
    }

    // Per kind of read, over the measured clients: p50/p99 of all their calls.
    println!();
    println!(
        "{} background clients x {rows} rows + {measured} measured clients x {rows} deposits; Dfns reads +{latency} ms; page size {page_size}; {repeat} calls per client",
        background
    );
    println!("| read | p50 ms | p99 ms | Dfns calls/request | DynamoDB calls/request |");
    println!("|---|---|---|---|---|");
    let mut kinds: Vec<&str> = results.iter().map(|r| r.what.as_str()).collect();
    kinds.dedup();
    let mut seen = Vec::new();
    for kind in kinds {
        if seen.contains(&kind) {
            continue;
        }
        seen.push(kind);
        let same: Vec<&Row> = results.iter().filter(|r| r.what == kind).collect();
        let p50 = same.iter().map(|r| r.p50).max().unwrap();
        let p99 = same.iter().map(|r| r.p99).max().unwrap();
        let dfns = same.iter().map(|r| r.dfns).sum::<f64>() / same.len() as f64;
        let ddb = same.iter().map(|r| r.dynamodb).sum::<f64>() / same.len() as f64;
        println!(
            "| {kind} | {} | {} | {dfns:.1} | {ddb:.1} |",
            ms(p50),
            ms(p99)
        );
    }
    println!();
    for row in &results[..results.len().min(6)] {
        println!(
            "{}: Dfns {:?}; DynamoDB {:?}",
            row.what, row.dfns_detail, row.dynamodb_detail
        );
    }
}
