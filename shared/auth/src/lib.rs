//! Who is calling: verifies the bearer JWT a platform Lambda function receives and turns it into a
//! [`Principal`] (subject and role).
//!
//! - Tokens from Cognito, Auth0 or any OIDC issuer: RS256 or ES256, keys from the issuer's JWKS,
//!   fetched on first use (not at cold start), cached per container and refetched (rate-limited)
//!   when a token names a key we have not seen, which is how issuers rotate keys.
//! - `iss`, `aud` (or Cognito's `client_id`), `exp` and `nbf` are checked with a small leeway;
//!   `token_use` too when configured ([`AuthSettings::token_use`]), so a Cognito ID token is not
//!   taken for an access token.
//! - Roles are whole values of the role claim: an element of an array, or the whole string.
//! - Behind API Gateway's JWT authorizer, its verified claims can be used instead
//!   ([`AuthSettings::trust_gateway_claims`]).
//! - [`dev_issuer`] (feature `dev-issuer`) mints tokens for local runs and tests.
//!
//! ```no_run
//! # async fn handler(request: http::Request<()>) -> Result<(), auth::AuthError> {
//! let authenticator = auth::Authenticator::new(auth::AuthSettings::from_env().unwrap());
//! let caller = authenticator.authenticate(request.headers(), None).await?;
//! if caller.is_operator() { /* … */ }
//! # Ok(()) }
//! ```
//!
//! Tokens never appear in logs or error messages.

#![warn(missing_docs)]

mod authenticator;
mod error;
mod jwks;
mod principal;
mod settings;

#[cfg(feature = "dev-issuer")]
pub mod dev_issuer;

pub use authenticator::Authenticator;
pub use error::{AuthError, SettingsError};
pub use principal::{Principal, Role};
pub use settings::{
    AuthSettings, DEFAULT_OPERATOR_ROLE, DEFAULT_ROLE_CLAIM, TokenUse, default_jwks_url,
};
