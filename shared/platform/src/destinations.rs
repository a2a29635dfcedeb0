//! Flow 2 (docs/design.md), destination requests: a client asks for an address to be added to
//! (or removed from) its whitelist; a compliance officer decides at Dfns.
//!
//! - Validated and normalised at the edge ([`validate`]): nothing is stored on bad input.
//! - **Cooling-off**: an `add` first waits `DESTINATION_COOLING_OFF` (24 h by default; an
//!   exchange's deposit address added by a trading authorization, `EXCHANGE_COOLING_OFF`, none by
//!   default): it is stored `CoolingOff` with `usableFrom`, the end of the wait, and the client is
//!   told at once (notification and bus event `destination_request.cooling_off`). Until the
//!   reconciler sees the wait ended ([`end_cooling_off`]: `Queued`, then submitted as below),
//!   nothing of it reaches Dfns, and the client may veto it ([`veto_request`]: `Vetoed`, final,
//!   audited and told) or cancel it. A removal never waits: it only narrows the whitelist.
//! - Stored `Queued` (at once, or when its wait ended), then [`submit_queued`] submits the
//!   client's oldest queued request if the
//!   client's policy-change slot is free (the store takes the slot and moves the request to
//!   `Submitted` in one transaction). At most one change per client is ever at Dfns, so the new
//!   whitelist, computed from the **live** policy plus the change ([`crate::whitelist`]), never
//!   overwrites another pending change.
//! - Dfns answers 202 with a change request → `PendingApproval` (approval and change-request ids
//!   stored); 200 (no `Policies:Modify` policy) → `Approved` at once and the next queued one goes.
//! - The approval's resolution (webhook, or the reconciler's poll) → `Approved` / `Rejected` /
//!   `Failed` ([`resolve_from_approval`]), which releases the slot and tells the client. The next
//!   queued request is submitted by the reconciler, which holds the signing credential (the webhook
//!   receiver does not): at once on AWS, where the notification's event on the bus triggers it,
//!   else on its next scheduled run.
//! - A Dfns failure that may pass (429, 5xx, timeout) leaves the request `Submitted` with the slot
//!   held; the reconciler re-drives it ([`redrive_submitted`] is safe to repeat: it adopts a change
//!   request already pending on the policy instead of sending a second one, and the decision on
//!   one an officer already decided, whose answer or record was lost).
//!
//! Abuse resistance (one client must not degrade the platform for the others):
//! - **Quota**: a client has at most `MAX_OPEN_DESTINATION_REQUESTS` requests open (`CoolingOff`,
//!   `Queued`, `Submitted`, `PendingApproval`). Beyond it a create is refused with 429 and
//!   `Retry-After: 60` ([`QUOTA_RETRY_AFTER_SECONDS`]), storing nothing (no request, audit line or
//!   idempotency record). The store counts open requests per client in the transaction that
//!   stores a request (conditional on the quota) and in the one that makes it final, so the count
//!   never drifts and concurrent creates never pass the quota.
//! - **Rate**: [`crate::rate_limit::admit_mutation`] counts a client's mutating calls per clock
//!   minute (`CLIENT_MUTATIONS_PER_MINUTE`); beyond it 429 with `Retry-After` until the minute ends.
//! - **Expiry**: a request `Queued` for longer than `QUEUED_REQUEST_TTL` (counted from the end of
//!   its cooling-off, if it had one) is cancelled with the
//!   reason "expired" ([`expire_queued`]: by the reconciler, or when its turn to be submitted
//!   comes), audited (`destination_request.expired`) and told to the client (notification
//!   `destination_request.expired`).

use dfns_client::policies::ChangeRequestStatus;
use dfns_client::{ApprovalStatus, PolicyId, PolicyRule, UpdateOutcome};
use domain::{
    Actor, ClientId, DestinationAction, DestinationRequestId, DestinationRequestState, Network,
    NetworkAddress,
};
use serde::Deserialize;
use store::{
    Advance, DestinationRequest, DestinationRequestView, NewDestinationRequest, RequestChanges,
    StoreError,
};
use time::OffsetDateTime;

use crate::App;
use crate::audit::{self, actions};
use crate::error::{PlatformError, Result};
use crate::notify::{self, Notice, kinds};
use crate::onboarding::policy_kinds;
use crate::whitelist;

/// Longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 100;
/// Bound on how many requests one call submits in a row (each approved at once frees the slot).
const MAX_SUBMISSIONS_PER_CALL: usize = 50;

/// `Retry-After` of a create refused by the quota of open requests. A place frees only when one
/// of the client's open requests becomes final: the client cancels a queued one (at once), an
/// officer decides the pending one (minutes to hours; its webhook settles it within seconds), or
/// one expires (days). A minute lets a client that just cancelled, or whose request was just
/// decided, go on soon, while a client that simply retries costs one consistent read a minute.
pub const QUOTA_RETRY_AFTER_SECONDS: u32 = 60;
/// `code` of the 429 of the open-requests quota.
pub const QUOTA_CODE: &str = "too_many_open_requests";
/// Audit action of a queued request's expiry (its state becomes `Cancelled`).
pub const DESTINATION_EXPIRED: &str = "destination_request.expired";
/// Audit action of the client's veto of a request during its cooling-off (`Vetoed`).
pub const DESTINATION_VETOED: &str = "destination_request.vetoed";
/// Audit action of the end of a request's cooling-off (`CoolingOff → Queued`).
pub const DESTINATION_COOLING_OFF_ENDED: &str = "destination_request.cooling_off_ended";

/// Who asks for a destination: decides how long an `add` cools off before it goes to Dfns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The client itself (`POST /v1/destination-requests`): `DESTINATION_COOLING_OFF`.
    Client,
    /// A trading authorization, for an exchange's deposit address: `EXCHANGE_COOLING_OFF`.
    Exchange,
}

