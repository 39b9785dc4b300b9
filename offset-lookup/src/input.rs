//! Where the synchronizer id and timestamp come from: the flags, the JSON
//! object `ingest-ctl last` prints (read from stdin with `-`), or one NDJSON
//! line in `--batch`. A JSON object supplies `synchronizerId` and `recordTime`
//! (or `timestamp`, as `offset-lookup` itself prints); a flag fills a field the
//! object lacks, and a flag that contradicts the object is refused rather than
//! silently preferred.

use crate::lookup::LookupRequest;
use crate::validate;
use canton_dr_cli::{Error, Result};
use serde_json::Value;

/// The `--synchronizer-id` and `--timestamp` flags as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagValues {
    /// `--synchronizer-id`.
    pub synchronizer_id: Option<String>,
    /// `--timestamp`.
    pub timestamp: Option<String>,
}

/// The request described by the flags alone.
pub fn from_flags(flags: &FlagValues) -> Result<LookupRequest> {
    let sync = flags.synchronizer_id.as_deref().ok_or_else(|| {
        Error::usage("no synchronizer id given").with_hint(
            "pass --synchronizer-id and --timestamp, or pipe `ingest-ctl last` into `offset-lookup -`",
        )
    })?;
    let ts = flags.timestamp.as_deref().ok_or_else(|| {
        Error::usage("no timestamp given").with_hint(
            "pass --timestamp with the record time of the last ingested transaction, or pipe `ingest-ctl last` into `offset-lookup -`",
        )
    })?;
    Ok(LookupRequest {
        synchronizer_id: validate::synchronizer_id(sync)?,
        timestamp: validate::timestamp(ts, "--timestamp")?,
    })
}

/// The request described by a JSON object, completed by the flags.
pub fn from_json(object: &Value, flags: &FlagValues) -> Result<LookupRequest> {
    if !object.is_object() {
        return Err(Error::usage("input is JSON but not an object")
            .with_hint("each input must be an object with synchronizerId and recordTime"));
    }
    let sync_field = string_field(object, "synchronizerId")?;
    let record_time = string_field(object, "recordTime")?;
    let timestamp_field = string_field(object, "timestamp")?;

    // The input's own id is validated first, so that a physical id gets its
    // own message rather than a contradiction.
    let sync = match (sync_field, flags.synchronizer_id.as_deref()) {
        (Some(s), Some(f)) => {
            let from_input = validate::synchronizer_id(s)?;
            if validate::synchronizer_id(f)? != from_input {
                return Err(Error::usage(format!(
                    "--synchronizer-id \"{f}\" contradicts the input's synchronizerId \"{s}\""
                ))
                .with_hint(
                    "drop --synchronizer-id (or unset CANTON_SYNCHRONIZER_ID), or fix the input",
                ));
            }
            from_input
        }
        (Some(s), None) | (None, Some(s)) => validate::synchronizer_id(s)?,
        (None, None) => {
            return Err(Error::usage("input lacks synchronizerId")
                .with_hint("pipe the output of `ingest-ctl last`, or pass --synchronizer-id"));
        }
    };

    let from_object = match (record_time, timestamp_field) {
        (Some(r), Some(t)) => {
            let r_parsed = validate::timestamp(r, "recordTime")?;
            let t_parsed = validate::timestamp(t, "timestamp")?;
            if r_parsed != t_parsed {
                return Err(Error::usage(format!(
                    "the input has both recordTime \"{r}\" and timestamp \"{t}\", and they differ"
                )));
            }
            Some(r_parsed)
        }
        (Some(r), None) => Some(validate::timestamp(r, "recordTime")?),
        (None, Some(t)) => Some(validate::timestamp(t, "timestamp")?),
        (None, None) => None,
    };
    let timestamp = match (from_object, flags.timestamp.as_deref()) {
        (Some(o), Some(f)) => {
            let flag = validate::timestamp(f, "--timestamp")?;
            if flag != o {
                return Err(Error::usage(format!(
                    "--timestamp \"{f}\" contradicts the input's record time {}",
                    canton_dr_cli::time::format_record_time(o)
                ))
                .with_hint(
                    "drop --timestamp (or unset OFFSET_LOOKUP_TIMESTAMP), or fix the input",
                ));
            }
            o
        }
        (Some(o), None) => o,
        (None, Some(f)) => validate::timestamp(f, "--timestamp")?,
        (None, None) => {
            return Err(Error::usage("input lacks recordTime").with_hint(
                "pipe the output of `ingest-ctl last` (it carries recordTime), or pass --timestamp",
            ));
        }
    };
    Ok(LookupRequest {
        synchronizer_id: sync,
        timestamp,
    })
}

