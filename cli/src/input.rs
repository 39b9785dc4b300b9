//! Reading another tool's JSON from stdin (`-`), so that
//! `ingest-ctl last | offset-lookup - | ingest-ctl set-offset -` works without jq.

use crate::error::{Error, Result};
use serde_json::Value;
use std::io::Read;

/// Reads one JSON object from `reader`. When the producer printed several
/// lines (NDJSON), the last object that is not a stream event is taken.
/// An upstream `{"type":"error"}` object becomes an error naming it.
pub fn read_json_object(mut reader: impl Read, what: &str) -> Result<Value> {
    let mut buf = String::new();
    reader
        .read_to_string(&mut buf)
        .map_err(|e| Error::usage(format!("cannot read {what} from stdin: {e}")))?;
    parse_json_object(&buf, what)
}

/// Reads one JSON object from stdin.
pub fn read_stdin_json(what: &str) -> Result<Value> {
    read_json_object(std::io::stdin().lock(), what)
}

/// Parses the text a producer printed (see [`read_json_object`]).
pub fn parse_json_object(text: &str, what: &str) -> Result<Value> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(
            Error::usage(format!("no {what} on stdin (empty input)")).with_hint(
                "pipe the JSON output of the previous tool, or pass the value as an argument",
            ),
        );
    }
    let mut chosen: Option<Value> = None;
    let values: Vec<Value> = match serde_json::from_str::<Value>(trimmed) {
        Ok(v) => vec![v],
        Err(_) => trimmed
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str::<Value>(l).map_err(|e| {
                    Error::usage(format!("stdin is not valid JSON ({what}): {e}"))
                        .with_hint("pipe the JSON output of the previous tool (its --output json)")
                })
            })
            .collect::<Result<_>>()?,
    };
    for v in values {
        if !v.is_object() {
            return Err(Error::usage(format!(
                "stdin holds JSON but not an object ({what})"
            )));
        }
        match v.get("type").and_then(Value::as_str) {
            Some("error") => {
                let msg = v
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error");
                return Err(Error::usage(format!("the previous tool failed: {msg}"))
                    .with_hint("fix the step that produced the input, then rerun the pipeline"));
            }
            Some("progress") | Some("log") | Some("warning") => continue,
            _ => chosen = Some(v),
        }
    }
    chosen.ok_or_else(|| Error::usage(format!("no {what} object on stdin")))
}

/// A required string field of a JSON object.
pub fn field_str<'a>(v: &'a Value, name: &str) -> Result<&'a str> {
    v.get(name).and_then(Value::as_str).ok_or_else(|| {
        Error::usage(format!("stdin JSON lacks string field \"{name}\""))
            .with_hint("pipe the JSON output of the tool that produces it")
    })
}

/// A required integer field (a JSON number, or a decimal string as grpcurl prints int64).
pub fn field_i64(v: &Value, name: &str) -> Result<i64> {
    match v.get(name) {
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| Error::usage(format!("field \"{name}\" is not an integer: {n}"))),
        Some(Value::String(s)) => s
            .parse::<i64>()
            .map_err(|_| Error::usage(format!("field \"{name}\" is not an integer: \"{s}\""))),
        Some(other) => Err(Error::usage(format!(
            "field \"{name}\" is not an integer: {other}"
        ))),
        None => Err(
            Error::usage(format!("stdin JSON lacks integer field \"{name}\""))
                .with_hint("pipe the JSON output of the tool that produces it"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_object() {
        let v = parse_json_object(r#"{"offset": 42}"#, "lookup").unwrap();
        assert_eq!(field_i64(&v, "offset").unwrap(), 42);
    }

    #[test]
    fn ndjson_takes_last_result_skipping_progress() {
        let text = "{\"type\":\"progress\",\"x\":1}\n{\"offset\":7}\n{\"type\":\"progress\"}\n";
        let v = parse_json_object(text, "lookup").unwrap();
        assert_eq!(field_i64(&v, "offset").unwrap(), 7);
    }

    #[test]
    fn upstream_error_is_reported() {
        let e = parse_json_object(r#"{"type":"error","error":"node down"}"#, "lookup").unwrap_err();
        assert!(e.message().contains("node down"), "{}", e.message());
        assert_eq!(e.exit_code().code(), 2);
    }

    #[test]
    fn bad_json_and_empty() {
        assert!(
            parse_json_object("{not json", "x")
                .unwrap_err()
                .message()
                .contains("not valid JSON")
        );
        assert!(
            parse_json_object("  \n", "x")
                .unwrap_err()
                .message()
                .contains("empty")
        );
        assert!(
            parse_json_object("[1]", "x")
                .unwrap_err()
                .message()
                .contains("not an object")
        );
    }

    #[test]
    fn int_fields_accept_grpcurl_strings() {
        let v = parse_json_object(r#"{"ledgerOffset":"123","bad":"x"}"#, "x").unwrap();
        assert_eq!(field_i64(&v, "ledgerOffset").unwrap(), 123);
        assert!(field_i64(&v, "bad").is_err());
        assert!(field_i64(&v, "missing").is_err());
        assert!(field_str(&v, "missing").is_err());
    }
}
