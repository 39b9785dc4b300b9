//! `ingest-ctl set-offset OFFSET|-` (runbook A step 6): where ingestion
//! resumes after a node restore.
//!
//! * Input: the offset, or with `-` the JSON `offset-lookup` prints
//!   (`{"type":"offset","offset":N,"synchronizerId","timestamp","mode",…}`).
//!   When that lookup ran with `--non-unique-record-times`, its `timestamp`
//!   (tRecovery) becomes the dedup-from time unless `--dedup-from` is given.
//! * Refused (exit 5) unless ingestion is stopped (desired `stopped`, and
//!   acknowledged or no live ingester), and, with `--ledger-api`, when the
//!   offset is beyond the node's ledger end.
//! * Effect, in one transaction under the control row's lock: `resume_offset`
//!   and `dedup_from` set, `offset_epoch` and `generation` bumped, a control
//!   notification, an audit row.
//! * Idempotent: asking again for the same offset and dedup-from while that
//!   resume is still pending (the ingester has not checkpointed in its epoch)
//!   changes nothing. Once it was consumed, the same request is a new resume
//!   (a new epoch), because the ingester has moved on since.

use crate::Ctx;
use crate::args::SetOffsetArgs;
use crate::audit;
use crate::ledger;
use crate::state::{self, Snapshot};
use canton_dr_cli::input::{field_i64, read_stdin_json};
use canton_dr_cli::time::{format_record_time, parse_record_time};
use canton_dr_cli::{Error, ExitCode, Result};
use chrono::{DateTime, Utc};
use integration_db::Db;
use integration_db::audit::Outcome;
use integration_db::control::IngesterState;
use integration_db::error::db_error;
use integration_db::notify::{self, ControlChange, ControlEvent};
use serde::Serialize;
use serde_json::{Value, json};

/// The offset to resume after, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetInput {
    /// The offset.
    pub offset: i64,
    /// `argument` or `stdin`.
    pub source: &'static str,
    /// The input's synchronizerId (stdin only).
    pub synchronizer_id: Option<String>,
    /// The input's timestamp (tRecovery; stdin only).
    pub timestamp: Option<String>,
    /// The lookup ran with --non-unique-record-times (stdin only).
    pub non_unique_record_times: bool,
}

const OFFSET_HINT: &str = "a ledger offset is 0 (the ledger start) or positive: pass the offset offset-lookup printed, or `-` to read its JSON from stdin";

/// Parses the OFFSET argument (anything but `-`).
pub fn parse_argument(s: &str) -> Result<OffsetInput> {
    let offset: i64 = s.trim().parse().map_err(|_| {
        Error::usage(format!("offset \"{s}\" is not an integer")).with_hint(OFFSET_HINT)
    })?;
    if offset < 0 {
        return Err(Error::usage(format!("offset {offset} is negative")).with_hint(OFFSET_HINT));
    }
    Ok(OffsetInput {
        offset,
        source: "argument",
        synchronizer_id: None,
        timestamp: None,
        non_unique_record_times: false,
    })
}

/// Reads `offset-lookup`'s result object.
pub fn from_json(v: &Value) -> Result<OffsetInput> {
    match v.get("type").and_then(Value::as_str) {
        None | Some("offset") => {}
        Some("last") => {
            return Err(Error::usage(
                "stdin holds `ingest-ctl last` output (the old offset of the last transaction), not an offset to resume from",
            )
            .with_hint("pipe it through offset-lookup: ingest-ctl last | offset-lookup - | ingest-ctl set-offset -"));
        }
        Some(other) => {
            return Err(Error::usage(format!(
                "stdin holds a \"{other}\" object, not offset-lookup's result"
            ))
            .with_hint("pipe the output of `offset-lookup -` into `ingest-ctl set-offset -`"));
        }
    }
    let offset = field_i64(v, "offset")?;
    if offset < 0 {
        return Err(
            Error::usage(format!("stdin offset {offset} is negative")).with_hint(OFFSET_HINT)
        );
    }
    let text = |name: &str| -> Result<Option<String>> {
        match v.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(Error::usage(format!(
                "stdin field \"{name}\" must be a string, got {other}"
            ))),
        }
    };
    Ok(OffsetInput {
        offset,
        source: "stdin",
        synchronizer_id: text("synchronizerId")?,
        timestamp: text("timestamp")?,
        non_unique_record_times: text("mode")?.as_deref() == Some("non-unique-record-times"),
    })
}

/// The dedup-from time: the flag, else the input's timestamp when the lookup
/// was for non-unique record times, else none.
pub fn dedup_from(flag: Option<&str>, input: &OffsetInput) -> Result<Option<DateTime<Utc>>> {
    if let Some(f) = flag {
        return parse_record_time(f, "--dedup-from").map(Some);
    }
    if input.non_unique_record_times {
        let ts = input.timestamp.as_deref().ok_or_else(|| {
            Error::usage("stdin says mode non-unique-record-times but has no timestamp").with_hint(
                "pass --dedup-from with tRecovery, or pipe offset-lookup's output unchanged",
            )
        })?;
        return parse_record_time(ts, "stdin timestamp").map(Some);
    }
    Ok(None)
}

