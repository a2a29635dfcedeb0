//! Abuse resistance (issue 13): one client must not degrade the platform for the others. The quota
//! of open destination requests, the per-minute rate of changes, the expiry of requests queued too
//! long, and the reconciler's bounded, fair runs; then a flood.

use std::time::{Duration, Instant};

use dfns_client::{ApprovalId, DecisionValue};
use domain::{ClientId, DestinationRequestState as S};
use futures::StreamExt;
use platform::destinations::{self, DestinationInput};
use platform::reconcile::{self, RunLimits};
use platform::testing::{TestEnv, TestOptions};
use platform::{PlatformError, onboarding, rate_limit};
use store::DestinationRequest;
use store::open_requests::RateWindow;
use time::OffsetDateTime;

use crate::client_id;

/// A distinct, valid (lowercase) address for each `i`.
fn address(i: usize) -> String {
    format!("0x{:040x}", 0x1000_0000_u64 + i as u64)
}

fn add(i: usize) -> DestinationInput {
    DestinationInput {
        network: "EthereumSepolia".into(),
        address: address(i),
        label: "Exchange".into(),
        action: "add".into(),
    }
}

/// Every policy change waits for an officer, so requests stay open; webhooks as asked.
async fn env(webhooks: bool) -> TestEnv {
    TestEnv::start(TestOptions {
        policies_modify: true,
        webhooks,
        ..TestOptions::default()
    })
    .await
}

async fn opened(env: &TestEnv, name: &str) -> ClientId {
    let client = client_id(name);
    onboarding::open_account(&env.app, &client, "open")
        .await
        .unwrap();
    client
}

async fn state_of(env: &TestEnv, r: &DestinationRequest) -> DestinationRequest {
    env.app
        .store()
        .get_destination_request(&r.client_id, &r.id)
        .await
        .unwrap()
        .unwrap()
}

/// The actions of the client's audit trail, oldest first.
async fn audit_actions(env: &TestEnv, client: &ClientId) -> Vec<String> {
    let mut actions = Vec::new();
    let mut after = None;
    loop {
        let page = env
            .app
            .store()
            .list_audit_events(client, after, 100)
            .await
            .unwrap();
        for entry in &page.entries {
            let body: serde_json::Value = serde_json::from_str(&entry.body).unwrap();
            actions.push(body["action"].as_str().unwrap().to_owned());
        }
        match page.next_after_seq {
            Some(next) => after = Some(next),
            None => return actions,
        }
    }
}

/// A `Queued` request stored as if made `age` ago (the store's create, as an older platform would
/// have; counted in the client's open requests like any).
async fn queued_since(
    env: &TestEnv,
    client: &ClientId,
    i: usize,
    age: Duration,
) -> DestinationRequest {
    let created_at = OffsetDateTime::now_utc() - age;
    env.app
        .store()
        .create_destination_request(&store::NewDestinationRequest {
            id: domain::DestinationRequestId::new(),
            client_id: client.clone(),
            destination: domain::NetworkAddress::parse(
                domain::Network::EthereumSepolia,
                &address(i),
            )
            .unwrap(),
            label: "Exchange".into(),
            action: domain::DestinationAction::Add,
            created_at,
        })
        .await
        .unwrap()
}

fn is_quota_refusal(result: &Result<DestinationRequest, PlatformError>) -> bool {
    matches!(
        result,
        Err(PlatformError::TooManyRequests { code, retry_after_seconds: 60, .. })
            if *code == destinations::QUOTA_CODE
    )
}

/// A client's request that an officer approved while its webhook was lost: still
/// `PendingApproval` here, decided at Dfns.
async fn decided_but_unheard(env: &TestEnv, client: &ClientId, i: usize) -> DestinationRequest {
    let pending = destinations::create_request(&env.app, client, &add(i), "pending")
        .await
        .unwrap();
    assert_eq!(pending.state, S::PendingApproval);
    env.officer(0)
        .decide_approval(
            &ApprovalId::new(pending.approval_id.clone().unwrap()),
            DecisionValue::Approved,
            Some("checked"),
        )
        .await
        .unwrap();
    assert_eq!(state_of(env, &pending).await.state, S::PendingApproval);
    pending
}

