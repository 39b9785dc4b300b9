//! The command line of `withdrawal-gate`; every flag is also read from an
//! environment variable. The `--help` text is the user documentation.
//!
//! Durations and record times are taken as text and parsed by
//! [`canton_dr_cli::time`] (see [`crate::settings`]), so that a bad value gives
//! the same one-line error with a hint, in text and JSON mode alike.

use canton_dr_cli::OutputFormat;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use integration_db::args::DbArgs;
use integration_db::gate::DEFAULT_GATE;

const LONG_ABOUT: &str = "\
Runbook B of the exchange integration (restore of the Canton Integration DB): \
freeze new withdrawals, compute tSafe, wait until Tx History Ingestion has ingested \
a record time past tSafe, then thaw — so that a withdrawal request lost in the restore \
cannot be paid out twice.

    withdrawal-gate freeze --reason 'restore INC-42' --ttl 1h --stop-cmd 'systemctl stop wd-automation'
    # ... restore the Integration DB ...
    withdrawal-gate wait --timeout 3h
    withdrawal-gate thaw --start-cmd 'systemctl start wd-automation'

tSafe is the latest of: the largest trecTgt of in-flight (requested, submitted) withdrawals \
in the DB; frozen_at + ttl + skew margin (covers requests the restore lost: none was created \
after the freeze); the tSafe an earlier `wait` of this freeze recorded. The gate passes when the \
ingestion checkpoint's record time (offset checkpoints count) is strictly later than tSafe.

Output: one JSON object per result (`wait` streams NDJSON events: waiting, progress, warning, \
reconciliation, result), or text on a terminal. Every change writes an audit_log row; \
--dry-run prints the same shape and changes nothing but its own audit row (dry_run = true).

Exit codes: 0 ok; 1 a --stop-cmd/--start-cmd hook failed (the gate change itself is done); \
2 bad input or configuration; 3 database unreachable after retries; 4 wait timed out; \
5 refused for safety (thaw before tSafe is passed, wait on a gate that is not frozen).";

/// Freezes withdrawals, waits until ingestion passes tSafe, and thaws (runbook B).
#[derive(Debug, Clone, Parser)]
#[command(name = "withdrawal-gate", version, about, long_about = LONG_ABOUT)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the gate and the ingester live.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Where the Integration DB is (`--db-url`, `--schema`).
    #[command(flatten)]
    pub db: DbArgs,

    /// Name of the Tx History Ingestion instance whose checkpoint counts.
    #[arg(
        long,
        global = true,
        env = "INGESTER_NAME",
        value_name = "NAME",
        default_value = "tx-ingest"
    )]
    pub ingester: String,

    /// The gate (row of withdrawal_gate) Exchange Internal Systems check.
    #[arg(
        long,
        global = true,
        env = "WITHDRAWAL_GATE_NAME",
        value_name = "NAME",
        default_value = DEFAULT_GATE
    )]
    pub gate: String,

    /// Output format: json (default when stdout is not a terminal) or text.
    #[arg(long, global = true, env = "CANTON_DR_OUTPUT")]
    pub output: Option<OutputFormat>,
}

/// The commands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Close the gate: Exchange Internal Systems stop creating withdrawals (runbook B1).
    ///
    /// Waits for transactions that are writing withdrawals to finish, then records
    /// frozen_at (the database clock after that wait), who and why. Idempotent: a second
    /// freeze keeps the first freeze time, reason and ttl. --stop-cmd runs after the gate
    /// is closed, on every run (so a rerun retries a hook that failed).
    Freeze(FreezeArgs),
    /// Print tSafe: the largest trecTgt of in-flight withdrawals and frozen_at + ttl, and
    /// which one wins.
    Tsafe(TsafeArgs),
    /// Wait until the ingestion checkpoint's record time is past tSafe (runbook B3), then
    /// print a reconciliation report of the withdrawals that were in flight.
    ///
    /// Listens for the ingester's progress notifications and polls once per --poll-interval
    /// as a fallback (one query per interval while idle); survives a PostgreSQL restart.
    /// NDJSON events: waiting, progress, warning, reconciliation, result. Exit 4 at --timeout.
    Wait(WaitArgs),
    /// Open the gate again (runbook B4). Refused (exit 5) until the ingestion checkpoint is
    /// past tSafe, unless --force with a --reason.
    Thaw(ThawArgs),
    /// Show the gate, tSafe, the ingester's checkpoint and heartbeat, and whether thaw is
    /// allowed.
    Status(StatusArgs),
}

