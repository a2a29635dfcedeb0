//! The activity read model (issue 17): paging by time with a watermark, idempotent writes of the
//! same fact, transfers moving forward only, a transfer's own `Out` history entry folded whichever
//! arrives first, and governance rows written with their audit entry.

use domain::{Actor, AuditAction, AuditEvent, ClientId};
use serde_json::json;
use store::Store;
use store::activity::{ActivitySource, ChainRow, TransferRow};

use crate::{client_id, fresh_store, t0};

fn nanos(seconds: i64) -> i128 {
    (t0() + time::Duration::seconds(seconds)).unix_timestamp_nanos()
}

async fn transfer(
    store: &Store,
    client: &ClientId,
    id: &str,
    at: i64,
    rank: u8,
    tx: Option<&str>,
) -> bool {
    store
        .record_activity_transfer(
            client,
            &TransferRow {
                transfer_id: id,
                requested_at_nanos: nanos(at),
                wallet_id: "wa-1",
                tx_hash: tx,
                status_rank: rank,
                body: format!("{{\"id\":\"{id}\",\"rank\":{rank}}}"),
            },
        )
        .await
        .unwrap()
}

async fn chain(store: &Store, client: &ClientId, tx: &str, at: i64, outgoing: bool) -> bool {
    let direction = if outgoing { "Out" } else { "In" };
    store
        .record_activity_chain(
            client,
            &ChainRow {
                row_id: &format!("chain:wa-1:{tx}:NativeTransfer::{direction}"),
                at_nanos: nanos(at),
                wallet_id: "wa-1",
                tx_hash: tx,
                outgoing,
                body: format!("{{\"txHash\":\"{tx}\"}}"),
            },
        )
        .await
        .unwrap()
}

/// Every row id, newest first, read `limit` at a time through the cursor.
async fn read_all(store: &Store, client: &ClientId, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut before: Option<(i128, String)> = None;
    loop {
        let page = store
            .activity_page(
                client,
                before.as_ref().map(|(at, id)| (*at, id.as_str())),
                limit,
            )
            .await
            .unwrap();
        assert!(page.rows.len() <= limit);
        seen.extend(page.rows.iter().map(|r| r.row_id.clone()));
        if !page.more {
            return seen;
        }
        let last = page.rows.last().expect("a page with more has rows");
        before = Some((last.at_nanos, last.row_id.clone()));
    }
}

#[tokio::test]
async fn pages_serve_every_row_once_newest_first_for_any_page_size() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let bob = client_id("bob");
    // Written out of time order; every three rows share a second, so ids break ties.
    let mut expected = Vec::new();
    for i in (0..23).rev() {
        let at = i / 3;
        if i % 2 == 0 {
            transfer(&store, &alice, &format!("xfr-{i:02}"), at, 1, None).await;
            expected.push((nanos(at), format!("transfer:xfr-{i:02}")));
        } else {
            chain(&store, &alice, &format!("0x{i:02}"), at, false).await;
            expected.push((nanos(at), format!("chain:wa-1:0x{i:02}:NativeTransfer::In")));
        }
    }
    // Another client's rows never show.
    transfer(&store, &bob, "xfr-bob", 5, 1, None).await;
    expected.sort_by(|a, b| b.cmp(a));
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();
    for limit in [1, 2, 3, 5, 7, 22, 23, 24, 100] {
        assert_eq!(
            read_all(&store, &alice, limit).await,
            expected,
            "page size {limit}"
        );
    }
    assert_eq!(read_all(&store, &bob, 50).await, ["transfer:xfr-bob"]);
}

#[tokio::test]
async fn a_page_reads_the_same_number_of_items_wherever_it_starts() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    for i in 0..120 {
        chain(&store, &alice, &format!("0x{i:03}"), i, false).await;
    }
    // The 5th page of 20 is the rows 81st to 100th from the newest.
    let mut before: Option<(i128, String)> = None;
    for _ in 0..4 {
        let page = store
            .activity_page(&alice, before.as_ref().map(|(a, i)| (*a, i.as_str())), 20)
            .await
            .unwrap();
        let last = page.rows.last().unwrap();
        before = Some((last.at_nanos, last.row_id.clone()));
    }
    let fifth = store
        .activity_page(&alice, before.as_ref().map(|(a, i)| (*a, i.as_str())), 20)
        .await
        .unwrap();
    let first = fifth.rows.first().unwrap();
    assert_eq!(first.row_id, "chain:wa-1:0x039:NativeTransfer::In");
    assert_eq!(first.at_nanos, nanos(39));
    assert!(fifth.more);
}

