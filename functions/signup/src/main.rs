#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    platform::http::init_tracing();
    let app = platform::App::from_env(signup::SECRETS).await?;
    lambda_http::run(platform::http::service(signup::router(), app)).await
}
