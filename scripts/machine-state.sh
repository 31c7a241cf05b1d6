#!/usr/bin/env bash
# Prints what the project could leave behind on this machine, one sorted
# line per thing, so that two snapshots (before and after the demo or the
# test suite) can be compared with diff: network namespaces, interfaces of
# the machine's own namespace, mounts, the processes of the tools the
# project runs (zombies aside: they are left to whoever reaps orphans),
# nftables tables, and files in /tmp and /run named like the project's.
#
#   bash scripts/machine-state.sh > before
#   ... run something ...
#   bash scripts/machine-state.sh | diff before - && echo "nothing left behind"
set -u
export PATH="$PATH:/usr/sbin:/sbin"

{
    for ns in /run/netns/*; do
        if [ -e "$ns" ]; then echo "netns ${ns##*/}"; fi
    done
    for dev in /sys/class/net/*; do
        if [ -e "$dev" ]; then echo "link ${dev##*/}"; fi
    done
    # /run/netns itself is made a mount point once, by the first namespace
    # (ip-netns does the same), and stays; mounts under it are namespaces.
    awk '$2 != "/run/netns" {print "mount " $2 " " $3}' /proc/self/mounts
    ps -eo stat=,comm= | awk '$1 !~ /^Z/ {print $2}' |
        grep -xE 'ovsdb-server|ovs-vswitchd|ovsnet|dockerd|containerd|containerd-shim.*|docker-proxy|iperf3|nc|socat|busybox|httpd|ovn-.*' |
        sed 's/^/process /' || true
    if command -v nft >/dev/null 2>&1; then
        nft list tables 2>/dev/null | sed 's/^/nft /'
    fi
    for f in /tmp/ovsnet* /tmp/.ovsnet* /run/ovsnet* /var/run/ovsnet*; do
        if [ -e "$f" ]; then echo "file $f"; fi
    done
} | sort
exit 0
