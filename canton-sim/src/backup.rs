//! Backup and restore of the participant's local state, the way a node's
//! database is backed up and restored: `backup` copies `participant/` (with a
//! `backup.json` manifest), `restore` moves the current `participant/` aside
//! (never deleting it) and puts the copy back. The synchronizer's history is
//! untouched, so the restored participant re-processes everything after its
//! backup point and assigns new offsets.

use crate::persistence::{StateDirLock, copy_dir, read_json, write_json};
use crate::state::participant::{self, ParticipantMeta, REPLACED_PREFIX};
use crate::state::synchronizer::{self, SynchronizerMeta};
use canton_dr_cli::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Name of the manifest inside a backup directory.
pub const MANIFEST: &str = "backup.json";
/// `type` of a backup manifest.
pub const MANIFEST_TYPE: &str = "canton-sim-participant-backup";

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupManifest {
    /// Always [`MANIFEST_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Wall-clock time the backup was taken (RFC 3339, µs).
    pub taken_at: String,
    /// Synchronizer the participant is connected to.
    pub synchronizer_id: String,
    /// Participant id.
    pub participant_id: String,
    /// Ledger end at backup time.
    pub ledger_end: i64,
    /// Synchronizer updates processed at backup time.
    pub processed_updates: u64,
    /// Record time of the last processed update (RFC 3339, µs), if any.
    pub last_record_time: Option<String>,
    /// DARs in the backup.
    pub dars: u64,
    /// Incarnation at backup time.
    pub incarnation: u64,
}

/// Facts needed to write a manifest.
#[derive(Debug, Clone)]
pub struct BackupFacts {
    /// Synchronizer id.
    pub synchronizer_id: String,
    /// Ledger end.
    pub ledger_end: i64,
    /// Updates processed.
    pub processed_updates: u64,
    /// Record time of the last processed update, µs.
    pub last_record_time_us: Option<i64>,
    /// DAR count.
    pub dars: u64,
}

fn fmt_us(us: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_micros(us)
        .map(canton_dr_cli::time::format_record_time)
        .unwrap_or_default()
}

/// Copies `participant_dir` to `to` (which must not exist yet) through a
/// temporary directory renamed into place, so a half-written backup never
/// looks complete.
pub fn write_backup(
    participant_dir: &Path,
    to: &Path,
    facts: BackupFacts,
) -> Result<BackupManifest> {
    if to.exists() {
        return Err(Error::refused(format!(
            "backup target {} already exists; a backup never overwrites one",
            to.display()
        ))
        .with_hint("choose a new --to directory, or remove the old one if you no longer need it"));
    }
    let meta: ParticipantMeta = read_json(&participant_dir.join("meta.json")).map_err(|e| {
        Error::usage(format!("cannot read the participant state: {e}"))
            .with_hint("check that --state-dir points to a canton-sim state directory")
    })?;
    let parent = to
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .map_err(|e| Error::usage(format!("cannot create {}: {e}", parent.display())))?;
    let tmp = parent.join(format!(
        ".{}.partial-{}",
        to.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    let manifest = BackupManifest {
        kind: MANIFEST_TYPE.to_string(),
        taken_at: fmt_us(chrono::Utc::now().timestamp_micros()),
        synchronizer_id: facts.synchronizer_id,
        participant_id: meta.participant_id.clone(),
        ledger_end: facts.ledger_end,
        processed_updates: facts.processed_updates,
        last_record_time: facts.last_record_time_us.map(fmt_us),
        dars: facts.dars,
        incarnation: meta.incarnation,
    };
    let result = copy_dir(participant_dir, &tmp.join(participant::DIR))
        .and_then(|_| write_json(&tmp.join(MANIFEST), &manifest))
        .and_then(|_| std::fs::rename(&tmp, to));
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(Error::usage(format!(
            "cannot write backup to {}: {e}",
            to.display()
        )));
    }
    Ok(manifest)
}

/// Facts of an offline participant state (for an offline backup).
pub fn offline_facts(state_dir: &Path) -> Result<BackupFacts> {
    let sync_meta: SynchronizerMeta =
        read_json(&state_dir.join(synchronizer::DIR).join("meta.json")).map_err(|e| {
            Error::usage(format!(
                "{} is not a canton-sim state directory: {e}",
                state_dir.display()
            ))
            .with_hint("pass the --state-dir a `canton-sim serve` created")
        })?;
    let part_dir = state_dir.join(participant::DIR);
    let log = std::fs::read_to_string(part_dir.join("ledger.log")).unwrap_or_default();
    let mut ledger_end = 0;
    let mut processed = 0u64;
    let mut last_seq = None;
    for line in log.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["u", seq, off] => {
                processed += 1;
                last_seq = seq.parse::<usize>().ok();
                ledger_end = off.parse().unwrap_or(ledger_end);
            }
            ["i", off] => ledger_end = off.parse().unwrap_or(ledger_end),
            _ => {}
        }
    }
    let last_record_time_us = last_seq.and_then(|seq| {
        let text =
            std::fs::read_to_string(state_dir.join(synchronizer::DIR).join("updates.ndjson"))
                .ok()?;
        let line = text.lines().nth(seq)?;
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        v.get("rt")?.as_i64()
    });
    let dars = std::fs::read_dir(part_dir.join("dars"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .count() as u64
        })
        .unwrap_or(0);
    Ok(BackupFacts {
        synchronizer_id: sync_meta.synchronizer_id,
        ledger_end,
        processed_updates: processed,
        last_record_time_us,
        dars,
    })
}

