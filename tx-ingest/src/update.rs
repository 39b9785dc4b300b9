//! What the stream hands the writer: a parsed transaction, or a position-only
//! update (an offset checkpoint, or an update kind the ingester does not
//! book), decoded from tx-ingest's view of `GetUpdatesResponse`
//! ([`crate::view`]).

use crate::parse::{ParseError, ParsedTransaction, parse_transaction};
use crate::view::{GetUpdatesResponse, get_updates_response::Update};
use canton_dr_cli::time::from_seconds_nanos;
use canton_dr_cli::{Error, Result};
use chrono::{DateTime, Utc};
use integration_db::checkpoint::Position;
use integration_db::updates::UpdateRef;

/// A transaction visible to the treasury, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxItem {
    /// Update id, offset, record time, synchronizer.
    pub update: UpdateRef,
    /// Its effects on the treasury.
    pub parsed: ParsedTransaction,
}

/// An update that only moves the position: an offset checkpoint (record
/// times per synchronizer), or a reassignment / topology transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionItem {
    /// Offset.
    pub offset: i64,
    /// Latest record time per synchronizer (may be empty).
    pub synchronizer_times: Vec<(String, DateTime<Utc>)>,
}

impl PositionItem {
    /// The position this moves `current` to: the record time of the
    /// synchronizer `current` is on if listed (record times are only ordered
    /// per synchronizer), else the latest one listed, else `current`'s.
    /// `None` when nothing is known about any synchronizer yet.
    pub fn resolve(&self, current: Option<&Position>) -> Option<Position> {
        let on = |sync: &str| {
            self.synchronizer_times
                .iter()
                .find(|(s, _)| s == sync)
                .map(|(s, t)| (s.clone(), *t))
        };
        let latest = || {
            self.synchronizer_times
                .iter()
                .max_by_key(|(_, t)| *t)
                .map(|(s, t)| (s.clone(), *t))
        };
        let (synchronizer_id, record_time) = match current {
            Some(cur) => on(&cur.synchronizer_id)
                .or_else(latest)
                .unwrap_or_else(|| (cur.synchronizer_id.clone(), cur.record_time)),
            None => latest()?,
        };
        Some(Position {
            offset: self.offset,
            record_time,
            synchronizer_id,
        })
    }
}

/// One streamed update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A transaction.
    Transaction(TxItem),
    /// A position-only update.
    Position(PositionItem),
}

impl Item {
    /// The update's offset.
    pub fn offset(&self) -> i64 {
        match self {
            Item::Transaction(t) => t.update.offset,
            Item::Position(p) => p.offset,
        }
    }
}

fn timestamp(t: Option<&prost_types::Timestamp>, what: &str, offset: i64) -> Result<DateTime<Utc>> {
    let t = t.ok_or_else(|| {
        Error::usage(format!(
            "the node sent a {what} at offset {offset} without a record time"
        ))
    })?;
    from_seconds_nanos(t.seconds, t.nanos)
        .map_err(|e| e.context(format!("{what} at offset {offset}")))
}

