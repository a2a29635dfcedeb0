//! Policies v2 (docs/dfns.md §4.2–4.6): the stored policy, its typed rule / action / filters,
//! and the validation of a create or update body against the allowed combinations of §4.3.
//!
//! Validation is strict (unknown fields answer 400): the stored body is echoed back as sent, and
//! the SDK's response types are closed, so anything accepted must also be a valid response.

use serde_json::{Map, Number, Value, json};
use time::OffsetDateTime;

use crate::clock::iso;
use crate::errors::{ApiError, ApiResult};

pub const WALLETS_SIGN: &str = "Wallets:Sign";
pub const POLICIES_MODIFY: &str = "Policies:Modify";

/// Longest velocity window: 30 days in minutes (§4.4).
pub const MAX_TIMEFRAME_MINUTES: u64 = 43_200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyStatus {
    Active,
    Archived,
}

impl PolicyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Archived => "Archived",
        }
    }
}

/// A rule the emulator evaluates (§4.4).
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    AlwaysTrigger,
    /// Triggers when the recipient is not in the list (exact, case-sensitive comparison).
    RecipientWhitelist {
        addresses: Vec<String>,
    },
    /// USD value of the activity `> limit`.
    AmountLimit {
        limit: Number,
    },
    /// USD value of the wallet's activities in the window `> limit`.
    AmountVelocity {
        limit: Number,
        timeframe_minutes: u64,
    },
    /// Number of the wallet's activities in the window `> limit`.
    CountVelocity {
        limit: u64,
        timeframe_minutes: u64,
    },
}

/// One approval group of a `RequestApproval` action.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalGroup {
    pub name: Option<String>,
    pub quorum: u64,
    /// `None` = anyone in the org with the approve permission (`approvers: {}`).
    pub approvers: Option<Vec<String>>,
    pub initiator_can_approve: bool,
    pub service_accounts_can_approve: bool,
}

impl ApprovalGroup {
    pub fn lists(&self, user_id: &str) -> bool {
        self.approvers
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|id| id == user_id))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Block,
    NoAction,
    RequestApproval {
        groups: Vec<ApprovalGroup>,
        /// Minutes until an approval auto-expires (U7: minutes); `None` = never.
        auto_reject_timeout_minutes: Option<u64>,
    },
}

/// Filters (§4.6); every present key must hold (AND). `None` = not filtered on that key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    pub wallet_ids: Option<Vec<String>>,
    pub tags_any: Option<Vec<String>>,
    pub tags_all: Option<Vec<String>>,
    pub policy_ids: Option<Vec<String>>,
    pub permission_ids: Option<Vec<String>>,
}

/// A validated create / update body: the JSON as sent plus its typed reading.
#[derive(Debug, Clone)]
pub struct PolicySpec {
    /// `{name, activityKind, rule, action, filters?}` exactly as sent.
    pub body: Map<String, Value>,
    pub name: String,
    pub activity_kind: String,
    /// `None` for rules the emulator stores but cannot evaluate (none are accepted today).
    pub rule: Rule,
    pub action: Action,
    pub filters: Filters,
}

/// A stored policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub id: String,
    pub spec: PolicySpec,
    pub status: PolicyStatus,
    pub date_created: OffsetDateTime,
    pub date_updated: OffsetDateTime,
    /// The change request waiting on this policy (id into `PolicyData::change_requests`).
    pub pending_change_request: Option<String>,
    pub seq: u64,
}

impl Policy {
    /// The Policy object (create / update / archive responses and change-request bodies).
    pub fn to_json(&self) -> Value {
        policy_json(
            &self.id,
            &self.spec,
            self.status,
            self.date_created,
            self.date_updated,
        )
    }

    pub fn is_active(&self) -> bool {
        self.status == PolicyStatus::Active
    }
}

