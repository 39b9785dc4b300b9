//! `deposit_accounts`, `deposits` and `account_balances`: transfers into the
//! treasury, attributed to customer accounts, as the reference ingestion
//! books them. Amounts are decimal strings (numeric(38,10) in the tables).

use crate::Result;
use crate::error::PgResultExt as _;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::{GenericClient, Row};

/// A customer's deposit account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DepositAccount {
    /// Account id (what senders put in the transfer's reason/memo).
    pub account_id: String,
    /// The customer.
    pub customer_id: String,
}

/// A deposit as the ingester sees it on chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeposit {
    /// Update that carried it.
    pub update_id: String,
    /// Node id of the transfer event in that update.
    pub node_id: i32,
    /// Account named by the sender (`None` if none could be read).
    pub account_id: Option<String>,
    /// Sending party.
    pub sender: String,
    /// Instrument admin party.
    pub instrument_admin: String,
    /// Instrument id.
    pub instrument_id: String,
    /// Amount, a decimal string.
    pub amount: String,
    /// Record time of the update.
    pub record_time: DateTime<Utc>,
}

/// A row of `deposits`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Deposit {
    /// Update id.
    pub update_id: String,
    /// Node id.
    pub node_id: i32,
    /// Account named.
    pub account_id: Option<String>,
    /// Whether that account was known when booked (only then was it credited).
    pub known_account: bool,
    /// Sender.
    pub sender: String,
    /// Instrument admin.
    pub instrument_admin: String,
    /// Instrument id.
    pub instrument_id: String,
    /// Amount (10 fractional digits).
    pub amount: String,
    /// Record time.
    #[serde(with = "crate::serde_time")]
    pub record_time: DateTime<Utc>,
}

/// A credited balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Balance {
    /// Account.
    pub account_id: String,
    /// Instrument admin.
    pub instrument_admin: String,
    /// Instrument id.
    pub instrument_id: String,
    /// Balance (10 fractional digits).
    pub balance: String,
}

/// Registers a deposit account; `false` if it existed (its customer is kept).
pub async fn upsert_account(
    c: &impl GenericClient,
    account_id: &str,
    customer_id: &str,
) -> Result<bool> {
    let n = c
        .execute(
            "INSERT INTO deposit_accounts (account_id, customer_id) VALUES ($1, $2)
             ON CONFLICT (account_id) DO NOTHING",
            &[&account_id, &customer_id],
        )
        .await
        .db()?;
    Ok(n == 1)
}

/// The account `account_id`, if registered.
pub async fn account(c: &impl GenericClient, account_id: &str) -> Result<Option<DepositAccount>> {
    let row = c
        .query_opt(
            "SELECT account_id, customer_id FROM deposit_accounts WHERE account_id = $1",
            &[&account_id],
        )
        .await
        .db()?;
    Ok(row.map(|r| DepositAccount {
        account_id: r.get(0),
        customer_id: r.get(1),
    }))
}

/// Books a deposit: records it once per (update id, node id) and, if its
/// account is known, credits the balance, in one statement. `false` if it was
/// already booked (nothing changes). Run it in the update's transaction.
pub async fn record(c: &impl GenericClient, d: &NewDeposit) -> Result<bool> {
    let row = c
        .query_one(
            "WITH ins AS (
                 INSERT INTO deposits (update_id, node_id, account_id, known_account, sender,
                     instrument_admin, instrument_id, amount, record_time)
                 VALUES ($1, $2, $3,
                         EXISTS (SELECT 1 FROM deposit_accounts WHERE account_id = $3),
                         $4, $5, $6, $7::text::numeric(38,10), $8)
                 ON CONFLICT (update_id, node_id) DO NOTHING
                 RETURNING account_id, known_account, instrument_admin, instrument_id, amount
             ), credit AS (
                 INSERT INTO account_balances AS b (account_id, instrument_admin, instrument_id, balance)
                 SELECT account_id, instrument_admin, instrument_id, amount FROM ins WHERE known_account
                 ON CONFLICT (account_id, instrument_admin, instrument_id)
                 DO UPDATE SET balance = b.balance + EXCLUDED.balance, updated_at = now()
                 RETURNING 1
             )
             SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM credit)",
            &[
                &d.update_id,
                &d.node_id,
                &d.account_id,
                &d.sender,
                &d.instrument_admin,
                &d.instrument_id,
                &d.amount,
                &d.record_time,
            ],
        )
        .await
        .db()?;
    Ok(row.get::<_, i64>(0) == 1)
}

const DEPOSIT_COLUMNS: &str = "update_id, node_id, account_id, known_account, sender,
    instrument_admin, instrument_id, amount::text, record_time";

fn deposit_from_row(r: &Row) -> Deposit {
    Deposit {
        update_id: r.get(0),
        node_id: r.get(1),
        account_id: r.get(2),
        known_account: r.get(3),
        sender: r.get(4),
        instrument_admin: r.get(5),
        instrument_id: r.get(6),
        amount: r.get(7),
        record_time: r.get(8),
    }
}

/// Deposits to `account_id` (or, with `None`, those to no known account), in
/// record-time order.
pub async fn list(c: &impl GenericClient, account_id: Option<&str>) -> Result<Vec<Deposit>> {
    let rows = c
        .query(
            &format!(
                "SELECT {DEPOSIT_COLUMNS} FROM deposits
                 WHERE CASE WHEN $1::text IS NULL THEN NOT known_account ELSE account_id = $1 END
                 ORDER BY record_time, update_id, node_id"
            ),
            &[&account_id],
        )
        .await
        .db()?;
    Ok(rows.iter().map(deposit_from_row).collect())
}

/// Number of deposits booked.
pub async fn count(c: &impl GenericClient) -> Result<i64> {
    let row = c
        .query_one("SELECT count(*) FROM deposits", &[])
        .await
        .db()?;
    Ok(row.get(0))
}

/// The balance of one account and instrument (`None`: never credited).
pub async fn balance(
    c: &impl GenericClient,
    account_id: &str,
    instrument_admin: &str,
    instrument_id: &str,
) -> Result<Option<String>> {
    let row = c
        .query_opt(
            "SELECT balance::text FROM account_balances
             WHERE account_id = $1 AND instrument_admin = $2 AND instrument_id = $3",
            &[&account_id, &instrument_admin, &instrument_id],
        )
        .await
        .db()?;
    Ok(row.map(|r| r.get(0)))
}

/// All balances of `account_id`.
pub async fn balances(c: &impl GenericClient, account_id: &str) -> Result<Vec<Balance>> {
    let rows = c
        .query(
            "SELECT account_id, instrument_admin, instrument_id, balance::text FROM account_balances
             WHERE account_id = $1 ORDER BY instrument_admin, instrument_id",
            &[&account_id],
        )
        .await
        .db()?;
    Ok(rows
        .iter()
        .map(|r| Balance {
            account_id: r.get(0),
            instrument_admin: r.get(1),
            instrument_id: r.get(2),
            balance: r.get(3),
        })
        .collect())
}
