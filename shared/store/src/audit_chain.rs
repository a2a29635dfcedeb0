//! Per-client audit trail, stored as a hash chain (see [`domain::audit`]).
//!
//! Besides the entries and the head, each client's partition holds a **checkpoint**
//! (`AUDIT#CHECKPOINT`: `seq` and `hash` of the last entry the server has verified), so that
//! [`Store::check_audit_chain`] verifies each entry once instead of the whole chain on every read.
//! The checkpoint only moves forward (a conditional write: absent, or its `seq` lower than the new
//! one); [`Store::verify_audit_chain`] still recomputes everything from the first entry, and
//! neither reads nor writes it.

use std::time::Duration;

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use domain::ClientId;
use domain::audit::{
    AuditEvent, ChainBreak, ChainEntry, ChainPoint, ChainVerdict, GENESIS_HASH, decode_hash,
    verify_chain_from, verify_run,
};
use rand::Rng;

use crate::clients::builder_error;
use crate::item::{
    Item, cancellation_codes, client_pk, conditional_failure, get_n, get_s, key, n, s,
};
use crate::{Store, StoreError};

const HEAD_SK: &str = "AUDIT#HEAD";
const CHECKPOINT_SK: &str = "AUDIT#CHECKPOINT";
const EVENT_PREFIX: &str = "AUDIT#EVENT#";
/// Above every key with [`EVENT_PREFIX`] (`$` follows `#`); no other kind of key sorts between.
const EVENT_PREFIX_END: &str = "AUDIT#EVENT$";
const ONCE_PREFIX: &str = "AUDIT#ONCE#";

/// Lines per transaction in a batch append: up to three items each (event, once-marker, activity
/// row) and the head, within DynamoDB's 100 items per transaction.
const BATCH_LINES: usize = 33;
/// Gives up after this many lost races in a row (each attempt re-reads the head).
const APPEND_ATTEMPTS: u32 = 200;
const BACKOFF_BASE: Duration = Duration::from_millis(4);
const BACKOFF_CAP: Duration = Duration::from_millis(200);

fn event_sk(seq: u64) -> String {
    // Zero-padded so that the sort key order is the numeric order.
    format!("{EVENT_PREFIX}{seq:020}")
}

/// One page of a client's audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPage {
    pub entries: Vec<ChainEntry>,
    /// Pass as `after_seq` to read the next page; `None` when this page is the last.
    pub next_after_seq: Option<u64>,
}

struct Head {
    seq: u64,
    hash: [u8; 32],
}

/// What [`Store::check_audit_chain`] found, and how much of the chain it read to find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCheck {
    pub verdict: ChainVerdict,
    /// The sequence number of the checkpoint the check started from (0: none, from the start).
    pub from_seq: u64,
    /// Event items read: the checkpoint's own entry and every entry after it.
    pub entries_read: usize,
}

impl Store {
    async fn audit_head(&self, client: &ClientId) -> Result<Option<Head>, StoreError> {
        let pk = client_pk(client);
        let Some(item) = self.get_raw(key(pk.clone(), HEAD_SK)).await? else {
            return Ok(None);
        };
        let seq = get_n::<u64>(&item, "seq");
        let hash = get_s(&item, "hash").and_then(decode_hash);
        match (seq, hash) {
            (Some(seq), Some(hash)) => Ok(Some(Head { seq, hash })),
            _ => Err(StoreError::Corrupt {
                entity: "audit chain head",
                key: client.to_string(),
                reason: "missing or malformed seq/hash".into(),
            }),
        }
    }

    /// Appends the event to its client's chain and returns the sealed entry. Concurrent appends
    /// for one client are serialised by a conditional transaction on the chain head: a loser
    /// re-reads the head and retries with jittered exponential backoff, so the chain never forks
    /// or skips a number.
    pub async fn append_audit_event(&self, event: &AuditEvent) -> Result<ChainEntry, StoreError> {
        let appended = self.append(event, None).await?;
        appended.ok_or_else(|| StoreError::Corrupt {
            entity: "audit chain",
            key: event.client_id.to_string(),
            reason: "an append without a once-key was refused as a repeat".into(),
        })
    }

