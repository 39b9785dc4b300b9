//! Migrations against real PostgreSQL: fresh, re-run, two at once, upgrade
//! from the previous version with data kept, and the schema check.

use canton_dr_testkit::{PgCluster, fresh_database};
use integration_db::migrate::{self, LATEST_VERSION};
use integration_db::{ConnectOptions, DEFAULT_SCHEMA, Db};

async fn connect(url: &str) -> Db {
    Db::connect(&ConnectOptions::from_url(url))
        .await
        .expect("connect")
}

async fn tables(db: &Db, schema: &str) -> Vec<String> {
    db.client()
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
            &[&schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

const ALL_TABLES: &[&str] = &[
    "account_balances",
    "audit_log",
    "dar_uploads",
    "deposit_accounts",
    "deposits",
    "holdings",
    "ingested_updates",
    "ingestion_checkpoint",
    "ingestion_control",
    "schema_migrations",
    "withdrawal_gate",
    "withdrawals",
];

#[tokio::test]
async fn fresh_then_rerun_is_a_no_op() {
    let t = fresh_database(PgCluster::shared());
    let mut db = connect(&t.url).await;
    assert_eq!(
        migrate::current_version(db.client(), DEFAULT_SCHEMA)
            .await
            .unwrap(),
        None
    );

    let first = db.migrate().await.unwrap();
    assert_eq!(first.from_version, 0);
    assert_eq!(first.to_version, LATEST_VERSION);
    let versions: Vec<i32> = first.applied.iter().map(|a| a.version).collect();
    assert_eq!(versions, vec![1, 2]);
    assert_eq!(tables(&db, DEFAULT_SCHEMA).await, ALL_TABLES);
    db.require_schema().await.expect("schema is current");

    let second = db.migrate().await.unwrap();
    assert!(second.applied.is_empty(), "{second:?}");
    assert_eq!(
        (second.from_version, second.to_version),
        (LATEST_VERSION, LATEST_VERSION)
    );
    let rows: i64 = db
        .client()
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, i64::from(LATEST_VERSION));
    assert!(
        migrate::pending(db.client(), DEFAULT_SCHEMA)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn two_migrations_at_once_both_succeed_once() {
    let t = fresh_database(PgCluster::shared());
    let mut a = connect(&t.url).await;
    let mut b = connect(&t.url).await;
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    let (ra, rb) = (ra.expect("first migrator"), rb.expect("second migrator"));
    let mut counts = [ra.applied.len(), rb.applied.len()];
    counts.sort_unstable();
    assert_eq!(
        counts,
        [0, LATEST_VERSION as usize],
        "one applies all, the other none"
    );
    assert_eq!(ra.to_version, LATEST_VERSION);
    assert_eq!(rb.to_version, LATEST_VERSION);
    assert_eq!(tables(&a, DEFAULT_SCHEMA).await, ALL_TABLES);
}

#[tokio::test]
async fn many_processes_worth_of_migrators_at_once() {
    // Eight sessions racing on an empty database, as eight tools started together.
    let t = fresh_database(PgCluster::shared());
    let mut handles = Vec::new();
    for _ in 0..8 {
        let url = t.url.clone();
        handles.push(tokio::spawn(async move {
            let mut db = connect(&url).await;
            db.migrate().await.map(|r| r.applied.len())
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap().expect("every migrator succeeds");
    }
    assert_eq!(
        total, LATEST_VERSION as usize,
        "each migration applied exactly once"
    );
}

#[tokio::test]
async fn upgrade_from_v1_keeps_data() {
    let t = fresh_database(PgCluster::shared());
    let mut db = connect(&t.url).await;
    let r = migrate::migrate_to(db.client_mut(), DEFAULT_SCHEMA, 1)
        .await
        .unwrap();
    assert_eq!(r.to_version, 1);

    let err = db.require_schema().await.unwrap_err();
    assert_eq!(err.exit_code().code(), 2);
    assert!(
        err.message().contains("is at version 1"),
        "{}",
        err.message()
    );
    assert!(err.hint().unwrap().contains("ingest-ctl migrate"));

    db.client()
        .batch_execute(
            "INSERT INTO withdrawals (withdrawal_id, amount, trec_tgt, status)
                 VALUES ('w-1', 12.5, '2025-01-02T03:04:05.123456Z', 'submitted');
             INSERT INTO audit_log (tool, command, actor, details)
                 VALUES ('ingest-ctl', 'stop', 'op@host', '{\"ingester\":\"main\"}');",
        )
        .await
        .unwrap();
    // V2's column is not there yet.
    assert!(
        db.client()
            .query("SELECT outcome FROM audit_log", &[])
            .await
            .is_err()
    );

    let up = db.migrate().await.unwrap();
    assert_eq!(up.from_version, 1);
    assert_eq!(
        up.applied.iter().map(|a| a.version).collect::<Vec<_>>(),
        vec![2]
    );
    db.require_schema().await.unwrap();

    let row = db
        .client()
        .query_one(
            "SELECT amount::text, status FROM withdrawals WHERE withdrawal_id = 'w-1'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "12.5000000000");
    assert_eq!(row.get::<_, String>(1), "submitted");
    let row = db
        .client()
        .query_one("SELECT details->>'ingester', outcome FROM audit_log", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "main");
    assert_eq!(row.get::<_, Option<String>>(1), None);
    let idx: i64 = db
        .client()
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = 'withdrawals_in_flight_trec_tgt'",
            &[&DEFAULT_SCHEMA],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(idx, 1);
}

#[tokio::test]
async fn schemas_are_independent_and_missing_schema_is_reported() {
    let t = fresh_database(PgCluster::shared());
    let opts = ConnectOptions::from_url(&t.url).schema("exchange_b");
    let mut b = Db::connect(&opts).await.unwrap();
    b.migrate().await.unwrap();
    assert_eq!(tables(&b, "exchange_b").await, ALL_TABLES);
    assert!(tables(&b, DEFAULT_SCHEMA).await.is_empty());

    // Unqualified names resolve in the chosen schema.
    b.client().execute("INSERT INTO dar_uploads (main_package_id, file_sha256, size_bytes, uploaded_at, recorded_by) VALUES ('p', 's', 1, now(), 'x')", &[]).await.unwrap();

    let err = Db::connect_ready(&ConnectOptions::from_url(&t.url))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code().code(), 2);
    assert!(
        err.message()
            .contains("schema \"canton_integration\" does not exist"),
        "{}",
        err.message()
    );
    assert_eq!(err.hint(), Some(integration_db::error::MIGRATE_HINT));
    assert!(!err.message().contains('\n'));
}

#[tokio::test]
async fn changed_migration_sql_is_refused() {
    let t = fresh_database(PgCluster::shared());
    let mut db = connect(&t.url).await;
    db.migrate().await.unwrap();
    db.client()
        .execute(
            "UPDATE schema_migrations SET checksum = checksum + 1 WHERE version = 1",
            &[],
        )
        .await
        .unwrap();
    let err = db.migrate().await.unwrap_err();
    assert_eq!(err.exit_code().code(), 2);
    assert!(err.message().contains("V1 (base)"), "{}", err.message());
}
