//! The platform secret: one JSON secret in Secrets Manager, cached per container.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// JSON field names in the secret (the contract with deploy and bootstrap tooling).
pub const FIELD_SERVICE_ACCOUNT_TOKEN: &str = "dfnsServiceAccountToken";
pub const FIELD_CREDENTIAL_ID: &str = "dfnsCredentialId";
pub const FIELD_PRIVATE_KEY_PEM: &str = "dfnsPrivateKeyPem";
pub const FIELD_WEBHOOK_SECRET: &str = "dfnsWebhookSecret";
/// Optional: the next webhook secret, during a rotation (deliveries under either are accepted).
pub const FIELD_WEBHOOK_SECRET_NEXT: &str = "dfnsWebhookSecretNext";

/// What the secret holds in `dfnsWebhookSecret` from deploy until bootstrap stores the real one
/// (README, Deploy). Never accepted as a key: anyone who read the README could sign with it.
pub const WEBHOOK_SECRET_PLACEHOLDER: &str = "set-by-bootstrap";
/// The shortest webhook secret the receiver accepts (Dfns' secrets are longer).
pub const MIN_WEBHOOK_SECRET_BYTES: usize = 32;

/// The Dfns credentials the platform's functions use. No field can be printed: use
/// [`secrecy::ExposeSecret`] exactly where a value is needed.
pub struct PlatformSecret {
    /// Bearer token of the Dfns service account.
    pub dfns_service_account_token: SecretString,
    /// Id of the service account's signing credential.
    pub dfns_credential_id: SecretString,
    /// The credential's private key, PKCS#8 PEM.
    pub dfns_private_key_pem: SecretString,
    /// HMAC secret of the Dfns webhook.
    pub dfns_webhook_secret: SecretString,
    /// The next webhook's secret, while a rotation is under way.
    pub dfns_webhook_secret_next: Option<SecretString>,
}

impl PlatformSecret {
    /// Parses the secret's JSON. Errors name the offending field, never a value (a serde error
    /// message could quote part of the secret).
    pub fn from_json(text: &str) -> Result<Self, SecretError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|_| SecretError::Malformed {
                reason: "not valid JSON".into(),
            })?;
        let object = value.as_object().ok_or_else(|| SecretError::Malformed {
            reason: "not a JSON object".into(),
        })?;
        let field = |name: &'static str| -> Result<SecretString, SecretError> {
            match object.get(name) {
                None => Err(SecretError::Malformed {
                    reason: format!("field `{name}` is missing"),
                }),
                Some(serde_json::Value::String(s)) if !s.trim().is_empty() => {
                    Ok(SecretString::from(s.as_str()))
                }
                Some(serde_json::Value::String(_)) => Err(SecretError::Malformed {
                    reason: format!("field `{name}` is empty"),
                }),
                Some(_) => Err(SecretError::Malformed {
                    reason: format!("field `{name}` is not a string"),
                }),
            }
        };
        Ok(Self {
            dfns_service_account_token: field(FIELD_SERVICE_ACCOUNT_TOKEN)?,
            dfns_credential_id: field(FIELD_CREDENTIAL_ID)?,
            dfns_private_key_pem: field(FIELD_PRIVATE_KEY_PEM)?,
            dfns_webhook_secret: field(FIELD_WEBHOOK_SECRET)?,
            dfns_webhook_secret_next: match object.get(FIELD_WEBHOOK_SECRET_NEXT) {
                None | Some(serde_json::Value::Null) => None,
                Some(_) => Some(field(FIELD_WEBHOOK_SECRET_NEXT)?),
            },
        })
    }

    /// The webhook secrets a delivery may be signed with: the current one and, during a rotation,
    /// the next; each only if it can be a real key (not the placeholder, at least
    /// [`MIN_WEBHOOK_SECRET_BYTES`]). Empty: deliveries cannot be verified, apply none.
    pub fn usable_webhook_secrets(&self) -> Vec<&SecretString> {
        use secrecy::ExposeSecret;
        std::iter::once(&self.dfns_webhook_secret)
            .chain(self.dfns_webhook_secret_next.as_ref())
            .filter(|secret| webhook_secret_is_usable(secret.expose_secret()))
            .collect()
    }
}

