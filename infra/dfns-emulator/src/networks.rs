//! Network names Dfns accepts (`CreateWalletBody.network` in `@dfns/sdk` 0.8.21) and the EVM
//! subset the emulator simulates (address derivation, native symbol, 18 decimals).

/// Every value of `CreateWalletBody.network`.
pub const ALL: &[&str] = &[
    "Algorand",
    "AlgorandTestnet",
    "Aptos",
    "AptosTestnet",
    "ArbitrumOne",
    "ArbitrumGoerli",
    "ArbitrumSepolia",
    "ArcTestnet",
    "Areum",
    "AvalancheC",
    "AvalancheCFuji",
    "Adi",
    "AdiTestnet",
    "AdiTestnetAb",
    "BabylonGenesis",
    "BabylonTestnet5",
    "Base",
    "BaseGoerli",
    "BaseSepolia",
    "Berachain",
    "BerachainBArtio",
    "BerachainBepolia",
    "BesuTestnet",
    "Bitcoin",
    "BitcoinSignet",
    "BitcoinTestnet3",
    "BitcoinTestnet4",
    "BitcoinCash",
    "BitcoinCashTestnet",
    "Bob",
    "BobSepolia",
    "Bsc",
    "BscTestnet",
    "Canton",
    "CantonDevnet",
    "CantonTestnet",
    "Cardano",
    "CardanoPreprod",
    "Concordium",
    "ConcordiumTestnet",
    "Celo",
    "CeloAlfajores",
    "Codex",
    "CodexSepolia",
    "CosmosHub4",
    "CosmosIcsTestnet",
    "Dogecoin",
    "DogecoinTestnet",
    "Ethereum",
    "EthereumClassic",
    "EthereumClassicMordor",
    "EthereumGoerli",
    "EthereumSepolia",
    "EthereumHolesky",
    "EthereumHoodi",
    "FantomOpera",
    "FantomTestnet",
    "FlareC",
    "FlareCCoston2",
    "FlowEvm",
    "FlowEvmTestnet",
    "Hedera",
    "HederaTestnet",
    "Ink",
    "InkSepolia",
    "InternetComputer",
    "Ion",
    "IonTestnet",
    "Iota",
    "IotaTestnet",
    "IotaZodianet",
    "Kaspa",
    "KaspaTestnet11",
    "Kusama",
    "KusamaAssetHub",
    "Litecoin",
    "LitecoinTestnet",
    "Near",
    "NearTestnet",
    "Optimism",
    "OptimismGoerli",
    "OptimismSepolia",
    "Origyn",
    "Plasma",
    "PlasmaTestnet",
    "Plume",
    "PlumeSepolia",
    "Paseo",
    "PaseoAssetHub",
    "Polkadot",
    "PolkadotAssetHub",
    "Polygon",
    "PolygonAmoy",
    "PolygonMumbai",
    "Polymesh",
    "PolymeshTestnet",
    "Race",
    "RaceSepolia",
    "SeiAtlantic2",
    "SeiPacific1",
    "Solana",
    "SolanaDevnet",
    "Sonic",
    "SonicTestnet",
    "Starknet",
    "StarknetSepolia",
    "Stellar",
    "StellarTestnet",
    "Sui",
    "SuiTestnet",
    "Tezos",
    "TezosGhostnet",
    "TezosShadownet",
    "Tempo",
    "TempoAndantino",
    "TempoModerato",
    "Tsc",
    "TscTestnet1",
    "Ton",
    "TonTestnet",
    "Tron",
    "TronNile",
    "Westend",
    "WestendAssetHub",
    "Xdc",
    "XdcApothem",
    "XLayer",
    "XLayerSepolia",
    "XrpLedger",
    "XrpLedgerTestnet",
    "KeyECDSA",
    "KeyEdDSA",
    "KeyECDSAStark",
];

