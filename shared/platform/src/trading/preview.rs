//! Transfer dry-run (`POST /v1/operator/orders/preview`): would this transfer pass the client's
//! Dfns policies, which rule would stop it, and how much room is left on each limit.
//!
//! [`evaluate`] is pure (policies, the wallet's recent transfers, the transfer's USD value and the
//! time in; a verdict out) and follows docs/dfns.md §4.4–4.7 with the emulator's documented
//! choices where Dfns is silent (U6):
//! - a policy applies when it is `Active`, gates `Wallets:Sign`, and its filters all hold for the
//!   wallet (`walletId.in`, `walletTags.hasAll` / `hasAny`; no filters = every wallet);
//! - whitelist: triggers when the recipient is not listed, compared exactly (case-sensitive);
//! - amount limit: triggers when the value is `>` the limit; velocity rules sum (or count) the
//!   wallet's transfers requested in `[now − timeframe, now]` that are not `Rejected` or `Failed`,
//!   **including** this one, and trigger when the total is `>` the limit;
//! - a value that cannot be determined (no USD price) triggers the rule (fail closed);
//! - any triggered `Block` blocks; otherwise any triggered `RequestApproval` holds the transfer
//!   for approval; `NoAction` only flags. Rules the platform cannot evaluate (screening) are
//!   listed as such and never reported as passing.
//!
//! Past transfers are valued at the quote they carry (`metadata.asset.quotes.USD`, the unit price
//! at request time, which Dfns documents as the one used for policy evaluation).

use dfns_client::policies::{ActivityKind, PolicyStatus};
use dfns_client::transfers::TransferAsset;
use dfns_client::{Policy, PolicyAction, PolicyRule, TransferRequest, TransferStatus};
use serde::Serialize;
use time::OffsetDateTime;

use super::usd::Usd;

/// A transfer of the wallet, as far as velocity rules care.
#[derive(Debug, Clone, PartialEq)]
pub struct PastTransfer {
    pub requested_at: OffsetDateTime,
    pub status: TransferStatus,
    /// `None` when it cannot be valued (no quote).
    pub value_usd: Option<Usd>,
}

impl PastTransfer {
    /// From a Dfns transfer request: amount from its body, price from its metadata.
    pub fn from_transfer(transfer: &TransferRequest) -> Self {
        let amount = match &transfer.request_body.asset {
            TransferAsset::Native { amount, .. }
            | TransferAsset::Erc20 { amount, .. }
            | TransferAsset::Spl { amount, .. }
            | TransferAsset::Spl2022 { amount, .. } => amount.to_u128(),
            _ => None,
        };
        let asset = &transfer.metadata.asset;
        let value_usd = match (
            amount,
            asset.decimals,
            Usd::price_from_quotes(asset.quotes.as_ref()),
        ) {
            (Some(amount), Some(decimals), Some(price)) => Usd::value_of(amount, decimals, price),
            _ => None,
        };
        Self {
            requested_at: transfer.date_requested,
            status: transfer.status.clone(),
            value_usd,
        }
    }
}

/// What is being previewed, and everything the evaluation reads.
#[derive(Debug, Clone)]
pub struct PreviewInput<'a> {
    pub wallet_id: &'a str,
    pub wallet_tags: &'a [String],
    /// Recipient exactly as it would be sent (lowercase for EVM).
    pub to: &'a str,
    /// This transfer's USD value; `None` = not determinable (no price).
    pub value_usd: Option<Usd>,
    pub policies: &'a [Policy],
    pub recent_transfers: &'a [PastTransfer],
    pub now: OffsetDateTime,
}

/// The overall answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub enum Verdict {
    /// No rule with an effect triggers.
    Allowed,
    /// A `RequestApproval` rule triggers: Dfns would hold the transfer for a compliance decision.
    RequiresApproval,
    /// A `Block` rule triggers: Dfns would reject it.
    Blocked,
}

/// One applicable policy's evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleEvaluation {
    pub policy_id: String,
    pub policy_name: String,
    /// The rule kind (`TransactionAmountLimit`, …).
    pub rule: String,
    /// `Block`, `RequestApproval` or `NoAction`.
    pub action: String,
    /// `Some(true)` triggers, `Some(false)` passes, `None` cannot be evaluated here.
    pub triggered: Option<bool>,
    /// Dfns-style reason when it triggers (or why it cannot be evaluated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The limit (USD for amount rules, a number of transfers for the count rule).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeframe_minutes: Option<u32>,
    /// Already used in the window, before this transfer (velocity rules).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<String>,
    /// Room left before this transfer (limit − used, floored at 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headroom: Option<String>,
    /// Room left after this transfer, floored at 0 (0 with `triggered` = over the limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headroom_after: Option<String>,
}

