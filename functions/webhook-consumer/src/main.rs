use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    platform::http::init_tracing();
    let app = platform::App::from_env(webhook_consumer::SECRETS).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let app = app.clone();
        async move {
            // Failures are reported per message (ReportBatchItemFailures), never as an error of
            // the whole batch, so applied messages are not applied again.
            Ok::<SqsBatchResponse, Error>(
                webhook_consumer::handle_sqs(&app, &event.payload.records).await,
            )
        }
    }))
    .await
}
