//! The command line of `dar-sync`. Every flag can also come from the
//! environment; `--help` is the user documentation.

use canton_client::AdminApiArgs;
use canton_dr_cli::time::record_time_arg;
use canton_dr_cli::{Error, OutputFormat, Result};
use chrono::{DateTime, Utc};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use integration_db::args::DbArgs;
use std::path::PathBuf;

/// Knows which DARs a Canton participant must hold, diffs that against what it
/// holds (admin API ListDars, keyed by main package id), and re-uploads what a
/// restore lost.
///
/// Runbook A step 4, after a participant restore:
///   dar-sync diff --registry --since BACKUP_TIME --check
///   dar-sync upload --registry --since BACKUP_TIME
///
/// Exit codes: 0 ok; 1 DARs missing (diff --check) or still missing after
/// upload; 2 usage error, bad input, or a DAR refused by the node; 3 node or
/// database unreachable after retries (rerun: nothing is doubled).
#[derive(Debug, Parser)]
#[command(name = "dar-sync", version, about, long_about, verbatim_doc_comment)]
pub struct Cli {
    /// Output format: json (default when stdout is not a terminal) or text.
    #[arg(long, global = true, env = "CANTON_DR_OUTPUT")]
    pub output: Option<OutputFormat>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read local DAR files: one NDJSON line per DAR
    /// ({"type":"dar",path,mainPackageId,name,version,sha256,size}) or per
    /// file Canton would refuse ({"type":"invalid",path,reason,errorId}),
    /// then a summary line. Files are hashed in parallel on all cores. Exits
    /// 0 whenever the paths exist: invalid files are reported, not errors.
    Inventory(InventoryArgs),
    /// Record DAR files in the Integration DB's dar_uploads registry (what
    /// the node must hold, and since when), e.g. for DARs uploaded by other
    /// means during token onboarding. Records nothing if any file is invalid.
    Record(RecordArgs),
    /// Compare what the node should hold (--dir and/or --registry) with what
    /// it holds: one line per DAR, "missing", "present" or "extra" (built-in
    /// DARs marked "builtin": true), then a summary.
    Diff(DiffArgs),
    /// Upload what the node lacks, one DAR per UploadDar call with its
    /// expected main package id, then list again to confirm. Idempotent: a
    /// second run uploads nothing.
    Upload(UploadArgs),
}

/// `inventory` flags.
#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// DAR files, or directories searched recursively for *.dar files.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Check every dalf and zip entry as Canton does on upload, not only the
    /// main dalf (slower: inflates and hashes everything again).
    #[arg(long, env = "DAR_SYNC_FULL_CHECK")]
    pub full: bool,
    /// Hashing threads (0 = one per core).
    #[arg(long, env = "DAR_SYNC_THREADS", default_value_t = 0)]
    pub threads: usize,
}

/// `record` flags.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// DAR files, or directories searched recursively for *.dar files.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// When the DARs were uploaded to the node (RFC 3339; default: now). An
    /// existing record keeps the earlier of its time and this one.
    #[arg(long, env = "DAR_SYNC_UPLOADED_AT", value_parser = record_time_arg)]
    pub uploaded_at: Option<DateTime<Utc>>,
    /// Show what would be recorded; write nothing but the audit entry.
    #[arg(long, env = "DAR_SYNC_DRY_RUN")]
    pub dry_run: bool,
    /// Database.
    #[command(flatten, next_help_heading = "Integration DB")]
    pub db: DbArgs,
}

/// What the node should hold, shared by `diff` and `upload`.
#[derive(Debug, Args)]
pub struct WantedArgs {
    /// Directory (or DAR file) whose DARs the node must hold; repeatable
    /// (DAR_SYNC_DIR: colon-separated).
    #[arg(
        long = "dir",
        env = "DAR_SYNC_DIR",
        value_name = "PATH",
        value_delimiter = ':'
    )]
    pub dirs: Vec<PathBuf>,
    /// The DARs recorded in the Integration DB's dar_uploads registry.
    #[arg(long, env = "DAR_SYNC_REGISTRY")]
    pub registry: bool,
    /// Only registry entries uploaded at or after this time (RFC 3339), e.g.
    /// the time of the backup that was restored.
    #[arg(long, env = "DAR_SYNC_SINCE", value_parser = record_time_arg, requires = "registry")]
    pub since: Option<DateTime<Utc>>,
    /// First ListDars limit; an answer that fills it is asked again with
    /// twice the limit (ListDars has no page token).
    #[arg(long, env = "DAR_SYNC_LIST_LIMIT", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=i32::MAX as i64))]
    pub list_limit: u32,
}

