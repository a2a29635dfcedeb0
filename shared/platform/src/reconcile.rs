//! The reconciler: what a lost webhook would have done, found by polling.
//!
//! Runs on a schedule (EventBridge). It takes the clients with open destination requests one after
//! the other (round robin, in the `open` index's order), a page of each client's oldest open
//! requests ([`PAGE_PER_CLIENT`]), and for each request:
//! - `CoolingOff` whose wait has ended (`usableFrom` reached): queue it
//!   ([`destinations::end_cooling_off`]) and submit the client's next request; one still cooling
//!   off is left alone (nothing of it goes to Dfns);
//! - `PendingApproval`: read the approval at Dfns; if it was decided, apply it exactly as the
//!   webhook would (forward only, so racing a late webhook is harmless; the officers' decisions
//!   land in the client's audit chain once); if not, alert the officers if nobody has, and remind
//!   them once half of its time to expiry has passed ([`crate::compliance::alert_officers`]);
//! - `Submitted` for longer than `RECONCILE_SUBMITTED_AFTER_SECONDS`: the Dfns call's outcome was
//!   lost (timeout, crash, a failed write); re-drive it ([`destinations::redrive_submitted`]
//!   adopts a change request already pending on the policy instead of sending a second one, and
//!   the decision on one an officer already decided);
//! - `Queued` for longer than `QUEUED_REQUEST_TTL`: expire it ([`destinations::expire_queued`]);
//!   any other `Queued`: submit the client's next request if its slot is free (also for every
//!   client whose approval this run applied).
//!
//! **Bounded, fair work.** A client's share of a run is one page, however many requests it has
//! (and the quota bounds those), so a client flooding the platform cannot push the others out.
//! After `RECONCILE_TIME_BUDGET_SECONDS` (default 180 s, under the Lambda's 240 s timeout) the run
//! starts no new client; it records where it stopped and the next run starts with the next client
//! (wrapping around), so the clients at the end of the index are reached too. Every run takes at
//! least one client. The [`ReconcileReport`] says what was left: clients with more than a page,
//! and whether (and after whom) the run stopped on its budget.
//!
//! [`submit_next`] is the same queue step for one client, run when a destination request of
//! theirs settles (the bus event of its notification triggers it on AWS): the webhook receiver
//! that settles it cannot change anything at Dfns, so the next submission happens here.
//!
//! One request failing never stops the others; failures are counted and logged.
//!
//! **The run's clock.** Every deadline (a cooling-off's end, a queued request's age, a submission
//! left too long) is compared with one `now` taken when the run starts; [`run_at`] takes it from
//! the caller, so a test can run the reconciler as it would run later.

use std::time::{Duration, Instant};

use dfns_client::ApprovalId;
use domain::{Actor, ClientId, DestinationRequestState};
use serde::Serialize;
use store::open_requests::ClientOpenRequests;
use time::OffsetDateTime;

use crate::App;
use crate::destinations;
use crate::error::Result;
use crate::webhook;

/// Open requests of one client handled per run: the oldest ones. At most one of a client's
/// requests holds its policy-change slot and it is older than every queued one, so the page
/// holds the work that matters; the rest waits for the next run.
pub const PAGE_PER_CLIENT: usize = 10;

/// Kept deposits (to wallets not mapped when they arrived) looked at per run.
pub const KEPT_EVENTS_PER_RUN: usize = 100;

