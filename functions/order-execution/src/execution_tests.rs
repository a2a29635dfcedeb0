//! Order execution against DynamoDB Local and the in-process Dfns emulator (run through
//! `cargo xtask test`, or `cargo xtask exec -- cargo test -p order-execution`). Each test has its
//! own table and emulator.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use dfns_client::{DfnsClient, TransferId, TransferRequest};
use domain::{Actor, ClientId, OrderId, OrderState};
use platform::testing::{TestEnv, TestOptions};
use platform::trading::authorizations::{self, AuthorizationStatus};
use platform::trading::orders::{self, OrderInput};
use platform::trading::{ExecutionHooks, Executor, TradingConfig, on_transfer_event};
use serde_json::{Value, json};
use store::Order;
use time::OffsetDateTime;

const ONE_ETH: u128 = 1_000_000_000_000_000_000;

async fn transfers_created(env: &TestEnv) -> u64 {
    let stats = reqwest::get(env.control_url("stats"))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    stats["transfers"].as_u64().expect("stats.transfers")
}

/// An onboarded client holding 1000 ETH.
async fn funded_client(env: &TestEnv, name: &str) -> ClientId {
    let client = ClientId::parse(&format!("{name}-{}", ulid::Ulid::new())).unwrap();
    platform::onboarding::open_account(&env.app, &client, "open")
        .await
        .expect("account opened");
    let wallet = env.app.store().list_wallets(&client).await.unwrap()[0].clone();
    env.control(
        reqwest::Method::POST,
        "deposits",
        json!({"walletId": wallet.wallet_id.as_str(), "kind": "Native", "amount": (1000 * ONE_ETH).to_string()}),
    )
    .await;
    client
}

async fn authorize(env: &TestEnv, client: &ClientId, exchange: &str) -> AuthorizationStatus {
    let (view, created) = authorizations::authorize(
        &env.app,
        &TradingConfig::default(),
        client,
        exchange,
        "authorize",
    )
    .await
    .expect("authorized");
    assert!(created);
    view.status
}

async fn order(env: &TestEnv, client: &ClientId, exchange: &str, amount: u128) -> Order {
    orders::create_order(
        &env.app,
        &TradingConfig::default(),
        "desk-1",
        &OrderInput {
            client_id: client.to_string(),
            exchange: exchange.into(),
            asset: "ETH".into(),
            amount: amount.to_string(),
            execute_at: None,
            network: None,
        },
        "create",
        None,
    )
    .await
    .expect("order created")
}

async fn stored(env: &TestEnv, id: &OrderId) -> Order {
    env.app.store().get_order(id).await.unwrap().unwrap()
}

/// A moment after every order created so far is due.
fn soon() -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::seconds(1)
}

