//! Agent figures on a private Open vSwitch (userspace datapath), in one run:
//!
//! 1. N endpoints on one bridge (patch ports with the `external_ids`
//!    `ovsnet attach` records, so no kernel devices are needed): the time
//!    from the switch connecting to the agent until all flows are installed,
//!    against `ovs-ofctl --bundle add-flows` of the same flows (printed by
//!    `ovsnet flows --desired`) on the same switch.
//! 2. The agent killed with SIGKILL and restarted with nothing changed:
//!    flow_mods sent (must be 0) and the time to verify.
//! 3. The agent's resident memory with N endpoints.
//! 4. iperf3 between two namespace containers through the pipeline against
//!    the same pair on a NORMAL bridge of the same datapath.
//!
//! Run:
//!
//!     cargo bench --bench agent
//!     OVSNET_BENCH_ENDPOINTS=2000 OVSNET_BENCH_IPERF_SECS=3 cargo bench --bench agent
//!     OVSNET_BENCH_IPERF_SECS=0 OVSNET_BENCH_ROUNDS=7 cargo bench --bench agent   # scale part only

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ovsnet::attach::{AttachRequest, Attacher, AttacherOptions};
use ovsnet::container::ContainerRef;
use ovsnet::net::Mac;
use ovsnet::ovsdb::{Atom, Client, Condition, ConnectOptions, Datum, Mutation, Mutator, Operation, Row};
use ovsnet::sandbox::{OvsSandbox, SandboxOptions, unique_name};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const BR: &str = "obr0";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

