//! Bad input and bad set-ups: each a one-line error (plus a hint line naming
//! the fix) on stderr, a matching `{"type":"error"}` object on stdout, and the
//! documented exit code. Nothing is changed.

mod support;

use canton_dr_testkit::PgCluster;
use serde_json::Value;
use std::process::Output;
use support::{ctl, expect, migrated, query, run_with_stdin};

/// Checks the error shape and returns stderr with the cluster's address and
/// database name masked.
#[track_caller]
fn error(out: &Output, code: i32) -> String {
    let json = expect(out, code);
    assert_eq!(json["type"], "error");
    assert_eq!(json["exitCode"], code);
    let stderr = support::text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        (1..=2).contains(&lines.len()) && lines[0].starts_with("error: "),
        "{stderr}"
    );
    assert_eq!(lines[0].trim_start_matches("error: "), json["error"]);
    if let Some(hint) = lines.get(1) {
        assert_eq!(hint.trim_start_matches("hint: "), json["hint"]);
    }
    let port = PgCluster::shared().port().to_string();
    stderr.replace(&port, "PORT")
}

fn registered() -> canton_dr_testkit::TestDb {
    let db = migrated();
    query(
        &db,
        "INSERT INTO canton_integration.ingestion_control (ingester, desired_state) VALUES ('tx-a', 'stopped')",
    );
    db
}

