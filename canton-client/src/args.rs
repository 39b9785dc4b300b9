//! clap argument groups that tools flatten into their CLIs, each flag also
//! readable from an environment variable:
//!
//! * [`AdminApiArgs`] / [`LedgerApiArgs`]: the endpoint flag plus [`ConnectionArgs`];
//! * [`ConnectionArgs`] = [`TlsArgs`] + [`AuthArgs`] + [`CallArgs`];
//! * [`AdminEndpoint`] / [`LedgerEndpoint`] alone, for a tool that talks to both
//!   APIs and flattens one [`ConnectionArgs`] for the two.
//!
//! ```
//! use clap::Parser;
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     admin: canton_client::args::AdminApiArgs,
//! }
//! let cli = Cli::try_parse_from(["tool", "--admin-api", "node:5002", "--tls"]).unwrap();
//! let config = cli.admin.client_config().unwrap();
//! assert_eq!(config.target.address, "node:5002");
//! assert!(config.tls.enabled);
//! ```

use crate::auth::{ACCESS_TOKEN_ENV, load_token};
use crate::config::{
    ClientConfig, DEFAULT_ADMIN_API, DEFAULT_LEDGER_API, DEFAULT_MAX_MESSAGE_BYTES, Target,
};
use crate::tls::TlsOptions;
use canton_dr_cli::Result;
use canton_dr_cli::time::duration_arg;
use std::path::PathBuf;
use std::time::Duration;

/// TLS flags.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "TLS")]
pub struct TlsArgs {
    /// Use TLS for a bare HOST:PORT endpoint (implied by https:// and by the other TLS flags).
    #[arg(long, env = "CANTON_TLS")]
    pub tls: bool,
    /// PEM file with the CA certificate(s) that signed the node's certificate
    /// (default: the public web PKI roots).
    #[arg(long, env = "CANTON_CA_CERT", value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,
    /// PEM file with the client certificate chain, for mutual TLS.
    #[arg(
        long,
        env = "CANTON_CLIENT_CERT",
        value_name = "PEM",
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,
    /// PEM file with the client private key, for mutual TLS.
    #[arg(
        long,
        env = "CANTON_CLIENT_KEY",
        value_name = "PEM",
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,
    /// Name to verify the node's certificate against (default: the endpoint's host).
    #[arg(long, env = "CANTON_TLS_SERVER_NAME", value_name = "NAME")]
    pub tls_server_name: Option<String>,
}

impl TlsArgs {
    /// The TLS options these flags describe.
    pub fn options(&self) -> TlsOptions {
        TlsOptions {
            enabled: self.tls,
            ca_cert: self.ca_cert.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
            server_name: self.tls_server_name.clone(),
        }
    }
}

/// Access-token flag. The token itself is never a flag (it would show in `ps`):
/// it comes from a file or from `CANTON_ACCESS_TOKEN`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Authentication")]
pub struct AuthArgs {
    /// File holding the bearer token (JWT) sent as `Authorization: Bearer …`.
    /// Alternatively put the token itself into CANTON_ACCESS_TOKEN.
    #[arg(long, env = "CANTON_ACCESS_TOKEN_FILE", value_name = "FILE")]
    pub access_token_file: Option<PathBuf>,
}

impl AuthArgs {
    /// Loads the token: the file if given, else `CANTON_ACCESS_TOKEN`, else none.
    pub fn token(&self) -> Result<Option<crate::Secret>> {
        let env = std::env::var(ACCESS_TOKEN_ENV).ok();
        load_token(self.access_token_file.as_deref(), env.as_deref())
    }
}

/// Timeouts and message-size limit.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Connection")]
pub struct CallArgs {
    /// Time allowed to open the connection (TCP and TLS).
    #[arg(long, env = "CANTON_CONNECT_TIMEOUT", value_name = "DURATION",
          default_value = "10s", value_parser = duration_arg)]
    pub connect_timeout: Duration,
    /// Deadline of each call (0 = none).
    #[arg(long, env = "CANTON_REQUEST_TIMEOUT", value_name = "DURATION",
          default_value = "60s", value_parser = duration_arg)]
    pub request_timeout: Duration,
    /// Largest gRPC message sent or received, in bytes (suffixes KiB, MiB, GiB allowed).
    #[arg(long, env = "CANTON_MAX_MESSAGE_BYTES", value_name = "BYTES",
          default_value_t = DEFAULT_MAX_MESSAGE_BYTES, value_parser = byte_size_arg)]
    pub max_message_bytes: usize,
}

impl Default for CallArgs {
    fn default() -> Self {
        CallArgs {
            connect_timeout: crate::config::DEFAULT_CONNECT_TIMEOUT,
            request_timeout: crate::config::DEFAULT_REQUEST_TIMEOUT,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// Parses `268435456`, `256MiB`, `64 KiB`, `1GiB` (also `KB`/`MB`/`GB` as binary units).
pub fn byte_size_arg(s: &str) -> std::result::Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("\"{s}\" is not a size (use e.g. 268435456 or 256MiB)"))?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "\"{s}\" has an unknown unit (use B, KiB, MiB or GiB)"
            ));
        }
    };
    let bytes = n
        .checked_mul(mult)
        .ok_or_else(|| format!("\"{s}\" is too large"))?;
    if bytes == 0 {
        return Err("the message-size limit must be positive".into());
    }
    Ok(bytes)
}

/// TLS, token, timeouts and size limit of a connection.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectionArgs {
    /// TLS flags.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Token flag.
    #[command(flatten)]
    pub auth: AuthArgs,
    /// Timeouts and limits.
    #[command(flatten)]
    pub call: CallArgs,
}

