//! The Canton Integration DB: connection, schema, migrations, typed queries
//! and the ingestion progress channel (DESIGN.md, "The Integration DB contract").
//!
//! Connect with [`Db::connect`] (URL or `PG*` environment, optional rustls TLS,
//! see [`config`]); tools that use the tables call [`Db::connect_ready`], which
//! also checks the schema version. Tools take the connection flags from
//! [`args::DbArgs`], which refuses a password typed on the command line.
//! [`migrate`] creates and upgrades the schema.
//! Errors are [`canton_dr_cli::Error`]s with the exit code of their kind
//! ([`error`]).
//!
//! # Schema (default `canton_integration`, version [`migrate::LATEST_VERSION`])
//!
//! Times are `timestamptz`; amounts `numeric(38,10)` (exchanged as decimal strings).
//!
//! | table | key | what |
//! |---|---|---|
//! | `schema_migrations` | version | applied migrations (name, checksum, when, by whom) |
//! | `ingestion_control` | ingester | desired state `running`/`stopped`, `resume_offset`, `dedup_from`, `offset_epoch`, `generation` (bumped by every change); the ingester's `actual_state`, `acked_generation`, `heartbeat_at` |
//! | `ingestion_checkpoint` | ingester | last ingested `offset`, `record_time`, `synchronizer_id`, `update_id` (NULL after an offset checkpoint), `offset_epoch`; the last transaction's `last_tx_*` |
//! | `ingested_updates` | update_id | the dedup set: `ingester`, `offset`, `record_time`, `synchronizer_id`, `offset_epoch` |
//! | `withdrawals` | withdrawal_id | account, receiver, instrument, amount, `trec_tgt`, status `requested`/`submitted`/`completed`/`failed`/`recovered`, failure reason, completing update id and record time, `needs_reconciliation` |
//! | `deposit_accounts` | account_id | customer of a deposit account |
//! | `deposits` | (update_id, node_id) | transfers in: account (NULL if unknown), sender, instrument, amount, record time |
//! | `account_balances` | (account_id, instrument_admin, instrument_id) | credited balance |
//! | `holdings` | contract_id | treasury UTXOs, `archived_update_id` once spent |
//! | `withdrawal_gate` | gate (`cn-withdrawals`) | `frozen`, `frozen_at`/`_by`, `reason`, `ttl_seconds`, `tsafe`, thaw fields |
//! | `dar_uploads` | main_package_id | name, version, `file_sha256`, size, source path, `uploaded_at`, who recorded it |
//! | `audit_log` | id | `at`, `tool`, `command`, `actor` (user@host), `dry_run`, `details` jsonb, `outcome` (V2) |
//!
//! Typed queries live in one module per table and take any
//! [`tokio_postgres::GenericClient`], so they run on a plain connection or
//! inside a caller's transaction. Progress notifications: [`notify`].

pub mod args;
pub mod audit;
pub mod checkpoint;
pub mod config;
pub mod control;
pub mod dars;
mod db;
pub mod deposits;
pub mod error;
pub mod gate;
pub mod holdings;
pub mod migrate;
pub mod notify;
pub mod serde_time;
mod tls;
pub mod updates;
pub mod withdrawals;

pub use config::{ConnectOptions, DEFAULT_SCHEMA};
pub use db::Db;
pub use tokio_postgres::{Client, GenericClient, Transaction};

/// Result type of this crate (errors carry their exit code).
pub type Result<T> = canton_dr_cli::Result<T>;

/// The result of an idempotent change: whether it changed anything, and the
/// state after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change<T> {
    /// `false` when the state already was as asked (a re-run).
    pub changed: bool,
    /// The state after the call.
    pub value: T,
}
