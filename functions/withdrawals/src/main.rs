#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    platform::http::init_tracing();
    // Withdrawals are sent by the order executor, which reads the trading settings (lease,
    // concurrency): refuse to start when they cannot be used.
    platform::trading::check_at_startup()?;
    let app = platform::App::from_env(withdrawals::SECRETS).await?;
    lambda_http::run(platform::http::service(withdrawals::router(), app)).await
}
