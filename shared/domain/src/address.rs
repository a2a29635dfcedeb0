//! Blockchain addresses, parsed and normalised per network family.
//!
//! [`Address`] is an enum with one variant per [`NetworkFamily`]; each variant owns its canonical
//! text. EVM addresses are case-insensitive, so their canonical form is lowercase (Dfns compares
//! whitelist entries case-sensitively, so we must always send one form). A future family whose
//! addresses are case-sensitive (Solana's base58, say) adds a variant that keeps the text exactly
//! as given; nothing outside the EVM variant lowercases.
//!
//! An address alone cannot be deserialised (its format depends on the network), so stored and wire
//! records carry a [`NetworkAddress`], which parses the address against its network.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha3::{Digest, Keccak256};

use crate::network::{Network, NetworkFamily};

/// Why a string is not a valid address for the network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("address is empty")]
    Empty,
    #[error("EVM address must start with `0x`")]
    MissingPrefix,
    #[error("EVM address must have 40 hex digits after `0x`, found {found} characters")]
    WrongLength { found: usize },
    #[error("EVM address has a non-hex character at position {position}")]
    InvalidHex { position: usize },
    #[error("mixed-case EVM address fails its EIP-55 checksum")]
    BadChecksum,
}

/// A 20-byte EVM account address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EvmAddress([u8; 20]);

impl EvmAddress {
    /// Accepts `0x` + 40 hex digits, all lowercase or all uppercase (digits carry no case), or
    /// mixed case only when it is exactly the EIP-55 checksummed form.
    pub fn parse(raw: &str) -> Result<Self, AddressError> {
        if raw.is_empty() {
            return Err(AddressError::Empty);
        }
        let Some(hex_part) = raw.strip_prefix("0x") else {
            return Err(AddressError::MissingPrefix);
        };
        if let Some(i) = hex_part.bytes().position(|b| !b.is_ascii_hexdigit()) {
            // Report the character position in the original string, counting the prefix.
            // `i` is the first non-hex byte, so everything before it is ASCII: bytes == chars.
            return Err(AddressError::InvalidHex { position: 2 + i });
        }
        if hex_part.len() != 40 {
            return Err(AddressError::WrongLength {
                found: hex_part.len(),
            });
        }
        let mut bytes = [0u8; 20];
        hex::decode_to_slice(hex_part, &mut bytes)
            .map_err(|_| AddressError::InvalidHex { position: 2 })?;
        let address = Self(bytes);
        let has_lower = hex_part.bytes().any(|b| b.is_ascii_lowercase());
        let has_upper = hex_part.bytes().any(|b| b.is_ascii_uppercase());
        if has_lower && has_upper && address.to_checksummed()[2..] != *hex_part {
            return Err(AddressError::BadChecksum);
        }
        Ok(address)
    }

    pub fn from_bytes(bytes: [u8; 20]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// Canonical form: `0x` + 40 lowercase hex digits.
    pub fn to_lowercase_hex(&self) -> String {
        format!("0x{}", hex::encode(self.0))
    }

    /// EIP-55 mixed-case checksummed form (for display to people).
    pub fn to_checksummed(&self) -> String {
        let lower = hex::encode(self.0);
        let hash = Keccak256::digest(lower.as_bytes());
        let mut out = String::with_capacity(42);
        out.push_str("0x");
        for (i, c) in lower.chars().enumerate() {
            let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
            out.push(if nibble >= 8 {
                c.to_ascii_uppercase()
            } else {
                c
            });
        }
        out
    }
}

impl fmt::Display for EvmAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_lowercase_hex())
    }
}

impl Serialize for EvmAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_lowercase_hex())
    }
}

impl<'de> Deserialize<'de> for EvmAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// An address valid on some network family, in its canonical text form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Address {
    Evm(EvmAddress),
}

impl Address {
    /// Parses `raw` with the rules of `network`'s family.
    pub fn parse(network: Network, raw: &str) -> Result<Self, AddressError> {
        match network.family() {
            NetworkFamily::Evm => EvmAddress::parse(raw).map(Address::Evm),
        }
    }

    pub fn family(&self) -> NetworkFamily {
        match self {
            Address::Evm(_) => NetworkFamily::Evm,
        }
    }

