//! AWS configuration and clients, built once per process and shared (clients are cheap clones
//! over one connection pool, so warm Lambda invocations reuse connections).
//!
//! Bounded: at most [`MAX_IN_FLIGHT`] requests to AWS are in flight per process, whatever the
//! load (a burst of webhooks once opened thousands of connections to DynamoDB at once, issue 19);
//! the others wait for a slot. Each attempt has a deadline ([`timeouts`]), so a stuck connection
//! does not hold a slot forever.
//!
//! The pool belongs to the tokio runtime that first used it: call these from the process's one
//! runtime (as a Lambda `main` or the local stack does), not from many short-lived runtimes.

use std::sync::Arc;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use tokio::sync::{OnceCell, Semaphore};

/// Requests to AWS in flight at once per process (so connections per process stay below it).
pub const MAX_IN_FLIGHT: usize = 64;

static SDK_CONFIG: OnceCell<SdkConfig> = OnceCell::const_new();
static DYNAMODB: OnceCell<aws_sdk_dynamodb::Client> = OnceCell::const_new();
static SECRETS_MANAGER: OnceCell<aws_sdk_secretsmanager::Client> = OnceCell::const_new();

/// Connect within 3 s, each attempt within 10 s, a whole call (retries included) within 25 s:
/// under API Gateway's 29 s.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(25))
        .build()
}

/// The process-wide SDK configuration (region, credentials, endpoints from the environment),
/// with the bounded HTTP client and [`timeouts`].
pub async fn sdk_config() -> &'static SdkConfig {
    SDK_CONFIG
        .get_or_init(|| {
            aws_config::defaults(BehaviorVersion::latest())
                .http_client(bounded_https_client(MAX_IN_FLIGHT))
                .timeout_config(timeouts())
                .load()
        })
        .await
}

pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    DYNAMODB
        .get_or_init(|| async { aws_sdk_dynamodb::Client::new(sdk_config().await) })
        .await
        .clone()
}

pub async fn secrets_manager_client() -> aws_sdk_secretsmanager::Client {
    SECRETS_MANAGER
        .get_or_init(|| async { aws_sdk_secretsmanager::Client::new(sdk_config().await) })
        .await
        .clone()
}

/// The SDK's default HTTPS client (hyper, rustls with aws-lc), letting at most `limit` requests
/// through at once. A slot is held until the response's body is read: the connection is busy
/// until then, so connections stay at most as many as slots.
pub fn bounded_https_client(limit: usize) -> SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let inner = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .build_https();
    SharedHttpClient::new(BoundedClient {
        inner,
        slots: Arc::new(Semaphore::new(limit)),
    })
}

#[derive(Debug)]
struct BoundedClient {
    inner: SharedHttpClient,
    slots: Arc<Semaphore>,
}

impl HttpClient for BoundedClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(BoundedConnector {
            inner: self.inner.http_connector(settings, components),
            slots: self.slots.clone(),
        })
    }
}

#[derive(Debug)]
struct BoundedConnector {
    inner: SharedHttpConnector,
    slots: Arc<Semaphore>,
}

