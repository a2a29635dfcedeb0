//! The API fuzzing step of `cargo xtask test`, alone as `cargo xtask schemathesis`: schemathesis
//! (pinned in `xtask/standins/requirements.txt`, installed into `.tools/venv`, settings in
//! `xtask/schemathesis.toml`) against the whole platform running locally, on the document the
//! local stack serves at `/openapi.json`. Two runs, every check, [`MAX_EXAMPLES`] examples per
//! operation, then schemathesis' stateful phase on the links it finds between operations:
//!
//! - `client`: a client's token (its account opened first), every operation but the operator's;
//!   the Dfns webhook, which takes no token, is in this run (unsigned deliveries get 401);
//! - `operator`: an operator's token, `/v1/operator/*`.
//!
//! The two runs go side by side (see [`run_platform`]); any failure or error fails the step. Each
//! run's output is printed whole once both have ended, then the test cases each ran and every
//! failure group, which also form the step's line in the summary. Each run's log and JSON,
//! NDJSON (every request and response) and JUnit reports stay in `target/schemathesis/`.
//!
//! Two processes, because the platform needs xtask's `dev` feature (AWS SDK, store, functions) and
//! `cargo xtask` builds xtask without it:
//!
//! 1. [`step`], in `cargo xtask test`'s own process, builds xtask with the dev feature as part of
//!    the test step's workspace build (`cargo build --workspace --tests --bin xtask`: the same
//!    packages and dev-dependencies, hence the same dependency features, so after the test step
//!    only xtask itself compiles; `cargo run -p xtask --features dev` resolves features for xtask
//!    alone and would rebuild tokio and everything above it), then runs that build as
//!    `xtask schemathesis-run` with the stand-ins' environment, stopping it after [`TIMEOUT`];
//! 2. [`run_platform`], in that process, starts the platform as `cargo xtask dev` does
//!    ([`crate::stack::start`] with [`crate::stack::Purpose::Check`]: Dfns emulator, fresh table,
//!    the three secrets, org-wide policy, every function on a free port with the scheduler on, no
//!    demo), opens the client's account, mints the two tokens and runs `st` twice, side by side.
//!
//! Every process started here is a [`Group`]: stopped when the step ends, however it ends.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::process::{Group, OnParentDeath};

/// Wall-clock bound of the whole run (platform, account, both `st` runs, reports), enforced by
/// [`step`] on the process.
const TIMEOUT: Duration = Duration::from_secs(600);
/// Bound of the two `st` runs within it, enforced by the run itself (so their logs still print).
#[cfg(feature = "dev")]
const RUN_TIMEOUT: Duration = Duration::from_secs(540);
/// Bound of the build; after the test step it only compiles and links xtask.
const BUILD_TIMEOUT: Duration = Duration::from_secs(900);
/// Test cases per operation and phase (schemathesis' `--max-examples`).
#[cfg(feature = "dev")]
const MAX_EXAMPLES: u32 = 100;
/// Where the reports go, under the target directory.
const WORK_DIR: &str = "schemathesis";
/// One line for the summary, written by the run, read by [`step`].
const SUMMARY_FILE: &str = "summary.txt";
/// schemathesis' settings beyond the command line.
#[cfg(feature = "dev")]
const CONFIG: &str = "xtask/schemathesis.toml";
/// The pinned schemathesis CLI.
const ST: &str = ".tools/venv/bin/st";

/// The step of `cargo xtask test`: (passed, the summary's detail). Expects the stand-ins' environment
/// in this process's environment (exported by the caller) and schemathesis installed.
/// The networks the fuzzed platform offers: one of each family.
const FUZZED_NETWORKS: &str = "EthereumSepolia,BitcoinTestnet4,SolanaDevnet";

pub fn step(repo_root: &Path) -> (bool, String) {
    let work = target_dir(repo_root).join(WORK_DIR);
    match build_and_run(repo_root, &work) {
        Ok(()) => (true, read_summary(&work)),
        Err(error) => {
            eprintln!("xtask: schemathesis failed: {error:#}");
            (false, read_summary(&work))
        }
    }
}

