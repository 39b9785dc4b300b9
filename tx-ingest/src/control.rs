//! The ingester's side of the control contract (docs/ingestion-contract.md):
//! register, read what to do and where to start, acknowledge, heartbeat, and
//! the fence every committing transaction starts with. The statements are the
//! contract's, as printed there.

use canton_dr_cli::{Error, Result};
use chrono::{DateTime, Utc};
use integration_db::control::IngesterState;
use integration_db::error::db_error;
use tokio_postgres::GenericClient;

/// `register`: creates the control row (running, generation 0) if missing.
pub const REGISTER_SQL: &str = "
INSERT INTO ingestion_control (ingester, updated_by)
VALUES ($1::text, 'registered by ' || $1::text)
ON CONFLICT (ingester) DO NOTHING";

/// `read_control`: generation, desired state, epoch, dedup-from and where to
/// begin.
pub const READ_CONTROL_SQL: &str = r#"
SELECT c.generation,
       c.desired_state,
       c.offset_epoch,
       c.dedup_from,
       CASE WHEN c.resume_offset IS NOT NULL
                 AND (cp.offset_epoch IS NULL OR cp.offset_epoch < c.offset_epoch)
            THEN c.resume_offset
            ELSE cp."offset"
       END AS begin_exclusive
  FROM ingestion_control c
  LEFT JOIN ingestion_checkpoint cp ON cp.ingester = c.ingester
 WHERE c.ingester = $1::text"#;

/// `ack`: the actual state and the generation acted on (also a heartbeat).
pub const ACK_SQL: &str = "
WITH acked AS (
    UPDATE ingestion_control
       SET actual_state     = $2::text,
           acked_generation = greatest(acked_generation, $3::bigint),
           heartbeat_at     = now()
     WHERE ingester = $1::text
    RETURNING ingester, acked_generation
)
SELECT pg_notify('canton_dr_control',
                 json_build_object('ingester', ingester,
                                   'generation', acked_generation,
                                   'event', 'acked')::text)
  FROM acked";

/// `heartbeat`.
pub const HEARTBEAT_SQL: &str = "
UPDATE ingestion_control
   SET heartbeat_at = now()
 WHERE ingester = $1::text";

/// `fence`: first statement of every committing transaction.
pub const FENCE_SQL: &str = "
SELECT offset_epoch
  FROM ingestion_control
 WHERE ingester = $1::text
   AND generation = $2::bigint
   AND desired_state = 'running'
   FOR SHARE";

/// What `read_control` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orders {
    /// The generation to acknowledge and to fence with.
    pub generation: i64,
    /// Running or stopped.
    pub desired_state: IngesterState,
    /// The epoch to write checkpoints with.
    pub offset_epoch: i32,
    /// From which record time re-delivered update ids are expected.
    pub dedup_from: Option<DateTime<Utc>>,
    /// Where to begin (exclusive): the owed resume offset, else the
    /// checkpoint; `None` when neither exists.
    pub begin_exclusive: Option<i64>,
}

/// Registers `ingester` (a no-op when its row exists).
pub async fn register(c: &impl GenericClient, ingester: &str) -> Result<()> {
    c.execute(REGISTER_SQL, &[&ingester])
        .await
        .map_err(|e| db_error(&e))?;
    Ok(())
}

/// Reads the orders of `ingester`.
pub async fn read(c: &impl GenericClient, ingester: &str) -> Result<Orders> {
    let row = c
        .query_opt(READ_CONTROL_SQL, &[&ingester])
        .await
        .map_err(|e| db_error(&e))?
        .ok_or_else(|| {
            Error::usage(format!("ingester \"{ingester}\" has no control row"))
                .with_hint("it is created at start; was it deleted?")
        })?;
    Ok(Orders {
        generation: row.get(0),
        desired_state: row.get::<_, String>(1).parse()?,
        offset_epoch: row.get(2),
        dedup_from: row.get(3),
        begin_exclusive: row.get(4),
    })
}

/// Acknowledges `generation` with the actual state.
pub async fn ack(
    c: &impl GenericClient,
    ingester: &str,
    state: IngesterState,
    generation: i64,
) -> Result<()> {
    c.query(ACK_SQL, &[&ingester, &state.as_str(), &generation])
        .await
        .map_err(|e| db_error(&e))?;
    Ok(())
}

/// Records a sign of life.
pub async fn heartbeat(c: &impl GenericClient, ingester: &str) -> Result<()> {
    c.execute(HEARTBEAT_SQL, &[&ingester])
        .await
        .map_err(|e| db_error(&e))?;
    Ok(())
}

/// The fence: `Some(offset_epoch)` while `generation` is current and
/// running; `None` means roll back and re-read the orders.
pub async fn fence(c: &impl GenericClient, ingester: &str, generation: i64) -> Result<Option<i32>> {
    let row = c
        .query_opt(FENCE_SQL, &[&ingester, &generation])
        .await
        .map_err(|e| db_error(&e))?;
    Ok(row.map(|r| r.get(0)))
}
