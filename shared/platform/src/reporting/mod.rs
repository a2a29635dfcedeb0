//! Flow 3, reporting: what a client sees of its account. Read-only; every read is scoped to the
//! client named by the verified token, so another client's data cannot be reached.
//!
//! - [`account`]: wallets with balances (Dfns assets: the only Dfns read, one per wallet), approved
//!   destinations from the client's Dfns whitelist policy (joined with the client's labels), limits
//!   from its limit policies (both as kept in DynamoDB when the platform changes them and refreshed
//!   by the reconciler, [`read_model::refresh_policy_snapshot`]; a policy without a snapshot is
//!   read from Dfns once and kept), each limit's use from the transfers of the read model in its
//!   window, pending destination requests and trading authorizations.
//! - [`activity`]: on-chain history, transfers and governance events newest first, read a page at
//!   a time from the activity read model ([`read_model`], [`store::activity`]) with a stable
//!   watermark cursor ([`activity::Cursor`]); no Dfns call. The same rows back the CSV export.
//! - [`audit_trail`]: the client's hash-chained audit trail, paged, with its verification.
//! - [`notifications`]: what the platform told the client, newest first.
//!
//! The pure parts (policy extraction, merge and paging, rows) live in [`policies`] and
//! [`activity`]; the functions here only gather their inputs.

pub mod activity;
pub mod policies;
pub mod query;
pub mod read_model;

use dfns_client::Policy;
use dfns_client::wallets::AssetKind;
use domain::{ClientId, DestinationAction, DestinationRequestState, StateMachine};
use serde::Serialize;
use store::{DestinationRequest, WalletMapping};
use time::OffsetDateTime;

use crate::App;
use crate::error::PlatformError;
use crate::http::ApiError;
use crate::trading::{self, AuthorizationView};
use activity::{ActivityPage, Cursor, Labels};
use policies::{LimitUsage, LiveLimit, PendingPolicyChange};

/// Default and largest page sizes of the paged routes.
pub const DEFAULT_PAGE_SIZE: usize = 50;
pub const MAX_PAGE_SIZE: usize = 200;

/// Why a reporting read did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ReportingError {
    /// The client has not opened an account (`POST /v1/accounts`) yet.
    #[error("no account for this client")]
    AccountNotFound,
    #[error(transparent)]
    Platform(#[from] PlatformError),
}

impl From<store::StoreError> for ReportingError {
    fn from(error: store::StoreError) -> Self {
        Self::Platform(error.into())
    }
}

impl From<dfns_client::Error> for ReportingError {
    fn from(error: dfns_client::Error) -> Self {
        Self::Platform(error.into())
    }
}

impl ReportingError {
    /// The public face: 404 `account_not_found`, else the platform's mapping (Dfns throttled →
    /// 429, down → 503, nothing internal leaked).
    pub fn to_api_error(&self) -> ApiError {
        match self {
            Self::AccountNotFound => ApiError::new(
                lambda_http::http::StatusCode::NOT_FOUND,
                "account_not_found",
                "no account yet: open one with POST /v1/accounts",
            ),
            Self::Platform(error) => error.to_api_error(),
        }
    }

    /// Logs at the right level (server-side failures as errors, with their cause) and returns the
    /// public face.
    pub fn log(self) -> ApiError {
        match self {
            Self::AccountNotFound => self.to_api_error(),
            Self::Platform(error) => crate::http::log_failure(error),
        }
    }
}

pub type Result<T, E = ReportingError> = std::result::Result<T, E>;

fn dfns_wallet_id(mapping: &WalletMapping) -> dfns_client::WalletId {
    dfns_client::WalletId::new(mapping.wallet_id.as_str())
}

async fn profile(app: &App, client: &ClientId) -> Result<store::ClientProfile> {
    app.store()
        .get_client_profile(client)
        .await?
        .ok_or(ReportingError::AccountNotFound)
}

// ---------------------------------------------------------------------------------------------
// Account

/// One balance, as Dfns states it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Balance {
    /// Dfns asset kind: `Native`, `Erc20`, …
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    pub decimals: u32,
    /// Token contract (or mint), for non-native assets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
    /// Integer in the smallest unit.
    pub amount: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// Unit prices in fiat as Dfns quotes them (`{"USD": 3020.82}`); informational.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quotes: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A wallet with its balances.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WalletView {
    pub network: String,
    pub address: String,
    pub wallet_id: String,
    pub balances: Vec<Balance>,
    /// The wallet's value in fiat as Dfns states it; informational.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net_worth: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A destination the live whitelist policy allows.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovedDestination {
    /// As listed in the policy.
    pub address: String,
    /// The client's label, from its approved request for this address (none for an address
    /// listed by other means).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[schemars(with = "Option<domain::schema::Rfc3339>")]
    pub approved_at: Option<OffsetDateTime>,
}

