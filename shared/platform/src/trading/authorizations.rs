//! Flow 4 (docs/design.md), trading authorizations: a client lets the trading desk send its
//! funds to one exchange.
//!
//! Authorizing puts the exchange's deposit address(es) on the platform's networks through the
//! destination flow ([`crate::destinations::create`] from
//! [`crate::destinations::Origin::Exchange`], `add`: it cools off `EXCHANGE_COOLING_OFF`, none by
//! default, before it goes to compliance): the authorization is `Active` once every one of those
//! requests is `Approved` by compliance, `Pending` before (cooling off included), and `Rejected`
//! if one was rejected, failed, cancelled or vetoed. The status is derived from the destination
//! requests on every read (one partition query), so it can never disagree with them.
//!
//! Revoking is immediate for new orders (the execution run re-reads the authorization before every
//! send), cancels at once the client's orders for that exchange still `Scheduled` (not yet claimed
//! by a run), and requests the addresses' removal through the same flow. An order a run already
//! claimed is not cancelled: it may be at Dfns already, so it follows its transfer (or, if Dfns
//! has none, the run's check ends it "not sent"); see [`super::execution`].
//!
//! A client has at most one live authorization per exchange (the store enforces it); `POST` again
//! returns the live one.
//! Both `POST` and `DELETE` are safe to repeat: each finishes what an interrupted call left
//! (a destination request not yet created is created, and recorded, on the next call).

use domain::{
    Actor, ClientId, DestinationAction, DestinationRequestState, NetworkAddress, OrderState,
    StateMachine,
};
use serde::Serialize;
use store::trading::{AuthorizedDestination, NewTradingAuthorization, TradingAuthorization};
use store::{DestinationRequest, OrderChanges, StoreError};
use time::OffsetDateTime;

use super::TradingConfig;
use super::execution::{audit_action, order_once_key};
use crate::App;
use crate::audit;
use crate::destinations::{self, DestinationInput};
use crate::error::{PlatformError, Result};
use crate::onboarding::policy_kinds;

/// Audit action names of this module.
pub mod actions {
    pub const CREATED: &str = "trading_authorization.created";
    pub const ACTIVATED: &str = "trading_authorization.activated";
    pub const REJECTED: &str = "trading_authorization.rejected";
    pub const REVOKED: &str = "trading_authorization.revoked";
}

/// Optimistic updates of one authorization give up after this many lost races.
const UPDATE_ATTEMPTS: usize = 8;

/// Where an authorization stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub enum AuthorizationStatus {
    /// Waiting for compliance to approve the deposit address(es).
    Pending,
    /// Every deposit address is approved: orders may be sent.
    Active,
    /// Compliance rejected an address (or its change failed): no order will be sent.
    Rejected,
    /// The client revoked it.
    Revoked,
}

/// One deposit address of an authorization, with its destination requests' states.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DestinationView {
    #[serde(flatten)]
    pub destination: NetworkAddress,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add_request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add_request_state: Option<DestinationRequestState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remove_request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remove_request_state: Option<DestinationRequestState>,
}

/// An authorization as the client (and the operator) sees it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationView {
    pub id: String,
    pub exchange: String,
    pub status: AuthorizationStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub destinations: Vec<DestinationView>,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "domain::schema::Rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<domain::schema::Rfc3339>")]
    pub revoked_at: Option<OffsetDateTime>,
}

fn state_of(
    requests: &[DestinationRequest],
    id: Option<&domain::DestinationRequestId>,
) -> Option<DestinationRequestState> {
    let id = id?;
    requests.iter().find(|r| r.id == *id).map(|r| r.state)
}

