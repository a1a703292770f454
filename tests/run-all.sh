#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need, builds, runs everything.
# This is the README's test command, and .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every Rust test: unit tests, integration tests against in-process DNS and HTTPS servers on
# loopback, the CLI driven as a child process, and one quick pass of each benchmark so that they
# cannot rot.
cargo test --locked --workspace --all-targets 2>&1

# --- fuzz smoke runs (fuzz/, docs/security.md) ------------------------------------------------
# Every fuzz target, built once and run on 2000 inputs grown from its committed seeds, so that
# none can rot. fuzz/ is its own workspace (not built by the line above). cargo-fuzz is installed
# only when missing, so a cached ~/.cargo/bin skips it; stable rustc is enough (fuzz/run.sh sets
# RUSTC_BOOTSTRAP=1); libFuzzer needs a C++ compiler. About two minutes on 2 cores.
# The long runs behind docs/security.md: bash fuzz/run.sh long 660
if ! command -v c++ >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq g++ >/dev/null
fi
bash fuzz/run.sh smoke 2000
# --- end of fuzz smoke runs -------------------------------------------------------------------
