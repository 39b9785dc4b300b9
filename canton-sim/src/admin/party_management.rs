//! Admin API `PartyManagementService.GetHighestOffsetByTimestamp` with Canton
//! 3.3 and 3.4.9+ semantics (`reference/canton-wire.md` §1): steps 1–7, the
//! exact-match rule of 3.4.9+ unless `force`, error ids, categories, codes.

use crate::errors::{canton, instant_string};
use crate::ids::parse_logical_synchronizer_id;
use crate::sim::{Semantics, Sim, SimState};
use canton_client::status::category;
use canton_proto::admin::party_management_service_server::PartyManagementService;
use canton_proto::admin::{
    GetHighestOffsetByTimestampRequest, GetHighestOffsetByTimestampResponse,
};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Error id for bad arguments.
pub const INVALID_ARGUMENT: &str = "INVALID_ARGUMENT_PARTY_MANAGEMENT_ERROR";
/// Error id for "no offset (yet)" (retryable).
pub const INVALID_TIMESTAMP: &str = "INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR";
/// Error id for the 3.4.9+ exact-match refusal.
pub const INVALID_STATE: &str = "INVALID_STATE_PARTY_MANAGEMENT_ERROR";

/// Smallest/largest Daml timestamps, µs.
const DAML_MIN_US: i64 = -62_135_596_800_000_000;
const DAML_MAX_US: i64 = 253_402_300_799_999_999;

fn invalid_argument(reason: String) -> Status {
    canton(
        INVALID_ARGUMENT,
        category::INVALID_INDEPENDENT_OF_SYSTEM_STATE,
        reason.clone(),
    )
    .metadata("reason", reason)
    .into_status()
}

fn invalid_timestamp(sync: &str, ts_us: i64, force: bool, reason: String) -> Status {
    let ts = instant_string(ts_us);
    canton(
        INVALID_TIMESTAMP,
        category::SEEK_AFTER_END,
        format!(
            "No ledger offset found for the requested timestamp {ts} on synchronizer {sync} (using force flag = {force}): {reason}"
        ),
    )
    .metadata("synchronizerId", sync)
    .metadata("requestedTimestamp", ts)
    .metadata("force", force.to_string())
    .metadata("reason", reason)
    .into_status()
}

/// Converts a protobuf timestamp to µs, refusing values outside Daml's range.
pub fn timestamp_us(ts: &prost_types::Timestamp) -> Result<i64, String> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(format!("Timestamp nanos {} out of range", ts.nanos));
    }
    let us = (ts.seconds as i128) * 1_000_000 + (ts.nanos / 1000) as i128;
    if us < DAML_MIN_US as i128 || us > DAML_MAX_US as i128 {
        return Err(format!(
            "Timestamp {}s is out of the range 0001-01-01T00:00:00Z..9999-12-31T23:59:59.999999Z",
            ts.seconds
        ));
    }
    Ok(us as i64)
}

/// The lookup itself, on a consistent state.
pub fn highest_offset(
    st: &SimState,
    semantics: Semantics,
    connected: &[String],
    synchronizer_id: &str,
    timestamp: Option<&prost_types::Timestamp>,
    force: bool,
) -> Result<i64, Status> {
    // 1. synchronizer id: logical form, and known.
    parse_logical_synchronizer_id(synchronizer_id).map_err(invalid_argument)?;
    if !connected.iter().any(|c| c == synchronizer_id) {
        return Err(invalid_argument(format!(
            "Synchronizer id {synchronizer_id} is unknown"
        )));
    }
    // 2. timestamp present and in range.
    let ts =
        timestamp.ok_or_else(|| invalid_argument("Field `timestamp` is not set".to_string()))?;
    let ts_us = timestamp_us(ts).map_err(invalid_argument)?;
    let err = |reason: String| invalid_timestamp(synchronizer_id, ts_us, force, reason);
    let pos = st.position();
    // 3. clean synchronizer index.
    let Some(clean) = pos.clean_record_time_us else {
        return Err(err(
            "Cannot use clean synchronizer index because it is empty".to_string(),
        ));
    };
    // 4. ledger end.
    if pos.ledger_end == 0 {
        return Err(err("No ledger end found".to_string()));
    }
    // 5. last offset of this synchronizer with record time <= timestamp.
    let found = if synchronizer_id == st.sync.meta.synchronizer_id {
        let processed = &st.sync.updates()[..pos.processed];
        let n = processed.partition_point(|u| u.record_time_us <= ts_us);
        (n > 0).then(|| {
            (
                st.part.offset_of(n - 1).unwrap_or_default(),
                processed[n - 1].record_time_us,
            )
        })
    } else {
        None
    };
    let Some((found_offset, found_rt)) = found else {
        return Err(err(format!(
            "The participant does not yet have a ledger offset before or at the requested timestamp: {}",
            instant_string(ts_us)
        )));
    };
    // 6. not yet clean.
    if !force && ts_us > clean {
        return Err(err(format!(
            "Not all events have been processed fully and/or published to the Ledger API DB until the requested timestamp: {}",
            instant_string(ts_us)
        )));
    }
    // 7. result.
    let (offset, record_time) = if force && ts_us >= clean {
        (pos.ledger_end, clean)
    } else {
        (found_offset, found_rt)
    };
    if semantics == Semantics::V34 {
        if offset > pos.ledger_end {
            return Err(err(format!(
                "The synchronizer offset {offset} exceeds the ledger end offset {}",
                pos.ledger_end
            )));
        }
        if !force && record_time != ts_us {
            let requested = instant_string(ts_us);
            let recorded = instant_string(record_time);
            return Err(canton(
                INVALID_STATE,
                category::INVALID_GIVEN_CURRENT_SYSTEM_STATE_OTHER,
                format!(
                    "Timestamp mismatch: requested={requested} != recordTime={recorded}. If an event with a record time is known to exist for the requested timestamp (e.g., a topology transaction), please retry the request. If no event exists with a record time matching exactly the requested timestamp and you intentionally want the highest prior offset, set the 'force' flag to true. (Context: offset={offset} -> synchronizer offset={offset})"
                ),
            )
            .metadata("offset", offset.to_string())
            .metadata("synchronizerOffset", offset.to_string())
            .metadata("timestamp", requested)
            .metadata("recordTime", recorded)
            .into_status());
        }
    }
    Ok(offset)
}

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct PartyManagement {
    sim: Arc<Sim>,
}

impl PartyManagement {
    /// Serves `sim`.
    pub fn new(sim: Arc<Sim>) -> Self {
        PartyManagement { sim }
    }
}

#[tonic::async_trait]
impl PartyManagementService for PartyManagement {
    async fn get_highest_offset_by_timestamp(
        &self,
        request: Request<GetHighestOffsetByTimestampRequest>,
    ) -> Result<Response<GetHighestOffsetByTimestampResponse>, Status> {
        let r = request.into_inner();
        let sim = &self.sim;
        let offset = sim.with_state(|st| {
            highest_offset(
                st,
                sim.config.semantics,
                &sim.info.connected_synchronizers,
                &r.synchronizer_id,
                r.timestamp.as_ref(),
                r.force,
            )
        })?;
        Ok(Response::new(GetHighestOffsetByTimestampResponse {
            ledger_offset: offset,
        }))
    }
}
