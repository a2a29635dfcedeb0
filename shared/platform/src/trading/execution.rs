//! Flow 5 (docs/design.md), order execution: the scheduled run and the transfer events that
//! move orders on.
//!
//! One run ([`Executor::run`]):
//! 1. reads the due orders (`Scheduled` and due, or `Claimed` with an expired lease: a run that
//!    died) from the store's sparse due index;
//! 2. for each, with at most `concurrency` at once, **claims** it (a conditional write with a
//!    lease and a claim token: of overlapping runs exactly one gets each order);
//! 3. checks, at send time, that the client's authorization for the exchange is live and its
//!    deposit address approved, and that the exchange still takes the asset; otherwise the order
//!    ends `Failed` with a reason saying why (`no_authorization: …`, `authorization_revoked: …`,
//!    `destination_not_approved: …`) and nothing is sent — but an order claimed before (a run
//!    that held it may have reached Dfns, then died) first asks Dfns for the transfer with its
//!    `externalId` (see "Orders that may be at Dfns" below);
//! 4. calls Dfns Transfer Asset with `externalId` = the order id. The Dfns client retries with
//!    the same key, and a later run re-submitting a crashed order's transfer gets the original
//!    transfer back (docs/dfns.md §8.5), so no order is ever sent twice;
//! 5. records the transfer id and the transfer's state (fenced by the claim token).
//!
//! A failure on one order (Dfns or DynamoDB) is logged and counted; the others go on. A transfer
//! call that may succeed later (429, 5xx, timeout) hands the claim back, so the next run
//! re-submits it with the same `externalId` (if the run dies instead, the next run after the lease
//! does). Only a definite refusal (4xx) fails it.
//!
//! Orders that may be at Dfns: an order claimed more than once (`claimCount > 1`) may have been
//! sent by the run that held it before, which then died before recording the transfer. No run
//! ends such an order "not sent" (checks refused, no wallet, Dfns refused) without first asking
//! Dfns for the transfer carrying its `externalId` (every page of the wallet's transfers):
//! - found: the order follows that transfer (recorded as if this run had sent it; counted `sent`),
//!   whatever the checks say now: the funds are moving, and the books must say so;
//! - confirmed absent: it ends `Failed` with the check's reason, as a first claim would;
//! - the lookup failed (Dfns unavailable or throttling, our credentials): the claim is handed back
//!   and the next run asks again; nothing is decided on a guess.
//!
//! A first claim needs no lookup: only the holder of a claim sends, and nobody held it before.
//!
//! Afterwards the order follows its transfer ([`on_transfer_event`], from the webhook receiver, and
//! [`refresh_in_flight`], the poll that covers a lost webhook), forward only, every change in the
//! client's audit chain.

use std::sync::Arc;
use std::time::Instant;

use dfns_client::transfers::{TransferAsset, TransfersQuery};
use dfns_client::{DfnsClient, ExternalId, TransferId, TransferRequest, TransferStatus};
use domain::{
    Actor, ClientId, DestinationRequestState, Network, NetworkAddress, OrderId, OrderState,
};
use futures::StreamExt;
use serde::Serialize;
use store::{Advance, ClaimToken, Order, OrderChanges, OrderKind, StoreError};
use time::OffsetDateTime;

use super::TradingConfig;
use super::registry::{AssetKind, Deposit};
use crate::App;
use crate::audit;
use crate::error::{PlatformError, Result};

/// The audit actor of the run.
pub const COMPONENT: &str = "order-execution";

/// A run claims nothing this close to its invocation's deadline: room for the orders in hand to
/// finish (a Dfns call's own deadline is 30 s, then the order's writes).
pub const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_secs(45);

/// Transfers per page when looking an order's transfer up by its `externalId`.
const LOOKUP_PAGE_SIZE: u32 = 100;

/// Audit action of an order entering `state`.
pub fn audit_action(state: OrderState) -> &'static str {
    match state {
        OrderState::Scheduled => "order.created",
        OrderState::Claimed => "order.claimed",
        OrderState::Submitted => "order.submitted",
        OrderState::PendingApproval => "order.pending_approval",
        OrderState::Broadcasted => "order.broadcasted",
        OrderState::Confirmed => "order.confirmed",
        OrderState::Failed => "order.failed",
        OrderState::Rejected => "order.rejected",
        OrderState::Cancelled => "order.cancelled",
    }
}

