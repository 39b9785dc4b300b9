//! UpdateService over gRPC: the treasury's view of deposits and withdrawals as
//! token-standard Values, noise it must not see, shapes, lookups by id and
//! offset, range errors, pruning, and the live tail's offset checkpoints.

mod common;
use canton_proto::ledger::update_service_client::UpdateServiceClient;
use canton_proto::ledger::{self as lapi, event, get_updates_response, value::Sum};
use common::*;
use std::time::Duration;
use tonic::Code;

const REASON: &str = "splice.lfdecentralizedtrust.org/reason";

fn start(dir: &std::path::Path, extra: &[&str]) -> SimProc {
    let mut args = vec![
        "--clock",
        "virtual",
        "--clock-start",
        "2025-06-01T12:00:00Z",
        "--catch-up",
        "0s",
        "--checkpoint-interval",
        "100ms",
    ];
    args.extend_from_slice(extra);
    SimProc::start(dir, &args)
}

fn field<'a>(r: &'a lapi::Record, label: &str) -> &'a Sum {
    r.fields
        .iter()
        .find(|f| f.label == label)
        .unwrap_or_else(|| panic!("no field {label} in {r:?}"))
        .value
        .as_ref()
        .unwrap()
        .sum
        .as_ref()
        .unwrap()
}

fn rec(s: &Sum) -> &lapi::Record {
    match s {
        Sum::Record(r) => r,
        other => panic!("not a record: {other:?}"),
    }
}

fn meta_value(meta: &Sum, key: &str) -> Option<String> {
    let Sum::TextMap(m) = field(rec(meta), "values") else {
        panic!("metadata values is not a text map")
    };
    m.entries
        .iter()
        .find(|e| e.key == key)
        .map(|e| match &e.value.as_ref().unwrap().sum {
            Some(Sum::Text(t)) => t.clone(),
            other => panic!("{other:?}"),
        })
}

async fn next(s: &mut tonic::Streaming<lapi::GetUpdatesResponse>) -> get_updates_response::Update {
    tokio::time::timeout(Duration::from_secs(5), s.message())
        .await
        .expect("stream stalled")
        .unwrap()
        .unwrap()
        .update
        .unwrap()
}

async fn all_updates(sim: &SimProc, format: lapi::UpdateFormat) -> Vec<lapi::Transaction> {
    let end = sim.ledger_end().await;
    let mut c = UpdateServiceClient::new(sim.ledger_channel().await);
    let mut s = c
        .get_updates(lapi::GetUpdatesRequest {
            begin_exclusive: 0,
            end_inclusive: Some(end),
            update_format: Some(format),
        })
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(m) = s.message().await.unwrap() {
        if let Some(get_updates_response::Update::Transaction(t)) = m.update {
            out.push(t);
        }
    }
    out
}

