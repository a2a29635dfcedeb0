//! Webhook event de-duplication.

use time::OffsetDateTime;

use crate::destinations::rfc3339;
use crate::item::{self, key, n, s};
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

/// A deposit event for a wallet no client held when it was applied (a deposit between the wallet's
/// creation at Dfns and its mapping here, or a wallet outside the platform), kept until the mapping
/// appears. Item `UNMAPPED#<walletId>` / `EVENT#<eventId>`; while kept it is in the `open` index
/// (`OPEN#UNMAPPED` / `<keptAt>#<walletId>#<eventId>`) so a sweep finds recent ones without a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptEvent {
    pub wallet_id: String,
    pub event_id: String,
    /// The verified event, as the receiver queued it.
    pub body: String,
    pub kept_at: OffsetDateTime,
}

/// `openPk` of kept events.
const OPEN_UNMAPPED: &str = "OPEN#UNMAPPED";

fn kept_key(wallet_id: &str, event_id: &str) -> crate::item::Item {
    key(format!("UNMAPPED#{wallet_id}"), format!("EVENT#{event_id}"))
}

fn corrupt(item: &crate::item::Item, reason: String) -> StoreError {
    StoreError::Corrupt {
        entity: "kept event",
        key: crate::item::get_s(item, "sk")
            .unwrap_or_default()
            .to_owned(),
        reason,
    }
}

/// `openSk` of a kept event: sorts by when it was kept (zero-padded epoch milliseconds).
fn kept_sort_key(kept_at: OffsetDateTime) -> String {
    format!("{:015}", kept_at.unix_timestamp_nanos() / 1_000_000)
}

fn kept_from_item(item: &crate::item::Item) -> Result<KeptEvent, StoreError> {
    let field = |name: &str| {
        crate::item::get_s(item, name)
            .map(str::to_owned)
            .ok_or_else(|| corrupt(item, format!("no {name}")))
    };
    let kept_at = field("keptAt")?;
    Ok(KeptEvent {
        wallet_id: field("walletId")?,
        event_id: field("eventId")?,
        body: field("body")?,
        kept_at: OffsetDateTime::parse(&kept_at, &time::format_description::well_known::Rfc3339)
            .map_err(|e| corrupt(item, format!("keptAt: {e}")))?,
    })
}

impl Store {
    /// Keeps an event for a wallet not mapped yet (once per event id; expires after `retain`).
    pub async fn keep_unmapped_event(
        &self,
        event: &KeptEvent,
        retain: time::Duration,
    ) -> Result<(), StoreError> {
        let mut item = kept_key(&event.wallet_id, &event.event_id);
        item.insert("walletId".into(), s(&event.wallet_id));
        item.insert("eventId".into(), s(&event.event_id));
        item.insert("body".into(), s(&event.body));
        item.insert("keptAt".into(), s(rfc3339(event.kept_at)));
        item.insert("openPk".into(), s(OPEN_UNMAPPED));
        item.insert(
            "openSk".into(),
            s(format!(
                "{}#{}#{}",
                kept_sort_key(event.kept_at),
                event.wallet_id,
                event.event_id
            )),
        );
        item.insert(
            TTL_ATTRIBUTE.into(),
            n((event.kept_at + retain).unix_timestamp()),
        );
        // A repeat keeps the first copy: the event is the same.
        self.put_if_absent(item).await.map(|_| ())
    }

    /// The events kept for `wallet_id` (strongly consistent: read right after mapping it).
    pub async fn kept_events_of_wallet(
        &self,
        wallet_id: &str,
    ) -> Result<Vec<KeptEvent>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", s(format!("UNMAPPED#{wallet_id}")))
            .consistent_read(true);
        let query = item::with_sort_key_prefix(query, "pk = :pk", "sk", "EVENT#");
        self.query_all(query, None)
            .await?
            .iter()
            .map(kept_from_item)
            .collect()
    }

    /// Up to `limit` events kept at or after `since`, oldest first (the reconciler's sweep).
    pub async fn kept_events_since(
        &self,
        since: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<KeptEvent>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(crate::schema::OPEN_INDEX)
            .key_condition_expression("openPk = :pk AND openSk >= :since")
            .expression_attribute_values(":pk", s(OPEN_UNMAPPED))
            .expression_attribute_values(":since", s(kept_sort_key(since)))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        self.query_all(query, Some(limit))
            .await?
            .iter()
            .map(kept_from_item)
            .collect()
    }

    /// Forgets a kept event once it has been applied.
    pub async fn drop_kept_event(&self, wallet_id: &str, event_id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(kept_key(wallet_id, event_id)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::aws("DeleteItem", e))
    }
}
