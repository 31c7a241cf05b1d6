//! The multi-host proofs against a real 3-host lab in agent mode (each
//! host its own Open vSwitch, an `ovsnet agent` per host following a
//! 3-member Raft cluster database):
//!
//! - a removed endpoint disappears from every host's flows, and its
//!   Endpoint row from the cluster (by `detach --cluster-db`, or by the
//!   host's agent when the port is simply gone);
//! - no ARP crosses a tunnel: the ARP responder flows count the requests,
//!   and a capture on the underlay sees encapsulated IPv4 and no
//!   encapsulated ARP (VXLAN, GRE, Geneve);
//! - with one of the 3 database members killed (the Raft leader), a new
//!   endpoint is still allocated and reached from every host, and
//!   `lab down` still removes everything.

#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{connect_from, echo, tcp_echo_server};
use ovsnet::cluster::{ClusterDb, ClusterState, Ipam, NetworkSpec};
use ovsnet::lab::{self, LabHost, LabOptions, LabRecord, probe};
use ovsnet::net::IpNet;
use ovsnet::ovsdb::ConnectOptions;
use ovsnet::vswitch::spec::TunnelType;

/// A lab taken down on drop (also when a test panics).
struct Lab {
    rec: Option<LabRecord>,
    root: PathBuf,
    name: String,
    _tmp: tempfile::TempDir,
}

impl Lab {
    fn up(hosts: usize, containers: usize, tunnel: TunnelType) -> Option<Lab> {
        Lab::up_with(hosts, containers, tunnel, false)
    }

    /// [`Lab::up`], with the outside namespace (`lab up --outside`) or not.
    fn up_with(hosts: usize, containers: usize, tunnel: TunnelType, outside: bool) -> Option<Lab> {
        if let Err(e) = ovsnet::sandbox::ovs_installed() {
            assert!(!common::strict(), "CI=true and Open vSwitch is missing: {e}");
            eprintln!("skipping: {e}");
            return None;
        }
        let tmp = tempfile::tempdir().unwrap();
        let name = common::unique_name("mp");
        let opts = LabOptions {
            name: name.clone(),
            hosts,
            containers,
            tunnel,
            cluster_members: if hosts >= 3 { 3 } else { 1 },
            state_root: tmp.path().to_owned(),
            agents: true,
            agent_exe: Some(PathBuf::from(env!("CARGO_BIN_EXE_ovsnet"))),
            docker: false,
            outside,
        };
        let mut lab = Lab { rec: None, root: tmp.path().to_owned(), name, _tmp: tmp };
        lab.rec = Some(rt().block_on(lab::up(&opts)).expect("lab up"));
        Some(lab)
    }

    fn rec(&self) -> &LabRecord {
        self.rec.as_ref().unwrap()
    }

    fn remotes(&self) -> String {
        self.rec().cluster_db.clone().unwrap()
    }

    fn host(&self, name: &str) -> &LabHost {
        self.rec().host(name).unwrap()
    }

    /// Runs `ovsnet ARGS` as an operator on `host` would: against that
    /// host's Open vSwitch, with its switch namespace.
    fn ovsnet(&self, host: &str, args: &[&str]) -> Output {
        let h = self.host(host);
        Command::new(env!("CARGO_BIN_EXE_ovsnet"))
            .arg("--db")
            .arg(format!("unix:{}", h.dir.join("db.sock").display()))
            .args(["--netns", &h.netns])
            .args(args)
            .env_remove("OVSNET_CLUSTER_DB")
            .env_remove("OVSNET_HOST_NAME")
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .output()
            .unwrap()
    }

