//! Exactly once, through the real binaries (canton-sim, tx-ingest) and a real
//! PostgreSQL, after: (a) kill -9 at random points, (b) a node restore with
//! reassigned offsets and runbook A's resume (without it, refused), (c) record-time ties resumed at
//! `tRecovery − 1µs` with dedup-from, (d) an Integration DB restore that lost
//! withdrawal requests, (e) a cut stream and a PostgreSQL restart mid-run.

mod common;

use chrono::{Duration as ChronoDuration, Utc};
use common::*;
use integration_db::control::{self, IngesterState};
use integration_db::withdrawals::{self, NewWithdrawal, WithdrawalStatus};
use integration_db::{checkpoint, updates};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use std::process::Command;
use std::time::Duration;

const OPERATOR: &str = "operator@test";

/// Runbook A steps 1, 6, 7 as `ingest-ctl` does them (no ingester is live).
async fn resume_at(db: &TestDb, offset: i64, dedup_from: Option<chrono::DateTime<Utc>>) {
    let c = db.db.client();
    control::set_desired_state(c, INGESTER, IngesterState::Stopped, OPERATOR)
        .await
        .unwrap();
    control::set_resume(c, INGESTER, offset, dedup_from, OPERATOR)
        .await
        .unwrap();
    control::set_desired_state(c, INGESTER, IngesterState::Running, OPERATOR)
        .await
        .unwrap();
}

