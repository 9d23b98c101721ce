#!/bin/sh
# The side-by-side benchmark: berthd against Debian's dockerd (docker.io) on
# the same containerd, same workloads, one run. Installs what it needs,
# builds release binaries, prints the table and writes
# target/bench/side_by_side.json and target/bench/side_by_side.png.
# Extra arguments go to the bench (e.g. --quick). Not part of the tests.
set -eu
cd "$(dirname "$0")/.."
./scripts/setup.sh --bench
cargo build --release -p berthd
cargo build --release -p compat-tests --bin side_by_side
BERTHD_BIN="${BERTHD_BIN:-$PWD/target/release/berthd}" exec ./target/release/side_by_side "$@"
