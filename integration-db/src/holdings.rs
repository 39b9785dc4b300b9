//! `holdings`: the treasury's holding contracts (UTXOs), created and archived
//! as the ingester sees them. Amounts are decimal strings.

use crate::Result;
use crate::error::PgResultExt as _;
use serde::Serialize;
use tokio_postgres::{GenericClient, Row};

/// A row of `holdings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Holding {
    /// Contract id.
    pub contract_id: String,
    /// Owner party.
    pub owner: String,
    /// Instrument admin.
    pub instrument_admin: String,
    /// Instrument id.
    pub instrument_id: String,
    /// Amount (decimal string).
    pub amount: String,
    /// Update that created it.
    pub created_update_id: String,
    /// Update that archived it, once spent.
    pub archived_update_id: Option<String>,
}

const COLUMNS: &str = "contract_id, owner, instrument_admin, instrument_id, amount::text,
    created_update_id, archived_update_id";

fn from_row(r: &Row) -> Holding {
    Holding {
        contract_id: r.get(0),
        owner: r.get(1),
        instrument_admin: r.get(2),
        instrument_id: r.get(3),
        amount: r.get(4),
        created_update_id: r.get(5),
        archived_update_id: r.get(6),
    }
}

/// Records a created holding (its `archived_update_id` is ignored); `false`
/// if the contract was already recorded.
pub async fn record_created(c: &impl GenericClient, h: &Holding) -> Result<bool> {
    let n = c
        .execute(
            "INSERT INTO holdings (contract_id, owner, instrument_admin, instrument_id, amount, created_update_id)
             VALUES ($1, $2, $3, $4, $5::text::numeric(38,10), $6)
             ON CONFLICT (contract_id) DO NOTHING",
            &[
                &h.contract_id,
                &h.owner,
                &h.instrument_admin,
                &h.instrument_id,
                &h.amount,
                &h.created_update_id,
            ],
        )
        .await
        .db()?;
    Ok(n == 1)
}

/// Marks a holding archived by `update_id`; `false` if unknown or already archived.
pub async fn record_archived(
    c: &impl GenericClient,
    contract_id: &str,
    update_id: &str,
) -> Result<bool> {
    let n = c
        .execute(
            "UPDATE holdings SET archived_update_id = $2
             WHERE contract_id = $1 AND archived_update_id IS NULL",
            &[&contract_id, &update_id],
        )
        .await
        .db()?;
    Ok(n == 1)
}

/// The holding `contract_id`, if recorded.
pub async fn get(c: &impl GenericClient, contract_id: &str) -> Result<Option<Holding>> {
    let row = c
        .query_opt(
            &format!("SELECT {COLUMNS} FROM holdings WHERE contract_id = $1"),
            &[&contract_id],
        )
        .await
        .db()?;
    Ok(row.as_ref().map(from_row))
}

/// Unarchived holdings of `owner`.
pub async fn active(c: &impl GenericClient, owner: &str) -> Result<Vec<Holding>> {
    let rows = c
        .query(
            &format!(
                "SELECT {COLUMNS} FROM holdings WHERE owner = $1 AND archived_update_id IS NULL
                 ORDER BY instrument_admin, instrument_id, contract_id"
            ),
            &[&owner],
        )
        .await
        .db()?;
    Ok(rows.iter().map(from_row).collect())
}

/// Sum of unarchived holdings of `owner` in one instrument (`"0.0000000000"` if none).
pub async fn total(
    c: &impl GenericClient,
    owner: &str,
    instrument_admin: &str,
    instrument_id: &str,
) -> Result<String> {
    let row = c
        .query_one(
            "SELECT coalesce(sum(amount), 0)::numeric(38,10)::text FROM holdings
             WHERE owner = $1 AND instrument_admin = $2 AND instrument_id = $3
               AND archived_update_id IS NULL",
            &[&owner, &instrument_admin, &instrument_id],
        )
        .await
        .db()?;
    Ok(row.get(0))
}
