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
use std::collections::BTreeMap;

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
pub(crate) type Qualified = (Package, &'static str, &'static str);

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

/// A Daml value as the simulator renders it, borrowing its strings from the
/// update. Record ids, variant ids and field labels are written only for
/// verbose requests (see [`V::to_prost`] and [`crate::ledger::wire`]).
#[derive(Debug, Clone)]
pub(crate) enum V<'a> {
    Unit,
    Party(&'a str),
    Text(&'a str),
    Numeric(&'a str),
    ContractId(&'a str),
    Timestamp(i64),
    List(Vec<V<'a>>),
    TextMap(Vec<(&'a str, &'a str)>),
    Record(R<'a>),
    /// `Optional` without a value.
    None,
    /// A variant: its type, constructor and value.
    Variant(Qualified, &'static str, Box<V<'a>>),
}

/// A Daml record: its type and labelled fields.
#[derive(Debug, Clone)]
pub(crate) struct R<'a> {
    pub id: Qualified,
    pub fields: Vec<(&'static str, V<'a>)>,
}

impl V<'_> {
    /// The prost `Value`.
    pub(crate) fn to_prost(&self, verbose: bool) -> Value {
        let sum = match self {
            V::Unit => Sum::Unit(()),
            V::Party(s) => Sum::Party(s.to_string()),
            V::Text(s) => Sum::Text(s.to_string()),
            V::Numeric(s) => Sum::Numeric(s.to_string()),
            V::ContractId(s) => Sum::ContractId(s.to_string()),
            V::Timestamp(t) => Sum::Timestamp(*t),
            V::List(items) => Sum::List(lapi::List {
                elements: items.iter().map(|e| e.to_prost(verbose)).collect(),
            }),
            V::TextMap(entries) => Sum::TextMap(lapi::TextMap {
                entries: entries
                    .iter()
                    .map(|(k, val)| lapi::text_map::Entry {
                        key: k.to_string(),
                        value: Some(V::Text(val).to_prost(verbose)),
                    })
                    .collect(),
            }),
            V::Record(r) => Sum::Record(r.to_prost(verbose)),
            V::None => Sum::Optional(Box::new(lapi::Optional { value: None })),
            V::Variant(id, constructor, value) => Sum::Variant(Box::new(lapi::Variant {
                variant_id: verbose.then(|| ident(*id)),
                constructor: constructor.to_string(),
                value: Some(Box::new(value.to_prost(verbose))),
            })),
        };
        Value { sum: Some(sum) }
    }
}

impl R<'_> {
    /// The prost `Record`.
    pub(crate) fn to_prost(&self, verbose: bool) -> Record {
        Record {
            record_id: verbose.then(|| ident(self.id)),
            fields: self
                .fields
                .iter()
                .map(|(label, value)| RecordField {
                    label: if verbose {
                        label.to_string()
                    } else {
                        String::new()
                    },
                    value: Some(value.to_prost(verbose)),
                })
                .collect(),
        }
    }
}

fn rec<'a, const N: usize>(id: Qualified, fields: [(&'static str, V<'a>); N]) -> R<'a> {
    R {
        id,
        fields: Vec::from(fields),
    }
}
fn record<'a, const N: usize>(id: Qualified, fields: [(&'static str, V<'a>); N]) -> V<'a> {
    V::Record(rec(id, fields))
}
fn metadata<'a>(entries: &[(&'a str, &'a str)]) -> V<'a> {
    record(
        (METADATA_V1, META_MOD, "Metadata"),
        [("values", V::TextMap(entries.to_vec()))],
    )
}
fn instrument(i: &Instrument) -> V<'_> {
    record(
        (HOLDING_V1, HOLDING_MOD, "InstrumentId"),
        [("admin", V::Party(&i.admin)), ("id", V::Text(&i.id))],
    )
}

pub(crate) fn ts(us: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: us.div_euclid(1_000_000),
        nanos: (us.rem_euclid(1_000_000) * 1000) as i32,
    }
}

/// One node of a transaction tree, before filtering.
#[derive(Debug, Clone)]
struct Node<'a> {
    id: i32,
    /// Parties that see the node (LEDGER_EFFECTS).
    witnesses: Vec<&'a str>,
    /// Parties whose ACS it changes (ACS_DELTA).
    stakeholders: Vec<&'a str>,
    kind: NodeKind<'a>,
}

