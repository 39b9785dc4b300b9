//! The lookup itself: one `GetHighestOffsetByTimestamp` call for an exact
//! record time, or the two-call sequence for non-unique record times.
//!
//! Non-unique record times (ACS import, party migration, repair) need the
//! offset as of `tRecovery − 1µs`. Canton 3.4.9+ answers a call without `force`
//! only for an event's exact record time, so that call needs `force`, and
//! `force` is only safe once the node is known to have processed past
//! `tRecovery`: a call without `force` at `tRecovery` proves it. Under 3.3
//! semantics the same two calls give the same answer.

use crate::errors::{CallContext, Failure};
use crate::validate::SynchronizerId;
use crate::wait::Patience;
use canton_client::{CantonChannel, CantonError};
use canton_dr_cli::time::{daml_min, format_record_time};
use canton_dr_cli::{Error, Result};
use canton_proto::admin::GetHighestOffsetByTimestampRequest;
use canton_proto::admin::party_management_service_client::PartyManagementServiceClient;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use std::future::Future;

/// One `GetHighestOffsetByTimestamp` call, made by something that can reach a node.
pub trait OffsetService {
    /// The highest offset of `synchronizer_id` with record time <= `timestamp`
    /// (one attempt; retries are the caller's business).
    fn highest_offset(
        &self,
        synchronizer_id: &SynchronizerId,
        timestamp: DateTime<Utc>,
        force: bool,
    ) -> impl Future<Output = std::result::Result<i64, CantonError>>;
}

/// The admin API's PartyManagementService over a canton-client channel.
#[derive(Debug, Clone)]
pub struct AdminOffsetService {
    client: PartyManagementServiceClient<canton_client::AuthChannel>,
    channel: CantonChannel,
}

impl AdminOffsetService {
    /// A service on `channel` (connects lazily on the first call).
    pub fn new(channel: CantonChannel) -> Self {
        let client = canton_client::grpc_client!(PartyManagementServiceClient, channel);
        AdminOffsetService { client, channel }
    }
}

impl OffsetService for AdminOffsetService {
    fn highest_offset(
        &self,
        synchronizer_id: &SynchronizerId,
        timestamp: DateTime<Utc>,
        force: bool,
    ) -> impl Future<Output = std::result::Result<i64, CantonError>> {
        let mut client = self.client.clone();
        let channel = &self.channel;
        let request = GetHighestOffsetByTimestampRequest {
            synchronizer_id: synchronizer_id.as_str().to_string(),
            timestamp: Some(prost_types::Timestamp {
                seconds: timestamp.timestamp(),
                nanos: timestamp.timestamp_subsec_nanos() as i32,
            }),
            force,
        };
        async move {
            client
                .get_highest_offset_by_timestamp(request)
                .await
                .map(|r| r.into_inner().ledger_offset)
                .map_err(|s| channel.error(&s))
        }
    }
}

/// How the offset is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One call at the timestamp (an ingested transaction's record time).
    Exact,
    /// A call without force at the timestamp, then a force call 1 µs earlier.
    NonUniqueRecordTimes,
}

impl Mode {
    /// The name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Exact => "exact",
            Mode::NonUniqueRecordTimes => "non-unique-record-times",
        }
    }
}

/// What to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupRequest {
    /// Logical synchronizer id.
    pub synchronizer_id: SynchronizerId,
    /// `tRecovery`: the record time of the last ingested transaction.
    pub timestamp: DateTime<Utc>,
}

/// How to look it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupOptions {
    /// Exact or non-unique record times.
    pub mode: Mode,
    /// The user's `--force` (exact mode only).
    pub force: bool,
}

/// One call that was made, as recorded in the output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    /// The timestamp sent.
    pub timestamp: String,
    /// The force flag sent.
    pub force: bool,
    /// The offset the node answered.
    pub offset: i64,
}

/// The result, shaped for `ingest-ctl set-offset -` (which reads `offset`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OffsetResult {
    /// Always `"offset"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The logical synchronizer id asked about.
    pub synchronizer_id: String,
    /// `tRecovery` as given (6 fractional digits).
    pub timestamp: String,
    /// The ledger offset to resume ingestion from.
    pub offset: i64,
    /// True when `--force` was given.
    pub force: bool,
    /// `exact` or `non-unique-record-times`.
    pub mode: Mode,
    /// Every call made, in order.
    pub calls: Vec<CallRecord>,
    /// Always `"ok"` (failures are error objects).
    pub status: &'static str,
}

