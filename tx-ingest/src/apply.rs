//! Writing a batch of streamed updates to the Integration DB in ONE
//! PostgreSQL transaction: the dedup rows, the effects of the new
//! transactions, the checkpoint and the progress `NOTIFY` commit together or
//! not at all (docs/integration-db.md, "Protocols").
//!
//! Per batch, in stream order:
//! 0. the contract's `fence`: the control row must still be at the
//!    generation the ingester acted on, and running; otherwise the batch is
//!    rolled back and the caller re-reads its orders;
//! 1. every transaction's update id goes into `ingested_updates`; one already
//!    there is a duplicate and none of its effects are applied (the last
//!    transaction goes through `checkpoint::record_transaction`, which also
//!    moves the checkpoint and `last_tx_*` to it);
//! 2. treasury holdings created, then holdings spent;
//! 3. deposits, credited to their account when it is a known deposit account
//!    (unknown accounts are recorded, not credited);
//! 4. withdrawals (transfers from the treasury) matched by withdrawal id (the
//!    `reason`) and completed with the update id and record time; an unknown
//!    id (its request was lost, e.g. in a DB restore) is re-created as
//!    `recovered` from the chain's fields, the others left NULL, flagged
//!    `needs_reconciliation`;
//! 5. in-flight withdrawals whose `trec_tgt` is below the batch's last record
//!    time are `failed`: they can no longer commit;
//! 6. an offset checkpoint after the last transaction moves the checkpoint on;
//! 7. `NOTIFY canton_dr_progress`.
//!
//! Every statement is set-based (arrays + `unnest`), so a batch of a thousand
//! updates costs about as many round trips as a batch of one.

use crate::control;
use crate::parse::{Direction, Outcome, Transfer};
use crate::update::{Item, TxItem};
use canton_dr_cli::Result;
use chrono::{DateTime, Utc};
use integration_db::checkpoint::{self, Position};
use integration_db::error::db_error;
use integration_db::notify::{self, Progress};
use integration_db::withdrawals;
use std::collections::{HashMap, HashSet};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement, Transaction};

/// Why a withdrawal is failed when its `trec_tgt` has passed.
pub const EXPIRED_REASON: &str =
    "trec_tgt passed: the ledger's record time reached it without the transfer committing";
/// Why a withdrawal is failed when the transfer's result says so.
pub const FAILED_ON_LEDGER_REASON: &str =
    "the transfer failed on the ledger (TransferInstructionResult_Failed)";

const DEDUP_SQL: &str = r#"
INSERT INTO ingested_updates (update_id, ingester, "offset", record_time, synchronizer_id, offset_epoch)
SELECT x.u, $1, x.o, x.t, x.s, $2
FROM unnest($3::text[], $4::int8[], $5::timestamptz[], $6::text[]) AS x(u, o, t, s)
ON CONFLICT (update_id) DO NOTHING
RETURNING update_id"#;

const HOLDINGS_CREATED_SQL: &str = r#"
INSERT INTO holdings (contract_id, owner, instrument_admin, instrument_id, amount, created_update_id)
SELECT x.c, x.o, x.a, x.i, x.m::numeric(38,10), x.u
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS x(c, o, a, i, m, u)
ON CONFLICT (contract_id) DO NOTHING"#;

const HOLDINGS_ARCHIVED_SQL: &str = r#"
UPDATE holdings h SET archived_update_id = x.u
FROM unnest($1::text[], $2::text[]) AS x(c, u)
WHERE h.contract_id = x.c AND h.archived_update_id IS NULL"#;

