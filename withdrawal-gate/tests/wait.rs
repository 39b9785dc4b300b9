//! `withdrawal-gate wait` through the real binary against real PostgreSQL,
//! with a test ingester advancing the checkpoint as the contract says.

mod common;

use canton_dr_testkit::PgCluster;
use chrono::Duration as Span;
use common::*;
use integration_db::withdrawals::NewWithdrawal;
use serde_json::Value;
use std::time::Duration;

const T_SAFE: &str = "2030-01-01T00:00:00.000000Z";
const LONG: Duration = Duration::from_secs(30);

fn is(kind: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["type"] == kind
}

fn progress_at(t: String) -> impl Fn(&Value) -> bool {
    move |v| v["type"] == "progress" && v["checkpointRecordTime"] == t.as_str()
}

fn freeze(url: &str) {
    let r = run(gate(url).args(["freeze", "--reason", "restore drill", "--ttl", "1h"]));
    assert_eq!(r.code, 0, "freeze: {}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_returns_on_the_notification_that_passes_tsafe_and_not_before() {
    let (t, db) = migrated().await;
    let mut ingester = TestIngester::new(&t.url).await;
    ingester.transaction(at("2029-12-31T00:00:00Z"), &[]).await;
    // The latest in-flight trecTgt is later than frozen_at + 1h: it is tSafe.
    request_withdrawal(&db, "w1", Some(at(T_SAFE)), true).await;
    freeze(&t.url);

    // Polling every hour: only a notification can release the wait in time.
    let mut wait =
        Spawned::start(gate(&t.url).args(["wait", "--poll-interval", "1h", "--timeout", "2m"]));
    let waiting = wait.until(LONG, is("waiting"));
    assert_eq!(waiting["tSafe"], T_SAFE);
    assert_eq!(waiting["winner"], "maxTrecTgt");
    assert_eq!(waiting["mode"], "listen");
    assert_eq!(waiting["inFlight"], 1);
    let first = wait.until(LONG, is("progress"));
    assert_eq!(first["trigger"], "start");
    assert_eq!(first["passed"], false);

    let t_safe = at(T_SAFE);
    ingester.transaction(t_safe - Span::seconds(1), &[]).await;
    let p = wait.until(LONG, progress_at(fmt(t_safe - Span::seconds(1))));
    assert_eq!(
        (p["passed"].clone(), p["remainingMs"].clone()),
        (false.into(), 1000.into())
    );

    // Exactly tSafe is not past it.
    ingester.offset_checkpoint(t_safe).await;
    let p = wait.until(LONG, progress_at(fmt(t_safe)));
    assert_eq!(p["passed"], false);
    assert!(
        wait.running(),
        "the wait ended at a checkpoint equal to tSafe"
    );
    assert!(wait.seen_of("result").is_empty());

    let passing = t_safe + Span::microseconds(1);
    let update = ingester
        .transaction(passing, &[Effect::Complete("w1".into())])
        .await;
    assert_eq!(wait.finish(LONG), 0, "stderr: {}", wait.stderr_text());
    let last_progress = wait.seen_of("progress").pop().cloned().unwrap();
    assert_eq!(last_progress["trigger"], "notify");
    assert_eq!(last_progress["passed"], true);
    let result = wait.seen.last().unwrap().clone();
    assert_eq!(result["type"], "result");
    assert_eq!(result["status"], "ok");
    assert_eq!(result["passed"], true);
    assert_eq!(result["checkpointRecordTime"], fmt(passing));
    assert_eq!(result["checkpointUpdateId"], update);
    assert_eq!(result["synchronizerId"], SYNC);
    let report = wait.seen_of("reconciliation")[0].clone();
    assert_eq!(report["counts"]["completed"], 1);
    assert_eq!(report["withdrawals"][0]["completedUpdateId"], update);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_checkpoints_alone_release_the_wait() {
    let (t, _db) = migrated().await;
    let mut ingester = TestIngester::new(&t.url).await;
    // No transaction at all: a quiet period advances only through offset checkpoints.
    let mut wait = Spawned::start(gate(&t.url).args([
        "wait",
        "--tsafe",
        T_SAFE,
        "--poll-interval",
        "1h",
        "--timeout",
        "2m",
    ]));
    let warning = wait.until(LONG, is("warning"));
    assert_eq!(warning["code"], "NO_CHECKPOINT");
    let t_safe = at(T_SAFE);
    ingester
        .offset_checkpoint(t_safe - Span::milliseconds(1))
        .await;
    wait.until(LONG, progress_at(fmt(t_safe - Span::milliseconds(1))));
    ingester
        .offset_checkpoint(t_safe + Span::milliseconds(1))
        .await;
    assert_eq!(wait.finish(LONG), 0, "stderr: {}", wait.stderr_text());
    let result = wait.seen.last().unwrap();
    assert_eq!(result["passed"], true);
    assert_eq!(result["checkpointUpdateId"], Value::Null);
    assert_eq!(
        result["checkpointRecordTime"],
        fmt(t_safe + Span::milliseconds(1))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_alone_releases_the_wait() {
    let (t, _db) = migrated().await;
    let mut ingester = TestIngester::new(&t.url).await;
    let mut wait = Spawned::start(gate(&t.url).args([
        "wait",
        "--tsafe",
        T_SAFE,
        "--no-listen",
        "--poll-interval",
        "100ms",
        "--timeout",
        "2m",
    ]));
    assert_eq!(wait.until(LONG, is("waiting"))["mode"], "poll");
    // Commit only after the first read, so that the release comes from a poll.
    let first = wait.until(LONG, is("progress"));
    assert_eq!(first["passed"], false);
    ingester
        .offset_checkpoint(at(T_SAFE) + Span::seconds(1))
        .await;
    assert_eq!(wait.finish(LONG), 0, "stderr: {}", wait.stderr_text());
    let last_progress = wait.seen_of("progress").pop().cloned().unwrap();
    assert_eq!(last_progress["trigger"], "poll");
    assert_eq!(last_progress["passed"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wait_survives_a_postgres_restart() {
    let cluster = PgCluster::new();
    let (t, db) = migrated_in(&cluster).await;
    let ingester = TestIngester::new(&t.url).await;
    request_withdrawal(&db, "w1", Some(at(T_SAFE)), true).await;
    freeze(&t.url);
    let mut wait =
        Spawned::start(gate(&t.url).args(["wait", "--poll-interval", "1h", "--timeout", "2m"]));
    wait.until(LONG, is("progress"));

    cluster.restart();
    drop(ingester);
    drop(db);
    // The listener reconnects and re-reads at once (notifications in the gap are lost).
    let p = wait.until(LONG, |v| {
        v["type"] == "progress" && v["trigger"] == "reconnect"
    });
    assert_eq!(p["passed"], false);

    let mut ingester = TestIngester::new(&t.url).await;
    ingester
        .offset_checkpoint(at(T_SAFE) + Span::seconds(1))
        .await;
    assert_eq!(wait.finish(LONG), 0, "stderr: {}", wait.stderr_text());
    assert_eq!(wait.seen.last().unwrap()["passed"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_exits_4_with_the_report_and_a_one_line_error() {
    let (t, db) = migrated().await;
    let mut ingester = TestIngester::new(&t.url).await;
    ingester.transaction(at("2029-01-01T00:00:00Z"), &[]).await;
    request_withdrawal(&db, "w1", Some(at(T_SAFE)), false).await;
    freeze(&t.url);
    let r = run(gate(&t.url).args(["wait", "--timeout", "300ms", "--poll-interval", "100ms"]));
    assert_eq!(r.code, 4, "stderr: {}", r.stderr);
    let report = r.of_type("reconciliation");
    assert_eq!(report["counts"]["pending"], 1);
    assert_eq!(report["withdrawals"][0]["withdrawalId"], "w1");
    assert_eq!(report["withdrawals"][0]["expired"], false);
    let err = r.last();
    assert_eq!(
        (
            err["type"].clone(),
            err["status"].clone(),
            err["exitCode"].clone()
        ),
        ("error".into(), "timeout".into(), 4.into())
    );
    let stderr: Vec<&str> = r.stderr.lines().collect();
    assert!(stderr[0].starts_with("error: timed out after 300 ms waiting for ingester \"tx-ingest\" to pass tSafe 2030-01-01T00:00:00.000000Z (checkpoint 2029-01-01T00:00:00.000000Z"), "{}", r.stderr);
    assert!(stderr[1].starts_with("hint: "), "{}", r.stderr);
    assert_eq!(stderr.len(), 2, "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_heartbeat_and_stopped_ingester_are_warned_about() {
    let (t, _db) = migrated().await;
    let mut ingester = TestIngester::new(&t.url).await;
    ingester.transaction(at("2029-01-01T00:00:00Z"), &[]).await;
    ingester
        .db()
        .client()
        .batch_execute(
            "UPDATE ingestion_control SET heartbeat_at = now() - interval '10 minutes',
                 desired_state = 'stopped'",
        )
        .await
        .unwrap();
    let r = run(gate(&t.url).args([
        "wait",
        "--tsafe",
        T_SAFE,
        "--timeout",
        "200ms",
        "--heartbeat-stale-after",
        "1m",
    ]));
    assert_eq!(r.code, 4, "{}", r.stderr);
    let codes: Vec<&str> = r
        .lines
        .iter()
        .filter(|v| v["type"] == "warning")
        .map(|v| v["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["HEARTBEAT_STALE", "INGESTER_STOPPED"],
        "{:#?}",
        r.lines
    );
    let stale = r.of_type("warning");
    assert!(stale["heartbeatAgeMs"].as_i64().unwrap() >= 600_000);
    assert!(
        r.stderr
            .contains("warning: the heartbeat of ingester \"tx-ingest\" is stale"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("warning: ingester \"tx-ingest\" is stopped"),
        "{}",
        r.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_on_another_synchronizer_does_not_count() {
    let (t, _db) = migrated().await;
    let mut other = TestIngester::named(&t.url, INGESTER, "other-domain::1220dddd").await;
    other.offset_checkpoint(at(T_SAFE) + Span::days(1)).await;
    let r = run(gate(&t.url).args([
        "wait",
        "--tsafe",
        T_SAFE,
        "--synchronizer-id",
        SYNC,
        "--timeout",
        "200ms",
    ]));
    assert_eq!(r.code, 4, "{}", r.stderr);
    let w = r.of_type("warning");
    assert_eq!(w["code"], "SYNCHRONIZER_MISMATCH");
    assert_eq!(w["expectedSynchronizerId"], SYNC);
    assert_eq!(r.of_type("progress")["passed"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_refuses_a_gate_that_is_not_frozen() {
    let (t, _db) = migrated().await;
    let r = run(gate(&t.url).args(["wait", "--ttl", "1h", "--timeout", "1s"]));
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("error: gate \"cn-withdrawals\" is not frozen"),
        "{}",
        r.stderr
    );
    assert_eq!(r.last()["status"], "refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_checks_once_and_records_nothing_but_its_audit_row() {
    let (t, db) = migrated().await;
    let mut ingester = TestIngester::new(&t.url).await;
    ingester.transaction(at("2029-01-01T00:00:00Z"), &[]).await;
    request_withdrawal(&db, "w1", Some(at(T_SAFE)), true).await;
    freeze(&t.url);
    let r = run(gate(&t.url).args(["wait", "--dry-run", "--timeout", "1h"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let kinds: Vec<&str> = r
        .lines
        .iter()
        .map(|v| v["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["waiting", "progress", "reconciliation", "result"]);
    assert_eq!(r.last()["dryRun"], true);
    assert_eq!(r.last()["passed"], false);
    let recorded = PgCluster::shared().query(
        &t.name,
        "SELECT tsafe IS NULL FROM canton_integration.withdrawal_gate",
    );
    assert_eq!(recorded, "t");
    let rows = audit_rows(PgCluster::shared(), &t);
    assert_eq!(
        rows.last().map(|r| (r.0.as_str(), r.1)),
        Some(("wait", true))
    );
}

/// Times that differ per run, replaced for snapshots.
fn normalize(mut v: Value, frozen_at: &str) -> Value {
    fn walk(v: &mut Value, frozen_at: &str) {
        match v {
            Value::String(s) if s == frozen_at => *s = "[frozenAt]".into(),
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, frozen_at)),
            Value::Object(m) => m.values_mut().for_each(|x| walk(x, frozen_at)),
            _ => {}
        }
    }
    walk(&mut v, frozen_at);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciliation_report_covers_every_withdrawal_in_flight() {
    let (t, db) = migrated().await;
    let mut ingester = TestIngester::new(&t.url).await;
    ingester.transaction(at("2029-06-01T00:00:00Z"), &[]).await;
    request_withdrawal(&db, "w-done", Some(at("2029-06-30T00:00:00Z")), true).await;
    request_withdrawal(&db, "w-rejected", Some(at("2029-07-31T00:00:00Z")), true).await;
    request_withdrawal(&db, "w-late", Some(at(T_SAFE)), false).await;
    request_withdrawal(&db, "w-no-target", None, false).await;
    freeze(&t.url);
    let frozen_at = run(gate(&t.url).arg("status")).last()["frozenAt"]
        .as_str()
        .unwrap()
        .to_string();

    let mut wait =
        Spawned::start(gate(&t.url).args(["wait", "--poll-interval", "1h", "--timeout", "2m"]));
    let waiting = wait.until(LONG, is("waiting"));
    assert_eq!(waiting["inFlight"], 4);
    let w = wait.until(LONG, |v| v["type"] == "warning" && v["code"] == "TSAFE");
    assert!(
        w["message"]
            .as_str()
            .unwrap()
            .starts_with("1 in-flight withdrawal(s) have no trecTgt")
    );
    ingester
        .transaction(
            at("2029-06-02T00:00:00Z"),
            &[Effect::Complete("w-done".into())],
        )
        .await;
    ingester
        .transaction(
            at("2029-06-03T00:00:00Z"),
            &[Effect::Fail(
                "w-rejected".into(),
                "rejected by receiver".into(),
            )],
        )
        .await;
    // A withdrawal whose request the restore lost, re-created from chain data.
    ingester
        .transaction(
            at("2029-06-04T00:00:00Z"),
            &[Effect::Recover(NewWithdrawal {
                withdrawal_id: "w-lost".into(),
                receiver: Some("customer::1220bbbb".into()),
                instrument_id: Some("Amulet".into()),
                amount: Some("42.0000000000".into()),
                ..Default::default()
            })],
        )
        .await;
    ingester.offset_checkpoint(at("2030-01-01T00:00:01Z")).await;
    assert_eq!(wait.finish(LONG), 0, "stderr: {}", wait.stderr_text());
    let report = wait.seen_of("reconciliation")[0].clone();
    // Key order depends on serde_json features; the snapshot must not.
    insta::with_settings!({ sort_maps => true }, {
        insta::assert_json_snapshot!(normalize(report, &frozen_at));
    });
}
