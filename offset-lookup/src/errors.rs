//! What a failed `GetHighestOffsetByTimestamp` call means for the runbook, and
//! the exit code and words that go with it.
//!
//! Canton 3.3/3.4 report both "not caught up yet" (retry later) and "no offset
//! at or before this time" (will never succeed) as
//! INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR with a 1 s RetryInfo, so the cause
//! text decides which it is; retrying the second would only delay the answer.
//! Canton 3.5 ids (UNPROCESSED_REQUESTED_TIMESTAMP,
//! EXACT_RECORD_TIME_MATCH_NOT_FOUND) are understood as well.

use crate::validate::SynchronizerId;
use canton_client::{CantonError, Retryable};
use canton_dr_cli::Error;
use canton_dr_cli::time::format_record_time;
use chrono::{DateTime, Utc};
use std::time::Duration;
use tonic::Code;

/// Canton 3.3/3.4 error id for bad or unknown arguments.
pub const INVALID_ARGUMENT_ID: &str = "INVALID_ARGUMENT_PARTY_MANAGEMENT_ERROR";
/// Canton 3.3/3.4 error id for "no offset (yet)" answers.
pub const INVALID_TIMESTAMP_ID: &str = "INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR";
/// Canton 3.4.9+ error id for the exact-match rule and a missing synchronizer offset.
pub const INVALID_STATE_ID: &str = "INVALID_STATE_PARTY_MANAGEMENT_ERROR";
/// Canton 3.5 error id for a timestamp beyond the clean head.
pub const UNPROCESSED_ID: &str = "UNPROCESSED_REQUESTED_TIMESTAMP";
/// Canton 3.5 error id for the exact-match rule.
pub const EXACT_MATCH_ID: &str = "EXACT_RECORD_TIME_MATCH_NOT_FOUND";

/// The runbook meaning of a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The node has not processed everything up to the timestamp yet (retry later).
    NotCaughtUp,
    /// No event at or before the timestamp: it precedes the first event, or was pruned.
    NoOffsetAtOrBefore,
    /// 3.4.9+: without `force`, the timestamp must equal an event's record time.
    ExactMismatch,
    /// The node does not know the synchronizer.
    UnknownSynchronizer,
    /// Anything else (connection, auth, …): canton-client's mapping applies.
    Other,
}

/// One failed call, classified.
#[derive(Debug, Clone)]
pub struct Failure {
    /// What it means.
    pub kind: FailureKind,
    /// The decoded error.
    pub error: CantonError,
}

impl Failure {
    /// Classifies a decoded error.
    pub fn classify(error: CantonError) -> Failure {
        let kind = classify_kind(&error);
        Failure { kind, error }
    }

    /// The error for the user, given what was asked.
    pub fn to_cli_error(&self, call: &CallContext<'_>) -> Error {
        let target = self
            .error
            .target
            .as_ref()
            .map(|t| t.to_string())
            .unwrap_or_else(|| "the node".into());
        let ts = format_record_time(call.timestamp);
        let sync = call.synchronizer_id;
        let id = self.error.id().to_string();
        let attempts = attempts_suffix(self.error.attempts);
        match self.kind {
            FailureKind::NotCaughtUp => Error::transient(format!(
                "{target} has not yet processed everything up to {ts} on {sync}{attempts}: {}",
                self.error
            ))
            .with_hint("the node is still catching up (e.g. after a restore): rerun with --wait (and --timeout) to wait for it")
            .with_code(id),
            FailureKind::NoOffsetAtOrBefore => Error::condition(format!(
                "{target} has no ledger offset at or before {ts} on {sync}: the time is before the node's first event on that synchronizer, or the events up to it were pruned ({})",
                self.error
            ))
            .with_hint("check the timestamp (ingest-ctl last prints the last ingested record time); a node pruned past it cannot answer")
            .with_code(id),
            FailureKind::ExactMismatch => Error::condition(format!(
                "{target} has no event with record time exactly {ts} on {sync}; Canton 3.4.9+ answers a lookup without force only for an event's exact record time ({})",
                self.error
            ))
            .with_hint("the timestamp must be the record time of an ingested transaction (ingest-ctl last prints it); if record times are not unique (ACS import, party migration, repair) use --non-unique-record-times")
            .with_code(id),
            FailureKind::UnknownSynchronizer => Error::usage(format!(
                "{target} does not know synchronizer {sync} ({})",
                self.error
            ))
            .with_hint("use the synchronizerId of the last ingested transaction (ingest-ctl last prints it) and check that --admin-api points at the restored participant")
            .with_code(id),
            FailureKind::Other => self.error.to_cli_error(),
        }
    }

