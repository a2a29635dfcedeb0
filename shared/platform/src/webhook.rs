//! Flow 6 (docs/design.md), the Dfns webhook receiver.
//!
//! Verified over the raw body with the webhook secret (HMAC-SHA256, constant time) and the
//! freshness of `timestampSent`; de-duplicated by delivery id; applied forward-only (the domain
//! state machines refuse to move back, so late, repeated or out-of-order events change nothing),
//! and business effects are de-duplicated on the business object too (a notification per
//! request state, per deposit). Unknown kinds are acknowledged and logged.
//!
//! With a webhook queue ([`crate::webhook_queue`], as deployed), the receiver only verifies,
//! records the delivery id and enqueues the event in its client's group: it answers in
//! milliseconds whatever the burst, and the consumer ([`consume`]) applies each client's events in
//! order, one at a time. Without one (tests of the use cases), it applies in the request.
//!
//! If enqueueing or applying fails (SQS, DynamoDB or Dfns unavailable), the delivery id is
//! forgotten and the answer is an error, so Dfns delivers again; the reconciler is the fallback
//! for anything still lost.

use dfns_client::wallets::Direction;
use dfns_client::{Activity, Approval, ApprovalId, EventData, WebhookEvent, WebhookVerifyError};
use domain::{Actor, WalletId};
use serde::Serialize;
use time::OffsetDateTime;

use crate::App;
use crate::audit::{self, actions};
use crate::destinations;
use crate::error::{PlatformError, Result};
use crate::notify::{self, Notice, kinds};

/// Dfns keeps events 31 days and may redeliver within that: keep delivery ids as long.
pub const DEDUP_RETENTION: time::Duration = time::Duration::days(32);

/// What the receiver did with a verified delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum WebhookOutcome {
    /// Applied (or found already applied: forward-only).
    Processed,
    /// Verified and queued for the consumer, which applies it.
    Queued,
    /// This delivery id was processed before.
    Duplicate,
    /// A kind (or an object) the platform does not act on; acknowledged.
    Ignored,
}

