//! `ingested_updates`: the dedup set. Every update an ingester commits is
//! recorded here once, by update id, so that re-processing after a
//! participant restore (new offsets, same update ids) does not double-count.

use crate::Result;
use crate::error::PgResultExt as _;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::{GenericClient, Row};

/// An update as it arrives: what identifies it and where it sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateRef {
    /// Canton update id (the same across participant restores).
    pub update_id: String,
    /// Ledger offset (participant-local; changes after a restore).
    pub offset: i64,
    /// Record time on the synchronizer.
    pub record_time: DateTime<Utc>,
    /// Synchronizer id.
    pub synchronizer_id: String,
}

/// A row of `ingested_updates`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestedUpdate {
    /// Update id.
    pub update_id: String,
    /// The ingester that committed it.
    pub ingester: String,
    /// Offset when ingested.
    pub offset: i64,
    /// Record time.
    #[serde(with = "crate::serde_time")]
    pub record_time: DateTime<Utc>,
    /// Synchronizer id.
    pub synchronizer_id: String,
    /// Offset epoch when ingested (bumped by `ingest-ctl set-offset`).
    pub offset_epoch: i32,
    /// When it was committed.
    #[serde(with = "crate::serde_time")]
    pub ingested_at: DateTime<Utc>,
}

const COLUMNS: &str =
    r#"update_id, ingester, "offset", record_time, synchronizer_id, offset_epoch, ingested_at"#;

fn from_row(r: &Row) -> IngestedUpdate {
    IngestedUpdate {
        update_id: r.get(0),
        ingester: r.get(1),
        offset: r.get(2),
        record_time: r.get(3),
        synchronizer_id: r.get(4),
        offset_epoch: r.get(5),
        ingested_at: r.get(6),
    }
}

/// Records `update` as ingested; `true` if it is new, `false` if its update id
/// was already there (a duplicate to skip).
pub async fn insert(
    c: &impl GenericClient,
    ingester: &str,
    update: &UpdateRef,
    offset_epoch: i32,
) -> Result<bool> {
    let n = c
        .execute(
            r#"INSERT INTO ingested_updates (update_id, ingester, "offset", record_time, synchronizer_id, offset_epoch)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (update_id) DO NOTHING"#,
            &[
                &update.update_id,
                &ingester,
                &update.offset,
                &update.record_time,
                &update.synchronizer_id,
                &offset_epoch,
            ],
        )
        .await
        .db()?;
    Ok(n == 1)
}

/// The row of `update_id`, if ingested.
pub async fn get(c: &impl GenericClient, update_id: &str) -> Result<Option<IngestedUpdate>> {
    let row = c
        .query_opt(
            &format!("SELECT {COLUMNS} FROM ingested_updates WHERE update_id = $1"),
            &[&update_id],
        )
        .await
        .db()?;
    Ok(row.as_ref().map(from_row))
}

/// True if `update_id` was ingested.
pub async fn contains(c: &impl GenericClient, update_id: &str) -> Result<bool> {
    let row = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM ingested_updates WHERE update_id = $1)",
            &[&update_id],
        )
        .await
        .db()?;
    Ok(row.get(0))
}

/// Number of ingested updates (of one ingester, or all).
pub async fn count(c: &impl GenericClient, ingester: Option<&str>) -> Result<i64> {
    let row = c
        .query_one(
            "SELECT count(*) FROM ingested_updates WHERE $1::text IS NULL OR ingester = $1",
            &[&ingester],
        )
        .await
        .db()?;
    Ok(row.get(0))
}

/// Updates of `ingester` with record time at or after `from` (all when
/// `None`), in record-time order, at most `limit`.
pub async fn list_since(
    c: &impl GenericClient,
    ingester: &str,
    from: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<IngestedUpdate>> {
    let rows = c
        .query(
            &format!(
                "SELECT {COLUMNS} FROM ingested_updates
                 WHERE ingester = $1 AND ($2::timestamptz IS NULL OR record_time >= $2)
                 ORDER BY record_time, update_id LIMIT $3"
            ),
            &[&ingester, &from, &limit],
        )
        .await
        .db()?;
    Ok(rows.iter().map(from_row).collect())
}

/// The latest record time ingested by `ingester`.
pub async fn max_record_time(
    c: &impl GenericClient,
    ingester: &str,
) -> Result<Option<DateTime<Utc>>> {
    let row = c
        .query_one(
            "SELECT max(record_time) FROM ingested_updates WHERE ingester = $1",
            &[&ingester],
        )
        .await
        .db()?;
    Ok(row.get(0))
}
