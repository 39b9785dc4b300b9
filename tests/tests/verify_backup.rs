//! End-to-end tests of `scripts/backup-manifest.sh` and `scripts/verify-backup.sh`:
//! the real scripts, the real tools (dar-sync, ingest-ctl, offset-lookup,
//! tx-ingest), a real PostgreSQL (one shared throwaway cluster, one database per
//! test) and the `canton-sim` participant. Each test takes a backup set the way
//! an operator does (validator-app dump, participant dump = `canton-sim backup`,
//! Integration DB dump = `pg_dump -Fc`), records its manifest, and checks what
//! `verify-backup.sh` reports — and that its exit code agrees with its JSON.
//!
//! The Integration DB test restore (a throwaway cluster each time, a few
//! seconds) runs in the tests about it; the others pass
//! `--skip integration-db-restore` to keep the suite quick.

use canton_dr_cli::time::format_record_time;
use canton_dr_testkit::{PgCluster, TestDb, cargo_bin, fresh_database};
use chrono::{DateTime, Duration, Utc};
use daml_dar::{DarBuilder, sha256_hex};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use tempfile::TempDir;

const SKIP_RESTORE: [&str; 2] = ["--skip", "integration-db-restore"];

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(name)
}

/// Where the workspace binaries are (the scripts' `CANTON_DR_BIN_DIR`).
fn bin_dir() -> PathBuf {
    cargo_bin("dar-sync")
        .parent()
        .expect("binary directory")
        .to_path_buf()
}

/// `pg_dump` of the newest installed PostgreSQL (the version pg-tmp.sh runs),
/// else the one on PATH.
fn pg_dump() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin/pg_dump"))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    found.sort_by_key(|p| {
        p.components()
            .nth(4)
            .and_then(|c| c.as_os_str().to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().unwrap_or_else(|| PathBuf::from("pg_dump"))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    format_record_time(t)
}