/// The authorization's status from its destination requests (pure).
pub fn status_of(
    authorization: &TradingAuthorization,
    requests: &[DestinationRequest],
) -> (AuthorizationStatus, Option<String>) {
    if authorization.is_revoked() {
        return (AuthorizationStatus::Revoked, None);
    }
    let mut all_approved = !authorization.destinations.is_empty();
    for d in &authorization.destinations {
        match state_of(requests, d.add_request_id.as_ref()) {
            Some(DestinationRequestState::Approved) => {}
            Some(
                state @ (DestinationRequestState::Rejected
                | DestinationRequestState::Failed
                | DestinationRequestState::Cancelled
                | DestinationRequestState::Vetoed),
            ) => {
                let reason = d
                    .add_request_id
                    .as_ref()
                    .and_then(|id| requests.iter().find(|r| r.id == *id))
                    .and_then(|r| r.reason.clone());
                return (
                    AuthorizationStatus::Rejected,
                    Some(format!(
                        "deposit address {} is {state}{}",
                        d.destination.address().canonical(),
                        reason.map(|r| format!(": {r}")).unwrap_or_default()
                    )),
                );
            }
            _ => all_approved = false,
        }
    }
    if all_approved {
        (AuthorizationStatus::Active, None)
    } else {
        (AuthorizationStatus::Pending, None)
    }
}

/// The view of one authorization (pure).
pub fn view(
    authorization: &TradingAuthorization,
    requests: &[DestinationRequest],
) -> AuthorizationView {
    let (status, reason) = status_of(authorization, requests);
    AuthorizationView {
        id: authorization.id.to_string(),
        exchange: authorization.exchange.clone(),
        status,
        reason,
        destinations: authorization
            .destinations
            .iter()
            .map(|d| DestinationView {
                destination: d.destination.clone(),
                add_request_id: d.add_request_id.map(|id| id.to_string()),
                add_request_state: state_of(requests, d.add_request_id.as_ref()),
                remove_request_id: d.remove_request_id.map(|id| id.to_string()),
                remove_request_state: state_of(requests, d.remove_request_id.as_ref()),
            })
            .collect(),
        created_at: authorization.created_at,
        revoked_at: authorization.revoked_at,
    }
}

/// `POST /v1/trading-authorizations {exchange}`. Returns the authorization and whether this
/// call created it (`false`: the client's live one for that exchange, completed if need be).
pub async fn authorize(
    app: &App,
    config: &TradingConfig,
    client: &ClientId,
    exchange: &str,
    request_id: &str,
) -> Result<(AuthorizationView, bool)> {
    authorize_keyed(app, config, client, exchange, request_id, None).await
}

