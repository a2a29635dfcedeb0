//! The compliance officers' side of an approval (issue 18): what the platform knows about the
//! thing an approval decides, every officer decision in the client's audit chain, and the
//! officers' alerts.
//!
//! - [`subject_of`]: the platform's object an approval decides: a destination request (a
//!   `Policies:Modify` approval, by approval or change-request id) or an order (a `Wallets:Sign`
//!   approval of a transfer whose `externalId` is the order id, from that client's own wallet).
//! - [`context_of`]: that object described for an officer ([`ApprovalContext`]): client, request,
//!   order or withdrawal id, who asked and when, the label, the exact change with its network, a
//!   transfer's amount in the asset and in USD, how long it has waited and when it expires. The
//!   `compliance` CLI prints it; the officers' events carry it.
//! - [`record_resolution`]: a decided approval in the client's audit chain: one
//!   `compliance.decision` line per officer decision (officer, decision, reason, time) and a
//!   `compliance.approval_expired` line for an expiry, each once however often the approval is
//!   reported (webhook, reconciler, in-flight refresh); the client of a withdrawal or order is
//!   notified once (`compliance.approval_resolved`; a destination request's client is notified by
//!   the request's own `destination_request.approved` / `.rejected`).
//! - [`alert_officers`]: the officers' event on the bus (source [`OFFICERS_EVENT_SOURCE`]) when an
//!   approval is pending, and a reminder once half of its time to expiry has passed; each once per
//!   approval.

use dfns_client::{Activity, Approval, ApprovalId, ApprovalStatus, DfnsClient};
use domain::{Actor, ClientId, OrderId, WalletId};
use serde::Serialize;
use store::{DestinationRequest, Order, OrderKind, Store};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::App;
use crate::audit;
use crate::error::Result;
use crate::notify::{self, Notice, kinds};
use crate::trading::usd::Usd;

/// Audit action of one officer's decision on an approval.
pub const DECISION: &str = "compliance.decision";
/// Audit action of an approval that expired undecided (Dfns auto-rejected it).
pub const EXPIRED: &str = "compliance.approval_expired";

/// `source` of the officers' events (a rule forwards them to the officers' SNS topic).
pub const OFFICERS_EVENT_SOURCE: &str = "managed-accounts.compliance";
/// `detail-type` of the officers' event for an approval waiting on them.
pub const APPROVAL_PENDING: &str = "compliance.approval_pending";
/// `detail-type` of the reminder, once half of the approval's time to expiry has passed.
pub const APPROVAL_REMINDER: &str = "compliance.approval_reminder";

/// How long an alert's once-marker is kept (longer than any approval's life).
const ALERT_MARKER_RETENTION: time::Duration = time::Duration::days(32);

/// The platform's object an approval decides.
#[derive(Debug, Clone)]
pub enum Subject {
    Destination(DestinationRequest),
    Order(Order),
}

impl Subject {
    pub fn client_id(&self) -> &ClientId {
        match self {
            Subject::Destination(request) => &request.client_id,
            Subject::Order(order) => &order.client_id,
        }
    }

    /// `destination_request`, `withdrawal` or `order`.
    pub fn kind(&self) -> &'static str {
        match self {
            Subject::Destination(_) => "destination_request",
            Subject::Order(order) if order.kind == OrderKind::Withdrawal => "withdrawal",
            Subject::Order(_) => "order",
        }
    }

    pub fn id(&self) -> String {
        match self {
            Subject::Destination(request) => request.id.to_string(),
            Subject::Order(order) => order.id.to_string(),
        }
    }
}

/// The platform's object `approval` decides, read from the table (strongly consistent), if any.
pub async fn subject_of(store: &Store, approval: &Approval) -> Result<Option<Subject>> {
    match &approval.activity {
        Activity::PoliciesModify { change_request } => {
            let mut found = store
                .find_destination_request_by_approval_id(approval.id.as_str())
                .await?;
            if found.is_none() {
                found = store
                    .find_destination_request_by_change_request_id(change_request.id.as_str())
                    .await?;
            }
            let Some(found) = found else {
                return Ok(None);
            };
            // The index may lag behind the request's latest state.
            Ok(store
                .get_destination_request(&found.client_id, &found.id)
                .await?
                .map(Subject::Destination))
        }
        Activity::WalletsSign {
            transfer_request: Some(transfer),
            ..
        } => {
            let Some(order_id) = transfer
                .external_id
                .as_ref()
                .and_then(|e| OrderId::parse(e.as_str()).ok())
            else {
                return Ok(None);
            };
            let Some(order) = store.get_order(&order_id).await? else {
                return Ok(None);
            };
            // Only the order's own client's wallet may speak for it.
            let owner = match WalletId::parse(transfer.wallet_id.as_str()) {
                Ok(wallet) => store.find_wallet(&wallet).await?,
                Err(_) => None,
            };
            if owner.is_none_or(|w| w.client_id != order.client_id) {
                tracing::warn!(approval = %approval.id, order = %order_id, "an approval's transfer names an order of another client; ignored");
                return Ok(None);
            }
            Ok(Some(Subject::Order(order)))
        }
        _ => Ok(None),
    }
}

