//! `cargo xtask test`: the whole check, exactly as CI runs it.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::conformance;
use crate::process::{Group, OnParentDeath};
use crate::standins::{self, StandIns};

/// One line of the closing summary.
struct StepResult {
    name: &'static str,
    took: Duration,
    ok: bool,
    /// Free space on the repository's filesystem when the step ended: CI's disk is small, and a
    /// full disk fails a link or an install with a message that does not say so.
    free_after: Option<u64>,
    detail: String,
}

#[derive(Default)]
struct Summary {
    steps: Vec<StepResult>,
}

impl Summary {
    fn record(&mut self, name: &'static str, took: Duration, ok: bool, detail: impl Into<String>) {
        self.steps.push(StepResult {
            name,
            took,
            ok,
            free_after: free_bytes(Path::new(env!("CARGO_MANIFEST_DIR"))),
            detail: detail.into(),
        });
    }

    fn all_ok(&self) -> bool {
        self.steps.iter().all(|step| step.ok)
    }

    fn print(&self, total: Duration) {
        println!("\nxtask test summary");
        for step in &self.steps {
            let free = step
                .free_after
                .map(|bytes| format!("{:.1}G free", bytes as f64 / 1e9))
                .unwrap_or_default();
            println!(
                "  {:<12} {:>7.1}s  {:<6} {:>11}  {}",
                step.name,
                step.took.as_secs_f64(),
                if step.ok { "ok" } else { "FAILED" },
                free,
                step.detail
            );
        }
        println!(
            "  {:<12} {:>7.1}s  {}",
            "total",
            total.as_secs_f64(),
            if self.all_ok() { "ok" } else { "FAILED" }
        );
    }
}

/// What the test step builds and runs: every target with `test = true` (libraries, integration
/// tests, xtask's unit tests; not the Lambda entry points, which set `test = false`) and examples.
/// Not --all-targets: that would run every benchmark at full size in debug mode; benchmarks run
/// with `cargo xtask bench` (clippy still checks them). The conformance step builds the same
/// selection, so it finds everything fresh.
pub const TEST_TARGETS: &[&str] = &["--workspace", "--tests", "--examples"];

