//! Metrics that alarms watch, as CloudWatch embedded-metric-format (EMF) lines: in Lambda, a JSON
//! line on stdout with an `_aws` member becomes a metric in the `ManagedAccounts` namespace, per
//! function (docs: <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>).
//! Elsewhere (local runs, tests) the same count is a warning in the log.

/// Namespace of the platform's own metrics (`template.yaml`'s alarms name it).
pub const NAMESPACE: &str = "ManagedAccounts";

/// A webhook delivery arrived while the webhook secret held no usable key.
pub const WEBHOOK_SECRET_UNUSABLE: &str = "WebhookSecretUnusable";

/// Counts one occurrence of `name`.
pub fn count(name: &'static str) {
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok();
    match function {
        Some(function) => println!("{}", emf_line(name, &function, now_millis())),
        None => tracing::warn!(metric = name, "metric counted"),
    }
}

fn now_millis() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// One EMF record: `name` = 1 (Count), dimension `FunctionName`.
fn emf_line(name: &str, function: &str, at_millis: i64) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": at_millis,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["FunctionName"]],
                "Metrics": [{ "Name": name, "Unit": "Count" }]
            }]
        },
        "FunctionName": function,
        name: 1
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_line_names_its_metric_namespace_and_dimension() {
        let line: serde_json::Value =
            serde_json::from_str(&emf_line(WEBHOOK_SECRET_UNUSABLE, "f", 5)).unwrap();
        assert_eq!(line[WEBHOOK_SECRET_UNUSABLE], 1);
        assert_eq!(line["FunctionName"], "f");
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Metrics"][0]["Name"], WEBHOOK_SECRET_UNUSABLE);
        assert_eq!(directive["Dimensions"][0][0], "FunctionName");
        assert_eq!(line["_aws"]["Timestamp"], 5);
    }
}
