//! Serves the simulator: the admin API and the ledger API (each with gRPC
//! reflection v1 and v1alpha, optional TLS, the token/fault gate) and the
//! control API, on loopback ports chosen by the caller (0 = any free port).

use crate::admin::api_info::{ADMIN_API, ApiInfo, LEDGER_API};
use crate::admin::package_service::AdminPackages;
use crate::admin::party_management::PartyManagement;
use crate::auth::{GateLayer, TokenSet};
use crate::control::Control;
use crate::control_proto::sim_control_server::SimControlServer;
use crate::faults::Api;
use crate::ledger::encoded::update_service_server::UpdateServiceServer;
use crate::ledger::package_management::PackageManagement;
use crate::ledger::package_service::LedgerPackages;
use crate::ledger::state_service::State;
use crate::ledger::update_service::Updates;
use crate::sim::Sim;
use canton_dr_cli::{Error, Result};
use canton_proto::admin::package_service_server::PackageServiceServer as AdminPackageServer;
use canton_proto::admin::party_management_service_server::PartyManagementServiceServer;
use canton_proto::connection::api_info_service_server::ApiInfoServiceServer;
use canton_proto::ledger::package_service_server::PackageServiceServer as LedgerPackageServer;
use canton_proto::ledger::state_service_server::StateServiceServer;
use canton_proto::ledger_admin::package_management_service_server::PackageManagementServiceServer;
use canton_proto::service_names;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::{Identity, Server, ServerTlsConfig};

/// Largest message accepted or sent (DAR uploads and downloads of 50 MiB and more).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// Reflection service names, as grpc-java registers them.
pub const REFLECTION_V1: &str = "grpc.reflection.v1.ServerReflection";
/// The v1alpha reflection service name.
pub const REFLECTION_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

/// Services the admin API advertises (reflection included).
pub fn admin_services() -> Vec<&'static str> {
    vec![
        service_names::PARTY_MANAGEMENT,
        service_names::ADMIN_PACKAGE,
        service_names::API_INFO,
        REFLECTION_V1,
        REFLECTION_V1ALPHA,
    ]
}

/// Services the ledger API advertises (reflection included).
pub fn ledger_services() -> Vec<&'static str> {
    vec![
        service_names::STATE,
        service_names::UPDATE,
        service_names::LEDGER_PACKAGE,
        service_names::PACKAGE_MANAGEMENT,
        service_names::API_INFO,
        REFLECTION_V1,
        REFLECTION_V1ALPHA,
    ]
}

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Bind address (loopback by default).
    pub bind: IpAddr,
    /// Admin API port (0 = any).
    pub admin_port: u16,
    /// Ledger API port (0 = any).
    pub ledger_port: u16,
    /// Control API port (0 = any).
    pub control_port: u16,
    /// PEM certificate and key for TLS on the admin and ledger APIs.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Tokens the admin API accepts (None = no auth).
    pub admin_tokens: Option<TokenSet>,
    /// Tokens the ledger API accepts (None = no auth).
    pub ledger_tokens: Option<TokenSet>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            bind: IpAddr::from([127, 0, 0, 1]),
            admin_port: 0,
            ledger_port: 0,
            control_port: 0,
            tls: None,
            admin_tokens: None,
            ledger_tokens: None,
        }
    }
}

/// A running simulator.
#[derive(Debug)]
pub struct Running {
    /// The simulator.
    pub sim: Arc<Sim>,
    /// Admin API address.
    pub admin_addr: SocketAddr,
    /// Ledger API address.
    pub ledger_addr: SocketAddr,
    /// Control API address.
    pub control_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

fn reflection(
    names: &[&'static str],
    extra_fds: &[&'static [u8]],
) -> Result<(
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
)> {
    let builder = || {
        let mut b = tonic_reflection::server::Builder::configure()
            .include_reflection_service(false)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            );
        for fds in extra_fds {
            b = b.register_encoded_file_descriptor_set(fds);
        }
        for n in names {
            b = b.with_service_name(*n);
        }
        b
    };
    let err = |e: tonic_reflection::server::Error| {
        Error::usage(format!("cannot build the reflection service: {e}"))
    };
    Ok((
        builder().build_v1().map_err(err)?,
        builder().build_v1alpha().map_err(err)?,
    ))
}

async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        Error::usage(format!("cannot listen on {addr} for the {what}: {e}")).with_hint(format!(
            "choose another --{what}-port, or 0 for any free port"
        ))
    })
}

fn tls_config(tls: &Option<(PathBuf, PathBuf)>) -> Result<Option<ServerTlsConfig>> {
    let Some((cert, key)) = tls else {
        return Ok(None);
    };
    let read = |p: &PathBuf, flag: &str| {
        std::fs::read(p)
            .map_err(|e| Error::usage(format!("cannot read {flag} {}: {e}", p.display())))
    };
    let identity = Identity::from_pem(read(cert, "--tls-cert")?, read(key, "--tls-key")?);
    Ok(Some(ServerTlsConfig::new().identity(identity)))
}

fn server_builder(tls: &Option<ServerTlsConfig>) -> Result<Server> {
    let b = Server::builder();
    match tls {
        Some(t) => b
            .tls_config(t.clone())
            .map_err(|e| Error::usage(format!("invalid TLS certificate or key: {e}"))),
        None => Ok(b),
    }
}

