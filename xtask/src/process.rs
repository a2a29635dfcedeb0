//! Child processes that must never outlive xtask.
//!
//! Every long-lived child (the stand-ins, and each cargo step of `test`) is started as the leader of
//! its own process group and registered here. Stopping signals the whole group, so a JVM, a Python
//! server or a test binary started by cargo goes with its leader. Three exit paths reach this code:
//! normal return and panic unwinding (through [`Group`]'s `Drop`), and SIGINT/SIGTERM/SIGHUP (through
//! the handler installed by [`install_interrupt_handler`], which stops every registered group and
//! exits). The stand-ins additionally get `PR_SET_PDEATHSIG`, so even a `kill -9` of xtask takes them
//! down with it.

use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long a group gets to exit after SIGTERM before it is killed.
const GRACE: Duration = Duration::from_secs(3);

/// Exit status after an interrupt, as a shell reports a process ended by SIGINT.
const INTERRUPTED_EXIT_CODE: i32 = 130;

struct Registry {
    /// Process group ids still to be stopped.
    groups: Vec<i32>,
    /// Set once the interrupt handler runs: no new group may start after it.
    interrupted: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    groups: Vec::new(),
    interrupted: false,
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    // A panic while holding the lock leaves the list intact; keep using it so cleanup still happens.
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Removes `pgid` from the registry; true if the caller now owns stopping it.
fn unregister(pgid: i32) -> bool {
    let mut registry = registry();
    match registry.groups.iter().position(|&g| g == pgid) {
        Some(index) => {
            registry.groups.swap_remove(index);
            true
        }
        None => false,
    }
}

/// Stops every registered group and exits with 130 on SIGINT, SIGTERM or SIGHUP.
pub fn install_interrupt_handler() -> Result<()> {
    ctrlc::set_handler(|| {
        let groups = {
            let mut registry = registry();
            registry.interrupted = true;
            std::mem::take(&mut registry.groups)
        };
        for &pgid in &groups {
            signal_group(pgid, libc::SIGTERM);
        }
        let deadline = Instant::now() + GRACE;
        while Instant::now() < deadline && groups.iter().any(|&pgid| !has_exited(pgid)) {
            thread::sleep(Duration::from_millis(50));
        }
        for &pgid in &groups {
            signal_group(pgid, libc::SIGKILL);
        }
        // Never eprintln! here: with `| tee` the reader died with the same Ctrl-C, and a panic on
        // the broken pipe would end this thread before the exit below.
        let _ = writeln!(
            io::stderr(),
            "\nxtask: interrupted, stopped {} process group(s)",
            groups.len()
        );
        std::process::exit(INTERRUPTED_EXIT_CODE);
    })
    .context("installing the Ctrl-C handler")
}

/// What the child should do if xtask itself dies without running any cleanup (SIGKILL).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OnParentDeath {
    /// The kernel kills the child (`PR_SET_PDEATHSIG`). For servers that only serve xtask's run.
    Die,
    /// Nothing special; for short-lived steps such as `cargo test`.
    Continue,
}

/// A running process group led by a child of xtask; stopped (whole group) when dropped.
pub struct Group {
    child: Child,
    pgid: i32,
    stopped: bool,
}

