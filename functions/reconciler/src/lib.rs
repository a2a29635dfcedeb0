//! `reconciler`: applies what lost webhooks would have, queues destination requests whose
//! cooling-off has ended, and submits queued ones whose client has a free slot. See
//! [`platform::reconcile`].
//!
//! Invoked by EventBridge in two ways ([`Trigger`]): on its schedule (a whole pass), and by the
//! platform's own `destination_request.{approved,rejected,failed}` events, which free that
//! client's slot: the webhook receiver settles the request but holds no signing credential, so
//! the client's next queued request is submitted here, at once.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use platform::notify::{EVENT_SOURCE, kinds};

pub use platform::reconcile::ReconcileReport;

/// The secrets this function holds: it re-drives destination requests and submits queued ones
/// (policy changes).
pub const SECRETS: platform::SecretsHeld = platform::SecretsHeld::SIGNING;

/// What an event asks of the reconciler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// The schedule (or anything else): a whole pass.
    Pass,
    /// A destination request of this client settled: submit its next queued one.
    Settled(domain::ClientId),
}

impl Trigger {
    /// Reads the event. Only the platform's own settlement events, with a valid client id, are
    /// a [`Trigger::Settled`]; whatever else arrives runs the (always safe) whole pass.
    pub fn of(event: &EventBridgeEvent) -> Self {
        let settled = [
            kinds::DESTINATION_APPROVED,
            kinds::DESTINATION_REJECTED,
            kinds::DESTINATION_FAILED,
        ];
        if event.source != EVENT_SOURCE || !settled.contains(&event.detail_type.as_str()) {
            return Self::Pass;
        }
        match event.detail["clientId"]
            .as_str()
            .map(domain::ClientId::parse)
        {
            Some(Ok(client)) => Self::Settled(client),
            _ => Self::Pass,
        }
    }
}

/// One reconciliation pass.
pub async fn run(app: &platform::App) -> Result<ReconcileReport, platform::PlatformError> {
    platform::reconcile::run(app).await
}

/// Handles one invocation.
pub async fn handle(
    app: &platform::App,
    event: &EventBridgeEvent,
) -> Result<serde_json::Value, platform::PlatformError> {
    match Trigger::of(event) {
        Trigger::Pass => {
            let report = run(app).await?;
            // Per-request failures do not fail the run (the others go on): counted for the alarm.
            platform::metrics::add(
                platform::metrics::RECONCILE_FAILURES,
                report.failures as u64,
            );
            Ok(serde_json::to_value(report).unwrap_or_default())
        }
        Trigger::Settled(client) => {
            let run_id = event
                .id
                .clone()
                .unwrap_or_else(|| "destination-settled".to_owned());
            platform::reconcile::submit_next(app, &client, &run_id).await?;
            Ok(serde_json::json!({ "submittedNextFor": client }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(source: &str, detail_type: &str, detail: serde_json::Value) -> EventBridgeEvent {
        serde_json::from_value(serde_json::json!({
            "version": "0", "id": "ev-1", "detail-type": detail_type, "source": source,
            "account": "123456789012", "time": "2026-12-07T05:00:00Z", "region": "eu-west-1",
            "resources": [], "detail": detail,
        }))
        .unwrap()
    }

    #[test]
    fn only_the_platforms_settlement_events_name_a_client() {
        let alice = domain::ClientId::parse("alice").unwrap();
        for kind in [
            kinds::DESTINATION_APPROVED,
            kinds::DESTINATION_REJECTED,
            kinds::DESTINATION_FAILED,
        ] {
            let e = event(
                EVENT_SOURCE,
                kind,
                serde_json::json!({ "clientId": "alice" }),
            );
            assert_eq!(Trigger::of(&e), Trigger::Settled(alice.clone()), "{kind}");
        }
        let schedule = event(
            "aws.events",
            "Scheduled Event",
            serde_json::json!({ "clientId": "alice" }),
        );
        let other_source = event(
            "someone.else",
            kinds::DESTINATION_APPROVED,
            serde_json::json!({ "clientId": "alice" }),
        );
        let other_kind = event(
            EVENT_SOURCE,
            kinds::DEPOSIT_RECEIVED,
            serde_json::json!({ "clientId": "alice" }),
        );
        let bad_client = event(
            EVENT_SOURCE,
            kinds::DESTINATION_APPROVED,
            serde_json::json!({ "clientId": "../x" }),
        );
        let no_client = event(
            EVENT_SOURCE,
            kinds::DESTINATION_APPROVED,
            serde_json::json!({}),
        );
        for e in [schedule, other_source, other_kind, bad_client, no_client] {
            assert_eq!(Trigger::of(&e), Trigger::Pass, "{e:?}");
        }
    }
}
