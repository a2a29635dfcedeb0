//! # dfns-emulator
//!
//! An in-memory, offline stand-in for the Dfns API subset the managed-accounts platform uses,
//! speaking the wire format of `docs/dfns.md` (camelCase fields, `wa-`/`xfr-`/… ids,
//! status enums, the `{"error":{…}}` body, cursor pagination) so code written against it works
//! against real Dfns unchanged.
//!
//! ## Starting it
//!
//! - In-process: [`spawn`]`(`[`Options::default()`]`)` binds `127.0.0.1` on a free port and
//!   returns a [`RunningEmulator`] with [`RunningEmulator::base_url`] and
//!   [`RunningEmulator::bootstrap`].
//! - Binary: `dfns-emulator --listen 127.0.0.1:PORT --bootstrap-out FILE` (port 0 = any; the file
//!   records the real one).
//!
//! The seeded org ([`Bootstrap`]): a service account (Ed25519 key, exactly the docs/dfns.md §9
//! operations — no `Policies:Approvals:Approve`), compliance officers (the first ECDSA P-256, the
//! second Ed25519; both may approve) and an admin (P-256, every operation). Keys are PKCS#8 PEM.
//!
//! ## What is emulated (module map)
//!
//! | module | Dfns surface |
//! |---|---|
//! | [`auth`] | bearer JWT on every route (401), `/auth/action/init` + `/auth/action` challenge flow (Ed25519, ECDSA P-256/secp256k1 DER), single-use `X-DFNS-USERACTION` bound to method, path and payload (403) |
//! | [`permissions`] | per-user permission assignments; 403 naming the missing operation; `/auth/service-accounts`, `/auth/users`, `/permissions`, `/permissions/{id}/assignments` |
//! | [`wallets`] | create / get / list / update / tag / untag / assets / history; EVM addresses from real secp256k1 keys (keccak-256), lowercase |
//! | [`ledger`] | native, ERC-20 and SPL balances, USD prices, history entries, deposits |
//! | [`transfers`] | `Native`, `Erc20`, `Spl` and `Spl2022` transfers, `externalId` idempotency, lifecycle, policy hook |
//! | [`policy`] | policies v2 (`/v2/policies`), the engine ([`DfnsPolicyEngine`], the default), approvals (`/v2/policy-approvals`), `Policies:Modify` change requests; the [`policy::PolicyEngine`] hook |
//! | [`webhooks`] | CRUD, ping, events, HMAC-signed delivery with retries |
//! | [`audit`] | one audit entry per consumed user action; CSV list and JSON get |
//! | [`rate_limit`] | the org's requests-per-minute limit (token bucket, off until set): 429 with `Retry-After` over it; every Dfns API request counted |
//! | [`faults`] | injected 429 (+`Retry-After`) / 500 / 503 / latency, per route pattern, seeded; webhook deliveries dropped, duplicated, delayed or their answers lost, seeded |
//! | [`control`] | the `/emulator/…` control API (loopback only, no Dfns auth) |
//! | [`usd`] | exact USD valuation (`amount / 10^decimals × price`) for the amount and velocity rules |
//! | [`state`], [`clock`], [`errors`], [`pagination`] | shared state under one lock, the emulated clock, the error body, page tokens |
//!
//! ## Policy engine (docs/dfns.md §4–5)
//!
//! The default engine ([`DfnsPolicyEngine`]; `Options::policy_engine: None`) behaves as before
//! while the org has no policy. Supported: activity kinds of §4.3 with their allowed rule ×
//! action × filter combinations (a bad one answers 400 in the Dfns error shape naming it);
//! `Wallets:Sign` rules `AlwaysTrigger`, `TransactionRecipientWhitelist`,
//! `TransactionAmountLimit`, `TransactionAmountVelocity`, `TransactionCountVelocity` (screening
//! rules need a vendor integration and answer 400); actions `Block`, `NoAction`,
//! `RequestApproval`; filters `walletId.in`, `walletTags.hasAny/hasAll` (AND), `policyId.in`.
//! Pure evaluation lives in [`policy::evaluate`]; HTTP in [`policy::routes`].
//!
//! - **Evaluation** of a transfer: every active `Wallets:Sign` policy whose filters match is
//!   evaluated (oldest first); each triggered one emits `policy.triggered`
//!   (`{policyEvaluation:{id,triggered,reason,date,policy,activity,context}}`). Any `Block` →
//!   the transfer is `Rejected` with that policy's reason (HTTP 200, U5) and no approval; else any
//!   `RequestApproval` → one approval over every triggered approval policy, the transfer stays
//!   `Pending` with `approvalId`, `policy.approval.pending` is emitted; `NoAction` only notifies.
//! - **USD** = `amount / 10^decimals × price` from `PUT /emulator/prices`, exact (no floats),
//!   compared with the JSON-number limit; no price → the amount rules trigger (fail closed).
//!   Reasons follow Dfns' format: `Transfer amount (USD 10000) is above limit (USD 5000).`
//! - **Whitelist**: exact, case-sensitive comparison (U1); an empty list triggers on everything.
//! - **Velocity (U6)**: per wallet, over the emulated clock, window **closed** `[now − timeframe,
//!   now]` (an activity exactly `timeframe` minutes old counts); the **current** transfer counts;
//!   transfers that ended `Rejected` or `Failed` do not (pending, held, broadcasted and confirmed
//!   ones do); each transfer is valued at its request-time price; triggers when the count / sum is
//!   strictly **above** `limit` (so with `limit: 2` the third transfer triggers). A transfer in
//!   the window without a price makes the sum undeterminable → triggers.
//! - **Approvals (§5.4)**: deciding needs `Policies:Approvals:Approve` (403 naming it); service
//!   accounts are refused (403) even if granted it (`serviceAccountsCanApprove` needs Dfns staff:
//!   treated as off); the initiator cannot approve unless `initiatorCanApprove`, but may deny
//!   (cancel); otherwise a decider must be listed in a group (`approvers: {}` = anyone); a user
//!   decides once (409); a resolved approval answers 409 (U10); one denial denies; `Approved`
//!   when every group of every triggered policy has `quorum` distinct eligible approvers (a
//!   user counts in every group that lists them). `autoRejectTimeout` is in minutes (U7); with
//!   several policies the earliest expiry applies. Expiry is evaluated lazily — on every policy,
//!   approval and transfer read, before every evaluation, and when the clock is advanced.
//!   Resolution emits `policy.approval.resolved` (`{approval}`, U11), then the transfer resumes
//!   (`datePolicyResolved`, lifecycle events) or is `Rejected` (`wallet.transfer.rejected`).
//! - **Policies:Modify (§4.8)**: create is never gated. With an active matching policy (no filter
//!   = every policy, itself included), update and archive answer **202** with a change request
//!   (`kind: Policy`, `operationKind: Update` — an archive proposes `status: Archived`, U8); the
//!   policy keeps its configuration and GET/list show `pendingChangeRequest`; approval applies it
//!   (`Applied`, `dateUpdated` bumped), denial or expiry rejects it (`Rejected`); a second change
//!   while one is pending answers 409 (U9). The pending request disappears from the policy once
//!   resolved; the approval's `activity.changeRequest` keeps its final status. Updating an
//!   archived policy answers 409; archiving it again answers 200 with it unchanged.
//! - **Lists**: policies and approvals 20 per page by default, newest first; `status` filters;
//!   approvals also `initiatorId` and `approverId` (a user who could approve it now).
//! - **Audit log**: policy creates, updates, archives and decisions (also refused ones) are
//!   consumed user actions; their CSV "Summary" says what happened (e.g. `Decision Approved on
//!   approval ap-… → Approved (change request cr-… on policy plc-… Applied)`).
//!
//! ## Control API (`/emulator/…`, JSON, no Dfns auth, loopback callers only)
//!
//! | call | effect |
//! |---|---|
//! | `POST /emulator/deposits` `{"walletId","kind":"Native"\|"Erc20"\|"Spl"\|"Spl2022","contract"?,"mint"?,"amount","from"?,"symbol"?,"decimals"?,"txHash"?}` | credits the wallet, writes an `In` history entry, emits `wallet.blockchainevent.detected`; answers the history entry. `Spl`/`Spl2022` need a Solana wallet and a `mint` (base58 of 32 bytes, kept exactly); a mint keeps the program of its first deposit (the other kind answers 400) |
//! | `PUT /emulator/prices` `{"prices":{"ETH":"3000.00","0x…":"1.00","<mint>":"1.00"}}` | USD unit prices (native by symbol, ERC-20 by lowercase contract, SPL by mint exactly, else by the token's symbol if that has a price) |
//! | `GET /emulator/clock`, `POST /emulator/clock/advance` `{"seconds":N}` | read / move the emulated clock → `{"now"}`; overdue approvals expire |
//! | `PUT /emulator/transfer-lifecycle` `{"mode":"auto","delayMs":N}` or `{"mode":"manual"}` | automatic steps every N ms, or manual stepping |
//! | `POST /emulator/transfers/{id}/advance` | one lifecycle step → the transfer (409 if terminal or awaiting approval) |
//! | `POST /emulator/transfers/{id}/fail` `{"reason"?}` | forces a non-terminal transfer to `Failed` |
//! | `POST /emulator/faults` `{"pathPattern","method"?,"status"?:429\|500\|503,"rate","retryAfterSeconds"?,"latencyMs"?,"seed"?}` → `{"id"}`; `DELETE /emulator/faults` | fault injection; `*` = one path segment, `**` = the rest; the first matching rule applies |
//! | `PUT /emulator/webhook-faults` `{"dropRate"?,"duplicateRate"?,"lostAnswerRate"?,"reorderDelayMs"?,"reorderRate"?,"seed"?}`; `DELETE /emulator/webhook-faults` | webhook delivery faults, per attempt (rates in `[0, 1]`, default 0): dropped (never reaches the receiver: a failed attempt, retried with a new id and `retryOf`), duplicated (the same body and signature posted twice), answer lost (the receiver got it, the attempt is recorded as `Timeout` and retried), delayed up to `reorderDelayMs` before posting (`reorderRate` of attempts, default 1) so later events overtake earlier ones |
//! | `POST /emulator/permissions` `{"userId","operations":[…]}` | grants extra operations (a new permission assigned to the user) |
//! | `PUT /emulator/rate-limit` `{"requestsPerMinute","burst"?}`; `DELETE /emulator/rate-limit` | the org-wide rate limit on every Dfns API request: a token bucket in wall time (capacity `burst`, default a tenth of the rate, at least 1; set = full), 429 with `Retry-After` (whole seconds until a token is back, at least 1) over it; off by default |
//! | `GET /emulator/stats` | `{"transfers","wallets","webhookEvents","auditLogs","lifecycle","requests","rateLimit":{"limit":{"requestsPerMinute","burst"}\|null,"answered429"},"faults":{"answered":{"429","500","503"},"delayed"},"webhookFaults":{"dropped","duplicated","delayed","answersLost"}}` (`transfers` = distinct transfers ever created; `requests` = Dfns API requests received, control calls excluded; counts since start) |
//!
//! ## Choices where Dfns is silent (docs/dfns.md §11)
//!
//! - **U2 payload binding**: the declared `userActionPayload` and the request body are compared as
//!   JSON values; `""`, `"{}"` and an absent body are equal; paths compare without query string.
//! - **U3 lifetimes**: challenges and user-action tokens live 5 minutes on the emulated clock
//!   ([`Options::user_action_ttl`]); both are single use. A mismatched token is refused and *not*
//!   consumed; a consumed token is refused with 403 "user action has already been used".
//!   Challenge problems (unknown, used, expired, wrong credential, bad signature) answer 400.
//! - **U4 low-S**: ECDSA signatures with high or low S are both accepted.
//! - **U5 Block**: a blocked transfer answers 200 with status `Rejected` (via the policy hook).
//! - **U14 rate limits**: 429s come from the org rate limit once set (`PUT /emulator/rate-limit`;
//!   Dfns publishes the rate, not the burst or the algorithm: a token bucket here) and from
//!   injected faults; both carry `Retry-After` in seconds (faults: default 1 s).
//! - **U15 pagination**: every list is newest first; `limit` defaults to 50 and is capped at 100;
//!   `nextPageToken` is the base64url of the last item's sequence number (stable under inserts).
//! - **U16 externalId**: transfer `externalId`s are unique org-wide; wallet creation with an
//!   `externalId` is *not* idempotent (each call creates a wallet).
//! - **U17 audit log**: `action` is `"METHOD /path"`; the CSV "Summary" column holds the same;
//!   no maximum time range is enforced.
//! - Reading one's own `/auth/service-accounts/{id}` or `/auth/users/{id}` needs no permission;
//!   other reads need `Auth:ServiceAccounts:Read` / `Auth:Users:Read` / `Permissions:Read`.
//! - `/auth/action/init` and `/auth/action` require `Auth:Action:Sign`.
//! - Only EVM networks get an `address` (Solana wallets get an ed25519 key, other families a
//!   secp256k1 key and no address). Only `Native`, `Erc20`, `Spl` and `Spl2022` transfers are
//!   accepted; other kinds answer 400. `Spl`/`Spl2022` only on Solana networks, `mint` base58 of
//!   32 bytes, and in the program the mint is known under (the other kind answers 400). Unknown fields in a transfer body answer 400 (catches `externalID`-type typos).
//! - Fees: 21 000 gas (native) / 65 000 gas (ERC-20) at 1 gwei, paid in the native asset; SPL
//!   transfers 5 000 lamports, plus 2 039 280 lamports of rent when `createDestinationAccount`
//!   opens the recipient's token account (a recipient holds one once it received the mint, by
//!   deposit or transfer). An SPL transfer to a recipient without one and without
//!   `createDestinationAccount` fails at `Executing`, as it would on chain. The
//!   balance is checked and debited atomically at `Executing → Broadcasted`; if it does not cover
//!   amount + fee the transfer becomes `Failed` with a reason. History entries (and
//!   `wallet.blockchainevent.detected`) are written at `Confirmed`; a transfer to another emulated
//!   wallet credits it too.
//! - Token metadata: a deposit may carry `symbol` and `decimals` (emulator extension); unknown
//!   contracts have 18 decimals, unknown mints 9, and no symbol. `quotes.USD` appears only when a price is set.
//! - Webhooks: `timestampSent` follows the wall clock (receivers compare it with their own clock);
//!   `date` and everything else follows the emulated clock. Stored events carry `status` = the
//!   receiver's HTTP code, `"ConnectionError"`/`"Timeout"`, or `"Pending"` before the attempt, plus
//!   the documented `deliveryFailed`, `deliveryAttempt`, `retryOf?`, `nextAttemptDate?` (set on a
//!   failed attempt while a retry is scheduled, in emulated time). Ping sends kind `ping` and is
//!   not stored.
//!   Deleting a webhook deletes its events and stops retries.
//! - Events emitted: `wallet.created`, `wallet.tags.modified` (`{wallet}`), every transfer status
//!   change that has a Dfns event (`requested`, `broadcasted`, `confirmed`, `failed`, `rejected`),
//!   `wallet.blockchainevent.detected` for deposits and confirmed transfers, and
//!   `policy.triggered`, `policy.approval.pending`, `policy.approval.resolved`.

