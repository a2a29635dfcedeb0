//! The exchange registry: which venues the trading desk may send client funds to, and each one's
//! deposit address per network and asset. Read from configuration (`EXCHANGES`, JSON) and validated
//! like any address the platform accepts: an address that does not parse for its network, an
//! unknown network, or a token without a valid contract refuses to start rather than being
//! half-handled later.
//!
//! ```json
//! {
//!   "Coinbase": {
//!     "EthereumSepolia": {
//!       "ETH":  { "address": "0x…" },
//!       "USDC": { "address": "0x…", "contract": "0x…", "decimals": 6 }
//!     }
//!   }
//! }
//! ```
//!
//! An asset without `contract` is the network's native asset and must carry its symbol
//! (`ETH`, `POL`); one with `contract` is an ERC-20 token (`decimals` default 18).

use std::collections::BTreeMap;

use domain::{AddressError, EvmAddress, Network, NetworkAddress};
use serde::{Deserialize, Serialize};

/// Why a registry is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("EXCHANGES is not valid JSON of the documented shape: {0}")]
    Json(String),
    #[error("the registry names no exchange")]
    Empty,
    #[error("exchange name `{0}` must be 1..=40 characters of [A-Za-z0-9_-]")]
    ExchangeName(String),
    #[error("exchange `{exchange}`: {reason}")]
    Network { exchange: String, reason: String },
    #[error(
        "exchange `{exchange}` on {network}: asset symbol `{asset}` must be 1..=16 of [A-Za-z0-9.]"
    )]
    AssetSymbol {
        exchange: String,
        network: Network,
        asset: String,
    },
    #[error("exchange `{exchange}` on {network}, {asset}: deposit address invalid: {source}")]
    Address {
        exchange: String,
        network: Network,
        asset: String,
        source: AddressError,
    },
    #[error("exchange `{exchange}` on {network}, {asset}: token contract invalid: {source}")]
    Contract {
        exchange: String,
        network: Network,
        asset: String,
        source: AddressError,
    },
    #[error(
        "exchange `{exchange}` on {network}: `{asset}` has no contract, so it must be the native asset `{native}`"
    )]
    NotNative {
        exchange: String,
        network: Network,
        asset: String,
        native: &'static str,
    },
    #[error("exchange `{exchange}` on {network}, {asset}: decimals must be 0..=36")]
    Decimals {
        exchange: String,
        network: Network,
        asset: String,
    },
    #[error(
        "exchange `{exchange}` on {network}: two assets named `{asset}` (names are case-insensitive)"
    )]
    DuplicateAsset {
        exchange: String,
        network: Network,
        asset: String,
    },
}

/// What is sent: the network's native asset, or an ERC-20 token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all_fields = "camelCase")]
pub enum AssetKind {
    Native,
    Erc20 {
        /// Lowercase hex.
        contract: String,
    },
}

/// One deposit address of a venue: where `asset` on `network` is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deposit {
    /// The asset's symbol as the registry names it.
    pub asset: String,
    #[serde(flatten)]
    pub kind: AssetKind,
    pub decimals: u32,
    /// Network and normalised address.
    #[serde(flatten)]
    pub destination: NetworkAddress,
}

/// A venue and its deposit addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Venue {
    pub name: String,
    pub deposits: Vec<Deposit>,
}

impl Venue {
    /// The deposit for `asset` (case-insensitive symbol) on `network`.
    pub fn deposit(&self, network: Network, asset: &str) -> Option<&Deposit> {
        self.deposits
            .iter()
            .find(|d| d.destination.network() == network && d.asset.eq_ignore_ascii_case(asset))
    }

    /// The distinct deposit addresses on `networks`, in registry order: what a trading
    /// authorization whitelists.
    pub fn addresses_on(&self, networks: &[Network]) -> Vec<NetworkAddress> {
        let mut out: Vec<NetworkAddress> = Vec::new();
        for deposit in &self.deposits {
            if networks.contains(&deposit.destination.network())
                && !out.contains(&deposit.destination)
            {
                out.push(deposit.destination.clone());
            }
        }
        out
    }
}

/// Every venue, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ExchangeRegistry {
    venues: BTreeMap<String, Venue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeposit {
    address: String,
    #[serde(default)]
    contract: Option<String>,
    #[serde(default)]
    decimals: Option<u32>,
}

type RawRegistry = BTreeMap<String, BTreeMap<String, BTreeMap<String, RawDeposit>>>;

fn valid_exchange_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn valid_symbol(symbol: &str) -> bool {
    !symbol.is_empty()
        && symbol.len() <= 16
        && symbol
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.')
}

