//! The bearer token: read from a file or the environment, and attached as
//! `Authorization: Bearer <token>` to every call by a tonic interceptor.
//! The token is kept in a [`Secret`] and its header is marked sensitive, so it
//! is never printed, logged, or indexed by HPACK.

use crate::secret::Secret;
use canton_dr_cli::{Error, Result};
use std::fmt;
use std::path::Path;
use std::time::Duration;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Environment variable holding the token itself (the alternative to a token file).
pub const ACCESS_TOKEN_ENV: &str = "CANTON_ACCESS_TOKEN";

/// Reads the token from `file` if given, else from `env_value` (the content of
/// [`ACCESS_TOKEN_ENV`]). Surrounding whitespace and a leading `Bearer ` are
/// removed. Returns `None` when neither is set.
pub fn load_token(file: Option<&Path>, env_value: Option<&str>) -> Result<Option<Secret>> {
    let (raw, source) = match (file, env_value) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::usage(format!(
                    "cannot read --access-token-file {}: {e}",
                    path.display()
                ))
                .with_hint("check the path given to --access-token-file / CANTON_ACCESS_TOKEN_FILE")
            })?;
            (text, format!("--access-token-file {}", path.display()))
        }
        (None, Some(value)) => (value.to_string(), ACCESS_TOKEN_ENV.to_string()),
        (None, None) => return Ok(None),
    };
    let mut token = raw.trim();
    if token.len() > 7 && token[..7].eq_ignore_ascii_case("bearer ") {
        token = token[7..].trim_start();
    }
    if token.is_empty() {
        return Err(
            Error::usage(format!("the access token from {source} is empty")).with_hint(
                "put the JWT (without quotes) into the token file or CANTON_ACCESS_TOKEN",
            ),
        );
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::usage(format!(
            "the access token from {source} contains characters that are not allowed in a header"
        ))
        .with_hint("the token must be a single line of printable ASCII (a JWT)"));
    }
    Ok(Some(Secret::new(token)))
}

/// Adds the bearer token (if any) and a default deadline (if the request has
/// none) to every outgoing call.
#[derive(Clone, Default)]
pub struct AuthInterceptor {
    authorization: Option<AsciiMetadataValue>,
    default_timeout: Option<Duration>,
}

impl AuthInterceptor {
    /// An interceptor sending `token` (if any) and `default_timeout` as the call
    /// deadline when the request does not set its own.
    pub fn new(token: Option<&Secret>, default_timeout: Option<Duration>) -> Result<Self> {
        let authorization = match token {
            Some(token) => {
                let mut value: AsciiMetadataValue =
                    MetadataValue::try_from(format!("Bearer {}", token.expose())).map_err(
                        |_| {
                            Error::usage("the access token is not a valid header value")
                                .with_hint("the token must be a single line of printable ASCII")
                        },
                    )?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Ok(AuthInterceptor {
            authorization,
            default_timeout,
        })
    }

    /// The same interceptor without a default deadline (for long-lived streams).
    #[must_use]
    pub fn without_timeout(&self) -> Self {
        AuthInterceptor {
            authorization: self.authorization.clone(),
            default_timeout: None,
        }
    }

    /// True when a token is attached.
    pub fn has_token(&self) -> bool {
        self.authorization.is_some()
    }
}

impl fmt::Debug for AuthInterceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthInterceptor")
            .field("token", &self.authorization.as_ref().map(|_| "***"))
            .field("default_timeout", &self.default_timeout)
            .finish()
    }
}

impl Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> std::result::Result<Request<()>, Status> {
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        if let Some(timeout) = self.default_timeout
            && !request.metadata().contains_key("grpc-timeout")
        {
            request.set_timeout(timeout);
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_from_file_is_trimmed_and_bearer_prefix_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "Bearer abc.def.ghi\n").unwrap();
        let t = load_token(Some(&path), Some("ignored")).unwrap().unwrap();
        assert_eq!(t.expose(), "abc.def.ghi");
    }

    #[test]
    fn env_token_is_used_without_file() {
        let t = load_token(None, Some("  xyz \n")).unwrap().unwrap();
        assert_eq!(t.expose(), "xyz");
        assert!(load_token(None, None).unwrap().is_none());
    }

    #[test]
    fn bad_tokens_are_usage_errors_that_do_not_echo_the_token() {
        let e = load_token(None, Some("   ")).unwrap_err();
        assert_eq!(
            e.message(),
            "the access token from CANTON_ACCESS_TOKEN is empty"
        );
        let e = load_token(None, Some("sec ret\u{7f}")).unwrap_err();
        assert!(e.message().contains("not allowed"), "{}", e.message());
        assert!(!e.message().contains("sec ret"));
        let e = load_token(Some(Path::new("/nonexistent/token")), None).unwrap_err();
        assert_eq!(e.exit_code().code(), 2);
        assert!(e.message().starts_with("cannot read --access-token-file"));
    }

    #[test]
    fn interceptor_sets_header_and_default_deadline() {
        let token = Secret::new("tok123");
        let mut i = AuthInterceptor::new(Some(&token), Some(Duration::from_secs(7))).unwrap();
        let req = i.call(Request::new(())).unwrap();
        assert_eq!(
            req.metadata().get("authorization").unwrap(),
            "Bearer tok123"
        );
        assert_eq!(req.metadata().get("grpc-timeout").unwrap(), "7000000u");
        assert!(!format!("{i:?}").contains("tok123"));
        assert!(!format!("{:?}", req.metadata()).contains("tok123"));

        let mut explicit = Request::new(());
        explicit.set_timeout(Duration::from_secs(1));
        let req = i.call(explicit).unwrap();
        assert_eq!(req.metadata().get("grpc-timeout").unwrap(), "1000000u");

        let mut streaming = i.without_timeout();
        let req = streaming.call(Request::new(())).unwrap();
        assert!(req.metadata().get("grpc-timeout").is_none());
        assert!(req.metadata().get("authorization").is_some());
    }
}
