//! What the order-execution benches share: funded clients trading on Kraken, and placing due
//! orders for the desk.

use domain::{ClientId, OrderId};
use futures::StreamExt;
use platform::testing::TestEnv;
use platform::trading::orders::{self, OrderInput};
use platform::trading::{TradingConfig, authorizations};
use serde_json::json;

/// `count` new clients, each holding 1,000 ETH and with an active Kraken authorization (the
/// development registry's address approves at once: no cooling-off in the test harness).
pub async fn funded_traders(env: &TestEnv, count: usize) -> Vec<ClientId> {
    let mut clients = Vec::new();
    for i in 0..count {
        let client = ClientId::parse(&format!("bench-{i}-{}", ulid::Ulid::new())).unwrap();
        platform::onboarding::open_account(&env.app, &client, "bench")
            .await
            .expect("account");
        let wallet = env.app.store().list_wallets(&client).await.unwrap()[0].clone();
        env.control(
            reqwest::Method::POST,
            "deposits",
            json!({"walletId": wallet.wallet_id.as_str(), "kind": "Native", "amount": "1000000000000000000000"}),
        )
        .await;
        authorizations::authorize(
            &env.app,
            &TradingConfig::default(),
            &client,
            "Kraken",
            "bench",
        )
        .await
        .expect("authorized");
        clients.push(client);
    }
    clients
}

/// Places `count` due orders of 0.001 ETH to Kraken, spread over `clients`, 16 at a time; their ids.
pub async fn place_orders(env: &TestEnv, clients: &[ClientId], count: usize) -> Vec<OrderId> {
    let config = TradingConfig::default();
    let config = &config;
    futures::stream::iter(0..count)
        .map(|i| async move {
            orders::create_order(
                &env.app,
                config,
                "bench-desk",
                &OrderInput {
                    client_id: clients[i % clients.len()].to_string(),
                    exchange: "Kraken".into(),
                    asset: "ETH".into(),
                    amount: "1000000000000000".into(),
                    execute_at: None,
                    network: None,
                },
                "bench",
                None,
            )
            .await
            .expect("order created")
            .id
        })
        .buffer_unordered(16)
        .collect()
        .await
}
