//! Audit logs (docs/dfns.md §6): one row per consumed user action. The list is CSV, not JSON, and
//! time-boxed; the stream here queries windows of at most 7 days and yields typed rows.

use std::collections::HashMap;

use futures::stream::{BoxStream, StreamExt as _, TryStreamExt as _};
use serde::Deserialize;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::client::{DfnsClient, Request};
use crate::common::rfc3339;
use crate::error::{Error, Result};
use crate::ids::{AuditLogId, UserId};

/// Longest window one list call asks for.
pub const MAX_AUDIT_WINDOW: Duration = Duration::days(7);

/// One CSV row of `GET /auth/action/logs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLogRow {
    pub date_performed: String,
    pub id: AuditLogId,
    pub user_id: Option<UserId>,
    pub username: Option<String>,
    pub primary_credential_id: Option<String>,
    pub action_path: Option<String>,
    pub summary: Option<String>,
}

/// `GET /auth/action/logs/{id}`. The user-action token Dfns includes (`actionToken`) is
/// deliberately not kept.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditLog {
    pub id: AuditLogId,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub user_id: Option<UserId>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default, with = "rfc3339::option")]
    pub date_performed: Option<OffsetDateTime>,
    /// Lets an auditor re-verify the signature (`{id, kind, publicKey, assertion}`).
    #[serde(default)]
    pub first_factor_credential: Option<Value>,
}

/// Range of `GET /auth/action/logs`.
#[derive(Debug, Clone)]
pub struct AuditLogQuery {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    pub user_id: Option<UserId>,
}

fn iso(at: OffsetDateTime) -> String {
    at.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .expect("a UTC date always formats")
}

/// Splits `[start, end)` into windows of at most [`MAX_AUDIT_WINDOW`].
fn windows(start: OffsetDateTime, end: OffsetDateTime) -> Vec<(OffsetDateTime, OffsetDateTime)> {
    let mut out = Vec::new();
    let mut from = start;
    while from < end {
        let to = (from + MAX_AUDIT_WINDOW).min(end);
        out.push((from, to));
        from = to;
    }
    out
}

