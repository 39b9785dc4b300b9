//! Progress counters: what was ingested, how fast, and where the time went
//! (waiting for the stream vs. writing to PostgreSQL). Printed as one JSON
//! line on stderr every `--progress-interval`, and as the run's summary on
//! stdout.

use canton_dr_cli::time::format_record_time;
use integration_db::checkpoint::Position;
use serde::Serialize;
use std::time::{Duration, Instant};

use crate::apply::BatchOutcome;

/// Counters of one run.
#[derive(Debug, Clone)]
pub struct Metrics {
    started: Instant,
    /// Updates received (transactions and position-only updates).
    pub updates: u64,
    /// Transactions received.
    pub transactions: u64,
    /// Transactions booked for the first time.
    pub new_transactions: u64,
    /// Transactions skipped as already ingested.
    pub duplicates: u64,
    /// Deposits recorded.
    pub deposits: u64,
    /// Of which credited.
    pub credited: u64,
    /// Withdrawals completed.
    pub completed: u64,
    /// Withdrawals re-created as recovered.
    pub recovered: u64,
    /// Withdrawals failed.
    pub failed: u64,
    /// Withdrawals flagged for reconciliation.
    pub flagged: u64,
    /// Committed transactions (batches).
    pub batches: u64,
    /// Reconnections after a failure.
    pub reconnects: u64,
    /// Time spent in PostgreSQL transactions.
    pub db_time: Duration,
    /// Time the writer waited for the stream.
    pub wait_time: Duration,
    /// Last committed position and epoch.
    pub position: Option<(Position, i32)>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            updates: 0,
            transactions: 0,
            new_transactions: 0,
            duplicates: 0,
            deposits: 0,
            credited: 0,
            completed: 0,
            recovered: 0,
            failed: 0,
            flagged: 0,
            batches: 0,
            reconnects: 0,
            db_time: Duration::ZERO,
            wait_time: Duration::ZERO,
            position: None,
        }
    }
}

/// The JSON form of [`Metrics`].
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `metrics` on stderr, `result` on stdout.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Ingester name.
    pub ingester: String,
    /// Nothing was written (`--dry-run`).
    pub dry_run: bool,
    /// Offset epoch of the position.
    pub offset_epoch: Option<i32>,
    /// Last committed offset.
    pub offset: Option<i64>,
    /// Its record time.
    pub record_time: Option<String>,
    /// Its synchronizer.
    pub synchronizer_id: Option<String>,
    /// Updates received.
    pub updates: u64,
    /// Transactions received.
    pub transactions: u64,
    /// Booked for the first time.
    pub new_transactions: u64,
    /// Skipped as already ingested.
    pub duplicates: u64,
    /// Deposits recorded.
    pub deposits: u64,
    /// Of which credited to a known account.
    pub credited: u64,
    /// Withdrawals completed.
    pub withdrawals_completed: u64,
    /// Withdrawals re-created as recovered.
    pub withdrawals_recovered: u64,
    /// Withdrawals failed.
    pub withdrawals_failed: u64,
    /// Withdrawals flagged for reconciliation.
    pub withdrawals_flagged: u64,
    /// PostgreSQL transactions committed.
    pub batches: u64,
    /// Reconnections after failures.
    pub reconnects: u64,
    /// Seconds since start.
    pub seconds: f64,
    /// Seconds inside PostgreSQL transactions.
    pub db_seconds: f64,
    /// Seconds waiting for the stream.
    pub stream_wait_seconds: f64,
    /// Updates per second since start.
    pub updates_per_second: f64,
}

impl Metrics {
    /// Adds a committed batch.
    pub fn record(&mut self, items: usize, transactions: usize, b: &BatchOutcome, took: Duration) {
        self.updates += items as u64;
        self.transactions += transactions as u64;
        self.new_transactions += b.new_transactions as u64;
        self.duplicates += b.duplicates as u64;
        self.deposits += b.deposits;
        self.credited += b.credited;
        self.completed += b.completed.len() as u64;
        self.recovered += b.recovered.len() as u64;
        self.failed += b.failed.len() as u64;
        self.flagged += b.flagged.len() as u64;
        self.batches += 1;
        self.db_time += took;
    }

    /// Seconds since start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The report of these counters.
    pub fn report(&self, kind: &'static str, ingester: &str, dry_run: bool) -> Report {
        let secs = self.started.elapsed().as_secs_f64();
        let (pos, epoch) = match &self.position {
            Some((p, e)) => (Some(p), Some(*e)),
            None => (None, None),
        };
        Report {
            kind,
            ingester: ingester.to_string(),
            dry_run,
            offset_epoch: epoch,
            offset: pos.map(|p| p.offset),
            record_time: pos.map(|p| format_record_time(p.record_time)),
            synchronizer_id: pos.map(|p| p.synchronizer_id.clone()),
            updates: self.updates,
            transactions: self.transactions,
            new_transactions: self.new_transactions,
            duplicates: self.duplicates,
            deposits: self.deposits,
            credited: self.credited,
            withdrawals_completed: self.completed,
            withdrawals_recovered: self.recovered,
            withdrawals_failed: self.failed,
            withdrawals_flagged: self.flagged,
            batches: self.batches,
            reconnects: self.reconnects,
            seconds: round3(secs),
            db_seconds: round3(self.db_time.as_secs_f64()),
            stream_wait_seconds: round3(self.wait_time.as_secs_f64()),
            updates_per_second: if secs > 0.0 {
                (self.updates as f64 / secs).round()
            } else {
                0.0
            },
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Writes one metrics line to stderr (progress is not data: stdout stays clean).
pub fn print_stderr(report: &Report) {
    if let Ok(line) = serde_json::to_string(report) {
        eprintln!("{line}");
    }
}