/// Waits until the emulator reports the order's transfer final, then applies it as the webhook
/// receiver would. Returns the transfer.
async fn settle(env: &TestEnv, dfns: &DfnsClient, order: &Order) -> TransferRequest {
    let order = stored(env, &order.id).await;
    let transfer_id = order
        .transfer_id
        .clone()
        .expect("the order records its transfer");
    let wallet = env
        .app
        .store()
        .list_wallets(&order.client_id)
        .await
        .unwrap()[0]
        .clone();
    let wallet_id = dfns_client::WalletId::new(wallet.wallet_id.as_str());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let transfer = dfns
            .get_transfer(&wallet_id, &TransferId::new(transfer_id.as_str()))
            .await
            .expect("transfer readable");
        if transfer.status.is_terminal() {
            on_transfer_event(
                &env.app,
                &transfer,
                Actor::Dfns {
                    id: "test-event".into(),
                },
                "event",
            )
            .await
            .expect("event applied");
            return transfer;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "transfer {transfer_id} never became final"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn audit_actions(env: &TestEnv, client: &ClientId) -> Vec<String> {
    let page = env
        .app
        .store()
        .list_audit_events(client, None, 1000)
        .await
        .unwrap();
    page.entries
        .iter()
        .map(|e| e.event().unwrap().action.as_str().to_owned())
        .collect()
}

#[tokio::test]
async fn an_authorized_order_is_sent_once_and_follows_its_transfer_to_confirmed() {
    let env = TestEnv::start(TestOptions::default()).await;
    let client = funded_client(&env, "alice").await;
    // No Policies:Modify policy here: the whitelist change applies at once.
    assert_eq!(
        authorize(&env, &client, "Kraken").await,
        AuthorizationStatus::Active
    );
    let placed = order(&env, &client, "Kraken", ONE_ETH / 4).await;
    assert_eq!(placed.state, OrderState::Scheduled);

    let report = crate::run(&env.app, soon(), None).await.unwrap();
    assert_eq!((report.execution.claimed, report.execution.sent), (1, 1));
    let sent = stored(&env, &placed.id).await;
    assert!(
        matches!(
            sent.state,
            OrderState::Submitted | OrderState::Broadcasted | OrderState::Confirmed
        ),
        "{:?}",
        sent.state
    );

    let transfer = settle(&env, &env.service(), &placed).await;
    assert_eq!(
        transfer.external_id.as_ref().unwrap().as_str(),
        placed.id.to_string()
    );
    assert_eq!(
        transfer.request_body.asset,
        dfns_client::transfers::TransferAsset::Native {
            to: "0x4b4a000000000000000000000000000000000003".into(),
            amount: dfns_client::Amount::from(ONE_ETH / 4),
            memo: None,
            priority: None,
        }
    );
    let done = stored(&env, &placed.id).await;
    assert_eq!(done.state, OrderState::Confirmed);
    assert_eq!(done.transfer_id.as_deref(), Some(transfer.id.as_str()));

    // The same event again changes nothing; a later run finds nothing due.
    let again = on_transfer_event(
        &env.app,
        &transfer,
        Actor::Dfns { id: "dup".into() },
        "event",
    )
    .await
    .unwrap();
    assert!(!again);
    let later = crate::run(&env.app, soon() + time::Duration::hours(1), None)
        .await
        .unwrap();
    assert_eq!(later.execution.due, 0);
    assert_eq!(transfers_created(&env).await, 1);

    let trail = audit_actions(&env, &client).await;
    for expected in [
        "trading_authorization.created",
        "order.created",
        "order.claimed",
        "order.confirmed",
    ] {
        assert!(
            trail.iter().any(|a| a == expected),
            "{expected} in {trail:?}"
        );
    }
    assert_eq!(trail.iter().filter(|a| *a == "order.confirmed").count(), 1);
    assert!(
        env.app
            .store()
            .verify_audit_chain(&client)
            .await
            .unwrap()
            .is_intact()
    );
}

#[tokio::test]
async fn orders_without_a_live_approved_authorization_are_not_sent_and_say_why() {
    let env = TestEnv::start(TestOptions {
        // Policy changes wait for compliance, so a fresh authorization stays pending.
        policies_modify: true,
        ..TestOptions::default()
    })
    .await;
    let client = funded_client(&env, "bob").await;

    let no_authorization = order(&env, &client, "Gemini", ONE_ETH).await;

    assert_eq!(
        authorize(&env, &client, "Coinbase").await,
        AuthorizationStatus::Pending
    );
    let not_approved = order(&env, &client, "Coinbase", ONE_ETH).await;

    assert_eq!(
        authorize(&env, &client, "Kraken").await,
        AuthorizationStatus::Pending
    );
    let kraken = authorizations::list(&env.app, &client)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.exchange == "Kraken")
        .unwrap();
    let revoked_view = authorizations::revoke(
        &env.app,
        &client,
        &ulid::Ulid::from_string(&kraken.id).unwrap(),
        "revoke",
    )
    .await
    .unwrap();
    assert_eq!(revoked_view.status, AuthorizationStatus::Revoked);
    assert!(
        revoked_view.destinations[0].remove_request_id.is_some(),
        "removal of the address is requested"
    );
    let revoked = order(&env, &client, "Kraken", ONE_ETH).await;

    let report = crate::run(&env.app, soon(), None).await.unwrap();
    assert_eq!((report.execution.not_sent, report.execution.sent), (3, 0));
    for (placed, code) in [
        (&no_authorization, "no_authorization:"),
        (&not_approved, "destination_not_approved:"),
        (&revoked, "authorization_revoked:"),
    ] {
        let order = stored(&env, &placed.id).await;
        assert_eq!(order.state, OrderState::Failed);
        let reason = order.reason.unwrap_or_default();
        assert!(reason.starts_with(code), "{code} expected, got {reason}");
        assert!(order.transfer_id.is_none());
    }
    assert_eq!(transfers_created(&env).await, 0);
    let trail = audit_actions(&env, &client).await;
    assert_eq!(trail.iter().filter(|a| *a == "order.not_sent").count(), 3);
}

#[tokio::test]
async fn a_run_that_dies_after_dfns_accepted_is_finished_by_the_next_run_without_a_second_transfer()
{
    // No webhooks: only the next run can finish the order.
    let env = TestEnv::start(TestOptions {
        webhooks: false,
        ..TestOptions::default()
    })
    .await;
    let client = funded_client(&env, "carol").await;
    authorize(&env, &client, "Coinbase").await;
    let placed = order(&env, &client, "Coinbase", ONE_ETH).await;
    let config = TradingConfig::default();

    let crash = Arc::new(AtomicBool::new(true));
    let crashing = {
        let crash = crash.clone();
        ExecutionHooks {
            after_transfer_accepted: Some(Arc::new(move |_| !crash.load(Ordering::SeqCst))),
        }
    };
    let executor = Executor::new(&env.app, &config).with_hooks(crashing);
    let started = soon();
    let first = executor.run(started).await.unwrap();
    assert_eq!(first.abandoned, 1);
    assert_eq!(
        transfers_created(&env).await,
        1,
        "Dfns accepted the transfer"
    );
    let orphan = stored(&env, &placed.id).await;
    assert_eq!(orphan.state, OrderState::Claimed);
    assert!(
        orphan.transfer_id.is_none(),
        "the run died before recording it"
    );

    // Inside the lease nobody touches it.
    crash.store(false, Ordering::SeqCst);
    let early = executor
        .run(started + time::Duration::seconds(10))
        .await
        .unwrap();
    assert_eq!(early.due, 0);

    // After the lease, the next run re-submits with the same externalId and gets the original.
    let after_lease = started + config.lease + time::Duration::seconds(1);
    let second = executor.run(after_lease).await.unwrap();
    assert_eq!((second.claimed, second.sent), (1, 1));
    let finished = stored(&env, &placed.id).await;
    assert_eq!(finished.claim_count, 2);
    assert!(finished.transfer_id.is_some());
    assert_ne!(finished.state, OrderState::Claimed);
    assert_eq!(transfers_created(&env).await, 1, "exactly one transfer");
    settle(&env, &env.service(), &finished).await;
    assert_eq!(stored(&env, &placed.id).await.state, OrderState::Confirmed);
}

#[tokio::test]
async fn two_overlapping_runs_send_each_order_once() {
    let env = TestEnv::start(TestOptions {
        webhooks: false,
        ..TestOptions::default()
    })
    .await;
    let client = funded_client(&env, "dave").await;
    authorize(&env, &client, "Gemini").await;
    let mut placed = Vec::new();
    for i in 0..20u128 {
        placed.push(order(&env, &client, "Gemini", ONE_ETH / 100 + i).await);
    }
    let config = TradingConfig::default();
    let now = soon();
    let a = Executor::new(&env.app, &config).with_dfns(env.service());
    let b = Executor::new(&env.app, &config).with_dfns(env.service());
    let (ra, rb) = futures::join!(a.run(now), b.run(now));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.sent + rb.sent, 20, "{ra:?} {rb:?}");
    assert_eq!(ra.errors + rb.errors, 0);
    assert_eq!(transfers_created(&env).await, 20);
    let mut transfer_ids = HashSet::new();
    for order in &placed {
        let order = stored(&env, &order.id).await;
        assert_eq!(order.claim_count, 1, "claimed by exactly one run");
        assert!(transfer_ids.insert(order.transfer_id.unwrap()));
    }
}

