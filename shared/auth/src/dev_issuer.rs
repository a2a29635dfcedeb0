//! A development OIDC issuer for local runs and tests (feature `dev-issuer`).
//!
//! It holds one signing key, returns the JSON an issuer publishes (JWKS and OpenID discovery
//! document) for whoever serves them over HTTP, and mints tokens shaped like Cognito's, Auth0's or a
//! plain OIDC issuer's. It serves nothing itself.
//!
//! For a local stack: serve [`DevIssuer::jwks`] at `{issuer}/.well-known/jwks.json` and
//! [`DevIssuer::discovery_document`] at `{issuer}/.well-known/openid-configuration`, point
//! `AUTH_ISSUER` at the issuer (and `AUTH_JWKS_URL` too when the `iss` is not where the keys are
//! served, as with Cognito-shaped issuers), and save [`DevIssuer::private_key_pem`] so another
//! process (`cargo xtask token`) can mint with the same key via [`DevIssuer::from_private_key_pem`].
//!
//! ```
//! use auth::dev_issuer::{DevIssuer, SigningAlgorithm, TokenSpec};
//! let issuer = DevIssuer::generate("http://127.0.0.1:4000", SigningAlgorithm::Es256).unwrap();
//! let jwks = issuer.jwks(); // serve at {issuer}/.well-known/jwks.json
//! let token = issuer.mint(&TokenSpec::oidc("alice", "platform-api", "roles").role("operators")).unwrap();
//! # let _ = (jwks, token);
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};

use crate::settings::default_jwks_url;

pub mod code_flow;

/// Signature algorithm of a development issuer's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlgorithm {
    /// RSA 2048, what Cognito and Auth0 use.
    Rs256,
    /// ECDSA P-256.
    Es256,
}

/// Why a development issuer could not be built or could not sign.
#[derive(Debug, thiserror::Error)]
pub enum DevIssuerError {
    /// The crypto library could not generate a key.
    #[error("key generation failed")]
    KeyGeneration,
    /// A saved key could not be loaded.
    #[error("not a PKCS#8 RSA or P-256 private key: {0}")]
    InvalidKey(String),
    /// A token could not be signed.
    #[error("signing failed: {0}")]
    Signing(String),
}

/// An issuer with its own key pair.
pub struct DevIssuer {
    issuer: String,
    algorithm: Algorithm,
    key_id: String,
    encoding_key: EncodingKey,
    public_jwk: Value,
    private_key_pem: String,
}

impl std::fmt::Debug for DevIssuer {
    // Never print the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer")
            .field("issuer", &self.issuer)
            .field("algorithm", &self.algorithm)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl DevIssuer {
    /// A new issuer `issuer` (the exact `iss` its tokens carry) with a fresh key pair.
    pub fn generate(
        issuer: impl Into<String>,
        algorithm: SigningAlgorithm,
    ) -> Result<Self, DevIssuerError> {
        let pkcs8 = match algorithm {
            SigningAlgorithm::Rs256 => {
                let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| DevIssuerError::KeyGeneration)?;
                let der = pair.as_der().map_err(|_| DevIssuerError::KeyGeneration)?;
                der.as_ref().to_vec()
            }
            SigningAlgorithm::Es256 => {
                let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(
                    &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                )
                .map_err(|_| DevIssuerError::KeyGeneration)?;
                let der = pair
                    .to_pkcs8v1()
                    .map_err(|_| DevIssuerError::KeyGeneration)?;
                der.as_ref().to_vec()
            }
        };
        Self::from_private_key_pem(issuer, &pkcs8_pem(&pkcs8))
    }

    /// A Cognito-shaped issuer: `iss` is `https://cognito-idp.<region>.amazonaws.com/<pool>`.
    /// Its keys are not served there, so verifiers point `AUTH_JWKS_URL` at wherever
    /// [`DevIssuer::jwks`] is served.
    pub fn cognito(
        region: &str,
        user_pool_id: &str,
        algorithm: SigningAlgorithm,
    ) -> Result<Self, DevIssuerError> {
        Self::generate(
            format!("https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"),
            algorithm,
        )
    }

    /// An Auth0-shaped issuer: `iss` is `https://<tenant domain>/`, trailing slash included.
    pub fn auth0(tenant_domain: &str, algorithm: SigningAlgorithm) -> Result<Self, DevIssuerError> {
        Self::generate(format!("https://{tenant_domain}/"), algorithm)
    }

