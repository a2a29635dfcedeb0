//! Policy approvals (docs/dfns.md §5): the approval object, who may decide (§5.4), quorum per
//! group per triggered policy, lazy expiry on the emulated clock, and the effects (§5.5) on the
//! held transfer or change request.
//!
//! Deciding rules, as implemented:
//! - the caller needs `Policies:Approvals:Approve` (checked by the route) and must not be a
//!   service account (Dfns enables `serviceAccountsCanApprove` only on request: treated as off);
//! - `Approved` needs a group listing the caller (or open to anyone) that does not exclude the
//!   initiator; `Denied` is open to anyone listed in a group and to the initiator (who cancels);
//! - one decision per user (409 on a second), one denial denies, `Approved` once every group of
//!   every triggered policy has `quorum` distinct approvers eligible in that group;
//! - a resolved approval answers 409 (U10: 403 for ineligible, 409 for duplicate / resolved).

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::model::ApprovalGroup;
use crate::clock::iso;
use crate::errors::{ApiError, ApiResult};
use crate::state::State;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Denied,
    Expired,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Approved => "Approved",
            Self::Denied => "Denied",
            Self::Expired => "Expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Denied, Self::Expired]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// What the approval holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A `Wallets:Sign` transfer (id into `State::transfers`).
    Transfer(String),
    /// A `Policies:Modify` change request (id into `PolicyData::change_requests`).
    ChangeRequest(String),
}

/// One policy's evaluation (`policyEvaluations[]`, and the `policy.triggered` payload).
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub id: String,
    pub policy_id: String,
    pub triggered: bool,
    pub reason: String,
    pub context: Value,
    pub date: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionValue {
    Approved,
    Denied,
}

impl DecisionValue {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "Approved",
            Self::Denied => "Denied",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Decision {
    pub user_id: String,
    pub date: OffsetDateTime,
    pub value: DecisionValue,
    pub reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Approval {
    pub id: String,
    pub initiator_id: String,
    pub subject: Subject,
    pub status: ApprovalStatus,
    pub evaluations: Vec<Evaluation>,
    /// The approval groups of every triggered `RequestApproval` policy, by policy id.
    pub groups: Vec<(String, Vec<ApprovalGroup>)>,
    pub decisions: Vec<Decision>,
    pub expiration: Option<OffsetDateTime>,
    pub date_created: OffsetDateTime,
    pub date_updated: OffsetDateTime,
    pub date_resolved: Option<OffsetDateTime>,
    pub seq: u64,
}

/// May `user_id` approve for `group`? Service accounts never; the initiator only if allowed.
pub fn can_approve_in(
    group: &ApprovalGroup,
    user_id: &str,
    is_service_account: bool,
    initiator_id: &str,
) -> bool {
    group.lists(user_id)
        && !is_service_account
        && (user_id != initiator_id || group.initiator_can_approve)
}

impl Approval {
    fn all_groups(&self) -> impl Iterator<Item = &ApprovalGroup> {
        self.groups.iter().flat_map(|(_, groups)| groups.iter())
    }

    /// Every group of every triggered policy has `quorum` distinct eligible approvers.
    pub fn quorum_reached(&self) -> bool {
        self.all_groups().all(|group| {
            let approvers = self
                .decisions
                .iter()
                .filter(|d| d.value == DecisionValue::Approved)
                .filter(|d| can_approve_in(group, &d.user_id, false, &self.initiator_id))
                .count() as u64;
            approvers >= group.quorum
        })
    }

    /// Could `user_id` approve this approval (the `approverId` list filter)?
    pub fn is_potential_approver(&self, user_id: &str, is_service_account: bool) -> bool {
        self.all_groups()
            .any(|g| can_approve_in(g, user_id, is_service_account, &self.initiator_id))
    }

    /// Checks a decision against §5.4 (not the permission, which the route checks).
    pub fn check_decision(
        &self,
        user_id: &str,
        is_service_account: bool,
        value: DecisionValue,
    ) -> ApiResult<()> {
        if self.status != ApprovalStatus::Pending {
            return Err(ApiError::conflict(format!(
                "approval is already {}",
                self.status.as_str()
            ))
            .with_details(json!({ "approvalId": self.id, "status": self.status.as_str() })));
        }
        if is_service_account {
            return Err(
                ApiError::forbidden("service accounts cannot decide on policy approvals")
                    .with_details(json!({ "approvalId": self.id, "userId": user_id })),
            );
        }
        if self.decisions.iter().any(|d| d.user_id == user_id) {
            return Err(
                ApiError::conflict("user has already decided on this approval")
                    .with_details(json!({ "approvalId": self.id, "userId": user_id })),
            );
        }
        let eligible = match value {
            DecisionValue::Approved => self
                .all_groups()
                .any(|g| can_approve_in(g, user_id, false, &self.initiator_id)),
            DecisionValue::Denied => {
                user_id == self.initiator_id || self.all_groups().any(|g| g.lists(user_id))
            }
        };
        if eligible {
            return Ok(());
        }
        let message = if user_id == self.initiator_id {
            "the initiator of an activity cannot approve it"
        } else {
            "user is not an approver of this approval"
        };
        Err(ApiError::forbidden(message)
            .with_details(json!({ "approvalId": self.id, "userId": user_id })))
    }
}

/// The Approval object (§5.2); the activity is rendered from the live transfer / change request.
pub fn approval_json(state: &State, approval: &Approval) -> Value {
    let activity = match &approval.subject {
        Subject::Transfer(id) => {
            let mut a = Map::new();
            a.insert("kind".into(), json!("Wallets:Sign"));
            if let Some(t) = state.transfers.get(id) {
                a.insert("transferRequest".into(), t.to_json());
            }
            Value::Object(a)
        }
        Subject::ChangeRequest(id) => json!({
            "kind": "Policies:Modify",
            "changeRequest": state
                .policy
                .change_requests
                .get(id)
                .map(|cr| cr.to_json())
                .unwrap_or(Value::Null),
        }),
    };
    let mut out = Map::new();
    out.insert("id".into(), json!(approval.id));
    out.insert("initiatorId".into(), json!(approval.initiator_id));
    out.insert("activity".into(), activity);
    out.insert("status".into(), json!(approval.status.as_str()));
    if let Some(expiration) = approval.expiration {
        out.insert("expirationDate".into(), json!(iso(expiration)));
    }
    out.insert("dateCreated".into(), json!(iso(approval.date_created)));
    out.insert("dateUpdated".into(), json!(iso(approval.date_updated)));
    if let Some(resolved) = approval.date_resolved {
        out.insert("dateResolved".into(), json!(iso(resolved)));
    }
    out.insert(
        "policyEvaluations".into(),
        approval
            .evaluations
            .iter()
            .map(|e| {
                json!({
                    "policyId": e.policy_id,
                    "triggered": e.triggered,
                    "reason": e.reason,
                    "context": e.context,
                })
            })
            .collect(),
    );
    out.insert(
        "decisions".into(),
        approval
            .decisions
            .iter()
            .map(|d| {
                json!({
                    "userId": d.user_id,
                    "date": iso(d.date),
                    "reason": d.reason,
                    "value": d.value.as_str(),
                })
            })
            .collect(),
    );
    Value::Object(out)
}

pub fn get_approval<'a>(state: &'a State, id: &str) -> ApiResult<&'a Approval> {
    state.policy.approvals.get(id).ok_or_else(|| {
        ApiError::not_found("approval not found").with_details(json!({ "approvalId": id }))
    })
}

