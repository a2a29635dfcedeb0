//! The trading desk's use cases: create, list and cancel orders, see a client, and preview a
//! transfer against the client's live policies.
//!
//! An order is accepted for any open account and any exchange/asset the registry knows; whether
//! it may actually be sent (authorization live, deposit address approved) is decided by the
//! execution run at send time, so an authorization revoked after the order was placed still stops
//! it, and the order records why.
//!
//! Four eyes (`FOUR_EYES_USD`): an order worth more than that, at the asset's current Dfns quote
//! for the client's wallet, or whose value cannot be determined (fail closed), is stored
//! `needsConfirmation` and out of the execution run's reach until another operator than its
//! creator confirms it ([`confirm_order`]).

use domain::{Actor, Amount, ClientId, Network, OrderId, OrderState};
use serde::{Deserialize, Serialize};
use store::{NewOrder, Order, StoreError};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::TradingConfig;
use super::authorizations::{self, AuthorizationStatus};
use super::execution::{audit_action, client_wallet};
use super::preview::Preview;
use super::registry::Deposit;
use super::usd::Usd;
use crate::App;
use crate::audit;
use crate::error::{PlatformError, Result};

/// How many of the wallet's transfers a preview reads at most (velocity windows).
pub const PREVIEW_TRANSFER_SCAN: usize = 1000;

/// Body of `POST /v1/operator/orders` (and, without `executeAt`, of the preview).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderInput {
    #[schemars(schema_with = "crate::request_schema::client_id")]
    pub client_id: String,
    #[schemars(schema_with = "crate::request_schema::exchange")]
    pub exchange: String,
    #[schemars(schema_with = "crate::request_schema::registry_asset")]
    pub asset: String,
    /// Smallest units, decimal string.
    #[schemars(schema_with = "crate::request_schema::positive_amount")]
    pub amount: String,
    /// RFC 3339; absent = now.
    #[serde(default)]
    #[schemars(schema_with = "crate::request_schema::optional_date_time")]
    pub execute_at: Option<String>,
    /// Needed only when the exchange takes the asset on several of the platform's networks.
    #[serde(default)]
    #[schemars(schema_with = "crate::request_schema::optional_offered_network")]
    pub network: Option<String>,
}

/// Body of `POST /v1/operator/orders/preview`: an order for now (no `executeAt`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderPreviewInput {
    #[schemars(schema_with = "crate::request_schema::client_id")]
    pub client_id: String,
    #[schemars(schema_with = "crate::request_schema::exchange")]
    pub exchange: String,
    #[schemars(schema_with = "crate::request_schema::registry_asset")]
    pub asset: String,
    /// Smallest units, decimal string.
    #[schemars(schema_with = "crate::request_schema::positive_amount")]
    pub amount: String,
    /// Needed only when the exchange takes the asset on several of the platform's networks.
    #[serde(default)]
    #[schemars(schema_with = "crate::request_schema::optional_offered_network")]
    pub network: Option<String>,
}

impl From<OrderPreviewInput> for OrderInput {
    fn from(input: OrderPreviewInput) -> Self {
        OrderInput {
            client_id: input.client_id,
            exchange: input.exchange,
            asset: input.asset,
            amount: input.amount,
            execute_at: None,
            network: input.network,
        }
    }
}

/// An order input that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidOrder {
    pub client: ClientId,
    pub exchange: String,
    pub deposit: Deposit,
    pub amount: Amount,
    pub execute_at: Option<OffsetDateTime>,
}

