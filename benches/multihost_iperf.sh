#!/bin/sh
# Cross-host TCP throughput with the agents: an agent-mode lab (2 hosts x 2
# containers, cluster database, one `ovsnet agent` per host) for VXLAN and
# then GRE; one iperf3 stream same-host (h1-c2 -> h1-c1) and across hosts
# (h1-c2 -> h2-c1), alternating, median of ROUNDS each; prints the ratio
# across/same. Needs root, Open vSwitch, iperf3. The lab is taken down on
# exit (also on error or Ctrl-C). Traffic stays inside the lab's namespaces.
# Usage: benches/multihost_iperf.sh [OVSNET_BINARY] [SECONDS] [ROUNDS]
set -eu
OVSNET=${1:-target/release/ovsnet}
SECS=${2:-4}
ROUNDS=${3:-3}
command -v iperf3 >/dev/null || { echo "iperf3 is needed (scripts/install-deps.sh)" >&2; exit 1; }

STATE=$(mktemp -d)
NAME=ip$$
cleanup() {
    "$OVSNET" lab down --name "$NAME" --state-dir "$STATE" >/dev/null 2>&1 || true
    rm -rf "$STATE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$(dirname "$0")/iperf_common.sh"

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for tunnel in vxlan gre; do
    "$OVSNET" lab up --hosts 2 --containers 2 --tunnel "$tunnel" --name "$NAME" --state-dir "$STATE" >/dev/null
    same=""; across=""
    r=1
    while [ $r -le "$ROUNDS" ]; do
        s=$(iperf "$NAME-h1-c2" "$NAME-h1-c1" 10.0.1.1)
        a=$(iperf "$NAME-h1-c2" "$NAME-h2-c1" 10.0.2.1)
        echo "  $tunnel round $r: same host $s Gbit/s, across hosts $a Gbit/s (load $(cut -d' ' -f1 /proc/loadavg))"
        same="$same $s"; across="$across $a"
        r=$((r + 1))
    done
    ms=$(printf '%s\n' $same | median)
    ma=$(printf '%s\n' $across | median)
    echo "$tunnel: same host $ms Gbit/s, across hosts $ma Gbit/s, ratio across/same $(awk "BEGIN{printf \"%.2f\", $ma/$ms}") (median of $ROUNDS x ${SECS}s)"
    "$OVSNET" lab down --name "$NAME" --state-dir "$STATE" >/dev/null
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