/// Why a delivery was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// Signature, body or timestamp refused: answer 401, change nothing.
    #[error("webhook refused: {0}")]
    Unverified(#[from] WebhookVerifyError),
    /// Verified, but applying it failed; Dfns should deliver again.
    #[error(transparent)]
    Processing(#[from] PlatformError),
    /// The webhook secret holds no usable webhook key (the placeholder, or too short): nothing
    /// can be verified, so nothing is applied; answer 503 so Dfns delivers again once it does.
    #[error("no usable webhook secret (placeholder or shorter than 32 bytes): deliveries refused")]
    NoUsableSecret,
}

/// Verifies, de-duplicates and applies one delivery.
pub async fn receive(
    app: &App,
    signature_header: Option<&str>,
    raw_body: &[u8],
    request_id: &str,
) -> std::result::Result<WebhookOutcome, WebhookError> {
    let Some(verifier) = app.webhook_verifier().await? else {
        crate::metrics::count(crate::metrics::WEBHOOK_SECRET_UNUSABLE);
        return Err(WebhookError::NoUsableSecret);
    };
    use crate::metrics::{self, WEBHOOK_BAD_SIGNATURE, WEBHOOK_STALE, WEBHOOK_UNPARSEABLE};
    let event = match verifier.verify(signature_header, raw_body) {
        Ok(event) => event,
        Err(WebhookVerifyError::MalformedBody(reason)) => {
            // Signed by Dfns, so authentic, but not a shape this code reads (a Dfns change?).
            // Kept on the queue: the consumer fails it into the dead-letter queue, from which it
            // is replayed once the code reads it. Without a queue, refused as before.
            metrics::count(WEBHOOK_UNPARSEABLE);
            tracing::error!(%reason, "a correctly signed webhook delivery does not parse");
            let Some(queue) = app.webhook_queue() else {
                return Err(WebhookVerifyError::MalformedBody(reason).into());
            };
            let outcome = keep_unparseable(queue, raw_body, request_id).await;
            return outcome.map_err(|error| {
                metrics::count(crate::metrics::WEBHOOK_FAILED);
                error.into()
            });
        }
        Err(error @ (WebhookVerifyError::Stale { .. } | WebhookVerifyError::FromFuture { .. })) => {
            metrics::count(WEBHOOK_STALE);
            return Err(error.into());
        }
        Err(error) => {
            metrics::count(WEBHOOK_BAD_SIGNATURE);
            return Err(error.into());
        }
    };
    let receipt = app
        .store()
        .record_webhook_event(
            event.id.as_str(),
            OffsetDateTime::now_utc(),
            DEDUP_RETENTION,
        )
        .await
        .map_err(PlatformError::from)?;
    if receipt == store::WebhookReceipt::Duplicate {
        tracing::info!(event = %event.id, kind = %event.kind, "duplicate webhook delivery acknowledged");
        return Ok(WebhookOutcome::Duplicate);
    }
    let handled = match app.webhook_queue() {
        Some(queue) => enqueue(app, queue, &event, raw_body, request_id).await,
        None => apply(app, &event, request_id).await,
    };
    match handled {
        Ok(outcome) => {
            metrics::count(crate::metrics::WEBHOOK_ACCEPTED);
            tracing::info!(event = %event.id, kind = %event.kind, ?outcome, "webhook accepted");
            Ok(outcome)
        }
        Err(error) => {
            metrics::count(crate::metrics::WEBHOOK_FAILED);
            // Let a redelivery of this id be processed again.
            if let Err(forget) = app.store().forget_webhook_event(event.id.as_str()).await {
                tracing::error!(%forget, event = %event.id, "could not forget a failed webhook event");
            }
            Err(error.into())
        }
    }
}

/// Queues a signed body that does not parse, in its own group, deduplicated by its hash.
async fn keep_unparseable(
    queue: &crate::webhook_queue::WebhookQueue,
    raw_body: &[u8],
    request_id: &str,
) -> Result<WebhookOutcome> {
    use sha2::Digest;
    let body = String::from_utf8_lossy(raw_body);
    let digest = hex::encode(sha2::Sha256::digest(raw_body));
    queue
        .send(&digest, "unparseable", &body, request_id)
        .await?;
    Ok(WebhookOutcome::Queued)
}

async fn enqueue(
    app: &App,
    queue: &crate::webhook_queue::WebhookQueue,
    event: &WebhookEvent,
    raw_body: &[u8],
    request_id: &str,
) -> Result<WebhookOutcome> {
    let body = std::str::from_utf8(raw_body)
        .map_err(|_| PlatformError::BadRequest("the body is not UTF-8".into()))?;
    let group = crate::webhook_queue::group_of(app, event).await?;
    queue
        .send(event.id.as_str(), &group, body, request_id)
        .await?;
    Ok(WebhookOutcome::Queued)
}

/// Applies one queued event (the consumer's work): the verified JSON the receiver enqueued.
/// Safe to repeat: every effect is forward-only or de-duplicated on its business object. With
/// `deferred`, the audit lines of deposits and transfer statuses are held there for the caller to
/// append with the rest of its batch ([`audit::Deferred::flush`]).
pub async fn consume(
    app: &App,
    body: &str,
    request_id: &str,
    deferred: Option<&audit::Deferred>,
) -> Result<WebhookOutcome> {
    let event: WebhookEvent = serde_json::from_str(body).map_err(|e| {
        PlatformError::Internal(format!("a queued webhook event does not parse: {e}"))
    })?;
    let outcome = apply_deferring(app, &event, request_id, deferred).await?;
    tracing::info!(event = %event.id, kind = %event.kind, ?outcome, "queued webhook event applied");
    Ok(outcome)
}

/// Applies a verified event.
pub async fn apply(app: &App, event: &WebhookEvent, request_id: &str) -> Result<WebhookOutcome> {
    apply_deferring(app, event, request_id, None).await
}

async fn apply_deferring(
    app: &App,
    event: &WebhookEvent,
    request_id: &str,
    deferred: Option<&audit::Deferred>,
) -> Result<WebhookOutcome> {
    let from_dfns = || Actor::Dfns {
        id: event.id.to_string(),
    };
    match &event.data {
        EventData::ApprovalResolved {
            approval,
            activity_id,
        } => {
            let approval = match (approval, activity_id) {
                (Some(approval), _) => (**approval).clone(),
                // One documented shape carries only an id: read the approval.
                (None, Some(id)) => {
                    app.dfns_reader()
                        .await?
                        .get_approval(&ApprovalId::new(id.clone()))
                        .await?
                }
                (None, None) => {
                    tracing::warn!(event = %event.id, "approval event without approval");
                    return Ok(WebhookOutcome::Ignored);
                }
            };
            on_approval(app, &approval, from_dfns(), request_id).await
        }
        EventData::ApprovalPending(approval) => {
            let Activity::PoliciesModify { change_request } = &approval.activity else {
                return Ok(WebhookOutcome::Ignored);
            };
            let Some(request) = app
                .store()
                .find_destination_request_by_change_request_id(change_request.id.as_str())
                .await?
            else {
                return Ok(WebhookOutcome::Ignored);
            };
            let mut change = (**change_request).clone();
            change
                .approval_id
                .get_or_insert_with(|| approval.id.clone());
            destinations::mark_pending(app, &request, &change, request_id).await?;
            Ok(WebhookOutcome::Processed)
        }
        EventData::BlockchainEventDetected(chain_event) => {
            if chain_event.direction != Direction::In {
                return Ok(WebhookOutcome::Ignored);
            }
            let Ok(wallet_id) = WalletId::parse(chain_event.wallet_id.as_str()) else {
                return Ok(WebhookOutcome::Ignored);
            };
            let Some(mapping) = app.store().find_wallet(&wallet_id).await? else {
                tracing::info!(wallet = %wallet_id, "deposit to a wallet no client holds");
                return Ok(WebhookOutcome::Ignored);
            };
            let client = mapping.client_id;
            let (asset_kind, contract, from) = match &chain_event.kind {
                dfns_client::wallets::BlockchainEventKind::NativeTransfer { from, .. } => {
                    ("Native", None, from.clone())
                }
                dfns_client::wallets::BlockchainEventKind::Erc20Transfer {
                    contract, from, ..
                } => ("Erc20", Some(contract.clone()), Some(from.clone())),
                _ => ("Other", None, None),
            };
            let detail = serde_json::json!({
                "walletId": wallet_id,
                "network": mapping.address.network(),
                "txHash": chain_event.tx_hash,
                "kind": asset_kind,
                "contract": contract,
                "from": from,
                "amount": chain_event.value.as_ref().map(|v| v.to_string()),
                "symbol": chain_event.metadata.asset.symbol,
                "decimals": chain_event.metadata.asset.decimals,
                "timestamp": chain_event.timestamp.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            });
            let index = chain_event
                .index
                .as_ref()
                .map(|i| i.to_string())
                .unwrap_or_default();
            // One deposit, one notification and one audit line, however often Dfns reports it
            // (each report has its own event id) and wherever an earlier delivery stopped.
            let deposit = format!("deposit:{wallet_id}:{}:{index}", chain_event.tx_hash);
            notify::notify(
                app,
                Notice {
                    client_id: client.clone(),
                    dedup_key: deposit.clone(),
                    kind: kinds::DEPOSIT_RECEIVED,
                    occurred_at: chain_event.timestamp,
                    detail: detail.clone(),
                },
            )
            .await?;
            audit::record_once_or_defer(
                app,
                deferred,
                &client,
                &deposit,
                from_dfns(),
                actions::DEPOSIT_RECEIVED,
                request_id,
                detail,
            )
            .await?;
            Ok(WebhookOutcome::Processed)
        }
        EventData::Transfer(transfer) => {
            // The client's trail records every transfer status; an order sent as this transfer
            // (its externalId) follows it, forward only.
            let Ok(wallet_id) = WalletId::parse(transfer.wallet_id.as_str()) else {
                return Ok(WebhookOutcome::Ignored);
            };
            let Some(mapping) = app.store().find_wallet(&wallet_id).await? else {
                return Ok(WebhookOutcome::Ignored);
            };
            crate::trading::on_transfer_event(app, transfer, from_dfns(), request_id).await?;
            // Once per transfer status: Dfns may report one status in several events.
            audit::record_once_or_defer(
                app,
                deferred,
                &mapping.client_id,
                &format!("transfer:{}:{}", transfer.id, transfer.status),
                from_dfns(),
                actions::TRANSFER_STATUS,
                request_id,
                serde_json::json!({
                    "transferId": transfer.id,
                    "walletId": wallet_id,
                    "status": transfer.status,
                    "externalId": transfer.external_id,
                    "txHash": transfer.tx_hash,
                    "reason": transfer.reason,
                    "eventKind": event.kind,
                }),
            )
            .await?;
            Ok(WebhookOutcome::Processed)
        }
        _ => {
            tracing::info!(event = %event.id, kind = %event.kind, "webhook kind not acted on; acknowledged");
            Ok(WebhookOutcome::Ignored)
        }
    }
}

/// Applies an approval's state to the destination request waiting on it, if any.
pub async fn on_approval(
    app: &App,
    approval: &Approval,
    fallback_actor: Actor,
    request_id: &str,
) -> Result<WebhookOutcome> {
    let store = app.store();
    let mut request = store
        .find_destination_request_by_approval_id(approval.id.as_str())
        .await?;
    if request.is_none() {
        if let Activity::PoliciesModify { change_request } = &approval.activity {
            request = store
                .find_destination_request_by_change_request_id(change_request.id.as_str())
                .await?;
        }
    }
    let Some(request) = request else {
        tracing::info!(approval = %approval.id, "approval not tied to a destination request");
        return Ok(WebhookOutcome::Ignored);
    };
    // Re-read from the table: the index may lag behind the request's latest state.
    let Some(request) = store
        .get_destination_request(&request.client_id, &request.id)
        .await?
    else {
        return Ok(WebhookOutcome::Ignored);
    };
    let actor = approval
        .decisions
        .last()
        .map(|d| Actor::Compliance {
            id: d.user_id.to_string(),
        })
        .unwrap_or(fallback_actor);
    destinations::resolve_from_approval(app, &request, approval, actor, request_id).await?;
    Ok(WebhookOutcome::Processed)
}
