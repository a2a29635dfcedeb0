//! Appending to a client's audit chain.

use domain::{Actor, AuditAction, AuditEvent, ClientId};
use time::OffsetDateTime;

use crate::App;
use crate::error::{PlatformError, Result};

/// Audit action names used by the platform.
pub mod actions {
    pub const ACCOUNT_OPENED: &str = "account.opened";
    pub const WALLET_CREATED: &str = "wallet.created";
    pub const POLICY_CREATED: &str = "policy.created";
    pub const DESTINATION_CREATED: &str = "destination_request.created";
    pub const DESTINATION_SUBMITTED: &str = "destination_request.submitted";
    pub const DESTINATION_PENDING: &str = "destination_request.pending_approval";
    pub const DESTINATION_APPROVED: &str = "destination_request.approved";
    pub const DESTINATION_REJECTED: &str = "destination_request.rejected";
    pub const DESTINATION_FAILED: &str = "destination_request.failed";
    pub const DESTINATION_CANCELLED: &str = "destination_request.cancelled";
    pub const DEPOSIT_RECEIVED: &str = "deposit.received";
    pub const TRANSFER_STATUS: &str = "transfer.status_reported";
}

/// Appends one event to the client's chain.
pub async fn record(
    app: &App,
    client: &ClientId,
    actor: Actor,
    action: &str,
    request_id: &str,
    details: serde_json::Value,
) -> Result<()> {
    let event = event(client, actor, action, request_id, details)?;
    app.store().append_audit_event(&event).await?;
    Ok(())
}

/// Appends one event for a fact that may be reported more than once: a redelivered webhook, or a
/// retry after a crash between a state change and its audit line. `once_key` names the fact (e.g.
/// `transfer:<id>:Confirmed`); the first call records it, later ones do nothing. Returns whether
/// this call recorded it.
pub async fn record_once(
    app: &App,
    client: &ClientId,
    once_key: &str,
    actor: Actor,
    action: &str,
    request_id: &str,
    details: serde_json::Value,
) -> Result<bool> {
    let event = event(client, actor, action, request_id, details)?;
    let recorded = app
        .store()
        .append_audit_event_once(&event, once_key)
        .await?;
    Ok(recorded.is_some())
}

/// Lines of facts recorded once ([`record_once`]), held back and appended together: the webhook
/// consumer applies a batch of one client's events, then appends their lines at once instead of
/// one chain-head round trip per event. Only for facts whose line is recorded on every report of
/// them (a deposit, a transfer status): if appending fails, the batch is retried and the lines are
/// held back again, and their once-keys keep them single.
#[derive(Debug, Default)]
pub struct Deferred {
    lines: std::sync::Mutex<Vec<(AuditEvent, String)>>,
}

impl Deferred {
    /// Appends every held line (each once), client by client, in the order they were held.
    pub async fn flush(&self, app: &App) -> Result<usize> {
        let lines = std::mem::take(
            &mut *self
                .lines
                .lock()
                .map_err(|_| PlatformError::Internal("audit lines lock poisoned".into()))?,
        );
        let mut by_client: Vec<(ClientId, Vec<(AuditEvent, String)>)> = Vec::new();
        for (event, once_key) in lines {
            match by_client.iter_mut().find(|(c, _)| *c == event.client_id) {
                Some((_, held)) => held.push((event, once_key)),
                None => by_client.push((event.client_id.clone(), vec![(event, once_key)])),
            }
        }
        let mut appended = 0;
        for (client, held) in by_client {
            appended += app.store().append_audit_events_once(&client, &held).await?;
        }
        Ok(appended)
    }

    fn hold(&self, event: AuditEvent, once_key: &str) -> Result<()> {
        self.lines
            .lock()
            .map_err(|_| PlatformError::Internal("audit lines lock poisoned".into()))?
            .push((event, once_key.to_owned()));
        Ok(())
    }
}

/// [`record_once`], or held in `deferred` when there is one.
#[allow(clippy::too_many_arguments)] // record_once's arguments, and where to put the line
pub async fn record_once_or_defer(
    app: &App,
    deferred: Option<&Deferred>,
    client: &ClientId,
    once_key: &str,
    actor: Actor,
    action: &str,
    request_id: &str,
    details: serde_json::Value,
) -> Result<()> {
    match deferred {
        Some(deferred) => {
            deferred.hold(event(client, actor, action, request_id, details)?, once_key)
        }
        None => record_once(app, client, once_key, actor, action, request_id, details)
            .await
            .map(|_| ()),
    }
}

fn event(
    client: &ClientId,
    actor: Actor,
    action: &str,
    request_id: &str,
    details: serde_json::Value,
) -> Result<AuditEvent> {
    let action = AuditAction::parse(action)
        .map_err(|_| PlatformError::Internal(format!("bad audit action `{action}`")))?;
    Ok(AuditEvent {
        client_id: client.clone(),
        actor,
        action,
        at: OffsetDateTime::now_utc(),
        request_id: request_id.to_owned(),
        details,
    })
}
