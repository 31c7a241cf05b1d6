//! Convergence in a 5-host agent-mode lab: from `ovsnet attach` on one
//! host until the new container answers ICMP echo from every other host.
//!
//! The lab (`lab::up`): 5 hosts, 1 container each, 3 cluster database
//! members, one `ovsnet agent` per host following the cluster database.
//! Then, N times (default 100): a fresh "container" namespace on host
//! (i mod 5); the clock starts; `ovsnet --db HOST_DB --netns HOST attach
//! obr0 netns:NEW IP/8 --network lab --cluster-db REMOTES --host-name hN`
//! runs (the command, as an operator would run it); at the same moment the
//! container of each of the other 4 hosts sends an ICMP echo request to
//! the new address every few milliseconds; the figure is the time until
//! all 4 have an answer. The attach command's own duration (process start
//! to exit) is recorded too.
//!
//! Two phases of N each, in the same lab: addresses inside the host's Fan
//! block (the other hosts' block flows already cover them: only the
//! host's own agent has to act), then addresses outside every block,
//! which the cluster lists one by one (every other host's agent must learn
//! them from the cluster database and install a flow).
//!
//! Environment: `OVSNET_BENCH_ENDPOINTS` (default 100 per phase),
//! `OVSNET_BENCH_ADDRESSES` (block, individual; default both),
//! `OVSNET_BENCH_TUNNEL` (vxlan, gre, geneve; default vxlan),
//! `OVSNET_BENCH_PROBE_MS` (echo interval, default 2),
//! `OVSNET_BENCH_KEEP_NEIGHBOURS` (set: do not flush the containers'
//! neighbour entries after each measurement; see below).
//!
//! The kernel's neighbour (ARP) table is one table for every namespace of
//! the machine, 1,024 entries by default (`gc_thresh3`). Each measurement
//! leaves 8 entries (the 4 probers' for the new address, the new
//! container's for the 4 probers), so two phases of 100 would fill it:
//! then the new container's kernel cannot create the entry it needs to
//! answer and drops its echo replies (`IpOutDiscards`), although every
//! flow is in place. So the bench flushes the containers' entries after
//! each measurement, and reports how often the table was full (the
//! `neigh_table_full` column: `table_fulls` of `/proc/net/stat/arp_cache`,
//! machine-wide, during that measurement).
//! The agents log at debug level with timestamps (`hN/agent.log` in the
//! lab's directory); set `OVSNET_BENCH_KEEP_LOGS=DIR` to copy them there.
//!
//! Everything is taken down on drop, also on panic: the namespaces this
//! bench made, then the lab (its record lists what it made).
//!
//! Run: `cargo bench --bench multihost_convergence` (root, Open vSwitch).

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ovsnet::lab::{self, LabOptions, LabRecord, probe};
use ovsnet::vswitch::spec::TunnelType;

const HOSTS: usize = 5;