#[tokio::test]
async fn a_repeated_fact_is_one_row_and_a_transfer_never_moves_back() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    assert!(chain(&store, &alice, "0xd1", 1, false).await);
    assert!(!chain(&store, &alice, "0xd1", 1, false).await, "redelivery");

    assert!(transfer(&store, &alice, "xfr-1", 2, 3, Some("0xt1")).await); // Broadcasted
    assert!(
        !transfer(&store, &alice, "xfr-1", 2, 1, None).await,
        "a late Pending"
    );
    assert!(
        !transfer(&store, &alice, "xfr-1", 2, 3, Some("0xt1")).await,
        "Broadcasted again"
    );
    let rows = store.activity_page(&alice, None, 10).await.unwrap().rows;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].row_id, "transfer:xfr-1");
    assert_eq!(
        rows[0].body, "{\"id\":\"xfr-1\",\"rank\":3}",
        "still Broadcasted"
    );

    assert!(transfer(&store, &alice, "xfr-1", 2, 4, Some("0xt1")).await); // Confirmed
    let rows = store.activity_page(&alice, None, 10).await.unwrap().rows;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].body, "{\"id\":\"xfr-1\",\"rank\":4}");
    assert_eq!(rows[0].source, ActivitySource::Transfer);
}

#[tokio::test]
async fn a_transfers_own_out_entry_is_folded_whichever_arrives_first() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    // Transfer first, then its history entry.
    transfer(&store, &alice, "xfr-1", 10, 4, Some("0xt1")).await;
    chain(&store, &alice, "0xt1", 11, true).await;
    // History entry first, then the transfer's confirmation.
    chain(&store, &alice, "0xt2", 21, true).await;
    transfer(&store, &alice, "xfr-2", 20, 1, None).await;
    transfer(&store, &alice, "xfr-2", 20, 4, Some("0xt2")).await;
    // An outgoing movement no transfer of ours explains, and a deposit with a hash of ours.
    chain(&store, &alice, "0xother", 30, true).await;
    chain(&store, &alice, "0xt1", 12, false).await;

    let ids = read_all(&store, &alice, 2).await;
    assert_eq!(
        ids,
        [
            "chain:wa-1:0xother:NativeTransfer::Out",
            "transfer:xfr-2",
            "chain:wa-1:0xt1:NativeTransfer::In",
            "transfer:xfr-1",
        ]
    );
}

/// However a transfer and its own `Out` history entry interleave, a reader never sees both: a
/// CSV read just after a page lists the same rows (found by an end-to-end run, where the entry
/// showed between its write and its fold).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_never_sees_a_transfer_beside_its_own_out_entry() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let store = Arc::new(fresh_store().await);
    let alice = client_id("alice");
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, alice, done) = (store.clone(), alice.clone(), done.clone());
        tokio::spawn(async move {
            let (mut reads, mut both) = (0, std::collections::BTreeSet::new());
            while !done.load(Ordering::SeqCst) {
                let rows = store.activity_page(&alice, None, 500).await.unwrap().rows;
                reads += 1;
                for row in &rows {
                    let Some(n) = row.row_id.strip_prefix("transfer:xfr-") else {
                        continue;
                    };
                    let own_entry = format!("chain:wa-1:0xt{n}:NativeTransfer::Out");
                    if rows.iter().any(|r| r.row_id == own_entry) {
                        both.insert(n.to_owned());
                    }
                }
            }
            (reads, both)
        })
    };
    let pairs = 60;
    let writers = (0..pairs).map(|k| {
        let (store, alice) = (store.clone(), alice.clone());
        async move {
            let (tx, id) = (format!("0xt{k}"), format!("xfr-{k}"));
            let transfer = transfer(&store, &alice, &id, k, 4, Some(&tx));
            let entry = chain(&store, &alice, &tx, k + 1, true);
            // Half with the history entry first.
            if k % 2 == 0 {
                tokio::join!(transfer, entry);
            } else {
                tokio::join!(entry, transfer);
            }
        }
    });
    futures::future::join_all(writers).await;
    done.store(true, Ordering::SeqCst);
    let (reads, both) = reader.await.unwrap();
    assert!(
        reads > 5,
        "the reader read while they wrote ({reads} reads)"
    );
    assert!(both.is_empty(), "seen side by side: transfers {both:?}");
    let rows = store.activity_page(&alice, None, 500).await.unwrap().rows;
    assert_eq!(rows.len(), pairs as usize, "one row per movement");
    assert!(rows.iter().all(|r| r.source == ActivitySource::Transfer));
}