/// Offline backup; refused while a server holds the state directory.
pub fn backup_offline(state_dir: &Path, to: &Path) -> Result<BackupManifest> {
    let lock = StateDirLock::try_acquire(state_dir).map_err(|e| {
        Error::usage(format!(
            "cannot open state directory {}: {e}",
            state_dir.display()
        ))
    })?;
    if lock.is_none() {
        return Err(Error::refused(format!(
            "a canton-sim server is serving {}",
            state_dir.display()
        ))
        .with_hint(
            "use `canton-sim ctl --control-api ADDR backup --to DIR` for an online backup",
        ));
    }
    let facts = offline_facts(state_dir)?;
    write_backup(&state_dir.join(participant::DIR), to, facts)
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreReport {
    /// Always `restore`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The backup restored.
    pub restored_from: String,
    /// Where the replaced participant state was moved.
    pub replaced_state_moved_to: Option<String>,
    /// The backup's manifest.
    pub backup: BackupManifest,
}

/// Puts the participant state of backup `from` back into `state_dir`.
/// Refused (exit 5) while a server holds the state directory or when the
/// backup belongs to another synchronizer.
pub fn restore(state_dir: &Path, from: &Path) -> Result<RestoreReport> {
    let manifest: BackupManifest = read_json(&from.join(MANIFEST)).map_err(|e| {
        Error::usage(format!(
            "{} is not a canton-sim backup: {e}",
            from.display()
        ))
        .with_hint("pass a directory written by `canton-sim backup --to DIR`")
    })?;
    if manifest.kind != MANIFEST_TYPE || !from.join(participant::DIR).join("meta.json").exists() {
        return Err(Error::usage(format!(
            "{} is not a complete canton-sim backup",
            from.display()
        ))
        .with_hint("pass a directory written by `canton-sim backup --to DIR`"));
    }
    if !state_dir.join(synchronizer::DIR).join("meta.json").exists() {
        return Err(Error::usage(format!(
            "{} is not a canton-sim state directory (no synchronizer history)",
            state_dir.display()
        ))
        .with_hint("restore into the --state-dir the backup was taken from"));
    }
    let lock = StateDirLock::try_acquire(state_dir).map_err(|e| {
        Error::usage(format!(
            "cannot open state directory {}: {e}",
            state_dir.display()
        ))
    })?;
    let Some(_lock) = lock else {
        return Err(Error::refused(format!(
            "a canton-sim server is serving {}; a restore needs the node stopped",
            state_dir.display()
        ))
        .with_hint("stop the server (SIGTERM) and run the restore again"));
    };
    let sync_meta: SynchronizerMeta =
        read_json(&state_dir.join(synchronizer::DIR).join("meta.json"))
            .map_err(|e| Error::usage(format!("cannot read the synchronizer history: {e}")))?;
    if sync_meta.synchronizer_id != manifest.synchronizer_id {
        return Err(Error::refused(format!(
            "the backup belongs to synchronizer {} but {} serves {}",
            manifest.synchronizer_id,
            state_dir.display(),
            sync_meta.synchronizer_id
        ))
        .with_hint("restore a backup taken from this state directory"));
    }
    let current = state_dir.join(participant::DIR);
    let staged = state_dir.join(format!("{}.restoring", participant::DIR));
    let _ = std::fs::remove_dir_all(&staged);
    copy_dir(&from.join(participant::DIR), &staged).map_err(|e| {
        let _ = std::fs::remove_dir_all(&staged);
        Error::usage(format!(
            "cannot copy the backup from {}: {e}",
            from.display()
        ))
    })?;
    let moved = if current.exists() {
        let target = next_replaced_dir(state_dir);
        std::fs::rename(&current, &target).map_err(|e| {
            Error::usage(format!(
                "cannot move the current participant state aside: {e}"
            ))
        })?;
        Some(target)
    } else {
        None
    };
    std::fs::rename(&staged, &current)
        .map_err(|e| Error::usage(format!("cannot put the restored state in place: {e}")))?;
    Ok(RestoreReport {
        kind: "restore",
        restored_from: from.display().to_string(),
        replaced_state_moved_to: moved.map(|p| p.display().to_string()),
        backup: manifest,
    })
}

fn next_replaced_dir(state_dir: &Path) -> PathBuf {
    let mut n = 1;
    loop {
        let p = state_dir.join(format!("{REPLACED_PREFIX}{n}"));
        if !p.exists() {
            return p;
        }
        n += 1;
    }
}