    /// An issuer signing with a saved key ([`DevIssuer::private_key_pem`]), so separate processes
    /// (the local stack and `cargo xtask token`) mint and verify with the same key.
    pub fn from_private_key_pem(
        issuer: impl Into<String>,
        pem: &str,
    ) -> Result<Self, DevIssuerError> {
        let (algorithm, encoding_key) = match EncodingKey::from_ec_pem(pem.as_bytes()) {
            Ok(key) => (Algorithm::ES256, key),
            Err(_) => (
                Algorithm::RS256,
                EncodingKey::from_rsa_pem(pem.as_bytes())
                    .map_err(|e| DevIssuerError::InvalidKey(e.to_string()))?,
            ),
        };
        let mut jwk = Jwk::from_encoding_key(&encoding_key, algorithm)
            .map_err(|e| DevIssuerError::InvalidKey(e.to_string()))?;
        // RFC 7638 thumbprint: stable for a key, different for the next one.
        let key_id = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| DevIssuerError::InvalidKey(e.to_string()))?;
        jwk.common.key_id = Some(key_id.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let public_jwk =
            serde_json::to_value(&jwk).map_err(|e| DevIssuerError::InvalidKey(e.to_string()))?;
        Ok(DevIssuer {
            issuer: issuer.into(),
            algorithm,
            key_id,
            encoding_key,
            public_jwk,
            private_key_pem: pem.to_owned(),
        })
    }

    /// The `iss` of this issuer's tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `kid` of this issuer's key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The algorithm this issuer signs with.
    pub fn algorithm(&self) -> SigningAlgorithm {
        match self.algorithm {
            Algorithm::ES256 => SigningAlgorithm::Es256,
            _ => SigningAlgorithm::Rs256,
        }
    }

    /// The private key, PKCS#8 PEM, for [`DevIssuer::from_private_key_pem`].
    pub fn private_key_pem(&self) -> &str {
        &self.private_key_pem
    }

    /// The public key as one JWK (`kty`, `kid`, `alg`, `use`, and `n`/`e` or `crv`/`x`/`y`).
    pub fn public_jwk(&self) -> Value {
        self.public_jwk.clone()
    }

    /// The JWKS document: `{"keys": [<public jwk>]}`.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.public_jwk()] })
    }

    /// The OpenID discovery document (`{issuer}/.well-known/openid-configuration`), pointing at
    /// `{issuer}/.well-known/jwks.json` and at the endpoints of the authorization code flow with
    /// PKCE ([`code_flow`]) under `{issuer}/oauth2/`, where whoever serves the issuer serves them.
    pub fn discovery_document(&self) -> Value {
        let base = self.issuer.trim_end_matches('/');
        json!({
            "issuer": self.issuer,
            "jwks_uri": default_jwks_url(&self.issuer),
            "authorization_endpoint": format!("{base}/oauth2/authorize"),
            "token_endpoint": format!("{base}/oauth2/token"),
            "end_session_endpoint": format!("{base}/oauth2/logout"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            // A public client (a single-page app): PKCE instead of a secret.
            "token_endpoint_auth_methods_supported": ["none"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.public_jwk["alg"]],
            "scopes_supported": ["openid", "profile"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "auth_time", "nonce", "preferred_username"],
        })
    }

    /// A signed token for `spec`, with this issuer's `iss` and `kid`.
    pub fn mint(&self, spec: &TokenSpec) -> Result<String, DevIssuerError> {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.key_id.clone());
        let claims = spec.claims(&self.issuer);
        jsonwebtoken::encode(&header, &claims, &self.encoding_key)
            .map_err(|e| DevIssuerError::Signing(e.to_string()))
    }
}

fn pkcs8_pem(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

/// Where the audience and the roles go in a token, per identity provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenShape {
    /// Cognito access token: no `aud`; `client_id`, `token_use: "access"`, `scope`, `username`,
    /// roles as groups in `cognito:groups`.
    CognitoAccess {
        /// App client id.
        client_id: String,
    },
    /// Cognito ID token: `aud` = app client id, `token_use: "id"`, `cognito:username`, groups in
    /// `cognito:groups`.
    CognitoId {
        /// App client id.
        client_id: String,
    },
    /// Auth0 access token: `aud` an array (API identifier, then `<iss>userinfo`), `azp`, `scope`,
    /// roles in a namespaced claim such as `https://platform.example/roles`.
    Auth0 {
        /// API identifier.
        audience: String,
        /// Namespaced claim holding roles.
        roles_claim: String,
    },
    /// Any OIDC issuer: `aud` a string, roles as an array in `roles_claim`.
    Oidc {
        /// The `aud` value.
        audience: String,
        /// Claim holding roles.
        roles_claim: String,
    },
}

