//! `wait`: block until the ingestion checkpoint's record time is past tSafe
//! (runbook B3), then report what became of the withdrawals in flight.
//!
//! How it watches, cheaply and promptly:
//! - It LISTENs on the progress channel ([`ProgressListener`]). A notification
//!   of its ingester whose record time is past tSafe triggers a read at once;
//!   other notifications trigger at most one read per second (for progress
//!   events). Every read is one prepared statement ([`sql::INGESTION_VIEW_SQL`])
//!   that also returns the heartbeat, so idle costs exactly one query per
//!   `--poll-interval`: the poll timer restarts after every read.
//! - Notifications can be lost (a dropped connection): the poll is the
//!   fallback, and a reconnected listener triggers a read at once.
//! - A failed read drops the connection and reconnects with backoff (a
//!   PostgreSQL restart is survived); a warning says the DB is unavailable.
//! - Warnings (NDJSON `warning` event and a stderr line) once per episode: no
//!   checkpoint, checkpoint on another synchronizer, no control row, stale
//!   heartbeat, ingester stopped.

use crate::context::Ctx;
use crate::passage::{self, Passage};
use crate::reconcile;
use crate::settings::WaitSettings;
use crate::sql::{self, IngestionView};
use crate::tsafe;
use canton_dr_cli::time::format_record_time;
use canton_dr_cli::{Error, ErrorKind, ExitCode, Result};
use chrono::{DateTime, Utc};
use futures::FutureExt as _;
use integration_db::audit::Outcome;
use integration_db::notify::{Event, PROGRESS_CHANNEL, ProgressListener};
use integration_db::withdrawals::Withdrawal;
use integration_db::{ConnectOptions, Db, gate};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;
use tokio::time::{Instant, sleep_until};

/// Reads triggered by notifications that cannot pass are at most this frequent.
const PROGRESS_THROTTLE: Duration = Duration::from_secs(1);
/// First reconnect delay after the DB became unreachable.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(50);
/// Longest reconnect delay.
const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// What caused a read (shown in progress events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Start,
    Notify,
    Poll,
    Reconnect,
    Deadline,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Notify => "notify",
            Trigger::Poll => "poll",
            Trigger::Reconnect => "reconnect",
            Trigger::Deadline => "deadline",
        }
    }
}

/// A connection with the read prepared on it.
struct Conn {
    db: Db,
    statement: tokio_postgres::Statement,
}

impl Conn {
    async fn prepare(db: Db) -> Result<Conn> {
        let statement = db
            .client()
            .prepare(sql::INGESTION_VIEW_SQL)
            .await
            .map_err(|e| integration_db::error::db_error(&e))?;
        Ok(Conn { db, statement })
    }

    async fn open(options: &ConnectOptions) -> Result<Conn> {
        Self::prepare(Db::connect(&options.clone().attempts(1)).await?).await
    }
}

/// Result of one read.
enum Read {
    /// Read; whether tSafe is passed.
    Done(bool),
    /// The DB is unreachable now.
    Down,
}

/// The state of a running wait.
struct Watcher<'a> {
    ctx: &'a Ctx,
    settings: &'a WaitSettings,
    t_safe: DateTime<Utc>,
    started: Instant,
    conn: Option<Conn>,
    /// The synchronizer that counts: given, or the checkpoint's at the first read.
    synchronizer: Option<String>,
    /// Warnings currently in effect (each is printed once per episode).
    active_warnings: HashSet<&'static str>,
    last: Option<Passage>,
}