/// Available bytes on the filesystem holding `path`, as `df` reports them (no libc binding needed).
fn free_bytes(path: &Path) -> Option<u64> {
    let output = Command::new("df").args(["-Pk"]).arg(path).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let kib: u64 = text
        .lines()
        .nth(1)?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

pub fn run(repo_root: &Path) -> Result<ExitCode> {
    let total = Instant::now();
    let mut summary = Summary::default();

    let started = Instant::now();
    let installed = match standins::install(repo_root) {
        Ok((installed, report)) => {
            summary.record("install", started.elapsed(), true, report.to_string());
            installed
        }
        Err(error) => {
            eprintln!("xtask: installing the stand-ins failed: {error:#}");
            summary.record("install", started.elapsed(), false, "");
            summary.print(total.elapsed());
            return Ok(ExitCode::FAILURE);
        }
    };

    let started = Instant::now();
    let mut standins = match StandIns::start(&installed) {
        Ok(standins) => {
            summary.record(
                "start",
                started.elapsed(),
                true,
                format!(
                    "DynamoDB Local ready in {:.1}s, moto in {:.1}s, LocalStack's SQS in {:.1}s",
                    standins.dynamodb.ready_after.as_secs_f64(),
                    standins.moto.ready_after.as_secs_f64(),
                    standins.sqs.ready_after.as_secs_f64()
                ),
            );
            standins
        }
        Err(error) => {
            eprintln!("xtask: starting the stand-ins failed: {error:#}");
            summary.record("start", started.elapsed(), false, "");
            summary.print(total.elapsed());
            return Ok(ExitCode::FAILURE);
        }
    };
    println!("xtask: {}", standins.describe());
    // Every later step (cargo, the conformance step and whatever it starts) inherits the contract's
    // environment from this process.
    crate::export_env(&standins.env());

    // Each step runs even if an earlier one failed, and every test binary runs even if an earlier
    // one failed (--no-fail-fast), so one run reports every problem.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut steps: Vec<(&'static str, Vec<&str>)> = vec![
        ("fmt", vec!["fmt", "--all", "--", "--check"]),
        (
            "clippy",
            vec![
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
        (
            "tests",
            [&["test"], TEST_TARGETS, &["--no-fail-fast"]].concat(),
        ),
    ];
    // Those targets leave doc tests out; cargo refuses --doc when no crate has a library. When
    // cargo metadata itself fails the workspace is broken: run the step so it reports that.
    if workspace_has_library(&cargo, repo_root).unwrap_or(true) {
        steps.push((
            "doc tests",
            vec!["test", "--workspace", "--doc", "--no-fail-fast"],
        ));
    }
    for (name, args) in steps {
        println!("\nxtask: ==> {name}: cargo {}", args.join(" "));
        let started = Instant::now();
        let outcome = run_step(Command::new(&cargo).args(&args).current_dir(repo_root));
        let ok = match outcome {
            Ok(()) => true,
            Err(error) => {
                eprintln!("xtask: {name} failed: {error:#}");
                false
            }
        };
        summary.record(name, started.elapsed(), ok, "");
    }

    println!("\nxtask: ==> conformance");
    let started = Instant::now();
    let ok = match conformance::run(repo_root) {
        Ok(()) => true,
        Err(error) => {
            eprintln!("xtask: conformance failed: {error:#}");
            false
        }
    };
    summary.record("conformance", started.elapsed(), ok, "");

    // schemathesis against the local platform, client and operator (xtask/src/schemathesis.rs).
    println!("\nxtask: ==> schemathesis");
    let started = Instant::now();
    let (ok, detail) = crate::schemathesis::step(repo_root);
    summary.record("schemathesis", started.elapsed(), ok, detail);

    // The dashboard: build (initial JS budget), then Playwright in Debian's chromium against a
    // local platform of its own (xtask/src/web.rs).
    println!("\nxtask: ==> web");
    let started = Instant::now();
    let (ok, detail) = crate::web::step(repo_root);
    summary.record("web", started.elapsed(), ok, detail);

    // cfn-lint on template.yaml (pinned with moto, in .tools/venv). It stops reporting undefined
    // references once the template has an HttpApi: infra/deploy-checks' tests cover those.
    println!("\nxtask: ==> template: cfn-lint template.yaml");
    let started = Instant::now();
    let (ok, detail) = match crate::deploy_tools::cfn_lint(repo_root) {
        Ok(took) => (true, format!("cfn-lint {:.1}s", took.as_secs_f64())),
        Err(error) => {
            eprintln!("xtask: template failed: {error:#}");
            (false, String::new())
        }
    };
    summary.record("template", started.elapsed(), ok, detail);

    // A stand-in that died mid-run explains a burst of failing tests; say so.
    if let Err(error) = standins.check_alive() {
        eprintln!("xtask: {error:#}");
        summary.record(
            "stand-ins",
            Duration::ZERO,
            false,
            "a stand-in died during the run",
        );
    }
    standins.stop();
    summary.print(total.elapsed());
    Ok(if summary.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs one cargo step in its own process group (so an interrupt stops all of it) and waits.
fn run_step(command: &mut Command) -> Result<()> {
    let status = Group::spawn(command, OnParentDeath::Continue)?.wait()?;
    if !status.success() {
        anyhow::bail!("exited with {status}");
    }
    Ok(())
}

fn workspace_has_library(cargo: &str, repo_root: &Path) -> Result<bool> {
    let output = Command::new(cargo)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(repo_root)
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        anyhow::bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("parsing cargo metadata")?;
    Ok(has_library_target(&metadata))
}

fn has_library_target(metadata: &serde_json::Value) -> bool {
    let packages = metadata["packages"].as_array().into_iter().flatten();
    packages
        .flat_map(|package| package["targets"].as_array().into_iter().flatten())
        .flat_map(|target| target["kind"].as_array().into_iter().flatten())
        .any(|kind| matches!(kind.as_str(), Some("lib" | "rlib" | "proc-macro")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn doc_tests_run_only_when_some_crate_has_a_library() {
        let only_binaries = json!({"packages": [
            {"targets": [{"kind": ["bin"]}, {"kind": ["test"]}]}
        ]});
        let with_library = json!({"packages": [
            {"targets": [{"kind": ["bin"]}]},
            {"targets": [{"kind": ["lib"]}, {"kind": ["bench"]}]}
        ]});
        assert!(!has_library_target(&only_binaries));
        assert!(has_library_target(&with_library));
    }
}
