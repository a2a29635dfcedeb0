//! The deploy tools: cargo-lambda and zig in `.tools/deploy-venv` (pinned in
//! `xtask/deploy/requirements.txt`), installed on first use by `cargo xtask build` only (zig alone
//! is ~500 MB, which a test run must not pay for on a small CI disk), and again only when the pins
//! or the Python version change. Kept apart from the stand-ins' venv so neither reinstalls the
//! other.
//!
//! cfn-lint is not here: moto's server depends on it, so the stand-ins' venv (`.tools/venv`, pinned
//! in `xtask/standins/requirements.txt`) already has it, at the version pinned there.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// One pinned venv: where it lives, its pins, the programs that prove it is installed.
struct Venv {
    dir: &'static str,
    pins: &'static str,
    programs: &'static [&'static str],
}

const DEPLOY: Venv = Venv {
    dir: ".tools/deploy-venv",
    pins: "xtask/deploy/requirements.txt",
    programs: &["cargo-lambda", "python-zig"],
};

/// The deploy venv's `bin/` directory (cargo-lambda, zig), installed if needed.
pub fn ensure(repo_root: &Path) -> Result<PathBuf> {
    ensure_venv(repo_root, &DEPLOY)
}

fn ensure_venv(repo_root: &Path, spec: &Venv) -> Result<PathBuf> {
    let pins = repo_root.join(spec.pins);
    let venv = repo_root.join(spec.dir);
    let requirements =
        fs::read_to_string(&pins).with_context(|| format!("reading {}", spec.pins))?;
    let python = Command::new("python3")
        .arg("--version")
        .output()
        .with_context(|| format!("python3 is needed for {}", spec.programs.join(", ")))?;
    let expected = format!(
        "{requirements}\n# {}\n",
        String::from_utf8_lossy(&python.stdout).trim()
    );
    let stamp = venv.join(".installed-requirements.txt");
    let bin = venv.join("bin");
    if fs::read_to_string(&stamp).ok().as_deref() == Some(expected.as_str())
        && spec.programs.iter().all(|p| bin.join(p).is_file())
    {
        return Ok(bin);
    }
    println!(
        "xtask: installing {} into {} (pinned in {})",
        spec.programs.join(", "),
        spec.dir,
        spec.pins
    );
    let _ = fs::remove_file(&stamp);
    checked(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
    )?;
    checked(
        Command::new(bin.join("python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-input",
                "--no-cache-dir",
            ])
            .args(["--disable-pip-version-check", "--requirement"])
            .arg(&pins),
    )?;
    fs::write(&stamp, expected).context("writing the install stamp")?;
    Ok(bin)
}

/// `PATH` with the venv first, so cargo-lambda finds its zig and Python.
pub fn path_with(bin: &Path) -> std::ffi::OsString {
    let mut paths = vec![bin.to_path_buf()];
    if let Some(existing) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&existing));
    }
    std::env::join_paths(paths).unwrap_or_default()
}

/// Runs the pinned cfn-lint (from the stand-ins' venv, installed by the time the template step
/// runs) on `template.yaml`; returns how long the lint itself took.
pub fn cfn_lint(repo_root: &Path) -> Result<Duration> {
    let bin = repo_root.join(".tools/venv/bin");
    if !bin.join("cfn-lint").is_file() {
        bail!(
            "no .tools/venv/bin/cfn-lint: the stand-ins' venv is not installed (cargo xtask test installs it)"
        );
    }
    let started = Instant::now();
    let status = Command::new(bin.join("cfn-lint"))
        .arg("template.yaml")
        .current_dir(repo_root)
        .env("PATH", path_with(&bin))
        .stdin(Stdio::null())
        .status()
        .context("running cfn-lint")?;
    let took = started.elapsed();
    if !status.success() {
        bail!("cfn-lint found problems in template.yaml ({status})");
    }
    Ok(took)
}

fn checked(command: &mut Command) -> Result<()> {
    let status = command
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}