const DEPOSITS_SQL: &str = r#"
WITH d AS (
    SELECT * FROM unnest($1::text[], $2::int4[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::text[], $8::timestamptz[])
        AS d(update_id, node_id, account_id, sender, instrument_admin, instrument_id, amount, record_time)
), ins AS (
    INSERT INTO deposits (update_id, node_id, account_id, known_account, sender,
                          instrument_admin, instrument_id, amount, record_time)
    SELECT d.update_id, d.node_id, d.account_id, a.account_id IS NOT NULL, d.sender,
           d.instrument_admin, d.instrument_id, d.amount::numeric(38,10), d.record_time
    FROM d LEFT JOIN deposit_accounts a ON a.account_id = d.account_id
    ON CONFLICT (update_id, node_id) DO NOTHING
    RETURNING account_id, known_account, instrument_admin, instrument_id, amount
), credit AS (
    INSERT INTO account_balances AS b (account_id, instrument_admin, instrument_id, balance)
    SELECT account_id, instrument_admin, instrument_id, sum(amount) FROM ins WHERE known_account
    GROUP BY account_id, instrument_admin, instrument_id
    ON CONFLICT (account_id, instrument_admin, instrument_id)
    DO UPDATE SET balance = b.balance + EXCLUDED.balance, updated_at = now()
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM ins WHERE known_account),
       (SELECT count(*) FROM credit)"#;

/// Completes the withdrawals named; returns, per id, its status before
/// (NULL: unknown) and whether it was completed now. A withdrawal that had
/// failed and now completes on chain needs reconciliation (it may have been
/// refunded).
const WITHDRAWALS_COMPLETE_SQL: &str = r#"
WITH x AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS x(id, u, t)
), prev AS (
    SELECT w.withdrawal_id, w.status FROM withdrawals w JOIN x ON w.withdrawal_id = x.id
), upd AS (
    UPDATE withdrawals w
    SET status = 'completed', completed_update_id = x.u, completed_record_time = x.t,
        failure_reason = NULL, needs_reconciliation = w.needs_reconciliation OR w.status = 'failed',
        updated_at = now()
    FROM x
    WHERE w.withdrawal_id = x.id AND w.status IN ('requested', 'submitted', 'failed')
    RETURNING w.withdrawal_id
)
SELECT x.id, prev.status, upd.withdrawal_id IS NOT NULL
FROM x LEFT JOIN prev ON prev.withdrawal_id = x.id LEFT JOIN upd ON upd.withdrawal_id = x.id"#;

/// Re-creates lost withdrawals from the chain: account and `trec_tgt` are not
/// on the ledger and stay NULL.
const WITHDRAWALS_RECOVER_SQL: &str = r#"
INSERT INTO withdrawals (withdrawal_id, receiver, instrument_admin, instrument_id, amount, status,
                         completed_update_id, completed_record_time, needs_reconciliation)
SELECT x.id, x.r, x.a, x.i, x.m::numeric(38,10), 'recovered', x.u, x.t, true
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
    AS x(id, r, a, i, m, u, t)
ON CONFLICT (withdrawal_id) DO NOTHING
RETURNING withdrawal_id"#;

const WITHDRAWALS_EXPIRE_SQL: &str = r#"
UPDATE withdrawals
SET status = 'failed', failure_reason = $2, completed_update_id = $3, completed_record_time = $1,
    updated_at = now()
WHERE status IN ('requested', 'submitted') AND trec_tgt < $1
RETURNING withdrawal_id"#;

const FLAG_SQL: &str = r#"
UPDATE withdrawals SET needs_reconciliation = true, updated_at = now()
WHERE withdrawal_id = ANY($1::text[]) AND NOT needs_reconciliation"#;

/// The batch statements, prepared once per connection.
#[derive(Debug, Clone)]
pub struct Statements {
    dedup: Statement,
    holdings_created: Statement,
    holdings_archived: Statement,
    deposits: Statement,
    withdrawals_complete: Statement,
    withdrawals_recover: Statement,
    withdrawals_expire: Statement,
    flag: Statement,
}

impl Statements {
    /// Prepares the statements on `client` (whose `search_path` is the schema).
    pub async fn prepare(client: &Client) -> Result<Statements> {
        let p =
            |sql: &'static str| async move { client.prepare(sql).await.map_err(|e| db_error(&e)) };
        Ok(Statements {
            dedup: p(DEDUP_SQL).await?,
            holdings_created: p(HOLDINGS_CREATED_SQL).await?,
            holdings_archived: p(HOLDINGS_ARCHIVED_SQL).await?,
            deposits: p(DEPOSITS_SQL).await?,
            withdrawals_complete: p(WITHDRAWALS_COMPLETE_SQL).await?,
            withdrawals_recover: p(WITHDRAWALS_RECOVER_SQL).await?,
            withdrawals_expire: p(WITHDRAWALS_EXPIRE_SQL).await?,
            flag: p(FLAG_SQL).await?,
        })
    }
}

/// Which ingester writes, under which orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Ingester name (`ingestion_checkpoint` / `ingestion_control` key).
    pub ingester: String,
    /// Offset epoch the streamed offsets belong to.
    pub offset_epoch: i32,
    /// The control generation the ingester acted on (the fence).
    pub generation: i64,
}

/// What a committed batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// The checkpoint after the batch (`None`: nothing could be placed yet).
    pub position: Option<Position>,
    /// Updates in the batch.
    pub items: usize,
    /// Transactions booked for the first time.
    pub new_transactions: usize,
    /// Transactions skipped because their update id was already ingested.
    pub duplicates: usize,
    /// Deposits recorded.
    pub deposits: u64,
    /// Of which credited to a known account.
    pub credited: u64,
    /// Withdrawals completed.
    pub completed: Vec<String>,
    /// Withdrawals re-created as `recovered`.
    pub recovered: Vec<String>,
    /// Withdrawals failed (result failed, or `trec_tgt` passed).
    pub failed: Vec<String>,
    /// Withdrawals flagged for reconciliation (completed twice, or after failing).
    pub flagged: Vec<String>,
}

