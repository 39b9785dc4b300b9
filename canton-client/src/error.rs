//! [`CantonError`]: a failed gRPC call decoded into Canton's error model
//! (error id, category, ErrorInfo metadata, RetryInfo, RequestInfo) or into a
//! connection failure, and its mapping onto `canton_dr_cli::Error` exit codes.

use crate::config::Target;
use crate::status::{self, code_name};
use canton_dr_cli::{Error, ErrorKind};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;
use tonic::{Code, Status};

/// Where a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The node answered with this status.
    Server,
    /// No connection could be made (refused, DNS, timeout while connecting).
    Connect,
    /// The TLS handshake failed (unknown CA, name mismatch, TLS vs plaintext,
    /// client certificate required).
    Tls,
    /// The connection broke before an answer (e.g. plaintext client, TLS node).
    Closed,
    /// The client gave up waiting (the call's deadline passed).
    Timeout,
}

/// A failed call to a Canton node, decoded.
#[derive(Debug, Clone)]
pub struct CantonError {
    /// gRPC status code (a client-side deadline is reported as DEADLINE_EXCEEDED).
    pub code: Code,
    /// The full status message as received.
    pub message: String,
    /// Canton error id: `ErrorInfo.reason`, else parsed from the message prefix.
    pub error_id: Option<String>,
    /// Canton error category: `category` metadata, else parsed from the message.
    pub category: Option<i32>,
    /// `ErrorInfo.metadata`.
    pub metadata: BTreeMap<String, String>,
    /// `RetryInfo.retry_delay`.
    pub retry_delay: Option<Duration>,
    /// `RequestInfo.request_id` (Canton's correlation id).
    pub request_id: Option<String>,
    /// `ResourceInfo` entries as (type, name).
    pub resources: Vec<(String, String)>,
    /// The message without Canton's `ID(cat,corr): ` prefix.
    pub cause: String,
    /// Server answer or local failure.
    pub origin: Origin,
    /// The node the call went to, when known.
    pub target: Option<Target>,
    /// How many attempts were made (1 without retries).
    pub attempts: u32,
}

impl CantonError {
    /// Decodes a status returned by a call (server answer or transport failure).
    pub fn from_status(status: &Status) -> CantonError {
        let mut err = CantonError {
            code: status.code(),
            message: status.message().to_string(),
            error_id: None,
            category: None,
            metadata: BTreeMap::new(),
            retry_delay: None,
            request_id: None,
            resources: Vec::new(),
            cause: status.message().to_string(),
            origin: Origin::Server,
            target: None,
            attempts: 1,
        };
        if let Ok(Some(details)) = status::decode_details(status.details()) {
            if let Some(info) = details.error_info {
                if !info.reason.is_empty() {
                    err.error_id = Some(info.reason);
                }
                err.metadata = info.metadata.into_iter().collect();
            }
            err.retry_delay = details.retry_delay;
            err.request_id = details
                .request_info
                .map(|r| r.request_id)
                .filter(|r| !r.is_empty());
            err.resources = details
                .resources
                .into_iter()
                .map(|r| (r.resource_type, r.resource_name))
                .collect();
            if err.message.is_empty() {
                err.message = details.message.clone();
                err.cause = details.message;
            }
        }
        if let Some(parsed) = status::parse_message(&err.message) {
            err.error_id.get_or_insert(parsed.error_id);
            err.category = Some(parsed.category);
            err.cause = parsed.cause;
        }
        if let Some(cat) = err.metadata.get("category").and_then(|c| c.parse().ok()) {
            err.category = Some(cat);
        }
        if err.error_id.is_none() && status.details().is_empty() {
            classify_local_failure(status, &mut err);
        }
        err
    }

