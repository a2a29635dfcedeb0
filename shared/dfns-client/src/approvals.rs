//! Policy approvals (docs/dfns.md §5): list, get, decide. Deciding is done with a person's
//! (compliance officer's) token and key, never the service account's.

use futures::stream::BoxStream;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::client::{DfnsClient, Repeat, Request};
use crate::common::rfc3339;
use crate::error::Result;
use crate::ids::{ApprovalId, PolicyId, UserId};
use crate::policies::ChangeRequest;
use crate::transfers::TransferRequest;
use crate::wallets::{BlockchainEvent, DEFAULT_PAGE_SIZE};

string_enum! {
    ApprovalStatus {
        Pending = "Pending",
        Approved = "Approved",
        Denied = "Denied",
        Expired = "Expired",
    }
}

string_enum! {
    DecisionValue {
        Approved = "Approved",
        Denied = "Denied",
    }
}

/// The activity waiting for approval (docs/dfns.md §5.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all_fields = "camelCase")]
pub enum Activity {
    #[serde(rename = "Wallets:Sign")]
    WalletsSign {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transfer_request: Option<Box<TransferRequest>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transaction_request: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature_request: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        swap_request: Option<Value>,
    },
    #[serde(rename = "Wallets:IncomingTransaction")]
    WalletsIncomingTransaction {
        blockchain_event: Box<BlockchainEvent>,
    },
    #[serde(rename = "Policies:Modify")]
    PoliciesModify { change_request: Box<ChangeRequest> },
    /// Other activities (permissions, registry), kept as sent.
    #[serde(untagged)]
    Unknown(Value),
}

/// How one triggered policy evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyEvaluation {
    pub policy_id: PolicyId,
    pub triggered: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
}

/// One approver's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub user_id: UserId,
    #[serde(with = "rfc3339")]
    pub date: OffsetDateTime,
    pub value: DecisionValue,
    #[serde(default)]
    pub reason: Option<String>,
}

/// An approval (docs/dfns.md §5.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    pub id: ApprovalId,
    pub initiator_id: UserId,
    pub status: ApprovalStatus,
    pub activity: Activity,
    #[serde(default)]
    pub policy_evaluations: Vec<PolicyEvaluation>,
    #[serde(default)]
    pub decisions: Vec<Decision>,
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expiration_date: Option<OffsetDateTime>,
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
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub date_resolved: Option<OffsetDateTime>,
}

/// Filters of `GET /v2/policy-approvals`.
#[derive(Debug, Clone, Default)]
pub struct ApprovalsQuery {
    pub status: Option<ApprovalStatus>,
    pub initiator_id: Option<UserId>,
    /// A user who may decide.
    pub approver_id: Option<UserId>,
    pub page_size: Option<u32>,
}

#[derive(Serialize)]
struct DecisionBody<'a> {
    value: &'a DecisionValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

impl DfnsClient {
    /// `GET /v2/policy-approvals`, every page.
    pub fn list_approvals(&self, query: &ApprovalsQuery) -> BoxStream<'static, Result<Approval>> {
        self.paginate(
            Request::get(["v2", "policy-approvals"])
                .query("limit", query.page_size.unwrap_or(DEFAULT_PAGE_SIZE))
                .query_opt("status", query.status.as_ref())
                .query_opt("initiatorId", query.initiator_id.as_ref())
                .query_opt("approverId", query.approver_id.as_ref()),
        )
    }

    /// `GET /v2/policy-approvals/{id}`.
    pub async fn get_approval(&self, approval_id: &ApprovalId) -> Result<Approval> {
        self.call_json(Request::get([
            "v2",
            "policy-approvals",
            approval_id.as_str(),
        ]))
        .await
    }

    /// `POST /v2/policy-approvals/{id}/decisions`. Sent at most once (a second decision is refused).
    pub async fn decide_approval(
        &self,
        approval_id: &ApprovalId,
        value: DecisionValue,
        reason: Option<&str>,
    ) -> Result<Approval> {
        self.call_json(Request::signed(
            Method::POST,
            ["v2", "policy-approvals", approval_id.as_str(), "decisions"],
            &DecisionBody {
                value: &value,
                reason,
            },
            Repeat::Never,
        )?)
        .await
    }
}
