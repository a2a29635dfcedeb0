//! Permissions (docs/dfns.md §9): named permissions (sets of operations) assigned to users, and
//! the read endpoints the SDK types describe: service accounts, users, permissions, assignments.

use std::collections::BTreeSet;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State as AxState};
use serde_json::{Value, json};

use crate::auth::{Caller, User};
use crate::errors::{ApiError, ApiResult};
use crate::extract::DfnsQuery;
use crate::ids;
use crate::pagination::{PageQuery, page};
use crate::state::{SharedApp, State};

/// The service account's operations: exactly the §9 set. It never holds
/// `Policies:Approvals:Approve`, so it can never approve its own requests, nor
/// `Wallets:Tags:Delete` or `Wallets:Update`, which could take a wallet out of its rules (a test
/// that needs them grants them through the control API, `POST /emulator/permissions`).
pub const SERVICE_ACCOUNT_OPERATIONS: &[&str] = &[
    "Wallets:Create",
    "Wallets:Read",
    "Wallets:Tags:Add",
    "Wallets:Transfers:Create",
    "Wallets:Transfers:Read",
    "Wallets:Transfers:Abort",
    "Policies:Create",
    "Policies:Read",
    "Policies:Update",
    "Policies:Archive",
    "Policies:Approvals:Read",
    "Auth:Logs:Read",
    "Webhooks:Create",
    "Webhooks:Read",
    "Webhooks:Update",
    "Webhooks:Delete",
    "Webhooks:Ping",
    "Webhooks:Events:Read",
    "Auth:Action:Sign",
];

/// The read-only service account's operations: what reporting, the desk's previews and the
/// webhook receiver read. Nothing that changes anything.
pub const READ_ONLY_SERVICE_ACCOUNT_OPERATIONS: &[&str] = &[
    "Wallets:Read",
    "Wallets:Transfers:Read",
    "Policies:Read",
    "Policies:Approvals:Read",
];

/// Compliance officers read and decide; they cannot move funds or edit policies.
pub const OFFICER_OPERATIONS: &[&str] = &[
    "Wallets:Read",
    "Wallets:Transfers:Read",
    "Policies:Read",
    "Policies:Approvals:Read",
    "Policies:Approvals:Approve",
    "Auth:Logs:Read",
    "Auth:Action:Sign",
];

/// The admin holds every operation the emulator knows, plus the org-administration reads.
pub fn admin_operations() -> Vec<&'static str> {
    let mut ops: BTreeSet<&'static str> = SERVICE_ACCOUNT_OPERATIONS.iter().copied().collect();
    ops.extend(OFFICER_OPERATIONS.iter().copied());
    ops.extend([
        "Wallets:Update",
        "Wallets:Tags:Delete",
        "Permissions:Read",
        "Permissions:Assign",
        "Permissions:Revoke",
        "Permissions:Create",
        "Permissions:Modify",
        "Auth:ServiceAccounts:Read",
        "Auth:Users:Read",
    ]);
    ops.into_iter().collect()
}

#[derive(Debug, Clone)]
pub struct Permission {
    pub id: String,
    pub name: String,
    pub operations: Vec<String>,
    pub is_immutable: bool,
    pub date_created: String,
    pub date_updated: String,
    pub seq: u64,
}

impl Permission {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "operations": self.operations,
            "status": "Active",
            "isImmutable": self.is_immutable,
            "isArchived": false,
            "dateCreated": self.date_created,
            "dateUpdated": self.date_updated,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Assignment {
    pub id: String,
    pub permission_id: String,
    pub identity_id: String,
    pub date_created: String,
    pub seq: u64,
}

impl Assignment {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "permissionId": self.permission_id,
            "identityId": self.identity_id,
            "isImmutable": false,
            "dateCreated": self.date_created,
            "dateUpdated": self.date_created,
        })
    }
}

/// Every operation granted to `user_id` through its assignments.
pub fn operations_of(state: &State, user_id: &str) -> BTreeSet<String> {
    state
        .assignments
        .iter()
        .filter(|a| a.identity_id == user_id)
        .filter_map(|a| state.permissions.get(&a.permission_id))
        .flat_map(|p| p.operations.iter().cloned())
        .collect()
}

/// Creates a permission with `operations` and assigns it to `user_id`; returns (permission id,
/// assignment id). Used by seeding and by the control API's extra grants.
pub fn grant(
    state: &mut State,
    user_id: &str,
    name: &str,
    operations: &[String],
) -> (String, String) {
    let now = crate::clock::iso(state.now());
    let permission = Permission {
        id: ids::new_id("pm"),
        name: name.to_owned(),
        operations: operations.to_vec(),
        is_immutable: false,
        date_created: now.clone(),
        date_updated: now.clone(),
        seq: state.next_seq(),
    };
    let assignment = Assignment {
        id: ids::new_id("as"),
        permission_id: permission.id.clone(),
        identity_id: user_id.to_owned(),
        date_created: now,
        seq: state.next_seq(),
    };
    let ids = (permission.id.clone(), assignment.id.clone());
    state.permissions.insert(permission.id.clone(), permission);
    state.assignments.push(assignment);
    ids
}

fn permission_assignments_json(state: &State, user_id: &str) -> Vec<Value> {
    state
        .assignments
        .iter()
        .filter(|a| a.identity_id == user_id)
        .filter_map(|a| {
            let p = state.permissions.get(&a.permission_id)?;
            Some(json!({
                "permissionName": p.name,
                "permissionId": p.id,
                "assignmentId": a.id,
                "operations": p.operations,
            }))
        })
        .collect()
}

