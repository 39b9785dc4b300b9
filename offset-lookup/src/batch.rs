//! `--batch`: NDJSON lookups in, one result line per input line out, in input
//! order, over one connection with several calls in flight. A line that fails
//! prints an error object with its exit code and does not stop the others; the
//! process exits with the highest exit code among the failed lines.

use crate::input::{self, FlagValues};
use crate::lookup::{LookupOptions, LookupRequest, OffsetResult, OffsetService, lookup};
use crate::wait::Patience;
use canton_dr_cli::{Error, ExitCode, OutputFormat, Result};
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;
use std::io::Write;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// How a batch runs.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions<'a> {
    /// Flag values that fill fields a line lacks.
    pub flags: &'a FlagValues,
    /// Mode and force for every line.
    pub lookup: LookupOptions,
    /// Retry policy or `--wait`, per line.
    pub patience: Patience,
    /// Lookups in flight at once.
    pub concurrency: usize,
    /// JSON or text lines.
    pub format: OutputFormat,
}

/// A successful line: the single-lookup result plus its input line number.
#[derive(Debug, Serialize)]
struct OkLine<'a> {
    #[serde(flatten)]
    result: &'a OffsetResult,
    line: u64,
}

/// A failed line.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorLine {
    #[serde(rename = "type")]
    kind: &'static str,
    line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    synchronizer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<String>,
    status: &'static str,
    exit_code: u8,
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<String>,
}

/// What the input's fields said, echoed in an error line.
#[derive(Debug, Default)]
struct Echo {
    synchronizer_id: Option<String>,
    timestamp: Option<String>,
}

enum Work {
    Lookup(u64, LookupRequest),
    Invalid(u64, Echo, Error),
}

enum Outcome {
    Ok(u64, Box<OffsetResult>),
    Failed(u64, Echo, Error),
}

/// Summary of a batch run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSummary {
    /// Lines looked up successfully.
    pub ok: u64,
    /// Lines that failed.
    pub failed: u64,
    /// 0 when all succeeded, else the highest exit code of a failed line.
    pub exit: ExitCode,
}

/// Reads NDJSON lookups from `input`, writes one line per lookup to `out`.
pub async fn run<S, R, W>(
    service: &S,
    input: R,
    out: &mut W,
    options: &BatchOptions<'_>,
) -> Result<BatchSummary>
where
    S: OffsetService,
    R: AsyncBufRead + Unpin,
    W: Write,
{
    let mut lines = input.lines();
    let mut read_error: Option<std::io::Error> = None;
    let mut line_no = 0u64;
    let source = futures::stream::poll_fn(|cx| {
        if read_error.is_some() {
            return std::task::Poll::Ready(None);
        }
        match std::pin::Pin::new(&mut lines).poll_next_line(cx) {
            std::task::Poll::Ready(Ok(Some(l))) => std::task::Poll::Ready(Some(l)),
            std::task::Poll::Ready(Ok(None)) => std::task::Poll::Ready(None),
            std::task::Poll::Ready(Err(e)) => {
                read_error = Some(e);
                std::task::Poll::Ready(None)
            }
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    });
    let summary = {
        let results = source
            .filter_map(|text| {
                line_no += 1;
                futures::future::ready(parse_line(line_no, &text, options.flags))
            })
            .map(|work| run_one(service, work, options))
            .buffered(options.concurrency.max(1))
            .ready_chunks(256);
        futures::pin_mut!(results);

        let mut summary = BatchSummary {
            ok: 0,
            failed: 0,
            exit: ExitCode::Ok,
        };
        while let Some(chunk) = results.next().await {
            for outcome in chunk {
                match &outcome {
                    Outcome::Ok(..) => summary.ok += 1,
                    Outcome::Failed(_, _, e) => {
                        summary.failed += 1;
                        if e.exit_code().code() > summary.exit.code() {
                            summary.exit = e.exit_code();
                        }
                    }
                }
                write_outcome(out, &outcome, options.format)?;
            }
            out.flush()?;
        }
        summary
    };
    if let Some(e) = read_error {
        return Err(Error::usage(format!(
            "cannot read the batch input from stdin after line {line_no}: {e}"
        )));
    }
    Ok(summary)
}

/// Parses one input line; `None` for blank lines and other tools' event lines.
fn parse_line(line: u64, text: &str, flags: &FlagValues) -> Option<Work> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Some(Work::Invalid(
                line,
                Echo::default(),
                Error::usage(format!("line {line} is not JSON: {e}"))
                    .with_hint("each line must be an object with synchronizerId and recordTime"),
            ));
        }
    };
    let echo = Echo {
        synchronizer_id: value
            .get("synchronizerId")
            .and_then(Value::as_str)
            .map(str::to_string),
        timestamp: value
            .get("recordTime")
            .or_else(|| value.get("timestamp"))
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    match value.get("type").and_then(Value::as_str) {
        Some("progress" | "log" | "warning") => return None,
        Some("error") => {
            let msg = value
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("unknown error");
            return Some(Work::Invalid(
                line,
                echo,
                Error::usage(format!(
                    "line {line} is an error from the previous tool: {msg}"
                )),
            ));
        }
        _ => {}
    }
    Some(match input::from_json(&value, flags) {
        Ok(request) => Work::Lookup(line, request),
        Err(e) => Work::Invalid(line, echo, e),
    })
}

