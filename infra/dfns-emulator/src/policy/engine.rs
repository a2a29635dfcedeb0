//! The Dfns policy engine (docs/dfns.md §4.7, §4.8): gathers the facts from the state, runs the
//! pure evaluation of [`super::evaluate`], records evaluations, approvals and change requests,
//! and emits `policy.triggered` / `policy.approval.pending`.

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::approvals::{self, Approval, ApprovalStatus, Evaluation, Subject, approval_json};
use super::evaluate::{self, PastActivity, TransferFacts};
use super::model::{
    Action, ApprovalGroup, POLICIES_MODIFY, Policy, PolicyStatus, Rule, WALLETS_SIGN, parse_spec,
};
use super::{PolicyChange, PolicyEngine, Verdict, change};
use crate::ids;
use crate::state::State;
use crate::transfers::{Transfer, TransferStatus};

/// The engine Dfns runs: every active matching policy is evaluated; any `Block` blocks, any
/// `RequestApproval` holds the activity for one approval covering every such policy, `NoAction`
/// only emits `policy.triggered`. With no policies everything is allowed.
#[derive(Debug, Default, Clone, Copy)]
pub struct DfnsPolicyEngine;

/// Active policies of `kind`, oldest first (evaluation order is stable; none overrides another).
fn active_policies<'a>(state: &'a State, kind: &str) -> Vec<&'a Policy> {
    let mut policies: Vec<&Policy> = state
        .policy
        .policies
        .values()
        .filter(|p| p.is_active() && p.spec.activity_kind == kind)
        .collect();
    policies.sort_by_key(|p| p.seq);
    policies
}

struct Triggered {
    evaluation: Evaluation,
    policy_json: Value,
    action: Action,
}

fn emit_triggered(state: &mut State, t: &Triggered, activity: &Value) {
    let e = &t.evaluation;
    state.emit(
        "policy.triggered",
        json!({
            "policyEvaluation": {
                "id": e.id,
                "triggered": e.triggered,
                "reason": e.reason,
                "date": crate::clock::iso(e.date),
                "policy": t.policy_json,
                "activity": activity,
                "context": e.context,
            }
        }),
    );
}

/// Records a pending approval over the `RequestApproval` policies in `triggered`.
fn open_approval(
    state: &mut State,
    approval_id: String,
    initiator_id: &str,
    subject: Subject,
    triggered: &[Triggered],
    now: OffsetDateTime,
) {
    let mut groups: Vec<(String, Vec<ApprovalGroup>)> = Vec::new();
    let mut expiration: Option<OffsetDateTime> = None;
    let mut evaluations = Vec::new();
    for t in triggered {
        if let Action::RequestApproval {
            groups: g,
            auto_reject_timeout_minutes,
        } = &t.action
        {
            groups.push((t.evaluation.policy_id.clone(), g.clone()));
            evaluations.push(t.evaluation.clone());
            if let Some(minutes) = auto_reject_timeout_minutes {
                // Several timeouts: the earliest expiry wins (the approval needs every policy).
                let at = now + Duration::minutes(i64::try_from(*minutes).unwrap_or(i64::MAX));
                expiration = Some(expiration.map_or(at, |e| e.min(at)));
            }
        }
    }
    let approval = Approval {
        id: approval_id.clone(),
        initiator_id: initiator_id.to_owned(),
        subject,
        status: ApprovalStatus::Pending,
        evaluations,
        groups,
        decisions: Vec::new(),
        expiration,
        date_created: now,
        date_updated: now,
        date_resolved: None,
        seq: state.next_seq(),
    };
    state.policy.approvals.insert(approval_id.clone(), approval);
    let data = json!({ "approval": approval_json(state, &state.policy.approvals[&approval_id]) });
    state.emit("policy.approval.pending", data);
}

/// The wallet's other transfers that count for velocity (not `Rejected` / `Failed`), each at its
/// request-time USD value.
fn wallet_history(state: &State, transfer: &Transfer) -> Vec<PastActivity> {
    state
        .transfers
        .values()
        .filter(|t| t.wallet_id == transfer.wallet_id && t.id != transfer.id)
        .filter(|t| !matches!(t.status, TransferStatus::Rejected | TransferStatus::Failed))
        .map(|t| PastActivity {
            date: t.date_requested,
            usd: state
                .policy
                .valuations
                .get(&t.id)
                .copied()
                .unwrap_or_else(|| state.ledger.usd_value(&t.network, &t.asset, t.amount)),
        })
        .collect()
}

