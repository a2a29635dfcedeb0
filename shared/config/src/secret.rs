//! The platform's three secrets, each its own Secrets Manager secret so that IAM can give each
//! function only the ones it needs (README, Operating):
//!
//! - [`SigningCredential`]: the signing service account's token and key. Only functions that
//!   change something at Dfns hold it.
//! - [`ReadCredential`]: the token of a second service account that can only read (bootstrap
//!   checks). Reporting, the desk's views and the webhook receiver read Dfns with it.
//! - [`WebhookSecrets`]: the HMAC secret(s) Dfns signs webhook deliveries with. Only the webhook
//!   receiver holds it.
//!
//! Each is a JSON object; [`SecretCache`] fetches one on first use and caches it per container.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// JSON field names in the secrets (the contract with deploy and bootstrap tooling).
pub const FIELD_SERVICE_ACCOUNT_TOKEN: &str = "dfnsServiceAccountToken";
pub const FIELD_CREDENTIAL_ID: &str = "dfnsCredentialId";
pub const FIELD_PRIVATE_KEY_PEM: &str = "dfnsPrivateKeyPem";
/// The read-only service account's token, in its own secret.
pub const FIELD_READ_ONLY_TOKEN: &str = "dfnsReadOnlyToken";
pub const FIELD_WEBHOOK_SECRET: &str = "dfnsWebhookSecret";
/// Optional: the next webhook secret, during a rotation (deliveries under either are accepted).
pub const FIELD_WEBHOOK_SECRET_NEXT: &str = "dfnsWebhookSecretNext";

/// What the webhook secret holds in `dfnsWebhookSecret` from deploy until bootstrap stores the
/// real one (README, Deploy). Never accepted as a key: anyone who read the README could sign with
/// it.
pub const WEBHOOK_SECRET_PLACEHOLDER: &str = "set-by-bootstrap";
/// The shortest webhook secret the receiver accepts (Dfns' secrets are longer).
pub const MIN_WEBHOOK_SECRET_BYTES: usize = 32;

/// One kind of secret: how its JSON reads.
pub trait SecretKind: Send + Sync + Sized + 'static {
    /// What it is, for messages ("the Dfns signing credential").
    const WHAT: &'static str;

    /// Parses the secret's JSON. Errors name the offending field, never a value.
    fn from_json(text: &str) -> Result<Self, SecretError>;
}

/// The secret's fields, parsed without ever quoting the text (a serde error message could quote
/// part of a key).
struct Fields {
    what: &'static str,
    object: serde_json::Map<String, serde_json::Value>,
}

impl Fields {
    fn parse(what: &'static str, text: &str) -> Result<Self, SecretError> {
        let malformed = |reason: &str| SecretError::Malformed {
            what,
            reason: reason.into(),
        };
        match serde_json::from_str(text) {
            Ok(serde_json::Value::Object(object)) => Ok(Self { what, object }),
            Ok(_) => Err(malformed("not a JSON object")),
            Err(_) => Err(malformed("not valid JSON")),
        }
    }

    fn required(&self, name: &'static str) -> Result<SecretString, SecretError> {
        let malformed = |reason: String| SecretError::Malformed {
            what: self.what,
            reason,
        };
        match self.object.get(name) {
            None => Err(malformed(format!("field `{name}` is missing"))),
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => {
                Ok(SecretString::from(s.as_str()))
            }
            Some(serde_json::Value::String(_)) => {
                Err(malformed(format!("field `{name}` is empty")))
            }
            Some(_) => Err(malformed(format!("field `{name}` is not a string"))),
        }
    }

    fn optional(&self, name: &'static str) -> Result<Option<SecretString>, SecretError> {
        match self.object.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(_) => self.required(name).map(Some),
        }
    }
}

/// The signing service account's credentials: everything needed to change things at Dfns. No
/// field can be printed: use [`secrecy::ExposeSecret`] exactly where a value is needed.
pub struct SigningCredential {
    /// Bearer token of the signing service account.
    pub token: SecretString,
    /// Id of the service account's signing credential.
    pub credential_id: SecretString,
    /// The credential's private key, PKCS#8 PEM.
    pub private_key_pem: SecretString,
}

impl SigningCredential {
    pub fn new(token: &str, credential_id: &str, private_key_pem: &str) -> Self {
        Self {
            token: token.into(),
            credential_id: credential_id.into(),
            private_key_pem: private_key_pem.into(),
        }
    }
}

impl SecretKind for SigningCredential {
    const WHAT: &'static str = "the Dfns signing credential";

