//! The gate in front of the admin and ledger APIs: bearer-token enforcement
//! as Canton answers it (UNAUTHENTICATED when the `Authorization: Bearer`
//! header is missing or malformed, PERMISSION_DENIED when the token is not
//! accepted or lacks the admin claim) and the injected call faults
//! (UNAVAILABLE for the next N calls, added latency).

use crate::errors::{permission_denied, unauthenticated, unavailable};
use crate::faults::Api;
use crate::sim::Sim;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::Status;

/// The tokens an API accepts: the first line of the token file is the admin
/// token (participant_admin / admin claim); further lines are tokens with
/// read rights only.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSet {
    admin: String,
    readers: Vec<String>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenSet(admin: ***, readers: {})", self.readers.len())
    }
}

impl TokenSet {
    /// An admin token and reader tokens.
    pub fn new(admin: impl Into<String>, readers: Vec<String>) -> TokenSet {
        TokenSet {
            admin: admin.into(),
            readers,
        }
    }

    /// Reads a token file (one token per line, the admin token first).
    pub fn load(path: &Path, flag: &str) -> canton_dr_cli::Result<TokenSet> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            canton_dr_cli::Error::usage(format!("cannot read {flag} {}: {e}", path.display()))
        })?;
        let mut lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        let admin = lines.next().ok_or_else(|| {
            canton_dr_cli::Error::usage(format!("{flag} {} holds no token", path.display()))
                .with_hint("put the admin token on the first line of the file")
        })?;
        Ok(TokenSet::new(admin, lines.map(str::to_string).collect()))
    }
}

/// What a token is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant {
    Admin,
    Read,
}

fn eq_ct(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn is_reflection(path: &str) -> bool {
    path.starts_with("/grpc.reflection.")
}

/// Ledger API methods that need the participant_admin right.
fn needs_admin_on_ledger(path: &str) -> bool {
    path.starts_with("/com.daml.ledger.api.v2.admin.")
}

/// Decides whether a call may proceed.
fn authorize(
    api: Api,
    tokens: Option<&TokenSet>,
    path: &str,
    header: Option<&http::HeaderValue>,
) -> Result<(), Status> {
    let Some(tokens) = tokens else {
        return Ok(());
    };
    if api == Api::Ledger
        && (is_reflection(path) || path.starts_with("/com.digitalasset.canton.connection."))
    {
        return Ok(());
    }
    let Some(value) = header else {
        return Err(unauthenticated(
            "The command is missing a (valid) JWT token",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            unauthenticated("The authorization header is not of the form 'Bearer <token>'")
        })?;
    let grant = if eq_ct(token, &tokens.admin) {
        Grant::Admin
    } else if tokens.readers.iter().any(|r| eq_ct(token, r)) {
        Grant::Read
    } else {
        return Err(permission_denied("The provided token is not accepted"));
    };
    match (api, grant) {
        (_, Grant::Admin) => Ok(()),
        (Api::Admin, Grant::Read) => Err(permission_denied(
            "The provided token is lacking the admin claim",
        )),
        (Api::Ledger, Grant::Read) if needs_admin_on_ledger(path) => Err(permission_denied(
            "The provided token is lacking the participant_admin right",
        )),
        (Api::Ledger, Grant::Read) => Ok(()),
    }
}

/// Tower layer installing [`Gate`].
#[derive(Debug, Clone)]
pub struct GateLayer {
    api: Api,
    sim: Arc<Sim>,
    tokens: Option<Arc<TokenSet>>,
}

impl GateLayer {
    /// A gate for `api`, enforcing `tokens` when given.
    pub fn new(api: Api, sim: Arc<Sim>, tokens: Option<TokenSet>) -> GateLayer {
        GateLayer {
            api,
            sim,
            tokens: tokens.map(Arc::new),
        }
    }
}

impl<S> tower::Layer<S> for GateLayer {
    type Service = Gate<S>;
    fn layer(&self, inner: S) -> Gate<S> {
        Gate {
            inner,
            layer: self.clone(),
        }
    }
}

/// The gate service.
#[derive(Debug, Clone)]
pub struct Gate<S> {
    inner: S,
    layer: GateLayer,
}

type BoxFut<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Gate<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFut<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let path = req.uri().path().to_string();
        let decision = authorize(
            self.layer.api,
            self.layer.tokens.as_deref(),
            &path,
            req.headers().get(http::header::AUTHORIZATION),
        );
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let sim = self.layer.sim.clone();
        let api = self.layer.api;
        Box::pin(async move {
            let latency = sim.faults.latency();
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            if let Err(status) = decision {
                return Ok(status.into_http());
            }
            if !is_reflection(&path) && sim.faults.take_unavailable(api) {
                return Ok(unavailable().into_http());
            }
            inner.call(req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn hv(s: &str) -> http::HeaderValue {
        http::HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn admin_api_rules() {
        let t = TokenSet::new("adm", vec!["rd".into()]);
        let p = "/com.digitalasset.canton.admin.participant.v30.PackageService/ListDars";
        assert!(authorize(Api::Admin, None, p, None).is_ok());
        assert_eq!(
            authorize(Api::Admin, Some(&t), p, None).unwrap_err().code(),
            Code::Unauthenticated
        );
        assert_eq!(
            authorize(Api::Admin, Some(&t), p, Some(&hv("Basic x")))
                .unwrap_err()
                .code(),
            Code::Unauthenticated
        );
        assert_eq!(
            authorize(Api::Admin, Some(&t), p, Some(&hv("Bearer nope")))
                .unwrap_err()
                .code(),
            Code::PermissionDenied
        );
        assert_eq!(
            authorize(Api::Admin, Some(&t), p, Some(&hv("Bearer rd")))
                .unwrap_err()
                .code(),
            Code::PermissionDenied
        );
        assert!(authorize(Api::Admin, Some(&t), p, Some(&hv("Bearer adm"))).is_ok());
        // reflection on the admin API goes through the same check
        assert!(
            authorize(
                Api::Admin,
                Some(&t),
                "/grpc.reflection.v1.ServerReflection/X",
                None
            )
            .is_err()
        );
    }

    #[test]
    fn ledger_api_rules() {
        let t = TokenSet::new("adm", vec!["rd".into()]);
        let read = "/com.daml.ledger.api.v2.StateService/GetLedgerEnd";
        let admin = "/com.daml.ledger.api.v2.admin.PackageManagementService/UploadDarFile";
        assert!(
            authorize(
                Api::Ledger,
                Some(&t),
                "/grpc.reflection.v1alpha.ServerReflection/X",
                None
            )
            .is_ok()
        );
        assert!(authorize(Api::Ledger, Some(&t), read, Some(&hv("Bearer rd"))).is_ok());
        assert_eq!(
            authorize(Api::Ledger, Some(&t), admin, Some(&hv("Bearer rd")))
                .unwrap_err()
                .code(),
            Code::PermissionDenied
        );
        assert!(authorize(Api::Ledger, Some(&t), admin, Some(&hv("Bearer adm"))).is_ok());
        assert_eq!(
            authorize(Api::Ledger, Some(&t), read, None)
                .unwrap_err()
                .code(),
            Code::Unauthenticated
        );
    }
}
