//! `cargo xtask bench coldstart [FUNCTION...] [--runs N] [--baseline DIR]`: cold start of the HTTP
//! functions, measured the way Lambda starts them.
//!
//! Builds the functions' release binaries (the profile the Lambda artifacts use) and the floor,
//! `infra/coldstart-floor` (bare `lambda_http` plus the AWS clients every function builds at init,
//! answering a fixed 401). Then, for each binary, many times over: a fresh process against a stub of
//! the Lambda Runtime API on loopback (a new listener per run, so nothing from a previous process
//! can reach the next), given one API Gateway HTTP API (v2) event for one of its routes without an
//! `Authorization` header. The function answers 401 without touching AWS or Dfns; every AWS
//! endpoint points at a closed loopback port, so a call that should not happen fails fast (and the
//! run is reported as failed unless the answer is the 401).
//!
//! Per run: **init** is spawn to the first `GET .../invocation/next` (the runtime is ready),
//! **first response** is spawn to its `POST .../invocation/{id}/response`; after that the next
//! `next` is left hanging, its peak RSS read (`VmHWM`), and the process killed, then reaped with
//! `wait4` for its CPU time (user + system, every thread). Runs are interleaved (one of each
//! binary per round, after one unmeasured warm-up run of each), so a change in the machine's load
//! spreads over every binary alike.
//!
//! `--baseline DIR` adds every executable file of DIR as `baseline/<name>` (binaries built earlier
//! from another commit), so before and after are measured in the same run. Zip sizes are the binary
//! zipped as `bootstrap` with the `zip` command (deflate, default level), as it is deployed; without
//! `zip` on PATH the column shows a dash.
//!
//! **Authenticated read** (unless `--no-auth`): the stand-ins (DynamoDB Local, moto) and a local
//! platform of its own (the Dfns emulator and the local stack, whose development issuer publishes
//! its keys at `{issuer}/.well-known/jwks.json`) run beside the measurement; a client's account is
//! opened there and a client's and an operator's token minted (`coldstart-platform`, a hidden
//! subcommand of xtask's dev build). Each function is then also started fresh, pointed at them, and
//! given one event of a read with the bearer token ([`READS`]): its first response (a 200) includes
//! the issuer's key fetch and the DynamoDB calls, over loopback HTTP. RSS is the peak of both runs.
//!
//! Never part of `cargo xtask test`: these are figures, not assertions.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Parser;

use crate::process::{Group, OnParentDeath};
use crate::standins::StandIns;

/// The floor's package and binary name.
const FLOOR: &str = "coldstart-floor";

/// Per HTTP function, a route it serves that answers 401 without a bearer token before any AWS or
/// Dfns call. `dfns-webhook` refuses a delivery without a well-formed signature header before it
/// reads its secret. The scheduled functions have no HTTP path.
const PROBES: &[(&str, &str, &str)] = &[
    ("signup", "POST", "/v1/accounts"),
    ("destinations", "GET", "/v1/destination-requests"),
    ("reporting", "GET", "/v1/account"),
    ("trading", "GET", "/v1/trading-authorizations"),
    ("withdrawals", "GET", "/v1/withdrawals"),
    ("operator", "GET", "/v1/operator/orders"),
    ("dfns-webhook", "POST", "/v1/webhooks/dfns"),
];

/// Per HTTP function, the authenticated read: method, path, and whether the token is an
/// operator's. Each answers 200 from DynamoDB alone for the client whose account is open (no Dfns
/// call); signup's only route resumes that open account.
pub const READS: &[(&str, &str, &str, bool)] = &[
    ("signup", "POST", "/v1/accounts", false),
    ("destinations", "GET", "/v1/destination-requests", false),
    ("reporting", "GET", "/v1/notifications", false),
    ("trading", "GET", "/v1/trading-authorizations", false),
    ("withdrawals", "GET", "/v1/withdrawals", false),
    ("operator", "GET", "/v1/operator/orders", true),
];

/// The client whose account the authenticated reads read.
pub const CLIENT_SUBJECT: &str = "coldstart-client";
/// The operator of the operator function's read.
#[cfg(feature = "dev")]
pub const OPERATOR_SUBJECT: &str = "coldstart-desk";
/// What `coldstart-platform` writes once the platform is up.
const PLATFORM_FILE: &str = "platform.json";
/// How long the stand-ins, the build of xtask's dev feature and the platform may take to be ready.
const PLATFORM_TIMEOUT: Duration = Duration::from_secs(900);

#[derive(Parser)]
#[command(
    name = "cargo xtask bench coldstart",
    about = "Cold start of the HTTP functions (release builds) against a Runtime API stub, beside the floor"
)]
struct Args {
    /// Functions to measure (default: every HTTP function with an unauthenticated path that
    /// stays off AWS: signup, destinations, reporting, trading, withdrawals, operator).
    functions: Vec<String>,
    /// Measured runs per binary (fresh process each), after one unmeasured warm-up run.
    #[arg(long, default_value_t = 15)]
    runs: usize,
    /// Also measure every executable file in this directory, as `baseline/<file name>`; a
    /// file's name selects its route, as for the functions.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Seconds one run may take to answer before it counts as failed.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Only the unauthenticated first response: no stand-ins, no platform.
    #[arg(long)]
    no_auth: bool,
    /// Also print the functions' init trace (`COLDSTART_TRACE`, `platform::http::init_mark`):
    /// per step, the median milliseconds since `main` began, over the 401 runs.
    #[arg(long)]
    trace: bool,
}

