//! `local-stack --listen 127.0.0.1:4010 --issuer-key .tools/local-issuer.pem --state-out .tools/local-stack.json`
//!
//! Serves every function on one port with the settings of a function's `main` (environment: see
//! [`local_stack::Config::from_env`]). Runs until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use local_stack::{Config, IssuerKey, Listen};

#[derive(Debug, Parser)]
#[command(about = "The platform's local stack: every function's routes on one port")]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:4010")]
    listen: SocketAddr,
    /// The development issuer's key (PKCS#8 PEM); created if missing.
    #[arg(long, default_value = ".tools/local-issuer.pem")]
    issuer_key: PathBuf,
    /// Where to write the URL, issuer and token settings (for `cargo xtask token`).
    #[arg(long)]
    state_out: Option<PathBuf>,
    /// Seconds between runs of the scheduled functions (0: never).
    #[arg(long, default_value_t = 10)]
    tick_seconds: u64,
    /// Write the OpenAPI document to this file and exit (what `cargo xtask openapi` runs).
    #[arg(long)]
    write_openapi: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::http::init_tracing();
    let args = Args::parse();
    if let Some(path) = &args.write_openapi {
        std::fs::write(path, local_stack::openapi::document_text())?;
        return Ok(());
    }
    let mut config = Config::from_env(
        Listen::Addr(args.listen),
        IssuerKey::File(args.issuer_key.clone()),
    )
    .await?;
    config.tick_every = (args.tick_seconds > 0).then(|| Duration::from_secs(args.tick_seconds));
    let stack = local_stack::spawn(config).await?;
    if let Some(path) = &args.state_out {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&stack.info)?)?;
        std::fs::rename(&tmp, path)?;
    }
    println!("local stack at {}", stack.base_url);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    stack.shutdown().await;
    Ok(())
}