/// Validates an order against the registry and the platform's networks (pure).
pub fn validate(
    config: &TradingConfig,
    networks: &[Network],
    input: &OrderInput,
) -> Result<ValidOrder> {
    let bad = |m: String| PlatformError::BadRequest(m);
    let client = ClientId::parse(&input.client_id).map_err(|e| bad(format!("clientId: {e}")))?;
    let venue = config
        .registry
        .venue(&input.exchange)
        .ok_or_else(|| bad(format!("unknown exchange `{}`", input.exchange)))?;
    let amount = Amount::parse(&input.amount).map_err(|e| bad(format!("amount: {e}")))?;
    if amount.is_zero() {
        return Err(bad("amount must be greater than zero".into()));
    }
    let candidates: Vec<Network> = match &input.network {
        Some(raw) => {
            let network = Network::parse(raw).map_err(|e| bad(e.to_string()))?;
            vec![network]
        }
        None => networks.to_vec(),
    };
    let deposits: Vec<&Deposit> = candidates
        .iter()
        .filter(|n| networks.contains(n))
        .filter_map(|n| venue.deposit(*n, &input.asset))
        .collect();
    let deposit = match deposits.as_slice() {
        [one] => (*one).clone(),
        [] => {
            return Err(bad(format!(
                "{} takes no `{}` on this platform's networks",
                venue.name, input.asset
            )));
        }
        _ => {
            return Err(bad(format!(
                "{} takes `{}` on several networks: say which with `network`",
                venue.name, input.asset
            )));
        }
    };
    let execute_at = match &input.execute_at {
        None => None,
        Some(raw) => Some(
            OffsetDateTime::parse(raw, &Rfc3339)
                .map_err(|e| bad(format!("executeAt must be RFC 3339: {e}")))?,
        ),
    };
    Ok(ValidOrder {
        client,
        exchange: venue.name.clone(),
        deposit,
        amount,
        execute_at,
    })
}

async fn require_client(app: &App, client: &ClientId) -> Result<()> {
    match app.store().get_client_profile(client).await? {
        Some(_) => Ok(()),
        None => Err(PlatformError::NotFound("no such client".into())),
    }
}

/// `POST /v1/operator/orders`: stores a `Scheduled` order, due at `executeAt` (default now).
///
/// With an idempotency key, the order and the key are stored in one transaction; a retry with the
/// same key and body (after a timeout, or a 503 from the audit append) answers the order the first
/// call created, and finishes its audit line if that call could not: one order, one transfer.
pub async fn create_order(
    app: &App,
    config: &TradingConfig,
    operator: &str,
    input: &OrderInput,
    request_id: &str,
    idempotency: Option<&store::IdempotencyKey>,
) -> Result<Order> {
    let valid = validate(config, &app.settings().networks, input)?;
    if let Some(key) = idempotency
        && let Some(order) = remembered_order(app, key).await?
    {
        record_created(app, &order, &valid, request_id).await?;
        return Ok(order);
    }
    require_client(app, &valid.client).await?;
    let needs_confirmation = match app.settings().four_eyes_usd {
        None => false,
        Some(threshold) => match order_value_usd(app, &valid).await {
            Some(value) => value > Usd::whole(threshold),
            None => true,
        },
    };
    let now = OffsetDateTime::now_utc();
    let new = NewOrder {
        id: OrderId::new(),
        client_id: valid.client.clone(),
        network: valid.deposit.destination.network(),
        kind: store::OrderKind::Exchange,
        exchange: valid.exchange.clone(),
        to: None,
        asset: valid.deposit.asset.clone(),
        amount: valid.amount,
        execute_at: valid.execute_at.unwrap_or(now),
        created_by: operator.to_owned(),
        created_at: now,
        needs_confirmation,
    };
    let order = create_or_remembered(app, &new, idempotency).await?;
    record_created(app, &order, &valid, request_id).await?;
    Ok(order)
}

/// Stores `new` with its idempotency key; when a concurrent request with the same key stored its
/// order first, that order (desk orders and withdrawals alike).
pub(crate) async fn create_or_remembered(
    app: &App,
    new: &NewOrder,
    idempotency: Option<&store::IdempotencyKey>,
) -> Result<Order> {
    match app.store().create_order_keyed(new, idempotency).await {
        Ok(order) => Ok(order),
        Err(StoreError::Conflict {
            entity: store::idempotency::IDEMPOTENCY_ENTITY,
            ..
        }) => match idempotency {
            Some(key) => remembered_order(app, key).await?.ok_or_else(|| {
                PlatformError::Internal("idempotency key recorded without its order".into())
            }),
            None => Err(PlatformError::Internal("conflict without a key".into())),
        },
        Err(error) => Err(error.into()),
    }
}

/// The order an earlier request with this key created (the same key with another body: 409).
pub(crate) async fn remembered_order(
    app: &App,
    key: &store::IdempotencyKey,
) -> Result<Option<Order>> {
    match app.store().remembered(key).await? {
        store::Remembered::Nothing => Ok(None),
        store::Remembered::Created(id) => {
            let id = OrderId::parse(&id)
                .map_err(|_| PlatformError::Internal(format!("remembered order id `{id}`")))?;
            let order = app.store().get_order(&id).await?.ok_or_else(|| {
                PlatformError::Internal(format!("remembered order `{id}` is gone"))
            })?;
            Ok(Some(order))
        }
    }
}

