use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use platform::job::JobFailure;

#[tokio::main]
async fn main() -> Result<(), Error> {
    platform::http::init_tracing();
    let app = platform::App::from_env().await?;
    lambda_runtime::run(service_fn(|_event: LambdaEvent<EventBridgeEvent>| {
        let app = app.clone();
        async move {
            // A failed run is an error for Lambda's metrics, typed retryable or fatal; the next
            // scheduled run retries.
            reconciler::run(&app).await.map_err(JobFailure::from)
        }
    }))
    .await
}