/// A run out of time (its `ORDER_RUN_SECONDS` over, or its invocation's deadline near) claims no
/// more: the orders it did not reach stay due and unclaimed, and the next run sends each once.
#[tokio::test]
async fn a_run_out_of_time_leaves_the_rest_due_and_unclaimed_for_the_next_run() {
    let env = TestEnv::start(TestOptions {
        webhooks: false,
        ..TestOptions::default()
    })
    .await;
    let client = funded_client(&env, "ivan").await;
    authorize(&env, &client, "Gemini").await;
    let mut placed = Vec::new();
    for i in 0..6u128 {
        placed.push(order(&env, &client, "Gemini", ONE_ETH / 100 + i).await);
    }
    let now = soon();
    let config = TradingConfig::default();
    let near_deadline = Executor::new(&env.app, &config)
        .with_dfns(env.service())
        .run_within(
            now,
            Some(std::time::Instant::now() + platform::trading::execution::DEADLINE_MARGIN),
        )
        .await
        .unwrap();
    let no_time = TradingConfig {
        run_for: std::time::Duration::ZERO,
        ..TradingConfig::default()
    };
    let time_up = Executor::new(&env.app, &no_time)
        .with_dfns(env.service())
        .run(now)
        .await
        .unwrap();
    for report in [&near_deadline, &time_up] {
        assert_eq!(
            (report.due, report.deferred, report.claimed),
            (6, 6, 0),
            "{report:?}"
        );
    }
    for order in &placed {
        let order = stored(&env, &order.id).await;
        assert_eq!((order.state, order.claim_count), (OrderState::Scheduled, 0));
    }
    assert_eq!(transfers_created(&env).await, 0);

    let next = Executor::new(&env.app, &config)
        .with_dfns(env.service())
        .run(now)
        .await
        .unwrap();
    assert_eq!((next.sent, next.deferred), (6, 0), "{next:?}");
    for order in &placed {
        assert_eq!(stored(&env, &order.id).await.claim_count, 1);
    }
    assert_eq!(transfers_created(&env).await, 6);
}

