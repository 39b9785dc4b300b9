//! Checks made before any call to the node: the synchronizer id must be the
//! logical form `<name>::1220<64 hex>` (Canton fails to parse a physical id),
//! and the timestamp must be an RFC 3339 record time of microsecond precision
//! inside Daml's range.

use canton_dr_cli::time::parse_record_time;
use canton_dr_cli::{Error, Result};
use chrono::{DateTime, Utc};

/// The multihash prefix of a SHA-256 fingerprint (`0x12` sha2-256, `0x20` 32 bytes).
const FINGERPRINT_PREFIX: &str = "1220";
/// Hex digits of a SHA-256 digest.
const DIGEST_HEX_LEN: usize = 64;
/// Longest identifier part Canton accepts (String185 minus room for the namespace).
const MAX_IDENTIFIER_LEN: usize = 185;

const FORM: &str = "<name>::1220<64 hex digits>";

/// A logical synchronizer id that passed [`synchronizer_id`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynchronizerId(String);

impl SynchronizerId {
    /// The id as sent to the node.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SynchronizerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Validates a logical synchronizer id. A physical id (`<logical>::<pv>-<serial>`)
/// is refused with a message naming the logical id to use instead.
pub fn synchronizer_id(raw: &str) -> Result<SynchronizerId> {
    let id = raw.trim();
    let parts: Vec<&str> = id.split("::").collect();
    match parts.as_slice() {
        [name, fingerprint] => {
            check_name(raw, name)?;
            check_fingerprint(raw, fingerprint)?;
            Ok(SynchronizerId(id.to_string()))
        }
        [name, fingerprint, suffix]
            if check_name(raw, name).is_ok() && check_fingerprint(raw, fingerprint).is_ok() =>
        {
            let logical = format!("{name}::{fingerprint}");
            let what = if looks_like_physical_suffix(suffix) {
                format!("is a physical synchronizer id (protocol version and serial \"{suffix}\")")
            } else {
                format!("has an extra part \"{suffix}\" after the fingerprint")
            };
            Err(Error::usage(format!(
                "synchronizer id \"{raw}\" {what}; GetHighestOffsetByTimestamp takes the logical id \"{logical}\""
            ))
            .with_hint(format!("pass --synchronizer-id {logical}")))
        }
        _ => Err(not_of_the_form(raw)),
    }
}

/// Parses `--timestamp` / the `recordTime` field: RFC 3339, at most microsecond
/// precision, inside 0001-01-01T00:00:00Z..9999-12-31T23:59:59.999999Z.
pub fn timestamp(raw: &str, what: &str) -> Result<DateTime<Utc>> {
    parse_record_time(raw, what)
}

fn not_of_the_form(raw: &str) -> Error {
    Error::usage(format!(
        "synchronizer id \"{raw}\" is not of the form {FORM}"
    ))
    .with_hint(
        "copy the synchronizerId of the last ingested transaction (ingest-ctl last prints it)",
    )
}

fn check_name(raw: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(not_of_the_form(raw));
    }
    if name.len() > MAX_IDENTIFIER_LEN {
        return Err(Error::usage(format!(
            "synchronizer id \"{raw}\": the name part is longer than {MAX_IDENTIFIER_LEN} characters"
        )));
    }
    if let Some(c) = name.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::usage(format!(
            "synchronizer id \"{raw}\": the name part contains {c:?}, which Canton ids never do"
        )));
    }
    Ok(())
}

fn check_fingerprint(raw: &str, fingerprint: &str) -> Result<()> {
    let well_formed = fingerprint.len() == FINGERPRINT_PREFIX.len() + DIGEST_HEX_LEN
        && fingerprint.starts_with(FINGERPRINT_PREFIX)
        && fingerprint.bytes().all(|b| b.is_ascii_hexdigit());
    if !well_formed {
        return Err(not_of_the_form(raw));
    }
    if fingerprint.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(Error::usage(format!(
            "synchronizer id \"{raw}\": the fingerprint must be lower-case hex, as Canton prints it"
        ))
        .with_hint(format!(
            "use \"{}\"",
            raw.trim()
                .replace(fingerprint, &fingerprint.to_ascii_lowercase())
        )));
    }
    Ok(())
}

