//! Trading authorizations (a client's consent that the trading desk may move funds to an
//! exchange) and the order queries the operator routes and the in-flight refresh need.
//!
//! | item | `pk` | `sk` |
//! |---|---|---|
//! | trading authorization | `CLIENT#<clientId>` | `TRADEAUTH#<ulid>` |
//! | current authorization per exchange (at most one) | `CLIENT#<clientId>` | `TRADEX#<exchange>` → `authorizationId` |
//!
//! The per-exchange marker makes "one live authorization per client and exchange" a conditional
//! write: creating puts the marker `attribute_not_exists` together with the record (one
//! transaction), revoking stamps the record and deletes the marker (one transaction, conditional on
//! the marker still naming this authorization). A revoked authorization stays readable forever.
//! The record carries a `version` so its destination list is updated optimistically.

use aws_sdk_dynamodb::types::{Delete, TransactWriteItem, Update};
use domain::{ClientId, DestinationRequestId, NetworkAddress, OrderState};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::clients::builder_error;
use crate::destinations::rfc3339;
use crate::item::{self, Item, cancellation_codes, client_pk, get_s, key, n, s};
use crate::{Order, Store, StoreError};

const ENTITY: &str = "trading authorization";

/// One exchange deposit address an authorization whitelists, and the destination requests that
/// add it (and, after revocation, remove it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizedDestination {
    #[serde(flatten)]
    pub destination: NetworkAddress,
    /// The `add` destination request, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_request_id: Option<DestinationRequestId>,
    /// The `remove` destination request, once revoked and created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_request_id: Option<DestinationRequestId>,
}

/// A client's authorization for one exchange, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TradingAuthorization {
    #[schemars(with = "domain::schema::UlidText")]
    pub id: ulid::Ulid,
    pub client_id: ClientId,
    /// Exchange name, as the registry names it.
    pub exchange: String,
    pub destinations: Vec<AuthorizedDestination>,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "domain::schema::Rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "domain::schema::Rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<domain::schema::Rfc3339>")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Bumped by every write; guards [`Store::update_trading_authorization_destinations`].
    #[serde(default)]
    pub version: u64,
}

impl TradingAuthorization {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
}

/// Input to [`Store::create_trading_authorization`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewTradingAuthorization {
    pub id: ulid::Ulid,
    pub client_id: ClientId,
    pub exchange: String,
    pub destinations: Vec<NetworkAddress>,
    pub created_at: OffsetDateTime,
}

fn record_sk(id: &ulid::Ulid) -> String {
    format!("TRADEAUTH#{id}")
}

fn marker_sk(exchange: &str) -> String {
    format!("TRADEX#{exchange}")
}

fn check_exchange_name(exchange: &str) -> Result<(), StoreError> {
    let ok = !exchange.is_empty()
        && exchange.len() <= 64
        && exchange
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidInput {
            reason: format!("exchange name `{exchange}` must be 1..=64 of [A-Za-z0-9_-]"),
        })
    }
}

impl Store {
    /// Stores a new authorization and makes it the client's current one for its exchange. If the
    /// client already has a live (not revoked) authorization for that exchange →
    /// [`StoreError::Conflict`] keyed by the exchange.
    pub async fn create_trading_authorization(
        &self,
        new: &NewTradingAuthorization,
    ) -> Result<TradingAuthorization, StoreError> {
        self.create_trading_authorization_keyed(new, None).await
    }

