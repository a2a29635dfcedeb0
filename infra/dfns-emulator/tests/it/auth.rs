//! Bearer and user-action signing as Dfns enforces them (docs/dfns.md §2).

use crate::common;

use crate::common::{Client, Harness};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn no_bearer_is_401_and_unsigned_mutation_is_403() {
    let h = Harness::start().await;
    let body = json!({ "network": "EthereumSepolia" }).to_string();

    let no_bearer = h.sa.send(Method::GET, "/wallets", None, None, false).await;
    assert_eq!(no_bearer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(no_bearer.json()["error"]["status"], 401);

    let bad_bearer =
        h.sa.http
            .get(format!("{}/wallets", h.base()))
            .bearer_auth("eyJhbGciOiJIUzI1NiJ9.e30.forged")
            .send()
            .await
            .unwrap();
    assert_eq!(bad_bearer.status(), StatusCode::UNAUTHORIZED);

    let unsigned =
        h.sa.send(Method::POST, "/wallets", Some(&body), None, true)
            .await;
    assert_eq!(unsigned.status, StatusCode::FORBIDDEN);
    let error = unsigned.json();
    assert_eq!(error["error"]["status"], 403);
    assert!(error["error"]["id"].is_string());
    assert!(unsigned.error_message().contains("user action"));

    // Nothing was created by the refused calls.
    let list = h.sa.get("/wallets").await.ok();
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn a_user_action_token_works_once() {
    let h = Harness::start().await;
    let body = json!({ "network": "EthereumSepolia", "name": "once" }).to_string();
    let token = h.sa.user_action("POST", "/wallets", &body).await;

    let first =
        h.sa.send(Method::POST, "/wallets", Some(&body), Some(&token), true)
            .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);

    let replay =
        h.sa.send(Method::POST, "/wallets", Some(&body), Some(&token), true)
            .await;
    assert_eq!(replay.status, StatusCode::FORBIDDEN);
    assert!(
        replay.error_message().contains("already been used"),
        "{}",
        replay.text
    );

    let list = h.sa.get("/wallets").await.ok();
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        1,
        "replay created a second wallet"
    );
}

#[tokio::test]
async fn a_token_signed_for_one_request_does_not_authorise_another() {
    let h = Harness::start().await;
    let signed_body = json!({ "network": "EthereumSepolia", "name": "a" }).to_string();
    let other_body = json!({ "network": "EthereumSepolia", "name": "b" }).to_string();
    let token = h.sa.user_action("POST", "/wallets", &signed_body).await;

    let other =
        h.sa.send(
            Method::POST,
            "/wallets",
            Some(&other_body),
            Some(&token),
            true,
        )
        .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    assert!(other.error_message().contains("payload"), "{}", other.text);

    let wrong_path =
        h.sa.send(
            Method::POST,
            "/webhooks",
            Some(&signed_body),
            Some(&token),
            true,
        )
        .await;
    assert_eq!(wrong_path.status, StatusCode::FORBIDDEN);

    // The token was not burnt by the mismatches: the request it was signed for still works, and
    // the same JSON with different whitespace is the same payload.
    let spaced = serde_json::to_string_pretty(
        &serde_json::from_str::<serde_json::Value>(&signed_body).unwrap(),
    )
    .unwrap();
    let ok =
        h.sa.send(Method::POST, "/wallets", Some(&spaced), Some(&token), true)
            .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.json()["name"], "a");
}

#[tokio::test]
async fn another_users_token_is_refused() {
    let h = Harness::start().await;
    let admin = Client::new(&h.base(), &h.emulator.bootstrap().admin);
    let body = json!({ "network": "EthereumSepolia" }).to_string();
    let admins_token = admin.user_action("POST", "/wallets", &body).await;
    let stolen =
        h.sa.send(
            Method::POST,
            "/wallets",
            Some(&body),
            Some(&admins_token),
            true,
        )
        .await;
    assert_eq!(stolen.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn p256_officer_signs_and_is_refused_an_operation_it_lacks() {
    let h = Harness::start().await;
    assert!(
        matches!(h.officer.key, common::TestKey::P256(_)),
        "officer 0 must be P-256"
    );
    let created = h
        .officer
        .signed(
            Method::POST,
            "/wallets",
            &json!({ "network": "EthereumSepolia" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::FORBIDDEN);
    assert!(
        created.error_message().contains("(Wallets:Create)"),
        "403 must name the operation: {}",
        created.text
    );
}

#[tokio::test]
async fn challenge_flow_refuses_bad_signatures_reuse_and_expiry() {
    let h = Harness::start().await;
    let init = json!({
        "userActionHttpMethod": "POST",
        "userActionHttpPath": "/wallets",
        "userActionPayload": "{}",
    })
    .to_string();
    let challenge =
        h.sa.send(Method::POST, "/auth/action/init", Some(&init), None, true)
            .await
            .ok();
    assert_eq!(challenge["supportedCredentialKinds"][0]["kind"], "Key");
    assert_eq!(challenge["userVerification"], "required");

    // Signed by a key that is not the credential's.
    let impostor = Client::new(&h.base(), &h.emulator.bootstrap().officers[1]);
    let mut forged = impostor.assertion(&challenge);
    forged["credId"] = json!(h.sa.identity.cred_id);
    let body = json!({
        "challengeIdentifier": challenge["challengeIdentifier"],
        "firstFactor": { "kind": "Key", "credentialAssertion": forged },
    })
    .to_string();
    let refused =
        h.sa.send(Method::POST, "/auth/action", Some(&body), None, true)
            .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert!(refused.error_message().contains("signature"));

    // The genuine signature works once, then the challenge is spent.
    let body = json!({
        "challengeIdentifier": challenge["challengeIdentifier"],
        "firstFactor": { "kind": "Key", "credentialAssertion": h.sa.assertion(&challenge) },
    })
    .to_string();
    let token =
        h.sa.send(Method::POST, "/auth/action", Some(&body), None, true)
            .await
            .ok();
    assert!(token["userAction"].is_string());
    let again =
        h.sa.send(Method::POST, "/auth/action", Some(&body), None, true)
            .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);

    // Tokens are short-lived on the emulated clock.
    let token = h.sa.user_action("POST", "/wallets", "{}").await;
    h.control(Method::POST, "/clock/advance", json!({ "seconds": 301 }))
        .await;
    let late =
        h.sa.send(Method::POST, "/wallets", Some("{}"), Some(&token), true)
            .await;
    assert_eq!(late.status, StatusCode::FORBIDDEN);
    assert!(late.error_message().contains("expired"), "{}", late.text);
}
