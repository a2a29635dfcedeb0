//! Webhooks (docs/dfns.md §7): CRUD, ping, stored events, and signed delivery with retries.
//!
//! Every delivery attempt is its own stored event with a new `whe-…` id; a retry carries
//! `retryOf` (the previous attempt's id) and an incremented `deliveryAttempt`. The body is
//! serialised once and signed as `X-DFNS-WEBHOOK-SIGNATURE: sha256=<hex HMAC-SHA256(secret, body)>`.
//! Injected delivery faults ([`crate::faults::WebhookFaults`]) act on each attempt: a dropped
//! attempt or a lost answer is a failed attempt like any other, retried on the same schedule.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State as AxState};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use time::OffsetDateTime;

use crate::auth::Caller;
use crate::clock::iso;
use crate::errors::{ApiError, ApiResult};
use crate::extract::{DfnsJson, DfnsQuery};
use crate::ids;
use crate::pagination::{PageQuery, page};
use crate::permissions::list_json;
use crate::state::{Job, SharedApp, State};

/// Event kinds `@dfns/sdk` 0.8.21 accepts in `events` (plus `*`).
pub const EVENT_KINDS: &[&str] = &[
    "policy.triggered",
    "policy.approval.pending",
    "policy.approval.resolved",
    "key.created",
    "key.deleted",
    "key.delegated",
    "key.exported",
    "wallet.blockchainevent.detected",
    "wallet.created",
    "wallet.activated",
    "wallet.delegated",
    "wallet.exported",
    "wallet.signature.failed",
    "wallet.signature.rejected",
    "wallet.signature.requested",
    "wallet.signature.signed",
    "wallet.transaction.broadcasted",
    "wallet.transaction.confirmed",
    "wallet.transaction.failed",
    "wallet.transaction.rejected",
    "wallet.transaction.requested",
    "wallet.transfer.broadcasted",
    "wallet.transfer.confirmed",
    "wallet.transfer.failed",
    "wallet.transfer.rejected",
    "wallet.transfer.requested",
    "wallet.offer.received",
    "wallet.offer.accepted",
    "wallet.offer.rejected",
    "wallet.offer.withdrawn",
    "wallet.tags.modified",
    "payout.action.required",
    "*",
];

/// Stored events are listed for 31 days (on the emulated clock).
const RETENTION_DAYS: i64 = 31;

pub const SIGNATURE_HEADER: &str = "X-DFNS-WEBHOOK-SIGNATURE";

#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub description: Option<String>,
    pub date_created: String,
    pub date_updated: String,
    pub secret: String,
    pub seq: u64,
}

impl Webhook {
    fn to_json(&self) -> Value {
        let mut out = json!({
            "id": self.id,
            "url": self.url,
            "events": self.events,
            "status": if self.enabled { "Enabled" } else { "Disabled" },
            "dateCreated": self.date_created,
            "dateUpdated": self.date_updated,
        });
        if let Some(description) = &self.description {
            out["description"] = json!(description);
        }
        out
    }

    fn subscribes_to(&self, kind: &str) -> bool {
        self.events.iter().any(|e| e == "*" || e == kind)
    }
}

/// One delivery attempt of one event to one webhook.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: String,
    pub webhook_id: String,
    pub kind: String,
    pub date: OffsetDateTime,
    pub data: Value,
    /// HTTP status of the receiver's answer (`"200"`), an error code, or `"Pending"`.
    pub status: String,
    pub error: Option<String>,
    /// Unix seconds (wall clock) when signed and sent.
    pub timestamp_sent: i64,
    pub delivery_attempt: u32,
    pub retry_of: Option<String>,
    pub delivery_failed: bool,
    /// When the next retry is due (absent = no more retries).
    pub next_attempt_date: Option<OffsetDateTime>,
    pub seq: u64,
}

impl StoredEvent {
    /// The SDK type (`GetWebhookEventResponse`: `id, date, kind, data, status, error?,
    /// timestampSent`) plus the four fields Dfns' webhook documentation adds (§7.6).
    fn to_json(&self) -> Value {
        let mut out = json!({
            "id": self.id,
            "kind": self.kind,
            "date": iso(self.date),
            "data": self.data,
            "status": self.status,
            "timestampSent": self.timestamp_sent,
            "deliveryAttempt": self.delivery_attempt,
            "deliveryFailed": self.delivery_failed,
        });
        if let Some(error) = &self.error {
            out["error"] = json!(error);
        }
        if let Some(retry_of) = &self.retry_of {
            out["retryOf"] = json!(retry_of);
        }
        if let Some(next) = self.next_attempt_date {
            out["nextAttemptDate"] = json!(iso(next));
        }
        out
    }