pub mod audit;
pub mod auth;
pub mod clock;
pub mod control;
pub mod errors;
pub mod extract;
pub mod faults;
pub mod ids;
pub mod keys;
pub mod ledger;
pub mod networks;
pub mod pagination;
pub mod permissions;
pub mod policy;
pub mod rate_limit;
pub mod seed;
pub mod state;
pub mod transfers;
pub mod usd;
pub mod wallets;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{Method, Uri};
use axum::routing::{get, post, put};

pub use policy::{AllowAll, DfnsPolicyEngine, PolicyEngine, Verdict};
pub use seed::{Bootstrap, Identity};
pub use state::{App, SharedApp};
pub use transfers::Lifecycle;

use crate::errors::ApiError;
use crate::state::{Settings, State};

/// How to start an emulator.
#[derive(Clone)]
pub struct Options {
    /// Address to bind; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Delay before each webhook retry after a failed attempt; attempts = `len + 1`.
    /// Default: 1 min, 11 min, 108 min, 22 h (Dfns: 5 attempts at ~1 min, 12 min, 2 h, 24 h after
    /// the first). Tests pass milliseconds.
    pub webhook_retry_delays: Vec<Duration>,
    /// How long a webhook receiver has to answer.
    pub webhook_timeout: Duration,
    /// Initial transfer lifecycle (changeable through the control API).
    pub transfer_lifecycle: Lifecycle,
    /// Lifetime of challenges and user-action tokens.
    pub user_action_ttl: Duration,
    /// Number of compliance officers to seed (at least 2).
    pub officers: usize,
    /// The policy engine consulted before transfers execute and policies change. `None` (the
    /// default) = [`DfnsPolicyEngine`], which allows everything while the org has no policy;
    /// [`AllowAll`] switches policies off entirely.
    pub policy_engine: Option<Arc<dyn PolicyEngine>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            webhook_retry_delays: vec![
                Duration::from_secs(60),
                Duration::from_secs(11 * 60),
                Duration::from_secs(108 * 60),
                Duration::from_secs(22 * 3600),
            ],
            webhook_timeout: Duration::from_secs(5),
            transfer_lifecycle: Lifecycle::Auto {
                delay: Duration::from_millis(20),
            },
            user_action_ttl: Duration::from_secs(300),
            officers: 2,
            policy_engine: None,
        }
    }
}

