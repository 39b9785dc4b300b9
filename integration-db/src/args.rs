//! The Integration DB flags every tool shares (`--db-url`, `--schema`, each
//! also read from the environment), and the refusal of a password typed on
//! the command line, where `ps` and the shell history would show it.
//!
//! Flatten [`DbArgs`] into a tool's arguments, call [`DbArgs::note_source`]
//! with the `ArgMatches` the tool parsed (derive's `parse()` alone cannot tell
//! argv from the environment), then [`DbArgs::connect_options`].

use crate::config::redact_url;
use crate::{ConnectOptions, DEFAULT_SCHEMA, Result};
use canton_dr_cli::Error;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args};

/// The clap id of `--db-url` (its field name).
const DB_URL_ID: &str = "db_url";

/// Where the Integration DB is.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// PostgreSQL URL or libpq key=value string of the Integration DB
    /// (postgresql://USER@HOST:PORT/DATABASE[?sslmode=…]); the PG* environment fills in the
    /// rest. A URL with a password is refused on the command line (it would show in `ps`): use
    /// PGPASSWORD, or put the whole URL in INTEGRATION_DB_URL.
    #[arg(
        long,
        global = true,
        env = "INTEGRATION_DB_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub db_url: Option<String>,

    /// Schema holding the Integration DB tables.
    #[arg(long, global = true, env = "INTEGRATION_DB_SCHEMA", value_name = "NAME",
          default_value = DEFAULT_SCHEMA)]
    pub schema: String,

    /// Whether `--db-url` was typed on the command line (set by [`DbArgs::note_source`]).
    #[arg(skip)]
    url_on_argv: bool,
}

impl DbArgs {
    /// Records whether `--db-url` was typed on the command line rather than
    /// taken from INTEGRATION_DB_URL. `matches` are the top-level matches the
    /// arguments were parsed from; every subcommand level is searched, so the
    /// flag counts wherever it was written.
    pub fn note_source(&mut self, matches: &ArgMatches) {
        self.url_on_argv = typed_on_argv(matches);
    }

    /// True when `--db-url` was typed on the command line (see [`DbArgs::note_source`]).
    pub fn url_on_argv(&self) -> bool {
        self.url_on_argv
    }

    /// Connection options for `application_name`. A URL carrying a password
    /// is refused (exit 2) when it was typed on the command line, and the
    /// message shows it with the password masked.
    pub fn connect_options(&self, application_name: &str) -> Result<ConnectOptions> {
        let url = self.db_url.clone().unwrap_or_default();
        let redacted = redact_url(&url);
        if self.url_on_argv && redacted != url {
            return Err(Error::usage(format!(
                "--db-url {redacted} carries a password on the command line, where `ps` and the shell history show it"
            ))
            .with_hint(
                "drop the password from --db-url and set PGPASSWORD, or put the whole URL in INTEGRATION_DB_URL",
            ));
        }
        Ok(ConnectOptions::from_url(url)
            .schema(self.schema.clone())
            .application_name(application_name))
    }
}