impl Origin {
    /// How long an `add` from here waits (`ZERO`: not at all). A removal never waits.
    pub fn cooling_off(self, app: &App, action: DestinationAction) -> std::time::Duration {
        match (action, self) {
            (DestinationAction::Remove, _) => std::time::Duration::ZERO,
            (DestinationAction::Add, Origin::Client) => app.settings().destination_cooling_off,
            (DestinationAction::Add, Origin::Exchange) => app.settings().exchange_cooling_off,
        }
    }
}

/// Body of `POST /v1/destination-requests`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = crate::request_schema::destination_rules)]
pub struct DestinationInput {
    #[schemars(schema_with = "crate::request_schema::offered_network")]
    pub network: String,
    #[schemars(schema_with = "crate::request_schema::address")]
    pub address: String,
    #[schemars(schema_with = "crate::request_schema::label")]
    pub label: String,
    #[schemars(schema_with = "crate::request_schema::destination_action")]
    pub action: String,
}

/// A request that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidDestination {
    pub destination: NetworkAddress,
    pub label: String,
    pub action: DestinationAction,
}

/// Validates and normalises a request against the configured networks. Every refusal is a
/// [`PlatformError::BadRequest`] saying what is wrong.
pub fn validate(networks: &[Network], input: &DestinationInput) -> Result<ValidDestination> {
    let network =
        Network::parse(&input.network).map_err(|e| PlatformError::BadRequest(e.to_string()))?;
    if !networks.contains(&network) {
        return Err(PlatformError::BadRequest(format!(
            "network `{network}` is not offered by this platform"
        )));
    }
    let destination = NetworkAddress::parse(network, &input.address)
        .map_err(|e| PlatformError::BadRequest(format!("invalid address: {e}")))?;
    // Length before trimming: the document's `maxLength` counts what was sent.
    let label = input.label.trim();
    if label.is_empty() || input.label.chars().count() > MAX_LABEL_CHARS {
        return Err(PlatformError::BadRequest(format!(
            "label must be 1 to {MAX_LABEL_CHARS} characters"
        )));
    }
    if label.chars().any(char::is_control) {
        return Err(PlatformError::BadRequest(
            "label must not contain control characters".into(),
        ));
    }
    let action = match input.action.as_str() {
        "add" => DestinationAction::Add,
        "remove" => DestinationAction::Remove,
        _ => {
            return Err(PlatformError::BadRequest(
                "action must be \"add\" or \"remove\"".into(),
            ));
        }
    };
    Ok(ValidDestination {
        destination,
        label: label.to_owned(),
        action,
    })
}

/// A new request id. Ids order the queue; ULIDs minted in the same millisecond are ordered
/// randomly, so this process mints them monotonically (requests from one container keep their
/// arrival order even within a millisecond; across containers, time orders them).
fn next_request_id() -> DestinationRequestId {
    static GENERATOR: std::sync::Mutex<Option<ulid::Generator>> = std::sync::Mutex::new(None);
    let mut generator = GENERATOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let generator = generator.get_or_insert_with(ulid::Generator::new);
    // Overflow needs 2^80 ids in one millisecond; fall back to a plain (random-order) ULID.
    DestinationRequestId::from_ulid(generator.generate().unwrap_or_else(|_| ulid::Ulid::new()))
}

/// The whitelist policy of the client's wallet on `network` (a destination is whitelisted only
/// for its own network's wallet), or 409 when the account is not open yet.
async fn whitelist_policy_id(app: &App, client: &ClientId, network: Network) -> Result<PolicyId> {
    let recorded = app.store().client_policies(client).await?;
    policy_kinds::whitelist_of(&recorded, network)
        .map(PolicyId::new)
        .ok_or_else(|| {
            PlatformError::Conflict("the account is not open yet: POST /v1/accounts first".into())
        })
}

/// The client's own request ([`create`] from [`Origin::Client`]) without an idempotency key.
pub async fn create_request(
    app: &App,
    client: &ClientId,
    input: &DestinationInput,
    request_id: &str,
) -> Result<DestinationRequest> {
    create(app, Origin::Client, client, input, request_id, None)
        .await
        .map(|view| view.request)
}

/// `POST /v1/destination-requests`: [`create`] from [`Origin::Client`].
pub async fn create_request_keyed(
    app: &App,
    client: &ClientId,
    input: &DestinationInput,
    request_id: &str,
    idempotency: Option<&store::IdempotencyKey>,
) -> Result<DestinationRequestView> {
    create(app, Origin::Client, client, input, request_id, idempotency).await
}