impl OffsetResult {
    /// The short text form.
    pub fn to_text(&self) -> String {
        let forced = if self.force { ", forced" } else { "" };
        match self.mode {
            Mode::Exact => format!(
                "offset {} for {} on {} (exact{forced})",
                self.offset, self.timestamp, self.synchronizer_id
            ),
            Mode::NonUniqueRecordTimes => format!(
                "offset {} for {} - 1µs on {} (non-unique record times: processed past {} at offset {})",
                self.offset,
                self.timestamp,
                self.synchronizer_id,
                self.timestamp,
                self.calls.first().map_or(0, |c| c.offset)
            ),
        }
    }
}

/// Checks that the options fit the request before any call is made.
pub fn check_options(request: &LookupRequest, options: &LookupOptions) -> Result<()> {
    if options.mode == Mode::NonUniqueRecordTimes {
        if options.force {
            return Err(Error::usage(
                "--force cannot be combined with --non-unique-record-times, which already forces its second call once the first has proven the node caught up",
            )
            .with_hint("drop --force; for a forced lookup at one time pass --force --timestamp T alone"));
        }
        if request.timestamp <= daml_min() {
            return Err(Error::usage(format!(
                "--non-unique-record-times needs a time 1µs before {}, which is before Daml's earliest time",
                format_record_time(request.timestamp)
            ))
            .with_hint("after a major upgrade look up 0001-01-01T00:00:00Z itself, without --non-unique-record-times"));
        }
    }
    Ok(())
}

/// Runs the lookup against `service`, each call under `patience`.
pub async fn lookup<S: OffsetService>(
    service: &S,
    request: &LookupRequest,
    options: &LookupOptions,
    patience: &Patience,
) -> Result<OffsetResult> {
    check_options(request, options)?;
    let mut calls = Vec::with_capacity(2);
    let offset = match options.mode {
        Mode::Exact => {
            call(
                service,
                request,
                request.timestamp,
                options.force,
                patience,
                &mut calls,
            )
            .await?
        }
        Mode::NonUniqueRecordTimes => {
            let processed_past = call(
                service,
                request,
                request.timestamp,
                false,
                patience,
                &mut calls,
            )
            .await?;
            let before = request.timestamp - TimeDelta::microseconds(1);
            let offset = call(service, request, before, true, patience, &mut calls).await?;
            if offset > processed_past {
                return Err(Error::condition(format!(
                    "the node answered offset {offset} for {} but {processed_past} for the later {}: its answers are inconsistent, refusing to use either",
                    format_record_time(before),
                    format_record_time(request.timestamp)
                ))
                .with_hint("rerun the lookup; if it persists, check the node's health before resuming ingestion"));
            }
            offset
        }
    };
    Ok(OffsetResult {
        kind: "offset",
        synchronizer_id: request.synchronizer_id.to_string(),
        timestamp: format_record_time(request.timestamp),
        offset,
        force: options.force,
        mode: options.mode,
        calls,
        status: "ok",
    })
}

