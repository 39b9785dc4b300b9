//! Serde helpers: record times as RFC 3339 UTC with exactly 6 fractional digits.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// Serializes a time with [`canton_dr_cli::time::format_record_time`].
pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&canton_dr_cli::time::format_record_time(*t))
}

/// Parses an RFC 3339 time.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let s = String::deserialize(d)?;
    canton_dr_cli::time::parse_record_time(&s, "time").map_err(serde::de::Error::custom)
}

/// The same for `Option<DateTime<Utc>>` (`null` when absent).
pub mod option {
    use super::*;

    /// Serializes `Some` as a record time, `None` as `null`.
    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    /// Parses an optional RFC 3339 time.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| {
            canton_dr_cli::time::parse_record_time(&s, "time").map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}
