//! A one-pass protobuf encoder for the `Transaction` responses GetUpdates
//! streams.
//!
//! prost's `encode_to_vec` asks every nested message for its `encoded_len`
//! before writing it, and that length walks the whole subtree again, at every
//! level: quadratic in the depth of the Daml `Value` trees the simulator
//! renders. This encoder writes back to front instead (the last field first,
//! a message's body before its length and key), so each length is known when
//! it is written and every node is visited once.
//!
//! The bytes are exactly prost's for the same message (fields in tag order,
//! proto3 defaults skipped, `optional` and oneof fields written even when
//! default); `tests::matches_prost` checks this for every
//! kind of update and request shape the simulator renders. Types the
//! simulator never fills (`TraceContext`, `GenMap`, `Enum`, status details)
//! are delegated to prost's own encoder so they stay correct too.

use canton_proto::google::rpc;
use canton_proto::ledger::{
    ArchivedEvent, CreatedEvent, Event, ExercisedEvent, Identifier, InterfaceView, Record,
    Transaction, Value, event, text_map, value::Sum,
};
use prost::Message;
use std::cell::RefCell;

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;

/// A buffer filled from its end towards its start.
struct RevBuf {
    buf: Vec<u8>,
    /// Start of the written bytes (`buf[pos..]`).
    pos: usize,
}

impl RevBuf {
    fn new() -> Self {
        RevBuf {
            buf: vec![0; 16 * 1024],
            pos: 16 * 1024,
        }
    }

    fn reset(&mut self) {
        self.pos = self.buf.len();
    }

