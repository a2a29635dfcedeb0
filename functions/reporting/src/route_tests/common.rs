//! Test harness: a uniquely named table in DynamoDB Local, an in-process Dfns emulator, an OIDC
//! issuer whose keys a tiny server publishes, and the [`platform::App`] the handler runs with.
//! Accounts are seeded the way onboarding and destination requests leave them (store records, Dfns
//! wallets and policies), so these tests exercise only the reporting reads.
#![allow(dead_code)] // each test binary uses a different part

use std::sync::Arc;
use std::time::Duration;

use auth::dev_issuer::{DevIssuer, SigningAlgorithm, TokenSpec};
use dfns_client::common::InList;
use dfns_client::policies::{ApprovalGroup, Approvers, PolicyFilters};
use dfns_client::{
    ActivityKind, ClientConfig, CreateWallet, DecisionValue, DfnsClient, ExternalId, KeySigner,
    Network, Policy, PolicyAction, PolicyBody, PolicyId, PolicyRule, RetryPolicy, SecretString,
    TransferAsset, TransferStatus, UserId,
};
use domain::{
    Actor, AuditAction, AuditEvent, ClientId, DestinationAction, DestinationRequestId,
    DestinationRequestState, NetworkAddress, WalletId,
};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use platform::{App, AppParts, PlatformSettings, Secrets};
use platform_config::{ReadCredential, SigningCredential, WebhookSecrets};
use serde_json::{Value, json};
use store::{ClientProfile, NewDestinationRequest, RequestChanges, WalletMapping};
use time::OffsetDateTime;

pub const APP_CLIENT_ID: &str = "reporting-tests-app-client";

pub struct Harness {
    pub app: App,
    pub emulator: dfns_emulator::RunningEmulator,
    /// The platform's service account.
    pub dfns: DfnsClient,
    /// A compliance officer (approves policy changes).
    pub officer: DfnsClient,
    pub officer_ids: Vec<String>,
    pub issuer: DevIssuer,
    pub control: reqwest::Client,
    /// The org's `Policies:Modify` policy: every policy change waits for an officer.
    pub governance_policy: Option<PolicyId>,
    /// The stand-ins' SDK configuration (this test's runtime).
    pub sdk: aws_config::SdkConfig,
}

/// An opened account as seeded.
pub struct Account {
    pub client: ClientId,
    pub wallet_id: String,
    pub address: String,
    /// The client's whitelist policy at Dfns (accounts opened with [`Policies::Created`]).
    pub whitelist: Option<PolicyId>,
}

/// Whether [`Harness::open_account`] creates the client's Dfns policies (needs the emulator's
/// policy engine, docs/dfns.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policies {
    Created,
    None,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run through `cargo xtask test` (or `cargo xtask exec -- cargo test -p reporting`)")
    })
}

fn identity_client(
    base_url: &str,
    identity: &dfns_emulator::seed::Identity,
    retry: RetryPolicy,
) -> DfnsClient {
    let signer = KeySigner::from_pkcs8_pem(
        &identity.cred_id,
        &SecretString::from(identity.private_key_pem.clone()),
    )
    .expect("seeded key loads");
    DfnsClient::new(
        ClientConfig::new(
            SecretString::from(identity.token.clone()),
            Some(Arc::new(signer)),
        )
        .with_base_url(base_url)
        .with_retry(retry),
    )
    .expect("client builds")
}

/// Quick retries: an unavailable Dfns is reported within a second or two.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        deadline: Duration::from_secs(2),
        max_attempts: 3,
    }
}

