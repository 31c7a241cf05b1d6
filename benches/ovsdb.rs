//! OVSDB framing + parsing throughput on a large monitor update: one
//! `update2` notification inserting 10,000 `Interface` rows, each with
//! `external_ids`, `options` and an `ofport`, as `ovsdb-server` would send
//! it when a monitor starts on a database with 10,000 ports.
//!
//! Run: `cargo bench --bench ovsdb`

use std::hint::black_box;
use std::sync::Arc;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ovsnet::ovsdb::framing::JsonCodec;
use ovsnet::ovsdb::ops::OpOutcome;
use ovsnet::ovsdb::rpc::Message;
use ovsnet::ovsdb::{Cache, DatabaseSchema, TableUpdates};
use serde_json::{Value, json};
use tokio_util::codec::Decoder;

fn big_update2(rows: usize) -> Vec<u8> {
    let mut ifaces = serde_json::Map::new();
    for i in 0..rows {
        let uuid = format!("{:08x}-0000-4000-8000-{:012x}", i, i);
        ifaces.insert(
            uuid,
            json!({"initial": {
                "name": format!("veth{i:05}"),
                "type": "",
                "ofport": i as i64 + 1,
                "admin_state": "up",
                "link_state": "up",
                "mac_in_use": format!("02:00:00:{:02x}:{:02x}:{:02x}", (i >> 16) & 255, (i >> 8) & 255, i & 255),
                "external_ids": ["map", [["container_id", format!("{i:064x}")], ["iface-id", format!("port-{i}")]]],
                "options": ["map", []],
                "statistics": ["map", [["rx_packets", i as i64 * 7], ["tx_packets", i as i64 * 5], ["rx_bytes", i as i64 * 900]]]
            }}),
        );
    }
    let msg = json!({"id": null, "method": "update2", "params": ["m", {"Interface": Value::Object(ifaces)}]});
    msg.to_string().into_bytes()
}