#[derive(Debug, Clone)]
enum NodeKind<'a> {
    Create {
        cid: &'a str,
        template: Qualified,
        args: R<'a>,
        signatories: Vec<&'a str>,
        /// Interfaces the template implements.
        implements: &'static [Qualified],
        /// Interface views the template offers.
        views: Vec<(Qualified, R<'a>)>,
    },
    Exercise {
        cid: &'a str,
        template: Qualified,
        interface: Option<Qualified>,
        choice: &'static str,
        arg: V<'a>,
        acting: Vec<&'a str>,
        consuming: bool,
        result: V<'a>,
        last_descendant: i32,
        implements: &'static [Qualified],
    },
}

fn uniq<'a>(parties: &[&'a str]) -> Vec<&'a str> {
    let mut v = parties.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

/// Parameters of a token-standard transfer, whatever its direction.
struct TransferTree<'a> {
    sender: &'a str,
    receiver: &'a str,
    amount: &'a str,
    instrument: &'a Instrument,
    factory_cid: &'a str,
    inputs: &'a [HoldingRef],
    receiver_holding: &'a HoldingRef,
    change: Option<&'a HoldingRef>,
    reason: &'a str,
    requested_at_us: i64,
    execute_before_us: i64,
}

fn holding_create<'a>(
    id: i32,
    h: &'a HoldingRef,
    owner: &'a str,
    inst: &'a Instrument,
    witnesses: &[&'a str],
) -> Node<'a> {
    let args = rec(
        SIM_HOLDING,
        [
            ("owner", V::Party(owner)),
            ("instrument", instrument(inst)),
            ("amount", V::Numeric(&h.amount)),
            ("meta", metadata(&[])),
        ],
    );
    let view = rec(
        (HOLDING_V1, HOLDING_MOD, "HoldingView"),
        [
            ("owner", V::Party(owner)),
            ("instrumentId", instrument(inst)),
            ("amount", V::Numeric(&h.amount)),
            ("lock", V::None),
            ("meta", metadata(&[])),
        ],
    );
    Node {
        id,
        witnesses: witnesses.to_vec(),
        stakeholders: uniq(&[owner, &inst.admin]),
        kind: NodeKind::Create {
            cid: &h.cid,
            template: SIM_HOLDING,
            args,
            signatories: uniq(&[&inst.admin, owner]),
            implements: &[HOLDING_IFACE],
            views: vec![(HOLDING_IFACE, view)],
        },
    }
}

