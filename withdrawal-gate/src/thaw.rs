//! `thaw`: open the gate again once the ingestion checkpoint is past tSafe
//! (runbook B4), or with `--force` and a reason; then run `--start-cmd`.

use crate::context::Ctx;
use crate::freeze::{finish, hook_text};
use crate::hook::{self, HookOutcome};
use crate::passage::{self, Passage};
use crate::settings::ThawSettings;
use crate::sql;
use crate::tsafe::{self, TSafe};
use canton_dr_cli::time::format_record_time;
use canton_dr_cli::{Error, ExitCode, Result};
use chrono::{DateTime, Utc};
use integration_db::Db;
use integration_db::audit::Outcome;
use integration_db::gate;
use serde::Serialize;
use serde_json::json;
use std::io::{BufRead as _, IsTerminal as _, Write as _};

/// The output of `thaw`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThawResult {
    /// `"thaw"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `ok`, or `failed` when the hook failed.
    pub status: &'static str,
    /// Gate.
    pub gate: String,
    /// Whether this run opened it (`false`: it was open).
    pub changed: bool,
    /// Nothing was changed.
    pub dry_run: bool,
    /// Frozen after the run (always `false`).
    pub frozen: bool,
    /// The tSafe check was overridden by --force.
    pub forced: bool,
    /// Why (as recorded).
    pub reason: Option<String>,
    /// The tSafe checked (`None` when the gate was open).
    #[serde(rename = "tSafe", with = "integration_db::serde_time::option")]
    pub t_safe: Option<DateTime<Utc>>,
    /// The ingestion checkpoint's record time.
    #[serde(with = "integration_db::serde_time::option")]
    pub checkpoint_record_time: Option<DateTime<Utc>>,
    /// Its synchronizer.
    pub synchronizer_id: Option<String>,
    /// Whether the checkpoint is past tSafe (`None` when the gate was open).
    pub passed: Option<bool>,
    /// When it was thawed.
    #[serde(with = "integration_db::serde_time::option")]
    pub thawed_at: Option<DateTime<Utc>>,
    /// By whom.
    pub thawed_by: Option<String>,
    /// The --start-cmd hook.
    pub hook: Option<HookOutcome>,
}

impl ThawResult {
    /// The text form.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}gate {} {}",
            if self.dry_run { "[dry run] " } else { "" },
            self.gate,
            if self.changed {
                "thawed now"
            } else {
                "already open"
            },
        );
        if let Some(t) = self.t_safe {
            s.push_str(&format!(
                "; tSafe {} {} (checkpoint {})",
                format_record_time(t),
                if self.passed == Some(true) {
                    "passed"
                } else {
                    "NOT passed"
                },
                self.checkpoint_record_time
                    .map_or_else(|| "-".into(), format_record_time)
            ));
        }
        if self.forced {
            s.push_str(&format!(
                "\nFORCED: {}",
                self.reason.as_deref().unwrap_or("-")
            ));
        }
        if let Some(h) = &self.hook {
            s.push_str(&format!("\nstart-cmd: {}", hook_text(h)));
        }
        s
    }
}

