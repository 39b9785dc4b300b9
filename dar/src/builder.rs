//! Builds DARs for tests and benchmarks: valid ones of any size, shaped like
//! damlc's output (manifest, main dalf, dependency dalfs, a source file), and
//! deliberately broken ones for each way Canton refuses a DAR.
//!
//! The main package is a small but well-formed Daml-LF 2 `Package` (interned
//! strings, one module, metadata with name and version) derived from name,
//! version and seed, so equal inputs give equal package ids and different
//! inputs different ones. Size padding is pseudo-random bytes in an unused
//! field of the package, which protobuf readers skip and deflate cannot shrink.

use crate::digest::sha256_hex;
use crate::manifest::{DAML_LF_FORMAT, MANIFEST_PATH, Manifest};
use crate::prng::SplitMix64;
use crate::proto::{Archive, ArchivePayload, HashFunction, PackageMetadata, archive_payload::Sum};
use prost::Message;
use std::io::{Cursor, Write};
use zip::write::SimpleFileOptions;

/// How entries are stored in the zip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Deflate, as damlc does.
    #[default]
    Deflate,
    /// Stored (no compression): fastest to build large DARs.
    Store,
}

/// Which dalfs carry the size padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PaddingPlacement {
    /// Dependencies when there are any (as in real DARs, where the bundled
    /// dependencies are most of the bytes), else the main dalf.
    #[default]
    Auto,
    /// The main dalf.
    Main,
    /// Spread evenly over the dependency dalfs (needs at least one).
    Dependencies,
}

/// A deliberate defect, each matching one way Canton refuses a DAR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Corruption {
    /// `Format:` has this value instead of `daml-lf` (INVALID_DAR).
    WrongFormat(String),
    /// No `META-INF/MANIFEST.MF` (INVALID_DAR).
    MissingManifest,
    /// The manifest lacks this attribute, e.g. `Main-Dalf` (INVALID_DAR).
    MissingAttribute(&'static str),
    /// The manifest names the main dalf but the zip lacks it (INVALID_DAR).
    MissingMainDalf,
    /// The manifest names a dependency dalf the zip lacks (INVALID_DAR).
    MissingDependencyDalf,
    /// The main dalf's `Archive.hash` is not its payload's SHA-256
    /// (DAR_PARSE_ERROR).
    HashMismatch,
    /// The main dalf is not a protobuf `Archive` (DAR_PARSE_ERROR).
    GarbageMainDalf,
    /// The main payload is a Daml-LF 1 package (DAR_PARSE_ERROR).
    DamlLf1,
    /// The file is cut after 60 % of its bytes (INVALID_DAR).
    Truncated,
    /// The bytes are plain text, not a zip (INVALID_DAR).
    NotAZip,
    /// An extra entry whose zip headers declare 3 GiB uncompressed, over
    /// Canton's 1 GiB cap, while storing only a few bytes (ZIP_BOMB for this
    /// crate, which checks declared sizes; Canton itself would fail reading
    /// it with DAR_PARSE_ERROR because the size does not match).
    ZipBombDeclared,
    /// An extra entry that really inflates to at least `inflated_size` zero
    /// bytes (at most 4 GiB - 1), with honest sizes and CRC, from a
    /// hand-written deflate stream of about 1 MiB per GiB. With
    /// [`CANTON_ZIP_BOMB_SIZE`] it is refused by this crate (declared size)
    /// and by Canton (bytes inflated) alike: ZIP_BOMB.
    ZipBomb {
        /// Minimum number of bytes the entry inflates to.
        inflated_size: u64,
    },
}

/// Canton's per-entry threshold, the natural size for [`Corruption::ZipBomb`].
pub const CANTON_ZIP_BOMB_SIZE: u64 = crate::reader::DEFAULT_MAX_ENTRY_SIZE;

/// The declared size written by [`Corruption::ZipBombDeclared`].
pub const ZIP_BOMB_DECLARED_SIZE: u64 = 3 * 1024 * 1024 * 1024;

/// Name of the entry added by [`Corruption::ZipBombDeclared`] and
/// [`Corruption::ZipBomb`].
pub const ZIP_BOMB_ENTRY: &str = "data/bomb.bin";

/// One dalf written into a built DAR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltDalf {
    /// Path inside the zip.
    pub path: String,
    /// SHA-256 of the payload the builder wrote.
    pub package_id: String,
}

