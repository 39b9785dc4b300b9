//! The participant's local state under `<state-dir>/participant/`: the
//! offsets it assigned to synchronizer updates (with gaps for its internal
//! entries), its ledger end, pruning offset, incarnation and DARs. This is
//! what `backup` copies and `restore` puts back.

use crate::persistence::{AppendLog, read_json, write_json};
use crate::state::dars::DarStore;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Directory name under the state dir.
pub const DIR: &str = "participant";
/// Prefix of the directories a restore moves the replaced state to.
pub const REPLACED_PREFIX: &str = "participant.replaced-";

/// Snapshot of the participant's small facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantMeta {
    /// Participant id (`PAR::participant1::1220…`).
    pub participant_id: String,
    /// How many times this state was started (restored with a backup).
    pub incarnation: u64,
    /// Offset up to which (inclusive) the ledger was pruned; 0 = never.
    pub pruned_up_to: i64,
    /// When the participant was created, µs.
    pub created_at_us: i64,
}

/// The participant's ledger: offsets per synchronizer position, ledger end.
#[derive(Debug)]
pub struct Participant {
    dir: PathBuf,
    /// Small facts.
    pub meta: ParticipantMeta,
    /// `offsets[seq]` = offset assigned to synchronizer update `seq`; strictly increasing.
    offsets: Vec<i64>,
    ledger_end: i64,
    log: AppendLog,
    /// Offsets the participant assigned before earlier restores, by synchronizer position.
    previous_offsets: Vec<Vec<i64>>,
    /// DARs uploaded to this participant.
    pub dars: DarStore,
}

impl Participant {
    /// Opens the participant state, creating it on first start.
    pub fn open_or_create(
        state_dir: &Path,
        fresh_meta: impl FnOnce() -> ParticipantMeta,
    ) -> std::io::Result<Participant> {
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
        let (log, lines) = AppendLog::open(&dir.join("ledger.log"))?;
        let (offsets, ledger_end) = parse_ledger_log(&lines, log.path())?;
        let previous_offsets = load_previous_offsets(state_dir)?;
        let dars = DarStore::open(&dir.join("dars"))?;
        Ok(Participant {
            dir,
            meta,
            offsets,
            ledger_end,
            log,
            previous_offsets,
            dars,
        })
    }

    /// Persists [`Participant::meta`].
    pub fn save_meta(&self) -> std::io::Result<()> {
        write_json(&self.dir.join("meta.json"), &self.meta)
    }

    /// Number of synchronizer updates processed (assigned an offset).
    pub fn processed(&self) -> usize {
        self.offsets.len()
    }

    /// The ledger end (last assigned offset, internal entries included); 0 = empty.
    pub fn ledger_end(&self) -> i64 {
        self.ledger_end
    }

    /// Offset of synchronizer update `seq`, if processed.
    pub fn offset_of(&self, seq: usize) -> Option<i64> {
        self.offsets.get(seq).copied()
    }

    /// All assigned update offsets, by synchronizer position.
    pub fn offsets(&self) -> &[i64] {
        &self.offsets
    }

    /// Synchronizer position of the update at exactly `offset`.
    pub fn seq_at_offset(&self, offset: i64) -> Option<usize> {
        self.offsets.binary_search(&offset).ok()
    }

    /// Number of processed updates whose offset is at or before `offset`.
    pub fn count_at_or_before_offset(&self, offset: i64) -> usize {
        self.offsets.partition_point(|o| *o <= offset)
    }

    /// Records `n` internal ledger entries (they take offsets but carry no update).
    pub fn add_internal_entries(&mut self, n: u32) -> std::io::Result<()> {
        for _ in 0..n {
            self.ledger_end += 1;
            self.log.append(&format!("i {}", self.ledger_end))?;
        }
        Ok(())
    }

