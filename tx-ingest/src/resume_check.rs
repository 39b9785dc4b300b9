//! Before resuming from its own checkpoint, the ingester checks that the node
//! still numbers the checkpoint's last transaction the same way: it asks the
//! node for that update id (`GetUpdateById`) and compares the offsets.
//!
//! A node restored from a backup re-assigns the offsets after the backup
//! point, so a checkpoint written before the restore names a place in the old
//! numbering; streaming from it would silently skip or repeat transactions.
//! Runbook A handles this with a resume offset in a new epoch (`ingest-ctl
//! set-offset`); this check catches the cases it was not followed: an
//! ingester started against a restored node without the resume, or an
//! Integration DB restored from a dump older than a node restore. When a new
//! epoch is pending, the resume offset rules and nothing is checked.
//!
//! Only a last transaction checkpointed in the checkpoint's own epoch is
//! checked: after a resume, offset checkpoints move the checkpoint into the
//! new epoch while its last transaction stays the one from before the
//! restore, at an offset of the old numbering — rightly.

use canton_dr_cli::{Error, Result};
use integration_db::checkpoint::{Checkpoint, LastTransaction};
use integration_db::updates;
use tokio_postgres::GenericClient;

/// How to set the resume offset, for the refusals' hints.
const HINT: &str = "the node's offsets no longer match this checkpoint: follow runbook A \
(docs/runbook-validator-restore.md) — look up the offset of the checkpoint's record time \
with `offset-lookup` and set it with `ingest-ctl set-offset`; check that --ledger-api is \
the exchange's validator";

/// The epoch in which the checkpoint's last transaction was checkpointed,
/// when known: the checkpoint's own for a transaction checkpoint (they are
/// written together); for an offset checkpoint, the epoch of the
/// transaction's `ingested_updates` row if that row has the same offset
/// (else it was a re-delivered duplicate: unknown).
pub async fn last_transaction_epoch(
    c: &impl GenericClient,
    cp: Option<&Checkpoint>,
) -> Result<Option<i32>> {
    let Some(cp) = cp else { return Ok(None) };
    if cp.update_id.is_some() {
        return Ok(Some(cp.offset_epoch));
    }
    let Some(last) = &cp.last_transaction else {
        return Ok(None);
    };
    Ok(updates::get(c, &last.update_id)
        .await?
        .filter(|u| u.offset == last.offset)
        .map(|u| u.offset_epoch))
}

/// Whether the checkpoint must be checked, and against what: it is what the
/// ingester resumes from (no resume pending in a newer epoch) and its last
/// transaction was checkpointed in its epoch (`last_tx_epoch`, from
/// [`last_transaction_epoch`]).
pub fn to_check(
    cp: Option<&Checkpoint>,
    orders_epoch: i32,
    last_tx_epoch: Option<i32>,
) -> Option<&LastTransaction> {
    let cp = cp?;
    if cp.offset_epoch < orders_epoch || last_tx_epoch != Some(cp.offset_epoch) {
        return None;
    }
    cp.last_transaction.as_ref()
}

/// What the node said about the checkpoint's last transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Same update id at the same offset: resume from the checkpoint.
    Matches,
    /// Pruned on the node: it cannot be checked (the stream from the
    /// checkpoint is refused by the node if the offset is pruned).
    Unverifiable,
}

/// Decides from `on_node` (the offset at which the node has the update id,
/// `None`: not found) and the node's pruning offset; a mismatch is refused
/// (exit 5) with the runbook as the fix.
pub fn check(last: &LastTransaction, on_node: Option<i64>, pruned_up_to: i64) -> Result<Verdict> {
    match on_node {
        Some(offset) if offset == last.offset => Ok(Verdict::Matches),
        Some(offset) => Err(Error::refused(format!(
            "the checkpoint's last transaction {} is at offset {offset} on the node, not at {}: \
             the node's offsets were re-assigned (restored from a backup?)",
            last.update_id, last.offset
        ))
        .with_hint(HINT)),
        None if last.offset <= pruned_up_to => Ok(Verdict::Unverifiable),
        None => Err(Error::refused(format!(
            "the node does not have the checkpoint's last transaction {} (offset {}): it is \
             behind this Integration DB (restored from a backup, still catching up, or another node?)",
            last.update_id, last.offset
        ))
        .with_hint(HINT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use canton_dr_cli::ErrorKind;
    use chrono::{TimeZone as _, Utc};

    fn last(offset: i64) -> LastTransaction {
        LastTransaction {
            offset,
            record_time: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
            synchronizer_id: "global-domain::1220aa".into(),
            update_id: "1220u42".into(),
        }
    }

    fn checkpoint(epoch: i32, last_transaction: Option<LastTransaction>) -> Checkpoint {
        Checkpoint {
            ingester: "tx-ingest".into(),
            offset: 50,
            record_time: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 6).unwrap(),
            synchronizer_id: "global-domain::1220aa".into(),
            update_id: None,
            offset_epoch: epoch,
            last_transaction,
            updated_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 7).unwrap(),
        }
    }

    #[test]
    fn same_offset_matches() {
        assert_eq!(check(&last(42), Some(42), 0).unwrap(), Verdict::Matches);
    }

    #[test]
    fn another_offset_is_refused_naming_both_and_the_runbook() {
        let e = check(&last(42), Some(17), 0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused);
        assert!(e.message().contains("offset 17"), "{}", e.message());
        assert!(e.message().contains("not at 42"), "{}", e.message());
        assert!(e.message().contains("1220u42"), "{}", e.message());
        assert!(e.hint().unwrap().contains("ingest-ctl set-offset"));
    }

    #[test]
    fn missing_on_the_node_is_refused_unless_pruned() {
        let e = check(&last(42), None, 41).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused);
        assert!(e.message().contains("does not have"), "{}", e.message());
        assert_eq!(check(&last(42), None, 42).unwrap(), Verdict::Unverifiable);
        assert_eq!(check(&last(42), None, 100).unwrap(), Verdict::Unverifiable);
    }

    #[test]
    fn only_a_checkpoint_resumed_from_and_naming_a_transaction_is_checked() {
        assert!(to_check(None, 0, None).is_none());
        let cp = checkpoint(1, Some(last(42)));
        assert_eq!(to_check(Some(&cp), 1, Some(1)).map(|l| l.offset), Some(42));
        // A resume pending in a newer epoch rules.
        assert!(to_check(Some(&cp), 2, Some(1)).is_none());
        assert!(to_check(Some(&checkpoint(1, None)), 1, Some(1)).is_none());
    }

    #[test]
    fn a_last_transaction_from_an_older_or_unknown_epoch_is_not_checked() {
        // Offset checkpoints after a resume: the last transaction predates it.
        let cp = checkpoint(1, Some(last(42)));
        assert!(to_check(Some(&cp), 1, Some(0)).is_none());
        assert!(to_check(Some(&cp), 1, None).is_none());
    }
}
