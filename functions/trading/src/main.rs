#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    platform::http::init_tracing();
    let app = platform::App::from_env(trading::SECRETS).await?;
    // Refuse to start on a bad exchange registry rather than failing every request.
    platform::trading::config()?;
    lambda_http::run(platform::http::service(trading::router(), app)).await
}
