//! Maps tokio-postgres errors to canton-dr errors: the right exit code, a
//! one-line cause and a hint naming the fix, and never a password.
//!
//! Connection trouble (refused, unreachable, timed out, dropped, server
//! starting or shutting down) is transient (exit 3); configuration mistakes
//! (wrong password, unknown role or database, bad URL, TLS mismatch) and a
//! missing or outdated schema are usage errors (exit 2).

use canton_dr_cli::Error;
use std::error::Error as StdError;
use tokio_postgres::error::SqlState;

/// The hint for a missing or outdated schema.
pub const MIGRATE_HINT: &str =
    "run `ingest-ctl migrate` to create or upgrade the Integration DB schema";

/// Maps a failure to connect to `target` (`HOST:PORT`, never with a password).
pub fn connect_error(e: &tokio_postgres::Error, target: &str, user: &str, dbname: &str) -> Error {
    let running_hint = format!("is PostgreSQL running at {target}?");
    if let Some(db) = e.as_db_error() {
        let msg = db.message();
        let code = db.code();
        return if *code == SqlState::INVALID_PASSWORD {
            Error::usage(format!(
                "PostgreSQL at {target} rejected the password for user \"{user}\""
            ))
            .with_hint("check PGPASSWORD (or the password in INTEGRATION_DB_URL)")
        } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
            Error::usage(format!(
                "PostgreSQL at {target} refused user \"{user}\": {msg}"
            ))
            .with_hint("check the user name (PGUSER or the URL) and the server's pg_hba.conf")
        } else if *code == SqlState::INVALID_CATALOG_NAME {
            Error::usage(format!("PostgreSQL at {target}: {msg}"))
                .with_hint(format!(
                    "create database \"{dbname}\" or fix the database name in INTEGRATION_DB_URL / PGDATABASE"
                ))
        } else if is_transient_code(code) {
            Error::transient(format!(
                "PostgreSQL at {target} is not accepting connections: {msg}"
            ))
            .with_hint("retry when the server is up")
        } else {
            Error::usage(format!("cannot connect to PostgreSQL at {target}: {msg}"))
        };
    }
    let chain = cause_chain(e);
    if chain.starts_with("error performing TLS handshake") {
        let detail = chain
            .strip_prefix("error performing TLS handshake")
            .unwrap_or("")
            .trim_start_matches(": ");
        return if detail.contains("server does not support TLS") {
            Error::usage(format!(
                "PostgreSQL at {target} does not offer TLS, but sslmode requires it"
            ))
            .with_hint("enable ssl on the server, or use sslmode=disable on a trusted network")
        } else if detail.contains("certificate") || detail.contains("Certificate") {
            Error::usage(format!(
                "TLS handshake with PostgreSQL at {target} failed: {detail}"
            ))
            .with_hint("set PGSSLROOTCERT to the CA file that signed the server certificate")
        } else {
            Error::usage(format!(
                "TLS handshake with PostgreSQL at {target} failed: {detail}"
            ))
            .with_hint("check the server's TLS set-up and PGSSLROOTCERT")
        };
    }
    if chain.starts_with("invalid configuration: password missing") {
        return Error::usage(format!(
            "PostgreSQL at {target} asks for a password for user \"{user}\", and none is set"
        ))
        .with_hint("set PGPASSWORD");
    }
    if chain.starts_with("invalid configuration") || chain.starts_with("invalid connection string")
    {
        return Error::usage(format!("bad PostgreSQL connection settings: {chain}")).with_hint(
            "use postgresql://USER@HOST:PORT/DATABASE and put the password in PGPASSWORD",
        );
    }
    if chain.starts_with("timeout waiting for server") {
        return Error::transient(format!("timed out connecting to PostgreSQL at {target}"))
            .with_hint(running_hint);
    }
    if let Some(io) = io_source(e) {
        let text = io.to_string();
        let what = match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
            std::io::ErrorKind::NotFound => "no server socket".to_string(),
            std::io::ErrorKind::TimedOut => "connection timed out".to_string(),
            std::io::ErrorKind::UnexpectedEof => {
                "the server closed the connection during start-up".to_string()
            }
            _ => text.clone(),
        };
        let hint = if text.contains("lookup address") {
            "check the host name in INTEGRATION_DB_URL / PGHOST".to_string()
        } else {
            running_hint
        };
        return Error::transient(format!("cannot connect to PostgreSQL at {target}: {what}"))
            .with_hint(hint);
    }
    if e.is_closed() {
        return Error::transient(format!(
            "PostgreSQL at {target} closed the connection while connecting"
        ))
        .with_hint(running_hint);
    }
    Error::transient(format!("cannot connect to PostgreSQL at {target}: {chain}"))
        .with_hint(running_hint)
}

/// Maps an error of a statement on an established connection.
pub fn db_error(e: &tokio_postgres::Error) -> Error {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let msg = db.message();
        if *code == SqlState::UNDEFINED_TABLE
            || *code == SqlState::INVALID_SCHEMA_NAME
            || *code == SqlState::UNDEFINED_COLUMN
            || *code == SqlState::UNDEFINED_FUNCTION
        {
            return Error::usage(format!(
                "the Integration DB schema is missing or out of date ({msg})"
            ))
            .with_hint(MIGRATE_HINT);
        }
        if is_transient_code(code) {
            return Error::transient(format!("PostgreSQL: {msg}"))
                .with_hint("retry; the server is busy, restarting or resolving a conflict");
        }
        return Error::usage(format!("PostgreSQL rejected the statement: {msg}"))
            .with_code(code.code().to_string());
    }
    if e.is_closed() || io_source(e).is_some() {
        return Error::transient(format!(
            "lost the connection to PostgreSQL: {}",
            cause_chain(e)
        ))
        .with_hint("is PostgreSQL running? rerun the command when it is back");
    }
    Error::usage(format!("PostgreSQL client error: {}", cause_chain(e)))
}

/// `.db()` on tokio-postgres results: maps the error with [`db_error`].
pub(crate) trait PgResultExt<T> {
    fn db(self) -> canton_dr_cli::Result<T>;
}

impl<T> PgResultExt<T> for Result<T, tokio_postgres::Error> {
    fn db(self) -> canton_dr_cli::Result<T> {
        self.map_err(|e| db_error(&e))
    }
}

/// True for SQLSTATEs that go away by retrying or waiting.
pub fn is_transient_code(code: &SqlState) -> bool {
    let c = code.code();
    c.starts_with("08") // connection exception
        || c.starts_with("57P") // admin/crash shutdown, cannot connect now
        || c == "53300" // too many connections
        || c == "53000" // insufficient resources
        || c == "40001" // serialization failure
        || c == "40P01" // deadlock detected
        || c == "55P03" // lock not available
}

/// The error and its sources, `: `-joined, without repeats.
pub(crate) fn cause_chain(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

fn io_source(e: &tokio_postgres::Error) -> Option<&std::io::Error> {
    let mut cur = e.source();
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_codes() {
        assert!(is_transient_code(&SqlState::CANNOT_CONNECT_NOW));
        assert!(is_transient_code(&SqlState::ADMIN_SHUTDOWN));
        assert!(is_transient_code(&SqlState::T_R_SERIALIZATION_FAILURE));
        assert!(is_transient_code(&SqlState::CONNECTION_FAILURE));
        assert!(!is_transient_code(&SqlState::INVALID_PASSWORD));
        assert!(!is_transient_code(&SqlState::UNIQUE_VIOLATION));
    }
}
