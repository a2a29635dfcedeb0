//! The official-SDK conformance step of `cargo xtask test`: Dfns' own SDKs, which no one here
//! wrote, drive our Dfns emulator, and every mismatch with what they expect fails the step.
//!
//! 1. `npm ci` in `tests/dfns-conformance` when `node_modules` is missing or was installed from
//!    another `package-lock.json` / `package.json` / `.npmrc`;
//! 2. builds the emulator with the test step's own cargo command (`--no-run`), so it costs nothing
//!    after that step (see [`build_emulator`]);
//! 3. starts `dfns-emulator --listen 127.0.0.1:0 --bootstrap-out <tmp>/bootstrap.json` and waits
//!    until the bootstrap file names a port that accepts connections;
//! 4. the TypeScript scenario (`@dfns/sdk`, responses validated against schemas generated from the
//!    SDK's types), then the Rust scenario (`dfns-sdk-rust`, its own workspace because it pulls
//!    OpenSSL, built in `target/sdk-conformance`), both pointed at the emulator through
//!    `DFNS_BOOTSTRAP_FILE`;
//! 5. stops the emulator whatever happened, prints the SDK calls each side covered, and fails if
//!    either side failed.

use std::fs;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::process::{Group, OnParentDeath};

const TS_DIR: &str = "tests/dfns-conformance";
const RUST_MANIFEST: &str = "tests/dfns-sdk-rust-conformance/Cargo.toml";
const RUST_TARGET_DIR: &str = "target/sdk-conformance";
/// The files an install depends on; a copy of each is kept in node_modules to detect staleness.
const INSTALL_INPUTS: [&str; 3] = ["package-lock.json", "package.json", ".npmrc"];
const INSTALL_STAMP_DIR: &str = "node_modules/.xtask-installed-from";

const BUILD_TIMEOUT: Duration = Duration::from_secs(900);
const EMULATOR_START_TIMEOUT: Duration = Duration::from_secs(30);
const NPM_CI_TIMEOUT: Duration = Duration::from_secs(300);
const TS_SCENARIO_TIMEOUT: Duration = Duration::from_secs(300);
/// Includes a cold build of the Rust SDK and its OpenSSL-based reqwest (about 75 s on 2 cores).
const RUST_SCENARIO_TIMEOUT: Duration = Duration::from_secs(900);

/// Runs the official-SDK conformance checks for the repository at `repo_root`.
pub fn run(repo_root: &Path) -> Result<()> {
    let ts_dir = repo_root.join(TS_DIR);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());

    ensure_node_modules(&ts_dir)?;

    build_emulator(&cargo, repo_root)?;
    let emulator_bin = target_dir(repo_root).join("debug").join("dfns-emulator");

    let work = WorkDir::create()?;
    let bootstrap_file = work.path.join("bootstrap.json");
    let mut emulator = start_emulator(
        &emulator_bin,
        &bootstrap_file,
        &work.path.join("emulator.log"),
    )?;
    println!("conformance: emulator at {}", emulator.base_url);

    let ts_coverage = work.path.join("ts-coverage.json");
    let rust_coverage = work.path.join("rust-coverage.json");

    // Both sides run even if the first fails, so one run reports every mismatch.
    println!("\nconformance: ==> TypeScript SDK (@dfns/sdk)");
    let ts = run_ts_scenario(&ts_dir, &bootstrap_file, &ts_coverage);
    println!("\nconformance: ==> Rust SDK (dfns-sdk-rust)");
    let rust = run_to_end(
        Command::new(&cargo)
            .args([
                "test",
                "--locked",
                "--manifest-path",
                RUST_MANIFEST,
                "--target-dir",
                RUST_TARGET_DIR,
            ])
            .args(["--", "--nocapture"])
            .env("DFNS_BOOTSTRAP_FILE", &bootstrap_file)
            .env("CONFORMANCE_COVERAGE_OUT", &rust_coverage)
            .current_dir(repo_root),
        "cargo test (dfns-sdk-rust conformance)",
        RUST_SCENARIO_TIMEOUT,
    );

    let emulator_died = emulator.group.has_exited();
    emulator.group.stop();
    if emulator_died || ts.is_err() || rust.is_err() {
        print_log_tail(&work.path.join("emulator.log"), 40);
    }

    print_coverage(&ts_coverage, &rust_coverage);

    let mut failures = Vec::new();
    if let Err(error) = &ts {
        failures.push(format!("TypeScript SDK scenario: {error:#}"));
    }
    if let Err(error) = &rust {
        failures.push(format!("Rust SDK scenario: {error:#}"));
    }
    if emulator_died {
        failures.push("the emulator exited during the run".to_owned());
    }
    if failures.is_empty() {
        println!("conformance: both official SDKs passed against the emulator");
        Ok(())
    } else {
        bail!(failures.join("; "))
    }
}

