//! A client's withdrawals to its own approved destinations (issue 14).
//!
//! A withdrawal is an order of kind [`OrderKind::Withdrawal`]: the same record, the same
//! execution ([`crate::trading::execution::Executor`]: claim under a lease, checks at send time,
//! Dfns Transfer Asset with `externalId` = the withdrawal id, a crashed or throttled attempt
//! re-sent by the next run with the same `externalId`, the transfer followed by webhook and by
//! the in-flight refresh). So a withdrawal is sent at most once, with the orders' guarantees.
//!
//! What differs from the desk's orders:
//! - the client creates it, for its own account only (`POST /v1/withdrawals`), with an
//!   `Idempotency-Key`, and it is sent at once (the route runs the executor on it; if Dfns cannot
//!   take it now, the order-execution schedule sends it);
//! - its destination must be one of the client's approved destinations on its network: an
//!   address never approved (or removed since) is a 400, one whose `add` request is still open
//!   (cooling off, queued, or awaiting compliance) a 409; the check is repeated at send time, and
//!   Dfns' whitelist policy enforces it again whatever the platform does;
//! - the client sees it in its own states (`Requested` until sent), hears of every state change
//!   (notification and EventBridge event `withdrawal.<state>`), and its trail says `withdrawal.…`.
//!
//! Assets: `native`; on an EVM network an ERC-20 contract; on Solana an SPL token's mint (exact
//! case). Whether a mint is sent as Dfns' `Spl` or `Spl2022` is read from the client's wallet's
//! balance of that mint **at send time** (`check_at_send`): the order keeps the mint the client
//! gave (shown back as `asset`, no stored field to migrate), every other send-time fact is read
//! there too, and a mint's program is fixed when the mint is created, so reading it later cannot
//! give another answer. Creation reads the balances once as well, only to refuse (409) a mint
//! the wallet does not hold.

use dfns_client::policies::{PoliciesQuery, PolicyStatus};
use dfns_client::transfers::TransfersQuery;
use dfns_client::wallets::Asset as HeldAsset;
use domain::{
    Actor, Address, Amount, ClientId, DestinationAction, DestinationRequestState, Network,
    NetworkAddress, OrderId, OrderState, StateMachine,
};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use store::{DestinationRequest, NewOrder, Order, OrderKind, StoreError};
use time::OffsetDateTime;

use crate::App;
use crate::audit;
use crate::error::{PlatformError, Result};
use crate::notify::{self, Notice};
use crate::trading::TradingConfig;
use crate::trading::execution::{Executor, NotSent, SendTo, client_wallet};
use crate::trading::preview::{self, PastTransfer, Preview, PreviewInput, Verdict};
use crate::trading::registry::AssetKind;
use crate::trading::usd::Usd;

/// Audit action of a withdrawal that was ended without being sent (its reason says why).
pub const NOT_SENT: &str = "withdrawal.not_sent";
/// `asset` of a network's native coin.
pub const NATIVE: &str = "native";

/// Audit action (and notification kind) of a withdrawal entering `state`.
pub fn audit_action(state: OrderState) -> &'static str {
    match state {
        OrderState::Scheduled => "withdrawal.requested",
        OrderState::Claimed => "withdrawal.claimed",
        OrderState::Submitted => "withdrawal.submitted",
        OrderState::PendingApproval => "withdrawal.pending_approval",
        OrderState::Broadcasted => "withdrawal.broadcasted",
        OrderState::Confirmed => "withdrawal.confirmed",
        OrderState::Failed => "withdrawal.failed",
        OrderState::Rejected => "withdrawal.rejected",
        OrderState::Cancelled => "withdrawal.cancelled",
    }
}

/// A withdrawal's state as the client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum WithdrawalState {
    /// Accepted, not yet at Dfns (being sent, or waiting for the next run).
    Requested,
    /// Dfns has the transfer.
    Submitted,
    /// A policy holds it for a compliance officer's decision.
    PendingApproval,
    Broadcasted,
    Confirmed,
    /// Blocked by a rule or denied by an officer (`reason` says which).
    Rejected,
    /// Not sent (`reason` says why) or failed on chain.
    Failed,
    /// Cancelled by the client before it was sent.
    Cancelled,
}

impl From<OrderState> for WithdrawalState {
    fn from(state: OrderState) -> Self {
        match state {
            OrderState::Scheduled | OrderState::Claimed => Self::Requested,
            OrderState::Submitted => Self::Submitted,
            OrderState::PendingApproval => Self::PendingApproval,
            OrderState::Broadcasted => Self::Broadcasted,
            OrderState::Confirmed => Self::Confirmed,
            OrderState::Rejected => Self::Rejected,
            OrderState::Failed => Self::Failed,
            OrderState::Cancelled => Self::Cancelled,
        }
    }
}

