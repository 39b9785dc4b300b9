//! How a sequenced update looks on the Ledger API: token-standard transfers
//! as `Transaction`s whose events carry real `Value`s (record field order of
//! the Splice token-standard 1.0.0 types, labels and record ids only when
//! `verbose`), filtered for the requesting parties and shaped as ACS_DELTA
//! (created + archived) or LEDGER_EFFECTS (created + exercised).

use crate::ids;
use crate::state::synchronizer::{HoldingRef, Instrument, SequencedUpdate, UpdateBody};
use canton_proto::google::rpc;
use canton_proto::ledger::{
    self as lapi, ArchivedEvent, CreatedEvent, Event, ExercisedEvent, Identifier, InterfaceView,
    Record, RecordField, Transaction, TransactionShape, Value, event, value::Sum,
};
use std::collections::{BTreeMap, BTreeSet};

/// A Daml package the simulated events refer to.
#[derive(Debug, Clone, Copy)]
pub struct Package {
    /// Package id (hash form, as events show it).
    pub id: &'static str,
    /// Package name (the `#name` form of requests).
    pub name: &'static str,
}

/// `splice-api-token-holding-v1` 1.0.0.
pub const HOLDING_V1: Package = Package {
    id: "718a0f77e505a8de22f188bd4c87fe74101274e9d4cb1bfac7d09aec7158d35b",
    name: "splice-api-token-holding-v1",
};
/// `splice-api-token-transfer-instruction-v1` 1.0.0.
pub const TRANSFER_INSTRUCTION_V1: Package = Package {
    id: "55ba4deb0ad4662c4168b39859738a0e91388d252286480c7331b3f71a517281",
    name: "splice-api-token-transfer-instruction-v1",
};
/// `splice-api-token-metadata-v1` 1.0.0.
pub const METADATA_V1: Package = Package {
    id: "4ded6b668cb3b64f7a88a30874cd41c75829f5e064b3fbbadf41ec7e8363354f",
    name: "splice-api-token-metadata-v1",
};
/// The simulator's own token implementation (templates implementing the interfaces).
pub const SIM_TOKEN: Package = Package {
    id: "242d52da4f757d4bdf01e18d6aaf14875ce7a46bd80b5d77645fc686f45c1cf4",
    name: "canton-sim-token",
};

const HOLDING_MOD: &str = "Splice.Api.Token.HoldingV1";
const TI_MOD: &str = "Splice.Api.Token.TransferInstructionV1";
const META_MOD: &str = "Splice.Api.Token.MetadataV1";
const SIM_MOD: &str = "Canton.Sim.Token";

/// Metadata key of the transfer memo.
pub const REASON_KEY: &str = "splice.lfdecentralizedtrust.org/reason";
/// Metadata key of the transaction kind.
pub const TX_KIND_KEY: &str = "splice.lfdecentralizedtrust.org/tx-kind";
/// Metadata key of the sender.
pub const SENDER_KEY: &str = "splice.lfdecentralizedtrust.org/sender";

/// `(package, module, entity)`.
type Qualified = (Package, &'static str, &'static str);

/// The Holding interface.
pub const HOLDING_IFACE: Qualified = (HOLDING_V1, HOLDING_MOD, "Holding");
/// The TransferFactory interface.
pub const TRANSFER_FACTORY_IFACE: Qualified = (TRANSFER_INSTRUCTION_V1, TI_MOD, "TransferFactory");
/// The simulator's holding template (implements Holding).
pub const SIM_HOLDING: Qualified = (SIM_TOKEN, SIM_MOD, "SimHolding");
/// The simulator's transfer factory template (implements TransferFactory).
pub const SIM_FACTORY: Qualified = (SIM_TOKEN, SIM_MOD, "SimTransferFactory");

fn ident(q: Qualified) -> Identifier {
    Identifier {
        package_id: q.0.id.to_string(),
        module_name: q.1.to_string(),
        entity_name: q.2.to_string(),
    }
}

/// Whether a requested identifier (package id or `#package-name`) names `q`.
fn matches(id: &Identifier, q: Qualified) -> bool {
    let pkg_ok = id.package_id == q.0.id
        || id
            .package_id
            .strip_prefix('#')
            .is_some_and(|n| n == q.0.name);
    pkg_ok && id.module_name == q.1 && id.entity_name == q.2
}

/// Builds Values, with record ids and labels only when verbose.
#[derive(Debug, Clone, Copy)]
struct Vb {
    verbose: bool,
}

