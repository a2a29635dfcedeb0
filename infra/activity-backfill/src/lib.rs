//! `activity-backfill`: fills the activity read model ([`store::activity`], issue 17) for clients
//! whose history predates it, from Dfns (every wallet's transfers and history) and their audit
//! chains ([`platform::reporting::read_model::backfill_client`]).
//!
//! **Safe to rerun.** Every row's key is its fact (time and id) and a transfer row only moves
//! forward, so a second run, or a run beside the live writers, writes nothing twice and moves
//! nothing back.
//!
//! **Resumable.** Clients are taken a page at a time (a scan of the client profiles); after each
//! page the run records the page's last client in the table (`BACKFILL#activity` / `CURSOR`), and
//! the next run starts after it. A finished run clears it. `--restart` ignores it.

use futures::{StreamExt, TryStreamExt};
use platform::App;
use platform::reporting::read_model::{BackfillReport, backfill_client};
use serde::Serialize;

/// What to backfill.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only these clients (no scan, no cursor).
    pub clients: Vec<domain::ClientId>,
    /// Start from the first client, not from where the last run stopped.
    pub restart: bool,
    /// Clients per page (the cursor moves after each).
    pub page: usize,
    /// Clients backfilled at once (each reads Dfns: the organisation's budget paces them).
    pub concurrency: usize,
    /// Stop after this many clients (the cursor says where).
    pub max_clients: Option<usize>,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub clients: usize,
    pub rows: BackfillReport,
    /// Set when the run stopped before the end (`max_clients`): where the next run starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_after: Option<String>,
}

fn add(total: &mut BackfillReport, one: &BackfillReport) {
    total.transfers += one.transfers;
    total.history += one.history;
    total.audit += one.audit;
    total.written += one.written;
}

async fn clients_at_once(
    app: &App,
    clients: &[domain::ClientId],
    concurrency: usize,
    report: &mut RunReport,
) -> anyhow::Result<()> {
    let done: Vec<BackfillReport> = futures::stream::iter(clients.iter())
        .map(|client| async move {
            let one = backfill_client(app, client).await?;
            tracing::info!(client = %client, ?one, "client backfilled");
            Ok::<_, platform::PlatformError>(one)
        })
        .buffered(concurrency.max(1))
        .try_collect()
        .await?;
    for one in &done {
        add(&mut report.rows, one);
    }
    report.clients += done.len();
    Ok(())
}

/// Runs the backfill.
pub async fn run(app: &App, options: &Options) -> anyhow::Result<RunReport> {
    let mut report = RunReport::default();
    if !options.clients.is_empty() {
        clients_at_once(app, &options.clients, options.concurrency, &mut report).await?;
        return Ok(report);
    }
    let store = app.store();
    let mut after = if options.restart {
        None
    } else {
        store.backfill_cursor().await?
    };
    if let Some(after) = &after {
        tracing::info!(%after, "resuming after the last run's cursor");
    }
    loop {
        let left = options
            .max_clients
            .map_or(usize::MAX, |max| max.saturating_sub(report.clients));
        if left == 0 {
            report.resume_after = after.as_ref().map(ToString::to_string);
            return Ok(report);
        }
        let (clients, next) = store
            .scan_client_ids(after.as_ref(), options.page.max(1).min(left))
            .await?;
        clients_at_once(app, &clients, options.concurrency, &mut report).await?;
        // Only once the whole page is in: a run that dies mid-page redoes that page.
        store.set_backfill_cursor(next.as_ref()).await?;
        match next {
            Some(next) => after = Some(next),
            None => return Ok(report),
        }
    }
}
