//! set-offset through the real binary: its safety checks, its idempotence,
//! concurrent callers, and runbook A end to end (`last` → offset-lookup's
//! lookup → `set-offset -` → `start --caught-up`) with a test ingester.

mod support;

use canton_client::{CantonError, RetryPolicy};
use canton_dr_testkit::{PgCluster, TestDb};
use chrono::{DateTime, Utc};
use offset_lookup::input::{FlagValues, from_json};
use offset_lookup::lookup::{LookupOptions, Mode as LookupMode, OffsetService, lookup};
use offset_lookup::validate::SynchronizerId;
use offset_lookup::wait::Patience;
use serde_json::{Value, json};
use std::future::Future;
use support::ingester::{Item, Mode, TestIngester, at};
use support::ledger::Ledger;
use support::{INGESTER, control_row, ctl, expect, migrated, query, run_with_stdin};

fn row(db: &TestDb) -> String {
    control_row(PgCluster::shared(), db)
}

fn ingester_running(db: &TestDb) -> TestIngester {
    let ing = TestIngester::start(&db.url, INGESTER);
    support::eventually(10, "the ingester to acknowledge running", || {
        row(db).starts_with("running|running|")
    });
    ing
}

fn refusals(db: &TestDb) -> String {
    query(
        db,
        "SELECT details->>'refused' FROM canton_integration.audit_log WHERE command = 'set-offset' AND outcome = 'refused' ORDER BY id",
    )
}

#[test]
fn refused_while_ingestion_runs() {
    let db = migrated();
    let _ing = ingester_running(&db);
    let before = row(&db);
    let out = ctl(&db).args(["set-offset", "42"]).output().unwrap();
    let err = expect(&out, 5);
    assert_eq!(err["status"], "refused");
    let stderr = support::text(&out.stderr);
    insta::assert_snapshot!("refused_while_running", stderr);
    assert_eq!(row(&db), before, "nothing changed");
    assert_eq!(refusals(&db), "ingestion not stopped");
    // Dry runs are refused alike.
    let out = ctl(&db)
        .args(["set-offset", "42", "--dry-run"])
        .output()
        .unwrap();
    expect(&out, 5);
}

#[test]
fn refused_until_a_live_ingester_acknowledged_the_stop() {
    let db = migrated();
    let ing = ingester_running(&db);
    ing.set_mode(Mode::Frozen);
    expect(&ctl(&db).arg("stop").output().unwrap(), 0);
    let out = ctl(&db).args(["set-offset", "42"]).output().unwrap();
    expect(&out, 5);
    let first = support::text(&out.stderr);
    assert!(
        first.starts_with("error: ingester \"tx-a\" has not acknowledged the stop: generation 1, acknowledged 0, actual state running, last heartbeat "),
        "{first}"
    );
    ing.set_mode(Mode::Normal);
    support::eventually(10, "the stop acknowledgement", || {
        row(&db).starts_with("stopped|stopped|1|1")
    });
    let set = expect(&ctl(&db).args(["set-offset", "42"]).output().unwrap(), 0);
    assert_eq!(set["liveIngester"], true);
    assert_eq!(set["resumeOffset"], 42);
    assert_eq!(set["offsetEpoch"], 1);
    assert_eq!(set["generation"], 2);
    // The stopped ingester acknowledges the resume's generation too.
    support::eventually(10, "the resume acknowledgement", || {
        row(&db) == "stopped|stopped|2|2|42|1|"
    });
}

#[test]
fn the_same_resume_twice_is_one_epoch_and_a_consumed_one_is_a_new_epoch() {
    let db = migrated();
    let ing = ingester_running(&db);
    expect(&ctl(&db).args(["stop", "--wait"]).output().unwrap(), 0);
    let args = ["set-offset", "7", "--dedup-from", "2025-11-27T06:00:00.25Z"];
    let first = expect(&ctl(&db).args(args).output().unwrap(), 0);
    assert_eq!(first["changed"], true);
    assert_eq!(first["dedupFrom"], "2025-11-27T06:00:00.250000Z");
    let second = expect(&ctl(&db).args(args).output().unwrap(), 0);
    assert_eq!(second["changed"], false);
    assert_eq!(second["offsetEpoch"], 1);
    assert_eq!(second["generation"], first["generation"]);
    // A different dedup-from is a different request.
    let third = expect(&ctl(&db).args(["set-offset", "7"]).output().unwrap(), 0);
    assert_eq!(third["changed"], true);
    assert_eq!(third["offsetEpoch"], 2);
    assert_eq!(third["dedupFrom"], Value::Null);

    // The ingester takes the resume and checkpoints in epoch 2: consumed.
    ing.push([Item::tx(8, "u8", "2025-11-27T06:00:01Z")]);
    expect(&ctl(&db).args(["start", "--wait"]).output().unwrap(), 0);
    support::eventually(10, "u8", || ing.applied() == ["u8"]);
    expect(&ctl(&db).args(["stop", "--wait"]).output().unwrap(), 0);
    let again = expect(&ctl(&db).args(["set-offset", "7"]).output().unwrap(), 0);
    assert_eq!(again["changed"], true, "the ingester moved on since");
    assert_eq!(again["offsetEpoch"], 3);
}

