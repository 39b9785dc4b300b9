//! The rustls client configuration for `sslmode=require` / `verify-*`.

use canton_dr_cli::{Error, Result};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::Path;
use std::sync::Arc;

/// A TLS connector that verifies the server against `root_cert` (PEM file)
/// or, when `None`, the bundled Mozilla roots.
pub fn make_connector(
    root_cert: Option<&Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    match root_cert {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                Error::usage(format!("cannot read CA file {}: {e}", path.display()))
                    .with_hint("set PGSSLROOTCERT (or sslrootcert) to a readable PEM file")
            })?;
            let mut added = 0;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| {
                    Error::usage(format!("CA file {} is not valid PEM: {e}", path.display()))
                })?;
                roots.add(cert).map_err(|e| {
                    Error::usage(format!(
                        "CA file {} holds an unusable certificate: {e}",
                        path.display()
                    ))
                })?;
                added += 1;
            }
            if added == 0 {
                return Err(Error::usage(format!(
                    "CA file {} holds no PEM certificate",
                    path.display()
                )));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::usage(format!("TLS set-up failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}
