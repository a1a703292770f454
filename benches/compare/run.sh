#!/usr/bin/env bash
# Side-by-side benchmark of mta-sts against postfix-mta-sts-resolver (issue #8), as root:
#
#   bash benches/compare/run.sh
#
# Installs postfix-mta-sts-resolver (pinned) from PyPI into a private virtualenv under the target
# directory (their side is skipped, with the reason in the table, when that fails), builds
# libmtasts.so for the dlfunc row, then runs the harness (benches/compare/main.rs), which writes
# docs/benchmarks.md and prints it. About five minutes on 2 cores, plus the first build.
set -euo pipefail
cd "$(dirname "$0")/../.."

version=1.5.1
venv="${CARGO_TARGET_DIR:-target}/bench-compare/venv"
python="${PYTHON:-python3}"

installed() {
    "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('postfix-mta-sts-resolver') != '$version')" 2>/dev/null
}
if ! installed; then
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    # The sqlite extra for its SQLite cache; uvloop, which its daemon uses when installed.
    if "$python" -m venv "$venv" &&
        "$venv/bin/pip" install --quiet --disable-pip-version-check \
            "postfix-mta-sts-resolver[sqlite,uvloop]==$version" && installed; then
        echo "compare: postfix-mta-sts-resolver $version installed in $venv"
    else
        echo "compare: cannot install postfix-mta-sts-resolver $version from PyPI" \
            "(needs $python with venv and pip, and PyPI); their side is skipped" >&2
        rm -rf "$venv"
    fi
fi

cargo build --release --locked -p mtasts
cargo bench --locked --bench compare