#[test]
fn concurrent_calls_leave_one_consistent_result() {
    let db = migrated();
    // Registered, never beaten: no live ingester, so every call may proceed.
    query(
        &db,
        "INSERT INTO canton_integration.ingestion_control (ingester, desired_state) VALUES ('tx-a', 'stopped')",
    );
    let children: Vec<_> = (0..8)
        .map(|i| support::spawn(ctl(&db).args(["set-offset", &(100 + i).to_string()])))
        .collect();
    let results: Vec<Value> = children
        .into_iter()
        .map(|c| expect(&c.wait_with_output().unwrap(), 0))
        .collect();
    let mut generations: Vec<i64> = results
        .iter()
        .map(|r| r["generation"].as_i64().unwrap())
        .collect();
    generations.sort_unstable();
    assert_eq!(
        generations,
        (1..=8).collect::<Vec<_>>(),
        "serialized, one bump each"
    );
    let last = results
        .iter()
        .max_by_key(|r| r["generation"].as_i64())
        .unwrap();
    assert_eq!(
        row(&db),
        format!("stopped||8|0|{}|8|", last["resumeOffset"]),
        "the row is the last writer's"
    );
    assert!(results.iter().all(|r| r["offsetEpoch"] == r["generation"]));

    // The same offset from many callers at once: one epoch.
    let children: Vec<_> = (0..6)
        .map(|_| support::spawn(ctl(&db).args(["set-offset", "500"])))
        .collect();
    let changed = children
        .into_iter()
        .map(|c| expect(&c.wait_with_output().unwrap(), 0))
        .filter(|r| r["changed"] == true)
        .count();
    assert_eq!(changed, 1);
    assert_eq!(row(&db), "stopped||9|0|500|9|");
    assert_eq!(
        query(
            &db,
            "SELECT count(*) FROM canton_integration.audit_log WHERE command = 'set-offset' AND outcome = 'ok'"
        ),
        "14"
    );
}

#[test]
fn an_offset_beyond_the_ledger_end_is_refused() {
    let db = migrated();
    query(
        &db,
        "INSERT INTO canton_integration.ingestion_control (ingester, desired_state) VALUES ('tx-a', 'stopped')",
    );
    let ledger = Ledger::start(30);
    let out = ctl(&db)
        .args(["set-offset", "31", "--ledger-api", &ledger.address])
        .output()
        .unwrap();
    expect(&out, 5);
    assert_eq!(
        support::text(&out.stderr).lines().next().unwrap(),
        "error: offset 31 is beyond the node's ledger end 30"
    );
    assert_eq!(refusals(&db), "beyond the ledger end");
    let ok = expect(
        &ctl(&db)
            .args(["set-offset", "30", "--ledger-api", &ledger.address])
            .output()
            .unwrap(),
        0,
    );
    assert_eq!(ok["ledgerEnd"], 30);
}

/// A restored node as offset-lookup sees it: (record time, new offset) pairs,
/// answered as Canton does (highest offset with record time <= timestamp).
struct RestoredNode(Vec<(DateTime<Utc>, i64)>);

impl OffsetService for RestoredNode {
    fn highest_offset(
        &self,
        _synchronizer_id: &SynchronizerId,
        timestamp: DateTime<Utc>,
        _force: bool,
    ) -> impl Future<Output = Result<i64, CantonError>> {
        let offset = self
            .0
            .iter()
            .filter(|(t, _)| *t <= timestamp)
            .map(|(_, o)| *o)
            .max()
            .unwrap_or(0);
        std::future::ready(Ok(offset))
    }
}

/// `ingest-ctl last` → offset-lookup's input parsing and lookup → its JSON.
fn offset_lookup(last: &Value, node: &RestoredNode, mode: LookupMode) -> Value {
    let request = from_json(last, &FlagValues::default()).expect("offset-lookup reads `last`");
    let result = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(lookup(
            node,
            &request,
            &LookupOptions { mode, force: false },
            &Patience::Retry(RetryPolicy::no_retry()),
        ))
        .unwrap();
    serde_json::to_value(&result).unwrap()
}