/// Who asked for what an approval decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestedBy {
    /// `client` (a destination request, a withdrawal) or `desk` (an order).
    pub kind: &'static str,
    /// The client id, or the operator's subject.
    pub id: String,
}

/// A destination change, exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeContext {
    /// `add` or `remove`.
    pub action: String,
    pub network: String,
    pub address: String,
}

/// A transfer, exactly: amounts are integer strings in the asset's smallest units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferContext {
    pub network: String,
    /// The recipient address.
    pub to: Option<String>,
    /// `native` or a token contract (a withdrawal), or the exchange's asset symbol (an order).
    pub asset: String,
    /// The asset's symbol as Dfns reports it.
    pub symbol: Option<String>,
    pub decimals: Option<u32>,
    pub amount: String,
    /// USD value (decimal string) at the transfer's quote, or Dfns' own valuation; absent when
    /// neither is known.
    pub usd: Option<String>,
    /// The destination's label (a withdrawal: the client's label; an order: the exchange).
    pub destination_label: Option<String>,
    pub transfer_id: Option<String>,
}

/// An approval with the platform's context, for an officer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalContext {
    pub approval_id: String,
    /// Dfns' status of the approval.
    pub status: String,
    pub client_id: String,
    /// `destination_request`, `withdrawal` or `order`.
    pub subject: &'static str,
    /// The request's, withdrawal's or order's id.
    pub subject_id: String,
    /// Its state on the platform (a client may have cancelled it since).
    pub state: String,
    pub requested_by: RequestedBy,
    /// RFC 3339.
    pub requested_at: String,
    pub label: Option<String>,
    /// A destination request's change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<ChangeContext>,
    /// A withdrawal's or order's transfer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer: Option<TransferContext>,
    /// When Dfns opened the approval (RFC 3339), if it says.
    pub pending_since: Option<String>,
    /// Seconds since the approval opened (or since the request, if Dfns does not say).
    pub waited_seconds: i64,
    /// When the approval expires (RFC 3339); absent: never.
    pub expires_at: Option<String>,
    /// The decisions so far.
    pub decisions: Vec<DecisionView>,
}

/// One officer's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionView {
    pub officer: String,
    pub decision: String,
    pub reason: Option<String>,
    /// RFC 3339.
    pub at: String,
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

fn decisions(approval: &Approval) -> Vec<DecisionView> {
    approval
        .decisions
        .iter()
        .map(|d| DecisionView {
            officer: d.user_id.to_string(),
            decision: d.value.to_string(),
            reason: d.reason.clone(),
            at: rfc3339(d.date),
        })
        .collect()
}

/// The transfer's USD value: amount × the quote Dfns attached to it, else Dfns' own valuation in
/// the policy evaluation's context (`transactionAmount`).
fn usd_of(approval: &Approval) -> Option<String> {
    let from_quote = match &approval.activity {
        Activity::WalletsSign {
            transfer_request: Some(transfer),
            ..
        } => crate::trading::preview::PastTransfer::from_transfer(transfer).value_usd,
        _ => None,
    };
    from_quote.map(|usd: Usd| usd.to_string()).or_else(|| {
        approval.policy_evaluations.iter().find_map(|e| {
            let amount = e.context.as_ref()?.get("transactionAmount")?;
            (amount.get("currency")?.as_str()? == "USD")
                .then(|| amount.get("value")?.as_str().map(str::to_owned))?
        })
    })
}

/// The label the client gave `address` on `network` (its latest request naming it).
async fn client_label(
    store: &Store,
    client: &ClientId,
    network: domain::Network,
    address: &str,
) -> Result<Option<String>> {
    let requests = store.list_destination_requests(client).await?;
    Ok(requests
        .iter()
        .rev()
        .find(|r| {
            r.destination.network() == network && r.destination.address().canonical() == address
        })
        .map(|r| r.label.clone()))
}