fn decode_all(wire: &[u8], chunk: usize) -> Vec<Message> {
    let mut codec = JsonCodec::default();
    let mut buf = BytesMut::with_capacity(chunk);
    let mut out = Vec::new();
    for piece in wire.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Some(m) = codec.decode(&mut buf).expect("frame") {
            out.push(m);
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let wire = big_update2(10_000);
    let schema_text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/ovsdb-schemas/vswitch.ovsschema"))
        .expect("schema");
    let schema = Arc::new(DatabaseSchema::parse(&schema_text).expect("schema"));
    let mut g = c.benchmark_group("ovsdb_framing");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.sample_size(20);
    // Framing + JSON parsing, fed in 64 KiB reads as from a socket.
    g.bench_function(format!("frame+parse update2 {} bytes, 64KiB reads", wire.len()), |b| {
        b.iter(|| black_box(decode_all(black_box(&wire), 64 << 10)))
    });
    // Baseline: serde_json alone parsing the same bytes into a Value,
    // no framing (the floor for any JSON-RPC reader built on serde_json).
    g.bench_function("baseline serde_json::from_slice::<Value>", |b| {
        b.iter(|| black_box(serde_json::from_slice::<Value>(black_box(&wire)).expect("json")))
    });
    // Plus notation decoding and applying to a monitor cache, as the
    // client does it: the updates straight from their text into rows.
    g.bench_function("frame+parse+cache apply", |b| {
        b.iter(|| {
            let msgs = decode_all(&wire, 64 << 10);
            let mut cache = Cache::new(schema.clone());
            for m in msgs {
                if let Message::Notification { params, .. } = m {
                    let parts = params.elements().expect("params");
                    let u = TableUpdates::from_update2_slice(parts[1].as_bytes()).expect("update2");
                    cache.apply_owned(u).expect("apply");
                }
            }
            black_box(cache.table("Interface").count())
        })
    });
    // The same through a `serde_json::Value` tree first (the reader before
    // the direct parse), for comparison.
    g.bench_function("frame+parse+cache apply, via Value", |b| {
        b.iter(|| {
            let msgs = decode_all(&wire, 64 << 10);
            let mut cache = Cache::new(schema.clone());
            for m in msgs {
                if let Message::Notification { params, .. } = m {
                    let params = params.to_value().expect("params");
                    let u = TableUpdates::from_update2(&params[1]).expect("update2");
                    cache.apply_owned(u).expect("apply");
                }
            }
            black_box(cache.table("Interface").count())
        })
    });
    g.finish();
}

/// The reply to one transaction of 4 selects (Open_vSwitch, Bridge, Port,
/// Interface, about 10 columns each) on a bridge with `ports` internal
/// ports, shaped as `ovsdb-server` sends it.
fn select_reply(ports: usize) -> Vec<u8> {
    let uuid = |kind: u32, i: usize| json!(["uuid", format!("{kind:08x}-0000-4000-8000-{i:012x}")]);
    let port_refs: Vec<Value> = (0..ports).map(|i| uuid(3, i)).collect();
    let ovs = json!({"_uuid": uuid(1, 0), "bridges": ["set", [uuid(2, 0)]], "cur_cfg": 7, "next_cfg": 7,
        "ovs_version": "3.1.0", "db_version": "8.3.1", "datapath_types": ["set", ["netdev", "system"]],
        "external_ids": ["map", [["hostname", "h1"], ["system-id", "h1"]]], "other_config": ["map", []],
        "manager_options": ["set", []]});
    let bridge = json!({"_uuid": uuid(2, 0), "name": "obr0", "datapath_type": "netdev",
        "ports": ["set", port_refs], "fail_mode": "secure", "protocols": ["set", ["OpenFlow13"]],
        "controller": ["set", []], "external_ids": ["map", []], "other_config": ["map", []], "datapath_id": "00000a0b0c0d0e0f"});
    let port = |i: usize| {
        json!({"_uuid": uuid(3, i), "name": format!("veth{i:05}"), "interfaces": uuid(4, i),
        "tag": ["set", []], "trunks": ["set", []], "vlan_mode": ["set", []], "bond_mode": ["set", []],
        "external_ids": ["map", [["container_id", format!("{i:064x}")]]], "other_config": ["map", []], "fake_bridge": false})
    };
    let iface = |i: usize| {
        json!({"_uuid": uuid(4, i), "name": format!("veth{i:05}"), "type": "internal",
        "ofport": i as i64 + 1, "admin_state": "up", "link_state": "up", "mtu": 1500,
        "mac_in_use": format!("02:00:00:00:{:02x}:{:02x}", (i >> 8) & 255, i & 255),
        "external_ids": ["map", [["iface-id", format!("port-{i}")]]], "options": ["map", []], "error": ["set", []]})
    };
    let result = json!([{"rows": [ovs]}, {"rows": [bridge]},
        {"rows": (0..ports).map(port).collect::<Vec<_>>()}, {"rows": (0..ports).map(iface).collect::<Vec<_>>()}]);
    json!({"id": 17, "result": result, "error": null}).to_string().into_bytes()
}

/// Where the time of a `transact` of 4 selects goes on our side, stage by
/// stage (each row includes the ones before it).
fn bench_select_reply(c: &mut Criterion) {
    let wire = select_reply(200);
    let mut g = c.benchmark_group("ovsdb_select_reply");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function(format!("serde_json::from_slice::<Value> {} bytes", wire.len()), |b| {
        b.iter(|| black_box(serde_json::from_slice::<Value>(black_box(&wire)).expect("json")))
    });
    // As `Framed` feeds it: reads of 8 KiB (its default buffer) at most.
    g.bench_function("frame+Message, 8KiB reads", |b| b.iter(|| black_box(decode_all(black_box(&wire), 8 << 10))));
    g.bench_function("frame+Message+rows", |b| {
        b.iter(|| {
            let mut msgs = decode_all(black_box(&wire), 8 << 10);
            let Some(Message::Response { result, .. }) = msgs.pop() else { panic!("a response") };
            let result = result.to_value().expect("result");
            let results: Vec<OpOutcome> =
                result.as_array().expect("array").iter().map(|r| OpOutcome::from_json(r).expect("outcome")).collect();
            black_box(results)
        })
    });
    g.finish();
}

criterion_group!(benches, bench, bench_select_reply);
criterion_main!(benches);
