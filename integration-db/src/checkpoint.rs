//! `ingestion_checkpoint`: where each ingester is.
//!
//! The ingester commits an update's effects, its dedup row and the new
//! checkpoint in ONE transaction: call [`record_transaction`] (or
//! [`record_offset_checkpoint`] for an offset checkpoint) on the caller's
//! [`tokio_postgres::Transaction`] together with the effects, then commit.
//! The checkpoint keeps the last thing ingested (`update_id` NULL after an
//! offset checkpoint) and, separately, the last transaction (`last_tx_*`,
//! what `ingest-ctl last` prints).

use crate::Result;
use crate::error::PgResultExt as _;
use crate::updates::{self, UpdateRef};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::{GenericClient, Row};

/// A position in the ledger (an offset checkpoint, or an update's place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Ledger offset.
    pub offset: i64,
    /// Record time.
    pub record_time: DateTime<Utc>,
    /// Synchronizer id.
    pub synchronizer_id: String,
}

/// The last ingested transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastTransaction {
    /// Its offset.
    pub offset: i64,
    /// Its record time.
    #[serde(with = "crate::serde_time")]
    pub record_time: DateTime<Utc>,
    /// Its synchronizer.
    pub synchronizer_id: String,
    /// Its update id.
    pub update_id: String,
}

/// A row of `ingestion_checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// Ingester name.
    pub ingester: String,
    /// Offset of the last thing ingested.
    pub offset: i64,
    /// Its record time.
    #[serde(with = "crate::serde_time")]
    pub record_time: DateTime<Utc>,
    /// Its synchronizer.
    pub synchronizer_id: String,
    /// Its update id; `None` when it was an offset checkpoint.
    pub update_id: Option<String>,
    /// Offset epoch the offset belongs to.
    pub offset_epoch: i32,
    /// The last transaction ingested, if any.
    pub last_transaction: Option<LastTransaction>,
    /// When the row last changed.
    #[serde(with = "crate::serde_time")]
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = r#"ingester, "offset", record_time, synchronizer_id, update_id, offset_epoch,
    last_tx_offset, last_tx_record_time, last_tx_synchronizer_id, last_tx_update_id, updated_at"#;

fn from_row(r: &Row) -> Checkpoint {
    let last_transaction = match (
        r.get::<_, Option<i64>>(6),
        r.get::<_, Option<DateTime<Utc>>>(7),
        r.get::<_, Option<String>>(8),
        r.get::<_, Option<String>>(9),
    ) {
        (Some(offset), Some(record_time), Some(synchronizer_id), Some(update_id)) => {
            Some(LastTransaction {
                offset,
                record_time,
                synchronizer_id,
                update_id,
            })
        }
        _ => None,
    };
    Checkpoint {
        ingester: r.get(0),
        offset: r.get(1),
        record_time: r.get(2),
        synchronizer_id: r.get(3),
        update_id: r.get(4),
        offset_epoch: r.get(5),
        last_transaction,
        updated_at: r.get(10),
    }
}

/// The checkpoint of `ingester`, if it ingested anything yet.
pub async fn get(c: &impl GenericClient, ingester: &str) -> Result<Option<Checkpoint>> {
    let row = c
        .query_opt(
            &format!("SELECT {COLUMNS} FROM ingestion_checkpoint WHERE ingester = $1"),
            &[&ingester],
        )
        .await
        .db()?;
    Ok(row.as_ref().map(from_row))
}

/// All checkpoints, by ingester name.
pub async fn list(c: &impl GenericClient) -> Result<Vec<Checkpoint>> {
    let rows = c
        .query(
            &format!("SELECT {COLUMNS} FROM ingestion_checkpoint ORDER BY ingester"),
            &[],
        )
        .await
        .db()?;
    Ok(rows.iter().map(from_row).collect())
}

/// Records an ingested transaction: adds its update id to the dedup set and
/// moves the checkpoint (and `last_tx_*`) to it. Returns `true` if the update
/// was new; on `false` (a duplicate) the caller skips its effects, and the
/// checkpoint still moves so that the ingester resumes after it.
/// Run it in the transaction that commits the update's effects.
pub async fn record_transaction(
    c: &impl GenericClient,
    ingester: &str,
    update: &UpdateRef,
    offset_epoch: i32,
) -> Result<bool> {
    let new = updates::insert(c, ingester, update, offset_epoch).await?;
    c.execute(
        r#"INSERT INTO ingestion_checkpoint AS cp
               (ingester, "offset", record_time, synchronizer_id, update_id, offset_epoch,
                last_tx_offset, last_tx_record_time, last_tx_synchronizer_id, last_tx_update_id, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $2, $3, $4, $5, now())
           ON CONFLICT (ingester) DO UPDATE SET
               "offset" = EXCLUDED."offset", record_time = EXCLUDED.record_time,
               synchronizer_id = EXCLUDED.synchronizer_id, update_id = EXCLUDED.update_id,
               offset_epoch = EXCLUDED.offset_epoch,
               last_tx_offset = EXCLUDED.last_tx_offset, last_tx_record_time = EXCLUDED.last_tx_record_time,
               last_tx_synchronizer_id = EXCLUDED.last_tx_synchronizer_id,
               last_tx_update_id = EXCLUDED.last_tx_update_id, updated_at = now()"#,
        &[
            &ingester,
            &update.offset,
            &update.record_time,
            &update.synchronizer_id,
            &update.update_id,
            &offset_epoch,
        ],
    )
    .await
    .db()?;
    Ok(new)
}

/// Moves the checkpoint to an offset checkpoint (`update_id` becomes NULL;
/// the last transaction is kept).
pub async fn record_offset_checkpoint(
    c: &impl GenericClient,
    ingester: &str,
    position: &Position,
    offset_epoch: i32,
) -> Result<()> {
    c.execute(
        r#"INSERT INTO ingestion_checkpoint AS cp
               (ingester, "offset", record_time, synchronizer_id, update_id, offset_epoch, updated_at)
           VALUES ($1, $2, $3, $4, NULL, $5, now())
           ON CONFLICT (ingester) DO UPDATE SET
               "offset" = EXCLUDED."offset", record_time = EXCLUDED.record_time,
               synchronizer_id = EXCLUDED.synchronizer_id, update_id = NULL,
               offset_epoch = EXCLUDED.offset_epoch, updated_at = now()"#,
        &[
            &ingester,
            &position.offset,
            &position.record_time,
            &position.synchronizer_id,
            &offset_epoch,
        ],
    )
    .await
    .db()?;
    Ok(())
}