/// What `set-offset` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetOffsetReport {
    /// Always `"set-offset"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The ingester.
    pub ingester: String,
    /// The offset ingestion resumes after.
    pub resume_offset: i64,
    /// Skip already ingested update ids from this record time on.
    #[serde(with = "integration_db::serde_time::option")]
    pub dedup_from: Option<DateTime<Utc>>,
    /// The offset epoch of the resume.
    pub offset_epoch: i32,
    /// The control row's generation after the change.
    pub generation: i64,
    /// False when the same resume was already pending.
    pub changed: bool,
    /// The resume offset before.
    pub previous_resume_offset: Option<i64>,
    /// The offset epoch before.
    pub previous_offset_epoch: i32,
    /// `argument` or `stdin`.
    pub input: &'static str,
    /// The synchronizer the offset was looked up on (stdin only).
    pub synchronizer_id: Option<String>,
    /// The node's ledger end (with --ledger-api).
    pub ledger_end: Option<i64>,
    /// An ingester beat within --dead-after.
    pub live_ingester: bool,
    /// A dry run.
    pub dry_run: bool,
    /// Always `"ok"`.
    pub status: &'static str,
}

impl SetOffsetReport {
    fn to_text(&self) -> String {
        let dry = if self.dry_run { " (dry run)" } else { "" };
        let dedup = self.dedup_from.map_or(String::new(), |t| {
            format!(
                ", skipping ingested update ids from {}",
                format_record_time(t)
            )
        });
        let verb = if self.changed {
            "resumes"
        } else {
            "already resumes"
        };
        format!(
            "ingester {} {verb} after offset {}{dedup} in epoch {}{dry}",
            self.ingester, self.resume_offset, self.offset_epoch
        )
    }
}

/// Runs `set-offset`.
pub async fn run(ctx: &Ctx, args: &SetOffsetArgs) -> Result<ExitCode> {
    let input = if args.offset.trim() == "-" {
        from_json(&read_stdin_json("offset-lookup result")?)?
    } else {
        parse_argument(&args.offset)?
    };
    let dedup = dedup_from(args.dedup_from.as_deref(), &input)?;
    let mut db = Db::connect_ready(&ctx.options).await?;
    let details = json!({
        "ingester": ctx.ingester,
        "offset": input.offset,
        "dedupFrom": dedup.map(format_record_time),
        "input": input.source,
        "synchronizerId": input.synchronizer_id,
        "timestamp": input.timestamp,
    });

    let ledger_end = ledger::ledger_end(&args.ledger).await?;
    if let Some(end) = ledger_end
        && input.offset > end
    {
        if !state::exists(db.client(), &ctx.ingester).await? {
            return Err(state::unknown_ingester(db.client(), &ctx.ingester).await);
        }
        let mut d = details.clone();
        d["ledgerEnd"] = json!(end);
        d["refused"] = json!("beyond the ledger end");
        audit::record_refusal(db.client(), "set-offset", args.dry_run, d).await;
        return Err(Error::refused(format!(
            "offset {} is beyond the node's ledger end {end}",
            input.offset
        ))
        .with_hint("the node has not caught up yet, or the offset belongs to another node: wait, or look it up again with offset-lookup"));
    }

    let tx = db.transaction().await?;
    let before = state::read(&tx, &ctx.ingester, &ctx.queries, true).await?;
    let same_request_pending = before.control.resume_offset == Some(input.offset)
        && before.control.dedup_from == dedup
        && before.resume_pending();
    let desired_stopped = before.control.desired_state == IngesterState::Stopped;
    if !(desired_stopped && (same_request_pending || before.stopped(ctx.dead_after))) {
        tx.rollback().await.map_err(|e| db_error(&e))?;
        let mut d = details.clone();
        d["refused"] = json!("ingestion not stopped");
        d["generation"] = json!(before.control.generation);
        audit::record_refusal(db.client(), "set-offset", args.dry_run, d).await;
        return Err(not_stopped(&ctx.ingester, &before, ctx.dead_after));
    }

    let changed = !same_request_pending;
    let mut after = before.control.clone();
    if changed {
        after.resume_offset = Some(input.offset);
        after.dedup_from = dedup;
        if args.dry_run {
            after.offset_epoch += 1;
            after.generation += 1;
        } else {
            let row = tx
                .query_one(
                    "UPDATE ingestion_control
                        SET resume_offset = $2, dedup_from = $3, offset_epoch = offset_epoch + 1,
                            generation = generation + 1, updated_at = now(), updated_by = $4
                      WHERE ingester = $1
                  RETURNING offset_epoch, generation",
                    &[
                        &ctx.ingester,
                        &input.offset,
                        &dedup,
                        &canton_dr_cli::logging::actor(),
                    ],
                )
                .await
                .map_err(|e| db_error(&e))?;
            after.offset_epoch = row.get(0);
            after.generation = row.get(1);
            notify::notify_control(
                &tx,
                &ControlChange {
                    ingester: ctx.ingester.clone(),
                    generation: after.generation,
                    event: ControlEvent::Changed,
                },
            )
            .await?;
        }
    }
    let mut d = details;
    d["changed"] = json!(changed);
    d["ledgerEnd"] = json!(ledger_end);
    d["previousResumeOffset"] = json!(before.control.resume_offset);
    d["previousOffsetEpoch"] = json!(before.control.offset_epoch);
    d["offsetEpoch"] = json!(after.offset_epoch);
    d["generation"] = json!(after.generation);
    audit::record(&tx, "set-offset", args.dry_run, Outcome::Ok, d).await?;
    tx.commit().await.map_err(|e| db_error(&e))?;

    let report = SetOffsetReport {
        kind: "set-offset",
        ingester: ctx.ingester.clone(),
        resume_offset: input.offset,
        dedup_from: dedup,
        offset_epoch: after.offset_epoch,
        generation: after.generation,
        changed,
        previous_resume_offset: before.control.resume_offset,
        previous_offset_epoch: before.control.offset_epoch,
        input: input.source,
        synchronizer_id: input.synchronizer_id,
        ledger_end,
        live_ingester: before.live(ctx.dead_after),
        dry_run: args.dry_run,
        status: "ok",
    };
    ctx.printer.result(&report, SetOffsetReport::to_text)?;
    Ok(ExitCode::Ok)
}

