//! `dar_uploads`: the DARs the participant should hold, and since when, so
//! that `dar-sync` can re-upload what a participant restore lost.

use crate::Result;
use crate::error::PgResultExt as _;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::{GenericClient, Row};

/// A row of `dar_uploads`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DarUpload {
    /// Main package id (the DAR's identity on the participant).
    pub main_package_id: String,
    /// Package name.
    pub name: Option<String>,
    /// Package version.
    pub version: Option<String>,
    /// sha256 of the .dar file, lower-case hex.
    pub file_sha256: String,
    /// File size in bytes.
    pub size_bytes: i64,
    /// Where the file was uploaded from.
    pub source_path: Option<String>,
    /// When it was (first) uploaded to the participant.
    #[serde(with = "crate::serde_time")]
    pub uploaded_at: DateTime<Utc>,
    /// Who recorded it (user@host).
    pub recorded_by: String,
    /// When the row was last written (set by the database; ignored by [`upsert`]).
    #[serde(with = "crate::serde_time::option")]
    pub recorded_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "main_package_id, name, version, file_sha256, size_bytes, source_path,
    uploaded_at, recorded_by, recorded_at";

fn from_row(r: &Row) -> DarUpload {
    DarUpload {
        main_package_id: r.get(0),
        name: r.get(1),
        version: r.get(2),
        file_sha256: r.get(3),
        size_bytes: r.get(4),
        source_path: r.get(5),
        uploaded_at: r.get(6),
        recorded_by: r.get(7),
        recorded_at: r.get(8),
    }
}

/// Records an upload. If the package is already recorded, the earliest
/// `uploaded_at` is kept (it has been expected on the node since then) and the
/// file facts are refreshed. Returns `true` if the package was new.
pub async fn upsert(c: &impl GenericClient, d: &DarUpload) -> Result<bool> {
    let row = c
        .query_one(
            "INSERT INTO dar_uploads AS d (main_package_id, name, version, file_sha256, size_bytes,
                 source_path, uploaded_at, recorded_by, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
             ON CONFLICT (main_package_id) DO UPDATE SET
                 name = coalesce(EXCLUDED.name, d.name),
                 version = coalesce(EXCLUDED.version, d.version),
                 file_sha256 = EXCLUDED.file_sha256, size_bytes = EXCLUDED.size_bytes,
                 source_path = coalesce(EXCLUDED.source_path, d.source_path),
                 uploaded_at = least(d.uploaded_at, EXCLUDED.uploaded_at),
                 recorded_by = EXCLUDED.recorded_by, recorded_at = now()
             RETURNING (xmax = 0)",
            &[
                &d.main_package_id,
                &d.name,
                &d.version,
                &d.file_sha256,
                &d.size_bytes,
                &d.source_path,
                &d.uploaded_at,
                &d.recorded_by,
            ],
        )
        .await
        .db()?;
    Ok(row.get(0))
}

/// The record of `main_package_id`, if any.
pub async fn get(c: &impl GenericClient, main_package_id: &str) -> Result<Option<DarUpload>> {
    let row = c
        .query_opt(
            &format!("SELECT {COLUMNS} FROM dar_uploads WHERE main_package_id = $1"),
            &[&main_package_id],
        )
        .await
        .db()?;
    Ok(row.as_ref().map(from_row))
}

/// Recorded uploads, oldest first; with `since`, only those uploaded at or after it.
pub async fn list(c: &impl GenericClient, since: Option<DateTime<Utc>>) -> Result<Vec<DarUpload>> {
    let rows = c
        .query(
            &format!(
                "SELECT {COLUMNS} FROM dar_uploads
                 WHERE $1::timestamptz IS NULL OR uploaded_at >= $1
                 ORDER BY uploaded_at, main_package_id"
            ),
            &[&since],
        )
        .await
        .db()?;
    Ok(rows.iter().map(from_row).collect())
}