fn v(sum: Sum) -> Value {
    Value { sum: Some(sum) }
}

impl Vb {
    fn rec<const N: usize>(&self, id: Qualified, fields: [(&str, Value); N]) -> Record {
        let mut out = Vec::with_capacity(N);
        for (label, value) in fields {
            out.push(RecordField {
                label: if self.verbose {
                    label.to_string()
                } else {
                    String::new()
                },
                value: Some(value),
            });
        }
        Record {
            record_id: self.verbose.then(|| ident(id)),
            fields: out,
        }
    }
    fn record<const N: usize>(&self, id: Qualified, fields: [(&str, Value); N]) -> Value {
        v(Sum::Record(self.rec(id, fields)))
    }
    fn metadata(&self, entries: &[(&str, &str)]) -> Value {
        self.record(
            (METADATA_V1, META_MOD, "Metadata"),
            [("values", text_map(entries))],
        )
    }
    fn instrument(&self, i: &Instrument) -> Value {
        self.record(
            (HOLDING_V1, HOLDING_MOD, "InstrumentId"),
            [("admin", party(&i.admin)), ("id", text(&i.id))],
        )
    }
}

fn party(p: &str) -> Value {
    v(Sum::Party(p.to_string()))
}
fn text(t: &str) -> Value {
    v(Sum::Text(t.to_string()))
}
fn numeric(n: &str) -> Value {
    v(Sum::Numeric(n.to_string()))
}
fn cid(c: &str) -> Value {
    v(Sum::ContractId(c.to_string()))
}
fn timestamp(us: i64) -> Value {
    v(Sum::Timestamp(us))
}
fn list(items: Vec<Value>) -> Value {
    v(Sum::List(lapi::List { elements: items }))
}
fn unit() -> Value {
    v(Sum::Unit(()))
}
fn text_map(entries: &[(&str, &str)]) -> Value {
    v(Sum::TextMap(lapi::TextMap {
        entries: entries
            .iter()
            .map(|(k, val)| lapi::text_map::Entry {
                key: k.to_string(),
                value: Some(text(val)),
            })
            .collect(),
    }))
}

fn ts(us: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: us.div_euclid(1_000_000),
        nanos: (us.rem_euclid(1_000_000) * 1000) as i32,
    }
}

/// One node of a transaction tree, before filtering.
#[derive(Debug, Clone)]
struct Node {
    id: i32,
    /// Parties that see the node (LEDGER_EFFECTS).
    witnesses: Vec<String>,
    /// Parties whose ACS it changes (ACS_DELTA).
    stakeholders: Vec<String>,
    kind: NodeKind,
}

#[derive(Debug, Clone)]
enum NodeKind {
    Create {
        cid: String,
        template: Qualified,
        args: Record,
        signatories: Vec<String>,
        observers: Vec<String>,
        /// Interface views the template offers.
        views: Vec<(Qualified, Record)>,
    },
    Exercise {
        cid: String,
        template: Qualified,
        interface: Option<Qualified>,
        choice: &'static str,
        arg: Value,
        acting: Vec<String>,
        consuming: bool,
        result: Value,
        last_descendant: i32,
        implements: Vec<Qualified>,
    },
}

fn uniq(parties: &[&str]) -> Vec<String> {
    let set: BTreeSet<&str> = parties.iter().copied().collect();
    set.into_iter().map(str::to_string).collect()
}

/// Parameters of a token-standard transfer, whatever its direction.
struct TransferTree<'a> {
    sender: &'a str,
    receiver: &'a str,
    amount: &'a str,
    instrument: &'a Instrument,
    factory_cid: &'a str,
    inputs: Vec<HoldingRef>,
    receiver_holding: &'a HoldingRef,
    change: Option<&'a HoldingRef>,
    reason: &'a str,
    requested_at_us: i64,
    execute_before_us: i64,
    /// Extra witnesses of every node (e.g. the treasury as a deposit's receiver).
    witnesses: Vec<&'a str>,
}

