use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use platform::job::JobFailure;

#[tokio::main]
async fn main() -> Result<(), Error> {
    platform::http::init_tracing();
    let app = platform::App::from_env(reconciler::SECRETS).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<EventBridgeEvent>| {
        let app = app.clone();
        async move {
            // A failed run is an error for Lambda's metrics, typed retryable or fatal; the next
            // scheduled run retries.
            reconciler::handle(&app, &event.payload)
                .await
                .map_err(JobFailure::from)
        }
    }))
    .await
}
