use aws_sdk_dynamodb::types::AttributeValue;
use store::WebhookReceipt;
use time::Duration;

use crate::{fresh_store, t0};

#[tokio::test]
async fn same_event_twice_is_a_duplicate() {
    let store = fresh_store().await;
    let retain = Duration::days(35);
    assert_eq!(
        store
            .record_webhook_event("whe-1", t0(), retain)
            .await
            .unwrap(),
        WebhookReceipt::New
    );
    assert_eq!(
        store
            .record_webhook_event("whe-1", t0(), retain)
            .await
            .unwrap(),
        WebhookReceipt::Duplicate
    );
    assert_eq!(
        store
            .record_webhook_event("whe-2", t0(), retain)
            .await
            .unwrap(),
        WebhookReceipt::New
    );

    // The receipt carries the TTL attribute, in epoch seconds.
    let item = store
        .client()
        .get_item()
        .table_name(store.table_name())
        .key("pk", AttributeValue::S("WEBHOOK#whe-1".into()))
        .key("sk", AttributeValue::S("WEBHOOK".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let expected = (t0() + retain).unix_timestamp().to_string();
    assert_eq!(
        item.get(store::schema::TTL_ATTRIBUTE),
        Some(&AttributeValue::N(expected))
    );

    // After a processing failure the receipt can be dropped, so a redelivery is processed.
    store.forget_webhook_event("whe-1").await.unwrap();
    assert_eq!(
        store
            .record_webhook_event("whe-1", t0(), retain)
            .await
            .unwrap(),
        WebhookReceipt::New
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_of_one_event_are_processed_once() {
    let store = fresh_store().await;
    let deliveries = (0..10).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .record_webhook_event("whe-race", t0(), Duration::days(1))
                .await
                .unwrap()
        })
    });
    let receipts: Vec<_> = futures::future::join_all(deliveries)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        receipts
            .iter()
            .filter(|r| **r == WebhookReceipt::New)
            .count(),
        1
    );
}