    /// A connection failure that happened before any call (eager connect).
    pub fn from_transport_error(error: &(dyn std::error::Error + 'static)) -> CantonError {
        let text = error_chain(error);
        let origin = if is_tls_failure(error) {
            Origin::Tls
        } else {
            Origin::Connect
        };
        CantonError {
            code: Code::Unavailable,
            message: text.clone(),
            error_id: None,
            category: None,
            metadata: BTreeMap::new(),
            retry_delay: None,
            request_id: None,
            resources: Vec::new(),
            cause: text,
            origin,
            target: None,
            attempts: 1,
        }
    }

    /// Attaches the node the call went to (used in messages and hints).
    #[must_use]
    pub fn with_target(mut self, target: Target) -> Self {
        self.target = Some(target);
        self
    }

    /// True when the retry policy retries this error: UNAVAILABLE,
    /// DEADLINE_EXCEEDED, or any status carrying RetryInfo. A failed TLS
    /// handshake is not retried: it fails the same way every time.
    pub fn is_retryable(&self) -> bool {
        if self.origin == Origin::Tls {
            return false;
        }
        matches!(self.code, Code::Unavailable | Code::DeadlineExceeded)
            || self.retry_delay.is_some()
    }

    /// True when the node could not be reached at all (no answer).
    pub fn is_connection_failure(&self) -> bool {
        matches!(self.origin, Origin::Connect | Origin::Tls | Origin::Closed)
    }

    /// The error id, else the gRPC code name: what scripts match on.
    pub fn id(&self) -> &str {
        self.error_id.as_deref().unwrap_or(code_name(self.code))
    }

    /// Converts into the CLI error with exit code and hint (see the crate docs).
    pub fn to_cli_error(&self) -> Error {
        let (kind, hint) = self.kind_and_hint();
        let where_ = self
            .target
            .as_ref()
            .map(|t| t.to_string())
            .unwrap_or_else(|| "Canton node".to_string());
        let mut message = match self.origin {
            Origin::Connect => format!("cannot connect to {where_}: {}", self.cause),
            Origin::Tls => format!("TLS handshake with {where_} failed: {}", self.cause),
            Origin::Closed => format!("connection to {where_} failed: {}", self.cause),
            Origin::Timeout => format!("{where_} did not answer in time: {}", self.cause),
            Origin::Server => format!("{where_}: {self}"),
        };
        if self.attempts > 1 {
            message.push_str(&format!(" (after {} attempts)", self.attempts));
        }
        let mut err = Error::new(kind, message).with_code(self.id());
        if let Some(hint) = hint {
            err = err.with_hint(hint);
        }
        err
    }

    fn kind_and_hint(&self) -> (ErrorKind, Option<String>) {
        let flag_hint = |what: &str| match &self.target {
            Some(t) => format!("{what} at {}? (set {} / {})", t.address, t.flag, t.env),
            None => format!("{what}?"),
        };
        match self.origin {
            Origin::Tls => {
                return (
                    ErrorKind::Transient,
                    Some(
                        "pass the node's CA with --ca-cert (and --tls-server-name if its certificate names another host, --client-cert/--client-key if it requires mutual TLS); if the node serves plaintext, drop --tls and https://".into(),
                    ),
                );
            }
            Origin::Connect => {
                return (
                    ErrorKind::Transient,
                    Some(flag_hint("is the node running and reachable")),
                );
            }
            Origin::Closed => {
                let what = match &self.target {
                    Some(t) => format!(
                        "check that {} ({}) is the node's gRPC {} port",
                        t.flag, t.address, t.api
                    ),
                    None => "check the endpoint".to_string(),
                };
                return (
                    ErrorKind::Transient,
                    Some(format!(
                        "{what}; if the node serves TLS, pass --tls and --ca-cert"
                    )),
                );
            }
            Origin::Timeout | Origin::Server => {}
        }
        let message_size = self.message.contains("message length too large")
            || self.message.contains("exceeds maximum");
        match self.code {
            Code::Unauthenticated | Code::PermissionDenied => (
                ErrorKind::Usage,
                Some("pass a valid admin token with --access-token-file or CANTON_ACCESS_TOKEN".into()),
            ),
            _ if message_size => (
                ErrorKind::Usage,
                Some("raise --max-message-bytes (CANTON_MAX_MESSAGE_BYTES) on the client, or the node's max inbound message size".into()),
            ),
            Code::Unavailable => (
                ErrorKind::Transient,
                Some(flag_hint("is the node running")),
            ),
            Code::DeadlineExceeded => (
                ErrorKind::Transient,
                Some("the node did not answer in time: raise --request-timeout (CANTON_REQUEST_TIMEOUT) or check the node's load".into()),
            ),
            _ if self.retry_delay.is_some() => (
                ErrorKind::Transient,
                Some("the node asked to retry later; try again once it has caught up".into()),
            ),
            Code::Unimplemented => (
                ErrorKind::Usage,
                Some(match &self.target {
                    Some(t) => format!(
                        "the node at {} does not serve this call: check that {} points at the {} of a Canton 3.3/3.4 participant",
                        t.address, t.flag, t.api
                    ),
                    None => "the node does not serve this call: check the endpoint and the Canton version".into(),
                }),
            ),
            _ => (ErrorKind::Usage, None),
        }
    }
}

/// One line: `ERROR_ID: cause` for Canton errors, `CODE: message` otherwise.
impl fmt::Display for CantonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match &self.error_id {
            Some(id) => format!("{id}: {}", self.cause),
            None => format!("{}: {}", code_name(self.code), self.cause),
        };
        // Keep it one line whatever the server sent.
        let flat: Vec<&str> = text.split(['\n', '\r']).filter(|p| !p.is_empty()).collect();
        f.write_str(&flat.join(" "))
    }
}

