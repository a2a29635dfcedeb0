//! The client's activity as a read model (issue 17): one item per row of `GET /v1/activity`,
//! written by whoever observes the fact (the webhook consumer, the order executor, the in-flight
//! refresh, the audit append, the backfill), read a page at a time without calling Dfns.
//!
//! | item | `pk` | `sk` |
//! |---|---|---|
//! | activity row | `CLIENT#<clientId>` | `ACT#<occurredAt, epoch ns, 20 digits>#<row id>` |
//! | fold marker (one per wallet and transaction hash) | `CLIENT#<clientId>` | `ACTTX#<walletId>#<txHash>` |
//! | a transfer row's copy in the transfers' own range (limits' windows) | `CLIENT#<clientId>` | `ACTXFR#<requested, epoch ns>#<transferId>` |
//! | a Dfns policy as last read (account view) | `CLIENT#<clientId>` | `POLICYSNAP#<policyId>` |
//!
//! **Keys are the facts.** A row's sort key is its time and its id (`transfer:<id>`,
//! `chain:<wallet>:<tx>:<kind>:<index>:<direction>`, `audit:<seq>`), both immutable, so replays,
//! redeliveries and the backfill write the same key: never a second row. Sort-key order is the
//! route's order (`(occurredAt, id)`), so a page is one descending query from the cursor's key.
//!
//! **Transfers only move forward.** A transfer row is replaced whole (its body is Dfns' latest
//! transfer request) only if its status rank is higher than the stored one: a late `Broadcasted`
//! after `Confirmed` changes nothing.
//!
//! **One movement, one row.** A transfer of ours also shows up in the wallet's history as an `Out`
//! entry with the same hash; the route shows the transfer only. Each writer registers at the fold
//! marker in the same transaction as its row, on condition that the marker is the version it
//! read: whichever comes second sees the other and folds the history row (`folded`) in that
//! transaction, so no read ever sees both rows. Reads filter `folded` rows out (a filter on a
//! bounded query: at most one folded row per outgoing transfer).
//!
//! The bodies are kept as Dfns (or the audit chain) wrote them; the platform turns them into the
//! route's rows, and applies the client's current labels, when it reads.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use domain::ClientId;

use crate::item::{Item, client_pk, get_n, get_s, key, n, s};
use crate::{Store, StoreError};

const PREFIX: &str = "ACT#";
/// Above every key with [`PREFIX`] (`$` follows `#`).
const PREFIX_END: &str = "ACT$";
const FOLD_PREFIX: &str = "ACTTX#";
/// A transfer row's copy, in a range of transfers only.
const TRANSFERS_PREFIX: &str = "ACTXFR#";
const TRANSFERS_END: &str = "ACTXFR$";
const POLICY_SNAPSHOT_PREFIX: &str = "POLICYSNAP#";
const ENTITY: &str = "activity row";

/// Where a row comes from; its body is that source's JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivitySource {
    /// A Dfns transfer request (`TransferRequest` JSON).
    Transfer,
    /// A Dfns wallet history entry (`BlockchainEvent` JSON).
    Chain,
    /// An entry of the client's audit chain (the sealed body, an `AuditEvent`).
    Audit,
}

impl ActivitySource {
    fn as_str(self) -> &'static str {
        match self {
            Self::Transfer => "transfer",
            Self::Chain => "chain",
            Self::Audit => "audit",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "transfer" => Some(Self::Transfer),
            "chain" => Some(Self::Chain),
            "audit" => Some(Self::Audit),
            _ => None,
        }
    }
}

/// One stored row.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRecord {
    pub row_id: String,
    /// `occurredAt` in epoch nanoseconds.
    pub at_nanos: i128,
    pub source: ActivitySource,
    pub body: String,
    /// The audit sequence number (audit rows).
    pub seq: Option<u64>,
    pub wallet_id: Option<String>,
}

/// A transfer request to record (or move forward).
#[derive(Debug, Clone)]
pub struct TransferRow<'a> {
    pub transfer_id: &'a str,
    pub requested_at_nanos: i128,
    pub wallet_id: &'a str,
    pub tx_hash: Option<&'a str>,
    /// Higher = later in the transfer's life (`Pending` < `Executing` < `Broadcasted` < final).
    pub status_rank: u8,
    pub body: String,
}

/// A wallet history entry to record.
#[derive(Debug, Clone)]
pub struct ChainRow<'a> {
    pub row_id: &'a str,
    pub at_nanos: i128,
    pub wallet_id: &'a str,
    pub tx_hash: &'a str,
    pub outgoing: bool,
    pub body: String,
}