/// The whitelist policy itself (its addresses are [`AccountView::approved_destinations`]).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WhitelistPolicyView {
    pub policy_id: String,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_change: Option<PendingPolicyChange>,
}

/// The whitelist that governs the client's wallet on one network, with the destinations it allows
/// from that wallet.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkWhitelistView {
    pub network: String,
    pub wallet_id: String,
    pub policy_id: String,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_change: Option<PendingPolicyChange>,
    /// `true` when this whitelist governs every wallet of the client (an account opened when one
    /// set of policies served all its wallets): an address it lists is allowed on each of them.
    pub shared: bool,
    /// The addresses it allows from this wallet, in the policy's order.
    pub approved_destinations: Vec<ApprovedDestination>,
}

/// `GET /v1/account`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub client_id: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "domain::schema::Rfc3339")]
    pub opened_at: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    pub wallets: Vec<WalletView>,
    /// Every destination some whitelist of the client allows, each with its network (an address
    /// approved on several networks is listed once per network); per wallet in `whitelists`.
    pub approved_destinations: Vec<ApprovedDestination>,
    /// The whitelist of the client's first wallet (its only one for a single-network client).
    /// Absent while onboarding has not created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whitelist_policy: Option<WhitelistPolicyView>,
    /// Per wallet (network), the whitelist that governs it and what it allows.
    pub whitelists: Vec<NetworkWhitelistView>,
    /// Each limit with its use in every wallet it governs (one wallet for a set of policies per
    /// wallet).
    pub limits: Vec<LiveLimit>,
    /// Destination requests not yet resolved (queued, submitted, pending approval).
    pub pending_requests: Vec<DestinationRequest>,
    /// Exchanges the client authorized for discretionary trading, newest first.
    pub trading_authorizations: Vec<AuthorizationView>,
}

/// Balances of one wallet from its Dfns assets.
pub fn balances(assets: &dfns_client::wallets::WalletAssets) -> Vec<Balance> {
    assets
        .assets
        .iter()
        .map(|asset| {
            let (kind, contract) = match &asset.kind {
                AssetKind::Native => ("Native".to_owned(), None),
                AssetKind::Erc20 { contract } => ("Erc20".to_owned(), Some(contract.clone())),
                AssetKind::Erc7984 { contract } => ("Erc7984".to_owned(), Some(contract.clone())),
                AssetKind::Trc20 { contract } => ("Trc20".to_owned(), Some(contract.clone())),
                AssetKind::Spl { mint } => ("Spl".to_owned(), Some(mint.clone())),
                AssetKind::Spl2022 { mint } => ("Spl2022".to_owned(), Some(mint.clone())),
                AssetKind::Unknown(raw) => (
                    raw.get("kind")
                        .and_then(|k| k.as_str())
                        .unwrap_or("Unknown")
                        .to_owned(),
                    None,
                ),
            };
            Balance {
                kind,
                symbol: asset.symbol.clone(),
                decimals: asset.decimals,
                contract,
                amount: asset.balance.to_string(),
                verified: asset.verified,
                quotes: asset.quotes.clone(),
            }
        })
        .collect()
}

/// Approved destinations: the live whitelist's addresses, in the policy's order, each with the
/// client's latest approved `add` request for it (label, network, request id).
pub fn approved_destinations(
    live_addresses: &[String],
    requests: &[DestinationRequest],
) -> Vec<ApprovedDestination> {
    live_addresses
        .iter()
        .map(|address| {
            let request = requests
                .iter()
                .filter(|r| {
                    r.action == DestinationAction::Add
                        && r.state == DestinationRequestState::Approved
                        && r.destination.address().canonical() == *address
                })
                .max_by_key(|r| r.created_at);
            ApprovedDestination {
                address: address.clone(),
                label: request.map(|r| r.label.clone()),
                network: request.map(|r| r.destination.network().as_str().to_owned()),
                request_id: request.map(|r| r.id.to_string()),
                approved_at: request.map(|r| r.updated_at),
            }
        })
        .collect()
}

