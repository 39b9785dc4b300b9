//! What every command needs: where the DB is, the gate and ingester names,
//! who runs it, where output goes; and the audit-row helper.

use crate::settings::Names;
use canton_dr_cli::{Printer, Result};
use integration_db::audit::{self, AuditEntry, Outcome};
use integration_db::{ConnectOptions, GenericClient};
use serde_json::Value;

/// The tool name in audit rows.
pub const TOOL: &str = "withdrawal-gate";

/// Shared inputs of the commands.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// How to reach the Integration DB.
    pub options: ConnectOptions,
    /// Gate and ingester.
    pub names: Names,
    /// user@host, for the gate row and the audit log.
    pub actor: String,
    /// stdout.
    pub printer: Printer,
}

impl Ctx {
    /// Records an audit row for `command` (run it in the command's transaction
    /// so that the record and the change commit together).
    pub async fn audit(
        &self,
        c: &impl GenericClient,
        command: &str,
        dry_run: bool,
        outcome: Outcome,
        mut details: Value,
    ) -> Result<i64> {
        if let Value::Object(m) = &mut details {
            m.insert("gate".into(), self.names.gate.clone().into());
        }
        let mut entry = AuditEntry::new(TOOL, command, details)
            .dry_run(dry_run)
            .outcome(outcome);
        entry.actor = self.actor.clone();
        audit::insert(c, &entry).await
    }
}