/// Accepted connections with TCP_NODELAY, as Canton's Netty servers set it:
/// `serve_with_incoming` ignores the builder's `tcp_nodelay`, and without it
/// Nagle's algorithm holds back small responses to pipelined calls until the
/// client's delayed ACK (tens of milliseconds per stall).
fn incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Starts the three servers and the processing ticker.
pub async fn start(sim: Arc<Sim>, opts: ServeOptions) -> Result<Running> {
    let admin_l = bind(SocketAddr::new(opts.bind, opts.admin_port), "admin").await?;
    let ledger_l = bind(SocketAddr::new(opts.bind, opts.ledger_port), "ledger").await?;
    let control_l = bind(SocketAddr::new(opts.bind, opts.control_port), "control").await?;
    let admin_addr = admin_l.local_addr().map_err(Error::from)?;
    let ledger_addr = ledger_l.local_addr().map_err(Error::from)?;
    let control_addr = control_l.local_addr().map_err(Error::from)?;
    let tls = tls_config(&opts.tls)?;
    let (shutdown, _) = watch::channel(false);
    let mut tasks = Vec::new();

    let signal = |rx: watch::Receiver<bool>| async move {
        let mut rx = rx;
        let _ = rx.wait_for(|v| *v).await;
    };

    // Admin API.
    {
        let (v1, v1a) = reflection(&admin_services(), &[canton_proto::FILE_DESCRIPTOR_SET])?;
        let router = server_builder(&tls)?
            .layer(GateLayer::new(
                Api::Admin,
                sim.clone(),
                opts.admin_tokens.clone(),
            ))
            .add_service(v1)
            .add_service(v1a)
            .add_service(
                PartyManagementServiceServer::new(PartyManagement::new(sim.clone()))
                    .max_decoding_message_size(MAX_MESSAGE_BYTES),
            )
            .add_service(
                AdminPackageServer::new(AdminPackages::new(sim.clone()))
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES),
            )
            .add_service(ApiInfoServiceServer::new(ApiInfo::new(ADMIN_API)));
        let stop = signal(shutdown.subscribe());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = router
                .serve_with_incoming_shutdown(incoming(admin_l), stop)
                .await
            {
                tracing::error!("admin API stopped: {e}");
            }
        }));
    }
    // Ledger API.
    {
        let (v1, v1a) = reflection(&ledger_services(), &[canton_proto::FILE_DESCRIPTOR_SET])?;
        let router = server_builder(&tls)?
            .layer(GateLayer::new(
                Api::Ledger,
                sim.clone(),
                opts.ledger_tokens.clone(),
            ))
            .add_service(v1)
            .add_service(v1a)
            .add_service(StateServiceServer::new(State::new(sim.clone())))
            .add_service(UpdateServiceServer::new(Updates::new(sim.clone())))
            .add_service(
                LedgerPackageServer::new(LedgerPackages::new(sim.clone()))
                    .max_encoding_message_size(MAX_MESSAGE_BYTES),
            )
            .add_service(
                PackageManagementServiceServer::new(PackageManagement::new(sim.clone()))
                    .max_decoding_message_size(MAX_MESSAGE_BYTES),
            )
            .add_service(ApiInfoServiceServer::new(ApiInfo::new(LEDGER_API)));
        let stop = signal(shutdown.subscribe());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = router
                .serve_with_incoming_shutdown(incoming(ledger_l), stop)
                .await
            {
                tracing::error!("ledger API stopped: {e}");
            }
        }));
    }
    // Control API (plaintext, loopback: a test hook, not part of Canton).
    {
        let control_name = "canton_dr.sim.v1.SimControl";
        let (v1, v1a) = reflection(
            &[control_name, REFLECTION_V1, REFLECTION_V1ALPHA],
            &[crate::control_proto::FILE_DESCRIPTOR_SET],
        )?;
        let router = Server::builder()
            .add_service(v1)
            .add_service(v1a)
            .add_service(SimControlServer::new(Control::new(sim.clone())));
        let stop = signal(shutdown.subscribe());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = router
                .serve_with_incoming_shutdown(incoming(control_l), stop)
                .await
            {
                tracing::error!("control API stopped: {e}");
            }
        }));
    }
    // Time-driven progress (lag, catch-up, quiet-period checkpoints).
    {
        let sim = sim.clone();
        let mut stop = shutdown.subscribe();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            loop {
                tokio::select! {
                    _ = tick.tick() => sim.tick(),
                    _ = stop.wait_for(|v| *v) => return,
                }
            }
        }));
    }
    Ok(Running {
        sim,
        admin_addr,
        ledger_addr,
        control_addr,
        shutdown,
        tasks,
    })
}

impl Running {
    /// The ready line printed on stdout.
    pub fn ready_json(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "ready",
            "adminApi": self.admin_addr.to_string(),
            "ledgerApi": self.ledger_addr.to_string(),
            "controlApi": self.control_addr.to_string(),
            "synchronizerId": self.sim.info.synchronizer_id,
            "treasuryParty": self.sim.info.treasury_party,
            "participantId": self.sim.info.participant_id,
            "incarnation": self.sim.info.incarnation,
            "pid": std::process::id(),
        })
    }

    /// Stops serving (live streams end with UNAVAILABLE) and persists the state.
    pub async fn stop(self) -> Result<()> {
        self.sim.begin_shutdown();
        let _ = self.shutdown.send(true);
        // Connections a client keeps open would hold a graceful shutdown
        // forever; give them a moment, then cut them as a stopping node does.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
        for t in self.tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout_at(deadline, t).await.is_err() {
                abort.abort();
            }
        }
        self.sim
            .persist()
            .map_err(|e| Error::usage(format!("cannot persist the state on shutdown: {e}")))
    }
}
