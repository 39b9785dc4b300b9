//! `withdrawals`: the exchange's withdrawal requests and what became of them
//! on chain.
//!
//! Life cycle: `requested` → `submitted` → `completed` or `failed`. A
//! withdrawal the ingester sees completed on chain but cannot find (lost in an
//! Integration DB restore) is re-created as `recovered` with
//! `needs_reconciliation` set. `requested` and `submitted` are in flight; the
//! largest `trec_tgt` among them bounds runbook B's `tSafe`.
//! Amounts are decimal strings (numeric(38,10) in the table).

use crate::Result;
use crate::error::PgResultExt as _;
use canton_dr_cli::Error;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;
use tokio_postgres::{GenericClient, Row};

/// Status of a withdrawal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WithdrawalStatus {
    /// Created by the exchange, not yet on the ledger.
    Requested,
    /// Submitted to the ledger.
    Submitted,
    /// Completed on chain.
    Completed,
    /// Failed (rejected or expired).
    Failed,
    /// Re-created from on-chain data after its row was lost.
    Recovered,
}

impl WithdrawalStatus {
    /// The database / JSON word.
    pub fn as_str(self) -> &'static str {
        match self {
            WithdrawalStatus::Requested => "requested",
            WithdrawalStatus::Submitted => "submitted",
            WithdrawalStatus::Completed => "completed",
            WithdrawalStatus::Failed => "failed",
            WithdrawalStatus::Recovered => "recovered",
        }
    }

    /// Requested or submitted.
    pub fn is_in_flight(self) -> bool {
        matches!(
            self,
            WithdrawalStatus::Requested | WithdrawalStatus::Submitted
        )
    }
}

impl fmt::Display for WithdrawalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WithdrawalStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "requested" => WithdrawalStatus::Requested,
            "submitted" => WithdrawalStatus::Submitted,
            "completed" => WithdrawalStatus::Completed,
            "failed" => WithdrawalStatus::Failed,
            "recovered" => WithdrawalStatus::Recovered,
            other => {
                return Err(Error::usage(format!(
                    "withdrawal status \"{other}\" is not one of requested, submitted, completed, failed, recovered"
                )));
            }
        })
    }
}

/// The fields of a new withdrawal (all but the id optional, as the ingester
/// may only know part of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewWithdrawal {
    /// Exchange-assigned id (carried on chain in the transfer's reason).
    pub withdrawal_id: String,
    /// Customer account debited.
    pub account_id: Option<String>,
    /// Receiving party.
    pub receiver: Option<String>,
    /// Instrument admin party.
    pub instrument_admin: Option<String>,
    /// Instrument id.
    pub instrument_id: Option<String>,
    /// Amount, a decimal string.
    pub amount: Option<String>,
    /// Target record time by which it must be on chain or fail.
    pub trec_tgt: Option<DateTime<Utc>>,
}

/// A row of `withdrawals`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Withdrawal {
    /// Id.
    pub withdrawal_id: String,
    /// Account.
    pub account_id: Option<String>,
    /// Receiver.
    pub receiver: Option<String>,
    /// Instrument admin.
    pub instrument_admin: Option<String>,
    /// Instrument id.
    pub instrument_id: Option<String>,
    /// Amount (decimal string with 10 fractional digits).
    pub amount: Option<String>,
    /// Target record time.
    #[serde(with = "crate::serde_time::option")]
    pub trec_tgt: Option<DateTime<Utc>>,
    /// Status.
    pub status: WithdrawalStatus,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// Update that completed (or failed) it on chain.
    pub completed_update_id: Option<String>,
    /// Its record time.
    #[serde(with = "crate::serde_time::option")]
    pub completed_record_time: Option<DateTime<Utc>>,
    /// Needs an operator's look (e.g. recovered after a restore).
    pub needs_reconciliation: bool,
    /// Created.
    #[serde(with = "crate::serde_time")]
    pub created_at: DateTime<Utc>,
    /// Last changed.
    #[serde(with = "crate::serde_time")]
    pub updated_at: DateTime<Utc>,
}

/// The outcome of a status change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The status changed; the new row.
    Changed(Withdrawal),
    /// Not applicable from the current status (or already done); the row as is.
    Unchanged(Withdrawal),
    /// No such withdrawal.
    NotFound,
}

const COLUMNS: &str = "withdrawal_id, account_id, receiver, instrument_admin, instrument_id,
    amount::text, trec_tgt, status, failure_reason, completed_update_id, completed_record_time,
    needs_reconciliation, created_at, updated_at";

