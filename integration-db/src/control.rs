//! `ingestion_control`: what operators want each ingester to do, and what the
//! ingester acknowledged.
//!
//! Protocol: every operator change ([`set_desired_state`], [`set_resume`])
//! bumps `generation` and sends a [`crate::notify::CONTROL_CHANNEL`]
//! notification. The ingester reads the row, obeys, and calls [`ack`] with the
//! generation it acted on and its actual state; `ingest-ctl stop --wait`
//! returns once [`Control::acknowledged`] holds. The ingester calls
//! [`heartbeat`] periodically.
//!
//! Resuming at an offset: [`set_resume`] stores `resume_offset` and
//! `dedup_from` and bumps `offset_epoch`. The ingester owes a resume while its
//! checkpoint's epoch is older than the control row's
//! ([`Control::pending_resume`]); once it has checkpointed in the new epoch,
//! the resume is consumed. Nothing needs clearing.

use crate::checkpoint::Checkpoint;
use crate::error::PgResultExt as _;
use crate::notify::{self, ControlChange};
use crate::{Change, Result};
use canton_dr_cli::Error;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;
use tokio_postgres::{GenericClient, Row};

/// Running or stopped (desired or actual).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IngesterState {
    /// Ingesting.
    Running,
    /// Not ingesting.
    Stopped,
}

impl IngesterState {
    /// The database / JSON word.
    pub fn as_str(self) -> &'static str {
        match self {
            IngesterState::Running => "running",
            IngesterState::Stopped => "stopped",
        }
    }
}

impl fmt::Display for IngesterState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IngesterState {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "running" => Ok(IngesterState::Running),
            "stopped" => Ok(IngesterState::Stopped),
            other => Err(Error::usage(format!(
                "ingester state \"{other}\" is not running or stopped"
            ))),
        }
    }
}

/// A row of `ingestion_control`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Control {
    /// Ingester name.
    pub ingester: String,
    /// What operators want.
    pub desired_state: IngesterState,
    /// Offset to resume from (set by `ingest-ctl set-offset`).
    pub resume_offset: Option<i64>,
    /// Skip updates already ingested from this record time on (dedup window).
    #[serde(with = "crate::serde_time::option")]
    pub dedup_from: Option<DateTime<Utc>>,
    /// Offset epoch (bumped by every resume request).
    pub offset_epoch: i32,
    /// Bumped by every operator change.
    pub generation: i64,
    /// What the ingester last reported.
    pub actual_state: Option<IngesterState>,
    /// The generation the ingester last acted on.
    pub acked_generation: i64,
    /// The ingester's last sign of life.
    #[serde(with = "crate::serde_time::option")]
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// When operators last changed the row.
    #[serde(with = "crate::serde_time")]
    pub updated_at: DateTime<Utc>,
    /// Who did (user@host).
    pub updated_by: String,
}

impl Control {
    /// The ingester has acted on the latest change and is in the desired state.
    pub fn acknowledged(&self) -> bool {
        self.acked_generation >= self.generation && self.actual_state == Some(self.desired_state)
    }

    /// The offset the ingester must resume from, if a resume is still owed:
    /// one was requested and the ingester has not checkpointed in its epoch.
    pub fn pending_resume(&self, checkpoint: Option<&Checkpoint>) -> Option<i64> {
        let offset = self.resume_offset?;
        match checkpoint {
            Some(cp) if cp.offset_epoch >= self.offset_epoch => None,
            _ => Some(offset),
        }
    }
}

const COLUMNS: &str =
    "ingester, desired_state, resume_offset, dedup_from, offset_epoch, generation,
    actual_state, acked_generation, heartbeat_at, updated_at, updated_by";

fn from_row(r: &Row) -> Result<Control> {
    Ok(Control {
        ingester: r.get(0),
        desired_state: r.get::<_, String>(1).parse()?,
        resume_offset: r.get(2),
        dedup_from: r.get(3),
        offset_epoch: r.get(4),
        generation: r.get(5),
        actual_state: r
            .get::<_, Option<String>>(6)
            .map(|s| s.parse())
            .transpose()?,
        acked_generation: r.get(7),
        heartbeat_at: r.get(8),
        updated_at: r.get(9),
        updated_by: r.get(10),
    })
}

/// The control row of `ingester`, if any.
pub async fn get(c: &impl GenericClient, ingester: &str) -> Result<Option<Control>> {
    let row = c
        .query_opt(
            &format!("SELECT {COLUMNS} FROM ingestion_control WHERE ingester = $1"),
            &[&ingester],
        )
        .await
        .db()?;
    row.as_ref().map(from_row).transpose()
}

/// All control rows, by ingester name.
pub async fn list(c: &impl GenericClient) -> Result<Vec<Control>> {
    let rows = c
        .query(
            &format!("SELECT {COLUMNS} FROM ingestion_control ORDER BY ingester"),
            &[],
        )
        .await
        .db()?;
    rows.iter().map(from_row).collect()
}

