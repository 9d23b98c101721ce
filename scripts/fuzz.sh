#!/bin/sh
# Runs every cargo-fuzz target in fuzz/ for a bounded time, one after the
# other (or all at once with FUZZ_PARALLEL=1, for a busy machine: every
# target gets the same wall-clock time, at low priority, without waiting
# for the others). Not part of CI's pass/fail: run it as a separate job
# and record what it found in compat-tests/FUZZING.md.
#   scripts/fuzz.sh [seconds per target, default 300] [target ...]
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# Crashes land in fuzz/artifacts/<target>/; the corpus grows in
# fuzz/corpus/<target>/ (seeds are checked in); each target's output is
# in fuzz/logs/<target>.log.
set -eu
cd "$(dirname "$0")/../fuzz"
secs="${1:-300}"
[ $# -gt 0 ] && shift
targets="$*"
[ -n "$targets" ] || targets="$(cargo +nightly fuzz list)"
# No sanitizer: the code under test is safe Rust, so what we look for is
# panics, hangs and big allocations; debug assertions on (-a).
nice -n 19 cargo +nightly fuzz build --sanitizer none -a
mkdir -p logs
run() {
    mkdir -p "corpus/$1" "artifacts/$1"
    # The binaries just built, run directly: `cargo fuzz run` checks the
    # build again, and in a git worktree daemon/build.rs's rerun-if-changed
    # path (../.git/HEAD) does not exist, so every check rebuilt berthd
    # (5 minutes at nice 19) before each target.
    # -rss_limit_mb: an allocation over 512 MiB counts as a finding;
    # -timeout: one input taking over 10 s is a hang.
    nice -n 19 "target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release/$1" \
        -artifact_prefix="artifacts/$1/" "corpus/$1" \
        -max_total_time="$secs" -rss_limit_mb=512 -malloc_limit_mb=512 -timeout=10 \
        -max_len=65536 -print_final_stats=1 >"logs/$1.log" 2>&1
}
status=0
pids=""
for t in $targets; do
    echo "== $t for ${secs}s"
    if [ "${FUZZ_PARALLEL:-0}" = 1 ]; then
        run "$t" &
        pids="$pids $!"
    else
        run "$t" || { status=1; echo "   $t found something: fuzz/logs/$t.log"; }
    fi
done
for p in $pids; do
    wait "$p" || status=1
done
for t in $targets; do
    echo "== $t: $(grep -E '^stat::number_of_executed_units' "logs/$t.log" || echo 'no final stats') corpus $(ls "corpus/$t" | wc -l)"
    grep -E '^(==[0-9]+== ERROR|SUMMARY|artifact_prefix|Test unit written)' "logs/$t.log" || true
done
exit $status
