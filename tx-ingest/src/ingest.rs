//! The ingestion loop: read the orders (control contract), stream from where
//! they say, commit batches, heartbeat, obey stops and resumes, and reconnect
//! with backoff when the stream or the database drops, always resuming from
//! the last committed checkpoint.
//!
//! Batching is adaptive: the writer takes every update the reader has already
//! decoded, up to `--batch-size`, into one transaction. Catching up, the
//! reader is ahead and batches fill; tailing, updates arrive one by one and
//! each gets its own transaction.

use crate::apply::{Statements, Target, apply_batch};
use crate::control::{self, Orders};
use crate::metrics::{self, Metrics};
use crate::parse::Direction;
use crate::resume_check;
use crate::stream::{self, Message, Reader};
use crate::update::{Item, PositionItem};
use canton_client::CantonChannel;
use canton_dr_cli::{Error, ErrorKind, Result};
use futures::FutureExt as _;
use integration_db::checkpoint::{self, Position};
use integration_db::control::IngesterState;
use integration_db::notify::{ControlEvent, Event, ProgressListener};
use integration_db::{ConnectOptions, Db};
use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// First wait after a failure; doubled up to [`MAX_BACKOFF`], with jitter.
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// How to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Ingester name (control and checkpoint rows).
    pub ingester: String,
    /// The treasury party whose updates are ingested.
    pub treasury: String,
    /// Most updates per PostgreSQL transaction (1 = one per transaction).
    pub batch_size: usize,
    /// Ingest up to the ledger end read at start, then exit.
    pub once: bool,
    /// Stream and parse, write nothing (with `once`).
    pub dry_run: bool,
    /// Heartbeat and control-row read cadence.
    pub heartbeat_interval: Duration,
    /// Metrics line cadence on stderr (zero: none).
    pub progress_interval: Duration,
    /// Give up (exit 3) after failing this long without committing anything.
    pub give_up_after: Duration,
    /// Ask for values without labels and record ids (`verbose = false`).
    pub compact_values: bool,
}

struct Conn {
    db: Db,
    stmts: Statements,
}

enum Flow {
    /// Finished (`--once` reached its end, or shutdown).
    Done,
    /// The orders changed: read them again.
    Again,
}

/// What woke the writer.
enum Wake {
    Message(Message),
    Tick,
    Control,
    Progress,
    /// A notification of no interest (e.g. our own progress).
    Nothing,
    /// The listener's task ended: poll only.
    ListenerGone,
    Shutdown,
}

/// Runs until `shutdown` turns true, `--once` is done, or a non-transient
/// error; returns the counters.
pub async fn run(
    settings: Settings,
    ledger: CantonChannel,
    db_options: ConnectOptions,
    shutdown: watch::Receiver<bool>,
) -> Result<Metrics> {
    let mut ingester = Ingester {
        s: settings,
        ledger,
        db_options,
        conn: None,
        listener: None,
        metrics: Metrics::default(),
        once_end: None,
        last_generation: None,
        shutdown,
    };
    let result = ingester.run_loop().await;
    ingester.farewell().await;
    result.map(|()| ingester.metrics)
}

struct Ingester {
    s: Settings,
    ledger: CantonChannel,
    db_options: ConnectOptions,
    conn: Option<Conn>,
    listener: Option<ProgressListener>,
    metrics: Metrics,
    once_end: Option<i64>,
    last_generation: Option<i64>,
    shutdown: watch::Receiver<bool>,
}

