#!/bin/sh
# Installs what is missing, builds berthd (release) and runs it in the
# foreground on the default socket, unix:///var/run/docker.sock. Extra
# arguments go to berthd (dockerd's flags).
set -eu
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release -p berthd
exec ./target/release/berthd "$@"
