//! What the order-execution benches share: placing due orders for the desk.

use domain::{ClientId, OrderId};
use futures::StreamExt;
use platform::testing::TestEnv;
use platform::trading::TradingConfig;
use platform::trading::orders::{self, OrderInput};

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
