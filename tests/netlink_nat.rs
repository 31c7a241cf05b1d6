//! The egress NAT through `ovsnet::netlink::nat` on the real kernel, each
//! test in namespaces of its own, checked with `nft list` as the oracle
//! (the product itself never runs `nft`) and with pings between those
//! namespaces only.

mod common;

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::process::Command;

use common::{connect_from, echo, tcp_echo_server, unique_name};
use ovsnet::netlink::nat::{self, Dnat, Egress, NatError};
use ovsnet::netns;

/// A namespace deleted on drop, also while a failed test unwinds.
struct Ns(String);

impl Ns {
    fn new(prefix: &str) -> Ns {
        let name = unique_name(prefix);
        netns::create(&name).expect("create namespace");
        Ns(name)
    }

    fn fd(&self) -> OwnedFd {
        netns::open(&self.0).expect("open namespace")
    }

    /// Runs a command inside the namespace (`ip netns exec`); its output
    /// when it succeeds.
    fn exec(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run ip netns exec {args:?}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        match out.status.success() {
            true => Ok(stdout),
            false => Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr))),
        }
    }

    /// `ip -n NS ARGS`, which must succeed (test setup).
    fn ip(&self, args: &[&str]) {
        let out = Command::new("ip").args(["-n", &self.0]).args(args).output().expect("run ip");
        assert!(out.status.success(), "ip -n {} {args:?}: {}", self.0, String::from_utf8_lossy(&out.stderr));
    }

    /// The whole ruleset (`nft list ruleset`), the oracle.
    fn ruleset(&self) -> String {
        self.exec(&["nft", "list", "ruleset"]).unwrap_or_else(|e| panic!("nft list ruleset: {e}"))
    }

    /// Whether one ping from this namespace to `dest` gets an answer.
    fn pings(&self, dest: &str) -> bool {
        self.exec(&["ping", "-c", "1", "-W", "1", "-n", "-q", dest]).is_ok()
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = netns::delete(&self.0);
    }
}

/// `nft` is the oracle: scripts/install-deps.sh installs it, and no test
/// here is skipped without it.
fn require_nft() {
    let found = Command::new("nft").arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    assert!(found, "nft is missing: install the nftables package (scripts/install-deps.sh does)");
}

/// The lines of the rules of one chain of table ip ovsnet, trimmed.
fn chain_rules(ruleset: &str, chain: &str) -> Vec<String> {
    let mut in_table = false;
    let mut in_chain = false;
    let mut rules = Vec::new();
    for line in ruleset.lines().map(str::trim) {
        if line.starts_with("table ") {
            in_table = line == "table ip ovsnet {";
        } else if in_table && line.starts_with("chain ") {
            in_chain = line == format!("chain {chain} {{");
        } else if line == "}" {
            in_chain = false;
        } else if in_table && in_chain && !line.is_empty() && !line.starts_with("type ") {
            rules.push(line.to_owned());
        }
    }
    rules
}

fn egress(sources: &[(Ipv4Addr, u8)]) -> Egress {
    Egress { bridge: "obr0".into(), sources: sources.to_vec(), published: vec![] }
}

/// The forward chain's rules, the same whatever else the table holds.
const FORWARD: [&str; 4] = [
    "iifname \"obr0\" oifname \"obr0\" drop",
    "oifname \"obr0\" ct state established,related accept",
    "oifname \"obr0\" ct status dnat accept",
    "oifname \"obr0\" drop",
];

const NET_A: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 77, 0, 0), 24);
const NET_B: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 78, 0, 0), 16);

