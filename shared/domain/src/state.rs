//! Lifecycles of destination requests and orders, as forward-only state machines.
//!
//! Every state has a [`StateMachine::rank`]; a legal transition always goes to a strictly higher
//! rank, so a late or replayed webhook (which would move a state to an equal or lower rank) is
//! recognisably stale and is ignored rather than applied. Terminal states have the highest rank and
//! no way out.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A transition the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("illegal transition from {from} to {to}")]
pub struct IllegalTransition<S: fmt::Display + fmt::Debug> {
    pub from: S,
    pub to: S,
}

/// Shared behaviour of the lifecycle enums.
pub trait StateMachine: Copy + Eq + fmt::Debug + fmt::Display + Sized + 'static {
    /// Every state, in rank order.
    const ALL: &'static [Self];

    /// Position in the lifecycle; legal transitions strictly increase it.
    fn rank(self) -> u8;

    /// Whether `self → next` is allowed.
    fn can_transition_to(self, next: Self) -> bool;

    fn is_terminal(self) -> bool {
        !Self::ALL.iter().any(|&next| self.can_transition_to(next))
    }

    /// `Ok(next)` if the move is legal, else a typed error.
    fn transition(self, next: Self) -> Result<Self, IllegalTransition<Self>> {
        if self.can_transition_to(next) {
            Ok(next)
        } else {
            Err(IllegalTransition {
                from: self,
                to: next,
            })
        }
    }

    /// Whether an event reporting `reported` is older than (or the same as) what we know: such an
    /// event must not change anything.
    fn is_stale(self, reported: Self) -> bool {
        reported.rank() <= self.rank()
    }
}

/// What a destination request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DestinationAction {
    Add,
    Remove,
}

/// Lifecycle of a client's request to add or remove a whitelisted destination.
///
/// ```text
/// CoolingOff ──► Queued ──► Submitted ──► PendingApproval ──► Approved | Rejected | Failed
///   │              │            └──────────────────────────► Approved | Rejected | Failed
///   │              └──► Cancelled | Failed
///   └──► Vetoed | Cancelled
/// ```
///
/// `CoolingOff`: an `add` waiting out its cooling-off (`usableFrom`) before it may go to Dfns; the
/// client can veto it (`Vetoed`) or cancel it meanwhile, and it never reaches Dfns then. It counts
/// as open but does not hold the client's policy-change slot. `Queued`: waiting for the client's
/// previous policy change to resolve (one change in flight per client). `Submitted`: the policy
/// update is being (or has been) sent to Dfns. `PendingApproval`: Dfns holds a change request
/// awaiting a compliance decision. A client may cancel only while the request is still
/// `CoolingOff` or `Queued`: once submitted, Dfns owns the change and only a decision ends it.
/// `Submitted → Approved` covers a policy update Dfns applied at once, and a resolution webhook
/// that overtakes our own `PendingApproval` write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub enum DestinationRequestState {
    CoolingOff,
    Queued,
    Submitted,
    PendingApproval,
    Approved,
    Rejected,
    Failed,
    Cancelled,
    Vetoed,
}

impl DestinationRequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CoolingOff => "CoolingOff",
            Self::Queued => "Queued",
            Self::Submitted => "Submitted",
            Self::PendingApproval => "PendingApproval",
            Self::Approved => "Approved",
            Self::Rejected => "Rejected",
            Self::Failed => "Failed",
            Self::Cancelled => "Cancelled",
            Self::Vetoed => "Vetoed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.as_str() == raw)
    }
}

impl fmt::Display for DestinationRequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl StateMachine for DestinationRequestState {
    const ALL: &'static [Self] = &[
        Self::CoolingOff,
        Self::Queued,
        Self::Submitted,
        Self::PendingApproval,
        Self::Approved,
        Self::Rejected,
        Self::Failed,
        Self::Cancelled,
        Self::Vetoed,
    ];

    fn rank(self) -> u8 {
        match self {
            Self::CoolingOff => 0,
            Self::Queued => 1,
            Self::Submitted => 2,
            Self::PendingApproval => 3,
            Self::Approved | Self::Rejected | Self::Failed | Self::Cancelled | Self::Vetoed => 4,
        }
    }

    fn can_transition_to(self, next: Self) -> bool {
        use DestinationRequestState::*;
        matches!(
            (self, next),
            (CoolingOff, Queued | Vetoed | Cancelled)
                | (Queued, Submitted | Cancelled | Failed)
                | (Submitted, PendingApproval | Approved | Rejected | Failed)
                | (PendingApproval, Approved | Rejected | Failed)
        )
    }
}