impl Watcher<'_> {
    fn warn(&mut self, code: &'static str, message: String, mut fields: Value) -> Result<()> {
        if !self.active_warnings.insert(code) {
            return Ok(());
        }
        eprintln!("warning: {message}");
        if let Value::Object(m) = &mut fields {
            m.insert("code".into(), code.into());
            m.insert("message".into(), message.into());
        }
        self.ctx.printer.event("warning", fields)
    }

    fn clear(&mut self, code: &'static str) {
        if self.active_warnings.remove(code) {
            tracing::info!("resolved: {code}");
        }
    }

    /// One read (reconnecting once if the connection broke).
    async fn read(&mut self, trigger: Trigger) -> Result<Read> {
        for attempt in 0..2 {
            if self.conn.is_none() {
                match Conn::open(&self.ctx.options).await {
                    Ok(c) => self.conn = Some(c),
                    Err(e) if e.kind() == ErrorKind::Transient => {
                        self.db_down(&e)?;
                        return Ok(Read::Down);
                    }
                    Err(e) => return Err(e),
                }
            }
            let Some(conn) = &self.conn else { continue };
            match sql::read_ingestion(conn.db.client(), &conn.statement, &self.ctx.names.ingester)
                .await
            {
                Ok(view) => {
                    self.clear("DB_UNAVAILABLE");
                    let passed = self.observe(&view, trigger)?;
                    return Ok(Read::Done(passed));
                }
                Err(e) => {
                    let err = integration_db::error::db_error(&e);
                    if err.kind() != ErrorKind::Transient {
                        return Err(err);
                    }
                    self.conn = None;
                    if attempt == 1 {
                        self.db_down(&err)?;
                    }
                }
            }
        }
        Ok(Read::Down)
    }

    fn db_down(&mut self, e: &Error) -> Result<()> {
        self.warn(
            "DB_UNAVAILABLE",
            format!(
                "the Integration DB is unavailable, reconnecting: {}",
                e.message()
            ),
            json!({}),
        )
    }

    /// Judges a read, prints warnings and a progress event; returns whether tSafe is passed.
    fn observe(&mut self, view: &IngestionView, trigger: Trigger) -> Result<bool> {
        let ingester = self.ctx.names.ingester.clone();
        if self.synchronizer.is_none()
            && let Some(cp) = &view.checkpoint
        {
            self.synchronizer = Some(cp.synchronizer_id.clone());
        }
        let p = passage::assess(view, Some(self.t_safe), self.synchronizer.as_deref());
        let live = passage::liveness(view, self.settings.heartbeat_stale_after);

        if view.checkpoint.is_none() {
            self.warn(
                "NO_CHECKPOINT",
                format!("ingester \"{ingester}\" has no checkpoint yet"),
                json!({"ingester": ingester}),
            )?;
        } else {
            self.clear("NO_CHECKPOINT");
        }
        if view.checkpoint.is_some() && !p.on_synchronizer {
            self.warn(
                "SYNCHRONIZER_MISMATCH",
                format!(
                    "the checkpoint of ingester \"{ingester}\" is on synchronizer {}, not {}: it does not count",
                    p.synchronizer_id.as_deref().unwrap_or("-"),
                    p.expected_synchronizer_id.as_deref().unwrap_or("-")
                ),
                json!({"ingester": ingester, "synchronizerId": p.synchronizer_id,
                       "expectedSynchronizerId": p.expected_synchronizer_id}),
            )?;
        } else {
            self.clear("SYNCHRONIZER_MISMATCH");
        }
        if !view.has_control {
            self.warn(
                "NO_CONTROL_ROW",
                format!(
                    "ingester \"{ingester}\" has no control row: cannot tell whether it is alive"
                ),
                json!({"ingester": ingester}),
            )?;
        } else if live.heartbeat_stale {
            self.warn(
                "HEARTBEAT_STALE",
                format!(
                    "the heartbeat of ingester \"{ingester}\" is stale ({}): is it running?",
                    live.heartbeat_at.map_or_else(
                        || "never".to_string(),
                        |h| format!("last {}", format_record_time(h))
                    )
                ),
                json!({"ingester": ingester,
                       "heartbeatAt": live.heartbeat_at.map(format_record_time),
                       "heartbeatAgeMs": live.heartbeat_age_ms}),
            )?;
        } else {
            self.clear("NO_CONTROL_ROW");
            self.clear("HEARTBEAT_STALE");
        }
        if live.stopped {
            self.warn(
                "INGESTER_STOPPED",
                format!(
                    "ingester \"{ingester}\" is stopped (desired {}, actual {}): the checkpoint will not move until it runs",
                    live.desired_state.as_deref().unwrap_or("-"),
                    live.actual_state.as_deref().unwrap_or("-")
                ),
                json!({"ingester": ingester, "desiredState": live.desired_state,
                       "actualState": live.actual_state}),
            )?;
        } else {
            self.clear("INGESTER_STOPPED");
        }

        self.ctx.printer.event(
            "progress",
            json!({
                "trigger": trigger.as_str(),
                "checkpointRecordTime": p.checkpoint_record_time.map(format_record_time),
                "checkpointOffset": p.checkpoint_offset,
                "checkpointUpdateId": p.checkpoint_update_id,
                "synchronizerId": p.synchronizer_id,
                "tSafe": format_record_time(self.t_safe),
                "remainingMs": p.remaining_ms,
                "passed": p.passed,
                "elapsedMs": millis(self.started.elapsed()),
                "heartbeatAgeMs": live.heartbeat_age_ms,
            }),
        )?;
        let passed = p.passed;
        self.last = Some(p);
        Ok(passed)
    }

    /// The reconciliation report, retrying a broken connection a few times.
    async fn reconciliation(
        &mut self,
        since: DateTime<Utc>,
        at_start: &[Withdrawal],
    ) -> Result<()> {
        let checkpoint = self.last.as_ref().and_then(|p| p.checkpoint_record_time);
        let mut last_error = None;
        for attempt in 0..3u32 {
            if attempt > 0 {
                tokio::time::sleep(RECONNECT_BACKOFF * 4 * attempt).await;
            }
            if self.conn.is_none() {
                match Conn::open(&self.ctx.options).await {
                    Ok(c) => self.conn = Some(c),
                    Err(e) => {
                        last_error = Some(e);
                        continue;
                    }
                }
            }
            let Some(conn) = &self.conn else { continue };
            match reconcile::report(
                conn.db.client(),
                &self.ctx.names.gate,
                since,
                checkpoint,
                at_start,
            )
            .await
            {
                Ok(report) => {
                    return self.ctx.printer.result(&report, reconcile::Report::to_text);
                }
                Err(e) if e.kind() == ErrorKind::Transient => {
                    self.conn = None;
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        let msg = last_error.map_or_else(String::new, |e| e.message().to_string());
        self.warn(
            "RECONCILIATION_UNAVAILABLE",
            format!("the reconciliation report could not be read: {msg}"),
            json!({}),
        )
    }

    fn result(&self, dry_run: bool) -> Value {
        let p = self.last.as_ref();
        json!({
            "type": "result",
            "status": "ok",
            "gate": self.ctx.names.gate,
            "ingester": self.ctx.names.ingester,
            "passed": p.is_some_and(|p| p.passed),
            "dryRun": dry_run,
            "tSafe": format_record_time(self.t_safe),
            "checkpointRecordTime": p.and_then(|p| p.checkpoint_record_time).map(format_record_time),
            "checkpointOffset": p.and_then(|p| p.checkpoint_offset),
            "checkpointUpdateId": p.and_then(|p| p.checkpoint_update_id.clone()),
            "synchronizerId": p.and_then(|p| p.synchronizer_id.clone()),
            "elapsedMs": millis(self.started.elapsed()),
        })
    }

    fn timeout_error(&self) -> Error {
        let p = self.last.as_ref();
        let at = p.and_then(|p| p.checkpoint_record_time).map_or_else(
            || "no checkpoint".to_string(),
            |c| format!("checkpoint {}", format_record_time(c)),
        );
        let to_go = p
            .and_then(|p| p.remaining_ms)
            .map_or_else(String::new, |ms| format!(", {ms} ms of record time to go"));
        Error::timeout(format!(
            "timed out after {} ms waiting for ingester \"{}\" to pass tSafe {} ({at}{to_go})",
            millis(self.settings.timeout),
            self.ctx.names.ingester,
            format_record_time(self.t_safe)
        ))
        .with_hint("check the ingester (`ingest-ctl status`), then rerun `withdrawal-gate wait`: it is safe to repeat")
    }
}

/// The text form of the final `result` object.
fn result_text(v: &Value) -> String {
    let s = |k: &str| v[k].as_str().unwrap_or("-").to_string();
    format!(
        "{}{}: checkpoint {} {} tSafe {} after {} ms",
        if v["dryRun"] == true {
            "[dry run] "
        } else {
            ""
        },
        if v["passed"] == true {
            "passed"
        } else {
            "not passed"
        },
        s("checkpointRecordTime"),
        if v["passed"] == true { ">" } else { "<=" },
        s("tSafe"),
        v["elapsedMs"]
    )
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

async fn next_event(listener: &mut Option<ProgressListener>) -> Option<Event> {
    match listener {
        Some(l) => l.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Runs `wait`.
pub async fn run(ctx: &Ctx, s: &WaitSettings) -> Result<ExitCode> {
    let started = Instant::now();
    let deadline = started + s.timeout;
    let gate_name = &ctx.names.gate;
    let mut db = Db::connect_ready(&ctx.options).await?;
    let inputs = tsafe::gather(db.client(), gate_name).await?;
    let frozen_gate = inputs.gate.clone().filter(|g| g.frozen);

    let (t_safe, computed) = match s.t_safe {
        Some(t) => (t, None),
        None => {
            if frozen_gate.is_none() {
                return Err(Error::refused(format!(
                    "gate \"{gate_name}\" is not frozen: withdrawals can still be created, so no tSafe bounds them"
                ))
                .with_hint("run `withdrawal-gate freeze --reason TEXT` first, or give --tsafe to wait for a known record time"));
            }
            let ts = tsafe::compute(gate_name, &inputs, &s.ttl);
            (ts.require()?, Some(ts))
        }
    };
    let since = frozen_gate
        .as_ref()
        .and_then(|g| g.frozen_at)
        .unwrap_or(inputs.db_now);

    if frozen_gate.is_some() {
        let details = json!({
            "tSafe": format_record_time(t_safe),
            "source": if computed.is_some() { "computed" } else { "argument" },
            "winner": computed.as_ref().and_then(|c| c.winner),
        });
        if s.dry_run {
            ctx.audit(db.client(), "wait", true, Outcome::Ok, details)
                .await?;
        } else {
            let tx = db.transaction().await?;
            gate::set_tsafe(&tx, gate_name, Some(t_safe)).await?;
            ctx.audit(&tx, "wait", false, Outcome::Ok, details).await?;
            tx.commit()
                .await
                .map_err(|e| integration_db::error::db_error(&e))?;
        }
    }

    // LISTEN before the first read, so that no commit falls between them unseen.
    let mut listener = None;
    let mut listen_error = None;
    if s.listen && !s.dry_run {
        match ProgressListener::start_resolved(db.resolved().clone()).await {
            Ok(l) => listener = Some(l),
            Err(e) => listen_error = Some(e),
        }
    }

    ctx.printer.event(
        "waiting",
        json!({
            "gate": gate_name,
            "ingester": ctx.names.ingester,
            "tSafe": format_record_time(t_safe),
            "tSafeSource": if computed.is_some() { "computed" } else { "argument" },
            "winner": computed.as_ref().and_then(|c| c.winner),
            "maxTrecTgt": computed.as_ref().and_then(|c| c.max_trec_tgt).map(format_record_time),
            "ttlBound": computed.as_ref().and_then(|c| c.ttl_bound).map(format_record_time),
            "recordedTSafe": computed.as_ref().and_then(|c| c.recorded_t_safe).map(format_record_time),
            "inFlight": inputs.in_flight.len(),
            "synchronizerId": s.synchronizer_id,
            "timeoutMs": millis(s.timeout),
            "pollIntervalMs": millis(s.poll_interval),
            "mode": if listener.is_some() { "listen" } else { "poll" },
            "dryRun": s.dry_run,
        }),
    )?;

    let mut w = Watcher {
        ctx,
        settings: s,
        t_safe,
        started,
        conn: Some(Conn::prepare(db).await?),
        synchronizer: s.synchronizer_id.clone(),
        active_warnings: HashSet::new(),
        last: None,
    };
    if let Some(ts) = &computed {
        for warning in &ts.warnings {
            w.ctx
                .printer
                .event("warning", json!({"code": "TSAFE", "message": warning}))?;
            eprintln!("warning: {warning}");
        }
    }
    if let Some(e) = listen_error {
        w.warn(
            "LISTEN_FAILED",
            format!(
                "cannot LISTEN for progress notifications, polling only: {}",
                e.message()
            ),
            json!({}),
        )?;
    }

    if s.dry_run {
        w.read(Trigger::Start).await?;
        w.reconciliation(since, &inputs.in_flight).await?;
        ctx.printer.result(&w.result(true), result_text)?;
        return Ok(ExitCode::Ok);
    }

    let throttle = PROGRESS_THROTTLE.min(s.poll_interval);
    let mut backoff = RECONNECT_BACKOFF;
    let mut next_poll = Instant::now() + s.poll_interval;
    let mut due: Option<(Instant, Trigger)> = Some((Instant::now(), Trigger::Start));
    let mut last_read = Instant::now();
    let passed = loop {
        if let Some((at, trigger)) = due
            && at <= Instant::now()
        {
            due = None;
            let read = w.read(trigger).await?;
            last_read = Instant::now();
            match read {
                Read::Done(true) => break true,
                Read::Done(false) => {
                    backoff = RECONNECT_BACKOFF;
                    next_poll = last_read + s.poll_interval;
                }
                Read::Down => {
                    next_poll = last_read + backoff.min(s.poll_interval);
                    backoff = (backoff * 2).min(RECONNECT_BACKOFF_MAX);
                }
            }
            continue;
        }
        let schedule = |due: &mut Option<(Instant, Trigger)>, at: Instant, t: Trigger| {
            if due.is_none_or(|(cur, _)| at < cur) {
                *due = Some((at, t));
            }
        };
        tokio::select! {
            biased;
            () = sleep_until(deadline) => {
                match w.read(Trigger::Deadline).await? {
                    Read::Done(p) => break p,
                    Read::Down => break false,
                }
            }
            event = next_event(&mut listener) => {
                let Some(first) = event else {
                    listener = None;
                    w.warn("LISTEN_FAILED", "the progress listener ended, polling only".to_string(), json!({}))?;
                    continue;
                };
                // Coalesce what is already queued.
                let mut events = vec![first];
                if let Some(l) = listener.as_mut() {
                    while let Some(Some(more)) = l.recv().now_or_never() {
                        events.push(more);
                    }
                }
                let now = Instant::now();
                let soon = now.max(last_read + throttle);
                for event in events {
                    match event {
                        Event::Progress(p) if p.ingester == ctx.names.ingester => {
                            if p.record_time > t_safe {
                                schedule(&mut due, now, Trigger::Notify);
                            } else {
                                schedule(&mut due, soon, Trigger::Notify);
                            }
                        }
                        Event::Control(c) if c.ingester == ctx.names.ingester => {
                            schedule(&mut due, soon, Trigger::Notify);
                        }
                        Event::Reconnected => schedule(&mut due, now, Trigger::Reconnect),
                        Event::Unparsed { channel, .. } if channel == PROGRESS_CHANNEL => {
                            schedule(&mut due, now, Trigger::Notify);
                        }
                        _ => {}
                    }
                }
            }
            () = sleep_until(next_poll) => {
                let t = if w.conn.is_some() { Trigger::Poll } else { Trigger::Reconnect };
                schedule(&mut due, Instant::now(), t);
            }
            () = sleep_until_opt(due.map(|(at, _)| at)) => {}
        }
    };
    drop(listener);

    w.reconciliation(since, &inputs.in_flight).await?;
    if passed {
        ctx.printer.result(&w.result(false), result_text)?;
        Ok(ExitCode::Ok)
    } else {
        Err(w.timeout_error())
    }
}
