//! Crash-consistent files without fsync: snapshots are written to a temporary
//! file and renamed into place, logs are append-only lines whose torn tail (a
//! last line without its newline) is cut off on load. Also the state-dir lock
//! that keeps a restore away from a serving simulator.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically (temp file + rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = tmp_path(path);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.flush()?;
    }
    std::fs::rename(&tmp, path)
}

/// Serializes `value` as pretty JSON and writes it atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Reads a JSON file written by [`write_json`].
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> std::io::Result<T> {
    let bytes = std::fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// An append-only log of text lines.
#[derive(Debug)]
pub struct AppendLog {
    path: PathBuf,
    writer: BufWriter<File>,
}

impl AppendLog {
    /// Opens `path` (creating it), returns the log and its complete lines.
    /// A torn last line (no trailing newline) is truncated away.
    pub fn open(path: &Path) -> std::io::Result<(AppendLog, Vec<String>)> {
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        let complete = match text.rfind('\n') {
            Some(i) => i + 1,
            None => 0,
        };
        if complete < text.len() {
            file.set_len(complete as u64)?;
            file.seek(SeekFrom::End(0))?;
        }
        let lines = text[..complete]
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        Ok((
            AppendLog {
                path: path.to_path_buf(),
                writer: BufWriter::with_capacity(1 << 16, file),
            },
            lines,
        ))
    }

    /// Appends one line (buffered; call [`AppendLog::flush`] to hand it to the OS).
    pub fn append(&mut self, line: &str) -> std::io::Result<()> {
        self.writer.write_all(line.as_bytes())?;
        self.writer.write_all(b"\n")
    }

    /// Hands buffered lines to the OS.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }

    /// Where the log lives.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Copies a directory tree (files and sub-directories).
pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// The exclusive lock a serving simulator holds on its state directory.
#[derive(Debug)]
pub struct StateDirLock {
    _file: File,
}

/// Name of the lock file inside the state directory.
pub const LOCK_FILE: &str = "lock";

impl StateDirLock {
    /// Takes the lock, or returns `None` when another process holds it.
    pub fn try_acquire(state_dir: &Path) -> std::io::Result<Option<StateDirLock>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(state_dir.join(LOCK_FILE))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(StateDirLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        std::fs::write(&p, "a\nb\nhalf").unwrap();
        let (mut log, lines) = AppendLog::open(&p).unwrap();
        assert_eq!(lines, vec!["a", "b"]);
        log.append("c").unwrap();
        log.flush().unwrap();
        drop(log);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a\nb\nc\n");
    }

    #[test]
    fn atomic_json_round_trip_and_lock() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        write_json(&p, &serde_json::json!({"a": 1})).unwrap();
        let v: serde_json::Value = read_json(&p).unwrap();
        assert_eq!(v["a"], 1);
        assert!(!dir.path().join("x.json.tmp").exists());
        let first = StateDirLock::try_acquire(dir.path()).unwrap();
        assert!(first.is_some());
        // flock locks are per open file description: a second open is refused.
        assert!(StateDirLock::try_acquire(dir.path()).unwrap().is_none());
        drop(first);
        assert!(StateDirLock::try_acquire(dir.path()).unwrap().is_some());
    }
}
