//! The platform's persistence: one DynamoDB table, every write conditional.
//!
//! # Key design
//!
//! One table (defined once, in [`schema`]) with a string partition key `pk` and sort key `sk`, two
//! overloaded lookup indexes and one sparse index. `<x>` is the parsed domain value's text form;
//! ids never contain `#`, so keys cannot collide.
//!
//! | item | `pk` | `sk` | `gsi1pk` / `gsi1sk` | `gsi2pk` / `gsi2sk` | `duePk` / `dueAt` | `openPk` / `openSk` |
//! |---|---|---|---|---|---|---|
//! | client profile | `CLIENT#<clientId>` | `PROFILE` | | | | |
//! | wallet mapping (one per network) | `CLIENT#<clientId>` | `WALLET#<network>` | `WALLET#<walletId>` / `CLIENT#<clientId>` | | | |
//! | destination request | `CLIENT#<clientId>` | `DESTREQ#<ulid>` | `APPROVAL#<approvalId>` / `DESTREQ#<ulid>` (once known) | `CHANGE#<changeRequestId>` / `DESTREQ#<ulid>` (once known) | | `OPEN#DESTREQ` / `<ulid>` (only while not final) |
//! | order | `ORDER#<ulid>` | `ORDER` | `CLIENT#<clientId>` / `ORDER#<ulid>` | | `DUE` / epoch ms (only while `Scheduled` or `Claimed`) | `OPEN#ORDER` / `<ulid>` (only while `Submitted`, `PendingApproval` or `Broadcasted`) |
//! | client's Dfns policy of a kind | `CLIENT#<clientId>` | `POLICYREF#<kind>` | | | | |
//! | policy-change slot (at most one) | `CLIENT#<clientId>` | `POLICY#CHANGE_SLOT` | | | | |
//! | audit chain head | `CLIENT#<clientId>` | `AUDIT#HEAD` | | | | |
//! | audit checkpoint (last entry the server verified) | `CLIENT#<clientId>` | `AUDIT#CHECKPOINT` | | | | |
//! | the organisation's Dfns request budget (token bucket) | `BUDGET#dfns` | `BUDGET` | | | | |
//! | a client's count of open destination requests (quota) | `CLIENT#<clientId>` | `QUOTA#OPEN_DESTREQ` | | | | |
//! | a client's changes in one clock minute (rate limit; expires after an hour) | `CLIENT#<clientId>` | `RATE#<minute>` | | | | |
//! | where the reconciler's last run stopped | `RECONCILER` | `CURSOR#DESTREQ` | | | | |
//! | audit event | `CLIENT#<clientId>` | `AUDIT#EVENT#<seq, 20 digits>` | | | | |
//! | audit once-marker (an event recorded at most once) | `CLIENT#<clientId>` | `AUDIT#ONCE#<key>` | | | | |
//! | webhook receipt | `WEBHOOK#<eventId>` | `WEBHOOK` | | | | |
//! | activity row (read model of `GET /v1/activity`, [`activity`]) | `CLIENT#<clientId>` | `ACT#<epoch ns, 20 digits>#<row id>` | | | | |
//! | activity fold marker (a transfer and its own `Out` history entry) | `CLIENT#<clientId>` | `ACTTX#<walletId>#<txHash>` | | | | |
//! | a transfer's activity row again, in a range of transfers only (limits' windows) | `CLIENT#<clientId>` | `ACTXFR#<epoch ns>#<transferId>` | | | | |
//! | a Dfns policy of the client as last read (account view) | `CLIENT#<clientId>` | `POLICYSNAP#<policyId>` | | | | |
//! | deposit kept for a wallet no client holds yet (expires after 32 days) | `UNMAPPED#<walletId>` | `EVENT#<eventId>` | | | | `OPEN#UNMAPPED` / `<epoch ms, 15 digits>#<walletId>#<eventId>` |
//!
//! Access patterns:
//! - **Everything about one client** lives in its partition, so "get X scoped to client C" is a
//!   `GetItem` on `CLIENT#C`: another client's id simply is not found (the API answers 404 for both).
//!   Destination requests sort by ULID, i.e. by creation time.
//! - **Orders** have their own partition so the webhook path (Dfns `externalId` = order id) and the
//!   operator's cancel route reach them by id with a strongly consistent read; `gsi1` lists them per
//!   client.
//! - **`gsi1`** also answers "which client owns wallet W" (deposit webhooks) and "which destination
//!   request waits on approval A"; **`gsi2`** answers "which request does change request R belong to".
//!   GSI reads are eventually consistent: they only locate an item, and every change that follows is
//!   a conditional write on the base table.
//! - **`due`** is sparse: an order carries `duePk`/`dueAt` only while it needs an execution run.
//!   `dueAt` is when it next needs attention: its `executeAt` while `Scheduled`, its lease expiry
//!   while `Claimed`. So one query (`duePk = DUE AND dueAt <= now`) returns both due orders and
//!   orders whose run died, and nothing else; leaving `Claimed` removes the attributes. One `DUE`
//!   partition suffices at our volume (a GSI partition takes ~1000 writes/s); shard the value
//!   (`DUE#0..n`) if that ever binds.
//! - **`open`** is sparse too: a destination request carries `openPk`/`openSk` until it is final,
//!   an order while its transfer is at Dfns and not final; the write that changes the state sets or
//!   removes them. The reconciler and the in-flight refresh each read one partition of it instead of
//!   scanning the table.
//! - **Webhook receipts** expire through DynamoDB TTL (attribute [`schema::TTL_ATTRIBUTE`], epoch
//!   seconds). TTL deletion is lazy, which only lengthens the de-duplication window.
//! - **Policy-change slot**: a client's whitelist policy is replaced whole on each change, so two
//!   changes at Dfns at once would overwrite each other. [`Store::submit_destination_request`]
//!   moves a request `Queued → Submitted` and takes the client's one slot in the same transaction;
//!   a final state releases it. Later requests stay `Queued` until the slot is free.
//! - **Audit chain**: the head item holds the last sequence number and hash; an append is one
//!   `TransactWriteItems` of *put event `seq+1` if absent* and *update head if its seq is still
//!   `seq`*, so two concurrent appends cannot both succeed: the loser re-reads the head and retries
//!   with backoff. The chain therefore never forks and never has a gap. A batch of once-keyed
//!   facts (the webhook consumer's) is one such transaction per chunk of 40. A read verifies only
//!   the entries after the client's checkpoint and moves it forward with
//!   `attribute_not_exists(pk) OR seq < :seq`.
//!
//! # Concurrency rules
//!
//! - Creates are `attribute_not_exists(pk)`: the loser of a race gets [`StoreError::Conflict`].
//! - State transitions are conditional on the expected current state (and, for claimed orders, on
//!   the claim token, so a run whose lease expired cannot overwrite its successor's work): exactly
//!   one of many racers wins, the others get [`StoreError::ConditionFailed`].
//! - Forward-only application of out-of-order events ([`Advance`]) re-reads and retries the
//!   conditional write, and reports stale events instead of applying them.
//!
//! Amounts are stored as strings, never DynamoDB numbers: `N` keeps 38 significant digits and a
//! `u128` amount can have 39.
//!
//! Time is always passed in (`now`), never read here, so callers can use an emulated clock.