/// The order's creation in the client's audit trail, once (a retry finishes what a failed append
/// left undone).
async fn record_created(
    app: &App,
    order: &Order,
    valid: &ValidOrder,
    request_id: &str,
) -> Result<()> {
    let mut details = serde_json::json!({
        "orderId": order.id,
        "exchange": order.exchange,
        "network": order.network,
        "asset": order.asset,
        "amount": order.amount,
        "to": valid.deposit.destination.address().canonical(),
        "executeAt": order.execute_at.format(&Rfc3339).unwrap_or_default(),
    });
    if order.needs_confirmation {
        details["needsConfirmation"] = true.into();
    }
    audit::record_once(
        app,
        &order.client_id,
        &format!("order:{}:{}", order.id, OrderState::Scheduled),
        Actor::Operator {
            id: order.created_by.clone(),
        },
        audit_action(OrderState::Scheduled),
        request_id,
        details,
    )
    .await?;
    Ok(())
}

/// The order's value in US dollars at the asset's current quote in the client's wallet on the
/// order's network (Dfns, read-only); `None` when it cannot be determined (no wallet there, the
/// wallet does not list the asset, no quote, Dfns unreachable).
async fn order_value_usd(app: &App, valid: &ValidOrder) -> Option<Usd> {
    let network = valid.deposit.destination.network();
    let wallet = match client_wallet(app, &valid.client, network).await {
        Ok(Some(wallet)) => wallet,
        Ok(None) => return None,
        Err(error) => {
            tracing::warn!(%error, "four eyes: the client's wallet could not be read");
            return None;
        }
    };
    let dfns = match app.dfns_reader().await {
        Ok(dfns) => dfns,
        Err(error) => {
            tracing::warn!(%error, "four eyes: no Dfns reader");
            return None;
        }
    };
    let wallet_id = dfns_client::WalletId::new(wallet.wallet_id.as_str());
    let assets = match dfns.wallet_assets(&wallet_id, false).await {
        Ok(assets) => assets,
        Err(error) => {
            tracing::warn!(%error, "four eyes: the wallet's assets could not be read");
            return None;
        }
    };
    let held = assets
        .assets
        .iter()
        .find(|a| valid.deposit.kind.is_held_as(&a.kind))?;
    let price = Usd::price_from_quotes(held.quotes.as_ref())?;
    Usd::value_of(valid.amount.get(), held.decimals, price)
}

/// Audit action of an order's confirmation by a second operator (four eyes).
pub const CONFIRMED_BY_SECOND_OPERATOR: &str = "order.confirmed_by_second_operator";

/// Why [`confirm_order`] refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfirmRefused {
    /// The operator created the order: the second pair of eyes must be another's.
    OwnOrder,
    /// The order needs no confirmation.
    NotNeeded,
    /// The order is no longer `Scheduled` (cancelled) and was never confirmed.
    NotScheduled(OrderState),
}

