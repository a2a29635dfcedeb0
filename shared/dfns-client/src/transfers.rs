//! Transfers (docs/dfns.md §3.7–3.8, §8.5).
//!
//! Only a transfer that carries an `externalId` is ever sent twice: [`DfnsClient::transfer`] takes
//! one by type and retries; [`DfnsClient::transfer_without_external_id`] sends at most once. There
//! is no other way to create a transfer, so a retried transfer without idempotency key cannot be
//! written.

use futures::TryStreamExt;
use futures::stream::BoxStream;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::client::{DfnsClient, Repeat, Request};
use crate::common::{Amount, AssetMetadata, Network, Requester, rfc3339};
use crate::error::Result;
use crate::ids::{ApprovalId, ExternalId, TransferId, WalletId};
use crate::wallets::DEFAULT_PAGE_SIZE;

string_enum! {
    /// Fee priority (EVM, Bitcoin).
    Priority {
        Slow = "Slow",
        Standard = "Standard",
        Fast = "Fast",
    }
}

string_enum! {
    /// `Pending → Executing → Broadcasted → Confirmed`; `Pending → Rejected`; any → `Failed`.
    TransferStatus {
        Pending = "Pending",
        Executing = "Executing",
        Broadcasted = "Broadcasted",
        Confirmed = "Confirmed",
        Failed = "Failed",
        Rejected = "Rejected",
    }
}

impl TransferStatus {
    /// `Confirmed`, `Failed`, `Rejected`: the status will not change again.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Confirmed | Self::Failed | Self::Rejected)
    }
}

/// What to transfer (the body without its idempotency key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all_fields = "camelCase")]
pub enum TransferAsset {
    Native {
        to: String,
        amount: Amount,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        memo: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        priority: Option<Priority>,
    },
    Erc20 {
        contract: String,
        to: String,
        amount: Amount,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        priority: Option<Priority>,
    },
    Erc721 {
        contract: String,
        to: String,
        token_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        priority: Option<Priority>,
    },
    /// An SPL token (the original Token program) on Solana, by its mint (docs/dfns.md §3.7).
    Spl {
        to: String,
        amount: Amount,
        /// The mint account (base58, exact case).
        mint: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        memo: Option<String>,
        /// Pay to create the recipient's associated token account if it has none (Dfns' default
        /// is `false`: the transfer then fails on chain for a recipient without one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        create_destination_account: Option<bool>,
    },
    /// A Token-2022 (Token Extensions program) token on Solana, by its mint; fields as `Spl`.
    Spl2022 {
        to: String,
        amount: Amount,
        mint: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        memo: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        create_destination_account: Option<bool>,
    },
    /// Another kind, sent and kept as raw JSON (must contain `kind`).
    #[serde(untagged)]
    Unknown(Value),
}

/// The wire body of `POST /wallets/{id}/transfers`, as echoed in `requestBody`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferBody {
    #[serde(flatten)]
    pub asset: TransferAsset,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<ExternalId>,
}

/// Asset metadata of a transfer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TransferMetadata {
    #[serde(default)]
    pub asset: AssetMetadata,
}

/// A transfer request (docs/dfns.md §3.8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferRequest {
    pub id: TransferId,
    pub wallet_id: WalletId,
    pub network: Network,
    pub requester: Requester,
    pub request_body: TransferBody,
    #[serde(default)]
    pub metadata: TransferMetadata,
    pub status: TransferStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<Amount>,
    #[serde(with = "rfc3339")]
    pub date_requested: OffsetDateTime,
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub date_policy_resolved: Option<OffsetDateTime>,
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub date_broadcasted: Option<OffsetDateTime>,
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub date_confirmed: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<ApprovalId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<ExternalId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement_id: Option<String>,
}

/// What became of a transfer request: accepted (in progress, maybe awaiting approval), or
/// rejected by policy right away.
#[derive(Debug, Clone, PartialEq)]
pub enum TransferOutcome {
    /// Created and not rejected; `approval_id` is set when it waits for an approval.
    Accepted(TransferRequest),
    /// Blocked by a `Block` policy (or an approval already denied): nothing will be sent.
    Rejected(TransferRequest),
}

