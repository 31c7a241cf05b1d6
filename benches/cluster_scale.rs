//! Scale by simulation: the cluster state of 1,000 hosts with 10 endpoints
//! each, and what one host's agent derives from it (`remote_view`), with
//! no switches at all. Run: `cargo bench --bench cluster_scale`.

use std::net::Ipv4Addr;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use ovsnet::cluster::{ClusterState, DB, SCHEMA, remote_view};
use ovsnet::ovsdb::{Cache, DatabaseSchema};
use serde_json::{Value, json};

const HOSTS: u32 = 1000;
const PER_HOST: u32 = 10;

fn uuid(kind: u32, n: u32) -> String {
    format!("{kind:08x}-0000-4000-8000-{n:012x}")
}

/// An `update2` initial snapshot as the monitor would deliver it: a Fan
/// network (8 endpoints a host, covered by blocks) and a static one (2 a
/// host, listed one by one).
fn snapshot() -> Value {
    let fan = uuid(2, 1);
    let st = uuid(2, 2);
    let mut hosts = serde_json::Map::new();
    let mut eps = serde_json::Map::new();
    for h in 1..=HOSTS {
        let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 30, 0, 0)) + h);
        hosts.insert(
            uuid(1, h),
            json!({"initial": {"name": format!("h{h}"), "underlay_ip": ip.to_string(), "tunnel_types": "vxlan", "heartbeat": 1}}),
        );
        for c in 0..PER_HOST {
            let (net, addr) = if c < 8 {
                (&fan, Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + (h << 8) + c + 1))
            } else {
                (&st, Ipv4Addr::from(u32::from(Ipv4Addr::new(192, 168, 0, 0)) + h * 2 + c))
            };
            let o = addr.octets();
            eps.insert(
                uuid(3, h * 100 + c),
                json!({"initial": {"network": ["uuid", net], "host": format!("h{h}"), "ip": addr.to_string(),
                    "mac": format!("0a:58:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3]),
                    "container": format!("c{c}"), "interface": "eth1"}}),
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

fn bench(c: &mut Criterion) {
    let schema = Arc::new(DatabaseSchema::parse(SCHEMA).expect("schema"));
    assert_eq!(schema.name, DB);
    let snap = snapshot();
    let mut cache = Cache::new(schema.clone());
    cache.apply_update2(&snap).expect("apply");
    let state = ClusterState::from_cache(&cache);
    assert_eq!(state.endpoints.len(), (HOSTS * PER_HOST) as usize);
    let view = remote_view(&state, "h1");
    println!(
        "{} hosts x {} endpoints: remote view of h1 = {} blocks + {} individual endpoints",
        HOSTS,
        PER_HOST,
        view.blocks.len(),
        view.endpoints.len()
    );
    let json_bytes = snap.to_string().len();
    println!("monitor snapshot: {:.1} MiB of JSON", json_bytes as f64 / 1048576.0);

    c.bench_function("cluster/apply snapshot to cache (10k endpoints)", |b| {
        b.iter(|| {
            let mut cache = Cache::new(schema.clone());
            cache.apply_update2(&snap).expect("apply");
            cache
        })
    });
    c.bench_function("cluster/ClusterState::from_cache (1000 hosts x 10)", |b| b.iter(|| ClusterState::from_cache(&cache)));
    c.bench_function("cluster/remote_view (1000 hosts x 10)", |b| b.iter(|| remote_view(&state, "h1")));
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