    /// The body POSTed to the receiver (§7.4).
    fn payload(&self) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), json!(self.id));
        out.insert("kind".into(), json!(self.kind));
        out.insert("date".into(), json!(iso(self.date)));
        out.insert("timestampSent".into(), json!(self.timestamp_sent));
        out.insert("deliveryAttempt".into(), json!(self.delivery_attempt));
        out.insert("data".into(), self.data.clone());
        if let Some(retry_of) = &self.retry_of {
            out.insert("retryOf".into(), json!(retry_of));
        }
        Value::Object(out)
    }
}

fn wall_clock_seconds() -> i64 {
    // Receivers check `timestampSent` against their own clock (±300 s), so it follows the wall
    // clock even when a test has moved the emulated clock forward.
    OffsetDateTime::now_utc().unix_timestamp()
}

/// `sha256=<lowercase hex HMAC-SHA256(secret, body)>`.
pub fn signature_header_value(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Queues `kind` with `data` for every enabled webhook subscribed to it.
pub fn publish(state: &mut State, kind: &str, data: Value) {
    let now = state.now();
    let targets: Vec<String> = state
        .webhooks
        .values()
        .filter(|w| w.enabled && w.subscribes_to(kind))
        .map(|w| w.id.clone())
        .collect();
    for webhook_id in targets {
        let event = StoredEvent {
            id: ids::new_id("whe"),
            webhook_id,
            kind: kind.to_owned(),
            date: now,
            data: data.clone(),
            status: "Pending".to_owned(),
            error: None,
            timestamp_sent: wall_clock_seconds(),
            delivery_attempt: 1,
            retry_of: None,
            delivery_failed: false,
            next_attempt_date: None,
            seq: state.next_seq(),
        };
        state.outbox.push(Job::Deliver {
            event_id: event.id.clone(),
        });
        state.webhook_events.insert(event.id.clone(), event);
    }
}

/// Delivers a stored event, then its retries, until one succeeds, attempts run out, or the
/// webhook is disabled or deleted.
pub async fn deliver(app: SharedApp, first_event_id: String) {
    let mut event_id = first_event_id;
    loop {
        let prepared = app.with_state(|s| {
            let event = s.webhook_events.get_mut(&event_id)?;
            let webhook = s.webhooks.get(&event.webhook_id).filter(|w| w.enabled)?;
            event.timestamp_sent = wall_clock_seconds();
            let body = serde_json::to_vec(&event.payload()).ok()?;
            Some((webhook.url.clone(), webhook.secret.clone(), body))
        });
        let Some((url, secret, body)) = prepared else {
            return;
        };
        let (status, error) = attempt(&app, url, secret, body).await;
        let succeeded = status.starts_with('2');
        let retry_delay = app.with_state(|s| {
            let now = s.now();
            let event = s.webhook_events.get_mut(&event_id)?;
            event.status = status;
            event.error = error;
            event.delivery_failed = !succeeded;
            if succeeded {
                return None;
            }
            let delay = *app
                .settings
                .webhook_retry_delays
                .get(event.delivery_attempt as usize - 1)?;
            event.next_attempt_date =
                Some(now + time::Duration::try_from(delay).unwrap_or_default());
            Some(delay)
        });
        let Some(delay) = retry_delay else { return };
        tokio::time::sleep(delay).await;
        let next = app.with_state(|s| {
            let previous = s.webhook_events.get(&event_id)?.clone();
            s.webhooks.get(&previous.webhook_id).filter(|w| w.enabled)?;
            let retry = StoredEvent {
                id: ids::new_id("whe"),
                status: "Pending".to_owned(),
                error: None,
                timestamp_sent: wall_clock_seconds(),
                delivery_attempt: previous.delivery_attempt + 1,
                retry_of: Some(previous.id.clone()),
                delivery_failed: false,
                next_attempt_date: None,
                seq: s.next_seq(),
                ..previous
            };
            let id = retry.id.clone();
            s.webhook_events.insert(id.clone(), retry);
            Some(id)
        });
        match next {
            Some(id) => event_id = id,
            None => return,
        }
    }
}

/// One delivery attempt under the injected webhook faults (`PUT /emulator/webhook-faults`):
/// returns (status, error) as stored on the event.
async fn attempt(
    app: &SharedApp,
    url: String,
    secret: String,
    body: Vec<u8>,
) -> (String, Option<String>) {
    let faults = crate::faults::draw_webhook_faults(app);
    if let Some(delay) = faults.delay {
        tokio::time::sleep(delay).await;
    }
    if faults.drop {
        return (
            "ConnectionError".to_owned(),
            Some(
                "the connection failed before the receiver got the delivery (injected)".to_owned(),
            ),
        );
    }
    if let Some(after) = faults.duplicate {
        // The same delivery, posted a second time beside the first; its answer counts for nothing.
        let (app, url, secret, body) = (app.clone(), url.clone(), secret.clone(), body.clone());
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            post_signed(&app, &url, &secret, body).await;
        });
    }
    let (status, error) = post_signed(app, &url, &secret, body).await;
    if faults.lose_answer {
        return (
            "Timeout".to_owned(),
            Some(format!(
                "the receiver's answer (HTTP {status}) never came back (injected)"
            )),
        );
    }
    (status, error)
}