fn holding_create(
    vb: Vb,
    id: i32,
    h: &HoldingRef,
    owner: &str,
    instrument: &Instrument,
    witnesses: &[String],
) -> Node {
    let args = vb.rec(
        SIM_HOLDING,
        [
            ("owner", party(owner)),
            ("instrument", vb.instrument(instrument)),
            ("amount", numeric(&h.amount)),
            ("meta", vb.metadata(&[])),
        ],
    );
    let view = vb.rec(
        (HOLDING_V1, HOLDING_MOD, "HoldingView"),
        [
            ("owner", party(owner)),
            ("instrumentId", vb.instrument(instrument)),
            ("amount", numeric(&h.amount)),
            (
                "lock",
                v(Sum::Optional(Box::new(lapi::Optional { value: None }))),
            ),
            ("meta", vb.metadata(&[])),
        ],
    );
    Node {
        id,
        witnesses: witnesses.to_vec(),
        stakeholders: uniq(&[owner, &instrument.admin]),
        kind: NodeKind::Create {
            cid: h.cid.clone(),
            template: SIM_HOLDING,
            args,
            signatories: uniq(&[&instrument.admin, owner]),
            observers: vec![],
            views: vec![(HOLDING_IFACE, view)],
        },
    }
}

fn transfer_tree(vb: Vb, t: TransferTree<'_>) -> Vec<Node> {
    let mut w: Vec<&str> = vec![t.sender, t.receiver, &t.instrument.admin];
    w.extend(t.witnesses.iter().copied());
    let witnesses = uniq(&w);
    let n_inputs = t.inputs.len() as i32;
    let last = n_inputs + 1 + i32::from(t.change.is_some());
    let meta_transfer = vb.metadata(&[(REASON_KEY, t.reason)]);
    let transfer = vb.record(
        (TRANSFER_INSTRUCTION_V1, TI_MOD, "Transfer"),
        [
            ("sender", party(t.sender)),
            ("receiver", party(t.receiver)),
            ("amount", numeric(t.amount)),
            ("instrumentId", vb.instrument(t.instrument)),
            ("requestedAt", timestamp(t.requested_at_us)),
            ("executeBefore", timestamp(t.execute_before_us)),
            (
                "inputHoldingCids",
                list(t.inputs.iter().map(|h| cid(&h.cid)).collect()),
            ),
            ("meta", meta_transfer),
        ],
    );
    let arg = vb.record(
        (TRANSFER_INSTRUCTION_V1, TI_MOD, "TransferFactory_Transfer"),
        [
            ("expectedAdmin", party(&t.instrument.admin)),
            ("transfer", transfer),
            (
                "extraArgs",
                vb.record(
                    (METADATA_V1, META_MOD, "ExtraArgs"),
                    [
                        (
                            "context",
                            vb.record(
                                (METADATA_V1, META_MOD, "ChoiceContext"),
                                [("values", text_map(&[]))],
                            ),
                        ),
                        ("meta", vb.metadata(&[])),
                    ],
                ),
            ),
        ],
    );
    let completed = vb.record(
        (
            TRANSFER_INSTRUCTION_V1,
            TI_MOD,
            "TransferInstructionResult_Output.TransferInstructionResult_Completed",
        ),
        [(
            "receiverHoldingCids",
            list(vec![cid(&t.receiver_holding.cid)]),
        )],
    );
    let output = v(Sum::Variant(Box::new(lapi::Variant {
        variant_id: vb.verbose.then(|| {
            ident((
                TRANSFER_INSTRUCTION_V1,
                TI_MOD,
                "TransferInstructionResult_Output",
            ))
        }),
        constructor: "TransferInstructionResult_Completed".into(),
        value: Some(Box::new(completed)),
    })));
    let result = vb.record(
        (TRANSFER_INSTRUCTION_V1, TI_MOD, "TransferInstructionResult"),
        [
            ("output", output),
            (
                "senderChangeCids",
                list(t.change.iter().map(|h| cid(&h.cid)).collect()),
            ),
            (
                "meta",
                vb.metadata(&[
                    (REASON_KEY, t.reason),
                    (SENDER_KEY, t.sender),
                    (TX_KIND_KEY, "transfer"),
                ]),
            ),
        ],
    );
    let mut nodes = vec![Node {
        id: 0,
        witnesses: witnesses.clone(),
        stakeholders: uniq(&[&t.instrument.admin]),
        kind: NodeKind::Exercise {
            cid: t.factory_cid.to_string(),
            template: SIM_FACTORY,
            interface: Some(TRANSFER_FACTORY_IFACE),
            choice: "TransferFactory_Transfer",
            arg,
            acting: vec![t.sender.to_string()],
            consuming: false,
            result,
            last_descendant: last,
            implements: vec![TRANSFER_FACTORY_IFACE],
        },
    }];
    for (i, h) in t.inputs.iter().enumerate() {
        let id = 1 + i as i32;
        nodes.push(Node {
            id,
            witnesses: witnesses.clone(),
            stakeholders: uniq(&[t.sender, &t.instrument.admin]),
            kind: NodeKind::Exercise {
                cid: h.cid.clone(),
                template: SIM_HOLDING,
                interface: None,
                choice: "Archive",
                arg: vb.record((SIM_TOKEN, "DA.Internal.Template", "Archive"), []),
                acting: vec![t.sender.to_string()],
                consuming: true,
                result: unit(),
                last_descendant: id,
                implements: vec![HOLDING_IFACE],
            },
        });
    }
    nodes.push(holding_create(
        vb,
        n_inputs + 1,
        t.receiver_holding,
        t.receiver,
        t.instrument,
        &witnesses,
    ));
    if let Some(c) = t.change {
        nodes.push(holding_create(
            vb,
            n_inputs + 2,
            c,
            t.sender,
            t.instrument,
            &witnesses,
        ));
    }
    nodes
}

