//! A one-pass protobuf encoder for the `Transaction` responses GetUpdates
//! streams, written straight from the rendered transaction ([`Tx`], which
//! borrows its strings from the update) without building prost's tree.
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
//! kind of update and request shape the simulator renders, against prost's
//! encoding of [`Tx::to_prost`] (what GetUpdateByOffset/ById return).

use crate::events::{Ev, Qualified, R, Tx, V, ts};
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

    /// Single-byte values (keys, most lengths) inline; the rest out of line.
    #[inline(always)]
    fn varint(&mut self, v: u64) {
        if v < 0x80 && self.pos > 0 {
            self.pos -= 1;
            self.buf[self.pos] = v as u8;
        } else {
            self.varint_long(v);
        }
    }

    #[inline(never)]
    fn varint_long(&mut self, v: u64) {
        let n = prost::encoding::encoded_len_varint(v);
        if self.pos < n {
            self.grow(n);
        }
        self.pos -= n;
        let mut v = v;
        let out = &mut self.buf[self.pos..self.pos + n];
        for b in &mut out[..n - 1] {
            *b = (v as u8) | 0x80;
            v >>= 7;
        }
        out[n - 1] = v as u8;
    }

    #[inline(always)]
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

    fn strs(&mut self, tag: u32, v: &[&str]) {
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

    fn identifier(&mut self, tag: u32, q: Qualified) {
        let end = self.len();
        self.str(3, q.2.as_bytes());
        self.str(2, q.1.as_bytes());
        self.str(1, q.0.id.as_bytes());
        self.close(tag, end);
    }

    fn identifiers(&mut self, tag: u32, qs: &[Qualified]) {
        for q in qs.iter().rev() {
            self.identifier(tag, *q);
        }
    }

    fn timestamp(&mut self, tag: u32, us: i64) {
        let t = ts(us);
        let end = self.len();
        self.int32(2, t.nanos);
        self.int64(1, t.seconds);
        self.close(tag, end);
    }

    /// An empty message (present, no fields).
    fn empty(&mut self, tag: u32) {
        self.byte(0);
        self.key(tag, LEN);
    }

    fn value(&mut self, tag: u32, v: &V<'_>, verbose: bool) {
        let end = self.len();
        match v {
            V::Unit => self.empty(1),
            V::Timestamp(t) => {
                self.bytes(&t.to_le_bytes());
                self.key(5, FIXED64);
            }
            V::Numeric(s) => self.str_always(6, s.as_bytes()),
            V::Party(s) => self.str_always(7, s.as_bytes()),
            V::Text(s) => self.str_always(8, s.as_bytes()),
            V::ContractId(s) => self.str_always(9, s.as_bytes()),
            V::None => self.empty(10),
            V::List(items) => {
                let lend = self.len();
                for e in items.iter().rev() {
                    self.value(1, e, verbose);
                }
                self.close(11, lend);
            }
            V::TextMap(entries) => {
                let mend = self.len();
                for (k, val) in entries.iter().rev() {
                    let eend = self.len();
                    let vend = self.len();
                    self.str_always(8, val.as_bytes());
                    self.close(2, vend);
                    self.str(1, k.as_bytes());
                    self.close(1, eend);
                }
                self.close(12, mend);
            }
            V::Record(r) => self.record(14, r, verbose),
            V::Variant(id, constructor, inner) => {
                let vend = self.len();
                self.value(3, inner, verbose);
                self.str(2, constructor.as_bytes());
                if verbose {
                    self.identifier(1, *id);
                }
                self.close(15, vend);
            }
        }
        self.close(tag, end);
    }

    fn record(&mut self, tag: u32, r: &R<'_>, verbose: bool) {
        let end = self.len();
        for (label, v) in r.fields.iter().rev() {
            let fend = self.len();
            self.value(2, v, verbose);
            if verbose {
                self.str(1, label.as_bytes());
            }
            self.close(2, fend);
        }
        if verbose {
            self.identifier(1, r.id);
        }
        self.close(tag, end);
    }

    fn event(&mut self, tag: u32, e: &Ev<'_>, verbose: bool) {
        let end = self.len();
        let inner = self.len();
        match e {
            Ev::Created {
                offset,
                node_id,
                cid,
                template,
                args,
                blob,
                views,
                witnesses,
                signatories,
                created_at_us,
                acs_delta,
            } => {
                self.str(15, template.0.id.as_bytes());
                self.boolean(14, *acs_delta);
                self.str(13, template.0.name.as_bytes());
                self.timestamp(12, *created_at_us);
                self.strs(10, signatories);
                self.strs(9, witnesses);
                for (q, view) in views.iter().rev() {
                    let vend = self.len();
                    self.record(3, view, verbose);
                    self.empty(2); // status OK
                    self.identifier(1, *q);
                    self.close(8, vend);
                }
                self.str(7, blob);
                self.record(6, args, verbose);
                self.identifier(4, *template);
                self.str(3, cid.as_bytes());
                self.int32(2, *node_id);
                self.int64(1, *offset);
                self.close(1, inner);
            }
            Ev::Archived {
                offset,
                node_id,
                cid,
                template,
                witnesses,
                implemented,
            } => {
                self.identifiers(7, implemented);
                self.str(6, template.0.name.as_bytes());
                self.strs(5, witnesses);
                self.identifier(4, *template);
                self.str(3, cid.as_bytes());
                self.int32(2, *node_id);
                self.int64(1, *offset);
                self.close(2, inner);
            }
            Ev::Exercised {
                offset,
                node_id,
                cid,
                template,
                interface,
                choice,
                arg,
                acting,
                consuming,
                witnesses,
                last_descendant,
                result,
                implemented,
                acs_delta,
            } => {
                self.boolean(15, *acs_delta);
                self.identifiers(14, implemented);
                self.str(13, template.0.name.as_bytes());
                self.value(12, result, verbose);
                self.int32(11, *last_descendant);
                self.strs(10, witnesses);
                self.boolean(9, *consuming);
                self.strs(8, acting);
                self.value(7, arg, verbose);
                self.str(6, choice.as_bytes());
                if let Some(q) = interface {
                    self.identifier(5, *q);
                }
                self.identifier(4, *template);
                self.str(3, cid.as_bytes());
                self.int32(2, *node_id);
                self.int64(1, *offset);
                self.close(3, inner);
            }
        }
        self.close(tag, end);
    }

    fn transaction(&mut self, tag: u32, t: &Tx<'_>) {
        let end = self.len();
        if let Some(h) = &t.external_hash {
            self.str_always(10, h);
        }
        self.timestamp(9, t.record_time_us);
        self.str(7, t.synchronizer_id.as_bytes());
        self.int64(6, t.offset);
        for e in t.events.iter().rev() {
            self.event(5, e, t.verbose);
        }
        self.timestamp(4, t.record_time_us);
        self.str(1, t.update_id.as_bytes());
        self.close(tag, end);
    }
}

thread_local! {
    static SCRATCH: RefCell<RevBuf> = RefCell::new(RevBuf::new());
}

/// `GetUpdatesResponse { update: Some(Transaction(t)) }` encoded: the same
/// bytes as prost's `encode_to_vec` of it (with `t` as [`Tx::to_prost`]), in
/// one exactly sized allocation.
pub(crate) fn updates_response(t: &Tx<'_>) -> Vec<u8> {
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
        self as lapi, CumulativeFilter, EventFormat, Filters, Identifier, TransactionFormat,
        TransactionShape, cumulative_filter::IdentifierFilter,
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
                                f.render_tx(u, off, &info.synchronizer_id, &info.treasury_party)
                            else {
                                continue;
                            };
                            let fast = updates_response(&t);
                            let slow = EncodedUpdatesResponse::transaction(t.to_prost());
                            assert!(
                                fast == slow.0,
                                "update {i} ({}) under {tf:?}",
                                u.body().kind()
                            );
                            compared += 1;
                            bytes += fast.len();
                        }
                    }
                }
            }
        }
        assert!(compared > 2000, "{compared} responses compared");
        assert!(bytes > compared * 1000);
    }
}
