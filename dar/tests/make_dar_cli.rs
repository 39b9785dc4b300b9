//! The `make-dar` example, run as a user would: it writes a DAR whose main
//! package id the parser confirms, and refuses bad flags with exit 2.

use std::path::PathBuf;
use std::process::Command;

fn make_dar() -> PathBuf {
    // Integration tests live in target/<profile>/deps; `cargo test` builds
    // examples into target/<profile>/examples.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    profile_dir
        .join("examples")
        .join(format!("make-dar{}", std::env::consts::EXE_SUFFIX))
}

#[test]
fn writes_a_dar_that_parses_to_the_reported_id() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.dar");
    let run = || {
        Command::new(make_dar())
            .args([
                "--name",
                "cli-token",
                "--package-version",
                "2.0.1",
                "--size",
                "300K",
            ])
            .args(["--dependencies", "2", "--output", "json", "--out"])
            .arg(&out)
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let info = daml_dar::inspect_file(&out).unwrap();
    assert_eq!(v["mainPackageId"], info.dar.main_package_id.as_str());
    assert_eq!(v["sha256"], info.file_sha256.as_str());
    assert_eq!(v["size"], info.file_size);
    assert!(info.file_size >= 300 * 1024);
    assert_eq!(
        (info.dar.name.as_str(), info.dar.version.as_str()),
        ("cli-token", "2.0.1")
    );
    // Rerun: same bytes.
    let second = run();
    assert_eq!(first.stdout, second.stdout);
}

#[test]
fn corrupt_flag_writes_a_dar_canton_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bad.dar");
    let status = Command::new(make_dar())
        .args([
            "--name",
            "b",
            "--package-version",
            "1.0.0",
            "--corrupt",
            "hash-mismatch",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap()
        .status;
    assert!(status.success());
    let err = daml_dar::inspect_file(&out).unwrap_err();
    assert_eq!(err.canton_error_id(), Some("DAR_PARSE_ERROR"));
}

#[test]
fn bad_size_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(make_dar())
        .args([
            "--name",
            "x",
            "--package-version",
            "1.0.0",
            "--size",
            "12parsecs",
            "--out",
        ])
        .arg(dir.path().join("x.dar"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid size"));
    assert!(!dir.path().join("x.dar").exists());
}
