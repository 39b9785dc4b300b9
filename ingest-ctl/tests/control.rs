//! stop / start / status / migrate through the real binary, against real
//! PostgreSQL and a test ingester that honours the contract.

mod support;

use canton_dr_testkit::PgCluster;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::ingester::{Item, Mode, TestIngester};
use support::ledger::Ledger;
use support::{INGESTER, control_row, ctl, expect, lines, migrated, query, spawn};

fn ingester_running(db: &canton_dr_testkit::TestDb) -> TestIngester {
    let ing = TestIngester::start(&db.url, INGESTER);
    support::eventually(10, "the ingester to acknowledge running", || {
        control_row(PgCluster::shared(), db).starts_with("running|running|0|0")
    });
    ing
}

fn audit(db: &canton_dr_testkit::TestDb) -> Vec<String> {
    query(
        db,
        "SELECT command || ' ' || dry_run || ' ' || outcome || ' ' || (details->>'changed') FROM canton_integration.audit_log WHERE tool = 'ingest-ctl' ORDER BY id",
    )
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn stop_and_start_are_acknowledged_and_idempotent() {
    let db = migrated();
    let ing = ingester_running(&db);
    ing.push([Item::tx(1, "u1", "2025-11-27T06:00:00Z")]);

    let out = ctl(&db).args(["start", "--wait"]).output().unwrap();
    let start = expect(&out, 0);
    assert_eq!(
        start["changed"], false,
        "already running: no generation bump"
    );
    assert_eq!(start["acknowledged"], true);

    let out = ctl(&db)
        .args(["stop", "--wait", "--timeout", "20s"])
        .output()
        .unwrap();
    let stop = expect(&out, 0);
    assert_eq!(stop["type"], "stop");
    assert_eq!(stop["changed"], true);
    assert_eq!(stop["generation"], 1);
    assert_eq!(stop["ackedGeneration"], 1);
    assert_eq!(stop["actualState"], "stopped");
    assert_eq!(stop["acknowledged"], true);
    assert_eq!(stop["liveIngester"], true);
    assert_eq!(stop["waited"], true);
    assert_eq!(stop["status"], "ok");
    // Progress lines come first, each with a type, the result last.
    let all = lines(&out);
    assert!(all.len() >= 2, "{all:?}");
    assert!(
        all[..all.len() - 1]
            .iter()
            .all(|l| l["type"] == "progress" && l["waitingFor"] == "stop-acknowledged"),
        "{all:?}"
    );
    assert_eq!(
        control_row(PgCluster::shared(), &db),
        "stopped|stopped|1|1||0|"
    );

    // While stopped, new updates are not ingested.
    ing.push([Item::tx(2, "u2", "2025-11-27T06:00:01Z")]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ing.applied(), ["u1"]);

    let again = expect(&ctl(&db).args(["stop", "--wait"]).output().unwrap(), 0);
    assert_eq!(again["changed"], false);
    assert_eq!(again["generation"], 1, "a second stop bumps nothing");
    assert_eq!(again["acknowledged"], true);

    let start = expect(
        &ctl(&db)
            .args(["start", "--wait", "--timeout", "20s"])
            .output()
            .unwrap(),
        0,
    );
    assert_eq!(start["changed"], true);
    assert_eq!(start["generation"], 2);
    assert_eq!(start["actualState"], "running");
    assert_eq!(start["acknowledged"], true);
    support::eventually(10, "u2 to be ingested after the start", || {
        ing.applied() == ["u1", "u2"]
    });

    assert_eq!(
        audit(&db),
        [
            "start false ok false",
            "stop false ok true",
            "stop false ok false",
            "start false ok true"
        ]
    );
    let actor = query(
        &db,
        "SELECT DISTINCT actor FROM canton_integration.audit_log",
    );
    assert!(actor.starts_with("tester@"), "{actor}");
}

#[test]
fn stop_while_the_ingester_is_dead_reports_no_live_ingester() {
    let db = migrated();
    let ing = ingester_running(&db);
    ing.set_mode(Mode::Dead);
    let started = Instant::now();
    let out = ctl(&db)
        .args(["stop", "--wait", "--dead-after", "1s", "--timeout", "30s"])
        .output()
        .unwrap();
    let stop = expect(&out, 0);
    assert_eq!(stop["liveIngester"], false);
    assert_eq!(stop["acknowledged"], false);
    assert_eq!(stop["actualState"], "running", "nobody acknowledged");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "returned once the heartbeat was older than --dead-after"
    );

    // When it comes back it honours the stop before ingesting anything.
    ing.push([Item::tx(5, "u5", "2025-11-27T06:00:05Z")]);
    ing.set_mode(Mode::Normal);
    support::eventually(10, "the returning ingester to acknowledge the stop", || {
        control_row(PgCluster::shared(), &db).starts_with("stopped|stopped|1|1")
    });
    std::thread::sleep(Duration::from_millis(200));
    assert!(ing.applied().is_empty(), "it ingested while stopped");
    let status = expect(&ctl(&db).arg("status").output().unwrap(), 0);
    assert_eq!(status["acknowledged"], true);
    assert_eq!(status["warnings"], json!([]));
}

