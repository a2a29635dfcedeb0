//! The deploy tooling venv (`.tools/deploy-venv`): cargo-lambda (+ zig) and cfn-lint, pinned in
//! `xtask/deploy/requirements.txt`, installed on first use and again only when the pins or the
//! Python version change. Kept apart from the stand-ins' venv so neither reinstalls the other.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The venv's `bin/` directory, installed if needed.
pub fn ensure(repo_root: &Path) -> Result<PathBuf> {
    let pins = repo_root.join("xtask/deploy/requirements.txt");
    let venv = repo_root.join(".tools/deploy-venv");
    let requirements =
        fs::read_to_string(&pins).context("reading xtask/deploy/requirements.txt")?;
    let python = Command::new("python3")
        .arg("--version")
        .output()
        .context("python3 is needed for the deploy tools (cargo-lambda, cfn-lint)")?;
    let expected = format!(
        "{requirements}\n# {}\n",
        String::from_utf8_lossy(&python.stdout).trim()
    );
    let stamp = venv.join(".installed-requirements.txt");
    let bin = venv.join("bin");
    if fs::read_to_string(&stamp).ok().as_deref() == Some(expected.as_str())
        && bin.join("cfn-lint").is_file()
        && bin.join("cargo-lambda").is_file()
    {
        return Ok(bin);
    }
    println!("xtask: installing cargo-lambda and cfn-lint into .tools/deploy-venv (about 20 s)");
    let _ = fs::remove_file(&stamp);
    checked(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
    )?;
    checked(
        Command::new(bin.join("python"))
            .args(["-m", "pip", "install", "--quiet", "--no-input"])
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

/// Runs the pinned cfn-lint on `template.yaml`; returns how long the lint itself took.
pub fn cfn_lint(repo_root: &Path) -> Result<Duration> {
    let bin = ensure(repo_root)?;
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
