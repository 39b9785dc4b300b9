//! TLS against an in-test tonic server with certificates made by rcgen:
//! trusted CA, missing CA, server-name override, TLS/plaintext mismatches,
//! mutual TLS, and the clap flags end to end.

mod support;

use canton_client::args::AdminApiArgs;
use canton_client::{
    CantonChannel, CantonError, ClientConfig, Origin, RetryPolicy, TlsOptions, grpc_client,
};
use canton_proto::connection::GetApiInfoRequest;
use canton_proto::connection::api_info_service_client::ApiInfoServiceClient;
use clap::Parser;
use std::time::Duration;
use support::{Pki, server};

const TLS_HINT: &str = "pass the node's CA with --ca-cert";

fn policy() -> RetryPolicy {
    RetryPolicy::new(
        3,
        Duration::from_millis(5),
        Duration::from_millis(5),
        Duration::from_secs(10),
    )
}

fn config(address: String, tls: TlsOptions) -> ClientConfig {
    ClientConfig::admin(address)
        .with_tls(tls)
        .with_retry(policy())
}

fn with_ca(pki: &Pki) -> TlsOptions {
    TlsOptions {
        ca_cert: Some(pki.path("ca.pem")),
        ..Default::default()
    }
}

async fn get_api_info(conn: &CantonChannel) -> Result<String, CantonError> {
    let client = grpc_client!(ApiInfoServiceClient, conn);
    conn.call(|_| {
        let mut client = client.clone();
        async move { client.get_api_info(GetApiInfoRequest {}).await }
    })
    .await
    .map(|r| r.into_inner().name)
}

fn assert_one_line_tls_error(err: &CantonError, address: &str) {
    assert_eq!(err.origin, Origin::Tls, "{err:?}");
    assert_eq!(err.attempts, 1, "a failed handshake is not retried");
    let cli = err.to_cli_error();
    assert_eq!(cli.exit_code().code(), 3);
    assert!(
        cli.message().starts_with(&format!(
            "TLS handshake with admin API at {address} failed: "
        )),
        "{}",
        cli.message()
    );
    assert!(!cli.message().contains('\n'));
    assert!(
        cli.hint().unwrap().starts_with(TLS_HINT),
        "{:?}",
        cli.hint()
    );
}

#[tokio::test]
async fn tls_call_succeeds_with_the_ca_cert() {
    let pki = Pki::new();
    let srv = server(|_| Ok("admin-api".into()))
        .tls(pki.server_tls(false))
        .start()
        .await;
    for address in [
        srv.addr.to_string(),
        format!("https://{}", srv.addr),
        format!("https://localhost:{}", srv.addr.port()),
    ] {
        let conn = CantonChannel::new(&config(address.clone(), with_ca(&pki))).unwrap();
        assert!(conn.endpoint().tls(), "{address}");
        assert_eq!(get_api_info(&conn).await.unwrap(), "admin-api", "{address}");
    }
    assert_eq!(srv.seen.calls(), 3);
}

#[tokio::test]
async fn tls_without_the_ca_cert_fails_with_a_clear_one_line_error() {
    let pki = Pki::new();
    let srv = server(|_| Ok("admin-api".into()))
        .tls(pki.server_tls(false))
        .start()
        .await;
    let address = srv.addr.to_string();
    let tls = TlsOptions {
        enabled: true,
        ..Default::default()
    };
    let conn = CantonChannel::new(&config(address.clone(), tls.clone())).unwrap();
    let err = get_api_info(&conn).await.unwrap_err();
    assert_one_line_tls_error(&err, &address);
    assert!(err.cause.contains("UnknownIssuer"), "{}", err.cause);

    // A CA that did not sign the server certificate fails the same way.
    let other = TlsOptions {
        ca_cert: Some(pki.path("other-ca.pem")),
        ..Default::default()
    };
    let conn = CantonChannel::new(&config(address.clone(), other)).unwrap();
    assert_one_line_tls_error(&get_api_info(&conn).await.unwrap_err(), &address);

    // Eager connect reports it before any call.
    let eager = CantonChannel::connect(&config(address.clone(), tls))
        .await
        .unwrap_err();
    assert_eq!(eager.exit_code().code(), 3);
    assert!(eager.message().starts_with(&format!(
        "TLS handshake with admin API at {address} failed: "
    )));
    assert!(eager.hint().unwrap().starts_with(TLS_HINT));
    assert_eq!(srv.seen.calls(), 0);
}