/// EVM networks and their native asset symbol.
const EVM_NATIVE: &[(&str, &str)] = &[
    ("ArbitrumOne", "ETH"),
    ("ArbitrumGoerli", "ETH"),
    ("ArbitrumSepolia", "ETH"),
    ("AvalancheC", "AVAX"),
    ("AvalancheCFuji", "AVAX"),
    ("Base", "ETH"),
    ("BaseGoerli", "ETH"),
    ("BaseSepolia", "ETH"),
    ("Berachain", "BERA"),
    ("BerachainBArtio", "BERA"),
    ("BerachainBepolia", "BERA"),
    ("Bob", "ETH"),
    ("BobSepolia", "ETH"),
    ("Bsc", "BNB"),
    ("BscTestnet", "BNB"),
    ("Celo", "CELO"),
    ("CeloAlfajores", "CELO"),
    ("Ethereum", "ETH"),
    ("EthereumClassic", "ETC"),
    ("EthereumClassicMordor", "ETC"),
    ("EthereumGoerli", "ETH"),
    ("EthereumSepolia", "ETH"),
    ("EthereumHolesky", "ETH"),
    ("EthereumHoodi", "ETH"),
    ("FantomOpera", "FTM"),
    ("FantomTestnet", "FTM"),
    ("FlareC", "FLR"),
    ("FlareCCoston2", "C2FLR"),
    ("FlowEvm", "FLOW"),
    ("FlowEvmTestnet", "FLOW"),
    ("Ink", "ETH"),
    ("InkSepolia", "ETH"),
    ("Optimism", "ETH"),
    ("OptimismGoerli", "ETH"),
    ("OptimismSepolia", "ETH"),
    ("Plasma", "XPL"),
    ("PlasmaTestnet", "XPL"),
    ("Plume", "PLUME"),
    ("PlumeSepolia", "PLUME"),
    ("Polygon", "POL"),
    ("PolygonAmoy", "POL"),
    ("PolygonMumbai", "MATIC"),
    ("Race", "ETH"),
    ("RaceSepolia", "ETH"),
    ("SeiAtlantic2", "SEI"),
    ("SeiPacific1", "SEI"),
    ("Sonic", "S"),
    ("SonicTestnet", "S"),
    ("Tsc", "TSC"),
    ("TscTestnet1", "TSC"),
    ("Xdc", "XDC"),
    ("XdcApothem", "XDC"),
    ("XLayer", "OKB"),
    ("XLayerSepolia", "OKB"),
];

pub fn is_known(network: &str) -> bool {
    ALL.contains(&network)
}

/// Native symbol of an EVM network, `None` for other families.
pub fn evm_native_symbol(network: &str) -> Option<&'static str> {
    EVM_NATIVE
        .iter()
        .find(|(name, _)| *name == network)
        .map(|(_, symbol)| *symbol)
}

pub fn is_evm(network: &str) -> bool {
    evm_native_symbol(network).is_some()
}

/// Native asset `(symbol, decimals)` for any network the emulator can hold a balance on.
pub fn native_asset(network: &str) -> (String, u32) {
    if let Some(symbol) = evm_native_symbol(network) {
        return (symbol.to_owned(), 18);
    }
    let (symbol, decimals) = match network {
        n if n.starts_with("Bitcoin") && !n.starts_with("BitcoinCash") => ("BTC", 8),
        n if n.starts_with("Solana") => ("SOL", 9),
        n if n.starts_with("Tron") => ("TRX", 6),
        _ => (network, 18),
    };
    (symbol.to_owned(), decimals)
}

/// The address of a new wallet on a Bitcoin or Solana network, from its public key: a segwit v0
/// (P2WPKH-shaped) bech32 address with the network's prefix (`bc`, `tb`), its program the first
/// 20 bytes of sha-256 of the key (the emulator signs nothing on chain: only the form matters);
/// on Solana, base58 of 32 bytes (sha-256 of the key). `None` for the other families.
pub fn derived_address(network: &str, public_key: &[u8]) -> Option<String> {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(public_key);
    if network.starts_with("Solana") {
        return Some(bs58::encode(digest).into_string());
    }
    let hrp = match network {
        "Bitcoin" => bech32::hrp::BC,
        "BitcoinTestnet3" | "BitcoinTestnet4" | "BitcoinSignet" => bech32::hrp::TB,
        _ => return None,
    };
    bech32::segwit::encode_v0(hrp, &digest[..20]).ok()
}