    /// Appends the event unless an event with the same `once_key` was already appended to this
    /// client's chain; `None` then. The key's marker is written in the append's own transaction,
    /// so a caller that retries after a crash or a redelivery (a state already moved whose audit
    /// line may or may not exist) records each fact exactly once, never zero times or twice.
    pub async fn append_audit_event_once(
        &self,
        event: &AuditEvent,
        once_key: &str,
    ) -> Result<Option<ChainEntry>, StoreError> {
        self.append(event, Some(once_key)).await
    }

    async fn append(
        &self,
        event: &AuditEvent,
        once_key: Option<&str>,
    ) -> Result<Option<ChainEntry>, StoreError> {
        let client = &event.client_id;
        let pk = client_pk(client);
        for attempt in 0..APPEND_ATTEMPTS {
            let head = self.audit_head(client).await?;
            let (prev_seq, prev_hash) = head.map_or((0, GENESIS_HASH), |h| (h.seq, h.hash));
            let entry = ChainEntry::seal(prev_seq + 1, &prev_hash, event);

            let put_event = self.create_if_absent(event_item(&pk, &entry))?;
            let head_condition = if prev_seq == 0 {
                "attribute_not_exists(pk)"
            } else {
                "seq = :prevSeq"
            };
            let mut move_head = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(pk.clone(), HEAD_SK)))
                .update_expression("SET seq = :seq, #hash = :hash")
                .condition_expression(head_condition)
                .expression_attribute_names("#hash", "hash")
                .expression_attribute_values(":seq", n(entry.seq))
                .expression_attribute_values(":hash", s(&entry.hash));
            if prev_seq != 0 {
                move_head = move_head.expression_attribute_values(":prevSeq", n(prev_seq));
            }
            let mut transaction = self
                .client
                .transact_write_items()
                .transact_items(put_event)
                .transact_items(
                    TransactWriteItem::builder()
                        .update(move_head.build().map_err(builder_error)?)
                        .build(),
                );
            if let Some(once_key) = once_key {
                let mut marker: Item = key(pk.clone(), format!("{ONCE_PREFIX}{once_key}"));
                marker.insert("seq".into(), n(entry.seq));
                transaction = transaction.transact_items(self.create_if_absent(marker)?);
            }
            // The activity row (read model) lands with its entry, or not at all.
            if let Some(row) = crate::activity::audit_row(&pk, entry.seq, event, &entry.body) {
                transaction = transaction.transact_items(self.put_row(row)?);
            }
            match transaction.send().await {
                Ok(_) => return Ok(Some(entry)),
                Err(err) => {
                    // The marker is the third item: its refusal means "already recorded".
                    let repeat = once_key.is_some()
                        && cancellation_codes(&err).is_some_and(|codes| {
                            codes.get(2).and_then(Option::as_deref)
                                == Some("ConditionalCheckFailed")
                        });
                    if repeat {
                        return Ok(None);
                    }
                    if !lost_race(&err) {
                        return Err(StoreError::aws("TransactWriteItems", err));
                    }
                    tracing::debug!(client = %client, attempt, "audit append lost a race; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
        Err(StoreError::Contention {
            operation: "append audit event",
            attempts: APPEND_ATTEMPTS,
        })
    }

    /// Appends once-keyed facts to one client's chain in as few transactions as DynamoDB allows
    /// ([`BATCH_LINES`] lines each: an event and its once-marker per line, and the head once), so
    /// a burst of one client's events costs a head read and a write per chunk, not per event.
    /// A fact whose once-key was recorded before makes its chunk's transaction fail: that chunk is
    /// then appended line by line ([`Store::append_audit_event_once`]), which skips it. Lines
    /// repeating a once-key within the call count once. Returns how many lines were appended.
    pub(crate) async fn append_once_batch(
        &self,
        client: &ClientId,
        lines: &[(AuditEvent, String)],
    ) -> Result<usize, StoreError> {
        let mut seen = std::collections::HashSet::new();
        let lines: Vec<&(AuditEvent, String)> = lines
            .iter()
            .filter(|(_, once_key)| seen.insert(once_key.as_str()))
            .collect();
        let pk = client_pk(client);
        let mut appended = 0;
        'chunks: for chunk in lines.chunks(BATCH_LINES) {
            for attempt in 0..APPEND_ATTEMPTS {
                let head = self.audit_head(client).await?;
                let (mut seq, mut prev_hash) = head.map_or((0, GENESIS_HASH), |h| (h.seq, h.hash));
                let first_prev_seq = seq;
                let mut transaction = self.client.transact_write_items();
                let mut rows = Vec::new();
                for (event, once_key) in chunk {
                    let entry = ChainEntry::seal(seq + 1, &prev_hash, event);
                    let mut marker: Item = key(pk.clone(), format!("{ONCE_PREFIX}{once_key}"));
                    marker.insert("seq".into(), n(entry.seq));
                    transaction = transaction
                        .transact_items(self.create_if_absent(event_item(&pk, &entry))?)
                        .transact_items(self.create_if_absent(marker)?);
                    rows.extend(crate::activity::audit_row(
                        &pk,
                        entry.seq,
                        event,
                        &entry.body,
                    ));
                    seq = entry.seq;
                    prev_hash = entry.hash_bytes().ok_or_else(|| StoreError::Corrupt {
                        entity: "audit chain",
                        key: client.to_string(),
                        reason: "a sealed entry's hash does not decode".into(),
                    })?;
                }
                let mut move_head = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(pk.clone(), HEAD_SK)))
                    .update_expression("SET seq = :seq, #hash = :hash")
                    .condition_expression(if first_prev_seq == 0 {
                        "attribute_not_exists(pk)"
                    } else {
                        "seq = :prevSeq"
                    })
                    .expression_attribute_names("#hash", "hash")
                    .expression_attribute_values(":seq", n(seq))
                    .expression_attribute_values(":hash", s(hex::encode(prev_hash)));
                if first_prev_seq != 0 {
                    move_head =
                        move_head.expression_attribute_values(":prevSeq", n(first_prev_seq));
                }
                transaction = transaction.transact_items(
                    TransactWriteItem::builder()
                        .update(move_head.build().map_err(builder_error)?)
                        .build(),
                );
                // After the head, so the markers keep their odd positions.
                for row in rows {
                    transaction = transaction.transact_items(self.put_row(row)?);
                }
                let err = match transaction.send().await {
                    Ok(_) => {
                        appended += chunk.len();
                        continue 'chunks;
                    }
                    Err(err) => err,
                };
                let codes = cancellation_codes(&err);
                // Markers are the odd items: one refused means a fact was recorded before.
                let repeat = codes.as_ref().is_some_and(|codes| {
                    codes.iter().enumerate().any(|(i, code)| {
                        i % 2 == 1
                            && i < 2 * chunk.len()
                            && code.as_deref() == Some("ConditionalCheckFailed")
                    })
                });
                if repeat {
                    for (event, once_key) in chunk {
                        if self.append(event, Some(once_key)).await?.is_some() {
                            appended += 1;
                        }
                    }
                    continue 'chunks;
                }
                if !lost_race(&err) {
                    return Err(StoreError::aws("TransactWriteItems", err));
                }
                tracing::debug!(client = %client, attempt, "audit batch lost a race; retrying");
                tokio::time::sleep(backoff(attempt)).await;
            }
            return Err(StoreError::Contention {
                operation: "append audit events",
                attempts: APPEND_ATTEMPTS,
            });
        }
        Ok(appended)
    }

    /// Up to `limit` entries after sequence number `after_seq` (from the start if `None`),
    /// oldest first, read strongly consistently.
    pub async fn list_audit_events(
        &self,
        client: &ClientId,
        after_seq: Option<u64>,
        limit: usize,
    ) -> Result<AuditPage, StoreError> {
        let pk = client_pk(client);
        let limit = limit.max(1);
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(pk.clone()))
            .expression_attribute_values(":from", s(event_sk(after_seq.map_or(0, |s| s + 1))))
            .expression_attribute_values(":to", s(event_sk(u64::MAX)))
            .consistent_read(true)
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX));
        let mut items = self.query_all(query, Some(limit + 1)).await?;
        let more = items.len() > limit;
        items.truncate(limit);
        let entries: Vec<ChainEntry> = items.iter().map(entry_from_item).collect();
        let next_after_seq = if more {
            entries.last().map(|e| e.seq)
        } else {
            None
        };
        Ok(AuditPage {
            entries,
            next_after_seq,
        })
    }

    /// Recomputes the client's whole chain, from its first entry, and checks the head record
    /// against its end. Reports the first sequence number that does not verify. O(chain): for
    /// tests and operations (a full check, whatever the checkpoint says); neither reads nor
    /// writes the checkpoint. Reads use [`Store::check_audit_chain`].
    pub async fn verify_audit_chain(&self, client: &ClientId) -> Result<ChainVerdict, StoreError> {
        Ok(self.verify_after(client, ChainPoint::GENESIS).await?.0)
    }

    /// Verifies the entries appended since the client's checkpoint, and moves the checkpoint to
    /// the end of what verified: O(new entries), each entry is verified once. Entries at or
    /// before the checkpoint are trusted, except the checkpoint's own entry, which must still
    /// hash to its body and to the checkpoint's hash. Without a checkpoint (none is written while
    /// the chain is empty) this verifies from the first entry, once.
    ///
    /// The checkpoint is written only after an intact verdict, only forward (`attribute_not_exists`
    /// or a lower `seq`): a check that loses a race to a concurrent one leaves the further one.
    pub async fn check_audit_chain(&self, client: &ClientId) -> Result<ChainCheck, StoreError> {
        // Read before the head: the checkpoint only ever names an entry the head had counted
        // when it was written, so a head read afterwards is never behind it.
        let start = match self.audit_checkpoint(client).await {
            Ok(start) => start.unwrap_or(ChainPoint::GENESIS),
            Err(StoreError::Corrupt { .. }) => {
                return Ok(ChainCheck {
                    verdict: broken(1, ChainBreak::CheckpointMismatch),
                    from_seq: 0,
                    entries_read: 0,
                });
            }
            Err(e) => return Err(e),
        };
        let (verdict, entries_read) = self.verify_after(client, start).await?;
        if let ChainVerdict::Intact { length, head_hash } = &verdict {
            if *length > start.seq {
                let hash = decode_hash(head_hash).expect("a verified chain's hash is hex");
                let point = ChainPoint { seq: *length, hash };
                if let Err(error) = self.advance_audit_checkpoint(client, point).await {
                    // The verdict stands; the next check starts from the older checkpoint.
                    tracing::warn!(client = %client, %error, "audit checkpoint not advanced");
                }
            }
        }
        Ok(ChainCheck {
            verdict,
            from_seq: start.seq,
            entries_read,
        })
    }

    /// Verifies the chain after `start` (trusted, except that its own stored entry must still
    /// match it) against the head record; the verdict and the number of event items read.
    async fn verify_after(
        &self,
        client: &ClientId,
        start: ChainPoint,
    ) -> Result<(ChainVerdict, usize), StoreError> {
        // An event and its head move in one transaction, but checking them takes two reads, and
        // appends go on meanwhile. So the head is read first: every event it counts was committed
        // before the listing, and a missing one is a real gap. Events appended after that read
        // may be listed too; a second read of the head must account for them.
        let HeadRead::At(first_seq, first_hash) = self.head_for_verify(client).await? else {
            return Ok((broken(start.seq + 1, ChainBreak::HeadMismatch), 0));
        };
        if first_seq < start.seq {
            // The checkpoint names an entry the head does not count.
            return Ok((broken(start.seq, ChainBreak::CheckpointMismatch), 0));
        }
        let entries = self.audit_entries_from(client, start.seq).await?;
        let read = entries.len();
        let after_start = if start.seq == 0 {
            &entries[..]
        } else {
            // The checkpoint's entry: still there, still hashing to its body, still the one
            // verified.
            match entries.first() {
                Some(at) if at.seq == start.seq => {}
                _ => return Ok((broken(start.seq, ChainBreak::Gap), read)),
            }
            if let Some((seq, reason)) = verify_run(client, start.seq, &entries[..1]) {
                return Ok((broken(seq, reason), read));
            }
            if entries[0].hash != hex::encode(start.hash) {
                return Ok((broken(start.seq, ChainBreak::CheckpointMismatch), read));
            }
            &entries[1..]
        };
        let verdict = verify_chain_from(client, start, after_start);
        let ChainVerdict::Intact { length, .. } = &verdict else {
            return Ok((verdict, read));
        };
        let length = *length;
        if length < first_seq {
            // The head counts an event that is not there.
            return Ok((broken(length + 1, ChainBreak::Gap), read));
        }
        // An intact chain holds event n at index n - start.seq - 1 of what follows the start.
        let hash_at_first_head = if first_seq == start.seq {
            hex::encode(start.hash)
        } else {
            after_start[(first_seq - start.seq - 1) as usize]
                .hash
                .clone()
        };
        if hash_at_first_head != first_hash {
            return Ok((broken(first_seq.max(1), ChainBreak::HeadMismatch), read));
        }
        if length == first_seq {
            return Ok((verdict, read));
        }
        // Events listed beyond the first head read: the head must have moved past them since.
        let verdict = match self.head_for_verify(client).await? {
            HeadRead::At(second_seq, _) if second_seq >= length => verdict,
            HeadRead::At(second_seq, _) => broken(second_seq.max(1), ChainBreak::HeadMismatch),
            HeadRead::Corrupt => broken(length, ChainBreak::HeadMismatch),
        };
        Ok((verdict, read))
    }

    /// Every event from `from_seq` on (from the first if 0), oldest first, read consistently.
    async fn audit_entries_from(
        &self,
        client: &ClientId,
        from_seq: u64,
    ) -> Result<Vec<ChainEntry>, StoreError> {
        // From 0, the bare prefix: every key that has it, like `begins_with`.
        let from = match from_seq {
            0 => EVENT_PREFIX.to_owned(),
            seq => event_sk(seq),
        };
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(client_pk(client)))
            .expression_attribute_values(":from", s(from))
            .expression_attribute_values(":to", s(EVENT_PREFIX_END))
            .consistent_read(true);
        Ok(self
            .query_all(query, None)
            .await?
            .iter()
            .map(entry_from_item)
            .collect())
    }

    /// The client's checkpoint: the last entry the server verified, if any.
    async fn audit_checkpoint(&self, client: &ClientId) -> Result<Option<ChainPoint>, StoreError> {
        let Some(item) = self.get_raw(key(client_pk(client), CHECKPOINT_SK)).await? else {
            return Ok(None);
        };
        let seq = get_n::<u64>(&item, "seq").filter(|&seq| seq > 0);
        let hash = get_s(&item, "hash").and_then(decode_hash);
        match (seq, hash) {
            (Some(seq), Some(hash)) => Ok(Some(ChainPoint { seq, hash })),
            _ => Err(StoreError::Corrupt {
                entity: "audit chain checkpoint",
                key: client.to_string(),
                reason: "missing or malformed seq/hash".into(),
            }),
        }
    }

    /// Moves the checkpoint to `to` unless it is already there or further: `true` when written.
    async fn advance_audit_checkpoint(
        &self,
        client: &ClientId,
        to: ChainPoint,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(client_pk(client), CHECKPOINT_SK)))
            .update_expression("SET seq = :seq, #hash = :hash")
            .condition_expression("attribute_not_exists(pk) OR seq < :seq")
            .expression_attribute_names("#hash", "hash")
            .expression_attribute_values(":seq", n(to.seq))
            .expression_attribute_values(":hash", s(hex::encode(to.hash)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if conditional_failure(&e).is_some() => Ok(false),
            Err(e) => Err(StoreError::aws("UpdateItem", e)),
        }
    }

    /// The head as verification sees it: where it points, or unreadable.
    async fn head_for_verify(&self, client: &ClientId) -> Result<HeadRead, StoreError> {
        match self.audit_head(client).await {
            Ok(head) => {
                let (seq, hash) = head.map_or((0, GENESIS_HASH), |h| (h.seq, h.hash));
                Ok(HeadRead::At(seq, hex::encode(hash)))
            }
            Err(StoreError::Corrupt { .. }) => Ok(HeadRead::Corrupt),
            Err(e) => Err(e),
        }
    }
}

