use aws_sdk_dynamodb::types::AttributeValue;
use domain::audit::{AuditEvent, ChainBreak, ChainEntry, ChainVerdict, verify_chain};
use domain::{Actor, AuditAction, ClientId};
use futures::future::join_all;
use serde_json::json;
use store::Store;

use crate::{client_id, fresh_store, t0};

fn event(client: &ClientId, n: u32) -> AuditEvent {
    AuditEvent {
        client_id: client.clone(),
        actor: Actor::System {
            id: format!("worker-{n}"),
        },
        action: AuditAction::parse("destination_request.created").unwrap(),
        at: t0() + time::Duration::seconds(i64::from(n)),
        request_id: format!("req-{n}"),
        details: json!({"n": n, "amount": "1000"}),
    }
}

fn event_key(client: &ClientId, seq: u64) -> (AttributeValue, AttributeValue) {
    (
        AttributeValue::S(format!("CLIENT#{client}")),
        AttributeValue::S(format!("AUDIT#EVENT#{seq:020}")),
    )
}

async fn set_attribute(
    store: &Store,
    client: &ClientId,
    seq: u64,
    name: &str,
    value: AttributeValue,
) {
    let (pk, sk) = event_key(client, seq);
    store
        .client()
        .update_item()
        .table_name(store.table_name())
        .key("pk", pk)
        .key("sk", sk)
        .update_expression("SET #a = :v")
        .expression_attribute_names("#a", name)
        .expression_attribute_values(":v", value)
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_appends_make_one_gapless_chain() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let appends = (1..=50).map(|n| {
        let (store, alice) = (store.clone(), alice.clone());
        tokio::spawn(async move { store.append_audit_event(&event(&alice, n)).await })
    });
    let sealed: Vec<_> = join_all(appends)
        .await
        .into_iter()
        .map(|r| r.unwrap().expect("append"))
        .collect();
    let mut seqs: Vec<u64> = sealed.iter().map(|e| e.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=50).collect::<Vec<_>>());

    // Read back in pages: 1..50 in order, each linked to the one before, every event present once.
    let mut entries = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_audit_events(&alice, after, 7).await.unwrap();
        entries.extend(page.entries);
        match page.next_after_seq {
            Some(seq) => after = Some(seq),
            None => break,
        }
    }
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=50).collect::<Vec<_>>()
    );
    for pair in entries.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    let mut numbers: Vec<u64> = entries
        .iter()
        .map(|e| e.event().unwrap().details["n"].as_u64().unwrap())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=50).collect::<Vec<_>>());

    assert_eq!(
        store.verify_audit_chain(&alice).await.unwrap(),
        ChainVerdict::Intact {
            length: 50,
            head_hash: entries[49].hash.clone()
        }
    );
}

/// A client reading its audit trail while the platform appends to it must never be told the
/// chain is broken: verification races appends, and only real damage may fail it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verification_while_appends_land_never_reports_a_break() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    store.append_audit_event(&event(&alice, 0)).await.unwrap();
    let writer = {
        let (store, alice) = (store.clone(), alice.clone());
        tokio::spawn(async move {
            for n in 1..=40 {
                store.append_audit_event(&event(&alice, n)).await.unwrap();
            }
        })
    };
    let mut verdicts = Vec::new();
    while !writer.is_finished() {
        verdicts.push(store.verify_audit_chain(&alice).await.unwrap());
    }
    writer.await.unwrap();
    assert!(
        verdicts.len() > 1,
        "verification never overlapped the appends"
    );
    let broken: Vec<_> = verdicts.iter().filter(|v| !v.is_intact()).collect();
    assert!(
        broken.is_empty(),
        "{} of {} reads broke: {broken:?}",
        broken.len(),
        verdicts.len()
    );
    assert!(store.verify_audit_chain(&alice).await.unwrap().is_intact());
}

