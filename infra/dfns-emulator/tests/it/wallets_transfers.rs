//! Wallets, the ledger and transfers as a platform sees them (docs/dfns.md §3, §8.5).

use crate::common;

use crate::common::{Client, Harness, RECIPIENT};
use dfns_emulator::{Lifecycle, Options};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ETH: u128 = 1_000_000_000_000_000_000;

#[tokio::test]
async fn wallet_create_get_list_tag_untag() {
    let h = Harness::start().await;
    let wallet = h
        .create_wallet(json!({
            "network": "EthereumSepolia",
            "name": "client 42",
            "externalId": "client-42:EthereumSepolia",
            "tags": ["client:42", "tier:gold"],
        }))
        .await;
    let id = wallet["id"].as_str().unwrap();
    assert!(id.starts_with("wa-"));
    let address = wallet["address"].as_str().unwrap();
    assert!(address.starts_with("0x") && address.len() == 42);
    assert_eq!(address, address.to_ascii_lowercase());
    assert_eq!(wallet["signingKey"]["curve"], "secp256k1");
    assert_eq!(wallet["status"], "Active");
    assert_eq!(wallet["custodial"], true);
    assert_eq!(wallet["externalId"], "client-42:EthereumSepolia");
    assert_eq!(wallet["tags"], json!(["client:42", "tier:gold"]));

    // The address is keccak-256 of the key's public point.
    use k256::elliptic_curve::sec1::ToEncodedPoint;
    let public = hex::decode(wallet["signingKey"]["publicKey"].as_str().unwrap()).unwrap();
    let point = k256::PublicKey::from_sec1_bytes(&public)
        .unwrap()
        .to_encoded_point(false);
    use sha3::Digest;
    let hash = sha3::Keccak256::digest(&point.as_bytes()[1..]);
    assert_eq!(address, format!("0x{}", hex::encode(&hash[12..])));

    let tags_path = format!("/wallets/{id}/tags");
    let added =
        h.sa.signed(
            Method::PUT,
            &tags_path,
            &json!({ "tags": ["vip", "client:42"] }),
        )
        .await
        .ok();
    assert_eq!(added, json!({}));
    // The service account holds no Wallets:Tags:Delete (docs/dfns.md §9): an untag could take
    // the wallet out of tag-filtered policies. 403, naming the operation; the admin may.
    let refused =
        h.sa.signed(
            Method::DELETE,
            &tags_path,
            &json!({ "tags": ["tier:gold"] }),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.error_message().contains("(Wallets:Tags:Delete)"),
        "{}",
        refused.error_message()
    );
    let admin = Client::new(&h.base(), &h.emulator.bootstrap().admin);
    let removed = admin
        .signed(
            Method::DELETE,
            &tags_path,
            &json!({ "tags": ["tier:gold"] }),
        )
        .await
        .ok();
    assert_eq!(removed, json!({}));
    let fetched = h.sa.get(&format!("/wallets/{id}")).await.ok();
    assert_eq!(fetched["tags"], json!(["client:42", "vip"]));

    let missing = h.sa.get("/wallets/wa-00000-00000-0000000000000000").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["error"]["status"], 404);

    let bad =
        h.sa.signed(Method::POST, "/wallets", &json!({ "network": "Narnia" }))
            .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn wallet_list_paginates_newest_first() {
    let h = Harness::start().await;
    let mut created = Vec::new();
    for i in 0..5 {
        let w = h
            .create_wallet(json!({ "network": "EthereumSepolia", "name": format!("w{i}") }))
            .await;
        created.push(w["id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut path = "/wallets?limit=2".to_owned();
    loop {
        let page = h.sa.get(&path).await.ok();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|w| w["id"].as_str().unwrap().to_owned()));
        match page["nextPageToken"].as_str() {
            Some(token) => path = format!("/wallets?limit=2&paginationToken={token}"),
            None => break,
        }
    }
    created.reverse();
    assert_eq!(seen, created);
}

#[tokio::test]
async fn deposit_shows_in_balance_assets_and_history() {
    let h = Harness::start().await;
    let wallet = h
        .create_wallet(json!({ "network": "EthereumSepolia" }))
        .await;
    let id = wallet["id"].as_str().unwrap();
    h.control(Method::PUT, "/prices", json!({ "prices": { "ETH": "3000.00", "0xA0b86991c6218b36c1d19d4a2e9eb0ce3606eb48": "1.00" } })).await;
    h.deposit(id, &(2 * ETH).to_string()).await;
    h.control(
        Method::POST,
        "/deposits",
        json!({ "walletId": id, "kind": "Erc20", "contract": "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48",
                "amount": "5000000", "symbol": "USDC", "decimals": 6, "from": RECIPIENT }),
    )
    .await;

    let assets =
        h.sa.get(&format!("/wallets/{id}/assets?netWorth=true"))
            .await
            .ok();
    assert_eq!(assets["walletId"], id);
    let native = &assets["assets"][0];
    assert_eq!(native["kind"], "Native");
    assert_eq!(native["symbol"], "ETH");
    assert_eq!(native["decimals"], 18);
    assert_eq!(native["balance"], (2 * ETH).to_string());
    assert_eq!(native["quotes"]["USD"], 3000.0);
    let usdc = &assets["assets"][1];
    assert_eq!(usdc["kind"], "Erc20");
    assert_eq!(
        usdc["contract"],
        "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
    );
    assert_eq!(usdc["balance"], "5000000");
    assert_eq!(usdc["decimals"], 6);
    assert_eq!(usdc["quotes"]["USD"], 1.0);
    assert_eq!(assets["netWorth"]["USD"], 6005.0);

    let history = h.sa.get(&format!("/wallets/{id}/history")).await.ok();
    let items = history["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["kind"], "Erc20Transfer", "newest first");
    assert_eq!(items[0]["from"], RECIPIENT);
    assert_eq!(items[1]["kind"], "NativeTransfer");
    assert_eq!(items[1]["direction"], "In");
    assert_eq!(items[1]["value"], (2 * ETH).to_string());
    assert_eq!(items[1]["to"], wallet["address"]);
    assert!(items[1]["txHash"].as_str().unwrap().starts_with("0x"));
    let only_native =
        h.sa.get(&format!(
            "/wallets/{id}/history?kind=NativeTransfer&limit=1"
        ))
        .await
        .ok();
    assert_eq!(only_native["items"].as_array().unwrap().len(), 1);
    assert!(only_native.get("nextPageToken").is_none());
}

async fn transfer(h: &Harness, wallet_id: &str, body: Value) -> common::Response {
    h.sa.signed(
        Method::POST,
        &format!("/wallets/{wallet_id}/transfers"),
        &body,
    )
    .await
}

#[tokio::test]
async fn transfer_confirms_with_tx_hash_and_fee_and_debits_the_wallet() {
    let h = Harness::start().await;
    let wallet = h
        .create_wallet(json!({ "network": "EthereumSepolia" }))
        .await;
    let id = wallet["id"].as_str().unwrap();
    h.deposit(id, &ETH.to_string()).await;

    let created = transfer(
        &h,
        id,
        json!({ "kind": "Native", "to": RECIPIENT, "amount": "1000", "externalId": "order-1" }),
    )
    .await
    .ok();
    assert!(created["id"].as_str().unwrap().starts_with("xfr-"));
    assert_eq!(created["status"], "Pending");
    assert_eq!(created["requester"]["userId"], h.sa.identity.user_id);
    assert_eq!(created["requestBody"]["amount"], "1000");
    assert_eq!(created["externalId"], "order-1");

    let done = h
        .wait_for_status(id, created["id"].as_str().unwrap(), "Confirmed")
        .await;
    let fee: u128 = done["fee"].as_str().unwrap().parse().unwrap();
    assert!(fee > 0);
    assert!(done["txHash"].as_str().unwrap().starts_with("0x"));
    assert!(done["dateBroadcasted"].is_string() && done["dateConfirmed"].is_string());

    let assets = h.sa.get(&format!("/wallets/{id}/assets")).await.ok();
    assert_eq!(
        assets["assets"][0]["balance"],
        (ETH - 1000 - fee).to_string()
    );
    let history =
        h.sa.get(&format!("/wallets/{id}/history?direction=Out"))
            .await
            .ok();
    assert_eq!(history["items"][0]["txHash"], done["txHash"]);
    assert_eq!(history["items"][0]["to"], RECIPIENT);

    let list = h.sa.get(&format!("/wallets/{id}/transfers")).await.ok();
    assert_eq!(list["walletId"], id);
    assert_eq!(list["items"][0]["id"], done["id"]);
}

#[tokio::test]
async fn transfer_without_funds_fails() {
    let h = Harness::start().await;
    let wallet = h
        .create_wallet(json!({ "network": "EthereumSepolia" }))
        .await;
    let id = wallet["id"].as_str().unwrap();
    h.deposit(id, "1000").await; // covers the amount but not the fee
    let created = transfer(
        &h,
        id,
        json!({ "kind": "Native", "to": RECIPIENT, "amount": "1000" }),
    )
    .await
    .ok();
    let failed = h
        .wait_for_status(id, created["id"].as_str().unwrap(), "Failed")
        .await;
    assert!(failed["reason"].as_str().unwrap().contains("Insufficient"));
    let assets = h.sa.get(&format!("/wallets/{id}/assets")).await.ok();
    assert_eq!(
        assets["assets"][0]["balance"], "1000",
        "a failed transfer moves nothing"
    );
}

#[tokio::test]
async fn external_id_is_idempotent_and_conflicts_on_a_different_body() {
    let h = Harness::start().await;
    let wallet = h
        .create_wallet(json!({ "network": "EthereumSepolia" }))
        .await;
    let id = wallet["id"].as_str().unwrap();
    h.deposit(id, &ETH.to_string()).await;
    let body =
        json!({ "kind": "Native", "to": RECIPIENT, "amount": "1000", "externalId": "order-7" });
    let first = transfer(&h, id, body.clone()).await.ok();
    let second = transfer(&h, id, body).await.ok();
    assert_eq!(first["id"], second["id"]);

    let different = transfer(
        &h,
        id,
        json!({ "kind": "Native", "to": RECIPIENT, "amount": "2000", "externalId": "order-7" }),
    )
    .await;
    assert_eq!(different.status, StatusCode::CONFLICT);
    let error = different.json();
    assert_eq!(error["error"]["details"]["duplicate"]["id"], first["id"]);
    assert_eq!(
        error["error"]["details"]["duplicate"]["externalId"],
        "order-7"
    );

    let stats = h.control(Method::GET, "/stats", json!({})).await;
    assert_eq!(stats["transfers"], 1);

    // Still the same transfer after it reached a terminal state.
    h.wait_for_status(id, first["id"].as_str().unwrap(), "Confirmed")
        .await;
    let again = transfer(
        &h,
        id,
        json!({ "kind": "Native", "to": RECIPIENT, "amount": "1000", "externalId": "order-7" }),
    )
    .await
    .ok();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["status"], "Confirmed");
}

#[tokio::test]
async fn manual_lifecycle_steps_one_status_at_a_time_and_erc20_moves_tokens() {
    let h = Harness::with(Options {
        transfer_lifecycle: Lifecycle::Manual,
        ..Options::default()
    })
    .await;
    let sender = h
        .create_wallet(json!({ "network": "EthereumSepolia" }))
        .await;
    let receiver = h
        .create_wallet(json!({ "network": "EthereumSepolia" }))
        .await;
    let (sid, rid) = (
        sender["id"].as_str().unwrap(),
        receiver["id"].as_str().unwrap(),
    );
    let usdc = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";
    h.deposit(sid, &ETH.to_string()).await;
    h.control(Method::POST, "/deposits", json!({ "walletId": sid, "kind": "Erc20", "contract": usdc, "amount": "700", "decimals": 6 })).await;

    let created = transfer(
        &h,
        sid,
        json!({ "kind": "Erc20", "contract": usdc, "to": receiver["address"], "amount": "300" }),
    )
    .await
    .ok();
    let tid = created["id"].as_str().unwrap();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let t = h
            .control(
                Method::POST,
                &format!("/transfers/{tid}/advance"),
                json!({}),
            )
            .await;
        statuses.push(t["status"].as_str().unwrap().to_owned());
    }
    assert_eq!(statuses, ["Executing", "Broadcasted", "Confirmed"]);
    let sender_assets = h.sa.get(&format!("/wallets/{sid}/assets")).await.ok();
    assert_eq!(sender_assets["assets"][1]["balance"], "400");
    let receiver_assets = h.sa.get(&format!("/wallets/{rid}/assets")).await.ok();
    assert_eq!(receiver_assets["assets"][1]["balance"], "300");
    let incoming = h.sa.get(&format!("/wallets/{rid}/history")).await.ok();
    assert_eq!(incoming["items"][0]["direction"], "In");
    assert_eq!(incoming["items"][0]["kind"], "Erc20Transfer");

    let bad = transfer(
        &h,
        sid,
        json!({ "kind": "Native", "to": "0x1234", "amount": "1" }),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad = transfer(
        &h,
        sid,
        json!({ "kind": "Native", "to": RECIPIENT, "amount": "1.5" }),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_failure_can_be_injected_into_a_transfer_in_flight() {
    let h = Harness::with(Options {
        transfer_lifecycle: Lifecycle::Manual,
        ..Options::default()
    })
    .await;
    let wallet = h
        .create_wallet(json!({ "network": "EthereumSepolia" }))
        .await;
    let id = wallet["id"].as_str().unwrap();
    h.deposit(id, &ETH.to_string()).await;
    let created = transfer(
        &h,
        id,
        json!({ "kind": "Native", "to": RECIPIENT, "amount": "10" }),
    )
    .await
    .ok();
    let tid = created["id"].as_str().unwrap();
    h.control(
        Method::POST,
        &format!("/transfers/{tid}/advance"),
        json!({}),
    )
    .await;
    let failed = h
        .control(
            Method::POST,
            &format!("/transfers/{tid}/fail"),
            json!({ "reason": "nonce too low" }),
        )
        .await;
    assert_eq!(failed["status"], "Failed");
    assert_eq!(failed["reason"], "nonce too low");
    // Terminal: no further step, and the balance is untouched.
    let step = h
        .control
        .post(format!("{}/emulator/transfers/{tid}/advance", h.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(step.status(), StatusCode::CONFLICT);
    let assets = h.sa.get(&format!("/wallets/{id}/assets")).await.ok();
    assert_eq!(assets["assets"][0]["balance"], ETH.to_string());
}
