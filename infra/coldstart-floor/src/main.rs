//! The floor of `cargo xtask bench coldstart`: what any function of ours pays at a cold start
//! before its own code runs. It builds the AWS SDK configuration and the DynamoDB and Secrets
//! Manager clients exactly as the functions do (through `platform-config`, which only builds them:
//! no request is sent), then answers every event with the same fixed 401 the functions give a
//! request without a bearer token. A function's first response is compared with this one.

use lambda_http::{Body, Error, Request, Response, service_fn};

const UNAUTHORIZED: &str =
    r#"{"error":{"code":"unauthorized","message":"missing bearer token","requestId":"floor"}}"#;

#[tokio::main]
async fn main() -> Result<(), Error> {
    platform_config::aws::sdk_config().await;
    platform_config::aws::dynamodb_client().await;
    platform_config::aws::secrets_manager_client().await;
    lambda_http::run(service_fn(|_: Request| async {
        Response::builder()
            .status(401)
            .header("content-type", "application/json")
            .body(Body::from(UNAUTHORIZED))
            .map_err(Error::from)
    }))
    .await
}