async fn run_one<S: OffsetService>(service: &S, work: Work, options: &BatchOptions<'_>) -> Outcome {
    match work {
        Work::Invalid(line, echo, e) => Outcome::Failed(line, echo, e),
        Work::Lookup(line, request) => {
            match lookup(service, &request, &options.lookup, &options.patience).await {
                Ok(result) => Outcome::Ok(line, Box::new(result)),
                Err(e) => Outcome::Failed(
                    line,
                    Echo {
                        synchronizer_id: Some(request.synchronizer_id.to_string()),
                        timestamp: Some(canton_dr_cli::time::format_record_time(request.timestamp)),
                    },
                    e,
                ),
            }
        }
    }
}

fn write_outcome<W: Write>(out: &mut W, outcome: &Outcome, format: OutputFormat) -> Result<()> {
    match (outcome, format) {
        (Outcome::Ok(line, result), OutputFormat::Json) => write_json(
            out,
            &OkLine {
                result,
                line: *line,
            },
        ),
        (Outcome::Ok(line, result), OutputFormat::Text) => {
            writeln!(out, "{line}: {}", result.to_text())?;
            Ok(())
        }
        (Outcome::Failed(line, echo, e), OutputFormat::Json) => {
            let exit = e.exit_code();
            write_json(
                out,
                &ErrorLine {
                    kind: "error",
                    line: *line,
                    synchronizer_id: echo.synchronizer_id.clone(),
                    timestamp: echo.timestamp.clone(),
                    status: exit.status(),
                    exit_code: exit.code(),
                    error: e.message().to_string(),
                    hint: e.hint().map(str::to_string),
                    code: e.code().map(str::to_string),
                },
            )
        }
        (Outcome::Failed(line, _, e), OutputFormat::Text) => {
            writeln!(out, "{line}: error: {}", e.message())?;
            Ok(())
        }
    }
}

