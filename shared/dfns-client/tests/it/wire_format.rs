//! What goes over the wire, byte for byte, recorded by a scripted HTTP server on loopback: the
//! signed payload equals the body sent, every attempt is signed afresh, query strings and bodies
//! match docs/dfns.md. The scripted answers are the documented response fixtures; the emulator
//! tests exercise the same calls against behaviour.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dfns_client::approvals::{ApprovalsQuery, DecisionValue};
use dfns_client::policies::{PoliciesQuery, PolicyFilters, WalletTagsFilter};
use dfns_client::{
    ActivityKind, Amount, ApprovalId, ClientConfig, DfnsClient, Error, ExternalId, KeySigner,
    PolicyAction, PolicyBody, PolicyId, PolicyRule, PolicyStatus, RetryPolicy, SecretString,
    TransferAsset, TransferOutcome, UpdateOutcome, WalletId,
};
use futures::TryStreamExt as _;
use p256::ecdsa::signature::Verifier as _;
use serde_json::{Value, json};

const CRED: &str = "cred-wire-1";
const TOKEN: &str = "eyJ.service-account.token";

#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
}

impl Recorded {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct Script {
    records: Vec<Recorded>,
    answers: HashMap<(Method, String), VecDeque<(u16, Value)>>,
    challenges: u32,
    user_actions: u32,
}

#[derive(Clone)]
struct Server {
    script: Arc<Mutex<Script>>,
    public_key: p256::ecdsa::VerifyingKey,
}

async fn handle(
    State(server): State<Server>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let mut script = server.script.lock().unwrap();
    script.records.push(Recorded {
        method: method.clone(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers,
        body: body.clone(),
    });
    let reply = |status: u16, value: Value| {
        (StatusCode::from_u16(status).unwrap(), axum::Json(value)).into_response()
    };
    match (method.as_str(), uri.path()) {
        ("POST", "/auth/action/init") => {
            script.challenges += 1;
            let n = script.challenges;
            reply(
                200,
                json!({
                    "challenge": format!("Y2gt{n}"),
                    "challengeIdentifier": format!("ci-{n}"),
                    "allowCredentials": { "key": [{ "type": "public-key", "id": CRED }], "webauthn": [] },
                    "supportedCredentialKinds": [{ "kind": "Key", "factor": "first", "requiresSecondFactor": false }],
                    "userVerification": "required",
                    "attestation": "none",
                    "externalAuthenticationUrl": "https://example.invalid"
                }),
            )
        }
        ("POST", "/auth/action") => {
            let request: Value = serde_json::from_slice(&body).unwrap();
            let assertion = &request["firstFactor"]["credentialAssertion"];
            let client_data = URL_SAFE_NO_PAD
                .decode(assertion["clientData"].as_str().unwrap())
                .unwrap();
            let signature = URL_SAFE_NO_PAD
                .decode(assertion["signature"].as_str().unwrap())
                .unwrap();
            let n: u32 = request["challengeIdentifier"].as_str().unwrap()[3..]
                .parse()
                .unwrap();
            let expected = format!(r#"{{"type":"key.get","challenge":"Y2gt{n}"}}"#);
            let valid = request["firstFactor"]["kind"] == "Key"
                && assertion["credId"] == CRED
                && client_data == expected.as_bytes()
                && p256::ecdsa::Signature::from_der(&signature)
                    .is_ok_and(|s| server.public_key.verify(&client_data, &s).is_ok());
            if !valid {
                return reply(401, json!({"error": {"message": "bad assertion"}}));
            }
            script.user_actions += 1;
            let n = script.user_actions;
            reply(200, json!({ "userAction": format!("ua-{n}") }))
        }
        _ => {
            let key = (method, uri.path().to_owned());
            match script.answers.get_mut(&key).and_then(VecDeque::pop_front) {
                Some((status, Value::String(raw))) => {
                    (StatusCode::from_u16(status).unwrap(), raw).into_response()
                }
                Some((status, value)) => {
                    let mut response = reply(status, value);
                    if status == 503 || status == 429 {
                        response
                            .headers_mut()
                            .insert("retry-after", "0".parse().unwrap());
                    }
                    response
                }
                None => reply(404, json!({"error": {"message": "no scripted answer"}})),
            }
        }
    }
}

struct Harness {
    server: Server,
    client: DfnsClient,
}

impl Harness {
    async fn new() -> Self {
        use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
        let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let server = Server {
            script: Arc::default(),
            public_key: *key.verifying_key(),
        };
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let signer = KeySigner::from_pkcs8_pem(CRED, &SecretString::from(pem)).unwrap();
        let config =
            ClientConfig::new(SecretString::from(TOKEN.to_owned()), Some(Arc::new(signer)))
                .with_base_url(base_url)
                .with_retry(RetryPolicy {
                    initial_backoff: Duration::from_millis(10),
                    max_backoff: Duration::from_millis(50),
                    deadline: Duration::from_secs(5),
                    max_attempts: 5,
                });
        Self {
            server,
            client: DfnsClient::new(config).unwrap(),
        }
    }

    fn answer(&self, method: Method, path: &str, status: u16, body: Value) {
        self.server
            .script
            .lock()
            .unwrap()
            .answers
            .entry((method, path.to_owned()))
            .or_default()
            .push_back((status, body));
    }

    fn records(&self) -> Vec<Recorded> {
        self.server.script.lock().unwrap().records.clone()
    }

    /// The non-signing requests, in order.
    fn calls(&self) -> Vec<Recorded> {
        self.records()
            .into_iter()
            .filter(|r| !r.path.starts_with("/auth/action"))
            .collect()
    }
}

fn policy_fixture(id: &str, status: &str) -> Value {
    json!({
      "id": id, "name": "client 42 whitelist", "status": status, "activityKind": "Wallets:Sign",
      "rule": { "kind": "TransactionRecipientWhitelist", "configuration": { "addresses": ["0xb282dc7cde21717f18337a596e91ded00b79b25f"] } },
      "action": { "kind": "RequestApproval", "approvalGroups": [ { "name": "Compliance", "quorum": 1, "approvers": { "userId": { "in": ["us-1", "us-2"] } } } ], "autoRejectTimeout": 1440 },
      "filters": { "walletTags": { "hasAll": ["client:42"] } },
      "dateCreated": "2024-06-28T09:09:54.437Z", "dateUpdated": "2024-06-28T09:09:54.437Z"
    })
}

fn change_request_fixture(policy_id: &str) -> Value {
    json!({
      "id": "cr-2100g-xxxxxxxxxxxxxxxx", "kind": "Policy", "operationKind": "Update", "status": "Pending",
      "requester": { "userId": "us-sa", "tokenId": "to-1" }, "entityId": policy_id,
      "approvalId": "ap-2a9in-tt2a1-983lho480p35ejd0", "dateCreated": "2023-12-22T20:57:55.814Z",
      "body": policy_fixture(policy_id, "Active")
    })
}

fn approval_fixture(status: &str) -> Value {
    json!({
      "id": "ap-2a9in-tt2a1-983lho480p35ejd0", "initiatorId": "us-sa", "status": status,
      "activity": { "kind": "Policies:Modify", "changeRequest": change_request_fixture("plc-1") },
      "policyEvaluations": [ { "policyId": "plc-gov", "triggered": true, "reason": "always", "context": {} } ],
      "decisions": [], "expirationDate": "2023-12-22T21:16:16.659Z",
      "dateCreated": "2023-12-22T20:56:16.662Z", "dateUpdated": "2023-12-22T20:56:16.662Z"
    })
}

fn whitelist_body() -> PolicyBody {
    PolicyBody {
        name: "client 42 whitelist".into(),
        activity_kind: ActivityKind::WalletsSign,
        rule: PolicyRule::recipient_whitelist(
            ["0xb282dc7cde21717f18337a596e91ded00b79b25f".into()],
        ),
        action: PolicyAction::Block,
        filters: Some(PolicyFilters {
            wallet_tags: Some(WalletTagsFilter {
                has_all: Some(vec!["client:42".into()]),
                has_any: None,
            }),
            ..Default::default()
        }),
    }
}

#[tokio::test]
async fn signed_payload_is_the_exact_body_and_every_attempt_is_signed_afresh() {
    let h = Harness::new().await;
    h.answer(
        Method::PUT,
        "/wallets/wa-1/tags",
        503,
        json!({"error": {"message": "busy"}}),
    );
    h.answer(Method::PUT, "/wallets/wa-1/tags", 200, json!({}));
    // Characters JSON may write in several ways: the signed text must still be the sent text.
    let tags = vec!["client:é\"42\"/<>".to_owned(), "\u{1F600}".to_owned()];
    h.client
        .tag_wallet(&WalletId::new("wa-1"), &tags)
        .await
        .unwrap();

    let records = h.records();
    let sequence: Vec<_> = records
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        sequence,
        [
            "POST /auth/action/init",
            "POST /auth/action",
            "PUT /wallets/wa-1/tags",
            "POST /auth/action/init",
            "POST /auth/action",
            "PUT /wallets/wa-1/tags",
        ]
    );
    let mut tokens = Vec::new();
    for triple in records.chunks(3) {
        let (init, call) = (&triple[0], &triple[2]);
        let init = init.json();
        assert_eq!(init["userActionHttpMethod"], "PUT");
        assert_eq!(init["userActionHttpPath"], "/wallets/wa-1/tags");
        assert_eq!(init["userActionServerKind"], "Api");
        assert_eq!(
            init["userActionPayload"].as_str().unwrap().as_bytes(),
            &call.body[..],
            "signed payload and sent body differ"
        );
        assert_eq!(call.json(), json!({ "tags": tags }));
        assert_eq!(call.headers["authorization"], format!("Bearer {TOKEN}"));
        assert_eq!(call.headers["content-type"], "application/json");
        tokens.push(
            call.headers["x-dfns-useraction"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
        // Init and complete carry the bearer but no user action.
        assert_eq!(
            triple[0].headers["authorization"],
            format!("Bearer {TOKEN}")
        );
        assert!(triple[1].headers.get("x-dfns-useraction").is_none());
    }
    assert_eq!(tokens, ["ua-1", "ua-2"], "a fresh user action per attempt");
}

#[tokio::test]
async fn reads_carry_no_user_action_and_send_documented_query_strings() {
    let h = Harness::new().await;
    h.answer(
        Method::GET,
        "/v2/policies",
        200,
        json!({"items": [policy_fixture("plc-1", "Active")], "nextPageToken": "page two/+="}),
    );
    h.answer(
        Method::GET,
        "/v2/policies",
        200,
        json!({"items": [policy_fixture("plc-2", "Active")]}),
    );
    let policies: Vec<_> = h
        .client
        .list_policies(&PoliciesQuery {
            status: Some(PolicyStatus::Active),
            page_size: Some(1),
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        policies.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        ["plc-1", "plc-2"]
    );
    let calls = h.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].query.as_deref(), Some("limit=1&status=Active"));
    assert_eq!(
        calls[1].query.as_deref(),
        Some("limit=1&status=Active&paginationToken=page+two%2F%2B%3D")
    );
    assert!(
        calls
            .iter()
            .all(|c| c.headers.get("x-dfns-useraction").is_none())
    );
    assert!(calls.iter().all(|c| c.body.is_empty()));
    assert_eq!(h.records().len(), 2, "no signing round trip for reads");
}

#[tokio::test]
async fn policies_create_get_update_pending_archive_from_documented_fixtures() {
    let h = Harness::new().await;
    h.answer(
        Method::POST,
        "/v2/policies",
        200,
        policy_fixture("plc-1", "Active"),
    );
    let mut with_pending = policy_fixture("plc-1", "Active");
    with_pending["pendingChangeRequest"] = change_request_fixture("plc-1");
    h.answer(Method::GET, "/v2/policies/plc-1", 200, with_pending);
    h.answer(
        Method::PUT,
        "/v2/policies/plc-1",
        202,
        change_request_fixture("plc-1"),
    );
    h.answer(
        Method::PUT,
        "/v2/policies/plc-1",
        200,
        policy_fixture("plc-1", "Active"),
    );
    h.answer(
        Method::DELETE,
        "/v2/policies/plc-1",
        200,
        policy_fixture("plc-1", "Archived"),
    );

    let created = h.client.create_policy(&whitelist_body()).await.unwrap();
    assert_eq!(created.id.as_str(), "plc-1");
    let sent = h.calls()[0].json();
    assert_eq!(
        sent,
        json!({
            "name": "client 42 whitelist", "activityKind": "Wallets:Sign",
            "rule": { "kind": "TransactionRecipientWhitelist", "configuration": { "addresses": ["0xb282dc7cde21717f18337a596e91ded00b79b25f"] } },
            "action": { "kind": "Block" },
            "filters": { "walletTags": { "hasAll": ["client:42"] } }
        })
    );

    let fetched = h.client.get_policy(&PolicyId::new("plc-1")).await.unwrap();
    let pending = fetched
        .pending_change_request
        .expect("pending change request");
    assert_eq!(
        pending.approval_id.as_ref().unwrap().as_str(),
        "ap-2a9in-tt2a1-983lho480p35ejd0"
    );

    match h
        .client
        .update_policy(&PolicyId::new("plc-1"), &whitelist_body())
        .await
        .unwrap()
    {
        UpdateOutcome::Pending(change) => {
            assert_eq!(change.entity_id, "plc-1");
            assert_eq!(
                change.proposed_policy().unwrap().name,
                "client 42 whitelist"
            );
        }
        other => panic!("202 must be Pending: {other:?}"),
    }
    assert!(matches!(
        h.client
            .update_policy(&PolicyId::new("plc-1"), &whitelist_body())
            .await
            .unwrap(),
        UpdateOutcome::Applied(_)
    ));
    match h
        .client
        .archive_policy(&PolicyId::new("plc-1"))
        .await
        .unwrap()
    {
        UpdateOutcome::Applied(policy) => assert_eq!(policy.status, PolicyStatus::Archived),
        other => panic!("{other:?}"),
    }
    let archive = h.calls().pop().unwrap();
    assert_eq!(archive.method, Method::DELETE);
    assert_eq!(&archive.body[..], b"{}");
}

#[tokio::test]
async fn approvals_list_get_and_decide_once() {
    let h = Harness::new().await;
    h.answer(
        Method::GET,
        "/v2/policy-approvals",
        200,
        json!({"items": [approval_fixture("Pending")]}),
    );
    h.answer(
        Method::GET,
        "/v2/policy-approvals/ap-2a9in-tt2a1-983lho480p35ejd0",
        200,
        approval_fixture("Pending"),
    );
    let decisions = "/v2/policy-approvals/ap-2a9in-tt2a1-983lho480p35ejd0/decisions";
    h.answer(
        Method::POST,
        decisions,
        503,
        json!({"error": {"message": "busy"}}),
    );
    let mut approved = approval_fixture("Approved");
    approved["decisions"] = json!([{ "userId": "us-o1", "date": "2023-12-22T21:00:00.000Z", "value": "Approved", "reason": "ok" }]);
    h.answer(Method::POST, decisions, 200, approved);

    let listed: Vec<_> = h
        .client
        .list_approvals(&ApprovalsQuery {
            status: Some(dfns_client::ApprovalStatus::Pending),
            approver_id: Some("us-o1".into()),
            ..Default::default()
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert!(matches!(
        listed[0].activity,
        dfns_client::Activity::PoliciesModify { .. }
    ));
    assert_eq!(
        h.calls()[0].query.as_deref(),
        Some("limit=100&status=Pending&approverId=us-o1")
    );
    let id = ApprovalId::new("ap-2a9in-tt2a1-983lho480p35ejd0");
    assert_eq!(h.client.get_approval(&id).await.unwrap().id, id);

    // A decision is never repeated: the 503 comes back as is.
    let error = h
        .client
        .decide_approval(&id, DecisionValue::Approved, Some("ok"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Api(api) if api.status == 503),
        "{error:?}"
    );
    let posts = h
        .calls()
        .into_iter()
        .filter(|c| c.path == decisions)
        .count();
    assert_eq!(posts, 1);

    let decided = h
        .client
        .decide_approval(&id, DecisionValue::Approved, Some("ok"))
        .await
        .unwrap();
    assert_eq!(decided.status, dfns_client::ApprovalStatus::Approved);
    assert_eq!(decided.decisions[0].value, DecisionValue::Approved);
    let sent = h.calls().pop().unwrap().json();
    assert_eq!(sent, json!({"value": "Approved", "reason": "ok"}));
}

#[tokio::test]
async fn a_transfer_rejected_by_policy_is_a_typed_outcome() {
    let h = Harness::new().await;
    h.answer(
        Method::POST,
        "/wallets/wa-1/transfers",
        200,
        json!({
          "id": "xfr-1", "walletId": "wa-1", "network": "EthereumSepolia",
          "requester": { "userId": "us-sa" },
          "requestBody": { "kind": "Native", "to": "0xb2", "amount": "10", "externalId": "o-1" },
          "status": "Rejected", "reason": "Transfer amount (USD 10000) is above limit (USD 5000).",
          "dateRequested": "2023-05-08T19:14:25.568Z", "datePolicyResolved": "2023-05-08T19:14:25.600Z",
          "externalId": "o-1"
        }),
    );
    let outcome = h
        .client
        .transfer(
            &WalletId::new("wa-1"),
            ExternalId::new("o-1"),
            TransferAsset::Native {
                to: "0xb2".into(),
                amount: Amount::from(10),
                memo: None,
                priority: None,
            },
        )
        .await
        .unwrap();
    assert!(outcome.is_rejected());
    assert_eq!(
        outcome.rejection_reason(),
        Some("Transfer amount (USD 10000) is above limit (USD 5000).")
    );
    assert!(matches!(outcome, TransferOutcome::Rejected(_)));
    assert_eq!(
        h.calls()[0].json(),
        json!({"kind": "Native", "to": "0xb2", "amount": "10", "externalId": "o-1"})
    );
}

#[tokio::test]
async fn non_json_and_legacy_error_bodies_still_give_status_and_message() {
    let h = Harness::new().await;
    h.answer(
        Method::GET,
        "/wallets/wa-legacy",
        400,
        json!({"message": "legacy shape"}),
    );
    let error = h
        .client
        .get_wallet(&WalletId::new("wa-legacy"))
        .await
        .unwrap_err();
    let api = error.api().unwrap();
    assert_eq!((api.status, api.message.as_str()), (400, "legacy shape"));
    assert_eq!(api.id, None);

    h.answer(
        Method::GET,
        "/wallets/wa-html",
        400,
        Value::String("<html>oops</html>".into()),
    );
    let error = h
        .client
        .get_wallet(&WalletId::new("wa-html"))
        .await
        .unwrap_err();
    let api = error.api().unwrap();
    assert_eq!((api.status, api.message.as_str()), (400, "Bad Request"));

    // Unscripted path: the server's 404 body has no id/details.
    let error = h
        .client
        .get_wallet(&WalletId::new("wa-nothing"))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(404));
    assert_eq!(error.api().unwrap().details, None);
}

#[tokio::test]
async fn unreachable_dfns_is_a_retryable_connection_error_after_retries() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener); // nothing listens there any more: connection refused
    let client = DfnsClient::new(
        ClientConfig::new(SecretString::from(TOKEN.to_owned()), None)
            .with_base_url(base_url)
            .with_retry(RetryPolicy {
                initial_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(20),
                deadline: Duration::from_secs(5),
                max_attempts: 3,
            }),
    )
    .unwrap();
    let error = client.get_wallet(&WalletId::new("wa-1")).await.unwrap_err();
    let Error::RetriesExhausted { attempts, last, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(*attempts, 3);
    assert!(matches!(**last, Error::Connection(_)), "{last:?}");
    assert!(error.is_retryable());
    assert_eq!(error.status(), None);
}

#[tokio::test]
async fn a_page_token_that_never_advances_is_an_error_not_an_endless_stream() {
    let h = Harness::new().await;
    for _ in 0..2 {
        h.answer(
            Method::GET,
            "/webhooks",
            200,
            json!({"items": [], "nextPageToken": "same"}),
        );
    }
    let result: Result<Vec<_>, _> = h.client.list_webhooks().try_collect().await;
    assert!(matches!(result, Err(Error::Decode { .. })), "{result:?}");
    assert_eq!(h.calls().len(), 2);
}

/// SPL transfers, balances and history as `@dfns/sdk` 0.8.21 types them
/// (`generated/wallets/types.d.ts`: `TransferAssetBody` kind `"Spl" | "Spl2022"`, assets kind
/// `"Spl" | "Spl2022"` with `mint`, history kind `"SplTransfer" | "Spl2022Transfer"`).
#[tokio::test]
async fn spl_transfers_balances_and_history_use_the_sdks_field_names() {
    use dfns_client::wallets::{AssetKind, BlockchainEvent, BlockchainEventKind, WalletAssets};
    const MINT: &str = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU";
    const TO: &str = "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T";
    let h = Harness::new().await;
    h.answer(
        Method::POST,
        "/wallets/wa-sol/transfers",
        200,
        json!({
          "id": "xfr-2", "walletId": "wa-sol", "network": "SolanaDevnet",
          "requester": { "userId": "us-sa" },
          "requestBody": { "kind": "Spl2022", "to": TO, "amount": "2500000", "mint": MINT,
                           "createDestinationAccount": true, "externalId": "o-2" },
          "metadata": { "asset": { "symbol": "USDC", "decimals": 6, "quotes": { "USD": 1.0 } } },
          "status": "Pending", "dateRequested": "2023-05-08T19:14:25.568Z", "externalId": "o-2"
        }),
    );
    let outcome = h
        .client
        .transfer(
            &WalletId::new("wa-sol"),
            ExternalId::new("o-2"),
            TransferAsset::Spl2022 {
                to: TO.into(),
                amount: Amount::from(2_500_000),
                mint: MINT.into(),
                memo: None,
                create_destination_account: Some(true),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        h.calls()[0].json(),
        json!({"kind": "Spl2022", "to": TO, "amount": "2500000", "mint": MINT,
               "createDestinationAccount": true, "externalId": "o-2"})
    );
    assert!(matches!(
        &outcome.transfer().request_body.asset,
        TransferAsset::Spl2022 { mint, create_destination_account: Some(true), .. } if mint == MINT
    ));
    // The plain `Spl` kind, without the optional fields: they are left out, not sent as null.
    let plain = TransferAsset::Spl {
        to: TO.into(),
        amount: Amount::from(1),
        mint: MINT.into(),
        memo: None,
        create_destination_account: None,
    };
    assert_eq!(
        serde_json::to_value(&plain).unwrap(),
        json!({"kind": "Spl", "to": TO, "amount": "1", "mint": MINT})
    );

    let assets: WalletAssets = serde_json::from_value(json!({
        "walletId": "wa-sol", "network": "SolanaDevnet",
        "assets": [
            { "kind": "Native", "symbol": "SOL", "decimals": 9, "balance": "5000000000" },
            { "kind": "Spl", "mint": MINT, "symbol": "USDC", "decimals": 6, "balance": "7000000" },
            { "kind": "Spl2022", "mint": TO, "decimals": 2, "balance": "5" }
        ]
    }))
    .unwrap();
    assert_eq!(assets.assets[1].kind, AssetKind::Spl { mint: MINT.into() });
    assert_eq!(assets.assets[1].decimals, 6);
    assert_eq!(
        assets.assets[2].kind,
        AssetKind::Spl2022 { mint: TO.into() }
    );

    let event: BlockchainEvent = serde_json::from_value(json!({
        "walletId": "wa-sol", "direction": "In", "network": "SolanaDevnet", "blockNumber": 7,
        "txHash": "5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnbJLgp8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW",
        "timestamp": "2023-05-08T19:14:25.568Z", "kind": "SplTransfer", "mint": MINT,
        "from": TO, "to": "DyL6vKGESBAYLAKJ1VvwnroYGBp67H7nwfidALbAf6wJ", "value": "7000000",
        "metadata": { "asset": { "symbol": "USDC", "decimals": 6 } }
    }))
    .unwrap();
    assert_eq!(
        event.kind,
        BlockchainEventKind::SplTransfer {
            mint: MINT.into(),
            from: Some(TO.into()),
            to: Some("DyL6vKGESBAYLAKJ1VvwnroYGBp67H7nwfidALbAf6wJ".into()),
        }
    );
    assert_eq!(
        event.value.as_ref().and_then(Amount::to_u128),
        Some(7_000_000)
    );
}
