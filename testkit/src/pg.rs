//! Throwaway PostgreSQL clusters for tests, driven by `scripts/pg-tmp.sh`.
//!
//! The helpers panic on failure: they run inside tests, where a cluster that
//! cannot start is a broken environment and the script's one-line message
//! (e.g. "install PostgreSQL: apt-get install postgresql") is the best report.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The script, found from this crate's manifest directory.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-tmp.sh")
}

/// Options for a new cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    password_role: Option<(String, String)>,
    tls: bool,
}

impl ClusterOptions {
    /// Also create login role `name` that must use `password` (scram-sha-256)
    /// over TCP; `postgres` stays trusted.
    #[must_use]
    pub fn password_role(mut self, name: &str, password: &str) -> Self {
        self.password_role = Some((name.to_string(), password.to_string()));
        self
    }

    /// Serve TLS with a fresh private CA ([`PgCluster::ca_cert`]).
    #[must_use]
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }
}

/// A running throwaway cluster. Dropping it stops the server and removes its
/// directory.
#[derive(Debug)]
pub struct PgCluster {
    dir: PathBuf,
    port: u16,
    tls: bool,
}

impl PgCluster {
    /// Starts a new private cluster (about one second).
    pub fn new() -> PgCluster {
        Self::with_options(&ClusterOptions::default())
    }

    /// Starts a new private cluster with `options`.
    pub fn with_options(options: &ClusterOptions) -> PgCluster {
        let pid = std::process::id().to_string();
        let mut cmd = Command::new("bash");
        cmd.arg(script()).args(["start", "--watch-pid", &pid]);
        if let Some((role, password)) = &options.password_role {
            cmd.args(["--password-role", role]);
            // The script reads the password from the environment, never argv.
            cmd.env("PGTMP_ROLE_PASSWORD", password);
        }
        if options.tls {
            cmd.arg("--tls");
        }
        let exports = run_script(&mut cmd, "start");
        let dir = export_value(&exports, "PGTEST_DIR");
        let port = export_value(&exports, "PGPORT");
        PgCluster {
            dir: PathBuf::from(dir),
            port: port
                .parse()
                .unwrap_or_else(|_| panic!("pg-tmp.sh printed a bad PGPORT: {exports}")),
            tls: options.tls,
        }
    }

    /// The one cluster of this test binary, started on first use. It is never
    /// dropped (statics are not); the watchdog removes it when the process exits.
    pub fn shared() -> &'static PgCluster {
        static SHARED: OnceLock<PgCluster> = OnceLock::new();
        SHARED.get_or_init(PgCluster::new)
    }

    /// TCP host: always `127.0.0.1`.
    pub fn host(&self) -> &str {
        "127.0.0.1"
    }

    /// TCP port (also names the unix socket in [`Self::dir`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster directory; it also holds the unix socket.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `postgresql://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// The URL of database `db` as the `postgres` superuser.
    pub fn url_for(&self, db: &str) -> String {
        format!("postgresql://postgres@{}:{}/{db}", self.host(), self.port)
    }

    /// The private CA that signed the server certificate (with
    /// [`ClusterOptions::tls`]).
    pub fn ca_cert(&self) -> Option<PathBuf> {
        self.tls.then(|| self.dir.join("ca.crt"))
    }

    /// `PG*` variables for a child process (`Command::envs`), pointing at the
    /// unix socket, plus `INTEGRATION_DB_URL`.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut v = vec![
            ("PGHOST".to_string(), self.dir.display().to_string()),
            ("PGPORT".to_string(), self.port.to_string()),
            ("PGUSER".to_string(), "postgres".to_string()),
            ("PGDATABASE".to_string(), "postgres".to_string()),
            ("INTEGRATION_DB_URL".to_string(), self.url()),
        ];
        if let Some(ca) = self.ca_cert() {
            v.push(("PGSSLROOTCERT".to_string(), ca.display().to_string()));
        }
        v
    }

    /// Stops the server, keeping its data ([`Self::start`] brings it back).
    pub fn stop(&self) {
        self.run(&["halt"]);
    }

    /// Starts the server again after [`Self::stop`], on the same port.
    pub fn start(&self) {
        let dir = self.dir.display().to_string();
        run_script(
            Command::new("bash")
                .arg(script())
                .args(["start", "--dir", &dir]),
            "start --dir",
        );
    }

    /// Stops and starts the server on the same port (drops every connection).
    pub fn restart(&self) {
        self.run(&["restart"]);
    }

    /// True when the server is up.
    pub fn is_running(&self) -> bool {
        Command::new("bash")
            .arg(script())
            .arg("status")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Runs `sql` as the `postgres` superuser in database `postgres` (psql).
    pub fn sql(&self, sql: &str) {
        self.psql(sql, &[]);
    }

    /// Runs `sql` in database `db` as `postgres` and returns psql's bare
    /// output (`-tA`: one row per line, columns separated by `|`).
    pub fn query(&self, db: &str, sql: &str) -> String {
        self.psql(sql, &["-tA", "-d", db])
    }

    fn psql(&self, sql: &str, args: &[&str]) -> String {
        use std::io::Write as _;
        let mut child = Command::new("bash")
            .arg(script())
            .arg("sql")
            .arg(&self.dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run pg-tmp.sh sql");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(sql.as_bytes())
            .expect("write SQL to psql");
        let out = child.wait_with_output().expect("wait for psql");
        assert!(
            out.status.success(),
            "SQL failed: {sql}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn run(&self, args: &[&str]) {
        let mut cmd = Command::new("bash");
        cmd.arg(script()).args(args).arg(&self.dir);
        run_script(&mut cmd, args.first().copied().unwrap_or(""));
    }
}

impl Default for PgCluster {
    fn default() -> Self {
        PgCluster::new()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Best effort: a failure here must not turn a passing test into a
        // panic-in-drop abort; the watchdog still removes the cluster.
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A database created for one test.
#[derive(Debug, Clone)]
pub struct TestDb {
    /// `postgresql://postgres@127.0.0.1:PORT/NAME`.
    pub url: String,
    /// The database name (`t_<pid>_<n>`).
    pub name: String,
}

/// Creates a uniquely named, empty database in `cluster` for one test.
pub fn fresh_database(cluster: &PgCluster) -> TestDb {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!("t_{}_{n}", std::process::id());
    cluster.sql(&format!("CREATE DATABASE {name};"));
    TestDb {
        url: cluster.url_for(&name),
        name,
    }
}

fn run_script(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run pg-tmp.sh {what}: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pg-tmp.sh {what} failed: {}",
        stderr.trim()
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The value of `KEY=value` in the script's `export ...` line.
fn export_value(exports: &str, key: &str) -> String {
    exports
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("pg-tmp.sh printed no {key}: {exports}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_line_parses() {
        let line =
            "export PGTEST_DIR=/tmp/pgtmp.ab PGHOST=/tmp/pgtmp.ab PGPORT=31234 PGUSER=postgres";
        assert_eq!(export_value(line, "PGTEST_DIR"), "/tmp/pgtmp.ab");
        assert_eq!(export_value(line, "PGPORT"), "31234");
    }
}
