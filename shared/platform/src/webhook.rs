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
use crate::compliance;
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
    /// A deposit to a wallet no client holds yet: kept, and applied when the mapping appears.
    Kept,
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
    use crate::metrics::{self, WEBHOOK_BAD_SIGNATURE, WEBHOOK_STALE, WEBHOOK_UNPARSEABLE};
    // A delivery without a well-formed signature is refused before the secret is read: a flood
    // of unsigned requests costs no Secrets Manager call, and a cold start answers it at once.
    if let Err(error) = dfns_client::webhooks::signature_digest(signature_header) {
        metrics::count(WEBHOOK_BAD_SIGNATURE);
        return Err(error.into());
    }
    let Some(verifier) = app.webhook_verifier().await? else {
        metrics::count(metrics::WEBHOOK_SECRET_UNUSABLE);
        return Err(WebhookError::NoUsableSecret);
    };
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
        None => match std::str::from_utf8(raw_body) {
            Ok(raw) => apply(app, &event, raw, request_id).await,
            Err(_) => Err(PlatformError::BadRequest("the body is not UTF-8".into())),
        },
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
    let outcome = apply_deferring(app, &event, body, request_id, deferred).await?;
    tracing::info!(event = %event.id, kind = %event.kind, ?outcome, "queued webhook event applied");
    Ok(outcome)
}

/// Applies a verified event (`raw`: its JSON, kept as is if its wallet is not mapped yet).
pub async fn apply(
    app: &App,
    event: &WebhookEvent,
    raw: &str,
    request_id: &str,
) -> Result<WebhookOutcome> {
    apply_deferring(app, event, raw, request_id, None).await
}

