#!/usr/bin/env bash
# Builds and runs the fuzz targets (cargo-fuzz + libFuzzer, AddressSanitizer, debug assertions).
#
#   fuzz/run.sh smoke [RUNS]           every target, RUNS inputs each (default 2000) from its
#                                      committed seeds; what tests/run-all.sh runs. A debug build
#                                      without sanitizer (overflow checks and debug assertions on):
#                                      it compiles in a third of the CPU time of the release ASan
#                                      build, and it is there to keep the targets from rotting
#   fuzz/run.sh long SECONDS [TARGET...]
#                                      each target (or those named), one after another, until it
#                                      has had SECONDS of CPU time (user + sys: on a shared machine
#                                      wall time says little), growing fuzz/corpus/<target>; a log
#                                      per slice and a summary line per target in fuzz/logs/
#
# The long runs use cargo-fuzz's default build: release, AddressSanitizer, debug assertions.
# No nightly toolchain is needed: RUSTC_BOOTSTRAP=1 lets stable rustc take the -Z flags.
# Any crash, hang (a unit over 10 s), leak or out-of-memory (2 GB) fails the run; libFuzzer
# writes the input to fuzz/artifacts/<target>/ and `cargo fuzz run TARGET FILE` replays it.
set -euo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1

TARGETS=(policy record domain netstring line config render)
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')

# Targets whose inputs are text with keywords get a dictionary; bodies up to the 64 KiB policy
# limit are too slow to fuzz at full length, 16 KiB still holds hundreds of lines.
options() {
    local t=$1
    echo -timeout=10 -rss_limit_mb=2048 -artifact_prefix=artifacts/$t/ -print_final_stats=1
    [ -f dict/$t.dict ] && echo -dict=dict/$t.dict
    case $t in
        policy|record|line|config) echo -max_len=16384 ;;
        *) echo -max_len=4096 ;;
    esac
}

build() {
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
    cargo fuzz build "$@"
}

mode=${1:-smoke}
case $mode in
    smoke)
        runs=${2:-2000}
        build --dev --sanitizer none
        BIN=${CARGO_TARGET_DIR:-target}/$TRIPLE/debug
        scratch=$(mktemp -d)
        trap 'rm -rf "$scratch"' EXIT
        for t in "${TARGETS[@]}"; do
            mkdir -p "$scratch/$t" artifacts/$t
            echo "fuzz smoke: $t ($runs runs)"
            # shellcheck disable=SC2046
            "$BIN/$t" $(options "$t") -runs="$runs" "$scratch/$t" seeds/$t 2>"$scratch/$t.log" \
                || { tail -40 "$scratch/$t.log"; echo "fuzz smoke: $t FAILED"; exit 1; }
        done
        echo "fuzz smoke: ${#TARGETS[@]} passed, 0 failed"
        ;;
    long)
        seconds=${2:?seconds}
        shift 2
        [ $# -gt 0 ] && TARGETS=("$@")
        build
        BIN=${CARGO_TARGET_DIR:-target}/$TRIPLE/release
        mkdir -p logs
        for t in "${TARGETS[@]}"; do
            mkdir -p corpus/$t artifacts/$t
            start=$(date +%s)
            status=0 cpu=0 execs=0 rss=0 slices=0
            # libFuzzer's -max_total_time is wall time: run slices until the CPU time adds up.
            while [ "$cpu" -lt "$seconds" ] && [ "$status" -eq 0 ]; do
                log=logs/$t.$(date +%Y%m%dT%H%M%S).log
                # shellcheck disable=SC2046
                ( TIMEFORMAT='cpu %U %S'; time "$BIN/$t" $(options "$t") -max_total_time=$((seconds - cpu)) corpus/$t seeds/$t ) \
                    >"$log" 2>&1 || status=$?
                slice_cpu=$(awk '/^cpu /{printf "%d", $2 + $3}' "$log")
                slice_execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
                cpu=$((cpu + ${slice_cpu:-0}))
                execs=$((execs + ${slice_execs:-0}))
                rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
                slices=$((slices + 1))
            done
            files=$(find corpus/$t -type f | wc -l)
            bytes=$(du -sb corpus/$t | cut -f1)
            crashes=$(find artifacts/$t -type f | wc -l)
            echo "$(date -u +%FT%TZ) target=$t status=$status cpu=${cpu}s wall=$(( $(date +%s) - start ))s slices=$slices execs=$execs corpus=${files}files/${bytes}B peak_rss_mb=$rss artifacts=$crashes" \
                | tee -a logs/summary.txt
        done
        ;;
    *)
        echo "usage: $0 smoke [RUNS] | long SECONDS [TARGET...]" >&2
        exit 64
        ;;
esac