#[test]
fn an_ingester_that_never_ran_is_not_live() {
    let db = migrated();
    query(
        &db,
        "INSERT INTO canton_integration.ingestion_control (ingester) VALUES ('tx-a')",
    );
    let stop = expect(&ctl(&db).args(["stop", "--wait"]).output().unwrap(), 0);
    assert_eq!(stop["liveIngester"], false);
    assert_eq!(stop["heartbeatAgeSeconds"], Value::Null);
    assert!(stop["waitedMs"].as_u64().unwrap() < 5_000);
}

#[test]
fn a_live_ingester_that_does_not_acknowledge_times_out_with_exit_4() {
    let db = migrated();
    let ing = ingester_running(&db);
    ing.set_mode(Mode::Frozen);
    let out = ctl(&db)
        .args(["stop", "--wait", "--timeout", "1500ms"])
        .output()
        .unwrap();
    let err = expect(&out, 4);
    assert_eq!(err["type"], "error");
    assert_eq!(err["status"], "timeout");
    let stderr = support::text(&out.stderr);
    let first = stderr.lines().next().unwrap();
    assert!(
        first.starts_with("error: ingester \"tx-a\" did not acknowledge the stop (generation 1) within 1500ms; it acknowledged generation 0, actual state running, last heartbeat "),
        "{stderr}"
    );
    assert!(
        stderr.lines().nth(1).unwrap().starts_with("hint: "),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
}

#[test]
fn hooks_run_after_the_state_is_recorded() {
    let db = migrated();
    let _ing = ingester_running(&db);
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("seen.json");
    // The hook asks ingest-ctl itself what the desired state is when it runs.
    let hook = format!(
        "\"$CTL\" status > '{}' && echo hook-ran-for-$INGESTER_NAME",
        seen.display()
    );
    let out = ctl(&db)
        .env("CTL", env!("CARGO_BIN_EXE_ingest-ctl"))
        .args(["stop", "--wait", "--stop-cmd", &hook])
        .output()
        .unwrap();
    let stop = expect(&out, 0);
    assert_eq!(
        stop["hook"],
        json!({"command": hook, "ran": true, "exitCode": 0})
    );
    let at_hook: Value = serde_json::from_str(&std::fs::read_to_string(&seen).unwrap()).unwrap();
    assert_eq!(at_hook["desiredState"], "stopped");
    // The hook's stdout went to stderr: stdout carries data only.
    assert!(support::text(&out.stderr).contains("hook-ran-for-tx-a"));
    assert!(!support::text(&out.stdout).contains("hook-ran-for-tx-a"));

    let out = ctl(&db)
        .args(["start", "--start-cmd", "echo scaling up >&2; exit 3"])
        .output()
        .unwrap();
    let err = expect(&out, 3);
    assert_eq!(
        err["error"],
        "--start-cmd `echo scaling up >&2; exit 3` exited with status 3"
    );
    assert_eq!(
        control_row(PgCluster::shared(), &db).split('|').next(),
        Some("running"),
        "the desired state is recorded before the hook"
    );
}

#[test]
fn dry_runs_change_nothing_run_no_hook_and_are_audited() {
    let db = migrated();
    let _ing = ingester_running(&db);
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let hook = format!("touch '{}'", marker.display());
    let out = ctl(&db)
        .args(["stop", "--wait", "--dry-run", "--stop-cmd", &hook])
        .output()
        .unwrap();
    let stop = expect(&out, 0);
    assert_eq!(stop["dryRun"], true);
    assert_eq!(stop["changed"], true);
    assert_eq!(
        stop["generation"], 1,
        "the generation a real stop would bump to"
    );
    assert_eq!(stop["waited"], false);
    assert_eq!(
        stop["hook"],
        json!({"command": hook, "ran": false, "exitCode": null})
    );
    assert!(!marker.exists());
    assert_eq!(
        control_row(PgCluster::shared(), &db),
        "running|running|0|0||0|"
    );
    let real = expect(&ctl(&db).arg("stop").output().unwrap(), 0);
    // Same shape as the real run.
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&stop), keys(&real));
    assert_eq!(audit(&db), ["stop true ok true", "stop false ok true"]);
}

