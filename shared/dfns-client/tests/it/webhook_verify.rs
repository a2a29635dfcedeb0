//! Webhook delivery verification: each failure has its own error.

use dfns_client::webhooks::{SIGNATURE_HEADER, WebhookVerifyError, signature_digest};
use dfns_client::{EventData, SecretString, TransferStatus, WebhookEventKind, WebhookVerifier};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const SECRET: &str = "whsec-test-0123456789";
const SENT: i64 = 1_701_684_144;

fn body() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": "whe-1", "kind": "wallet.transfer.confirmed", "date": "2023-12-04T10:02:22.280Z",
        "timestampSent": SENT, "deliveryAttempt": 1,
        "data": { "transferRequest": {
            "id": "xfr-1", "walletId": "wa-1", "network": "EthereumSepolia",
            "requester": { "userId": "us-1" },
            "requestBody": { "kind": "Native", "to": "0xb2", "amount": "10", "externalId": "o-1" },
            "status": "Confirmed", "txHash": "0xabc", "dateRequested": "2023-12-04T10:00:00.000Z",
            "dateConfirmed": "2023-12-04T10:02:22.280Z"
        } }
    }))
    .unwrap()
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn verifier() -> WebhookVerifier {
    WebhookVerifier::new(SecretString::from(SECRET.to_owned()))
}

#[test]
fn good_signature_passes_and_the_event_is_typed() {
    let body = body();
    let event = verifier()
        .verify_at(Some(&sign(SECRET, &body)), &body, SENT + 10)
        .unwrap();
    assert_eq!(event.kind, WebhookEventKind::TransferConfirmed);
    let EventData::Transfer(transfer) = event.data else {
        panic!("{:?}", event.data)
    };
    assert_eq!(transfer.status, TransferStatus::Confirmed);
    assert_eq!(transfer.tx_hash.as_deref(), Some("0xabc"));
}

#[test]
fn missing_header() {
    assert_eq!(
        verifier().verify_at(None, &body(), SENT),
        Err(WebhookVerifyError::MissingSignature)
    );
}

#[test]
fn malformed_header() {
    let body = body();
    let good = sign(SECRET, &body);
    let hex_only = good.trim_start_matches("sha256=").to_owned();
    for bad in [
        hex_only.clone(),
        format!("sha1={hex_only}"),
        format!("sha256={}", &hex_only[..62]),
        format!("sha256={}zz", &hex_only[..62]),
        String::new(),
    ] {
        assert_eq!(
            verifier().verify_at(Some(&bad), &body, SENT),
            Err(WebhookVerifyError::MalformedSignature),
            "{bad}"
        );
        // The same refusal without any secret (a receiver checks this before reading one).
        assert_eq!(
            signature_digest(Some(&bad)),
            Err(WebhookVerifyError::MalformedSignature),
            "{bad}"
        );
    }
    assert_eq!(
        signature_digest(None),
        Err(WebhookVerifyError::MissingSignature)
    );
    assert_eq!(
        signature_digest(Some(&good)).map(hex::encode),
        Ok(hex_only.clone())
    );
}

#[test]
fn wrong_secret() {
    let body = body();
    assert_eq!(
        verifier().verify_at(Some(&sign("another-secret", &body)), &body, SENT),
        Err(WebhookVerifyError::SignatureMismatch)
    );
}

#[test]
fn tampered_body() {
    let body = body();
    let signature = sign(SECRET, &body);
    let tampered = String::from_utf8(body)
        .unwrap()
        .replace("\"10\"", "\"10000\"");
    assert_eq!(
        verifier().verify_at(Some(&signature), tampered.as_bytes(), SENT),
        Err(WebhookVerifyError::SignatureMismatch)
    );
}

#[test]
fn stale_at_five_minutes_fresh_just_before() {
    let body = body();
    let signature = sign(SECRET, &body);
    assert!(
        verifier()
            .verify_at(Some(&signature), &body, SENT + 299)
            .is_ok()
    );
    assert_eq!(
        verifier().verify_at(Some(&signature), &body, SENT + 300),
        Err(WebhookVerifyError::Stale { age_seconds: 300 })
    );
    assert_eq!(
        verifier().verify_at(Some(&signature), &body, SENT + 86_400),
        Err(WebhookVerifyError::Stale {
            age_seconds: 86_400
        })
    );
}

#[test]
fn from_the_future() {
    let body = body();
    let signature = sign(SECRET, &body);
    assert!(
        verifier()
            .verify_at(Some(&signature), &body, SENT - 299)
            .is_ok()
    );
    assert_eq!(
        verifier().verify_at(Some(&signature), &body, SENT - 300),
        Err(WebhookVerifyError::FromFuture { ahead_seconds: 300 })
    );
}

#[test]
fn signed_but_not_an_event() {
    let body = br#"{"hello":"world"}"#;
    assert!(matches!(
        verifier().verify_at(Some(&sign(SECRET, body)), body, SENT),
        Err(WebhookVerifyError::MalformedBody(_))
    ));
}

#[test]
fn header_map_lookup_is_case_insensitive() {
    let body = body();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "X-DFNS-WEBHOOK-SIGNATURE",
        sign(SECRET, &body).parse().unwrap(),
    );
    assert!(headers.contains_key(SIGNATURE_HEADER));
    // Freshness against the real clock fails for this old fixture, after the signature passed.
    assert!(matches!(
        verifier().verify_headers(&headers, &body),
        Err(WebhookVerifyError::Stale { .. })
    ));
    assert_eq!(
        verifier().verify_headers(&reqwest::header::HeaderMap::new(), &body),
        Err(WebhookVerifyError::MissingSignature)
    );
}