enum HeadRead {
    /// Sequence number and hex hash of the last event the head counts (0 and genesis if none).
    At(u64, String),
    Corrupt,
}

fn broken(seq: u64, reason: ChainBreak) -> ChainVerdict {
    ChainVerdict::Broken { seq, reason }
}

impl Store {
    /// A transaction item writing an activity row as is: its key is the entry's, so a repeat
    /// writes the same row.
    fn put_row(&self, row: Item) -> Result<TransactWriteItem, StoreError> {
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.table)
            .set_item(Some(row))
            .build()
            .map_err(builder_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

/// The stored form of a sealed entry.
fn event_item(pk: &str, entry: &ChainEntry) -> Item {
    let mut item: Item = key(pk.to_owned(), event_sk(entry.seq));
    item.insert("seq".into(), n(entry.seq));
    item.insert("prevHash".into(), s(&entry.prev_hash));
    item.insert("hash".into(), s(&entry.hash));
    item.insert("body".into(), s(&entry.body));
    item
}

/// Whether an append's transaction failed only because another append moved the head first (or
/// DynamoDB saw the two conflict): worth re-reading the head and trying again.
fn lost_race<R>(
    err: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        R,
    >,
) -> bool {
    cancellation_codes(err).is_some_and(|codes| {
        codes
            .iter()
            .flatten()
            .all(|code| code == "ConditionalCheckFailed" || code == "TransactionConflict")
    }) || aws_sdk_dynamodb::error::ProvideErrorMetadata::code(err)
        == Some("TransactionConflictException")
}

/// Reads an event item as stored, without repairing anything: a missing attribute becomes a
/// value that cannot verify, so [`verify_chain`] reports the entry.
fn entry_from_item(item: &Item) -> ChainEntry {
    ChainEntry {
        seq: get_n::<u64>(item, "seq").unwrap_or(0),
        prev_hash: get_s(item, "prevHash").unwrap_or_default().to_owned(),
        hash: get_s(item, "hash").unwrap_or_default().to_owned(),
        body: get_s(item, "body").unwrap_or_default().to_owned(),
    }
}

/// Full-jitter exponential backoff.
fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1u32 << attempt.min(16))
        .min(BACKOFF_CAP);
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::thread_rng().gen_range(0..=millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::item::fresh_store;

    fn point(seq: u64) -> ChainPoint {
        ChainPoint {
            seq,
            hash: [u8::try_from(seq).unwrap(); 32],
        }
    }

    /// A check that read an older checkpoint and finishes after a faster one never moves the
    /// checkpoint back.
    #[tokio::test]
    async fn the_checkpoint_only_moves_forward() {
        let store = fresh_store().await;
        let alice = ClientId::parse(&format!("alice-{}", ulid::Ulid::new())).unwrap();
        assert_eq!(store.audit_checkpoint(&alice).await.unwrap(), None);

        assert!(
            store
                .advance_audit_checkpoint(&alice, point(20))
                .await
                .unwrap()
        );
        assert!(
            !store
                .advance_audit_checkpoint(&alice, point(10))
                .await
                .unwrap()
        );
        assert!(
            !store
                .advance_audit_checkpoint(&alice, point(20))
                .await
                .unwrap()
        );
        assert_eq!(
            store.audit_checkpoint(&alice).await.unwrap(),
            Some(point(20))
        );

        assert!(
            store
                .advance_audit_checkpoint(&alice, point(25))
                .await
                .unwrap()
        );
        assert_eq!(
            store.audit_checkpoint(&alice).await.unwrap(),
            Some(point(25))
        );
    }
}