/// One binary under test.
struct Subject {
    /// As printed: `signup`, `baseline/signup`, `coldstart-floor`.
    label: String,
    /// The function it is (selects the route and `AWS_LAMBDA_FUNCTION_NAME`).
    function: String,
    path: PathBuf,
    binary_bytes: u64,
    zip_bytes: Option<u64>,
    samples: Vec<Sample>,
    /// Why it was dropped from the measurement, if it was.
    failure: Option<String>,
    /// Runs of the authenticated read (none for the floor, or without a platform).
    auth_samples: Vec<Sample>,
    /// Why the authenticated read was dropped, if it was.
    auth_failure: Option<String>,
}

struct Sample {
    init: Duration,
    first_response: Duration,
    cpu: Duration,
    max_rss_kib: u64,
    /// `coldstart-trace` lines of its output: (ms since `main` began, step).
    trace: Vec<(f64, String)>,
}

pub fn run(repo_root: &Path, args: &[String]) -> Result<ExitCode> {
    let args = Args::parse_from(
        std::iter::once("cargo xtask bench coldstart".to_owned()).chain(args.iter().cloned()),
    );
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let functions = if args.functions.is_empty() {
        PROBES
            .iter()
            .map(|(name, _, _)| (*name).to_owned())
            .filter(|name| repo_root.join("functions").join(name).is_dir())
            .collect()
    } else {
        args.functions.clone()
    };
    for name in &functions {
        probe(name)?;
    }

    let work = std::env::temp_dir().join(format!("xtask-coldstart-{}", std::process::id()));
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let outcome = measure_all(repo_root, &args, &functions, &work);
    let _ = fs::remove_dir_all(&work);
    outcome
}