fn write_json<W: Write, T: Serialize>(out: &mut W, value: &T) -> Result<()> {
    serde_json::to_writer(&mut *out, value)
        .map_err(|e| Error::usage(format!("cannot encode output: {e}")))?;
    out.write_all(b"\n")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::INVALID_TIMESTAMP_ID;
    use crate::lookup::Mode;
    use crate::validate::SynchronizerId;
    use canton_client::status::CantonStatus;
    use canton_client::{CantonError, RetryPolicy};
    use chrono::{DateTime, Utc};
    use std::time::Duration;

    /// Offset = the timestamp's whole seconds; before second 10 there is nothing.
    struct SecondsNode;

    impl OffsetService for SecondsNode {
        async fn highest_offset(
            &self,
            _sync: &SynchronizerId,
            ts: DateTime<Utc>,
            _force: bool,
        ) -> std::result::Result<i64, CantonError> {
            // Finish out of order so that ordering is really tested.
            tokio::time::sleep(Duration::from_micros((100 - ts.timestamp() % 100) as u64)).await;
            if ts.timestamp() < 10 {
                return Err(CantonError::from_status(
                    &CantonStatus::new(
                        tonic::Code::OutOfRange,
                        INVALID_TIMESTAMP_ID,
                        12,
                        "The participant does not yet have a ledger offset before or at the requested timestamp",
                    )
                    .into_status(),
                ));
            }
            Ok(ts.timestamp())
        }
    }

    fn sync() -> String {
        format!("b::1220{}", "e4".repeat(32))
    }

    async fn run_batch(input: &str, format: OutputFormat) -> (BatchSummary, String) {
        let flags = FlagValues::default();
        let options = BatchOptions {
            flags: &flags,
            lookup: LookupOptions {
                mode: Mode::Exact,
                force: false,
            },
            patience: Patience::Retry(RetryPolicy::no_retry()),
            concurrency: 8,
            format,
        };
        let mut out = Vec::new();
        let summary = run(&SecondsNode, input.as_bytes(), &mut out, &options)
            .await
            .unwrap();
        (summary, String::from_utf8(out).unwrap())
    }

    fn line(secs: i64) -> String {
        let t = DateTime::<Utc>::from_timestamp(secs, 0).unwrap();
        format!(
            "{{\"synchronizerId\":\"{}\",\"recordTime\":\"{}\"}}\n",
            sync(),
            t.to_rfc3339()
        )
    }

    #[tokio::test]
    async fn results_come_in_input_order() {
        let input: String = (10..60).map(line).collect();
        let (summary, out) = run_batch(&input, OutputFormat::Json).await;
        assert_eq!(
            summary,
            BatchSummary {
                ok: 50,
                failed: 0,
                exit: ExitCode::Ok
            }
        );
        let offsets: Vec<i64> = out
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["offset"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        assert_eq!(offsets, (10..60).collect::<Vec<_>>());
        let first: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        assert_eq!(first["line"], 1);
        assert_eq!(first["type"], "offset");
        assert!(out.starts_with("{\"type\":\"offset\","), "{out}");
    }

    #[tokio::test]
    async fn bad_lines_fail_alone_and_set_the_exit_code() {
        let input = format!(
            "{}\n{{\"type\":\"progress\"}}\nnot json\n{}{{\"synchronizerId\":\"x\",\"recordTime\":\"2025-01-01T00:00:00Z\"}}\n",
            line(20).trim_end(),
            line(5)
        );
        let (summary, out) = run_batch(&input, OutputFormat::Json).await;
        assert_eq!(summary.ok, 1);
        assert_eq!(summary.failed, 3);
        // usage (2) beats condition-false (1)
        assert_eq!(summary.exit, ExitCode::Usage);
        let lines: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0]["offset"], 20);
        assert_eq!(lines[1]["line"], 3);
        assert_eq!(lines[1]["exitCode"], 2);
        assert_eq!(lines[2]["line"], 4);
        assert_eq!(lines[2]["exitCode"], 1);
        assert_eq!(lines[2]["status"], "failed");
        assert_eq!(lines[2]["timestamp"], "1970-01-01T00:00:05.000000Z");
        assert_eq!(lines[3]["synchronizerId"], "x");
        assert!(
            lines[3]["error"]
                .as_str()
                .unwrap()
                .contains("is not of the form")
        );
    }

    #[tokio::test]
    async fn text_lines_are_numbered() {
        let (_, out) = run_batch(
            &format!("{}\n{}", line(11).trim_end(), line(1)),
            OutputFormat::Text,
        )
        .await;
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[0].starts_with("1: offset 11 for 1970-01-01T00:00:11.000000Z"),
            "{out}"
        );
        assert!(lines[1].starts_with("2: error: "), "{out}");
    }
}