/// A policy as JSON: the body as sent plus `id`, `status` and dates.
pub fn policy_json(
    id: &str,
    spec: &PolicySpec,
    status: PolicyStatus,
    created: OffsetDateTime,
    updated: OffsetDateTime,
) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(id));
    for (key, value) in &spec.body {
        out.insert(key.clone(), value.clone());
    }
    out.insert("status".into(), json!(status.as_str()));
    out.insert("dateCreated".into(), json!(iso(created)));
    out.insert("dateUpdated".into(), json!(iso(updated)));
    Value::Object(out)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

fn object<'a>(value: &'a Value, what: &str) -> ApiResult<&'a Map<String, Value>> {
    value
        .as_object()
        .ok_or_else(|| invalid(format!("{what} must be an object")))
}

fn only_fields(map: &Map<String, Value>, allowed: &[&str], what: &str) -> ApiResult<()> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(invalid(format!("{what}: field {unknown:?} is not allowed"))),
        None => Ok(()),
    }
}

fn string_list(value: &Value, what: &str) -> ApiResult<Vec<String>> {
    let items = value
        .as_array()
        .ok_or_else(|| invalid(format!("{what} must be an array of strings")))?;
    items
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| invalid(format!("{what} must be an array of strings")))
        })
        .collect()
}

/// `{ "in": [..] }` with a non-empty list.
fn in_list(value: &Value, what: &str) -> ApiResult<Vec<String>> {
    let map = object(value, what)?;
    only_fields(map, &["in"], what)?;
    let list = string_list(
        map.get("in")
            .ok_or_else(|| invalid(format!("{what}.in is required")))?,
        &format!("{what}.in"),
    )?;
    if list.is_empty() {
        return Err(invalid(format!("{what}.in must not be empty")));
    }
    Ok(list)
}

fn non_negative_number(value: Option<&Value>, what: &str) -> ApiResult<Number> {
    match value {
        Some(Value::Number(n)) if n.as_f64().is_some_and(|f| f >= 0.0 && f.is_finite()) => {
            Ok(n.clone())
        }
        _ => Err(invalid(format!("{what} must be a non-negative number"))),
    }
}

fn positive_integer(value: Option<&Value>, what: &str, max: u64) -> ApiResult<u64> {
    value
        .and_then(Value::as_u64)
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| invalid(format!("{what} must be an integer from 1 to {max}")))
}

fn currency_usd(config: &Map<String, Value>, what: &str) -> ApiResult<()> {
    match config.get("currency").and_then(Value::as_str) {
        Some("USD") => Ok(()),
        _ => Err(invalid(format!(
            "{what}.currency must be \"USD\" (the only fiat currency Dfns supports)"
        ))),
    }
}

/// Rules allowed per activity kind (§4.3). Screening rules need a third-party integration the
/// emulator does not have: they are refused explicitly rather than stored and never triggered.
fn allowed_rules(kind: &str) -> &'static [&'static str] {
    match kind {
        WALLETS_SIGN => &[
            "AlwaysTrigger",
            "TransactionRecipientWhitelist",
            "TransactionAmountLimit",
            "TransactionAmountVelocity",
            "TransactionCountVelocity",
            "ChainalysisTransactionPrescreening",
            "GlobalLedgerTransactionPrescreening",
            "TravelRuleTransactionPrescreening",
        ],
        "Wallets:IncomingTransaction" => &["ChainalysisTransactionScreening"],
        _ => &["AlwaysTrigger"],
    }
}

fn allowed_actions(kind: &str) -> &'static [&'static str] {
    match kind {
        WALLETS_SIGN => &["RequestApproval", "Block", "NoAction"],
        "Wallets:IncomingTransaction" => &["NoAction"],
        POLICIES_MODIFY => &["RequestApproval"],
        _ => &["RequestApproval", "Block"],
    }
}

const ACTIVITY_KINDS: &[&str] = &[
    WALLETS_SIGN,
    "Wallets:IncomingTransaction",
    POLICIES_MODIFY,
    "Permissions:Modify",
    "Permissions:Assign",
    "Registry:Addresses:Modify",
    "Registry:ContractSchemas:Modify",
];

