//! End-to-end tests of canton-dr live in `tests/tests/`: they run the real
//! binaries and the bash runbooks against a throwaway PostgreSQL cluster and
//! the `canton-sim` participant simulator. This library is intentionally empty.
