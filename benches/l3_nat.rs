//! The way out and the way in, against the same path without NAT and
//! against Docker's bridge NAT (a benchmark, not a timed test):
//! `cargo bench --bench l3_nat [-- SECONDS ROUNDS]` (root, Open vSwitch,
//! Docker, iperf3, nft as the switch for the path without NAT).
//!
//! In one run, alternating round by round so that load drifts hit all
//! alike, one iperf3 stream each (median of ROUNDS, SECONDS each):
//! - **egress NAT**: an ovsnet container on an agent-mode lab host to a
//!   server on a plain veth link out of the host's namespace (as Docker's
//!   below, not through the lab's simulated uplink, itself a userspace
//!   bridge), through the host's kernel NAT;
//! - **egress routed**: the same path with the masquerade rule flushed
//!   for the round (`nft`, in the bench only) and the server routing the
//!   containers' network back through the host;
//! - **Docker NAT**: a container on Docker's default bridge of a private
//!   engine (iptables on, in a namespace of its own) to a server on a link
//!   out of that namespace;
//! - **published**: that server as a client of the host's address on the
//!   link and a port published to the ovsnet container
//!   (`attach -p 8080:5201`);
//!
//! and new TCP connections per second (connect, then close with a reset,
//! one at a time, SECONDS each) from the ovsnet container through its
//! NAT, and from the Docker container through Docker's.
//!
//! Then the other way to translate, OVS conntrack: two containers on one
//! bridge of a classic lab host (`lab up --classic`), the switch's flows
//! set by hand (`ovs-ofctl`) to forward them plainly (`NORMAL`) or to
//! source-translate the client's connections in the switch
//! (`ct(commit,nat(src=...))`, replies translated back by `ct(nat)`);
//! one stream and the connection rate each way, alternating.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ovsnet::sandbox::docker::{DockerEngine, MINI_IMAGE};

mod support;
use support::{LabRun, Ns, connection_rate, ip, iperf, load, median, run};

const NETWORK_CIDR: &str = "10.71.0.0/24";
const IPERF_PORT: u16 = 5201;
const PUBLISHED_PORT: u16 = 8080;
const CONN_PORT: u16 = 7001;
/// The link out of the lab host's and the Docker engine's namespaces.
const DOCKER_UPLINK: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const DOCKER_SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

/// The lab: one agent-mode host with the outside namespace, a network
/// with a way out, a container attached with a published port.
struct Lab {
    run: LabRun,
    container: String,
    ip: Ipv4Addr,
    /// The server's namespace, on a veth link out of the host's.
    server: String,
}

