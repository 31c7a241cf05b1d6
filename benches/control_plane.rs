//! The control plane at scale: N simulated hosts against a real 3-member
//! Raft cluster of `ovsdb-server`s on this machine.
//!
//! Each simulated host is a real OVSDB connection made by ovsnet's own
//! client, over TCP, with exactly the monitor requests, conditions and
//! writes of an agent (`ClusterDb::host_watch_requests`, the same
//! `monitor_cond_since`; the agent's own `Publisher::answer_probes` for
//! liveness; the client's own echo probes and reconnect jitter), and no
//! switch behind it: it keeps no state, only when its last notification
//! came. The cluster holds N hosts, each with 10 endpoints in a Fan network
//! (covered by the host's block, so other hosts never see them) and 2 in a
//! static network (listed one by one, so every host sees them).
//!
//! For each N it prints:
//! - the time to bring every host up (connect and first snapshot);
//! - steady state over `--steady` seconds: CPU (% of one core) and RSS of
//!   each member, leader first, and the notifications the hosts received;
//! - from a new endpoint's commit to every host notified (p50, p99, max,
//!   over `--rounds` endpoints listed one by one);
//! - `host del`'s question: probe a host, time to its answer;
//! - the leader killed: time until every host's monitors are
//!   re-established on the new leader, how many resumed from their last
//!   transaction and how many were sent everything again, and the bytes
//!   the surviving members wrote meanwhile.
//!
//! `--timed` first runs the liveness design this replaced at the first N:
//! every host bumps its `heartbeat` every 2 s and monitors every Host
//! column, so each beat reaches every host. Steady state only.
//!
//! Run (as root; it makes a network namespace of its own and runs nothing
//! outside it):
//!
//!     cargo bench --bench control_plane -- 1000 3000 --timed
//!
//! Arguments: host counts (default 1000); `--steady SECS` (20);
//! `--rounds R` (5); `--timed`; `--any-member` (hosts read from any member,
//! not only the leader); `--relays K` (hosts connect to K `ovsdb-server`
//! relays of the cluster, spread evenly, instead of to the members; the
//! leader kill is then measured as the time until a write made after it
//! reaches every host).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

mod support;
use support::{load, median};

use ovsnet::agent::publish::Publisher;
use ovsnet::cluster::server::{self, MemberSpec};
use ovsnet::cluster::{
    COVERED_KEY, COVERED_VALUE, ClusterDb, DB, HeldEndpoints, HostSpec, Ipam, NetworkSpec, covered_by_block, fan_block,
};
use ovsnet::net::{IpNet, Mac};
use ovsnet::ovsdb::{Client, ConnectOptions, Datum, MonitorRequest, Mutation, Mutator, Operation, Row, Uuid};

const FAN_PER_HOST: u32 = 10;
const LISTED_PER_HOST: u32 = 2;
const PORT_BASE: u16 = 6900;

struct Args {
    hosts: Vec<u32>,
    steady: u64,
    rounds: usize,
    timed: bool,
    any_member: bool,
    relays: usize,
}

fn args() -> Args {
    let mut a = Args { hosts: vec![], steady: 20, rounds: 5, timed: false, any_member: false, relays: 0 };
    let mut it = std::env::args().skip(1).filter(|s| s != "--bench");
    while let Some(s) = it.next() {
        match s.as_str() {
            "--steady" => a.steady = it.next().and_then(|v| v.parse().ok()).expect("--steady SECS"),
            "--rounds" => a.rounds = it.next().and_then(|v| v.parse().ok()).expect("--rounds R"),
            "--timed" => a.timed = true,
            "--any-member" => a.any_member = true,
            "--relays" => a.relays = it.next().and_then(|v| v.parse().ok()).expect("--relays K"),
            n => a.hosts.push(n.parse().unwrap_or_else(|_| panic!("not a host count: {n}"))),
        }
    }
    if a.hosts.is_empty() {
        a.hosts.push(1000);
    }
    a
}

fn host_ip(h: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 30, 0, 0)) + h)
}

fn listed_ip(h: u32, c: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(192, 168, 0, 0)) + h * LISTED_PER_HOST + c)
}

