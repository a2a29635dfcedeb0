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
//! An asset without `contract` or `mint` is the network's native asset and must carry its symbol
//! (`ETH`, `POL`, `BTC`, `SOL`). On an EVM network one with `contract` is an ERC-20 token
//! (`decimals` default 18). On a Solana network one with `mint` is an SPL token: `decimals` is
//! required (each mint sets its own), `program` is `Spl` (the original Token program, the
//! default) or `Spl2022` (Token-2022). Bitcoin networks take only BTC. A `contract` off EVM or a
//! `mint` off Solana refuses the registry, saying which.
//!
//! ```json
//! { "Kraken": { "SolanaDevnet": {
//!     "SOL":  { "address": "64u2…fXop" },
//!     "USDC": { "address": "64u2…fXop", "mint": "4zMM…ncDU", "decimals": 6 } } } }
//! ```

use std::collections::BTreeMap;

use domain::{AddressError, EvmAddress, Network, NetworkAddress, NetworkFamily, SolanaAddress};
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
    #[error("exchange `{exchange}` on {network}, {asset}: SPL token mint invalid: {source}")]
    Mint {
        exchange: String,
        network: Network,
        asset: String,
        source: AddressError,
    },
    /// A token field that this network's family does not have (`contract` off EVM, `mint` off
    /// Solana, a token on Bitcoin), or an SPL token without its decimals.
    #[error("exchange `{exchange}` on {network}, {asset}: {reason}")]
    TokenField {
        exchange: String,
        network: Network,
        asset: String,
        reason: String,
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

/// What is sent: the network's native asset, an ERC-20 token, or an SPL token (Dfns' kinds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all_fields = "camelCase")]
pub enum AssetKind {
    Native,
    Erc20 {
        /// Lowercase hex.
        contract: String,
    },
    /// A token of Solana's original Token program.
    Spl {
        /// The mint, base58 exactly as given (case matters).
        mint: String,
    },
    /// A Token-2022 (Token Extensions) token.
    Spl2022 {
        /// The mint, base58 exactly as given (case matters).
        mint: String,
    },
}

impl AssetKind {
    /// An SPL token's mint.
    pub fn mint(&self) -> Option<&str> {
        match self {
            Self::Spl { mint } | Self::Spl2022 { mint } => Some(mint),
            Self::Native | Self::Erc20 { .. } => None,
        }
    }

    /// Whether a balance Dfns lists for a wallet (`GET /wallets/{id}/assets`) is this asset:
    /// a contract compares without case (hex), a mint exactly (base58), in the same program.
    pub fn is_held_as(&self, held: &dfns_client::wallets::AssetKind) -> bool {
        use dfns_client::wallets::AssetKind as Held;
        match (held, self) {
            (Held::Native, Self::Native) => true,
            (Held::Erc20 { contract }, Self::Erc20 { contract: ours }) => {
                contract.eq_ignore_ascii_case(ours)
            }
            (Held::Spl { mint }, Self::Spl { mint: ours })
            | (Held::Spl2022 { mint }, Self::Spl2022 { mint: ours }) => mint == ours,
            _ => false,
        }
    }
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
    mint: Option<String>,
    #[serde(default)]
    program: Option<String>,
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
        let refuse = |reason: String| RegistryError::TokenField {
            exchange: exchange.to_owned(),
            network,
            asset: asset.clone(),
            reason,
        };
        let family = network.family();
        let bitcoin_only = || {
            refuse(format!(
                "{network} takes only its native asset {} (no `contract` or `mint`)",
                network.native_symbol()
            ))
        };
        if raw.program.is_some() && raw.mint.is_none() {
            return Err(refuse("`program` goes with a `mint` (SPL tokens)".into()));
        }
        match (&raw.contract, &raw.mint, family) {
            (Some(_), Some(_), _) => {
                return Err(refuse(
                    "give `contract` (ERC-20 on EVM) or `mint` (SPL on Solana), not both".into(),
                ));
            }
            (Some(_), None, NetworkFamily::Bitcoin) | (None, Some(_), NetworkFamily::Bitcoin) => {
                return Err(bitcoin_only());
            }
            (Some(_), None, NetworkFamily::Solana) => {
                return Err(refuse(format!(
                    "`contract` names an ERC-20 token on an EVM network; {network} is a Solana \
                     network, where a token is named by its `mint`"
                )));
            }
            (None, Some(_), NetworkFamily::Evm) => {
                return Err(refuse(format!(
                    "`mint` names an SPL token on a Solana network; {network} is an EVM network, \
                     where a token is named by its `contract`"
                )));
            }
            _ => {}
        }
        let (kind, decimals) = match (raw.contract, raw.mint) {
            (None, Some(mint)) => {
                let mint =
                    SolanaAddress::parse(mint.trim()).map_err(|source| RegistryError::Mint {
                        exchange: exchange.to_owned(),
                        network,
                        asset: asset.clone(),
                        source,
                    })?;
                let mint = mint.as_str().to_owned();
                let kind = match raw.program.as_deref() {
                    None | Some("Spl") => AssetKind::Spl { mint },
                    Some("Spl2022") => AssetKind::Spl2022 { mint },
                    Some(other) => {
                        return Err(refuse(format!(
                            "`program` must be `Spl` or `Spl2022`, not `{other}`"
                        )));
                    }
                };
                let decimals = raw.decimals.ok_or_else(|| {
                    refuse("an SPL token needs `decimals` (each mint sets its own)".into())
                })?;
                (kind, decimals)
            }
            (None, None) => {
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
            (Some(contract), _) => {
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
    /// `SolanaDevnet` (SOL, and Circle's devnet USDC, an SPL token). The addresses are placeholders, not the venues' real ones:
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
/// Circle's USDC on Solana devnet (an SPL token of the original Token program, 6 decimals).
pub const DEVNET_USDC_MINT: &str = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU";

/// The built-in registry's JSON (see [`ExchangeRegistry::local_default`]).
pub const DEFAULT_EXCHANGES: &str = r#"{
  "Coinbase": {
    "EthereumSepolia": {
      "ETH":  { "address": "0xc0ba5e0000000000000000000000000000000001" },
      "USDC": { "address": "0xc0ba5e0000000000000000000000000000000001", "contract": "0x1c7d4b196cb0c7b01d743fbc6116a902379c7238", "decimals": 6 }
    },
    "BitcoinTestnet4": { "BTC": { "address": "tb1qcza9uqqqqqqqqqqqqqqqqqqqqqqqqqqp59th8k" } },
    "SolanaDevnet": {
      "SOL":  { "address": "DyL6vKGESBAYLAKJ1VvwnroYGBp67H7nwfidALbAf6wJ" },
      "USDC": { "address": "DyL6vKGESBAYLAKJ1VvwnroYGBp67H7nwfidALbAf6wJ", "mint": "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU", "decimals": 6 }
    }
  },
  "Gemini": {
    "EthereumSepolia": {
      "ETH":  { "address": "0x6e6d000000000000000000000000000000000002" },
      "USDC": { "address": "0x6e6d000000000000000000000000000000000002", "contract": "0x1c7d4b196cb0c7b01d743fbc6116a902379c7238", "decimals": 6 }
    },
    "BitcoinTestnet4": { "BTC": { "address": "tb1qdeksqqqqqqqqqqqqqqqqqqqqqqqqqqqzxxfc6k" } },
    "SolanaDevnet": {
      "SOL":  { "address": "8S4FKbP9svKNNp1HM37F7KByw5ct76YEeMCTBYdCm39T" },
      "USDC": { "address": "8S4FKbP9svKNNp1HM37F7KByw5ct76YEeMCTBYdCm39T", "mint": "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU", "decimals": 6 }
    }
  },
  "Kraken": {
    "EthereumSepolia": {
      "ETH":  { "address": "0x4b4a000000000000000000000000000000000003" },
      "USDC": { "address": "0x4b4a000000000000000000000000000000000003", "contract": "0x1c7d4b196cb0c7b01d743fbc6116a902379c7238", "decimals": 6 }
    },
    "BitcoinTestnet4": { "BTC": { "address": "tb1qfd9qqqqqqqqqqqqqqqqqqqqqqqqqqqqrk6zg83" } },
    "SolanaDevnet": {
      "SOL":  { "address": "64u2MQX9fShKENP7tp1giBT8FvsKBuKKAdFanGXMfXop" },
      "USDC": { "address": "64u2MQX9fShKENP7tp1giBT8FvsKBuKKAdFanGXMfXop", "mint": "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU", "decimals": 6 }
    }
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

    const SOL_ADDRESS: &str = "64u2MQX9fShKENP7tp1giBT8FvsKBuKKAdFanGXMfXop";
    const EVM_ADDRESS: &str = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
    const TB_ADDRESS: &str = "tb1qfd9qqqqqqqqqqqqqqqqqqqqqqqqqqqqrk6zg83";

    fn on(network: &str, asset_json: &str) -> Result<ExchangeRegistry, RegistryError> {
        ExchangeRegistry::from_json(&format!(r#"{{"Binance": {{"{network}": {asset_json}}}}}"#))
    }

    /// The refusal's reason, for a refused entry.
    fn reason(result: Result<ExchangeRegistry, RegistryError>) -> String {
        match result {
            Err(RegistryError::TokenField { reason, .. }) => reason,
            other => panic!("expected a TokenField refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_mint_on_solana_is_an_spl_token_in_its_program_with_required_decimals() {
        let registry = ExchangeRegistry::local_default();
        for venue in registry.venues() {
            let usdc = venue.deposit(Network::SolanaDevnet, "USDC").unwrap();
            assert_eq!(
                (usdc.kind.clone(), usdc.decimals),
                (
                    AssetKind::Spl {
                        mint: DEVNET_USDC_MINT.into()
                    },
                    6
                ),
                "{}",
                venue.name
            );
            let sol = venue.deposit(Network::SolanaDevnet, "SOL").unwrap();
            // SOL and USDC go to the venue's one Solana address: one whitelist entry.
            assert_eq!(usdc.destination, sol.destination);
            assert_eq!(venue.addresses_on(&[Network::SolanaDevnet]).len(), 1);
        }
        let token2022 = on(
            "SolanaDevnet",
            &format!(
                r#"{{"PYUSD": {{"address": "{SOL_ADDRESS}", "mint": "{DEVNET_USDC_MINT}", "program": "Spl2022", "decimals": 6}}}}"#
            ),
        )
        .unwrap();
        let pyusd = token2022
            .venue("Binance")
            .unwrap()
            .deposit(Network::SolanaDevnet, "PYUSD")
            .unwrap();
        assert_eq!(
            pyusd.kind,
            AssetKind::Spl2022 {
                mint: DEVNET_USDC_MINT.into()
            }
        );
        // Kept exactly as given: base58 is case-sensitive.
        assert_eq!(pyusd.kind.mint(), Some(DEVNET_USDC_MINT));
        assert!(
            reason(on(
                "SolanaDevnet",
                &format!(
                    r#"{{"USDC": {{"address": "{SOL_ADDRESS}", "mint": "{DEVNET_USDC_MINT}"}}}}"#
                )
            ))
            .contains("needs `decimals`")
        );
        assert!(
            reason(on(
                "SolanaDevnet",
                &format!(
                    r#"{{"USDC": {{"address": "{SOL_ADDRESS}", "mint": "{DEVNET_USDC_MINT}", "program": "Token", "decimals": 6}}}}"#
                )
            ))
            .contains("`Spl` or `Spl2022`")
        );
        assert!(matches!(
            on(
                "SolanaDevnet",
                &format!(
                    r#"{{"USDC": {{"address": "{SOL_ADDRESS}", "mint": "{}", "decimals": 6}}}}"#,
                    &DEVNET_USDC_MINT[..40]
                )
            ),
            Err(RegistryError::Mint { .. })
        ));
    }

    #[test]
    fn token_fields_of_another_family_are_refused_saying_which() {
        // A contract on Solana: SPL tokens are named by their mint.
        let contract_on_solana = reason(on(
            "SolanaDevnet",
            &format!(
                r#"{{"USDC": {{"address": "{SOL_ADDRESS}", "contract": "{SEPOLIA_USDC}", "decimals": 6}}}}"#
            ),
        ));
        assert!(
            contract_on_solana.contains("`contract`") && contract_on_solana.contains("`mint`"),
            "{contract_on_solana}"
        );
        // A mint on an EVM network.
        let mint_on_evm = reason(on(
            "EthereumSepolia",
            &format!(
                r#"{{"USDC": {{"address": "{EVM_ADDRESS}", "mint": "{DEVNET_USDC_MINT}", "decimals": 6}}}}"#
            ),
        ));
        assert!(
            mint_on_evm.contains("`mint`") && mint_on_evm.contains("EVM"),
            "{mint_on_evm}"
        );
        // Bitcoin: its native asset only.
        for token in [
            format!(r#""contract": "{SEPOLIA_USDC}""#),
            format!(r#""mint": "{DEVNET_USDC_MINT}""#),
        ] {
            let on_bitcoin = reason(on(
                "BitcoinTestnet4",
                &format!(r#"{{"USDT": {{"address": "{TB_ADDRESS}", {token}, "decimals": 6}}}}"#),
            ));
            assert!(
                on_bitcoin.contains("only its native asset BTC"),
                "{on_bitcoin}"
            );
        }
        assert!(matches!(
            on(
                "BitcoinTestnet4",
                &format!(r#"{{"USDT": {{"address": "{TB_ADDRESS}"}}}}"#)
            ),
            Err(RegistryError::NotNative { native: "BTC", .. })
        ));
        // Both, or a program without a mint.
        assert!(
            reason(on(
                "SolanaDevnet",
                &format!(
                    r#"{{"USDC": {{"address": "{SOL_ADDRESS}", "contract": "{SEPOLIA_USDC}", "mint": "{DEVNET_USDC_MINT}", "decimals": 6}}}}"#
                )
            ))
            .contains("not both")
        );
        assert!(
            reason(on(
                "EthereumSepolia",
                &format!(
                    r#"{{"USDC": {{"address": "{EVM_ADDRESS}", "contract": "{SEPOLIA_USDC}", "program": "Spl"}}}}"#
                )
            ))
            .contains("`program`")
        );
    }

    #[test]
    fn a_wallet_balance_is_the_asset_only_with_the_same_program_and_exact_mint() {
        use dfns_client::wallets::AssetKind as Held;
        let spl = AssetKind::Spl {
            mint: DEVNET_USDC_MINT.into(),
        };
        assert!(spl.is_held_as(&Held::Spl {
            mint: DEVNET_USDC_MINT.into()
        }));
        assert!(!spl.is_held_as(&Held::Spl2022 {
            mint: DEVNET_USDC_MINT.into()
        }));
        assert!(!spl.is_held_as(&Held::Spl {
            mint: DEVNET_USDC_MINT.replacen('z', "Z", 1)
        }));
        assert!(
            AssetKind::Erc20 {
                contract: SEPOLIA_USDC.into()
            }
            .is_held_as(&Held::Erc20 {
                contract: SEPOLIA_USDC.to_uppercase().replacen("0X", "0x", 1)
            })
        );
        assert!(!AssetKind::Native.is_held_as(&Held::Spl {
            mint: DEVNET_USDC_MINT.into()
        }));
    }
}