/// Records a decision and resolves the approval when it is decided; returns the new status.
pub fn decide(
    state: &mut State,
    approval_id: &str,
    user_id: &str,
    is_service_account: bool,
    value: DecisionValue,
    reason: Option<String>,
) -> ApiResult<ApprovalStatus> {
    expire_due(state);
    let now = state.now();
    let approval = get_approval(state, approval_id)?;
    approval.check_decision(user_id, is_service_account, value)?;
    let approval = state
        .policy
        .approvals
        .get_mut(approval_id)
        .expect("checked above");
    approval.decisions.push(Decision {
        user_id: user_id.to_owned(),
        date: now,
        value,
        reason: reason.clone(),
    });
    approval.date_updated = now;
    let outcome = match value {
        DecisionValue::Denied => Some(ApprovalStatus::Denied),
        DecisionValue::Approved if approval.quorum_reached() => Some(ApprovalStatus::Approved),
        DecisionValue::Approved => None,
    };
    if let Some(status) = outcome {
        let why = match status {
            ApprovalStatus::Denied => format!(
                "Policy approval {approval_id} was denied by {user_id}{}",
                reason.map(|r| format!(": {r}")).unwrap_or_default()
            ),
            _ => String::new(),
        };
        resolve(state, approval_id, status, why);
    }
    Ok(state.policy.approvals[approval_id].status)
}

/// Expires every pending approval whose expiration date has passed (called on every policy and
/// approval access, on transfer reads and when the emulated clock moves).
pub fn expire_due(state: &mut State) {
    let now = state.now();
    let due: Vec<String> = state
        .policy
        .approvals
        .values()
        .filter(|a| a.status == ApprovalStatus::Pending && a.expiration.is_some_and(|e| e <= now))
        .map(|a| a.id.clone())
        .collect();
    for id in due {
        let reason = format!("Policy approval {id} expired before reaching its quorum");
        resolve(state, &id, ApprovalStatus::Expired, reason);
    }
}

