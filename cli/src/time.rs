//! Record times and durations as canton-dr reads and prints them.
//!
//! Record times are RFC 3339, printed in UTC with exactly 6 fractional digits
//! (Canton keeps microseconds). Input is refused when it carries more than
//! microsecond precision or lies outside Daml's range
//! 0001-01-01T00:00:00Z..9999-12-31T23:59:59.999999Z.

use crate::error::{Error, Result};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use std::time::Duration;

/// The earliest record time Daml accepts.
pub fn daml_min() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(1, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| n.and_utc())
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The latest record time Daml accepts.
pub fn daml_max() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_micro_opt(23, 59, 59, 999_999))
        .map(|n| n.and_utc())
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Parses an RFC 3339 record time; `what` names the flag or field for errors.
pub fn parse_record_time(s: &str, what: &str) -> Result<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(s.trim())
        .map_err(|e| {
            Error::usage(format!("{what} \"{s}\" is not an RFC 3339 timestamp ({e})"))
                .with_hint("use a form like 2025-11-27T06:50:00.123456Z")
        })?
        .with_timezone(&Utc);
    if t.timestamp_subsec_nanos() % 1000 != 0 {
        return Err(Error::usage(format!(
            "{what} \"{s}\" has sub-microsecond precision; Canton record times are microseconds"
        ))
        .with_hint("drop the digits after the sixth fractional digit"));
    }
    if t < daml_min() || t > daml_max() {
        return Err(Error::usage(format!(
            "{what} \"{s}\" is outside Daml's range 0001-01-01T00:00:00Z..9999-12-31T23:59:59.999999Z"
        )));
    }
    Ok(t)
}

/// Formats a record time as RFC 3339 UTC with exactly 6 fractional digits.
pub fn format_record_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Microseconds since the Unix epoch (Canton's internal form).
pub fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The time at `micros` microseconds since the Unix epoch.
pub fn from_micros(micros: i64) -> Result<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .ok_or_else(|| Error::usage(format!("{micros} µs since epoch is out of range")))
}

/// Parses a duration such as `30s`, `5m`, `1h 30m`, `250ms`.
pub fn parse_duration(s: &str, what: &str) -> Result<Duration> {
    humantime::parse_duration(s.trim()).map_err(|e| {
        Error::usage(format!("{what} \"{s}\" is not a duration ({e})"))
            .with_hint("use a form like 30s, 5m, 2h or 250ms")
    })
}

/// A clap value parser for durations (`--timeout 5m`).
pub fn duration_arg(s: &str) -> std::result::Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{e} (use a form like 30s, 5m, 2h or 250ms)"))
}

/// A clap value parser for record times (`--timestamp 2025-01-01T00:00:00Z`).
pub fn record_time_arg(s: &str) -> std::result::Result<DateTime<Utc>, String> {
    parse_record_time(s, "timestamp").map_err(|e| e.message().to_string())
}

/// Converts to a protobuf-style (seconds, nanos) pair.
pub fn to_seconds_nanos(t: DateTime<Utc>) -> (i64, i32) {
    (t.timestamp(), t.timestamp_subsec_nanos() as i32)
}

/// Converts from a protobuf-style (seconds, nanos) pair.
pub fn from_seconds_nanos(seconds: i64, nanos: i32) -> Result<DateTime<Utc>> {
    if !(0..1_000_000_000).contains(&nanos) {
        return Err(Error::usage(format!(
            "timestamp nanos {nanos} out of range"
        )));
    }
    DateTime::<Utc>::from_timestamp(seconds, nanos as u32)
        .ok_or_else(|| Error::usage(format!("timestamp {seconds}s is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_six_digits() {
        let t = parse_record_time("2025-11-27T06:50:00Z", "t").unwrap();
        assert_eq!(format_record_time(t), "2025-11-27T06:50:00.000000Z");
        let t = parse_record_time("2025-11-27T07:50:00.123456+01:00", "t").unwrap();
        assert_eq!(format_record_time(t), "2025-11-27T06:50:00.123456Z");
    }

    #[test]
    fn refuses_nanoseconds() {
        let e = parse_record_time("2025-11-27T06:50:00.1234567Z", "--timestamp").unwrap_err();
        assert!(e.message().contains("sub-microsecond"), "{}", e.message());
        // trailing zeros beyond µs are fine: the value is still µs-exact
        assert!(parse_record_time("2025-11-27T06:50:00.123456000Z", "t").is_ok());
    }

    #[test]
    fn refuses_garbage_and_out_of_range() {
        assert!(
            parse_record_time("yesterday", "t")
                .unwrap_err()
                .message()
                .contains("RFC 3339")
        );
        assert!(parse_record_time("2025-13-01T00:00:00Z", "t").is_err());
        // year 0 is before Daml's range
        let e = parse_record_time("0000-12-31T23:59:59Z", "t").unwrap_err();
        assert!(
            e.message().contains("outside Daml's range"),
            "{}",
            e.message()
        );
        assert!(parse_record_time("0001-01-01T00:00:00Z", "t").is_ok());
        assert!(parse_record_time("9999-12-31T23:59:59.999999Z", "t").is_ok());
    }

    #[test]
    fn micros_round_trip() {
        let t = parse_record_time("2024-05-01T12:34:56.789012Z", "t").unwrap();
        assert_eq!(from_micros(to_micros(t)).unwrap(), t);
        let (s, n) = to_seconds_nanos(t);
        assert_eq!(from_seconds_nanos(s, n).unwrap(), t);
        assert!(from_seconds_nanos(0, -1).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s", "d").unwrap(), Duration::from_secs(30));
        assert_eq!(
            parse_duration("1h 30m", "d").unwrap(),
            Duration::from_secs(5400)
        );
        assert!(
            parse_duration("soon", "d")
                .unwrap_err()
                .message()
                .contains("not a duration")
        );
    }
}
