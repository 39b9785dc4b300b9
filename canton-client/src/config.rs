//! What a tool needs to reach one Canton API: [`ClientConfig`] (endpoint, TLS,
//! token, timeouts, message-size limit) and [`Target`] (which API and which
//! flag names it, for messages and hints).

use crate::retry::RetryPolicy;
use crate::secret::Secret;
use crate::tls::TlsOptions;
use std::fmt;
use std::time::Duration;

/// Default limit for one gRPC message in either direction (DARs are often > 4 MiB).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;
/// Default time allowed to open the TCP (and TLS) connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default deadline of a unary call.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Default admin API address (Splice participant image).
pub const DEFAULT_ADMIN_API: &str = "127.0.0.1:5002";
/// Default ledger API address (Splice participant image).
pub const DEFAULT_LEDGER_API: &str = "127.0.0.1:5001";

/// Which node API a connection goes to, and the option that sets its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Human name: `admin API`, `ledger API`.
    pub api: String,
    /// `host:port` as configured.
    pub address: String,
    /// The command-line flag that sets the address, e.g. `--admin-api`.
    pub flag: String,
    /// The environment variable that sets the address, e.g. `CANTON_ADMIN_API`.
    pub env: String,
}

impl Target {
    /// A target with explicit names.
    pub fn new(
        api: impl Into<String>,
        address: impl Into<String>,
        flag: impl Into<String>,
        env: impl Into<String>,
    ) -> Self {
        Target {
            api: api.into(),
            address: address.into(),
            flag: flag.into(),
            env: env.into(),
        }
    }

    /// The participant admin API (`--admin-api`, `CANTON_ADMIN_API`).
    pub fn admin(address: impl Into<String>) -> Self {
        Target::new("admin API", address, "--admin-api", "CANTON_ADMIN_API")
    }

    /// The ledger API (`--ledger-api`, `CANTON_LEDGER_API`).
    pub fn ledger(address: impl Into<String>) -> Self {
        Target::new("ledger API", address, "--ledger-api", "CANTON_LEDGER_API")
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.api, self.address)
    }
}

/// Everything needed to open a [`crate::CantonChannel`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Which API, and the address as given (`host:port` or URL).
    pub target: Target,
    /// TLS options; TLS is used for `https://` or when any option is set.
    pub tls: TlsOptions,
    /// Bearer token sent on every call.
    pub token: Option<Secret>,
    /// Time allowed to connect (TCP + TLS).
    pub connect_timeout: Duration,
    /// Default deadline of each unary call; `None` for no deadline.
    pub request_timeout: Option<Duration>,
    /// Largest message sent or received.
    pub max_message_bytes: usize,
    /// Retry policy used by [`crate::CantonChannel::call`].
    pub retry: RetryPolicy,
}

impl ClientConfig {
    /// Defaults for `target`: plaintext, no token, default timeouts and limits.
    pub fn new(target: Target) -> Self {
        ClientConfig {
            target,
            tls: TlsOptions::default(),
            token: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: Some(DEFAULT_REQUEST_TIMEOUT),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            retry: RetryPolicy::default(),
        }
    }

    /// Defaults for the admin API at `address`.
    pub fn admin(address: impl Into<String>) -> Self {
        ClientConfig::new(Target::admin(address))
    }

    /// Defaults for the ledger API at `address`.
    pub fn ledger(address: impl Into<String>) -> Self {
        ClientConfig::new(Target::ledger(address))
    }

    /// Sets the TLS options.
    #[must_use]
    pub fn with_tls(mut self, tls: TlsOptions) -> Self {
        self.tls = tls;
        self
    }

    /// Sets the bearer token.
    #[must_use]
    pub fn with_token(mut self, token: Option<Secret>) -> Self {
        self.token = token;
        self
    }

    /// Sets the connect timeout.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the default unary deadline (`None` = none).
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the message-size limit.
    #[must_use]
    pub fn with_max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}