pub mod activity;
mod audit_batch;
mod audit_chain;
mod clients;
mod destinations;
pub mod dfns_budget;
mod error;
pub mod idempotency;
mod item;
pub mod notifications;
pub mod onboarding;
pub mod open_requests;
mod orders;
pub mod schema;
pub mod trading;
mod webhooks;

pub use audit_chain::{AuditPage, ChainCheck};
pub use clients::{ClientProfile, WalletMapping};
pub use destinations::{
    DestinationRequest, DestinationRequestView, NewDestinationRequest, RequestChanges,
};
pub use error::StoreError;
pub use idempotency::{IdempotencyKey, Remembered};
pub use orders::{ClaimToken, ClaimedOrder, NewOrder, Order, OrderChanges, OrderKind};
pub use webhooks::{KeptEvent, WebhookReceipt};

/// Result of applying an event that may be late, repeated or out of order.
#[derive(Debug, Clone, PartialEq)]
pub enum Advance<T> {
    /// The state moved forward; the updated record.
    Applied(T),
    /// The record is already at or past the reported state; nothing changed.
    Stale(T),
}

/// Handle on the table. Cheap to clone; build once per container and share.
#[derive(Debug, Clone)]
pub struct Store {
    client: aws_sdk_dynamodb::Client,
    table: String,
    /// Wallet mappings found so far, shared by the clones ([`Store::find_wallet`]).
    found_wallets: std::sync::Arc<clients::FoundWallets>,
}

impl Store {
    pub fn new(client: aws_sdk_dynamodb::Client, table_name: impl Into<String>) -> Self {
        Self {
            client,
            table: table_name.into(),
            found_wallets: Default::default(),
        }
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// Writes `item` only if nothing has its key yet: `true` when written, `false` when the key
    /// was already held (the item is then left as it was).
    pub(crate) async fn put_if_absent(&self, item: item::Item) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if item::put_conditional_failed(&e) => Ok(false),
            Err(e) => Err(StoreError::aws("PutItem", e)),
        }
    }

    /// A transaction item that writes `item` only if nothing has its key yet.
    pub(crate) fn create_if_absent(
        &self,
        item: item::Item,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StoreError> {
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(clients::builder_error)?;
        Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .put(put)
            .build())
    }

    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }
}
