//! The webhook queue: verified Dfns deliveries wait here, in order per client, until the consumer
//! applies them (issue 19: hold a burst).
//!
//! An SQS FIFO queue. Each message is one verified event (its JSON as Dfns sent it); its
//! `MessageGroupId` is the client the event concerns ([`group_of`]), so one client's events are
//! applied one at a time and in order (no race on the client's audit chain head), while other
//! clients' events go on in parallel; its `MessageDeduplicationId` is the Dfns event id (SQS drops
//! a second copy within five minutes; the receiver's own record of delivery ids covers Dfns'
//! longer redelivery window). A message the consumer cannot apply is retried, then moved to the
//! dead-letter queue (`maxReceiveCount` in the template), where an alarm watches it.

use std::sync::{Arc, OnceLock};

use dfns_client::{Activity, EventData, WebhookEvent};
use domain::WalletId;
use sha2::Digest;

use crate::App;
use crate::error::{PlatformError, Result};

/// The environment variable naming the queue (its URL).
pub const WEBHOOK_QUEUE_URL: &str = "WEBHOOK_QUEUE_URL";
/// The message attribute carrying the receiving request's id (logs join on it).
pub const REQUEST_ID_ATTRIBUTE: &str = "requestId";

/// Where verified deliveries go.
#[derive(Clone)]
pub struct WebhookQueue {
    /// Built on first use: a delivery refused before it is queued (no signature, a bad one)
    /// needs no SQS client, and the receiver's cold start answers those too.
    client: Arc<OnceLock<aws_sdk_sqs::Client>>,
    make: Arc<dyn Fn() -> aws_sdk_sqs::Client + Send + Sync>,
    url: String,
}

impl std::fmt::Debug for WebhookQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookQueue")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl WebhookQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self {
            client: Arc::new(OnceLock::from(client.clone())),
            make: Arc::new(move || client.clone()),
            url: url.into(),
        }
    }

    /// The queue named by `WEBHOOK_QUEUE_URL`, if set. No I/O; its client comes on first use.
    pub async fn from_env() -> Option<Self> {
        let url = std::env::var(WEBHOOK_QUEUE_URL)
            .ok()
            .filter(|u| !u.trim().is_empty())?;
        let sdk = platform_config::aws::sdk_config().await;
        Some(Self {
            client: Arc::new(OnceLock::new()),
            make: Arc::new(move || aws_sdk_sqs::Client::new(sdk)),
            url: url.trim().to_owned(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn client(&self) -> &aws_sdk_sqs::Client {
        self.client.get_or_init(|| (self.make)())
    }

    /// Enqueues one verified event's JSON in `group`.
    pub async fn send(
        &self,
        event_id: &str,
        group: &str,
        body: &str,
        request_id: &str,
    ) -> Result<()> {
        let attribute = aws_sdk_sqs::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(request_id)
            .build()
            .map_err(|e| PlatformError::Internal(format!("SQS message attribute: {e}")))?;
        self.client()
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .message_group_id(group)
            .message_deduplication_id(deduplication_id(event_id))
            .message_attributes(REQUEST_ID_ATTRIBUTE, attribute)
            .send()
            .await
            .map_err(|e| {
                PlatformError::Queue(format!(
                    "enqueueing an event: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(e)
                ))
            })?;
        Ok(())
    }
}

/// SQS allows 128 characters of `[A-Za-z0-9!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~]` as a deduplication
/// or group id: the value itself when it fits, else its SHA-256 (hex).
fn sqs_id(value: &str) -> String {
    let fits =
        !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic());
    if fits {
        value.to_owned()
    } else {
        hex::encode(sha2::Sha256::digest(value.as_bytes()))
    }
}

fn deduplication_id(event_id: &str) -> String {
    sqs_id(event_id)
}

/// The message group of an event: `client:<id>` when the event concerns a client the platform
/// knows (its wallet, or its destination request's approval), else `wallet:<id>` for a wallet no
/// client holds yet, else `other` (events the platform does not act on).
pub async fn group_of(app: &App, event: &WebhookEvent) -> Result<String> {
    let store = app.store();
    let client = match &event.data {
        EventData::BlockchainEventDetected(chain_event) => {
            return wallet_group(app, chain_event.wallet_id.as_str()).await;
        }
        EventData::Transfer(transfer) => {
            return wallet_group(app, transfer.wallet_id.as_str()).await;
        }
        EventData::ApprovalResolved {
            approval,
            activity_id,
        } => {
            let by_approval = match (approval, activity_id) {
                (Some(approval), _) => Some(approval.id.to_string()),
                (None, Some(id)) => Some(id.clone()),
                (None, None) => None,
            };
            let mut found = match by_approval {
                Some(id) => store.find_destination_request_by_approval_id(&id).await?,
                None => None,
            };
            if found.is_none() {
                if let Some(approval) = approval {
                    if let Activity::PoliciesModify { change_request } = &approval.activity {
                        found = store
                            .find_destination_request_by_change_request_id(
                                change_request.id.as_str(),
                            )
                            .await?;
                    }
                }
            }
            found.map(|r| r.client_id)
        }
        EventData::ApprovalPending(approval) => match &approval.activity {
            Activity::PoliciesModify { change_request } => store
                .find_destination_request_by_change_request_id(change_request.id.as_str())
                .await?
                .map(|r| r.client_id),
            _ => None,
        },
        _ => None,
    };
    Ok(match client {
        Some(client) => sqs_id(&format!("client:{client}")),
        None => "other".to_owned(),
    })
}

async fn wallet_group(app: &App, raw_wallet_id: &str) -> Result<String> {
    let Ok(wallet_id) = WalletId::parse(raw_wallet_id) else {
        return Ok("other".to_owned());
    };
    Ok(match app.store().find_wallet(&wallet_id).await? {
        Some(mapping) => sqs_id(&format!("client:{}", mapping.client_id)),
        None => sqs_id(&format!("wallet:{wallet_id}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_fit_are_kept_and_others_hashed() {
        assert_eq!(sqs_id("wh-01jabc"), "wh-01jabc");
        assert_eq!(sqs_id("client:alice"), "client:alice");
        let long = "x".repeat(129);
        assert_eq!(sqs_id(&long).len(), 64);
        assert_eq!(sqs_id("with space").len(), 64);
        assert_eq!(sqs_id("é").len(), 64);
        assert_ne!(sqs_id("with space"), sqs_id("with  space"));
    }
}
