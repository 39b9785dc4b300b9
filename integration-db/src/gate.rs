//! `withdrawal_gate`: runbook B's freeze of new withdrawals.
//!
//! [`freeze`] is idempotent and keeps the first `frozen_at` / `frozen_by` /
//! `reason` / `ttl_seconds` (the TTL bound is measured from the first freeze:
//! no withdrawal was created after it). [`set_tsafe`] records the record time
//! being waited for. [`thaw`] re-opens the gate. A gate without a row is open.

use crate::error::PgResultExt as _;
use crate::{Change, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::{GenericClient, Row};

/// The gate Canton Network withdrawals use.
pub const DEFAULT_GATE: &str = "cn-withdrawals";

/// A row of `withdrawal_gate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Gate {
    /// Gate name.
    pub gate: String,
    /// Frozen now.
    pub frozen: bool,
    /// Since when (first freeze of this cycle).
    #[serde(with = "crate::serde_time::option")]
    pub frozen_at: Option<DateTime<Utc>>,
    /// By whom (user@host).
    pub frozen_by: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Withdrawal request time-to-live, seconds: requests lost in a restore
    /// expire by `frozen_at + ttl`.
    pub ttl_seconds: Option<i64>,
    /// The record time ingestion must pass before thawing.
    #[serde(with = "crate::serde_time::option")]
    pub tsafe: Option<DateTime<Utc>>,
    /// Last thaw.
    #[serde(with = "crate::serde_time::option")]
    pub thawed_at: Option<DateTime<Utc>>,
    /// By whom.
    pub thawed_by: Option<String>,
    /// Why.
    pub thaw_reason: Option<String>,
    /// Last change.
    #[serde(with = "crate::serde_time")]
    pub updated_at: DateTime<Utc>,
}

impl Gate {
    /// `frozen_at + ttl_seconds`, when both are known.
    pub fn ttl_deadline(&self) -> Option<DateTime<Utc>> {
        Some(self.frozen_at? + chrono::Duration::seconds(self.ttl_seconds?))
    }
}

/// How to freeze.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Freeze {
    /// Who (user@host).
    pub by: String,
    /// Why.
    pub reason: Option<String>,
    /// Request time-to-live in seconds.
    pub ttl_seconds: Option<i64>,
}

const COLUMNS: &str = "gate, frozen, frozen_at, frozen_by, reason, ttl_seconds, tsafe,
    thawed_at, thawed_by, thaw_reason, updated_at";

fn from_row(r: &Row) -> Gate {
    Gate {
        gate: r.get(0),
        frozen: r.get(1),
        frozen_at: r.get(2),
        frozen_by: r.get(3),
        reason: r.get(4),
        ttl_seconds: r.get(5),
        tsafe: r.get(6),
        thawed_at: r.get(7),
        thawed_by: r.get(8),
        thaw_reason: r.get(9),
        updated_at: r.get(10),
    }
}

/// The gate's row (`None`: never frozen, i.e. open).
pub async fn get(c: &impl GenericClient, gate: &str) -> Result<Option<Gate>> {
    let row = c
        .query_opt(
            &format!("SELECT {COLUMNS} FROM withdrawal_gate WHERE gate = $1"),
            &[&gate],
        )
        .await
        .db()?;
    Ok(row.as_ref().map(from_row))
}

/// True if the gate is frozen.
pub async fn is_frozen(c: &impl GenericClient, gate: &str) -> Result<bool> {
    Ok(get(c, gate).await?.is_some_and(|g| g.frozen))
}

/// Freezes the gate. Already frozen: unchanged (first freeze's fields kept).
/// Re-freezing after a thaw starts a new cycle (tSafe and thaw fields cleared).
pub async fn freeze(c: &impl GenericClient, gate: &str, f: &Freeze) -> Result<Change<Gate>> {
    let row = c
        .query_opt(
            &format!(
                "INSERT INTO withdrawal_gate AS g (gate, frozen, frozen_at, frozen_by, reason, ttl_seconds, updated_at)
                 VALUES ($1, true, now(), $2, $3, $4, now())
                 ON CONFLICT (gate) DO UPDATE SET
                     frozen = true, frozen_at = now(), frozen_by = EXCLUDED.frozen_by,
                     reason = EXCLUDED.reason, ttl_seconds = EXCLUDED.ttl_seconds, tsafe = NULL,
                     thawed_at = NULL, thawed_by = NULL, thaw_reason = NULL, updated_at = now()
                 WHERE NOT g.frozen
                 RETURNING {COLUMNS}"
            ),
            &[&gate, &f.by, &f.reason, &f.ttl_seconds],
        )
        .await
        .db()?;
    match row {
        Some(row) => Ok(Change {
            changed: true,
            value: from_row(&row),
        }),
        None => Ok(Change {
            changed: false,
            value: get(c, gate).await?.ok_or_else(|| {
                canton_dr_cli::Error::transient(format!("gate \"{gate}\" vanished"))
            })?,
        }),
    }
}

/// Records the tSafe being waited for; `None` if the gate has no row.
pub async fn set_tsafe(
    c: &impl GenericClient,
    gate: &str,
    tsafe: Option<DateTime<Utc>>,
) -> Result<Option<Gate>> {
    let row = c
        .query_opt(
            &format!(
                "UPDATE withdrawal_gate SET tsafe = $2, updated_at = now() WHERE gate = $1
                 RETURNING {COLUMNS}"
            ),
            &[&gate, &tsafe],
        )
        .await
        .db()?;
    Ok(row.as_ref().map(from_row))
}

/// Thaws the gate. Not frozen (or no row): unchanged.
pub async fn thaw(
    c: &impl GenericClient,
    gate: &str,
    by: &str,
    reason: Option<&str>,
) -> Result<Change<Option<Gate>>> {
    let row = c
        .query_opt(
            &format!(
                "UPDATE withdrawal_gate
                 SET frozen = false, thawed_at = now(), thawed_by = $2, thaw_reason = $3, updated_at = now()
                 WHERE gate = $1 AND frozen
                 RETURNING {COLUMNS}"
            ),
            &[&gate, &by, &reason],
        )
        .await
        .db()?;
    match row {
        Some(row) => Ok(Change {
            changed: true,
            value: Some(from_row(&row)),
        }),
        None => Ok(Change {
            changed: false,
            value: get(c, gate).await?,
        }),
    }
}
