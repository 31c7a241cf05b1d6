#!/usr/bin/env bash
# Installs what ovsnet needs on Debian/Ubuntu and is missing: Open vSwitch,
# iproute2, ping, Docker's engine and a static busybox (for the container
# tests), iperf3 and tcpdump (for measurements), ruby (to syntax-check the
# Vagrantfile), and a Rust toolchain.
# Safe to run again: it installs only what is absent.
set -euo pipefail

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "ovsnet: run as root (it creates namespaces and starts Open vSwitch)" >&2
        exit 1
    fi
}
need_root

# command -> Debian package
declare -A pkgs=(
    [ovs-vswitchd]=openvswitch-switch
    [ovsdb-server]=openvswitch-switch
    [ovs-vsctl]=openvswitch-switch
    [ip]=iproute2
    [ping]=iputils-ping
    [dockerd]=docker.io
    [iperf3]=iperf3
    [tcpdump]=tcpdump
    [ruby]=ruby
    [cc]=build-essential
    [pkg-config]=pkg-config
    [curl]=curl
)
missing=()
for cmd in "${!pkgs[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("${pkgs[$cmd]}")
done
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx nc || missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    echo "ovsnet: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "ovsnet: installing Rust (rustup, stable)" >&2
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
    export PATH="$HOME/.cargo/bin:$PATH"
fi
