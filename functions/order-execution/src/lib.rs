//! `order-execution`: the scheduled (EventBridge, every minute by default) run of due orders, at
//! most once each. See [`platform::trading::execution`] for how: claims under a lease, checks at
//! send time, Dfns Transfer Asset with `externalId` = order id, bounded concurrency
//! (`ORDER_CONCURRENCY`, default 8), lease `ORDER_LEASE_SECONDS` (default 300).
//!
//! After sending, the run re-reads from Dfns the orders still in flight that no webhook has moved
//! for [`REFRESH_QUIET_FOR`] (the fallback for a lost webhook).

use platform::trading::{self, Executor};
use serde::Serialize;
use time::OffsetDateTime;

/// The secrets this function holds: it creates transfers.
pub const SECRETS: platform::SecretsHeld = platform::SecretsHeld::SIGNING;

/// An in-flight order unchanged this long is re-read from Dfns by the run.
pub const REFRESH_QUIET_FOR: time::Duration = time::Duration::minutes(2);

/// What one scheduled invocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    #[serde(flatten)]
    pub execution: trading::RunReport,
    /// In-flight orders moved by the lost-webhook refresh.
    pub refreshed: usize,
}

/// One run at `now` in an invocation that ends at `deadline` (Lambda's): due orders, claimed
/// for `ORDER_RUN_SECONDS` and never close to the deadline ([`Executor::run_within`]), then the
/// lost-webhook refresh. A refresh failure is logged, not fatal: the orders are already sent and
/// the next run refreshes again.
pub async fn run(
    app: &platform::App,
    now: OffsetDateTime,
    deadline: Option<std::time::Instant>,
) -> Result<RunReport, platform::PlatformError> {
    let config = trading::config()?;
    let execution = Executor::new(app, config).run_within(now, deadline).await?;
    let run_id = format!("refresh-{}", now.unix_timestamp());
    let refreshed = match app.dfns().await {
        Ok(dfns) => trading::refresh_in_flight(app, &dfns, REFRESH_QUIET_FOR, now, &run_id)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "refreshing in-flight orders failed; the next run retries");
                0
            }),
        Err(error) => {
            tracing::warn!(%error, "no Dfns client for the in-flight refresh");
            0
        }
    };
    use platform::metrics::{self, ORDER_ERRORS, ORDERS_NOT_SENT, ORDERS_SENT};
    metrics::add(ORDERS_SENT, execution.sent as u64);
    metrics::add(ORDERS_NOT_SENT, execution.not_sent as u64);
    metrics::add(ORDER_ERRORS, execution.errors as u64);
    Ok(RunReport {
        execution,
        refreshed,
    })
}

// Tests of the crate as its callers use it, against the stand-ins and the Dfns emulator.
// Kept in the library rather than tests/: an integration test would make cargo link the binary
// too (~45 MB of CI disk each) for nothing.
#[cfg(test)]
mod execution_tests;
