#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    platform::http::init_tracing();
    let app = platform::App::from_env(dfns_webhook::SECRETS).await?;
    // Deployed, the receiver only queues: without the queue it would apply deliveries in the
    // request with credentials it does not hold.
    if app.webhook_queue().is_none() {
        return Err(format!(
            "{} is not set: the receiver queues every delivery for webhook-consumer",
            platform::webhook_queue::WEBHOOK_QUEUE_URL
        )
        .into());
    }
    lambda_http::run(platform::http::service(dfns_webhook::router(), app)).await
}