/// Whether `secret` can be a webhook's HMAC key.
pub fn webhook_secret_is_usable(secret: &str) -> bool {
    let secret = secret.trim();
    secret != WEBHOOK_SECRET_PLACEHOLDER && secret.len() >= MIN_WEBHOOK_SECRET_BYTES
}

impl fmt::Debug for PlatformSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformSecret")
            .field(FIELD_SERVICE_ACCOUNT_TOKEN, &"[REDACTED]")
            .field(FIELD_CREDENTIAL_ID, &"[REDACTED]")
            .field(FIELD_PRIVATE_KEY_PEM, &"[REDACTED]")
            .field(FIELD_WEBHOOK_SECRET, &"[REDACTED]")
            .finish()
    }
}

impl fmt::Display for PlatformSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("platform secret (4 fields, redacted)")
    }
}

/// Reading the platform secret failed. Messages carry the secret's id and the AWS error code,
/// never its content.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret `{secret_id}` does not exist")]
    NotFound { secret_id: String },
    #[error("secret `{secret_id}` has no string value")]
    NotString { secret_id: String },
    #[error("the platform secret is malformed: {reason}")]
    Malformed { reason: String },
    #[error("reading secret `{secret_id}` failed: {message}")]
    Fetch {
        secret_id: String,
        message: String,
        /// Throttling, timeouts and 5xx: worth retrying later.
        retryable: bool,
    },
}

/// Longest wait for Secrets Manager before a fetch counts as failed.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

struct Cached {
    secret: Arc<PlatformSecret>,
    fetched_at: Instant,
    /// Set by [`SecretCache::invalidate`]: the next `get` must fetch, and must not fall back to
    /// this value if fetching fails.
    invalidated: bool,
}

/// Fetches the platform secret on first use and keeps it for the refresh interval. Concurrent
/// callers share one fetch. If a periodic refresh fails, the last good value keeps being served
/// (and the failure logged) so a Secrets Manager blip does not take the platform down.
pub struct SecretCache {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
    refresh: Duration,
    state: Mutex<Option<Cached>>,
}

impl fmt::Debug for SecretCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretCache")
            .field("secret_id", &self.secret_id)
            .field("refresh", &self.refresh)
            .finish_non_exhaustive()
    }
}

