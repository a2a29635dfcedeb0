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

/// Random 32-byte hash rendered as an EVM tx hash (`0x` + 64 lowercase hex).
pub fn tx_hash() -> String {
    let mut buf = [0u8; 32];
    rand::thread_rng().fill(&mut buf);
    format!("0x{}", hex::encode(buf))
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
}