#[tokio::test]
async fn altering_any_stored_event_fails_verification_at_that_event() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let mut originals = Vec::new();
    for n in 1..=5 {
        originals.push(store.append_audit_event(&event(&alice, n)).await.unwrap());
    }
    assert!(store.verify_audit_chain(&alice).await.unwrap().is_intact());

    for original in &originals {
        let seq = original.seq;
        let tampered_body = original
            .body
            .replace("\"amount\":\"1000\"", "\"amount\":\"9000\"");
        assert_ne!(tampered_body, original.body);
        let alterations: Vec<(&str, AttributeValue, ChainBreak)> = vec![
            (
                "body",
                AttributeValue::S(tampered_body),
                ChainBreak::HashMismatch,
            ),
            (
                "hash",
                AttributeValue::S("ab".repeat(32)),
                ChainBreak::HashMismatch,
            ),
            (
                "prevHash",
                AttributeValue::S("cd".repeat(32)),
                ChainBreak::PrevHashMismatch,
            ),
            (
                "seq",
                AttributeValue::N((seq + 100).to_string()),
                ChainBreak::Gap,
            ),
        ];
        for (attribute, value, reason) in alterations {
            set_attribute(&store, &alice, seq, attribute, value).await;
            assert_eq!(
                store.verify_audit_chain(&alice).await.unwrap(),
                ChainVerdict::Broken { seq, reason },
                "altered {attribute} of event {seq}"
            );
            // Put the original back: the chain verifies again.
            let original_value = match attribute {
                "body" => AttributeValue::S(original.body.clone()),
                "hash" => AttributeValue::S(original.hash.clone()),
                "prevHash" => AttributeValue::S(original.prev_hash.clone()),
                _ => AttributeValue::N(seq.to_string()),
            };
            set_attribute(&store, &alice, seq, attribute, original_value).await;
            assert!(store.verify_audit_chain(&alice).await.unwrap().is_intact());
        }
    }

    // Deleting the last event is caught by the head record.
    let (pk, sk) = event_key(&alice, 5);
    store
        .client()
        .delete_item()
        .table_name(store.table_name())
        .key("pk", pk)
        .key("sk", sk)
        .send()
        .await
        .unwrap();
    assert_eq!(
        store.verify_audit_chain(&alice).await.unwrap(),
        ChainVerdict::Broken {
            seq: 5,
            reason: ChainBreak::Gap
        }
    );
}

#[tokio::test]
async fn chains_are_per_client() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let bob = client_id("bob");
    store.append_audit_event(&event(&alice, 1)).await.unwrap();
    store.append_audit_event(&event(&alice, 2)).await.unwrap();
    let bobs = store.append_audit_event(&event(&bob, 1)).await.unwrap();
    assert_eq!(bobs.seq, 1);
    assert_eq!(
        store
            .list_audit_events(&bob, None, 10)
            .await
            .unwrap()
            .entries,
        vec![bobs]
    );
    assert!(store.verify_audit_chain(&alice).await.unwrap().is_intact());
    assert!(store.verify_audit_chain(&bob).await.unwrap().is_intact());
    let empty = client_id("carol");
    assert!(store.verify_audit_chain(&empty).await.unwrap().is_intact());
}

/// A fact reported many times at once (redelivered webhooks racing each other and the run that
/// caused them) is recorded once; other facts and plain appends interleave into one intact chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_once_key_records_its_fact_once_under_concurrent_repeats() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let bob = client_id("bob");
    let repeats = (1..=20).map(|n| {
        let (store, alice) = (store.clone(), alice.clone());
        tokio::spawn(async move {
            store
                .append_audit_event_once(&event(&alice, n), "transfer:tr-1:Confirmed")
                .await
        })
    });
    let others = (21..=30).map(|n| {
        let (store, alice) = (store.clone(), alice.clone());
        tokio::spawn(async move {
            let key = format!("transfer:tr-{n}:Confirmed");
            store.append_audit_event_once(&event(&alice, n), &key).await
        })
    });
    let plain = (31..=35).map(|n| {
        let (store, alice) = (store.clone(), alice.clone());
        tokio::spawn(async move { store.append_audit_event(&event(&alice, n)).await.map(Some) })
    });
    let results: Vec<_> = join_all(repeats.chain(others).chain(plain))
        .await
        .into_iter()
        .map(|r| r.unwrap().expect("append"))
        .collect();
    let recorded_repeats = results[..20].iter().filter(|r| r.is_some()).count();
    assert_eq!(
        recorded_repeats, 1,
        "the repeated fact is recorded exactly once"
    );
    assert!(results[20..].iter().all(Option::is_some));

    let entries = store
        .list_audit_events(&alice, None, 100)
        .await
        .unwrap()
        .entries;
    assert_eq!(entries.len(), 1 + 10 + 5);
    assert!(store.verify_audit_chain(&alice).await.unwrap().is_intact());

    // Later repeats still record nothing; the same key is another fact for another client.
    let again = store
        .append_audit_event_once(&event(&alice, 99), "transfer:tr-1:Confirmed")
        .await
        .unwrap();
    assert_eq!(again, None);
    let bobs = store
        .append_audit_event_once(&event(&bob, 1), "transfer:tr-1:Confirmed")
        .await
        .unwrap()
        .expect("bob's first");
    assert_eq!(bobs.seq, 1);
}

