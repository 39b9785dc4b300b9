//! Token-standard transfers and treasury holdings in a LEDGER_EFFECTS
//! transaction, as splice-exchange.md §1–§3 describe them.
//!
//! * A `TransferFactory_Transfer` exercise (interface
//!   `Splice.Api.Token.TransferInstructionV1:TransferFactory`) carries the whole
//!   transfer in its choice argument: sender, receiver, amount, instrument and
//!   the metadata whose `splice.lfdecentralizedtrust.org/reason` is the deposit
//!   account (receiver = treasury) or the withdrawal id (sender = treasury).
//! * Any other exercise whose result carries metadata with
//!   `splice.lfdecentralizedtrust.org/tx-kind = "transfer"` (a 1-step transfer
//!   such as CC's `TransferPreapproval_Send`) is a deposit of the `Holding`s
//!   created for the treasury inside it, `(nodeId, lastDescendantNodeId]`.
//! * After a recognised transfer the walk continues at
//!   `lastDescendantNodeId + 1`, so nested steps are not counted twice.
//! * Created events with a `Holding` interface view owned by the treasury are
//!   its new UTXOs; consuming exercises (and archived events) spend them.
//!
//! Record fields are read by label when the stream is verbose and by
//! declaration order otherwise (canton-wire.md §4b).

use crate::value::{
    RecordView, ShapeError, ShapeResult, as_numeric, as_party, as_record, as_text, as_text_map,
    as_variant, join, unwrap_optional,
};
use crate::view::{CreatedEvent, ExercisedEvent, Transaction, event};
use canton_proto::ledger::{Identifier, Record, TextMap, Value, value::Sum};
use std::collections::BTreeMap;
use std::fmt;

/// Metadata key of the memo: deposit account or withdrawal id.
pub const REASON_KEY: &str = "splice.lfdecentralizedtrust.org/reason";
/// Metadata key marking the kind of a token-standard transaction.
pub const TX_KIND_KEY: &str = "splice.lfdecentralizedtrust.org/tx-kind";
/// Metadata key naming the sender of a 1-step transfer.
pub const SENDER_KEY: &str = "splice.lfdecentralizedtrust.org/sender";
/// The choice every token-standard transfer starts with.
pub const TRANSFER_CHOICE: &str = "TransferFactory_Transfer";
/// Module of the transfer-instruction interfaces.
pub const TRANSFER_INSTRUCTION_MODULE: &str = "Splice.Api.Token.TransferInstructionV1";
/// Module of the holding interface.
pub const HOLDING_MODULE: &str = "Splice.Api.Token.HoldingV1";

/// A token: its admin party and id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instrument {
    /// Admin party (CC: the DSO party).
    pub admin: String,
    /// Instrument id (CC: `Amulet`).
    pub id: String,
}

/// Which way a transfer moves the treasury's funds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Into the treasury (receiver = treasury).
    Deposit,
    /// Out of the treasury (sender = treasury, self-transfers included).
    Withdrawal,
}

/// What the transfer's result says became of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `TransferInstructionResult_Completed`.
    Completed,
    /// `TransferInstructionResult_Pending`: a multi-step offer awaiting acceptance.
    Pending,
    /// `TransferInstructionResult_Failed`.
    Failed,
    /// No (recognisable) result: the transfer committed, which is what counts.
    Committed,
}

/// One transfer into or out of the treasury.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// Node id of the exercise that carries it.
    pub node_id: i32,
    /// Into or out of the treasury.
    pub direction: Direction,
    /// Sending party.
    pub sender: String,
    /// Receiving party.
    pub receiver: String,
    /// The token.
    pub instrument: Instrument,
    /// Amount, a Daml Decimal string as on the ledger.
    pub amount: String,
    /// The `reason` metadata: deposit account or withdrawal id.
    pub reason: Option<String>,
    /// The result.
    pub outcome: Outcome,
}

/// A `Holding` created for the treasury.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldingCreated {
    /// Contract id.
    pub contract_id: String,
    /// Owner (the treasury).
    pub owner: String,
    /// The token.
    pub instrument: Instrument,
    /// Amount.
    pub amount: String,
}

