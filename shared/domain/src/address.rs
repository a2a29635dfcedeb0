//! Blockchain addresses, parsed and normalised per network family.
//!
//! [`Address`] is an enum with one variant per [`NetworkFamily`]; each variant owns its canonical
//! text. Dfns compares whitelist entries case-sensitively (docs/dfns.md §4.4), so each family has
//! exactly one stored form:
//!
//! | family | accepted | stored |
//! |---|---|---|
//! | EVM | `0x` + 40 hex digits, one case or EIP-55 | lower case |
//! | Bitcoin | base58check P2PKH / P2SH with the network's version bytes; bech32 (witness v0) or bech32m (v1+) with the network's prefix, in one case | base58 as given (its case is its value); bech32 in lower case, as Dfns returns it |
//! | Solana | base58 of exactly 32 bytes | exactly as given (case-sensitive) |
//!
//! The codecs are the `bech32` (BIP-173/BIP-350 rules: checksum variant by witness version,
//! program lengths, padding) and `bs58` (base58, base58check) crates; this module only picks the
//! network's parameters and says which rule a refused string broke.
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
    #[error("bech32 address mixes upper and lower case (it must be all one case)")]
    MixedCase,
    #[error("address is for another network: {found}, where this network expects {expected}")]
    WrongNetwork { found: String, expected: String },
    #[error(
        "bech32 checksum is wrong (bech32 is required for witness version 0, bech32m for 1 and later)"
    )]
    Bech32Checksum,
    #[error("invalid bech32 address: {reason}")]
    InvalidBech32 { reason: String },
    #[error("base58check checksum is wrong")]
    Base58Checksum,
    #[error("character at position {position} is not base58")]
    InvalidBase58 { position: usize },
    #[error("address decodes to {found} bytes, expected {expected}")]
    WrongByteLength { expected: usize, found: usize },
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

/// A Bitcoin network's address parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitcoinParams {
    /// Version byte of a base58check pay-to-public-key-hash address.
    pub p2pkh: u8,
    /// Version byte of a base58check pay-to-script-hash address.
    pub p2sh: u8,
    /// The segwit human-readable part (lower case).
    pub hrp: &'static str,
}

/// Mainnet: `1…`, `3…`, `bc1…`.
pub const BITCOIN_MAINNET: BitcoinParams = BitcoinParams {
    p2pkh: 0x00,
    p2sh: 0x05,
    hrp: "bc",
};
/// Every public test network (testnet4, signet): `m…`/`n…`, `2…`, `tb1…`.
pub const BITCOIN_TEST: BitcoinParams = BitcoinParams {
    p2pkh: 0x6f,
    p2sh: 0xc4,
    hrp: "tb",
};

impl BitcoinParams {
    /// The parameters of a Bitcoin-family network; `None` for the others.
    pub fn of(network: Network) -> Option<Self> {
        match network.family() {
            NetworkFamily::Bitcoin if network.is_testnet() => Some(BITCOIN_TEST),
            NetworkFamily::Bitcoin => Some(BITCOIN_MAINNET),
            NetworkFamily::Evm | NetworkFamily::Solana => None,
        }
    }
}

/// How a Bitcoin address locks its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BitcoinAddressKind {
    /// base58check, the network's P2PKH version byte.
    P2pkh,
    /// base58check, the network's P2SH version byte.
    P2sh,
    /// bech32, witness version 0 (P2WPKH, P2WSH).
    SegwitV0,
    /// bech32m, witness version 1 to 16 (1 is taproot).
    SegwitV1Plus,
}

/// A Bitcoin address valid on one network, in its stored text: base58 exactly as given, bech32
/// in lower case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BitcoinAddress {
    text: String,
    kind: BitcoinAddressKind,
}

impl BitcoinAddress {
    /// Parses `raw` with `params`' version bytes and prefix; checksums verified.
    pub fn parse(params: BitcoinParams, raw: &str) -> Result<Self, AddressError> {
        if raw.is_empty() {
            return Err(AddressError::Empty);
        }
        if looks_like_bech32(raw) {
            // A base58 address can have a bech32 shape by chance: it stays valid, and its refusal
            // is base58's unless the string names a Bitcoin prefix or is not base58 at all.
            Self::parse_bech32(params, raw).or_else(|bech32_error| {
                Self::parse_base58(params, raw).map_err(|base58_error| {
                    let hrp = raw[..raw.rfind('1').unwrap_or(0)].to_ascii_lowercase();
                    if matches!(hrp.as_str(), "bc" | "tb" | "bcrt")
                        || matches!(base58_error, AddressError::InvalidBase58 { .. })
                    {
                        bech32_error
                    } else {
                        base58_error
                    }
                })
            })
        } else {
            Self::parse_base58(params, raw)
        }
    }