/// The dry-run's result.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    pub verdict: Verdict,
    /// USD value of the transfer (absent when no price is known: amount rules then fail closed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_usd: Option<Usd>,
    /// Policies whose triggered rule decides the verdict (the `Block` ones when blocked, the
    /// `RequestApproval` ones when held).
    pub stopped_by: Vec<String>,
    /// Applicable policies the platform cannot evaluate (screening rules, unknown kinds).
    pub unevaluated: Vec<String>,
    pub rules: Vec<RuleEvaluation>,
}

/// Whether `policy` governs transfers from this wallet (§4.6–4.7).
pub fn applies(policy: &Policy, wallet_id: &str, wallet_tags: &[String]) -> bool {
    if policy.status != PolicyStatus::Active || policy.activity_kind != ActivityKind::WalletsSign {
        return false;
    }
    let Some(filters) = &policy.filters else {
        return true;
    };
    let by_id = filters
        .wallet_id
        .as_ref()
        .is_none_or(|ids| ids.values.iter().any(|id| id.as_str() == wallet_id));
    let by_tags = filters.wallet_tags.as_ref().is_none_or(|tags| {
        let all = tags
            .has_all
            .as_ref()
            .is_none_or(|all| all.iter().all(|t| wallet_tags.contains(t)));
        let any = tags
            .has_any
            .as_ref()
            .is_none_or(|any| any.iter().any(|t| wallet_tags.contains(t)));
        all && any
    });
    by_id && by_tags
}

fn action_name(action: &PolicyAction) -> String {
    match action {
        PolicyAction::Block => "Block".into(),
        PolicyAction::NoAction => "NoAction".into(),
        PolicyAction::RequestApproval { .. } => "RequestApproval".into(),
        PolicyAction::Unknown(raw) => raw
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("Unknown")
            .to_owned(),
    }
}

fn rule_name(rule: &PolicyRule) -> String {
    match rule {
        PolicyRule::AlwaysTrigger { .. } => "AlwaysTrigger".into(),
        PolicyRule::TransactionRecipientWhitelist { .. } => "TransactionRecipientWhitelist".into(),
        PolicyRule::TransactionAmountLimit { .. } => "TransactionAmountLimit".into(),
        PolicyRule::TransactionAmountVelocity { .. } => "TransactionAmountVelocity".into(),
        PolicyRule::TransactionCountVelocity { .. } => "TransactionCountVelocity".into(),
        PolicyRule::ChainalysisTransactionPrescreening { .. } => {
            "ChainalysisTransactionPrescreening".into()
        }
        PolicyRule::ChainalysisTransactionScreening { .. } => {
            "ChainalysisTransactionScreening".into()
        }
        PolicyRule::GlobalLedgerTransactionPrescreening { .. } => {
            "GlobalLedgerTransactionPrescreening".into()
        }
        PolicyRule::TravelRuleTransactionPrescreening { .. } => {
            "TravelRuleTransactionPrescreening".into()
        }
        PolicyRule::Unknown(raw) => raw
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("Unknown")
            .to_owned(),
    }
}

/// The wallet's transfers that count towards a velocity window ending now.
fn in_window(
    transfers: &[PastTransfer],
    now: OffsetDateTime,
    timeframe_minutes: u32,
) -> impl Iterator<Item = &PastTransfer> {
    let start = now - time::Duration::minutes(i64::from(timeframe_minutes));
    transfers.iter().filter(move |t| {
        t.requested_at >= start
            && t.requested_at <= now
            && !matches!(t.status, TransferStatus::Rejected | TransferStatus::Failed)
    })
}