#[test]
fn start_caught_up_waits_for_the_ledger_end_read_when_the_command_began() {
    let db = migrated();
    let ing = ingester_running(&db);
    ing.push((1..=3).map(|i| Item::tx(i, &format!("u{i}"), "2025-11-27T06:00:00Z")));
    expect(&ctl(&db).args(["stop", "--wait"]).output().unwrap(), 0);
    let ledger = Ledger::start(5);

    let mut child = spawn(ctl(&db).args([
        "start",
        "--caught-up",
        "--ledger-api",
        &ledger.address,
        "--timeout",
        "30s",
        "--poll-interval",
        "100ms",
    ]));
    support::eventually(10, "the checkpoint to reach offset 3", || {
        query(
            &db,
            "SELECT \"offset\" FROM canton_integration.ingestion_checkpoint",
        ) == "3"
    });
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        child.try_wait().unwrap().is_none(),
        "returned before the checkpoint reached the ledger end"
    );
    // The ledger end moving on after the command began does not move the target.
    ledger.set_end(9);
    ing.push([
        Item::tx(4, "u4", "2025-11-27T06:00:01Z"),
        Item::checkpoint(5, "2025-11-27T06:00:02Z"),
    ]);
    let out = child.wait_with_output().unwrap();
    let start = expect(&out, 0);
    assert_eq!(start["ledgerEnd"], 5);
    assert_eq!(start["caughtUp"], true);
    assert_eq!(start["position"], 5);
    assert_eq!(start["acknowledged"], true);
    let progress: Vec<Value> = lines(&out)
        .into_iter()
        .filter(|l| l["type"] == "progress")
        .collect();
    assert!(
        progress
            .iter()
            .all(|p| p["waitingFor"] == "caught-up" && p["target"] == 5)
    );
    assert!(progress.iter().any(|p| p["position"] == 3), "{progress:?}");
    assert_eq!(ledger.calls(), 1);
}

#[test]
fn caught_up_counts_a_resume_offset_at_the_ledger_end() {
    // Resuming exactly at the ledger end leaves nothing to ingest: the
    // acknowledged start in the new epoch is caught up.
    let db = migrated();
    let _ing = ingester_running(&db);
    expect(&ctl(&db).args(["stop", "--wait"]).output().unwrap(), 0);
    expect(&ctl(&db).args(["set-offset", "40"]).output().unwrap(), 0);
    let ledger = Ledger::start(40);
    let start = expect(
        &ctl(&db)
            .args([
                "start",
                "--caught-up",
                "--ledger-api",
                &ledger.address,
                "--timeout",
                "20s",
            ])
            .output()
            .unwrap(),
        0,
    );
    assert_eq!(start["caughtUp"], true);
    assert_eq!(start["position"], 40);
    assert_eq!(start["offsetEpoch"], 1);
}

