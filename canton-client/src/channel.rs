//! [`CantonChannel`]: a tonic channel to one Canton API with the token
//! interceptor, default deadline and message-size limit applied, plus
//! [`CantonChannel::call`], which runs a call under the retry policy and
//! decodes failures into [`CantonError`].

use crate::auth::AuthInterceptor;
use crate::config::{ClientConfig, Target};
use crate::endpoint::Endpoint;
use crate::error::CantonError;
use crate::retry::{RetryPolicy, retry};
use canton_dr_cli::{Error, Result};
use std::future::Future;
use std::time::Duration;
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A channel whose every call carries the bearer token (and, for
/// [`CantonChannel::service`], the default deadline).
pub type AuthChannel = InterceptedService<Channel, AuthInterceptor>;

/// A configured connection to one Canton API. Cheap to clone.
///
/// Generated clients are built on [`CantonChannel::service`] with the size
/// limits raised; the [`grpc_client!`](crate::grpc_client) macro does both:
///
/// ```no_run
/// # async fn f() -> canton_dr_cli::Result<()> {
/// use canton_client::{CantonChannel, ClientConfig, grpc_client};
/// use canton_proto::connection::{GetApiInfoRequest, api_info_service_client::ApiInfoServiceClient};
/// let conn = CantonChannel::new(&ClientConfig::admin("127.0.0.1:5002"))?;
/// // Same as ApiInfoServiceClient::new(conn.service())
/// //     .max_decoding_message_size(conn.max_message_bytes())
/// //     .max_encoding_message_size(conn.max_message_bytes())
/// let client = grpc_client!(ApiInfoServiceClient, conn);
/// let info = conn
///     .call(|_attempt| {
///         let mut client = client.clone();
///         async move { client.get_api_info(GetApiInfoRequest {}).await }
///     })
///     .await?;
/// println!("{}", info.into_inner().name);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CantonChannel {
    channel: Channel,
    interceptor: AuthInterceptor,
    endpoint: Endpoint,
    /// What it was built from (target, size limit, retries; [`Self::fresh`]).
    config: ClientConfig,
}

impl CantonChannel {
    /// Builds the channel without connecting: the connection is opened (and
    /// re-opened) by the first call, so connection failures surface as
    /// retryable UNAVAILABLE errors of that call. Fails only on bad configuration.
    pub fn new(config: &ClientConfig) -> Result<CantonChannel> {
        let (endpoint, tonic_endpoint, interceptor) = prepare(config)?;
        Ok(CantonChannel {
            channel: tonic_endpoint.connect_lazy(),
            interceptor,
            endpoint,
            config: config.clone(),
        })
    }

    /// Builds the channel and connects now; a node that cannot be reached gives
    /// a one-line transient error naming the endpoint (TLS failures with a hint
    /// about `--ca-cert` / `--tls`).
    pub async fn connect(config: &ClientConfig) -> Result<CantonChannel> {
        let (endpoint, tonic_endpoint, interceptor) = prepare(config)?;
        let channel = tonic_endpoint.connect().await.map_err(|e| {
            CantonError::from_transport_error(&e)
                .with_target(config.target.clone())
                .to_cli_error()
        })?;
        Ok(CantonChannel {
            channel,
            interceptor,
            endpoint,
            config: config.clone(),
        })
    }

    /// A new channel to the same API with the same settings, not yet
    /// connected, whose connection runs on the async runtime this is called
    /// on (e.g. a reader thread's own, so that a busy stream's HTTP/2 work
    /// stays on that thread).
    pub fn fresh(&self) -> Result<CantonChannel> {
        CantonChannel::new(&self.config)
    }

    /// The service to build unary clients on: token and default deadline attached.
    pub fn service(&self) -> AuthChannel {
        InterceptedService::new(self.channel.clone(), self.interceptor.clone())
    }

    /// The service for long-lived streams: token attached, no default deadline.
    pub fn streaming_service(&self) -> AuthChannel {
        InterceptedService::new(self.channel.clone(), self.interceptor.without_timeout())
    }

    /// The raw channel (no token, no deadline).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The message-size limit to apply to clients.
    pub fn max_message_bytes(&self) -> usize {
        self.config.max_message_bytes
    }

