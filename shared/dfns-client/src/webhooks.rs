//! Webhooks (docs/dfns.md §7): management calls, the event types, and verification of deliveries.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::stream::BoxStream;
use hmac::{Hmac, Mac};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;
use time::OffsetDateTime;

use crate::approvals::Approval;
use crate::client::{DfnsClient, Repeat, Request, secret_string};
use crate::common::rfc3339;
use crate::error::Result;
use crate::ids::{WebhookEventId, WebhookId};
use crate::policies::Policy;
use crate::transfers::TransferRequest;
use crate::wallets::{BlockchainEvent, DEFAULT_PAGE_SIZE, Wallet};

string_enum! {
    /// Webhook event kinds (docs/dfns.md §7.2); `All` is the `*` subscription.
    WebhookEventKind {
        All = "*",
        TransferRequested = "wallet.transfer.requested",
        TransferBroadcasted = "wallet.transfer.broadcasted",
        TransferConfirmed = "wallet.transfer.confirmed",
        TransferFailed = "wallet.transfer.failed",
        TransferRejected = "wallet.transfer.rejected",
        PolicyTriggered = "policy.triggered",
        ApprovalPending = "policy.approval.pending",
        ApprovalResolved = "policy.approval.resolved",
        BlockchainEventDetected = "wallet.blockchainevent.detected",
        WalletCreated = "wallet.created",
        WalletActivated = "wallet.activated",
        WalletDelegated = "wallet.delegated",
        WalletExported = "wallet.exported",
        WalletTagsModified = "wallet.tags.modified",
        TransactionRequested = "wallet.transaction.requested",
        TransactionBroadcasted = "wallet.transaction.broadcasted",
        TransactionConfirmed = "wallet.transaction.confirmed",
        TransactionFailed = "wallet.transaction.failed",
        TransactionRejected = "wallet.transaction.rejected",
        SignatureRequested = "wallet.signature.requested",
        SignatureSigned = "wallet.signature.signed",
        SignatureFailed = "wallet.signature.failed",
        SignatureRejected = "wallet.signature.rejected",
        KeyCreated = "key.created",
        KeyDeleted = "key.deleted",
        KeyDelegated = "key.delegated",
        KeyExported = "key.exported",
    }
}

string_enum! {
    WebhookStatus {
        Enabled = "Enabled",
        Disabled = "Disabled",
    }
}

/// A webhook subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: WebhookId,
    pub url: String,
    pub events: Vec<WebhookEventKind>,
    pub status: WebhookStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub date_created: Option<OffsetDateTime>,
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub date_updated: Option<OffsetDateTime>,
}

/// Answer of create: the webhook and its signing secret, which Dfns shows only this once.
#[derive(Debug, Clone, Deserialize)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    #[serde(deserialize_with = "secret_string")]
    pub secret: SecretString,
}

/// Body of `POST /webhooks`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateWebhook {
    pub url: String,
    pub events: Vec<WebhookEventKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<WebhookStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Body of `PUT /webhooks/{id}`: only the fields given change.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateWebhook {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<WebhookEventKind>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<WebhookStatus>,
}

/// Answer of ping: `status` is the HTTP code the endpoint answered (`"200"`) or an error code.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PingResult {
    pub status: String,
    #[serde(default)]
    pub error: Option<String>,
}

impl PingResult {
    pub fn is_success(&self) -> bool {
        self.status.starts_with('2') && self.error.is_none()
    }
}

/// `policy.triggered` data (docs/dfns.md §7.4). `activity` and `context` vary by rule: raw JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyEvaluationEvent {
    pub id: String,
    pub triggered: bool,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub date: Option<OffsetDateTime>,
    #[serde(default)]
    pub policy: Option<Box<Policy>>,
    #[serde(default)]
    pub activity: Option<Value>,
    #[serde(default)]
    pub context: Option<Value>,
}

