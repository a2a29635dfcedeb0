//! Webhook registration and signed delivery with retries (docs/dfns.md §7).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{Harness, RECIPIENT};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use dfns_emulator::Options;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Clone, Debug)]
struct Delivery {
    signature: String,
    body: Bytes,
}

impl Delivery {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A tiny receiver that records every delivery and answers `status`.
async fn receiver(status: StatusCode) -> (String, Arc<Mutex<Vec<Delivery>>>) {
    let seen: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let store = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let store = store.clone();
            async move {
                let signature = headers
                    .get("x-dfns-webhook-signature")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                store.lock().unwrap().push(Delivery { signature, body });
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn verify(secret: &str, delivery: &Delivery) -> bool {
    let hex_sig = delivery.signature.strip_prefix("sha256=").unwrap_or("");
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&delivery.body);
    mac.verify_slice(&sig).is_ok()
}

async fn wait_for(
    seen: &Arc<Mutex<Vec<Delivery>>>,
    count: usize,
    what: impl Fn(&Delivery) -> bool,
) -> Vec<Delivery> {
    for _ in 0..300 {
        let matching: Vec<Delivery> = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|d| what(d))
            .cloned()
            .collect();
        if matching.len() >= count {
            return matching;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "expected {count} deliveries, got {:?}",
        seen.lock().unwrap().len()
    );
}

#[tokio::test]
async fn deliveries_are_signed_with_the_secret_returned_once() {
    let h = Harness::start().await;
    let (url, seen) = receiver(StatusCode::OK).await;
    let created =
        h.sa.signed(
            Method::POST,
            "/webhooks",
            &json!({ "url": url, "events": ["*"], "description": "platform" }),
        )
        .await
        .ok();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let webhook_id = created["id"].as_str().unwrap();
    assert!(webhook_id.starts_with("wh-"));
    assert_eq!(created["status"], "Enabled");
    let fetched = h.sa.get(&format!("/webhooks/{webhook_id}")).await.ok();
    assert!(
        fetched.get("secret").is_none(),
        "secret is shown only at creation"
    );

    let wallet = h
        .create_wallet(json!({ "network": "EthereumSepolia" }))
        .await;
    let wallet_id = wallet["id"].as_str().unwrap();
    h.deposit(wallet_id, "1000000000000000000").await;
    let transfer =
        h.sa.signed(
            Method::POST,
            &format!("/wallets/{wallet_id}/transfers"),
            &json!({ "kind": "Native", "to": RECIPIENT, "amount": "5" }),
        )
        .await
        .ok();
    let tid = transfer["id"].as_str().unwrap().to_owned();

    let kinds = [
        "wallet.transfer.requested",
        "wallet.transfer.broadcasted",
        "wallet.transfer.confirmed",
    ];
    for kind in kinds {
        let got = wait_for(&seen, 1, |d| d.json()["kind"] == kind).await;
        let event = got[0].json();
        assert!(verify(&secret, &got[0]), "signature of {kind} must verify");
        assert!(!verify("wrong-secret", &got[0]));
        assert_eq!(event["data"]["transferRequest"]["id"], tid.as_str());
        assert_eq!(event["deliveryAttempt"], 1);
        assert!(event["id"].as_str().unwrap().starts_with("whe-"));
        let sent = event["timestampSent"].as_i64().unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!((now - sent).abs() < 300);
        assert!(event.get("retryOf").is_none());
    }
    let deposit = wait_for(&seen, 1, |d| {
        d.json()["kind"] == "wallet.blockchainevent.detected"
    })
    .await;
    assert_eq!(
        deposit[0].json()["data"]["blockchainEvent"]["direction"],
        "In"
    );

    let events =
        h.sa.get(&format!(
            "/webhooks/{webhook_id}/events?kind=wallet.transfer.confirmed"
        ))
        .await
        .ok();
    let stored = &events["items"][0];
    assert_eq!(stored["kind"], "wallet.transfer.confirmed");
    assert_eq!(stored["status"], "200");
    let one =
        h.sa.get(&format!(
            "/webhooks/{webhook_id}/events/{}",
            stored["id"].as_str().unwrap()
        ))
        .await
        .ok();
    assert_eq!(one["id"], stored["id"]);

    let ping =
        h.sa.signed(
            Method::POST,
            &format!("/webhooks/{webhook_id}/ping"),
            &json!({}),
        )
        .await
        .ok();
    assert_eq!(ping["status"], "200");
    let pinged = wait_for(&seen, 1, |d| d.json()["kind"] == "ping").await;
    assert!(verify(&secret, &pinged[0]));
}

#[tokio::test]
async fn a_failing_endpoint_gets_retries_with_new_ids() {
    let h = Harness::with(Options {
        webhook_retry_delays: vec![Duration::from_millis(30); 4],
        ..Options::default()
    })
    .await;
    let (url, seen) = receiver(StatusCode::INTERNAL_SERVER_ERROR).await;
    let created =
        h.sa.signed(
            Method::POST,
            "/webhooks",
            &json!({ "url": url, "events": ["wallet.created"] }),
        )
        .await
        .ok();
    let webhook_id = created["id"].as_str().unwrap();
    h.create_wallet(json!({ "network": "EthereumSepolia" }))
        .await;

    let attempts = wait_for(&seen, 5, |_| true).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        seen.lock().unwrap().len(),
        5,
        "5 attempts in total, then it stops"
    );
    let bodies: Vec<Value> = attempts.iter().map(Delivery::json).collect();
    for (i, body) in bodies.iter().enumerate() {
        assert_eq!(body["deliveryAttempt"], i as u64 + 1);
        assert_eq!(body["kind"], "wallet.created");
        assert_eq!(
            body["data"], bodies[0]["data"],
            "same data on every attempt"
        );
        if i == 0 {
            assert!(body.get("retryOf").is_none());
        } else {
            assert_eq!(body["retryOf"], bodies[i - 1]["id"]);
            assert_ne!(body["id"], bodies[i - 1]["id"]);
        }
    }

    let failed =
        h.sa.get(&format!(
            "/webhooks/{webhook_id}/events?deliveryFailed=true"
        ))
        .await
        .ok();
    let items = failed["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    assert!(
        items
            .iter()
            .all(|e| e["status"] == "500" && e["deliveryFailed"] == true)
    );
    // Newest first: the last attempt has no retry scheduled, the earlier ones had one.
    assert_eq!(items[0]["deliveryAttempt"], 5);
    assert!(items[0].get("nextAttemptDate").is_none());
    assert_eq!(items[4]["deliveryAttempt"], 1);
    assert!(items[4]["nextAttemptDate"].is_string());
    assert_eq!(items[3]["retryOf"], items[4]["id"]);
    let delivered =
        h.sa.get(&format!(
            "/webhooks/{webhook_id}/events?deliveryFailed=false"
        ))
        .await
        .ok();
    assert_eq!(delivered["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn disabled_and_deleted_webhooks_receive_nothing() {
    let h = Harness::start().await;
    let (url, seen) = receiver(StatusCode::OK).await;
    let created =
        h.sa.signed(
            Method::POST,
            "/webhooks",
            &json!({ "url": url, "events": ["wallet.created"] }),
        )
        .await
        .ok();
    let path = format!("/webhooks/{}", created["id"].as_str().unwrap());
    let updated =
        h.sa.signed(Method::PUT, &path, &json!({ "status": "Disabled" }))
            .await
            .ok();
    assert_eq!(updated["status"], "Disabled");
    h.create_wallet(json!({ "network": "EthereumSepolia" }))
        .await;
    let deleted = h.sa.signed(Method::DELETE, &path, &json!({})).await.ok();
    assert_eq!(deleted, json!({ "deleted": true }));
    h.create_wallet(json!({ "network": "EthereumSepolia" }))
        .await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(seen.lock().unwrap().is_empty());
    assert_eq!(h.sa.get(&path).await.status, StatusCode::NOT_FOUND);

    let bad =
        h.sa.signed(
            Method::POST,
            "/webhooks",
            &json!({ "url": url, "events": ["no.such.kind"] }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

/// Registers a webhook for `wallet.created` at a receiver answering 200; the webhook id.
async fn hooked(h: &Harness) -> (String, Arc<Mutex<Vec<Delivery>>>) {
    let (url, seen) = receiver(StatusCode::OK).await;
    let created =
        h.sa.signed(
            Method::POST,
            "/webhooks",
            &json!({ "url": url, "events": ["wallet.created"] }),
        )
        .await
        .ok();
    (created["id"].as_str().unwrap().to_owned(), seen)
}

async fn webhook_fault_stats(h: &Harness) -> Value {
    h.control(Method::GET, "/stats", json!(null)).await["webhookFaults"].clone()
}

#[tokio::test]
async fn a_dropped_delivery_never_arrives_and_is_retried_with_a_new_id() {
    let h = Harness::with(Options {
        webhook_retry_delays: vec![Duration::from_millis(30); 4],
        ..Options::default()
    })
    .await;
    let (webhook_id, seen) = hooked(&h).await;
    h.control(
        Method::PUT,
        "/webhook-faults",
        json!({ "dropRate": 1.0, "seed": 1 }),
    )
    .await;
    h.create_wallet(json!({ "network": "EthereumSepolia" }))
        .await;

    // Five attempts, each recorded failed, none of them at the receiver.
    let mut events = Value::Null;
    for _ in 0..100 {
        events =
            h.sa.get(&format!(
                "/webhooks/{webhook_id}/events?deliveryFailed=true"
            ))
            .await
            .ok();
        if events["items"].as_array().unwrap().len() == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let items = events["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 5, "every attempt dropped: {events}");
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing reached the receiver"
    );
    for item in &items {
        assert_eq!(item["status"], "ConnectionError", "{item}");
        assert!(
            item["error"].as_str().unwrap().contains("injected"),
            "{item}"
        );
    }
    // Newest first: each retry points at the attempt before it.
    for pair in items.windows(2) {
        assert_eq!(pair[0]["retryOf"], pair[1]["id"]);
        assert_eq!(
            pair[0]["deliveryAttempt"].as_u64().unwrap(),
            pair[1]["deliveryAttempt"].as_u64().unwrap() + 1
        );
    }
    assert_eq!(webhook_fault_stats(&h).await["dropped"], 5);

    // Cleared: the next event is delivered at once.
    h.control(Method::DELETE, "/webhook-faults", json!({}))
        .await;
    h.create_wallet(json!({ "network": "EthereumSepolia" }))
        .await;
    let got = wait_for(&seen, 1, |_| true).await;
    assert_eq!(got[0].json()["deliveryAttempt"], 1);
    assert_eq!(webhook_fault_stats(&h).await["dropped"], 5);
}

#[tokio::test]
async fn a_duplicated_delivery_arrives_twice_identical_and_a_lost_answer_is_retried() {
    let h = Harness::with(Options {
        webhook_retry_delays: vec![Duration::from_millis(30)],
        ..Options::default()
    })
    .await;
    let (webhook_id, seen) = hooked(&h).await;
    h.control(
        Method::PUT,
        "/webhook-faults",
        json!({ "duplicateRate": 1.0, "reorderDelayMs": 20, "seed": 2 }),
    )
    .await;
    h.create_wallet(json!({ "network": "EthereumSepolia" }))
        .await;
    let copies = wait_for(&seen, 2, |_| true).await;
    assert_eq!(copies.len(), 2);
    assert_eq!(copies[0].body, copies[1].body, "the same body");
    assert_eq!(
        copies[0].signature, copies[1].signature,
        "the same signature"
    );
    let stats = webhook_fault_stats(&h).await;
    assert_eq!(stats["duplicated"], 1, "{stats}");

    // The receiver gets the delivery but its answer is lost: Dfns records a timeout and delivers
    // again with a new id, which the receiver gets too.
    seen.lock().unwrap().clear();
    h.control(
        Method::PUT,
        "/webhook-faults",
        json!({ "lostAnswerRate": 1.0, "seed": 3 }),
    )
    .await;
    h.create_wallet(json!({ "network": "EthereumSepolia" }))
        .await;
    let both = wait_for(&seen, 2, |_| true).await;
    let (first, retry) = (both[0].json(), both[1].json());
    assert_eq!(retry["retryOf"], first["id"], "{retry}");
    assert_eq!(retry["deliveryAttempt"], 2);
    assert_eq!(retry["data"], first["data"]);
    let stored =
        h.sa.get(&format!(
            "/webhooks/{webhook_id}/events/{}",
            first["id"].as_str().unwrap()
        ))
        .await
        .ok();
    assert_eq!(stored["status"], "Timeout", "{stored}");
    assert_eq!(stored["deliveryFailed"], true);
    assert_eq!(webhook_fault_stats(&h).await["answersLost"], 2);
}

#[tokio::test]
async fn delayed_deliveries_overtake_earlier_ones() {
    let h = Harness::start().await;
    let (_, seen) = hooked(&h).await;
    h.control(
        Method::PUT,
        "/webhook-faults",
        json!({ "reorderDelayMs": 400, "seed": 4 }),
    )
    .await;
    let mut created = Vec::new();
    for _ in 0..6 {
        let wallet = h
            .create_wallet(json!({ "network": "EthereumSepolia" }))
            .await;
        created.push(wallet["id"].as_str().unwrap().to_owned());
    }
    let arrived: Vec<String> = wait_for(&seen, 6, |_| true)
        .await
        .iter()
        .map(|d| {
            d.json()["data"]["wallet"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut sorted_arrived = arrived.clone();
    sorted_arrived.sort();
    let mut sorted_created = created.clone();
    sorted_created.sort();
    assert_eq!(sorted_arrived, sorted_created, "each event arrives once");
    assert_ne!(arrived, created, "later events overtook earlier ones");
    assert!(webhook_fault_stats(&h).await["delayed"].as_u64().unwrap() >= 5);

    let response = h
        .control
        .put(format!("{}/emulator/webhook-faults", h.base()))
        .json(&json!({ "dropRate": 2.0 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}
