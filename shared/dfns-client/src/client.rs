//! The HTTP core: one connection pool, user-action signing, retries, request budget and rate
//! limit, tracing.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt as _, TryStreamExt as _};
use rand::Rng as _;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::Instrument as _;
use url::Url;

use crate::common::Page;
use crate::config::{ClientConfig, RetryPolicy};
use crate::error::{ApiError, Error, Result};
use crate::rate_limit::{RequestBudget, SIGNED_CALL_COST, TokenBucket};
use crate::signer::{SignerError, UserActionSigner};

/// The Dfns API client. Cheap to clone: clones share one connection pool and one rate limiter, so
/// build it once per container and hand clones around.
#[derive(Clone)]
pub struct DfnsClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: Url,
    token: SecretString,
    signer: Option<Arc<dyn UserActionSigner>>,
    request_timeout: Duration,
    retry: RetryPolicy,
    limiter: Option<TokenBucket>,
    budget: Option<Arc<dyn RequestBudget>>,
    on_unauthorized: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for DfnsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DfnsClient")
            .field("base_url", &self.inner.base_url.as_str())
            .field("signer", &self.inner.signer)
            .finish_non_exhaustive()
    }
}

/// Whether a call may be sent again after Dfns might have acted on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// Reads, and writes whose repetition has the same effect (transfer with `externalId`, tags).
    Safe,
    /// Sent at most once. The signing round trips before it are still retried: they change nothing.
    Never,
}

/// One API call, with its body serialised exactly once.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    method: Method,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    /// The exact text that is both signed (`userActionPayload`) and sent.
    body: Option<String>,
    signed: bool,
    repeat: Repeat,
}

impl Request {
    /// An unsigned GET (always safe to repeat).
    pub(crate) fn get<S: Into<String>>(segments: impl IntoIterator<Item = S>) -> Self {
        Self {
            method: Method::GET,
            segments: segments.into_iter().map(Into::into).collect(),
            query: Vec::new(),
            body: None,
            signed: false,
            repeat: Repeat::Safe,
        }
    }

    /// A state-changing call, signed with a user action. A call without a meaningful body sends `{}`
    /// (as the TypeScript SDK does).
    pub(crate) fn signed<S: Into<String>>(
        method: Method,
        segments: impl IntoIterator<Item = S>,
        body: &impl Serialize,
        repeat: Repeat,
    ) -> Result<Self> {
        let body = serde_json::to_string(body)
            .map_err(|e| Error::InvalidRequest(format!("cannot serialise request body: {e}")))?;
        Ok(Self {
            method,
            segments: segments.into_iter().map(Into::into).collect(),
            query: Vec::new(),
            body: Some(body),
            signed: true,
            repeat,
        })
    }

    pub(crate) fn query(mut self, key: &str, value: impl ToString) -> Self {
        self.query.push((key.to_owned(), value.to_string()));
        self
    }

    pub(crate) fn query_opt(self, key: &str, value: Option<impl ToString>) -> Self {
        match value {
            Some(value) => self.query(key, value),
            None => self,
        }
    }
}

/// A 2xx answer.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

impl Response {
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Decode {
            status: self.status,
            reason: e.to_string(),
        })
    }
}

/// A failed attempt, and whether the request itself had gone out (the signing steps before it
/// change nothing, so failing there never makes repeating unsafe).
struct AttemptError {
    error: Error,
    sent: bool,
}

