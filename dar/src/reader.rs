//! Reading a DAR the way Canton's `DarParser` does: every zip entry is read
//! under a per-entry size cap, the manifest names the main dalf and its
//! dependencies, every named dalf must be present and decode as a
//! `daml_lf.Archive` whose declared hash is the SHA-256 of its payload, and the
//! DAR's identity is the main dalf's package id.

use crate::digest::{Sha256Hasher, sha256_hex};
use crate::error::{DarError, InspectError};
use crate::manifest::{DalfNames, MANIFEST_PATH, Manifest, split_name_version};
use crate::proto::{Archive, ArchivePayload, HashFunction, PackageHead, archive_payload::Sum};
use bytes::Bytes;
use prost::Message;
use std::collections::HashMap;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::Path;

/// Canton's per-entry cap: 1 GiB.
pub const DEFAULT_MAX_ENTRY_SIZE: u64 = 1024 * 1024 * 1024;

/// Size limits applied while reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Entries of this many bytes or more are refused (by declared size and by
    /// bytes inflated), as Canton's `entrySizeThreshold`.
    pub max_entry_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entry_size: DEFAULT_MAX_ENTRY_SIZE,
        }
    }
}

/// How much of the archive to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// As Canton: inflate and CRC-check every entry, decode and hash-check
    /// every dalf the manifest names.
    #[default]
    Full,
    /// For inventories: check every entry's declared size, check that every
    /// named dalf exists, but read and hash-check only the manifest and the
    /// main dalf. Finds the same DAR identity with far less work; damage inside
    /// dependency dalfs or other entries goes unnoticed.
    MainOnly,
}

/// Options for [`parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadOptions {
    /// Size limits.
    pub limits: Limits,
    /// How much to read.
    pub scope: Scope,
}

/// Where a DAR's name and version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameSource {
    /// The main package's `PackageMetadata` (what Canton reports).
    PackageMetadata,
    /// The manifest's `Name: <name>-<version>`.
    Manifest,
    /// The main dalf's directory `<name>-<version>-<package id>/`.
    DalfPath,
    /// None of the above: name is the main dalf path, version is empty.
    Unknown,
}

/// One dalf (Daml-LF package) in a DAR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DalfInfo {
    /// Path inside the zip.
    pub path: String,
    /// Lowercase hex SHA-256 of `Archive.payload`.
    pub package_id: String,
    /// Size in bytes of `Archive.payload` (what Canton reports as package size).
    pub payload_size: u64,
    /// Daml-LF language version, e.g. `2.1`.
    pub language_version: String,
    /// Package name from its metadata, if present.
    pub name: Option<String>,
    /// Package version from its metadata, if present.
    pub version: Option<String>,
}

/// A parsed DAR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dar {
    /// The DAR's identity: package id of `Main-Dalf`.
    pub main_package_id: String,
    /// DAR name (main package name).
    pub name: String,
    /// DAR version (main package version).
    pub version: String,
    /// Where `name` and `version` came from.
    pub name_source: NameSource,
    /// The manifest.
    pub manifest: Manifest,
    /// `Main-Dalf` path.
    pub main_dalf_path: String,
    /// Dependency dalf paths (`Dalfs` minus `Main-Dalf`), in manifest order.
    pub dependency_paths: Vec<String>,
    /// The dalfs read: the main one first, then the dependencies in manifest
    /// order ([`Scope::Full`]), or only the main one ([`Scope::MainOnly`]).
    pub dalfs: Vec<DalfInfo>,
}

impl Dar {
    /// The main dalf.
    pub fn main_dalf(&self) -> &DalfInfo {
        &self.dalfs[0]
    }
    /// The manifest's `Sdk-Version`, if any.
    pub fn sdk_version(&self) -> Option<&str> {
        self.manifest.get("Sdk-Version").map(str::trim)
    }
}

/// A parsed DAR plus the identity of the bytes it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DarInfo {
    /// The parsed content.
    pub dar: Dar,
    /// Lowercase hex SHA-256 of the whole file.
    pub file_sha256: String,
    /// File size in bytes.
    pub file_size: u64,
}

/// Parses and fully checks DAR bytes as Canton does, and hashes them.
pub fn inspect_bytes(bytes: &[u8]) -> Result<DarInfo, DarError> {
    inspect_bytes_with(bytes, &ReadOptions::default())
}

/// [`inspect_bytes`] with options.
pub fn inspect_bytes_with(bytes: &[u8], options: &ReadOptions) -> Result<DarInfo, DarError> {
    let dar = parse(bytes, options)?;
    Ok(DarInfo {
        dar,
        file_sha256: sha256_hex(bytes),
        file_size: bytes.len() as u64,
    })
}

/// Hashes a DAR file and parses it with full checks.
pub fn inspect_file(path: impl AsRef<Path>) -> Result<DarInfo, InspectError> {
    inspect_file_with(path, &ReadOptions::default())
}

