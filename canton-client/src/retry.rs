//! The one retry policy of canton-dr: exponential backoff with jitter, bounded
//! by a number of attempts and a total time. It retries UNAVAILABLE,
//! DEADLINE_EXCEEDED and any status carrying `RetryInfo` (whose delay is a
//! minimum wait), and nothing else. A failed TLS handshake (also reported as
//! UNAVAILABLE by tonic) is not retried: it fails the same way every time.

use crate::error::CantonError;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// Backoff and bounds for [`retry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Wait before the second attempt (before jitter).
    pub initial_backoff: Duration,
    /// Upper bound of one wait (before the RetryInfo minimum).
    pub max_backoff: Duration,
    /// No attempt starts after this much time since the first one.
    pub max_elapsed: Duration,
    /// Randomise each wait to between half and all of the backoff.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    /// 5 attempts, 200 ms doubling to at most 5 s, within 60 s, with jitter.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            max_elapsed: Duration::from_secs(60),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// A policy with these bounds and jitter on.
    pub fn new(
        max_attempts: u32,
        initial_backoff: Duration,
        max_backoff: Duration,
        max_elapsed: Duration,
    ) -> Self {
        RetryPolicy {
            max_attempts: max_attempts.max(1),
            initial_backoff,
            max_backoff,
            max_elapsed,
            jitter: true,
        }
    }

    /// One attempt, no retry.
    pub fn no_retry() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The same policy with jitter switched on or off.
    #[must_use]
    pub fn with_jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// The backoff before attempt `attempt + 1` (attempt counts from 1), before jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    fn wait(&self, attempt: u32, minimum: Duration) -> Duration {
        let backoff = self.backoff(attempt);
        let wait = if self.jitter && !backoff.is_zero() {
            let half = backoff / 2;
            half + rand::random_range(Duration::ZERO..=backoff - half)
        } else {
            backoff
        };
        wait.max(minimum)
    }
}

/// An error that [`retry`] can classify.
pub trait Retryable {
    /// `Some(minimum wait)` when the failure may go away on retry, else `None`.
    fn retry_after(&self) -> Option<Duration>;
    /// Records how many attempts were made before giving up.
    fn set_attempts(&mut self, _attempts: u32) {}
    /// One line for the retry log (must not contain secrets).
    fn summary(&self) -> String;
}

impl Retryable for CantonError {
    fn retry_after(&self) -> Option<Duration> {
        self.is_retryable()
            .then(|| self.retry_delay.unwrap_or_default())
    }
    fn set_attempts(&mut self, attempts: u32) {
        self.attempts = attempts;
    }
    fn summary(&self) -> String {
        match &self.target {
            Some(t) => format!("{t}: {self}"),
            None => self.to_string(),
        }
    }
}

impl Retryable for tonic::Status {
    fn retry_after(&self) -> Option<Duration> {
        CantonError::from_status(self).retry_after()
    }
    fn summary(&self) -> String {
        CantonError::from_status(self).to_string()
    }
}