#[test]
fn table_applied_replaced_and_removed() {
    require_nft();
    let ns = Ns::new("nat");
    let fd = ns.fd();

    // From inside the namespace, as callers do.
    netns::run_in(&fd, || nat::apply(&egress(&[NET_A, NET_B]))).expect("enter namespace").expect("apply");
    let first = ns.ruleset();
    assert!(first.contains("table ip ovsnet {"), "{first}");
    assert!(first.contains("type nat hook postrouting priority srcnat; policy accept;"), "{first}");
    assert!(first.contains("type filter hook forward priority filter; policy accept;"), "{first}");
    assert_eq!(
        chain_rules(&first, "postrouting"),
        [
            "ip saddr 10.77.0.0/24 oifname != \"obr0\" masquerade",
            "ip saddr 10.78.0.0/16 oifname != \"obr0\" masquerade",
        ],
        "{first}"
    );
    assert_eq!(chain_rules(&first, "forward"), FORWARD, "{first}");

    // Applying the same again gives the same ruleset.
    nat::apply_in(&fd, &egress(&[NET_A, NET_B])).expect("apply again");
    assert_eq!(ns.ruleset(), first);

    // Fewer sources: the table is replaced, not added to.
    nat::apply_in(&fd, &egress(&[NET_B])).expect("apply one source");
    let second = ns.ruleset();
    assert_eq!(
        chain_rules(&second, "postrouting"),
        ["ip saddr 10.78.0.0/16 oifname != \"obr0\" masquerade"],
        "{second}"
    );
    assert_eq!(second.matches("masquerade").count(), 1, "{second}");
    assert_eq!(second.matches("table ip ovsnet").count(), 1, "{second}");
    assert_eq!(chain_rules(&second, "forward"), FORWARD, "{second}");

    // Bad input is refused before anything is sent: the table stays.
    let bad = nat::apply_in(&fd, &egress(&[(Ipv4Addr::new(10, 0, 0, 0), 33)]));
    assert!(matches!(bad, Err(NatError::BadPrefix { prefix: 33, .. })), "{bad:?}");
    let bad = nat::apply_in(&fd, &Egress { bridge: "no such/bridge".into(), sources: vec![NET_A], published: vec![] });
    assert!(matches!(bad, Err(NatError::BadBridge(_))), "{bad:?}");
    assert_eq!(ns.ruleset(), second);

    // Removed: the table is gone; removing again is no error.
    netns::run_in(&fd, nat::remove).expect("enter namespace").expect("remove");
    let gone = ns.ruleset();
    assert!(!gone.contains("ovsnet"), "{gone}");
    netns::run_in(&fd, nat::remove).expect("enter namespace").expect("remove again");
    nat::remove_in(&fd).expect("remove once more");
    assert!(!ns.ruleset().contains("ovsnet"));
}

#[test]
fn no_sources_still_make_the_table() {
    require_nft();
    let ns = Ns::new("nat0");
    nat::apply_in(ns.fd(), &egress(&[])).expect("apply");
    let rules = ns.ruleset();
    assert!(rules.contains("chain postrouting {"), "{rules}");
    assert!(chain_rules(&rules, "postrouting").is_empty(), "{rules}");
    assert_eq!(chain_rules(&rules, "forward"), FORWARD, "{rules}");
}

#[test]
fn other_tables_are_left_alone() {
    require_nft();
    let ns = Ns::new("natt");
    ns.exec(&["nft", "add", "table", "ip", "other"]).expect("nft add table");
    ns.exec(&["nft", "add", "table", "inet", "ovsnet"]).expect("nft add table");
    nat::apply_in(ns.fd(), &egress(&[NET_A])).expect("apply");
    nat::remove_in(ns.fd()).expect("remove");
    let rules = ns.ruleset();
    assert!(rules.contains("table ip other {") && rules.contains("table inet ovsnet {"), "{rules}");
    assert!(!rules.contains("table ip ovsnet"), "{rules}");
}

/// A batch far larger than one page of libnftnl's batch and than the
/// sockets' default buffers still goes in whole.
#[test]
fn many_sources_in_one_batch() {
    require_nft();
    let ns = Ns::new("natm");
    let sources: Vec<(Ipv4Addr, u8)> = (0..3000u32).map(|i| (Ipv4Addr::from(0x0a40_0000 + i * 4), 30)).collect();
    nat::apply_in(ns.fd(), &egress(&sources)).expect("apply");
    let rules = chain_rules(&ns.ruleset(), "postrouting");
    assert_eq!(rules.len(), 3000);
    assert_eq!(rules[0], "ip saddr 10.64.0.0/30 oifname != \"obr0\" masquerade");
    assert_eq!(rules[2999], "ip saddr 10.64.46.220/30 oifname != \"obr0\" masquerade");
    nat::apply_in(ns.fd(), &egress(&sources[..1])).expect("apply one");
    assert_eq!(chain_rules(&ns.ruleset(), "postrouting").len(), 1);
}