#[tokio::test]
async fn with_half_of_dfns_calls_throttled_200_due_orders_all_end_confirmed_none_twice() {
    let env = TestEnv::start(TestOptions {
        webhooks: false,
        ..TestOptions::default()
    })
    .await;
    let mut clients = Vec::new();
    for name in ["erin", "frank", "grace", "heidi"] {
        let client = funded_client(&env, name).await;
        authorize(&env, &client, "Kraken").await;
        clients.push(client);
    }
    let mut placed = Vec::new();
    for i in 0..200usize {
        placed.push(order(&env, &clients[i % clients.len()], "Kraken", ONE_ETH / 1000).await);
    }
    env.control(
        reqwest::Method::POST,
        "faults",
        json!({"pathPattern": "/**", "status": 429, "rate": 0.5, "retryAfterSeconds": 0, "seed": 42}),
    )
    .await;

    let config = TradingConfig::default();
    let executor = Executor::new(&env.app, &config).with_dfns(env.service());
    let mut now = soon();
    let mut runs = 0;
    loop {
        let report = executor.run(now).await.unwrap();
        runs += 1;
        assert_eq!(report.not_sent, 0, "{report:?}");
        let mut open = 0;
        for order in &placed {
            let state = stored(&env, &order.id).await.state;
            if matches!(state, OrderState::Scheduled | OrderState::Claimed) {
                open += 1;
            }
        }
        if open == 0 {
            break;
        }
        assert!(runs < 10, "{open} orders still unsent after {runs} runs");
        // Left claimed by a throttled call: due again once the lease is over.
        now += config.lease + time::Duration::seconds(1);
    }
    env.control(reqwest::Method::DELETE, "faults", json!({}))
        .await;

    let dfns = env.service();
    let mut transfer_ids = HashSet::new();
    for order in &placed {
        let transfer = settle(&env, &dfns, order).await;
        assert!(transfer_ids.insert(transfer.id.clone()));
        assert_eq!(stored(&env, &order.id).await.state, OrderState::Confirmed);
    }
    assert_eq!(transfer_ids.len(), 200);
    assert_eq!(transfers_created(&env).await, 200, "none sent twice");
}

