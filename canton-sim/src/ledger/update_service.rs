//! Ledger API `UpdateService`: GetUpdates (bounded or live tail with offset
//! checkpoints at the configured interval and in quiet periods, party
//! filters, pruning and ledger-end checks, cut-stream faults),
//! GetUpdateByOffset and GetUpdateById.
//!
//! GetUpdates streams pre-encoded responses, cached per update and request
//! format (see [`crate::ledger::encoded`]).

use crate::errors::{canton, invalid_argument, missing_field, not_found};
use crate::events::TxFormat;
use crate::ledger::encoded::EncodedUpdatesResponse;
use crate::ledger::encoded::update_service_server::UpdateService;
use crate::sim::{Position, Sim};
use crate::state::synchronizer::SequencedUpdate;
use canton_client::status::category;
use canton_proto::ledger::{
    GetUpdateByIdRequest, GetUpdateByOffsetRequest, GetUpdateResponse, GetUpdatesRequest,
    GetUpdatesResponse, OffsetCheckpoint, SynchronizerTime, UpdateFormat, get_update_response,
    get_updates_response,
};
use futures::StreamExt as _;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// Updates fetched per lock acquisition.
const BATCH: usize = 512;

/// Responses handed to tonic per channel message: one wake-up of the
/// sending task per chunk rather than per response (a client slower than
/// the simulator otherwise makes both tasks ping-pong on every message).
const CHUNK: usize = 64;
/// Chunks the channel holds.
const CHUNKS_QUEUED: usize = 4;

type Item = Result<EncodedUpdatesResponse, Status>;

/// The validated update format: `None` = transactions not requested.
pub fn validate_format(
    f: Option<&UpdateFormat>,
    hosted: &[String],
) -> Result<Option<TxFormat>, Status> {
    let f = f.ok_or_else(|| missing_field("update_format"))?;
    let Some(tf) = &f.include_transactions else {
        if f.include_reassignments.is_none() && f.include_topology_events.is_none() {
            return Err(invalid_argument(
                "INVALID_ARGUMENT",
                "The submitted request has invalid arguments: update_format must include transactions, reassignments or topology events",
            ));
        }
        return Ok(None);
    };
    let ef = tf
        .event_format
        .as_ref()
        .ok_or_else(|| missing_field("event_format"))?;
    if ef.filters_by_party.is_empty() && ef.filters_for_any_party.is_none() {
        return Err(invalid_argument(
            "INVALID_ARGUMENT",
            "The submitted request has invalid arguments: filtersByParty and filtersForAnyParty cannot be empty simultaneously",
        ));
    }
    TxFormat::new(tf, hosted).map(Some).map_err(|field| {
        crate::errors::invalid_field(
            &field,
            "the transaction shape must be ACS_DELTA or LEDGER_EFFECTS",
        )
    })
}

fn ts(us: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: us.div_euclid(1_000_000),
        nanos: (us.rem_euclid(1_000_000) * 1000) as i32,
    }
}

fn offset_after_ledger_end(which: &str, offset: i64, end: i64) -> Status {
    canton(
        "OFFSET_AFTER_LEDGER_END",
        category::SEEK_AFTER_END,
        format!("{which} offset ({offset}) is after ledger end ({end})"),
    )
    .metadata("offset", offset.to_string())
    .metadata("ledger_end", end.to_string())
    .into_status()
}

/// Checks a GetUpdates range against the participant's ledger.
pub fn check_range(begin: i64, end: Option<i64>, pos: &Position) -> Result<(), Status> {
    if begin < 0 {
        return Err(invalid_argument(
            "NEGATIVE_OFFSET",
            format!(
                "Offset {begin} in begin_exclusive is a negative integer: the offset has to be either a positive integer or zero"
            ),
        ));
    }
    if let Some(e) = end {
        if e <= 0 {
            return Err(invalid_argument(
                "NON_POSITIVE_OFFSET",
                format!(
                    "Offset {e} in end_inclusive is not a positive integer: the offset has to be a positive integer"
                ),
            ));
        }
        if e < begin {
            return Err(invalid_argument(
                "OFFSET_OUT_OF_RANGE",
                format!("Begin offset {begin} is after end offset {e}"),
            ));
        }
    }
    if begin > pos.ledger_end {
        return Err(offset_after_ledger_end("Begin", begin, pos.ledger_end));
    }
    if let Some(e) = end
        && e > pos.ledger_end
    {
        return Err(offset_after_ledger_end("End", e, pos.ledger_end));
    }
    if begin < pos.pruned_up_to {
        return Err(canton(
            "PARTICIPANT_PRUNED_DATA_ACCESSED",
            category::INVALID_GIVEN_CURRENT_SYSTEM_STATE_OTHER,
            format!(
                "Updates request from {begin} to {} precedes pruned offset {}",
                end.map_or_else(|| "the ledger end".to_string(), |e| e.to_string()),
                pos.pruned_up_to
            ),
        )
        .metadata("earliest_offset", pos.pruned_up_to.to_string())
        .into_status());
    }
    Ok(())
}