fn not_stopped(ingester: &str, s: &Snapshot, dead_after: std::time::Duration) -> Error {
    let heartbeat = s
        .heartbeat_age_seconds()
        .map_or("never".to_string(), |a| format!("{a:.1}s ago"));
    let message = if s.control.desired_state == IngesterState::Running {
        format!("ingestion of \"{ingester}\" is not stopped (desired state running)")
    } else {
        format!(
            "ingester \"{ingester}\" has not acknowledged the stop: generation {}, acknowledged {}, actual state {}, last heartbeat {heartbeat} (live within {}s)",
            s.control.generation,
            s.control.acked_generation,
            s.control
                .actual_state
                .map_or("unknown", IngesterState::as_str),
            dead_after.as_secs()
        )
    };
    Error::refused(message).with_hint("run `ingest-ctl stop --wait` first, then set the offset")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        assert_eq!(parse_argument("42").unwrap().offset, 42);
        assert_eq!(parse_argument("0").unwrap().offset, 0);
        let e = parse_argument("-5").unwrap_err();
        assert_eq!(e.message(), "offset -5 is negative");
        assert_eq!(e.exit_code().code(), 2);
        let e = parse_argument("12x").unwrap_err();
        assert_eq!(e.message(), "offset \"12x\" is not an integer");
    }

    #[test]
    fn offset_lookup_output_is_read() {
        let v = json!({"type":"offset","synchronizerId":"s::1220ab","timestamp":"2025-11-27T06:50:00.123456Z",
                       "offset":77,"force":false,"mode":"exact","calls":[],"status":"ok"});
        let input = from_json(&v).unwrap();
        assert_eq!(input.offset, 77);
        assert_eq!(input.synchronizer_id.as_deref(), Some("s::1220ab"));
        assert!(!input.non_unique_record_times);
        assert_eq!(dedup_from(None, &input).unwrap(), None);
    }

    #[test]
    fn non_unique_lookups_set_dedup_from_unless_the_flag_does() {
        let v = json!({"type":"offset","timestamp":"2025-11-27T06:50:00.123456Z","offset":76,
                       "mode":"non-unique-record-times"});
        let input = from_json(&v).unwrap();
        let t = dedup_from(None, &input).unwrap().unwrap();
        assert_eq!(format_record_time(t), "2025-11-27T06:50:00.123456Z");
        let f = dedup_from(Some("2025-11-27T06:00:00Z"), &input)
            .unwrap()
            .unwrap();
        assert_eq!(format_record_time(f), "2025-11-27T06:00:00.000000Z");
        let e = dedup_from(Some("noon"), &input).unwrap_err();
        assert!(
            e.message().starts_with("--dedup-from \"noon\""),
            "{}",
            e.message()
        );
    }

    #[test]
    fn wrong_objects_are_refused_with_the_fix() {
        let e = from_json(&json!({"type":"last","offset":5,"recordTime":"2025-01-01T00:00:00Z"}))
            .unwrap_err();
        assert!(
            e.hint().unwrap().contains("offset-lookup -"),
            "{:?}",
            e.hint()
        );
        let e = from_json(&json!({"offset":-1})).unwrap_err();
        assert_eq!(e.message(), "stdin offset -1 is negative");
        let e = from_json(&json!({"offset":"x"})).unwrap_err();
        assert_eq!(e.message(), "field \"offset\" is not an integer: \"x\"");
        let e = from_json(&json!({"synchronizerId":"s"})).unwrap_err();
        assert_eq!(e.message(), "stdin JSON lacks integer field \"offset\"");
        // a grpcurl-style string offset is fine
        assert_eq!(from_json(&json!({"offset":"12"})).unwrap().offset, 12);
    }
}
