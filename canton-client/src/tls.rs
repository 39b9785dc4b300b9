//! TLS settings (rustls via tonic's `tls-ring`): which CA to trust, an optional
//! client certificate for mutual TLS, and the server name to verify.

use canton_dr_cli::{Error, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// TLS options of one connection. `enabled` is also implied by any other field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Use TLS even for a bare `host:port`.
    pub enabled: bool,
    /// PEM file with the CA certificate(s) to trust instead of the public web PKI roots.
    pub ca_cert: Option<PathBuf>,
    /// PEM file with the client certificate chain (mutual TLS).
    pub client_cert: Option<PathBuf>,
    /// PEM file with the client private key (mutual TLS).
    pub client_key: Option<PathBuf>,
    /// Name to verify the server certificate against (default: the endpoint's host).
    pub server_name: Option<String>,
}

impl TlsOptions {
    /// True when any TLS option was given, so a bare `host:port` must use TLS.
    pub fn requested(&self) -> bool {
        self.enabled
            || self.ca_cert.is_some()
            || self.client_cert.is_some()
            || self.client_key.is_some()
            || self.server_name.is_some()
    }

    /// Reads the files and builds tonic's client TLS configuration for `host`.
    pub fn client_config(&self, host: &str) -> Result<ClientTlsConfig> {
        let mut config = ClientTlsConfig::new()
            .domain_name(self.server_name.clone().unwrap_or_else(|| host.to_string()));
        match &self.ca_cert {
            Some(path) => {
                let pem = read_file(path, "--ca-cert")?;
                let count = CertificateDer::pem_slice_iter(&pem)
                    .filter(|c| c.is_ok())
                    .count();
                if count == 0 {
                    return Err(Error::usage(format!(
                        "--ca-cert {} contains no PEM certificate",
                        path.display()
                    ))
                    .with_hint(
                        "pass the CA certificate in PEM form (-----BEGIN CERTIFICATE-----)",
                    ));
                }
                config = config.ca_certificate(Certificate::from_pem(pem));
            }
            None => {
                config = config.trust_anchors(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
        }
        match (&self.client_cert, &self.client_key) {
            (Some(cert_path), Some(key_path)) => {
                let cert = read_file(cert_path, "--client-cert")?;
                if CertificateDer::pem_slice_iter(&cert)
                    .filter(|c| c.is_ok())
                    .count()
                    == 0
                {
                    return Err(Error::usage(format!(
                        "--client-cert {} contains no PEM certificate",
                        cert_path.display()
                    ))
                    .with_hint("pass the client certificate chain in PEM form"));
                }
                let key = read_file(key_path, "--client-key")?;
                if PrivateKeyDer::from_pem_slice(&key).is_err() {
                    return Err(Error::usage(format!(
                        "--client-key {} contains no PEM private key",
                        key_path.display()
                    ))
                    .with_hint("pass the client key in PEM form (PKCS#8, PKCS#1 or SEC1)"));
                }
                config = config.identity(Identity::from_pem(cert, key));
            }
            (Some(_), None) => {
                return Err(Error::usage("--client-cert needs --client-key")
                    .with_hint("pass both --client-cert and --client-key for mutual TLS"));
            }
            (None, Some(_)) => {
                return Err(Error::usage("--client-key needs --client-cert")
                    .with_hint("pass both --client-cert and --client-key for mutual TLS"));
            }
            (None, None) => {}
        }
        Ok(config)
    }
}

fn read_file(path: &Path, flag: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Error::usage(format!("cannot read {flag} {}: {e}", path.display()))
            .with_hint(format!("check the path given to {flag}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_option_requests_tls() {
        assert!(!TlsOptions::default().requested());
        let with_ca = TlsOptions {
            ca_cert: Some("ca.pem".into()),
            ..Default::default()
        };
        assert!(with_ca.requested());
        let with_name = TlsOptions {
            server_name: Some("node".into()),
            ..Default::default()
        };
        assert!(with_name.requested());
    }

    #[test]
    fn missing_and_empty_files_are_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = TlsOptions {
            ca_cert: Some(dir.path().join("nope.pem")),
            ..Default::default()
        };
        let e = missing.client_config("localhost").unwrap_err();
        assert_eq!(e.exit_code().code(), 2);
        assert!(
            e.message().starts_with("cannot read --ca-cert"),
            "{}",
            e.message()
        );

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let bad = TlsOptions {
            ca_cert: Some(empty),
            ..Default::default()
        };
        let e = bad.client_config("localhost").unwrap_err();
        assert!(
            e.message().contains("contains no PEM certificate"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn client_cert_and_key_come_together() {
        let half = TlsOptions {
            client_cert: Some("c.pem".into()),
            ..Default::default()
        };
        let e = half.client_config("localhost").unwrap_err();
        assert_eq!(e.message(), "--client-cert needs --client-key");
        let other_half = TlsOptions {
            client_key: Some("k.pem".into()),
            ..Default::default()
        };
        let e = other_half.client_config("localhost").unwrap_err();
        assert_eq!(e.message(), "--client-key needs --client-cert");
    }
}
