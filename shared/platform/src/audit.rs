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
    let action = AuditAction::parse(action)
        .map_err(|_| PlatformError::Internal(format!("bad audit action `{action}`")))?;
    app.store()
        .append_audit_event(&AuditEvent {
            client_id: client.clone(),
            actor,
            action,
            at: OffsetDateTime::now_utc(),
            request_id: request_id.to_owned(),
            details,
        })
        .await?;
    Ok(())
}
