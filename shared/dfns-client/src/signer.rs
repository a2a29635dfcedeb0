//! User-action signers (docs/dfns.md §2.4): sign the clientData bytes with the credential's key.
//!
//! [`UserActionSigner`] is object safe and async so that a signer backed by a remote key (AWS KMS)
//! can be added beside the in-process [`KeySigner`] without touching the client.

use std::fmt;

use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};

/// Why a signature could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// The PEM is not a PKCS#8 Ed25519 or ECDSA P-256 private key.
    #[error("unsupported or malformed private key: {0}")]
    InvalidKey(String),
    /// Dfns did not list this signer's credential among the ones allowed for the user.
    #[error("credential {cred_id} is not among the credentials Dfns allows for this user")]
    CredentialNotAllowed { cred_id: String },
    /// A remote signer (KMS) failed.
    #[error("signer backend failed: {0}")]
    Backend(String),
}

/// Signs user-action challenges for one Dfns key credential.
pub trait UserActionSigner: Send + Sync + fmt::Debug {
    /// The credential id Dfns gave this key (`credId`).
    fn credential_id(&self) -> &str;

    /// Signs `client_data` (the exact bytes that are sent base64url-encoded as `clientData`).
    /// Returns the signature bytes in Dfns' format: 64 raw bytes for Ed25519, ASN.1 DER for ECDSA.
    fn sign<'a>(&'a self, client_data: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, SignerError>>;
}

/// The algorithm of a [`KeySigner`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Ed25519,
    /// ECDSA over P-256 with SHA-256, DER encoded, low-S.
    EcdsaP256,
}

enum Key {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
}

/// An in-process signer over a PKCS#8 private key (Ed25519 or ECDSA P-256).
pub struct KeySigner {
    cred_id: String,
    key: Key,
}

impl fmt::Debug for KeySigner {
    // Never the key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySigner")
            .field("cred_id", &self.cred_id)
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl KeySigner {
    /// Loads a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), detecting Ed25519 or P-256.
    pub fn from_pkcs8_pem(
        cred_id: impl Into<String>,
        pem: &SecretString,
    ) -> Result<Self, SignerError> {
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        let pem = pem.expose_secret();
        let key = if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            Key::Ed25519(key)
        } else {
            match <p256::ecdsa::SigningKey as p256::pkcs8::DecodePrivateKey>::from_pkcs8_pem(pem) {
                Ok(key) => Key::P256(key),
                // The parser's message says what is wrong with the structure, never the key bytes.
                Err(e) => {
                    return Err(SignerError::InvalidKey(format!(
                        "expected a PKCS#8 Ed25519 or P-256 private key: {e}"
                    )));
                }
            }
        };
        Ok(Self {
            cred_id: cred_id.into(),
            key,
        })
    }

    /// Which algorithm the loaded key uses.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self.key {
            Key::Ed25519(_) => KeyAlgorithm::Ed25519,
            Key::P256(_) => KeyAlgorithm::EcdsaP256,
        }
    }

    /// The public key as SPKI PEM, as registered with Dfns.
    pub fn public_key_pem(&self) -> String {
        use p256::pkcs8::{EncodePublicKey as _, LineEnding};
        match &self.key {
            Key::Ed25519(key) => ed25519_dalek::pkcs8::EncodePublicKey::to_public_key_pem(
                &key.verifying_key(),
                ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF,
            )
            .expect("an Ed25519 public key always encodes"),
            Key::P256(key) => key
                .verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("a P-256 public key always encodes"),
        }
    }

    fn sign_now(&self, message: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer as _;
        match &self.key {
            Key::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
            Key::P256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                // Normalise to low-S: some verifiers reject the high-S twin (docs/dfns.md U4).
                let signature = signature.normalize_s().unwrap_or(signature);
                signature.to_der().as_bytes().to_vec()
            }
        }
    }
}

impl UserActionSigner for KeySigner {
    fn credential_id(&self) -> &str {
        &self.cred_id
    }

