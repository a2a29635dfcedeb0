//! Bitcoin and Solana beside EVM (issue 15): native deposits, balances with USD quotes,
//! transfers and history on their test networks; whitelist matching is an exact, case-sensitive
//! string match, which matters for base58 (a Solana address with one letter's case changed is
//! another address).

use crate::common::Harness;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A Solana address (base58 of 32 bytes) nobody in the emulator holds.
const SOL_RECIPIENT: &str = "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T";
/// A testnet segwit v0 address (BIP-173's P2WSH vector on `tb`).
const TB_RECIPIENT: &str = "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7";
const LAMPORTS_PER_SOL: u128 = 1_000_000_000;
const SATS_PER_BTC: u128 = 100_000_000;

/// `address` with its first lower-case letter in upper case (still base58: `l` is not, so skipped).
fn case_flipped(address: &str) -> String {
    let i = address
        .find(|c: char| c.is_ascii_lowercase() && c != 'l')
        .unwrap();
    let mut flipped = address.to_owned();
    flipped.replace_range(i..=i, &address[i..=i].to_ascii_uppercase());
    flipped
}

async fn transfer(h: &Harness, wallet: &str, body: Value) -> crate::common::Response {
    h.sa.signed(Method::POST, &format!("/wallets/{wallet}/transfers"), &body)
        .await
}

/// Deposit, balance with its USD quote, a native transfer out, history and the transfer list,
/// on one network.
async fn native_round_trip(
    h: &Harness,
    network: &str,
    symbol: &str,
    decimals: u32,
    unit: u128,
    to: &str,
) {
    let wallet = h.create_wallet(json!({ "network": network })).await;
    let id = wallet["id"].as_str().unwrap();
    let address = wallet["address"].as_str().unwrap();
    h.deposit(id, &(2 * unit).to_string()).await;

    let assets =
        h.sa.get(&format!("/wallets/{id}/assets?netWorth=true"))
            .await
            .ok();
    let native = &assets["assets"][0];
    assert_eq!(native["kind"], "Native", "{network}: {assets}");
    assert_eq!(native["symbol"], symbol, "{network}");
    assert_eq!(native["decimals"], decimals, "{network}");
    assert_eq!(native["balance"], (2 * unit).to_string(), "{network}");
    assert!(
        native["quotes"]["USD"].as_f64().unwrap() > 0.0,
        "{network}: {assets}"
    );
    assert!(
        assets["netWorth"]["USD"].as_f64().unwrap() > 0.0,
        "{network}: {assets}"
    );

    let created = transfer(
        h,
        id,
        json!({ "kind": "Native", "to": to, "amount": unit.to_string(), "externalId": format!("out-{network}") }),
    )
    .await
    .ok();
    let transfer_id = created["id"].as_str().unwrap();
    let done = h.wait_for_status(id, transfer_id, "Confirmed").await;
    let fee: u128 = done["fee"].as_str().unwrap().parse().unwrap();
    assert!(done["txHash"].is_string(), "{network}: {done}");

    let assets = h.sa.get(&format!("/wallets/{id}/assets")).await.ok();
    assert_eq!(
        assets["assets"][0]["balance"],
        (unit - fee).to_string(),
        "{network}: two in, one out and the fee"
    );
    let history = h.sa.get(&format!("/wallets/{id}/history")).await.ok();
    let items = history["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{network}: {history}");
    assert_eq!(items[0]["direction"], "Out", "{network}: newest first");
    assert_eq!(items[0]["to"], to);
    assert_eq!(items[0]["txHash"], done["txHash"]);
    assert_eq!(items[1]["direction"], "In");
    assert_eq!(items[1]["to"], address);
    assert_eq!(items[1]["value"], (2 * unit).to_string());
    let list = h.sa.get(&format!("/wallets/{id}/transfers")).await.ok();
    assert_eq!(list["items"][0]["id"], done["id"], "{network}");
}

#[tokio::test]
async fn native_deposits_transfers_and_history_on_bitcoin_and_solana_test_networks() {
    let h = Harness::start().await;
    h.control(
        Method::PUT,
        "/prices",
        json!({ "prices": { "BTC": "90000.00", "SOL": "150.00" } }),
    )
    .await;
    native_round_trip(
        &h,
        "SolanaDevnet",
        "SOL",
        9,
        LAMPORTS_PER_SOL,
        SOL_RECIPIENT,
    )
    .await;
    native_round_trip(&h, "BitcoinTestnet4", "BTC", 8, SATS_PER_BTC, TB_RECIPIENT).await;
    native_round_trip(&h, "BitcoinSignet", "BTC", 8, SATS_PER_BTC, TB_RECIPIENT).await;
}

#[tokio::test]
async fn a_transfer_to_an_address_of_another_family_is_refused() {
    let h = Harness::start().await;
    for (network, wrong) in [
        ("SolanaDevnet", "0xb282dc7cde21717f18337a596e91ded00b79b25f"),
        ("SolanaDevnet", TB_RECIPIENT),
        ("BitcoinTestnet4", SOL_RECIPIENT),
        (
            "BitcoinTestnet4",
            "0xb282dc7cde21717f18337a596e91ded00b79b25f",
        ),
    ] {
        let wallet = h.create_wallet(json!({ "network": network })).await;
        let id = wallet["id"].as_str().unwrap();
        h.deposit(id, "1000").await;
        let refused = transfer(
            &h,
            id,
            json!({ "kind": "Native", "to": wrong, "amount": "1" }),
        )
        .await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{network} to {wrong}"
        );
    }
}

#[tokio::test]
async fn a_solana_whitelist_is_an_exact_case_sensitive_match() {
    let h = Harness::start().await;
    h.control(
        Method::PUT,
        "/prices",
        json!({ "prices": { "SOL": "150.00" } }),
    )
    .await;
    let wallet = h.create_wallet(json!({ "network": "SolanaDevnet" })).await;
    let id = wallet["id"].as_str().unwrap();
    h.deposit(id, &(10 * LAMPORTS_PER_SOL).to_string()).await;
    h.sa.signed(
        Method::POST,
        "/v2/policies",
        &json!({
            "name": "solana whitelist", "activityKind": "Wallets:Sign",
            "rule": { "kind": "TransactionRecipientWhitelist", "configuration": { "addresses": [SOL_RECIPIENT] } },
            "action": { "kind": "Block" },
            "filters": { "walletId": { "in": [id] } },
        }),
    )
    .await
    .ok();

    let flipped = case_flipped(SOL_RECIPIENT);
    assert_ne!(flipped, SOL_RECIPIENT);
    assert_eq!(
        flipped.to_ascii_lowercase(),
        SOL_RECIPIENT.to_ascii_lowercase()
    );
    let blocked = transfer(
        &h,
        id,
        json!({ "kind": "Native", "to": flipped, "amount": "1000" }),
    )
    .await
    .ok();
    assert_eq!(blocked["status"], "Rejected", "{blocked}");
    assert!(
        blocked["reason"]
            .as_str()
            .unwrap()
            .contains("not in the whitelist"),
        "{blocked}"
    );

    let allowed = transfer(
        &h,
        id,
        json!({ "kind": "Native", "to": SOL_RECIPIENT, "amount": "1000" }),
    )
    .await
    .ok();
    h.wait_for_status(id, allowed["id"].as_str().unwrap(), "Confirmed")
        .await;
}