impl Lab {
    fn up(ovsnet: &Path) -> Lab {
        let name = format!("nat{}", std::process::id());
        let run = LabRun::up(ovsnet, name.clone(), &["--hosts", "1", "--containers", "0", "--outside"]);
        let container = format!("{name}-c1");
        let server = format!("{name}-srv");
        let mut lab = Lab { run, container, ip: Ipv4Addr::UNSPECIFIED, server };
        let host = lab.run.rec.hosts[0].netns.clone();
        ovsnet::netns::create(&lab.server).expect("server namespace");
        link_out(&host, &lab.server);
        lab.on_cluster(&["network", "create", "red", "--cidr", NETWORK_CIDR]);
        ovsnet::netns::create(&lab.container).expect("container namespace");
        let publish = format!("{PUBLISHED_PORT}:{IPERF_PORT}");
        let c = format!("netns:{}", lab.container);
        lab.on_cluster(&[
            "attach",
            "obr0",
            &c,
            "10.71.0.11/24",
            "--network",
            "red",
            "--host-name",
            "h1",
            "-p",
            &publish,
        ]);
        lab.ip = Ipv4Addr::new(10, 71, 0, 11);
        let started = Instant::now();
        while !Command::new("ip")
            .args(["netns", "exec", &lab.container, "ping", "-c1", "-W1", &DOCKER_SERVER.to_string()])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(started.elapsed() < Duration::from_secs(20), "the container does not reach the outside");
        }
        lab
    }

    fn on_cluster(&self, args: &[&str]) -> String {
        let h = &self.run.rec.hosts[0];
        run(Command::new(&self.run.ovsnet)
            .arg("--db")
            .arg(format!("unix:{}", h.dir.join("db.sock").display()))
            .args(["--netns", &h.netns])
            .args(args)
            .args(["--cluster-db", self.run.rec.cluster_db.as_deref().expect("cluster database")]))
    }

    fn host(&self) -> Ns {
        Ns::Named(self.run.rec.hosts[0].netns.clone())
    }

    fn server(&self) -> Ns {
        Ns::Named(self.server.clone())
    }

    /// The masquerade rule on or off (the path without NAT), as `nft`
    /// spells what the agent installed.
    fn masquerade(&self, on: bool) {
        let h = self.host();
        match on {
            true => run(h.command("nft").args([
                "add",
                "rule",
                "ip",
                "ovsnet",
                "postrouting",
                "ip",
                "saddr",
                NETWORK_CIDR,
                "oifname",
                "!=",
                "obr0",
                "masquerade",
            ])),
            false => run(h.command("nft").args(["flush", "chain", "ip", "ovsnet", "postrouting"])),
        };
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = ovsnet::netns::delete(&self.container);
        let _ = ovsnet::netns::delete(&self.server);
    }
}

/// A plain veth link from `host` ([`DOCKER_UPLINK`]) to `server`
/// ([`DOCKER_SERVER`]), both namespaces.
fn link_out(host: &str, server: &str) {
    ip(&["-n", host, "link", "set", "lo", "up"]);
    ip(&["-n", server, "link", "set", "lo", "up"]);
    ip(&["-n", host, "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", server]);
    ip(&["-n", host, "addr", "add", &format!("{DOCKER_UPLINK}/24"), "dev", "up0"]);
    ip(&["-n", host, "link", "set", "up0", "up"]);
    ip(&["-n", server, "addr", "add", &format!("{DOCKER_SERVER}/24"), "dev", "eth0"]);
    ip(&["-n", server, "link", "set", "eth0", "up"]);
}

/// A private engine with Docker's bridge NAT in a namespace of its own,
/// a link out of it to a server namespace, and a container on `docker0`.
struct Docker {
    engine: Option<DockerEngine>,
    ns: String,
    server: String,
    container: Ns,
}

impl Docker {
    fn up() -> Docker {
        let ns = format!("natd{}", std::process::id());
        let server = format!("natds{}", std::process::id());
        ovsnet::netns::create(&ns).expect("engine namespace");
        ovsnet::netns::create(&server).expect("server namespace");
        let mut d =
            Docker { engine: None, ns: ns.clone(), server: server.clone(), container: Ns::Named(String::new()) };
        link_out(&ns, &server);
        let engine = support::bridge_engine(&ns);
        run(engine.cli().args(["run", "-d", "--name", "c1", MINI_IMAGE, "/bin/sleep", "3600"]));
        let pid = engine.container_pid("c1").expect("container pid");
        d.container = Ns::Path(PathBuf::from(format!("/proc/{pid}/ns/net")));
        d.engine = Some(engine);
        d
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        drop(self.engine.take());
        let _ = ovsnet::netns::delete(&self.server);
        let _ = ovsnet::netns::delete(&self.ns);
    }
}

/// A classic lab host with two containers, its bridge's flows set by hand.
struct Classic {
    run: LabRun,
}

/// The address the switch translates the client's to.
const CT_SNAT: Ipv4Addr = Ipv4Addr::new(10, 250, 0, 254);

impl Classic {
    fn up(ovsnet: &Path) -> Classic {
        let name = format!("ct{}", std::process::id());
        Classic { run: LabRun::up(ovsnet, name, &["--hosts", "1", "--containers", "2", "--classic"]) }
    }

