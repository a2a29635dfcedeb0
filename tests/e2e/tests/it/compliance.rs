//! Issue 18's acceptance (the compliance officers' workflow), end to end through HTTP against the
//! local stack, the Dfns emulator and the AWS stand-ins: an officer's decision on a transfer in
//! the client's audit chain (from the webhook, and from the in-flight refresh when the webhooks are
//! lost), expiry at 72 hours of the emulated clock, the officers' alert and reminder on the bus.
//! Run with `cargo xtask exec -- cargo test -p e2e --test it compliance::`.

use std::time::Duration;

use dfns_client::webhooks::{UpdateWebhook, WebhookStatus};
use dfns_client::{ApprovalId, DecisionValue};
use e2e::{Env, EnvOptions, wait_until};
use futures::TryStreamExt;
use platform::settings::{PolicyActionSetting, Tier};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::cooling_off::advance_dfns_clock;
use crate::withdrawals::{
    HALF_ETH, approved_destination, wait_for_withdrawal, withdraw, withdrawal,
};
use e2e::{client_id, random_address};

const WAIT: Duration = Duration::from_secs(30);
const REASON: &str = "larger than this client's usual withdrawals";

/// Over a 1000 USD per-transfer limit with `RequestApproval` (ETH at 3000 USD).
async fn env() -> Env {
    let env = Env::start(EnvOptions {
        whitelist_action: PolicyActionSetting::RequestApproval,
        tier: Tier {
            amount_limit_usd: Some(1000),
            ..Tier::default()
        },
        ..EnvOptions::default()
    })
    .await;
    env.control(
        Method::PUT,
        "prices",
        &json!({"prices": {"ETH": "3000.00"}}),
    )
    .await;
    env
}

/// A withdrawal of 0.5 ETH (1500 USD) to an approved destination, held by the limit for an
/// officer: (withdrawal id, approval id).
async fn held_withdrawal(env: &Env, subject: &str) -> (String, String) {
    env.funded_client(subject).await;
    let cold = random_address();
    approved_destination(env, subject, &cold).await;
    let (status, created) = withdraw(env, subject, "held", &withdrawal(&cold, HALF_ETH)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let held = wait_for_withdrawal(env, subject, &id, "PendingApproval").await;
    let approval = held["approvalId"].as_str().expect("approval id").to_owned();
    (id, approval)
}

/// The client's audit entries with `action` about a withdrawal, once at least `count` are there.
async fn audit_lines(env: &Env, subject: &str, action: &str, count: usize) -> Vec<Value> {
    wait_until(WAIT, || async {
        let (_, trail) = env.get("/v1/audit?limit=200", subject).await;
        let lines: Vec<Value> = trail["entries"]
            .as_array()?
            .iter()
            .filter(|e| {
                e["event"]["action"] == action && e["event"]["details"]["subject"] == "withdrawal"
            })
            .map(|e| e["event"].clone())
            .collect();
        (lines.len() >= count).then_some(lines)
    })
    .await
    .unwrap_or_else(|| panic!("{subject}'s trail never had {count} `{action}` line(s)"))
}

/// The client's notification of `kind` whose detail has `approvalId`.
async fn notification(env: &Env, subject: &str, kind: &str, approval: &str) -> Value {
    wait_until(WAIT, || async {
        let (_, notes) = env.get("/v1/notifications?limit=100", subject).await;
        notes["items"]
            .as_array()?
            .iter()
            .find(|n| n["kind"] == kind && n["detail"]["approvalId"] == approval)
            .cloned()
    })
    .await
    .unwrap_or_else(|| panic!("{subject} was never notified `{kind}` for {approval}"))
}

fn officer_id(env: &Env, index: usize) -> String {
    env.emulator.bootstrap().officers[index].user_id.clone()
}

/// An officer denies a held withdrawal: the client's audit chain says who, what, why and when,
/// the client is notified, and a second report of the same approval records nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_officers_denial_of_a_transfer_is_in_the_clients_audit_chain_with_the_reason() {
    let env = env().await;
    let dana = client_id("dana");
    let (id, approval) = held_withdrawal(&env, &dana).await;
    env.officer(0)
        .decide_approval(
            &ApprovalId::new(approval.clone()),
            DecisionValue::Denied,
            Some(REASON),
        )
        .await
        .expect("the officer denies");
    wait_for_withdrawal(&env, &dana, &id, "Rejected").await;

    let lines = audit_lines(&env, &dana, "compliance.decision", 1).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    let officer = officer_id(&env, 0);
    assert_eq!(line["actor"], json!({"type": "compliance", "id": officer}));
    let details = &line["details"];
    assert_eq!(details["approvalId"], approval.as_str());
    assert_eq!(details["subject"], "withdrawal");
    assert_eq!(details["subjectId"], id.as_str());
    assert_eq!(details["officer"], officer.as_str());
    assert_eq!(details["decision"], "Denied");
    assert_eq!(details["reason"], REASON);
    assert!(details["decidedAt"].as_str().is_some_and(|t| !t.is_empty()));

    let note = notification(&env, &dana, "compliance.approval_resolved", &approval).await;
    assert_eq!(note["detail"]["status"], "Denied", "{note}");
    assert_eq!(note["detail"]["decisions"][0]["reason"], REASON, "{note}");

    // The same approval reported again (a redelivery, the reconciler): nothing more.
    let app = env.stack.app.holding_only(platform::SecretsHeld::SIGNING);
    let decided = env
        .service()
        .get_approval(&ApprovalId::new(approval.clone()))
        .await
        .expect("the approval");
    platform::webhook::on_approval(
        &app,
        &decided,
        domain::Actor::System { id: "test".into() },
        "again",
    )
    .await
    .expect("applied again");
    platform::compliance::follow_approval(
        &app,
        &app.dfns_reader().await.expect("reader"),
        &approval,
        OffsetDateTime::now_utc(),
        "again",
    )
    .await
    .expect("followed again");
    let (_, trail) = env.get("/v1/audit?limit=200", &dana).await;
    let decisions = trail["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| {
            e["event"]["action"] == "compliance.decision"
                && e["event"]["details"]["subject"] == "withdrawal"
        })
        .count();
    assert_eq!(decisions, 1, "one line per decision: {trail}");
}