/// Noise only (invisible to the treasury), a daemon until it has checkpointed
/// the ledger end in `epoch`, then kill -9: the offset checkpoint it left.
async fn offset_checkpoint_after_noise(
    sim: &Sim,
    db: &mut TestDb,
    epoch: i32,
) -> checkpoint::Checkpoint {
    sim.traffic(0, 0, 10);
    let daemon = Daemon::start(sim, &db.url, &[]);
    wait_checkpoint(db, sim.ledger_end(), epoch, Duration::from_secs(30)).await;
    daemon.kill9();
    let cp = checkpoint::get(db.db.client(), INGESTER)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cp.update_id, None, "an offset checkpoint: {cp:?}");
    cp
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_9_at_random_points_then_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(&dir.path().join("state"), &[]);
    let db = TestDb::fresh().await;
    sim.traffic(600, 200, 200);
    let seed: u64 = rand::random();
    eprintln!("kill -9 schedule seed: {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut killed_mid_catch_up = 0;
    for round in 0..6 {
        // Small batches early on, so that most kills land between commits of a catch-up.
        let batch = if round < 3 {
            1
        } else {
            rng.random_range(2..=64)
        };
        let before = db.checkpoint().await.map_or(0, |(offset, _)| offset);
        let daemon = Daemon::start(&sim, &db.url, &["--batch-size", &batch.to_string()]);
        // Kill shortly after the first commit of this round, whatever the machine's
        // load: a fixed sleep lands before start-up on a busy machine and after the
        // catch-up on an idle one.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while db.checkpoint().await.map_or(0, |(offset, _)| offset) <= before
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..40)));
        daemon.kill9();
        let end = sim.ledger_end();
        if let Some((offset, _)) = db.checkpoint().await
            && offset > 0
            && offset < end
        {
            killed_mid_catch_up += 1;
        }
        sim.traffic(rng.random_range(200..400), rng.random_range(0..40), 20);
    }
    assert!(
        killed_mid_catch_up > 0,
        "no kill landed during a catch-up (seed {seed})"
    );
    let result = once(&sim, &db.url, &[]);
    assert_eq!(
        result["offset"].as_i64(),
        Some(sim.ledger_end()),
        "{result}"
    );
    let booked = assert_exactly_once(&db, &sim).await;
    assert!(booked.updates > 800, "{booked:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn b_node_restore_reassigns_offsets_and_the_runbook_resumes_once() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let backup = dir.path().join("backup");
    let mut sim = Sim::start(&state, &["--catch-up", "1s"]);
    let db = TestDb::fresh().await;
    sim.traffic(300, 100, 100);
    sim.backup(&backup);
    // After the backup: traffic the restored node will re-process under new offsets.
    sim.traffic(300, 100, 100);
    once(&sim, &db.url, &["--batch-size", "50"]);
    let before = assert_exactly_once(&db, &sim).await;
    let last = checkpoint::get(db.db.client(), INGESTER)
        .await
        .unwrap()
        .unwrap()
        .last_transaction
        .unwrap();

    // The disaster and the restore.
    sim.restore(&backup);
    sim.restart();

    // Runbook A: tRecovery of the last ingested transaction → offRecovery on
    // the restored node (waits until it has processed that far).
    let off_recovery = sim.lookup(last.record_time, false).await;
    sim.wait_caught_up();
    assert_ne!(
        off_recovery, last.offset,
        "the restored node assigns other offsets"
    );
    // Started without the runbook's resume, the ingester would continue from
    // its checkpoint's offset in the old numbering: it refuses (exit 5),
    // names the fix, and writes nothing.
    let count = "SELECT count(*) FROM ingested_updates";
    let booked_before = db.scalar_i64(count).await;
    let stderr = once_refused(&sim, &db.url);
    assert!(
        stderr.contains(&last.update_id) && stderr.contains("ingest-ctl set-offset"),
        "{stderr}"
    );
    assert_eq!(db.scalar_i64(count).await, booked_before);
    let unchanged = checkpoint::get(db.db.client(), INGESTER)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unchanged.last_transaction.as_ref(), Some(&last));

    resume_at(&db, off_recovery, None).await;
    // Resuming from the old checkpoint offset instead would be wrong: prove
    // that the stream after it differs (offsets moved).
    sim.traffic(200, 50, 50);

    let result = once(&sim, &db.url, &[]);
    assert_eq!(result["offsetEpoch"], 1, "{result}");
    assert_eq!(
        result["duplicates"], 0,
        "resumed exactly after tRecovery: {result}"
    );
    let after = assert_exactly_once(&db, &sim).await;
    assert_eq!(after.updates, before.updates + 250);
    let (_, epoch) = db.checkpoint().await.unwrap();
    assert_eq!(epoch, 1);
    // Updates ingested before the restore keep their epoch-0 rows.
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM ingested_updates WHERE offset_epoch = 0")
            .await as usize,
        before.updates
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn b_an_offset_checkpoint_is_checked_before_the_resume_and_not_after_it() {
    // An offset checkpoint's last transaction, ingested in the checkpoint's
    // epoch, is checked: after a node restore without the resume, refused.
    // After runbook A's resume, a quiet treasury leaves only offset
    // checkpoints in the new epoch: the checkpoint's last transaction is
    // still the one ingested before the restore, at its old offset. A restart
    // must resume, not mistake that for a node that re-numbered the checkpoint.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let backup = dir.path().join("backup");
    let mut sim = Sim::start(
        &state,
        &["--catch-up", "1s", "--checkpoint-interval", "50ms"],
    );
    let mut db = TestDb::fresh().await;
    sim.traffic(100, 30, 30);
    sim.backup(&backup);
    sim.traffic(100, 30, 30);
    once(&sim, &db.url, &[]);
    // Then only noise: an offset checkpoint over the last transaction.
    let cp = offset_checkpoint_after_noise(&sim, &mut db, 0).await;
    let last = cp.last_transaction.unwrap();
    sim.restore(&backup);
    sim.restart();
    let off_recovery = sim.lookup(last.record_time, false).await;
    sim.wait_caught_up();
    assert_ne!(
        off_recovery, last.offset,
        "the restored node assigns other offsets"
    );
    // Without the resume, that offset checkpoint's last transaction (same
    // epoch) is checked and found re-numbered: refused.
    once_refused(&sim, &db.url);
    resume_at(&db, off_recovery, None).await;

    // Only traffic the treasury does not see: offset checkpoints, no transaction.
    let cp = offset_checkpoint_after_noise(&sim, &mut db, 1).await;
    assert_eq!(cp.last_transaction.as_ref(), Some(&last), "{cp:?}");

    let result = once(&sim, &db.url, &[]);
    assert_eq!(result["offsetEpoch"], 1, "{result}");
    sim.traffic(10, 5, 5);
    once(&sim, &db.url, &[]);
    assert_exactly_once(&db, &sim).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn c_record_time_ties_resume_before_them_and_skip_what_was_ingested() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(&dir.path().join("state"), &["--record-time-ties"]);
    let db = TestDb::fresh().await;
    sim.traffic(100, 20, 20);
    let a = sim.ctl(&["deposit", "--account", "acct-1", "--amount", DEPOSIT]);
    once(&sim, &db.url, &[]);
    // Two more updates share A's record time, after A was ingested (as an
    // ACS import or a repair can leave them).
    let b = sim.ctl(&[
        "deposit",
        "--account",
        "acct-2",
        "--amount",
        DEPOSIT,
        "--same-record-time",
    ]);
    let c = sim.ctl(&[
        "deposit",
        "--account",
        "acct-49",
        "--amount",
        DEPOSIT,
        "--same-record-time",
    ]);
    assert_eq!(a["recordTime"], b["recordTime"]);
    assert_eq!(a["recordTime"], c["recordTime"]);
    sim.traffic(50, 10, 10);

    let last = checkpoint::get(db.db.client(), INGESTER)
        .await
        .unwrap()
        .unwrap()
        .last_transaction
        .unwrap();
    assert_eq!(Some(last.update_id.as_str()), a["updateId"].as_str());
    let t_recovery = last.record_time;
    // The trap: the offset for tRecovery is C's, resuming there would lose B and C.
    let at = sim.lookup(t_recovery, false).await;
    assert_eq!(Some(at), c["offset"].as_i64());
    // The runbook: tRecovery − 1µs (force, safe after the lookup above), dedup from tRecovery.
    let before = sim
        .lookup(t_recovery - ChronoDuration::microseconds(1), true)
        .await;
    assert!(before < a["offset"].as_i64().unwrap());
    resume_at(&db, before, Some(t_recovery)).await;

    let result = once(&sim, &db.url, &["--batch-size", "7"]);
    assert_eq!(
        result["duplicates"], 1,
        "A is re-delivered and skipped: {result}"
    );
    for u in [&a, &b, &c] {
        assert!(
            updates::contains(db.db.client(), u["updateId"].as_str().unwrap())
                .await
                .unwrap()
        );
    }
    assert_exactly_once(&db, &sim).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn d_integration_db_restore_recovers_lost_withdrawal_requests() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(&dir.path().join("state"), &[]);
    let mut db = TestDb::fresh().await;
    sim.traffic(200, 50, 50);
    once(&sim, &db.url, &[]);

    // A request in flight at the dump that never reaches the ledger.
    let expires = Utc::now() + ChronoDuration::milliseconds(200);
    withdrawals::upsert_requested(
        db.db.client(),
        &NewWithdrawal {
            withdrawal_id: "w-never".into(),
            account_id: Some("acct-5".into()),
            amount: Some("3".into()),
            trec_tgt: Some(expires),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let dump = dir.path().join("integration.dump");
    let pg_bin = std::path::Path::new("/usr/lib/postgresql/15/bin");
    let out = Command::new(pg_bin.join("pg_dump"))
        .args(["-Fc", "-d", &db.url, "-f", dump.to_str().unwrap()])
        .output()
        .unwrap();
    assert_ok(&out, "pg_dump");
    std::thread::sleep(Duration::from_millis(300));

    // After the dump: requests written, executed on chain, ingested as completed.
    let receiver = "customer-x::1220ab";
    let trec_tgt = Utc::now() + ChronoDuration::hours(1);
    let trec = canton_dr_cli::time::format_record_time(trec_tgt);
    let lost: Vec<String> = (0..5).map(|i| format!("w-lost-{i}")).collect();
    for id in &lost {
        withdrawals::upsert_requested(
            db.db.client(),
            &NewWithdrawal {
                withdrawal_id: id.clone(),
                account_id: Some("acct-3".into()),
                receiver: Some(receiver.into()),
                amount: Some("7".into()),
                trec_tgt: Some(trec_tgt),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        sim.ctl(&[
            "withdraw",
            "--withdrawal-id",
            id,
            "--amount",
            "7",
            "--receiver",
            receiver,
            "--trec-tgt",
            &trec,
        ]);
    }
    sim.traffic(100, 20, 20);
    once(&sim, &db.url, &[]);
    for id in &lost {
        let w = withdrawals::get(db.db.client(), id).await.unwrap().unwrap();
        assert_eq!(
            (w.status, w.account_id.as_deref()),
            (WithdrawalStatus::Completed, Some("acct-3"))
        );
    }
    assert_exactly_once(&db, &sim).await;

    // The Integration DB restore loses the requests and everything ingested after the dump.
    let out = Command::new(pg_bin.join("pg_restore"))
        .args([
            "--clean",
            "--if-exists",
            "-d",
            &db.url,
            dump.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_ok(&out, "pg_restore");
    db.reconnect().await;
    assert!(
        withdrawals::get(db.db.client(), "w-lost-0")
            .await
            .unwrap()
            .is_none()
    );

    let result = once(&sim, &db.url, &["--batch-size", "16"]);
    assert_eq!(result["duplicates"], 0, "{result}");
    for id in &lost {
        let w = withdrawals::get(db.db.client(), id).await.unwrap().unwrap();
        assert_eq!(w.status, WithdrawalStatus::Recovered, "{id}");
        assert!(w.needs_reconciliation);
        assert_eq!(w.receiver.as_deref(), Some(receiver));
        assert_eq!(w.amount.as_deref(), Some("7.0000000000"));
        // Not on the ledger: left empty for reconciliation.
        assert_eq!((w.account_id, w.trec_tgt), (None, None));
    }
    let never = withdrawals::get(db.db.client(), "w-never")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        never.status,
        WithdrawalStatus::Failed,
        "its trec_tgt passed"
    );
    // Nothing booked twice: one row per withdrawal update, deposits credited once.
    assert_exactly_once(&db, &sim).await;
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM withdrawals WHERE withdrawal_id LIKE 'w-lost-%'")
            .await,
        5
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn e_stream_cut_and_postgres_restart_mid_run() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(&dir.path().join("state"), &[]);
    let cluster = canton_dr_testkit::PgCluster::new();
    let mut db = TestDb::in_cluster(&cluster).await;
    sim.traffic(2500, 500, 500);
    sim.ctl(&["fault", "cut-stream", "--after", "700", "--streams", "3"]);
    let daemon = Daemon::start(&sim, &db.url, &["--batch-size", "20"]);
    wait_checkpoint(&mut db, 1, 0, Duration::from_secs(30)).await;
    cluster.restart();
    db.reconnect().await;
    let end = sim.ledger_end();
    wait_checkpoint(&mut db, end, 0, Duration::from_secs(90)).await;
    let out = daemon.terminate();
    assert_ok(&out, "tx-ingest (SIGTERM)");
    let result = result_of(&out);
    assert!(result["reconnects"].as_u64().unwrap() >= 3, "{result}");
    assert_exactly_once(&db, &sim).await;
    // The graceful stop was acknowledged.
    let c = control::get(db.db.client(), INGESTER)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.actual_state, Some(IngesterState::Stopped));
}
