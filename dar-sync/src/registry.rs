//! The Integration DB side: the `dar_uploads` registry of what the node must
//! hold (and since when), and the audit log of what dar-sync did.

use crate::inventory::LocalDar;
use canton_dr_cli::Result;
use chrono::{DateTime, Utc};
use integration_db::audit::{self, AuditEntry, Outcome};
use integration_db::dars::{self, DarUpload};
use integration_db::{Db, GenericClient};

/// Tool name in audit rows.
pub const TOOL: &str = "dar-sync";

/// Connects and checks the schema version.
pub async fn open(args: &integration_db::args::DbArgs) -> Result<Db> {
    Db::connect_ready(&args.connect_options(crate::args::APPLICATION_NAME)?).await
}

/// The registry row for a local DAR uploaded (or recorded) at `at`.
pub fn row_for(dar: &LocalDar, at: DateTime<Utc>) -> DarUpload {
    DarUpload {
        main_package_id: dar.main_package_id.clone(),
        name: Some(dar.name.clone()),
        version: Some(dar.version.clone()),
        file_sha256: dar.sha256.clone(),
        size_bytes: i64::try_from(dar.size).unwrap_or(i64::MAX),
        source_path: Some(absolute(&dar.path)),
        uploaded_at: at,
        recorded_by: canton_dr_cli::logging::actor(),
        recorded_at: None,
    }
}

/// `path` made absolute (so that a later run from another directory finds
/// the file), unchanged if that fails.
fn absolute(path: &str) -> String {
    std::path::absolute(path)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.to_string())
}

/// Records a DAR; returns true when its main package id was not recorded yet.
pub async fn record(c: &impl GenericClient, dar: &LocalDar, at: DateTime<Utc>) -> Result<bool> {
    dars::upsert(c, &row_for(dar, at)).await
}

/// True when `main_package_id` is recorded.
pub async fn is_recorded(c: &impl GenericClient, main_package_id: &str) -> Result<bool> {
    Ok(dars::get(c, main_package_id).await?.is_some())
}

/// Recorded DARs, optionally only those uploaded at or after `since`.
pub async fn list(c: &impl GenericClient, since: Option<DateTime<Utc>>) -> Result<Vec<DarUpload>> {
    dars::list(c, since).await
}

/// Writes one audit row for `command`.
pub async fn audit(
    c: &impl GenericClient,
    command: &str,
    dry_run: bool,
    outcome: Outcome,
    details: serde_json::Value,
) -> Result<i64> {
    let entry = AuditEntry::new(TOOL, command, details)
        .dry_run(dry_run)
        .outcome(outcome);
    audit::insert(c, &entry).await
}