// ---------------------------------------------------------------------------------------------
// The checkpoint: each entry verified once.

fn checkpoint_key() -> AttributeValue {
    AttributeValue::S("AUDIT#CHECKPOINT".into())
}

/// The checkpoint item as stored: `(seq, hash)`.
async fn checkpoint(store: &Store, client: &ClientId) -> Option<(u64, String)> {
    let item = store
        .client()
        .get_item()
        .table_name(store.table_name())
        .key("pk", AttributeValue::S(format!("CLIENT#{client}")))
        .key("sk", checkpoint_key())
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item?;
    Some((
        item["seq"].as_n().unwrap().parse().unwrap(),
        item["hash"].as_s().unwrap().clone(),
    ))
}

async fn set_checkpoint(store: &Store, client: &ClientId, name: &str, value: AttributeValue) {
    store
        .client()
        .update_item()
        .table_name(store.table_name())
        .key("pk", AttributeValue::S(format!("CLIENT#{client}")))
        .key("sk", checkpoint_key())
        .update_expression("SET #a = :v")
        .expression_attribute_names("#a", name)
        .expression_attribute_values(":v", value)
        .send()
        .await
        .unwrap();
}

async fn append_n(store: &Store, client: &ClientId, from: u32, to: u32) -> Vec<ChainEntry> {
    let mut sealed = Vec::new();
    for n in from..=to {
        sealed.push(store.append_audit_event(&event(client, n)).await.unwrap());
    }
    sealed
}

fn intact(length: u64, head: &ChainEntry) -> ChainVerdict {
    ChainVerdict::Intact {
        length,
        head_hash: head.hash.clone(),
    }
}

#[tokio::test]
async fn after_the_first_check_only_new_entries_are_read() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let empty = store.check_audit_chain(&alice).await.unwrap();
    assert_eq!(
        (empty.verdict.clone(), empty.entries_read),
        (verify_chain(&alice, &[]), 0)
    );
    assert_eq!(
        checkpoint(&store, &alice).await,
        None,
        "nothing to checkpoint"
    );

    let sealed = append_n(&store, &alice, 1, 40).await;
    // No checkpoint yet: the whole chain, once.
    let first = store.check_audit_chain(&alice).await.unwrap();
    assert_eq!(first.verdict, intact(40, &sealed[39]));
    assert_eq!((first.from_seq, first.entries_read), (0, 40));
    assert_eq!(
        checkpoint(&store, &alice).await,
        Some((40, sealed[39].hash.clone()))
    );

    // Nothing new: the checkpoint's own entry only.
    let again = store.check_audit_chain(&alice).await.unwrap();
    assert_eq!(again.verdict, intact(40, &sealed[39]));
    assert_eq!((again.from_seq, again.entries_read), (40, 1));

    // Three new entries: those and the checkpoint's.
    let more = append_n(&store, &alice, 41, 43).await;
    let later = store.check_audit_chain(&alice).await.unwrap();
    assert_eq!(later.verdict, intact(43, &more[2]));
    assert_eq!((later.from_seq, later.entries_read), (40, 4));
    assert_eq!(
        checkpoint(&store, &alice).await,
        Some((43, more[2].hash.clone()))
    );
    // The same verdict as the full verification, which still reads everything.
    assert_eq!(
        store.verify_audit_chain(&alice).await.unwrap(),
        later.verdict
    );
}

