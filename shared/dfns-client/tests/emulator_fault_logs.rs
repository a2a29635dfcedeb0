//! Logging under faults: what the client's spans record. Kept in a binary of its own and run one
//! at a time, because the capture is a thread-local subscriber and other tests running beside it
//! in the same process can leave a callsite's cached interest at "never" (requests go unrecorded).

#[path = "it/common.rs"]
mod common;

use std::time::Duration;

use common::{As, LogCapture, emulator, funded_wallet, native};
use dfns_client::{DfnsClient, Error, ExternalId, RetryPolicy};
use serde_json::json;

/// One capture at a time in this process.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn a_transfer_without_external_id_is_sent_once_one_with_external_id_is_retried() {
    let _serial = SERIAL.lock().await;
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
    let _serial = SERIAL.lock().await;
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