/// Applies `items` (in stream order) in one transaction and commits; returns
/// what it did, or `None` when the fence refused (the orders changed: nothing
/// was written). `position` is the checkpoint before the batch. On error
/// nothing is committed.
pub async fn apply_batch(
    client: &mut Client,
    stmts: &Statements,
    target: &Target,
    position: Option<&Position>,
    items: &[Item],
) -> Result<Option<BatchOutcome>> {
    let tx = client.transaction().await.map_err(|e| db_error(&e))?;
    match control::fence(&tx, &target.ingester, target.generation).await? {
        Some(epoch) if epoch == target.offset_epoch => {}
        _ => {
            tx.rollback().await.map_err(|e| db_error(&e))?;
            return Ok(None);
        }
    }
    let outcome = apply_in(&tx, stmts, target, position, items).await?;
    tx.commit().await.map_err(|e| db_error(&e))?;
    Ok(Some(outcome))
}

async fn apply_in(
    tx: &Transaction<'_>,
    stmts: &Statements,
    target: &Target,
    position: Option<&Position>,
    items: &[Item],
) -> Result<BatchOutcome> {
    let mut out = BatchOutcome {
        items: items.len(),
        ..Default::default()
    };
    let txs: Vec<&TxItem> = items
        .iter()
        .filter_map(|i| match i {
            Item::Transaction(t) => Some(t),
            Item::Position(_) => None,
        })
        .collect();

    // 1. Dedup rows; the last transaction also moves the checkpoint.
    let mut new_ids: HashSet<&str> = HashSet::with_capacity(txs.len());
    if let Some((last, rest)) = txs.split_last() {
        if !rest.is_empty() {
            let ids: Vec<&str> = rest.iter().map(|t| t.update.update_id.as_str()).collect();
            let offsets: Vec<i64> = rest.iter().map(|t| t.update.offset).collect();
            let times: Vec<DateTime<Utc>> = rest.iter().map(|t| t.update.record_time).collect();
            let syncs: Vec<&str> = rest
                .iter()
                .map(|t| t.update.synchronizer_id.as_str())
                .collect();
            let rows = tx
                .query(
                    &stmts.dedup,
                    &[
                        &target.ingester,
                        &target.offset_epoch,
                        &ids,
                        &offsets,
                        &times,
                        &syncs,
                    ],
                )
                .await
                .map_err(|e| db_error(&e))?;
            let inserted: HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
            for t in rest {
                if inserted.contains(&t.update.update_id) {
                    new_ids.insert(&t.update.update_id);
                }
            }
        }
        if checkpoint::record_transaction(tx, &target.ingester, &last.update, target.offset_epoch)
            .await?
        {
            new_ids.insert(&last.update.update_id);
        }
    }
    let fresh: Vec<&TxItem> = txs
        .iter()
        .copied()
        .filter(|t| new_ids.contains(t.update.update_id.as_str()))
        .collect();
    out.new_transactions = fresh.len();
    out.duplicates = txs.len() - fresh.len();
    for t in txs
        .iter()
        .filter(|t| !new_ids.contains(t.update.update_id.as_str()))
    {
        tracing::debug!(update_id = %t.update.update_id, offset = t.update.offset, "already ingested; skipped");
    }

    // 2–4. Effects of the new transactions.
    apply_holdings(tx, stmts, &fresh).await?;
    apply_deposits(tx, stmts, &fresh, &mut out).await?;
    apply_withdrawals(tx, stmts, &fresh, &mut out).await?;

    // 6. Where the batch leaves the checkpoint.
    let mut pos = position.cloned();
    let mut last_tx_update_id = None;
    let mut trailing: Option<Position> = None;
    for item in items {
        match item {
            Item::Transaction(t) => {
                pos = Some(Position {
                    offset: t.update.offset,
                    record_time: t.update.record_time,
                    synchronizer_id: t.update.synchronizer_id.clone(),
                });
                last_tx_update_id = Some(t.update.update_id.clone());
                trailing = None;
            }
            Item::Position(p) => {
                if let Some(next) = p.resolve(pos.as_ref()) {
                    pos = Some(next.clone());
                    trailing = Some(next);
                }
            }
        }
    }
    if let Some(p) = &trailing {
        checkpoint::record_offset_checkpoint(tx, &target.ingester, p, target.offset_epoch).await?;
        last_tx_update_id = None;
    }

    // 5. Withdrawals that can no longer commit.
    if let Some(p) = &pos {
        let rows = tx
            .query(
                &stmts.withdrawals_expire,
                &[&p.record_time, &EXPIRED_REASON, &last_tx_update_id],
            )
            .await
            .map_err(|e| db_error(&e))?;
        for r in rows {
            let id: String = r.get(0);
            tracing::info!(withdrawal_id = %id, record_time = %canton_dr_cli::time::format_record_time(p.record_time), "withdrawal failed: trec_tgt passed");
            out.failed.push(id);
        }
    }

    // 7. Progress.
    if let Some(p) = &pos
        && !items.is_empty()
    {
        notify::notify_progress(
            tx,
            &Progress {
                ingester: target.ingester.clone(),
                offset: p.offset,
                record_time: p.record_time,
                offset_epoch: target.offset_epoch,
                update_id: last_tx_update_id,
            },
        )
        .await?;
    }
    out.position = pos;
    Ok(out)
}