fn transfer_tree(t: TransferTree<'_>) -> Vec<Node<'_>> {
    let witnesses = uniq(&[t.sender, t.receiver, &t.instrument.admin]);
    let n_inputs = t.inputs.len() as i32;
    let last = n_inputs + 1 + i32::from(t.change.is_some());
    let transfer = record(
        (TRANSFER_INSTRUCTION_V1, TI_MOD, "Transfer"),
        [
            ("sender", V::Party(t.sender)),
            ("receiver", V::Party(t.receiver)),
            ("amount", V::Numeric(t.amount)),
            ("instrumentId", instrument(t.instrument)),
            ("requestedAt", V::Timestamp(t.requested_at_us)),
            ("executeBefore", V::Timestamp(t.execute_before_us)),
            (
                "inputHoldingCids",
                V::List(t.inputs.iter().map(|h| V::ContractId(&h.cid)).collect()),
            ),
            ("meta", metadata(&[(REASON_KEY, t.reason)])),
        ],
    );
    let arg = record(
        (TRANSFER_INSTRUCTION_V1, TI_MOD, "TransferFactory_Transfer"),
        [
            ("expectedAdmin", V::Party(&t.instrument.admin)),
            ("transfer", transfer),
            (
                "extraArgs",
                record(
                    (METADATA_V1, META_MOD, "ExtraArgs"),
                    [
                        (
                            "context",
                            record(
                                (METADATA_V1, META_MOD, "ChoiceContext"),
                                [("values", V::TextMap(Vec::new()))],
                            ),
                        ),
                        ("meta", metadata(&[])),
                    ],
                ),
            ),
        ],
    );
    let completed = record(
        (
            TRANSFER_INSTRUCTION_V1,
            TI_MOD,
            "TransferInstructionResult_Output.TransferInstructionResult_Completed",
        ),
        [(
            "receiverHoldingCids",
            V::List(vec![V::ContractId(&t.receiver_holding.cid)]),
        )],
    );
    let output = V::Variant(
        (
            TRANSFER_INSTRUCTION_V1,
            TI_MOD,
            "TransferInstructionResult_Output",
        ),
        "TransferInstructionResult_Completed",
        Box::new(completed),
    );
    let result = record(
        (TRANSFER_INSTRUCTION_V1, TI_MOD, "TransferInstructionResult"),
        [
            ("output", output),
            (
                "senderChangeCids",
                V::List(t.change.iter().map(|h| V::ContractId(&h.cid)).collect()),
            ),
            (
                "meta",
                metadata(&[
                    (REASON_KEY, t.reason),
                    (SENDER_KEY, t.sender),
                    (TX_KIND_KEY, "transfer"),
                ]),
            ),
        ],
    );
    let mut nodes = Vec::with_capacity(t.inputs.len() + 3);
    nodes.push(Node {
        id: 0,
        witnesses: witnesses.clone(),
        stakeholders: vec![&t.instrument.admin],
        kind: NodeKind::Exercise {
            cid: t.factory_cid,
            template: SIM_FACTORY,
            interface: Some(TRANSFER_FACTORY_IFACE),
            choice: "TransferFactory_Transfer",
            arg,
            acting: vec![t.sender],
            consuming: false,
            result,
            last_descendant: last,
            implements: &[TRANSFER_FACTORY_IFACE],
        },
    });
    for (i, h) in t.inputs.iter().enumerate() {
        let id = 1 + i as i32;
        nodes.push(Node {
            id,
            witnesses: witnesses.clone(),
            stakeholders: uniq(&[t.sender, &t.instrument.admin]),
            kind: NodeKind::Exercise {
                cid: &h.cid,
                template: SIM_HOLDING,
                interface: None,
                choice: "Archive",
                arg: record((SIM_TOKEN, "DA.Internal.Template", "Archive"), []),
                acting: vec![t.sender],
                consuming: true,
                result: V::Unit,
                last_descendant: id,
                implements: &[HOLDING_IFACE],
            },
        });
    }
    nodes.push(holding_create(
        n_inputs + 1,
        t.receiver_holding,
        t.receiver,
        t.instrument,
        &witnesses,
    ));
    if let Some(c) = t.change {
        nodes.push(holding_create(
            n_inputs + 2,
            c,
            t.sender,
            t.instrument,
            &witnesses,
        ));
    }
    nodes
}

fn nodes_of<'a>(u: &'a SequencedUpdate, treasury: &'a str) -> Vec<Node<'a>> {
    match u.body() {
        UpdateBody::Deposit {
            customer,
            account,
            input,
            holding,
            instrument,
            factory_cid,
            requested_at_us,
        } => transfer_tree(TransferTree {
            sender: customer,
            receiver: treasury,
            amount: &holding.amount,
            instrument,
            factory_cid,
            inputs: std::slice::from_ref(input),
            receiver_holding: holding,
            change: None,
            reason: account,
            requested_at_us: *requested_at_us,
            execute_before_us: requested_at_us + 24 * 3_600_000_000,
        }),
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
        } => transfer_tree(TransferTree {
            sender: treasury,
            receiver,
            amount,
            instrument,
            factory_cid,
            inputs,
            receiver_holding,
            change: change.as_ref(),
            reason: withdrawal_id,
            requested_at_us: *requested_at_us,
            execute_before_us: *execute_before_us,
        }),
        UpdateBody::Noise {
            sender,
            receiver,
            input,
            output,
            instrument,
            factory_cid,
            requested_at_us,
        } => transfer_tree(TransferTree {
            sender,
            receiver,
            amount: &output.amount,
            instrument,
            factory_cid,
            inputs: std::slice::from_ref(input),
            receiver_holding: output,
            change: None,
            reason: "",
            requested_at_us: *requested_at_us,
            execute_before_us: requested_at_us + 24 * 3_600_000_000,
        }),
    }
}

/// Parties that see anything of update `u` (for quick visibility checks).
pub fn informees(u: &SequencedUpdate, treasury: &str) -> Vec<String> {
    uniq(&informees_of(u, treasury))
        .into_iter()
        .map(str::to_string)
        .collect()
}

