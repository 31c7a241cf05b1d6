//! Scale by simulation: the cluster state of 1,000 hosts with 10 endpoints
//! each, and everything one host's agent computes from it, with no switch
//! at all:
//!
//! 1. the monitor's initial `update2` snapshot, as bytes, parsed to JSON;
//! 2. applied to the monitor cache;
//! 3. `ClusterState::from_cache` (typed rows);
//! 4. `remote_view` for this host (also done inside step 5);
//! 5. the agent's pipeline `State`: the cluster's networks, this host's own
//!    10 local endpoints, then `agent::cluster::apply_remote`;
//! 6. `desired_flows`.
//!
//! Before criterion runs, one pass of the whole is timed step by step and
//! its memory is counted by a global allocator that tracks live and peak
//! heap bytes; the process's `VmHWM` is printed too. The same cluster is
//! also rendered as a flat design would (every remote endpoint listed one
//! by one, no blocks) to compare flow counts.
//!
//! Everything is done twice: from the whole snapshot (what `watch()`
//! follows), and from the host-scoped one (what `watch_for_host()`
//! follows: this host's Endpoint rows and the rows without the
//! `ovsnet-covered` marker, which the writer sets on rows their host's
//! block covers). Both must give the same desired flows.
//!
//! Run: `cargo bench --bench cluster_scale`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ovsnet::agent::cluster::{apply_remote, cluster_networks};
use ovsnet::cluster::{COVERED_KEY, COVERED_VALUE, ClusterState, DB, SCHEMA, covered_by_block, fan_block, remote_view};
use ovsnet::net::IpNet;
use ovsnet::net::Mac;
use ovsnet::ovsdb::{Cache, DatabaseSchema};
use ovsnet::pipeline::{self, DesiredFlows, LocalEndpoint, Pipeline, State, TunnelType, desired_flows};
use serde_json::{Value, json};

/// Counts live heap bytes and their high-water mark.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = LIVE.fetch_add(n, Relaxed) + n;
    PEAK.fetch_max(now, Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counters are only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const HOSTS: u32 = 1000;
const PER_HOST: u32 = 10;
/// Endpoints a host has in the Fan network (the rest are static).
const FAN_PER_HOST: u32 = 8;
/// The host whose agent is simulated.
const THIS_HOST: &str = "h1";
/// ofport of the flow-based VXLAN port on this host's bridge.
const VXLAN_OFPORT: u32 = 100;

fn uuid(kind: u32, n: u32) -> String {
    format!("{kind:08x}-0000-4000-8000-{n:012x}")
}

fn host_ip(h: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 30, 0, 0)) + h)
}

/// Endpoint `c` of host `h`: (network name, address).
fn endpoint_addr(h: u32, c: u32) -> (&'static str, Ipv4Addr) {
    if c < FAN_PER_HOST {
        // The Fan block of 172.30.x.y is 10.x.y.0/24.
        ("fan", Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + (h << 8) + c + 1))
    } else {
        ("st", Ipv4Addr::from(u32::from(Ipv4Addr::new(192, 168, 0, 0)) + h * 2 + c))
    }
}

