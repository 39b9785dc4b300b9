//! Shared command-line conventions of every canton-dr tool.
//!
//! One error type ([`Error`]) whose [`ErrorKind`] maps to the exit codes of
//! DESIGN.md, JSON/NDJSON output on stdout ([`output`]), reading another
//! tool's JSON from stdin ([`input`]), record-time and duration parsing
//! ([`time`]), and the thin `main` wrapper ([`run_main`]) that prints a
//! one-line error with a hint and treats a broken pipe as success.

pub mod error;
pub mod exit_codes;
pub mod input;
pub mod logging;
pub mod output;
pub mod time;

pub use error::{Error, ErrorKind, Result};
pub use exit_codes::ExitCode;
pub use output::{OutputFormat, Printer};

/// Runs a tool's `run` function and turns its result into a process exit code.
///
/// Errors are printed as `error: <cause>` plus an optional `hint: <fix>` line on
/// stderr; in JSON mode an `{"type":"error",...}` object also goes to stdout so
/// that a pipeline consumer sees why its input is missing. A broken pipe on
/// stdout is not an error (exit 0), as in ripgrep.
pub fn run_main<F>(format: OutputFormat, run: F) -> std::process::ExitCode
where
    F: FnOnce() -> Result<ExitCode>,
{
    match run() {
        Ok(code) => code.into(),
        Err(err) if err.is_broken_pipe() => ExitCode::Ok.into(),
        Err(err) => {
            report_error(format, &err);
            err.exit_code().into()
        }
    }
}

/// Prints an error the canton-dr way (stderr always, stdout JSON in JSON mode).
pub fn report_error(format: OutputFormat, err: &Error) {
    eprintln!("error: {}", err.message());
    if let Some(hint) = err.hint() {
        eprintln!("hint: {hint}");
    }
    if format == OutputFormat::Json {
        let printer = Printer::new(format);
        // Ignore a failure here: stdout may be the broken pipe itself.
        let _ = printer.emit(&err.to_json());
    }
}
