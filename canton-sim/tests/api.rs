//! The APIs as a client meets them: reflection v1 and v1alpha listing the
//! exact service names, ApiInfo, injected faults, bearer tokens and TLS.

mod common;
use canton_proto::admin::package_service_client::PackageServiceClient;
use canton_proto::connection::GetApiInfoRequest;
use canton_proto::connection::api_info_service_client::ApiInfoServiceClient;
use canton_proto::ledger::state_service_client::StateServiceClient;
use canton_proto::ledger::update_service_client::UpdateServiceClient;
use canton_proto::ledger::{self as lapi};
use common::*;
use std::time::{Duration, Instant};
use tonic::Code;
use tonic::transport::Channel;

async fn list_v1(ch: Channel) -> Vec<String> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut s = ServerReflectionClient::new(ch)
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    match s
        .message()
        .await
        .unwrap()
        .unwrap()
        .message_response
        .unwrap()
    {
        MessageResponse::ListServicesResponse(l) => {
            let mut v: Vec<String> = l.service.into_iter().map(|s| s.name).collect();
            v.sort();
            v
        }
        other => panic!("{other:?}"),
    }
}

async fn list_v1alpha(ch: Channel) -> Vec<String> {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut s = ServerReflectionClient::new(ch)
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    match s
        .message()
        .await
        .unwrap()
        .unwrap()
        .message_response
        .unwrap()
    {
        MessageResponse::ListServicesResponse(l) => {
            let mut v: Vec<String> = l.service.into_iter().map(|s| s.name).collect();
            v.sort();
            v
        }
        other => panic!("{other:?}"),
    }
}

/// The method the upstream runbook's grpcurl command resolves by reflection.
async fn symbol_v1alpha(ch: Channel, symbol: &str) -> bool {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(symbol.into())),
    };
    let mut s = ServerReflectionClient::new(ch)
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    matches!(
        s.message().await.unwrap().unwrap().message_response.unwrap(),
        MessageResponse::FileDescriptorResponse(f) if !f.file_descriptor_proto.is_empty()
    )
}

#[tokio::test]
async fn reflection_lists_the_exact_services_over_v1_and_v1alpha() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProc::start(dir.path(), &[]);
    let admin = vec![
        "com.digitalasset.canton.admin.participant.v30.PackageService",
        "com.digitalasset.canton.admin.participant.v30.PartyManagementService",
        "com.digitalasset.canton.connection.v30.ApiInfoService",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ];
    let ledger = vec![
        "com.daml.ledger.api.v2.PackageService",
        "com.daml.ledger.api.v2.StateService",
        "com.daml.ledger.api.v2.UpdateService",
        "com.daml.ledger.api.v2.admin.PackageManagementService",
        "com.digitalasset.canton.connection.v30.ApiInfoService",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ];
    assert_eq!(list_v1(sim.admin_channel().await).await, admin);
    assert_eq!(list_v1alpha(sim.admin_channel().await).await, admin);
    assert_eq!(list_v1(sim.ledger_channel().await).await, ledger);
    assert_eq!(list_v1alpha(sim.ledger_channel().await).await, ledger);
    assert!(
        symbol_v1alpha(
            sim.admin_channel().await,
            "com.digitalasset.canton.admin.participant.v30.PartyManagementService.GetHighestOffsetByTimestamp"
        )
        .await
    );
    let control = list_v1(channel(sim.control_api()).await).await;
    assert!(
        control.contains(&"canton_dr.sim.v1.SimControl".to_string()),
        "{control:?}"
    );

    let name = |ch| async move {
        ApiInfoServiceClient::new(ch)
            .get_api_info(GetApiInfoRequest {})
            .await
            .unwrap()
            .into_inner()
            .name
    };
    assert_eq!(name(sim.admin_channel().await).await, "admin-api");
    assert_eq!(name(sim.ledger_channel().await).await, "ledger-api");
}

#[tokio::test]
async fn faults_fire_as_configured() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProc::start(dir.path(), &["--catch-up", "0s"]);
    sim.ctl(&["traffic", "--deposits", "10"]);
    let admin = sim.admin_channel().await;
    let list = |ch: Channel| async move {
        PackageServiceClient::new(ch)
            .list_dars(canton_proto::admin::ListDarsRequest {
                limit: 0,
                filter_name: String::new(),
            })
            .await
    };

    // Two admin calls answer UNAVAILABLE; the ledger API is untouched.
    let f = sim.ctl(&["fault", "unavailable", "--calls", "2", "--api", "admin"]);
    assert_eq!(f["unavailableAdminCalls"], 2);
    for _ in 0..2 {
        let e = list(admin.clone()).await.unwrap_err();
        assert_canton(&e, Code::Unavailable, "ABORTED_DUE_TO_SHUTDOWN");
        assert_eq!(details(&e).retry_delay, Some(Duration::from_secs(1)));
    }
    assert!(sim.ledger_end().await > 0);
    list(admin.clone()).await.unwrap();

    // Latency.
    sim.ctl(&["fault", "latency", "300ms"]);
    let t = Instant::now();
    list(admin.clone()).await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    sim.ctl(&["fault", "clear"]);

    // A stream cut after 3 messages.
    sim.ctl(&["fault", "cut-stream", "--after", "3"]);
    let end = sim.ledger_end().await;
    let mut s = UpdateServiceClient::new(sim.ledger_channel().await)
        .get_updates(lapi::GetUpdatesRequest {
            begin_exclusive: 0,
            end_inclusive: Some(end),
            update_format: Some(party_format(sim.treasury_party(), false)),
        })
        .await
        .unwrap()
        .into_inner();
    let mut got = 0;
    let err = loop {
        match s.message().await {
            Ok(Some(_)) => got += 1,
            Ok(None) => panic!("stream ended without the cut after {got}"),
            Err(e) => break e,
        }
    };
    assert_eq!(got, 3);
    assert_eq!(err.code(), Code::Unavailable);
    // Only one stream was cut.
    assert_eq!(sim.treasury_updates(0, end).await.len(), 10);
}