/// Audit action of an order of `kind` entering `state`: a withdrawal's lines say `withdrawal.…`,
/// so the client's trail reads as what happened.
pub fn audit_action_of(kind: OrderKind, state: OrderState) -> &'static str {
    match kind {
        OrderKind::Exchange => audit_action(state),
        OrderKind::Withdrawal => crate::withdrawals::audit_action(state),
    }
}

/// Decides, after Dfns accepted an order's transfer, whether the run goes on (`true`).
pub type AfterTransferHook = Arc<dyn Fn(&OrderId) -> bool + Send + Sync>;

/// Test hooks (all `None` in production).
#[derive(Clone, Default)]
pub struct ExecutionHooks {
    /// Called after Dfns accepted an order's transfer and before the order is updated. Returning
    /// `false` abandons the order right there, exactly as if the run had died: crash injection.
    pub after_transfer_accepted: Option<AfterTransferHook>,
}

impl std::fmt::Debug for ExecutionHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutionHooks")
            .field(
                "after_transfer_accepted",
                &self.after_transfer_accepted.is_some(),
            )
            .finish()
    }
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// Due orders read.
    pub due: usize,
    /// Orders this run claimed.
    pub claimed: usize,
    /// Claimed orders whose transfer Dfns accepted (or had accepted before) and that were
    /// recorded.
    pub sent: usize,
    /// Claimed orders ended without sending (checks refused them, or Dfns refused the transfer;
    /// for an order claimed before, only once Dfns confirmed it has no transfer for it).
    pub not_sent: usize,
    /// Orders another run held or moved first.
    pub skipped: usize,
    /// Orders left claimed for a later run (Dfns unavailable or throttling, for the transfer or
    /// for the lookup of an earlier run's transfer).
    pub retry_later: usize,
    /// Orders that hit an unexpected error (logged); they are retried after their lease.
    pub errors: usize,
    /// Orders abandoned by the crash-injection hook.
    pub abandoned: usize,
    /// Due orders this run left unclaimed for the next one: its time to claim was up
    /// (`ORDER_RUN_SECONDS`, or the invocation's deadline near).
    pub deferred: usize,
}

/// What [`Executor::cancel_unsent`] did.
#[derive(Debug)]
pub enum CancelUnsent {
    /// Cancelled: Dfns holds no transfer for it.
    Cancelled(Box<Order>),
    /// Dfns has its transfer: it follows it instead.
    AlreadySent,
    /// A run holds it (or it moved on) right now.
    Busy,
    /// Dfns could not say; nothing changed.
    Unknown,
}

enum Outcome {
    Deferred,
    Sent,
    NotSent,
    Skipped,
    RetryLater,
    Error,
    Abandoned,
}

/// Why an order is not sent: a stable code (first word of the stored reason) and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotSent {
    pub code: &'static str,
    pub message: String,
}

impl NotSent {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The order's stored reason: `"<code>: <message>"`.
    pub fn reason(&self) -> String {
        format!("{}: {}", self.code, self.message)
    }
}

/// The order state a transfer's status means (and why, for an end without success).
pub fn order_state_of(transfer: &TransferRequest) -> OrderState {
    match transfer.status {
        TransferStatus::Pending if transfer.approval_id.is_some() => OrderState::PendingApproval,
        TransferStatus::Pending | TransferStatus::Executing => OrderState::Submitted,
        TransferStatus::Broadcasted => OrderState::Broadcasted,
        TransferStatus::Confirmed => OrderState::Confirmed,
        TransferStatus::Failed => OrderState::Failed,
        TransferStatus::Rejected => OrderState::Rejected,
        _ => OrderState::Submitted,
    }
}

fn transfer_changes(transfer: &TransferRequest) -> OrderChanges {
    OrderChanges {
        transfer_id: Some(transfer.id.as_str().to_owned()),
        approval_id: transfer.approval_id.as_ref().map(|a| a.as_str().to_owned()),
        reason: transfer.reason.clone(),
    }
}

/// Where, and as what, an order's funds go: checked at send time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendTo {
    pub destination: NetworkAddress,
    pub kind: AssetKind,
}

impl From<&Deposit> for SendTo {
    fn from(deposit: &Deposit) -> Self {
        Self {
            destination: deposit.destination.clone(),
            kind: deposit.kind.clone(),
        }
    }
}

