//! GetHighestOffsetByTimestamp over gRPC in 3.3 and 3.4.9+ semantics: exact
//! answers, ties, a lagging clean head, and every documented error.

mod common;
use common::*;
use tonic::Code;

const T0: &str = "2025-01-01T00:00:00Z";

fn virtual_args(semantics: &str, extra: &[&'static str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "--clock",
        "virtual",
        "--clock-start",
        T0,
        "--catch-up",
        "0s",
        "--semantics",
        semantics,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn start(dir: &std::path::Path, semantics: &str, extra: &[&'static str]) -> SimProc {
    let args = virtual_args(semantics, extra);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    SimProc::start(dir, &refs)
}

/// Two deposits one second apart, the clock then 1 s past the second.
fn two_deposits(sim: &SimProc) -> (serde_json::Value, serde_json::Value) {
    let d1 = sim.ctl(&["deposit", "--account", "a1", "--amount", "10"]);
    sim.ctl(&["advance-time", "1s"]);
    let d2 = sim.ctl(&["deposit", "--account", "a2", "--amount", "20"]);
    sim.ctl(&["advance-time", "1s"]);
    (d1, d2)
}

#[tokio::test]
async fn semantics_3_4_needs_an_exact_record_time_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(dir.path(), "3.4", &[]);
    let (d1, d2) = two_deposits(&sim);
    assert_eq!(d1["recordTime"], "2025-01-01T00:00:00.000000Z");
    assert_eq!(d2["recordTime"], "2025-01-01T00:00:01.000000Z");
    let o1 = d1["offset"].as_i64().unwrap();
    let o2 = d2["offset"].as_i64().unwrap();
    assert!(o1 > 0 && o2 > o1);

    assert_eq!(sim.lookup("2025-01-01T00:00:00Z", false).await.unwrap(), o1);
    assert_eq!(sim.lookup("2025-01-01T00:00:01Z", false).await.unwrap(), o2);

    // Between two events: exact match required.
    let e = sim
        .lookup("2025-01-01T00:00:00.500Z", false)
        .await
        .unwrap_err();
    assert_canton(
        &e,
        Code::FailedPrecondition,
        "INVALID_STATE_PARTY_MANAGEMENT_ERROR",
    );
    assert!(
        e.message().contains("Timestamp mismatch"),
        "{}",
        e.message()
    );
    assert!(details(&e).retry_delay.is_none());
    assert_eq!(
        sim.lookup("2025-01-01T00:00:00.500Z", true).await.unwrap(),
        o1
    );

    // Past the clean head: retryable INVALID_TIMESTAMP, 1 s RetryInfo.
    let e = sim.lookup("2025-01-01T00:00:09Z", false).await.unwrap_err();
    assert_canton(
        &e,
        Code::OutOfRange,
        "INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR",
    );
    assert!(
        e.message().contains("Not all events have been processed"),
        "{}",
        e.message()
    );
    let d = details(&e);
    assert_eq!(d.retry_delay, Some(std::time::Duration::from_secs(1)));
    let meta = d.error_info.unwrap().metadata;
    assert_eq!(meta["force"], "false");
    assert_eq!(meta["synchronizerId"], sim.synchronizer_id());
    // force past the clean head: the ledger end.
    let end = sim.ledger_end().await;
    assert_eq!(sim.lookup("2025-01-01T00:00:09Z", true).await.unwrap(), end);

    // Before the first event.
    let e = sim.lookup("2024-12-31T23:59:59Z", false).await.unwrap_err();
    assert_canton(
        &e,
        Code::OutOfRange,
        "INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR",
    );
    assert!(
        e.message().contains("does not yet have a ledger offset"),
        "{}",
        e.message()
    );
}

#[tokio::test]
async fn semantics_3_3_answers_the_highest_offset_at_or_before() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(dir.path(), "3.3", &[]);
    let (d1, d2) = two_deposits(&sim);
    let o1 = d1["offset"].as_i64().unwrap();
    let o2 = d2["offset"].as_i64().unwrap();
    assert_eq!(
        sim.lookup("2025-01-01T00:00:00.500Z", false).await.unwrap(),
        o1
    );
    assert_eq!(
        sim.lookup("2025-01-01T00:00:01.999999Z", false)
            .await
            .unwrap(),
        o2
    );
    let e = sim
        .lookup("2025-01-01T00:00:02.000001Z", false)
        .await
        .unwrap_err();
    assert_canton(
        &e,
        Code::OutOfRange,
        "INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR",
    );
}

#[tokio::test]
async fn bad_arguments_are_invalid_argument() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(dir.path(), "3.4", &[]);
    two_deposits(&sim);
    let mut c =
        canton_proto::admin::party_management_service_client::PartyManagementServiceClient::new(
            sim.admin_channel().await,
        );
    let call = |sync: String, ts: Option<prost_types::Timestamp>| {
        canton_proto::admin::GetHighestOffsetByTimestampRequest {
            synchronizer_id: sync,
            timestamp: ts,
            force: false,
        }
    };
    let id = "INVALID_ARGUMENT_PARTY_MANAGEMENT_ERROR";
    // physical synchronizer id
    let e = c
        .get_highest_offset_by_timestamp(call(
            format!("{}::34-0", sim.synchronizer_id()),
            Some(pb_ts(T0)),
        ))
        .await
        .unwrap_err();
    assert_canton(&e, Code::InvalidArgument, id);
    // unknown synchronizer
    let e = c
        .get_highest_offset_by_timestamp(call("other::1220abcd".into(), Some(pb_ts(T0))))
        .await
        .unwrap_err();
    assert_canton(&e, Code::InvalidArgument, id);
    assert!(e.message().contains("is unknown"), "{}", e.message());
    // missing timestamp
    let e = c
        .get_highest_offset_by_timestamp(call(sim.synchronizer_id().to_string(), None))
        .await
        .unwrap_err();
    assert_canton(&e, Code::InvalidArgument, id);
    // out of Daml's range
    let e = c
        .get_highest_offset_by_timestamp(call(
            sim.synchronizer_id().to_string(),
            Some(prost_types::Timestamp {
                seconds: -62_135_596_801,
                nanos: 0,
            }),
        ))
        .await
        .unwrap_err();
    assert_canton(&e, Code::InvalidArgument, id);
}

