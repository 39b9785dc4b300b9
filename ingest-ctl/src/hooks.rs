//! `--stop-cmd` / `--start-cmd`: shell commands for deployments where stopping
//! the ingester means scaling a service down (and starting, up). They run after
//! the desired state is recorded, so a contract-honouring ingester stops even
//! if the hook does not; their output goes to stderr (stdout carries data only).

use canton_dr_cli::{Error, Result};
use serde::Serialize;
use std::os::fd::AsFd as _;
use std::process::Stdio;

/// What a hook did, for the output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookReport {
    /// The command.
    pub command: String,
    /// False in a dry run.
    pub ran: bool,
    /// Its exit code, when it ran.
    pub exit_code: Option<i32>,
}

/// The report of a hook that a dry run does not run.
pub fn skipped(command: &str) -> HookReport {
    HookReport {
        command: command.to_string(),
        ran: false,
        exit_code: None,
    }
}

/// Runs `command` with `sh -c`, `INGESTER_NAME` set, stdout and stderr to our
/// stderr. A non-zero exit is a transient error (exit 3) whose hint says the
/// command is safe to rerun. `flag` names the option in messages.
pub async fn run(flag: &str, command: &str, ingester: &str) -> Result<HookReport> {
    let stderr_for_stdout = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| Error::usage(format!("cannot pass stderr to {flag}: {e}")))?;
    tracing::info!(flag, command, "running hook");
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("INGESTER_NAME", ingester)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stderr_for_stdout))
        .stderr(Stdio::inherit())
        .status()
        .await
        .map_err(|e| Error::usage(format!("cannot run {flag} `{command}`: {e}")))?;
    let report = HookReport {
        command: command.to_string(),
        ran: true,
        exit_code: status.code(),
    };
    if !status.success() {
        let how = match status.code() {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".to_string(),
        };
        return Err(Error::transient(format!("{flag} `{command}` {how}")).with_hint(
            "the desired state is recorded; fix the command and rerun (the command is idempotent)",
        ));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn success_and_failure() {
        let ok = run("--stop-cmd", "test \"$INGESTER_NAME\" = tx-a", "tx-a")
            .await
            .unwrap();
        assert_eq!(ok.exit_code, Some(0));
        assert!(ok.ran);
        let e = run("--stop-cmd", "exit 7", "tx-a").await.unwrap_err();
        assert_eq!(e.message(), "--stop-cmd `exit 7` exited with status 7");
        assert_eq!(e.exit_code().code(), 3);
    }
}