/// Moves a pending approval to a final status, emits `policy.approval.resolved`, then applies
/// the effect on what it holds (§5.5).
fn resolve(state: &mut State, id: &str, status: ApprovalStatus, reason: String) {
    let now = state.now();
    let Some(approval) = state.policy.approvals.get_mut(id) else {
        return;
    };
    approval.status = status;
    approval.date_updated = now;
    approval.date_resolved = Some(now);
    let subject = approval.subject.clone();
    let approved = status == ApprovalStatus::Approved;
    let data = json!({ "approval": approval_json(state, &state.policy.approvals[id]) });
    state.emit("policy.approval.resolved", data);
    match subject {
        Subject::Transfer(transfer_id) => {
            let reason = (!approved).then_some(reason);
            if let Err(error) =
                crate::transfers::resolve_approval(state, &transfer_id, approved, reason)
            {
                // The transfer moved on by itself (e.g. forced to Failed): nothing to resume.
                tracing::debug!(%transfer_id, %error, "approval resolved for a settled transfer");
            }
        }
        Subject::ChangeRequest(cr_id) => super::change::resolve(state, &cr_id, approved),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(
        quorum: u64,
        approvers: Option<&[&str]>,
        initiator_can_approve: bool,
    ) -> ApprovalGroup {
        ApprovalGroup {
            name: None,
            quorum,
            approvers: approvers.map(|ids| ids.iter().map(|s| (*s).to_owned()).collect()),
            initiator_can_approve,
            service_accounts_can_approve: true,
        }
    }

    fn approval(groups: Vec<(&str, Vec<ApprovalGroup>)>) -> Approval {
        let now = OffsetDateTime::now_utc();
        Approval {
            id: "ap-1".into(),
            initiator_id: "us-init".into(),
            subject: Subject::Transfer("xfr-1".into()),
            status: ApprovalStatus::Pending,
            evaluations: vec![],
            groups: groups.into_iter().map(|(p, g)| (p.to_owned(), g)).collect(),
            decisions: vec![],
            expiration: None,
            date_created: now,
            date_updated: now,
            date_resolved: None,
            seq: 1,
        }
    }

    fn approve(a: &mut Approval, user: &str) {
        a.decisions.push(Decision {
            user_id: user.into(),
            date: OffsetDateTime::now_utc(),
            value: DecisionValue::Approved,
            reason: None,
        });
    }

    #[test]
    fn every_group_of_every_policy_needs_its_quorum() {
        let mut a = approval(vec![
            ("plc-1", vec![group(1, Some(&["us-a", "us-b"]), false)]),
            ("plc-2", vec![group(2, Some(&["us-b", "us-c"]), false)]),
        ]);
        approve(&mut a, "us-a");
        assert!(!a.quorum_reached(), "plc-2 has no approver yet");
        approve(&mut a, "us-b");
        assert!(!a.quorum_reached(), "plc-2 needs two");
        approve(&mut a, "us-c");
        assert!(a.quorum_reached());
    }

    #[test]
    fn the_initiator_does_not_count_unless_allowed() {
        let mut a = approval(vec![("plc-1", vec![group(1, None, false)])]);
        assert!(
            a.check_decision("us-init", false, DecisionValue::Approved)
                .is_err()
        );
        assert!(
            a.check_decision("us-init", false, DecisionValue::Denied)
                .is_ok()
        );
        approve(&mut a, "us-init");
        assert!(!a.quorum_reached());
        let allowed = approval(vec![("plc-1", vec![group(1, None, true)])]);
        assert!(
            allowed
                .check_decision("us-init", false, DecisionValue::Approved)
                .is_ok()
        );
    }

    #[test]
    fn service_accounts_and_strangers_are_refused_and_users_decide_once() {
        let mut a = approval(vec![(
            "plc-1",
            vec![group(2, Some(&["us-a", "us-sa", "us-b"]), false)],
        )]);
        let sa = a
            .check_decision("us-sa", true, DecisionValue::Approved)
            .unwrap_err();
        assert_eq!(sa.status, axum::http::StatusCode::FORBIDDEN);
        let sa = a
            .check_decision("us-sa", true, DecisionValue::Denied)
            .unwrap_err();
        assert_eq!(sa.status, axum::http::StatusCode::FORBIDDEN);
        let stranger = a
            .check_decision("us-x", false, DecisionValue::Approved)
            .unwrap_err();
        assert_eq!(stranger.status, axum::http::StatusCode::FORBIDDEN);
        approve(&mut a, "us-a");
        let twice = a
            .check_decision("us-a", false, DecisionValue::Denied)
            .unwrap_err();
        assert_eq!(twice.status, axum::http::StatusCode::CONFLICT);
        a.status = ApprovalStatus::Denied;
        let resolved = a
            .check_decision("us-b", false, DecisionValue::Approved)
            .unwrap_err();
        assert_eq!(resolved.status, axum::http::StatusCode::CONFLICT);
    }
}
