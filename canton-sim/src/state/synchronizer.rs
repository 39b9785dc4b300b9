//! The synchronizer's history: the append-only list of sequenced updates
//! (update id, record time in µs, what happened) that every participant
//! re-reads after a restore. Lives under `<state-dir>/synchronizer/` and is
//! never touched by backup or restore.

use crate::amount::format_amount;
use crate::persistence::{AppendLog, read_json, write_json};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A token instrument (`InstrumentId` of the token standard).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Instrument {
    /// The token admin party.
    pub admin: String,
    /// The instrument id, e.g. `Amulet`.
    pub id: String,
}

/// A holding contract consumed or created by a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldingRef {
    /// Contract id.
    pub cid: String,
    /// Decimal amount with 10 fractional digits.
    pub amount: String,
}

/// What a sequenced update did. Contract ids are fixed when it is sequenced;
/// the ledger API events are rendered from this on demand (see `traffic`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum UpdateBody {
    /// A customer sends tokens to the treasury; `account` goes into the reason metadata.
    #[serde(rename_all = "camelCase")]
    Deposit {
        /// Sending customer party (hosted elsewhere).
        customer: String,
        /// Deposit account id (the memo).
        account: String,
        /// The customer's holding spent by the transfer.
        input: HoldingRef,
        /// The treasury's new holding.
        holding: HoldingRef,
        /// Instrument transferred.
        instrument: Instrument,
        /// Transfer factory contract exercised.
        factory_cid: String,
        /// `Transfer.requestedAt`, µs.
        requested_at_us: i64,
    },
    /// The treasury sends tokens to a receiver; `withdrawal_id` is the reason.
    #[serde(rename_all = "camelCase")]
    Withdrawal {
        /// Withdrawal id (the memo).
        withdrawal_id: String,
        /// Receiving party.
        receiver: String,
        /// Amount transferred.
        amount: String,
        /// Instrument transferred.
        instrument: Instrument,
        /// Treasury holdings spent (archived).
        inputs: Vec<HoldingRef>,
        /// The receiver's new holding.
        receiver_holding: HoldingRef,
        /// The treasury's change holding, if any.
        change: Option<HoldingRef>,
        /// Transfer factory contract exercised.
        factory_cid: String,
        /// `Transfer.requestedAt`, µs.
        requested_at_us: i64,
        /// `Transfer.executeBefore`, µs.
        execute_before_us: i64,
        /// The submission's exclusive bound on the record time, µs.
        trec_tgt_us: i64,
    },
    /// A transfer between two other parties of the participant; the treasury is not involved.
    #[serde(rename_all = "camelCase")]
    Noise {
        /// Sender (a local party other than the treasury).
        sender: String,
        /// Receiver (a local party other than the treasury).
        receiver: String,
        /// Sender's holding spent.
        input: HoldingRef,
        /// Receiver's new holding.
        output: HoldingRef,
        /// Instrument transferred.
        instrument: Instrument,
        /// Transfer factory contract exercised.
        factory_cid: String,
        /// `Transfer.requestedAt`, µs.
        requested_at_us: i64,
    },
}

impl UpdateBody {
    /// `deposit`, `withdrawal` or `noise`.
    pub fn kind(&self) -> &'static str {
        match self {
            UpdateBody::Deposit { .. } => "deposit",
            UpdateBody::Withdrawal { .. } => "withdrawal",
            UpdateBody::Noise { .. } => "noise",
        }
    }

    /// The deposit account or withdrawal id; empty for noise.
    pub fn reference(&self) -> &str {
        match self {
            UpdateBody::Deposit { account, .. } => account,
            UpdateBody::Withdrawal { withdrawal_id, .. } => withdrawal_id,
            UpdateBody::Noise { .. } => "",
        }
    }
}

/// One update in the synchronizer's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequencedUpdate {
    /// Position in the history (0-based).
    #[serde(rename = "seq")]
    pub seq: u64,
    /// Update id.
    #[serde(rename = "id")]
    pub update_id: String,
    /// Record time, µs since the epoch.
    #[serde(rename = "rt")]
    pub record_time_us: i64,
    /// What happened.
    pub body: UpdateBody,
}

/// Fixed facts about the simulated network, written on first start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SynchronizerMeta {
    /// Logical synchronizer id of the synchronizer with the traffic.
    pub synchronizer_id: String,
    /// Further connected synchronizers (no traffic).
    pub extra_synchronizers: Vec<String>,
    /// The exchange's treasury party.
    pub treasury_party: String,
    /// The default instrument's admin (the DSO party).
    pub dso_party: String,
    /// When the history was created, µs.
    pub created_at_us: i64,
}

/// The virtual clock's position, persisted so it survives restarts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClockFile {
    /// Virtual now, µs.
    pub virtual_now_us: i64,
}

