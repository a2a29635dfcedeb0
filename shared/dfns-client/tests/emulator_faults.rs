//! Retries, idempotency and logging under faults injected by the emulator.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::{As, LogCapture, emulator};
use dfns_client::{
    Amount, CreateWallet, DfnsClient, Error, ExternalId, Network, RetryPolicy, TransferAsset,
    WalletId,
};
use futures::StreamExt as _;
use serde_json::json;

const RECIPIENT: &str = "0xb282dc7cde21717f18337a596e91ded00b79b25f";

fn native(amount: u128) -> TransferAsset {
    TransferAsset::Native {
        to: RECIPIENT.to_owned(),
        amount: Amount::from(amount),
        memo: None,
        priority: None,
    }
}

async fn funded_wallet(emu: &common::Emulator, client: &DfnsClient) -> WalletId {
    let wallet = client
        .create_wallet(&CreateWallet::new(Network::EthereumSepolia))
        .await
        .unwrap();
    emu.deposit(wallet.id.as_str(), "1000000000000000000000")
        .await;
    wallet.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_transfers_through_half_throttled_api_create_exactly_hundred() {
    let emu = emulator().await;
    let mut config = emu.config(As::ServiceAccount);
    config.retry = RetryPolicy {
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(2),
        deadline: Duration::from_secs(90),
        max_attempts: 100,
    };
    let client = DfnsClient::new(config).unwrap();
    let wallet_id = funded_wallet(&emu, &client).await;
    let before = emu.transfers_created().await;

    // Every step of a signed call is throttled half of the time, with Retry-After: 1.
    for (i, path) in ["/auth/action/init", "/auth/action", "/wallets/*/transfers"]
        .into_iter()
        .enumerate()
    {
        emu.add_fault(json!({
            "pathPattern": path, "method": "POST", "status": 429, "rate": 0.5,
            "retryAfterSeconds": 1, "seed": 42 + i,
        }))
        .await;
    }

    let results: Vec<_> = futures::stream::iter(0..100)
        .map(|i| {
            let client = client.clone();
            let wallet_id = wallet_id.clone();
            async move {
                let external_id = ExternalId::new(format!("batch-{i}"));
                let outcome = client
                    .transfer(&wallet_id, external_id.clone(), native(1_000 + i))
                    .await;
                (external_id, outcome)
            }
        })
        .buffer_unordered(50)
        .collect()
        .await;
    emu.clear_faults().await;

    let mut by_external_id = HashMap::new();
    for (external_id, outcome) in results {
        let transfer = outcome
            .unwrap_or_else(|e| panic!("{external_id} failed: {e}"))
            .into_transfer();
        assert_eq!(transfer.external_id.as_ref(), Some(&external_id));
        by_external_id.insert(external_id, transfer.id);
    }
    assert_eq!(by_external_id.len(), 100);
    let distinct: HashSet<_> = by_external_id.values().collect();
    assert_eq!(distinct.len(), 100, "no two externalIds share a transfer");
    assert_eq!(
        emu.transfers_created().await - before,
        100,
        "exactly one transfer per externalId, none twice"
    );
}

#[tokio::test]
async fn reads_give_up_at_the_deadline_with_a_retryable_error_when_every_call_fails() {
    let emu = emulator().await;
    let client = emu.client(As::ServiceAccount);
    let wallet_id = funded_wallet(&emu, &client).await;
    for path in ["/wallets/**", "/auth/**", "/v2/**", "/webhooks/**"] {
        emu.add_fault(json!({"pathPattern": path, "status": 503, "rate": 1.0}))
            .await;
    }
    let mut config = emu.config(As::ServiceAccount);
    let deadline = Duration::from_secs(3);
    config.retry = RetryPolicy {
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
        deadline,
        max_attempts: 100,
    };
    let client = DfnsClient::new(config).unwrap();

    let started = Instant::now();
    let error = client.get_wallet(&wallet_id).await.unwrap_err();
    let elapsed = started.elapsed();
    let Error::RetriesExhausted { attempts, .. } = &error else {
        panic!("expected RetriesExhausted, got {error:?}")
    };
    assert!(*attempts >= 2, "retried before giving up: {attempts}");
    assert!(error.is_retryable());
    assert_eq!(error.status(), Some(503));
    // The emulator's Retry-After (1 s) is honoured: attempts are at least a second apart.
    assert!(*attempts <= 4, "{attempts} attempts in {elapsed:?}");
    assert!(elapsed <= deadline + Duration::from_secs(1), "{elapsed:?}");

    // A transfer without externalId never gets sent at all here (signing fails first) …
    let error = client
        .transfer_without_external_id(&wallet_id, native(1))
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert_eq!(emu.transfers_created().await, 0);
}

#[tokio::test]
async fn a_transfer_without_external_id_is_sent_once_one_with_external_id_is_retried() {
    let emu = emulator().await;
    let client = emu.client(As::ServiceAccount);
    let wallet_id = funded_wallet(&emu, &client).await;
    emu.add_fault(json!({
        "pathPattern": "/wallets/*/transfers", "method": "POST", "status": 503, "rate": 1.0,
        "retryAfterSeconds": 1,
    }))
    .await;
    let mut config = emu.config(As::ServiceAccount);
    config.retry = RetryPolicy {
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        deadline: Duration::from_secs(3),
        max_attempts: 100,
    };
    let client = DfnsClient::new(config).unwrap();

    let logs = LogCapture::default();
    let _guard = logs.install();

    let error = client
        .transfer_without_external_id(&wallet_id, native(5))
        .await
        .unwrap_err();
    // The 503 itself, not a give-up after retries.
    assert!(
        matches!(&error, Error::Api(api) if api.status == 503),
        "{error:?}"
    );
    assert_eq!(
        logs.requests("POST", "/transfers").len(),
        1,
        "{}",
        logs.text()
    );

    let error = client
        .transfer(&wallet_id, ExternalId::new("retry-me"), native(5))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::RetriesExhausted { .. }), "{error:?}");
    let posts = logs.requests("POST", "/transfers");
    assert!(posts.len() >= 3, "retried: {} posts in total", posts.len());
    // Each attempt was signed afresh: one init per transfer POST.
    assert_eq!(
        logs.requests("POST", "/auth/action/init").len(),
        posts.len()
    );
    assert_eq!(emu.transfers_created().await, 0);
}