    fn parse_bech32(params: BitcoinParams, raw: &str) -> Result<Self, AddressError> {
        let has_upper = raw.bytes().any(|b| b.is_ascii_uppercase());
        let has_lower = raw.bytes().any(|b| b.is_ascii_lowercase());
        if has_upper && has_lower {
            return Err(AddressError::MixedCase);
        }
        let text = raw.to_ascii_lowercase();
        let hrp = &text[..text.rfind('1').unwrap_or(0)];
        if hrp != params.hrp {
            return Err(AddressError::WrongNetwork {
                found: format!("prefix `{hrp}`"),
                expected: format!("`{}`", params.hrp),
            });
        }
        use bech32::primitives::decode::{
            CharError, SegwitHrpstring, SegwitHrpstringError, UncheckedHrpstringError,
        };
        let segwit = SegwitHrpstring::new(&text).map_err(|e| match e {
            SegwitHrpstringError::Checksum(_) => AddressError::Bech32Checksum,
            SegwitHrpstringError::Unchecked(UncheckedHrpstringError::Char(
                CharError::MixedCase,
            )) => AddressError::MixedCase,
            other => AddressError::InvalidBech32 {
                reason: other.to_string(),
            },
        })?;
        let kind = if segwit.witness_version().to_u8() == 0 {
            BitcoinAddressKind::SegwitV0
        } else {
            BitcoinAddressKind::SegwitV1Plus
        };
        Ok(Self { text, kind })
    }

