//! Ledger API `StateService`: GetLedgerEnd, GetLatestPrunedOffsets and
//! GetConnectedSynchronizers.

use crate::sim::Sim;
use canton_proto::ledger::get_connected_synchronizers_response::ConnectedSynchronizer;
use canton_proto::ledger::state_service_server::StateService;
use canton_proto::ledger::*;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The ledger `StateService`.
#[derive(Debug, Clone)]
pub struct State {
    sim: Arc<Sim>,
}

impl State {
    /// Serves `sim`.
    pub fn new(sim: Arc<Sim>) -> Self {
        State { sim }
    }
}

#[tonic::async_trait]
impl StateService for State {
    async fn get_connected_synchronizers(
        &self,
        request: Request<GetConnectedSynchronizersRequest>,
    ) -> Result<Response<GetConnectedSynchronizersResponse>, Status> {
        let r = request.into_inner();
        let info = &self.sim.info;
        let visible = r.party.is_empty() || info.hosted_parties.contains(&r.party);
        let connected_synchronizers = if visible {
            info.connected_synchronizers
                .iter()
                .enumerate()
                .map(|(i, id)| ConnectedSynchronizer {
                    synchronizer_alias: if i == 0 {
                        "global".to_string()
                    } else {
                        format!("extra-{i}")
                    },
                    synchronizer_id: id.clone(),
                    permission: ParticipantPermission::Submission as i32,
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(Response::new(GetConnectedSynchronizersResponse {
            connected_synchronizers,
        }))
    }

    async fn get_ledger_end(
        &self,
        _request: Request<GetLedgerEndRequest>,
    ) -> Result<Response<GetLedgerEndResponse>, Status> {
        let offset = self.sim.position().ledger_end;
        Ok(Response::new(GetLedgerEndResponse { offset }))
    }

    async fn get_latest_pruned_offsets(
        &self,
        _request: Request<GetLatestPrunedOffsetsRequest>,
    ) -> Result<Response<GetLatestPrunedOffsetsResponse>, Status> {
        let pruned = self.sim.position().pruned_up_to;
        Ok(Response::new(GetLatestPrunedOffsetsResponse {
            participant_pruned_up_to_inclusive: pruned,
            all_divulged_contracts_pruned_up_to_inclusive: pruned,
        }))
    }
}
