//! The store operations this crate added (notifications, onboarding step claims), directly.

use platform::testing::{TestEnv, TestOptions};
use store::notifications::{NewNotification, NotificationAppend};
use store::onboarding::StepClaim;
use time::{Duration, OffsetDateTime};

use crate::client_id;

fn options() -> TestOptions {
    TestOptions {
        webhooks: false,
        ..TestOptions::default()
    }
}

#[tokio::test]
async fn notifications_list_newest_first_page_by_page_and_dedupe_by_key() {
    let env = TestEnv::start(options()).await;
    let store = env.app.store();
    let client = client_id("notified");
    let other = client_id("other");
    for i in 0..5 {
        let appended = store
            .append_notification(&NewNotification {
                client_id: client.clone(),
                dedup_key: format!("event-{i}"),
                kind: "deposit.received".into(),
                occurred_at: OffsetDateTime::now_utc(),
                detail: serde_json::json!({ "n": i }),
            })
            .await
            .unwrap();
        assert!(matches!(appended, NotificationAppend::Created(_)));
    }
    let again = store
        .append_notification(&NewNotification {
            client_id: client.clone(),
            dedup_key: "event-2".into(),
            kind: "deposit.received".into(),
            occurred_at: OffsetDateTime::now_utc(),
            detail: serde_json::json!({ "n": "changed" }),
        })
        .await
        .unwrap();
    match again {
        NotificationAppend::Existing(existing) => assert_eq!(existing.detail["n"], 2),
        created => panic!("expected the existing notification, got {created:?}"),
    }

    let first = store.list_notifications(&client, 2, None).await.unwrap();
    let second = store
        .list_notifications(&client, 2, first.next_cursor.as_deref())
        .await
        .unwrap();
    let third = store
        .list_notifications(&client, 2, second.next_cursor.as_deref())
        .await
        .unwrap();
    let seen: Vec<i64> = [first.items, second.items, third.items.clone()]
        .concat()
        .iter()
        .map(|n| n.detail["n"].as_i64().unwrap())
        .collect();
    assert_eq!(seen, [4, 3, 2, 1, 0], "newest first, each once");
    assert_eq!(third.next_cursor, None);
    assert!(
        store
            .list_notifications(&other, 10, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn a_step_is_claimed_once_completed_once_and_taken_over_after_its_lease() {
    let env = TestEnv::start(options()).await;
    let store = env.app.store();
    let client = client_id("claims");
    let now = OffsetDateTime::now_utc();
    let lease = Duration::seconds(30);
    assert_eq!(
        store
            .claim_onboarding_step(&client, "wallet:X", "a", now, lease)
            .await
            .unwrap(),
        StepClaim::Claimed { resumed: false }
    );
    assert!(matches!(
        store
            .claim_onboarding_step(&client, "wallet:X", "b", now, lease)
            .await
            .unwrap(),
        StepClaim::Busy { .. }
    ));
    // After the lease, another caller takes over (and is told the step may be half done).
    let later = now + Duration::seconds(31);
    assert_eq!(
        store
            .claim_onboarding_step(&client, "wallet:X", "b", later, lease)
            .await
            .unwrap(),
        StepClaim::Claimed { resumed: true }
    );
    // The old holder can no longer complete it; the new one can, once.
    assert!(
        store
            .complete_onboarding_step(&client, "wallet:X", "a", "wa-1", later)
            .await
            .is_err()
    );
    store
        .complete_onboarding_step(&client, "wallet:X", "b", "wa-2", later)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_onboarding_step(&client, "wallet:X", "c", later + Duration::hours(1), lease)
            .await
            .unwrap(),
        StepClaim::Done {
            resource_id: "wa-2".into()
        }
    );
    // A released step is free at once.
    store
        .claim_onboarding_step(&client, "policy:Y", "d", now, lease)
        .await
        .unwrap();
    store
        .release_onboarding_step(&client, "policy:Y", "d")
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_onboarding_step(&client, "policy:Y", "e", now, lease)
            .await
            .unwrap(),
        StepClaim::Claimed { resumed: true }
    );
}
