//! Input through the real binary: `ingest-ctl last` JSON on stdin, reruns on
//! its own output, `--batch` NDJSON, `--force`, and bad input refused before
//! any call (pointed at a port nothing listens on, so a call would exit 3).

mod support;

use serde_json::{Value, json};
use support::{Lookup, SYNC, Sim, dead_port, filters};

#[test]
fn ingest_ctl_last_is_read_from_stdin_and_the_output_reads_back() {
    let sim = Sim::start(&["--record-time-ties"]);
    let a = sim.deposit("acct-a", false);
    sim.advance("1s");
    let b = sim.deposit("acct-b", false);
    let c = sim.deposit("acct-c", true);
    let last = json!({
        "recordTime": b.record_time,
        "synchronizerId": SYNC,
        "offset": 4711,
        "updateId": b.update_id,
        "epoch": 1
    });
    let out = sim.lookup().arg_stdin().stdin(last.to_string()).run();
    out.expect_code(0);
    let first = out.json();
    assert_eq!(first["offset"], c.offset);
    assert_eq!(first["timestamp"], b.record_time);

    // Rerunning on its own output gives the same answer (idempotent).
    let again = sim.lookup().arg_stdin().stdin(out.stdout.clone()).run();
    again.expect_code(0);
    assert_eq!(again.json(), first);

    // The non-unique mode from the same input.
    let non_unique = sim
        .lookup()
        .arg_stdin()
        .args(["--non-unique-record-times"])
        .stdin(last.to_string())
        .run();
    non_unique.expect_code(0);
    assert_eq!(non_unique.json()["offset"], a.offset);

    // A flag that agrees is fine; one that contradicts stdin is refused.
    let agree = sim
        .lookup()
        .arg_stdin()
        .args(["--synchronizer-id", SYNC])
        .stdin(last.to_string())
        .run();
    agree.expect_code(0);
    let clash = sim
        .lookup()
        .arg_stdin()
        .args(["--timestamp", &a.record_time])
        .stdin(last.to_string())
        .run();
    clash.expect_code(2);
    assert!(
        clash.stderr.contains("contradicts the input's record time"),
        "{}",
        clash.stderr
    );
}

