//! Conformance of the Dfns emulator, judged by Dfns' official Rust SDK (`dfns-sdk-rust`).
//!
//! The core scenario of the TypeScript conformance test, through the Rust SDK's own transport and
//! its user-action signing (our [`Ed25519KeySigner`] implements the SDK's `UserActionSigner`): sign
//! in with the seeded service-account key, create a tagged wallet, tag and untag it, fund it
//! through the emulator's control API, transfer with an `externalId` twice, list; then a transfer
//! held by a `RequestApproval` policy that a compliance officer approves through the SDK with the
//! officer's own key, and a `Policies:Modify` change request (202). Every response is
//! decoded into the SDK's own types, so a missing field or a wrong type fails here.
//!
//! The emulator is found through `DFNS_BOOTSTRAP_FILE`; `cargo xtask test` starts it.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dfns_sdk_rust::auth::types::{
    CreateUserActionChallengeRequest, CreateUserActionSignatureRequest,
};
use dfns_sdk_rust::policies::types::{
    CreateApprovalDecisionRequest, ListApprovalsQuery, ListPoliciesQuery,
};
use dfns_sdk_rust::signer::{
    CredentialAssertion, CredentialAssertionData, UserActionChallenge, UserActionSigner,
};
use dfns_sdk_rust::types::TransferRequest;
use dfns_sdk_rust::wallets::types::{
    CreateWalletRequest, ListTransfersQuery, ListWalletsQuery, TagWalletRequest, UntagWalletRequest,
};
use dfns_sdk_rust::{DfnsClient, Options};
use ed25519_dalek::Signer as _;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const NETWORK: &str = "EthereumSepolia";
const RECIPIENT: &str = "0xb282dc7cde21717f18337a596e91ded00b79b25f";
const DEPOSIT_WEI: u128 = 1_000_000_000_000_000_000;
const TRANSFER_WEI: u128 = 10_000_000_000_000_000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bootstrap {
    base_url: String,
    service_account: Identity,
    officers: Vec<Identity>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Identity {
    user_id: String,
    token: String,
    cred_id: String,
    private_key_pem: String,
}

fn bootstrap() -> Bootstrap {
    let path = std::env::var("DFNS_BOOTSTRAP_FILE").expect(
        "DFNS_BOOTSTRAP_FILE is not set: run through `cargo xtask test` (it starts the emulator)",
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
}

/// clientData exactly as Dfns' key signers build it: `{"type":"key.get","challenge":"…"}`.
#[derive(Serialize)]
struct ClientData<'a> {
    r#type: &'a str,
    challenge: &'a str,
}

/// A key credential signing the user-action challenge with Ed25519 (what the SDK leaves to us).
struct Ed25519KeySigner {
    cred_id: String,
    key: SigningKey,
    signatures: Mutex<usize>,
}

impl Ed25519KeySigner {
    fn assertion(&self, challenge: &str) -> CredentialAssertion {
        let client_data = serde_json::to_vec(&ClientData {
            r#type: "key.get",
            challenge,
        })
        .expect("clientData serialises");
        let signature = self.key.sign(&client_data);
        *self.signatures.lock().unwrap() += 1;
        CredentialAssertion {
            kind: "Key".to_owned(),
            credential_assertion: CredentialAssertionData {
                cred_id: self.cred_id.clone(),
                client_data: URL_SAFE_NO_PAD.encode(&client_data),
                signature: URL_SAFE_NO_PAD.encode(signature.to_bytes()),
            },
        }
    }
}

#[async_trait]
impl UserActionSigner for Ed25519KeySigner {
    async fn sign(
        &self,
        challenge: &UserActionChallenge,
    ) -> Result<CredentialAssertion, dfns_sdk_rust::Error> {
        Ok(self.assertion(&challenge.challenge))
    }
}

/// The SDK calls that ran, printed at the end and written where xtask asks.
#[derive(Default)]
struct Covered(BTreeSet<&'static str>);

impl Covered {
    fn hit(&mut self, call: &'static str) {
        self.0.insert(call);
    }
    fn report(&self, signatures: usize) {
        println!(
            "Rust SDK calls exercised: {}",
            self.0.iter().copied().collect::<Vec<_>>().join(", ")
        );
        println!("user actions signed through the SDK's UserActionSigner: {signatures}");
        if let Ok(path) = std::env::var("CONFORMANCE_COVERAGE_OUT") {
            let body =
                json!({ "sdk": "dfns-sdk-rust", "calls": self.0, "userActionsSigned": signatures });
            std::fs::write(&path, body.to_string())
                .unwrap_or_else(|e| panic!("writing {path}: {e}"));
        }
    }
}

/// The emulator's control API (plain HTTP, no Dfns auth).
struct Control {
    base: String,
    http: reqwest::Client,
}

impl Control {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("control API {method} {path}: {e}"));
        let status = response.status();
        let text = response.text().await.expect("control API body");
        assert!(
            status.is_success(),
            "control API {method} {path} → {status}: {text}"
        );
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("control API answers JSON")
        }
    }
    async fn transfers_created(&self) -> u64 {
        self.call(reqwest::Method::GET, "/emulator/stats", None)
            .await["transfers"]
            .as_u64()
            .expect("/emulator/stats has a numeric `transfers`")
    }
}