#[tokio::test]
async fn beyond_its_quota_a_client_is_refused_with_a_429_and_nothing_is_stored() {
    let env = env(true).await;
    let client = opened(&env, "quota").await;
    let max = env.app.settings().max_open_destination_requests as usize;
    assert_eq!(max, 10, "the default quota");
    let mut made = Vec::new();
    for i in 0..max {
        made.push(
            destinations::create_request(&env.app, &client, &add(i), "q")
                .await
                .unwrap(),
        );
    }
    assert_eq!(made[0].state, S::PendingApproval);
    assert!(made[1..].iter().all(|r| r.state == S::Queued));
    let audit_before = audit_actions(&env, &client).await;

    // Over the quota, with and without an idempotency key.
    let refused = destinations::create_request(&env.app, &client, &add(100), "over").await;
    assert!(is_quota_refusal(&refused), "{refused:?}");
    let api = refused.unwrap_err().to_api_error();
    assert_eq!(api.status.as_u16(), 429);
    assert_eq!(api.code, "too_many_open_requests");
    assert_eq!(api.retry_after_seconds, Some(60));
    let key = store::IdempotencyKey {
        scope: format!("client:{client}:POST /v1/destination-requests"),
        key: "over-the-quota".into(),
        fingerprint: "f".into(),
    };
    let keyed =
        destinations::create_request_keyed(&env.app, &client, &add(101), "over", Some(&key))
            .await
            .map(|view| view.request);
    assert!(is_quota_refusal(&keyed), "{keyed:?}");

    // Nothing stored: no request, no audit line, no idempotency record.
    assert_eq!(
        destinations::list_requests(&env.app, &client)
            .await
            .unwrap()
            .len(),
        max
    );
    assert_eq!(audit_actions(&env, &client).await, audit_before);
    assert_eq!(
        env.app.store().remembered(&key).await.unwrap(),
        store::Remembered::Nothing
    );
    assert_eq!(
        env.app
            .store()
            .open_destination_request_count(&client)
            .await
            .unwrap(),
        max as u32
    );

    // A place frees when a request becomes final: the client cancels a queued one.
    destinations::cancel_request(&env.app, &client, &made[max - 1].id, "cancel")
        .await
        .unwrap();
    let again = destinations::create_request(&env.app, &client, &add(102), "again")
        .await
        .unwrap();
    assert_eq!(again.state, S::Queued);
    let full = destinations::create_request(&env.app, &client, &add(103), "full").await;
    assert!(is_quota_refusal(&full), "{full:?}");

    // …or an officer decides the pending one (its webhook settles it).
    env.officer(0)
        .decide_approval(
            &ApprovalId::new(made[0].approval_id.clone().unwrap()),
            DecisionValue::Denied,
            Some("no"),
        )
        .await
        .unwrap();
    let decided = crate::eventually(10, || async {
        (state_of(&env, &made[0]).await.state == S::Rejected).then_some(())
    })
    .await;
    assert!(decided.is_some(), "the denial's webhook settles it");
    let count = env
        .app
        .store()
        .open_destination_request_count(&client)
        .await
        .unwrap();
    assert_eq!(count, max as u32 - 1, "the settled request left the count");
    destinations::create_request(&env.app, &client, &add(104), "after-decision")
        .await
        .unwrap();

    // Another client is not affected by this one's quota.
    let other = opened(&env, "other").await;
    destinations::create_request(&env.app, &other, &add(0), "other")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_cannot_pass_the_quota() {
    let env = env(true).await;
    let client = opened(&env, "racer").await;
    let max = env.app.settings().max_open_destination_requests as usize;
    // More racers than places, all at once.
    let results: Vec<_> = futures::stream::iter(0..4 * max)
        .map(|i| {
            let app = env.app.clone();
            let client = client.clone();
            async move { destinations::create_request(&app, &client, &add(i), "race").await }
        })
        .buffer_unordered(4 * max)
        .collect()
        .await;
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    let refused = results.iter().filter(|r| is_quota_refusal(r)).count();
    assert_eq!(
        (accepted, refused),
        (max, 3 * max),
        "{:?}",
        results
            .iter()
            .filter(|r| r.is_err() && !is_quota_refusal(r))
            .collect::<Vec<_>>()
    );
    let open = destinations::list_requests(&env.app, &client)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| !domain::StateMachine::is_terminal(r.state))
        .count();
    assert_eq!(open, max);
    assert_eq!(
        env.app
            .store()
            .open_destination_request_count(&client)
            .await
            .unwrap(),
        max as u32
    );
}

