//! `dar-sync upload` and `diff` against canton-sim: ids as the node computes
//! them, large DARs, a node that goes down mid-upload, retries, vetting and
//! synchronizer flags, tokens, ListDars paging.

mod support;

use daml_dar::{Compression, DarBuilder};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;
use support::{Sim, TestDb, command, ids_of, write_dars};

#[test]
fn computed_ids_match_what_the_node_reports_for_every_shape_of_dar() {
    let work = tempfile::tempdir().unwrap();
    let shapes = [
        DarBuilder::new("plain", "1.0.0"),
        DarBuilder::new("with-deps", "2.1.0").dependencies(4),
        DarBuilder::new("stored", "0.0.1").compression(Compression::Store),
        DarBuilder::new("padded-main", "3.0.0")
            .target_size(300 * 1024)
            .padding_placement(daml_dar::PaddingPlacement::Main),
        DarBuilder::new("padded-deps", "3.0.1")
            .dependencies(2)
            .target_size(300 * 1024),
        DarBuilder::new("lf-2-dev", "1.0.0")
            .lf_minor("dev")
            .sdk_version("3.4.0"),
    ];
    let mut built = Vec::new();
    for (i, b) in shapes.into_iter().enumerate() {
        let d = b.seed(i as u64).build();
        d.write_to(work.path().join(format!("{i}.dar"))).unwrap();
        built.push(d);
    }
    let dir = work.path().to_str().unwrap();
    let inv = support::dar_sync(&["inventory", dir]);
    inv.expect(0);
    assert_eq!(inv.ids("dar", None), ids_of(&built), "inventory = builder");

    let sim = Sim::start(&[]);
    sim.dar_sync(&["upload", "--dir", dir]).expect(0);
    let listed = sim.list_dars();
    for d in &built {
        let (id, name, version) = listed
            .iter()
            .find(|(id, _, _)| *id == d.main_package_id)
            .unwrap_or_else(|| {
                panic!(
                    "{} ({}) not on the node: {listed:?}",
                    d.name, d.main_package_id
                )
            });
        assert_eq!(
            (id, name, version),
            (&d.main_package_id, &d.name, &d.version)
        );
        let line = inv
            .of("dar")
            .into_iter()
            .find(|l| l["mainPackageId"] == id.as_str())
            .unwrap();
        assert_eq!(line["name"], name.as_str());
        assert_eq!(line["version"], version.as_str());
    }
}

#[test]
fn a_50_mib_dar_goes_up() {
    let work = tempfile::tempdir().unwrap();
    let big = DarBuilder::new("big-token", "1.0.0")
        .dependencies(3)
        .compression(Compression::Store)
        .target_size(50 * 1024 * 1024)
        .build();
    assert!(big.bytes.len() >= 50 * 1024 * 1024);
    big.write_to(work.path().join("big.dar")).unwrap();
    let dir = work.path().to_str().unwrap();
    let sim = Sim::start(&[]);

    // A client limit below the DAR's size fails with the fix named.
    let small = sim.dar_sync(&["upload", "--dir", dir, "--max-message-bytes", "4MiB"]);
    small.expect(2);
    assert!(
        small.stderr.contains("--max-message-bytes"),
        "{}",
        small.stderr
    );
    assert!(sim.user_dar_ids().is_empty());

    let r = sim.dar_sync(&["upload", "--dir", dir]);
    r.expect(0);
    let line = r.of("upload")[0];
    assert_eq!(line["result"], "uploaded");
    assert_eq!(line["size"], big.bytes.len());
    assert_eq!(line["sha256"], daml_dar::sha256_hex(&big.bytes).as_str());
    assert_eq!(
        sim.user_dar_ids(),
        std::slice::from_ref(&big.main_package_id)
    );
}

#[test]
fn unavailable_answers_are_retried() {
    let work = tempfile::tempdir().unwrap();
    let dars = write_dars(work.path(), "retry", 40, 3);
    let sim = Sim::start(&[]);
    // The first ListDars and the first upload attempts fail.
    sim.ctl(&["fault", "unavailable", "--calls", "3", "--api", "admin"]);
    let r = sim.dar_sync(&["upload", "--dir", work.path().to_str().unwrap()]);
    r.expect(0);
    assert_eq!(r.ids("upload", Some("uploaded")), ids_of(&dars));
    assert_eq!(sim.user_dar_ids(), ids_of(&dars));
}