/// A batch read under the lock: (offset, update) pairs plus the position.
fn read_batch(
    sim: &Sim,
    after: i64,
    limit: Option<i64>,
) -> (Vec<(i64, Arc<SequencedUpdate>)>, Position) {
    sim.with_state(|st| {
        let pos = st.position();
        let limit = limit.unwrap_or(pos.ledger_end);
        let first = st.part.count_at_or_before_offset(after);
        let mut out = Vec::new();
        for seq in first..pos.processed {
            let off = st.part.offset_of(seq).unwrap_or(i64::MAX);
            if off > limit || out.len() >= BATCH {
                break;
            }
            if let Some(u) = st.sync.get(seq) {
                out.push((off, u.clone()));
            }
        }
        (out, pos)
    })
}

fn checkpoint(sim: &Sim, offset: i64, time_us: i64) -> EncodedUpdatesResponse {
    EncodedUpdatesResponse::encode(&GetUpdatesResponse {
        update: Some(get_updates_response::Update::OffsetCheckpoint(
            OffsetCheckpoint {
                offset,
                synchronizer_times: sim
                    .info
                    .connected_synchronizers
                    .iter()
                    .map(|s| SynchronizerTime {
                        synchronizer_id: s.clone(),
                        record_time: Some(ts(time_us)),
                    })
                    .collect(),
            },
        )),
    })
}

/// Streams updates after `begin` (up to `end` or forever) into `tx`.
async fn stream_updates(
    sim: Arc<Sim>,
    format: Option<TxFormat>,
    begin: i64,
    end: Option<i64>,
    cut_after: Option<u32>,
    tx: mpsc::Sender<Vec<Item>>,
) {
    let interval = sim
        .config
        .checkpoint_interval
        .max(Duration::from_millis(10));
    let mut progress = sim.subscribe();
    let mut closing = sim.closing();
    let mut cursor = begin;
    let mut sent: u32 = 0;
    let mut chunk: Vec<Item> = Vec::with_capacity(CHUNK);
    let mut last_checkpoint: Option<(i64, i64)> = None;
    let mut last_checkpoint_at = Instant::now();
    let treasury = sim.info.treasury_party.clone();
    let sync_id = sim.info.synchronizer_id.clone();
    let fingerprint = format.as_ref().map(TxFormat::fingerprint);
    // Sends the chunk so far; returns from the stream when the client is gone.
    macro_rules! flush {
        () => {{
            if !chunk.is_empty()
                && tx
                    .send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)))
                    .await
                    .is_err()
            {
                return;
            }
        }};
    }
    // Ends the stream with UNAVAILABLE after what was sent so far.
    macro_rules! fail {
        () => {{
            chunk.push(Err(crate::errors::unavailable()));
            let _ = tx.send(chunk).await;
            return;
        }};
    }
    macro_rules! send {
        ($msg:expr) => {{
            if cut_after.is_some_and(|k| sent >= k) {
                fail!();
            }
            chunk.push(Ok($msg));
            sent += 1;
            if chunk.len() >= CHUNK {
                flush!();
            }
        }};
    }
    loop {
        let (items, pos) = read_batch(&sim, cursor, end);
        let full = items.len() >= BATCH;
        for (off, u) in items {
            cursor = off;
            if let (Some(f), Some(fp)) = (&format, fingerprint)
                && let Some(r) = sim.stream_cache.get_or_render(&u.encoded, fp, off, || {
                    f.render_encoded(&u, off, &sync_id, &treasury)
                        .map(|b| EncodedUpdatesResponse(b.into()))
                })
            {
                send!(r);
            }
        }
        if full {
            continue;
        }
        if end.is_some() {
            flush!();
            return;
        }
        // Live tail, caught up to the ledger end read with this batch.
        if last_checkpoint_at.elapsed() >= interval {
            last_checkpoint_at = Instant::now();
            if let Some(clean) = pos.clean_record_time_us {
                let cp = (pos.ledger_end.max(cursor), clean);
                if last_checkpoint != Some(cp) && cp.0 > 0 {
                    last_checkpoint = Some(cp);
                    send!(checkpoint(&sim, cp.0, cp.1));
                }
            }
        }
        flush!();
        let wait = interval.saturating_sub(last_checkpoint_at.elapsed());
        tokio::select! {
            changed = progress.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep(wait.max(Duration::from_millis(5))) => {}
            _ = tx.closed() => return,
            _ = closing.wait_for(|v| *v) => {}
        }
        if *closing.borrow() {
            fail!();
        }
    }
}