#[test]
fn bad_json_on_stdin() {
    let db = registered();
    let out = run_with_stdin(ctl(&db).args(["set-offset", "-"]), "{\"offset\": 5,,}");
    insta::assert_snapshot!(error(&out, 2), @r#"
    error: stdin is not valid JSON (offset-lookup result): key must be a string at line 1 column 14
    hint: pipe the JSON output of the previous tool (its --output json)
    "#);
    let out = run_with_stdin(ctl(&db).args(["set-offset", "-"]), "");
    insta::assert_snapshot!(error(&out, 2), @r"
    error: no offset-lookup result on stdin (empty input)
    hint: pipe the JSON output of the previous tool, or pass the value as an argument
    ");
    // `ingest-ctl last` piped straight in, skipping offset-lookup.
    let last = r#"{"type":"last","recordTime":"2025-11-27T06:00:00.000000Z","synchronizerId":"s::1220ab","offset":9,"updateId":"u","epoch":0}"#;
    let out = run_with_stdin(ctl(&db).args(["set-offset", "-"]), last);
    insta::assert_snapshot!(error(&out, 2), @r"
    error: stdin holds `ingest-ctl last` output (the old offset of the last transaction), not an offset to resume from
    hint: pipe it through offset-lookup: ingest-ctl last | offset-lookup - | ingest-ctl set-offset -
    ");
    // An upstream failure is named, not misread.
    let upstream = r#"{"type":"error","status":"unavailable","exitCode":3,"error":"admin API at node:5002 is unreachable"}"#;
    let out = run_with_stdin(ctl(&db).args(["set-offset", "-"]), upstream);
    insta::assert_snapshot!(error(&out, 2), @r"
    error: the previous tool failed: admin API at node:5002 is unreachable
    hint: fix the step that produced the input, then rerun the pipeline
    ");
    assert_eq!(
        support::control_row(PgCluster::shared(), &db),
        "stopped||0|0||0|"
    );
}

#[test]
fn negative_offsets() {
    let db = registered();
    let out = ctl(&db).args(["set-offset", "-5"]).output().unwrap();
    insta::assert_snapshot!(error(&out, 2), @r"
    error: offset -5 is negative
    hint: a ledger offset is 0 (the ledger start) or positive: pass the offset offset-lookup printed, or `-` to read its JSON from stdin
    ");
    let out = run_with_stdin(ctl(&db).args(["set-offset", "-"]), r#"{"offset": -3}"#);
    insta::assert_snapshot!(error(&out, 2), @r"
    error: stdin offset -3 is negative
    hint: a ledger offset is 0 (the ledger start) or positive: pass the offset offset-lookup printed, or `-` to read its JSON from stdin
    ");
    let out = ctl(&db).args(["set-offset", "1e3"]).output().unwrap();
    insta::assert_snapshot!(error(&out, 2), @r#"
    error: offset "1e3" is not an integer
    hint: a ledger offset is 0 (the ledger start) or positive: pass the offset offset-lookup printed, or `-` to read its JSON from stdin
    "#);
    let out = ctl(&db)
        .args(["set-offset", "5", "--dedup-from", "yesterday"])
        .output()
        .unwrap();
    insta::assert_snapshot!(error(&out, 2), @r#"
    error: --dedup-from "yesterday" is not an RFC 3339 timestamp (premature end of input)
    hint: use a form like 2025-11-27T06:50:00.123456Z
    "#);
}

#[test]
fn unknown_ingester_names_the_known_ones() {
    let db = registered();
    for args in [
        &["status"][..],
        &["stop", "--wait"],
        &["start"],
        &["last"],
        &["set-offset", "5"],
    ] {
        let out = ctl(&db)
            .args(["--ingester", "tx-b"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            error(&out, 2),
            "error: there is no ingester named \"tx-b\" in ingestion_control\nhint: known ingesters: tx-a; pass --ingester NAME or set INGESTER_NAME\n",
            "{args:?}"
        );
    }
    let empty = migrated();
    let out = ctl(&empty).arg("stop").output().unwrap();
    insta::assert_snapshot!(error(&out, 2), @r#"
    error: there is no ingester named "tx-a" in ingestion_control
    hint: no ingester has registered yet: an ingester creates its row when it first starts (docs/ingestion-contract.md)
    "#);
    assert_eq!(
        query(
            &empty,
            "SELECT count(*) FROM canton_integration.ingestion_control"
        ),
        "0",
        "a stop never invents an ingester"
    );
}

#[test]
fn missing_schema() {
    let db = registered();
    let out = ctl(&db)
        .args(["--schema", "exchange_nope", "status"])
        .output()
        .unwrap();
    let stderr = error(&out, 2).replace(&db.name, "DB");
    insta::assert_snapshot!(stderr, @r#"
    error: the Integration DB schema "exchange_nope" does not exist at 127.0.0.1:PORT (database DB)
    hint: run `ingest-ctl migrate` to create or upgrade the Integration DB schema
    "#);
    let out = ctl(&db)
        .args(["--schema", "Bad-Name", "status"])
        .output()
        .unwrap();
    insta::assert_snapshot!(error(&out, 2), @r#"
    error: schema name "Bad-Name" is not a plain lower-case SQL identifier
    hint: use letters a-z, digits and _, starting with a letter or _ (e.g. canton_integration)
    "#);
}

#[test]
fn a_password_on_the_command_line_is_refused() {
    let db = registered();
    let url = format!(
        "postgresql://postgres:s3cret@127.0.0.1:{}/{}",
        PgCluster::shared().port(),
        db.name
    );
    let out = ctl(&db)
        .env_remove("INTEGRATION_DB_URL")
        .args(["--db-url", &url, "status"])
        .output()
        .unwrap();
    let stderr = error(&out, 2).replace(&db.name, "DB");
    assert!(!stderr.contains("s3cret"));
    insta::assert_snapshot!(stderr, @r"
    error: --db-url postgresql://postgres:****@127.0.0.1:PORT/DB carries a password on the command line, where `ps` and the shell history show it
    hint: drop the password from --db-url and set PGPASSWORD, or put the whole URL in INTEGRATION_DB_URL
    ");
    // The same URL from the environment is accepted (trust auth ignores it).
    let ok = ctl(&db)
        .env("INTEGRATION_DB_URL", &url)
        .arg("status")
        .output()
        .unwrap();
    expect(&ok, 0);
}

#[test]
fn caught_up_needs_the_ledger_api() {
    let db = registered();
    let out = ctl(&db).args(["start", "--caught-up"]).output().unwrap();
    insta::assert_snapshot!(error(&out, 2), @r"
    error: --caught-up needs the node's ledger end: --ledger-api is not set
    hint: pass --ledger-api HOST:PORT (or set CANTON_LEDGER_API)
    ");
    assert_eq!(
        support::control_row(PgCluster::shared(), &db),
        "stopped||0|0||0|",
        "refused before anything changed"
    );
}

#[test]
fn last_without_an_ingested_transaction_exits_1() {
    let db = registered();
    let out = ctl(&db).arg("last").output().unwrap();
    insta::assert_snapshot!(error(&out, 1), @r#"
    error: ingester "tx-a" has not ingested a transaction yet
    hint: there is no tRecovery to look up; check --ingester and `ingest-ctl status`
    "#);
    let json: Value = support::result(&out);
    assert_eq!(json["status"], "failed");
}

#[test]
fn an_unreachable_database_exits_3() {
    let db = registered();
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = ctl(&db)
        .env(
            "INTEGRATION_DB_URL",
            format!("postgresql://postgres@127.0.0.1:{port}/x"),
        )
        .arg("status")
        .output()
        .unwrap();
    let stderr = error(&out, 3).replace(&port.to_string(), "P");
    insta::assert_snapshot!(stderr, @r"
    error: cannot connect to PostgreSQL at 127.0.0.1:P: connection refused
    hint: is PostgreSQL running at 127.0.0.1:P?
    ");
}

#[test]
fn a_bad_queries_file_is_named() {
    let db = registered();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("q.sql");
    std::fs::write(&file, "-- name: last\nSELECT 1 AS record_time").unwrap();
    let out = ctl(&db)
        .arg("--queries")
        .arg(&file)
        .arg("last")
        .output()
        .unwrap();
    let stderr = error(&out, 2).replace(&file.display().to_string(), "q.sql");
    insta::assert_snapshot!(stderr, @r#"
    error: column "record_time" of query `last` from q.sql is int4, not timestamptz
    hint: cast it in the statement, e.g. "record_time"::timestamptz
    "#);
    std::fs::write(&file, "-- name: last\nSELECT 1 WHERE $1 = 7").unwrap();
    let out = ctl(&db)
        .arg("--queries")
        .arg(&file)
        .arg("last")
        .output()
        .unwrap();
    let stderr = error(&out, 2).replace(&file.display().to_string(), "q.sql");
    insta::assert_snapshot!(stderr, @r#"
    error: query `last` from q.sql takes $1 as int4; it is the ingester name, a text
    hint: compare $1 with a text column, or cast it: $1::text
    "#);
    std::fs::write(
        &file,
        "-- name: checkpoint\nSELECT * FROM no_such_table WHERE $1 = 'x'",
    )
    .unwrap();
    let out = ctl(&db)
        .arg("--queries")
        .arg(&file)
        .arg("status")
        .output()
        .unwrap();
    let stderr = error(&out, 2).replace(&file.display().to_string(), "q.sql");
    insta::assert_snapshot!(stderr, @r#"
    error: query `checkpoint` from q.sql failed: relation "no_such_table" does not exist
    hint: fix the statement in q.sql; it gets the ingester name as $1
    "#);
}
