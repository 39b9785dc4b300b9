//! Test harness: a migrated database per test, the real `withdrawal-gate`
//! binary (run to completion, or spawned with its NDJSON read line by line),
//! and a test ingester that advances the checkpoint exactly as the ingestion
//! contract says (effects + checkpoint + NOTIFY in one transaction).

#![allow(dead_code)] // each test binary uses a different part

use canton_dr_testkit::{PgCluster, TestDb, fresh_database};
use chrono::{DateTime, Utc};
use integration_db::checkpoint::{self, Position};
use integration_db::control::{self, IngesterState};
use integration_db::notify::{self, Progress};
use integration_db::updates::UpdateRef;
use integration_db::withdrawals::{self, NewWithdrawal};
use integration_db::{ConnectOptions, Db};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The treasury's synchronizer in these tests.
pub const SYNC: &str = "global-domain::1220aaaa";
/// The ingester name the gate watches by default.
pub const INGESTER: &str = "tx-ingest";

/// A fresh, migrated database in `cluster`.
pub async fn migrated_in(cluster: &PgCluster) -> (TestDb, Db) {
    let t = fresh_database(cluster);
    let mut db = Db::connect(&ConnectOptions::from_url(&t.url))
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    (t, db)
}

/// A fresh, migrated database in this binary's shared cluster.
pub async fn migrated() -> (TestDb, Db) {
    migrated_in(PgCluster::shared()).await
}

/// Parses an RFC 3339 time.
pub fn at(s: &str) -> DateTime<Utc> {
    canton_dr_cli::time::parse_record_time(s, "test time").unwrap()
}

/// Formats a time as the tools print it.
pub fn fmt(t: DateTime<Utc>) -> String {
    canton_dr_cli::time::format_record_time(t)
}

/// `withdrawal-gate` against database `url` (given in the environment, as
/// operators should), with JSON output and no stray WITHDRAWAL_* settings.
pub fn gate(url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_withdrawal-gate"));
    for (k, _) in std::env::vars() {
        if k.starts_with("WITHDRAWAL_") || k.starts_with("PG") || k == "INGESTER_NAME" {
            cmd.env_remove(k);
        }
    }
    cmd.env("INTEGRATION_DB_URL", url)
        .env("CANTON_DR_OUTPUT", "json")
        .env("USER", "operator")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

/// What a finished run printed.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// stdout, one JSON value per line.
    pub lines: Vec<Value>,
    /// stderr.
    pub stderr: String,
}

impl Run {
    /// The last stdout object.
    pub fn last(&self) -> &Value {
        self.lines
            .last()
            .unwrap_or_else(|| panic!("no output; stderr: {}", self.stderr))
    }

    /// The first object of `type`.
    pub fn of_type(&self, kind: &str) -> &Value {
        self.lines
            .iter()
            .find(|v| v["type"] == kind)
            .unwrap_or_else(|| {
                panic!(
                    "no {kind} event in {:#?}\nstderr: {}",
                    self.lines, self.stderr
                )
            })
    }
}

