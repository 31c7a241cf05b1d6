//! Adding N ports to a bridge: N `ovs-vsctl add-port` runs, against ovsnet
//! in one process with one transaction per port, and with one transaction
//! for all, each on a fresh private OVS, in one run.
//!
//!     cargo bench --bench vswitch_ports
//!     OVSNET_BENCH_PORTS=1000 OVSNET_BENCH_ROUNDS=3 OVSNET_BENCH_WAIT=1 cargo bench --bench vswitch_ports
//!
//! `OVSNET_BENCH_WAIT=0` (default) stops ovs-vswitchd and uses `--no-wait`
//! on both sides, so the figure is the database path alone; `=1` keeps
//! ovs-vswitchd running and both sides wait for it to apply each change.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use ovsnet::ovsdb::{Client, ConnectOptions};
use ovsnet::sandbox::{OvsSandbox, SandboxOptions};
use ovsnet::vswitch::{BridgeSpec, DatapathType, PortSpec, Vswitch};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn port(i: usize) -> PortSpec {
    PortSpec { name: format!("p{i}"), kind: "internal".into(), ..Default::default() }
}

struct Bench {
    sandbox: OvsSandbox,
    rt: tokio::runtime::Runtime,
    vs: Vswitch,
}

fn setup(wait: bool) -> Bench {
    let mut sandbox = OvsSandbox::start(SandboxOptions::default()).expect("private OVS");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = rt.block_on(Client::connect(&sandbox.db_remote(), &ConnectOptions::default())).unwrap();
    let vs = Vswitch::new(client).with_wait(Some(Duration::from_secs(60)));
    let mut spec = BridgeSpec::new("obr0").unwrap();
    spec.datapath = Some(DatapathType::Netdev);
    rt.block_on(vs.add_bridge(&spec)).unwrap();
    if !wait {
        sandbox.stop_vswitchd();
    }
    let vs = vs.with_wait(wait.then_some(Duration::from_secs(60)));
    Bench { sandbox, rt, vs }
}

fn vsctl_runs(n: usize, wait: bool) -> Duration {
    let b = setup(wait);
    let db = format!("--db={}", b.sandbox.db_remote());
    let start = Instant::now();
    for i in 0..n {
        let name = format!("p{i}");
        let mut cmd = Command::new("ovs-vsctl");
        cmd.arg(&db);
        if !wait {
            cmd.arg("--no-wait");
        }
        let st =
            cmd.args(["add-port", "obr0", &name, "--", "set", "interface", &name, "type=internal"]).status().unwrap();
        assert!(st.success());
    }
    start.elapsed()
}

fn ovsnet_per_port(n: usize, wait: bool) -> Duration {
    let b = setup(wait);
    let start = Instant::now();
    for i in 0..n {
        b.rt.block_on(b.vs.add_ports("obr0", &[port(i)])).unwrap();
    }
    start.elapsed()
}

fn ovsnet_one_txn(n: usize, wait: bool) -> Duration {
    let b = setup(wait);
    let ports: Vec<PortSpec> = (0..n).map(port).collect();
    let start = Instant::now();
    b.rt.block_on(b.vs.add_ports("obr0", &ports)).unwrap();
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing
    // and expects a quick run.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = if quick { 20 } else { env_usize("OVSNET_BENCH_PORTS", 1000) };
    let rounds = if quick { 1 } else { env_usize("OVSNET_BENCH_ROUNDS", 3) };
    let wait = std::env::var("OVSNET_BENCH_WAIT").is_ok_and(|v| v == "1");
    if let Err(e) = ovsnet::sandbox::ovs_installed() {
        eprintln!("skipping: {e}");
        return;
    }
    let (mut a, mut b, mut c) = (vec![], vec![], vec![]);
    for _ in 0..rounds {
        a.push(vsctl_runs(n, wait));
        b.push(ovsnet_per_port(n, wait));
        c.push(ovsnet_one_txn(n, wait));
    }
    let (a, b, c) = (median(a), median(b), median(c));
    println!("adding {n} ports to obr0 (median of {rounds} rounds, wait for ovs-vswitchd: {wait})");
    println!("  {n} x ovs-vsctl add-port          {:>10.1} ms  ({:.2} ms/port)", ms(a), ms(a) / n as f64);
    println!(
        "  ovsnet, one transaction per port {:>10.1} ms  ({:.2} ms/port)  {:.1}x faster",
        ms(b),
        ms(b) / n as f64,
        ms(a) / ms(b)
    );
    println!("  ovsnet, one transaction for all  {:>10.1} ms                   {:.1}x faster", ms(c), ms(a) / ms(c));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
