//! Writing a batch of streamed updates to the Integration DB in ONE
//! PostgreSQL transaction: the dedup rows, the effects of the new
//! transactions, the checkpoint and the progress `NOTIFY` commit together or
//! not at all (docs/integration-db.md, "Protocols").
//!
//! Per batch (docs/ingestion-contract.md, "Committing an update"):
//! 0. the contract's `fence`: the control row must still be at the
//!    generation the ingester acted on, and running; otherwise the batch is
//!    rolled back and the caller re-reads its orders;
//! 1. every transaction's update id goes into `ingested_updates` (the
//!    contract's `record_update`, for all rows at once); one already there is
//!    a duplicate and none of its effects are applied;
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
//! 6. the checkpoint moves to the last transaction (`checkpoint_transaction`)
//!    and on to an offset checkpoint after it (`checkpoint_offset`);
//! 7. `NOTIFY canton_dr_progress` (`notify_progress`).
//!
//! Every statement is prepared once per connection and set-based (arrays +
//! `unnest`), so a batch of a thousand updates costs about as many round
//! trips as a batch of one; independent statements are pipelined (sent
//! without waiting for each other's answers), dependent ones keep their order.

use crate::control::FENCE_SQL;
use crate::parse::{Direction, Outcome, Transfer};
use crate::update::{Item, TxItem};
use canton_dr_cli::Result;
use chrono::{DateTime, Utc};
use integration_db::checkpoint::Position;
use integration_db::error::db_error;
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

/// The contract's `checkpoint_transaction`.
const CHECKPOINT_TRANSACTION_SQL: &str = r#"
INSERT INTO ingestion_checkpoint AS cp
       (ingester, "offset", record_time, synchronizer_id, update_id, offset_epoch,
        last_tx_offset, last_tx_record_time, last_tx_synchronizer_id, last_tx_update_id, updated_at)
VALUES ($1::text, $3::bigint, $4::timestamptz, $5::text, $2::text, $6::integer,
        $3::bigint, $4::timestamptz, $5::text, $2::text, now())
ON CONFLICT (ingester) DO UPDATE
   SET "offset"                = EXCLUDED."offset",
       record_time             = EXCLUDED.record_time,
       synchronizer_id         = EXCLUDED.synchronizer_id,
       update_id               = EXCLUDED.update_id,
       offset_epoch            = EXCLUDED.offset_epoch,
       last_tx_offset          = EXCLUDED.last_tx_offset,
       last_tx_record_time     = EXCLUDED.last_tx_record_time,
       last_tx_synchronizer_id = EXCLUDED.last_tx_synchronizer_id,
       last_tx_update_id       = EXCLUDED.last_tx_update_id,
       updated_at              = now()"#;

/// The contract's `checkpoint_offset`.
const CHECKPOINT_OFFSET_SQL: &str = r#"
INSERT INTO ingestion_checkpoint AS cp
       (ingester, "offset", record_time, synchronizer_id, update_id, offset_epoch, updated_at)
VALUES ($1::text, $2::bigint, $3::timestamptz, $4::text, NULL, $5::integer, now())
ON CONFLICT (ingester) DO UPDATE
   SET "offset"        = EXCLUDED."offset",
       record_time     = EXCLUDED.record_time,
       synchronizer_id = EXCLUDED.synchronizer_id,
       update_id       = NULL,
       offset_epoch    = EXCLUDED.offset_epoch,
       updated_at      = now()"#;

