//! Shared set-up of the integration-db tests: a migrated database per test.

#![allow(dead_code)] // each test binary uses a different part

use canton_dr_testkit::{PgCluster, TestDb, fresh_database};
use chrono::{DateTime, Utc};
use integration_db::{ConnectOptions, Db};

/// A fresh, migrated database in this binary's shared cluster.
pub async fn migrated() -> (TestDb, Db) {
    let t = fresh_database(PgCluster::shared());
    let mut db = Db::connect(&ConnectOptions::from_url(&t.url))
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    (t, db)
}

/// Parses an RFC 3339 time.
pub fn at(s: &str) -> DateTime<Utc> {
    canton_dr_cli::time::parse_record_time(s, "test time").unwrap()
}
