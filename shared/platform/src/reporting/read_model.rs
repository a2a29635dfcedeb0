//! The activity read model's platform side (issue 17): what the writers record
//! ([`record_transfer`], [`record_chain`]; governance rows are written by the audit append
//! itself), how a stored row becomes a row of the route ([`to_item`]), and the backfill from
//! Dfns history ([`backfill_client`]). Keys and folding: [`store::activity`].

use dfns_client::wallets::{BlockchainEvent, Direction, HistoryQuery};
use dfns_client::{TransferRequest, TransferStatus};
use domain::ClientId;
use futures::TryStreamExt;
use serde::Serialize;
use store::activity::{ActivityRecord, ActivitySource, ChainRow, TransferRow};
use store::{Store, StoreError, WalletMapping};

use super::activity::{self, ActivityItem, Labels};
use crate::App;
use crate::error::PlatformError;

/// A transfer's place in its life: a row only moves to a higher rank. The final statuses share
/// the top rank (none follows another).
pub fn status_rank(status: &TransferStatus) -> u8 {
    match status {
        TransferStatus::Pending => 1,
        TransferStatus::Executing => 2,
        TransferStatus::Broadcasted => 3,
        TransferStatus::Confirmed | TransferStatus::Failed | TransferStatus::Rejected => 4,
        // A status this code does not know: recorded if nothing is, never over a known one.
        _ => 0,
    }
}

/// Records (or moves forward) the row of a transfer request of `client`'s wallet.
pub async fn record_transfer(
    store: &Store,
    client: &ClientId,
    transfer: &TransferRequest,
) -> Result<bool, StoreError> {
    let body = serde_json::to_string(transfer).map_err(|e| StoreError::InvalidInput {
        reason: format!("transfer does not serialise: {e}"),
    })?;
    store
        .record_activity_transfer(
            client,
            &TransferRow {
                transfer_id: transfer.id.as_str(),
                requested_at_nanos: transfer.date_requested.unix_timestamp_nanos(),
                wallet_id: transfer.wallet_id.as_str(),
                tx_hash: transfer.tx_hash.as_deref(),
                status_rank: status_rank(&transfer.status),
                body,
            },
        )
        .await
}

/// Records the row of a wallet history entry of `client`'s wallet (either direction).
pub async fn record_chain(
    store: &Store,
    client: &ClientId,
    event: &BlockchainEvent,
) -> Result<bool, StoreError> {
    let body = serde_json::to_string(event).map_err(|e| StoreError::InvalidInput {
        reason: format!("history entry does not serialise: {e}"),
    })?;
    // The route's id of this entry (labels play no part in it).
    let row_id = activity::from_history(event, &Labels::default()).id;
    store
        .record_activity_chain(
            client,
            &ChainRow {
                row_id: &row_id,
                at_nanos: event.timestamp.unix_timestamp_nanos(),
                wallet_id: event.wallet_id.as_str(),
                tx_hash: &event.tx_hash,
                outgoing: event.direction == Direction::Out,
                body,
            },
        )
        .await
}

/// The route's row of a stored one, with the client's current labels (`None`, logged, for a
/// body that does not parse).
pub fn to_item(
    record: &ActivityRecord,
    wallets: &[WalletMapping],
    labels: &Labels,
) -> Option<ActivityItem> {
    let parsed = match record.source {
        ActivitySource::Transfer => {
            serde_json::from_str::<TransferRequest>(&record.body).map(|t| {
                let own = wallets
                    .iter()
                    .find(|w| w.wallet_id.as_str() == t.wallet_id.as_str())
                    .map(|w| w.address.address().canonical());
                Some(activity::from_transfer(&t, own.as_deref(), labels))
            })
        }
        ActivitySource::Chain => serde_json::from_str::<BlockchainEvent>(&record.body)
            .map(|e| Some(activity::from_history(&e, labels))),
        ActivitySource::Audit => serde_json::from_str::<domain::AuditEvent>(&record.body)
            .map(|e| activity::from_audit(record.seq.unwrap_or(0), &e, labels)),
    };
    match parsed {
        Ok(item) => item,
        Err(error) => {
            tracing::error!(row = %record.row_id, %error, "stored activity row does not parse");
            None
        }
    }
}