fn evaluate_rule(policy: &Policy, input: &PreviewInput<'_>) -> RuleEvaluation {
    let mut eval = RuleEvaluation {
        policy_id: policy.id.as_str().to_owned(),
        policy_name: policy.name.clone(),
        rule: rule_name(&policy.rule),
        action: action_name(&policy.action),
        triggered: None,
        reason: None,
        limit: None,
        timeframe_minutes: None,
        used: None,
        headroom: None,
        headroom_after: None,
    };
    let value = input.value_usd;
    let no_price = "the transfer's USD value is not determinable (no price): the rule fails closed";
    match &policy.rule {
        PolicyRule::AlwaysTrigger { .. } => {
            eval.triggered = Some(true);
            eval.reason = Some("Always triggers.".into());
        }
        PolicyRule::TransactionRecipientWhitelist { configuration } => {
            let listed = configuration.addresses.iter().any(|a| a == input.to);
            eval.triggered = Some(!listed);
            if !listed {
                eval.reason = Some(format!("Recipient {} is not whitelisted.", input.to));
            }
        }
        PolicyRule::TransactionAmountLimit { configuration } => {
            let limit = Usd::whole(configuration.limit);
            eval.limit = Some(limit.to_string());
            eval.headroom = Some(limit.to_string());
            match value {
                Some(value) => {
                    let over = value > limit;
                    eval.triggered = Some(over);
                    eval.headroom_after = Some(limit.saturating_sub(value).to_string());
                    if over {
                        eval.reason = Some(format!(
                            "Transfer amount (USD {}) is above limit (USD {}).",
                            value.whole_dollars(),
                            configuration.limit
                        ));
                    }
                }
                None => {
                    eval.triggered = Some(true);
                    eval.reason = Some(no_price.into());
                }
            }
        }
        PolicyRule::TransactionAmountVelocity { configuration } => {
            let limit = Usd::whole(configuration.limit);
            eval.limit = Some(limit.to_string());
            eval.timeframe_minutes = Some(configuration.timeframe);
            let used = in_window(input.recent_transfers, input.now, configuration.timeframe)
                .try_fold(Usd::ZERO, |sum, t| sum.checked_add(t.value_usd?));
            match used {
                Some(used) => {
                    eval.used = Some(used.to_string());
                    eval.headroom = Some(limit.saturating_sub(used).to_string());
                    match value.and_then(|v| used.checked_add(v)) {
                        Some(total) => {
                            let over = total > limit;
                            eval.triggered = Some(over);
                            eval.headroom_after = Some(limit.saturating_sub(total).to_string());
                            if over {
                                eval.reason = Some(format!(
                                    "Cumulative transfer amount (USD {}) is above limit (USD {}).",
                                    total.whole_dollars(),
                                    configuration.limit
                                ));
                            }
                        }
                        None => {
                            eval.triggered = Some(true);
                            eval.reason = Some(no_price.into());
                        }
                    }
                }
                None => {
                    eval.triggered = Some(true);
                    eval.reason = Some(
                        "an earlier transfer in the window has no USD value: the rule fails closed"
                            .into(),
                    );
                }
            }
        }
        PolicyRule::TransactionCountVelocity { configuration } => {
            let used = in_window(input.recent_transfers, input.now, configuration.timeframe).count()
                as u64;
            let total = used + 1;
            let over = total > configuration.limit;
            eval.limit = Some(configuration.limit.to_string());
            eval.timeframe_minutes = Some(configuration.timeframe);
            eval.used = Some(used.to_string());
            eval.headroom = Some(configuration.limit.saturating_sub(used).to_string());
            eval.headroom_after = Some(configuration.limit.saturating_sub(total).to_string());
            eval.triggered = Some(over);
            if over {
                eval.reason = Some(format!(
                    "Number of transactions ({total}) is above limit ({}).",
                    configuration.limit
                ));
            }
        }
        _ => {
            eval.reason = Some("this rule kind is evaluated by Dfns only".into());
        }
    }
    eval
}

