//! What a client's live Dfns policies say: the approved destinations of the whitelist policy and
//! the limits of the limit policies, exactly as Dfns states them (USD amounts, minute windows,
//! counts). Pure: the caller fetches the policies.

use dfns_client::policies::PolicyRule;
use dfns_client::{Policy, PolicyAction, PolicyStatus};
use serde::Serialize;

/// Whether `policy` is active and governs the client's wallets: its filter requires the client's
/// wallet tag (`walletTags.hasAll`), or it names only wallets the client holds. Anything else is
/// not shown to the client, even if recorded against it: a client sees only its own rules.
pub fn governs_client(policy: &Policy, wallet_tag: &str, client_wallet_ids: &[&str]) -> bool {
    if policy.status != PolicyStatus::Active {
        return false;
    }
    let Some(filters) = &policy.filters else {
        return false;
    };
    let by_tag = filters
        .wallet_tags
        .as_ref()
        .and_then(|tags| tags.has_all.as_ref())
        .is_some_and(|all| all.iter().any(|t| t == wallet_tag));
    let by_wallet = filters.wallet_id.as_ref().is_some_and(|ids| {
        !ids.values.is_empty()
            && ids
                .values
                .iter()
                .all(|id| client_wallet_ids.contains(&id.as_str()))
    });
    by_tag || by_wallet
}

/// A change to the policy that Dfns holds for a compliance decision.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingPolicyChange {
    pub change_request_id: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
}

/// The client's whitelist policy as it stands at Dfns.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveWhitelist {
    pub policy_id: String,
    /// Addresses exactly as listed in the policy's configuration.
    pub addresses: Vec<String>,
    /// `Block` or `RequestApproval`: what a transfer elsewhere meets.
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_change: Option<PendingPolicyChange>,
    /// The wallets its filter names (`walletId.in`): one for a set of policies per wallet; empty
    /// when it governs the client's wallets by tag.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wallet_ids: Vec<String>,
}

impl LiveWhitelist {
    /// Whether it governs the client's wallet `wallet_id`: named by its filter, or every wallet
    /// of the client when it filters by tag.
    pub fn governs(&self, wallet_id: &str) -> bool {
        self.wallet_ids.is_empty() || self.wallet_ids.iter().any(|id| id == wallet_id)
    }

    /// Whether it is bound to exactly `wallet_id` (one set of policies per wallet).
    pub fn is_only_for(&self, wallet_id: &str) -> bool {
        self.wallet_ids.len() == 1 && self.wallet_ids[0] == wallet_id
    }
}

/// One limit, as the limit policy states it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveLimit {
    pub policy_id: String,
    /// `TransactionAmountLimit`, `TransactionAmountVelocity` or `TransactionCountVelocity`.
    pub kind: &'static str,
    /// USD for amount rules, a number of transfers for the count rule.
    pub limit: u64,
    /// `USD` for amount rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Window of the velocity rules, in minutes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeframe_minutes: Option<u32>,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_change: Option<PendingPolicyChange>,
    /// Per wallet the limit governs: what is used in the current window and what is left now
    /// (for the per-transfer limit, the most one transfer may be). Filled by the account view.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usage: Vec<LimitUsage>,
}

/// One wallet's use of a limit now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LimitUsage {
    pub wallet_id: String,
    pub network: String,
    /// Used in the window (velocity rules; USD or a count), before any new transfer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<String>,
    /// Room left now: USD (amount rules) or transfers (count rule). Absent when it cannot be
    /// computed (a past transfer without a price: Dfns then counts it against the limit too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headroom: Option<String>,
}

fn action_name(action: &PolicyAction) -> String {
    match action {
        PolicyAction::Block => "Block".to_owned(),
        PolicyAction::NoAction => "NoAction".to_owned(),
        PolicyAction::RequestApproval { .. } => "RequestApproval".to_owned(),
        PolicyAction::Unknown(raw) => raw
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("Unknown")
            .to_owned(),
    }
}

fn pending_change(policy: &Policy) -> Option<PendingPolicyChange> {
    policy
        .pending_change_request
        .as_ref()
        .map(|change| PendingPolicyChange {
            change_request_id: change.id.as_str().to_owned(),
            status: change.status.as_str().to_owned(),
            approval_id: change.approval_id.as_ref().map(|a| a.as_str().to_owned()),
        })
}

