//! `ingest-ctl`: stops, starts and repositions Tx History Ingestion through
//! the Integration DB control contract. Parsing and exit codes only; the work
//! is in the library.

use canton_dr_cli::{OutputFormat, run_main};
use ingest_ctl::args::Cli;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse_args();
    canton_dr_cli::logging::init();
    let format = OutputFormat::resolve(cli.global.output);
    run_main(format, || ingest_ctl::run(cli, format))
}
