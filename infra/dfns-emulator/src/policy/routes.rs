//! HTTP routes: `/v2/policies` (docs/dfns.md §4.1) and `/v2/policy-approvals` (§5.1).
//! Every handler first expires overdue approvals, so expiry is visible on any read.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::approvals::{
    self, ApprovalStatus, DecisionValue, Subject, approval_json, expire_due, get_approval,
};
use super::change;
use super::model::{Policy, PolicyStatus, parse_spec};
use super::{PolicyChange, Verdict};
use crate::audit::{self, AuditRef};
use crate::auth::Caller;
use crate::errors::{ApiError, ApiResult};
use crate::extract::{DfnsJson, DfnsQuery};
use crate::ids;
use crate::pagination::{PageQuery, page};
use crate::permissions::list_json;
use crate::state::{SharedApp, State};

/// Legacy docs: policies and approvals list 20 per page by default (§8.2).
const DEFAULT_PAGE: usize = 20;

fn get_policy<'a>(state: &'a State, id: &str) -> ApiResult<&'a Policy> {
    state.policy.policies.get(id).ok_or_else(|| {
        ApiError::not_found("policy not found")
            .with_details(json!({ "policyId": id, "orgId": state.org_id }))
    })
}

/// GET/list shape: the policy plus its pending change request, if any.
fn policy_with_pending(state: &State, policy: &Policy) -> Value {
    let mut out = policy.to_json();
    if let Some(cr) = policy
        .pending_change_request
        .as_ref()
        .and_then(|id| state.policy.change_requests.get(id))
        .filter(|cr| cr.status == change::ChangeStatus::Pending)
    {
        out["pendingChangeRequest"] = cr.to_json();
    }
    out
}

/// `POST /v2/policies` (not gated by `Policies:Modify`, §4.3).
pub async fn create(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    audit_ref: Option<Extension<AuditRef>>,
    DfnsJson(body): DfnsJson<Value>,
) -> ApiResult<Json<Value>> {
    caller.require("Policies:Create")?;
    let spec = parse_spec(&body)?;
    app.with_state(|s| {
        expire_due(s);
        let now = s.now();
        let policy = Policy {
            id: ids::new_id("plc"),
            spec,
            status: PolicyStatus::Active,
            date_created: now,
            date_updated: now,
            pending_change_request: None,
            seq: s.next_seq(),
        };
        let summary = format!(
            "Create policy {} ({}, {}): {:?}",
            policy.id,
            policy.spec.activity_kind,
            rule_kind(&policy),
            policy.spec.name
        );
        audit::annotate(s, audit_ref.as_deref(), summary);
        let out = policy.to_json();
        s.policy.policies.insert(policy.id.clone(), policy);
        Ok(Json(out))
    })
}

fn rule_kind(policy: &Policy) -> &str {
    policy.spec.body["rule"]["kind"].as_str().unwrap_or("?")
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPoliciesQuery {
    #[serde(flatten)]
    page: PageQuery,
    status: Option<String>,
}

/// `GET /v2/policies?limit&paginationToken&status`.
pub async fn list(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    DfnsQuery(query): DfnsQuery<ListPoliciesQuery>,
) -> ApiResult<Json<Value>> {
    caller.require("Policies:Read")?;
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some("Active") => Some(PolicyStatus::Active),
        Some("Archived") => Some(PolicyStatus::Archived),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "status must be Active or Archived, got {other:?}"
            )));
        }
    };
    app.with_state(|s| {
        expire_due(s);
        let items = s
            .policy
            .policies
            .values()
            .filter(|p| status.is_none_or(|st| p.status == st))
            .map(|p| (p.seq, policy_with_pending(s, p)));
        let (items, next) = page(items, &query.page, DEFAULT_PAGE)?;
        Ok(Json(list_json(items, next)))
    })
}