impl ExchangeRegistry {
    /// Parses and validates the `EXCHANGES` JSON.
    pub fn from_json(raw: &str) -> Result<Self, RegistryError> {
        let parsed: RawRegistry =
            serde_json::from_str(raw).map_err(|e| RegistryError::Json(e.to_string()))?;
        if parsed.is_empty() {
            return Err(RegistryError::Empty);
        }
        let mut venues = BTreeMap::new();
        for (exchange, networks) in parsed {
            if !valid_exchange_name(&exchange) {
                return Err(RegistryError::ExchangeName(exchange));
            }
            let mut deposits = Vec::new();
            for (network_name, assets) in networks {
                let network =
                    Network::parse(&network_name).map_err(|e| RegistryError::Network {
                        exchange: exchange.clone(),
                        reason: e.to_string(),
                    })?;
                for (asset, raw) in assets {
                    deposits.push(Self::deposit(&exchange, network, asset, raw)?);
                }
            }
            for (i, a) in deposits.iter().enumerate() {
                if deposits[..i].iter().any(|b| {
                    b.destination.network() == a.destination.network()
                        && b.asset.eq_ignore_ascii_case(&a.asset)
                }) {
                    return Err(RegistryError::DuplicateAsset {
                        exchange: exchange.clone(),
                        network: a.destination.network(),
                        asset: a.asset.clone(),
                    });
                }
            }
            venues.insert(
                exchange.clone(),
                Venue {
                    name: exchange,
                    deposits,
                },
            );
        }
        Ok(Self { venues })
    }

    fn deposit(
        exchange: &str,
        network: Network,
        asset: String,
        raw: RawDeposit,
    ) -> Result<Deposit, RegistryError> {
        if !valid_symbol(&asset) {
            return Err(RegistryError::AssetSymbol {
                exchange: exchange.to_owned(),
                network,
                asset,
            });
        }
        let destination = NetworkAddress::parse(network, raw.address.trim()).map_err(|source| {
            RegistryError::Address {
                exchange: exchange.to_owned(),
                network,
                asset: asset.clone(),
                source,
            }
        })?;
        let (kind, decimals) = match raw.contract {
            None => {
                if !asset.eq_ignore_ascii_case(network.native_symbol()) {
                    return Err(RegistryError::NotNative {
                        exchange: exchange.to_owned(),
                        network,
                        asset,
                        native: network.native_symbol(),
                    });
                }
                (
                    AssetKind::Native,
                    raw.decimals.unwrap_or(u32::from(network.native_decimals())),
                )
            }
            Some(contract) => {
                let contract = EvmAddress::parse(contract.trim()).map_err(|source| {
                    RegistryError::Contract {
                        exchange: exchange.to_owned(),
                        network,
                        asset: asset.clone(),
                        source,
                    }
                })?;
                (
                    AssetKind::Erc20 {
                        contract: contract.to_lowercase_hex(),
                    },
                    raw.decimals.unwrap_or(18),
                )
            }
        };
        if decimals > 36 {
            return Err(RegistryError::Decimals {
                exchange: exchange.to_owned(),
                network,
                asset,
            });
        }
        Ok(Deposit {
            asset,
            kind,
            decimals,
            destination,
        })
    }

    /// The built-in registry for local runs and tests: Coinbase, Gemini and Kraken on
    /// `EthereumSepolia` (ETH, and Circle's Sepolia USDC), `BitcoinTestnet4` (BTC) and
    /// `SolanaDevnet` (SOL). The addresses are placeholders, not the venues' real ones:
    /// production sets `EXCHANGES`.
    pub fn local_default() -> Self {
        Self::from_json(DEFAULT_EXCHANGES).expect("the built-in registry is valid")
    }

    pub fn venue(&self, name: &str) -> Option<&Venue> {
        self.venues.get(name)
    }

    pub fn venues(&self) -> impl Iterator<Item = &Venue> {
        self.venues.values()
    }
}

/// Circle's USDC on Ethereum Sepolia.
pub const SEPOLIA_USDC: &str = "0x1c7d4b196cb0c7b01d743fbc6116a902379c7238";