impl Ingester {
    async fn run_loop(&mut self) -> Result<()> {
        let mut backoff = INITIAL_BACKOFF;
        let mut failing_since: Option<Instant> = None;
        loop {
            if *self.shutdown.borrow() {
                return Ok(());
            }
            let batches_before = self.metrics.batches;
            match self.session().await {
                Ok(Flow::Done) => return Ok(()),
                Ok(Flow::Again) => {
                    backoff = INITIAL_BACKOFF;
                    failing_since = None;
                }
                Err(e) if e.kind() == ErrorKind::Transient => {
                    if self.metrics.batches > batches_before {
                        failing_since = None;
                        backoff = INITIAL_BACKOFF;
                    }
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.s.give_up_after {
                        return Err(e.context(format!(
                            "giving up after {}s of failures",
                            since.elapsed().as_secs()
                        )));
                    }
                    if self.conn.as_ref().is_some_and(|c| !c.db.is_connected()) {
                        self.conn = None;
                        self.listener = None;
                    }
                    let wait = jitter(backoff);
                    tracing::warn!(
                        "{}; resuming from the last checkpoint in {wait:?}",
                        e.message()
                    );
                    self.metrics.reconnects += 1;
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = self.shutdown.wait_for(|v| *v) => return Ok(()),
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Connects (and prepares, registers, listens) if not connected.
    async fn connect(&mut self) -> Result<()> {
        if self.conn.is_some() {
            return Ok(());
        }
        let db = Db::connect_ready(&self.db_options).await?;
        let stmts = Statements::prepare(db.client()).await?;
        if !self.s.dry_run {
            control::register(db.client(), &self.s.ingester).await?;
            self.listener = Some(ProgressListener::start_resolved(db.resolved().clone()).await?);
        }
        self.conn = Some(Conn { db, stmts });
        Ok(())
    }

    fn db(&self) -> &Db {
        &self.conn.as_ref().expect("connected").db
    }

    async fn orders(&self) -> Result<Orders> {
        match control::read(self.db().client(), &self.s.ingester).await {
            // A dry run registers nothing: an unknown ingester starts fresh.
            Err(e)
                if self.s.dry_run
                    && e.kind() == ErrorKind::Usage
                    && e.message().contains("no control row") =>
            {
                Ok(Orders {
                    generation: 0,
                    desired_state: IngesterState::Running,
                    offset_epoch: 0,
                    dedup_from: None,
                    begin_exclusive: None,
                })
            }
            other => other,
        }
    }

    /// One session: read the orders and act on them until they change.
    async fn session(&mut self) -> Result<Flow> {
        self.connect().await?;
        let orders = self.orders().await?;
        self.last_generation = Some(orders.generation);
        if orders.desired_state == IngesterState::Stopped {
            if !self.s.dry_run {
                control::ack(
                    self.db().client(),
                    &self.s.ingester,
                    IngesterState::Stopped,
                    orders.generation,
                )
                .await?;
            }
            if self.s.once {
                return Err(Error::refused(format!(
                    "ingestion \"{}\" is stopped (desired state in ingestion_control)",
                    self.s.ingester
                ))
                .with_hint("start it with `ingest-ctl start`, then run again"));
            }
            tracing::info!(
                generation = orders.generation,
                "stopped by the control row; waiting"
            );
            return self.idle(&orders).await;
        }

        let begin = match orders.begin_exclusive {
            Some(b) => b,
            None => stream::pruned_up_to(&self.ledger).await?,
        };
        let end = if self.s.once {
            match self.once_end {
                Some(e) => Some(e),
                None => {
                    let e = stream::ledger_end(&self.ledger).await?;
                    self.once_end = Some(e);
                    Some(e)
                }
            }
        } else {
            None
        };
        let cp = checkpoint::get(self.db().client(), &self.s.ingester).await?;
        // Resuming from the checkpoint: the node must still number it alike.
        let last_tx_epoch =
            resume_check::last_transaction_epoch(self.db().client(), cp.as_ref()).await?;
        if let Some(last) = resume_check::to_check(cp.as_ref(), orders.offset_epoch, last_tx_epoch)
        {
            let on_node =
                stream::offset_of_update(&self.ledger, &self.s.treasury, &last.update_id).await?;
            let pruned = match on_node {
                Some(_) => 0,
                None => stream::pruned_up_to(&self.ledger).await?,
            };
            if resume_check::check(last, on_node, pruned)? == resume_check::Verdict::Unverifiable {
                tracing::warn!(update_id = %last.update_id, offset = last.offset, pruned_up_to = pruned,
                    "the checkpoint's last transaction is pruned on the node; its offset cannot be checked");
            }
        }
        let mut position = cp.as_ref().map(|c| Position {
            offset: c.offset,
            record_time: c.record_time,
            synchronizer_id: c.synchronizer_id.clone(),
        });
        if self.metrics.position.is_none() {
            self.metrics.position = cp.map(|c| {
                (
                    Position {
                        offset: c.offset,
                        record_time: c.record_time,
                        synchronizer_id: c.synchronizer_id,
                    },
                    c.offset_epoch,
                )
            });
        }
        let target = Target {
            ingester: self.s.ingester.clone(),
            offset_epoch: orders.offset_epoch,
            generation: orders.generation,
            dedup_from: orders.dedup_from,
        };
        tracing::info!(begin_exclusive = begin, end_inclusive = ?end, offset_epoch = orders.offset_epoch,
            generation = orders.generation, "streaming updates");
        if end.is_some_and(|e| begin >= e) {
            if !self.s.dry_run {
                control::ack(
                    self.db().client(),
                    &self.s.ingester,
                    IngesterState::Running,
                    orders.generation,
                )
                .await?;
            }
            return Ok(Flow::Done);
        }

        // Chunks of up to 256 updates: enough read-ahead for two batches.
        let buffer = (self.s.batch_size * 2 / 256).max(8);
        let mut reader = stream::spawn_reader(
            self.ledger.clone(),
            self.s.treasury.clone(),
            begin,
            end,
            !self.s.compact_values,
            buffer,
        );
        if !self.s.dry_run {
            control::ack(
                self.db().client(),
                &self.s.ingester,
                IngesterState::Running,
                orders.generation,
            )
            .await?;
        }
        let mut streamed_to = begin;
        let mut tick = interval(self.s.heartbeat_interval);
        let mut progress = interval(self.s.progress_interval);
        // Updates received, not yet committed; then the end or failure of the stream.
        let mut queue: VecDeque<Item> = VecDeque::new();
        let mut last: Option<Message> = None;
        loop {
            if queue.is_empty() && last.is_none() {
                match self.wait(&mut reader, &mut tick, &mut progress).await {
                    Wake::Message(Message::Items(items)) => queue.extend(items),
                    Wake::Message(m) => last = Some(m),
                    Wake::Tick | Wake::Control => {
                        if self.orders_changed(&orders).await? {
                            return Ok(Flow::Again);
                        }
                    }
                    Wake::Progress => self.print_progress(),
                    Wake::Nothing => {}
                    Wake::ListenerGone => self.listener = None,
                    Wake::Shutdown => return Ok(Flow::Done),
                }
            }
            // Take what else has arrived, up to a batch.
            while queue.len() < self.s.batch_size && last.is_none() {
                match reader.rx.try_recv() {
                    Ok(Message::Items(items)) => queue.extend(items),
                    Ok(m) => last = Some(m),
                    Err(_) => break,
                }
            }
            if !queue.is_empty() {
                let n = queue.len().min(self.s.batch_size);
                let batch: Vec<Item> = queue.drain(..n).collect();
                if let Some(item) = batch.last() {
                    streamed_to = streamed_to.max(item.offset());
                }
                if !self.commit(&target, &mut position, &batch).await? {
                    tracing::info!("the control row changed under a commit (fence); re-reading it");
                    return Ok(Flow::Again);
                }
                // Between batches, notice stops and resumes promptly even
                // while catching up.
                if tick_due(&mut tick) && self.orders_changed(&orders).await? {
                    return Ok(Flow::Again);
                }
                if !self.s.progress_interval.is_zero() && tick_due(&mut progress) {
                    self.print_progress();
                }
                continue;
            }
            match last.take() {
                Some(Message::End) => {
                    // Every update up to `end` was seen: the position may
                    // move to it even when the last ones were not ours.
                    if let Some(e) = end
                        && streamed_to < e
                    {
                        let item = Item::Position(PositionItem {
                            offset: e,
                            synchronizer_times: vec![],
                        });
                        if !self.commit(&target, &mut position, &[item]).await? {
                            return Ok(Flow::Again);
                        }
                    }
                    return Ok(Flow::Done);
                }
                Some(Message::Failed(e)) => return Err(e),
                Some(Message::Items(_)) | None => {}
            }
        }
    }

    async fn wait(
        &mut self,
        reader: &mut Reader,
        tick: &mut tokio::time::Interval,
        progress: &mut tokio::time::Interval,
    ) -> Wake {
        let started = Instant::now();
        let progress_on = !self.s.progress_interval.is_zero();
        let wake = tokio::select! {
            m = reader.rx.recv() => Wake::Message(m.unwrap_or_else(|| {
                Message::Failed(Error::transient("the update stream reader stopped"))
            })),
            _ = tick.tick() => Wake::Tick,
            ev = next_event(self.listener.as_mut()) => control_wake(ev, &self.s.ingester),
            _ = progress.tick(), if progress_on => Wake::Progress,
            _ = self.shutdown.wait_for(|v| *v) => Wake::Shutdown,
        };
        if matches!(wake, Wake::Message(_)) {
            self.metrics.wait_time += started.elapsed();
        }
        wake
    }

    /// While stopped: heartbeat, and wait for the orders to change.
    async fn idle(&mut self, orders: &Orders) -> Result<Flow> {
        let mut tick = interval(self.s.heartbeat_interval);
        loop {
            let wake = tokio::select! {
                _ = tick.tick() => Wake::Tick,
                ev = next_event(self.listener.as_mut()) => control_wake(ev, &self.s.ingester),
                _ = self.shutdown.wait_for(|v| *v) => Wake::Shutdown,
            };
            match wake {
                Wake::Shutdown => return Ok(Flow::Done),
                Wake::Tick | Wake::Control if self.orders_changed(orders).await? => {
                    return Ok(Flow::Again);
                }
                Wake::ListenerGone => self.listener = None,
                _ => {}
            }
        }
    }

    /// Heartbeats and re-reads the orders: true when they changed.
    async fn orders_changed(&mut self, orders: &Orders) -> Result<bool> {
        if self.s.dry_run {
            return Ok(false);
        }
        control::heartbeat(self.db().client(), &self.s.ingester).await?;
        let now = control::read(self.db().client(), &self.s.ingester).await?;
        Ok(now.generation != orders.generation)
    }

    /// Commits one batch; false when the fence refused it.
    async fn commit(
        &mut self,
        target: &Target,
        position: &mut Option<Position>,
        batch: &[Item],
    ) -> Result<bool> {
        let started = Instant::now();
        let transactions = batch
            .iter()
            .filter(|i| matches!(i, Item::Transaction(_)))
            .count();
        if self.s.dry_run {
            self.count_dry(position, batch, transactions, target.offset_epoch)
                .await?;
            self.metrics.db_time += started.elapsed();
            return Ok(true);
        }
        let conn = self.conn.as_mut().expect("connected");
        let Some(outcome) = apply_batch(
            conn.db.client_mut(),
            &conn.stmts,
            target,
            position.as_ref(),
            batch,
        )
        .await?
        else {
            return Ok(false);
        };
        *position = outcome.position.clone();
        if let Some(t) = outcome.earliest_duplicate
            && target.dedup_from.is_none_or(|from| t < from)
        {
            // Skipped all the same; but the resume was earlier than needed
            // (or duplicates came without a dedup-from): worth a look.
            tracing::info!(
                duplicates = outcome.duplicates,
                earliest = %canton_dr_cli::time::format_record_time(t),
                dedup_from = ?target.dedup_from.map(canton_dr_cli::time::format_record_time),
                "already-ingested updates re-delivered before the dedup-from record time; skipped"
            );
        }
        self.metrics
            .record(batch.len(), transactions, &outcome, started.elapsed());
        if let Some(p) = position {
            self.metrics.position = Some((p.clone(), target.offset_epoch));
        }
        Ok(true)
    }

    /// What a batch would book, without writing (duplicates by a read).
    async fn count_dry(
        &mut self,
        position: &mut Option<Position>,
        batch: &[Item],
        transactions: usize,
        epoch: i32,
    ) -> Result<()> {
        let ids: Vec<&str> = batch
            .iter()
            .filter_map(|i| match i {
                Item::Transaction(t) => Some(t.update.update_id.as_str()),
                Item::Position(_) => None,
            })
            .collect();
        let rows = self
            .db()
            .client()
            .query(
                "SELECT update_id FROM ingested_updates WHERE update_id = ANY($1::text[])",
                &[&ids],
            )
            .await
            .map_err(|e| integration_db::error::db_error(&e))?;
        let known: HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
        let m = &mut self.metrics;
        m.updates += batch.len() as u64;
        m.transactions += transactions as u64;
        m.batches += 1;
        for item in batch {
            match item {
                Item::Transaction(t) => {
                    *position = Some(Position {
                        offset: t.update.offset,
                        record_time: t.update.record_time,
                        synchronizer_id: t.update.synchronizer_id.clone(),
                    });
                    if known.contains(&t.update.update_id) {
                        m.duplicates += 1;
                        continue;
                    }
                    m.new_transactions += 1;
                    for x in &t.parsed.transfers {
                        match x.direction {
                            Direction::Deposit => m.deposits += 1,
                            Direction::Withdrawal => m.completed += 1,
                        }
                    }
                }
                Item::Position(p) => {
                    if let Some(next) = p.resolve(position.as_ref()) {
                        *position = Some(next);
                    }
                }
            }
        }
        if let Some(p) = position {
            m.position = Some((p.clone(), epoch));
        }
        Ok(())
    }

    fn print_progress(&self) {
        metrics::print_stderr(
            &self
                .metrics
                .report("metrics", &self.s.ingester, self.s.dry_run),
        );
    }

    /// On the way out: acknowledge `stopped` for the generation last read
    /// (contract: graceful shutdown), best effort.
    async fn farewell(&mut self) {
        if self.s.dry_run {
            return;
        }
        if let (Some(conn), Some(generation)) = (&self.conn, self.last_generation)
            && conn.db.is_connected()
            && let Err(e) = control::ack(
                conn.db.client(),
                &self.s.ingester,
                IngesterState::Stopped,
                generation,
            )
            .await
        {
            tracing::warn!("could not acknowledge the stop: {}", e.message());
        }
    }
}

/// True (and consumes the tick) when `tick` is due now.
fn tick_due(tick: &mut tokio::time::Interval) -> bool {
    tick.tick().now_or_never().is_some()
}

fn interval(period: Duration) -> tokio::time::Interval {
    let period = if period.is_zero() {
        Duration::from_secs(3600)
    } else {
        period
    };
    let mut i = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    i
}

async fn next_event(listener: Option<&mut ProgressListener>) -> Option<Event> {
    match listener {
        Some(l) => l.recv().await,
        None => std::future::pending().await,
    }
}

fn control_wake(ev: Option<Event>, ingester: &str) -> Wake {
    match ev {
        Some(Event::Control(c)) if c.ingester == ingester && c.event == ControlEvent::Changed => {
            Wake::Control
        }
        Some(Event::Reconnected) => Wake::Control,
        None => Wake::ListenerGone,
        Some(_) => Wake::Nothing,
    }
}

/// `d` ± 25 %.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(rand::random_range(0.75..1.25))
}