/// The body Dfns gets for an order.
pub fn transfer_asset(target: &SendTo, order: &Order) -> TransferAsset {
    let to = target.destination.address().canonical();
    let amount = dfns_client::Amount::from(order.amount.get());
    match &target.kind {
        AssetKind::Native => TransferAsset::Native {
            to,
            amount,
            memo: None,
            priority: None,
        },
        AssetKind::Erc20 { contract } => TransferAsset::Erc20 {
            contract: contract.clone(),
            to,
            amount,
            priority: None,
        },
        // An SPL token lands in the recipient's associated token account for the mint, which a
        // venue's or a client's address may not have yet (it has never held that token): without
        // `createDestinationAccount` Dfns' default (`false`) builds a transfer that fails on
        // chain. With it, Dfns creates the account only when it is missing, the wallet paying
        // its rent (about 0.002 SOL) that once.
        AssetKind::Spl { mint } => TransferAsset::Spl {
            to,
            amount,
            mint: mint.clone(),
            memo: None,
            create_destination_account: Some(true),
        },
        AssetKind::Spl2022 { mint } => TransferAsset::Spl2022 {
            to,
            amount,
            mint: mint.clone(),
            memo: None,
            create_destination_account: Some(true),
        },
    }
}

/// The client's Dfns wallet on `network`.
pub async fn client_wallet(
    app: &App,
    client: &ClientId,
    network: Network,
) -> Result<Option<store::WalletMapping>> {
    Ok(app
        .store()
        .list_wallets(client)
        .await?
        .into_iter()
        .find(|w| w.address.network() == network))
}

/// Whether `order` may be sent now, and where to. An exchange order: the exchange takes its asset
/// on its network, the client's authorization for the exchange is live, and the deposit
/// address's `add` request is approved. A withdrawal: its destination is still one of the
/// client's approved destinations on its network. `Ok(Err(..))` says why not.
pub async fn check_order(
    app: &App,
    config: &TradingConfig,
    order: &Order,
) -> Result<std::result::Result<SendTo, NotSent>> {
    match order.kind {
        OrderKind::Exchange => Ok(check_exchange_order(app, config, order)
            .await?
            .map(|deposit| SendTo::from(&deposit))),
        OrderKind::Withdrawal => crate::withdrawals::check_at_send(app, order).await,
    }
}

async fn check_exchange_order(
    app: &App,
    config: &TradingConfig,
    order: &Order,
) -> Result<std::result::Result<Deposit, NotSent>> {
    let Some(venue) = config.registry.venue(&order.exchange) else {
        return Ok(Err(NotSent::new(
            "exchange_unknown",
            format!("exchange {} is no longer configured", order.exchange),
        )));
    };
    let Some(deposit) = venue.deposit(order.network, &order.asset) else {
        return Ok(Err(NotSent::new(
            "asset_unsupported",
            format!(
                "{} no longer takes {} on {}",
                order.exchange, order.asset, order.network
            ),
        )));
    };
    let store = app.store();
    let Some(authorization) = store
        .current_trading_authorization(&order.client_id, &venue.name)
        .await?
    else {
        let revoked = store
            .list_trading_authorizations(&order.client_id)
            .await?
            .into_iter()
            .any(|a| a.exchange == venue.name && a.is_revoked());
        return Ok(Err(if revoked {
            NotSent::new(
                "authorization_revoked",
                format!(
                    "the client revoked its trading authorization for {}",
                    venue.name
                ),
            )
        } else {
            NotSent::new(
                "no_authorization",
                format!("the client has not authorized trading on {}", venue.name),
            )
        }));
    };
    let address = deposit.destination.address().canonical();
    let Some(authorized) = authorization
        .destinations
        .iter()
        .find(|d| d.destination == deposit.destination)
    else {
        return Ok(Err(NotSent::new(
            "destination_not_approved",
            format!("the authorization does not cover {address} (the exchange's address changed)"),
        )));
    };
    let state = match authorized.add_request_id {
        Some(id) => store
            .get_destination_request(&order.client_id, &id)
            .await?
            .map(|r| r.state),
        None => None,
    };
    match state {
        Some(DestinationRequestState::Approved) => Ok(Ok(deposit.clone())),
        Some(state) => Ok(Err(NotSent::new(
            "destination_not_approved",
            format!("deposit address {address} is {state}, not approved"),
        ))),
        None => Ok(Err(NotSent::new(
            "destination_not_approved",
            format!("deposit address {address} has not been submitted for approval yet"),
        ))),
    }
}

