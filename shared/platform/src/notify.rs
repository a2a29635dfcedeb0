//! Telling a client: a domain event on the EventBridge bus (email, SMS or push subscribe there)
//! and an entry in the client's notification list.
//!
//! Idempotent: each notice carries a de-duplication key naming the business event
//! (`destination-request:<id>:Approved`, `deposit:<wallet>:<tx>:<index>`), so the same webhook
//! twice, or a webhook and the reconciler, give one notification. Stored first, then published,
//! then marked published: a publish that fails is retried by the next delivery of the same event
//! (at least once on the bus, exactly once in the list).

use domain::ClientId;
use store::notifications::{NewNotification, Notification};
use time::OffsetDateTime;

use crate::App;
use crate::error::Result;

/// `source` of every event the platform publishes.
pub const EVENT_SOURCE: &str = "managed-accounts.platform";

/// Notification kinds (also the events' `detail-type`).
pub mod kinds {
    pub const DESTINATION_APPROVED: &str = "destination_request.approved";
    pub const DESTINATION_REJECTED: &str = "destination_request.rejected";
    pub const DESTINATION_FAILED: &str = "destination_request.failed";
    /// A queued destination request waited longer than `QUEUED_REQUEST_TTL` and was cancelled.
    pub const DESTINATION_EXPIRED: &str = "destination_request.expired";
    /// A new destination started its cooling-off: it goes to compliance at `usableFrom` unless
    /// the client vetoes it (`POST /v1/destination-requests/{id}/veto`) before.
    pub const DESTINATION_COOLING_OFF: &str = "destination_request.cooling_off";
    /// The client vetoed a destination during its cooling-off: it never went to Dfns.
    pub const DESTINATION_VETOED: &str = "destination_request.vetoed";
    pub const DEPOSIT_RECEIVED: &str = "deposit.received";
    /// Compliance decided (approved, denied) an approval on the client's withdrawal or order, or
    /// it expired undecided: who decided, what, why and when. (A destination request's outcome is
    /// its own `destination_request.*` notice.)
    pub const APPROVAL_RESOLVED: &str = "compliance.approval_resolved";
}

/// Something to tell a client.
#[derive(Debug, Clone)]
pub struct Notice {
    pub client_id: ClientId,
    pub dedup_key: String,
    pub kind: &'static str,
    pub occurred_at: OffsetDateTime,
    pub detail: serde_json::Value,
}

/// Outcome of [`notify`].
#[derive(Debug, Clone)]
pub struct Notified {
    pub notification: Notification,
    /// Stored by this call (false: an earlier call stored it).
    pub created: bool,
}

/// Stores the notice (once) and publishes it (until it is published). A bus failure is logged,
/// not returned: the notification is kept and the next delivery of the event publishes it.
pub async fn notify(app: &App, notice: Notice) -> Result<Notified> {
    let appended = app
        .store()
        .append_notification(&NewNotification {
            client_id: notice.client_id.clone(),
            dedup_key: notice.dedup_key,
            kind: notice.kind.to_owned(),
            occurred_at: notice.occurred_at,
            detail: notice.detail,
        })
        .await?;
    let created = matches!(
        appended,
        store::notifications::NotificationAppend::Created(_)
    );
    let mut notification = appended.notification().clone();
    if notification.published {
        return Ok(Notified {
            notification,
            created,
        });
    }
    match publish(app, &notification).await {
        Ok(()) => {
            app.store()
                .mark_notification_published(&notification.client_id, &notification.id)
                .await?;
            notification.published = true;
        }
        Err(error) => {
            tracing::error!(%error, notification = %notification.id, kind = %notification.kind, "notification not published; kept for the next attempt");
        }
    }
    Ok(Notified {
        notification,
        created,
    })
}

async fn publish(app: &App, notification: &Notification) -> std::result::Result<(), String> {
    let detail = serde_json::json!({
        "notificationId": notification.id,
        "clientId": notification.client_id,
        "kind": notification.kind,
        "occurredAt": notification
            .occurred_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        "detail": notification.detail,
    });
    publish_event(app, EVENT_SOURCE, &notification.kind, &detail).await
}

/// Puts one event on the notification bus (`EVENT_BUS_NAME`).
pub async fn publish_event(
    app: &App,
    source: &str,
    detail_type: &str,
    detail: &serde_json::Value,
) -> std::result::Result<(), String> {
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .event_bus_name(&app.settings().event_bus_name)
        .source(source)
        .detail_type(detail_type)
        .detail(detail.to_string())
        .build();
    let output = app
        .eventbridge()
        .put_events()
        .entries(entry)
        .send()
        .await
        .map_err(|e| aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string())?;
    if output.failed_entry_count() > 0 {
        let reason = output
            .entries()
            .iter()
            .find_map(|e| e.error_code().map(str::to_owned))
            .unwrap_or_else(|| "unknown".to_owned());
        return Err(format!("event rejected by the bus: {reason}"));
    }
    Ok(())
}
