//! Why a DAR was refused, as a typed error whose variants map onto Canton's
//! error ids (reference/canton-wire.md §6), so that dar-sync can report the
//! same reason Canton would give and the simulator can answer with the same id.

use std::path::PathBuf;

/// Why the bytes of a DAR were refused. Each variant maps to the Canton error id
/// that a participant answers `UploadDar` / `ValidateDar` with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DarError {
    /// The bytes are not a readable zip archive (no end of central directory,
    /// truncated, garbage). Canton finds no manifest in them: `INVALID_DAR`.
    #[error("not a zip archive: {reason}")]
    NotAZip {
        /// What the zip reader said.
        reason: String,
    },
    /// A zip entry could not be read (bad CRC, unsupported compression, bad
    /// name). Canton's reader fails with an I/O error: `DAR_PARSE_ERROR`.
    #[error("cannot read zip entry {entry:?}: {reason}")]
    EntryRead {
        /// The entry name (lossy when the name itself is the problem).
        entry: String,
        /// What went wrong.
        reason: String,
    },
    /// An entry reaches the per-entry cap (1 GiB in Canton, which refuses an
    /// entry once it has inflated that many bytes), by its declared size or by
    /// the bytes actually inflated: `ZIP_BOMB`.
    #[error(
        "an entry is too large, rejected as a possible zip bomb: {entry:?} has {size} bytes, at or over the cap of {limit} bytes"
    )]
    ZipBomb {
        /// The entry name.
        entry: String,
        /// Its declared size, or the bytes read when that passed the cap.
        size: u64,
        /// The cap in bytes.
        limit: u64,
    },
    /// No `META-INF/MANIFEST.MF` entry: `INVALID_DAR`.
    #[error("no META-INF/MANIFEST.MF in the archive")]
    MissingManifest,
    /// The manifest is not valid JAR manifest syntax: `INVALID_DAR`.
    #[error("invalid META-INF/MANIFEST.MF: {reason}")]
    InvalidManifest {
        /// What is wrong with it.
        reason: String,
    },
    /// A required manifest attribute (`Main-Dalf`, `Dalfs`, `Format`) is
    /// missing: `INVALID_DAR`.
    #[error("manifest attribute {attribute} is missing")]
    MissingAttribute {
        /// The attribute name.
        attribute: &'static str,
    },
    /// The manifest's `Format` is not `daml-lf`: `INVALID_DAR`.
    #[error("manifest Format is {format:?}, not \"daml-lf\"")]
    BadFormat {
        /// The format found.
        format: String,
    },
    /// A dalf named by the manifest is not in the archive: `INVALID_ZIP_ENTRY`
    /// (Canton looks the name up among the zip entries).
    #[error("{path} is named by the manifest but not in the archive")]
    MissingDalf {
        /// The path the manifest names.
        path: String,
    },
    /// A dalf is not a valid `daml_lf.Archive` / `ArchivePayload`:
    /// `DAR_PARSE_ERROR`.
    #[error("{path} is not a valid Daml-LF archive: {reason}")]
    DalfDecode {
        /// The dalf path.
        path: String,
        /// The protobuf decoding error.
        reason: String,
    },
    /// A dalf uses a hash function other than SHA-256: `DAR_PARSE_ERROR`.
    #[error("{path} uses unsupported hash function {value}")]
    UnsupportedHashFunction {
        /// The dalf path.
        path: String,
        /// The enum value found.
        value: i32,
    },
    /// A dalf's declared `hash` is not the SHA-256 of its payload:
    /// `DAR_PARSE_ERROR` ("Mismatching hashes").
    #[error(
        "{path}: mismatching hashes, the archive declares {declared:?} but its payload hashes to {computed}"
    )]
    HashMismatch {
        /// The dalf path.
        path: String,
        /// The `Archive.hash` field.
        declared: String,
        /// The SHA-256 of `Archive.payload`.
        computed: String,
    },
    /// A dalf carries no Daml-LF 2 package (Daml-LF 1, or nothing):
    /// `DAR_PARSE_ERROR`.
    #[error("{path}: {reason}")]
    UnsupportedLanguageVersion {
        /// The dalf path.
        path: String,
        /// What was found.
        reason: String,
    },
}

impl DarError {
    /// The Canton error id a participant answers with for this DAR.
    pub fn canton_error_id(&self) -> &'static str {
        match self {
            DarError::NotAZip { .. }
            | DarError::MissingManifest
            | DarError::InvalidManifest { .. }
            | DarError::MissingAttribute { .. }
            | DarError::BadFormat { .. } => "INVALID_DAR",
            DarError::MissingDalf { .. } => "INVALID_ZIP_ENTRY",
            DarError::ZipBomb { .. } => "ZIP_BOMB",
            DarError::EntryRead { .. }
            | DarError::DalfDecode { .. }
            | DarError::UnsupportedHashFunction { .. }
            | DarError::HashMismatch { .. }
            | DarError::UnsupportedLanguageVersion { .. } => "DAR_PARSE_ERROR",
        }
    }

    /// The human reason (same as `Display`), for reports.
    pub fn reason(&self) -> String {
        self.to_string()
    }

    /// A short hint naming the fix, for command-line reports.
    pub fn hint(&self) -> &'static str {
        match self {
            DarError::NotAZip { .. } => {
                "the file is not a DAR (or is truncated); rebuild it with `daml build` or fetch it again"
            }
            DarError::ZipBomb { .. } => {
                "Canton refuses entries over 1 GiB; rebuild the DAR with smaller packages"
            }
            DarError::HashMismatch { .. } => {
                "a dalf was modified after it was built; rebuild the DAR with `daml build`"
            }
            _ => "the DAR is damaged or not built by damlc; rebuild it with `daml build`",
        }
    }
}

/// Why a DAR file could not be inspected: it could not be read, or its bytes
/// were refused.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a valid DAR.
    #[error("{}: {source}", path.display())]
    Dar {
        /// The file.
        path: PathBuf,
        /// Why the DAR was refused.
        #[source]
        source: DarError,
    },
}

impl InspectError {
    /// The Canton error id, when the bytes were refused (None for I/O errors).
    pub fn canton_error_id(&self) -> Option<&'static str> {
        match self {
            InspectError::Io { .. } => None,
            InspectError::Dar { source, .. } => Some(source.canton_error_id()),
        }
    }

    /// The DAR error, when the bytes were refused.
    pub fn dar_error(&self) -> Option<&DarError> {
        match self {
            InspectError::Io { .. } => None,
            InspectError::Dar { source, .. } => Some(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_cantons_mapping() {
        assert_eq!(DarError::MissingManifest.canton_error_id(), "INVALID_DAR");
        let bomb = DarError::ZipBomb {
            entry: "x".into(),
            size: 2,
            limit: 1,
        };
        assert_eq!(bomb.canton_error_id(), "ZIP_BOMB");
        let mismatch = DarError::HashMismatch {
            path: "a.dalf".into(),
            declared: "00".into(),
            computed: "11".into(),
        };
        assert_eq!(mismatch.canton_error_id(), "DAR_PARSE_ERROR");
        assert!(mismatch.reason().contains("mismatching hashes"));
    }
}