/// [`authorize`] with an idempotency key, recorded with the authorization in one transaction: a
/// retry with the same key and body answers the authorization the first call created, as created
/// (201); the same key with another exchange is a 409.
pub async fn authorize_keyed(
    app: &App,
    config: &TradingConfig,
    client: &ClientId,
    exchange: &str,
    request_id: &str,
    idempotency: Option<&store::IdempotencyKey>,
) -> Result<(AuthorizationView, bool)> {
    // A retry of a create this key already made: finish it (audit, destination requests) as the
    // first call would have, and answer it as created.
    let remembered = match idempotency {
        Some(key) => match app.store().remembered(key).await? {
            store::Remembered::Created(id) => {
                let id = ulid::Ulid::from_string(&id).map_err(|_| {
                    PlatformError::Internal(format!("remembered authorization `{id}`"))
                })?;
                Some(
                    app.store()
                        .get_trading_authorization(client, &id)
                        .await?
                        .ok_or_else(|| {
                            PlatformError::Internal("remembered authorization is gone".into())
                        })?,
                )
            }
            store::Remembered::Nothing => None,
        },
        None => None,
    };
    let venue = config
        .registry
        .venue(exchange)
        .ok_or_else(|| PlatformError::BadRequest(format!("unknown exchange `{exchange}`")))?;
    let addresses = venue.addresses_on(&app.settings().networks);
    if addresses.is_empty() {
        return Err(PlatformError::BadRequest(format!(
            "exchange `{exchange}` has no deposit address on this platform's networks"
        )));
    }
    if !policy_kinds::has_whitelist(&app.store().client_policies(client).await?) {
        return Err(PlatformError::Conflict(
            "the account is not open yet: POST /v1/accounts first".into(),
        ));
    }
    let now = OffsetDateTime::now_utc();
    let (authorization, created) = match remembered {
        Some(authorization) => (authorization, true),
        None => match app
            .store()
            .create_trading_authorization_keyed(
                &NewTradingAuthorization {
                    id: ulid::Ulid::new(),
                    client_id: client.clone(),
                    exchange: venue.name.clone(),
                    destinations: addresses,
                    created_at: now,
                },
                idempotency,
            )
            .await
        {
            Ok(created) => (created, true),
            // A concurrent request with the same key created it: answer as a retry would.
            Err(StoreError::Conflict {
                entity: store::idempotency::IDEMPOTENCY_ENTITY,
                ..
            }) => {
                return Box::pin(authorize_keyed(
                    app,
                    config,
                    client,
                    exchange,
                    request_id,
                    idempotency,
                ))
                .await;
            }
            Err(StoreError::Conflict { .. }) => {
                let existing = app
                    .store()
                    .current_trading_authorization(client, &venue.name)
                    .await?
                    .ok_or_else(|| {
                        PlatformError::Conflict(
                            "the authorization for this exchange changed meanwhile; try again"
                                .into(),
                        )
                    })?;
                (existing, false)
            }
            Err(e) => return Err(e.into()),
        },
    };
    if created {
        audit::record_once(
            app,
            client,
            &format!("trading_authorization:{}:created", authorization.id),
            Actor::Client { id: client.clone() },
            actions::CREATED,
            request_id,
            serde_json::json!({
                "authorizationId": authorization.id.to_string(),
                "exchange": authorization.exchange,
                "addresses": authorization.destinations.iter().map(|d| serde_json::json!({
                    "network": d.destination.network(),
                    "address": d.destination.address().canonical(),
                })).collect::<Vec<_>>(),
            }),
        )
        .await?;
    }
    let authorization =
        ensure_requests(app, authorization, DestinationAction::Add, request_id).await?;
    let requests = app.store().list_destination_requests(client).await?;
    Ok((view(&authorization, &requests), created))
}

/// `GET /v1/trading-authorizations`: the client's authorizations, newest first.
pub async fn list(app: &App, client: &ClientId) -> Result<Vec<AuthorizationView>> {
    let store = app.store();
    let (authorizations, requests) = futures::try_join!(
        store.list_trading_authorizations(client),
        store.list_destination_requests(client),
    )?;
    Ok(views(&authorizations, &requests))
}

/// The client's authorizations as they stand given its destination requests, newest first.
pub fn views(
    authorizations: &[TradingAuthorization],
    requests: &[DestinationRequest],
) -> Vec<AuthorizationView> {
    authorizations
        .iter()
        .rev()
        .map(|a| view(a, requests))
        .collect()
}