/// Whether `--db-url` came from argv at this level or any subcommand below
/// (a global flag lands in the matches of the level where it was typed).
fn typed_on_argv(matches: &ArgMatches) -> bool {
    // `value_source` panics on an id this level does not define.
    let here = matches.try_contains_id(DB_URL_ID).unwrap_or(false)
        && matches.value_source(DB_URL_ID) == Some(ValueSource::CommandLine);
    here || matches
        .subcommand()
        .is_some_and(|(_, sub)| typed_on_argv(sub))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

    /// A tool with the flags at the top level and a subcommand below.
    #[derive(Debug, Parser)]
    #[command(name = "tool")]
    struct Tool {
        #[command(flatten)]
        db: DbArgs,
        #[command(subcommand)]
        command: Option<Sub>,
    }

    /// A tool with the flags inside a leaf subcommand only.
    #[derive(Debug, Parser)]
    #[command(name = "leaf-tool")]
    struct LeafTool {
        #[command(subcommand)]
        command: LeafSub,
    }

    #[derive(Debug, Subcommand)]
    enum Sub {
        Run,
    }

    #[derive(Debug, Subcommand)]
    enum LeafSub {
        Plain,
        WithDb {
            #[command(flatten)]
            db: DbArgs,
        },
    }

    fn parse(args: &[&str]) -> DbArgs {
        let matches = Tool::command().try_get_matches_from(args).unwrap();
        let mut tool = Tool::from_arg_matches(&matches).unwrap();
        tool.db.note_source(&matches);
        tool.db
    }

    fn parse_leaf(args: &[&str]) -> Option<DbArgs> {
        let matches = LeafTool::command().try_get_matches_from(args).unwrap();
        match LeafTool::from_arg_matches(&matches).unwrap().command {
            LeafSub::WithDb { mut db } => {
                db.note_source(&matches);
                Some(db)
            }
            LeafSub::Plain => {
                // A level without the flag must not panic.
                assert!(!typed_on_argv(&matches));
                None
            }
        }
    }

    #[test]
    fn commands_are_consistent() {
        Tool::command().debug_assert();
        LeafTool::command().debug_assert();
    }

    #[test]
    fn argv_is_noticed_before_after_and_inside_the_subcommand() {
        let url = "postgresql://a@h/d";
        assert!(parse(&["tool", "--db-url", url, "run"]).url_on_argv());
        let after = parse(&["tool", "run", "--db-url", url]);
        assert!(after.url_on_argv());
        assert_eq!(after.db_url.as_deref(), Some(url));
        assert!(parse(&["tool", &format!("--db-url={url}")]).url_on_argv());
        let leaf = parse_leaf(&["leaf-tool", "with-db", "--db-url", url]).unwrap();
        assert!(leaf.url_on_argv());
        assert!(parse_leaf(&["leaf-tool", "plain"]).is_none());
    }

    #[test]
    fn defaults() {
        let db = parse(&["tool", "run"]);
        assert_eq!(db.schema, "canton_integration");
        assert!(!db.url_on_argv());
        let o = db.connect_options("tool").unwrap();
        assert_eq!(o.schema, "canton_integration");
        assert_eq!(o.application_name, "tool");
    }

    #[test]
    fn password_on_argv_is_refused_without_echoing_it() {
        let db = parse(&[
            "tool",
            "run",
            "--db-url",
            "postgresql://ops:s3cret@db:5432/x",
        ]);
        let e = db.connect_options("tool").unwrap_err();
        assert_eq!(e.exit_code().code(), 2);
        assert_eq!(
            e.message(),
            "--db-url postgresql://ops:****@db:5432/x carries a password on the command line, \
             where `ps` and the shell history show it"
        );
        assert_eq!(
            e.hint(),
            Some(
                "drop the password from --db-url and set PGPASSWORD, or put the whole URL in \
                 INTEGRATION_DB_URL"
            )
        );
        let kv = parse(&[
            "tool",
            "--db-url",
            "host=db user=ops password=s3cret",
            "run",
        ]);
        let e = kv.connect_options("tool").unwrap_err();
        assert!(!e.message().contains("s3cret"), "{}", e.message());
        let leaf = parse_leaf(&["leaf-tool", "with-db", "--db-url", "postgresql://u:pw@h/d"]);
        assert!(leaf.unwrap().connect_options("tool").is_err());
    }

    #[test]
    fn url_without_password_on_argv_is_used_as_given() {
        let db = parse(&[
            "tool",
            "--db-url",
            "postgresql://ops@db:5432/x",
            "--schema",
            "s2",
        ]);
        let o = db.connect_options("tool").unwrap();
        assert_eq!(o.url.as_deref(), Some("postgresql://ops@db:5432/x"));
        assert_eq!(o.schema, "s2");
    }

    /// Set in the child process of [`password_from_the_environment_is_accepted`].
    const CHILD: &str = "INTEGRATION_DB_ARGS_TEST_CHILD";

    #[test]
    fn password_from_the_environment_is_accepted() {
        let url = "postgresql://ops:s3cret@db:5432/x";
        if std::env::var_os(CHILD).is_some() {
            let db = parse(&["tool", "run"]);
            assert!(!db.url_on_argv());
            let o = db.connect_options("tool").unwrap();
            assert_eq!(o.url.as_deref(), Some(url));
            assert_eq!(
                parse(&["tool", "run", "--schema", "s2"])
                    .connect_options("tool")
                    .unwrap()
                    .schema,
                "s2"
            );
            return;
        }
        // clap reads INTEGRATION_DB_URL from the process environment, which a
        // test must not change under its neighbours: run this test again in a
        // child process that has it set.
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "args::tests::password_from_the_environment_is_accepted",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .env("INTEGRATION_DB_URL", url)
            .env_remove("INTEGRATION_DB_SCHEMA")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        assert!(stdout.contains("1 passed"), "{stdout}");
    }
}