#[tokio::test]
async fn the_rate_of_changes_is_counted_per_client_and_minute() {
    let env = env(false).await;
    let store = env.app.store();
    let alice = client_id("alice");
    let bob = client_id("bob");
    // 10:00:45 on some day: 15 s left in the minute.
    let now = OffsetDateTime::from_unix_timestamp(1_700_000_000 / 60 * 60 + 45).unwrap();
    for call in 1..=5 {
        assert_eq!(
            store.count_client_call(&alice, now, 5).await.unwrap(),
            RateWindow::Admitted { calls: call }
        );
    }
    assert_eq!(
        store.count_client_call(&alice, now, 5).await.unwrap(),
        RateWindow::Refused {
            retry_after_seconds: 15
        }
    );
    // Another client has its own count; the next minute starts afresh.
    assert_eq!(
        store.count_client_call(&bob, now, 5).await.unwrap(),
        RateWindow::Admitted { calls: 1 }
    );
    assert_eq!(
        store
            .count_client_call(&alice, now + time::Duration::seconds(15), 5)
            .await
            .unwrap(),
        RateWindow::Admitted { calls: 1 }
    );

    // Concurrent calls cannot pass the limit either.
    let later = now + time::Duration::minutes(10);
    let results: Vec<RateWindow> = futures::future::join_all(
        (0..30).map(|_| async { store.count_client_call(&alice, later, 7).await.unwrap() }),
    )
    .await;
    let admitted = results
        .iter()
        .filter(|r| matches!(r, RateWindow::Admitted { .. }))
        .count();
    assert_eq!(admitted, 7, "{results:?}");

    // Through the use case, with the deployment's limit (default 60 a minute).
    let per_minute = env.app.settings().client_mutations_per_minute.unwrap();
    assert_eq!(per_minute, 60);
    let carol = client_id("carol");
    // Not across a minute's end: start early in one.
    let second = OffsetDateTime::now_utc().second();
    if second > 40 {
        tokio::time::sleep(Duration::from_secs(u64::from(61 - second))).await;
    }
    for _ in 0..per_minute {
        rate_limit::admit_mutation(&env.app, &carol).await.unwrap();
    }
    match rate_limit::admit_mutation(&env.app, &carol).await {
        Err(PlatformError::TooManyRequests {
            code,
            retry_after_seconds,
            ..
        }) => {
            assert_eq!(code, rate_limit::RATE_CODE);
            assert!(
                (1..=60).contains(&retry_after_seconds),
                "{retry_after_seconds}"
            );
        }
        other => panic!("expected the rate's 429, got {other:?}"),
    }
}

