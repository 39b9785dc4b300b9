//! Bad input through the real binary: one-line errors with a hint, exit 2,
//! before any connection is made (the URL points at a closed port: a
//! connection attempt would exit 3 instead).

mod common;

use common::{gate, run};

const NOWHERE: &str = "postgresql://postgres@127.0.0.1:1/nowhere";

fn assert_usage(args: &[&str], env: &[(&str, &str)], error_start: &str) {
    let mut cmd = gate(NOWHERE);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let r = run(&mut cmd);
    assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "{args:?}: error and hint only: {}",
        r.stderr
    );
    assert!(
        lines[0].starts_with(&format!("error: {error_start}")),
        "{args:?}: {}",
        r.stderr
    );
    assert!(lines[1].starts_with("hint: "), "{args:?}: {}", r.stderr);
    let e = r.last();
    assert_eq!(
        (
            e["type"].as_str(),
            e["status"].as_str(),
            e["exitCode"].as_i64()
        ),
        (Some("error"), Some("usage-error"), Some(2)),
        "{args:?}"
    );
}

#[test]
fn bad_durations_are_one_line_usage_errors() {
    assert_usage(
        &["wait", "--timeout", "soon"],
        &[],
        "--timeout / WITHDRAWAL_GATE_TIMEOUT \"soon\" is not a duration",
    );
    assert_usage(
        &["tsafe", "--ttl", "5 parsecs"],
        &[],
        "--ttl / WITHDRAWAL_TTL \"5 parsecs\" is not a duration",
    );
    assert_usage(
        &["freeze", "--reason", "x", "--ttl", "an hour"],
        &[],
        "--ttl / WITHDRAWAL_TTL \"an hour\" is not a duration",
    );
    assert_usage(
        &["tsafe"],
        &[("WITHDRAWAL_TTL", "forever")],
        "--ttl / WITHDRAWAL_TTL \"forever\" is not a duration",
    );
    assert_usage(
        &["wait", "--poll-interval", "0s"],
        &[],
        "--poll-interval 0s is shorter than 10 ms",
    );
    assert_usage(
        &["status", "--heartbeat-stale-after=-1s"],
        &[],
        "--heartbeat-stale-after / WITHDRAWAL_GATE_HEARTBEAT_STALE_AFTER \"-1s\"",
    );
}

#[test]
fn bad_timestamps_are_one_line_usage_errors() {
    assert_usage(
        &["wait", "--tsafe", "yesterday"],
        &[],
        "--tsafe / WITHDRAWAL_GATE_TSAFE \"yesterday\" is not an RFC 3339 timestamp",
    );
    assert_usage(
        &["wait", "--tsafe", "2025-01-01T00:00:00.1234567Z"],
        &[],
        "--tsafe / WITHDRAWAL_GATE_TSAFE \"2025-01-01T00:00:00.1234567Z\" has sub-microsecond precision",
    );
    assert_usage(
        &["wait"],
        &[("WITHDRAWAL_GATE_TSAFE", "2025-02-30T00:00:00Z")],
        "--tsafe / WITHDRAWAL_GATE_TSAFE \"2025-02-30T00:00:00Z\" is not an RFC 3339 timestamp",
    );
}

#[test]
fn a_password_on_the_command_line_is_refused_and_not_echoed() {
    let r = run(gate(NOWHERE).args([
        "--db-url",
        "postgresql://app:s3cret@127.0.0.1:1/x",
        "status",
    ]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("error: --db-url postgresql://app:****@127.0.0.1:1/x carries a password"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("PGPASSWORD"), "{}", r.stderr);
    let all = format!("{}{:?}", r.stderr, r.lines);
    assert!(!all.contains("s3cret"), "{all}");

    // The same URL in the environment is not refused: the connection is tried (exit 3).
    let r = run(gate("postgresql://app:s3cret@127.0.0.1:1/x")
        .arg("status")
        .env("PGCONNECT_TIMEOUT", "2"));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(!r.stderr.contains("s3cret"), "{}", r.stderr);
}

#[test]
fn other_usage_errors() {
    assert_usage(&["thaw", "--force"], &[], "--force needs --reason TEXT");
    assert_usage(
        &["wait", "--synchronizer-id", "global"],
        &[],
        "synchronizer id \"global\" is not of the form <name>::<fingerprint>",
    );
    assert_usage(
        &["--gate", " ", "status"],
        &[],
        "--gate / WITHDRAWAL_GATE_NAME is empty",
    );
    assert_usage(
        &["freeze", "--reason", "  "],
        &[],
        "--reason / WITHDRAWAL_GATE_FREEZE_REASON is empty",
    );
}

#[test]
fn an_unreachable_database_is_transient() {
    let r = run(gate(NOWHERE).arg("status").env("PGCONNECT_TIMEOUT", "2"));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("error: cannot connect to PostgreSQL at 127.0.0.1:1"),
        "{}",
        r.stderr
    );
}

#[test]
fn help_documents_every_command() {
    let r = gate(NOWHERE).arg("--help").output().unwrap();
    assert!(r.status.success());
    let help = String::from_utf8_lossy(&r.stdout);
    for word in [
        "freeze",
        "tsafe",
        "wait",
        "thaw",
        "status",
        "INTEGRATION_DB_URL",
        "Exit codes",
    ] {
        assert!(help.contains(word), "--help lacks {word}");
    }
}