/// Runs `op(attempt)` (attempt counts from 1) until it succeeds, fails with a
/// non-retryable error, or the policy's attempts or total time run out; then
/// returns the last error with its attempt count recorded. Each retry is logged
/// on stderr via tracing: `warn` when the node is unavailable or slow, `debug`
/// when it asked to retry later (RetryInfo).
pub async fn retry<T, E, F, Fut>(policy: &RetryPolicy, mut op: F) -> Result<T, E>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Retryable,
{
    let start = Instant::now();
    let mut attempt = 1u32;
    loop {
        let mut err = match op(attempt).await {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        let Some(minimum) = err.retry_after() else {
            err.set_attempts(attempt);
            return Err(err);
        };
        if attempt >= policy.max_attempts {
            err.set_attempts(attempt);
            return Err(err);
        }
        let wait = policy.wait(attempt, minimum);
        if start.elapsed() + wait > policy.max_elapsed {
            err.set_attempts(attempt);
            return Err(err);
        }
        if minimum.is_zero() {
            tracing::warn!(
                "attempt {attempt}/{} failed: {}; retrying in {wait:?}",
                policy.max_attempts,
                err.summary()
            );
        } else {
            tracing::debug!(
                "attempt {attempt}/{} failed: {}; retrying in {wait:?}",
                policy.max_attempts,
                err.summary()
            );
        }
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::new(
            10,
            Duration::from_millis(100),
            Duration::from_millis(700),
            Duration::from_secs(60),
        );
        let waits: Vec<u128> = (1..=5).map(|a| p.backoff(a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 700, 700]);
        assert_eq!(p.backoff(1000), Duration::from_millis(700));
    }

    #[test]
    fn jitter_stays_between_half_and_full_backoff_and_respects_minimum() {
        let p = RetryPolicy::new(
            10,
            Duration::from_millis(400),
            Duration::from_secs(5),
            Duration::from_secs(60),
        );
        for _ in 0..200 {
            let w = p.wait(1, Duration::ZERO);
            assert!(
                w >= Duration::from_millis(200) && w <= Duration::from_millis(400),
                "{w:?}"
            );
        }
        assert_eq!(p.wait(1, Duration::from_secs(1)), Duration::from_secs(1));
        assert_eq!(
            p.with_jitter(false).wait(2, Duration::ZERO),
            Duration::from_millis(800)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_attempts_and_honours_retry_info() {
        let calls = Cell::new(0);
        let policy = RetryPolicy::new(
            3,
            Duration::from_millis(10),
            Duration::from_millis(10),
            Duration::from_secs(60),
        );
        let start = Instant::now();
        let res: Result<(), CantonError> = retry(&policy, |_| {
            calls.set(calls.get() + 1);
            async {
                Err(CantonError::from_status(
                    &crate::status::CantonStatus::new(tonic::Code::OutOfRange, "X", 12, "later")
                        .retry_after(Duration::from_secs(2))
                        .into_status(),
                ))
            }
        })
        .await;
        let err = res.unwrap_err();
        assert_eq!(calls.get(), 3);
        assert_eq!(err.attempts, 3);
        // Two waits of at least the RetryInfo delay.
        assert!(start.elapsed() >= Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn max_elapsed_stops_early() {
        let calls = Cell::new(0);
        let policy = RetryPolicy::new(
            100,
            Duration::from_secs(1),
            Duration::from_secs(1),
            Duration::from_millis(2500),
        )
        .with_jitter(false);
        let res: Result<(), tonic::Status> = retry(&policy, |_| {
            calls.set(calls.get() + 1);
            async { Err(tonic::Status::unavailable("down")) }
        })
        .await;
        assert!(res.is_err());
        // Attempts at t=0, 1 s, 2 s; a fourth at 3 s would pass 2.5 s.
        assert_eq!(calls.get(), 3);
    }

    #[tokio::test]
    async fn non_retryable_is_returned_at_once() {
        let calls = Cell::new(0);
        let res: Result<(), tonic::Status> = retry(&RetryPolicy::default(), |_| {
            calls.set(calls.get() + 1);
            async { Err(tonic::Status::invalid_argument("bad")) }
        })
        .await;
        assert_eq!(res.unwrap_err().code(), tonic::Code::InvalidArgument);
        assert_eq!(calls.get(), 1);
    }

    #[tokio::test]
    async fn success_after_failures_passes_attempt_numbers() {
        let seen = std::cell::RefCell::new(Vec::new());
        let policy = RetryPolicy::new(
            5,
            Duration::from_millis(1),
            Duration::from_millis(1),
            Duration::from_secs(5),
        );
        let res: Result<u32, tonic::Status> = retry(&policy, |attempt| {
            seen.borrow_mut().push(attempt);
            async move {
                if attempt < 3 {
                    Err(tonic::Status::deadline_exceeded("slow"))
                } else {
                    Ok(attempt)
                }
            }
        })
        .await;
        assert_eq!(res.unwrap(), 3);
        assert_eq!(*seen.borrow(), [1, 2, 3]);
    }
}
