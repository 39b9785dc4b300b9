//! Where the Integration DB is and how to reach it: a URL (or libpq key=value
//! string) and/or the standard `PG*` environment, the schema name, TLS.
//!
//! As in libpq, the environment fills in what the URL leaves out: `PGHOST`,
//! `PGPORT`, `PGUSER`, `PGDATABASE`, `PGPASSWORD` (keep passwords here, never
//! on argv), `PGSSLMODE`, `PGSSLROOTCERT`, `PGCONNECT_TIMEOUT`, `PGAPPNAME`.
//!
//! TLS: `sslmode=require`, `verify-ca` and `verify-full` use rustls and always
//! verify the server certificate, against `sslrootcert` / `PGSSLROOTCERT` when
//! set (a PEM file, or `system` for the bundled Mozilla roots), else against
//! the Mozilla roots. `disable`, `allow` and `prefer` (the default) connect
//! without TLS.

use canton_dr_cli::{Error, Result};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::config::Host;

/// The schema the tables live in unless told otherwise.
pub const DEFAULT_SCHEMA: &str = "canton_integration";

/// How to connect (see the module docs for the environment it reads).
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// `postgresql://…` URL or `key=value …` string; `None`: the `PG*` environment only.
    pub url: Option<String>,
    /// Schema holding the tables (a plain lower-case SQL identifier).
    pub schema: String,
    /// Reported to the server as `application_name` unless `PGAPPNAME` is set.
    pub application_name: String,
    /// Per-attempt connect timeout unless `PGCONNECT_TIMEOUT` is set.
    pub connect_timeout: Duration,
    /// Connection attempts for transient failures (1 = no retry).
    pub attempts: u32,
    /// Delay before the first retry; doubled each time, with jitter.
    pub initial_backoff: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            url: None,
            schema: DEFAULT_SCHEMA.to_string(),
            application_name: "canton-dr".to_string(),
            connect_timeout: Duration::from_secs(10),
            attempts: 3,
            initial_backoff: Duration::from_millis(200),
        }
    }
}

impl ConnectOptions {
    /// Options for `url` (an empty string means "use the environment").
    pub fn from_url(url: impl Into<String>) -> Self {
        let url = url.into();
        ConnectOptions {
            url: (!url.trim().is_empty()).then_some(url),
            ..Default::default()
        }
    }

    /// Options from the `PG*` environment only.
    pub fn from_env() -> Self {
        ConnectOptions::default()
    }

    /// Uses `schema` instead of [`DEFAULT_SCHEMA`].
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Sets the `application_name`.
    #[must_use]
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = name.into();
        self
    }

    /// Sets the number of connection attempts (at least 1).
    #[must_use]
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// Resolves against the process environment.
    pub fn resolve(&self) -> Result<Resolved> {
        self.resolve_with(&|k| std::env::var(k).ok())
    }

    /// Resolves against `env` (a lookup function, so tests need not touch the
    /// process environment).
    pub fn resolve_with(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Resolved> {
        check_schema_name(&self.schema)?;
        let env = |k: &str| env(k).filter(|v| !v.is_empty());
        let (conn_str, params) = match &self.url {
            Some(url) => split_ssl_params(url)?,
            None => (String::new(), SslParams::default()),
        };
        let mut config = if conn_str.trim().is_empty() {
            tokio_postgres::Config::new()
        } else {
            tokio_postgres::Config::from_str(&conn_str).map_err(|e| {
                Error::usage(format!(
                    "bad PostgreSQL URL {}: {}",
                    redact_url(&conn_str),
                    crate::error::cause_chain(&e)
                ))
                .with_hint(
                    "use postgresql://USER@HOST:PORT/DATABASE and put the password in PGPASSWORD",
                )
            })?
        };

        if config.get_hosts().is_empty() {
            let host = env("PGHOST").unwrap_or_else(|| "localhost".to_string());
            for h in host.split(',') {
                if h.starts_with('/') {
                    config.host_path(h);
                } else {
                    config.host(h);
                }
            }
        }
        if config.get_ports().is_empty()
            && let Some(p) = env("PGPORT")
        {
            let port: u16 = p
                .parse()
                .map_err(|_| Error::usage(format!("PGPORT \"{p}\" is not a port number")))?;
            config.port(port);
        }
        if config.get_user().is_none() {
            let user = env("PGUSER")
                .or_else(|| env("USER"))
                .unwrap_or_else(|| "postgres".to_string());
            config.user(user);
        }
        if config.get_dbname().is_none() {
            let db = env("PGDATABASE")
                .unwrap_or_else(|| config.get_user().unwrap_or("postgres").to_string());
            config.dbname(db);
        }
        if config.get_password().is_none()
            && let Some(pw) = env("PGPASSWORD")
        {
            config.password(pw);
        }
        if config.get_application_name().is_none() {
            config.application_name(
                env("PGAPPNAME").unwrap_or_else(|| self.application_name.clone()),
            );
        }
        if config.get_connect_timeout().is_none() {
            let timeout = match env("PGCONNECT_TIMEOUT") {
                Some(s) => Duration::from_secs(s.parse::<u64>().map_err(|_| {
                    Error::usage(format!(
                        "PGCONNECT_TIMEOUT \"{s}\" is not a number of seconds"
                    ))
                })?),
                None => self.connect_timeout,
            };
            config.connect_timeout(timeout);
        }

        let sslmode = params.sslmode.or_else(|| env("PGSSLMODE"));
        let tls = match sslmode.as_deref().unwrap_or("prefer") {
            "disable" | "allow" | "prefer" => TlsMode::Disabled,
            "require" | "verify-ca" | "verify-full" => TlsMode::Verified {
                root_cert: params
                    .sslrootcert
                    .or_else(|| env("PGSSLROOTCERT"))
                    .filter(|s| s != "system")
                    .map(PathBuf::from),
            },
            other => {
                return Err(Error::usage(format!("sslmode \"{other}\" is not known"))
                    .with_hint("use one of disable, prefer, require, verify-ca, verify-full"));
            }
        };
        config.ssl_mode(match tls {
            TlsMode::Disabled => tokio_postgres::config::SslMode::Disable,
            TlsMode::Verified { .. } => tokio_postgres::config::SslMode::Require,
        });

        Ok(Resolved {
            target: describe_target(&config),
            user: config.get_user().unwrap_or("").to_string(),
            dbname: config.get_dbname().unwrap_or("").to_string(),
            schema: self.schema.clone(),
            config,
            tls,
            attempts: self.attempts.max(1),
            initial_backoff: self.initial_backoff,
        })
    }
}

