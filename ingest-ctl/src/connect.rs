//! What ingest-ctl adds to the shared Integration DB flags
//! ([`integration_db::args::DbArgs`], which refuses a password on argv): its
//! `application_name` and the ingester name check.

use canton_dr_cli::{Error, Result};

/// The `application_name` ingest-ctl reports to PostgreSQL.
pub const APPLICATION_NAME: &str = "ingest-ctl";

/// Checks the ingester name before it is used anywhere.
pub fn check_ingester_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::usage("the ingester name is empty")
            .with_hint("pass --ingester NAME or set INGESTER_NAME"));
    }
    if name.len() > 200 || name.chars().any(char::is_control) {
        return Err(Error::usage(format!(
            "ingester name {name:?} is not a plain name (at most 200 printable characters)"
        ))
        .with_hint("pass the name the ingester registered in ingestion_control"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingester_names() {
        assert!(check_ingester_name("tx-ingest").is_ok());
        assert!(check_ingester_name(" ").is_err());
        assert!(check_ingester_name("a\nb").is_err());
    }
}
