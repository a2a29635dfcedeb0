//! The dashboard's step of `cargo xtask test` (`web/`), alone as `cargo xtask web`, and
//! `cargo xtask screenshots`:
//!
//! 1. `npm ci` in `web/` when `node_modules` is missing or was installed from another
//!    `package.json` / `package-lock.json` (Playwright's browser download skipped: there is none
//!    here, the tests drive Debian's `chromium`);
//! 2. Debian's `chromium` on PATH: installed with apt-get when missing and running as root, else
//!    the step fails with the command to run;
//! 3. `web/src/api-types.ts` checked against `openapi.json` (generated again and compared), then
//!    `npm run build` (type check, then Vite), and the initial JavaScript (the entry script and the
//!    chunks `index.html` preloads) gzipped, failing above [`INITIAL_JS_BUDGET`];
//! 4. the platform, started as the schemathesis step does (a dev build of xtask runs
//!    `xtask web-run`: Dfns emulator, fresh table, secrets, every function on a free port with
//!    the scheduler on, [`COOLING_OFF`] for new destinations, access tokens living
//!    [`ACCESS_TOKEN_SECONDS`]), serving `web/dist` at `/`;
//! 5. `npx playwright test` against it (`web/playwright.config.ts`), with the stack's URL, the
//!    emulator's URL and its bootstrap file (the officers' keys) in the environment; the JSON
//!    report gives the counts for the summary.
//!
//! Every process started here is a [`Group`]: stopped when the step ends, however it ends.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::process::{Group, OnParentDeath};
use crate::schemathesis::{build_dev_xtask, target_dir, wait_until};

const WEB_DIR: &str = "web";
/// The files an install depends on; a copy of each is kept in node_modules to detect staleness.
const INSTALL_INPUTS: [&str; 2] = ["package.json", "package-lock.json"];
const INSTALL_STAMP_DIR: &str = "node_modules/.xtask-installed-from";
/// The API's types, generated from the repository's `openapi.json`.
const API_TYPES: &str = "src/api-types.ts";
/// The issue's budget for the JavaScript a first visit loads, gzipped.
pub const INITIAL_JS_BUDGET: u64 = 100 * 1024;
/// A new destination's cooling-off in the tests: long enough to see and veto, short enough to wait.
pub const COOLING_OFF: &str = "4s";
/// The development issuer's access-token lifetime in the tests: the app renews 30 s before
/// expiry, so every flow longer than 10 s renews with its refresh token at least once.
pub const ACCESS_TOKEN_SECONDS: &str = "40";
/// Where the reports go, under the target directory.
const WORK_DIR: &str = "web";
const SUMMARY_FILE: &str = "summary.txt";
const NPM_TIMEOUT: Duration = Duration::from_secs(300);
const APT_TIMEOUT: Duration = Duration::from_secs(600);
/// Bound of the whole run (platform and Playwright), enforced on the `web-run` process.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);
/// Where `cargo xtask screenshots` writes its PNGs (the Playwright project `screenshots`).
#[cfg(feature = "dev")]
pub const SCREENSHOTS_DIR: &str = "docs/screenshots";

/// What a run executes: the tests, or the screenshot script.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Project {
    Tests,
    Screenshots,
}

impl Project {
    fn name(self) -> &'static str {
        match self {
            Project::Tests => "e2e",
            Project::Screenshots => "screenshots",
        }
    }

    #[cfg(feature = "dev")]
    pub fn parse(name: &str) -> Result<Project> {
        match name {
            "e2e" => Ok(Project::Tests),
            "screenshots" => Ok(Project::Screenshots),
            other => bail!("unknown Playwright project {other}"),
        }
    }
}

/// The step of `cargo xtask test`: (passed, the summary's detail). Expects the stand-ins'
/// environment in this process's environment.
pub fn step(repo_root: &Path) -> (bool, String) {
    let work = target_dir(repo_root).join(WORK_DIR);
    match prepare_and_run(repo_root, &work, Project::Tests) {
        Ok(detail) => (true, detail),
        Err(error) => {
            eprintln!("xtask: web failed: {error:#}");
            let detail = read_summary(&work);
            (false, detail)
        }
    }
}

