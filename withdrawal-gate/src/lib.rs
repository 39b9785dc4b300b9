//! `withdrawal-gate`: runbook B of the exchange integration — after the
//! Integration DB is restored from a backup, keep a customer from withdrawing
//! the same funds twice.
//!
//! Withdrawal requests written after the backup are gone, yet their transfers
//! may still commit on Canton. So: freeze new withdrawals ([`freeze`]),
//! compute tSafe ([`tsafe`]), wait until ingestion has ingested a record time
//! past it ([`wait`], with a [`reconcile`] report at the end), then thaw
//! ([`thaw`]). [`status`] shows it all. See `docs/withdrawal-gate.md`.
//!
//! * [`args`] / [`settings`]: the command line and its checked, typed values.
//! * [`connect`]: connection options (no password on argv).
//! * [`sql`]: the gate's own queries (locked freeze, the one-statement
//!   ingestion view, withdrawal look-ups).
//! * [`passage`]: checkpoint vs tSafe, heartbeat and state judgements.
//! * [`hook`]: `--stop-cmd` / `--start-cmd`.
//! * [`context`]: what every command shares, and audit rows.

pub mod args;
pub mod connect;
pub mod context;
pub mod freeze;
pub mod hook;
pub mod passage;
pub mod reconcile;
pub mod settings;
pub mod sql;
pub mod status;
pub mod thaw;
pub mod tsafe;
pub mod wait;

use crate::args::{Cli, Command};
use crate::context::Ctx;
use crate::settings::{
    FreezeSettings, Names, StatusSettings, ThawSettings, TtlSettings, WaitSettings,
};
use canton_dr_cli::{Error, ExitCode, OutputFormat, Printer, Result};

/// A command with its flags checked.
enum Checked {
    Freeze(FreezeSettings),
    Tsafe(TtlSettings),
    Wait(WaitSettings),
    Thaw(ThawSettings),
    Status(StatusSettings),
}

/// Runs `withdrawal-gate` as the command line asks; `format` is the resolved
/// output format.
pub fn run(cli: Cli, format: OutputFormat) -> Result<ExitCode> {
    // Everything the user typed is checked before the first connection.
    let options = connect::options(&cli.global)?;
    let names = Names::from_args(&cli.global)?;
    let checked = match &cli.command {
        Command::Freeze(a) => Checked::Freeze(FreezeSettings::from_args(a)?),
        Command::Tsafe(a) => Checked::Tsafe(TtlSettings::from_args(&a.ttl)?),
        Command::Wait(a) => Checked::Wait(WaitSettings::from_args(a)?),
        Command::Thaw(a) => Checked::Thaw(ThawSettings::from_args(a)?),
        Command::Status(a) => Checked::Status(StatusSettings::from_args(a)?),
    };
    let ctx = Ctx {
        options,
        names,
        actor: canton_dr_cli::logging::actor(),
        printer: Printer::new(format),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::usage(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        match &checked {
            Checked::Freeze(s) => freeze::run(&ctx, s).await,
            Checked::Tsafe(s) => status::run_tsafe(&ctx, s).await,
            Checked::Wait(s) => wait::run(&ctx, s).await,
            Checked::Thaw(s) => thaw::run(&ctx, s).await,
            Checked::Status(s) => status::run_status(&ctx, s).await,
        }
    })
}