impl Harness {
    pub async fn start() -> Harness {
        env("AWS_ENDPOINT_URL_DYNAMODB");
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let table = format!(
            "reporting-it-{}",
            ulid::Ulid::new().to_string().to_lowercase()
        );
        store::schema::create_table(&dynamodb, &table)
            .await
            .expect("table created");

        let emulator = dfns_emulator::spawn(dfns_emulator::Options::default())
            .await
            .expect("emulator starts");
        let bootstrap = emulator.bootstrap().clone();
        let base_url = emulator.base_url();

        let issuer =
            DevIssuer::cognito("us-east-1", "us-east-1_Reporting", SigningAlgorithm::Es256)
                .expect("issuer");
        let jwks_url = serve_jwks(issuer.jwks()).await;
        let mut auth_settings =
            auth::AuthSettings::new(issuer.issuer(), vec![APP_CLIENT_ID.to_owned()]);
        auth_settings.jwks_url = jwks_url;

        let settings = PlatformSettings::from_lookup(|name| match name {
            "TABLE_NAME" => Some(table.clone()),
            "DFNS_BASE_URL" => Some(base_url.clone()),
            _ => None,
        })
        .expect("settings");
        let sa = &bootstrap.service_account;
        // Reporting as deployed: the read-only service account only.
        let secrets = Secrets::fixed(
            SigningCredential::new(&sa.token, &sa.cred_id, &sa.private_key_pem),
            ReadCredential::new(&bootstrap.read_only_service_account.token),
            WebhookSecrets::new("unused-by-reporting", None),
        )
        .only(crate::SECRETS);
        let app = App::new(AppParts {
            settings,
            dynamodb,
            eventbridge: aws_sdk_eventbridge::Client::new(&sdk),
            authenticator: auth::Authenticator::new(auth_settings),
            secrets,
            dfns_retry: Some(fast_retry()),
        });
        let dfns = identity_client(&base_url, sa, fast_retry());
        let officer = identity_client(&base_url, &bootstrap.officers[0], fast_retry());
        let officer_ids = bootstrap
            .officers
            .iter()
            .map(|o| o.user_id.clone())
            .collect();
        Harness {
            app,
            emulator,
            dfns,
            officer,
            officer_ids,
            issuer,
            control: reqwest::Client::new(),
            governance_policy: None,
            sdk,
        }
    }

    /// Puts every policy change under compliance approval, as the org bootstrap does.
    pub async fn govern_policy_changes(&mut self) {
        let policy = self
            .dfns
            .create_policy(&PolicyBody {
                name: "policy changes need compliance".into(),
                activity_kind: ActivityKind::PoliciesModify,
                rule: PolicyRule::always_trigger(),
                action: self.compliance_action(),
                filters: None,
            })
            .await
            .expect("governance policy created");
        self.governance_policy = Some(policy.id);
    }

    fn compliance_action(&self) -> PolicyAction {
        PolicyAction::RequestApproval {
            approval_groups: vec![ApprovalGroup {
                name: Some("Compliance".into()),
                quorum: 1,
                approvers: Approvers {
                    user_id: Some(InList::new(
                        self.officer_ids.iter().map(|id| UserId::new(id.clone())),
                    )),
                    other: Default::default(),
                },
                initiator_can_approve: None,
                service_accounts_can_approve: None,
            }],
            auto_reject_timeout: None,
        }
    }

    pub fn token(&self, subject: &str) -> String {
        self.issuer
            .mint(&TokenSpec::cognito_access(subject, APP_CLIENT_ID))
            .expect("token minted")
    }

    pub fn operator_token(&self, subject: &str) -> String {
        self.issuer
            .mint(&TokenSpec::cognito_access(subject, APP_CLIENT_ID).role("operators"))
            .expect("token minted")
    }

    /// `GET path` (with its query string) as `token`'s holder, through the function's handler.
    pub async fn get(&self, token: Option<&str>, path_and_query: &str) -> Response<Body> {
        crate::handle(&self.app, get_request(token, path_and_query)).await
    }

    /// [`Harness::get`] through the routes with `exports` for large CSV exports.
    pub async fn get_exporting(
        &self,
        exports: &crate::Exports,
        token: &str,
        path_and_query: &str,
    ) -> Response<Body> {
        let request = get_request(Some(token), path_and_query);
        platform::http::call(crate::router_with(exports.clone()), &self.app, request).await
    }

    /// An S3 client of the stand-ins (moto) and a new empty bucket there.
    pub async fn export_bucket(&self) -> (aws_sdk_s3::Client, String) {
        env("AWS_ENDPOINT_URL_S3");
        let s3 = crate::s3_client(&self.sdk);
        let bucket = format!(
            "reporting-it-{}",
            ulid::Ulid::new().to_string().to_lowercase()
        );
        s3.create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("bucket created");
        (s3, bucket)
    }