/// Whether and how to use TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain TCP (or a unix socket).
    Disabled,
    /// rustls, verifying the server against `root_cert` (PEM) or the Mozilla roots.
    Verified {
        /// CA file; `None`: the bundled Mozilla roots.
        root_cert: Option<PathBuf>,
    },
}

/// Fully resolved connection settings.
#[derive(Clone)]
pub struct Resolved {
    /// tokio-postgres settings (holds the password: never print it).
    pub config: tokio_postgres::Config,
    /// TLS mode.
    pub tls: TlsMode,
    /// `HOST:PORT` for messages.
    pub target: String,
    /// The user name.
    pub user: String,
    /// The database name.
    pub dbname: String,
    /// The schema.
    pub schema: String,
    /// Connection attempts.
    pub attempts: u32,
    /// First retry delay.
    pub initial_backoff: Duration,
}

impl std::fmt::Debug for Resolved {
    // Hand-written so that the password in `config` can never be printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("target", &self.target)
            .field("user", &self.user)
            .field("dbname", &self.dbname)
            .field("schema", &self.schema)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// The schema name must be a plain identifier: it is spliced into SQL.
pub fn check_schema_name(schema: &str) -> Result<()> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "schema name \"{schema}\" is not a plain lower-case SQL identifier"
        ))
        .with_hint(
            "use letters a-z, digits and _, starting with a letter or _ (e.g. canton_integration)",
        ))
    }
}

/// The URL with any password replaced by `****` (URL and key=value forms).
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    // URL form: scheme://user:password@host
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                let start = rest_start + colon + 1;
                let end = rest_start + at;
                out.replace_range(start..end, "****");
            }
        }
    }
    // Query or key=value form: password=...
    let mut result = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.find("password=") {
        let boundary_ok = i == 0 || matches!(rest.as_bytes()[i - 1], b' ' | b'?' | b'&');
        result.push_str(&rest[..i + "password=".len()]);
        rest = &rest[i + "password=".len()..];
        if boundary_ok {
            let end = rest.find([' ', '&']).unwrap_or(rest.len());
            result.push_str("****");
            rest = &rest[end..];
        }
    }
    result.push_str(rest);
    result
}

/// `HOST:PORT` of the first host, for messages.
fn describe_target(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}")
}