impl SecretCache {
    /// No I/O: the secret is read by the first [`SecretCache::get`].
    pub fn new(
        client: aws_sdk_secretsmanager::Client,
        secret_id: impl Into<String>,
        refresh: Duration,
    ) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
            refresh,
            state: Mutex::new(None),
        }
    }

    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    /// The secret, from cache while it is younger than the refresh interval.
    pub async fn get(&self) -> Result<Arc<PlatformSecret>, SecretError> {
        let mut state = self.state.lock().await;
        if let Some(cached) = state.as_ref() {
            if !cached.invalidated && cached.fetched_at.elapsed() < self.refresh {
                return Ok(cached.secret.clone());
            }
        }
        match self.fetch().await {
            Ok(secret) => {
                let secret = Arc::new(secret);
                *state = Some(Cached {
                    secret: secret.clone(),
                    fetched_at: Instant::now(),
                    invalidated: false,
                });
                tracing::debug!(secret_id = %self.secret_id, "platform secret fetched");
                Ok(secret)
            }
            Err(error) => match state.as_ref() {
                Some(cached) if !cached.invalidated => {
                    tracing::warn!(
                        secret_id = %self.secret_id,
                        %error,
                        "refreshing the platform secret failed; serving the cached value"
                    );
                    Ok(cached.secret.clone())
                }
                _ => Err(error),
            },
        }
    }

    /// Forces the next [`SecretCache::get`] to read Secrets Manager (e.g. after Dfns refused
    /// the token because it was rotated).
    pub async fn invalidate(&self) {
        if let Some(cached) = self.state.lock().await.as_mut() {
            cached.invalidated = true;
        }
    }

    async fn fetch(&self) -> Result<PlatformSecret, SecretError> {
        // Bounded, because every caller waits on this fetch while it holds the cache lock.
        let call = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send();
        let output = tokio::time::timeout(FETCH_TIMEOUT, call)
            .await
            .map_err(|_| SecretError::Fetch {
                secret_id: self.secret_id.clone(),
                message: format!("no answer within {FETCH_TIMEOUT:?}"),
                retryable: true,
            })?
            .map_err(|err| {
                use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception())
                {
                    return SecretError::NotFound {
                        secret_id: self.secret_id.clone(),
                    };
                }
                let retryable = match &err {
                    SdkError::TimeoutError(_)
                    | SdkError::DispatchFailure(_)
                    | SdkError::ResponseError(_) => true,
                    SdkError::ServiceError(e) => {
                        e.raw().status().is_server_error()
                            || matches!(e.err().code(), Some("ThrottlingException"))
                    }
                    _ => false,
                };
                SecretError::Fetch {
                    secret_id: self.secret_id.clone(),
                    message: err
                        .code()
                        .map(str::to_owned)
                        .unwrap_or_else(|| "request failed".to_owned()),
                    retryable,
                }
            })?;
        let text = output
            .secret_string()
            .ok_or_else(|| SecretError::NotString {
                secret_id: self.secret_id.clone(),
            })?;
        PlatformSecret::from_json(text)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    const TOKEN: &str = "eyJhbGciOiJFZERTQSJ9.token-value-9f8e7d";
    const CRED: &str = "Y2ktM2NiY2UtN2ZjMjgtY3JlZGVudGlhbA";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+private+key+bytes\n-----END PRIVATE KEY-----\n";
    const HOOK: &str = "whsec-5c3a1e0f9b7d";

    fn json() -> String {
        serde_json::json!({
            "dfnsServiceAccountToken": TOKEN,
            "dfnsCredentialId": CRED,
            "dfnsPrivateKeyPem": KEY,
            "dfnsWebhookSecret": HOOK,
        })
        .to_string()
    }

    #[test]
    fn parses_the_contract_fields() {
        let secret = PlatformSecret::from_json(&json()).unwrap();
        assert_eq!(secret.dfns_service_account_token.expose_secret(), TOKEN);
        assert_eq!(secret.dfns_credential_id.expose_secret(), CRED);
        assert_eq!(secret.dfns_private_key_pem.expose_secret(), KEY);
        assert_eq!(secret.dfns_webhook_secret.expose_secret(), HOOK);
    }

    #[test]
    fn debug_and_display_show_no_secret_material() {
        let secret = PlatformSecret::from_json(&json()).unwrap();
        let shown = [
            format!("{secret:?}"),
            format!("{secret:#?}"),
            format!("{secret}"),
            format!("{:?}", Arc::new(secret)),
        ];
        for text in shown {
            for value in [TOKEN, CRED, KEY, HOOK] {
                // Any distinctive fragment, not only the whole value.
                for fragment in [&value[..8], &value[value.len() - 8..]] {
                    assert!(!text.contains(fragment), "{text} leaks {fragment}");
                }
            }
            assert!(text.contains("REDACTED") || text.contains("redacted"));
        }
    }

    #[test]
    fn malformed_secrets_name_the_field_but_not_the_content() {
        let missing = serde_json::json!({
            "dfnsServiceAccountToken": TOKEN, "dfnsCredentialId": CRED, "dfnsPrivateKeyPem": KEY
        });
        let not_string = serde_json::json!({
            "dfnsServiceAccountToken": TOKEN, "dfnsCredentialId": 12345678,
            "dfnsPrivateKeyPem": KEY, "dfnsWebhookSecret": HOOK
        });
        let empty = serde_json::json!({
            "dfnsServiceAccountToken": "", "dfnsCredentialId": CRED,
            "dfnsPrivateKeyPem": KEY, "dfnsWebhookSecret": HOOK
        });
        let cases = [
            (missing.to_string(), "dfnsWebhookSecret"),
            (not_string.to_string(), "dfnsCredentialId"),
            (empty.to_string(), "dfnsServiceAccountToken"),
            (
                format!("{{\"dfnsServiceAccountToken\": \"{TOKEN}\""),
                "JSON",
            ),
            (format!("\"{TOKEN}\""), "object"),
        ];
        for (text, named) in cases {
            let err = PlatformSecret::from_json(&text).unwrap_err();
            let message = format!("{err} {err:?}");
            assert!(message.contains(named), "{message}");
            for value in [TOKEN, CRED, KEY, HOOK, "12345678"] {
                assert!(!message.contains(value), "{message} leaks {value}");
            }
        }
    }
}