/// `approval` with the platform's context; `None` when it decides nothing of the platform's.
pub async fn context_of(
    store: &Store,
    approval: &Approval,
    now: OffsetDateTime,
) -> Result<Option<ApprovalContext>> {
    let Some(subject) = subject_of(store, approval).await? else {
        return Ok(None);
    };
    let (requested_by, requested_at, state, label, change, transfer) = match &subject {
        Subject::Destination(request) => (
            RequestedBy {
                kind: "client",
                id: request.client_id.to_string(),
            },
            request.created_at,
            request.state.to_string(),
            Some(request.label.clone()),
            Some(ChangeContext {
                action: match request.action {
                    domain::DestinationAction::Add => "add",
                    domain::DestinationAction::Remove => "remove",
                }
                .to_owned(),
                network: request.destination.network().to_string(),
                address: request.destination.address().canonical(),
            }),
            None,
        ),
        Subject::Order(order) => {
            let dfns_transfer = match &approval.activity {
                Activity::WalletsSign {
                    transfer_request: Some(transfer),
                    ..
                } => Some(transfer),
                _ => None,
            };
            let body = dfns_transfer
                .and_then(|t| serde_json::to_value(&t.request_body).ok())
                .unwrap_or_default();
            let to = order
                .to
                .clone()
                .or_else(|| body["to"].as_str().map(str::to_owned));
            let destination_label = match order.kind {
                OrderKind::Withdrawal => match &to {
                    Some(to) => client_label(store, &order.client_id, order.network, to).await?,
                    None => None,
                },
                OrderKind::Exchange => Some(order.exchange.clone()),
            };
            let requested_by = match order.kind {
                OrderKind::Withdrawal => RequestedBy {
                    kind: "client",
                    id: order.client_id.to_string(),
                },
                OrderKind::Exchange => RequestedBy {
                    kind: "desk",
                    id: order.created_by.clone(),
                },
            };
            let asset = dfns_transfer.map(|t| &t.metadata.asset);
            (
                requested_by,
                order.created_at,
                order.state.to_string(),
                destination_label.clone(),
                None,
                Some(TransferContext {
                    network: order.network.to_string(),
                    to,
                    asset: order.asset.clone(),
                    symbol: asset.and_then(|a| a.symbol.clone()),
                    decimals: asset.and_then(|a| a.decimals),
                    amount: order.amount.to_string(),
                    usd: usd_of(approval),
                    destination_label,
                    transfer_id: dfns_transfer
                        .map(|t| t.id.to_string())
                        .or_else(|| order.transfer_id.clone()),
                }),
            )
        }
    };
    let since = approval.date_created.unwrap_or(requested_at);
    Ok(Some(ApprovalContext {
        approval_id: approval.id.to_string(),
        status: approval.status.to_string(),
        client_id: subject.client_id().to_string(),
        subject: subject.kind(),
        subject_id: subject.id(),
        state,
        requested_by,
        requested_at: rfc3339(requested_at),
        label,
        change,
        transfer,
        pending_since: approval.date_created.map(rfc3339),
        waited_seconds: (now - since).whole_seconds().max(0),
        expires_at: approval.expiration_date.map(rfc3339),
        decisions: decisions(approval),
    }))
}

/// Records a decided approval in its client's audit chain and tells the client, once per fact
/// however often it is reported: one `compliance.decision` line per officer decision (officer,
/// decision, reason, time), a `compliance.approval_expired` line for an expiry, and one
/// `compliance.approval_resolved` notification. Nothing while the approval is pending. Returns
/// whether this call recorded anything.
pub async fn record_resolution(
    app: &App,
    subject: &Subject,
    approval: &Approval,
    request_id: &str,
) -> Result<bool> {
    if approval.status == ApprovalStatus::Pending {
        return Ok(false);
    }
    let client = subject.client_id();
    let mut recorded = false;
    for decision in &approval.decisions {
        recorded |= audit::record_once(
            app,
            client,
            &format!("approval:{}:decision:{}", approval.id, decision.user_id),
            Actor::Compliance {
                id: decision.user_id.to_string(),
            },
            DECISION,
            request_id,
            serde_json::json!({
                "approvalId": approval.id,
                "subject": subject.kind(),
                "subjectId": subject.id(),
                "officer": decision.user_id,
                "decision": decision.value,
                "reason": decision.reason,
                "decidedAt": rfc3339(decision.date),
            }),
        )
        .await?;
    }
    let resolved_at = approval
        .date_resolved
        .or(approval.expiration_date)
        .or(approval.date_updated)
        .unwrap_or_else(OffsetDateTime::now_utc);
    if approval.status == ApprovalStatus::Expired {
        recorded |= audit::record_once(
            app,
            client,
            &format!("approval:{}:Expired", approval.id),
            Actor::Dfns {
                id: approval.id.to_string(),
            },
            EXPIRED,
            request_id,
            serde_json::json!({
                "approvalId": approval.id,
                "subject": subject.kind(),
                "subjectId": subject.id(),
                "expiredAt": rfc3339(resolved_at),
                "reason": "no officer decided before the approval expired",
            }),
        )
        .await?;
    }
    // A destination request's client hears of the outcome from the request itself
    // (`destination_request.approved` / `.rejected`, with the officer's reason); a transfer's
    // client from this notice, whatever the order's kind.
    if matches!(subject, Subject::Destination(_)) {
        return Ok(recorded);
    }
    notify::notify(
        app,
        Notice {
            client_id: client.clone(),
            dedup_key: format!("approval:{}:{}", approval.id, approval.status),
            kind: kinds::APPROVAL_RESOLVED,
            occurred_at: resolved_at,
            detail: serde_json::json!({
                "approvalId": approval.id,
                "status": approval.status,
                "subject": subject.kind(),
                "subjectId": subject.id(),
                "decisions": decisions(approval),
                "resolvedAt": rfc3339(resolved_at),
            }),
        },
    )
    .await?;
    Ok(recorded)
}

