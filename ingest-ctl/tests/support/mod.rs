//! Test support for ingest-ctl: a migrated database per test, the real
//! `ingest-ctl` binary with a clean environment, the SQL statements of
//! `docs/ingestion-contract.md`, a test ingester built only from them, and an
//! in-test ledger API serving `GetLedgerEnd`.

#![allow(dead_code)] // each test binary uses a different part

pub mod doc;
pub mod ingester;
pub mod ledger;

use canton_dr_testkit::{PgCluster, TestDb, fresh_database};
use serde_json::Value;
use std::io::Write as _;
use std::process::{Child, Command, Output, Stdio};

/// The ingester name the tests use.
pub const INGESTER: &str = "tx-a";
/// A logical synchronizer id.
pub const SYNC: &str =
    "global-domain::1220d1f5a5bd9a1e0e2f3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9";

/// A fresh database in `cluster`, migrated with `ingest-ctl migrate`.
pub fn migrated_in(cluster: &PgCluster) -> TestDb {
    let db = fresh_database(cluster);
    let out = ctl(&db).arg("migrate").output().unwrap();
    assert!(out.status.success(), "migrate: {}", text(&out.stderr));
    db
}

/// A fresh migrated database in this binary's shared cluster.
pub fn migrated() -> TestDb {
    migrated_in(PgCluster::shared())
}

/// `ingest-ctl` against `db`, JSON output, ingester [`INGESTER`], no
/// inherited PG*/INGEST_CTL_* variables.
pub fn ctl(db: &TestDb) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ingest-ctl"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("USER", "tester")
        .env("INTEGRATION_DB_URL", &db.url)
        .env("INGESTER_NAME", INGESTER)
        .env("CANTON_DR_OUTPUT", "json")
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd` with `stdin` as its input.
pub fn run_with_stdin(cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Spawns `cmd` with piped stdout/stderr.
pub fn spawn(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Lossy UTF-8.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// The last JSON object on stdout (the result; earlier lines are progress).
pub fn result(out: &Output) -> Value {
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_else(|| panic!("no output; stderr: {}", text(&out.stderr)));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// Every JSON line on stdout.
pub fn lines(out: &Output) -> Vec<Value> {
    text(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Asserts exit code `code`, returning the result object.
#[track_caller]
pub fn expect(out: &Output, code: i32) -> Value {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    result(out)
}

/// Runs `sql` in `db` and returns psql's bare output.
pub fn query(db: &TestDb, sql: &str) -> String {
    PgCluster::shared().query(&db.name, sql)
}

/// The control row as `desired|actual|generation|acked|resume|epoch|dedup`.
pub fn control_row(cluster: &PgCluster, db: &TestDb) -> String {
    cluster.query(
        &db.name,
        &format!(
            "SELECT desired_state, coalesce(actual_state,''), generation, acked_generation, coalesce(resume_offset::text,''), offset_epoch, coalesce(to_char(dedup_from AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),'') FROM canton_integration.ingestion_control WHERE ingester = '{INGESTER}'"
        ),
    )
}

/// Polls `f` every 20 ms for up to `secs` seconds.
#[track_caller]
pub fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

/// A tokio-postgres client on `db` with `search_path` set to the schema.
pub async fn client(db: &TestDb) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
        .batch_execute("SET search_path TO canton_integration")
        .await
        .unwrap();
    client
}

/// Runs `ingest-ctl ARGS` on a blocking thread (for async tests).
pub async fn ctl_async(db: &TestDb, args: &[&str]) -> Output {
    let mut cmd = ctl(db);
    cmd.args(args);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// A fresh, empty database in this binary's shared cluster.
pub fn fresh() -> TestDb {
    fresh_database(PgCluster::shared())
}