/// A built DAR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltDar {
    /// The file content.
    pub bytes: Vec<u8>,
    /// The main package id, computed by the builder from the payload it wrote.
    pub main_package_id: String,
    /// Package name.
    pub name: String,
    /// Package version.
    pub version: String,
    /// The dalfs written (main first), whether or not a corruption removed one.
    pub dalfs: Vec<BuiltDalf>,
}

impl BuiltDar {
    /// Writes the DAR to `path` (through a temporary file renamed into place,
    /// so a reader never sees half a DAR).
    pub fn write_to(&self, path: impl AsRef<std::path::Path>) -> std::io::Result<()> {
        let path = path.as_ref();
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        std::fs::write(&tmp, &self.bytes)?;
        std::fs::rename(&tmp, path)
    }
}

/// Builds a DAR. See the module docs.
#[derive(Debug, Clone)]
pub struct DarBuilder {
    name: String,
    version: String,
    sdk_version: String,
    seed: u64,
    dependencies: usize,
    target_size: u64,
    padding: PaddingPlacement,
    compression: Compression,
    lf_minor: String,
    corruption: Option<Corruption>,
}

impl DarBuilder {
    /// A DAR for package `name` at `version` (e.g. `"my-token"`, `"1.0.0"`),
    /// with no dependencies, no padding, SDK 3.3.0, Daml-LF 2.1, seed 0.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        DarBuilder {
            name: name.into(),
            version: version.into(),
            sdk_version: "3.3.0".to_string(),
            seed: 0,
            dependencies: 0,
            target_size: 0,
            padding: PaddingPlacement::Auto,
            compression: Compression::Deflate,
            lf_minor: "1".to_string(),
            corruption: None,
        }
    }
    /// Number of dependency dalfs.
    #[must_use]
    pub fn dependencies(mut self, n: usize) -> Self {
        self.dependencies = n;
        self
    }
    /// Pads until the DAR file has at least `bytes` bytes.
    #[must_use]
    pub fn target_size(mut self, bytes: u64) -> Self {
        self.target_size = bytes;
        self
    }
    /// Which dalfs carry the padding.
    #[must_use]
    pub fn padding_placement(mut self, placement: PaddingPlacement) -> Self {
        self.padding = placement;
        self
    }
    /// The manifest's `Sdk-Version`.
    #[must_use]
    pub fn sdk_version(mut self, v: impl Into<String>) -> Self {
        self.sdk_version = v.into();
        self
    }
    /// Seed for the package content and padding: same inputs, same bytes.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Zip compression of the entries.
    #[must_use]
    pub fn compression(mut self, c: Compression) -> Self {
        self.compression = c;
        self
    }
    /// Daml-LF 2 minor version written in the payload (`"1"` for 2.1).
    #[must_use]
    pub fn lf_minor(mut self, minor: impl Into<String>) -> Self {
        self.lf_minor = minor.into();
        self
    }
    /// Breaks the DAR in the given way.
    #[must_use]
    pub fn corrupt(mut self, c: Corruption) -> Self {
        self.corruption = Some(c);
        self
    }

    /// Builds the DAR.
    pub fn build(&self) -> BuiltDar {
        let mut built = self.build_with_padding(0);
        if (built.bytes.len() as u64) < self.target_size {
            // Padding is incompressible and adds at least its own length, so
            // this reaches the target in one step (the loop is a safety net).
            let mut padding = self.target_size - built.bytes.len() as u64;
            loop {
                built = self.build_with_padding(padding);
                let len = built.bytes.len() as u64;
                if len >= self.target_size {
                    break;
                }
                padding += self.target_size - len;
            }
        }
        built
    }

    fn dependency_count(&self) -> usize {
        match (&self.corruption, self.padding) {
            (Some(Corruption::MissingDependencyDalf), _) | (_, PaddingPlacement::Dependencies) => {
                self.dependencies.max(1)
            }
            _ => self.dependencies,
        }
    }

    fn build_with_padding(&self, padding: u64) -> BuiltDar {
        let deps = self.dependency_count();
        let padding = usize::try_from(padding).expect("padding fits in memory");
        let pad_main = deps == 0 || self.padding == PaddingPlacement::Main;
        let pad_for = |i: usize| -> usize {
            // Role 0 is the main package, 1..=deps the dependencies.
            match (pad_main, i) {
                (true, 0) => padding,
                (true, _) | (false, 0) => 0,
                (false, i) => padding / deps + usize::from(i - 1 < padding % deps),
            }
        };

        let lf1 = self.corruption == Some(Corruption::DamlLf1);
        let main_payload = self.payload(&self.name, &self.version, 0, pad_for(0), lf1);
        let main_id = sha256_hex(&main_payload);
        let dir = format!("{}-{}-{main_id}", self.name, self.version);
        let main_path = format!("{dir}/{}-{}-{main_id}.dalf", self.name, self.version);

        let declared_hash = if self.corruption == Some(Corruption::HashMismatch) {
            sha256_hex(b"not the payload")
        } else {
            main_id.clone()
        };
        let main_dalf = if self.corruption == Some(Corruption::GarbageMainDalf) {
            vec![0xff; 12] // an over-long varint: no protobuf reader accepts it
        } else {
            encode_archive(main_payload, declared_hash)
        };

        let mut dalfs = vec![(
            BuiltDalf {
                path: main_path.clone(),
                package_id: main_id.clone(),
            },
            main_dalf,
        )];
        for i in 1..=deps {
            let dep_name = format!("{}-dep{i}", self.name);
            let payload = self.payload(&dep_name, &self.version, i, pad_for(i), false);
            let id = sha256_hex(&payload);
            let path = format!("{dir}/{dep_name}-{}-{id}.dalf", self.version);
            let dalf = encode_archive(payload, id.clone());
            dalfs.push((
                BuiltDalf {
                    path,
                    package_id: id,
                },
                dalf,
            ));
        }

        let manifest = self.manifest(&main_path, &dalfs);
        let source = format!(
            "module Main where\n\n-- {} {} (seed {}), built for tests by daml-dar\n",
            self.name, self.version, self.seed
        );

        let bytes = match self.corruption {
            Some(Corruption::NotAZip) => {
                b"This is not a DAR: Canton expects a zip archive with META-INF/MANIFEST.MF.\n"
                    .to_vec()
            }
            _ => self.zip(&dir, &manifest, &source, &dalfs),
        };
        let bytes = match self.corruption {
            Some(Corruption::Truncated) => bytes[..bytes.len() * 6 / 10].to_vec(),
            _ => bytes,
        };

        BuiltDar {
            bytes,
            main_package_id: main_id,
            name: self.name.clone(),
            version: self.version.clone(),
            dalfs: dalfs.into_iter().map(|(d, _)| d).collect(),
        }
    }

    fn manifest(&self, main_path: &str, dalfs: &[(BuiltDalf, Vec<u8>)]) -> Manifest {
        let all = dalfs
            .iter()
            .map(|(d, _)| d.path.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let format = match &self.corruption {
            Some(Corruption::WrongFormat(f)) => f.clone(),
            _ => DAML_LF_FORMAT.to_string(),
        };
        let mut m = Manifest::default();
        for (name, value) in [
            ("Manifest-Version", "1.0".to_string()),
            ("Created-By", "damlc".to_string()),
            ("Name", format!("{}-{}", self.name, self.version)),
            ("Sdk-Version", self.sdk_version.clone()),
            ("Main-Dalf", main_path.to_string()),
            ("Dalfs", all),
            ("Format", format),
            ("Encryption", "non-encrypted".to_string()),
        ] {
            if self.corruption != Some(Corruption::MissingAttribute(name)) {
                m.push(name, value);
            }
        }
        m
    }

    fn zip(
        &self,
        dir: &str,
        manifest: &Manifest,
        source: &str,
        dalfs: &[(BuiltDalf, Vec<u8>)],
    ) -> Vec<u8> {
        let capacity = dalfs.iter().map(|(_, b)| b.len()).sum::<usize>() + 64 * 1024;
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::with_capacity(capacity)));
        let method = match self.compression {
            Compression::Deflate => zip::CompressionMethod::Deflated,
            Compression::Store => zip::CompressionMethod::Stored,
        };
        let options = SimpleFileOptions::default()
            .compression_method(method)
            .last_modified_time(zip::DateTime::default())
            .large_file(capacity as u64 >= u64::from(u32::MAX));
        let add_with = |zip: &mut zip::ZipWriter<_>, name: &str, bytes: &[u8], options| {
            zip.start_file(name, options)
                .and_then(|()| zip.write_all(bytes).map_err(Into::into))
                .expect("writing a zip into memory cannot fail");
        };
        let add = |zip: &mut zip::ZipWriter<_>, name: &str, bytes: &[u8]| {
            add_with(zip, name, bytes, options);
        };
        for (i, (dalf, bytes)) in dalfs.iter().enumerate() {
            let skip = match self.corruption {
                Some(Corruption::MissingMainDalf) => i == 0,
                Some(Corruption::MissingDependencyDalf) => i == 1,
                _ => false,
            };
            if !skip {
                add(&mut zip, &dalf.path, bytes);
            }
        }
        add(&mut zip, &format!("{dir}/Main.daml"), source.as_bytes());
        let bomb = match self.corruption {
            Some(Corruption::ZipBombDeclared) => {
                add(&mut zip, ZIP_BOMB_ENTRY, b"zeros would go here");
                Some(EntryPatch {
                    size: ZIP_BOMB_DECLARED_SIZE,
                    deflated_crc: None,
                })
            }
            Some(Corruption::ZipBomb { inflated_size }) => {
                // Stored as raw bytes, then relabelled as deflated below.
                let (stream, size, crc) = crate::bomb::deflate_zeros(inflated_size);
                let stored = options.compression_method(zip::CompressionMethod::Stored);
                add_with(&mut zip, ZIP_BOMB_ENTRY, &stream, stored);
                Some(EntryPatch {
                    size,
                    deflated_crc: Some(crc),
                })
            }
            _ => None,
        };
        if self.corruption != Some(Corruption::MissingManifest) {
            add(&mut zip, MANIFEST_PATH, &manifest.to_bytes());
        }
        let mut bytes = zip
            .finish()
            .expect("finishing a zip in memory cannot fail")
            .into_inner();
        if let Some(patch) = bomb {
            patch_entry(&mut bytes, ZIP_BOMB_ENTRY, patch);
        }
        bytes
    }

    /// A serialized `ArchivePayload` for one package.
    fn payload(
        &self,
        name: &str,
        version: &str,
        role: usize,
        padding: usize,
        lf1: bool,
    ) -> Vec<u8> {
        let package = package_bytes(name, version, self.seed, role, padding);
        let payload = ArchivePayload {
            minor: self.lf_minor.clone(),
            patch: 0,
            sum: Some(if lf1 {
                Sum::DamlLf1(package.into())
            } else {
                Sum::DamlLf2(package.into())
            }),
        };
        payload.encode_to_vec()
    }
}

