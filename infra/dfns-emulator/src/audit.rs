//! Audit log (docs/dfns.md §6): one entry per consumed user action; list as CSV, get as JSON.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State as AxState};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::auth::{Caller, UserAction};
use crate::clock::{iso, parse_iso};
use crate::errors::{ApiError, ApiResult};
use crate::extract::DfnsQuery;
use crate::ids;
use crate::state::{SharedApp, State};

#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: String,
    /// `METHOD /path` of the authorised request (the exact Dfns format is unconfirmed, U17).
    pub action: String,
    pub path: String,
    pub action_token: String,
    pub user_id: String,
    pub username: String,
    pub date_performed: OffsetDateTime,
    pub credential_id: String,
    pub public_key: String,
    pub client_data: String,
    pub signature: String,
    /// What the action did, when the handler says more than `METHOD /path` (policy changes,
    /// approval decisions); shown in the CSV "Summary" column.
    pub summary: Option<String>,
}

/// The audit entry of the request's user action (a request extension on mutating routes).
#[derive(Debug, Clone)]
pub struct AuditRef(pub String);

/// Sets the summary of the audit entry `audit` (called by handlers with the state lock held).
pub fn annotate(state: &mut State, audit: Option<&AuditRef>, summary: String) {
    let Some(AuditRef(id)) = audit else { return };
    if let Some(entry) = state.audit.iter_mut().rev().find(|e| &e.id == id) {
        entry.summary = Some(summary);
    }
}

impl AuditEntry {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "action": self.action,
            "actionToken": self.action_token,
            "userId": self.user_id,
            "username": self.username,
            "datePerformed": iso(self.date_performed),
            "firstFactorCredential": {
                "id": self.credential_id,
                "kind": "Key",
                "publicKey": self.public_key,
                "assertion": {
                    "authenticatorData": null,
                    "clientData": self.client_data,
                    "signature": self.signature,
                },
            },
        })
    }
}

/// Records the consumption of `action` (called with the state lock held); returns the entry id.
pub fn record(state: &mut State, token: &str, action: &UserAction, now: OffsetDateTime) -> String {
    let username = state
        .users
        .get(&action.user_id)
        .map(|u| u.username.clone())
        .unwrap_or_default();
    let public_key = state
        .credentials
        .values()
        .find(|c| c.record_id == action.credential_id)
        .map(|c| c.key.public_key_pem())
        .unwrap_or_default();
    let id = ids::new_id("uj");
    state.audit.push(AuditEntry {
        id: id.clone(),
        action: format!("{} {}", action.binding.method, action.binding.path),
        path: action.binding.path.clone(),
        action_token: token.to_owned(),
        user_id: action.user_id.clone(),
        username,
        date_performed: now,
        credential_id: action.credential_id.clone(),
        public_key,
        client_data: action.client_data.clone(),
        signature: action.signature.clone(),
        summary: None,
    });
    id
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogQuery {
    start_time: Option<String>,
    end_time: Option<String>,
    user_id: Option<String>,
}

const CSV_HEADER: &str =
    "Date Performed,Audit Log ID,User ID,Username,Primary Credential ID,Action Path,Summary";

/// `GET /auth/action/logs?startTime&endTime[&userId]` → `text/csv`, newest first.
pub async fn list(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    DfnsQuery(query): DfnsQuery<LogQuery>,
) -> ApiResult<Response> {
    caller.require("Auth:Logs:Read")?;
    let start = query
        .start_time
        .as_deref()
        .and_then(parse_iso)
        .ok_or_else(|| ApiError::bad_request("startTime is required (ISO-8601 UTC)"))?;
    let end = query
        .end_time
        .as_deref()
        .and_then(parse_iso)
        .ok_or_else(|| ApiError::bad_request("endTime is required (ISO-8601 UTC)"))?;
    if end < start {
        return Err(ApiError::bad_request(
            "endTime must not be before startTime",
        ));
    }
    if let Some(user_id) = &query.user_id
        && (user_id.is_empty() || user_id.len() > 64)
    {
        return Err(ApiError::bad_request("userId must be 1 to 64 characters"));
    }
    let csv = app.with_state(|s| {
        let mut lines = vec![CSV_HEADER.to_owned()];
        for entry in s.audit.iter().rev() {
            if entry.date_performed < start || entry.date_performed > end {
                continue;
            }
            if query.user_id.as_ref().is_some_and(|u| *u != entry.user_id) {
                continue;
            }
            lines.push(
                [
                    iso(entry.date_performed),
                    entry.id.clone(),
                    entry.user_id.clone(),
                    entry.username.clone(),
                    entry.credential_id.clone(),
                    entry.path.clone(),
                    entry
                        .summary
                        .clone()
                        .unwrap_or_else(|| entry.action.clone()),
                ]
                .iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
            );
        }
        lines.join("\n") + "\n"
    });
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response())
}

fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

pub async fn get(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require("Auth:Logs:Read")?;
    app.with_state(|s| {
        s.audit
            .iter()
            .find(|e| e.id == id)
            .map(|e| Json(e.to_json()))
            .ok_or_else(|| {
                ApiError::not_found("audit log not found").with_details(json!({ "id": id }))
            })
    })
}