fn from_row(r: &Row) -> Result<Withdrawal> {
    Ok(Withdrawal {
        withdrawal_id: r.get(0),
        account_id: r.get(1),
        receiver: r.get(2),
        instrument_admin: r.get(3),
        instrument_id: r.get(4),
        amount: r.get(5),
        trec_tgt: r.get(6),
        status: r.get::<_, String>(7).parse()?,
        failure_reason: r.get(8),
        completed_update_id: r.get(9),
        completed_record_time: r.get(10),
        needs_reconciliation: r.get(11),
        created_at: r.get(12),
        updated_at: r.get(13),
    })
}

/// The withdrawal `id`, if any.
pub async fn get(c: &impl GenericClient, id: &str) -> Result<Option<Withdrawal>> {
    let row = c
        .query_opt(
            &format!("SELECT {COLUMNS} FROM withdrawals WHERE withdrawal_id = $1"),
            &[&id],
        )
        .await
        .db()?;
    row.as_ref().map(from_row).transpose()
}

/// Creates the withdrawal as `requested`, or, if it exists, fills in fields it
/// lacks (never overwrites known values or the status). Idempotent.
pub async fn upsert_requested(c: &impl GenericClient, w: &NewWithdrawal) -> Result<Withdrawal> {
    let row = c
        .query_opt(
            &format!(
                "INSERT INTO withdrawals AS w (withdrawal_id, account_id, receiver, instrument_admin,
                     instrument_id, amount, trec_tgt, status)
                 VALUES ($1, $2, $3, $4, $5, $6::text::numeric(38,10), $7, 'requested')
                 ON CONFLICT (withdrawal_id) DO UPDATE SET
                     account_id = coalesce(w.account_id, EXCLUDED.account_id),
                     receiver = coalesce(w.receiver, EXCLUDED.receiver),
                     instrument_admin = coalesce(w.instrument_admin, EXCLUDED.instrument_admin),
                     instrument_id = coalesce(w.instrument_id, EXCLUDED.instrument_id),
                     amount = coalesce(w.amount, EXCLUDED.amount),
                     trec_tgt = coalesce(w.trec_tgt, EXCLUDED.trec_tgt),
                     updated_at = now()
                 WHERE (w.account_id IS NULL AND EXCLUDED.account_id IS NOT NULL)
                    OR (w.receiver IS NULL AND EXCLUDED.receiver IS NOT NULL)
                    OR (w.instrument_admin IS NULL AND EXCLUDED.instrument_admin IS NOT NULL)
                    OR (w.instrument_id IS NULL AND EXCLUDED.instrument_id IS NOT NULL)
                    OR (w.amount IS NULL AND EXCLUDED.amount IS NOT NULL)
                    OR (w.trec_tgt IS NULL AND EXCLUDED.trec_tgt IS NOT NULL)
                 RETURNING {COLUMNS}"
            ),
            &[
                &w.withdrawal_id,
                &w.account_id,
                &w.receiver,
                &w.instrument_admin,
                &w.instrument_id,
                &w.amount,
                &w.trec_tgt,
            ],
        )
        .await
        .db()?;
    match row {
        Some(row) => from_row(&row),
        // It existed and had nothing to fill in.
        None => get(c, &w.withdrawal_id)
            .await?
            .ok_or_else(|| Error::transient(format!("withdrawal {} vanished", w.withdrawal_id))),
    }
}

/// `requested` → `submitted`.
pub async fn mark_submitted(c: &impl GenericClient, id: &str) -> Result<Transition> {
    transition(c, id, "status = 'submitted'", "status = 'requested'", &[]).await
}

/// In flight or failed → `completed` by `update_id` at `record_time` (the
/// chain is authoritative). Completing again is `Unchanged`.
pub async fn complete(
    c: &impl GenericClient,
    id: &str,
    update_id: &str,
    record_time: DateTime<Utc>,
) -> Result<Transition> {
    transition(
        c,
        id,
        "status = 'completed', completed_update_id = $2, completed_record_time = $3, failure_reason = NULL",
        "status IN ('requested', 'submitted', 'failed')",
        &[&update_id, &record_time],
    )
    .await
}

/// In flight → `failed` for `reason` (with the update that showed it, if any).
pub async fn fail(
    c: &impl GenericClient,
    id: &str,
    reason: &str,
    update_id: Option<&str>,
    record_time: Option<DateTime<Utc>>,
) -> Result<Transition> {
    transition(
        c,
        id,
        "status = 'failed', failure_reason = $2, completed_update_id = $3, completed_record_time = $4",
        "status IN ('requested', 'submitted')",
        &[&reason, &update_id, &record_time],
    )
    .await
}