/// The built-in registry's JSON (see [`ExchangeRegistry::local_default`]).
pub const DEFAULT_EXCHANGES: &str = r#"{
  "Coinbase": {
    "EthereumSepolia": {
      "ETH":  { "address": "0xc0ba5e0000000000000000000000000000000001" },
      "USDC": { "address": "0xc0ba5e0000000000000000000000000000000001", "contract": "0x1c7d4b196cb0c7b01d743fbc6116a902379c7238", "decimals": 6 }
    },
    "BitcoinTestnet4": { "BTC": { "address": "tb1qcza9uqqqqqqqqqqqqqqqqqqqqqqqqqqp59th8k" } },
    "SolanaDevnet": { "SOL": { "address": "DyL6vKGESBAYLAKJ1VvwnroYGBp67H7nwfidALbAf6wJ" } }
  },
  "Gemini": {
    "EthereumSepolia": {
      "ETH":  { "address": "0x6e6d000000000000000000000000000000000002" },
      "USDC": { "address": "0x6e6d000000000000000000000000000000000002", "contract": "0x1c7d4b196cb0c7b01d743fbc6116a902379c7238", "decimals": 6 }
    },
    "BitcoinTestnet4": { "BTC": { "address": "tb1qdeksqqqqqqqqqqqqqqqqqqqqqqqqqqqzxxfc6k" } },
    "SolanaDevnet": { "SOL": { "address": "8S4FKbP9svKNNp1HM37F7KByw5ct76YEeMCTBYdCm39T" } }
  },
  "Kraken": {
    "EthereumSepolia": {
      "ETH":  { "address": "0x4b4a000000000000000000000000000000000003" },
      "USDC": { "address": "0x4b4a000000000000000000000000000000000003", "contract": "0x1c7d4b196cb0c7b01d743fbc6116a902379c7238", "decimals": 6 }
    },
    "BitcoinTestnet4": { "BTC": { "address": "tb1qfd9qqqqqqqqqqqqqqqqqqqqqqqqqqqqrk6zg83" } },
    "SolanaDevnet": { "SOL": { "address": "64u2MQX9fShKENP7tp1giBT8FvsKBuKKAdFanGXMfXop" } }
  }
}"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn one(asset_json: &str) -> Result<ExchangeRegistry, RegistryError> {
        ExchangeRegistry::from_json(&format!(
            r#"{{"Binance": {{"EthereumSepolia": {asset_json}}}}}"#
        ))
    }

    #[test]
    fn the_default_registry_has_three_venues_with_normalised_addresses() {
        let registry = ExchangeRegistry::local_default();
        let names: Vec<&str> = registry.venues().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["Coinbase", "Gemini", "Kraken"]);
        let coinbase = registry.venue("Coinbase").unwrap();
        let usdc = coinbase.deposit(Network::EthereumSepolia, "usdc").unwrap();
        assert_eq!(
            usdc.kind,
            AssetKind::Erc20 {
                contract: SEPOLIA_USDC.into()
            }
        );
        assert_eq!(usdc.decimals, 6);
        let eth = coinbase.deposit(Network::EthereumSepolia, "ETH").unwrap();
        assert_eq!((eth.kind.clone(), eth.decimals), (AssetKind::Native, 18));
        assert!(coinbase.deposit(Network::Ethereum, "ETH").is_none());
        // ETH and USDC share one address: one whitelist entry.
        assert_eq!(coinbase.addresses_on(&[Network::EthereumSepolia]).len(), 1);
        assert!(coinbase.addresses_on(&[Network::Base]).is_empty());
    }

    #[test]
    fn checksummed_addresses_are_stored_lowercase() {
        let registry =
            one(r#"{"ETH": {"address": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}}"#).unwrap();
        let deposit = registry
            .venue("Binance")
            .unwrap()
            .deposit(Network::EthereumSepolia, "eth")
            .unwrap();
        assert_eq!(
            deposit.destination.address().canonical(),
            "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
        );
    }

    /// A registry entry and the check its refusal must pass.
    type RefusalCase = (&'static str, fn(&RegistryError) -> bool);

    #[test]
    fn invalid_entries_are_refused_with_the_reason() {
        let cases: [RefusalCase; 8] = [
            (
                r#"{"ETH": {"address": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"}}"#,
                |e| {
                    matches!(
                        e,
                        RegistryError::Address {
                            source: AddressError::BadChecksum,
                            ..
                        }
                    )
                },
            ),
            (r#"{"ETH": {"address": "0x1234"}}"#, |e| {
                matches!(
                    e,
                    RegistryError::Address {
                        source: AddressError::WrongLength { .. },
                        ..
                    }
                )
            }),
            (
                r#"{"USDC": {"address": "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"}}"#,
                |e| matches!(e, RegistryError::NotNative { native: "ETH", .. }),
            ),
            (
                r#"{"USDC": {"address": "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "contract": "0xzz"}}"#,
                |e| matches!(e, RegistryError::Contract { .. }),
            ),
            (
                r#"{"E TH": {"address": "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"}}"#,
                |e| matches!(e, RegistryError::AssetSymbol { .. }),
            ),
            (
                r#"{"ETH": {"address": "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "decimals": 99}}"#,
                |e| matches!(e, RegistryError::Decimals { .. }),
            ),
            (
                r#"{"ETH": {"address": "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"}, "eth": {"address": "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"}}"#,
                |e| matches!(e, RegistryError::DuplicateAsset { .. }),
            ),
            (
                r#"{"ETH": {"address": "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "memo": "x"}}"#,
                |e| matches!(e, RegistryError::Json(_)),
            ),
        ];
        for (json, expected) in cases {
            let error = one(json).unwrap_err();
            assert!(expected(&error), "{json}: got {error:?}");
        }
        assert!(matches!(
            ExchangeRegistry::from_json(r#"{"Bad Name": {}}"#),
            Err(RegistryError::ExchangeName(_))
        ));
        assert!(matches!(
            ExchangeRegistry::from_json(r#"{"X": {"Tron": {}}}"#),
            Err(RegistryError::Network { .. })
        ));
        assert_eq!(ExchangeRegistry::from_json("{}"), Err(RegistryError::Empty));
    }
}