fn vsctl(sbx: &OvsSandbox, args: &[&str]) -> String {
    let out = Command::new("ovs-vsctl")
        .arg(format!("--db={}", sbx.db_remote()))
        .arg("--timeout=120")
        .args(args)
        .output()
        .expect("ovs-vsctl");
    assert!(out.status.success(), "ovs-vsctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ofctl(sbx: &OvsSandbox, args: &[&str]) -> String {
    let bundle = args.first() == Some(&"--bundle");
    let args = if bundle { &args[1..] } else { args };
    let out = Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow13", "--no-names"])
        .args(bundle.then_some("--bundle"))
        .args(&args[..1])
        .arg(format!("unix:{}", sbx.mgmt_socket(BR).display()))
        .args(&args[1..])
        .output()
        .expect("ovs-ofctl");
    assert!(out.status.success(), "ovs-ofctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn flow_count(sbx: &OvsSandbox) -> usize {
    ofctl(sbx, &["dump-aggregate"]).split("flow_count=").nth(1).and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

/// N endpoint ports, in transactions of 1000: patch ports (ofports without
/// kernel devices) carrying attach's external_ids.
fn add_endpoints(sbx: &OvsSandbox, n: usize) {
    let rt = rt();
    rt.block_on(async {
        let c = Client::connect(&sbx.db_remote(), &ConnectOptions::default()).await.expect("connect");
        let base = u32::from(Ipv4Addr::new(10, 0, 0, 2));
        for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
            let mut ops = Vec::new();
            let mut names = Vec::new();
            for &i in chunk {
                let ip = Ipv4Addr::from(base + i as u32);
                let name = format!("ep{i}");
                let ids = Datum::map([
                    ("ovsnet-bridge".to_owned(), BR.to_owned()),
                    ("ovsnet-ip".to_owned(), format!("{ip}/16")),
                    ("ovsnet-mac".to_owned(), Mac::from_ipv4(ip).to_string()),
                ]);
                let mut iface = Row::new();
                iface.insert("name".into(), Datum::from(name.as_str()));
                iface.insert("type".into(), Datum::from("patch"));
                iface.insert("options".into(), Datum::map([("peer".to_owned(), format!("none{i}"))]));
                iface.insert("external_ids".into(), ids);
                ops.push(Operation::insert("Interface", iface).uuid_name(&format!("i{i}")));
                let mut port = Row::new();
                port.insert("name".into(), Datum::from(name.as_str()));
                port.insert("interfaces".into(), Datum::named_uuid(&format!("i{i}")));
                ops.push(Operation::insert("Port", port).uuid_name(&format!("p{i}")));
                names.push(Atom::NamedUuid(format!("p{i}")));
            }
            ops.push(Operation::mutate(
                "Bridge",
                vec![Condition::eq("name", BR)],
                vec![Mutation::new("ports", Mutator::Insert, Datum::Set(names))],
            ));
            c.transact("Open_vSwitch", ops).await.expect("add endpoints");
        }
    });
    // Wait until ovs-vswitchd gave every port an ofport.
    let start = Instant::now();
    loop {
        let out = vsctl(sbx, &["--columns=ofport", "--format=csv", "--no-headings", "find", "Interface", "type=patch"]);
        let with = out.lines().filter(|l| l.trim().parse::<i64>().is_ok_and(|p| p > 0)).count();
        if with >= n {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(600), "ofports: {with}/{n}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

struct Agent {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Agent {
    fn start(sbx: &OvsSandbox, extra: &[String]) -> Agent {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ovsnet"))
            .arg(format!("--db={}", sbx.db_remote()))
            .args(["agent", "--bridge", BR])
            .arg(format!("--listen=unix:{}", sbx.dir().join("ovsnet-obr0.sock").display()))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("ovsnet agent");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        Agent { child, lines: rx }
    }
    /// The reconcile line and the "switch ready" line of the first switch connection.
    fn wait_ready(&self) -> (String, String) {
        let mut reconcile = String::new();
        loop {
            let l = self.lines.recv_timeout(Duration::from_secs(600)).expect("agent output");
            if l.starts_with("reconcile (switch connected)") {
                reconcile = l;
            } else if l.starts_with("switch ready") {
                return (reconcile, l);
            }
        }
    }
    fn rss_kb(&self) -> u64 {
        self.status_kb("VmRSS:")
    }
    /// A `kB` line of the agent's `/proc/PID/status` (0 if missing).
    fn status_kb(&self, key: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }
    /// Resident memory: anonymous (heap) and file-backed (the binary's
    /// pages), in MB.
    fn rss_split(&self) -> String {
        format!(
            "anon {:.1} + file {:.1}",
            self.status_kb("RssAnon:") as f64 / 1024.0,
            self.status_kb("RssFile:") as f64 / 1024.0
        )
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn secs_after(line: &str, marker: &str) -> f64 {
    line.split(marker)
        .nth(1)
        .and_then(|r| r.trim_start().split('s').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

fn field(line: &str, key: &str) -> u64 {
    line.split(&format!("{key}="))
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX)
}

fn scale(n: usize) {
    let sbx = OvsSandbox::start(SandboxOptions::default()).expect("private OVS");
    vsctl(&sbx, &["add-br", BR, "--", "set", "bridge", BR, "datapath_type=netdev"]);
    // The bridge is the agent's from the start (fail_mode=secure and its
    // controller), so OVS never flushes flows between the two runs.
    let sock = sbx.dir().join("ovsnet-obr0.sock");
    vsctl(&sbx, &["set-fail-mode", BR, "secure", "--", "set-controller", BR, &format!("unix:{}", sock.display())]);
    vsctl(&sbx, &["set", "controller", BR, "max_backoff=1000"]);
    let t = Instant::now();
    add_endpoints(&sbx, n);
    eprintln!("{n} endpoint ports ready in {:.1}s", t.elapsed().as_secs_f64());

    // The same flows through ovs-ofctl.
    let out = Command::new(env!("CARGO_BIN_EXE_ovsnet"))
        .arg(format!("--db={}", sbx.db_remote()))
        .args(["flows", BR, "--desired"])
        .output()
        .expect("ovsnet flows");
    assert!(out.status.success());
    let file = sbx.dir().join("desired.flows");
    std::fs::write(&file, &out.stdout).expect("write flows");
    let n_flows = out.stdout.iter().filter(|&&b| b == b'\n').count();
    let rounds = env_usize("OVSNET_BENCH_ROUNDS", 5).max(1);
    let mut ofctl_times = Vec::new();
    let mut agent_times = Vec::new();
    let mut ratios = Vec::new();
    let mut verify_times = Vec::new();
    let mut rss = 0;
    let mut restart_sent = Vec::new();
    // Each round installs the same flows both ways on the same switch,
    // emptied first; the order alternates so neither always runs on a
    // switch that has just done the other's work.
    let by_ofctl = || {
        ofctl(&sbx, &["del-flows"]);
        let t = Instant::now();
        ofctl(&sbx, &["--bundle", "add-flows", file.to_str().expect("path")]);
        let took = t.elapsed().as_secs_f64();
        assert_eq!(flow_count(&sbx), n_flows);
        took
    };
    for round in 0..rounds {
        let ofctl_first = round % 2 == 0;
        let o = if ofctl_first { by_ofctl() } else { f64::NAN };

        ofctl(&sbx, &["del-flows"]);
        let agent = Agent::start(&sbx, &[]);
        let (rec, ready) = agent.wait_ready();
        assert_eq!(field(&rec, "sent"), n_flows as u64, "{rec}");
        assert_eq!(flow_count(&sbx), n_flows);
        let a = secs_after(&ready, "desired flows");
        let rss_install = agent.rss_kb();
        let split_install = agent.rss_split();
        drop(agent); // SIGKILL
        let again = Agent::start(&sbx, &[]);
        let (rec, ready) = again.wait_ready();
        restart_sent.push(field(&rec, "sent"));
        let v = secs_after(&ready, "desired flows");
        let rss_verify = again.rss_kb();
        let split_verify = again.rss_split();
        rss = rss.max(rss_install).max(rss_verify);
        drop(again);

        let o = if ofctl_first { o } else { by_ofctl() };
        ofctl_times.push(o);
        agent_times.push(a);
        verify_times.push(v);
        ratios.push(a / o);
        eprintln!(
            "round {round} ({} first): ovs-ofctl {o:.3}s, agent {a:.3}s, ratio {:.2}; restart verify {v:.3}s, sent {}; RSS {:.1} MB ({split_install}) / {:.1} MB ({split_verify})",
            if ofctl_first { "ovs-ofctl" } else { "agent" },
            a / o,
            field(&rec, "sent"),
            rss_install as f64 / 1024.0,
            rss_verify as f64 / 1024.0
        );
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (o, a, v, r) = (med(&mut ofctl_times), med(&mut agent_times), med(&mut verify_times), med(&mut ratios));
    println!("endpoints: {n}, flows: {n_flows}, rounds: {rounds}, load average at end: {}", load_average());
    println!("install, ovs-ofctl --bundle add-flows: {o:.3} s (median)");
    println!("install, agent (switch connect to all installed): {a:.3} s (median)");
    println!("ratio agent / ovs-ofctl: {:.2} (of the medians), {r:.2} (median of the per-round ratios)", a / o);
    println!("restart unchanged: flow_mods sent {restart_sent:?}, verify {v:.3} s (median)");
    println!("agent RSS max: {:.1} MB", rss as f64 / 1024.0);
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn iperf(secs: usize) {
    let mut sbx = OvsSandbox::start(SandboxOptions {
        other_config: vec![("userspace-tso-enable".into(), "true".into())],
        ..SandboxOptions::default()
    })
    .expect("private OVS");
    vsctl(&sbx, &["add-br", BR, "--", "set", "bridge", BR, "datapath_type=netdev"]);
    vsctl(&sbx, &["add-br", "obr1", "--", "set", "bridge", "obr1", "datapath_type=netdev"]);
    let rt = rt();
    let mut namespaces = Vec::new();
    let mut attach = |bridge: &str, ip: &str| -> String {
        let ns = unique_name("bip");
        ovsnet::netns::create(&ns).expect("netns");
        namespaces.push(ns.clone());
        let req = AttachRequest::new(bridge, ContainerRef::Netns(ns.clone()), ip).expect("req");
        rt.block_on(async {
            let c = Client::connect(&sbx.db_remote(), &ConnectOptions::default()).await.expect("connect");
            let a = Attacher::new(
                c,
                AttacherOptions {
                    switch_netns: Some(sbx.netns().to_owned()),
                    docker_host: Some("unix:///nonexistent/docker.sock".into()),
                    ofport_timeout: Duration::from_secs(10),
                    check_operations: true,
                },
            )
            .expect("attacher");
            a.attach(&req).await.expect("attach");
        });
        ns
    };
    let p1 = attach(BR, "10.70.0.2/24");
    let p2 = attach(BR, "10.70.0.3/24");
    let n1 = attach("obr1", "10.71.0.2/24");
    let n2 = attach("obr1", "10.71.0.3/24");
    let _agent = Agent::start(&sbx, &[]);
    let _ = _agent.wait_ready();
    let run = |server: &str, client: &str, addr: &str| -> f64 {
        let mut srv = Command::new("ip")
            .args(["netns", "exec", server, "iperf3", "-s", "-1", "-B", addr])
            .stdout(Stdio::null())
            .spawn()
            .expect("iperf3 -s");
        let start = Instant::now();
        let out = loop {
            let out = Command::new("ip")
                .args(["netns", "exec", client, "iperf3", "-J", "-c", addr, "-t", &secs.to_string()])
                .output()
                .expect("iperf3 -c");
            let ok = out.status.success() && !String::from_utf8_lossy(&out.stdout).contains("\"error\"");
            if ok || start.elapsed() > Duration::from_secs(10) {
                break out;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let _ = srv.kill();
        let _ = srv.wait();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v["end"]["sum_received"]["bits_per_second"].as_f64().unwrap_or(0.0) / 1e9
    };
    // Both pairs reachable (ARP resolved, flows in place) before measuring.
    for (from, to) in [(&p1, "10.70.0.3"), (&n1, "10.71.0.3")] {
        let start = Instant::now();
        while !Command::new("ip")
            .args(["netns", "exec", from, "ping", "-c", "1", "-W", "1", to])
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(start.elapsed() < Duration::from_secs(20), "no ping to {to}");
        }
    }
    let mut pipe = Vec::new();
    let mut normal = Vec::new();
    for _ in 0..5 {
        pipe.push(run(&p2, &p1, "10.70.0.3"));
        normal.push(run(&n2, &n1, "10.71.0.3"));
    }
    eprintln!("pipeline {pipe:?} Gbit/s, NORMAL {normal:?} Gbit/s");
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (p, nn) = (med(&mut pipe), med(&mut normal));
    println!("iperf3 {secs}s, userspace TSO on: pipeline {p:.2} Gbit/s, NORMAL {nn:.2} Gbit/s, ratio {:.2}", p / nn);
    drop(_agent);
    sbx.stop_vswitchd();
    for ns in namespaces {
        let _ = ovsnet::netns::delete(&ns);
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs nothing.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if let Err(e) = ovsnet::sandbox::ovs_installed() {
        eprintln!("skipping: {e}");
        return;
    }
    let n = env_usize("OVSNET_BENCH_ENDPOINTS", 10_000);
    if n > 0 {
        scale(n);
    }
    let secs = env_usize("OVSNET_BENCH_IPERF_SECS", 5);
    if secs > 0 {
        iperf(secs);
    }
}
