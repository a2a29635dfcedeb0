//! A counting HTTP proxy: forwards every request to an upstream and counts it under a key, so a
//! benchmark can say how many Dfns or DynamoDB calls one route made.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// What a request is counted under.
#[derive(Debug, Clone, Copy)]
pub enum Keying {
    /// DynamoDB: the operation from `X-Amz-Target` (`DynamoDB_20120810.PutItem` → `PutItem`).
    AmzTarget,
    /// Dfns: `METHOD /path` with ids (segments holding a `-` after a short prefix) as `{id}`.
    DfnsRoute,
}

/// Calls counted so far, by key.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<Mutex<BTreeMap<String, u64>>>);

impl Counter {
    fn add(&self, key: String) {
        *self.0.lock().expect("not poisoned").entry(key).or_default() += 1;
    }

    /// The counts, and resets them.
    pub fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.0.lock().expect("not poisoned"))
    }

    pub fn total(&self) -> u64 {
        self.0.lock().expect("not poisoned").values().sum()
    }
}

#[derive(Clone)]
struct Shared {
    upstream: String,
    keying: Keying,
    counter: Counter,
    http: reqwest::Client,
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    counter: Counter,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Proxy {
    pub async fn start(upstream: &str, keying: Keying) -> anyhow::Result<Proxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let counter = Counter::default();
        let shared = Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            keying,
            counter: counter.clone(),
            http: reqwest::Client::new(),
        };
        let router = axum::Router::new().fallback(forward).with_state(shared);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Proxy {
            addr,
            counter,
            server,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn counter(&self) -> Counter {
        self.counter.clone()
    }
}

/// `wa-01abc…` → `{id}`: Dfns ids are a short lowercase prefix, a dash and an opaque rest.
fn route_of(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment.split_once('-') {
            Some((prefix, rest))
                if (2..=4).contains(&prefix.len())
                    && prefix.chars().all(|c| c.is_ascii_lowercase())
                    && rest.len() >= 8 =>
            {
                "{id}"
            }
            _ => segment,
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn forward(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = match shared.keying {
        Keying::AmzTarget => headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("unknown")
            .to_owned(),
        Keying::DfnsRoute => format!("{method} {}", route_of(uri.path())),
    };
    shared.counter.add(key);
    let target = format!(
        "{}{}",
        shared.upstream,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let mut request = shared.http.request(method, target).body(body);
    for (name, value) in &headers {
        if name != axum::http::header::HOST && name != axum::http::header::CONTENT_LENGTH {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Ok(upstream) => {
            let status = upstream.status();
            let headers = upstream.headers().clone();
            let bytes = upstream.bytes().await.unwrap_or_default();
            let mut response = Response::new(axum::body::Body::from(bytes));
            *response.status_mut() = status;
            for (name, value) in &headers {
                if name != axum::http::header::TRANSFER_ENCODING
                    && name != axum::http::header::CONTENT_LENGTH
                {
                    response.headers_mut().append(name, value.clone());
                }
            }
            response
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dfns_ids_collapse_to_one_route() {
        assert_eq!(
            route_of("/wallets/wa-01jabcdefgh/transfers/xfr-01jzzzzzzzz"),
            "/wallets/{id}/transfers/{id}"
        );
        assert_eq!(route_of("/v2/policy-approvals"), "/v2/policy-approvals");
        assert_eq!(route_of("/auth/action/init"), "/auth/action/init");
    }
}
