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
"$bin" lab up --hosts 3 --containers 2 "$@"
"$bin" lab status
cat <<'TXT'

Explore:
  ip netns exec ovsnet-h1-c1 ping 10.0.3.2        # a container on host 3, through a VXLAN tunnel
  ovs-ofctl -O OpenFlow13 dump-flows unix:<host dir>/obr0.mgmt   # the flows an agent installed
  ovsnet lab status                               # hosts, agents, endpoints, reachability matrix
Remove everything the lab made:
  ovsnet lab down
TXT
