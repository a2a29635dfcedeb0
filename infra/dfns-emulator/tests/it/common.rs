//! Test-only Dfns client: signs user actions with the bootstrap keys exactly as the official
//! key signer does (clientData `{"type":"key.get","challenge":…}`, Ed25519 raw / P-256 DER).
#![allow(dead_code)]

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dfns_emulator::{Identity, Options, RunningEmulator};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub enum TestKey {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
}

impl TestKey {
    pub fn from_pem(pem: &str) -> Self {
        use ed25519_dalek::pkcs8::DecodePrivateKey;
        if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            return TestKey::Ed25519(key);
        }
        let secret = p256::SecretKey::from_pkcs8_pem(pem).expect("PEM is Ed25519 or P-256 PKCS#8");
        TestKey::P256(p256::ecdsa::SigningKey::from(secret))
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            TestKey::Ed25519(key) => {
                use ed25519_dalek::Signer;
                key.sign(message).to_bytes().to_vec()
            }
            TestKey::P256(key) => {
                let sig: p256::ecdsa::Signature =
                    p256::ecdsa::signature::Signer::sign(key, message);
                sig.to_der().as_bytes().to_vec()
            }
        }
    }
}

pub struct Response {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    pub fn ok(self) -> Value {
        assert!(self.status.is_success(), "{} {}", self.status, self.text);
        self.json()
    }

    pub fn error_message(&self) -> String {
        self.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// One seeded identity talking to the emulator.
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
    pub identity: Identity,
    pub key: TestKey,
}

impl Client {
    pub fn new(base: &str, identity: &Identity) -> Self {
        Self {
            base: base.to_owned(),
            http: reqwest::Client::new(),
            identity: identity.clone(),
            key: TestKey::from_pem(&identity.private_key_pem),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        user_action: Option<&str>,
        bearer: bool,
    ) -> Response {
        let mut request = self.http.request(method, format!("{}{}", self.base, path));
        if bearer {
            request = request.bearer_auth(&self.identity.token);
        }
        if let Some(token) = user_action {
            request = request.header("X-DFNS-USERACTION", token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await.expect("emulator reachable");
        Response {
            status: response.status(),
            headers: response.headers().clone(),
            text: response.text().await.unwrap_or_default(),
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send(Method::GET, path, None, None, true).await
    }

    /// init → sign → exchange: a user-action token for `method path payload`.
    pub async fn user_action(&self, method: &str, path: &str, payload: &str) -> String {
        let init = json!({
            "userActionHttpMethod": method,
            "userActionHttpPath": path,
            "userActionPayload": payload,
            "userActionServerKind": "Api",
        })
        .to_string();
        let challenge = self
            .send(Method::POST, "/auth/action/init", Some(&init), None, true)
            .await
            .ok();
        let allowed: Vec<&str> = challenge["allowCredentials"]["key"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap())
            .collect();
        assert!(allowed.contains(&self.identity.cred_id.as_str()));
        let assertion = self.assertion(&challenge);
        let body = json!({
            "challengeIdentifier": challenge["challengeIdentifier"],
            "firstFactor": { "kind": "Key", "credentialAssertion": assertion },
        })
        .to_string();
        let action = self
            .send(Method::POST, "/auth/action", Some(&body), None, true)
            .await
            .ok();
        action["userAction"].as_str().unwrap().to_owned()
    }

    /// Signs a challenge response the way `@dfns/sdk-keysigner` does.
    pub fn assertion(&self, challenge: &Value) -> Value {
        let client_data = json!({
            "type": "key.get",
            "challenge": challenge["challenge"].as_str().unwrap(),
        })
        .to_string();
        let signature = self.key.sign(client_data.as_bytes());
        json!({
            "credId": self.identity.cred_id,
            "clientData": URL_SAFE_NO_PAD.encode(client_data.as_bytes()),
            "signature": URL_SAFE_NO_PAD.encode(signature),
        })
    }

    /// A signed mutating call (fresh user action, same body text for payload and HTTP body).
    pub async fn signed(&self, method: Method, path: &str, body: &Value) -> Response {
        let text = body.to_string();
        let token = self.user_action(method.as_str(), path, &text).await;
        self.send(method, path, Some(&text), Some(&token), true)
            .await
    }
}

pub struct Harness {
    pub emulator: RunningEmulator,
    pub sa: Client,
    pub officer: Client,
    pub control: reqwest::Client,
}

impl Harness {
    pub async fn start() -> Self {
        Self::with(Options::default()).await
    }

    pub async fn with(options: Options) -> Self {
        let emulator = dfns_emulator::spawn(options)
            .await
            .expect("emulator starts");
        let base = emulator.base_url();
        let sa = Client::new(&base, &emulator.bootstrap().service_account);
        let officer = Client::new(&base, &emulator.bootstrap().officers[0]);
        Self {
            emulator,
            sa,
            officer,
            control: reqwest::Client::new(),
        }
    }

    pub fn base(&self) -> String {
        self.emulator.base_url()
    }

    pub async fn control(&self, method: Method, path: &str, body: Value) -> Value {
        let response = self
            .control
            .request(method, format!("{}/emulator{}", self.base(), path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "control {path}: {status} {text}");
        serde_json::from_str(&text).unwrap()
    }

    pub async fn create_wallet(&self, body: Value) -> Value {
        self.sa.signed(Method::POST, "/wallets", &body).await.ok()
    }

    pub async fn deposit(&self, wallet_id: &str, amount: &str) -> Value {
        self.control(
            Method::POST,
            "/deposits",
            json!({ "walletId": wallet_id, "kind": "Native", "amount": amount }),
        )
        .await
    }

    /// Polls a transfer until `status` (or panics after ~5 s).
    pub async fn wait_for_status(&self, wallet_id: &str, transfer_id: &str, status: &str) -> Value {
        for _ in 0..250 {
            let t = self
                .sa
                .get(&format!("/wallets/{wallet_id}/transfers/{transfer_id}"))
                .await
                .ok();
            if t["status"] == status {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("transfer {transfer_id} never reached {status}");
    }
}

pub const RECIPIENT: &str = "0xb282dc7cde21717f18337a596e91ded00b79b25f";
