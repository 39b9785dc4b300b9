//! `--queries FILE`: the example mapping of `docs/ingestion-contract.md`,
//! as printed there, points `last`, `status` and the checkpoint reads of
//! `set-offset` and `start --caught-up` at an exchange's own table.

mod support;

use canton_dr_testkit::TestDb;
use serde_json::json;
use std::path::PathBuf;
use support::ledger::Ledger;
use support::{INGESTER, SYNC, client, ctl, doc, expect, migrated, query};

/// The example tables in `db` and the example queries file on disk.
async fn exchange_tables(db: &TestDb) -> (tempfile::TempDir, PathBuf) {
    let c = client(db).await;
    c.batch_execute(&doc::statements()["example_tables"])
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("exchange-queries.sql");
    std::fs::write(&file, doc::example_queries_file()).unwrap();
    (dir, file)
}

fn with_queries(db: &TestDb, file: &PathBuf) -> std::process::Command {
    let mut cmd = ctl(db);
    cmd.env("INGEST_CTL_QUERIES", file);
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn the_documented_mapping_drives_last_status_set_offset_and_caught_up() {
    let db = migrated();
    let (_dir, file) = exchange_tables(&db).await;
    let c = client(&db).await;
    c.execute(&doc::statements()["register"], &[&INGESTER])
        .await
        .unwrap();
    query(
        &db,
        &format!(
            "INSERT INTO exchange_ingest.progress VALUES ('{INGESTER}', 52, '2025-11-27T06:00:09Z', '{SYNC}', NULL, 0, 50, '2025-11-27T06:00:08.000001Z', 'x50')"
        ),
    );

    let last = expect(&with_queries(&db, &file).arg("last").output().unwrap(), 0);
    assert_eq!(
        last,
        json!({"type":"last","recordTime":"2025-11-27T06:00:08.000001Z","synchronizerId":SYNC,
               "offset":50,"updateId":"x50","epoch":0})
    );
    // Without the file, ingest-ctl's own (empty) tables answer.
    expect(&ctl(&db).arg("last").output().unwrap(), 1);

    let status = expect(&with_queries(&db, &file).arg("status").output().unwrap(), 0);
    assert_eq!(
        status["checkpoint"],
        json!({"offset":52,"recordTime":"2025-11-27T06:00:09.000000Z","synchronizerId":SYNC,
               "updateId":null,"epoch":0})
    );
    assert_eq!(status["lastTransaction"]["updateId"], "x50");
    assert_eq!(status["position"], 52);

    // set-offset reads the mapped checkpoint to know whether its resume is pending.
    expect(&with_queries(&db, &file).arg("stop").output().unwrap(), 0);
    let set = expect(
        &with_queries(&db, &file)
            .args(["set-offset", "20"])
            .output()
            .unwrap(),
        0,
    );
    assert_eq!(set["offsetEpoch"], 1);
    let again = expect(
        &with_queries(&db, &file)
            .args(["set-offset", "20"])
            .output()
            .unwrap(),
        0,
    );
    assert_eq!(
        again["changed"], false,
        "pending: the mapped checkpoint is in epoch 0"
    );
    let status = expect(&with_queries(&db, &file).arg("status").output().unwrap(), 0);
    assert_eq!(status["resumePending"], true);
    assert_eq!(status["position"], 20);

    // start --caught-up waits on the mapped checkpoint.
    let ledger = Ledger::start(60);
    let child = support::spawn(with_queries(&db, &file).args([
        "start",
        "--caught-up",
        "--ledger-api",
        &ledger.address,
        "--timeout",
        "20s",
        "--poll-interval",
        "100ms",
    ]));
    support::eventually(10, "the start request", || {
        support::control_row(canton_dr_testkit::PgCluster::shared(), &db).starts_with("running")
    });
    let generation: i64 = query(
        &db,
        "SELECT generation FROM canton_integration.ingestion_control",
    )
    .parse()
    .unwrap();
    c.query(
        &doc::statements()["ack"],
        &[&INGESTER, &"running", &generation],
    )
    .await
    .unwrap();
    query(
        &db,
        "UPDATE exchange_ingest.progress SET stream_offset = 60, epoch = 1",
    );
    let start = expect(&child.wait_with_output().unwrap(), 0);
    assert_eq!(start["caughtUp"], true);
    assert_eq!(start["position"], 60);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mapped_last_needs_no_integration_db_schema() {
    let db = support::fresh();
    let (_dir, file) = exchange_tables(&db).await;
    query(
        &db,
        &format!(
            "INSERT INTO exchange_ingest.progress VALUES ('{INGESTER}', 3, '2025-11-27T06:00:09Z', '{SYNC}', 'x3', 2, 3, '2025-11-27T06:00:09Z', 'x3')"
        ),
    );
    let last = expect(&with_queries(&db, &file).arg("last").output().unwrap(), 0);
    assert_eq!(last["updateId"], "x3");
    assert_eq!(last["epoch"], 2);
    // Everything that steers still needs the control table.
    let out = with_queries(&db, &file).arg("status").output().unwrap();
    expect(&out, 2);
    assert!(support::text(&out.stderr).contains("does not exist"));
}