impl std::error::Error for CantonError {}

impl From<CantonError> for Error {
    fn from(e: CantonError) -> Self {
        e.to_cli_error()
    }
}

impl From<&Status> for CantonError {
    fn from(status: &Status) -> Self {
        CantonError::from_status(status)
    }
}

impl From<Status> for CantonError {
    fn from(status: Status) -> Self {
        CantonError::from_status(&status)
    }
}

/// A status without server details: find out whether it is a local failure
/// (connect, TLS, client-side deadline) from its source chain.
fn classify_local_failure(status: &Status, err: &mut CantonError) {
    let Some(source) = std::error::Error::source(status) else {
        return;
    };
    if chain_has::<tonic::TimeoutExpired>(source) {
        err.code = Code::DeadlineExceeded;
        err.origin = Origin::Timeout;
        err.cause = "deadline exceeded".to_string();
        return;
    }
    if chain_has::<tonic::ConnectError>(source) {
        err.origin = if is_tls_failure(source) {
            Origin::Tls
        } else {
            Origin::Connect
        };
        err.code = Code::Unavailable;
        err.cause = error_chain(source);
        return;
    }
    if is_tls_failure(source) {
        err.origin = Origin::Tls;
        err.code = Code::Unavailable;
        err.cause = error_chain(source);
        return;
    }
    if chain_has::<tonic::transport::Error>(source) {
        err.origin = Origin::Closed;
        err.code = Code::Unavailable;
        err.cause = error_chain(source);
    }
}

fn chain_has<T: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(error);
    while let Some(e) = cur {
        if e.is::<T>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// True when a rustls error (or tonic's TLS wrapper) is in the chain. io::Error
/// hides its payload from `source()`, so that is looked into explicitly.
fn is_tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(error);
    while let Some(e) = cur {
        if e.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && (inner.is::<rustls::Error>() || is_tls_failure(inner))
        {
            return true;
        }
        // rustls errors reach us as text when hyper re-wraps them.
        let text = e.to_string();
        if [
            "HTTP/2 was not negotiated",
            "TLS handshake",
            "invalid peer certificate",
            "received fatal alert",
            "received corrupt message",
            "peer is incompatible",
        ]
        .iter()
        .any(|needle| text.contains(needle))
        {
            return true;
        }
        cur = e.source();
    }
    false
}

