use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::jwks::{KeyStore, algorithm_name};
use crate::principal::{gateway_claim_holds_role, role_from_claim};
use crate::settings::same_issuer;
use crate::{AuthError, AuthSettings, Principal, Role, TokenUse};

/// Larger than any real ID or access token; refusing bigger input bounds the work a caller can cause.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Verifies callers' tokens. Build one per container (in `main`) and share it: it holds the
/// issuer's keys, fetched on the first verification and cached.
pub struct Authenticator {
    settings: AuthSettings,
    keys: KeyStore,
}

impl Authenticator {
    /// An authenticator with its own HTTP client, built on the first key fetch. Makes no request:
    /// keys are fetched on first use, so a cold start does not pay for them (nor for the client's
    /// root certificates) unless a request needs them.
    pub fn new(settings: AuthSettings) -> Self {
        Self::build(settings, None)
    }

    /// An authenticator reusing `http` (and its connection pool) for key fetches.
    pub fn with_http_client(settings: AuthSettings, http: reqwest::Client) -> Self {
        Self::build(settings, Some(http))
    }

    fn build(settings: AuthSettings, http: Option<reqwest::Client>) -> Self {
        let keys = KeyStore::new(
            settings.jwks_url.clone(),
            http,
            settings.jwks_timeout,
            settings.jwks_refetch_cooldown,
            settings.jwks_max_age,
        );
        Authenticator { settings, keys }
    }

    /// The settings this authenticator was built with.
    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// The caller of an HTTP request.
    ///
    /// When [`AuthSettings::trust_gateway_claims`] is on and API Gateway's JWT authorizer has put
    /// claims in the request context (`requestContext.authorizer.jwt.claims`), those are used: the
    /// gateway already verified the token. Otherwise the `Authorization: Bearer` header is verified
    /// here. Gateway claims are ignored when the setting is off, since without a gateway in front
    /// anyone could have written them.
    pub async fn authenticate(
        &self,
        headers: &http::HeaderMap,
        gateway_claims: Option<&HashMap<String, String>>,
    ) -> Result<Principal, AuthError> {
        let result = match gateway_claims {
            Some(claims) if self.settings.trust_gateway_claims && !claims.is_empty() => {
                self.principal_from_gateway_claims(claims)
            }
            _ => {
                let authorization = headers
                    .get(http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                self.verify_bearer(authorization).await
            }
        };
        if let Err(error) = &result {
            tracing::debug!(%error, "request not authenticated");
        }
        result
    }

    /// Verifies the token in an `Authorization` header value (`Bearer <token>`).
    pub async fn verify_bearer(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let token = authorization
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|token| !token.is_empty())
            .ok_or(AuthError::MissingToken)?;
        self.verify_token(token).await
    }

    /// Verifies a compact JWT: algorithm, signature against the issuer's published key, `exp`,
    /// `nbf`, `iss`, `aud` (or Cognito's `client_id`), and `token_use` when configured.
    pub async fn verify_token(&self, token: &str) -> Result<Principal, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Malformed("token too large"));
        }
        let header = parse_header(token)?;
        let algorithm = match header.alg.as_str() {
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            other => return Err(AuthError::DisallowedAlgorithm(shorten(other))),
        };

        let key = self.keys.key_for(header.kid.as_deref()).await?;
        // The key decides the algorithm, never the token: this is what stops an RSA public key
        // being used as an HMAC secret or a token claiming another algorithm for a known key.
        if key.algorithm != algorithm {
            return Err(AuthError::DisallowedAlgorithm(format!(
                "{} token for an {} key",
                algorithm_name(algorithm),
                algorithm_name(key.algorithm)
            )));
        }

        let mut validation = Validation::new(algorithm);
        validation.leeway = self.settings.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // Checked below: Cognito access tokens carry `client_id` instead of `aud`, and issuers
        // compare up to a trailing slash.
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp"]);

        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| map_jwt_error(e.kind()))?
            .claims;

        match claims.get("iss").and_then(Value::as_str) {
            Some(iss) if same_issuer(iss, &self.settings.issuer) => {}
            _ => return Err(AuthError::WrongIssuer),
        }
        if !self.audience_matches(&claims) {
            return Err(AuthError::WrongAudience);
        }
        check_token_use(
            self.settings.token_use,
            claims.get("token_use").and_then(Value::as_str),
        )?;
        let subject = match claims.get("sub").and_then(Value::as_str) {
            Some(sub) if !sub.is_empty() => sub.to_owned(),
            _ => return Err(AuthError::Malformed("no subject")),
        };
        let role = role_from_claim(
            claims.get(&self.settings.role_claim),
            &self.settings.operator_role,
        );
        Ok(Principal { subject, role })
    }

    /// The caller from claims API Gateway's JWT authorizer verified (signature, `exp`, `aud`).
    ///
    /// The gateway hands claims over as strings (arrays flattened to `[a b]`). `iss` is still
    /// compared with the configured issuer, so a gateway wired to another issuer is caught, and
    /// `token_use` is checked when configured: the gateway accepts Cognito ID tokens too.
    /// Callers normally go through [`Authenticator::authenticate`], which uses this only when
    /// gateway claims are trusted by configuration.
    pub fn principal_from_gateway_claims(
        &self,
        claims: &HashMap<String, String>,
    ) -> Result<Principal, AuthError> {
        if let Some(iss) = claims.get("iss") {
            if !same_issuer(iss, &self.settings.issuer) {
                return Err(AuthError::WrongIssuer);
            }
        }
        check_token_use(
            self.settings.token_use,
            claims.get("token_use").map(String::as_str),
        )?;
        let subject = claims
            .get("sub")
            .filter(|sub| !sub.is_empty())
            .ok_or(AuthError::IncompleteGatewayClaims("no sub"))?
            .clone();
        let operator = claims
            .get(&self.settings.role_claim)
            .is_some_and(|value| gateway_claim_holds_role(value, &self.settings.operator_role));
        let role = if operator {
            Role::Operator
        } else {
            Role::Client
        };
        Ok(Principal { subject, role })
    }

    fn audience_matches(&self, claims: &Map<String, Value>) -> bool {
        let accepted = |candidate: &str| self.settings.audiences.iter().any(|a| a == candidate);
        match claims.get("aud") {
            Some(Value::String(aud)) => accepted(aud),
            Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(accepted),
            Some(_) => false,
            // Cognito access tokens name the app client instead of an audience.
            None => claims
                .get("client_id")
                .and_then(Value::as_str)
                .is_some_and(accepted),
        }
    }
}