    fn ofctl(&self, args: &[&str]) -> String {
        let h = &self.run.rec.hosts[0];
        run(Command::new("ovs-ofctl").env("OVS_RUNDIR", &h.dir).args(["-O", "OpenFlow13"]).args(args))
    }

    /// The container's port number on the bridge (its port records the
    /// address).
    fn ofport(&self, ip: Ipv4Addr) -> String {
        let h = &self.run.rec.hosts[0];
        let vsctl = |args: &[&str]| run(Command::new("ovs-vsctl").env("OVS_RUNDIR", &h.dir).args(args));
        let name = vsctl(&["--bare", "--columns=name", "find", "Interface", &format!("external_ids:ovsnet-addr={ip}")]);
        vsctl(&["get", "Interface", &name, "ofport"])
    }

    /// Plain forwarding (`NORMAL`), or the client's connections to the
    /// server source-translated to [`CT_SNAT`] by the switch.
    fn flows(&self, ct_nat: bool, client: &str, server: &str) {
        let text = match ct_nat {
            false => "priority=0 actions=NORMAL\n".to_owned(),
            true => format!(
                "priority=0 actions=NORMAL\n\
                 table=0,priority=100,ip,in_port={client},ct_state=-trk actions=ct(zone=7,nat,table=1)\n\
                 table=0,priority=100,ip,in_port={server},ct_state=-trk actions=ct(zone=7,nat,table=1)\n\
                 table=1,priority=100,ip,in_port={client},ct_state=+trk+new \
                 actions=ct(commit,zone=7,nat(src={CT_SNAT})),NORMAL\n\
                 table=1,priority=90,ip,ct_state=+trk+est actions=NORMAL\n\
                 table=1,priority=90,ip,ct_state=+trk+rel actions=NORMAL\n\
                 table=1,priority=0 actions=drop\n"
            ),
        };
        let file = self.run.state.path().join("flows.txt");
        std::fs::write(&file, text).expect("write flows");
        self.ofctl(&["replace-flows", "obr0", &file.display().to_string()]);
    }
}

