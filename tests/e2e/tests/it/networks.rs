//! Issue 15's acceptance (Bitcoin and Solana beside EVM), end to end through HTTP against the
//! local stack, the Dfns emulator and the AWS stand-ins, with
//! `PLATFORM_NETWORKS=EthereumSepolia,BitcoinTestnet4,SolanaDevnet`. Run with
//! `cargo xtask exec -- cargo test -p e2e --test it networks::`.

use dfns_client::transfers::{TransferAsset, TransfersQuery};
use dfns_client::{DecisionValue, PolicyId, WalletId};
use e2e::{Env, EnvOptions};
use futures::TryStreamExt;
use platform::settings::Tier;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::withdrawals::{wait_for_withdrawal, withdraw};
use e2e::{client_id, random_address};

const ONE_SOL: &str = "1000000000";

/// A Solana address nobody holds: base58 of 32 random bytes.
fn random_solana_address() -> String {
    let bytes: [u8; 32] = std::array::from_fn(|_| (ulid::Ulid::new().random() & 0xff) as u8);
    domain::SolanaAddress::from_bytes(bytes).as_str().to_owned()
}

/// `address` with one letter's case changed, still a Solana address (32 bytes: another key).
fn case_changed(address: &str) -> String {
    (0..address.len())
        .filter(|&i| address.as_bytes()[i].is_ascii_alphabetic())
        .map(|i| {
            let c = address.as_bytes()[i] as char;
            let other = if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            let mut changed = address.to_owned();
            changed.replace_range(i..=i, &other.to_string());
            changed
        })
        .find(|changed| domain::SolanaAddress::parse(changed).is_ok())
        .expect("some letter's other case is base58 of 32 bytes")
}

