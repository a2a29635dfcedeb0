//! Issue 14, cooling-off, end to end through HTTP: a new destination waits before it goes to Dfns;
//! the client is told and can veto it meanwhile, and then Dfns never sees the address; once the
//! wait has ended (the emulated clock and the platform's clock advanced) the reconciler submits it
//! and an officer approves it.
//!
//! Run with `cargo xtask exec -- cargo test -p e2e --test it cooling_off`.

use std::time::Duration;

use dfns_client::DecisionValue;
use e2e::{Env, EnvOptions, client_id, random_address};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;

const WAIT: Duration = Duration::from_secs(3600);

async fn env() -> Env {
    Env::start(EnvOptions {
        destination_cooling_off: WAIT,
        ..EnvOptions::default()
    })
    .await
}

/// The scheduled reconciler as it runs at `now` (the platform's clock), with what the reconciler
/// function holds (the signing credential).
pub(crate) async fn reconcile_at(
    env: &Env,
    now: OffsetDateTime,
) -> platform::reconcile::ReconcileReport {
    let app = env.stack.app.holding_only(platform::SecretsHeld::SIGNING);
    let limits = platform::reconcile::RunLimits::of(&app);
    let report = platform::reconcile::run_at(&app, limits, now)
        .await
        .expect("a reconciler run");
    assert_eq!(report.failures, 0, "{report:?}");
    report
}

/// Moves the emulated clock (Dfns' time) on by `by`.
pub(crate) async fn advance_dfns_clock(env: &Env, by: Duration) {
    env.control(
        Method::POST,
        "clock/advance",
        &json!({"seconds": by.as_secs()}),
    )
    .await;
}

/// Whether any policy or change request at Dfns carries `address`.
pub(crate) fn dfns_has_seen(env: &Env, address: &str) -> bool {
    let needle = address.to_lowercase();
    env.emulator.app().with_state(|state| {
        state
            .policy
            .policies
            .values()
            .map(|p| p.to_json())
            .chain(state.policy.change_requests.values().map(|c| c.to_json()))
            .any(|json| json.to_string().to_lowercase().contains(&needle))
    })
}

pub(crate) fn usable_from(request: &Value) -> OffsetDateTime {
    let text = request["usableFrom"]
        .as_str()
        .unwrap_or_else(|| panic!("no usableFrom on {request}"));
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).expect("RFC 3339")
}

async fn notification_kinds(env: &Env, subject: &str) -> Vec<String> {
    let (status, page) = env.get("/v1/notifications?limit=100", subject).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|n| n["kind"].as_str().expect("a kind").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_destination_cools_off_then_goes_to_compliance_and_an_officer_approves_it() {
    let env = env().await;
    let alice = client_id("alice");
    env.open_account(&alice).await;
    let address = random_address();
    let (status, created) = env.request_destination(&alice, &address, "cold").await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["state"], "CoolingOff", "{created}");
    let id = created["id"].as_str().expect("an id").to_owned();
    let until = usable_from(&created);
    let waited = until - OffsetDateTime::now_utc();
    assert!(
        waited > time::Duration::minutes(59) && waited <= time::Duration::hours(1),
        "usableFrom {until}"
    );
    assert!(
        notification_kinds(&env, &alice)
            .await
            .contains(&"destination_request.cooling_off".to_owned())
    );

    // The schedule runs now: nothing goes to Dfns.
    let report = reconcile_at(&env, OffsetDateTime::now_utc()).await;
    assert_eq!(report.cooling_off, 1, "{report:?}");
    assert_eq!(
        env.destination_request(&alice, &id).await.unwrap()["state"],
        "CoolingOff"
    );
    assert!(!dfns_has_seen(&env, &address));

    // An hour later, at Dfns and here: the reconciler submits it, compliance sees it.
    advance_dfns_clock(&env, WAIT).await;
    let report = reconcile_at(&env, until).await;
    assert_eq!(report.cooling_off_ended, 1, "{report:?}");
    let pending = env.wait_for_state(&alice, &id, &["PendingApproval"]).await;
    assert!(dfns_has_seen(&env, &address));
    assert_eq!(usable_from(&pending), until, "still shown");

    env.decide(&pending, DecisionValue::Approved).await;
    env.wait_for_state(&alice, &id, &["Approved"]).await;
    let (status, account) = env.get("/v1/account", &alice).await;
    assert_eq!(status, StatusCode::OK, "{account}");
    let approved: Vec<&str> = account["approvedDestinations"]
        .as_array()
        .expect("approved destinations")
        .iter()
        .filter_map(|d| d["address"].as_str())
        .collect();
    assert!(approved.contains(&address.as_str()), "{account}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_veto_during_cooling_off_means_dfns_never_sees_the_address() {
    let env = env().await;
    let alice = client_id("alice");
    let bob = client_id("bob");
    env.open_account(&alice).await;
    env.open_account(&bob).await;
    let address = random_address();
    let (status, created) = env.request_destination(&alice, &address, "not mine").await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["state"], "CoolingOff", "{created}");
    let id = created["id"].as_str().expect("an id").to_owned();
    let veto = format!("/v1/destination-requests/{id}/veto");

    // Bob cannot veto it (nor tell it exists).
    let (status, body) = env
        .call(Method::POST, &veto, Some(&env.token(&bob)), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let (status, vetoed) = env
        .call(Method::POST, &veto, Some(&env.token(&alice)), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{vetoed}");
    assert_eq!(vetoed["state"], "Vetoed", "{vetoed}");
    let (status, again) = env
        .call(Method::POST, &veto, Some(&env.token(&alice)), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert!(
        notification_kinds(&env, &alice)
            .await
            .contains(&"destination_request.vetoed".to_owned())
    );
    let (status, audit) = env.get("/v1/audit?limit=100", &alice).await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    assert!(
        audit.to_string().contains("destination_request.vetoed"),
        "{audit}"
    );

    // Long after the wait would have ended, at Dfns and here: nothing was ever sent.
    advance_dfns_clock(&env, 2 * WAIT).await;
    let report = reconcile_at(&env, usable_from(&created) + WAIT).await;
    assert!(
        !dfns_has_seen(&env, &address),
        "Dfns saw the vetoed address"
    );
    assert_eq!(report.cooling_off_ended, 0, "{report:?}");
    assert_eq!(
        env.destination_request(&alice, &id).await.unwrap()["state"],
        "Vetoed"
    );
}
