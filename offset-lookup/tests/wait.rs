//! A node that has not caught up: `--wait` succeeding once the clean head
//! passes the time, `--wait` timing out (exit 4), no `--wait` (exit 3 after
//! the retry policy), and the runbook case of a restored node re-processing
//! its backlog under new offsets.

mod support;

use std::time::{Duration, Instant};
use support::{Sim, filters};

#[test]
fn wait_succeeds_once_the_clean_head_passes_the_time() {
    let sim = Sim::start(&["--clean-head-lag", "10s"]);
    let a = sim.deposit("acct-a", false);
    assert_eq!(a.offset, 0, "not processed yet while the clean head lags");
    let control = sim.control_api().to_string();
    let mover = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        let out = std::process::Command::new(canton_dr_testkit::cargo_bin("canton-sim"))
            .args(["ctl", "--control-api", &control, "advance-time", "10s"])
            .output()
            .unwrap();
        assert!(out.status.success());
    });
    let started = Instant::now();
    let out = sim
        .lookup()
        .at(&a.record_time)
        .args(["--wait", "--timeout", "60s"])
        .run();
    mover.join().unwrap();
    out.expect_code(0);
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let processed = sim.updates();
    assert_eq!(out.json()["offset"], processed[0].offset);
    assert!(processed[0].offset > 0);
    // stderr is not a terminal here: no progress lines.
    assert_eq!(out.stderr, "");
}

#[test]
fn wait_times_out_with_exit_4() {
    let sim = Sim::start(&["--clean-head-lag", "10s"]);
    let a = sim.deposit("acct-a", false);
    let started = Instant::now();
    let out = sim
        .lookup()
        .at(&a.record_time)
        .args(["--wait", "--timeout", "1500ms"])
        .run();
    out.expect_code(4);
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let err = out.json();
    assert_eq!(err["status"], "timeout");
    assert_eq!(err["exitCode"], 4);
    assert_eq!(err["code"], "INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR");
    let mut settings = insta::Settings::clone_current();
    for (from, to) in filters() {
        settings.add_filter(from, to);
    }
    settings.add_filter(r"\d+ attempts", "[n] attempts");
    settings.bind(|| insta::assert_snapshot!(out.stderr));
}

#[test]
fn without_wait_a_lagging_node_exits_3_after_retries() {
    let sim = Sim::start(&["--clean-head-lag", "10s"]);
    let a = sim.deposit("acct-a", false);
    let out = sim.lookup().at(&a.record_time).run();
    out.expect_code(3);
    let err = out.json();
    assert_eq!(err["status"], "unavailable");
    let msg = err["error"].as_str().unwrap();
    assert!(
        msg.contains("has not yet processed everything up to"),
        "{msg}"
    );
    assert!(msg.contains("(after 5 attempts)"), "{msg}");
    assert!(err["hint"].as_str().unwrap().contains("--wait"), "{err}");
}

#[test]
fn restored_node_is_waited_for_and_answers_with_its_new_offsets() {
    let mut sim = Sim::start(&["--catch-up", "3s"]);
    sim.ctl(&["traffic", "--deposits", "5", "--noise", "5"]);
    let backup = sim.dir.path().join("backup");
    sim.ctl(&["backup", "--to", backup.to_str().unwrap()]);
    sim.advance("1s");
    sim.ctl(&["traffic", "--deposits", "200", "--noise", "200"]);
    let t_recovery = sim.updates().last().unwrap().record_time.clone();

    sim.restore_and_restart(&backup, &[]);
    let out = sim
        .lookup()
        .at(&t_recovery)
        .args(["--wait", "--timeout", "60s"])
        .run();
    out.expect_code(0);
    let after = sim.updates();
    let last = after.last().unwrap();
    assert_eq!(last.record_time, t_recovery);
    assert_eq!(
        out.json()["offset"],
        last.offset,
        "the restored node's own offset"
    );
}

#[test]
fn progress_lines_only_when_stderr_is_a_terminal() {
    let sim = Sim::start(&["--clean-head-lag", "10s"]);
    let a = sim.deposit("acct-a", false);
    // `script` runs the lookup on a pseudo-terminal (stdout and stderr).
    let command = format!(
        "{} --admin-api {} --synchronizer-id {} --timestamp {} --wait --timeout 2500ms",
        env!("CARGO_BIN_EXE_offset-lookup"),
        sim.admin_api(),
        support::SYNC,
        a.record_time
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CANTON_DR_OUTPUT", "json")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script(1) from util-linux");
    assert_eq!(out.status.code(), Some(4));
    let terminal = String::from_utf8_lossy(&out.stdout);
    let progress: Vec<&str> = terminal
        .lines()
        .filter(|l| l.starts_with("offset-lookup: waiting for the node to process up to"))
        .collect();
    assert!(progress.len() >= 2, "{terminal}");
    assert!(progress[0].contains("attempt 1, "), "{terminal}");
    assert!(progress[0].ends_with("not caught up yet"), "{terminal:?}");
}
