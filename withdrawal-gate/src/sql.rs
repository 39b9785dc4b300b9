//! The gate's own queries, beyond integration-db's typed ones: the locked
//! freeze, the one-statement view of the ingester that `wait` polls, and the
//! withdrawal look-ups of the reconciliation report.

use canton_dr_cli::{Error, Result};
use chrono::{DateTime, Utc};
use integration_db::error::db_error;
use integration_db::gate::{self, Gate};
use integration_db::withdrawals::Withdrawal;
use integration_db::{Change, GenericClient};
use std::time::Duration;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

/// What `freeze` records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreezeRequest {
    /// user@host.
    pub by: String,
    /// Why.
    pub reason: String,
    /// Request time-to-live, seconds.
    pub ttl_seconds: Option<i64>,
}

/// Freezes `gate` inside the caller's transaction `tx`.
///
/// Already frozen: unchanged (the first freeze's time, reason and ttl stay).
/// Otherwise takes `SHARE` on `withdrawals`, which waits for every transaction
/// that has written a withdrawal and not yet ended, and holds off new ones
/// until commit; only then is `frozen_at` taken from `clock_timestamp()`. So
/// every withdrawal committed before the freeze was created before
/// `frozen_at`, and every later one sees the gate frozen (the documented
/// check runs after the INSERT, in the same transaction). Waits at most
/// `lock_timeout`.
pub async fn freeze_locked(
    tx: &impl GenericClient,
    gate_name: &str,
    req: &FreezeRequest,
    lock_timeout: Duration,
) -> Result<Change<Gate>> {
    let ms = lock_timeout.as_millis().max(1);
    tx.batch_execute(&format!("SET LOCAL lock_timeout = {ms}"))
        .await
        .map_err(|e| db_error(&e))?;
    let current = tx
        .query_opt(
            "SELECT frozen FROM withdrawal_gate WHERE gate = $1 FOR UPDATE",
            &[&gate_name],
        )
        .await
        .map_err(|e| lock_error(&e, lock_timeout))?;
    if current.is_some_and(|r| r.get::<_, bool>(0)) {
        return Ok(Change {
            changed: false,
            value: get_gate(tx, gate_name).await?,
        });
    }
    tx.batch_execute("LOCK TABLE withdrawals IN SHARE MODE")
        .await
        .map_err(|e| lock_error(&e, lock_timeout))?;
    let inserted = tx
        .execute(
            "INSERT INTO withdrawal_gate AS g
                 (gate, frozen, frozen_at, frozen_by, reason, ttl_seconds, updated_at)
             VALUES ($1, true, clock_timestamp(), $2, $3, $4, clock_timestamp())
             ON CONFLICT (gate) DO UPDATE SET
                 frozen = true, frozen_at = EXCLUDED.frozen_at, frozen_by = EXCLUDED.frozen_by,
                 reason = EXCLUDED.reason, ttl_seconds = EXCLUDED.ttl_seconds, tsafe = NULL,
                 thawed_at = NULL, thawed_by = NULL, thaw_reason = NULL,
                 updated_at = EXCLUDED.updated_at
             WHERE NOT g.frozen",
            &[&gate_name, &req.by, &req.reason, &req.ttl_seconds],
        )
        .await
        .map_err(|e| lock_error(&e, lock_timeout))?;
    Ok(Change {
        changed: inserted == 1,
        value: get_gate(tx, gate_name).await?,
    })
}

async fn get_gate(c: &impl GenericClient, gate_name: &str) -> Result<Gate> {
    gate::get(c, gate_name)
        .await?
        .ok_or_else(|| Error::transient(format!("gate \"{gate_name}\" vanished")))
}

fn lock_error(e: &tokio_postgres::Error, lock_timeout: Duration) -> Error {
    if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) {
        Error::transient(format!(
            "transactions writing withdrawals did not finish within {} ms; nothing was changed",
            lock_timeout.as_millis()
        ))
        .with_hint(
            "find the long transaction in pg_stat_activity, or retry with a longer --lock-timeout",
        )
    } else {
        db_error(e)
    }
}

/// The database clock.
pub async fn db_now(c: &impl GenericClient) -> Result<DateTime<Utc>> {
    let row = c
        .query_one("SELECT now()", &[])
        .await
        .map_err(|e| db_error(&e))?;
    Ok(row.get(0))
}

/// The ingester's checkpoint as `wait` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointView {
    /// Offset.
    pub offset: i64,
    /// Record time (of a transaction or an offset checkpoint).
    pub record_time: DateTime<Utc>,
    /// Synchronizer.
    pub synchronizer_id: String,
    /// Update id; `None` after an offset checkpoint.
    pub update_id: Option<String>,
}

