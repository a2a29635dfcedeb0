//! SPL tokens on Solana (issue 15): deposits by mint, balances with their decimals and USD quote,
//! `Spl` / `Spl2022` transfers with their fee in SOL (and the rent of a recipient's new token
//! account), `SplTransfer` history entries and webhooks, and policy evaluation of them.

use crate::common::Harness;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Circle's devnet USDC mint.
const MINT: &str = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU";
/// A Solana address nobody in the emulator holds.
const RECIPIENT: &str = "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T";
const OTHER_RECIPIENT: &str = "DyL6vKGESBAYLAKJ1VvwnroYGBp67H7nwfidALbAf6wJ";
const ONE_SOL: u128 = 1_000_000_000;
const SIGNATURE_FEE: u128 = 5_000;
const TOKEN_ACCOUNT_RENT: u128 = 2_039_280;

async fn transfer(h: &Harness, wallet: &str, body: Value) -> crate::common::Response {
    h.sa.signed(Method::POST, &format!("/wallets/{wallet}/transfers"), &body)
        .await
}

/// A raw control call (the harness' own asserts success).
async fn control_status(h: &Harness, path: &str, body: Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/emulator{path}", h.base()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A SolanaDevnet wallet with 1 SOL and 10 USDC (6 decimals) of [`MINT`] under `program`.
async fn funded_wallet(h: &Harness, program: &str) -> (String, String) {
    let wallet = h.create_wallet(json!({ "network": "SolanaDevnet" })).await;
    let id = wallet["id"].as_str().unwrap().to_owned();
    h.deposit(&id, &ONE_SOL.to_string()).await;
    let event = h
        .control(
            Method::POST,
            "/deposits",
            json!({ "walletId": id, "kind": program, "mint": MINT, "amount": "10000000",
                    "symbol": "USDC", "decimals": 6 }),
        )
        .await;
    assert_eq!(event["kind"], format!("{program}Transfer"), "{event}");
    assert_eq!(event["mint"], MINT);
    assert_eq!(event["value"], "10000000");
    assert_eq!(event["metadata"]["asset"]["decimals"], 6);
    (id, wallet["address"].as_str().unwrap().to_owned())
}

fn asset_of<'a>(assets: &'a Value, kind: &str) -> &'a Value {
    assets["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} asset: {assets}"))
}

#[tokio::test]
async fn spl_deposit_balance_transfer_fee_and_history() {
    let h = Harness::start().await;
    // Priced by its symbol (no price for the mint itself).
    h.control(
        Method::PUT,
        "/prices",
        json!({ "prices": { "SOL": "150.00", "USDC": "1.00" } }),
    )
    .await;
    let (id, address) = funded_wallet(&h, "Spl").await;
    let webhook =
        h.sa.signed(
            Method::POST,
            "/webhooks",
            &json!({ "url": "http://127.0.0.1:9/hook", "events": ["*"] }),
        )
        .await
        .ok();

    let assets = h.sa.get(&format!("/wallets/{id}/assets")).await.ok();
    let usdc = asset_of(&assets, "Spl");
    assert_eq!(usdc["mint"], MINT, "{assets}");
    assert_eq!(usdc["symbol"], "USDC");
    assert_eq!(usdc["decimals"], 6);
    assert_eq!(usdc["balance"], "10000000");
    assert_eq!(usdc["quotes"]["USD"], 1.0);
    assert!(usdc.get("contract").is_none());

    // 2.5 USDC to a recipient without a token account: the sender pays its rent.
    let created = transfer(
        &h,
        &id,
        json!({ "kind": "Spl", "to": RECIPIENT, "mint": MINT, "amount": "2500000",
                "createDestinationAccount": true, "externalId": "spl-1" }),
    )
    .await
    .ok();
    assert_eq!(created["requestBody"]["mint"], MINT);
    assert_eq!(created["metadata"]["asset"]["symbol"], "USDC");
    assert_eq!(created["metadata"]["asset"]["quotes"]["USD"], 1.0);
    let done = h
        .wait_for_status(&id, created["id"].as_str().unwrap(), "Confirmed")
        .await;
    assert_eq!(
        done["fee"],
        (SIGNATURE_FEE + TOKEN_ACCOUNT_RENT).to_string(),
        "{done}"
    );
    // Now it has one: the next transfer pays the signature only, with or without the flag.
    let again = transfer(
        &h,
        &id,
        json!({ "kind": "Spl", "to": RECIPIENT, "mint": MINT, "amount": "500000" }),
    )
    .await
    .ok();
    let again = h
        .wait_for_status(&id, again["id"].as_str().unwrap(), "Confirmed")
        .await;
    assert_eq!(again["fee"], SIGNATURE_FEE.to_string());

    let assets = h.sa.get(&format!("/wallets/{id}/assets")).await.ok();
    assert_eq!(asset_of(&assets, "Spl")["balance"], "7000000");
    assert_eq!(
        asset_of(&assets, "Native")["balance"],
        (ONE_SOL - 2 * SIGNATURE_FEE - TOKEN_ACCOUNT_RENT).to_string(),
        "fees in SOL from the native balance"
    );

    let history = h.sa.get(&format!("/wallets/{id}/history")).await.ok();
    let items = history["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "two deposits, two transfers: {history}");
    let out = &items[1];
    assert_eq!(out["kind"], "SplTransfer");
    assert_eq!(out["direction"], "Out");
    assert_eq!(out["mint"], MINT);
    assert_eq!(out["from"], address.as_str());
    assert_eq!(out["to"], RECIPIENT);
    assert_eq!(out["value"], "2500000");
    assert_eq!(out["txHash"], done["txHash"]);
    assert_eq!(out["metadata"]["asset"]["decimals"], 6);
    assert_eq!(out["metadata"]["fee"]["symbol"], "SOL");
    let filtered =
        h.sa.get(&format!(
            "/wallets/{id}/history?kind=SplTransfer&direction=In"
        ))
        .await
        .ok();
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1);

    // The same webhooks as the other kinds.
    let webhook_id = webhook["id"].as_str().unwrap();
    let events =
        h.sa.get(&format!(
            "/webhooks/{webhook_id}/events?kind=wallet.blockchainevent.detected"
        ))
        .await
        .ok();
    let detected = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["data"]["blockchainEvent"])
        .find(|e| e["txHash"] == done["txHash"])
        .unwrap_or_else(|| panic!("no history webhook for the transfer: {events}"));
    assert_eq!(detected["kind"], "SplTransfer");
    assert_eq!(detected["mint"], MINT);
    let confirmed =
        h.sa.get(&format!(
            "/webhooks/{webhook_id}/events?kind=wallet.transfer.confirmed"
        ))
        .await
        .ok();
    assert_eq!(
        confirmed["items"].as_array().unwrap().len(),
        2,
        "{confirmed}"
    );
}