#[test]
fn ip_forward_is_per_namespace() {
    let ns = Ns::new("natf");
    let fd = ns.fd();
    let host_before = nat::ip_forward().expect("read host ip_forward");
    let read = || ns.exec(&["cat", "/proc/sys/net/ipv4/ip_forward"]).expect("cat ip_forward").trim().to_owned();
    // A new namespace may start with the host's setting
    // (net.core.devconf_inherit_init_net): start from off.
    nat::set_ip_forward_in(&fd, false).expect("clear ip_forward");
    assert_eq!(read(), "0");

    netns::run_in(&fd, || nat::set_ip_forward(true)).expect("enter namespace").expect("set ip_forward");
    assert_eq!(read(), "1");
    assert!(nat::ip_forward_in(&fd).expect("read"));
    assert!(netns::run_in(&fd, nat::ip_forward).expect("enter namespace").expect("read"));

    nat::set_ip_forward_in(&fd, false).expect("clear ip_forward");
    assert_eq!(read(), "0");
    assert!(!nat::ip_forward_in(&fd).expect("read"));
    assert_eq!(nat::ip_forward().expect("read host ip_forward"), host_before, "the host's own is untouched");
}

/// A router namespace with the bridge `obr0` (two container networks on
/// it, a client in each) and an uplink to a server namespace that has no
/// route back to the containers' networks. Without NAT the server cannot
/// answer; with it, the allowed network's client reaches the server, and
/// the host no longer routes between the networks on the bridge.
#[test]
fn masquerade_and_isolation_on_the_wire() {
    require_nft();
    let router = Ns::new("natr");
    let a = Ns::new("nata");
    let b = Ns::new("natb");
    let server = Ns::new("nats");
    for ns in [&router, &a, &b, &server] {
        ns.ip(&["link", "set", "lo", "up"]);
    }
    router.ip(&["link", "add", "obr0", "type", "bridge"]);
    router.ip(&["link", "set", "obr0", "up"]);
    router.ip(&["addr", "add", "10.77.0.1/24", "dev", "obr0"]);
    router.ip(&["addr", "add", "10.78.0.1/24", "dev", "obr0"]);
    for (client, port, addr, gateway) in
        [(&a, "pa", "10.77.0.2/24", "10.77.0.1"), (&b, "pb", "10.78.0.2/24", "10.78.0.1")]
    {
        router.ip(&["link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", &client.0]);
        router.ip(&["link", "set", port, "master", "obr0", "up"]);
        client.ip(&["addr", "add", addr, "dev", "eth0"]);
        client.ip(&["link", "set", "eth0", "up"]);
        client.ip(&["route", "add", "default", "via", gateway]);
    }
    router.ip(&["link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", &server.0]);
    router.ip(&["addr", "add", "198.51.100.1/24", "dev", "up0"]);
    router.ip(&["link", "set", "up0", "up"]);
    server.ip(&["addr", "add", "198.51.100.2/24", "dev", "eth0"]);
    server.ip(&["link", "set", "eth0", "up"]);
    let rfd = router.fd();
    nat::set_ip_forward_in(&rfd, true).expect("ip_forward");

    // Routed, not masqueraded: the server has no way back; the clients
    // reach each other through the router.
    assert!(router.pings("198.51.100.2"), "the uplink works");
    assert!(!a.pings("198.51.100.2"), "no NAT yet, yet the server answered");
    assert!(a.pings("10.78.0.2"), "a reaches b through the router");

    nat::apply_in(&rfd, &egress(&[NET_A])).expect("apply");
    assert!(a.pings("198.51.100.2"), "a's network is masqueraded");
    assert!(!b.pings("198.51.100.2"), "b's network is not among the sources");
    assert!(!a.pings("10.78.0.2"), "the router still routes from obr0 to obr0");
    assert!(!b.pings("10.77.0.2"), "the router still routes from obr0 to obr0");

    nat::remove_in(&rfd).expect("remove");
    assert!(!a.pings("198.51.100.2"), "NAT is gone, yet the server answered");
    assert!(a.pings("10.78.0.2"), "routing between the networks is back");
}

fn dnat(port: &str, to: &str) -> Dnat {
    Dnat { port: port.parse().expect("published port"), to: to.parse().expect("address") }
}

