//! The reconciler: what a lost webhook would have done, found by polling.
//!
//! Runs on a schedule (EventBridge). For every destination request that is not final:
//! - `PendingApproval`: read the approval at Dfns; if it was decided, apply it exactly as the
//!   webhook would (forward only, so racing a late webhook is harmless);
//! - `Submitted` for longer than `RECONCILE_SUBMITTED_AFTER_SECONDS`: the Dfns call's outcome was
//!   lost (timeout, crash); re-drive it ([`destinations::drive_submitted`] adopts a change request
//!   already pending on the policy instead of sending a second one);
//! - `Queued`: submit the client's next request if its slot is free (also for every client whose
//!   approval this run applied).
//!
//! [`submit_next`] is the same queue step for one client, run when a destination request of
//! theirs settles (the bus event of its notification triggers it on AWS): the webhook receiver
//! that settles it cannot change anything at Dfns, so the next submission happens here.
//!
//! One request failing never stops the others; failures are counted and logged.

use std::collections::BTreeSet;

use dfns_client::ApprovalId;
use domain::{Actor, ClientId, DestinationRequestState};
use serde::Serialize;
use time::OffsetDateTime;

use crate::App;
use crate::destinations;
use crate::error::Result;
use crate::webhook;

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    /// Requests not final at the start of the run.
    pub open_requests: usize,
    /// Pending approvals found decided and applied.
    pub approvals_applied: usize,
    /// `Submitted` requests re-driven.
    pub submissions_redriven: usize,
    /// Clients whose queue was looked at.
    pub clients_with_queue: usize,
    /// Requests (or clients) whose handling failed this run; retried next run.
    pub failures: usize,
}

/// One reconciliation pass.
pub async fn run(app: &App) -> Result<ReconcileReport> {
    let run_id = format!("reconcile-{}", ulid::Ulid::new());
    let actor = || Actor::System {
        id: "reconciler".into(),
    };
    let open = app.store().open_destination_requests().await?;
    let mut report = ReconcileReport {
        open_requests: open.len(),
        ..ReconcileReport::default()
    };
    let stale_before = OffsetDateTime::now_utc() - app.settings().reconcile_submitted_after;
    let mut queues: BTreeSet<ClientId> = BTreeSet::new();
    for request in &open {
        let outcome = match request.state {
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
                            webhook::on_approval(app, &approval, actor(), &run_id).await?;
                            queues.insert(request.client_id.clone());
                        }
                        Ok::<_, crate::PlatformError>(decided)
                    }
                    .await;
                    result.map(|decided| report.approvals_applied += usize::from(decided))
                }
                None => {
                    tracing::warn!(request = %request.id, "pending request without approval id");
                    Ok(())
                }
            },
            DestinationRequestState::Submitted if request.updated_at < stale_before => {
                report.submissions_redriven += 1;
                destinations::drive_submitted(app, request, &run_id).await
            }
            DestinationRequestState::Queued => {
                queues.insert(request.client_id.clone());
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(error) = outcome {
            report.failures += 1;
            tracing::warn!(%error, request = %request.id, "reconciling a destination request failed");
        }
    }
    report.clients_with_queue = queues.len();
    for client in &queues {
        if let Err(error) = destinations::submit_queued(app, client, &run_id).await {
            report.failures += 1;
            tracing::warn!(%error, client = %client, "submitting a queued request failed");
        }
    }
    tracing::info!(?report, "reconciliation run finished");
    Ok(report)
}

/// Submits `client`'s next queued destination request if its slot is free (a request of theirs
/// just settled). Safe to run any number of times, for any client.
pub async fn submit_next(app: &App, client: &ClientId, run_id: &str) -> Result<()> {
    destinations::submit_queued(app, client, run_id).await
}