/// Stores the request and, unless it is an `add` that must cool off first (then `CoolingOff`,
/// and the client is told when it becomes usable), submits the client's next queued one if no
/// change is pending. Returns the request as it stands after that. With an idempotency key, the
/// request and the key are stored in one transaction, and a retry with the same key and body
/// answers the same request (its creation audited, and its cooling-off told, once) instead of
/// queueing another.
pub async fn create(
    app: &App,
    origin: Origin,
    client: &ClientId,
    input: &DestinationInput,
    request_id: &str,
    idempotency: Option<&store::IdempotencyKey>,
) -> Result<DestinationRequestView> {
    let valid = validate(&app.settings().networks, input)?;
    if let Some(key) = idempotency
        && let Some(earlier) = remembered_request(app, client, key).await?
    {
        record_created(app, client, &earlier, request_id).await?;
        return Ok(earlier);
    }
    // The quota, read first (one consistent read, so a client over it costs little); the
    // create's transaction checks it again, conditionally, and that check is the one that holds.
    let max_open = app.settings().max_open_destination_requests;
    if app.store().open_destination_request_count(client).await? >= max_open {
        return Err(quota_reached(max_open));
    }
    whitelist_policy_id(app, client, valid.destination.network()).await?;
    let id = next_request_id();
    let now = OffsetDateTime::now_utc();
    let new = NewDestinationRequest {
        id,
        client_id: client.clone(),
        destination: valid.destination.clone(),
        label: valid.label.clone(),
        action: valid.action,
        created_at: now,
    };
    let wait = origin.cooling_off(app, valid.action);
    let usable_from = (!wait.is_zero()).then(|| now + wait);
    let admitted = match usable_from {
        None => {
            app.store()
                .create_destination_request_within(&new, idempotency, Some(max_open))
                .await
        }
        Some(usable_from) => {
            app.store()
                .create_destination_request_cooling_off(
                    &new,
                    usable_from,
                    idempotency,
                    Some(max_open),
                )
                .await
        }
    };
    let created = match admitted {
        Ok(store::open_requests::Admission::Created(created)) => DestinationRequestView {
            request: *created,
            usable_from,
        },
        Ok(store::open_requests::Admission::QuotaReached) => return Err(quota_reached(max_open)),
        // A concurrent request with the same key stored its request first: answer that one.
        Err(store::StoreError::Conflict {
            entity: store::idempotency::IDEMPOTENCY_ENTITY,
            ..
        }) => {
            let earlier = match idempotency {
                Some(key) => remembered_request(app, client, key).await?,
                None => None,
            }
            .ok_or_else(|| PlatformError::Internal("idempotency key without its request".into()))?;
            record_created(app, client, &earlier, request_id).await?;
            return Ok(earlier);
        }
        Err(error) => return Err(error.into()),
    };
    record_created(app, client, &created, request_id).await?;
    // Stored (queued, or cooling off): from here on nothing is lost. A Dfns problem now leaves
    // the request for the reconciler; the client sees its state either way. A request cooling off
    // is not submitted here, but an older one of the client's may be queued.
    if let Err(error) = Box::pin(submit_queued(app, client, request_id)).await {
        tracing::warn!(%error, client = %client, "submitting queued destination requests did not finish; the reconciler will");
    }
    Ok(app
        .store()
        .get_destination_request_view(client, &id)
        .await?
        .unwrap_or(created))
}

fn quota_reached(max_open: u32) -> PlatformError {
    PlatformError::TooManyRequests {
        code: QUOTA_CODE,
        message: format!(
            "at most {max_open} destination requests may be open at once; cancel a queued one or wait for one to be decided"
        ),
        retry_after_seconds: QUOTA_RETRY_AFTER_SECONDS,
    }
}

/// Since when a request has been (or would be) `Queued`: the end of its cooling-off, if it had
/// one, else its creation.
pub fn queued_since(request: &DestinationRequestView) -> OffsetDateTime {
    request.usable_from.unwrap_or(request.created_at)
}

/// Whether a `Queued` request has waited longer than `QUEUED_REQUEST_TTL` (its cooling-off not
/// counted).
pub fn queued_too_long(app: &App, request: &DestinationRequestView, now: OffsetDateTime) -> bool {
    request.state == DestinationRequestState::Queued
        && now - queued_since(request) >= app.settings().queued_request_ttl
}

