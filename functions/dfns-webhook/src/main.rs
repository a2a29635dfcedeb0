#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    platform::http::init_tracing();
    let app = platform::App::from_env(dfns_webhook::SECRETS).await?;
    lambda_http::run(platform::http::service(dfns_webhook::router(), app)).await
}