/// Runs due orders. Build one per invocation (cheap) or keep one per container.
#[derive(Debug, Clone)]
pub struct Executor {
    app: App,
    config: TradingConfig,
    dfns: Option<DfnsClient>,
    hooks: ExecutionHooks,
}

impl Executor {
    pub fn new(app: &App, config: &TradingConfig) -> Self {
        Self {
            app: app.clone(),
            config: config.clone(),
            dfns: None,
            hooks: ExecutionHooks::default(),
        }
    }

    /// Uses this Dfns client instead of the app's (e.g. one without the client-side rate limit,
    /// for benchmarks against the emulator).
    pub fn with_dfns(mut self, dfns: DfnsClient) -> Self {
        self.dfns = Some(dfns);
        self
    }

    pub fn with_hooks(mut self, hooks: ExecutionHooks) -> Self {
        self.hooks = hooks;
        self
    }

    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.config.concurrency = concurrency.max(1);
        self
    }

    async fn dfns(&self) -> Result<DfnsClient> {
        match &self.dfns {
            Some(client) => Ok(client.clone()),
            None => self.app.dfns().await,
        }
    }

    /// One run at `now` (the scheduled event's time). Each order's claim and writes use `now`
    /// plus the time the run has taken so far, so leases stay honest in a long run.
    pub async fn run(&self, now: OffsetDateTime) -> Result<RunReport> {
        self.run_within(now, None).await
    }

    /// [`Executor::run`] in an invocation that ends at `deadline`: claims orders for
    /// `run_for` and never within [`DEADLINE_MARGIN`] of the deadline; the orders it did not
    /// reach stay due, unclaimed, for the next run. So consecutive runs of the schedule do not
    /// pile up on the Dfns budget, and none is cut off holding claims that then wait out their
    /// lease.
    pub async fn run_within(
        &self,
        now: OffsetDateTime,
        deadline: Option<Instant>,
    ) -> Result<RunReport> {
        let started = Instant::now();
        let mut claim_until = started + self.config.run_for;
        if let Some(deadline) = deadline {
            claim_until = claim_until.min(deadline.checked_sub(DEADLINE_MARGIN).unwrap_or(started));
        }
        let run_id = format!("run-{}", ulid::Ulid::new());
        let due = self
            .app
            .store()
            .list_due_orders(now, self.config.batch_limit)
            .await?;
        let mut report = RunReport {
            due: due.len(),
            ..RunReport::default()
        };
        // `buffer_unordered` starts each order's future when a slot frees: the time is checked
        // then, before the claim.
        let run_id_ref = run_id.as_str();
        let outcomes: Vec<Outcome> = futures::stream::iter(due)
            .map(|order| async move {
                if Instant::now() >= claim_until {
                    return Outcome::Deferred;
                }
                self.execute(order, now, started, run_id_ref).await
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        for outcome in outcomes {
            match outcome {
                Outcome::Sent => report.sent += 1,
                Outcome::NotSent => report.not_sent += 1,
                Outcome::Skipped => report.skipped += 1,
                Outcome::RetryLater => report.retry_later += 1,
                Outcome::Error => report.errors += 1,
                Outcome::Abandoned => report.abandoned += 1,
                Outcome::Deferred => report.deferred += 1,
            }
        }
        report.claimed =
            report.sent + report.not_sent + report.retry_later + report.errors + report.abandoned;
        tracing::info!(run = %run_id, ?report, elapsed_ms = started.elapsed().as_millis() as u64, "order execution run finished");
        Ok(report)
    }

    /// Sends one order now, exactly as a run would (claim, checks, transfer, record): a client's
    /// withdrawal is sent when it is made rather than at the next run. Whatever this attempt
    /// cannot finish (Dfns throttling, a crash) the scheduled runs finish, as for any order.
    pub async fn execute_now(&self, order: Order, request_id: &str) {
        let id = order.id;
        let outcome = self
            .execute(order, OffsetDateTime::now_utc(), Instant::now(), request_id)
            .await;
        if !matches!(outcome, Outcome::Sent | Outcome::NotSent) {
            tracing::info!(order = %id, "not sent at once; the next execution run takes it");
        }
    }

    /// Cancels a claimed order that Dfns never received (a withdrawal whose first attempt Dfns
    /// refused): takes the claim (refused while a run holds it), asks Dfns for a transfer with the
    /// order's `externalId`, and only when Dfns confirms there is none moves it to `Cancelled`
    /// under that claim. If Dfns has one, the order follows it and is not cancelled.
    pub async fn cancel_unsent(
        &self,
        id: &OrderId,
        reason: &str,
        request_id: &str,
    ) -> Result<CancelUnsent> {
        let now = OffsetDateTime::now_utc();
        let claimed = match self
            .app
            .store()
            .claim_order(id, now, self.config.lease)
            .await
        {
            Ok(claimed) => claimed,
            Err(StoreError::ConditionFailed { .. } | StoreError::NotFound { .. }) => {
                return Ok(CancelUnsent::Busy);
            }
            Err(error) => return Err(error.into()),
        };
        let (order, claim) = (claimed.order, claimed.claim);
        match self.find_transfer(&order).await {
            Ok(Some(transfer)) => {
                self.record_transfer(&order, &claim, &transfer, now, request_id)
                    .await?;
                Ok(CancelUnsent::AlreadySent)
            }
            Ok(None) => {
                let changes = OrderChanges {
                    reason: Some(reason.to_owned()),
                    ..OrderChanges::default()
                };
                match self
                    .app
                    .store()
                    .transition_order(
                        id,
                        OrderState::Claimed,
                        OrderState::Cancelled,
                        &changes,
                        Some(&claim),
                        OffsetDateTime::now_utc(),
                    )
                    .await
                {
                    Ok(cancelled) => Ok(CancelUnsent::Cancelled(Box::new(cancelled))),
                    Err(StoreError::ConditionFailed { .. }) => Ok(CancelUnsent::Busy),
                    Err(e) => Err(e.into()),
                }
            }
            Err(error) => {
                tracing::warn!(order = %id, %error, "could not learn whether the order is at Dfns; not cancelled");
                self.hand_back(&order, &claim, OffsetDateTime::now_utc())
                    .await;
                Ok(CancelUnsent::Unknown)
            }
        }
    }

    async fn execute(
        &self,
        order: Order,
        run_at: OffsetDateTime,
        started: Instant,
        run_id: &str,
    ) -> Outcome {
        let id = order.id;
        let now = || run_at + started.elapsed();
        let claimed = match self
            .app
            .store()
            .claim_order(&id, now(), self.config.lease)
            .await
        {
            Ok(claimed) => claimed,
            Err(StoreError::ConditionFailed { .. } | StoreError::NotFound { .. }) => {
                return Outcome::Skipped;
            }
            Err(error) => {
                tracing::error!(order = %id, %error, "claiming an order failed");
                return Outcome::Error;
            }
        };
        match self.send(claimed.order, claimed.claim, now, run_id).await {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::error!(order = %id, %error, "executing an order failed; retried after its lease");
                Outcome::Error
            }
        }
    }

    async fn send(
        &self,
        order: Order,
        claim: ClaimToken,
        now: impl Fn() -> OffsetDateTime,
        run_id: &str,
    ) -> Result<Outcome> {
        let app = &self.app;
        let system = || Actor::System {
            id: COMPONENT.into(),
        };
        audit::record(
            app,
            &order.client_id,
            system(),
            audit_action_of(order.kind, OrderState::Claimed),
            run_id,
            serde_json::json!({
                "orderId": order.id,
                "claimCount": order.claim_count,
                "leaseExpiresAt": order.lease_expires_at.map(|t| t.unix_timestamp()),
            }),
        )
        .await?;
        let target = match check_order(app, &self.config, &order).await? {
            Ok(target) => target,
            Err(not_sent) => {
                return self
                    .end_unsent(&order, &claim, not_sent, &now, run_id)
                    .await;
            }
        };
        let Some(wallet) = client_wallet(app, &order.client_id, order.network).await? else {
            let not_sent = NotSent::new(
                "no_wallet",
                format!("the client has no wallet on {}", order.network),
            );
            return self
                .end_unsent(&order, &claim, not_sent, &now, run_id)
                .await;
        };
        let wallet_id = dfns_client::WalletId::new(wallet.wallet_id.as_str());
        let dfns = self.dfns().await?;
        let asset = transfer_asset(&target, &order);
        let transfer = match dfns
            .transfer(&wallet_id, ExternalId::new(order.id.to_string()), asset)
            .await
        {
            Ok(outcome) => outcome.into_transfer(),
            Err(error) => {
                // The key is already bound to a transfer with another body (the registry's address
                // changed between attempts): that transfer is this order's; never send a second.
                if let Some(existing) = error.api().and_then(|api| api.duplicate_id()) {
                    dfns.get_transfer(&wallet_id, &TransferId::new(existing))
                        .await?
                } else if error.is_retryable()
                    || error.status().is_none()
                    // A rotated token (the next run re-reads the secret) or a missing permission
                    // (an operator's fix) must not fail the client's order.
                    || error.is_our_credentials()
                {
                    tracing::warn!(order = %order.id, %error, "Dfns did not take the transfer now; the next run re-submits it with the same externalId");
                    // Re-sending is safe: same externalId, and claims stay fenced.
                    return Ok(self.hand_back(&order, &claim, now()).await);
                } else {
                    tracing::error!(order = %order.id, %error, "Dfns refused the transfer");
                    let message = error
                        .api()
                        .map(|api| api.message.clone())
                        .unwrap_or_else(|| error.to_string());
                    let not_sent = NotSent::new(
                        "refused_by_custodian",
                        format!("the custody provider refused the transfer: {message}"),
                    );
                    return self
                        .end_unsent(&order, &claim, not_sent, &now, run_id)
                        .await;
                }
            }
        };
        if let Some(hook) = &self.hooks.after_transfer_accepted {
            if !hook(&order.id) {
                return Ok(Outcome::Abandoned);
            }
        }
        self.record_transfer(&order, &claim, &transfer, now(), run_id)
            .await?;
        // The client's activity row (the transfer's events move it forward).
        crate::reporting::read_model::record_transfer(app.store(), &order.client_id, &transfer)
            .await?;
        Ok(Outcome::Sent)
    }

    /// Moves the claimed order to the state its transfer reports, with the transfer's id (fenced
    /// by the claim), and audits it once.
    async fn record_transfer(
        &self,
        order: &Order,
        claim: &ClaimToken,
        transfer: &TransferRequest,
        now: OffsetDateTime,
        run_id: &str,
    ) -> Result<()> {
        let app = &self.app;
        let system = || Actor::System {
            id: COMPONENT.into(),
        };
        let target = order_state_of(transfer);
        let changes = transfer_changes(transfer);
        match app
            .store()
            .transition_order(
                &order.id,
                OrderState::Claimed,
                target,
                &changes,
                Some(claim),
                now,
            )
            .await
        {
            Ok(_) => {
                record_order_change(app, order, target, &changes, system(), run_id).await?;
            }
            Err(StoreError::ConditionFailed { .. }) => {
                // A transfer webhook (or a successor run) moved the order first: apply ours only
                // if it is newer.
                apply_transfer(app, order, transfer, system(), run_id).await?;
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Hands the claim back so the next run retries the order, rather than waiting out the lease
    /// (a later claim, or an order that moved on, is left alone).
    async fn hand_back(&self, order: &Order, claim: &ClaimToken, now: OffsetDateTime) -> Outcome {
        match self.app.store().release_claim(&order.id, claim, now).await {
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
            Err(release) => {
                tracing::warn!(order = %order.id, error = %release, "could not hand the claim back; retried after its lease");
            }
        }
        Outcome::RetryLater
    }

    /// The transfer carrying the order's `externalId` at Dfns, from the client's wallet on the
    /// order's network: `Ok(None)` is a confirmed absence (every page read, or no wallet to have
    /// sent from: wallet mappings are never removed, and a run needs one to send).
    async fn find_transfer(&self, order: &Order) -> Result<Option<TransferRequest>> {
        let Some(wallet) = client_wallet(&self.app, &order.client_id, order.network).await? else {
            return Ok(None);
        };
        let wallet_id = dfns_client::WalletId::new(wallet.wallet_id.as_str());
        let dfns = self.dfns().await?;
        let query = TransfersQuery {
            page_size: Some(LOOKUP_PAGE_SIZE),
        };
        Ok(dfns
            .find_transfer_by_external_id(
                &wallet_id,
                &ExternalId::new(order.id.to_string()),
                &query,
            )
            .await?)
    }

    /// Ends a claimed order `Failed` without a transfer. An order claimed before may have
    /// reached Dfns under an earlier claim: it ends so only once Dfns confirms it has no transfer
    /// with the order's `externalId`; if it has one, the order follows it instead; if Dfns cannot
    /// tell now, the claim is handed back for the next run.
    async fn end_unsent(
        &self,
        order: &Order,
        claim: &ClaimToken,
        not_sent: NotSent,
        now: &impl Fn() -> OffsetDateTime,
        run_id: &str,
    ) -> Result<Outcome> {
        // `claim_count` includes this run's claim.
        if order.claim_count > 1 {
            match self.find_transfer(order).await {
                Ok(Some(transfer)) => {
                    tracing::warn!(order = %order.id, transfer = %transfer.id, code = not_sent.code, "an earlier run's transfer is at Dfns: the order follows it rather than ending not sent");
                    self.record_transfer(order, claim, &transfer, now(), run_id)
                        .await?;
                    return Ok(Outcome::Sent);
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(order = %order.id, %error, code = not_sent.code, "could not learn whether an earlier run's transfer is at Dfns; the next run asks again");
                    return Ok(self.hand_back(order, claim, now()).await);
                }
            }
        }
        let now = now();
        let changes = OrderChanges {
            reason: Some(not_sent.reason()),
            ..OrderChanges::default()
        };
        match self
            .app
            .store()
            .transition_order(
                &order.id,
                OrderState::Claimed,
                OrderState::Failed,
                &changes,
                Some(claim),
                now,
            )
            .await
        {
            Ok(_) => {
                tracing::info!(order = %order.id, code = not_sent.code, "order not sent");
                if order.kind == OrderKind::Withdrawal {
                    crate::withdrawals::notify_state(
                        &self.app,
                        order,
                        OrderState::Failed,
                        Some(&not_sent.reason()),
                    )
                    .await?;
                }
                audit::record(
                    &self.app,
                    &order.client_id,
                    Actor::System {
                        id: COMPONENT.into(),
                    },
                    match order.kind {
                        OrderKind::Exchange => "order.not_sent",
                        OrderKind::Withdrawal => crate::withdrawals::NOT_SENT,
                    },
                    run_id,
                    serde_json::json!({
                        "orderId": order.id,
                        "state": OrderState::Failed,
                        "code": not_sent.code,
                        "reason": not_sent.message,
                    }),
                )
                .await?;
                Ok(Outcome::NotSent)
            }
            Err(StoreError::ConditionFailed { .. }) => Ok(Outcome::Skipped),
            Err(e) => Err(e.into()),
        }
    }
}

/// The once-key of an order's audit line for entering `state`: each state is recorded once per
/// order, whichever path (the run, a webhook, a revocation, a retry) reports it.
pub(crate) fn order_once_key(order: &OrderId, state: OrderState) -> String {
    format!("order:{order}:{state}")
}

async fn record_order_change(
    app: &App,
    order: &Order,
    state: OrderState,
    changes: &OrderChanges,
    actor: Actor,
    request_id: &str,
) -> Result<()> {
    // Forward-only states: each happens once per order, and is recorded once however many paths
    // (the run, the webhook, a retry after a crash) report it.
    audit::record_once(
        app,
        &order.client_id,
        &order_once_key(&order.id, state),
        actor,
        audit_action_of(order.kind, state),
        request_id,
        serde_json::json!({
            "orderId": order.id,
            "state": state,
            "transferId": changes.transfer_id,
            "approvalId": changes.approval_id,
            "reason": changes.reason,
        }),
    )
    .await?;
    // The client hears of each state of its own withdrawals (once each: de-duplicated).
    if order.kind == OrderKind::Withdrawal {
        crate::withdrawals::notify_state(app, order, state, changes.reason.as_deref()).await?;
    }
    Ok(())
}

async fn apply_transfer(
    app: &App,
    order: &Order,
    transfer: &TransferRequest,
    actor: Actor,
    request_id: &str,
) -> Result<bool> {
    let target = order_state_of(transfer);
    let changes = transfer_changes(transfer);
    match app
        .store()
        .advance_order(&order.id, target, &changes, OffsetDateTime::now_utc())
        .await
    {
        Ok(Advance::Applied(_)) => {
            record_order_change(app, order, target, &changes, actor, request_id).await?;
            Ok(true)
        }
        // Already there: an earlier report moved it, and may have stopped before its audit line.
        Ok(Advance::Stale(current)) if current.state == target => {
            record_order_change(app, order, target, &changes, actor, request_id).await?;
            Ok(false)
        }
        Ok(Advance::Stale(_)) => Ok(false),
        // A report that does not fit the order's lifecycle (e.g. it is still `Scheduled`): log
        // it rather than fail the delivery forever.
        Err(StoreError::IllegalTransition { from, to, .. }) => {
            tracing::warn!(order = %order.id, %from, %to, "transfer event does not fit the order; ignored");
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// Hook for the Dfns webhook receiver: call for every `wallet.transfer.*` event. If the
/// transfer belongs to an order (`externalId` = order id, from the client's own wallet), the
/// order moves to the state the transfer reports — forward only, so a late, repeated or
/// out-of-order event changes nothing — and the change is audited. Returns whether the order
/// moved.
pub async fn on_transfer_event(
    app: &App,
    transfer: &TransferRequest,
    actor: Actor,
    request_id: &str,
) -> Result<bool> {
    let Some(order_id) = transfer
        .external_id
        .as_ref()
        .and_then(|e| OrderId::parse(e.as_str()).ok())
    else {
        return Ok(false);
    };
    let Some(order) = app.store().get_order(&order_id).await? else {
        return Ok(false);
    };
    let wallet = client_wallet(app, &order.client_id, order.network).await?;
    if wallet.is_none_or(|w| w.wallet_id.as_str() != transfer.wallet_id.as_str()) {
        tracing::warn!(order = %order_id, wallet = %transfer.wallet_id, "a transfer names an order of another wallet; ignored");
        return Ok(false);
    }
    let moved = apply_transfer(app, &order, transfer, actor, request_id).await?;
    // A transfer an officer held has been decided (or its approval expired): record the
    // decisions even if the approval's own event is lost (once each, whoever reports it).
    let approval = transfer
        .approval_id
        .as_ref()
        .map(|a| a.as_str().to_owned())
        .or_else(|| order.approval_id.clone());
    if let Some(approval) = approval
        && order_state_of(transfer) != OrderState::PendingApproval
    {
        let dfns = app.dfns_reader().await?;
        crate::compliance::follow_approval(
            app,
            &dfns,
            &approval,
            OffsetDateTime::now_utc(),
            request_id,
        )
        .await?;
    }
    Ok(moved)
}

/// The fallback for lost webhooks: re-reads from Dfns the transfer of every order still in flight
/// (`Submitted`, `PendingApproval`, `Broadcasted`) that has not changed for `quiet_for`, and
/// applies it like an event (an officer's decision on a held one is recorded from its approval).
/// For an order still held, the officers' alert and reminder go out if they have not
/// ([`crate::compliance::alert_officers`]). Returns how many orders moved.
pub async fn refresh_in_flight(
    app: &App,
    dfns: &DfnsClient,
    quiet_for: time::Duration,
    now: OffsetDateTime,
    request_id: &str,
) -> Result<usize> {
    let orders = app.store().in_flight_orders().await?;
    let mut moved = 0;
    for order in orders {
        if order.updated_at > now - quiet_for {
            continue;
        }
        let Some(transfer_id) = &order.transfer_id else {
            continue;
        };
        let Some(wallet) = client_wallet(app, &order.client_id, order.network).await? else {
            continue;
        };
        let wallet_id = dfns_client::WalletId::new(wallet.wallet_id.as_str());
        match dfns
            .get_transfer(&wallet_id, &TransferId::new(transfer_id.as_str()))
            .await
        {
            Ok(transfer) => {
                let actor = Actor::Dfns {
                    id: transfer.id.to_string(),
                };
                if on_transfer_event(app, &transfer, actor, request_id).await? {
                    moved += 1;
                }
                // What a lost webhook would have recorded in the client's activity.
                crate::reporting::read_model::record_transfer(
                    app.store(),
                    &order.client_id,
                    &transfer,
                )
                .await?;
                // Still held: the officers hear of it (and are reminded half-way to its expiry)
                // even if the approval's own event was lost.
                if let Some(approval) = &transfer.approval_id
                    && order_state_of(&transfer) == OrderState::PendingApproval
                    && let Err(error) = crate::compliance::follow_approval(
                        app,
                        dfns,
                        approval.as_str(),
                        now,
                        request_id,
                    )
                    .await
                {
                    tracing::warn!(order = %order.id, %error, "could not follow a held order's approval");
                }
            }
            Err(error) => {
                tracing::warn!(order = %order.id, %error, "could not refresh an in-flight order");
            }
        }
    }
    Ok(moved)
}

impl From<NotSent> for PlatformError {
    fn from(not_sent: NotSent) -> Self {
        PlatformError::Conflict(not_sent.reason())
    }
}
