#!/usr/bin/env bash
# Checks that need no Open vSwitch: Rust formatting (rustfmt.toml), and the
# syntax of shell and Ruby files.
set -euo pipefail
cd "$(dirname "$0")/.."
for f in scripts/*.sh benches/*.sh vagrant/*.sh .ci/run; do
    [ -f "$f" ] && bash -n "$f"
done
if cargo fmt --version >/dev/null 2>&1; then
    cargo fmt --check || { echo "static checks: Rust formatting differs (above); run 'cargo fmt'" >&2; exit 1; }
elif [ "${CI:-}" = true ]; then
    echo "static checks: rustfmt not installed, formatting not checked" >&2
fi
if [ -f vagrant/Vagrantfile ] && command -v ruby >/dev/null 2>&1; then
    ruby -c vagrant/Vagrantfile >/dev/null
fi
echo "static checks: ok"