/// Lifecycle of an operator's order to move client funds to an exchange.
///
/// ```text
/// Scheduled ──► Claimed ──► Submitted ──► PendingApproval ──► Broadcasted ──► Confirmed
///     │            │            │               │                  └────────► Failed
///     │            │            │               └──► Rejected | Failed | Confirmed
///     │            │            └──► Broadcasted | Confirmed | Rejected | Failed
///     │            ├──► Failed (checks refused), or any later state (webhook overtook us)
///     │            └──► Cancelled (only once Dfns confirms it holds no transfer for it)
///     └──► Cancelled
/// ```
///
/// `Claimed`: an execution run holds a lease on the order and may be calling Dfns. A run that died
/// leaves the order `Claimed` with an expired lease; the next run re-claims it (same state, new
/// lease — not a transition) and re-submits with the same `externalId`. Cancellation is possible
/// while `Scheduled`, or from `Claimed` by whoever holds the claim once Dfns confirms there is no
/// transfer with the order's `externalId` (a withdrawal the client cancels after Dfns refused the
/// first attempt): once claimed, the transfer may already exist at Dfns. Because the
/// transfer's webhooks can arrive before our own `Submitted` write, `Claimed` may move straight to
/// any later state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub enum OrderState {
    Scheduled,
    Claimed,
    Submitted,
    PendingApproval,
    Broadcasted,
    Confirmed,
    Failed,
    Rejected,
    Cancelled,
}

impl OrderState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "Scheduled",
            Self::Claimed => "Claimed",
            Self::Submitted => "Submitted",
            Self::PendingApproval => "PendingApproval",
            Self::Broadcasted => "Broadcasted",
            Self::Confirmed => "Confirmed",
            Self::Failed => "Failed",
            Self::Rejected => "Rejected",
            Self::Cancelled => "Cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.as_str() == raw)
    }
}

