//! The synchronizer's history: the append-only list of sequenced updates
//! (update id, record time in µs, what happened) that every participant
//! re-reads after a restore. Lives under `<state-dir>/synchronizer/` and is
//! never touched by backup or restore.

use crate::amount::format_amount;
use crate::ledger::encoded::EncodedCache;
use crate::persistence::{AppendLog, read_json, write_json};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

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

/// One update in the synchronizer's history. Loaded from disk, only its
/// position, id and record time are read at start-up; the body is parsed the
/// first time it is needed (start-up time is dominated by parsing).
#[derive(Debug)]
pub struct SequencedUpdate {
    /// Position in the history (0-based).
    pub seq: u64,
    /// Update id.
    pub update_id: String,
    /// Record time, µs since the epoch.
    pub record_time_us: i64,
    /// The stored line, while the body is not parsed yet.
    raw: Option<Box<str>>,
    body: OnceLock<UpdateBody>,
    /// Encoded GetUpdates responses (memory only, never persisted; see
    /// `ledger::encoded`).
    pub encoded: EncodedCache,
}

/// The on-disk form of one history line.
#[derive(Serialize, Deserialize)]
struct Line<S, B> {
    seq: u64,
    id: S,
    rt: i64,
    body: B,
}

/// Just the body of a history line.
#[derive(Deserialize)]
struct BodyOnly {
    body: UpdateBody,
}

impl SequencedUpdate {
    /// A new update.
    pub fn new(seq: u64, update_id: String, record_time_us: i64, body: UpdateBody) -> Self {
        SequencedUpdate {
            seq,
            update_id,
            record_time_us,
            raw: None,
            body: OnceLock::from(body),
            encoded: EncodedCache::default(),
        }
    }

    /// Reads a stored line: the header by a quick scan of the fixed prefix
    /// this module writes, the body later. Anything else is parsed in full.
    fn from_line(line: String) -> Result<Self, String> {
        if let Some((seq, id, rt)) = scan_header(&line) {
            return Ok(SequencedUpdate {
                seq,
                update_id: id.to_string(),
                record_time_us: rt,
                raw: Some(line.into_boxed_str()),
                body: OnceLock::new(),
                encoded: EncodedCache::default(),
            });
        }
        let l: Line<String, UpdateBody> = serde_json::from_str(&line).map_err(|e| e.to_string())?;
        Ok(SequencedUpdate::new(l.seq, l.id, l.rt, l.body))
    }

    /// What happened.
    pub fn body(&self) -> &UpdateBody {
        self.body.get_or_init(|| {
            let raw = self.raw.as_deref().unwrap_or_default();
            match serde_json::from_str::<BodyOnly>(raw) {
                Ok(b) => b.body,
                Err(e) => {
                    // Only a hand-edited history gets here; show it as noise
                    // between nobody rather than take the node down.
                    tracing::error!("history line {} is unreadable: {e}", self.seq + 1);
                    UpdateBody::Noise {
                        sender: String::new(),
                        receiver: String::new(),
                        input: HoldingRef {
                            cid: String::new(),
                            amount: "0.0000000000".into(),
                        },
                        output: HoldingRef {
                            cid: String::new(),
                            amount: "0.0000000000".into(),
                        },
                        instrument: Instrument {
                            admin: String::new(),
                            id: String::new(),
                        },
                        factory_cid: String::new(),
                        requested_at_us: self.record_time_us,
                    }
                }
            }
        })
    }

    fn to_line(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(&Line {
            seq: self.seq,
            id: self.update_id.as_str(),
            rt: self.record_time_us,
            body: self.body(),
        })
    }
}

impl PartialEq for SequencedUpdate {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq
            && self.update_id == other.update_id
            && self.record_time_us == other.record_time_us
            && self.body() == other.body()
    }
}

/// `{"seq":N,"id":"X","rt":N,"body":` → (N, X, N).
fn scan_header(line: &str) -> Option<(u64, &str, i64)> {
    let rest = line.strip_prefix("{\"seq\":")?;
    let (seq, rest) = rest.split_once(',')?;
    let rest = rest.strip_prefix("\"id\":\"")?;
    let (id, rest) = rest.split_once('"')?;
    let rest = rest.strip_prefix(",\"rt\":")?;
    let (rt, rest) = rest.split_once(',')?;
    rest.starts_with("\"body\":{").then_some(())?;
    if id.contains('\\') {
        return None;
    }
    Some((seq.parse().ok()?, id, rt.parse().ok()?))
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
    /// The treasury's unspent holdings, built on first use.
    treasury: Mutex<Option<TreasuryIndex>>,
}