#[test]
fn published_ports_make_their_chains() {
    require_nft();
    let ns = Ns::new("natp");
    let mut e = egress(&[NET_A]);
    e.published = vec![dnat("8080:80", "10.77.0.2"), dnat("192.0.2.9:5353:53/udp", "10.77.0.3")];
    nat::apply_in(ns.fd(), &e).expect("apply");
    let rules = ns.ruleset();
    assert!(rules.contains("type nat hook prerouting priority dstnat; policy accept;"), "{rules}");
    assert!(rules.contains("type nat hook output priority -100; policy accept;"), "{rules}");
    assert_eq!(
        chain_rules(&rules, "prerouting"),
        [
            "iifname != \"obr0\" fib daddr type local tcp dport 8080 dnat to 10.77.0.2:80",
            "iifname != \"obr0\" ip daddr 192.0.2.9 udp dport 5353 dnat to 10.77.0.3:53",
        ],
        "{rules}"
    );
    assert_eq!(
        chain_rules(&rules, "output"),
        [
            "ip daddr != 127.0.0.0/8 fib daddr type local tcp dport 8080 dnat to 10.77.0.2:80",
            "ip daddr 192.0.2.9 udp dport 5353 dnat to 10.77.0.3:53",
        ],
        "{rules}"
    );
    assert_eq!(chain_rules(&rules, "forward"), FORWARD, "{rules}");

    // A loopback host address is refused, and nothing changes.
    let mut bad = e.clone();
    bad.published.push(dnat("127.0.0.1:8081:80", "10.77.0.2"));
    let err = nat::apply_in(ns.fd(), &bad).expect_err("loopback");
    assert!(matches!(err, NatError::LoopbackPublish(_)), "{err:?}");
    assert_eq!(ns.ruleset(), rules);
}

/// A router namespace with the bridge `obr0` and a container network on
/// it, and an outside namespace on its uplink that routes the containers'
/// network through it. A published port is reached from outside and from
/// the router itself, and answers from the container's address; an
/// unpublished port and the container's own address are not reached.
#[test]
fn published_ports_on_the_wire() {
    require_nft();
    let router = Ns::new("natq");
    let a = Ns::new("natqa");
    let outside = Ns::new("natqo");
    for ns in [&router, &a, &outside] {
        ns.ip(&["link", "set", "lo", "up"]);
    }
    router.ip(&["link", "add", "obr0", "type", "bridge"]);
    router.ip(&["link", "set", "obr0", "up"]);
    router.ip(&["addr", "add", "10.77.0.1/24", "dev", "obr0"]);
    router.ip(&["link", "add", "pa", "type", "veth", "peer", "name", "eth0", "netns", &a.0]);
    router.ip(&["link", "set", "pa", "master", "obr0", "up"]);
    a.ip(&["addr", "add", "10.77.0.2/24", "dev", "eth0"]);
    a.ip(&["link", "set", "eth0", "up"]);
    a.ip(&["route", "add", "default", "via", "10.77.0.1"]);
    router.ip(&["link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", &outside.0]);
    router.ip(&["addr", "add", "198.51.100.1/24", "dev", "up0"]);
    router.ip(&["link", "set", "up0", "up"]);
    outside.ip(&["addr", "add", "198.51.100.2/24", "dev", "eth0"]);
    outside.ip(&["link", "set", "eth0", "up"]);
    // The outside could reach the containers' addresses if the host let it.
    outside.ip(&["route", "add", "10.77.0.0/24", "via", "198.51.100.1"]);
    let rfd = router.fd();
    nat::set_ip_forward_in(&rfd, true).expect("ip_forward");

    let service = tcp_echo_server(&a.0, "10.77.0.2:80".parse().expect("address"));
    let _other = tcp_echo_server(&a.0, "10.77.0.2:81".parse().expect("address"));
    let published: std::net::SocketAddrV4 = "198.51.100.1:8080".parse().expect("address");
    let unpublished: std::net::SocketAddrV4 = "198.51.100.1:8081".parse().expect("address");
    let direct: std::net::SocketAddrV4 = "10.77.0.2:81".parse().expect("address");
    let t = std::time::Duration::from_secs(1);
    assert!(connect_from(&outside.0, direct, t).is_ok(), "routed without the table");

    let mut e = egress(&[NET_A]);
    e.published = vec![dnat("8080:80", "10.77.0.2")];
    nat::apply_in(&rfd, &e).expect("apply");

    let mut conn = connect_from(&outside.0, published, t).expect("the published port from outside");
    assert!(echo(&mut conn, b"in and back"), "echo through the published port");
    let peer = service.recv_timeout(std::time::Duration::from_secs(5)).expect("the service saw the connection");
    assert_eq!(peer.ip().to_string(), "198.51.100.2", "the service sees the client's own address");
    assert!(connect_from(&outside.0, unpublished, t).is_err(), "an unpublished port of the host was reached");
    assert!(connect_from(&outside.0, direct, t).is_err(), "a container was reached without a published port");

    // From the router itself, to its own address.
    let mut local = connect_from(&router.0, published, t).expect("the published port from the host");
    assert!(echo(&mut local, b"from the host"), "echo from the host");

    // Taken away: the port is closed again.
    nat::apply_in(&rfd, &egress(&[NET_A])).expect("apply without");
    assert!(connect_from(&outside.0, published, t).is_err(), "the port is still published");
}
