//! canton-client against an in-test tonic server: error decoding, retries,
//! token handling, unreachable nodes, deadlines, message-size limits.

mod support;

use canton_client::status::{CantonStatus, canton_status};
use canton_client::{CantonChannel, CantonError, ClientConfig, Origin, RetryPolicy, grpc_client};
use canton_proto::connection::GetApiInfoRequest;
use canton_proto::connection::api_info_service_client::ApiInfoServiceClient;
use std::collections::BTreeMap;
use std::time::Duration;
use support::{dead_port, server};
use tonic::{Code, Status};

fn fast_policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy::new(
        max_attempts,
        Duration::from_millis(5),
        Duration::from_millis(20),
        Duration::from_secs(20),
    )
}

fn config(addr: impl ToString) -> ClientConfig {
    ClientConfig::admin(addr.to_string()).with_retry(fast_policy(4))
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

fn invalid_timestamp() -> Status {
    CantonStatus::new(
        Code::OutOfRange,
        "INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR",
        12,
        "No ledger offset found for the requested timestamp 2025-01-01T00:00:00Z on synchronizer s::1220ab (using force flag = false): Not all events have been processed fully",
    )
    .metadata("synchronizerId", "s::1220ab")
    .metadata("requestedTimestamp", "2025-01-01T00:00:00Z")
    .metadata("force", "false")
    .retry_after(Duration::from_millis(30))
    .into_status()
}

#[tokio::test]
async fn retryable_canton_error_is_decoded_retried_then_given_up_with_exit_3() {
    let srv = server(|_| Err(invalid_timestamp())).start().await;
    let conn = CantonChannel::new(&config(srv.addr).with_retry(fast_policy(3))).unwrap();
    let started = std::time::Instant::now();
    let err = get_api_info(&conn).await.unwrap_err();
    assert_eq!(srv.seen.calls(), 3, "configured attempts");
    // Two waits, each at least the RetryInfo delay of 30 ms.
    assert!(started.elapsed() >= Duration::from_millis(60));

    assert_eq!(err.code, Code::OutOfRange);
    assert_eq!(err.origin, Origin::Server);
    assert_eq!(
        err.error_id.as_deref(),
        Some("INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR")
    );
    assert_eq!(err.category, Some(12));
    assert_eq!(err.retry_delay, Some(Duration::from_millis(30)));
    assert_eq!(
        err.metadata.get("synchronizerId").map(String::as_str),
        Some("s::1220ab")
    );
    assert_eq!(err.metadata.get("force").map(String::as_str), Some("false"));
    assert_eq!(err.metadata.get("category").map(String::as_str), Some("12"));
    assert!(err.request_id.as_deref().is_some_and(|r| r.len() == 32));
    assert!(err.cause.starts_with("No ledger offset found"));
    assert_eq!(err.attempts, 3);

    let cli: canton_dr_cli::Error = err.into();
    assert_eq!(cli.exit_code().code(), 3);
    assert_eq!(cli.code(), Some("INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR"));
    let addr = srv.addr.to_string();
    assert!(
        cli.message().starts_with(&format!(
            "admin API at {addr}: INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR: No ledger offset found"
        )),
        "{}",
        cli.message()
    );
    assert!(
        cli.message().ends_with("(after 3 attempts)"),
        "{}",
        cli.message()
    );
    assert!(!cli.message().contains('\n'));
}

#[tokio::test]
async fn invalid_argument_is_not_retried() {
    let srv = server(|_| {
        Err(CantonStatus::new(
            Code::InvalidArgument,
            "INVALID_ARGUMENT_PARTY_MANAGEMENT_ERROR",
            8,
            "Synchronizer id x is unknown",
        )
        .into_status())
    })
    .start()
    .await;
    let conn = CantonChannel::new(&config(srv.addr)).unwrap();
    let err = get_api_info(&conn).await.unwrap_err();
    assert_eq!(
        srv.seen.calls(),
        1,
        "a non-retryable error must not be retried"
    );
    assert_eq!(err.attempts, 1);
    assert!(!err.is_retryable());
    let cli = err.to_cli_error();
    assert_eq!(cli.exit_code().code(), 2);
    assert_eq!(cli.code(), Some("INVALID_ARGUMENT_PARTY_MANAGEMENT_ERROR"));
    assert!(
        cli.message()
            .ends_with("INVALID_ARGUMENT_PARTY_MANAGEMENT_ERROR: Synchronizer id x is unknown")
    );
}

#[tokio::test]
async fn bare_status_without_retry_info_is_not_retried() {
    // OUT_OF_RANGE is retried only because of RetryInfo, never by code alone.
    let srv = server(|_| Err(Status::out_of_range("offset beyond ledger end")))
        .start()
        .await;
    let conn = CantonChannel::new(&config(srv.addr)).unwrap();
    let err = get_api_info(&conn).await.unwrap_err();
    assert_eq!(srv.seen.calls(), 1);
    assert_eq!(err.to_string(), "OUT_OF_RANGE: offset beyond ledger end");
}

#[tokio::test]
async fn success_after_unavailable_failures() {
    let srv = server(|n| {
        if n <= 2 {
            Err(CantonStatus::new(
                Code::Unavailable,
                "ABORTED_DUE_TO_SHUTDOWN",
                1,
                "Shutdown in progress",
            )
            .retry_after(Duration::from_millis(1))
            .into_status())
        } else if n == 3 {
            Err(Status::deadline_exceeded("busy"))
        } else {
            Ok("admin-api".into())
        }
    })
    .start()
    .await;
    let conn = CantonChannel::new(&config(srv.addr).with_retry(fast_policy(5))).unwrap();
    assert_eq!(get_api_info(&conn).await.unwrap(), "admin-api");
    assert_eq!(srv.seen.calls(), 4);
}

#[tokio::test]
async fn no_token_means_no_authorization_header() {
    let srv = server(|_| Ok("admin-api".into())).start().await;
    let conn = CantonChannel::new(&config(srv.addr)).unwrap();
    get_api_info(&conn).await.unwrap();
    assert_eq!(srv.seen.authorization(), vec![None]);
}

#[tokio::test]
async fn unauthenticated_maps_to_usage_with_token_hint() {
    let srv = server(|_| {
        Err(
            CantonStatus::new(Code::Unauthenticated, "UNAUTHENTICATED", 6, "invalid token")
                .into_status(),
        )
    })
    .start()
    .await;
    let conn = CantonChannel::new(&config(srv.addr)).unwrap();
    let err = get_api_info(&conn).await.unwrap_err();
    assert_eq!(srv.seen.calls(), 1);
    let cli = err.to_cli_error();
    assert_eq!(cli.exit_code().code(), 2);
    assert_eq!(
        cli.hint(),
        Some("pass a valid admin token with --access-token-file or CANTON_ACCESS_TOKEN")
    );
}

#[tokio::test]
async fn unreachable_endpoint_gives_one_line_transient_error() {
    let port = dead_port().await;
    let address = format!("127.0.0.1:{port}");
    let conn = CantonChannel::new(&config(&address).with_retry(fast_policy(2))).unwrap();
    let err = get_api_info(&conn).await.unwrap_err();
    assert_eq!(err.origin, Origin::Connect);
    assert_eq!(err.code, Code::Unavailable);
    assert_eq!(err.attempts, 2);
    let cli = err.to_cli_error();
    assert_eq!(cli.exit_code().code(), 3);
    let msg = cli.message();
    assert!(
        msg.starts_with(&format!("cannot connect to admin API at {address}: ")),
        "{msg}"
    );
    assert!(msg.to_lowercase().contains("connection refused"), "{msg}");
    assert!(!msg.contains('\n'));
    assert_eq!(
        cli.hint(),
        Some(format!("is the node running and reachable at {address}? (set --admin-api / CANTON_ADMIN_API)").as_str())
    );

    // Eager connect reports the same way, without a call.
    let eager = CantonChannel::connect(&config(&address)).await.unwrap_err();
    assert_eq!(eager.exit_code().code(), 3);
    assert!(
        eager
            .message()
            .starts_with(&format!("cannot connect to admin API at {address}: "))
    );
    assert!(!eager.message().contains('\n'));
}

#[tokio::test]
async fn client_deadline_is_deadline_exceeded_and_retried() {
    let srv = server(|_| Ok("late".into()))
        .delay(Duration::from_millis(400))
        .start()
        .await;
    let cfg = config(srv.addr)
        .with_request_timeout(Some(Duration::from_millis(50)))
        .with_retry(fast_policy(2));
    let conn = CantonChannel::new(&cfg).unwrap();
    let err = get_api_info(&conn).await.unwrap_err();
    assert_eq!(err.code, Code::DeadlineExceeded, "{err:?}");
    assert_eq!(err.attempts, 2);
    assert_eq!(srv.seen.calls(), 2);
    let cli = err.to_cli_error();
    assert_eq!(cli.exit_code().code(), 3);
    assert!(cli.hint().unwrap().contains("--request-timeout"));
}

#[tokio::test]
async fn large_messages_pass_with_the_raised_limit_and_fail_clearly_below_it() {
    // 5 MiB: above tonic's 4 MiB default decoding limit.
    let big = "x".repeat(5 << 20);
    let srv = server(move |_| Ok(big.clone())).start().await;
    let conn = CantonChannel::new(&config(srv.addr)).unwrap();
    assert_eq!(get_api_info(&conn).await.unwrap().len(), 5 << 20);

    let small = CantonChannel::new(&config(srv.addr).with_max_message_bytes(1 << 20)).unwrap();
    let err = get_api_info(&small).await.unwrap_err();
    let cli = err.to_cli_error();
    assert_eq!(cli.exit_code().code(), 2, "{}", cli.message());
    assert!(cli.hint().unwrap().contains("--max-message-bytes"));
}

#[tokio::test]
async fn canton_status_round_trips_through_the_wire() {
    let srv = server(|_| {
        let mut metadata = BTreeMap::new();
        metadata.insert("mainPackageId".to_string(), "abc123".to_string());
        Err(canton_status(
            Code::NotFound,
            "DAR_NOT_FOUND",
            11,
            "No DAR with main package id abc123",
            metadata,
            None,
        ))
    })
    .start()
    .await;
    let conn = CantonChannel::new(&config(srv.addr)).unwrap();
    let err = get_api_info(&conn).await.unwrap_err();
    assert_eq!(err.code, Code::NotFound);
    assert_eq!(err.error_id.as_deref(), Some("DAR_NOT_FOUND"));
    assert_eq!(err.category, Some(11));
    assert_eq!(err.metadata["mainPackageId"], "abc123");
    assert_eq!(err.metadata["category"], "11");
    assert_eq!(err.retry_delay, None);
    assert_eq!(err.cause, "No DAR with main package id abc123");
    let request_id = err.request_id.clone().unwrap();
    assert!(
        err.message
            .starts_with(&format!("DAR_NOT_FOUND(11,{}): ", &request_id[..8]))
    );
    assert_eq!(
        err.to_string(),
        "DAR_NOT_FOUND: No DAR with main package id abc123"
    );
    assert_eq!(srv.seen.calls(), 1);
}

#[tokio::test]
async fn streaming_clients_carry_the_token_but_no_default_deadline() {
    let srv = server(|_| Ok("ledger-api".into())).start().await;
    let cfg = ClientConfig::ledger(srv.addr.to_string())
        .with_token(Some(canton_client::Secret::new("tok")));
    let conn = CantonChannel::new(&cfg).unwrap();
    let mut client = grpc_client!(streaming ApiInfoServiceClient, conn);
    client.get_api_info(GetApiInfoRequest {}).await.unwrap();
    assert_eq!(
        srv.seen.authorization(),
        vec![Some("Bearer tok".to_string())]
    );
    assert_eq!(srv.seen.timeouts(), vec![None]);
}

#[tokio::test]
async fn bad_configuration_is_a_usage_error_before_any_call() {
    let cases = [
        (
            ClientConfig::admin("localhost"),
            "--admin-api \"localhost\" has no port",
        ),
        (
            ClientConfig::ledger("ftp://node:1"),
            "--ledger-api \"ftp://node:1\" has unsupported scheme \"ftp\"",
        ),
        (
            ClientConfig::admin("node:5002").with_tls(canton_client::TlsOptions {
                ca_cert: Some("/nonexistent/ca.pem".into()),
                ..Default::default()
            }),
            "cannot read --ca-cert /nonexistent/ca.pem",
        ),
    ];
    for (cfg, message) in cases {
        let err = CantonChannel::new(&cfg).unwrap_err();
        assert_eq!(err.exit_code().code(), 2, "{}", err.message());
        assert!(err.message().starts_with(message), "{}", err.message());
        assert!(err.hint().is_some());
    }
}
