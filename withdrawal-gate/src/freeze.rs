//! `freeze`: close the gate so that Exchange Internal Systems create no more
//! withdrawals (runbook B1), then run the `--stop-cmd` hook.

use crate::context::Ctx;
use crate::hook::{self, HookOutcome};
use crate::settings::FreezeSettings;
use crate::sql::{self, FreezeRequest};
use canton_dr_cli::time::format_record_time;
use canton_dr_cli::{Error, ExitCode, Result};
use chrono::{DateTime, Utc};
use integration_db::Db;
use integration_db::audit::Outcome;
use integration_db::gate;
use serde::Serialize;
use serde_json::json;

/// The output of `freeze`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FreezeResult {
    /// `"freeze"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `ok`, or `failed` when the hook failed.
    pub status: &'static str,
    /// Gate.
    pub gate: String,
    /// Whether this run froze it (`false`: it already was).
    pub changed: bool,
    /// Nothing was changed.
    pub dry_run: bool,
    /// Frozen (after the run; in a dry run: as it would be).
    pub frozen: bool,
    /// The freeze time (in a dry run of a new freeze: the database's now).
    #[serde(with = "integration_db::serde_time::option")]
    pub frozen_at: Option<DateTime<Utc>>,
    /// Who froze it.
    pub frozen_by: Option<String>,
    /// Why (the first freeze's reason).
    pub reason: Option<String>,
    /// Recorded withdrawal ttl, seconds.
    pub ttl_seconds: Option<i64>,
    /// The --stop-cmd hook.
    pub hook: Option<HookOutcome>,
}

impl FreezeResult {
    /// The text form.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}gate {} {} since {} by {} ({})",
            if self.dry_run { "[dry run] " } else { "" },
            self.gate,
            if self.changed {
                "frozen now"
            } else {
                "already frozen"
            },
            self.frozen_at
                .map_or_else(|| "-".into(), format_record_time),
            self.frozen_by.as_deref().unwrap_or("-"),
            self.reason.as_deref().unwrap_or("-"),
        );
        if let Some(ttl) = self.ttl_seconds {
            s.push_str(&format!(", ttl {ttl} s"));
        }
        if let Some(h) = &self.hook {
            s.push_str(&format!("\nstop-cmd: {}", hook_text(h)));
        }
        s
    }
}

pub(crate) fn hook_text(h: &HookOutcome) -> String {
    match (h.ran, h.ok, &h.error) {
        (false, _, _) => format!("would run `{}`", h.command),
        (true, Some(true), _) => format!("`{}` ok", h.command),
        (true, _, Some(e)) => format!("`{}` {e}", h.command),
        (true, _, None) => format!("`{}` failed", h.command),
    }
}

/// Runs `freeze`.
pub async fn run(ctx: &Ctx, s: &FreezeSettings) -> Result<ExitCode> {
    let gate_name = &ctx.names.gate;
    let mut db = Db::connect_ready(&ctx.options).await?;
    let details = |changed: bool, frozen_at: Option<DateTime<Utc>>| {
        json!({
            "changed": changed,
            "reason": s.reason,
            "ttlSeconds": s.ttl_seconds,
            "frozenAt": frozen_at.map(format_record_time),
            "stopCmd": s.stop_cmd,
        })
    };

    let mut result = if s.dry_run {
        let current = gate::get(db.client(), gate_name).await?;
        let now = sql::db_now(db.client()).await?;
        ctx.audit(
            db.client(),
            "freeze",
            true,
            Outcome::Ok,
            details(false, None),
        )
        .await?;
        match current.filter(|g| g.frozen) {
            Some(g) => FreezeResult {
                kind: "freeze",
                status: "ok",
                gate: gate_name.clone(),
                changed: false,
                dry_run: true,
                frozen: true,
                frozen_at: g.frozen_at,
                frozen_by: g.frozen_by,
                reason: g.reason,
                ttl_seconds: g.ttl_seconds,
                hook: None,
            },
            None => FreezeResult {
                kind: "freeze",
                status: "ok",
                gate: gate_name.clone(),
                changed: true,
                dry_run: true,
                frozen: true,
                frozen_at: Some(now),
                frozen_by: Some(ctx.actor.clone()),
                reason: Some(s.reason.clone()),
                ttl_seconds: s.ttl_seconds,
                hook: None,
            },
        }
    } else {
        let tx = db.transaction().await?;
        let request = FreezeRequest {
            by: ctx.actor.clone(),
            reason: s.reason.clone(),
            ttl_seconds: s.ttl_seconds,
        };
        let change = sql::freeze_locked(&tx, gate_name, &request, s.lock_timeout).await?;
        ctx.audit(
            &tx,
            "freeze",
            false,
            Outcome::Ok,
            details(change.changed, change.value.frozen_at),
        )
        .await?;
        tx.commit()
            .await
            .map_err(|e| integration_db::error::db_error(&e))?;
        if !change.changed && s.ttl_seconds.is_some() && s.ttl_seconds != change.value.ttl_seconds {
            eprintln!(
                "warning: the gate was already frozen; its recorded ttl ({}) is kept, not --ttl",
                change
                    .value
                    .ttl_seconds
                    .map_or_else(|| "none".to_string(), |t| format!("{t} s"))
            );
        }
        let g = change.value;
        FreezeResult {
            kind: "freeze",
            status: "ok",
            gate: gate_name.clone(),
            changed: change.changed,
            dry_run: false,
            frozen: g.frozen,
            frozen_at: g.frozen_at,
            frozen_by: g.frozen_by,
            reason: g.reason,
            ttl_seconds: g.ttl_seconds,
            hook: None,
        }
    };

    let mut failure = None;
    if let Some(cmd) = &s.stop_cmd {
        let (outcome, hook_failure) = hook::run_after_change(
            ctx,
            &db,
            cmd,
            "freeze",
            "stop-cmd",
            gate_name,
            s.hook_timeout,
            s.dry_run,
            (
                "the gate is frozen",
                "fix the hook and rerun freeze: it keeps the first freeze and runs the hook again",
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
        FreezeResult::to_text,
    )
}

/// Prints `result` (with its status set by `mark_failed` when `failure` is
/// some), then reports the failure on stderr; returns the exit code.
pub(crate) fn finish<T: Serialize + Clone>(
    ctx: &Ctx,
    result: &T,
    failure: Option<Error>,
    mark_failed: impl FnOnce(&mut T),
    text: impl FnOnce(&T) -> String,
) -> Result<ExitCode> {
    match failure {
        None => {
            ctx.printer.result(result, text)?;
            Ok(ExitCode::Ok)
        }
        Some(err) => {
            let mut r = result.clone();
            mark_failed(&mut r);
            ctx.printer.result(&r, text)?;
            eprintln!("error: {}", err.message());
            if let Some(h) = err.hint() {
                eprintln!("hint: {h}");
            }
            Ok(err.exit_code())
        }
    }
}
