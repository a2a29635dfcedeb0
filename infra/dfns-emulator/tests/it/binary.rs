//! The binary writes a bootstrap file whose credentials work against the port it records.

use std::time::Duration;

use crate::common::Client;
use dfns_emulator::Bootstrap;
use reqwest::Method;
use serde_json::json;

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn bootstrap_file_records_the_real_port_and_working_keys() {
    let dir = std::env::temp_dir().join(format!("dfns-emulator-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bootstrap.json");
    let _ = std::fs::remove_file(&file);
    let _child = KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_dfns-emulator"))
            .args(["--listen", "127.0.0.1:0", "--bootstrap-out"])
            .arg(&file)
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap(),
    );
    let mut text = String::new();
    for _ in 0..200 {
        if let Ok(t) = std::fs::read_to_string(&file) {
            text = t;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let raw: serde_json::Value = serde_json::from_str(&text).expect("bootstrap file written");
    for key in ["baseUrl", "orgId", "serviceAccount", "officers", "admin"] {
        assert!(raw.get(key).is_some(), "missing {key}");
    }
    for key in ["userId", "token", "credId", "privateKeyPem"] {
        assert!(
            raw["serviceAccount"].get(key).is_some(),
            "missing serviceAccount.{key}"
        );
    }
    let bootstrap: Bootstrap = serde_json::from_value(raw).unwrap();
    assert!(!bootstrap.base_url.ends_with(":0"));
    assert!(bootstrap.officers.len() >= 2);
    assert!(
        bootstrap
            .service_account
            .private_key_pem
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );

    let sa = Client::new(&bootstrap.base_url, &bootstrap.service_account);
    let wallet = sa
        .signed(
            Method::POST,
            "/wallets",
            &json!({ "network": "EthereumSepolia" }),
        )
        .await
        .ok();
    assert!(wallet["id"].as_str().unwrap().starts_with("wa-"));
    let _ = std::fs::remove_dir_all(&dir);
}