/// Body of `POST /v1/withdrawals` and of its preview.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = crate::request_schema::withdrawal_rules)]
pub struct WithdrawalInput {
    /// One of the platform's networks.
    #[schemars(schema_with = "crate::request_schema::offered_network")]
    pub network: String,
    /// One of the caller's approved destinations on that network.
    #[schemars(schema_with = "crate::request_schema::address")]
    pub to: String,
    /// `native`; on an EVM network an ERC-20 token's contract; on Solana an SPL token's mint
    /// (base58, exact case).
    #[schemars(schema_with = "crate::request_schema::withdrawal_asset")]
    pub asset: String,
    /// In the asset's smallest units, a decimal integer string.
    #[schemars(schema_with = "crate::request_schema::positive_amount")]
    pub amount: String,
}

/// What a withdrawal asks to send. An SPL mint's program (Dfns' `Spl` or `Spl2022`) is not in
/// the request: [`WithdrawalAsset::resolve`] reads it from the wallet's balances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WithdrawalAsset {
    Native,
    /// Lowercase hex.
    Erc20 {
        contract: String,
    },
    /// Base58, exactly as given.
    SolanaToken {
        mint: String,
    },
}

impl WithdrawalAsset {
    /// From the stored `asset` of a withdrawal on `network` (written by [`Self::text`]).
    pub fn from_stored(network: Network, asset: &str) -> Self {
        if asset == NATIVE {
            Self::Native
        } else if network.family() == domain::NetworkFamily::Solana {
            Self::SolanaToken {
                mint: asset.to_owned(),
            }
        } else {
            Self::Erc20 {
                contract: asset.to_owned(),
            }
        }
    }

    /// The stored `asset`: `native`, the contract or the mint.
    pub fn text(&self) -> String {
        match self {
            Self::Native => NATIVE.to_owned(),
            Self::Erc20 { contract } => contract.clone(),
            Self::SolanaToken { mint } => mint.clone(),
        }
    }

    /// What to send, given the wallet's balances: an SPL mint is sent in the program the wallet
    /// holds it under; `None` when the wallet holds no balance of that mint (zero or unlisted).
    pub fn resolve(&self, held: &[HeldAsset]) -> Option<AssetKind> {
        use dfns_client::wallets::AssetKind as Held;
        match self {
            Self::Native => Some(AssetKind::Native),
            Self::Erc20 { contract } => Some(AssetKind::Erc20 {
                contract: contract.clone(),
            }),
            Self::SolanaToken { mint } => held
                .iter()
                .filter(|a| a.balance.to_u128().is_some_and(|b| b > 0))
                .find_map(|a| match &a.kind {
                    Held::Spl { mint: m } if m == mint => Some(AssetKind::Spl { mint: m.clone() }),
                    Held::Spl2022 { mint: m } if m == mint => {
                        Some(AssetKind::Spl2022 { mint: m.clone() })
                    }
                    _ => None,
                }),
        }
    }
}

/// A withdrawal input that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidWithdrawal {
    pub destination: NetworkAddress,
    pub asset: WithdrawalAsset,
    pub amount: Amount,
}

impl ValidWithdrawal {
    /// The stored `asset`: `native`, the contract (canonical) or the mint (as given).
    pub fn asset_text(&self) -> String {
        self.asset.text()
    }
}

/// Why a mint the client's wallet holds none of is not sent.
fn not_held_message(network: Network, mint: &str) -> String {
    format!("asset: your {network} wallet holds no token of mint {mint} (mints are case-sensitive)")
}

/// The 409 for a mint the client's wallet holds none of.
fn not_held(network: Network, mint: &str) -> PlatformError {
    PlatformError::Conflict(not_held_message(network, mint))
}

/// The wallet's balances at Dfns.
async fn held_assets(app: &App, wallet: &store::WalletMapping) -> Result<Vec<HeldAsset>> {
    let dfns = app.dfns_reader().await?;
    let wallet_id = dfns_client::WalletId::new(wallet.wallet_id.as_str());
    Ok(dfns.wallet_assets(&wallet_id, false).await?.assets)
}

/// What to send for `valid` from `wallet` (reads its balances only for an SPL mint).
async fn resolve_asset(
    app: &App,
    wallet: &store::WalletMapping,
    asset: &WithdrawalAsset,
    network: Network,
) -> Result<AssetKind> {
    let held = match asset {
        WithdrawalAsset::SolanaToken { .. } => held_assets(app, wallet).await?,
        _ => Vec::new(),
    };
    asset
        .resolve(&held)
        .ok_or_else(|| not_held(network, &asset.text()))
}

