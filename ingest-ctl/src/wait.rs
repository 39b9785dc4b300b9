//! Waiting for the ingester: re-read the [`Snapshot`] whenever a notification
//! about this ingester arrives (LISTEN on the progress and control channels)
//! and at least every poll interval, until a condition holds or the timeout
//! passes (exit 4).
//!
//! A dropped database connection does not end the wait: the polling
//! connection is re-opened on the next round (with integration-db's connect
//! retries), and the listener reconnects by itself. Progress is printed as
//! `{"type":"progress"}` lines when the state changes.

use crate::Ctx;
use crate::state::{self, Snapshot};
use canton_dr_cli::output::stderr_is_terminal;
use canton_dr_cli::{Error, ErrorKind, OutputFormat, Result};
use integration_db::Db;
use integration_db::notify::{Event, ProgressListener};
use serde_json::json;
use std::time::Duration;
use tokio::time::Instant;

/// Time allowed for the first look at the state, whatever the timeout.
const FIRST_LOOK: Duration = Duration::from_secs(10);

/// What a wait is for, as printed in progress lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// The ingester acknowledges a stop.
    StopAcknowledged,
    /// The ingester acknowledges a start.
    StartAcknowledged,
    /// The checkpoint reaches a ledger end.
    CaughtUp,
}

impl Goal {
    fn as_str(self) -> &'static str {
        match self {
            Goal::StopAcknowledged => "stop-acknowledged",
            Goal::StartAcknowledged => "start-acknowledged",
            Goal::CaughtUp => "caught-up",
        }
    }
}

/// Everything a wait needs.
#[derive(Debug)]
pub struct Waiter<'a> {
    ctx: &'a Ctx,
    poll: Duration,
    started: Instant,
    deadline: Instant,
    db: Option<Db>,
    listener: Option<ProgressListener>,
    reported: Option<serde_json::Value>,
    disconnected: bool,
}

/// The outcome of a successful wait.
#[derive(Debug)]
pub struct Waited<T> {
    /// What the condition returned.
    pub value: T,
    /// The snapshot it held on.
    pub snapshot: Snapshot,
    /// How long it took.
    pub elapsed: Duration,
}

impl<'a> Waiter<'a> {
    /// A waiter on the ingester of `ctx` that starts with `db`, re-reads at
    /// least every `poll`, and gives up after `timeout`.
    pub async fn new(ctx: &'a Ctx, db: Db, timeout: Duration, poll: Duration) -> Waiter<'a> {
        let listener = match ProgressListener::start_resolved(db.resolved().clone()).await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!("cannot LISTEN for notifications, polling only: {e}");
                None
            }
        };
        let started = Instant::now();
        Waiter {
            ctx,
            poll: poll.max(Duration::from_millis(10)),
            started,
            deadline: started + timeout,
            db: Some(db),
            listener,
            reported: None,
            disconnected: false,
        }
    }

    /// Waits until `done` returns `Some`. `describe` turns the last snapshot
    /// seen (if any) into the timeout message; `target` is shown in progress.
    pub async fn until<T>(
        &mut self,
        goal: Goal,
        target: Option<i64>,
        mut done: impl FnMut(&Snapshot) -> Option<T>,
        describe: impl Fn(Option<&Snapshot>) -> Error,
    ) -> Result<Waited<T>> {
        let mut last: Option<Snapshot> = None;
        let mut first = true;
        loop {
            // The first look gets a fair chance even with a tiny --timeout.
            let bound = if first {
                self.deadline.max(Instant::now() + FIRST_LOOK)
            } else {
                self.deadline
            };
            first = false;
            match tokio::time::timeout_at(bound, self.observe()).await {
                Ok(Ok(snapshot)) => {
                    self.report(goal, target, &snapshot)?;
                    if let Some(value) = done(&snapshot) {
                        return Ok(Waited {
                            value,
                            snapshot,
                            elapsed: self.started.elapsed(),
                        });
                    }
                    last = Some(snapshot);
                }
                Ok(Err(e)) if e.kind() == ErrorKind::Transient => self.lost(&e)?,
                Ok(Err(e)) => return Err(e),
                Err(_elapsed) => return Err(describe(last.as_ref())),
            }
            if Instant::now() >= self.deadline {
                return Err(describe(last.as_ref()));
            }
            self.tick().await;
        }
    }

    /// Reads a snapshot, reconnecting first if the connection was lost.
    async fn observe(&mut self) -> Result<Snapshot> {
        if self.db.as_ref().is_none_or(|db| !db.is_connected()) {
            // A connection that was open and is gone counts as lost too.
            let lost = self.db.take().is_some() || self.disconnected;
            self.db = Some(Db::connect(&self.ctx.options).await?);
            if lost {
                self.disconnected = false;
                tracing::info!("reconnected to PostgreSQL");
            }
        }
        let db = self.db.as_ref().expect("connected above");
        let result = state::read(db.client(), &self.ctx.ingester, &self.ctx.queries, false).await;
        if let Err(e) = &result
            && e.kind() == ErrorKind::Transient
        {
            self.db = None;
        }
        result
    }

    /// Notes a lost connection once (a warning line), and carries on.
    fn lost(&mut self, e: &Error) -> Result<()> {
        self.db = None;
        if !self.disconnected {
            self.disconnected = true;
            tracing::warn!("{}; retrying until the timeout", e.message());
            if self.ctx.printer.format() == OutputFormat::Json {
                self.ctx.printer.event(
                    "warning",
                    json!({"ingester": self.ctx.ingester, "message": format!("{}; retrying until the timeout", e.message())}),
                )?;
            }
        }
        Ok(())
    }

    /// Sleeps for the poll interval, or less when a notification about this
    /// ingester (or a listener reconnect) arrives, never past the deadline.
    async fn tick(&mut self) {
        let until = (Instant::now() + self.poll).min(self.deadline);
        let sleep = tokio::time::sleep_until(until);
        tokio::pin!(sleep);
        loop {
            let Some(listener) = self.listener.as_mut() else {
                sleep.as_mut().await;
                return;
            };
            tokio::select! {
                () = sleep.as_mut() => return,
                event = listener.recv() => match event {
                    Some(Event::Progress(p)) if p.ingester != self.ctx.ingester => continue,
                    Some(Event::Control(c)) if c.ingester != self.ctx.ingester => continue,
                    Some(_) => return,
                    None => {
                        tracing::warn!("the notification listener ended; polling only");
                        self.listener = None;
                    }
                },
            }
        }
    }

    /// Prints a progress line when what matters changed.
    fn report(&mut self, goal: Goal, target: Option<i64>, s: &Snapshot) -> Result<()> {
        let fields = json!({
            "ingester": self.ctx.ingester,
            "waitingFor": goal.as_str(),
            "desiredState": s.control.desired_state,
            "actualState": s.control.actual_state,
            "generation": s.control.generation,
            "ackedGeneration": s.control.acked_generation,
            "liveIngester": s.live(self.ctx.dead_after),
            "position": s.position(),
            "target": target,
        });
        if self.reported.as_ref() == Some(&fields) {
            return Ok(());
        }
        self.reported = Some(fields.clone());
        let mut line = fields;
        line["elapsedMs"] = json!(self.started.elapsed().as_millis() as u64);
        match self.ctx.printer.format() {
            OutputFormat::Json => self.ctx.printer.event("progress", line),
            OutputFormat::Text => {
                if stderr_is_terminal() {
                    eprintln!(
                        "{}",
                        canton_dr_cli::output::render_text_line(
                            &canton_dr_cli::output::event_object("progress", line)
                        )
                    );
                }
                Ok(())
            }
        }
    }
}
