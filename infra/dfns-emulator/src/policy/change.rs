//! `Policies:Modify` change requests (docs/dfns.md §4.8): an update or archive held for approval.
//! The policy keeps its configuration and shows `pendingChangeRequest` until the approval
//! resolves: `Approved` → the proposal is applied (`Applied`); `Denied` / `Expired` → `Rejected`,
//! nothing changes. An archive is an `Update` whose body has `status: "Archived"` (U8).

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::model::{PolicySpec, PolicyStatus, policy_json};
use crate::clock::iso;
use crate::ids;
use crate::state::State;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeStatus {
    Pending,
    Applied,
    Rejected,
    Failed,
}

impl ChangeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Applied => "Applied",
            Self::Rejected => "Rejected",
            Self::Failed => "Failed",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ChangeRequest {
    pub id: String,
    pub requester_user_id: String,
    pub requester_token_id: Option<String>,
    /// The policy being changed.
    pub entity_id: String,
    pub approval_id: Option<String>,
    pub status: ChangeStatus,
    pub date_created: OffsetDateTime,
    pub date_resolved: Option<OffsetDateTime>,
    /// The proposed configuration and status (`Archived` for an archive).
    pub proposed: PolicySpec,
    pub proposed_status: PolicyStatus,
    /// Dates of the policy when the change was requested (for the proposed body).
    pub policy_created: OffsetDateTime,
    pub policy_updated: OffsetDateTime,
}

impl ChangeRequest {
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), json!(self.id));
        let mut requester = json!({ "userId": self.requester_user_id });
        if let Some(token_id) = &self.requester_token_id {
            requester["tokenId"] = json!(token_id);
        }
        out.insert("requester".into(), requester);
        out.insert("kind".into(), json!("Policy"));
        out.insert("operationKind".into(), json!("Update"));
        out.insert("status".into(), json!(self.status.as_str()));
        out.insert("entityId".into(), json!(self.entity_id));
        out.insert("dateCreated".into(), json!(iso(self.date_created)));
        if let Some(resolved) = self.date_resolved {
            out.insert("dateResolved".into(), json!(iso(resolved)));
        }
        if let Some(approval_id) = &self.approval_id {
            out.insert("approvalId".into(), json!(approval_id));
        }
        out.insert(
            "body".into(),
            policy_json(
                &self.entity_id,
                &self.proposed,
                self.proposed_status,
                self.policy_created,
                self.policy_updated,
            ),
        );
        Value::Object(out)
    }
}

/// Records a pending change request on `policy_id` and marks the policy as waiting on it.
pub fn create(
    state: &mut State,
    policy_id: &str,
    proposed: PolicySpec,
    proposed_status: PolicyStatus,
    requester_user_id: &str,
    approval_id: Option<String>,
) -> String {
    let now = state.now();
    let requester_token_id = state
        .users
        .get(requester_user_id)
        .map(|u| u.token_id.clone());
    let policy = state
        .policy
        .policies
        .get_mut(policy_id)
        .expect("change requests are created for existing policies");
    let id = ids::new_id("cr");
    policy.pending_change_request = Some(id.clone());
    let request = ChangeRequest {
        id: id.clone(),
        requester_user_id: requester_user_id.to_owned(),
        requester_token_id,
        entity_id: policy_id.to_owned(),
        approval_id,
        status: ChangeStatus::Pending,
        date_created: now,
        date_resolved: None,
        proposed,
        proposed_status,
        policy_created: policy.date_created,
        policy_updated: policy.date_updated,
    };
    state.policy.change_requests.insert(id.clone(), request);
    id
}

/// Applies (approved) or rejects the change request `id`; the policy stops showing it.
pub fn resolve(state: &mut State, id: &str, approved: bool) {
    let now = state.now();
    let Some(request) = state.policy.change_requests.get(id).cloned() else {
        return;
    };
    if request.status != ChangeStatus::Pending {
        return;
    }
    let policy = state.policy.policies.get_mut(&request.entity_id);
    let status = match (approved, policy) {
        (true, Some(policy)) => {
            policy.spec = request.proposed.clone();
            policy.status = request.proposed_status;
            policy.date_updated = now;
            policy.pending_change_request = None;
            ChangeStatus::Applied
        }
        (true, None) => ChangeStatus::Failed,
        (false, policy) => {
            if let Some(policy) = policy {
                policy.pending_change_request = None;
            }
            ChangeStatus::Rejected
        }
    };
    let request = state
        .policy
        .change_requests
        .get_mut(id)
        .expect("read above");
    request.status = status;
    request.date_resolved = Some(now);
}
