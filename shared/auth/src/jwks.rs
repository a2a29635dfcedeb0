//! The issuer's public keys, fetched on first use and cached for the life of the container.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use crate::AuthError;

/// One verification key and the only algorithm it may verify.
pub(crate) struct IssuerKey {
    pub(crate) algorithm: Algorithm,
    pub(crate) key: DecodingKey,
}

struct KeySet {
    by_kid: HashMap<String, Arc<IssuerKey>>,
    without_kid: Vec<Arc<IssuerKey>>,
    fetched_at: Instant,
}

impl KeySet {
    fn find(&self, kid: Option<&str>) -> Option<Arc<IssuerKey>> {
        match kid {
            Some(kid) => self.by_kid.get(kid).cloned(),
            // Tokens without `kid` are accepted only when the issuer publishes a single key, so
            // there is no guessing which key was meant.
            None => {
                let mut all = self.by_kid.values().chain(self.without_kid.iter());
                match (all.next(), all.next()) {
                    (Some(only), None) => Some(only.clone()),
                    _ => None,
                }
            }
        }
    }
}

#[derive(Default)]
struct RefreshState {
    /// Every fetch attempt, successful or not, so a waiter can tell one happened while it waited.
    attempts: u64,
    /// Outcome of the latest attempt, shared with requests that waited for it.
    last_error: Option<AuthError>,
    last_failure: Option<Instant>,
    last_unknown_kid_refetch: Option<Instant>,
}

pub(crate) struct KeyStore {
    url: String,
    /// Built on the first key fetch, not at startup: a client loads the system's root
    /// certificates (milliseconds of a cold start), and requests without a token never need it.
    http: std::sync::OnceLock<reqwest::Client>,
    timeout: Duration,
    refetch_cooldown: Duration,
    max_age: Duration,
    current: RwLock<Option<Arc<KeySet>>>,
    /// Mirror of `RefreshState::attempts`, readable before taking the lock.
    attempts: AtomicU64,
    // Single flight: concurrent requests wanting new keys wait for one fetch instead of each
    // making their own.
    refresh: tokio::sync::Mutex<RefreshState>,
}

impl KeyStore {
    pub(crate) fn new(
        url: String,
        http: Option<reqwest::Client>,
        timeout: Duration,
        refetch_cooldown: Duration,
        max_age: Duration,
    ) -> Self {
        let cell = std::sync::OnceLock::new();
        if let Some(http) = http {
            let _ = cell.set(http);
        }
        KeyStore {
            url,
            http: cell,
            timeout,
            refetch_cooldown,
            max_age,
            current: RwLock::new(None),
            attempts: AtomicU64::new(0),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
        }
    }

    fn snapshot(&self) -> Option<Arc<KeySet>> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn is_stale(&self, set: &KeySet) -> bool {
        set.fetched_at.elapsed() >= self.max_age
    }

    /// The key the token names: from the cache, or after one (rate-limited) fetch.
    pub(crate) async fn key_for(&self, kid: Option<&str>) -> Result<Arc<IssuerKey>, AuthError> {
        let cached = self.snapshot();
        if let Some(set) = &cached {
            if !self.is_stale(set) {
                if let Some(key) = set.find(kid) {
                    return Ok(key);
                }
            }
        }
        let attempts_seen = self.attempts_seen();

        let mut state = self.refresh.lock().await;
        let current = self.snapshot();
        if state.attempts != attempts_seen {
            // A fetch ran while we waited: share its outcome rather than queueing fetches one
            // after another (each up to the timeout when the issuer is down).
            if let Some(key) = current.as_ref().and_then(|set| set.find(kid)) {
                return Ok(key);
            }
            return Err(state.last_error.clone().unwrap_or(AuthError::UnknownKey));
        }

        match current {
            None => {
                let set = self.fetch(&mut state).await?;
                set.find(kid).ok_or(AuthError::UnknownKey)
            }
            Some(set) if self.is_stale(&set) => {
                let recently_failed = state
                    .last_failure
                    .is_some_and(|at| at.elapsed() < self.refetch_cooldown);
                let refreshed = if recently_failed {
                    Err(state.last_error.clone().unwrap_or(AuthError::UnknownKey))
                } else {
                    self.fetch(&mut state).await
                };
                match refreshed {
                    Ok(fresh) => fresh.find(kid).ok_or(AuthError::UnknownKey),
                    // Better to keep serving with keys an hour old than to turn every caller
                    // away while the issuer is unreachable.
                    Err(error) => {
                        tracing::warn!(%error, "keeping stale issuer keys");
                        set.find(kid).ok_or(error)
                    }
                }
            }
            Some(set) => {
                if let Some(key) = set.find(kid) {
                    return Ok(key);
                }
                if let Some(last) = state.last_unknown_kid_refetch {
                    if last.elapsed() < self.refetch_cooldown {
                        tracing::debug!("unknown key id; refetch cooling down");
                        return Err(AuthError::UnknownKey);
                    }
                }
                // The issuer may have rotated its keys since we fetched them.
                state.last_unknown_kid_refetch = Some(Instant::now());
                let fresh = self.fetch(&mut state).await?;
                fresh.find(kid).ok_or(AuthError::UnknownKey)
            }
        }
    }

