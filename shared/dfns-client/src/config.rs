//! Client settings. Secrets come in already loaded (the Secrets crate owns where they live).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::rate_limit::RequestBudget;
use crate::signer::UserActionSigner;

/// Dfns production, default region (docs/dfns.md §1.1).
pub const DEFAULT_BASE_URL: &str = "https://api.dfns.io";

/// Everything [`crate::DfnsClient::new`] needs.
#[derive(Clone)]
pub struct ClientConfig {
    /// `https://api.dfns.io` in production, the emulator's URL locally.
    pub base_url: String,
    /// Service-account (or officer) bearer token.
    pub token: SecretString,
    /// Signs user actions; `None` makes every state-changing call fail with `InvalidRequest`.
    pub signer: Option<Arc<dyn UserActionSigner>>,
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Timeout of one HTTP request (also capped by what is left of the call's deadline).
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    /// Client-side token bucket shared by every clone of the client; `None` disables it.
    pub rate_limit: Option<RateLimit>,
    /// A request budget shared beyond this client (the organisation's, across containers), awaited
    /// before each attempt; `None`: only [`Self::rate_limit`] applies.
    pub budget: Option<Arc<dyn RequestBudget>>,
    /// Called when Dfns answers 401 (the token is revoked, expired or rotated): the owner of the
    /// credentials can fetch fresh ones before its next call.
    pub on_unauthorized: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl ClientConfig {
    /// Production base URL, default timeouts, retries and rate limit.
    pub fn new(token: SecretString, signer: Option<Arc<dyn UserActionSigner>>) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            token,
            signer,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(20),
            retry: RetryPolicy::default(),
            rate_limit: Some(RateLimit::default()),
            budget: None,
            on_unauthorized: None,
        }
    }

    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn with_rate_limit(mut self, rate_limit: Option<RateLimit>) -> Self {
        self.rate_limit = rate_limit;
        self
    }

    pub fn with_budget(mut self, budget: Option<Arc<dyn RequestBudget>>) -> Self {
        self.budget = budget;
        self
    }

    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    pub fn with_on_unauthorized(mut self, hook: Arc<dyn Fn() + Send + Sync>) -> Self {
        self.on_unauthorized = Some(hook);
        self
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url)
            .field("token", &"[redacted]")
            .field("signer", &self.signer)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("rate_limit", &self.rate_limit)
            .field("budget", &self.budget)
            .field("on_unauthorized", &self.on_unauthorized.is_some())
            .finish()
    }
}

/// Exponential backoff with jitter inside an overall deadline per call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Wait before the first retry (then doubled each time, with jitter).
    pub initial_backoff: Duration,
    /// Upper bound of one wait (a longer `Retry-After` is still honoured if the deadline allows).
    pub max_backoff: Duration,
    /// No retry starts after this much time since the call began.
    pub deadline: Duration,
    /// Hard cap on attempts per call (1 = never retry).
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            deadline: Duration::from_secs(30),
            max_attempts: 10,
        }
    }
}

impl RetryPolicy {
    /// One attempt only.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }
}

/// Token bucket: `requests_per_minute` sustained, up to `burst` at once, per client (and its
/// clones: one per container). It smooths one container's requests; the organisation's Dfns limit
/// (100/min on Trial plans, 1000/min otherwise) is shared between containers by a
/// [`RequestBudget`] ([`ClientConfig::budget`]). Note a signed call costs three requests (init,
/// action, call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests_per_minute: u32,
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            requests_per_minute: 1000,
            burst: 50,
        }
    }
}
