//! The query docs/withdrawal-gate.md tells Exchange Internal Systems to run,
//! taken from the document itself and run as documented: in the transaction
//! that creates the withdrawal, after the INSERT, before COMMIT.

mod common;

use canton_dr_testkit::PgCluster;
use chrono::{DateTime, Utc};
use common::*;
use integration_db::{ConnectOptions, Db, Transaction};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The SQL block between the document's markers.
fn documented_query() -> String {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/withdrawal-gate.md"
    ))
    .expect("read docs/withdrawal-gate.md");
    let start = doc
        .find("<!-- internal-systems-check: begin -->")
        .expect("begin marker");
    let end = doc
        .find("<!-- internal-systems-check: end -->")
        .expect("end marker");
    let block = &doc[start..end];
    let sql = block
        .split("```sql")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a ```sql block between the markers");
    sql.trim().to_string()
}

async fn internal_systems(url: &str) -> Db {
    Db::connect(&ConnectOptions::from_url(url).application_name("internal-systems"))
        .await
        .unwrap()
}

/// Inserts a withdrawal as Internal Systems would, then runs the documented check.
async fn insert_and_check(tx: &Transaction<'_>, id: &str) -> bool {
    tx.execute(
        "INSERT INTO canton_integration.withdrawals (withdrawal_id, account_id, amount, trec_tgt)
         VALUES ($1, 'acct', 10, now() + interval '1 hour')",
        &[&id],
    )
    .await
    .unwrap();
    tx.query_one(&documented_query(), &[]).await.unwrap().get(0)
}

/// Creates withdrawal `id` unless the gate is frozen; returns whether it was created.
async fn create_withdrawal(db: &mut Db, id: &str) -> bool {
    let tx = db.transaction().await.unwrap();
    if insert_and_check(&tx, id).await {
        tx.rollback().await.unwrap();
        false
    } else {
        tx.commit().await.unwrap();
        true
    }
}

fn withdrawal_ids(cluster: &PgCluster, db: &str) -> Vec<String> {
    cluster
        .query(
            db,
            "SELECT withdrawal_id FROM canton_integration.withdrawals ORDER BY 1",
        )
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_query_follows_freeze_and_thaw() {
    let (t, _db) = migrated().await;
    let mut is = internal_systems(&t.url).await;
    assert!(
        create_withdrawal(&mut is, "before-any-freeze").await,
        "no gate row means open"
    );
    assert_eq!(
        run(gate(&t.url).args(["freeze", "--reason", "restore"])).code,
        0
    );
    assert!(!create_withdrawal(&mut is, "while-frozen").await);
    let r = run(gate(&t.url).args(["thaw", "--force", "--reason", "test", "--yes"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(create_withdrawal(&mut is, "after-thaw").await);
    assert_eq!(
        withdrawal_ids(PgCluster::shared(), &t.name),
        ["after-thaw", "before-any-freeze"]
    );
}

/// Sessions of `application_name` waiting for a heavyweight lock.
fn lock_waiters(cluster: &PgCluster, db: &str, app: &str) -> usize {
    cluster
        .query(
            db,
            &format!(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND application_name = '{app}'
                   AND wait_event_type = 'Lock'"
            ),
        )
        .parse()
        .unwrap()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_withdrawal_slips_in_around_a_concurrent_freeze() {
    let cluster = PgCluster::shared();
    let (t, _db) = migrated().await;
    let mut early = internal_systems(&t.url).await;
    let tx = early.transaction().await.unwrap();
    // Checked before the freeze, not yet committed.
    assert!(!insert_and_check(&tx, "early").await);

    let freeze = gate(&t.url)
        .args(["freeze", "--reason", "restore", "--ttl", "1h"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("freeze to wait for the open withdrawal transaction", || {
        lock_waiters(cluster, &t.name, "withdrawal-gate") == 1
    });

    // A withdrawal attempted while the freeze waits queues behind it.
    let mut late = internal_systems(&t.url).await;
    let late_task = tokio::spawn(async move { create_withdrawal(&mut late, "late").await });
    wait_for("the late insert to queue behind the freeze", || {
        lock_waiters(cluster, &t.name, "internal-systems") == 1
    });

    let committed: DateTime<Utc> = tx
        .query_one("SELECT clock_timestamp()", &[])
        .await
        .unwrap()
        .get(0);
    tx.commit().await.unwrap();

    let out = tokio::task::spawn_blocking(move || freeze.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success());
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let frozen_at = at(result["frozenAt"].as_str().unwrap());
    assert!(
        frozen_at > committed,
        "frozen_at {frozen_at} must follow the commit of the early withdrawal at {committed}"
    );
    assert!(
        !late_task.await.unwrap(),
        "the late withdrawal must see the freeze"
    );
    assert_eq!(withdrawal_ids(cluster, &t.name), ["early"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeze_gives_up_on_a_withdrawal_transaction_that_never_ends() {
    let (t, _db) = migrated().await;
    let mut stuck = internal_systems(&t.url).await;
    let tx = stuck.transaction().await.unwrap();
    assert!(!insert_and_check(&tx, "stuck").await);
    let r = run(gate(&t.url).args(["freeze", "--reason", "restore", "--lock-timeout", "200ms"]));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.starts_with("error: transactions writing withdrawals did not finish within 200 ms; nothing was changed"),
        "{}",
        r.stderr
    );
    tx.rollback().await.unwrap();
    assert_eq!(run(gate(&t.url).arg("status")).last()["frozen"], false);
}
