//! Types shared by several endpoints.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::UserId;

/// An integer amount in an asset's smallest unit (wei, satoshi), a decimal string on the wire.
/// Parsing rejects anything but ASCII digits, so a float or a sign can never slip through.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Amount(String);

/// A string that is not an integer amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an integer amount in smallest units: {0:?}")]
pub struct InvalidAmount(pub String);

impl Amount {
    pub fn parse(raw: &str) -> Result<Self, InvalidAmount> {
        if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidAmount(raw.to_owned()));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value, if it fits in 128 bits (every real balance does).
    pub fn to_u128(&self) -> Option<u128> {
        self.0.parse().ok()
    }
}

impl From<u128> for Amount {
    fn from(value: u128) -> Self {
        Self(value.to_string())
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Amount::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Who asked for something (`requester`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Requester {
    pub user_id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
}

/// Asset metadata attached to transfers and history entries. `quotes` are fiat unit prices
/// (floats on the wire, informational only: never used for amounts).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decimals: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotes: Option<serde_json::Map<String, Value>>,
}

/// `{"in": [...]}` filter operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InList<T> {
    #[serde(rename = "in")]
    pub values: Vec<T>,
}

impl<T> InList<T> {
    pub fn new(values: impl IntoIterator<Item = T>) -> Self {
        Self {
            values: values.into_iter().collect(),
        }
    }
}

/// One page of a list call (`items` + `nextPageToken`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

pub(crate) mod rfc3339 {
    pub(crate) use time::serde::rfc3339::*;
}

string_enum! {
    /// Blockchain network (excerpt of docs/dfns.md §3.2; others parse as `Unknown`).
    Network {
        Ethereum = "Ethereum",
        EthereumSepolia = "EthereumSepolia",
        EthereumHoodi = "EthereumHoodi",
        Base = "Base",
        BaseSepolia = "BaseSepolia",
        ArbitrumOne = "ArbitrumOne",
        ArbitrumSepolia = "ArbitrumSepolia",
        Optimism = "Optimism",
        OptimismSepolia = "OptimismSepolia",
        Polygon = "Polygon",
        PolygonAmoy = "PolygonAmoy",
        Bsc = "Bsc",
        BscTestnet = "BscTestnet",
        AvalancheC = "AvalancheC",
        AvalancheCFuji = "AvalancheCFuji",
        Bitcoin = "Bitcoin",
        BitcoinTestnet4 = "BitcoinTestnet4",
        BitcoinSignet = "BitcoinSignet",
        Solana = "Solana",
        SolanaDevnet = "SolanaDevnet",
        Tron = "Tron",
        TronNile = "TronNile",
    }
}
