//! Issue 19 through the local stack: deliveries go through the webhook queue (LocalStack's SQS FIFO) and
//! the consumer, as deployed.

use std::time::Duration;

use e2e::{Env, EnvOptions, deposit_delivery, sign_webhook, wait_until};
use reqwest::StatusCode;
use serde_json::json;

async fn deposits_audited(env: &Env, client: &str) -> Vec<String> {
    let (status, trail) = env.get("/v1/audit?limit=200", client).await;
    assert_eq!(status, StatusCode::OK, "{trail}");
    trail["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"]["action"] == "deposit.received")
        .map(|e| e["event"]["details"]["txHash"].as_str().unwrap().to_owned())
        .collect()
}

/// The receiver answers once the delivery is queued; the consumer applies it; the client sees it
/// in its audit trail. A message the consumer cannot apply (here put straight on the queue in the
/// client's group, as a bug in applying would leave one) is retried, holds the client's later
/// events back meanwhile (order), and after its fifth receive moves to the dead-letter queue;
/// then the client's later events apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliveries_are_queued_and_a_poison_event_is_dead_lettered_without_losing_later_ones() {
    let env = Env::start(EnvOptions::default()).await;
    let alice = format!("alice-{}", ulid::Ulid::new());
    let account = env.open_account(&alice).await;
    let wallet = account["wallets"][0]["walletId"]
        .as_str()
        .unwrap()
        .to_owned();

    let first = deposit_delivery(&wallet, "0xfirst");
    let (status, body) = env
        .deliver_webhook(&first, &sign_webhook(&env.webhook_secret, &first))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "queued", "{body}");
    let applied = wait_until(Duration::from_secs(30), || async {
        (deposits_audited(&env, &alice).await == ["0xfirst"]).then_some(())
    })
    .await;
    assert!(applied.is_some(), "the queued deposit is applied");

    // A poison message in alice's group, then a real deposit behind it.
    env.sqs
        .send_message()
        .queue_url(&env.webhook_queue.url)
        .message_body("{\"id\": \"whe-poison\", \"kind\": ")
        .message_group_id(format!("client:{alice}"))
        .message_deduplication_id(format!("poison-{}", ulid::Ulid::new()))
        .send()
        .await
        .unwrap();
    let later = deposit_delivery(&wallet, "0xlater");
    let (status, _) = env
        .deliver_webhook(&later, &sign_webhook(&env.webhook_secret, &later))
        .await;
    assert_eq!(status, StatusCode::OK);

    // Signed by Dfns and fresh, but a shape this code cannot read: answered 200 and kept, so that
    // it ends in the dead-letter queue for a redrive once the code reads it.
    let new_shape = serde_json::to_vec(&json!({
        "id": "whe-new-shape",
        "timestampSent": time::OffsetDateTime::now_utc().unix_timestamp(),
        "payload": {"walletId": wallet},
    }))
    .unwrap();
    let (status, body) = env
        .deliver_webhook(&new_shape, &sign_webhook(&env.webhook_secret, &new_shape))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "queued", "{body}");

    let seen = std::sync::Mutex::new(Vec::<String>::new());
    let dead = wait_until(Duration::from_secs(90), || async {
        let received = env
            .sqs
            .receive_message()
            .queue_url(&env.webhook_queue.dead_letter_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        let mut seen = seen.lock().unwrap();
        seen.extend(received.iter().filter_map(|m| m.body.clone()));
        let has = |needle: &str| seen.iter().any(|b| b.contains(needle));
        (has("whe-poison") && has("whe-new-shape")).then_some(())
    })
    .await;
    assert!(
        dead.is_some(),
        "the poison and the unreadable delivery are dead-lettered: {:?}",
        seen.lock().unwrap()
    );
    let caught_up = wait_until(Duration::from_secs(60), || async {
        (deposits_audited(&env, &alice).await == ["0xfirst", "0xlater"]).then_some(())
    })
    .await;
    assert!(
        caught_up.is_some(),
        "the later deposit applies after the poison left: {:?}",
        deposits_audited(&env, &alice).await
    );
}