/// `POST /v1/operator/orders/{id}/confirm`: another operator than the creator confirms an order
/// that needs it; it becomes due at its `executeAt`. Idempotent: an order already confirmed is
/// answered as it is (and the confirmation's audit line finished if an earlier call could not).
pub async fn confirm_order(
    app: &App,
    operator: &str,
    id: &OrderId,
    request_id: &str,
) -> Result<std::result::Result<Order, ConfirmRefused>> {
    let not_found = || PlatformError::NotFound("no such order".into());
    for _ in 0..3 {
        let current = app
            .store()
            .get_order(id)
            .await?
            .filter(|order| order.kind == store::OrderKind::Exchange)
            .ok_or_else(not_found)?;
        if !current.needs_confirmation {
            return Ok(Err(ConfirmRefused::NotNeeded));
        }
        if current.created_by == operator {
            return Ok(Err(ConfirmRefused::OwnOrder));
        }
        if current.confirmed_by.is_some() {
            record_confirmed(app, &current, request_id).await?;
            return Ok(Ok(current));
        }
        if current.state != OrderState::Scheduled {
            return Ok(Err(ConfirmRefused::NotScheduled(current.state)));
        }
        match app
            .store()
            .confirm_order(id, operator, current.execute_at, OffsetDateTime::now_utc())
            .await
        {
            Ok(confirmed) => {
                record_confirmed(app, &confirmed, request_id).await?;
                return Ok(Ok(confirmed));
            }
            // Confirmed or cancelled meanwhile: read it again.
            Err(StoreError::ConditionFailed { .. }) => continue,
            Err(StoreError::NotFound { .. }) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Contention {
        operation: "confirm order",
        attempts: 3,
    }
    .into())
}

/// The confirmation in the client's audit trail, once, with both operators.
async fn record_confirmed(app: &App, order: &Order, request_id: &str) -> Result<()> {
    let Some(confirmed_by) = &order.confirmed_by else {
        return Ok(());
    };
    audit::record_once(
        app,
        &order.client_id,
        &format!("order:{}:confirmed", order.id),
        Actor::Operator {
            id: confirmed_by.clone(),
        },
        CONFIRMED_BY_SECOND_OPERATOR,
        request_id,
        serde_json::json!({
            "orderId": order.id,
            "createdBy": order.created_by,
            "confirmedBy": confirmed_by,
            "confirmedAt": order
                .confirmed_at
                .and_then(|t| t.format(&Rfc3339).ok()),
            "exchange": order.exchange,
            "network": order.network,
            "asset": order.asset,
            "amount": order.amount,
            "executeAt": order.execute_at.format(&Rfc3339).unwrap_or_default(),
        }),
    )
    .await?;
    Ok(())
}

/// `GET /v1/operator/orders?clientId&status`: newest first.
pub async fn list_orders(
    app: &App,
    client: Option<&ClientId>,
    state: Option<OrderState>,
) -> Result<Vec<Order>> {
    let mut orders = match client {
        Some(client) => {
            let mut orders = app.store().list_orders_for_client(client).await?;
            orders.retain(|o| state.is_none_or(|s| o.state == s));
            orders
        }
        None => app.store().scan_orders(state).await?,
    };
    // The desk's orders; clients' withdrawals are listed with the client (`client_view`).
    orders.retain(|o| o.kind == store::OrderKind::Exchange);
    orders.sort_by_key(|o| std::cmp::Reverse(o.id));
    Ok(orders)
}

/// `POST /v1/operator/orders/{id}/cancel`: only while `Scheduled` (once claimed, the transfer
/// may already exist at Dfns).
pub async fn cancel_order(
    app: &App,
    operator: &str,
    id: &OrderId,
    request_id: &str,
) -> Result<Order> {
    let not_found = || PlatformError::NotFound("no such order".into());
    let current = app
        .store()
        .get_order(id)
        .await?
        // A client's withdrawal is the client's to cancel, not the desk's.
        .filter(|order| order.kind == store::OrderKind::Exchange)
        .ok_or_else(not_found)?;
    if current.state != OrderState::Scheduled {
        return Err(PlatformError::Conflict(format!(
            "only a scheduled order can be cancelled; this one is {}",
            current.state
        )));
    }
    let cancelled = match app
        .store()
        .transition_order(
            id,
            OrderState::Scheduled,
            OrderState::Cancelled,
            &store::OrderChanges {
                reason: Some(format!("cancelled by operator {operator}")),
                ..Default::default()
            },
            None,
            OffsetDateTime::now_utc(),
        )
        .await
    {
        Ok(order) => order,
        Err(StoreError::ConditionFailed { .. }) => {
            return Err(PlatformError::Conflict(
                "the order was claimed for execution meanwhile and can no longer be cancelled"
                    .into(),
            ));
        }
        Err(StoreError::NotFound { .. }) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    audit::record(
        app,
        &cancelled.client_id,
        Actor::Operator {
            id: operator.to_owned(),
        },
        audit_action(OrderState::Cancelled),
        request_id,
        serde_json::json!({ "orderId": id, "from": "Scheduled" }),
    )
    .await?;
    Ok(cancelled)
}

/// `GET /v1/operator/clients/{id}`: the client's account view (as the client sees it) with its
/// trading authorizations and orders.
pub async fn client_view(app: &App, client: &ClientId) -> Result<ClientView> {
    require_client(app, client).await?;
    let mut account = crate::reporting::account(app, client).await.map_err(|e| {
        match e.to_api_error().status.as_u16() {
            404 => PlatformError::NotFound("no such client".into()),
            _ => PlatformError::Internal(format!("account view: {e}")),
        }
    })?;
    account.trading_authorizations = authorizations::list(app, client).await?;
    let orders = list_orders(app, Some(client), None).await?;
    let withdrawals = crate::withdrawals::list(app, client, None, CLIENT_VIEW_WITHDRAWALS)
        .await?
        .items;
    Ok(ClientView {
        account,
        orders,
        withdrawals,
    })
}

/// The client's latest withdrawals shown in the desk's view of it.
pub const CLIENT_VIEW_WITHDRAWALS: usize = 50;

/// The desk's view of a client: the client's own account view, the client's orders, and its
/// latest withdrawals.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientView {
    #[serde(flatten)]
    pub account: crate::reporting::AccountView,
    /// Newest first.
    pub orders: Vec<Order>,
    /// The latest [`CLIENT_VIEW_WITHDRAWALS`], newest first.
    pub withdrawals: Vec<crate::withdrawals::Withdrawal>,
}

/// The preview's answer: the policy evaluation plus the platform's own gate.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviewView {
    pub client_id: String,
    pub exchange: String,
    pub network: Network,
    pub asset: String,
    pub amount: Amount,
    pub to: String,
    pub wallet_id: String,
    /// The client's authorization for the exchange (`None`: there is none).
    pub authorization: Option<AuthorizationStatus>,
    #[serde(flatten)]
    pub policies: Preview,
}

