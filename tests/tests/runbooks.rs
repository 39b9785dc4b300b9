//! End-to-end tests of the runbook scripts `scripts/restore-validator.sh`
//! (runbook A) and `scripts/restore-integration-db.sh` (runbook B): the real
//! scripts driving the real tools against a real PostgreSQL (one shared
//! throwaway cluster, a database per test), the `canton-sim` participant and
//! the reference ingester `tx-ingest`.
//!
//! The central property: a runbook killed at any step (SIGKILL before or
//! after the step acted, a failed step, Ctrl-C) and run again reaches the
//! same end state as an uninterrupted run. The end state is compared as a
//! normalized snapshot of what matters (resume offset = the restored node's
//! offset of the last ingested transaction, one new offset epoch, every
//! ledger update ingested exactly once, every DAR back, the gate thawed, the
//! lost withdrawal recovered, each step done exactly once).

use canton_dr_testkit::{PgCluster, TestDb, cargo_bin, fresh_database};
use chrono::{Duration, SecondsFormat, Utc};
use daml_dar::DarBuilder;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;
use tempfile::TempDir;

/// The sim/ingester helper the restore commands and the tests share: it
/// starts and stops the simulator and the ingester through pid files, and
/// does the operator's restores (node: `canton-sim restore`; DB: drop,
/// `pg_restore`, re-freeze as the runbook asks, restart ingestion).
const ENV_SH: &str = r#"#!/usr/bin/env bash
set -euo pipefail
D=$(dirname "$(readlink -f "$0")")
# shellcheck source=/dev/null
source "$D/env.vars"
stop() {
  local f=$D/$1.pid pid
  [[ -f $f ]] || return 0
  pid=$(cat "$f"); rm -f "$f"
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
}
start_sim() {
  : >"$D/ready.json"
  "$BIN/canton-sim" serve --state-dir "$D/sim" --admin-port "$ADMIN_PORT" --ledger-port "$LEDGER_PORT" \
    --control-port "$CONTROL_PORT" --catch-up 300ms --semantics "$SEMANTICS" $SIM_FLAGS \
    </dev/null >"$D/ready.json" 2>>"$D/sim.log" 3>&- 9>&- &
  echo $! >"$D/sim.pid"
  for _ in $(seq 1 400); do [[ -s $D/ready.json ]] && return 0; sleep 0.05; done
  echo "canton-sim did not get ready" >&2; exit 3
}
start_ingest() {
  INTEGRATION_DB_URL=$DB_URL "$BIN/tx-ingest" --treasury-party "$(jq -r .treasuryParty "$D/ready.json")" \
    --ledger-api "127.0.0.1:$LEDGER_PORT" --progress-interval 0s --heartbeat-interval 300ms \
    </dev/null >>"$D/ingest.out" 2>>"$D/ingest.log" 3>&- 9>&- &
  echo $! >"$D/ingest.pid"
}
psql_admin() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"; }
case $1 in
start-sim) start_sim ;;
start-ingest) start_ingest ;;
restore-node)
  stop sim
  "$BIN/canton-sim" restore --state-dir "$D/sim" --from "$D/backup" >>"$D/restore.log"
  start_sim ;;
restore-db)
  stop ingest
  psql_admin -d postgres -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" -c "CREATE DATABASE $DB_NAME"
  "$PG_BIN/pg_restore" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$DB_NAME" --no-owner "$D/db.dump"
  bash -c "$CANTON_DR_FREEZE_CMD" >>"$D/restore.log"
  start_ingest ;;
stop-all) stop ingest; stop sim ;;
*) echo "unknown command $1" >&2; exit 2 ;;
esac
"#;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(name)
}

fn bin_dir() -> PathBuf {
    cargo_bin("canton-sim")
        .parent()
        .expect("binary directory")
        .to_path_buf()
}

