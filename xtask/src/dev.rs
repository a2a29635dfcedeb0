//! `cargo xtask dev`: the local stack for working by hand, running until Ctrl-C.
//!
//! The stack is a list of [`DevService`]s started in order; each may read what the earlier ones
//! export (endpoints, ids) and adds its own settings to the printed environment. Later issues add
//! the Dfns emulator and the local gateway by implementing the trait and pushing onto the list in
//! [`run`].

use std::fs;
use std::path::Path;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::standins::{self, StandIns};

/// Table and secret names of the local stack (any name works; these are stable for scripts).
pub const TABLE_NAME: &str = "managed-accounts-dev";
pub const PLATFORM_SECRET_ID: &str = "managed-accounts/dev/platform";

/// One part of the local stack.
pub(crate) trait DevService {
    fn name(&self) -> &'static str;
    /// `KEY=value` settings this service adds for developers and for the services after it.
    fn env(&self) -> Vec<(&'static str, String)>;
    /// Err once the service has stopped by itself; `dev` then shuts everything down.
    fn check_alive(&mut self) -> Result<()>;
}

impl DevService for StandIns {
    fn name(&self) -> &'static str {
        "AWS stand-ins (DynamoDB Local, moto)"
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        StandIns::env(self)
    }
    fn check_alive(&mut self) -> Result<()> {
        StandIns::check_alive(self)
    }
}

/// The table from the store's single definition, and the platform secret.
pub(crate) struct PlatformData;

impl DevService for PlatformData {
    fn name(&self) -> &'static str {
        "platform data (table, secret)"
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("TABLE_NAME", TABLE_NAME.to_owned()),
            ("PLATFORM_SECRET_ID", PLATFORM_SECRET_ID.to_owned()),
        ]
    }
    fn check_alive(&mut self) -> Result<()> {
        Ok(())
    }
}

impl PlatformData {
    /// Creates the table and the secret; both steps accept what an earlier run left behind.
    pub(crate) async fn create(secret: &serde_json::Value) -> Result<PlatformData> {
        // Same path the platform takes: endpoints, region and credentials from the environment.
        let sdk_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk_config);
        store::schema::create_table(&dynamodb, TABLE_NAME)
            .await
            .context("creating the table")?;

        let secrets = aws_sdk_secretsmanager::Client::new(&sdk_config);
        let secret_string = secret.to_string();
        let created = secrets
            .create_secret()
            .name(PLATFORM_SECRET_ID)
            .secret_string(&secret_string)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_exists_exception()) =>
            {
                secrets
                    .put_secret_value()
                    .secret_id(PLATFORM_SECRET_ID)
                    .secret_string(&secret_string)
                    .send()
                    .await
                    .context("updating the platform secret")?;
            }
            Err(error) => {
                return Err(anyhow::Error::new(error).context("creating the platform secret"));
            }
        }
        Ok(PlatformData)
    }
}

/// The platform secret with the contract's exact field names, with placeholder values (the running
/// stack's comes from the emulator's bootstrap: see [`crate::stack`]).
#[cfg(test)]
pub fn demo_platform_secret() -> serde_json::Value {
    serde_json::json!({
        "dfnsServiceAccountToken": "demo-service-account-token",
        "dfnsCredentialId": "demo-credential-id",
        "dfnsPrivateKeyPem": "demo: replaced by the Dfns emulator's key once it runs in `cargo xtask dev`",
        "dfnsWebhookSecret": "demo-webhook-secret",
    })
}

pub fn run(repo_root: &Path) -> Result<()> {
    let (installed, report) = standins::install(repo_root)?;
    println!(
        "xtask: DynamoDB Local {}, moto {}",
        report.dynamodb, report.moto
    );
    let mut services: Vec<Box<dyn DevService>> = Vec::new();

    let standins = StandIns::start(&installed)?;
    crate::export_env(&standins.env());
    services.push(Box::new(standins));

    // Exported before the runtime's threads exist (set_var is only sound with one thread).
    crate::export_env(&PlatformData.env());
    services.push(Box::new(PlatformData));
    // The emulator and the stack run on this runtime's threads until the process exits.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("building the async runtime")?;
    let local = runtime.block_on(crate::stack::start(repo_root, crate::stack::Purpose::Dev))?;
    let summary = local.summary();
    services.push(Box::new(local));

    let env: Vec<(&'static str, String)> = services.iter().flat_map(|s| s.env()).collect();
    let env_file = repo_root.join(".tools/dev.env");
    let exports: String = env
        .iter()
        .map(|(key, value)| format!("export {key}={value}\n"))
        .collect();
    fs::write(&env_file, &exports).context("writing .tools/dev.env")?;

    println!("\nxtask dev: running");
    for service in &services {
        println!("  - {}", service.name());
    }
    println!(
        "\nEnvironment for local processes (also in .tools/dev.env, `source` it):\n\n{exports}"
    );
    println!("{summary}");
    println!("Press Ctrl-C to stop everything.");

    // Ctrl-C is handled by the interrupt handler, which stops every process group and exits.
    loop {
        thread::sleep(Duration::from_millis(500));
        for service in &mut services {
            service
                .check_alive()
                .with_context(|| format!("{} stopped", service.name()))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_secret_has_exactly_the_contract_fields() {
        let secret = demo_platform_secret();
        let mut fields: Vec<&str> = secret
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "dfnsCredentialId",
                "dfnsPrivateKeyPem",
                "dfnsServiceAccountToken",
                "dfnsWebhookSecret"
            ]
        );
        assert!(secret.as_object().unwrap().values().all(|v| v.is_string()));
    }

    #[test]
    fn demo_secret_loads_through_the_platform_config() {
        let loaded =
            platform_config::PlatformSecret::from_json(&demo_platform_secret().to_string());
        assert!(loaded.is_ok(), "{:?}", loaded.err());
    }
}