fn stdout_json(out: &Output, what: &str) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_else(|| {
            panic!(
                "{what} printed nothing on stdout; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "{what} printed no JSON ({e}): {line}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A running `canton-sim serve`; stopped on drop.
struct Sim {
    child: Child,
    // Kept open: the simulator must not get EPIPE on its stdout.
    _stdout: BufReader<ChildStdout>,
    state_dir: PathBuf,
    admin: String,
    ledger: String,
    control: String,
    treasury: String,
}

impl Sim {
    fn start(state_dir: &Path, args: &[&str]) -> Sim {
        let mut child = Command::new(cargo_bin("canton-sim"))
            .args(["--output", "json", "serve", "--state-dir"])
            .arg(state_dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn canton-sim");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the ready line");
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("canton-sim ready line {line:?}: {e}"));
        assert_eq!(ready["type"], "ready", "{ready}");
        let s = |k: &str| ready[k].as_str().expect(k).to_string();
        Sim {
            admin: s("adminApi"),
            ledger: s("ledgerApi"),
            control: s("controlApi"),
            treasury: s("treasuryParty"),
            state_dir: state_dir.to_path_buf(),
            _stdout: stdout,
            child,
        }
    }

    fn ctl(&self, args: &[&str]) -> Value {
        let out = Command::new(cargo_bin("canton-sim"))
            .args(["--output", "json", "ctl", "--control-api", &self.control])
            .args(args)
            .output()
            .expect("run canton-sim ctl");
        assert!(
            out.status.success(),
            "canton-sim ctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout_json(&out, "canton-sim ctl")
    }

    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        for _ in 0..200 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The start and end of the two validator dumps, as the operator's backup job
/// would pass them to backup-manifest.sh.
#[derive(Clone, Copy)]
struct DumpTimes {
    app_start: DateTime<Utc>,
    app_end: DateTime<Utc>,
    participant_start: DateTime<Utc>,
    participant_end: DateTime<Utc>,
}

impl DumpTimes {
    /// App dump from `base` to +1 min, participant dump from +2 min to +3 min.
    fn in_order(base: DateTime<Utc>) -> DumpTimes {
        DumpTimes {
            app_start: base,
            app_end: base + Duration::minutes(1),
            participant_start: base + Duration::minutes(2),
            participant_end: base + Duration::minutes(3),
        }
    }

    fn args(&self) -> Vec<String> {
        [
            ("--validator-app-started-at", self.app_start),
            ("--validator-app-finished-at", self.app_end),
            ("--participant-started-at", self.participant_start),
            ("--participant-finished-at", self.participant_end),
        ]
        .iter()
        .flat_map(|(flag, t)| [flag.to_string(), rfc3339(*t)])
        .collect()
    }
}

/// One backup set on disk.
struct Backup {
    validator_app: PathBuf,
    participant: PathBuf,
    integration_db: PathBuf,
}

/// One verify-backup.sh run.
struct Run {
    code: i32,
    report: Value,
    stderr: String,
}

impl Run {
    fn status(&self) -> &str {
        self.report["status"].as_str().unwrap_or("")
    }

    fn check(&self, name: &str) -> &Value {
        self.report["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["check"] == name))
            .unwrap_or_else(|| panic!("no check {name} in {}", self.report))
    }

    fn check_status(&self, name: &str) -> &str {
        self.check(name)["status"].as_str().unwrap_or("")
    }

    /// The exit code is the JSON's, and the one its status calls for.
    fn assert_agrees(&self, fail_on_warn: bool) {
        assert_eq!(
            Some(i64::from(self.code)),
            self.report["exitCode"].as_i64(),
            "exit code and JSON exitCode disagree: {}\n{}",
            self.report,
            self.stderr
        );
        let want = match self.status() {
            "ok" => 0,
            "warn" if fail_on_warn => 1,
            "warn" => 0,
            "fail" | "unknown" => 1,
            "unavailable" => 3,
            other => panic!("unexpected status {other:?}: {}", self.report),
        };
        assert_eq!(
            self.code,
            want,
            "status {} needs exit {want}: {}\n{}",
            self.status(),
            self.report,
            self.stderr
        );
    }
}

/// A node with traffic ingested into its own Integration DB, and a DAR
/// uploaded (and recorded in the registry) before any backup.
struct Fixture {
    tmp: TempDir,
    db: TestDb,
    sim: Sim,
    dar_id: String,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().expect("temp dir");
        let db = fresh_database(PgCluster::shared());
        let sim = Sim::start(&tmp.path().join("node"), &[]);
        let f = Fixture {
            dar_id: String::new(),
            tmp,
            db,
            sim,
        };
        f.tool("ingest-ctl", &["migrate"]);
        f.sim
            .ctl(&["traffic", "--deposits", "3", "--withdrawals", "1"]);
        f.tool(
            "tx-ingest",
            &[
                "--once",
                "--treasury-party",
                &f.sim.treasury,
                "--ledger-api",
                &f.sim.ledger,
            ],
        );
        // Uploaded an hour before any backup of these tests.
        let dar_id = f.upload_dar("backup-test-token", "1.0.0");
        f.backdate_dar(
            &dar_id,
            "backup-test-token",
            Utc::now() - Duration::hours(1),
        );
        Fixture { dar_id, ..f }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// The environment every tool and script gets: this test's database and node.
    fn env(&self, cmd: &mut Command) {
        for var in [
            "PGHOST",
            "PGPORT",
            "PGUSER",
            "PGDATABASE",
            "PGPASSWORD",
            "PGSSLMODE",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("INTEGRATION_DB_URL", &self.db.url)
            .env("CANTON_ADMIN_API", &self.sim.admin)
            .env("CANTON_DR_BIN_DIR", bin_dir())
            .env("CANTON_DR_OUTPUT", "json")
            .env("INGESTER_NAME", "tx-ingest")
            .stdin(Stdio::null());
    }

    /// Runs a workspace binary that must succeed.
    fn tool(&self, name: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(cargo_bin(name));
        cmd.args(args);
        self.env(&mut cmd);
        let out = cmd.output().expect("run tool");
        assert!(
            out.status.success(),
            "{name} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Builds a DAR and uploads it with dar-sync (which records it in the
    /// registry with uploaded_at = now); returns its main package id.
    fn upload_dar(&self, name: &str, version: &str) -> String {
        let dir = self.path(&format!("dars-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let dar = DarBuilder::new(name, version).build();
        dar.write_to(dir.join(format!("{name}.dar"))).unwrap();
        self.tool("dar-sync", &["upload", "--dir", dir.to_str().unwrap()]);
        dar.main_package_id
    }

    /// Moves the registry's upload time of an uploaded DAR back to `at`
    /// (`dar-sync record` keeps the earlier of the two times).
    fn backdate_dar(&self, main_package_id: &str, name: &str, at: DateTime<Utc>) {
        let path = self.path(&format!("dars-{name}/{name}.dar"));
        let out = self.tool(
            "dar-sync",
            &[
                "record",
                "--uploaded-at",
                &rfc3339(at),
                path.to_str().unwrap(),
            ],
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(main_package_id),
            "dar-sync record did not record {main_package_id}"
        );
    }

    /// Records a DAR in the registry as uploaded at `at`, without uploading it.
    fn record_dar(&self, name: &str, at: DateTime<Utc>) -> String {
        let path = self.path(&format!("{name}.dar"));
        let dar = DarBuilder::new(name, "2.0.0").build();
        dar.write_to(&path).unwrap();
        self.tool(
            "dar-sync",
            &[
                "record",
                "--uploaded-at",
                &rfc3339(at),
                path.to_str().unwrap(),
            ],
        );
        dar.main_package_id
    }

    /// Takes a backup set into directory `name`: the validator-app dump (a
    /// stand-in file), the participant dump (`canton-sim backup`) and the
    /// Integration DB dump (`pg_dump -Fc`).
    fn take_backup(&self, name: &str) -> Backup {
        let dir = self.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        let validator_app = dir.join("validator.dump");
        std::fs::write(&validator_app, format!("validator app DB dump {name}\n")).unwrap();
        let participant = dir.join("participant");
        let out = Command::new(cargo_bin("canton-sim"))
            .args(["--output", "json", "backup", "--state-dir"])
            .arg(&self.sim.state_dir)
            .arg("--to")
            .arg(&participant)
            .output()
            .expect("run canton-sim backup");
        assert!(
            out.status.success(),
            "canton-sim backup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let integration_db = dir.join("integration.dump");
        self.dump_database(&self.db.name, &integration_db);
        Backup {
            validator_app,
            participant,
            integration_db,
        }
    }

    fn dump_database(&self, database: &str, to: &Path) {
        let cluster = PgCluster::shared();
        let out = Command::new(pg_dump())
            .args(["-Fc", "-h", "127.0.0.1", "-U", "postgres"])
            .args(["-p", &cluster.port().to_string(), "-d", database, "-f"])
            .arg(to)
            .output()
            .expect("run pg_dump");
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs backup-manifest.sh over `backup` with `times`, writing into
    /// `<backup dir>/manifests`; returns (exit code, stdout JSON).
    fn manifest_run(&self, backup: &Backup, times: DumpTimes, extra: &[&str]) -> (i32, Value) {
        let mut cmd = Command::new("bash");
        cmd.arg(script("backup-manifest.sh"))
            .arg("--validator-app-dump")
            .arg(&backup.validator_app)
            .arg("--participant-dump")
            .arg(&backup.participant)
            .arg("--integration-db-dump")
            .arg(&backup.integration_db)
            .args(times.args())
            .args(extra);
        self.env(&mut cmd);
        let out = cmd.output().expect("run backup-manifest.sh");
        let json = stdout_json(&out, "backup-manifest.sh");
        (out.status.code().unwrap_or(-1), json)
    }

    /// Writes the manifest of `backup` (must succeed); returns its path.
    fn manifest(&self, backup: &Backup, times: DumpTimes) -> PathBuf {
        let dir = backup.validator_app.parent().unwrap().join("manifests");
        std::fs::create_dir_all(&dir).unwrap();
        let (code, json) = self.manifest_run(backup, times, &["--out-dir", dir.to_str().unwrap()]);
        assert_eq!(code, 0, "backup-manifest.sh failed: {json}");
        assert_eq!(json["status"], "ok", "{json}");
        PathBuf::from(json["path"].as_str().expect("manifest path"))
    }

    /// A backup taken now, recorded with the dump times `times`, and its manifest.
    fn backup_with_manifest(&self, name: &str, times: DumpTimes) -> (Backup, PathBuf) {
        let backup = self.take_backup(name);
        let manifest = self.manifest(&backup, times);
        (backup, manifest)
    }

    fn verify(&self, manifest: &Path, args: &[&str]) -> Run {
        let mut cmd = Command::new("bash");
        cmd.arg(script("verify-backup.sh"))
            .arg("--manifest")
            .arg(manifest)
            .args(args);
        self.env(&mut cmd);
        let out = cmd.output().expect("run verify-backup.sh");
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            report: stdout_json(&out, "verify-backup.sh"),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert_eq!(
            run.report["kind"], "CantonDrBackupVerification",
            "{}",
            run.report
        );
        run.assert_agrees(args.contains(&"--fail-on-warn"));
        run
    }
}

fn minutes_ago(m: i64) -> DateTime<Utc> {
    Utc::now() - Duration::minutes(m)
}

/// `name{labels} value` lines of a Prometheus textfile, as (series, value).
fn metrics(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("series and value");
            (series.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

fn metric(text: &str, series: &str) -> Option<f64> {
    metrics(text)
        .into_iter()
        .find(|(s, _)| s == series)
        .map(|(_, v)| v)
}

fn read(path: &Path) -> String {
    let mut s = String::new();
    std::fs::File::open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
        .read_to_string(&mut s)
        .unwrap();
    s
}

#[test]
fn good_backup_passes_every_check_and_the_textfile_keeps_the_last_success() {
    let f = Fixture::new();
    let (_backup, manifest) = f.backup_with_manifest("b1", DumpTimes::in_order(minutes_ago(10)));
    let report_file = f.path("verify.json");
    let textfile = f.path("canton_dr_backup.prom");
    let run = f.verify(
        &manifest,
        &[
            "--report",
            report_file.to_str().unwrap(),
            "--textfile",
            textfile.to_str().unwrap(),
        ],
    );
    assert_eq!(run.status(), "ok", "{}\n{}", run.report, run.stderr);
    assert_eq!(run.code, 0);
    for check in [
        "manifest",
        "backup-files",
        "backup-age",
        "restore-window",
        "dump-order",
        "dars-covered",
        "integration-db-restore",
        "checkpoint-lookup",
    ] {
        assert_eq!(
            run.check_status(check),
            "ok",
            "{check}: {}",
            run.check(check)
        );
    }
    assert_eq!(run.report["summary"]["ran"], 7);
    assert_eq!(run.report["summary"]["skipped"], 0);
    let age = run.report["backupAgeSeconds"].as_i64().unwrap();
    assert!((599..=900).contains(&age), "age {age}");

    // The DAR uploaded before the backup is in it; nothing was uploaded after.
    let dars = &run.check("dars-covered")["details"];
    assert_eq!(dars["inManifest"], 1, "{dars}");
    assert_eq!(dars["uploadedAfterBackup"], 0, "{dars}");

    // The restored dump's last transaction is the live one (nothing was
    // ingested since), and the node resolves its record time to its offset.
    let last = stdout_json(&f.tool("ingest-ctl", &["last"]), "ingest-ctl last");
    let restored = &run.check("integration-db-restore")["details"];
    assert_eq!(
        restored["lastTransaction"]["recordTime"],
        last["recordTime"]
    );
    assert!(restored["checkpoint"]["offset"].as_i64().unwrap() >= last["offset"].as_i64().unwrap());
    let lookup = &run.check("checkpoint-lookup")["details"];
    assert_eq!(lookup["source"], "restored-integration-db");
    assert_eq!(lookup["offset"], last["offset"], "{lookup}");

    // --report holds the same report as stdout.
    let from_file: Value = serde_json::from_str(&read(&report_file)).unwrap();
    assert_eq!(from_file, run.report);

    // The textfile: success now, the age, one gauge per check.
    let prom = read(&textfile);
    assert!(prom.ends_with('\n'), "textfile must end with a newline");
    let checked_at = run.report["checkedAtUnix"].as_f64().unwrap();
    assert_eq!(
        metric(&prom, "canton_dr_verify_last_success_timestamp_seconds"),
        Some(checked_at)
    );
    assert_eq!(
        metric(&prom, "canton_dr_backup_age_seconds"),
        Some(age as f64)
    );
    assert_eq!(metric(&prom, "canton_dr_verify_exit_code"), Some(0.0));
    assert_eq!(metric(&prom, "canton_dr_verify_checks_run"), Some(7.0));
    assert_eq!(
        metric(
            &prom,
            r#"canton_dr_verify_check{check="checkpoint-lookup"}"#
        ),
        Some(1.0)
    );
    assert!(prom.contains("# TYPE canton_dr_backup_age_seconds gauge"));

    // A later failing run (limit 1 s) keeps the last success, so that a
    // dead-man alert on it fires; the failed check reads 0, the skipped one
    // has no gauge.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let mut args = vec!["--max-age", "1s", "--textfile", textfile.to_str().unwrap()];
    args.extend(SKIP_RESTORE);
    let failed = f.verify(&manifest, &args);
    assert_eq!(failed.status(), "fail");
    assert_eq!(failed.code, 1);
    let prom = read(&textfile);
    assert_eq!(
        metric(&prom, "canton_dr_verify_last_success_timestamp_seconds"),
        Some(checked_at),
        "{prom}"
    );
    assert!(metric(&prom, "canton_dr_verify_last_run_timestamp_seconds").unwrap() > checked_at);
    assert_eq!(metric(&prom, "canton_dr_verify_exit_code"), Some(1.0));
    assert_eq!(
        metric(&prom, r#"canton_dr_verify_check{check="backup-age"}"#),
        Some(0.0)
    );
    assert_eq!(
        metric(
            &prom,
            r#"canton_dr_verify_check{check="integration-db-restore"}"#
        ),
        None
    );
    assert_eq!(
        metric(
            &prom,
            r#"canton_dr_verify_check_skipped{check="integration-db-restore"}"#
        ),
        Some(1.0)
    );
}

#[test]
fn manifest_records_the_dumps_the_dars_and_the_checkpoint() {
    let f = Fixture::new();
    let backup = f.take_backup("b1");
    let times = DumpTimes::in_order(minutes_ago(10));
    let manifest_path = f.manifest(&backup, times);
    let m: Value = serde_json::from_str(&read(&manifest_path)).unwrap();

    assert_eq!(m["kind"], "CantonDrBackupManifest");
    assert_eq!(m["schemaVersion"], 1);
    assert_eq!(m["backupTime"], rfc3339(times.app_start));
    assert_eq!(
        manifest_path.file_name().unwrap().to_str().unwrap(),
        format!("backup-manifest-{}.json", m["backupId"].as_str().unwrap())
    );

    let app = &m["artifacts"]["validatorApp"];
    let bytes = std::fs::read(&backup.validator_app).unwrap();
    assert_eq!(app["sha256"], sha256_hex(&bytes));
    assert_eq!(app["size"], bytes.len());
    assert_eq!(app["type"], "file");
    assert_eq!(app["finishedAt"], rfc3339(times.app_end));
    assert_eq!(app["startedAtSource"], "flag");
    let participant = &m["artifacts"]["participant"];
    assert_eq!(participant["type"], "directory");
    assert_eq!(participant["startedAt"], rfc3339(times.participant_start));
    let idb = &m["artifacts"]["integrationDb"];
    assert_eq!(idb["format"], "custom");
    assert_eq!(idb["finishedAtSource"], "mtime");
    assert_eq!(
        idb["sha256"],
        sha256_hex(&std::fs::read(&backup.integration_db).unwrap())
    );

    // The node's DARs: ours and the built-in one.
    let ids: Vec<&str> = m["dars"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["mainPackageId"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&f.dar_id.as_str()), "{ids:?}");
    assert!(
        m["dars"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["builtin"] == true),
        "{}",
        m["dars"]
    );

    // The checkpoint: what ingest-ctl reads now.
    let last = stdout_json(&f.tool("ingest-ctl", &["last"]), "ingest-ctl last");
    assert_eq!(m["ingestion"]["ingester"], "tx-ingest");
    assert_eq!(m["ingestion"]["lastTransaction"]["offset"], last["offset"]);
    assert_eq!(
        m["ingestion"]["lastTransaction"]["recordTime"],
        last["recordTime"]
    );
    assert_eq!(m["warnings"], serde_json::json!([]));

    // A rerun rewrites the same file; a dry run writes nothing.
    let again = f.manifest(&backup, times);
    assert_eq!(again, manifest_path);
    let dry_out = f.path("dry.json");
    let (code, json) = f.manifest_run(
        &backup,
        times,
        &["--dry-run", "--out", dry_out.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["dryRun"], true);
    assert_eq!(json["manifest"]["backupTime"], m["backupTime"]);
    assert!(!dry_out.exists(), "a dry run must write nothing");

    // What the script prints is accepted as a manifest too.
    let printed = f.path("printed.json");
    std::fs::write(&printed, json.to_string()).unwrap();
    let run = f.verify(&printed, &SKIP_RESTORE);
    assert_eq!(run.status(), "ok", "{}", run.report);
    assert_eq!(run.report["backupTime"], m["backupTime"]);

    // Mis-ordered dumps are recorded, with a warning.
    let bad = DumpTimes {
        app_end: times.participant_start + Duration::seconds(1),
        ..times
    };
    let (code, json) = f.manifest_run(&backup, bad, &["--dry-run"]);
    assert_eq!(code, 0, "{json}");
    let warnings = json["manifest"]["warnings"].to_string();
    assert!(warnings.contains("app before participant"), "{warnings}");
}

#[test]
fn manifest_refuses_bad_input_and_an_unreachable_node_and_writes_nothing() {
    let f = Fixture::new();
    let backup = f.take_backup("b1");
    let times = DumpTimes::in_order(minutes_ago(10));
    let out = f.path("m.json");
    let out_arg = out.to_str().unwrap();

    std::fs::remove_file(&backup.validator_app).unwrap();
    let (code, json) = f.manifest_run(&backup, times, &["--out", out_arg]);
    assert_eq!(code, 2, "{json}");
    assert_eq!(json["status"], "usage-error");
    assert!(
        json["error"].as_str().unwrap().contains("does not exist"),
        "{json}"
    );
    std::fs::write(&backup.validator_app, "app dump\n").unwrap();

    let (code, json) = f.manifest_run(
        &backup,
        times,
        &["--out", out_arg, "--validator-app-started-at", "yesterday"],
    );
    assert_eq!(code, 2, "{json}");
    assert!(
        json["error"].as_str().unwrap().contains("RFC 3339"),
        "{json}"
    );

    let (code, json) = f.manifest_run(
        &backup,
        times,
        &[
            "--out",
            out_arg,
            "--db-url",
            "postgresql://app:secret@127.0.0.1/x",
        ],
    );
    assert_eq!(code, 2, "{json}");
    assert!(!json.to_string().contains("secret"), "{json}");

    let (code, json) = f.manifest_run(
        &backup,
        times,
        &["--out", out_arg, "--admin-api", "127.0.0.1:1"],
    );
    assert_eq!(code, 3, "{json}");
    assert_eq!(json["status"], "unavailable");
    assert!(!out.exists(), "no manifest may be written after a failure");
}

#[test]
fn stale_backups_fail_and_an_ageing_one_warns() {
    let f = Fixture::new();
    // Five hours old: over the 4-hour cadence, well inside 30 days.
    let (_b, manifest) = f.backup_with_manifest("stale", DumpTimes::in_order(minutes_ago(5 * 60)));
    let run = f.verify(&manifest, &SKIP_RESTORE);
    assert_eq!(run.status(), "fail");
    assert_eq!(run.code, 1);
    assert_eq!(run.check_status("backup-age"), "fail");
    assert_eq!(run.check_status("restore-window"), "ok");
    assert_eq!(run.check_status("integration-db-restore"), "skipped");
    assert!(
        run.check("backup-age")["message"]
            .as_str()
            .unwrap()
            .contains("over the limit of 4h"),
        "{}",
        run.check("backup-age")
    );

    // 26 days: warn (exit 0, or 1 with --fail-on-warn) when the cadence limit allows it.
    let (_b, manifest) =
        f.backup_with_manifest("ageing", DumpTimes::in_order(minutes_ago(26 * 24 * 60)));
    let mut args = vec!["--max-age", "40d"];
    args.extend(SKIP_RESTORE);
    let run = f.verify(&manifest, &args);
    assert_eq!(run.status(), "warn", "{}", run.report);
    assert_eq!(run.code, 0);
    assert_eq!(run.check_status("restore-window"), "warn");
    args.push("--fail-on-warn");
    let run = f.verify(&manifest, &args);
    assert_eq!(run.status(), "warn");
    assert_eq!(run.code, 1);

    // 31 days: a participant restored from it could not catch up.
    let (_b, manifest) =
        f.backup_with_manifest("expired", DumpTimes::in_order(minutes_ago(31 * 24 * 60)));
    let mut args = vec!["--max-age", "40d"];
    args.extend(SKIP_RESTORE);
    let run = f.verify(&manifest, &args);
    assert_eq!(run.status(), "fail");
    assert_eq!(run.code, 1);
    assert_eq!(run.check_status("restore-window"), "fail");
}

#[test]
fn app_dump_after_participant_dump_fails() {
    let f = Fixture::new();
    let base = minutes_ago(30);
    // The app dump runs from base to +3 min, the participant dump from +1 to +2.
    let times = DumpTimes {
        app_start: base,
        app_end: base + Duration::minutes(3),
        participant_start: base + Duration::minutes(1),
        participant_end: base + Duration::minutes(2),
    };
    let (_b, manifest) = f.backup_with_manifest("misordered", times);
    let run = f.verify(&manifest, &SKIP_RESTORE);
    assert_eq!(run.status(), "fail");
    assert_eq!(run.code, 1);
    assert_eq!(run.check_status("dump-order"), "fail");
    for ok in [
        "backup-files",
        "backup-age",
        "dars-covered",
        "checkpoint-lookup",
    ] {
        assert_eq!(run.check_status(ok), "ok", "{ok}: {}", run.check(ok));
    }
    // Ending the very microsecond the participant dump starts is not "before".
    let ordered = DumpTimes::in_order(base);
    let touching = DumpTimes {
        app_end: ordered.participant_start,
        ..ordered
    };
    let (_b, manifest) = f.backup_with_manifest("touching", touching);
    let run = f.verify(&manifest, &SKIP_RESTORE);
    assert_eq!(
        run.check_status("dump-order"),
        "fail",
        "{}",
        run.check("dump-order")
    );
}

#[test]
fn missing_or_changed_backup_files_fail() {
    let f = Fixture::new();
    let (backup, manifest) = f.backup_with_manifest("b1", DumpTimes::in_order(minutes_ago(10)));

    let saved = std::fs::read(&backup.validator_app).unwrap();
    std::fs::remove_file(&backup.validator_app).unwrap();
    let run = f.verify(&manifest, &SKIP_RESTORE);
    assert_eq!(run.status(), "fail");
    assert_eq!(run.code, 1);
    assert_eq!(run.check_status("backup-files"), "fail");
    assert!(
        run.check("backup-files")["message"]
            .as_str()
            .unwrap()
            .contains("validatorApp dump"),
        "{}",
        run.check("backup-files")
    );
    std::fs::write(&backup.validator_app, &saved).unwrap();

    // Same size, other bytes: caught by sha256, not by --no-hash.
    let mut bytes = std::fs::read(&backup.integration_db).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&backup.integration_db, &bytes).unwrap();
    let run = f.verify(&manifest, &SKIP_RESTORE);
    assert_eq!(run.check_status("backup-files"), "fail");
    assert!(
        run.check("backup-files")["message"]
            .as_str()
            .unwrap()
            .contains("sha256"),
        "{}",
        run.check("backup-files")
    );
    let mut args = vec!["--no-hash"];
    args.extend(SKIP_RESTORE);
    let run = f.verify(&manifest, &args);
    assert_eq!(run.check_status("backup-files"), "ok", "{}", run.report);
    assert_eq!(run.status(), "ok");

    // A manifest that is not there at all.
    let run = f.verify(&f.path("no-such-manifest.json"), &[]);
    assert_eq!(run.status(), "fail");
    assert_eq!(run.code, 1);
    assert_eq!(run.check_status("manifest"), "fail");
    assert_eq!(run.report["summary"]["ran"], 0);
}

#[test]
fn registry_dar_missing_from_the_backup_fails_and_later_uploads_do_not() {
    let f = Fixture::new();
    let times = DumpTimes::in_order(minutes_ago(10));
    let (_b, manifest) = f.backup_with_manifest("b1", times);

    // Uploaded after the backup: runbook A re-uploads it (dar-sync --since).
    f.upload_dar("after-backup-token", "1.0.0");
    let run = f.verify(&manifest, &SKIP_RESTORE);
    assert_eq!(run.check_status("dars-covered"), "ok", "{}", run.report);
    assert_eq!(
        run.check("dars-covered")["details"]["uploadedAfterBackup"],
        1
    );
    assert_eq!(run.status(), "ok");

    // Recorded as uploaded before the backup, but not in its DAR list: a
    // restore would lose it for good.
    let lost = f.record_dar("lost-token", times.app_start - Duration::minutes(5));
    let run = f.verify(&manifest, &SKIP_RESTORE);
    assert_eq!(run.status(), "fail");
    assert_eq!(run.code, 1);
    let dars = run.check("dars-covered");
    assert_eq!(dars["status"], "fail");
    let not_in_backup: Vec<&str> = dars["details"]["notInBackup"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["mainPackageId"].as_str().unwrap())
        .collect();
    assert_eq!(not_in_backup, vec![lost.as_str()]);
    assert!(
        dars["message"].as_str().unwrap().contains("lost-token"),
        "{dars}"
    );
}

#[test]
fn zero_checks_is_unknown_never_success() {
    let f = Fixture::new();
    let (_b, manifest) = f.backup_with_manifest("b1", DumpTimes::in_order(minutes_ago(10)));
    let textfile = f.path("t.prom");
    let mut args = vec!["--textfile", textfile.to_str().unwrap()];
    for check in [
        "backup-files",
        "backup-age",
        "restore-window",
        "dump-order",
        "dars-covered",
        "integration-db-restore",
        "checkpoint-lookup",
    ] {
        args.extend(["--skip", check]);
    }
    let run = f.verify(&manifest, &args);
    assert_eq!(run.status(), "unknown", "{}", run.report);
    assert_ne!(run.code, 0);
    assert_eq!(run.report["summary"]["ran"], 0);
    let prom = read(&textfile);
    assert_eq!(metric(&prom, "canton_dr_verify_checks_run"), Some(0.0));
    assert_eq!(
        metric(&prom, "canton_dr_verify_last_success_timestamp_seconds"),
        Some(0.0),
        "never succeeded: {prom}"
    );

    // Without a live node the live checks are skipped, not ok.
    let mut cmd = Command::new("bash");
    cmd.arg(script("verify-backup.sh"))
        .arg("--manifest")
        .arg(&manifest)
        .args(SKIP_RESTORE);
    f.env(&mut cmd);
    cmd.env_remove("CANTON_ADMIN_API");
    let out = cmd.output().unwrap();
    let report = stdout_json(&out, "verify-backup.sh");
    let skipped: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "skipped")
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        skipped,
        vec![
            "dars-covered",
            "integration-db-restore",
            "checkpoint-lookup"
        ]
    );
    assert_eq!(report["status"], "ok");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn integration_db_dump_that_does_not_restore_or_has_no_checkpoint_fails() {
    let f = Fixture::new();
    let times = DumpTimes::in_order(minutes_ago(10));

    // A dump of a database that was never ingested into: it restores, but
    // holds no checkpoint.
    let empty = fresh_database(PgCluster::shared());
    let mut migrate = Command::new(cargo_bin("ingest-ctl"));
    migrate.arg("migrate");
    f.env(&mut migrate);
    migrate.env("INTEGRATION_DB_URL", &empty.url);
    assert!(migrate.output().unwrap().status.success());
    let backup = f.take_backup("b1");
    f.dump_database(&empty.name, &backup.integration_db);
    let manifest = f.manifest(&backup, times);
    let run = f.verify(&manifest, &[]);
    assert_eq!(run.status(), "fail", "{}", run.report);
    assert_eq!(run.code, 1);
    let restore = run.check("integration-db-restore");
    assert_eq!(restore["status"], "fail");
    let message = restore["message"].as_str().unwrap();
    assert!(
        message.contains("checkpoint for ingester tx-ingest"),
        "{restore}"
    );
    // The lookup falls back to the manifest's record time, which resolves.
    assert_eq!(run.check_status("checkpoint-lookup"), "ok");
    assert_eq!(
        run.check("checkpoint-lookup")["details"]["source"],
        "manifest"
    );

    // A plain-SQL "dump" that breaks half-way does not restore.
    let backup = f.take_backup("b2");
    std::fs::write(
        &backup.integration_db,
        "CREATE TABLE t (x int);\nINSERT INTO no_such_table VALUES (1);\n",
    )
    .unwrap();
    let manifest = f.manifest(&backup, times);
    let m: Value = serde_json::from_str(&read(&manifest)).unwrap();
    assert_eq!(m["artifacts"]["integrationDb"]["format"], "plain");
    let mut args = vec!["--skip", "checkpoint-lookup"];
    args.extend(["--skip", "dars-covered"]);
    let run = f.verify(&manifest, &args);
    assert_eq!(run.status(), "fail");
    let restore = run.check("integration-db-restore");
    assert_eq!(restore["status"], "fail");
    assert!(
        restore["message"]
            .as_str()
            .unwrap()
            .contains("no_such_table"),
        "{restore}"
    );
}

#[test]
fn unreachable_node_is_unavailable_and_a_foreign_node_fails_the_lookup() {
    let mut f = Fixture::new();
    let (_b, manifest) = f.backup_with_manifest("b1", DumpTimes::in_order(minutes_ago(10)));

    // Another participant, on another synchronizer: the backup's record time
    // means nothing there.
    let other_synchronizer = format!("other-domain::1220{}", "a".repeat(64));
    let other = Sim::start(
        &f.path("other-node"),
        &["--synchronizer-id", &other_synchronizer],
    );
    let mut args = vec![
        "--admin-api",
        other.admin.as_str(),
        "--skip",
        "dars-covered",
    ];
    args.extend(SKIP_RESTORE);
    let run = f.verify(&manifest, &args);
    assert_eq!(run.status(), "fail", "{}", run.report);
    assert_eq!(run.check_status("checkpoint-lookup"), "fail");
    drop(other);

    // The node is down: nothing failed, but the live checks could not run.
    f.sim.stop();
    let run = f.verify(&manifest, &SKIP_RESTORE);
    assert_eq!(run.status(), "unavailable", "{}", run.report);
    assert_eq!(run.code, 3);
    assert_eq!(run.check_status("dars-covered"), "unavailable");
    assert_eq!(run.check_status("checkpoint-lookup"), "unavailable");
    assert_eq!(run.check_status("backup-age"), "ok");
}

#[test]
fn bad_flags_are_usage_errors_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let textfile = tmp.path().join("t.prom");
    for args in [
        vec!["--max-age", "four hours"],
        vec!["--skip", "manifest"],
        vec!["--skip", "no-such-check"],
        vec!["--warn-age", "31d"],
        vec!["--frobnicate"],
    ] {
        let out = Command::new("bash")
            .arg(script("verify-backup.sh"))
            .args(["--manifest", "/nonexistent", "--textfile"])
            .arg(&textfile)
            .args(&args)
            .env("CANTON_DR_BIN_DIR", bin_dir())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let json = stdout_json(&out, "verify-backup.sh");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {json}");
        assert_eq!(json["status"], "usage-error", "{args:?}: {json}");
        assert_eq!(json["exitCode"], 2);
        assert!(!textfile.exists(), "{args:?} wrote the textfile");
    }
}
