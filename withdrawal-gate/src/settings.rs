//! Typed settings from the command line: durations and record times parsed
//! and checked before any connection is made, each error naming its flag and
//! environment variable.

use crate::args::{
    FreezeArgs, GlobalArgs, MutationTimeouts, StatusArgs, SynchronizerArg, ThawArgs, TtlArgs,
    WaitArgs,
};
use canton_dr_cli::time::{parse_duration, parse_record_time};
use canton_dr_cli::{Error, Result};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The smallest poll interval accepted (a tighter loop would only load the database).
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Names of the gate and the ingester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// Gate row.
    pub gate: String,
    /// Ingester whose checkpoint counts.
    pub ingester: String,
}

impl Names {
    /// From the global flags; names must not be blank.
    pub fn from_args(g: &GlobalArgs) -> Result<Names> {
        for (flag, value) in [
            ("--gate / WITHDRAWAL_GATE_NAME", &g.gate),
            ("--ingester / INGESTER_NAME", &g.ingester),
        ] {
            if value.trim().is_empty() {
                return Err(Error::usage(format!("{flag} is empty")).with_hint(
                    "give a name, or unset the environment variable to use the default",
                ));
            }
        }
        Ok(Names {
            gate: g.gate.clone(),
            ingester: g.ingester.clone(),
        })
    }
}

/// Inputs of the ttl bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlSettings {
    /// `--ttl`, when given.
    pub ttl: Option<Duration>,
    /// `--skew-margin`.
    pub skew_margin: Duration,
}

impl TtlSettings {
    /// Parses `--ttl` and `--skew-margin`.
    pub fn from_args(a: &TtlArgs) -> Result<TtlSettings> {
        Ok(TtlSettings {
            ttl: a
                .ttl
                .as_deref()
                .map(|s| parse_duration(s, "--ttl / WITHDRAWAL_TTL"))
                .transpose()?,
            skew_margin: parse_duration(
                &a.skew_margin,
                "--skew-margin / WITHDRAWAL_GATE_SKEW_MARGIN",
            )?,
        })
    }
}

/// `freeze`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreezeSettings {
    /// Why.
    pub reason: String,
    /// ttl to record, whole seconds rounded up.
    pub ttl_seconds: Option<i64>,
    /// Hook.
    pub stop_cmd: Option<String>,
    /// Hook timeout.
    pub hook_timeout: Duration,
    /// Lock wait limit.
    pub lock_timeout: Duration,
    /// Dry run.
    pub dry_run: bool,
}

impl FreezeSettings {
    /// Parses and checks `freeze`'s flags.
    pub fn from_args(a: &FreezeArgs) -> Result<FreezeSettings> {
        let reason = non_blank(&a.reason, "--reason / WITHDRAWAL_GATE_FREEZE_REASON")?;
        let ttl = a
            .ttl
            .as_deref()
            .map(|s| parse_duration(s, "--ttl / WITHDRAWAL_TTL"))
            .transpose()?;
        let (hook_timeout, lock_timeout) = timeouts(&a.timeouts)?;
        Ok(FreezeSettings {
            reason,
            ttl_seconds: ttl.map(ceil_seconds).transpose()?,
            stop_cmd: hook(
                a.stop_cmd.as_deref(),
                "--stop-cmd / WITHDRAWAL_GATE_STOP_CMD",
            )?,
            hook_timeout,
            lock_timeout,
            dry_run: a.dry_run,
        })
    }
}

/// `tsafe`.
pub type TsafeSettings = TtlSettings;

/// `wait`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitSettings {
    /// Explicit tSafe (`--tsafe`): no computation.
    pub t_safe: Option<DateTime<Utc>>,
    /// ttl bound inputs.
    pub ttl: TtlSettings,
    /// Give up after.
    pub timeout: Duration,
    /// The synchronizer that counts, if pinned by the user.
    pub synchronizer_id: Option<String>,
    /// Fallback poll interval.
    pub poll_interval: Duration,
    /// LISTEN for notifications.
    pub listen: bool,
    /// Heartbeat age that draws a warning.
    pub heartbeat_stale_after: Duration,
    /// Dry run.
    pub dry_run: bool,
}