/// `Ok` when nothing is required or the token's `token_use` is the required one.
fn check_token_use(required: Option<TokenUse>, found: Option<&str>) -> Result<(), AuthError> {
    match required {
        Some(required) if found != Some(required.as_str()) => Err(AuthError::WrongTokenUse {
            required,
            found: found.map(shorten),
        }),
        _ => Ok(()),
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

/// Reads the header ourselves: jsonwebtoken refuses `alg: none` as unparseable, and we want to say
/// "algorithm not accepted" for it.
fn parse_header(token: &str) -> Result<Header, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed("not a compact JWT"));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed("header is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed("header is not a JWT header"))
}

fn map_jwt_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => {
            AuthError::DisallowedAlgorithm("algorithm mismatch".into())
        }
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(_) => AuthError::Malformed("a required claim is missing"),
        ErrorKind::InvalidClaimFormat(_) => AuthError::Malformed("a claim has the wrong type"),
        _ => AuthError::Malformed("undecodable token"),
    }
}

/// Token text (`alg`, `token_use`) echoed into errors and logs is kept short.
fn shorten(text: &str) -> String {
    text.chars().take(16).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parsing_rejects_non_jwts() {
        for token in ["", "abc", "a.b", "a.b.c.d", "!!!.e30.sig", "e30.e30.sig"] {
            let error = parse_header(token).err().expect(token);
            assert!(matches!(error, AuthError::Malformed(_)), "{token}: {error}");
        }
    }

    #[test]
    fn header_algorithm_and_key_id_are_read() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1"}"#);
        let parsed = parse_header(&format!("{header}.e30.")).unwrap();
        assert_eq!(
            (parsed.alg.as_str(), parsed.kid.as_deref()),
            ("none", Some("k1"))
        );
    }

    #[test]
    fn token_use_is_checked_only_when_required() {
        let access = Some(TokenUse::Access);
        assert_eq!(check_token_use(access, Some("access")), Ok(()));
        assert_eq!(
            check_token_use(access, Some("id")),
            Err(AuthError::WrongTokenUse {
                required: TokenUse::Access,
                found: Some("id".into()),
            })
        );
        for found in [None, Some(""), Some("Access"), Some("access ")] {
            assert!(
                matches!(
                    check_token_use(access, found),
                    Err(AuthError::WrongTokenUse { .. })
                ),
                "{found:?}"
            );
        }
        assert_eq!(check_token_use(Some(TokenUse::Id), Some("id")), Ok(()));
        for found in [None, Some("access"), Some("id"), Some("anything")] {
            assert_eq!(check_token_use(None, found), Ok(()), "{found:?}");
        }
    }

    #[test]
    fn token_use_error_names_both_kinds_and_is_a_401() {
        let wrong = check_token_use(Some(TokenUse::Access), Some("id")).unwrap_err();
        assert_eq!(
            wrong.to_string(),
            r#"token_use "id" where access is required"#
        );
        assert_eq!(wrong.status(), http::StatusCode::UNAUTHORIZED);
        assert_eq!(wrong.code(), "unauthenticated");
        let absent = check_token_use(Some(TokenUse::Access), None).unwrap_err();
        assert_eq!(
            absent.to_string(),
            "token_use absent where access is required"
        );
        let long = check_token_use(Some(TokenUse::Access), Some(&"x".repeat(500))).unwrap_err();
        assert!(long.to_string().len() < 80, "{long}");
    }
}