/// Dfns refuses the service-account token under a run (rotated away): that is our credentials,
/// not the order. It is not failed; it stays due, and the next run sends it, once.
#[tokio::test]
async fn an_order_whose_transfer_dfns_refused_for_our_token_stays_due_and_is_sent_next_run() {
    let env = TestEnv::start(TestOptions::default()).await;
    let client = funded_client(&env, "ivan").await;
    authorize(&env, &client, "Kraken").await;
    let placed = order(&env, &client, "Kraken", ONE_ETH / 10).await;
    let config = TradingConfig::default();

    let refused = Executor::new(&env.app, &config)
        .with_dfns(env.service_with_token("rotated-away-token"))
        .run(soon())
        .await
        .unwrap();
    assert_eq!(
        (refused.claimed, refused.sent, refused.not_sent),
        (1, 0, 0),
        "{refused:?}"
    );
    // Handed back at once: still open, no reason, due again now rather than after the lease.
    let waiting = stored(&env, &placed.id).await;
    assert!(
        matches!(waiting.state, OrderState::Scheduled | OrderState::Claimed),
        "{waiting:?}"
    );
    assert_eq!(waiting.reason, None);
    assert!(
        waiting.lease_expires_at.is_none_or(|at| at <= soon()),
        "{waiting:?}"
    );
    assert_eq!(transfers_created(&env).await, 0);

    let next = Executor::new(&env.app, &config)
        .with_dfns(env.service())
        .run(soon())
        .await
        .unwrap();
    assert_eq!((next.claimed, next.sent), (1, 1), "{next:?}");
    settle(&env, &env.service(), &placed).await;
    assert_eq!(stored(&env, &placed.id).await.state, OrderState::Confirmed);
    assert_eq!(transfers_created(&env).await, 1);
}

#[tokio::test]
async fn an_order_over_the_per_transfer_limit_waits_for_compliance_then_confirms_or_is_rejected() {
    use dfns_client::{ApprovalId, DecisionValue};
    use platform::settings::{PolicyActionSetting, Tier};
    let env = TestEnv::start(TestOptions {
        webhooks: false,
        whitelist_action: PolicyActionSetting::RequestApproval,
        tier: Tier {
            amount_limit_usd: Some(1000),
            ..Tier::default()
        },
        ..TestOptions::default()
    })
    .await;
    env.control(
        reqwest::Method::PUT,
        "prices",
        json!({"prices": {"ETH": "3000.00"}}),
    )
    .await;
    let client = funded_client(&env, "ivan").await;
    authorize(&env, &client, "Coinbase").await;
    // 1 ETH = 3000 USD, above the 1000 USD limit.
    let approved = order(&env, &client, "Coinbase", ONE_ETH).await;
    let denied = order(&env, &client, "Coinbase", ONE_ETH + 1).await;
    let report = crate::run(&env.app, soon(), None).await.unwrap();
    assert_eq!(report.execution.sent, 2);
    let mut approvals = Vec::new();
    for placed in [&approved, &denied] {
        let held = stored(&env, &placed.id).await;
        assert_eq!(held.state, OrderState::PendingApproval);
        approvals.push(held.approval_id.expect("the order shows the approval"));
    }
    let officer = env.officer(0);
    officer
        .decide_approval(
            &ApprovalId::new(approvals[0].clone()),
            DecisionValue::Approved,
            Some("desk confirmed"),
        )
        .await
        .unwrap();
    officer
        .decide_approval(
            &ApprovalId::new(approvals[1].clone()),
            DecisionValue::Denied,
            Some("too large"),
        )
        .await
        .unwrap();
    let dfns = env.service();
    assert_eq!(
        settle(&env, &dfns, &approved).await.status,
        dfns_client::TransferStatus::Confirmed
    );
    assert_eq!(
        stored(&env, &approved.id).await.state,
        OrderState::Confirmed
    );
    assert_eq!(
        settle(&env, &dfns, &denied).await.status,
        dfns_client::TransferStatus::Rejected
    );
    let rejected = stored(&env, &denied.id).await;
    assert_eq!(rejected.state, OrderState::Rejected);
    assert!(rejected.reason.is_some());
}

