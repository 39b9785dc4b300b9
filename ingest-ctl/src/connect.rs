//! From the global flags to a database connection: the password-on-argv
//! refusal, the schema, and the ingester name check.

use crate::args::GlobalArgs;
use canton_dr_cli::{Error, Result};
use integration_db::ConnectOptions;
use integration_db::config::redact_url;

/// The `application_name` ingest-ctl reports to PostgreSQL.
pub const APPLICATION_NAME: &str = "ingest-ctl";

/// Connection options from the flags. `db_url_on_argv` says whether
/// `--db-url` was typed on the command line, where a password would be
/// visible to every user of the machine (`ps`) and kept in shell history.
pub fn connect_options(global: &GlobalArgs, db_url_on_argv: bool) -> Result<ConnectOptions> {
    let url = global.db_url.clone().unwrap_or_default();
    if db_url_on_argv && redact_url(&url) != url {
        return Err(Error::usage(format!(
            "--db-url {} carries a password on the command line, where `ps` and the shell history show it",
            redact_url(&url)
        ))
        .with_hint(
            "drop the password from --db-url and set PGPASSWORD, or put the whole URL in INTEGRATION_DB_URL",
        ));
    }
    Ok(ConnectOptions::from_url(url)
        .schema(global.schema.clone())
        .application_name(APPLICATION_NAME))
}

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
    use clap::Parser as _;

    fn global(url: &str) -> GlobalArgs {
        crate::args::Cli::try_parse_from(["ingest-ctl", "--db-url", url, "last"])
            .unwrap()
            .global
    }

    #[test]
    fn password_on_argv_is_refused_without_echoing_it() {
        let g = global("postgresql://ops:s3cret@db:5432/x");
        let e = connect_options(&g, true).unwrap_err();
        assert_eq!(e.exit_code().code(), 2);
        assert!(!e.message().contains("s3cret"), "{}", e.message());
        assert!(e.message().contains("ops:****@db"), "{}", e.message());
        assert!(e.hint().unwrap().contains("PGPASSWORD"));
        let kv = global("host=db user=ops password=s3cret");
        assert!(connect_options(&kv, true).is_err());
    }

    #[test]
    fn password_from_the_environment_is_fine() {
        let g = global("postgresql://ops:s3cret@db:5432/x");
        let o = connect_options(&g, false).unwrap();
        assert_eq!(o.url.as_deref(), Some("postgresql://ops:s3cret@db:5432/x"));
        let plain = global("postgresql://ops@db:5432/x");
        assert!(connect_options(&plain, true).is_ok());
    }

    #[test]
    fn ingester_names() {
        assert!(check_ingester_name("tx-ingest").is_ok());
        assert!(check_ingester_name(" ").is_err());
        assert!(check_ingester_name("a\nb").is_err());
    }
}
