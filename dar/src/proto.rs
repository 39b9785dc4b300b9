//! The few Daml-LF protobuf messages a DAR reader needs, declared by hand with
//! prost derive (no `.proto` build step): the `.dalf` envelope (`Archive`), its
//! payload (`ArchivePayload`), and the head of a Daml-LF 2 `Package` that holds
//! the package's name and version.
//!
//! Field numbers follow `daml_lf.proto` / `daml_lf2.proto` (see
//! reference/canton-wire.md §2). Everything else in a package is skipped as
//! unknown fields, which prost does without allocating.

/// `daml_lf.HashFunction`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum HashFunction {
    /// The only hash function Daml-LF defines.
    Sha256 = 0,
}

/// `daml_lf.Archive`: the content of a `.dalf` file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Archive {
    /// Hash function used for `hash`; must be SHA256.
    #[prost(enumeration = "HashFunction", tag = "1")]
    pub hash_function: i32,
    /// Serialized `ArchivePayload`, hashed exactly as stored.
    #[prost(bytes = "bytes", tag = "3")]
    pub payload: bytes::Bytes,
    /// Lowercase hex SHA-256 of `payload`: the package id.
    #[prost(string, tag = "4")]
    pub hash: String,
}

/// `daml_lf.ArchivePayload`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ArchivePayload {
    /// Minor language version, e.g. `"1"` for Daml-LF 2.1 or `"dev"`.
    #[prost(string, tag = "3")]
    pub minor: String,
    /// Patch version (Daml-LF 2 only).
    #[prost(int32, tag = "5")]
    pub patch: i32,
    /// The package, encoded per major language version.
    #[prost(oneof = "archive_payload::Sum", tags = "2, 4")]
    pub sum: Option<archive_payload::Sum>,
}

/// Nested types of [`ArchivePayload`].
pub mod archive_payload {
    /// `ArchivePayload.Sum`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Sum {
        /// A serialized `daml_lf_1.Package` (not accepted by Canton 3.x).
        #[prost(bytes = "bytes", tag = "2")]
        DamlLf1(bytes::Bytes),
        /// A serialized `daml_lf_2.Package`.
        #[prost(bytes = "bytes", tag = "4")]
        DamlLf2(bytes::Bytes),
    }
}

/// The part of `daml_lf_2.Package` that carries name and version: the interned
/// string table (field 2) and the metadata (field 4). Modules (field 1) and the
/// other tables are skipped.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PackageHead {
    /// `Package.interned_strings`.
    #[prost(string, repeated, tag = "2")]
    pub interned_strings: Vec<String>,
    /// `Package.metadata`.
    #[prost(message, optional, tag = "4")]
    pub metadata: Option<PackageMetadata>,
}

/// `daml_lf_2.PackageMetadata`: indices into the interned string table.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PackageMetadata {
    /// Index of the package name in `interned_strings`.
    #[prost(int32, tag = "1")]
    pub name_interned_str: i32,
    /// Index of the package version in `interned_strings`.
    #[prost(int32, tag = "2")]
    pub version_interned_str: i32,
}

impl PackageHead {
    /// The package's (name, version), when the metadata points at valid strings.
    pub fn name_and_version(&self) -> Option<(String, String)> {
        let meta = self.metadata.as_ref()?;
        let get = |i: i32| {
            usize::try_from(i)
                .ok()
                .and_then(|i| self.interned_strings.get(i))
                .filter(|s| !s.is_empty())
                .cloned()
        };
        Some((
            get(meta.name_interned_str)?,
            get(meta.version_interned_str)?,
        ))
    }
}
