use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use platform::job::JobFailure;

#[tokio::main]
async fn main() -> Result<(), Error> {
    platform::http::init_tracing();
    let app = platform::App::from_env(order_execution::SECRETS).await?;
    // Refuse to start on bad trading settings rather than failing every run.
    platform::trading::config()?;
    lambda_runtime::run(service_fn(|_event: LambdaEvent<EventBridgeEvent>| {
        let app = app.clone();
        async move {
            // The clock, not the event's `time`: a delayed or retried delivery must not run
            // orders against a stale "now" (it would only see fewer due orders, but leases
            // would be short).
            order_execution::run(&app, time::OffsetDateTime::now_utc())
                .await
                .map_err(JobFailure::from)
        }
    }))
    .await
}
