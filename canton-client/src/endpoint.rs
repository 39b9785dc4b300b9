//! Parsing of a node address: `host:port` or an `http://` / `https://` URL,
//! into the URI tonic dials plus whether the connection uses TLS.

use canton_dr_cli::{Error, Result};
use http::Uri;

/// Where a node listens and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    uri: Uri,
    tls: bool,
    address: String,
}

impl Endpoint {
    /// Parses `input`. A bare `host:port` is plaintext unless `tls` is true;
    /// `https://` always means TLS; `http://` together with `tls` is a usage error.
    /// `flag` names the option the value came from, for error messages.
    pub fn parse(input: &str, tls: bool, flag: &str) -> Result<Endpoint> {
        let input = input.trim();
        if input.is_empty() {
            return Err(Error::usage(format!("{flag} is empty"))
                .with_hint(format!("pass {flag} HOST:PORT, e.g. 127.0.0.1:5002")));
        }
        let (scheme, rest) = match input.split_once("://") {
            Some((scheme, rest)) => (Some(scheme.to_ascii_lowercase()), rest),
            None => (None, input),
        };
        let use_tls = match scheme.as_deref() {
            None => tls,
            Some("https") => true,
            Some("http") if tls => {
                return Err(Error::usage(format!(
                    "{flag} \"{input}\" is an http:// URL but TLS was requested"
                ))
                .with_hint("use an https:// URL or a bare HOST:PORT together with --tls"));
            }
            Some("http") => false,
            Some(other) => {
                return Err(Error::usage(format!(
                    "{flag} \"{input}\" has unsupported scheme \"{other}\""
                ))
                .with_hint("use HOST:PORT, http://HOST:PORT or https://HOST:PORT"));
            }
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains('/') || authority.contains('?') || authority.contains('#') {
            return Err(Error::usage(format!(
                "{flag} \"{input}\" has a path; a gRPC endpoint is only HOST:PORT"
            ))
            .with_hint("drop everything after HOST:PORT"));
        }
        if authority.contains('@') {
            return Err(
                Error::usage(format!("{flag} must not carry credentials in the URL"))
                    .with_hint("pass the token with --access-token-file or CANTON_ACCESS_TOKEN"),
            );
        }
        if scheme.is_none() && !has_port(authority) {
            return Err(Error::usage(format!("{flag} \"{input}\" has no port"))
                .with_hint(format!("pass {flag} HOST:PORT, e.g. 127.0.0.1:5002")));
        }
        let text = format!("{}://{authority}", if use_tls { "https" } else { "http" });
        let uri: Uri = text.parse().map_err(|e| {
            Error::usage(format!("{flag} \"{input}\" is not a valid address ({e})"))
                .with_hint(format!("pass {flag} HOST:PORT, e.g. 127.0.0.1:5002"))
        })?;
        let host = uri.host().unwrap_or_default();
        if host.is_empty() {
            return Err(Error::usage(format!("{flag} \"{input}\" has no host"))
                .with_hint(format!("pass {flag} HOST:PORT, e.g. 127.0.0.1:5002")));
        }
        let port = uri.port_u16().unwrap_or(if use_tls { 443 } else { 80 });
        Ok(Endpoint {
            address: format!("{host}:{port}"),
            uri,
            tls: use_tls,
        })
    }

    /// The URI tonic dials (`http://…` or `https://…`).
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// True when the connection uses TLS.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// `host:port`, for messages.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The host part (without IPv6 brackets), the default TLS server name.
    pub fn host(&self) -> &str {
        let host = self.uri.host().unwrap_or_default();
        host.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
    }
}

fn has_port(authority: &str) -> bool {
    // "[::1]:5002" or "host:5002"; a bare IPv6 literal without brackets has no port.
    let after_host = match authority.rfind(']') {
        Some(i) => &authority[i + 1..],
        None if authority.matches(':').count() > 1 => return false,
        None => authority,
    };
    after_host
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str, tls: bool) -> Endpoint {
        Endpoint::parse(input, tls, "--admin-api").unwrap()
    }

    fn err(input: &str, tls: bool) -> Error {
        Endpoint::parse(input, tls, "--admin-api").unwrap_err()
    }

    #[test]
    fn bare_host_port_is_plaintext_unless_tls() {
        let e = ok("127.0.0.1:5002", false);
        assert_eq!(e.uri().to_string(), "http://127.0.0.1:5002/");
        assert!(!e.tls());
        assert_eq!(e.address(), "127.0.0.1:5002");
        let e = ok("participant.example.com:5002", true);
        assert_eq!(e.uri().to_string(), "https://participant.example.com:5002/");
        assert!(e.tls());
        assert_eq!(e.host(), "participant.example.com");
    }

    #[test]
    fn urls_choose_tls_by_scheme() {
        assert!(!ok("http://localhost:5001", false).tls());
        assert!(ok("https://localhost:5001/", false).tls());
        assert!(ok("HTTPS://localhost:5001", false).tls());
        assert_eq!(
            ok("https://node.example", false).address(),
            "node.example:443"
        );
    }

    #[test]
    fn ipv6_literals() {
        let e = ok("[::1]:5002", false);
        assert_eq!(e.address(), "[::1]:5002");
        assert_eq!(e.host(), "::1");
        let m = err("::1", false);
        assert!(m.message().contains("no port"), "{}", m.message());
    }

    #[test]
    fn bad_inputs_are_usage_errors_with_hints() {
        for (input, tls, needle) in [
            ("", false, "is empty"),
            ("localhost", false, "no port"),
            ("grpc://localhost:1", false, "unsupported scheme"),
            ("http://localhost:1", true, "TLS was requested"),
            ("http://localhost:1/api", false, "has a path"),
            ("http://user:pw@localhost:1", false, "credentials"),
            ("local host:1", false, "not a valid address"),
        ] {
            let e = err(input, tls);
            assert_eq!(e.exit_code().code(), 2, "{input}");
            assert!(e.message().contains(needle), "{input}: {}", e.message());
            assert!(e.hint().is_some(), "{input}");
        }
    }

    #[test]
    fn credentials_error_does_not_echo_the_url() {
        let e = err("http://user:s3cr3t@localhost:1", false);
        assert!(!e.message().contains("s3cr3t"));
    }
}