/// Per wallet, the whitelist that governs it (bound to it, or shared by every wallet of the
/// client) and the destinations it allows from that wallet: for a wallet's own whitelist, each
/// joined with the client's approved `add` on that network only; for a shared one, on any network
/// (as one whitelist served them all).
pub fn network_whitelists(
    whitelists: &[policies::LiveWhitelist],
    wallets: &[WalletMapping],
    requests: &[DestinationRequest],
) -> Vec<NetworkWhitelistView> {
    wallets
        .iter()
        .filter_map(|wallet| {
            let id = wallet.wallet_id.as_str();
            let network = wallet.address.network();
            let whitelist = whitelists
                .iter()
                .find(|w| w.is_only_for(id))
                .or_else(|| whitelists.iter().find(|w| w.governs(id)))?;
            let shared = !whitelist.is_only_for(id);
            let mut approved = if shared {
                approved_destinations(&whitelist.addresses, requests)
            } else {
                let on_network: Vec<DestinationRequest> = requests
                    .iter()
                    .filter(|r| r.destination.network() == network)
                    .cloned()
                    .collect();
                approved_destinations(&whitelist.addresses, &on_network)
            };
            if !shared {
                for destination in &mut approved {
                    destination.network = Some(network.as_str().to_owned());
                }
            }
            Some(NetworkWhitelistView {
                network: network.as_str().to_owned(),
                wallet_id: id.to_owned(),
                policy_id: whitelist.policy_id.clone(),
                action: whitelist.action.clone(),
                pending_change: whitelist.pending_change.clone(),
                shared,
                approved_destinations: approved,
            })
        })
        .collect()
}

/// Every approved destination of the client: each wallet's own whitelist's, then a shared
/// whitelist's once (an address listed on several networks' whitelists once per network).
pub fn all_approved_destinations(per_network: &[NetworkWhitelistView]) -> Vec<ApprovedDestination> {
    let mut seen_shared = Vec::new();
    let mut all = Vec::new();
    for whitelist in per_network {
        if whitelist.shared {
            if seen_shared.contains(&whitelist.policy_id) {
                continue;
            }
            seen_shared.push(whitelist.policy_id.clone());
        }
        all.extend(whitelist.approved_destinations.iter().cloned());
    }
    all
}

/// Each limit with its use now in every wallet it governs, from the preview engine (a transfer of
/// nothing to nobody: what the rules count in their windows, and the room left).
fn with_usage(
    mut limits: Vec<LiveLimit>,
    policies: &[Policy],
    wallets: &[WalletMapping],
    transfers: &[Vec<dfns_client::TransferRequest>],
    client: &ClientId,
) -> Vec<LiveLimit> {
    use crate::trading::preview::{self, PastTransfer, PreviewInput};
    let tags = vec![client.wallet_tag()];
    let now = time::OffsetDateTime::now_utc();
    for (wallet, transfers) in wallets.iter().zip(transfers) {
        let recent: Vec<PastTransfer> = transfers.iter().map(PastTransfer::from_transfer).collect();
        let evaluation = preview::evaluate(&PreviewInput {
            wallet_id: wallet.wallet_id.as_str(),
            wallet_tags: &tags,
            to: "",
            value_usd: Some(crate::trading::usd::Usd::whole(0)),
            policies,
            recent_transfers: &recent,
            now,
        });
        for limit in &mut limits {
            let Some(rule) = evaluation
                .rules
                .iter()
                .find(|r| r.policy_id == limit.policy_id)
            else {
                continue;
            };
            limit.usage.push(LimitUsage {
                wallet_id: wallet.wallet_id.as_str().to_owned(),
                network: wallet.address.network().as_str().to_owned(),
                used: rule.used.clone(),
                headroom: rule.headroom.clone().or_else(|| rule.limit.clone()),
            });
        }
    }
    limits
}

/// The client's recorded policies, from the snapshots kept in DynamoDB, narrowed to those that
/// govern its wallets. A policy is read from Dfns (and kept) when it has no snapshot (an account
/// opened before they were kept) or when the client's destination requests show the snapshot is
/// behind ([`stale_snapshots`]). A recorded policy Dfns no longer knows is skipped (logged).
async fn kept_policies(
    app: &App,
    client: &ClientId,
    records: &store::activity::PolicyRecords,
    wallets: &[WalletMapping],
    requests: &[DestinationRequest],
) -> Result<Vec<Policy>> {
    let mut ids: Vec<&String> = records.recorded.values().collect();
    ids.sort_unstable();
    ids.dedup();
    let kept: Vec<(&String, Option<Policy>)> = ids
        .into_iter()
        .map(|id| {
            let policy = records
                .snapshots
                .get(id)
                .and_then(|body| serde_json::from_str::<Policy>(body).ok());
            (id, policy)
        })
        .collect();
    let stale = stale_snapshots(
        &kept
            .iter()
            .filter_map(|(_, p)| p.clone())
            .collect::<Vec<_>>(),
        requests,
    );
    let fetched = futures::future::try_join_all(kept.into_iter().map(|(id, policy)| {
        let stale = &stale;
        async move {
            if let Some(policy) = policy.filter(|p| !stale.contains(&p.id.as_str().to_owned())) {
                return Ok(Some(policy));
            }
            match read_model::refresh_policy_snapshot(app, client, id).await {
                Ok(policy) => Ok(Some(policy)),
                Err(PlatformError::Dfns(e)) if e.status() == Some(404) => {
                    tracing::warn!(policy_id = %id, "recorded policy not found at Dfns");
                    Ok(None)
                }
                Err(e) => Err(ReportingError::from(e)),
            }
        }
    }))
    .await?;
    let tag = client.wallet_tag();
    let wallet_ids: Vec<&str> = wallets.iter().map(|w| w.wallet_id.as_str()).collect();
    Ok(fetched
        .into_iter()
        .flatten()
        .filter(|p| policies::governs_client(p, &tag, &wallet_ids))
        .collect())
}

