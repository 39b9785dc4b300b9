//! Connection settings for the Integration DB, refusing a password typed on
//! the command line (argv is visible to every user of the host via `ps`).

use crate::args::GlobalArgs;
use canton_dr_cli::Result;
use integration_db::ConnectOptions;

/// `application_name` of every connection, so that operators (and the
/// benchmark) can tell the gate's sessions apart.
pub const APPLICATION_NAME: &str = "withdrawal-gate";

/// The connection options the global flags describe (a password typed in
/// `--db-url` is refused by the shared `DbArgs`, as in every tool).
pub fn options(g: &GlobalArgs) -> Result<ConnectOptions> {
    let options = g.db.connect_options(APPLICATION_NAME)?;
    // Check the schema name and URL syntax now, before anything else runs.
    options.resolve()?;
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::try_parse_from;

    fn opts(args: &[&str]) -> Result<ConnectOptions> {
        let mut v = vec!["wg"];
        v.extend_from_slice(args);
        v.push("status");
        let cli = try_parse_from(v).unwrap();
        options(&cli.global)
    }

    #[test]
    fn password_on_argv_is_refused_without_echoing_it() {
        for url in [
            "postgresql://u:hunter2@127.0.0.1:1/db",
            "host=127.0.0.1 user=u password=hunter2",
        ] {
            let e = opts(&["--db-url", url]).unwrap_err();
            assert_eq!(e.exit_code().code(), 2);
            assert!(!e.message().contains("hunter2"), "{}", e.message());
            assert!(e.hint().unwrap().contains("PGPASSWORD"));
        }
        assert!(opts(&["--db-url", "postgresql://u@127.0.0.1:1/db"]).is_ok());
    }

    #[test]
    fn bad_schema_is_a_usage_error() {
        let e = opts(&["--schema", "Bad-Name"]).unwrap_err();
        assert_eq!(e.exit_code().code(), 2);
    }
}