#[tokio::test]
async fn a_request_queued_too_long_expires_audited_and_told() {
    let env = env(false).await;
    let client = opened(&env, "patient").await;
    let ttl = env.app.settings().queued_request_ttl;
    assert_eq!(ttl, Duration::from_secs(7 * 86_400), "the default TTL");
    // The slot is held by an undecided request; behind it, one queued for 8 days, one for 6.
    let pending = destinations::create_request(&env.app, &client, &add(0), "p")
        .await
        .unwrap();
    assert_eq!(pending.state, S::PendingApproval);
    let stale = queued_since(&env, &client, 1, Duration::from_secs(8 * 86_400)).await;
    let fresh = queued_since(&env, &client, 2, Duration::from_secs(6 * 86_400)).await;

    let report = reconcile::run(&env.app).await.unwrap();
    assert_eq!(report.queued_expired, 1, "{report:?}");
    assert_eq!(report.failures, 0, "{report:?}");
    let expired = state_of(&env, &stale).await;
    assert_eq!(expired.state, S::Cancelled);
    assert_eq!(
        expired.reason.as_deref(),
        Some("expired: queued for more than 7d")
    );
    assert_eq!(state_of(&env, &fresh).await.state, S::Queued);
    assert_eq!(state_of(&env, &pending).await.state, S::PendingApproval);

    let actions = audit_actions(&env, &client).await;
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "destination_request.expired")
            .count(),
        1,
        "{actions:?}"
    );
    let notes = env
        .app
        .store()
        .list_notifications(&client, 10, None)
        .await
        .unwrap();
    assert_eq!(notes.items[0].kind, "destination_request.expired");
    assert_eq!(notes.items[0].detail["requestId"], stale.id.to_string());
    // It left the client's open count (pending + fresh remain).
    assert_eq!(
        env.app
            .store()
            .open_destination_request_count(&client)
            .await
            .unwrap(),
        2
    );

    // Once only: a second run finds nothing to expire, and tells nobody again.
    let again = reconcile::run(&env.app).await.unwrap();
    assert_eq!(again.queued_expired, 0, "{again:?}");
    assert_eq!(
        env.app
            .store()
            .list_notifications(&client, 10, None)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

#[tokio::test]
async fn a_request_whose_turn_comes_after_its_ttl_expires_instead_of_going_to_dfns() {
    let env = env(false).await;
    let client = opened(&env, "late").await;
    // Queued too long, with the slot free: the queue step expires it and submits the next one.
    let stale = queued_since(&env, &client, 1, Duration::from_secs(8 * 86_400)).await;
    let fresh = queued_since(&env, &client, 2, Duration::from_secs(60)).await;
    reconcile::submit_next(&env.app, &client, "settled")
        .await
        .unwrap();
    assert_eq!(state_of(&env, &stale).await.state, S::Cancelled);
    assert_eq!(state_of(&env, &fresh).await.state, S::PendingApproval);
}

#[tokio::test]
async fn the_reconciler_takes_a_page_per_client_and_resumes_where_its_budget_ran_out() {
    let env = env(false).await;
    // Three clients, each with an approval decided while its webhook was lost.
    let mut clients = Vec::new();
    for (i, name) in ["fair-a", "fair-b", "fair-c"].into_iter().enumerate() {
        let client = opened(&env, name).await;
        let pending = decided_but_unheard(&env, &client, i).await;
        clients.push((client, pending));
    }
    // The first also has more open requests than a page (stored past the quota by the store).
    for i in 0..reconcile::PAGE_PER_CLIENT + 5 {
        queued_since(&env, &clients[0].0, 100 + i, Duration::from_secs(60)).await;
    }

    // No time at all: each run still takes one client, and the next run the next one.
    let limits = RunLimits {
        time_budget: Duration::ZERO,
        page_per_client: reconcile::PAGE_PER_CLIENT,
    };
    let mut applied_by_run = Vec::new();
    for run in 0..3 {
        let report = reconcile::run_with(&env.app, limits).await.unwrap();
        assert_eq!(report.clients_visited, 1, "run {run}: {report:?}");
        assert!(report.budget_exhausted, "run {run}: {report:?}");
        assert_eq!(report.approvals_applied, 1, "run {run}: {report:?}");
        assert!(report.work_left());
        let resumed_after = report
            .resumes_after
            .clone()
            .expect("where the next run starts");
        let (_, pending) = clients
            .iter()
            .find(|(c, _)| *c == resumed_after)
            .expect("one of ours");
        assert_eq!(state_of(&env, pending).await.state, S::Approved);
        if resumed_after == clients[0].0 {
            assert_eq!(
                report.open_requests,
                reconcile::PAGE_PER_CLIENT,
                "{report:?}"
            );
            assert_eq!(report.clients_with_more, 1, "{report:?}");
        }
        applied_by_run.push(resumed_after);
    }
    let mut distinct = applied_by_run.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        3,
        "each run took the next client: {applied_by_run:?}"
    );
    for (_, pending) in &clients {
        assert_eq!(state_of(&env, pending).await.state, S::Approved);
    }

    // With the deployment's budget, one run takes every client still with open requests: the
    // others' approvals are applied, so only the first (its new pending one and its long queue).
    let report = reconcile::run(&env.app).await.unwrap();
    assert_eq!(report.clients_visited, 1, "{report:?}");
    assert!(!report.budget_exhausted, "{report:?}");
    assert_eq!(report.resumes_after, None);
    assert_eq!(report.clients_with_more, 1, "{report:?}");
}