fn nodes_of(u: &SequencedUpdate, treasury: &str, vb: Vb) -> Vec<Node> {
    match u.body() {
        UpdateBody::Deposit {
            customer,
            account,
            input,
            holding,
            instrument,
            factory_cid,
            requested_at_us,
        } => transfer_tree(
            vb,
            TransferTree {
                sender: customer,
                receiver: treasury,
                amount: &holding.amount,
                instrument,
                factory_cid,
                inputs: vec![input.clone()],
                receiver_holding: holding,
                change: None,
                reason: account,
                requested_at_us: *requested_at_us,
                execute_before_us: requested_at_us + 24 * 3_600_000_000,
                witnesses: vec![],
            },
        ),
        UpdateBody::Withdrawal {
            withdrawal_id,
            receiver,
            amount,
            instrument,
            inputs,
            receiver_holding,
            change,
            factory_cid,
            requested_at_us,
            execute_before_us,
            ..
        } => transfer_tree(
            vb,
            TransferTree {
                sender: treasury,
                receiver,
                amount,
                instrument,
                factory_cid,
                inputs: inputs.clone(),
                receiver_holding,
                change: change.as_ref(),
                reason: withdrawal_id,
                requested_at_us: *requested_at_us,
                execute_before_us: *execute_before_us,
                witnesses: vec![],
            },
        ),
        UpdateBody::Noise {
            sender,
            receiver,
            input,
            output,
            instrument,
            factory_cid,
            requested_at_us,
        } => transfer_tree(
            vb,
            TransferTree {
                sender,
                receiver,
                amount: &output.amount,
                instrument,
                factory_cid,
                inputs: vec![input.clone()],
                receiver_holding: output,
                change: None,
                reason: "",
                requested_at_us: *requested_at_us,
                execute_before_us: requested_at_us + 24 * 3_600_000_000,
                witnesses: vec![],
            },
        ),
    }
}

/// Parties that see anything of update `u` (for quick visibility checks).
pub fn informees(u: &SequencedUpdate, treasury: &str) -> Vec<String> {
    match u.body() {
        UpdateBody::Deposit {
            customer,
            instrument,
            ..
        } => uniq(&[customer, treasury, &instrument.admin]),
        UpdateBody::Withdrawal {
            receiver,
            instrument,
            ..
        } => uniq(&[treasury, receiver, &instrument.admin]),
        UpdateBody::Noise {
            sender,
            receiver,
            instrument,
            ..
        } => uniq(&[sender, receiver, &instrument.admin]),
    }
}

/// A validated transaction format.
#[derive(Debug, Clone)]
pub struct TxFormat {
    /// Per requested party (None = any hosted party): its filters.
    parties: Vec<(Option<String>, Vec<lapi::CumulativeFilter>)>,
    shape: TransactionShape,
    verbose: bool,
    hosted: Vec<String>,
    /// What render output depends on, hashed (see [`TxFormat::fingerprint`]).
    fingerprint: u128,
}

