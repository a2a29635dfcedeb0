//! Wallets (docs/dfns.md §3.1–3.6): create, get, list, tag, untag, assets, history.

use futures::stream::BoxStream;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::client::{DfnsClient, Repeat, Request};
use crate::common::{Amount, AssetMetadata, Network, rfc3339};
use crate::error::Result;
use crate::ids::WalletId;

string_enum! {
    WalletStatus {
        Active = "Active",
        Inactive = "Inactive",
        Archived = "Archived",
    }
}

string_enum! {
    KeyScheme {
        Ecdsa = "ECDSA",
        EdDsa = "EdDSA",
        Schnorr = "Schnorr",
        Dh = "DH",
    }
}

string_enum! {
    KeyCurve {
        Secp256k1 = "secp256k1",
        Ed25519 = "ed25519",
        Stark = "stark",
    }
}

string_enum! {
    /// Direction of a history entry.
    Direction {
        In = "In",
        Out = "Out",
    }
}

/// The wallet's signing key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningKeyInfo {
    pub id: String,
    pub scheme: KeyScheme,
    pub curve: KeyCurve,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegated_to: Option<String>,
}

/// A wallet (docs/dfns.md §3.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Wallet {
    pub id: WalletId,
    pub network: Network,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    pub signing_key: SigningKeyInfo,
    pub status: WalletStatus,
    #[serde(with = "rfc3339")]
    pub date_created: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub custodial: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Body of `POST /wallets`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateWallet {
    pub network: Network,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Stored on the wallet. Wallet creation is not idempotent on it (docs/dfns.md U16): look the
    /// wallet up before creating again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl CreateWallet {
    pub fn new(network: Network) -> Self {
        Self {
            network,
            name: None,
            external_id: None,
            tags: Vec::new(),
        }
    }
}

#[derive(Serialize)]
struct TagsBody<'a> {
    tags: &'a [String],
}

/// Kind-specific part of an [`Asset`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all_fields = "camelCase")]
pub enum AssetKind {
    Native,
    Erc20 {
        contract: String,
    },
    Erc7984 {
        contract: String,
    },
    Trc20 {
        contract: String,
    },
    Spl {
        mint: String,
    },
    Spl2022 {
        mint: String,
    },
    /// A kind this crate does not model, with its discriminator fields kept raw.
    #[serde(untagged)]
    Unknown(Value),
}

/// One balance of a wallet (docs/dfns.md §3.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Asset {
    #[serde(flatten)]
    pub kind: AssetKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    pub decimals: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// In the asset's smallest unit.
    pub balance: Amount,
    /// Fiat unit prices, informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotes: Option<serde_json::Map<String, Value>>,
}

/// `GET /wallets/{id}/assets`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletAssets {
    pub wallet_id: WalletId,
    pub network: Network,
    #[serde(default)]
    pub assets: Vec<Asset>,
    /// Only with `net_worth = true`; fiat, informational.
    #[serde(default)]
    pub net_worth: Option<serde_json::Map<String, Value>>,
}

/// Kind-specific part of a [`BlockchainEvent`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all_fields = "camelCase")]
pub enum BlockchainEventKind {
    NativeTransfer {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    Erc20Transfer {
        contract: String,
        from: String,
        to: String,
    },
    Erc721Transfer {
        contract: String,
        from: String,
        to: String,
        token_id: String,
    },
    /// An SPL token movement; `from` and `to` are optional in the SDK's type.
    SplTransfer {
        mint: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    /// A Token-2022 token movement; fields as `SplTransfer`.
    Spl2022Transfer {
        mint: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    #[serde(untagged)]
    Unknown(Value),
}

/// Fee metadata of a history entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockchainEventMetadata {
    #[serde(default)]
    pub asset: AssetMetadata,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<AssetMetadata>,
}

/// A confirmed on-chain movement (docs/dfns.md §3.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockchainEvent {
    pub wallet_id: WalletId,
    pub direction: Direction,
    pub network: Network,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_number: Option<u64>,
    pub tx_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<Value>,
    #[serde(with = "rfc3339")]
    pub timestamp: OffsetDateTime,
    #[serde(flatten)]
    pub kind: BlockchainEventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<Amount>,
    #[serde(default)]
    pub metadata: BlockchainEventMetadata,
}

/// Filters of `GET /wallets/{id}/history`.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    pub direction: Option<Direction>,
    /// e.g. `"Erc20Transfer"`
    pub kind: Option<String>,
    pub contract: Option<String>,
    pub page_size: Option<u32>,
}

/// Options of `GET /wallets`.
#[derive(Debug, Clone, Default)]
pub struct WalletsQuery {
    pub page_size: Option<u32>,
}

pub(crate) const DEFAULT_PAGE_SIZE: u32 = 100;

impl DfnsClient {
    /// `POST /wallets`. Sent at most once (not idempotent).
    pub async fn create_wallet(&self, body: &CreateWallet) -> Result<Wallet> {
        self.call_json(Request::signed(
            Method::POST,
            ["wallets"],
            body,
            Repeat::Never,
        )?)
        .await
    }

    /// `GET /wallets/{id}`.
    pub async fn get_wallet(&self, wallet_id: &WalletId) -> Result<Wallet> {
        self.call_json(Request::get(["wallets", wallet_id.as_str()]))
            .await
    }

    /// `GET /wallets`, every page. Dfns cannot filter by tag or externalId: filter the stream.
    pub fn list_wallets(&self, query: &WalletsQuery) -> BoxStream<'static, Result<Wallet>> {
        self.paginate(
            Request::get(["wallets"]).query("limit", query.page_size.unwrap_or(DEFAULT_PAGE_SIZE)),
        )
    }

    /// `PUT /wallets/{id}/tags` (adds; repeating it changes nothing, so it is retried).
    pub async fn tag_wallet(&self, wallet_id: &WalletId, tags: &[String]) -> Result<()> {
        self.call(Request::signed(
            Method::PUT,
            ["wallets", wallet_id.as_str(), "tags"],
            &TagsBody { tags },
            Repeat::Safe,
        )?)
        .await
        .map(drop)
    }

    /// `DELETE /wallets/{id}/tags` with a JSON body (removes; retried like tagging).
    pub async fn untag_wallet(&self, wallet_id: &WalletId, tags: &[String]) -> Result<()> {
        self.call(Request::signed(
            Method::DELETE,
            ["wallets", wallet_id.as_str(), "tags"],
            &TagsBody { tags },
            Repeat::Safe,
        )?)
        .await
        .map(drop)
    }

    /// `GET /wallets/{id}/assets`.
    pub async fn wallet_assets(
        &self,
        wallet_id: &WalletId,
        net_worth: bool,
    ) -> Result<WalletAssets> {
        self.call_json(
            Request::get(["wallets", wallet_id.as_str(), "assets"])
                .query_opt("netWorth", net_worth.then_some("true")),
        )
        .await
    }

    /// `GET /wallets/{id}/history`, every page: confirmed on-chain activity only.
    pub fn wallet_history(
        &self,
        wallet_id: &WalletId,
        query: &HistoryQuery,
    ) -> BoxStream<'static, Result<BlockchainEvent>> {
        self.paginate(
            Request::get(["wallets", wallet_id.as_str(), "history"])
                .query("limit", query.page_size.unwrap_or(DEFAULT_PAGE_SIZE))
                .query_opt("direction", query.direction.as_ref())
                .query_opt("kind", query.kind.as_ref())
                .query_opt("contract", query.contract.as_ref()),
        )
    }
}