/// Reads approval `id` and, if decided and about a platform object, records it
/// ([`record_resolution`]); if still pending, alerts the officers ([`alert_officers`]). The
/// fallback for a lost approval webhook (the in-flight refresh, a transfer's own events).
pub async fn follow_approval(
    app: &App,
    dfns: &DfnsClient,
    id: &str,
    now: OffsetDateTime,
    request_id: &str,
) -> Result<()> {
    let approval = dfns.get_approval(&ApprovalId::new(id)).await?;
    if approval.status == ApprovalStatus::Pending {
        alert_officers(app, &approval, now).await?;
        return Ok(());
    }
    if let Some(subject) = subject_of(app.store(), &approval).await? {
        record_resolution(app, &subject, &approval, request_id).await?;
    }
    Ok(())
}

/// When the officers are reminded of a pending approval: half-way to its expiry (none without
/// one).
pub fn reminder_at(approval: &Approval) -> Option<OffsetDateTime> {
    let created = approval.date_created?;
    let expires = approval.expiration_date?;
    Some(created + (expires - created) / 2)
}

/// What [`alert_officers`] published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Alerted {
    pub pending: bool,
    pub reminder: bool,
}

/// Tells the officers of a pending approval (once per approval) and, once `now` is past
/// [`reminder_at`], reminds them (once). Publishes on the notification bus with
/// [`OFFICERS_EVENT_SOURCE`], the detail being the [`ApprovalContext`]. Approvals that decide
/// nothing of the platform's are left to the Dfns dashboard.
pub async fn alert_officers(
    app: &App,
    approval: &Approval,
    now: OffsetDateTime,
) -> Result<Alerted> {
    let mut alerted = Alerted::default();
    if approval.status != ApprovalStatus::Pending {
        return Ok(alerted);
    }
    let Some(context) = context_of(app.store(), approval, now).await? else {
        return Ok(alerted);
    };
    alerted.pending = publish_once(app, APPROVAL_PENDING, &context, now).await?;
    if reminder_at(approval).is_some_and(|at| now >= at) {
        alerted.reminder = publish_once(app, APPROVAL_REMINDER, &context, now).await?;
    }
    Ok(alerted)
}

/// Publishes the officers' event `detail_type` for this approval unless it was published before
/// (a once-marker in the table, forgotten again if the bus refuses, so the next report retries).
async fn publish_once(
    app: &App,
    detail_type: &str,
    context: &ApprovalContext,
    now: OffsetDateTime,
) -> Result<bool> {
    let marker = format!("officer-alert:{}:{detail_type}", context.approval_id);
    let store = app.store();
    let receipt = store
        .record_webhook_event(&marker, now, ALERT_MARKER_RETENTION)
        .await?;
    if receipt == store::WebhookReceipt::Duplicate {
        return Ok(false);
    }
    let detail = serde_json::to_value(context)
        .map_err(|e| crate::PlatformError::Internal(format!("approval context: {e}")))?;
    if let Err(error) =
        notify::publish_event(app, OFFICERS_EVENT_SOURCE, detail_type, &detail).await
    {
        store.forget_webhook_event(&marker).await?;
        return Err(crate::PlatformError::Internal(format!(
            "officers' event not published: {error}"
        )));
    }
    tracing::info!(approval = %context.approval_id, detail_type, "officers alerted");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval(created: &str, expires: Option<&str>) -> Approval {
        serde_json::from_value(serde_json::json!({
            "id": "ap-1",
            "initiatorId": "us-1",
            "status": "Pending",
            "activity": {"kind": "Wallets:Sign"},
            "dateCreated": created,
            "expirationDate": expires,
        }))
        .unwrap()
    }

    #[test]
    fn the_reminder_is_half_way_to_the_expiry() {
        let a = approval("2024-01-01T00:00:00Z", Some("2024-01-04T00:00:00Z"));
        assert_eq!(
            reminder_at(&a).map(rfc3339).as_deref(),
            Some("2024-01-02T12:00:00Z")
        );
        let never = approval("2024-01-01T00:00:00Z", None);
        assert_eq!(reminder_at(&never), None);
    }
}