impl TxFormat {
    /// From a request's `TransactionFormat`; `hosted` = the participant's parties.
    pub fn new(f: &lapi::TransactionFormat, hosted: &[String]) -> Result<TxFormat, String> {
        let ef = f
            .event_format
            .as_ref()
            .ok_or_else(|| "event_format".to_string())?;
        let mut parties = Vec::new();
        for (p, filters) in &ef.filters_by_party {
            parties.push((Some(p.clone()), filters.cumulative.clone()));
        }
        if let Some(any) = &ef.filters_for_any_party {
            parties.push((None, any.cumulative.clone()));
        }
        let shape = match TransactionShape::try_from(f.transaction_shape) {
            Ok(TransactionShape::AcsDelta) => TransactionShape::AcsDelta,
            Ok(TransactionShape::LedgerEffects) => TransactionShape::LedgerEffects,
            _ => return Err("transaction_shape".to_string()),
        };
        let mut f = TxFormat {
            parties,
            shape,
            verbose: ef.verbose,
            hosted: hosted.to_vec(),
            fingerprint: 0,
        };
        f.fingerprint = f.compute_fingerprint();
        Ok(f)
    }

    /// A 128-bit hash of everything [`TxFormat::render`] output depends on
    /// besides the update and its offset (parties in a canonical order, their
    /// filters, shape, verbosity, hosted parties): equal formats render equal
    /// transactions. Keys the encoded-response cache.
    pub fn fingerprint(&self) -> u128 {
        self.fingerprint
    }

    fn compute_fingerprint(&self) -> u128 {
        use prost::Message as _;
        use sha2::Digest as _;
        fn put(h: &mut sha2::Sha256, b: &[u8]) {
            h.update((b.len() as u64).to_le_bytes());
            h.update(b);
        }
        let mut h = sha2::Sha256::new();
        let mut parties: Vec<&(Option<String>, Vec<lapi::CumulativeFilter>)> =
            self.parties.iter().collect();
        parties.sort_by(|a, b| a.0.cmp(&b.0));
        h.update((parties.len() as u64).to_le_bytes());
        for (p, filters) in parties {
            match p {
                Some(p) => put(&mut h, format!("p{p}").as_bytes()),
                None => put(&mut h, b"*"),
            }
            h.update((filters.len() as u64).to_le_bytes());
            for f in filters {
                put(&mut h, &f.encode_to_vec());
            }
        }
        h.update([self.shape as u8, u8::from(self.verbose)]);
        h.update((self.hosted.len() as u64).to_le_bytes());
        for p in &self.hosted {
            put(&mut h, p.as_bytes());
        }
        let d = h.finalize();
        u128::from_le_bytes(d[..16].try_into().expect("32-byte digest"))
    }

    /// Quick check: could any event of `u` be visible under this format?
    pub fn may_see(&self, u: &SequencedUpdate, treasury: &str) -> bool {
        let inf = informees(u, treasury);
        self.parties.iter().any(|(p, _)| match p {
            Some(p) => inf.contains(p),
            None => inf.iter().any(|i| self.hosted.contains(i)),
        })
    }

    /// The transaction as the requester sees it, or `None` when no event is visible.
    pub fn render(
        &self,
        u: &SequencedUpdate,
        offset: i64,
        synchronizer_id: &str,
        treasury: &str,
    ) -> Option<Transaction> {
        if !self.may_see(u, treasury) {
            return None;
        }
        let vb = Vb {
            verbose: self.verbose,
        };
        let nodes = nodes_of(u, treasury, vb);
        let mut events = Vec::new();
        for node in nodes {
            if let Some(e) = self.render_node(node, offset, u.record_time_us) {
                events.push(e);
            }
        }
        if events.is_empty() {
            return None;
        }
        let external_hash = matches!(u.body(), UpdateBody::Withdrawal { .. })
            .then(|| ids::sha256_hex(format!("external|{}", u.update_id).as_bytes()).into_bytes());
        Some(Transaction {
            update_id: u.update_id.clone(),
            command_id: String::new(),
            workflow_id: String::new(),
            effective_at: Some(ts(u.record_time_us)),
            events,
            offset,
            synchronizer_id: synchronizer_id.to_string(),
            trace_context: None,
            record_time: Some(ts(u.record_time_us)),
            external_transaction_hash: external_hash,
            paid_traffic_cost: None,
        })
    }