fn parse_rule(kind: &str, value: Option<&Value>) -> ApiResult<Rule> {
    let rule = object(value.ok_or_else(|| invalid("rule is required"))?, "rule")?;
    only_fields(rule, &["kind", "configuration"], "rule")?;
    let rule_kind = rule
        .get("kind")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("rule.kind is required"))?;
    if !allowed_rules(kind).contains(&rule_kind) {
        return Err(invalid(format!(
            "rule kind {rule_kind} is not allowed for activity kind {kind} (allowed: {})",
            allowed_rules(kind).join(", ")
        ))
        .with_details(json!({ "activityKind": kind, "ruleKind": rule_kind })));
    }
    let empty = Value::Object(Map::new());
    let config_value = rule.get("configuration");
    match rule_kind {
        "AlwaysTrigger" => {
            if !object(config_value.unwrap_or(&empty), "rule.configuration")?.is_empty() {
                return Err(invalid("AlwaysTrigger takes an empty configuration"));
            }
            Ok(Rule::AlwaysTrigger)
        }
        "TransactionRecipientWhitelist" => {
            let config = object(
                config_value.ok_or_else(|| invalid("rule.configuration is required"))?,
                "rule.configuration",
            )?;
            only_fields(config, &["addresses"], "rule.configuration")?;
            let addresses = string_list(
                config
                    .get("addresses")
                    .ok_or_else(|| invalid("rule.configuration.addresses is required"))?,
                "rule.configuration.addresses",
            )?;
            Ok(Rule::RecipientWhitelist { addresses })
        }
        "TransactionAmountLimit" => {
            let config = object(
                config_value.ok_or_else(|| invalid("rule.configuration is required"))?,
                "rule.configuration",
            )?;
            only_fields(config, &["limit", "currency"], "rule.configuration")?;
            currency_usd(config, "rule.configuration")?;
            let limit = non_negative_number(config.get("limit"), "rule.configuration.limit")?;
            Ok(Rule::AmountLimit { limit })
        }
        "TransactionAmountVelocity" => {
            let config = object(
                config_value.ok_or_else(|| invalid("rule.configuration is required"))?,
                "rule.configuration",
            )?;
            only_fields(
                config,
                &["limit", "currency", "timeframe"],
                "rule.configuration",
            )?;
            currency_usd(config, "rule.configuration")?;
            let limit = non_negative_number(config.get("limit"), "rule.configuration.limit")?;
            let timeframe_minutes = positive_integer(
                config.get("timeframe"),
                "rule.configuration.timeframe (minutes)",
                MAX_TIMEFRAME_MINUTES,
            )?;
            Ok(Rule::AmountVelocity {
                limit,
                timeframe_minutes,
            })
        }
        "TransactionCountVelocity" => {
            let config = object(
                config_value.ok_or_else(|| invalid("rule.configuration is required"))?,
                "rule.configuration",
            )?;
            only_fields(config, &["limit", "timeframe"], "rule.configuration")?;
            let limit = config.get("limit").and_then(Value::as_u64).ok_or_else(|| {
                invalid("rule.configuration.limit must be a non-negative integer")
            })?;
            let timeframe_minutes = positive_integer(
                config.get("timeframe"),
                "rule.configuration.timeframe (minutes)",
                MAX_TIMEFRAME_MINUTES,
            )?;
            Ok(Rule::CountVelocity {
                limit,
                timeframe_minutes,
            })
        }
        other => Err(invalid(format!(
            "rule kind {other} needs a screening integration the emulator does not provide"
        ))
        .with_details(json!({ "activityKind": kind, "ruleKind": other }))),
    }
}

fn optional_bool(map: &Map<String, Value>, field: &str, what: &str) -> ApiResult<bool> {
    match map.get(field) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid(format!("{what}.{field} must be a boolean"))),
    }
}

