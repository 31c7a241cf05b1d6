#!/usr/bin/env bash
# Where this host's ovsnet database should live, measured both ways (root,
# Open vSwitch installed):
#
#   benches/local_db.sh [OVSNET_BINARY] [N]
#
# 1. A standalone ovsdb-server of ovsnet's own (what `ovsnet cluster start`
#    and ovsnet-db.service run): time from nothing to a database that
#    answers, and the server's resident memory, median of N fresh starts.
# 2. Beside Open_vSwitch in the host's ovsdb-server: a private stand-in
#    for it (conf.db, as ovs-ctl starts it), `ovsdb-server/add-db` of the
#    ovsnet database, the memory it adds, then a restart of that server
#    exactly as ovs-ctl does one (stop, start with conf.db and $EXTRA_DBS,
#    which is empty unless /etc/default/openvswitch-switch sets it): does
#    the ovsnet database survive?
#
# Everything it made is removed on exit. Prints the load first.
set -euo pipefail
bin=${1:-target/release/ovsnet}
n=${2:-5}
dir=$(mktemp -d)
cleanup() {
    for f in "$dir"/ovs.pid; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
    for d in "$dir"/own*; do
        [ -d "$d" ] && "$bin" cluster stop --dir "$d" >/dev/null 2>&1 || true
    done
    rm -rf "$dir"
}
trap cleanup EXIT
export OVSNET_CONFIG=/dev/null
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)  cores: $(nproc)  $(ovsdb-server --version | head -1)"

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# 1. ovsnet's own standalone server.
times=()
rss=()
for ((i = 0; i < n; i++)); do
    d=$dir/own$i
    t0=$(date +%s%N)
    "$bin" --db-dir "$d" cluster start >/dev/null
    "$bin" --db-dir "$d" network list >/dev/null
    t1=$(date +%s%N)
    times+=($(((t1 - t0) / 1000)))
    rss+=("$(rss_kb "$(cat "$d/m1/ovsdb-server.pid")")")
done
own_ms=$(printf '%s\n' "${times[@]}" | median)
own_rss=$(printf '%s\n' "${rss[@]}" | median)
printf 'own server: create+start+first answer  median %d.%03d ms over %d (one-shot CLI, process start included)\n' \
    $((own_ms / 1000)) $((own_ms % 1000)) "$n"
printf 'own server: resident memory            median %d KiB\n' "$own_rss"

# 2. Beside Open_vSwitch.
ovsdb-tool create "$dir/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ovsdb-tool create "$dir/ovsnet.db" ovsdb-schemas/ovsnet.ovsschema
start_ovs() {
    ovsdb-server "$dir/conf.db" "$@" --remote="punix:$dir/ovs.sock" --pidfile="$dir/ovs.pid" \
        --unixctl="$dir/ovs.ctl" --log-file="$dir/ovs.log" --detach --no-chdir 2>/dev/null
}
start_ovs
before=$(rss_kb "$(cat "$dir/ovs.pid")")
t0=$(date +%s%N)
ovs-appctl -t "$dir/ovs.ctl" ovsdb-server/add-db "$dir/ovsnet.db"
t1=$(date +%s%N)
after=$(rss_kb "$(cat "$dir/ovs.pid")")
"$bin" network create bench --cidr 10.98.0.0/16 --cluster-db "unix:$dir/ovs.sock" >/dev/null
printf 'beside OVS: add-db %d us, memory added %d KiB; dbs: %s\n' $(((t1 - t0) / 1000)) $((after - before)) \
    "$(ovsdb-client list-dbs "unix:$dir/ovs.sock" | tr '\n' ' ')"
# ovs-ctl restart: stop, then start with conf.db and $EXTRA_DBS (empty).
kill "$(cat "$dir/ovs.pid")"
while [ -e "/proc/$(cat "$dir/ovs.pid" 2>/dev/null || echo 0)" ]; do sleep 0.01; done
start_ovs
if ovsdb-client list-dbs "unix:$dir/ovs.sock" | grep -qx OVSNET; then
    echo "beside OVS: after an ovs-ctl restart the ovsnet database is still served"
else
    echo "beside OVS: after an ovs-ctl restart the ovsnet database is gone: $(
        "$bin" network list --cluster-db "unix:$dir/ovs.sock" 2>&1 | head -1)"
fi
