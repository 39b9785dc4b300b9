//! `offset-lookup`: finds the ledger offset of a restored Canton participant
//! for a record time (runbook A step 5). Parsing and exit codes only; the
//! work is in the library.

use canton_dr_cli::{OutputFormat, run_main};
use clap::Parser;
use offset_lookup::args::Cli;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    canton_dr_cli::logging::init();
    let format = OutputFormat::resolve(cli.output);
    run_main(format, || offset_lookup::run(cli, format))
}
