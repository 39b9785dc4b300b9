//! A ledger API in the test process: `StateService.GetLedgerEnd` answers a
//! value the test sets; the other methods are UNIMPLEMENTED.

use canton_proto::ledger::state_service_server::{StateService, StateServiceServer};
use canton_proto::ledger::{
    GetConnectedSynchronizersRequest, GetConnectedSynchronizersResponse,
    GetLatestPrunedOffsetsRequest, GetLatestPrunedOffsetsResponse, GetLedgerEndRequest,
    GetLedgerEndResponse,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use tonic::{Request, Response, Status};

#[derive(Default)]
struct State {
    end: AtomicI64,
    calls: AtomicU64,
}

struct Service(Arc<State>);

#[tonic::async_trait]
impl StateService for Service {
    async fn get_connected_synchronizers(
        &self,
        _: Request<GetConnectedSynchronizersRequest>,
    ) -> Result<Response<GetConnectedSynchronizersResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn get_ledger_end(
        &self,
        _: Request<GetLedgerEndRequest>,
    ) -> Result<Response<GetLedgerEndResponse>, Status> {
        self.0.calls.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(GetLedgerEndResponse {
            offset: self.0.end.load(Ordering::SeqCst),
        }))
    }

    async fn get_latest_pruned_offsets(
        &self,
        _: Request<GetLatestPrunedOffsetsRequest>,
    ) -> Result<Response<GetLatestPrunedOffsetsResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
}

/// The running server; stops with the test process.
pub struct Ledger {
    state: Arc<State>,
    /// `127.0.0.1:PORT`, for `--ledger-api`.
    pub address: String,
}

impl Ledger {
    /// Serves on an ephemeral port, answering `end` to GetLedgerEnd.
    pub fn start(end: i64) -> Ledger {
        let state = Arc::new(State::default());
        state.end.store(end, Ordering::SeqCst);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let service = Service(state.clone());
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    tonic::transport::Server::builder()
                        .add_service(StateServiceServer::new(service))
                        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(
                            listener,
                        ))
                        .await
                        .unwrap();
                });
        });
        Ledger { state, address }
    }

    /// Changes the ledger end.
    pub fn set_end(&self, end: i64) {
        self.state.end.store(end, Ordering::SeqCst);
    }

    /// GetLedgerEnd calls served.
    pub fn calls(&self) -> u64 {
        self.state.calls.load(Ordering::SeqCst)
    }
}
