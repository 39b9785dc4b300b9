//! One consistent look at an ingester: its control row, its checkpoint and the
//! database's clock, and what follows from them (alive? stopped? where will it
//! continue from?). Every command decides from a [`Snapshot`].

use crate::queries::{CheckpointView, QuerySet};
use canton_dr_cli::{Error, Result};
use chrono::{DateTime, Utc};
use integration_db::control::{self, Control, IngesterState};
use integration_db::error::db_error;
use std::time::Duration;
use tokio_postgres::GenericClient;

/// The control row, the checkpoint, and `now()` on the database server (so
/// that heartbeat ages do not depend on this machine's clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The `ingestion_control` row.
    pub control: Control,
    /// The checkpoint (through the `checkpoint` query).
    pub checkpoint: Option<CheckpointView>,
    /// The database server's clock when read.
    pub db_now: DateTime<Utc>,
}

impl Snapshot {
    /// Time since the last heartbeat (`None`: the ingester never beat).
    pub fn heartbeat_age(&self) -> Option<Duration> {
        self.control
            .heartbeat_at
            .map(|h| (self.db_now - h).to_std().unwrap_or(Duration::ZERO))
    }

    /// An ingester beat within `dead_after`.
    pub fn live(&self, dead_after: Duration) -> bool {
        self.heartbeat_age().is_some_and(|age| age <= dead_after)
    }

    /// The ingester acted on the latest change and is in the desired state.
    pub fn acknowledged(&self) -> bool {
        self.control.acknowledged()
    }

    /// A resume offset was set and the ingester has not yet committed a
    /// checkpoint in its epoch.
    pub fn resume_pending(&self) -> bool {
        self.control.resume_offset.is_some()
            && self
                .checkpoint
                .as_ref()
                .is_none_or(|cp| cp.epoch < i64::from(self.control.offset_epoch))
    }

    /// The offset the ingester continues after: the pending resume offset, or
    /// the checkpoint's offset (`None`: nothing ingested, no resume set).
    pub fn position(&self) -> Option<i64> {
        if self.resume_pending() {
            self.control.resume_offset
        } else {
            self.checkpoint.as_ref().map(|cp| cp.offset)
        }
    }

    /// The precondition of `set-offset`: stop requested, and either
    /// acknowledged (the ingester reported `stopped` for the latest
    /// generation) or no live ingester.
    pub fn stopped(&self, dead_after: Duration) -> bool {
        self.control.desired_state == IngesterState::Stopped
            && (self.acknowledged() || !self.live(dead_after))
    }

    /// Heartbeat age in seconds, millisecond precision, for output.
    pub fn heartbeat_age_seconds(&self) -> Option<f64> {
        self.heartbeat_age().map(|d| d.as_millis() as f64 / 1000.0)
    }
}

/// Reads the snapshot of `ingester`; an unknown ingester is a usage error
/// that lists the known ones. With `lock`, the control row stays locked
/// (`FOR UPDATE`) until the caller's transaction ends.
pub async fn read(
    c: &impl GenericClient,
    ingester: &str,
    queries: &QuerySet,
    lock: bool,
) -> Result<Snapshot> {
    let lock_sql = if lock { " FOR UPDATE" } else { "" };
    let row = c
        .query_opt(
            &format!("SELECT now() FROM ingestion_control WHERE ingester = $1{lock_sql}"),
            &[&ingester],
        )
        .await
        .map_err(|e| db_error(&e))?;
    let Some(row) = row else {
        return Err(unknown_ingester(c, ingester).await);
    };
    let db_now: DateTime<Utc> = row.get(0);
    let control = control::get(c, ingester)
        .await?
        .ok_or_else(|| Error::transient(format!("the control row of \"{ingester}\" vanished")))?;
    let checkpoint = queries.checkpoint(c, ingester).await?;
    Ok(Snapshot {
        control,
        checkpoint,
        db_now,
    })
}

/// True when `ingester` has a control row.
pub async fn exists(c: &impl GenericClient, ingester: &str) -> Result<bool> {
    let row = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM ingestion_control WHERE ingester = $1)",
            &[&ingester],
        )
        .await
        .map_err(|e| db_error(&e))?;
    Ok(row.get(0))
}

/// The error for an ingester without a control row, naming the known ones.
pub async fn unknown_ingester(c: &impl GenericClient, ingester: &str) -> Error {
    let known = match control::list(c).await {
        Ok(rows) => rows.into_iter().map(|r| r.ingester).collect::<Vec<_>>(),
        Err(e) => return e,
    };
    let hint = if known.is_empty() {
        "no ingester has registered yet: an ingester creates its row when it first starts (docs/ingestion-contract.md)".to_string()
    } else {
        format!(
            "known ingesters: {}; pass --ingester NAME or set INGESTER_NAME",
            known.join(", ")
        )
    };
    Error::usage(format!(
        "there is no ingester named \"{ingester}\" in ingestion_control"
    ))
    .with_hint(hint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use canton_dr_cli::time::parse_record_time;

    fn at(s: &str) -> DateTime<Utc> {
        parse_record_time(s, "t").unwrap()
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            control: Control {
                ingester: "i".into(),
                desired_state: IngesterState::Stopped,
                resume_offset: None,
                dedup_from: None,
                offset_epoch: 0,
                generation: 4,
                actual_state: Some(IngesterState::Stopped),
                acked_generation: 4,
                heartbeat_at: Some(at("2025-01-01T00:00:00Z")),
                updated_at: at("2025-01-01T00:00:00Z"),
                updated_by: "me".into(),
            },
            checkpoint: Some(CheckpointView {
                offset: 40,
                record_time: at("2025-01-01T00:00:00Z"),
                synchronizer_id: "s::1220".into(),
                update_id: Some("u".into()),
                epoch: 0,
            }),
            db_now: at("2025-01-01T00:00:10.5Z"),
        }
    }

    #[test]
    fn liveness_uses_the_database_clock() {
        let s = snapshot();
        assert_eq!(s.heartbeat_age(), Some(Duration::from_millis(10_500)));
        assert_eq!(s.heartbeat_age_seconds(), Some(10.5));
        assert!(s.live(Duration::from_secs(11)));
        assert!(!s.live(Duration::from_secs(10)));
        let mut never = s.clone();
        never.control.heartbeat_at = None;
        assert!(!never.live(Duration::from_secs(3600)));
    }

    #[test]
    fn stopped_needs_the_acknowledgement_or_no_live_ingester() {
        let dead_after = Duration::from_secs(30);
        let mut s = snapshot();
        assert!(s.stopped(dead_after));
        s.control.generation = 5; // a change the ingester has not acted on
        assert!(!s.stopped(dead_after));
        s.db_now = at("2025-01-01T00:01:00Z"); // heartbeat 60 s old: no live ingester
        assert!(s.stopped(dead_after));
        s.control.desired_state = IngesterState::Running;
        assert!(!s.stopped(dead_after), "a running request is never stopped");
    }

    #[test]
    fn position_follows_the_epochs() {
        let mut s = snapshot();
        assert!(!s.resume_pending());
        assert_eq!(s.position(), Some(40));
        s.control.resume_offset = Some(7);
        s.control.offset_epoch = 1;
        assert!(s.resume_pending());
        assert_eq!(s.position(), Some(7));
        s.checkpoint.as_mut().unwrap().epoch = 1;
        s.checkpoint.as_mut().unwrap().offset = 9;
        assert!(
            !s.resume_pending(),
            "a checkpoint in the new epoch consumed it"
        );
        assert_eq!(s.position(), Some(9));
        s.checkpoint = None;
        assert_eq!(s.position(), Some(7));
    }
}
