//! `ingest-ctl stop [--wait]` (runbook A step 1): records desired state
//! `stopped`, runs `--stop-cmd`, and with `--wait` returns only once the
//! ingester acknowledged the stop, or once no ingester has beaten for
//! `--dead-after` (then `"liveIngester": false` says that nobody acknowledged:
//! an ingester that comes back reads the desired state before it ingests).

use super::desired;
use crate::Ctx;
use crate::args::StopArgs;
use crate::hooks::{self, HookReport};
use crate::state::Snapshot;
use crate::wait::{Goal, Waiter};
use canton_dr_cli::{Error, ExitCode, Result};
use integration_db::Db;
use integration_db::control::IngesterState;
use serde::Serialize;

/// What `stop` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StopReport {
    /// Always `"stop"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The ingester.
    pub ingester: String,
    /// Always `stopped`.
    pub desired_state: IngesterState,
    /// False when the stop was already requested (no generation bump).
    pub changed: bool,
    /// The generation the ingester has to acknowledge.
    pub generation: i64,
    /// The generation it acknowledged.
    pub acked_generation: i64,
    /// What it reported.
    pub actual_state: Option<IngesterState>,
    /// It acknowledged the stop.
    pub acknowledged: bool,
    /// An ingester beat within --dead-after.
    pub live_ingester: bool,
    /// Age of the last heartbeat.
    pub heartbeat_age_seconds: Option<f64>,
    /// --wait was given (and this was no dry run).
    pub waited: bool,
    /// How long the wait took.
    pub waited_ms: Option<u64>,
    /// The --stop-cmd hook.
    pub hook: Option<HookReport>,
    /// A dry run.
    pub dry_run: bool,
    /// Always `"ok"` (failures are error objects).
    pub status: &'static str,
}

impl StopReport {
    fn to_text(&self) -> String {
        let dry = if self.dry_run { " (dry run)" } else { "" };
        let what = if self.acknowledged {
            format!("stopped: acknowledged generation {}", self.acked_generation)
        } else if !self.live_ingester {
            "no live ingester (no heartbeat within --dead-after): it will stay stopped when it comes back".to_string()
        } else {
            format!(
                "stop requested (generation {}), not acknowledged yet (acknowledged {})",
                self.generation, self.acked_generation
            )
        };
        format!("ingester {}: {what}{dry}", self.ingester)
    }
}

fn stop_acknowledged(s: &Snapshot, generation: i64) -> bool {
    s.control.desired_state == IngesterState::Stopped
        && s.control.actual_state == Some(IngesterState::Stopped)
        && s.control.acked_generation >= generation
}

/// Runs `stop`.
pub async fn run(ctx: &Ctx, args: &StopArgs) -> Result<ExitCode> {
    let mut db = Db::connect_ready(&ctx.options).await?;
    let recorded = desired::record(
        ctx,
        &mut db,
        IngesterState::Stopped,
        "stop",
        args.dry_run,
        args.stop_cmd.as_deref(),
    )
    .await?;
    let generation = recorded.after.control.generation;
    let hook = match &args.stop_cmd {
        Some(cmd) if args.dry_run => Some(hooks::skipped(cmd)),
        Some(cmd) => Some(hooks::run("--stop-cmd", cmd, &ctx.ingester).await?),
        None => None,
    };
    let (snapshot, waited_ms) = if args.wait.wait && !args.dry_run {
        let mut waiter = Waiter::new(ctx, db, args.wait.timeout, args.wait.poll_interval).await;
        let ingester = ctx.ingester.as_str();
        let dead_after = ctx.dead_after;
        let timeout = args.wait.timeout;
        let waited = waiter
            .until(
                Goal::StopAcknowledged,
                None,
                |s| {
                    if s.control.desired_state != IngesterState::Stopped {
                        return Some(Err(Error::condition(format!(
                            "ingester \"{ingester}\" was asked to start again (generation {}) while waiting for it to stop",
                            s.control.generation
                        ))
                        .with_hint("someone else ran `ingest-ctl start`; check `ingest-ctl status` and the audit_log")));
                    }
                    (stop_acknowledged(s, generation) || !s.live(dead_after)).then_some(Ok(()))
                },
                |last| timeout_error(ingester, generation, timeout, last),
            )
            .await?;
        waited.value?;
        (waited.snapshot, Some(waited.elapsed.as_millis() as u64))
    } else {
        (recorded.after.clone(), None)
    };
    let report = StopReport {
        kind: "stop",
        ingester: ctx.ingester.clone(),
        desired_state: IngesterState::Stopped,
        changed: recorded.changed,
        generation,
        acked_generation: snapshot.control.acked_generation,
        actual_state: snapshot.control.actual_state,
        acknowledged: stop_acknowledged(&snapshot, generation),
        live_ingester: snapshot.live(ctx.dead_after),
        heartbeat_age_seconds: snapshot.heartbeat_age_seconds(),
        waited: waited_ms.is_some(),
        waited_ms,
        hook,
        dry_run: args.dry_run,
        status: "ok",
    };
    ctx.printer.result(&report, StopReport::to_text)?;
    Ok(ExitCode::Ok)
}

fn timeout_error(
    ingester: &str,
    generation: i64,
    timeout: std::time::Duration,
    last: Option<&Snapshot>,
) -> Error {
    let state = match last {
        Some(s) => format!(
            "; it acknowledged generation {}, actual state {}, last heartbeat {}",
            s.control.acked_generation,
            s.control
                .actual_state
                .map_or("unknown", IngesterState::as_str),
            s.heartbeat_age_seconds()
                .map_or("never".to_string(), |a| format!("{a:.1}s ago"))
        ),
        None => "; the database was unreachable".to_string(),
    };
    Error::timeout(format!(
        "ingester \"{ingester}\" did not acknowledge the stop (generation {generation}) within {}{state}",
        humanize(timeout)
    ))
    .with_hint("check the ingester's logs; rerun `ingest-ctl stop --wait` (it is idempotent), or stop its process with --stop-cmd")
}

/// `90s` → `1m 30s`, for messages.
pub(crate) fn humanize(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_millis() != 0 || secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 {
        parts.push(format!("{m}m"));
    }
    if s > 0 {
        parts.push(format!("{s}s"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_read_well() {
        assert_eq!(humanize(Duration::from_secs(90)), "1m 30s");
        assert_eq!(humanize(Duration::from_secs(3600)), "1h");
        assert_eq!(humanize(Duration::from_millis(1500)), "1500ms");
        assert_eq!(humanize(Duration::from_secs(2)), "2s");
    }
}
