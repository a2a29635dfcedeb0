//! Destination requests: a client's ask to add or remove a whitelisted address.
//!
//! Each request is counted in its client's open count while it is not final
//! ([`crate::open_requests::Admission`]): the create adds one in its own transaction, conditional
//! on the quota; the move to a final state subtracts it in the same transaction as the state
//! change. Items (client partition): the request `DESTREQ#<ulid>` (with `countedOpen` while
//! counted, `openPk`/`openSk` = `OPEN#DESTREQ` / `<clientId>#<ulid>` while open, and `usableFrom`
//! when it was created `CoolingOff`) and the count `QUOTA#OPEN_DESTREQ` (`openCount`).
//!
//! `usableFrom` is read into [`DestinationRequestView`] (the request as its client is shown it,
//! and as the reconciler takes it from the open index), not into [`DestinationRequest`].

use domain::{
    ClientId, DestinationAction, DestinationRequestId, DestinationRequestState, NetworkAddress,
    StateMachine,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::item::{self, Item, client_pk, get_s, key, n, s};
use crate::open_requests::{
    Admission, COUNTED, OPEN_COUNT, OPEN_COUNT_SK, OPEN_DESTINATION_REQUESTS,
    destination_open_sort_key, destination_request_is_open, open_attributes,
};
use crate::schema::{GSI1, GSI2};
use crate::{Advance, Store, StoreError};

const ENTITY: &str = "destination request";

/// A destination request as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRequest {
    pub id: DestinationRequestId,
    pub client_id: ClientId,
    /// Network and normalised address.
    #[serde(flatten)]
    pub destination: NetworkAddress,
    pub label: String,
    pub action: DestinationAction,
    pub state: DestinationRequestState,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "domain::schema::Rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "domain::schema::Rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Dfns approval deciding the policy change, once submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    /// Dfns change request holding the policy change, once submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_request_id: Option<String>,
    /// Why it failed or was rejected, for the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A client's request to add or remove a whitelisted destination: what it asks, where it stands
/// and, for a new destination that cools off first, when that wait ends (`usableFrom`).
// The stored request with the end of its cooling-off: what the destinations routes answer and what
// the reconciler reads from the open index. Derefs to the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "DestinationRequest")]
pub struct DestinationRequestView {
    #[serde(flatten)]
    pub request: DestinationRequest,
    /// For an `add` that waits a cooling-off: when the wait ends and the request may go to
    /// compliance (until then it is `CoolingOff` and its client may veto it). Absent when it did
    /// not wait (a removal never does).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<domain::schema::Rfc3339>")]
    pub usable_from: Option<OffsetDateTime>,
}

impl std::ops::Deref for DestinationRequestView {
    type Target = DestinationRequest;

    fn deref(&self) -> &DestinationRequest {
        &self.request
    }
}

/// Attribute of a request created `CoolingOff`: the end of its wait (RFC 3339).
const USABLE_FROM: &str = "usableFrom";

/// Input to [`Store::create_destination_request`]; the request starts `Queued`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDestinationRequest {
    pub id: DestinationRequestId,
    pub client_id: ClientId,
    pub destination: NetworkAddress,
    pub label: String,
    pub action: DestinationAction,
    pub created_at: OffsetDateTime,
}

/// Facts recorded together with a transition (each `None` leaves the stored value alone).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestChanges {
    pub approval_id: Option<String>,
    pub change_request_id: Option<String>,
    pub reason: Option<String>,
}

fn request_sk(id: &DestinationRequestId) -> String {
    format!("DESTREQ#{id}")
}

impl Store {
    /// Stores a new `Queued` request. A request with the same id is a [`StoreError::Conflict`].
    pub async fn create_destination_request(
        &self,
        new: &NewDestinationRequest,
    ) -> Result<DestinationRequest, StoreError> {
        self.create_destination_request_keyed(new, None).await
    }