/// Whether `address` is a valid recipient on `network`: EVM `0x` + 40 hex digits; on Bitcoin
/// networks a segwit address (bech32 v0, bech32m v1+, checksum verified) with the network's
/// prefix or a base58check P2PKH/P2SH with its version bytes; on Solana base58 of 32 bytes (case
/// matters: a letter's case changed is another key, or none). `None`: a family the emulator does
/// not check.
pub fn is_valid_address(network: &str, address: &str) -> Option<bool> {
    if is_evm(network) {
        return Some(crate::keys::is_evm_address(address));
    }
    if network.starts_with("Solana") {
        return Some(
            bs58::decode(address)
                .into_vec()
                .is_ok_and(|bytes| bytes.len() == 32),
        );
    }
    let (hrp, versions) = match network {
        "Bitcoin" => (bech32::hrp::BC, [0x00, 0x05]),
        "BitcoinTestnet3" | "BitcoinTestnet4" | "BitcoinSignet" => (bech32::hrp::TB, [0x6f, 0xc4]),
        _ => return None,
    };
    if let Ok((found, _, _)) = bech32::segwit::decode(address) {
        return Some(found == hrp);
    }
    Some(
        bs58::decode(address)
            .with_check(None)
            .into_vec()
            .is_ok_and(|payload| payload.len() == 21 && versions.contains(&payload[0])),
    )
}

/// The fee of a native transfer on `network`, in its smallest unit: 21 000 gas at 1 gwei on EVM
/// networks, 1 410 satoshis on Bitcoin (141 vbytes at 10 sat/vB), 5 000 lamports on Solana (one
/// signature).
pub fn native_transfer_fee(network: &str) -> u128 {
    const GAS_PRICE_WEI: u128 = 1_000_000_000;
    match network {
        n if n.starts_with("Solana") => 5_000,
        n if n.starts_with("Bitcoin") && !n.starts_with("BitcoinCash") => 1_410,
        _ => 21_000 * GAS_PRICE_WEI,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_checked_per_family() {
        let sol = "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T";
        let tb = "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7";
        let bc = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
        assert_eq!(is_valid_address("SolanaDevnet", sol), Some(true));
        assert_eq!(is_valid_address("SolanaDevnet", &sol[..30]), Some(false));
        assert_eq!(is_valid_address("SolanaDevnet", tb), Some(false));
        assert_eq!(is_valid_address("BitcoinTestnet4", tb), Some(true));
        assert_eq!(is_valid_address("BitcoinTestnet4", bc), Some(false));
        assert_eq!(is_valid_address("Bitcoin", bc), Some(true));
        assert_eq!(
            is_valid_address("BitcoinTestnet4", "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn"),
            Some(true)
        );
        assert_eq!(
            is_valid_address("Bitcoin", "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn"),
            Some(false)
        );
        assert_eq!(is_valid_address("BitcoinTestnet4", sol), Some(false));
        assert_eq!(is_valid_address("Tron", sol), None);
        assert_eq!(native_transfer_fee("SolanaDevnet"), 5_000);
        assert_eq!(native_transfer_fee("BitcoinTestnet4"), 1_410);
        assert_eq!(native_transfer_fee("EthereumSepolia"), 21_000_000_000_000);
    }

    #[test]
    fn bitcoin_and_solana_wallets_get_addresses_of_their_network() {
        let key = [2u8; 33];
        let main = derived_address("Bitcoin", &key).unwrap();
        let test = derived_address("BitcoinTestnet4", &key).unwrap();
        assert!(
            main.starts_with("bc1q") && test.starts_with("tb1q"),
            "{main} {test}"
        );
        let (hrp, version, program) = bech32::segwit::decode(&test).unwrap();
        assert_eq!(
            (hrp.as_str(), version.to_u8(), program.len()),
            ("tb", 0, 20)
        );
        let sol = derived_address("SolanaDevnet", &key).unwrap();
        assert_eq!(bs58::decode(&sol).into_vec().unwrap().len(), 32);
        assert_eq!(derived_address("EthereumSepolia", &key), None);
        assert_eq!(derived_address("Tron", &key), None);
    }
}
