//! End-to-end tests of `scripts/drill.sh`, the main job: the whole drill on
//! debug binaries at scale 1 must pass, a drill with an invariant broken on
//! purpose must fail loudly, and neither may leave anything running.

use canton_dr_testkit::cargo_bin;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn drill() -> Command {
    let mut c = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/drill.sh"));
    let bin = cargo_bin("canton-sim")
        .parent()
        .expect("binary directory")
        .to_path_buf();
    if bin.join("examples/make-dar").is_file() {
        // `cargo test --workspace` built everything the drill needs.
        c.arg("--no-build").arg("--bin-dir").arg(&bin);
    } else {
        // Let the drill build what is missing (debug, to match the tests).
        c.arg("--debug");
    }
    c.env_remove("CANTON_DR_BIN_DIR")
        .env_remove("INTEGRATION_DB_URL")
        .env_remove("CANTON_ADMIN_API")
        .env_remove("CANTON_LEDGER_API")
        .stdin(Stdio::null());
    c
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The work directory the drill announced on stderr.
fn work_dir(out: &Output) -> PathBuf {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("] work directory "))
        .unwrap_or_else(|| panic!("no work directory line: {}", describe(out)));
    let path = line
        .split("] work directory ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a path");
    PathBuf::from(path)
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(format!(
                    "{}: {cmdline}",
                    entry.file_name().to_string_lossy()
                ));
            }
        }
    }
    found
}

fn assert_nothing_left(out: &Output) {
    let dir = work_dir(out);
    assert!(
        !dir.exists(),
        "work directory {} left behind",
        dir.display()
    );
    let left = processes_mentioning(&dir.display().to_string());
    assert!(left.is_empty(), "left running: {left:?}");
}

#[test]
fn drill_passes_on_the_embedded_default() {
    let out = drill().arg("--json").output().expect("drill.sh");
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("report is not one JSON object ({e}): {}", describe(&out)));
    assert_eq!(report["type"], "drill");
    assert_eq!(report["status"], "ok");
    assert_eq!(report["exitCode"], 0);
    assert_eq!(report["scale"], 1);
    let invariants = report["invariants"].as_array().expect("invariants");
    let names: Vec<&str> = invariants
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "updates-exactly-once-after-node-restore",
            "updates-exactly-once",
            "withdrawals",
            "frozen",
            "dars",
            "runbooks"
        ]
    );
    for i in invariants {
        assert_eq!(i["ok"], true, "{i}");
    }
    // The drill did what it says: updates ingested, withdrawals whose requests
    // the DB restore lost were recovered, the freeze held, a DAR came back.
    let by_name = |n: &str| invariants.iter().find(|i| i["name"] == n).expect(n);
    assert!(by_name("updates-exactly-once")["details"]["onLedger"].as_i64() > Some(20));
    let recovered = by_name("withdrawals")["details"]["recovered"]
        .as_array()
        .expect("recovered")
        .len();
    assert!(recovered >= 2, "lost requests recovered: {recovered}");
    assert!(by_name("frozen")["details"]["refused"].as_i64() > Some(0));
    let a = &report["runbooks"]["validatorRestore"];
    assert_eq!(a["status"], "ok");
    assert_eq!(a["darsReuploaded"], 1);
    assert!(
        a["offRecovery"].is_i64() && a["preRestoreOffset"].is_i64(),
        "{a}"
    );
    assert_eq!(report["runbooks"]["integrationDbRestore"]["status"], "ok");
    assert_eq!(
        report["backup"]["manifest"], true,
        "backup-manifest.sh was used"
    );
    assert_nothing_left(&out);
}

#[test]
fn drill_with_a_broken_invariant_fails_loudly() {
    let out = drill()
        .args(["--break", "resume-at-old-offset"])
        .output()
        .expect("drill.sh");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.starts_with("canton-dr drill: FAILED"), "{report}");
    let line = report
        .lines()
        .find(|l| l.contains("updates-exactly-once-after-node-restore"))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(line.contains("[FAIL]"), "{line}");
    assert!(
        !line.contains(" 0 missing"),
        "the skipped updates are counted: {line}"
    );
    // Only what the mistake breaks fails.
    for name in ["withdrawals", "frozen", "dars"] {
        let l = report
            .lines()
            .find(|l| l.contains(&format!("] {name}:")))
            .unwrap_or_else(|| panic!("{name}: {report}"));
        assert!(l.contains("[ok  ]"), "{l}");
    }
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("drill FAILED"),
        "{}",
        describe(&out)
    );
    assert_nothing_left(&out);
}

#[test]
fn drill_rejects_bad_options() {
    for args in [
        &["--scale", "0"][..],
        &["--break", "everything"],
        &["--canton-semantics", "3.5"],
        &["--frobnicate"],
    ] {
        let out = drill().args(args).output().expect("drill.sh");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", describe(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("error: "),
            "{}",
            describe(&out)
        );
    }
}