/// `POST /v1/operator/orders/preview`: what Dfns would do with this transfer now, computed from
/// the live policies, the wallet's recent transfers and the asset's current USD quote.
pub async fn preview_order(
    app: &App,
    config: &TradingConfig,
    input: &OrderInput,
) -> Result<PreviewView> {
    let valid = validate(config, &app.settings().networks, input)?;
    require_client(app, &valid.client).await?;
    let network = valid.deposit.destination.network();
    let wallet = client_wallet(app, &valid.client, network)
        .await?
        .ok_or_else(|| PlatformError::Conflict(format!("the client has no wallet on {network}")))?;
    let target = super::execution::SendTo::from(&valid.deposit);
    let (evaluation, authorization) = futures::try_join!(
        crate::withdrawals::evaluate(app, &wallet, &target, valid.amount, None),
        async {
            let current = app
                .store()
                .current_trading_authorization(&valid.client, &valid.exchange)
                .await?;
            Ok(match current {
                Some(a) => {
                    let requests = app.store().list_destination_requests(&valid.client).await?;
                    Some(authorizations::status_of(&a, &requests).0)
                }
                None => None,
            })
        },
    )?;
    let to = valid.deposit.destination.address().canonical();
    Ok(PreviewView {
        client_id: valid.client.to_string(),
        exchange: valid.exchange,
        network,
        asset: valid.deposit.asset.clone(),
        amount: valid.amount,
        to,
        wallet_id: wallet.wallet_id.as_str().to_owned(),
        authorization,
        policies: evaluation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(amount: &str, asset: &str) -> OrderInput {
        OrderInput {
            client_id: "alice".into(),
            exchange: "Kraken".into(),
            asset: asset.into(),
            amount: amount.into(),
            execute_at: Some("2026-01-10T12:00:00Z".into()),
            network: None,
        }
    }

    #[test]
    fn orders_are_validated_against_the_registry() {
        let config = TradingConfig::default();
        let networks = [Network::EthereumSepolia];
        let valid = validate(&config, &networks, &input("1000", "usdc")).unwrap();
        assert_eq!(valid.deposit.asset, "USDC");
        assert_eq!(valid.amount, Amount::new(1000));
        for (bad_amount, asset) in [("0", "ETH"), ("1.5", "ETH"), ("-1", "ETH"), ("10", "DOGE")] {
            assert!(matches!(
                validate(&config, &networks, &input(bad_amount, asset)),
                Err(PlatformError::BadRequest(_))
            ));
        }
        let mut unknown = input("1", "ETH");
        unknown.exchange = "Binance".into();
        assert!(validate(&config, &networks, &unknown).is_err());
        // The platform does not run Base: no deposit there.
        assert!(validate(&config, &[Network::Base], &input("1", "ETH")).is_err());
        let mut bad_time = input("1", "ETH");
        bad_time.execute_at = Some("tomorrow".into());
        assert!(validate(&config, &networks, &bad_time).is_err());
    }
}