#[test]
fn status_reports_state_checkpoint_last_transaction_and_lag() {
    let db = migrated();
    let ing = ingester_running(&db);
    ing.push([
        Item::tx(10, "u10", "2025-11-27T06:00:00.5Z"),
        Item::checkpoint(12, "2025-11-27T06:00:03Z"),
    ]);
    support::eventually(10, "the checkpoint at 12", || {
        query(
            &db,
            "SELECT \"offset\" FROM canton_integration.ingestion_checkpoint",
        ) == "12"
    });
    let ledger = Ledger::start(20);
    let out = ctl(&db)
        .args(["status", "--ledger-api", &ledger.address])
        .output()
        .unwrap();
    let mut status = expect(&out, 0);
    assert!(status["heartbeatAgeSeconds"].as_f64().unwrap() < 5.0);
    status["heartbeatAt"] = json!("[time]");
    status["heartbeatAgeSeconds"] = json!("[age]");
    insta::assert_json_snapshot!("status_json", status);

    // Ahead of the node's ledger end: the restored-node warning.
    ledger.set_end(11);
    let status = expect(
        &ctl(&db)
            .args(["status", "--ledger-api", &ledger.address])
            .output()
            .unwrap(),
        0,
    );
    assert_eq!(status["lag"], -1);
    assert_eq!(
        status["warnings"],
        json!([
            "the position 12 is beyond the node's ledger end 11: was the node restored? (runbook A: stop, last, offset-lookup, set-offset)"
        ])
    );

    let text = ctl(&db)
        .args(["--output", "text", "status"])
        .output()
        .unwrap();
    let text = support::text(&text.stdout);
    assert!(
        text.starts_with("ingester tx-a: desired running, actual running, generation 0 (acknowledged 0)\nheartbeat "),
        "{text}"
    );
    assert!(
        text.contains("\ncheckpoint offset 12 at 2025-11-27T06:00:03.000000Z on global-domain::"),
        "{text}"
    );
}

#[test]
fn migrate_is_idempotent_and_has_a_dry_run() {
    let db = support::fresh();
    let dry = expect(
        &ctl(&db).args(["migrate", "--dry-run"]).output().unwrap(),
        0,
    );
    assert_eq!(dry["fromVersion"], 0);
    assert_eq!(dry["toVersion"], 2);
    assert_eq!(dry["applied"].as_array().unwrap().len(), 2);
    assert_eq!(dry["dryRun"], true);
    let first = expect(&ctl(&db).arg("migrate").output().unwrap(), 0);
    assert_eq!(first["fromVersion"], 0);
    assert_eq!(first["toVersion"], 2);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&dry), keys(&first));
    let second = expect(&ctl(&db).arg("migrate").output().unwrap(), 0);
    assert_eq!(second["applied"], json!([]));
    assert_eq!(second["fromVersion"], 2);
    assert_eq!(
        query(
            &db,
            "SELECT count(*) FROM canton_integration.audit_log WHERE command = 'migrate'"
        ),
        "2"
    );
}

#[test]
fn an_unreachable_node_degrades_status_and_stops_start_caught_up_before_any_change() {
    let db = migrated();
    let _ing = ingester_running(&db);
    expect(&ctl(&db).args(["stop", "--wait"]).output().unwrap(), 0);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = format!("127.0.0.1:{port}");
    let status = expect(
        &ctl(&db)
            .args(["status", "--ledger-api", &nowhere])
            .output()
            .unwrap(),
        0,
    );
    assert_eq!(status["ledgerEnd"], Value::Null);
    assert_eq!(status["desiredState"], "stopped");
    let warnings = status["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .starts_with("cannot read the ledger end: "),
        "{warnings:?}"
    );

    let out = ctl(&db)
        .args(["start", "--caught-up", "--ledger-api", &nowhere])
        .output()
        .unwrap();
    expect(&out, 3);
    assert_eq!(
        control_row(PgCluster::shared(), &db),
        "stopped|stopped|1|1||0|",
        "the start was not recorded"
    );
}

#[test]
fn a_zero_timeout_still_looks_once() {
    let db = migrated();
    let _ing = ingester_running(&db);
    // Already running and acknowledged: one look is enough.
    let start = expect(
        &ctl(&db)
            .args(["start", "--wait", "--timeout", "0s"])
            .output()
            .unwrap(),
        0,
    );
    assert_eq!(start["acknowledged"], true);
}
