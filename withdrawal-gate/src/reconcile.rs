//! The reconciliation report `wait` prints at its end: what became of every
//! withdrawal that was in flight when the wait started, and which
//! withdrawals ingestion re-created from chain data (`recovered`: their
//! requests were lost in the restore, so the customer debit must be checked).

use crate::sql;
use canton_dr_cli::Result;
use canton_dr_cli::time::format_record_time;
use chrono::{DateTime, Utc};
use integration_db::GenericClient;
use integration_db::withdrawals::{Withdrawal, WithdrawalStatus};
use serde::Serialize;
use std::collections::HashMap;

/// What became of a withdrawal that was in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Completed on chain.
    Completed,
    /// Failed (rejected, expired, no pre-approval).
    Failed,
    /// Re-created from chain data.
    Recovered,
    /// Still requested or submitted.
    Pending,
    /// Its row is gone.
    Missing,
}

/// One withdrawal that was in flight at the start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Id.
    pub withdrawal_id: String,
    /// Status when the wait started.
    pub status_at_start: WithdrawalStatus,
    /// Status now (`None`: row missing).
    pub status: Option<WithdrawalStatus>,
    /// Classification.
    pub outcome: Outcome,
    /// Its target record time.
    #[serde(with = "integration_db::serde_time::option")]
    pub trec_tgt: Option<DateTime<Utc>>,
    /// Still pending although the checkpoint is past its trecTgt: it can no
    /// longer commit, yet ingestion has not marked it failed.
    pub expired: bool,
    /// Update that completed or failed it.
    pub completed_update_id: Option<String>,
    /// Its record time.
    #[serde(with = "integration_db::serde_time::option")]
    pub completed_record_time: Option<DateTime<Utc>>,
    /// Why it failed.
    pub failure_reason: Option<String>,
}

/// A withdrawal ingestion re-created since the freeze.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveredEntry {
    /// Id (from the transfer's reason).
    pub withdrawal_id: String,
    /// Account, when known.
    pub account_id: Option<String>,
    /// Receiver.
    pub receiver: Option<String>,
    /// Instrument id.
    pub instrument_id: Option<String>,
    /// Amount.
    pub amount: Option<String>,
    /// Completing update.
    pub completed_update_id: Option<String>,
    /// Its record time.
    #[serde(with = "integration_db::serde_time::option")]
    pub completed_record_time: Option<DateTime<Utc>>,
    /// Flagged for an operator.
    pub needs_reconciliation: bool,
}

/// Counts per outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Completed.
    pub completed: usize,
    /// Failed.
    pub failed: usize,
    /// Recovered.
    pub recovered: usize,
    /// Still pending.
    pub pending: usize,
    /// Row missing.
    pub missing: usize,
    /// Re-created by ingestion since the freeze (not in flight at the start).
    pub recovered_since_freeze: usize,
}

/// The report (`{"type":"reconciliation",...}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `"reconciliation"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Gate.
    pub gate: String,
    /// Recovered withdrawals are listed from this time on (the freeze).
    #[serde(with = "integration_db::serde_time")]
    pub since: DateTime<Utc>,
    /// The checkpoint's record time at the end.
    #[serde(with = "integration_db::serde_time::option")]
    pub checkpoint_record_time: Option<DateTime<Utc>>,
    /// Counts.
    pub counts: Counts,
    /// Each withdrawal that was in flight at the start, in start order.
    pub withdrawals: Vec<Entry>,
    /// Withdrawals ingestion re-created since `since`.
    pub recovered: Vec<RecoveredEntry>,
}