fn parse_group(value: &Value, index: usize) -> ApiResult<ApprovalGroup> {
    let what = format!("action.approvalGroups[{index}]");
    let group = object(value, &what)?;
    only_fields(
        group,
        &[
            "name",
            "quorum",
            "approvers",
            "initiatorCanApprove",
            "serviceAccountsCanApprove",
        ],
        &what,
    )?;
    let name = match group.get("name") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(invalid(format!("{what}.name must be a string"))),
    };
    let quorum = group
        .get("quorum")
        .and_then(Value::as_u64)
        .filter(|q| *q >= 1)
        .ok_or_else(|| invalid(format!("{what}.quorum must be an integer ≥ 1")))?;
    let approvers = object(
        group
            .get("approvers")
            .ok_or_else(|| invalid(format!("{what}.approvers is required")))?,
        &format!("{what}.approvers"),
    )?;
    only_fields(approvers, &["userId"], &format!("{what}.approvers"))?;
    let approvers = approvers
        .get("userId")
        .map(|v| in_list(v, &format!("{what}.approvers.userId")))
        .transpose()?;
    if let Some(ids) = &approvers
        && (ids.len() as u64) < quorum
    {
        return Err(invalid(format!(
            "{what}.quorum ({quorum}) is larger than the number of approvers ({})",
            ids.len()
        )));
    }
    Ok(ApprovalGroup {
        name,
        quorum,
        approvers,
        initiator_can_approve: optional_bool(group, "initiatorCanApprove", &what)?,
        service_accounts_can_approve: optional_bool(group, "serviceAccountsCanApprove", &what)?,
    })
}

fn parse_action(kind: &str, value: Option<&Value>) -> ApiResult<Action> {
    let action = object(
        value.ok_or_else(|| invalid("action is required"))?,
        "action",
    )?;
    let action_kind = action
        .get("kind")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("action.kind is required"))?;
    if !allowed_actions(kind).contains(&action_kind) {
        return Err(invalid(format!(
            "action kind {action_kind} is not allowed for activity kind {kind} (allowed: {})",
            allowed_actions(kind).join(", ")
        ))
        .with_details(json!({ "activityKind": kind, "actionKind": action_kind })));
    }
    match action_kind {
        "Block" => {
            only_fields(action, &["kind"], "action")?;
            Ok(Action::Block)
        }
        "NoAction" => {
            only_fields(action, &["kind"], "action")?;
            Ok(Action::NoAction)
        }
        _ => {
            only_fields(
                action,
                &["kind", "approvalGroups", "autoRejectTimeout"],
                "action",
            )?;
            let groups = action
                .get("approvalGroups")
                .and_then(Value::as_array)
                .filter(|g| !g.is_empty())
                .ok_or_else(|| invalid("action.approvalGroups must be a non-empty array"))?
                .iter()
                .enumerate()
                .map(|(i, g)| parse_group(g, i))
                .collect::<ApiResult<Vec<_>>>()?;
            let auto_reject_timeout_minutes = match action.get("autoRejectTimeout") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().filter(|m| *m >= 1).ok_or_else(|| {
                    invalid("action.autoRejectTimeout must be a positive integer (minutes) or null")
                })?),
            };
            Ok(Action::RequestApproval {
                groups,
                auto_reject_timeout_minutes,
            })
        }
    }
}

fn parse_filters(kind: &str, value: Option<&Value>) -> ApiResult<Filters> {
    let Some(value) = value else {
        return Ok(Filters::default());
    };
    let map = object(value, "filters")?;
    let mut filters = Filters::default();
    match kind {
        WALLETS_SIGN | "Wallets:IncomingTransaction" => {
            only_fields(map, &["walletId", "walletTags"], "filters")?;
            filters.wallet_ids = map
                .get("walletId")
                .map(|v| in_list(v, "filters.walletId"))
                .transpose()?;
            if let Some(tags) = map.get("walletTags") {
                let tags = object(tags, "filters.walletTags")?;
                only_fields(tags, &["hasAny", "hasAll"], "filters.walletTags")?;
                if tags.is_empty() {
                    return Err(invalid("filters.walletTags needs hasAny or hasAll"));
                }
                for (field, slot) in [
                    ("hasAny", &mut filters.tags_any),
                    ("hasAll", &mut filters.tags_all),
                ] {
                    if let Some(list) = tags.get(field) {
                        let list = string_list(list, &format!("filters.walletTags.{field}"))?;
                        if list.is_empty() {
                            return Err(invalid(format!(
                                "filters.walletTags.{field} must not be empty"
                            )));
                        }
                        *slot = Some(list);
                    }
                }
            }
        }
        POLICIES_MODIFY => {
            only_fields(map, &["policyId"], "filters")?;
            let ids = map.get("policyId").ok_or_else(|| {
                invalid("filters.policyId is required in Policies:Modify filters")
            })?;
            filters.policy_ids = Some(in_list(ids, "filters.policyId")?);
        }
        "Permissions:Modify" | "Permissions:Assign" => {
            only_fields(map, &["permissionId"], "filters")?;
            let ids = map.get("permissionId").ok_or_else(|| {
                invalid(format!(
                    "filters.permissionId is required in {kind} filters"
                ))
            })?;
            filters.permission_ids = Some(in_list(ids, "filters.permissionId")?);
        }
        _ => {
            if !map.is_empty() {
                return Err(invalid(format!("{kind} policies take no filters")));
            }
        }
    }
    Ok(filters)
}

