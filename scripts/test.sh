#!/bin/sh
# Installs what the tests need, builds berthd and runs every test: unit
# tests and the compat tests (stock docker CLI, compose and bollard against
# a real berthd on a real containerd). Extra arguments go to the test
# binaries (e.g. a test name filter).
set -eu
cd "$(dirname "$0")/.."
./scripts/setup.sh --tests
cargo build -p berthd
# Compat tests mostly wait on daemons and containers, so run more of them
# than there are cores.
cargo test --workspace --no-fail-fast -- --test-threads="${TEST_THREADS:-6}" "$@"
