//! `tx-ingest`: Reference Tx History Ingestion: streams a treasury's updates into the Integration DB exactly once.

// Streaming builds and drops many small protobuf values per update; glibc's
// allocator spent a fifth of the CPU on them (perf), mimalloc a fraction.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use canton_dr_cli::{OutputFormat, run_main};
use tx_ingest::cli::{Cli, run};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse_args();
    canton_dr_cli::logging::init();
    let format = OutputFormat::resolve(cli.output);
    run_main(format, || run(cli))
}