fn measure_all(
    repo_root: &Path,
    args: &Args,
    functions: &[String],
    work: &Path,
) -> Result<ExitCode> {
    let built = build(repo_root, functions)?;
    let zip = zip_available();
    let mut subjects = Vec::new();
    let mut add = |label: String, function: &str, path: PathBuf| -> Result<()> {
        let binary_bytes = fs::metadata(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        let zip_bytes = if zip {
            Some(zipped_size(&path, work).with_context(|| format!("zipping {label}"))?)
        } else {
            None
        };
        subjects.push(Subject {
            label,
            function: function.to_owned(),
            path,
            binary_bytes,
            zip_bytes,
            samples: Vec::new(),
            failure: None,
            auth_samples: Vec::new(),
            auth_failure: None,
        });
        Ok(())
    };
    add(FLOOR.to_owned(), FLOOR, built[FLOOR].clone())?;
    for name in functions {
        if let Some(dir) = &args.baseline {
            let path = dir.join(name);
            if is_executable(&path) {
                add(format!("baseline/{name}"), name, path)?;
            }
        }
        add(name.clone(), name, built[name].clone())?;
    }
    // Baseline binaries of functions not selected above are measured too (every file of DIR).
    if let Some(dir) = &args.baseline {
        let mut extra = Vec::new();
        for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_executable(&entry.path()) && !functions.contains(&name) {
                extra.push(name);
            }
        }
        extra.sort();
        for name in extra {
            if name != FLOOR {
                probe(&name).with_context(|| format!("{} in --baseline", name))?;
            }
            add(format!("baseline/{name}"), &name, dir.join(&name))?;
        }
    }

    let platform = if args.no_auth {
        None
    } else {
        Some(Platform::start(repo_root, work)?)
    };

    let timeout = Duration::from_secs(args.timeout);
    let load_before = load_average();
    eprintln!(
        "xtask: cold start: {} binaries, 1 warm-up + {} runs each, interleaved; load average before: {load_before}",
        subjects.len(),
        args.runs,
    );
    for round in 0..=args.runs {
        for subject in subjects.iter_mut().filter(|s| s.failure.is_none()) {
            let mut unauthenticated = Probe::unauthenticated(&subject.function)?;
            if args.trace {
                unauthenticated
                    .env
                    .push(("COLDSTART_TRACE".to_owned(), "1".to_owned()));
            }
            match run_once(subject, &unauthenticated, round, timeout, work) {
                // Round 0 warms the page cache and catches a binary that cannot start.
                Ok(sample) if round > 0 => subject.samples.push(sample),
                Ok(_) => {}
                Err(error) => subject.failure = Some(format!("{error:#}")),
            }
            let Some(platform) = &platform else { continue };
            if subject.auth_failure.is_some() {
                continue;
            }
            let Some(probe) = Probe::authenticated(&subject.function, platform) else {
                continue;
            };
            match run_once(subject, &probe, round, timeout, work) {
                Ok(sample) if round > 0 => subject.auth_samples.push(sample),
                Ok(_) => {}
                Err(error) => subject.auth_failure = Some(format!("{error:#}")),
            }
        }
    }
    if let Some(platform) = platform {
        platform.stop();
    }
    print_table(&subjects, args.runs);
    print_load(&load_before);
    // An old baseline binary may not know the platform's settings: its authenticated read is a figure
    // when it works, not a failure of the run.
    let failed = subjects
        .iter()
        .filter(|s| {
            s.failure.is_some() || (s.auth_failure.is_some() && !s.label.starts_with("baseline/"))
        })
        .count();
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The stand-ins and a local platform of its own (`coldstart-platform` in xtask's dev build), for
/// the authenticated reads.
struct Platform {
    standins: Option<StandIns>,
    helper: Group,
    /// The functions' settings: the stand-ins' endpoints, table, secret ids, Dfns, issuer.
    env: Vec<(String, String)>,
    client_token: String,
    operator_token: String,
}

impl Platform {
    fn start(repo_root: &Path, work: &Path) -> Result<Platform> {
        let (installed, _) = crate::standins::install(repo_root)?;
        let standins = StandIns::start(&installed)?;
        eprintln!("xtask: cold start: {}", standins.describe());
        let binary = work.join("xtask-dev");
        crate::schemathesis::build_dev_xtask(repo_root, &binary)?;
        let log_path = work.join("platform.log");
        let log = File::create(&log_path)?;
        let mut helper = Group::spawn(
            Command::new(&binary)
                .arg("coldstart-platform")
                .arg("--work-dir")
                .arg(work)
                .envs(standins.env())
                .env(
                    "RUST_LOG",
                    std::env::var("RUST_LOG").unwrap_or_else(|_| "error".to_owned()),
                )
                .current_dir(repo_root)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log),
            OnParentDeath::Die,
        )?;
        let file = work.join(PLATFORM_FILE);
        let deadline = Instant::now() + PLATFORM_TIMEOUT;
        while !file.is_file() {
            if helper.has_exited() || Instant::now() > deadline {
                helper.stop();
                bail!(
                    "the platform for the authenticated reads did not start; {}:\n{}",
                    log_path.display(),
                    fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
        let described: serde_json::Value = serde_json::from_slice(&fs::read(&file)?)
            .with_context(|| format!("reading {}", file.display()))?;
        let text = |key: &str| -> Result<String> {
            described[key]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("{key} missing from {}", file.display()))
        };
        let env = described["env"]
            .as_object()
            .context("env missing")?
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect();
        eprintln!(
            "xtask: cold start: platform up ({CLIENT_SUBJECT}'s account open), issuer {}",
            described["env"]["AUTH_ISSUER"]
        );
        Ok(Platform {
            client_token: text("clientToken")?,
            operator_token: text("operatorToken")?,
            standins: Some(standins),
            helper,
            env,
        })
    }

    fn stop(mut self) {
        self.helper.stop();
        if let Some(standins) = self.standins.take() {
            standins.stop();
        }
    }
}

/// `coldstart-platform --work-dir DIR` (xtask's dev build, the stand-ins' environment set): the
/// Dfns emulator and a local stack of its own (as `cargo xtask schemathesis` starts it), the
/// client's account opened, then `DIR/platform.json` written (the functions' settings and the two
/// tokens); serves until it is stopped.
#[cfg(feature = "dev")]
pub fn run_platform(repo_root: &Path, work: &Path) -> Result<ExitCode> {
    use crate::stack::{self, Purpose};

    if std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_none() {
        bail!("the stand-ins' environment is missing: run `cargo xtask bench coldstart`");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("building the async runtime")?;
    let local = runtime
        .block_on(stack::start(repo_root, Purpose::Check))
        .context("starting the platform")?;
    runtime
        .block_on(stack::open_account(
            &reqwest::Client::new(),
            &local.stack,
            CLIENT_SUBJECT,
        ))
        .context("opening the client's account")?;
    let info = &local.stack.info;
    let mut env = serde_json::Map::new();
    for (key, value) in [
        ("TABLE_NAME", local.table.clone()),
        (
            "DFNS_SIGNING_SECRET_ID",
            crate::dev::SIGNING_SECRET_ID.to_owned(),
        ),
        ("DFNS_READ_SECRET_ID", crate::dev::READ_SECRET_ID.to_owned()),
        (
            "DFNS_WEBHOOK_SECRET_ID",
            crate::dev::WEBHOOK_SECRET_ID.to_owned(),
        ),
        ("DFNS_BASE_URL", local.emulator.base_url()),
        ("AUTH_ISSUER", info.issuer.clone()),
        ("AUTH_AUDIENCE", info.audience.clone()),
        ("AUTH_ROLE_CLAIM", info.role_claim.clone()),
        ("AUTH_OPERATOR_ROLE", info.operator_role.clone()),
    ] {
        env.insert(key.to_owned(), value.into());
    }
    // The stand-ins' endpoints and credentials, as this process has them.
    for key in [
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        "AWS_ENDPOINT_URL_EVENTBRIDGE",
        "AWS_ENDPOINT_URL_SQS",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "PLATFORM_NETWORKS",
    ] {
        if let Ok(value) = std::env::var(key) {
            env.insert(key.to_owned(), value.into());
        }
    }
    let described = serde_json::json!({
        "env": env,
        "clientToken": local.stack.token(CLIENT_SUBJECT),
        "operatorToken": local.stack.operator_token(OPERATOR_SUBJECT),
    });
    // Written whole, then renamed: the parent never reads half a file.
    let partial = work.join(format!("{PLATFORM_FILE}.partial"));
    fs::write(&partial, serde_json::to_vec_pretty(&described)?)?;
    fs::rename(&partial, work.join(PLATFORM_FILE))?;
    runtime.block_on(std::future::pending::<()>());
    Ok(ExitCode::SUCCESS)
}

/// A regular file with an execute bit (a note beside the binaries is not one).
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The route a function is probed with.
fn probe(function: &str) -> Result<(&'static str, &'static str)> {
    if function == FLOOR {
        return Ok(("GET", "/v1/account"));
    }
    match PROBES.iter().find(|(name, _, _)| *name == function) {
        Some((_, method, path)) => Ok((method, path)),
        None => bail!(
            "no unauthenticated route known for `{function}` (HTTP functions: {})",
            PROBES
                .iter()
                .map(|(name, _, _)| *name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `cargo build --release` of the floor and `functions`; the path of each binary by name.
fn build(repo_root: &Path, functions: &[String]) -> Result<BTreeMap<String, PathBuf>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .current_dir(repo_root)
        .args([
            "build",
            "--release",
            "--message-format=json-render-diagnostics",
        ])
        .args(["-p", FLOOR]);
    for name in functions {
        command.args(["-p", name]);
    }
    eprintln!(
        "xtask: cargo build --release -p {FLOOR} -p {}",
        functions.join(" -p ")
    );
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo build")?;
    if !output.status.success() {
        bail!("cargo build --release failed ({})", output.status);
    }
    let mut built = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        if let (Some(name), Some(executable)) = (
            message["target"]["name"].as_str(),
            message["executable"].as_str(),
        ) {
            built.insert(name.to_owned(), PathBuf::from(executable));
        }
    }
    for name in functions.iter().map(String::as_str).chain([FLOOR]) {
        if !built.contains_key(name) {
            bail!("cargo built no binary named `{name}`");
        }
    }
    Ok(built)
}

fn zip_available() -> bool {
    let found = Command::new("zip")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        eprintln!("xtask: no `zip` on PATH: zip sizes are left out");
    }
    found
}

/// The size of `binary` zipped as `bootstrap`, the artifact Lambda's `provided` runtimes take.
fn zipped_size(binary: &Path, work: &Path) -> Result<u64> {
    let dir = work.join("zip");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    fs::copy(binary, dir.join("bootstrap"))?;
    let status = Command::new("zip")
        .current_dir(&dir)
        .args(["-q", "-X", "bootstrap.zip", "bootstrap"])
        .status()
        .context("running zip")?;
    if !status.success() {
        bail!("zip failed ({status})");
    }
    let size = fs::metadata(dir.join("bootstrap.zip"))?.len();
    fs::remove_dir_all(&dir)?;
    Ok(size)
}

/// One event to answer, and the environment it is answered in.
struct Probe {
    method: &'static str,
    path: &'static str,
    /// `Authorization: Bearer` of the event; none: the function must answer 401.
    bearer: Option<String>,
    /// Settings over [`environment`]'s (the platform's, for an authenticated read; the trace's).
    env: Vec<(String, String)>,
}

impl Probe {
    /// The route without a token, every AWS endpoint closed.
    fn unauthenticated(function: &str) -> Result<Probe> {
        let (method, path) = probe(function)?;
        Ok(Probe {
            method,
            path,
            bearer: None,
            env: Vec::new(),
        })
    }

    /// The function's read with a token, against the platform (none for the floor).
    fn authenticated(function: &str, platform: &Platform) -> Option<Probe> {
        let (_, method, path, operator) = READS.iter().find(|(name, ..)| *name == function)?;
        let token = if *operator {
            &platform.operator_token
        } else {
            &platform.client_token
        };
        Some(Probe {
            method,
            path,
            bearer: Some(token.clone()),
            env: platform.env.clone(),
        })
    }
}

/// One fresh process of `subject` answering one event.
fn run_once(
    subject: &Subject,
    probe: &Probe,
    round: usize,
    timeout: Duration,
    work: &Path,
) -> Result<Sample> {
    let authenticated = probe.bearer.is_some();
    let request_id = format!(
        "coldstart-{round}-{}{}",
        subject.function.replace('/', "-"),
        if authenticated { "-auth" } else { "" }
    );
    let event = event(
        probe.method,
        probe.path,
        probe.bearer.as_deref(),
        &request_id,
    );
    let stub = Stub::start(event, request_id)?;
    // Nothing listens here: any AWS, Dfns or JWKS request is refused at once.
    let closed = closed_port()?;
    let log_path = work.join(format!(
        "{}{}.log",
        subject.label.replace('/', "-"),
        if authenticated { "-auth" } else { "" }
    ));
    let log = File::create(&log_path)?;

    let mut command = Command::new(&subject.path);
    command
        .env_clear()
        .envs(environment(&subject.function, stub.port, closed))
        .envs(probe.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(work)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let started = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("starting {}", subject.path.display()))?;
    let mut child = Reaper::new(child.id());

    let outcome = stub.wait(started + timeout, || child.has_exited());
    // Read while it waits in its next poll. Not wait4's ru_maxrss: a child started with vfork
    // (as std does) carries the parent's peak over exec into it.
    let peak_rss = peak_rss_kib(child.pid);
    let usage = child.kill_and_reap();
    let log_tail = || {
        let text = fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    };
    let record =
        outcome.map_err(|reason| anyhow::anyhow!("{reason}; its output:\n{}", log_tail()))?;
    let (Some(next_at), Some(response_at)) = (record.next_at, record.response_at) else {
        bail!("no response recorded; its output:\n{}", log_tail());
    };
    let expected = if authenticated {
        record.status.is_some_and(|s| (200..300).contains(&s))
    } else {
        record.status == Some(401)
    };
    if !expected {
        bail!(
            "answered {} instead of {} ({}); its output:\n{}",
            record
                .status
                .map_or_else(|| "without a status".to_owned(), |s| s.to_string()),
            if authenticated { "2xx" } else { "401" },
            if authenticated {
                "the read of an open account with a valid token"
            } else {
                "the run must not reach AWS or Dfns"
            },
            log_tail()
        );
    }
    let usage = usage?;
    let peak_rss = peak_rss.context("reading VmHWM from /proc/<pid>/status")?;
    let trace = fs::read_to_string(&log_path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (at, step) = line.strip_prefix("coldstart-trace ")?.split_once(' ')?;
            Some((at.parse().ok()?, step.to_owned()))
        })
        .collect();
    Ok(Sample {
        init: next_at.saturating_duration_since(started),
        first_response: response_at.saturating_duration_since(started),
        cpu: usage.cpu,
        max_rss_kib: peak_rss,
        trace,
    })
}

/// The environment Lambda gives a function, with settings that pass init and lead nowhere.
fn environment(function: &str, runtime_port: u16, closed_port: u16) -> Vec<(&'static str, String)> {
    let nowhere = format!("http://127.0.0.1:{closed_port}");
    let mut env = vec![
        (
            "AWS_LAMBDA_RUNTIME_API",
            format!("127.0.0.1:{runtime_port}"),
        ),
        ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2025/01/01/[$LATEST]coldstart".to_owned(),
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("LAMBDA_TASK_ROOT", "/var/task".to_owned()),
        ("TZ", ":UTC".to_owned()),
        ("LANG", "en_US.UTF-8".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "coldstart".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "coldstart".to_owned()),
        ("AWS_SESSION_TOKEN", "coldstart".to_owned()),
        ("AWS_ENDPOINT_URL", nowhere.clone()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        // No developer profile can change what the SDK does at init.
        ("AWS_CONFIG_FILE", "/nonexistent/aws/config".to_owned()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws/credentials".to_owned(),
        ),
        ("TABLE_NAME", "coldstart".to_owned()),
        // Every function finds the ids of the secrets it holds (none is read at init).
        ("DFNS_SIGNING_SECRET_ID", "coldstart-signing".to_owned()),
        ("DFNS_READ_SECRET_ID", "coldstart-read-only".to_owned()),
        ("DFNS_WEBHOOK_SECRET_ID", "coldstart-webhook".to_owned()),
        ("DFNS_BASE_URL", nowhere.clone()),
        ("AUTH_ISSUER", format!("{nowhere}/issuer")),
        ("AUTH_AUDIENCE", "coldstart".to_owned()),
        // Trading, operator and order-execution refuse to start without a registry.
        ("EXCHANGES", "dev".to_owned()),
    ];
    // The receiver refuses to start without its queue and builds the SQS client at init, as
    // deployed; the template gives the queue to no other HTTP function.
    if function == "dfns-webhook" {
        env.push((
            "WEBHOOK_QUEUE_URL",
            format!("{nowhere}/000000000000/coldstart-webhooks.fifo"),
        ));
    }
    env
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// An API Gateway HTTP API (payload 2.0) event for `method path`, with `bearer` as its
/// `Authorization` if given.
fn event(method: &str, path: &str, bearer: Option<&str>, request_id: &str) -> Vec<u8> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let body = (method == "POST").then_some("{}");
    let mut headers = serde_json::json!({
        "accept": "application/json",
        "host": "api.example.com",
        "user-agent": "xtask-coldstart",
        "x-forwarded-for": "127.0.0.1",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    });
    if body.is_some() {
        headers["content-type"] = "application/json".into();
        headers["content-length"] = "2".into();
    }
    if let Some(token) = bearer {
        headers["authorization"] = format!("Bearer {token}").into();
    }
    serde_json::json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "coldstart",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "xtask-coldstart",
            },
            "requestId": request_id,
            "routeKey": format!("{method} {path}"),
            "stage": "$default",
            "time": "01/Jan/2025:00:00:00 +0000",
            "timeEpoch": now,
        },
        "body": body,
        "isBase64Encoded": false,
    })
    .to_string()
    .into_bytes()
}

/// What the stub saw of one process.
#[derive(Default)]
struct Record {
    /// When the first `next` arrived (the event was served in answer).
    next_at: Option<Instant>,
    response_at: Option<Instant>,
    /// `statusCode` of the function's answer.
    status: Option<u16>,
    /// An `/error` or `/init/error` report, when that is what came.
    error: Option<String>,
}

struct Shared {
    record: Mutex<Record>,
    changed: Condvar,
    closing: AtomicBool,
}

/// The Lambda Runtime API for one process: its first `next` gets the event, later ones hang until
/// the process goes away.
struct Stub {
    port: u16,
    shared: Arc<Shared>,
}

impl Stub {
    fn start(event: Vec<u8>, request_id: String) -> Result<Stub> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the Runtime API stub")?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            record: Mutex::new(Record::default()),
            changed: Condvar::new(),
            closing: AtomicBool::new(false),
        });
        let invocation = Arc::new(Invocation { event, request_id });
        let accepting = Arc::clone(&shared);
        thread::Builder::new()
            .name("coldstart-stub".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if accepting.closing.load(Ordering::Acquire) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let shared = Arc::clone(&accepting);
                    let invocation = Arc::clone(&invocation);
                    let _ = thread::Builder::new()
                        .name("coldstart-conn".into())
                        .spawn(move || serve_connection(stream, &shared, &invocation));
                }
            })
            .context("starting the Runtime API stub")?;
        Ok(Stub { port, shared })
    }

    /// Waits for the response (or an error report) until `deadline`, or until `exited` says the
    /// process is gone. The record, or why there is none.
    fn wait(&self, deadline: Instant, mut exited: impl FnMut() -> bool) -> Result<Record, String> {
        let mut record = lock(&self.shared.record);
        loop {
            if let Some(error) = &record.error {
                return Err(format!("reported an error to the Runtime API: {error}"));
            }
            if record.response_at.is_some() {
                return Ok(std::mem::take(&mut *record));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err("no response before the timeout".to_owned());
            }
            if exited() {
                return Err("exited before answering".to_owned());
            }
            let slice = (deadline - now).min(Duration::from_millis(20));
            record = self
                .shared
                .changed
                .wait_timeout(record, slice)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        // Wake the accept loop so it sees `closing` and ends (with the listener).
        self.shared.closing.store(true, Ordering::Release);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

struct Invocation {
    event: Vec<u8>,
    request_id: String,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn serve_connection(stream: TcpStream, shared: &Shared, invocation: &Invocation) {
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Ok(Some((method, path, body))) = read_request(&mut reader) {
        let now = Instant::now();
        let runtime = "/2018-06-01/runtime";
        let reply = match (method.as_str(), path.as_str()) {
            ("GET", p) if p == format!("{runtime}/invocation/next") => {
                let mut record = lock(&shared.record);
                if record.next_at.is_some() {
                    drop(record);
                    // Already invoked once: hold this poll until the process is killed.
                    let mut sink = [0u8; 1024];
                    while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
                    return;
                }
                record.next_at = Some(now);
                drop(record);
                next_reply(invocation)
            }
            ("POST", p) if p.starts_with(&format!("{runtime}/invocation/")) => {
                let mut record = lock(&shared.record);
                if p.ends_with("/response") {
                    record.response_at = Some(now);
                    record.status = serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|answer| answer["statusCode"].as_u64())
                        .and_then(|status| u16::try_from(status).ok());
                } else {
                    record.error = Some(String::from_utf8_lossy(&body).into_owned());
                }
                shared.changed.notify_all();
                accepted()
            }
            ("POST", p) if p == format!("{runtime}/init/error") => {
                let mut record = lock(&shared.record);
                record.error = Some(format!("init: {}", String::from_utf8_lossy(&body)));
                shared.changed.notify_all();
                accepted()
            }
            _ => b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec(),
        };
        if writer
            .write_all(&reply)
            .and_then(|()| writer.flush())
            .is_err()
        {
            return;
        }
    }
}

fn next_reply(invocation: &Invocation) -> Vec<u8> {
    let deadline_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        + 30_000;
    let mut reply = format!(
        "HTTP/1.1 200 OK\r\n\
         content-type: application/json\r\n\
         content-length: {}\r\n\
         lambda-runtime-aws-request-id: {}\r\n\
         lambda-runtime-deadline-ms: {deadline_ms}\r\n\
         lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:coldstart\r\n\
         lambda-runtime-trace-id: Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0\r\n\
         \r\n",
        invocation.event.len(),
        invocation.request_id,
    )
    .into_bytes();
    reply.extend_from_slice(&invocation.event);
    reply
}

fn accepted() -> Vec<u8> {
    let body = r#"{"status":"OK"}"#;
    format!(
        "HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One HTTP/1.1 request: method, path, body (`content-length` or chunked). `None` at end of stream.
fn read_request(reader: &mut impl BufRead) -> io::Result<Option<(String, String, Vec<u8>)>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut content_length = 0usize;
    let mut chunked = false;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            return Ok(None);
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            let size_hex = size_line.trim().split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(size_hex, 16)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    let mut trailer = String::new();
                    if reader.read_line(&mut trailer)? == 0 || trailer.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf)?;
        }
    } else {
        body.resize(content_length, 0);
        reader.read_exact(&mut body)?;
    }
    Ok(Some((method, path, body)))
}