    /// [`Store::create_trading_authorization`] recording `idempotency` in the same transaction
    /// (see [`crate::idempotency`]).
    pub async fn create_trading_authorization_keyed(
        &self,
        new: &NewTradingAuthorization,
        idempotency: Option<&crate::IdempotencyKey>,
    ) -> Result<TradingAuthorization, StoreError> {
        check_exchange_name(&new.exchange)?;
        let record = TradingAuthorization {
            id: new.id,
            client_id: new.client_id.clone(),
            exchange: new.exchange.clone(),
            destinations: new
                .destinations
                .iter()
                .map(|d| AuthorizedDestination {
                    destination: d.clone(),
                    add_request_id: None,
                    remove_request_id: None,
                })
                .collect(),
            created_at: new.created_at,
            updated_at: new.created_at,
            revoked_at: None,
            version: 1,
        };
        let pk = client_pk(&new.client_id);
        let mut record_item = item::to_item(&record, ENTITY, &pk)?;
        record_item.extend(key(pk.clone(), record_sk(&new.id)));
        let mut marker: Item = key(pk.clone(), marker_sk(&new.exchange));
        marker.insert("authorizationId".into(), s(new.id.to_string()));
        let mut transaction = self
            .client
            .transact_write_items()
            .transact_items(self.create_if_absent(marker)?)
            .transact_items(self.create_if_absent(record_item)?);
        if let Some(idempotency) = idempotency {
            transaction = transaction.transact_items(self.idempotency_record(
                idempotency,
                &new.id.to_string(),
                new.created_at,
            )?);
        }
        match transaction.send().await {
            Ok(_) => Ok(record),
            Err(err) => match cancellation_codes(&err) {
                Some(codes)
                    if idempotency.is_some() && codes.get(2).is_some_and(Option::is_some) =>
                {
                    Err(StoreError::Conflict {
                        entity: crate::idempotency::IDEMPOTENCY_ENTITY,
                        key: idempotency.map(|k| k.key.clone()).unwrap_or_default(),
                    })
                }
                Some(codes)
                    if codes
                        .iter()
                        .flatten()
                        .any(|c| c == "ConditionalCheckFailed") =>
                {
                    Err(StoreError::Conflict {
                        entity: ENTITY,
                        key: new.exchange.clone(),
                    })
                }
                _ => Err(StoreError::aws("TransactWriteItems", err)),
            },
        }
    }

    /// The authorization, only if it belongs to `client`.
    pub async fn get_trading_authorization(
        &self,
        client: &ClientId,
        id: &ulid::Ulid,
    ) -> Result<Option<TradingAuthorization>, StoreError> {
        match self.get_raw(key(client_pk(client), record_sk(id))).await? {
            Some(found) => item::from_item(found, ENTITY, &id.to_string()).map(Some),
            None => Ok(None),
        }
    }

    /// The client's live (not revoked) authorization for `exchange`, if any. Strongly consistent:
    /// a revocation is seen by the next read.
    pub async fn current_trading_authorization(
        &self,
        client: &ClientId,
        exchange: &str,
    ) -> Result<Option<TradingAuthorization>, StoreError> {
        check_exchange_name(exchange)?;
        let Some(marker) = self
            .get_raw(key(client_pk(client), marker_sk(exchange)))
            .await?
        else {
            return Ok(None);
        };
        let id = get_s(&marker, "authorizationId")
            .and_then(|raw| ulid::Ulid::from_string(raw).ok())
            .ok_or_else(|| StoreError::Corrupt {
                entity: "trading authorization marker",
                key: format!("{client}/{exchange}"),
                reason: "missing or malformed authorizationId".into(),
            })?;
        Ok(self
            .get_trading_authorization(client, &id)
            .await?
            .filter(|a| !a.is_revoked()))
    }

    /// The client's authorizations, revoked ones included, oldest first.
    pub async fn list_trading_authorizations(
        &self,
        client: &ClientId,
    ) -> Result<Vec<TradingAuthorization>, StoreError> {
        let pk = client_pk(client);
        self.query_client_prefix(client, "TRADEAUTH#")
            .await?
            .into_iter()
            .map(|i| item::from_item(i, ENTITY, &pk))
            .collect()
    }

    /// Replaces the destination list if the record is still at `expected_version` (optimistic:
    /// a concurrent writer makes this [`StoreError::ConditionFailed`]; re-read and retry).
    pub async fn update_trading_authorization_destinations(
        &self,
        client: &ClientId,
        id: &ulid::Ulid,
        expected_version: u64,
        destinations: &[AuthorizedDestination],
        now: OffsetDateTime,
    ) -> Result<TradingAuthorization, StoreError> {
        let key_text = id.to_string();
        let list =
            serde_dynamo::to_attribute_value(destinations).map_err(|e| StoreError::Corrupt {
                entity: ENTITY,
                key: key_text.clone(),
                reason: e.to_string(),
            })?;
        let update = self
            .client
            .update_item()
            .update_expression("SET destinations = :list, updatedAt = :now, version = :next")
            .condition_expression("attribute_exists(pk) AND version = :expected")
            .expression_attribute_values(":list", list)
            .expression_attribute_values(":now", s(rfc3339(now)))
            .expression_attribute_values(":expected", n(expected_version))
            .expression_attribute_values(":next", n(expected_version + 1));
        match self
            .conditional_update(key(client_pk(client), record_sk(id)), update)
            .await
        {
            Ok(new) => item::from_item(new, ENTITY, &key_text),
            Err(refused) => Err(refused.into_error(ENTITY, &key_text, |_| {
                format!("changed since version {expected_version}")
            })),
        }
    }

