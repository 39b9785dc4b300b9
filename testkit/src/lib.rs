//! Test support: throwaway PostgreSQL clusters and simulator processes for canton-dr tests.