/// A spawned process, reaped with `wait4` so its resource usage can be read.
struct Reaper {
    pid: libc::pid_t,
    reaped: bool,
}

struct Usage {
    cpu: Duration,
}

impl Reaper {
    fn new(pid: u32) -> Reaper {
        Reaper {
            pid: pid as libc::pid_t,
            reaped: false,
        }
    }

    /// True once the process has exited; leaves it unreaped.
    fn has_exited(&self) -> bool {
        // SAFETY: waitid only writes into `info`, zero-initialised plain data.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
            if libc::waitid(libc::P_PID, self.pid as libc::id_t, &mut info, flags) != 0 {
                return true;
            }
            info.si_pid() != 0
        }
    }

    /// SIGKILL (a no-op if it already exited), then its CPU time.
    fn kill_and_reap(&mut self) -> Result<Usage> {
        self.reaped = true;
        // SAFETY: plain syscalls on our own, not yet reaped child; `usage` is plain data.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            let mut status = 0;
            let mut usage: libc::rusage = std::mem::zeroed();
            if libc::wait4(self.pid, &mut status, 0, &mut usage) != self.pid {
                return Err(io::Error::last_os_error()).context("wait4");
            }
            let time = |t: libc::timeval| {
                Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
            };
            Ok(Usage {
                cpu: time(usage.ru_utime) + time(usage.ru_stime),
            })
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.kill_and_reap();
        }
    }
}

