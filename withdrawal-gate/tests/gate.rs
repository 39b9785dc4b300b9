//! `freeze`, `tsafe`, `thaw`, `status` and the hooks through the real binary
//! against real PostgreSQL.

mod common;

use canton_dr_testkit::PgCluster;
use chrono::Duration as Span;
use common::*;
use serde_json::Value;

fn cluster() -> &'static PgCluster {
    PgCluster::shared()
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_freeze_keeps_the_first_freeze_time_reason_and_ttl() {
    let (t, _db) = migrated().await;
    let first = run(gate(&t.url).args(["freeze", "--reason", "restore INC-1", "--ttl", "90m"]));
    assert_eq!(first.code, 0, "{}", first.stderr);
    let f = first.last().clone();
    assert_eq!(
        (f["type"].clone(), f["status"].clone()),
        ("freeze".into(), "ok".into())
    );
    assert_eq!(
        (
            f["changed"].clone(),
            f["frozen"].clone(),
            f["dryRun"].clone()
        ),
        (true.into(), true.into(), false.into())
    );
    assert_eq!(f["reason"], "restore INC-1");
    assert_eq!(f["ttlSeconds"], 5400);
    assert!(
        f["frozenBy"].as_str().unwrap().starts_with("operator@"),
        "{f}"
    );

    let second = run(gate(&t.url).args(["freeze", "--reason", "again", "--ttl", "2h"]));
    assert_eq!(second.code, 0, "{}", second.stderr);
    let s = second.last();
    assert_eq!(s["changed"], false);
    assert_eq!(s["frozenAt"], f["frozenAt"]);
    assert_eq!(s["reason"], "restore INC-1");
    assert_eq!(s["ttlSeconds"], 5400);
    assert!(
        second.stderr.contains("recorded ttl (5400 s) is kept"),
        "{}",
        second.stderr
    );

    let rows = audit_rows(cluster(), &t);
    let freezes: Vec<(bool, &str, bool)> = rows
        .iter()
        .map(|r| (r.1, r.2.as_str(), r.3["changed"].as_bool().unwrap()))
        .collect();
    assert_eq!(freezes, [(false, "ok", true), (false, "ok", false)]);
    assert_eq!(rows[1].3["reason"], "again");
    assert_eq!(rows[0].3["frozenAt"], f["frozenAt"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeze_dry_run_has_the_same_shape_and_changes_nothing() {
    let (t, _db) = migrated().await;
    let dry = run(gate(&t.url).args([
        "freeze",
        "--reason",
        "drill",
        "--dry-run",
        "--stop-cmd",
        "false",
    ]));
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    let d = dry.last().clone();
    assert_eq!(
        (d["dryRun"].clone(), d["changed"].clone()),
        (true.into(), true.into())
    );
    assert_eq!(d["hook"]["ran"], false);
    assert_eq!(run(gate(&t.url).arg("status")).last()["frozen"], false);

    let real = run(gate(&t.url).args(["freeze", "--reason", "drill", "--stop-cmd", "true"]));
    assert_eq!(real.code, 0, "{}", real.stderr);
    assert_eq!(keys(&d), keys(real.last()));
    assert_eq!(keys(&d["hook"]), keys(&real.last()["hook"]));
    let rows = audit_rows(cluster(), &t);
    let shape: Vec<(&str, bool)> = rows.iter().map(|r| (r.0.as_str(), r.1)).collect();
    assert_eq!(
        shape,
        [("freeze", true), ("freeze", false), ("stop-cmd", false)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tsafe_shows_both_bounds_and_which_wins() {
    let (t, db) = migrated().await;
    let r = run(gate(&t.url).args(["freeze", "--reason", "restore", "--ttl", "1h"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let frozen_at = at(r.last()["frozenAt"].as_str().unwrap());
    let ttl_bound = fmt(frozen_at + Span::seconds(3600) + Span::seconds(1));

    let r = run(gate(&t.url).arg("tsafe"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ts = r.last();
    assert_eq!(ts["type"], "tsafe");
    assert_eq!(ts["ttlBound"], ttl_bound.as_str());
    assert_eq!(ts["ttlSource"], "freeze");
    assert_eq!(ts["maxTrecTgt"], Value::Null);
    assert_eq!(
        (ts["tSafe"].clone(), ts["winner"].clone()),
        (ttl_bound.as_str().into(), "ttlBound".into())
    );

    request_withdrawal(&db, "w1", Some(frozen_at + Span::hours(2)), true).await;
    request_withdrawal(&db, "w2", Some(frozen_at + Span::minutes(30)), false).await;
    let r = run(gate(&t.url).arg("tsafe"));
    let ts = r.last();
    let latest = fmt(frozen_at + Span::hours(2));
    assert_eq!(ts["maxTrecTgt"], latest.as_str());
    assert_eq!(ts["maxTrecTgtWithdrawalId"], "w1");
    assert_eq!(ts["ttlBound"], ttl_bound.as_str());
    assert_eq!(
        (ts["tSafe"].clone(), ts["winner"].clone()),
        (latest.as_str().into(), "maxTrecTgt".into())
    );
    assert_eq!(ts["inFlight"], 2);

    // WITHDRAWAL_TTL overrides the recorded ttl (with a warning when shorter).
    let r = run(gate(&t.url)
        .arg("tsafe")
        .env("WITHDRAWAL_TTL", "30m")
        .args(["--skew-margin", "0s"]));
    let ts = r.last();
    assert_eq!(ts["ttlSource"], "argument");
    assert_eq!(ts["ttlBound"], fmt(frozen_at + Span::minutes(30)).as_str());
    assert!(
        r.stderr
            .contains("shorter than the 3600 s recorded at freeze"),
        "{}",
        r.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tsafe_without_any_ttl_is_an_error_naming_the_fix() {
    let (t, _db) = migrated().await;
    assert_eq!(
        run(gate(&t.url).args(["freeze", "--reason", "restore"])).code,
        0
    );
    let r = run(gate(&t.url).arg("tsafe"));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("error: tSafe of gate \"cn-withdrawals\" is unknown"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("hint: pass --ttl (or set WITHDRAWAL_TTL)"),
        "{}",
        r.stderr
    );
    let r = run(gate(&t.url).arg("tsafe").env("WITHDRAWAL_TTL", "10m"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.last()["ttlMs"], 600_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thaw_is_refused_until_ingestion_passes_tsafe_then_allowed() {
    let (t, db) = migrated().await;
    let mut ingester = TestIngester::new(&t.url).await;
    ingester.transaction(at("2029-12-31T00:00:00Z"), &[]).await;
    request_withdrawal(&db, "w1", Some(at("2030-01-01T00:00:00Z")), true).await;
    assert_eq!(
        run(gate(&t.url).args(["freeze", "--reason", "restore", "--ttl", "1h"])).code,
        0
    );

    let r = run(gate(&t.url).arg("thaw"));
    assert_eq!(r.code, 5, "{}", r.stderr);
    let e = r.last();
    assert_eq!(
        (e["type"].clone(), e["status"].clone(), e["code"].clone()),
        ("error".into(), "refused".into(), "TSAFE_NOT_PASSED".into())
    );
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(
        lines[0],
        "error: ingestion has not passed tSafe 2030-01-01T00:00:00.000000Z: the checkpoint of ingester \"tx-ingest\" is at 2029-12-31T00:00:00.000000Z (86400000 ms to go)"
    );
    assert!(lines[1].starts_with("hint: run `withdrawal-gate wait`"));
    let dry = run(gate(&t.url).args(["thaw", "--dry-run"]));
    assert_eq!(
        dry.code, 5,
        "a dry run predicts the refusal: {}",
        dry.stderr
    );
    let status = run(gate(&t.url).arg("status"));
    let s = status.last();
    assert_eq!(
        (
            s["frozen"].clone(),
            s["passed"].clone(),
            s["thawAllowed"].clone()
        ),
        (true.into(), false.into(), false.into())
    );

    // Exactly tSafe is not enough; an offset checkpoint past it is.
    ingester.offset_checkpoint(at("2030-01-01T00:00:00Z")).await;
    assert_eq!(run(gate(&t.url).arg("thaw")).code, 5);
    ingester
        .offset_checkpoint(at("2030-01-01T00:00:00.000001Z"))
        .await;
    let dry = run(gate(&t.url).args(["thaw", "--dry-run"]));
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(run(gate(&t.url).arg("status")).last()["frozen"], true);

    let r = run(gate(&t.url).args(["thaw", "--reason", "tSafe passed"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let th = r.last();
    assert_eq!(keys(th), keys(dry.last()));
    assert_eq!(
        (
            th["changed"].clone(),
            th["forced"].clone(),
            th["passed"].clone()
        ),
        (true.into(), false.into(), true.into())
    );
    assert_eq!(th["tSafe"], "2030-01-01T00:00:00.000000Z");
    assert_eq!(th["checkpointRecordTime"], "2030-01-01T00:00:00.000001Z");
    assert_eq!(th["reason"], "tSafe passed");
    assert!(th["thawedBy"].as_str().unwrap().starts_with("operator@"));
    let s = run(gate(&t.url).arg("status"));
    assert_eq!(
        (s.last()["frozen"].clone(), s.last()["thawAllowed"].clone()),
        (false.into(), true.into())
    );

    // A rerun is a no-op.
    let again = run(gate(&t.url).arg("thaw"));
    assert_eq!(
        (again.code, again.last()["changed"].clone()),
        (0, false.into())
    );

    let outcomes: Vec<(String, bool, String)> = audit_rows(cluster(), &t)
        .into_iter()
        .filter(|r| r.0 == "thaw")
        .map(|r| (r.0, r.1, r.2))
        .collect();
    let expected = [
        (false, "refused"),
        (true, "refused"),
        (false, "refused"),
        (true, "ok"),
        (false, "ok"),
        (false, "ok"),
    ];
    assert_eq!(
        outcomes
            .iter()
            .map(|o| (o.1, o.2.as_str()))
            .collect::<Vec<_>>(),
        expected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_thaw_needs_a_reason_and_confirmation_and_is_recorded() {
    let (t, _db) = migrated().await;
    assert_eq!(
        run(gate(&t.url).args(["freeze", "--reason", "restore", "--ttl", "1h"])).code,
        0
    );
    let r = run(gate(&t.url).args(["thaw", "--force"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.starts_with("error: --force needs --reason TEXT"),
        "{}",
        r.stderr
    );
    let r = run(gate(&t.url).args(["thaw", "--force", "--reason", "drill"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("error: --force needs --yes when stdin is not a terminal"),
        "{}",
        r.stderr
    );
    assert_eq!(run(gate(&t.url).arg("status")).last()["frozen"], true);

    let r = run(gate(&t.url).args([
        "thaw",
        "--force",
        "--reason",
        "customer-facing outage",
        "--yes",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let th = r.last();
    assert_eq!(
        (
            th["forced"].clone(),
            th["passed"].clone(),
            th["frozen"].clone()
        ),
        (true.into(), false.into(), false.into())
    );
    assert!(
        r.stderr
            .contains("warning: gate \"cn-withdrawals\" thawed by --force"),
        "{}",
        r.stderr
    );
    let reason = cluster().query(
        &t.name,
        "SELECT thaw_reason FROM canton_integration.withdrawal_gate",
    );
    assert_eq!(reason, "customer-facing outage");
    let last = audit_rows(cluster(), &t).pop().unwrap();
    assert_eq!((last.0.as_str(), last.2.as_str()), ("thaw", "ok"));
    assert_eq!(
        (last.3["force"].clone(), last.3["forced"].clone()),
        (true.into(), true.into())
    );
    assert_eq!(last.3["reason"], "customer-facing outage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_run_after_the_change_and_a_failing_hook_exits_1() {
    let (t, _db) = migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hook.log");
    let stop = format!(
        "echo \"$WITHDRAWAL_GATE_ACTION $WITHDRAWAL_GATE\" >> {}; echo hook-stdout",
        log.display()
    );
    let r = run(gate(&t.url).args(["freeze", "--reason", "restore", "--stop-cmd", &stop]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.lines.len(), 1, "the hook's stdout must not reach ours");
    assert!(r.stderr.contains("hook-stdout"), "{}", r.stderr);
    assert_eq!(r.last()["hook"]["ok"], true);

    // A failing hook: the gate stays frozen, exit 1, status failed; a rerun retries it.
    let r = run(gate(&t.url).args(["freeze", "--reason", "restore", "--stop-cmd", "exit 3"]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.last()["status"], "failed");
    assert_eq!(r.last()["hook"]["exitCode"], 3);
    assert!(
        r.stderr
            .starts_with("error: the gate is frozen, but --stop-cmd `exit 3` exited with status 3"),
        "{}",
        r.stderr
    );
    assert_eq!(run(gate(&t.url).arg("status")).last()["frozen"], true);

    let r = run(gate(&t.url)
        .args(["thaw", "--force", "--reason", "test", "--yes"])
        .env("WITHDRAWAL_GATE_START_CMD", &stop));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "freeze cn-withdrawals\nthaw cn-withdrawals\n"
    );
    let hooks: Vec<(String, String)> = audit_rows(cluster(), &t)
        .into_iter()
        .filter(|r| r.0.ends_with("-cmd"))
        .map(|r| (r.0, r.2))
        .collect();
    assert_eq!(
        hooks,
        [
            ("stop-cmd".to_string(), "ok".to_string()),
            ("stop-cmd".to_string(), "failed".to_string()),
            ("start-cmd".to_string(), "ok".to_string())
        ]
    );
}

/// Times and names that differ per run, replaced for snapshots.
fn normalize(mut v: Value) -> Value {
    let mut set = |path: &[&str], placeholder: &str| {
        let mut cur = &mut v;
        for p in path {
            cur = &mut cur[*p];
        }
        assert!(!cur.is_null(), "{path:?} is null");
        *cur = placeholder.into();
    };
    set(&["frozenAt"], "[frozenAt]");
    set(&["frozenBy"], "[user@host]");
    set(&["tSafe", "frozenAt"], "[frozenAt]");
    set(&["tSafe", "ttlBound"], "[frozenAt + 1h + 1s]");
    set(&["ingester", "heartbeatAt"], "[heartbeatAt]");
    set(&["ingester", "heartbeatAgeMs"], "[age]");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_gate_tsafe_and_ingester() {
    let (t, db) = migrated().await;
    let mut ingester = TestIngester::new(&t.url).await;
    ingester.transaction(at("2029-12-31T00:00:00Z"), &[]).await;
    request_withdrawal(&db, "w1", Some(at("2030-01-01T00:00:00Z")), true).await;
    assert_eq!(
        run(gate(&t.url).args(["freeze", "--reason", "restore", "--ttl", "1h"])).code,
        0
    );
    let r = run(gate(&t.url).arg("status"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Key order depends on serde_json features; the snapshot must not.
    insta::with_settings!({ sort_maps => true }, {
        insta::assert_json_snapshot!(normalize(r.last().clone()));
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_output_for_terminals() {
    let (t, db) = migrated().await;
    let mut ingester = TestIngester::new(&t.url).await;
    ingester.transaction(at("2029-12-31T00:00:00Z"), &[]).await;
    request_withdrawal(&db, "w1", Some(at("2030-01-01T00:00:00Z")), true).await;
    let r = gate(&t.url)
        .args([
            "--output",
            "text",
            "freeze",
            "--reason",
            "restore INC-7",
            "--ttl",
            "1h",
        ])
        .output()
        .unwrap();
    assert!(r.status.success());
    let freeze = String::from_utf8_lossy(&r.stdout);
    assert!(
        freeze.starts_with("gate cn-withdrawals frozen now since "),
        "{freeze}"
    );
    assert!(
        freeze.trim_end().ends_with("(restore INC-7), ttl 3600 s"),
        "{freeze}"
    );
    // Text is not JSON: read stdout raw.
    let out = gate(&t.url)
        .args(["--output", "text", "status"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("gate cn-withdrawals FROZEN since "), "{text}");
    assert!(text.contains("(restore INC-7)"), "{text}");
    assert!(
        text.contains("tSafe        2030-01-01T00:00:00.000000Z (winner: maxTrecTgt)"),
        "{text}"
    );
    assert!(
        text.contains("maxTrecTgt   2030-01-01T00:00:00.000000Z (1 in flight, latest w1)"),
        "{text}"
    );
    assert!(
        text.contains("ingester tx-ingest: checkpoint 2029-12-31T00:00:00.000000Z offset 1"),
        "{text}"
    );
    assert!(text.ends_with("thaw refused: tSafe not passed\n"), "{text}");
    assert_eq!(text.matches("cn-withdrawals").count(), 1, "{text}");
}
