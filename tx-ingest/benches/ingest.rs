//! Where ingestion's time goes, without the simulator: `decode` times
//! protobuf decoding (into tx-ingest's view, `tx_ingest::view`; and, for
//! comparison, into canton_proto's full messages) plus token-standard parsing
//! of updates shaped like canton-sim's (verbose LEDGER_EFFECTS transfers); `db` times the batch
//! writer alone on synthetic updates of the same mix (3 deposits : 1
//! withdrawal). Prints one JSON object per measurement.
//!
//! ```text
//! cargo bench -p tx-ingest --bench ingest -- decode --updates 200000
//! CANTON_LEDGER_API=… TREASURY_PARTY=… cargo bench -p tx-ingest --bench ingest -- replay --rounds 3
//! INTEGRATION_DB_URL=postgresql://… cargo bench -p tx-ingest --bench ingest -- db --updates 200000 --batch-size 1000
//! ```
//! (`scripts/bench-tx-ingest.sh` runs both next to the end-to-end runs.)

// The allocator tx-ingest's binary runs with (src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use canton_proto::ledger::{
    CreatedEvent, Event, ExercisedEvent, GetUpdatesResponse, Identifier, InterfaceView,
    Transaction, event, get_updates_response,
};
use chrono::{DateTime, Utc};
use integration_db::updates::UpdateRef;
use integration_db::{ConnectOptions, Db};
use prost::Message as _;
use std::time::Instant;
use tx_ingest::apply::{Statements, Target, apply_batch};
use tx_ingest::control;
use tx_ingest::parse::{
    Direction, HoldingCreated, Instrument, Outcome, ParsedTransaction, Transfer,
};
use tx_ingest::update::{Item, TxItem, decode};
use tx_ingest::value::build::*;

const TREASURY: &str = "treasury::1220bench";
const DSO: &str = "dso::1220bench";
const SYNC: &str = "global-domain::1220bench";
const INGESTER: &str = "bench";

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} {v} is not a number"))
        })
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let updates = arg(&args, "--updates", 200_000);
    let batch = arg(&args, "--batch-size", 1000).max(1);
    let mode = args
        .iter()
        .find(|a| ["decode", "db", "stream", "replay"].contains(&a.as_str()))
        .cloned()
        .unwrap_or_else(|| "decode".into());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match mode.as_str() {
        "db" => rt.block_on(bench_db(updates, batch)),
        "stream" => {
            let ledger = std::env::var("CANTON_LEDGER_API").expect("set CANTON_LEDGER_API");
            let party = std::env::var("TREASURY_PARTY").expect("set TREASURY_PARTY");
            // The reader runs on its own task, as in tx-ingest.
            let rt = if std::env::var("BENCH_CURRENT_THREAD").is_ok() {
                tokio::runtime::Builder::new_current_thread()
            } else {
                tokio::runtime::Builder::new_multi_thread()
            }
            .enable_all()
            .build()
            .expect("runtime");
            rt.block_on(bench_stream(ledger, party));
        }
        "replay" => {
            let ledger = std::env::var("CANTON_LEDGER_API").expect("set CANTON_LEDGER_API");
            let party = std::env::var("TREASURY_PARTY").expect("set TREASURY_PARTY");
            let rounds = arg(&args, "--rounds", 3);
            rt.block_on(bench_replay(ledger, party, rounds));
        }
        _ => bench_decode(updates),
    }
}

fn is_withdrawal(i: usize) -> bool {
    i % 4 == 3
}

fn record_time(i: usize) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(1_750_000_000_000_000 + i as i64 * 10).expect("time")
}

fn ident(package: &str, module: &str, entity: &str) -> Identifier {
    Identifier {
        package_id: package.into(),
        module_name: module.into(),
        entity_name: entity.into(),
    }
}

fn instrument() -> canton_proto::ledger::Value {
    record_value(true, vec![("admin", party(DSO)), ("id", text("Amulet"))])
}

fn metadata(entries: &[(&str, &str)]) -> canton_proto::ledger::Value {
    let e: Vec<(&str, canton_proto::ledger::Value)> =
        entries.iter().map(|(k, v)| (*k, text(v))).collect();
    record_value(true, vec![("values", text_map(&e))])
}