    /// [`Store::create_destination_request`] recording `idempotency` in the same transaction (see
    /// [`crate::idempotency`]). Counted in the client's open requests, without a quota.
    pub async fn create_destination_request_keyed(
        &self,
        new: &NewDestinationRequest,
        idempotency: Option<&crate::IdempotencyKey>,
    ) -> Result<DestinationRequest, StoreError> {
        match self
            .create_destination_request_within(new, idempotency, None)
            .await?
        {
            Admission::Created(created) => Ok(*created),
            Admission::QuotaReached => Err(StoreError::ConditionFailed {
                entity: ENTITY,
                key: new.id.to_string(),
                detail: "open requests quota".into(),
            }),
        }
    }

    /// Stores a new `Queued` request and counts it in the client's open requests, in one
    /// transaction with `idempotency`'s record, unless the client already has `max_open` open
    /// ([`Admission::QuotaReached`]: nothing written). The count's update is conditional on the
    /// count itself, so concurrent creates cannot together pass `max_open`: of those racing for
    /// the last place one wins, the others are refused (or, when DynamoDB cancels them for
    /// conflicting with the winner, retried and then refused). A request with the same id is a
    /// [`StoreError::Conflict`]; an idempotency key already recorded is a `Conflict` on
    /// [`crate::idempotency::IDEMPOTENCY_ENTITY`] (ask [`Store::remembered`]).
    pub async fn create_destination_request_within(
        &self,
        new: &NewDestinationRequest,
        idempotency: Option<&crate::IdempotencyKey>,
        max_open: Option<u32>,
    ) -> Result<Admission, StoreError> {
        self.create_request(new, None, idempotency, max_open).await
    }

    /// [`Store::create_destination_request_within`] for a request that waits a cooling-off: stored
    /// `CoolingOff` with `usable_from`, the end of its wait (read back in
    /// [`DestinationRequestView`]). Counted in the client's open requests like any.
    pub async fn create_destination_request_cooling_off(
        &self,
        new: &NewDestinationRequest,
        usable_from: OffsetDateTime,
        idempotency: Option<&crate::IdempotencyKey>,
        max_open: Option<u32>,
    ) -> Result<Admission, StoreError> {
        self.create_request(new, Some(usable_from), idempotency, max_open)
            .await
    }

