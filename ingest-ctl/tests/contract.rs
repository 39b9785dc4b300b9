//! The SQL statements of `docs/ingestion-contract.md`, run exactly as the
//! document prints them against real PostgreSQL, together with `ingest-ctl`.

mod support;

use integration_db::notify::{Event, ProgressListener};
use integration_db::{ConnectOptions, Db};
use support::ingester::at;
use support::{INGESTER, SYNC, client, ctl_async, doc, expect, migrated};

fn sql(name: &str) -> String {
    doc::statements()
        .remove(name)
        .unwrap_or_else(|| panic!("the contract has no statement `{name}`"))
}

#[test]
fn the_contract_prints_every_statement_an_ingester_needs() {
    let names: Vec<String> = doc::statements().into_keys().collect();
    assert_eq!(
        names,
        [
            "ack",
            "checkpoint",
            "checkpoint_offset",
            "checkpoint_transaction",
            "example_tables",
            "fence",
            "heartbeat",
            "last",
            "notify_progress",
            "read_control",
            "record_update",
            "register",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn register_read_ack_and_heartbeat() {
    let db = migrated();
    let c = client(&db).await;
    assert_eq!(c.execute(&sql("register"), &[&INGESTER]).await.unwrap(), 1);
    assert_eq!(
        c.execute(&sql("register"), &[&INGESTER]).await.unwrap(),
        0,
        "registering twice is a no-op"
    );
    let row = c
        .query_one(&sql("read_control"), &[&INGESTER])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>("generation"), 0);
    assert_eq!(row.get::<_, String>("desired_state"), "running");
    assert_eq!(row.get::<_, i32>("offset_epoch"), 0);
    assert_eq!(row.get::<_, Option<i64>>("begin_exclusive"), None);

    // ingest-ctl sees the registration: never beaten, so not live.
    let status = expect(&ctl_async(&db, &["status"]).await, 0);
    assert_eq!(status["liveIngester"], false);
    assert_eq!(status["actualState"], serde_json::Value::Null);

    let acked = c
        .query(&sql("ack"), &[&INGESTER, &"running", &0i64])
        .await
        .unwrap();
    assert_eq!(acked.len(), 1, "ack returns the notification row");
    // An older generation never moves the acknowledgement back.
    c.query(&sql("ack"), &[&INGESTER, &"running", &-3i64])
        .await
        .unwrap();
    assert_eq!(c.execute(&sql("heartbeat"), &[&INGESTER]).await.unwrap(), 1);
    let status = expect(&ctl_async(&db, &["status"]).await, 0);
    assert_eq!(status["actualState"], "running");
    assert_eq!(status["ackedGeneration"], 0);
    assert_eq!(status["acknowledged"], true);
    assert_eq!(status["liveIngester"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_records_dedups_checkpoints_and_notifies_atomically() {
    let db = migrated();
    let mut c = client(&db).await;
    c.execute(&sql("register"), &[&INGESTER]).await.unwrap();
    c.query(&sql("ack"), &[&INGESTER, &"running", &0i64])
        .await
        .unwrap();
    let mut listener = ProgressListener::start(&ConnectOptions::from_url(&db.url))
        .await
        .unwrap();

    let t1 = at("2025-11-27T06:50:00.123456Z");
    let commit = async |c: &mut tokio_postgres::Client, id: &str, offset: i64, commit: bool| {
        let tx = c.transaction().await.unwrap();
        let epoch: i32 = tx
            .query_one(&sql("fence"), &[&INGESTER, &0i64])
            .await
            .unwrap()
            .get(0);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
            [&INGESTER, &id, &offset, &t1, &SYNC, &epoch];
        let new = tx
            .query_opt(&sql("record_update"), &params)
            .await
            .unwrap()
            .is_some();
        tx.execute(&sql("checkpoint_transaction"), &params)
            .await
            .unwrap();
        tx.query(
            &sql("notify_progress"),
            &[&INGESTER, &offset, &t1, &epoch, &Some(id)],
        )
        .await
        .unwrap();
        if commit {
            tx.commit().await.unwrap();
        } else {
            tx.rollback().await.unwrap();
        }
        new
    };

    // A rolled-back commit leaves nothing and notifies nobody.
    assert!(commit(&mut c, "u-rolled-back", 5, false).await);
    assert!(commit(&mut c, "u1", 10, true).await);
    match tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv()).await {
        Ok(Some(Event::Progress(p))) => {
            assert_eq!(p.ingester, INGESTER);
            assert_eq!(p.offset, 10, "the rolled-back commit was not delivered");
            assert_eq!(p.record_time, t1);
            assert_eq!(p.update_id.as_deref(), Some("u1"));
            assert_eq!(p.offset_epoch, 0);
        }
        other => panic!("expected the progress notification, got {other:?}"),
    }
    // The same update id again (a re-delivery): not new, the checkpoint still moves.
    assert!(!commit(&mut c, "u1", 11, true).await);
    let db_handle = Db::connect(&ConnectOptions::from_url(&db.url))
        .await
        .unwrap();
    assert_eq!(
        integration_db::updates::count(db_handle.client(), Some(INGESTER))
            .await
            .unwrap(),
        1
    );
    let last = expect(&ctl_async(&db, &["last"]).await, 0);
    assert_eq!(
        last,
        serde_json::json!({"type":"last","recordTime":"2025-11-27T06:50:00.123456Z",
            "synchronizerId":SYNC,"offset":11,"updateId":"u1","epoch":0})
    );

    // An offset checkpoint moves the checkpoint, and `last` keeps the transaction.
    let t2 = at("2025-11-27T06:51:00Z");
    c.execute(
        &sql("checkpoint_offset"),
        &[&INGESTER, &12i64, &t2, &SYNC, &0i32],
    )
    .await
    .unwrap();
    let status = expect(&ctl_async(&db, &["status"]).await, 0);
    assert_eq!(status["checkpoint"]["offset"], 12);
    assert_eq!(status["checkpoint"]["updateId"], serde_json::Value::Null);
    assert_eq!(
        status["checkpoint"]["recordTime"],
        "2025-11-27T06:51:00.000000Z"
    );
    assert_eq!(status["lastTransaction"]["offset"], 11);
    assert_eq!(expect(&ctl_async(&db, &["last"]).await, 0)["offset"], 11);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fence_stops_commits_after_a_stop_and_a_stop_waits_for_the_commit_in_flight() {
    let db = migrated();
    let mut c = client(&db).await;
    c.execute(&sql("register"), &[&INGESTER]).await.unwrap();
    c.query(&sql("ack"), &[&INGESTER, &"running", &0i64])
        .await
        .unwrap();

    // A commit in flight holds the fence: the stop waits for it.
    let tx = c.transaction().await.unwrap();
    assert!(
        tx.query_opt(&sql("fence"), &[&INGESTER, &0i64])
            .await
            .unwrap()
            .is_some()
    );
    let stop = tokio::spawn({
        let db = db.clone();
        async move { ctl_async(&db, &["stop"]).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !stop.is_finished(),
        "stop did not wait for the commit in flight"
    );
    tx.commit().await.unwrap();
    let stopped = expect(&stop.await.unwrap(), 0);
    assert_eq!(stopped["generation"], 1);

    // After the stop, a commit acting on generation 0 is fenced off.
    let tx = c.transaction().await.unwrap();
    assert!(
        tx.query_opt(&sql("fence"), &[&INGESTER, &0i64])
            .await
            .unwrap()
            .is_none()
    );
    // Even with the current generation: the desired state is stopped.
    assert!(
        tx.query_opt(&sql("fence"), &[&INGESTER, &1i64])
            .await
            .unwrap()
            .is_none()
    );
    tx.rollback().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn begin_exclusive_follows_the_resume_offset_until_a_checkpoint_in_its_epoch() {
    let db = migrated();
    let c = client(&db).await;
    c.execute(&sql("register"), &[&INGESTER]).await.unwrap();
    let t = at("2025-11-27T06:50:00Z");
    c.execute(
        &sql("checkpoint_offset"),
        &[&INGESTER, &40i64, &t, &SYNC, &0i32],
    )
    .await
    .unwrap();
    let begin = async || -> (Option<i64>, i32) {
        let row = c
            .query_one(&sql("read_control"), &[&INGESTER])
            .await
            .unwrap();
        (row.get("begin_exclusive"), row.get("offset_epoch"))
    };
    assert_eq!(begin().await, (Some(40), 0));

    // Nobody ever beat: no live ingester, so the stop and the resume are allowed.
    expect(&ctl_async(&db, &["stop"]).await, 0);
    let set = expect(&ctl_async(&db, &["set-offset", "7"]).await, 0);
    assert_eq!(set["offsetEpoch"], 1);
    assert_eq!(begin().await, (Some(7), 1), "the resume offset is owed");

    // A checkpoint in the old epoch does not consume it; one in the new epoch does.
    c.execute(
        &sql("checkpoint_offset"),
        &[&INGESTER, &41i64, &t, &SYNC, &0i32],
    )
    .await
    .unwrap();
    assert_eq!(begin().await, (Some(7), 1));
    c.execute(
        &sql("checkpoint_offset"),
        &[&INGESTER, &8i64, &t, &SYNC, &1i32],
    )
    .await
    .unwrap();
    assert_eq!(begin().await, (Some(8), 1));
    let status = expect(&ctl_async(&db, &["status"]).await, 0);
    assert_eq!(status["resumePending"], false);
    assert_eq!(status["position"], 8);
}
