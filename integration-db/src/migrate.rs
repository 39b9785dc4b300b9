//! Versioned, ordered schema migrations, embedded in the binary.
//!
//! Each migration runs in its own transaction together with its row in
//! `<schema>.schema_migrations`, so a failure leaves the previous version
//! intact. The whole run holds a session advisory lock keyed by the schema
//! name, so two processes migrating at once serialize: the second finds
//! nothing left to do. Re-running is a no-op. The SQL of an applied migration
//! must not change: its checksum is recorded and checked on every run.

use crate::config::check_schema_name;
use crate::error::db_error;
use canton_dr_cli::{Error, Result};
use serde::Serialize;
use tokio_postgres::{Client, GenericClient};

/// One migration step.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Version it brings the schema to (1, 2, …).
    pub version: i32,
    /// Short name.
    pub name: &'static str,
    /// The SQL (unqualified names; runs with `search_path` = the schema).
    pub sql: &'static str,
}

/// All migrations, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "base",
        sql: include_str!("migrations/V1__base.sql"),
    },
    Migration {
        version: 2,
        name: "indexes_and_audit_outcome",
        sql: include_str!("migrations/V2__indexes_and_audit_outcome.sql"),
    },
];

/// The version this build brings the schema to.
pub const LATEST_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationReport {
    /// The schema.
    pub schema: String,
    /// Version before the run (0: no schema yet).
    pub from_version: i32,
    /// Version after the run.
    pub to_version: i32,
    /// Migrations applied by this run (empty on a re-run).
    pub applied: Vec<AppliedMigration>,
}

/// A migration applied by a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedMigration {
    /// Its version.
    pub version: i32,
    /// Its name.
    pub name: String,
}

/// The schema's version: `None` when the schema (or its migrations table)
/// does not exist, `Some(0)` when it exists but no migration was applied.
pub async fn current_version(client: &impl GenericClient, schema: &str) -> Result<Option<i32>> {
    check_schema_name(schema)?;
    let exists: bool = client
        .query_one(
            "SELECT to_regclass(format('%I.schema_migrations', $1::text)) IS NOT NULL",
            &[&schema],
        )
        .await
        .map_err(|e| db_error(&e))?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let v: i32 = client
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM \"{schema}\".schema_migrations"),
            &[],
        )
        .await
        .map_err(|e| db_error(&e))?
        .get(0);
    Ok(Some(v))
}

/// The migrations a run would apply now (for `--dry-run`).
pub async fn pending(client: &impl GenericClient, schema: &str) -> Result<Vec<Migration>> {
    let current = current_version(client, schema).await?.unwrap_or(0);
    Ok(MIGRATIONS
        .iter()
        .filter(|m| m.version > current)
        .copied()
        .collect())
}

/// Brings `schema` to [`LATEST_VERSION`].
pub async fn migrate(client: &mut Client, schema: &str) -> Result<MigrationReport> {
    migrate_to(client, schema, LATEST_VERSION).await
}

/// Brings `schema` to `target` (never down: a newer schema is left alone).
pub async fn migrate_to(client: &mut Client, schema: &str, target: i32) -> Result<MigrationReport> {
    check_schema_name(schema)?;
    if !(1..=LATEST_VERSION).contains(&target) {
        return Err(Error::usage(format!(
            "migration version {target} does not exist (known: 1..={LATEST_VERSION})"
        )));
    }
    let key = advisory_key(schema);
    client
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .await
        .map_err(|e| db_error(&e))?;
    let result = apply(client, schema, target).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&key])
        .await
        .map_err(|e| db_error(&e));
    let report = result?;
    unlocked?;
    Ok(report)
}

async fn apply(client: &mut Client, schema: &str, target: i32) -> Result<MigrationReport> {
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
             CREATE TABLE IF NOT EXISTS \"{schema}\".schema_migrations (
                 version    integer PRIMARY KEY,
                 name       text NOT NULL,
                 checksum   bigint NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now(),
                 applied_by text NOT NULL DEFAULT current_user
             );"
        ))
        .await
        .map_err(|e| db_error(&e))?;
    let rows = client
        .query(
            &format!("SELECT version, name, checksum FROM \"{schema}\".schema_migrations ORDER BY version"),
            &[],
        )
        .await
        .map_err(|e| db_error(&e))?;
    let mut from = 0;
    for row in &rows {
        let version: i32 = row.get(0);
        let checksum: i64 = row.get(2);
        let Some(known) = MIGRATIONS.iter().find(|m| m.version == version) else {
            return Err(Error::usage(format!(
                "schema \"{schema}\" has migration version {version}, newer than this tool knows ({LATEST_VERSION})"
            ))
            .with_hint("upgrade the canton-dr tools"));
        };
        if checksum != checksum_of(known.sql) {
            return Err(Error::usage(format!(
                "migration V{version} ({}) applied to schema \"{schema}\" differs from this build's",
                known.name
            ))
            .with_hint("the schema was created by a different build; restore it or migrate with that build"));
        }
        from = from.max(version);
    }

    let mut applied = Vec::new();
    for m in MIGRATIONS
        .iter()
        .filter(|m| m.version > from && m.version <= target)
    {
        let tx = client.transaction().await.map_err(|e| db_error(&e))?;
        tx.batch_execute(&format!("SET LOCAL search_path TO \"{schema}\""))
            .await
            .map_err(|e| db_error(&e))?;
        tx.batch_execute(m.sql).await.map_err(|e| {
            let err = db_error(&e);
            Error::usage(format!(
                "migration V{} ({}) failed: {}",
                m.version,
                m.name,
                err.message()
            ))
        })?;
        tx.execute(
            &format!("INSERT INTO \"{schema}\".schema_migrations (version, name, checksum) VALUES ($1, $2, $3)"),
            &[&m.version, &m.name, &checksum_of(m.sql)],
        )
        .await
        .map_err(|e| db_error(&e))?;
        tx.commit().await.map_err(|e| db_error(&e))?;
        tracing::info!(
            version = m.version,
            name = m.name,
            schema,
            "applied migration"
        );
        applied.push(AppliedMigration {
            version: m.version,
            name: m.name.to_string(),
        });
    }
    Ok(MigrationReport {
        schema: schema.to_string(),
        from_version: from,
        to_version: from.max(applied.last().map_or(0, |a| a.version)),
        applied,
    })
}

/// The advisory lock key for migrating `schema` (FNV-1a of a fixed prefix and
/// the name, so different schemas in one database migrate independently).
pub fn advisory_key(schema: &str) -> i64 {
    fnv1a(format!("canton-dr migrate {schema}").as_bytes()) as i64
}

/// Checksum recorded for a migration's SQL.
pub fn checksum_of(sql: &str) -> i64 {
    fnv1a(sql.as_bytes()) as i64
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_dense_and_ordered() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1, "{}", m.name);
        }
        assert_eq!(LATEST_VERSION, MIGRATIONS.len() as i32);
    }

    #[test]
    fn keys_differ_per_schema_and_are_stable() {
        assert_ne!(advisory_key("a"), advisory_key("b"));
        assert_eq!(advisory_key("a"), advisory_key("a"));
        // FNV-1a reference value for the empty input.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