/// One read of everything `wait` watches, by one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestionView {
    /// The database clock at the read.
    pub db_now: DateTime<Utc>,
    /// The checkpoint, if the ingester has one.
    pub checkpoint: Option<CheckpointView>,
    /// Whether the ingester has a control row.
    pub has_control: bool,
    /// Its last heartbeat.
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// What operators asked of it.
    pub desired_state: Option<String>,
    /// What it reported.
    pub actual_state: Option<String>,
}

/// The statement behind [`read_ingestion`] (prepare it once per connection).
pub const INGESTION_VIEW_SQL: &str = r#"SELECT now(), cp."offset", cp.record_time, cp.synchronizer_id, cp.update_id,
       ctl.ingester IS NOT NULL, ctl.heartbeat_at, ctl.desired_state, ctl.actual_state
FROM (SELECT 1) AS one
LEFT JOIN ingestion_checkpoint cp ON cp.ingester = $1
LEFT JOIN ingestion_control ctl ON ctl.ingester = $1"#;

/// Reads the ingester's checkpoint and control row in one statement.
pub async fn read_ingestion(
    c: &impl GenericClient,
    statement: &tokio_postgres::Statement,
    ingester: &str,
) -> std::result::Result<IngestionView, tokio_postgres::Error> {
    let row = c.query_one(statement, &[&ingester]).await?;
    Ok(ingestion_from_row(&row))
}

/// [`read_ingestion`] without a prepared statement.
pub async fn read_ingestion_once(c: &impl GenericClient, ingester: &str) -> Result<IngestionView> {
    let row = c
        .query_one(INGESTION_VIEW_SQL, &[&ingester])
        .await
        .map_err(|e| db_error(&e))?;
    Ok(ingestion_from_row(&row))
}

fn ingestion_from_row(r: &Row) -> IngestionView {
    let checkpoint = match (
        r.get::<_, Option<i64>>(1),
        r.get::<_, Option<DateTime<Utc>>>(2),
        r.get::<_, Option<String>>(3),
    ) {
        (Some(offset), Some(record_time), Some(synchronizer_id)) => Some(CheckpointView {
            offset,
            record_time,
            synchronizer_id,
            update_id: r.get(4),
        }),
        _ => None,
    };
    IngestionView {
        db_now: r.get(0),
        checkpoint,
        has_control: r.get(5),
        heartbeat_at: r.get(6),
        desired_state: r.get(7),
        actual_state: r.get(8),
    }
}

const WITHDRAWAL_COLUMNS: &str = "withdrawal_id, account_id, receiver, instrument_admin,
    instrument_id, amount::text, trec_tgt, status, failure_reason, completed_update_id,
    completed_record_time, needs_reconciliation, created_at, updated_at";

fn withdrawal_from_row(r: &Row) -> Result<Withdrawal> {
    Ok(Withdrawal {
        withdrawal_id: r.get(0),
        account_id: r.get(1),
        receiver: r.get(2),
        instrument_admin: r.get(3),
        instrument_id: r.get(4),
        amount: r.get(5),
        trec_tgt: r.get(6),
        status: r.get::<_, String>(7).parse()?,
        failure_reason: r.get(8),
        completed_update_id: r.get(9),
        completed_record_time: r.get(10),
        needs_reconciliation: r.get(11),
        created_at: r.get(12),
        updated_at: r.get(13),
    })
}

/// The withdrawals with these ids (those that exist), in one query.
pub async fn withdrawals_by_ids(c: &impl GenericClient, ids: &[String]) -> Result<Vec<Withdrawal>> {
    let rows = c
        .query(
            &format!("SELECT {WITHDRAWAL_COLUMNS} FROM withdrawals WHERE withdrawal_id = ANY($1)"),
            &[&ids],
        )
        .await
        .map_err(|e| db_error(&e))?;
    rows.iter().map(withdrawal_from_row).collect()
}

/// Withdrawals the ingester re-created (`recovered`) since `since`, oldest first.
pub async fn recovered_since(
    c: &impl GenericClient,
    since: DateTime<Utc>,
) -> Result<Vec<Withdrawal>> {
    let rows = c
        .query(
            &format!(
                "SELECT {WITHDRAWAL_COLUMNS} FROM withdrawals
                 WHERE status = 'recovered' AND created_at >= $1
                 ORDER BY created_at, withdrawal_id"
            ),
            &[&since],
        )
        .await
        .map_err(|e| db_error(&e))?;
    rows.iter().map(withdrawal_from_row).collect()
}