/// What a transaction means to the treasury.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedTransaction {
    /// Transfers into and out of the treasury, in node order.
    pub transfers: Vec<Transfer>,
    /// Holdings created for the treasury.
    pub holdings_created: Vec<HoldingCreated>,
    /// Contract ids consumed in the transaction (some may be treasury holdings).
    pub consumed: Vec<String>,
}

/// A transaction the parser cannot read: an event of a token-standard
/// interface whose value does not have the declared shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Node id of the event.
    pub node_id: i32,
    /// What was wrong.
    pub shape: ShapeError,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event node {}: {}", self.node_id, self.shape)
    }
}

impl std::error::Error for ParseError {}

/// True when `id` names `module:entity` (any package: events carry package ids).
fn names(id: Option<&Identifier>, module: &str, entity: &str) -> bool {
    id.is_some_and(|i| i.module_name == module && i.entity_name == entity)
}

/// Parses `tx` from the point of view of `treasury`.
pub fn parse_transaction(
    tx: &Transaction,
    treasury: &str,
) -> Result<ParsedTransaction, ParseError> {
    let mut events: Vec<&event::Event> =
        tx.events.iter().filter_map(|e| e.event.as_ref()).collect();
    events.sort_by_key(|e| node_id(e));
    let mut out = ParsedTransaction::default();

    for e in &events {
        match e {
            event::Event::Created(c) => {
                if let Some(h) = treasury_holding(c, treasury).map_err(|shape| ParseError {
                    node_id: c.node_id,
                    shape,
                })? {
                    out.holdings_created.push(h);
                }
            }
            event::Event::Exercised(x) if x.consuming => out.consumed.push(x.contract_id.clone()),
            event::Event::Archived(a) => out.consumed.push(a.contract_id.clone()),
            event::Event::Exercised(_) => {}
        }
    }

    let mut skip_through = i32::MIN;
    for (i, e) in events.iter().enumerate() {
        let event::Event::Exercised(x) = e else {
            continue;
        };
        if x.node_id <= skip_through {
            continue;
        }
        let err = |shape| ParseError {
            node_id: x.node_id,
            shape,
        };
        if is_transfer_factory_transfer(x) {
            if let Some(t) = factory_transfer(x, treasury).map_err(err)? {
                out.transfers.push(t);
                skip_through = x.last_descendant_node_id;
            }
        } else if let Some(meta) = x.exercise_result.as_ref().and_then(find_meta)
            && meta_get(meta, TX_KIND_KEY) == Some("transfer")
        {
            let subtree = &events[i + 1..];
            let deposits = one_step_deposits(x, meta, subtree, treasury).map_err(err)?;
            if !deposits.is_empty() {
                out.transfers.extend(deposits);
                skip_through = x.last_descendant_node_id;
            }
        }
    }
    Ok(out)
}

fn node_id(e: &event::Event) -> i32 {
    match e {
        event::Event::Created(c) => c.node_id,
        event::Event::Archived(a) => a.node_id,
        event::Event::Exercised(x) => x.node_id,
    }
}

/// `TransferFactory_Transfer`, exercised through the `TransferFactory`
/// interface (or directly, when the event names no interface).
fn is_transfer_factory_transfer(x: &ExercisedEvent) -> bool {
    x.choice == TRANSFER_CHOICE
        && (x.interface_id.is_none()
            || names(
                x.interface_id.as_ref(),
                TRANSFER_INSTRUCTION_MODULE,
                "TransferFactory",
            ))
}

