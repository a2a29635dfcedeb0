#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    platform::http::init_tracing();
    // Refuse to start without a usable exchange registry (`EXCHANGES`: a deployment's own, or
    // `dev` explicitly) rather than failing every request or trading with placeholder addresses.
    platform::trading::check_at_startup()?;
    let app = platform::App::from_env(trading::SECRETS).await?;
    lambda_http::run(platform::http::service(trading::router(), app)).await
}