/// Runs `thaw`.
pub async fn run(ctx: &Ctx, s: &ThawSettings) -> Result<ExitCode> {
    let gate_name = &ctx.names.gate;
    let mut db = Db::connect_ready(&ctx.options).await?;
    let current = gate::get(db.client(), gate_name).await?;

    let mut result = if current.as_ref().is_none_or(|g| !g.frozen) {
        ctx.audit(
            db.client(),
            "thaw",
            s.dry_run,
            Outcome::Ok,
            json!({"changed": false, "reason": s.reason, "force": s.force}),
        )
        .await?;
        ThawResult {
            kind: "thaw",
            status: "ok",
            gate: gate_name.clone(),
            changed: false,
            dry_run: s.dry_run,
            frozen: false,
            forced: false,
            reason: current.as_ref().and_then(|g| g.thaw_reason.clone()),
            t_safe: None,
            checkpoint_record_time: None,
            synchronizer_id: None,
            passed: None,
            thawed_at: current.as_ref().and_then(|g| g.thawed_at),
            thawed_by: current.as_ref().and_then(|g| g.thawed_by.clone()),
            hook: None,
        }
    } else {
        let inputs = tsafe::gather(db.client(), gate_name).await?;
        let ts = tsafe::compute(gate_name, &inputs, &s.ttl);
        let view = sql::read_ingestion_once(db.client(), &ctx.names.ingester).await?;
        let passage = passage::assess(&view, ts.t_safe, s.synchronizer_id.as_deref());
        let details = |forced: bool| {
            json!({
                "tSafe": ts.t_safe.map(format_record_time),
                "winner": ts.winner,
                "checkpointRecordTime": passage.checkpoint_record_time.map(format_record_time),
                "synchronizerId": passage.synchronizer_id,
                "passed": passage.passed,
                "force": s.force,
                "forced": forced,
                "reason": s.reason,
            })
        };
        if !passage.passed {
            if !s.force {
                ctx.audit(
                    db.client(),
                    "thaw",
                    s.dry_run,
                    Outcome::Refused,
                    details(false),
                )
                .await?;
                return Err(refusal(ctx, &ts, &passage));
            }
            if !s.dry_run {
                confirm(s.yes, gate_name, &passage)?;
            }
        }
        let forced = !passage.passed;
        let (thawed_at, thawed_by, reason) = if s.dry_run {
            ctx.audit(db.client(), "thaw", true, Outcome::Ok, details(forced))
                .await?;
            (
                Some(inputs.db_now),
                Some(ctx.actor.clone()),
                s.reason.clone(),
            )
        } else {
            let tx = db.transaction().await?;
            let change = gate::thaw(&tx, gate_name, &ctx.actor, s.reason.as_deref()).await?;
            ctx.audit(&tx, "thaw", false, Outcome::Ok, details(forced))
                .await?;
            tx.commit()
                .await
                .map_err(|e| integration_db::error::db_error(&e))?;
            let g = change.value;
            (
                g.as_ref().and_then(|g| g.thawed_at),
                g.as_ref().and_then(|g| g.thawed_by.clone()),
                g.as_ref().and_then(|g| g.thaw_reason.clone()),
            )
        };
        if forced {
            eprintln!(
                "warning: gate \"{gate_name}\" thawed by --force before ingestion passed tSafe: {}",
                s.reason.as_deref().unwrap_or("-")
            );
        }
        ThawResult {
            kind: "thaw",
            status: "ok",
            gate: gate_name.clone(),
            changed: true,
            dry_run: s.dry_run,
            frozen: false,
            forced,
            reason,
            t_safe: ts.t_safe,
            checkpoint_record_time: passage.checkpoint_record_time,
            synchronizer_id: passage.synchronizer_id.clone(),
            passed: Some(passage.passed),
            thawed_at,
            thawed_by,
            hook: None,
        }
    };

    let mut failure = None;
    if let Some(cmd) = &s.start_cmd {
        let (outcome, hook_failure) = hook::run_after_change(
            ctx,
            &db,
            cmd,
            "thaw",
            "start-cmd",
            gate_name,
            s.hook_timeout,
            s.dry_run,
            (
                "the gate is open",
                "fix the hook and rerun thaw: an open gate stays open and the hook runs again",
            ),
        )
        .await?;
        failure = hook_failure;
        result.hook = Some(outcome);
    }
    finish(
        ctx,
        &result,
        failure,
        |r| r.status = "failed",
        ThawResult::to_text,
    )
}

fn refusal(ctx: &Ctx, ts: &TSafe, p: &Passage) -> Error {
    let gate = &ctx.names.gate;
    let ingester = &ctx.names.ingester;
    let why = match (ts.t_safe, &p.checkpoint_record_time) {
        (None, _) => format!(
            "tSafe of gate \"{gate}\" is unknown (no withdrawal ttl known), so it cannot be shown to be passed"
        ),
        (Some(t), None) => format!(
            "ingester \"{ingester}\" has no checkpoint yet; tSafe {} is not passed",
            format_record_time(t)
        ),
        (Some(t), Some(c)) if !p.on_synchronizer => format!(
            "the checkpoint of ingester \"{ingester}\" is on synchronizer {}, not {}; tSafe {} is not shown to be passed (checkpoint {})",
            p.synchronizer_id.as_deref().unwrap_or("-"),
            p.expected_synchronizer_id.as_deref().unwrap_or("-"),
            format_record_time(t),
            format_record_time(*c)
        ),
        (Some(t), Some(c)) => format!(
            "ingestion has not passed tSafe {}: the checkpoint of ingester \"{ingester}\" is at {} ({} ms to go)",
            format_record_time(t),
            format_record_time(*c),
            p.remaining_ms.unwrap_or(0)
        ),
    };
    let hint = if ts.t_safe.is_none() {
        "pass --ttl (or WITHDRAWAL_TTL), or override with --force --reason TEXT"
    } else {
        "run `withdrawal-gate wait` until it passes, then thaw; or override with --force --reason TEXT"
    };
    Error::refused(why)
        .with_hint(hint)
        .with_code("TSAFE_NOT_PASSED")
}

/// A forced thaw needs `--yes`, or a typed confirmation on a terminal.
fn confirm(yes: bool, gate: &str, p: &Passage) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::usage(
            "--force needs --yes when stdin is not a terminal (a forced thaw can let a customer withdraw twice)",
        )
        .with_hint("add --yes to confirm"));
    }
    eprint!(
        "Ingestion has NOT passed tSafe (checkpoint {}). Type the gate name ({gate}) to thaw anyway: ",
        p.checkpoint_record_time
            .map_or_else(|| "none".into(), format_record_time)
    );
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim() == gate {
        Ok(())
    } else {
        Err(Error::refused(
            "forced thaw not confirmed; nothing was changed",
        ))
    }
}