/// What [`backfill_client`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackfillReport {
    pub transfers: usize,
    pub history: usize,
    pub audit: usize,
    /// Rows this run wrote (the rest were there already, or not newer).
    pub written: usize,
}

/// Fills the client's read model from Dfns (every wallet's transfers and history) and its audit
/// chain. Safe to rerun: each row's key is its fact, a transfer row only moves forward.
pub async fn backfill_client(
    app: &App,
    client: &ClientId,
) -> Result<BackfillReport, PlatformError> {
    let store = app.store();
    let wallets = store.list_wallets(client).await?;
    let dfns = app.dfns_reader().await?;
    let mut report = BackfillReport::default();
    for wallet in &wallets {
        let id = dfns_client::WalletId::new(wallet.wallet_id.as_str());
        let mut transfers = dfns.list_transfers(&id, &Default::default());
        while let Some(transfer) = transfers.try_next().await? {
            report.transfers += 1;
            report.written += usize::from(record_transfer(store, client, &transfer).await?);
        }
        let mut history = dfns.wallet_history(&id, &HistoryQuery::default());
        while let Some(event) = history.try_next().await? {
            report.history += 1;
            report.written += usize::from(record_chain(store, client, &event).await?);
        }
    }
    let mut after = None;
    loop {
        let page = store.list_audit_events(client, after, 500).await?;
        for entry in &page.entries {
            report.audit += 1;
            report.written += usize::from(store.record_activity_audit(client, entry).await?);
        }
        match page.next_after_seq {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(report)
}

/// Reads one of the client's policies from Dfns and keeps it for the account view (a read older
/// than the one kept is dropped). Called where the platform changes a policy, and by the
/// reconciler.
pub async fn refresh_policy_snapshot(
    app: &App,
    client: &ClientId,
    policy_id: &str,
) -> Result<dfns_client::Policy, PlatformError> {
    let read_at = time::OffsetDateTime::now_utc();
    let dfns = app.dfns_reader().await?;
    let policy = dfns
        .get_policy(&dfns_client::PolicyId::new(policy_id))
        .await?;
    keep_policy_snapshot(app.store(), client, &policy, read_at).await?;
    Ok(policy)
}

/// Keeps `policy`, as read from Dfns at `read_at`, for the account view.
pub async fn keep_policy_snapshot(
    store: &Store,
    client: &ClientId,
    policy: &dfns_client::Policy,
    read_at: time::OffsetDateTime,
) -> Result<bool, StoreError> {
    let body = serde_json::to_string(policy).map_err(|e| StoreError::InvalidInput {
        reason: format!("policy does not serialise: {e}"),
    })?;
    store
        .put_policy_snapshot(
            client,
            policy.id.as_str(),
            &body,
            read_at.unix_timestamp_nanos() / 1_000_000,
        )
        .await
}

/// Refreshes every recorded policy of the client (the reconciler's pass); failures are logged
/// and counted, the account view reads Dfns for a policy it has no snapshot of.
pub async fn refresh_client_policies(app: &App, client: &ClientId) -> Result<usize, PlatformError> {
    let recorded = app.store().client_policies(client).await?;
    let mut ids: Vec<&String> = recorded.values().collect();
    ids.sort_unstable();
    ids.dedup();
    let mut refreshed = 0;
    for id in ids {
        match refresh_policy_snapshot(app, client, id).await {
            Ok(_) => refreshed += 1,
            Err(error) => {
                tracing::warn!(client = %client, policy_id = %id, %error, "policy snapshot not refreshed")
            }
        }
    }
    Ok(refreshed)
}