/// TLS parameters tokio-postgres does not parse itself.
#[derive(Debug, Default)]
struct SslParams {
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

/// Takes `sslmode` and `sslrootcert` out of a URL query or key=value string.
fn split_ssl_params(conn: &str) -> Result<(String, SslParams)> {
    let mut params = SslParams::default();
    let mut take = |key: &str, value: &str| -> bool {
        match key {
            "sslmode" => params.sslmode = Some(value.to_string()),
            "sslrootcert" => params.sslrootcert = Some(value.to_string()),
            "sslcert" | "sslkey" => return false,
            _ => return true,
        }
        false
    };
    let trimmed = conn.trim();
    let rest = if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        match trimmed.split_once('?') {
            None => trimmed.to_string(),
            Some((base, query)) => {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|kv| {
                        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                        take(k, v)
                    })
                    .collect();
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        trimmed
            .split_whitespace()
            .filter(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                take(k.trim(), v.trim().trim_matches('\''))
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    if conn.contains("sslcert=") || conn.contains("sslkey=") {
        return Err(Error::usage(
            "client certificates (sslcert/sslkey) are not supported for the Integration DB",
        )
        .with_hint("authenticate with a password in PGPASSWORD"));
    }
    Ok((rest, params))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn env_only() {
        let env = env_of(&[
            ("PGHOST", "/tmp/pgtmp.x"),
            ("PGPORT", "4321"),
            ("PGUSER", "alice"),
            ("PGPASSWORD", "pw"),
        ]);
        let r = ConnectOptions::from_env().resolve_with(&env).unwrap();
        assert_eq!(r.target, "/tmp/pgtmp.x:4321");
        assert_eq!(r.user, "alice");
        assert_eq!(
            r.dbname, "alice",
            "database defaults to the user, as in libpq"
        );
        assert_eq!(r.config.get_password(), Some(&b"pw"[..]));
        assert_eq!(r.tls, TlsMode::Disabled);
        assert!(matches!(r.config.get_hosts()[0], Host::Unix(_)));
    }

    #[test]
    fn url_wins_and_env_fills_gaps() {
        let env = env_of(&[
            ("PGPORT", "9999"),
            ("PGUSER", "bob"),
            ("PGPASSWORD", "secret"),
        ]);
        let r = ConnectOptions::from_url("postgresql://carol@db.example:5433/ops")
            .resolve_with(&env)
            .unwrap();
        assert_eq!(r.target, "db.example:5433");
        assert_eq!(r.user, "carol");
        assert_eq!(r.dbname, "ops");
        assert_eq!(r.config.get_password(), Some(&b"secret"[..]));
    }

    #[test]
    fn sslmode_and_root_cert_from_url_or_env() {
        let r = ConnectOptions::from_url(
            "postgresql://u@h/db?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=x",
        )
        .resolve_with(&env_of(&[]))
        .unwrap();
        assert_eq!(
            r.tls,
            TlsMode::Verified {
                root_cert: Some(PathBuf::from("/etc/ca.pem"))
            }
        );
        assert_eq!(r.config.get_application_name(), Some("x"));

        let r = ConnectOptions::from_url("host=h user=u sslmode=require")
            .resolve_with(&env_of(&[]))
            .unwrap();
        assert_eq!(r.tls, TlsMode::Verified { root_cert: None });

        let r = ConnectOptions::from_url("postgresql://u@h/db")
            .resolve_with(&env_of(&[
                ("PGSSLMODE", "require"),
                ("PGSSLROOTCERT", "system"),
            ]))
            .unwrap();
        assert_eq!(r.tls, TlsMode::Verified { root_cert: None });
    }

    #[test]
    fn bad_inputs_are_usage_errors() {
        let e = ConnectOptions::from_url("postgresql://u:hunter2@h:notaport/db")
            .resolve_with(&env_of(&[]))
            .unwrap_err();
        assert_eq!(e.exit_code().code(), 2);
        assert!(!e.message().contains("hunter2"), "{}", e.message());
        assert!(e.message().contains("u:****@h"), "{}", e.message());

        let e = ConnectOptions::from_url("postgresql://u@h/db?sslmode=sometimes")
            .resolve_with(&env_of(&[]))
            .unwrap_err();
        assert!(e.message().contains("sslmode \"sometimes\""));

        let e = ConnectOptions::from_env()
            .schema("Robert'); DROP")
            .resolve_with(&env_of(&[]))
            .unwrap_err();
        assert_eq!(e.exit_code().code(), 2);
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact_url("postgresql://u:p%40ss@h:5432/db?password=x&sslmode=require"),
            "postgresql://u:****@h:5432/db?password=****&sslmode=require"
        );
        assert_eq!(
            redact_url("host=h password=pw user=u"),
            "host=h password=**** user=u"
        );
        assert_eq!(redact_url("postgresql://u@h/db"), "postgresql://u@h/db");
    }

    #[test]
    fn schema_names() {
        assert!(check_schema_name("canton_integration").is_ok());
        assert!(check_schema_name("_x1").is_ok());
        assert!(check_schema_name("1x").is_err());
        assert!(check_schema_name("X").is_err());
        assert!(check_schema_name("").is_err());
    }
}