/// The sort key of a row: its time (zero-padded, so string order is time order) and its id.
pub fn row_sk(at_nanos: i128, row_id: &str) -> String {
    format!("{PREFIX}{:020}#{row_id}", at_nanos.max(0))
}

fn transfer_window_sk(at_nanos: i128, transfer_id: &str) -> String {
    format!("{TRANSFERS_PREFIX}{:020}#{transfer_id}", at_nanos.max(0))
}

/// Audit actions that record money movements the Dfns rows already show: no row of their own.
pub fn is_movement_action(action: &str) -> bool {
    action.starts_with("deposit.") || action.starts_with("transfer.")
}

/// The row of an audit entry (`None` for movement records). Written in the append's own
/// transaction ([`crate::Store::append_audit_event`]) and by the backfill, with the same key.
pub(crate) fn audit_row(
    pk: &str,
    seq: u64,
    event: &domain::AuditEvent,
    body: &str,
) -> Option<Item> {
    if is_movement_action(event.action.as_str()) {
        return None;
    }
    let row_id = format!("audit:{seq:020}");
    let at = event.at.unix_timestamp_nanos();
    let mut item = key(pk.to_owned(), row_sk(at, &row_id));
    item.insert("rowId".into(), s(row_id));
    item.insert("src".into(), s(ActivitySource::Audit.as_str()));
    item.insert("atNs".into(), n(at));
    item.insert("seq".into(), n(seq));
    item.insert("body".into(), s(body));
    Some(item)
}

/// The stored item of a history entry's row. Public for bulk loads of incoming entries (a
/// benchmark's `BatchWriteItem`): an entry's item is the same whoever writes it, and only an
/// outgoing one is ever changed afterwards (`folded`).
pub fn chain_row_item(client: &ClientId, row: &ChainRow<'_>) -> HashMap<String, AttributeValue> {
    let mut item = key(client_pk(client), row_sk(row.at_nanos, row.row_id));
    item.insert("rowId".into(), s(row.row_id));
    item.insert("src".into(), s(ActivitySource::Chain.as_str()));
    item.insert("atNs".into(), n(row.at_nanos));
    item.insert("walletId".into(), s(row.wallet_id));
    item.insert("txHash".into(), s(row.tx_hash));
    item.insert("body".into(), s(&row.body));
    item
}

fn record_of(item: &Item) -> Result<ActivityRecord, StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        entity: ENTITY,
        key: get_s(item, "sk").unwrap_or_default().to_owned(),
        reason: reason.to_owned(),
    };
    Ok(ActivityRecord {
        row_id: get_s(item, "rowId")
            .ok_or_else(|| corrupt("no rowId"))?
            .to_owned(),
        at_nanos: get_n::<i128>(item, "atNs").ok_or_else(|| corrupt("no atNs"))?,
        source: get_s(item, "src")
            .and_then(ActivitySource::parse)
            .ok_or_else(|| corrupt("no src"))?,
        body: get_s(item, "body")
            .ok_or_else(|| corrupt("no body"))?
            .to_owned(),
        seq: get_n(item, "seq"),
        wallet_id: get_s(item, "walletId").map(str::to_owned),
    })
}

/// A page of rows, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRecords {
    pub rows: Vec<ActivityRecord>,
    /// Older rows exist.
    pub more: bool,
}

