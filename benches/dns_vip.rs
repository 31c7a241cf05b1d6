//! Names and service addresses against Docker's (a benchmark, not a timed
//! test): `cargo bench --bench dns_vip [-- SECONDS ROUNDS]` (root, Open
//! vSwitch, Docker, iperf3).
//!
//! In one run, alternating round by round (median of ROUNDS, SECONDS
//! each):
//! - **DNS**: one client asking a name of its network, one query at a
//!   time (UDP), latency p50/p99 and queries per second: an ovsnet
//!   container of an agent-mode lab host asking its gateway (the agent
//!   answers), and a container on a user-defined bridge network of a
//!   private Docker engine asking the engine's embedded DNS server
//!   (127.0.0.11);
//! - the same while another container of the same network floods its
//!   resolver with queries, as fast as it can send them;
//! - **VIP**: one iperf3 stream and new TCP connections per second (one at
//!   a time, closed with a reset) from an ovsnet container to a service
//!   address with one backend, against the same to that backend directly
//!   (on a port no service names, so without connection tracking).

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use ovsnet::sandbox::docker::{DockerEngine, MINI_IMAGE};

mod support;
use support::{LabRun, Ns, connection_rate_to, iperf, load, median, run};

const IPERF_PORT: u16 = 5201;
const CONN_PORT: u16 = 7001;
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 250);

/// A query for `name` (A), with id `id`.
fn query(name: &str, id: u16) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(id).set_message_type(MessageType::Query).set_op_code(OpCode::Query).set_recursion_desired(true);
    m.add_query(Query::query(Name::from_ascii(name).expect("name"), RecordType::A));
    m.to_vec().expect("encode")
}

/// What one client measured.
struct DnsFigures {
    p50_us: f64,
    p99_us: f64,
    qps: f64,
    lost: u64,
}

/// One query at a time from `client` to `server` for `secs`: each
/// answer's latency (a query unanswered within 1 s counts as lost).
fn dns_client(client: &Ns, server: SocketAddrV4, name: &str, secs: u32) -> DnsFigures {
    let fd = client.fd();
    ovsnet::netns::run_in(&fd, || {
        let sock = UdpSocket::bind("0.0.0.0:0").expect("bind");
        sock.connect(server).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(1))).expect("timeout");
        let mut lat = Vec::new();
        let mut lost = 0;
        let mut buf = [0u8; 1500];
        let start = Instant::now();
        let mut id: u16 = 1;
        while start.elapsed() < Duration::from_secs(u64::from(secs)) {
            id = id.wrapping_add(1);
            let q = query(name, id);
            let t = Instant::now();
            sock.send(&q).expect("send");
            loop {
                match sock.recv(&mut buf) {
                    Ok(n) if n >= 2 && buf[..2] == id.to_be_bytes() => {
                        lat.push(t.elapsed().as_secs_f64() * 1e6);
                        break;
                    }
                    Ok(_) => continue,
                    Err(_) => {
                        lost += 1;
                        break;
                    }
                }
            }
        }
        let took = start.elapsed().as_secs_f64();
        let qps = lat.len() as f64 / took;
        lat.sort_by(f64::total_cmp);
        let pct = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied();
        DnsFigures { p50_us: pct(0.5).unwrap_or(f64::NAN), p99_us: pct(0.99).unwrap_or(f64::NAN), qps, lost }
    })
    .expect("enter")
}

/// Sends queries from `flooder` to `server` as fast as it can until
/// stopped; returns how many it sent.
fn flood(flooder: Ns, server: SocketAddrV4, name: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let fd = flooder.fd();
        ovsnet::netns::run_in(&fd, || {
            let sock = UdpSocket::bind("0.0.0.0:0").expect("bind");
            sock.set_nonblocking(true).expect("nonblocking");
            let q = query(&name, 7);
            let sent = AtomicU64::new(0);
            let mut buf = [0u8; 1500];
            while !stop.load(Ordering::Relaxed) {
                if sock.send_to(&q, server).is_ok() {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                while sock.recv(&mut buf).is_ok() {}
            }
            sent.load(Ordering::Relaxed)
        })
        .expect("enter")
    })
}

/// One side of the DNS comparison: a client and a flooder in the same
/// network, the resolver they ask, and the name.
struct DnsSide {
    label: &'static str,
    client: Ns,
    flooder: Ns,
    server: SocketAddrV4,
    name: &'static str,
}

impl DnsSide {
    fn measure(&self, secs: u32, flooded: bool) -> (DnsFigures, u64) {
        let stop = Arc::new(AtomicBool::new(false));
        let f = flooded.then(|| flood(self.flooder.clone(), self.server, self.name.to_owned(), stop.clone()));
        let figures = dns_client(&self.client, self.server, self.name, secs);
        stop.store(true, Ordering::Relaxed);
        let sent = f.map(|h| h.join().unwrap_or(0)).unwrap_or(0);
        (figures, sent)
    }
}

