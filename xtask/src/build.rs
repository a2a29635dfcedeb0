//! `cargo xtask build [--arm64 | --x86-64]`: `cargo lambda build --release` for every crate in
//! `functions/`, then each artifact's size.
//!
//! The template deploys arm64. Building it needs rustup's aarch64 standard library: used when
//! installed; `--arm64` also tries to install it (`rustup target add`), and when that is not
//! reachable (offline build machines) says so and builds x86_64, which this machine can always
//! build. cargo-lambda cross-links with zig, both from the deploy venv (see `deploy_tools`).

use std::fs;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::deploy_tools;
use crate::process::{Group, OnParentDeath};

const AARCH64: &str = "aarch64-unknown-linux-gnu";
const X86_64: &str = "x86_64-unknown-linux-gnu";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Arm64,
    X86_64,
}

/// Package names of the crates in `functions/`, sorted.
pub fn function_crates(repo_root: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(repo_root.join("functions")).context("reading functions/")? {
        let manifest = entry?.path().join("Cargo.toml");
        let Ok(text) = fs::read_to_string(&manifest) else {
            continue;
        };
        let name = package_name(&text)
            .with_context(|| format!("no package name in {}", manifest.display()))?;
        names.push(name);
    }
    names.sort();
    Ok(names)
}

/// `name = "…"` of the `[package]` table.
fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if let Some(value) = line.strip_prefix("name").filter(|_| in_package) {
            let value = value.trim_start().strip_prefix('=')?.trim();
            return Some(value.trim_matches('"').to_owned());
        }
    }
    None
}

fn aarch64_installed() -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == AARCH64)
        })
}

/// Which architecture to build, and why (printed).
fn choose(arm64_requested: bool, x86_requested: bool) -> (Arch, String) {
    if x86_requested {
        return (Arch::X86_64, "x86_64 (asked for)".into());
    }
    if aarch64_installed() {
        return (Arch::Arm64, "arm64 (what the template deploys)".into());
    }
    if !arm64_requested {
        return (
            Arch::X86_64,
            format!(
                "x86_64: rustup's {AARCH64} standard library is not installed (pass --arm64 to \
                 try installing it); the template deploys arm64"
            ),
        );
    }
    println!("xtask: installing rustup's {AARCH64} standard library");
    let added = Command::new("timeout")
        .args(["180", "rustup", "target", "add", AARCH64])
        .status()
        .is_ok_and(|s| s.success());
    if added && aarch64_installed() {
        (
            Arch::Arm64,
            "arm64 (standard library just installed)".into(),
        )
    } else {
        (
            Arch::X86_64,
            format!(
                "x86_64: rustup could not install the {AARCH64} standard library here (offline?); \
                 `sam build` on a machine that can reach static.rust-lang.org builds the arm64 \
                 the template deploys"
            ),
        )
    }
}

pub fn run(repo_root: &Path, arm64: bool, x86_64: bool) -> Result<ExitCode> {
    let functions = function_crates(repo_root)?;
    if functions.is_empty() {
        bail!("no function crates in functions/");
    }
    let bin = deploy_tools::ensure(repo_root)?;
    let (arch, why) = choose(arm64, x86_64);
    println!("xtask: building {} function(s) for {why}", functions.len());

    let mut command = Command::new(bin.join("cargo-lambda"));
    command
        .args(["lambda", "build", "--release"])
        .arg(match arch {
            Arch::Arm64 => "--arm64",
            Arch::X86_64 => "--x86-64",
        })
        .current_dir(repo_root)
        .env("PATH", deploy_tools::path_with(&bin));
    for name in &functions {
        command.args(["--package", name]);
    }
    let started = Instant::now();
    let status = Group::spawn(&mut command, OnParentDeath::Continue)?.wait()?;
    if !status.success() {
        bail!("cargo lambda build failed ({status})");
    }
    let took = started.elapsed();

    let target = match arch {
        Arch::Arm64 => AARCH64,
        Arch::X86_64 => X86_64,
    };
    println!("\nxtask: artifacts ({target}, release: strip, LTO, codegen-units=1, panic=abort)");
    println!("  {:<18} {:>12}  path", "function", "size");
    let mut total = 0u64;
    for name in &functions {
        let path = repo_root.join("target/lambda").join(name).join("bootstrap");
        let size = fs::metadata(&path)
            .with_context(|| format!("no artifact at {}", path.display()))?
            .len();
        total += size;
        println!(
            "  {name:<18} {:>9.1} MB  {}",
            size as f64 / 1_048_576.0,
            path.strip_prefix(repo_root).unwrap_or(&path).display()
        );
    }
    println!(
        "  {:<18} {:>9.1} MB  built in {:.0} s",
        "total",
        total as f64 / 1_048_576.0,
        took.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_package_name_comes_from_the_package_table() {
        let manifest = "[package]\nname = \"order-execution\"\nversion = \"0.1.0\"\n\n[dependencies]\nname = \"x\"\n";
        assert_eq!(package_name(manifest).as_deref(), Some("order-execution"));
        assert_eq!(package_name("[dependencies]\nname = \"x\"\n"), None);
    }

    #[test]
    fn every_function_crate_is_found() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let crates = function_crates(root).unwrap();
        assert!(crates.contains(&"dfns-webhook".to_owned()), "{crates:?}");
        assert!(crates.contains(&"order-execution".to_owned()), "{crates:?}");
        assert!(crates.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
    }
}