impl HttpConnector for BoundedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let slots = self.slots.clone();
        HttpConnectorFuture::new(async move {
            let _slot = slots
                .acquire_owned()
                .await
                .map_err(|e| ConnectorError::other(Box::new(e), None))?;
            let mut response = inner.call(request).await?;
            // Read the body before the slot goes. Released at the headers, a slot let a new
            // request open a new connection while the last one was still reading its body: 97
            // connections to DynamoDB against 64 slots under issue 19's burst. The platform's
            // AWS responses are JSON or XML read whole anyway (it streams no downloads).
            let body = ByteStream::new(response.take_body())
                .collect()
                .await
                .map_err(|e| ConnectorError::io(Box::new(e)))?;
            *response.body_mut() = SdkBody::from(body.into_bytes());
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connector that counts requests in flight and answers after a pause.
    #[derive(Debug, Default)]
    struct Slow {
        now: std::sync::atomic::AtomicUsize,
        peak: std::sync::atomic::AtomicUsize,
    }

    #[tokio::test]
    async fn no_more_than_the_limit_is_in_flight() {
        use std::sync::atomic::Ordering;
        let slow = Arc::new(Slow::default());
        #[derive(Debug)]
        struct Counting(Arc<Slow>);
        impl HttpConnector for Counting {
            fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
                let slow = self.0.clone();
                HttpConnectorFuture::new(async move {
                    let now = slow.now.fetch_add(1, Ordering::SeqCst) + 1;
                    slow.peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    slow.now.fetch_sub(1, Ordering::SeqCst);
                    Ok(aws_smithy_runtime_api::http::Response::new(
                        200.try_into().unwrap(),
                        aws_smithy_types::body::SdkBody::empty(),
                    ))
                })
            }
        }
        let bounded = BoundedConnector {
            inner: SharedHttpConnector::new(Counting(slow.clone())),
            slots: Arc::new(Semaphore::new(4)),
        };
        let calls = (0..40)
            .map(|_| bounded.call(HttpRequest::new(aws_smithy_types::body::SdkBody::empty())));
        for result in join_spawned(calls).await {
            assert!(result.is_ok());
        }
        assert_eq!(slow.peak.load(Ordering::SeqCst), 4);
    }

    /// A response body that arrives after a pause, counting itself open until it is read (or
    /// dropped): the connection it stands for is busy until then.
    struct SlowBody {
        slow: Arc<Slow>,
        pause: std::pin::Pin<Box<tokio::time::Sleep>>,
        open: bool,
    }

    impl SlowBody {
        fn close(&mut self) {
            if std::mem::replace(&mut self.open, false) {
                self.slow
                    .now
                    .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }

    impl http_body::Body for SlowBody {
        type Data = bytes::Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, std::io::Error>>>
        {
            if !self.open {
                return std::task::Poll::Ready(None);
            }
            std::task::ready!(self.pause.as_mut().poll(cx));
            self.close();
            std::task::Poll::Ready(Some(Ok(http_body::Frame::data(bytes::Bytes::from_static(
                b"{}",
            )))))
        }
    }

    impl Drop for SlowBody {
        fn drop(&mut self) {
            self.close();
        }
    }

    /// Headers at once, the body 20 ms later: a slot released at the headers would let every
    /// caller through while the earlier bodies are still on their connections.
    #[tokio::test]
    async fn a_slot_is_held_until_the_body_is_read() {
        use std::sync::atomic::Ordering;
        let slow = Arc::new(Slow::default());
        #[derive(Debug)]
        struct SlowBodies(Arc<Slow>);
        impl HttpConnector for SlowBodies {
            fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
                let slow = self.0.clone();
                HttpConnectorFuture::new(async move {
                    let now = slow.now.fetch_add(1, Ordering::SeqCst) + 1;
                    slow.peak.fetch_max(now, Ordering::SeqCst);
                    let body = SlowBody {
                        slow,
                        pause: Box::pin(tokio::time::sleep(Duration::from_millis(20))),
                        open: true,
                    };
                    Ok(aws_smithy_runtime_api::http::Response::new(
                        200.try_into().unwrap(),
                        aws_smithy_types::body::SdkBody::from_body_1_x(body),
                    ))
                })
            }
        }
        let bounded = BoundedConnector {
            inner: SharedHttpConnector::new(SlowBodies(slow.clone())),
            slots: Arc::new(Semaphore::new(4)),
        };
        let calls = (0..40)
            .map(|_| bounded.call(HttpRequest::new(aws_smithy_types::body::SdkBody::empty())));
        let responses = join_spawned(calls).await;
        assert_eq!(
            slow.peak.load(Ordering::SeqCst),
            4,
            "connections busy at once"
        );
        for response in &responses {
            let response = response.as_ref().expect("answered");
            assert_eq!(
                response.body().bytes(),
                Some(&b"{}"[..]),
                "the body is kept"
            );
        }
    }

    async fn join_spawned<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handles: Vec<_> = futures.map(tokio::spawn).collect();
        let mut out = Vec::new();
        for handle in handles {
            out.push(handle.await.unwrap());
        }
        out
    }
}
