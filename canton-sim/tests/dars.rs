//! DARs over the admin and ledger APIs: the built-in DAR, 8 MiB and 50 MiB
//! uploads, corrupt DARs refused with Canton's ids, the expected main package
//! check, idempotent re-upload, listing, GetDar bytes, removal, and 3.4's
//! synchronizer autodetection rule.

mod common;
use canton_proto::admin::package_service_client::PackageServiceClient;
use canton_proto::admin::upload_dar_request::UploadDarData;
use canton_proto::admin::*;
use canton_proto::ledger_admin::package_management_service_client::PackageManagementServiceClient;
use common::*;
use daml_dar::{Compression, Corruption, DarBuilder};
use tonic::Code;

fn upload(bytes: Vec<u8>, expected: Option<String>) -> UploadDarRequest {
    UploadDarRequest {
        dars: vec![UploadDarData {
            bytes,
            description: None,
            expected_main_package_id: expected,
        }],
        vet_all_packages: true,
        synchronize_vetting: false,
        synchronizer_id: None,
    }
}

#[tokio::test]
async fn uploads_lists_gets_and_removes_dars() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProc::start(dir.path(), &[]);
    let mut c = PackageServiceClient::new(sim.admin_channel().await)
        .max_decoding_message_size(64 * 1024 * 1024);

    let initial = c
        .list_dars(ListDarsRequest {
            limit: 0,
            filter_name: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .dars;
    assert_eq!(initial.len(), 1);
    assert_eq!(initial[0].name, "canton-builtin-admin-workflow-ping");

    let big = DarBuilder::new("big-token", "2.0.0")
        .target_size(8 * 1024 * 1024)
        .compression(Compression::Store)
        .build();
    assert!(big.bytes.len() >= 8 * 1024 * 1024);
    let ids = c
        .upload_dar(upload(big.bytes.clone(), Some(big.main_package_id.clone())))
        .await
        .unwrap()
        .into_inner()
        .dar_ids;
    assert_eq!(ids, vec![big.main_package_id.clone()]);
    // Idempotent re-upload.
    let ids = c
        .upload_dar(upload(big.bytes.clone(), None))
        .await
        .unwrap()
        .into_inner()
        .dar_ids;
    assert_eq!(ids, vec![big.main_package_id.clone()]);

    let got = c
        .get_dar(GetDarRequest {
            main_package_id: big.main_package_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        got.payload, big.bytes,
        "GetDar returns the bytes as uploaded"
    );
    let data = got.data.unwrap();
    assert_eq!(
        (data.name.as_str(), data.version.as_str()),
        ("big-token", "2.0.0")
    );
    assert_eq!(data.description, format!("DAR_{}", big.main_package_id));

    let small = DarBuilder::new("acme-token", "1.0.0")
        .dependencies(2)
        .build();
    c.upload_dar(upload(small.bytes.clone(), None))
        .await
        .unwrap();
    let listed = c
        .list_dars(ListDarsRequest {
            limit: 0,
            filter_name: "acme".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .dars;
    assert_eq!(
        listed.iter().map(|d| d.main.clone()).collect::<Vec<_>>(),
        vec![small.main_package_id.clone()]
    );
    let limited = c
        .list_dars(ListDarsRequest {
            limit: 2,
            filter_name: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .dars;
    assert_eq!(limited.len(), 2);
    let contents = c
        .get_dar_contents(GetDarContentsRequest {
            main_package_id: small.main_package_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        contents.packages.len(),
        3,
        "main package and two dependencies"
    );
    assert_eq!(contents.packages[0].package_id, small.main_package_id);

    let validated = c
        .validate_dar(ValidateDarRequest {
            data: small.bytes.clone(),
            filename: "x.dar".into(),
            synchronizer_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(validated.main_package_id, small.main_package_id);

    c.remove_dar(RemoveDarRequest {
        main_package_id: small.main_package_id.clone(),
    })
    .await
    .unwrap();
    let e = c
        .get_dar(GetDarRequest {
            main_package_id: small.main_package_id.clone(),
        })
        .await
        .unwrap_err();
    assert_canton(&e, Code::NotFound, "DAR_NOT_FOUND");
    let e = c
        .remove_dar(RemoveDarRequest {
            main_package_id: "not-an-id".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let ping = initial[0].main.clone();
    let e = c
        .remove_dar(RemoveDarRequest {
            main_package_id: ping,
        })
        .await
        .unwrap_err();
    assert_canton(&e, Code::FailedPrecondition, "PACKAGE_OR_DAR_REMOVAL_ERROR");

    // The ledger API shares the store.
    let mut l = PackageManagementServiceClient::new(sim.ledger_channel().await);
    let known = l
        .list_known_packages(canton_proto::ledger_admin::ListKnownPackagesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        known
            .package_details
            .iter()
            .any(|p| p.package_id == big.main_package_id)
    );
}

#[tokio::test]
async fn refuses_bad_dars_with_cantons_ids() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProc::start(dir.path(), &[]);
    let mut c = PackageServiceClient::new(sim.admin_channel().await);
    let cases = [
        (Corruption::NotAZip, "INVALID_DAR"),
        (Corruption::MissingManifest, "INVALID_DAR"),
        (Corruption::WrongFormat("daml-lf-x".into()), "INVALID_DAR"),
        (Corruption::Truncated, "INVALID_DAR"),
        (Corruption::HashMismatch, "DAR_PARSE_ERROR"),
        (Corruption::ZipBombDeclared, "ZIP_BOMB"),
    ];
    for (corruption, id) in cases {
        let bad = DarBuilder::new("bad", "1.0.0")
            .corrupt(corruption.clone())
            .build();
        let e = c.upload_dar(upload(bad.bytes, None)).await.unwrap_err();
        assert_canton(&e, Code::InvalidArgument, id);
    }
    let good = DarBuilder::new("good", "1.0.0").build();
    let e = c
        .upload_dar(upload(good.bytes.clone(), Some("00".repeat(32))))
        .await
        .unwrap_err();
    assert_canton(
        &e,
        Code::FailedPrecondition,
        "MAIN_PACKAGE_IN_DAR_DOES_NOT_MATCH_EXPECTED",
    );
    let mut long = upload(good.bytes, None);
    long.dars[0].description = Some("x".repeat(256));
    let e = c.upload_dar(long).await.unwrap_err();
    assert_canton(&e, Code::InvalidArgument, "INVALID_DAR_FILE_NAME");
    let names = sim.list_dar_names().await;
    assert_eq!(
        names,
        vec!["canton-builtin-admin-workflow-ping".to_string()],
        "nothing half-stored"
    );
}

#[tokio::test]
async fn fifty_mib_dar_through_the_ledger_api() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProc::start(dir.path(), &[]);
    let dar = DarBuilder::new("huge-token", "1.0.0")
        .target_size(50 * 1024 * 1024)
        .compression(Compression::Store)
        .build();
    let mut l = PackageManagementServiceClient::new(sim.ledger_channel().await);
    l.upload_dar_file(canton_proto::ledger_admin::UploadDarFileRequest {
        dar_file: dar.bytes.clone(),
        submission_id: "s1".into(),
        vetting_change: 0,
        synchronizer_id: String::new(),
    })
    .await
    .unwrap();
    let mut c = PackageServiceClient::new(sim.admin_channel().await)
        .max_decoding_message_size(64 * 1024 * 1024);
    let got = c
        .get_dar(GetDarRequest {
            main_package_id: dar.main_package_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.data.unwrap().description, "uploaded-via-ledger-api");
    assert_eq!(got.payload.len(), dar.bytes.len());
}

#[tokio::test]
async fn vet_all_without_a_synchronizer_needs_exactly_one_under_3_4() {
    let dar = DarBuilder::new("acme", "1.0.0").build();
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProc::start(dir.path(), &["--extra-synchronizers", "1"]);
    let mut c = PackageServiceClient::new(sim.admin_channel().await);
    let e = c
        .upload_dar(upload(dar.bytes.clone(), None))
        .await
        .unwrap_err();
    assert_canton(
        &e,
        Code::FailedPrecondition,
        "PACKAGE_SERVICE_CANNOT_AUTODETECT_SYNCHRONIZER",
    );
    let mut req = upload(dar.bytes.clone(), None);
    req.synchronizer_id = Some(sim.synchronizer_id().to_string());
    c.upload_dar(req).await.unwrap();
    drop(sim);

    // 3.3 vets on every connected synchronizer instead.
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProc::start(
        dir.path(),
        &["--extra-synchronizers", "1", "--semantics", "3.3"],
    );
    let mut c = PackageServiceClient::new(sim.admin_channel().await);
    c.upload_dar(upload(dar.bytes, None)).await.unwrap();
}
