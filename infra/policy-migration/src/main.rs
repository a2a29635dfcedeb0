//! `policy-migration`: moves clients opened before whitelists were per network (one whitelist and
//! one set of limits shared by all their wallets, so an address approved on one network was
//! sendable from every wallet) to one set per wallet, each whitelist holding only what was
//! approved for its network ([`platform::onboarding::migrate_to_per_wallet_policies`]).
//!
//! Runs with the signing credential (it creates and archives policies): the reconciler's
//! environment (`TABLE_NAME`, `DFNS_SIGNING_SECRET_ID`, …). Safe to rerun at any point. Under the
//! org's `Policies:Modify` policy the shared set's archive waits for compliance (the output lists
//! the approvals); until then both sets apply, so nothing is looser. Run again after the officers
//! decide: it forgets the archived set. A client with a destination change in flight is skipped
//! (`busy`) until that change is decided.

use clap::Parser;
use platform::onboarding::{PolicyMigration, migrate_to_per_wallet_policies};

#[derive(Parser)]
#[command(
    name = "policy-migration",
    about = "Moves clients with a shared set of policies to one set per wallet; safe to rerun"
)]
struct Args {
    /// Only this client (repeatable); otherwise every client.
    #[arg(long = "client")]
    clients: Vec<String>,
    /// Clients read per page of the scan.
    #[arg(long, default_value_t = 50)]
    page: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::http::init_tracing();
    let args = Args::parse();
    let app = platform::App::from_env(platform::SecretsHeld::SIGNING).await?;
    let request_id = format!("policy-migration-{}", ulid::Ulid::new());
    let mut clients = args
        .clients
        .iter()
        .map(|c| domain::ClientId::parse(c).map_err(|e| anyhow::anyhow!("client `{c}`: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if clients.is_empty() {
        let mut after = None;
        loop {
            let (page, next) = app
                .store()
                .scan_client_ids(after.as_ref(), args.page.max(1))
                .await?;
            clients.extend(page);
            match next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    let mut failed = 0;
    for client in &clients {
        match migrate_to_per_wallet_policies(&app, client, &request_id).await {
            Ok(PolicyMigration::NotNeeded) => {}
            Ok(outcome) => println!(
                "{}",
                serde_json::json!({"client": client.as_str(), "migration": outcome})
            ),
            Err(error) => {
                failed += 1;
                tracing::error!(client = %client, %error, "migration failed; run again");
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} client(s) failed (logged above); a rerun resumes them");
    }
    Ok(())
}