    async fn create_request(
        &self,
        new: &NewDestinationRequest,
        usable_from: Option<OffsetDateTime>,
        idempotency: Option<&crate::IdempotencyKey>,
        max_open: Option<u32>,
    ) -> Result<Admission, StoreError> {
        use aws_sdk_dynamodb::types::{TransactWriteItem, Update};

        let record = DestinationRequest {
            id: new.id,
            client_id: new.client_id.clone(),
            destination: new.destination.clone(),
            label: new.label.clone(),
            action: new.action,
            state: match usable_from {
                Some(_) => DestinationRequestState::CoolingOff,
                None => DestinationRequestState::Queued,
            },
            created_at: new.created_at,
            updated_at: new.created_at,
            approval_id: None,
            change_request_id: None,
            reason: None,
        };
        let pk = client_pk(&new.client_id);
        let mut item = item::to_item(&record, ENTITY, &pk)?;
        item.extend(key(pk.clone(), request_sk(&new.id)));
        item.extend(open_attributes(
            OPEN_DESTINATION_REQUESTS,
            destination_open_sort_key(&new.client_id, &new.id),
        ));
        item.insert(
            COUNTED.into(),
            aws_sdk_dynamodb::types::AttributeValue::Bool(true),
        );
        if let Some(usable_from) = usable_from {
            item.insert(USABLE_FROM.into(), s(rfc3339(usable_from)));
        }
        let key_text = new.id.to_string();
        let mut count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), OPEN_COUNT_SK)))
            .update_expression("SET #count = if_not_exists(#count, :zero) + :one")
            .expression_attribute_names("#count", OPEN_COUNT)
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1));
        if let Some(max) = max_open {
            count = count
                .condition_expression("attribute_not_exists(#count) OR #count < :max")
                .expression_attribute_values(":max", n(max));
        }
        let count = TransactWriteItem::builder()
            .update(count.build().map_err(crate::clients::builder_error)?)
            .build();
        for attempt in 0..CREATE_ATTEMPTS {
            let mut transaction = self
                .client
                .transact_write_items()
                .transact_items(self.create_if_absent(item.clone())?)
                .transact_items(count.clone());
            if let Some(k) = idempotency {
                transaction = transaction.transact_items(self.idempotency_record(
                    k,
                    &key_text,
                    new.created_at,
                )?);
            }
            let err = match transaction.send().await {
                Ok(_) => return Ok(Admission::Created(Box::new(record))),
                Err(err) => err,
            };
            let Some(codes) = item::cancellation_codes(&err) else {
                return Err(StoreError::aws("TransactWriteItems", err));
            };
            let code = |i: usize| codes.get(i).and_then(|c| c.as_deref());
            if code(2) == Some("ConditionalCheckFailed") {
                return Err(StoreError::Conflict {
                    entity: crate::idempotency::IDEMPOTENCY_ENTITY,
                    key: idempotency.map(|k| k.key.clone()).unwrap_or_default(),
                });
            }
            if code(0) == Some("ConditionalCheckFailed") {
                return Err(StoreError::Conflict {
                    entity: ENTITY,
                    key: key_text,
                });
            }
            if code(1) == Some("ConditionalCheckFailed") {
                return Ok(Admission::QuotaReached);
            }
            if !codes
                .iter()
                .any(|c| c.as_deref() == Some("TransactionConflict"))
            {
                return Err(StoreError::aws("TransactWriteItems", err));
            }
            // Another write to the client's count (a concurrent create or settlement) was in
            // progress: try again shortly.
            tokio::time::sleep(conflict_backoff(attempt)).await;
        }
        Err(StoreError::Contention {
            operation: "create destination request",
            attempts: CREATE_ATTEMPTS,
        })
    }

    /// The request, only if it belongs to `client` (another client's id is simply not found).
    pub async fn get_destination_request(
        &self,
        client: &ClientId,
        id: &DestinationRequestId,
    ) -> Result<Option<DestinationRequest>, StoreError> {
        match self.get_raw(key(client_pk(client), request_sk(id))).await? {
            Some(found) => item::from_item(found, ENTITY, &id.to_string()).map(Some),
            None => Ok(None),
        }
    }

    /// The request with the end of its cooling-off, only if it belongs to `client`.
    pub async fn get_destination_request_view(
        &self,
        client: &ClientId,
        id: &DestinationRequestId,
    ) -> Result<Option<DestinationRequestView>, StoreError> {
        match self.get_raw(key(client_pk(client), request_sk(id))).await? {
            Some(found) => item::from_item(found, ENTITY, &id.to_string()).map(Some),
            None => Ok(None),
        }
    }

    /// The client's requests, oldest first.
    pub async fn list_destination_requests(
        &self,
        client: &ClientId,
    ) -> Result<Vec<DestinationRequest>, StoreError> {
        self.list_requests_as(client).await
    }

    /// The client's requests with the end of each one's cooling-off, oldest first.
    pub async fn list_destination_request_views(
        &self,
        client: &ClientId,
    ) -> Result<Vec<DestinationRequestView>, StoreError> {
        self.list_requests_as(client).await
    }

    async fn list_requests_as<T: serde::de::DeserializeOwned>(
        &self,
        client: &ClientId,
    ) -> Result<Vec<T>, StoreError> {
        let pk = client_pk(client);
        self.query_client_prefix(client, "DESTREQ#")
            .await?
            .into_iter()
            .map(|i: Item| item::from_item(i, ENTITY, &pk))
            .collect()
    }

    /// Moves the request from `expected` to `to` if, and only if, it is still in `expected`:
    /// of many concurrent callers exactly one succeeds, the others get
    /// [`StoreError::ConditionFailed`]. An illegal move is refused before any write. A move from
    /// an open state to a final one takes the request out of its client's open count in the same
    /// transaction.
    pub async fn transition_destination_request(
        &self,
        client: &ClientId,
        id: &DestinationRequestId,
        expected: DestinationRequestState,
        to: DestinationRequestState,
        changes: &RequestChanges,
        now: OffsetDateTime,
    ) -> Result<DestinationRequest, StoreError> {
        let key_text = id.to_string();
        // Submission also takes the client's policy-change slot: only `submit_destination_request`.
        if !expected.can_transition_to(to) || to == DestinationRequestState::Submitted {
            return Err(StoreError::IllegalTransition {
                entity: ENTITY,
                key: key_text,
                from: expected.to_string(),
                to: to.to_string(),
            });
        }
        let sk = request_sk(id);
        let mut update = self
            .client
            .update_item()
            .condition_expression("attribute_exists(pk) AND #state = :expected")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":expected", s(expected.as_str()))
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":now", s(rfc3339(now)));
        let mut sets = vec!["#state = :to", "updatedAt = :now"];
        if let Some(approval_id) = &changes.approval_id {
            sets.extend(["approvalId = :approval", "gsi1pk = :gsi1pk", "gsi1sk = :sk"]);
            update = update
                .expression_attribute_values(":approval", s(approval_id))
                .expression_attribute_values(":gsi1pk", s(format!("APPROVAL#{approval_id}")));
        }
        if let Some(change_request_id) = &changes.change_request_id {
            sets.extend([
                "changeRequestId = :change",
                "gsi2pk = :gsi2pk",
                "gsi2sk = :sk",
            ]);
            update = update
                .expression_attribute_values(":change", s(change_request_id))
                .expression_attribute_values(":gsi2pk", s(format!("CHANGE#{change_request_id}")));
        }
        if changes.approval_id.is_some() || changes.change_request_id.is_some() {
            update = update.expression_attribute_values(":sk", s(sk.clone()));
        }
        if let Some(reason) = &changes.reason {
            sets.push("reason = :reason");
            update = update.expression_attribute_values(":reason", s(reason));
        }
        // A final request leaves the open index (the reconciler's work list).
        let removes: &[&str] = if destination_request_is_open(to) {
            &[]
        } else {
            &["openPk", "openSk"]
        };
        let expression = |also_remove: &[&str]| {
            let removed: Vec<&str> = removes.iter().chain(also_remove).copied().collect();
            match removed.is_empty() {
                true => format!("SET {}", sets.join(", ")),
                false => format!("SET {} REMOVE {}", sets.join(", "), removed.join(", ")),
            }
        };
        if destination_request_is_open(expected) && !destination_request_is_open(to) {
            let counted = self
                .settle_counted(client, &sk, update.clone(), &expression(&[COUNTED]))
                .await?;
            if counted {
                let updated = self
                    .get_destination_request(client, id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound {
                        entity: ENTITY,
                        key: key_text.clone(),
                    })?;
                if expected.holds_policy_slot() && !to.holds_policy_slot() {
                    self.release_policy_slot_after(client, id).await;
                }
                return Ok(updated);
            }
            // Not counted (stored before the count existed), or not in `expected`: the plain
            // update below applies the first and reports the second.
            update = update.condition_expression(format!(
                "attribute_exists(pk) AND #state = :expected AND attribute_not_exists({COUNTED})"
            ));
        }
        let update = update.update_expression(expression(&[]));
        match self
            .conditional_update(key(client_pk(client), sk), update)
            .await
        {
            Ok(new) => {
                let updated: DestinationRequest = item::from_item(new, ENTITY, &key_text)?;
                if expected.holds_policy_slot() && !to.holds_policy_slot() {
                    self.release_policy_slot_after(client, id).await;
                }
                Ok(updated)
            }
            Err(refused) => Err(refused.into_error(ENTITY, &key_text, |current| {
                format!(
                    "expected state {expected}, found {}",
                    get_s(current, "state").unwrap_or("none")
                )
            })),
        }
    }

    /// The move of a counted request to a final state, and `-1` on its client's open count, in one
    /// transaction. `update` carries the request's condition and values; `expression` its update.
    /// `Ok(false)` when the request is not counted or not in the expected state (nothing written).
    async fn settle_counted(
        &self,
        client: &ClientId,
        sk: &str,
        update: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
        expression: &str,
    ) -> Result<bool, StoreError> {
        use aws_sdk_dynamodb::types::{TransactWriteItem, Update};

        let pk = client_pk(client);
        let request = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), sk)))
            .update_expression(expression)
            .condition_expression(format!(
                "attribute_exists(pk) AND #state = :expected AND attribute_exists({COUNTED})"
            ))
            .set_expression_attribute_names(update.get_expression_attribute_names().clone())
            .set_expression_attribute_values(update.get_expression_attribute_values().clone())
            .build()
            .map_err(crate::clients::builder_error)?;
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, OPEN_COUNT_SK)))
            .update_expression("ADD #count :minus")
            .expression_attribute_names("#count", OPEN_COUNT)
            .expression_attribute_values(":minus", n(-1))
            .build()
            .map_err(crate::clients::builder_error)?;
        for attempt in 0..CREATE_ATTEMPTS {
            let result = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().update(request.clone()).build())
                .transact_items(TransactWriteItem::builder().update(count.clone()).build())
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(true),
                Err(err) => err,
            };
            let Some(codes) = item::cancellation_codes(&err) else {
                return Err(StoreError::aws("TransactWriteItems", err));
            };
            if codes.first().and_then(|c| c.as_deref()) == Some("ConditionalCheckFailed") {
                return Ok(false);
            }
            if !codes
                .iter()
                .any(|c| c.as_deref() == Some("TransactionConflict"))
            {
                return Err(StoreError::aws("TransactWriteItems", err));
            }
            tokio::time::sleep(conflict_backoff(attempt)).await;
        }
        Err(StoreError::Contention {
            operation: "settle destination request",
            attempts: CREATE_ATTEMPTS,
        })
    }

    /// Applies a reported state (e.g. from a webhook) only if it moves the request forward.
    /// Late or repeated reports come back as [`Advance::Stale`] and change nothing.
    pub async fn advance_destination_request(
        &self,
        client: &ClientId,
        id: &DestinationRequestId,
        to: DestinationRequestState,
        changes: &RequestChanges,
        now: OffsetDateTime,
    ) -> Result<Advance<DestinationRequest>, StoreError> {
        for _ in 0..ADVANCE_ATTEMPTS {
            let current = self
                .get_destination_request(client, id)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    entity: ENTITY,
                    key: id.to_string(),
                })?;
            if current.state.is_stale(to) {
                return Ok(Advance::Stale(current));
            }
            match self
                .transition_destination_request(client, id, current.state, to, changes, now)
                .await
            {
                Ok(updated) => return Ok(Advance::Applied(updated)),
                // Someone moved it meanwhile: look again.
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Contention {
            operation: "advance destination request",
            attempts: ADVANCE_ATTEMPTS,
        })
    }

    /// The request waiting on this Dfns approval (index read).
    pub async fn find_destination_request_by_approval_id(
        &self,
        approval_id: &str,
    ) -> Result<Option<DestinationRequest>, StoreError> {
        self.find_request(GSI1, "gsi1pk", format!("APPROVAL#{approval_id}"))
            .await
    }

    /// The request whose policy change is this Dfns change request (index read).
    pub async fn find_destination_request_by_change_request_id(
        &self,
        change_request_id: &str,
    ) -> Result<Option<DestinationRequest>, StoreError> {
        self.find_request(GSI2, "gsi2pk", format!("CHANGE#{change_request_id}"))
            .await
    }

    async fn find_request(
        &self,
        index: &str,
        pk_attribute: &str,
        value: String,
    ) -> Result<Option<DestinationRequest>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .expression_attribute_names("#pk", pk_attribute)
            .expression_attribute_names("#sk", pk_attribute.replace("pk", "sk"))
            .expression_attribute_values(":pk", s(value.clone()));
        let query = item::with_sort_key_prefix(query, "#pk = :pk", "#sk", "DESTREQ#");
        match self.query_all(query, Some(1)).await?.into_iter().next() {
            Some(found) => item::from_item(found, ENTITY, &value).map(Some),
            None => Ok(None),
        }
    }
}

