use http::StatusCode;

use crate::TokenUse;

/// Why a request could not be given an identity.
///
/// Messages never contain the token or any part of it, so an error can be logged or returned as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer …` header (or an empty one).
    #[error("no bearer token")]
    MissingToken,
    /// Not a JWT, or a claim the platform needs (`sub`, `exp`) is absent or mistyped.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg` is not RS256/ES256 (`none` and HS* included), or does not match the key it names.
    #[error("token algorithm not accepted: {0}")]
    DisallowedAlgorithm(String),
    /// The signature does not verify under the issuer's key the token names.
    #[error("token signature does not verify")]
    BadSignature,
    /// `iss` is not the configured issuer.
    #[error("token issuer is not the configured issuer")]
    WrongIssuer,
    /// Neither `aud` nor Cognito's `client_id` names a configured audience.
    #[error("token audience is not this platform")]
    WrongAudience,
    /// `token_use` is absent or not the one [`crate::AuthSettings::token_use`] requires (e.g. a
    /// Cognito ID token where an access token is meant).
    #[error(
        "token_use {} where {required} is required",
        .found.as_deref().map_or_else(|| "absent".to_owned(), |f| format!("{f:?}"))
    )]
    WrongTokenUse {
        /// The configured kind.
        required: TokenUse,
        /// The token's `token_use`, shortened; `None` when absent or not a string.
        found: Option<String>,
    },
    /// `exp` is in the past (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// The token names a key (`kid`) the issuer's key set does not hold, even after a refetch.
    #[error("token signed with a key the issuer does not publish")]
    UnknownKey,
    /// The issuer's key set could not be fetched. Retryable: the token may well be good.
    #[error("issuer key set unavailable: {0}")]
    JwksUnavailable(String),
    /// Gateway-verified claims lack what the platform needs (`sub`).
    #[error("gateway claims incomplete: {0}")]
    IncompleteGatewayClaims(&'static str),
}

impl AuthError {
    /// HTTP status for this error: 503 when the key set is unavailable (retry later), else 401.
    pub fn status(&self) -> StatusCode {
        if self.is_retryable() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::UNAUTHORIZED
        }
    }

    /// True when the same request may succeed later unchanged.
    pub fn is_retryable(&self) -> bool {
        matches!(self, AuthError::JwksUnavailable(_))
    }

    /// Stable machine-readable code for the JSON error body.
    pub fn code(&self) -> &'static str {
        if self.is_retryable() {
            "identity_provider_unavailable"
        } else {
            "unauthenticated"
        }
    }
}

/// A required authentication setting is missing or unreadable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// The named setting is absent or empty.
    #[error("setting {0} is required")]
    Missing(&'static str),
    /// The named setting has a value that cannot be used.
    #[error("setting {name} is invalid: {reason}")]
    Invalid {
        /// Environment variable name.
        name: &'static str,
        /// What was expected.
        reason: &'static str,
    },
}
