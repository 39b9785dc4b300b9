//! What the stream hands the writer: a parsed transaction, or a position-only
//! update (an offset checkpoint, or an update kind the ingester does not
//! book), decoded from `GetUpdatesResponse`.

use crate::parse::{ParseError, ParsedTransaction, parse_transaction};
use canton_dr_cli::time::from_seconds_nanos;
use canton_dr_cli::{Error, Result};
use canton_proto::ledger::{GetUpdatesResponse, get_updates_response::Update};
use chrono::{DateTime, Utc};
use integration_db::checkpoint::Position;
use integration_db::updates::UpdateRef;

/// A transaction visible to the treasury, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxItem {
    /// Update id, offset, record time, synchronizer.
    pub update: UpdateRef,
    /// Its effects on the treasury.
    pub parsed: ParsedTransaction,
}

/// An update that only moves the position: an offset checkpoint (record
/// times per synchronizer), or a reassignment / topology transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionItem {
    /// Offset.
    pub offset: i64,
    /// Latest record time per synchronizer (may be empty).
    pub synchronizer_times: Vec<(String, DateTime<Utc>)>,
}

impl PositionItem {
    /// The position this moves `current` to: the record time of the
    /// synchronizer `current` is on if listed (record times are only ordered
    /// per synchronizer), else the latest one listed, else `current`'s.
    /// `None` when nothing is known about any synchronizer yet.
    pub fn resolve(&self, current: Option<&Position>) -> Option<Position> {
        let on = |sync: &str| {
            self.synchronizer_times
                .iter()
                .find(|(s, _)| s == sync)
                .map(|(s, t)| (s.clone(), *t))
        };
        let latest = || {
            self.synchronizer_times
                .iter()
                .max_by_key(|(_, t)| *t)
                .map(|(s, t)| (s.clone(), *t))
        };
        let (synchronizer_id, record_time) = match current {
            Some(cur) => on(&cur.synchronizer_id)
                .or_else(latest)
                .unwrap_or_else(|| (cur.synchronizer_id.clone(), cur.record_time)),
            None => latest()?,
        };
        Some(Position {
            offset: self.offset,
            record_time,
            synchronizer_id,
        })
    }
}

/// One streamed update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A transaction.
    Transaction(TxItem),
    /// A position-only update.
    Position(PositionItem),
}

impl Item {
    /// The update's offset.
    pub fn offset(&self) -> i64 {
        match self {
            Item::Transaction(t) => t.update.offset,
            Item::Position(p) => p.offset,
        }
    }
}

fn timestamp(t: Option<&prost_types::Timestamp>, what: &str, offset: i64) -> Result<DateTime<Utc>> {
    let t = t.ok_or_else(|| {
        Error::usage(format!(
            "the node sent a {what} at offset {offset} without a record time"
        ))
    })?;
    from_seconds_nanos(t.seconds, t.nanos)
        .map_err(|e| e.context(format!("{what} at offset {offset}")))
}