#[tokio::test]
async fn treasury_sees_transfers_as_token_standard_values() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(dir.path(), &[]);
    let dep = sim.ctl(&["deposit", "--account", "acct-42", "--amount", "150.5"]);
    sim.ctl(&["traffic", "--noise", "3"]);
    let wd = sim.ctl(&[
        "withdraw",
        "--withdrawal-id",
        "wid-7",
        "--amount",
        "100",
        "--receiver",
        "bob::1220beef",
        "--trec-tgt",
        "2025-06-01T13:00:00Z",
    ]);
    assert_eq!(wd["outcome"], "committed");
    let expired = sim.ctl(&[
        "withdraw",
        "--withdrawal-id",
        "wid-8",
        "--amount",
        "1",
        "--receiver",
        "bob::1220beef",
        "--trec-tgt",
        "2025-06-01T12:00:00Z",
    ]);
    assert_eq!(expired["outcome"], "expired");
    assert!(expired.get("updateId").is_none());

    let txs = all_updates(&sim, party_format(sim.treasury_party(), true)).await;
    assert_eq!(
        txs.len(),
        2,
        "noise and the expired withdrawal are invisible"
    );
    let all_ids = sim.ctl_lines(&["update-ids"]);
    assert_eq!(
        all_ids.len(),
        5,
        "deposit + 3 noise + 1 withdrawal on the synchronizer"
    );

    // Deposit: exercise of TransferFactory_Transfer with the account as reason,
    // and a Holding for the treasury with its interface view.
    let d = &txs[0];
    assert_eq!(d.update_id, dep["updateId"].as_str().unwrap());
    assert_eq!(d.offset, dep["offset"].as_i64().unwrap());
    assert_eq!(d.synchronizer_id, sim.synchronizer_id());
    let Some(event::Event::Exercised(ex)) = &d.events[0].event else {
        panic!("first event is not an exercise: {:?}", d.events[0])
    };
    assert_eq!(ex.choice, "TransferFactory_Transfer");
    assert_eq!(ex.node_id, 0);
    assert_eq!(ex.last_descendant_node_id, 2);
    let interface = ex.interface_id.as_ref().unwrap();
    assert_eq!(interface.entity_name, "TransferFactory");
    assert!(
        !interface.package_id.starts_with('#'),
        "events use package ids"
    );
    let arg = rec(ex.choice_argument.as_ref().unwrap().sum.as_ref().unwrap());
    let labels: Vec<&str> = arg.fields.iter().map(|f| f.label.as_str()).collect();
    assert_eq!(labels, ["expectedAdmin", "transfer", "extraArgs"]);
    let transfer = rec(field(arg, "transfer"));
    let labels: Vec<&str> = transfer.fields.iter().map(|f| f.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "sender",
            "receiver",
            "amount",
            "instrumentId",
            "requestedAt",
            "executeBefore",
            "inputHoldingCids",
            "meta"
        ]
    );
    assert_eq!(
        field(transfer, "receiver"),
        &Sum::Party(sim.treasury_party().to_string())
    );
    assert_eq!(
        field(transfer, "amount"),
        &Sum::Numeric("150.5000000000".into())
    );
    assert_eq!(
        meta_value(field(transfer, "meta"), REASON).as_deref(),
        Some("acct-42")
    );
    let result = rec(ex.exercise_result.as_ref().unwrap().sum.as_ref().unwrap());
    assert_eq!(
        meta_value(
            field(result, "meta"),
            "splice.lfdecentralizedtrust.org/tx-kind"
        )
        .as_deref(),
        Some("transfer")
    );
    let created: Vec<&lapi::CreatedEvent> = d
        .events
        .iter()
        .filter_map(|e| match &e.event {
            Some(event::Event::Created(c)) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 1);
    let view = created[0].interface_views[0].view_value.as_ref().unwrap();
    assert_eq!(
        field(view, "owner"),
        &Sum::Party(sim.treasury_party().to_string())
    );
    assert_eq!(
        created[0].witness_parties,
        vec![sim.treasury_party().to_string()]
    );

    // Withdrawal: the treasury's exercise with the withdrawal id as reason,
    // its input archived (consuming), receiver and change holdings created.
    let w = &txs[1];
    let Some(event::Event::Exercised(ex)) = &w.events[0].event else {
        panic!()
    };
    assert_eq!(ex.acting_parties, vec![sim.treasury_party().to_string()]);
    let transfer = rec(field(
        rec(ex.choice_argument.as_ref().unwrap().sum.as_ref().unwrap()),
        "transfer",
    ));
    assert_eq!(
        meta_value(field(transfer, "meta"), REASON).as_deref(),
        Some("wid-7")
    );
    assert_eq!(
        field(transfer, "amount"),
        &Sum::Numeric("100.0000000000".into())
    );
    let consuming: Vec<_> = w
        .events
        .iter()
        .filter_map(|e| match &e.event {
            Some(event::Event::Exercised(x)) if x.consuming => Some(x.contract_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        consuming,
        vec![created[0].contract_id.clone()],
        "the deposit's holding is spent"
    );
    let amounts: Vec<Sum> = w
        .events
        .iter()
        .filter_map(|e| match &e.event {
            Some(event::Event::Created(c)) => {
                Some(field(c.create_arguments.as_ref().unwrap(), "amount").clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        amounts,
        vec![
            Sum::Numeric("100.0000000000".into()),
            Sum::Numeric("50.5000000000".into())
        ]
    );

    // Without verbose: no labels, no record ids.
    let plain = all_updates(&sim, party_format(sim.treasury_party(), false)).await;
    let Some(event::Event::Exercised(ex)) = &plain[0].events[0].event else {
        panic!()
    };
    let arg = rec(ex.choice_argument.as_ref().unwrap().sum.as_ref().unwrap());
    assert!(arg.record_id.is_none());
    assert!(arg.fields.iter().all(|f| f.label.is_empty()));

    // ACS_DELTA: created and archived only.
    let mut acs = party_format(sim.treasury_party(), false);
    acs.include_transactions.as_mut().unwrap().transaction_shape =
        lapi::TransactionShape::AcsDelta as i32;
    let delta = all_updates(&sim, acs).await;
    for t in &delta {
        for e in &t.events {
            assert!(!matches!(e.event, Some(event::Event::Exercised(_))));
        }
    }
    assert!(
        delta[1]
            .events
            .iter()
            .any(|e| matches!(e.event, Some(event::Event::Archived(_))))
    );

    // Any-party wildcard sees the noise too.
    let mut any = party_format(sim.treasury_party(), false);
    let ef = any
        .include_transactions
        .as_mut()
        .unwrap()
        .event_format
        .as_mut()
        .unwrap();
    ef.filters_for_any_party = ef.filters_by_party.drain().next().map(|(_, f)| f);
    assert_eq!(all_updates(&sim, any).await.len(), 5);

    // Lookups by id and offset.
    let mut c = UpdateServiceClient::new(sim.ledger_channel().await);
    let by_id = c
        .get_update_by_id(lapi::GetUpdateByIdRequest {
            update_id: w.update_id.clone(),
            update_format: Some(party_format(sim.treasury_party(), false)),
        })
        .await
        .unwrap()
        .into_inner();
    let Some(lapi::get_update_response::Update::Transaction(t)) = by_id.update else {
        panic!()
    };
    assert_eq!(t.offset, w.offset);
    let by_off = c
        .get_update_by_offset(lapi::GetUpdateByOffsetRequest {
            offset: d.offset,
            update_format: Some(party_format(sim.treasury_party(), false)),
        })
        .await
        .unwrap()
        .into_inner();
    let Some(lapi::get_update_response::Update::Transaction(t)) = by_off.update else {
        panic!()
    };
    assert_eq!(t.update_id, d.update_id);
    let noise_id = all_ids.iter().find(|u| u["kind"] == "noise").unwrap()["updateId"]
        .as_str()
        .unwrap()
        .to_string();
    let e = c
        .get_update_by_id(lapi::GetUpdateByIdRequest {
            update_id: noise_id,
            update_format: Some(party_format(sim.treasury_party(), false)),
        })
        .await
        .unwrap_err();
    assert_canton(&e, Code::NotFound, "UPDATE_NOT_FOUND");
}

#[tokio::test]
async fn range_errors_and_pruning() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(dir.path(), &[]);
    sim.ctl(&["traffic", "--deposits", "6"]);
    let end = sim.ledger_end().await;
    let mut c = UpdateServiceClient::new(sim.ledger_channel().await);
    let req = |b: i64, e: Option<i64>, f: Option<lapi::UpdateFormat>| lapi::GetUpdatesRequest {
        begin_exclusive: b,
        end_inclusive: e,
        update_format: f,
    };
    let fmt = Some(party_format(sim.treasury_party(), false));
    let e = c
        .get_updates(req(end + 1, None, fmt.clone()))
        .await
        .unwrap_err();
    assert_canton(&e, Code::OutOfRange, "OFFSET_AFTER_LEDGER_END");
    assert!(details(&e).retry_delay.is_some());
    let e = c
        .get_updates(req(0, Some(end + 5), fmt.clone()))
        .await
        .unwrap_err();
    assert_canton(&e, Code::OutOfRange, "OFFSET_AFTER_LEDGER_END");
    let e = c.get_updates(req(0, None, None)).await.unwrap_err();
    assert_canton(&e, Code::InvalidArgument, "MISSING_FIELD");

    let txs = sim.treasury_updates(0, end).await;
    let prune_at = txs[2].1;
    let p = sim.ctl(&["prune", "--up-to", &prune_at.to_string()]);
    assert_eq!(p["prunedUpTo"], prune_at);
    let e = c
        .get_updates(req(prune_at - 1, None, fmt.clone()))
        .await
        .unwrap_err();
    assert_canton(
        &e,
        Code::FailedPrecondition,
        "PARTICIPANT_PRUNED_DATA_ACCESSED",
    );
    let meta = details(&e).error_info.unwrap().metadata;
    assert_eq!(meta["earliest_offset"], prune_at.to_string());
    assert_eq!(sim.treasury_updates(prune_at, end).await.len(), 3);
    let pruned = canton_proto::ledger::state_service_client::StateServiceClient::new(
        sim.ledger_channel().await,
    )
    .get_latest_pruned_offsets(lapi::GetLatestPrunedOffsetsRequest {})
    .await
    .unwrap()
    .into_inner();
    assert_eq!(pruned.participant_pruned_up_to_inclusive, prune_at);
}

#[tokio::test]
async fn live_tail_emits_transactions_and_checkpoints_in_quiet_periods() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(dir.path(), &[]);
    sim.ctl(&["deposit", "--account", "a", "--amount", "1"]);
    let begin = sim.ledger_end().await;
    let mut c = UpdateServiceClient::new(sim.ledger_channel().await);
    let mut s = c
        .get_updates(lapi::GetUpdatesRequest {
            begin_exclusive: begin,
            end_inclusive: None,
            update_format: Some(party_format(sim.treasury_party(), false)),
        })
        .await
        .unwrap()
        .into_inner();
    let dep = sim.ctl(&["deposit", "--account", "b", "--amount", "2"]);
    let mut tx_offset = None;
    while tx_offset.is_none() {
        if let get_updates_response::Update::Transaction(t) = next(&mut s).await {
            assert_eq!(t.update_id, dep["updateId"].as_str().unwrap());
            tx_offset = Some(t.offset);
        }
    }
    // Quiet: the synchronizer time moves, a checkpoint carries it.
    sim.ctl(&["advance-time", "30s"]);
    sim.ctl(&["traffic", "--noise", "2"]);
    let now = sim.ctl(&["status"])["synchronizerTime"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint at {now}"
        );
        match next(&mut s).await {
            get_updates_response::Update::OffsetCheckpoint(cp) => {
                let t = cp
                    .synchronizer_times
                    .iter()
                    .find(|t| t.synchronizer_id == sim.synchronizer_id())
                    .unwrap();
                let rt = t.record_time.unwrap();
                if rfc3339(rt.seconds * 1_000_000 + (rt.nanos / 1000) as i64) == now {
                    assert!(
                        cp.offset > tx_offset.unwrap(),
                        "the checkpoint moves past the noise"
                    );
                    assert_eq!(cp.offset, sim.ledger_end().await);
                    break;
                }
            }
            get_updates_response::Update::Transaction(t) => panic!("treasury saw {t:?}"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn cached_responses_match_fresh_renders() {
    // Three formats on one update overflow its cache slots; a budget of 0
    // renders everything afresh: all must serve the same transactions.
    let dir = tempfile::tempdir().unwrap();
    let sim = start(dir.path(), &["--stream-cache-mib", "64"]);
    sim.ctl(&[
        "traffic",
        "--deposits",
        "6",
        "--withdrawals",
        "2",
        "--noise",
        "3",
    ]);
    let treasury = sim.treasury_party().to_string();
    let verbose = || party_format(&treasury, true);
    let compact = || party_format(&treasury, false);
    let cold = all_updates(&sim, verbose()).await;
    assert_eq!(cold.len(), 8);
    let compact_cold = all_updates(&sim, compact()).await;
    let mut any = verbose();
    let any_format = any
        .include_transactions
        .as_mut()
        .unwrap()
        .event_format
        .as_mut()
        .unwrap();
    any_format.filters_by_party.clear();
    any_format.filters_for_any_party = Some(lapi::Filters::default());
    let any_cold = all_updates(&sim, any.clone()).await;
    assert_eq!(any_cold.len(), 11);
    assert_eq!(all_updates(&sim, verbose()).await, cold);
    assert_eq!(all_updates(&sim, compact()).await, compact_cold);
    assert_eq!(all_updates(&sim, any.clone()).await, any_cold);
    assert_ne!(cold, compact_cold);
    drop(sim);

    let dir2 = tempfile::tempdir().unwrap();
    let sim = start(dir2.path(), &["--stream-cache-mib", "0"]);
    sim.ctl(&["traffic", "--deposits", "2", "--withdrawals", "1"]);
    let verbose = party_format(sim.treasury_party(), true);
    let a = all_updates(&sim, verbose.clone()).await;
    assert_eq!(a.len(), 3);
    assert_eq!(all_updates(&sim, verbose).await, a);
}
