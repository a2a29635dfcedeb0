//! # dfns-client
//!
//! The only way the platform's functions talk to Dfns: a typed, signed, retrying client over the
//! subset of the API in `docs/dfns.md`.
//!
//! ## Why our own crate and not the official `dfns-sdk-rust`
//!
//! Dfns publishes a Rust SDK (`dfns-sdk-rust`, 0.3.x at the time of writing). It is used as a
//! cross-check in tests, not in the functions, because:
//!
//! - its `reqwest` dependency keeps default features, which pulls in OpenSSL and breaks the arm64
//!   Lambda cross-builds (this workspace builds reqwest on rustls only);
//! - its policy and approval models are mostly untyped JSON, where we want rules, actions,
//!   filters and statuses as enums;
//! - it does not retry, rate-limit or distinguish a 202 change request from a success.
//!
//! Revisit this choice if the SDK moves to rustls (or lets us drop default features) and types its
//! policy models.
//!
//! ## What it does
//!
//! - **One connection pool per container**: [`DfnsClient`] is cheap to clone; clones share the pool
//!   and the client-side rate limiter (token bucket, [`RateLimit`]).
//! - **User-action signing** (docs/dfns.md §2): every state-changing call does
//!   init → sign clientData `{"type":"key.get","challenge":…}` → `/auth/action` → the call with
//!   `X-DFNS-USERACTION`. The body is serialised once; the same bytes are signed
//!   (`userActionPayload`) and sent. Keys: [`KeySigner`] (Ed25519, ECDSA P-256 with DER low-S
//!   signatures, from PKCS#8 PEM); the [`UserActionSigner`] trait admits a KMS-backed signer.
//! - **Retries** with exponential backoff and jitter, honouring `Retry-After`, inside an overall
//!   deadline ([`RetryPolicy`]), on 429, 5xx, timeouts and connection errors, and only where
//!   repeating is safe: reads, transfers carrying an `externalId` ([`DfnsClient::transfer`] requires
//!   one by type; [`DfnsClient::transfer_without_external_id`] is sent at most once), and writes
//!   that set state (tags, webhook update, ping). Each attempt of a signed call signs afresh (user
//!   actions are single use). The signing round trips themselves change nothing, so a failure
//!   there is retried even for calls that are sent at most once.
//! - **Outcomes, not surprises**: [`UpdateOutcome::Pending`] for a policy change held for
//!   approval (HTTP 202), [`TransferOutcome::Rejected`] for a transfer blocked by policy, and
//!   [`ApiError`] keeping Dfns' status, message, id and details.
//! - **Forward compatible**: every enum has an `Unknown` variant keeping the raw value, and unknown
//!   fields are ignored.
//! - **Pagination**: every list call is a `Stream` over all items of all pages.
//! - **Webhooks**: [`WebhookVerifier`] checks the HMAC over the raw body in constant time, the
//!   freshness of `timestampSent`, and parses the event into [`EventData`].
//! - **Tracing**: one `dfns_request` span per HTTP request with method, path, attempt, status and
//!   latency. Tokens, keys, signatures and user-action tokens are never logged (they are held in
//!   `SecretString`s and kept out of every `Debug`).

//!
//! ## Example
//!
//! ```no_run
//! # async fn example(token: String, pem: String) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use dfns_client::{
//!     Amount, ClientConfig, DfnsClient, ExternalId, KeySigner, SecretString, TransferAsset,
//!     TransferOutcome, WalletId,
//! };
//!
//! // Once per container; clone freely.
//! let signer = KeySigner::from_pkcs8_pem("cred-id", &SecretString::from(pem))?;
//! let client = DfnsClient::new(ClientConfig::new(SecretString::from(token), Some(Arc::new(signer))))?;
//!
//! let asset = TransferAsset::Native {
//!     to: "0xb282dc7cde21717f18337a596e91ded00b79b25f".into(),
//!     amount: Amount::from(1_000_000_000u128),
//!     memo: None,
//!     priority: None,
//! };
//! match client.transfer(&WalletId::new("wa-…"), ExternalId::new("order-123"), asset).await? {
//!     TransferOutcome::Accepted(transfer) => println!("{} is {}", transfer.id, transfer.status),
//!     TransferOutcome::Rejected(transfer) => println!("blocked: {:?}", transfer.reason),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! A retried transfer always carries its idempotency key: the retrying call takes an
//! [`ExternalId`], not an `Option`, so this does not compile:
//!
//! ```compile_fail
//! # async fn example(client: dfns_client::DfnsClient, asset: dfns_client::TransferAsset) {
//! client.transfer(&dfns_client::WalletId::new("wa-1"), None, asset).await;
//! # }
//! ```

#[macro_use]
mod macros;

pub mod approvals;
pub mod audit;
mod client;
pub mod common;
pub mod config;
pub mod error;
pub mod ids;
pub mod policies;
mod rate_limit;
pub mod signer;
pub mod transfers;
pub mod wallets;
pub mod webhooks;

pub use approvals::{Activity, Approval, ApprovalStatus, ApprovalsQuery, Decision, DecisionValue};
pub use audit::{AuditLog, AuditLogQuery, AuditLogRow};
pub use client::{BUDGET_EXHAUSTED_CODE, DfnsClient};
pub use common::{Amount, Network, Page};
pub use config::{ClientConfig, DEFAULT_BASE_URL, RateLimit, RetryPolicy};
pub use error::{ApiError, Error, Result};
pub use ids::*;
pub use policies::{
    ActivityKind, ChangeRequest, Policy, PolicyAction, PolicyBody, PolicyFilters, PolicyRule,
    PolicyStatus, UpdateOutcome,
};
pub use rate_limit::{BudgetExhausted, RequestBudget, SIGNED_CALL_COST};
pub use secrecy::SecretString;
pub use signer::{KeyAlgorithm, KeySigner, SignerError, UserActionSigner};
pub use transfers::{TransferAsset, TransferOutcome, TransferRequest, TransferStatus};
pub use wallets::{CreateWallet, Wallet};
pub use webhooks::{
    EventData, WebhookEvent, WebhookEventKind, WebhookVerifier, WebhookVerifyError,
};