#[tokio::test]
async fn an_authorization_becomes_active_when_compliance_approves_the_address_and_its_order_is_sent()
 {
    use dfns_client::{ApprovalId, DecisionValue};
    let env = TestEnv::start(TestOptions {
        policies_modify: true,
        ..TestOptions::default()
    })
    .await;
    let client = funded_client(&env, "judy").await;
    assert_eq!(
        authorize(&env, &client, "Gemini").await,
        AuthorizationStatus::Pending
    );
    let view = authorizations::list(&env.app, &client).await.unwrap()[0].clone();
    let request_id = domain::DestinationRequestId::parse(
        view.destinations[0].add_request_id.as_deref().unwrap(),
    )
    .unwrap();
    let request = env
        .app
        .store()
        .get_destination_request(&client, &request_id)
        .await
        .unwrap()
        .unwrap();
    let approval = request
        .approval_id
        .expect("the whitelist change awaits compliance");
    env.officer(0)
        .decide_approval(
            &ApprovalId::new(approval),
            DecisionValue::Approved,
            Some("exchange verified"),
        )
        .await
        .unwrap();
    // The approval webhook resolves the destination request; the authorization follows.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let status = authorizations::list(&env.app, &client).await.unwrap()[0].status;
        if status == AuthorizationStatus::Active {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {status:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let resolved = env
        .app
        .store()
        .get_destination_request(&client, &request_id)
        .await
        .unwrap()
        .unwrap();
    // A replayed resolution (a redelivered webhook, the reconciler) records nothing more.
    platform::trading::on_destination_resolved(&env.app, &resolved, "hook")
        .await
        .unwrap();
    let activations = audit_actions(&env, &client)
        .await
        .iter()
        .filter(|a| *a == "trading_authorization.activated")
        .count();
    assert_eq!(activations, 1);

    let placed = order(&env, &client, "Gemini", ONE_ETH).await;
    let report = crate::run(&env.app, soon(), None).await.unwrap();
    assert_eq!(report.execution.sent, 1, "{report:?}");
    settle(&env, &env.service(), &placed).await;
    assert_eq!(stored(&env, &placed.id).await.state, OrderState::Confirmed);
}

#[tokio::test]
async fn a_lost_webhook_is_made_up_for_by_the_in_flight_refresh() {
    let env = TestEnv::start(TestOptions {
        webhooks: false,
        ..TestOptions::default()
    })
    .await;
    let client = funded_client(&env, "kim").await;
    authorize(&env, &client, "Kraken").await;
    let placed = order(&env, &client, "Kraken", ONE_ETH).await;
    let dfns = env.service();
    Executor::new(&env.app, &TradingConfig::default())
        .with_dfns(dfns.clone())
        .run(soon())
        .await
        .unwrap();
    let sent = stored(&env, &placed.id).await;
    assert_ne!(sent.state, OrderState::Confirmed, "no event applied yet");
    // The emulator confirms the transfer; no webhook reaches the platform.
    let wallet = env.app.store().list_wallets(&client).await.unwrap()[0].clone();
    let wallet_id = dfns_client::WalletId::new(wallet.wallet_id.as_str());
    let transfer_id = TransferId::new(sent.transfer_id.clone().unwrap());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while dfns
        .get_transfer(&wallet_id, &transfer_id)
        .await
        .unwrap()
        .status
        != dfns_client::TransferStatus::Confirmed
    {
        assert!(std::time::Instant::now() < deadline, "never confirmed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let later = OffsetDateTime::now_utc() + time::Duration::minutes(5);
    let quiet = time::Duration::minutes(2);
    let moved = platform::trading::refresh_in_flight(&env.app, &dfns, quiet, later, "refresh")
        .await
        .unwrap();
    assert_eq!(moved, 1);
    assert_eq!(stored(&env, &placed.id).await.state, OrderState::Confirmed);
    // Recently changed orders are left to their webhooks.
    let again = platform::trading::refresh_in_flight(
        &env.app,
        &dfns,
        quiet,
        OffsetDateTime::now_utc(),
        "refresh",
    )
    .await
    .unwrap();
    assert_eq!(again, 0);
}

/// The transfers at Dfns (the emulator) carrying `order`'s id as their `externalId`.
async fn transfers_with_external_id(env: &TestEnv, order: &Order) -> Vec<TransferRequest> {
    use futures::TryStreamExt;
    let wallet = env
        .app
        .store()
        .list_wallets(&order.client_id)
        .await
        .unwrap()[0]
        .clone();
    env.service()
        .list_transfers(
            &dfns_client::WalletId::new(wallet.wallet_id.as_str()),
            &dfns_client::transfers::TransfersQuery::default(),
        )
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.external_id.as_ref().map(|e| e.as_str()) == Some(&order.id.to_string()))
        .collect()
}

async fn revoke(env: &TestEnv, client: &ClientId, exchange: &str) -> ulid::Ulid {
    let live = authorizations::list(&env.app, client)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.exchange == exchange && a.status != AuthorizationStatus::Revoked)
        .expect("a live authorization");
    let id = ulid::Ulid::from_string(&live.id).unwrap();
    let view = authorizations::revoke(&env.app, client, &id, "revoke")
        .await
        .expect("revoked");
    assert_eq!(view.status, AuthorizationStatus::Revoked);
    id
}

/// Issue 12, point 3: a run dies after Dfns accepted an order's transfer, the client revokes its
/// authorization, the lease expires. The next run must not end the order "not sent" on the failed
/// check while its transfer proceeds: it asks Dfns for the transfer with the order's `externalId`
/// and follows it. Beside it, an order whose run died before reaching Dfns ends "not sent" only
/// once Dfns confirms it has no transfer; while Dfns cannot say, both wait for the next run.
#[tokio::test]
async fn an_order_at_dfns_whose_run_died_before_a_revocation_follows_its_transfer_with_one_transfer()
 {
    // No webhooks: only the runs can tell the platform about the transfer.
    let env = TestEnv::start(TestOptions {
        webhooks: false,
        ..TestOptions::default()
    })
    .await;
    let client = funded_client(&env, "lena").await;
    authorize(&env, &client, "Coinbase").await;
    let config = TradingConfig::default();

    // Sent: the run dies right after Dfns accepted the transfer.
    let sent = order(&env, &client, "Coinbase", ONE_ETH).await;
    let crashing = ExecutionHooks {
        after_transfer_accepted: Some(Arc::new(|_| false)),
    };
    let first = Executor::new(&env.app, &config)
        .with_hooks(crashing)
        .run(soon())
        .await
        .unwrap();
    assert_eq!(first.abandoned, 1, "{first:?}");
    assert_eq!(transfers_created(&env).await, 1, "Dfns accepted it");

    // Not sent: a run claims the order and dies before calling Dfns.
    let unsent = order(&env, &client, "Coinbase", ONE_ETH / 2).await;
    let claimed_at = soon();
    env.app
        .store()
        .claim_order(&unsent.id, claimed_at, config.lease)
        .await
        .expect("claimed by a run that then dies");

    // The client revokes; both orders are claimed (maybe at Dfns), so neither is cancelled.
    revoke(&env, &client, "Coinbase").await;
    for placed in [&sent, &unsent] {
        let held = stored(&env, &placed.id).await;
        assert_eq!(held.state, OrderState::Claimed, "{held:?}");
        assert!(held.transfer_id.is_none());
    }

    // After the lease, while Dfns cannot answer the lookup (our token is refused), nothing is
    // decided: both are handed back for the next run.
    let after_lease = claimed_at + config.lease + time::Duration::seconds(1);
    let blind = Executor::new(&env.app, &config)
        .with_dfns(env.service_with_token("rotated-away-token"))
        .run(after_lease)
        .await
        .unwrap();
    assert_eq!(
        (blind.claimed, blind.retry_later, blind.not_sent, blind.sent),
        (2, 2, 0, 0),
        "{blind:?}"
    );
    for placed in [&sent, &unsent] {
        let waiting = stored(&env, &placed.id).await;
        assert_eq!(waiting.state, OrderState::Claimed, "{waiting:?}");
        assert_eq!(waiting.reason, None);
    }

    // Dfns answers: the sent order follows its transfer; the other ends "not sent".
    let next = Executor::new(&env.app, &config)
        .run(after_lease + time::Duration::seconds(5))
        .await
        .unwrap();
    assert_eq!(
        (next.claimed, next.sent, next.not_sent),
        (2, 1, 1),
        "{next:?}"
    );
    let following = stored(&env, &sent.id).await;
    assert!(
        matches!(
            following.state,
            OrderState::Submitted | OrderState::Broadcasted | OrderState::Confirmed
        ),
        "{following:?}"
    );
    assert_eq!(following.reason, None);
    let at_dfns = transfers_with_external_id(&env, &sent).await;
    assert_eq!(at_dfns.len(), 1, "exactly one transfer for the order");
    assert_eq!(
        following.transfer_id.as_deref(),
        Some(at_dfns[0].id.as_str())
    );
    let transfer = settle(&env, &env.service(), &following).await;
    let settled = stored(&env, &sent.id).await;
    assert_eq!(
        settled.state,
        platform::trading::execution::order_state_of(&transfer)
    );
    assert_eq!(settled.state, OrderState::Confirmed);

    let not_sent = stored(&env, &unsent.id).await;
    assert_eq!(not_sent.state, OrderState::Failed);
    assert!(
        not_sent
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("authorization_revoked:")),
        "{not_sent:?}"
    );
    assert!(transfers_with_external_id(&env, &unsent).await.is_empty());
    assert_eq!(transfers_created(&env).await, 1, "one transfer in all");

    let trail = audit_actions(&env, &client).await;
    assert_eq!(trail.iter().filter(|a| *a == "order.not_sent").count(), 1);
    assert_eq!(trail.iter().filter(|a| *a == "order.confirmed").count(), 1);
    assert!(
        env.app
            .store()
            .verify_audit_chain(&client)
            .await
            .unwrap()
            .is_intact()
    );
}

/// Revoking an authorization cancels at once the client's orders for that exchange still waiting
/// for a run; a repeat cancels and records nothing more; the next run sends none of them. Orders
/// for another exchange, and orders placed under a later authorization, are left alone.
#[tokio::test]
async fn revoking_an_authorization_cancels_its_scheduled_orders_at_once_and_none_is_sent() {
    let env = TestEnv::start(TestOptions {
        webhooks: false,
        ..TestOptions::default()
    })
    .await;
    let client = funded_client(&env, "mona").await;
    authorize(&env, &client, "Kraken").await;
    authorize(&env, &client, "Gemini").await;
    let due = [
        order(&env, &client, "Kraken", ONE_ETH).await,
        order(&env, &client, "Kraken", ONE_ETH / 2).await,
    ];
    let other = order(&env, &client, "Gemini", ONE_ETH / 4).await;

    let revoked = revoke(&env, &client, "Kraken").await;
    for placed in &due {
        let cancelled = stored(&env, &placed.id).await;
        assert_eq!(cancelled.state, OrderState::Cancelled, "{cancelled:?}");
        assert!(
            cancelled
                .reason
                .as_deref()
                .is_some_and(|r| r.starts_with("authorization_revoked:")),
            "{cancelled:?}"
        );
    }
    assert_eq!(stored(&env, &other.id).await.state, OrderState::Scheduled);

    // The client authorizes Kraken again and the desk places an order under it; repeating the old
    // revocation leaves that order alone and records nothing twice.
    authorize(&env, &client, "Kraken").await;
    let later = order(&env, &client, "Kraken", ONE_ETH / 8).await;
    let again = authorizations::revoke(&env.app, &client, &revoked, "revoke-again")
        .await
        .unwrap();
    assert_eq!(again.status, AuthorizationStatus::Revoked);
    assert_eq!(stored(&env, &later.id).await.state, OrderState::Scheduled);
    let trail = audit_actions(&env, &client).await;
    assert_eq!(
        trail.iter().filter(|a| *a == "order.cancelled").count(),
        2,
        "{trail:?}"
    );

    let report = crate::run(&env.app, soon(), None).await.unwrap();
    assert_eq!(
        (report.execution.claimed, report.execution.sent),
        (2, 2),
        "{:?}",
        report.execution
    );
    for placed in &due {
        assert_eq!(stored(&env, &placed.id).await.state, OrderState::Cancelled);
        assert!(transfers_with_external_id(&env, placed).await.is_empty());
    }
    assert_ne!(stored(&env, &other.id).await.state, OrderState::Scheduled);
    assert_ne!(stored(&env, &later.id).await.state, OrderState::Scheduled);
    assert_eq!(transfers_created(&env).await, 2);
    assert!(
        env.app
            .store()
            .verify_audit_chain(&client)
            .await
            .unwrap()
            .is_intact()
    );
}
