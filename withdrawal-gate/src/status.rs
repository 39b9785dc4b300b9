//! `status` and `tsafe`: read-only views of the gate, tSafe and the
//! ingester.

use crate::context::Ctx;
use crate::passage::{self, Liveness};
use crate::settings::{StatusSettings, TsafeSettings};
use crate::sql;
use crate::tsafe::{self, TSafe};
use canton_dr_cli::time::format_record_time;
use canton_dr_cli::{ExitCode, Result};
use chrono::{DateTime, Utc};
use integration_db::Db;
use serde::Serialize;

/// Runs `tsafe`: prints the computation; exit 2 when tSafe is unknown.
pub async fn run_tsafe(ctx: &Ctx, s: &TsafeSettings) -> Result<ExitCode> {
    let db = Db::connect_ready(&ctx.options).await?;
    let inputs = tsafe::gather(db.client(), &ctx.names.gate).await?;
    let ts = tsafe::compute(&ctx.names.gate, &inputs, s);
    ts.require()?;
    for w in &ts.warnings {
        eprintln!("warning: {w}");
    }
    #[derive(Serialize)]
    struct Out<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        status: &'static str,
        #[serde(flatten)]
        t_safe: &'a TSafe,
    }
    ctx.printer.result(
        &Out {
            kind: "tsafe",
            status: "ok",
            t_safe: &ts,
        },
        |o| o.t_safe.to_text(),
    )?;
    Ok(ExitCode::Ok)
}

/// The ingester as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngesterStatus {
    /// Name.
    pub name: String,
    /// Checkpoint record time.
    #[serde(with = "integration_db::serde_time::option")]
    pub checkpoint_record_time: Option<DateTime<Utc>>,
    /// Checkpoint offset.
    pub checkpoint_offset: Option<i64>,
    /// Checkpoint update id (`null` for an offset checkpoint).
    pub checkpoint_update_id: Option<String>,
    /// Checkpoint synchronizer.
    pub synchronizer_id: Option<String>,
    /// Heartbeat and state.
    #[serde(flatten)]
    pub liveness: Liveness,
}

/// The output of `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// `"status"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Always `ok`.
    pub status: &'static str,
    /// Gate.
    pub gate: String,
    /// Frozen now.
    pub frozen: bool,
    /// Since.
    #[serde(with = "integration_db::serde_time::option")]
    pub frozen_at: Option<DateTime<Utc>>,
    /// By.
    pub frozen_by: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Recorded ttl, seconds.
    pub ttl_seconds: Option<i64>,
    /// Last thaw.
    #[serde(with = "integration_db::serde_time::option")]
    pub thawed_at: Option<DateTime<Utc>>,
    /// By.
    pub thawed_by: Option<String>,
    /// Why.
    pub thaw_reason: Option<String>,
    /// tSafe (as `tsafe` computes it).
    #[serde(rename = "tSafe")]
    pub t_safe: TSafe,
    /// The ingester.
    pub ingester: IngesterStatus,
    /// Whether the checkpoint is past tSafe (`null` when the gate is open).
    pub passed: Option<bool>,
    /// Whether `thaw` would proceed without --force.
    pub thaw_allowed: bool,
}

impl Status {
    /// The text form.
    pub fn to_text(&self) -> String {
        let t = |v: Option<DateTime<Utc>>| v.map_or_else(|| "-".to_string(), format_record_time);
        let mut s = if self.frozen {
            format!(
                "gate {} FROZEN since {} by {} ({})\n",
                self.gate,
                t(self.frozen_at),
                self.frozen_by.as_deref().unwrap_or("-"),
                self.reason.as_deref().unwrap_or("-")
            )
        } else {
            format!("gate {} open\n", self.gate)
        };
        s.push_str(&self.t_safe.bounds_text());
        let i = &self.ingester;
        s.push_str(&format!(
            "ingester {}: checkpoint {} offset {} on {}; heartbeat {}{}; state {}/{}\n",
            i.name,
            t(i.checkpoint_record_time),
            i.checkpoint_offset
                .map_or_else(|| "-".into(), |o| o.to_string()),
            i.synchronizer_id.as_deref().unwrap_or("-"),
            t(i.liveness.heartbeat_at),
            if i.liveness.heartbeat_stale {
                " STALE"
            } else {
                ""
            },
            i.liveness.desired_state.as_deref().unwrap_or("-"),
            i.liveness.actual_state.as_deref().unwrap_or("-"),
        ));
        s.push_str(&format!(
            "thaw {}\n",
            if self.thaw_allowed {
                "allowed"
            } else {
                "refused: tSafe not passed"
            }
        ));
        s
    }
}

/// Runs `status` (always exit 0 once the DB answered).
pub async fn run_status(ctx: &Ctx, s: &StatusSettings) -> Result<ExitCode> {
    let db = Db::connect_ready(&ctx.options).await?;
    let inputs = tsafe::gather(db.client(), &ctx.names.gate).await?;
    let ts = tsafe::compute(&ctx.names.gate, &inputs, &s.ttl);
    let view = sql::read_ingestion_once(db.client(), &ctx.names.ingester).await?;
    let p = passage::assess(&view, ts.t_safe, s.synchronizer_id.as_deref());
    let live = passage::liveness(&view, s.heartbeat_stale_after);
    let g = inputs.gate.clone();
    let frozen = g.as_ref().is_some_and(|g| g.frozen);
    let out = Status {
        kind: "status",
        status: "ok",
        gate: ctx.names.gate.clone(),
        frozen,
        frozen_at: g.as_ref().filter(|_| frozen).and_then(|g| g.frozen_at),
        frozen_by: g
            .as_ref()
            .filter(|_| frozen)
            .and_then(|g| g.frozen_by.clone()),
        reason: g.as_ref().filter(|_| frozen).and_then(|g| g.reason.clone()),
        ttl_seconds: g.as_ref().filter(|_| frozen).and_then(|g| g.ttl_seconds),
        thawed_at: g.as_ref().and_then(|g| g.thawed_at),
        thawed_by: g.as_ref().and_then(|g| g.thawed_by.clone()),
        thaw_reason: g.as_ref().and_then(|g| g.thaw_reason.clone()),
        t_safe: ts,
        ingester: IngesterStatus {
            name: ctx.names.ingester.clone(),
            checkpoint_record_time: p.checkpoint_record_time,
            checkpoint_offset: p.checkpoint_offset,
            checkpoint_update_id: p.checkpoint_update_id.clone(),
            synchronizer_id: p.synchronizer_id.clone(),
            liveness: live,
        },
        passed: frozen.then_some(p.passed),
        thaw_allowed: !frozen || p.passed,
    };
    ctx.printer.result(&out, Status::to_text)?;
    Ok(ExitCode::Ok)
}
