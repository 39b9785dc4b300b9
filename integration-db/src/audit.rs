//! `audit_log`: every mutating command of every tool records what it did,
//! when, from which user@host, whether it was a dry run, and its outcome.

use crate::Result;
use crate::error::PgResultExt as _;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::{GenericClient, Row};

/// What came of an audited command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Done.
    Ok,
    /// Refused for safety.
    Refused,
    /// Failed.
    Failed,
}

impl Outcome {
    /// The database / JSON word.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Outcome> {
        match s {
            "ok" => Some(Outcome::Ok),
            "refused" => Some(Outcome::Refused),
            "failed" => Some(Outcome::Failed),
            _ => None,
        }
    }
}

/// An entry to record.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Tool (`ingest-ctl`, `withdrawal-gate`, …).
    pub tool: String,
    /// Command (`stop`, `freeze`, …).
    pub command: String,
    /// user@host.
    pub actor: String,
    /// A `--dry-run`.
    pub dry_run: bool,
    /// Command-specific facts (a JSON object).
    pub details: Value,
    /// Outcome, when known.
    pub outcome: Option<Outcome>,
}

impl AuditEntry {
    /// An entry for `tool command` by the current user@host, outcome `ok`.
    pub fn new(tool: &str, command: &str, details: Value) -> AuditEntry {
        AuditEntry {
            tool: tool.to_string(),
            command: command.to_string(),
            actor: canton_dr_cli::logging::actor(),
            dry_run: false,
            details,
            outcome: Some(Outcome::Ok),
        }
    }

    /// Marks it a dry run.
    #[must_use]
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Sets the outcome.
    #[must_use]
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = Some(outcome);
        self
    }
}

/// A row of `audit_log`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// Id (increasing).
    pub id: i64,
    /// When.
    #[serde(with = "crate::serde_time")]
    pub at: DateTime<Utc>,
    /// Tool.
    pub tool: String,
    /// Command.
    pub command: String,
    /// user@host.
    pub actor: String,
    /// Dry run.
    pub dry_run: bool,
    /// Details.
    pub details: Value,
    /// Outcome (`None` for rows written before schema V2).
    pub outcome: Option<Outcome>,
}

/// Records `entry`; returns its id. Run it in the command's transaction so
/// that the record and the change commit together.
pub async fn insert(c: &impl GenericClient, entry: &AuditEntry) -> Result<i64> {
    let row = c
        .query_one(
            "INSERT INTO audit_log (tool, command, actor, dry_run, details, outcome)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                &entry.tool,
                &entry.command,
                &entry.actor,
                &entry.dry_run,
                &entry.details,
                &entry.outcome.map(Outcome::as_str),
            ],
        )
        .await
        .db()?;
    Ok(row.get(0))
}

fn from_row(r: &Row) -> AuditRecord {
    AuditRecord {
        id: r.get(0),
        at: r.get(1),
        tool: r.get(2),
        command: r.get(3),
        actor: r.get(4),
        dry_run: r.get(5),
        details: r.get(6),
        outcome: r
            .get::<_, Option<String>>(7)
            .as_deref()
            .and_then(Outcome::parse),
    }
}

/// The newest `limit` entries (of `tool`, or all), newest first.
pub async fn recent(
    c: &impl GenericClient,
    tool: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditRecord>> {
    let rows = c
        .query(
            "SELECT id, at, tool, command, actor, dry_run, details, outcome FROM audit_log
             WHERE $1::text IS NULL OR tool = $1 ORDER BY id DESC LIMIT $2",
            &[&tool, &limit],
        )
        .await
        .db()?;
    Ok(rows.iter().map(from_row).collect())
}