/// The ovsnet side: one agent-mode lab host, a network with a server, a
/// client, a flooder and a backend behind a service address.
struct OvsnetSide {
    run: LabRun,
    gateway: Ipv4Addr,
    backend: Ipv4Addr,
}

impl OvsnetSide {
    fn ns(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.run.name)
    }

    fn up(ovsnet: &Path) -> OvsnetSide {
        let name = format!("dnsb{}", std::process::id() % 10000);
        let run_ = LabRun::up(ovsnet, name, &["--hosts", "1", "--containers", "0"]);
        let h = run_.rec.hosts[0].clone();
        let remotes = run_.rec.cluster_db.clone().expect("cluster database");
        let mut side = OvsnetSide { run: run_, gateway: Ipv4Addr::UNSPECIFIED, backend: Ipv4Addr::UNSPECIFIED };
        let attach = |ns: &str, alias: &str| -> Ipv4Addr {
            ovsnet::netns::create(ns).expect("namespace");
            let out = run(std::process::Command::new(ovsnet)
                .arg("--db")
                .arg(format!("unix:{}", h.dir.join("db.sock").display()))
                .args(["--netns", &h.netns, "--format", "json", "attach", ovsnet::lab::BRIDGE])
                .arg(format!("netns:{ns}"))
                .args(["--network", ovsnet::lab::LAB_NETWORK, "--alias", alias, "--cluster-db", &remotes])
                .args(["--host-name", &h.name]));
            let v: serde_json::Value = serde_json::from_str(&out).expect("attach JSON");
            let ip = v["attachment"]["ip"]
                .as_str()
                .or(v["ip"].as_str())
                .expect("ip")
                .split('/')
                .next()
                .expect("ip")
                .to_owned();
            ip.parse().expect("address")
        };
        for (suffix, alias) in [("srv", "srv"), ("cli", "cli"), ("fld", "fld"), ("be", "backend")] {
            let ip = attach(&side.ns(suffix), alias);
            if suffix == "be" {
                side.backend = ip;
            }
        }
        // One service for throughput, one for connections.
        for (name, port) in [("api", IPERF_PORT), ("conn", CONN_PORT)] {
            let vip = format!("{VIP}:{port}");
            let network = ovsnet::lab::LAB_NETWORK;
            let args = ["service", "create", name, "--network", network, "--vip", &vip, "--backends", "backend"];
            run(std::process::Command::new(ovsnet).args(args).args(["--cluster-db", &remotes]));
        }
        let shown = run(std::process::Command::new(ovsnet).args([
            "--format",
            "json",
            "network",
            "show",
            ovsnet::lab::LAB_NETWORK,
            "--cluster-db",
            &remotes,
        ]));
        let v: serde_json::Value = serde_json::from_str(&shown).expect("network JSON");
        side.gateway = v["network"]["gateway"].as_str().expect("gateway").parse().expect("gateway address");
        side
    }
}

impl Drop for OvsnetSide {
    fn drop(&mut self) {
        for s in ["srv", "cli", "fld", "be"] {
            let _ = ovsnet::netns::delete(&self.ns(s));
        }
    }
}

/// The Docker side: a private engine in a namespace of its own, a
/// user-defined bridge network with a server, a client and a flooder.
struct DockerSide {
    engine: Option<DockerEngine>,
    ns: String,
}

impl DockerSide {
    fn up() -> DockerSide {
        let ns = format!("dnsd{}", std::process::id());
        ovsnet::netns::create(&ns).expect("engine namespace");
        let engine = support::bridge_engine(&ns);
        run(engine.cli().args(["network", "create", "--subnet", "10.99.0.0/24", "names"]));
        for c in ["srv", "cli", "fld"] {
            run(engine.cli().args(["run", "-d", "--network", "names", "--name", c, MINI_IMAGE, "/bin/sleep", "3600"]));
        }
        DockerSide { engine: Some(engine), ns }
    }

    fn container(&self, name: &str) -> Ns {
        let pid = self.engine.as_ref().expect("engine").container_pid(name).expect("pid");
        Ns::Path(PathBuf::from(format!("/proc/{pid}/ns/net")))
    }
}

