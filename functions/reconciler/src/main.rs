use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use platform::job::JobFailure;

#[tokio::main]
async fn main() -> Result<(), Error> {
    platform::http::init_tracing();
    // Order execution and reconciliation may use the Dfns budget's reserve (page loads may not).
    let app = platform::App::from_env(reconciler::SECRETS)
        .await?
        .with_dfns_priority(platform::dfns_budget::Priority::Background);
    lambda_runtime::run(service_fn(|event: LambdaEvent<EventBridgeEvent>| {
        let app = app.clone();
        async move {
            // A failed run is an error for Lambda's metrics, typed retryable or fatal; the next
            // scheduled run retries.
            // Boxed: the destination flow it runs nests deep enough that laying its future out
            // inline in the runtime's overflows the compiler's query depth.
            Box::pin(reconciler::handle(&app, &event.payload))
                .await
                .map_err(JobFailure::from)
        }
    }))
    .await
}