/// The control row of `ingester`, created (desired `running`, generation 0)
/// if missing.
pub async fn ensure(c: &impl GenericClient, ingester: &str, actor: &str) -> Result<Control> {
    c.execute(
        "INSERT INTO ingestion_control (ingester, updated_by) VALUES ($1, $2)
         ON CONFLICT (ingester) DO NOTHING",
        &[&ingester, &actor],
    )
    .await
    .db()?;
    get(c, ingester)
        .await?
        .ok_or_else(|| Error::transient(format!("control row of \"{ingester}\" vanished")))
}

/// Sets the desired state. A no-op (no generation bump) if it already is.
pub async fn set_desired_state(
    c: &impl GenericClient,
    ingester: &str,
    state: IngesterState,
    actor: &str,
) -> Result<Change<Control>> {
    ensure(c, ingester, actor).await?;
    let row = c
        .query_opt(
            &format!(
                "UPDATE ingestion_control
                 SET desired_state = $2, generation = generation + 1, updated_at = now(), updated_by = $3
                 WHERE ingester = $1 AND desired_state <> $2
                 RETURNING {COLUMNS}"
            ),
            &[&ingester, &state.as_str(), &actor],
        )
        .await
        .db()?;
    finish_change(c, ingester, row).await
}

/// Asks the ingester to resume at `offset`, skipping updates already ingested
/// from `dedup_from` on; bumps `offset_epoch` and `generation`. A no-op when
/// the same resume is already requested.
pub async fn set_resume(
    c: &impl GenericClient,
    ingester: &str,
    offset: i64,
    dedup_from: Option<DateTime<Utc>>,
    actor: &str,
) -> Result<Change<Control>> {
    if offset < 0 {
        return Err(Error::usage(format!("offset {offset} is negative")));
    }
    ensure(c, ingester, actor).await?;
    let row = c
        .query_opt(
            &format!(
                "UPDATE ingestion_control
                 SET resume_offset = $2, dedup_from = $3, offset_epoch = offset_epoch + 1,
                     generation = generation + 1, updated_at = now(), updated_by = $4
                 WHERE ingester = $1
                   AND (resume_offset IS DISTINCT FROM $2 OR dedup_from IS DISTINCT FROM $3)
                 RETURNING {COLUMNS}"
            ),
            &[&ingester, &offset, &dedup_from, &actor],
        )
        .await
        .db()?;
    finish_change(c, ingester, row).await
}

async fn finish_change(
    c: &impl GenericClient,
    ingester: &str,
    updated: Option<Row>,
) -> Result<Change<Control>> {
    match updated {
        Some(row) => {
            let control = from_row(&row)?;
            notify::notify_control(
                c,
                &ControlChange {
                    ingester: ingester.to_string(),
                    generation: control.generation,
                    event: notify::ControlEvent::Changed,
                },
            )
            .await?;
            Ok(Change {
                changed: true,
                value: control,
            })
        }
        None => Ok(Change {
            changed: false,
            value: get(c, ingester).await?.ok_or_else(|| {
                Error::transient(format!("control row of \"{ingester}\" vanished"))
            })?,
        }),
    }
}

/// The ingester acknowledges `generation` and reports its actual state (also a
/// heartbeat). Acknowledgements never go backwards.
pub async fn ack(
    c: &impl GenericClient,
    ingester: &str,
    actual: IngesterState,
    generation: i64,
) -> Result<Control> {
    let row = c
        .query_opt(
            &format!(
                "UPDATE ingestion_control
                 SET actual_state = $2, acked_generation = greatest(acked_generation, $3),
                     heartbeat_at = now()
                 WHERE ingester = $1
                 RETURNING {COLUMNS}"
            ),
            &[&ingester, &actual.as_str(), &generation],
        )
        .await
        .db()?;
    let Some(row) = row else {
        return Err(
            Error::usage(format!("ingester \"{ingester}\" has no control row"))
                .with_hint("the ingester creates it at start (control::ensure)"),
        );
    };
    let control = from_row(&row)?;
    notify::notify_control(
        c,
        &ControlChange {
            ingester: ingester.to_string(),
            generation: control.acked_generation,
            event: notify::ControlEvent::Acked,
        },
    )
    .await?;
    Ok(control)
}

/// Records a sign of life and the actual state; `false` if there is no row.
pub async fn heartbeat(
    c: &impl GenericClient,
    ingester: &str,
    actual: IngesterState,
) -> Result<bool> {
    let n = c
        .execute(
            "UPDATE ingestion_control SET heartbeat_at = now(), actual_state = $2 WHERE ingester = $1",
            &[&ingester, &actual.as_str()],
        )
        .await
        .db()?;
    Ok(n == 1)
}