/// OVS conntrack NAT against plain forwarding on the same two ports.
fn ovs_conntrack(ovsnet: &Path, secs: u32, rounds: usize) {
    let lab = Classic::up(ovsnet);
    let (a, b) = (&lab.run.rec.containers[0], &lab.run.rec.containers[1]);
    let (client, server) = (Ns::Named(a.netns.clone()), Ns::Named(b.netns.clone()));
    let (pa, pb) = (lab.ofport(a.ip), lab.ofport(b.ip));
    // The server answers the translated address at the client's MAC (the
    // switch translates it back).
    let mac = ovsnet::net::Mac::from_ipv4(a.ip).to_string();
    let dev = run(server.command("ip").args(["-o", "route", "get", &a.ip.to_string()]));
    let dev = dev.split(" dev ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("eth1").to_owned();
    run(server.command("ip").args(["route", "add", &format!("{CT_SNAT}/32"), "dev", &dev]));
    run(server.command("ip").args(["neigh", "replace", &CT_SNAT.to_string(), "lladdr", &mac, "dev", &dev]));
    let at = SocketAddrV4::new(b.ip, IPERF_PORT);
    let (mut plain, mut ct, mut plain_c, mut ct_c) = (vec![], vec![], vec![], vec![]);
    for r in 1..=rounds {
        lab.flows(false, &pa, &pb);
        let p = iperf(&client, &server, at, at, secs);
        let pc = connection_rate(&client, &server, SocketAddrV4::new(b.ip, CONN_PORT), secs);
        lab.flows(true, &pa, &pb);
        let c = iperf(&client, &server, at, at, secs);
        let cc = connection_rate(&client, &server, SocketAddrV4::new(b.ip, CONN_PORT), secs);
        println!(
            "  round {r}: OVS plain {p:.3} Gbit/s {pc:.0} conn/s, OVS conntrack NAT {c:.3} Gbit/s {cc:.0} conn/s (load {})",
            load()
        );
        plain.push(p);
        ct.push(c);
        plain_c.push(pc);
        ct_c.push(cc);
    }
    let (p, c, pc, cc) = (median(plain), median(ct), median(plain_c), median(ct_c));
    println!("  OVS conntrack NAT {c:.3} Gbit/s against plain forwarding {p:.3}: {:.2}", c / p);
    println!("  OVS conntrack NAT {cc:.0} conn/s against plain forwarding {pc:.0}: {:.2}", cc / pc);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let secs: u32 = args.first().and_then(|a| a.parse().ok()).unwrap_or(4);
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    println!("load average before: {}", load());
    let ovsnet = PathBuf::from(env!("CARGO_BIN_EXE_ovsnet"));
    let lab = Lab::up(&ovsnet);
    let docker = Docker::up();
    let c1 = Ns::Named(lab.container.clone());
    let outside = lab.server();
    // The server routes the network back through the host, for the
    // rounds without NAT (with NAT, replies go to the host's address).
    ip(&["-n", &lab.server, "route", "add", NETWORK_CIDR, "via", &DOCKER_UPLINK.to_string()]);
    let server = SocketAddrV4::new(DOCKER_SERVER, IPERF_PORT);
    let docker_server = SocketAddrV4::new(DOCKER_SERVER, IPERF_PORT);
    let dserver = Ns::Named(docker.server.clone());

    let (mut nat, mut routed, mut dnat, mut published) = (vec![], vec![], vec![], vec![]);
    for r in 1..=rounds {
        let n = iperf(&c1, &outside, server, server, secs);
        lab.masquerade(false);
        let o = iperf(&c1, &outside, server, server, secs);
        lab.masquerade(true);
        let d = iperf(&docker.container, &dserver, docker_server, docker_server, secs);
        let p = iperf(
            &outside,
            &c1,
            SocketAddrV4::new(lab.ip, IPERF_PORT),
            SocketAddrV4::new(DOCKER_UPLINK, PUBLISHED_PORT),
            secs,
        );
        println!(
            "  round {r}: egress NAT {n:.3}, egress routed {o:.3}, Docker NAT {d:.3}, published {p:.3} Gbit/s (load {})",
            load()
        );
        nat.push(n);
        routed.push(o);
        dnat.push(d);
        published.push(p);
    }
    let conn_server = SocketAddrV4::new(DOCKER_SERVER, CONN_PORT);
    let (mut crate_ovs, mut crate_docker) = (vec![], vec![]);
    for r in 1..=rounds {
        let a = connection_rate(&c1, &outside, conn_server, secs);
        let b = connection_rate(&docker.container, &dserver, SocketAddrV4::new(DOCKER_SERVER, CONN_PORT), secs);
        println!("  round {r}: new connections through the NAT: ovsnet {a:.0}/s, Docker {b:.0}/s (load {})", load());
        crate_ovs.push(a);
        crate_docker.push(b);
    }
    let (n, o, d, p) = (median(nat), median(routed), median(dnat), median(published));
    let (a, b) = (median(crate_ovs), median(crate_docker));
    println!("median of {rounds} x {secs}s:");
    println!("  egress NAT {n:.3} Gbit/s, egress routed without NAT {o:.3}: NAT/routed {:.2}", n / o);
    println!("  Docker bridge NAT {d:.3} Gbit/s: ovsnet NAT/Docker NAT {:.2}", n / d);
    println!("  published port {p:.3} Gbit/s: published/egress NAT {:.2}", p / n);
    println!("  new connections through the NAT: ovsnet {a:.0}/s, Docker {b:.0}/s: ovsnet/Docker {:.2}", a / b);
    drop(docker);
    drop(lab);
    println!("OVS conntrack NAT, two containers on one bridge (median of {rounds} x {secs}s):");
    ovs_conntrack(&ovsnet, secs, rounds);
    println!("load average after: {}", load());
}