/// A transfer as canton-sim renders it for the treasury (verbose).
fn transaction(i: usize) -> GetUpdatesResponse {
    let withdrawal = is_withdrawal(i);
    let customer = format!("customer-{}::1220bench", i % 20);
    let (sender, receiver, amount, reason) = if withdrawal {
        (
            TREASURY.to_string(),
            customer.clone(),
            "1.0000000000",
            format!("bench-w-{i}"),
        )
    } else {
        (
            customer.clone(),
            TREASURY.to_string(),
            "100.0000000000",
            format!("acct-{}", i % 50),
        )
    };
    let transfer = record_value(
        true,
        vec![
            ("sender", party(&sender)),
            ("receiver", party(&receiver)),
            ("amount", numeric(amount)),
            ("instrumentId", instrument()),
            ("requestedAt", timestamp(1)),
            ("executeBefore", timestamp(2)),
            (
                "inputHoldingCids",
                list(vec![contract_id(&format!("00in{i}"))]),
            ),
            ("meta", metadata(&[(tx_ingest::parse::REASON_KEY, &reason)])),
        ],
    );
    let arg = record_value(
        true,
        vec![
            ("expectedAdmin", party(DSO)),
            ("transfer", transfer),
            (
                "extraArgs",
                record_value(
                    true,
                    vec![
                        (
                            "context",
                            record_value(true, vec![("values", text_map(&[]))]),
                        ),
                        ("meta", metadata(&[])),
                    ],
                ),
            ),
        ],
    );
    let result = record_value(
        true,
        vec![
            (
                "output",
                variant(
                    "TransferInstructionResult_Completed",
                    record_value(
                        true,
                        vec![("receiverHoldingCids", list(vec![contract_id("00r")]))],
                    ),
                ),
            ),
            ("senderChangeCids", list(vec![])),
            (
                "meta",
                metadata(&[(tx_ingest::parse::TX_KIND_KEY, "transfer")]),
            ),
        ],
    );
    let holding = |node_id: i32, cid: String, owner: &str| Event {
        event: Some(event::Event::Created(CreatedEvent {
            offset: i as i64 + 1,
            node_id,
            contract_id: cid,
            template_id: Some(ident("sim", "Canton.Sim.Token", "SimHolding")),
            interface_views: vec![InterfaceView {
                interface_id: Some(ident("hold", tx_ingest::parse::HOLDING_MODULE, "Holding")),
                view_status: None,
                view_value: Some(record(
                    true,
                    vec![
                        ("owner", party(owner)),
                        ("instrumentId", instrument()),
                        ("amount", numeric(amount)),
                        ("lock", optional(None)),
                        ("meta", metadata(&[])),
                    ],
                )),
            }],
            witness_parties: vec![TREASURY.into()],
            signatories: vec![DSO.into(), owner.into()],
            package_name: "canton-sim-token".into(),
            ..Default::default()
        })),
    };
    let events = vec![
        Event {
            event: Some(event::Event::Exercised(ExercisedEvent {
                offset: i as i64 + 1,
                node_id: 0,
                contract_id: "00factory".into(),
                template_id: Some(ident("sim", "Canton.Sim.Token", "SimTransferFactory")),
                interface_id: Some(ident(
                    "ti",
                    tx_ingest::parse::TRANSFER_INSTRUCTION_MODULE,
                    "TransferFactory",
                )),
                choice: tx_ingest::parse::TRANSFER_CHOICE.into(),
                choice_argument: Some(arg),
                acting_parties: vec![sender.clone()],
                witness_parties: vec![TREASURY.into()],
                last_descendant_node_id: 2,
                exercise_result: Some(result),
                package_name: "canton-sim-token".into(),
                ..Default::default()
            })),
        },
        Event {
            event: Some(event::Event::Exercised(ExercisedEvent {
                offset: i as i64 + 1,
                node_id: 1,
                contract_id: format!("00in{i}"),
                choice: "Archive".into(),
                consuming: true,
                last_descendant_node_id: 1,
                exercise_result: Some(unit()),
                ..Default::default()
            })),
        },
        holding(2, format!("00h{i}"), &receiver),
    ];
    GetUpdatesResponse {
        update: Some(get_updates_response::Update::Transaction(Transaction {
            update_id: format!("1220bench{i:012}"),
            offset: i as i64 + 1,
            synchronizer_id: SYNC.into(),
            record_time: Some(prost_types::Timestamp {
                seconds: record_time(i).timestamp(),
                nanos: record_time(i).timestamp_subsec_nanos() as i32,
            }),
            effective_at: Some(prost_types::Timestamp {
                seconds: 1,
                nanos: 0,
            }),
            events,
            ..Default::default()
        })),
    }
}