/// What one run did, and what it left for the next.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    /// Open requests looked at (at most a page per client).
    pub open_requests: usize,
    /// Pending approvals found decided and applied.
    pub approvals_applied: usize,
    /// `Submitted` requests re-driven.
    pub submissions_redriven: usize,
    /// `Queued` requests expired (waiting longer than `QUEUED_REQUEST_TTL`).
    pub queued_expired: usize,
    /// `CoolingOff` requests whose wait had ended: queued for submission.
    pub cooling_off_ended: usize,
    /// `CoolingOff` requests still waiting (left alone).
    pub cooling_off: usize,
    /// Clients whose queue was looked at.
    pub clients_with_queue: usize,
    /// Requests (or clients) whose handling failed this run; retried next run.
    pub failures: usize,
    /// Clients taken this run.
    pub clients_visited: usize,
    /// Clients with more open requests than a page: the rest wait for a later run.
    pub clients_with_more: usize,
    /// The run stopped on its time budget before taking every client.
    pub budget_exhausted: bool,
    /// When it did: the last client taken; the next run starts after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumes_after: Option<ClientId>,
    /// Deposits kept for a wallet not mapped at the time, attached this run.
    pub kept_deposits_attached: usize,
    /// How long the run took, in milliseconds.
    pub elapsed_ms: u64,
}

impl ReconcileReport {
    /// Whether work is known to be left for the next run.
    pub fn work_left(&self) -> bool {
        self.budget_exhausted || self.clients_with_more > 0
    }
}

/// How much one run may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    /// No new client is started after this long (at least one client is taken per run).
    pub time_budget: Duration,
    /// Open requests of one client handled per run.
    pub page_per_client: usize,
}

impl RunLimits {
    /// The deployment's: `RECONCILE_TIME_BUDGET_SECONDS` and [`PAGE_PER_CLIENT`].
    pub fn of(app: &App) -> Self {
        Self {
            time_budget: app.settings().reconcile_time_budget,
            page_per_client: PAGE_PER_CLIENT,
        }
    }
}

/// One reconciliation pass, within the deployment's limits.
pub async fn run(app: &App) -> Result<ReconcileReport> {
    run_with(app, RunLimits::of(app)).await
}

/// One reconciliation pass within `limits`: round robin over the clients with open requests,
/// starting after the client where the last run stopped.
pub async fn run_with(app: &App, limits: RunLimits) -> Result<ReconcileReport> {
    run_at(app, limits, OffsetDateTime::now_utc()).await
}

/// [`run_with`] on the clock reading `now`: deadlines (a cooling-off's end, a queued request's
/// age, a stale submission) are compared with it, and the moves it makes are stamped with it.
/// The schedule passes the time of the run; a test passes a later time to see what a later run
/// would do.
pub async fn run_at(app: &App, limits: RunLimits, now: OffsetDateTime) -> Result<ReconcileReport> {
    let started = Instant::now();
    let run_id = format!("reconcile-{}", ulid::Ulid::new());
    let store = app.store();
    let mut report = ReconcileReport::default();
    // Where the last run stopped (if it stopped early): this run goes on from there to the end,
    // then from the first client up to there.
    let resume = store.reconcile_cursor().await?;
    let mut after = resume.clone();
    let mut wrapped = resume.is_none();
    let mut last_taken: Option<(String, ClientId)> = None;
    loop {
        if report.clients_visited > 0 && started.elapsed() >= limits.time_budget {
            report.budget_exhausted = true;
            break;
        }
        let next = store
            .next_client_open_requests(after.as_deref(), limits.page_per_client)
            .await?;
        let Some(page) = next else {
            if wrapped {
                break;
            }
            wrapped = true;
            after = None;
            continue;
        };
        if wrapped
            && resume
                .as_deref()
                .is_some_and(|resume| page.after.as_str() > resume)
        {
            // Back where this run started: every client has had its turn.
            break;
        }
        reconcile_client(app, &page, &run_id, now, &mut report).await;
        report.clients_visited += 1;
        report.clients_with_more += usize::from(page.more);
        after = Some(page.after.clone());
        last_taken = Some((page.after, page.client_id));
    }
    // Stopped early: the next run starts after the last client taken. Otherwise from the start.
    let stopped_at = last_taken.filter(|_| report.budget_exhausted);
    let cursor = stopped_at.as_ref().map(|(after, _)| after.as_str());
    if cursor != resume.as_deref() {
        store.set_reconcile_cursor(cursor).await?;
    }
    report.resumes_after = stopped_at.map(|(_, client)| client);
    match webhook::attach_recently_kept(app, &run_id, KEPT_EVENTS_PER_RUN).await {
        Ok(attached) => report.kept_deposits_attached = attached,
        Err(error) => {
            report.failures += 1;
            tracing::warn!(%error, "attaching kept deposits failed");
        }
    }
    report.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::info!(?report, "reconciliation run finished");
    Ok(report)
}