    /// Bytes written so far.
    #[inline]
    fn len(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[cold]
    fn grow(&mut self, need: usize) {
        let used = self.len();
        let size = (self.buf.len() * 2).max(used + need);
        let mut nb = vec![0; size];
        nb[size - used..].copy_from_slice(&self.buf[self.pos..]);
        self.buf = nb;
        self.pos = size - used;
    }

    #[inline]
    fn bytes(&mut self, b: &[u8]) {
        if self.pos < b.len() {
            self.grow(b.len());
        }
        self.pos -= b.len();
        self.buf[self.pos..self.pos + b.len()].copy_from_slice(b);
    }

    #[inline]
    fn byte(&mut self, b: u8) {
        if self.pos == 0 {
            self.grow(1);
        }
        self.pos -= 1;
        self.buf[self.pos] = b;
    }

    #[inline]
    fn varint(&mut self, v: u64) {
        if v < 0x80 {
            return self.byte(v as u8);
        }
        let n = prost::encoding::encoded_len_varint(v);
        if self.pos < n {
            self.grow(n);
        }
        self.pos -= n;
        let mut v = v;
        for b in &mut self.buf[self.pos..self.pos + n - 1] {
            *b = (v as u8) | 0x80;
            v >>= 7;
        }
        self.buf[self.pos + n - 1] = v as u8;
    }

    #[inline]
    fn key(&mut self, tag: u32, wire_type: u32) {
        self.varint(u64::from((tag << 3) | wire_type));
    }

    /// A length-delimited field whose body was written since `end` (= `len()` then).
    #[inline]
    fn close(&mut self, tag: u32, end: usize) {
        let l = self.len() - end;
        self.varint(l as u64);
        self.key(tag, LEN);
    }

    /// A string/bytes field, always written.
    #[inline]
    fn str_always(&mut self, tag: u32, s: &[u8]) {
        self.bytes(s);
        self.varint(s.len() as u64);
        self.key(tag, LEN);
    }

    /// A proto3 string/bytes field (skipped when empty).
    #[inline]
    fn str(&mut self, tag: u32, s: &[u8]) {
        if !s.is_empty() {
            self.str_always(tag, s);
        }
    }

    fn strs(&mut self, tag: u32, v: &[String]) {
        for s in v.iter().rev() {
            self.str_always(tag, s.as_bytes());
        }
    }

    /// A proto3 int64 field.
    #[inline]
    fn int64(&mut self, tag: u32, v: i64) {
        if v != 0 {
            self.varint(v as u64);
            self.key(tag, VARINT);
        }
    }

    /// A proto3 int32 field (negative values sign-extended, as prost does).
    #[inline]
    fn int32(&mut self, tag: u32, v: i32) {
        self.int64(tag, i64::from(v));
    }

    #[inline]
    fn boolean(&mut self, tag: u32, v: bool) {
        if v {
            self.byte(1);
            self.key(tag, VARINT);
        }
    }

    /// Any message, by prost (for the parts the simulator leaves empty).
    fn prost_msg(&mut self, tag: u32, m: &impl Message) {
        let end = self.len();
        self.bytes(&m.encode_to_vec());
        self.close(tag, end);
    }

    fn identifier(&mut self, tag: u32, id: &Identifier) {
        let end = self.len();
        self.str(3, id.entity_name.as_bytes());
        self.str(2, id.module_name.as_bytes());
        self.str(1, id.package_id.as_bytes());
        self.close(tag, end);
    }

    fn timestamp(&mut self, tag: u32, t: &prost_types::Timestamp) {
        let end = self.len();
        self.int32(2, t.nanos);
        self.int64(1, t.seconds);
        self.close(tag, end);
    }

    fn value(&mut self, tag: u32, v: &Value) {
        let end = self.len();
        if let Some(sum) = &v.sum {
            self.sum(sum);
        }
        self.close(tag, end);
    }

    fn sum(&mut self, sum: &Sum) {
        match sum {
            Sum::Unit(()) => {
                self.varint(0);
                self.key(1, LEN);
            }
            Sum::Bool(b) => {
                self.byte(u8::from(*b));
                self.key(2, VARINT);
            }
            Sum::Int64(i) => {
                self.varint(((i << 1) ^ (i >> 63)) as u64);
                self.key(3, VARINT);
            }
            Sum::Date(d) => {
                self.varint(i64::from(*d) as u64);
                self.key(4, VARINT);
            }
            Sum::Timestamp(t) => {
                self.bytes(&t.to_le_bytes());
                self.key(5, FIXED64);
            }
            Sum::Numeric(s) => self.str_always(6, s.as_bytes()),
            Sum::Party(s) => self.str_always(7, s.as_bytes()),
            Sum::Text(s) => self.str_always(8, s.as_bytes()),
            Sum::ContractId(s) => self.str_always(9, s.as_bytes()),
            Sum::Optional(o) => {
                let end = self.len();
                if let Some(inner) = &o.value {
                    self.value(1, inner);
                }
                self.close(10, end);
            }
            Sum::List(l) => {
                let end = self.len();
                for e in l.elements.iter().rev() {
                    self.value(1, e);
                }
                self.close(11, end);
            }
            Sum::TextMap(m) => {
                let end = self.len();
                for e in m.entries.iter().rev() {
                    self.text_map_entry(e);
                }
                self.close(12, end);
            }
            Sum::GenMap(m) => self.prost_msg(13, m),
            Sum::Record(r) => self.record(14, r),
            Sum::Variant(var) => {
                let end = self.len();
                if let Some(inner) = &var.value {
                    self.value(3, inner);
                }
                self.str(2, var.constructor.as_bytes());
                if let Some(id) = &var.variant_id {
                    self.identifier(1, id);
                }
                self.close(15, end);
            }
            Sum::Enum(e) => self.prost_msg(16, e),
        }
    }

    fn text_map_entry(&mut self, e: &text_map::Entry) {
        let end = self.len();
        if let Some(v) = &e.value {
            self.value(2, v);
        }
        self.str(1, e.key.as_bytes());
        self.close(1, end);
    }

    fn record(&mut self, tag: u32, r: &Record) {
        let end = self.len();
        for f in r.fields.iter().rev() {
            let fend = self.len();
            if let Some(v) = &f.value {
                self.value(2, v);
            }
            self.str(1, f.label.as_bytes());
            self.close(2, fend);
        }
        if let Some(id) = &r.record_id {
            self.identifier(1, id);
        }
        self.close(tag, end);
    }

    fn identifiers(&mut self, tag: u32, ids: &[Identifier]) {
        for id in ids.iter().rev() {
            self.identifier(tag, id);
        }
    }

    fn status(&mut self, tag: u32, s: &rpc::Status) {
        let end = self.len();
        for d in s.details.iter().rev() {
            self.prost_msg(3, d);
        }
        self.str(2, s.message.as_bytes());
        self.int32(1, s.code);
        self.close(tag, end);
    }

    fn interface_view(&mut self, tag: u32, iv: &InterfaceView) {
        let end = self.len();
        if let Some(r) = &iv.view_value {
            self.record(3, r);
        }
        if let Some(s) = &iv.view_status {
            self.status(2, s);
        }
        if let Some(id) = &iv.interface_id {
            self.identifier(1, id);
        }
        self.close(tag, end);
    }

    fn created(&mut self, tag: u32, e: &CreatedEvent) {
        let end = self.len();
        self.str(15, e.representative_package_id.as_bytes());
        self.boolean(14, e.acs_delta);
        self.str(13, e.package_name.as_bytes());
        if let Some(t) = &e.created_at {
            self.timestamp(12, t);
        }
        self.strs(11, &e.observers);
        self.strs(10, &e.signatories);
        self.strs(9, &e.witness_parties);
        for iv in e.interface_views.iter().rev() {
            self.interface_view(8, iv);
        }
        self.str(7, &e.created_event_blob);
        if let Some(r) = &e.create_arguments {
            self.record(6, r);
        }
        if let Some(k) = &e.contract_key {
            self.value(5, k);
        }
        if let Some(id) = &e.template_id {
            self.identifier(4, id);
        }
        self.str(3, e.contract_id.as_bytes());
        self.int32(2, e.node_id);
        self.int64(1, e.offset);
        self.close(tag, end);
    }

    fn archived(&mut self, tag: u32, e: &ArchivedEvent) {
        let end = self.len();
        self.identifiers(7, &e.implemented_interfaces);
        self.str(6, e.package_name.as_bytes());
        self.strs(5, &e.witness_parties);
        if let Some(id) = &e.template_id {
            self.identifier(4, id);
        }
        self.str(3, e.contract_id.as_bytes());
        self.int32(2, e.node_id);
        self.int64(1, e.offset);
        self.close(tag, end);
    }

    fn exercised(&mut self, tag: u32, e: &ExercisedEvent) {
        let end = self.len();
        self.boolean(15, e.acs_delta);
        self.identifiers(14, &e.implemented_interfaces);
        self.str(13, e.package_name.as_bytes());
        if let Some(v) = &e.exercise_result {
            self.value(12, v);
        }
        self.int32(11, e.last_descendant_node_id);
        self.strs(10, &e.witness_parties);
        self.boolean(9, e.consuming);
        self.strs(8, &e.acting_parties);
        if let Some(v) = &e.choice_argument {
            self.value(7, v);
        }
        self.str(6, e.choice.as_bytes());
        if let Some(id) = &e.interface_id {
            self.identifier(5, id);
        }
        if let Some(id) = &e.template_id {
            self.identifier(4, id);
        }
        self.str(3, e.contract_id.as_bytes());
        self.int32(2, e.node_id);
        self.int64(1, e.offset);
        self.close(tag, end);
    }

    fn event(&mut self, tag: u32, e: &Event) {
        let end = self.len();
        match &e.event {
            Some(event::Event::Created(c)) => self.created(1, c),
            Some(event::Event::Archived(a)) => self.archived(2, a),
            Some(event::Event::Exercised(x)) => self.exercised(3, x),
            None => {}
        }
        self.close(tag, end);
    }

    fn transaction(&mut self, tag: u32, t: &Transaction) {
        let end = self.len();
        if let Some(c) = t.paid_traffic_cost {
            self.varint(c as u64);
            self.key(11, VARINT);
        }
        if let Some(h) = &t.external_transaction_hash {
            self.str_always(10, h);
        }
        if let Some(rt) = &t.record_time {
            self.timestamp(9, rt);
        }
        if let Some(tc) = &t.trace_context {
            self.prost_msg(8, tc);
        }
        self.str(7, t.synchronizer_id.as_bytes());
        self.int64(6, t.offset);
        for e in t.events.iter().rev() {
            self.event(5, e);
        }
        if let Some(ea) = &t.effective_at {
            self.timestamp(4, ea);
        }
        self.str(3, t.workflow_id.as_bytes());
        self.str(2, t.command_id.as_bytes());
        self.str(1, t.update_id.as_bytes());
        self.close(tag, end);
    }
}

thread_local! {
    static SCRATCH: RefCell<RevBuf> = RefCell::new(RevBuf::new());
}

/// `GetUpdatesResponse { update: Some(Transaction(t)) }` encoded: the same
/// bytes as prost's `encode_to_vec`, in one exactly sized allocation.
pub fn updates_response_transaction(t: &Transaction) -> Vec<u8> {
    SCRATCH.with(|s| {
        let mut b = s.borrow_mut();
        b.reset();
        b.transaction(1, t);
        let out = b.buf[b.pos..].to_vec();
        // Do not keep a scratch buffer grown by one outsized response.
        if b.buf.len() > 1 << 20 {
            *b = RevBuf::new();
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{HOLDING_IFACE, SIM_HOLDING, TRANSFER_FACTORY_IFACE, TxFormat};
    use crate::ledger::encoded::EncodedUpdatesResponse;
    use crate::sim::{Sim, SimConfig};
    use crate::traffic::{self, BulkResult, WithdrawOutcome, WithdrawSpec};
    use canton_proto::ledger::{
        self as lapi, CumulativeFilter, EventFormat, Filters, TransactionFormat, TransactionShape,
        cumulative_filter::IdentifierFilter,
    };
    use std::collections::HashMap;

    fn id_of(q: (crate::events::Package, &str, &str), by_name: bool) -> Identifier {
        Identifier {
            package_id: if by_name {
                format!("#{}", q.0.name)
            } else {
                q.0.id.to_string()
            },
            module_name: q.1.to_string(),
            entity_name: q.2.to_string(),
        }
    }

    fn filter_sets() -> Vec<Vec<CumulativeFilter>> {
        let f = |x| CumulativeFilter {
            identifier_filter: Some(x),
        };
        let iface = |q, view, blob| {
            f(IdentifierFilter::InterfaceFilter(lapi::InterfaceFilter {
                interface_id: Some(id_of(q, view)),
                include_interface_view: view,
                include_created_event_blob: blob,
            }))
        };
        vec![
            vec![],
            vec![f(IdentifierFilter::WildcardFilter(lapi::WildcardFilter {
                include_created_event_blob: true,
            }))],
            vec![f(IdentifierFilter::TemplateFilter(lapi::TemplateFilter {
                template_id: Some(id_of(SIM_HOLDING, true)),
                include_created_event_blob: false,
            }))],
            vec![iface(HOLDING_IFACE, true, false)],
            vec![iface(HOLDING_IFACE, false, true)],
            vec![
                iface(HOLDING_IFACE, true, true),
                iface(TRANSFER_FACTORY_IFACE, false, false),
            ],
            vec![iface(TRANSFER_FACTORY_IFACE, true, false)],
        ]
    }

    /// The one-pass encoder's bytes equal prost's for every kind of update
    /// (deposits, withdrawals with one or several inputs, with and without
    /// change, noise) under every request shape the simulator serves.
    #[test]
    fn matches_prost() {
        let dir = tempfile::tempdir().unwrap();
        let sim = Sim::open(SimConfig::new(dir.path())).unwrap();
        let info = sim.info.clone();
        let updates = sim.with_state(|st| {
            let mut progress = BulkResult::default();
            assert!(traffic::bulk(st, 30, 15, 20, true, &mut progress, u64::MAX).unwrap());
            let instrument = traffic::default_instrument(st);
            for (i, amount) in [250, 100, 7].into_iter().enumerate() {
                let out = traffic::withdraw(
                    st,
                    WithdrawSpec {
                        withdrawal_id: format!("multi-{i}"),
                        amount: amount * traffic::BULK_WITHDRAWAL,
                        receiver: crate::ids::remote_party("someone"),
                        instrument: instrument.clone(),
                        trec_tgt_us: st.synchronizer_time_us() + 3_600_000_000,
                    },
                )
                .unwrap();
                assert!(matches!(out, WithdrawOutcome::Committed(_)));
            }
            st.sync.updates().to_vec()
        });
        let kinds: std::collections::BTreeSet<&str> =
            updates.iter().map(|u| u.body().kind()).collect();
        assert_eq!(kinds.len(), 3, "{kinds:?}");

        let customer = crate::ids::remote_party("customer-3");
        let parties: Vec<Option<String>> = vec![
            None,
            Some(info.treasury_party.clone()),
            Some(info.dso_party.clone()),
            Some(crate::sim::noise_parties()[0].clone()),
            Some(customer),
        ];
        let mut compared = 0;
        let mut bytes = 0;
        for shape in [TransactionShape::AcsDelta, TransactionShape::LedgerEffects] {
            for verbose in [true, false] {
                for p in &parties {
                    for filters in filter_sets() {
                        let mut ef = EventFormat {
                            filters_by_party: HashMap::new(),
                            filters_for_any_party: None,
                            verbose,
                        };
                        let fs = Filters {
                            cumulative: filters.clone(),
                        };
                        match p {
                            Some(p) => {
                                ef.filters_by_party.insert(p.clone(), fs);
                            }
                            None => ef.filters_for_any_party = Some(fs),
                        }
                        let tf = TransactionFormat {
                            event_format: Some(ef),
                            transaction_shape: shape as i32,
                        };
                        let f = TxFormat::new(&tf, &info.hosted_parties).unwrap();
                        for (i, u) in updates.iter().enumerate() {
                            let off = 1000 + i as i64 * 3;
                            let Some(t) =
                                f.render(u, off, &info.synchronizer_id, &info.treasury_party)
                            else {
                                continue;
                            };
                            let fast = EncodedUpdatesResponse::transaction_ref(&t);
                            let slow = EncodedUpdatesResponse::transaction_by_prost(t);
                            assert_eq!(fast, slow, "update {i} ({}) under {tf:?}", u.body().kind());
                            compared += 1;
                            bytes += fast.0.len();
                        }
                    }
                }
            }
        }
        assert!(compared > 2000, "{compared} responses compared");
        assert!(bytes > compared * 1000);
    }

    /// Values the simulator never renders (every `Sum` variant, negative
    /// numbers, empty strings in oneofs and repeated fields, a trace context)
    /// still encode as prost does.
    #[test]
    fn matches_prost_on_unusual_values() {
        use canton_proto::ledger::{RecordField, TraceContext};
        let val = |s| Value { sum: Some(s) };
        let mut elements = vec![
            val(Sum::Unit(())),
            val(Sum::Bool(false)),
            val(Sum::Bool(true)),
            val(Sum::Int64(-5)),
            val(Sum::Int64(i64::MIN)),
            val(Sum::Date(-3)),
            val(Sum::Timestamp(-1)),
            val(Sum::Numeric(String::new())),
            val(Sum::Text("x".repeat(300))),
            val(Sum::Optional(Box::new(lapi::Optional { value: None }))),
            val(Sum::Optional(Box::new(lapi::Optional {
                value: Some(Box::new(val(Sum::Party(String::new())))),
            }))),
            val(Sum::GenMap(lapi::GenMap {
                entries: vec![lapi::gen_map::Entry {
                    key: Some(val(Sum::Int64(1))),
                    value: None,
                }],
            })),
            val(Sum::Enum(lapi::Enum {
                enum_id: None,
                constructor: "Red".into(),
            })),
            val(Sum::Variant(Box::new(lapi::Variant {
                variant_id: None,
                constructor: String::new(),
                value: None,
            }))),
            Value { sum: None },
        ];
        for _ in 0..6 {
            elements = vec![val(Sum::List(lapi::List {
                elements: elements.clone(),
            }))];
        }
        let rec = Record {
            record_id: Some(Identifier::default()),
            fields: vec![
                RecordField {
                    label: String::new(),
                    value: None,
                },
                RecordField {
                    label: "l".into(),
                    value: elements.pop(),
                },
            ],
        };
        let t = Transaction {
            update_id: String::new(),
            command_id: "c".into(),
            workflow_id: "w".into(),
            effective_at: Some(prost_types::Timestamp {
                seconds: -7,
                nanos: -1,
            }),
            events: vec![
                Event { event: None },
                Event {
                    event: Some(event::Event::Created(CreatedEvent {
                        offset: -1,
                        node_id: -2,
                        contract_key: Some(Value { sum: None }),
                        create_arguments: Some(rec),
                        interface_views: vec![InterfaceView {
                            interface_id: None,
                            view_status: Some(rpc::Status {
                                code: -1,
                                message: "m".into(),
                                details: vec![prost_types::Any {
                                    type_url: "t".into(),
                                    value: vec![1, 2],
                                }],
                            }),
                            view_value: Some(Record::default()),
                        }],
                        witness_parties: vec![String::new(), "w".into()],
                        ..Default::default()
                    })),
                },
                Event {
                    event: Some(event::Event::Exercised(ExercisedEvent::default())),
                },
                Event {
                    event: Some(event::Event::Archived(ArchivedEvent {
                        implemented_interfaces: vec![Identifier::default()],
                        ..Default::default()
                    })),
                },
            ],
            offset: i64::MAX,
            synchronizer_id: String::new(),
            trace_context: Some(TraceContext {
                traceparent: Some(String::new()),
                tracestate: None,
            }),
            record_time: Some(prost_types::Timestamp::default()),
            external_transaction_hash: Some(vec![]),
            paid_traffic_cost: Some(-3),
        };
        let fast = EncodedUpdatesResponse::transaction_ref(&t);
        assert_eq!(
            fast,
            EncodedUpdatesResponse::transaction_by_prost(t.clone())
        );
        let empty = Transaction::default();
        assert_eq!(
            EncodedUpdatesResponse::transaction_ref(&empty),
            EncodedUpdatesResponse::transaction_by_prost(empty)
        );
        // Larger than the scratch buffer: it grows.
        let mut big = t;
        big.update_id = "u".repeat(40_000);
        assert_eq!(
            EncodedUpdatesResponse::transaction_ref(&big),
            EncodedUpdatesResponse::transaction_by_prost(big)
        );
    }
}
