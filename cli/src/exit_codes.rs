//! The exit codes every canton-dr tool uses (DESIGN.md, "Conventions").

use serde::Serialize;

/// Process exit codes, identical across tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ExitCode {
    /// 0: success.
    Ok = 0,
    /// 1: a checked condition is false (diff non-empty under `--check`, a verification failed).
    ConditionFalse = 1,
    /// 2: usage or configuration error, bad input.
    Usage = 2,
    /// 3: transient failure still failing after retries.
    Transient = 3,
    /// 4: a wait timed out.
    Timeout = 4,
    /// 5: refused for safety (precondition not met).
    Refused = 5,
}

impl ExitCode {
    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The JSON `status` word that goes with this exit code.
    pub fn status(self) -> &'static str {
        match self {
            ExitCode::Ok => "ok",
            ExitCode::ConditionFalse => "failed",
            ExitCode::Usage => "usage-error",
            ExitCode::Transient => "unavailable",
            ExitCode::Timeout => "timeout",
            ExitCode::Refused => "refused",
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_design() {
        let all = [
            (ExitCode::Ok, 0, "ok"),
            (ExitCode::ConditionFalse, 1, "failed"),
            (ExitCode::Usage, 2, "usage-error"),
            (ExitCode::Transient, 3, "unavailable"),
            (ExitCode::Timeout, 4, "timeout"),
            (ExitCode::Refused, 5, "refused"),
        ];
        for (code, n, status) in all {
            assert_eq!(code.code(), n);
            assert_eq!(code.status(), status);
        }
    }
}
