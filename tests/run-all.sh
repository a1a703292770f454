#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need, builds, runs everything.
# This is the README's test command, and .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every Rust test: unit tests, integration tests against in-process DNS and HTTPS servers on
# loopback, the CLI driven as a child process, and one quick pass of each benchmark so that they
# cannot rot.
cargo test --locked --workspace --all-targets 2>&1