impl Drop for DockerSide {
    fn drop(&mut self) {
        if let Some(mut e) = self.engine.take() {
            e.stop();
        }
        let _ = ovsnet::netns::delete(&self.ns);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let secs: u32 = args.first().and_then(|a| a.parse().ok()).unwrap_or(3);
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let ovsnet_bin = PathBuf::from(env!("CARGO_BIN_EXE_ovsnet"));
    println!("dns_vip: {secs} s per measurement, {rounds} rounds; load at start {}", load());

    let ov = OvsnetSide::up(&ovsnet_bin);
    let dk = DockerSide::up();
    let sides = [
        DnsSide {
            label: "ovsnet (agent at the gateway)",
            client: Ns::Named(ov.ns("cli")),
            flooder: Ns::Named(ov.ns("fld")),
            server: SocketAddrV4::new(ov.gateway, 53),
            name: "srv",
        },
        DnsSide {
            label: "Docker (embedded DNS, 127.0.0.11)",
            client: dk.container("cli"),
            flooder: dk.container("fld"),
            server: SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 11), 53),
            name: "srv",
        },
    ];
    // Both answer before anything is timed.
    for s in &sides {
        let f = dns_client(&s.client, s.server, s.name, 1);
        assert!(f.qps > 0.0, "{} does not answer", s.label);
    }
    // [side][quiet, flooded] -> per-round figures.
    let mut figures: Vec<[Vec<DnsFigures>; 2]> = vec![[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    let mut sent = [[0u64; 2]; 2];
    for round in 0..rounds {
        // Alternating which side goes first.
        for i in [round % 2, 1 - round % 2] {
            for (k, flooded) in [false, true].into_iter().enumerate() {
                let (f, n) = sides[i].measure(secs, flooded);
                sent[i][k] += n;
                figures[i][k].push(f);
            }
        }
    }
    println!();
    println!("DNS, one query at a time (median of {rounds} rounds of {secs} s)");
    println!(
        "{:<36} {:>9} {:>9} {:>9} {:>6}   {:>9} {:>9} {:>6}",
        "resolver", "p50 us", "p99 us", "q/s", "lost", "p99 flood", "q/s flood", "lost"
    );
    let mut rows = Vec::new();
    for (i, side) in sides.iter().enumerate() {
        let m = |k: usize, f: fn(&DnsFigures) -> f64| median(figures[i][k].iter().map(f).collect());
        let lost = |k: usize| figures[i][k].iter().map(|f| f.lost).sum::<u64>();
        let row = (m(0, |f| f.p50_us), m(0, |f| f.p99_us), m(0, |f| f.qps), m(1, |f| f.p99_us), m(1, |f| f.qps));
        println!(
            "{:<36} {:>9.0} {:>9.0} {:>9.0} {:>6}   {:>9.0} {:>9.0} {:>6}",
            side.label,
            row.0,
            row.1,
            row.2,
            lost(0),
            row.3,
            row.4,
            lost(1)
        );
        rows.push(row);
    }
    let (o, d) = (rows[0], rows[1]);
    println!(
        "ovsnet / Docker: p99 {:.2} (goal <= 1), q/s {:.2} (goal >= 1); under flood p99 / quiet p99: ovsnet {:.2}, Docker {:.2} (goal <= 2)",
        o.1 / d.1,
        o.2 / d.2,
        o.3 / o.1,
        d.3 / d.1
    );
    println!(
        "flood queries sent per round: ovsnet {}, Docker {}",
        sent[0][1] / rounds as u64,
        sent[1][1] / rounds as u64
    );

    // The service address against its backend directly.
    let client = Ns::Named(ov.ns("cli"));
    let backend = Ns::Named(ov.ns("be"));
    let (mut via, mut direct, mut cvia, mut cdirect) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let bind = SocketAddrV4::new(ov.backend, IPERF_PORT);
        let vip = SocketAddrV4::new(VIP, IPERF_PORT);
        let cbind = SocketAddrV4::new(ov.backend, CONN_PORT);
        let cvip = SocketAddrV4::new(VIP, CONN_PORT);
        for first in [round % 2 == 0, round % 2 != 0] {
            if first {
                via.push(iperf(&client, &backend, bind, vip, secs));
                cvia.push(connection_rate_to(&client, &backend, cbind, cvip, secs));
            } else {
                // Another port of the backend, which no service names, so
                // the direct path takes no connection tracking at all.
                let plain = SocketAddrV4::new(ov.backend, IPERF_PORT + 1);
                let cplain = SocketAddrV4::new(ov.backend, CONN_PORT + 1);
                direct.push(iperf(&client, &backend, plain, plain, secs));
                cdirect.push(connection_rate_to(&client, &backend, cplain, cplain, secs));
            }
        }
    }
    let (tv, td, cv, cd) = (median(via), median(direct), median(cvia), median(cdirect));
    println!();
    println!("Service address (one backend) against the backend directly (median of {rounds} rounds of {secs} s)");
    println!("{:<28} {:>12} {:>12} {:>8}", "", "via the VIP", "direct", "ratio");
    println!("{:<28} {:>12.3} {:>12.3} {:>8.2}", "throughput Gbit/s", tv, td, tv / td);
    println!("{:<28} {:>12.0} {:>12.0} {:>8.2}", "new connections/s", cv, cd, cv / cd);
    println!("load at end {}", load());
    drop(dk);
    drop(ov);
}