/// The messages of an error chain joined with `: `, skipping repeats
/// (wrappers often print their source's message again).
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(error);
    while let Some(e) = cur {
        let text = e.to_string();
        let text = text.trim();
        // tonic's wrapper says only "transport error"; the cause follows.
        if !text.is_empty() && text != "transport error" && !parts.iter().any(|p| p.contains(text))
        {
            parts.push(text.to_string());
        }
        cur = e.source();
    }
    let joined = parts.join(": ");
    joined
        .split(['\n', '\r'])
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::CantonStatus;

    fn target() -> Target {
        Target::admin("127.0.0.1:5002")
    }

    #[test]
    fn decodes_canton_status() {
        let status = CantonStatus::new(
            Code::OutOfRange,
            "INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR",
            12,
            "No ledger offset found for the requested timestamp",
        )
        .metadata("synchronizerId", "s::1220ab")
        .correlation_id("0123456789abcdef")
        .retry_after(Duration::from_secs(1))
        .into_status();
        let e = CantonError::from_status(&status);
        assert_eq!(e.code, Code::OutOfRange);
        assert_eq!(
            e.error_id.as_deref(),
            Some("INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR")
        );
        assert_eq!(e.category, Some(12));
        assert_eq!(e.metadata["synchronizerId"], "s::1220ab");
        assert_eq!(e.retry_delay, Some(Duration::from_secs(1)));
        assert_eq!(e.request_id.as_deref(), Some("0123456789abcdef"));
        assert_eq!(
            e.cause,
            "No ledger offset found for the requested timestamp"
        );
        assert_eq!(e.origin, Origin::Server);
        assert!(e.is_retryable());
        assert_eq!(
            e.to_string(),
            "INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR: No ledger offset found for the requested timestamp"
        );
        let cli = e.with_target(target()).to_cli_error();
        assert_eq!(cli.exit_code().code(), 3);
        assert_eq!(cli.code(), Some("INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR"));
        assert!(
            cli.message()
                .starts_with("admin API at 127.0.0.1:5002: INVALID_TIMESTAMP")
        );
    }

    #[test]
    fn error_id_from_message_when_details_are_missing() {
        let status = Status::new(Code::NotFound, "DAR_NOT_FOUND(11,abcd1234): no such DAR");
        let e = CantonError::from_status(&status);
        assert_eq!(e.error_id.as_deref(), Some("DAR_NOT_FOUND"));
        assert_eq!(e.category, Some(11));
        assert_eq!(e.cause, "no such DAR");
        assert!(!e.is_retryable());
        assert_eq!(e.to_cli_error().exit_code().code(), 2);
    }

    #[test]
    fn bare_status_keeps_message() {
        let e = CantonError::from_status(&Status::invalid_argument("Invalid package ID"));
        assert_eq!(e.error_id, None);
        assert_eq!(e.to_string(), "INVALID_ARGUMENT: Invalid package ID");
        assert_eq!(e.id(), "INVALID_ARGUMENT");
    }

    #[test]
    fn kinds_and_hints() {
        let cases = [
            (
                Status::unavailable("shutting down"),
                3,
                Some("is the node running at 127.0.0.1:5002? (set --admin-api / CANTON_ADMIN_API)"),
            ),
            (
                Status::deadline_exceeded("slow"),
                3,
                Some("raise --request-timeout"),
            ),
            (
                Status::unauthenticated("An error occurred."),
                2,
                Some("pass a valid admin token with --access-token-file or CANTON_ACCESS_TOKEN"),
            ),
            (
                Status::permission_denied("no admin claim"),
                2,
                Some("--access-token-file"),
            ),
            (
                Status::unimplemented(""),
                2,
                Some("points at the admin API"),
            ),
            (
                Status::out_of_range(
                    "Error, decoded message length too large: found 9 bytes, the limit is: 4 bytes",
                ),
                2,
                Some("--max-message-bytes"),
            ),
            (Status::failed_precondition("x"), 2, None),
        ];
        for (status, exit, hint) in cases {
            let e = CantonError::from_status(&status)
                .with_target(target())
                .to_cli_error();
            assert_eq!(e.exit_code().code(), exit, "{status:?}");
            match hint {
                Some(h) => assert!(e.hint().unwrap_or_default().contains(h), "{:?}", e.hint()),
                None => assert_eq!(e.hint(), None),
            }
        }
    }

    #[test]
    fn display_is_one_line() {
        let e = CantonError::from_status(&Status::internal("line one\nline two"));
        assert_eq!(e.to_string(), "INTERNAL: line one line two");
    }
}
