#!/usr/bin/env bash
# Prepares a host for ovsnet: installs what is missing (Open vSwitch and
# the rest, via scripts/install-deps.sh), builds and installs the ovsnet
# binary, starts Open vSwitch, and, given peers, builds the classic static
# set-up: obr0 with one tunnel to each peer.
#
# Two callers: vagrant/Vagrantfile runs it in every VM (with --host-name,
# --underlay-ip and --peers), and on a single machine it prepares for
# `ovsnet lab up` (with --install-only), whose simulated hosts get the same
# bridges and tunnels built in-process.
#
#   scripts/provision-host.sh --install-only
#   scripts/provision-host.sh --host-name h1 --underlay-ip 192.168.56.11 \
#       --peers 192.168.56.12 [--tunnel vxlan|gre|geneve] [--cidr 10.0.1.1/8]
set -euo pipefail
cd "${OVSNET_SRC:-$(dirname "$0")/..}"

install_only=0
host_name=""
underlay_ip=""
peers=""
tunnel="vxlan"
cidr=""
while [ $# -gt 0 ]; do
    case "$1" in
        --install-only) install_only=1 ;;
        --host-name) host_name="$2"; shift ;;
        --underlay-ip) underlay_ip="$2"; shift ;;
        --peers) peers="$2"; shift ;;
        --tunnel) tunnel="$2"; shift ;;
        --cidr) cidr="$2"; shift ;;
        *) echo "provision-host: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

source scripts/install-deps.sh
export PATH="$PATH:/usr/sbin:/sbin:$HOME/.cargo/bin"

if ! command -v ovsnet >/dev/null 2>&1 || [ "${OVSNET_REBUILD:-0}" = 1 ]; then
    echo "provision-host: building ovsnet" >&2
    cargo build --release --locked --bin ovsnet
    install -m 0755 "${CARGO_TARGET_DIR:-target}/release/ovsnet" /usr/local/bin/ovsnet
fi

if [ "$install_only" = 1 ]; then
    echo "provision-host: ready (try: ovsnet lab up --hosts 3 --containers 2)"
    exit 0
fi

# A real host: the packaged Open vSwitch, started if it is not running.
if ! ovs-vsctl --timeout=5 show >/dev/null 2>&1; then
    /usr/share/openvswitch/scripts/ovs-ctl start --system-id="${host_name:-random}"
fi

# The classic static set-up: one bridge, one tunnel per peer, flood and learn.
bridge_args=(bridge add obr0)
[ -n "$cidr" ] && bridge_args+=(--cidr "$cidr")
ovsnet "${bridge_args[@]}"
n=0
for peer in ${peers//,/ }; do
    [ "$peer" = "$underlay_ip" ] && continue
    n=$((n + 1))
    ovsnet tunnel add obr0 "${tunnel:0:3}-${peer##*.}" --type "$tunnel" --remote "$peer"
done
echo "provision-host: ${host_name:-this host} (${underlay_ip:-?}) has obr0 with $n $tunnel tunnel(s)"