/// The typed `data` of an event, chosen by its kind.
#[derive(Debug, Clone, PartialEq)]
pub enum EventData {
    /// `wallet.transfer.*`
    Transfer(Box<TransferRequest>),
    /// `policy.triggered`
    PolicyTriggered(Box<PolicyEvaluationEvent>),
    /// `policy.approval.pending`
    ApprovalPending(Box<Approval>),
    /// `policy.approval.resolved`: the approval, or (one documented shape) only its id, in which
    /// case read the approval with `get_approval`.
    ApprovalResolved {
        approval: Option<Box<Approval>>,
        activity_id: Option<String>,
    },
    /// `wallet.blockchainevent.detected` (deposits etc.)
    BlockchainEventDetected(Box<BlockchainEvent>),
    /// `wallet.created/activated/delegated/exported`
    Wallet(Box<Wallet>),
    /// Any other kind (or a kind added later): `data` as sent.
    Other(Value),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TransferData {
    transfer_request: Box<TransferRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyTriggeredData {
    policy_evaluation: Box<PolicyEvaluationEvent>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApprovalData {
    #[serde(default)]
    approval: Option<Box<Approval>>,
    #[serde(default)]
    activity_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockchainEventData {
    blockchain_event: Box<BlockchainEvent>,
}

#[derive(Deserialize)]
struct WalletData {
    wallet: Box<Wallet>,
}

impl EventData {
    fn parse(kind: &WebhookEventKind, data: Value) -> Result<Self, serde_json::Error> {
        use WebhookEventKind as K;
        Ok(match kind {
            K::TransferRequested
            | K::TransferBroadcasted
            | K::TransferConfirmed
            | K::TransferFailed
            | K::TransferRejected => {
                Self::Transfer(serde_json::from_value::<TransferData>(data)?.transfer_request)
            }
            K::PolicyTriggered => Self::PolicyTriggered(
                serde_json::from_value::<PolicyTriggeredData>(data)?.policy_evaluation,
            ),
            K::ApprovalPending => {
                let parsed: ApprovalData = serde_json::from_value(data)?;
                match parsed.approval {
                    Some(approval) => Self::ApprovalPending(approval),
                    None => return Err(serde::de::Error::missing_field("approval")),
                }
            }
            K::ApprovalResolved => {
                let parsed: ApprovalData = serde_json::from_value(data)?;
                Self::ApprovalResolved {
                    approval: parsed.approval,
                    activity_id: parsed.activity_id,
                }
            }
            K::BlockchainEventDetected => Self::BlockchainEventDetected(
                serde_json::from_value::<BlockchainEventData>(data)?.blockchain_event,
            ),
            K::WalletCreated | K::WalletActivated | K::WalletDelegated | K::WalletExported => {
                Self::Wallet(serde_json::from_value::<WalletData>(data)?.wallet)
            }
            _ => Self::Other(data),
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    id: WebhookEventId,
    kind: WebhookEventKind,
    #[serde(with = "rfc3339")]
    date: OffsetDateTime,
    #[serde(default)]
    timestamp_sent: Option<i64>,
    #[serde(default)]
    delivery_attempt: Option<u32>,
    #[serde(default)]
    retry_of: Option<WebhookEventId>,
    #[serde(default)]
    status: Option<Value>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    delivery_failed: Option<bool>,
    #[serde(default, with = "rfc3339::option")]
    next_attempt_date: Option<OffsetDateTime>,
    #[serde(default)]
    data: Value,
}

/// A webhook event: as delivered to our endpoint, or as stored by Dfns (list/get), where the
/// delivery fields (`status`, `delivery_failed`, …) are set.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawEvent")]
pub struct WebhookEvent {
    /// Unique per delivery attempt: deduplicate on the business object, not on this.
    pub id: WebhookEventId,
    pub kind: WebhookEventKind,
    /// When the underlying event happened.
    pub date: OffsetDateTime,
    /// Unix seconds when signed and sent.
    pub timestamp_sent: Option<i64>,
    pub delivery_attempt: Option<u32>,
    pub retry_of: Option<WebhookEventId>,
    /// Stored events: the endpoint's HTTP code (or error code) of this attempt.
    pub status: Option<Value>,
    pub error: Option<String>,
    pub delivery_failed: Option<bool>,
    pub next_attempt_date: Option<OffsetDateTime>,
    pub data: EventData,
}

impl TryFrom<RawEvent> for WebhookEvent {
    type Error = serde_json::Error;

    fn try_from(raw: RawEvent) -> Result<Self, Self::Error> {
        Ok(Self {
            data: EventData::parse(&raw.kind, raw.data)?,
            id: raw.id,
            kind: raw.kind,
            date: raw.date,
            timestamp_sent: raw.timestamp_sent,
            delivery_attempt: raw.delivery_attempt,
            retry_of: raw.retry_of,
            status: raw.status,
            error: raw.error,
            delivery_failed: raw.delivery_failed,
            next_attempt_date: raw.next_attempt_date,
        })
    }
}

/// Filters of `GET /webhooks/{id}/events`.
#[derive(Debug, Clone, Default)]
pub struct WebhookEventsQuery {
    pub kind: Option<WebhookEventKind>,
    /// `Some(true)`: only failed deliveries (the recovery pattern of docs/dfns.md §7.6).
    pub delivery_failed: Option<bool>,
    pub page_size: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct Deleted {
    #[serde(default)]
    #[allow(dead_code)] // presence is all that matters
    deleted: Option<bool>,
}

impl DfnsClient {
    /// `POST /webhooks`. Sent at most once: list and match by URL before trying again.
    pub async fn create_webhook(&self, body: &CreateWebhook) -> Result<CreatedWebhook> {
        self.call_json(Request::signed(
            Method::POST,
            ["webhooks"],
            body,
            Repeat::Never,
        )?)
        .await
    }

    /// `GET /webhooks/{id}`.
    pub async fn get_webhook(&self, webhook_id: &WebhookId) -> Result<Webhook> {
        self.call_json(Request::get(["webhooks", webhook_id.as_str()]))
            .await
    }

    /// `GET /webhooks`, every page.
    pub fn list_webhooks(&self) -> BoxStream<'static, Result<Webhook>> {
        self.paginate(Request::get(["webhooks"]).query("limit", DEFAULT_PAGE_SIZE))
    }

    /// `PUT /webhooks/{id}`: sets the given fields, so repeating it is harmless (retried).
    pub async fn update_webhook(
        &self,
        webhook_id: &WebhookId,
        body: &UpdateWebhook,
    ) -> Result<Webhook> {
        self.call_json(Request::signed(
            Method::PUT,
            ["webhooks", webhook_id.as_str()],
            body,
            Repeat::Safe,
        )?)
        .await
    }

    /// `DELETE /webhooks/{id}`. Sent at most once (a repeat would answer 404).
    pub async fn delete_webhook(&self, webhook_id: &WebhookId) -> Result<()> {
        let request = Request::signed(
            Method::DELETE,
            ["webhooks", webhook_id.as_str()],
            &serde_json::json!({}),
            Repeat::Never,
        )?;
        let _: Deleted = self.call_json(request).await?;
        Ok(())
    }

    /// `POST /webhooks/{id}/ping`: Dfns sends a test event (not stored) and reports the answer.
    pub async fn ping_webhook(&self, webhook_id: &WebhookId) -> Result<PingResult> {
        self.call_json(Request::signed(
            Method::POST,
            ["webhooks", webhook_id.as_str(), "ping"],
            &serde_json::json!({}),
            Repeat::Safe,
        )?)
        .await
    }

    /// `GET /webhooks/{id}/events`, every page (events are kept 31 days).
    pub fn list_webhook_events(
        &self,
        webhook_id: &WebhookId,
        query: &WebhookEventsQuery,
    ) -> BoxStream<'static, Result<WebhookEvent>> {
        self.paginate(
            Request::get(["webhooks", webhook_id.as_str(), "events"])
                .query("limit", query.page_size.unwrap_or(DEFAULT_PAGE_SIZE))
                .query_opt("kind", query.kind.as_ref())
                .query_opt("deliveryFailed", query.delivery_failed),
        )
    }

    /// `GET /webhooks/{id}/events/{eventId}`.
    pub async fn get_webhook_event(
        &self,
        webhook_id: &WebhookId,
        event_id: &WebhookEventId,
    ) -> Result<WebhookEvent> {
        self.call_json(Request::get([
            "webhooks",
            webhook_id.as_str(),
            "events",
            event_id.as_str(),
        ]))
        .await
    }
}

/// Header carrying `sha256=<hex HMAC>`.
pub const SIGNATURE_HEADER: &str = "x-dfns-webhook-signature";

/// Why a delivery was refused. Each case is distinct so that logs and metrics tell them apart.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookVerifyError {
    #[error("missing X-DFNS-WEBHOOK-SIGNATURE header")]
    MissingSignature,
    #[error("signature header is not `sha256=<64 hex digits>`")]
    MalformedSignature,
    #[error("signature does not match the body (wrong secret or altered body)")]
    SignatureMismatch,
    #[error("signed body is not a webhook event: {0}")]
    MalformedBody(String),
    #[error("event sent {age_seconds}s ago, older than allowed")]
    Stale { age_seconds: i64 },
    #[error("event claims to be sent {ahead_seconds}s in the future")]
    FromFuture { ahead_seconds: i64 },
}

/// Verifies deliveries with the webhook's secret: HMAC-SHA256 over the raw body (constant-time
/// comparison), then freshness of `timestampSent` (inside the signed body, so it cannot be moved).
#[derive(Clone)]
pub struct WebhookVerifier {
    /// The current secret, then (during a rotation) the next one: a delivery signed under either
    /// is accepted.
    secrets: Vec<SecretString>,
    max_age: Duration,
    max_ahead: Duration,
}

impl std::fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("max_age", &self.max_age)
            .field("max_ahead", &self.max_ahead)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Timestamp {
    timestamp_sent: i64,
}

impl WebhookVerifier {
    /// Dfns' guidance: refuse events sent 5 minutes ago or more, or 5 minutes ahead or more.
    pub fn new(secret: SecretString) -> Self {
        Self {
            secrets: vec![secret],
            max_age: Duration::from_secs(300),
            max_ahead: Duration::from_secs(300),
        }
    }

    /// Also accepts deliveries signed with `secret` (the next one, during a rotation: Dfns signs
    /// each webhook's deliveries with that webhook's own secret).
    pub fn also_accepting(mut self, secret: SecretString) -> Self {
        self.secrets.push(secret);
        self
    }

    /// Tolerance for clocks: how far in the past / future `timestampSent` may be.
    pub fn with_tolerance(mut self, max_age: Duration, max_ahead: Duration) -> Self {
        self.max_age = max_age;
        self.max_ahead = max_ahead;
        self
    }

    /// Verifies against the system clock.
    pub fn verify(
        &self,
        signature_header: Option<&str>,
        raw_body: &[u8],
    ) -> Result<WebhookEvent, WebhookVerifyError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        self.verify_at(signature_header, raw_body, now)
    }

    /// Verifies with the header taken from an HTTP header map.
    pub fn verify_headers(
        &self,
        headers: &reqwest::header::HeaderMap,
        raw_body: &[u8],
    ) -> Result<WebhookEvent, WebhookVerifyError> {
        let header = match headers.get(SIGNATURE_HEADER) {
            None => None,
            Some(value) => Some(
                value
                    .to_str()
                    .map_err(|_| WebhookVerifyError::MalformedSignature)?,
            ),
        };
        self.verify(header, raw_body)
    }

    /// Verifies as if the time were `now_unix` (seconds).
    pub fn verify_at(
        &self,
        signature_header: Option<&str>,
        raw_body: &[u8],
        now_unix: i64,
    ) -> Result<WebhookEvent, WebhookVerifyError> {
        let expected = signature_digest(signature_header)?;
        let signed_by_one = self.secrets.iter().any(|secret| {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
                .expect("HMAC takes keys of any length");
            mac.update(raw_body);
            mac.verify_slice(&expected).is_ok()
        });
        if !signed_by_one {
            return Err(WebhookVerifyError::SignatureMismatch);
        }

        let timestamp: Timestamp = serde_json::from_slice(raw_body)
            .map_err(|e| WebhookVerifyError::MalformedBody(e.to_string()))?;
        let age = now_unix - timestamp.timestamp_sent;
        if age >= self.max_age.as_secs() as i64 {
            return Err(WebhookVerifyError::Stale { age_seconds: age });
        }
        if -age >= self.max_ahead.as_secs() as i64 {
            return Err(WebhookVerifyError::FromFuture {
                ahead_seconds: -age,
            });
        }
        serde_json::from_slice(raw_body)
            .map_err(|e| WebhookVerifyError::MalformedBody(e.to_string()))
    }
}

/// The digest a signature header carries (`sha256=` and 64 hex digits), or why it carries none.
/// Needs no secret, so a receiver can refuse an unsigned or malformed delivery before it reads
/// its secret.
pub fn signature_digest(signature_header: Option<&str>) -> Result<[u8; 32], WebhookVerifyError> {
    let header = signature_header.ok_or(WebhookVerifyError::MissingSignature)?;
    let mut digest = [0u8; 32];
    let hex_digest = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(WebhookVerifyError::MalformedSignature)?;
    hex::decode_to_slice(hex_digest, &mut digest)
        .map_err(|_| WebhookVerifyError::MalformedSignature)?;
    Ok(digest)
}