/// The newest installed PostgreSQL's bin directory (pg_dump, pg_restore, psql).
fn pg_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .filter(|p| p.join("pg_restore").is_file())
                .collect()
        })
        .unwrap_or_default();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found
        .pop()
        .expect("PostgreSQL client tools in /usr/lib/postgresql/*/bin")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn now_minus(d: Duration) -> String {
    (Utc::now() - d).to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn last_of(out: &Output, kind: &str) -> Value {
    lines(&out.stdout)
        .into_iter()
        .rev()
        .find(|v| v["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} line in: {}", describe(out)))
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Code(i32),
    Signal(i32),
}

fn end(out: &Output) -> End {
    match (out.status.code(), out.status.signal()) {
        (Some(c), _) => End::Code(c),
        (None, Some(s)) => End::Signal(s),
        _ => unreachable!("a process ends with a code or a signal"),
    }
}

/// One test's world: a database, a simulator, an ingester, and a work
/// directory with the helper script, the backups and the state directories.
struct World {
    dir: TempDir,
    cluster: &'static PgCluster,
    db: TestDb,
    admin_api: String,
    ledger_api: String,
    control_api: String,
    treasury: String,
}

/// Options of the world.
#[derive(Default, Clone, Copy)]
struct WorldOptions {
    record_time_ties: bool,
}

impl World {
    fn new(options: WorldOptions) -> World {
        let cluster = PgCluster::shared();
        let db = fresh_database(cluster);
        let dir = tempfile::Builder::new()
            .prefix("canton-dr-runbook-")
            .tempdir()
            .expect("temp dir");
        let (admin, ledger, control) = (free_port(), free_port(), free_port());
        let vars = format!(
            "BIN={bin}\nPG_BIN={pg}\nPG_PORT={port}\nDB_NAME={name}\nDB_URL={url}\n\
             ADMIN_PORT={admin}\nLEDGER_PORT={ledger}\nCONTROL_PORT={control}\nSEMANTICS=3.4\n\
             SIM_FLAGS='{flags}'\n",
            bin = bin_dir().display(),
            pg = pg_bin().display(),
            port = cluster.port(),
            name = db.name,
            url = db.url,
            flags = if options.record_time_ties {
                "--record-time-ties"
            } else {
                ""
            },
        );
        std::fs::write(dir.path().join("env.vars"), vars).expect("env.vars");
        std::fs::write(dir.path().join("env.sh"), ENV_SH).expect("env.sh");
        let mut w = World {
            dir,
            cluster,
            db,
            admin_api: format!("127.0.0.1:{admin}"),
            ledger_api: format!("127.0.0.1:{ledger}"),
            control_api: format!("127.0.0.1:{control}"),
            treasury: String::new(),
        };
        w.ok(w.tool("ingest-ctl", &["migrate"]));
        w.env_sh("start-sim");
        let ready: Value =
            serde_json::from_str(&std::fs::read_to_string(w.path("ready.json")).expect("ready"))
                .expect("ready JSON");
        w.treasury = ready["treasuryParty"]
            .as_str()
            .expect("treasury")
            .to_string();
        w.query(
            "INSERT INTO canton_integration.deposit_accounts (account_id, customer_id) \
             SELECT 'acct-' || i, 'c-' || i FROM generate_series(0, 49) i",
        );
        w.env_sh("start-ingest");
        w
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn env_sh(&self, cmd: &str) {
        let out = Command::new("bash")
            .arg(self.path("env.sh"))
            .arg(cmd)
            .stdin(Stdio::null())
            .output()
            .expect("env.sh");
        assert!(out.status.success(), "env.sh {cmd}: {}", describe(&out));
    }

    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("INTEGRATION_DB_URL", &self.db.url)
            .env("CANTON_ADMIN_API", &self.admin_api)
            .env("CANTON_LEDGER_API", &self.ledger_api)
            .env("CANTON_DR_BIN_DIR", bin_dir())
            .env("CANTON_DR_OUTPUT", "json")
            .env_remove("CANTON_DR_FAILPOINT")
            .env_remove("PGHOST")
            .env_remove("PGPORT")
            .env_remove("PGDATABASE")
            .env_remove("WITHDRAWAL_TTL")
            .stdin(Stdio::null());
        c
    }

    fn tool(&self, name: &str, args: &[&str]) -> Output {
        self.command(cargo_bin(name))
            .args(args)
            .output()
            .expect("tool")
    }

    fn ok(&self, out: Output) -> Output {
        assert!(out.status.success(), "{}", describe(&out));
        out
    }

    fn ctl(&self, args: &[&str]) -> Vec<Value> {
        let out = self.ok(Command::new(cargo_bin("canton-sim"))
            .args([
                "ctl",
                "--control-api",
                &self.control_api,
                "--output",
                "json",
            ])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("canton-sim ctl"));
        lines(&out.stdout)
    }

    fn query(&self, sql: &str) -> String {
        self.cluster.query(&self.db.name, sql)
    }

    /// Waits until the ingester is live, running and at the ledger end.
    fn caught_up(&self) {
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let out = self.tool("ingest-ctl", &["status", "--ledger-api", &self.ledger_api]);
            if let Some(s) = lines(&out.stdout).pop()
                && s["liveIngester"] == true
                && s["actualState"] == "running"
                && s["lag"] == 0
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "ingestion did not catch up: {}",
                describe(&out)
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Uploads a fresh DAR and records it in the registry.
    fn upload_dar(&self, name: &str) {
        let path = self.path(&format!("{name}.dar"));
        DarBuilder::new(name, "1.0.0")
            .build()
            .write_to(&path)
            .expect("write DAR");
        let p = path.display().to_string();
        self.ok(self.tool("dar-sync", &["upload", "--dir", &p]));
        self.ok(self.tool("dar-sync", &["record", &p]));
    }

    fn treasury_update_ids(&self) -> BTreeSet<String> {
        self.ctl(&["update-ids", "--party", &self.treasury])
            .into_iter()
            .map(|u| u["updateId"].as_str().expect("updateId").to_string())
            .collect()
    }

    fn ingested_update_ids(&self) -> BTreeSet<String> {
        self.query("SELECT update_id FROM canton_integration.ingested_updates")
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Runbook A's world: traffic and a DAR, a node backup, more traffic and
    /// a DAR the restore will lose. Returns the backup time.
    fn prepare_node_restore(&self) -> String {
        self.ctl(&["traffic", "--deposits", "4", "--noise", "6"]);
        self.upload_dar("before-backup");
        self.caught_up();
        let backup = self.ctl(&["backup", "--to", &self.path("backup").display().to_string()]);
        let taken_at = backup[0]["takenAt"].as_str().expect("takenAt").to_string();
        self.ctl(&["traffic", "--deposits", "4", "--noise", "12"]);
        self.upload_dar("after-backup");
        self.caught_up();
        taken_at
    }

    /// Runbook B's world: a withdrawal completed before the dump, one
    /// requested before and submitted after it, one requested and submitted
    /// after it (lost in the restore: recovered), one requested after it and
    /// never submitted (lost for good).
    fn prepare_db_restore(&self) {
        self.ctl(&["traffic", "--deposits", "4"]);
        self.withdrawal("wb-done", true);
        self.request("wb-inflight");
        self.caught_up();
        let out = Command::new(pg_bin().join("pg_dump"))
            .args(["-h", "127.0.0.1", "-p", &self.cluster.port().to_string()])
            .args(["-U", "postgres", "-Fc", "-f"])
            .arg(self.path("db.dump"))
            .arg(&self.db.name)
            .output()
            .expect("pg_dump");
        assert!(out.status.success(), "pg_dump: {}", describe(&out));
        self.submit("wb-inflight");
        self.withdrawal("wb-lost", true);
        self.request("wb-never-submitted");
        self.ctl(&["traffic", "--deposits", "2"]);
        self.caught_up();
    }

    fn trec_tgt(&self) -> String {
        (Utc::now() + Duration::seconds(3)).to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    fn request(&self, wid: &str) {
        let trec = self.trec_tgt();
        self.query(&format!(
            "INSERT INTO canton_integration.withdrawals (withdrawal_id, receiver, amount, trec_tgt) \
             VALUES ('{wid}', 'r::1220ab', 1, '{trec}')"
        ));
        std::fs::write(self.path(&format!("{wid}.trec")), trec).expect("trec");
    }

    fn submit(&self, wid: &str) {
        let trec = std::fs::read_to_string(self.path(&format!("{wid}.trec"))).expect("trec");
        let r = self.ctl(&[
            "withdraw",
            "--withdrawal-id",
            wid,
            "--amount",
            "1",
            "--receiver",
            "r::1220ab",
            "--trec-tgt",
            &trec,
        ]);
        assert_eq!(r[0]["outcome"], "committed", "{wid}: {r:?}");
    }

    fn withdrawal(&self, wid: &str, submit: bool) {
        self.request(wid);
        if submit {
            self.submit(wid);
        }
    }

    fn runbook(&self, name: &str, args: &[&str], failpoint: Option<&str>) -> Output {
        let mut c = self.command(script(name));
        c.args(args);
        if let Some(f) = failpoint {
            c.env("CANTON_DR_FAILPOINT", f);
        }
        c.output().expect("runbook")
    }

    /// restore-validator.sh with the helper's node restore.
    fn runbook_a(&self, state: &str, extra: &[&str], failpoint: Option<&str>) -> Output {
        let cmd = format!("bash {}", self.path("env.sh").display());
        let state = self.path(state).display().to_string();
        let restore = format!("{cmd} restore-node");
        let mut args = vec![
            "--state-dir",
            &state,
            "--restore-cmd",
            &restore,
            "--lookup-timeout",
            "1m",
            "--catch-up-timeout",
            "1m",
        ];
        args.extend_from_slice(extra);
        self.runbook("restore-validator.sh", &args, failpoint)
    }

    /// restore-integration-db.sh with the helper's DB restore and hooks.
    fn runbook_b(&self, state: &str, extra: &[&str], failpoint: Option<&str>) -> Output {
        let env_sh = self.path("env.sh").display().to_string();
        let restore = format!("bash {env_sh} restore-db");
        let stopped = self.path("automation.stopped").display().to_string();
        let stop = format!("touch {stopped}");
        let start = format!("rm -f {stopped}");
        let state = self.path(state).display().to_string();
        let mut args = vec![
            "--state-dir",
            &state,
            "--reason",
            "test restore",
            "--ttl",
            "2s",
            "--restore-cmd",
            &restore,
            "--stop-cmd",
            &stop,
            "--start-cmd",
            &start,
            "--wait-timeout",
            "1m",
        ];
        args.extend_from_slice(extra);
        self.runbook("restore-integration-db.sh", &args, failpoint)
    }

    fn journal(&self, state: &str) -> Vec<Value> {
        let text =
            std::fs::read_to_string(self.path(state).join("journal.ndjson")).expect("journal");
        lines(text.as_bytes())
    }

    /// The control row's desired state, resume offset, dedup-from and epoch.
    fn control(&self) -> (String, Option<i64>, Option<String>, i64) {
        let row = self.query(
            "SELECT desired_state, coalesce(resume_offset::text, ''), \
             coalesce(to_char(dedup_from AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), ''), \
             offset_epoch FROM canton_integration.ingestion_control WHERE ingester = 'tx-ingest'",
        );
        let f: Vec<&str> = row.split('|').collect();
        (
            f[0].to_string(),
            f[1].parse().ok(),
            (!f[2].is_empty()).then(|| f[2].to_string()),
            f[3].parse().expect("epoch"),
        )
    }

    fn sim_incarnation(&self) -> i64 {
        self.ctl(&["status"])[0]["incarnation"]
            .as_i64()
            .expect("incarnation")
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(self.path("env.sh"))
            .arg("stop-all")
            .stdin(Stdio::null())
            .status();
    }
}

/// How many `started` and `done` records each step has in a journal.
fn step_counts(journal: &[Value]) -> Vec<(String, usize, usize)> {
    let mut steps: Vec<String> = journal
        .iter()
        .filter(|r| r["type"] == "step")
        .map(|r| r["step"].as_str().unwrap_or_default().to_string())
        .collect();
    steps.dedup();
    let mut seen = BTreeSet::new();
    steps.retain(|s| seen.insert(s.clone()));
    steps
        .into_iter()
        .map(|s| {
            let count = |status: &str| {
                journal
                    .iter()
                    .filter(|r| {
                        r["type"] == "step" && r["step"] == s.as_str() && r["status"] == status
                    })
                    .count()
            };
            (s.clone(), count("started"), count("done"))
        })
        .collect()
}

/// What the last transaction ingested before the restore was.
struct Before {
    record_time: String,
    update_id: String,
    epoch: i64,
}

fn before_node_restore(w: &World) -> Before {
    let last = last_of(&w.ok(w.tool("ingest-ctl", &["last"])), "last");
    Before {
        record_time: last["recordTime"].as_str().expect("recordTime").to_string(),
        update_id: last["updateId"].as_str().expect("updateId").to_string(),
        epoch: w.control().3,
    }
}

/// Runbook A's end state, normalized: equal for every run that did the right thing.
fn node_restore_snapshot(w: &World, before: &Before, result: &Value, non_unique: bool) -> Value {
    let values = &result["values"];
    // The restored node's offset of the last ingested transaction.
    let node_offset = w
        .ctl(&["update-ids", "--party", &w.treasury])
        .into_iter()
        .find(|u| u["updateId"] == before.update_id.as_str())
        .and_then(|u| u["offset"].as_i64())
        .expect("the last ingested transaction on the restored node");
    let (desired, resume, dedup, epoch) = w.control();
    // With non-unique record times the lookup is for tRecovery - 1us: the
    // resume point is strictly before the last ingested transaction.
    let off_recovery = values["offRecovery"].as_i64().expect("offRecovery");
    let resume_ok = if non_unique {
        off_recovery < node_offset
    } else {
        off_recovery == node_offset
    };
    w.caught_up();
    let chain = w.treasury_update_ids();
    let ingested = w.ingested_update_ids();
    let dars = w.tool("dar-sync", &["diff", "--registry", "--check"]);
    json!({
        "status": result["status"],
        "tRecoveryIsLastIngested": values["tRecovery"] == before.record_time.as_str(),
        "offRecoveryMatchesRestoredNode": resume_ok,
        "resumeOffsetIsOffRecovery": resume == Some(off_recovery),
        "dedupFrom": dedup.map(|d| d == before.record_time),
        "desiredState": desired,
        "newEpochs": epoch - before.epoch,
        "missingUpdates": chain.difference(&ingested).count(),
        "unknownUpdates": ingested.difference(&chain).count(),
        "darsMissingExitCode": dars.status.code(),
    })
}

fn expected_node_restore_snapshot(non_unique: bool) -> Value {
    json!({
        "status": "ok",
        "tRecoveryIsLastIngested": true,
        "offRecoveryMatchesRestoredNode": true,
        "resumeOffsetIsOffRecovery": true,
        "dedupFrom": if non_unique { json!(true) } else { Value::Null },
        "desiredState": "running",
        "newEpochs": 1,
        "missingUpdates": 0,
        "unknownUpdates": 0,
        "darsMissingExitCode": 0,
    })
}

const A_STEPS: [&str; 7] = ["A1", "A2", "A3", "A4", "A5", "A6", "A7"];
const B_STEPS: [&str; 4] = ["B1", "B2", "B3", "B4"];

#[test]
fn validator_restore_uninterrupted_reaches_the_end_state() {
    let w = World::new(WorldOptions::default());
    let backup_time = w.prepare_node_restore();
    // The time comes from a backup manifest, as backup-manifest.sh writes it.
    let manifest = w.path("manifest.json");
    std::fs::write(
        &manifest,
        json!({"kind": "CantonDrBackupManifest", "schemaVersion": 1, "backupTime": backup_time})
            .to_string(),
    )
    .expect("manifest");
    let before = before_node_restore(&w);
    let incarnation = w.sim_incarnation();
    let out = w.runbook_a(
        "state",
        &["--manifest", &manifest.display().to_string()],
        None,
    );
    assert_eq!(end(&out), End::Code(0), "{}", describe(&out));
    let result = last_of(&out, "result");
    assert_eq!(result["values"]["backupTime"], backup_time.as_str());
    assert_eq!(
        result["values"]["darsUploaded"], 1,
        "the DAR uploaded after the backup"
    );
    assert!(w.sim_incarnation() > incarnation, "the node was restored");
    let steps: Vec<Value> = lines(&out.stdout)
        .into_iter()
        .filter(|v| v["type"] == "step")
        .collect();
    assert_eq!(
        steps.iter().map(|s| s["step"].clone()).collect::<Vec<_>>(),
        A_STEPS.iter().map(|s| json!(s)).collect::<Vec<_>>()
    );
    assert!(steps.iter().all(|s| s["status"] == "done"));
    assert_eq!(
        node_restore_snapshot(&w, &before, &result, false),
        expected_node_restore_snapshot(false)
    );
    let counts = step_counts(&w.journal("state"));
    assert!(
        counts
            .iter()
            .all(|(_, started, done)| *started == 1 && *done == 1),
        "{counts:?}"
    );

    // A finished journal is not run again.
    let again = w.runbook_a("state", &[], None);
    assert_eq!(end(&again), End::Code(0), "{}", describe(&again));
    // run started, started/done per step, run done: nothing added by the rerun.
    assert_eq!(w.journal("state").len(), 1 + 2 * A_STEPS.len() + 1);
    assert_eq!(w.control().3, before.epoch + 1, "no second resume");
}

#[test]
fn validator_restore_killed_at_every_step_reaches_the_same_end_state() {
    let w = World::new(WorldOptions::default());
    let backup_time = w.prepare_node_restore();
    let before = before_node_restore(&w);
    let args = ["--backup-time", backup_time.as_str()];
    // Every step in turn: SIGKILL after `started` (before it acts) and again
    // after it acted (before `done`); A5 also fails once, A6 gets a Ctrl-C.
    for step in A_STEPS {
        let killed = w.runbook_a("state", &args, Some(&format!("{step}:before")));
        assert_eq!(
            end(&killed),
            End::Signal(9),
            "{step}:before {}",
            describe(&killed)
        );
        if step == "A5" {
            let failed = w.runbook_a("state", &args, Some("A5:fail"));
            assert_eq!(end(&failed), End::Code(3), "A5:fail {}", describe(&failed));
            assert_eq!(last_of(&failed, "result")["failedStep"], "A5");
        }
        let killed = w.runbook_a("state", &args, Some(&format!("{step}:after")));
        assert_eq!(
            end(&killed),
            End::Signal(9),
            "{step}:after {}",
            describe(&killed)
        );
        let last = w.journal("state").pop().expect("a record");
        assert_eq!(
            (last["step"].as_str(), last["status"].as_str()),
            (Some(step), Some("started"))
        );
        if step == "A6" {
            let interrupted = w.runbook_a("state", &args, Some("A6:interrupt"));
            assert_eq!(
                end(&interrupted),
                End::Code(130),
                "{}",
                describe(&interrupted)
            );
            let last = w.journal("state").pop().expect("a record");
            assert_eq!(last["status"], "failed");
            assert_eq!(last["error"], "interrupted by SIGINT");
        }
    }
    let out = w.runbook_a("state", &args, None);
    assert_eq!(end(&out), End::Code(0), "{}", describe(&out));
    let result = last_of(&out, "result");
    assert_eq!(
        node_restore_snapshot(&w, &before, &result, false),
        expected_node_restore_snapshot(false)
    );
    // Each step done exactly once; started once per run that reached it.
    let counts = step_counts(&w.journal("state"));
    let expected: Vec<(String, usize, usize)> = A_STEPS
        .iter()
        .map(|s| {
            let extra = match *s {
                "A5" => 1,
                "A6" => 1,
                _ => 0,
            };
            (s.to_string(), 3 + extra, 1)
        })
        .collect();
    assert_eq!(counts, expected);
}

#[test]
fn validator_restore_with_non_unique_record_times_resumes_before_t_recovery_and_dedups() {
    let w = World::new(WorldOptions {
        record_time_ties: true,
    });
    // The last transaction shares its record time with the one before it.
    w.ctl(&["deposit", "--account", "acct-1", "--amount", "5"]);
    let backup_time = w.prepare_node_restore();
    w.ctl(&["deposit", "--account", "acct-2", "--amount", "7"]);
    w.ctl(&[
        "deposit",
        "--account",
        "acct-3",
        "--amount",
        "9",
        "--same-record-time",
    ]);
    w.caught_up();
    let before = before_node_restore(&w);
    let out = w.runbook_a(
        "state",
        &["--backup-time", &backup_time, "--non-unique-record-times"],
        None,
    );
    assert_eq!(end(&out), End::Code(0), "{}", describe(&out));
    let result = last_of(&out, "result");
    assert_eq!(result["values"]["dedupFrom"], before.record_time.as_str());
    assert_eq!(
        node_restore_snapshot(&w, &before, &result, true),
        expected_node_restore_snapshot(true)
    );
    // Re-delivered updates were skipped: each deposit booked once.
    let doubled = w.query(
        "SELECT count(*) FROM (SELECT update_id FROM canton_integration.deposits \
         GROUP BY update_id HAVING count(*) > 1) d",
    );
    assert_eq!(doubled, "0");
}

#[test]
fn validator_restore_refuses_a_backup_of_30_days_or_more() {
    let w = World::new(WorldOptions::default());
    w.ctl(&["traffic", "--deposits", "2"]);
    w.caught_up();
    let old = now_minus(Duration::days(30) + Duration::minutes(1));
    let out = w.runbook_a("state", &["--backup-time", &old], None);
    assert_eq!(end(&out), End::Code(5), "{}", describe(&out));
    let err = last_of(&out, "error");
    assert_eq!(err["status"], "refused");
    assert!(err["error"].as_str().unwrap().contains("30d"), "{err}");
    // Nothing happened: ingestion still runs, nothing written.
    assert_eq!(w.control().0, "running");
    assert!(!w.path("state").exists());

    // The same from a manifest, and in a dry run.
    let manifest = w.path("old-manifest.json");
    std::fs::write(
        &manifest,
        json!({"type": "backup-manifest", "manifest": {"kind": "CantonDrBackupManifest", "backupTime": old}})
            .to_string(),
    )
    .expect("manifest");
    let m = manifest.display().to_string();
    let out = w.runbook_a("state2", &["--manifest", &m, "--dry-run"], None);
    assert_eq!(end(&out), End::Code(5), "{}", describe(&out));

    // Just under the limit is fine for the guard (a dry run shows the plan).
    let young = now_minus(Duration::days(29) + Duration::hours(23));
    let out = w.runbook_a("state3", &["--backup-time", &young, "--dry-run"], None);
    assert_eq!(end(&out), End::Code(0), "{}", describe(&out));

    // The limit cannot be raised.
    let out = w.runbook_a(
        "state4",
        &["--backup-time", &young, "--max-backup-age", "31d"],
        None,
    );
    assert_eq!(end(&out), End::Code(2), "{}", describe(&out));
}

#[test]
fn validator_restore_needs_the_operator_for_the_restore_off_a_terminal() {
    let w = World::new(WorldOptions::default());
    let backup_time = w.prepare_node_restore();
    let before = before_node_restore(&w);
    let incarnation = w.sim_incarnation();
    let state = w.path("state").display().to_string();
    let run = |extra: &[&str]| {
        let mut args = vec!["--state-dir", &state, "--backup-time", &backup_time];
        args.extend_from_slice(extra);
        w.runbook("restore-validator.sh", &args, None)
    };

    // --yes in the very run that stopped ingestion cannot confirm a restore
    // that must happen after it: refused at A3, after A1-A2.
    let out = run(&["--yes"]);
    assert_eq!(end(&out), End::Code(5), "{}", describe(&out));
    let result = last_of(&out, "result");
    assert_eq!(result["failedStep"], "A3");
    assert!(
        result["error"]
            .as_str()
            .unwrap()
            .contains("same invocation"),
        "{result}"
    );
    assert_eq!(w.control().0, "stopped", "A1 stopped ingestion");

    // Without --yes, stdin not a terminal: refused again, nothing restored.
    let out = run(&[]);
    assert_eq!(end(&out), End::Code(5), "{}", describe(&out));
    assert!(
        last_of(&out, "result")["error"]
            .as_str()
            .unwrap()
            .contains("not a terminal"),
        "{}",
        describe(&out)
    );
    assert_eq!(w.sim_incarnation(), incarnation, "the node was not touched");

    // The operator restores the node, then confirms with --yes.
    w.env_sh("restore-node");
    let out = run(&["--yes"]);
    assert_eq!(end(&out), End::Code(0), "{}", describe(&out));
    let result = last_of(&out, "result");
    assert_eq!(result["values"]["restoreMethod"], "yes");
    assert_eq!(
        node_restore_snapshot(&w, &before, &result, false),
        expected_node_restore_snapshot(false)
    );
    // A1 and A2 were not repeated: tRecovery is the one read before the restore.
    let counts = step_counts(&w.journal("state"));
    assert_eq!(counts[0], ("A1".to_string(), 1, 1));
    assert_eq!(counts[1], ("A2".to_string(), 1, 1));
    assert_eq!(counts[2], ("A3".to_string(), 3, 1));
}

#[test]
fn validator_restore_dry_run_prints_the_plan_and_changes_nothing() {
    let w = World::new(WorldOptions::default());
    let backup_time = w.prepare_node_restore();
    let before = before_node_restore(&w);
    let incarnation = w.sim_incarnation();
    let out = w.runbook_a("state", &["--backup-time", &backup_time, "--dry-run"], None);
    assert_eq!(end(&out), End::Code(0), "{}", describe(&out));
    let records = lines(&out.stdout);
    let steps: Vec<&Value> = records.iter().filter(|v| v["type"] == "step").collect();
    assert_eq!(steps.len(), 7, "{}", describe(&out));
    assert!(
        steps
            .iter()
            .all(|s| s["status"] == "planned" && s["dryRun"] == true)
    );
    assert_eq!(steps[1]["values"]["tRecovery"], before.record_time.as_str());
    assert_eq!(steps[2]["values"]["restoreMethod"], "restore-cmd");
    assert_eq!(
        steps[3]["values"]["darsUploadedSinceBackup"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "the DAR the restore will lose"
    );
    assert!(
        steps[4]["commands"][0]
            .as_str()
            .unwrap()
            .starts_with("offset-lookup")
    );
    assert_eq!(last_of(&out, "result")["dryRun"], true);
    // Nothing changed: no state directory, ingestion running, node untouched.
    assert!(!w.path("state").exists());
    let (desired, resume, _, epoch) = w.control();
    assert_eq!(
        (desired.as_str(), resume, epoch),
        ("running", None, before.epoch)
    );
    assert_eq!(w.sim_incarnation(), incarnation);

    // Off a terminal without a restore command the plan predicts the refusal.
    let state = w.path("state").display().to_string();
    let out = w.runbook(
        "restore-validator.sh",
        &[
            "--state-dir",
            &state,
            "--backup-time",
            &backup_time,
            "--dry-run",
        ],
        None,
    );
    assert_eq!(end(&out), End::Code(5), "{}", describe(&out));
    assert_eq!(
        lines(&out.stdout)
            .iter()
            .filter(|v| v["type"] == "step")
            .count(),
        7
    );
}

#[test]
fn runbooks_reject_bad_usage_before_doing_anything() {
    let cases: [(&str, &[&str]); 5] = [
        (
            "restore-validator.sh",
            &["--backup-time", "2025-01-01T00:00:00Z"],
        ),
        (
            "restore-validator.sh",
            &["--state-dir", "/tmp/x", "--bogus"],
        ),
        (
            "restore-validator.sh",
            &["--state-dir", "/tmp/x", "--backup-time", "yesterday"],
        ),
        (
            "restore-validator.sh",
            &[
                "--state-dir",
                "/tmp/x",
                "--db-url",
                "postgresql://u:secret@h/db",
            ],
        ),
        (
            "restore-integration-db.sh",
            &["--state-dir", "/tmp/canton-dr-no-such-dir-x", "--ttl", "1h"],
        ),
    ];
    for (name, args) in cases {
        let out = Command::new(script(name))
            .args(args)
            .env("CANTON_ADMIN_API", "127.0.0.1:1")
            .env("CANTON_LEDGER_API", "127.0.0.1:1")
            .env("CANTON_DR_BIN_DIR", bin_dir())
            .env_remove("CANTON_DR_REASON")
            .stdin(Stdio::null())
            .output()
            .expect("runbook");
        assert_eq!(
            end(&out),
            End::Code(2),
            "{name} {args:?}: {}",
            describe(&out)
        );
        let err = last_of(&out, "error");
        assert_eq!(err["status"], "usage-error");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("secret") && !String::from_utf8_lossy(&out.stdout).contains("secret")
        );
    }
    assert!(!Path::new("/tmp/canton-dr-no-such-dir-x").exists());
}

/// Runbook B's end state, normalized.
fn db_restore_snapshot(w: &World, result: &Value) -> Value {
    w.caught_up();
    let status = |wid: &str| {
        w.query(&format!(
        "SELECT coalesce((SELECT status || '/' || needs_reconciliation FROM canton_integration.withdrawals \
         WHERE withdrawal_id = '{wid}'), 'absent')"
    ))
    };
    let gate = w.query(
        "SELECT frozen, thawed_at IS NOT NULL, tsafe IS NOT NULL FROM canton_integration.withdrawal_gate",
    );
    let chain = w.treasury_update_ids();
    let ingested = w.ingested_update_ids();
    json!({
        "status": result["status"],
        "gate": gate,
        "automationRunning": !w.path("automation.stopped").exists(),
        "tSafeBeforeThaw": result["values"]["tSafe"].as_str() <= result["values"]["thawedAt"].as_str(),
        "wb-done": status("wb-done"),
        "wb-inflight": status("wb-inflight"),
        "wb-lost": status("wb-lost"),
        "wb-never-submitted": status("wb-never-submitted"),
        "missingUpdates": chain.difference(&ingested).count(),
        "unknownUpdates": ingested.difference(&chain).count(),
    })
}

fn expected_db_restore_snapshot() -> Value {
    json!({
        "status": "ok",
        "gate": "f|t|t",
        "automationRunning": true,
        "tSafeBeforeThaw": true,
        "wb-done": "completed/false",
        "wb-inflight": "completed/false",
        "wb-lost": "recovered/true",
        "wb-never-submitted": "absent",
        "missingUpdates": 0,
        "unknownUpdates": 0,
    })
}

#[test]
fn integration_db_restore_uninterrupted_reaches_the_end_state() {
    let w = World::new(WorldOptions::default());
    w.prepare_db_restore();
    let out = w.runbook_b("state", &[], None);
    assert_eq!(end(&out), End::Code(0), "{}", describe(&out));
    let result = last_of(&out, "result");
    let v = &result["values"];
    assert!(
        v["frozenAt"].is_string() && v["refrozenAt"].is_string(),
        "{v}"
    );
    assert!(v["refrozenAt"].as_str() > v["frozenAt"].as_str());
    // tSafe covers the requests the restore lost: at least the first freeze + ttl.
    assert!(v["tSafe"].as_str() >= v["preRestoreTSafe"].as_str(), "{v}");
    assert_eq!(v["passed"], true);
    assert_eq!(
        db_restore_snapshot(&w, &result),
        expected_db_restore_snapshot()
    );
    let counts = step_counts(&w.journal("state"));
    assert!(
        counts
            .iter()
            .all(|(_, started, done)| *started == 1 && *done == 1),
        "{counts:?}"
    );
}

#[test]
fn integration_db_restore_killed_at_every_step_reaches_the_same_end_state() {
    let w = World::new(WorldOptions::default());
    w.prepare_db_restore();
    for step in B_STEPS {
        let killed = w.runbook_b("state", &[], Some(&format!("{step}:before")));
        assert_eq!(
            end(&killed),
            End::Signal(9),
            "{step}:before {}",
            describe(&killed)
        );
        if step == "B3" {
            let failed = w.runbook_b("state", &[], Some("B3:fail"));
            assert_eq!(end(&failed), End::Code(3), "{}", describe(&failed));
        }
        let killed = w.runbook_b("state", &[], Some(&format!("{step}:after")));
        assert_eq!(
            end(&killed),
            End::Signal(9),
            "{step}:after {}",
            describe(&killed)
        );
        if step == "B1" {
            let interrupted = w.runbook_b("state", &[], Some("B1:interrupt"));
            assert_eq!(
                end(&interrupted),
                End::Code(130),
                "{}",
                describe(&interrupted)
            );
        }
    }
    // Reruns need neither the reason nor the ttl again: the journal has them.
    let state = w.path("state").display().to_string();
    let env_sh = w.path("env.sh").display().to_string();
    let restore = format!("bash {env_sh} restore-db");
    let start = format!("rm -f {}", w.path("automation.stopped").display());
    let out = w.runbook(
        "restore-integration-db.sh",
        &[
            "--state-dir",
            &state,
            "--restore-cmd",
            &restore,
            "--start-cmd",
            &start,
        ],
        None,
    );
    assert_eq!(end(&out), End::Code(0), "{}", describe(&out));
    let result = last_of(&out, "result");
    assert_eq!(
        db_restore_snapshot(&w, &result),
        expected_db_restore_snapshot()
    );
    let counts = step_counts(&w.journal("state"));
    let expected: Vec<(String, usize, usize)> = B_STEPS
        .iter()
        .map(|s| {
            let extra = usize::from(*s == "B1" || *s == "B3");
            (s.to_string(), 3 + extra, 1)
        })
        .collect();
    assert_eq!(counts, expected);
    // The freeze kept its first time through every rerun of B1.
    let frozen: Vec<Value> = w
        .journal("state")
        .into_iter()
        .filter(|r| r["step"] == "B1" && r["status"] == "done")
        .collect();
    assert_eq!(
        frozen[0]["values"]["gateChanged"], false,
        "B1's freeze was redone as a no-op"
    );
}

#[test]
fn integration_db_restore_dry_run_prints_the_plan_and_changes_nothing() {
    let w = World::new(WorldOptions::default());
    w.prepare_db_restore();
    let out = w.runbook_b("state", &["--dry-run"], None);
    assert_eq!(end(&out), End::Code(0), "{}", describe(&out));
    let steps: Vec<Value> = lines(&out.stdout)
        .into_iter()
        .filter(|v| v["type"] == "step")
        .collect();
    assert_eq!(
        steps
            .iter()
            .map(|s| (s["step"].clone(), s["status"].clone()))
            .collect::<Vec<_>>(),
        B_STEPS
            .iter()
            .map(|s| (json!(s), json!("planned")))
            .collect::<Vec<_>>()
    );
    assert!(
        steps[0]["values"]["preRestoreTSafe"].is_string(),
        "{}",
        steps[0]
    );
    assert!(!w.path("state").exists());
    assert_eq!(
        w.query("SELECT count(*) FROM canton_integration.withdrawal_gate WHERE frozen"),
        "0"
    );
    assert!(
        !w.path("automation.stopped").exists(),
        "the stop hook did not run"
    );
    // The lost withdrawal's request is still there: nothing was restored.
    assert_eq!(
        w.query("SELECT status FROM canton_integration.withdrawals WHERE withdrawal_id = 'wb-never-submitted'"),
        "requested"
    );
}

#[test]
fn integration_db_restore_with_the_db_lost_freezes_the_restored_db() {
    let w = World::new(WorldOptions::default());
    w.prepare_db_restore();
    let out = w.runbook_b("state", &["--db-lost"], None);
    assert_eq!(end(&out), End::Code(0), "{}", describe(&out));
    let result = last_of(&out, "result");
    let journal = w.journal("state");
    let b1 = journal
        .iter()
        .find(|r| r["step"] == "B1" && r["status"] == "done")
        .expect("B1 done");
    // B1 could not write the lost database: only the automation was stopped.
    assert_eq!(b1["values"]["dbLost"], true);
    assert_eq!(b1["values"]["frozenAt"], Value::Null);
    assert_eq!(b1["values"]["stopCmdExitCode"], 0);
    assert_eq!(
        b1["commands"][0].as_str().map(|c| c.starts_with("touch ")),
        Some(true)
    );
    // tSafe then comes from the freeze of the restored database.
    assert_eq!(result["values"]["tSafeFrom"], "restored");
    assert_eq!(
        db_restore_snapshot(&w, &result),
        expected_db_restore_snapshot()
    );
}
