//! Runbook A step 4 against canton-sim and a real Integration DB: DARs
//! uploaded after a backup are lost by a restore; `diff` names exactly those,
//! `upload` puts them back, and a second run does nothing.

mod support;

use support::{Sim, TestDb, ids_of, normalized, write_dars};

#[test]
fn restore_loses_late_dars_and_upload_brings_back_exactly_those() {
    let work = tempfile::tempdir().unwrap();
    let early_dir = work.path().join("early");
    let late_dir = work.path().join("late");
    let early = write_dars(&early_dir, "early", 100, 3);
    let late = write_dars(&late_dir, "late", 200, 2);
    let db = TestDb::new();
    let mut sim = Sim::start(&[]);
    let early_s = early_dir.to_str().unwrap();
    let late_s = late_dir.to_str().unwrap();

    // Onboarding: the early DARs go up and are recorded.
    let r = sim.dar_sync(&["upload", "--dir", early_s, "--db-url", &db.url]);
    r.expect(0);
    assert_eq!(r.ids("upload", Some("uploaded")), ids_of(&early));
    assert_eq!(r.summary()["confirmed"], 3);
    assert_eq!(db.registry_ids(), ids_of(&early));

    let backup_dir = work.path().join("backup");
    sim.backup(&backup_dir);
    let backup_time = canton_dr_cli::time::format_record_time(chrono::Utc::now());

    // After the backup, more DARs go up.
    std::thread::sleep(std::time::Duration::from_millis(5));
    sim.dar_sync(&["upload", "--dir", late_s, "--db-url", &db.url])
        .expect(0);
    let mut all = [ids_of(&early), ids_of(&late)].concat();
    all.sort();
    assert_eq!(sim.user_dar_ids(), all);
    let recorded_before = db.registry();

    // Disaster: the participant is restored from the backup.
    sim.restore_and_restart(&backup_dir);
    assert_eq!(sim.user_dar_ids(), ids_of(&early));

    // The registry since the backup names exactly the lost DARs.
    let d = sim.dar_sync(&[
        "diff",
        "--registry",
        "--since",
        &backup_time,
        "--db-url",
        &db.url,
        "--check",
    ]);
    d.expect(1);
    assert_eq!(d.ids("missing", None), ids_of(&late));
    assert!(d.of("present").is_empty());
    assert_eq!(d.summary()["status"], "failed");
    assert_eq!(d.of("error")[0]["exitCode"], 1);
    assert!(d.stderr.contains("2 DAR(s) missing"), "{}", d.stderr);

    // So does the directory view, with the early ones present and the
    // built-in DAR marked as such.
    let d = sim.dar_sync(&["diff", "--dir", early_s, "--dir", late_s]);
    d.expect(0);
    assert_eq!(d.ids("missing", None), ids_of(&late));
    assert_eq!(d.ids("present", None), ids_of(&early));
    let extra = d.of("extra");
    assert_eq!(extra.len(), 1, "{extra:?}");
    assert_eq!(extra[0]["name"], "canton-builtin-admin-workflow-ping");
    assert_eq!(extra[0]["builtin"], true);
    insta::assert_json_snapshot!(
        "diff_after_restore",
        normalized(&d.lines.iter().collect::<Vec<_>>(), work.path())
    );

    // Dry run: same shape, nothing sent.
    let dry = sim.dar_sync(&[
        "upload",
        "--registry",
        "--since",
        &backup_time,
        "--db-url",
        &db.url,
        "--dry-run",
    ]);
    dry.expect(0);
    assert_eq!(dry.ids("upload", Some("dry-run")), ids_of(&late));
    assert_eq!(dry.summary()["wouldUpload"], 2);
    assert_eq!(sim.user_dar_ids(), ids_of(&early));

    // Upload from the registry alone: the files are found at their recorded paths.
    let up = sim.dar_sync(&[
        "upload",
        "--registry",
        "--since",
        &backup_time,
        "--db-url",
        &db.url,
    ]);
    up.expect(0);
    assert_eq!(up.ids("upload", Some("uploaded")), ids_of(&late));
    assert_eq!(up.summary()["confirmed"], 2);
    assert_eq!(up.summary()["status"], "ok");
    assert_eq!(sim.user_dar_ids(), all);

    // Second run: nothing to do.
    let again = sim.dar_sync(&[
        "upload",
        "--registry",
        "--since",
        &backup_time,
        "--db-url",
        &db.url,
    ]);
    again.expect(0);
    assert!(again.of("upload").is_empty(), "{again:#?}");
    assert_eq!(again.ids("present", None), ids_of(&late));
    assert_eq!(again.summary()["uploaded"], 0);
    sim.dar_sync(&["diff", "--dir", early_s, "--dir", late_s, "--check"])
        .expect(0);

    // Nothing doubled: each DAR once on the node and in the registry, whose
    // upload times are the first ones (expected since then).
    let listed = sim.list_dars();
    let mut ids: Vec<&str> = listed.iter().map(|(id, _, _)| id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), listed.len());
    let after = db.registry();
    assert_eq!(after.len(), 5);
    for r in &recorded_before {
        let now = after
            .iter()
            .find(|a| a.main_package_id == r.main_package_id)
            .unwrap();
        assert_eq!(now.uploaded_at, r.uploaded_at, "{}", r.main_package_id);
    }
    let audit = db.audit();
    assert!(
        audit.iter().any(|a| a.command == "upload" && a.dry_run),
        "{audit:?}"
    );
    assert!(audit.iter().all(|a| a.tool == "dar-sync"));
}
