//! The participant's DAR store under `participant/dars/`: each DAR's bytes
//! exactly as uploaded (`<main package id>.dar`) and its description and
//! packages (`<main package id>.json`, written last so a crash leaves no
//! half-known DAR). Keyed by main package id, as Canton 3.3+ does.

use crate::persistence::{read_json, write_atomic, write_json};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A package inside a DAR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageRecord {
    /// Path of the dalf inside the DAR.
    #[serde(default)]
    pub path: String,
    /// Package id (hex SHA-256 of the archive payload).
    pub package_id: String,
    /// Package name from its metadata (may be empty).
    pub name: String,
    /// Package version (may be empty).
    pub version: String,
    /// Size of the archive payload in bytes.
    pub size: u64,

    pub language_version: String,
}

/// A stored DAR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DarRecord {
    /// Main package id (the DAR's identity).
    pub main_package_id: String,
    /// DAR name (main package metadata).
    pub name: String,
    /// DAR version (main package metadata).
    pub version: String,
    /// Caller-supplied description (`DAR_<id>` by default).
    pub description: String,
    /// Upload time, µs.
    pub uploaded_at_us: i64,
    /// Size of the DAR file in bytes.
    pub size: u64,
    /// Whether the packages were vetted on upload.
    pub vetted: bool,
    /// All packages of the DAR, main package first.
    pub packages: Vec<PackageRecord>,
}

/// The DAR store.
#[derive(Debug)]
pub struct DarStore {
    dir: PathBuf,
    dars: BTreeMap<String, DarRecord>,
}

impl DarStore {
    /// Opens (creating) the store in `dir`.
    pub fn open(dir: &Path) -> std::io::Result<DarStore> {
        std::fs::create_dir_all(dir)?;
        let mut dars = BTreeMap::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                let rec: DarRecord = read_json(&path)?;
                if dir.join(format!("{}.dar", rec.main_package_id)).exists() {
                    dars.insert(rec.main_package_id.clone(), rec);
                }
            }
        }
        Ok(DarStore {
            dir: dir.to_path_buf(),
            dars,
        })
    }

    /// Stores a DAR unless one with the same main package id is known (idempotent).
    /// Returns true when it was new.
    pub fn insert(&mut self, rec: DarRecord, bytes: &[u8]) -> std::io::Result<bool> {
        if self.dars.contains_key(&rec.main_package_id) {
            return Ok(false);
        }
        write_atomic(
            &self.dir.join(format!("{}.dar", rec.main_package_id)),
            bytes,
        )?;
        write_json(
            &self.dir.join(format!("{}.json", rec.main_package_id)),
            &rec,
        )?;
        self.dars.insert(rec.main_package_id.clone(), rec);
        Ok(true)
    }

    /// Removes a DAR; true when it existed.
    pub fn remove(&mut self, main_package_id: &str) -> std::io::Result<bool> {
        if self.dars.remove(main_package_id).is_none() {
            return Ok(false);
        }
        std::fs::remove_file(self.dir.join(format!("{main_package_id}.json")))?;
        let _ = std::fs::remove_file(self.dir.join(format!("{main_package_id}.dar")));
        Ok(true)
    }

    /// The DAR with this main package id.
    pub fn get(&self, main_package_id: &str) -> Option<&DarRecord> {
        self.dars.get(main_package_id)
    }

    /// The DAR's bytes exactly as uploaded.
    pub fn bytes(&self, main_package_id: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.dir.join(format!("{main_package_id}.dar")))
    }

    /// Sets whether the DAR's packages are vetted; false when the DAR is unknown.
    pub fn set_vetted(&mut self, main_package_id: &str, vetted: bool) -> std::io::Result<bool> {
        let Some(rec) = self.dars.get_mut(main_package_id) else {
            return Ok(false);
        };
        rec.vetted = vetted;
        write_json(&self.dir.join(format!("{main_package_id}.json")), rec)?;
        Ok(true)
    }

    /// All DARs ordered by main package id.
    pub fn all(&self) -> impl Iterator<Item = &DarRecord> {
        self.dars.values()
    }

    /// Number of DARs.
    pub fn len(&self) -> usize {
        self.dars.len()
    }

    /// True when no DAR is stored.
    pub fn is_empty(&self) -> bool {
        self.dars.is_empty()
    }

    /// Every distinct package with the earliest upload time it has, by package id.
    pub fn packages(&self) -> BTreeMap<String, (PackageRecord, i64)> {
        let mut out: BTreeMap<String, (PackageRecord, i64)> = BTreeMap::new();
        for d in self.dars.values() {
            for p in &d.packages {
                out.entry(p.package_id.clone())
                    .and_modify(|(_, t)| *t = (*t).min(d.uploaded_at_us))
                    .or_insert((p.clone(), d.uploaded_at_us));
            }
        }
        out
    }

    /// The DARs that contain package `package_id`.
    pub fn dars_with_package(&self, package_id: &str) -> Vec<&DarRecord> {
        self.dars
            .values()
            .filter(|d| d.packages.iter().any(|p| p.package_id == package_id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str) -> DarRecord {
        DarRecord {
            main_package_id: id.into(),
            name: "n".into(),
            version: "1.0.0".into(),
            description: format!("DAR_{id}"),
            uploaded_at_us: 1,
            size: 3,
            vetted: true,
            packages: vec![PackageRecord {
                path: "a.dalf".into(),
                package_id: id.into(),
                name: "n".into(),
                version: "1.0.0".into(),
                size: 1,
                language_version: "2.1".into(),
            }],
        }
    }

    #[test]
    fn insert_is_idempotent_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = DarStore::open(dir.path()).unwrap();
        assert!(s.insert(rec("aa"), b"abc").unwrap());
        assert!(!s.insert(rec("aa"), b"xyz").unwrap());
        assert_eq!(s.bytes("aa").unwrap(), b"abc");
        let s2 = DarStore::open(dir.path()).unwrap();
        assert_eq!(s2.len(), 1);
        assert_eq!(s2.get("aa").unwrap().description, "DAR_aa");
        let mut s2 = s2;
        assert!(s2.remove("aa").unwrap());
        assert!(!s2.remove("aa").unwrap());
        assert!(DarStore::open(dir.path()).unwrap().is_empty());
    }
}