    fn from_json(text: &str) -> Result<Self, SecretError> {
        let fields = Fields::parse(Self::WHAT, text)?;
        Ok(Self {
            token: fields.required(FIELD_SERVICE_ACCOUNT_TOKEN)?,
            credential_id: fields.required(FIELD_CREDENTIAL_ID)?,
            private_key_pem: fields.required(FIELD_PRIVATE_KEY_PEM)?,
        })
    }
}

/// The read-only service account's token: reads at Dfns, nothing else (it signs nothing, so it
/// has no key here).
pub struct ReadCredential {
    pub token: SecretString,
}

impl ReadCredential {
    pub fn new(token: &str) -> Self {
        Self {
            token: token.into(),
        }
    }
}

impl SecretKind for ReadCredential {
    const WHAT: &'static str = "the Dfns read-only credential";

    fn from_json(text: &str) -> Result<Self, SecretError> {
        let fields = Fields::parse(Self::WHAT, text)?;
        Ok(Self {
            token: fields.required(FIELD_READ_ONLY_TOKEN)?,
        })
    }
}

/// The webhook's HMAC secret and, during a rotation, the next one.
pub struct WebhookSecrets {
    pub current: SecretString,
    pub next: Option<SecretString>,
}

impl SecretKind for WebhookSecrets {
    const WHAT: &'static str = "the Dfns webhook secret";

    fn from_json(text: &str) -> Result<Self, SecretError> {
        let fields = Fields::parse(Self::WHAT, text)?;
        Ok(Self {
            current: fields.required(FIELD_WEBHOOK_SECRET)?,
            next: fields.optional(FIELD_WEBHOOK_SECRET_NEXT)?,
        })
    }
}

impl WebhookSecrets {
    pub fn new(current: &str, next: Option<&str>) -> Self {
        Self {
            current: current.into(),
            next: next.map(Into::into),
        }
    }

    /// The secrets a delivery may be signed with: the current one and, during a rotation, the
    /// next; each only if it can be a real key (not the placeholder, at least
    /// [`MIN_WEBHOOK_SECRET_BYTES`]). Empty: deliveries cannot be verified, apply none.
    pub fn usable(&self) -> Vec<&SecretString> {
        use secrecy::ExposeSecret;
        std::iter::once(&self.current)
            .chain(self.next.as_ref())
            .filter(|secret| webhook_secret_is_usable(secret.expose_secret()))
            .collect()
    }
}

/// Whether `secret` can be a webhook's HMAC key.
pub fn webhook_secret_is_usable(secret: &str) -> bool {
    let secret = secret.trim();
    secret != WEBHOOK_SECRET_PLACEHOLDER && secret.len() >= MIN_WEBHOOK_SECRET_BYTES
}

macro_rules! redacted {
    ($kind:ty, $($field:literal),+) => {
        impl fmt::Debug for $kind {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($kind))
                    $(.field($field, &"[REDACTED]"))+
                    .finish()
            }
        }

        impl fmt::Display for $kind {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} (redacted)", <$kind as SecretKind>::WHAT)
            }
        }
    };
}

redacted!(
    SigningCredential,
    "dfnsServiceAccountToken",
    "dfnsCredentialId",
    "dfnsPrivateKeyPem"
);
redacted!(ReadCredential, "dfnsReadOnlyToken");
redacted!(WebhookSecrets, "dfnsWebhookSecret", "dfnsWebhookSecretNext");

/// The JSON of each secret, as deploy tooling writes it (bootstrap, the local stack, tests).
pub mod json {
    use super::*;

    /// The signing credential's secret.
    pub fn signing(token: &str, credential_id: &str, private_key_pem: &str) -> serde_json::Value {
        serde_json::json!({
            FIELD_SERVICE_ACCOUNT_TOKEN: token,
            FIELD_CREDENTIAL_ID: credential_id,
            FIELD_PRIVATE_KEY_PEM: private_key_pem,
        })
    }

    /// The read-only credential's secret.
    pub fn read_only(token: &str) -> serde_json::Value {
        serde_json::json!({ FIELD_READ_ONLY_TOKEN: token })
    }

    /// The webhook secret.
    pub fn webhook(current: &str, next: Option<&str>) -> serde_json::Value {
        let mut value = serde_json::json!({ FIELD_WEBHOOK_SECRET: current });
        if let Some(next) = next {
            value[FIELD_WEBHOOK_SECRET_NEXT] = next.into();
        }
        value
    }
}

