//! `webhook-redrive`: replays the queued Dfns events the consumer could not apply (they wait in
//! the webhook dead-letter queue, and the `webhook-dead-letters` alarm fired), once the cause is
//! fixed. Each message goes back to the webhook queue in its own message group (its client), with
//! its body and request id, then leaves the dead-letter queue. Applying an event twice is safe
//! (the consumer is forward-only and de-duplicates on business objects), so a redrive that stops
//! halfway can simply be run again.

use anyhow::Context;
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName};
use sha2::Digest;

/// What a run did (or, dry, would do).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Redriven {
    /// (message group, message id) of each message moved (or found, dry).
    pub messages: Vec<(String, String)>,
}

/// Moves up to `max` messages from `dead_letter_url` to `queue_url` (all of them when `None`).
/// `dry_run`: lists them, moves nothing (they become visible again after the dead-letter queue's
/// visibility timeout).
pub async fn redrive(
    sqs: &aws_sdk_sqs::Client,
    dead_letter_url: &str,
    queue_url: &str,
    max: Option<usize>,
    dry_run: bool,
) -> anyhow::Result<Redriven> {
    let mut done = Redriven::default();
    loop {
        if max.is_some_and(|max| done.messages.len() >= max) {
            break;
        }
        let received = sqs
            .receive_message()
            .queue_url(dead_letter_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .message_attribute_names("All")
            .send()
            .await
            .context("receiving from the dead-letter queue")?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for message in messages {
            if max.is_some_and(|max| done.messages.len() >= max) {
                break;
            }
            let id = message.message_id.clone().unwrap_or_default();
            let group = message
                .attributes
                .as_ref()
                .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId).cloned())
                .unwrap_or_else(|| "other".to_owned());
            done.messages.push((group.clone(), id.clone()));
            if dry_run {
                continue;
            }
            let mut send = sqs
                .send_message()
                .queue_url(queue_url)
                .message_body(message.body.clone().unwrap_or_default())
                .message_group_id(&group)
                // Not the original id: SQS would drop it as a duplicate within five minutes.
                .message_deduplication_id(hex::encode(sha2::Sha256::digest(format!(
                    "redrive:{id}:{}",
                    ulid::Ulid::new()
                ))));
            for (name, value) in message.message_attributes.clone().unwrap_or_default() {
                send = send.message_attributes(name, copy_attribute(&value)?);
            }
            send.send()
                .await
                .with_context(|| format!("sending message {id} back to the webhook queue"))?;
            if let Some(handle) = &message.receipt_handle {
                sqs.delete_message()
                    .queue_url(dead_letter_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .with_context(|| format!("deleting message {id} from the dead-letter queue"))?;
            }
        }
    }
    Ok(done)
}

fn copy_attribute(value: &MessageAttributeValue) -> anyhow::Result<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type(value.data_type())
        .set_string_value(value.string_value.clone())
        .set_binary_value(value.binary_value.clone())
        .build()
        .context("copying a message attribute")
}

#[cfg(test)]
mod tests {
    use aws_sdk_sqs::types::QueueAttributeName;

    use super::*;

    async fn sqs() -> aws_sdk_sqs::Client {
        assert!(
            std::env::var_os("AWS_ENDPOINT_URL_SQS").is_some(),
            "AWS_ENDPOINT_URL_SQS is not set: run through `cargo xtask test` (LocalStack's SQS)"
        );
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        aws_sdk_sqs::Client::new(&config)
    }

    async fn fifo(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
        sqs.create_queue()
            .queue_name(format!("{name}-{}.fifo", ulid::Ulid::new()))
            .attributes(QueueAttributeName::FifoQueue, "true")
            // A dry run's receives hide messages this long.
            .attributes(QueueAttributeName::VisibilityTimeout, "1")
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap()
    }

    #[tokio::test]
    async fn dead_letters_go_back_to_their_group_with_body_and_request_id() {
        let sqs = sqs().await;
        let (queue, dead) = (
            fifo(&sqs, "redrive-q").await,
            fifo(&sqs, "redrive-dlq").await,
        );
        for (group, body) in [("client:alice", "{\"a\":1}"), ("client:bob", "{\"b\":2}")] {
            sqs.send_message()
                .queue_url(&dead)
                .message_body(body)
                .message_group_id(group)
                .message_deduplication_id(format!("dedup-{group}"))
                .message_attributes(
                    "requestId",
                    MessageAttributeValue::builder()
                        .data_type("String")
                        .string_value(format!("req-{group}"))
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap();
        }
        let dry = redrive(&sqs, &dead, &queue, None, true).await.unwrap();
        assert_eq!(dry.messages.len(), 2, "listed");

        // The dry run's receives hide them for the visibility timeout: wait it out.
        let mut moved = Redriven::default();
        for _ in 0..40 {
            moved.messages.extend(
                redrive(&sqs, &dead, &queue, None, false)
                    .await
                    .unwrap()
                    .messages,
            );
            if moved.messages.len() == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        assert_eq!(moved.messages.len(), 2, "{moved:?}");
        let back = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        let mut seen: Vec<(String, String, String)> = back
            .iter()
            .map(|m| {
                (
                    m.attributes.as_ref().unwrap()[&MessageSystemAttributeName::MessageGroupId]
                        .clone(),
                    m.body.clone().unwrap(),
                    m.message_attributes.as_ref().unwrap()["requestId"]
                        .string_value
                        .clone()
                        .unwrap(),
                )
            })
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                (
                    "client:alice".to_owned(),
                    "{\"a\":1}".to_owned(),
                    "req-client:alice".to_owned()
                ),
                (
                    "client:bob".to_owned(),
                    "{\"b\":2}".to_owned(),
                    "req-client:bob".to_owned()
                ),
            ]
        );
        let left = sqs
            .receive_message()
            .queue_url(&dead)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        assert!(left.is_empty(), "the dead-letter queue is empty");
    }
}
