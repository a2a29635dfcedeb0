//! Integration tests against DynamoDB Local / moto (started by `cargo xtask test`, or
//! `cargo xtask exec -- cargo test -p platform`) and the in-process Dfns emulator. Each test
//! builds its own table, bus and emulator, so tests run in parallel.

mod abuse;
mod activity;
mod cooling_off;
mod destinations;
mod dfns_budget;
mod onboarding;
mod policy_migration;
mod secrets;
mod store_ops;
mod webhooks;

use domain::ClientId;

pub fn client_id(name: &str) -> ClientId {
    ClientId::parse(&format!("{name}-{}", ulid::Ulid::new())).unwrap()
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `seconds`.
pub async fn eventually<T, F, Fut>(seconds: u64, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if let Some(found) = check().await {
            return Some(found);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