/// CPU ticks (user + system) and RSS (KiB) of a process.
fn cpu_and_rss(pid: i32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis; utime and stime are
    // fields 14 and 15 of the whole line.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    (ticks, rss)
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The whole run's clock, so hosts can record instants in an atomic, and
/// the run's counters.
struct Clock(Instant, Counters);

/// What every simulated host adds to.
#[derive(Default)]
struct Counters {
    /// Monitor notifications received (the hosts' own-row watches too).
    notifications: AtomicU64,
    /// Timed beats committed.
    beats: AtomicU64,
    /// Hosts that had to start again during bring-up.
    restarts: AtomicU64,
}

fn tracing_free_note(h: u32, e: &str) {
    if h % 100 == 0 {
        eprintln!("  h{h} starts again: {e}");
    }
}

impl Clock {
    fn now(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// One simulated host: its client, and when its last notification came.
/// Its tasks end with it (they hold clients that would reconnect).
struct Sim {
    client: Client,
    last_update: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Answers its probes (ends with it).
    _publisher: Option<Publisher>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Liveness {
    /// Today's: the agent answers probes; nothing between them.
    Probe,
    /// The design this replaced: a beat every 2 s, every Host column watched.
    Timed,
}

/// The cluster on disk and its members; stopped and removed on drop.
struct Cluster {
    dir: PathBuf,
    members: Vec<MemberSpec>,
    relays: Vec<(PathBuf, server::RelaySpec)>,
}

impl Cluster {
    fn start(tag: &str) -> Cluster {
        let dir = std::env::temp_dir().join(format!("ovsnet-cp-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let members = server::members_on("127.0.0.1".parse().expect("ip"), 3, PORT_BASE).expect("members");
        let info = server::init(&dir, &members).expect("cluster init");
        Cluster { dir, members: info.members, relays: vec![] }
    }

    /// Starts K relays of the cluster, each on a port of its own.
    fn start_relays(&mut self, k: usize) {
        for i in 0..k {
            let dir = self.dir.join(format!("relay{i}"));
            let spec = server::RelaySpec {
                address: "127.0.0.1".parse().expect("ip"),
                port: PORT_BASE + 50 + i as u16,
                source: self.remotes(),
                netns: None,
            };
            server::start_relay(&dir, &spec).expect("relay");
            self.relays.push((dir, spec));
        }
    }

    fn relay_pid(&self, i: usize) -> Option<i32> {
        server::member_pid(&self.relays[i].0, 1)
    }

    fn remotes(&self) -> String {
        self.members.iter().map(MemberSpec::client_remote).collect::<Vec<_>>().join(",")
    }

    fn pid(&self, n: usize) -> Option<i32> {
        server::member_pid(&self.dir, n)
    }

    /// The leader's member number (1-based).
    async fn leader(&self) -> usize {
        let o = ConnectOptions { timeout: Duration::from_secs(10), ..Default::default() };
        for _ in 0..100 {
            let st = server::status(&self.remotes(), &o).await.expect("status");
            if let Some(i) = st.iter().position(|m| m.leader == Some(true)) {
                return i + 1;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no leader");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (dir, _) in &self.relays {
            let _ = server::stop(dir);
        }
        let _ = server::stop(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes the cluster's rows: N hosts, the Fan and static networks, and
/// each host's endpoints, in transactions of a thousand rows.
async fn populate(db: &ClusterDb, n: u32, liveness: Liveness) {
    let fan_cidr = IpNet::parse_network("10.0.0.0/8").expect("cidr");
    let underlay = IpNet::parse_network("172.30.0.0/16").expect("underlay");
    let net = |name: &str, cidr: IpNet, vni, ipam, underlay| NetworkSpec {
        name: name.into(),
        cidr,
        vni: Some(vni),
        ipam,
        mtu: None,
        block_prefix: None,
        underlay,
        gateway: None,
        internal: false,
        dns_forward: true,
    };
    db.create_network(&net("fan", fan_cidr, 1, Ipam::Fan, Some(underlay))).await.expect("fan network");
    let st = IpNet::parse_network("192.168.0.0/16").expect("cidr");
    db.create_network(&net("st", st, 2, Ipam::Static, None)).await.expect("static network");
    let fan = db.network("fan").await.expect("fan").uuid;
    let st = db.network("st").await.expect("st").uuid;
    let mut ops = Vec::new();
    let flush = |ops: &mut Vec<Operation>| {
        let batch = std::mem::take(ops);
        async move {
            if !batch.is_empty() {
                db.client().transact(DB, batch).await.expect("populate");
            }
        }
    };
    for h in 1..=n {
        let mut host = Row::new();
        host.insert("name".into(), Datum::from(format!("h{h}")));
        host.insert("underlay_ip".into(), Datum::from(host_ip(h).to_string()));
        host.insert("tunnel_types".into(), Datum::set(["vxlan"]));
        match liveness {
            Liveness::Probe => host.insert("probe_timeout".into(), Datum::from(2000i64)),
            Liveness::Timed => host.insert("heartbeat_interval".into(), Datum::from(2000i64)),
        };
        ops.push(Operation::insert("Host", host));
        let block = fan_block(fan_cidr, underlay, host_ip(h)).expect("fan block");
        let std::net::IpAddr::V4(base) = block.addr else { unreachable!("an IPv4 Fan") };
        let base = u32::from(base);
        let endpoints = (0..FAN_PER_HOST)
            .map(|c| (fan, Ipv4Addr::from(base + c + 1), Some(block)))
            .chain((0..LISTED_PER_HOST).map(|c| (st, listed_ip(h, c), None)));
        for (c, (network, ip, block)) in endpoints.enumerate() {
            ops.push(endpoint_insert(network, h, ip, &format!("c{c}"), block));
        }
        if ops.len() >= 1000 {
            flush(&mut ops).await;
        }
    }
    flush(&mut ops).await;
}

fn endpoint_insert(network: Uuid, h: u32, ip: Ipv4Addr, container: &str, block: Option<IpNet>) -> Operation {
    let mac = Mac::from_ipv4(ip).to_string();
    let covered = covered_by_block(block, ip.into(), &mac);
    let mut row = Row::new();
    row.insert("network".into(), Datum::from(network));
    row.insert("host".into(), Datum::from(format!("h{h}")));
    row.insert("ip".into(), Datum::from(ip.to_string()));
    row.insert("mac".into(), Datum::from(mac));
    row.insert("container".into(), Datum::from(container));
    row.insert("interface".into(), Datum::from("eth0"));
    let ids: BTreeMap<&str, &str> = covered.then_some((COVERED_KEY, COVERED_VALUE)).into_iter().collect();
    row.insert("external_ids".into(), Datum::map(ids));
    Operation::insert("Endpoint", row)
}

/// Starts one simulated host: connects, monitors what its agent would, and
/// answers probes (or beats, with [`Liveness::Timed`]).
async fn start_sim(
    remotes: &str,
    opts: &ConnectOptions,
    h: u32,
    liveness: Liveness,
    clock: &Arc<Clock>,
    go: &tokio::sync::watch::Receiver<bool>,
) -> Result<Sim, String> {
    let (clock, go) = (clock.clone(), go.clone());
    let name = format!("h{h}");
    let db = ClusterDb::connect(remotes, opts).await.map_err(|e| e.to_string())?;
    let mut requests = db.host_watch_requests(&name).await.map_err(|e| e.to_string())?;
    if liveness == Liveness::Timed {
        // Every Host column, the heartbeat included, as before.
        for (t, r) in &mut requests {
            if *t == "Host" {
                *r = MonitorRequest::all();
            }
        }
    }
    let mut monitor = db.client().monitor_cond_since(DB, &requests).await.map_err(|e| e.to_string())?;
    // Nothing is kept: the snapshot goes at once.
    drop(std::mem::take(&mut monitor.initial));
    let last_update = Arc::new(AtomicU64::new(0));
    let (seen, heard) = (last_update.clone(), clock.clone());
    let mut tasks = vec![tokio::spawn(async move {
        while monitor.next().await.is_some() {
            seen.store(heard.now(), Relaxed);
            heard.1.notifications.fetch_add(1, Relaxed);
        }
    })];
    let mut publisher = None;
    match liveness {
        // The agent's own answering of probes.
        Liveness::Probe => {
            let host = HostSpec {
                name: name.clone(),
                underlay_ip: host_ip(h).into(),
                tunnel_types: ["vxlan".to_owned()].into(),
                probe_timeout_ms: 2000,
                external_ids: Default::default(),
            };
            let mut p = Publisher::new(db.clone(), host, HeldEndpoints::default());
            p.answer_probes().await.map_err(|e| e.to_string())?;
            publisher = Some(p);
        }
        Liveness::Timed => {
            let db = db.clone();
            let mut go = go;
            tasks.push(tokio::spawn(async move {
                // Beats start once every host is up (bring-up is measured
                // alike in both designs).
                let _ = go.wait_for(|g| *g).await;
                // A random phase, as agents started at different times.
                tokio::time::sleep(Duration::from_millis(u64::from(h * 7919 % 2000))).await;
                let mut tick = tokio::time::interval(Duration::from_secs(2));
                loop {
                    tick.tick().await;
                    let beat = Operation::mutate(
                        "Host",
                        vec![ovsnet::ovsdb::Condition::eq("name", name.as_str())],
                        vec![Mutation::new("heartbeat", Mutator::Add, 1i64)],
                    );
                    if db.client().transact(DB, vec![beat]).await.is_ok() {
                        clock.1.beats.fetch_add(1, Relaxed);
                    }
                }
            }));
        }
    }
    Ok(Sim { client: db.client().clone(), last_update, tasks, _publisher: publisher })
}

async fn run_one(n: u32, liveness: Liveness, a: &Args) {
    let design = match liveness {
        Liveness::Probe => "probes on demand",
        Liveness::Timed => "timed heartbeat (the design replaced)",
    };
    let reads = match (a.relays, a.any_member) {
        (0, false) => "the leader".to_owned(),
        (0, true) => "any member".to_owned(),
        (k, _) => format!("{k} relays"),
    };
    println!("\n== {n} hosts, liveness: {design}, hosts connected to {reads}");
    let mut cluster = Cluster::start(&format!("{n}"));
    let remotes = cluster.remotes();
    cluster.start_relays(a.relays);
    let admin_opts = ConnectOptions { timeout: Duration::from_secs(60), ..Default::default() };
    let admin = ClusterDb::connect(&remotes, &admin_opts).await.expect("admin connect");
    let t = Instant::now();
    populate(&admin, n, liveness).await;
    println!(
        "rows: {n} hosts, {} endpoints, written in {:.1}s",
        n * (FAN_PER_HOST + LISTED_PER_HOST),
        t.elapsed().as_secs_f64()
    );

    let clock = Arc::new(Clock(Instant::now(), Counters::default()));
    let opts = ConnectOptions {
        timeout: Duration::from_secs(120),
        request_timeout: Some(Duration::from_secs(60)),
        leader_only: !a.any_member,
        ..Default::default()
    };
    let t = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(8));
    let (go_tx, go) = tokio::sync::watch::channel(false);
    let mut joins = Vec::with_capacity(n as usize);
    for h in 1..=n {
        let remotes = match a.relays {
            0 => remotes.clone(),
            k => cluster.relays[h as usize % k].1.client_remote(),
        };
        let (opts, clock, gate, go) = (opts.clone(), clock.clone(), gate.clone(), go.clone());
        joins.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.expect("gate");
            // An overloaded leader may drop a host mid-start (its echo
            // probe unanswered): the host starts again, as an agent would.
            loop {
                match start_sim(&remotes, &opts, h, liveness, &clock, &go).await {
                    Ok(sim) => break sim,
                    Err(e) => {
                        clock.1.restarts.fetch_add(1, Relaxed);
                        tracing_free_note(h, &e);
                    }
                }
            }
        }));
    }
    let mut sims = Vec::with_capacity(n as usize);
    for j in joins {
        sims.push(j.await.expect("sim"));
        if sims.len() % 1000 == 0 {
            eprintln!("  {} hosts up ({:.0}s)", sims.len(), t.elapsed().as_secs_f64());
        }
    }
    let first_snapshot: u64 = sims.iter().map(|s| s.client.stats().bytes_received).sum();
    println!(
        "every host up (connected, first snapshot): {:.1}s; hosts started again after a dropped connection: {}",
        t.elapsed().as_secs_f64(),
        clock.1.restarts.load(Relaxed)
    );
    go_tx.send_replace(true);

    // Steady state.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let leader = cluster.leader().await;
    let order: Vec<usize> = std::iter::once(leader).chain((1..=3).filter(|m| *m != leader)).collect();
    let mut pids: Vec<i32> = order.iter().map(|m| cluster.pid(*m).expect("member pid")).collect();
    pids.extend((0..a.relays).map(|i| cluster.relay_pid(i).expect("relay pid")));
    let me = std::process::id() as i32;
    let before: Vec<(u64, u64)> = pids.iter().map(|p| cpu_and_rss(*p)).collect();
    let me_before = cpu_and_rss(me).0;
    let (notes_before, beats_before) = (clock.1.notifications.load(Relaxed), clock.1.beats.load(Relaxed));
    // The hosts that heard anything during the steady state.
    let marks: Vec<u64> = sims.iter().map(|s| s.last_update.load(Relaxed)).collect();
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(a.steady)).await;
    let moved = marks.iter().zip(&sims).filter(|(m, s)| s.last_update.load(Relaxed) != **m).count();
    let secs = t.elapsed().as_secs_f64();
    let tps = ticks_per_second();
    for (i, (p, b)) in pids.iter().zip(&before).enumerate() {
        let (ticks, rss) = cpu_and_rss(*p);
        println!(
            "  {:<9} {}: CPU {:5.1}% of a core, RSS {} MiB",
            match i {
                0 => "leader",
                1 | 2 => "follower",
                _ => "relay",
            },
            if i < 3 { order[i] } else { i - 2 },
            (ticks - b.0) as f64 / tps / secs * 100.0,
            rss / 1024
        );
    }
    println!(
        "  the simulated hosts (this process): CPU {:.1}% of a core, RSS {} MiB",
        (cpu_and_rss(me).0 - me_before) as f64 / tps / secs * 100.0,
        cpu_and_rss(me).1 / 1024
    );
    let asked = match liveness {
        // Each beat is meant for every host.
        Liveness::Timed => format!(" (the beats ask for {:.0}/s)", f64::from(n) / 2.0 * f64::from(n)),
        Liveness::Probe => String::new(),
    };
    println!(
        "  notifications received: {:.0}/s{asked}; beats committed: {:.0}/s; hosts notified at least once: {moved}; load {}",
        (clock.1.notifications.load(Relaxed) - notes_before) as f64 / secs,
        (clock.1.beats.load(Relaxed) - beats_before) as f64 / secs,
        load()
    );
    if liveness == Liveness::Timed {
        return;
    }

    // From a commit to every host notified.
    let mut lat = Vec::new();
    let mut worst = Vec::new();
    for r in 0..a.rounds {
        let st = admin.network("st").await.expect("st").uuid;
        let ip = Ipv4Addr::new(192, 168, 255, 1 + r as u8);
        let t0 = clock.now();
        admin.client().transact(DB, vec![endpoint_insert(st, 1, ip, "new", None)]).await.expect("new endpoint");
        let deadline = Instant::now() + Duration::from_secs(60);
        while sims.iter().any(|s| s.last_update.load(Relaxed) < t0) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut l: Vec<f64> =
            sims.iter().map(|s| s.last_update.load(Relaxed).saturating_sub(t0) as f64 / 1e6).collect();
        l.sort_by(f64::total_cmp);
        worst.push(*l.last().unwrap_or(&f64::NAN));
        lat.extend(l);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    lat.sort_by(f64::total_cmp);
    println!(
        "new endpoint's commit to every host notified ({} rounds): p50 {:.0} ms, p99 {:.0} ms, last host: median {:.0} ms",
        a.rounds,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        median(worst)
    );

    // host del's question.
    let mut answers = Vec::new();
    for h in [1u32, n / 2, n] {
        let name = format!("h{h}");
        let t = Instant::now();
        let from = admin.probe_host(&name).await.expect("probe");
        let moved = admin.heartbeat_moves(&name, from, Duration::from_secs(10)).await.expect("watch");
        assert!(moved.is_some(), "{name} did not answer its probe");
        answers.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!("a probe answered (host del's question): median {:.0} ms over 3 hosts", median(answers));

    // The leader killed.
    let received: u64 = sims.iter().map(|s| s.client.stats().bytes_received).sum();
    let sessions: Vec<u64> = sims.iter().map(|s| s.client.stats().sessions).collect();
    let t = Instant::now();
    server::kill_pid(pids[0]);
    let deadline = Instant::now() + Duration::from_secs(120);
    if a.relays > 0 {
        // The hosts keep their relays; a write made after the kill must
        // reach every host through them.
        let st = admin.network("st").await.expect("st").uuid;
        let t0 = clock.now();
        admin
            .client()
            .transact(DB, vec![endpoint_insert(st, 1, Ipv4Addr::new(192, 168, 254, 1), "after-kill", None)])
            .await
            .expect("a write after the kill");
        while sims.iter().any(|s| s.last_update.load(Relaxed) < t0) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let done = sims.iter().filter(|s| s.last_update.load(Relaxed) >= t0).count();
        let reconnected = sims.iter().zip(&sessions).filter(|(s, b)| s.client.stats().sessions > **b).count();
        println!(
            "leader killed: a write made after it reached {done}/{n} hosts {:.1}s after the kill; \
             hosts that had to reconnect: {reconnected}",
            t.elapsed().as_secs_f64()
        );
    } else {
        let resynced = |s: &Sim, before: u64| {
            let st = s.client.stats();
            st.sessions > before && st.resumed + st.resent >= 2
        };
        while !sims.iter().zip(&sessions).all(|(s, b)| resynced(s, *b)) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let took = t.elapsed().as_secs_f64();
        let done = sims.iter().zip(&sessions).filter(|(s, b)| resynced(s, **b)).count();
        let fully_resumed = sims.iter().filter(|s| s.client.stats().resent == 0).count();
        let resumed: u64 = sims.iter().map(|s| s.client.stats().resumed).sum();
        let resent: u64 = sims.iter().map(|s| s.client.stats().resent).sum();
        let bytes = sims.iter().map(|s| s.client.stats().bytes_received).sum::<u64>() - received;
        println!(
            "leader killed: {done}/{n} hosts resynced in {took:.1}s; hosts whose every monitor resumed: {fully_resumed}; \
             monitors resumed {resumed}, sent everything again {resent}; the hosts received {:.2} MiB meanwhile \
             ({:.0} bytes a host; their first snapshots were {:.1} MiB a host)",
            bytes as f64 / 1048576.0,
            bytes as f64 / f64::from(n),
            first_snapshot as f64 / f64::from(n) / 1048576.0
        );
    }
    drop(sims);
    drop(admin);
    drop(cluster);
}

/// Runs the bench inside a network namespace of its own (its loopback is
/// the only interface the members and hosts use).
fn enter_own_netns() -> String {
    let ns = format!("ovsnet-cp-{}", std::process::id());
    ovsnet::netns::create(&ns).expect("namespace");
    let fd = ovsnet::netns::open(&ns).expect("open namespace");
    nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
    ns
}

fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

fn main() {
    let a = args();
    if let Err(e) = ovsnet::sandbox::ovs_installed() {
        eprintln!("control_plane: {e}");
        std::process::exit(1);
    }
    raise_fd_limit();
    // Before any thread: the runtime's threads inherit the namespace.
    let ns = enter_own_netns();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let nl = ovsnet::netlink::Netlink::open_without_packet().expect("netlink");
        nl.lo_up().await.expect("lo up");
    });
    println!("control plane at scale: 3-member Raft cluster, simulated hosts over TCP; load {}", load());
    if a.timed {
        rt.block_on(run_one(a.hosts[0], Liveness::Timed, &a));
    }
    for n in &a.hosts {
        rt.block_on(run_one(*n, Liveness::Probe, &a));
    }
    drop(rt);
    let _ = ovsnet::netns::delete(&ns);
}