#[tokio::test]
async fn spans_carry_method_path_status_attempt_latency_and_never_a_secret() {
    let emu = emulator().await;
    let token = emu.token(As::ServiceAccount);
    let private_key = emu.identity(As::ServiceAccount)["privateKeyPem"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut config = emu.config(As::ServiceAccount);
    config.retry.deadline = Duration::from_millis(2500);
    let client = DfnsClient::new(config).unwrap();
    // One throttled read so a retry is logged too.
    emu.add_fault(json!({"pathPattern": "/wallets", "method": "GET", "status": 429, "rate": 1.0}))
        .await;

    let logs = LogCapture::default();
    let _guard = logs.install();
    let wallet_id = funded_wallet(&emu, &client).await;
    client
        .transfer(&wallet_id, ExternalId::new("logged"), native(9))
        .await
        .unwrap();
    let _ = client.get_wallet(&wallet_id).await.unwrap();
    let throttled = futures::StreamExt::next(&mut client.list_wallets(&Default::default())).await;
    assert!(throttled.unwrap().is_err());
    drop(_guard);

    let text = logs.text();
    let transfer_posts = logs.requests("POST", "/transfers");
    assert_eq!(transfer_posts.len(), 1, "{text}");
    let line = &transfer_posts[0];
    for field in ["attempt=1", "status=200", "latency_ms="] {
        assert!(line.contains(field), "{field} missing in {line}");
    }
    assert!(
        logs.requests("GET", "/wallets")
            .iter()
            .any(|l| l.contains("status=429"))
    );
    assert!(text.contains("retrying Dfns call"), "{text}");
    // One span per logical call too, with its final status.
    assert!(
        text.lines().any(|l| l.contains("dfns_call{method=POST")
            && l.contains("signed=true")
            && l.contains("status=200")
            && l.contains(": close")),
        "{text}"
    );

    assert!(!text.contains(&token), "bearer token leaked into logs");
    assert!(!text.contains("Bearer"), "an Authorization header leaked");
    for secret_line in private_key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!text.contains(secret_line), "private key leaked");
    }
    assert!(
        !text.to_lowercase().contains("x-dfns-useraction"),
        "user action leaked"
    );
    assert!(!text.contains("clientData") && !text.contains("signature\""));
    // Debug output of the client and its config hides the secrets too.
    let debug = format!("{client:?} {:?}", emu.config(As::ServiceAccount));
    assert!(
        !debug.contains(&token) && !debug.contains("PRIVATE KEY"),
        "{debug}"
    );
}
