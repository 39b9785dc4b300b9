//! The local side: find `.dar` files under the given paths, and read each one
//! in parallel on all cores into its identity (main package id, name,
//! version, file SHA-256, size) or the reason it is not a DAR Canton would
//! take.
//!
//! Directories are walked recursively (symlinks followed, loops detected) and
//! contribute the files whose name ends in `.dar`; a path naming a file is
//! read whatever its name. Results come back in the order the paths were
//! given, each directory's files sorted by name, so output is stable.

use canton_dr_cli::{Error, Result};
use daml_dar::{DarInfo, InspectError, ReadOptions, Scope};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A readable, valid DAR file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalDar {
    /// The file.
    pub path: String,
    /// The DAR's identity on a participant: SHA-256 of the main dalf's payload.
    pub main_package_id: String,
    /// Main package name.
    pub name: String,
    /// Main package version.
    pub version: String,
    /// Lowercase hex SHA-256 of the whole file.
    pub sha256: String,
    /// File size in bytes.
    pub size: u64,
}

impl LocalDar {
    /// The identity of a parsed DAR read from `path`.
    pub fn from_info(path: &Path, info: &DarInfo) -> LocalDar {
        LocalDar {
            path: path.display().to_string(),
            main_package_id: info.dar.main_package_id.clone(),
            name: info.dar.name.clone(),
            version: info.dar.version.clone(),
            sha256: info.file_sha256.clone(),
            size: info.file_size,
        }
    }
}

/// A file that is not a DAR Canton would accept, or could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvalidFile {
    /// The file (or directory that could not be walked).
    pub path: String,
    /// Why, in one line.
    pub reason: String,
    /// The Canton error id a participant would answer with (`INVALID_DAR`,
    /// `DAR_PARSE_ERROR`, `ZIP_BOMB`, …); `None` when the file could not be read.
    pub error_id: Option<String>,
}

impl InvalidFile {
    /// From a failed inspection.
    pub fn from_error(path: &Path, e: &InspectError) -> InvalidFile {
        let reason = match e {
            InspectError::Io { source, .. } => format!("cannot read the file: {source}"),
            InspectError::Dar { source, .. } => source.reason(),
        };
        InvalidFile {
            path: path.display().to_string(),
            reason,
            error_id: e.canton_error_id().map(str::to_string),
        }
    }
}

/// One inventory result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A valid DAR.
    Dar(LocalDar),
    /// A file that is not one.
    Invalid(InvalidFile),
}

impl Entry {
    /// The NDJSON line: `{"type":"dar",...}` or `{"type":"invalid",...}`.
    pub fn to_json(&self) -> serde_json::Value {
        let (kind, value) = match self {
            Entry::Dar(d) => ("dar", serde_json::to_value(d)),
            Entry::Invalid(i) => ("invalid", serde_json::to_value(i)),
        };
        canton_dr_cli::output::event_object(kind, value.unwrap_or_default())
    }
}

/// How thoroughly each file is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Check {
    /// Hash the file; read the manifest and the main dalf, check the main
    /// dalf's hash, check every entry's declared size and that every dalf the
    /// manifest names exists. Enough for the DAR's identity at hashing speed.
    #[default]
    MainDalf,
    /// As Canton does on upload: also inflate every entry and decode and
    /// hash-check every dalf.
    Full,
}

impl Check {
    /// The name printed in summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::MainDalf => "main-dalf",
            Check::Full => "full",
        }
    }

    fn read_options(self) -> ReadOptions {
        ReadOptions {
            scope: match self {
                Check::MainDalf => Scope::MainOnly,
                Check::Full => Scope::Full,
            },
            ..ReadOptions::default()
        }
    }
}

/// What to read: a file found by the walk, or a directory that could not be walked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A file to inspect.
    File(PathBuf),
    /// A walk error (unreadable directory, symlink loop).
    Unwalkable(InvalidFile),
}

/// True for file names ending in `.dar` (any case).
pub fn has_dar_extension(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("dar"))
}

