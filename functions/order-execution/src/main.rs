use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use platform::job::JobFailure;

#[tokio::main]
async fn main() -> Result<(), Error> {
    platform::http::init_tracing();
    // Refuse to start on missing or bad trading settings (`EXCHANGES`: a deployment's own
    // registry, or `dev` explicitly) rather than failing every run or sending funds to
    // placeholder addresses.
    platform::trading::check_at_startup()?;
    // Order execution and reconciliation may use the Dfns budget's reserve (page loads may not).
    let app = platform::App::from_env(order_execution::SECRETS)
        .await?
        .with_dfns_priority(platform::dfns_budget::Priority::Background);
    lambda_runtime::run(service_fn(|event: LambdaEvent<EventBridgeEvent>| {
        let app = app.clone();
        async move {
            // The clock, not the event's `time`: a delayed or retried delivery must not run
            // orders against a stale "now" (it would only see fewer due orders, but leases
            // would be short).
            let now = time::OffsetDateTime::now_utc();
            // Lambda's deadline (epoch ms) as an instant: the run stops claiming before it.
            let left_ms = (event.context.deadline as i128 - now.unix_timestamp_nanos() / 1_000_000)
                .max(0) as u64;
            let deadline = std::time::Instant::now() + std::time::Duration::from_millis(left_ms);
            order_execution::run(&app, now, Some(deadline))
                .await
                .map_err(JobFailure::from)
        }
    }))
    .await
}
