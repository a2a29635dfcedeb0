//! Test harness: a real emulator per test, clients for its seeded identities, its control API,
//! a log capture, and a webhook receiver.
#![allow(dead_code)] // each test binary uses a different part

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dfns_client::{ClientConfig, DfnsClient, KeySigner, RateLimit, RetryPolicy, SecretString};
use serde_json::{Value, json};

pub struct Emulator {
    pub running: dfns_emulator::RunningEmulator,
    pub base_url: String,
    pub bootstrap: Value,
    control: reqwest::Client,
}

pub async fn emulator() -> Emulator {
    let running = dfns_emulator::spawn(dfns_emulator::Options::default())
        .await
        .expect("emulator starts");
    let base_url = running.base_url();
    // Read the bootstrap as its documented JSON so the test depends on the contract only.
    let bootstrap = serde_json::to_value(running.bootstrap()).unwrap();
    Emulator {
        running,
        base_url,
        bootstrap,
        control: reqwest::Client::new(),
    }
}

/// Who to act as: `serviceAccount`, `admin`, or `officers/N`.
#[derive(Clone, Copy)]
pub enum As {
    ServiceAccount,
    Admin,
    Officer(usize),
}

impl Emulator {
    pub fn identity(&self, who: As) -> &Value {
        match who {
            As::ServiceAccount => &self.bootstrap["serviceAccount"],
            As::Admin => &self.bootstrap["admin"],
            As::Officer(i) => &self.bootstrap["officers"][i],
        }
    }

    pub fn token(&self, who: As) -> String {
        self.identity(who)["token"].as_str().unwrap().to_owned()
    }

    pub fn user_id(&self, who: As) -> String {
        self.identity(who)["userId"].as_str().unwrap().to_owned()
    }

    pub fn signer(&self, who: As) -> KeySigner {
        let identity = self.identity(who);
        KeySigner::from_pkcs8_pem(
            identity["credId"].as_str().unwrap(),
            &SecretString::from(identity["privateKeyPem"].as_str().unwrap().to_owned()),
        )
        .expect("seeded key loads")
    }

    pub fn config(&self, who: As) -> ClientConfig {
        ClientConfig::new(
            SecretString::from(self.token(who)),
            Some(Arc::new(self.signer(who))),
        )
        .with_base_url(self.base_url.clone())
        .with_retry(RetryPolicy {
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            deadline: Duration::from_secs(20),
            max_attempts: 20,
        })
        .with_rate_limit(Some(RateLimit {
            requests_per_minute: 60_000,
            burst: 1_000,
        }))
    }

    pub fn client(&self, who: As) -> DfnsClient {
        DfnsClient::new(self.config(who)).unwrap()
    }

    pub async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.control.request(
            method,
            format!("{}{}", self.base_url.trim_end_matches('/'), path),
        );
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("control API answers");
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "control {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub async fn deposit(&self, wallet_id: &str, amount: &str) -> Value {
        self.control(
            reqwest::Method::POST,
            "/emulator/deposits",
            Some(json!({"walletId": wallet_id, "kind": "Native", "amount": amount})),
        )
        .await
    }

    pub async fn add_fault(&self, fault: Value) {
        self.control(reqwest::Method::POST, "/emulator/faults", Some(fault))
            .await;
    }

    pub async fn clear_faults(&self) {
        self.control(reqwest::Method::DELETE, "/emulator/faults", None)
            .await;
    }

    pub async fn transfers_created(&self) -> u64 {
        self.control(reqwest::Method::GET, "/emulator/stats", None)
            .await["transfers"]
            .as_u64()
            .unwrap()
    }
}

/// Captures everything logged (all targets, TRACE) on the current thread while the guard lives.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Closed `dfns_request` spans (one per HTTP request sent) matching a method and path suffix.
    pub fn requests(&self, method: &str, path_suffix: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|line| line.contains(": close"))
            // The request span's own fields (the enclosing `dfns_call` span is printed before it).
            .filter_map(|line| line.rsplit_once("dfns_request{").map(|(_, own)| own))
            .filter(|own| own.contains(&format!("method={method} ")))
            .filter(|own| {
                own.split_whitespace()
                    .find_map(|w| w.strip_prefix("path="))
                    .is_some_and(|p| p.ends_with(path_suffix))
            })
            .map(str::to_owned)
            .collect()
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One delivery received by the webhook receiver.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub signature: Option<String>,
    pub body: Vec<u8>,
}

/// An HTTP endpoint on loopback that records every POST and answers 200.
pub struct Receiver {
    pub url: String,
    pub deliveries: Arc<Mutex<Vec<Delivery>>>,
}

pub async fn receiver() -> Receiver {
    use axum::body::Bytes;
    use axum::http::HeaderMap;
    let deliveries: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let sink = deliveries.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(Delivery {
                    signature: headers
                        .get("x-dfns-webhook-signature")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                    body: body.to_vec(),
                });
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, deliveries }
}

impl Receiver {
    /// Waits (bounded) until a delivery satisfies `pred`.
    pub async fn wait_for(&self, pred: impl Fn(&Delivery) -> bool) -> Delivery {
        for _ in 0..200 {
            if let Some(found) = self.deliveries.lock().unwrap().iter().find(|d| pred(d)) {
                return found.clone();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "no matching delivery in 5 s; got {:?}",
            self.deliveries
                .lock()
                .unwrap()
                .iter()
                .map(|d| String::from_utf8_lossy(&d.body).into_owned())
                .collect::<Vec<_>>()
        );
    }
}

/// Recipient of the transfers the fault tests send.
pub const RECIPIENT: &str = "0xb282dc7cde21717f18337a596e91ded00b79b25f";

pub fn native(amount: u128) -> dfns_client::TransferAsset {
    dfns_client::TransferAsset::Native {
        to: RECIPIENT.to_owned(),
        amount: dfns_client::Amount::from(amount),
        memo: None,
        priority: None,
    }
}

pub async fn funded_wallet(emu: &Emulator, client: &DfnsClient) -> dfns_client::WalletId {
    let wallet = client
        .create_wallet(&dfns_client::CreateWallet::new(
            dfns_client::Network::EthereumSepolia,
        ))
        .await
        .unwrap();
    emu.deposit(wallet.id.as_str(), "1000000000000000000000")
        .await;
    wallet.id
}
