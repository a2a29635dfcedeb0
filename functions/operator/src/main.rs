use lambda_http::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    platform::http::init_tracing();
    let app = platform::App::from_env().await?;
    // Refuse to start on a bad exchange registry rather than failing every request.
    platform::trading::config()?;
    lambda_http::run(service_fn(|req| {
        let app = app.clone();
        async move { Ok::<_, Error>(operator::handle(&app, req).await) }
    }))
    .await
}
