//! AWS configuration and clients, built once per process and shared (clients are cheap clones
//! over one connection pool, so warm Lambda invocations reuse connections).
//!
//! The pool belongs to the tokio runtime that first used it: call these from the process's one
//! runtime (as a Lambda `main` or the local stack does), not from many short-lived runtimes.

use aws_config::{BehaviorVersion, SdkConfig};
use tokio::sync::OnceCell;

static SDK_CONFIG: OnceCell<SdkConfig> = OnceCell::const_new();
static DYNAMODB: OnceCell<aws_sdk_dynamodb::Client> = OnceCell::const_new();
static SECRETS_MANAGER: OnceCell<aws_sdk_secretsmanager::Client> = OnceCell::const_new();

/// The process-wide SDK configuration (region, credentials, endpoints from the environment).
pub async fn sdk_config() -> &'static SdkConfig {
    SDK_CONFIG
        .get_or_init(|| aws_config::defaults(BehaviorVersion::latest()).load())
        .await
}

pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    DYNAMODB
        .get_or_init(|| async { aws_sdk_dynamodb::Client::new(sdk_config().await) })
        .await
        .clone()
}

pub async fn secrets_manager_client() -> aws_sdk_secretsmanager::Client {
    SECRETS_MANAGER
        .get_or_init(|| async { aws_sdk_secretsmanager::Client::new(sdk_config().await) })
        .await
        .clone()
}
