//! `ingest-ctl status`: desired and actual state, acknowledged generation,
//! heartbeat age, resume offset and epoch, checkpoint, last transaction, and
//! with `--ledger-api` the lag behind the node's ledger end. Warnings name
//! what looks wrong (no heartbeat, unacknowledged change, a position beyond
//! the ledger end after a node restore, a node that cannot be reached: the
//! database part is still shown then).

use crate::Ctx;
use crate::args::StatusArgs;
use crate::ledger;
use crate::queries::{CheckpointView, LastTransaction};
use crate::state::{self, Snapshot};
use canton_dr_cli::time::format_record_time;
use canton_dr_cli::{ErrorKind, ExitCode, Result};
use chrono::{DateTime, Utc};
use integration_db::Db;
use integration_db::control::IngesterState;
use serde::Serialize;
use std::time::Duration;

/// What `status` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// Always `"status"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The ingester.
    pub ingester: String,
    /// What operators asked for.
    pub desired_state: IngesterState,
    /// What the ingester last reported.
    pub actual_state: Option<IngesterState>,
    /// Bumped by every operator change.
    pub generation: i64,
    /// The last generation the ingester acted on.
    pub acked_generation: i64,
    /// The ingester acted on the latest change and is in the desired state.
    pub acknowledged: bool,
    /// The last heartbeat.
    #[serde(with = "integration_db::serde_time::option")]
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// Its age (database clock).
    pub heartbeat_age_seconds: Option<f64>,
    /// An ingester beat within --dead-after.
    pub live_ingester: bool,
    /// The resume offset set by `set-offset`.
    pub resume_offset: Option<i64>,
    /// The dedup-from record time set by `set-offset`.
    #[serde(with = "integration_db::serde_time::option")]
    pub dedup_from: Option<DateTime<Utc>>,
    /// The offset epoch in force.
    pub offset_epoch: i32,
    /// The resume offset has not been consumed (no checkpoint in its epoch yet).
    pub resume_pending: bool,
    /// The checkpoint.
    pub checkpoint: Option<CheckpointView>,
    /// The last ingested transaction.
    pub last_transaction: Option<LastTransaction>,
    /// The offset the ingester continues after.
    pub position: Option<i64>,
    /// The node's ledger end (with --ledger-api).
    pub ledger_end: Option<i64>,
    /// Ledger end minus position (negative: the position is beyond the ledger end).
    pub lag: Option<i64>,
    /// What looks wrong.
    pub warnings: Vec<String>,
    /// Always `"ok"`.
    pub status: &'static str,
}

/// Builds the report from what was read.
pub fn report(
    ingester: &str,
    s: &Snapshot,
    last: Option<LastTransaction>,
    ledger_end: Option<i64>,
    dead_after: Duration,
) -> StatusReport {
    let c = &s.control;
    let live = s.live(dead_after);
    let position = s.position();
    let lag = match (ledger_end, position) {
        (Some(end), Some(p)) => Some(end - p),
        _ => None,
    };
    let mut warnings = Vec::new();
    if !live {
        let since = s
            .heartbeat_age_seconds()
            .map_or("has never sent a heartbeat".to_string(), |a| {
                format!("has sent no heartbeat for {a:.1}s")
            });
        let consequence = match c.desired_state {
            IngesterState::Running => "is it running?",
            IngesterState::Stopped => "it is treated as stopped",
        };
        warnings.push(format!(
            "no live ingester: \"{ingester}\" {since}; {consequence}"
        ));
    }
    if !s.acknowledged() {
        warnings.push(format!(
            "generation {} (desired {}) is not acknowledged yet: acknowledged {}, actual {}",
            c.generation,
            c.desired_state,
            c.acked_generation,
            c.actual_state.map_or("unknown", IngesterState::as_str)
        ));
    }
    if let (Some(end), Some(p)) = (ledger_end, position)
        && p > end
    {
        warnings.push(format!(
            "the position {p} is beyond the node's ledger end {end}: was the node restored? (runbook A: stop, last, offset-lookup, set-offset)"
        ));
    }
    StatusReport {
        kind: "status",
        ingester: ingester.to_string(),
        desired_state: c.desired_state,
        actual_state: c.actual_state,
        generation: c.generation,
        acked_generation: c.acked_generation,
        acknowledged: s.acknowledged(),
        heartbeat_at: c.heartbeat_at,
        heartbeat_age_seconds: s.heartbeat_age_seconds(),
        live_ingester: live,
        resume_offset: c.resume_offset,
        dedup_from: c.dedup_from,
        offset_epoch: c.offset_epoch,
        resume_pending: s.resume_pending(),
        checkpoint: s.checkpoint.clone(),
        last_transaction: last,
        position,
        ledger_end,
        lag,
        warnings,
        status: "ok",
    }
}

