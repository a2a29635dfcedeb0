//! A DynamoDB Local of the test's own, on disk, so it can be killed and started again without
//! losing its data: the stand-in xtask starts runs in memory and is shared by every test.
//!
//! It runs AWS's jar from `DYNAMODB_LOCAL_DIR` (exported by `cargo xtask test` and `cargo xtask
//! exec`) on the machine's Java, with `-dbPath` in a fresh temporary directory and `-sharedDb`, on
//! a free loopback port. [`DynamoDbLocal::restart`] kills it (SIGKILL, as a crash) and starts it
//! again on the same port and path. Dropping it kills it and removes the directory; if the test
//! process itself is killed, xtask stops the process group it ran the tests in, this JVM with it.

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long a (re)start may take before the test gives up: a JVM on a busy 2-core machine is slow.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// One running DynamoDB Local with its data on disk.
pub struct DynamoDbLocal {
    jar_dir: PathBuf,
    data_dir: PathBuf,
    port: u16,
    child: Option<Child>,
    /// Restarts so far.
    pub restarts: u32,
    /// How long the last start took until the engine answered.
    pub last_start: Duration,
    /// When the last restart killed it and when it answered again (wall clock), for reports.
    pub last_outage: Option<(time::OffsetDateTime, time::OffsetDateTime)>,
}

impl DynamoDbLocal {
    /// Starts one on a free port and waits until it answers.
    pub async fn start() -> Result<Self> {
        let jar_dir = PathBuf::from(std::env::var("DYNAMODB_LOCAL_DIR").context(
            "DYNAMODB_LOCAL_DIR is not set: run through `cargo xtask test` or `cargo xtask exec`",
        )?);
        if !jar_dir.join("DynamoDBLocal.jar").is_file() {
            bail!("no DynamoDBLocal.jar in {}", jar_dir.display());
        }
        let data_dir = std::env::temp_dir().join(format!(
            "e2e-dynamodb-{}",
            ulid::Ulid::new().to_string().to_lowercase()
        ));
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .context("finding a free port")?
            .port();
        let mut local = Self {
            jar_dir,
            data_dir,
            port,
            child: None,
            restarts: 0,
            last_start: Duration::ZERO,
            last_outage: None,
        };
        local.launch().await?;
        Ok(local)
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_DYNAMODB`-style overrides.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills it as a crash would (SIGKILL: requests in flight get a reset, nothing is flushed
    /// beyond what was committed), leaves it down for `down_for`, then starts it again on the
    /// same port and data, and waits until it answers. Returns how long it was unreachable.
    pub async fn restart(&mut self, down_for: Duration) -> Result<Duration> {
        let started = Instant::now();
        let killed_at = time::OffsetDateTime::now_utc();
        self.kill();
        tokio::time::sleep(down_for).await;
        self.launch().await?;
        self.restarts += 1;
        self.last_outage = Some((killed_at, time::OffsetDateTime::now_utc()));
        Ok(started.elapsed())
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn launch(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.join("dynamodb-local.log"))
            .context("opening the log")?;
        let started = Instant::now();
        let child = Command::new("java")
            .arg(format!(
                "-Djava.library.path={}",
                self.jar_dir.join("DynamoDBLocal_lib").display()
            ))
            .arg("-jar")
            .arg(self.jar_dir.join("DynamoDBLocal.jar"))
            .arg("-dbPath")
            .arg(&self.data_dir)
            .args(["-sharedDb", "-disableTelemetry"])
            .args(["-port", &self.port.to_string()])
            // It writes its metadata file into its working directory.
            .current_dir(&self.data_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("duplicating the log handle")?)
            .stderr(log)
            .spawn()
            .context("starting DynamoDB Local (java on PATH?)")?;
        self.child = Some(child);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .context("an HTTP client")?;
        loop {
            if self.ready(&http).await {
                self.last_start = started.elapsed();
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "DynamoDB Local exited ({status}) before it was ready; log:\n{}",
                    self.log_tail()
                );
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "DynamoDB Local not ready after {}s; log:\n{}",
                    READY_TIMEOUT.as_secs(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// ListTables answered 200: the storage engine is up, not just the port.
    async fn ready(&self, http: &reqwest::Client) -> bool {
        let credential = "AWS4-HMAC-SHA256 Credential=local/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0";
        http.post(self.endpoint())
            .header("X-Amz-Target", "DynamoDB_20120810.ListTables")
            .header("Content-Type", "application/x-amz-json-1.0")
            .header("Authorization", credential)
            .body("{}")
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    fn log_tail(&self) -> String {
        let text =
            std::fs::read_to_string(self.data_dir.join("dynamodb-local.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for DynamoDbLocal {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
