//! `dar-sync`: diffs the DARs a Canton participant must hold against what it
//! holds, and re-uploads what a restore lost. Parsing and exit codes only;
//! the work is in the library.

use canton_dr_cli::{OutputFormat, run_main};

fn main() -> std::process::ExitCode {
    let cli = dar_sync::args::parse();
    canton_dr_cli::logging::init();
    let format = OutputFormat::resolve(cli.output);
    run_main(format, || dar_sync::run(cli, format))
}
