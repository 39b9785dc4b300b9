//! Reference Tx History Ingestion: streams the treasury party's updates from a
//! Canton participant's ledger API into the Integration DB, exactly once per
//! update id, honouring the control contract (docs/ingestion-contract.md).
//!
//! * [`value`]: reading Daml values (labels or declaration order).
//! * [`parse`]: token-standard transfers and treasury holdings of a transaction.
//! * [`update`]: a streamed update decoded into what the writer books.
//! * [`apply`]: one PostgreSQL transaction per batch of updates.
//! * [`control`]: the contract's statements (register, read, ack, heartbeat, fence).
//! * [`stream`]: the `GetUpdates` request and the reader task.
//! * [`ingest`]: the loop: orders, sessions, batching, reconnects.
//! * [`metrics`]: counters and timings; [`cli`]: flags and the run.

pub mod apply;
pub mod cli;
pub mod control;
pub mod ingest;
pub mod metrics;
pub mod parse;
pub mod stream;
pub mod update;
pub mod value;