#[test]
fn a_node_down_mid_upload_is_finished_by_a_rerun_with_nothing_doubled() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("dars");
    std::fs::create_dir(&dir).unwrap();
    let mut dars = Vec::new();
    for i in 0..6u64 {
        let d = DarBuilder::new(format!("slow-{i}"), "1.0.0")
            .seed(i)
            .dependencies(1)
            .compression(Compression::Store)
            .target_size(2 * 1024 * 1024)
            .build();
        d.write_to(dir.join(format!("slow-{i}.dar"))).unwrap();
        dars.push(d);
    }
    let db = TestDb::new();
    let mut sim = Sim::start(&[]);
    // Slow calls, so the node can be killed between two uploads.
    sim.ctl(&["fault", "latency", "400ms"]);
    let mut child = command(&[
        "upload",
        "--admin-api",
        sim.admin_api(),
        "--dir",
        dir.to_str().unwrap(),
        "--db-url",
        &db.url,
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["result"], "uploaded", "{first}");
    sim.kill();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(3), "stdout: {rest}\nstderr: {stderr}");
    assert!(stderr.contains("is the node running"), "{stderr}");
    let error: serde_json::Value = serde_json::from_str(rest.lines().last().unwrap()).unwrap();
    assert_eq!(error["status"], "unavailable");

    // The node comes back; the rerun uploads the rest.
    sim.restart();
    let on_node_before = sim.user_dar_ids();
    assert!(on_node_before.len() < dars.len(), "{on_node_before:?}");
    let r = sim.dar_sync(&[
        "upload",
        "--dir",
        dir.to_str().unwrap(),
        "--db-url",
        &db.url,
    ]);
    r.expect(0);
    let mut uploaded = r.ids("upload", Some("uploaded"));
    uploaded.extend(on_node_before.iter().cloned());
    uploaded.sort();
    assert_eq!(
        uploaded,
        ids_of(&dars),
        "each DAR uploaded once across the runs"
    );
    assert_eq!(sim.user_dar_ids(), ids_of(&dars));
    assert_eq!(db.registry_ids(), ids_of(&dars));
    let listed = sim.list_dars();
    let mut ids: Vec<&String> = listed.iter().map(|(id, _, _)| id).collect();
    ids.dedup();
    assert_eq!(ids.len(), listed.len(), "nothing doubled on the node");
    let audit = db.audit();
    assert_eq!(audit[0].command, "upload");
    assert_eq!(audit[0].outcome, Some(integration_db::audit::Outcome::Ok));
    assert!(
        audit
            .iter()
            .any(|a| a.outcome == Some(integration_db::audit::Outcome::Failed)),
        "{audit:?}"
    );

    let again = sim.dar_sync(&[
        "upload",
        "--dir",
        dir.to_str().unwrap(),
        "--db-url",
        &db.url,
    ]);
    again.expect(0);
    assert!(again.of("upload").is_empty());
}

#[test]
fn several_synchronizers_need_a_synchronizer_id() {
    let work = tempfile::tempdir().unwrap();
    let dars = write_dars(work.path(), "multi", 50, 1);
    let dir = work.path().to_str().unwrap();
    let sim = Sim::start(&["--extra-synchronizers", "1"]);
    let r = sim.dar_sync(&["upload", "--dir", dir]);
    r.expect(2);
    let err = r.of("error")[0];
    assert_eq!(
        err["code"],
        "PACKAGE_SERVICE_CANNOT_AUTODETECT_SYNCHRONIZER"
    );
    assert!(
        err["hint"].as_str().unwrap().contains("--synchronizer-id"),
        "{err}"
    );
    assert!(r.stderr.contains("hint:") && r.stderr.contains("--synchronizer-id"));
    assert!(sim.user_dar_ids().is_empty());

    let r = sim.dar_sync(&["upload", "--dir", dir, "--synchronizer-id", "nope::1220ab"]);
    r.expect(2);
    assert_eq!(
        r.of("error")[0]["code"],
        "PACKAGE_SERVICE_NOT_CONNECTED_TO_SYNCHRONIZER"
    );

    sim.dar_sync(&[
        "upload",
        "--dir",
        dir,
        "--synchronizer-id",
        sim.synchronizer_id(),
    ])
    .expect(0);
    assert_eq!(sim.user_dar_ids(), ids_of(&dars));

    // Without vetting no synchronizer is needed.
    let more = write_dars(&work.path().join("more"), "novet", 60, 1);
    sim.dar_sync(&[
        "upload",
        "--dir",
        work.path().join("more").to_str().unwrap(),
        "--no-vet",
        "--no-synchronize-vetting",
    ])
    .expect(0);
    assert!(sim.user_dar_ids().contains(&more[0].main_package_id));
}