/// `GET /v2/policies/{policyId}`.
pub async fn get(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(policy_id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require("Policies:Read")?;
    app.with_state(|s| {
        expire_due(s);
        let policy = get_policy(s, &policy_id)?;
        Ok(Json(policy_with_pending(s, policy)))
    })
}

/// `PUT /v2/policies/{policyId}`: 200 Policy, or 202 ChangeRequest under `Policies:Modify`.
pub async fn update(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    audit_ref: Option<Extension<AuditRef>>,
    Path(policy_id): Path<String>,
    DfnsJson(body): DfnsJson<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require("Policies:Update")?;
    let spec = parse_spec(&body)?;
    change_policy(&app, &caller, audit_ref, &policy_id, "Update", Some(spec))
}

/// `DELETE /v2/policies/{policyId}` (archive): 200 Policy, or 202 ChangeRequest.
pub async fn archive(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    audit_ref: Option<Extension<AuditRef>>,
    Path(policy_id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require("Policies:Archive")?;
    change_policy(&app, &caller, audit_ref, &policy_id, "Archive", None)
}

/// Update (`spec` = the new body) or archive (`spec` = None) under the `Policies:Modify` gate.
fn change_policy(
    app: &SharedApp,
    caller: &Caller,
    audit_ref: Option<Extension<AuditRef>>,
    policy_id: &str,
    operation: &str,
    spec: Option<super::model::PolicySpec>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let engine = app.engine.clone();
    let audit_ref = audit_ref.map(|Extension(a)| a);
    app.with_state(|s| {
        expire_due(s);
        let policy = get_policy(s, policy_id)?;
        if policy.status == PolicyStatus::Archived {
            if spec.is_none() {
                // Archiving an archived policy changes nothing: answer it as it is.
                return Ok((StatusCode::OK, Json(policy.to_json())));
            }
            return Err(ApiError::conflict("policy is archived")
                .with_details(json!({ "policyId": policy_id })));
        }
        if let Some(pending) = &policy.pending_change_request {
            // U9: a second change while one waits is refused.
            return Err(ApiError::conflict("policy has a pending change request")
                .with_details(json!({ "policyId": policy_id, "changeRequestId": pending })));
        }
        let (spec, status) = match spec {
            Some(spec) => (spec, PolicyStatus::Active),
            None => (policy.spec.clone(), PolicyStatus::Archived),
        };
        let change = PolicyChange {
            policy_id: policy_id.to_owned(),
            operation: operation.to_owned(),
            body: Value::Object(spec.body.clone()),
            requester_user_id: caller.user_id.clone(),
        };
        match engine.evaluate_policy_change(s, &change) {
            Verdict::Allow => {
                let now = s.now();
                let policy = s.policy.policies.get_mut(policy_id).expect("read above");
                policy.spec = spec;
                policy.status = status;
                policy.date_updated = now;
                let out = policy.to_json();
                audit::annotate(
                    s,
                    audit_ref.as_ref(),
                    format!("{operation} policy {policy_id}: applied"),
                );
                Ok((StatusCode::OK, Json(out)))
            }
            Verdict::RequestApproval { approval_id } => {
                let existing = s.policy.approvals.get(&approval_id).and_then(|a| match &a.subject {
                    Subject::ChangeRequest(id) => Some(id.clone()),
                    Subject::Transfer(_) => None,
                });
                // A custom engine may name an approval it keeps itself: record the request here.
                let cr_id = existing.unwrap_or_else(|| {
                    change::create(s, policy_id, spec, status, &caller.user_id, Some(approval_id.clone()))
                });
                audit::annotate(
                    s,
                    audit_ref.as_ref(),
                    format!(
                        "{operation} policy {policy_id}: change request {cr_id} awaits approval {approval_id}"
                    ),
                );
                Ok((
                    StatusCode::ACCEPTED,
                    Json(s.policy.change_requests[&cr_id].to_json()),
                ))
            }
            Verdict::Block { reason } => Err(ApiError::forbidden(reason)),
        }
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListApprovalsQuery {
    #[serde(flatten)]
    page: PageQuery,
    status: Option<String>,
    initiator_id: Option<String>,
    approver_id: Option<String>,
}

/// `GET /v2/policy-approvals?limit&paginationToken&status&initiatorId&approverId`.
pub async fn list_approvals(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    DfnsQuery(query): DfnsQuery<ListApprovalsQuery>,
) -> ApiResult<Json<Value>> {
    caller.require("Policies:Approvals:Read")?;
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(ApprovalStatus::parse(raw).ok_or_else(|| {
            ApiError::bad_request(format!(
                "status must be Pending, Approved, Denied or Expired, got {raw:?}"
            ))
        })?),
    };
    app.with_state(|s| {
        expire_due(s);
        let approver = query.approver_id.as_deref().filter(|a| !a.is_empty());
        let approver_is_sa = approver
            .and_then(|id| s.users.get(id))
            .is_some_and(|u| u.is_service_account);
        let items = s
            .policy
            .approvals
            .values()
            .filter(|a| status.is_none_or(|st| a.status == st))
            .filter(|a| {
                query
                    .initiator_id
                    .as_deref()
                    .is_none_or(|i| i.is_empty() || a.initiator_id == i)
            })
            .filter(|a| approver.is_none_or(|u| a.is_potential_approver(u, approver_is_sa)))
            .map(|a| (a.seq, approval_json(s, a)));
        let (items, next) = page(items, &query.page, DEFAULT_PAGE)?;
        Ok(Json(list_json(items, next)))
    })
}

/// `GET /v2/policy-approvals/{approvalId}`.
pub async fn get_approval_route(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(approval_id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require("Policies:Approvals:Read")?;
    app.with_state(|s| {
        expire_due(s);
        let approval = get_approval(s, &approval_id)?;
        Ok(Json(approval_json(s, approval)))
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    value: String,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /v2/policy-approvals/{approvalId}/decisions` `{value, reason?}` → the Approval.
pub async fn decide(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    audit_ref: Option<Extension<AuditRef>>,
    Path(approval_id): Path<String>,
    DfnsJson(body): DfnsJson<DecisionBody>,
) -> ApiResult<Json<Value>> {
    let value = match body.value.as_str() {
        "Approved" => DecisionValue::Approved,
        "Denied" => DecisionValue::Denied,
        other => {
            return Err(ApiError::bad_request(format!(
                "value must be Approved or Denied, got {other:?}"
            )));
        }
    };
    app.with_state(|s| {
        let decided = caller.require("Policies:Approvals:Approve").and_then(|()| {
            approvals::decide(
                s,
                &approval_id,
                &caller.user_id,
                caller.is_service_account,
                value,
                body.reason.clone(),
            )
        });
        let status = match decided {
            Ok(status) => status,
            Err(error) => {
                // A refused decision still consumed a user action: say why in its audit entry.
                let summary = format!(
                    "Decision {} on approval {approval_id} refused ({}: {})",
                    value.as_str(),
                    error.status.as_u16(),
                    error.message
                );
                audit::annotate(s, audit_ref.as_deref(), summary);
                return Err(error);
            }
        };
        let approval = &s.policy.approvals[&approval_id];
        let effect = match (&approval.subject, status) {
            (_, ApprovalStatus::Pending) => "quorum not reached yet".to_owned(),
            (Subject::Transfer(id), ApprovalStatus::Approved) => format!("transfer {id} proceeds"),
            (Subject::Transfer(id), _) => format!("transfer {id} rejected"),
            (Subject::ChangeRequest(id), _) => {
                let cr = &s.policy.change_requests[id];
                format!(
                    "change request {id} on policy {} {}",
                    cr.entity_id,
                    cr.status.as_str()
                )
            }
        };
        let summary = format!(
            "Decision {} on approval {approval_id} → {} ({effect})",
            value.as_str(),
            status.as_str()
        );
        let out = approval_json(s, approval);
        audit::annotate(s, audit_ref.as_deref(), summary);
        Ok(Json(out))
    })
}
