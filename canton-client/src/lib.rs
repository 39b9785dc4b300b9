//! gRPC access to a Canton participant (admin API and ledger API) for every
//! canton-dr tool: one place for the channel, TLS, bearer token, timeouts,
//! message-size limits, retries, and decoding of Canton's error model.
//!
//! * [`args`]: clap flags (`--admin-api`/`--ledger-api`, `--tls`, `--ca-cert`,
//!   `--client-cert`/`--client-key`, `--tls-server-name`, `--access-token-file`,
//!   timeouts, `--max-message-bytes`) producing a [`ClientConfig`].
//! * [`CantonChannel`]: the configured channel; build generated clients with
//!   [`grpc_client!`] and run calls with [`CantonChannel::call`] (retries).
//! * [`CantonError`]: a failed call decoded (error id, category, metadata,
//!   RetryInfo); `?` turns it into a `canton_dr_cli::Error`: UNAVAILABLE,
//!   DEADLINE_EXCEEDED, retryable statuses and connection failures are
//!   transient (exit 3); everything else, including UNAUTHENTICATED and
//!   PERMISSION_DENIED, is usage (exit 2). Tools refine by `error_id`.
//! * [`status`]: Canton's error layout, shared with the simulator
//!   ([`status::canton_status`] builds one).
//! * [`retry`](mod@retry): the one retry policy.

pub mod args;
pub mod auth;
pub mod channel;
pub mod codec;
pub mod config;
pub mod endpoint;
pub mod error;
pub mod retry;
pub mod secret;
pub mod status;
pub mod tls;

pub use args::{AdminApiArgs, AuthArgs, ConnectionArgs, LedgerApiArgs, TlsArgs};
pub use auth::AuthInterceptor;
pub use channel::{AuthChannel, CantonChannel};
pub use config::{ClientConfig, Target};
pub use endpoint::Endpoint;
pub use error::{CantonError, Origin};
pub use retry::{RetryPolicy, Retryable, retry};
pub use secret::Secret;
pub use tls::TlsOptions;
