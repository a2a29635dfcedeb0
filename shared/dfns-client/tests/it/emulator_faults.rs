//! Retries, idempotency and logging under faults injected by the emulator.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::common::{As, emulator, funded_wallet, native};
use dfns_client::{DfnsClient, Error, ExternalId, RetryPolicy};
use futures::StreamExt as _;
use serde_json::json;

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
