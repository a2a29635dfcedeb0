//! Destination requests: a client's ask to add or remove a whitelisted address.

use domain::{
    ClientId, DestinationAction, DestinationRequestId, DestinationRequestState, NetworkAddress,
    StateMachine,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::item::{self, Item, UpdateRefused, client_pk, get_s, key, put_conditional_failed, s};
use crate::schema::{GSI1, GSI2};
use crate::{Advance, Store, StoreError};

const ENTITY: &str = "destination request";

/// A destination request as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
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
        let record = DestinationRequest {
            id: new.id,
            client_id: new.client_id.clone(),
            destination: new.destination.clone(),
            label: new.label.clone(),
            action: new.action,
            state: DestinationRequestState::Queued,
            created_at: new.created_at,
            updated_at: new.created_at,
            approval_id: None,
            change_request_id: None,
            reason: None,
        };
        let pk = client_pk(&new.client_id);
        let mut item = item::to_item(&record, ENTITY, &pk)?;
        item.extend(key(pk, request_sk(&new.id)));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(record),
            Err(e) if put_conditional_failed(&e) => Err(StoreError::Conflict {
                entity: ENTITY,
                key: new.id.to_string(),
            }),
            Err(e) => Err(StoreError::aws("PutItem", e)),
        }
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

    /// The client's requests, oldest first.
    pub async fn list_destination_requests(
        &self,
        client: &ClientId,
    ) -> Result<Vec<DestinationRequest>, StoreError> {
        let pk = client_pk(client);
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(pk.clone()))
            .expression_attribute_values(":prefix", s("DESTREQ#"))
            .consistent_read(true);
        self.query_all(query, None)
            .await?
            .into_iter()
            .map(|i: Item| item::from_item(i, ENTITY, &pk))
            .collect()
    }

    /// Moves the request from `expected` to `to` if, and only if, it is still in `expected`:
    /// of many concurrent callers exactly one succeeds, the others get
    /// [`StoreError::ConditionFailed`]. An illegal move is refused before any write.
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
        if !expected.can_transition_to(to) {
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
        let update = update.update_expression(format!("SET {}", sets.join(", ")));
        match self
            .conditional_update(key(client_pk(client), sk), update)
            .await
        {
            Ok(new) => item::from_item(new, ENTITY, &key_text),
            Err(UpdateRefused::Missing) => Err(StoreError::NotFound {
                entity: ENTITY,
                key: key_text,
            }),
            Err(UpdateRefused::Condition(current)) => Err(StoreError::ConditionFailed {
                entity: ENTITY,
                detail: format!(
                    "expected state {expected}, found {}",
                    get_s(&current, "state").unwrap_or("none")
                ),
                key: key_text,
            }),
            Err(UpdateRefused::Failed(e)) => Err(e),
        }
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
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", pk_attribute)
            .expression_attribute_names("#sk", pk_attribute.replace("pk", "sk"))
            .expression_attribute_values(":pk", s(value.clone()))
            .expression_attribute_values(":prefix", s("DESTREQ#"));
        match self.query_all(query, Some(1)).await?.into_iter().next() {
            Some(found) => item::from_item(found, ENTITY, &value).map(Some),
            None => Ok(None),
        }
    }
}

/// How often a forward-only apply re-reads after losing a race before giving up.
pub(crate) const ADVANCE_ATTEMPTS: u32 = 16;

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("an OffsetDateTime always formats as RFC 3339")
}