/// The client's first whitelist: the first of `policies` (already narrowed with
/// [`governs_client`]) whose rule is `TransactionRecipientWhitelist`. `None` when there is none
/// (onboarding not done). With one set of policies per wallet, see [`whitelists`].
pub fn whitelist(policies: &[Policy]) -> Option<LiveWhitelist> {
    whitelists(policies).into_iter().next()
}

/// Every whitelist among `policies` (already narrowed with [`governs_client`]), in their order,
/// each with the wallets it is bound to.
pub fn whitelists(policies: &[Policy]) -> Vec<LiveWhitelist> {
    policies
        .iter()
        .filter_map(|policy| match &policy.rule {
            PolicyRule::TransactionRecipientWhitelist { configuration } => Some(LiveWhitelist {
                policy_id: policy.id.as_str().to_owned(),
                addresses: configuration.addresses.clone(),
                action: action_name(&policy.action),
                pending_change: pending_change(policy),
                wallet_ids: policy
                    .filters
                    .as_ref()
                    .and_then(|f| f.wallet_id.as_ref())
                    .map(|ids| ids.values.iter().map(|id| id.as_str().to_owned()).collect())
                    .unwrap_or_default(),
            }),
            _ => None,
        })
        .collect()
}

/// Every limit among `policies` (already narrowed with [`governs_client`]), ordered by rule kind
/// then policy id so the view is stable.
pub fn limits(policies: &[Policy]) -> Vec<LiveLimit> {
    let mut limits: Vec<LiveLimit> = policies
        .iter()
        .filter_map(|policy| {
            let (kind, limit, currency, timeframe_minutes) = match &policy.rule {
                PolicyRule::TransactionAmountLimit { configuration } => (
                    "TransactionAmountLimit",
                    configuration.limit,
                    Some(configuration.currency.as_str().to_owned()),
                    None,
                ),
                PolicyRule::TransactionAmountVelocity { configuration } => (
                    "TransactionAmountVelocity",
                    configuration.limit,
                    Some(configuration.currency.as_str().to_owned()),
                    Some(configuration.timeframe),
                ),
                PolicyRule::TransactionCountVelocity { configuration } => (
                    "TransactionCountVelocity",
                    configuration.limit,
                    None,
                    Some(configuration.timeframe),
                ),
                _ => return None,
            };
            Some(LiveLimit {
                policy_id: policy.id.as_str().to_owned(),
                kind,
                limit,
                currency,
                timeframe_minutes,
                action: action_name(&policy.action),
                pending_change: pending_change(policy),
                usage: Vec::new(),
            })
        })
        .collect();
    limits.sort_by(|a, b| (a.kind, &a.policy_id).cmp(&(b.kind, &b.policy_id)));
    limits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: serde_json::Value) -> Policy {
        serde_json::from_value(json).expect("fixture is a Dfns policy")
    }

    fn whitelist_fixture() -> Policy {
        policy(serde_json::json!({
            "id": "plc-1f04s-lqc9q-wl00000000000001",
            "name": "client:alice whitelist",
            "status": "Active",
            "activityKind": "Wallets:Sign",
            "rule": { "kind": "TransactionRecipientWhitelist", "configuration": {
                "addresses": ["0xb282dc7cde21717f18337a596e91ded00b79b25f", "0x52908400098527886e0f7030069857d2e4169ee7"] } },
            "action": { "kind": "RequestApproval", "approvalGroups": [
                { "name": "Compliance", "quorum": 1, "approvers": { "userId": { "in": ["us-1", "us-2"] } } } ],
                "autoRejectTimeout": 1440 },
            "filters": { "walletTags": { "hasAll": ["client:alice"] } },
            "dateCreated": "2024-06-28T09:09:54.437Z",
            "dateUpdated": "2024-06-28T09:09:54.437Z",
            "pendingChangeRequest": {
                "id": "cr-2100g-aaaaa-xxxxxxxxxxxxxxxx", "kind": "Policy", "operationKind": "Update",
                "status": "Pending", "requester": { "userId": "us-sa" }, "entityId": "plc-1f04s-lqc9q-wl00000000000001",
                "approvalId": "ap-2a9in-tt2a1-983lho480p35ejd0", "dateCreated": "2024-06-28T10:00:00.000Z",
                "body": {} }
        }))
    }

    fn limit_fixtures() -> Vec<Policy> {
        vec![
            policy(serde_json::json!({
                "id": "plc-aaaaa-bbbbb-count00000000001", "name": "client:alice count-velocity",
                "status": "Active", "activityKind": "Wallets:Sign",
                "rule": { "kind": "TransactionCountVelocity", "configuration": { "limit": 20, "timeframe": 1440 } },
                "action": { "kind": "Block" },
                "filters": { "walletTags": { "hasAll": ["client:alice"] } }
            })),
            policy(serde_json::json!({
                "id": "plc-aaaaa-bbbbb-amount0000000001", "name": "client:alice amount-limit",
                "status": "Active", "activityKind": "Wallets:Sign",
                "rule": { "kind": "TransactionAmountLimit", "configuration": { "limit": 10000, "currency": "USD" } },
                "action": { "kind": "Block" },
                "filters": { "walletTags": { "hasAll": ["client:alice"] } }
            })),
            policy(serde_json::json!({
                "id": "plc-aaaaa-bbbbb-veloc00000000001", "name": "client:alice amount-velocity",
                "status": "Active", "activityKind": "Wallets:Sign",
                "rule": { "kind": "TransactionAmountVelocity", "configuration": { "limit": 50000, "currency": "USD", "timeframe": 1440 } },
                "action": { "kind": "RequestApproval", "approvalGroups": [ { "quorum": 1, "approvers": {} } ] },
                "filters": { "walletTags": { "hasAll": ["client:alice"] } }
            })),
        ]
    }

    #[test]
    fn whitelist_addresses_come_from_the_rule_configuration_as_listed() {
        let mut policies = limit_fixtures();
        policies.push(whitelist_fixture());
        let live = whitelist(&policies).expect("a whitelist policy is among them");
        assert_eq!(live.policy_id, "plc-1f04s-lqc9q-wl00000000000001");
        assert_eq!(
            live.addresses,
            [
                "0xb282dc7cde21717f18337a596e91ded00b79b25f",
                "0x52908400098527886e0f7030069857d2e4169ee7"
            ]
        );
        assert_eq!(live.action, "RequestApproval");
        let pending = live.pending_change.expect("the held change is shown");
        assert_eq!(pending.change_request_id, "cr-2100g-aaaaa-xxxxxxxxxxxxxxxx");
        assert_eq!(pending.status, "Pending");
        assert_eq!(
            pending.approval_id.as_deref(),
            Some("ap-2a9in-tt2a1-983lho480p35ejd0")
        );
    }

    #[test]
    fn no_whitelist_policy_means_none() {
        assert_eq!(whitelist(&limit_fixtures()), None);
    }

    #[test]
    fn limits_are_stated_as_dfns_states_them() {
        let mut policies = limit_fixtures();
        policies.push(whitelist_fixture());
        let limits = limits(&policies);
        let summary: Vec<_> = limits
            .iter()
            .map(|l| {
                (
                    l.kind,
                    l.limit,
                    l.currency.as_deref(),
                    l.timeframe_minutes,
                    l.action.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("TransactionAmountLimit", 10_000, Some("USD"), None, "Block"),
                (
                    "TransactionAmountVelocity",
                    50_000,
                    Some("USD"),
                    Some(1440),
                    "RequestApproval"
                ),
                ("TransactionCountVelocity", 20, None, Some(1440), "Block"),
            ]
        );
        let json = serde_json::to_value(&limits[1]).unwrap();
        assert_eq!(json["limit"], 50_000);
        assert_eq!(json["timeframeMinutes"], 1440);
        assert_eq!(json["currency"], "USD");
    }

    #[test]
    fn only_active_policies_filtered_on_the_clients_tag_or_wallets_govern_it() {
        let alice = whitelist_fixture();
        assert!(governs_client(&alice, "client:alice", &[]));
        assert!(!governs_client(&alice, "client:bob", &[]));

        let mut archived = alice.clone();
        archived.status = PolicyStatus::Archived;
        assert!(!governs_client(&archived, "client:alice", &[]));

        let mut unfiltered = alice.clone();
        unfiltered.filters = None;
        assert!(!governs_client(&unfiltered, "client:alice", &[]));

        let by_wallet = policy(serde_json::json!({
            "id": "plc-aaaaa-bbbbb-wallet0000000001", "name": "by wallet", "status": "Active",
            "activityKind": "Wallets:Sign",
            "rule": { "kind": "TransactionAmountLimit", "configuration": { "limit": 5, "currency": "USD" } },
            "action": { "kind": "Block" },
            "filters": { "walletId": { "in": ["wa-1", "wa-2"] } }
        }));
        assert!(governs_client(
            &by_wallet,
            "client:alice",
            &["wa-1", "wa-2", "wa-3"]
        ));
        assert!(!governs_client(&by_wallet, "client:alice", &["wa-1"]));
    }
}