#[tokio::test]
async fn ties_resolve_to_the_highest_offset_of_the_record_time() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(dir.path(), "3.4", &["--record-time-ties"]);
    let (_, d2) = two_deposits(&sim);
    let a = sim.ctl(&["deposit", "--account", "a3", "--amount", "1"]);
    let b = sim.ctl(&[
        "deposit",
        "--account",
        "a4",
        "--amount",
        "1",
        "--same-record-time",
    ]);
    assert_eq!(a["recordTime"], b["recordTime"]);
    assert_ne!(a["updateId"], b["updateId"]);
    let t = a["recordTime"].as_str().unwrap();
    sim.ctl(&["advance-time", "1s"]);
    assert_eq!(
        sim.lookup(t, false).await.unwrap(),
        b["offset"].as_i64().unwrap()
    );
    // The runbook's tRecovery - 1µs lookup needs force under 3.4.9+.
    let before = rfc3339(micros(t) - 1);
    let e = sim.lookup(&before, false).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(
        sim.lookup(&before, true).await.unwrap(),
        d2["offset"].as_i64().unwrap()
    );
}

#[tokio::test]
async fn a_lagging_clean_head_answers_not_yet_processed() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(dir.path(), "3.4", &[]);
    let (_, d2) = two_deposits(&sim);
    // The clock is at T0+2s; a 1.5 s lag puts the clean head at T0+0.5s.
    sim.ctl(&["fault", "lag", "1500ms"]);
    let e = sim.lookup("2025-01-01T00:00:01Z", false).await.unwrap_err();
    assert_canton(
        &e,
        Code::OutOfRange,
        "INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR",
    );
    let status = sim.ctl(&["status"]);
    assert_eq!(status["cleanRecordTime"], "2025-01-01T00:00:00.500000Z");
    // A new update is not processed until the clock passes it by the lag.
    let end = sim.ledger_end().await;
    let d3 = sim.ctl(&["deposit", "--account", "a3", "--amount", "1"]);
    assert_eq!(d3["offset"], 0, "not yet processed: {d3}");
    assert_eq!(sim.ledger_end().await, end);
    sim.ctl(&["advance-time", "2s"]);
    assert!(sim.ledger_end().await > end);
    assert_eq!(
        sim.lookup("2025-01-01T00:00:01Z", false).await.unwrap(),
        d2["offset"].as_i64().unwrap()
    );
    sim.ctl(&["fault", "clear"]);
}