/// States in which a request's change is at Dfns (or on its way there), holding the client's
/// policy-change slot.
trait HoldsPolicySlot {
    fn holds_policy_slot(self) -> bool;
}

impl HoldsPolicySlot for DestinationRequestState {
    fn holds_policy_slot(self) -> bool {
        matches!(
            self,
            DestinationRequestState::Submitted | DestinationRequestState::PendingApproval
        )
    }
}

const SLOT_SK: &str = "POLICY#CHANGE_SLOT";
const SUBMIT_ATTEMPTS: u32 = 8;

impl Store {
    /// The request currently holding the client's policy-change slot, if any.
    pub async fn policy_change_in_flight(
        &self,
        client: &ClientId,
    ) -> Result<Option<DestinationRequestId>, StoreError> {
        let Some(slot) = self.get_raw(key(client_pk(client), SLOT_SK)).await? else {
            return Ok(None);
        };
        let holder = get_s(&slot, "holder").unwrap_or_default();
        DestinationRequestId::parse(holder)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                entity: "policy change slot",
                key: client.to_string(),
                reason: e.to_string(),
            })
    }

    /// Moves a `Queued` request to `Submitted` and, in the same transaction, takes the client's
    /// policy-change slot, so at most one change per client is ever at Dfns: a whitelist update
    /// built from the stored list can then never overwrite another in-flight update.
    ///
    /// Fails with [`StoreError::ConditionFailed`] while another request of the client holds the
    /// slot (keep this one queued and submit it when that one resolves), or when the request is no
    /// longer `Queued`. A slot left behind by a request that has since reached a final state (its
    /// release was interrupted) is taken over. Moving a request out of `Submitted` or
    /// `PendingApproval` into a final state releases the slot.
    pub async fn submit_destination_request(
        &self,
        client: &ClientId,
        id: &DestinationRequestId,
        now: OffsetDateTime,
    ) -> Result<DestinationRequest, StoreError> {
        use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};

        let pk = client_pk(client);
        let key_text = id.to_string();
        for _ in 0..SUBMIT_ATTEMPTS {
            // Who holds the slot decides the condition our slot write carries.
            let (slot_condition, previous_holder) = match self
                .policy_change_in_flight(client)
                .await?
            {
                None => ("attribute_not_exists(pk)", None),
                Some(holder) if holder == *id => ("holder = :previous", Some(holder)),
                Some(holder) => {
                    let holder_state = self
                        .get_destination_request(client, &holder)
                        .await?
                        .map(|r| r.state);
                    if holder_state.is_some_and(|s| s.holds_policy_slot()) {
                        return Err(StoreError::ConditionFailed {
                            entity: ENTITY,
                            key: key_text,
                            detail: format!("request {holder} of this client is still in flight"),
                        });
                    }
                    ("holder = :previous", Some(holder))
                }
            };
            let mut slot_item: Item = key(pk.clone(), SLOT_SK);
            slot_item.insert("holder".into(), s(key_text.clone()));
            slot_item.insert("since".into(), s(rfc3339(now)));
            let mut take_slot = Put::builder()
                .table_name(&self.table)
                .set_item(Some(slot_item))
                .condition_expression(slot_condition);
            if let Some(previous) = previous_holder {
                take_slot =
                    take_slot.expression_attribute_values(":previous", s(previous.to_string()));
            }
            let submit = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(pk.clone(), request_sk(id))))
                .update_expression("SET #state = :to, updatedAt = :now")
                .condition_expression("attribute_exists(pk) AND #state = :expected")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(
                    ":expected",
                    s(DestinationRequestState::Queued.as_str()),
                )
                .expression_attribute_values(":to", s(DestinationRequestState::Submitted.as_str()))
                .expression_attribute_values(":now", s(rfc3339(now)));
            let result = self
                .client
                .transact_write_items()
                .transact_items(
                    TransactWriteItem::builder()
                        .update(submit.build().map_err(crate::clients::builder_error)?)
                        .build(),
                )
                .transact_items(
                    TransactWriteItem::builder()
                        .put(take_slot.build().map_err(crate::clients::builder_error)?)
                        .build(),
                )
                .send()
                .await;
            let err = match result {
                Ok(_) => {
                    return self
                        .get_destination_request(client, id)
                        .await?
                        .ok_or_else(|| StoreError::NotFound {
                            entity: ENTITY,
                            key: key_text.clone(),
                        });
                }
                Err(err) => err,
            };
            let Some(codes) = item::cancellation_codes(&err) else {
                return Err(StoreError::aws("TransactWriteItems", err));
            };
            let failed = |i: usize| codes.get(i).and_then(|c| c.as_deref());
            if failed(0) == Some("ConditionalCheckFailed") {
                return match self.get_destination_request(client, id).await? {
                    None => Err(StoreError::NotFound {
                        entity: ENTITY,
                        key: key_text,
                    }),
                    Some(current) => Err(StoreError::ConditionFailed {
                        entity: ENTITY,
                        key: key_text,
                        detail: format!("expected state Queued, found {}", current.state),
                    }),
                };
            }
            // The slot changed hands between our read and our write, or a concurrent transaction
            // touched the same items: look again.
            if !matches!(
                failed(1),
                Some("ConditionalCheckFailed" | "TransactionConflict")
            ) && failed(0) != Some("TransactionConflict")
            {
                return Err(StoreError::aws("TransactWriteItems", err));
            }
        }
        Err(StoreError::Contention {
            operation: "submit destination request",
            attempts: SUBMIT_ATTEMPTS,
        })
    }

    /// Releases the slot if `id` still holds it. Best effort: the transition that calls this has
    /// already happened, and a slot left behind is taken over by the next submission.
    async fn release_policy_slot_after(&self, client: &ClientId, id: &DestinationRequestId) {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(client_pk(client), SLOT_SK)))
            .condition_expression("holder = :id")
            .expression_attribute_values(":id", s(id.to_string()))
            .send()
            .await;
        if let Err(err) = result {
            let not_ours = err
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception());
            if !not_ours {
                tracing::warn!(client = %client, request = %id, error = %StoreError::aws("DeleteItem", err), "policy-change slot not released; the next submission takes it over");
            }
        }
    }
}

/// How often a forward-only apply re-reads after losing a race before giving up.
pub(crate) const ADVANCE_ATTEMPTS: u32 = 16;

/// How often a transaction on a client's open count is tried when DynamoDB cancels it for a
/// concurrent one (`TransactionConflict`).
const CREATE_ATTEMPTS: u32 = 10;

/// Full-jitter exponential backoff after a transaction conflict: up to 10, 20, 40 … 640 ms.
fn conflict_backoff(attempt: u32) -> std::time::Duration {
    use rand::Rng;
    let ceiling = 10u64 << attempt.min(6);
    std::time::Duration::from_millis(rand::thread_rng().gen_range(1..=ceiling))
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("an OffsetDateTime always formats as RFC 3339")
}
