//! How long a call keeps trying: canton-client's retry policy (the default),
//! or `--wait`, which polls with backoff until the node has caught up or the
//! `--timeout` passes (exit 4). After a restore the node answers "not all
//! events processed" until it has re-processed up to the requested time, and
//! may not even accept connections yet; both are waited out. A progress line
//! goes to stderr per failed attempt, only when stderr is a terminal.

use crate::errors::{CallContext, Failure, FailureKind};
use canton_client::{RetryPolicy, Retryable};
use canton_dr_cli::time::format_record_time;
use canton_dr_cli::{Error, Result};
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// The shortest time given to the attempt made at the deadline.
const FINAL_ATTEMPT_MIN: Duration = Duration::from_secs(1);

/// `--wait` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitOptions {
    /// Give up (exit 4) after this long.
    pub timeout: Duration,
    /// First pause between attempts; doubles up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest pause between attempts (a RetryInfo delay may still be longer).
    pub max_backoff: Duration,
    /// Print a progress line on stderr per failed attempt.
    pub progress: bool,
}

impl WaitOptions {
    /// Waiting up to `timeout` with the default backoff (250 ms doubling to 2 s:
    /// one cheap call per poll, so a caught-up node is noticed quickly).
    pub fn new(timeout: Duration, progress: bool) -> Self {
        WaitOptions {
            timeout,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(2),
            progress,
        }
    }
}

/// Retry policy or `--wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patience {
    /// canton-client's retry policy; a still-retryable failure exits 3.
    Retry(RetryPolicy),
    /// Poll until caught up or the timeout (exit 4).
    Wait(WaitOptions),
}

impl Patience {
    /// Runs `op` (one attempt per invocation) until it succeeds or this
    /// patience runs out; failures come back as the user-facing error.
    pub async fn run<T, F, Fut>(&self, context: &CallContext<'_>, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, Failure>>,
    {
        match self {
            Patience::Retry(policy) => canton_client::retry(policy, |_| op())
                .await
                .map_err(|f| f.to_cli_error(context)),
            Patience::Wait(options) => wait(options, context, op).await,
        }
    }
}

async fn wait<T, F, Fut>(options: &WaitOptions, context: &CallContext<'_>, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, Failure>>,
{
    let start = Instant::now();
    let deadline = start + options.timeout;
    let mut backoff = options.initial_backoff;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let bound = deadline
            .saturating_duration_since(Instant::now())
            .max(FINAL_ATTEMPT_MIN);
        let last = match tokio::time::timeout(bound, op()).await {
            Ok(Ok(value)) => {
                if options.progress && attempt > 1 {
                    eprintln!(
                        "offset-lookup: caught up after {attempt} attempts in {}",
                        seconds(start.elapsed())
                    );
                }
                return Ok(value);
            }
            Ok(Err(mut failure)) => {
                if !failure.is_worth_waiting_for() {
                    failure.set_attempts(attempt);
                    return Err(failure.to_cli_error(context));
                }
                LastAnswer::Failed(Box::new(failure))
            }
            Err(_elapsed) => LastAnswer::NoAnswer(bound),
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(timed_out(options, context, attempt, &last));
        }
        let wait = backoff
            .max(last.retry_delay())
            .min(deadline.saturating_duration_since(now));
        backoff = (backoff * 2).min(options.max_backoff);
        if options.progress {
            eprintln!(
                "offset-lookup: waiting for the node to process up to {} on {}: attempt {attempt}, {} of {}; {}",
                format_record_time(context.timestamp),
                context.synchronizer_id,
                seconds(start.elapsed()),
                seconds(options.timeout),
                last.describe()
            );
        } else {
            tracing::info!(
                "attempt {attempt} failed ({}); next in {wait:?}",
                last.describe()
            );
        }
        tokio::time::sleep(wait).await;
    }
}

/// What the last attempt got.
enum LastAnswer {
    Failed(Box<Failure>),
    NoAnswer(Duration),
}

impl LastAnswer {
    fn retry_delay(&self) -> Duration {
        match self {
            LastAnswer::Failed(f) => f.retry_after().unwrap_or_default(),
            LastAnswer::NoAnswer(_) => Duration::ZERO,
        }
    }