/// Decodes and parses one `GetUpdatesResponse` for `treasury`. `Ok(None)` for
/// an empty response. A transaction the parser cannot read is an error naming
/// its update id and offset: booking part of it could lose a withdrawal.
pub fn decode(resp: GetUpdatesResponse, treasury: &str) -> Result<Option<Item>> {
    let Some(update) = resp.update else {
        return Ok(None);
    };
    Ok(Some(match update {
        Update::Transaction(tx) => {
            let record_time = timestamp(tx.record_time.as_ref(), "transaction", tx.offset)?;
            let parsed = parse_transaction(&tx, treasury).map_err(|e: ParseError| {
                Error::usage(format!(
                    "cannot read transaction {} at offset {}: {e}",
                    tx.update_id, tx.offset
                ))
                .with_hint(
                    "the transaction does not have the token-standard shape this ingester knows; \
                     nothing of it was booked: fix the parser or the data, then restart",
                )
            })?;
            Item::Transaction(TxItem {
                update: UpdateRef {
                    update_id: tx.update_id,
                    offset: tx.offset,
                    record_time,
                    synchronizer_id: tx.synchronizer_id,
                },
                parsed,
            })
        }
        Update::OffsetCheckpoint(cp) => {
            let mut times = Vec::with_capacity(cp.synchronizer_times.len());
            for st in cp.synchronizer_times {
                let t = timestamp(st.record_time.as_ref(), "offset checkpoint", cp.offset)?;
                times.push((st.synchronizer_id, t));
            }
            Item::Position(PositionItem {
                offset: cp.offset,
                synchronizer_times: times,
            })
        }
        Update::Reassignment(r) => {
            let t = timestamp(r.record_time.as_ref(), "reassignment", r.offset)?;
            Item::Position(PositionItem {
                offset: r.offset,
                synchronizer_times: vec![(r.synchronizer_id, t)],
            })
        }
        Update::TopologyTransaction(t) => {
            let rt = timestamp(t.record_time.as_ref(), "topology transaction", t.offset)?;
            Item::Position(PositionItem {
                offset: t.offset,
                synchronizer_times: vec![(t.synchronizer_id, rt)],
            })
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    // Responses are built as Canton's messages, then encoded and decoded into
    // tx-ingest's view, as the stream does.
    use canton_proto::ledger::{
        GetUpdatesResponse, OffsetCheckpoint, SynchronizerTime, Transaction,
        get_updates_response::Update,
    };
    use prost::Message as _;

    /// Canton's `resp` as tx-ingest decodes it from the wire.
    fn view(resp: &GetUpdatesResponse) -> crate::view::GetUpdatesResponse {
        crate::view::GetUpdatesResponse::decode(resp.encode_to_vec().as_slice())
            .expect("a Canton response decodes as tx-ingest's view")
    }

    /// [`super::decode`] of Canton's `resp`.
    fn decode(resp: GetUpdatesResponse, treasury: &str) -> Result<Option<Item>> {
        super::decode(view(&resp), treasury)
    }

    fn t(s: &str) -> DateTime<Utc> {
        canton_dr_cli::time::parse_record_time(s, "t").unwrap()
    }

    fn ts(s: &str) -> prost_types::Timestamp {
        let d = t(s);
        prost_types::Timestamp {
            seconds: d.timestamp(),
            nanos: d.timestamp_subsec_nanos() as i32,
        }
    }

    #[test]
    fn checkpoint_keeps_to_the_current_synchronizer() {
        let item = PositionItem {
            offset: 9,
            synchronizer_times: vec![
                ("b::1".into(), t("2025-01-01T00:00:09Z")),
                ("a::1".into(), t("2025-01-01T00:00:05Z")),
            ],
        };
        let cur = Position {
            offset: 3,
            record_time: t("2025-01-01T00:00:01Z"),
            synchronizer_id: "a::1".into(),
        };
        let p = item.resolve(Some(&cur)).unwrap();
        assert_eq!(
            (p.offset, p.synchronizer_id.as_str(), p.record_time),
            (9, "a::1", t("2025-01-01T00:00:05Z"))
        );
        // Nothing known yet: the latest record time listed.
        let p = item.resolve(None).unwrap();
        assert_eq!(p.synchronizer_id, "b::1");
        // No times listed: only the offset moves.
        let empty = PositionItem {
            offset: 10,
            synchronizer_times: vec![],
        };
        let p = empty.resolve(Some(&cur)).unwrap();
        assert_eq!((p.offset, p.record_time), (10, cur.record_time));
        assert_eq!(empty.resolve(None), None);
    }

    #[test]
    fn decodes_transactions_and_checkpoints() {
        let resp = GetUpdatesResponse {
            update: Some(Update::Transaction(Transaction {
                update_id: "u1".into(),
                offset: 4,
                synchronizer_id: "s::1".into(),
                record_time: Some(ts("2025-03-04T05:06:07.123456Z")),
                ..Default::default()
            })),
        };
        let Some(Item::Transaction(tx)) = decode(resp, "tr::1").unwrap() else {
            panic!("not a transaction")
        };
        assert_eq!(tx.update.update_id, "u1");
        assert_eq!(tx.update.record_time, t("2025-03-04T05:06:07.123456Z"));
        assert!(tx.parsed.transfers.is_empty());

        let resp = GetUpdatesResponse {
            update: Some(Update::OffsetCheckpoint(OffsetCheckpoint {
                offset: 8,
                synchronizer_times: vec![SynchronizerTime {
                    synchronizer_id: "s::1".into(),
                    record_time: Some(ts("2025-03-04T05:06:08Z")),
                }],
            })),
        };
        let item = decode(resp, "tr::1").unwrap().unwrap();
        assert_eq!(item.offset(), 8);

        let resp = GetUpdatesResponse {
            update: Some(Update::Transaction(Transaction {
                update_id: "u2".into(),
                offset: 5,
                ..Default::default()
            })),
        };
        let e = decode(resp, "tr::1").unwrap_err();
        assert_eq!(
            e.message(),
            "the node sent a transaction at offset 5 without a record time"
        );
        assert_eq!(
            decode(GetUpdatesResponse { update: None }, "x").unwrap(),
            None
        );
    }

    /// Canton's messages with EVERY field set (no `..Default::default()`:
    /// a field added to Canton's protos fails to compile here), so that the
    /// skipped fields are on the wire between the kept ones.
    mod full {
        use canton_proto::google::rpc::Status;
        use canton_proto::ledger::{self as c, value::Sum};

        fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
            Some(prost_types::Timestamp {
                seconds,
                nanos: 123_456_000,
            })
        }
        pub fn ident(m: &str, e: &str) -> Option<c::Identifier> {
            Some(c::Identifier {
                package_id: "55ba4deb".into(),
                module_name: m.into(),
                entity_name: e.into(),
            })
        }
        pub fn text(t: &str) -> c::Value {
            c::Value {
                sum: Some(Sum::Text(t.into())),
            }
        }
        pub fn record(fields: &[(&str, &str)]) -> c::Record {
            c::Record {
                record_id: ident("M", "R"),
                fields: fields
                    .iter()
                    .map(|(l, v)| c::RecordField {
                        label: (*l).into(),
                        value: Some(text(v)),
                    })
                    .collect(),
            }
        }
        pub fn rvalue(fields: &[(&str, &str)]) -> c::Value {
            c::Value {
                sum: Some(Sum::Record(record(fields))),
            }
        }
        fn trace() -> Option<c::TraceContext> {
            Some(c::TraceContext {
                traceparent: Some("00-trace-01".into()),
                tracestate: Some("k=v".into()),
            })
        }
        fn parties(p: &str) -> Vec<String> {
            vec![format!("{p}-1::1220"), format!("{p}-2::1220")]
        }

        pub fn created(node_id: i32) -> c::CreatedEvent {
            c::CreatedEvent {
                offset: 41,
                node_id,
                contract_id: format!("00created{node_id}"),
                template_id: ident("Splice.Amulet", "Amulet"),
                contract_key: Some(text("key")),
                create_arguments: Some(record(&[("dso", "dso::1220"), ("amount", "1.0")])),
                created_event_blob: vec![1, 2, 3],
                interface_views: vec![
                    c::InterfaceView {
                        interface_id: ident("Splice.Api.Token.HoldingV1", "Holding"),
                        view_status: Some(Status {
                            code: 0,
                            message: "ok".into(),
                            details: vec![prost_types::Any {
                                type_url: "t".into(),
                                value: vec![9],
                            }],
                        }),
                        view_value: Some(c::Record {
                            record_id: ident("Splice.Api.Token.HoldingV1", "HoldingView"),
                            fields: vec![c::RecordField {
                                label: "owner".into(),
                                value: Some(c::Value {
                                    sum: Some(Sum::Party("alice::1220".into())),
                                }),
                            }],
                        }),
                    },
                    c::InterfaceView {
                        interface_id: ident("Other", "View"),
                        view_status: Some(Status {
                            code: 3,
                            message: "failed".into(),
                            details: vec![],
                        }),
                        view_value: None,
                    },
                ],
                witness_parties: parties("witness"),
                signatories: parties("signatory"),
                observers: parties("observer"),
                created_at: ts(1_700_000_001),
                package_name: "splice-amulet".into(),
                acs_delta: true,
                representative_package_id: "rep".into(),
            }
        }

        pub fn exercised(node_id: i32) -> c::ExercisedEvent {
            c::ExercisedEvent {
                offset: 41,
                node_id,
                contract_id: format!("00exercised{node_id}"),
                template_id: ident("Splice.AmuletRules", "AmuletRules"),
                interface_id: ident("Splice.Api.Token.TransferInstructionV1", "TransferFactory"),
                choice: "AmuletRules_Transfer".into(),
                choice_argument: Some(rvalue(&[("expectedAdmin", "dso::1220")])),
                acting_parties: parties("actor"),
                consuming: true,
                witness_parties: parties("witness"),
                last_descendant_node_id: node_id + 3,
                exercise_result: Some(rvalue(&[("output", "done")])),
                package_name: "splice-api-token".into(),
                implemented_interfaces: vec![ident("A", "B").unwrap(), ident("C", "D").unwrap()],
                acs_delta: true,
            }
        }

        pub fn archived(node_id: i32) -> c::ArchivedEvent {
            c::ArchivedEvent {
                offset: 41,
                node_id,
                contract_id: format!("00archived{node_id}"),
                template_id: ident("Splice.Amulet", "Amulet"),
                witness_parties: parties("witness"),
                package_name: "splice-amulet".into(),
                implemented_interfaces: vec![ident("A", "B").unwrap()],
            }
        }

        pub fn transaction() -> c::Transaction {
            use c::event::Event as E;
            c::Transaction {
                update_id: "1220update".into(),
                command_id: "command".into(),
                workflow_id: "workflow".into(),
                effective_at: ts(1_700_000_000),
                events: vec![
                    c::Event {
                        event: Some(E::Exercised(exercised(0))),
                    },
                    c::Event {
                        event: Some(E::Created(created(1))),
                    },
                    c::Event {
                        event: Some(E::Archived(archived(2))),
                    },
                    c::Event {
                        event: Some(E::Created(created(3))),
                    },
                    c::Event { event: None },
                ],
                offset: 41,
                synchronizer_id: "global::1220sync".into(),
                trace_context: trace(),
                record_time: ts(1_700_000_002),
                external_transaction_hash: Some(vec![7; 32]),
                paid_traffic_cost: Some(1234),
            }
        }

        pub fn reassignment() -> c::Reassignment {
            use c::reassignment_event::Event as E;
            c::Reassignment {
                update_id: "1220reassign".into(),
                command_id: "command".into(),
                workflow_id: "workflow".into(),
                offset: 42,
                events: vec![
                    c::ReassignmentEvent {
                        event: Some(E::Unassigned(c::UnassignedEvent {
                            reassignment_id: "r".into(),
                            contract_id: "00c".into(),
                            template_id: ident("M", "T"),
                            source: "s1::1220".into(),
                            target: "s2::1220".into(),
                            submitter: "sub::1220".into(),
                            reassignment_counter: 2,
                            assignment_exclusivity: ts(5),
                            witness_parties: parties("witness"),
                            package_name: "p".into(),
                            offset: 42,
                            node_id: 0,
                        })),
                    },
                    c::ReassignmentEvent {
                        event: Some(E::Assigned(c::AssignedEvent {
                            source: "s1::1220".into(),
                            target: "s2::1220".into(),
                            reassignment_id: "r".into(),
                            submitter: "sub::1220".into(),
                            reassignment_counter: 3,
                            created_event: Some(created(1)),
                        })),
                    },
                ],
                trace_context: trace(),
                record_time: ts(1_700_000_003),
                synchronizer_id: "s2::1220".into(),
                paid_traffic_cost: Some(5),
            }
        }

        pub fn topology() -> c::TopologyTransaction {
            use c::topology_event::Event as E;
            c::TopologyTransaction {
                update_id: "1220topology".into(),
                offset: 43,
                synchronizer_id: "global::1220sync".into(),
                record_time: ts(1_700_000_004),
                events: vec![c::TopologyEvent {
                    event: Some(E::ParticipantAuthorizationAdded(
                        c::ParticipantAuthorizationAdded {
                            party_id: "treasury::1220".into(),
                            participant_id: "PAR::p::1220".into(),
                            participant_permission: c::ParticipantPermission::Submission as i32,
                        },
                    )),
                }],
                trace_context: trace(),
            }
        }

        pub fn checkpoint() -> c::OffsetCheckpoint {
            c::OffsetCheckpoint {
                offset: 44,
                synchronizer_times: vec![
                    c::SynchronizerTime {
                        synchronizer_id: "a::1220".into(),
                        record_time: ts(1_700_000_005),
                    },
                    c::SynchronizerTime {
                        synchronizer_id: "b::1220".into(),
                        record_time: ts(1_700_000_006),
                    },
                ],
            }
        }
    }

    /// The fields tx-ingest reads of Canton's `resp`, copied over by name.
    fn kept(resp: &GetUpdatesResponse) -> crate::view::GetUpdatesResponse {
        use crate::view as v;
        use canton_proto::ledger::event::Event as CE;
        use v::get_updates_response::Update as V;
        let event = |e: &canton_proto::ledger::Event| v::Event {
            event: e.event.as_ref().map(|e| match e {
                CE::Created(c) => v::event::Event::Created(v::CreatedEvent {
                    node_id: c.node_id,
                    contract_id: c.contract_id.clone(),
                    interface_views: c
                        .interface_views
                        .iter()
                        .map(|i| v::InterfaceView {
                            interface_id: i.interface_id.clone(),
                            view_value: i.view_value.clone(),
                        })
                        .collect(),
                }),
                CE::Archived(a) => v::event::Event::Archived(v::ArchivedEvent {
                    node_id: a.node_id,
                    contract_id: a.contract_id.clone(),
                }),
                CE::Exercised(x) => v::event::Event::Exercised(v::ExercisedEvent {
                    node_id: x.node_id,
                    contract_id: x.contract_id.clone(),
                    interface_id: x.interface_id.clone(),
                    choice: x.choice.clone(),
                    choice_argument: x.choice_argument.clone(),
                    acting_parties: x.acting_parties.clone(),
                    consuming: x.consuming,
                    last_descendant_node_id: x.last_descendant_node_id,
                    exercise_result: x.exercise_result.clone(),
                }),
            }),
        };
        v::GetUpdatesResponse {
            update: resp.update.as_ref().map(|u| match u {
                Update::Transaction(t) => V::Transaction(v::Transaction {
                    update_id: t.update_id.clone(),
                    events: t.events.iter().map(event).collect(),
                    offset: t.offset,
                    synchronizer_id: t.synchronizer_id.clone(),
                    record_time: t.record_time,
                }),
                Update::Reassignment(r) => V::Reassignment(v::Reassignment {
                    offset: r.offset,
                    record_time: r.record_time,
                    synchronizer_id: r.synchronizer_id.clone(),
                }),
                Update::OffsetCheckpoint(cp) => V::OffsetCheckpoint(v::OffsetCheckpoint {
                    offset: cp.offset,
                    synchronizer_times: cp
                        .synchronizer_times
                        .iter()
                        .map(|s| v::SynchronizerTime {
                            synchronizer_id: s.synchronizer_id.clone(),
                            record_time: s.record_time,
                        })
                        .collect(),
                }),
                Update::TopologyTransaction(t) => V::TopologyTransaction(v::TopologyTransaction {
                    offset: t.offset,
                    synchronizer_id: t.synchronizer_id.clone(),
                    record_time: t.record_time,
                }),
            }),
        }
    }

    #[test]
    fn the_view_decodes_cantons_fields_it_keeps_identically() {
        let responses = [
            Update::Transaction(full::transaction()),
            Update::Reassignment(full::reassignment()),
            Update::TopologyTransaction(full::topology()),
            Update::OffsetCheckpoint(full::checkpoint()),
        ]
        .map(|u| GetUpdatesResponse { update: Some(u) });
        for resp in &responses {
            let bytes = resp.encode_to_vec();
            let decoded = crate::view::GetUpdatesResponse::decode(bytes.as_slice()).unwrap();
            assert_eq!(decoded, kept(resp));
            // The view drops only what it skips: less to re-encode, and the
            // kept fields re-encode to a Canton message with just them.
            let again = GetUpdatesResponse::decode(decoded.encode_to_vec().as_slice()).unwrap();
            assert_eq!(kept(&again), decoded);
        }
        // The full transaction really carries the skipped fields, and the
        // view keeps every event (none dropped as unknown).
        let Some(crate::view::get_updates_response::Update::Transaction(t)) =
            view(&responses[0]).update
        else {
            panic!("not a transaction")
        };
        assert_eq!(t.events.len(), 5);
        assert!(responses[0].encoded_len() > 2 * t.encode_to_vec().len());
        // Decoded and parsed like the stream does, positions included.
        let items: Vec<Item> = responses
            .iter()
            .map(|r| super::decode(view(r), "treasury::1220").unwrap().unwrap())
            .collect();
        assert_eq!(
            items.iter().map(Item::offset).collect::<Vec<_>>(),
            [41, 42, 43, 44]
        );
        let Item::Transaction(tx) = &items[0] else {
            panic!("not a transaction")
        };
        assert_eq!(tx.update.update_id, "1220update");
        assert_eq!(tx.update.synchronizer_id, "global::1220sync");
        assert_eq!(tx.parsed.consumed, ["00exercised0", "00archived2"]);
        let Item::Position(p) = &items[1] else {
            panic!("not a position")
        };
        assert_eq!(p.synchronizer_times[0].0, "s2::1220");
    }
}
