//! `canton-sim`: a Canton participant simulator that speaks the real admin
//! and ledger gRPC APIs (`reference/canton-wire.md`) and forgets like a
//! restored node.
//!
//! It keeps the synchronizer's history ([`state::synchronizer`]) apart from
//! the participant's local state ([`state::participant`]); [`backup`] copies
//! the latter, and a restored participant re-processes the history and
//! assigns new offsets. [`server`] serves the admin API, the ledger API and
//! the simulator's own control API ([`control`], package `canton_dr.sim.v1`).

pub mod admin;
pub mod amount;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod clock;
pub mod control;
pub mod errors;
pub mod events;
pub mod faults;
pub mod ids;
pub mod ledger;
pub mod persistence;
pub mod server;
pub mod sim;
pub mod state;
pub mod traffic;

/// Generated code of the control service (`canton_dr.sim.v1`).
#[allow(clippy::all, missing_docs)]
pub mod control_proto {
    tonic::include_proto!("canton_dr.sim.v1");

    /// Encoded descriptor set of the control proto (for reflection).
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/sim_control_descriptor.bin"));
}