    /// Which API and address this channel goes to.
    pub fn target(&self) -> &Target {
        &self.config.target
    }

    /// The parsed endpoint (URI, TLS or not).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The configured retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.config.retry
    }

    /// Decodes a failed call's status, naming this channel's target.
    pub fn error(&self, status: &Status) -> CantonError {
        CantonError::from_status(status).with_target(self.config.target.clone())
    }

    /// Runs `op(attempt)` under the configured retry policy; see [`Self::call_with`].
    pub async fn call<T, F, Fut>(&self, op: F) -> std::result::Result<T, CantonError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = std::result::Result<T, Status>>,
    {
        self.call_with(&self.config.retry, op).await
    }

    /// Runs `op(attempt)` under `policy`, retrying UNAVAILABLE, DEADLINE_EXCEEDED
    /// and RetryInfo-carrying statuses; the final failure is decoded, names this
    /// channel's target, and records the attempt count. `?` turns it into a
    /// `canton_dr_cli::Error` with the right exit code.
    pub async fn call_with<T, F, Fut>(
        &self,
        policy: &RetryPolicy,
        mut op: F,
    ) -> std::result::Result<T, CantonError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = std::result::Result<T, Status>>,
    {
        retry(policy, |attempt| {
            let fut = op(attempt);
            async move { fut.await.map_err(|s| self.error(&s)) }
        })
        .await
    }
}

/// HTTP/2 flow-control window for streams and for the connection.
const STREAM_WINDOW_BYTES: u32 = 4 << 20;

fn prepare(
    config: &ClientConfig,
) -> Result<(Endpoint, tonic::transport::Endpoint, AuthInterceptor)> {
    let target = &config.target;
    let endpoint = Endpoint::parse(&target.address, config.tls.requested(), &target.flag)?;
    let mut tonic_endpoint = tonic::transport::Endpoint::from(endpoint.uri().clone())
        .connect_timeout(config.connect_timeout)
        .tcp_nodelay(true)
        // Streams of many small updates: with HTTP/2's default 64 KiB windows
        // the node stops every few dozen updates until a WINDOW_UPDATE
        // arrives, costing wake-ups and syscalls at both ends.
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(STREAM_WINDOW_BYTES)
        .http2_keep_alive_interval(Duration::from_secs(60))
        .keep_alive_timeout(Duration::from_secs(20))
        .user_agent(concat!("canton-dr/", env!("CARGO_PKG_VERSION")))
        .map_err(|e| Error::usage(format!("invalid user agent: {e}")))?;
    if endpoint.tls() {
        let tls = config
            .tls
            .client_config(endpoint.host())?
            .timeout(config.connect_timeout);
        tonic_endpoint = tonic_endpoint.tls_config(tls).map_err(|e| {
            Error::usage(format!(
                "invalid TLS configuration for {}: {}",
                target.flag,
                crate::error::error_chain(&e)
            ))
            .with_hint("check --ca-cert, --client-cert, --client-key and --tls-server-name")
        })?;
    }
    let interceptor = AuthInterceptor::new(config.token.as_ref(), config.request_timeout)?;
    Ok((endpoint, tonic_endpoint, interceptor))
}

/// Builds a generated tonic client on a [`CantonChannel`] with the token
/// interceptor and the channel's message-size limit in both directions.
/// `grpc_client!(XxxClient, conn)` uses [`CantonChannel::service`] (default
/// deadline); `grpc_client!(streaming XxxClient, conn)` uses
/// [`CantonChannel::streaming_service`] (no deadline, for long streams).
#[macro_export]
macro_rules! grpc_client {
    (streaming $($client:ident)::+, $conn:expr) => {{
        let conn: &$crate::CantonChannel = &$conn;
        $($client)::+::new(conn.streaming_service())
            .max_decoding_message_size(conn.max_message_bytes())
            .max_encoding_message_size(conn.max_message_bytes())
    }};
    ($($client:ident)::+, $conn:expr) => {{
        let conn: &$crate::CantonChannel = &$conn;
        $($client)::+::new(conn.service())
            .max_decoding_message_size(conn.max_message_bytes())
            .max_encoding_message_size(conn.max_message_bytes())
    }};
}