    fn sign<'a>(&'a self, client_data: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, SignerError>> {
        Box::pin(async move { Ok(self.sign_now(client_data)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier as _;
    use p256::elliptic_curve::PrimeField as _;
    use rand::rngs::OsRng;

    fn p256_pem() -> (SecretString, p256::ecdsa::VerifyingKey) {
        use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
        let key = p256::ecdsa::SigningKey::random(&mut OsRng);
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        (SecretString::from(pem), *key.verifying_key())
    }

    fn ed25519_pem() -> (SecretString, ed25519_dalek::VerifyingKey) {
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;
        let key = ed25519_dalek::SigningKey::generate(&mut OsRng);
        let pem = key
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .unwrap()
            .to_string();
        (SecretString::from(pem), key.verifying_key())
    }

    #[tokio::test]
    async fn p256_signature_is_der_and_verifies_with_the_public_key() {
        let (pem, public) = p256_pem();
        let signer = KeySigner::from_pkcs8_pem("cred-1", &pem).unwrap();
        assert_eq!(signer.algorithm(), KeyAlgorithm::EcdsaP256);
        let message = br#"{"type":"key.get","challenge":"abc"}"#;
        let der = signer.sign(message).await.unwrap();
        assert_eq!(der[0], 0x30, "DER SEQUENCE");
        let signature = p256::ecdsa::Signature::from_der(&der).unwrap();
        public.verify(message, &signature).unwrap();
        assert!(public.verify(b"something else", &signature).is_err());
    }

    #[tokio::test]
    async fn p256_signatures_are_always_low_s() {
        let (pem, _) = p256_pem();
        let signer = KeySigner::from_pkcs8_pem("cred-1", &pem).unwrap();
        // n/2 for P-256; each signature has a one-in-two chance of being high-S before
        // normalisation, so 64 messages would catch a missing normalisation.
        let half_order = p256::Scalar::from_str_vartime(
            "57896044605178124381348723474703786764998477612067880171211129530534256022184",
        )
        .unwrap();
        for i in 0..64u32 {
            let der = signer.sign(&i.to_be_bytes()).await.unwrap();
            let signature = p256::ecdsa::Signature::from_der(&der).unwrap();
            assert!(signature.normalize_s().is_none(), "signature {i} is high-S");
            assert!(*signature.s() <= half_order);
        }
    }

    #[tokio::test]
    async fn ed25519_signature_is_raw_64_bytes_and_verifies() {
        let (pem, public) = ed25519_pem();
        let signer = KeySigner::from_pkcs8_pem("cred-2", &pem).unwrap();
        assert_eq!(signer.algorithm(), KeyAlgorithm::Ed25519);
        assert_eq!(signer.credential_id(), "cred-2");
        let message = br#"{"type":"key.get","challenge":"xyz"}"#;
        let raw = signer.sign(message).await.unwrap();
        assert_eq!(raw.len(), 64);
        let signature = ed25519_dalek::Signature::from_slice(&raw).unwrap();
        public.verify_strict(message, &signature).unwrap();
    }

    #[test]
    fn public_key_pem_round_trips() {
        let (pem, public) = p256_pem();
        let signer = KeySigner::from_pkcs8_pem("c", &pem).unwrap();
        let parsed =
            <p256::ecdsa::VerifyingKey as p256::pkcs8::DecodePublicKey>::from_public_key_pem(
                &signer.public_key_pem(),
            )
            .unwrap();
        assert_eq!(parsed, public);
    }

    #[test]
    fn rejects_garbage_and_never_prints_the_key() {
        let err = KeySigner::from_pkcs8_pem("c", &SecretString::from("not a pem".to_owned()))
            .unwrap_err();
        assert!(matches!(err, SignerError::InvalidKey(_)));
        let (pem, _) = ed25519_pem();
        let signer = KeySigner::from_pkcs8_pem("c", &pem).unwrap();
        let debug = format!("{signer:?}");
        assert!(!debug.contains("PRIVATE"), "{debug}");
        assert!(debug.contains("Ed25519"));
    }
}