/// The contract's `notify_progress`.
const NOTIFY_PROGRESS_SQL: &str = r#"
SELECT pg_notify('canton_dr_progress',
                 json_build_object('ingester', $1::text,
                                   'offset', $2::bigint,
                                   'recordTime', to_char($3::timestamptz AT TIME ZONE 'UTC',
                                                         'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                                   'offsetEpoch', $4::integer,
                                   'updateId', $5::text)::text)"#;

/// The contract's `record_update`, for many rows at once.
const DEDUP_SQL: &str = r#"
INSERT INTO ingested_updates (update_id, ingester, "offset", record_time, synchronizer_id, offset_epoch)
SELECT x.u, $1, x.o, x.t, x.s, $2
FROM unnest($3::text[], $4::int8[], $5::timestamptz[], $6::text[]) AS x(u, o, t, s)
ON CONFLICT (update_id) DO NOTHING
RETURNING update_id"#;

/// Holdings and deposits are plain inserts, without `ON CONFLICT`: they come
/// only from transactions whose update id was new in this very transaction
/// (step 1), and a contract id or (update id, node id) belongs to one
/// transaction, so a conflict would be a bug to stop at, not a duplicate to
/// skip. (`ON CONFLICT` costs PostgreSQL a second index descent and a WAL
/// record per row.)
const HOLDINGS_CREATED_SQL: &str = r#"
INSERT INTO holdings (contract_id, owner, instrument_admin, instrument_id, amount, created_update_id)
SELECT x.c, x.o, x.a, x.i, x.m::numeric(38,10), x.u
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS x(c, o, a, i, m, u)"#;

/// Marks spent holdings archived (the first archiving update wins). The
/// "not yet archived" test sits in the SET rather than the WHERE clause: there
/// it would let the planner scan the partial index of all active holdings
/// once per key instead of looking each key up.
const HOLDINGS_ARCHIVED_SQL: &str = r#"
UPDATE holdings h SET archived_update_id = coalesce(h.archived_update_id, x.u)
FROM unnest($1::text[], $2::text[]) AS x(c, u)
WHERE h.contract_id = x.c"#;

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

/// The withdrawals named, locked, with their status.
const WITHDRAWALS_STATUS_SQL: &str = r#"
SELECT w.withdrawal_id, w.status
FROM unnest($1::text[]) AS x(id) JOIN withdrawals w ON w.withdrawal_id = x.id
FOR UPDATE OF w"#;

/// Completes the withdrawals named (known, in flight or failed). One that had
/// failed and now completes on chain needs reconciliation (it may have been
/// refunded).
const WITHDRAWALS_COMPLETE_SQL: &str = r#"
UPDATE withdrawals w
SET status = 'completed', completed_update_id = x.u, completed_record_time = x.t,
    failure_reason = NULL, needs_reconciliation = w.needs_reconciliation OR w.status = 'failed',
    updated_at = now()
FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS x(id, u, t)
WHERE w.withdrawal_id = x.id AND w.status IN ('requested', 'submitted', 'failed')"#;

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

/// Set in every transaction of more than one update: plan each statement
/// for the table sizes of now. A plan cached while a catch-up's tables were
/// nearly empty would scan them whole once they are not; one update at a time
/// (tailing), the planning would cost more than it saves.
pub const CUSTOM_PLANS_SQL: &str = "SET LOCAL plan_cache_mode = force_custom_plan";

/// The batch statements, prepared once per connection.
#[derive(Debug, Clone)]
pub struct Statements {
    fence: Statement,
    dedup: Statement,
    checkpoint_transaction: Statement,
    checkpoint_offset: Statement,
    notify_progress: Statement,
    holdings_created: Statement,
    holdings_archived: Statement,
    deposits: Statement,
    withdrawals_status: Statement,
    withdrawals_complete: Statement,
    withdrawals_recover: Statement,
    withdrawals_expire: Statement,
    flag: Statement,
}

impl Statements {
    /// Prepares the statements on `client` (whose `search_path` is the schema).
    ///
    /// It also turns hash and merge joins off for the session: every join
    /// here looks a batch's keys up by index, and seeing a thousand keys the
    /// planner would rather hash the whole table once per batch (a catch-up
    /// then slows down as the tables grow). See also [`CUSTOM_PLANS_SQL`].
    pub async fn prepare(client: &Client) -> Result<Statements> {
        client
            .batch_execute("SET enable_hashjoin = off; SET enable_mergejoin = off")
            .await
            .map_err(|e| db_error(&e))?;
        let p =
            |sql: &'static str| async move { client.prepare(sql).await.map_err(|e| db_error(&e)) };
        Ok(Statements {
            fence: p(FENCE_SQL).await?,
            dedup: p(DEDUP_SQL).await?,
            checkpoint_transaction: p(CHECKPOINT_TRANSACTION_SQL).await?,
            checkpoint_offset: p(CHECKPOINT_OFFSET_SQL).await?,
            notify_progress: p(NOTIFY_PROGRESS_SQL).await?,
            holdings_created: p(HOLDINGS_CREATED_SQL).await?,
            holdings_archived: p(HOLDINGS_ARCHIVED_SQL).await?,
            deposits: p(DEPOSITS_SQL).await?,
            withdrawals_status: p(WITHDRAWALS_STATUS_SQL).await?,
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
    /// From which record time re-delivered update ids are expected (for logs:
    /// duplicates are skipped whatever their record time).
    pub dedup_from: Option<DateTime<Utc>>,
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
    /// The earliest record time among those duplicates.
    pub earliest_duplicate: Option<DateTime<Utc>>,
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
    let txs: Vec<&TxItem> = items
        .iter()
        .filter_map(|i| match i {
            Item::Transaction(t) => Some(t),
            Item::Position(_) => None,
        })
        .collect();
    let end = EndState::of(items, position);
    let tx = client.transaction().await.map_err(|e| db_error(&e))?;

    // 0–1. Plan mode, fence and dedup rows, pipelined (sent in this order):
    // a refused fence rolls the rows back with everything else.
    let ((), fence, new_ids) = futures::try_join!(
        async {
            if items.len() > 1 {
                tx.batch_execute(CUSTOM_PLANS_SQL)
                    .await
                    .map_err(|e| db_error(&e))?;
            }
            Ok(())
        },
        async {
            tx.query_opt(&stmts.fence, &[&target.ingester, &target.generation])
                .await
                .map_err(|e| db_error(&e))
                .map(|r| r.map(|r| r.get::<_, i32>(0)))
        },
        record_updates(&tx, stmts, target, &txs),
    )?;
    if fence != Some(target.offset_epoch) {
        tx.rollback().await.map_err(|e| db_error(&e))?;
        return Ok(None);
    }
    // New ids, each taken once: an update id twice in one batch is booked
    // at its first occurrence and skipped at the next like any duplicate.
    let mut unbooked = new_ids;
    let (fresh, repeated): (Vec<&TxItem>, Vec<&TxItem>) = txs
        .iter()
        .copied()
        .partition(|t| unbooked.remove(t.update.update_id.as_str()));
    let mut earliest_duplicate: Option<DateTime<Utc>> = None;
    for t in &repeated {
        tracing::debug!(update_id = %t.update.update_id, offset = t.update.offset, "already ingested; skipped");
        let rt = t.update.record_time;
        earliest_duplicate = Some(earliest_duplicate.map_or(rt, |e| e.min(rt)));
    }

    // 2–7. Effects, checkpoint and notification, pipelined; the expiry
    // sweep waits for the withdrawals it must not fail.
    let ((), (deposits, credited), (mut w, expired), (), ()) = futures::try_join!(
        apply_holdings(&tx, stmts, &fresh),
        apply_deposits(&tx, stmts, &fresh),
        async {
            let w = apply_withdrawals(&tx, stmts, &fresh).await?;
            let expired = expire(&tx, stmts, &end).await?;
            Ok((w, expired))
        },
        checkpoint(&tx, stmts, target, &txs, &end),
        notify(&tx, stmts, target, items, &end),
    )?;
    tx.commit().await.map_err(|e| db_error(&e))?;
    w.failed.extend(expired);
    Ok(Some(BatchOutcome {
        position: end.position,
        items: items.len(),
        new_transactions: fresh.len(),
        duplicates: txs.len() - fresh.len(),
        earliest_duplicate,
        deposits,
        credited,
        completed: w.completed,
        recovered: w.recovered,
        failed: w.failed,
        flagged: w.flagged,
    }))
}

/// Where a batch leaves the checkpoint.
struct EndState {
    /// The position after the batch.
    position: Option<Position>,
    /// An offset checkpoint after the last transaction, if any.
    trailing: Option<Position>,
    /// The last transaction's update id, unless an offset checkpoint followed it.
    last_update_id: Option<String>,
}

impl EndState {
    fn of(items: &[Item], before: Option<&Position>) -> EndState {
        let mut position = before.cloned();
        let mut trailing = None;
        let mut last_update_id = None;
        for item in items {
            match item {
                Item::Transaction(t) => {
                    position = Some(Position {
                        offset: t.update.offset,
                        record_time: t.update.record_time,
                        synchronizer_id: t.update.synchronizer_id.clone(),
                    });
                    last_update_id = Some(t.update.update_id.clone());
                    trailing = None;
                }
                Item::Position(p) => {
                    if let Some(next) = p.resolve(position.as_ref()) {
                        position = Some(next.clone());
                        trailing = Some(next);
                        last_update_id = None;
                    }
                }
            }
        }
        EndState {
            position,
            trailing,
            last_update_id,
        }
    }
}

/// `record_update` for every transaction; the ids that were new.
async fn record_updates<'a>(
    tx: &Transaction<'_>,
    stmts: &Statements,
    target: &Target,
    txs: &[&'a TxItem],
) -> Result<HashSet<&'a str>> {
    if txs.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<&str> = txs.iter().map(|t| t.update.update_id.as_str()).collect();
    let offsets: Vec<i64> = txs.iter().map(|t| t.update.offset).collect();
    let times: Vec<DateTime<Utc>> = txs.iter().map(|t| t.update.record_time).collect();
    let syncs: Vec<&str> = txs
        .iter()
        .map(|t| t.update.synchronizer_id.as_str())
        .collect();
    let params: [&(dyn ToSql + Sync); 6] = [
        &target.ingester,
        &target.offset_epoch,
        &ids,
        &offsets,
        &times,
        &syncs,
    ];
    let rows = tx
        .query(&stmts.dedup, &params)
        .await
        .map_err(|e| db_error(&e))?;
    let inserted: HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
    Ok(txs
        .iter()
        .map(|t| t.update.update_id.as_str())
        .filter(|id| inserted.contains(*id))
        .collect())
}

/// `checkpoint_transaction` for the last transaction, then `checkpoint_offset`
/// for an offset checkpoint after it.
async fn checkpoint(
    tx: &Transaction<'_>,
    stmts: &Statements,
    target: &Target,
    txs: &[&TxItem],
    end: &EndState,
) -> Result<()> {
    if let Some(last) = txs.last() {
        let u = &last.update;
        tx.execute(
            &stmts.checkpoint_transaction,
            &[
                &target.ingester,
                &u.update_id,
                &u.offset,
                &u.record_time,
                &u.synchronizer_id,
                &target.offset_epoch,
            ],
        )
        .await
        .map_err(|e| db_error(&e))?;
    }
    if let Some(p) = &end.trailing {
        tx.execute(
            &stmts.checkpoint_offset,
            &[
                &target.ingester,
                &p.offset,
                &p.record_time,
                &p.synchronizer_id,
                &target.offset_epoch,
            ],
        )
        .await
        .map_err(|e| db_error(&e))?;
    }
    Ok(())
}

/// Step 5: in-flight withdrawals whose `trec_tgt` is below the batch's last
/// record time can no longer commit.
async fn expire(tx: &Transaction<'_>, stmts: &Statements, end: &EndState) -> Result<Vec<String>> {
    let Some(p) = &end.position else {
        return Ok(Vec::new());
    };
    let rows = tx
        .query(
            &stmts.withdrawals_expire,
            &[&p.record_time, &EXPIRED_REASON, &end.last_update_id],
        )
        .await
        .map_err(|e| db_error(&e))?;
    let expired: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    if !expired.is_empty() {
        tracing::info!(
            "{} withdrawal(s) failed, trec_tgt passed at record time {}: {}",
            expired.len(),
            canton_dr_cli::time::format_record_time(p.record_time),
            sample(&expired)
        );
    }
    Ok(expired)
}

/// Step 7: `notify_progress` with the position after the batch.
async fn notify(
    tx: &Transaction<'_>,
    stmts: &Statements,
    target: &Target,
    items: &[Item],
    end: &EndState,
) -> Result<()> {
    let Some(p) = end.position.as_ref().filter(|_| !items.is_empty()) else {
        return Ok(());
    };
    tx.execute(
        &stmts.notify_progress,
        &[
            &target.ingester,
            &p.offset,
            &p.record_time,
            &target.offset_epoch,
            &end.last_update_id,
        ],
    )
    .await
    .map_err(|e| db_error(&e))?;
    Ok(())
}

/// The first few ids of a list, for one log line.
fn sample(ids: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut s = ids
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > SHOWN {
        s.push_str(&format!(" (+{} more)", ids.len() - SHOWN));
    }
    s
}

/// Step 2: treasury holdings created, then spent.
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

/// Step 3: deposits; returns (recorded, credited).
async fn apply_deposits(
    tx: &Transaction<'_>,
    stmts: &Statements,
    fresh: &[&TxItem],
) -> Result<(u64, u64)> {
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
        return Ok((0, 0));
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
    Ok((row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64))
}

/// What became of a batch's withdrawals.
#[derive(Debug, Default)]
struct WithdrawalsOutcome {
    completed: Vec<String>,
    recovered: Vec<String>,
    failed: Vec<String>,
    flagged: Vec<String>,
}

/// Step 4: withdrawals completed, recovered, failed on the ledger, flagged.
async fn apply_withdrawals(
    tx: &Transaction<'_>,
    stmts: &Statements,
    fresh: &[&TxItem],
) -> Result<WithdrawalsOutcome> {
    let mut out = WithdrawalsOutcome::default();
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
        let rows = tx
            .query(&stmts.withdrawals_status, &[&order])
            .await
            .map_err(|e| db_error(&e))?;
        let status: HashMap<String, String> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let mut unknown: Vec<&str> = Vec::new();
        let mut complete: Vec<&str> = Vec::new();
        for id in &order {
            match status.get(*id).map(String::as_str) {
                None => unknown.push(id),
                Some("requested" | "submitted") => complete.push(id),
                Some("failed") => {
                    tracing::warn!(withdrawal_id = %id, "withdrawal marked failed completed on the ledger; flagged for reconciliation");
                    out.flagged.push(id.to_string());
                    complete.push(id);
                }
                Some(prev) => {
                    tracing::error!(withdrawal_id = %id, status = prev, update_id = %first[id].0.update.update_id,
                        "a second transfer for an already {prev} withdrawal; flagged for reconciliation");
                    repeated.push(id.to_string());
                }
            }
        }
        if !complete.is_empty() {
            let uids: Vec<&str> = complete
                .iter()
                .map(|id| first[id].0.update.update_id.as_str())
                .collect();
            let times: Vec<DateTime<Utc>> = complete
                .iter()
                .map(|id| first[id].0.update.record_time)
                .collect();
            tx.execute(&stmts.withdrawals_complete, &[&complete, &uids, &times])
                .await
                .map_err(|e| db_error(&e))?;
            out.completed
                .extend(complete.iter().map(|id| id.to_string()));
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
            out.recovered
                .extend(rows.iter().map(|r| r.get::<_, String>(0)));
            if !out.recovered.is_empty() {
                tracing::warn!(
                    "{} withdrawal request(s) unknown (lost?), re-created from the ledger as recovered, needs reconciliation: {}",
                    out.recovered.len(),
                    sample(&out.recovered)
                );
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
    Ok(out)
}
