//! Recording a desired state (`stop`, `start`): under the control row's lock,
//! bump the generation if the state changes (a no-op otherwise), notify the
//! ingester, and write the audit row, all in one transaction.

use crate::Ctx;
use crate::audit;
use crate::state::{self, Snapshot};
use canton_dr_cli::Result;
use integration_db::Db;
use integration_db::audit::Outcome;
use integration_db::control::{self, IngesterState};
use serde_json::json;

/// The result of recording a desired state.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The state before.
    pub before: Snapshot,
    /// The state after (in a dry run: as it would be).
    pub after: Snapshot,
    /// Whether the desired state changed (and the generation was bumped).
    pub changed: bool,
}

/// Records `state` as desired for the ingester of `ctx`.
pub async fn record(
    ctx: &Ctx,
    db: &mut Db,
    state: IngesterState,
    command: &str,
    dry_run: bool,
    hook: Option<&str>,
) -> Result<Recorded> {
    let actor = canton_dr_cli::logging::actor();
    let tx = db.transaction().await?;
    let before = state::read(&tx, &ctx.ingester, &ctx.queries, true).await?;
    let changed = before.control.desired_state != state;
    let mut after = before.clone();
    if changed {
        if dry_run {
            after.control.desired_state = state;
            after.control.generation += 1;
        } else {
            after.control = control::set_desired_state(&tx, &ctx.ingester, state, &actor)
                .await?
                .value;
        }
    }
    audit::record(
        &tx,
        command,
        dry_run,
        Outcome::Ok,
        json!({
            "ingester": ctx.ingester,
            "desiredState": state,
            "changed": changed,
            "generationBefore": before.control.generation,
            "generation": after.control.generation,
            "hook": hook,
        }),
    )
    .await?;
    tx.commit()
        .await
        .map_err(|e| integration_db::error::db_error(&e))?;
    Ok(Recorded {
        before,
        after,
        changed,
    })
}
