//! `withdrawal-gate`: freezes withdrawals, waits until ingestion passes tSafe,
//! and thaws (runbook B). Parsing and exit codes only; the work is in the library.

use canton_dr_cli::{OutputFormat, run_main};

fn main() -> std::process::ExitCode {
    let cli = withdrawal_gate::args::parse();
    canton_dr_cli::logging::init();
    let format = OutputFormat::resolve(cli.global.output);
    run_main(format, || withdrawal_gate::run(cli, format))
}