impl fmt::Display for OrderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl StateMachine for OrderState {
    const ALL: &'static [Self] = &[
        Self::Scheduled,
        Self::Claimed,
        Self::Submitted,
        Self::PendingApproval,
        Self::Broadcasted,
        Self::Confirmed,
        Self::Failed,
        Self::Rejected,
        Self::Cancelled,
    ];

    fn rank(self) -> u8 {
        match self {
            Self::Scheduled => 0,
            Self::Claimed => 1,
            Self::Submitted => 2,
            Self::PendingApproval => 3,
            Self::Broadcasted => 4,
            Self::Confirmed | Self::Failed | Self::Rejected | Self::Cancelled => 5,
        }
    }

    fn can_transition_to(self, next: Self) -> bool {
        use OrderState::*;
        matches!(
            (self, next),
            (Scheduled, Claimed | Cancelled)
                | (
                    Claimed,
                    Submitted
                        | PendingApproval
                        | Broadcasted
                        | Confirmed
                        | Failed
                        | Rejected
                        | Cancelled
                )
                | (
                    Submitted,
                    PendingApproval | Broadcasted | Confirmed | Failed | Rejected
                )
                | (PendingApproval, Broadcasted | Confirmed | Failed | Rejected)
                | (Broadcasted, Confirmed | Failed)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_legal_transition_raises_rank<S: StateMachine>() {
        for &from in S::ALL {
            for &to in S::ALL {
                if from.can_transition_to(to) {
                    assert!(
                        to.rank() > from.rank(),
                        "{from} -> {to} does not go forward"
                    );
                    assert_eq!(from.transition(to), Ok(to));
                } else {
                    assert_eq!(from.transition(to), Err(IllegalTransition { from, to }));
                }
            }
            assert!(!from.can_transition_to(from), "{from} -> itself");
        }
    }

    #[test]
    fn destination_transitions_only_go_forward() {
        every_legal_transition_raises_rank::<DestinationRequestState>();
    }

    #[test]
    fn order_transitions_only_go_forward() {
        every_legal_transition_raises_rank::<OrderState>();
    }

    #[test]
    fn destination_request_lifecycle() {
        use DestinationRequestState::*;
        let state = Queued
            .transition(Submitted)
            .and_then(|s| s.transition(PendingApproval))
            .and_then(|s| s.transition(Approved))
            .unwrap();
        assert_eq!(state, Approved);
        assert!(Approved.is_terminal());
        assert_eq!(
            Approved.transition(PendingApproval),
            Err(IllegalTransition {
                from: Approved,
                to: PendingApproval
            })
        );
        // Cancel only while queued.
        assert!(Queued.can_transition_to(Cancelled));
        assert!(!Submitted.can_transition_to(Cancelled));
        assert!(!PendingApproval.can_transition_to(Cancelled));
        // Nothing skips submission.
        assert!(!Queued.can_transition_to(Approved));
        assert!(!Queued.can_transition_to(PendingApproval));
        for terminal in [Approved, Rejected, Failed, Cancelled, Vetoed] {
            assert!(terminal.is_terminal());
        }
        assert!(
            !Queued.is_terminal() && !Submitted.is_terminal() && !PendingApproval.is_terminal()
        );
    }

    #[test]
    fn a_cooling_off_request_is_queued_vetoed_or_cancelled_and_never_skips_the_queue() {
        use DestinationRequestState::*;
        let state = CoolingOff
            .transition(Queued)
            .and_then(|s| s.transition(Submitted))
            .unwrap();
        assert_eq!(state, Submitted);
        assert!(!CoolingOff.is_terminal());
        assert!(CoolingOff.can_transition_to(Vetoed));
        assert!(CoolingOff.can_transition_to(Cancelled));
        // The wait is the only way in: nothing reaches Dfns straight from it, nor fails there.
        for later in [Submitted, PendingApproval, Approved, Rejected, Failed] {
            assert!(
                !CoolingOff.can_transition_to(later),
                "CoolingOff -> {later}"
            );
        }
        // A veto is only for a request still cooling off.
        for from in [
            Queued,
            Submitted,
            PendingApproval,
            Approved,
            Rejected,
            Failed,
            Cancelled,
        ] {
            assert!(!from.can_transition_to(Vetoed), "{from} -> Vetoed");
        }
        assert!(Vetoed.is_terminal());
        // A report of the wait (or a queue) is stale once the request moved on.
        assert!(Queued.is_stale(CoolingOff));
        assert!(Vetoed.is_stale(Queued));
        assert!(!CoolingOff.is_stale(Queued));
    }

    #[test]
    fn order_lifecycle() {
        use OrderState::*;
        assert!(Scheduled.can_transition_to(Cancelled));
        // Legal, but only taken by the claim holder once Dfns confirms it has no transfer for
        // the order (`Executor::cancel_unsent`); every other cancel expects `Scheduled`.
        assert!(Claimed.can_transition_to(Cancelled));
        assert!(!Submitted.can_transition_to(Cancelled));
        assert!(!Scheduled.can_transition_to(Submitted));
        assert!(Claimed.can_transition_to(Confirmed));
        assert!(!Broadcasted.can_transition_to(Rejected));
        assert!(!Confirmed.can_transition_to(Failed));
        for terminal in [Confirmed, Failed, Rejected, Cancelled] {
            assert!(terminal.is_terminal());
        }
    }

    #[test]
    fn out_of_order_events_are_stale() {
        use OrderState::*;
        // Confirmed arrived first; the late Broadcasted must be ignored.
        assert!(Confirmed.is_stale(Broadcasted));
        assert!(Broadcasted.is_stale(Broadcasted));
        assert!(!Broadcasted.is_stale(Confirmed));
        assert!(
            DestinationRequestState::Approved.is_stale(DestinationRequestState::PendingApproval)
        );
    }

    #[test]
    fn states_serialise_as_their_names() {
        for &s in OrderState::ALL {
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
            assert_eq!(OrderState::parse(s.as_str()), Some(s));
        }
        for &s in DestinationRequestState::ALL {
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
            assert_eq!(DestinationRequestState::parse(s.as_str()), Some(s));
        }
        assert_eq!(
            serde_json::to_string(&DestinationAction::Remove).unwrap(),
            "\"remove\""
        );
    }
}