/// The transfer of a `TransferFactory_Transfer` exercise, if the treasury is
/// its sender or receiver.
fn factory_transfer(x: &ExercisedEvent, treasury: &str) -> ShapeResult<Option<Transfer>> {
    let arg = x.choice_argument.as_ref().ok_or_else(|| ShapeError {
        path: TRANSFER_CHOICE.into(),
        problem: "choice argument is missing".into(),
    })?;
    // TransferFactory_Transfer { expectedAdmin, transfer, extraArgs }
    let choice = RecordView::new(as_record(arg, TRANSFER_CHOICE)?, TRANSFER_CHOICE);
    let transfer_path = join(TRANSFER_CHOICE, "transfer");
    let transfer = as_record(choice.field(1, "transfer")?, &transfer_path)?;
    let t = RecordView::new(transfer, &transfer_path);
    // Transfer { sender, receiver, amount, instrumentId, requestedAt,
    //            executeBefore, inputHoldingCids, meta }
    let sender = as_party(t.field(0, "sender")?, &join(&transfer_path, "sender"))?;
    let receiver = as_party(t.field(1, "receiver")?, &join(&transfer_path, "receiver"))?;
    let direction = if sender == treasury {
        Direction::Withdrawal
    } else if receiver == treasury {
        Direction::Deposit
    } else {
        return Ok(None);
    };
    let amount = as_numeric(t.field(2, "amount")?, &join(&transfer_path, "amount"))?;
    let instrument = instrument(
        t.field(3, "instrumentId")?,
        &join(&transfer_path, "instrumentId"),
    )?;
    let meta_path = join(&transfer_path, "meta");
    let meta = metadata(t.field(7, "meta")?, &meta_path)?;
    let reason = meta_get(meta, REASON_KEY).map(str::to_string);
    let outcome = match &x.exercise_result {
        Some(result) => transfer_outcome(result)?,
        None => Outcome::Committed,
    };
    Ok(Some(Transfer {
        node_id: x.node_id,
        direction,
        sender: sender.to_string(),
        receiver: receiver.to_string(),
        instrument,
        amount: amount.to_string(),
        reason,
        outcome,
    }))
}

/// `InstrumentId { admin, id }`.
fn instrument(value: &Value, path: &str) -> ShapeResult<Instrument> {
    let r = RecordView::new(as_record(value, path)?, path);
    Ok(Instrument {
        admin: as_party(r.field(0, "admin")?, &join(path, "admin"))?.to_string(),
        id: as_text(r.field(1, "id")?, &join(path, "id"))?.to_string(),
    })
}

/// `Metadata { values : TextMap Text }`.
fn metadata<'a>(value: &'a Value, path: &str) -> ShapeResult<&'a TextMap> {
    let r = RecordView::new(as_record(value, path)?, path);
    as_text_map(r.field(0, "values")?, &join(path, "values"))
}

/// The text under `key` in a metadata map (the last one wins, as in a Daml TextMap
/// built by insertion).
pub fn meta_get<'a>(meta: &'a TextMap, key: &str) -> Option<&'a str> {
    meta.entries
        .iter()
        .rev()
        .find(|e| e.key == key)
        .and_then(|e| e.value.as_ref())
        .and_then(|v| match &v.sum {
            Some(Sum::Text(t)) => Some(t.as_str()),
            _ => None,
        })
}

/// `TransferInstructionResult { output, senderChangeCids, meta }`: which
/// constructor `output` holds.
fn transfer_outcome(result: &Value) -> ShapeResult<Outcome> {
    const PATH: &str = "TransferInstructionResult";
    let r = RecordView::new(as_record(result, PATH)?, PATH);
    let output = as_variant(r.field(0, "output")?, &join(PATH, "output"))?;
    Ok(match output.constructor.as_str() {
        "TransferInstructionResult_Completed" => Outcome::Completed,
        "TransferInstructionResult_Pending" => Outcome::Pending,
        "TransferInstructionResult_Failed" => Outcome::Failed,
        other => {
            return Err(ShapeError {
                path: join(PATH, "output"),
                problem: format!("unknown constructor \"{other}\""),
            });
        }
    })
}

/// The metadata of an exercise result: the field labelled `meta` (verbose),
/// or, without labels, the first top-level field shaped like
/// `Metadata { values : TextMap }` (possibly optional).
fn find_meta(result: &Value) -> Option<&TextMap> {
    let Some(Sum::Record(r)) = &result.sum else {
        return None;
    };
    if r.fields.iter().any(|f| !f.label.is_empty()) {
        r.fields
            .iter()
            .find(|f| f.label == "meta")
            .and_then(|f| f.value.as_ref())
            .and_then(as_meta)
    } else {
        r.fields
            .iter()
            .filter_map(|f| f.value.as_ref())
            .find_map(as_meta)
    }
}