/// The synchronizer: meta, history and the treasury's active holdings.
#[derive(Debug)]
pub struct Synchronizer {
    dir: PathBuf,
    /// Fixed facts.
    pub meta: SynchronizerMeta,
    updates: Vec<Arc<SequencedUpdate>>,
    by_id: HashMap<String, usize>,
    log: AppendLog,
    /// Treasury holdings not yet spent, in creation order: (creation seq, holding, instrument).
    treasury_holdings: BTreeMap<(u64, u32), (HoldingRef, Instrument)>,
    /// Where each unspent treasury holding sits in `treasury_holdings`.
    holding_keys: HashMap<String, (u64, u32)>,
    /// Sum of the unspent treasury holdings per instrument, 10^-10 units.
    balances: HashMap<Instrument, i128>,
}

/// Directory name under the state dir.
pub const DIR: &str = "synchronizer";

impl Synchronizer {
    /// Creates a new history (first start) or loads the existing one.
    pub fn open_or_create(
        state_dir: &Path,
        fresh_meta: impl FnOnce() -> SynchronizerMeta,
    ) -> std::io::Result<Synchronizer> {
        let dir = state_dir.join(DIR);
        std::fs::create_dir_all(&dir)?;
        let meta_path = dir.join("meta.json");
        let meta = if meta_path.exists() {
            read_json(&meta_path)?
        } else {
            let m = fresh_meta();
            write_json(&meta_path, &m)?;
            m
        };
        let (log, lines) = AppendLog::open(&dir.join("updates.ndjson"))?;
        let mut sync = Synchronizer {
            dir,
            meta,
            updates: Vec::with_capacity(lines.len()),
            by_id: HashMap::with_capacity(lines.len()),
            log,
            treasury_holdings: BTreeMap::new(),
            holding_keys: HashMap::new(),
            balances: HashMap::new(),
        };
        let path = sync.log.path().to_path_buf();
        for (i, u) in parse_lines(&lines, &path)?.into_iter().enumerate() {
            if u.seq != i as u64 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{} line {}: sequence number {} out of order",
                        path.display(),
                        i + 1,
                        u.seq
                    ),
                ));
            }
            sync.index(u);
        }
        Ok(sync)
    }

    fn add_holding(&mut self, key: (u64, u32), h: &HoldingRef, instrument: &Instrument) {
        let units = crate::amount::parse_amount(&h.amount).unwrap_or(0);
        *self.balances.entry(instrument.clone()).or_default() += units;
        self.holding_keys.insert(h.cid.clone(), key);
        self.treasury_holdings
            .insert(key, (h.clone(), instrument.clone()));
    }

    fn spend_holding(&mut self, cid: &str) {
        if let Some(key) = self.holding_keys.remove(cid)
            && let Some((h, instrument)) = self.treasury_holdings.remove(&key)
        {
            let units = crate::amount::parse_amount(&h.amount).unwrap_or(0);
            *self.balances.entry(instrument).or_default() -= units;
        }
    }

    fn index(&mut self, u: SequencedUpdate) {
        let treasury = self.meta.treasury_party.clone();
        match &u.body {
            UpdateBody::Deposit {
                holding,
                instrument,
                ..
            } => self.add_holding((u.seq, 0), holding, instrument),
            UpdateBody::Withdrawal {
                inputs,
                change,
                instrument,
                receiver,
                receiver_holding,
                ..
            } => {
                for input in inputs {
                    self.spend_holding(&input.cid);
                }
                if let Some(c) = change {
                    self.add_holding((u.seq, 0), c, instrument);
                }
                if *receiver == treasury {
                    self.add_holding((u.seq, 1), receiver_holding, instrument);
                }
            }
            UpdateBody::Noise { .. } => {}
        }
        self.by_id.insert(u.update_id.clone(), self.updates.len());
        self.updates.push(Arc::new(u));
    }

    /// Appends an update to the history (buffered; see [`Synchronizer::flush`]).
    pub fn append(&mut self, u: SequencedUpdate) -> std::io::Result<Arc<SequencedUpdate>> {
        let line = serde_json::to_string(&u).map_err(std::io::Error::other)?;
        self.log.append(&line)?;
        self.index(u);
        Ok(self.updates[self.updates.len() - 1].clone())
    }

    /// Hands appended updates to the OS.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.log.flush()
    }

    /// Number of sequenced updates.
    pub fn len(&self) -> usize {
        self.updates.len()
    }

    /// True when nothing was sequenced yet.
    pub fn is_empty(&self) -> bool {
        self.updates.is_empty()
    }

    /// The update at position `seq`.
    pub fn get(&self, seq: usize) -> Option<&Arc<SequencedUpdate>> {
        self.updates.get(seq)
    }

    /// Position of the update with id `update_id`.
    pub fn position(&self, update_id: &str) -> Option<usize> {
        self.by_id.get(update_id).copied()
    }

    /// All updates in order.
    pub fn updates(&self) -> &[Arc<SequencedUpdate>] {
        &self.updates
    }

    /// Record time of the last update, µs.
    pub fn last_record_time(&self) -> Option<i64> {
        self.updates.last().map(|u| u.record_time_us)
    }

    /// Number of updates whose record time is at or before `t_us`
    /// (record times never decrease along the history).
    pub fn count_at_or_before(&self, t_us: i64) -> usize {
        self.updates.partition_point(|u| u.record_time_us <= t_us)
    }

    /// The treasury's oldest unspent holdings of `instrument` that together
    /// cover `amount` units, with their total; `None` when the treasury holds less.
    pub fn select_treasury_inputs(
        &self,
        instrument: &Instrument,
        amount: i128,
    ) -> Option<(Vec<HoldingRef>, i128)> {
        if self.treasury_balance_units(instrument) < amount {
            return None;
        }
        let mut inputs = Vec::new();
        let mut total = 0i128;
        for (h, i) in self.treasury_holdings.values() {
            if total >= amount {
                break;
            }
            if i == instrument {
                total += crate::amount::parse_amount(&h.amount).unwrap_or(0);
                inputs.push(h.clone());
            }
        }
        (total >= amount).then_some((inputs, total))
    }

    /// Total of the treasury's unspent holdings of `instrument`, 10^-10 units.
    pub fn treasury_balance_units(&self, instrument: &Instrument) -> i128 {
        self.balances.get(instrument).copied().unwrap_or(0)
    }

    /// Total of the treasury's unspent holdings of `instrument`, as a decimal string.
    pub fn treasury_balance(&self, instrument: &Instrument) -> String {
        format_amount(self.treasury_balance_units(instrument))
    }

    /// Reads the persisted virtual clock, if any.
    pub fn load_clock(&self) -> std::io::Result<Option<ClockFile>> {
        let p = self.dir.join("clock.json");
        if p.exists() {
            read_json(&p).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Persists the virtual clock.
    pub fn save_clock(&self, clock: ClockFile) -> std::io::Result<()> {
        write_json(&self.dir.join("clock.json"), &clock)
    }
}

/// Parses history lines on every core (start-up time is dominated by this).
fn parse_lines(lines: &[String], path: &Path) -> std::io::Result<Vec<SequencedUpdate>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let chunk = lines.len().div_ceil(threads).max(1);
    let parts: Vec<Result<Vec<SequencedUpdate>, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = lines
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                scope.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(j, l)| {
                            serde_json::from_str::<SequencedUpdate>(l)
                                .map_err(|e| format!("line {}: {e}", c * chunk + j + 1))
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("parser thread panicked".into()))
            })
            .collect()
    });
    let mut out = Vec::with_capacity(lines.len());
    for part in parts {
        out.extend(part.map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} {e}", path.display()),
            )
        })?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> SynchronizerMeta {
        SynchronizerMeta {
            synchronizer_id: "s::1220aa".into(),
            extra_synchronizers: vec![],
            treasury_party: "treasury::1220bb".into(),
            dso_party: "DSO::1220cc".into(),
            created_at_us: 0,
        }
    }

    fn deposit(seq: u64, rt: i64, cid: &str) -> SequencedUpdate {
        let instrument = Instrument {
            admin: "DSO::1220cc".into(),
            id: "Amulet".into(),
        };
        SequencedUpdate {
            seq,
            update_id: format!("u{seq}"),
            record_time_us: rt,
            body: UpdateBody::Deposit {
                customer: "c::1".into(),
                account: "acc".into(),
                input: HoldingRef {
                    cid: format!("in{seq}"),
                    amount: "1.0000000000".into(),
                },
                holding: HoldingRef {
                    cid: cid.into(),
                    amount: "1.0000000000".into(),
                },
                instrument,
                factory_cid: "f".into(),
                requested_at_us: rt,
            },
        }
    }

    #[test]
    fn history_survives_reopen_and_indexes() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Synchronizer::open_or_create(dir.path(), meta).unwrap();
            s.append(deposit(0, 10, "h0")).unwrap();
            s.append(deposit(1, 10, "h1")).unwrap();
            s.append(deposit(2, 12, "h2")).unwrap();
            s.flush().unwrap();
        }
        let s = Synchronizer::open_or_create(dir.path(), || panic!("meta exists")).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s.position("u1"), Some(1));
        assert_eq!(s.count_at_or_before(9), 0);
        assert_eq!(s.count_at_or_before(10), 2);
        assert_eq!(s.count_at_or_before(12), 3);
        let inst = Instrument {
            admin: "DSO::1220cc".into(),
            id: "Amulet".into(),
        };
        assert_eq!(s.treasury_balance(&inst), "3.0000000000");
        let (inputs, total) = s.select_treasury_inputs(&inst, 15_000_000_000).unwrap();
        assert_eq!(
            inputs.iter().map(|h| h.cid.as_str()).collect::<Vec<_>>(),
            ["h0", "h1"]
        );
        assert_eq!(total, 20_000_000_000);
        assert!(s.select_treasury_inputs(&inst, 40_000_000_000).is_none());
    }
}
