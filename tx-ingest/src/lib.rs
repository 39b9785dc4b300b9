//! Reference Tx History Ingestion: streams the treasury party's updates from a
//! Canton participant's ledger API into the Integration DB, exactly once per
//! update id, honouring the control contract (docs/ingestion-contract.md).
//!
//! * [`value`]: reading Daml values (labels or declaration order).
//! * [`parse`]: token-standard transfers and treasury holdings of a transaction.
//! * [`view`]: the Ledger API update messages as tx-ingest decodes them (only
//!   the fields it reads).
//! * [`update`]: a streamed update decoded into what the writer books.
//! * [`apply`]: one PostgreSQL transaction per batch of updates.
//! * [`control`]: the contract's statements (register, read, ack, heartbeat, fence).
//! * [`stream`]: the `GetUpdates` request and the reader task.
//! * [`resume_check`]: the node still numbers the checkpoint as it did.
//! * [`ingest`]: the loop: orders, sessions, batching, reconnects.
//! * [`metrics`]: counters and timings; [`cli`]: flags and the run.

pub mod apply;
pub mod cli;
pub mod control;
pub mod ingest;
pub mod metrics;
pub mod parse;
pub mod resume_check;
pub mod stream;
pub mod update;
pub mod value;

/// What tx-ingest decodes of a `GetUpdatesResponse`
/// (`proto/canton_dr/tx_ingest/view/v1/update_view.proto`): Canton's update
/// messages with only the fields the parser reads, same numbers and types,
/// so prost skips the rest of each ~6 KB verbose update without allocating
/// it. Daml values and identifiers are canton_proto's types.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod view {
    include!(concat!(env!("OUT_DIR"), "/canton_dr.tx_ingest.view.v1.rs"));
}
