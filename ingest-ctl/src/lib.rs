//! `ingest-ctl`: steers Tx History Ingestion through the control contract in
//! the Integration DB (`docs/ingestion-contract.md`): runbook A steps 1
//! (`stop --wait`), 2 (`last`), 6 (`set-offset`) and 7 (`start --wait`).
//!
//! * [`args`]: the command line.
//! * [`connect`]: connection options, the password-on-argv refusal.
//! * [`queries`]: the named SQL behind `last` and the checkpoint reads
//!   (replaceable with `--queries FILE`).
//! * [`state`]: a [`state::Snapshot`] of an ingester and what follows from it.
//! * [`wait`]: LISTEN/NOTIFY + polling waits that survive a database restart.
//! * [`ledger`]: the node's ledger end.
//! * [`hooks`]: `--stop-cmd` / `--start-cmd`.
//! * [`audit`]: audit rows.
//! * [`commands`]: one module per subcommand.

pub mod args;
pub mod audit;
pub mod commands;
pub mod connect;
pub mod hooks;
pub mod ledger;
pub mod queries;
pub mod state;
pub mod wait;

use args::{Cli, Command};
use canton_dr_cli::{Error, ExitCode, OutputFormat, Printer, Result};
use integration_db::ConnectOptions;
use queries::QuerySet;
use std::time::Duration;

/// What every command needs: where the database is, which ingester, which
/// queries, how to print.
#[derive(Debug)]
pub struct Ctx {
    /// Connection options (URL or PG* environment, schema).
    pub options: ConnectOptions,
    /// The ingester's name.
    pub ingester: String,
    /// The named SQL statements.
    pub queries: QuerySet,
    /// Heartbeats older than this mean no live ingester.
    pub dead_after: Duration,
    /// Where results go.
    pub printer: Printer,
}

/// Runs the parsed command line; the exit code on success, an error (with its
/// exit code) otherwise.
pub fn run(cli: Cli, format: OutputFormat) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::transient(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(dispatch(cli, format))
}

async fn dispatch(cli: Cli, format: OutputFormat) -> Result<ExitCode> {
    connect::check_ingester_name(&cli.global.ingester)?;
    let ctx = Ctx {
        options: cli.global.db.connect_options(connect::APPLICATION_NAME)?,
        ingester: cli.global.ingester.clone(),
        queries: QuerySet::load(cli.global.queries.as_deref())?,
        dead_after: cli.global.dead_after,
        printer: Printer::new(format),
    };
    match cli.command {
        Command::Migrate(a) => commands::migrate::run(&ctx, &a).await,
        Command::Status(a) => commands::status::run(&ctx, &a).await,
        Command::Stop(a) => commands::stop::run(&ctx, &a).await,
        Command::Last => commands::last::run(&ctx).await,
        Command::SetOffset(a) => commands::set_offset::run(&ctx, &a).await,
        Command::Start(a) => commands::start::run(&ctx, &a).await,
    }
}