async fn call<S: OffsetService>(
    service: &S,
    request: &LookupRequest,
    timestamp: DateTime<Utc>,
    force: bool,
    patience: &Patience,
    calls: &mut Vec<CallRecord>,
) -> Result<i64> {
    let context = CallContext {
        synchronizer_id: &request.synchronizer_id,
        timestamp,
    };
    let offset = patience
        .run(&context, || async {
            service
                .highest_offset(&request.synchronizer_id, timestamp, force)
                .await
                .map_err(Failure::classify)
        })
        .await?;
    if offset <= 0 {
        return Err(Error::condition(format!(
            "the node answered offset {offset} for {} on {}; a ledger offset is positive",
            format_record_time(timestamp),
            request.synchronizer_id
        )));
    }
    calls.push(CallRecord {
        timestamp: format_record_time(timestamp),
        force,
        offset,
    });
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::{INVALID_STATE_ID, INVALID_TIMESTAMP_ID};
    use canton_client::RetryPolicy;
    use canton_client::status::CantonStatus;
    use canton_dr_cli::time::parse_record_time;
    use std::cell::RefCell;
    use std::time::Duration;
    use tonic::Code;

    /// A scripted node: events (record time, offset), a clean record time, and
    /// the lookup rules of Canton 3.3 or 3.4.9+ as canton-wire.md §1 lists them.
    struct FakeNode {
        events: Vec<(DateTime<Utc>, i64)>,
        clean: DateTime<Utc>,
        exact_match_rule: bool,
        seen: RefCell<Vec<(DateTime<Utc>, bool)>>,
    }

    fn t(s: &str) -> DateTime<Utc> {
        parse_record_time(s, "t").unwrap()
    }

    fn err(status: tonic::Status) -> CantonError {
        CantonError::from_status(&status)
    }

    impl OffsetService for FakeNode {
        async fn highest_offset(
            &self,
            _sync: &SynchronizerId,
            ts: DateTime<Utc>,
            force: bool,
        ) -> std::result::Result<i64, CantonError> {
            self.seen.borrow_mut().push((ts, force));
            let invalid_ts = |reason: &str| {
                err(
                    CantonStatus::new(Code::OutOfRange, INVALID_TIMESTAMP_ID, 12, reason)
                        .retry_after(Duration::from_millis(1))
                        .into_status(),
                )
            };
            let Some(&(rt, offset)) = self.events.iter().rev().find(|(rt, _)| *rt <= ts) else {
                return Err(invalid_ts(
                    "The participant does not yet have a ledger offset before or at the requested timestamp",
                ));
            };
            if !force && ts > self.clean {
                return Err(invalid_ts("Not all events have been processed fully"));
            }
            if force && ts >= self.clean {
                return Ok(self.events.last().unwrap().1);
            }
            if self.exact_match_rule && !force && rt != ts {
                return Err(err(CantonStatus::new(
                    Code::FailedPrecondition,
                    INVALID_STATE_ID,
                    9,
                    "Timestamp mismatch",
                )
                .into_status()));
            }
            Ok(offset)
        }
    }

    fn node(exact_match_rule: bool) -> FakeNode {
        FakeNode {
            // Offsets 1..=4; offsets 2 and 3 share a record time (a tie).
            events: vec![
                (t("2025-01-01T00:00:01Z"), 1),
                (t("2025-01-01T00:00:02Z"), 2),
                (t("2025-01-01T00:00:02Z"), 3),
                (t("2025-01-01T00:00:03Z"), 4),
            ],
            clean: t("2025-01-01T00:00:03Z"),
            exact_match_rule,
            seen: RefCell::new(Vec::new()),
        }
    }

    fn request(ts: &str) -> LookupRequest {
        LookupRequest {
            synchronizer_id: crate::validate::synchronizer_id(&format!(
                "d::1220{}",
                "0f".repeat(32)
            ))
            .unwrap(),
            timestamp: t(ts),
        }
    }

    fn quick() -> Patience {
        Patience::Retry(RetryPolicy::new(
            3,
            Duration::from_millis(1),
            Duration::from_millis(1),
            Duration::from_secs(5),
        ))
    }

    const EXACT: LookupOptions = LookupOptions {
        mode: Mode::Exact,
        force: false,
    };
    const NON_UNIQUE: LookupOptions = LookupOptions {
        mode: Mode::NonUniqueRecordTimes,
        force: false,
    };

    #[tokio::test]
    async fn exact_hit_in_both_semantics_takes_the_highest_tied_offset() {
        for rule in [false, true] {
            let n = node(rule);
            let r = lookup(&n, &request("2025-01-01T00:00:02Z"), &EXACT, &quick())
                .await
                .unwrap();
            assert_eq!(r.offset, 3);
            assert_eq!(r.mode, Mode::Exact);
            assert_eq!(r.calls.len(), 1);
            assert_eq!(*n.seen.borrow(), [(t("2025-01-01T00:00:02Z"), false)]);
        }
    }

    #[tokio::test]
    async fn non_unique_mode_proves_then_forces_one_microsecond_earlier() {
        for rule in [false, true] {
            let n = node(rule);
            let r = lookup(&n, &request("2025-01-01T00:00:02Z"), &NON_UNIQUE, &quick())
                .await
                .unwrap();
            // The offset before the tie: ingestion re-reads both tied updates.
            assert_eq!(r.offset, 1);
            assert_eq!(
                *n.seen.borrow(),
                [
                    (t("2025-01-01T00:00:02Z"), false),
                    (t("2025-01-01T00:00:01.999999Z"), true)
                ]
            );
            assert_eq!(r.calls[0].offset, 3);
            assert_eq!(r.calls[1].timestamp, "2025-01-01T00:00:01.999999Z");
            assert!(r.calls[1].force);
            assert!(!r.force);
        }
    }

    #[tokio::test]
    async fn non_unique_mode_never_forces_before_the_proof_succeeds() {
        let n = node(true);
        let e = lookup(&n, &request("2025-01-01T00:00:04Z"), &NON_UNIQUE, &quick())
            .await
            .unwrap_err();
        assert_eq!(e.exit_code().code(), 3);
        assert!(n.seen.borrow().iter().all(|(_, force)| !force));
        assert_eq!(n.seen.borrow().len(), 3, "the retry policy's 3 attempts");
    }

    #[tokio::test]
    async fn exact_mismatch_only_under_the_exact_match_rule() {
        let ts = "2025-01-01T00:00:02.5Z";
        let r = lookup(&node(false), &request(ts), &EXACT, &quick())
            .await
            .unwrap();
        assert_eq!(r.offset, 3);
        let e = lookup(&node(true), &request(ts), &EXACT, &quick())
            .await
            .unwrap_err();
        assert_eq!(e.exit_code().code(), 1);
        assert!(e.hint().unwrap().contains("ingested transaction"));
    }

    #[tokio::test]
    async fn before_the_first_event_is_not_retried() {
        let n = node(false);
        let e = lookup(&n, &request("2024-12-31T00:00:00Z"), &EXACT, &quick())
            .await
            .unwrap_err();
        assert_eq!(e.exit_code().code(), 1);
        assert_eq!(n.seen.borrow().len(), 1);
    }

    #[tokio::test]
    async fn non_unique_at_the_first_event_has_nothing_before() {
        let e = lookup(
            &node(true),
            &request("2025-01-01T00:00:01Z"),
            &NON_UNIQUE,
            &quick(),
        )
        .await
        .unwrap_err();
        assert_eq!(e.exit_code().code(), 1);
        assert!(
            e.message()
                .contains("no ledger offset at or before 2025-01-01T00:00:00.999999Z"),
            "{}",
            e.message()
        );
    }

    #[tokio::test]
    async fn force_is_sent_and_recorded() {
        let n = node(true);
        let options = LookupOptions {
            mode: Mode::Exact,
            force: true,
        };
        let r = lookup(&n, &request("2025-01-01T00:00:02.5Z"), &options, &quick())
            .await
            .unwrap();
        assert_eq!(r.offset, 3);
        assert!(r.force);
        assert_eq!(*n.seen.borrow(), [(t("2025-01-01T00:00:02.5Z"), true)]);
    }

    #[test]
    fn option_checks() {
        let forced = LookupOptions {
            mode: Mode::NonUniqueRecordTimes,
            force: true,
        };
        let e = check_options(&request("2025-01-01T00:00:02Z"), &forced).unwrap_err();
        assert_eq!(e.exit_code().code(), 2);
        let e = check_options(&request("0001-01-01T00:00:00Z"), &NON_UNIQUE).unwrap_err();
        assert!(
            e.message().contains("before Daml's earliest time"),
            "{}",
            e.message()
        );
        assert!(check_options(&request("0001-01-01T00:00:00Z"), &EXACT).is_ok());
    }

    #[test]
    fn json_shape() {
        let r = OffsetResult {
            kind: "offset",
            synchronizer_id: "d::1220".into(),
            timestamp: "2025-01-01T00:00:02.000000Z".into(),
            offset: 3,
            force: false,
            mode: Mode::NonUniqueRecordTimes,
            calls: vec![CallRecord {
                timestamp: "2025-01-01T00:00:02.000000Z".into(),
                force: false,
                offset: 3,
            }],
            status: "ok",
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"type":"offset","synchronizerId":"d::1220","timestamp":"2025-01-01T00:00:02.000000Z","offset":3,"force":false,"mode":"non-unique-record-times","calls":[{"timestamp":"2025-01-01T00:00:02.000000Z","force":false,"offset":3}],"status":"ok"}"#
        );
    }
}
