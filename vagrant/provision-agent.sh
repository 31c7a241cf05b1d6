#!/usr/bin/env bash
# Provisions one VM from the Debian package, in agent mode: builds and
# installs the package, starts Open vSwitch, makes obr0, writes
# /etc/ovsnet/ovsnet.conf, and then
#   - on the first host: grows this host's database into a Raft cluster;
#   - on the second and third: joins their database to it;
#   - on every further host: points cluster_db at the three members;
#   - everywhere: enables and starts the agent.
# Safe to run again (vagrant provision): each step checks what is there.
#
#   vagrant/provision-agent.sh --index N --host-name hN --underlay-ip IP \
#       --members IP1,IP2,IP3 [--tunnel vxlan|gre|geneve]
set -euo pipefail
cd "${OVSNET_SRC:-$(dirname "$0")/..}"

index=""
host_name=""
underlay_ip=""
members=""
tunnel="vxlan"
while [ $# -gt 0 ]; do
    case "$1" in
        --index) index="$2"; shift ;;
        --host-name) host_name="$2"; shift ;;
        --underlay-ip) underlay_ip="$2"; shift ;;
        --members) members="$2"; shift ;;
        --tunnel) tunnel="$2"; shift ;;
        *) echo "provision-agent: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
for v in index host_name underlay_ip members; do
    [ -n "${!v}" ] || { echo "provision-agent: --${v//_/-} is required" >&2; exit 2; }
done
IFS=, read -r -a member_ips <<<"$members"
first=${member_ips[0]}

source scripts/install-deps.sh
export PATH="$PATH:/usr/sbin:/sbin:$HOME/.cargo/bin"

# The package, built here from the synced repository.
if ! dpkg-query -W -f='${Status}' ovsnet 2>/dev/null | grep -q "install ok installed" ||
    [ "${OVSNET_REBUILD:-0}" = 1 ]; then
    cargo build --release --locked --bin ovsnet
    deb=$(bash scripts/build-deb.sh | tail -n 1)
    dpkg -i "$deb" || DEBIAN_FRONTEND=noninteractive apt-get install -f -y -qq
fi

systemctl enable --now openvswitch-switch
ovs-vsctl --timeout=10 br-exists obr0 || ovsnet bridge add obr0

# The configuration: this host's name, underlay and tunnel; hosts that are
# not members reach the cluster through the members.
conf=/etc/ovsnet/ovsnet.conf
{
    echo "# Written by vagrant/provision-agent.sh"
    echo "host_name = \"$host_name\""
    echo "underlay_ip = \"$underlay_ip\""
    echo "tunnel = \"$tunnel\""
    if [ "$index" -gt 3 ] || [ "$index" -gt "${#member_ips[@]}" ]; then
        remotes=$(printf 'tcp:%s:6650,' "${member_ips[@]}")
        echo "cluster_db = \"${remotes%,}\""
    fi
} >"$conf"

model() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["model"])' \
        /var/lib/ovsnet/db/cluster.json 2>/dev/null || echo none
}

if [ "$index" -le 3 ] && [ "$index" -le "${#member_ips[@]}" ]; then
    systemctl enable --now ovsnet-db
    if [ "$(model)" != clustered ]; then
        # The grow and the join stop and start the server themselves: take
        # it from systemd for that moment, then hand it back.
        systemctl stop ovsnet-db
        if [ "$index" -eq 1 ]; then
            ovsnet cluster init --address "$underlay_ip"
            ovsnet network create blue --cidr 10.40.0.0/16 --ipam pool 2>/dev/null || true
        else
            ovsnet cluster start >/dev/null
            ovsnet cluster join --address "$underlay_ip" --peer "tcp:$first:6750"
        fi
        ovsnet cluster stop
        systemctl start ovsnet-db
    fi
else
    systemctl disable --now ovsnet-db 2>/dev/null || true
fi

systemctl enable --now ovsnet-agent
systemctl is-active --quiet ovsnet-agent
echo "provision-agent: $host_name ($underlay_ip) runs the agent; cluster members: $members"
