//! `dar-sync`: knows which DARs a Canton participant must hold, diffs that
//! against what it holds, and re-uploads what a restore lost (runbook A
//! step 4).
//!
//! * [`inventory`]: local DAR files → identity (main package id, name,
//!   version, file SHA-256, size) or the reason Canton would refuse them,
//!   hashed in parallel on all cores.
//! * [`node`]: the participant's DARs (admin `ListDars`, paged by growing
//!   the limit) and `UploadDar`, behind the [`node::DarService`] trait.
//! * [`plan`]: the wanted set (`--dir` and/or the registry) and its diff with
//!   the node, keyed by main package id.
//! * [`upload`]: uploading what is missing, one DAR per call, checked first,
//!   confirmed after.
//! * [`registry`]: the Integration DB's `dar_uploads` and audit log.
//! * [`errors`]: Canton's upload error ids → per-DAR refusal or stop, with hints.
//! * [`args`] and [`commands`]: the command line.

pub mod args;
pub mod commands;
pub mod errors;
pub mod inventory;
pub mod node;
pub mod plan;
pub mod registry;
pub mod upload;

use crate::args::{Cli, Command};
use canton_dr_cli::{ExitCode, OutputFormat, Printer, Result};

/// Runs `dar-sync` as the command line asks; `format` is the resolved output format.
pub fn run(cli: Cli, format: OutputFormat) -> Result<ExitCode> {
    let printer = Printer::new(format);
    match cli.command {
        Command::Inventory(a) => commands::inventory(a, printer),
        Command::Record(a) => commands::record(a, printer),
        Command::Diff(a) => commands::diff(a, printer),
        Command::Upload(a) => commands::upload(a, printer),
    }
}