/// Client A tries to queue 5,000 destination requests, 32 at a time; it gets its quota and a 429
/// for every other one. Client B's decided approval, whose webhook was lost, is then still
/// resolved by one reconciler run. Figures on stdout (`--nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_from_one_client_does_not_keep_the_reconciler_from_another() {
    const ATTEMPTS: usize = 5_000;
    const PARALLELISM: usize = 32;
    let env = env(false).await;
    // A sorts before B in the index, so the reconciler meets A's requests first.
    let a = opened(&env, "aaa-flood").await;
    let b = opened(&env, "bbb-victim").await;
    let b_pending = decided_but_unheard(&env, &b, 0).await;
    let max = env.app.settings().max_open_destination_requests as usize;

    let started = Instant::now();
    let results: Vec<Result<DestinationRequest, PlatformError>> =
        futures::stream::iter(0..ATTEMPTS)
            .map(|i| {
                let app = env.app.clone();
                let a = a.clone();
                async move { destinations::create_request(&app, &a, &add(i), "flood").await }
            })
            .buffer_unordered(PARALLELISM)
            .collect()
            .await;
    let flood_time = started.elapsed();
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    let refused = results.iter().filter(|r| is_quota_refusal(r)).count();
    let other: Vec<_> = results
        .iter()
        .filter(|r| r.is_err() && !is_quota_refusal(r))
        .collect();
    println!(
        "flood: {ATTEMPTS} attempts by A, {PARALLELISM} at a time: {accepted} accepted, {refused} refused (429 quota), {} other errors, in {:.2} s ({:.0} attempts/s)",
        other.len(),
        flood_time.as_secs_f64(),
        ATTEMPTS as f64 / flood_time.as_secs_f64()
    );
    assert!(other.is_empty(), "{other:?}");
    assert_eq!(accepted, max);
    assert_eq!(refused, ATTEMPTS - max);
    assert_eq!(
        destinations::list_requests(&env.app, &a)
            .await
            .unwrap()
            .len(),
        max,
        "nothing stored for a refused attempt"
    );
    assert_eq!(
        audit_actions(&env, &a)
            .await
            .iter()
            .filter(|a| *a == "destination_request.created")
            .count(),
        max
    );

    let started = Instant::now();
    let report = reconcile::run(&env.app).await.unwrap();
    let run_time = started.elapsed();
    println!(
        "reconciler run after the flood: {:.3} s; report {}",
        run_time.as_secs_f64(),
        serde_json::to_string(&report).unwrap()
    );
    assert_eq!(state_of(&env, &b_pending).await.state, S::Approved);
    assert_eq!(report.approvals_applied, 1, "{report:?}");
    assert_eq!(report.failures, 0, "{report:?}");
    assert_eq!(report.clients_visited, 2, "{report:?}");
    assert!(!report.budget_exhausted, "{report:?}");
    // A's share of the run was one page: its oldest `max` (all it could queue).
    assert_eq!(report.open_requests, max + 1, "{report:?}");
}