fn native_balance(assets: &[Value]) -> u128 {
    let native = assets
        .iter()
        .find(|a| a["kind"] == "Native")
        .expect("a Native asset");
    native["balance"]
        .as_str()
        .expect("balance is a string")
        .parse()
        .expect("balance is an integer")
}

#[tokio::test]
async fn official_rust_sdk_core_scenario() {
    let boot = bootstrap();
    let me = &boot.service_account;
    let signer = Arc::new(Ed25519KeySigner {
        cred_id: me.cred_id.clone(),
        key: SigningKey::from_pkcs8_pem(&me.private_key_pem)
            .expect("the service account key is PKCS#8 Ed25519"),
        signatures: Mutex::new(0),
    });
    let client = DfnsClient::new(Options {
        base_url: boot.base_url.clone(),
        auth_token: me.token.clone(),
        signer: Some(signer.clone()),
        http: None,
    })
    .expect("SDK client");
    let control = Control {
        base: boot.base_url.trim_end_matches('/').to_owned(),
        http: reqwest::Client::new(),
    };
    let mut covered = Covered::default();
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            & 0xffff_ffff
    );

    // Sign in: the challenge/assertion exchange through the SDK's auth client.
    let challenge = client
        .auth
        .create_user_action_challenge(CreateUserActionChallengeRequest {
            user_action_server_kind: Some("Api".to_owned()),
            user_action_http_method: "POST".to_owned(),
            user_action_http_path: "/wallets".to_owned(),
            user_action_payload: json!({ "network": NETWORK }).to_string(),
        })
        .await
        .expect("auth.create_user_action_challenge");
    covered.hit("auth.create_user_action_challenge");
    let offered: Vec<&str> = challenge.allow_credentials["key"]
        .as_array()
        .expect("allowCredentials.key is a list")
        .iter()
        .filter_map(|k| k["id"].as_str())
        .collect();
    assert!(
        offered.contains(&me.cred_id.as_str()),
        "allowCredentials.key {offered:?} lacks {}",
        me.cred_id
    );
    let assertion = signer.assertion(&challenge.challenge);
    let signed_in = client
        .auth
        .create_user_action_signature(CreateUserActionSignatureRequest {
            challenge_identifier: challenge.challenge_identifier.clone(),
            first_factor: serde_json::to_value(&assertion).unwrap(),
            second_factor: None,
        })
        .await
        .expect("auth.create_user_action_signature");
    covered.hit("auth.create_user_action_signature");
    assert!(!signed_in.user_action.is_empty());

    // A tagged wallet with an externalId (user-action signed by the SDK transport).
    let external_id = format!("rust-conf-{run}");
    let wallet = client
        .wallets
        .create_wallet(CreateWalletRequest {
            network: NETWORK.to_owned(),
            name: Some(format!("rust conformance {run}")),
            signing_key: None,
            delegate_to: None,
            delay_delegation: None,
            external_id: Some(external_id.clone()),
            tags: Some(vec!["conformance".to_owned(), format!("run:{run}")]),
        })
        .await
        .expect("wallets.create_wallet");
    covered.hit("wallets.create_wallet");
    assert!(wallet.id.starts_with("wa-"), "wallet id {}", wallet.id);
    assert_eq!(wallet.network, NETWORK);
    assert_eq!(wallet.external_id.as_deref(), Some(external_id.as_str()));
    assert_eq!(wallet.status, "Active");
    assert!(wallet.custodial);
    let address = wallet
        .address
        .clone()
        .expect("an EVM wallet has an address");
    assert!(
        address.len() == 42
            && address.starts_with("0x")
            && address[2..]
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "EVM address, lowercase hex: {address}"
    );
    let mut tags: Vec<String> = wallet.tags.clone();
    tags.sort();
    assert_eq!(tags, vec!["conformance".to_owned(), format!("run:{run}")]);

    // Tag, untag, read back.
    client
        .wallets
        .tag_wallet(
            wallet.id.clone(),
            TagWalletRequest {
                tags: vec!["vip".to_owned()],
            },
        )
        .await
        .expect("wallets.tag_wallet");
    covered.hit("wallets.tag_wallet");
    let got = client
        .wallets
        .get_wallet(wallet.id.clone())
        .await
        .expect("wallets.get_wallet");
    covered.hit("wallets.get_wallet");
    assert!(
        got.tags.contains(&"vip".to_owned()),
        "tags after tagging: {:?}",
        got.tags
    );
    // The platform's service account holds no Wallets:Tags:Delete (docs/dfns.md §9: an untag
    // could take a wallet out of its rules); granted here, as to a misconfigured account, to
    // cover the call.
    control
        .call(
            reqwest::Method::POST,
            "/emulator/permissions",
            Some(json!({ "userId": me.user_id, "operations": ["Wallets:Tags:Delete"] })),
        )
        .await;
    client
        .wallets
        .untag_wallet(
            wallet.id.clone(),
            UntagWalletRequest {
                tags: vec!["vip".to_owned()],
            },
        )
        .await
        .expect("wallets.untag_wallet");
    covered.hit("wallets.untag_wallet");
    let got = client
        .wallets
        .get_wallet(wallet.id.clone())
        .await
        .expect("wallets.get_wallet");
    assert!(
        !got.tags.contains(&"vip".to_owned()),
        "tags after untagging: {:?}",
        got.tags
    );
    assert_eq!(got.tags.len(), 2);

    // Fund it, then read the balance through the SDK.
    control
        .call(
            reqwest::Method::POST,
            "/emulator/deposits",
            Some(json!({ "walletId": wallet.id, "kind": "Native", "amount": DEPOSIT_WEI.to_string() })),
        )
        .await;
    let assets = client
        .wallets
        .get_wallet_assets(wallet.id.clone(), None)
        .await
        .expect("wallets.get_wallet_assets");
    covered.hit("wallets.get_wallet_assets");
    assert_eq!(native_balance(&assets.assets), DEPOSIT_WEI);
    let history = client
        .wallets
        .get_wallet_history(wallet.id.clone(), None)
        .await
        .expect("wallets.get_wallet_history");
    covered.hit("wallets.get_wallet_history");
    assert_eq!(history.items.len(), 1, "one deposit, one history entry");
    assert_eq!(history.items[0]["direction"], "In");

    // Transfer with an externalId, then the very same request again.
    control
        .call(
            reqwest::Method::PUT,
            "/emulator/transfer-lifecycle",
            Some(json!({ "mode": "auto", "delayMs": 50 })),
        )
        .await;
    let before = control.transfers_created().await;
    let body = json!({ "kind": "Native", "to": RECIPIENT, "amount": TRANSFER_WEI.to_string(), "externalId": format!("rust-conf-{run}-xfr") });
    let first = client
        .wallets
        .transfer_asset(wallet.id.clone(), body.clone())
        .await
        .expect("wallets.transfer_asset");
    covered.hit("wallets.transfer_asset");
    assert!(first.id.starts_with("xfr-"), "transfer id {}", first.id);
    assert_eq!(first.wallet_id, wallet.id);
    assert_eq!(first.request_body, body, "requestBody echoes the request");
    assert_eq!(
        first.external_id,
        body["externalId"].as_str().map(str::to_owned)
    );
    assert_eq!(first.requester.user_id, me.user_id);
    let again = client
        .wallets
        .transfer_asset(wallet.id.clone(), body.clone())
        .await
        .expect("wallets.transfer_asset (repeat)");
    assert_eq!(
        again.id, first.id,
        "the same externalId and body must return the same transfer"
    );
    assert_eq!(
        control.transfers_created().await,
        before + 1,
        "the repeat must not create a second transfer"
    );

    // Same externalId, different body: 409.
    let mut other = body.clone();
    other["amount"] = json!("1");
    match client
        .wallets
        .transfer_asset(wallet.id.clone(), other)
        .await
    {
        Err(dfns_sdk_rust::Error::Api { status, .. })
        | Err(dfns_sdk_rust::Error::ApiRaw { status, .. }) => {
            assert_eq!(status, 409, "externalId reused with another body")
        }
        other => panic!("externalId reused with another body: expected a 409 error, got {other:?}"),
    }

    // It reaches Confirmed, and the balance pays amount + fee.
    let deadline = Instant::now() + Duration::from_secs(15);
    let done = loop {
        let transfer = client
            .wallets
            .get_transfer(wallet.id.clone(), first.id.clone())
            .await
            .expect("wallets.get_transfer");
        covered.hit("wallets.get_transfer");
        if matches!(
            transfer.status.as_str(),
            "Confirmed" | "Failed" | "Rejected"
        ) {
            break transfer;
        }
        assert!(
            Instant::now() < deadline,
            "transfer still {} after 15 s",
            transfer.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done.status, "Confirmed", "reason: {:?}", done.reason);
    let fee: u128 = done
        .fee
        .as_deref()
        .expect("a confirmed transfer has a fee")
        .parse()
        .expect("fee is an integer");
    assert!(
        done.tx_hash
            .as_deref()
            .is_some_and(|h| h.len() == 66 && h.starts_with("0x")),
        "txHash {:?}",
        done.tx_hash
    );
    let assets = client
        .wallets
        .get_wallet_assets(wallet.id.clone(), None)
        .await
        .expect("wallets.get_wallet_assets");
    assert_eq!(
        native_balance(&assets.assets),
        DEPOSIT_WEI - TRANSFER_WEI - fee
    );

    // Lists.
    let transfers = client
        .wallets
        .list_transfers(
            wallet.id.clone(),
            Some(ListTransfersQuery {
                limit: Some(50),
                pagination_token: None,
            }),
        )
        .await
        .expect("wallets.list_transfers");
    covered.hit("wallets.list_transfers");
    assert_eq!(transfers.wallet_id, wallet.id);
    let listed: Vec<&TransferRequest> = transfers
        .items
        .iter()
        .filter(|t| t.id == first.id)
        .collect();
    assert_eq!(listed.len(), 1, "the transfer is listed exactly once");
    assert_eq!(listed[0].status, "Confirmed");

    let mut found = false;
    let mut token: Option<String> = None;
    for _ in 0..1000 {
        let page = client
            .wallets
            .list_wallets(Some(ListWalletsQuery {
                limit: Some(100),
                pagination_token: token.clone(),
                owner: None,
                owner_id: None,
                owner_username: None,
            }))
            .await
            .expect("wallets.list_wallets");
        covered.hit("wallets.list_wallets");
        found |= page
            .items
            .iter()
            .any(|w| w.id == wallet.id && w.external_id.as_deref() == Some(external_id.as_str()));
        token = page.next_page_token;
        if token.is_none() {
            break;
        }
    }
    assert!(found, "list_wallets must include the new wallet");

    // Policies and approvals (docs/dfns.md §4–5): a transfer held by a RequestApproval policy is
    // approved by a compliance officer signing through the SDK with the officer's own Ed25519 key;
    // under a Policies:Modify policy an update answers 202 with a change request.
    let officer = boot
        .officers
        .iter()
        .find(|o| SigningKey::from_pkcs8_pem(&o.private_key_pem).is_ok())
        .expect("the bootstrap seeds an officer with an Ed25519 key");
    let officer_signer = Arc::new(Ed25519KeySigner {
        cred_id: officer.cred_id.clone(),
        key: SigningKey::from_pkcs8_pem(&officer.private_key_pem).expect("officer key"),
        signatures: Mutex::new(0),
    });
    let officer_client = DfnsClient::new(Options {
        base_url: boot.base_url.clone(),
        auth_token: officer.token.clone(),
        signer: Some(officer_signer.clone()),
        http: None,
    })
    .expect("officer SDK client");
    let approval_policy = json!({
        "name": format!("rust conformance approval {run}"),
        "activityKind": "Wallets:Sign",
        "rule": { "kind": "AlwaysTrigger" },
        "action": {
            "kind": "RequestApproval",
            "approvalGroups": [{ "quorum": 1, "approvers": { "userId": { "in": [officer.user_id] } } }],
        },
        "filters": { "walletId": { "in": [wallet.id] } },
    });
    let created = client
        .policies
        .create_policy(approval_policy.clone())
        .await
        .expect("policies.create_policy");
    covered.hit("policies.create_policy");
    let policy_id = created["id"].as_str().expect("policy id").to_owned();
    assert!(policy_id.starts_with("plc-"), "policy id {policy_id}");
    assert_eq!(created["status"], "Active");
    let got = client
        .policies
        .get_policy(policy_id.clone())
        .await
        .expect("policies.get_policy");
    covered.hit("policies.get_policy");
    assert!(got.pending_change_request.is_none());
    let listed = client
        .policies
        .list_policies(Some(ListPoliciesQuery {
            limit: Some("100".to_owned()),
            pagination_token: None,
            status: Some("Active".to_owned()),
        }))
        .await
        .expect("policies.list_policies");
    covered.hit("policies.list_policies");
    assert!(listed.items.iter().any(|p| p["id"] == policy_id.as_str()));

    let held = client
        .wallets
        .transfer_asset(
            wallet.id.clone(),
            json!({ "kind": "Native", "to": RECIPIENT, "amount": TRANSFER_WEI.to_string() }),
        )
        .await
        .expect("wallets.transfer_asset (held)");
    assert_eq!(held.status, "Pending");
    let approval_id = held
        .approval_id
        .clone()
        .expect("held for approval: approvalId");
    let waiting = officer_client
        .policies
        .list_approvals(Some(ListApprovalsQuery {
            limit: None,
            pagination_token: None,
            status: Some("Pending".to_owned()),
            initiator_id: Some(boot.service_account.user_id.clone()),
            approver_id: Some(officer.user_id.clone()),
        }))
        .await
        .expect("policies.list_approvals");
    covered.hit("policies.list_approvals");
    assert!(waiting.items.iter().any(|a| a.id == approval_id));
    let approval = officer_client
        .policies
        .get_approval(approval_id.clone())
        .await
        .expect("policies.get_approval");
    covered.hit("policies.get_approval");
    assert_eq!(approval.activity["transferRequest"]["id"], held.id.as_str());
    match client
        .policies
        .create_approval_decision(
            approval_id.clone(),
            CreateApprovalDecisionRequest {
                value: "Approved".to_owned(),
                reason: None,
            },
        )
        .await
    {
        Err(dfns_sdk_rust::Error::Api { status, .. })
        | Err(dfns_sdk_rust::Error::ApiRaw { status, .. }) => {
            assert_eq!(status, 403, "a service account cannot approve")
        }
        other => panic!("service account approving: expected a 403, got {other:?}"),
    }
    let decided = officer_client
        .policies
        .create_approval_decision(
            approval_id.clone(),
            CreateApprovalDecisionRequest {
                value: "Approved".to_owned(),
                reason: Some("reviewed".to_owned()),
            },
        )
        .await
        .expect("policies.create_approval_decision");
    covered.hit("policies.create_approval_decision");
    assert_eq!(decided.status, "Approved");
    assert_eq!(decided.decisions[0]["userId"], officer.user_id.as_str());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let t = client
            .wallets
            .get_transfer(wallet.id.clone(), held.id.clone())
            .await
            .expect("wallets.get_transfer (approved)");
        if t.status == "Confirmed" {
            assert!(t.date_policy_resolved.is_some());
            break;
        }
        assert!(
            Instant::now() < deadline && t.status != "Rejected" && t.status != "Failed",
            "approved transfer ended {} ({:?})",
            t.status,
            t.reason
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    client
        .policies
        .create_policy(json!({
            "name": format!("rust conformance four eyes {run}"),
            "activityKind": "Policies:Modify",
            "rule": { "kind": "AlwaysTrigger" },
            "action": {
                "kind": "RequestApproval",
                "approvalGroups": [{ "quorum": 1, "approvers": { "userId": { "in": [officer.user_id] } } }],
            },
            "filters": { "policyId": { "in": [policy_id] } },
        }))
        .await
        .expect("policies.create_policy (Policies:Modify)");
    let mut renamed = approval_policy.clone();
    renamed["name"] = json!(format!("rust conformance approval {run} v2"));
    let change = client
        .policies
        .update_policy(policy_id.clone(), renamed)
        .await
        .expect("policies.update_policy (202 is a success for the SDK)");
    covered.hit("policies.update_policy");
    assert_eq!(
        change["kind"], "Policy",
        "a change request, not a policy: {change}"
    );
    assert_eq!(change["status"], "Pending");
    assert_eq!(change["entityId"], policy_id.as_str());
    let archive = client.policies.delete_policy(policy_id.clone()).await;
    match archive {
        Err(dfns_sdk_rust::Error::Api { status, .. })
        | Err(dfns_sdk_rust::Error::ApiRaw { status, .. }) => {
            assert_eq!(status, 409, "a second change while one is pending")
        }
        other => panic!("archive while a change is pending: expected a 409, got {other:?}"),
    }
    covered.hit("policies.delete_policy");
    let pending = client
        .policies
        .get_policy(policy_id.clone())
        .await
        .expect("policies.get_policy (pending)");
    assert_eq!(
        pending
            .pending_change_request
            .as_ref()
            .map(|c| c["id"].clone()),
        Some(change["id"].clone())
    );

    let signatures = *signer.signatures.lock().unwrap();
    // Every mutating call went through the SDK's user-action signing with our signer.
    assert!(
        signatures >= 7,
        "only {signatures} user actions were signed"
    );
    covered.report(signatures);
}
