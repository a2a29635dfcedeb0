//! Idempotency keys. A create that carries a client's `Idempotency-Key` writes, in the create's own
//! transaction, a record of the key (scoped to the caller and the route), the request's
//! fingerprint and the id of what it created. A retry with the same key finds the record and is
//! answered with that resource instead of creating another; the same key with another request is
//! refused. Records expire (DynamoDB TTL) after [`RETENTION`].
//!
//! Item: `pk = IDEMPOTENCY#<scope>`, `sk = KEY#<key>`.

use aws_sdk_dynamodb::types::TransactWriteItem;
use time::OffsetDateTime;

use crate::item::{self, Item, key, n, s};
use crate::schema::TTL_ATTRIBUTE;
use crate::{Store, StoreError};

/// The entity named by a [`StoreError::Conflict`] when a create's idempotency key is already
/// recorded.
pub const IDEMPOTENCY_ENTITY: &str = "idempotency key";
const ENTITY: &str = IDEMPOTENCY_ENTITY;

/// How long a key is remembered.
pub const RETENTION: time::Duration = time::Duration::hours(24);

/// A request's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// Whose key, on which route (`operator:desk-1:POST /v1/operator/orders`): one caller's key
    /// never answers another's request.
    pub scope: String,
    /// The `Idempotency-Key` header.
    pub key: String,
    /// A digest of the request (its canonical body).
    pub fingerprint: String,
}

/// What an earlier request with the same key did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remembered {
    /// Nothing: this key is new.
    Nothing,
    /// It created this resource (by id), from the same request.
    Created(String),
}

fn item_key(k: &IdempotencyKey) -> Item {
    key(format!("IDEMPOTENCY#{}", k.scope), format!("KEY#{}", k.key))
}

impl Store {
    /// The transaction item recording that `k` created `resource_id`: a put that fails when the
    /// key is already recorded (the transaction is then cancelled, nothing created).
    pub(crate) fn idempotency_record(
        &self,
        k: &IdempotencyKey,
        resource_id: &str,
        now: OffsetDateTime,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = item_key(k);
        item.insert("entity".into(), s(ENTITY));
        item.insert("fingerprint".into(), s(k.fingerprint.clone()));
        item.insert("resourceId".into(), s(resource_id));
        item.insert("createdAt".into(), n(now.unix_timestamp()));
        item.insert(TTL_ATTRIBUTE.into(), n((now + RETENTION).unix_timestamp()));
        self.create_if_absent(item)
    }

    /// Puts `item` (a new record under a key nobody holds: else [`StoreError::Conflict`] on
    /// `entity`) and, with `idempotency`, the key's record naming it, in one transaction. When the
    /// key is already recorded nothing is written and the answer is a [`StoreError::Conflict`] on
    /// [`IDEMPOTENCY_ENTITY`]: ask [`Store::remembered`] what the first request created.
    pub(crate) async fn put_new(
        &self,
        item: Item,
        entity: &'static str,
        resource_id: &str,
        idempotency: Option<&IdempotencyKey>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let Some(idempotency) = idempotency else {
            return match self.put_if_absent(item).await? {
                true => Ok(()),
                false => Err(StoreError::Conflict {
                    entity,
                    key: resource_id.to_owned(),
                }),
            };
        };
        let result = self
            .client
            .transact_write_items()
            .transact_items(self.create_if_absent(item)?)
            .transact_items(self.idempotency_record(idempotency, resource_id, now)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match item::cancellation_codes(&err) {
                Some(codes) if codes.get(1).is_some_and(Option::is_some) => {
                    Err(StoreError::Conflict {
                        entity: IDEMPOTENCY_ENTITY,
                        key: idempotency.key.clone(),
                    })
                }
                Some(_) => Err(StoreError::Conflict {
                    entity,
                    key: resource_id.to_owned(),
                }),
                None => Err(StoreError::aws("TransactWriteItems", err)),
            },
        }
    }

    /// What the request that first used `k` created. The same key with another fingerprint is a
    /// [`StoreError::IdempotencyKeyReused`].
    pub async fn remembered(&self, k: &IdempotencyKey) -> Result<Remembered, StoreError> {
        let Some(found) = self.get_raw(item_key(k)).await? else {
            return Ok(Remembered::Nothing);
        };
        let text = |name: &str| found.get(name).and_then(|v| v.as_s().ok()).cloned();
        if text("fingerprint").as_deref() != Some(k.fingerprint.as_str()) {
            return Err(StoreError::IdempotencyKeyReused { key: k.key.clone() });
        }
        text("resourceId")
            .map(Remembered::Created)
            .ok_or_else(|| StoreError::Corrupt {
                entity: ENTITY,
                key: k.key.clone(),
                reason: "no resourceId".into(),
            })
    }
}