/// An `update2` initial snapshot as the monitor would deliver it: a Fan
/// network (8 endpoints a host, covered by blocks) and a static one (2 a
/// host, listed one by one). Endpoint rows carry the `ovsnet-covered`
/// marker exactly where the writer sets it (the same rule as
/// `remote_view`). `scoped`: only the Endpoint rows the host-scoped
/// monitor condition selects for [`THIS_HOST`] (its own rows, and every
/// row without the marker).
fn snapshot(scoped: bool) -> Value {
    let fan_cidr = IpNet::parse_network("10.0.0.0/8").expect("cidr");
    let underlay = IpNet::parse_network("172.30.0.0/16").expect("underlay");
    let fan = uuid(2, 1);
    let st = uuid(2, 2);
    let mut hosts = serde_json::Map::new();
    let mut eps = serde_json::Map::new();
    for h in 1..=HOSTS {
        hosts.insert(
            uuid(1, h),
            json!({"initial": {"name": format!("h{h}"), "underlay_ip": host_ip(h).to_string(), "tunnel_types": "vxlan", "heartbeat": 1}}),
        );
        let block = fan_block(fan_cidr, underlay, host_ip(h)).expect("fan block");
        for c in 0..PER_HOST {
            let (net, addr) = endpoint_addr(h, c);
            let block = (net == "fan").then_some(block);
            let net = if net == "fan" { &fan } else { &st };
            let o = addr.octets();
            let mac = format!("0a:58:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3]);
            let covered = covered_by_block(block, addr.into(), &mac);
            let name = format!("h{h}");
            if scoped && covered && name != THIS_HOST {
                continue;
            }
            let ids = if covered { json!(["map", [[COVERED_KEY, COVERED_VALUE]]]) } else { json!(["map", []]) };
            eps.insert(
                uuid(3, h * 100 + c),
                json!({"initial": {"network": ["uuid", net], "host": name, "ip": addr.to_string(),
                    "mac": mac, "container": format!("c{c}"), "interface": "eth1", "external_ids": ids}}),
            );
        }
    }
    json!({
        "Host": hosts,
        "Network": {
            fan.clone(): {"initial": {"name": "fan", "vni": 1, "cidr": "10.0.0.0/8", "ipam": "fan", "underlay": "172.30.0.0/16"}},
            st.clone(): {"initial": {"name": "st", "vni": 2, "cidr": "192.168.0.0/16", "ipam": "static"}}
        },
        "Endpoint": eps,
    })
}

/// This host's own endpoints, as the agent reads them from its bridge's
/// `Interface` rows (ofports 1..=10).
fn local_endpoints() -> Vec<LocalEndpoint> {
    let h = THIS_HOST.trim_start_matches('h').parse::<u32>().unwrap_or(1);
    (0..PER_HOST)
        .map(|c| {
            let (network, ip) = endpoint_addr(h, c);
            LocalEndpoint {
                id: format!("ovsnet-c{c}"),
                network: network.into(),
                ofport: c + 1,
                ip,
                mac: Mac::from_ipv4(ip),
            }
        })
        .collect()
}

/// The agent's pipeline state before the remote part: the cluster's
/// networks (with their VNIs), the local endpoints, the tunnel port.
fn base_state(cluster: &ClusterState, locals: &[LocalEndpoint]) -> State {
    let mut st = State::default();
    for n in cluster_networks(cluster) {
        st.networks.push(pipeline::Network {
            name: n.name,
            vni: n.vni.unwrap_or(1),
            cidrs: vec![n.cidr],
            gateway: n.gateway,
            egress: n.egress,
        });
    }
    st.local_endpoints = locals.to_vec();
    st.tunnel_ofports.insert(TunnelType::Vxlan, VXLAN_OFPORT);
    st
}

/// What one agent ends with, and how long each step took.
struct Outcome {
    cache: Cache,
    cluster: ClusterState,
    desired: DesiredFlows,
    steps: Vec<(&'static str, Duration)>,
    remote_blocks: usize,
    remote_endpoints: usize,
}

/// The whole computation of one host's agent, from the snapshot's bytes.
fn whole(bytes: &[u8], schema: &Arc<DatabaseSchema>, pipe: &Pipeline, locals: &[LocalEndpoint]) -> Outcome {
    let mut steps = Vec::new();
    let mut t = Instant::now();
    let mut lap = |name: &'static str, steps: &mut Vec<(&'static str, Duration)>| {
        steps.push((name, t.elapsed()));
        t = Instant::now();
    };
    let value: Value = serde_json::from_slice(bytes).expect("snapshot JSON");
    lap("parse the snapshot's JSON", &mut steps);
    let mut cache = Cache::new(schema.clone());
    cache.apply_update2(&value).expect("apply");
    drop(value);
    lap("apply to the monitor cache", &mut steps);
    let cluster = ClusterState::from_cache(&cache);
    lap("ClusterState::from_cache", &mut steps);
    let view = remote_view(&cluster, THIS_HOST);
    drop(view);
    lap("remote_view (alone)", &mut steps);
    let mut state = base_state(&cluster, locals);
    let warnings = apply_remote(&mut state, &cluster, THIS_HOST, &[TunnelType::Vxlan]);
    assert!(warnings.is_empty(), "{warnings:?}");
    lap("pipeline State (apply_remote, incl. remote_view)", &mut steps);
    let desired = desired_flows(pipe, &state).expect("desired flows");
    lap("desired_flows", &mut steps);
    Outcome {
        remote_blocks: state.remote_blocks.len(),
        remote_endpoints: state.remote_endpoints.len(),
        cache,
        cluster,
        desired,
        steps,
    }
}

/// The same cluster rendered as a flat design would: no blocks, every
/// remote endpoint one by one.
fn flat_flow_count(cluster: &ClusterState, pipe: &Pipeline, locals: &[LocalEndpoint]) -> usize {
    let mut state = base_state(cluster, locals);
    for e in cluster.endpoints.iter().filter(|e| e.host != THIS_HOST) {
        let (Some(host), Some(net), std::net::IpAddr::V4(ip)) =
            (cluster.hosts.get(&e.host), cluster.network_by_uuid(e.network), e.ip)
        else {
            continue;
        };
        let std::net::IpAddr::V4(tun_dst) = host.underlay_ip else { continue };
        state.remote_endpoints.push(pipeline::RemoteEndpoint {
            network: net.name.clone(),
            ip,
            mac: Mac::from_ipv4(ip),
            tun_dst,
            tunnel: TunnelType::Vxlan,
        });
    }
    desired_flows(pipe, &state).expect("flat desired flows").flows.len()
}

fn mib(n: usize) -> f64 {
    n as f64 / 1_048_576.0
}

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One pass, timed per step, with heap bytes counted; returns the desired
/// flows.
fn report(
    label: &str,
    bytes: &[u8],
    schema: &Arc<DatabaseSchema>,
    pipe: &Pipeline,
    locals: &[LocalEndpoint],
) -> DesiredFlows {
    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let start = Instant::now();
    let out = whole(bytes, schema, pipe, locals);
    let total = start.elapsed();
    let peak = PEAK.load(Relaxed) - before;
    // What is left is what the agent keeps: the cluster monitor's cache
    // and state, and the flow set (the JSON, the view and the pipeline
    // state were dropped inside `whole`).
    let retained = LIVE.load(Relaxed) - before;
    let Outcome { cache, cluster, desired, steps, remote_blocks, remote_endpoints } = out;
    println!(
        "{label}: one host's agent, {HOSTS} hosts x {PER_HOST} endpoints; the snapshot holds {} Endpoint rows, {} bytes of update2 JSON:",
        cluster.endpoints.len(),
        bytes.len()
    );
    for (name, d) in &steps {
        println!("  {name:<50} {:>9.1} ms", d.as_secs_f64() * 1e3);
    }
    println!("  {:<50} {:>9.1} ms", "whole", total.as_secs_f64() * 1e3);
    println!(
        "  remote state: {remote_blocks} blocks + {remote_endpoints} individual endpoints; flows: {} ({:?})",
        desired.flows.len(),
        desired.per_kind
    );
    println!(
        "  heap: peak {:.1} MiB above the start, retained {:.1} MiB (cache + ClusterState + desired flows)",
        mib(peak),
        mib(retained)
    );
    let flat = flat_flow_count(&cluster, pipe, locals);
    println!(
        "  flat per-endpoint design (every remote endpoint listed, no blocks): {flat} flows, {:.1}x the {} above",
        flat as f64 / desired.flows.len().max(1) as f64,
        desired.flows.len()
    );
    drop((cache, cluster));
    if let Some(kib) = vm_hwm_kib() {
        println!(
            "  process VmHWM (whole bench process so far, incl. building the input): {:.1} MiB",
            kib as f64 / 1024.0
        );
    }
    desired
}

fn bench(c: &mut Criterion) {
    let schema = Arc::new(DatabaseSchema::parse(SCHEMA).expect("schema"));
    assert_eq!(schema.name, DB);
    let pipe = Pipeline::builtin().expect("pipeline");
    let locals = local_endpoints();
    let bytes = snapshot(false).to_string().into_bytes();
    let scoped_bytes = snapshot(true).to_string().into_bytes();
    let full = report("whole snapshot (watch)", &bytes, &schema, &pipe, &locals);
    let scoped = report("host-scoped snapshot (watch_for_host)", &scoped_bytes, &schema, &pipe, &locals);
    assert_eq!(full.flows, scoped.flows, "the host-scoped state must give the same flows");
    println!(
        "host-scoped / whole: {:.3} of the bytes; same {} desired flows",
        scoped_bytes.len() as f64 / bytes.len() as f64,
        full.flows.len()
    );

    for (label, bytes, rows) in [("whole", &bytes, HOSTS * PER_HOST), ("scoped", &scoped_bytes, 0)] {
        // Inputs for the per-step benches.
        let value: Value = serde_json::from_slice(bytes).expect("snapshot JSON");
        let mut cache = Cache::new(schema.clone());
        cache.apply_update2(&value).expect("apply");
        let state = ClusterState::from_cache(&cache);
        if rows > 0 {
            assert_eq!(state.endpoints.len(), rows as usize);
        }
        let mut pstate = base_state(&state, &locals);
        apply_remote(&mut pstate, &state, THIS_HOST, &[TunnelType::Vxlan]);

        c.bench_function(&format!("cluster/{label}/1 parse snapshot JSON"), |b| {
            b.iter(|| serde_json::from_slice::<Value>(bytes).expect("snapshot JSON"))
        });
        c.bench_function(&format!("cluster/{label}/2 apply snapshot to cache"), |b| {
            b.iter(|| {
                let mut cache = Cache::new(schema.clone());
                cache.apply_update2(&value).expect("apply");
                cache
            })
        });
        c.bench_function(&format!("cluster/{label}/3 ClusterState::from_cache"), |b| {
            b.iter(|| ClusterState::from_cache(&cache))
        });
        c.bench_function(&format!("cluster/{label}/4 remote_view"), |b| b.iter(|| remote_view(&state, THIS_HOST)));
        c.bench_function(&format!("cluster/{label}/5 pipeline State with apply_remote"), |b| {
            b.iter(|| {
                let mut st = base_state(&state, &locals);
                apply_remote(&mut st, &state, THIS_HOST, &[TunnelType::Vxlan]);
                st
            })
        });
        c.bench_function(&format!("cluster/{label}/6 desired_flows"), |b| {
            b.iter(|| desired_flows(&pipe, &pstate).expect("flows"))
        });
        c.bench_function(&format!("cluster/{label}/whole: snapshot bytes to desired flows"), |b| {
            b.iter(|| whole(bytes, &schema, &pipe, &locals).desired)
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
