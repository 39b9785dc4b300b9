//! Lookups through the real binary against canton-sim, in Canton 3.3 and
//! 3.4.9+ semantics: exact hits, record-time ties, the non-unique mode, the
//! exact-match rule, and every error the node can answer with.

mod support;

use support::{SYNC, Sim, Update, dead_port, filters};

/// A at t0; 1 s later B and C with the same record time (a tie); 1 s later D.
struct History {
    a: Update,
    b: Update,
    c: Update,
    d: Update,
}

fn history(sim: &Sim) -> History {
    let a = sim.deposit("acct-a", false);
    sim.advance("1s");
    let b = sim.deposit("acct-b", false);
    let c = sim.deposit("acct-c", true);
    sim.advance("1s");
    let d = sim.deposit("acct-d", false);
    assert_eq!(b.record_time, c.record_time, "B and C must tie");
    assert!(a.offset < b.offset && b.offset < c.offset && c.offset < d.offset);
    // The control API's answers agree with the synchronizer's full list.
    assert_eq!(
        sim.updates(),
        vec![a.clone(), b.clone(), c.clone(), d.clone()]
    );
    History { a, b, c, d }
}

fn semantics() -> [&'static str; 2] {
    ["3.3", "3.4"]
}

#[test]
fn exact_hits_return_the_highest_offset_at_that_record_time() {
    for sem in semantics() {
        let sim = Sim::start(&["--semantics", sem, "--record-time-ties"]);
        let h = history(&sim);
        for (ts, expected) in [
            (&h.a.record_time, h.a.offset),
            // B and C tie: the highest offset of the two.
            (&h.b.record_time, h.c.offset),
            (&h.d.record_time, h.d.offset),
        ] {
            let out = sim.lookup().at(ts).run();
            out.expect_code(0);
            let v = out.json();
            assert_eq!(v["offset"], expected, "{sem} at {ts}: {v}");
            assert_eq!(v["mode"], "exact");
            assert_eq!(v["force"], false);
            assert_eq!(v["status"], "ok");
            assert_eq!(v["timestamp"], ts.as_str());
            assert_eq!(v["synchronizerId"], SYNC);
            assert_eq!(
                v["calls"],
                serde_json::json!([{"timestamp": ts, "force": false, "offset": expected}])
            );
            assert_eq!(out.stderr, "", "{sem}: nothing on stderr for a clean hit");
        }
    }
}

#[test]
fn non_unique_mode_proves_then_forces_one_microsecond_before_the_tie() {
    for sem in semantics() {
        let sim = Sim::start(&["--semantics", sem, "--record-time-ties"]);
        let h = history(&sim);
        let out = sim.lookup().at(&h.b.record_time).arg_non_unique().run();
        out.expect_code(0);
        let v = out.json();
        // Resume after A: ingestion re-reads B and C and skips what it holds.
        assert_eq!(v["offset"], h.a.offset, "{sem}: {v}");
        assert_eq!(v["mode"], "non-unique-record-times");
        assert_eq!(v["force"], false, "--force was not given");
        assert_eq!(
            v["calls"],
            serde_json::json!([
                {"timestamp": h.b.record_time, "force": false, "offset": h.c.offset},
                {"timestamp": "2025-11-27T06:00:00.999999Z", "force": true, "offset": h.a.offset},
            ]),
            "{sem}"
        );
        assert_eq!(h.b.record_time, "2025-11-27T06:00:01.000000Z");
    }
}

#[test]
fn exact_match_rule_only_under_3_4() {
    let between = "2025-11-27T06:00:00.500000Z";
    let sim = Sim::start(&["--semantics", "3.3", "--record-time-ties"]);
    let h = history(&sim);
    let out = sim.lookup().at(between).run();
    out.expect_code(0);
    assert_eq!(out.json()["offset"], h.a.offset);

    let sim = Sim::start(&["--semantics", "3.4", "--record-time-ties"]);
    history(&sim);
    let out = sim.lookup().at(between).run();
    out.expect_code(1);
    let err = out.json();
    assert_eq!(err["type"], "error");
    assert_eq!(err["status"], "failed");
    assert_eq!(err["exitCode"], 1);
    assert_eq!(err["code"], "INVALID_STATE_PARTY_MANAGEMENT_ERROR");
    insta::with_settings!({filters => filters()}, {
        insta::assert_snapshot!(out.stderr);
    });
    // The non-unique mode needs an exact record time for its proof too.
    let out = sim.lookup().at(between).arg_non_unique().run();
    out.expect_code(1);
    assert!(
        out.stderr
            .contains("must be the record time of an ingested transaction"),
        "{}",
        out.stderr
    );
}

#[test]
fn no_offset_before_the_first_event() {
    for sem in semantics() {
        let sim = Sim::start(&["--semantics", sem]);
        sim.deposit("acct-a", false);
        let out = sim.lookup().at("2025-11-27T05:59:59Z").run();
        out.expect_code(1);
        assert_eq!(
            out.json()["code"],
            "INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR"
        );
        insta::with_settings!({filters => filters(), snapshot_suffix => sem}, {
            insta::assert_snapshot!(out.stderr);
        });
        // Nothing before the first event in the non-unique mode either.
        let out = sim
            .lookup()
            .at("2025-11-27T06:00:00Z")
            .arg_non_unique()
            .run();
        out.expect_code(1);
        assert!(
            out.stderr
                .contains("no ledger offset at or before 2025-11-27T05:59:59.999999Z"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn unknown_synchronizer_exits_2() {
    let sim = Sim::start(&[]);
    sim.deposit("acct-a", false);
    let other = format!("other::1220{}", "5e".repeat(32));
    let out = sim
        .lookup()
        .args([
            "--synchronizer-id",
            &other,
            "--timestamp",
            "2025-11-27T06:00:00Z",
        ])
        .run();
    out.expect_code(2);
    assert_eq!(
        out.json()["code"],
        "INVALID_ARGUMENT_PARTY_MANAGEMENT_ERROR"
    );
    insta::with_settings!({filters => filters()}, {
        insta::assert_snapshot!(out.stderr);
    });
}

#[test]
fn unreachable_node_exits_3_after_retries() {
    let port = dead_port();
    let out = support::Lookup::new()
        .args(["--admin-api", &format!("127.0.0.1:{port}")])
        .at("2025-11-27T06:00:00Z")
        .run();
    out.expect_code(3);
    let err = out.json();
    assert_eq!(err["status"], "unavailable");
    let msg = err["error"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!("cannot connect to admin API at 127.0.0.1:{port}")),
        "{msg}"
    );
    assert!(msg.ends_with("(after 5 attempts)"), "{msg}");
    assert!(
        err["hint"].as_str().unwrap().contains("--admin-api"),
        "{err}"
    );
}

#[test]
fn output_shapes() {
    let sim = Sim::start(&["--record-time-ties"]);
    let h = history(&sim);
    let json = sim.lookup().at(&h.d.record_time).run();
    json.expect_code(0);
    let text = sim
        .lookup()
        .at(&h.b.record_time)
        .args(["--output", "text", "--non-unique-record-times"])
        .run();
    text.expect_code(0);
    insta::with_settings!({filters => filters()}, {
        insta::assert_snapshot!("json", json.stdout);
        insta::assert_snapshot!("text", text.stdout);
    });
    assert!(
        text.stdout
            .starts_with(&format!("offset {} for", h.a.offset))
    );
}

trait NonUnique {
    fn arg_non_unique(&mut self) -> &mut Self;
}

impl NonUnique for support::Lookup {
    fn arg_non_unique(&mut self) -> &mut Self {
        self.args(["--non-unique-record-times"])
    }
}
