use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    platform::http::init_tracing();
    let app = platform::App::from_env().await?;
    lambda_runtime::run(service_fn(|_event: LambdaEvent<EventBridgeEvent>| {
        let app = app.clone();
        async move {
            // A failed run is an error for Lambda's metrics; the next scheduled run retries.
            let report = reconciler::run(&app).await?;
            Ok::<_, Error>(report)
        }
    }))
    .await
}
