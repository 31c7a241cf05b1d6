#!/usr/bin/env bash
# Two ovsnet binaries against each other, single attaches alternating on
# one fresh switch (root, Open vSwitch installed):
#
#   benches/attach_ab.sh OLD_BINARY NEW_BINARY [N]
#
# Starts a private ovsdb-server and ovs-vswitchd (in its own network
# namespace, userspace datapath, bridge obr0), makes 2N namespaces, attaches
# them one by one with OLD and NEW in turn, and prints each binary's median
# and minimum command time. Everything it made is removed on exit.
set -euo pipefail
old=$1; new=$2; n=${3:-20}
dir=$(mktemp -d)
sw=ab-sw-$$
made=()
cleanup() {
    for f in "$dir"/vswitchd.pid "$dir"/ovsdb.pid; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
    for ns in "${made[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    ip netns del "$sw" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
ip netns add "$sw"
ovsdb-tool create "$dir/conf.db" /usr/share/openvswitch/vswitch.ovsschema
OVS_RUNDIR=$dir ovsdb-server "$dir/conf.db" --remote="punix:$dir/db.sock" --pidfile="$dir/ovsdb.pid" \
    --unixctl="$dir/ovsdb.ctl" --log-file="$dir/ovsdb.log" --detach
ovs-vsctl --db="unix:$dir/db.sock" --no-wait init
OVS_RUNDIR=$dir ip netns exec "$sw" ovs-vswitchd "unix:$dir/db.sock" --pidfile="$dir/vswitchd.pid" \
    --unixctl="$dir/vswitchd.ctl" --log-file="$dir/vswitchd.log" --detach
ovs-vsctl --db="unix:$dir/db.sock" add-br obr0 -- set bridge obr0 datapath_type=netdev
for ((i = 0; i < 2 * n; i++)); do
    ip netns add "ab-c$$-$i"
    made+=("ab-c$$-$i")
done
python3 - "$dir/db.sock" "$sw" "$old" "$new" "$n" "ab-c$$-" <<'PY'
import subprocess, sys, time
db, sw, old, new, n, prefix = sys.argv[1:]
n = int(n)
times = {old: [], new: []}
for i in range(2 * n):
    binary = old if i % 2 == 0 else new
    cmd = [binary, "--db", "unix:" + db, "--netns", sw, "attach", "obr0",
           "netns:%s%d" % (prefix, i), "10.1.%d.%d/16" % (i // 250, i % 250 + 1)]
    start = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    took = time.perf_counter() - start
    if r.returncode:
        sys.exit("attach failed: " + r.stderr.decode().strip())
    times[binary].append(took * 1e3)
with open("/proc/loadavg") as f:
    load = " ".join(f.read().split()[:3])
for label, binary in (("old", old), ("new", new)):
    v = sorted(times[binary])
    print("%s %s: median %.2f ms, min %.2f ms over %d (load %s)" % (label, binary, v[len(v) // 2], v[0], len(v), load))
PY
