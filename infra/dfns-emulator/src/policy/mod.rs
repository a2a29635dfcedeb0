//! The policy engine v2 (docs/dfns.md §4–5) and the hook it plugs into.
//!
//! | module | role |
//! |---|---|
//! | [`model`] | the policy object, typed rule / action / filters, validation of §4.3 combinations |
//! | [`evaluate`] | pure rule and filter evaluation (no state, no HTTP) |
//! | [`engine`] | [`DfnsPolicyEngine`], the default engine: facts from the state → verdicts, records |
//! | [`approvals`] | approvals, who may decide, quorum, lazy expiry, effects |
//! | [`change`] | `Policies:Modify` change requests |
//! | [`routes`] | `/v2/policies` and `/v2/policy-approvals` |
//!
//! Hook contract (for [`DfnsPolicyEngine`] and any replacement a test passes in
//! `Options::policy_engine`):
//! - [`PolicyEngine::evaluate_transfer`] is called once per new transfer, with the state lock
//!   held, after the transfer is stored with status `Pending` and `wallet.transfer.requested` is
//!   queued, and before it executes. The engine may read everything in [`State`] (wallet tags,
//!   earlier transfers for velocity, prices, the emulated clock), store its own records in
//!   `state.policy`, and queue webhooks with [`State::emit`] (e.g. `policy.triggered`).
//! - Its [`Verdict`] is applied by the transfer module: `Allow` → the lifecycle starts;
//!   `Block` → the transfer is `Rejected` with the reason (HTTP 200, U5); `RequestApproval` →
//!   the transfer stays `Pending` with `approvalId` until the engine calls
//!   [`crate::transfers::resolve_approval`].
//! - [`PolicyEngine::evaluate_policy_change`] is called by the policy routes before an update or
//!   archive is applied (after the 404 / archived / pending-change checks); `Allow` applies it,
//!   `RequestApproval` answers 202 with the change request held by that approval (the route
//!   records one if the engine did not), `Block` answers 403 with the reason.
//! - Approvals kept in `state.policy.approvals` are expired lazily by
//!   [`approvals::expire_due`], whichever engine created them.

pub mod approvals;
pub mod change;
pub mod engine;
pub mod evaluate;
pub mod model;
pub mod routes;

use std::collections::HashMap;

use serde_json::Value;

use crate::state::State;
use crate::transfers::Transfer;
use crate::usd::Usd;

pub use engine::DfnsPolicyEngine;

/// What the engine decided about an activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Block { reason: String },
    RequestApproval { approval_id: String },
}

/// A proposed change to a policy (`Policies:Modify` activity).
#[derive(Debug, Clone)]
pub struct PolicyChange {
    pub policy_id: String,
    /// `"Update"` or `"Archive"`.
    pub operation: String,
    /// The full proposed policy body `{name, activityKind, rule, action, filters?}` (for an
    /// archive: the current one).
    pub body: Value,
    pub requester_user_id: String,
}

pub trait PolicyEngine: Send + Sync + 'static {
    fn evaluate_transfer(&self, state: &mut State, transfer: &Transfer) -> Verdict;

    fn evaluate_policy_change(&self, state: &mut State, change: &PolicyChange) -> Verdict;
}

/// An engine that allows everything (part 1's default; still available for tests that want no
/// policy engine at all).
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

impl PolicyEngine for AllowAll {
    fn evaluate_transfer(&self, _state: &mut State, _transfer: &Transfer) -> Verdict {
        Verdict::Allow
    }

    fn evaluate_policy_change(&self, _state: &mut State, _change: &PolicyChange) -> Verdict {
        Verdict::Allow
    }
}

/// Storage owned by the policy engine.
#[derive(Debug, Default)]
pub struct PolicyData {
    pub policies: HashMap<String, model::Policy>,
    pub approvals: HashMap<String, approvals::Approval>,
    pub change_requests: HashMap<String, change::ChangeRequest>,
    /// USD value of each evaluated transfer at request time (`None` = no price), for velocity.
    pub valuations: HashMap<String, Option<Usd>>,
}