/// [`inspect_file`] with options.
///
/// The file is opened once: it is streamed through SHA-256 with a small
/// reused buffer (as `openssl dgst` does, so the data is hashed while in
/// cache), then the same handle is rewound and the zip is read from it, which
/// with [`Scope::MainOnly`] touches only the central directory, the manifest
/// and the main dalf.
pub fn inspect_file_with(
    path: impl AsRef<Path>,
    options: &ReadOptions,
) -> Result<DarInfo, InspectError> {
    let path = path.as_ref();
    let io_err = |source| InspectError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io_err)?;
    let (file_sha256, file_size) = hash_reader(&mut file).map_err(io_err)?;
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let dar =
        parse_reader(BufReader::with_capacity(READ_BUFFER, file), options).map_err(|source| {
            InspectError::Dar {
                path: path.to_path_buf(),
                source,
            }
        })?;
    Ok(DarInfo {
        dar,
        file_sha256,
        file_size,
    })
}

/// Buffer for hashing and reading files: small enough to stay in the CPU's
/// L2 cache between the read and the hash.
const READ_BUFFER: usize = 256 * 1024;

/// Lowercase hex SHA-256 and size of a file, streamed.
pub fn hash_file(path: impl AsRef<Path>) -> std::io::Result<(String, u64)> {
    hash_reader(&mut std::fs::File::open(path)?)
}

/// Lowercase hex SHA-256 and length of everything `reader` yields.
pub fn hash_reader(reader: &mut impl Read) -> std::io::Result<(String, u64)> {
    let mut buf = vec![0u8; READ_BUFFER];
    let mut hasher = Sha256Hasher::new();
    let mut total = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((hasher.finish_hex(), total))
}

/// Parses DAR bytes.
pub fn parse(bytes: &[u8], options: &ReadOptions) -> Result<Dar, DarError> {
    parse_reader(Cursor::new(bytes), options)
}

/// Parses a DAR from any seekable reader (a file, a cursor).
pub fn parse_reader<R: Read + Seek>(reader: R, options: &ReadOptions) -> Result<Dar, DarError> {
    let limit = options.limits.max_entry_size;
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| DarError::NotAZip {
        reason: e.to_string(),
    })?;

    // Read the manifest first only to learn which entries to keep; its errors
    // are reported after all entries were read, in Canton's order.
    let manifest_bytes = match zip.index_for_name(MANIFEST_PATH) {
        Some(i) => Some(read_entry(&mut zip, i, limit)?.1),
        None => None,
    };
    let manifest = manifest_bytes.as_deref().map(Manifest::parse);
    let names = match &manifest {
        Some(Ok(m)) => m.dalf_names().ok(),
        _ => None,
    };

    let mut wanted: HashMap<&str, Option<Vec<u8>>> = HashMap::new();
    if let Some(names) = &names {
        wanted.insert(names.main.as_str(), None);
        if options.scope == Scope::Full {
            for d in &names.dependencies {
                wanted.insert(d.as_str(), None);
            }
        }
    }

    for i in 0..zip.len() {
        let (name, is_dir, declared) = {
            let entry = zip.by_index_raw(i).map_err(|e| entry_error(i, &e))?;
            let name = entry.name().map_err(|e| entry_error(i, &e))?.into_owned();
            (name, entry.is_dir(), entry.size())
        };
        if is_dir {
            continue;
        }
        if declared >= limit {
            return Err(DarError::ZipBomb {
                entry: name,
                size: declared,
                limit,
            });
        }
        if name == MANIFEST_PATH {
            continue; // already read
        }
        if let Some(slot) = wanted.get_mut(name.as_str()) {
            *slot = Some(read_entry(&mut zip, i, limit)?.1);
        } else if options.scope == Scope::Full {
            drain_entry(&mut zip, i, limit)?;
        }
    }

    let manifest = match manifest {
        None => return Err(DarError::MissingManifest),
        Some(m) => m?,
    };
    let DalfNames { main, dependencies } = manifest.dalf_names()?;

    let mut take = |path: &str| -> Result<Vec<u8>, DarError> {
        match wanted.get_mut(path).and_then(Option::take) {
            Some(b) => Ok(b),
            None => Err(DarError::MissingDalf {
                path: path.to_string(),
            }),
        }
    };
    let main_info = decode_dalf(&main, take(&main)?)?;
    let mut dalfs = vec![main_info];
    match options.scope {
        Scope::Full => {
            for dep in &dependencies {
                if *dep == main {
                    continue;
                }
                let bytes = take(dep)?;
                dalfs.push(decode_dalf(dep, bytes)?);
            }
        }
        Scope::MainOnly => {
            for dep in &dependencies {
                if zip.index_for_name(dep).is_none() {
                    return Err(DarError::MissingDalf { path: dep.clone() });
                }
            }
        }
    }

    let (name, version, name_source) = dar_name_version(&dalfs[0], &manifest);
    Ok(Dar {
        main_package_id: dalfs[0].package_id.clone(),
        name,
        version,
        name_source,
        manifest,
        main_dalf_path: main,
        dependency_paths: dependencies,
        dalfs,
    })
}

fn entry_error(index: usize, e: &zip::result::ZipError) -> DarError {
    DarError::EntryRead {
        entry: format!("#{index}"),
        reason: e.to_string(),
    }
}