impl WaitSettings {
    /// Parses and checks `wait`'s flags.
    pub fn from_args(a: &WaitArgs) -> Result<WaitSettings> {
        let poll_interval = parse_duration(
            &a.poll_interval,
            "--poll-interval / WITHDRAWAL_GATE_POLL_INTERVAL",
        )?;
        if poll_interval < MIN_POLL_INTERVAL {
            return Err(Error::usage(format!(
                "--poll-interval {} is shorter than {} ms",
                a.poll_interval,
                MIN_POLL_INTERVAL.as_millis()
            ))
            .with_hint("use at least 10ms; notifications make short intervals unnecessary"));
        }
        Ok(WaitSettings {
            t_safe: a
                .tsafe
                .as_deref()
                .map(|s| parse_record_time(s, "--tsafe / WITHDRAWAL_GATE_TSAFE"))
                .transpose()?,
            ttl: TtlSettings::from_args(&a.ttl)?,
            timeout: parse_duration(&a.timeout, "--timeout / WITHDRAWAL_GATE_TIMEOUT")?,
            synchronizer_id: synchronizer(&a.synchronizer)?,
            poll_interval,
            listen: !a.no_listen,
            heartbeat_stale_after: parse_duration(
                &a.heartbeat_stale_after,
                "--heartbeat-stale-after / WITHDRAWAL_GATE_HEARTBEAT_STALE_AFTER",
            )?,
            dry_run: a.dry_run,
        })
    }
}

/// `thaw`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThawSettings {
    /// Override the tSafe check.
    pub force: bool,
    /// Why.
    pub reason: Option<String>,
    /// Confirmed on the command line.
    pub yes: bool,
    /// Hook.
    pub start_cmd: Option<String>,
    /// Hook timeout.
    pub hook_timeout: Duration,
    /// ttl bound inputs.
    pub ttl: TtlSettings,
    /// Pinned synchronizer.
    pub synchronizer_id: Option<String>,
    /// Dry run.
    pub dry_run: bool,
}

impl ThawSettings {
    /// Parses and checks `thaw`'s flags.
    pub fn from_args(a: &ThawArgs) -> Result<ThawSettings> {
        let reason = a
            .reason
            .as_deref()
            .map(|r| non_blank(r, "--reason / WITHDRAWAL_GATE_THAW_REASON"))
            .transpose()?;
        if a.force && reason.is_none() {
            return Err(Error::usage(
                "--force needs --reason TEXT: a forced thaw is recorded with its reason",
            )
            .with_hint("add --reason 'why the tSafe check is overridden'"));
        }
        let (hook_timeout, _) = timeouts(&a.timeouts)?;
        Ok(ThawSettings {
            force: a.force,
            reason,
            yes: a.yes,
            start_cmd: hook(
                a.start_cmd.as_deref(),
                "--start-cmd / WITHDRAWAL_GATE_START_CMD",
            )?,
            hook_timeout,
            ttl: TtlSettings::from_args(&a.ttl)?,
            synchronizer_id: synchronizer(&a.synchronizer)?,
            dry_run: a.dry_run,
        })
    }
}

/// `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSettings {
    /// ttl bound inputs.
    pub ttl: TtlSettings,
    /// Pinned synchronizer.
    pub synchronizer_id: Option<String>,
    /// Heartbeat age reported as stale.
    pub heartbeat_stale_after: Duration,
}

impl StatusSettings {
    /// Parses `status`'s flags.
    pub fn from_args(a: &StatusArgs) -> Result<StatusSettings> {
        Ok(StatusSettings {
            ttl: TtlSettings::from_args(&a.ttl)?,
            synchronizer_id: synchronizer(&a.synchronizer)?,
            heartbeat_stale_after: parse_duration(
                &a.heartbeat_stale_after,
                "--heartbeat-stale-after / WITHDRAWAL_GATE_HEARTBEAT_STALE_AFTER",
            )?,
        })
    }
}

fn timeouts(t: &MutationTimeouts) -> Result<(Duration, Duration)> {
    Ok((
        parse_duration(
            &t.hook_timeout,
            "--hook-timeout / WITHDRAWAL_GATE_HOOK_TIMEOUT",
        )?,
        parse_duration(
            &t.lock_timeout,
            "--lock-timeout / WITHDRAWAL_GATE_LOCK_TIMEOUT",
        )?,
    ))
}