/// The lab and the namespaces made here, removed on drop.
struct Lab {
    root: PathBuf,
    name: String,
    rec: Option<LabRecord>,
    namespaces: Vec<String>,
    keep_logs: Option<PathBuf>,
    _tmp: tempfile::TempDir,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let (Some(dir), Some(rec)) = (&self.keep_logs, &self.rec) {
            let _ = std::fs::create_dir_all(dir);
            for h in &rec.hosts {
                let _ = std::fs::copy(h.dir.join("agent.log"), dir.join(format!("{}-agent.log", h.name)));
            }
        }
        for ns in self.namespaces.drain(..).rev() {
            if ovsnet::netns::exists(&ns) {
                let _ = ovsnet::netns::delete(&ns);
            }
        }
        if let Err(e) = lab::down(&self.root, &self.name) {
            eprintln!("lab down {}: {e}", self.name);
        }
    }
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The value at quantile `q` (nearest rank) of sorted `v`.
fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = (q * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn summary(what: &str, v: &mut [f64]) {
    v.sort_by(f64::total_cmp);
    println!(
        "{what:<40} n={:<4} p50 {:>7.1} ms   p99 {:>7.1} ms   max {:>7.1} ms   min {:>6.1} ms",
        v.len(),
        quantile(v, 0.5),
        quantile(v, 0.99),
        v.last().copied().unwrap_or(f64::NAN),
        v.first().copied().unwrap_or(f64::NAN)
    );
}

/// The kernel's IPv4 neighbour (ARP) table, which is one table for the
/// whole machine, every namespace included: its entries, how often an
/// entry could not be created because it was full (summed over CPUs), and
/// its hard limit (`gc_thresh3`).
#[derive(Debug, Clone, Copy, Default)]
struct NeighTable {
    entries: u64,
    table_fulls: u64,
    gc_thresh3: u64,
}

fn neigh_table() -> NeighTable {
    let text = std::fs::read_to_string("/proc/net/stat/arp_cache").unwrap_or_default();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let hex = |row: &[&str], i: Option<usize>| {
        i.and_then(|i| row.get(i)).and_then(|v| u64::from_str_radix(v, 16).ok()).unwrap_or(0)
    };
    let mut t = NeighTable::default();
    for line in lines {
        let row: Vec<&str> = line.split_whitespace().collect();
        // `entries` is the table's, repeated on every CPU's row.
        t.entries = hex(&row, col("entries"));
        t.table_fulls += hex(&row, col("table_fulls"));
    }
    t.gc_thresh3 = std::fs::read_to_string("/proc/sys/net/ipv4/neigh/default/gc_thresh3")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    t
}

/// Drops every neighbour entry of namespace `ns` (`ip -n NS neigh flush all`).
fn flush_neighbours(ns: &str) {
    let _ = Command::new("ip")
        .args(["-n", ns, "neigh", "flush", "all"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Which addresses the new containers get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Addresses {
    /// Inside the host's Fan block (10.0.N.0/24): the other hosts' flows
    /// for that block already cover it; only the host's own agent acts.
    Block,
    /// In the network but outside every host's block (10.200.N.0/24): the
    /// cluster lists it one by one, so every other host's agent must learn
    /// it from the cluster database and install a flow for it.
    Individual,
}

impl Addresses {
    fn address(self, host_no: usize, k: usize) -> Ipv4Addr {
        match self {
            Addresses::Block => Ipv4Addr::new(10, 0, host_no as u8, (10 + k) as u8),
            Addresses::Individual => Ipv4Addr::new(10, 200, host_no as u8, (10 + k) as u8),
        }
    }
    fn tag(self) -> &'static str {
        match self {
            Addresses::Block => "b",
            Addresses::Individual => "i",
        }
    }
    fn tag_long(self) -> &'static str {
        match self {
            Addresses::Block => "addresses inside each host's Fan block",
            Addresses::Individual => "addresses outside every block (each one a remote flow on the other hosts)",
        }
    }
    fn describe(self) -> String {
        format!("--- {}", self.tag_long())
    }
}

#[allow(clippy::too_many_arguments)]
fn run_phase(
    kind: Addresses,
    endpoints: usize,
    lab: &mut Lab,
    rec: &LabRecord,
    probers: &[(String, OwnedFd)],
    exe: &Path,
    remotes: &str,
    name: &str,
    probe_every: Duration,
    flush: bool,
) -> usize {
    let mut converge = Vec::new();
    let mut attach_ms = Vec::new();
    let mut after_attach = Vec::new();
    let mut failures = 0usize;
    let load_start = loadavg();
    let neigh_start = neigh_table();
    let mut hit_full = 0usize;
    println!("{}", kind.describe());
    println!("i,host,ip,start_unix_s,attach_ms,converged_ms,slowest_prober,neigh_table_full");
    for i in 0..endpoints {
        let h = &rec.hosts[i % HOSTS];
        let host_no = i % HOSTS + 1;
        let ip = kind.address(host_no, i / HOSTS);
        let ns = format!("{name}-{}{i}", kind.tag());
        lab.namespaces.push(ns.clone());
        ovsnet::netns::create(&ns).expect("create container namespace");

        let mut cmd = Command::new(exe);
        cmd.arg("--db")
            .arg(format!("unix:{}", h.dir.join("db.sock").display()))
            .args(["--netns", &h.netns, "attach", lab::BRIDGE])
            .arg(format!("netns:{ns}"))
            .arg(format!("{ip}/8"))
            .args(["--network", lab::LAB_NETWORK, "--cluster-db", remotes, "--host-name", &h.name])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());

        let others: Vec<&(String, OwnedFd)> = probers.iter().filter(|(hn, _)| *hn != h.name).collect();
        let fulls_before = neigh_table().table_fulls;
        // Wall clock of the start, to line up with the agents' logs.
        let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs_f64();
        let (status, attach_took, results, t0) = std::thread::scope(|s| {
            let t0 = Instant::now();
            let probes: Vec<_> = others
                .iter()
                .map(|(hn, fd)| {
                    s.spawn(move || {
                        let r = probe::ping_every(fd, ip, probe_every, Duration::from_secs(10));
                        (hn.clone(), r, Instant::now())
                    })
                })
                .collect();
            let out = cmd.output();
            let attach_took = t0.elapsed();
            let results: Vec<_> = probes.into_iter().map(|p| p.join().expect("probe thread")).collect();
            (out, attach_took, results, t0)
        });
        let out = status.expect("run ovsnet attach");
        // Times the kernel could not create a neighbour entry (anywhere on
        // the machine) while this one was measured: a reply that needs an
        // entry is then dropped by the sender's kernel, whatever the flows.
        let fulls = neigh_table().table_fulls.saturating_sub(fulls_before);
        if fulls > 0 {
            hit_full += 1;
        }
        if flush {
            // Every container keeps an entry for each address it talked
            // to, and the kernel's table is one for all namespaces (1,024
            // entries by default): forget them, so that 200 measurements
            // do not fill it (the probers resolve again through the
            // pipeline's ARP responder, as for the first one).
            for c in &rec.containers {
                flush_neighbours(&c.netns);
            }
            flush_neighbours(&ns);
        }
        if !out.status.success() {
            eprintln!("attach {ns} {ip} on {} failed: {}", h.name, String::from_utf8_lossy(&out.stderr));
            failures += 1;
            continue;
        }
        let mut slowest: Option<(String, Duration)> = None;
        let mut ok = true;
        for (hn, r, at) in results {
            match r {
                Ok(Some(_)) => {
                    let d = at.duration_since(t0);
                    if slowest.as_ref().is_none_or(|(_, s)| d > *s) {
                        slowest = Some((hn, d));
                    }
                }
                Ok(None) => {
                    eprintln!("{ip} on {} not reachable from {hn} within 10 s", h.name);
                    ok = false;
                }
                Err(e) => {
                    eprintln!("probe from {hn}: {e}");
                    ok = false;
                }
            }
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        match (ok, slowest) {
            (true, Some((hn, d))) => {
                println!("{i},{},{ip},{wall:.6},{:.1},{:.1},{hn},{fulls}", h.name, ms(attach_took), ms(d));
                converge.push(ms(d));
                attach_ms.push(ms(attach_took));
                after_attach.push((ms(d) - ms(attach_took)).max(0.0));
            }
            _ => {
                failures += 1;
                eprintln!("{ip}: the kernel's neighbour table was full {fulls} times meanwhile");
                eprintln!("agent log of {}:\n{}", h.name, tail(&h.dir.join("agent.log"), 30));
            }
        }
    }
    let load_end = loadavg();
    println!();
    println!(
        "{} endpoints attached through the cluster on {HOSTS} hosts ({} tunnels), {}; echo every {} ms from the 4 other hosts",
        converge.len(),
        rec.tunnel,
        kind.tag_long(),
        probe_every.as_millis()
    );
    summary("attach to reachable from all 4 others", &mut converge);
    summary("  of which the attach command", &mut attach_ms);
    summary("  after the attach command returned", &mut after_attach);
    println!("failures: {failures}");
    let neigh_end = neigh_table();
    println!(
        "kernel neighbour table (all namespaces): {} entries at the start, {} at the end, limit gc_thresh3 {}; full {} times during the phase, during {hit_full} of the {endpoints} measurements ({})",
        neigh_start.entries,
        neigh_end.entries,
        neigh_end.gc_thresh3,
        neigh_end.table_fulls.saturating_sub(neigh_start.table_fulls),
        if flush { "containers' entries flushed after each" } else { "entries kept" }
    );
    println!("load average: start of the loop {load_start}, end {load_end}");
    println!();
    failures
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that does not name this
    // bench means another one was asked for.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if !args.is_empty() && !args.iter().any(|a| "multihost_convergence".contains(a.as_str())) {
        return;
    }
    if let Err(e) = ovsnet::sandbox::ovs_installed() {
        eprintln!("multihost_convergence: Open vSwitch is needed: {e}");
        std::process::exit(1);
    }
    // Addresses .10 to .255 of a /24 per host.
    let endpoints: usize = env_or("OVSNET_BENCH_ENDPOINTS", 100).min(HOSTS * 245);
    let probe_every = Duration::from_millis(env_or("OVSNET_BENCH_PROBE_MS", 2));
    let tunnel = match std::env::var("OVSNET_BENCH_TUNNEL").as_deref() {
        Ok("gre") => TunnelType::Gre,
        Ok("geneve") => TunnelType::Geneve,
        _ => TunnelType::Vxlan,
    };
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_ovsnet"));
    // The agents inherit this: debug logs with timestamps, to see where
    // the time goes.
    if std::env::var_os("RUST_LOG").is_none() {
        // SAFETY: set before any other thread of this process starts.
        unsafe { std::env::set_var("RUST_LOG", "ovsnet=debug") };
    }

    let tmp = tempfile::tempdir().expect("temp dir");
    let name = format!("cv{}", std::process::id() % 100_000);
    let mut lab = Lab {
        root: tmp.path().to_owned(),
        name: name.clone(),
        rec: None,
        namespaces: Vec::new(),
        keep_logs: std::env::var_os("OVSNET_BENCH_KEEP_LOGS").map(PathBuf::from),
        _tmp: tmp,
    };
    let opts = LabOptions {
        name: name.clone(),
        hosts: HOSTS,
        containers: 1,
        tunnel,
        cluster_members: 3,
        state_root: lab.root.clone(),
        agents: true,
        agent_exe: Some(exe.clone()),
        docker: false,
        outside: false,
    };
    println!("load average before: {}", loadavg());
    let t = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let rec = match rt.block_on(lab::up(&opts)) {
        Ok(r) => r,
        Err(e) => {
            // What was made is recorded: Drop takes it down.
            eprintln!("lab up: {e}");
            drop(lab);
            std::process::exit(1);
        }
    };
    drop(rt);
    println!(
        "lab up ({HOSTS} hosts, {} tunnels, 3 db members, agents) in {:.1} s",
        rec.tunnel,
        t.elapsed().as_secs_f64()
    );
    lab.rec = Some(rec.clone());
    let full = lab::reachability(&rec, Duration::from_secs(5)).expect("reachability");
    assert!(full.all_reachable(), "lab not fully reachable: {:?}", full.unreachable_pairs());
    let remotes = rec.cluster_db.clone().expect("cluster database");

    // One prober per host: its lab container.
    let probers: Vec<(String, OwnedFd)> = rec
        .hosts
        .iter()
        .map(|h| {
            let c = rec.containers.iter().find(|c| c.host == h.name).expect("a container per host");
            (h.name.clone(), ovsnet::netns::open(&c.netns).expect("open prober namespace"))
        })
        .collect();

    let phases: Vec<Addresses> = match std::env::var("OVSNET_BENCH_ADDRESSES").as_deref() {
        Ok("block") => vec![Addresses::Block],
        Ok("individual") => vec![Addresses::Individual],
        _ => vec![Addresses::Block, Addresses::Individual],
    };
    let flush = std::env::var("OVSNET_BENCH_KEEP_NEIGHBOURS").is_err();
    let mut failures = 0;
    for kind in phases {
        failures += run_phase(kind, endpoints, &mut lab, &rec, &probers, &exe, &remotes, &name, probe_every, flush);
    }
    drop(probers);
    drop(lab);
    if failures > 0 {
        std::process::exit(1);
    }
}