/// Validates a withdrawal's input against the platform's networks (pure).
pub fn validate(networks: &[Network], input: &WithdrawalInput) -> Result<ValidWithdrawal> {
    let bad = |m: String| PlatformError::BadRequest(m);
    let network = Network::parse(&input.network).map_err(|e| bad(e.to_string()))?;
    if !networks.contains(&network) {
        return Err(bad(format!("this platform does not run {network}")));
    }
    let destination =
        NetworkAddress::parse(network, &input.to).map_err(|e| bad(format!("to: {e}")))?;
    let asset = if input.asset == NATIVE {
        WithdrawalAsset::Native
    } else {
        match network.family() {
            // Bitcoin has no tokens.
            domain::NetworkFamily::Bitcoin => {
                return Err(bad(format!(
                    "asset: only `{NATIVE}` can be withdrawn on {network}"
                )));
            }
            // An SPL token, by its mint: kept exactly as given (base58 is case-sensitive).
            domain::NetworkFamily::Solana => {
                let mint = domain::SolanaAddress::parse(&input.asset).map_err(|e| {
                    bad(format!(
                        "asset: `{NATIVE}` or an SPL token's mint (a Solana address): {e}"
                    ))
                })?;
                WithdrawalAsset::SolanaToken {
                    mint: mint.as_str().to_owned(),
                }
            }
            domain::NetworkFamily::Evm => {
                let contract = Address::parse(network, &input.asset)
                    .map_err(|e| bad(format!("asset: {e}")))?;
                WithdrawalAsset::Erc20 {
                    contract: contract.canonical(),
                }
            }
        }
    };
    let amount = Amount::parse(&input.amount).map_err(|e| bad(format!("amount: {e}")))?;
    if amount.is_zero() {
        return Err(bad("amount must be greater than zero".into()));
    }
    Ok(ValidWithdrawal {
        destination,
        asset,
        amount,
    })
}

/// Whether the client may send to `destination` now, from its destination requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationStatus {
    /// Its latest decided request for the address is an approved `add`.
    Approved { label: String },
    /// An `add` of it is still open (cooling off, queued, or awaiting compliance).
    Waiting { state: DestinationRequestState },
    /// Never approved, or removed since.
    NotApproved,
}

/// The status of `destination` among `requests` (pure). A destination is approved per network:
/// an address approved on one network is not approved on another.
pub fn destination_status(
    requests: &[DestinationRequest],
    destination: &NetworkAddress,
) -> DestinationStatus {
    let of_it = || requests.iter().filter(|r| r.destination == *destination);
    let decided = of_it()
        .filter(|r| r.state == DestinationRequestState::Approved)
        .max_by_key(|r| (r.updated_at, r.id));
    if let Some(request) = decided
        && request.action == DestinationAction::Add
    {
        return DestinationStatus::Approved {
            label: request.label.clone(),
        };
    }
    match of_it()
        .filter(|r| r.action == DestinationAction::Add && !r.state.is_terminal())
        .max_by_key(|r| r.created_at)
    {
        Some(open) => DestinationStatus::Waiting { state: open.state },
        None => DestinationStatus::NotApproved,
    }
}

/// The API's refusal for a destination the client may not send to now.
fn refusal(destination: &NetworkAddress, status: &DestinationStatus) -> Option<PlatformError> {
    let address = destination.address().canonical();
    let network = destination.network();
    match status {
        DestinationStatus::Approved { .. } => None,
        DestinationStatus::Waiting { state } => Some(PlatformError::Conflict(format!(
            "{address} on {network} is not usable yet: its request is {state}"
        ))),
        DestinationStatus::NotApproved => Some(PlatformError::BadRequest(format!(
            "{address} is not one of your approved destinations on {network}"
        ))),
    }
}

/// A withdrawal as the client sees it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Withdrawal {
    pub id: OrderId,
    pub state: WithdrawalState,
    pub network: Network,
    pub to: String,
    /// `native`, the token's contract, or an SPL token's mint.
    pub asset: String,
    /// Smallest units.
    pub amount: Amount,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "domain::schema::Rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "domain::schema::Rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The Dfns transfer, once sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<String>,
    /// The compliance approval holding it, if a policy asked for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    /// Why it was rejected, failed, was not sent or was cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Withdrawal {
    pub fn of(order: &Order) -> Self {
        Self {
            id: order.id,
            state: order.state.into(),
            network: order.network,
            to: order.to.clone().unwrap_or_default(),
            asset: order.asset.clone(),
            amount: order.amount,
            created_at: order.created_at,
            updated_at: order.updated_at,
            transfer_id: order.transfer_id.clone(),
            approval_id: order.approval_id.clone(),
            reason: order.reason.clone(),
        }
    }
}

/// A page of withdrawals, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WithdrawalPage {
    pub items: Vec<Withdrawal>,
    /// Pass as `cursor` for the next (older) page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