async fn transition(
    c: &impl GenericClient,
    id: &str,
    set: &str,
    from: &str,
    extra: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Transition> {
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&id];
    params.extend_from_slice(extra);
    let row = c
        .query_opt(
            &format!(
                "UPDATE withdrawals SET {set}, updated_at = now()
                 WHERE withdrawal_id = $1 AND {from} RETURNING {COLUMNS}"
            ),
            &params,
        )
        .await
        .db()?;
    if let Some(row) = row {
        return Ok(Transition::Changed(from_row(&row)?));
    }
    Ok(match get(c, id).await? {
        Some(w) => Transition::Unchanged(w),
        None => Transition::NotFound,
    })
}

/// Re-creates a withdrawal the ingester saw completed on chain but could not
/// find: status `recovered`, `needs_reconciliation`. `false` if the id exists
/// (nothing changed).
pub async fn record_recovered(
    c: &impl GenericClient,
    w: &NewWithdrawal,
    update_id: &str,
    record_time: DateTime<Utc>,
) -> Result<bool> {
    let n = c
        .execute(
            "INSERT INTO withdrawals (withdrawal_id, account_id, receiver, instrument_admin,
                 instrument_id, amount, trec_tgt, status, completed_update_id, completed_record_time,
                 needs_reconciliation)
             VALUES ($1, $2, $3, $4, $5, $6::text::numeric(38,10), $7, 'recovered', $8, $9, true)
             ON CONFLICT (withdrawal_id) DO NOTHING",
            &[
                &w.withdrawal_id,
                &w.account_id,
                &w.receiver,
                &w.instrument_admin,
                &w.instrument_id,
                &w.amount,
                &w.trec_tgt,
                &update_id,
                &record_time,
            ],
        )
        .await
        .db()?;
    Ok(n == 1)
}

/// Sets or clears `needs_reconciliation`; `false` if there is no such withdrawal.
pub async fn set_needs_reconciliation(
    c: &impl GenericClient,
    id: &str,
    needs: bool,
) -> Result<bool> {
    let n = c
        .execute(
            "UPDATE withdrawals SET needs_reconciliation = $2, updated_at = now() WHERE withdrawal_id = $1",
            &[&id, &needs],
        )
        .await
        .db()?;
    Ok(n == 1)
}

/// Withdrawals with `status` (all when `None`), oldest first.
pub async fn list(
    c: &impl GenericClient,
    status: Option<WithdrawalStatus>,
) -> Result<Vec<Withdrawal>> {
    let status = status.map(WithdrawalStatus::as_str);
    let rows = c
        .query(
            &format!(
                "SELECT {COLUMNS} FROM withdrawals WHERE $1::text IS NULL OR status = $1
                 ORDER BY created_at, withdrawal_id"
            ),
            &[&status],
        )
        .await
        .db()?;
    rows.iter().map(from_row).collect()
}

/// In-flight withdrawals (requested or submitted), by `trec_tgt` (unknown last).
pub async fn list_in_flight(c: &impl GenericClient) -> Result<Vec<Withdrawal>> {
    let rows = c
        .query(
            &format!(
                "SELECT {COLUMNS} FROM withdrawals WHERE status IN ('requested', 'submitted')
                 ORDER BY trec_tgt NULLS LAST, withdrawal_id"
            ),
            &[],
        )
        .await
        .db()?;
    rows.iter().map(from_row).collect()
}

/// The largest `trec_tgt` among in-flight withdrawals (`None` if none has one).
pub async fn max_in_flight_trec_tgt(c: &impl GenericClient) -> Result<Option<DateTime<Utc>>> {
    let row = c
        .query_one(
            "SELECT max(trec_tgt) FROM withdrawals WHERE status IN ('requested', 'submitted')",
            &[],
        )
        .await
        .db()?;
    Ok(row.get(0))
}

/// Number of withdrawals per status (statuses with none are omitted).
pub async fn count_by_status(c: &impl GenericClient) -> Result<Vec<(WithdrawalStatus, i64)>> {
    let rows = c
        .query(
            "SELECT status, count(*) FROM withdrawals GROUP BY status ORDER BY status",
            &[],
        )
        .await
        .db()?;
    rows.iter()
        .map(|r| Ok((r.get::<_, String>(0).parse()?, r.get(1))))
        .collect()
}
