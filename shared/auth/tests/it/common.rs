//! An in-process issuer: a tiny axum server on 127.0.0.1:0 serving a JWKS document that tests can
//! swap (key rotation) or break (outage), counting the requests it receives.

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth::dev_issuer::{DevIssuer, SigningAlgorithm};
use auth::{AuthSettings, Authenticator};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

#[derive(Clone)]
struct Shared {
    jwks: Arc<Mutex<Value>>,
    status: Arc<AtomicU16>,
    requests: Arc<AtomicUsize>,
}

pub struct JwksServer {
    pub url: String,
    shared: Shared,
}

impl JwksServer {
    pub async fn start(jwks: Value) -> JwksServer {
        let shared = Shared {
            jwks: Arc::new(Mutex::new(jwks)),
            status: Arc::new(AtomicU16::new(200)),
            requests: Arc::new(AtomicUsize::new(0)),
        };
        let app = axum::Router::new()
            .route("/.well-known/jwks.json", get(serve_jwks))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        JwksServer { url, shared }
    }

    /// Serves the keys of all `issuers` from now on.
    pub fn publish(&self, issuers: &[&DevIssuer]) {
        *self.shared.jwks.lock().unwrap() = jwks_of(issuers);
    }

    /// Answers every request with `status` (200 restores normal service).
    pub fn answer_with(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }
}

async fn serve_jwks(State(shared): State<Shared>) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let status = shared.status.load(Ordering::SeqCst);
    if status != 200 {
        return StatusCode::from_u16(status).unwrap().into_response();
    }
    let body = shared.jwks.lock().unwrap().clone();
    Json(body).into_response()
}

pub fn jwks_of(issuers: &[&DevIssuer]) -> Value {
    json!({ "keys": issuers.iter().map(|i| i.public_jwk()).collect::<Vec<_>>() })
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub const COGNITO_CLIENT_ID: &str = "6p3bs000example0client";
pub const AUTH0_API: &str = "https://api.platform.example";
pub const AUTH0_ROLES_CLAIM: &str = "https://platform.example/roles";

pub fn cognito_issuer(alg: SigningAlgorithm) -> DevIssuer {
    DevIssuer::cognito("eu-west-1", "eu-west-1_AbCdEf123", alg).unwrap()
}

/// Settings a Cognito deployment would use, with the keys fetched from `server`.
pub fn cognito_settings(issuer: &DevIssuer, server: &JwksServer) -> AuthSettings {
    let mut settings = AuthSettings::new(issuer.issuer(), vec![COGNITO_CLIENT_ID.to_owned()]);
    settings.jwks_url = server.url.clone();
    settings
}

/// A Cognito-shaped issuer, its keys served, and an authenticator configured for it.
pub async fn cognito_setup(alg: SigningAlgorithm) -> (DevIssuer, JwksServer, Authenticator) {
    let issuer = cognito_issuer(alg);
    let server = JwksServer::start(issuer.jwks()).await;
    let authenticator = Authenticator::new(cognito_settings(&issuer, &server));
    (issuer, server, authenticator)
}

pub async fn wait(duration: Duration) {
    tokio::time::sleep(duration).await;
}