/// Snapshots the client's destination requests show to be behind Dfns (their ids): one still
/// showing as pending a change whose request has been decided since, and, when a request waits on
/// a change no snapshot shows pending, every whitelist (the change is on one of them). Empty in
/// the steady state, so the view reads no policy from Dfns.
pub fn stale_snapshots(kept: &[Policy], requests: &[DestinationRequest]) -> Vec<String> {
    let pending_on = |change: &str| {
        kept.iter().find(|p| {
            p.pending_change_request
                .as_ref()
                .is_some_and(|c| c.id.as_str() == change)
        })
    };
    let mut stale = Vec::new();
    for request in requests {
        let Some(change) = request.change_request_id.as_deref() else {
            continue;
        };
        match (request.state.is_terminal(), pending_on(change)) {
            (true, Some(policy)) => stale.push(policy.id.as_str().to_owned()),
            (false, None) if request.state == DestinationRequestState::PendingApproval => {
                stale.extend(policies::whitelists(kept).into_iter().map(|w| w.policy_id));
            }
            _ => {}
        }
    }
    stale.sort_unstable();
    stale.dedup();
    stale
}

/// Each wallet's transfers in the longest window of the client's velocity limits, from the
/// activity read model (none read when no limit has a window).
async fn recent_transfers(
    app: &App,
    client: &ClientId,
    limits: &[LiveLimit],
    wallets: &[WalletMapping],
    now: OffsetDateTime,
) -> Result<Vec<Vec<dfns_client::TransferRequest>>> {
    let mut per_wallet = vec![Vec::new(); wallets.len()];
    let Some(minutes) = limits.iter().filter_map(|l| l.timeframe_minutes).max() else {
        return Ok(per_wallet);
    };
    let since = now - time::Duration::minutes(i64::from(minutes));
    let rows = app
        .store()
        .activity_transfers_since(client, since.unix_timestamp_nanos())
        .await?;
    for row in rows {
        let Ok(transfer) = serde_json::from_str::<dfns_client::TransferRequest>(&row.body) else {
            tracing::error!(row = %row.row_id, "stored transfer row does not parse");
            continue;
        };
        if let Some(at) = wallets
            .iter()
            .position(|w| w.wallet_id.as_str() == transfer.wallet_id.as_str())
        {
            per_wallet[at].push(transfer);
        }
    }
    Ok(per_wallet)
}

/// `GET /v1/account`.
pub async fn account(app: &App, client: &ClientId) -> Result<AccountView> {
    let store = app.store();
    let profile = profile(app, client).await?;
    let (wallets, requests, recorded, authorizations) = futures::try_join!(
        store.list_wallets(client),
        store.list_destination_requests(client),
        store.client_policies_with_snapshots(client),
        store.list_trading_authorizations(client),
    )?;
    let dfns = app.dfns_reader().await?;
    // The only Dfns read of the view: each wallet's balances.
    let assets = futures::future::try_join_all(
        wallets
            .iter()
            .map(|w| async { dfns.wallet_assets(&dfns_wallet_id(w), true).await }),
    );
    let now = OffsetDateTime::now_utc();
    let policies_and_transfers = async {
        let policies = kept_policies(app, client, &recorded, &wallets, &requests).await?;
        let transfers =
            recent_transfers(app, client, &policies::limits(&policies), &wallets, now).await?;
        Ok::<_, ReportingError>((policies, transfers))
    };
    let (assets, (policies, transfers)) = futures::try_join!(
        async { Ok::<_, ReportingError>(assets.await?) },
        policies_and_transfers,
    )?;

    let wallet_views = wallets
        .iter()
        .zip(&assets)
        .map(|(wallet, assets)| WalletView {
            network: wallet.address.network().as_str().to_owned(),
            address: wallet.address.address().canonical(),
            wallet_id: wallet.wallet_id.as_str().to_owned(),
            balances: balances(assets),
            net_worth: assets.net_worth.clone(),
        })
        .collect();
    let live_whitelists = policies::whitelists(&policies);
    let whitelists = network_whitelists(&live_whitelists, &wallets, &requests);
    let approved = all_approved_destinations(&whitelists);
    let whitelist = whitelists
        .first()
        .map(|w| WhitelistPolicyView {
            policy_id: w.policy_id.clone(),
            action: w.action.clone(),
            pending_change: w.pending_change.clone(),
        })
        .or_else(|| {
            live_whitelists.first().map(|w| WhitelistPolicyView {
                policy_id: w.policy_id.clone(),
                action: w.action.clone(),
                pending_change: w.pending_change.clone(),
            })
        });
    let trading_authorizations = trading::authorizations::views(&authorizations, &requests);
    let mut pending: Vec<DestinationRequest> = requests
        .into_iter()
        .filter(|r| !r.state.is_terminal())
        .collect();
    pending.sort_by_key(|r| r.created_at);
    Ok(AccountView {
        client_id: client.to_string(),
        opened_at: profile.created_at,
        tier: profile.tier,
        wallets: wallet_views,
        approved_destinations: approved,
        whitelist_policy: whitelist,
        whitelists,
        limits: with_usage(
            policies::limits(&policies),
            &policies,
            &wallets,
            &transfers,
            client,
        ),
        pending_requests: pending,
        trading_authorizations,
    })
}

