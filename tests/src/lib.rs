//! End-to-end tests of canton-dr: real binaries, real Postgres, the simulator.