/// Builds `target/debug/dfns-emulator` without a second feature resolution.
///
/// `cargo build -p dfns-emulator` resolves features for the emulator alone; the workspace test
/// build unifies them across every member and dev-dependency (19 of the emulator's 183 packages
/// differ, aws-lc-rs, serde, tokio and hyper among them), so it would rebuild a large part of the
/// tree. The test step's own command with `--no-run` is fresh after that step (cargo builds the
/// emulator binary for its integration tests); the per-package build is only the fallback when
/// another crate of the workspace does not compile.
fn build_emulator(cargo: &str, repo_root: &Path) -> Result<()> {
    println!("conformance: building the emulator (the test step's build, nothing new after it)");
    let workspace = run_to_end(
        Command::new(cargo)
            .arg("test")
            .args(crate::test_cmd::TEST_TARGETS)
            .args(["--no-run", "--quiet"])
            .current_dir(repo_root),
        "cargo test --no-run (the test step's targets)",
        BUILD_TIMEOUT,
    );
    if let Err(error) = workspace {
        eprintln!("conformance: {error:#}; building the emulator alone instead");
        run_to_end(
            Command::new(cargo)
                .args(["build", "-p", "dfns-emulator", "--bin", "dfns-emulator"])
                .current_dir(repo_root),
            "cargo build -p dfns-emulator",
            BUILD_TIMEOUT,
        )?;
    }
    Ok(())
}

/// The target directory of the main workspace (`CARGO_TARGET_DIR` wins, as for cargo itself).
fn target_dir(repo_root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => repo_root.join(dir),
        None => repo_root.join("target"),
    }
}

/// `npm ci` unless node_modules was installed from exactly the current install inputs.
fn ensure_node_modules(ts_dir: &Path) -> Result<()> {
    let stamp_dir = ts_dir.join(INSTALL_STAMP_DIR);
    let up_to_date = INSTALL_INPUTS.iter().all(|name| {
        match (fs::read(ts_dir.join(name)), fs::read(stamp_dir.join(name))) {
            (Ok(current), Ok(installed)) => current == installed,
            _ => false,
        }
    });
    if up_to_date {
        println!("conformance: {TS_DIR}/node_modules is up to date");
        return Ok(());
    }
    println!("conformance: npm ci in {TS_DIR}");
    run_to_end(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(ts_dir),
        "npm ci",
        NPM_CI_TIMEOUT,
    )
    .context("installing the TypeScript SDKs (is Node.js with npm on PATH?)")?;
    fs::create_dir_all(&stamp_dir).with_context(|| format!("creating {}", stamp_dir.display()))?;
    for name in INSTALL_INPUTS {
        fs::copy(ts_dir.join(name), stamp_dir.join(name))
            .with_context(|| format!("recording {name}"))?;
    }
    Ok(())
}

struct Emulator {
    group: Group,
    base_url: String,
}