impl WantedArgs {
    /// Refuses a run that names nothing the node should hold.
    pub fn check(&self) -> Result<()> {
        if self.dirs.is_empty() && !self.registry {
            return Err(
                Error::usage("nothing to compare: name what the node must hold").with_hint(
                    "pass --dir PATH (DARs on disk) and/or --registry (the dar_uploads table)",
                ),
            );
        }
        Ok(())
    }
}

/// `diff` flags.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// What the node should hold.
    #[command(flatten)]
    pub wanted: WantedArgs,
    /// Exit 1 when anything is missing (for cron).
    #[arg(long, env = "DAR_SYNC_CHECK")]
    pub check: bool,
    /// Admin API.
    #[command(flatten)]
    pub admin: AdminApiArgs,
    /// Database (for --registry).
    #[command(flatten, next_help_heading = "Integration DB")]
    pub db: DbArgs,
}

/// `upload` flags.
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// What the node should hold.
    #[command(flatten)]
    pub wanted: WantedArgs,
    /// Show what would be uploaded; upload and record nothing.
    #[arg(long, env = "DAR_SYNC_DRY_RUN")]
    pub dry_run: bool,
    /// Upload without vetting the DARs' packages (vet_all_packages = false).
    #[arg(long, env = "DAR_SYNC_NO_VET")]
    pub no_vet: bool,
    /// Do not wait for the vetting to be effective (synchronize_vetting = false).
    #[arg(long, env = "DAR_SYNC_NO_SYNCHRONIZE_VETTING")]
    pub no_synchronize_vetting: bool,
    /// Synchronizer to vet on (Canton 3.4 nodes connected to several).
    #[arg(long, env = "DAR_SYNC_SYNCHRONIZER_ID", value_name = "ID")]
    pub synchronizer_id: Option<String>,
    /// Admin API.
    #[command(flatten)]
    pub admin: AdminApiArgs,
    /// Database: uploads are recorded in the registry when one is given
    /// (--db-url / INTEGRATION_DB_URL, or --registry).
    #[command(flatten, next_help_heading = "Integration DB")]
    pub db: DbArgs,
}

/// The `application_name` dar-sync reports to PostgreSQL.
pub const APPLICATION_NAME: &str = "dar-sync";

/// Parses argv, noting whether `--db-url` was typed on the command line.
pub fn parse() -> Cli {
    parse_from(std::env::args_os())
}

/// [`parse`] over given arguments (exits on usage errors, as clap does).
pub fn parse_from<I, T>(args: I) -> Cli
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = Cli::command().get_matches_from(args);
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match &mut cli.command {
        Command::Record(a) => a.db.note_source(&matches),
        Command::Diff(a) => a.db.note_source(&matches),
        Command::Upload(a) => a.db.note_source(&matches),
        Command::Inventory(_) => {}
    }
    cli
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_of(cli: Cli) -> DbArgs {
        match cli.command {
            Command::Record(a) => a.db,
            Command::Diff(a) => a.db,
            Command::Upload(a) => a.db,
            Command::Inventory(_) => panic!("no db"),
        }
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn password_in_url_on_argv_is_refused() {
        let cli = parse_from([
            "dar-sync",
            "record",
            "--db-url",
            "postgresql://app:secret@db:5432/x",
            "a.dar",
        ]);
        let db = db_of(cli);
        assert!(db.url_on_argv());
        let e = db.connect_options(APPLICATION_NAME).unwrap_err();
        assert_eq!(e.exit_code().code(), 2);
        assert!(!e.message().contains("secret"), "{}", e.message());
        assert!(e.hint().unwrap().contains("PGPASSWORD"));

        let cli = parse_from([
            "dar-sync",
            "record",
            "--db-url",
            "postgresql://app@db/x",
            "a.dar",
        ]);
        assert!(db_of(cli).connect_options(APPLICATION_NAME).is_ok());
    }

    #[test]
    fn since_needs_registry_and_wanted_needs_a_source() {
        let e = Cli::try_parse_from(["dar-sync", "diff", "--since", "2025-01-01T00:00:00Z"])
            .unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let cli = Cli::try_parse_from(["dar-sync", "diff"]).unwrap();
        let Command::Diff(d) = cli.command else {
            panic!()
        };
        assert!(
            d.wanted
                .check()
                .unwrap_err()
                .hint()
                .unwrap()
                .contains("--dir")
        );
    }

    #[test]
    fn list_limit_is_positive() {
        assert!(
            Cli::try_parse_from(["dar-sync", "diff", "--dir", "d", "--list-limit", "0"]).is_err()
        );
        let cli = Cli::try_parse_from(["dar-sync", "diff", "--dir", "a", "--dir", "b"]).unwrap();
        let Command::Diff(d) = cli.command else {
            panic!()
        };
        assert_eq!(d.wanted.dirs, [PathBuf::from("a"), PathBuf::from("b")]);
        assert_eq!(d.wanted.list_limit, 1000);
    }
}