/// `DELETE /v1/trading-authorizations/{id}`: revoked at once for new orders; the client's orders
/// for the exchange still `Scheduled` are cancelled; the deposit addresses' removal is requested
/// (unless another live authorization of the client still uses one). Repeating it completes what
/// an interrupted call left (cancellations and their audit lines, removal requests).
pub async fn revoke(
    app: &App,
    client: &ClientId,
    id: &ulid::Ulid,
    request_id: &str,
) -> Result<AuthorizationView> {
    let store = app.store();
    let authorization = match store
        .revoke_trading_authorization(client, id, OffsetDateTime::now_utc())
        .await
    {
        Ok(revoked) => {
            audit::record(
                app,
                client,
                Actor::Client { id: client.clone() },
                actions::REVOKED,
                request_id,
                serde_json::json!({
                    "authorizationId": revoked.id.to_string(),
                    "exchange": revoked.exchange,
                }),
            )
            .await?;
            revoked
        }
        // Already revoked: finish what a previous call may have left.
        Err(StoreError::ConditionFailed { .. }) => store
            .get_trading_authorization(client, id)
            .await?
            .ok_or_else(|| PlatformError::NotFound("no such trading authorization".into()))?,
        Err(StoreError::NotFound { .. }) => {
            return Err(PlatformError::NotFound(
                "no such trading authorization".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    cancel_scheduled_orders(app, &authorization, request_id).await?;
    let authorization =
        ensure_requests(app, authorization, DestinationAction::Remove, request_id).await?;
    let requests = store.list_destination_requests(client).await?;
    Ok(view(&authorization, &requests))
}

/// The reason an order cancelled by the revocation of `authorization` carries.
pub fn revocation_reason(authorization: &TradingAuthorization) -> String {
    format!(
        "authorization_revoked: the client revoked its trading authorization {} for {}",
        authorization.id, authorization.exchange
    )
}

/// Cancels the client's orders for the revoked authorization's exchange that are still
/// `Scheduled` and were placed up to the revocation (orders placed under a later authorization
/// are not touched by a repeated call). Each is a conditional write `Scheduled → Cancelled`: an
/// order a run claimed meanwhile is left to the run (its check stops it; if it was sent already,
/// it follows its transfer). Each cancellation is audited once, so a repeated call records what an
/// interrupted one did not and nothing twice. Returns how many this call cancelled.
async fn cancel_scheduled_orders(
    app: &App,
    authorization: &TradingAuthorization,
    request_id: &str,
) -> Result<usize> {
    let Some(revoked_at) = authorization.revoked_at else {
        return Ok(0);
    };
    let client = &authorization.client_id;
    let reason = revocation_reason(authorization);
    let changes = OrderChanges {
        reason: Some(reason.clone()),
        ..OrderChanges::default()
    };
    let store = app.store();
    let mut cancelled_now = 0;
    // An index read: states may lag, never lead; every write below is conditional.
    for order in store
        .list_orders_for_client(client)
        .await?
        .into_iter()
        .filter(|o| o.exchange == authorization.exchange && o.created_at <= revoked_at)
    {
        let cancelled = match order.state {
            OrderState::Scheduled => match store
                .transition_order(
                    &order.id,
                    OrderState::Scheduled,
                    OrderState::Cancelled,
                    &changes,
                    None,
                    OffsetDateTime::now_utc(),
                )
                .await
            {
                Ok(order) => {
                    cancelled_now += 1;
                    Some(order)
                }
                // Claimed by a run, cancelled by an operator, or cancelled by an earlier call.
                Err(StoreError::ConditionFailed { .. }) => store.get_order(&order.id).await?,
                Err(StoreError::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            },
            OrderState::Cancelled => Some(order),
            _ => None,
        };
        let Some(order) = cancelled.filter(|o| {
            o.state == OrderState::Cancelled && o.reason.as_deref() == Some(reason.as_str())
        }) else {
            continue;
        };
        audit::record_once(
            app,
            client,
            &order_once_key(&order.id, OrderState::Cancelled),
            Actor::Client { id: client.clone() },
            audit_action(OrderState::Cancelled),
            request_id,
            serde_json::json!({
                "orderId": order.id,
                "from": "Scheduled",
                "state": OrderState::Cancelled,
                "authorizationId": authorization.id.to_string(),
                "reason": reason,
            }),
        )
        .await?;
    }
    if cancelled_now > 0 {
        tracing::info!(client = %client, exchange = %authorization.exchange, cancelled = cancelled_now, "revocation cancelled scheduled orders");
    }
    Ok(cancelled_now)
}

/// Creates (through the destination flow) the `add` or `remove` request of every destination
/// that has none yet and records it on the authorization.
async fn ensure_requests(
    app: &App,
    mut authorization: TradingAuthorization,
    action: DestinationAction,
    request_id: &str,
) -> Result<TradingAuthorization> {
    let client = authorization.client_id.clone();
    let pick = |d: &AuthorizedDestination| match action {
        DestinationAction::Add => d.add_request_id,
        DestinationAction::Remove => d.remove_request_id,
    };
    for index in 0..authorization.destinations.len() {
        if pick(&authorization.destinations[index]).is_some() {
            continue;
        }
        let destination = authorization.destinations[index].destination.clone();
        if action == DestinationAction::Remove
            && still_used_elsewhere(app, &client, authorization.id, &destination).await?
        {
            continue;
        }
        let input = DestinationInput {
            network: destination.network().as_str().to_owned(),
            address: destination.address().canonical(),
            label: match action {
                DestinationAction::Add => format!("{} deposit", authorization.exchange),
                DestinationAction::Remove => {
                    format!("{} deposit (authorization revoked)", authorization.exchange)
                }
            },
            action: match action {
                DestinationAction::Add => "add".into(),
                DestinationAction::Remove => "remove".into(),
            },
        };
        // Keyed by the authorization, the destination and the action: a call that died between
        // creating the request and recording it here (DynamoDB down, a timeout), retried, gets
        // the same request back instead of a second one (found by the fault day).
        let key = store::IdempotencyKey {
            scope: format!("client:{client}:trading-authorization:{}", authorization.id),
            key: format!("{index}:{}", input.action),
            fingerprint: format!("{}:{}:{}", input.network, input.address, input.action),
        };
        // Boxed: the request flow is a large future, and this one is nested in the revocation's.
        // An exchange's deposit address cools off `EXCHANGE_COOLING_OFF` (a removal never waits).
        let request = Box::pin(destinations::create(
            app,
            destinations::Origin::Exchange,
            &client,
            &input,
            request_id,
            Some(&key),
        ))
        .await?;
        authorization = record_request(app, authorization, index, action, request.id).await?;
    }
    Ok(authorization)
}

/// Whether another live authorization of the client whitelists `destination` too (then revoking
/// this one must not remove it).
async fn still_used_elsewhere(
    app: &App,
    client: &ClientId,
    revoked: ulid::Ulid,
    destination: &NetworkAddress,
) -> Result<bool> {
    Ok(app
        .store()
        .list_trading_authorizations(client)
        .await?
        .iter()
        .any(|a| {
            a.id != revoked
                && !a.is_revoked()
                && a.destinations.iter().any(|d| d.destination == *destination)
        }))
}

async fn record_request(
    app: &App,
    mut authorization: TradingAuthorization,
    index: usize,
    action: DestinationAction,
    request: domain::DestinationRequestId,
) -> Result<TradingAuthorization> {
    let store = app.store();
    for _ in 0..UPDATE_ATTEMPTS {
        let mut destinations = authorization.destinations.clone();
        let Some(target) = destinations.get_mut(index) else {
            return Ok(authorization);
        };
        let slot = match action {
            DestinationAction::Add => &mut target.add_request_id,
            DestinationAction::Remove => &mut target.remove_request_id,
        };
        if slot.is_some() {
            // A concurrent call recorded its own request: ours stays as a harmless duplicate
            // (the destination flow treats a change already in effect as approved).
            return Ok(authorization);
        }
        *slot = Some(request);
        match store
            .update_trading_authorization_destinations(
                &authorization.client_id,
                &authorization.id,
                authorization.version,
                &destinations,
                OffsetDateTime::now_utc(),
            )
            .await
        {
            Ok(updated) => return Ok(updated),
            Err(StoreError::ConditionFailed { .. }) => {
                authorization = store
                    .get_trading_authorization(&authorization.client_id, &authorization.id)
                    .await?
                    .ok_or_else(|| {
                        PlatformError::Internal("trading authorization vanished".into())
                    })?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(PlatformError::Store(StoreError::Contention {
        operation: "record trading authorization request",
        attempts: UPDATE_ATTEMPTS as u32,
    }))
}

/// Hook for the destination flow: call when a destination request reaches a final state. When it
/// completes (or defeats) a trading authorization, the client's audit trail records that the
/// authorization became active (or was rejected). Statuses are derived on read, so a missed call
/// loses only this audit line, never correctness.
pub async fn on_destination_resolved(
    app: &App,
    request: &DestinationRequest,
    request_id: &str,
) -> Result<()> {
    if request.action != DestinationAction::Add || !request.state.is_terminal() {
        return Ok(());
    }
    let client = &request.client_id;
    let store = app.store();
    let (authorizations, requests) = futures::try_join!(
        store.list_trading_authorizations(client),
        store.list_destination_requests(client),
    )?;
    for authorization in authorizations.iter().filter(|a| {
        !a.is_revoked()
            && a.destinations
                .iter()
                .any(|d| d.add_request_id == Some(request.id))
    }) {
        let (status, reason) = status_of(authorization, &requests);
        let action = match status {
            AuthorizationStatus::Active => actions::ACTIVATED,
            AuthorizationStatus::Rejected => actions::REJECTED,
            _ => continue,
        };
        // Once per authorization and resolved request: a replayed resolution (a redelivered
        // webhook, the reconciler) comes through here again.
        audit::record_once(
            app,
            client,
            &format!(
                "trading-authorization:{}:{action}:{}",
                authorization.id, request.id
            ),
            Actor::System {
                id: "trading-authorizations".into(),
            },
            action,
            request_id,
            serde_json::json!({
                "authorizationId": authorization.id.to_string(),
                "exchange": authorization.exchange,
                "destinationRequestId": request.id,
                "reason": reason,
            }),
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{DestinationRequestId, Network};

    fn destination() -> NetworkAddress {
        NetworkAddress::parse(
            Network::EthereumSepolia,
            "0xc0ba5e0000000000000000000000000000000001",
        )
        .unwrap()
    }

    fn request(id: DestinationRequestId, state: DestinationRequestState) -> DestinationRequest {
        let now = OffsetDateTime::now_utc();
        DestinationRequest {
            id,
            client_id: ClientId::parse("alice").unwrap(),
            destination: destination(),
            label: "Coinbase deposit".into(),
            action: DestinationAction::Add,
            state,
            created_at: now,
            updated_at: now,
            approval_id: None,
            change_request_id: None,
            reason: Some("denied by compliance".into()),
        }
    }

    fn authorization(add: Option<DestinationRequestId>) -> TradingAuthorization {
        let now = OffsetDateTime::now_utc();
        TradingAuthorization {
            id: ulid::Ulid::new(),
            client_id: ClientId::parse("alice").unwrap(),
            exchange: "Coinbase".into(),
            destinations: vec![AuthorizedDestination {
                destination: destination(),
                add_request_id: add,
                remove_request_id: None,
            }],
            created_at: now,
            updated_at: now,
            revoked_at: None,
            version: 1,
        }
    }

    #[test]
    fn status_follows_the_destination_requests() {
        use DestinationRequestState as S;
        let id = DestinationRequestId::new();
        let a = authorization(Some(id));
        assert_eq!(
            status_of(&authorization(None), &[]).0,
            AuthorizationStatus::Pending
        );
        for (state, expected) in [
            (S::CoolingOff, AuthorizationStatus::Pending),
            (S::Queued, AuthorizationStatus::Pending),
            (S::PendingApproval, AuthorizationStatus::Pending),
            (S::Approved, AuthorizationStatus::Active),
            (S::Rejected, AuthorizationStatus::Rejected),
            (S::Failed, AuthorizationStatus::Rejected),
            (S::Vetoed, AuthorizationStatus::Rejected),
        ] {
            assert_eq!(status_of(&a, &[request(id, state)]).0, expected, "{state}");
        }
        let (_, reason) = status_of(&a, &[request(id, S::Rejected)]);
        assert!(reason.unwrap().contains("denied by compliance"));
        let mut revoked = a.clone();
        revoked.revoked_at = Some(OffsetDateTime::now_utc());
        assert_eq!(
            status_of(&revoked, &[request(id, S::Approved)]).0,
            AuthorizationStatus::Revoked
        );
    }
}
