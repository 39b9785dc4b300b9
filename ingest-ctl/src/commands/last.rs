//! `ingest-ctl last` (runbook A step 2): the last ingested transaction,
//! `{"type":"last","recordTime","synchronizerId","offset","updateId","epoch"}`:
//! the input `offset-lookup -` reads. Never an offset checkpoint: Canton
//! 3.4.9+ answers a lookup only for an event's exact record time.

use crate::Ctx;
use crate::queries::{LastTransaction, Origin};
use crate::state;
use canton_dr_cli::time::format_record_time;
use canton_dr_cli::{Error, ExitCode, Result};
use integration_db::Db;
use serde::Serialize;

/// What `last` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastReport {
    /// Always `"last"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The transaction.
    #[serde(flatten)]
    pub transaction: LastTransaction,
}

impl LastReport {
    fn to_text(&self) -> String {
        let t = &self.transaction;
        format!(
            "last transaction {} at {} on {}, offset {} (epoch {})",
            t.update_id,
            format_record_time(t.record_time),
            t.synchronizer_id,
            t.offset,
            t.epoch
        )
    }
}

/// Runs `last`. Exit 1 when the ingester has not ingested a transaction.
pub async fn run(ctx: &Ctx) -> Result<ExitCode> {
    // A `last` statement of the exchange's own may not need our schema at all.
    let builtin = ctx.queries.last_query().origin == Origin::Builtin;
    let db = if builtin {
        let db = Db::connect_ready(&ctx.options).await?;
        if !state::exists(db.client(), &ctx.ingester).await? {
            return Err(state::unknown_ingester(db.client(), &ctx.ingester).await);
        }
        db
    } else {
        Db::connect(&ctx.options).await?
    };
    let Some(transaction) = ctx.queries.last(db.client(), &ctx.ingester).await? else {
        return Err(Error::condition(format!(
            "ingester \"{}\" has not ingested a transaction yet",
            ctx.ingester
        ))
        .with_hint("there is no tRecovery to look up; check --ingester and `ingest-ctl status`"));
    };
    let report = LastReport {
        kind: "last",
        transaction,
    };
    ctx.printer.result(&report, LastReport::to_text)?;
    Ok(ExitCode::Ok)
}
