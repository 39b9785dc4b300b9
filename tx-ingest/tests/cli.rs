//! The binary as operators meet it: obeying stop and start through the
//! control row, heartbeating while stopped, `--once` refused while stopped,
//! `--dry-run` writing nothing, and the exit codes of bad configuration and
//! of an unreachable node.

mod common;

use canton_dr_testkit::{PgCluster, fresh_database};
use common::*;
use integration_db::control::{self, IngesterState};
use std::time::Duration;

const OPERATOR: &str = "operator@test";

#[tokio::test(flavor = "multi_thread")]
async fn daemon_obeys_stop_and_start_and_heartbeats_while_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(
        &dir.path().join("state"),
        &["--checkpoint-interval", "200ms"],
    );
    let mut db = TestDb::fresh().await;
    sim.traffic(50, 10, 10);
    let daemon = Daemon::start(&sim, &db.url, &[]);
    wait_checkpoint(&mut db, sim.ledger_end(), 0, Duration::from_secs(30)).await;
    let c = wait_acknowledged(&db, Duration::from_secs(10)).await;
    assert_eq!(c.actual_state, Some(IngesterState::Running));

    control::set_desired_state(db.db.client(), INGESTER, IngesterState::Stopped, OPERATOR)
        .await
        .unwrap();
    let stopped = wait_acknowledged(&db, Duration::from_secs(5)).await;
    assert_eq!(stopped.actual_state, Some(IngesterState::Stopped));
    let frozen = db.checkpoint().await;
    sim.traffic(30, 5, 5);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        db.checkpoint().await,
        frozen,
        "a stopped ingester commits nothing"
    );
    let later = control::get(db.db.client(), INGESTER)
        .await
        .unwrap()
        .unwrap();
    assert!(
        later.heartbeat_at > stopped.heartbeat_at,
        "it heartbeats while stopped"
    );

    control::set_desired_state(db.db.client(), INGESTER, IngesterState::Running, OPERATOR)
        .await
        .unwrap();
    let running = wait_acknowledged(&db, Duration::from_secs(5)).await;
    assert_eq!(running.actual_state, Some(IngesterState::Running));
    wait_checkpoint(&mut db, sim.ledger_end(), 0, Duration::from_secs(30)).await;
    let out = daemon.terminate();
    assert_ok(&out, "tx-ingest (SIGTERM)");
    assert_exactly_once(&db, &sim).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn once_is_refused_while_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(&dir.path().join("state"), &[]);
    let db = TestDb::fresh().await;
    control::set_desired_state(db.db.client(), INGESTER, IngesterState::Stopped, OPERATOR)
        .await
        .unwrap();
    let out = tx_ingest(&sim, &db.url).arg("--once").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is stopped"), "{stderr}");
    assert!(stderr.contains("ingest-ctl start"), "{stderr}");
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(
        (v["type"].as_str(), v["exitCode"].as_i64()),
        (Some("error"), Some(5))
    );
    // It acknowledged the stop it was told about.
    let c = control::get(db.db.client(), INGESTER)
        .await
        .unwrap()
        .unwrap();
    assert!(c.acknowledged(), "{c:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_reports_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(&dir.path().join("state"), &[]);
    let db = TestDb::fresh().await;
    sim.traffic(40, 10, 10);
    let result = once(&sim, &db.url, &["--dry-run"]);
    assert_eq!(result["dryRun"], true);
    assert_eq!(result["transactions"].as_u64(), Some(50));
    assert_eq!(result["deposits"].as_u64(), Some(40));
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM ingested_updates").await,
        0
    );
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM ingestion_control")
            .await,
        0
    );
    assert_eq!(db.checkpoint().await, None);
    // A real run afterwards books the same.
    let real = once(&sim, &db.url, &[]);
    assert_eq!(real["newTransactions"].as_u64(), Some(50));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_configuration_exits_2_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(&dir.path().join("state"), &[]);

    // A password typed on the command line.
    let out = tx_ingest(&sim, "")
        .env_remove("INTEGRATION_DB_URL")
        .args([
            "--once",
            "--db-url",
            "postgresql://ops:s3cret@127.0.0.1:1/x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("s3cret") && stderr.contains("PGPASSWORD"),
        "{stderr}"
    );

    // A database without the schema.
    let bare = fresh_database(PgCluster::shared());
    let out = tx_ingest(&sim, &bare.url).arg("--once").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ingest-ctl migrate"), "{stderr}");

    // A treasury party that is not a party id.
    let db = TestDb::fresh().await;
    let out = tx_ingest(&sim, &db.url)
        .args(["--once", "--treasury-party", "treasury"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("<name>::<fingerprint>"));
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_node_exits_3_after_giving_up() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(&dir.path().join("state"), &[]);
    let db = TestDb::fresh().await;
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = tx_ingest(&sim, &db.url)
        .args([
            "--once",
            "--ledger-api",
            &format!("127.0.0.1:{port}"),
            "--give-up-after",
            "1s",
        ])
        .env("CANTON_CONNECT_TIMEOUT", "1s")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.contains("giving up"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn compact_values_are_decoded_by_declaration_order_and_book_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(&dir.path().join("state"), &[]);
    sim.traffic(120, 40, 20);
    let verbose = TestDb::fresh().await;
    let compact = TestDb::fresh().await;
    let a = once(&sim, &verbose.url, &[]);
    let b = once(&sim, &compact.url, &["--compact-values"]);
    for key in ["transactions", "deposits", "withdrawalsRecovered", "offset"] {
        assert_eq!(a[key], b[key], "{key}: {a} vs {b}");
    }
    assert_eq!(b["deposits"].as_u64(), Some(120));
    assert_exactly_once(&verbose, &sim).await;
    assert_exactly_once(&compact, &sim).await;
    let holdings = "SELECT count(*) FROM holdings WHERE archived_update_id IS NULL";
    assert_eq!(
        verbose.scalar_i64(holdings).await,
        compact.scalar_i64(holdings).await
    );
}
