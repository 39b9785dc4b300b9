//! Parses Daml archives (.dar/.dalf) the way Canton does, and builds valid test
//! DARs.
//!
//! A DAR is a zip with `META-INF/MANIFEST.MF` naming a main `.dalf` and its
//! dependencies; each dalf is a serialized `daml_lf.Archive` and its package id
//! is the lowercase hex SHA-256 of the raw `Archive.payload` bytes. A DAR's
//! identity in Canton 3.x is its main package id (reference/canton-wire.md §2).
//!
//! * [`inspect_bytes`] / [`inspect_file`]: parse and check a DAR, returning a
//!   [`DarInfo`] (main package id, name, version, dalfs, file SHA-256) or a
//!   [`DarError`] whose [`DarError::canton_error_id`] is Canton's error id.
//! * [`DarBuilder`]: valid or deliberately broken test DARs of any size.

mod bomb;
pub mod builder;
pub mod digest;
pub mod error;
pub mod manifest;
mod prng;
pub mod proto;
pub mod reader;

pub use builder::{BuiltDar, Compression, Corruption, DarBuilder, PaddingPlacement};
pub use digest::{hex, is_package_id, sha256_hex};
pub use error::{DarError, InspectError};
pub use manifest::{DalfNames, Manifest};
pub use reader::{
    DEFAULT_MAX_ENTRY_SIZE, DalfInfo, Dar, DarInfo, Limits, NameSource, ReadOptions, Scope,
    hash_file, inspect_bytes, inspect_bytes_with, inspect_file, inspect_file_with, parse,
    parse_reader,
};
