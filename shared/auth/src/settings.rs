use std::time::Duration;

use crate::SettingsError;

/// Default claim holding the caller's roles: Cognito user-pool groups.
pub const DEFAULT_ROLE_CLAIM: &str = "cognito:groups";
/// Default role value that makes a caller an operator.
pub const DEFAULT_OPERATOR_ROLE: &str = "operators";

/// How tokens are verified and roles read.
///
/// Environment (see [`AuthSettings::from_env`]):
///
/// | variable | meaning | default |
/// |---|---|---|
/// | `AUTH_ISSUER` | expected `iss`, e.g. `https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Abc` or `https://tenant.eu.auth0.com/` | required |
/// | `AUTH_AUDIENCE` | accepted audiences, comma separated: Auth0 API identifier, Cognito app client id | required |
/// | `AUTH_JWKS_URL` | where the issuer's keys are | `{issuer}/.well-known/jwks.json` |
/// | `AUTH_ROLE_CLAIM` | claim holding roles (array or string) | `cognito:groups` |
/// | `AUTH_OPERATOR_ROLE` | role value meaning operator | `operators` |
/// | `AUTH_TRUST_GATEWAY_CLAIMS` | accept claims API Gateway's JWT authorizer already verified | `false` |
/// | `AUTH_TOKEN_USE` | `access` or `id`: refuse tokens whose `token_use` claim is absent or another | unset: not checked |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// Expected `iss` (compared up to a trailing slash).
    pub issuer: String,
    /// Accepted `aud` values, or Cognito app client ids (`client_id`).
    pub audiences: Vec<String>,
    /// Where the issuer's JWKS is fetched from.
    pub jwks_url: String,
    /// Claim holding the caller's roles.
    pub role_claim: String,
    /// Role value meaning operator.
    pub operator_role: String,
    /// Use API Gateway JWT-authorizer claims when present. Only behind a gateway that verifies.
    pub trust_gateway_claims: bool,
    /// The `token_use` a token must carry, when set. Cognito issues ID and access tokens with the
    /// same key and issuer for the same app client, and both pass the audience check; only this
    /// claim tells them apart. `None`: not checked (other issuers do not set the claim).
    pub token_use: Option<TokenUse>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// After a refetch for an unknown `kid`, the next one waits this long, so forged `kid`s cannot
    /// make every request hit the issuer.
    pub jwks_refetch_cooldown: Duration,
    /// Keys older than this are refetched on next use, so a key the issuer withdrew stops working.
    pub jwks_max_age: Duration,
    /// Timeout of one JWKS request.
    pub jwks_timeout: Duration,
}

impl AuthSettings {
    /// Settings for `issuer` and `audiences` with every other value at its default.
    pub fn new(issuer: impl Into<String>, audiences: Vec<String>) -> Self {
        let issuer = issuer.into();
        let jwks_url = default_jwks_url(&issuer);
        AuthSettings {
            issuer,
            audiences,
            jwks_url,
            role_claim: DEFAULT_ROLE_CLAIM.to_owned(),
            operator_role: DEFAULT_OPERATOR_ROLE.to_owned(),
            trust_gateway_claims: false,
            token_use: None,
            leeway: Duration::from_secs(30),
            jwks_refetch_cooldown: Duration::from_secs(30),
            jwks_max_age: Duration::from_secs(3600),
            jwks_timeout: Duration::from_secs(5),
        }
    }

    /// Reads the `AUTH_*` variables from the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the `AUTH_*` variables through `lookup` (for tests and layered configuration).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let issuer = get("AUTH_ISSUER").ok_or(SettingsError::Missing("AUTH_ISSUER"))?;
        let audiences: Vec<String> = get("AUTH_AUDIENCE")
            .ok_or(SettingsError::Missing("AUTH_AUDIENCE"))?
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        if audiences.is_empty() {
            return Err(SettingsError::Missing("AUTH_AUDIENCE"));
        }

        let mut settings = AuthSettings::new(issuer, audiences);
        if let Some(url) = get("AUTH_JWKS_URL") {
            settings.jwks_url = url;
        }
        if let Some(claim) = get("AUTH_ROLE_CLAIM") {
            settings.role_claim = claim;
        }
        if let Some(role) = get("AUTH_OPERATOR_ROLE") {
            settings.operator_role = role;
        }
        if let Some(trust) = get("AUTH_TRUST_GATEWAY_CLAIMS") {
            settings.trust_gateway_claims = match trust.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => {
                    return Err(SettingsError::Invalid {
                        name: "AUTH_TRUST_GATEWAY_CLAIMS",
                        reason: "expected true or false",
                    });
                }
            };
        }
        if let Some(token_use) = get("AUTH_TOKEN_USE") {
            settings.token_use = Some(match token_use.to_ascii_lowercase().as_str() {
                "access" => TokenUse::Access,
                "id" => TokenUse::Id,
                _ => {
                    return Err(SettingsError::Invalid {
                        name: "AUTH_TOKEN_USE",
                        reason: "expected access or id",
                    });
                }
            });
        }
        Ok(settings)
    }
}