#[test]
fn runbook_a_last_offset_lookup_set_offset_and_caught_up() {
    let db = migrated();
    let ing = ingester_running(&db);
    let times = [
        "2025-11-27T06:00:01Z",
        "2025-11-27T06:00:02Z",
        "2025-11-27T06:00:03.123456Z",
    ];
    ing.push(
        times
            .iter()
            .enumerate()
            .map(|(i, t)| Item::tx(10 * (i as i64 + 1), &format!("u{}", i + 1), t)),
    );
    support::eventually(10, "three updates", || ing.applied().len() == 3);

    // A1, A2.
    expect(&ctl(&db).args(["stop", "--wait"]).output().unwrap(), 0);
    let last = expect(&ctl(&db).arg("last").output().unwrap(), 0);
    assert_eq!(
        last,
        json!({"type": "last", "recordTime": "2025-11-27T06:00:03.123456Z",
               "synchronizerId": support::SYNC, "offset": 30, "updateId": "u3", "epoch": 0})
    );

    // A3: the restored node re-assigns offsets (101..103) and goes on (104, 105).
    let restored = vec![
        Item::tx(101, "u1", times[0]),
        Item::tx(102, "u2", times[1]),
        Item::tx(103, "u3", times[2]),
        Item::tx(104, "u4", "2025-11-27T06:00:04Z"),
        Item::checkpoint(105, "2025-11-27T06:00:05Z"),
    ];
    let node = RestoredNode(
        restored
            .iter()
            .filter_map(|i| match i {
                Item::Tx {
                    offset,
                    record_time,
                    ..
                } => Some((*record_time, *offset)),
                Item::Checkpoint { .. } => None,
            })
            .collect(),
    );
    ing.replace_ledger(restored);

    // A5, A6: the lookup's JSON goes into `set-offset -` unchanged.
    let looked_up = offset_lookup(&last, &node, LookupMode::Exact);
    assert_eq!(looked_up["offset"], 103);
    let set = expect(
        &run_with_stdin(
            ctl(&db).args(["set-offset", "-"]),
            &format!("{looked_up}\n"),
        ),
        0,
    );
    assert_eq!(set["resumeOffset"], 103);
    assert_eq!(set["input"], "stdin");
    assert_eq!(set["synchronizerId"], support::SYNC);
    assert_eq!(set["dedupFrom"], Value::Null);
    assert_eq!(set["offsetEpoch"], 1);

    // A7.
    let ledger = Ledger::start(105);
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
    assert_eq!(start["position"], 105);
    assert_eq!(ing.applied(), ["u1", "u2", "u3", "u4"], "each update once");
    assert!(ing.skipped().is_empty());
    let last = expect(&ctl(&db).arg("last").output().unwrap(), 0);
    assert_eq!(last["updateId"], "u4");
    assert_eq!(last["offset"], 104);
    assert_eq!(last["epoch"], 1);
}

#[test]
fn non_unique_record_times_resume_earlier_and_skip_what_was_ingested() {
    let db = migrated();
    let ing = ingester_running(&db);
    let t = "2025-11-27T06:00:03.000007Z";
    ing.push([
        Item::tx(10, "u1", "2025-11-27T06:00:01Z"),
        Item::tx(20, "u2", t),
    ]);
    support::eventually(10, "two updates", || ing.applied().len() == 2);
    expect(&ctl(&db).args(["stop", "--wait"]).output().unwrap(), 0);
    let last = expect(&ctl(&db).arg("last").output().unwrap(), 0);

    // After the restore, an imported update u2x shares u2's record time.
    let restored = vec![
        Item::tx(201, "u1", "2025-11-27T06:00:01Z"),
        Item::tx(202, "u2x", t),
        Item::tx(203, "u2", t),
        Item::tx(204, "u3", "2025-11-27T06:00:04Z"),
    ];
    let node = RestoredNode(vec![
        (at("2025-11-27T06:00:01Z"), 201),
        (at(t), 202),
        (at(t), 203),
        (at("2025-11-27T06:00:04Z"), 204),
    ]);
    ing.replace_ledger(restored);
    let looked_up = offset_lookup(&last, &node, LookupMode::NonUniqueRecordTimes);
    assert_eq!(looked_up["offset"], 201, "the offset as of tRecovery - 1µs");
    let set = expect(
        &run_with_stdin(ctl(&db).args(["set-offset", "-"]), &looked_up.to_string()),
        0,
    );
    assert_eq!(set["resumeOffset"], 201);
    assert_eq!(set["dedupFrom"], t, "tRecovery from the lookup");
    assert!(row(&db).ends_with(&format!("|201|1|{t}")), "{}", row(&db));

    let ledger = Ledger::start(204);
    expect(
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
    assert_eq!(ing.applied(), ["u1", "u2", "u2x", "u3"]);
    assert_eq!(ing.skipped(), ["u2"], "the re-delivered u2 is skipped");
}