fn informees_of<'a>(u: &'a SequencedUpdate, treasury: &'a str) -> [&'a str; 3] {
    match u.body() {
        UpdateBody::Deposit {
            customer,
            instrument,
            ..
        } => [customer, treasury, &instrument.admin],
        UpdateBody::Withdrawal {
            receiver,
            instrument,
            ..
        } => [treasury, receiver, &instrument.admin],
        UpdateBody::Noise {
            sender,
            receiver,
            instrument,
            ..
        } => [sender, receiver, &instrument.admin],
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
        let inf = informees_of(u, treasury);
        self.parties.iter().any(|(p, _)| match p {
            Some(p) => inf.contains(&p.as_str()),
            None => inf.iter().any(|i| self.hosted.iter().any(|h| h == i)),
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
        self.render_tx(u, offset, synchronizer_id, treasury)
            .map(|t| t.to_prost())
    }

    /// [`TxFormat::render`] as the GetUpdates response carrying it, encoded
    /// in one pass (the same bytes as prost's encoding of that response).
    pub fn render_encoded(
        &self,
        u: &SequencedUpdate,
        offset: i64,
        synchronizer_id: &str,
        treasury: &str,
    ) -> Option<Vec<u8>> {
        self.render_tx(u, offset, synchronizer_id, treasury)
            .map(|t| crate::ledger::wire::updates_response(&t))
    }

    /// The transaction as the requester sees it, borrowing from `u`.
    pub(crate) fn render_tx<'a>(
        &self,
        u: &'a SequencedUpdate,
        offset: i64,
        synchronizer_id: &'a str,
        treasury: &'a str,
    ) -> Option<Tx<'a>> {
        if !self.may_see(u, treasury) {
            return None;
        }
        let nodes = nodes_of(u, treasury);
        let mut events = Vec::with_capacity(nodes.len());
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
        Some(Tx {
            update_id: &u.update_id,
            record_time_us: u.record_time_us,
            events,
            offset,
            synchronizer_id,
            external_hash,
            verbose: self.verbose,
        })
    }

    fn render_node<'a>(&self, node: Node<'a>, offset: i64, rt: i64) -> Option<Ev<'a>> {
        let informees = match self.shape {
            TransactionShape::AcsDelta => &node.stakeholders,
            _ => &node.witnesses,
        };
        let (template, implements) = match &node.kind {
            NodeKind::Create {
                template,
                implements,
                ..
            }
            | NodeKind::Exercise {
                template,
                implements,
                ..
            } => (*template, *implements),
        };
        let mut witnesses: Vec<&'a str> = Vec::new();
        // Interfaces some matching filter asks to see (views / implemented_interfaces).
        let mut iface_wanted: BTreeMap<&'static str, (Qualified, bool)> = BTreeMap::new();
        let mut blob = false;
        for (p, filters) in &self.parties {
            let visible = |i: &&'a str| match p {
                Some(p) => *i == p.as_str(),
                None => self.hosted.iter().any(|h| h == i),
            };
            if !informees.iter().any(visible) {
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
                witnesses.extend(informees.iter().copied().filter(visible));
            }
        }
        if witnesses.is_empty() {
            return None;
        }
        witnesses.sort_unstable();
        witnesses.dedup();
        let acs_delta = witnesses.iter().any(|w| node.stakeholders.contains(w));
        Some(match node.kind {
            NodeKind::Create {
                cid,
                template,
                args,
                signatories,
                views,
                ..
            } => {
                let views = views
                    .into_iter()
                    .filter(|(q, _)| iface_wanted.get(q.2).is_some_and(|(_, want)| *want))
                    .collect();
                let blob = if blob {
                    ids::sha256_hex(format!("blob|{cid}").as_bytes()).into_bytes()
                } else {
                    Vec::new()
                };
                Ev::Created {
                    offset,
                    node_id: node.id,
                    cid,
                    template,
                    args,
                    blob,
                    views,
                    witnesses,
                    signatories,
                    created_at_us: rt,
                    acs_delta,
                }
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
                let implemented: Vec<Qualified> = if consuming {
                    iface_wanted.values().map(|(q, _)| *q).collect()
                } else {
                    Vec::new()
                };
                if self.shape == TransactionShape::AcsDelta {
                    if !consuming {
                        return None;
                    }
                    Ev::Archived {
                        offset,
                        node_id: node.id,
                        cid,
                        template,
                        witnesses,
                        implemented,
                    }
                } else {
                    Ev::Exercised {
                        offset,
                        node_id: node.id,
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
                        acs_delta: consuming && acs_delta,
                    }
                }
            }
        })
    }
}

