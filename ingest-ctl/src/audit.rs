//! Audit rows of ingest-ctl's mutating commands (`audit_log`, tool
//! `ingest-ctl`): written in the command's transaction when it changes
//! something (so the row and the change commit together), for dry runs too
//! (`dry_run` true), and for refusals (outcome `refused`).

use canton_dr_cli::Result;
use integration_db::audit::{self, AuditEntry, Outcome};
use serde_json::Value;
use tokio_postgres::GenericClient;

/// The `tool` column of ingest-ctl's rows.
pub const TOOL: &str = "ingest-ctl";

/// Records `command` with `details`; returns the row id.
pub async fn record(
    c: &impl GenericClient,
    command: &str,
    dry_run: bool,
    outcome: Outcome,
    details: Value,
) -> Result<i64> {
    let entry = AuditEntry::new(TOOL, command, details)
        .dry_run(dry_run)
        .outcome(outcome);
    audit::insert(c, &entry).await
}

/// Records a refusal; a failure to record is logged, never hides the refusal.
pub async fn record_refusal(c: &impl GenericClient, command: &str, dry_run: bool, details: Value) {
    if let Err(e) = record(c, command, dry_run, Outcome::Refused, details).await {
        tracing::warn!("could not record the refusal in audit_log: {}", e.message());
    }
}
