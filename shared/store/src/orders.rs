//! Operator orders: scheduled transfers to an exchange, claimed by execution runs under a lease.

use aws_sdk_dynamodb::types::AttributeValue;
use domain::{Amount, ClientId, Network, OrderId, OrderState, StateMachine};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::destinations::{ADVANCE_ATTEMPTS, rfc3339};
use crate::item::{self, Item, epoch_millis, get_n, get_s, key, n, s};
use crate::open_requests::{OPEN_ORDERS, order_is_open};
use crate::schema::{DUE_INDEX, GSI1};
use crate::{Advance, Store, StoreError};

const ENTITY: &str = "order";
const DUE_PARTITION: &str = "DUE";

/// Where an order sends the client's funds. Both kinds go through the same execution (claim,
/// send with `externalId` = id, follow the transfer).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum OrderKind {
    /// The trading desk's order to an exchange the client authorized.
    #[default]
    Exchange,
    /// The client's own withdrawal to one of its approved destinations.
    Withdrawal,
}

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: OrderId,
    pub client_id: ClientId,
    /// Absent on orders stored before withdrawals existed: `Exchange`.
    #[serde(default)]
    pub kind: OrderKind,
    pub network: Network,
    /// Exchange (venue) name from the registry (empty for a withdrawal).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub exchange: String,
    /// A withdrawal's destination, canonical for its network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Asset symbol or token contract, as the exchange registry names it; for a withdrawal
    /// `native` or the token's contract.
    pub asset: String,
    pub amount: Amount,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "domain::schema::Rfc3339")]
    pub execute_at: OffsetDateTime,
    /// Operator who created it.
    pub created_by: String,
    pub state: OrderState,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "domain::schema::Rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "domain::schema::Rfc3339")]
    pub updated_at: OffsetDateTime,
    /// How many times an execution run has claimed it (more than 1 = a run died or timed out).
    #[serde(default)]
    pub claim_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_id: Option<String>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<domain::schema::Rfc3339>")]
    pub lease_expires_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    /// Why it failed, was rejected or was not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Four eyes: the order waits for a second operator's confirmation before it is due (an
    /// execution run will not claim it until `confirmedBy` is set).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub needs_confirmation: bool,
    /// The operator (not the creator) who confirmed an order that needed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_by: Option<String>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<domain::schema::Rfc3339>")]
    pub confirmed_at: Option<OffsetDateTime>,
}

/// Input to [`Store::create_order`]; the order starts `Scheduled`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrder {
    pub id: OrderId,
    pub client_id: ClientId,
    pub kind: OrderKind,
    pub network: Network,
    pub exchange: String,
    /// A withdrawal's destination (canonical).
    pub to: Option<String>,
    pub asset: String,
    pub amount: Amount,
    pub execute_at: OffsetDateTime,
    pub created_by: String,
    pub created_at: OffsetDateTime,
    /// Stored out of the due index until another operator confirms it
    /// ([`Store::confirm_order`]).
    pub needs_confirmation: bool,
}

/// Proof of holding an order's lease. Transitions out of `Claimed` made with it fail once another
/// run has re-claimed the order, so a run that overran its lease cannot clobber its successor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimToken(String);