/// The files under `paths`. A path that does not exist is a usage error
/// (exit 2) before anything is read.
pub fn find_files(paths: &[PathBuf]) -> Result<Vec<Found>> {
    for p in paths {
        if let Err(e) = std::fs::metadata(p) {
            return Err(Error::usage(format!("cannot read {}: {e}", p.display()))
                .with_hint("name existing DAR files or directories holding them"));
        }
    }
    let mut found = Vec::new();
    for root in paths {
        if !root.is_dir() {
            found.push(Found::File(root.clone()));
            continue;
        }
        let walker = walkdir::WalkDir::new(root)
            .follow_links(true)
            .sort_by_file_name();
        for item in walker {
            match item {
                Ok(e) if e.file_type().is_file() && has_dar_extension(e.path()) => {
                    found.push(Found::File(e.into_path()));
                }
                Ok(_) => {}
                Err(e) => {
                    let path = e.path().unwrap_or(root).to_path_buf();
                    found.push(Found::Unwalkable(InvalidFile {
                        path: path.display().to_string(),
                        reason: format!("cannot read the directory: {e}"),
                        error_id: None,
                    }));
                }
            }
        }
    }
    Ok(found)
}

/// Inspects one file.
pub fn inspect(path: &Path, check: Check) -> Entry {
    match daml_dar::inspect_file_with(path, &check.read_options()) {
        Ok(info) => Entry::Dar(LocalDar::from_info(path, &info)),
        Err(e) => Entry::Invalid(InvalidFile::from_error(path, &e)),
    }
}

/// Inspects every found file on `threads` threads (0 = one per core), keeping
/// the order of `found`.
pub fn inspect_all(found: Vec<Found>, check: Check, threads: usize) -> Result<Vec<Entry>> {
    use rayon::prelude::*;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("dar-hash-{i}"))
        .build()
        .map_err(|e| Error::usage(format!("cannot start the hashing threads: {e}")))?;
    Ok(pool.install(|| {
        found
            .into_par_iter()
            // One file per task: files differ a lot in size, and stealing
            // single files keeps both cores busy to the end.
            .with_max_len(1)
            .map(|f| match f {
                Found::File(p) => inspect(&p, check),
                Found::Unwalkable(i) => Entry::Invalid(i),
            })
            .collect()
    }))
}

/// [`find_files`] then [`inspect_all`].
pub fn inventory(paths: &[PathBuf], check: Check, threads: usize) -> Result<Vec<Entry>> {
    inspect_all(find_files(paths)?, check, threads)
}

/// Counts for the summary line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    /// Valid DARs.
    pub dars: usize,
    /// Invalid or unreadable files.
    pub invalid: usize,
    /// Bytes in valid DARs.
    pub bytes: u64,
    /// Distinct main package ids among the valid DARs.
    pub distinct: usize,
}

