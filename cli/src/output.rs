//! Output on stdout: one JSON object per result, NDJSON for event streams
//! (each object with a `"type"` field), or a short text form for terminals.

use crate::error::Result;
use serde::Serialize;
use std::io::{IsTerminal, Write};

/// How results are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One JSON object per line (the default when stdout is not a terminal).
    Json,
    /// A short human-readable form (the default on a terminal).
    Text,
}

impl OutputFormat {
    /// `explicit` if given, else JSON unless stdout is a terminal.
    pub fn resolve(explicit: Option<OutputFormat>) -> OutputFormat {
        explicit.unwrap_or_else(|| {
            if std::io::stdout().is_terminal() {
                OutputFormat::Text
            } else {
                OutputFormat::Json
            }
        })
    }
}

/// Writes results and events to stdout in the chosen format, flushing each line
/// so that pipelines see events as they happen.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    format: OutputFormat,
}

impl Printer {
    /// A printer for `format`.
    pub fn new(format: OutputFormat) -> Self {
        Printer { format }
    }

    /// The format.
    pub fn format(&self) -> OutputFormat {
        self.format
    }

    /// Prints one JSON value as one line, whatever the format (used for data
    /// that has no text form).
    pub fn emit<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        let line = serde_json::to_string(value)
            .map_err(|e| crate::Error::usage(format!("cannot encode output: {e}")))?;
        let mut out = std::io::stdout().lock();
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
        out.flush()?;
        Ok(())
    }

    /// Prints a result: JSON in JSON mode, `text` (a closure rendering the human
    /// form) in text mode.
    pub fn result<T, F>(&self, value: &T, text: F) -> Result<()>
    where
        T: Serialize + ?Sized,
        F: FnOnce(&T) -> String,
    {
        match self.format {
            OutputFormat::Json => self.emit(value),
            OutputFormat::Text => {
                let mut out = std::io::stdout().lock();
                let s = text(value);
                out.write_all(s.as_bytes())?;
                if !s.ends_with('\n') {
                    out.write_all(b"\n")?;
                }
                out.flush()?;
                Ok(())
            }
        }
    }

    /// Prints a stream event (`{"type": kind, ...fields}`) as NDJSON in JSON
    /// mode, or `kind: k=v ...` in text mode.
    pub fn event(&self, kind: &str, fields: serde_json::Value) -> Result<()> {
        let obj = event_object(kind, fields);
        match self.format {
            OutputFormat::Json => self.emit(&obj),
            OutputFormat::Text => {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{}", render_text_line(&obj))?;
                out.flush()?;
                Ok(())
            }
        }
    }
}

/// Builds `{"type": kind, ...fields}` (fields must be an object; anything else
/// lands under `"data"`).
pub fn event_object(kind: &str, fields: serde_json::Value) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    map.insert("type".into(), kind.into());
    match fields {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                if k != "type" {
                    map.insert(k, v);
                }
            }
        }
        serde_json::Value::Null => {}
        other => {
            map.insert("data".into(), other);
        }
    }
    serde_json::Value::Object(map)
}

/// `key=value` pairs of a flat JSON object on one line, for text mode.
pub fn render_text_line(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// True when stderr is a terminal (progress lines are shown only then).
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_object_sets_type_and_keeps_fields() {
        let v = event_object("progress", json!({"remainingMs": 10, "type": "ignored"}));
        assert_eq!(v["type"], "progress");
        assert_eq!(v["remainingMs"], 10);
        assert_eq!(v.as_object().map(|m| m.len()), Some(2));
    }

    #[test]
    fn non_object_fields_go_under_data() {
        let v = event_object("x", json!([1, 2]));
        assert_eq!(v["data"], json!([1, 2]));
    }

    #[test]
    fn text_line_is_key_value() {
        let v = json!({"type": "progress", "offset": 5, "recordTime": "t"});
        let line = render_text_line(&v);
        let mut parts: Vec<&str> = line.split(' ').collect();
        parts.sort_unstable();
        assert_eq!(parts, ["offset=5", "recordTime=t", "type=progress"]);
    }
}