impl ClaimToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An order this run now holds, until `order.lease_expires_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedOrder {
    pub order: Order,
    pub claim: ClaimToken,
}

/// Facts recorded together with a transition (each `None` leaves the stored value alone).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderChanges {
    pub transfer_id: Option<String>,
    pub approval_id: Option<String>,
    pub reason: Option<String>,
}

/// `gsi1sk` prefix of an order in its client's listing: the desk's orders and the client's
/// withdrawals are listed apart.
fn client_index_prefix(kind: OrderKind) -> &'static str {
    match kind {
        OrderKind::Exchange => "ORDER#",
        OrderKind::Withdrawal => "WITHDRAWAL#",
    }
}

fn order_key(id: &OrderId) -> Item {
    key(format!("ORDER#{id}"), "ORDER")
}

impl Store {
    /// Stores a new `Scheduled` order, due at `execute_at`. Same id twice → [`StoreError::Conflict`].
    pub async fn create_order(&self, new: &NewOrder) -> Result<Order, StoreError> {
        self.create_order_keyed(new, None).await
    }

    /// [`Store::create_order`], recording `idempotency` in the same transaction: when the key is
    /// already recorded nothing is created and the answer is a [`StoreError::Conflict`] on the
    /// idempotency key (ask [`Store::remembered`] what it created).
    pub async fn create_order_keyed(
        &self,
        new: &NewOrder,
        idempotency: Option<&crate::IdempotencyKey>,
    ) -> Result<Order, StoreError> {
        let record = Order {
            id: new.id,
            client_id: new.client_id.clone(),
            kind: new.kind,
            network: new.network,
            exchange: new.exchange.clone(),
            to: new.to.clone(),
            asset: new.asset.clone(),
            amount: new.amount,
            execute_at: new.execute_at,
            created_by: new.created_by.clone(),
            state: OrderState::Scheduled,
            created_at: new.created_at,
            updated_at: new.created_at,
            claim_count: 0,
            claim_id: None,
            lease_expires_at: None,
            transfer_id: None,
            approval_id: None,
            reason: None,
            needs_confirmation: new.needs_confirmation,
            confirmed_by: None,
            confirmed_at: None,
        };
        let key_text = new.id.to_string();
        let mut item = item::to_item(&record, ENTITY, &key_text)?;
        item.extend(order_key(&new.id));
        item.insert("gsi1pk".into(), s(item::client_pk(&new.client_id)));
        item.insert(
            "gsi1sk".into(),
            s(format!("{}{}", client_index_prefix(new.kind), new.id)),
        );
        // An order waiting for a second operator is out of the execution run's reach until
        // confirmed.
        if !new.needs_confirmation {
            item.insert("duePk".into(), s(DUE_PARTITION));
            item.insert("dueAt".into(), n(epoch_millis(new.execute_at)));
        }
        self.put_new(item, ENTITY, &key_text, idempotency, new.created_at)
            .await?;
        Ok(record)
    }

    /// Strongly consistent read by id.
    pub async fn get_order(&self, id: &OrderId) -> Result<Option<Order>, StoreError> {
        match self.get_raw(order_key(id)).await? {
            Some(found) => item::from_item(found, ENTITY, &id.to_string()).map(Some),
            None => Ok(None),
        }
    }

    /// The client's orders, oldest first (index read).
    pub async fn list_orders_for_client(
        &self,
        client: &ClientId,
    ) -> Result<Vec<Order>, StoreError> {
        let pk = item::client_pk(client);
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .expression_attribute_values(":pk", s(pk.clone()));
        let query = item::with_sort_key_prefix(query, "gsi1pk = :pk", "gsi1sk", "ORDER#");
        self.query_all(query, None)
            .await?
            .into_iter()
            .map(|i| item::from_item(i, ENTITY, &pk))
            .collect()
    }

    /// A page of the client's withdrawals, newest first: at most `limit`, strictly older than
    /// `before` when given (index read). Returns the page and whether older ones exist.
    pub async fn list_withdrawals_for_client(
        &self,
        client: &ClientId,
        before: Option<&OrderId>,
        limit: usize,
    ) -> Result<(Vec<Order>, bool), StoreError> {
        let pk = item::client_pk(client);
        let prefix = client_index_prefix(OrderKind::Withdrawal);
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .scan_index_forward(false)
            .expression_attribute_values(":pk", s(pk.clone()));
        query = match before {
            Some(before) => query
                .key_condition_expression("gsi1pk = :pk AND gsi1sk BETWEEN :low AND :high")
                .expression_attribute_values(":low", s(prefix))
                // Strictly before: ULIDs are fixed-length, so one less at the end is the bound.
                .expression_attribute_values(":high", s(format!("{prefix}{before}"))),
            None => item::with_sort_key_prefix(query, "gsi1pk = :pk", "gsi1sk", prefix),
        };
        // One more than the page says whether there is a next one (and `before` itself, which
        // the inclusive bound returns, is dropped).
        let wanted = limit + 1 + usize::from(before.is_some());
        let mut found: Vec<Order> = self
            .query_all(query, Some(wanted))
            .await?
            .into_iter()
            .map(|i| item::from_item(i, ENTITY, &pk))
            .collect::<Result<_, _>>()?;
        if let Some(before) = before {
            found.retain(|o| o.id != *before);
        }
        let more = found.len() > limit;
        found.truncate(limit);
        Ok((found, more))
    }

    /// Orders an execution run should try to claim at `now`: `Scheduled` ones whose time has
    /// come and `Claimed` ones whose lease has expired (their run died), earliest first, at most
    /// `limit`. An index read: callers must still claim each with [`Store::claim_order`].
    pub async fn list_due_orders(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Order>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("duePk = :due AND dueAt <= :now")
            .expression_attribute_values(":due", s(DUE_PARTITION))
            .expression_attribute_values(":now", n(epoch_millis(now)))
            .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000));
        self.query_all(query, Some(limit))
            .await?
            .into_iter()
            .map(|i| item::from_item(i, ENTITY, "due order"))
            .collect()
    }

    /// Takes the order for one execution run until `now + lease`. Succeeds only if the order is
    /// `Scheduled` and due, or `Claimed` with an expired lease; of concurrent claimers exactly one
    /// wins, the others get [`StoreError::ConditionFailed`].
    pub async fn claim_order(
        &self,
        id: &OrderId,
        now: OffsetDateTime,
        lease: time::Duration,
    ) -> Result<ClaimedOrder, StoreError> {
        let key_text = id.to_string();
        let token = ClaimToken(ulid::Ulid::new().to_string());
        let lease_end = now + lease;
        let update = self
            .client
            .update_item()
            .update_expression(
                "SET #state = :claimed, claimId = :token, dueAt = :leaseEndMs, \
                 leaseExpiresAt = :leaseEnd, updatedAt = :nowText ADD claimCount :one",
            )
            .condition_expression(
                "attribute_exists(pk) AND dueAt <= :nowMs AND (#state = :scheduled OR #state = :claimed) \
                 AND (attribute_not_exists(needsConfirmation) OR needsConfirmation = :false \
                 OR attribute_exists(confirmedBy))",
            )
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":claimed", s(OrderState::Claimed.as_str()))
            .expression_attribute_values(":scheduled", s(OrderState::Scheduled.as_str()))
            .expression_attribute_values(":token", s(token.as_str()))
            .expression_attribute_values(":leaseEndMs", n(epoch_millis(lease_end)))
            .expression_attribute_values(":leaseEnd", s(rfc3339(lease_end)))
            .expression_attribute_values(":nowText", s(rfc3339(now)))
            .expression_attribute_values(":nowMs", n(epoch_millis(now)))
            .expression_attribute_values(":one", n(1));
        match self.conditional_update(order_key(id), update).await {
            Ok(new) => Ok(ClaimedOrder {
                order: item::from_item(new, ENTITY, &key_text)?,
                claim: token,
            }),
            Err(refused) => Err(refused.into_error(ENTITY, &key_text, |current| {
                let state = get_s(current, "state").unwrap_or("none");
                match get_n::<i128>(current, "dueAt") {
                    Some(due) if state == OrderState::Claimed.as_str() => {
                        format!("claimed by another run; lease ends at {due} ms")
                    }
                    Some(due) => format!("not due until {due} ms"),
                    None => format!("in state {state}, not claimable"),
                }
            })),
        }
    }

    /// Four eyes: `operator`'s confirmation of a `Scheduled` order that needs one, which puts it
    /// in the due index at its `executeAt`. Refused ([`StoreError::ConditionFailed`]) when the
    /// order needs none, is already confirmed, is no longer `Scheduled`, or was created by
    /// `operator` (the creator can never be the second pair of eyes).
    pub async fn confirm_order(
        &self,
        id: &OrderId,
        operator: &str,
        execute_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Order, StoreError> {
        let key_text = id.to_string();
        let update = self
            .client
            .update_item()
            .update_expression(
                "SET confirmedBy = :operator, confirmedAt = :now, updatedAt = :now, \
                 duePk = :due, dueAt = :dueMs",
            )
            .condition_expression(
                "attribute_exists(pk) AND #state = :scheduled AND needsConfirmation = :true \
                 AND attribute_not_exists(confirmedBy) AND createdBy <> :operator",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":scheduled", s(OrderState::Scheduled.as_str()))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":operator", s(operator))
            .expression_attribute_values(":now", s(rfc3339(now)))
            .expression_attribute_values(":due", s(DUE_PARTITION))
            .expression_attribute_values(":dueMs", n(epoch_millis(execute_at)));
        match self.conditional_update(order_key(id), update).await {
            Ok(new) => item::from_item(new, ENTITY, &key_text),
            Err(refused) => Err(refused.into_error(ENTITY, &key_text, |current| {
                let state = get_s(current, "state").unwrap_or("none");
                match get_s(current, "confirmedBy") {
                    Some(by) => format!("already confirmed by {by}"),
                    None if state != OrderState::Scheduled.as_str() => {
                        format!("in state {state}, not confirmable")
                    }
                    None if get_s(current, "createdBy") == Some(operator) => {
                        "created by the same operator".to_owned()
                    }
                    None => "needs no confirmation".to_owned(),
                }
            })),
        }
    }

    /// Hands a claimed order back before its lease ends, due again at `due` (a run that could not
    /// send it now, e.g. Dfns throttled it). Only the holder of `claim` can; a later claim, or an
    /// order that moved on, is left alone ([`StoreError::ConditionFailed`]).
    pub async fn release_claim(
        &self,
        id: &OrderId,
        claim: &ClaimToken,
        due: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let key_text = id.to_string();
        let update = self
            .client
            .update_item()
            .update_expression("SET dueAt = :dueMs, leaseExpiresAt = :due, updatedAt = :due")
            .condition_expression("attribute_exists(pk) AND #state = :claimed AND claimId = :token")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":claimed", s(OrderState::Claimed.as_str()))
            .expression_attribute_values(":token", s(claim.as_str()))
            .expression_attribute_values(":dueMs", n(epoch_millis(due)))
            .expression_attribute_values(":due", s(rfc3339(due)));
        match self.conditional_update(order_key(id), update).await {
            Ok(_) => Ok(()),
            Err(refused) => Err(refused.into_error(ENTITY, &key_text, |_| {
                "no longer held under this claim".into()
            })),
        }
    }

    /// Moves the order from `expected` to `to` if it is still in `expected` (and, when `claim` is
    /// given, still held under that claim). Exactly one of concurrent callers wins; the others get
    /// [`StoreError::ConditionFailed`]. Claiming goes through [`Store::claim_order`], not here.
    pub async fn transition_order(
        &self,
        id: &OrderId,
        expected: OrderState,
        to: OrderState,
        changes: &OrderChanges,
        claim: Option<&ClaimToken>,
        now: OffsetDateTime,
    ) -> Result<Order, StoreError> {
        let key_text = id.to_string();
        // Cancelling a claimed order (it may be at Dfns) is the claim holder's alone, fenced by its
        // token below: a cancel that took the claim and asked Dfns first. (Transfer reports move a
        // claimed order forward without the claim: they only say what Dfns did.)
        let unfenced =
            expected == OrderState::Claimed && to == OrderState::Cancelled && claim.is_none();
        if !expected.can_transition_to(to) || to == OrderState::Claimed || unfenced {
            return Err(StoreError::IllegalTransition {
                entity: ENTITY,
                key: key_text,
                from: expected.to_string(),
                to: to.to_string(),
            });
        }
        let mut condition = String::from("attribute_exists(pk) AND #state = :expected");
        let mut update = self
            .client
            .update_item()
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":expected", s(expected.as_str()))
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":now", s(rfc3339(now)));
        if let Some(claim) = claim {
            condition.push_str(" AND claimId = :token");
            update = update.expression_attribute_values(":token", s(claim.as_str()));
        }
        let mut sets = vec!["#state = :to", "updatedAt = :now"];
        if let Some(transfer_id) = &changes.transfer_id {
            sets.push("transferId = :transfer");
            update = update.expression_attribute_values(":transfer", s(transfer_id));
        }
        if let Some(approval_id) = &changes.approval_id {
            sets.push("approvalId = :approval");
            update = update.expression_attribute_values(":approval", s(approval_id));
        }
        if let Some(reason) = &changes.reason {
            sets.push("reason = :reason");
            update = update.expression_attribute_values(":reason", s(reason));
        }
        // Every state reachable here is past the execution run's reach: leave the due index. A
        // transfer at Dfns and not final is in the open index (the in-flight refresh's list).
        let mut removes = vec!["duePk", "dueAt"];
        if order_is_open(to) {
            sets.extend(["openPk = :openPk", "openSk = :openSk"]);
            update = update
                .expression_attribute_values(":openPk", s(OPEN_ORDERS))
                .expression_attribute_values(":openSk", s(key_text.clone()));
        } else {
            removes.extend(["openPk", "openSk"]);
        }
        let update = update
            .update_expression(format!(
                "SET {} REMOVE {}",
                sets.join(", "),
                removes.join(", ")
            ))
            .condition_expression(condition);
        match self.conditional_update(order_key(id), update).await {
            Ok(new) => item::from_item(new, ENTITY, &key_text),
            Err(refused) => Err(refused.into_error(ENTITY, &key_text, |current| {
                let state = get_s(current, "state").unwrap_or("none");
                if state == expected.as_str() {
                    "claimed by another run".to_owned()
                } else {
                    format!("expected state {expected}, found {state}")
                }
            })),
        }
    }

    /// Applies a reported state (from a transfer webhook) only if it moves the order forward;
    /// late or repeated reports come back as [`Advance::Stale`] and change nothing.
    pub async fn advance_order(
        &self,
        id: &OrderId,
        to: OrderState,
        changes: &OrderChanges,
        now: OffsetDateTime,
    ) -> Result<Advance<Order>, StoreError> {
        for _ in 0..ADVANCE_ATTEMPTS {
            let current = self
                .get_order(id)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    entity: ENTITY,
                    key: id.to_string(),
                })?;
            if current.state.is_stale(to) {
                return Ok(Advance::Stale(current));
            }
            match self
                .transition_order(id, current.state, to, changes, None, now)
                .await
            {
                Ok(updated) => return Ok(Advance::Applied(updated)),
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Contention {
            operation: "advance order",
            attempts: ADVANCE_ATTEMPTS,
        })
    }
}