/// Counts `entries`.
pub fn totals(entries: &[Entry]) -> Totals {
    let mut ids = std::collections::HashSet::new();
    let mut t = Totals::default();
    for e in entries {
        match e {
            Entry::Dar(d) => {
                t.dars += 1;
                t.bytes += d.size;
                ids.insert(d.main_package_id.as_str());
            }
            Entry::Invalid(_) => t.invalid += 1,
        }
    }
    t.distinct = ids.len();
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use daml_dar::{Corruption, DarBuilder};

    #[test]
    fn finds_dar_files_sorted_and_skips_others() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let a = DarBuilder::new("a", "1.0.0").build();
        a.write_to(sub.join("b.dar")).unwrap();
        a.write_to(dir.path().join("a.DAR")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let found = find_files(&[dir.path().to_path_buf()]).unwrap();
        let names: Vec<String> = found
            .iter()
            .map(|f| match f {
                Found::File(p) => p.strip_prefix(dir.path()).unwrap().display().to_string(),
                Found::Unwalkable(i) => panic!("{i:?}"),
            })
            .collect();
        assert_eq!(names, ["a.DAR", "sub/b.dar"]);
    }

    #[test]
    fn a_named_file_is_read_whatever_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token.zip");
        DarBuilder::new("t", "1.0.0").build().write_to(&p).unwrap();
        let entries = inventory(std::slice::from_ref(&p), Check::MainDalf, 1).unwrap();
        assert!(matches!(&entries[..], [Entry::Dar(d)] if d.name == "t"));
    }

    #[test]
    fn missing_path_is_a_usage_error() {
        let e = find_files(&[PathBuf::from("/nonexistent/dars")]).unwrap_err();
        assert_eq!(e.exit_code().code(), 2);
        assert!(e.message().contains("/nonexistent/dars"), "{}", e.message());
    }

    #[test]
    fn identity_matches_the_builder_and_order_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut expected = Vec::new();
        for i in 0..12u64 {
            let b = DarBuilder::new(format!("pkg{i:02}"), "1.0.0")
                .seed(i)
                .dependencies(1)
                .build();
            b.write_to(dir.path().join(format!("p{i:02}.dar"))).unwrap();
            expected.push((b.main_package_id.clone(), daml_dar::sha256_hex(&b.bytes)));
        }
        let entries = inventory(&[dir.path().to_path_buf()], Check::MainDalf, 2).unwrap();
        let got: Vec<(String, String)> = entries
            .iter()
            .map(|e| match e {
                Entry::Dar(d) => (d.main_package_id.clone(), d.sha256.clone()),
                Entry::Invalid(i) => panic!("{i:?}"),
            })
            .collect();
        assert_eq!(got, expected);
        let t = totals(&entries);
        assert_eq!((t.dars, t.invalid, t.distinct), (12, 0, 12));
    }

    #[test]
    fn invalid_files_carry_cantons_error_id() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "bad-format.dar",
                Corruption::WrongFormat("zip".into()),
                "INVALID_DAR",
            ),
            (
                "no-manifest.dar",
                Corruption::MissingManifest,
                "INVALID_DAR",
            ),
            ("not-zip.dar", Corruption::NotAZip, "INVALID_DAR"),
            ("hash.dar", Corruption::HashMismatch, "DAR_PARSE_ERROR"),
            ("bomb.dar", Corruption::ZipBombDeclared, "ZIP_BOMB"),
        ];
        for (name, c, _) in &cases {
            DarBuilder::new("x", "1.0.0")
                .corrupt(c.clone())
                .build()
                .write_to(dir.path().join(name))
                .unwrap();
        }
        let entries = inventory(&[dir.path().to_path_buf()], Check::MainDalf, 2).unwrap();
        for (name, _, id) in cases {
            let hit = entries.iter().find_map(|e| match e {
                Entry::Invalid(i) if i.path.ends_with(name) => Some(i),
                _ => None,
            });
            let i = hit.unwrap_or_else(|| panic!("{name} not reported invalid: {entries:?}"));
            assert_eq!(i.error_id.as_deref(), Some(id), "{name}: {}", i.reason);
        }
    }

    #[test]
    fn full_check_finds_damage_the_main_dalf_check_does_not_read() {
        // A dependency dalf that is not a DAR entry Canton can read: damage
        // the bytes of a stored (uncompressed) dependency in place.
        let built = DarBuilder::new("deps", "1.0.0")
            .dependencies(1)
            .compression(daml_dar::Compression::Store)
            .target_size(64 * 1024)
            .build();
        let mut bytes = built.bytes.clone();
        // The padding lives in the dependency; flip a byte in its middle.
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("deps.dar");
        std::fs::write(&p, &bytes).unwrap();
        assert!(matches!(inspect(&p, Check::MainDalf), Entry::Dar(_)));
        match inspect(&p, Check::Full) {
            Entry::Invalid(i) => assert_eq!(i.error_id.as_deref(), Some("DAR_PARSE_ERROR")),
            other => panic!("{other:?}"),
        }
    }
}