/// What to put in a minted token. Times are Unix seconds; defaults: issued now, valid one hour,
/// no `nbf`.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenSpec {
    subject: String,
    roles: Vec<String>,
    shape: TokenShape,
    issued_at: Option<i64>,
    expires_at: Option<i64>,
    not_before: Option<i64>,
    extra: Map<String, Value>,
}

impl TokenSpec {
    /// A token for `subject` (`sub`) shaped as `shape`.
    pub fn new(subject: impl Into<String>, shape: TokenShape) -> Self {
        TokenSpec {
            subject: subject.into(),
            roles: Vec::new(),
            shape,
            issued_at: None,
            expires_at: None,
            not_before: None,
            extra: Map::new(),
        }
    }

    /// Cognito access token for app client `client_id`.
    pub fn cognito_access(subject: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self::new(
            subject,
            TokenShape::CognitoAccess {
                client_id: client_id.into(),
            },
        )
    }

    /// Auth0 access token for API `audience`, roles in `roles_claim`.
    pub fn auth0(
        subject: impl Into<String>,
        audience: impl Into<String>,
        roles_claim: impl Into<String>,
    ) -> Self {
        Self::new(
            subject,
            TokenShape::Auth0 {
                audience: audience.into(),
                roles_claim: roles_claim.into(),
            },
        )
    }

    /// Plain OIDC token for `audience`, roles in `roles_claim`.
    pub fn oidc(
        subject: impl Into<String>,
        audience: impl Into<String>,
        roles_claim: impl Into<String>,
    ) -> Self {
        Self::new(
            subject,
            TokenShape::Oidc {
                audience: audience.into(),
                roles_claim: roles_claim.into(),
            },
        )
    }