fn bench_decode(n: usize) {
    use tx_ingest::view;
    let encoded: Vec<Vec<u8>> = (0..n).map(|i| transaction(i).encode_to_vec()).collect();
    let bytes: usize = encoded.iter().map(Vec::len).sum();
    // For comparison: decoding into canton_proto's full messages.
    let start = Instant::now();
    let mut events = 0usize;
    for b in &encoded {
        let resp = GetUpdatesResponse::decode(b.as_slice()).expect("decode");
        if let Some(get_updates_response::Update::Transaction(t)) = resp.update {
            events += t.events.len();
        }
    }
    assert_eq!(events, 3 * n);
    let full_secs = start.elapsed().as_secs_f64();
    // Protobuf decoding alone into tx-ingest's view (each message dropped at
    // once, as the reader does), then decoding and parsing together.
    let start = Instant::now();
    let mut events = 0usize;
    for b in &encoded {
        let resp = view::GetUpdatesResponse::decode(b.as_slice()).expect("decode");
        if let Some(view::get_updates_response::Update::Transaction(t)) = resp.update {
            events += t.events.len();
        }
    }
    assert_eq!(events, 3 * n);
    let decode_secs = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut transfers = 0usize;
    for b in &encoded {
        let resp = view::GetUpdatesResponse::decode(b.as_slice()).expect("decode");
        if let Some(Item::Transaction(t)) = decode(resp, TREASURY).expect("parse") {
            transfers += t.parsed.transfers.len();
        }
    }
    let parse_secs = start.elapsed().as_secs_f64() - decode_secs;
    assert_eq!(transfers, n);
    let secs = decode_secs + parse_secs;
    println!(
        "{}",
        serde_json::json!({
            "type": "bench", "what": "decode+parse", "updates": n,
            "bytesPerUpdate": bytes / n.max(1),
            "protobufSeconds": (decode_secs * 1000.0).round() / 1000.0,
            "fullProtobufSeconds": (full_secs * 1000.0).round() / 1000.0,
            "parseSeconds": (parse_secs * 1000.0).round() / 1000.0,
            "seconds": (secs * 1000.0).round() / 1000.0,
            "updatesPerSecond": (n as f64 / secs).round(),
        })
    );
}

/// Decoding real traffic in-process: the simulator's updates (verbose
/// unless `TX_INGEST_COMPACT_VALUES` is set) are fetched once as Canton's
/// messages and re-encoded (canton-sim's bytes are prost's), then decoded
/// `rounds` times into canton_proto's full messages, into tx-ingest's view,
/// and into the view plus parsing. One JSON line per round.
async fn bench_replay(ledger: String, party: String, rounds: usize) {
    use tx_ingest::view;
    let conn = canton_client::CantonChannel::new(&canton_client::ClientConfig::ledger(ledger))
        .expect("channel");
    let end = tx_ingest::stream::ledger_end(&conn)
        .await
        .expect("ledger end");
    let verbose = std::env::var("TX_INGEST_COMPACT_VALUES").is_err();
    let req = tx_ingest::stream::request(&party, 0, Some(end), verbose);
    let mut stream = canton_client::codec::server_streaming::<_, GetUpdatesResponse>(
        &conn,
        "com.daml.ledger.api.v2.UpdateService",
        "GetUpdates",
        req,
    )
    .await
    .expect("GetUpdates")
    .into_inner();
    let mut encoded = Vec::new();
    while let Some(resp) = stream.message().await.expect("stream") {
        encoded.push(resp.encode_to_vec());
    }
    let n = encoded.len().max(1) as f64;
    let bytes: usize = encoded.iter().map(Vec::len).sum();
    let us = |secs: f64| (secs * 1e7 / n).round() / 10.0;
    for _ in 0..rounds {
        let start = Instant::now();
        for b in &encoded {
            std::hint::black_box(GetUpdatesResponse::decode(b.as_slice()).expect("decode"));
        }
        let full = start.elapsed().as_secs_f64();
        let start = Instant::now();
        for b in &encoded {
            std::hint::black_box(view::GetUpdatesResponse::decode(b.as_slice()).expect("decode"));
        }
        let kept = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let mut items = 0usize;
        for b in &encoded {
            let resp = view::GetUpdatesResponse::decode(b.as_slice()).expect("decode");
            items += usize::from(decode(resp, &party).expect("parse").is_some());
        }
        let parsed = start.elapsed().as_secs_f64();
        println!(
            "{}",
            serde_json::json!({
                "type": "bench", "what": "replay", "verbose": verbose, "updates": encoded.len(),
                "items": items, "bytesPerUpdate": bytes / encoded.len().max(1),
                "fullDecodeUsPerUpdate": us(full),
                "viewDecodeUsPerUpdate": us(kept),
                "viewDecodeParseUsPerUpdate": us(parsed),
            })
        );
    }
}

