//! `ingest-ctl start [--wait] [--caught-up]` (runbook A step 7): records
//! desired state `running`, runs `--start-cmd`, and with `--wait` returns once
//! the ingester acknowledged; with `--caught-up` (needs `--ledger-api`) once
//! its position in the current offset epoch reached the node's ledger end as
//! read when the command began (before the start is recorded, so that an
//! unreachable node changes nothing).

use super::desired;
use super::stop::humanize;
use crate::Ctx;
use crate::args::StartArgs;
use crate::hooks::{self, HookReport};
use crate::ledger;
use crate::state::Snapshot;
use crate::wait::{Goal, Waiter};
use canton_dr_cli::{Error, ExitCode, Result};
use integration_db::Db;
use integration_db::control::IngesterState;
use serde::Serialize;

/// What `start` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartReport {
    /// Always `"start"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The ingester.
    pub ingester: String,
    /// Always `running`.
    pub desired_state: IngesterState,
    /// False when the start was already requested (no generation bump).
    pub changed: bool,
    /// The generation the ingester has to acknowledge.
    pub generation: i64,
    /// The generation it acknowledged.
    pub acked_generation: i64,
    /// What it reported.
    pub actual_state: Option<IngesterState>,
    /// It acknowledged the start.
    pub acknowledged: bool,
    /// An ingester beat within --dead-after.
    pub live_ingester: bool,
    /// Age of the last heartbeat.
    pub heartbeat_age_seconds: Option<f64>,
    /// Offset epoch in force.
    pub offset_epoch: i32,
    /// Where the ingester is (continues after).
    pub position: Option<i64>,
    /// The node's ledger end read when the command began (with --caught-up).
    pub ledger_end: Option<i64>,
    /// With --caught-up: the position reached the ledger end.
    pub caught_up: Option<bool>,
    /// --wait was given (and this was no dry run).
    pub waited: bool,
    /// How long the wait took.
    pub waited_ms: Option<u64>,
    /// The --start-cmd hook.
    pub hook: Option<HookReport>,
    /// A dry run.
    pub dry_run: bool,
    /// Always `"ok"` (failures are error objects).
    pub status: &'static str,
}

impl StartReport {
    fn to_text(&self) -> String {
        let dry = if self.dry_run { " (dry run)" } else { "" };
        let mut what = if self.acknowledged {
            format!("running: acknowledged generation {}", self.acked_generation)
        } else {
            format!(
                "start requested (generation {}), not acknowledged yet (acknowledged {})",
                self.generation, self.acked_generation
            )
        };
        if let (Some(true), Some(end)) = (self.caught_up, self.ledger_end) {
            what.push_str(&format!(
                "; caught up: at offset {} (ledger end {end})",
                self.position.unwrap_or(0)
            ));
        }
        format!("ingester {}: {what}{dry}", self.ingester)
    }
}

fn start_acknowledged(s: &Snapshot, generation: i64) -> bool {
    s.control.desired_state == IngesterState::Running
        && s.control.actual_state == Some(IngesterState::Running)
        && s.control.acked_generation >= generation
}

