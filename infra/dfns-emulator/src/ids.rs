//! Dfns-shaped identifiers: prefix + three dash-separated lowercase base36 groups
//! (`xfr-20g4k-nsdpo-mg6arrifgvid4orn`, docs/dfns.md §0).

use rand::Rng;

const BASE36: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

fn base36(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| BASE36[rng.gen_range(0..BASE36.len())] as char)
        .collect()
}

/// A fresh id such as `wa-5pfuu-9euek-h0odgb6snva8ph3k` for `prefix = "wa"`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}-{}-{}", base36(5), base36(5), base36(16))
}

/// Random bytes as unpadded base64url (challenges, opaque tokens, credential ids).
pub fn random_token(bytes: usize) -> String {
    use base64::Engine;
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill(buf.as_mut_slice());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// A random transaction id shaped as `network` writes them: on Bitcoin a txid (64 lowercase hex,
/// no prefix); on Solana a signature (base58 of 64 bytes); elsewhere an EVM tx hash (`0x` + 64
/// lowercase hex).
pub fn tx_hash(network: &str) -> String {
    let mut buf = [0u8; 64];
    rand::thread_rng().fill(&mut buf[..]);
    if network.starts_with("Solana") {
        bs58::encode(buf).into_string()
    } else if network.starts_with("Bitcoin") && !network.starts_with("BitcoinCash") {
        hex::encode(&buf[..32])
    } else {
        format!("0x{}", hex::encode(&buf[..32]))
    }
}

/// A plausible sender on `network` for a deposit that names none (no key behind it).
pub fn external_sender(network: &str) -> String {
    match network {
        n if n.starts_with("Solana") => "DeadbeefDeadbeefDeadbeefDeadbeefDeadbeef1111".to_owned(),
        "Bitcoin" => "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4".to_owned(),
        n if n.starts_with("Bitcoin") && !n.starts_with("BitcoinCash") => {
            "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx".to_owned()
        }
        _ => "0x000000000000000000000000000000000000dead".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_the_documented_transfer_pattern() {
        let id = new_id("xfr");
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(parts.len(), 4, "{id}");
        assert_eq!(parts[0], "xfr");
        assert_eq!(parts[1].len(), 5);
        assert_eq!(parts[2].len(), 5);
        assert_eq!(parts[3].len(), 16);
        assert!(
            id[4..]
                .chars()
                .all(|c| c == '-' || c.is_ascii_digit() || c.is_ascii_lowercase())
        );
    }

    #[test]
    fn transaction_ids_and_senders_are_shaped_per_network() {
        let evm = tx_hash("EthereumSepolia");
        assert!(evm.starts_with("0x") && evm.len() == 66, "{evm}");
        let btc = tx_hash("BitcoinTestnet4");
        assert!(
            btc.len() == 64
                && btc
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "{btc}"
        );
        let sol = tx_hash("SolanaDevnet");
        assert_eq!(bs58::decode(&sol).into_vec().unwrap().len(), 64, "{sol}");
        for network in [
            "Bitcoin",
            "BitcoinTestnet4",
            "SolanaDevnet",
            "EthereumSepolia",
        ] {
            assert_eq!(
                crate::networks::is_valid_address(network, &external_sender(network)),
                Some(true),
                "{network}"
            );
        }
    }
}