/// The kind of Cognito token, its `token_use` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenUse {
    /// `access`: an access token, meant for APIs.
    Access,
    /// `id`: an ID token, meant for the client application only.
    Id,
}

impl TokenUse {
    /// The claim's value.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenUse::Access => "access",
            TokenUse::Id => "id",
        }
    }
}

impl std::fmt::Display for TokenUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{issuer}/.well-known/jwks.json`, where Cognito and Auth0 publish their keys.
pub fn default_jwks_url(issuer: &str) -> String {
    format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/'))
}

/// Issuers compare equal up to one trailing slash: Auth0's `iss` ends with `/`, and operators
/// configure it both ways.
pub(crate) fn same_issuer(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_apply_when_only_issuer_and_audience_are_set() {
        let s = AuthSettings::from_lookup(lookup(&[
            ("AUTH_ISSUER", "https://tenant.auth0.com/"),
            ("AUTH_AUDIENCE", "https://api.platform.example, client123"),
        ]))
        .unwrap();
        assert_eq!(s.jwks_url, "https://tenant.auth0.com/.well-known/jwks.json");
        assert_eq!(
            s.audiences,
            vec!["https://api.platform.example", "client123"]
        );
        assert_eq!(s.role_claim, "cognito:groups");
        assert_eq!(s.operator_role, "operators");
        assert!(!s.trust_gateway_claims);
        assert_eq!(s.token_use, None);
    }

    #[test]
    fn every_variable_is_read() {
        let s = AuthSettings::from_lookup(lookup(&[
            ("AUTH_ISSUER", "https://issuer"),
            ("AUTH_AUDIENCE", "aud"),
            ("AUTH_JWKS_URL", "http://127.0.0.1:9/keys"),
            ("AUTH_ROLE_CLAIM", "https://platform.example/roles"),
            ("AUTH_OPERATOR_ROLE", "desk"),
            ("AUTH_TRUST_GATEWAY_CLAIMS", "TRUE"),
            ("AUTH_TOKEN_USE", "Access"),
        ]))
        .unwrap();
        assert_eq!(s.jwks_url, "http://127.0.0.1:9/keys");
        assert_eq!(s.role_claim, "https://platform.example/roles");
        assert_eq!(s.operator_role, "desk");
        assert!(s.trust_gateway_claims);
        assert_eq!(s.token_use, Some(TokenUse::Access));
    }

    #[test]
    fn missing_or_invalid_settings_are_named() {
        assert_eq!(
            AuthSettings::from_lookup(lookup(&[("AUTH_AUDIENCE", "a")])),
            Err(SettingsError::Missing("AUTH_ISSUER"))
        );
        assert_eq!(
            AuthSettings::from_lookup(lookup(&[("AUTH_ISSUER", "i"), ("AUTH_AUDIENCE", " , ")])),
            Err(SettingsError::Missing("AUTH_AUDIENCE"))
        );
        assert!(matches!(
            AuthSettings::from_lookup(lookup(&[
                ("AUTH_ISSUER", "i"),
                ("AUTH_AUDIENCE", "a"),
                ("AUTH_TRUST_GATEWAY_CLAIMS", "maybe"),
            ])),
            Err(SettingsError::Invalid {
                name: "AUTH_TRUST_GATEWAY_CLAIMS",
                ..
            })
        ));
        // A typo would otherwise refuse every token.
        assert!(matches!(
            AuthSettings::from_lookup(lookup(&[
                ("AUTH_ISSUER", "i"),
                ("AUTH_AUDIENCE", "a"),
                ("AUTH_TOKEN_USE", "acess"),
            ])),
            Err(SettingsError::Invalid {
                name: "AUTH_TOKEN_USE",
                ..
            })
        ));
    }

    #[test]
    fn issuers_match_up_to_a_trailing_slash_only() {
        assert!(same_issuer("https://t.auth0.com/", "https://t.auth0.com"));
        assert!(!same_issuer(
            "https://t.auth0.com/",
            "https://evil.auth0.com/"
        ));
    }
}
