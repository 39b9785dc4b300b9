//! Files Canton would refuse: corrupt, truncated, zip-bomb-shaped and
//! non-DAR files are reported with the reason and Canton's error id, and are
//! never uploaded; a file that is not the DAR it is recorded as is refused.

mod support;

use daml_dar::{Corruption, DarBuilder};
use support::{Sim, TestDb, dar_sync, normalized, write_dars};

/// One valid DAR and one file for each way a DAR is refused.
fn bad_dir(dir: &std::path::Path) -> Vec<(&'static str, &'static str)> {
    write_dars(dir, "good", 1, 1);
    let cases: Vec<(&str, Corruption, &str)> = vec![
        (
            "corrupt-hash.dar",
            Corruption::HashMismatch,
            "DAR_PARSE_ERROR",
        ),
        (
            "garbage-dalf.dar",
            Corruption::GarbageMainDalf,
            "DAR_PARSE_ERROR",
        ),
        ("truncated.dar", Corruption::Truncated, "INVALID_DAR"),
        (
            "zip-bomb.dar",
            Corruption::ZipBomb {
                inflated_size: daml_dar::builder::CANTON_ZIP_BOMB_SIZE,
            },
            "ZIP_BOMB",
        ),
        (
            "zip-bomb-declared.dar",
            Corruption::ZipBombDeclared,
            "ZIP_BOMB",
        ),
        (
            "no-manifest.dar",
            Corruption::MissingManifest,
            "INVALID_DAR",
        ),
        (
            "wrong-format.dar",
            Corruption::WrongFormat("daml-lf-legacy".into()),
            "INVALID_DAR",
        ),
        (
            "missing-dalf.dar",
            Corruption::MissingMainDalf,
            "INVALID_ZIP_ENTRY",
        ),
        ("lf1.dar", Corruption::DamlLf1, "DAR_PARSE_ERROR"),
    ];
    let mut expected = Vec::new();
    for (name, c, id) in cases {
        DarBuilder::new("bad", "1.0.0")
            .dependencies(1)
            .corrupt(c)
            .build()
            .write_to(dir.join(name))
            .unwrap();
        expected.push((name, id));
    }
    std::fs::write(dir.join("readme.dar"), "This is a README, not a DAR.\n").unwrap();
    expected.push(("readme.dar", "INVALID_DAR"));
    std::fs::write(dir.join("empty.dar"), "").unwrap();
    expected.push(("empty.dar", "INVALID_DAR"));
    expected.sort();
    expected
}

fn invalid_ids(run: &support::Run) -> Vec<(String, String)> {
    let mut got: Vec<(String, String)> = run
        .of("invalid")
        .iter()
        .map(|l| {
            let path = l["path"].as_str().unwrap();
            let name = path.rsplit('/').next().unwrap().to_string();
            (name, l["errorId"].as_str().unwrap().to_string())
        })
        .collect();
    got.sort();
    got
}

