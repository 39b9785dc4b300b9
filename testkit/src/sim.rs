//! A real `canton-sim serve` process for end-to-end tests.
//!
//! [`SimProcess`] spawns the workspace's `canton-sim` binary on free ports,
//! waits for its one JSON ready line on stdout and keeps it parsed, so tests
//! reach the node through the addresses it printed. It can be stopped
//! gracefully (state persisted), killed like a crashed node, and served again
//! on the same state directory; dropping it kills the process.
//!
//! The helpers panic on failure: a simulator that does not come up is a broken
//! test environment, and its stderr (kept in a file, shown in the panic) is the
//! best report.

use serde_json::Value;
use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long `serve` may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a SIGTERM may take to stop the server.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running (or stopped) `canton-sim serve` process. Dropping it kills the
/// process (SIGKILL) and removes the temporary directory it owns.
#[derive(Debug)]
pub struct SimProcess {
    child: Option<Child>,
    /// Holds the stderr log, and the state directory when the caller gave none.
    work: tempfile::TempDir,
    state_dir: PathBuf,
    serve_args: Vec<String>,
    ready: Value,
    ready_line: String,
}

impl SimProcess {
    /// `canton-sim serve` with its state in a new temporary directory, plus
    /// `args` (e.g. `["--clock", "virtual"]`); waits for the ready line.
    pub fn start(args: &[&str]) -> SimProcess {
        let work = tempdir();
        let state_dir = work.path().join("state");
        Self::spawn(work, state_dir, args)
    }

    /// Like [`start`](Self::start) with the state in `state_dir`, which the
    /// caller owns (to serve it again later, back it up, or inspect it).
    pub fn start_in(state_dir: &Path, args: &[&str]) -> SimProcess {
        Self::spawn(tempdir(), state_dir.to_path_buf(), args)
    }

    fn spawn(work: tempfile::TempDir, state_dir: PathBuf, args: &[&str]) -> SimProcess {
        let mut sim = SimProcess {
            child: None,
            work,
            state_dir,
            serve_args: args.iter().map(|s| s.to_string()).collect(),
            ready: Value::Null,
            ready_line: String::new(),
        };
        sim.serve();
        sim
    }

