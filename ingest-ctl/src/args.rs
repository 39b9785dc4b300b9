//! The command line of `ingest-ctl`; every flag is also read from an
//! environment variable. The `--help` text is the user documentation.

use canton_client::ConnectionArgs;
use canton_dr_cli::OutputFormat;
use canton_dr_cli::time::duration_arg;
use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use integration_db::args::DbArgs;
use std::path::PathBuf;
use std::time::Duration;

/// The ingester name used when neither `--ingester` nor `INGESTER_NAME` is given.
pub const DEFAULT_INGESTER: &str = "tx-ingest";

const LONG_ABOUT: &str = "\
Steers Tx History Ingestion through the control contract in the Integration DB \
(docs/ingestion-contract.md): stop it and know it stopped, read the last ingested \
transaction, set where it resumes, start it and know it caught up (runbook A steps 1, 2, 6, 7).

    ingest-ctl stop --wait
    ingest-ctl last | offset-lookup - | ingest-ctl set-offset -
    ingest-ctl start --wait --caught-up --ledger-api node:5001

Output: one JSON object per result on stdout (--output json, the default when stdout is not \
a terminal), with a \"type\" field; waits also print {\"type\":\"progress\"} lines as the state \
changes. Logs and errors go to stderr.

The database: --db-url (or INTEGRATION_DB_URL) and/or the PG* environment (PGHOST, PGPORT, \
PGUSER, PGDATABASE, PGPASSWORD, PGSSLMODE, PGSSLROOTCERT). A password is never accepted on \
the command line: use PGPASSWORD, or put the whole URL in INTEGRATION_DB_URL.

Every mutating command (migrate, stop, start, set-offset) is idempotent, has --dry-run (same \
output shape, \"dryRun\": true) and writes a row to audit_log.

Exit codes: 0 ok; 1 `last` found no ingested transaction; 2 usage or configuration error, bad \
input, unknown ingester, missing schema; 3 database or node unreachable after retries, a hook \
command failed; 4 a wait timed out; 5 refused for safety (set-offset while ingestion is not \
stopped, or beyond the node's ledger end).";

/// Steers Tx History Ingestion: stop, start, resume offset and last-ingested position.
#[derive(Debug, Parser)]
#[command(name = "ingest-ctl", version, about, long_about = LONG_ABOUT)]
pub struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub global: GlobalArgs,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses `std::env::args_os()` (exits with clap's message on a usage error).
    pub fn parse_args() -> Cli {
        Self::parse_from_iter(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// Parses `args` (the first item is the program name), recording where
    /// `--db-url` came from.
    pub fn parse_from_iter<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Cli::command().try_get_matches_from(args)?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        cli.global.db.note_source(&matches);
        Ok(cli)
    }
}

/// Where the Integration DB is, which ingester, and how to print.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The Integration DB: --db-url and --schema.
    #[command(flatten)]
    pub db: DbArgs,

    /// Name of the ingester to steer (its row in ingestion_control).
    #[arg(long, global = true, env = "INGESTER_NAME", value_name = "NAME",
          default_value = DEFAULT_INGESTER)]
    pub ingester: String,

    /// File of named SQL statements (`-- name: last`, `-- name: checkpoint`) that point `last`,
    /// `status` and the checkpoint reads at the exchange's own tables
    /// (see docs/ingestion-contract.md).
    #[arg(long, global = true, env = "INGEST_CTL_QUERIES", value_name = "FILE")]
    pub queries: Option<PathBuf>,

    /// An ingester whose last heartbeat is older than this counts as not running (no live
    /// ingester): `stop --wait` then succeeds and says so, and `set-offset` is allowed.
    #[arg(long, global = true, env = "INGEST_CTL_DEAD_AFTER", value_name = "DURATION",
          default_value = "30s", value_parser = duration_arg)]
    pub dead_after: Duration,

    /// Output format: json (default when stdout is not a terminal) or text.
    #[arg(long, global = true, env = "CANTON_DR_OUTPUT")]
    pub output: Option<OutputFormat>,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Create or upgrade the Integration DB schema (safe to run twice).
    Migrate(MigrateArgs),
    /// Desired and actual state, acknowledged generation, heartbeat age, checkpoint, and the lag
    /// behind the node's ledger end (with --ledger-api).
    Status(StatusArgs),
    /// Ask the ingester to stop; with --wait, return only once it acknowledged (or no live
    /// ingester exists, which the output says). Without --wait the request is recorded and
    /// `acknowledged` in the output tells whether it was acted on yet.
    Stop(StopArgs),
    /// The last ingested transaction: {"recordTime","synchronizerId","offset","updateId","epoch"},
    /// the input of `offset-lookup -`.
    Last,
    /// Set where ingestion resumes (exclusive: it continues after OFFSET) in a new offset epoch.
    /// Refused unless ingestion is stopped.
    SetOffset(SetOffsetArgs),
    /// Ask the ingester to run; with --wait, until it acknowledged; with --caught-up, until its
    /// checkpoint reached the node's ledger end.
    Start(StartArgs),
}

/// `ingest-ctl migrate`.
#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// Show the migrations that would be applied, change nothing.
    #[arg(long, env = "INGEST_CTL_DRY_RUN")]
    pub dry_run: bool,
}

