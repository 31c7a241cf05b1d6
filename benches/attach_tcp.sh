#!/bin/sh
# TCP throughput between two attached namespaces on the userspace datapath:
# tx checksum off on the container side (ovsnet's default) versus
# other_config:userspace-tso-enable=true. Needs root, Open vSwitch, iperf3.
# Usage: benches/attach_tcp.sh [OVSNET_BINARY] [SECONDS]
set -eu
OVSNET=${1:-target/release/ovsnet}
SECS=${2:-5}

run() { # $1: tso (true|false)
    d=$(mktemp -d)
    sw=atcp-sw-$$; c1=atcp-c1-$$; c2=atcp-c2-$$
    cleanup() {
        [ -f "$d/vswitchd.pid" ] && kill "$(cat "$d/vswitchd.pid")" 2>/dev/null || true
        [ -f "$d/ovsdb.pid" ] && kill "$(cat "$d/ovsdb.pid")" 2>/dev/null || true
        [ -f "$d/iperf.pid" ] && kill "$(cat "$d/iperf.pid")" 2>/dev/null || true
        sleep 0.5
        for n in $sw $c1 $c2; do ip netns delete "$n" 2>/dev/null || true; done
        rm -rf "$d"
    }
    trap cleanup EXIT
    for n in $sw $c1 $c2; do ip netns add "$n"; done
    ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    OVS_RUNDIR=$d ovsdb-server "$d/conf.db" --remote=punix:"$d/db.sock" --pidfile="$d/ovsdb.pid" \
        --unixctl="$d/ovsdb.ctl" --log-file="$d/ovsdb.log" --detach
    ovs-vsctl --db=unix:"$d/db.sock" --no-wait init
    ovs-vsctl --db=unix:"$d/db.sock" --no-wait set Open_vSwitch . other_config:userspace-tso-enable="$1"
    OVS_RUNDIR=$d ip netns exec "$sw" ovs-vswitchd unix:"$d/db.sock" --pidfile="$d/vswitchd.pid" \
        --unixctl="$d/vswitchd.ctl" --log-file="$d/vswitchd.log" --detach
    ovs-vsctl --db=unix:"$d/db.sock" add-br obr0 -- set bridge obr0 datapath_type=netdev
    "$OVSNET" --db unix:"$d/db.sock" --netns "$sw" attach obr0 "netns:$c1" 10.77.0.2/24 >/dev/null
    "$OVSNET" --db unix:"$d/db.sock" --netns "$sw" attach obr0 "netns:$c2" 10.77.0.3/24 >/dev/null
    csum=$(ip netns exec "$c1" ethtool -k eth1 2>/dev/null | grep '^tx-checksumming' || echo "tx-checksumming: ?")
    ip netns exec "$c2" iperf3 -s -1 -D -I "$d/iperf.pid" -B 10.77.0.3 >/dev/null
    sleep 0.3
    bps=$(ip netns exec "$c1" iperf3 -c 10.77.0.3 -t "$SECS" -J | sed -n 's/.*"bits_per_second":[[:space:]]*\([0-9.e+]*\).*/\1/p' | tail -1)
    echo "userspace-tso-enable=$1 ($csum): $(awk "BEGIN{printf \"%.2f\", $bps/1e9}") Gbit/s"
    cleanup
    trap - EXIT
}

run false
run true
