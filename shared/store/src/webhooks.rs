//! Webhook event de-duplication.

use time::OffsetDateTime;

use crate::destinations::rfc3339;
use crate::item::{key, n, s};
use crate::schema::TTL_ATTRIBUTE;
use crate::{Store, StoreError};

/// Whether a webhook event id was seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookReceipt {
    /// First time: process it.
    New,
    /// Already recorded: acknowledge and do nothing.
    Duplicate,
}

fn receipt_key(event_id: &str) -> crate::item::Item {
    key(format!("WEBHOOK#{event_id}"), "WEBHOOK")
}

impl Store {
    /// Records the event id if it is new (one conditional put). The record expires through TTL
    /// after `retain` (Dfns keeps and may redeliver events for 31 days).
    pub async fn record_webhook_event(
        &self,
        event_id: &str,
        received_at: OffsetDateTime,
        retain: time::Duration,
    ) -> Result<WebhookReceipt, StoreError> {
        let mut item = receipt_key(event_id);
        item.insert("eventId".into(), s(event_id));
        item.insert("receivedAt".into(), s(rfc3339(received_at)));
        item.insert(
            TTL_ATTRIBUTE.into(),
            n((received_at + retain).unix_timestamp()),
        );
        Ok(match self.put_if_absent(item).await? {
            true => WebhookReceipt::New,
            false => WebhookReceipt::Duplicate,
        })
    }

    /// Forgets an event id, so a redelivery is processed again (use when processing failed after
    /// the event was recorded).
    pub async fn forget_webhook_event(&self, event_id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(receipt_key(event_id)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::aws("DeleteItem", e))
    }
}