    /// True when waiting may make the call succeed: not caught up, or a
    /// transient failure (node unreachable, restarting, slow).
    pub fn is_worth_waiting_for(&self) -> bool {
        self.retry_after().is_some()
    }
}

/// The request a failure belongs to, for messages.
#[derive(Debug, Clone, Copy)]
pub struct CallContext<'a> {
    /// The synchronizer asked about.
    pub synchronizer_id: &'a SynchronizerId,
    /// The timestamp asked about.
    pub timestamp: DateTime<Utc>,
}

impl Retryable for Failure {
    fn retry_after(&self) -> Option<Duration> {
        match self.kind {
            FailureKind::NotCaughtUp => Some(self.error.retry_delay.unwrap_or_default()),
            FailureKind::Other if self.error.is_retryable() => {
                Some(self.error.retry_delay.unwrap_or_default())
            }
            _ => None,
        }
    }
    fn set_attempts(&mut self, attempts: u32) {
        self.error.attempts = attempts;
    }
    fn summary(&self) -> String {
        self.error.summary()
    }
}

fn attempts_suffix(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

fn classify_kind(error: &CantonError) -> FailureKind {
    let text = describe(error);
    match error.error_id.as_deref() {
        Some(INVALID_TIMESTAMP_ID) => {
            if says_no_offset_before(&text) {
                FailureKind::NoOffsetAtOrBefore
            } else {
                // Not all events processed, clean index empty, no ledger end,
                // offset beyond ledger end: all go away once the node catches up.
                FailureKind::NotCaughtUp
            }
        }
        Some(UNPROCESSED_ID) => FailureKind::NotCaughtUp,
        Some(EXACT_MATCH_ID) => FailureKind::ExactMismatch,
        Some(INVALID_STATE_ID) if text.contains("mismatch") => FailureKind::ExactMismatch,
        Some(INVALID_ARGUMENT_ID) if says_unknown_synchronizer(&text) => {
            FailureKind::UnknownSynchronizer
        }
        None if error.code == Code::InvalidArgument && says_unknown_synchronizer(&text) => {
            FailureKind::UnknownSynchronizer
        }
        _ => FailureKind::Other,
    }
}

/// The cause and the `reason` metadata, lower-cased, for matching.
fn describe(error: &CantonError) -> String {
    let mut text = error.cause.to_lowercase();
    if let Some(reason) = error.metadata.get("reason") {
        text.push(' ');
        text.push_str(&reason.to_lowercase());
    }
    text
}

fn says_no_offset_before(text: &str) -> bool {
    text.contains("does not yet have a ledger offset before or at")
        || text.contains("no ledger offset before or at")
        || text.contains("pruned")
}

fn says_unknown_synchronizer(text: &str) -> bool {
    text.contains("synchronizer") && (text.contains("unknown") || text.contains("not known"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use canton_client::Target;
    use canton_client::status::CantonStatus;
    use canton_dr_cli::time::parse_record_time;

    fn sync() -> SynchronizerId {
        crate::validate::synchronizer_id(&format!("d::1220{}", "ab".repeat(32))).unwrap()
    }

    fn failure(status: tonic::Status) -> Failure {
        Failure::classify(
            CantonError::from_status(&status).with_target(Target::admin("127.0.0.1:5002")),
        )
    }

    fn invalid_timestamp(reason: &str) -> tonic::Status {
        CantonStatus::new(
            Code::OutOfRange,
            INVALID_TIMESTAMP_ID,
            12,
            format!("No ledger offset found for the requested timestamp 2025-01-01T00:00:00Z on synchronizer d::1220ab (using force flag = false): {reason}"),
        )
        .retry_after(Duration::from_secs(1))
        .into_status()
    }

    fn cli(f: &Failure) -> Error {
        let s = sync();
        f.to_cli_error(&CallContext {
            synchronizer_id: &s,
            timestamp: parse_record_time("2025-01-01T00:00:00Z", "t").unwrap(),
        })
    }

    #[test]
    fn not_caught_up_is_retried_and_transient() {
        let f = failure(invalid_timestamp(
            "Not all events have been processed fully and/or published to the Ledger API DB until the requested timestamp",
        ));
        assert_eq!(f.kind, FailureKind::NotCaughtUp);
        assert_eq!(f.retry_after(), Some(Duration::from_secs(1)));
        let e = cli(&f);
        assert_eq!(e.exit_code().code(), 3);
        assert!(
            e.message()
                .contains("has not yet processed everything up to 2025-01-01T00:00:00.000000Z"),
            "{}",
            e.message()
        );
        assert!(e.hint().unwrap().contains("--wait"));
        assert_eq!(e.code(), Some(INVALID_TIMESTAMP_ID));
    }

    #[test]
    fn no_offset_before_is_final_condition_false() {
        let f = failure(invalid_timestamp(
            "The participant does not yet have a ledger offset before or at the requested timestamp: 2025-01-01T00:00:00Z",
        ));
        assert_eq!(f.kind, FailureKind::NoOffsetAtOrBefore);
        // Canton attaches RetryInfo, but retrying cannot help.
        assert_eq!(f.retry_after(), None);
        let e = cli(&f);
        assert_eq!(e.exit_code().code(), 1);
        assert!(
            e.message().contains("before the node's first event"),
            "{}",
            e.message()
        );
        assert!(e.message().contains("pruned"), "{}", e.message());
    }

    #[test]
    fn exact_mismatch_names_the_ingested_record_time() {
        for status in [
            CantonStatus::new(
                Code::FailedPrecondition,
                INVALID_STATE_ID,
                9,
                "Timestamp mismatch: requested=2025-01-01T00:00:00Z != recordTime=2024-12-31T23:59:59Z",
            )
            .into_status(),
            CantonStatus::new(Code::NotFound, EXACT_MATCH_ID, 11, "no exact match").into_status(),
        ] {
            let f = failure(status);
            assert_eq!(f.kind, FailureKind::ExactMismatch);
            let e = cli(&f);
            assert_eq!(e.exit_code().code(), 1);
            assert!(e.hint().unwrap().contains("must be the record time of an ingested transaction"));
            assert!(e.hint().unwrap().contains("--non-unique-record-times"));
        }
        // INVALID_STATE without a mismatch is not the exact-match rule.
        let f = failure(
            CantonStatus::new(
                Code::FailedPrecondition,
                INVALID_STATE_ID,
                9,
                "synchronizer offset missing",
            )
            .into_status(),
        );
        assert_eq!(f.kind, FailureKind::Other);
        assert_eq!(cli(&f).exit_code().code(), 2);
    }

    #[test]
    fn unknown_synchronizer_is_usage() {
        let f = failure(
            CantonStatus::new(
                Code::InvalidArgument,
                INVALID_ARGUMENT_ID,
                8,
                "Synchronizer id d::1220ab is unknown",
            )
            .into_status(),
        );
        assert_eq!(f.kind, FailureKind::UnknownSynchronizer);
        let e = cli(&f);
        assert_eq!(e.exit_code().code(), 2);
        assert!(
            e.message().contains("does not know synchronizer d::1220"),
            "{}",
            e.message()
        );
        // A bare INVALID_ARGUMENT status with the same words counts too.
        let f = failure(tonic::Status::invalid_argument(
            "Synchronizer id x is unknown",
        ));
        assert_eq!(f.kind, FailureKind::UnknownSynchronizer);
        // Other invalid arguments keep canton-client's mapping.
        let f = failure(
            CantonStatus::new(
                Code::InvalidArgument,
                INVALID_ARGUMENT_ID,
                8,
                "timestamp is missing",
            )
            .into_status(),
        );
        assert_eq!(f.kind, FailureKind::Other);
    }

    #[test]
    fn unavailable_is_retried_auth_is_not() {
        let f = failure(tonic::Status::unavailable("shutting down"));
        assert_eq!(f.kind, FailureKind::Other);
        assert!(f.is_worth_waiting_for());
        assert_eq!(cli(&f).exit_code().code(), 3);
        for status in [
            tonic::Status::unauthenticated("An error occurred."),
            tonic::Status::permission_denied("lacking admin claim"),
        ] {
            let f = failure(status);
            assert!(!f.is_worth_waiting_for());
            let e = cli(&f);
            assert_eq!(e.exit_code().code(), 2);
            assert!(
                e.hint().unwrap().contains("--access-token-file"),
                "{:?}",
                e.hint()
            );
        }
    }

    #[test]
    fn canton_3_5_unprocessed_is_not_caught_up() {
        let f = failure(
            CantonStatus::new(
                Code::FailedPrecondition,
                UNPROCESSED_ID,
                9,
                "not yet processed",
            )
            .into_status(),
        );
        assert_eq!(f.kind, FailureKind::NotCaughtUp);
        assert!(f.is_worth_waiting_for());
    }
}
