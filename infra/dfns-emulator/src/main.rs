//! `dfns-emulator --listen 127.0.0.1:PORT --bootstrap-out FILE`

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use dfns_emulator::{Lifecycle, Options};

#[derive(Debug, Parser)]
#[command(about = "Offline Dfns API emulator (in-memory)")]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where to write the bootstrap JSON (base URL, org id, seeded credentials).
    #[arg(long)]
    bootstrap_out: Option<PathBuf>,
    /// Webhook retry delays in milliseconds, comma separated (default: Dfns' ~1 min … 24 h).
    #[arg(long, value_delimiter = ',')]
    webhook_retry_delays_ms: Option<Vec<u64>>,
    /// Delay between automatic transfer lifecycle steps, in milliseconds.
    #[arg(long, default_value_t = 20)]
    transfer_step_ms: u64,
    /// Number of compliance officers to seed (at least 2).
    #[arg(long, default_value_t = 2)]
    officers: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let mut options = Options {
        listen: args.listen,
        transfer_lifecycle: Lifecycle::Auto {
            delay: Duration::from_millis(args.transfer_step_ms),
        },
        officers: args.officers,
        ..Options::default()
    };
    if let Some(delays) = args.webhook_retry_delays_ms {
        options.webhook_retry_delays = delays.into_iter().map(Duration::from_millis).collect();
    }
    let emulator = dfns_emulator::spawn(options).await?;
    if let Some(path) = &args.bootstrap_out {
        // Write then rename so a reader polling for the file never sees half of it.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(emulator.bootstrap())?)?;
        std::fs::rename(&tmp, path)?;
    }
    tracing::info!(base_url = %emulator.base_url(), "dfns emulator listening");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
