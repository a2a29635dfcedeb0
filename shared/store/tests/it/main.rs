//! Integration tests against DynamoDB Local (started by `cargo xtask test`). Each test creates its
//! own table, so tests run in parallel.

mod activity;
mod audit;
mod clients;
mod destinations;
mod dfns_budget;
mod open_work;
mod orders;
mod schema;
mod template;
mod webhooks;

use domain::ClientId;
use store::Store;
use time::OffsetDateTime;

/// A store over a fresh, uniquely named table.
pub async fn fresh_store() -> Store {
    let client = dynamodb_client().await;
    let table = format!("test-{}", ulid::Ulid::new());
    store::schema::create_table(&client, &table)
        .await
        .expect("create test table");
    Store::new(client, table)
}

pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    if std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_none() {
        panic!(
            "AWS_ENDPOINT_URL_DYNAMODB is not set: these tests need DynamoDB Local; \
             run through `cargo xtask test`"
        );
    }
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    aws_sdk_dynamodb::Client::new(&config)
}

pub fn client_id(name: &str) -> ClientId {
    ClientId::parse(&format!("{name}-{}", ulid::Ulid::new())).unwrap()
}

/// A fixed instant, so tests do not depend on the machine clock.
pub fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}
