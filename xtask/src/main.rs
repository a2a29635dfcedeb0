//! Project automation: `cargo xtask test` (everything CI checks) and `cargo xtask dev` (the local
//! stack). Both install and start the local AWS stand-ins themselves; see [`standins`].

mod build;
mod coldstart;
mod conformance;
mod deploy_tools;
#[cfg(feature = "dev")]
mod dev;
mod process;
mod schemathesis;
#[cfg(feature = "dev")]
mod stack;
mod standins;
mod test_cmd;
#[cfg(feature = "dev")]
mod token;
mod web;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::process::{Group, OnParentDeath};
use crate::standins::StandIns;

#[derive(Parser)]
#[command(name = "xtask", bin_name = "cargo xtask", about = "Project automation")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install and start the stand-ins, then fmt check, clippy, every test and conformance
    /// (what CI runs). Exits non-zero on any failure.
    Test,
    /// Start the local stack (stand-ins, Dfns emulator, table, secret, every function on one
    /// port, demo clients) and keep it running until Ctrl-C.
    Dev,
    /// `cargo lambda build --release` for every function (arm64 when rustup's aarch64 standard
    /// library is installed, else x86_64) and print each artifact's size.
    Build {
        /// Try installing the aarch64 standard library when it is missing.
        #[arg(long, conflicts_with = "x86_64")]
        arm64: bool,
        /// Build x86_64 even when arm64 is possible.
        #[arg(long = "x86-64")]
        x86_64: bool,
    },
    /// Run every benchmark (`cargo bench --workspace`) with the stand-ins up; figures on stdout.
    /// Arguments select instead, e.g. `cargo xtask bench -- -p dfns-emulator`.
    /// `cargo xtask bench coldstart [--help]` measures the functions' cold start instead.
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cargo_args: Vec<String>,
    },
    /// Print a bearer token for the running local stack (`cargo xtask dev`).
    Token {
        /// The token's subject (the client id).
        #[arg(long)]
        sub: String,
        /// `client` or `operator`.
        #[cfg(feature = "dev")]
        #[arg(long, value_enum, default_value = "client")]
        role: token::Role,
        #[cfg(not(feature = "dev"))]
        #[arg(long, default_value = "client")]
        role: String,
        /// Lifetime in minutes.
        #[arg(long, default_value_t = 60)]
        minutes: i64,
    },
    /// Write `openapi.json` at the repository root: the OpenAPI document generated from the
    /// functions' routers (a test fails while the checked-in copy is stale).
    Openapi,
    /// The API fuzzing step of `test` alone: schemathesis against a local platform of its own, with
    /// a client's and an operator's token (see xtask/src/schemathesis.rs).
    Schemathesis,
    /// What `schemathesis` runs, built with the dev feature, the stand-ins' environment set.
    #[cfg(feature = "dev")]
    #[command(hide = true)]
    SchemathesisRun {
        #[arg(long)]
        work_dir: PathBuf,
    },
    /// What `bench coldstart` runs for its authenticated reads, built with the dev feature.
    #[cfg(feature = "dev")]
    #[command(hide = true)]
    ColdstartPlatform {
        #[arg(long)]
        work_dir: PathBuf,
    },
    /// The dashboard's step of `test` alone: npm ci, chromium, type check and build (initial JS
    /// budget), then Playwright against a local platform of its own (see xtask/src/web.rs).
    Web,
    /// Regenerate docs/screenshots/ (PNGs of the dashboard's main pages) against a local
    /// platform of its own.
    Screenshots,
    /// What `web` and `screenshots` run, built with the dev feature.
    #[cfg(feature = "dev")]
    #[command(hide = true)]
    WebRun {
        #[arg(long)]
        work_dir: PathBuf,
        #[arg(long)]
        project: String,
    },
    /// Run one non-interactive command with the stand-ins up and their environment set, e.g.
    /// `cargo xtask exec -- cargo test -p store`.
    Exec {
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let repo_root = repo_root();
    #[cfg(not(feature = "dev"))]
    if matches!(cli.command, Task::Dev | Task::Token { .. }) {
        return rerun_with_dev_feature(&repo_root);
    }
    #[cfg(feature = "dev")]
    if let Task::Token { sub, role, minutes } = &cli.command {
        return match token::run(&repo_root, sub, *role, *minutes) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("xtask: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let Err(error) = process::install_interrupt_handler() {
        eprintln!("xtask: {error:#}");
        return ExitCode::FAILURE;
    }
    // Not the developer's AWS account, whatever their shell says: only the stand-ins.
    for key in StandIns::ENV_TO_REMOVE {
        // SAFETY: no other thread reads the environment (the only other one waits for signals).
        unsafe { std::env::remove_var(key) };
    }
    let outcome = match cli.command {
        Task::Test => test_cmd::run(&repo_root),
        #[cfg(feature = "dev")]
        Task::Dev => {
            web::build_for_dev(&repo_root);
            dev::run(&repo_root).map(|()| ExitCode::SUCCESS)
        }
        #[cfg(not(feature = "dev"))]
        Task::Dev => unreachable!("re-run with the dev feature above"),
        Task::Token { .. } => unreachable!("handled above"),
        Task::Exec { command } => exec(&repo_root, &command),
        Task::Schemathesis => schemathesis::run_alone(&repo_root),
        #[cfg(feature = "dev")]
        Task::SchemathesisRun { work_dir } => schemathesis::run_platform(&repo_root, &work_dir),
        #[cfg(feature = "dev")]
        Task::ColdstartPlatform { work_dir } => coldstart::run_platform(&repo_root, &work_dir),
        Task::Web => web::run_alone(&repo_root, web::Project::Tests),
        Task::Screenshots => web::run_alone(&repo_root, web::Project::Screenshots),
        #[cfg(feature = "dev")]
        Task::WebRun { work_dir, project } => web::Project::parse(&project)
            .and_then(|project| web::run_platform(&repo_root, &work_dir, project)),
        Task::Openapi => write_openapi(&repo_root),
        // `cargo xtask bench coldstart [...]`: cold start of the functions (xtask/src/coldstart.rs).
        Task::Bench { cargo_args } if cargo_args.first().is_some_and(|a| a == "coldstart") => {
            coldstart::run(&repo_root, &cargo_args[1..])
        }
        Task::Bench { cargo_args } => {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            // Without arguments every benchmark of the workspace; with them, what they select.
            let selection = if cargo_args.is_empty() {
                vec!["--workspace".to_owned()]
            } else {
                cargo_args
            };
            let command: Vec<String> = [cargo, "bench".into()]
                .into_iter()
                .chain(selection)
                .collect();
            exec(&repo_root, &command)
        }
        Task::Build { arm64, x86_64 } => build::run(&repo_root, arm64, x86_64),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: xtask always runs from the checkout it was built from.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Sets `env` for this process, so every child started afterwards inherits it.
fn export_env(env: &[(&'static str, String)]) {
    for (key, value) in env {
        // SAFETY: no other thread reads the environment (the only other one waits for signals).
        unsafe { std::env::set_var(key, value) };
    }
}

fn exec(repo_root: &Path, command: &[String]) -> Result<ExitCode> {
    let (installed, _) = standins::install(repo_root)?;
    let standins = StandIns::start(&installed)?;
    eprintln!("xtask: {}", standins.describe());
    export_env(&standins.env());
    let (program, args) = command.split_first().context("no command given")?;
    let status = Group::spawn(Command::new(program).args(args), OnParentDeath::Continue)?.wait()?;
    standins.stop();
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

/// `cargo xtask openapi`: the local stack's binary writes the document (xtask does not link the
/// functions).
fn write_openapi(repo_root: &Path) -> Result<ExitCode> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let target = repo_root.join("openapi.json");
    let status = Command::new(cargo)
        .args([
            "run",
            "--quiet",
            "--package",
            "local-stack",
            "--",
            "--write-openapi",
        ])
        .arg(&target)
        // The document lists the development registry's exchanges, as the local stack serves.
        .env("EXCHANGES", "dev")
        .current_dir(repo_root)
        .status()
        .context("running the local stack's binary")?;
    if !status.success() {
        anyhow::bail!("writing {} failed", target.display());
    }
    eprintln!("xtask: wrote {}", target.display());
    Ok(ExitCode::SUCCESS)
}

/// `cargo xtask` builds xtask without the AWS SDK (see xtask/Cargo.toml); `dev` and `token` need
/// it, so they replace this process with a build that has it (same arguments).
#[cfg(not(feature = "dev"))]
fn rerun_with_dev_feature(repo_root: &Path) -> ExitCode {
    use std::os::unix::process::CommandExt;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let error = Command::new(cargo)
        .args([
            "run",
            "--quiet",
            "--package",
            "xtask",
            "--features",
            "dev",
            "--",
        ])
        .args(std::env::args_os().skip(1))
        .current_dir(repo_root)
        .exec();
    eprintln!("xtask: re-running with the dev feature: {error}");
    ExitCode::FAILURE
}
