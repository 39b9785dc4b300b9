#!/usr/bin/env bash
# The whole test suite, as README.md gives it: format, lints, shellcheck, and
# every test (tests start their own throwaway PostgreSQL clusters and
# simulators; PostgreSQL server binaries must be installed, see README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check

echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings

if command -v shellcheck >/dev/null 2>&1; then
  echo "== shellcheck" >&2
  shellcheck scripts/*.sh .ci/run
else
  echo "warning: shellcheck not installed; skipping (apt-get install shellcheck)" >&2
fi

echo "== cargo build (binaries the end-to-end tests run)" >&2
cargo build --workspace --bins --locked

echo "== cargo test" >&2
cargo test --workspace --locked --no-fail-fast