#[tokio::test]
async fn an_entry_altered_after_the_checkpoint_is_reported_and_holds_the_checkpoint() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    append_n(&store, &alice, 1, 10).await;
    assert!(
        store
            .check_audit_chain(&alice)
            .await
            .unwrap()
            .verdict
            .is_intact()
    );
    let new = append_n(&store, &alice, 11, 15).await;

    let original = &new[2]; // seq 13
    let tampered = original
        .body
        .replace("\"amount\":\"1000\"", "\"amount\":\"9000\"");
    set_attribute(&store, &alice, 13, "body", AttributeValue::S(tampered)).await;
    for _ in 0..2 {
        let check = store.check_audit_chain(&alice).await.unwrap();
        assert_eq!(
            check.verdict,
            ChainVerdict::Broken {
                seq: 13,
                reason: ChainBreak::HashMismatch
            }
        );
        assert_eq!(
            check.from_seq, 10,
            "a broken chain never moves the checkpoint"
        );
    }
    // Re-sealed in place (its own hash fits its body): the next entry no longer points at it.
    set_attribute(
        &store,
        &alice,
        13,
        "hash",
        AttributeValue::S("ab".repeat(32)),
    )
    .await;
    assert!(matches!(
        store.check_audit_chain(&alice).await.unwrap().verdict,
        ChainVerdict::Broken { seq: 13, .. }
    ));

    set_attribute(
        &store,
        &alice,
        13,
        "body",
        AttributeValue::S(original.body.clone()),
    )
    .await;
    set_attribute(
        &store,
        &alice,
        13,
        "hash",
        AttributeValue::S(original.hash.clone()),
    )
    .await;
    let check = store.check_audit_chain(&alice).await.unwrap();
    assert_eq!(check.verdict, intact(15, &new[4]));
    assert_eq!(check.from_seq, 10);
    assert_eq!(checkpoint(&store, &alice).await.unwrap().0, 15);
}

/// What the checkpoint trusts: an entry before it is not re-read by the check (reads of the page
/// it is on, and the full verification, still find it).
#[tokio::test]
async fn entries_before_the_checkpoint_are_trusted_and_the_full_verification_still_checks_them() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let sealed = append_n(&store, &alice, 1, 10).await;
    assert!(
        store
            .check_audit_chain(&alice)
            .await
            .unwrap()
            .verdict
            .is_intact()
    );
    let tampered = sealed[4]
        .body
        .replace("\"amount\":\"1000\"", "\"amount\":\"9000\"");
    set_attribute(&store, &alice, 5, "body", AttributeValue::S(tampered)).await;
    assert_eq!(
        store.check_audit_chain(&alice).await.unwrap().verdict,
        intact(10, &sealed[9])
    );
    assert_eq!(
        store.verify_audit_chain(&alice).await.unwrap(),
        ChainVerdict::Broken {
            seq: 5,
            reason: ChainBreak::HashMismatch
        }
    );
}

#[tokio::test]
async fn a_checkpoint_that_does_not_match_the_chain_is_reported_not_trusted() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let sealed = append_n(&store, &alice, 1, 10).await;
    assert!(
        store
            .check_audit_chain(&alice)
            .await
            .unwrap()
            .verdict
            .is_intact()
    );
    let at_checkpoint = ChainVerdict::Broken {
        seq: 10,
        reason: ChainBreak::CheckpointMismatch,
    };

    // Another hash: with nothing new, and with new entries (whose first one points at entry 10,
    // not at the checkpoint's hash).
    set_checkpoint(&store, &alice, "hash", AttributeValue::S("ef".repeat(32))).await;
    assert_eq!(
        store.check_audit_chain(&alice).await.unwrap().verdict,
        at_checkpoint
    );
    let new = append_n(&store, &alice, 11, 12).await;
    for _ in 0..2 {
        let check = store.check_audit_chain(&alice).await.unwrap();
        assert_eq!(check.verdict, at_checkpoint);
        assert_eq!(
            checkpoint(&store, &alice).await.unwrap().0,
            10,
            "left as found"
        );
    }
    // Entry 10 re-sealed with another body and the checkpoint moved to its new hash: entry 11
    // still points at the original.
    let mut forged = event(&alice, 10);
    forged.details = json!({"n": 10, "amount": "9000"});
    let prev = domain::audit::decode_hash(&sealed[9].prev_hash).unwrap();
    let resealed = ChainEntry::seal(10, &prev, &forged);
    set_attribute(
        &store,
        &alice,
        10,
        "body",
        AttributeValue::S(resealed.body.clone()),
    )
    .await;
    set_attribute(
        &store,
        &alice,
        10,
        "hash",
        AttributeValue::S(resealed.hash.clone()),
    )
    .await;
    set_checkpoint(
        &store,
        &alice,
        "hash",
        AttributeValue::S(resealed.hash.clone()),
    )
    .await;
    assert_eq!(
        store.check_audit_chain(&alice).await.unwrap().verdict,
        ChainVerdict::Broken {
            seq: 11,
            reason: ChainBreak::PrevHashMismatch
        }
    );
    // Entry 10 restored, the checkpoint's hash right again: intact.
    set_attribute(
        &store,
        &alice,
        10,
        "body",
        AttributeValue::S(sealed[9].body.clone()),
    )
    .await;
    set_attribute(
        &store,
        &alice,
        10,
        "hash",
        AttributeValue::S(sealed[9].hash.clone()),
    )
    .await;
    set_checkpoint(
        &store,
        &alice,
        "hash",
        AttributeValue::S(sealed[9].hash.clone()),
    )
    .await;
    assert_eq!(
        store.check_audit_chain(&alice).await.unwrap().verdict,
        intact(12, &new[1])
    );

    // Past the head, or unreadable: reported.
    set_checkpoint(&store, &alice, "seq", AttributeValue::N("99".into())).await;
    assert_eq!(
        store.check_audit_chain(&alice).await.unwrap().verdict,
        ChainVerdict::Broken {
            seq: 99,
            reason: ChainBreak::CheckpointMismatch
        }
    );
    set_checkpoint(&store, &alice, "seq", AttributeValue::S("twelve".into())).await;
    assert_eq!(
        store.check_audit_chain(&alice).await.unwrap().verdict,
        ChainVerdict::Broken {
            seq: 1,
            reason: ChainBreak::CheckpointMismatch
        }
    );
}

