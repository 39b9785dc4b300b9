//! The simulator's own control service (`canton_dr.sim.v1.SimControl`):
//! traffic, time, faults, the synchronizer's ground truth, status, online
//! backup and pruning. Not part of Canton.

use crate::amount::parse_amount;
use crate::backup::{BackupFacts, write_backup};
use crate::control_proto::sim_control_server::SimControl;
use crate::control_proto::*;
use crate::errors::bare;
use crate::faults::Api;
use crate::ids;
use crate::sim::Sim;
use crate::state::synchronizer::{Instrument as SimInstrument, SequencedUpdate};
use crate::traffic::{self, BulkResult, DepositSpec, TrafficError, WithdrawOutcome, WithdrawSpec};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::Stream;
use tonic::{Code, Request, Response, Status};

fn ts(us: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: us.div_euclid(1_000_000),
        nanos: (us.rem_euclid(1_000_000) * 1000) as i32,
    }
}

fn us_of(t: &prost_types::Timestamp) -> i64 {
    t.seconds * 1_000_000 + (t.nanos / 1000) as i64
}

fn dur(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

fn std_dur(d: &prost_types::Duration) -> Result<Duration, Status> {
    if d.seconds < 0 || d.nanos < 0 {
        return Err(bare(
            Code::InvalidArgument,
            "durations must not be negative",
        ));
    }
    Ok(Duration::new(d.seconds as u64, d.nanos as u32))
}

fn traffic_status(e: TrafficError) -> Status {
    match e {
        TrafficError::Invalid(m) => bare(Code::InvalidArgument, &m),
        TrafficError::InsufficientFunds(m) => bare(Code::FailedPrecondition, &m),
        TrafficError::Io(m) => bare(Code::Internal, &m),
    }
}

/// The control service.
#[derive(Debug, Clone)]
pub struct Control {
    sim: Arc<Sim>,
}

impl Control {
    /// Serves `sim`.
    pub fn new(sim: Arc<Sim>) -> Self {
        Control { sim }
    }

    fn info(&self, u: &SequencedUpdate) -> UpdateInfo {
        let offset = self
            .sim
            .with_state(|st| st.part.offset_of(u.seq as usize))
            .unwrap_or(0);
        UpdateInfo {
            update_id: u.update_id.clone(),
            record_time: Some(ts(u.record_time_us)),
            offset,
        }
    }

    fn instrument(&self, i: Option<Instrument>) -> SimInstrument {
        match i {
            Some(i) if !i.id.is_empty() => SimInstrument {
                admin: if i.admin.is_empty() {
                    self.sim.info.dso_party.clone()
                } else {
                    i.admin
                },
                id: i.id,
            },
            _ => SimInstrument {
                admin: self.sim.info.dso_party.clone(),
                id: "Amulet".into(),
            },
        }
    }
}

type EntryStream = Pin<Box<dyn Stream<Item = Result<UpdateIdEntry, Status>> + Send>>;

#[tonic::async_trait]
impl SimControl for Control {
    async fn deposit(
        &self,
        request: Request<DepositRequest>,
    ) -> Result<Response<DepositResponse>, Status> {
        let r = request.into_inner();
        let amount = parse_amount(&r.amount).map_err(|m| bare(Code::InvalidArgument, &m))?;
        if r.same_record_time && !self.sim.config.record_time_ties {
            return Err(bare(
                Code::FailedPrecondition,
                "same_record_time needs a simulator started with --record-time-ties",
            ));
        }
        let spec = DepositSpec {
            account: r.account,
            amount,
            instrument: self.instrument(r.instrument),
            customer: if r.customer.is_empty() {
                ids::remote_party("customer")
            } else {
                r.customer
            },
            same_record_time: r.same_record_time,
        };
        let u = self
            .sim
            .with_state(|st| traffic::deposit(st, spec))
            .map_err(traffic_status)?;
        let holding = match u.body() {
            crate::state::synchronizer::UpdateBody::Deposit { holding, .. } => holding.cid.clone(),
            _ => String::new(),
        };
        Ok(Response::new(DepositResponse {
            update: Some(self.info(&u)),
            holding_contract_id: holding,
        }))
    }

    async fn withdraw(
        &self,
        request: Request<WithdrawRequest>,
    ) -> Result<Response<WithdrawResponse>, Status> {
        let r = request.into_inner();
        let amount = parse_amount(&r.amount).map_err(|m| bare(Code::InvalidArgument, &m))?;
        let trec = r
            .trec_tgt
            .as_ref()
            .ok_or_else(|| bare(Code::InvalidArgument, "trec_tgt is required"))?;
        let spec = WithdrawSpec {
            withdrawal_id: r.withdrawal_id,
            amount,
            receiver: r.receiver,
            instrument: self.instrument(r.instrument),
            trec_tgt_us: us_of(trec),
        };
        let out = self
            .sim
            .with_state(|st| traffic::withdraw(st, spec))
            .map_err(traffic_status)?;
        Ok(Response::new(match out {
            WithdrawOutcome::Committed(u) => WithdrawResponse {
                outcome: "committed".into(),
                attempted_record_time: Some(ts(u.record_time_us)),
                update: Some(self.info(&u)),
            },
            WithdrawOutcome::Expired {
                attempted_record_time_us,
            } => WithdrawResponse {
                outcome: "expired".into(),
                update: None,
                attempted_record_time: Some(ts(attempted_record_time_us)),
            },
        }))
    }

    async fn traffic(
        &self,
        request: Request<TrafficRequest>,
    ) -> Result<Response<TrafficResponse>, Status> {
        let r = request.into_inner();
        let sim = self.sim.clone();
        let ties = sim.config.record_time_ties;
        let result = tokio::task::spawn_blocking(move || {
            let mut progress = BulkResult::default();
            loop {
                // Chunks keep the lock short so streams and lookups go on.
                let done = sim.with_state(|st| {
                    traffic::bulk(
                        st,
                        r.deposits,
                        r.withdrawals,
                        r.noise,
                        ties,
                        &mut progress,
                        2_000,
                    )
                })?;
                if done {
                    return Ok::<_, TrafficError>(progress);
                }
            }
        })
        .await
        .map_err(|e| bare(Code::Internal, &e.to_string()))?
        .map_err(traffic_status)?;
        Ok(Response::new(TrafficResponse {
            deposits: result.deposits,
            withdrawals: result.withdrawals,
            noise: result.noise,
            first: result.first.as_deref().map(|u| self.info(u)),
            last: result.last.as_deref().map(|u| self.info(u)),
        }))
    }

    async fn advance_time(
        &self,
        request: Request<AdvanceTimeRequest>,
    ) -> Result<Response<AdvanceTimeResponse>, Status> {
        let by = request
            .into_inner()
            .by
            .ok_or_else(|| bare(Code::InvalidArgument, "by is required"))?;
        let by = std_dur(&by)?;
        let now = self.sim.with_state(|st| {
            let now = st
                .clock
                .advance(by.as_micros().min(i64::MAX as u128) as i64)
                .map_err(|m| bare(Code::FailedPrecondition, m))?;
            st.save_clock()
                .map_err(|e| bare(Code::Internal, &e.to_string()))?;
            Ok::<_, Status>(now)
        })?;
        Ok(Response::new(AdvanceTimeResponse { now: Some(ts(now)) }))
    }

    async fn set_fault(
        &self,
        request: Request<SetFaultRequest>,
    ) -> Result<Response<FaultsResponse>, Status> {
        use set_fault_request::Fault;
        match request.into_inner().fault {
            Some(Fault::Unavailable(u)) => {
                let api = match u.api.as_str() {
                    "" => None,
                    "admin" => Some(Api::Admin),
                    "ledger" => Some(Api::Ledger),
                    other => {
                        return Err(bare(
                            Code::InvalidArgument,
                            &format!("api must be admin, ledger or empty, not {other}"),
                        ));
                    }
                };
                self.sim.faults.arm_unavailable(u.calls, api);
            }
            Some(Fault::Latency(d)) => self.sim.faults.set_latency(std_dur(&d)?),
            Some(Fault::CutStream(c)) => self.sim.faults.arm_cut(c.after, c.streams),
            Some(Fault::Lag(d)) => {
                let d = std_dur(&d)?;
                self.sim.with_state(|st| st.set_lag(d));
            }
            None => return Err(bare(Code::InvalidArgument, "no fault given")),
        }
        Ok(Response::new(self.faults()))
    }

    async fn clear_faults(
        &self,
        _request: Request<ClearFaultsRequest>,
    ) -> Result<Response<FaultsResponse>, Status> {
        self.sim.faults.clear();
        let lag = self.sim.config.clean_head_lag;
        self.sim.with_state(|st| st.set_lag(lag));
        Ok(Response::new(self.faults()))
    }

    type ListUpdateIdsStream = EntryStream;

    async fn list_update_ids(
        &self,
        request: Request<ListUpdateIdsRequest>,
    ) -> Result<Response<Self::ListUpdateIdsStream>, Status> {
        let party = request.into_inner().party;
        let treasury = self.sim.info.treasury_party.clone();
        let sync_id = self.sim.info.synchronizer_id.clone();
        let entries: Vec<Result<UpdateIdEntry, Status>> = self.sim.with_state(|st| {
            st.sync
                .updates()
                .iter()
                .filter(|u| {
                    party.is_empty() || crate::events::informees(u, &treasury).contains(&party)
                })
                .map(|u| {
                    Ok(UpdateIdEntry {
                        update_id: u.update_id.clone(),
                        record_time: Some(ts(u.record_time_us)),
                        synchronizer_id: sync_id.clone(),
                        kind: u.body().kind().to_string(),
                        offset: st.part.offset_of(u.seq as usize).unwrap_or(0),
                        reference: u.body().reference().to_string(),
                    })
                })
                .collect()
        });
        Ok(Response::new(Box::pin(tokio_stream::iter(entries))))
    }

    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let sim = &self.sim;
        let r = sim.with_state(|st| {
            let pos = st.position();
            StatusResponse {
                synchronizer_id: sim.info.synchronizer_id.clone(),
                treasury_party: sim.info.treasury_party.clone(),
                ledger_end: pos.ledger_end,
                clean_record_time: pos.clean_record_time_us.map(ts),
                synchronizer_time: Some(ts(pos.synchronizer_time_us)),
                incarnation: sim.info.incarnation,
                synchronizer_updates: st.sync.len() as u64,
                processed_updates: pos.processed as u64,
                pruned_up_to: pos.pruned_up_to,
                dars: st.part.dars.len() as u64,
                semantics: sim.config.semantics.as_str().to_string(),
                catching_up: st.catching_up(),
            }
        });
        Ok(Response::new(r))
    }

    async fn backup(
        &self,
        request: Request<BackupRequest>,
    ) -> Result<Response<BackupResponse>, Status> {
        let to = PathBuf::from(request.into_inner().to);
        if to.as_os_str().is_empty() {
            return Err(bare(Code::InvalidArgument, "to is required"));
        }
        let sim = self.sim.clone();
        let manifest = tokio::task::spawn_blocking(move || {
            sim.with_state(|st| {
                st.flush_all()
                    .map_err(|e| canton_dr_cli::Error::usage(e.to_string()))?;
                let pos = st.position();
                let facts = BackupFacts {
                    synchronizer_id: st.sync.meta.synchronizer_id.clone(),
                    ledger_end: pos.ledger_end,
                    processed_updates: pos.processed as u64,
                    last_record_time_us: pos
                        .processed
                        .checked_sub(1)
                        .and_then(|s| st.sync.get(s))
                        .map(|u| u.record_time_us),
                    dars: st.part.dars.len() as u64,
                };
                write_backup(st.part.dir(), &to, facts).map(|m| (m, to))
            })
        })
        .await
        .map_err(|e| bare(Code::Internal, &e.to_string()))?;
        let (m, to) = manifest.map_err(|e| {
            let code = match e.kind() {
                canton_dr_cli::ErrorKind::Refused => Code::FailedPrecondition,
                _ => Code::Internal,
            };
            bare(code, e.message())
        })?;
        Ok(Response::new(BackupResponse {
            dir: to.display().to_string(),
            ledger_end: m.ledger_end,
            processed_updates: m.processed_updates,
            dars: m.dars,
            taken_at: chrono::DateTime::parse_from_rfc3339(&m.taken_at)
                .ok()
                .map(|t| ts(t.timestamp_micros())),
        }))
    }

    async fn prune(
        &self,
        request: Request<PruneRequest>,
    ) -> Result<Response<PruneResponse>, Status> {
        let up_to = request.into_inner().up_to_inclusive;
        let pruned = self.sim.with_state(|st| {
            if up_to <= 0 || up_to > st.part.ledger_end() {
                return Err(bare(
                    Code::InvalidArgument,
                    &format!(
                        "prune offset {up_to} must be positive and at most the ledger end {}",
                        st.part.ledger_end()
                    ),
                ));
            }
            if up_to > st.part.meta.pruned_up_to {
                st.part.meta.pruned_up_to = up_to;
                st.part
                    .save_meta()
                    .map_err(|e| bare(Code::Internal, &e.to_string()))?;
            }
            Ok(st.part.meta.pruned_up_to)
        })?;
        Ok(Response::new(PruneResponse {
            pruned_up_to: pruned,
        }))
    }
}

impl Control {
    fn faults(&self) -> FaultsResponse {
        let f = self.sim.faults.snapshot();
        let lag = self.sim.with_state(|st| st.lag_us());
        FaultsResponse {
            unavailable_admin_calls: f.unavailable_admin,
            unavailable_ledger_calls: f.unavailable_ledger,
            latency: Some(dur(f.latency)),
            cut_stream_after: f.cut_after,
            cut_streams: f.cut_streams,
            lag: Some(dur(Duration::from_micros(lag.max(0) as u64))),
        }
    }
}