impl TransferOutcome {
    fn from_request(transfer: TransferRequest) -> Self {
        if transfer.status == TransferStatus::Rejected {
            Self::Rejected(transfer)
        } else {
            Self::Accepted(transfer)
        }
    }

    pub fn transfer(&self) -> &TransferRequest {
        match self {
            Self::Accepted(t) | Self::Rejected(t) => t,
        }
    }

    pub fn into_transfer(self) -> TransferRequest {
        match self {
            Self::Accepted(t) | Self::Rejected(t) => t,
        }
    }

    pub fn is_rejected(&self) -> bool {
        matches!(self, Self::Rejected(_))
    }

    /// Dfns' reason, for a rejection.
    pub fn rejection_reason(&self) -> Option<&str> {
        match self {
            Self::Rejected(t) => t.reason.as_deref(),
            Self::Accepted(_) => None,
        }
    }
}

/// Options of `GET /wallets/{id}/transfers`.
#[derive(Debug, Clone, Default)]
pub struct TransfersQuery {
    pub page_size: Option<u32>,
}

impl DfnsClient {
    /// `POST /wallets/{id}/transfers` with an idempotency key. Retried (each attempt signed afresh):
    /// Dfns answers a repeat of the same body and `externalId` with the transfer it created first.
    pub async fn transfer(
        &self,
        wallet_id: &WalletId,
        external_id: ExternalId,
        asset: TransferAsset,
    ) -> Result<TransferOutcome> {
        let body = TransferBody {
            asset,
            external_id: Some(external_id),
        };
        self.create_transfer(wallet_id, &body, Repeat::Safe).await
    }

    /// `POST /wallets/{id}/transfers` without idempotency key: sent at most once. If it fails
    /// after being sent (timeout, 5xx) the transfer may or may not exist: look before trying again.
    pub async fn transfer_without_external_id(
        &self,
        wallet_id: &WalletId,
        asset: TransferAsset,
    ) -> Result<TransferOutcome> {
        let body = TransferBody {
            asset,
            external_id: None,
        };
        self.create_transfer(wallet_id, &body, Repeat::Never).await
    }

    async fn create_transfer(
        &self,
        wallet_id: &WalletId,
        body: &TransferBody,
        repeat: Repeat,
    ) -> Result<TransferOutcome> {
        let request = Request::signed(
            Method::POST,
            ["wallets", wallet_id.as_str(), "transfers"],
            body,
            repeat,
        )?;
        let transfer: TransferRequest = self.call_json(request).await?;
        Ok(TransferOutcome::from_request(transfer))
    }

    /// `GET /wallets/{id}/transfers/{transferId}`.
    pub async fn get_transfer(
        &self,
        wallet_id: &WalletId,
        transfer_id: &TransferId,
    ) -> Result<TransferRequest> {
        self.call_json(Request::get([
            "wallets",
            wallet_id.as_str(),
            "transfers",
            transfer_id.as_str(),
        ]))
        .await
    }

    /// `GET /wallets/{id}/transfers`, every page.
    pub fn list_transfers(
        &self,
        wallet_id: &WalletId,
        query: &TransfersQuery,
    ) -> BoxStream<'static, Result<TransferRequest>> {
        self.paginate(
            Request::get(["wallets", wallet_id.as_str(), "transfers"])
                .query("limit", query.page_size.unwrap_or(DEFAULT_PAGE_SIZE)),
        )
    }

    /// The wallet's transfer carrying `external_id`, if there is one. Dfns has no lookup by
    /// `externalId` and does not promise an order for lists (docs/dfns.md §8.2, U15), so this
    /// reads `GET /wallets/{id}/transfers` page by page until it finds it: `Ok(None)` only after
    /// every page was read, a confirmed absence. Any failed page is an error, never an absence.
    pub async fn find_transfer_by_external_id(
        &self,
        wallet_id: &WalletId,
        external_id: &ExternalId,
        query: &TransfersQuery,
    ) -> Result<Option<TransferRequest>> {
        let mut transfers = self.list_transfers(wallet_id, query);
        while let Some(transfer) = transfers.try_next().await? {
            if transfer.external_id.as_ref() == Some(external_id) {
                return Ok(Some(transfer));
            }
        }
        Ok(None)
    }
}
