#!/usr/bin/env bash
# Installs what is missing, then runs the whole test suite against real
# Open vSwitch (private instances in network namespaces) and a private
# Docker engine. One release build serves every test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh
export PATH="$PATH:/usr/sbin:/sbin"

echo "== build" >&2
cargo build --release --all-targets --locked

# What the suite could leave on the machine, to compare at the end.
state_before=$(bash scripts/machine-state.sh)

echo "== tests" >&2
if command -v cargo-nextest >/dev/null 2>&1; then
    cargo nextest run --release --locked --no-fail-fast --test-threads "${OVSNET_TEST_THREADS:-4}"
    # nextest does not run doctests
    cargo test --release --locked --doc
else
    cargo test --release --locked --no-fail-fast
fi

echo "== checks" >&2
bash scripts/check-static.sh

echo "== the Debian package" >&2
bash scripts/test-deb.sh

echo "== nothing left behind" >&2
if ! diff <(echo "$state_before") <(bash scripts/machine-state.sh) >&2; then
    echo "the test suite left the above on this machine (> : new, < : gone)" >&2
    exit 1
fi