/// One client's page: queue requests whose cooling-off ended, apply decided approvals, re-drive
/// stale submissions, expire requests queued too long, then move the client's queue on.
async fn reconcile_client(
    app: &App,
    page: &ClientOpenRequests,
    run_id: &str,
    now: OffsetDateTime,
    report: &mut ReconcileReport,
) {
    let actor = || Actor::System {
        id: "reconciler".into(),
    };
    let stale_before = now - app.settings().reconcile_submitted_after;
    // More than a page: the rest is (almost certainly) queued behind it.
    let mut queue = page.more;
    for request in &page.requests {
        report.open_requests += 1;
        let outcome = match request.state {
            DestinationRequestState::CoolingOff
                if destinations::cooling_off_ended(app, request, now) =>
            {
                destinations::end_cooling_off(app, request, now, actor(), run_id)
                    .await
                    .map(|ended| {
                        report.cooling_off_ended += usize::from(ended);
                        queue |= ended;
                    })
            }
            DestinationRequestState::CoolingOff => {
                report.cooling_off += 1;
                Ok(())
            }
            DestinationRequestState::PendingApproval => match &request.approval_id {
                Some(approval_id) => {
                    let result = async {
                        let approval = app
                            .dfns_reader()
                            .await?
                            .get_approval(&ApprovalId::new(approval_id.clone()))
                            .await?;
                        let decided =
                            destinations::outcome_of_approval(&approval.status, None).is_some();
                        if decided {
                            webhook::on_approval(app, &approval, actor(), run_id).await?;
                        } else {
                            // The officers' alert (if its webhook was lost) and the reminder
                            // half-way to the expiry.
                            crate::compliance::alert_officers(app, &approval, now).await?;
                        }
                        Ok::<_, crate::PlatformError>(decided)
                    }
                    .await;
                    result.map(|decided| {
                        report.approvals_applied += usize::from(decided);
                        queue |= decided;
                    })
                }
                None => {
                    tracing::warn!(request = %request.id, "pending request without approval id");
                    Ok(())
                }
            },
            DestinationRequestState::Submitted if request.updated_at < stale_before => {
                report.submissions_redriven += 1;
                destinations::redrive_submitted(app, request, run_id).await
            }
            DestinationRequestState::Queued if destinations::queued_too_long(app, request, now) => {
                destinations::expire_queued(app, request, actor(), run_id)
                    .await
                    .map(|expired| report.queued_expired += usize::from(expired))
            }
            DestinationRequestState::Queued => {
                queue = true;
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(error) = outcome {
            report.failures += 1;
            tracing::warn!(%error, request = %request.id, "reconciling a destination request failed");
        }
    }
    // A change of the client's policy may be under way at Dfns (or was decided while its webhook
    // was lost): refresh the policies the account view keeps.
    let changing = page.requests.iter().any(|r| {
        matches!(
            r.state,
            DestinationRequestState::PendingApproval | DestinationRequestState::Submitted
        )
    });
    if changing
        && let Err(error) =
            crate::reporting::read_model::refresh_client_policies(app, &page.client_id).await
    {
        report.failures += 1;
        tracing::warn!(%error, client = %page.client_id, "refreshing the kept policies failed");
    }
    if queue {
        report.clients_with_queue += 1;
        if let Err(error) = destinations::submit_queued(app, &page.client_id, run_id).await {
            report.failures += 1;
            tracing::warn!(%error, client = %page.client_id, "submitting a queued request failed");
        }
    }
}

/// Submits `client`'s next queued destination request if its slot is free (a request of theirs
/// just settled). Safe to run any number of times, for any client.
pub async fn submit_next(app: &App, client: &ClientId, run_id: &str) -> Result<()> {
    destinations::submit_queued(app, client, run_id).await
}
