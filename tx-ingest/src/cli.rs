//! The command line of `tx-ingest` (every flag also from the environment) and
//! the run it starts. The `--help` text is the user documentation.

use crate::ingest::{self, Settings};
use canton_client::{CantonChannel, LedgerApiArgs};
use canton_dr_cli::time::duration_arg;
use canton_dr_cli::{Error, ExitCode, OutputFormat, Printer, Result};
use clap::{CommandFactory as _, FromArgMatches as _, Parser};
use integration_db::args::DbArgs;
use std::time::Duration;
use tokio::sync::watch;

/// The `application_name` tx-ingest reports to PostgreSQL.
pub const APPLICATION_NAME: &str = "tx-ingest";

/// The ingester name used when neither `--ingester` nor `INGESTER_NAME` is given.
pub const DEFAULT_INGESTER: &str = "tx-ingest";

const LONG_ABOUT: &str = "\
Reference Tx History Ingestion: streams the treasury party's transactions from a Canton \
participant's ledger API (UpdateService.GetUpdates, LEDGER_EFFECTS, token-standard interface \
filters) into the Integration DB, each update id exactly once.

Per update (or per batch while catching up) ONE PostgreSQL transaction writes: the update id \
into ingested_updates (an id already there is skipped, its effects never applied twice); \
deposits, credited to the deposit account named in the transfer's reason when the account is \
known; withdrawals from the treasury, matched by withdrawal id (the reason) and completed with \
the update id and record time, or re-created as `recovered` (needs_reconciliation) when the \
request is unknown; in-flight withdrawals whose trec_tgt is below the ingested record time \
marked failed; the checkpoint; and a NOTIFY on canton_dr_progress.

It obeys ingestion_control (docs/ingestion-contract.md): stops and acknowledges when told, \
resumes after a new offset in a new epoch (ingest-ctl set-offset), heartbeats, and starts at \
the resume offset, else its checkpoint, else the participant's pruning offset. When the node or \
PostgreSQL drops it reconnects with backoff and resumes from the last committed checkpoint.

    tx-ingest --treasury-party treasury::1220… --ledger-api node:5001
    tx-ingest --once        # up to the current ledger end, then exit

Output: --once prints one JSON result (counts, position, timings) on stdout; metrics lines \
({\"type\":\"metrics\",…}) go to stderr every --progress-interval, logs to stderr (RUST_LOG).

The database: --db-url (or INTEGRATION_DB_URL) and/or the PG* environment (PGHOST, PGPORT, \
PGUSER, PGDATABASE, PGPASSWORD, PGSSLMODE, PGSSLROOTCERT). A password is never accepted on \
the command line: use PGPASSWORD, or put the whole URL in INTEGRATION_DB_URL.

Exit codes: 0 ok (--once done, or stopped by a signal); 2 usage or configuration error, missing \
schema, a transaction the parser cannot read (nothing of it is booked); 3 node or database \
unreachable for longer than --give-up-after; 5 --once while ingestion is stopped by its control row.";

/// Reference Tx History Ingestion: streams a treasury's updates into the Integration DB exactly once.
#[derive(Debug, Parser)]
#[command(name = "tx-ingest", version, about, long_about = LONG_ABOUT)]
pub struct Cli {
    /// Ledger API endpoint, TLS, token and timeouts.
    #[command(flatten)]
    pub ledger: LedgerApiArgs,

    /// The Integration DB: --db-url and --schema.
    #[command(flatten)]
    pub db: DbArgs,

    /// This ingester's name: its row in ingestion_control and ingestion_checkpoint.
    #[arg(long, env = "INGESTER_NAME", value_name = "NAME", default_value = DEFAULT_INGESTER)]
    pub ingester: String,

    /// The treasury party whose transactions are ingested.
    #[arg(long, env = "TREASURY_PARTY", value_name = "PARTY")]
    pub treasury_party: String,

    /// Most updates committed in one PostgreSQL transaction while catching up (1 = one
    /// transaction per update). Tailing, each update gets its own transaction anyway.
    #[arg(long, env = "TX_INGEST_BATCH_SIZE", value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,

    /// Ingest up to the participant's ledger end (read at start), then exit.
    #[arg(long, env = "TX_INGEST_ONCE")]
    pub once: bool,

    /// With --once: stream and parse, report what would be booked, write nothing
    /// (no acknowledgement, no heartbeat).
    #[arg(long, requires = "once")]
    pub dry_run: bool,

    /// How often to heartbeat and re-read the control row (it is also LISTENed to).
    #[arg(long, env = "TX_INGEST_HEARTBEAT_INTERVAL", value_name = "DURATION",
          default_value = "1s", value_parser = duration_arg)]
    pub heartbeat_interval: Duration,

    /// How often to print a metrics line on stderr (0s = never).
    #[arg(long, env = "TX_INGEST_PROGRESS_INTERVAL", value_name = "DURATION",
          default_value = "10s", value_parser = duration_arg)]
    pub progress_interval: Duration,

    /// Exit (code 3) after failing to reach the node or the database for this long without
    /// committing anything; a supervisor restarts it.
    #[arg(long, env = "TX_INGEST_GIVE_UP_AFTER", value_name = "DURATION",
          default_value = "5m", value_parser = duration_arg)]
    pub give_up_after: Duration,

    /// Ask the node for values without field labels and record ids (GetUpdates verbose=false)
    /// and decode them by the token standard's declaration order: about a third less CPU on the
    /// node and here. Default: verbose, as the exchange-integration guide recommends.
    #[arg(long, env = "TX_INGEST_COMPACT_VALUES")]
    pub compact_values: bool,

    /// Output format: json (default when stdout is not a terminal) or text.
    #[arg(long, env = "CANTON_DR_OUTPUT")]
    pub output: Option<OutputFormat>,
}

