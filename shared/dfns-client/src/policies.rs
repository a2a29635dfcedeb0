//! Policies v2 (docs/dfns.md §4): create, get, list, update, archive. Update and archive may be
//! held for approval by a `Policies:Modify` policy: that is [`UpdateOutcome::Pending`], not an error.

use futures::stream::BoxStream;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::client::{DfnsClient, Repeat, Request};
use crate::common::{InList, Requester, rfc3339};
use crate::error::Result;
use crate::ids::{ApprovalId, ChangeRequestId, PolicyId, UserId, WalletId};
use crate::wallets::DEFAULT_PAGE_SIZE;

string_enum! {
    /// What a policy gates.
    ActivityKind {
        WalletsSign = "Wallets:Sign",
        WalletsIncomingTransaction = "Wallets:IncomingTransaction",
        PoliciesModify = "Policies:Modify",
        PermissionsModify = "Permissions:Modify",
        PermissionsAssign = "Permissions:Assign",
        RegistryAddressesModify = "Registry:Addresses:Modify",
        RegistryContractSchemasModify = "Registry:ContractSchemas:Modify",
    }
}

string_enum! {
    PolicyStatus {
        Active = "Active",
        Archived = "Archived",
    }
}

string_enum! {
    /// Fiat currency of amount rules (only USD today).
    Currency {
        Usd = "USD",
    }
}

/// `configuration` of rules that take none.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NoConfiguration {}

/// `TransactionRecipientWhitelist` configuration. EVM addresses must be lowercase: Dfns compares
/// case-sensitively.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientWhitelist {
    pub addresses: Vec<String>,
}

/// `TransactionAmountLimit` configuration: triggers above `limit` whole units of `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmountLimit {
    pub limit: u64,
    pub currency: Currency,
}

/// `TransactionAmountVelocity` configuration; `timeframe` in minutes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmountVelocity {
    pub limit: u64,
    pub currency: Currency,
    pub timeframe: u32,
}

/// `TransactionCountVelocity` configuration; `timeframe` in minutes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountVelocity {
    pub limit: u64,
    pub timeframe: u32,
}

/// A policy rule (docs/dfns.md §4.4). Screening rules keep their configuration as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum PolicyRule {
    AlwaysTrigger {
        #[serde(default)]
        configuration: NoConfiguration,
    },
    TransactionRecipientWhitelist {
        configuration: RecipientWhitelist,
    },
    TransactionAmountLimit {
        configuration: AmountLimit,
    },
    TransactionAmountVelocity {
        configuration: AmountVelocity,
    },
    TransactionCountVelocity {
        configuration: CountVelocity,
    },
    ChainalysisTransactionPrescreening {
        configuration: Value,
    },
    ChainalysisTransactionScreening {
        configuration: Value,
    },
    GlobalLedgerTransactionPrescreening {
        configuration: Value,
    },
    TravelRuleTransactionPrescreening {
        configuration: Value,
    },
    /// A rule this crate does not know, kept as sent.
    #[serde(untagged)]
    Unknown(Value),
}

impl PolicyRule {
    pub fn always_trigger() -> Self {
        Self::AlwaysTrigger {
            configuration: NoConfiguration {},
        }
    }

    pub fn recipient_whitelist(addresses: impl IntoIterator<Item = String>) -> Self {
        Self::TransactionRecipientWhitelist {
            configuration: RecipientWhitelist {
                addresses: addresses.into_iter().collect(),
            },
        }
    }

    pub fn amount_limit_usd(limit: u64) -> Self {
        Self::TransactionAmountLimit {
            configuration: AmountLimit {
                limit,
                currency: Currency::Usd,
            },
        }
    }
}

/// Who may approve in a group. An empty selector means anyone with the approve permission.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approvers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<InList<UserId>>,
    /// Selectors Dfns may add later, kept so that writing a policy back never widens it.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// One approval group of a `RequestApproval` action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalGroup {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub quorum: u32,
    #[serde(default)]
    pub approvers: Approvers,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator_can_approve: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_accounts_can_approve: Option<bool>,
}

/// What happens when the rule triggers (docs/dfns.md §4.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all_fields = "camelCase")]
pub enum PolicyAction {
    Block,
    NoAction,
    RequestApproval {
        approval_groups: Vec<ApprovalGroup>,
        /// Minutes until the approval expires (absent = never).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        auto_reject_timeout: Option<u32>,
    },
    #[serde(untagged)]
    Unknown(Value),
}

/// `walletTags` filter; both operators must hold when both are given.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletTagsFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_any: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_all: Option<Vec<String>>,
}

/// Which activities a policy applies to (docs/dfns.md §4.6); keys combine with AND.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyFilters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet_id: Option<InList<WalletId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet_tags: Option<WalletTagsFilter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<InList<PolicyId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_id: Option<InList<String>>,
    /// Filters Dfns may add later, kept so that writing a policy back never widens it.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Body of create and update (the full policy; update replaces it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyBody {
    pub name: String,
    pub activity_kind: ActivityKind,
    pub rule: PolicyRule,
    pub action: PolicyAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<PolicyFilters>,
}

impl PolicyBody {
    /// The org-wide compliance policy (`Policies:Modify`, `AlwaysTrigger`, `RequestApproval`):
    /// every policy change waits for `quorum` of these officers. No group lets the initiator or
    /// a service account approve.
    pub fn compliance_review(
        name: impl Into<String>,
        officers: impl IntoIterator<Item = UserId>,
        quorum: u32,
        auto_reject_minutes: Option<u32>,
    ) -> Self {
        Self {
            name: name.into(),
            activity_kind: ActivityKind::PoliciesModify,
            rule: PolicyRule::always_trigger(),
            action: PolicyAction::RequestApproval {
                approval_groups: vec![ApprovalGroup {
                    name: Some("Compliance".into()),
                    quorum,
                    approvers: Approvers {
                        user_id: Some(InList::new(officers)),
                        ..Default::default()
                    },
                    initiator_can_approve: None,
                    service_accounts_can_approve: None,
                }],
                auto_reject_timeout: auto_reject_minutes,
            },
            filters: None,
        }
    }
}