    /// The canonical text, as stored and sent to Dfns.
    pub fn canonical(&self) -> String {
        match self {
            Address::Evm(a) => a.to_lowercase_hex(),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.canonical())
    }
}

/// An address together with the network it was parsed for. Serialises as
/// `{"network": "EthereumSepolia", "address": "0x…"}` and deserialises by parsing the address with
/// that network's rules, so a record read back from storage is validated again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NetworkAddress {
    network: Network,
    address: Address,
}

impl NetworkAddress {
    pub fn parse(network: Network, raw_address: &str) -> Result<Self, AddressError> {
        Ok(Self {
            network,
            address: Address::parse(network, raw_address)?,
        })
    }

    pub fn network(&self) -> Network {
        self.network
    }

    pub fn address(&self) -> &Address {
        &self.address
    }
}

#[derive(Serialize, Deserialize)]
struct NetworkAddressWire {
    network: Network,
    address: String,
}

impl Serialize for NetworkAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        NetworkAddressWire {
            network: self.network,
            address: self.address.canonical(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for NetworkAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = NetworkAddressWire::deserialize(deserializer)?;
        Self::parse(wire.network, &wire.address).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The test vectors listed in EIP-55 itself.
    const EIP55_VECTORS: [&str; 8] = [
        // All caps
        "0x52908400098527886E0F7030069857D2E4169EE7",
        "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
        // All lower
        "0xde709f2102306220921060314715629080e2fb77",
        "0x27b1fdb04752bbc536007a920d24acb045561c26",
        // Normal
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ];

    #[test]
    fn eip55_vectors_parse_and_reproduce_their_checksum() {
        for vector in EIP55_VECTORS {
            let address = EvmAddress::parse(vector).unwrap_or_else(|e| panic!("{vector}: {e}"));
            assert_eq!(address.to_lowercase_hex(), vector.to_lowercase());
            // The mixed-case vectors are exactly what we produce; the all-caps/all-lower ones are
            // "no checksum" forms whose checksum we can still compute.
            let has_lower = vector[2..].bytes().any(|b| b.is_ascii_lowercase());
            let has_upper = vector[2..].bytes().any(|b| b.is_ascii_uppercase());
            if has_lower && has_upper {
                assert_eq!(address.to_checksummed(), vector);
            }
        }
    }

    #[test]
    fn flipping_one_letters_case_in_a_checksummed_vector_is_rejected() {
        for vector in &EIP55_VECTORS[4..] {
            for (i, c) in vector.char_indices().skip(2) {
                if !c.is_ascii_alphabetic() {
                    continue;
                }
                let mut flipped = vector.to_string();
                let swapped = if c.is_ascii_uppercase() {
                    c.to_ascii_lowercase()
                } else {
                    c.to_ascii_uppercase()
                };
                flipped.replace_range(i..i + 1, &swapped.to_string());
                let fully_one_case = flipped[2..]
                    .bytes()
                    .all(|b| !b.is_ascii_uppercase() || !b.is_ascii_lowercase());
                if !fully_one_case {
                    assert_eq!(
                        EvmAddress::parse(&flipped),
                        Err(AddressError::BadChecksum),
                        "{flipped}"
                    );
                }
            }
        }
    }

    #[test]
    fn rejection_classes() {
        assert_eq!(EvmAddress::parse(""), Err(AddressError::Empty));
        assert_eq!(
            EvmAddress::parse("52908400098527886e0f7030069857d2e4169ee7"),
            Err(AddressError::MissingPrefix)
        );
        assert_eq!(
            EvmAddress::parse("0X52908400098527886E0F7030069857D2E4169EE7"),
            Err(AddressError::MissingPrefix)
        );
        assert_eq!(
            EvmAddress::parse("0x52908400098527886e0f7030069857d2e4169e"),
            Err(AddressError::WrongLength { found: 38 })
        );
        assert_eq!(
            EvmAddress::parse("0x52908400098527886e0f7030069857d2e4169ee700"),
            Err(AddressError::WrongLength { found: 42 })
        );
        assert_eq!(
            EvmAddress::parse("0x"),
            Err(AddressError::WrongLength { found: 0 })
        );
        assert_eq!(
            EvmAddress::parse("0x52908400098527886e0f7030069857d2e4169eg7"),
            Err(AddressError::InvalidHex { position: 40 })
        );
        assert_eq!(
            EvmAddress::parse(" 0x52908400098527886e0f7030069857d2e4169ee7"),
            Err(AddressError::MissingPrefix)
        );
        assert_eq!(
            EvmAddress::parse("0x52908400098527886e0f7030069857d2e4169ee7 "),
            Err(AddressError::InvalidHex { position: 42 })
        );
        assert_eq!(
            EvmAddress::parse("0x52908400098527886e0f7030069857d2e4169eé"),
            Err(AddressError::InvalidHex { position: 40 })
        );
    }

    #[test]
    fn address_serialises_lowercase_and_network_address_round_trips() {
        let na = NetworkAddress::parse(
            Network::EthereumSepolia,
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        )
        .unwrap();
        let json = serde_json::to_string(&na).unwrap();
        assert_eq!(
            json,
            r#"{"network":"EthereumSepolia","address":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"}"#
        );
        assert_eq!(serde_json::from_str::<NetworkAddress>(&json).unwrap(), na);
        let bad = r#"{"network":"EthereumSepolia","address":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"}"#;
        assert!(serde_json::from_str::<NetworkAddress>(bad).is_err());
        let unknown =
            r#"{"network":"Solana","address":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"}"#;
        assert!(serde_json::from_str::<NetworkAddress>(unknown).is_err());
    }

    proptest! {
        #[test]
        fn any_20_bytes_round_trip_in_every_accepted_form(bytes in any::<[u8; 20]>()) {
            let address = EvmAddress::from_bytes(bytes);
            let lower = address.to_lowercase_hex();
            let upper = format!("0x{}", hex::encode_upper(bytes));
            let checksummed = address.to_checksummed();
            for form in [&lower, &upper, &checksummed] {
                prop_assert_eq!(EvmAddress::parse(form), Ok(address));
            }
            prop_assert_eq!(address.to_string(), lower.clone());
            let parsed = Address::parse(Network::Ethereum, &checksummed).unwrap();
            prop_assert_eq!(parsed.canonical(), lower);
        }

        #[test]
        fn mixed_case_other_than_the_checksum_is_rejected(
            bytes in any::<[u8; 20]>(),
            flips in proptest::collection::vec(0usize..40, 1..6),
        ) {
            let checksummed = EvmAddress::from_bytes(bytes).to_checksummed();
            let mut chars: Vec<char> = checksummed.chars().collect();
            for i in flips {
                let c = chars[2 + i];
                chars[2 + i] = if c.is_ascii_uppercase() { c.to_ascii_lowercase() } else { c.to_ascii_uppercase() };
            }
            let candidate: String = chars.into_iter().collect();
            let body = &candidate[2..];
            let mixed = body.bytes().any(|b| b.is_ascii_lowercase()) && body.bytes().any(|b| b.is_ascii_uppercase());
            let result = EvmAddress::parse(&candidate);
            if candidate == checksummed || !mixed {
                prop_assert_eq!(result, Ok(EvmAddress::from_bytes(bytes)));
            } else {
                prop_assert_eq!(result, Err(AddressError::BadChecksum));
            }
        }

        #[test]
        fn wrong_lengths_are_rejected(len in 0usize..80) {
            prop_assume!(len != 40);
            let candidate = format!("0x{}", "a".repeat(len));
            prop_assert_eq!(EvmAddress::parse(&candidate), Err(AddressError::WrongLength { found: len }));
        }

        #[test]
        fn non_hex_characters_are_rejected(pos in 0usize..40, c in "[g-zG-Z!#$ .+_-]") {
            let mut body: Vec<char> = "a".repeat(40).chars().collect();
            body[pos] = c.chars().next().unwrap();
            let candidate = format!("0x{}", body.into_iter().collect::<String>());
            prop_assert_eq!(EvmAddress::parse(&candidate), Err(AddressError::InvalidHex { position: 2 + pos }));
        }

        #[test]
        fn without_0x_prefix_is_rejected(bytes in any::<[u8; 20]>(), prefix in "(|0|x|0X|00| 0x)") {
            let candidate = format!("{prefix}{}", hex::encode(bytes));
            prop_assert_eq!(EvmAddress::parse(&candidate), Err(AddressError::MissingPrefix));
        }
    }
}
