//! Pure evaluation of `Wallets:Sign` rules and filters (docs/dfns.md §4.4, §4.6): no state, no
//! HTTP, no clock — everything comes in as arguments, so each rule is testable at its boundary.
//!
//! Velocity (U6, where Dfns is silent), as implemented here:
//! - the window is **closed**: `[now − timeframe, now]`; an activity requested exactly
//!   `timeframe` minutes ago still counts;
//! - it covers the wallet's transfers **including the current one**, excluding those that ended
//!   `Rejected` or `Failed` (a transfer awaiting approval counts);
//! - it triggers when the count / the USD sum is strictly **above** `limit`;
//! - each transfer is valued at the USD price when it was requested; if any transfer in the
//!   window has no price the sum is not determinable and the rule triggers (fail closed).

use std::cmp::Ordering;

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::model::{Filters, Rule};
use crate::usd::Usd;

/// What a `Wallets:Sign` rule looks at, for the transfer being evaluated.
#[derive(Debug, Clone)]
pub struct TransferFacts<'a> {
    pub wallet_id: &'a str,
    pub wallet_tags: &'a [String],
    pub to: &'a str,
    /// USD value at the current price; `None` = no price (fail closed).
    pub usd: Option<Usd>,
    /// Asset name for reason strings (`ETH`, a contract address).
    pub asset: &'a str,
}

