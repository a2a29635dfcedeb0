//! Paging a client's notifications from a cursor, newest first.
//!
//! [`Store::list_notifications`] loses its `before` cursor: `query_all` sets the query's
//! exclusive start key itself (to `None` on the first call), so every page starts at the newest
//! notification. This reads the same items with the cursor honoured.

use domain::ClientId;
use time::OffsetDateTime;

use crate::item::{Item, client_pk, get_s, key, s};
use crate::notifications::{Notification, NotificationPage};
use crate::{Store, StoreError};

const PREFIX: &str = "NOTIF#";

fn parse(item: &Item) -> Result<Notification, StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        entity: "notification",
        key: get_s(item, "sk").unwrap_or("?").to_owned(),
        reason: reason.to_owned(),
    };
    let text = |name: &str| get_s(item, name).ok_or_else(|| corrupt(name));
    Ok(Notification {
        id: text("id")?.to_owned(),
        client_id: ClientId::parse(text("clientId")?).map_err(|_| corrupt("clientId"))?,
        kind: text("kind")?.to_owned(),
        occurred_at: OffsetDateTime::parse(
            text("occurredAt")?,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|_| corrupt("occurredAt"))?,
        detail: serde_json::from_str(text("detail")?).map_err(|_| corrupt("detail"))?,
        published: item
            .get("published")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
    })
}

impl Store {
    /// The client's notifications, newest first: at most `limit` (1..=100), strictly older than
    /// the notification `before` when given (the previous page's `next_cursor`).
    pub async fn notifications_page(
        &self,
        client: &ClientId,
        limit: usize,
        before: Option<&str>,
    ) -> Result<NotificationPage, StoreError> {
        let limit = limit.clamp(1, 100);
        let pk = client_pk(client);
        let mut start = before.map(|b| key(pk.clone(), format!("{PREFIX}{b}")));
        let mut items: Vec<Item> = Vec::new();
        // One more than asked tells whether another page exists.
        while items.len() <= limit {
            let wanted = i32::try_from(limit + 1 - items.len()).unwrap_or(i32::MAX);
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":prefix", s(PREFIX))
                .scan_index_forward(false)
                .consistent_read(true)
                .limit(wanted)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreError::aws("Query", e))?;
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        let more = items.len() > limit;
        items.truncate(limit);
        let items = items.iter().map(parse).collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if more {
            items.last().map(|n| n.id.clone())
        } else {
            None
        };
        Ok(NotificationPage { items, next_cursor })
    }
}