    fn render_node(&self, node: Node, offset: i64, rt: i64) -> Option<Event> {
        let informees = match self.shape {
            TransactionShape::AcsDelta => &node.stakeholders,
            _ => &node.witnesses,
        };
        let (template, implements): (Qualified, Vec<Qualified>) = match &node.kind {
            NodeKind::Create {
                template, views, ..
            } => (*template, views.iter().map(|(q, _)| *q).collect()),
            NodeKind::Exercise {
                template,
                implements,
                ..
            } => (*template, implements.clone()),
        };
        let mut witnesses = BTreeSet::new();
        // Interfaces some matching filter asks to see (views / implemented_interfaces).
        let mut iface_wanted: BTreeMap<&'static str, (Qualified, bool)> = BTreeMap::new();
        let mut blob = false;
        for (p, filters) in &self.parties {
            let cand: Vec<&String> = match p {
                Some(p) => informees.iter().filter(|i| *i == p).collect(),
                None => informees
                    .iter()
                    .filter(|i| self.hosted.contains(i))
                    .collect(),
            };
            if cand.is_empty() {
                continue;
            }
            let mut hit = filters.is_empty();
            for f in filters {
                match &f.identifier_filter {
                    Some(lapi::cumulative_filter::IdentifierFilter::WildcardFilter(w)) => {
                        hit = true;
                        blob |= w.include_created_event_blob;
                    }
                    Some(lapi::cumulative_filter::IdentifierFilter::TemplateFilter(t)) => {
                        if t.template_id
                            .as_ref()
                            .is_some_and(|id| matches(id, template))
                        {
                            hit = true;
                            blob |= t.include_created_event_blob;
                        }
                    }
                    Some(lapi::cumulative_filter::IdentifierFilter::InterfaceFilter(i)) => {
                        if let Some(q) = implements
                            .iter()
                            .find(|q| i.interface_id.as_ref().is_some_and(|id| matches(id, **q)))
                        {
                            hit = true;
                            blob |= i.include_created_event_blob;
                            let e = iface_wanted.entry(q.2).or_insert((*q, false));
                            e.1 |= i.include_interface_view;
                        }
                    }
                    None => hit = true,
                }
            }
            if hit {
                witnesses.extend(cand.into_iter().cloned());
            }
        }
        if witnesses.is_empty() {
            return None;
        }
        let acs_delta = witnesses.iter().any(|w| node.stakeholders.contains(w));
        let witness_parties: Vec<String> = witnesses.into_iter().collect();
        let package_name = template.0.name.to_string();
        let ev = match node.kind {
            NodeKind::Create {
                cid,
                template,
                args,
                signatories,
                observers,
                views,
            } => {
                let interface_views = views
                    .into_iter()
                    .filter_map(|(q, view)| {
                        iface_wanted.get(q.2).map(|(_, want_view)| InterfaceView {
                            interface_id: Some(ident(q)),
                            view_status: Some(rpc::Status {
                                code: 0,
                                message: String::new(),
                                details: vec![],
                            }),
                            view_value: want_view.then_some(view),
                        })
                    })
                    .filter(|iv| iv.view_value.is_some())
                    .collect();
                let created_event_blob = if blob {
                    ids::sha256_hex(format!("blob|{cid}").as_bytes()).into_bytes()
                } else {
                    Vec::new()
                };
                event::Event::Created(CreatedEvent {
                    offset,
                    node_id: node.id,
                    contract_id: cid,
                    template_id: Some(ident(template)),
                    contract_key: None,
                    create_arguments: Some(args),
                    created_event_blob,
                    interface_views,
                    witness_parties,
                    signatories,
                    observers,
                    created_at: Some(ts(rt)),
                    package_name,
                    acs_delta,
                    representative_package_id: template.0.id.to_string(),
                })
            }
            NodeKind::Exercise {
                cid,
                template,
                interface,
                choice,
                arg,
                acting,
                consuming,
                result,
                last_descendant,
                ..
            } => {
                let implemented_interfaces: Vec<Identifier> = if consuming {
                    iface_wanted.values().map(|(q, _)| ident(*q)).collect()
                } else {
                    Vec::new()
                };
                if self.shape == TransactionShape::AcsDelta {
                    if !consuming {
                        return None;
                    }
                    event::Event::Archived(ArchivedEvent {
                        offset,
                        node_id: node.id,
                        contract_id: cid,
                        template_id: Some(ident(template)),
                        witness_parties,
                        package_name,
                        implemented_interfaces,
                    })
                } else {
                    event::Event::Exercised(ExercisedEvent {
                        offset,
                        node_id: node.id,
                        contract_id: cid,
                        template_id: Some(ident(template)),
                        interface_id: interface.map(ident),
                        choice: choice.to_string(),
                        choice_argument: Some(arg),
                        acting_parties: acting,
                        consuming,
                        witness_parties,
                        last_descendant_node_id: last_descendant,
                        exercise_result: Some(result),
                        package_name,
                        implemented_interfaces,
                        acs_delta: consuming && acs_delta,
                    })
                }
            }
        };
        Some(Event { event: Some(ev) })
    }
}
