//! Benchmark of the simulator, run with `cargo bench -p canton-sim`: start-up
//! to ready (empty and with 100,000 updates of history), sequencing 100,000
//! updates through `ctl traffic`, and streaming them through GetUpdates
//! (all parties, and the treasury's filtered view). Prints one JSON line per
//! figure.

use canton_proto::ledger::update_service_client::UpdateServiceClient;
use canton_proto::ledger::{self as lapi};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_canton-sim");
const UPDATES: u32 = 100_000;

struct Proc {
    child: Child,
    ready: serde_json::Value,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path) -> (Proc, f64) {
    let t = Instant::now();
    let mut child = Command::new(BIN)
        .args(["serve", "--catch-up", "0s", "--state-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn canton-sim");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    let ready = serde_json::from_str(&line).expect("ready line");
    (Proc { child, ready }, secs)
}

fn format(party: Option<&str>) -> lapi::UpdateFormat {
    let wildcard = lapi::Filters {
        cumulative: vec![lapi::CumulativeFilter {
            identifier_filter: Some(lapi::cumulative_filter::IdentifierFilter::WildcardFilter(
                lapi::WildcardFilter {
                    include_created_event_blob: false,
                },
            )),
        }],
    };
    let (by_party, any) = match party {
        Some(p) => (HashMap::from([(p.to_string(), wildcard)]), None),
        None => (HashMap::new(), Some(wildcard)),
    };
    lapi::UpdateFormat {
        include_transactions: Some(lapi::TransactionFormat {
            event_format: Some(lapi::EventFormat {
                filters_by_party: by_party,
                filters_for_any_party: any,
                verbose: true,
            }),
            transaction_shape: lapi::TransactionShape::LedgerEffects as i32,
        }),
        include_reassignments: None,
        include_topology_events: None,
    }
}

async fn stream(ledger: &str, party: Option<&str>) -> (u64, f64) {
    let ch = tonic::transport::Channel::from_shared(format!("http://{ledger}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut state = canton_proto::ledger::state_service_client::StateServiceClient::new(ch.clone());
    let end = state
        .get_ledger_end(lapi::GetLedgerEndRequest {})
        .await
        .unwrap()
        .into_inner()
        .offset;
    let t = Instant::now();
    let mut s = UpdateServiceClient::new(ch)
        .max_decoding_message_size(64 << 20)
        .get_updates(lapi::GetUpdatesRequest {
            begin_exclusive: 0,
            end_inclusive: Some(end),
            update_format: Some(format(party)),
        })
        .await
        .unwrap()
        .into_inner();
    let mut n = 0u64;
    while let Some(m) = s.message().await.unwrap() {
        if matches!(
            m.update,
            Some(lapi::get_updates_response::Update::Transaction(_))
        ) {
            n += 1;
        }
    }
    (n, t.elapsed().as_secs_f64())
}

fn main() {
    // `cargo test --benches` runs this with --bench absent: keep that cheap.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (p, ready_empty) = start(&state);
    println!(
        "{}",
        serde_json::json!({"type": "bench", "name": "startup_to_ready_empty_s", "value": ready_empty})
    );
    let control = p.ready["controlApi"].as_str().unwrap().to_string();
    let ledger = p.ready["ledgerApi"].as_str().unwrap().to_string();
    let treasury = p.ready["treasuryParty"].as_str().unwrap().to_string();

    let t = Instant::now();
    let deposits = (UPDATES * 4 / 10).to_string();
    let withdrawals = (UPDATES * 2 / 10).to_string();
    let noise = (UPDATES * 4 / 10).to_string();
    let out = Command::new(BIN)
        .args([
            "ctl",
            "--control-api",
            &control,
            "traffic",
            "--deposits",
            &deposits,
            "--withdrawals",
            &withdrawals,
            "--noise",
            &noise,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"type": "bench", "name": "sequence_100k_updates_per_s", "value": UPDATES as f64 / secs, "seconds": secs})
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (n, secs) = rt.block_on(stream(&ledger, None));
    assert_eq!(n, UPDATES as u64);
    println!(
        "{}",
        serde_json::json!({"type": "bench", "name": "getupdates_all_parties_updates_per_s", "value": n as f64 / secs, "updates": n, "seconds": secs})
    );
    let (n, secs) = rt.block_on(stream(&ledger, Some(&treasury)));
    println!(
        "{}",
        serde_json::json!({"type": "bench", "name": "getupdates_treasury_updates_per_s", "value": n as f64 / secs, "updates": n, "seconds": secs})
    );
    drop(p);

    let (_p, ready_full) = start(&state);
    println!(
        "{}",
        serde_json::json!({"type": "bench", "name": "startup_to_ready_100k_history_s", "value": ready_full})
    );
}
