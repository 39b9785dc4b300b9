//! Test harness: runs the real `canton-sim` binary on ephemeral ports and
//! talks to it only over gRPC (generated clients) and its `ctl` CLI.
#![allow(dead_code)]

use canton_dr_testkit::SimProcess;
use canton_proto::admin::package_service_client::PackageServiceClient as AdminPackages;
use canton_proto::admin::party_management_service_client::PartyManagementServiceClient;
use canton_proto::ledger::state_service_client::StateServiceClient;
use canton_proto::ledger::update_service_client::UpdateServiceClient;
use canton_proto::ledger::{self as lapi};
use std::collections::HashMap;
use std::ops::Deref;
use std::path::Path;
use std::time::Duration;
use tonic::transport::Channel;

pub const BIN: &str = env!("CARGO_BIN_EXE_canton-sim");

/// A running simulator process (testkit's [`SimProcess`]) with gRPC helpers.
pub struct SimProc(SimProcess);

impl Deref for SimProc {
    type Target = SimProcess;
    fn deref(&self) -> &SimProcess {
        &self.0
    }
}

impl SimProc {
    /// Starts `canton-sim serve --state-dir dir <args>` and waits for the ready line.
    pub fn start(dir: &Path, args: &[&str]) -> SimProc {
        SimProc(SimProcess::start_in(dir, args))
    }

    /// SIGTERM and wait; returns the exit code.
    pub fn stop(mut self) -> i32 {
        self.0.stop().and_then(|status| status.code()).unwrap_or(-1)
    }

    pub async fn admin_channel(&self) -> Channel {
        channel(self.admin_api()).await
    }

    pub async fn ledger_channel(&self) -> Channel {
        channel(self.ledger_api()).await
    }

    pub async fn lookup(&self, ts: &str, force: bool) -> Result<i64, tonic::Status> {
        let mut c = PartyManagementServiceClient::new(self.admin_channel().await);
        c.get_highest_offset_by_timestamp(canton_proto::admin::GetHighestOffsetByTimestampRequest {
            synchronizer_id: self.synchronizer_id().to_string(),
            timestamp: Some(pb_ts(ts)),
            force,
        })
        .await
        .map(|r| r.into_inner().ledger_offset)
    }

    pub async fn ledger_end(&self) -> i64 {
        StateServiceClient::new(self.ledger_channel().await)
            .get_ledger_end(lapi::GetLedgerEndRequest {})
            .await
            .unwrap()
            .into_inner()
            .offset
    }

    /// Transactions visible to `party` in (begin, end] as (update id, offset, record time µs).
    pub async fn treasury_updates(&self, begin: i64, end: i64) -> Vec<(String, i64, i64)> {
        let mut c = UpdateServiceClient::new(self.ledger_channel().await);
        let mut s = c
            .get_updates(lapi::GetUpdatesRequest {
                begin_exclusive: begin,
                end_inclusive: Some(end),
                update_format: Some(party_format(self.treasury_party(), false)),
            })
            .await
            .unwrap()
            .into_inner();
        let mut out = Vec::new();
        while let Some(m) = s.message().await.unwrap() {
            if let Some(lapi::get_updates_response::Update::Transaction(t)) = m.update {
                let rt = t.record_time.unwrap();
                out.push((
                    t.update_id,
                    t.offset,
                    rt.seconds * 1_000_000 + (rt.nanos / 1000) as i64,
                ));
            }
        }
        out
    }

    pub async fn list_dar_names(&self) -> Vec<String> {
        AdminPackages::new(self.admin_channel().await)
            .list_dars(canton_proto::admin::ListDarsRequest {
                limit: 0,
                filter_name: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .dars
            .into_iter()
            .map(|d| d.name)
            .collect()
    }

    /// Polls `status` until `catchingUp` is false.
    pub fn wait_caught_up(&self) -> serde_json::Value {
        for _ in 0..400 {
            let s = self.ctl(&["status"]);
            if s["catchingUp"] == false {
                return s;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("the simulator never caught up");
    }
}

pub async fn channel(addr: &str) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"))
}

pub fn pb_ts(s: &str) -> prost_types::Timestamp {
    let t = chrono::DateTime::parse_from_rfc3339(s).unwrap();
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

pub fn micros(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .timestamp_micros()
}

pub fn rfc3339(us: i64) -> String {
    canton_dr_cli::time::format_record_time(chrono::DateTime::from_timestamp_micros(us).unwrap())
}

/// The ingestion filter of `splice-exchange.md` §1 for `party`.
pub fn party_format(party: &str, verbose: bool) -> lapi::UpdateFormat {
    use lapi::cumulative_filter::IdentifierFilter;
    let iface = |pkg: &str, module: &str, entity: &str| lapi::CumulativeFilter {
        identifier_filter: Some(IdentifierFilter::InterfaceFilter(lapi::InterfaceFilter {
            interface_id: Some(lapi::Identifier {
                package_id: pkg.into(),
                module_name: module.into(),
                entity_name: entity.into(),
            }),
            include_interface_view: true,
            include_created_event_blob: false,
        })),
    };
    let filters = lapi::Filters {
        cumulative: vec![
            lapi::CumulativeFilter {
                identifier_filter: Some(IdentifierFilter::WildcardFilter(lapi::WildcardFilter {
                    include_created_event_blob: false,
                })),
            },
            iface(
                "#splice-api-token-transfer-instruction-v1",
                "Splice.Api.Token.TransferInstructionV1",
                "TransferFactory",
            ),
            iface(
                "#splice-api-token-holding-v1",
                "Splice.Api.Token.HoldingV1",
                "Holding",
            ),
        ],
    };
    lapi::UpdateFormat {
        include_transactions: Some(lapi::TransactionFormat {
            event_format: Some(lapi::EventFormat {
                filters_by_party: HashMap::from([(party.to_string(), filters)]),
                filters_for_any_party: None,
                verbose,
            }),
            transaction_shape: lapi::TransactionShape::LedgerEffects as i32,
        }),
        include_reassignments: None,
        include_topology_events: None,
    }
}

/// Canton error details of a status.
pub fn details(s: &tonic::Status) -> canton_client::status::StatusDetails {
    canton_client::status::decode_details(s.details())
        .expect("decodable details")
        .expect("details present")
}

/// Asserts code + Canton error id.
pub fn assert_canton(s: &tonic::Status, code: tonic::Code, id: &str) {
    assert_eq!(s.code(), code, "{s:?}");
    assert!(
        s.message().starts_with(&format!("{id}(")),
        "{}",
        s.message()
    );
    let d = details(s);
    assert_eq!(d.error_info.as_ref().map(|e| e.reason.as_str()), Some(id));
}
