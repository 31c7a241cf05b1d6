#!/usr/bin/env bash
# Builds the Debian package, installs it on this machine with dpkg, checks
# it, and purges it again: `ovsnet --version`, the manual pages, the
# installed configuration, `systemd-analyze verify` on the installed units,
# the agent unit's ExecStart line against a private switch (until READY=1,
# tests/service_unit.rs), then `dpkg --purge` must leave none of the
# package's files and no systemd state behind. The machine's own Open
# vSwitch database is never opened: its file must be unchanged.
#
# Needs root and an existing build (release by default; OVSNET_DEB_PROFILE
# as for scripts/build-deb.sh). Refuses to run where ovsnet is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
profile="${OVSNET_DEB_PROFILE:-release}"

fail() {
    echo "test-deb: $*" >&2
    exit 1
}
[ "$(id -u)" -eq 0 ] || fail "run as root (it installs the package)"
if dpkg-query -W -f='${Status}' ovsnet 2>/dev/null | grep -qv "not-installed"; then
    fail "ovsnet is already known to dpkg here; this test installs and purges it"
fi
[ ! -e /etc/ovsnet ] || fail "/etc/ovsnet exists; this test would install over it"
[ ! -e /var/lib/ovsnet ] || fail "/var/lib/ovsnet exists; purging the package would remove it"

now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
ovs_db=/etc/openvswitch/conf.db
ovs_db_sum() { if [ -e "$ovs_db" ]; then sha256sum "$ovs_db"; else echo absent; fi; }
db_before=$(ovs_db_sum)

t=$(now)
deb=$(bash scripts/build-deb.sh | tail -n 1)
echo "== built $deb in $(took "$t")" >&2

installed=0
cleanup() {
    if [ "$installed" -eq 1 ]; then
        echo "test-deb: failed; purging ovsnet" >&2
        dpkg --purge ovsnet >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

t=$(now)
installed=1
if ! dpkg -i "$deb"; then
    # Missing dependencies: dpkg leaves the package unconfigured; apt fixes it.
    DEBIAN_FRONTEND=noninteractive apt-get install -f -y -qq >/dev/null
fi
dpkg-query -W -f='${Status}\n' ovsnet | grep -q "install ok installed" || fail "not installed"
echo "== installed in $(took "$t")" >&2
dpkg -L ovsnet >"${TMPDIR:-/tmp}/ovsnet-deb-files.$$"
files="${TMPDIR:-/tmp}/ovsnet-deb-files.$$"

/usr/bin/ovsnet --version
man -w ovsnet
man -w ovsnet-agent
grep -qx /etc/ovsnet/ovsnet.conf /var/lib/dpkg/info/ovsnet.conffiles || fail "no conffile"
shown=$(OVSNET_CONFIG= /usr/bin/ovsnet config show)
grep -q "/etc/ovsnet/ovsnet.conf  (default, read)" <<<"$shown" ||
    fail "ovsnet config show does not read /etc/ovsnet/ovsnet.conf: $shown"
unit_dir=$(dirname "$(grep '/ovsnet-agent.service$' "$files")")
if command -v systemd-analyze >/dev/null 2>&1; then
    systemd-analyze verify "$unit_dir/ovsnet-agent.service" "$unit_dir/ovsnet-db.service"
    echo "== systemd-analyze verify: ok" >&2
elif [ "${CI:-}" = true ]; then
    fail "CI=true and no systemd-analyze"
fi

t=$(now)
echo "== the installed agent unit's ExecStart against a private switch" >&2
case "$profile" in
    dev) test_profile=() ;;
    *) test_profile=(--profile "$profile") ;;
esac
OVSNET_UNIT_BINARY=/usr/bin/ovsnet OVSNET_UNIT_DIR="$unit_dir" \
    cargo test "${test_profile[@]}" --locked --test service_unit -- --test-threads 1
echo "== agent unit checked in $(took "$t")" >&2

t=$(now)
echo "== the single-host default: the database unit's ExecStart, then a network" >&2
/usr/bin/ovsnet cluster start
/usr/bin/ovsnet network create deb-check --cidr 10.99.0.0/16 >/dev/null
/usr/bin/ovsnet network list | grep -q deb-check || fail "network list does not show deb-check"
db_pid=$(cat /var/lib/ovsnet/db/m1/ovsdb-server.pid)
echo "== single-host database checked in $(took "$t")" >&2

t=$(now)
dpkg --purge ovsnet
installed=0
echo "== purged in $(took "$t")" >&2
left=()
while read -r p; do
    [ -e "$p" ] || [ -L "$p" ] || continue
    # Directories other packages own (/usr/bin, ...) stay.
    if [ -d "$p" ] && [ ! -L "$p" ] && dpkg -S "$p" >/dev/null 2>&1; then
        continue
    fi
    left+=("$p")
done <"$files"
rm -f "$files"
for p in /etc/ovsnet /var/lib/ovsnet; do
    if [ -e "$p" ] || [ -L "$p" ]; then left+=("$p"); fi
done
for u in ovsnet-agent ovsnet-db; do
    for p in /etc/systemd/system/$u.service /etc/systemd/system/multi-user.target.wants/$u.service \
        /var/lib/systemd/deb-systemd-helper-enabled/$u.service.dsh-also \
        /var/lib/systemd/deb-systemd-helper-masked/$u.service; do
        if [ -e "$p" ] || [ -L "$p" ]; then left+=("$p"); fi
    done
done
[ ${#left[@]} -eq 0 ] || fail "left after dpkg --purge: ${left[*]}"
# Gone, or a zombie no one reaped yet (a detached daemon's parent is not ours).
! grep -qs '^State:[[:space:]]*[^Z]' "/proc/$db_pid/status" || fail "the database server ($db_pid) still runs after dpkg --purge"
! dpkg-query -W ovsnet >/dev/null 2>&1 || fail "dpkg still knows ovsnet"
[ "$(ovs_db_sum)" = "$db_before" ] || fail "$ovs_db changed"
echo "== the package: ok" >&2