    fn describe(&self) -> String {
        match self {
            LastAnswer::Failed(f) if f.kind == FailureKind::NotCaughtUp => {
                "not caught up yet".into()
            }
            LastAnswer::Failed(f) => f.error.to_cli_error().message().to_string(),
            LastAnswer::NoAnswer(bound) => format!("no answer within {}", seconds(*bound)),
        }
    }
}

fn timed_out(
    options: &WaitOptions,
    context: &CallContext<'_>,
    attempts: u32,
    last: &LastAnswer,
) -> Error {
    let target = match last {
        LastAnswer::Failed(f) => f.error.target.as_ref().map(|t| t.to_string()),
        LastAnswer::NoAnswer(_) => None,
    }
    .unwrap_or_else(|| "the node".into());
    let mut err = Error::timeout(format!(
        "timed out after {} waiting for {target} to process everything up to {} on {} ({attempts} attempts; last: {})",
        seconds(options.timeout),
        format_record_time(context.timestamp),
        context.synchronizer_id,
        last.describe()
    ))
    .with_hint("raise --timeout (OFFSET_LOOKUP_TIMEOUT); check that the restored node is running and connected to its synchronizer");
    if let LastAnswer::Failed(f) = last {
        err = err.with_code(f.error.id());
    }
    err
}

fn seconds(d: Duration) -> String {
    humanize(d)
}

/// `1.5s`, `12s`, `3m20s`: short and stable for messages.
fn humanize(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 10_000 {
        let tenths = ms / 100;
        if tenths.is_multiple_of(10) {
            format!("{}s", tenths / 10)
        } else {
            format!("{}.{}s", tenths / 10, tenths % 10)
        }
    } else if ms < 60_000 {
        format!("{}s", ms / 1000)
    } else {
        let s = ms / 1000;
        if s.is_multiple_of(60) {
            format!("{}m", s / 60)
        } else {
            format!("{}m{}s", s / 60, s % 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::INVALID_TIMESTAMP_ID;
    use crate::validate::{SynchronizerId, synchronizer_id};
    use canton_client::CantonError;
    use canton_client::status::CantonStatus;
    use canton_dr_cli::time::parse_record_time;
    use std::cell::Cell;
    use tonic::Code;

    fn sync() -> SynchronizerId {
        synchronizer_id(&format!("d::1220{}", "1a".repeat(32))).unwrap()
    }

    fn not_caught_up() -> Failure {
        Failure::classify(CantonError::from_status(
            &CantonStatus::new(
                Code::OutOfRange,
                INVALID_TIMESTAMP_ID,
                12,
                "Not all events have been processed fully and/or published",
            )
            .retry_after(Duration::from_secs(1))
            .into_status(),
        ))
    }

    fn options(timeout: Duration) -> WaitOptions {
        WaitOptions::new(timeout, false)
    }

    #[tokio::test(start_paused = true)]
    async fn waits_until_caught_up_honouring_retry_info() {
        let s = sync();
        let ctx = CallContext {
            synchronizer_id: &s,
            timestamp: parse_record_time("2025-01-01T00:00:00Z", "t").unwrap(),
        };
        let calls = Cell::new(0);
        let start = Instant::now();
        let v = Patience::Wait(options(Duration::from_secs(60)))
            .run(&ctx, || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move {
                    if n < 4 {
                        Err(not_caught_up())
                    } else {
                        Ok(7i64)
                    }
                }
            })
            .await
            .unwrap();
        assert_eq!(v, 7);
        assert_eq!(calls.get(), 4);
        // Three pauses of at least the 1 s RetryInfo.
        assert!(
            start.elapsed() >= Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn times_out_with_exit_4_after_an_attempt_at_the_deadline() {
        let s = sync();
        let ctx = CallContext {
            synchronizer_id: &s,
            timestamp: parse_record_time("2025-01-01T00:00:00Z", "t").unwrap(),
        };
        let calls = Cell::new(0);
        let start = Instant::now();
        let e = Patience::Wait(options(Duration::from_millis(2500)))
            .run(&ctx, || {
                calls.set(calls.get() + 1);
                async { Err::<i64, _>(not_caught_up()) }
            })
            .await
            .unwrap_err();
        assert_eq!(e.exit_code().code(), 4);
        // At 0, 1 s, 2 s, and the deadline 2.5 s.
        assert_eq!(calls.get(), 4);
        assert_eq!(start.elapsed(), Duration::from_millis(2500));
        assert!(e.message().starts_with("timed out after 2.5s waiting for the node to process everything up to 2025-01-01T00:00:00.000000Z"), "{}", e.message());
        assert!(
            e.message()
                .contains("(4 attempts; last: not caught up yet)"),
            "{}",
            e.message()
        );
        assert_eq!(e.code(), Some(INVALID_TIMESTAMP_ID));
        assert!(e.hint().unwrap().contains("--timeout"));
    }

    #[tokio::test(start_paused = true)]
    async fn waits_out_an_unreachable_node_but_not_an_auth_failure() {
        let s = sync();
        let ctx = CallContext {
            synchronizer_id: &s,
            timestamp: parse_record_time("2025-01-01T00:00:00Z", "t").unwrap(),
        };
        let calls = Cell::new(0);
        let v = Patience::Wait(options(Duration::from_secs(30)))
            .run(&ctx, || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move {
                    if n < 3 {
                        Err(Failure::classify(CantonError::from_status(
                            &tonic::Status::unavailable("starting"),
                        )))
                    } else {
                        Ok(1i64)
                    }
                }
            })
            .await
            .unwrap();
        assert_eq!(v, 1);
        let calls = Cell::new(0);
        let e = Patience::Wait(options(Duration::from_secs(30)))
            .run(&ctx, || {
                calls.set(calls.get() + 1);
                async {
                    Err::<i64, _>(Failure::classify(CantonError::from_status(
                        &tonic::Status::unauthenticated("no token"),
                    )))
                }
            })
            .await
            .unwrap_err();
        assert_eq!(calls.get(), 1);
        assert_eq!(e.exit_code().code(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_call_is_cut_at_the_deadline() {
        let s = sync();
        let ctx = CallContext {
            synchronizer_id: &s,
            timestamp: parse_record_time("2025-01-01T00:00:00Z", "t").unwrap(),
        };
        let start = Instant::now();
        let e = Patience::Wait(options(Duration::from_secs(5)))
            .run(&ctx, || async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok::<i64, Failure>(1)
            })
            .await
            .unwrap_err();
        assert_eq!(e.exit_code().code(), 4);
        assert!(
            e.message().contains("no answer within 5s"),
            "{}",
            e.message()
        );
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(humanize(Duration::from_millis(2500)), "2.5s");
        assert_eq!(humanize(Duration::from_secs(3)), "3s");
        assert_eq!(humanize(Duration::from_secs(42)), "42s");
        assert_eq!(humanize(Duration::from_secs(600)), "10m");
        assert_eq!(humanize(Duration::from_secs(200)), "3m20s");
    }
}
