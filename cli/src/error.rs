//! The one error type of canton-dr tools: a kind (exit code), a one-line cause,
//! and an optional hint that names the fix.

use crate::exit_codes::ExitCode;
use std::fmt;

/// What went wrong, at the granularity of the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A checked condition is false (exit 1).
    ConditionFalse,
    /// Usage, configuration or bad input (exit 2).
    Usage,
    /// Transient failure still failing after retries (exit 3).
    Transient,
    /// A wait timed out (exit 4).
    Timeout,
    /// Refused for safety (exit 5).
    Refused,
    /// Writing to stdout failed because the reader went away: not an error.
    BrokenPipe,
}

impl ErrorKind {
    /// The exit code for this kind.
    pub fn exit_code(self) -> ExitCode {
        match self {
            ErrorKind::ConditionFalse => ExitCode::ConditionFalse,
            ErrorKind::Usage => ExitCode::Usage,
            ErrorKind::Transient => ExitCode::Transient,
            ErrorKind::Timeout => ExitCode::Timeout,
            ErrorKind::Refused => ExitCode::Refused,
            ErrorKind::BrokenPipe => ExitCode::Ok,
        }
    }
}

/// An error with a kind, a one-line message and an optional hint.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    hint: Option<String>,
    /// Machine-readable error id (e.g. Canton's `INVALID_DAR`), when known.
    code: Option<String>,
}

/// Result alias used across canton-dr.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind`. Newlines in the message are flattened so that the
    /// error stays one line.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: one_line(message.into()),
            hint: None,
            code: None,
        }
    }

    /// Exit 1: a checked condition is false.
    pub fn condition(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ConditionFalse, message)
    }
    /// Exit 2: usage, configuration, bad input.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }
    /// Exit 3: transient failure still failing after retries.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Transient, message)
    }
    /// Exit 4: a wait timed out.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }
    /// Exit 5: refused for safety.
    pub fn refused(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Refused, message)
    }

    /// Adds (or replaces) the hint telling the user what to do.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(one_line(hint.into()));
        self
    }

    /// Adds a machine-readable error id.
    #[must_use]
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Prefixes the message with context (`context: message`).
    #[must_use]
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// The one-line cause.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The hint, if any.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
    /// The machine-readable error id, if any.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }
    /// The process exit code.
    pub fn exit_code(&self) -> ExitCode {
        self.kind.exit_code()
    }
    /// True when this is a broken pipe on stdout.
    pub fn is_broken_pipe(&self) -> bool {
        self.kind == ErrorKind::BrokenPipe
    }

    /// The `{"type":"error",...}` object printed on stdout in JSON mode.
    pub fn to_json(&self) -> serde_json::Value {
        let exit = self.exit_code();
        let mut v = serde_json::json!({
            "type": "error",
            "status": exit.status(),
            "exitCode": exit.code(),
            "error": self.message,
        });
        if let Some(h) = &self.hint {
            v["hint"] = h.clone().into();
        }
        if let Some(c) = &self.code {
            v["code"] = c.clone().into();
        }
        v
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Error::new(ErrorKind::BrokenPipe, "broken pipe")
        } else {
            Error::usage(format!("I/O error: {e}"))
        }
    }
}

fn one_line(s: String) -> String {
    if s.contains('\n') || s.contains('\r') {
        s.split(['\n', '\r'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_exit_codes() {
        assert_eq!(Error::condition("x").exit_code().code(), 1);
        assert_eq!(Error::usage("x").exit_code().code(), 2);
        assert_eq!(Error::transient("x").exit_code().code(), 3);
        assert_eq!(Error::timeout("x").exit_code().code(), 4);
        assert_eq!(Error::refused("x").exit_code().code(), 5);
    }

    #[test]
    fn message_is_one_line() {
        let e = Error::usage("first\nsecond\r\n third").with_hint("do\nthis");
        assert_eq!(e.message(), "first second third");
        assert_eq!(e.hint(), Some("do this"));
    }

    #[test]
    fn broken_pipe_is_success() {
        let e: Error = std::io::Error::from(std::io::ErrorKind::BrokenPipe).into();
        assert!(e.is_broken_pipe());
        assert_eq!(e.exit_code().code(), 0);
    }

    #[test]
    fn json_carries_status_matching_exit_code() {
        let e = Error::refused("ingestion still running")
            .with_hint("run ingest-ctl stop --wait")
            .with_code("INGESTION_RUNNING");
        let j = e.to_json();
        assert_eq!(j["type"], "error");
        assert_eq!(j["status"], "refused");
        assert_eq!(j["exitCode"], 5);
        assert_eq!(j["hint"], "run ingest-ctl stop --wait");
        assert_eq!(j["code"], "INGESTION_RUNNING");
    }

    #[test]
    fn context_prefixes() {
        let e = Error::transient("connection refused").context("admin API 127.0.0.1:5002");
        assert_eq!(e.message(), "admin API 127.0.0.1:5002: connection refused");
    }
}