/// Runs `cmd` to completion.
pub fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("run withdrawal-gate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    Run {
        code: out.status.code().unwrap_or(-1),
        lines: stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// A running `withdrawal-gate` whose stdout is read as NDJSON.
pub struct Spawned {
    child: Child,
    lines: mpsc::Receiver<Value>,
    stderr: mpsc::Receiver<String>,
    /// Every event seen so far.
    pub seen: Vec<Value>,
}

impl Spawned {
    /// Spawns `cmd` with piped stdout and stderr.
    pub fn start(cmd: &mut Command) -> Spawned {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn withdrawal-gate");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let (etx, stderr) = mpsc::channel();
        let err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = etx.send(line);
            }
        });
        Spawned {
            child,
            lines,
            stderr,
            seen: Vec::new(),
        }
    }

    /// The next event, within `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Option<Value> {
        let v = self.lines.recv_timeout(timeout).ok()?;
        self.seen.push(v.clone());
        Some(v)
    }

    /// Reads events until one satisfies `pred` (panics after `timeout`).
    pub fn until(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.next(left) {
                Some(v) if pred(&v) => return v,
                Some(_) => {}
                None => panic!(
                    "no matching event within {timeout:?}; seen: {:#?}\nstderr: {}",
                    self.seen,
                    self.stderr_text()
                ),
            }
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Waits for the exit (panics after `timeout`); returns the exit code
    /// and reads the remaining events into `seen`.
    pub fn finish(&mut self, timeout: Duration) -> i32 {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                while let Ok(v) = self.lines.recv_timeout(Duration::from_secs(5)) {
                    self.seen.push(v);
                }
                return status.code().unwrap_or(-1);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "withdrawal-gate still running after {timeout:?}; seen: {:#?}",
                self.seen
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }

    /// Events of `type` seen so far.
    pub fn seen_of(&self, kind: &str) -> Vec<&Value> {
        self.seen.iter().filter(|v| v["type"] == kind).collect()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What an ingested transaction does to withdrawals.
pub enum Effect {
    /// Completes the withdrawal.
    Complete(String),
    /// Fails it for a reason.
    Fail(String, String),
    /// Re-creates a withdrawal whose request was lost.
    Recover(NewWithdrawal),
}

/// An ingester that follows the ingestion contract: each update's effects,
/// its checkpoint and the progress NOTIFY commit in one transaction.
pub struct TestIngester {
    db: Db,
    name: String,
    synchronizer_id: String,
    offset: i64,
}

impl TestIngester {
    /// Connects, creates its control row and heartbeats as running.
    pub async fn new(url: &str) -> TestIngester {
        Self::named(url, INGESTER, SYNC).await
    }

    /// The same with another name and synchronizer.
    pub async fn named(url: &str, name: &str, synchronizer_id: &str) -> TestIngester {
        let db = Db::connect(&ConnectOptions::from_url(url))
            .await
            .expect("ingester connect");
        control::ensure(db.client(), name, "ingester@test")
            .await
            .unwrap();
        control::heartbeat(db.client(), name, IngesterState::Running)
            .await
            .unwrap();
        TestIngester {
            db,
            name: name.to_string(),
            synchronizer_id: synchronizer_id.to_string(),
            offset: 0,
        }
    }

    /// Ingests a transaction at `record_time` with `effects` on withdrawals,
    /// all in one transaction; returns its update id.
    pub async fn transaction(&mut self, record_time: DateTime<Utc>, effects: &[Effect]) -> String {
        self.offset += 1;
        let update_id = format!("upd-{}-{}", self.name, self.offset);
        let tx = self.db.transaction().await.unwrap();
        for effect in effects {
            match effect {
                Effect::Complete(id) => {
                    withdrawals::complete(&tx, id, &update_id, record_time)
                        .await
                        .unwrap();
                }
                Effect::Fail(id, reason) => {
                    withdrawals::fail(&tx, id, reason, Some(&update_id), Some(record_time))
                        .await
                        .unwrap();
                }
                Effect::Recover(w) => {
                    withdrawals::record_recovered(&tx, w, &update_id, record_time)
                        .await
                        .unwrap();
                }
            }
        }
        let update = UpdateRef {
            update_id: update_id.clone(),
            offset: self.offset,
            record_time,
            synchronizer_id: self.synchronizer_id.clone(),
        };
        checkpoint::record_transaction(&tx, &self.name, &update, 0)
            .await
            .unwrap();
        notify::notify_progress(
            &tx,
            &Progress {
                ingester: self.name.clone(),
                offset: self.offset,
                record_time,
                offset_epoch: 0,
                update_id: Some(update_id.clone()),
            },
        )
        .await
        .unwrap();
        control::heartbeat(&tx, &self.name, IngesterState::Running)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        update_id
    }

    /// Ingests an offset checkpoint at `record_time` (update_id NULL).
    pub async fn offset_checkpoint(&mut self, record_time: DateTime<Utc>) {
        self.offset += 1;
        let tx = self.db.transaction().await.unwrap();
        checkpoint::record_offset_checkpoint(
            &tx,
            &self.name,
            &Position {
                offset: self.offset,
                record_time,
                synchronizer_id: self.synchronizer_id.clone(),
            },
            0,
        )
        .await
        .unwrap();
        notify::notify_progress(
            &tx,
            &Progress {
                ingester: self.name.clone(),
                offset: self.offset,
                record_time,
                offset_epoch: 0,
                update_id: None,
            },
        )
        .await
        .unwrap();
        control::heartbeat(&tx, &self.name, IngesterState::Running)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    /// The ingester's connection.
    pub fn db(&self) -> &Db {
        &self.db
    }
}

/// Creates an in-flight withdrawal `id` with `trec_tgt` (submitted when `submitted`).
pub async fn request_withdrawal(
    db: &Db,
    id: &str,
    trec_tgt: Option<DateTime<Utc>>,
    submitted: bool,
) {
    withdrawals::upsert_requested(
        db.client(),
        &NewWithdrawal {
            withdrawal_id: id.to_string(),
            account_id: Some(format!("acct-{id}")),
            receiver: Some("customer::1220bbbb".into()),
            instrument_admin: Some("dso::1220cccc".into()),
            instrument_id: Some("Amulet".into()),
            amount: Some("100.0000000000".into()),
            trec_tgt,
        },
    )
    .await
    .unwrap();
    if submitted {
        withdrawals::mark_submitted(db.client(), id).await.unwrap();
    }
}

/// Audit rows of withdrawal-gate, oldest first: (command, dry_run, outcome, details).
pub fn audit_rows(cluster: &PgCluster, db: &TestDb) -> Vec<(String, bool, String, Value)> {
    let out = cluster.query(
        &db.name,
        "SELECT json_build_array(command, dry_run, coalesce(outcome, ''), details)
         FROM canton_integration.audit_log WHERE tool = 'withdrawal-gate' ORDER BY id",
    );
    out.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v[0].as_str().unwrap().to_string(),
                v[1].as_bool().unwrap(),
                v[2].as_str().unwrap().to_string(),
                v[3].clone(),
            )
        })
        .collect()
}