async fn apply_deferring(
    app: &App,
    event: &WebhookEvent,
    raw: &str,
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
            if let Activity::PoliciesModify { change_request } = &approval.activity {
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
            }
            // The officers hear of it, with the platform's context (once per approval).
            let alerted =
                compliance::alert_officers(app, approval, OffsetDateTime::now_utc()).await?;
            Ok(
                if alerted.pending || matches!(approval.activity, Activity::PoliciesModify { .. }) {
                    WebhookOutcome::Processed
                } else {
                    WebhookOutcome::Ignored
                },
            )
        }
        EventData::BlockchainEventDetected(chain_event) => {
            let Ok(wallet_id) = WalletId::parse(chain_event.wallet_id.as_str()) else {
                return Ok(WebhookOutcome::Ignored);
            };
            let Some(mapping) = app.store().find_wallet(&wallet_id).await? else {
                if chain_event.direction != Direction::In {
                    return Ok(WebhookOutcome::Ignored);
                }
                return keep_unmapped(app, &wallet_id, event, raw, request_id).await;
            };
            let client = mapping.client_id;
            // The client's activity row, either direction (an `Out` one of our own transfer is
            // folded into the transfer's row).
            crate::reporting::read_model::record_chain(app.store(), &client, chain_event).await?;
            if chain_event.direction != Direction::In {
                return Ok(WebhookOutcome::Processed);
            }
            let (asset_kind, contract, from) = match &chain_event.kind {
                dfns_client::wallets::BlockchainEventKind::NativeTransfer { from, .. } => {
                    ("Native", None, from.clone())
                }
                dfns_client::wallets::BlockchainEventKind::Erc20Transfer {
                    contract, from, ..
                } => ("Erc20", Some(contract.clone()), Some(from.clone())),
                // An SPL token's mint in the token field, as a contract.
                dfns_client::wallets::BlockchainEventKind::SplTransfer { mint, from, .. } => {
                    ("Spl", Some(mint.clone()), from.clone())
                }
                dfns_client::wallets::BlockchainEventKind::Spl2022Transfer {
                    mint, from, ..
                } => ("Spl2022", Some(mint.clone()), from.clone()),
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
            // The client's activity row, moved forward only.
            crate::reporting::read_model::record_transfer(
                app.store(),
                &mapping.client_id,
                transfer,
            )
            .await?;
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

/// How long a deposit to an unmapped wallet is kept (as long as Dfns keeps its events).
pub const KEPT_EVENT_RETENTION: time::Duration = DEDUP_RETENTION;

/// How far back the reconciler's sweep looks for kept deposits whose wallet got mapped since.
/// Signing up attaches a wallet's kept deposits itself (read right after the mapping, strongly
/// consistent); the sweep covers the race where this side read the wallet index (eventually
/// consistent) just before the mapping landed there.
pub const KEPT_EVENT_SWEEP: time::Duration = time::Duration::hours(1);

/// A deposit to a wallet no client holds (yet): kept, counted, and attached when the mapping
/// appears (signup, or the reconciler's sweep). Never dropped silently.
async fn keep_unmapped(
    app: &App,
    wallet_id: &WalletId,
    event: &WebhookEvent,
    raw: &str,
    request_id: &str,
) -> Result<WebhookOutcome> {
    app.store()
        .keep_unmapped_event(
            &store::KeptEvent {
                wallet_id: wallet_id.to_string(),
                event_id: event.id.to_string(),
                body: raw.to_owned(),
                kept_at: OffsetDateTime::now_utc(),
            },
            KEPT_EVENT_RETENTION,
        )
        .await?;
    crate::metrics::count(crate::metrics::WEBHOOK_UNMAPPED_KEPT);
    tracing::warn!(wallet = %wallet_id, event = %event.id, "deposit to a wallet no client holds yet: kept");
    // The mapping may have landed while this was being kept: attach now rather than wait.
    if app.store().find_wallet(wallet_id).await?.is_some() {
        attach_kept(app, wallet_id, request_id).await?;
        return Ok(WebhookOutcome::Processed);
    }
    Ok(WebhookOutcome::Kept)
}

/// Applies the deposits kept for `wallet_id` now that a client holds it, then forgets them.
/// Safe to run twice, or beside the consumer: a deposit's effects are once-keyed. Returns how many
/// were applied.
pub async fn attach_kept(app: &App, wallet_id: &WalletId, request_id: &str) -> Result<usize> {
    let store = app.store();
    let kept = store.kept_events_of_wallet(wallet_id.as_str()).await?;
    for event in &kept {
        // Boxed: applying may keep, which attaches (recursion through an async fn).
        Box::pin(consume(app, &event.body, request_id, None)).await?;
        store
            .drop_kept_event(&event.wallet_id, &event.event_id)
            .await?;
        tracing::info!(wallet = %wallet_id, event = %event.event_id, "kept deposit attached");
    }
    Ok(kept.len())
}

/// The reconciler's sweep: attaches deposits kept in the last [`KEPT_EVENT_SWEEP`] whose wallet is
/// mapped by now (at most `limit` kept events looked at). Returns how many were attached.
pub async fn attach_recently_kept(app: &App, request_id: &str, limit: usize) -> Result<usize> {
    let since = OffsetDateTime::now_utc() - KEPT_EVENT_SWEEP;
    let kept = app.store().kept_events_since(since, limit).await?;
    let mut wallets: Vec<&str> = kept.iter().map(|e| e.wallet_id.as_str()).collect();
    wallets.sort_unstable();
    wallets.dedup();
    let mut attached = 0;
    for wallet in wallets {
        let Ok(wallet_id) = WalletId::parse(wallet) else {
            continue;
        };
        if app.store().find_wallet(&wallet_id).await?.is_some() {
            attached += attach_kept(app, &wallet_id, request_id).await?;
        }
    }
    Ok(attached)
}

/// Applies a decided approval to what it decides: the destination request waiting on it moves
/// (forward only), and every officer decision (or the expiry) lands in the client's audit chain
/// and is notified, once ([`compliance::record_resolution`]). A transfer's approval moves its
/// order through the transfer's own events; here only the decisions are recorded.
pub async fn on_approval(
    app: &App,
    approval: &Approval,
    fallback_actor: Actor,
    request_id: &str,
) -> Result<WebhookOutcome> {
    let Some(subject) = compliance::subject_of(app.store(), approval).await? else {
        tracing::info!(approval = %approval.id, "approval not tied to a platform object");
        return Ok(WebhookOutcome::Ignored);
    };
    compliance::record_resolution(app, &subject, approval, request_id).await?;
    if let compliance::Subject::Destination(request) = &subject {
        let actor = approval
            .decisions
            .last()
            .map(|d| Actor::Compliance {
                id: d.user_id.to_string(),
            })
            .unwrap_or(fallback_actor);
        destinations::resolve_from_approval(app, request, approval, actor, request_id).await?;
    }
    Ok(WebhookOutcome::Processed)
}