/// Cancels a request that has been `Queued` too long, with the reason "expired …", records it
/// (`destination_request.expired`) and tells the client (`destination_request.expired`).
/// Returns whether this call expired it (`false`: it was submitted or cancelled meanwhile).
pub async fn expire_queued(
    app: &App,
    request: &DestinationRequestView,
    actor: Actor,
    request_id: &str,
) -> Result<bool> {
    let ttl = app.settings().queued_request_ttl;
    let changes = RequestChanges {
        reason: Some(format!(
            "expired: queued for more than {}",
            describe_duration(ttl)
        )),
        ..RequestChanges::default()
    };
    let expired = match app
        .store()
        .transition_destination_request(
            &request.client_id,
            &request.id,
            DestinationRequestState::Queued,
            DestinationRequestState::Cancelled,
            &changes,
            OffsetDateTime::now_utc(),
        )
        .await
    {
        Ok(expired) => expired,
        Err(StoreError::ConditionFailed { .. } | StoreError::NotFound { .. }) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let detail = serde_json::json!({
        "requestId": expired.id,
        "network": expired.destination.network(),
        "address": expired.destination.address().canonical(),
        "label": expired.label,
        "action": expired.action,
        "state": expired.state,
        "reason": expired.reason,
        "queuedSince": queued_since(request).format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
    });
    let once = format!("destination-request:{}:Expired", expired.id);
    audit::record_once(
        app,
        &request.client_id,
        &once,
        actor,
        DESTINATION_EXPIRED,
        request_id,
        detail.clone(),
    )
    .await?;
    notify::notify(
        app,
        Notice {
            client_id: request.client_id.clone(),
            dedup_key: once,
            kind: kinds::DESTINATION_EXPIRED,
            occurred_at: expired.updated_at,
            detail,
        },
    )
    .await?;
    Ok(true)
}

/// `7d`, `36h`, `90m`, `45s`: the largest unit that divides it.
fn describe_duration(duration: std::time::Duration) -> String {
    let seconds = duration.as_secs();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if seconds >= size && seconds % size == 0 {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

/// The request an earlier call with this key created (the same key with another body: 409).
async fn remembered_request(
    app: &App,
    client: &ClientId,
    key: &store::IdempotencyKey,
) -> Result<Option<DestinationRequestView>> {
    match app.store().remembered(key).await? {
        store::Remembered::Nothing => Ok(None),
        store::Remembered::Created(id) => {
            let id = DestinationRequestId::parse(&id)
                .map_err(|_| PlatformError::Internal(format!("remembered request id `{id}`")))?;
            app.store()
                .get_destination_request_view(client, &id)
                .await?
                .map(Some)
                .ok_or_else(|| {
                    PlatformError::Internal(format!("remembered request `{id}` is gone"))
                })
        }
    }
}

/// The request's creation in the client's audit trail, once, and, for one that cools off, the
/// client told once that it did (a retry after a crash finishes both).
async fn record_created(
    app: &App,
    client: &ClientId,
    request: &DestinationRequestView,
    request_id: &str,
) -> Result<()> {
    let mut detail = serde_json::json!({
        "requestId": request.id,
        "network": request.destination.network(),
        "address": request.destination.address().canonical(),
        "label": request.label,
        "action": request.action,
    });
    if let Some(usable_from) = request.usable_from {
        detail["state"] = serde_json::json!(DestinationRequestState::CoolingOff);
        detail["usableFrom"] = serde_json::json!(rfc3339(usable_from));
    }
    audit::record_once(
        app,
        client,
        &format!("destination_request:{}:created", request.id),
        Actor::Client { id: client.clone() },
        actions::DESTINATION_CREATED,
        request_id,
        detail.clone(),
    )
    .await?;
    if request.usable_from.is_some() {
        detail["veto"] =
            serde_json::json!(format!("POST /v1/destination-requests/{}/veto", request.id));
        notify::notify(
            app,
            Notice {
                client_id: client.clone(),
                dedup_key: format!("destination-request:{}:CoolingOff", request.id),
                kind: kinds::DESTINATION_COOLING_OFF,
                occurred_at: request.created_at,
                detail,
            },
        )
        .await?;
    }
    Ok(())
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `GET /v1/destination-requests`: the client's requests, newest first.
pub async fn list_requests(app: &App, client: &ClientId) -> Result<Vec<DestinationRequestView>> {
    let mut requests = app.store().list_destination_request_views(client).await?;
    requests.reverse();
    Ok(requests)
}

fn no_such_request() -> PlatformError {
    PlatformError::NotFound("no such destination request".into())
}

/// `DELETE /v1/destination-requests/{id}`: cancels a request that has not gone to Dfns yet
/// (`CoolingOff` or `Queued`).
pub async fn cancel_request(
    app: &App,
    client: &ClientId,
    id: &DestinationRequestId,
    request_id: &str,
) -> Result<DestinationRequestView> {
    let current = app
        .store()
        .get_destination_request_view(client, id)
        .await?
        .ok_or_else(no_such_request)?;
    let from = current.state;
    if !matches!(
        from,
        DestinationRequestState::CoolingOff | DestinationRequestState::Queued
    ) {
        return Err(PlatformError::Conflict(format!(
            "only a request that has not gone to compliance yet (cooling off or queued) can be cancelled; this one is {from}"
        )));
    }
    let cancelled = match app
        .store()
        .transition_destination_request(
            client,
            id,
            from,
            DestinationRequestState::Cancelled,
            &RequestChanges::default(),
            OffsetDateTime::now_utc(),
        )
        .await
    {
        Ok(request) => request,
        Err(StoreError::ConditionFailed { .. }) => {
            return Err(PlatformError::Conflict(
                "the request moved on meanwhile and can no longer be cancelled".into(),
            ));
        }
        Err(StoreError::NotFound { .. }) => return Err(no_such_request()),
        Err(e) => return Err(e.into()),
    };
    audit::record(
        app,
        client,
        Actor::Client { id: client.clone() },
        actions::DESTINATION_CANCELLED,
        request_id,
        serde_json::json!({ "requestId": id, "from": from }),
    )
    .await?;
    Ok(DestinationRequestView {
        request: cancelled,
        usable_from: current.usable_from,
    })
}

/// `POST /v1/destination-requests/{id}/veto`: the client refuses a destination during its
/// cooling-off. It becomes `Vetoed` (final) and never goes to Dfns; audited
/// (`destination_request.vetoed`) and told (notification `destination_request.vetoed`). 404 for
/// another client's id; 409 unless it is `CoolingOff` (once its wait ended the reconciler queues
/// and submits it: then only a compliance decision ends it). A veto repeated after one that
/// succeeded is a 409 too, but first finishes what that one may have left (its audit line and
/// notification, once each).
pub async fn veto_request(
    app: &App,
    client: &ClientId,
    id: &DestinationRequestId,
    request_id: &str,
) -> Result<DestinationRequestView> {
    let store = app.store();
    let current = store
        .get_destination_request_view(client, id)
        .await?
        .ok_or_else(no_such_request)?;
    let not_cooling_off = |state: DestinationRequestState| {
        PlatformError::Conflict(format!(
            "only a request still cooling off can be vetoed; this one is {state}"
        ))
    };
    match current.state {
        DestinationRequestState::CoolingOff => {}
        DestinationRequestState::Vetoed => {
            record_vetoed(app, &current, request_id).await?;
            return Err(not_cooling_off(current.state));
        }
        other => return Err(not_cooling_off(other)),
    }
    let changes = RequestChanges {
        reason: Some("vetoed by the client during its cooling-off".into()),
        ..RequestChanges::default()
    };
    let vetoed = match store
        .transition_destination_request(
            client,
            id,
            DestinationRequestState::CoolingOff,
            DestinationRequestState::Vetoed,
            &changes,
            OffsetDateTime::now_utc(),
        )
        .await
    {
        Ok(vetoed) => DestinationRequestView {
            request: vetoed,
            usable_from: current.usable_from,
        },
        // Its wait ended and the reconciler queued it, or it was cancelled, meanwhile.
        Err(StoreError::ConditionFailed { .. }) => {
            let now = store
                .get_destination_request(client, id)
                .await?
                .ok_or_else(no_such_request)?;
            return Err(not_cooling_off(now.state));
        }
        Err(StoreError::NotFound { .. }) => return Err(no_such_request()),
        Err(e) => return Err(e.into()),
    };
    record_vetoed(app, &vetoed, request_id).await?;
    Ok(vetoed)
}

/// The veto's audit line and notification (once each), and the trading authorization waiting on
/// the address, if any, told it was refused.
async fn record_vetoed(app: &App, vetoed: &DestinationRequestView, request_id: &str) -> Result<()> {
    let client = &vetoed.client_id;
    let once = format!("destination-request:{}:{}", vetoed.id, vetoed.state);
    let detail = serde_json::json!({
        "requestId": vetoed.id,
        "network": vetoed.destination.network(),
        "address": vetoed.destination.address().canonical(),
        "label": vetoed.label,
        "action": vetoed.action,
        "state": vetoed.state,
        "reason": vetoed.reason,
        "usableFrom": vetoed.usable_from.map(rfc3339),
    });
    audit::record_once(
        app,
        client,
        &once,
        Actor::Client { id: client.clone() },
        DESTINATION_VETOED,
        request_id,
        detail.clone(),
    )
    .await?;
    notify::notify(
        app,
        Notice {
            client_id: client.clone(),
            dedup_key: once,
            kind: kinds::DESTINATION_VETOED,
            occurred_at: vetoed.updated_at,
            detail,
        },
    )
    .await?;
    crate::trading::on_destination_resolved(app, vetoed, request_id).await
}

/// Whether a `CoolingOff` request's wait has ended at `now`. (A request stored `CoolingOff` always
/// has `usableFrom`; one without it is taken to wait `DESTINATION_COOLING_OFF` from its creation.)
pub fn cooling_off_ended(app: &App, request: &DestinationRequestView, now: OffsetDateTime) -> bool {
    request.state == DestinationRequestState::CoolingOff
        && now
            >= request
                .usable_from
                .unwrap_or(request.created_at + app.settings().destination_cooling_off)
}

/// Moves a request whose cooling-off has ended at `now` ([`cooling_off_ended`]) to `Queued`, and
/// records it once (`destination_request.cooling_off_ended`). Returns whether the request is now
/// past its wait (`false`: still cooling off at `now`, or vetoed or cancelled meanwhile). The
/// caller then submits the client's queue ([`submit_queued`]).
pub async fn end_cooling_off(
    app: &App,
    request: &DestinationRequestView,
    now: OffsetDateTime,
    actor: Actor,
    request_id: &str,
) -> Result<bool> {
    if !cooling_off_ended(app, request, now) {
        return Ok(false);
    }
    let queued = match app
        .store()
        .transition_destination_request(
            &request.client_id,
            &request.id,
            DestinationRequestState::CoolingOff,
            DestinationRequestState::Queued,
            &RequestChanges::default(),
            now,
        )
        .await
    {
        Ok(queued) => queued,
        Err(StoreError::ConditionFailed { .. } | StoreError::NotFound { .. }) => {
            // Vetoed or cancelled meanwhile (nothing to do), or queued by a concurrent run (which
            // records it).
            return Ok(false);
        }
        Err(e) => return Err(e.into()),
    };
    audit::record_once(
        app,
        &request.client_id,
        &format!("destination-request:{}:Queued", queued.id),
        actor,
        DESTINATION_COOLING_OFF_ENDED,
        request_id,
        serde_json::json!({
            "requestId": queued.id,
            "network": queued.destination.network(),
            "address": queued.destination.address().canonical(),
            "label": queued.label,
            "action": queued.action,
            "state": queued.state,
            "usableFrom": request.usable_from.map(rfc3339),
        }),
    )
    .await?;
    Ok(true)
}

/// Submits the client's oldest queued request if its policy-change slot is free, and keeps going
/// while requests are approved at once. Returns when the slot is held (by a pending change) or
/// nothing is queued. Requests still cooling off are not queued yet: they are left alone.
pub async fn submit_queued(app: &App, client: &ClientId, request_id: &str) -> Result<()> {
    let store = app.store();
    for _ in 0..MAX_SUBMISSIONS_PER_CALL {
        let requests = store.list_destination_request_views(client).await?;
        let Some(next) = requests
            .iter()
            .find(|r| r.state == DestinationRequestState::Queued)
        else {
            return Ok(());
        };
        // Its turn came too late: it expires instead of going to Dfns.
        if queued_too_long(app, next, OffsetDateTime::now_utc()) {
            expire_queued(
                app,
                next,
                Actor::System {
                    id: "destination-requests".into(),
                },
                request_id,
            )
            .await?;
            continue;
        }
        match store
            .submit_destination_request(client, &next.id, OffsetDateTime::now_utc())
            .await
        {
            Ok(submitted) => {
                audit::record(
                    app,
                    client,
                    Actor::System {
                        id: "destination-requests".into(),
                    },
                    actions::DESTINATION_SUBMITTED,
                    request_id,
                    serde_json::json!({ "requestId": submitted.id }),
                )
                .await?;
                drive_submitted(app, &submitted, request_id).await?;
            }
            Err(StoreError::ConditionFailed { .. }) => {
                let still_queued = store
                    .get_destination_request(client, &next.id)
                    .await?
                    .is_some_and(|r| r.state == DestinationRequestState::Queued);
                if still_queued {
                    // Another change of this client is in flight: it submits ours when it ends.
                    return Ok(());
                }
                // Someone else submitted or cancelled it meanwhile: look again.
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Sends a `Submitted` request's change to Dfns (or recognises that it was sent already).
/// Safe to repeat: the caller holds the client's slot, so a change request pending on the
/// client's whitelist policy can only be this request's.
pub async fn drive_submitted(
    app: &App,
    request: &DestinationRequest,
    request_id: &str,
) -> Result<()> {
    drive(app, request, request_id, false).await
}

/// The reconciler's [`drive_submitted`] of a request left `Submitted`: an earlier send may have
/// reached Dfns, with its answer (or our record of it) lost — a timeout, a crash, DynamoDB failing
/// right after Dfns took it — and an officer may have decided it since, so that nothing is
/// pending on the policy any more. That decision is adopted ([`decided_earlier_send`]): the
/// request records the approval and settles as the officer decided, rather than reading an
/// approved change as "already in effect" or sending a denied one to the officers again.
pub async fn redrive_submitted(
    app: &App,
    request: &DestinationRequest,
    request_id: &str,
) -> Result<()> {
    drive(app, request, request_id, true).await
}

async fn drive(
    app: &App,
    request: &DestinationRequest,
    request_id: &str,
    sent_before: bool,
) -> Result<()> {
    let client = &request.client_id;
    let policy_id = whitelist_policy_id(app, client, request.destination.network()).await?;
    let dfns = app.dfns().await?;
    let policy = dfns.get_policy(&policy_id).await?;
    if let Some(pending) = policy.pending_change_request.as_deref() {
        return mark_pending(app, request, pending, request_id).await;
    }
    let PolicyRule::TransactionRecipientWhitelist { configuration } = &policy.rule else {
        return fail(
            app,
            request,
            "the client's whitelist policy has an unexpected rule",
            request_id,
        )
        .await;
    };
    let address = request.destination.address();
    let proposal = whitelist::apply_change(&configuration.addresses, request.action, address);
    if sent_before
        && let Some(approval) = decided_earlier_send(&dfns, request, &policy_id, &proposal).await?
    {
        return adopt_decision(app, request, &approval, request_id).await;
    }
    if whitelist::already_in_effect(&configuration.addresses, request.action, address) {
        return settle(
            app,
            request,
            DestinationRequestState::Approved,
            Some("already in effect".into()),
            Actor::System {
                id: "destination-requests".into(),
            },
            request_id,
        )
        .await;
    }
    let mut body = policy.body();
    body.rule = PolicyRule::recipient_whitelist(proposal);
    match dfns.update_policy(&policy_id, &body).await {
        Ok(UpdateOutcome::Pending(change)) => mark_pending(app, request, &change, request_id).await,
        Ok(UpdateOutcome::Applied(_)) => {
            settle(
                app,
                request,
                DestinationRequestState::Approved,
                None,
                Actor::System {
                    id: "destination-requests".into(),
                },
                request_id,
            )
            .await
        }
        Err(error) if error.status() == Some(409) => {
            // A change is pending on the policy after all (our earlier send's answer was lost).
            match dfns.get_policy(&policy_id).await?.pending_change_request {
                Some(pending) => mark_pending(app, request, &pending, request_id).await,
                None => Err(error.into()),
            }
        }
        Err(error)
            if error.is_retryable() || error.status().is_none() || error.is_our_credentials() =>
        {
            // Unknown whether Dfns got it, or Dfns refused our credentials rather than the change:
            // stay `Submitted`; the reconciler looks again.
            Err(error.into())
        }
        Err(error) => {
            tracing::error!(%error, request = %request.id, "Dfns refused the whitelist update");
            fail(
                app,
                request,
                "the custody provider refused the change",
                request_id,
            )
            .await
        }
    }
}

/// How long before a request entered `Submitted` a change request of its may be dated (Dfns'
/// clock against ours).
const EARLIER_SEND_CLOCK_MARGIN: time::Duration = time::Duration::minutes(5);
/// Approvals looked through, newest first, for an earlier send of a request.
const EARLIER_SEND_LOOKBACK: usize = 500;

/// The decided approval of a change this request sent earlier: on the client's whitelist policy,
/// created since the request entered `Submitted` (less [`EARLIER_SEND_CLOCK_MARGIN`]), proposing
/// exactly `proposal` — what the request would send now, from the live whitelist: if that change
/// was applied, the live list is its proposal already; if it was refused, the live list is the
/// one it was computed from. While the request holds the client's slot no other request of the
/// platform changes this policy, so such a change is this request's.
async fn decided_earlier_send(
    dfns: &dfns_client::DfnsClient,
    request: &DestinationRequest,
    policy_id: &PolicyId,
    proposal: &[String],
) -> Result<Option<dfns_client::Approval>> {
    use futures::StreamExt;
    let since = request.updated_at - EARLIER_SEND_CLOCK_MARGIN;
    let wanted: std::collections::BTreeSet<&str> = proposal.iter().map(String::as_str).collect();
    let mut approvals = dfns
        .list_approvals(&dfns_client::ApprovalsQuery::default())
        .take(EARLIER_SEND_LOOKBACK);
    while let Some(approval) = approvals.next().await {
        let approval = approval?;
        // Newest first: the rest is older still.
        if approval.date_created.is_some_and(|created| created < since) {
            break;
        }
        let dfns_client::Activity::PoliciesModify { change_request } = &approval.activity else {
            continue;
        };
        if approval.status == ApprovalStatus::Pending
            || change_request.entity_id != policy_id.as_str()
            || change_request.date_created < since
        {
            continue;
        }
        let proposed = match change_request.proposed_policy().map(|p| p.rule) {
            Ok(PolicyRule::TransactionRecipientWhitelist { configuration }) => {
                configuration.addresses
            }
            _ => continue,
        };
        if proposed
            .iter()
            .map(String::as_str)
            .collect::<std::collections::BTreeSet<_>>()
            == wanted
        {
            return Ok(Some(approval));
        }
    }
    Ok(None)
}

/// Records the approval of an earlier send on the request (`PendingApproval`), then settles it as
/// the approval was decided, with the deciding officer as actor.
async fn adopt_decision(
    app: &App,
    request: &DestinationRequest,
    approval: &dfns_client::Approval,
    request_id: &str,
) -> Result<()> {
    let dfns_client::Activity::PoliciesModify { change_request } = &approval.activity else {
        return Ok(());
    };
    let mut change = (**change_request).clone();
    change
        .approval_id
        .get_or_insert_with(|| approval.id.clone());
    tracing::warn!(
        request = %request.id,
        approval = %approval.id,
        status = %approval.status,
        "an earlier send of this request was decided at Dfns; adopting its decision"
    );
    mark_pending(app, request, &change, request_id).await?;
    let Some(pending) = app
        .store()
        .get_destination_request(&request.client_id, &request.id)
        .await?
    else {
        return Ok(());
    };
    let actor = approval
        .decisions
        .last()
        .map(|d| Actor::Compliance {
            id: d.user_id.to_string(),
        })
        .unwrap_or(Actor::System {
            id: "destination-requests".into(),
        });
    resolve_from_approval(app, &pending, approval, actor, request_id).await
}

pub(crate) async fn mark_pending(
    app: &App,
    request: &DestinationRequest,
    change: &dfns_client::ChangeRequest,
    request_id: &str,
) -> Result<()> {
    let changes = RequestChanges {
        approval_id: change.approval_id.as_ref().map(|a| a.to_string()),
        change_request_id: Some(change.id.to_string()),
        reason: None,
    };
    let advanced = app
        .store()
        .advance_destination_request(
            &request.client_id,
            &request.id,
            DestinationRequestState::PendingApproval,
            &changes,
            OffsetDateTime::now_utc(),
        )
        .await?;
    // Applied now, or by an earlier delivery that may have stopped before its audit line.
    let here = match &advanced {
        Advance::Applied(_) => true,
        Advance::Stale(current) => current.state == DestinationRequestState::PendingApproval,
    };
    if here {
        audit::record_once(
            app,
            &request.client_id,
            &format!("destination-request:{}:PendingApproval", request.id),
            Actor::System {
                id: "destination-requests".into(),
            },
            actions::DESTINATION_PENDING,
            request_id,
            serde_json::json!({
                "requestId": request.id,
                "approvalId": changes.approval_id,
                "changeRequestId": changes.change_request_id,
            }),
        )
        .await?;
        keep_whitelist_snapshot(app, request).await;
    }
    Ok(())
}

async fn fail(
    app: &App,
    request: &DestinationRequest,
    reason: &str,
    request_id: &str,
) -> Result<()> {
    settle(
        app,
        request,
        DestinationRequestState::Failed,
        Some(reason.to_owned()),
        Actor::System {
            id: "destination-requests".into(),
        },
        request_id,
    )
    .await
}

/// Moves a request to a final state (forward only), records and tells it. Returns whether this
/// call moved it. The store releases the client's slot on the way.
async fn settle_once(
    app: &App,
    request: &DestinationRequest,
    to: DestinationRequestState,
    reason: Option<String>,
    actor: Actor,
    request_id: &str,
) -> Result<bool> {
    let changes = RequestChanges {
        reason: reason.clone(),
        ..RequestChanges::default()
    };
    let advanced = app
        .store()
        .advance_destination_request(
            &request.client_id,
            &request.id,
            to,
            &changes,
            OffsetDateTime::now_utc(),
        )
        .await?;
    // A replay that finds the request already in `to` finishes what an earlier call may have left
    // undone (it may have stopped after the state change): the audit line, the notification and the
    // trading authorization each happen once, however often this runs.
    let (updated, moved) = match advanced {
        Advance::Applied(updated) => (updated, true),
        Advance::Stale(current) if current.state == to => (current, false),
        Advance::Stale(_) => return Ok(false),
    };
    let (action, kind) = match to {
        DestinationRequestState::Approved => {
            (actions::DESTINATION_APPROVED, kinds::DESTINATION_APPROVED)
        }
        DestinationRequestState::Rejected => {
            (actions::DESTINATION_REJECTED, kinds::DESTINATION_REJECTED)
        }
        _ => (actions::DESTINATION_FAILED, kinds::DESTINATION_FAILED),
    };
    let detail = serde_json::json!({
        "requestId": updated.id,
        "network": updated.destination.network(),
        "address": updated.destination.address().canonical(),
        "label": updated.label,
        "action": updated.action,
        "state": updated.state,
        "reason": updated.reason,
        "approvalId": updated.approval_id,
    });
    audit::record_once(
        app,
        &request.client_id,
        &format!("destination-request:{}:{}", updated.id, updated.state),
        actor,
        action,
        request_id,
        detail.clone(),
    )
    .await?;
    notify::notify(
        app,
        Notice {
            client_id: request.client_id.clone(),
            dedup_key: format!("destination-request:{}:{}", updated.id, updated.state),
            kind,
            occurred_at: updated.updated_at,
            detail,
        },
    )
    .await?;
    // A trading authorization waiting on this address becomes active (or rejected) with it.
    crate::trading::on_destination_resolved(app, &updated, request_id).await?;
    keep_whitelist_snapshot(app, request).await;
    Ok(moved)
}

/// The account view's copy of the client's whitelist on the request's network, re-read now that
/// the request moved its policy (or its pending change). Best effort: the reconciler refreshes it
/// too, and the view reads Dfns for a policy it has no copy of.
async fn keep_whitelist_snapshot(app: &App, request: &DestinationRequest) {
    let client = &request.client_id;
    let refreshed = async {
        let policy_id = whitelist_policy_id(app, client, request.destination.network()).await?;
        crate::reporting::read_model::refresh_policy_snapshot(app, client, policy_id.as_str()).await
    }
    .await;
    if let Err(error) = refreshed {
        tracing::warn!(%error, client = %client, request = %request.id, "kept whitelist not refreshed");
    }
}

async fn settle(
    app: &App,
    request: &DestinationRequest,
    to: DestinationRequestState,
    reason: Option<String>,
    actor: Actor,
    request_id: &str,
) -> Result<()> {
    settle_once(app, request, to, reason, actor, request_id)
        .await
        .map(|_| ())
}

/// What an approval's state means for the request waiting on it; `None` while still pending.
pub fn outcome_of_approval(
    status: &ApprovalStatus,
    change_request_status: Option<&ChangeRequestStatus>,
) -> Option<DestinationRequestState> {
    if matches!(change_request_status, Some(ChangeRequestStatus::Failed)) {
        return Some(DestinationRequestState::Failed);
    }
    match status {
        ApprovalStatus::Approved => Some(DestinationRequestState::Approved),
        ApprovalStatus::Denied | ApprovalStatus::Expired => Some(DestinationRequestState::Rejected),
        _ => None,
    }
}

/// Applies an approval's resolution to the request waiting on it (forward only: a late or
/// repeated report changes nothing). Changes nothing at Dfns, so the read-only webhook receiver
/// can call it; submitting the client's next queued request is [`submit_queued`]'s, called by
/// the reconciler.
pub async fn resolve_from_approval(
    app: &App,
    request: &DestinationRequest,
    approval: &dfns_client::Approval,
    actor: Actor,
    request_id: &str,
) -> Result<()> {
    let change_status = match &approval.activity {
        dfns_client::Activity::PoliciesModify { change_request } => Some(&change_request.status),
        _ => None,
    };
    let Some(to) = outcome_of_approval(&approval.status, change_status) else {
        return Ok(());
    };
    let reason = match to {
        DestinationRequestState::Approved => None,
        DestinationRequestState::Failed => Some("the approved change could not be applied".into()),
        _ => Some(rejection_reason(approval)),
    };
    settle_once(app, request, to, reason, actor, request_id).await?;
    Ok(())
}

/// What the client reads when a change is not made: the officer's own words when a denial gave
/// some, else what happened in plain terms (an expiry is nobody's decision, and says so).
pub fn rejection_reason(approval: &dfns_client::Approval) -> String {
    if let Some(reason) = approval
        .decisions
        .iter()
        .rev()
        .find_map(|d| d.reason.clone())
    {
        return reason;
    }
    match (&approval.status, approval.expiration_date) {
        (ApprovalStatus::Expired, Some(at)) => format!(
            "expired: no compliance officer decided before {}",
            at.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        ),
        (ApprovalStatus::Expired, None) => {
            "expired: no compliance officer decided within the approval's time limit".into()
        }
        _ => "denied by a compliance officer (no reason given)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(network: &str, address: &str, label: &str, action: &str) -> DestinationInput {
        DestinationInput {
            network: network.into(),
            address: address.into(),
            label: label.into(),
            action: action.into(),
        }
    }

    const NETWORKS: &[Network] = &[Network::EthereumSepolia];

    #[test]
    fn a_checksummed_address_is_normalised_to_lowercase() {
        let valid = validate(
            NETWORKS,
            &input(
                "EthereumSepolia",
                "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
                " Exchange ",
                "add",
            ),
        )
        .unwrap();
        assert_eq!(
            valid.destination.address().canonical(),
            "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
        );
        assert_eq!(valid.label, "Exchange");
        assert_eq!(valid.action, DestinationAction::Add);
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        let good = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
        for (case, bad) in [
            (
                "bad checksum",
                input(
                    "EthereumSepolia",
                    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD",
                    "x",
                    "add",
                ),
            ),
            (
                "short",
                input(
                    "EthereumSepolia",
                    "0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea",
                    "x",
                    "add",
                ),
            ),
            (
                "long",
                input(
                    "EthereumSepolia",
                    "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed00",
                    "x",
                    "add",
                ),
            ),
            ("unknown network", input("Tron", good, "x", "add")),
            ("network not offered", input("Ethereum", good, "x", "add")),
            ("empty label", input("EthereumSepolia", good, "  ", "add")),
            (
                "long label",
                input("EthereumSepolia", good, &"x".repeat(101), "add"),
            ),
            (
                "control character",
                input("EthereumSepolia", good, "a\nb", "add"),
            ),
            ("action", input("EthereumSepolia", good, "x", "replace")),
        ] {
            assert!(
                matches!(validate(NETWORKS, &bad), Err(PlatformError::BadRequest(_))),
                "{case}"
            );
        }
    }

    #[test]
    fn approval_outcomes() {
        use DestinationRequestState as S;
        assert_eq!(outcome_of_approval(&ApprovalStatus::Pending, None), None);
        assert_eq!(
            outcome_of_approval(&ApprovalStatus::Approved, None),
            Some(S::Approved)
        );
        assert_eq!(
            outcome_of_approval(&ApprovalStatus::Denied, None),
            Some(S::Rejected)
        );
        assert_eq!(
            outcome_of_approval(&ApprovalStatus::Expired, None),
            Some(S::Rejected)
        );
        assert_eq!(
            outcome_of_approval(
                &ApprovalStatus::Approved,
                Some(&ChangeRequestStatus::Failed)
            ),
            Some(S::Failed)
        );
    }
    fn resolved(
        status: &str,
        expires: Option<&str>,
        reasons: &[Option<&str>],
    ) -> dfns_client::Approval {
        let decisions: Vec<_> = reasons
            .iter()
            .map(|r| serde_json::json!({"userId": "us-officer", "date": "2024-01-02T00:00:00Z", "value": "Denied", "reason": r}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "id": "ap-1",
            "initiatorId": "us-1",
            "status": status,
            "activity": {"kind": "Wallets:Sign"},
            "decisions": decisions,
            "expirationDate": expires,
        }))
        .unwrap()
    }

    #[test]
    fn the_client_reads_why_a_change_was_not_made() {
        // The officer's words win.
        assert_eq!(
            rejection_reason(&resolved(
                "Denied",
                None,
                &[Some("sanctioned counterparty")]
            )),
            "sanctioned counterparty"
        );
        // An expiry is nobody's decision: it says so, and when.
        assert_eq!(
            rejection_reason(&resolved("Expired", Some("2024-01-04T00:00:00Z"), &[])),
            "expired: no compliance officer decided before 2024-01-04T00:00:00Z"
        );
        assert_eq!(
            rejection_reason(&resolved("Expired", None, &[])),
            "expired: no compliance officer decided within the approval's time limit"
        );
        assert_eq!(
            rejection_reason(&resolved("Denied", None, &[None])),
            "denied by a compliance officer (no reason given)"
        );
    }
}
