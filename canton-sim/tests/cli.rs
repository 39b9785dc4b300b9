//! The binary as an operator meets it: the ready line, exit codes and
//! one-line errors for bad input, a second server refused, clean stop.

mod common;
use common::*;
use std::process::Command;

#[test]
fn ready_line_comes_first_and_names_every_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProc::start(dir.path(), &[]);
    let line = sim.ready_line();
    assert!(line.starts_with(r#"{"type":"ready","#), "{line}");
    for key in [
        "adminApi",
        "ledgerApi",
        "controlApi",
        "synchronizerId",
        "treasuryParty",
        "pid",
    ] {
        assert!(sim.ready().get(key).is_some(), "{key} missing in {line}");
    }
    assert!(sim.synchronizer_id().starts_with("global-domain::1220"));
    assert_eq!(sim.synchronizer_id().len(), "global-domain::".len() + 68);
    let serving: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("serving.json")).unwrap()).unwrap();
    assert_eq!(serving["adminApi"], sim.ready()["adminApi"]);

    // A second server on the same state directory is refused.
    let out = Command::new(BIN)
        .args(["serve", "--state-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: another canton-sim server"), "{err}");

    assert_eq!(sim.stop(), 0);
    assert!(!dir.path().join("serving.json").exists());
}

#[test]
fn bad_flags_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args([
            "serve",
            "--synchronizer-id",
            "global-domain::1220ab::34-0",
            "--state-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--synchronizer-id"), "{err}");
    assert!(err.contains("hint:"), "{err}");

    let out = Command::new(BIN)
        .args(["ctl", "--control-api", "127.0.0.1:1", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "unreachable is transient");
}

#[test]
fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--clock",
        "virtual",
        "--clock-start",
        "2025-01-01T00:00:00Z",
        "--catch-up",
        "0s",
    ];
    let sim = SimProc::start(dir.path(), &args);
    sim.ctl(&["traffic", "--deposits", "5", "--noise", "5"]);
    let before = sim.ctl_lines(&["update-ids"]);
    let status = sim.ctl(&["status"]);
    assert_eq!(sim.stop(), 0);
    let sim = SimProc::start(dir.path(), &["--clock", "virtual", "--catch-up", "0s"]);
    assert_eq!(sim.ready()["incarnation"], 2);
    let after = sim.ctl_lines(&["update-ids"]);
    assert_eq!(before, after, "same history, same offsets");
    let status2 = sim.ctl(&["status"]);
    assert!(
        status2["ledgerEnd"].as_i64() > status["ledgerEnd"].as_i64(),
        "a restart writes internal entries"
    );
    assert_eq!(
        status2["synchronizerTime"], status["synchronizerTime"],
        "the virtual clock persists"
    );
}