/// `cargo xtask web` and `cargo xtask screenshots`: the stand-ins, then the step.
pub fn run_alone(repo_root: &Path, project: Project) -> Result<ExitCode> {
    let (installed, _) = crate::standins::install(repo_root)?;
    let standins = crate::standins::StandIns::start(&installed)?;
    eprintln!("xtask: {}", standins.describe());
    crate::export_env(&standins.env());
    let started = Instant::now();
    let work = target_dir(repo_root).join(WORK_DIR);
    let outcome = prepare_and_run(repo_root, &work, project);
    standins.stop();
    let (ok, detail) = match outcome {
        Ok(detail) => (true, detail),
        Err(error) => {
            eprintln!("xtask: {error:#}");
            (false, read_summary(&work))
        }
    };
    println!(
        "\nxtask {}: {} in {:.1}s  {detail}",
        match project {
            Project::Tests => "web",
            Project::Screenshots => "screenshots",
        },
        if ok { "ok" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn prepare_and_run(repo_root: &Path, work: &Path, project: Project) -> Result<String> {
    let web = repo_root.join(WEB_DIR);
    let _ = fs::remove_dir_all(work);
    fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    ensure_node_modules(&web)?;
    let chromium = ensure_chromium()?;
    check_api_types(&web, work)?;
    let bundle = build(&web)?;
    let bundle_line = format!("initial JS {:.1} KB gzipped", bundle as f64 / 1024.0);
    fs::write(work.join(SUMMARY_FILE), &bundle_line)?;

    let binary = work.join("xtask-dev");
    build_dev_xtask(repo_root, &binary)?;
    let status = wait_until(
        Group::spawn(
            Command::new(&binary)
                .arg("web-run")
                .arg("--work-dir")
                .arg(work)
                .arg("--project")
                .arg(project.name())
                .env("CHROMIUM_PATH", &chromium)
                .env("DESTINATION_COOLING_OFF", COOLING_OFF)
                .env("DEV_ACCESS_TOKEN_SECONDS", ACCESS_TOKEN_SECONDS)
                .env(
                    "RUST_LOG",
                    std::env::var("RUST_LOG").unwrap_or_else(|_| "error".to_owned()),
                )
                .current_dir(repo_root),
            OnParentDeath::Die,
        )?,
        RUN_TIMEOUT,
    );
    let _ = fs::remove_file(&binary);
    let summary = format!("{bundle_line}; {}", read_summary(work));
    fs::write(work.join(SUMMARY_FILE), &summary)?;
    let status = status?;
    if !status.success() {
        bail!("the Playwright run ended with {status} (its output is above)");
    }
    Ok(summary)
}

fn read_summary(work: &Path) -> String {
    fs::read_to_string(work.join(SUMMARY_FILE))
        .map(|text| text.trim().to_owned())
        .unwrap_or_default()
}

/// Runs `command` to its end within `timeout`; Err unless it succeeds.
fn run_to_end(command: &mut Command, what: &str, timeout: Duration) -> Result<()> {
    let status = wait_until(Group::spawn(command, OnParentDeath::Continue)?, timeout)
        .with_context(|| what.to_owned())?;
    if !status.success() {
        bail!("{what}: {status}");
    }
    Ok(())
}

fn ensure_node_modules(web: &Path) -> Result<()> {
    let stamp_dir = web.join(INSTALL_STAMP_DIR);
    let up_to_date = INSTALL_INPUTS.iter().all(|name| {
        match (fs::read(web.join(name)), fs::read(stamp_dir.join(name))) {
            (Ok(current), Ok(installed)) => current == installed,
            _ => false,
        }
    });
    if up_to_date {
        println!("web: web/node_modules is up to date");
        return Ok(());
    }
    println!("web: npm ci in web/");
    run_to_end(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            // No browser download (none is reachable): the tests drive Debian's chromium.
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
            .current_dir(web),
        "npm ci in web/ (is Node.js with npm on PATH?)",
        NPM_TIMEOUT,
    )?;
    fs::create_dir_all(&stamp_dir).with_context(|| format!("creating {}", stamp_dir.display()))?;
    for name in INSTALL_INPUTS {
        fs::copy(web.join(name), stamp_dir.join(name))
            .with_context(|| format!("recording {name}"))?;
    }
    Ok(())
}

/// `command -v chromium`, if it answers.
fn chromium_path() -> Option<PathBuf> {
    let output = Command::new("sh")
        .args(["-c", "command -v chromium"])
        .output()
        .ok()?;
    let path = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
}

/// Debian's chromium, installed when missing if this process may (root).
fn ensure_chromium() -> Result<PathBuf> {
    if let Some(path) = chromium_path() {
        return Ok(path);
    }
    const INSTALL: &str = "apt-get update && apt-get install -y chromium";
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("chromium is not installed; as root, run: {INSTALL}");
    }
    println!("web: chromium is missing; {INSTALL}");
    run_to_end(
        Command::new("sh")
            .args(["-c", INSTALL])
            .env("DEBIAN_FRONTEND", "noninteractive"),
        INSTALL,
        APT_TIMEOUT,
    )?;
    chromium_path().context("chromium still not on PATH after the install")
}

/// The app's API types are generated from `openapi.json` (`npm run gen:api`): a stale copy would
/// type-check against shapes the API no longer has.
fn check_api_types(web: &Path, work: &Path) -> Result<()> {
    let fresh = work.join("api-types.ts");
    run_to_end(
        Command::new("npx")
            .args(["openapi-typescript", "../openapi.json", "--output"])
            .arg(&fresh)
            .stdout(Stdio::null())
            .current_dir(web),
        "openapi-typescript ../openapi.json",
        NPM_TIMEOUT,
    )?;
    let current = fs::read(web.join(API_TYPES)).unwrap_or_default();
    if fs::read(&fresh).context("reading the generated types")? != current {
        bail!("web/{API_TYPES} is stale against openapi.json: run `npm --prefix web run gen:api`");
    }
    println!("web: web/{API_TYPES} matches openapi.json");
    Ok(())
}

/// `npm run build` (tsc, then Vite) and the initial JavaScript's gzipped size, checked against
/// [`INITIAL_JS_BUDGET`].
fn build(web: &Path) -> Result<u64> {
    println!("web: npm run build");
    run_to_end(
        Command::new("npm").args(["run", "build"]).current_dir(web),
        "npm run build in web/ (type check and Vite)",
        NPM_TIMEOUT,
    )?;
    let dist = web.join("dist");
    let html =
        fs::read_to_string(dist.join("index.html")).context("reading web/dist/index.html")?;
    let files = initial_scripts(&html);
    if files.is_empty() {
        bail!("web/dist/index.html loads no script");
    }
    let mut total = 0;
    for file in &files {
        let path = dist.join(file.trim_start_matches('/'));
        let size = gzipped_size(&path)?;
        println!("web: {file}: {:.1} KB gzipped", size as f64 / 1024.0);
        total += size;
    }
    println!(
        "web: initial JavaScript {:.1} KB gzipped (budget {} KB)",
        total as f64 / 1024.0,
        INITIAL_JS_BUDGET / 1024
    );
    if total > INITIAL_JS_BUDGET {
        bail!(
            "the initial JavaScript is {:.1} KB gzipped, over the {} KB budget: split a chunk off",
            total as f64 / 1024.0,
            INITIAL_JS_BUDGET / 1024
        );
    }
    Ok(total)
}

/// The scripts a first visit loads: the module entries and the chunks preloaded with them.
fn initial_scripts(html: &str) -> Vec<String> {
    let mut files = Vec::new();
    for tag in html.split('<').skip(1) {
        let tag = tag.split('>').next().unwrap_or_default();
        let attribute = if tag.starts_with("script") && tag.contains("type=\"module\"") {
            "src=\""
        } else if tag.starts_with("link") && tag.contains("rel=\"modulepreload\"") {
            "href=\""
        } else {
            continue;
        };
        if let Some(value) = tag
            .split_once(attribute)
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(value, _)| value.to_owned())
        {
            files.push(value);
        }
    }
    files
}

/// Size after `gzip -9` (what a server would send; Vite prints a close figure).
fn gzipped_size(path: &Path) -> Result<u64> {
    let output = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .stderr(Stdio::inherit())
        .output()
        .context("running gzip")?;
    if !output.status.success() {
        bail!("gzip {}: {}", path.display(), output.status);
    }
    Ok(output.stdout.len() as u64)
}

#[cfg(feature = "dev")]
/// For `cargo xtask dev`: `npm ci` and a build when `web/dist` is missing, so the stack's `/`
/// serves the dashboard; skipped with a message when npm is absent or the build fails.
pub fn build_for_dev(repo_root: &Path) {
    let web = repo_root.join(WEB_DIR);
    if web.join("dist/index.html").is_file() {
        return;
    }
    let has_npm = Command::new("npm")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_npm {
        println!(
            "xtask dev: npm not found; the dashboard (web/) is not built, `/` will not serve it"
        );
        return;
    }
    println!("xtask dev: building the dashboard (web/dist is missing)");
    let built = ensure_node_modules(&web).and_then(|()| {
        run_to_end(
            Command::new("npm").args(["run", "build"]).current_dir(&web),
            "npm run build in web/",
            NPM_TIMEOUT,
        )
    });
    if let Err(error) = built {
        println!("xtask dev: the dashboard was not built ({error:#}); the API runs without it");
    }
}

/// `xtask web-run --work-dir DIR --project NAME` (dev feature): the platform, then Playwright.
#[cfg(feature = "dev")]
pub fn run_platform(repo_root: &Path, work: &Path, project: Project) -> Result<ExitCode> {
    use crate::stack::{self, Purpose};

    if std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_none() {
        bail!("the stand-ins' environment is missing: run `cargo xtask web`");
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
    let bootstrap_file = work.join("emulator-bootstrap.json");
    fs::write(
        &bootstrap_file,
        serde_json::to_vec_pretty(local.emulator.bootstrap())?,
    )
    .context("writing the emulator bootstrap")?;
    println!(
        "web: platform at {base_url} (Dfns emulator at {}) in {:.1}s",
        local.emulator.base_url(),
        started.elapsed().as_secs_f64()
    );

    let report = work.join("playwright-report.json");
    let web = repo_root.join(WEB_DIR);
    let playwright_started = Instant::now();
    let status = Group::spawn(
        Command::new("npx")
            .args(["playwright", "test", "--project", project.name()])
            .args(["--reporter", "list,json"])
            .env("PLAYWRIGHT_JSON_OUTPUT_NAME", &report)
            .env("DASHBOARD_URL", &base_url)
            .env("EMULATOR_URL", local.emulator.base_url())
            .env("EMULATOR_BOOTSTRAP_FILE", &bootstrap_file)
            .env("SCREENSHOTS_DIR", repo_root.join(SCREENSHOTS_DIR))
            .env("PLAYWRIGHT_OUTPUT_DIR", work.join("test-results"))
            .current_dir(&web),
        OnParentDeath::Die,
    )?
    .wait()?;
    let took = playwright_started.elapsed();
    let summary = fs::read_to_string(&report)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .map(|json| describe_report(&json, took))
        .unwrap_or_else(|| format!("no Playwright report ({status})"));
    println!("\nweb: {summary}");
    fs::write(work.join(SUMMARY_FILE), &summary)?;
    drop(local);
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `N passed, N failed, N flaky, N skipped in Ts` from Playwright's JSON report.
#[cfg(feature = "dev")]
fn describe_report(report: &serde_json::Value, took: Duration) -> String {
    let stats = &report["stats"];
    let count = |key: &str| stats[key].as_u64().unwrap_or(0);
    format!(
        "Playwright: {} passed, {} failed, {} flaky, {} skipped in {:.1}s",
        count("expected"),
        count("unexpected"),
        count("flaky"),
        count("skipped"),
        took.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_scripts_are_the_entry_and_its_preloads_not_lazy_chunks() {
        let html = r#"<!doctype html><html><head>
<script type="module" crossorigin src="/assets/index-abc.js"></script>
<link rel="modulepreload" crossorigin href="/assets/vendor-def.js">
<link rel="stylesheet" crossorigin href="/assets/index-123.css">
</head><body><div id="app"></div></body></html>"#;
        assert_eq!(
            initial_scripts(html),
            ["/assets/index-abc.js", "/assets/vendor-def.js"]
        );
    }
}