    /// Adds a role (Cognito group, Auth0 role).
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.roles.push(role.into());
        self
    }

    /// Sets `iat` (default: now).
    pub fn issued_at(mut self, unix_seconds: i64) -> Self {
        self.issued_at = Some(unix_seconds);
        self
    }

    /// Sets `exp` (default: `iat` + one hour).
    pub fn expires_at(mut self, unix_seconds: i64) -> Self {
        self.expires_at = Some(unix_seconds);
        self
    }

    /// Sets `nbf` (default: absent).
    pub fn not_before(mut self, unix_seconds: i64) -> Self {
        self.not_before = Some(unix_seconds);
        self
    }

    /// Sets any claim, overriding what the shape put there (`iss` and `aud` included).
    pub fn claim(mut self, name: impl Into<String>, value: Value) -> Self {
        self.extra.insert(name.into(), value);
        self
    }

    /// The claims this spec produces for issuer `iss`.
    pub fn claims(&self, iss: &str) -> Map<String, Value> {
        let iat = self.issued_at.unwrap_or_else(now);
        let exp = self.expires_at.unwrap_or(iat + 3600);
        let jti = ulid_like(iat);
        let mut claims = Map::new();
        claims.insert("sub".into(), json!(self.subject));
        claims.insert("iss".into(), json!(iss));
        claims.insert("iat".into(), json!(iat));
        claims.insert("exp".into(), json!(exp));
        claims.insert("jti".into(), json!(jti));
        if let Some(nbf) = self.not_before {
            claims.insert("nbf".into(), json!(nbf));
        }
        match &self.shape {
            TokenShape::CognitoAccess { client_id } => {
                claims.insert("client_id".into(), json!(client_id));
                claims.insert("token_use".into(), json!("access"));
                claims.insert("scope".into(), json!("aws.cognito.signin.user.admin"));
                claims.insert("auth_time".into(), json!(iat));
                claims.insert("username".into(), json!(self.subject));
                claims.insert("version".into(), json!(2));
                if !self.roles.is_empty() {
                    claims.insert("cognito:groups".into(), json!(self.roles));
                }
            }
            TokenShape::CognitoId { client_id } => {
                claims.insert("aud".into(), json!(client_id));
                claims.insert("token_use".into(), json!("id"));
                claims.insert("auth_time".into(), json!(iat));
                claims.insert("cognito:username".into(), json!(self.subject));
                if !self.roles.is_empty() {
                    claims.insert("cognito:groups".into(), json!(self.roles));
                }
            }
            TokenShape::Auth0 {
                audience,
                roles_claim,
            } => {
                claims.insert(
                    "aud".into(),
                    json!([audience, format!("{}/userinfo", iss.trim_end_matches('/'))]),
                );
                claims.insert("azp".into(), json!("dev-client"));
                claims.insert("scope".into(), json!("openid profile email"));
                claims.insert(roles_claim.clone(), json!(self.roles));
            }
            TokenShape::Oidc {
                audience,
                roles_claim,
            } => {
                claims.insert("aud".into(), json!(audience));
                if !self.roles.is_empty() {
                    claims.insert(roles_claim.clone(), json!(self.roles));
                }
            }
        }
        for (name, value) in &self.extra {
            claims.insert(name.clone(), value.clone());
        }
        claims
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A unique token id without another dependency: time plus 64 random bits.
fn ulid_like(iat: i64) -> String {
    let mut random = [0u8; 8];
    aws_lc_rs::rand::fill(&mut random).expect("system randomness");
    format!("{iat:x}-{}", u64::from_be_bytes(random))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_key_reloads_to_the_same_issuer_key() {
        for alg in [SigningAlgorithm::Rs256, SigningAlgorithm::Es256] {
            let issuer = DevIssuer::generate("http://127.0.0.1:1", alg).unwrap();
            let again =
                DevIssuer::from_private_key_pem("http://127.0.0.1:1", issuer.private_key_pem())
                    .unwrap();
            assert_eq!(again.key_id(), issuer.key_id());
            assert_eq!(again.public_jwk(), issuer.public_jwk());
            assert_eq!(again.algorithm(), alg);
            let other = DevIssuer::generate("http://127.0.0.1:1", alg).unwrap();
            assert_ne!(other.key_id(), issuer.key_id());
        }
    }

    #[test]
    fn jwks_names_key_type_algorithm_and_use() {
        let rsa = DevIssuer::generate("http://i", SigningAlgorithm::Rs256).unwrap();
        let jwk = &rsa.jwks()["keys"][0];
        assert_eq!(
            (
                jwk["kty"].as_str(),
                jwk["alg"].as_str(),
                jwk["use"].as_str()
            ),
            (Some("RSA"), Some("RS256"), Some("sig"))
        );
        assert_eq!(jwk["e"], "AQAB");
        assert!(jwk["n"].as_str().unwrap().len() > 300, "2048-bit modulus");
        assert!(jwk.get("d").is_none(), "no private part");
        let ec = DevIssuer::generate("http://i", SigningAlgorithm::Es256).unwrap();
        let jwk = &ec.jwks()["keys"][0];
        assert_eq!(
            (
                jwk["kty"].as_str(),
                jwk["alg"].as_str(),
                jwk["crv"].as_str()
            ),
            (Some("EC"), Some("ES256"), Some("P-256"))
        );
        assert!(jwk.get("d").is_none(), "no private part");
    }

    #[test]
    fn discovery_document_points_at_the_jwks() {
        let issuer = DevIssuer::auth0("tenant.eu.auth0.com", SigningAlgorithm::Rs256).unwrap();
        let doc = issuer.discovery_document();
        assert_eq!(doc["issuer"], "https://tenant.eu.auth0.com/");
        assert_eq!(
            doc["jwks_uri"],
            "https://tenant.eu.auth0.com/.well-known/jwks.json"
        );
        assert_eq!(doc["id_token_signing_alg_values_supported"][0], "RS256");
        assert_eq!(
            doc["authorization_endpoint"],
            "https://tenant.eu.auth0.com/oauth2/authorize"
        );
        assert_eq!(
            doc["token_endpoint"],
            "https://tenant.eu.auth0.com/oauth2/token"
        );
        assert_eq!(
            doc["end_session_endpoint"],
            "https://tenant.eu.auth0.com/oauth2/logout"
        );
        assert_eq!(doc["response_types_supported"], json!(["code"]));
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(
            doc["grant_types_supported"],
            json!(["authorization_code", "refresh_token"])
        );
    }

    #[test]
    fn shapes_put_audience_and_roles_where_each_provider_does() {
        let cognito = TokenSpec::cognito_access("alice", "app123")
            .role("operators")
            .claims("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Pool");
        assert!(cognito.get("aud").is_none());
        assert_eq!(cognito["client_id"], "app123");
        assert_eq!(cognito["token_use"], "access");
        assert_eq!(cognito["cognito:groups"], json!(["operators"]));

        let auth0 = TokenSpec::auth0(
            "auth0|bob",
            "https://api.platform.example",
            "https://platform.example/roles",
        )
        .claims("https://tenant.auth0.com/");
        assert_eq!(
            auth0["aud"],
            json!([
                "https://api.platform.example",
                "https://tenant.auth0.com/userinfo"
            ])
        );
        assert_eq!(auth0["https://platform.example/roles"], json!([]));

        let overridden = TokenSpec::oidc("carol", "api", "roles")
            .claim("iss", json!("https://elsewhere"))
            .claims("https://issuer");
        assert_eq!(overridden["iss"], "https://elsewhere");
    }
}