impl PolicyEngine for DfnsPolicyEngine {
    fn evaluate_transfer(&self, state: &mut State, transfer: &Transfer) -> Verdict {
        approvals::expire_due(state);
        let now = state.now();
        let usd = state
            .ledger
            .usd_value(&transfer.network, &transfer.asset, transfer.amount);
        // The value at request time is what later velocity windows add up.
        state.policy.valuations.insert(transfer.id.clone(), usd);
        let tags = state
            .wallets
            .get(&transfer.wallet_id)
            .map(|w| w.tags.clone())
            .unwrap_or_default();
        let meta = state.ledger.meta(&transfer.network, &transfer.asset);
        let asset = meta.symbol.clone().unwrap_or(meta.price_key.clone());
        let facts = TransferFacts {
            wallet_id: &transfer.wallet_id,
            wallet_tags: &tags,
            to: &transfer.to,
            usd,
            asset: &asset,
        };
        let matching: Vec<&Policy> = active_policies(state, WALLETS_SIGN)
            .into_iter()
            .filter(|p| evaluate::wallet_matches(&p.spec.filters, &transfer.wallet_id, &tags))
            .collect();
        if matching.is_empty() {
            return Verdict::Allow;
        }
        // The wallet's history is only needed (and only scanned) for velocity rules.
        let needs_history = matching.iter().any(|p| {
            matches!(
                p.spec.rule,
                Rule::AmountVelocity { .. } | Rule::CountVelocity { .. }
            )
        });
        let past: Vec<PastActivity> = if needs_history {
            wallet_history(state, transfer)
        } else {
            Vec::new()
        };
        let mut triggered = Vec::new();
        for policy in matching {
            let outcome = evaluate::evaluate_rule(&policy.spec.rule, &facts, &past, now);
            if outcome.triggered {
                triggered.push(Triggered {
                    evaluation: Evaluation {
                        id: ids::new_id("plce"),
                        policy_id: policy.id.clone(),
                        triggered: true,
                        reason: outcome.reason,
                        context: outcome.context,
                        date: now,
                    },
                    policy_json: policy.to_json(),
                    action: policy.spec.action.clone(),
                });
            }
        }
        if triggered.is_empty() {
            return Verdict::Allow;
        }
        let activity = json!({ "kind": WALLETS_SIGN, "transferRequest": transfer.to_json() });
        for t in &triggered {
            emit_triggered(state, t, &activity);
        }
        if let Some(block) = triggered.iter().find(|t| t.action == Action::Block) {
            return Verdict::Block {
                reason: block.evaluation.reason.clone(),
            };
        }
        if !triggered
            .iter()
            .any(|t| matches!(t.action, Action::RequestApproval { .. }))
        {
            return Verdict::Allow;
        }
        let approval_id = ids::new_id("ap");
        // The approval's activity shows the held transfer with its approvalId.
        if let Some(t) = state.transfers.get_mut(&transfer.id) {
            t.approval_id = Some(approval_id.clone());
            t.awaiting_approval = true;
        }
        open_approval(
            state,
            approval_id.clone(),
            &transfer.requester_user_id,
            Subject::Transfer(transfer.id.clone()),
            &triggered,
            now,
        );
        Verdict::RequestApproval { approval_id }
    }

    fn evaluate_policy_change(&self, state: &mut State, change: &PolicyChange) -> Verdict {
        let now = state.now();
        let governing: Vec<Triggered> = active_policies(state, POLICIES_MODIFY)
            .into_iter()
            .filter(|p| evaluate::policy_matches(&p.spec.filters, &change.policy_id))
            .filter(|p| p.spec.rule == Rule::AlwaysTrigger)
            .map(|p| Triggered {
                evaluation: Evaluation {
                    id: ids::new_id("plce"),
                    policy_id: p.id.clone(),
                    triggered: true,
                    reason: format!(
                        "Changes to policy {} require approval (policy {}).",
                        change.policy_id, p.id
                    ),
                    context: json!({}),
                    date: now,
                },
                policy_json: p.to_json(),
                action: p.spec.action.clone(),
            })
            .collect();
        if governing.is_empty() {
            return Verdict::Allow;
        }
        let Ok(proposed) = parse_spec(&change.body) else {
            return Verdict::Block {
                reason: "the proposed policy body is invalid".to_owned(),
            };
        };
        let proposed_status = if change.operation == "Archive" {
            PolicyStatus::Archived
        } else {
            PolicyStatus::Active
        };
        let approval_id = ids::new_id("ap");
        let cr_id = change::create(
            state,
            &change.policy_id,
            proposed,
            proposed_status,
            &change.requester_user_id,
            Some(approval_id.clone()),
        );
        let activity = json!({
            "kind": POLICIES_MODIFY,
            "changeRequest": state.policy.change_requests[&cr_id].to_json(),
        });
        for t in &governing {
            emit_triggered(state, t, &activity);
        }
        open_approval(
            state,
            approval_id.clone(),
            &change.requester_user_id,
            Subject::ChangeRequest(cr_id),
            &governing,
            now,
        );
        Verdict::RequestApproval { approval_id }
    }
}