/// Runs `start`.
pub async fn run(ctx: &Ctx, args: &StartArgs) -> Result<ExitCode> {
    if args.caught_up && args.ledger.ledger_api.is_none() {
        return Err(Error::usage(
            "--caught-up needs the node's ledger end: --ledger-api is not set",
        )
        .with_hint("pass --ledger-api HOST:PORT (or set CANTON_LEDGER_API)"));
    }
    let wait = (args.wait.wait || args.caught_up) && !args.dry_run;
    let mut db = Db::connect_ready(&ctx.options).await?;
    // The target, read before anything changes: a node that cannot be
    // reached fails the command before the start is recorded.
    let ledger_end = if args.caught_up && wait {
        ledger::ledger_end(&args.ledger).await?
    } else {
        None
    };
    let recorded = desired::record(
        ctx,
        &mut db,
        IngesterState::Running,
        "start",
        args.dry_run,
        args.start_cmd.as_deref(),
    )
    .await?;
    let generation = recorded.after.control.generation;
    let hook = match &args.start_cmd {
        Some(cmd) if args.dry_run => Some(hooks::skipped(cmd)),
        Some(cmd) => Some(hooks::run("--start-cmd", cmd, &ctx.ingester).await?),
        None => None,
    };
    let (snapshot, waited_ms) = if wait {
        let target = ledger_end;
        let mut waiter = Waiter::new(ctx, db, args.wait.timeout, args.wait.poll_interval).await;
        let ingester = ctx.ingester.as_str();
        let timeout = args.wait.timeout;
        let goal = if target.is_some() {
            Goal::CaughtUp
        } else {
            Goal::StartAcknowledged
        };
        let waited = waiter
            .until(
                goal,
                target,
                |s| {
                    if s.control.desired_state != IngesterState::Running {
                        return Some(Err(Error::condition(format!(
                            "ingester \"{ingester}\" was asked to stop (generation {}) while waiting for it to start",
                            s.control.generation
                        ))
                        .with_hint("someone else ran `ingest-ctl stop`; check `ingest-ctl status` and the audit_log")));
                    }
                    let acknowledged = start_acknowledged(s, generation);
                    let reached = target.is_none_or(|end| s.position().unwrap_or(0) >= end);
                    (acknowledged && reached).then_some(Ok(()))
                },
                |last| timeout_error(ingester, generation, target, timeout, last),
            )
            .await?;
        waited.value?;
        (waited.snapshot, Some(waited.elapsed.as_millis() as u64))
    } else {
        (recorded.after.clone(), None)
    };
    let report = StartReport {
        kind: "start",
        ingester: ctx.ingester.clone(),
        desired_state: IngesterState::Running,
        changed: recorded.changed,
        generation,
        acked_generation: snapshot.control.acked_generation,
        actual_state: snapshot.control.actual_state,
        acknowledged: start_acknowledged(&snapshot, generation),
        live_ingester: snapshot.live(ctx.dead_after),
        heartbeat_age_seconds: snapshot.heartbeat_age_seconds(),
        offset_epoch: snapshot.control.offset_epoch,
        position: snapshot.position(),
        ledger_end,
        caught_up: ledger_end.map(|end| snapshot.position().unwrap_or(0) >= end),
        waited: waited_ms.is_some(),
        waited_ms,
        hook,
        dry_run: args.dry_run,
        status: "ok",
    };
    ctx.printer.result(&report, StartReport::to_text)?;
    Ok(ExitCode::Ok)
}

fn timeout_error(
    ingester: &str,
    generation: i64,
    target: Option<i64>,
    timeout: std::time::Duration,
    last: Option<&Snapshot>,
) -> Error {
    let Some(s) = last else {
        return Error::timeout(format!(
            "ingester \"{ingester}\" was not seen running within {}: the database was unreachable",
            humanize(timeout)
        ))
        .with_hint("check PostgreSQL, then rerun (start is idempotent)");
    };
    let heartbeat = s
        .heartbeat_age_seconds()
        .map_or("never".to_string(), |a| format!("{a:.1}s ago"));
    if !start_acknowledged(s, generation) {
        return Error::timeout(format!(
            "ingester \"{ingester}\" did not acknowledge the start (generation {generation}) within {}; it acknowledged generation {}, actual state {}, last heartbeat {heartbeat}",
            humanize(timeout),
            s.control.acked_generation,
            s.control.actual_state.map_or("unknown", IngesterState::as_str),
        ))
        .with_hint("is the ingester process running? start it (or pass --start-cmd), then rerun `ingest-ctl start --wait`");
    }
    Error::timeout(format!(
        "ingester \"{ingester}\" did not catch up within {}: at offset {} of ledger end {} (offset epoch {})",
        humanize(timeout),
        s.position().map_or("none".to_string(), |p| p.to_string()),
        target.unwrap_or(0),
        s.control.offset_epoch
    ))
    .with_hint("it is running; rerun with a longer --timeout, and watch `ingest-ctl status --ledger-api …` for the lag")
}