impl Store {
    /// Records a transfer request, or moves its row forward: written only if absent or if
    /// `status_rank` is higher than the stored one. Returns whether it was written. A row with a
    /// transaction hash folds the wallet's `Out` history entry of that transaction in the same
    /// transaction: no read ever sees both.
    pub async fn record_activity_transfer(
        &self,
        client: &ClientId,
        row: &TransferRow<'_>,
    ) -> Result<bool, StoreError> {
        let pk = client_pk(client);
        let row_id = format!("transfer:{}", row.transfer_id);
        let sk = row_sk(row.requested_at_nanos, &row_id);
        let item = |sk: String| {
            let mut item = key(pk.clone(), sk);
            item.insert("rowId".into(), s(&row_id));
            item.insert("src".into(), s(ActivitySource::Transfer.as_str()));
            item.insert("atNs".into(), n(row.requested_at_nanos));
            item.insert("walletId".into(), s(row.wallet_id));
            item.insert("statusRank".into(), n(row.status_rank));
            item.insert("body".into(), s(&row.body));
            if let Some(tx) = row.tx_hash {
                item.insert("txHash".into(), s(tx));
            }
            item
        };
        // The row, and its copy in the transfers' own range (what the limits' windows read), move
        // together and only forward.
        let put = |item: Item| -> Result<TransactWriteItem, StoreError> {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk) OR statusRank < :rank")
                .expression_attribute_values(":rank", n(row.status_rank))
                .build()
                .map_err(crate::clients::builder_error)?;
            Ok(TransactWriteItem::builder().put(put).build())
        };
        for _ in 0..FOLD_ATTEMPTS {
            let mut items = vec![
                put(item(sk.clone()))?,
                put(item(transfer_window_sk(
                    row.requested_at_nanos,
                    row.transfer_id,
                )))?,
            ];
            // The first row with a hash registers at the marker and folds what the history
            // registered there before it, as of the marker's version.
            if let Some(tx) = row.tx_hash {
                let marker = self.fold_marker(&pk, row.wallet_id, tx).await?;
                if marker.transfer_sk.is_none() {
                    items.push(self.register(&marker, FoldSide::Transfer(&sk))?);
                    for chain_sk in &marker.chain_sks {
                        items.push(self.mark_folded(&pk, chain_sk)?);
                    }
                }
            }
            match self.write_folding(items).await? {
                None => return Ok(true),
                // Not higher than what is stored: nothing to do (the stored row registered).
                Some(codes) if failed(&codes, 0) || failed(&codes, 1) => return Ok(false),
                // The marker moved (a history entry registered meanwhile): read it again.
                Some(_) => continue,
            }
        }
        Err(StoreError::Contention {
            operation: "record activity transfer",
            attempts: FOLD_ATTEMPTS,
        })
    }

    /// Records a wallet history entry (once: its key is the fact). Returns whether this call
    /// wrote it. An outgoing entry registers at its transaction's fold marker in the same
    /// transaction, and is written already folded if a transfer of ours has that hash.
    pub async fn record_activity_chain(
        &self,
        client: &ClientId,
        row: &ChainRow<'_>,
    ) -> Result<bool, StoreError> {
        if !row.outgoing {
            return self.put_if_absent(chain_row_item(client, row)).await;
        }
        let pk = client_pk(client);
        let sk = row_sk(row.at_nanos, row.row_id);
        for _ in 0..FOLD_ATTEMPTS {
            let marker = self.fold_marker(&pk, row.wallet_id, row.tx_hash).await?;
            if marker.chain_sks.contains(&sk) {
                return Ok(false);
            }
            let mut item = chain_row_item(client, row);
            if marker.transfer_sk.is_some() {
                item.insert("folded".into(), AttributeValue::Bool(true));
            }
            let items = vec![
                self.create_if_absent(item)?,
                self.register(&marker, FoldSide::Chain(&sk))?,
            ];
            match self.write_folding(items).await? {
                None => return Ok(true),
                // Recorded before (with its registration).
                Some(codes) if failed(&codes, 0) => return Ok(false),
                // The marker moved (the transfer registered meanwhile): read it again.
                Some(_) => continue,
            }
        }
        Err(StoreError::Contention {
            operation: "record activity history entry",
            attempts: FOLD_ATTEMPTS,
        })
    }

    /// Records an audit entry's row (the backfill's path; new entries get theirs in the append's
    /// transaction). Movement records have none: `false`.
    pub async fn record_activity_audit(
        &self,
        client: &ClientId,
        entry: &domain::audit::ChainEntry,
    ) -> Result<bool, StoreError> {
        let Ok(event) = entry.event() else {
            return Ok(false);
        };
        match audit_row(&client_pk(client), entry.seq, &event, &entry.body) {
            Some(item) => self.put_if_absent(item).await,
            None => Ok(false),
        }
    }

    /// Writes a row with its registration at the fold marker: `None` when written, or the
    /// cancellation's code per item when a condition failed (the caller says which matter).
    async fn write_folding(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Option<Vec<Option<String>>>, StoreError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(None),
            Err(e) => match crate::item::cancellation_codes(&e) {
                Some(codes) => Ok(Some(codes)),
                None => Err(StoreError::aws("TransactWriteItems", e)),
            },
        }
    }

    /// The fold marker of a wallet's transaction, as stored now (version 0: none yet).
    async fn fold_marker(
        &self,
        pk: &str,
        wallet_id: &str,
        tx_hash: &str,
    ) -> Result<FoldMarker, StoreError> {
        let marker_key = key(pk.to_owned(), format!("{FOLD_PREFIX}{wallet_id}#{tx_hash}"));
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(marker_key.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::aws("GetItem", e))?
            .item
            .unwrap_or_default();
        Ok(FoldMarker {
            key: marker_key,
            version: get_n(&item, "v").unwrap_or(0),
            transfer_sk: get_s(&item, "transferSk").map(str::to_owned),
            chain_sks: item
                .get("chainSks")
                .and_then(|v| v.as_ss().ok())
                .cloned()
                .unwrap_or_default(),
        })
    }

    /// Registers one side at the marker, on condition that it is still the version read: the
    /// marker is where the two writers of one movement are serialised.
    fn register(
        &self,
        marker: &FoldMarker,
        side: FoldSide<'_>,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .set_key(Some(marker.key.clone()))
            .expression_attribute_values(":next", n(marker.version + 1));
        let update = if marker.version == 0 {
            update.condition_expression("attribute_not_exists(v)")
        } else {
            update
                .condition_expression("v = :v")
                .expression_attribute_values(":v", n(marker.version))
        };
        let update = match side {
            FoldSide::Transfer(sk) => update
                .update_expression("SET v = :next, transferSk = :sk")
                .expression_attribute_values(":sk", s(sk)),
            FoldSide::Chain(sk) => update
                .update_expression("SET v = :next ADD chainSks :sks")
                .expression_attribute_values(":sks", AttributeValue::Ss(vec![sk.to_owned()])),
        };
        let update = update.build().map_err(crate::clients::builder_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Marks a registered history row folded (registered rows exist: each was written in the
    /// transaction that registered it).
    fn mark_folded(&self, pk: &str, sk: &str) -> Result<TransactWriteItem, StoreError> {
        let update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.to_owned(), sk.to_owned())))
            .update_expression("SET folded = :yes")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .build()
            .map_err(crate::clients::builder_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Up to `limit` rows older than `before` (`(at_nanos, row_id)` of the last row served;
    /// from the newest if `None`), newest first, folded rows left out. Reads O(limit) items: one
    /// query of `limit + 1` keys, repeated only when folded rows were filtered out.
    pub async fn activity_page(
        &self,
        client: &ClientId,
        before: Option<(i128, &str)>,
        limit: usize,
    ) -> Result<ActivityRecords, StoreError> {
        let limit = limit.max(1);
        let high = match before {
            Some((at, id)) => row_sk(at, id),
            None => PREFIX_END.to_owned(),
        };
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
            .filter_expression("attribute_not_exists(folded)")
            .expression_attribute_values(":pk", s(client_pk(client)))
            .expression_attribute_values(":low", s(PREFIX))
            .expression_attribute_values(":high", s(&high))
            .scan_index_forward(false)
            .consistent_read(true)
            .limit(limit as i32 + 2);
        // BETWEEN is inclusive: the cursor's own row is dropped here (a filter cannot name a key).
        let items = self.query_all(query, Some(limit + 2)).await?;
        let mut rows = items
            .iter()
            .filter(|item| get_s(item, "sk") != Some(high.as_str()))
            .map(record_of)
            .collect::<Result<Vec<_>, _>>()?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        Ok(ActivityRecords { rows, more })
    }

    /// The client's transfer rows requested at or after `since_nanos`, newest first (what the
    /// limits' windows count). Reads the transfers of that window only (their own range, so
    /// deposits do not add to it).
    pub async fn activity_transfers_since(
        &self,
        client: &ClientId,
        since_nanos: i128,
    ) -> Result<Vec<ActivityRecord>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
            .expression_attribute_values(":pk", s(client_pk(client)))
            .expression_attribute_values(":low", s(transfer_window_sk(since_nanos, "")))
            .expression_attribute_values(":high", s(TRANSFERS_END))
            .scan_index_forward(false)
            .consistent_read(true);
        self.query_all(query, None)
            .await?
            .iter()
            .map(record_of)
            .collect()
    }

    /// Keeps a Dfns policy as read at `read_at` (epoch ms) for the client's account view. A read
    /// older than the one stored is dropped (`false`), so racing refreshes keep the latest.
    pub async fn put_policy_snapshot(
        &self,
        client: &ClientId,
        policy_id: &str,
        body: &str,
        read_at_ms: i128,
    ) -> Result<bool, StoreError> {
        let mut item = key(
            client_pk(client),
            format!("{POLICY_SNAPSHOT_PREFIX}{policy_id}"),
        );
        item.insert("policyId".into(), s(policy_id));
        item.insert("body".into(), s(body));
        item.insert("readAt".into(), n(read_at_ms));
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR readAt <= :at")
            .expression_attribute_values(":at", n(read_at_ms))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if crate::item::put_conditional_failed(&e) => Ok(false),
            Err(e) => Err(StoreError::aws("PutItem", e)),
        }
    }

    /// The client's recorded policies (kind → policy id) and the snapshots kept of them (policy
    /// id → Dfns JSON), in one query (`POLICYREF#…` and `POLICYSNAP#…` share the `POLICY`
    /// prefix).
    pub async fn client_policies_with_snapshots(
        &self,
        client: &ClientId,
    ) -> Result<PolicyRecords, StoreError> {
        let mut records = PolicyRecords::default();
        for item in self.query_client_prefix(client, "POLICY").await? {
            let sk = get_s(&item, "sk").unwrap_or_default();
            if sk.starts_with(crate::clients::POLICY_REF_PREFIX) {
                if let (Some(kind), Some(id)) = (get_s(&item, "kind"), get_s(&item, "policyId")) {
                    records.recorded.insert(kind.to_owned(), id.to_owned());
                }
            } else if sk.starts_with(POLICY_SNAPSHOT_PREFIX) {
                if let (Some(id), Some(body)) = (get_s(&item, "policyId"), get_s(&item, "body")) {
                    records.snapshots.insert(id.to_owned(), body.to_owned());
                }
            }
        }
        Ok(records)
    }
}