/// The ledger `UpdateService`.
#[derive(Debug, Clone)]
pub struct Updates {
    sim: Arc<Sim>,
}

impl Updates {
    /// Serves `sim`.
    pub fn new(sim: Arc<Sim>) -> Self {
        Updates { sim }
    }

    fn lookup(
        &self,
        format: Option<&UpdateFormat>,
        find: impl FnOnce(&crate::sim::SimState) -> Option<usize>,
        what: (&str, String),
    ) -> Result<Response<GetUpdateResponse>, Status> {
        let format = validate_format(format, &self.sim.info.hosted_parties)?;
        let found = self.sim.with_state(|st| {
            let pos = st.position();
            let seq = find(st).filter(|s| *s < pos.processed)?;
            let off = st.part.offset_of(seq)?;
            if off <= pos.pruned_up_to {
                return None;
            }
            Some((off, st.sync.get(seq)?.clone()))
        });
        let tx = found.and_then(|(off, u)| {
            format.as_ref().and_then(|f| {
                f.render(
                    &u,
                    off,
                    &self.sim.info.synchronizer_id,
                    &self.sim.info.treasury_party,
                )
            })
        });
        match tx {
            Some(t) => Ok(Response::new(GetUpdateResponse {
                update: Some(get_update_response::Update::Transaction(t)),
            })),
            None => Err(
                not_found("UPDATE_NOT_FOUND", "Update not found, or not visible.")
                    .metadata(what.0, what.1)
                    .into_status(),
            ),
        }
    }
}

type UpdateStream = Pin<Box<dyn Stream<Item = Item> + Send>>;

#[tonic::async_trait]
impl UpdateService for Updates {
    type GetUpdatesStream = UpdateStream;

    async fn get_updates(
        &self,
        request: Request<GetUpdatesRequest>,
    ) -> Result<Response<Self::GetUpdatesStream>, Status> {
        let r = request.into_inner();
        let format = validate_format(r.update_format.as_ref(), &self.sim.info.hosted_parties)?;
        let pos = self.sim.position();
        check_range(r.begin_exclusive, r.end_inclusive, &pos)?;
        let cut = self.sim.faults.take_cut();
        let (tx, rx) = mpsc::channel(CHUNKS_QUEUED);
        tokio::spawn(stream_updates(
            self.sim.clone(),
            format,
            r.begin_exclusive,
            r.end_inclusive,
            cut,
            tx,
        ));
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx).flat_map(futures::stream::iter),
        )))
    }

    async fn get_update_by_offset(
        &self,
        request: Request<GetUpdateByOffsetRequest>,
    ) -> Result<Response<GetUpdateResponse>, Status> {
        let r = request.into_inner();
        if r.offset <= 0 {
            return Err(invalid_argument(
                "NON_POSITIVE_OFFSET",
                format!(
                    "Offset {} in offset is not a positive integer: the offset has to be a positive integer",
                    r.offset
                ),
            ));
        }
        let offset = r.offset;
        self.lookup(
            r.update_format.as_ref(),
            |st| st.part.seq_at_offset(offset),
            ("offset", offset.to_string()),
        )
    }

    async fn get_update_by_id(
        &self,
        request: Request<GetUpdateByIdRequest>,
    ) -> Result<Response<GetUpdateResponse>, Status> {
        let r = request.into_inner();
        if r.update_id.is_empty() {
            return Err(missing_field("update_id"));
        }
        let id = r.update_id.clone();
        self.lookup(
            r.update_format.as_ref(),
            |st| st.sync.position(&id),
            ("update_id", r.update_id.clone()),
        )
    }
}