/// Decodes and parses one `GetUpdatesResponse` for `treasury`. `Ok(None)` for
/// an empty response. A transaction the parser cannot read is an error naming
/// its update id and offset: booking part of it could lose a withdrawal.
pub fn decode(resp: GetUpdatesResponse, treasury: &str) -> Result<Option<Item>> {
    let Some(update) = resp.update else {
        return Ok(None);
    };
    Ok(Some(match update {
        Update::Transaction(tx) => {
            let record_time = timestamp(tx.record_time.as_ref(), "transaction", tx.offset)?;
            let parsed = parse_transaction(&tx, treasury).map_err(|e: ParseError| {
                Error::usage(format!(
                    "cannot read transaction {} at offset {}: {e}",
                    tx.update_id, tx.offset
                ))
                .with_hint(
                    "the transaction does not have the token-standard shape this ingester knows; \
                     nothing of it was booked: fix the parser or the data, then restart",
                )
            })?;
            Item::Transaction(TxItem {
                update: UpdateRef {
                    update_id: tx.update_id,
                    offset: tx.offset,
                    record_time,
                    synchronizer_id: tx.synchronizer_id,
                },
                parsed,
            })
        }
        Update::OffsetCheckpoint(cp) => {
            let mut times = Vec::with_capacity(cp.synchronizer_times.len());
            for st in cp.synchronizer_times {
                let t = timestamp(st.record_time.as_ref(), "offset checkpoint", cp.offset)?;
                times.push((st.synchronizer_id, t));
            }
            Item::Position(PositionItem {
                offset: cp.offset,
                synchronizer_times: times,
            })
        }
        Update::Reassignment(r) => {
            let t = timestamp(r.record_time.as_ref(), "reassignment", r.offset)?;
            Item::Position(PositionItem {
                offset: r.offset,
                synchronizer_times: vec![(r.synchronizer_id, t)],
            })
        }
        Update::TopologyTransaction(t) => {
            let rt = timestamp(t.record_time.as_ref(), "topology transaction", t.offset)?;
            Item::Position(PositionItem {
                offset: t.offset,
                synchronizer_times: vec![(t.synchronizer_id, rt)],
            })
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use canton_proto::ledger::{OffsetCheckpoint, SynchronizerTime, Transaction};

    fn t(s: &str) -> DateTime<Utc> {
        canton_dr_cli::time::parse_record_time(s, "t").unwrap()
    }

    fn ts(s: &str) -> prost_types::Timestamp {
        let d = t(s);
        prost_types::Timestamp {
            seconds: d.timestamp(),
            nanos: d.timestamp_subsec_nanos() as i32,
        }
    }

    #[test]
    fn checkpoint_keeps_to_the_current_synchronizer() {
        let item = PositionItem {
            offset: 9,
            synchronizer_times: vec![
                ("b::1".into(), t("2025-01-01T00:00:09Z")),
                ("a::1".into(), t("2025-01-01T00:00:05Z")),
            ],
        };
        let cur = Position {
            offset: 3,
            record_time: t("2025-01-01T00:00:01Z"),
            synchronizer_id: "a::1".into(),
        };
        let p = item.resolve(Some(&cur)).unwrap();
        assert_eq!(
            (p.offset, p.synchronizer_id.as_str(), p.record_time),
            (9, "a::1", t("2025-01-01T00:00:05Z"))
        );
        // Nothing known yet: the latest record time listed.
        let p = item.resolve(None).unwrap();
        assert_eq!(p.synchronizer_id, "b::1");
        // No times listed: only the offset moves.
        let empty = PositionItem {
            offset: 10,
            synchronizer_times: vec![],
        };
        let p = empty.resolve(Some(&cur)).unwrap();
        assert_eq!((p.offset, p.record_time), (10, cur.record_time));
        assert_eq!(empty.resolve(None), None);
    }

    #[test]
    fn decodes_transactions_and_checkpoints() {
        let resp = GetUpdatesResponse {
            update: Some(Update::Transaction(Transaction {
                update_id: "u1".into(),
                offset: 4,
                synchronizer_id: "s::1".into(),
                record_time: Some(ts("2025-03-04T05:06:07.123456Z")),
                ..Default::default()
            })),
        };
        let Some(Item::Transaction(tx)) = decode(resp, "tr::1").unwrap() else {
            panic!("not a transaction")
        };
        assert_eq!(tx.update.update_id, "u1");
        assert_eq!(tx.update.record_time, t("2025-03-04T05:06:07.123456Z"));
        assert!(tx.parsed.transfers.is_empty());

        let resp = GetUpdatesResponse {
            update: Some(Update::OffsetCheckpoint(OffsetCheckpoint {
                offset: 8,
                synchronizer_times: vec![SynchronizerTime {
                    synchronizer_id: "s::1".into(),
                    record_time: Some(ts("2025-03-04T05:06:08Z")),
                }],
            })),
        };
        let item = decode(resp, "tr::1").unwrap().unwrap();
        assert_eq!(item.offset(), 8);

        let resp = GetUpdatesResponse {
            update: Some(Update::Transaction(Transaction {
                update_id: "u2".into(),
                offset: 5,
                ..Default::default()
            })),
        };
        let e = decode(resp, "tr::1").unwrap_err();
        assert_eq!(
            e.message(),
            "the node sent a transaction at offset 5 without a record time"
        );
        assert_eq!(
            decode(GetUpdatesResponse { update: None }, "x").unwrap(),
            None
        );
    }
}
