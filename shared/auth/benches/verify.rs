//! Cost of verifying a token: the first verification in a container (fetches the issuer's keys
//! over loopback) and warm verifications (cached keys), for RS256 and ES256.
//!
//! `cargo bench -p auth` prints p50/p99. Under `cargo test` (no `--bench` flag) it runs a few
//! iterations only, as a smoke test.

use std::time::{Duration, Instant};

use auth::dev_issuer::{DevIssuer, SigningAlgorithm, TokenSpec};
use auth::{AuthSettings, Authenticator};
use axum::routing::get;

const AUDIENCE: &str = "bench-client";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

async fn serve(jwks: serde_json::Value) -> String {
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let (containers, warm) = if benchmarking { (50, 5000) } else { (2, 20) };

    for alg in [SigningAlgorithm::Rs256, SigningAlgorithm::Es256] {
        let issuer = DevIssuer::cognito("eu-west-1", "eu-west-1_Bench", alg).unwrap();
        let url = serve(issuer.jwks()).await;
        let mut settings = AuthSettings::new(issuer.issuer(), vec![AUDIENCE.to_owned()]);
        settings.jwks_url = url;
        let token = issuer
            .mint(&TokenSpec::cognito_access("client-0001", AUDIENCE).role("operators"))
            .unwrap();

        // A fresh authenticator stands for a fresh container: its first verify fetches keys.
        let mut first = Vec::with_capacity(containers);
        for _ in 0..containers {
            let authenticator = Authenticator::new(settings.clone());
            let start = Instant::now();
            authenticator.verify_token(&token).await.unwrap();
            first.push(start.elapsed());
        }

        let authenticator = Authenticator::new(settings.clone());
        authenticator.verify_token(&token).await.unwrap();
        let mut cached = Vec::with_capacity(warm);
        for _ in 0..warm {
            let start = Instant::now();
            let principal = authenticator.verify_token(&token).await.unwrap();
            cached.push(start.elapsed());
            std::hint::black_box(principal);
        }

        first.sort();
        cached.sort();
        println!(
            "{alg:?}: first verify (key fetch) p50 {:?} p99 {:?} over {containers}; cached p50 {:?} p99 {:?} over {warm}",
            percentile(&first, 0.5),
            percentile(&first, 0.99),
            percentile(&cached, 0.5),
            percentile(&cached, 0.99),
        );
    }
}
