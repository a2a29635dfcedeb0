//! The policy hook. Part 1 only decides *where* the policy engine is asked; part 2 (dfns-api.md
//! §4–5) implements [`PolicyEngine`] in its own module and keeps its policies and approvals in
//! [`PolicyData`].
//!
//! Contract:
//! - [`PolicyEngine::evaluate_transfer`] is called once per new transfer, with the state lock
//!   held, after the transfer is stored with status `Pending` and `wallet.transfer.requested` is
//!   queued, and before it executes. The engine may read everything in [`State`] (wallet tags,
//!   earlier transfers for velocity, prices, the emulated clock), store its own records in
//!   `state.policy`, and queue webhooks with [`State::emit`] (e.g. `policy.triggered`).
//! - Its [`Verdict`] is applied by the transfer module: `Allow` → the lifecycle starts;
//!   `Block` → the transfer is `Rejected` with the reason (HTTP 200, U5); `RequestApproval` →
//!   the transfer stays `Pending` with `approvalId` until the engine calls
//!   [`crate::transfers::resolve_approval`].
//! - [`PolicyEngine::evaluate_policy_change`] is called by the policy routes (part 2) before an
//!   update or archive is applied; `RequestApproval` there means "answer 202 with a change request".

use serde_json::Value;

use crate::state::State;
use crate::transfers::Transfer;

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
    /// The full proposed policy body.
    pub body: Value,
    pub requester_user_id: String,
}

pub trait PolicyEngine: Send + Sync + 'static {
    fn evaluate_transfer(&self, state: &mut State, transfer: &Transfer) -> Verdict;

    fn evaluate_policy_change(&self, state: &mut State, change: &PolicyChange) -> Verdict;
}

/// Part 1's engine: no policies, everything is allowed.
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

/// Storage owned by the policy engine (policies, approvals, change requests). Empty in part 1.
#[derive(Debug, Default)]
pub struct PolicyData {}