#[tokio::test]
async fn a_token2022_transfer_to_an_emulated_wallet_arrives_there() {
    let h = Harness::start().await;
    let (id, _) = funded_wallet(&h, "Spl2022").await;
    let receiver = h.create_wallet(json!({ "network": "SolanaDevnet" })).await;
    let receiver_id = receiver["id"].as_str().unwrap();
    let created = transfer(
        &h,
        &id,
        json!({ "kind": "Spl2022", "to": receiver["address"], "mint": MINT, "amount": "1000000",
                "createDestinationAccount": true }),
    )
    .await
    .ok();
    h.wait_for_status(&id, created["id"].as_str().unwrap(), "Confirmed")
        .await;
    let assets =
        h.sa.get(&format!("/wallets/{receiver_id}/assets"))
            .await
            .ok();
    let token = asset_of(&assets, "Spl2022");
    assert_eq!(
        (token["mint"].as_str(), token["balance"].as_str()),
        (Some(MINT), Some("1000000"))
    );
    let history =
        h.sa.get(&format!("/wallets/{receiver_id}/history"))
            .await
            .ok();
    assert_eq!(history["items"][0]["kind"], "Spl2022Transfer");
    assert_eq!(history["items"][0]["direction"], "In");

    // The mint is a Token-2022 one: sending it as `Spl` cannot be built.
    let wrong = transfer(
        &h,
        &id,
        json!({ "kind": "Spl", "to": RECIPIENT, "mint": MINT, "amount": "1" }),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.text);
    assert!(wrong.error_message().contains("Spl2022"), "{}", wrong.text);
}

#[tokio::test]
async fn spl_transfers_fail_without_a_token_account_or_enough_sol() {
    let h = Harness::start().await;
    let (id, _) = funded_wallet(&h, "Spl").await;
    // No account at the recipient and none asked for: fails as the chain would.
    let created = transfer(
        &h,
        &id,
        json!({ "kind": "Spl", "to": OTHER_RECIPIENT, "mint": MINT, "amount": "1" }),
    )
    .await
    .ok();
    let failed = h
        .wait_for_status(&id, created["id"].as_str().unwrap(), "Failed")
        .await;
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("no token account"),
        "{failed}"
    );
    // More tokens than held.
    let created = transfer(
        &h,
        &id,
        json!({ "kind": "Spl", "to": OTHER_RECIPIENT, "mint": MINT, "amount": "10000001",
                "createDestinationAccount": true }),
    )
    .await
    .ok();
    let failed = h
        .wait_for_status(&id, created["id"].as_str().unwrap(), "Failed")
        .await;
    assert!(
        failed["reason"].as_str().unwrap().contains("token balance"),
        "{failed}"
    );
    // Tokens but no SOL for the fee.
    let poor = h.create_wallet(json!({ "network": "SolanaDevnet" })).await;
    let poor_id = poor["id"].as_str().unwrap();
    h.control(
        Method::POST,
        "/deposits",
        json!({ "walletId": poor_id, "kind": "Spl", "mint": MINT, "amount": "5" }),
    )
    .await;
    let created = transfer(
        &h,
        poor_id,
        json!({ "kind": "Spl", "to": OTHER_RECIPIENT, "mint": MINT, "amount": "5",
                "createDestinationAccount": true }),
    )
    .await
    .ok();
    let failed = h
        .wait_for_status(poor_id, created["id"].as_str().unwrap(), "Failed")
        .await;
    assert!(
        failed["reason"].as_str().unwrap().contains("network fee"),
        "{failed}"
    );
}

