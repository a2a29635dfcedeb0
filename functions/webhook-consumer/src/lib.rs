//! `webhook-consumer`: applies the Dfns events the webhook receiver queued (issue 19), from an SQS
//! FIFO queue whose message group is the client ([`platform::webhook_queue`]).
//!
//! A batch holds messages of one or more groups, each group's in order. Groups are applied
//! side by side; within a group one message at a time, so one client's audit chain has a single
//! writer here. When a message fails, it and every later message of its group in the batch are
//! reported failed (SQS returns them in order later; applying a later one first would break the
//! group's order); the other groups' messages are unaffected. A message that keeps failing moves
//! to the dead-letter queue after the queue's `maxReceiveCount`, and the group goes on.

use std::collections::BTreeMap;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};

/// The secrets this function holds: it reads approvals (the read-only account) and changes
/// nothing at Dfns; the reconciler submits what a settled request unblocks.
pub const SECRETS: platform::SecretsHeld = platform::SecretsHeld::READ_ONLY;

/// One queued event, as the consumer needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    /// The SQS message id (what a partial batch failure names).
    pub id: String,
    /// The message group (the client).
    pub group: String,
    /// The verified event's JSON.
    pub body: String,
    /// The receiving request's id, for the logs and the audit lines.
    pub request_id: Option<String>,
}

impl QueuedMessage {
    /// From Lambda's SQS event record.
    pub fn from_sqs(message: &SqsMessage) -> Self {
        Self {
            id: message.message_id.clone().unwrap_or_default(),
            group: message
                .attributes
                .get("MessageGroupId")
                .cloned()
                .unwrap_or_default(),
            body: message.body.clone().unwrap_or_default(),
            request_id: message
                .message_attributes
                .get(platform::webhook_queue::REQUEST_ID_ATTRIBUTE)
                .and_then(|a| a.string_value.clone()),
        }
    }
}

/// Applies a batch; returns the ids of the messages to retry (empty: all applied).
pub async fn handle(app: &platform::App, messages: &[QueuedMessage]) -> Vec<String> {
    let mut groups: BTreeMap<&str, Vec<&QueuedMessage>> = BTreeMap::new();
    for message in messages {
        groups.entry(&message.group).or_default().push(message);
    }
    let per_group = groups.into_values().map(|group| async move {
        // The group's audit lines of deposits and transfer statuses, appended together after
        // its messages are applied (one chain round trip per batch, not per event).
        let deferred = platform::audit::Deferred::default();
        let mut failed = Vec::new();
        for (i, message) in group.iter().enumerate() {
            let request_id = message
                .request_id
                .clone()
                .unwrap_or_else(|| format!("queued-{}", message.id));
            match platform::webhook::consume(app, &message.body, &request_id, Some(&deferred))
                .await
            {
                Ok(_) => platform::metrics::count(platform::metrics::WEBHOOK_EVENT_APPLIED),
                Err(error) => {
                    platform::metrics::count(platform::metrics::WEBHOOK_EVENT_FAILED);
                    tracing::warn!(
                        %error,
                        message = %message.id,
                        group = %message.group,
                        later = group.len() - i - 1,
                        "a queued webhook event failed; it and the group's later ones are retried"
                    );
                    failed.extend(group[i..].iter().map(|m| m.id.clone()));
                    break;
                }
            }
        }
        if let Err(error) = deferred.flush(app).await {
            // The applied ones are retried too: applying again is safe, and their lines are
            // held again (once each).
            tracing::warn!(%error, "appending the batch's audit lines failed; the group is retried");
            return group.iter().map(|m| m.id.clone()).collect();
        }
        failed
    });
    futures::future::join_all(per_group)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// [`handle`] for Lambda's SQS event, answering with a partial batch failure report.
pub async fn handle_sqs(app: &platform::App, records: &[SqsMessage]) -> SqsBatchResponse {
    let messages: Vec<QueuedMessage> = records.iter().map(QueuedMessage::from_sqs).collect();
    let failed = handle(app, &messages).await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

#[cfg(test)]
mod consumer_tests;