/// Validates a create / update body (§4.2–4.6); a bad combination answers 400 naming it.
pub fn parse_spec(body: &Value) -> ApiResult<PolicySpec> {
    let map = object(body, "request body")?;
    only_fields(
        map,
        &["name", "activityKind", "rule", "action", "filters"],
        "policy",
    )?;
    let name = map
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| invalid("name is required"))?
        .to_owned();
    let activity_kind = map
        .get("activityKind")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("activityKind is required"))?;
    if !ACTIVITY_KINDS.contains(&activity_kind) {
        return Err(invalid(format!(
            "activityKind {activity_kind:?} is not one of {}",
            ACTIVITY_KINDS.join(", ")
        )));
    }
    let rule = parse_rule(activity_kind, map.get("rule"))?;
    let action = parse_action(activity_kind, map.get("action"))?;
    let filters = parse_filters(activity_kind, map.get("filters"))?;
    Ok(PolicySpec {
        body: map.clone(),
        name,
        activity_kind: activity_kind.to_owned(),
        rule,
        action,
        filters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(rule: Value, action: Value, filters: Option<Value>) -> Value {
        let mut body =
            json!({ "name": "p", "activityKind": WALLETS_SIGN, "rule": rule, "action": action });
        if let Some(f) = filters {
            body["filters"] = f;
        }
        body
    }

    fn approval() -> Value {
        json!({ "kind": "RequestApproval", "approvalGroups": [{ "quorum": 1, "approvers": {} }] })
    }

    #[test]
    fn allowed_combinations_are_accepted() {
        let ok = [
            sign(
                json!({"kind":"AlwaysTrigger"}),
                json!({"kind":"Block"}),
                None,
            ),
            sign(
                json!({"kind":"AlwaysTrigger","configuration":{}}),
                json!({"kind":"NoAction"}),
                Some(json!({})),
            ),
            sign(
                json!({"kind":"TransactionRecipientWhitelist","configuration":{"addresses":["0xab"]}}),
                approval(),
                Some(json!({"walletTags":{"hasAll":["client:1"]}})),
            ),
            sign(
                json!({"kind":"TransactionAmountLimit","configuration":{"limit":5000,"currency":"USD"}}),
                json!({"kind":"Block"}),
                Some(json!({"walletId":{"in":["wa-1"]},"walletTags":{"hasAny":["a"]}})),
            ),
            sign(
                json!({"kind":"TransactionAmountVelocity","configuration":{"limit":2.5,"currency":"USD","timeframe":60}}),
                json!({"kind":"Block"}),
                None,
            ),
            sign(
                json!({"kind":"TransactionCountVelocity","configuration":{"limit":0,"timeframe":43200}}),
                json!({"kind":"Block"}),
                None,
            ),
            json!({"name":"m","activityKind":"Policies:Modify","rule":{"kind":"AlwaysTrigger"},
                   "action":{"kind":"RequestApproval","approvalGroups":[{"quorum":2,"approvers":{"userId":{"in":["us-1","us-2"]}}}],"autoRejectTimeout":null},
                   "filters":{"policyId":{"in":["plc-1"]}}}),
            json!({"name":"r","activityKind":"Registry:Addresses:Modify","rule":{"kind":"AlwaysTrigger"},"action":{"kind":"Block"}}),
        ];
        for body in ok {
            parse_spec(&body).unwrap_or_else(|e| panic!("refused {body}: {e}"));
        }
    }

    #[test]
    fn disallowed_combinations_are_refused() {
        let bad = [
            // Policies:Modify cannot block, nor use a transfer rule, nor filter on wallets.
            json!({"name":"m","activityKind":"Policies:Modify","rule":{"kind":"AlwaysTrigger"},"action":{"kind":"Block"}}),
            json!({"name":"m","activityKind":"Policies:Modify","rule":{"kind":"TransactionAmountLimit","configuration":{"limit":1,"currency":"USD"}},"action":approval()}),
            json!({"name":"m","activityKind":"Policies:Modify","rule":{"kind":"AlwaysTrigger"},"action":approval(),"filters":{"walletId":{"in":["wa-1"]}}}),
            json!({"name":"m","activityKind":"Policies:Modify","rule":{"kind":"AlwaysTrigger"},"action":approval(),"filters":{}}),
            json!({"name":"i","activityKind":"Wallets:IncomingTransaction","rule":{"kind":"AlwaysTrigger"},"action":{"kind":"NoAction"}}),
            json!({"name":"x","activityKind":"Wallets:Fly","rule":{"kind":"AlwaysTrigger"},"action":{"kind":"Block"}}),
            sign(
                json!({"kind":"TransactionAmountLimit","configuration":{"limit":1,"currency":"EUR"}}),
                json!({"kind":"Block"}),
                None,
            ),
            sign(
                json!({"kind":"TransactionAmountLimit","configuration":{"limit":-1,"currency":"USD"}}),
                json!({"kind":"Block"}),
                None,
            ),
            sign(
                json!({"kind":"TransactionAmountVelocity","configuration":{"limit":1,"currency":"USD","timeframe":0}}),
                json!({"kind":"Block"}),
                None,
            ),
            sign(
                json!({"kind":"TransactionCountVelocity","configuration":{"limit":1,"timeframe":43201}}),
                json!({"kind":"Block"}),
                None,
            ),
            sign(
                json!({"kind":"TransactionRecipientWhitelist","configuration":{}}),
                json!({"kind":"Block"}),
                None,
            ),
            sign(
                json!({"kind":"AlwaysTrigger"}),
                json!({"kind":"RequestApproval","approvalGroups":[]}),
                None,
            ),
            sign(
                json!({"kind":"AlwaysTrigger"}),
                json!({"kind":"RequestApproval","approvalGroups":[{"quorum":0,"approvers":{}}]}),
                None,
            ),
            sign(
                json!({"kind":"AlwaysTrigger"}),
                json!({"kind":"RequestApproval","approvalGroups":[{"quorum":2,"approvers":{"userId":{"in":["us-1"]}}}]}),
                None,
            ),
            sign(
                json!({"kind":"AlwaysTrigger"}),
                json!({"kind":"Block"}),
                Some(json!({"policyId":{"in":["plc-1"]}})),
            ),
            sign(
                json!({"kind":"AlwaysTrigger"}),
                json!({"kind":"Block"}),
                Some(json!({"walletTags":{}})),
            ),
            sign(
                json!({"kind":"AlwaysTrigger"}),
                json!({"kind":"Block"}),
                Some(json!({"walletId":{"in":[]}})),
            ),
            sign(
                json!({"kind":"AlwaysTrigger"}),
                json!({"kind":"Block","extra":1}),
                None,
            ),
            sign(
                json!({"kind":"ChainalysisTransactionPrescreening","configuration":{}}),
                json!({"kind":"Block"}),
                None,
            ),
        ];
        for body in bad {
            let err = parse_spec(&body).expect_err(&format!("accepted {body}"));
            assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST);
        }
    }
}
