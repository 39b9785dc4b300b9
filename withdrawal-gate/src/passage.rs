//! Whether the ingestion checkpoint is past tSafe, and whether the ingester
//! looks alive — pure judgements over one [`IngestionView`].
//!
//! The checkpoint passes tSafe when its record time is strictly later than
//! tSafe and, when a synchronizer is expected, it is on that synchronizer
//! (record times of different synchronizers are not comparable). An offset
//! checkpoint (`update_id` NULL) counts like a transaction: it says every
//! update up to its record time has been ingested.

use crate::sql::IngestionView;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;

/// The checkpoint against tSafe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passage {
    /// Past tSafe on the expected synchronizer.
    pub passed: bool,
    /// The checkpoint's record time.
    pub checkpoint_record_time: Option<DateTime<Utc>>,
    /// Its offset.
    pub checkpoint_offset: Option<i64>,
    /// Its update id (`None` for an offset checkpoint).
    pub checkpoint_update_id: Option<String>,
    /// Its synchronizer.
    pub synchronizer_id: Option<String>,
    /// The synchronizer that counts, if one is expected.
    pub expected_synchronizer_id: Option<String>,
    /// The checkpoint is on the expected synchronizer (or none is expected).
    pub on_synchronizer: bool,
    /// Record time still to ingest, milliseconds (0 once within the last millisecond).
    pub remaining_ms: Option<i64>,
}

/// Judges `view` against `t_safe` (`None`: unknown, never passed).
pub fn assess(
    view: &IngestionView,
    t_safe: Option<DateTime<Utc>>,
    expected: Option<&str>,
) -> Passage {
    let cp = view.checkpoint.as_ref();
    let on_synchronizer = match (cp, expected) {
        (Some(cp), Some(want)) => cp.synchronizer_id == want,
        (None, Some(_)) => false,
        (_, None) => true,
    };
    let passed = match (cp, t_safe) {
        (Some(cp), Some(t)) => on_synchronizer && cp.record_time > t,
        _ => false,
    };
    let remaining_ms = match (cp, t_safe) {
        (Some(cp), Some(t)) => Some((t - cp.record_time).num_milliseconds().max(0)),
        _ => None,
    };
    Passage {
        passed,
        checkpoint_record_time: cp.map(|c| c.record_time),
        checkpoint_offset: cp.map(|c| c.offset),
        checkpoint_update_id: cp.and_then(|c| c.update_id.clone()),
        synchronizer_id: cp.map(|c| c.synchronizer_id.clone()),
        expected_synchronizer_id: expected.map(str::to_string),
        on_synchronizer,
        remaining_ms,
    }
}

/// Signs of life of the ingester.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Liveness {
    /// Last heartbeat.
    #[serde(with = "integration_db::serde_time::option")]
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// Its age by the database clock, milliseconds.
    pub heartbeat_age_ms: Option<i64>,
    /// No heartbeat, or older than the limit.
    pub heartbeat_stale: bool,
    /// What operators asked (`running`/`stopped`).
    pub desired_state: Option<String>,
    /// What it reported.
    pub actual_state: Option<String>,
    /// Asked to stop, or reports stopped: it will not move the checkpoint.
    pub stopped: bool,
}

/// Judges the ingester's control row in `view`.
pub fn liveness(view: &IngestionView, stale_after: Duration) -> Liveness {
    let age = view
        .heartbeat_at
        .map(|h| (view.db_now - h).num_milliseconds().max(0));
    let limit = i64::try_from(stale_after.as_millis()).unwrap_or(i64::MAX);
    Liveness {
        heartbeat_at: view.heartbeat_at,
        heartbeat_age_ms: age,
        heartbeat_stale: age.is_none_or(|a| a > limit),
        desired_state: view.desired_state.clone(),
        actual_state: view.actual_state.clone(),
        stopped: view.desired_state.as_deref() == Some("stopped")
            || view.actual_state.as_deref() == Some("stopped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::CheckpointView;
    use canton_dr_cli::time::parse_record_time;

    fn at(s: &str) -> DateTime<Utc> {
        parse_record_time(s, "t").unwrap()
    }

    fn view(record_time: &str, sync: &str) -> IngestionView {
        IngestionView {
            db_now: at("2025-01-01T00:01:00Z"),
            checkpoint: Some(CheckpointView {
                offset: 7,
                record_time: at(record_time),
                synchronizer_id: sync.into(),
                update_id: None,
            }),
            has_control: true,
            heartbeat_at: Some(at("2025-01-01T00:00:30Z")),
            desired_state: Some("running".into()),
            actual_state: Some("running".into()),
        }
    }

    #[test]
    fn strictly_later_record_time_passes() {
        let t = Some(at("2025-01-01T00:00:00Z"));
        assert!(!assess(&view("2025-01-01T00:00:00Z", "s::1"), t, None).passed);
        let p = assess(&view("2024-12-31T23:59:58.5Z", "s::1"), t, None);
        assert!(!p.passed);
        assert_eq!(p.remaining_ms, Some(1500));
        let p = assess(&view("2025-01-01T00:00:00.000001Z", "s::1"), t, None);
        assert!(p.passed);
        assert_eq!(p.remaining_ms, Some(0));
        assert!(!assess(&view("2025-01-01T00:00:01Z", "s::1"), None, None).passed);
    }

    #[test]
    fn another_synchronizer_does_not_count() {
        let t = Some(at("2025-01-01T00:00:00Z"));
        let p = assess(&view("2025-01-02T00:00:00Z", "other::2"), t, Some("s::1"));
        assert!(!p.passed && !p.on_synchronizer);
        assert!(assess(&view("2025-01-02T00:00:00Z", "s::1"), t, Some("s::1")).passed);
    }

    #[test]
    fn heartbeat_age_by_database_clock() {
        let v = view("2025-01-01T00:00:00Z", "s::1");
        let l = liveness(&v, Duration::from_secs(60));
        assert_eq!(
            (l.heartbeat_age_ms, l.heartbeat_stale, l.stopped),
            (Some(30_000), false, false)
        );
        assert!(liveness(&v, Duration::from_secs(10)).heartbeat_stale);
        let none = IngestionView {
            heartbeat_at: None,
            desired_state: Some("stopped".into()),
            ..v
        };
        let l = liveness(&none, Duration::from_secs(60));
        assert!(l.heartbeat_stale && l.stopped);
    }
}