async fn ledger_end_with(addr: &str, token: Option<&str>) -> Result<i64, tonic::Status> {
    let mut req = tonic::Request::new(lapi::GetLedgerEndRequest {});
    if let Some(t) = token {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    StateServiceClient::new(channel(addr).await)
        .get_ledger_end(req)
        .await
        .map(|r| r.into_inner().offset)
}

async fn list_dars_with(addr: &str, token: Option<&str>) -> Result<usize, tonic::Status> {
    let mut req = tonic::Request::new(canton_proto::admin::ListDarsRequest {
        limit: 0,
        filter_name: String::new(),
    });
    if let Some(t) = token {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    PackageServiceClient::new(channel(addr).await)
        .list_dars(req)
        .await
        .map(|r| r.into_inner().dars.len())
}

#[tokio::test]
async fn tokens_are_enforced_as_canton_does() {
    let dir = tempfile::tempdir().unwrap();
    let admin_tokens = dir.path().join("admin.tokens");
    let ledger_tokens = dir.path().join("ledger.tokens");
    std::fs::write(&admin_tokens, "admin-secret\nreader-secret\n").unwrap();
    std::fs::write(&ledger_tokens, "ledger-admin\nledger-reader\n").unwrap();
    let state = dir.path().join("state");
    let sim = SimProc::start(
        &state,
        &[
            "--admin-token-file",
            admin_tokens.to_str().unwrap(),
            "--ledger-token-file",
            ledger_tokens.to_str().unwrap(),
        ],
    );
    let e = list_dars_with(sim.admin_api(), None).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(
        e.message().starts_with("An error occurred."),
        "redacted: {}",
        e.message()
    );
    assert_eq!(
        list_dars_with(sim.admin_api(), Some("wrong"))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        list_dars_with(sim.admin_api(), Some("reader-secret"))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        list_dars_with(sim.admin_api(), Some("admin-secret"))
            .await
            .unwrap(),
        1
    );

    assert_eq!(
        ledger_end_with(sim.ledger_api(), None)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    assert_eq!(
        ledger_end_with(sim.ledger_api(), Some("nope"))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    assert!(
        ledger_end_with(sim.ledger_api(), Some("ledger-reader"))
            .await
            .is_ok()
    );
    // A read-only token may not upload.
    let mut req = tonic::Request::new(canton_proto::ledger_admin::UploadDarFileRequest {
        dar_file: daml_dar::DarBuilder::new("x", "1.0.0").build().bytes,
        submission_id: String::new(),
        vetting_change: 0,
        synchronizer_id: String::new(),
    });
    req.metadata_mut()
        .insert("authorization", "Bearer ledger-reader".parse().unwrap());
    let e = canton_proto::ledger_admin::package_management_service_client::PackageManagementServiceClient::new(
        sim.ledger_channel().await,
    )
    .upload_dar_file(req)
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // Ledger reflection stays open, as in Canton.
    assert!(!list_v1(sim.ledger_channel().await).await.is_empty());
    // Tokens never reach the logs or the ready line.
    assert!(!sim.ready().to_string().contains("secret"));
}

#[tokio::test]
async fn tls_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = cert.cert.pem();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, &cert_pem).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let sim = SimProc::start(
        &dir.path().join("state"),
        &[
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
        ],
    );
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(cert_pem))
        .domain_name("localhost");
    let ch = Channel::from_shared(format!("https://{}", sim.admin_api()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let name = ApiInfoServiceClient::new(ch)
        .get_api_info(GetApiInfoRequest {})
        .await
        .unwrap()
        .into_inner()
        .name;
    assert_eq!(name, "admin-api");
    // Plaintext is refused by a TLS endpoint.
    let plain = Channel::from_shared(format!("http://{}", sim.ledger_api()))
        .unwrap()
        .connect()
        .await;
    let refused = match plain {
        Err(_) => true,
        Ok(ch) => StateServiceClient::new(ch)
            .get_ledger_end(lapi::GetLedgerEndRequest {})
            .await
            .is_err(),
    };
    assert!(refused);
}
