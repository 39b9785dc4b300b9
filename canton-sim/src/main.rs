//! `canton-sim`: a Canton participant simulator speaking the real admin and
//! ledger gRPC APIs, with backup and restore. See the library docs.

// Streaming builds and drops many small protobuf values per update; glibc's
// allocator spent a fifth of the CPU on them (perf), mimalloc a fraction.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use canton_dr_cli::{OutputFormat, run_main};
use canton_sim::cli::{Cli, run};
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    canton_dr_cli::logging::init();
    let format = OutputFormat::resolve(cli.output);
    run_main(format, || run(cli))
}
