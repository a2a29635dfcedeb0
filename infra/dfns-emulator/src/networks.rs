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

#[cfg(test)]
mod tests {
    use super::*;

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