    /// Spawns `serve` and waits for its ready line.
    fn serve(&mut self) {
        assert!(self.child.is_none(), "canton-sim is already running");
        let log = self.stderr_path();
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("open {}: {e}", log.display()));
        let mut child = Command::new(crate::cargo_bin("canton-sim"))
            .args(["serve", "--output", "json", "--state-dir"])
            .arg(&self.state_dir)
            .args(&self.serve_args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn canton-sim");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(READY_TIMEOUT).unwrap_or_default();
        let ready = serde_json::from_str::<Value>(line.trim())
            .ok()
            .filter(|v| v["type"] == "ready");
        let Some(ready) = ready else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "canton-sim did not print a ready line within {READY_TIMEOUT:?} (got {line:?}); stderr:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        self.ready = ready;
        self.ready_line = line.trim_end().to_string();
        self.child = Some(child);
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The file collecting the server's stderr (across restarts).
    pub fn stderr_path(&self) -> PathBuf {
        self.work.path().join("sim.stderr")
    }

    /// The parsed ready line of the current (or last) serve.
    pub fn ready(&self) -> &Value {
        &self.ready
    }

    /// The ready line as printed, without its newline.
    pub fn ready_line(&self) -> &str {
        &self.ready_line
    }

    /// A string field of the ready line; panics when it is missing.
    pub fn ready_str(&self, key: &str) -> &str {
        self.ready[key]
            .as_str()
            .unwrap_or_else(|| panic!("no string {key:?} in the ready line {}", self.ready))
    }

    /// The Admin API address (`host:port`).
    pub fn admin_api(&self) -> &str {
        self.ready_str("adminApi")
    }

    /// The Ledger API address (`host:port`).
    pub fn ledger_api(&self) -> &str {
        self.ready_str("ledgerApi")
    }

    /// The control API address (`host:port`) that `canton-sim ctl` talks to.
    pub fn control_api(&self) -> &str {
        self.ready_str("controlApi")
    }

    /// The synchronizer's id.
    pub fn synchronizer_id(&self) -> &str {
        self.ready_str("synchronizerId")
    }

    /// The treasury party.
    pub fn treasury_party(&self) -> &str {
        self.ready_str("treasuryParty")
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Stops the server gracefully (SIGTERM) and waits, so its state is
    /// persisted; returns its exit status, `None` if it was not running.
    /// Panics (after SIGKILL) when it does not stop within 10 s.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("canton-sim did not stop within {STOP_TIMEOUT:?} of SIGTERM");
    }

    /// Kills the server at once (SIGKILL): a node that goes down.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server if it runs, then serves the same state directory
    /// again (new ports, new ready line).
    pub fn restart(&mut self) {
        self.restart_with(&[]);
    }

    /// Like [`restart`](Self::restart), with `args` added to the serve
    /// arguments (for this and later restarts).
    pub fn restart_with(&mut self, args: &[&str]) {
        self.stop();
        self.serve_args.extend(args.iter().map(|s| s.to_string()));
        self.serve();
    }

    /// `canton-sim backup` of the state directory into a new directory `to`
    /// (online: the server may be running); returns its JSON result.
    pub fn backup(&self, to: &Path) -> Value {
        let out = run_canton_sim(&[
            "backup".as_ref(),
            "--output".as_ref(),
            "json".as_ref(),
            "--state-dir".as_ref(),
            self.state_dir.as_os_str(),
            "--to".as_ref(),
            to.as_os_str(),
        ]);
        serde_json::from_slice(&out).expect("canton-sim backup printed JSON")
    }

    /// Stops the server if it runs and puts `backup` (a `canton-sim backup`
    /// directory) back into the state directory with `canton-sim restore`;
    /// [`restart`](Self::restart) serves it again.
    pub fn restore(&mut self, backup: &Path) {
        self.stop();
        run_canton_sim(&[
            "restore".as_ref(),
            "--output".as_ref(),
            "json".as_ref(),
            "--state-dir".as_ref(),
            self.state_dir.as_os_str(),
            "--from".as_ref(),
            backup.as_os_str(),
        ]);
    }

    /// `canton-sim --output json ctl --control-api <this server> <args>`;
    /// panics unless it succeeds, returns every JSON line it printed.
    pub fn ctl_lines(&self, args: &[&str]) -> Vec<Value> {
        let head = [
            "--output",
            "json",
            "ctl",
            "--control-api",
            self.control_api(),
        ];
        let all: Vec<&OsStr> = head.iter().chain(args).map(OsStr::new).collect();
        String::from_utf8_lossy(&run_canton_sim(&all))
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("ctl printed {l:?}: {e}")))
            .collect()
    }

    /// [`ctl_lines`](Self::ctl_lines) for commands answering one object: the
    /// last line.
    pub fn ctl(&self, args: &[&str]) -> Value {
        self.ctl_lines(args)
            .pop()
            .unwrap_or_else(|| panic!("canton-sim ctl {args:?} printed nothing"))
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs the workspace's `canton-sim` with `args` (no `RUST_LOG`, no stdin);
/// panics with its stderr unless it succeeds; its stdout.
fn run_canton_sim(args: &[&OsStr]) -> Vec<u8> {
    let out = Command::new(crate::cargo_bin("canton-sim"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run canton-sim");
    assert!(
        out.status.success(),
        "canton-sim {args:?} exited {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("create a temporary directory")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs `target/<profile>/canton-sim`; skipped (passes) when it is not built.
    fn built() -> bool {
        std::panic::catch_unwind(|| crate::cargo_bin("canton-sim")).is_ok()
    }

    #[test]
    fn serves_stops_and_restarts_on_the_same_state() {
        if !built() {
            eprintln!("skipped: canton-sim is not built");
            return;
        }
        let mut sim = SimProcess::start(&[]);
        assert!(sim.ready_line().starts_with(r#"{"type":"ready","#));
        assert!(sim.synchronizer_id().starts_with("global-domain::"));
        assert!(!sim.treasury_party().is_empty());
        assert!(sim.ctl(&["status"]).is_object());
        let first = sim.ready()["incarnation"].clone();
        assert!(sim.stop().expect("was running").success());
        assert!(!sim.is_running());
        sim.restart();
        assert!(sim.is_running());
        assert_ne!(sim.ready()["incarnation"], first);
        sim.kill();
        assert!(!sim.is_running());
    }
}