/// `cargo xtask schemathesis`: the stand-ins, then [`step`].
pub fn run_alone(repo_root: &Path) -> Result<std::process::ExitCode> {
    let (installed, _) = crate::standins::install(repo_root)?;
    let standins = crate::standins::StandIns::start(&installed)?;
    eprintln!("xtask: {}", standins.describe());
    crate::export_env(&standins.env());
    let started = Instant::now();
    let (ok, detail) = step(repo_root);
    standins.stop();
    println!(
        "\nxtask schemathesis: {} in {:.1}s  {detail}",
        if ok { "ok" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    Ok(if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

fn build_and_run(repo_root: &Path, work: &Path) -> Result<()> {
    let st = repo_root.join(ST);
    if !st.is_file() {
        bail!(
            "{} missing: the stand-ins' install (xtask/standins/requirements.txt) puts it there",
            st.display()
        );
    }
    let _ = fs::remove_dir_all(work);
    fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;

    let binary = work.join("xtask-dev");
    build_dev_xtask(repo_root, &binary)?;

    let status = wait_until(
        Group::spawn(
            Command::new(&binary)
                .arg("schemathesis-run")
                .arg("--work-dir")
                .arg(work)
                // One network of each family, so the request schemas' per-family branches (EVM,
                // Bitcoin, Solana addresses and assets) are all generated and checked.
                .env("PLATFORM_NETWORKS", FUZZED_NETWORKS)
                // The stack's log: errors only (every refused webhook is a warning), unless asked.
                .env(
                    "RUST_LOG",
                    std::env::var("RUST_LOG").unwrap_or_else(|_| "error".to_owned()),
                )
                .current_dir(repo_root),
            OnParentDeath::Die,
        )?,
        TIMEOUT,
    );
    let _ = fs::remove_file(&binary);
    let status = status?;
    if !status.success() {
        bail!("the run ended with {status} (its output is above)");
    }
    Ok(())
}

/// Builds xtask with the dev feature and links the build at `binary`, where it stays while it
/// runs (a concurrent `cargo xtask` puts its own build, without the feature, back at the shared
/// path, `target/debug/xtask`: then this builds again, which only takes that link back).
pub(crate) fn build_dev_xtask(repo_root: &Path, binary: &Path) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let build = [
        "build",
        "--quiet",
        "--workspace",
        "--tests",
        "--bin",
        "xtask",
    ];
    let built = target_dir(repo_root).join("debug/xtask");
    for _ in 0..3 {
        println!(
            "schemathesis: cargo {} (the test step's build)",
            build.join(" ")
        );
        let started = Instant::now();
        let status = wait_until(
            Group::spawn(
                Command::new(&cargo).args(build).current_dir(repo_root),
                OnParentDeath::Continue,
            )?,
            BUILD_TIMEOUT,
        )
        .context("building xtask with the dev feature")?;
        if !status.success() {
            bail!("cargo {}: {status}", build.join(" "));
        }
        println!(
            "schemathesis: built in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        let _ = fs::remove_file(binary);
        if fs::hard_link(&built, binary).is_err() {
            fs::copy(&built, binary).with_context(|| format!("copying {}", built.display()))?;
        }
        // Only the dev build knows the subcommand.
        let has_dev_feature = Command::new(binary)
            .args(["schemathesis-run", "--help"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if has_dev_feature {
            return Ok(());
        }
        eprintln!(
            "schemathesis: {} has no dev feature (a concurrent `cargo xtask` rebuilt it); again",
            built.display()
        );
    }
    bail!("{} kept losing the dev feature", built.display())
}

/// Waits for the group's leader, stopping the group once `timeout` has passed.
pub(crate) fn wait_until(mut group: Group, timeout: Duration) -> Result<ExitStatus> {
    let deadline = Instant::now() + timeout;
    while !group.has_exited() {
        if Instant::now() > deadline {
            group.stop();
            bail!("stopped after {}s", timeout.as_secs());
        }
        thread::sleep(Duration::from_millis(100));
    }
    group.wait()
}

fn read_summary(work: &Path) -> String {
    fs::read_to_string(work.join(SUMMARY_FILE))
        .map(|text| text.trim().to_owned())
        .unwrap_or_default()
}

/// The main workspace's target directory (`CARGO_TARGET_DIR` wins, as for cargo itself).
pub(crate) fn target_dir(repo_root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => repo_root.join(dir),
        None => repo_root.join("target"),
    }
}

/// One `st run`: whose token, which operations.
#[cfg(feature = "dev")]
struct Run {
    name: &'static str,
    filter: [&'static str; 2],
}

#[cfg(feature = "dev")]
impl Run {
    /// Where schemathesis writes this run's report of this kind.
    fn report(&self, work: &Path, extension: &str) -> PathBuf {
        work.join(format!("{}.{extension}", self.name))
    }
}

/// The client's run covers everything outside `/v1/operator/` (the webhook included); the
/// operator's covers that prefix.
#[cfg(feature = "dev")]
const RUNS: [Run; 2] = [
    Run {
        name: "client",
        filter: ["--exclude-path-regex", "^/v1/operator/"],
    },
    Run {
        name: "operator",
        filter: ["--include-path-regex", "^/v1/operator/"],
    },
];

/// The client the client run acts as, and the operator.
#[cfg(feature = "dev")]
const CLIENT_SUBJECT: &str = "st-client";
#[cfg(feature = "dev")]
const OPERATOR_SUBJECT: &str = "st-operator";

/// What one run's JSON report says.
#[cfg(feature = "dev")]
#[derive(Debug, Default, PartialEq, Eq)]
struct RunReport {
    generated: u64,
    with_failures: u64,
    unique_failures: u64,
    errors: u64,
    exit_code: Option<i64>,
    /// One line per failure group: title, count, operations.
    failures: Vec<String>,
    /// The stateful phase's status (`success`, `skip`, …): it must have run, so that a change
    /// that loses the OpenAPI links (and with them the multi-step scenarios) fails the step.
    stateful: Option<String>,
}

#[cfg(feature = "dev")]
impl RunReport {
    fn parse(report: &serde_json::Value) -> RunReport {
        let count = |key: &str| report["test_cases"][key].as_u64().unwrap_or(0);
        let failures = report["failures"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|group| {
                let operations: Vec<&str> = group["operations"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|op| op.as_str())
                    .collect();
                format!(
                    "{} ({}x): {}",
                    group["title"].as_str().unwrap_or("?"),
                    group["count"].as_u64().unwrap_or(0),
                    operations.join(", ")
                )
            })
            .collect();
        let errors = report["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|error| error["count"].as_u64().unwrap_or(1))
            .sum();
        RunReport {
            generated: count("generated"),
            with_failures: count("with_failures"),
            unique_failures: count("unique_failures"),
            errors,
            exit_code: report["exit_code"].as_i64(),
            failures,
            stateful: report["phases"]["stateful"]["status"]
                .as_str()
                .map(str::to_owned),
        }
    }

    fn passed(&self) -> bool {
        self.exit_code == Some(0)
            && self.unique_failures == 0
            && self.errors == 0
            && self.stateful.as_deref() == Some("success")
    }
}

/// `xtask schemathesis-run --work-dir DIR` (dev feature): the platform, the account, both runs.
#[cfg(feature = "dev")]
pub fn run_platform(repo_root: &Path, work: &Path) -> Result<std::process::ExitCode> {
    use crate::stack::{self, Purpose};

    if std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_none() {
        bail!("the stand-ins' environment is missing: run `cargo xtask schemathesis`");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("building the async runtime")?;
    let started = Instant::now();
    let local = runtime
        .block_on(stack::start(repo_root, Purpose::Check))
        .context("starting the platform")?;
    let base_url = local.stack.base_url.clone();
    let http = reqwest::Client::new();
    runtime
        .block_on(stack::open_account(&http, &local.stack, CLIENT_SUBJECT))
        .context("opening the client's account")?;
    println!(
        "schemathesis: platform at {base_url} (Dfns emulator at {}), {CLIENT_SUBJECT}'s account open, in {:.1}s",
        local.emulator.base_url(),
        started.elapsed().as_secs_f64()
    );
    let tokens = [
        local.stack.token(CLIENT_SUBJECT),
        local.stack.operator_token(OPERATOR_SUBJECT),
    ];

    let st = repo_root.join(ST);
    let config = repo_root.join(CONFIG);
    // Both runs at once, each `st` with one worker: the stack mostly waits on DynamoDB Local and
    // the emulator, so two clients take about a third off; two processes rather than `--workers 2`,
    // whose threads trip a CPython 3.11 bug ("AST constructor recursion depth mismatch", a runtime
    // error in the run). Each one's output goes to its log, printed whole once both have ended.
    let mut runs = Vec::new();
    for (run, token) in RUNS.iter().zip(tokens) {
        let log = work.join(format!("{}.log", run.name));
        let output =
            fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = Command::new(&st);
        command
            .arg("--config-file")
            .arg(&config)
            .args(["run", &format!("{base_url}/openapi.json")])
            .args(["--checks", "all"])
            .args(["--max-examples", &MAX_EXAMPLES.to_string()])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(run.filter)
            .args(["--report", "json,ndjson,junit"])
            .arg("--report-json-path")
            .arg(run.report(work, "json"))
            .arg("--report-ndjson-path")
            .arg(run.report(work, "ndjson"))
            .arg("--report-junit-path")
            .arg(run.report(work, "junit.xml"))
            // Hypothesis' own files, if any, stay out of the checkout.
            .current_dir(work)
            .stdout(output.try_clone()?)
            .stderr(output);
        println!(
            "schemathesis: ==> {} run: st run {base_url}/openapi.json --checks all --max-examples {MAX_EXAMPLES} -H 'Authorization: Bearer <{} token>' {}",
            run.name,
            run.name,
            run.filter.join(" ")
        );
        let group = Group::spawn(&mut command, OnParentDeath::Die)?;
        runs.push((run, Some(group), None, log));
    }

    // Until both have ended, or RUN_TIMEOUT: then both are stopped and the step fails.
    let runs_started = Instant::now();
    loop {
        for (_, group, outcome, _) in &mut runs {
            if group.as_ref().is_some_and(Group::has_exited) {
                let status = group.take().expect("checked above").wait()?;
                *outcome = Some((Some(status), runs_started.elapsed()));
            }
        }
        if runs.iter().all(|(_, group, _, _)| group.is_none()) {
            break;
        }
        if runs_started.elapsed() > RUN_TIMEOUT {
            for (_, group, outcome, _) in &mut runs {
                if let Some(mut group) = group.take() {
                    group.stop();
                    *outcome = Some((None, runs_started.elapsed()));
                }
            }
            break;
        }
        thread::sleep(Duration::from_millis(200));
    }

    let mut lines = Vec::new();
    let mut all_passed = true;
    let mut total = 0;
    for (run, _, outcome, log) in &runs {
        let (status, took) = outcome.expect("every run has ended");
        println!(
            "\nschemathesis: {} run, {} (also in {}):\n",
            run.name,
            run.filter.join(" "),
            log.display()
        );
        print!("{}", fs::read_to_string(log).unwrap_or_default());
        let report = fs::read_to_string(run.report(work, "json"))
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .map(|json| RunReport::parse(&json));
        let ended = match status {
            Some(status) => status.to_string(),
            None => format!("stopped after {}s", RUN_TIMEOUT.as_secs()),
        };
        let line = match &report {
            Some(report) => {
                total += report.generated;
                format!(
                    "{}: {} test cases, {} with failures, {} unique failures, {} errors, stateful phase {}, {:.0}s ({ended})",
                    run.name,
                    report.generated,
                    report.with_failures,
                    report.unique_failures,
                    report.errors,
                    report.stateful.as_deref().unwrap_or("absent"),
                    took.as_secs_f64()
                )
            }
            None => format!(
                "{}: no report, {:.0}s ({ended})",
                run.name,
                took.as_secs_f64()
            ),
        };
        let passed =
            status.is_some_and(|s| s.success()) && report.as_ref().is_some_and(RunReport::passed);
        all_passed &= passed;
        lines.push((run, line, report));
    }

    println!("\nschemathesis: summary");
    for (_, line, report) in &lines {
        println!("  {line}");
        for failure in report.iter().flat_map(|r| &r.failures) {
            println!("    - {failure}");
        }
    }
    let counts: Vec<String> = lines
        .iter()
        .map(|(run, _, report)| match report {
            Some(report) => format!(
                "{} {} ({} failures, {} errors)",
                run.name, report.generated, report.unique_failures, report.errors
            ),
            None => format!("{} no report", run.name),
        })
        .collect();
    let summary = format!("{total} test cases: {}", counts.join(", "));
    fs::write(work.join(SUMMARY_FILE), &summary).context("writing the summary")?;
    drop(local);
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(if all_passed {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

#[cfg(all(test, feature = "dev"))]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_counts_and_failures_from_the_json_report() {
        let report = RunReport::parse(&json!({
            "exit_code": 1,
            "test_cases": {"generated": 812, "with_failures": 9, "unique_failures": 2,
                           "without_checks": 0, "errored": 0},
            "failures": [{"type": "x", "code": "y", "title": "API accepted schema-violating request",
                          "severity": "medium", "count": 7,
                          "operations": ["GET /v1/activity", "GET /v1/audit"]}],
            "errors": [{"title": "Network Error", "count": 2}],
        }));
        assert_eq!(report.generated, 812);
        assert_eq!(report.unique_failures, 2);
        assert_eq!(report.errors, 2);
        assert_eq!(
            report.failures,
            ["API accepted schema-violating request (7x): GET /v1/activity, GET /v1/audit"]
        );
        assert!(!report.passed());

        let clean = RunReport::parse(&json!({
            "exit_code": 0,
            "test_cases": {"generated": 300, "with_failures": 0, "unique_failures": 0},
            "failures": [], "errors": [],
            "phases": {"fuzzing": {"status": "success"}, "stateful": {"status": "success"}},
        }));
        assert!(clean.passed());
        // Clean, but without its stateful phase (no links left to follow): not a pass.
        let without_stateful = RunReport::parse(&json!({
            "exit_code": 0,
            "test_cases": {"generated": 300, "with_failures": 0, "unique_failures": 0},
            "failures": [], "errors": [],
            "phases": {"stateful": {"status": "skip", "skip_reason": "no links"}},
        }));
        assert!(!without_stateful.passed());
        assert!(!RunReport::default().passed());
    }

    #[test]
    fn the_config_names_the_client_whose_account_is_opened() {
        let config = std::fs::read_to_string(crate::repo_root().join(CONFIG)).unwrap();
        assert!(
            config.contains(&format!("values = [\"{CLIENT_SUBJECT}\"]")),
            "{CONFIG} must give the operator run `{CLIENT_SUBJECT}` as its client"
        );
    }
}
