#!/bin/sh
# Runs every cargo-fuzz target in fuzz/ for a bounded time, one after the
# other, at low priority. Not part of CI's pass/fail: run it as a separate
# job and record what it found in compat-tests/FUZZING.md.
#   scripts/fuzz.sh [seconds per target, default 300] [target ...]
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# Crashes land in fuzz/artifacts/<target>/; the corpus grows in
# fuzz/corpus/<target>/ (seeds are checked in).
set -eu
cd "$(dirname "$0")/../fuzz"
secs="${1:-300}"
[ $# -gt 0 ] && shift
targets="$*"
[ -n "$targets" ] || targets="$(cargo +nightly fuzz list)"
# No sanitizer: the code under test is safe Rust, so what we look for is
# panics, hangs and big allocations; debug assertions on (-a).
cargo +nightly fuzz build --sanitizer none -a
status=0
for t in $targets; do
    mkdir -p "corpus/$t"
    echo "== $t for ${secs}s"
    # -rss_limit_mb: an allocation over 512 MiB counts as a finding;
    # -timeout: one input taking over 10 s is a hang.
    nice -n 19 cargo +nightly fuzz run --sanitizer none -a "$t" "corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=512 -malloc_limit_mb=512 -timeout=10 \
        -max_len=65536 -print_final_stats=1 || status=1
done
exit $status