/// A started emulator. Dropping it stops the server.
pub struct RunningEmulator {
    base_url: String,
    bootstrap: Bootstrap,
    app: SharedApp,
    server: tokio::task::JoinHandle<()>,
}

impl RunningEmulator {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    pub fn bootstrap(&self) -> &Bootstrap {
        &self.bootstrap
    }

    /// The shared state, for in-process inspection (tests, benchmarks, the part-2 engine).
    pub fn app(&self) -> &SharedApp {
        &self.app
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.base_url
            .trim_start_matches("http://")
            .parse()
            .expect("base_url is built from a socket address")
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Builds the state, seeds the org and returns the app with its bootstrap (no `base_url` yet).
pub fn build(options: &Options) -> (SharedApp, Bootstrap) {
    let clock = Arc::new(clock::Clock::default());
    let mut state = State::new(ids::new_id("or"), clock, options.transfer_lifecycle);
    let settings = Settings {
        webhook_retry_delays: options.webhook_retry_delays.clone(),
        webhook_timeout: options.webhook_timeout,
        user_action_ttl: options.user_action_ttl,
    };
    let mut jwt_secret = [0u8; 32];
    rand::Rng::fill(&mut rand::thread_rng(), &mut jwt_secret);
    let bootstrap = seed::seed(&mut state, &jwt_secret, options.officers);
    let mut app = App::new(state, settings, options.policy_engine.clone());
    app.jwt_secret = jwt_secret;
    (Arc::new(app), bootstrap)
}

/// The Dfns routes (behind faults + auth) and the control routes.
pub fn router(app: SharedApp) -> Router {
    let dfns = Router::new()
        .route("/auth/action/init", post(auth::init_action))
        .route("/auth/action", post(auth::sign_action))
        .route("/auth/action/logs", get(audit::list))
        .route("/auth/action/logs/{id}", get(audit::get))
        .route(
            "/auth/service-accounts",
            get(permissions::list_service_accounts),
        )
        .route(
            "/auth/service-accounts/{id}",
            get(permissions::get_service_account),
        )
        .route("/auth/users", get(permissions::list_users))
        .route("/auth/users/{id}", get(permissions::get_user))
        .route("/permissions", get(permissions::list_permissions))
        .route("/permissions/{id}", get(permissions::get_permission))
        .route(
            "/permissions/{id}/assignments",
            get(permissions::list_assignments),
        )
        .route("/wallets", post(wallets::create).get(wallets::list))
        .route(
            "/wallets/{wallet_id}",
            get(wallets::get).put(wallets::update),
        )
        .route(
            "/wallets/{wallet_id}/tags",
            put(wallets::add_tags).delete(wallets::remove_tags),
        )
        .route("/wallets/{wallet_id}/assets", get(wallets::assets))
        .route("/wallets/{wallet_id}/history", get(wallets::history))
        .route(
            "/wallets/{wallet_id}/transfers",
            post(transfers::create).get(transfers::list),
        )
        .route(
            "/wallets/{wallet_id}/transfers/{transfer_id}",
            get(transfers::get),
        )
        .route(
            "/v2/policies",
            post(policy::routes::create).get(policy::routes::list),
        )
        .route(
            "/v2/policies/{policy_id}",
            get(policy::routes::get)
                .put(policy::routes::update)
                .delete(policy::routes::archive),
        )
        .route("/v2/policy-approvals", get(policy::routes::list_approvals))
        .route(
            "/v2/policy-approvals/{approval_id}",
            get(policy::routes::get_approval_route),
        )
        .route(
            "/v2/policy-approvals/{approval_id}/decisions",
            post(policy::routes::decide),
        )
        .route("/webhooks", post(webhooks::create).get(webhooks::list))
        .route(
            "/webhooks/{id}",
            get(webhooks::get)
                .put(webhooks::update)
                .delete(webhooks::delete),
        )
        .route("/webhooks/{id}/ping", post(webhooks::ping))
        .route("/webhooks/{id}/events", get(webhooks::list_events))
        .route("/webhooks/{id}/events/{event_id}", get(webhooks::get_event))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::authenticate,
        ))
        // Inside the injected faults (a gateway in front of Dfns), before auth (Dfns counts
        // refused requests too).
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            rate_limit::enforce,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            faults::inject,
        ));

    let control = Router::new()
        .route("/deposits", post(control::deposit))
        .route("/prices", put(control::set_prices))
        .route("/clock", get(control::get_clock))
        .route("/clock/advance", post(control::advance_clock))
        .route("/transfer-lifecycle", put(control::set_lifecycle))
        .route("/transfers/{id}/advance", post(control::advance_transfer))
        .route("/transfers/{id}/fail", post(control::fail_transfer))
        .route(
            "/faults",
            post(control::add_fault).delete(control::clear_faults),
        )
        .route(
            "/webhook-faults",
            put(control::set_webhook_faults).delete(control::clear_webhook_faults),
        )
        .route("/permissions", post(control::grant_permissions))
        .route(
            "/rate-limit",
            put(control::set_rate_limit).delete(control::clear_rate_limit),
        )
        .route("/stats", get(control::stats))
        .layer(axum::middleware::from_fn(control::loopback_only));

    Router::new()
        .nest("/emulator", control)
        .merge(dfns)
        .with_state(app)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("route not found: {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} not allowed on {}", uri.path()),
    )
}

/// Starts an emulator in-process (on the current tokio runtime).
pub async fn spawn(options: Options) -> anyhow::Result<RunningEmulator> {
    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    let addr = listener.local_addr()?;
    let (app, mut bootstrap) = build(&options);
    // A wildcard bind is reached through loopback by local clients.
    let reachable = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    let base_url = format!("http://{reachable}");
    bootstrap.base_url = base_url.clone();
    let service = router(app.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, service).await {
            tracing::error!(%error, "dfns emulator server stopped");
        }
    });
    Ok(RunningEmulator {
        base_url,
        bootstrap,
        app,
        server,
    })
}
