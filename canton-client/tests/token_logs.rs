//! The bearer token reaches the server as `Bearer <token>` and never appears in
//! log output or `Debug` output. Alone in its own test binary: tracing's
//! thread-local subscriber is only reliable when no other test runs beside it.

mod support;

use canton_client::status::CantonStatus;
use canton_client::{CantonChannel, CantonError, ClientConfig, RetryPolicy, Secret, grpc_client};
use canton_proto::connection::GetApiInfoRequest;
use canton_proto::connection::api_info_service_client::ApiInfoServiceClient;
use std::time::Duration;
use support::{capture_logs, server};
use tonic::{Code, Status};

const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJl";

async fn get_api_info(conn: &CantonChannel) -> Result<String, CantonError> {
    let client = grpc_client!(ApiInfoServiceClient, conn);
    conn.call(|_| {
        let mut client = client.clone();
        async move { client.get_api_info(GetApiInfoRequest {}).await }
    })
    .await
    .map(|r| r.into_inner().name)
}

#[tokio::test]
async fn token_reaches_server_as_bearer_and_never_appears_in_logs() {
    let (logs, _guard) = capture_logs();
    let srv = server(|n| match n {
        1 => Err(Status::unavailable("warming up")),
        2 => Err(CantonStatus::new(
            Code::OutOfRange,
            "INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR",
            12,
            "Not all events have been processed fully",
        )
        .retry_after(Duration::from_millis(5))
        .into_status()),
        3 => Err(Status::unauthenticated("token expired")),
        _ => Ok("admin-api".into()),
    })
    .start()
    .await;
    let policy = RetryPolicy::new(
        4,
        Duration::from_millis(5),
        Duration::from_millis(20),
        Duration::from_secs(20),
    );
    let cfg = ClientConfig::admin(srv.addr.to_string())
        .with_retry(policy)
        .with_token(Some(Secret::new(TOKEN)));
    let conn = CantonChannel::new(&cfg).unwrap();
    let err = get_api_info(&conn).await.unwrap_err();
    assert_eq!(err.code, Code::Unauthenticated);
    assert_eq!(get_api_info(&conn).await.unwrap(), "admin-api");

    let expected = Some(format!("Bearer {TOKEN}"));
    assert_eq!(srv.seen.authorization(), vec![expected; 4]);
    // The default deadline travels as grpc-timeout (60 s = 60000000u).
    assert_eq!(srv.seen.timeouts()[0].as_deref(), Some("60000000u"));

    let captured = logs.contents();
    assert!(
        captured.contains("attempt 1/4 failed: admin API at"),
        "retries are logged:\n{captured}"
    );
    assert!(captured.contains("attempt 2/4 failed"), "{captured}");
    // tonic/h2/hyper trace output is captured too: plenty of chances to leak.
    assert!(captured.lines().count() > 20, "{captured}");
    assert!(!captured.contains(TOKEN), "token leaked into logs");
    assert!(
        !captured.contains("c2VjcmV0LXBheWxvYWQ"),
        "token part leaked into logs"
    );

    let cli = err.to_cli_error();
    let texts = [
        format!("{cfg:?}"),
        format!("{conn:?}"),
        format!("{err:?}"),
        err.to_string(),
        cli.message().to_string(),
        cli.hint().unwrap_or_default().to_string(),
        cli.to_json().to_string(),
    ];
    for text in texts {
        assert!(
            !text.contains("c2VjcmV0LXBheWxvYWQ"),
            "token leaked: {text}"
        );
    }
    assert!(format!("{cfg:?}").contains("***"));
}
