//! Backup, more traffic and a late DAR, restore, and re-subscription: the
//! restored participant serves the SAME update ids under NEW offsets, has
//! lost the late DAR, and answers "not yet processed" while it catches up.

mod common;
use common::*;
use std::collections::HashMap;
use std::process::Command;
use tonic::Code;

#[tokio::test]
async fn restore_reassigns_offsets_and_forgets_late_dars() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let backup_dir = dir.path().join("backup-1");
    let args = [
        "--clock",
        "virtual",
        "--clock-start",
        "2025-03-01T00:00:00Z",
        "--catch-up",
        "0s",
    ];
    let sim = SimProc::start(&state, &args);
    sim.ctl(&[
        "traffic",
        "--deposits",
        "20",
        "--withdrawals",
        "5",
        "--noise",
        "5",
    ]);
    sim.ctl(&["advance-time", "1s"]);

    // Online backup through the plain `backup` command (the server holds the lock).
    let out = Command::new(BIN)
        .args(["--output", "json", "backup", "--state-dir"])
        .arg(&state)
        .arg("--to")
        .arg(&backup_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let backup_end = manifest["ledgerEnd"].as_i64().unwrap();
    assert!(backup_end > 0);
    // A second backup into the same directory is refused, not overwritten.
    let again = Command::new(BIN)
        .args(["backup", "--state-dir"])
        .arg(&state)
        .arg("--to")
        .arg(&backup_dir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(5));

    // After the backup: more traffic and a DAR upload.
    sim.ctl(&[
        "traffic",
        "--deposits",
        "30",
        "--withdrawals",
        "10",
        "--noise",
        "10",
    ]);
    sim.ctl(&["advance-time", "1s"]);
    let late = daml_dar::DarBuilder::new("late-token", "1.0.0")
        .seed(7)
        .build();
    let mut admin = canton_proto::admin::package_service_client::PackageServiceClient::new(
        sim.admin_channel().await,
    );
    admin
        .upload_dar(canton_proto::admin::UploadDarRequest {
            dars: vec![canton_proto::admin::upload_dar_request::UploadDarData {
                bytes: late.bytes.clone(),
                description: Some("late".into()),
                expected_main_package_id: None,
            }],
            vet_all_packages: true,
            synchronize_vetting: false,
            synchronizer_id: None,
        })
        .await
        .unwrap();
    assert!(
        sim.list_dar_names()
            .await
            .contains(&"late-token".to_string())
    );

    let end_before = sim.ledger_end().await;
    let before: HashMap<String, (i64, i64)> = sim
        .treasury_updates(0, end_before)
        .await
        .into_iter()
        .map(|(id, off, rt)| (id, (off, rt)))
        .collect();
    let truth = sim.ctl_lines(&["update-ids", "--party", sim.treasury_party()]);
    assert_eq!(
        truth.len(),
        before.len(),
        "every treasury update is visible"
    );
    let last_rt = before.values().map(|(_, rt)| *rt).max().unwrap();

    // A restore is refused while the node runs.
    let refused = Command::new(BIN)
        .args(["restore", "--state-dir"])
        .arg(&state)
        .arg("--from")
        .arg(&backup_dir)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("error:"));

    assert_eq!(sim.stop(), 0);
    let out = Command::new(BIN)
        .args(["--output", "json", "restore", "--state-dir"])
        .arg(&state)
        .arg("--from")
        .arg(&backup_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The restored node works off its backlog over 1.5 s.
    let sim = SimProc::start(&state, &["--clock", "virtual", "--catch-up", "1500ms"]);
    assert_eq!(
        sim.ready()["incarnation"],
        2,
        "incarnation comes from the backup"
    );
    let e = sim.lookup(&rfc3339(last_rt), false).await.unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{e:?}");
    assert_eq!(
        details(&e).error_info.unwrap().reason,
        "INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR"
    );
    let status = sim.wait_caught_up();
    assert_eq!(status["processedUpdates"], status["synchronizerUpdates"]);

    let end_after = sim.ledger_end().await;
    let after: HashMap<String, (i64, i64)> = sim
        .treasury_updates(0, end_after)
        .await
        .into_iter()
        .map(|(id, off, rt)| (id, (off, rt)))
        .collect();
    let mut ids_before: Vec<&String> = before.keys().collect();
    let mut ids_after: Vec<&String> = after.keys().collect();
    ids_before.sort();
    ids_after.sort();
    assert_eq!(ids_before, ids_after, "same update ids");
    let mut reassigned = 0;
    for (id, (off, rt)) in &after {
        let (old_off, old_rt) = before[id];
        assert_eq!(*rt, old_rt, "record times never change");
        if old_off > backup_end {
            assert_ne!(
                *off, old_off,
                "update {id} kept offset {off} across the restore"
            );
            reassigned += 1;
        } else {
            assert_eq!(
                *off, old_off,
                "updates before the backup keep their offsets"
            );
        }
    }
    assert!(
        reassigned >= 40,
        "only {reassigned} updates were re-processed"
    );

    // The lookup now answers with the new offset of the last update.
    let newest = after.values().find(|(_, rt)| *rt == last_rt).unwrap().0;
    assert_eq!(sim.lookup(&rfc3339(last_rt), false).await.unwrap(), newest);

    // The DAR uploaded after the backup is gone; the built-in one is there.
    let names = sim.list_dar_names().await;
    assert!(!names.contains(&"late-token".to_string()), "{names:?}");
    assert!(names.contains(&"canton-builtin-admin-workflow-ping".to_string()));
}

#[test]
fn restore_refuses_a_directory_that_is_not_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["restore", "--state-dir"])
        .arg(dir.path())
        .arg("--from")
        .arg(dir.path().join("nope"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a canton-sim backup"), "{err}");
}