/// With every webhook lost (the webhook disabled), the in-flight refresh records the officer's
/// decision on a held transfer all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_decision_whose_webhooks_are_lost_is_recorded_by_the_in_flight_refresh() {
    let env = env().await;
    let erin = client_id("erin");
    let (id, approval) = held_withdrawal(&env, &erin).await;
    let service = env.service();
    let webhooks: Vec<_> = service
        .list_webhooks()
        .try_collect()
        .await
        .expect("webhooks");
    for webhook in &webhooks {
        service
            .update_webhook(
                &webhook.id,
                &UpdateWebhook {
                    status: Some(WebhookStatus::Disabled),
                    ..UpdateWebhook::default()
                },
            )
            .await
            .expect("disable the webhook");
    }
    env.officer(0)
        .decide_approval(
            &ApprovalId::new(approval.clone()),
            DecisionValue::Denied,
            Some(REASON),
        )
        .await
        .expect("the officer denies");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, still) = env.get(&format!("/v1/withdrawals/{id}"), &erin).await;
    assert_eq!(
        still["state"], "PendingApproval",
        "no webhook arrived: {still}"
    );

    let app = env.stack.app.holding_only(platform::SecretsHeld::SIGNING);
    let dfns = app.dfns().await.expect("signing client");
    platform::trading::refresh_in_flight(
        &app,
        &dfns,
        time::Duration::ZERO,
        OffsetDateTime::now_utc(),
        "refresh",
    )
    .await
    .expect("the refresh");
    wait_for_withdrawal(&env, &erin, &id, "Rejected").await;
    let lines = audit_lines(&env, &erin, "compliance.decision", 1).await;
    assert_eq!(lines[0]["details"]["reason"], REASON, "{lines:?}");
    assert_eq!(lines[0]["details"]["decision"], "Denied", "{lines:?}");
    notification(&env, &erin, "compliance.approval_resolved", &approval).await;
}

/// Nobody decides: at 72 hours of the emulated clock (the default), Dfns expires the approval,
/// the withdrawal is rejected, the expiry is in the client's trail and the client is notified.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_approval_left_alone_expires_at_72_hours_and_the_client_is_notified() {
    let env = env().await;
    let fay = client_id("fay");
    let (id, approval) = held_withdrawal(&env, &fay).await;
    let read = env
        .service()
        .get_approval(&ApprovalId::new(approval.clone()))
        .await
        .expect("the approval");
    let (created, expires) = (
        read.date_created.expect("dateCreated"),
        read.expiration_date.expect("an expiry by default"),
    );
    assert_eq!(expires - created, time::Duration::hours(72));

    advance_dfns_clock(&env, Duration::from_secs(71 * 3600)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, before) = env.get(&format!("/v1/withdrawals/{id}"), &fay).await;
    assert_eq!(before["state"], "PendingApproval", "not yet: {before}");

    advance_dfns_clock(&env, Duration::from_secs(3600)).await;
    wait_for_withdrawal(&env, &fay, &id, "Rejected").await;
    let note = notification(&env, &fay, "compliance.approval_resolved", &approval).await;
    assert_eq!(note["detail"]["status"], "Expired", "{note}");
    let lines = audit_lines(&env, &fay, "compliance.approval_expired", 1).await;
    assert_eq!(lines[0]["details"]["approvalId"], approval.as_str());
}