/// Adds `address` on `network` for `subject` and has an officer approve it.
async fn approved_on(env: &Env, subject: &str, network: &str, address: &str) {
    let (status, created) = env
        .post(
            "/v1/destination-requests",
            subject,
            &json!({"network": network, "address": address, "label": "cold", "action": "add"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let pending = env
        .wait_for_state(subject, &id, &["PendingApproval", "Approved"])
        .await;
    if pending["state"] == "PendingApproval" {
        env.decide(&pending, DecisionValue::Approved).await;
    }
    env.wait_for_state(subject, &id, &["Approved"]).await;
}

fn wallet_on<'a>(account: &'a Value, network: &str) -> &'a Value {
    account["wallets"]
        .as_array()
        .expect("wallets")
        .iter()
        .find(|w| w["network"] == network)
        .unwrap_or_else(|| panic!("no {network} wallet: {account:#}"))
}

/// A native transfer straight at Dfns with the platform's service account: is it blocked?
async fn blocked_at_dfns(env: &Env, wallet: &str, to: &str, amount: u128) -> bool {
    env.service()
        .transfer_without_external_id(
            &WalletId::new(wallet),
            TransferAsset::Native {
                to: to.to_owned(),
                amount: dfns_client::Amount::from(amount),
                memo: None,
                priority: None,
            },
        )
        .await
        .expect("Dfns answers the transfer")
        .is_rejected()
}

/// Three wallets, each bound to its own policies; a Solana destination approved and a withdrawal
/// to it confirmed; the same address with one letter's case changed refused by the platform and
/// blocked by Dfns.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_families_each_wallet_with_its_own_policies_and_a_solana_withdrawal() {
    let env = Env::start(EnvOptions {
        networks: Some("EthereumSepolia,BitcoinTestnet4,SolanaDevnet".into()),
        tier: Tier {
            amount_limit_usd: Some(100_000),
            ..Tier::default()
        },
        ..EnvOptions::default()
    })
    .await;
    env.control(
        Method::PUT,
        "prices",
        &json!({"prices": {"ETH": "3000.00", "BTC": "90000.00", "SOL": "150.00"}}),
    )
    .await;
    let alice = client_id("alice");
    env.open_account(&alice).await;

    // Three wallets, each with an address of its network's form.
    let (_, account) = env.get("/v1/account", &alice).await;
    let wallets = account["wallets"].as_array().expect("wallets");
    assert_eq!(wallets.len(), 3, "{account:#}");
    let sepolia = wallet_on(&account, "EthereumSepolia");
    let bitcoin = wallet_on(&account, "BitcoinTestnet4");
    let solana = wallet_on(&account, "SolanaDevnet");
    assert!(sepolia["address"].as_str().unwrap().starts_with("0x"));
    assert!(bitcoin["address"].as_str().unwrap().starts_with("tb1"));
    domain::SolanaAddress::parse(solana["address"].as_str().unwrap()).expect("a Solana address");

    // Each bound to its own policies: one whitelist per wallet, named by that wallet alone at
    // Dfns, and each limit used by its own wallet only.
    let whitelists = account["whitelists"].as_array().expect("whitelists");
    assert_eq!(whitelists.len(), 3, "{account:#}");
    let mut policy_ids = Vec::new();
    for whitelist in whitelists {
        assert_eq!(whitelist["shared"], false, "{whitelist}");
        let wallet = wallet_on(&account, whitelist["network"].as_str().unwrap());
        assert_eq!(whitelist["walletId"], wallet["walletId"]);
        let id = whitelist["policyId"].as_str().unwrap();
        let policy = env
            .service()
            .get_policy(&PolicyId::new(id))
            .await
            .expect("the whitelist at Dfns");
        let bound: Vec<&str> = policy
            .filters
            .as_ref()
            .and_then(|f| f.wallet_id.as_ref())
            .map(|ids| ids.values.iter().map(|w| w.as_str()).collect())
            .unwrap_or_default();
        assert_eq!(bound, [wallet["walletId"].as_str().unwrap()], "{id}");
        policy_ids.push(id.to_owned());
    }
    policy_ids.sort();
    policy_ids.dedup();
    assert_eq!(policy_ids.len(), 3, "three distinct whitelists");
    let limits = account["limits"].as_array().expect("limits");
    assert_eq!(limits.len(), 3, "one amount limit per wallet: {account:#}");
    let mut limited: Vec<&str> = limits
        .iter()
        .map(|l| {
            let usage = l["usage"].as_array().expect("usage");
            assert_eq!(usage.len(), 1, "a limit bound to one wallet: {l}");
            usage[0]["walletId"].as_str().unwrap()
        })
        .collect();
    limited.sort_unstable();
    let mut all: Vec<&str> = wallets
        .iter()
        .map(|w| w["walletId"].as_str().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(limited, all);

    // A Solana destination, approved, then a withdrawal of 1 SOL to it.
    let solana_wallet = solana["walletId"].as_str().unwrap().to_owned();
    env.control(
        Method::POST,
        "deposits",
        &json!({"walletId": solana_wallet, "kind": "Native", "amount": "5000000000"}),
    )
    .await;
    let cold = random_solana_address();
    approved_on(&env, &alice, "SolanaDevnet", &cold).await;
    let (_, account) = env.get("/v1/account", &alice).await;
    let solana_list = account["whitelists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["network"] == "SolanaDevnet")
        .expect("the Solana whitelist");
    assert_eq!(
        solana_list["approvedDestinations"][0]["address"],
        cold.as_str()
    );
    for other in ["EthereumSepolia", "BitcoinTestnet4"] {
        let list = account["whitelists"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["network"] == other)
            .unwrap();
        assert_eq!(list["approvedDestinations"], json!([]), "{other}");
    }

    let body = |to: &str| json!({"network": "SolanaDevnet", "to": to, "asset": "native", "amount": ONE_SOL});
    let key = format!("w-{}", ulid::Ulid::new());
    let (status, created) = withdraw(&env, &alice, &key, &body(&cold)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    wait_for_withdrawal(&env, &alice, &id, "Confirmed").await;
    let sent: Vec<_> = env
        .service()
        .list_transfers(&WalletId::new(&solana_wallet), &TransfersQuery::default())
        .try_collect()
        .await
        .expect("the Solana wallet's transfers");
    let sent: Vec<_> = sent
        .into_iter()
        .filter(|t| t.external_id.as_ref().map(|e| e.as_str()) == Some(id.as_str()))
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        serde_json::to_value(&sent[0].request_body).unwrap()["to"],
        cold.as_str()
    );
    // A Solana transaction id is its first signature: base58 of 64 bytes.
    let signature = sent[0].tx_hash.clone().expect("a signature");
    assert_eq!(
        bs58::decode(&signature).into_vec().map(|b| b.len()).ok(),
        Some(64),
        "{signature}"
    );

    // The same address with one letter's case changed: another key, never approved.
    let changed = case_changed(&cold);
    assert_ne!(changed, cold);
    let key = format!("w-{}", ulid::Ulid::new());
    let (status, refused) = withdraw(&env, &alice, &key, &body(&changed)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    // Sent straight to Dfns: the whitelist's exact match blocks it; the approved one passes.
    assert!(blocked_at_dfns(&env, &solana_wallet, &changed, 1_000).await);
    assert!(!blocked_at_dfns(&env, &solana_wallet, &cold, 1_000).await);
}

/// An EVM address approved on one EVM network is not usable from the client's wallet on another:
/// the platform refuses the withdrawal (400) and Dfns blocks the transfer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_evm_address_approved_on_one_network_is_not_usable_from_another() {
    let env = Env::start(EnvOptions {
        networks: Some("EthereumSepolia,BaseSepolia".into()),
        ..EnvOptions::default()
    })
    .await;
    env.control(
        Method::PUT,
        "prices",
        &json!({"prices": {"ETH": "3000.00"}}),
    )
    .await;
    let bob = client_id("bob");
    env.open_account(&bob).await;
    let (_, account) = env.get("/v1/account", &bob).await;
    for network in ["EthereumSepolia", "BaseSepolia"] {
        let wallet = wallet_on(&account, network)["walletId"].as_str().unwrap();
        env.control(
            Method::POST,
            "deposits",
            &json!({"walletId": wallet, "kind": "Native", "amount": "2000000000000000000"}),
        )
        .await;
    }
    let cold = random_address();
    approved_on(&env, &bob, "EthereumSepolia", &cold).await;

    let body = |network: &str| json!({"network": network, "to": cold, "asset": "native", "amount": "1000"});
    let key = format!("w-{}", ulid::Ulid::new());
    let (status, refused) = withdraw(&env, &bob, &key, &body("BaseSepolia")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let key = format!("w-{}", ulid::Ulid::new());
    let (status, created) = withdraw(&env, &bob, &key, &body("EthereumSepolia")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    wait_for_withdrawal(&env, &bob, created["id"].as_str().unwrap(), "Confirmed").await;

    let base = wallet_on(&account, "BaseSepolia")["walletId"]
        .as_str()
        .unwrap();
    let sepolia = wallet_on(&account, "EthereumSepolia")["walletId"]
        .as_str()
        .unwrap();
    assert!(blocked_at_dfns(&env, base, &cold, 1_000).await);
    assert!(!blocked_at_dfns(&env, sepolia, &cold, 1_000).await);
}

/// `txHash` as Bitcoin writes a txid: 64 lowercase hex digits, no `0x`.
fn is_bitcoin_txid(hash: &str) -> bool {
    hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The client's movements (activity items with a direction) on `network`, once at least `count`
/// are there.
async fn movements_on(env: &Env, subject: &str, network: &str, count: usize) -> Vec<Value> {
    e2e::wait_until(std::time::Duration::from_secs(30), || async {
        let (_, page) = env.get("/v1/activity?limit=100", subject).await;
        let items: Vec<Value> = page["items"]
            .as_array()?
            .iter()
            .filter(|i| i["network"] == network && i["direction"].is_string())
            .cloned()
            .collect();
        (items.len() >= count).then_some(items)
    })
    .await
    .unwrap_or_else(|| panic!("{subject} never had {count} movement(s) on {network}"))
}

/// Bitcoin through the platform: a deposit arrives by Dfns' webhook and is in the client's
/// activity and CSV in satoshis with a Bitcoin txid; a taproot destination is approved and a
/// withdrawal to it confirms, sent once, with a Bitcoin txid.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bitcoin_deposit_and_withdrawal_through_the_platform() {
    // BIP-350's valid testnet v1 (taproot) address.
    const TAPROOT: &str = "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c";
    let env = Env::start(EnvOptions {
        networks: Some("EthereumSepolia,BitcoinTestnet4".into()),
        tier: Tier {
            amount_limit_usd: Some(100_000),
            ..Tier::default()
        },
        ..EnvOptions::default()
    })
    .await;
    env.control(
        Method::PUT,
        "prices",
        &json!({"prices": {"ETH": "3000.00", "BTC": "90000.00"}}),
    )
    .await;
    let carol = client_id("carol");
    env.open_account(&carol).await;
    let (_, account) = env.get("/v1/account", &carol).await;
    let wallet = wallet_on(&account, "BitcoinTestnet4")["walletId"]
        .as_str()
        .unwrap()
        .to_owned();

    // 0.01 BTC in: through the webhook into the activity, in satoshis.
    env.control(
        Method::POST,
        "deposits",
        &json!({"walletId": wallet, "kind": "Native", "amount": "1000000"}),
    )
    .await;
    let deposit = movements_on(&env, &carol, "BitcoinTestnet4", 1).await;
    let deposit = &deposit[0];
    assert_eq!(deposit["direction"], "In", "{deposit}");
    assert_eq!(deposit["amount"], "1000000", "{deposit}");
    assert_eq!(deposit["decimals"], 8, "{deposit}");
    let deposit_tx = deposit["txHash"].as_str().expect("a txid").to_owned();
    assert!(is_bitcoin_txid(&deposit_tx), "{deposit}");

    // A taproot destination, approved; a mixed-case spelling of it is refused by the platform.
    let (status, refused) = env
        .post(
            "/v1/destination-requests",
            &carol,
            &json!({"network": "BitcoinTestnet4", "address": TAPROOT.replacen("qqqq", "QQQQ", 1), "label": "mixed", "action": "add"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    approved_on(&env, &carol, "BitcoinTestnet4", TAPROOT).await;

    // 50 000 satoshis out, sent once.
    let key = format!("w-{}", ulid::Ulid::new());
    let body =
        json!({"network": "BitcoinTestnet4", "to": TAPROOT, "asset": "native", "amount": "50000"});
    let (status, created) = withdraw(&env, &carol, &key, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    wait_for_withdrawal(&env, &carol, &id, "Confirmed").await;
    let sent: Vec<_> = env
        .service()
        .list_transfers(&WalletId::new(&wallet), &TransfersQuery::default())
        .try_collect()
        .await
        .expect("the Bitcoin wallet's transfers");
    let sent: Vec<_> = sent
        .into_iter()
        .filter(|t| t.external_id.as_ref().map(|e| e.as_str()) == Some(id.as_str()))
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let txid = sent[0]
        .tx_hash
        .clone()
        .expect("a broadcast transfer has a txid");
    assert!(is_bitcoin_txid(&txid), "{txid}");

    // The CSV has both, in satoshis with their txids.
    let response = env
        .http
        .get(env.url("/v1/activity?format=csv"))
        .bearer_auth(env.token(&carol))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(text.contains(&deposit_tx), "{text}");
    let out = text
        .lines()
        .find(|line| line.contains(&txid))
        .unwrap_or_else(|| panic!("the withdrawal's row: {text}"));
    assert!(
        out.contains("50000") && out.contains("BitcoinTestnet4"),
        "{out}"
    );
}

/// Approves, as an officer, each destination request `authorization` made (they reach compliance
/// one at a time, the client's queue), until the authorization is `Active`.
async fn approve_until_active(env: &Env, subject: &str, authorization: &Value) {
    let request_ids: Vec<String> = authorization["destinations"]
        .as_array()
        .expect("destinations")
        .iter()
        .map(|d| d["addRequestId"].as_str().expect("add request").to_owned())
        .collect();
    let decided = std::sync::Mutex::new(std::collections::HashSet::new());
    e2e::wait_until(std::time::Duration::from_secs(90), || async {
        let mut approved = 0;
        for id in &request_ids {
            let request = env.destination_request(subject, id).await?;
            match request["state"].as_str()? {
                "Approved" => approved += 1,
                "PendingApproval" => {
                    let approval = request["approvalId"].as_str()?.to_owned();
                    if decided.lock().unwrap().insert(approval) {
                        env.decide(&request, DecisionValue::Approved).await;
                    }
                }
                _ => {}
            }
        }
        (approved == request_ids.len()).then_some(())
    })
    .await
    .expect("every venue address approved");
    let id = authorization["id"].as_str().expect("id").to_owned();
    e2e::wait_until(std::time::Duration::from_secs(30), || async {
        let (_, list) = env.get("/v1/trading-authorizations", subject).await;
        list["items"]
            .as_array()?
            .iter()
            .find(|a| a["id"] == id.as_str() && a["status"] == "Active")
            .cloned()
    })
    .await
    .expect("the authorization becomes Active");
}

/// The trading desk on Bitcoin and Solana: a client's authorization of Kraken whitelists the
/// venue's deposit address on each of the client's networks (each in that wallet's own policy);
/// once an officer approves them, desk orders of BTC and of SOL are sent once each to the venue's
/// address on their network and confirm.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn desk_orders_of_btc_and_sol_go_to_the_venues_address_on_their_network() {
    let env = Env::start(EnvOptions {
        networks: Some("EthereumSepolia,BitcoinTestnet4,SolanaDevnet".into()),
        tier: Tier {
            amount_limit_usd: Some(100_000),
            ..Tier::default()
        },
        // The reconciler submits the client's queued destination changes; the executor sends.
        tick_every: Some(std::time::Duration::from_millis(500)),
        ..EnvOptions::default()
    })
    .await;
    env.control(
        Method::PUT,
        "prices",
        &json!({"prices": {"ETH": "3000.00", "BTC": "90000.00", "SOL": "150.00"}}),
    )
    .await;
    let dave = client_id("dave");
    env.open_account(&dave).await;
    let (_, account) = env.get("/v1/account", &dave).await;
    for (network, amount) in [
        ("BitcoinTestnet4", "1000000"),
        ("SolanaDevnet", "5000000000"),
    ] {
        let wallet = wallet_on(&account, network)["walletId"].as_str().unwrap();
        env.control(
            Method::POST,
            "deposits",
            &json!({"walletId": wallet, "kind": "Native", "amount": amount}),
        )
        .await;
    }

    let (status, authorization) = env
        .post(
            "/v1/trading-authorizations",
            &dave,
            &json!({"exchange": "Kraken"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{authorization}");
    let destinations = authorization["destinations"]
        .as_array()
        .expect("destinations");
    let mut networks: Vec<&str> = destinations
        .iter()
        .map(|d| d["network"].as_str().unwrap())
        .collect();
    networks.sort_unstable();
    assert_eq!(
        networks,
        ["BitcoinTestnet4", "EthereumSepolia", "SolanaDevnet"],
        "{authorization}"
    );
    approve_until_active(&env, &dave, &authorization).await;

    for (asset, amount, network, venue_address) in [
        (
            "BTC",
            "250000",
            "BitcoinTestnet4",
            "tb1qfd9qqqqqqqqqqqqqqqqqqqqqqqqqqqqrk6zg83",
        ),
        (
            "SOL",
            "2000000000",
            "SolanaDevnet",
            "64u2MQX9fShKENP7tp1giBT8FvsKBuKKAdFanGXMfXop",
        ),
    ] {
        let (status, order) = env
            .call_with_headers(
                Method::POST,
                "/v1/operator/orders",
                Some(&env.operator_token("desk-1")),
                Some(&json!({"clientId": dave.as_str(), "exchange": "Kraken", "asset": asset, "amount": amount})),
                &[("idempotency-key", &ulid::Ulid::new().to_string())],
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        let order_id = order["id"].as_str().unwrap().to_owned();
        e2e::wait_until(std::time::Duration::from_secs(40), || async {
            let (_, orders) = env
                .call(
                    Method::GET,
                    &format!("/v1/operator/orders?clientId={dave}"),
                    Some(&env.operator_token("desk-1")),
                    None,
                )
                .await;
            orders["items"]
                .as_array()?
                .iter()
                .find(|o| o["id"] == order_id.as_str() && o["state"] == "Confirmed")
                .cloned()
        })
        .await
        .unwrap_or_else(|| panic!("the {asset} order never confirmed"));
        let wallet = wallet_on(&account, network)["walletId"].as_str().unwrap();
        let sent = env.transfers_for(wallet, &order_id).await;
        assert_eq!(sent.len(), 1, "{asset}: {sent:?}");
        let body = &sent[0]["requestBody"];
        assert_eq!(body["to"], venue_address, "{asset}: {body}");
        assert_eq!(body["amount"], amount, "{asset}: {body}");
    }
}

/// SPL tokens on Solana (devnet USDC, an SPL token of 6 decimals) through the platform: a deposit
/// arrives by Dfns' webhook and the client's activity shows its mint and decimals; a withdrawal of
/// the token to an approved Solana destination confirms, sent once as an `Spl` transfer of that
/// mint; the mint with one letter's case changed is refused; a desk order of USDC on Solana goes
/// to the venue's Solana address and confirms.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spl_usdc_deposit_withdrawal_and_desk_order_on_solana() {
    const MINT: &str = platform::trading::registry::DEVNET_USDC_MINT;
    const KRAKEN_SOLANA: &str = "64u2MQX9fShKENP7tp1giBT8FvsKBuKKAdFanGXMfXop";
    let env = Env::start(EnvOptions {
        networks: Some("EthereumSepolia,SolanaDevnet".into()),
        tier: Tier {
            amount_limit_usd: Some(100_000),
            ..Tier::default()
        },
        // The reconciler submits the client's queued destination changes; the executor sends.
        tick_every: Some(std::time::Duration::from_millis(500)),
        ..EnvOptions::default()
    })
    .await;
    env.control(
        Method::PUT,
        "prices",
        &json!({"prices": {"ETH": "3000.00", "SOL": "150.00", MINT: "1.00"}}),
    )
    .await;
    let erin = client_id("erin");
    env.open_account(&erin).await;
    let (_, account) = env.get("/v1/account", &erin).await;
    let wallet = wallet_on(&account, "SolanaDevnet")["walletId"]
        .as_str()
        .unwrap()
        .to_owned();

    // 5 SOL for the fees, then 50 USDC: the token's deposit in the activity with mint and decimals.
    env.control(
        Method::POST,
        "deposits",
        &json!({"walletId": wallet, "kind": "Native", "amount": "5000000000"}),
    )
    .await;
    env.control(
        Method::POST,
        "deposits",
        &json!({"walletId": wallet, "kind": "Spl", "mint": MINT, "amount": "50000000",
                "symbol": "USDC", "decimals": 6}),
    )
    .await;
    let movements = movements_on(&env, &erin, "SolanaDevnet", 2).await;
    let deposit = movements
        .iter()
        .find(|m| m["kind"] == "SplTransfer")
        .unwrap_or_else(|| panic!("the token deposit: {movements:#?}"));
    assert_eq!(deposit["direction"], "In", "{deposit}");
    assert_eq!(deposit["contract"], MINT, "the mint: {deposit}");
    assert_eq!(deposit["decimals"], 6, "{deposit}");
    assert_eq!(deposit["amount"], "50000000", "{deposit}");
    assert_eq!(deposit["asset"], "USDC", "{deposit}");

    // An approved Solana destination; 2.5 USDC to it, sent once as an `Spl` transfer.
    let cold = random_solana_address();
    approved_on(&env, &erin, "SolanaDevnet", &cold).await;
    let body = |asset: &str| json!({"network": "SolanaDevnet", "to": cold, "asset": asset, "amount": "2500000"});
    let key = format!("w-{}", ulid::Ulid::new());
    let (status, created) = withdraw(&env, &erin, &key, &body(MINT)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["asset"], MINT, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    wait_for_withdrawal(&env, &erin, &id, "Confirmed").await;
    let sent = env.transfers_for(&wallet, &id).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let request = &sent[0]["requestBody"];
    assert_eq!(request["kind"], "Spl", "{request}");
    assert_eq!(request["mint"], MINT, "{request}");
    assert_eq!(request["to"], cold.as_str(), "{request}");
    assert_eq!(request["amount"], "2500000", "{request}");
    assert_eq!(request["createDestinationAccount"], true, "{request}");
    let row = e2e::wait_until(std::time::Duration::from_secs(30), || async {
        let (_, page) = env.get("/v1/activity?limit=100", &erin).await;
        page["items"]
            .as_array()?
            .iter()
            .find(|i| i["reference"] == sent[0]["id"] && i["status"] == "Confirmed")
            .cloned()
    })
    .await
    .expect("the withdrawal's activity row");
    assert_eq!(
        (
            row["kind"].as_str(),
            row["contract"].as_str(),
            row["decimals"].as_u64()
        ),
        (Some("Spl"), Some(MINT), Some(6)),
        "{row}"
    );

    // The mint with one letter's case changed: another mint, which the wallet does not hold.
    let changed = case_changed(MINT);
    assert_ne!(changed, MINT);
    let key = format!("w-{}", ulid::Ulid::new());
    let (status, refused) = withdraw(&env, &erin, &key, &body(&changed)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(
        refused.to_string().contains("holds no token of mint"),
        "{refused}"
    );

    // The desk: Kraken's addresses whitelisted and approved, then 1 USDC on Solana to Kraken.
    let (status, authorization) = env
        .post(
            "/v1/trading-authorizations",
            &erin,
            &json!({"exchange": "Kraken"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{authorization}");
    approve_until_active(&env, &erin, &authorization).await;

    let order = |network: Option<&str>| {
        let mut body = json!({"clientId": erin.as_str(), "exchange": "Kraken", "asset": "USDC", "amount": "1000000"});
        if let Some(network) = network {
            body["network"] = json!(network);
        }
        body
    };
    let place = |body: Value| {
        let env = &env;
        async move {
            env.call_with_headers(
                Method::POST,
                "/v1/operator/orders",
                Some(&env.operator_token("desk-1")),
                Some(&body),
                &[("idempotency-key", &ulid::Ulid::new().to_string())],
            )
            .await
        }
    };
    // USDC is on both of the platform's networks: the desk says which.
    let (status, ambiguous) = place(order(None)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{ambiguous}");
    let (status, placed) = place(order(Some("SolanaDevnet"))).await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    let order_id = placed["id"].as_str().unwrap().to_owned();
    e2e::wait_until(std::time::Duration::from_secs(40), || async {
        let (_, orders) = env
            .call(
                Method::GET,
                &format!("/v1/operator/orders?clientId={erin}"),
                Some(&env.operator_token("desk-1")),
                None,
            )
            .await;
        orders["items"]
            .as_array()?
            .iter()
            .find(|o| o["id"] == order_id.as_str() && o["state"] == "Confirmed")
            .cloned()
    })
    .await
    .expect("the USDC order confirms");
    let sent = env.transfers_for(&wallet, &order_id).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let request = &sent[0]["requestBody"];
    assert_eq!(request["kind"], "Spl", "{request}");
    assert_eq!(request["mint"], MINT, "{request}");
    assert_eq!(request["to"], KRAKEN_SOLANA, "{request}");
    assert_eq!(request["amount"], "1000000", "{request}");
}
