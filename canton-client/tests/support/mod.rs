//! In-test gRPC server (ApiInfoService with scripted answers), TLS material made
//! with rcgen, and a tracing writer that captures log output.

#![allow(dead_code)]

use canton_proto::connection::api_info_service_server::{ApiInfoService, ApiInfoServiceServer};
use canton_proto::connection::{GetApiInfoRequest, GetApiInfoResponse};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

/// The answer to call number `n` (from 1).
pub type Script = Arc<dyn Fn(usize) -> Result<String, Status> + Send + Sync>;

/// What the server saw.
#[derive(Clone, Default)]
pub struct Seen {
    calls: Arc<AtomicUsize>,
    authorization: Arc<Mutex<Vec<Option<String>>>>,
    timeouts: Arc<Mutex<Vec<Option<String>>>>,
}

impl Seen {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    pub fn authorization(&self) -> Vec<Option<String>> {
        self.authorization.lock().unwrap().clone()
    }
    pub fn timeouts(&self) -> Vec<Option<String>> {
        self.timeouts.lock().unwrap().clone()
    }
}

struct Scripted {
    script: Script,
    delay: Duration,
    seen: Seen,
}

#[tonic::async_trait]
impl ApiInfoService for Scripted {
    async fn get_api_info(
        &self,
        request: Request<GetApiInfoRequest>,
    ) -> Result<Response<GetApiInfoResponse>, Status> {
        let n = self.seen.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let header = |name: &str| {
            request
                .metadata()
                .get(name)
                .map(|v| v.to_str().unwrap_or("<non-ascii>").to_string())
        };
        self.seen
            .authorization
            .lock()
            .unwrap()
            .push(header("authorization"));
        self.seen
            .timeouts
            .lock()
            .unwrap()
            .push(header("grpc-timeout"));
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        (self.script)(n).map(|name| Response::new(GetApiInfoResponse { name }))
    }
}

/// A running test server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub seen: Seen,
}

/// Builder for a test server.
pub struct ServerBuilder {
    script: Script,
    delay: Duration,
    tls: Option<ServerTlsConfig>,
}

pub fn server(
    script: impl Fn(usize) -> Result<String, Status> + Send + Sync + 'static,
) -> ServerBuilder {
    ServerBuilder {
        script: Arc::new(script),
        delay: Duration::ZERO,
        tls: None,
    }
}

impl ServerBuilder {
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn tls(mut self, tls: ServerTlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    pub async fn start(self) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Seen::default();
        let svc = Scripted {
            script: self.script,
            delay: self.delay,
            seen: seen.clone(),
        };
        let mut builder = Server::builder();
        if let Some(tls) = self.tls {
            builder = builder.tls_config(tls).unwrap();
        }
        let router = builder.add_service(
            ApiInfoServiceServer::new(svc)
                .max_encoding_message_size(64 << 20)
                .max_decoding_message_size(64 << 20),
        );
        tokio::spawn(async move {
            router
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
        TestServer { addr, seen }
    }
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub async fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// A CA, a server certificate for localhost/127.0.0.1 and a client certificate,
/// written as PEM files into a temp dir.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub other_ca_pem: String,
}

impl Pki {
    pub fn new() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
            IsCa, KeyPair, KeyUsagePurpose,
        };
        let ca = |name: &str| {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
        };
        let issuer = ca("canton-dr test CA");
        let other = ca("some other CA");

        let mut server =
            CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate().unwrap();
        let server_cert = server.signed_by(&server_key, &issuer).unwrap();

        let mut client = CertificateParams::new(vec!["exchange-client".into()]).unwrap();
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate().unwrap();
        let client_cert = client.signed_by(&client_key, &issuer).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let pki = Pki {
            ca_pem: issuer.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            other_ca_pem: other.pem(),
            dir,
        };
        std::fs::write(pki.path("ca.pem"), &pki.ca_pem).unwrap();
        std::fs::write(pki.path("other-ca.pem"), &pki.other_ca_pem).unwrap();
        std::fs::write(pki.path("client.pem"), client_cert.pem()).unwrap();
        std::fs::write(pki.path("client.key"), client_key.serialize_pem()).unwrap();
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Server TLS; with `require_client_cert`, clients must present a cert from the CA.
    pub fn server_tls(&self, require_client_cert: bool) -> ServerTlsConfig {
        let tls = ServerTlsConfig::new().identity(Identity::from_pem(
            &self.server_cert_pem,
            &self.server_key_pem,
        ));
        if require_client_cert {
            tls.client_ca_root(Certificate::from_pem(&self.ca_pem))
        } else {
            tls
        }
    }
}

/// A `MakeWriter` that appends all log output to a shared buffer.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Installs a TRACE-level subscriber writing into a buffer for the current thread.
pub fn capture_logs() -> (LogBuffer, tracing::subscriber::DefaultGuard) {
    let buf = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buf.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    (buf, guard)
}