async fn apply_holdings(tx: &Transaction<'_>, stmts: &Statements, fresh: &[&TxItem]) -> Result<()> {
    let mut cids = Vec::new();
    let mut owners = Vec::new();
    let mut admins = Vec::new();
    let mut ids = Vec::new();
    let mut amounts = Vec::new();
    let mut created_by = Vec::new();
    let mut spent = Vec::new();
    let mut spent_by = Vec::new();
    for t in fresh {
        for h in &t.parsed.holdings_created {
            cids.push(h.contract_id.as_str());
            owners.push(h.owner.as_str());
            admins.push(h.instrument.admin.as_str());
            ids.push(h.instrument.id.as_str());
            amounts.push(h.amount.as_str());
            created_by.push(t.update.update_id.as_str());
        }
        for c in &t.parsed.consumed {
            spent.push(c.as_str());
            spent_by.push(t.update.update_id.as_str());
        }
    }
    // Created before spent: a holding may be both within one batch.
    if !cids.is_empty() {
        tx.execute(
            &stmts.holdings_created,
            &[&cids, &owners, &admins, &ids, &amounts, &created_by],
        )
        .await
        .map_err(|e| db_error(&e))?;
    }
    if !spent.is_empty() {
        tx.execute(&stmts.holdings_archived, &[&spent, &spent_by])
            .await
            .map_err(|e| db_error(&e))?;
    }
    Ok(())
}

fn transfers<'a>(
    fresh: &'a [&'a TxItem],
    direction: Direction,
) -> impl Iterator<Item = (&'a TxItem, &'a Transfer)> {
    fresh.iter().flat_map(move |t| {
        t.parsed
            .transfers
            .iter()
            .filter(move |x| x.direction == direction)
            .map(move |x| (*t, x))
    })
}

async fn apply_deposits(
    tx: &Transaction<'_>,
    stmts: &Statements,
    fresh: &[&TxItem],
    out: &mut BatchOutcome,
) -> Result<()> {
    let mut update_ids = Vec::new();
    let mut node_ids = Vec::new();
    let mut accounts: Vec<Option<&str>> = Vec::new();
    let mut senders = Vec::new();
    let mut admins = Vec::new();
    let mut ids = Vec::new();
    let mut amounts = Vec::new();
    let mut times = Vec::new();
    for (t, d) in transfers(fresh, Direction::Deposit) {
        if matches!(d.outcome, Outcome::Pending | Outcome::Failed) {
            // A multi-step offer (or a failed one) moves no funds yet.
            tracing::info!(update_id = %t.update.update_id, node_id = d.node_id, outcome = ?d.outcome,
                "transfer to the treasury did not complete; not booked as a deposit");
            continue;
        }
        update_ids.push(t.update.update_id.as_str());
        node_ids.push(d.node_id);
        accounts.push(d.reason.as_deref());
        senders.push(d.sender.as_str());
        admins.push(d.instrument.admin.as_str());
        ids.push(d.instrument.id.as_str());
        amounts.push(d.amount.as_str());
        times.push(t.update.record_time);
    }
    if update_ids.is_empty() {
        return Ok(());
    }
    let params: [&(dyn ToSql + Sync); 8] = [
        &update_ids,
        &node_ids,
        &accounts,
        &senders,
        &admins,
        &ids,
        &amounts,
        &times,
    ];
    let row = tx
        .query_one(&stmts.deposits, &params)
        .await
        .map_err(|e| db_error(&e))?;
    out.deposits += row.get::<_, i64>(0) as u64;
    out.credited += row.get::<_, i64>(1) as u64;
    Ok(())
}