    /// Revokes the authorization: stamps `revokedAt` and removes it as the exchange's current one,
    /// in one transaction. Already revoked → [`StoreError::ConditionFailed`]; unknown →
    /// [`StoreError::NotFound`].
    pub async fn revoke_trading_authorization(
        &self,
        client: &ClientId,
        id: &ulid::Ulid,
        now: OffsetDateTime,
    ) -> Result<TradingAuthorization, StoreError> {
        let key_text = id.to_string();
        let current = self
            .get_trading_authorization(client, id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                entity: ENTITY,
                key: key_text.clone(),
            })?;
        if current.is_revoked() {
            return Err(StoreError::ConditionFailed {
                entity: ENTITY,
                key: key_text,
                detail: "already revoked".into(),
            });
        }
        let pk = client_pk(client);
        let stamp = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), record_sk(id))))
            .update_expression("SET revokedAt = :now, updatedAt = :now, version = version + :one")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(revokedAt)")
            .expression_attribute_values(":now", s(rfc3339(now)))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(builder_error)?;
        let unmark = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, marker_sk(&current.exchange))))
            .condition_expression("attribute_not_exists(pk) OR authorizationId = :id")
            .expression_attribute_values(":id", s(key_text.clone()))
            .build()
            .map_err(builder_error)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(stamp).build())
            .transact_items(TransactWriteItem::builder().delete(unmark).build())
            .send()
            .await;
        match result {
            Ok(_) => self
                .get_trading_authorization(client, id)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    entity: ENTITY,
                    key: key_text,
                }),
            Err(err) => match cancellation_codes(&err) {
                Some(codes)
                    if codes
                        .iter()
                        .flatten()
                        .any(|c| c == "ConditionalCheckFailed") =>
                {
                    Err(StoreError::ConditionFailed {
                        entity: ENTITY,
                        key: key_text,
                        detail: "revoked meanwhile".into(),
                    })
                }
                _ => Err(StoreError::aws("TransactWriteItems", err)),
            },
        }
    }

    /// Every order, optionally only those in `state`: a filtered `Scan` (operators' list without a
    /// client; fine at our size, an index on state is the next step if it is not).
    pub async fn scan_orders(&self, state: Option<OrderState>) -> Result<Vec<Order>, StoreError> {
        self.scan_orders_where(state.map(|s| vec![s]).unwrap_or_default())
            .await
    }

    async fn scan_orders_where(&self, states: Vec<OrderState>) -> Result<Vec<Order>, StoreError> {
        let mut filter = String::from("begins_with(pk, :prefix) AND sk = :sk");
        let mut names = std::collections::HashMap::new();
        let mut values = std::collections::HashMap::from([
            (":prefix".to_owned(), s("ORDER#")),
            (":sk".to_owned(), s("ORDER")),
        ]);
        if !states.is_empty() {
            let placeholders: Vec<String> = (0..states.len()).map(|i| format!(":s{i}")).collect();
            filter.push_str(&format!(" AND #state IN ({})", placeholders.join(", ")));
            names.insert("#state".to_owned(), "state".to_owned());
            for (placeholder, state) in placeholders.iter().zip(&states) {
                values.insert(placeholder.clone(), s(state.as_str()));
            }
        }
        let mut found = Vec::new();
        let mut start_key = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(filter.clone())
                .set_expression_attribute_names((!names.is_empty()).then(|| names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| StoreError::aws("Scan", e))?;
            for found_item in page.items.unwrap_or_default() {
                found.push(item::from_item(found_item, "order", "scan")?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start_key = Some(k),
                _ => return Ok(found),
            }
        }
    }
}