/// [`Store::client_policies_with_snapshots`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyRecords {
    /// Kind → policy id.
    pub recorded: std::collections::BTreeMap<String, String>,
    /// Policy id → the policy's JSON as last read from Dfns.
    pub snapshots: HashMap<String, String>,
}

#[derive(Clone, Copy)]
enum FoldSide<'a> {
    Transfer(&'a str),
    Chain(&'a str),
}

/// A fold marker as read: its version (bumped by every registration) and who registered.
struct FoldMarker {
    key: Item,
    version: u64,
    transfer_sk: Option<String>,
    chain_sks: Vec<String>,
}

/// Tries of a write whose marker moved under it (each retry follows a registration by the
/// other side of the same movement, so a handful is plenty).
const FOLD_ATTEMPTS: u32 = 16;

/// Whether the transaction's `index`-th item failed its condition.
fn failed(codes: &[Option<String>], index: usize) -> bool {
    codes
        .get(index)
        .and_then(Option::as_deref)
        .is_some_and(|c| c == "ConditionalCheckFailed")
}

const BACKFILL_PK: &str = "BACKFILL#activity";
const BACKFILL_SK: &str = "CURSOR";

impl Store {
    /// Up to `page` client ids (every client with a profile), in the table's scan order after
    /// `after`, and where the next page starts. A scan: the backfill's, an operation run once.
    pub async fn scan_client_ids(
        &self,
        after: Option<&ClientId>,
        page: usize,
    ) -> Result<(Vec<ClientId>, Option<ClientId>), StoreError> {
        let mut start = after.map(|c| key(client_pk(c), "PROFILE"));
        let mut ids = Vec::new();
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("sk = :profile")
                .expression_attribute_values(":profile", s("PROFILE"))
                .set_exclusive_start_key(start.take())
                .limit(500)
                .send()
                .await
                .map_err(|e| StoreError::aws("Scan", e))?;
            for item in output.items() {
                let parsed = get_s(item, "pk")
                    .and_then(|pk| pk.strip_prefix("CLIENT#"))
                    .and_then(|id| ClientId::parse(id).ok());
                if let Some(id) = parsed {
                    ids.push(id);
                }
                if ids.len() == page {
                    return Ok((ids.clone(), ids.last().cloned()));
                }
            }
            match output.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok((ids, None)),
            }
        }
    }

    /// Where the last backfill run stopped: the last client of the last page it finished.
    pub async fn backfill_cursor(&self) -> Result<Option<ClientId>, StoreError> {
        Ok(self
            .get_raw(key(BACKFILL_PK, BACKFILL_SK))
            .await?
            .as_ref()
            .and_then(|item| get_s(item, "after"))
            .and_then(|id| ClientId::parse(id).ok()))
    }

    /// Records where the backfill got to (`None`: it finished; the next run starts over).
    pub async fn set_backfill_cursor(&self, after: Option<&ClientId>) -> Result<(), StoreError> {
        let mut item = key(BACKFILL_PK, BACKFILL_SK);
        if let Some(after) = after {
            item.insert("after".into(), s(after.to_string()));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| StoreError::aws("PutItem", e))?;
        Ok(())
    }
}