impl StatusReport {
    /// The short human form.
    pub fn to_text(&self) -> String {
        let mut lines = vec![format!(
            "ingester {}: desired {}, actual {}, generation {} (acknowledged {})",
            self.ingester,
            self.desired_state,
            self.actual_state.map_or("unknown", IngesterState::as_str),
            self.generation,
            self.acked_generation
        )];
        lines.push(match self.heartbeat_age_seconds {
            Some(a) => format!(
                "heartbeat {a:.1}s ago ({})",
                if self.live_ingester {
                    "live"
                } else {
                    "not live"
                }
            ),
            None => "heartbeat never".to_string(),
        });
        let resume = match self.resume_offset {
            Some(o) => format!(
                "resume after offset {o}{} in epoch {}{}",
                self.dedup_from.map_or(String::new(), |t| format!(
                    ", dedup from {}",
                    format_record_time(t)
                )),
                self.offset_epoch,
                if self.resume_pending {
                    " (pending)"
                } else {
                    " (consumed)"
                }
            ),
            None => format!("no resume offset set, epoch {}", self.offset_epoch),
        };
        lines.push(resume);
        lines.push(match &self.checkpoint {
            Some(cp) => format!(
                "checkpoint offset {} at {} on {} (epoch {}{})",
                cp.offset,
                format_record_time(cp.record_time),
                cp.synchronizer_id,
                cp.epoch,
                cp.update_id
                    .as_ref()
                    .map_or(", offset checkpoint".to_string(), |u| format!(
                        ", update {u}"
                    ))
            ),
            None => "checkpoint none".to_string(),
        });
        if let Some(t) = &self.last_transaction {
            lines.push(format!(
                "last transaction {} at {} (offset {})",
                t.update_id,
                format_record_time(t.record_time),
                t.offset
            ));
        }
        if let (Some(end), Some(lag)) = (self.ledger_end, self.lag) {
            lines.push(format!("ledger end {end}, lag {lag}"));
        }
        for w in &self.warnings {
            lines.push(format!("warning: {w}"));
        }
        lines.join("\n")
    }
}

/// Runs `status`.
pub async fn run(ctx: &Ctx, args: &StatusArgs) -> Result<ExitCode> {
    let db = Db::connect_ready(&ctx.options).await?;
    let snapshot = state::read(db.client(), &ctx.ingester, &ctx.queries, false).await?;
    let last = ctx.queries.last(db.client(), &ctx.ingester).await?;
    // The database part is worth showing even when the node is down.
    let (ledger_end, ledger_warning) = match ledger::ledger_end(&args.ledger).await {
        Ok(end) => (end, None),
        Err(e) if e.kind() == ErrorKind::Transient => (
            None,
            Some(format!("cannot read the ledger end: {}", e.message())),
        ),
        Err(e) => return Err(e),
    };
    let mut report = report(&ctx.ingester, &snapshot, last, ledger_end, ctx.dead_after);
    report.warnings.extend(ledger_warning);
    ctx.printer.result(&report, StatusReport::to_text)?;
    Ok(ExitCode::Ok)
}
