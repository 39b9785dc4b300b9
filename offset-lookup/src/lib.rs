//! `offset-lookup`: the ledger offset of a (restored) Canton participant for a
//! record time, via the admin API's `GetHighestOffsetByTimestamp` — runbook A
//! step 5, `offRecovery` for `tRecovery`.
//!
//! * [`args`]: the command line.
//! * [`validate`]: logical synchronizer id and record-time checks, before any call.
//! * [`input`]: the request from flags, from `ingest-ctl last`'s JSON, or a batch line.
//! * [`lookup`]: exact lookup and the non-unique-record-times sequence, over any
//!   [`lookup::OffsetService`]; [`lookup::AdminOffsetService`] is the real node.
//! * [`wait`]: canton-client's retry policy, or `--wait` polling until caught up.
//! * [`errors`]: what Canton's answers mean for the runbook, and their exit codes.
//! * [`batch`]: NDJSON in, one result per line out, over one connection.

pub mod args;
pub mod batch;
pub mod errors;
pub mod input;
pub mod lookup;
pub mod validate;
pub mod wait;

use crate::args::Cli;
use crate::input::FlagValues;
use crate::lookup::{AdminOffsetService, LookupOptions, LookupRequest, Mode, OffsetResult};
use crate::wait::{Patience, WaitOptions};
use canton_client::CantonChannel;
use canton_dr_cli::output::stderr_is_terminal;
use canton_dr_cli::time::format_record_time;
use canton_dr_cli::{Error, ExitCode, OutputFormat, Printer, Result};

/// Runs `offset-lookup` as the command line asks; `format` is the resolved output format.
pub fn run(cli: Cli, format: OutputFormat) -> Result<ExitCode> {
    let flags = FlagValues {
        synchronizer_id: cli.synchronizer_id.clone(),
        timestamp: cli.timestamp.clone(),
    };
    let options = LookupOptions {
        mode: if cli.non_unique_record_times {
            Mode::NonUniqueRecordTimes
        } else {
            Mode::Exact
        },
        force: cli.force,
    };
    // Everything the user typed is checked before the first connection.
    let single = if cli.batch {
        None
    } else {
        let request = match cli.input.as_deref() {
            Some(_) => {
                let object = canton_dr_cli::input::read_stdin_json("lookup input")?;
                input::from_json(&object, &flags)?
            }
            None => input::from_flags(&flags)?,
        };
        lookup::check_options(&request, &options)?;
        Some(request)
    };
    let config = cli.admin.client_config()?;
    let patience = if cli.wait {
        Patience::Wait(WaitOptions::new(cli.timeout, stderr_is_terminal()))
    } else {
        Patience::Retry(config.retry)
    };
    if options.force {
        warn_force(single.as_ref());
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::usage(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let service = AdminOffsetService::new(CantonChannel::new(&config)?);
        match single {
            Some(request) => {
                let result = lookup::lookup(&service, &request, &options, &patience).await?;
                Printer::new(format).result(&result, OffsetResult::to_text)?;
                Ok(ExitCode::Ok)
            }
            None => {
                let batch_options = batch::BatchOptions {
                    flags: &flags,
                    lookup: options,
                    patience,
                    concurrency: usize::from(cli.concurrency),
                    format,
                };
                let stdin = tokio::io::BufReader::new(tokio::io::stdin());
                let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
                let summary = batch::run(&service, stdin, &mut stdout, &batch_options).await?;
                tracing::info!("batch: {} ok, {} failed", summary.ok, summary.failed);
                Ok(summary.exit)
            }
        }
    })
}

fn warn_force(request: Option<&LookupRequest>) {
    let upto = request.map_or_else(
        || "the requested time".to_string(),
        |r| format_record_time(r.timestamp),
    );
    eprintln!(
        "warning: --force: the node answers with the highest offset it knows now, even if it has not yet processed everything up to {upto}; \
         that offset can be lower than the true one, and ingestion resumed from it re-reads updates it already holds. \
         Canton intends force for disaster recovery only."
    );
}