/// Evaluates the transfer against every applicable policy.
pub fn evaluate(input: &PreviewInput<'_>) -> Preview {
    let rules: Vec<RuleEvaluation> = input
        .policies
        .iter()
        .filter(|p| applies(p, input.wallet_id, input.wallet_tags))
        .map(|p| evaluate_rule(p, input))
        .collect();
    let triggered_with = |action: &str| -> Vec<String> {
        rules
            .iter()
            .filter(|r| r.triggered == Some(true) && r.action == action)
            .map(|r| r.policy_id.clone())
            .collect()
    };
    let blocking = triggered_with("Block");
    let holding = triggered_with("RequestApproval");
    let (verdict, stopped_by) = if !blocking.is_empty() {
        (Verdict::Blocked, blocking)
    } else if !holding.is_empty() {
        (Verdict::RequiresApproval, holding)
    } else {
        (Verdict::Allowed, Vec::new())
    };
    Preview {
        verdict,
        value_usd: input.value_usd,
        stopped_by,
        unevaluated: rules
            .iter()
            .filter(|r| r.triggered.is_none())
            .map(|r| r.policy_id.clone())
            .collect(),
        rules,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const WALLET: &str = "wa-11111-22222-3333333333333333";
    const TO: &str = "0xc0ba5e0000000000000000000000000000000001";

    fn policy(id: &str, rule: serde_json::Value, action: &str) -> Policy {
        serde_json::from_value(json!({
            "id": id,
            "name": format!("client alice {id}"),
            "status": "Active",
            "activityKind": "Wallets:Sign",
            "rule": rule,
            "action": if action == "RequestApproval" {
                json!({"kind": "RequestApproval", "approvalGroups": [{"quorum": 1, "approvers": {}}]})
            } else {
                json!({"kind": action})
            },
            "filters": {"walletTags": {"hasAll": ["client:alice"]}},
        }))
        .unwrap()
    }

    fn tags() -> Vec<String> {
        vec!["client:alice".into()]
    }

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-01-10 12:00 UTC)
    }

    fn past(minutes_ago: i64, usd: u64, status: TransferStatus) -> PastTransfer {
        PastTransfer {
            requested_at: now() - time::Duration::minutes(minutes_ago),
            status,
            value_usd: Some(Usd::whole(usd)),
        }
    }

    fn run(policies: &[Policy], recent: &[PastTransfer], value: Option<Usd>) -> Preview {
        let tags = tags();
        evaluate(&PreviewInput {
            wallet_id: WALLET,
            wallet_tags: &tags,
            to: TO,
            value_usd: value,
            policies,
            recent_transfers: recent,
            now: now(),
        })
    }

    fn amount_limit(limit: u64, action: &str) -> Policy {
        policy(
            "plc-amount",
            json!({"kind": "TransactionAmountLimit", "configuration": {"limit": limit, "currency": "USD"}}),
            action,
        )
    }

    #[test]
    fn amount_limit_triggers_only_above_the_limit() {
        let policies = [amount_limit(5000, "RequestApproval")];
        let at = run(&policies, &[], Some(Usd::whole(5000)));
        assert_eq!(at.verdict, Verdict::Allowed);
        assert_eq!(at.rules[0].headroom_after.as_deref(), Some("0"));
        // One wei over 5000 USD.
        let over_value = Usd::value_of(1_666_666_666_666_666_667, 18, Usd::whole(3000)).unwrap();
        let over = run(&policies, &[], Some(over_value));
        assert_eq!(over.verdict, Verdict::RequiresApproval);
        assert_eq!(over.stopped_by, ["plc-amount"]);
        assert_eq!(
            over.rules[0].reason.as_deref(),
            Some("Transfer amount (USD 5000) is above limit (USD 5000).")
        );
        let under = run(&policies, &[], Some(Usd::parse("4999.99").unwrap()));
        assert_eq!(under.rules[0].headroom_after.as_deref(), Some("0.01"));
        assert_eq!(under.rules[0].triggered, Some(false));
    }

    #[test]
    fn an_unpriced_transfer_fails_closed() {
        let preview = run(&[amount_limit(5000, "Block")], &[], None);
        assert_eq!(preview.verdict, Verdict::Blocked);
        assert!(
            preview.rules[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("fails closed")
        );
    }

    #[test]
    fn amount_velocity_sums_the_window_including_this_transfer() {
        let policies = [policy(
            "plc-velocity",
            json!({"kind": "TransactionAmountVelocity", "configuration": {"limit": 1000, "currency": "USD", "timeframe": 60}}),
            "Block",
        )];
        let recent = [
            past(10, 400, TransferStatus::Confirmed),
            past(59, 300, TransferStatus::Pending),
            // Outside the window, or not counted (Rejected/Failed).
            past(61, 900, TransferStatus::Confirmed),
            past(5, 900, TransferStatus::Rejected),
            past(5, 900, TransferStatus::Failed),
        ];
        let exact = run(&policies, &recent, Some(Usd::whole(300)));
        assert_eq!(
            exact.verdict,
            Verdict::Allowed,
            "700 + 300 = 1000 is not above 1000"
        );
        let rule = &exact.rules[0];
        assert_eq!(rule.used.as_deref(), Some("700"));
        assert_eq!(rule.headroom.as_deref(), Some("300"));
        assert_eq!(rule.headroom_after.as_deref(), Some("0"));
        let over = run(&policies, &recent, Some(Usd::parse("300.01").unwrap()));
        assert_eq!(over.verdict, Verdict::Blocked);
        assert_eq!(
            over.rules[0].reason.as_deref(),
            Some("Cumulative transfer amount (USD 1000) is above limit (USD 1000).")
        );
    }

    #[test]
    fn count_velocity_counts_this_transfer() {
        let policies = [policy(
            "plc-count",
            json!({"kind": "TransactionCountVelocity", "configuration": {"limit": 2, "timeframe": 60}}),
            "Block",
        )];
        let one = [past(1, 1, TransferStatus::Confirmed)];
        let ok = run(&policies, &one, Some(Usd::whole(1)));
        assert_eq!(ok.verdict, Verdict::Allowed);
        assert_eq!(ok.rules[0].headroom.as_deref(), Some("1"));
        assert_eq!(ok.rules[0].headroom_after.as_deref(), Some("0"));
        let two = [
            past(1, 1, TransferStatus::Confirmed),
            past(2, 1, TransferStatus::Broadcasted),
        ];
        let over = run(&policies, &two, Some(Usd::whole(1)));
        assert_eq!(over.verdict, Verdict::Blocked);
        assert_eq!(
            over.rules[0].reason.as_deref(),
            Some("Number of transactions (3) is above limit (2).")
        );
    }

    #[test]
    fn whitelist_is_exact_and_block_wins_over_approval() {
        let listed = policy(
            "plc-white",
            json!({"kind": "TransactionRecipientWhitelist", "configuration": {"addresses": [TO]}}),
            "Block",
        );
        let preview = run(
            &[listed, amount_limit(10, "RequestApproval")],
            &[],
            Some(Usd::whole(11)),
        );
        assert_eq!(preview.verdict, Verdict::RequiresApproval);
        let upper = policy(
            "plc-white",
            json!({"kind": "TransactionRecipientWhitelist", "configuration": {"addresses": [TO.to_uppercase().replace("0X", "0x")]}}),
            "Block",
        );
        let preview = run(
            &[upper, amount_limit(10, "RequestApproval")],
            &[],
            Some(Usd::whole(11)),
        );
        assert_eq!(preview.verdict, Verdict::Blocked);
        assert_eq!(preview.stopped_by, ["plc-white"]);
    }

    #[test]
    fn policies_for_other_wallets_or_activities_do_not_apply() {
        let mut other_client = amount_limit(1, "Block");
        other_client.filters =
            serde_json::from_value(json!({"walletTags": {"hasAll": ["client:bob"]}})).unwrap();
        let mut by_id = amount_limit(1, "Block");
        by_id.filters =
            serde_json::from_value(json!({"walletId": {"in": ["wa-other-x-y"]}})).unwrap();
        let mut archived = amount_limit(1, "Block");
        archived.status = PolicyStatus::Archived;
        let mut modify = amount_limit(1, "Block");
        modify.activity_kind = ActivityKind::PoliciesModify;
        let preview = run(
            &[other_client, by_id, archived, modify],
            &[],
            Some(Usd::whole(5)),
        );
        assert_eq!(preview.verdict, Verdict::Allowed);
        assert!(preview.rules.is_empty());
        // No filters: every wallet.
        let mut org_wide = amount_limit(1, "Block");
        org_wide.filters = None;
        assert_eq!(
            run(&[org_wide], &[], Some(Usd::whole(5))).verdict,
            Verdict::Blocked
        );
    }

    #[test]
    fn screening_rules_are_reported_as_unevaluated() {
        let screening = policy(
            "plc-chain",
            json!({"kind": "GlobalLedgerTransactionPrescreening", "configuration": {"riskScoreThreshold": 50}}),
            "Block",
        );
        let preview = run(&[screening], &[], Some(Usd::whole(5)));
        assert_eq!(preview.verdict, Verdict::Allowed);
        assert_eq!(preview.unevaluated, ["plc-chain"]);
    }
}