/// How tSafe's ttl bound is computed.
#[derive(Debug, Clone, Args)]
pub struct TtlArgs {
    /// Withdrawal request time-to-live (trecTgt = request time + ttl), e.g. 1h. Default: the
    /// ttl recorded by `freeze --ttl`.
    #[arg(long, env = "WITHDRAWAL_TTL", value_name = "DURATION")]
    pub ttl: Option<String>,

    /// Added to frozen_at + ttl for clock differences between Exchange Internal Systems
    /// (which compute trecTgt), the database (frozen_at) and the synchronizer (record times).
    #[arg(
        long,
        env = "WITHDRAWAL_GATE_SKEW_MARGIN",
        value_name = "DURATION",
        default_value = "1s"
    )]
    pub skew_margin: String,
}

/// Which synchronizer's record times count.
#[derive(Debug, Clone, Args)]
pub struct SynchronizerArg {
    /// The treasury's synchronizer: only a checkpoint on it counts. Default: the
    /// synchronizer of the ingester's checkpoint when the command starts.
    #[arg(long, env = "CANTON_SYNCHRONIZER_ID", value_name = "ID")]
    pub synchronizer_id: Option<String>,
}

/// `freeze`.
#[derive(Debug, Clone, Args)]
pub struct FreezeArgs {
    /// Why (recorded in the gate and the audit log).
    #[arg(long, env = "WITHDRAWAL_GATE_FREEZE_REASON", value_name = "TEXT")]
    pub reason: String,

    /// Withdrawal request time-to-live to record with the freeze (tSafe uses frozen_at + ttl).
    #[arg(long, env = "WITHDRAWAL_TTL", value_name = "DURATION")]
    pub ttl: Option<String>,

    /// Shell command run (sh -c) after the gate is closed, e.g. to stop Withdrawal Automation.
    /// Its output goes to stderr; a non-zero exit makes freeze exit 1.
    #[arg(long, env = "WITHDRAWAL_GATE_STOP_CMD", value_name = "CMD")]
    pub stop_cmd: Option<String>,

    /// Hook and lock timeouts.
    #[command(flatten)]
    pub timeouts: MutationTimeouts,

    /// Show what would change; change nothing (records a dry-run audit row).
    #[arg(long, env = "WITHDRAWAL_GATE_DRY_RUN")]
    pub dry_run: bool,
}

/// Timeouts of mutating commands.
#[derive(Debug, Clone, Args)]
pub struct MutationTimeouts {
    /// How long a --stop-cmd / --start-cmd hook may run before it is killed.
    #[arg(
        long,
        env = "WITHDRAWAL_GATE_HOOK_TIMEOUT",
        value_name = "DURATION",
        default_value = "10m"
    )]
    pub hook_timeout: String,

    /// How long freeze waits for transactions that are writing withdrawals.
    #[arg(
        long,
        env = "WITHDRAWAL_GATE_LOCK_TIMEOUT",
        value_name = "DURATION",
        default_value = "30s"
    )]
    pub lock_timeout: String,
}

/// `tsafe`.
#[derive(Debug, Clone, Args)]
pub struct TsafeArgs {
    /// ttl bound.
    #[command(flatten)]
    pub ttl: TtlArgs,
}

/// `wait`.
#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// Wait for this record time instead of computing tSafe (RFC 3339, at most 6 fractional
    /// digits). Also works on a gate that is not frozen.
    #[arg(long, env = "WITHDRAWAL_GATE_TSAFE", value_name = "RFC3339")]
    pub tsafe: Option<String>,

    /// ttl bound (ignored with --tsafe).
    #[command(flatten)]
    pub ttl: TtlArgs,

    /// Give up (exit 4) after this long.
    #[arg(
        long,
        env = "WITHDRAWAL_GATE_TIMEOUT",
        value_name = "DURATION",
        default_value = "6h"
    )]
    pub timeout: String,

    /// Synchronizer.
    #[command(flatten)]
    pub synchronizer: SynchronizerArg,

    /// Poll the checkpoint this often when no notification arrives (the fallback; one query
    /// per interval while idle).
    #[arg(
        long,
        env = "WITHDRAWAL_GATE_POLL_INTERVAL",
        value_name = "DURATION",
        default_value = "5s"
    )]
    pub poll_interval: String,

    /// Do not LISTEN for progress notifications: poll only (for networks that drop idle
    /// connections, and for benchmarks).
    #[arg(long, env = "WITHDRAWAL_GATE_NO_LISTEN")]
    pub no_listen: bool,

    /// Warn when the ingester's heartbeat is older than this.
    #[arg(
        long,
        env = "WITHDRAWAL_GATE_HEARTBEAT_STALE_AFTER",
        value_name = "DURATION",
        default_value = "60s"
    )]
    pub heartbeat_stale_after: String,

    /// Compute tSafe and check the checkpoint once; record nothing, do not wait.
    #[arg(long, env = "WITHDRAWAL_GATE_DRY_RUN")]
    pub dry_run: bool,
}