/// The node's ledger API, for its ledger end.
#[derive(Debug, Clone, Args)]
pub struct LedgerArgs {
    /// Ledger API of the participant (HOST:PORT, http:// or https://), to read its ledger end.
    #[arg(
        long = "ledger-api",
        env = "CANTON_LEDGER_API",
        value_name = "ENDPOINT"
    )]
    pub ledger_api: Option<String>,

    /// TLS, token and timeouts of the ledger API connection.
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// How long and how often to wait.
#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// Wait until the ingester acknowledged.
    #[arg(long, env = "INGEST_CTL_WAIT")]
    pub wait: bool,

    /// Give up waiting after this long (exit 4).
    #[arg(long, env = "INGEST_CTL_TIMEOUT", value_name = "DURATION",
          default_value = "5m", value_parser = duration_arg)]
    pub timeout: Duration,

    /// Re-read the state at least this often while waiting (notifications usually wake the
    /// wait sooner).
    #[arg(long, env = "INGEST_CTL_POLL_INTERVAL", value_name = "DURATION",
          default_value = "1s", value_parser = duration_arg)]
    pub poll_interval: Duration,
}

/// `ingest-ctl status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Ledger API (for the lag).
    #[command(flatten)]
    pub ledger: LedgerArgs,
}

/// `ingest-ctl stop`.
#[derive(Debug, Clone, Args)]
pub struct StopArgs {
    /// Waiting.
    #[command(flatten)]
    pub wait: WaitArgs,

    /// Shell command run after the stop is recorded, e.g. to scale the ingester's deployment
    /// down (`sh -c`; INGESTER_NAME is set; its output goes to stderr).
    #[arg(long, env = "INGEST_CTL_STOP_CMD", value_name = "CMD")]
    pub stop_cmd: Option<String>,

    /// Check and show what would change, change nothing, run no hook.
    #[arg(long, env = "INGEST_CTL_DRY_RUN")]
    pub dry_run: bool,
}

/// `ingest-ctl set-offset`.
#[derive(Debug, Clone, Args)]
#[command(allow_negative_numbers = true)]
pub struct SetOffsetArgs {
    /// The ledger offset to resume after, or `-` to read offset-lookup's JSON from stdin.
    #[arg(value_name = "OFFSET|-", allow_hyphen_values = true)]
    pub offset: String,

    /// Skip updates whose update id was already ingested, from this record time on (record
    /// times not unique: ACS import, party migration, repair). With `-`, taken from the input's
    /// timestamp when offset-lookup ran with --non-unique-record-times.
    #[arg(long, env = "INGEST_CTL_DEDUP_FROM", value_name = "RFC3339")]
    pub dedup_from: Option<String>,

    /// Ledger API: refuse an offset beyond the node's ledger end.
    #[command(flatten)]
    pub ledger: LedgerArgs,

    /// Check and show what would change, change nothing.
    #[arg(long, env = "INGEST_CTL_DRY_RUN")]
    pub dry_run: bool,
}

/// `ingest-ctl start`.
#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    /// Waiting.
    #[command(flatten)]
    pub wait: WaitArgs,

    /// Also wait until the checkpoint (in the current offset epoch) reached the node's ledger
    /// end as read when the command began. Needs --ledger-api; implies --wait.
    #[arg(long, env = "INGEST_CTL_CAUGHT_UP")]
    pub caught_up: bool,

    /// Ledger API (for --caught-up).
    #[command(flatten)]
    pub ledger: LedgerArgs,

    /// Shell command run after the start is recorded, e.g. to scale the ingester's deployment
    /// up (`sh -c`; INGESTER_NAME is set; its output goes to stderr).
    #[arg(long, env = "INGEST_CTL_START_CMD", value_name = "CMD")]
    pub start_cmd: Option<String>,

    /// Check and show what would change, change nothing, run no hook.
    #[arg(long, env = "INGEST_CTL_DRY_RUN")]
    pub dry_run: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_url_source_is_recorded_wherever_it_is_written() {
        let before =
            Cli::parse_from_iter(["ingest-ctl", "--db-url", "postgresql://a@h/d", "last"]).unwrap();
        assert!(before.global.db.url_on_argv());
        let after =
            Cli::parse_from_iter(["ingest-ctl", "last", "--db-url", "postgresql://a@h/d"]).unwrap();
        assert!(after.global.db.url_on_argv());
        assert_eq!(
            after.global.db.db_url.as_deref(),
            Some("postgresql://a@h/d")
        );
    }

    #[test]
    fn negative_offsets_reach_the_command() {
        let cli = Cli::parse_from_iter(["ingest-ctl", "set-offset", "-5"]).unwrap();
        match cli.command {
            Command::SetOffset(a) => assert_eq!(a.offset, "-5"),
            other => panic!("{other:?}"),
        }
        let cli = Cli::parse_from_iter(["ingest-ctl", "set-offset", "-"]).unwrap();
        assert!(matches!(cli.command, Command::SetOffset(a) if a.offset == "-"));
    }

    #[test]
    fn defaults() {
        let cli = Cli::parse_from_iter(["ingest-ctl", "stop"]).unwrap();
        assert_eq!(cli.global.db.schema, "canton_integration");
        assert_eq!(cli.global.dead_after, Duration::from_secs(30));
        match cli.command {
            Command::Stop(s) => {
                assert!(!s.wait.wait);
                assert_eq!(s.wait.timeout, Duration::from_secs(300));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn command_is_consistent() {
        Cli::command().debug_assert();
    }
}