impl Group {
    /// Starts `command` as the leader of a new process group and registers the group for cleanup.
    ///
    /// The death signal is tied to the spawning thread: call this from a thread that lives as long
    /// as the child should (xtask spawns from its main thread).
    pub fn spawn(command: &mut Command, on_parent_death: OnParentDeath) -> Result<Group> {
        command.process_group(0);
        if on_parent_death == OnParentDeath::Die {
            // SAFETY: prctl is async-signal-safe and touches only the calling (child) process.
            unsafe {
                command.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        // Hold the lock across spawn + register so the interrupt handler never misses a group.
        let mut registry = registry();
        if registry.interrupted {
            bail!("interrupted");
        }
        let program = command.get_program().to_string_lossy().into_owned();
        let child = command
            .spawn()
            .with_context(|| format!("starting `{program}`"))?;
        let pgid = i32::try_from(child.id()).context("process id out of range")?;
        registry.groups.push(pgid);
        Ok(Group {
            child,
            pgid,
            stopped: false,
        })
    }

    #[cfg(test)]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True once the leader has exited. It stays unreaped (its id reserved) until [`Group::stop`].
    pub fn has_exited(&self) -> bool {
        self.stopped || has_exited(self.pgid)
    }

    /// Waits for the leader to exit, then kills anything it left behind in its group.
    pub fn wait(mut self) -> Result<ExitStatus> {
        while !has_exited(self.pgid) {
            thread::sleep(Duration::from_millis(20));
        }
        self.stop().context("waiting for child")
    }

    /// SIGTERM to the group, up to [`GRACE`] for the leader to exit, then SIGKILL to the group.
    /// Returns the leader's exit status (None if it could not be collected). Never returns once
    /// the interrupt handler has taken the group over: the process is about to exit.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if self.stopped {
            return self.child.try_wait().ok().flatten();
        }
        self.stopped = true;
        if !unregister(self.pgid) {
            // The interrupt handler has taken this group over and exits the process within GRACE.
            // Carrying on would race it with misleading output ("exited unexpectedly", exit 1).
            loop {
                thread::park();
            }
        }
        if !has_exited(self.pgid) {
            signal_group(self.pgid, libc::SIGTERM);
            let deadline = Instant::now() + GRACE;
            while Instant::now() < deadline && !has_exited(self.pgid) {
                thread::sleep(Duration::from_millis(20));
            }
        }
        // The leader is not reaped yet, so its id cannot have been reused for another group.
        signal_group(self.pgid, libc::SIGKILL);
        self.child.wait().ok()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn signal_group(pgid: i32, signal: i32) {
    // SAFETY: plain syscall; a negative pid addresses the group. ESRCH (already gone) is fine.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// True once `pid` (a child of ours) has exited; leaves it unreaped.
fn has_exited(pid: i32) -> bool {
    // SAFETY: waitid only writes into `info`, which is zero-initialised plain data.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
        if libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) != 0 {
            // ECHILD: already reaped, so certainly exited.
            return true;
        }
        info.si_pid() != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: i32) -> bool {
        // SAFETY: signal 0 only checks existence.
        unsafe { libc::kill(pid, 0) == 0 }
    }

    fn zombie_or_gone(pid: i32) -> bool {
        let status = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Field 3 is the state; a reaped process has no /proc entry at all.
        status.is_empty() || status.split(' ').nth(2) == Some("Z")
    }

    #[test]
    fn stopping_a_group_kills_grandchildren_that_ignore_sigterm() {
        // The grandchild ignores SIGTERM, like a stubborn server would; only the group SIGKILL ends it.
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg("trap '' TERM; sleep 300 & echo $!; wait")
            .stdout(std::process::Stdio::piped());
        let mut group = Group::spawn(&mut command, OnParentDeath::Die).unwrap();
        let mut line = String::new();
        io::BufRead::read_line(
            &mut io::BufReader::new(group.child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let grandchild: i32 = line.trim().parse().unwrap();
        let leader = group.pid() as i32;
        assert!(alive(grandchild));

        drop(group);

        assert!(!alive(leader), "leader {leader} still running");
        // The grandchild was re-parented (to init or a subreaper), which reaps it eventually.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !zombie_or_gone(grandchild) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        assert!(
            zombie_or_gone(grandchild),
            "grandchild {grandchild} survived"
        );
        assert!(!registry().groups.contains(&leader));
    }

    #[test]
    fn wait_reports_the_exit_status_and_unregisters() {
        let group = Group::spawn(
            Command::new("sh").arg("-c").arg("exit 3"),
            OnParentDeath::Continue,
        )
        .unwrap();
        let leader = group.pid() as i32;
        let status = group.wait().unwrap();
        assert_eq!(status.code(), Some(3));
        assert!(!registry().groups.contains(&leader));
    }

    #[test]
    fn has_exited_tracks_the_leader_without_reaping_it() {
        let mut sleeper =
            Group::spawn(Command::new("sleep").arg("300"), OnParentDeath::Die).unwrap();
        assert!(!sleeper.has_exited());
        let status = sleeper.stop().unwrap();
        assert!(
            !status.success(),
            "sleep 300 cannot have finished on its own"
        );

        let quick = Group::spawn(&mut Command::new("true"), OnParentDeath::Die).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !quick.has_exited() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        assert!(quick.has_exited());
        // Exited but not reaped: the id still names a (zombie) process, so it cannot be reused.
        assert!(zombie_or_gone(quick.pid() as i32) && alive(quick.pid() as i32));
        assert!(quick.wait().unwrap().success());
    }
}