fn audit_event(client: &ClientId, action: &str, n: i64) -> AuditEvent {
    AuditEvent {
        client_id: client.clone(),
        actor: Actor::System { id: "test".into() },
        action: AuditAction::parse(action).unwrap(),
        at: t0() + time::Duration::seconds(n),
        request_id: format!("req-{n}"),
        details: json!({ "n": n }),
    }
}

#[tokio::test]
async fn governance_entries_get_their_row_with_the_append_and_movement_records_none() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let opened = store
        .append_audit_event(&audit_event(&alice, "account.opened", 1))
        .await
        .unwrap();
    store
        .append_audit_event(&audit_event(&alice, "deposit.received", 2))
        .await
        .unwrap();
    // The webhook consumer's batch path too.
    store
        .append_audit_events_once(
            &alice,
            &[
                (
                    audit_event(&alice, "transfer.status_reported", 3),
                    "t:3".into(),
                ),
                (
                    audit_event(&alice, "destination_request.approved", 4),
                    "d:4".into(),
                ),
            ],
        )
        .await
        .unwrap();
    let rows = store.activity_page(&alice, None, 10).await.unwrap().rows;
    let summary: Vec<_> = rows
        .iter()
        .map(|r| (r.row_id.as_str(), r.source, r.seq))
        .collect();
    assert_eq!(
        summary,
        [
            ("audit:00000000000000000004", ActivitySource::Audit, Some(4)),
            ("audit:00000000000000000001", ActivitySource::Audit, Some(1)),
        ]
    );
    assert_eq!(rows[1].body, opened.body, "the entry's sealed body");
    // The backfill writes the same key: nothing new.
    assert!(!store.record_activity_audit(&alice, &opened).await.unwrap());
    assert_eq!(
        store
            .activity_page(&alice, None, 10)
            .await
            .unwrap()
            .rows
            .len(),
        2
    );
}

#[tokio::test]
async fn the_limits_window_reads_transfers_from_its_start_only() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    transfer(&store, &alice, "xfr-old", 0, 4, None).await;
    chain(&store, &alice, "0xd1", 100, false).await;
    transfer(&store, &alice, "xfr-new", 200, 1, None).await;
    let rows = store
        .activity_transfers_since(&alice, nanos(50))
        .await
        .unwrap();
    let ids: Vec<_> = rows.iter().map(|r| r.row_id.as_str()).collect();
    assert_eq!(ids, ["transfer:xfr-new"]);
}

#[tokio::test]
async fn a_policy_snapshot_keeps_the_latest_read() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    store
        .record_client_policy(&alice, "whitelist", "plc-1")
        .await
        .unwrap();
    assert!(
        store
            .put_policy_snapshot(&alice, "plc-1", "{\"v\":2}", 2_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .put_policy_snapshot(&alice, "plc-1", "{\"v\":1}", 1_000)
            .await
            .unwrap(),
        "an older read"
    );
    let records = store.client_policies_with_snapshots(&alice).await.unwrap();
    assert_eq!(
        records.recorded.get("whitelist").map(String::as_str),
        Some("plc-1")
    );
    assert_eq!(
        records.snapshots.get("plc-1").map(String::as_str),
        Some("{\"v\":2}")
    );
}