/// Reading a secret failed. Messages carry the secret's id and the AWS error code, never its
/// content.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret `{secret_id}` does not exist")]
    NotFound { secret_id: String },
    #[error("secret `{secret_id}` has no string value")]
    NotString { secret_id: String },
    #[error("{what} is malformed: {reason}")]
    Malformed { what: &'static str, reason: String },
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

struct Cached<T> {
    secret: Arc<T>,
    fetched_at: Instant,
    /// Set by [`SecretCache::invalidate`]: the next `get` must fetch, and must not fall back to
    /// this value if fetching fails.
    invalidated: bool,
}

/// Fetches a secret on first use and keeps it for the refresh interval. Concurrent
/// callers share one fetch. If a periodic refresh fails, the last good value keeps being served
/// (and the failure logged) so a Secrets Manager blip does not take the platform down.
pub struct SecretCache<T> {
    client: SecretsClient,
    secret_id: String,
    refresh: Duration,
    state: Mutex<Option<Cached<T>>>,
}

impl<T: SecretKind> fmt::Debug for SecretCache<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretCache")
            .field("what", &T::WHAT)
            .field("secret_id", &self.secret_id)
            .field("refresh", &self.refresh)
            .finish_non_exhaustive()
    }
}

/// The Secrets Manager client a cache reads with.
enum SecretsClient {
    Given(aws_sdk_secretsmanager::Client),
    /// The process's own ([`crate::aws::secrets_manager_client`]), built on the first fetch: a
    /// function that answers without a secret (a 401, a read from DynamoDB alone) never pays for
    /// building it at init.
    Process,
}

impl SecretsClient {
    async fn get(&self) -> aws_sdk_secretsmanager::Client {
        match self {
            SecretsClient::Given(client) => client.clone(),
            SecretsClient::Process => crate::aws::secrets_manager_client().await,
        }
    }
}

impl<T: SecretKind> SecretCache<T> {
    /// No I/O: the secret is read by the first [`SecretCache::get`].
    pub fn new(
        client: aws_sdk_secretsmanager::Client,
        secret_id: impl Into<String>,
        refresh: Duration,
    ) -> Self {
        Self::with_client(SecretsClient::Given(client), secret_id, refresh)
    }

    /// As [`SecretCache::new`], with the process's Secrets Manager client, built on the first
    /// fetch rather than now.
    pub fn with_process_client(secret_id: impl Into<String>, refresh: Duration) -> Self {
        Self::with_client(SecretsClient::Process, secret_id, refresh)
    }