/// `v` if it is (an optional of) `Metadata { values : TextMap }`.
fn as_meta(v: &Value) -> Option<&TextMap> {
    let v = unwrap_optional(v)?;
    let Some(Sum::Record(m)) = &v.sum else {
        return None;
    };
    match m.fields.as_slice() {
        [only] => match only.value.as_ref().map(|v| &v.sum) {
            Some(Some(Sum::TextMap(map))) => Some(map),
            _ => None,
        },
        _ => None,
    }
}

/// Deposits of a 1-step transfer: the treasury's holdings created inside the
/// exercise, summed per instrument.
fn one_step_deposits(
    x: &ExercisedEvent,
    meta: &TextMap,
    subtree: &[&event::Event],
    treasury: &str,
) -> ShapeResult<Vec<Transfer>> {
    let sender = meta_get(meta, SENDER_KEY)
        .map(str::to_string)
        .or_else(|| x.acting_parties.first().cloned())
        .unwrap_or_default();
    if sender == treasury {
        // The treasury's own outgoing transfers are read from its
        // TransferFactory_Transfer exercise.
        return Ok(Vec::new());
    }
    let mut totals: BTreeMap<Instrument, Vec<String>> = BTreeMap::new();
    for e in subtree {
        if node_id(e) > x.last_descendant_node_id {
            break;
        }
        if let event::Event::Created(c) = e
            && let Some(h) = treasury_holding(c, treasury)?
        {
            totals.entry(h.instrument).or_default().push(h.amount);
        }
    }
    // A transfer moves one instrument; a deposit is booked per exercise node.
    if totals.len() > 1 {
        return Err(ShapeError {
            path: x.choice.clone(),
            problem: format!(
                "a 1-step transfer created treasury holdings of {} instruments",
                totals.len()
            ),
        });
    }
    let reason = meta_get(meta, REASON_KEY).map(str::to_string);
    Ok(totals
        .into_iter()
        .map(|(instrument, amounts)| Transfer {
            node_id: x.node_id,
            direction: Direction::Deposit,
            sender: sender.clone(),
            receiver: treasury.to_string(),
            instrument,
            amount: sum_decimals(&amounts),
            reason: reason.clone(),
            outcome: Outcome::Committed,
        })
        .collect())
}