async fn approved_or_refused(
    app: &App,
    client: &ClientId,
    destination: &NetworkAddress,
) -> Result<()> {
    let requests = app.store().list_destination_requests(client).await?;
    match refusal(destination, &destination_status(&requests, destination)) {
        None => Ok(()),
        Some(refused) => Err(refused),
    }
}

/// `POST /v1/withdrawals`: validates, checks the destination, stores the withdrawal (with the
/// idempotency key, in one transaction), records and notifies it, then sends it at once through
/// the order executor. A retry with the same key answers the same withdrawal (and finishes what
/// a failed first call left undone): one withdrawal, one transfer.
pub async fn create(
    app: &App,
    config: &TradingConfig,
    client: &ClientId,
    input: &WithdrawalInput,
    request_id: &str,
    idempotency: Option<&store::IdempotencyKey>,
) -> Result<Withdrawal> {
    let valid = validate(&app.settings().networks, input)?;
    let remembered = match idempotency {
        Some(key) => crate::trading::orders::remembered_order(app, key).await?,
        None => None,
    };
    let order = match remembered {
        Some(order) if order.client_id == *client => order,
        Some(_) => return Err(PlatformError::Internal("idempotency key of another".into())),
        None => {
            approved_or_refused(app, client, &valid.destination).await?;
            let network = valid.destination.network();
            let Some(wallet) = client_wallet(app, client, network).await? else {
                return Err(PlatformError::Conflict(format!(
                    "you have no wallet on {network}"
                )));
            };
            // Refuses a mint the wallet holds none of now; the program is read again at send.
            resolve_asset(app, &wallet, &valid.asset, network).await?;
            store_new(app, client, &valid, idempotency).await?
        }
    };
    record_requested(app, &order, request_id).await?;
    if order.state == OrderState::Scheduled {
        Executor::new(app, config)
            .execute_now(order.clone(), request_id)
            .await;
    }
    let now = app.store().get_order(&order.id).await?.unwrap_or(order);
    Ok(Withdrawal::of(&now))
}

async fn store_new(
    app: &App,
    client: &ClientId,
    valid: &ValidWithdrawal,
    idempotency: Option<&store::IdempotencyKey>,
) -> Result<Order> {
    let now = OffsetDateTime::now_utc();
    let new = NewOrder {
        id: OrderId::new(),
        client_id: client.clone(),
        kind: OrderKind::Withdrawal,
        network: valid.destination.network(),
        exchange: String::new(),
        to: Some(valid.destination.address().canonical()),
        asset: valid.asset_text(),
        amount: valid.amount,
        execute_at: now,
        created_by: format!("client:{client}"),
        created_at: now,
        needs_confirmation: false,
    };
    let order = crate::trading::orders::create_or_remembered(app, &new, idempotency).await?;
    // The key is scoped to the client, so its order is the client's; checked all the same.
    if order.client_id != *client {
        return Err(PlatformError::Internal("idempotency key of another".into()));
    }
    Ok(order)
}

/// The request in the client's trail and notifications, once each.
async fn record_requested(app: &App, order: &Order, request_id: &str) -> Result<()> {
    audit::record_once(
        app,
        &order.client_id,
        &format!("order:{}:{}", order.id, OrderState::Scheduled),
        Actor::Client {
            id: order.client_id.clone(),
        },
        audit_action(OrderState::Scheduled),
        request_id,
        serde_json::json!({
            "withdrawalId": order.id,
            "network": order.network,
            "to": order.to,
            "asset": order.asset,
            "amount": order.amount,
        }),
    )
    .await?;
    notify_state(app, order, OrderState::Scheduled, None).await
}

/// Tells the client its withdrawal entered `state` (once per state).
pub async fn notify_state(
    app: &App,
    order: &Order,
    state: OrderState,
    reason: Option<&str>,
) -> Result<()> {
    if state == OrderState::Claimed {
        return Ok(());
    }
    notify::notify(
        app,
        Notice {
            client_id: order.client_id.clone(),
            dedup_key: format!("withdrawal:{}:{state}", order.id),
            kind: audit_action(state),
            occurred_at: OffsetDateTime::now_utc(),
            detail: serde_json::json!({
                "withdrawalId": order.id,
                "state": WithdrawalState::from(state),
                "network": order.network,
                "to": order.to,
                "asset": order.asset,
                "amount": order.amount,
                "reason": reason,
            }),
        },
    )
    .await?;
    Ok(())
}