    /// Fetch attempts so far, read without waiting for a fetch in progress.
    fn attempts_seen(&self) -> u64 {
        self.attempts.load(Ordering::SeqCst)
    }

    async fn fetch(&self, state: &mut RefreshState) -> Result<Arc<KeySet>, AuthError> {
        let result = self.fetch_once().await;
        state.attempts += 1;
        self.attempts.store(state.attempts, Ordering::SeqCst);
        match &result {
            Ok(_) => state.last_error = None,
            Err(error) => {
                state.last_error = Some(error.clone());
                state.last_failure = Some(Instant::now());
            }
        }
        result
    }

    async fn fetch_once(&self) -> Result<Arc<KeySet>, AuthError> {
        let document = self.download().await.inspect_err(|error| {
            tracing::warn!(url = %self.url, %error, "issuer key set fetch failed");
        })?;
        let set = Arc::new(parse_key_set(document));
        if set.by_kid.is_empty() && set.without_kid.is_empty() {
            tracing::warn!(url = %self.url, "issuer key set holds no RS256/ES256 signing key");
            return Err(AuthError::JwksUnavailable(
                "issuer publishes no usable signing key".into(),
            ));
        }
        tracing::info!(
            url = %self.url,
            keys = set.by_kid.len() + set.without_kid.len(),
            "fetched issuer key set"
        );
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(set.clone());
        Ok(set)
    }

    async fn download(&self) -> Result<JwksDocument, AuthError> {
        let unavailable = |what: &str, e: reqwest::Error| {
            AuthError::JwksUnavailable(format!("{what}: {}", e.without_url()))
        };
        let response = self
            .http
            .get_or_init(reqwest::Client::new)
            .get(&self.url)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| unavailable("request failed", e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(AuthError::JwksUnavailable(format!(
                "issuer answered {status}"
            )));
        }
        response
            .json::<JwksDocument>()
            .await
            .map_err(|e| unavailable("unreadable key set", e))
    }
}

#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<serde_json::Value>,
}

/// The subset of JWK fields a signing key needs. Parsed key by key, so one exotic key (another
/// curve, an encryption key) does not make the whole set unusable.
#[derive(Deserialize)]
struct JwkFields {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    key_use: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

fn parse_key_set(document: JwksDocument) -> KeySet {
    let mut set = KeySet {
        by_kid: HashMap::new(),
        without_kid: Vec::new(),
        fetched_at: Instant::now(),
    };
    for value in document.keys {
        let Ok(jwk) = serde_json::from_value::<JwkFields>(value) else {
            continue;
        };
        let Some(key) = signing_key(&jwk) else {
            tracing::debug!(kid = ?jwk.kid, kty = %jwk.kty, "skipping issuer key not usable for RS256/ES256");
            continue;
        };
        match jwk.kid {
            Some(kid) => {
                set.by_kid.insert(kid, Arc::new(key));
            }
            None => set.without_kid.push(Arc::new(key)),
        }
    }
    set
}

fn signing_key(jwk: &JwkFields) -> Option<IssuerKey> {
    if jwk.key_use.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    let (algorithm, key) = match jwk.kty.as_str() {
        "RSA" => (
            Algorithm::RS256,
            DecodingKey::from_rsa_components(jwk.n.as_deref()?, jwk.e.as_deref()?).ok()?,
        ),
        "EC" if jwk.crv.as_deref() == Some("P-256") => (
            Algorithm::ES256,
            DecodingKey::from_ec_components(jwk.x.as_deref()?, jwk.y.as_deref()?).ok()?,
        ),
        _ => return None,
    };
    // A key that declares an algorithm is used with that one only.
    if jwk
        .alg
        .as_deref()
        .is_some_and(|alg| alg != algorithm_name(algorithm))
    {
        return None;
    }
    Some(IssuerKey { algorithm, key })
}

pub(crate) fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(keys: serde_json::Value) -> KeySet {
        parse_key_set(serde_json::from_value(json!({ "keys": keys })).unwrap())
    }

    const N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";

    #[test]
    fn usable_keys_kept_and_others_skipped() {
        let keys = set(json!([
            {"kty": "RSA", "kid": "r1", "alg": "RS256", "use": "sig", "n": N, "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": N, "e": "AQAB"},
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": N, "e": "AQAB"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AA", "y": "AA"},
            {"garbage": true}
        ]));
        assert_eq!(keys.by_kid.len(), 1);
        assert_eq!(keys.find(Some("r1")).unwrap().algorithm, Algorithm::RS256);
        assert!(keys.find(Some("hmac")).is_none());
    }

    #[test]
    fn token_without_kid_uses_the_only_key_but_never_guesses_between_two() {
        let one = set(json!([{"kty": "RSA", "kid": "r1", "n": N, "e": "AQAB"}]));
        assert!(one.find(None).is_some());
        let two = set(json!([
            {"kty": "RSA", "kid": "r1", "n": N, "e": "AQAB"},
            {"kty": "RSA", "kid": "r2", "n": N, "e": "AQAB"}
        ]));
        assert!(two.find(None).is_none());
    }
}