fn string_field<'a>(object: &'a Value, name: &str) -> Result<Option<&'a str>> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(Error::usage(format!(
            "input field \"{name}\" must be a string, got {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sync() -> String {
        format!("global::1220{}", "7c".repeat(32))
    }

    fn flags(s: Option<&str>, t: Option<&str>) -> FlagValues {
        FlagValues {
            synchronizer_id: s.map(str::to_string),
            timestamp: t.map(str::to_string),
        }
    }

    #[test]
    fn ingest_ctl_last_output_is_read() {
        let last = json!({
            "recordTime": "2025-11-27T06:50:00.123456Z",
            "synchronizerId": sync(),
            "offset": 41,
            "updateId": "1220abcd",
            "epoch": 1
        });
        let r = from_json(&last, &FlagValues::default()).unwrap();
        assert_eq!(r.synchronizer_id.as_str(), sync());
        assert_eq!(
            canton_dr_cli::time::format_record_time(r.timestamp),
            "2025-11-27T06:50:00.123456Z"
        );
    }

    #[test]
    fn own_output_is_read_back() {
        let own = json!({"type": "offset", "synchronizerId": sync(), "timestamp": "2025-11-27T06:50:00.000000Z", "offset": 3});
        assert!(from_json(&own, &FlagValues::default()).is_ok());
    }

    #[test]
    fn flags_fill_gaps_and_must_agree() {
        let partial = json!({"recordTime": "2025-11-27T06:50:00Z"});
        let r = from_json(&partial, &flags(Some(&sync()), None)).unwrap();
        assert_eq!(r.synchronizer_id.as_str(), sync());

        let full = json!({"recordTime": "2025-11-27T06:50:00Z", "synchronizerId": sync()});
        // Same values in another spelling agree.
        assert!(
            from_json(
                &full,
                &flags(Some(&sync()), Some("2025-11-27T07:50:00+01:00"))
            )
            .is_ok()
        );
        let other = format!("other::1220{}", "7c".repeat(32));
        let e = from_json(&full, &flags(Some(&other), None)).unwrap_err();
        assert!(
            e.message()
                .contains("contradicts the input's synchronizerId"),
            "{}",
            e.message()
        );
        let e = from_json(&full, &flags(None, Some("2025-11-27T06:50:01Z"))).unwrap_err();
        assert!(
            e.message()
                .contains("contradicts the input's record time 2025-11-27T06:50:00.000000Z"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn bad_objects() {
        let e = from_json(&json!({"synchronizerId": sync()}), &FlagValues::default()).unwrap_err();
        assert!(e.message().contains("lacks recordTime"), "{}", e.message());
        let e = from_json(
            &json!({"recordTime": "2025-11-27T06:50:00Z"}),
            &FlagValues::default(),
        )
        .unwrap_err();
        assert!(
            e.message().contains("lacks synchronizerId"),
            "{}",
            e.message()
        );
        let e = from_json(
            &json!({"recordTime": 5, "synchronizerId": sync()}),
            &FlagValues::default(),
        )
        .unwrap_err();
        assert!(e.message().contains("must be a string"), "{}", e.message());
        let e = from_json(
            &json!({"recordTime": "2025-11-27T06:50:00Z", "timestamp": "2025-11-27T06:50:01Z", "synchronizerId": sync()}),
            &FlagValues::default(),
        )
        .unwrap_err();
        assert!(e.message().contains("they differ"), "{}", e.message());
        let e = from_json(&json!([1]), &FlagValues::default()).unwrap_err();
        assert!(e.message().contains("not an object"), "{}", e.message());
        let e = from_json(
            &json!({"recordTime": "2025-11-27T06:50:00.0000001Z", "synchronizerId": sync()}),
            &FlagValues::default(),
        )
        .unwrap_err();
        assert!(e.message().starts_with("recordTime \""), "{}", e.message());
    }

    #[test]
    fn flags_alone() {
        let r = from_flags(&flags(Some(&sync()), Some("2025-11-27T06:50:00Z"))).unwrap();
        assert_eq!(r.synchronizer_id.as_str(), sync());
        assert!(
            from_flags(&flags(None, Some("2025-11-27T06:50:00Z")))
                .unwrap_err()
                .message()
                .contains("no synchronizer id")
        );
        assert!(
            from_flags(&flags(Some(&sync()), None))
                .unwrap_err()
                .message()
                .contains("no timestamp")
        );
    }
}