/// The process's peak resident set size so far (`VmHWM`), in KiB.
fn peak_rss_kib(pid: libc::pid_t) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The load during the runs, and a warning when the machine was too busy for small differences.
fn print_load(before: &str) {
    let after = load_average();
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    println!("load average before: {before}; after: {after}; {cpus} CPUs");
    let busiest = [before, after.as_str()]
        .iter()
        .filter_map(|load| load.split_whitespace().next()?.parse::<f64>().ok())
        .fold(0.0, f64::max);
    if busiest >= cpus as f64 {
        println!(
            "the machine was busy (load {busiest:.1} on {cpus} CPUs): differences of a few percent are \
             within the noise; rerun when it is quieter, or with more --runs"
        );
    }
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn median_min_max(mut values: Vec<Duration>) -> (Duration, Duration, Duration) {
    values.sort();
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2
    };
    (median, values[0], values[n - 1])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn print_table(subjects: &[Subject], runs: usize) {
    let floor_median = subjects
        .iter()
        .find(|s| s.label == FLOOR && !s.samples.is_empty())
        .map(|s| median_min_max(s.samples.iter().map(|x| x.first_response).collect()).0);
    println!();
    println!(
        "cold start, release builds, {runs} fresh processes each (median, min–max); first response = 401 without a bearer token; \
         auth read = first response of another fresh process to a read with a token, against the stand-ins"
    );
    println!(
        "{:<24} {:>20} {:>22} {:>7} {:>22} {:>8} {:>9} {:>8} {:>8}",
        "binary",
        "init ms",
        "first response ms",
        "×floor",
        "auth read ms",
        "CPU ms",
        "RSS MiB",
        "bin MiB",
        "zip MiB"
    );
    for subject in subjects {
        let zip = subject
            .zip_bytes
            .map_or_else(|| "—".to_owned(), |z| format!("{:.2}", mib(z)));
        if subject.samples.is_empty() {
            println!(
                "{:<24} {:>20} {:>22} {:>7} {:>22} {:>8} {:>9} {:>8.2} {:>8}",
                subject.label,
                "failed",
                "—",
                "—",
                "—",
                "—",
                "—",
                mib(subject.binary_bytes),
                zip
            );
            continue;
        }
        let (init, init_min, init_max) =
            median_min_max(subject.samples.iter().map(|s| s.init).collect());
        let (first, first_min, first_max) =
            median_min_max(subject.samples.iter().map(|s| s.first_response).collect());
        let (cpu, _, _) = median_min_max(subject.samples.iter().map(|s| s.cpu).collect());
        let rss = subject
            .samples
            .iter()
            .chain(&subject.auth_samples)
            .map(|s| s.max_rss_kib)
            .max()
            .unwrap_or(0);
        let auth = if subject.auth_samples.is_empty() {
            if subject.auth_failure.is_some() {
                "failed".to_owned()
            } else {
                "—".to_owned()
            }
        } else {
            let (median, min, max) = median_min_max(
                subject
                    .auth_samples
                    .iter()
                    .map(|s| s.first_response)
                    .collect(),
            );
            format!("{:.1} ({:.1}–{:.1})", ms(median), ms(min), ms(max))
        };
        let ratio = floor_median.map_or_else(
            || "—".to_owned(),
            |floor| format!("{:.2}", first.as_secs_f64() / floor.as_secs_f64()),
        );
        println!(
            "{:<24} {:>20} {:>22} {:>7} {:>22} {:>8.1} {:>9.1} {:>8.2} {:>8}",
            subject.label,
            format!("{:.1} ({:.1}–{:.1})", ms(init), ms(init_min), ms(init_max)),
            format!(
                "{:.1} ({:.1}–{:.1})",
                ms(first),
                ms(first_min),
                ms(first_max)
            ),
            ratio,
            auth,
            ms(cpu),
            rss as f64 / 1024.0,
            mib(subject.binary_bytes),
            zip
        );
    }
    println!(
        "RSS is the highest peak over the runs (both kinds); CPU is user + system time of the 401 runs, median."
    );
    if subjects.iter().any(|s| !s.auth_samples.is_empty()) {
        let reads: Vec<String> = READS
            .iter()
            .filter(|(name, ..)| subjects.iter().any(|s| s.function == *name))
            .map(|(name, method, path, operator)| {
                format!(
                    "{name} {method} {path} ({})",
                    if *operator { "operator" } else { "client" }
                )
            })
            .collect();
        println!("auth reads: {}", reads.join(", "));
    }

    // Before → after, for each function measured both ways. The per-round ratio pairs the two
    // processes started back to back in the same round, so a change of load between rounds cancels.
    let measured = |label: &str| {
        subjects
            .iter()
            .find(|s| s.label == label && !s.samples.is_empty())
    };
    let percent = |before: Duration, after: Duration| {
        (after.as_secs_f64() / before.as_secs_f64() - 1.0) * 100.0
    };
    for before in subjects.iter().filter(|s| s.label.starts_with("baseline/")) {
        let name = &before.label["baseline/".len()..];
        let (Some(before), Some(after)) = (measured(&before.label), measured(name)) else {
            continue;
        };
        let median_of = |subject: &Subject, field: fn(&Sample) -> Duration| {
            median_min_max(subject.samples.iter().map(field).collect()).0
        };
        let (first_before, first_after) = (
            median_of(before, |s| s.first_response),
            median_of(after, |s| s.first_response),
        );
        let (cpu_before, cpu_after) = (median_of(before, |s| s.cpu), median_of(after, |s| s.cpu));
        let mut ratios: Vec<f64> = before
            .samples
            .iter()
            .zip(&after.samples)
            .map(|(b, a)| a.first_response.as_secs_f64() / b.first_response.as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        let quartile = |q: usize| ratios[(ratios.len() - 1) * q / 4];
        println!(
            "{name}: first response {:.1} → {:.1} ms ({:+.1}%), per-round ratio {:.2} (quartiles {:.2}–{:.2}); CPU {:.1} → {:.1} ms ({:+.1}%)",
            ms(first_before),
            ms(first_after),
            percent(first_before, first_after),
            quartile(2),
            quartile(1),
            quartile(3),
            ms(cpu_before),
            ms(cpu_after),
            percent(cpu_before, cpu_after),
        );
    }
    print_traces(subjects);
    for subject in subjects.iter().filter(|s| s.failure.is_some()) {
        println!(
            "{}: failed: {}",
            subject.label,
            subject.failure.as_deref().unwrap_or_default()
        );
    }
    for subject in subjects.iter().filter(|s| s.auth_failure.is_some()) {
        println!(
            "{}: authenticated read failed: {}",
            subject.label,
            subject.auth_failure.as_deref().unwrap_or_default()
        );
    }
}

/// Per binary that printed an init trace: each step's median time since `main` began, and the
/// median time the step itself took (since the previous step), over the runs.
fn print_traces(subjects: &[Subject]) {
    for subject in subjects {
        let Some(first) = subject.samples.first().filter(|s| !s.trace.is_empty()) else {
            continue;
        };
        println!(
            "init trace of {} (ms, median over the runs):",
            subject.label
        );
        for (index, (_, step)) in first.trace.iter().enumerate() {
            let mut at = Vec::new();
            let mut took = Vec::new();
            for sample in &subject.samples {
                if let Some((t, _)) = sample.trace.get(index) {
                    at.push(*t);
                    let previous = index
                        .checked_sub(1)
                        .and_then(|i| sample.trace.get(i))
                        .map_or(0.0, |(t, _)| *t);
                    took.push(t - previous);
                }
            }
            let median = |mut values: Vec<f64>| {
                values.sort_by(f64::total_cmp);
                values.get(values.len() / 2).copied().unwrap_or(0.0)
            };
            println!(
                "  {:>8.3} at  {:>8.3} step  {step}",
                median(at),
                median(took)
            );
        }
    }
}
