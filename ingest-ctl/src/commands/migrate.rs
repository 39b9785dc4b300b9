//! `ingest-ctl migrate`: create or upgrade the Integration DB schema. Safe to
//! run twice (and concurrently: integration-db serializes migrations).

use crate::Ctx;
use crate::args::MigrateArgs;
use crate::audit;
use canton_dr_cli::{Error, ExitCode, Result};
use integration_db::Db;
use integration_db::audit::Outcome;
use integration_db::migrate::{self, AppliedMigration, LATEST_VERSION};
use serde::Serialize;
use serde_json::json;

/// What `migrate` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrateReport {
    /// Always `"migrate"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The schema.
    pub schema: String,
    /// Version before (0: no schema).
    pub from_version: i32,
    /// Version after (with --dry-run: after a real run).
    pub to_version: i32,
    /// Migrations applied (with --dry-run: that a real run would apply).
    pub applied: Vec<AppliedMigration>,
    /// A dry run.
    pub dry_run: bool,
    /// Always `"ok"`.
    pub status: &'static str,
}

impl MigrateReport {
    fn to_text(&self) -> String {
        let verb = if self.dry_run {
            "would apply"
        } else {
            "applied"
        };
        if self.applied.is_empty() {
            format!(
                "schema {} is at version {}; nothing to do",
                self.schema, self.to_version
            )
        } else {
            let names: Vec<String> = self
                .applied
                .iter()
                .map(|m| format!("V{} {}", m.version, m.name))
                .collect();
            format!(
                "schema {}: {verb} {} (version {} -> {})",
                self.schema,
                names.join(", "),
                self.from_version,
                self.to_version
            )
        }
    }
}

/// Runs `migrate`.
pub async fn run(ctx: &Ctx, args: &MigrateArgs) -> Result<ExitCode> {
    let mut db = Db::connect(&ctx.options).await?;
    let schema = db.schema().to_string();
    let report = if args.dry_run {
        let from = migrate::current_version(db.client(), &schema)
            .await?
            .unwrap_or(0);
        if from > LATEST_VERSION {
            return Err(Error::usage(format!(
                "schema \"{schema}\" is at version {from}, newer than this tool knows ({LATEST_VERSION})"
            ))
            .with_hint("upgrade the canton-dr tools"));
        }
        let pending = migrate::pending(db.client(), &schema).await?;
        MigrateReport {
            kind: "migrate",
            schema,
            from_version: from,
            to_version: pending.last().map_or(from, |m| m.version),
            applied: pending
                .iter()
                .map(|m| AppliedMigration {
                    version: m.version,
                    name: m.name.to_string(),
                })
                .collect(),
            dry_run: true,
            status: "ok",
        }
    } else {
        let r = db.migrate().await?;
        MigrateReport {
            kind: "migrate",
            schema: r.schema,
            from_version: r.from_version,
            to_version: r.to_version,
            applied: r.applied,
            dry_run: false,
            status: "ok",
        }
    };
    // Before the first migration there is no audit table to write to.
    if report.dry_run && report.from_version < LATEST_VERSION {
        tracing::info!("dry run on a schema without the audit table: no audit row");
    } else {
        audit::record(
            db.client(),
            "migrate",
            report.dry_run,
            Outcome::Ok,
            json!({
                "schema": report.schema,
                "fromVersion": report.from_version,
                "toVersion": report.to_version,
                "applied": report.applied,
            }),
        )
        .await?;
    }
    ctx.printer.result(&report, MigrateReport::to_text)?;
    Ok(ExitCode::Ok)
}
