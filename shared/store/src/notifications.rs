//! Client notifications: what the platform told a client (a destination request resolved, a
//! deposit landed), newest first.
//!
//! Items (in the client's partition):
//!
//! | item | `sk` |
//! |---|---|
//! | notification | `NOTIF#<ulid>` (time-ordered, so a reverse query is newest first) |
//! | de-duplication key | `NOTIFKEY#<dedup key>` → the notification's ulid |
//!
//! [`Store::append_notification`] writes both in one transaction, the key conditional on being
//! absent, so the same business event (the same webhook delivered twice, or a webhook and the
//! reconciler) yields one notification. `published` records whether it reached the event bus, so a
//! caller whose publish failed can publish it again on the next attempt (at least once).

use aws_sdk_dynamodb::types::AttributeValue;
use domain::ClientId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::destinations::rfc3339;
use crate::item::{self, Item, cancellation_codes, client_pk, get_s, key, s};
use crate::{Store, StoreError};

const ENTITY: &str = "notification";
const PREFIX: &str = "NOTIF#";
const KEY_PREFIX: &str = "NOTIFKEY#";
/// Longest accepted de-duplication key.
pub const MAX_DEDUP_KEY_LEN: usize = 512;

/// One notification as stored and listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// ULID: time-ordered.
    pub id: String,
    pub client_id: ClientId,
    /// What happened, dotted (`destination_request.approved`, `deposit.received`, …).
    pub kind: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "domain::schema::Rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// Kind-specific facts (ids, addresses, amounts as strings).
    pub detail: serde_json::Value,
    /// Whether it was published to the event bus.
    pub published: bool,
}

/// A notification to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    pub client_id: ClientId,
    /// Identifies the business event (e.g. `destination-request:<id>:Approved`); a second append
    /// with the same key changes nothing.
    pub dedup_key: String,
    pub kind: String,
    pub occurred_at: OffsetDateTime,
    pub detail: serde_json::Value,
}

/// Outcome of [`Store::append_notification`].
#[derive(Debug, Clone, PartialEq)]
pub enum NotificationAppend {
    /// Stored now.
    Created(Notification),
    /// Stored before (by this key); the stored one.
    Existing(Notification),
}

impl NotificationAppend {
    pub fn notification(&self) -> &Notification {
        match self {
            NotificationAppend::Created(n) | NotificationAppend::Existing(n) => n,
        }
    }
}

/// One page of a client's notifications.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    /// Pass back as `before` for the next (older) page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Whether `text` is a notification id as [`Store::append_notification`] writes them: a ULID in
/// its canonical form (26 characters of Crockford base32, upper case, the first at most `7`).
/// Only such ids sort in time order among the sort keys.
pub fn is_notification_id(text: &str) -> bool {
    let crockford = |b: &u8| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"ILOU".contains(b));
    let bytes = text.as_bytes();
    bytes.len() == 26 && (b'0'..=b'7').contains(&bytes[0]) && bytes.iter().all(crockford)
}

/// Ids order the list; ULIDs minted in the same millisecond are ordered randomly, so this
/// process mints them monotonically.
fn next_id() -> ulid::Ulid {
    static GENERATOR: std::sync::Mutex<Option<ulid::Generator>> = std::sync::Mutex::new(None);
    let mut generator = GENERATOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    generator
        .get_or_insert_with(ulid::Generator::new)
        .generate()
        .unwrap_or_else(|_| ulid::Ulid::new())
}

fn to_item(notification: &Notification) -> Result<Item, StoreError> {
    let pk = client_pk(&notification.client_id);
    let mut item = key(pk, format!("{PREFIX}{}", notification.id));
    item.insert("id".into(), s(&notification.id));
    item.insert("clientId".into(), s(notification.client_id.as_str()));
    item.insert("kind".into(), s(&notification.kind));
    item.insert("occurredAt".into(), s(rfc3339(notification.occurred_at)));
    // JSON text: the detail's shape is the producer's business, not the table's.
    item.insert(
        "detail".into(),
        s(
            serde_json::to_string(&notification.detail).map_err(|e| StoreError::Corrupt {
                entity: ENTITY,
                key: notification.id.clone(),
                reason: e.to_string(),
            })?,
        ),
    );
    item.insert(
        "published".into(),
        AttributeValue::Bool(notification.published),
    );
    Ok(item)
}