// ---------------------------------------------------------------------------------------------
// Activity

/// `GET /v1/activity`: one page after `cursor`, read from the activity read model: the client's
/// profile, wallets and destination requests (labels), and O(`limit`) rows. No Dfns call.
pub async fn activity(
    app: &App,
    client: &ClientId,
    cursor: Option<&Cursor>,
    limit: usize,
) -> Result<ActivityPage> {
    let store = app.store();
    let before = cursor.map(|c| (c.at_nanos(), c.id()));
    let (_, wallets, requests, records) = futures::try_join!(
        profile(app, client),
        async { Ok(store.list_wallets(client).await?) },
        async { Ok(store.list_destination_requests(client).await?) },
        async { Ok(store.activity_page(client, before, limit).await?) },
    )?;
    let labels = Labels::from_requests(&requests);
    let items = records
        .rows
        .iter()
        .filter_map(|record| read_model::to_item(record, &wallets, &labels))
        .collect();
    // The watermark is the last row read, shown or not (an unreadable one is skipped, not re-read).
    let next_cursor = records
        .more
        .then(|| records.rows.last())
        .flatten()
        .map(|last| Cursor::new(last.at_nanos, last.row_id.clone()).encode());
    Ok(ActivityPage { items, next_cursor })
}

// ---------------------------------------------------------------------------------------------
// Audit trail

/// One link of the chain: the exact hashed `body` (so anyone can re-check
/// `hash = sha256(prevHash ‖ body)`) and the event read from it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntryView {
    pub seq: u64,
    pub prev_hash: String,
    pub hash: String,
    pub body: String,
    /// `None` when the stored body is not a readable event (the verification says where).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<domain::AuditEvent>,
}

/// Whether the chain verifies, as far as the server checks it.
///
/// The server verifies each entry once: it keeps a checkpoint per client (the sequence number and
/// hash of the last entry it verified) and, on each call, verifies only the entries appended since
/// then, from the checkpoint (whose own stored entry must still match it) to the chain's head
/// record, then moves the checkpoint forward. It also re-checks the entries of the page it returns
/// against their neighbours. Entries before the checkpoint that are not on the page are trusted,
/// not re-read. To check the whole chain yourself, recompute it from the pages: each entry's
/// `hash` is `sha256(prevHash ‖ body)` (the 32 bytes of `prevHash`, then the body's UTF-8 bytes),
/// its `prevHash` is the previous entry's `hash` (64 zeros for entry 1), and the last `hash` is
/// `headHash`. Keep `headHash` somewhere else as well: a chain rewritten from some entry to the end
/// still links, and only an anchored copy of an earlier head shows it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainVerification {
    /// `false` when an entry appended since the server's checkpoint, the checkpoint's own entry,
    /// the head record, or an entry of this page (or its neighbours) does not verify.
    pub verified: bool,
    /// Entries in the chain (when it verifies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// Hash of the last entry (when it verifies): anchor it elsewhere to detect a full rewrite.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_hash: Option<String>,
    /// The first sequence number found not to verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_seq: Option<u64>,
    /// What is wrong there: `gap`, `prev_hash_mismatch`, `hash_mismatch`, `body_mismatch`,
    /// `head_mismatch` or `checkpoint_mismatch` (the server's checkpoint does not match the
    /// stored entry it names).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl From<domain::audit::ChainVerdict> for ChainVerification {
    fn from(verdict: domain::audit::ChainVerdict) -> Self {
        use domain::audit::{ChainBreak, ChainVerdict};
        match verdict {
            ChainVerdict::Intact { length, head_hash } => Self {
                verified: true,
                length: Some(length),
                head_hash: Some(head_hash),
                first_bad_seq: None,
                reason: None,
            },
            ChainVerdict::Broken { seq, reason } => Self {
                verified: false,
                length: None,
                head_hash: None,
                first_bad_seq: Some(seq),
                reason: Some(
                    match reason {
                        ChainBreak::Gap => "gap",
                        ChainBreak::PrevHashMismatch => "prev_hash_mismatch",
                        ChainBreak::HashMismatch => "hash_mismatch",
                        ChainBreak::BodyMismatch => "body_mismatch",
                        ChainBreak::HeadMismatch => "head_mismatch",
                        ChainBreak::CheckpointMismatch => "checkpoint_mismatch",
                    }
                    .to_owned(),
                ),
            },
        }
    }
}

