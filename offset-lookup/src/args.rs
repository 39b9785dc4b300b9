//! The command line of `offset-lookup`; every flag is also read from an
//! environment variable. The `--help` text is the user documentation.

use canton_client::AdminApiArgs;
use canton_dr_cli::OutputFormat;
use canton_dr_cli::time::duration_arg;
use clap::Parser;
use std::time::Duration;

const LONG_ABOUT: &str = "\
Finds the ledger offset of a Canton participant for a record time (runbook A step 5: \
offRecovery for tRecovery), by calling the admin API's \
PartyManagementService.GetHighestOffsetByTimestamp. Never uses force unless told to.

Input: --synchronizer-id and --timestamp, or `-` to read the JSON that `ingest-ctl last` \
prints (synchronizerId, recordTime) from stdin:

    ingest-ctl last | offset-lookup - | ingest-ctl set-offset -

Output: {\"type\":\"offset\",\"synchronizerId\",\"timestamp\",\"offset\",\"force\",\"mode\",\"calls\",\"status\"} \
with offset a JSON number. `force` is true only when --force was given; `calls` lists \
every call made (timestamp, force, offset).

Exit codes: 0 ok; 1 no offset at or before the time (before the first event, or pruned), \
or, under Canton 3.4.9+, no event with exactly that record time; 2 bad input, unknown \
synchronizer, missing or rejected token; 3 node unreachable or not caught up after \
retries; 4 --wait timed out. With --batch: 0 when every line succeeded, else the highest \
exit code among the failed lines.";

/// Finds the ledger offset of a restored Canton participant for a record time.
#[derive(Debug, Clone, Parser)]
#[command(name = "offset-lookup", version, about, long_about = LONG_ABOUT)]
pub struct Cli {
    /// `-` reads the JSON of `ingest-ctl last` (synchronizerId, recordTime) from stdin.
    #[arg(value_name = "-", value_parser = stdin_marker)]
    pub input: Option<String>,

    /// Logical synchronizer id `<name>::1220<64 hex>` (not the physical `…::<pv>-<serial>` form).
    #[arg(long, env = "CANTON_SYNCHRONIZER_ID", value_name = "ID")]
    pub synchronizer_id: Option<String>,

    /// tRecovery: the record time of the last ingested transaction, RFC 3339 with at most 6
    /// fractional digits (e.g. 2025-11-27T06:50:00.123456Z).
    #[arg(long, env = "OFFSET_LOOKUP_TIMESTAMP", value_name = "RFC3339")]
    pub timestamp: Option<String>,

    /// Record times are not unique (ACS import, party migration, repair): return the offset as
    /// of timestamp − 1µs. Makes a lookup without force at the timestamp (proving the node has
    /// processed past it), then a force lookup at timestamp − 1µs. Safe under Canton 3.3 and 3.4.9+.
    #[arg(long, env = "OFFSET_LOOKUP_NON_UNIQUE_RECORD_TIMES")]
    pub non_unique_record_times: bool,

    /// Ask with force=true: the highest offset known now, even if the node has not processed
    /// everything up to the timestamp. For the disaster cases Canton documents only; prints a
    /// warning and is recorded in the output.
    #[arg(long, env = "OFFSET_LOOKUP_FORCE")]
    pub force: bool,

    /// Wait until the node has caught up (polling with backoff) instead of failing with exit 3.
    #[arg(long, env = "OFFSET_LOOKUP_WAIT")]
    pub wait: bool,

    /// How long --wait waits (per lookup) before giving up with exit 4.
    #[arg(long, env = "OFFSET_LOOKUP_TIMEOUT", value_name = "DURATION",
          default_value = "10m", value_parser = duration_arg)]
    pub timeout: Duration,

    /// Read NDJSON lookups (synchronizerId, recordTime per line) from stdin and print one result
    /// per line, in input order, over one connection. The flags fill fields a line lacks.
    #[arg(long, env = "OFFSET_LOOKUP_BATCH")]
    pub batch: bool,

    /// Lookups in flight at once in --batch.
    #[arg(long, env = "OFFSET_LOOKUP_CONCURRENCY", value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: u16,

    /// Output format: json (default when stdout is not a terminal) or text.
    #[arg(long, env = "CANTON_DR_OUTPUT")]
    pub output: Option<OutputFormat>,

    /// Admin API endpoint, TLS, token and timeouts.
    #[command(flatten)]
    pub admin: AdminApiArgs,
}

fn stdin_marker(s: &str) -> Result<String, String> {
    if s == "-" {
        Ok(s.to_string())
    } else {
        Err(format!(
            "the only positional argument is `-` (read JSON from stdin); for a time use --timestamp {s}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_and_positional() {
        let cli = Cli::try_parse_from(["offset-lookup", "-"]).unwrap();
        assert_eq!(cli.input.as_deref(), Some("-"));
        assert_eq!(cli.timeout, Duration::from_secs(600));
        assert_eq!(cli.concurrency, 32);
        assert!(!cli.force && !cli.wait && !cli.batch && !cli.non_unique_record_times);
        let e = Cli::try_parse_from(["offset-lookup", "2025-01-01T00:00:00Z"]).unwrap_err();
        assert!(
            e.to_string().contains("--timestamp 2025-01-01T00:00:00Z"),
            "{e}"
        );
        assert!(Cli::try_parse_from(["offset-lookup", "--concurrency", "0"]).is_err());
    }
}