fn from_item(item: &Item) -> Result<Notification, StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        entity: ENTITY,
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
    /// Appends a notification unless one with the same `dedup_key` exists for the client.
    pub async fn append_notification(
        &self,
        new: &NewNotification,
    ) -> Result<NotificationAppend, StoreError> {
        if new.dedup_key.is_empty() || new.dedup_key.len() > MAX_DEDUP_KEY_LEN {
            return Err(StoreError::Corrupt {
                entity: ENTITY,
                key: new.dedup_key.clone(),
                reason: format!("dedup key must be 1..={MAX_DEDUP_KEY_LEN} bytes"),
            });
        }
        let pk = client_pk(&new.client_id);
        let key_sk = format!("{KEY_PREFIX}{}", new.dedup_key);
        let notification = Notification {
            id: next_id().to_string(),
            client_id: new.client_id.clone(),
            kind: new.kind.clone(),
            occurred_at: new.occurred_at,
            detail: new.detail.clone(),
            published: false,
        };
        let mut key_item = key(pk.clone(), key_sk.clone());
        key_item.insert("notificationId".into(), s(&notification.id));
        let result = self
            .client
            .transact_write_items()
            .transact_items(self.create_if_absent(key_item)?)
            .transact_items(self.create_if_absent(to_item(&notification)?)?)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(NotificationAppend::Created(notification)),
            Err(err) => err,
        };
        let duplicate = cancellation_codes(&err).is_some_and(|codes| {
            codes.first().and_then(|c| c.as_deref()) == Some("ConditionalCheckFailed")
        });
        if !duplicate {
            return Err(StoreError::aws("TransactWriteItems", err));
        }
        let existing_id = self
            .get_raw(key(pk.clone(), key_sk))
            .await?
            .and_then(|i| get_s(&i, "notificationId").map(str::to_owned))
            .ok_or_else(|| StoreError::Corrupt {
                entity: ENTITY,
                key: new.dedup_key.clone(),
                reason: "dedup key without notification id".into(),
            })?;
        let existing = self
            .get_raw(key(pk, format!("{PREFIX}{existing_id}")))
            .await?
            .ok_or_else(|| StoreError::NotFound {
                entity: ENTITY,
                key: existing_id.clone(),
            })?;
        Ok(NotificationAppend::Existing(from_item(&existing)?))
    }

    /// Records that the notification reached the event bus.
    pub async fn mark_notification_published(
        &self,
        client: &ClientId,
        notification_id: &str,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                client_pk(client),
                format!("{PREFIX}{notification_id}"),
            )))
            .update_expression("SET published = :true")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::aws("UpdateItem", e))
    }

    /// The client's notifications, newest first: at most `limit` (1..=100), older than the
    /// notification `before` when given (the previous page's `next_cursor`). A `before` that is
    /// not a notification id as this store writes them ([`is_notification_id`]) is
    /// [`StoreError::InvalidInput`]: the range is a comparison of sort keys, so another spelling of
    /// an id (lower case, say) would silently select another page.
    pub async fn list_notifications(
        &self,
        client: &ClientId,
        limit: usize,
        before: Option<&str>,
    ) -> Result<NotificationPage, StoreError> {
        if let Some(before) = before.filter(|b| !is_notification_id(b)) {
            return Err(StoreError::InvalidInput {
                reason: format!(
                    "notification cursor `{}` is not a notification id",
                    before.chars().take(40).collect::<String>()
                ),
            });
        }
        let limit = limit.clamp(1, 100);
        let pk = client_pk(client);
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", s(pk))
            .scan_index_forward(false)
            .consistent_read(true);
        // Older than the cursor: sort keys from the prefix up to the cursor's (inclusive, so the
        // cursor's own item is dropped below). `NOTIFKEY#…` sorts above `NOTIF#…`: never in range.
        let query = match before {
            None => item::with_sort_key_prefix(query, "pk = :pk", "sk", PREFIX),
            Some(before) => query
                .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
                .expression_attribute_values(":low", s(PREFIX))
                .expression_attribute_values(":high", s(format!("{PREFIX}{before}"))),
        };
        let query = query.limit(limit as i32 + 2);
        let mut items = self
            .query_all(query, Some(limit + 2))
            .await?
            .iter()
            .map(from_item)
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(before) = before {
            items.retain(|n| n.id != before);
        }
        let more = items.len() > limit;
        items.truncate(limit);
        let next_cursor = if more {
            items.last().map(|n| n.id.clone())
        } else {
            None
        };
        Ok(NotificationPage { items, next_cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_ids_are_canonical_ulids() {
        let id = next_id().to_string();
        assert!(is_notification_id(&id));
        assert!(is_notification_id("7ZZZZZZZZZZZZZZZZZZZZZZZZZ"));
        for bad in [
            id.to_lowercase(),                   // wrong case
            id[..25].to_owned(),                 // too short
            format!("{id}0"),                    // too long
            "8ZZZZZZZZZZZZZZZZZZZZZZZZZ".into(), // over 128 bits
            "01ARZ3NDEKTSV4RRFFQ69G5FAI".into(), // I is not Crockford
            "01ARZ3NDEKTSV4RRFFQ69G5FA-".into(), // wrong alphabet
            String::new(),
        ] {
            assert!(!is_notification_id(&bad), "{bad:?}");
        }
    }

    /// A store whose client goes nowhere: a refusal before any request is all these can see.
    fn unreachable_store() -> Store {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .build();
        Store::new(aws_sdk_dynamodb::Client::from_conf(config), "nowhere")
    }

    #[tokio::test]
    async fn a_cursor_that_is_not_a_notification_id_is_refused_before_any_read() {
        let store = unreachable_store();
        let client = ClientId::parse("alice").unwrap();
        let id = next_id().to_string();
        for bad in [id.to_lowercase(), id[..25].to_owned(), "not-a-ulid".into()] {
            let refused = store.list_notifications(&client, 10, Some(&bad)).await;
            assert!(
                matches!(refused, Err(StoreError::InvalidInput { .. })),
                "{bad:?}: {refused:?}"
            );
        }
        // A well-formed cursor gets as far as the (unreachable) table.
        let read = store.list_notifications(&client, 10, Some(&id)).await;
        assert!(
            !matches!(read, Err(StoreError::InvalidInput { .. })),
            "{read:?}"
        );
    }
}
