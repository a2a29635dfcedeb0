//! The consumer against the stand-ins and the emulator (as Lambda would call it, with batches as
//! SQS FIFO hands them over).

use domain::audit::ChainVerdict;
use domain::{ClientId, Network, NetworkAddress, WalletId};
use platform::testing::{TestEnv, TestOptions};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::{QueuedMessage, handle};

const ADDRESS: &str = "0x8617e340b3d01fa5f11f306f4090fd50e238070e";

fn env_options() -> TestOptions {
    TestOptions {
        webhooks: false,
        ..TestOptions::default()
    }
}

/// A client holding `wallet`, as onboarding leaves it in the table.
async fn client_with_wallet(env: &TestEnv, wallet: &WalletId) -> ClientId {
    let client = ClientId::parse(&format!("c-{}", ulid::Ulid::new())).unwrap();
    let store = env.app.store();
    store
        .create_client_profile(&store::ClientProfile {
            client_id: client.clone(),
            created_at: OffsetDateTime::now_utc(),
            tier: None,
        })
        .await
        .unwrap();
    store
        .attach_wallet(&store::WalletMapping {
            client_id: client.clone(),
            wallet_id: wallet.clone(),
            address: NetworkAddress::parse(Network::EthereumSepolia, ADDRESS).unwrap(),
            created_at: OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();
    client
}

fn wallet() -> WalletId {
    WalletId::parse(&format!(
        "wa-{}",
        ulid::Ulid::new().to_string().to_lowercase()
    ))
    .unwrap()
}

fn event(kind: &str, data: Value) -> String {
    json!({
        "id": format!("whe-{}", ulid::Ulid::new().to_string().to_lowercase()),
        "kind": kind,
        "date": "2026-01-01T00:01:00.000Z",
        "timestampSent": OffsetDateTime::now_utc().unix_timestamp(),
        "deliveryAttempt": 1,
        "data": data,
    })
    .to_string()
}

/// A deposit of `amount` wei in transaction `tx` (each call is a new delivery, with its own id).
fn deposit(wallet: &WalletId, tx: &str, amount: u64) -> String {
    event(
        "wallet.blockchainevent.detected",
        json!({"blockchainEvent": {
            "walletId": wallet.as_str(),
            "direction": "In",
            "network": "EthereumSepolia",
            "blockNumber": 7,
            "txHash": tx,
            "index": "0",
            "timestamp": "2026-01-01T00:00:00.000Z",
            "kind": "NativeTransfer",
            "from": "0x8617e340b3d01fa5f11f306f4090fd50e238070d",
            "to": ADDRESS,
            "value": amount.to_string(),
            "metadata": {"asset": {"symbol": "ETH", "decimals": 18}}
        }}),
    )
}

fn transfer(wallet: &WalletId, status: &str) -> String {
    let kind = match status {
        "Broadcasted" => "wallet.transfer.broadcasted",
        "Confirmed" => "wallet.transfer.confirmed",
        other => panic!("{other}"),
    };
    event(
        kind,
        json!({"transferRequest": {
            "id": format!("xfr-{}", wallet.as_str().trim_start_matches("wa-")),
            "walletId": wallet.as_str(),
            "network": "EthereumSepolia",
            "requester": {"userId": "us-service-account"},
            "requestBody": {"kind": "Native", "to": ADDRESS, "amount": "5"},
            "status": status,
            "dateRequested": "2026-01-01T00:00:00.000Z"
        }}),
    )
}

fn message(group: &ClientId, body: String) -> QueuedMessage {
    QueuedMessage {
        id: ulid::Ulid::new().to_string(),
        group: format!("client:{group}"),
        body,
        request_id: Some("queued-test".into()),
    }
}

/// The client's audit lines of `action`, in chain order, as (tx hash or status).
async fn trail(env: &TestEnv, client: &ClientId, action: &str) -> Vec<String> {
    let page = env
        .app
        .store()
        .list_audit_events(client, None, 1000)
        .await
        .unwrap();
    page.entries
        .iter()
        .map(|e| e.event().unwrap())
        .filter(|e| e.action.as_str() == action)
        .map(|e| {
            e.details["txHash"]
                .as_str()
                .or(e.details["status"].as_str())
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn redelivered_duplicated_and_reordered_events_apply_once_and_in_order() {
    let env = TestEnv::start(env_options()).await;
    let wallet = wallet();
    let client = client_with_wallet(&env, &wallet).await;
    // Three deposits in order, the second reported twice (two deliveries, two event ids), then a
    // transfer whose Confirmed arrives before its Broadcasted (Dfns does not promise order).
    let batch = vec![
        message(&client, deposit(&wallet, "0xd1", 1)),
        message(&client, deposit(&wallet, "0xd2", 2)),
        message(&client, deposit(&wallet, "0xd2", 2)),
        message(&client, deposit(&wallet, "0xd3", 3)),
        message(&client, transfer(&wallet, "Confirmed")),
        message(&client, transfer(&wallet, "Broadcasted")),
    ];
    assert!(handle(&env.app, &batch).await.is_empty());
    // The same batch again, as SQS would redeliver it after a lost acknowledgement.
    assert!(handle(&env.app, &batch).await.is_empty());

    assert_eq!(
        trail(&env, &client, "deposit.received").await,
        ["0xd1", "0xd2", "0xd3"],
        "each deposit once, in the order received"
    );
    assert_eq!(
        trail(&env, &client, "transfer.status_reported").await,
        ["Confirmed", "Broadcasted"],
        "each status once"
    );
    let notes = env
        .app
        .store()
        .list_notifications(&client, 10, None)
        .await
        .unwrap();
    assert_eq!(notes.items.len(), 3, "one notification per deposit");
}

/// A message that cannot be applied is retried with every later message of its group (order is
/// kept), while other clients' messages in the same batch are applied. Once SQS has moved it to
/// the dead-letter queue (after `maxReceiveCount` receives), the group's later events apply.
#[tokio::test]
async fn a_poison_event_holds_back_its_clients_later_events_only_until_it_is_dead_lettered() {
    let env = TestEnv::start(env_options()).await;
    let (alice_wallet, bob_wallet) = (wallet(), wallet());
    let alice = client_with_wallet(&env, &alice_wallet).await;
    let bob = client_with_wallet(&env, &bob_wallet).await;
    let poison = message(&alice, "{\"id\": \"whe-poison\", \"kind\": ".to_owned());
    let later = message(&alice, deposit(&alice_wallet, "0xa2", 2));
    let batch = vec![
        message(&alice, deposit(&alice_wallet, "0xa1", 1)),
        poison.clone(),
        later.clone(),
        message(&bob, deposit(&bob_wallet, "0xb1", 1)),
    ];
    let failed = handle(&env.app, &batch).await;
    assert_eq!(failed, [poison.id.clone(), later.id.clone()]);
    assert_eq!(trail(&env, &alice, "deposit.received").await, ["0xa1"]);
    assert_eq!(trail(&env, &bob, "deposit.received").await, ["0xb1"]);

    // SQS redelivers the failed ones; the poison fails every time.
    assert_eq!(
        handle(&env.app, &[poison.clone(), later.clone()]).await,
        [poison.id.clone(), later.id.clone()]
    );
    // Dead-lettered: the group's next receive starts after it.
    assert!(
        handle(&env.app, std::slice::from_ref(&later))
            .await
            .is_empty()
    );
    assert_eq!(
        trail(&env, &alice, "deposit.received").await,
        ["0xa1", "0xa2"]
    );
}

/// The consumer (one client's events in a burst) and the request path (audit lines of the same
/// client at the same time) append to one chain: no fork, no gap, every line once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_consumer_and_the_request_path_append_to_one_gapless_chain() {
    let env = TestEnv::start(env_options()).await;
    let wallet = wallet();
    let client = client_with_wallet(&env, &wallet).await;
    let deposits: Vec<QueuedMessage> = (0..40)
        .map(|i| message(&client, deposit(&wallet, &format!("0xc{i:04}"), i + 1)))
        .collect();
    let consumer = {
        let app = env.app.clone();
        tokio::spawn(async move {
            let mut failed = Vec::new();
            for batch in deposits.chunks(10) {
                failed.extend(handle(&app, batch).await);
            }
            failed
        })
    };
    let requests = (0..20).map(|i| {
        let app = env.app.clone();
        let client = client.clone();
        tokio::spawn(async move {
            platform::audit::record(
                &app,
                &client,
                domain::Actor::System { id: "test".into() },
                platform::audit::actions::DESTINATION_CREATED,
                &format!("request-{i}"),
                json!({ "n": i }),
            )
            .await
        })
    });
    let requests = futures::future::join_all(requests).await;
    assert!(consumer.await.unwrap().is_empty());
    for result in requests {
        result.unwrap().unwrap();
    }
    let verdict = env.app.store().verify_audit_chain(&client).await.unwrap();
    assert!(
        matches!(verdict, ChainVerdict::Intact { length: 60, .. }),
        "{verdict:?}"
    );
    assert_eq!(trail(&env, &client, "deposit.received").await.len(), 40);
}
