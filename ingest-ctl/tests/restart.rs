//! PostgreSQL restarts in the middle of `stop --wait` and `start --caught-up`:
//! the waits reconnect and still complete. Each test has its own cluster, so
//! restarting it disturbs no other test.

mod support;

use canton_dr_testkit::PgCluster;
use std::io::{BufRead as _, BufReader};
use std::process::Child;
use support::ingester::{Item, Mode, TestIngester};
use support::ledger::Ledger;
use support::{INGESTER, control_row, ctl, migrated_in, spawn};

/// Blocks until the waiting child printed its first progress line (so the
/// wait is under way), and returns the lines read so far.
fn first_progress(child: &mut Child) -> (Vec<String>, BufReader<std::process::ChildStdout>) {
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.contains("\"type\":\"progress\""), "{line}");
    (vec![line], reader)
}

fn finish(
    mut child: Child,
    mut lines: Vec<String>,
    reader: BufReader<std::process::ChildStdout>,
) -> (i32, Vec<serde_json::Value>, String) {
    lines.extend(reader.lines().map(Result::unwrap));
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let json = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (status.code().unwrap(), json, stderr)
}

#[test]
fn a_stop_wait_survives_a_postgres_restart() {
    let cluster = PgCluster::new();
    let db = migrated_in(&cluster);
    let ing = TestIngester::start(&db.url, INGESTER);
    support::eventually(10, "running", || {
        control_row(&cluster, &db).starts_with("running|running")
    });
    // Alive (heartbeating) but not acknowledging yet.
    ing.set_mode(Mode::Frozen);
    let mut child = spawn(ctl(&db).env("RUST_LOG", "info").args([
        "stop",
        "--wait",
        "--timeout",
        "60s",
        "--poll-interval",
        "200ms",
    ]));
    let (lines, reader) = first_progress(&mut child);
    cluster.restart();
    // Only after the restart does the ingester act: the wait must have reconnected.
    ing.set_mode(Mode::Normal);
    let (code, json, stderr) = finish(child, lines, reader);
    assert_eq!(code, 0, "{json:?}\n{stderr}");
    let result = json.last().unwrap();
    assert_eq!(result["type"], "stop");
    assert_eq!(result["acknowledged"], true);
    assert_eq!(result["liveIngester"], true);
    assert_eq!(control_row(&cluster, &db), "stopped|stopped|1|1||0|");
    assert!(stderr.contains("reconnected to PostgreSQL"), "{stderr}");
}

#[test]
fn a_caught_up_wait_survives_a_postgres_restart() {
    let cluster = PgCluster::new();
    let db = migrated_in(&cluster);
    let ing = TestIngester::start(&db.url, INGESTER);
    ing.push([Item::tx(1, "u1", "2025-11-27T06:00:00Z")]);
    support::eventually(10, "u1", || ing.applied() == ["u1"]);
    let out = ctl(&db).args(["stop", "--wait"]).output().unwrap();
    support::expect(&out, 0);
    let ledger = Ledger::start(3);
    let mut child = spawn(ctl(&db).env("RUST_LOG", "info").args([
        "start",
        "--caught-up",
        "--ledger-api",
        &ledger.address,
        "--timeout",
        "60s",
        "--poll-interval",
        "200ms",
    ]));
    let (lines, reader) = first_progress(&mut child);
    cluster.restart();
    ing.push([
        Item::tx(2, "u2", "2025-11-27T06:00:01Z"),
        Item::tx(3, "u3", "2025-11-27T06:00:02Z"),
    ]);
    let (code, json, stderr) = finish(child, lines, reader);
    assert_eq!(code, 0, "{json:?}\n{stderr}");
    let result = json.last().unwrap();
    assert_eq!(result["caughtUp"], true);
    assert_eq!(result["position"], 3);
    assert_eq!(ing.applied(), ["u1", "u2", "u3"]);
    assert!(stderr.contains("reconnected to PostgreSQL"), "{stderr}");
}
