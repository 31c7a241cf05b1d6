#!/usr/bin/env bash
# Installs what ovsnet needs on Debian/Ubuntu and is missing: Open vSwitch,
# iproute2, ping, Docker's engine and a static busybox (for the container
# tests), iperf3 and tcpdump (for measurements), and a Rust toolchain.
# Safe to run again: it installs only what is absent.
set -euo pipefail

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "ovsnet: run as root (it creates namespaces and starts Open vSwitch)" >&2
        exit 1
    fi
}
need_root

# Debian packages: Open vSwitch and its tools; iproute2 and ping (tests use
# them as oracles); Docker's engine and a static busybox (container tests);
# iperf3 and tcpdump (measurements); a C toolchain for crates that build C;
# ruby to syntax-check the Vagrantfile; systemd (systemd-analyze verify
# on the units) and man-db (man -w on the packaged pages) for the package
# test; docker-compose for the Compose test; libnftnl and libmnl (the
# nftables NAT is built through them) and nft (the NAT tests' oracle).
packages=(
    openvswitch-switch iproute2 iputils-ping docker.io busybox-static
    iperf3 tcpdump build-essential pkg-config curl ca-certificates ruby
    systemd man-db docker-compose libnftnl-dev libmnl-dev nftables
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "ovsnet: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # Packages install without starting their system services (Docker's
    # would create docker0 and change the firewall's forwarding policy;
    # Open vSwitch's would start a system switch): ovsnet's tests and demo
    # run private instances of their own. A service that was running stays
    # as it was. Debian's maintainer scripts ask /usr/sbin/policy-rc.d
    # before starting anything; 101 means "not now". One that the machine
    # already has is left alone.
    policy=/usr/sbin/policy-rc.d
    made_policy=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# written by ovsnet install-deps.sh while it installs; removed after\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=1
    fi
    apt-get update -qq
    status=0
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
    if [ -n "$made_policy" ]; then
        rm -f "$policy"
    fi
    if [ "$status" -ne 0 ]; then
        echo "ovsnet: apt-get install failed ($status)" >&2
        exit "$status"
    fi
    echo "ovsnet: installed; no system service was started (systemctl start docker or openvswitch-switch to use them)" >&2
fi

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "ovsnet: installing Rust (rustup, stable)" >&2
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
    export PATH="$HOME/.cargo/bin:$PATH"
fi
