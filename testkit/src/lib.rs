//! Test support for canton-dr: throwaway PostgreSQL clusters, simulator
//! processes and the paths of workspace binaries.
//!
//! - [`PgCluster`] runs `scripts/pg-tmp.sh` to get a private cluster (about one
//!   second), stops and removes it on drop, and can stop / start / restart it to
//!   test outages. [`PgCluster::shared`] gives each test binary one cluster.
//! - [`fresh_database`] creates a uniquely named database per test, so tests
//!   sharing a cluster do not see each other's rows.
//! - [`SimProcess`] runs a real `canton-sim serve` on free ports, parses its
//!   ready line, stops / kills / restarts it on the same state, runs
//!   `canton-sim ctl` against it, and kills it on drop.
//! - [`cargo_bin`] finds `target/<profile>/<name>` of any workspace binary.
//!
//! Every cluster is watched by a detached watchdog (`pg-tmp.sh start
//! --watch-pid`) that stops and removes it when the test process exits, even
//! when it is killed: statics are never dropped, so this is what cleans up the
//! shared cluster, and it covers aborted runs too.

mod bins;
mod pg;
mod sim;

pub use bins::cargo_bin;
pub use pg::{ClusterOptions, PgCluster, TestDb, fresh_database};
pub use sim::SimProcess;