fn start_emulator(binary: &Path, bootstrap_file: &Path, log_file: &Path) -> Result<Emulator> {
    let log =
        fs::File::create(log_file).with_context(|| format!("creating {}", log_file.display()))?;
    let mut command = Command::new(binary);
    command
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--bootstrap-out")
        .arg(bootstrap_file)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let group = Group::spawn(&mut command, OnParentDeath::Die)?;
    let deadline = Instant::now() + EMULATOR_START_TIMEOUT;
    loop {
        if group.has_exited() {
            print_log_tail(log_file, 40);
            bail!("the emulator exited before it was ready");
        }
        if let Some(base_url) = ready_base_url(bootstrap_file) {
            return Ok(Emulator { group, base_url });
        }
        if Instant::now() > deadline {
            print_log_tail(log_file, 40);
            bail!("the emulator was not ready within {EMULATOR_START_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The bootstrap file's `baseUrl` once the file is complete and its port accepts connections.
fn ready_base_url(bootstrap_file: &Path) -> Option<String> {
    let text = fs::read_to_string(bootstrap_file).ok()?;
    let bootstrap: serde_json::Value = serde_json::from_str(&text).ok()?;
    let base_url = bootstrap.get("baseUrl")?.as_str()?.to_owned();
    let address = socket_address(&base_url)?;
    TcpStream::connect_timeout(&address, Duration::from_millis(200)).ok()?;
    Some(base_url)
}

/// `http://127.0.0.1:PORT[/…]` → the socket address.
fn socket_address(base_url: &str) -> Option<SocketAddr> {
    let rest = base_url.strip_prefix("http://")?;
    let authority = rest.split('/').next()?;
    authority.to_socket_addrs().ok()?.next()
}

fn run_ts_scenario(ts_dir: &Path, bootstrap_file: &Path, coverage_out: &Path) -> Result<()> {
    run_to_end(
        Command::new("node")
            .arg("gen-schemas.mjs")
            .current_dir(ts_dir),
        "generating JSON Schemas from the SDK types",
        TS_SCENARIO_TIMEOUT,
    )?;
    run_to_end(
        Command::new("node")
            .args([
                "--test",
                "--test-concurrency=1",
                "--test-reporter=spec",
                "scenario.test.mjs",
            ])
            .env("DFNS_BOOTSTRAP_FILE", bootstrap_file)
            .env("CONFORMANCE_COVERAGE_OUT", coverage_out)
            .current_dir(ts_dir),
        "node --test scenario.test.mjs",
        TS_SCENARIO_TIMEOUT,
    )
}

/// Runs `command` in its own process group, fails on a non-zero exit or after `timeout`.
fn run_to_end(command: &mut Command, what: &str, timeout: Duration) -> Result<()> {
    let mut group = Group::spawn(command, OnParentDeath::Continue)
        .with_context(|| format!("starting {what}"))?;
    let deadline = Instant::now() + timeout;
    while !group.has_exited() {
        if Instant::now() > deadline {
            group.stop();
            bail!("{what} did not finish within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(50));
    }
    let status = group.wait()?;
    if status.success() {
        Ok(())
    } else {
        Err(anyhow!("{what} failed ({status})"))
    }
}

fn print_coverage(ts_coverage: &Path, rust_coverage: &Path) {
    println!("\nconformance: SDK calls covered");
    match read_json(ts_coverage) {
        Some(report) => {
            println!("  @dfns/sdk (each response validated against the SDK type):");
            for call in report["calls"].as_array().into_iter().flatten() {
                println!(
                    "    {:<60} {:<36} ok {:>3}  failed {:>3}",
                    call["call"].as_str().unwrap_or("?"),
                    call["responseType"].as_str().unwrap_or("(error expected)"),
                    call["ok"],
                    call["failed"]
                );
            }
            println!(
                "    user-action challenges validated inside the SDK's signing flow: {}",
                report["userActionChallengesValidated"]
            );
        }
        None => println!("  @dfns/sdk: no coverage report (the scenario did not finish)"),
    }
    match read_json(rust_coverage) {
        Some(report) => {
            let calls: Vec<&str> = report["calls"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str())
                .collect();
            println!(
                "  dfns-sdk-rust (responses decoded into the SDK types): {}",
                calls.join(", ")
            );
            println!(
                "    user actions signed through the SDK's UserActionSigner: {}",
                report["userActionsSigned"]
            );
        }
        None => println!("  dfns-sdk-rust: no coverage report (the scenario did not finish)"),
    }
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&fs::read_to_string(path).ok()?).ok()
}

fn print_log_tail(log_file: &Path, lines: usize) {
    let Ok(text) = fs::read_to_string(log_file) else {
        return;
    };
    let all: Vec<&str> = text.lines().collect();
    let tail = &all[all.len().saturating_sub(lines)..];
    eprintln!(
        "conformance: last {} line(s) of the emulator log ({}):",
        tail.len(),
        log_file.display()
    );
    for line in tail {
        eprintln!("  | {line}");
    }
}

/// A scratch directory for the bootstrap file, the emulator log and the coverage reports, removed
/// when dropped (the log's tail is printed before that when something failed).
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn create() -> Result<WorkDir> {
        let path = std::env::temp_dir().join(format!("dfns-conformance-{}", std::process::id()));
        if path.exists() {
            fs::remove_dir_all(&path).with_context(|| format!("clearing {}", path.display()))?;
        }
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(WorkDir { path })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if thread::panicking() {
            return;
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}