/// Parses RFC 4180 CSV (quoted fields, doubled quotes, separators and newlines inside quotes).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut chars = text.chars().peekable();
    let mut row_started = false;
    while let Some(c) = chars.next() {
        row_started = true;
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' => in_quotes = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                row_started = false;
            }
            _ => field.push(c),
        }
    }
    if row_started {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// Turns the CSV body into rows, by header name (column order may change).
fn parse_audit_csv(text: &str) -> Result<Vec<AuditLogRow>> {
    if text.lines().any(|line| line.starts_with("# TRUNCATED")) {
        return Err(Error::Decode {
            status: 200,
            reason: "Dfns truncated the audit log window; query shorter windows".into(),
        });
    }
    let mut rows = parse_csv(text)
        .into_iter()
        .filter(|r| !(r.len() == 1 && r[0].is_empty()));
    let Some(header) = rows.next() else {
        return Ok(Vec::new());
    };
    let column: HashMap<&str, usize> = header
        .iter()
        .enumerate()
        .map(|(i, name)| (name.trim(), i))
        .collect();
    let id_column = *column.get("Audit Log ID").ok_or_else(|| Error::Decode {
        status: 200,
        reason: "audit log CSV has no `Audit Log ID` column".into(),
    })?;
    let get = |row: &[String], name: &str| -> Option<String> {
        column
            .get(name)
            .and_then(|&i| row.get(i))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    rows.map(|row| {
        let id = row
            .get(id_column)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::Decode {
                status: 200,
                reason: "audit log row without id".into(),
            })?;
        Ok(AuditLogRow {
            date_performed: get(&row, "Date Performed").unwrap_or_default(),
            id: AuditLogId::new(id.clone()),
            user_id: get(&row, "User ID").map(UserId::from),
            username: get(&row, "Username"),
            primary_credential_id: get(&row, "Primary Credential ID"),
            action_path: get(&row, "Action Path"),
            summary: get(&row, "Summary"),
        })
    })
    .collect()
}

impl DfnsClient {
    /// `GET /auth/action/logs` over `[start, end)`, in windows of at most 7 days.
    pub fn list_audit_logs(
        &self,
        query: &AuditLogQuery,
    ) -> BoxStream<'static, Result<AuditLogRow>> {
        let client = self.clone();
        let user_id = query.user_id.clone();
        futures::stream::iter(windows(query.start, query.end))
            .then(move |(from, to)| {
                let client = client.clone();
                let user_id = user_id.clone();
                async move {
                    let response = client
                        .call(
                            Request::get(["auth", "action", "logs"])
                                .query("startTime", iso(from))
                                .query("endTime", iso(to))
                                .query_opt("userId", user_id.as_ref()),
                        )
                        .await?;
                    let text = std::str::from_utf8(&response.body).map_err(|e| Error::Decode {
                        status: response.status,
                        reason: format!("audit log CSV is not UTF-8: {e}"),
                    })?;
                    let rows = parse_audit_csv(text)?;
                    Ok::<_, Error>(futures::stream::iter(rows.into_iter().map(Ok)))
                }
            })
            .try_flatten()
            .boxed()
    }

    /// `GET /auth/action/logs/{id}`.
    pub async fn get_audit_log(&self, id: &AuditLogId) -> Result<AuditLog> {
        self.call_json(Request::get(["auth", "action", "logs", id.as_str()]))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn parses_documented_csv_with_quotes_and_commas() {
        let text = "Date Performed,Audit Log ID,User ID,Username,Primary Credential ID,Action Path,Summary\r\n\
2025-10-09T13:23:05.134Z,uj-4vs1l-1,us-4ovh4-2,my-user@my-company.com,cr-7bfqk-3,/wallets/wa-3l6ap-4,\"Update wallet wa-3l6ap-4, \"\"name\"\"\nchanged\"\r\n\
2025-10-09T13:24:05.134Z,uj-4vs1l-5,,,,/wallets,Create wallet\n";
        let rows = parse_audit_csv(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].id.as_str(), "uj-4vs1l-1");
        assert_eq!(rows[0].user_id.as_ref().unwrap().as_str(), "us-4ovh4-2");
        assert_eq!(
            rows[0].summary.as_deref(),
            Some("Update wallet wa-3l6ap-4, \"name\"\nchanged")
        );
        assert_eq!(rows[1].user_id, None);
        assert_eq!(rows[1].action_path.as_deref(), Some("/wallets"));
    }

    #[test]
    fn reordered_columns_and_empty_bodies() {
        let text = "Summary,Audit Log ID\nhello,uj-1\n";
        let rows = parse_audit_csv(text).unwrap();
        assert_eq!(rows[0].summary.as_deref(), Some("hello"));
        assert_eq!(rows[0].id.as_str(), "uj-1");
        assert!(parse_audit_csv("").unwrap().is_empty());
        let header_only = parse_audit_csv("Date Performed,Audit Log ID\n").unwrap();
        assert!(header_only.is_empty());
    }

    #[test]
    fn truncated_window_is_an_error_not_a_silent_gap() {
        let text = "Audit Log ID\nuj-1\n# TRUNCATED at 100000 rows\n";
        assert!(matches!(parse_audit_csv(text), Err(Error::Decode { .. })));
    }

    #[test]
    fn long_ranges_are_split_into_seven_day_windows() {
        let start = datetime!(2025-01-01 00:00 UTC);
        let end = datetime!(2025-01-20 12:00 UTC);
        let w = windows(start, end);
        assert_eq!(w.len(), 3);
        assert_eq!(w[0], (start, datetime!(2025-01-08 00:00 UTC)));
        assert_eq!(w[2], (datetime!(2025-01-15 00:00 UTC), end));
        assert!(windows(end, start).is_empty());
        assert_eq!(iso(datetime!(2025-01-01 02:00 +2)), "2025-01-01T00:00:00Z");
    }
}