/// A stored policy, with the change request waiting on it if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub id: PolicyId,
    pub name: String,
    pub status: PolicyStatus,
    pub activity_kind: ActivityKind,
    pub rule: PolicyRule,
    pub action: PolicyAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<PolicyFilters>,
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub date_created: Option<OffsetDateTime>,
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub date_updated: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_change_request: Option<Box<ChangeRequest>>,
}

impl Policy {
    /// The body that would recreate this policy as it is (for a read-modify-update).
    pub fn body(&self) -> PolicyBody {
        PolicyBody {
            name: self.name.clone(),
            activity_kind: self.activity_kind.clone(),
            rule: self.rule.clone(),
            action: self.action.clone(),
            filters: self.filters.clone(),
        }
    }
}

string_enum! {
    ChangeRequestKind {
        Policy = "Policy",
        Permission = "Permission",
        Assignment = "Assignment",
        Alias = "Alias",
        SmartContract = "SmartContract",
    }
}

string_enum! {
    OperationKind {
        Create = "Create",
        Update = "Update",
        Delete = "Delete",
    }
}

string_enum! {
    ChangeRequestStatus {
        Pending = "Pending",
        Applied = "Applied",
        Rejected = "Rejected",
        Failed = "Failed",
    }
}

/// A change held for approval (docs/dfns.md §4.8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeRequest {
    pub id: ChangeRequestId,
    pub kind: ChangeRequestKind,
    pub operation_kind: OperationKind,
    pub status: ChangeRequestStatus,
    pub requester: Requester,
    /// The target (a policy id for `kind: Policy`).
    pub entity_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<ApprovalId>,
    #[serde(with = "rfc3339")]
    pub date_created: OffsetDateTime,
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub date_resolved: Option<OffsetDateTime>,
    /// The proposed entity; see [`ChangeRequest::proposed_policy`].
    #[serde(default)]
    pub body: Value,
}

impl ChangeRequest {
    /// The proposed policy body, for `kind: Policy` (archive proposes `status: Archived`: see
    /// [`ChangeRequest::proposed_status`]).
    pub fn proposed_policy(&self) -> Result<PolicyBody, serde_json::Error> {
        serde_json::from_value(self.body.clone())
    }

    /// The proposed `status`, if the body carries one.
    pub fn proposed_status(&self) -> Option<PolicyStatus> {
        self.body
            .get("status")
            .and_then(Value::as_str)
            .map(PolicyStatus::from)
    }
}

/// Result of a change that a `Policies:Modify` policy may hold for approval.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateOutcome<T> {
    /// Applied now (HTTP 200).
    Applied(T),
    /// Held for approval (HTTP 202): nothing changed yet; decide `approval_id` to apply it.
    Pending(Box<ChangeRequest>),
}

/// Options of `GET /v2/policies`.
#[derive(Debug, Clone, Default)]
pub struct PoliciesQuery {
    pub status: Option<PolicyStatus>,
    pub page_size: Option<u32>,
}

impl DfnsClient {
    /// `POST /v2/policies`. Sent at most once: re-read (match by name) before trying again.
    pub async fn create_policy(&self, body: &PolicyBody) -> Result<Policy> {
        self.call_json(Request::signed(
            Method::POST,
            ["v2", "policies"],
            body,
            Repeat::Never,
        )?)
        .await
    }

    /// `GET /v2/policies/{id}`.
    pub async fn get_policy(&self, policy_id: &PolicyId) -> Result<Policy> {
        self.call_json(Request::get(["v2", "policies", policy_id.as_str()]))
            .await
    }

    /// `GET /v2/policies`, every page.
    pub fn list_policies(&self, query: &PoliciesQuery) -> BoxStream<'static, Result<Policy>> {
        self.paginate(
            Request::get(["v2", "policies"])
                .query("limit", query.page_size.unwrap_or(DEFAULT_PAGE_SIZE))
                .query_opt("status", query.status.as_ref()),
        )
    }

    /// `PUT /v2/policies/{id}` (full replacement). Sent at most once.
    pub async fn update_policy(
        &self,
        policy_id: &PolicyId,
        body: &PolicyBody,
    ) -> Result<UpdateOutcome<Policy>> {
        let request = Request::signed(
            Method::PUT,
            ["v2", "policies", policy_id.as_str()],
            body,
            Repeat::Never,
        )?;
        policy_outcome(self.call(request).await?)
    }

    /// `DELETE /v2/policies/{id}`: archives (the only way to deactivate). Sent at most once.
    pub async fn archive_policy(&self, policy_id: &PolicyId) -> Result<UpdateOutcome<Policy>> {
        let request = Request::signed(
            Method::DELETE,
            ["v2", "policies", policy_id.as_str()],
            &serde_json::json!({}),
            Repeat::Never,
        )?;
        policy_outcome(self.call(request).await?)
    }
}

fn policy_outcome(response: crate::client::Response) -> Result<UpdateOutcome<Policy>> {
    if response.status == 202 {
        Ok(UpdateOutcome::Pending(response.json()?))
    } else {
        Ok(UpdateOutcome::Applied(response.json()?))
    }
}