fn user_info_json(state: &State, user: &User) -> Value {
    let operations: Vec<String> = operations_of(state, &user.user_id).into_iter().collect();
    let credential_uuid = user
        .cred_ids
        .first()
        .and_then(|id| state.credentials.get(id))
        .map(|c| c.uuid.clone())
        .unwrap_or_default();
    json!({
        "username": user.username,
        "name": user.name,
        "userId": user.user_id,
        "kind": "CustomerEmployee",
        "credentialUuid": credential_uuid,
        "orgId": state.org_id,
        "permissions": operations,
        "isActive": true,
        "isServiceAccount": user.is_service_account,
        "isRegistered": true,
        "isSSORequired": false,
        "permissionAssignments": permission_assignments_json(state, &user.user_id),
    })
}

fn service_account_json(state: &State, user: &User) -> Value {
    let mut info = user_info_json(state, user);
    if let Some(obj) = info.as_object_mut() {
        obj.remove("isSSORequired");
    }
    let public_key = user
        .cred_ids
        .first()
        .and_then(|id| state.credentials.get(id))
        .map(|c| c.key.public_key_pem())
        .unwrap_or_default();
    json!({
        "userInfo": info,
        "accessTokens": [{
            "dateCreated": user.date_created,
            "credId": user.cred_ids.first().cloned().unwrap_or_default(),
            "isActive": true,
            "kind": "ServiceAccount",
            "linkedUserId": user.user_id,
            "linkedAppId": "",
            "name": user.name,
            "orgId": state.org_id,
            "permissionAssignments": permission_assignments_json(state, &user.user_id),
            "publicKey": public_key,
            "tokenId": user.token_id,
        }],
    })
}

/// Reading one's own user or service-account record needs no permission (so the service account
/// can check its own assignments at start-up); reading others' needs `operation`.
fn require_self_or(caller: &Caller, target_user_id: &str, operation: &str) -> ApiResult<()> {
    if caller.user_id == target_user_id {
        Ok(())
    } else {
        caller.require(operation)
    }
}

pub async fn list_service_accounts(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Value>> {
    caller.require("Auth:ServiceAccounts:Read")?;
    Ok(Json(app.with_state(|s| {
        let items: Vec<Value> = s
            .users
            .values()
            .filter(|u| u.is_service_account)
            .map(|u| service_account_json(s, u))
            .collect();
        json!({ "items": items })
    })))
}

pub async fn get_service_account(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    require_self_or(&caller, &id, "Auth:ServiceAccounts:Read")?;
    app.with_state(|s| {
        s.users
            .get(&id)
            .filter(|u| u.is_service_account)
            .map(|u| Json(service_account_json(s, u)))
            .ok_or_else(|| {
                ApiError::not_found("service account not found")
                    .with_details(json!({ "serviceAccountId": id }))
            })
    })
}

pub async fn list_users(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    DfnsQuery(query): DfnsQuery<PageQuery>,
) -> ApiResult<Json<Value>> {
    caller.require("Auth:Users:Read")?;
    app.with_state(|s| {
        let all: Vec<(u64, Value)> = s
            .users
            .values()
            .filter(|u| !u.is_service_account)
            .enumerate()
            .map(|(i, u)| (i as u64 + 1, user_info_json(s, u)))
            .collect();
        let (items, next) = page(all, &query, 50)?;
        Ok(Json(list_json(items, next)))
    })
}

pub async fn get_user(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    require_self_or(&caller, &id, "Auth:Users:Read")?;
    app.with_state(|s| {
        s.users
            .get(&id)
            .map(|u| Json(user_info_json(s, u)))
            .ok_or_else(|| {
                ApiError::not_found("user not found").with_details(json!({ "userId": id }))
            })
    })
}

pub async fn list_permissions(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    DfnsQuery(query): DfnsQuery<PageQuery>,
) -> ApiResult<Json<Value>> {
    caller.require("Permissions:Read")?;
    app.with_state(|s| {
        let all = s.permissions.values().map(|p| (p.seq, p.to_json()));
        let (items, next) = page(all, &query, 50)?;
        Ok(Json(list_json(items, next)))
    })
}

pub async fn get_permission(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require("Permissions:Read")?;
    app.with_state(|s| {
        s.permissions
            .get(&id)
            .map(|p| Json(p.to_json()))
            .ok_or_else(|| {
                ApiError::not_found("permission not found")
                    .with_details(json!({ "permissionId": id }))
            })
    })
}

pub async fn list_assignments(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    DfnsQuery(query): DfnsQuery<PageQuery>,
) -> ApiResult<Json<Value>> {
    caller.require("Permissions:Read")?;
    app.with_state(|s| {
        if !s.permissions.contains_key(&id) {
            return Err(ApiError::not_found("permission not found")
                .with_details(json!({ "permissionId": id })));
        }
        let all = s
            .assignments
            .iter()
            .filter(|a| a.permission_id == id)
            .map(|a| (a.seq, a.to_json()));
        let (items, next) = page(all, &query, 50)?;
        Ok(Json(list_json(items, next)))
    })
}

/// `{items, nextPageToken?}` — the token is absent on the last page.
pub fn list_json(items: Vec<Value>, next: Option<String>) -> Value {
    let mut out = json!({ "items": items });
    if let Some(token) = next {
        out["nextPageToken"] = Value::String(token);
    }
    out
}
