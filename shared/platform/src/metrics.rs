//! Metrics that alarms watch, as CloudWatch embedded-metric-format (EMF) lines: in Lambda, a JSON
//! line on stdout with an `_aws` member becomes a metric in the `ManagedAccounts` namespace, per
//! function (docs: <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>).
//! Elsewhere (local runs, tests) the same count is a warning in the log.

/// Namespace of the platform's own metrics (`template.yaml`'s alarms name it).
pub const NAMESPACE: &str = "ManagedAccounts";

/// A webhook delivery arrived while the webhook secret held no usable key.
pub const WEBHOOK_SECRET_UNUSABLE: &str = "WebhookSecretUnusable";
/// The receiver accepted a delivery (queued it, or applied it where there is no queue).
pub const WEBHOOK_ACCEPTED: &str = "WebhookAccepted";
/// A delivery without a valid signature (missing, malformed, or not ours).
pub const WEBHOOK_BAD_SIGNATURE: &str = "WebhookBadSignature";
/// A correctly signed delivery sent too long ago (or from the future).
pub const WEBHOOK_STALE: &str = "WebhookStale";
/// A correctly signed delivery whose body the platform cannot read (a Dfns change?): kept on the
/// queue, where it ends in the dead-letter queue for a redrive once the code reads it.
pub const WEBHOOK_UNPARSEABLE: &str = "WebhookUnparseable";
/// The receiver could not record or queue a delivery (answered 5xx; Dfns retries).
pub const WEBHOOK_FAILED: &str = "WebhookFailed";
/// The consumer applied a queued event.
pub const WEBHOOK_EVENT_APPLIED: &str = "WebhookEventApplied";
/// A deposit to a wallet no client holds (yet), kept until the mapping appears.
pub const WEBHOOK_UNMAPPED_KEPT: &str = "WebhookUnmappedKept";
/// The consumer failed to apply a queued event (retried; dead-lettered after 5 attempts).
pub const WEBHOOK_EVENT_FAILED: &str = "WebhookEventFailed";
/// Order execution: orders sent to Dfns this run.
pub const ORDERS_SENT: &str = "OrdersSent";
/// Order execution: orders ended without sending this run (checks or Dfns refused them).
pub const ORDERS_NOT_SENT: &str = "OrdersNotSent";
/// Order execution: orders that hit an unexpected error this run (each in the log; retried after
/// their lease). The run itself still succeeds, so Lambda's `Errors` does not count them.
pub const ORDER_ERRORS: &str = "OrderErrors";
/// Reconciler: requests (or clients) whose handling failed this run.
pub const RECONCILE_FAILURES: &str = "ReconcileFailures";

/// Counts one occurrence of `name`.
pub fn count(name: &'static str) {
    add(name, 1);
}

/// Counts `value` occurrences of `name` (nothing when 0).
pub fn add(name: &'static str, value: u64) {
    if value == 0 {
        return;
    }
    record(name, value);
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok();
    match function {
        Some(function) => println!("{}", emf_line(name, &function, now_millis(), value)),
        None => tracing::warn!(metric = name, value, "metric counted"),
    }
}

static RECORDED: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

fn record(name: &'static str, value: u64) {
    if let Ok(mut recorded) = RECORDED.lock() {
        *recorded.entry(name).or_default() += value;
    }
}

/// How many of `name` this process has counted (tests compare before and after).
pub fn counted(name: &'static str) -> u64 {
    RECORDED
        .lock()
        .map(|recorded| recorded.get(name).copied().unwrap_or(0))
        .unwrap_or(0)
}

fn now_millis() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// One EMF record: `name` = `value` (Count), by `FunctionName` and in aggregate.
fn emf_line(name: &str, function: &str, at_millis: i64, value: u64) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": at_millis,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                // Per function, and also without dimensions: an alarm can watch every
                // function's count at once (an empty dimension set publishes the aggregate).
                "Dimensions": [["FunctionName"], []],
                "Metrics": [{ "Name": name, "Unit": "Count" }]
            }]
        },
        "FunctionName": function,
        name: value
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_line_names_its_metric_namespace_and_dimension() {
        let line: serde_json::Value =
            serde_json::from_str(&emf_line(WEBHOOK_SECRET_UNUSABLE, "f", 5, 1)).unwrap();
        assert_eq!(line[WEBHOOK_SECRET_UNUSABLE], 1);
        assert_eq!(line["FunctionName"], "f");
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Metrics"][0]["Name"], WEBHOOK_SECRET_UNUSABLE);
        assert_eq!(directive["Dimensions"][0][0], "FunctionName");
        assert_eq!(
            directive["Dimensions"][1],
            serde_json::json!([]),
            "and the aggregate"
        );
        assert_eq!(line["_aws"]["Timestamp"], 5);
        let three: serde_json::Value =
            serde_json::from_str(&emf_line(ORDER_ERRORS, "f", 5, 3)).unwrap();
        assert_eq!(three[ORDER_ERRORS], 3);
    }

    #[test]
    fn counts_are_recorded_and_zero_is_not_a_count() {
        let before = counted(RECONCILE_FAILURES);
        add(RECONCILE_FAILURES, 0);
        assert_eq!(counted(RECONCILE_FAILURES), before);
        add(RECONCILE_FAILURES, 2);
        assert!(counted(RECONCILE_FAILURES) >= before + 2);
    }
}