    fn with_client(client: SecretsClient, secret_id: impl Into<String>, refresh: Duration) -> Self {
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
    pub async fn get(&self) -> Result<Arc<T>, SecretError> {
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
                tracing::debug!(secret_id = %self.secret_id, "secret fetched");
                Ok(secret)
            }
            Err(error) => match state.as_ref() {
                Some(cached) if !cached.invalidated => {
                    tracing::warn!(
                        secret_id = %self.secret_id,
                        %error,
                        "refreshing a secret failed; serving the cached value"
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

    async fn fetch(&self) -> Result<T, SecretError> {
        // Bounded, because every caller waits on this fetch while it holds the cache lock.
        let client = self.client.get().await;
        let call = client.get_secret_value().secret_id(&self.secret_id).send();
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
        T::from_json(text)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    const TOKEN: &str = "eyJhbGciOiJFZERTQSJ9.token-value-9f8e7d";
    const READ_TOKEN: &str = "eyJhbGciOiJFZERTQSJ9.read-only-4a5b6c";
    const CRED: &str = "Y2ktM2NiY2UtN2ZjMjgtY3JlZGVudGlhbA";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+private+key+bytes\n-----END PRIVATE KEY-----\n";
    const HOOK: &str = "whsec-5c3a1e0f9b7d-0123456789abcdef0123";
    const HOOK_NEXT: &str = "whsec-next-77aa88bb99cc-0123456789abcd";

    fn signing_json() -> String {
        serde_json::json!({
            "dfnsServiceAccountToken": TOKEN,
            "dfnsCredentialId": CRED,
            "dfnsPrivateKeyPem": KEY,
        })
        .to_string()
    }

    #[test]
    fn parses_each_secrets_contract_fields() {
        let signing = SigningCredential::from_json(&signing_json()).unwrap();
        assert_eq!(signing.token.expose_secret(), TOKEN);
        assert_eq!(signing.credential_id.expose_secret(), CRED);
        assert_eq!(signing.private_key_pem.expose_secret(), KEY);
        let read = ReadCredential::from_json(
            &serde_json::json!({ "dfnsReadOnlyToken": READ_TOKEN }).to_string(),
        )
        .unwrap();
        assert_eq!(read.token.expose_secret(), READ_TOKEN);
        let hooks = WebhookSecrets::from_json(
            &serde_json::json!({ "dfnsWebhookSecret": HOOK, "dfnsWebhookSecretNext": HOOK_NEXT })
                .to_string(),
        )
        .unwrap();
        assert_eq!(hooks.current.expose_secret(), HOOK);
        assert_eq!(hooks.next.as_ref().unwrap().expose_secret(), HOOK_NEXT);
        assert_eq!(hooks.usable().len(), 2);
    }

    #[test]
    fn the_json_builders_write_what_the_parsers_read() {
        let signing =
            SigningCredential::from_json(&json::signing(TOKEN, CRED, KEY).to_string()).unwrap();
        assert_eq!(signing.private_key_pem.expose_secret(), KEY);
        let read = ReadCredential::from_json(&json::read_only(READ_TOKEN).to_string()).unwrap();
        assert_eq!(read.token.expose_secret(), READ_TOKEN);
        let hooks =
            WebhookSecrets::from_json(&json::webhook(HOOK, Some(HOOK_NEXT)).to_string()).unwrap();
        assert_eq!(hooks.next.unwrap().expose_secret(), HOOK_NEXT);
    }

    #[test]
    fn one_secret_does_not_stand_in_for_another() {
        // The signing secret's token is not a read-only token, and neither holds a webhook secret:
        // a function given the wrong secret fails loudly instead of using what it should not hold.
        let err = ReadCredential::from_json(&signing_json()).unwrap_err();
        assert!(err.to_string().contains("dfnsReadOnlyToken"), "{err}");
        let err = WebhookSecrets::from_json(&signing_json()).unwrap_err();
        assert!(err.to_string().contains("dfnsWebhookSecret"), "{err}");
        let err = SigningCredential::from_json(
            &serde_json::json!({ "dfnsReadOnlyToken": READ_TOKEN }).to_string(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("dfnsServiceAccountToken"), "{err}");
    }

    #[test]
    fn placeholder_and_short_webhook_secrets_are_not_usable() {
        for (current, next, usable) in [
            (WEBHOOK_SECRET_PLACEHOLDER, None, 0),
            ("too-short", None, 0),
            (WEBHOOK_SECRET_PLACEHOLDER, Some(HOOK_NEXT), 1),
            (HOOK, Some("short"), 1),
            (HOOK, None, 1),
        ] {
            let mut json = serde_json::json!({ "dfnsWebhookSecret": current });
            if let Some(next) = next {
                json["dfnsWebhookSecretNext"] = next.into();
            }
            let hooks = WebhookSecrets::from_json(&json.to_string()).unwrap();
            assert_eq!(hooks.usable().len(), usable, "{current} / {next:?}");
        }
    }

    #[test]
    fn debug_and_display_show_no_secret_material() {
        let signing = SigningCredential::from_json(&signing_json()).unwrap();
        let read = ReadCredential::from_json(
            &serde_json::json!({ "dfnsReadOnlyToken": READ_TOKEN }).to_string(),
        )
        .unwrap();
        let hooks = WebhookSecrets::from_json(
            &serde_json::json!({ "dfnsWebhookSecret": HOOK, "dfnsWebhookSecretNext": HOOK_NEXT })
                .to_string(),
        )
        .unwrap();
        let shown = [
            format!("{signing:?}"),
            format!("{signing:#?}"),
            format!("{signing}"),
            format!("{:?}", Arc::new(signing)),
            format!("{read:?} {read}"),
            format!("{hooks:?} {hooks}"),
        ];
        for text in shown {
            for value in [TOKEN, READ_TOKEN, CRED, KEY, HOOK, HOOK_NEXT] {
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
        let missing =
            serde_json::json!({ "dfnsServiceAccountToken": TOKEN, "dfnsCredentialId": CRED });
        let not_string = serde_json::json!({
            "dfnsServiceAccountToken": TOKEN, "dfnsCredentialId": 12345678, "dfnsPrivateKeyPem": KEY
        });
        let empty = serde_json::json!({
            "dfnsServiceAccountToken": "", "dfnsCredentialId": CRED, "dfnsPrivateKeyPem": KEY
        });
        let cases = [
            (missing.to_string(), "dfnsPrivateKeyPem"),
            (not_string.to_string(), "dfnsCredentialId"),
            (empty.to_string(), "dfnsServiceAccountToken"),
            (
                format!("{{\"dfnsServiceAccountToken\": \"{TOKEN}\""),
                "JSON",
            ),
            (format!("\"{TOKEN}\""), "object"),
        ];
        for (text, named) in cases {
            let err = SigningCredential::from_json(&text).unwrap_err();
            let message = format!("{err} {err:?}");
            assert!(message.contains(named), "{message}");
            assert!(message.contains("signing credential"), "{message}");
            for value in [TOKEN, CRED, KEY, "12345678"] {
                assert!(!message.contains(value), "{message} leaks {value}");
            }
        }
    }
}