fn expected_owned(e: &[(&str, &str)]) -> Vec<(String, String)> {
    e.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn inventory_reports_each_bad_file_with_cantons_error_id() {
    let work = tempfile::tempdir().unwrap();
    let expected = bad_dir(work.path());
    for full in [false, true] {
        let mut args = vec!["inventory", work.path().to_str().unwrap()];
        if full {
            args.push("--full");
        }
        let r = dar_sync(&args);
        r.expect(0);
        assert_eq!(invalid_ids(&r), expected_owned(&expected), "full={full}");
        assert_eq!(r.of("dar").len(), 1);
        let s = r.summary();
        assert_eq!(s["invalid"], expected.len());
        assert_eq!(s["check"], if full { "full" } else { "main-dalf" });
        if !full {
            insta::assert_json_snapshot!(
                "inventory_bad_files",
                normalized(&r.lines.iter().collect::<Vec<_>>(), work.path())
            );
        }
    }
}

#[test]
fn invalid_files_are_never_uploaded() {
    let work = tempfile::tempdir().unwrap();
    let expected = bad_dir(work.path());
    let sim = Sim::start(&[]);
    let before = sim.list_dars();
    let r = sim.dar_sync(&["upload", "--dir", work.path().to_str().unwrap()]);
    r.expect(2);
    assert_eq!(r.ids("upload", Some("uploaded")).len(), 1);
    assert_eq!(invalid_ids(&r), expected_owned(&expected));
    let s = r.summary();
    assert_eq!(s["invalid"], expected.len());
    assert_eq!(s["status"], "usage-error");
    assert!(r.stderr.contains("invalid file(s)"), "{}", r.stderr);
    // Only the valid DAR reached the node.
    let after = sim.list_dars();
    assert_eq!(after.len(), before.len() + 1);
    assert!(after.iter().all(|(_, name, _)| name != "bad"));
}

#[test]
fn a_file_that_is_not_the_recorded_dar_is_refused_not_uploaded() {
    let work = tempfile::tempdir().unwrap();
    let dars = write_dars(work.path(), "token", 7, 1);
    let path = work.path().join("token-0.dar");
    let db = TestDb::new();
    dar_sync(&["record", "--db-url", &db.url, path.to_str().unwrap()]).expect(0);
    // The file is replaced by a different build under the same name.
    let impostor = DarBuilder::new("token-token", "1.0.0").seed(999).build();
    impostor.write_to(&path).unwrap();
    assert_ne!(impostor.main_package_id, dars[0].main_package_id);

    let sim = Sim::start(&[]);
    let r = sim.dar_sync(&["upload", "--registry", "--db-url", &db.url]);
    r.expect(2);
    let refused = r.of("upload");
    assert_eq!(refused.len(), 1, "{r:#?}");
    let line = refused[0];
    assert_eq!(line["result"], "refused");
    assert_eq!(line["mainPackageId"], dars[0].main_package_id.as_str());
    assert_eq!(
        line["errorId"],
        "MAIN_PACKAGE_IN_DAR_DOES_NOT_MATCH_EXPECTED"
    );
    assert!(
        line["error"]
            .as_str()
            .unwrap()
            .contains(&impostor.main_package_id),
        "{line}"
    );
    assert!(
        line["hint"]
            .as_str()
            .unwrap()
            .contains("find the right file")
    );
    assert!(sim.user_dar_ids().is_empty(), "nothing uploaded");
}

#[test]
fn a_recorded_dar_without_its_file_is_still_missing() {
    let work = tempfile::tempdir().unwrap();
    let dars = write_dars(work.path(), "gone", 3, 1);
    let path = work.path().join("gone-0.dar");
    let db = TestDb::new();
    dar_sync(&["record", "--db-url", &db.url, path.to_str().unwrap()]).expect(0);
    std::fs::remove_file(&path).unwrap();
    let sim = Sim::start(&[]);
    let r = sim.dar_sync(&["upload", "--registry", "--db-url", &db.url]);
    r.expect(1);
    let line = r.of("upload")[0];
    assert_eq!(line["result"], "no-file");
    assert_eq!(line["mainPackageId"], dars[0].main_package_id.as_str());
    assert!(line["hint"].as_str().unwrap().contains("--dir"));
    assert_eq!(r.summary()["status"], "failed");
    // Pointing at a directory that holds it resolves it.
    let elsewhere = tempfile::tempdir().unwrap();
    dars[0]
        .write_to(elsewhere.path().join("renamed.dar"))
        .unwrap();
    sim.dar_sync(&[
        "upload",
        "--registry",
        "--db-url",
        &db.url,
        "--dir",
        elsewhere.path().to_str().unwrap(),
    ])
    .expect(0);
    assert_eq!(sim.user_dar_ids(), [dars[0].main_package_id.clone()]);
}

#[test]
fn bad_usage_is_exit_2_with_a_hint() {
    let r = dar_sync(&["inventory", "/nonexistent/dars"]);
    r.expect(2);
    assert!(r.stderr.contains("hint:"), "{}", r.stderr);
    let r = dar_sync(&["diff"]);
    r.expect(2);
    assert!(r.stderr.contains("--dir"), "{}", r.stderr);
    // A password typed on the command line is refused and never echoed.
    let r = dar_sync(&[
        "record",
        "--db-url",
        "postgresql://app:s3cret@127.0.0.1:1/x",
        "/nonexistent",
    ]);
    r.expect(2);
    assert!(r.stderr.contains("PGPASSWORD"), "{}", r.stderr);
    assert!(!r.stderr.contains("s3cret"));
    assert!(!r.lines.iter().any(|l| l.to_string().contains("s3cret")));
}
