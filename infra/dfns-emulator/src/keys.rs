//! Key material: users' credential keys (generated at seed time, verified on every user action)
//! and wallets' secp256k1 keys (EVM address = last 20 bytes of keccak-256 of the public key).

use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
use k256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::LineEnding;
use rand::rngs::OsRng;
use sha3::{Digest, Keccak256};

/// Algorithm of a key credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Ed25519,
    EcdsaP256,
}

/// The public half of a user's key credential, used to verify clientData signatures.
#[derive(Debug, Clone)]
pub enum CredentialKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
    Secp256k1(k256::ecdsa::VerifyingKey),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("signature is not well formed for this key type")]
    Malformed,
    #[error("signature does not verify against the credential's public key")]
    Invalid,
}

impl CredentialKey {
    /// Verifies `signature` over `message` as Dfns does for a `Key` credential
    /// (docs/dfns.md §2.4): Ed25519 pure, ECDSA with SHA-256 and a DER signature. High-S ECDSA
    /// signatures are accepted (Dfns' low-S rule is unconfirmed, U4).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        match self {
            CredentialKey::Ed25519(key) => {
                let sig = ed25519_dalek::Signature::from_slice(signature)
                    .map_err(|_| SignatureError::Malformed)?;
                key.verify_strict(message, &sig)
                    .map_err(|_| SignatureError::Invalid)
            }
            CredentialKey::P256(key) => {
                use p256::ecdsa::signature::Verifier;
                let sig = p256::ecdsa::Signature::from_der(signature)
                    .map_err(|_| SignatureError::Malformed)?;
                let sig = sig.normalize_s().unwrap_or(sig);
                key.verify(message, &sig)
                    .map_err(|_| SignatureError::Invalid)
            }
            CredentialKey::Secp256k1(key) => {
                use k256::ecdsa::signature::Verifier;
                let sig = k256::ecdsa::Signature::from_der(signature)
                    .map_err(|_| SignatureError::Malformed)?;
                // k256 refuses high-S signatures; normalise first so both forms are accepted.
                let sig = sig.normalize_s().unwrap_or(sig);
                key.verify(message, &sig)
                    .map_err(|_| SignatureError::Invalid)
            }
        }
    }

    /// SPKI PEM of the public key, as Dfns shows it on credentials and audit logs.
    pub fn public_key_pem(&self) -> String {
        match self {
            CredentialKey::Ed25519(key) => key.to_public_key_pem(LineEnding::LF),
            CredentialKey::P256(key) => key.to_public_key_pem(LineEnding::LF),
            CredentialKey::Secp256k1(key) => {
                // k256 is built without the pkcs8 feature here; hex is enough for display.
                Ok(hex::encode(key.to_encoded_point(true).as_bytes()))
            }
        }
        .unwrap_or_default()
    }
}

/// A freshly generated credential key pair: the private key as PKCS#8 PEM (handed to the test or
/// platform through the bootstrap file) and the public key kept by the emulator.
pub fn generate_credential(algorithm: KeyAlgorithm) -> (String, CredentialKey) {
    match algorithm {
        KeyAlgorithm::Ed25519 => {
            let signing = ed25519_dalek::SigningKey::generate(&mut OsRng);
            // PKCS#8 v1 (RFC 8410 `PrivateKeyInfo`, no embedded public key): the v2 form that
            // ed25519-dalek writes by default is refused by OpenSSL 3.0, hence by Node's crypto
            // and so by `@dfns/sdk-keysigner`.
            let v1 = ed25519_dalek::pkcs8::KeypairBytes {
                secret_key: signing.to_bytes(),
                public_key: None,
            };
            let pem = v1
                .to_pkcs8_pem(LineEnding::LF)
                .expect("ed25519 key encodes as PKCS#8")
                .to_string();
            (pem, CredentialKey::Ed25519(signing.verifying_key()))
        }
        KeyAlgorithm::EcdsaP256 => {
            let secret = p256::SecretKey::random(&mut OsRng);
            let pem = secret
                .to_pkcs8_pem(LineEnding::LF)
                .expect("p256 key encodes as PKCS#8")
                .to_string();
            let verifying = p256::ecdsa::VerifyingKey::from(secret.public_key());
            (pem, CredentialKey::P256(verifying))
        }
    }
}

/// A wallet's signing key: compressed public key hex (Dfns' `signingKey.publicKey`) and, for EVM
/// networks, the lowercase `0x` address derived from it.
pub struct WalletKey {
    pub public_key_hex: String,
    pub evm_address: String,
}

pub fn generate_wallet_key() -> WalletKey {
    let secret = k256::SecretKey::random(&mut OsRng);
    let public = secret.public_key();
    let compressed = public.to_encoded_point(true);
    let uncompressed = public.to_encoded_point(false);
    WalletKey {
        public_key_hex: hex::encode(compressed.as_bytes()),
        // Skip the 0x04 SEC1 tag: the address hashes x ‖ y only.
        evm_address: evm_address_from_uncompressed(&uncompressed.as_bytes()[1..]),
    }
}

/// `0x` + lowercase hex of the last 20 bytes of keccak-256(x ‖ y).
pub fn evm_address_from_uncompressed(xy: &[u8]) -> String {
    let hash = Keccak256::digest(xy);
    format!("0x{}", hex::encode(&hash[12..]))
}

/// Is `s` a syntactically valid EVM address (`0x` + 40 hex digits, any case)?
pub fn is_evm_address(s: &str) -> bool {
    s.len() == 42 && s.starts_with("0x") && s[2..].chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evm_address_matches_a_known_vector() {
        // Private key 1: its address is well known.
        let secret = k256::SecretKey::from_slice(&{
            let mut b = [0u8; 32];
            b[31] = 1;
            b
        })
        .unwrap();
        let point = secret.public_key().to_encoded_point(false);
        assert_eq!(
            evm_address_from_uncompressed(&point.as_bytes()[1..]),
            "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf"
        );
    }

    #[test]
    fn ed25519_pem_is_pkcs8_v1_as_openssl_3_0_reads_it() {
        use base64::Engine;
        let (pem, _) = generate_credential(KeyAlgorithm::Ed25519);
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        // SEQUENCE(46) { INTEGER 0 (v1), AlgorithmIdentifier(Ed25519), OCTET STRING(seed) }
        assert_eq!(der.len(), 48);
        assert_eq!(
            &der[..12],
            &[
                0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70
            ]
        );
    }

    #[test]
    fn generated_credentials_verify_their_own_signatures_only() {
        use ed25519_dalek::pkcs8::DecodePrivateKey;
        let (pem, key) = generate_credential(KeyAlgorithm::Ed25519);
        let signing = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).unwrap();
        use ed25519_dalek::Signer;
        let sig = signing.sign(b"hello");
        assert_eq!(key.verify(b"hello", &sig.to_bytes()), Ok(()));
        assert_eq!(
            key.verify(b"hellO", &sig.to_bytes()),
            Err(SignatureError::Invalid)
        );

        let (pem, key) = generate_credential(KeyAlgorithm::EcdsaP256);
        let secret = p256::SecretKey::from_pkcs8_pem(&pem).unwrap();
        let signing = p256::ecdsa::SigningKey::from(secret);
        let sig: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(&signing, b"hello");
        assert_eq!(key.verify(b"hello", sig.to_der().as_bytes()), Ok(()));
        assert_eq!(
            key.verify(b"hello", &sig.to_bytes()),
            Err(SignatureError::Malformed),
            "raw r||s must be refused: Dfns wants DER"
        );
    }
}