/// The executor's check at send time: the destination is still approved for this client on this
/// network (a removal approved since stops it).
pub async fn check_at_send(
    app: &App,
    order: &Order,
) -> Result<std::result::Result<SendTo, NotSent>> {
    let not_sent = |message: String| NotSent {
        code: "destination_not_approved",
        message,
    };
    let Some(to) = order.to.as_deref() else {
        return Ok(Err(not_sent("the withdrawal has no destination".into())));
    };
    let destination = match NetworkAddress::parse(order.network, to) {
        Ok(destination) => destination,
        Err(e) => return Ok(Err(not_sent(format!("destination {to}: {e}")))),
    };
    let requests = app
        .store()
        .list_destination_requests(&order.client_id)
        .await?;
    if let Some(refused) = refusal(&destination, &destination_status(&requests, &destination)) {
        return Ok(Err(not_sent(refused.to_string())));
    }
    let asset = WithdrawalAsset::from_stored(order.network, &order.asset);
    let kind = match &asset {
        WithdrawalAsset::SolanaToken { .. } => {
            let Some(wallet) = client_wallet(app, &order.client_id, order.network).await? else {
                return Ok(Err(NotSent {
                    code: "no_wallet",
                    message: format!("the client has no wallet on {}", order.network),
                }));
            };
            // A Dfns read that fails is an error: the order is retried, not ended on a guess.
            match asset.resolve(&held_assets(app, &wallet).await?) {
                Some(kind) => kind,
                None => {
                    return Ok(Err(NotSent {
                        code: "asset_not_held",
                        message: not_held_message(order.network, &asset.text()),
                    }));
                }
            }
        }
        _ => asset
            .resolve(&[])
            .expect("native and ERC-20 need no balance to resolve"),
    };
    Ok(Ok(SendTo { destination, kind }))
}

/// `GET /v1/withdrawals/{id}`: the caller's own only (another's is not found).
pub async fn get(app: &App, client: &ClientId, id: &OrderId) -> Result<Withdrawal> {
    owned(app, client, id)
        .await
        .map(|order| Withdrawal::of(&order))
}

async fn owned(app: &App, client: &ClientId, id: &OrderId) -> Result<Order> {
    match app.store().get_order(id).await? {
        Some(order) if order.client_id == *client && order.kind == OrderKind::Withdrawal => {
            Ok(order)
        }
        _ => Err(PlatformError::NotFound("no such withdrawal".into())),
    }
}

/// `GET /v1/withdrawals?limit&cursor`: newest first; `cursor` is the last id of the page before.
pub async fn list(
    app: &App,
    client: &ClientId,
    cursor: Option<&str>,
    limit: usize,
) -> Result<WithdrawalPage> {
    let before =
        match cursor {
            Some(raw) => Some(OrderId::parse(raw).map_err(|_| {
                PlatformError::BadRequest("cursor: not a cursor this API gave".into())
            })?),
            None => None,
        };
    let limit = limit.max(1);
    let (orders, more) = app
        .store()
        .list_withdrawals_for_client(client, before.as_ref(), limit)
        .await?;
    let next_cursor = more
        .then(|| orders.last().map(|o| o.id.to_string()))
        .flatten();
    Ok(WithdrawalPage {
        items: orders.iter().map(Withdrawal::of).collect(),
        next_cursor,
    })
}

/// `POST /v1/withdrawals/{id}/cancel`: only while it is not at Dfns. A withdrawal not yet tried
/// is cancelled at once; one whose attempt Dfns did not take (it is `Requested`, held by no run)
/// is cancelled once Dfns confirms it holds no transfer for it; otherwise 409.
pub async fn cancel(
    app: &App,
    config: &TradingConfig,
    client: &ClientId,
    id: &OrderId,
    request_id: &str,
) -> Result<Withdrawal> {
    let current = owned(app, client, id).await?;
    let reason = "cancelled by the client".to_owned();
    let not_cancellable = |state: OrderState| {
        PlatformError::Conflict(format!(
            "only a withdrawal not yet sent can be cancelled; this one is {}",
            WithdrawalState::from(state).as_str()
        ))
    };
    let being_sent =
        || PlatformError::Conflict("the withdrawal is being sent: try again in a minute".into());
    let cancelled = match current.state {
        OrderState::Scheduled => match app
            .store()
            .transition_order(
                id,
                OrderState::Scheduled,
                OrderState::Cancelled,
                &store::OrderChanges {
                    reason: Some(reason.clone()),
                    ..Default::default()
                },
                None,
                OffsetDateTime::now_utc(),
            )
            .await
        {
            Ok(order) => order,
            Err(StoreError::ConditionFailed { .. }) => return Err(being_sent()),
            Err(e) => return Err(e.into()),
        },
        OrderState::Claimed => {
            use crate::trading::execution::CancelUnsent;
            match Executor::new(app, config)
                .cancel_unsent(id, &reason, request_id)
                .await?
            {
                CancelUnsent::Cancelled(order) => *order,
                CancelUnsent::AlreadySent => {
                    return Err(PlatformError::Conflict(
                        "the withdrawal is already at the custodian and can no longer be cancelled"
                            .into(),
                    ));
                }
                CancelUnsent::Busy | CancelUnsent::Unknown => return Err(being_sent()),
            }
        }
        state => return Err(not_cancellable(state)),
    };
    audit::record_once(
        app,
        client,
        &format!("order:{id}:{}", OrderState::Cancelled),
        Actor::Client { id: client.clone() },
        audit_action(OrderState::Cancelled),
        request_id,
        serde_json::json!({ "withdrawalId": id, "from": "Requested" }),
    )
    .await?;
    notify_state(app, &cancelled, OrderState::Cancelled, Some(&reason)).await?;
    Ok(Withdrawal::of(&cancelled))
}

