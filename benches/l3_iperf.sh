#!/bin/sh
# Routed and egress TCP throughput with the agents: an agent-mode lab of 2
# hosts with the outside namespace (`lab up --outside`), two networks red
# (10.71.0.0/24) and blue (10.72.0.0/24) on one router, a container of
# each on each host; one iperf3 stream each way, alternating, median of
# ROUNDS each:
#   switched  red h1 -> red h2     (same network, across hosts)
#   routed    red h1 -> blue h2    (between networks, across hosts)
#   egress    red h1 -> outside    (through h1's kernel NAT)
#   plain     h1's kernel -> outside, with no container and no NAT
# and prints routed/switched and egress/plain. Needs root, Open vSwitch,
# iperf3. The lab is taken down on exit. Traffic stays inside the lab's
# namespaces. Usage: benches/l3_iperf.sh [OVSNET_BINARY] [SECONDS] [ROUNDS]
set -eu
OVSNET=${1:-target/release/ovsnet}
SECS=${2:-4}
ROUNDS=${3:-3}
command -v iperf3 >/dev/null || { echo "iperf3 is needed (scripts/install-deps.sh)" >&2; exit 1; }

STATE=$(mktemp -d)
NAME=l3$$
cleanup() {
    "$OVSNET" lab down --name "$NAME" --state-dir "$STATE" >/dev/null 2>&1 || true
    for c in r1 b2 r2; do ip netns del "$NAME-$c" 2>/dev/null || true; done
    rm -rf "$STATE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$(dirname "$0")/iperf_common.sh"

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$OVSNET" lab up --hosts 2 --containers 0 --outside --name "$NAME" --state-dir "$STATE" >/dev/null
DB=$(sed -n 's/.*"cluster_db": *"\([^"]*\)".*/\1/p' "$STATE/$NAME/lab.json")
on() { # $1 host, then the command
    h=$1; shift
    "$OVSNET" --db "unix:$STATE/$NAME/$h/db.sock" --netns "$NAME-$h" "$@" --cluster-db "$DB"
}
on h1 network create red --cidr 10.71.0.0/24 >/dev/null
on h1 network create blue --cidr 10.72.0.0/24 >/dev/null
on h1 router create r1 >/dev/null
on h1 router add r1 red >/dev/null
on h1 router add r1 blue >/dev/null
for c in r1 r2 b2; do ip netns add "$NAME-$c"; done
on h1 attach obr0 "netns:$NAME-r1" 10.71.0.11/24 --network red --host-name h1 >/dev/null
on h2 attach obr0 "netns:$NAME-r2" 10.71.0.12/24 --network red --host-name h2 >/dev/null
on h2 attach obr0 "netns:$NAME-b2" 10.72.0.12/24 --network blue --host-name h2 >/dev/null
for dst in 10.71.0.12 10.72.0.12 203.0.113.10; do
    i=0
    until ip netns exec "$NAME-r1" ping -c1 -W1 "$dst" >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -gt 20 ] && { echo "$dst unreachable from r1" >&2; exit 1; }
    done
done

sw=""; ro=""; eg=""; pl=""
r=1
while [ $r -le "$ROUNDS" ]; do
    s=$(iperf "$NAME-r1" "$NAME-r2" 10.71.0.12)
    o=$(iperf "$NAME-r1" "$NAME-b2" 10.72.0.12)
    e=$(iperf "$NAME-r1" "$NAME-out" 203.0.113.10)
    p=$(iperf "$NAME-h1" "$NAME-out" 203.0.113.10)
    echo "  round $r: switched $s, routed $o, egress $e, host plain $p Gbit/s (load $(cut -d' ' -f1 /proc/loadavg))"
    sw="$sw $s"; ro="$ro $o"; eg="$eg $e"; pl="$pl $p"
    r=$((r + 1))
done
ms=$(printf '%s\n' $sw | median); mo=$(printf '%s\n' $ro | median)
me=$(printf '%s\n' $eg | median); mp=$(printf '%s\n' $pl | median)
echo "switched $ms, routed $mo, egress $me, host plain $mp Gbit/s (median of $ROUNDS x ${SECS}s)"
echo "routed/switched $(awk "BEGIN{printf \"%.2f\", $mo/$ms}")  egress/host plain $(awk "BEGIN{printf \"%.2f\", $me/$mp}")"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