impl AttemptError {
    fn before_send(error: impl Into<Error>) -> Self {
        Self {
            error: error.into(),
            sent: false,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InitBody<'a> {
    user_action_http_method: &'a str,
    user_action_http_path: &'a str,
    user_action_payload: &'a str,
    user_action_server_kind: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Challenge {
    challenge: String,
    challenge_identifier: String,
    #[serde(default)]
    allow_credentials: AllowCredentials,
}

#[derive(Deserialize, Default)]
struct AllowCredentials {
    #[serde(default)]
    key: Vec<AllowedCredential>,
}

#[derive(Deserialize)]
struct AllowedCredential {
    id: String,
}

/// `{"type":"key.get","challenge":"…"}`, field order as the official key signer writes it.
#[derive(Serialize)]
struct ClientData<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    challenge: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CompleteBody<'a> {
    challenge_identifier: &'a str,
    first_factor: FirstFactor<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FirstFactor<'a> {
    kind: &'a str,
    credential_assertion: CredentialAssertion<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CredentialAssertion<'a> {
    cred_id: &'a str,
    client_data: String,
    signature: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserActionToken {
    #[serde(deserialize_with = "secret_string")]
    user_action: SecretString,
}

pub(crate) fn secret_string<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<SecretString, D::Error> {
    String::deserialize(deserializer).map(SecretString::from)
}

impl DfnsClient {
    /// Builds the client and its connection pool (rustls).
    pub fn new(config: ClientConfig) -> Result<Self> {
        let mut base_url = Url::parse(&config.base_url)
            .map_err(|e| Error::InvalidRequest(format!("bad Dfns base URL: {e}")))?;
        if base_url.cannot_be_a_base() {
            return Err(Error::InvalidRequest(
                "bad Dfns base URL: cannot be a base".into(),
            ));
        }
        base_url.set_query(None);
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(Duration::from_secs(50))
            .user_agent(concat!(
                "managed-accounts-dfns-client/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| Error::InvalidRequest(format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base_url,
                token: config.token,
                signer: config.signer,
                request_timeout: config.request_timeout,
                retry: config.retry,
                limiter: config.rate_limit.map(TokenBucket::new),
                budget: config.budget,
                on_unauthorized: config.on_unauthorized,
            }),
        })
    }

    /// The base URL calls go to.
    pub fn base_url(&self) -> &str {
        self.inner.base_url.as_str()
    }

    fn url(&self, segments: &[String], query: &[(String, String)]) -> Url {
        let mut url = self.inner.base_url.clone();
        {
            let mut path = url
                .path_segments_mut()
                .expect("checked in new: base URL can be a base");
            path.pop_if_empty();
            // Each segment percent-encoded: an id can never change the path it is put in.
            path.extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends a call, retrying where that is safe, and returns the 2xx answer.
    pub(crate) async fn call(&self, request: Request) -> Result<Response> {
        let url = self.url(&request.segments, &request.query);
        let path = url.path().to_owned();
        let started = Instant::now();
        let span = tracing::info_span!(
            "dfns_call",
            method = %request.method,
            path = %path,
            signed = request.signed,
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        );
        async {
            let result = self
                .with_retries(&request.method, &path, request.repeat, started, |attempt| {
                    self.attempt(&request, &url, &path, attempt, started)
                })
                .await;
            let span = tracing::Span::current();
            span.record("latency_ms", started.elapsed().as_millis() as u64);
            match &result {
                Ok(response) => span.record("status", response.status),
                Err(error) => span.record("status", error.status().unwrap_or(0)),
            };
            result
        }
        .instrument(span)
        .await
    }

    /// Runs `op` until it succeeds, fails for good, or the call's deadline (counted from
    /// `started`) leaves no room for another wait.
    async fn with_retries<T, F, Fut>(
        &self,
        method: &Method,
        path: &str,
        repeat: Repeat,
        started: Instant,
        mut op: F,
    ) -> Result<T>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = std::result::Result<T, AttemptError>>,
    {
        let policy = self.inner.retry;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let failure = match op(attempt).await {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            // A signing step inside already spent the deadline: nothing left to retry with.
            if matches!(failure.error, Error::RetriesExhausted { .. }) {
                return Err(failure.error);
            }
            let may_repeat =
                failure.error.is_retryable() && (repeat == Repeat::Safe || !failure.sent);
            if !may_repeat {
                return Err(failure.error);
            }
            let wait = backoff(&policy, attempt, failure.error.retry_after());
            let elapsed = started.elapsed();
            if attempt >= policy.max_attempts || elapsed + wait >= policy.deadline {
                tracing::warn!(
                    method = %method, path = %path, attempts = attempt,
                    error = %failure.error, "giving up on Dfns call"
                );
                return Err(Error::RetriesExhausted {
                    attempts: attempt,
                    elapsed,
                    last: Box::new(failure.error),
                });
            }
            tracing::info!(
                method = %method, path = %path, attempt,
                wait_ms = wait.as_millis() as u64, error = %failure.error,
                "retrying Dfns call"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// A stream over every item of every page of a list call (docs/dfns.md §8.2).
    pub(crate) fn paginate<T>(&self, request: Request) -> BoxStream<'static, Result<T>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let start = (self.clone(), request, Some(None::<String>));
        futures::stream::try_unfold(start, |(client, request, next)| async move {
            let Some(token) = next else {
                return Ok::<_, Error>(None);
            };
            let page: Page<T> = client
                .call_json(
                    request
                        .clone()
                        .query_opt("paginationToken", token.as_deref()),
                )
                .await?;
            let next = match page.next_page_token {
                None => None,
                Some(next) if next.is_empty() => None,
                // Following it would loop forever; stopping would silently drop items.
                Some(next) if Some(&next) == token.as_ref() => {
                    return Err(Error::Decode {
                        status: 200,
                        reason: "Dfns returned the page token it was given as the next one".into(),
                    });
                }
                Some(next) => Some(Some(next)),
            };
            let items = futures::stream::iter(page.items.into_iter().map(Ok::<T, Error>));
            Ok(Some((items, (client, request, next))))
        })
        .try_flatten()
        .boxed()
    }

    pub(crate) async fn call_json<T: DeserializeOwned>(&self, request: Request) -> Result<T> {
        self.call(request).await?.json()
    }

    async fn attempt(
        &self,
        request: &Request,
        url: &Url,
        path: &str,
        attempt: u32,
        started: Instant,
    ) -> std::result::Result<Response, AttemptError> {
        // Every request of the attempt paid for before the first one goes: a signed call never
        // starts a user action it may not finish.
        let cost = if request.signed { SIGNED_CALL_COST } else { 1 };
        self.spend_budget(cost, started)
            .await
            .map_err(AttemptError::before_send)?;
        let user_action = if request.signed {
            let payload = request.body.as_deref().unwrap_or("");
            Some(
                self.user_action(&request.method, path, payload, started)
                    .await
                    .map_err(AttemptError::before_send)?,
            )
        } else {
            None
        };
        self.send_once(
            request.method.clone(),
            url,
            request.body.as_deref(),
            user_action.as_ref(),
            attempt,
            started,
        )
        .await
        .map_err(|error| AttemptError {
            // A refused connection or failed handshake never carried the request; a timeout or
            // a connection dropped later may hide a request Dfns acted on.
            sent: !matches!(&error, Error::Connection(e) if e.is_connect()),
            error,
        })
    }

    /// init → sign clientData → complete (docs/dfns.md §2.3–2.5). Returns the single-use
    /// token.
    async fn user_action(
        &self,
        method: &Method,
        path: &str,
        payload: &str,
        started: Instant,
    ) -> Result<SecretString> {
        let signer = self.inner.signer.as_ref().ok_or_else(|| {
            Error::InvalidRequest("this call needs a user-action signer; none configured".into())
        })?;
        let init = serde_json::to_string(&InitBody {
            user_action_http_method: method.as_str(),
            user_action_http_path: path,
            user_action_payload: payload,
            user_action_server_kind: "Api",
        })
        .expect("strings always serialise");
        let init_url = self.url(&["auth".into(), "action".into(), "init".into()], &[]);
        let challenge: Challenge = self.signing_step(&init_url, &init, started).await?.json()?;
        let cred_id = signer.credential_id();
        if !challenge
            .allow_credentials
            .key
            .iter()
            .any(|allowed| allowed.id == cred_id)
        {
            return Err(SignerError::CredentialNotAllowed {
                cred_id: cred_id.to_owned(),
            }
            .into());
        }
        let client_data = serde_json::to_vec(&ClientData {
            kind: "key.get",
            challenge: &challenge.challenge,
        })
        .expect("strings always serialise");
        let signature = signer.sign(&client_data).await?;
        let complete = serde_json::to_string(&CompleteBody {
            challenge_identifier: &challenge.challenge_identifier,
            first_factor: FirstFactor {
                kind: "Key",
                credential_assertion: CredentialAssertion {
                    cred_id,
                    client_data: URL_SAFE_NO_PAD.encode(&client_data),
                    signature: URL_SAFE_NO_PAD.encode(&signature),
                },
            },
        })
        .expect("strings always serialise");
        let complete_url = self.url(&["auth".into(), "action".into()], &[]);
        let token: UserActionToken = self
            .signing_step(&complete_url, &complete, started)
            .await?
            .json()?;
        Ok(token.user_action)
    }

    /// One signing round trip (init or complete), retried on its own: it changes nothing, and
    /// restarting the whole round on every throttled step would rarely get through a 429 storm.
    async fn signing_step(&self, url: &Url, body: &str, started: Instant) -> Result<Response> {
        self.with_retries(
            &Method::POST,
            url.path(),
            Repeat::Safe,
            started,
            |attempt| async move {
                // The first try was paid for with the whole signed call; a retry is one more.
                if attempt > 1 {
                    self.spend_budget(1, started)
                        .await
                        .map_err(AttemptError::before_send)?;
                }
                self.send_once(Method::POST, url, Some(body), None, attempt, started)
                    .await
                    .map_err(AttemptError::before_send)
            },
        )
        .await
    }

    /// Takes `cost` requests from the shared budget, if there is one, waiting at most what is left
    /// of the call's deadline. A refusal is a 429 as Dfns would answer it (so it is retried, and
    /// reported, exactly like one), except that nothing was sent.
    async fn spend_budget(&self, cost: u32, started: Instant) -> Result<()> {
        let Some(budget) = &self.inner.budget else {
            return Ok(());
        };
        let remaining = self.inner.retry.deadline.saturating_sub(started.elapsed());
        let waiting = Instant::now();
        let retry_after = match tokio::time::timeout(remaining, budget.acquire(cost)).await {
            Ok(Ok(())) => {
                let waited = waiting.elapsed();
                if !waited.is_zero() {
                    tracing::debug!(
                        cost,
                        wait_ms = waited.as_millis() as u64,
                        "Dfns request budget"
                    );
                }
                return Ok(());
            }
            Ok(Err(exhausted)) => Some(exhausted.retry_after),
            Err(_deadline) => None,
        };
        tracing::info!(
            cost,
            ?retry_after,
            "Dfns request budget spent; request not sent"
        );
        Err(ApiError {
            status: 429,
            message: "the organisation's Dfns request budget is spent (not sent to Dfns)".into(),
            id: None,
            code: Some(BUDGET_EXHAUSTED_CODE.into()),
            details: None,
            retry_after,
        }
        .into())
    }

    /// One HTTP request: rate limit, headers, per-request timeout, span. Non-2xx becomes `Api`.
    async fn send_once(
        &self,
        method: Method,
        url: &Url,
        body: Option<&str>,
        user_action: Option<&SecretString>,
        attempt: u32,
        started: Instant,
    ) -> Result<Response> {
        let span = tracing::info_span!(
            "dfns_request",
            method = %method,
            path = %url.path(),
            attempt,
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        );
        async move {
            if let Some(limiter) = &self.inner.limiter {
                limiter.acquire().await;
            }
            // Never wait past the call's deadline on one request (but always give it a moment).
            let remaining = self.inner.retry.deadline.saturating_sub(started.elapsed());
            let timeout = self
                .inner
                .request_timeout
                .min(remaining.max(Duration::from_millis(500)));
            let mut builder = self
                .inner
                .http
                .request(method, url.clone())
                .timeout(timeout)
                .bearer_auth(self.inner.token.expose_secret());
            if let Some(user_action) = user_action {
                builder = builder.header("X-DFNS-USERACTION", user_action.expose_secret());
            }
            if let Some(body) = body {
                builder = builder
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_owned());
            }
            let sent_at = Instant::now();
            let result = async {
                let response = builder.send().await.map_err(Error::from_transport)?;
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                let body = response.bytes().await.map_err(Error::from_transport)?;
                Ok::<_, Error>((status, retry_after, body))
            }
            .await;
            let latency_ms = sent_at.elapsed().as_millis() as u64;
            let span = tracing::Span::current();
            span.record("latency_ms", latency_ms);
            match result {
                Ok((status, retry_after, body)) => {
                    span.record("status", status);
                    tracing::debug!(status, latency_ms, "Dfns answered");
                    if (200..300).contains(&status) {
                        Ok(Response { status, body })
                    } else {
                        if status == 401 {
                            if let Some(hook) = &self.inner.on_unauthorized {
                                hook();
                            }
                        }
                        Err(ApiError::from_response(status, &body, retry_after).into())
                    }
                }
                Err(error) => {
                    tracing::debug!(latency_ms, error = %error, "Dfns request failed");
                    Err(error)
                }
            }
        }
        .instrument(span)
        .await
    }
}

/// The `code` of the 429 a refused [`RequestBudget`] answers (Dfns' own 429s carry theirs).
pub const BUDGET_EXHAUSTED_CODE: &str = "RequestBudgetExhausted";

/// `Retry-After` as RFC 9110 allows it: delay seconds, or an HTTP date (a past date is "now").
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Exponential backoff with "equal jitter" (half fixed, half random), never earlier than a
/// `Retry-After` Dfns gave (plus up to 10% so clients told the same moment spread out).
fn backoff(policy: &RetryPolicy, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let exponential = policy
        .initial_backoff
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(policy.max_backoff);
    let mut rng = rand::thread_rng();
    let half = exponential / 2;
    let jittered = half + half.mul_f64(rng.r#gen::<f64>());
    match retry_after {
        Some(asked) => jittered.max(asked + asked.mul_f64(rng.r#gen::<f64>() * 0.1)),
        None => jittered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        let in_a_minute = std::time::SystemTime::now() + Duration::from_secs(60);
        let wait = parse_retry_after(&httpdate::fmt_http_date(in_a_minute)).unwrap();
        assert!(
            wait > Duration::from_secs(55) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn backoff_grows_stays_capped_and_honours_retry_after() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            deadline: Duration::from_secs(30),
            max_attempts: 10,
        };
        for _ in 0..100 {
            let first = backoff(&policy, 1, None);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = backoff(&policy, 3, None);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let late = backoff(&policy, 30, None);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_secs(1));
            let told = backoff(&policy, 1, Some(Duration::from_secs(2)));
            assert!(told >= Duration::from_secs(2) && told <= Duration::from_millis(2200));
        }
    }

    #[test]
    fn ids_are_percent_encoded_into_one_segment() {
        let client = DfnsClient::new(
            ClientConfig::new(SecretString::from("t".to_owned()), None)
                .with_base_url("http://127.0.0.1:1/"),
        )
        .unwrap();
        let url = client.url(&["wallets".into(), "../auth/x?y".into()], &[]);
        assert_eq!(url.path(), "/wallets/..%2Fauth%2Fx%3Fy");
        let url = client.url(
            &["wallets".into()],
            &[
                ("limit".into(), "5".into()),
                ("paginationToken".into(), "a b&c".into()),
            ],
        );
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:1/wallets?limit=5&paginationToken=a+b%26c"
        );
    }

    /// Records every acquisition's cost; grants, refuses, or never answers.
    #[derive(Debug)]
    struct RecordingBudget {
        costs: std::sync::Mutex<Vec<u32>>,
        answer: BudgetAnswer,
    }

    #[derive(Debug, Clone, Copy)]
    enum BudgetAnswer {
        Grant,
        Refuse(Duration),
        Hang,
    }

    impl RecordingBudget {
        fn new(answer: BudgetAnswer) -> Arc<Self> {
            Arc::new(Self {
                costs: std::sync::Mutex::new(Vec::new()),
                answer,
            })
        }

        fn costs(&self) -> Vec<u32> {
            self.costs.lock().unwrap().clone()
        }
    }

    impl RequestBudget for RecordingBudget {
        fn acquire(
            &self,
            cost: u32,
        ) -> futures::future::BoxFuture<'_, std::result::Result<(), crate::BudgetExhausted>>
        {
            self.costs.lock().unwrap().push(cost);
            let answer = self.answer;
            Box::pin(async move {
                match answer {
                    BudgetAnswer::Grant => Ok(()),
                    BudgetAnswer::Refuse(retry_after) => {
                        Err(crate::BudgetExhausted { retry_after })
                    }
                    BudgetAnswer::Hang => futures::future::pending().await,
                }
            })
        }
    }

    fn quick_retries(deadline: Duration) -> RetryPolicy {
        RetryPolicy {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            deadline,
            max_attempts: 10,
        }
    }

    #[tokio::test]
    async fn a_signed_call_pays_three_requests_up_front_and_a_read_one() {
        let emulator = dfns_emulator::spawn(dfns_emulator::Options::default())
            .await
            .unwrap();
        let identity = emulator.bootstrap().service_account.clone();
        let signer = crate::KeySigner::from_pkcs8_pem(
            &identity.cred_id,
            &SecretString::from(identity.private_key_pem),
        )
        .unwrap();
        let budget = RecordingBudget::new(BudgetAnswer::Grant);
        let client = DfnsClient::new(
            ClientConfig::new(SecretString::from(identity.token), Some(Arc::new(signer)))
                .with_base_url(emulator.base_url())
                .with_budget(Some(budget.clone())),
        )
        .unwrap();
        let wallet = client
            .create_wallet(&crate::CreateWallet::new(crate::Network::EthereumSepolia))
            .await
            .unwrap();
        assert_eq!(budget.costs(), [SIGNED_CALL_COST]);
        client.get_wallet(&wallet.id).await.unwrap();
        assert_eq!(budget.costs(), [SIGNED_CALL_COST, 1]);
    }

    #[tokio::test]
    async fn every_retry_pays_again() {
        // Throttles the first request, then answers 404 (not retried).
        let seen = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = seen.clone();
        let app = axum::Router::new().fallback(move || {
            let counter = counter.clone();
            async move {
                match counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                    0 => (
                        axum::http::StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "0")],
                    ),
                    _ => (axum::http::StatusCode::NOT_FOUND, [("retry-after", "0")]),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let budget = RecordingBudget::new(BudgetAnswer::Grant);
        let client = DfnsClient::new(
            ClientConfig::new(SecretString::from("t".to_owned()), None)
                .with_base_url(url)
                .with_retry(quick_retries(Duration::from_secs(5)))
                .with_budget(Some(budget.clone())),
        )
        .unwrap();
        let error = client
            .get_wallet(&crate::WalletId::new("wa-1"))
            .await
            .unwrap_err();
        assert_eq!(error.status(), Some(404));
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(budget.costs(), [1, 1], "one request per attempt");
        server.abort();
    }

    /// Nothing listens on port 1: a request that went out would fail to connect instead.
    fn client_with_budget(budget: Arc<RecordingBudget>, deadline: Duration) -> DfnsClient {
        DfnsClient::new(
            ClientConfig::new(SecretString::from("t".to_owned()), None)
                .with_base_url("http://127.0.0.1:1/")
                .with_retry(quick_retries(deadline))
                .with_budget(Some(budget)),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_refusing_budget_is_a_dfns_429_and_nothing_is_sent() {
        let budget = RecordingBudget::new(BudgetAnswer::Refuse(Duration::from_secs(60)));
        let client = client_with_budget(budget.clone(), Duration::from_secs(5));
        let error = client
            .get_wallet(&crate::WalletId::new("wa-1"))
            .await
            .unwrap_err();
        // As a Dfns 429 whose Retry-After outlasts the deadline: given up at once, retryable.
        assert!(
            matches!(&error, Error::RetriesExhausted { attempts: 1, .. }),
            "{error:?}"
        );
        assert_eq!(error.status(), Some(429));
        assert!(error.is_retryable());
        let api = error.api().unwrap();
        assert_eq!(api.code.as_deref(), Some(BUDGET_EXHAUSTED_CODE));
        assert_eq!(api.retry_after, Some(Duration::from_secs(60)));
        assert_eq!(budget.costs(), [1]);

        // A short refusal is retried like a short Retry-After, inside the deadline.
        let budget = RecordingBudget::new(BudgetAnswer::Refuse(Duration::from_millis(20)));
        let client = client_with_budget(budget.clone(), Duration::from_millis(500));
        let error = client
            .get_wallet(&crate::WalletId::new("wa-1"))
            .await
            .unwrap_err();
        assert_eq!(error.status(), Some(429), "{error:?}");
        assert!(budget.costs().len() > 1, "{:?}", budget.costs());
    }

    #[tokio::test]
    async fn waiting_on_the_budget_ends_with_the_calls_deadline() {
        let budget = RecordingBudget::new(BudgetAnswer::Hang);
        let client = client_with_budget(budget.clone(), Duration::from_millis(300));
        let error = tokio::time::timeout(
            Duration::from_secs(5),
            client.get_wallet(&crate::WalletId::new("wa-1")),
        )
        .await
        .expect("the call's deadline ends the wait")
        .unwrap_err();
        assert_eq!(error.status(), Some(429), "{error:?}");
        assert!(
            matches!(&error, Error::RetriesExhausted { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn client_data_matches_the_official_key_signer_bytes() {
        let bytes = serde_json::to_vec(&ClientData {
            kind: "key.get",
            challenge: "Y2gtMzll",
        })
        .unwrap();
        assert_eq!(bytes, br#"{"type":"key.get","challenge":"Y2gtMzll"}"#);
    }
}