/// `thaw`.
#[derive(Debug, Clone, Args)]
pub struct ThawArgs {
    /// Thaw although the checkpoint has not passed tSafe. Needs --reason, and --yes when
    /// stdin is not a terminal. Recorded in the gate and the audit log.
    #[arg(long, env = "WITHDRAWAL_GATE_FORCE")]
    pub force: bool,

    /// Why (required with --force).
    #[arg(long, env = "WITHDRAWAL_GATE_THAW_REASON", value_name = "TEXT")]
    pub reason: Option<String>,

    /// Confirm --force without a prompt.
    #[arg(long, env = "WITHDRAWAL_GATE_YES")]
    pub yes: bool,

    /// Shell command run (sh -c) after the gate is open, e.g. to start Withdrawal Automation.
    /// Its output goes to stderr; a non-zero exit makes thaw exit 1.
    #[arg(long, env = "WITHDRAWAL_GATE_START_CMD", value_name = "CMD")]
    pub start_cmd: Option<String>,

    /// Hook timeout (the lock timeout is unused here).
    #[command(flatten)]
    pub timeouts: MutationTimeouts,

    /// ttl bound.
    #[command(flatten)]
    pub ttl: TtlArgs,

    /// Synchronizer.
    #[command(flatten)]
    pub synchronizer: SynchronizerArg,

    /// Show what would happen (including a refusal); change nothing.
    #[arg(long, env = "WITHDRAWAL_GATE_DRY_RUN")]
    pub dry_run: bool,
}

/// `status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// ttl bound.
    #[command(flatten)]
    pub ttl: TtlArgs,

    /// Synchronizer.
    #[command(flatten)]
    pub synchronizer: SynchronizerArg,

    /// Report the ingester's heartbeat as stale when older than this.
    #[arg(
        long,
        env = "WITHDRAWAL_GATE_HEARTBEAT_STALE_AFTER",
        value_name = "DURATION",
        default_value = "60s"
    )]
    pub heartbeat_stale_after: String,
}

/// Parses the process arguments (exits with clap's usage error on bad syntax).
pub fn parse() -> Cli {
    let matches = Cli::command().get_matches();
    match from_matches(&matches) {
        Ok(parsed) => parsed,
        Err(e) => e.exit(),
    }
}

/// Parses `args` (for tests).
pub fn try_parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = Cli::command().try_get_matches_from(args)?;
    from_matches(&matches)
}

fn from_matches(matches: &ArgMatches) -> Result<Cli, clap::Error> {
    let mut cli = Cli::from_arg_matches(matches)?;
    // Whether --db-url was typed on argv (where a password must not be).
    cli.global.db.note_source(matches);
    Ok(cli)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn db_url_origin_is_tracked_before_and_after_the_subcommand() {
        let cli = try_parse_from(["wg", "--db-url", "postgresql://a@h/db", "status"]).unwrap();
        assert!(cli.global.db.url_on_argv());
        let cli = try_parse_from(["wg", "status", "--db-url", "postgresql://a@h/db"]).unwrap();
        assert!(cli.global.db.url_on_argv());
        assert_eq!(cli.global.db.db_url.as_deref(), Some("postgresql://a@h/db"));
        let cli = try_parse_from(["wg", "status"]).unwrap();
        assert!(!cli.global.db.url_on_argv());
        assert_eq!(cli.global.gate, "cn-withdrawals");
    }

    #[test]
    fn freeze_needs_a_reason() {
        assert!(try_parse_from(["wg", "freeze"]).is_err());
        let cli = try_parse_from(["wg", "freeze", "--reason", "restore"]).unwrap();
        let Command::Freeze(f) = cli.command else {
            panic!("freeze expected")
        };
        assert_eq!(f.reason, "restore");
        assert!(!f.dry_run);
    }

    #[test]
    fn defaults() {
        let cli = try_parse_from(["wg", "wait"]).unwrap();
        let Command::Wait(w) = cli.command else {
            panic!("wait expected")
        };
        assert_eq!(w.timeout, "6h");
        assert_eq!(w.poll_interval, "5s");
        assert_eq!(w.ttl.skew_margin, "1s");
        assert!(!w.no_listen);
    }
}