fn non_blank(s: &str, what: &str) -> Result<String> {
    let t = s.trim();
    if t.is_empty() {
        Err(Error::usage(format!("{what} is empty"))
            .with_hint("say why, e.g. --reason 'restore INC-42'"))
    } else {
        Ok(t.to_string())
    }
}

fn hook(cmd: Option<&str>, what: &str) -> Result<Option<String>> {
    match cmd {
        Some(c) if c.trim().is_empty() => Err(Error::usage(format!("{what} is empty"))
            .with_hint("give a shell command, or leave the flag out")),
        other => Ok(other.map(str::to_string)),
    }
}

fn synchronizer(a: &SynchronizerArg) -> Result<Option<String>> {
    match a.synchronizer_id.as_deref() {
        None => Ok(None),
        Some(s) if s.contains("::") && !s.starts_with("::") && !s.ends_with("::") => {
            Ok(Some(s.to_string()))
        }
        Some(s) => Err(Error::usage(format!(
            "synchronizer id \"{s}\" is not of the form <name>::<fingerprint>"
        ))
        .with_hint("copy it from `ingest-ctl last` (synchronizerId)")),
    }
}

/// Whole seconds, rounded up (a shorter stored ttl would make tSafe too early).
pub fn ceil_seconds(d: Duration) -> Result<i64> {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i64::try_from(secs).map_err(|_| Error::usage(format!("ttl of {secs} s is too large")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Command, try_parse_from};

    fn wait(args: &[&str]) -> Result<WaitSettings> {
        let mut v = vec!["wg", "wait"];
        v.extend_from_slice(args);
        let cli = try_parse_from(v).unwrap();
        let Command::Wait(w) = cli.command else {
            panic!("wait")
        };
        WaitSettings::from_args(&w)
    }

    #[test]
    fn durations_and_times_are_checked_with_the_flag_named() {
        let e = wait(&["--timeout", "soon"]).unwrap_err();
        assert_eq!(e.exit_code().code(), 2);
        assert!(
            e.message()
                .starts_with("--timeout / WITHDRAWAL_GATE_TIMEOUT \"soon\" is not a duration"),
            "{}",
            e.message()
        );
        let e = wait(&["--tsafe", "yesterday"]).unwrap_err();
        assert!(
            e.message().contains("is not an RFC 3339 timestamp"),
            "{}",
            e.message()
        );
        let e = wait(&["--tsafe", "2025-01-01T00:00:00.0000001Z"]).unwrap_err();
        assert!(e.message().contains("sub-microsecond"), "{}", e.message());
        let e = wait(&["--poll-interval", "1ms"]).unwrap_err();
        assert!(
            e.message().contains("shorter than 10 ms"),
            "{}",
            e.message()
        );
        let e = wait(&["--synchronizer-id", "global"]).unwrap_err();
        assert!(
            e.message().contains("<name>::<fingerprint>"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn wait_settings() {
        let s = wait(&[
            "--tsafe",
            "2025-01-01T00:00:00Z",
            "--poll-interval",
            "250ms",
            "--no-listen",
        ])
        .unwrap();
        assert_eq!(s.poll_interval, Duration::from_millis(250));
        assert!(!s.listen);
        assert_eq!(
            s.t_safe
                .map(canton_dr_cli::time::format_record_time)
                .as_deref(),
            Some("2025-01-01T00:00:00.000000Z")
        );
    }

    #[test]
    fn ttl_rounds_up_to_whole_seconds() {
        assert_eq!(ceil_seconds(Duration::from_millis(1500)).unwrap(), 2);
        assert_eq!(ceil_seconds(Duration::from_secs(3600)).unwrap(), 3600);
        assert_eq!(ceil_seconds(Duration::ZERO).unwrap(), 0);
    }

    #[test]
    fn forced_thaw_needs_a_reason() {
        let cli = try_parse_from(["wg", "thaw", "--force"]).unwrap();
        let Command::Thaw(t) = cli.command else {
            panic!("thaw")
        };
        let e = ThawSettings::from_args(&t).unwrap_err();
        assert!(
            e.message().starts_with("--force needs --reason"),
            "{}",
            e.message()
        );
        let cli = try_parse_from(["wg", "thaw", "--force", "--reason", "  "]).unwrap();
        let Command::Thaw(t) = cli.command else {
            panic!("thaw")
        };
        assert!(
            ThawSettings::from_args(&t)
                .unwrap_err()
                .message()
                .contains("is empty")
        );
    }
}