/// An earlier activity of the same wallet (any status except `Rejected` / `Failed`).
#[derive(Debug, Clone, Copy)]
pub struct PastActivity {
    pub date: OffsetDateTime,
    pub usd: Option<Usd>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleOutcome {
    pub triggered: bool,
    pub reason: String,
    pub context: Value,
}

/// Do the filters select this wallet? Absent keys select everything; present keys AND together.
pub fn wallet_matches(filters: &Filters, wallet_id: &str, tags: &[String]) -> bool {
    let has = |tag: &String| tags.contains(tag);
    filters
        .wallet_ids
        .as_ref()
        .is_none_or(|ids| ids.iter().any(|id| id == wallet_id))
        && filters
            .tags_any
            .as_ref()
            .is_none_or(|any| any.iter().any(has))
        && filters
            .tags_all
            .as_ref()
            .is_none_or(|all| all.iter().all(has))
}

/// Does a `Policies:Modify` policy's filter select the policy being changed?
pub fn policy_matches(filters: &Filters, policy_id: &str) -> bool {
    filters
        .policy_ids
        .as_ref()
        .is_none_or(|ids| ids.iter().any(|id| id == policy_id))
}

/// `4500`, `4500.5`, `0.01`: at most two decimals, rounded **up** so a value above a limit is
/// never displayed as equal to it.
pub fn format_usd(value: Usd) -> String {
    let cents = if value.scale >= 2 {
        let divisor = 10u128.pow(value.scale - 2);
        value.numerator.div_ceil(divisor)
    } else {
        value.numerator * 10u128.pow(2 - value.scale)
    };
    let (whole, frac) = (cents / 100, cents % 100);
    match frac {
        0 => whole.to_string(),
        f if f % 10 == 0 => format!("{whole}.{}", f / 10),
        f => format!("{whole}.{f:02}"),
    }
}

fn amount_context(value: Usd) -> Value {
    json!({ "transactionAmount": { "value": format_usd(value), "currency": "USD" } })
}

/// Evaluates one rule. `past` = the wallet's earlier counted activities (any age; the window is
/// applied here); `now` = the emulated clock.
pub fn evaluate_rule(
    rule: &Rule,
    facts: &TransferFacts<'_>,
    past: &[PastActivity],
    now: OffsetDateTime,
) -> RuleOutcome {
    match rule {
        Rule::AlwaysTrigger => RuleOutcome {
            triggered: true,
            reason: "Policy rule AlwaysTrigger always triggers.".to_owned(),
            context: json!({}),
        },
        Rule::RecipientWhitelist { addresses } => {
            // Exact comparison (U1): a mixed-case address does not match its lowercase form.
            let listed = addresses.iter().any(|a| a == facts.to);
            RuleOutcome {
                triggered: !listed,
                reason: if listed {
                    format!("Recipient {} is whitelisted.", facts.to)
                } else {
                    format!("Recipient {} is not in the whitelist.", facts.to)
                },
                context: json!({ "recipient": facts.to }),
            }
        }
        Rule::AmountLimit { limit } => match facts.usd {
            None => not_valued(facts.asset),
            Some(value) => {
                // An overflowing comparison cannot show the value is within: fail closed.
                let above = matches!(
                    value.compare_to_limit(limit),
                    Some(Ordering::Greater) | None
                );
                RuleOutcome {
                    triggered: above,
                    reason: format!(
                        "Transfer amount (USD {}) is {} limit (USD {limit}).",
                        format_usd(value),
                        if above { "above" } else { "within" }
                    ),
                    context: amount_context(value),
                }
            }
        },
        Rule::AmountVelocity {
            limit,
            timeframe_minutes,
        } => {
            let mut total = match facts.usd {
                Some(v) => v,
                None => return not_valued(facts.asset),
            };
            for activity in in_window(past, now, *timeframe_minutes) {
                match activity.usd.and_then(|v| total.checked_add(v)) {
                    Some(sum) => total = sum,
                    None => {
                        return RuleOutcome {
                            triggered: true,
                            reason: "Cumulative transfer amount cannot be valued in USD (an \
                                     earlier transfer in the window has no price)."
                                .to_owned(),
                            context: json!({}),
                        };
                    }
                }
            }
            let above = matches!(
                total.compare_to_limit(limit),
                Some(Ordering::Greater) | None
            );
            RuleOutcome {
                triggered: above,
                reason: format!(
                    "Cumulative transfer amount (USD {}) is {} limit (USD {limit}).",
                    format_usd(total),
                    if above { "above" } else { "within" }
                ),
                context: json!({
                    "cumulativeAmount": { "value": format_usd(total), "currency": "USD" },
                    "timeframe": timeframe_minutes,
                }),
            }
        }
        Rule::CountVelocity {
            limit,
            timeframe_minutes,
        } => {
            let count = 1 + in_window(past, now, *timeframe_minutes).count() as u64;
            let above = count > *limit;
            RuleOutcome {
                triggered: above,
                reason: format!(
                    "Number of transactions ({count}) is {} limit ({limit}).",
                    if above { "above" } else { "within" }
                ),
                context: json!({ "transactionCount": count, "timeframe": timeframe_minutes }),
            }
        }
    }
}

fn not_valued(asset: &str) -> RuleOutcome {
    RuleOutcome {
        triggered: true,
        reason: format!("Transfer amount cannot be valued in USD (no price for {asset})."),
        context: json!({}),
    }
}

fn in_window(
    past: &[PastActivity],
    now: OffsetDateTime,
    timeframe_minutes: u64,
) -> impl Iterator<Item = &PastActivity> {
    let minutes = i64::try_from(timeframe_minutes).unwrap_or(i64::MAX);
    let start = now - Duration::minutes(minutes);
    past.iter()
        .filter(move |a| a.date >= start && a.date <= now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Number;

    fn n(v: Value) -> Number {
        match v {
            Value::Number(n) => n,
            _ => unreachable!(),
        }
    }

    fn usd(dollars: &str) -> Option<Usd> {
        crate::usd::parse_decimal(dollars)
    }

    fn facts(to: &str, value: Option<Usd>) -> TransferFacts<'_> {
        TransferFacts {
            wallet_id: "wa-1",
            wallet_tags: &[],
            to,
            usd: value,
            asset: "ETH",
        }
    }

    fn at(minutes_ago: i64, now: OffsetDateTime, dollars: &str) -> PastActivity {
        PastActivity {
            date: now - Duration::minutes(minutes_ago),
            usd: usd(dollars),
        }
    }

    #[test]
    fn amount_limit_triggers_only_strictly_above() {
        let rule = Rule::AmountLimit {
            limit: n(json!(5000)),
        };
        let now = OffsetDateTime::now_utc();
        for (value, expected) in [
            ("4999.99", false),
            ("5000", false),
            ("5000.00", false),
            ("5000.01", true),
            ("5000.000000000000000001", true),
        ] {
            let outcome = evaluate_rule(&rule, &facts("0xa", usd(value)), &[], now);
            assert_eq!(
                outcome.triggered, expected,
                "USD {value}: {}",
                outcome.reason
            );
        }
        let above = evaluate_rule(&rule, &facts("0xa", usd("10000")), &[], now);
        assert_eq!(
            above.reason,
            "Transfer amount (USD 10000) is above limit (USD 5000)."
        );
        // No price: fail closed.
        assert!(evaluate_rule(&rule, &facts("0xa", None), &[], now).triggered);
    }

    #[test]
    fn whitelist_is_exact_and_case_sensitive() {
        let rule = Rule::RecipientWhitelist {
            addresses: vec!["0xb282dc7cde21717f18337a596e91ded00b79b25f".into()],
        };
        let now = OffsetDateTime::now_utc();
        let check = |to: &str| evaluate_rule(&rule, &facts(to, None), &[], now).triggered;
        assert!(!check("0xb282dc7cde21717f18337a596e91ded00b79b25f"));
        assert!(check("0xB282dc7cde21717f18337a596e91ded00b79b25f"));
        assert!(check("0xb282dc7cde21717f18337a596e91ded00b79b25"));
        let empty = Rule::RecipientWhitelist { addresses: vec![] };
        assert!(evaluate_rule(&empty, &facts("0xa", None), &[], now).triggered);
    }

    #[test]
    fn count_velocity_counts_the_current_transfer_in_a_closed_window() {
        let rule = Rule::CountVelocity {
            limit: 2,
            timeframe_minutes: 60,
        };
        let now = OffsetDateTime::now_utc();
        let f = facts("0xa", None);
        // (earlier activities, triggered?)
        let cases = [
            (vec![], false),                                   // 1 ≤ 2
            (vec![at(10, now, "1")], false),                   // 2 ≤ 2 (at the limit)
            (vec![at(10, now, "1"), at(20, now, "1")], true),  // 3 > 2
            (vec![at(10, now, "1"), at(60, now, "1")], true),  // exactly 60 min ago counts
            (vec![at(10, now, "1"), at(61, now, "1")], false), // 61 min ago fell out
        ];
        for (past, expected) in cases {
            let outcome = evaluate_rule(&rule, &f, &past, now);
            assert_eq!(outcome.triggered, expected, "{}", outcome.reason);
        }
        let over = evaluate_rule(&rule, &f, &[at(1, now, "1"), at(2, now, "1")], now);
        assert_eq!(
            over.reason,
            "Number of transactions (3) is above limit (2)."
        );
    }

    #[test]
    fn amount_velocity_sums_the_window_and_fails_closed() {
        let rule = Rule::AmountVelocity {
            limit: n(json!(100)),
            timeframe_minutes: 30,
        };
        let now = OffsetDateTime::now_utc();
        let cases = [
            ("40", vec![at(5, now, "60")], false),     // 100 = limit
            ("39.99", vec![at(5, now, "60")], false),  // just under
            ("40.01", vec![at(5, now, "60")], true),   // just over
            ("40.01", vec![at(31, now, "60")], false), // outside the window
            ("40.01", vec![at(30, now, "60")], true),  // at the window's edge
            (
                "1",
                vec![PastActivity {
                    date: now,
                    usd: None,
                }],
                true,
            ), // unpriced → closed
        ];
        for (current, past, expected) in cases {
            let outcome = evaluate_rule(&rule, &facts("0xa", usd(current)), &past, now);
            assert_eq!(outcome.triggered, expected, "{current}: {}", outcome.reason);
        }
        let over = evaluate_rule(&rule, &facts("0xa", usd("50")), &[at(1, now, "60")], now);
        assert_eq!(
            over.reason,
            "Cumulative transfer amount (USD 110) is above limit (USD 100)."
        );
    }

    #[test]
    fn tags_has_any_versus_has_all() {
        let tags = vec!["client:1".to_owned(), "vip".to_owned()];
        let any = Filters {
            tags_any: Some(vec!["vip".into(), "other".into()]),
            ..Filters::default()
        };
        let all = Filters {
            tags_all: Some(vec!["vip".into(), "other".into()]),
            ..Filters::default()
        };
        assert!(wallet_matches(&any, "wa-1", &tags));
        assert!(!wallet_matches(&all, "wa-1", &tags));
        let both = Filters {
            tags_any: Some(vec!["vip".into()]),
            tags_all: Some(vec!["client:1".into(), "vip".into()]),
            wallet_ids: Some(vec!["wa-2".into()]),
            ..Filters::default()
        };
        assert!(!wallet_matches(&both, "wa-1", &tags), "walletId ANDs in");
        assert!(wallet_matches(&both, "wa-2", &tags));
        assert!(wallet_matches(&Filters::default(), "wa-9", &[]));
    }

    #[test]
    fn usd_is_displayed_rounded_up_to_cents() {
        assert_eq!(format_usd(usd("10000").unwrap()), "10000");
        assert_eq!(format_usd(usd("4500.5").unwrap()), "4500.5");
        assert_eq!(format_usd(usd("0.001").unwrap()), "0.01");
        assert_eq!(format_usd(usd("5000.000001").unwrap()), "5000.01");
    }
}