impl WithdrawalState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "Requested",
            Self::Submitted => "Submitted",
            Self::PendingApproval => "PendingApproval",
            Self::Broadcasted => "Broadcasted",
            Self::Confirmed => "Confirmed",
            Self::Rejected => "Rejected",
            Self::Failed => "Failed",
            Self::Cancelled => "Cancelled",
        }
    }
}

/// The preview's verdict, in the client's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PreviewVerdict {
    /// No rule stops it.
    Pass,
    /// A rule holds it for a compliance officer's decision.
    Approval,
    /// A rule blocks it.
    Block,
}

/// `POST /v1/withdrawals/preview`'s answer: what the client's own rules would do with this
/// withdrawal now, each rule with its use and headroom in its window.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WithdrawalPreview {
    pub verdict: PreviewVerdict,
    /// Whether the destination is usable now (an unapproved one would be refused whatever the
    /// rules say).
    pub destination_approved: bool,
    /// USD value of the withdrawal (absent when no price is known: amount rules then fail
    /// closed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_usd: Option<Usd>,
    /// Policies whose triggered rule decides the verdict.
    pub stopped_by: Vec<String>,
    /// Rules the platform cannot evaluate (screening): Dfns may still hold the withdrawal.
    pub unevaluated: Vec<String>,
    /// Each of the client's rules: triggered or not, its limit, use and headroom in its window.
    pub rules: Vec<preview::RuleEvaluation>,
}

/// `POST /v1/withdrawals/preview`: the desk's preview engine over the client's own policies
/// (the organisation's other policies are not the client's to see).
pub async fn preview(
    app: &App,
    client: &ClientId,
    input: &WithdrawalInput,
) -> Result<WithdrawalPreview> {
    let valid = validate(&app.settings().networks, input)?;
    let network = valid.destination.network();
    let wallet = client_wallet(app, client, network)
        .await?
        .ok_or_else(|| PlatformError::Conflict(format!("you have no wallet on {network}")))?;
    let requests = app.store().list_destination_requests(client).await?;
    let destination_approved = matches!(
        destination_status(&requests, &valid.destination),
        DestinationStatus::Approved { .. }
    );
    let own: Vec<String> = app
        .store()
        .client_policies(client)
        .await?
        .into_values()
        .collect();
    let target = SendTo {
        destination: valid.destination.clone(),
        kind: resolve_asset(app, &wallet, &valid.asset, network).await?,
    };
    let evaluation = evaluate(app, &wallet, &target, valid.amount, Some(&own)).await?;
    Ok(WithdrawalPreview {
        verdict: match evaluation.verdict {
            Verdict::Allowed => PreviewVerdict::Pass,
            Verdict::RequiresApproval => PreviewVerdict::Approval,
            Verdict::Blocked => PreviewVerdict::Block,
        },
        destination_approved,
        value_usd: evaluation.value_usd,
        stopped_by: evaluation.stopped_by,
        unevaluated: evaluation.unevaluated,
        rules: evaluation.rules,
    })
}

