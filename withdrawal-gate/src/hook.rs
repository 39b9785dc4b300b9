//! `--stop-cmd` / `--start-cmd`: an operator's shell command run after the
//! gate changed (e.g. stopping or starting Withdrawal Automation).
//!
//! The command runs under `sh -c` with stdin closed and its stdout sent to our
//! stderr (stdout carries data only). It sees `WITHDRAWAL_GATE` (the gate) and
//! `WITHDRAWAL_GATE_ACTION` (`freeze` or `thaw`). It is killed after its timeout.

use serde::Serialize;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// What became of a hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookOutcome {
    /// The command.
    pub command: String,
    /// Whether it was run (not in a dry run).
    pub ran: bool,
    /// Its exit code (`None`: not run, killed by a signal, or timed out).
    pub exit_code: Option<i32>,
    /// Whether it succeeded (`None`: not run).
    pub ok: Option<bool>,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// How long it ran, milliseconds.
    pub duration_ms: Option<u64>,
}

impl HookOutcome {
    /// A hook a dry run would have run.
    pub fn not_run(command: &str) -> HookOutcome {
        HookOutcome {
            command: command.to_string(),
            ran: false,
            exit_code: None,
            ok: None,
            error: None,
            duration_ms: None,
        }
    }
}

/// Runs `command` for `action` on `gate`, waiting at most `timeout`.
pub async fn run(command: &str, action: &str, gate: &str, timeout: Duration) -> HookOutcome {
    let started = Instant::now();
    let mut outcome = HookOutcome {
        ran: true,
        ..HookOutcome::not_run(command)
    };
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .env("WITHDRAWAL_GATE", gate)
        .env("WITHDRAWAL_GATE_ACTION", action)
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            outcome.ok = Some(false);
            outcome.error = Some(format!("cannot start sh: {e}"));
            return outcome;
        }
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => {
            outcome.exit_code = status.code();
            outcome.ok = Some(status.success());
            if !status.success() {
                outcome.error = Some(match status.code() {
                    Some(c) => format!("exited with status {c}"),
                    None => "was killed by a signal".to_string(),
                });
            }
        }
        Ok(Err(e)) => {
            outcome.ok = Some(false);
            outcome.error = Some(format!("cannot wait for it: {e}"));
        }
        Err(_) => {
            let _ = child.kill().await;
            outcome.ok = Some(false);
            outcome.error = Some(format!(
                "did not finish within {} ms and was killed",
                timeout.as_millis()
            ));
        }
    }
    outcome.duration_ms = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
    outcome
}

/// Runs an operator hook after a gate change (`--stop-cmd` on freeze,
/// `--start-cmd` on thaw) and audits its outcome as `audit_command`.
/// Under `--dry-run` nothing runs. Returns the outcome, and the error to
/// report when the hook failed: `state` names the gate state that stays in
/// place ("frozen"/"open"), `rerun` the command to rerun.
#[allow(clippy::too_many_arguments)]
pub async fn run_after_change(
    ctx: &crate::context::Ctx,
    db: &integration_db::Db,
    cmd: &str,
    action: &str,
    audit_command: &str,
    gate: &str,
    timeout: Duration,
    dry_run: bool,
    failure_text: (&str, &str),
) -> canton_dr_cli::Result<(HookOutcome, Option<canton_dr_cli::Error>)> {
    if dry_run {
        return Ok((HookOutcome::not_run(cmd), None));
    }
    let outcome = run(cmd, action, gate, timeout).await;
    let ok = outcome.ok == Some(true);
    ctx.audit(
        db.client(),
        audit_command,
        false,
        if ok {
            integration_db::audit::Outcome::Ok
        } else {
            integration_db::audit::Outcome::Failed
        },
        serde_json::to_value(&outcome).unwrap_or_default(),
    )
    .await?;
    let (state, hint) = failure_text;
    let failure = (!ok).then(|| {
        canton_dr_cli::Error::condition(format!(
            "{state}, but --{audit_command} `{cmd}` {}",
            outcome.error.as_deref().unwrap_or("failed")
        ))
        .with_hint(hint)
    });
    Ok((outcome, failure))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn success_failure_timeout_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("env");
        let ok = run(
            &format!(
                "echo \"$WITHDRAWAL_GATE $WITHDRAWAL_GATE_ACTION\" > {}",
                file.display()
            ),
            "freeze",
            "cn-withdrawals",
            Duration::from_secs(10),
        )
        .await;
        assert_eq!((ok.ran, ok.ok, ok.exit_code), (true, Some(true), Some(0)));
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "cn-withdrawals freeze\n"
        );

        let bad = run("exit 7", "thaw", "g", Duration::from_secs(10)).await;
        assert_eq!((bad.ok, bad.exit_code), (Some(false), Some(7)));
        assert_eq!(bad.error.as_deref(), Some("exited with status 7"));

        let slow = run("sleep 30", "thaw", "g", Duration::from_millis(100)).await;
        assert_eq!(slow.ok, Some(false));
        assert!(slow.error.unwrap().contains("was killed"));
    }
}