async fn apply_withdrawals(
    tx: &Transaction<'_>,
    stmts: &Statements,
    fresh: &[&TxItem],
    out: &mut BatchOutcome,
) -> Result<()> {
    // First transfer per withdrawal id in this batch; any further one is a
    // second payout for the same id and is flagged.
    let mut first: HashMap<&str, (&TxItem, &Transfer)> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    let mut repeated: Vec<String> = Vec::new();
    let mut failed_on_ledger: Vec<(&TxItem, &Transfer, &str)> = Vec::new();
    for (t, w) in transfers(fresh, Direction::Withdrawal) {
        let Some(id) = w.reason.as_deref() else {
            tracing::warn!(update_id = %t.update.update_id, node_id = w.node_id, amount = %w.amount,
                receiver = %w.receiver, "transfer from the treasury without a reason (withdrawal id); not attributed");
            continue;
        };
        if w.outcome == Outcome::Failed {
            failed_on_ledger.push((t, w, id));
            continue;
        }
        if first.contains_key(id) {
            repeated.push(id.to_string());
        } else {
            first.insert(id, (t, w));
            order.push(id);
        }
    }

    if !order.is_empty() {
        let ids: Vec<&str> = order.clone();
        let uids: Vec<&str> = order
            .iter()
            .map(|id| first[id].0.update.update_id.as_str())
            .collect();
        let times: Vec<DateTime<Utc>> = order
            .iter()
            .map(|id| first[id].0.update.record_time)
            .collect();
        let rows = tx
            .query(&stmts.withdrawals_complete, &[&ids, &uids, &times])
            .await
            .map_err(|e| db_error(&e))?;
        let mut unknown: Vec<&str> = Vec::new();
        for r in &rows {
            let id: String = r.get(0);
            let before: Option<String> = r.get(1);
            let completed: bool = r.get(2);
            let key = order.iter().copied().find(|k| *k == id).unwrap_or_default();
            match (before.as_deref(), completed) {
                (None, _) => unknown.push(key),
                (Some(prev), true) => {
                    if prev == "failed" {
                        tracing::warn!(withdrawal_id = %id, "withdrawal marked failed completed on the ledger; flagged for reconciliation");
                        out.flagged.push(id.clone());
                    }
                    out.completed.push(id);
                }
                (Some(prev), false) => {
                    tracing::error!(withdrawal_id = %id, status = prev, update_id = %first[key].0.update.update_id,
                        "a second transfer for an already {prev} withdrawal; flagged for reconciliation");
                    repeated.push(id);
                }
            }
        }
        if !unknown.is_empty() {
            let mut cols: [Vec<&str>; 6] = Default::default();
            let mut times = Vec::new();
            for id in &unknown {
                let (t, w) = first[id];
                cols[0].push(id);
                cols[1].push(&w.receiver);
                cols[2].push(&w.instrument.admin);
                cols[3].push(&w.instrument.id);
                cols[4].push(&w.amount);
                cols[5].push(&t.update.update_id);
                times.push(t.update.record_time);
            }
            let params: [&(dyn ToSql + Sync); 7] = [
                &cols[0], &cols[1], &cols[2], &cols[3], &cols[4], &cols[5], &times,
            ];
            let rows = tx
                .query(&stmts.withdrawals_recover, &params)
                .await
                .map_err(|e| db_error(&e))?;
            for r in rows {
                let id: String = r.get(0);
                tracing::warn!(withdrawal_id = %id, "withdrawal request unknown (lost?); re-created from the ledger as recovered, needs reconciliation");
                out.recovered.push(id);
            }
        }
    }

    for (t, w, id) in failed_on_ledger {
        match withdrawals::fail(
            tx,
            id,
            FAILED_ON_LEDGER_REASON,
            Some(&t.update.update_id),
            Some(t.update.record_time),
        )
        .await?
        {
            withdrawals::Transition::Changed(_) => out.failed.push(id.to_string()),
            withdrawals::Transition::Unchanged(prev) => {
                tracing::warn!(withdrawal_id = id, status = %prev.status,
                "transfer failed on the ledger for a withdrawal that is no longer in flight")
            }
            withdrawals::Transition::NotFound => {
                tracing::warn!(withdrawal_id = id, update_id = %t.update.update_id,
                amount = %w.amount, "transfer failed on the ledger for an unknown withdrawal; nothing to record")
            }
        }
    }

    if !repeated.is_empty() {
        tx.execute(&stmts.flag, &[&repeated])
            .await
            .map_err(|e| db_error(&e))?;
        out.flagged.extend(repeated);
    }
    Ok(())
}