/// A queue on the bus's own server (moto's SQS, at the EventBridge endpoint): moto's rules deliver
/// to its own queues. The webhook queue, `env.sqs`, is LocalStack's.
struct Capture {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

/// Events of `source` put on the stack's bus from now on, forwarded to a fresh queue (as the
/// template's rule forwards the officers' events to their SNS topic).
async fn capture_bus(env: &Env, source: &str) -> Capture {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_EVENTBRIDGE")
        .expect("AWS_ENDPOINT_URL_EVENTBRIDGE (run through cargo xtask)");
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk)
            .endpoint_url(endpoint)
            .build(),
    );
    let queue = sqs
        .create_queue()
        .queue_name(format!("e2e-officers-{}", ulid::Ulid::new()))
        .send()
        .await
        .expect("create the capture queue");
    let url = queue.queue_url().expect("queue url").to_owned();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .expect("queue arn");
    let bus = env.stack.app.settings().event_bus_name.clone();
    let events = env.stack.app.eventbridge();
    let rule = format!("officers-{}", ulid::Ulid::new());
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(json!({"source": [source]}).to_string())
        .send()
        .await
        .expect("put the rule");
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(arn)
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("put the target");
    Capture { sqs, url }
}

/// Every event captured so far on `queue`, waiting until one matches `wanted`.
async fn captured_event(
    queue: &Capture,
    seen: &mut Vec<Value>,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(event) = seen.iter().find(|e| wanted(e)) {
            return event.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no such event among {seen:#?}"
        );
        let received = queue
            .sqs
            .receive_message()
            .queue_url(&queue.url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        for message in received.messages() {
            if let Some(body) = message.body() {
                seen.push(serde_json::from_str(body).expect("an event"));
            }
        }
    }
}

/// When an approval is pending, the officers' event is on the bus with the platform's context
/// (a destination request's client, label and address; a withdrawal's amount in USD and its
/// destination's label), and a reminder follows half-way to the expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_officers_are_alerted_with_the_context_and_reminded_half_way() {
    let env = env().await;
    let queue = capture_bus(&env, platform::compliance::OFFICERS_EVENT_SOURCE).await;
    let gus = client_id("gus");
    let (id, approval) = held_withdrawal(&env, &gus).await;
    let mut seen = Vec::new();

    let destination = captured_event(&queue, &mut seen, |e| {
        e["detail-type"] == "compliance.approval_pending"
            && e["detail"]["subject"] == "destination_request"
    })
    .await;
    let detail = &destination["detail"];
    assert_eq!(detail["clientId"], gus.as_str(), "{detail}");
    assert_eq!(detail["label"], "cold wallet", "{detail}");
    assert_eq!(detail["change"]["action"], "add", "{detail}");
    assert_eq!(detail["change"]["network"], "EthereumSepolia", "{detail}");
    assert!(
        detail["change"]["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("0x"))
    );
    assert_eq!(detail["requestedBy"]["kind"], "client", "{detail}");

    let held = captured_event(&queue, &mut seen, |e| {
        e["detail-type"] == "compliance.approval_pending" && e["detail"]["approvalId"] == approval
    })
    .await;
    let detail = &held["detail"];
    assert_eq!(detail["subject"], "withdrawal", "{detail}");
    assert_eq!(detail["subjectId"], id.as_str(), "{detail}");
    assert_eq!(detail["clientId"], gus.as_str(), "{detail}");
    assert_eq!(detail["transfer"]["amount"], HALF_ETH, "{detail}");
    assert_eq!(detail["transfer"]["usd"], "1500", "{detail}");
    assert_eq!(
        detail["transfer"]["destinationLabel"], "cold wallet",
        "{detail}"
    );
    assert!(detail["expiresAt"].as_str().is_some(), "{detail}");

    // A second destination that no officer decides: its approval is the reconciler's to watch.
    let (status, created) = env
        .request_destination(&gus, &random_address(), "left waiting")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let waiting = env
        .wait_for_state(
            &gus,
            created["id"].as_str().expect("id"),
            &["PendingApproval"],
        )
        .await;
    let request_approval = waiting["approvalId"]
        .as_str()
        .expect("the request shows its approval")
        .to_owned();

    // Half of the 72 hours later (both clocks), the in-flight refresh reminds the officers, once.
    advance_dfns_clock(&env, Duration::from_secs(36 * 3600 + 60)).await;
    let later = OffsetDateTime::now_utc() + time::Duration::hours(36) + time::Duration::minutes(2);
    let app = env.stack.app.holding_only(platform::SecretsHeld::SIGNING);
    let dfns = app.dfns().await.expect("signing client");
    for _ in 0..2 {
        platform::trading::refresh_in_flight(&app, &dfns, time::Duration::ZERO, later, "refresh")
            .await
            .expect("the refresh");
    }
    captured_event(&queue, &mut seen, |e| {
        e["detail-type"] == "compliance.approval_reminder" && e["detail"]["approvalId"] == approval
    })
    .await;
    // Two reconciler runs: one reminder for the waiting destination.
    for _ in 0..2 {
        crate::cooling_off::reconcile_at(&env, later).await;
    }
    captured_event(&queue, &mut seen, |e| {
        e["detail-type"] == "compliance.approval_reminder"
            && e["detail"]["approvalId"] == request_approval.as_str()
    })
    .await;
    for watched in [approval.as_str(), request_approval.as_str()] {
        let reminders = seen
            .iter()
            .filter(|e| {
                e["detail-type"] == "compliance.approval_reminder"
                    && e["detail"]["approvalId"] == watched
            })
            .count();
        assert_eq!(reminders, 1, "one reminder for {watched}: {seen:#?}");
    }
}