/// Checks racing appends and each other (so checkpoint writes race too) never report a break,
/// and the checkpoint never moves back.
#[tokio::test(flavor = "multi_thread", worker_threads = 6)]
async fn checks_while_appends_land_never_report_a_break() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    append_n(&store, &alice, 0, 0).await;
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (store, alice) = (store.clone(), alice.clone());
            tokio::spawn(async move {
                for n in 1..=30 {
                    store
                        .append_audit_event(&event(&alice, w * 100 + n))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    let checkers: Vec<_> = (0..5)
        .map(|_| {
            let (store, alice) = (store.clone(), alice.clone());
            tokio::spawn(async move {
                let mut checks = Vec::new();
                let mut last_checkpoint = 0;
                loop {
                    let check = store.check_audit_chain(&alice).await.unwrap();
                    let at = checkpoint(&store, &alice).await.map_or(0, |c| c.0);
                    assert!(
                        at >= last_checkpoint,
                        "checkpoint moved back: {last_checkpoint} → {at}"
                    );
                    last_checkpoint = at;
                    let done = matches!(check.verdict, ChainVerdict::Intact { length: 61, .. });
                    checks.push(check);
                    if done || checks.len() > 2_000 {
                        return checks;
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let mut all = Vec::new();
    for checker in checkers {
        all.extend(checker.await.unwrap());
    }
    let partial = all
        .iter()
        .filter(|c| matches!(c.verdict, ChainVerdict::Intact { length, .. } if length < 61))
        .count();
    assert!(partial > 1, "no check overlapped the appends");
    let broken: Vec<_> = all.iter().filter(|c| !c.verdict.is_intact()).collect();
    assert!(
        broken.is_empty(),
        "{} of {} checks broke: {broken:?}",
        broken.len(),
        all.len()
    );
    let last = store.check_audit_chain(&alice).await.unwrap();
    assert_eq!(
        last.verdict,
        store.verify_audit_chain(&alice).await.unwrap()
    );
    assert_eq!((last.from_seq, last.entries_read), (61, 1));
}

/// The head checks hold from a checkpoint too: a head moved back (entries beyond it that it does
/// not count) or pointing at another hash is reported.
#[tokio::test]
async fn a_head_that_does_not_match_the_entries_after_the_checkpoint_is_reported() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    append_n(&store, &alice, 1, 10).await;
    assert!(
        store
            .check_audit_chain(&alice)
            .await
            .unwrap()
            .verdict
            .is_intact()
    );
    let new = append_n(&store, &alice, 11, 15).await;
    let set_head = |seq: u64, hash: String| {
        let store = store.clone();
        let alice = alice.clone();
        async move {
            store
                .client()
                .update_item()
                .table_name(store.table_name())
                .key("pk", AttributeValue::S(format!("CLIENT#{alice}")))
                .key("sk", AttributeValue::S("AUDIT#HEAD".into()))
                .update_expression("SET seq = :s, #h = :h")
                .expression_attribute_names("#h", "hash")
                .expression_attribute_values(":s", AttributeValue::N(seq.to_string()))
                .expression_attribute_values(":h", AttributeValue::S(hash))
                .send()
                .await
                .unwrap();
        }
    };
    set_head(12, new[1].hash.clone()).await;
    assert_eq!(
        store.check_audit_chain(&alice).await.unwrap().verdict,
        ChainVerdict::Broken {
            seq: 12,
            reason: ChainBreak::HeadMismatch
        }
    );
    set_head(15, "ab".repeat(32)).await;
    assert_eq!(
        store.check_audit_chain(&alice).await.unwrap().verdict,
        ChainVerdict::Broken {
            seq: 15,
            reason: ChainBreak::HeadMismatch
        }
    );
    set_head(15, new[4].hash.clone()).await;
    assert_eq!(
        store.check_audit_chain(&alice).await.unwrap().verdict,
        intact(15, &new[4])
    );
    // A head behind the checkpoint.
    set_head(9, "ab".repeat(32)).await;
    assert_eq!(
        store.check_audit_chain(&alice).await.unwrap().verdict,
        ChainVerdict::Broken {
            seq: 15,
            reason: ChainBreak::CheckpointMismatch
        }
    );
}

/// Issue 19: the webhook consumer's batch append. A hundred once-keyed facts (more than one
/// transaction's worth) make one gapless chain in order; the same batch again appends nothing;
/// a batch mixing recorded and new facts appends only the new ones, in order.
#[tokio::test]
async fn a_batch_appends_each_fact_once_in_order_across_transactions() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let lines: Vec<(AuditEvent, String)> = (1..=100)
        .map(|n| (event(&alice, n), format!("fact-{n}")))
        .collect();
    assert_eq!(
        store
            .append_audit_events_once(&alice, &lines)
            .await
            .unwrap(),
        100
    );
    assert_eq!(
        store
            .append_audit_events_once(&alice, &lines)
            .await
            .unwrap(),
        0,
        "each fact once"
    );
    let mut mixed: Vec<(AuditEvent, String)> = (95..=105)
        .map(|n| (event(&alice, n), format!("fact-{n}")))
        .collect();
    mixed.push((event(&alice, 105), "fact-105".into()));
    assert_eq!(
        store
            .append_audit_events_once(&alice, &mixed)
            .await
            .unwrap(),
        5,
        "only 101..=105, and 105 once"
    );
    let page = store.list_audit_events(&alice, None, 1000).await.unwrap();
    let ns: Vec<u64> = page
        .entries
        .iter()
        .map(|e| e.event().unwrap().details["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns, (1..=105).collect::<Vec<u64>>());
    assert!(matches!(
        store.verify_audit_chain(&alice).await.unwrap(),
        ChainVerdict::Intact { length: 105, .. }
    ));
    let other = client_id("bob");
    assert!(
        store
            .append_audit_events_once(&other, &lines[..1])
            .await
            .is_err(),
        "a batch for one client holds only its events"
    );
}

/// Batch appends racing single appends for one client leave one gapless chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_and_single_appends_racing_make_one_gapless_chain() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let batches = (0..4).map(|b| {
        let (store, alice) = (store.clone(), alice.clone());
        tokio::spawn(async move {
            let lines: Vec<(AuditEvent, String)> = (1..=25)
                .map(|n| (event(&alice, b * 100 + n), format!("batch-{b}-{n}")))
                .collect();
            store.append_audit_events_once(&alice, &lines).await
        })
    });
    let singles = (1..=20).map(|n| {
        let (store, alice) = (store.clone(), alice.clone());
        tokio::spawn(async move { store.append_audit_event(&event(&alice, 1000 + n)).await })
    });
    for appended in join_all(batches).await {
        assert_eq!(appended.unwrap().unwrap(), 25);
    }
    for single in join_all(singles).await {
        single.unwrap().unwrap();
    }
    assert!(matches!(
        store.verify_audit_chain(&alice).await.unwrap(),
        ChainVerdict::Intact { length: 120, .. }
    ));
}