impl ConnectionArgs {
    /// The client configuration for `target` (reads the token file).
    pub fn client_config(&self, target: Target) -> Result<ClientConfig> {
        let request_timeout =
            (!self.call.request_timeout.is_zero()).then_some(self.call.request_timeout);
        Ok(ClientConfig::new(target)
            .with_tls(self.tls.options())
            .with_token(self.auth.token()?)
            .with_connect_timeout(self.call.connect_timeout)
            .with_request_timeout(request_timeout)
            .with_max_message_bytes(self.call.max_message_bytes))
    }
}

/// The participant admin API address flag.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminEndpoint {
    /// Participant admin API: HOST:PORT, http://HOST:PORT or https://HOST:PORT.
    #[arg(long = "admin-api", env = "CANTON_ADMIN_API", value_name = "ENDPOINT",
          default_value = DEFAULT_ADMIN_API)]
    pub admin_api: String,
}

impl AdminEndpoint {
    /// The target this flag names.
    pub fn target(&self) -> Target {
        Target::admin(self.admin_api.clone())
    }
}

/// The ledger API address flag.
#[derive(Debug, Clone, clap::Args)]
pub struct LedgerEndpoint {
    /// Ledger API: HOST:PORT, http://HOST:PORT or https://HOST:PORT.
    #[arg(long = "ledger-api", env = "CANTON_LEDGER_API", value_name = "ENDPOINT",
          default_value = DEFAULT_LEDGER_API)]
    pub ledger_api: String,
}

impl LedgerEndpoint {
    /// The target this flag names.
    pub fn target(&self) -> Target {
        Target::ledger(self.ledger_api.clone())
    }
}

/// `--admin-api` plus TLS, token and timeout flags.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminApiArgs {
    /// Endpoint flag.
    #[command(flatten)]
    pub endpoint: AdminEndpoint,
    /// TLS, token, timeouts.
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

impl AdminApiArgs {
    /// The client configuration for the admin API.
    pub fn client_config(&self) -> Result<ClientConfig> {
        self.connection.client_config(self.endpoint.target())
    }
}

/// `--ledger-api` plus TLS, token and timeout flags.
#[derive(Debug, Clone, clap::Args)]
pub struct LedgerApiArgs {
    /// Endpoint flag.
    #[command(flatten)]
    pub endpoint: LedgerEndpoint,
    /// TLS, token, timeouts.
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

impl LedgerApiArgs {
    /// The client configuration for the ledger API.
    pub fn client_config(&self) -> Result<ClientConfig> {
        self.connection.client_config(self.endpoint.target())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct AdminCli {
        #[command(flatten)]
        admin: AdminApiArgs,
    }

    #[derive(Parser, Debug)]
    struct BothCli {
        #[command(flatten)]
        admin: AdminEndpoint,
        #[command(flatten)]
        ledger: LedgerEndpoint,
        #[command(flatten)]
        connection: ConnectionArgs,
    }

    #[test]
    fn defaults() {
        let cli = AdminCli::try_parse_from(["t"]).unwrap();
        assert_eq!(cli.admin.endpoint.admin_api, "127.0.0.1:5002");
        assert!(!cli.admin.connection.tls.tls);
        assert_eq!(
            cli.admin.connection.call.connect_timeout,
            Duration::from_secs(10)
        );
        assert_eq!(
            cli.admin.connection.call.request_timeout,
            Duration::from_secs(60)
        );
        assert_eq!(cli.admin.connection.call.max_message_bytes, 256 << 20);
        let both = BothCli::try_parse_from(["t"]).unwrap();
        assert_eq!(both.ledger.ledger_api, "127.0.0.1:5001");
    }

    #[test]
    fn flags_parse() {
        let cli = AdminCli::try_parse_from([
            "t",
            "--admin-api",
            "https://node:443",
            "--ca-cert",
            "ca.pem",
            "--client-cert",
            "c.pem",
            "--client-key",
            "k.pem",
            "--tls-server-name",
            "participant",
            "--request-timeout",
            "0s",
            "--max-message-bytes",
            "64MiB",
        ])
        .unwrap();
        let c = &cli.admin.connection;
        assert_eq!(
            c.tls.ca_cert.as_deref(),
            Some(std::path::Path::new("ca.pem"))
        );
        assert_eq!(c.tls.tls_server_name.as_deref(), Some("participant"));
        assert_eq!(c.call.max_message_bytes, 64 << 20);
        let tls = c.tls.options();
        assert!(tls.requested());
        let cfg = ConnectionArgs {
            auth: AuthArgs::default(),
            ..c.clone()
        };
        assert_eq!(
            cfg.client_config(Target::admin("x:1"))
                .unwrap()
                .request_timeout,
            None
        );
    }

    #[test]
    fn client_cert_requires_key() {
        let e = AdminCli::try_parse_from(["t", "--client-cert", "c.pem"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(byte_size_arg("1024").unwrap(), 1024);
        assert_eq!(byte_size_arg("4 KiB").unwrap(), 4096);
        assert_eq!(byte_size_arg("1gib").unwrap(), 1 << 30);
        assert!(byte_size_arg("0").is_err());
        assert!(byte_size_arg("12 parsecs").is_err());
        assert!(byte_size_arg("lots").is_err());
    }

    #[test]
    fn token_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tok");
        std::fs::write(&path, "abc\n").unwrap();
        let auth = AuthArgs {
            access_token_file: Some(path),
        };
        assert_eq!(auth.token().unwrap().unwrap().expose(), "abc");
    }
}
