//! The webhook queue on the stand-ins: an SQS FIFO queue and its dead-letter queue (LocalStack's SQS), and
//! pollers that hand each received batch to the consumer's `handle` — the function Lambda's SQS
//! event source calls in AWS — then delete what it applied. What it reports failed stays in the
//! queue and comes back after the visibility timeout; after [`MAX_RECEIVES`] receives SQS moves it
//! to the dead-letter queue, as the template's redrive policy does.

use std::time::Duration;

use anyhow::Context;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use webhook_consumer::QueuedMessage;

/// Receives before a message is dead-lettered (the template's `maxReceiveCount`).
pub const MAX_RECEIVES: u32 = 5;
/// How long a received message stays hidden before it comes back (seconds). Short here so a
/// failed message is retried within seconds.
pub const VISIBILITY_TIMEOUT_SECONDS: u32 = 5;
/// Pollers side by side (SQS hands a group to one receiver at a time): the consumer's
/// concurrency, as the template's `MaximumConcurrency` is on AWS. Two, as this stack's machines
/// have two cores shared with the receiver and the stand-ins: under issue 19's burst, four
/// pollers applying up to 40 clients' batches at once held DynamoDB Local at a full core and the
/// receiver's answers at p99 349 ms; two gave 164 ms, the queue absorbing the rest.
pub const POLLERS: usize = 2;

/// A queue and its dead-letter queue.
#[derive(Debug, Clone)]
pub struct LocalQueue {
    pub url: String,
    pub dead_letter_url: String,
}

/// Creates `<name>.fifo` with a dead-letter queue `<name>-dlq.fifo` (or finds them).
pub async fn create(sqs: &aws_sdk_sqs::Client, name: &str) -> anyhow::Result<LocalQueue> {
    let dead_letter_url = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq.fifo"))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .context("creating the dead-letter queue")?
        .queue_url
        .context("no queue URL")?;
    let dead_letter_arn = sqs
        .get_queue_attributes()
        .queue_url(&dead_letter_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .context("reading the dead-letter queue's ARN")?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .context("no queue ARN")?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dead_letter_arn,
        "maxReceiveCount": MAX_RECEIVES.to_string(),
    });
    let url = sqs
        .create_queue()
        .queue_name(format!("{name}.fifo"))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            VISIBILITY_TIMEOUT_SECONDS.to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .context("creating the webhook queue")?
        .queue_url
        .context("no queue URL")?;
    Ok(LocalQueue {
        url,
        dead_letter_url,
    })
}

/// Receives and applies batches from `url` forever.
pub async fn poll(app: platform::App, sqs: aws_sdk_sqs::Client, url: String) {
    let app = app.holding_only(webhook_consumer::SECRETS);
    loop {
        if let Err(error) = poll_once(&app, &sqs, &url, Duration::from_secs(1)).await {
            tracing::warn!(error = %format!("{error:#}"), "webhook queue poll failed");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// One receive (waiting up to `wait`), applied and acknowledged. Returns how many messages it
/// received.
pub async fn poll_once(
    app: &platform::App,
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    wait: Duration,
) -> anyhow::Result<usize> {
    let received = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait.as_secs() as i32)
        .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
        .message_attribute_names("All")
        .send()
        .await
        .context("receiving")?;
    let messages = received.messages.unwrap_or_default();
    if messages.is_empty() {
        return Ok(0);
    }
    let queued: Vec<QueuedMessage> = messages
        .iter()
        .map(|m| QueuedMessage {
            id: m.message_id.clone().unwrap_or_default(),
            group: m
                .attributes
                .as_ref()
                .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId).cloned())
                .unwrap_or_default(),
            body: m.body.clone().unwrap_or_default(),
            request_id: m
                .message_attributes
                .as_ref()
                .and_then(|a| a.get(platform::webhook_queue::REQUEST_ID_ATTRIBUTE))
                .and_then(|v| v.string_value.clone()),
        })
        .collect();
    let failed = webhook_consumer::handle(app, &queued).await;
    // One call for the applied ones (SQS takes up to 10 per batch, as received).
    let applied: Vec<aws_sdk_sqs::types::DeleteMessageBatchRequestEntry> = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| {
            !failed
                .iter()
                .any(|f| Some(f.as_str()) == m.message_id.as_deref())
        })
        .filter_map(|(i, m)| {
            aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .set_receipt_handle(m.receipt_handle.clone())
                .build()
                .ok()
        })
        .collect();
    if !applied.is_empty() {
        let deleted = sqs
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(applied))
            .send()
            .await
            .context("deleting applied messages")?;
        if !deleted.failed.is_empty() {
            // They come back after the visibility timeout and are applied again (safely).
            tracing::warn!(
                failed = deleted.failed.len(),
                "some applied messages were not deleted"
            );
        }
    }
    Ok(messages.len())
}