/// `GET /v1/audit`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditTrailPage {
    /// Oldest first.
    pub entries: Vec<AuditEntryView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Of the whole chain, not just this page.
    pub verification: ChainVerification,
}

/// `GET /v1/audit`: entries after `after_seq`, and the verification of the chain
/// ([`ChainVerification`] says what the server checks). O(page + entries appended since the last
/// call): the entries after the client's checkpoint are verified (and the checkpoint advanced,
/// [`store::Store::check_audit_chain`]), and the page is read with the entry before it and the one
/// after it and checked as a run, so an altered entry on the page is reported even when it lies
/// before the checkpoint. `Store::verify_audit_chain` remains the full check, from the first entry.
pub async fn audit_trail(
    app: &App,
    client: &ClientId,
    after_seq: Option<u64>,
    limit: usize,
) -> Result<AuditTrailPage> {
    use domain::audit::{ChainVerdict, verify_run};

    let store = app.store();
    let limit = limit.max(1);
    let after = after_seq.unwrap_or(0);
    // The page's window: entry `after` (the page's first entry must point at it), the page, and
    // the entry after it (which must point at the page's last).
    let (window_after, window_len) = match after {
        0 => (None, limit + 1),
        after => (Some(after - 1), limit + 2),
    };
    let (window, check) = futures::try_join!(
        store.list_audit_events(client, window_after, window_len),
        store.check_audit_chain(client),
    )?;
    let page_break = verify_run(client, after.max(1), &window.entries);
    let mut entries: Vec<_> = window
        .entries
        .into_iter()
        .filter(|entry| entry.seq > after)
        .collect();
    let more = entries.len() > limit || window.next_after_seq.is_some();
    entries.truncate(limit);
    let next_cursor = more
        .then(|| entries.last().map(|entry| entry.seq.to_string()))
        .flatten();
    tracing::debug!(
        client = %client,
        checkpoint = check.from_seq,
        entries_verified = check.entries_read,
        "audit chain checked"
    );
    // The first break found, by either check.
    let verdict = match (check.verdict, page_break) {
        (ChainVerdict::Broken { seq, reason }, Some((page_seq, _))) if seq <= page_seq => {
            ChainVerdict::Broken { seq, reason }
        }
        (_, Some((seq, reason))) => ChainVerdict::Broken { seq, reason },
        (verdict, None) => verdict,
    };
    Ok(AuditTrailPage {
        entries: entries
            .into_iter()
            .map(|entry| AuditEntryView {
                event: entry.event().ok(),
                seq: entry.seq,
                prev_hash: entry.prev_hash,
                hash: entry.hash,
                body: entry.body,
            })
            .collect(),
        next_cursor,
        verification: verdict.into(),
    })
}

// ---------------------------------------------------------------------------------------------
// Notifications