    fn parse_base58(params: BitcoinParams, raw: &str) -> Result<Self, AddressError> {
        let payload = bs58::decode(raw)
            .with_check(None)
            .into_vec()
            .map_err(base58_error)?;
        // version byte + 20-byte hash
        if payload.len() != 21 {
            return Err(AddressError::WrongByteLength {
                expected: 21,
                found: payload.len(),
            });
        }
        let kind = match payload[0] {
            v if v == params.p2pkh => BitcoinAddressKind::P2pkh,
            v if v == params.p2sh => BitcoinAddressKind::P2sh,
            other => {
                return Err(AddressError::WrongNetwork {
                    found: format!("version byte 0x{other:02x}"),
                    expected: format!(
                        "0x{:02x} (P2PKH) or 0x{:02x} (P2SH)",
                        params.p2pkh, params.p2sh
                    ),
                });
            }
        };
        Ok(Self {
            text: raw.to_owned(),
            kind,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn kind(&self) -> BitcoinAddressKind {
        self.kind
    }
}

/// A string is read as bech32 first when it has the shape of one: letters, the separator `1` (the
/// last one), then the data part. A base58 address rarely has that shape, and when it has and the
/// bech32 reading fails, it is read as base58 before being refused.
fn looks_like_bech32(raw: &str) -> bool {
    let Some(sep) = raw.rfind('1') else {
        return false;
    };
    let (hrp, data) = (&raw[..sep], &raw[sep + 1..]);
    !hrp.is_empty() && hrp.bytes().all(|b| b.is_ascii_alphabetic()) && !data.is_empty()
}

fn base58_error(e: bs58::decode::Error) -> AddressError {
    match e {
        bs58::decode::Error::InvalidCharacter { index, .. }
        | bs58::decode::Error::NonAsciiCharacter { index } => {
            AddressError::InvalidBase58 { position: index }
        }
        // Too short to hold a checksum counts as a wrong one.
        _ => AddressError::Base58Checksum,
    }
}

/// A Solana account address: base58 of a 32-byte ed25519 public key, kept exactly as given
/// (base58 is case-sensitive: changing one letter's case is another key, or none).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SolanaAddress(String);

impl SolanaAddress {
    pub fn parse(raw: &str) -> Result<Self, AddressError> {
        if raw.is_empty() {
            return Err(AddressError::Empty);
        }
        let bytes = bs58::decode(raw).into_vec().map_err(base58_error)?;
        if bytes.len() != 32 {
            return Err(AddressError::WrongByteLength {
                expected: 32,
                found: bytes.len(),
            });
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bs58::encode(bytes).into_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An address valid on some network family, in its canonical text form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Address {
    Evm(EvmAddress),
    Bitcoin(BitcoinAddress),
    Solana(SolanaAddress),
}

impl Address {
    /// Parses `raw` with the rules of `network`'s family (and, for Bitcoin, that network's
    /// version bytes and prefix).
    pub fn parse(network: Network, raw: &str) -> Result<Self, AddressError> {
        match network.family() {
            NetworkFamily::Evm => EvmAddress::parse(raw).map(Address::Evm),
            NetworkFamily::Bitcoin => {
                let params = BitcoinParams::of(network).expect("a Bitcoin network has params");
                BitcoinAddress::parse(params, raw).map(Address::Bitcoin)
            }
            NetworkFamily::Solana => SolanaAddress::parse(raw).map(Address::Solana),
        }
    }

    pub fn family(&self) -> NetworkFamily {
        match self {
            Address::Evm(_) => NetworkFamily::Evm,
            Address::Bitcoin(_) => NetworkFamily::Bitcoin,
            Address::Solana(_) => NetworkFamily::Solana,
        }
    }

    /// The canonical text, as stored and sent to Dfns.
    pub fn canonical(&self) -> String {
        match self {
            Address::Evm(a) => a.to_lowercase_hex(),
            Address::Bitcoin(a) => a.as_str().to_owned(),
            Address::Solana(a) => a.as_str().to_owned(),
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

/// Bitcoin (BIP-173, BIP-350) and Solana vectors, and round trips of what we display.
#[cfg(test)]
mod bitcoin_solana_tests {
    use super::*;
    use bech32::{Fe32, Hrp};
    use proptest::prelude::*;

    fn network_of(address: &str) -> Network {
        if address.to_ascii_lowercase().starts_with("tb1") {
            Network::BitcoinTestnet4
        } else {
            Network::Bitcoin
        }
    }

    /// BIP-350's valid segwit addresses (its list supersedes BIP-173's for v1 and later).
    const BIP350_VALID: [&str; 8] = [
        "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4",
        "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
        "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",
        "BC1SW50QGDZ25J",
        "bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs",
        "tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy",
        "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c",
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
    ];

    /// BIP-173's valid addresses of witness version 0 (still valid under BIP-350).
    const BIP173_VALID_V0: [&str; 3] = [
        "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4",
        "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
        "tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy",
    ];

    /// BIP-173's valid addresses of witness version 1 and later carry a bech32 checksum, which
    /// BIP-350 made invalid for those versions.
    const BIP173_SUPERSEDED: [&str; 3] = [
        "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7k7grplx",
        "BC1SW50QA3JX3S",
        "bc1zw508d6qejxtdg4y5r3zarvaryvg6kdaj",
    ];

    const BIP173_INVALID: [&str; 10] = [
        "tc1qw508d6qejxtdg4y5r3zarvary0c5xw7kg3g4ty",
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5",
        "BC13W508D6QEJXTDG4Y5R3ZARVARY0C5XW7KN40WF2",
        "bc1rw5uspcuh",
        "bc10w508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kw5rljs90",
        "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",
        "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sL5k7",
        "bc1zw508d6qejxtdg4y5r3zarvaryvqyzf3du",
        "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3pjxtptv",
        "bc1gmk9yu",
    ];

    const BIP350_INVALID: [&str; 15] = [
        "tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut",
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",
        "tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf",
        "BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL",
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh",
        "tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47",
        "bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4",
        "BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R",
        "bc1pw5dgrnzv",
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav",
        "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",
        "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq",
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf",
        "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j",
        "bc1gmk9yu",
    ];

    #[test]
    fn bip350_and_bip173_v0_valid_addresses_parse_and_are_stored_lower_case() {
        for vector in BIP350_VALID.iter().chain(&BIP173_VALID_V0) {
            let network = network_of(vector);
            let address =
                Address::parse(network, vector).unwrap_or_else(|e| panic!("{vector}: {e}"));
            assert_eq!(address.canonical(), vector.to_ascii_lowercase());
            assert_eq!(address.family(), NetworkFamily::Bitcoin);
            // What we store parses back to the same address.
            assert_eq!(Address::parse(network, &address.canonical()), Ok(address));
        }
        let Address::Bitcoin(v0) = Address::parse(Network::Bitcoin, BIP350_VALID[0]).unwrap()
        else {
            panic!()
        };
        assert_eq!(v0.kind(), BitcoinAddressKind::SegwitV0);
        let Address::Bitcoin(v1) = Address::parse(Network::Bitcoin, BIP350_VALID[7]).unwrap()
        else {
            panic!()
        };
        assert_eq!(v1.kind(), BitcoinAddressKind::SegwitV1Plus);
    }

    #[test]
    fn bip173_and_bip350_invalid_addresses_are_refused_on_every_bitcoin_network() {
        for vector in BIP173_INVALID
            .iter()
            .chain(&BIP350_INVALID)
            .chain(&BIP173_SUPERSEDED)
        {
            for network in [
                Network::Bitcoin,
                Network::BitcoinTestnet4,
                Network::BitcoinSignet,
            ] {
                assert!(
                    Address::parse(network, vector).is_err(),
                    "{vector} accepted on {network}"
                );
            }
        }
        for vector in BIP173_SUPERSEDED {
            assert_eq!(
                Address::parse(Network::Bitcoin, vector),
                Err(AddressError::Bech32Checksum),
                "{vector}"
            );
        }
    }

    #[test]
    fn refusals_say_which_rule_failed() {
        // Mixed case (BIP-173 and BIP-350 vectors).
        assert_eq!(
            Address::parse(Network::BitcoinTestnet4, BIP173_INVALID[6]),
            Err(AddressError::MixedCase)
        );
        assert_eq!(
            Address::parse(Network::BitcoinSignet, BIP350_INVALID[11]),
            Err(AddressError::MixedCase)
        );
        // A prefix of no Bitcoin network, and another network's.
        assert_eq!(
            Address::parse(Network::Bitcoin, BIP173_INVALID[0]),
            Err(AddressError::WrongNetwork {
                found: "prefix `tc`".into(),
                expected: "`bc`".into()
            })
        );
        assert_eq!(
            Address::parse(Network::BitcoinTestnet4, BIP350_VALID[7]),
            Err(AddressError::WrongNetwork {
                found: "prefix `bc`".into(),
                expected: "`tb`".into()
            })
        );
        assert_eq!(
            Address::parse(Network::Bitcoin, BIP350_VALID[1]),
            Err(AddressError::WrongNetwork {
                found: "prefix `tb`".into(),
                expected: "`bc`".into()
            })
        );
        // Bad checksums: a changed character, and bech32 where bech32m belongs and the reverse.
        for vector in [BIP173_INVALID[1], BIP350_INVALID[1], BIP350_INVALID[4]] {
            assert_eq!(
                Address::parse(Network::Bitcoin, vector),
                Err(AddressError::Bech32Checksum),
                "{vector}"
            );
        }
        assert_eq!(
            Address::parse(Network::BitcoinTestnet4, BIP350_INVALID[5]),
            Err(AddressError::Bech32Checksum)
        );
        // Program length for witness v0, a witness version above 16: invalid, with the codec's
        // reason.
        for vector in [BIP173_INVALID[5], BIP350_INVALID[7]] {
            assert!(
                matches!(
                    Address::parse(Network::Bitcoin, vector),
                    Err(AddressError::InvalidBech32 { .. })
                ),
                "{vector}"
            );
        }
        assert_eq!(
            Address::parse(Network::Bitcoin, ""),
            Err(AddressError::Empty)
        );
        assert!(
            AddressError::MixedCase
                .to_string()
                .contains("mixes upper and lower case"),
            "{}",
            AddressError::MixedCase
        );
    }

    /// Well-known base58check addresses (the genesis coinbase's, BIP-13's P2SH example, and
    /// test-network ones built from the same hashes).
    #[test]
    fn base58check_addresses_need_the_networks_version_byte_and_a_right_checksum() {
        let genesis = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa";
        let p2sh = "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy";
        for (raw, kind) in [
            (genesis, BitcoinAddressKind::P2pkh),
            (p2sh, BitcoinAddressKind::P2sh),
        ] {
            let Address::Bitcoin(a) = Address::parse(Network::Bitcoin, raw).unwrap() else {
                panic!()
            };
            assert_eq!((a.as_str(), a.kind()), (raw, kind));
            assert!(matches!(
                Address::parse(Network::BitcoinTestnet4, raw),
                Err(AddressError::WrongNetwork { .. })
            ));
        }
        let test_p2pkh = testnet_form(genesis, BITCOIN_TEST.p2pkh);
        let test_p2sh = testnet_form(p2sh, BITCOIN_TEST.p2sh);
        assert!(test_p2pkh.starts_with('m') || test_p2pkh.starts_with('n'));
        assert!(test_p2sh.starts_with('2'));
        for raw in [&test_p2pkh, &test_p2sh] {
            assert_eq!(
                Address::parse(Network::BitcoinSignet, raw)
                    .unwrap()
                    .canonical(),
                *raw
            );
            assert_eq!(
                Address::parse(Network::Bitcoin, raw),
                Err(AddressError::WrongNetwork {
                    found: format!(
                        "version byte 0x{:02x}",
                        bs58::decode(raw).into_vec().unwrap()[0]
                    ),
                    expected: "0x00 (P2PKH) or 0x05 (P2SH)".into()
                })
            );
        }
        // One character changed: the checksum catches it; base58 is case-sensitive, so one
        // letter's case changed is another string, caught the same way.
        assert_eq!(
            Address::parse(Network::Bitcoin, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb"),
            Err(AddressError::Base58Checksum)
        );
        assert_eq!(
            Address::parse(Network::Bitcoin, "1a1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"),
            Err(AddressError::Base58Checksum)
        );
        assert_eq!(
            Address::parse(Network::Bitcoin, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfN0"),
            Err(AddressError::InvalidBase58 { position: 33 })
        );
        // A valid base58check string of another length (a 32-byte payload) is no address.
        let long = bs58::encode([0u8; 33]).with_check().into_string();
        assert_eq!(
            Address::parse(Network::Bitcoin, &long),
            Err(AddressError::WrongByteLength {
                expected: 21,
                found: 33
            })
        );
    }

    fn testnet_form(mainnet: &str, version: u8) -> String {
        let mut payload = bs58::decode(mainnet).with_check(None).into_vec().unwrap();
        payload[0] = version;
        bs58::encode(payload).with_check().into_string()
    }

    const SOLANA_VALID: [&str; 5] = [
        "11111111111111111111111111111111",
        "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
        "So11111111111111111111111111111111111111112",
        "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
        "Vote111111111111111111111111111111111111111",
    ];

    #[test]
    fn solana_addresses_are_32_bytes_of_base58_kept_exactly() {
        for raw in SOLANA_VALID {
            for network in [Network::Solana, Network::SolanaDevnet] {
                let address = Address::parse(network, raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
                assert_eq!(address.canonical(), raw);
                assert_eq!(address.family(), NetworkFamily::Solana);
            }
        }
        let usdc = SOLANA_VALID[3];
        for (raw, error) in [
            ("", AddressError::Empty),
            (
                "1111111111111111111111111111111",
                AddressError::WrongByteLength {
                    expected: 32,
                    found: 31,
                },
            ),
            (
                "111111111111111111111111111111111",
                AddressError::WrongByteLength {
                    expected: 32,
                    found: 33,
                },
            ),
            (
                "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt10",
                AddressError::InvalidBase58 { position: 43 },
            ),
            (
                "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDtlv",
                AddressError::InvalidBase58 { position: 42 },
            ),
            (
                " EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
                AddressError::InvalidBase58 { position: 0 },
            ),
            (
                "0x52908400098527886e0f7030069857d2e4169ee7",
                AddressError::InvalidBase58 { position: 0 },
            ),
        ] {
            assert_eq!(Address::parse(Network::Solana, raw), Err(error), "{raw:?}");
        }
        // A Bitcoin address is refused on Solana and the reverse.
        assert!(
            Address::parse(
                Network::Solana,
                "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
            )
            .is_err()
        );
        assert!(Address::parse(Network::Bitcoin, usdc).is_err());
        // One letter's case changed is never the same address: another key, or none.
        for (i, c) in usdc.char_indices().filter(|(_, c)| c.is_ascii_alphabetic()) {
            let mut flipped = usdc.to_owned();
            let swapped = if c.is_ascii_uppercase() {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            };
            flipped.replace_range(i..i + 1, &swapped.to_string());
            if let Ok(other) = Address::parse(Network::Solana, &flipped) {
                assert_ne!(other, Address::parse(Network::Solana, usdc).unwrap());
                assert_eq!(other.canonical(), flipped);
            }
        }
    }

    #[test]
    fn network_address_round_trips_on_the_new_families() {
        for (network, raw, stored) in [
            (
                Network::SolanaDevnet,
                SOLANA_VALID[3],
                SOLANA_VALID[3].to_owned(),
            ),
            (
                Network::Bitcoin,
                BIP350_VALID[0],
                BIP350_VALID[0].to_ascii_lowercase(),
            ),
        ] {
            let na = NetworkAddress::parse(network, raw).unwrap();
            let json = serde_json::to_string(&na).unwrap();
            assert_eq!(
                json,
                format!(r#"{{"network":"{network}","address":"{stored}"}}"#)
            );
            assert_eq!(serde_json::from_str::<NetworkAddress>(&json).unwrap(), na);
        }
    }

    fn program_strategy() -> impl Strategy<Value = (u8, Vec<u8>)> {
        prop_oneof![
            prop_oneof![Just(20usize), Just(32usize)]
                .prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n))
                .prop_map(|p| (0u8, p)),
            (1u8..=16, proptest::collection::vec(any::<u8>(), 2..=40)),
        ]
    }

    proptest! {
        #[test]
        fn parsing_a_displayed_solana_address_gives_it_back(bytes in any::<[u8; 32]>()) {
            let address = SolanaAddress::from_bytes(bytes);
            let parsed = Address::parse(Network::Solana, address.as_str()).unwrap();
            prop_assert_eq!(&parsed, &Address::Solana(address.clone()));
            prop_assert_eq!(Address::parse(Network::Solana, &parsed.to_string()), Ok(parsed));
            prop_assert_eq!(bs58::decode(address.as_str()).into_vec().unwrap(), bytes.to_vec());
        }

        #[test]
        fn parsing_a_displayed_segwit_address_gives_it_back(
            (version, program) in program_strategy(),
            mainnet in any::<bool>(),
            upper in any::<bool>(),
        ) {
            let (network, params) = if mainnet {
                (Network::Bitcoin, BITCOIN_MAINNET)
            } else {
                (Network::BitcoinTestnet4, BITCOIN_TEST)
            };
            let hrp = Hrp::parse(params.hrp).unwrap();
            let encoded = bech32::segwit::encode(hrp, Fe32::try_from(version).unwrap(), &program).unwrap();
            let given = if upper { encoded.to_ascii_uppercase() } else { encoded.clone() };
            let parsed = Address::parse(network, &given).unwrap();
            prop_assert_eq!(parsed.canonical(), encoded);
            prop_assert_eq!(Address::parse(network, &parsed.to_string()), Ok(parsed.clone()));
            // The other network's prefix is refused as such.
            let other = if mainnet { Network::BitcoinSignet } else { Network::Bitcoin };
            let is_wrong_network = matches!(Address::parse(other, &given), Err(AddressError::WrongNetwork { .. }));
            prop_assert!(is_wrong_network);
        }

        #[test]
        fn parsing_a_displayed_base58_address_gives_it_back(
            hash in any::<[u8; 20]>(),
            mainnet in any::<bool>(),
            script in any::<bool>(),
        ) {
            let (network, params) = if mainnet {
                (Network::Bitcoin, BITCOIN_MAINNET)
            } else {
                (Network::BitcoinSignet, BITCOIN_TEST)
            };
            let version = if script { params.p2sh } else { params.p2pkh };
            let mut payload = vec![version];
            payload.extend_from_slice(&hash);
            let encoded = bs58::encode(payload).with_check().into_string();
            let parsed = Address::parse(network, &encoded).unwrap();
            prop_assert_eq!(parsed.canonical(), encoded.clone());
            prop_assert_eq!(Address::parse(network, &parsed.to_string()), Ok(parsed));
            let other = if mainnet { Network::BitcoinTestnet4 } else { Network::Bitcoin };
            let is_wrong_network = matches!(Address::parse(other, &encoded), Err(AddressError::WrongNetwork { .. }));
            prop_assert!(is_wrong_network);
        }
    }
}
