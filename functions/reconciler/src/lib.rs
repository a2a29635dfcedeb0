//! `reconciler`: a scheduled (EventBridge) function that applies what lost webhooks would have
//! and submits queued destination requests whose client has a free slot. See
//! [`platform::reconcile`].

pub use platform::reconcile::ReconcileReport;

/// One reconciliation pass.
pub async fn run(app: &platform::App) -> Result<ReconcileReport, platform::PlatformError> {
    platform::reconcile::run(app).await
}