/// The preview engine over a wallet's live policies (only those in `only` when given), its recent
/// transfers and the asset's current USD quote, for `amount` of `target`'s asset. The desk's order
/// preview uses it too, over every policy.
pub async fn evaluate(
    app: &App,
    wallet: &store::WalletMapping,
    target: &SendTo,
    amount: Amount,
    only: Option<&[String]>,
) -> Result<Preview> {
    let wallet_id = dfns_client::WalletId::new(wallet.wallet_id.as_str());
    let dfns = app.dfns_reader().await?;
    let policies_query = PoliciesQuery {
        status: Some(PolicyStatus::Active),
        page_size: Some(100),
    };
    let transfers_query = TransfersQuery {
        page_size: Some(100),
    };
    let (wallet_info, assets, mut policies, transfers) = futures::try_join!(
        async { Ok::<_, PlatformError>(dfns.get_wallet(&wallet_id).await?) },
        async { Ok(dfns.wallet_assets(&wallet_id, false).await?) },
        async {
            Ok(dfns
                .list_policies(&policies_query)
                .try_collect::<Vec<_>>()
                .await?)
        },
        async {
            Ok(dfns
                .list_transfers(&wallet_id, &transfers_query)
                .take(crate::trading::orders::PREVIEW_TRANSFER_SCAN)
                .try_collect::<Vec<_>>()
                .await?)
        },
    )?;
    if let Some(only) = only {
        policies.retain(|p| only.iter().any(|id| id == p.id.as_str()));
    }
    let held = assets
        .assets
        .iter()
        .find(|a| target.kind.is_held_as(&a.kind));
    let value_usd = held.and_then(|a| {
        let price = Usd::price_from_quotes(a.quotes.as_ref())?;
        Usd::value_of(amount.get(), a.decimals, price)
    });
    let recent: Vec<PastTransfer> = transfers.iter().map(PastTransfer::from_transfer).collect();
    let to = target.destination.address().canonical();
    Ok(preview::evaluate(&PreviewInput {
        wallet_id: wallet_id.as_str(),
        wallet_tags: &wallet_info.tags,
        to: &to,
        value_usd,
        policies: &policies,
        recent_transfers: &recent,
        now: OffsetDateTime::now_utc(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::DestinationRequestId;

    const DEST: &str = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";

    fn input(network: &str, to: &str, asset: &str, amount: &str) -> WithdrawalInput {
        WithdrawalInput {
            network: network.into(),
            to: to.into(),
            asset: asset.into(),
            amount: amount.into(),
        }
    }

    #[test]
    fn inputs_are_validated_per_network() {
        let networks = [Network::EthereumSepolia];
        let valid = validate(
            &networks,
            &input(
                "EthereumSepolia",
                &DEST.to_uppercase().replace("0X", "0x"),
                "native",
                "1000",
            ),
        )
        .unwrap();
        // EVM addresses are kept lowercase.
        assert_eq!(valid.destination.address().canonical(), DEST);
        assert_eq!(valid.asset, WithdrawalAsset::Native);
        assert_eq!(valid.amount, Amount::new(1000));
        let token = validate(
            &networks,
            &input(
                "EthereumSepolia",
                DEST,
                "0x1C7D4B196CB0C7B01D743FBC6116A902379C7238",
                "5",
            ),
        )
        .unwrap();
        assert_eq!(
            token.asset_text(),
            "0x1c7d4b196cb0c7b01d743fbc6116a902379c7238"
        );
        for bad in [
            input("Base", DEST, "native", "1"),
            input("Solana", DEST, "native", "1"),
            input("EthereumSepolia", "0x123", "native", "1"),
            input("EthereumSepolia", DEST, "ETH", "1"),
            input("EthereumSepolia", DEST, "native", "0"),
            input("EthereumSepolia", DEST, "native", "1.5"),
            input("EthereumSepolia", DEST, "native", "-1"),
            input("EthereumSepolia", DEST, "native", "1e18"),
        ] {
            assert!(
                matches!(validate(&networks, &bad), Err(PlatformError::BadRequest(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn bitcoin_withdraws_its_coin_only_and_solana_also_spl_tokens_by_exact_mint() {
        let networks = [Network::BitcoinTestnet4, Network::SolanaDevnet];
        let tb = "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7";
        let sol = "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T";
        let mint = crate::trading::registry::DEVNET_USDC_MINT;
        validate(&networks, &input("BitcoinTestnet4", tb, "native", "1")).unwrap();
        // An address is not a token on Bitcoin (the document allows only `native` there).
        assert!(matches!(
            validate(&networks, &input("BitcoinTestnet4", tb, tb, "1")),
            Err(PlatformError::BadRequest(m)) if m.contains("only `native`")
        ));
        validate(&networks, &input("SolanaDevnet", sol, "native", "1")).unwrap();
        // A mint, kept exactly as given.
        let token = validate(&networks, &input("SolanaDevnet", sol, mint, "1")).unwrap();
        assert_eq!(
            token.asset,
            WithdrawalAsset::SolanaToken { mint: mint.into() }
        );
        assert_eq!(token.asset_text(), mint);
        assert_eq!(
            WithdrawalAsset::from_stored(Network::SolanaDevnet, &token.asset_text()),
            token.asset
        );
        // Not a Solana address: an EVM contract, a truncated mint, a non-base58 letter.
        for bad in [
            "0x1c7d4b196cb0c7b01d743fbc6116a902379c7238",
            &mint[..40],
            &mint.replacen('z', "0", 1),
        ] {
            assert!(
                matches!(
                    validate(&networks, &input("SolanaDevnet", sol, bad, "1")),
                    Err(PlatformError::BadRequest(m)) if m.starts_with("asset:")
                ),
                "{bad}"
            );
        }
    }

    fn held(kind: serde_json::Value, balance: &str) -> HeldAsset {
        let mut asset = kind;
        asset["decimals"] = 6.into();
        asset["balance"] = balance.into();
        serde_json::from_value(asset).unwrap()
    }

    #[test]
    fn a_mint_is_sent_in_the_program_the_wallet_holds_it_under_and_never_unheld() {
        use serde_json::json;
        let mint = crate::trading::registry::DEVNET_USDC_MINT;
        let asset = WithdrawalAsset::SolanaToken { mint: mint.into() };
        let native = held(json!({"kind": "Native"}), "5");
        assert_eq!(
            asset.resolve(&[
                native.clone(),
                held(json!({"kind": "Spl", "mint": mint}), "7")
            ]),
            Some(AssetKind::Spl { mint: mint.into() })
        );
        assert_eq!(
            asset.resolve(&[held(json!({"kind": "Spl2022", "mint": mint}), "7")]),
            Some(AssetKind::Spl2022 { mint: mint.into() })
        );
        // None of it: not listed, a zero balance, or a mint differing in one letter's case.
        let flipped = mint.replacen('z', "Z", 1);
        for holdings in [
            vec![native.clone()],
            vec![held(json!({"kind": "Spl", "mint": mint}), "0")],
            vec![held(json!({"kind": "Spl", "mint": flipped}), "7")],
        ] {
            assert_eq!(asset.resolve(&holdings), None, "{holdings:?}");
        }
        assert_eq!(
            WithdrawalAsset::Native.resolve(&[]),
            Some(AssetKind::Native)
        );
    }

    fn request(
        action: DestinationAction,
        state: DestinationRequestState,
        network: Network,
        minutes: i64,
    ) -> DestinationRequest {
        let at = OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(minutes);
        let at = at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        // Through the stored form, so fields added later (with defaults) need no change here.
        serde_json::from_value(serde_json::json!({
            "id": DestinationRequestId::new(),
            "clientId": "alice",
            "network": network,
            "address": DEST,
            "label": "cold wallet",
            "action": action,
            "state": state,
            "createdAt": at,
            "updatedAt": at,
        }))
        .unwrap()
    }

    #[test]
    fn a_destination_is_usable_only_while_its_latest_decision_is_an_approved_add_on_that_network() {
        use DestinationAction::{Add, Remove};
        use DestinationRequestState::{Approved, PendingApproval, Queued, Rejected};
        let sepolia = NetworkAddress::parse(Network::EthereumSepolia, DEST).unwrap();
        let status = |requests: &[DestinationRequest]| destination_status(requests, &sepolia);
        let on = Network::EthereumSepolia;

        assert_eq!(status(&[]), DestinationStatus::NotApproved);
        assert_eq!(
            status(&[request(Add, Approved, on, 1)]),
            DestinationStatus::Approved {
                label: "cold wallet".into()
            }
        );
        // Removed since: not usable, whatever came before.
        assert_eq!(
            status(&[
                request(Add, Approved, on, 1),
                request(Remove, Approved, on, 2)
            ]),
            DestinationStatus::NotApproved
        );
        // Added again after the removal.
        assert!(matches!(
            status(&[
                request(Add, Approved, on, 1),
                request(Remove, Approved, on, 2),
                request(Add, Approved, on, 3)
            ]),
            DestinationStatus::Approved { .. }
        ));
        // Waiting: queued or pending approval; a denied one is simply not approved.
        assert_eq!(
            status(&[request(Add, Queued, on, 1)]),
            DestinationStatus::Waiting { state: Queued }
        );
        assert_eq!(
            status(&[request(Add, PendingApproval, on, 1)]),
            DestinationStatus::Waiting {
                state: PendingApproval
            }
        );
        assert_eq!(
            status(&[request(Add, Rejected, on, 1)]),
            DestinationStatus::NotApproved
        );
        // Approved on another network only: not approved here.
        assert_eq!(
            status(&[request(Add, Approved, Network::Base, 1)]),
            DestinationStatus::NotApproved
        );
    }

    #[test]
    fn the_client_sees_requested_until_the_transfer_exists() {
        assert_eq!(
            WithdrawalState::from(OrderState::Scheduled),
            WithdrawalState::Requested
        );
        assert_eq!(
            WithdrawalState::from(OrderState::Claimed),
            WithdrawalState::Requested
        );
        assert_eq!(
            WithdrawalState::from(OrderState::PendingApproval),
            WithdrawalState::PendingApproval
        );
        for state in [
            OrderState::Scheduled,
            OrderState::Submitted,
            OrderState::Confirmed,
            OrderState::Rejected,
        ] {
            assert!(audit_action(state).starts_with("withdrawal."));
        }
    }
}
