//! The Dfns networks the platform supports, named exactly as Dfns names them on the wire.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How a network's addresses look; decides how [`crate::Address`] parses and normalises them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetworkFamily {
    /// Ethereum and its derivatives: `0x` + 20 bytes of hex, EIP-55 checksummed mixed case.
    Evm,
    /// Bitcoin: base58check P2PKH/P2SH with the network's version bytes, or segwit bech32 (v0) /
    /// bech32m (v1 and later) with the network's human-readable part.
    Bitcoin,
    /// Solana: base58 of a 32-byte public key, case-sensitive.
    Solana,
}

/// A Dfns network we support. Serialised as the Dfns string (`"EthereumSepolia"`).
///
/// Dfns knows ~130 networks; we list only those the platform can operate, so an unsupported one is
/// refused at the edge rather than half-handled inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Network {
    Ethereum,
    EthereumSepolia,
    EthereumHoodi,
    Base,
    BaseSepolia,
    ArbitrumOne,
    ArbitrumSepolia,
    Optimism,
    OptimismSepolia,
    Polygon,
    PolygonAmoy,
    Bitcoin,
    BitcoinTestnet4,
    BitcoinSignet,
    Solana,
    SolanaDevnet,
}

/// The string is not a network we support.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported network `{0}`")]
pub struct UnknownNetwork(pub String);

impl Network {
    pub const ALL: [Network; 16] = [
        Network::Ethereum,
        Network::EthereumSepolia,
        Network::EthereumHoodi,
        Network::Base,
        Network::BaseSepolia,
        Network::ArbitrumOne,
        Network::ArbitrumSepolia,
        Network::Optimism,
        Network::OptimismSepolia,
        Network::Polygon,
        Network::PolygonAmoy,
        Network::Bitcoin,
        Network::BitcoinTestnet4,
        Network::BitcoinSignet,
        Network::Solana,
        Network::SolanaDevnet,
    ];

    /// The Dfns wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Ethereum => "Ethereum",
            Network::EthereumSepolia => "EthereumSepolia",
            Network::EthereumHoodi => "EthereumHoodi",
            Network::Base => "Base",
            Network::BaseSepolia => "BaseSepolia",
            Network::ArbitrumOne => "ArbitrumOne",
            Network::ArbitrumSepolia => "ArbitrumSepolia",
            Network::Optimism => "Optimism",
            Network::OptimismSepolia => "OptimismSepolia",
            Network::Polygon => "Polygon",
            Network::PolygonAmoy => "PolygonAmoy",
            Network::Bitcoin => "Bitcoin",
            Network::BitcoinTestnet4 => "BitcoinTestnet4",
            Network::BitcoinSignet => "BitcoinSignet",
            Network::Solana => "Solana",
            Network::SolanaDevnet => "SolanaDevnet",
        }
    }

    /// Parses the exact Dfns name (case-sensitive, as Dfns is).
    pub fn parse(raw: &str) -> Result<Self, UnknownNetwork> {
        Self::ALL
            .into_iter()
            .find(|n| n.as_str() == raw)
            .ok_or_else(|| UnknownNetwork(raw.to_owned()))
    }

    pub fn family(self) -> NetworkFamily {
        match self {
            Network::Ethereum
            | Network::EthereumSepolia
            | Network::EthereumHoodi
            | Network::Base
            | Network::BaseSepolia
            | Network::ArbitrumOne
            | Network::ArbitrumSepolia
            | Network::Optimism
            | Network::OptimismSepolia
            | Network::Polygon
            | Network::PolygonAmoy => NetworkFamily::Evm,
            Network::Bitcoin | Network::BitcoinTestnet4 | Network::BitcoinSignet => {
                NetworkFamily::Bitcoin
            }
            Network::Solana | Network::SolanaDevnet => NetworkFamily::Solana,
        }
    }

    /// Symbol of the native asset, as used to key USD prices.
    pub fn native_symbol(self) -> &'static str {
        match self.family() {
            NetworkFamily::Evm => match self {
                Network::Polygon | Network::PolygonAmoy => "POL",
                _ => "ETH",
            },
            NetworkFamily::Bitcoin => "BTC",
            NetworkFamily::Solana => "SOL",
        }
    }

    /// Decimals of the native asset: wei (18) on EVM networks, satoshis (8) on Bitcoin, lamports
    /// (9) on Solana.
    pub fn native_decimals(self) -> u8 {
        match self.family() {
            NetworkFamily::Evm => 18,
            NetworkFamily::Bitcoin => 8,
            NetworkFamily::Solana => 9,
        }
    }

    pub fn is_testnet(self) -> bool {
        !matches!(
            self,
            Network::Ethereum
                | Network::Base
                | Network::ArbitrumOne
                | Network::Optimism
                | Network::Polygon
                | Network::Bitcoin
                | Network::Solana
        )
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Network {
    type Err = UnknownNetwork;
    fn from_str(s: &str) -> Result<Self, UnknownNetwork> {
        Self::parse(s)
    }
}

impl Serialize for Network {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_network_round_trips_through_its_dfns_name() {
        for n in Network::ALL {
            assert_eq!(Network::parse(n.as_str()), Ok(n));
            let json = serde_json::to_string(&n).unwrap();
            assert_eq!(json, format!("\"{}\"", n.as_str()));
            assert_eq!(serde_json::from_str::<Network>(&json).unwrap(), n);
        }
    }

    #[test]
    fn names_are_exact() {
        assert_eq!(
            Network::parse("ethereumsepolia"),
            Err(UnknownNetwork("ethereumsepolia".into()))
        );
        assert!(Network::parse("solana").is_err());
        assert!(Network::parse("").is_err());
        assert!(serde_json::from_str::<Network>("\"EthereumGoerli\"").is_err());
        // Retired test networks Dfns still lists are refused (docs/dfns.md §3.2).
        assert!(Network::parse("BitcoinTestnet3").is_err());
        assert!(Network::parse("Tron").is_err());
    }

    #[test]
    fn families_and_native_assets() {
        for (network, family, symbol, decimals, testnet) in [
            (Network::Ethereum, NetworkFamily::Evm, "ETH", 18, false),
            (Network::Bitcoin, NetworkFamily::Bitcoin, "BTC", 8, false),
            (
                Network::BitcoinTestnet4,
                NetworkFamily::Bitcoin,
                "BTC",
                8,
                true,
            ),
            (
                Network::BitcoinSignet,
                NetworkFamily::Bitcoin,
                "BTC",
                8,
                true,
            ),
            (Network::Solana, NetworkFamily::Solana, "SOL", 9, false),
            (Network::SolanaDevnet, NetworkFamily::Solana, "SOL", 9, true),
        ] {
            assert_eq!(network.family(), family, "{network}");
            assert_eq!(network.native_symbol(), symbol, "{network}");
            assert_eq!(network.native_decimals(), decimals, "{network}");
            assert_eq!(network.is_testnet(), testnet, "{network}");
        }
    }

    #[test]
    fn native_symbols_and_testnets() {
        assert_eq!(Network::Ethereum.native_symbol(), "ETH");
        assert_eq!(Network::BaseSepolia.native_symbol(), "ETH");
        assert_eq!(Network::Polygon.native_symbol(), "POL");
        assert!(Network::EthereumSepolia.is_testnet());
        assert!(!Network::ArbitrumOne.is_testnet());
    }
}
