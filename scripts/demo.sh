#!/usr/bin/env bash
# Installs what is missing, builds ovsnet, and runs the main demo.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh
export PATH="$PATH:/usr/sbin:/sbin"
cargo build --release --locked --bin ovsnet
exec target/release/ovsnet demo "$@"