/// The simulator's stream alone: GetUpdates to the ledger end, decoded and
/// parsed by tx-ingest's reader, nothing written.
async fn bench_stream(ledger: String, party: String) {
    use tx_ingest::stream::{Message, ledger_end, spawn_reader};
    let conn = canton_client::CantonChannel::new(&canton_client::ClientConfig::ledger(ledger))
        .expect("channel");
    let end = ledger_end(&conn).await.expect("ledger end");
    let start = Instant::now();
    let verbose = std::env::var("TX_INGEST_COMPACT_VALUES").is_err();
    let mut reader = spawn_reader(conn, party, 0, Some(end), verbose, 64);
    let mut updates = 0u64;
    while let Some(m) = reader.rx.recv().await {
        match m {
            Message::Items(items) => updates += items.len() as u64,
            Message::End => break,
            Message::Failed(e) => panic!("stream failed: {}", e.message()),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "type": "bench", "what": "stream-only", "verbose": verbose, "updates": updates,
            "seconds": (secs * 1000.0).round() / 1000.0,
            "updatesPerSecond": (updates as f64 / secs).round(),
        })
    );
}

fn item(i: usize) -> Item {
    let amulet = Instrument {
        admin: DSO.into(),
        id: "Amulet".into(),
    };
    let withdrawal = is_withdrawal(i);
    let customer = format!("customer-{}::1220bench", i % 20);
    let transfer = Transfer {
        node_id: 0,
        direction: if withdrawal {
            Direction::Withdrawal
        } else {
            Direction::Deposit
        },
        sender: if withdrawal {
            TREASURY.into()
        } else {
            customer.clone()
        },
        receiver: if withdrawal {
            customer
        } else {
            TREASURY.into()
        },
        instrument: amulet.clone(),
        amount: if withdrawal {
            "1.0000000000"
        } else {
            "100.0000000000"
        }
        .into(),
        reason: Some(if withdrawal {
            format!("bench-w-{i}")
        } else {
            format!("acct-{}", i % 50)
        }),
        outcome: Outcome::Completed,
    };
    // A withdrawal spends the holding of the deposit before it and returns change.
    let (consumed, created) = if withdrawal {
        (vec![format!("00h{}", i - 1)], format!("00change{i}"))
    } else {
        (vec![format!("00in{i}")], format!("00h{i}"))
    };
    Item::Transaction(TxItem {
        update: UpdateRef {
            update_id: format!("1220bench{i:012}"),
            offset: i as i64 + 1,
            record_time: record_time(i),
            synchronizer_id: SYNC.into(),
        },
        parsed: ParsedTransaction {
            transfers: vec![transfer],
            holdings_created: vec![HoldingCreated {
                contract_id: created,
                owner: TREASURY.into(),
                instrument: amulet,
                amount: "100.0000000000".into(),
            }],
            consumed,
        },
    })
}

async fn bench_db(n: usize, batch: usize) {
    let url =
        std::env::var("INTEGRATION_DB_URL").expect("set INTEGRATION_DB_URL to a migrated database");
    let mut db = Db::connect_ready(&ConnectOptions::from_url(url))
        .await
        .expect("connect");
    control::register(db.client(), INGESTER)
        .await
        .expect("register");
    for a in 0..49 {
        integration_db::deposits::upsert_account(db.client(), &format!("acct-{a}"), "c")
            .await
            .expect("account");
    }
    let orders = control::read(db.client(), INGESTER).await.expect("orders");
    let target = Target {
        ingester: INGESTER.into(),
        offset_epoch: orders.offset_epoch,
        generation: orders.generation,
        dedup_from: None,
    };
    let stmts = Statements::prepare(db.client()).await.expect("prepare");
    // Batches are built outside the timed part, one at a time.
    let mut took = std::time::Duration::ZERO;
    let mut position = None;
    let mut next = 0;
    while next < n {
        let end = (next + batch).min(n);
        let chunk: Vec<Item> = (next..end).map(item).collect();
        next = end;
        let start = Instant::now();
        let out = apply_batch(db.client_mut(), &stmts, &target, position.as_ref(), &chunk)
            .await
            .expect("apply")
            .expect("fence");
        took += start.elapsed();
        position = out.position;
    }
    let secs = took.as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "type": "bench", "what": "db-only", "updates": n, "batchSize": batch,
            "seconds": (secs * 1000.0).round() / 1000.0,
            "updatesPerSecond": (n as f64 / secs).round(),
        })
    );
}
