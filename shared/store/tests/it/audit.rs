use aws_sdk_dynamodb::types::AttributeValue;
use domain::audit::{AuditEvent, ChainBreak, ChainVerdict};
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