/// `GET /v1/notifications`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationsPage {
    /// Newest first.
    pub items: Vec<store::notifications::Notification>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `GET /v1/notifications`: newest first, older than `before` (a previous page's cursor).
pub async fn notifications(
    app: &App,
    client: &ClientId,
    before: Option<&query::NotificationCursor>,
    limit: usize,
) -> Result<NotificationsPage> {
    let before = before.map(|cursor| cursor.0.as_str());
    let page = app
        .store()
        .list_notifications(client, limit, before)
        .await?;
    Ok(NotificationsPage {
        items: page.items,
        next_cursor: page.next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{DestinationRequestId, Network, NetworkAddress};
    use time::macros::datetime;

    const A: &str = "0xb282dc7cde21717f18337a596e91ded00b79b25f";
    const B: &str = "0x52908400098527886e0f7030069857d2e4169ee7";

    fn request(
        address: &str,
        label: &str,
        action: DestinationAction,
        state: DestinationRequestState,
        day: u8,
    ) -> DestinationRequest {
        let at = datetime!(2026-01-01 00:00 UTC) + time::Duration::days(i64::from(day));
        DestinationRequest {
            id: DestinationRequestId::new(),
            client_id: ClientId::parse("alice").unwrap(),
            destination: NetworkAddress::parse(Network::EthereumSepolia, address).unwrap(),
            label: label.to_owned(),
            action,
            state,
            created_at: at,
            updated_at: at,
            approval_id: None,
            change_request_id: None,
            reason: None,
        }
    }

    #[test]
    fn approved_destinations_follow_the_live_list_and_take_labels_from_approved_adds() {
        use DestinationAction::*;
        use DestinationRequestState::*;
        let requests = vec![
            request(A, "old name", Add, Approved, 1),
            request(A, "rejected rename", Add, Rejected, 2),
            request(A, "Desk, main", Add, Approved, 3),
            // Pending, not yet in the live list: not shown as approved.
            request(
                "0x8617e340b3d01fa5f11f306f4090fd50e238070d",
                "pending",
                Add,
                PendingApproval,
                4,
            ),
        ];
        // B is listed at Dfns without a request of ours (pre-approved): listed, no label.
        let live = vec![B.to_owned(), A.to_owned()];
        let approved = approved_destinations(&live, &requests);
        let summary: Vec<_> = approved
            .iter()
            .map(|d| (d.address.as_str(), d.label.as_deref(), d.network.as_deref()))
            .collect();
        assert_eq!(
            summary,
            [
                (B, None, None),
                (A, Some("Desk, main"), Some("EthereumSepolia"))
            ]
        );
    }

    const SOL: &str = "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T";
    const WA_SEPOLIA: &str = "wa-alice-00000-0000000000000001";
    const WA_BASE: &str = "wa-alice-00000-0000000000000002";
    const WA_SOLANA: &str = "wa-alice-00000-0000000000000003";

    fn on(network: Network, mut request: DestinationRequest, address: &str) -> DestinationRequest {
        request.destination = NetworkAddress::parse(network, address).unwrap();
        request
    }

    fn wallet(network: Network, id: &str, address: &str) -> WalletMapping {
        WalletMapping {
            client_id: ClientId::parse("alice").unwrap(),
            wallet_id: domain::WalletId::parse(id).unwrap(),
            address: NetworkAddress::parse(network, address).unwrap(),
            created_at: datetime!(2026-01-01 00:00 UTC),
        }
    }

    fn three_wallets() -> Vec<WalletMapping> {
        vec![
            wallet(Network::EthereumSepolia, WA_SEPOLIA, A),
            wallet(Network::BaseSepolia, WA_BASE, A),
            wallet(Network::SolanaDevnet, WA_SOLANA, SOL),
        ]
    }

    fn policy(id: &str, rule: serde_json::Value, filters: serde_json::Value) -> Policy {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": id, "status": "Active", "activityKind": "Wallets:Sign",
            "rule": rule, "action": { "kind": "Block" }, "filters": filters
        }))
        .unwrap()
    }

    fn whitelist_on(id: &str, wallet: &str, addresses: &[&str]) -> Policy {
        policy(
            id,
            serde_json::json!({ "kind": "TransactionRecipientWhitelist",
                "configuration": { "addresses": addresses } }),
            serde_json::json!({ "walletId": { "in": [wallet] } }),
        )
    }

    #[test]
    fn each_network_shows_its_own_whitelist_with_that_networks_approvals() {
        use DestinationAction::*;
        use DestinationRequestState::*;
        let requests = vec![
            on(
                Network::EthereumSepolia,
                request(B, "sepolia cold", Add, Approved, 1),
                B,
            ),
            on(
                Network::SolanaDevnet,
                request(B, "desk", Add, Approved, 2),
                SOL,
            ),
        ];
        let policies = vec![
            whitelist_on("plc-sepolia", WA_SEPOLIA, &[B]),
            // B is listed on Base by other means: shown there without the Sepolia label.
            whitelist_on("plc-base", WA_BASE, &[B]),
            whitelist_on("plc-solana", WA_SOLANA, &[SOL]),
        ];
        let live = policies::whitelists(&policies);
        let views = network_whitelists(&live, &three_wallets(), &requests);
        let summary: Vec<_> = views
            .iter()
            .map(|w| {
                (
                    w.network.as_str(),
                    w.policy_id.as_str(),
                    w.shared,
                    w.approved_destinations
                        .iter()
                        .map(|d| (d.address.as_str(), d.label.as_deref(), d.network.as_deref()))
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "EthereumSepolia",
                    "plc-sepolia",
                    false,
                    vec![(B, Some("sepolia cold"), Some("EthereumSepolia"))]
                ),
                (
                    "BaseSepolia",
                    "plc-base",
                    false,
                    vec![(B, None, Some("BaseSepolia"))]
                ),
                (
                    "SolanaDevnet",
                    "plc-solana",
                    false,
                    vec![(SOL, Some("desk"), Some("SolanaDevnet"))]
                ),
            ]
        );
        // The flat list: every network's, each with its network.
        let all: Vec<_> = all_approved_destinations(&views)
            .into_iter()
            .map(|d| (d.address, d.network))
            .collect();
        assert_eq!(
            all,
            [
                (B.to_owned(), Some("EthereumSepolia".to_owned())),
                (B.to_owned(), Some("BaseSepolia".to_owned())),
                (SOL.to_owned(), Some("SolanaDevnet".to_owned())),
            ]
        );
    }

    #[test]
    fn a_shared_whitelist_is_shown_on_every_network_and_listed_once() {
        use DestinationAction::*;
        use DestinationRequestState::*;
        let requests = vec![request(B, "cold", Add, Approved, 1)];
        let shared = policy(
            "plc-shared",
            serde_json::json!({ "kind": "TransactionRecipientWhitelist",
                "configuration": { "addresses": [B] } }),
            serde_json::json!({ "walletId": { "in": [WA_SEPOLIA, WA_BASE, WA_SOLANA] } }),
        );
        let live = policies::whitelists(&[shared]);
        let views = network_whitelists(&live, &three_wallets(), &requests);
        assert_eq!(views.len(), 3);
        assert!(
            views
                .iter()
                .all(|w| w.shared && w.policy_id == "plc-shared")
        );
        let all = all_approved_destinations(&views);
        assert_eq!(all.len(), 1, "{all:?}");
        assert_eq!(all[0].label.as_deref(), Some("cold"));
    }

    #[test]
    fn a_limit_bound_to_one_wallet_reports_that_wallet_only() {
        let amount = |id: &str, wallet: &str| {
            policy(
                id,
                serde_json::json!({ "kind": "TransactionCountVelocity",
                    "configuration": { "limit": 5, "timeframe": 60 } }),
                serde_json::json!({ "walletId": { "in": [wallet] } }),
            )
        };
        let policies = vec![
            amount("plc-count-sepolia", WA_SEPOLIA),
            amount("plc-count-solana", WA_SOLANA),
        ];
        let wallets = three_wallets();
        let limits = with_usage(
            policies::limits(&policies),
            &policies,
            &wallets,
            &[Vec::new(), Vec::new(), Vec::new()],
            &ClientId::parse("alice").unwrap(),
        );
        let usage: Vec<_> = limits
            .iter()
            .map(|l| {
                (
                    l.policy_id.as_str(),
                    l.usage
                        .iter()
                        .map(|u| (u.wallet_id.as_str(), u.network.as_str()))
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        assert_eq!(
            usage,
            [
                ("plc-count-sepolia", vec![(WA_SEPOLIA, "EthereumSepolia")]),
                ("plc-count-solana", vec![(WA_SOLANA, "SolanaDevnet")]),
            ]
        );
    }

    #[test]
    fn balances_keep_dfns_amounts_and_quotes() {
        let assets: dfns_client::wallets::WalletAssets =
            serde_json::from_value(serde_json::json!({
                "walletId": "wa-1", "network": "EthereumSepolia",
                "assets": [
                    { "kind": "Native", "symbol": "ETH", "decimals": 18, "verified": true,
                      "balance": "1234567890123456789012", "quotes": { "USD": 3020.82 } },
                    { "kind": "Erc20", "contract": "0xa0b8", "symbol": "USDC", "decimals": 6,
                      "balance": "1000000", "quotes": { "USD": 1.0 } }
                ],
                "netWorth": { "USD": 3729.37 }
            }))
            .unwrap();
        let balances = balances(&assets);
        let json = serde_json::to_value(&balances).unwrap();
        assert_eq!(json[0]["amount"], "1234567890123456789012");
        assert_eq!(json[0]["quotes"]["USD"], 3020.82);
        assert_eq!(json[1]["kind"], "Erc20");
        assert_eq!(json[1]["contract"], "0xa0b8");
        assert_eq!(json[1]["decimals"], 6);
    }

    #[test]
    fn account_not_found_is_a_404_with_its_own_code() {
        let api = ReportingError::AccountNotFound.to_api_error();
        assert_eq!(api.status, lambda_http::http::StatusCode::NOT_FOUND);
        assert_eq!(api.code, "account_not_found");
    }
}
