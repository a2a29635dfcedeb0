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
pub const SIGNING_SECRET_ID: &str = "managed-accounts/dev/dfns-signing";
pub const READ_SECRET_ID: &str = "managed-accounts/dev/dfns-read-only";
pub const WEBHOOK_SECRET_ID: &str = "managed-accounts/dev/dfns-webhook";
/// The local stack's cooling-off of a client's new destination (the product's is 24 hours): a
/// person trying it sees the whole path (cooling off, then compliance, or a veto) in a minute.
/// `DESTINATION_COOLING_OFF` in the environment overrides it.
pub const DEV_DESTINATION_COOLING_OFF: &str = "30s";
/// The local stack's networks: one EVM, one Bitcoin and one Solana test network, so every client
/// gets three wallets, each with its own whitelist. `PLATFORM_NETWORKS` overrides it.
pub const DEV_NETWORKS: &str = "EthereumSepolia,BitcoinTestnet4,SolanaDevnet";
/// The local stack's four-eyes amount: a desk order worth more than this many USD waits for a
/// second operator's confirmation (off unless set in a deployment). `FOUR_EYES_USD` overrides it.
pub const DEV_FOUR_EYES_USD: &str = "10000";

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
        "AWS stand-ins (DynamoDB Local, moto, LocalStack's SQS)"
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        StandIns::env(self)
    }
    fn check_alive(&mut self) -> Result<()> {
        StandIns::check_alive(self)
    }
}

/// The table from the store's single definition, and the platform's three secrets (and the
/// settings the local stack runs with unlike a deployment's defaults: [`DEV_DESTINATION_COOLING_OFF`],
/// [`DEV_NETWORKS`], [`DEV_FOUR_EYES_USD`]).
pub(crate) struct PlatformData;

impl DevService for PlatformData {
    fn name(&self) -> &'static str {
        "platform data (table, secrets)"
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("TABLE_NAME", TABLE_NAME.to_owned()),
            ("DFNS_SIGNING_SECRET_ID", SIGNING_SECRET_ID.to_owned()),
            ("DFNS_READ_SECRET_ID", READ_SECRET_ID.to_owned()),
            ("DFNS_WEBHOOK_SECRET_ID", WEBHOOK_SECRET_ID.to_owned()),
            (
                "DESTINATION_COOLING_OFF",
                std::env::var("DESTINATION_COOLING_OFF")
                    .unwrap_or_else(|_| DEV_DESTINATION_COOLING_OFF.to_owned()),
            ),
            (
                "PLATFORM_NETWORKS",
                std::env::var("PLATFORM_NETWORKS").unwrap_or_else(|_| DEV_NETWORKS.to_owned()),
            ),
            (
                "FOUR_EYES_USD",
                std::env::var("FOUR_EYES_USD").unwrap_or_else(|_| DEV_FOUR_EYES_USD.to_owned()),
            ),
        ]
    }
    fn check_alive(&mut self) -> Result<()> {
        Ok(())
    }
}

impl PlatformData {
    /// Creates the table and the secrets (`(id, JSON)` each); every step accepts what an earlier
    /// run left behind.
    pub(crate) async fn create(
        table: &str,
        secrets: &[(&str, serde_json::Value)],
    ) -> Result<PlatformData> {
        // Same path the platform takes: endpoints, region and credentials from the environment.
        let sdk_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk_config);
        store::schema::create_table(&dynamodb, table)
            .await
            .context("creating the table")?;

        let client = aws_sdk_secretsmanager::Client::new(&sdk_config);
        for (id, value) in secrets {
            let secret_string = value.to_string();
            let created = client
                .create_secret()
                .name(*id)
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
                    client
                        .put_secret_value()
                        .secret_id(*id)
                        .secret_string(&secret_string)
                        .send()
                        .await
                        .with_context(|| format!("updating the secret {id}"))?;
                }
                Err(error) => {
                    return Err(
                        anyhow::Error::new(error).context(format!("creating the secret {id}"))
                    );
                }
            }
        }
        Ok(PlatformData)
    }
}

pub fn run(repo_root: &Path) -> Result<()> {
    let (installed, report) = standins::install(repo_root)?;
    println!("xtask: {report}");
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