#[test]
fn admin_tokens_come_from_a_file() {
    let work = tempfile::tempdir().unwrap();
    let tokens = work.path().join("tokens");
    std::fs::write(&tokens, "admin-secret-token\nreader-token\n").unwrap();
    let mine = work.path().join("mine");
    std::fs::write(&mine, "admin-secret-token\n").unwrap();
    let dars = write_dars(&work.path().join("d"), "tok", 70, 1);
    let dir = work.path().join("d");
    let dir = dir.to_str().unwrap();
    let sim = Sim::start(&["--admin-token-file", tokens.to_str().unwrap()]);
    let r = sim.dar_sync(&["diff", "--dir", dir]);
    r.expect(2);
    assert!(r.stderr.contains("--access-token-file"), "{}", r.stderr);
    sim.dar_sync(&[
        "upload",
        "--dir",
        dir,
        "--access-token-file",
        mine.to_str().unwrap(),
    ])
    .expect(0);
    let r = sim.dar_sync(&[
        "diff",
        "--dir",
        dir,
        "--access-token-file",
        mine.to_str().unwrap(),
    ]);
    r.expect(0);
    assert_eq!(r.ids("present", None), ids_of(&dars));
    assert!(!r.stderr.contains("admin-secret-token"));
}

#[test]
fn listing_pages_by_growing_the_limit() {
    let work = tempfile::tempdir().unwrap();
    let dars = write_dars(work.path(), "page", 80, 5);
    let dir = work.path().to_str().unwrap();
    let sim = Sim::start(&[]);
    sim.dar_sync(&["upload", "--dir", dir, "--list-limit", "2"])
        .expect(0);
    // 5 DARs + the built-in one, listed 2 at a time at first.
    let r = sim.dar_sync(&["diff", "--dir", dir, "--list-limit", "2", "--check"]);
    r.expect(0);
    assert_eq!(r.ids("present", None), ids_of(&dars));
    assert_eq!(r.of("extra").len(), 1);
    assert_eq!(r.summary()["missing"], 0);
}

#[test]
fn an_unreachable_node_is_exit_3() {
    let work = tempfile::tempdir().unwrap();
    write_dars(work.path(), "x", 1, 1);
    let start = std::time::Instant::now();
    let r = support::dar_sync(&[
        "diff",
        "--admin-api",
        "127.0.0.1:1",
        "--dir",
        work.path().to_str().unwrap(),
    ]);
    r.expect(3);
    assert_eq!(r.of("error")[0]["status"], "unavailable");
    assert!(r.stderr.contains("--admin-api"), "{}", r.stderr);
    assert!(start.elapsed() < Duration::from_secs(60));
}

#[test]
fn record_is_idempotent_all_or_nothing_and_audited() {
    let work = tempfile::tempdir().unwrap();
    let dars = write_dars(work.path(), "rec", 90, 2);
    let dir = work.path().to_str().unwrap();
    let db = TestDb::new();
    let at = "2025-11-27T06:00:00.000000Z";

    let dry = support::dar_sync(&[
        "record",
        "--db-url",
        &db.url,
        "--uploaded-at",
        at,
        "--dry-run",
        dir,
    ]);
    dry.expect(0);
    assert!(
        dry.of("recorded")
            .iter()
            .all(|l| l["new"] == true && l["dryRun"] == true)
    );
    assert!(db.registry().is_empty(), "a dry run records nothing");

    let r = support::dar_sync(&["record", "--db-url", &db.url, "--uploaded-at", at, dir]);
    r.expect(0);
    assert_eq!(r.ids("recorded", None), ids_of(&dars));
    assert_eq!(r.summary()["new"], 2);
    let rows = db.registry();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|row| canton_dr_cli::time::format_record_time(row.uploaded_at) == at)
    );
    assert!(
        rows.iter()
            .all(|row| row.source_path.as_deref().unwrap().starts_with('/'))
    );

    let again = support::dar_sync(&["record", "--db-url", &db.url, dir]);
    again.expect(0);
    assert_eq!(again.summary()["new"], 0);
    assert_eq!(db.registry().len(), 2);
    assert!(
        db.registry()
            .iter()
            .all(|row| canton_dr_cli::time::format_record_time(row.uploaded_at) == at),
        "the earliest upload time is kept"
    );

    std::fs::write(work.path().join("broken.dar"), "nope").unwrap();
    let more = write_dars(&work.path().join("sub"), "late", 95, 1);
    let bad = support::dar_sync(&["record", "--db-url", &db.url, dir]);
    bad.expect(2);
    assert_eq!(bad.of("invalid").len(), 1);
    assert!(bad.of("recorded").is_empty());
    assert!(
        !db.registry_ids().contains(&more[0].main_package_id),
        "all or nothing"
    );

    let audit = db.audit();
    assert_eq!(audit.len(), 3, "{audit:?}");
    assert!(audit.iter().all(|a| a.command == "record"));
    assert_eq!(audit.iter().filter(|a| a.dry_run).count(), 1);
}
