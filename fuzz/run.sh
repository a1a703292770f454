#!/usr/bin/env bash
# Builds and runs the fuzz targets (cargo-fuzz + libFuzzer, AddressSanitizer, debug assertions).
#
#   fuzz/run.sh smoke [RUNS]           every target, RUNS inputs each (default 2000) from its
#                                      committed seeds; what tests/run-all.sh runs. A debug build
#                                      without sanitizer (overflow checks and debug assertions on):
#                                      it compiles in a third of the CPU time of the release ASan
#                                      build, and it is there to keep the targets from rotting
#   fuzz/run.sh long SECONDS [TARGET]  each target (or one) for SECONDS, one after another,
#                                      growing fuzz/corpus/<target>; logs and a summary line per
#                                      run in fuzz/logs/
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
        BIN=target/$TRIPLE/debug
        scratch=$(mktemp -d)
        trap 'rm -rf "$scratch"' EXIT
        for t in "${TARGETS[@]}"; do
            mkdir -p "$scratch/$t" artifacts/$t
            echo "fuzz smoke: $t ($runs runs)"
            # shellcheck disable=SC2046
            "$BIN/$t" $(options "$t") -runs="$runs" "$scratch/$t" seeds/$t 2>"$scratch/$t.log" \
                || { tail -40 "$scratch/$t.log"; echo "fuzz smoke: $t FAILED"; exit 1; }
        done
        ;;
    long)
        seconds=${2:?seconds}
        shift 2
        [ $# -gt 0 ] && TARGETS=("$@")
        build
        BIN=target/$TRIPLE/release
        mkdir -p logs
        for t in "${TARGETS[@]}"; do
            mkdir -p corpus/$t artifacts/$t
            log=logs/$t.$(date +%Y%m%dT%H%M%S).log
            start=$(date +%s)
            status=0
            # shellcheck disable=SC2046
            ( TIMEFORMAT='cpu %U user %S sys'; time "$BIN/$t" $(options "$t") -max_total_time="$seconds" corpus/$t seeds/$t ) \
                >"$log" 2>&1 || status=$?
            execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
            rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
            cpu=$(sed -n 's/^cpu //p' "$log" | tail -1)
            files=$(find corpus/$t -type f | wc -l)
            crashes=$(find artifacts/$t -type f | wc -l)
            echo "$(date -u +%FT%TZ) target=$t status=$status wall=$(( $(date +%s) - start ))s cpu=[$cpu] execs=$execs corpus_files=$files peak_rss_mb=$rss artifacts=$crashes log=$log" \
                | tee -a logs/summary.txt
        done
        ;;
    *)
        echo "usage: $0 smoke [RUNS] | long SECONDS [TARGET...]" >&2
        exit 64
        ;;
esac
