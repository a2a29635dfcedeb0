//! `activity-backfill` CLI: see the library docs. Runs with the reporting function's environment
//! (`TABLE_NAME`, the Dfns read credential's secret): it only reads Dfns.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "activity-backfill",
    about = "Fills the activity read model from Dfns history and the audit chains; safe to rerun, resumable"
)]
struct Args {
    /// Only this client (repeatable); otherwise every client, from where the last run stopped.
    #[arg(long = "client")]
    clients: Vec<String>,
    /// Start from the first client, not from the recorded cursor.
    #[arg(long)]
    restart: bool,
    /// Clients per page; the cursor moves after each page.
    #[arg(long, default_value_t = 25)]
    page: usize,
    /// Clients backfilled at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Stop after this many clients (a later run resumes).
    #[arg(long)]
    max_clients: Option<usize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::http::init_tracing();
    let args = Args::parse();
    let clients = args
        .clients
        .iter()
        .map(|c| domain::ClientId::parse(c).map_err(|e| anyhow::anyhow!("client `{c}`: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let app = platform::App::from_env(platform::SecretsHeld::READ_ONLY).await?;
    let report = activity_backfill::run(
        &app,
        &activity_backfill::Options {
            clients,
            restart: args.restart,
            page: args.page,
            concurrency: args.concurrency,
            max_clients: args.max_clients,
        },
    )
    .await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