fn encode_archive(payload: Vec<u8>, hash: String) -> Vec<u8> {
    Archive {
        hash_function: HashFunction::Sha256 as i32,
        payload: payload.into(),
        hash,
    }
    .encode_to_vec()
}

/// What the builder writes as a `daml_lf_2.Package`: the real field numbers
/// for modules, interned strings, dotted names and metadata, plus padding.
#[derive(Clone, PartialEq, prost::Message)]
struct PackageOut {
    #[prost(message, repeated, tag = "1")]
    modules: Vec<ModuleOut>,
    #[prost(string, repeated, tag = "2")]
    interned_strings: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    interned_dotted_names: Vec<DottedNameOut>,
    #[prost(message, optional, tag = "4")]
    metadata: Option<PackageMetadata>,
    /// Field 1000 is unused by Daml-LF, so readers skip it as unknown.
    #[prost(bytes = "vec", tag = "1000")]
    padding: Vec<u8>,
}

/// `daml_lf_2.Module` with only its name.
#[derive(Clone, PartialEq, prost::Message)]
struct ModuleOut {
    #[prost(int32, tag = "1")]
    name_interned_dname: i32,
}

/// `daml_lf_2.InternedDottedName`.
#[derive(Clone, PartialEq, prost::Message)]
struct DottedNameOut {
    #[prost(int32, repeated, tag = "1")]
    segments_interned_str: Vec<i32>,
}