    /// Assigns the next offset to synchronizer update `seq` (which must be the
    /// next unprocessed one), after `internal_before` internal entries. An
    /// offset this participant gave the same update before a restore is never
    /// reused: it takes one more internal entry instead.
    pub fn assign(&mut self, seq: usize, internal_before: u32) -> std::io::Result<i64> {
        debug_assert_eq!(seq, self.offsets.len());
        self.add_internal_entries(internal_before)?;
        let mut offset = self.ledger_end + 1;
        while self
            .previous_offsets
            .iter()
            .any(|prev| prev.get(seq) == Some(&offset))
        {
            self.add_internal_entries(1)?;
            offset = self.ledger_end + 1;
        }
        self.ledger_end = offset;
        self.offsets.push(offset);
        self.log.append(&format!("u {seq} {offset}"))?;
        Ok(offset)
    }

    /// Hands appended ledger entries to the OS.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.log.flush()
    }

    /// The participant's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn invalid(path: &Path, line: usize, what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{} line {line}: {what}", path.display()),
    )
}

/// Parses `u <seq> <offset>` / `i <offset>` lines into (offsets by seq, ledger end).
fn parse_ledger_log(lines: &[String], path: &Path) -> std::io::Result<(Vec<i64>, i64)> {
    let mut offsets = Vec::with_capacity(lines.len());
    let mut end = 0i64;
    for (i, line) in lines.iter().enumerate() {
        let mut parts = line.split(' ');
        let offset = match (parts.next(), parts.next(), parts.next()) {
            (Some("u"), Some(seq), Some(off)) => {
                let seq: usize = seq.parse().map_err(|_| invalid(path, i + 1, "bad seq"))?;
                if seq != offsets.len() {
                    return Err(invalid(path, i + 1, "update processed out of order"));
                }
                let off: i64 = off
                    .parse()
                    .map_err(|_| invalid(path, i + 1, "bad offset"))?;
                offsets.push(off);
                off
            }
            (Some("i"), Some(off), None) => off
                .parse()
                .map_err(|_| invalid(path, i + 1, "bad offset"))?,
            _ => return Err(invalid(path, i + 1, "unknown entry")),
        };
        if offset <= end {
            return Err(invalid(path, i + 1, "offsets not increasing"));
        }
        end = offset;
    }
    Ok((offsets, end))
}

/// Offsets of the participant states earlier restores replaced.
fn load_previous_offsets(state_dir: &Path) -> std::io::Result<Vec<Vec<i64>>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(state_dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(REPLACED_PREFIX) {
            continue;
        }
        let path = entry.path().join("ledger.log");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let lines: Vec<String> = text
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            if let Ok((offsets, _)) = parse_ledger_log(&lines, &path) {
                out.push(offsets);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> ParticipantMeta {
        ParticipantMeta {
            participant_id: "PAR::p::1220".into(),
            incarnation: 0,
            pruned_up_to: 0,
            created_at_us: 0,
        }
    }

    #[test]
    fn offsets_gaps_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut p = Participant::open_or_create(dir.path(), meta).unwrap();
            p.add_internal_entries(2).unwrap();
            assert_eq!(p.assign(0, 0).unwrap(), 3);
            assert_eq!(p.assign(1, 2).unwrap(), 6);
            p.add_internal_entries(1).unwrap();
            p.flush().unwrap();
        }
        let p = Participant::open_or_create(dir.path(), || panic!("exists")).unwrap();
        assert_eq!(p.offsets(), &[3, 6]);
        assert_eq!(p.ledger_end(), 7);
        assert_eq!(p.seq_at_offset(6), Some(1));
        assert_eq!(p.seq_at_offset(5), None);
        assert_eq!(p.count_at_or_before_offset(5), 1);
    }

    #[test]
    fn never_reuses_an_offset_from_before_a_restore() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(format!("{REPLACED_PREFIX}1"));
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("ledger.log"), "u 0 1\nu 1 2\n").unwrap();
        let mut p = Participant::open_or_create(dir.path(), meta).unwrap();
        let a = p.assign(0, 0).unwrap();
        let b = p.assign(1, 0).unwrap();
        assert_ne!(a, 1);
        assert_ne!(b, 2);
        assert!(b > a);
    }
}