/// `<protocol version>-<serial>`, e.g. `34-0` or `dev-2`.
fn looks_like_physical_suffix(suffix: &str) -> bool {
    match suffix.rsplit_once('-') {
        Some((pv, serial)) => {
            !pv.is_empty()
                && pv.bytes().all(|b| b.is_ascii_alphanumeric())
                && !serial.is_empty()
                && serial.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "1220f2a8e0d3c7b8a9e6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c4b3a29180f7e6";

    fn logical() -> String {
        format!("global-domain::{FP}")
    }

    #[test]
    fn accepts_a_logical_id() {
        assert_eq!(FP.len(), 68);
        let id = synchronizer_id(&logical()).unwrap();
        assert_eq!(id.as_str(), logical());
        // Surrounding whitespace (a copy-paste artefact) is dropped.
        let id = synchronizer_id(&format!("  {}\n", logical())).unwrap();
        assert_eq!(id.to_string(), logical());
    }

    #[test]
    fn refuses_a_physical_id_naming_the_logical_one() {
        let raw = format!("{}::34-0", logical());
        let e = synchronizer_id(&raw).unwrap_err();
        assert_eq!(e.exit_code().code(), 2);
        assert!(
            e.message().contains("is a physical synchronizer id"),
            "{}",
            e.message()
        );
        assert!(
            e.message()
                .contains(&format!("logical id \"{}\"", logical())),
            "{}",
            e.message()
        );
        assert_eq!(
            e.hint(),
            Some(format!("pass --synchronizer-id {}", logical()).as_str())
        );
        // Any extra part still names the logical id.
        let e = synchronizer_id(&format!("{}::junk", logical())).unwrap_err();
        assert!(
            e.message().contains("extra part \"junk\""),
            "{}",
            e.message()
        );
        assert!(e.message().contains(&logical()), "{}", e.message());
    }

    #[test]
    fn refuses_malformed_ids() {
        let short = format!("name::1220{}", &FP[4..60]);
        let no_prefix = format!("name::1221{}", &FP[4..]);
        let not_hex = format!("name::1220{}", "g".repeat(64));
        let three_parts_bad = format!("a::b::{FP}");
        for bad in [
            "",
            "global-domain",
            "global-domain::",
            &format!("::{FP}"),
            &short,
            &no_prefix,
            &not_hex,
            &three_parts_bad,
        ] {
            let e = synchronizer_id(bad).unwrap_err();
            assert_eq!(e.exit_code().code(), 2, "{bad}");
            assert!(
                e.message()
                    .contains("is not of the form <name>::1220<64 hex digits>"),
                "{bad}: {}",
                e.message()
            );
        }
    }

    #[test]
    fn refuses_upper_case_fingerprint_and_odd_names() {
        let upper = format!("d::{}", FP.to_ascii_uppercase());
        let e = synchronizer_id(&upper).unwrap_err();
        assert!(e.message().contains("lower-case hex"), "{}", e.message());
        assert!(e.hint().unwrap().contains(FP), "{:?}", e.hint());
        let e = synchronizer_id(&format!("my domain::{FP}")).unwrap_err();
        assert!(e.message().contains("contains ' '"), "{}", e.message());
        let e = synchronizer_id(&format!("{}::{FP}", "n".repeat(186))).unwrap_err();
        assert!(e.message().contains("longer than 185"), "{}", e.message());
    }

    #[test]
    fn physical_suffix_shapes() {
        assert!(looks_like_physical_suffix("34-0"));
        assert!(looks_like_physical_suffix("dev-12"));
        assert!(!looks_like_physical_suffix("34"));
        assert!(!looks_like_physical_suffix("-0"));
        assert!(!looks_like_physical_suffix("34-x"));
    }

    #[test]
    fn timestamps() {
        let t = timestamp("2025-11-27T06:50:00.123456Z", "--timestamp").unwrap();
        assert_eq!(t.timestamp_subsec_micros(), 123_456);
        let e = timestamp("2025-11-27T06:50:00.1234567Z", "--timestamp").unwrap_err();
        assert!(e.message().contains("sub-microsecond"), "{}", e.message());
        let e = timestamp("0000-12-31T23:59:59Z", "--timestamp").unwrap_err();
        assert!(
            e.message().contains("outside Daml's range"),
            "{}",
            e.message()
        );
        let e = timestamp("27/11/2025", "--timestamp").unwrap_err();
        assert!(
            e.message().contains("not an RFC 3339 timestamp"),
            "{}",
            e.message()
        );
    }
}