#[tokio::test]
async fn spl_requests_are_checked_for_network_mint_and_fields() {
    let h = Harness::start().await;
    let (id, _) = funded_wallet(&h, "Spl").await;
    let evm = h
        .create_wallet(json!({ "network": "EthereumSepolia" }))
        .await;
    let evm_id = evm["id"].as_str().unwrap();
    let base = json!({ "kind": "Spl", "to": RECIPIENT, "mint": MINT, "amount": "1" });
    let with = |field: &str, value: Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    for (wallet, body) in [
        (
            evm_id,
            with("to", json!("0xb282dc7cde21717f18337a596e91ded00b79b25f")),
        ),
        (id.as_str(), with("mint", json!(&MINT[..40]))),
        (
            id.as_str(),
            with("mint", json!("0x1c7d4b196cb0c7b01d743fbc6116a902379c7238")),
        ),
        (id.as_str(), with("priority", json!("Fast"))),
        (id.as_str(), with("contract", json!(MINT))),
        (id.as_str(), with("createDestinationAccount", json!("yes"))),
        (
            id.as_str(),
            json!({ "kind": "Spl", "to": RECIPIENT, "amount": "1" }),
        ),
    ] {
        let refused = transfer(&h, wallet, body.clone()).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            refused.text
        );
    }
    // Deposits: a mint on an EVM wallet, a bad mint, the other program for a known mint.
    for body in [
        json!({ "walletId": evm_id, "kind": "Spl", "mint": MINT, "amount": "1" }),
        json!({ "walletId": id, "kind": "Spl", "mint": "not-base58-0OIl", "amount": "1" }),
        json!({ "walletId": id, "kind": "Spl2022", "mint": MINT, "amount": "1" }),
    ] {
        let (status, answer) = control_status(&h, "/deposits", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
    }
}

#[tokio::test]
async fn policies_value_spl_transfers_by_the_mints_price_and_match_recipients_exactly() {
    let h = Harness::start().await;
    // The mint's own price wins over its symbol's.
    h.control(
        Method::PUT,
        "/prices",
        json!({ "prices": { "USDC": "100.00", MINT: "1.00" } }),
    )
    .await;
    let (id, _) = funded_wallet(&h, "Spl").await;
    for policy in [
        json!({
            "name": "limit", "activityKind": "Wallets:Sign",
            "rule": { "kind": "TransactionAmountLimit", "configuration": { "limit": 5, "currency": "USD" } },
            "action": { "kind": "Block" }, "filters": { "walletId": { "in": [id] } },
        }),
        json!({
            "name": "whitelist", "activityKind": "Wallets:Sign",
            "rule": { "kind": "TransactionRecipientWhitelist", "configuration": { "addresses": [RECIPIENT] } },
            "action": { "kind": "Block" }, "filters": { "walletId": { "in": [id] } },
        }),
    ] {
        h.sa.signed(Method::POST, "/v2/policies", &policy)
            .await
            .ok();
    }
    let send = |to: &str, amount: &str| json!({ "kind": "Spl", "to": to, "mint": MINT, "amount": amount, "createDestinationAccount": true });
    // 5 USDC at 1.00 = USD 5: not above the limit.
    let allowed = transfer(&h, &id, send(RECIPIENT, "5000000")).await.ok();
    assert_eq!(allowed["status"], "Pending", "{allowed}");
    // 6 USDC: above.
    let over = transfer(&h, &id, send(RECIPIENT, "6000000")).await.ok();
    assert_eq!(over["status"], "Rejected");
    assert_eq!(
        over["reason"],
        "Transfer amount (USD 6) is above limit (USD 5)."
    );
    // The recipient with one letter's case changed is another address.
    let flipped = RECIPIENT.replacen('d', "D", 1);
    assert_ne!(flipped, RECIPIENT);
    let blocked = transfer(&h, &id, send(&flipped, "1")).await.ok();
    assert_eq!(blocked["status"], "Rejected");
    assert!(
        blocked["reason"]
            .as_str()
            .unwrap()
            .contains("not in the whitelist"),
        "{blocked}"
    );
}