/// A rendered transaction, borrowing from its update; becomes a prost
/// `Transaction` ([`Tx::to_prost`]) or is encoded directly
/// ([`crate::ledger::wire::updates_response`]).
#[derive(Debug, Clone)]
pub(crate) struct Tx<'a> {
    pub update_id: &'a str,
    /// Effective and record time, µs.
    pub record_time_us: i64,
    pub events: Vec<Ev<'a>>,
    pub offset: i64,
    pub synchronizer_id: &'a str,
    pub external_hash: Option<Vec<u8>>,
    /// Record ids and labels in values.
    pub verbose: bool,
}

/// One rendered event (package name and representative package id are the
/// template's).
#[derive(Debug, Clone)]
pub(crate) enum Ev<'a> {
    Created {
        offset: i64,
        node_id: i32,
        cid: &'a str,
        template: Qualified,
        args: R<'a>,
        blob: Vec<u8>,
        /// Interface views shown (status OK, with the view value).
        views: Vec<(Qualified, R<'a>)>,
        witnesses: Vec<&'a str>,
        signatories: Vec<&'a str>,
        created_at_us: i64,
        acs_delta: bool,
    },
    Archived {
        offset: i64,
        node_id: i32,
        cid: &'a str,
        template: Qualified,
        witnesses: Vec<&'a str>,
        implemented: Vec<Qualified>,
    },
    Exercised {
        offset: i64,
        node_id: i32,
        cid: &'a str,
        template: Qualified,
        interface: Option<Qualified>,
        choice: &'static str,
        arg: V<'a>,
        acting: Vec<&'a str>,
        consuming: bool,
        witnesses: Vec<&'a str>,
        last_descendant: i32,
        result: V<'a>,
        implemented: Vec<Qualified>,
        acs_delta: bool,
    },
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Tx<'_> {
    /// The prost `Transaction`.
    pub(crate) fn to_prost(&self) -> Transaction {
        Transaction {
            update_id: self.update_id.to_string(),
            command_id: String::new(),
            workflow_id: String::new(),
            effective_at: Some(ts(self.record_time_us)),
            events: self
                .events
                .iter()
                .map(|e| e.to_prost(self.verbose))
                .collect(),
            offset: self.offset,
            synchronizer_id: self.synchronizer_id.to_string(),
            trace_context: None,
            record_time: Some(ts(self.record_time_us)),
            external_transaction_hash: self.external_hash.clone(),
            paid_traffic_cost: None,
        }
    }
}

impl Ev<'_> {
    fn to_prost(&self, verbose: bool) -> Event {
        let ev = match self {
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
            } => event::Event::Created(CreatedEvent {
                offset: *offset,
                node_id: *node_id,
                contract_id: cid.to_string(),
                template_id: Some(ident(*template)),
                contract_key: None,
                create_arguments: Some(args.to_prost(verbose)),
                created_event_blob: blob.clone(),
                interface_views: views
                    .iter()
                    .map(|(q, view)| InterfaceView {
                        interface_id: Some(ident(*q)),
                        view_status: Some(rpc::Status {
                            code: 0,
                            message: String::new(),
                            details: vec![],
                        }),
                        view_value: Some(view.to_prost(verbose)),
                    })
                    .collect(),
                witness_parties: strings(witnesses),
                signatories: strings(signatories),
                observers: vec![],
                created_at: Some(ts(*created_at_us)),
                package_name: template.0.name.to_string(),
                acs_delta: *acs_delta,
                representative_package_id: template.0.id.to_string(),
            }),
            Ev::Archived {
                offset,
                node_id,
                cid,
                template,
                witnesses,
                implemented,
            } => event::Event::Archived(ArchivedEvent {
                offset: *offset,
                node_id: *node_id,
                contract_id: cid.to_string(),
                template_id: Some(ident(*template)),
                witness_parties: strings(witnesses),
                package_name: template.0.name.to_string(),
                implemented_interfaces: implemented.iter().map(|q| ident(*q)).collect(),
            }),
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
            } => event::Event::Exercised(ExercisedEvent {
                offset: *offset,
                node_id: *node_id,
                contract_id: cid.to_string(),
                template_id: Some(ident(*template)),
                interface_id: interface.map(ident),
                choice: choice.to_string(),
                choice_argument: Some(arg.to_prost(verbose)),
                acting_parties: strings(acting),
                consuming: *consuming,
                witness_parties: strings(witnesses),
                last_descendant_node_id: *last_descendant,
                exercise_result: Some(result.to_prost(verbose)),
                package_name: template.0.name.to_string(),
                implemented_interfaces: implemented.iter().map(|q| ident(*q)).collect(),
                acs_delta: *acs_delta,
            }),
        };
        Event { event: Some(ev) }
    }
}