/// POSTs a signed body; returns (status, error) as stored on the event.
async fn post_signed(
    app: &SharedApp,
    url: &str,
    secret: &str,
    body: Vec<u8>,
) -> (String, Option<String>) {
    let signature = signature_header_value(secret, &body);
    let result = app
        .http
        .post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature)
        .body(body)
        .send()
        .await;
    match result {
        Ok(response) => {
            let status = response.status();
            let error = (!status.is_success())
                .then(|| format!("receiver answered HTTP {}", status.as_u16()));
            (status.as_u16().to_string(), error)
        }
        Err(e) if e.is_timeout() => ("Timeout".to_owned(), Some(e.to_string())),
        Err(e) => ("ConnectionError".to_owned(), Some(e.to_string())),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateBody {
    url: String,
    events: Vec<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

fn validate_url(url: &str) -> ApiResult<()> {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(()),
        _ => Err(ApiError::bad_request(format!(
            "url is not a valid http(s) URL: {url:?}"
        ))),
    }
}

fn validate_events(events: &[String]) -> ApiResult<()> {
    if events.is_empty() {
        return Err(ApiError::bad_request(
            "events must contain at least one event kind",
        ));
    }
    if let Some(bad) = events.iter().find(|e| !EVENT_KINDS.contains(&e.as_str())) {
        return Err(ApiError::bad_request(format!("unknown event kind {bad:?}")));
    }
    Ok(())
}

fn parse_status(status: Option<&str>) -> ApiResult<Option<bool>> {
    match status {
        None => Ok(None),
        Some("Enabled") => Ok(Some(true)),
        Some("Disabled") => Ok(Some(false)),
        Some(other) => Err(ApiError::bad_request(format!(
            "status must be Enabled or Disabled, got {other:?}"
        ))),
    }
}

fn validate_description(description: Option<&str>) -> ApiResult<()> {
    if description.is_some_and(|d| d.chars().count() > 256) {
        return Err(ApiError::bad_request(
            "description must be at most 256 characters",
        ));
    }
    Ok(())
}

fn webhook_not_found(id: &str) -> ApiError {
    ApiError::not_found("webhook not found").with_details(json!({ "webhookId": id }))
}

pub async fn create(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    DfnsJson(body): DfnsJson<CreateBody>,
) -> ApiResult<Json<Value>> {
    caller.require("Webhooks:Create")?;
    validate_url(&body.url)?;
    validate_events(&body.events)?;
    validate_description(body.description.as_deref())?;
    let enabled = parse_status(body.status.as_deref())?.unwrap_or(true);
    Ok(Json(app.with_state(|s| {
        let now = iso(s.now());
        let webhook = Webhook {
            id: ids::new_id("wh"),
            url: body.url,
            events: body.events,
            enabled,
            description: body.description,
            date_created: now.clone(),
            date_updated: now,
            secret: format!("whsec.{}", ids::random_token(32)),
            seq: s.next_seq(),
        };
        let mut out = webhook.to_json();
        // The secret is shown here and never again.
        out["secret"] = json!(webhook.secret);
        s.webhooks.insert(webhook.id.clone(), webhook);
        out
    })))
}

pub async fn list(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    DfnsQuery(query): DfnsQuery<PageQuery>,
) -> ApiResult<Json<Value>> {
    caller.require("Webhooks:Read")?;
    app.with_state(|s| {
        let all = s.webhooks.values().map(|w| (w.seq, w.to_json()));
        let (items, next) = page(all, &query, 50)?;
        Ok(Json(list_json(items, next)))
    })
}

pub async fn get(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require("Webhooks:Read")?;
    app.with_state(|s| {
        s.webhooks
            .get(&id)
            .map(|w| Json(w.to_json()))
            .ok_or_else(|| webhook_not_found(&id))
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateBody {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    events: Option<Vec<String>>,
    #[serde(default)]
    status: Option<String>,
}

pub async fn update(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    DfnsJson(body): DfnsJson<UpdateBody>,
) -> ApiResult<Json<Value>> {
    caller.require("Webhooks:Update")?;
    if let Some(url) = &body.url {
        validate_url(url)?;
    }
    if let Some(events) = &body.events {
        validate_events(events)?;
    }
    validate_description(body.description.as_deref())?;
    let enabled = parse_status(body.status.as_deref())?;
    app.with_state(|s| {
        let now = iso(s.now());
        let webhook = s
            .webhooks
            .get_mut(&id)
            .ok_or_else(|| webhook_not_found(&id))?;
        if let Some(url) = body.url {
            webhook.url = url;
        }
        if let Some(events) = body.events {
            webhook.events = events;
        }
        if let Some(description) = body.description {
            webhook.description = Some(description);
        }
        if let Some(enabled) = enabled {
            webhook.enabled = enabled;
        }
        webhook.date_updated = now;
        Ok(Json(webhook.to_json()))
    })
}

pub async fn delete(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require("Webhooks:Delete")?;
    app.with_state(|s| {
        s.webhooks
            .remove(&id)
            .ok_or_else(|| webhook_not_found(&id))?;
        // Stored events and pending retries go with the webhook.
        s.webhook_events.retain(|_, e| e.webhook_id != id);
        Ok(Json(json!({ "deleted": true })))
    })
}

/// `POST /webhooks/{id}/ping`: sends a signed test event now; the event is not stored.
pub async fn ping(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require("Webhooks:Ping")?;
    let (url, secret, body) = app.with_state(|s| {
        let webhook = s.webhooks.get(&id).ok_or_else(|| webhook_not_found(&id))?;
        let payload = json!({
            "id": ids::new_id("whe"),
            "kind": "ping",
            "date": iso(s.now()),
            "timestampSent": wall_clock_seconds(),
            "deliveryAttempt": 1,
            "data": {},
        });
        let body = serde_json::to_vec(&payload).expect("JSON value serialises");
        Ok::<_, ApiError>((webhook.url.clone(), webhook.secret.clone(), body))
    })?;
    let (status, error) = post_signed(&app, &url, &secret, body).await;
    let mut out = json!({ "status": status });
    if let Some(error) = error {
        out["error"] = json!(error);
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsQuery {
    #[serde(flatten)]
    page: PageQuery,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    delivery_failed: Option<String>,
}

pub async fn list_events(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    DfnsQuery(query): DfnsQuery<EventsQuery>,
) -> ApiResult<Json<Value>> {
    caller.require("Webhooks:Events:Read")?;
    let failed_filter = match query.delivery_failed.as_deref() {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "deliveryFailed must be true or false, got {other:?}"
            )));
        }
    };
    app.with_state(|s| {
        if !s.webhooks.contains_key(&id) {
            return Err(webhook_not_found(&id));
        }
        let oldest = s.now() - time::Duration::days(RETENTION_DAYS);
        let all = s
            .webhook_events
            .values()
            .filter(|e| e.webhook_id == id && e.date >= oldest)
            .filter(|e| query.kind.as_deref().is_none_or(|k| e.kind == k))
            .filter(|e| failed_filter.is_none_or(|f| e.delivery_failed == f))
            .map(|e| (e.seq, e.to_json()));
        let (items, next) = page(all, &query.page, 50)?;
        Ok(Json(list_json(items, next)))
    })
}

pub async fn get_event(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path((id, event_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require("Webhooks:Events:Read")?;
    app.with_state(|s| {
        if !s.webhooks.contains_key(&id) {
            return Err(webhook_not_found(&id));
        }
        s.webhook_events
            .get(&event_id)
            .filter(|e| e.webhook_id == id)
            .map(|e| Json(e.to_json()))
            .ok_or_else(|| {
                ApiError::not_found("webhook event not found")
                    .with_details(json!({ "webhookId": id, "webhookEventId": event_id }))
            })
    })
}