/// Exact sum of Daml Decimals (scale ≤ 37) as a decimal string.
pub fn sum_decimals(amounts: &[String]) -> String {
    if let [one] = amounts {
        return one.clone();
    }
    // Scale everything to the largest scale and add as i128 (38 digits fit).
    let scale = amounts
        .iter()
        .map(|a| a.split_once('.').map_or(0, |(_, f)| f.len()))
        .max()
        .unwrap_or(0);
    let mut total: i128 = 0;
    for a in amounts {
        let (neg, unsigned) = match a.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, a.strip_prefix('+').unwrap_or(a)),
        };
        let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let digits = format!("{int}{frac:0<scale$}");
        let v: i128 = digits.parse().unwrap_or(0);
        total += if neg { -v } else { v };
    }
    let neg = total < 0;
    let digits = format!("{:0>width$}", total.unsigned_abs(), width = scale + 1);
    let (int, frac) = digits.split_at(digits.len() - scale);
    let sign = if neg { "-" } else { "" };
    if scale == 0 {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

/// The `Holding` view of a created event, if it is one and the treasury owns it.
fn treasury_holding(c: &CreatedEvent, treasury: &str) -> ShapeResult<Option<HoldingCreated>> {
    const PATH: &str = "HoldingView";
    let Some(view) = c.interface_views.iter().find(|v| {
        names(v.interface_id.as_ref(), HOLDING_MODULE, "Holding") && v.view_value.is_some()
    }) else {
        return Ok(None);
    };
    let Some(record): Option<&Record> = view.view_value.as_ref() else {
        return Ok(None);
    };
    // HoldingView { owner, instrumentId, amount, lock, meta }
    let r = RecordView::new(record, PATH);
    let owner = as_party(r.field(0, "owner")?, &join(PATH, "owner"))?;
    if owner != treasury {
        return Ok(None);
    }
    let instrument = instrument(r.field(1, "instrumentId")?, &join(PATH, "instrumentId"))?;
    let amount = as_numeric(r.field(2, "amount")?, &join(PATH, "amount"))?;
    Ok(Some(HoldingCreated {
        contract_id: c.contract_id.clone(),
        owner: owner.to_string(),
        instrument,
        amount: amount.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::build::*;
    // Transactions are built as Canton's messages (every field available),
    // then encoded and decoded into tx-ingest's view, as the stream does.
    use canton_proto::ledger::{
        CreatedEvent, Event, ExercisedEvent, InterfaceView, TextMap, Transaction, event,
    };
    use prost::Message as _;

    /// [`super::parse_transaction`] on `tx` as the stream decodes it.
    fn parse_transaction(
        tx: &Transaction,
        treasury: &str,
    ) -> Result<ParsedTransaction, ParseError> {
        let view = crate::view::Transaction::decode(tx.encode_to_vec().as_slice())
            .expect("a Canton transaction decodes as tx-ingest's view");
        super::parse_transaction(&view, treasury)
    }

    const TREASURY: &str = "treasury::1220aa";
    const CUSTOMER: &str = "alice::1220bb";
    const DSO: &str = "dso::1220cc";

    fn ident(module: &str, entity: &str) -> Identifier {
        Identifier {
            package_id: "55ba4deb0ad4662c4168b39859738a0e91388d252286480c7331b3f71a517281".into(),
            module_name: module.into(),
            entity_name: entity.into(),
        }
    }

    fn meta(labelled: bool, entries: &[(&str, &str)]) -> Value {
        let values: Vec<(&str, Value)> = entries.iter().map(|(k, v)| (*k, text(v))).collect();
        record_value(labelled, vec![("values", text_map(&values))])
    }

    fn instrument_value(labelled: bool) -> Value {
        record_value(
            labelled,
            vec![("admin", party(DSO)), ("id", text("Amulet"))],
        )
    }

    /// The choice argument of TransferFactory_Transfer, in declaration order.
    fn transfer_arg(
        labelled: bool,
        sender: &str,
        receiver: &str,
        amount: &str,
        reason: Option<&str>,
    ) -> Value {
        let mut meta_entries = vec![("splice.lfdecentralizedtrust.org/note", "x")];
        if let Some(r) = reason {
            meta_entries.push((REASON_KEY, r));
        }
        let transfer = record_value(
            labelled,
            vec![
                ("sender", party(sender)),
                ("receiver", party(receiver)),
                ("amount", numeric(amount)),
                ("instrumentId", instrument_value(labelled)),
                ("requestedAt", timestamp(1_700_000_000_000_000)),
                ("executeBefore", timestamp(1_700_086_400_000_000)),
                ("inputHoldingCids", list(vec![contract_id("00in1")])),
                ("meta", meta(labelled, &meta_entries)),
            ],
        );
        let extra_args = record_value(
            labelled,
            vec![
                (
                    "context",
                    record_value(labelled, vec![("values", text_map(&[]))]),
                ),
                ("meta", meta(labelled, &[])),
            ],
        );
        record_value(
            labelled,
            vec![
                ("expectedAdmin", party(DSO)),
                ("transfer", transfer),
                ("extraArgs", extra_args),
            ],
        )
    }

    fn result(labelled: bool, constructor: &str, payload: Value) -> Value {
        record_value(
            labelled,
            vec![
                ("output", variant(constructor, payload)),
                ("senderChangeCids", list(vec![])),
                ("meta", meta(labelled, &[])),
            ],
        )
    }

    fn exercise(node_id: i32, last: i32, choice: &str, arg: Value, result: Option<Value>) -> Event {
        Event {
            event: Some(event::Event::Exercised(ExercisedEvent {
                offset: 7,
                node_id,
                contract_id: format!("00factory{node_id}"),
                template_id: Some(ident(
                    "Splice.ExternalPartyAmuletRules",
                    "ExternalPartyAmuletRules",
                )),
                interface_id: Some(ident(TRANSFER_INSTRUCTION_MODULE, "TransferFactory")),
                choice: choice.into(),
                choice_argument: Some(arg),
                acting_parties: vec![CUSTOMER.into()],
                consuming: false,
                witness_parties: vec![TREASURY.into()],
                last_descendant_node_id: last,
                exercise_result: result,
                package_name: "splice-amulet".into(),
                implemented_interfaces: vec![],
                acs_delta: false,
            })),
        }
    }

    fn holding(node_id: i32, cid: &str, owner: &str, amount: &str, labelled: bool) -> Event {
        Event {
            event: Some(event::Event::Created(CreatedEvent {
                offset: 7,
                node_id,
                contract_id: cid.into(),
                template_id: Some(ident("Splice.Amulet", "Amulet")),
                interface_views: vec![InterfaceView {
                    interface_id: Some(ident(HOLDING_MODULE, "Holding")),
                    view_status: None,
                    view_value: Some(record(
                        labelled,
                        vec![
                            ("owner", party(owner)),
                            ("instrumentId", instrument_value(labelled)),
                            ("amount", numeric(amount)),
                            ("lock", optional(None)),
                            ("meta", meta(labelled, &[])),
                        ],
                    )),
                }],
                ..Default::default()
            })),
        }
    }

    fn consume(node_id: i32, cid: &str) -> Event {
        Event {
            event: Some(event::Event::Exercised(ExercisedEvent {
                node_id,
                contract_id: cid.into(),
                choice: "Archive".into(),
                consuming: true,
                last_descendant_node_id: node_id,
                ..Default::default()
            })),
        }
    }

    fn tx(events: Vec<Event>) -> Transaction {
        Transaction {
            update_id: "1220upd".into(),
            offset: 7,
            synchronizer_id: "global::1220dd".into(),
            events,
            ..Default::default()
        }
    }

    #[test]
    fn deposit_by_reason_positional_and_labelled() {
        for labelled in [false, true] {
            let t = tx(vec![
                exercise(
                    0,
                    1,
                    TRANSFER_CHOICE,
                    transfer_arg(
                        labelled,
                        CUSTOMER,
                        TREASURY,
                        "200.0000000000",
                        Some("abc123"),
                    ),
                    Some(result(
                        labelled,
                        "TransferInstructionResult_Completed",
                        record_value(
                            labelled,
                            vec![("receiverHoldingCids", list(vec![contract_id("00h1")]))],
                        ),
                    )),
                ),
                holding(1, "00h1", TREASURY, "200.0000000000", labelled),
            ]);
            let p = parse_transaction(&t, TREASURY).unwrap();
            assert_eq!(
                p.transfers,
                vec![Transfer {
                    node_id: 0,
                    direction: Direction::Deposit,
                    sender: CUSTOMER.into(),
                    receiver: TREASURY.into(),
                    instrument: Instrument {
                        admin: DSO.into(),
                        id: "Amulet".into()
                    },
                    amount: "200.0000000000".into(),
                    reason: Some("abc123".into()),
                    outcome: Outcome::Completed,
                }],
                "labelled={labelled}"
            );
            assert_eq!(p.holdings_created.len(), 1);
            assert_eq!(p.holdings_created[0].contract_id, "00h1");
            assert_eq!(p.holdings_created[0].amount, "200.0000000000");
        }
    }

    #[test]
    fn labelled_fields_are_found_out_of_order() {
        // A verbose record is read by label, whatever the order on the wire.
        let mut arg = transfer_arg(true, CUSTOMER, TREASURY, "5.0000000000", Some("acc"));
        if let Some(Sum::Record(r)) = &mut arg.sum {
            r.fields.reverse();
        }
        let t = tx(vec![exercise(0, 0, TRANSFER_CHOICE, arg, None)]);
        let p = parse_transaction(&t, TREASURY).unwrap();
        assert_eq!(p.transfers[0].reason.as_deref(), Some("acc"));
        assert_eq!(p.transfers[0].outcome, Outcome::Committed);
    }

    #[test]
    fn withdrawal_from_treasury_with_change_and_spent_inputs() {
        let t = tx(vec![
            exercise(
                0,
                3,
                TRANSFER_CHOICE,
                transfer_arg(false, TREASURY, CUSTOMER, "100.0000000000", Some("wid123")),
                Some(result(
                    false,
                    "TransferInstructionResult_Completed",
                    record_value(false, vec![("receiverHoldingCids", list(vec![]))]),
                )),
            ),
            consume(1, "00in1"),
            holding(2, "00rcv", CUSTOMER, "100.0000000000", false),
            holding(3, "00change", TREASURY, "5.0000000000", false),
        ]);
        let p = parse_transaction(&t, TREASURY).unwrap();
        assert_eq!(p.transfers.len(), 1);
        let w = &p.transfers[0];
        assert_eq!(w.direction, Direction::Withdrawal);
        assert_eq!(w.reason.as_deref(), Some("wid123"));
        assert_eq!(w.receiver, CUSTOMER);
        assert_eq!(w.amount, "100.0000000000");
        assert_eq!(p.consumed, vec!["00in1".to_string()]);
        // Only the treasury's change is a treasury holding.
        assert_eq!(
            p.holdings_created
                .iter()
                .map(|h| h.contract_id.as_str())
                .collect::<Vec<_>>(),
            ["00change"]
        );
    }

    #[test]
    fn outcomes_are_read_from_the_result() {
        for (constructor, outcome) in [
            ("TransferInstructionResult_Pending", Outcome::Pending),
            ("TransferInstructionResult_Failed", Outcome::Failed),
        ] {
            let t = tx(vec![exercise(
                0,
                0,
                TRANSFER_CHOICE,
                transfer_arg(true, TREASURY, CUSTOMER, "1.0", Some("w")),
                Some(result(true, constructor, unit())),
            )]);
            assert_eq!(
                parse_transaction(&t, TREASURY).unwrap().transfers[0].outcome,
                outcome
            );
        }
        let t = tx(vec![exercise(
            0,
            0,
            TRANSFER_CHOICE,
            transfer_arg(true, TREASURY, CUSTOMER, "1.0", Some("w")),
            Some(result(true, "Something_Else", unit())),
        )]);
        let e = parse_transaction(&t, TREASURY).unwrap_err();
        assert_eq!(
            e.to_string(),
            "event node 0: TransferInstructionResult.output: unknown constructor \"Something_Else\""
        );
    }

    #[test]
    fn transfers_not_touching_the_treasury_are_ignored() {
        let t = tx(vec![exercise(
            0,
            0,
            TRANSFER_CHOICE,
            transfer_arg(false, CUSTOMER, "bob::1220ee", "1.0", Some("x")),
            None,
        )]);
        assert!(
            parse_transaction(&t, TREASURY)
                .unwrap()
                .transfers
                .is_empty()
        );
    }

    #[test]
    fn missing_reason_is_none_and_bad_shapes_fail_with_the_path() {
        let t = tx(vec![exercise(
            4,
            4,
            TRANSFER_CHOICE,
            transfer_arg(false, CUSTOMER, TREASURY, "1.0", None),
            None,
        )]);
        assert_eq!(
            parse_transaction(&t, TREASURY).unwrap().transfers[0].reason,
            None
        );

        // The sender given as text instead of a party.
        let mut arg = transfer_arg(false, CUSTOMER, TREASURY, "1.0", None);
        if let Some(Sum::Record(r)) = &mut arg.sum
            && let Some(Sum::Record(t)) = r.fields[1].value.as_mut().and_then(|v| v.sum.as_mut())
        {
            t.fields[0].value = Some(text(CUSTOMER));
        }
        let e = parse_transaction(
            &tx(vec![exercise(4, 4, TRANSFER_CHOICE, arg, None)]),
            TREASURY,
        )
        .unwrap_err();
        assert_eq!(e.node_id, 4);
        assert_eq!(
            e.to_string(),
            "event node 4: TransferFactory_Transfer.transfer.sender: expected a party, found a text"
        );

        // A positional record too short to hold `meta`.
        let mut arg = transfer_arg(false, CUSTOMER, TREASURY, "1.0", None);
        if let Some(Sum::Record(r)) = &mut arg.sum
            && let Some(Sum::Record(t)) = r.fields[1].value.as_mut().and_then(|v| v.sum.as_mut())
        {
            t.fields.truncate(7);
        }
        let e = parse_transaction(
            &tx(vec![exercise(0, 0, TRANSFER_CHOICE, arg, None)]),
            TREASURY,
        )
        .unwrap_err();
        assert_eq!(e.shape.path, "TransferFactory_Transfer.transfer.meta");
    }

    #[test]
    fn one_step_transfer_by_tx_kind_sums_treasury_holdings_in_the_subtree() {
        // TransferPreapproval_Send-like exercise: no TransferFactory, the
        // result's meta marks a transfer; two treasury holdings inside, one
        // holding for someone else, and a treasury holding after the subtree.
        let res = record_value(
            true,
            vec![
                ("result", record_value(true, vec![("round", numeric("1"))])),
                (
                    "meta",
                    optional(Some(meta(
                        true,
                        &[
                            (TX_KIND_KEY, "transfer"),
                            (REASON_KEY, "acc9"),
                            (SENDER_KEY, CUSTOMER),
                        ],
                    ))),
                ),
            ],
        );
        let mut send = exercise(
            0,
            3,
            "TransferPreapproval_Send",
            record_value(true, vec![]),
            Some(res),
        );
        if let Some(event::Event::Exercised(x)) = &mut send.event {
            x.interface_id = None;
        }
        let t = tx(vec![
            send,
            holding(1, "00a", TREASURY, "1.5", true),
            holding(2, "00b", TREASURY, "2.25", true),
            holding(3, "00c", CUSTOMER, "9.0", true),
            holding(4, "00d", TREASURY, "7.0", true),
        ]);
        let p = parse_transaction(&t, TREASURY).unwrap();
        assert_eq!(p.transfers.len(), 1);
        let d = &p.transfers[0];
        assert_eq!(d.direction, Direction::Deposit);
        assert_eq!(d.amount, "3.75");
        assert_eq!(d.reason.as_deref(), Some("acc9"));
        assert_eq!(d.sender, CUSTOMER);
        assert_eq!(p.holdings_created.len(), 3);
    }

    #[test]
    fn nested_transfer_is_not_counted_twice() {
        // A TransferFactory_Transfer whose subtree contains a tx-kind transfer
        // (how CC executes a direct transfer): one deposit only.
        let inner_res = record_value(
            true,
            vec![(
                "meta",
                meta(true, &[(TX_KIND_KEY, "transfer"), (REASON_KEY, "acc")]),
            )],
        );
        let mut inner = exercise(
            1,
            2,
            "TransferPreapproval_Send",
            record_value(true, vec![]),
            Some(inner_res),
        );
        if let Some(event::Event::Exercised(x)) = &mut inner.event {
            x.interface_id = None;
        }
        let t = tx(vec![
            exercise(
                0,
                2,
                TRANSFER_CHOICE,
                transfer_arg(true, CUSTOMER, TREASURY, "10.0", Some("acc")),
                None,
            ),
            inner,
            holding(2, "00h", TREASURY, "10.0", true),
        ]);
        let p = parse_transaction(&t, TREASURY).unwrap();
        assert_eq!(p.transfers.len(), 1);
        assert_eq!(p.transfers[0].amount, "10.0");
    }

    #[test]
    fn decimal_sums_are_exact() {
        let s = |v: &[&str]| sum_decimals(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(s(&["0.1", "0.2"]), "0.3");
        assert_eq!(s(&["100.0000000001", "0.9999999999"]), "101.0000000000");
        assert_eq!(s(&["-1.5", "1"]), "-0.5");
        assert_eq!(s(&["3"]), "3");
        assert_eq!(s(&["2", "3"]), "5");
    }

    #[test]
    fn meta_lookup_takes_texts_only() {
        let m = TextMap {
            entries: vec![canton_proto::ledger::text_map::Entry {
                key: REASON_KEY.into(),
                value: Some(party("p")),
            }],
        };
        assert_eq!(meta_get(&m, REASON_KEY), None);
    }
}