impl Cli {
    /// Parses `std::env::args_os()` (exits with clap's message on a usage error).
    pub fn parse_args() -> Cli {
        Self::parse_from_iter(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// Parses `args`, recording where `--db-url` came from.
    pub fn parse_from_iter<I, T>(args: I) -> std::result::Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Cli::command().try_get_matches_from(args)?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        cli.db.note_source(&matches);
        Ok(cli)
    }

    /// The run settings.
    pub fn settings(&self) -> Result<Settings> {
        if self.ingester.trim().is_empty() || self.ingester.chars().any(char::is_control) {
            return Err(Error::usage(format!(
                "ingester name {:?} is not a plain name",
                self.ingester
            ))
            .with_hint("pass --ingester NAME or set INGESTER_NAME"));
        }
        let party = self.treasury_party.trim();
        if party.is_empty() || !party.contains("::") {
            return Err(Error::usage(format!(
                "treasury party \"{}\" is not of the form <name>::<fingerprint>",
                self.treasury_party
            ))
            .with_hint("pass the full party id, e.g. treasury::1220…, with --treasury-party or TREASURY_PARTY"));
        }
        Ok(Settings {
            ingester: self.ingester.clone(),
            treasury: party.to_string(),
            batch_size: self.batch_size as usize,
            once: self.once,
            dry_run: self.dry_run,
            heartbeat_interval: self.heartbeat_interval.max(Duration::from_millis(50)),
            progress_interval: self.progress_interval,
            give_up_after: self.give_up_after,
            compact_values: self.compact_values,
        })
    }
}

/// Runs the tool: until a signal, or with `--once` until the ledger end.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let printer = Printer::new(OutputFormat::resolve(cli.output));
    let settings = cli.settings()?;
    let db = cli.db.connect_options(APPLICATION_NAME)?;
    let ledger_config = cli.ledger.client_config()?;
    // One thread for the writer, the control listener and signals: the
    // stream reader has a thread of its own (stream::spawn_reader), and a
    // worker pool only added cross-thread wake-ups.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::usage(format!("cannot start the async runtime: {e}")))?;
    let ingester = settings.ingester.clone();
    let dry_run = settings.dry_run;
    let progress_on = !settings.progress_interval.is_zero();
    let metrics = runtime.block_on(async move {
        let ledger = CantonChannel::new(&ledger_config)?;
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            let _ = stop_tx.send(true);
        });
        ingest::run(settings, ledger, db, stop_rx).await
    })?;
    let report = metrics.report("result", &ingester, dry_run);
    if progress_on {
        crate::metrics::print_stderr(&crate::metrics::Report {
            kind: "metrics",
            ..report.clone()
        });
    }
    printer.result(&report, |r| {
        format!(
            "{} updates ({} new, {} duplicates; {} deposits, {} withdrawals completed, {} recovered, {} failed) in {:.1}s, {}/s; at offset {} ({})",
            r.updates,
            r.new_transactions,
            r.duplicates,
            r.deposits,
            r.withdrawals_completed,
            r.withdrawals_recovered,
            r.withdrawals_failed,
            r.seconds,
            r.updates_per_second,
            r.offset.map_or_else(|| "-".to_string(), |o| o.to_string()),
            r.record_time.as_deref().unwrap_or("-"),
        )
    })?;
    Ok(ExitCode::Ok)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        let mut v = vec!["tx-ingest"];
        v.extend_from_slice(args);
        Cli::parse_from_iter(v).unwrap()
    }

    #[test]
    fn password_on_argv_is_refused_without_echoing_it() {
        let cli = parse(&[
            "--treasury-party",
            "t::1",
            "--db-url",
            "postgresql://ops:s3cret@db/x",
        ]);
        assert!(cli.db.url_on_argv());
        let e = cli.db.connect_options(APPLICATION_NAME).unwrap_err();
        assert_eq!(e.exit_code().code(), 2);
        assert!(!e.message().contains("s3cret"), "{}", e.message());
        assert!(e.hint().unwrap().contains("PGPASSWORD"));
        let plain = parse(&[
            "--treasury-party",
            "t::1",
            "--db-url",
            "postgresql://ops@db/x",
        ]);
        let o = plain.db.connect_options(APPLICATION_NAME).unwrap();
        assert_eq!(o.application_name, "tx-ingest");
    }

    #[test]
    fn settings_check_names_and_bounds() {
        let s = parse(&[
            "--treasury-party",
            "treasury::1220ab",
            "--batch-size",
            "1",
            "--once",
        ])
        .settings()
        .unwrap();
        assert_eq!(
            (s.batch_size, s.once, s.ingester.as_str()),
            (1, true, "tx-ingest")
        );
        let e = parse(&["--treasury-party", "treasury"])
            .settings()
            .unwrap_err();
        assert!(
            e.message().contains("<name>::<fingerprint>"),
            "{}",
            e.message()
        );
        assert!(
            Cli::parse_from_iter(["tx-ingest", "--treasury-party", "t::1", "--batch-size", "0"])
                .is_err()
        );
        assert!(
            Cli::parse_from_iter(["tx-ingest", "--treasury-party", "t::1", "--dry-run"]).is_err()
        );
    }
}