/// Builds the report from the in-flight list at the start and the rows now.
pub fn build(
    gate: &str,
    since: DateTime<Utc>,
    checkpoint_record_time: Option<DateTime<Utc>>,
    at_start: &[Withdrawal],
    now: &[Withdrawal],
    recovered_now: &[Withdrawal],
) -> Report {
    let by_id: HashMap<&str, &Withdrawal> =
        now.iter().map(|w| (w.withdrawal_id.as_str(), w)).collect();
    let mut counts = Counts::default();
    let withdrawals: Vec<Entry> = at_start
        .iter()
        .map(|start| {
            let cur = by_id.get(start.withdrawal_id.as_str()).copied();
            let outcome = match cur.map(|w| w.status) {
                None => Outcome::Missing,
                Some(WithdrawalStatus::Completed) => Outcome::Completed,
                Some(WithdrawalStatus::Failed) => Outcome::Failed,
                Some(WithdrawalStatus::Recovered) => Outcome::Recovered,
                Some(WithdrawalStatus::Requested | WithdrawalStatus::Submitted) => Outcome::Pending,
            };
            match outcome {
                Outcome::Completed => counts.completed += 1,
                Outcome::Failed => counts.failed += 1,
                Outcome::Recovered => counts.recovered += 1,
                Outcome::Pending => counts.pending += 1,
                Outcome::Missing => counts.missing += 1,
            }
            let trec_tgt = cur.and_then(|w| w.trec_tgt).or(start.trec_tgt);
            Entry {
                withdrawal_id: start.withdrawal_id.clone(),
                status_at_start: start.status,
                status: cur.map(|w| w.status),
                outcome,
                trec_tgt,
                expired: outcome == Outcome::Pending
                    && matches!((trec_tgt, checkpoint_record_time), (Some(t), Some(c)) if c >= t),
                completed_update_id: cur.and_then(|w| w.completed_update_id.clone()),
                completed_record_time: cur.and_then(|w| w.completed_record_time),
                failure_reason: cur.and_then(|w| w.failure_reason.clone()),
            }
        })
        .collect();
    let start_ids: std::collections::HashSet<&str> =
        at_start.iter().map(|w| w.withdrawal_id.as_str()).collect();
    let recovered: Vec<RecoveredEntry> = recovered_now
        .iter()
        .filter(|w| !start_ids.contains(w.withdrawal_id.as_str()))
        .map(|w| RecoveredEntry {
            withdrawal_id: w.withdrawal_id.clone(),
            account_id: w.account_id.clone(),
            receiver: w.receiver.clone(),
            instrument_id: w.instrument_id.clone(),
            amount: w.amount.clone(),
            completed_update_id: w.completed_update_id.clone(),
            completed_record_time: w.completed_record_time,
            needs_reconciliation: w.needs_reconciliation,
        })
        .collect();
    counts.recovered_since_freeze = recovered.len();
    Report {
        kind: "reconciliation",
        gate: gate.to_string(),
        since,
        checkpoint_record_time,
        counts,
        withdrawals,
        recovered,
    }
}

/// Reads the current rows and builds the report (two queries).
pub async fn report(
    c: &impl GenericClient,
    gate: &str,
    since: DateTime<Utc>,
    checkpoint_record_time: Option<DateTime<Utc>>,
    at_start: &[Withdrawal],
) -> Result<Report> {
    let ids: Vec<String> = at_start.iter().map(|w| w.withdrawal_id.clone()).collect();
    let now = if ids.is_empty() {
        Vec::new()
    } else {
        sql::withdrawals_by_ids(c, &ids).await?
    };
    let recovered = sql::recovered_since(c, since).await?;
    Ok(build(
        gate,
        since,
        checkpoint_record_time,
        at_start,
        &now,
        &recovered,
    ))
}

impl Report {
    /// The text form: counts, then one line per withdrawal.
    pub fn to_text(&self) -> String {
        let c = &self.counts;
        let mut s = format!(
            "reconciliation: {} completed, {} failed, {} recovered, {} pending, {} missing; {} recovered since {}\n",
            c.completed,
            c.failed,
            c.recovered,
            c.pending,
            c.missing,
            c.recovered_since_freeze,
            format_record_time(self.since)
        );
        for e in &self.withdrawals {
            s.push_str(&format!(
                "  {:<10} {} (was {}){}{}\n",
                format!("{:?}", e.outcome).to_lowercase(),
                e.withdrawal_id,
                e.status_at_start,
                e.completed_update_id
                    .as_deref()
                    .map_or(String::new(), |u| format!(" by {u}")),
                if e.expired {
                    " EXPIRED: past trecTgt, not marked failed"
                } else {
                    ""
                }
            ));
        }
        for r in &self.recovered {
            s.push_str(&format!(
                "  recovered  {} {} {} to {} by {}{}\n",
                r.withdrawal_id,
                r.amount.as_deref().unwrap_or("?"),
                r.instrument_id.as_deref().unwrap_or("?"),
                r.receiver.as_deref().unwrap_or("?"),
                r.completed_update_id.as_deref().unwrap_or("?"),
                if r.needs_reconciliation {
                    " NEEDS RECONCILIATION"
                } else {
                    ""
                }
            ));
        }
        s
    }
}