#[tokio::test]
async fn server_name_is_verified_and_can_be_overridden() {
    let pki = Pki::new();
    let srv = server(|_| Ok("admin-api".into()))
        .tls(pki.server_tls(false))
        .start()
        .await;
    let address = srv.addr.to_string();
    let wrong = TlsOptions {
        server_name: Some("participant.example.com".into()),
        ..with_ca(&pki)
    };
    let conn = CantonChannel::new(&config(address.clone(), wrong)).unwrap();
    let err = get_api_info(&conn).await.unwrap_err();
    assert_one_line_tls_error(&err, &address);
    assert!(err.cause.contains("not valid for name"), "{}", err.cause);

    let right = TlsOptions {
        server_name: Some("localhost".into()),
        ..with_ca(&pki)
    };
    let conn = CantonChannel::new(&config(address, right)).unwrap();
    assert_eq!(get_api_info(&conn).await.unwrap(), "admin-api");
}

#[tokio::test]
async fn plaintext_client_against_tls_node_says_to_use_tls() {
    let pki = Pki::new();
    let srv = server(|_| Ok("admin-api".into()))
        .tls(pki.server_tls(false))
        .start()
        .await;
    let conn = CantonChannel::new(&config(srv.addr.to_string(), TlsOptions::default())).unwrap();
    let err = get_api_info(&conn).await.unwrap_err();
    assert!(err.is_connection_failure(), "{err:?}");
    let cli = err.to_cli_error();
    assert_eq!(cli.exit_code().code(), 3);
    assert!(!cli.message().contains('\n'));
    assert!(cli.message().contains(&srv.addr.to_string()));
    assert!(cli.hint().unwrap().contains("--tls"), "{:?}", cli.hint());
}

#[tokio::test]
async fn tls_client_against_plaintext_node_is_a_tls_error() {
    let pki = Pki::new();
    let srv = server(|_| Ok("admin-api".into())).start().await;
    let conn = CantonChannel::new(&config(srv.addr.to_string(), with_ca(&pki))).unwrap();
    let err = get_api_info(&conn).await.unwrap_err();
    assert_one_line_tls_error(&err, &srv.addr.to_string());
    assert!(err.to_cli_error().hint().unwrap().contains("drop --tls"));
}

#[tokio::test]
async fn mutual_tls_needs_the_client_certificate() {
    let pki = Pki::new();
    let srv = server(|_| Ok("admin-api".into()))
        .tls(pki.server_tls(true))
        .start()
        .await;
    let address = srv.addr.to_string();
    let conn = CantonChannel::new(&config(address.clone(), with_ca(&pki))).unwrap();
    let err = get_api_info(&conn).await.unwrap_err();
    assert_one_line_tls_error(&err, &address);
    assert!(
        err.to_cli_error()
            .hint()
            .unwrap()
            .contains("--client-cert/--client-key")
    );
    assert_eq!(srv.seen.calls(), 0);

    let mtls = TlsOptions {
        client_cert: Some(pki.path("client.pem")),
        client_key: Some(pki.path("client.key")),
        ..with_ca(&pki)
    };
    let conn = CantonChannel::new(&config(address, mtls)).unwrap();
    assert_eq!(get_api_info(&conn).await.unwrap(), "admin-api");
    assert_eq!(srv.seen.calls(), 1);
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    admin: AdminApiArgs,
}

#[tokio::test]
async fn clap_flags_configure_tls_and_token_end_to_end() {
    let pki = Pki::new();
    let srv = server(|_| Ok("admin-api".into()))
        .tls(pki.server_tls(true))
        .start()
        .await;
    let token_file = pki.path("token");
    std::fs::write(&token_file, "header.payload.signature\n").unwrap();
    let path = |name: &str| pki.path(name).to_string_lossy().into_owned();
    let cli = Cli::try_parse_from([
        "tool".to_string(),
        "--admin-api".into(),
        format!("localhost:{}", srv.addr.port()),
        "--ca-cert".into(),
        path("ca.pem"),
        "--client-cert".into(),
        path("client.pem"),
        "--client-key".into(),
        path("client.key"),
        "--access-token-file".into(),
        path("token"),
        "--request-timeout".into(),
        "5s".into(),
    ])
    .unwrap();
    let conn = CantonChannel::new(&cli.admin.client_config().unwrap()).unwrap();
    assert_eq!(get_api_info(&conn).await.unwrap(), "admin-api");
    assert_eq!(
        srv.seen.authorization(),
        vec![Some("Bearer header.payload.signature".to_string())]
    );
    assert_eq!(srv.seen.timeouts(), vec![Some("5000000u".to_string())]);
}