#[test]
fn force_warns_and_is_recorded() {
    let sim = Sim::start(&["--semantics", "3.4"]);
    let a = sim.deposit("acct-a", false);
    sim.advance("1s");
    sim.deposit("acct-b", false);
    let between = "2025-11-27T06:00:00.500000Z";
    let out = sim.lookup().at(between).args(["--force"]).run();
    out.expect_code(0);
    let v = out.json();
    assert_eq!(v["force"], true);
    assert_eq!(v["offset"], a.offset);
    assert_eq!(
        v["calls"],
        json!([{"timestamp": between, "force": true, "offset": a.offset}])
    );
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn batch_answers_every_line_in_order_over_one_connection() {
    let sim = Sim::start(&["--semantics", "3.4", "--record-time-ties"]);
    let a = sim.deposit("acct-a", false);
    sim.advance("1s");
    let b = sim.deposit("acct-b", false);
    let c = sim.deposit("acct-c", true);
    let physical = format!("{SYNC}::34-0");
    let input = [
        json!({"synchronizerId": SYNC, "recordTime": a.record_time}).to_string(),
        String::new(),
        json!({"type": "progress", "note": "skipped"}).to_string(),
        json!({"recordTime": b.record_time}).to_string(),
        json!({"synchronizerId": SYNC, "recordTime": "2025-11-27T06:00:00.5Z"}).to_string(),
        json!({"synchronizerId": physical, "recordTime": a.record_time}).to_string(),
        "{not json".to_string(),
        json!({"synchronizerId": SYNC, "timestamp": b.record_time, "offset": 1}).to_string(),
    ]
    .join("\n");
    let out = sim
        .lookup()
        .args(["--batch", "--synchronizer-id", SYNC])
        .stdin(input)
        .run();
    // The worst failed line: bad input (2).
    out.expect_code(2);
    let lines = out.json_lines();
    let summary: Vec<(u64, &str, i64)> = lines
        .iter()
        .map(|l| {
            (
                l["line"].as_u64().unwrap(),
                l["type"].as_str().unwrap(),
                l.get("offset")
                    .or_else(|| l.get("exitCode"))
                    .and_then(Value::as_i64)
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, "offset", a.offset),
            (4, "offset", c.offset),
            (5, "error", 1),
            (6, "error", 2),
            (7, "error", 2),
            (8, "offset", c.offset),
        ]
    );
    assert_eq!(lines[2]["code"], "INVALID_STATE_PARTY_MANAGEMENT_ERROR");
    assert!(
        lines[3]["error"]
            .as_str()
            .unwrap()
            .contains(&format!("logical id \"{SYNC}\""))
    );
    insta::with_settings!({filters => filters()}, {
        insta::assert_snapshot!(out.stdout);
    });
}

#[test]
fn large_batch_keeps_order_and_answers_match_the_ledger() {
    let sim = Sim::start(&["--semantics", "3.3"]);
    sim.ctl(&["traffic", "--deposits", "40", "--noise", "40"]);
    let updates = sim.updates();
    let n = 3000;
    let input: String = (0..n)
        .map(|i| {
            let u = &updates[(i * 7) % updates.len()];
            format!(
                "{}\n",
                json!({"synchronizerId": SYNC, "recordTime": u.record_time})
            )
        })
        .collect();
    let out = sim
        .lookup()
        .args(["--batch", "--non-unique-record-times"])
        .stdin(input)
        .run();
    // Nothing precedes the very first update: those lines fail with 1.
    out.expect_code(1);
    let lines = out.json_lines();
    assert_eq!(lines.len(), n);
    for (i, l) in lines.iter().enumerate() {
        let k = (i * 7) % updates.len();
        assert_eq!(l["line"], i as u64 + 1);
        // Record times are unique here: the offset before update k is update k-1's.
        let expected = if k == 0 {
            None
        } else {
            Some(updates[k - 1].offset)
        };
        match expected {
            Some(o) => assert_eq!(l["offset"], o, "line {}: {l}", i + 1),
            None => assert_eq!(l["exitCode"], 1, "line {}: {l}", i + 1),
        }
    }
}

#[test]
fn bad_input_is_refused_before_any_call() {
    let admin = format!("127.0.0.1:{}", dead_port());
    let cases: [(&str, Vec<String>, Option<String>); 10] = [
        (
            "physical_synchronizer_id",
            vec!["--synchronizer-id".into(), format!("{SYNC}::34-0"), "--timestamp".into(), "2025-11-27T06:00:00Z".into()],
            None,
        ),
        (
            "malformed_synchronizer_id",
            vec!["--synchronizer-id".into(), "global-domain::1220abc".into(), "--timestamp".into(), "2025-11-27T06:00:00Z".into()],
            None,
        ),
        (
            "bad_timestamp",
            vec!["--synchronizer-id".into(), SYNC.into(), "--timestamp".into(), "27.11.2025 06:00".into()],
            None,
        ),
        (
            "nanosecond_timestamp",
            vec!["--synchronizer-id".into(), SYNC.into(), "--timestamp".into(), "2025-11-27T06:00:00.123456789Z".into()],
            None,
        ),
        (
            "timestamp_outside_daml_range",
            vec!["--synchronizer-id".into(), SYNC.into(), "--timestamp".into(), "0000-12-31T23:59:59Z".into()],
            None,
        ),
        ("missing_timestamp", vec!["--synchronizer-id".into(), SYNC.into()], None),
        (
            "force_with_non_unique",
            vec!["--synchronizer-id".into(), SYNC.into(), "--timestamp".into(), "2025-11-27T06:00:00Z".into(), "--force".into(), "--non-unique-record-times".into()],
            None,
        ),
        ("empty_stdin", vec!["-".into()], Some(String::new())),
        (
            "upstream_error_on_stdin",
            vec!["-".into()],
            Some(json!({"type": "error", "status": "refused", "exitCode": 5, "error": "ingestion is still running"}).to_string()),
        ),
        (
            "stdin_without_record_time",
            vec!["-".into()],
            Some(json!({"synchronizerId": SYNC, "offset": 3}).to_string()),
        ),
    ];
    for (name, args, stdin) in cases {
        let mut cmd = Lookup::new();
        cmd.args(["--admin-api", &admin]).args(&args);
        if let Some(text) = stdin {
            cmd.stdin(text);
        }
        let out = cmd.run();
        out.expect_code(2);
        let err = out.json();
        assert_eq!(err["status"], "usage-error", "{name}");
        insta::assert_snapshot!(name, out.stderr);
    }
    // A stray positional argument is a clap usage error (exit 2) naming --timestamp.
    let out = Lookup::new().args(["2025-11-27T06:00:00Z"]).run();
    out.expect_code(2);
    assert!(
        out.stderr.contains("--timestamp 2025-11-27T06:00:00Z"),
        "{}",
        out.stderr
    );
}

trait StdinArg {
    fn arg_stdin(&mut self) -> &mut Self;
}

impl StdinArg for Lookup {
    fn arg_stdin(&mut self) -> &mut Self {
        self.args(["-"])
    }
}