    /// `count` governance rows for `client` (audit events with a reason), oldest first.
    pub async fn seed_rows(&self, client: &ClientId, count: usize) {
        for n in 0..count {
            self.audit(
                client,
                Actor::System { id: "tests".into() },
                "export_test.row",
                json!({ "id": format!("row-{n:04}"), "reason": format!("seeded row {n}, with a comma and \"quotes\"") }),
            )
            .await;
        }
    }
}

fn get_request(token: Option<&str>, path_and_query: &str) -> Request {
    {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let mut builder = lambda_http::http::Request::builder()
            .method("GET")
            .uri(format!("https://api.example{path_and_query}"));
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let params: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
        let mut request: Request = builder.body(Body::Empty).unwrap();
        if !params.is_empty() {
            request = request.with_query_string_parameters(params);
        }
        let _ = path;
        request
    }
}

impl Harness {
    /// `GET` answering 200 with JSON.
    pub async fn get_json(&self, token: &str, path_and_query: &str) -> Value {
        let response = self.get(Some(token), path_and_query).await;
        let status = response.status();
        let body = body_text(&response);
        assert_eq!(status, StatusCode::OK, "GET {path_and_query}: {body}");
        serde_json::from_str(&body).expect("JSON body")
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self
            .control
            .request(method, format!("{}{path}", self.emulator.base_url()))
            .json(&body)
            .send()
            .await
            .expect("control API reachable");
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub async fn set_prices(&self, prices: Value) {
        self.control(
            reqwest::Method::PUT,
            "/emulator/prices",
            json!({ "prices": prices }),
        )
        .await;
    }

    /// What the writers (webhook consumer, executor) would have recorded of the client's Dfns
    /// side, which these tests seed straight at the emulator: the backfill writes the same rows.
    pub async fn sync_activity(&self, client: &ClientId) {
        platform::reporting::read_model::backfill_client(&self.app, client)
            .await
            .expect("activity backfilled");
    }

    pub async fn deposit(&self, wallet_id: &str, amount: &str, from: &str) -> Value {
        self.control(
            reqwest::Method::POST,
            "/emulator/deposits",
            json!({ "walletId": wallet_id, "kind": "Native", "amount": amount, "from": from }),
        )
        .await
    }

    pub async fn inject_fault(&self, path_pattern: &str, status: u16) {
        self.control(
            reqwest::Method::POST,
            "/emulator/faults",
            json!({ "pathPattern": path_pattern, "method": "GET", "status": status, "rate": 1.0, "retryAfterSeconds": 1 }),
        )
        .await;
    }

    pub async fn clear_faults(&self) {
        self.control
            .delete(format!("{}/emulator/faults", self.emulator.base_url()))
            .send()
            .await
            .expect("control API reachable");
    }

    async fn audit(&self, client: &ClientId, actor: Actor, action: &str, details: Value) {
        self.app
            .store()
            .append_audit_event(&AuditEvent {
                client_id: client.clone(),
                actor,
                action: AuditAction::parse(action).unwrap(),
                at: OffsetDateTime::now_utc(),
                request_id: format!("test-{}", ulid::Ulid::new()),
                details,
            })
            .await
            .expect("audit appended");
    }

    /// What onboarding leaves: profile, a tagged wallet and its mapping, an empty whitelist and
    /// an amount limit filtered on the tag, the policy records, and the audit events.
    pub async fn open_account(&self, subject: &str, policies: Policies) -> Account {
        let client = ClientId::parse(subject).unwrap();
        let store = self.app.store();
        store
            .create_client_profile(&ClientProfile {
                client_id: client.clone(),
                created_at: OffsetDateTime::now_utc(),
                tier: Some("standard".into()),
            })
            .await
            .expect("profile");
        self.audit(
            &client,
            Actor::Client { id: client.clone() },
            "account.opened",
            json!({}),
        )
        .await;
        let mut create = CreateWallet::new(Network::EthereumSepolia);
        create.tags = vec![client.wallet_tag()];
        create.external_id = Some(format!("{}:EthereumSepolia", client.wallet_tag()));
        let wallet = self.dfns.create_wallet(&create).await.expect("wallet");
        let address = wallet.address.clone().expect("EVM wallet has an address");
        store
            .attach_wallet(&WalletMapping {
                client_id: client.clone(),
                wallet_id: WalletId::parse(wallet.id.as_str()).unwrap(),
                address: NetworkAddress::parse(domain::Network::EthereumSepolia, &address).unwrap(),
                created_at: OffsetDateTime::now_utc(),
            })
            .await
            .expect("mapping");
        let whitelist = match policies {
            Policies::Created => Some(self.create_client_policies(&client, &wallet.id).await),
            Policies::None => None,
        };
        Account {
            client,
            wallet_id: wallet.id.as_str().to_owned(),
            address,
            whitelist,
        }
    }

    /// The client's empty whitelist and an amount limit, bound to its wallet by id, recorded
    /// and audited as onboarding does; returns the whitelist's id.
    async fn create_client_policies(
        &self,
        client: &ClientId,
        wallet: &dfns_client::WalletId,
    ) -> PolicyId {
        let store = self.app.store();
        let filters = Some(PolicyFilters {
            wallet_id: Some(InList::new([wallet.clone()])),
            ..PolicyFilters::default()
        });
        let whitelist = self
            .dfns
            .create_policy(&PolicyBody {
                name: format!("{} whitelist", client.wallet_tag()),
                activity_kind: ActivityKind::WalletsSign,
                rule: PolicyRule::recipient_whitelist(Vec::new()),
                action: self.compliance_action(),
                filters: filters.clone(),
            })
            .await
            .expect("whitelist policy");
        let limit = self
            .dfns
            .create_policy(&PolicyBody {
                name: format!("{} amount-limit", client.wallet_tag()),
                activity_kind: ActivityKind::WalletsSign,
                rule: PolicyRule::amount_limit_usd(10_000),
                action: PolicyAction::Block,
                filters,
            })
            .await
            .expect("limit policy");
        for (kind, policy) in [("whitelist", &whitelist), ("amount-limit", &limit)] {
            store
                .record_client_policy(client, kind, policy.id.as_str())
                .await
                .expect("policy recorded");
            self.audit(
                client,
                Actor::System {
                    id: "onboarding".into(),
                },
                "policy.created",
                json!({ "policyId": policy.id.as_str(), "kind": kind }),
            )
            .await;
        }
        whitelist.id
    }

    /// Replaces the whitelist at Dfns; with governance on, an officer approves the held change.
    pub async fn set_whitelist(&self, policy_id: &PolicyId, addresses: Vec<String>) -> Policy {
        let current = self.dfns.get_policy(policy_id).await.expect("policy");
        let mut body = current.body();
        body.rule = PolicyRule::recipient_whitelist(addresses);
        match self
            .dfns
            .update_policy(policy_id, &body)
            .await
            .expect("update")
        {
            dfns_client::policies::UpdateOutcome::Applied(policy) => policy,
            dfns_client::policies::UpdateOutcome::Pending(change) => {
                let approval = change
                    .approval_id
                    .clone()
                    .expect("held change has an approval");
                self.officer
                    .decide_approval(&approval, DecisionValue::Approved, None)
                    .await
                    .expect("officer approves");
                self.dfns.get_policy(policy_id).await.expect("policy")
            }
        }
    }

    /// A destination request from creation to `Approved`, as the destinations flow leaves it:
    /// the store record, the live policy updated at Dfns, and the audit events.
    pub async fn approve_destination(
        &self,
        account: &Account,
        address: &str,
        label: &str,
    ) -> DestinationRequestId {
        let store = self.app.store();
        let client = &account.client;
        let id = DestinationRequestId::new();
        let destination = NetworkAddress::parse(domain::Network::EthereumSepolia, address).unwrap();
        store
            .create_destination_request(&NewDestinationRequest {
                id,
                client_id: client.clone(),
                destination: destination.clone(),
                label: label.to_owned(),
                action: DestinationAction::Add,
                created_at: OffsetDateTime::now_utc(),
            })
            .await
            .expect("request stored");
        let canonical = destination.address().canonical();
        let details = json!({ "requestId": id.to_string(), "address": canonical, "label": label, "network": "EthereumSepolia" });
        self.audit(
            client,
            Actor::Client { id: client.clone() },
            "destination_request.created",
            details.clone(),
        )
        .await;
        store
            .submit_destination_request(client, &id, OffsetDateTime::now_utc())
            .await
            .expect("submitted");
        if let Some(whitelist) = &account.whitelist {
            let mut live = match self.dfns.get_policy(whitelist).await.unwrap().rule {
                PolicyRule::TransactionRecipientWhitelist { configuration } => {
                    configuration.addresses
                }
                other => panic!("not a whitelist: {other:?}"),
            };
            live.push(canonical);
            self.set_whitelist(whitelist, live).await;
        }
        store
            .transition_destination_request(
                client,
                &id,
                DestinationRequestState::Submitted,
                DestinationRequestState::Approved,
                &RequestChanges::default(),
                OffsetDateTime::now_utc(),
            )
            .await
            .expect("approved");
        self.audit(
            client,
            Actor::Compliance { id: self.officer_ids[0].clone() },
            "destination_request.approved",
            json!({ "requestId": id.to_string(), "address": details["address"], "state": "Approved" }),
        )
        .await;
        id
    }

    /// A destination request left `Queued` (another change is in flight).
    pub async fn queue_destination(
        &self,
        account: &Account,
        address: &str,
        label: &str,
    ) -> DestinationRequestId {
        let id = DestinationRequestId::new();
        self.app
            .store()
            .create_destination_request(&NewDestinationRequest {
                id,
                client_id: account.client.clone(),
                destination: NetworkAddress::parse(domain::Network::EthereumSepolia, address)
                    .unwrap(),
                label: label.to_owned(),
                action: DestinationAction::Add,
                created_at: OffsetDateTime::now_utc(),
            })
            .await
            .expect("request stored");
        id
    }

    /// A transfer from the account's wallet, as Dfns first answers it (not waited on).
    pub async fn request_transfer(
        &self,
        account: &Account,
        to: &str,
        amount: &str,
    ) -> dfns_client::TransferRequest {
        self.dfns
            .transfer(
                &dfns_client::WalletId::new(account.wallet_id.clone()),
                ExternalId::new(format!("test-{}", ulid::Ulid::new())),
                TransferAsset::Native {
                    to: to.to_owned(),
                    amount: dfns_client::Amount::parse(amount).unwrap(),
                    memo: None,
                    priority: None,
                },
            )
            .await
            .expect("transfer created")
            .into_transfer()
    }

    /// A transfer from the account's wallet, waited on until `Confirmed`.
    pub async fn send(
        &self,
        account: &Account,
        to: &str,
        amount: &str,
    ) -> dfns_client::TransferRequest {
        let wallet = dfns_client::WalletId::new(account.wallet_id.clone());
        let outcome = self
            .dfns
            .transfer(
                &wallet,
                ExternalId::new(format!("test-{}", ulid::Ulid::new())),
                TransferAsset::Native {
                    to: to.to_owned(),
                    amount: dfns_client::Amount::parse(amount).unwrap(),
                    memo: None,
                    priority: None,
                },
            )
            .await
            .expect("transfer created");
        let id = outcome.transfer().id.clone();
        for _ in 0..200 {
            let transfer = self
                .dfns
                .get_transfer(&wallet, &id)
                .await
                .expect("transfer");
            if transfer.status.is_terminal() {
                assert_eq!(transfer.status, TransferStatus::Confirmed, "{transfer:?}");
                return transfer;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("transfer {id} did not settle");
    }
}

pub fn body_text(response: &Response<Body>) -> String {
    String::from_utf8_lossy(response.body().as_ref()).into_owned()
}

/// Serves `jwks` at `/.well-known/jwks.json` on a free loopback port; returns its URL.
async fn serve_jwks(jwks: Value) -> String {
    let router = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}