    fn ovsnet_ok(&self, host: &str, args: &[&str]) -> String {
        let out = self.ovsnet(host, args);
        assert!(
            out.status.success(),
            "ovsnet {args:?} on {host}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            agent_log(self.rec())
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A container namespace of the test's own (removed on drop), named
    /// after the lab so parallel tests never collide.
    fn container(&self, suffix: &str) -> NsGuard {
        let name = format!("{}-{suffix}", self.name);
        ovsnet::netns::create(&name).unwrap();
        NsGuard(name)
    }

    fn cluster_state(&self) -> ClusterState {
        let remotes = self.remotes();
        rt().block_on(async move {
            let db = ClusterDb::connect(&remotes, &copts()).await.unwrap();
            db.state().await.unwrap()
        })
    }

    fn create_static_network(&self, name: &str, cidr: &str) {
        let remotes = self.remotes();
        let spec = NetworkSpec {
            name: name.into(),
            cidr: IpNet::parse_network(cidr).unwrap(),
            vni: None,
            ipam: Ipam::Static,
            mtu: None,
            block_prefix: None,
            underlay: None,
            gateway: None,
            internal: false,
            dns_forward: true,
        };
        rt().block_on(async move {
            let db = ClusterDb::connect(&remotes, &copts()).await.unwrap();
            db.create_network(&spec).await.unwrap();
        });
    }

    /// Attaches a container namespace on `host` through the cluster;
    /// returns its address.
    fn attach_in_cluster(&self, host: &str, ns: &str, network: &str) -> Ipv4Addr {
        self.attach_in_cluster_with(host, ns, network, &[])
    }

    /// [`Lab::attach_in_cluster`] with more options for `attach`.
    fn attach_in_cluster_with(&self, host: &str, ns: &str, network: &str, extra: &[&str]) -> Ipv4Addr {
        let container = format!("netns:{ns}");
        let args = self.attach_args(host, &container, network, extra);
        self.ovsnet_ok(host, &args.iter().map(String::as_str).collect::<Vec<_>>());
        // The row is there once attach answers, unless the host's agent,
        // just started, swept it as stale before the port existed; it
        // publishes it again as soon as it sees the port.
        let mut ip = None;
        wait_for(
            10,
            &format!("the Endpoint row of {container}"),
            || {
                ip = endpoint_ip(&self.cluster_state(), network, &container);
                ip.is_some()
            },
            || agent_log(self.rec()),
        );
        ip.unwrap_or_else(|| panic!("no endpoint for {container}"))
    }

    /// Starts `host`'s agent again (its log starts afresh); returns its pid.
    fn restart_agent(&mut self, host: &str, tunnel: TunnelType) -> i32 {
        let remotes = self.remotes();
        let rec = self.rec.as_mut().unwrap();
        let h = rec.host(host).unwrap().clone();
        lab::start_agent(rec, &h, Path::new(env!("CARGO_BIN_EXE_ovsnet")), &remotes, tunnel, false).unwrap()
    }

    /// `attach BRIDGE CONTAINER --network NETWORK` in the cluster, as `host`.
    fn attach_args(&self, host: &str, container: &str, network: &str, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = ["attach", lab::BRIDGE, container, "--network", network, "--cluster-db"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        args.extend([self.remotes(), "--host-name".to_owned(), host.to_owned()]);
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        args
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Also after a failed `up`: the lab records what it made as it
        // goes, and `down` removes that.
        let _ = lab::down(&self.root, &self.name);
    }
}

struct NsGuard(String);
impl Drop for NsGuard {
    fn drop(&mut self) {
        let _ = ovsnet::netns::delete(&self.0);
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn copts() -> ConnectOptions {
    ConnectOptions { timeout: Duration::from_secs(20), ..Default::default() }
}

fn agent_log(rec: &LabRecord) -> String {
    rec.hosts
        .iter()
        .map(|h| format!("--- {}\n{}", h.name, std::fs::read_to_string(h.dir.join("agent.log")).unwrap_or_default()))
        .collect()
}

/// The address of `container`'s endpoint in `network`.
fn endpoint_ip(st: &ClusterState, network: &str, container: &str) -> Option<Ipv4Addr> {
    let net = st.networks.get(network)?;
    st.endpoints_of(net).find(|e| e.container == container).and_then(|e| match e.ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    })
}

fn has_endpoint(st: &ClusterState, network: &str, ip: Ipv4Addr) -> bool {
    st.networks.get(network).is_some_and(|n| st.endpoints_of(n).any(|e| e.ip == IpAddr::V4(ip)))
}

/// The flows of a host's `obr0`, as `ovs-ofctl` reads them from the switch.
fn dump_flows(h: &LabHost) -> String {
    let out = Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow13", "--no-names", "dump-flows"])
        .arg(format!("unix:{}", h.dir.join(format!("{}.mgmt", lab::BRIDGE)).display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "ovs-ofctl dump-flows on {}: {}", h.name, String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The MAC ovsnet derives from an address, as ovs-ofctl prints it.
fn mac_of(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("0a:58:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

/// The flow lines that name `ip` (as an address, not a prefix of another) or its MAC.
fn mentions(flows: &str, ip: Ipv4Addr) -> Vec<String> {
    let mac = mac_of(ip);
    let ip = ip.to_string();
    flows
        .lines()
        .filter(|l| l.contains(&mac) || l.split(|c: char| !(c.is_ascii_digit() || c == '.')).any(|tok| tok == ip))
        .map(str::to_owned)
        .collect()
}

fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool, diag: impl Fn() -> String) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(secs), "timed out after {secs}s waiting for {what}\n{}", diag());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ping(from_ns: &str, to: Ipv4Addr, timeout: Duration) -> bool {
    let ns = ovsnet::netns::open(from_ns).unwrap();
    probe::ping(&ns, to, timeout).unwrap().is_some()
}

// ---------------------------------------------------------------------------
// A host gone for good is forgotten with `ovsnet host del`.

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The host's tunnel destination as the other hosts' flows name it.
fn tunnel_to(h: &LabHost) -> String {
    format!("{}->tun_dst", h.underlay_ip)
}

#[test]
fn a_host_gone_for_good_is_forgotten_and_a_live_one_is_refused() {
    let Some(lab) = Lab::up(3, 1, TunnelType::Vxlan) else { return };
    let rec = lab.rec();
    let remotes = lab.remotes();
    let all = || {
        rec.hosts.iter().map(|h| format!("--- {} flows\n{}", h.name, dump_flows(h))).collect::<String>()
            + &agent_log(rec)
    };
    let host_cmd = |args: &[&str]| -> Output {
        let mut a = vec!["host"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["--cluster-db", &remotes]);
        lab.ovsnet("h1", &a)
    };
    let (h2, h3) = (lab.host("h2"), lab.host("h3"));
    let c3 = rec.containers.iter().find(|c| c.host == "h3").unwrap();
    let h1 = &rec.hosts[0];
    wait_for(15, "h1's flows towards h3", || dump_flows(h1).contains(&tunnel_to(h3)), all);

    // list: every host, its promise to answer probes, its Fan block and
    // endpoint.
    let out = lab.ovsnet_ok("h1", &["--format", "json", "host", "list", "--cluster-db", &remotes]);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["h1", "h2", "h3"], "{out}");
    for h in list.as_array().unwrap() {
        assert_eq!(h["host"]["probe_timeout"], 2000, "{h}");
        assert_eq!(h["host"]["heartbeat_interval"], 0, "{h}");
        assert_eq!(h["endpoints"], 1, "{h}");
        assert_eq!(h["blocks"].as_array().unwrap().len(), 1, "{h}");
    }

    // A live host is refused, in one line, and nothing is removed.
    let out = host_cmd(&["del", "h3"]);
    let err = stderr_of(&out);
    assert!(!out.status.success(), "a live host was removed");
    assert!(err.contains("h3 is alive") && err.contains("--force"), "{err}");
    assert_eq!(err.lines().filter(|l| l.starts_with("ovsnet: ") && !l.contains("asking")).count(), 1, "{err}");
    let st = lab.cluster_state();
    assert!(st.hosts.contains_key("h3") && st.endpoints.iter().any(|e| e.host == "h3"));

    // Its agent stops for good: del's probe goes unanswered, then it
    // removes the host, its endpoint, and the other hosts' flows towards it.
    ovsnet::process::kill_pid(lab::agent_pid(&h3.dir).unwrap());
    let out = host_cmd(&["del", "h3"]);
    assert!(out.status.success(), "{}\n{}", stderr_of(&out), all());
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(said.trim(), "removed host h3: 0 block(s), 1 endpoint(s)", "{said}");
    let st = lab.cluster_state();
    assert!(!st.hosts.contains_key("h3") && !st.endpoints.iter().any(|e| e.host == "h3"), "{st:?}");
    for h in [h1, h2] {
        wait_for(
            15,
            &format!("{} to drop its flows towards h3", h.name),
            || {
                let f = dump_flows(h);
                !f.contains(&tunnel_to(h3)) && mentions(&f, c3.ip).is_empty()
            },
            all,
        );
    }
    // Again: nothing left to remove is an error, unless --if-exists.
    let out = host_cmd(&["del", "h3"]);
    assert!(!out.status.success() && stderr_of(&out).contains("no host h3"), "{}", stderr_of(&out));
    let out = host_cmd(&["del", "h3", "--if-exists"]);
    assert!(out.status.success() && out.stdout.is_empty(), "{}", stderr_of(&out));

    // --force on a live host: its agent registers it again and republishes
    // its endpoint, and h1 reaches h2's container again.
    let c1 = rec.containers.iter().find(|c| c.host == "h1").unwrap();
    let c2 = rec.containers.iter().find(|c| c.host == "h2").unwrap();
    let out = host_cmd(&["del", "h2", "--force"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    wait_for(
        20,
        "h2 registered again with its endpoint",
        || {
            let st = lab.cluster_state();
            st.hosts.contains_key("h2") && st.endpoints.iter().any(|e| e.host == "h2" && e.ip == IpAddr::V4(c2.ip))
        },
        all,
    );
    wait_for(15, "h1's flows towards h2 again", || dump_flows(h1).contains(&tunnel_to(h2)), all);
    assert!(ping(&c1.netns, c2.ip, Duration::from_secs(5)), "h1's container no longer reaches h2's\n{}", all());
}

// ---------------------------------------------------------------------------
// A removed endpoint disappears from every host's flows.

#[test]
fn a_removed_endpoint_disappears_from_every_hosts_flows() {
    let Some(lab) = Lab::up(3, 1, TunnelType::Vxlan) else { return };
    let rec = lab.rec();
    let all = || {
        rec.hosts.iter().map(|h| format!("--- {} flows\n{}", h.name, dump_flows(h))).collect::<String>()
            + &agent_log(rec)
    };

    // A static network: every other host has one flow per remote endpoint.
    lab.create_static_network("st", "10.99.0.0/24");
    let s1 = lab.container("s1");
    let ip = lab.attach_in_cluster("h1", &s1.0, "st");
    for h in &rec.hosts {
        wait_for(15, &format!("{ip} in {}'s flows", h.name), || !mentions(&dump_flows(h), ip).is_empty(), all);
    }
    // On h2 and h3 it is a remote endpoint: its MAC, sent over the tunnel.
    for h in &rec.hosts[1..] {
        let f = mentions(&dump_flows(h), ip);
        assert!(f.iter().any(|l| l.contains("tun_dst") || l.contains("tun_id")), "{}: {f:?}", h.name);
    }

    // detach --cluster-db: the port goes, then its Endpoint row.
    let out = lab.ovsnet_ok(
        "h1",
        &["detach", lab::BRIDGE, &format!("netns:{}", s1.0), "--cluster-db", &lab.remotes(), "--host-name", "h1"],
    );
    assert!(out.contains("detached"), "{out}");
    assert!(!has_endpoint(&lab.cluster_state(), "st", ip), "the row outlived detach --cluster-db");
    for h in &rec.hosts {
        wait_for(15, &format!("{ip} gone from {}'s flows", h.name), || mentions(&dump_flows(h), ip).is_empty(), all);
    }

    // The cluster database unreachable: detach still removes the port,
    // says in one line that the row remains, and h3's agent removes it.
    let s3 = lab.container("s3");
    let ip3 = lab.attach_in_cluster("h3", &s3.0, "st");
    wait_for(15, &format!("{ip3} on h1"), || !mentions(&dump_flows(&rec.hosts[0]), ip3).is_empty(), all);
    let out = lab.ovsnet(
        "h3",
        &[
            "detach",
            lab::BRIDGE,
            &format!("netns:{}", s3.0),
            "--cluster-db",
            "unix:/nonexistent/ovsnet.sock",
            "--host-name",
            "h3",
            "--timeout",
            "1",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "detach should report the row left behind");
    assert!(err.contains("port is gone") && err.contains(&ip3.to_string()) && err.contains("agent"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    wait_for(15, "h3's agent to remove the row", || !has_endpoint(&lab.cluster_state(), "st", ip3), all);
    for h in &rec.hosts {
        wait_for(15, &format!("{ip3} gone from {}'s flows", h.name), || mentions(&dump_flows(h), ip3).is_empty(), all);
    }

    // A port deleted by hand (ovs-vsctl del-port): h2's agent removes the row.
    let s2 = lab.container("s2");
    let ip2 = lab.attach_in_cluster("h2", &s2.0, "st");
    wait_for(15, &format!("{ip2} on h1"), || !mentions(&dump_flows(&rec.hosts[0]), ip2).is_empty(), all);
    let db = format!("--db=unix:{}", lab.host("h2").dir.join("db.sock").display());
    let vsctl = |args: &[&str]| {
        let out = Command::new("ovs-vsctl").arg(&db).args(args).output().unwrap();
        assert!(out.status.success(), "ovs-vsctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let port = vsctl(&["--bare", "--columns=name", "find", "Port", &format!("external_ids:ovsnet-addr={ip2}")]);
    assert!(!port.is_empty() && !port.contains('\n'), "{port:?}");
    vsctl(&["del-port", lab::BRIDGE, &port]);
    wait_for(
        15,
        "h2's agent to remove the row of a port deleted by hand",
        || !has_endpoint(&lab.cluster_state(), "st", ip2),
        all,
    );
    for h in &rec.hosts {
        wait_for(15, &format!("{ip2} gone from {}'s flows", h.name), || mentions(&dump_flows(h), ip2).is_empty(), all);
    }

    // The lab's Fan network: remote hosts hold one flow for h1's whole
    // block, so the endpoint's own flows on h1 go, and so does the answer.
    let c = rec.containers.iter().find(|c| c.host == "h1").unwrap();
    let from = rec.containers.iter().find(|c| c.host == "h2").unwrap();
    assert!(ping(&from.netns, c.ip, Duration::from_secs(5)), "{} does not reach {} before detach", from.name, c.name);
    assert!(!mentions(&dump_flows(&rec.hosts[0]), c.ip).is_empty());
    // Detached without --cluster-db: h1's agent sees the port gone and removes the row.
    let out = lab.ovsnet_ok("h1", &["detach", lab::BRIDGE, &format!("netns:{}", c.netns)]);
    assert!(out.contains("detached"), "{out}");
    wait_for(
        15,
        "h1's agent to remove the Fan endpoint's row",
        || !has_endpoint(&lab.cluster_state(), lab::LAB_NETWORK, c.ip),
        all,
    );
    wait_for(15, "the endpoint's flows gone from h1", || mentions(&dump_flows(&rec.hosts[0]), c.ip).is_empty(), all);
    for other in rec.containers.iter().filter(|o| o.host != "h1") {
        assert!(
            !ping(&other.netns, c.ip, Duration::from_millis(600)),
            "{} still reaches {} after detach",
            other.name,
            c.ip
        );
    }
    // The others still reach each other.
    assert!(ping(&from.netns, rec.containers.iter().find(|c| c.host == "h3").unwrap().ip, Duration::from_secs(5)));
}

// ---------------------------------------------------------------------------
// No ARP crosses a tunnel.

/// Counting what crosses the underlay: an AF_PACKET socket opened in the
/// underlay namespace sees every frame on every port of `ul0`.
mod capture {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    pub const ETH_IPV4: u16 = 0x0800;
    pub const ETH_ARP: u16 = 0x0806;
    const ETH_VLAN: u16 = 0x8100;
    const ETH_TEB: u16 = 0x6558;
    const UDP_VXLAN: u16 = 4789;
    const UDP_GENEVE: u16 = 6081;

    /// The encapsulation of a frame seen on the underlay.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Encap {
        Vxlan,
        Gre,
        Geneve,
    }

    /// Encapsulated frames seen, by encapsulation and inner ethertype.
    #[derive(Debug, Default, Clone, PartialEq, Eq)]
    pub struct Counts {
        pub frames: u64,
        pub vxlan: u64,
        pub gre: u64,
        pub geneve: u64,
        pub inner_ipv4: u64,
        pub inner_arp: u64,
        pub inner_other: u64,
    }

    impl Counts {
        pub fn add(&mut self, frame: &[u8]) {
            self.frames += 1;
            let Some((encap, ethertype)) = inner_ethertype(frame) else { return };
            match encap {
                Encap::Vxlan => self.vxlan += 1,
                Encap::Gre => self.gre += 1,
                Encap::Geneve => self.geneve += 1,
            }
            match ethertype {
                ETH_IPV4 => self.inner_ipv4 += 1,
                ETH_ARP => self.inner_arp += 1,
                _ => self.inner_other += 1,
            }
        }
    }

    fn be16(b: &[u8], at: usize) -> Option<u16> {
        Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
    }

    /// An Ethernet frame's ethertype and payload (one VLAN tag skipped).
    fn ethernet(frame: &[u8]) -> Option<(u16, &[u8])> {
        let t = be16(frame, 12)?;
        if t == ETH_VLAN {
            return Some((be16(frame, 16)?, frame.get(18..)?));
        }
        Some((t, frame.get(14..)?))
    }

    /// For an encapsulated frame (outer Ethernet, IPv4, then VXLAN on UDP
    /// 4789, Geneve on UDP 6081 or GRE carrying transparent Ethernet
    /// 0x6558): the encapsulation and the inner frame's ethertype.
    pub fn inner_ethertype(frame: &[u8]) -> Option<(Encap, u16)> {
        let (t, ip) = ethernet(frame)?;
        if t != ETH_IPV4 || ip.first()? >> 4 != 4 {
            return None;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        // Only a packet's first fragment holds the inner header.
        if be16(ip, 6)? & 0x1fff != 0 {
            return None;
        }
        let proto = *ip.get(9)?;
        let l4 = ip.get(ihl..)?;
        let (encap, inner) = match proto {
            17 => {
                let dport = be16(l4, 2)?;
                let udp = l4.get(8..)?;
                match dport {
                    UDP_VXLAN => (Encap::Vxlan, udp.get(8..)?),
                    UDP_GENEVE => {
                        // Options length in 4-byte words; then the protocol type.
                        let opt = usize::from(udp.first()? & 0x3f) * 4;
                        if be16(udp, 2)? != ETH_TEB {
                            return None;
                        }
                        (Encap::Geneve, udp.get(8 + opt..)?)
                    }
                    _ => return None,
                }
            }
            47 => {
                let flags = be16(l4, 0)?;
                if be16(l4, 2)? != ETH_TEB {
                    return None;
                }
                // Checksum (+reserved), key and sequence number, each 4 bytes when flagged.
                let len = 4 + [0x8000u16, 0x2000, 0x1000].iter().filter(|f| flags & **f != 0).count() * 4;
                (Encap::Gre, l4.get(len..)?)
            }
            _ => return None,
        };
        Some((encap, ethernet(inner)?.0))
    }

    /// A capture running on a thread until [`Capture::stop`].
    pub struct Capture {
        stop: Arc<AtomicBool>,
        thread: std::thread::JoinHandle<Counts>,
    }

    impl Capture {
        /// Opens an AF_PACKET socket for every protocol inside namespace
        /// `ns` (every interface of it) and counts what it sees.
        pub fn start(ns: &str) -> Capture {
            let nsfd = ovsnet::netns::open(ns).unwrap();
            let fd = ovsnet::netns::run_in(&nsfd, || {
                // SAFETY: plain socket(2); the fd is owned right away.
                let fd = unsafe {
                    libc::socket(
                        libc::AF_PACKET,
                        libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                        i32::from((libc::ETH_P_ALL as u16).to_be()),
                    )
                };
                assert!(fd >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
                // SAFETY: fd is a fresh, valid descriptor we own.
                unsafe { OwnedFd::from_raw_fd(fd) }
            })
            .unwrap();
            let tv = libc::timeval { tv_sec: 0, tv_usec: 50_000 };
            // SAFETY: a timeval of the right size for SO_RCVTIMEO.
            let r = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&tv as *const libc::timeval).cast(),
                    std::mem::size_of::<libc::timeval>() as libc::socklen_t,
                )
            };
            assert_eq!(r, 0, "SO_RCVTIMEO");
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            let thread = std::thread::spawn(move || {
                let mut counts = Counts::default();
                let mut buf = vec![0u8; 65536];
                // Until stopped and drained: frames queued while this
                // thread waited for a core (a loaded machine) still count.
                loop {
                    // SAFETY: buf is valid for buf.len() bytes.
                    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
                    if n > 0 {
                        counts.add(&buf[..n as usize]);
                    } else if flag.load(Ordering::Relaxed) {
                        break;
                    }
                }
                counts
            });
            Capture { stop, thread }
        }

        pub fn stop(self) -> Counts {
            self.stop.store(true, Ordering::Relaxed);
            self.thread.join().unwrap()
        }
    }
}

#[test]
fn the_capture_parser_reads_inner_ethertypes() {
    use capture::{Encap, inner_ethertype};
    let inner = |t: u16| {
        let mut f = vec![0x0a, 0x58, 10, 0, 2, 1, 0x0a, 0x58, 10, 0, 1, 1];
        f.extend_from_slice(&t.to_be_bytes());
        f.extend_from_slice(&[0; 28]);
        f
    };
    let outer = |proto: u8, l4: Vec<u8>| {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        // IPv4: version 4, IHL 5, flags DF, no fragment offset, protocol.
        f.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0, 172, 30, 0, 1, 172, 30, 0, 2]);
        f.extend(l4);
        f
    };
    // VXLAN: UDP to 4789, 8-byte VXLAN header (I flag, VNI).
    let mut udp = vec![0x12, 0x34, 0x12, 0xb5, 0, 0, 0, 0, 0x08, 0, 0, 0, 0, 0, 1, 0];
    udp.extend(inner(0x0806));
    assert_eq!(inner_ethertype(&outer(17, udp)), Some((Encap::Vxlan, 0x0806)));
    // GRE with a key (K flag), transparent Ethernet bridging.
    let mut gre = vec![0x20, 0x00, 0x65, 0x58, 0, 0, 0, 1];
    gre.extend(inner(0x0800));
    assert_eq!(inner_ethertype(&outer(47, gre)), Some((Encap::Gre, 0x0800)));
    // Geneve with 4 bytes of options: UDP to 6081.
    let mut gnv = vec![0x12, 0x34, 0x17, 0xc1, 0, 0, 0, 0, 0x01, 0, 0x65, 0x58, 0, 0, 1, 0, 1, 2, 3, 4];
    gnv.extend(inner(0x0806));
    assert_eq!(inner_ethertype(&outer(17, gnv)), Some((Encap::Geneve, 0x0806)));
    // Plain ARP on the underlay, other UDP, a truncated frame: not encapsulated.
    assert_eq!(inner_ethertype(&inner(0x0806)), None);
    assert_eq!(inner_ethertype(&outer(17, vec![0, 53, 0, 53, 0, 0, 0, 0])), None);
    assert_eq!(inner_ethertype(&outer(47, vec![0x20])), None);
}

/// n_packets of each host's ARP responder flows (table 20, ARP requests).
fn arp_responder_packets(h: &LabHost) -> u64 {
    dump_flows(h)
        .lines()
        .filter(|l| l.contains("table=20") && l.contains("arp_op=1"))
        .filter_map(|l| l.split("n_packets=").nth(1)?.split(',').next()?.parse::<u64>().ok())
        .sum()
}

fn no_arp_crosses_the_tunnel(tunnel: TunnelType, encap: capture::Encap) {
    let Some(lab) = Lab::up(3, 1, tunnel) else { return };
    let rec = lab.rec();
    // Cold ARP caches: `lab up` already pinged every pair.
    for c in &rec.containers {
        let out = Command::new("ip").args(["-n", &c.netns, "neigh", "flush", "all"]).output().unwrap();
        assert!(out.status.success(), "flush {}: {}", c.netns, String::from_utf8_lossy(&out.stderr));
        let left =
            Command::new("ip").args(["-n", &c.netns, "-4", "neigh", "show", "nud", "reachable"]).output().unwrap();
        assert!(String::from_utf8_lossy(&left.stdout).trim().is_empty(), "{}", String::from_utf8_lossy(&left.stdout));
    }
    let before: Vec<u64> = rec.hosts.iter().map(arp_responder_packets).collect();
    let cap = capture::Capture::start(&format!("{}-ul", lab.name));
    let m = lab::reachability(rec, Duration::from_secs(5)).unwrap();
    let counts = cap.stop();
    assert!(m.all_reachable(), "unreachable: {:?}\n{}", m.unreachable_pairs(), agent_log(rec));
    // Each container asked for every other container's address. Flow
    // counters come from the datapath's flow stats a moment later: poll.
    let now = || rec.hosts.iter().map(arp_responder_packets).collect::<Vec<u64>>();
    wait_for(
        10,
        "the ARP responder flows' n_packets to rise on every host",
        || now().iter().zip(&before).all(|(a, b)| *a >= b + 2),
        || format!("before {before:?} now {:?}", now()),
    );
    let after = now();
    eprintln!("{tunnel:?}: ARP responder n_packets before {before:?} after {after:?}; underlay {counts:?}");
    let seen = match encap {
        capture::Encap::Vxlan => counts.vxlan,
        capture::Encap::Gre => counts.gre,
        capture::Encap::Geneve => counts.geneve,
    };
    assert!(seen > 0 && counts.inner_ipv4 > 0, "no encapsulated IPv4 seen: {counts:?}");
    assert_eq!(counts.inner_arp, 0, "ARP crossed a tunnel: {counts:?}");
}

#[test]
fn no_arp_crosses_a_vxlan_tunnel() {
    no_arp_crosses_the_tunnel(TunnelType::Vxlan, capture::Encap::Vxlan);
}

#[test]
fn no_arp_crosses_a_gre_tunnel() {
    no_arp_crosses_the_tunnel(TunnelType::Gre, capture::Encap::Gre);
}

#[test]
fn no_arp_crosses_a_geneve_tunnel() {
    no_arp_crosses_the_tunnel(TunnelType::Geneve, capture::Encap::Geneve);
}

// ---------------------------------------------------------------------------
// Kill one of the 3 database members: new endpoints still reach every host.

/// The member (1-based) that says it is the Raft leader.
fn leader(remotes: &str) -> Option<usize> {
    let st = rt().block_on(ovsnet::cluster::server::status(remotes, &copts())).unwrap();
    st.iter().position(|m| m.leader == Some(true)).map(|i| i + 1)
}

fn pings_all(from: &[String], to: Ipv4Addr) -> bool {
    from.iter().all(|ns| ping(ns, to, Duration::from_millis(500)))
}

#[test]
fn with_a_database_member_killed_new_endpoints_reach_every_host() {
    let Some(mut lab) = Lab::up(3, 1, TunnelType::Vxlan) else { return };
    let rec = lab.rec().clone();
    let all = || agent_log(&rec);
    let cdir = rec.dir.join("cluster");

    // A static network with one container on each host: remote endpoints
    // there are individual flows, learnt from the cluster.
    lab.create_static_network("st", "10.98.0.0/24");
    let st_ns: Vec<NsGuard> = (1..=3).map(|i| lab.container(&format!("s{i}"))).collect();
    for (i, ns) in st_ns.iter().enumerate() {
        lab.attach_in_cluster(&format!("h{}", i + 1), &ns.0, "st");
    }

    // Kill the Raft leader (SIGKILL, by the pid its pidfile records).
    let remotes = lab.remotes();
    let mut n = None;
    wait_for(
        10,
        "a Raft leader",
        || {
            n = leader(&remotes);
            n.is_some()
        },
        all,
    );
    let n = n.unwrap();
    let pid = ovsnet::cluster::server::member_pid(&cdir, n).expect("the leader's pid");
    ovsnet::process::kill_pid(pid);
    assert!(!ovsnet::sandbox::process_alive(pid));
    let killed_at = Instant::now();

    // New endpoints, allocated through the 2 remaining members.
    let fan_new = lab.container("f-new");
    let fan_ip = lab.attach_in_cluster("h2", &fan_new.0, lab::LAB_NETWORK);
    let st_new = lab.container("s-new");
    let st_ip = lab.attach_in_cluster("h1", &st_new.0, "st");
    eprintln!("member {n} (leader) killed; 2 endpoints allocated {:.1}s later", killed_at.elapsed().as_secs_f64());
    let new_leader = leader(&remotes);
    assert!(new_leader.is_some_and(|l| l != n), "no new leader: {new_leader:?}");

    // Every other host's containers reach them.
    let fan_from: Vec<String> = rec.containers.iter().filter(|c| c.host != "h2").map(|c| c.netns.clone()).collect();
    wait_for(20, &format!("{fan_ip} reached from h1 and h3"), || pings_all(&fan_from, fan_ip), all);
    let st_from: Vec<String> = st_ns[1..].iter().map(|g| g.0.clone()).collect();
    wait_for(20, &format!("{st_ip} reached from h2 and h3 (static network)"), || pings_all(&st_from, st_ip), all);
    eprintln!("reached from every other host {:.1}s after the kill", killed_at.elapsed().as_secs_f64());

    // lab down removes everything, the killed member notwithstanding.
    let namespaces: Vec<String> = rec
        .created
        .iter()
        .filter_map(|i| match i {
            lab::Item::Netns(ns) => Some(ns.clone()),
            _ => None,
        })
        .collect();
    let report = lab::down(&lab.root, &lab.name).unwrap();
    lab.rec = None;
    // 3 x (ovsdb-server, ovs-vswitchd, agent) + the 2 members still running.
    assert_eq!(report.processes, 11, "{report:?}");
    assert!(namespaces.iter().all(|ns| !ovsnet::netns::exists(ns)), "namespaces left: {namespaces:?}");
    assert!(!Path::new(&rec.dir).exists(), "{} left", rec.dir.display());
    assert!((1..=3).all(|m| ovsnet::cluster::server::member_pid(&cdir, m).is_none()));
}

// ---------------------------------------------------------------------------
// Networks on one router reach each other, routed by each host's flows.

/// The TTL of the echo reply `ping` reports (`ip netns exec` + ping as the
/// oracle), or `None` when there was no reply.
fn reply_ttl(from_ns: &str, to: Ipv4Addr) -> Option<u8> {
    let out = Command::new("ip")
        .args(["netns", "exec", from_ns, "ping", "-c", "1", "-W", "2", &to.to_string()])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let at = text.find("ttl=")?;
    text[at + 4..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

#[test]
fn networks_on_a_router_reach_each_other_across_hosts_and_others_stay_isolated() {
    let Some(lab) = Lab::up(2, 1, TunnelType::Vxlan) else { return };
    let remotes = lab.remotes();
    let db = ["--cluster-db", remotes.as_str()];
    let with_db = |args: &[&str]| -> Vec<String> { args.iter().chain(db.iter()).map(|s| (*s).to_owned()).collect() };
    let run = |host: &str, args: &[&str]| {
        let args = with_db(args);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        lab.ovsnet_ok(host, &refs)
    };
    // Each network's gateway is its first address (the default).
    run("h1", &["network", "create", "red", "--cidr", "10.61.0.0/24"]);
    run("h1", &["network", "create", "blue", "--cidr", "10.62.0.0/24"]);
    run("h1", &["network", "create", "green", "--cidr", "10.63.0.0/24"]);
    let (red1, blue1, blue2, green2) =
        (lab.container("red1"), lab.container("blue1"), lab.container("blue2"), lab.container("green2"));
    let ip_red1 = lab.attach_in_cluster("h1", &red1.0, "red");
    let ip_blue1 = lab.attach_in_cluster("h1", &blue1.0, "blue");
    let ip_blue2 = lab.attach_in_cluster("h2", &blue2.0, "blue");
    let ip_green2 = lab.attach_in_cluster("h2", &green2.0, "green");
    assert_eq!(ip_red1, Ipv4Addr::new(10, 61, 0, 2), "the gateway .1 is never handed out");
    let diag = || format!("{}\n{}\n{}", dump_flows(lab.host("h1")), dump_flows(lab.host("h2")), agent_log(lab.rec()));

    // The gateway answers ping (ARP and ICMP from flows) on every host.
    wait_for(10, "red1 pings its gateway", || ping(&red1.0, Ipv4Addr::new(10, 61, 0, 1), Duration::from_secs(1)), diag);
    wait_for(
        10,
        "blue2 pings its gateway",
        || ping(&blue2.0, Ipv4Addr::new(10, 62, 0, 1), Duration::from_secs(1)),
        diag,
    );
    // The containers route through it: attach gave them the default route.
    let routes = Command::new("ip").args(["netns", "exec", &red1.0, "ip", "route"]).output().unwrap();
    assert!(String::from_utf8_lossy(&routes.stdout).contains("default via 10.61.0.1"), "{routes:?}");

    // No router yet: red and blue are isolated.
    assert!(!ping(&red1.0, ip_blue2, Duration::from_millis(600)), "red reached blue with no router");

    run("h2", &["router", "create", "r1"]);
    assert!(run("h2", &["router", "create", "r1", "--may-exist"]).contains("unchanged"));
    run("h1", &["router", "add", "r1", "red"]);
    run("h2", &["router", "add", "r1", "blue"]);
    assert!(run("h2", &["router", "add", "r1", "blue"]).contains("unchanged"), "adding twice changes nothing");
    let shown = run("h1", &["router", "show", "r1"]);
    assert!(shown.contains("red") && shown.contains("10.62.0.0/24") && shown.contains("gateway 10.62.0.1"), "{shown}");

    // Routed: on one host, and across the tunnel, both ways.
    for (from, to, what) in [
        (&red1.0, ip_blue1, "red1 -> blue1 (same host)"),
        (&red1.0, ip_blue2, "red1 -> blue2 (across hosts)"),
        (&blue2.0, ip_red1, "blue2 -> red1 (across hosts)"),
    ] {
        wait_for(10, what, || ping(from, to, Duration::from_secs(1)), diag);
    }
    // One hop: the reply's TTL is one less than a same-network reply's.
    let same = reply_ttl(&blue1.0, ip_blue2).expect("blue1 -> blue2 switched");
    let routed = reply_ttl(&red1.0, ip_blue2).expect("red1 -> blue2 routed");
    assert_eq!(routed + 1, same, "a routed reply's TTL is decremented once");
    // TCP across the router.
    let payload: Vec<u8> = (0..100_000u32).map(|x| (x % 251) as u8).collect();
    let (src, dst) = (ovsnet::netns::open(&red1.0).unwrap(), ovsnet::netns::open(&blue2.0).unwrap());
    assert!(
        probe::tcp_echo(&src, &dst, ip_blue2, 5300, &payload, Duration::from_secs(10)).unwrap(),
        "TCP red1 -> blue2"
    );

    // green is on no router: unreachable from red and blue.
    assert!(!ping(&red1.0, ip_green2, Duration::from_millis(600)), "red reached green");
    assert!(!ping(&blue1.0, ip_green2, Duration::from_millis(600)), "blue reached green");

    // Off the router: isolated again, on every host.
    run("h1", &["router", "del", "r1", "blue"]);
    wait_for(10, "red1 cut off from blue2", || !ping(&red1.0, ip_blue2, Duration::from_millis(500)), diag);
    let err =
        lab.ovsnet("h1", &with_db(&["router", "add", "nope", "red"]).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!err.status.success() && stderr_of(&err).contains("no router nope"), "{}", stderr_of(&err));
    run("h1", &["router", "del", "r1"]);
    assert!(!run("h1", &["router", "list"]).contains("r1"));
}

// ---------------------------------------------------------------------------
// A way out: containers reach an address outside every network through
// their own host, source-translated to that host's address.

#[test]
fn containers_egress_through_their_own_host_and_internal_networks_do_not() {
    let Some(lab) = Lab::up_with(2, 1, TunnelType::Vxlan, true) else { return };
    let rec = lab.rec();
    let outside = rec.outside.clone().expect("the outside namespace");
    let server = SocketAddrV4::new(lab::OUTSIDE_SERVER, 8080);
    let peers = tcp_echo_server(&outside, server);
    let diag = || format!("{}\n{}\n{}", dump_flows(lab.host("h1")), dump_flows(lab.host("h2")), agent_log(lab.rec()));

    // From a container on each host: the server sees that host's address.
    let mut conns = Vec::new();
    for c in &rec.containers {
        let mut conn = None;
        wait_for(
            10,
            &format!("{} connects to the outside server", c.name),
            || {
                conn = connect_from(&c.netns, server, Duration::from_secs(1)).ok();
                conn.is_some()
            },
            diag,
        );
        let mut conn = conn.unwrap();
        assert!(echo(&mut conn, b"out and back"), "{} echo", c.name);
        let peer = peers.recv_timeout(Duration::from_secs(5)).unwrap();
        let host = lab.host(&c.host);
        assert_eq!(peer.ip(), IpAddr::V4(host.underlay_ip), "{} leaves through its own host {}", c.name, host.name);
        conns.push(conn);
    }

    // The agent killed under the connection: it stays (the translation is
    // the kernel's, the flows the switch's).
    let h1 = lab.host("h1").clone();
    let pid = lab::agent_pid(&h1.dir).unwrap();
    ovsnet::process::kill_pid(pid);
    assert!(echo(&mut conns[0], b"still there"), "the connection outlived the agent");

    // Started again, it finds the switch as it left it: no flow changes,
    // and the connection goes on.
    let mut lab = lab;
    lab.restart_agent("h1", TunnelType::Vxlan);
    let diag = || format!("{}\n{}\n{}", dump_flows(lab.host("h1")), dump_flows(lab.host("h2")), agent_log(lab.rec()));
    let log = h1.dir.join("agent.log");
    let mut line = String::new();
    wait_for(
        20,
        "the restarted agent's first reconcile",
        || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            match text.lines().find(|l| l.starts_with("reconcile (switch connected):")) {
                Some(l) => {
                    line = l.to_owned();
                    true
                }
                None => false,
            }
        },
        || std::fs::read_to_string(&log).unwrap_or_default(),
    );
    assert!(line.contains(" sent=0 "), "a restarted agent sent flow changes: {line}");
    assert!(echo(&mut conns[0], b"and after the restart"), "the connection outlived the restart");

    // An --internal network has no way out.
    let remotes = lab.remotes();
    lab.ovsnet_ok(
        "h2",
        &["network", "create", "closed", "--cidr", "10.64.0.0/24", "--internal", "--cluster-db", &remotes],
    );
    let shut = lab.container("shut");
    lab.attach_in_cluster("h2", &shut.0, "closed");
    assert!(
        connect_from(&shut.0, server, Duration::from_millis(1500)).is_err(),
        "an internal network reached the outside"
    );
    // Its gateway still answers.
    wait_for(10, "shut pings its gateway", || ping(&shut.0, Ipv4Addr::new(10, 64, 0, 1), Duration::from_secs(1)), diag);
}

// ---------------------------------------------------------------------------
// A way in: a port published on a host's addresses reaches the container.

#[test]
fn published_ports_reach_the_container_from_outside_and_only_those() {
    let Some(lab) = Lab::up_with(1, 1, TunnelType::Vxlan, true) else { return };
    let rec = lab.rec();
    let outside = rec.outside.clone().expect("the outside namespace");
    let h1 = lab.host("h1");
    let diag = || format!("{}\n{}", dump_flows(lab.host("h1")), agent_log(lab.rec()));
    let web = lab.container("web");
    let ip = lab.attach_in_cluster_with("h1", &web.0, lab::LAB_NETWORK, &["--publish", "8080:80"]);
    let service = tcp_echo_server(&web.0, SocketAddrV4::new(ip, 80));
    let _unpublished = tcp_echo_server(&web.0, SocketAddrV4::new(ip, 81));
    let published = SocketAddrV4::new(h1.underlay_ip, 8080);

    // From the outside namespace, to the host's address.
    let mut conn = None;
    wait_for(
        10,
        "the outside reaches the published port",
        || {
            conn = connect_from(&outside, published, Duration::from_secs(1)).ok();
            conn.is_some()
        },
        diag,
    );
    let mut conn = conn.unwrap();
    assert!(echo(&mut conn, b"in and back"), "the reply comes back through the same translation");
    let peer = service.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(peer.ip(), IpAddr::V4(lab::OUTSIDE_UNDERLAY_IP), "the container sees the client's address");

    // Nothing else: not another port of the host, not the container's own
    // address, even for an outside that routes to it through the host.
    let t = Duration::from_millis(1500);
    assert!(connect_from(&outside, SocketAddrV4::new(h1.underlay_ip, 8081), t).is_err(), "an unpublished host port");
    let route = Command::new("ip")
        .args(["-n", &outside, "route", "add", "10.0.0.0/8", "via", &h1.underlay_ip.to_string()])
        .status()
        .unwrap();
    assert!(route.success());
    assert!(
        connect_from(&outside, SocketAddrV4::new(ip, 81), t).is_err(),
        "the container reached without a published port"
    );

    // A second container asking for the same host port: a clear error, and
    // nothing changes (no port, no Endpoint row, the first keeps it).
    let other = lab.container("other");
    let before = lab.cluster_state().endpoints.len();
    let args = lab.attach_args("h1", &format!("netns:{}", other.0), lab::LAB_NETWORK, &["-p", "8080:90"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = lab.ovsnet("h1", &args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second container took a published port");
    assert!(err.contains("8080:80/tcp") && err.contains("already published"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert_eq!(lab.cluster_state().endpoints.len(), before, "the refused attach left an Endpoint row");
    let attached = lab.ovsnet_ok("h1", &["attachments", lab::BRIDGE]);
    assert!(!attached.contains(&other.0), "the refused attach left a port: {attached}");
    assert!(echo(&mut conn, b"still the first"), "the first container keeps its port");

    // Published on an internal network: refused before anything is made.
    let remotes = lab.remotes();
    lab.ovsnet_ok(
        "h1",
        &["network", "create", "closed", "--cidr", "10.64.0.0/24", "--internal", "--cluster-db", &remotes],
    );
    let args = lab.attach_args("h1", &format!("netns:{}", other.0), "closed", &["-p", "9090:90"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = lab.ovsnet("h1", &args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("internal"), "{err}");

    // Detached: the port is closed again.
    lab.ovsnet_ok("h1", &["detach", lab::BRIDGE, &format!("netns:{}", web.0), "--cluster-db", &remotes]);
    wait_for(
        10,
        "the published port to close",
        || connect_from(&outside, published, Duration::from_millis(500)).is_err(),
        diag,
    );
}

/// The DNS answers at the gateway as a container sees them: names of
/// endpoints on every host, aliases, NAME.NETWORK, PTR, round robin, TCP,
/// forwarding to the host's resolvers, a closed network, a flood held by
/// its port's meter, and a name that goes away.
#[test]
fn names_are_answered_at_the_gateway_on_every_host() {
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::{RData, RecordType};
    let Some(lab) = Lab::up_with(2, 0, TunnelType::Vxlan, true) else { return };
    let rec = lab.rec();
    let outside = rec.outside.clone().expect("the outside namespace");
    let remotes = lab.remotes();
    let diag = || format!("{}\n{}", dump_flows(lab.host("h2")), agent_log(lab.rec()));
    // The host's resolver, in the outside namespace (the lab's agents list
    // it in their resolv.conf).
    let stub = common::dns_stub(
        &outside,
        SocketAddrV4::new(lab::OUTSIDE_SERVER, 53),
        vec![("outside.example".into(), Ipv4Addr::new(198, 51, 100, 7))],
    );
    let web = lab.container("web");
    let web_ip = lab.attach_in_cluster_with("h1", &web.0, lab::LAB_NETWORK, &["--alias", "api"]);
    let c1 = lab.container("c1");
    let c1_ip = lab.attach_in_cluster_with("h1", &c1.0, lab::LAB_NETWORK, &["--alias", "cache"]);
    let c2 = lab.container("c2");
    let c2_ip = lab.attach_in_cluster_with("h2", &c2.0, lab::LAB_NETWORK, &["--alias", "cache"]);
    let client = lab.container("client");
    lab.attach_in_cluster("h2", &client.0, lab::LAB_NETWORK);
    // Another network: its names are not visible from the lab network.
    lab.create_static_network("other", "10.77.0.0/24");
    let ghost = lab.container("ghost");
    lab.attach_in_cluster_with("h1", &ghost.0, "other", &["--alias", "spooky"]);

    let gw = lab.cluster_state().networks[lab::LAB_NETWORK].gateway.expect("the lab network's gateway");
    let server = SocketAddrV4::new(gw, 53);
    let t = Duration::from_secs(3);
    let ask = |name: &str, rtype: RecordType, tcp: bool| common::dns_query(&client.0, server, name, rtype, tcp, t);
    let a = |name: &str| ask(name, RecordType::A, false).map(|m| common::dns_addresses(&m)).unwrap_or_default();

    // A name on the other host, as soon as the agents have the rows.
    wait_for(10, "web's name answered on h2", || a(&web.0) == vec![web_ip], diag);
    assert_eq!(a(&format!("{}.{}", web.0, lab::LAB_NETWORK)), vec![web_ip], "NAME.NETWORK");
    assert_eq!(a("api"), vec![web_ip], "an alias");
    assert_eq!(a("API."), vec![web_ip], "names are not case-sensitive");
    let m = ask(&web.0, RecordType::A, true).expect("an answer over TCP");
    assert_eq!(common::dns_addresses(&m), vec![web_ip], "over TCP");
    assert!(m.answers().iter().all(|r| r.ttl() <= 10), "a short TTL");

    // PTR.
    let o = web_ip.octets();
    let m = ask(&format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0]), RecordType::PTR, false).expect("PTR");
    let names: Vec<String> = m
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::PTR(p) => Some(p.0.to_ascii()),
            _ => None,
        })
        .collect();
    assert_eq!(names, vec![format!("{}.{}.", web.0, lab::LAB_NETWORK)]);

    // Round robin: both endpoints of the alias, first in turn.
    let mut firsts = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let got = a("cache");
        let mut sorted = got.clone();
        sorted.sort();
        let mut want = vec![c1_ip, c2_ip];
        want.sort();
        assert_eq!(sorted, want, "both endpoints of the alias");
        firsts.insert(got[0]);
    }
    assert_eq!(firsts.len(), 2, "the order rotates");

    // Another network's names are not answered (they go to the host's
    // resolver, which does not know them); names outside are relayed.
    let m = ask("spooky", RecordType::A, false).expect("an answer");
    assert_eq!(m.response_code(), ResponseCode::NXDomain);
    assert_eq!(a("outside.example"), vec![Ipv4Addr::new(198, 51, 100, 7)], "a name relayed from the resolver");
    let before = stub.queries.load(std::sync::atomic::Ordering::Relaxed);
    assert!(before >= 2, "the resolver was asked");

    // busybox's nslookup, as in a container.
    let out = Command::new("ip")
        .args(["netns", "exec", &client.0, "busybox", "nslookup", "api", &gw.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&web_ip.to_string()), "busybox nslookup api: {text}");

    // A network that does not forward: NXDOMAIN from the agent itself.
    lab.ovsnet_ok(
        "h2",
        &["network", "create", "closed", "--cidr", "10.78.0.0/24", "--dns-forward", "off", "--cluster-db", &remotes],
    );
    let inner = lab.container("inner");
    let inner_ip = lab.attach_in_cluster_with("h2", &inner.0, "closed", &["--alias", "db"]);
    let closed = SocketAddrV4::new(Ipv4Addr::new(10, 78, 0, 1), 53);
    // The first endpoint of a network on a host: its agent starts
    // watching that network's names.
    wait_for(
        10,
        "the closed network's names",
        || {
            common::dns_query(&inner.0, closed, "db", RecordType::A, false, t)
                .is_some_and(|m| common::dns_addresses(&m) == vec![inner_ip])
        },
        diag,
    );
    let m = common::dns_query(&inner.0, closed, "outside.example", RecordType::A, false, t).expect("an answer");
    assert_eq!(m.response_code(), ResponseCode::NXDomain);
    assert_eq!(stub.queries.load(std::sync::atomic::Ordering::Relaxed), before, "nothing was forwarded");

    // A container that floods: past its meter's rate its own queries are
    // dropped in the switch, while another container's are all answered.
    let flooder = lab.container("flooder");
    lab.attach_in_cluster("h2", &flooder.0, lab::LAB_NETWORK);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let (ns, stop) = (flooder.0.clone(), stop.clone());
        std::thread::spawn(move || {
            let fd = ovsnet::netns::open(&ns).unwrap();
            let sock = ovsnet::netns::run_in(&fd, || std::net::UdpSocket::bind("0.0.0.0:0")).unwrap().unwrap();
            sock.set_nonblocking(true).unwrap();
            let mut q = hickory_proto::op::Message::new();
            q.add_query(hickory_proto::op::Query::query(
                hickory_proto::rr::Name::from_ascii("api.").unwrap(),
                RecordType::A,
            ));
            let q = q.to_vec().unwrap();
            let mut sent = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if sock.send_to(&q, server).is_ok() {
                    sent += 1;
                }
                let mut buf = [0u8; 512];
                while sock.recv(&mut buf).is_ok() {}
            }
            sent
        })
    };
    // Each asked as a resolver asks: up to 3 tries of a second (a UDP
    // query may be lost on a loaded machine; the flooder's are dropped by
    // the thousand).
    let mut answered = 0;
    for _ in 0..50 {
        let once = || {
            common::dns_query(&client.0, server, "api", RecordType::A, false, Duration::from_secs(1))
                .is_some_and(|m| common::dns_addresses(&m) == vec![web_ip])
        };
        if (0..3).any(|_| once()) {
            answered += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = flood.join().unwrap();
    assert_eq!(answered, 50, "another container's queries during the flood");
    let h2 = lab.host("h2");
    let ofport = attached_ofport(&lab, "h2", &flooder.0);
    let stats = Command::new("ovs-ofctl")
        .env("OVS_RUNDIR", &h2.dir)
        .args(["-O", "OpenFlow13", "meter-stats", lab::BRIDGE, &format!("meter={ofport}")])
        .output()
        .unwrap();
    let stats = String::from_utf8_lossy(&stats.stdout).into_owned();
    let dropped: u64 = stats
        .split("band")
        .nth(1)
        .and_then(|b| b.split("packet_count:").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.trim_end_matches(',').parse().ok())
        .unwrap_or(0);
    assert!(dropped > 0, "the flooder's meter dropped nothing of {sent} queries: {stats}");

    // A name that goes away is gone from the answers at once.
    lab.ovsnet_ok("h1", &["detach", lab::BRIDGE, &format!("netns:{}", web.0), "--cluster-db", &remotes]);
    wait_for(
        10,
        "web's name to go",
        || ask("api", RecordType::A, false).is_some_and(|m| m.response_code() == ResponseCode::NXDomain),
        diag,
    );
}

/// The ofport of the port `attach` made for a container namespace on `host`.
fn attached_ofport(lab: &Lab, host: &str, ns: &str) -> u64 {
    let out = lab.ovsnet_ok(host, &["--format", "json", "attachments", lab::BRIDGE]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .find(|a| a["container"].as_str() == Some(&format!("netns:{ns}")))
        .and_then(|a| a["ofport"].as_u64())
        .unwrap_or_else(|| panic!("no attachment of {ns}: {out}"))
}

/// A service address in flows: connections spread over backends on two
/// hosts, its name in DNS, a backend taken away gets no new connection
/// while an established one to another goes on, and the client's agent
/// killed and started again under a connection loses nothing.
#[test]
fn a_service_address_spreads_connections_over_its_backends() {
    use hickory_proto::rr::RecordType;
    let Some(lab) = Lab::up_with(2, 0, TunnelType::Vxlan, false) else { return };
    let remotes = lab.remotes();
    let mut backends = Vec::new();
    for (i, host) in ["h1", "h1", "h2"].iter().enumerate() {
        let ns = lab.container(&format!("b{i}"));
        let ip = lab.attach_in_cluster_with(host, &ns.0, lab::LAB_NETWORK, &["--alias", "api"]);
        let accepted = tcp_echo_server(&ns.0, SocketAddrV4::new(ip, 80));
        backends.push((ns, ip, accepted));
    }
    let client = lab.container("client");
    let client_ip = lab.attach_in_cluster("h2", &client.0, lab::LAB_NETWORK);
    let vip = Ipv4Addr::new(10, 0, 0, 250);
    let out = lab.ovsnet_ok(
        "h2",
        &[
            "service",
            "create",
            "api-svc",
            "--network",
            lab::LAB_NETWORK,
            "--vip",
            "10.0.0.250:80",
            "--backends",
            "api",
            "--cluster-db",
            &remotes,
        ],
    );
    assert!(out.contains("created service api-svc"), "{out}");
    let to = SocketAddrV4::new(vip, 80);
    let diag = || format!("{}\n{}", dump_flows(lab.host("h2")), agent_log(lab.rec()));
    // Which backend took the last connection (its server saw the client).
    let taken = |backends: &[(NsGuard, Ipv4Addr, std::sync::mpsc::Receiver<std::net::SocketAddr>)]| -> Vec<usize> {
        backends
            .iter()
            .enumerate()
            .filter(|(_, (_, _, rx))| rx.try_recv().is_ok_and(|peer| peer.ip() == IpAddr::V4(client_ip)))
            .map(|(i, _)| i)
            .collect()
    };
    wait_for(10, "the VIP to answer", || connect_from(&client.0, to, Duration::from_secs(1)).is_ok(), diag);
    std::thread::sleep(Duration::from_millis(100));
    let _ = taken(&backends);

    // Connections spread over all three, on both hosts.
    let mut hits = [0usize; 3];
    for i in 0..30 {
        let mut c = connect_from(&client.0, to, Duration::from_secs(2)).expect("a connection to the VIP");
        assert!(echo(&mut c, format!("hello {i}").as_bytes()), "the reply comes back from the VIP");
        for b in taken(&backends) {
            hits[b] += 1;
        }
    }
    assert_eq!(hits.iter().sum::<usize>(), 30, "each connection reached one backend: {hits:?}");
    assert!(hits.iter().all(|&h| h > 0), "every backend got connections: {hits:?}");

    // The service's name is its address in the network's DNS.
    let gw = lab.cluster_state().networks[lab::LAB_NETWORK].gateway.unwrap();
    let m = common::dns_query(
        &client.0,
        SocketAddrV4::new(gw, 53),
        "api-svc",
        RecordType::A,
        false,
        Duration::from_secs(3),
    )
    .expect("an answer");
    assert_eq!(common::dns_addresses(&m), vec![vip]);

    // A long connection, then one of the other backends taken away: it
    // gets no new connection, the long one goes on.
    let mut long = connect_from(&client.0, to, Duration::from_secs(2)).unwrap();
    assert!(echo(&mut long, b"long"));
    let held = taken(&backends);
    assert_eq!(held.len(), 1);
    let gone = (0..3).find(|i| !held.contains(i) && *i < 2).unwrap();
    lab.ovsnet_ok("h1", &["detach", lab::BRIDGE, &format!("netns:{}", backends[gone].0.0), "--cluster-db", &remotes]);
    wait_for(
        10,
        "the backend to leave the service",
        || {
            !lab.ovsnet_ok("h2", &["service", "show", "api-svc", "--cluster-db", &remotes])
                .contains(&backends[gone].1.to_string())
        },
        diag,
    );
    // The client's host has seen the row go once its group has 2 buckets.
    wait_for(
        10,
        "the group to lose the bucket",
        || {
            let groups = Command::new("ovs-ofctl")
                .env("OVS_RUNDIR", &lab.host("h2").dir)
                .args(["-O", "OpenFlow13", "dump-groups", lab::BRIDGE])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&groups.stdout).into_owned();
            text.matches("bucket=").count() == 2 && !text.contains(&format!("dst={}:", backends[gone].1))
        },
        diag,
    );
    for _ in 0..15 {
        let mut c = connect_from(&client.0, to, Duration::from_secs(2)).expect("a connection to the VIP");
        assert!(echo(&mut c, b"after"), "the reply comes back");
        let t = taken(&backends);
        assert!(!t.contains(&gone), "a removed backend got a new connection");
    }
    assert!(echo(&mut long, b"still on"), "the established connection went on");

    // The client's agent killed under the connection, then started again.
    let h2 = lab.host("h2").clone();
    ovsnet::process::kill_pid(lab::agent_pid(&h2.dir).unwrap());
    assert!(echo(&mut long, b"agent gone"), "the connection outlived the agent");
    let mut lab = lab;
    lab.restart_agent("h2", TunnelType::Vxlan);
    let log = h2.dir.join("agent.log");
    wait_for(
        20,
        "the restarted agent's first reconcile",
        || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .any(|l| l.starts_with("reconcile (switch connected):"))
        },
        || std::fs::read_to_string(&log).unwrap_or_default(),
    );
    assert!(echo(&mut long, b"agent back"), "the connection outlived the restart");
    let mut c = connect_from(&client.0, to, Duration::from_secs(2)).expect("a new connection after the restart");
    assert!(echo(&mut c, b"new"));

    // Bad input: one line, nothing written.
    let before = lab.ovsnet_ok("h2", &["service", "list", "--cluster-db", &remotes]);
    for (args, needle) in [
        (
            vec!["service", "create", "x", "--network", lab::LAB_NETWORK, "--vip", "10.0.0.250", "--backends", "api"],
            "no port",
        ),
        (
            vec![
                "service",
                "create",
                "api-svc",
                "--network",
                lab::LAB_NETWORK,
                "--vip",
                "10.0.0.251:80",
                "--backends",
                "api",
            ],
            "already exists",
        ),
        (
            vec![
                "service",
                "create",
                "y",
                "--network",
                lab::LAB_NETWORK,
                "--vip",
                "10.0.0.250:80",
                "--backends",
                "api",
            ],
            "already the address",
        ),
        (vec!["service", "create", "z", "--network", "nope", "--vip", "10.0.0.252:80", "--backends", "api"], "nope"),
        (
            vec![
                "service",
                "create",
                "w",
                "--network",
                lab::LAB_NETWORK,
                "--vip",
                "10.0.0.253:80",
                "--backends",
                "bad name",
            ],
            "bad backend",
        ),
    ] {
        let mut args = args;
        args.extend(["--cluster-db", remotes.as_str()]);
        let out = lab.ovsnet("h2", &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.lines().next().is_some_and(|l| l.contains(needle)), "{args:?}: {err}");
        // The command line parser adds its usual hint line.
        assert!(err.trim().lines().count() == 1 || err.contains("try '--help'"), "one line: {err}");
    }
    assert_eq!(lab.ovsnet_ok("h2", &["service", "list", "--cluster-db", &remotes]), before, "nothing written");
    let vip_of_endpoint = backends[2].1.to_string() + ":80";
    let out = lab.ovsnet(
        "h2",
        &[
            "service",
            "create",
            "v",
            "--network",
            lab::LAB_NETWORK,
            "--vip",
            &vip_of_endpoint,
            "--backends",
            "api",
            "--cluster-db",
            &remotes,
        ],
    );
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("a service needs an address of its own")
    );
    lab.ovsnet_ok("h2", &["service", "del", "api-svc", "--cluster-db", &remotes]);
    wait_for(
        10,
        "the VIP to stop answering",
        || connect_from(&client.0, to, Duration::from_millis(500)).is_err(),
        || agent_log(lab.rec()),
    );
}
