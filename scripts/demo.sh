#!/usr/bin/env bash
# Installs what is missing, builds ovsnet, and runs the main demo: a lab of
# 3 simulated hosts (each its own Open vSwitch, an ovsnet agent per host,
# a 3-member cluster database) with 2 containers per host.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh
export PATH="$PATH:/usr/sbin:/sbin"
cargo build --release --locked --bin ovsnet
bin=target/release/ovsnet
# A demo lab left from an earlier run is replaced (only what it made goes).
"$bin" lab down >/dev/null 2>&1 || true
"$bin" lab up --hosts 3 --containers 2 "$@"
"$bin" lab status
cat <<'TXT'

Explore:
  ip netns exec ovsnet-h1-c1 ping 10.0.3.2        # a container on host 3, through a VXLAN tunnel
  ovs-ofctl -O OpenFlow13 dump-flows unix:<host dir>/obr0.mgmt   # the flows an agent installed
  target/release/ovsnet lab status                # hosts, agents, endpoints, reachability matrix
Remove everything the lab made:
  target/release/ovsnet lab down
TXT