/// Reads one entry fully, refusing more than `limit` bytes whatever its header
/// declares.
fn read_entry<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    index: usize,
    limit: u64,
) -> Result<(String, Vec<u8>), DarError> {
    let mut entry = zip.by_index(index).map_err(|e| entry_error(index, &e))?;
    let name = entry
        .name()
        .map_err(|e| entry_error(index, &e))?
        .into_owned();
    if entry.size() >= limit {
        return Err(DarError::ZipBomb {
            entry: name,
            size: entry.size(),
            limit,
        });
    }
    let mut out = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
    let read = (&mut entry)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| DarError::EntryRead {
            entry: name.clone(),
            reason: e.to_string(),
        })?;
    if read as u64 >= limit {
        return Err(DarError::ZipBomb {
            entry: name,
            size: read as u64,
            limit,
        });
    }
    Ok((name, out))
}

/// Inflates and CRC-checks an entry without keeping it, under the same cap.
fn drain_entry<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    index: usize,
    limit: u64,
) -> Result<(), DarError> {
    let mut entry = zip.by_index(index).map_err(|e| entry_error(index, &e))?;
    let name = entry
        .name()
        .map_err(|e| entry_error(index, &e))?
        .into_owned();
    let read = std::io::copy(&mut (&mut entry).take(limit), &mut std::io::sink()).map_err(|e| {
        DarError::EntryRead {
            entry: name.clone(),
            reason: e.to_string(),
        }
    })?;
    if read >= limit {
        return Err(DarError::ZipBomb {
            entry: name,
            size: read,
            limit,
        });
    }
    Ok(())
}

/// Decodes one `.dalf` and checks its hash, as Canton's archive reader does.
pub fn decode_dalf(path: &str, bytes: Vec<u8>) -> Result<DalfInfo, DarError> {
    let decode_err = |reason: String| DarError::DalfDecode {
        path: path.to_string(),
        reason,
    };
    let archive = Archive::decode(Bytes::from(bytes)).map_err(|e| decode_err(e.to_string()))?;
    if HashFunction::try_from(archive.hash_function) != Ok(HashFunction::Sha256) {
        return Err(DarError::UnsupportedHashFunction {
            path: path.to_string(),
            value: archive.hash_function,
        });
    }
    let package_id = sha256_hex(&archive.payload);
    if archive.hash != package_id {
        return Err(DarError::HashMismatch {
            path: path.to_string(),
            declared: archive.hash,
            computed: package_id,
        });
    }
    let payload_size = archive.payload.len() as u64;
    let payload = ArchivePayload::decode(archive.payload).map_err(|e| decode_err(e.to_string()))?;
    let unsupported = |reason: &str| DarError::UnsupportedLanguageVersion {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    let package = match payload.sum {
        Some(Sum::DamlLf2(package)) => package,
        Some(Sum::DamlLf1(_)) => {
            return Err(unsupported(
                "Daml-LF 1 packages are not supported by Canton 3.x",
            ));
        }
        None => {
            return Err(unsupported(
                "the archive payload carries no Daml-LF package",
            ));
        }
    };
    let head = PackageHead::decode(package).map_err(|e| decode_err(e.to_string()))?;
    let (name, version) = head.name_and_version().unzip();
    Ok(DalfInfo {
        path: path.to_string(),
        package_id,
        payload_size,
        language_version: format!("2.{}", payload.minor),
        name,
        version,
    })
}

/// Name and version of a DAR: the main package's metadata, else the manifest's
/// `Name`, else the main dalf's directory name.
fn dar_name_version(main: &DalfInfo, manifest: &Manifest) -> (String, String, NameSource) {
    if let (Some(n), Some(v)) = (&main.name, &main.version) {
        return (n.clone(), v.clone(), NameSource::PackageMetadata);
    }
    if let Some((n, v)) = manifest
        .get("Name")
        .map(str::trim)
        .and_then(split_name_version)
    {
        return (n.to_string(), v.to_string(), NameSource::Manifest);
    }
    if let Some((n, v)) = name_version_from_dalf_path(&main.path) {
        return (n.to_string(), v.to_string(), NameSource::DalfPath);
    }
    (main.path.clone(), String::new(), NameSource::Unknown)
}

/// `<name>-<version>-<package id>/...` → (name, version).
pub fn name_version_from_dalf_path(path: &str) -> Option<(&str, &str)> {
    let dir = path.split('/').next().filter(|d| *d != path)?;
    let (name_version, id) = dir.rsplit_once('-')?;
    if !crate::digest::is_package_id(id) {
        return None;
    }
    split_name_version(name_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dalf_path_gives_name_and_version() {
        let id = sha256_hex(b"p");
        let path = format!("my-pkg-1.2.0-{id}/my-pkg-1.2.0-{id}.dalf");
        assert_eq!(
            name_version_from_dalf_path(&path),
            Some(("my-pkg", "1.2.0"))
        );
        assert_eq!(name_version_from_dalf_path("top.dalf"), None);
        assert_eq!(
            name_version_from_dalf_path("my-pkg-1.2.0-nothex/x.dalf"),
            None
        );
    }
}