/// The treasury's unspent holdings and balances.
#[derive(Debug, Default)]
struct TreasuryIndex {
    /// In creation order: (creation seq, node) -> (holding, instrument).
    holdings: BTreeMap<(u64, u32), (HoldingRef, Instrument)>,
    /// Where each unspent holding sits in `holdings`.
    keys: HashMap<String, (u64, u32)>,
    /// Sum per instrument, 10^-10 units.
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
            treasury: Mutex::new(None),
        };
        let path = sync.log.path().to_path_buf();
        for (i, line) in lines.into_iter().enumerate() {
            let u = SequencedUpdate::from_line(line).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} line {}: {e}", path.display(), i + 1),
                )
            })?;
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
            sync.by_id.insert(u.update_id.clone(), sync.updates.len());
            sync.updates.push(Arc::new(u));
        }
        Ok(sync)
    }

    fn treasury_index(&self) -> std::sync::MutexGuard<'_, Option<TreasuryIndex>> {
        let mut g = self.treasury.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            let mut idx = TreasuryIndex::default();
            for u in &self.updates {
                idx.apply(u, &self.meta.treasury_party);
            }
            *g = Some(idx);
        }
        g
    }

    /// Appends an update to the history (buffered; see [`Synchronizer::flush`]).
    pub fn append(&mut self, u: SequencedUpdate) -> std::io::Result<Arc<SequencedUpdate>> {
        let line = u.to_line().map_err(std::io::Error::other)?;
        self.log.append(&line)?;
        if let Some(idx) = self
            .treasury
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            idx.apply(&u, &self.meta.treasury_party);
        }
        let u = Arc::new(u);
        self.by_id.insert(u.update_id.clone(), self.updates.len());
        self.updates.push(u.clone());
        Ok(u)
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
        let g = self.treasury_index();
        let idx = g.as_ref()?;
        if idx.balances.get(instrument).copied().unwrap_or(0) < amount {
            return None;
        }
        let mut inputs = Vec::new();
        let mut total = 0i128;
        for (h, i) in idx.holdings.values() {
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
        self.treasury_index()
            .as_ref()
            .and_then(|idx| idx.balances.get(instrument).copied())
            .unwrap_or(0)
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

impl TreasuryIndex {
    fn add(&mut self, key: (u64, u32), h: &HoldingRef, instrument: &Instrument) {
        let units = crate::amount::parse_amount(&h.amount).unwrap_or(0);
        *self.balances.entry(instrument.clone()).or_default() += units;
        self.keys.insert(h.cid.clone(), key);
        self.holdings.insert(key, (h.clone(), instrument.clone()));
    }

    fn spend(&mut self, cid: &str) {
        if let Some(key) = self.keys.remove(cid)
            && let Some((h, instrument)) = self.holdings.remove(&key)
        {
            let units = crate::amount::parse_amount(&h.amount).unwrap_or(0);
            *self.balances.entry(instrument).or_default() -= units;
        }
    }

    fn apply(&mut self, u: &SequencedUpdate, treasury: &str) {
        match u.body() {
            UpdateBody::Deposit {
                holding,
                instrument,
                ..
            } => self.add((u.seq, 0), holding, instrument),
            UpdateBody::Withdrawal {
                inputs,
                change,
                instrument,
                receiver,
                receiver_holding,
                ..
            } => {
                for input in inputs {
                    self.spend(&input.cid);
                }
                if let Some(c) = change {
                    self.add((u.seq, 0), c, instrument);
                }
                if receiver == treasury {
                    self.add((u.seq, 1), receiver_holding, instrument);
                }
            }
            UpdateBody::Noise { .. } => {}
        }
    }
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
        SequencedUpdate::new(
            seq,
            format!("u{seq}"),
            rt,
            UpdateBody::Deposit {
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
        )
    }

    #[test]
    fn header_scan_matches_what_append_writes() {
        let line = deposit(7, -5, "h").to_line().unwrap();
        assert_eq!(scan_header(&line), Some((7, "u7", -5)));
        assert_eq!(scan_header("{\"id\":\"x\"}"), None);
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
        assert_eq!(
            s.get(2).unwrap().as_ref(),
            &deposit(2, 12, "h2"),
            "lazy body reads back"
        );
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