fn package_bytes(name: &str, version: &str, seed: u64, role: usize, padding: usize) -> Vec<u8> {
    let salt = format!("daml-dar test package {name} {version} seed={seed} role={role}");
    let digest = sha256_hex(salt.as_bytes());
    let prng_seed = u64::from_str_radix(&digest[..16], 16).expect("hex digits");
    let package = PackageOut {
        modules: vec![ModuleOut {
            name_interned_dname: 0,
        }],
        interned_strings: vec![
            name.to_string(),
            version.to_string(),
            "Main".to_string(),
            salt,
        ],
        interned_dotted_names: vec![DottedNameOut {
            segments_interned_str: vec![2],
        }],
        metadata: Some(PackageMetadata {
            name_interned_str: 0,
            version_interned_str: 1,
        }),
        padding: SplitMix64::new(prng_seed).bytes(padding),
    };
    package.encode_to_vec()
}

/// A rewrite of one entry's zip headers.
struct EntryPatch {
    /// New uncompressed size.
    size: u64,
    /// When set: relabel the entry as deflated with this CRC-32.
    deflated_crc: Option<u32>,
}

/// Rewrites entry `name` in its local header and its central directory
/// record, leaving the data alone.
fn patch_entry(zip: &mut [u8], name: &str, patch: EntryPatch) {
    let size = u32::try_from(patch.size).expect("size fits the 32-bit field");
    let name = name.as_bytes();
    // (signature, offsets of: method, CRC, uncompressed size, name length, name)
    for (sig, method_at, crc_at, size_at, len_at, name_at) in [
        (*b"PK\x03\x04", 8, 14, 22, 26, 30),
        (*b"PK\x01\x02", 10, 16, 24, 28, 46),
    ] {
        let found = (0..zip.len().saturating_sub(name_at)).find(|&i| {
            zip[i..i + 4] == sig && {
                let len = usize::from(u16::from_le_bytes([zip[i + len_at], zip[i + len_at + 1]]));
                zip.get(i + name_at..i + name_at + len) == Some(name)
            }
        });
        let i = found.expect("the entry was just written");
        zip[i + size_at..i + size_at + 4].copy_from_slice(&size.to_le_bytes());
        if let Some(crc) = patch.deflated_crc {
            zip[i + method_at..i + method_at + 2].copy_from_slice(&8u16.to_le_bytes());
            zip[i + crc_at..i + crc_at + 4].copy_from_slice(&crc.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DarError, Limits, ReadOptions, Scope, parse};

    #[test]
    fn a_bomb_that_lies_about_its_size_is_stopped_by_the_bytes_read() {
        let built = DarBuilder::new("liar", "1.0.0")
            .corrupt(Corruption::ZipBomb {
                inflated_size: 3 << 20,
            })
            .build();
        let mut bytes = built.bytes;
        // Declare 100 bytes for an entry that inflates to 3 MiB.
        patch_entry(
            &mut bytes,
            ZIP_BOMB_ENTRY,
            EntryPatch {
                size: 100,
                deflated_crc: Some(crate::bomb::crc32_of_zeros(100)),
            },
        );
        let options = ReadOptions {
            limits: Limits {
                max_entry_size: 1 << 20,
            },
            scope: Scope::Full,
        };
        match parse(&bytes, &options).unwrap_err() {
            // zip 9 notices the size mismatch first ("larger than its declared
            // uncompressed size"); the cap on bytes read is the second guard.
            // Either way the 3 MiB are never read unchecked.
            DarError::ZipBomb { size, limit, .. } => assert!(size >= limit),
            DarError::EntryRead { .. } => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_manifest_is_written_as_damlc_does() {
        let built = DarBuilder::new("m", "1.0.0").dependencies(2).build();
        let mut zip = zip::ZipArchive::new(Cursor::new(&built.bytes)).unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut zip.by_name(MANIFEST_PATH).unwrap(), &mut text).unwrap();
        let first: Vec<&str> = text.lines().take(4).collect();
        assert_eq!(
            first[..3],
            [
                "Manifest-Version: 1.0",
                "Created-By: damlc",
                "Name: m-1.0.0"
            ]
        );
        assert_eq!(first[3], "Sdk-Version: 3.3.0");
        assert!(text.contains("\nFormat: daml-lf\n"));
        assert!(text.contains("\nEncryption: non-encrypted\n"));
        assert!(text.lines().all(|l| l.len() <= 72));
        // Main-Dalf is longer than 72 bytes, so it is wrapped.
        assert!(text.lines().any(|l| l.starts_with(' ')));
    }
}
