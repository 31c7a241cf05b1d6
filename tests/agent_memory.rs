//! Where the agent's memory goes with 10,000 endpoints, measured with a
//! counting allocator on the agent's own steps (no switch, no database):
//! the monitor's initial snapshot as ovsdb-server sends it, the cache, the
//! desired flows, a full read-back of them and the first install's diff.
//!
//! One test in this binary, so nothing else allocates while it counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use bytes::BytesMut;
use ovsnet::agent::{StateOptions, state_from_cache};
use ovsnet::openflow::FlowStats;
use ovsnet::ovsdb::framing::JsonCodec;
use ovsnet::ovsdb::rpc::Message;
use ovsnet::ovsdb::schema::DatabaseSchema;
use ovsnet::ovsdb::{Cache, TableUpdates};
use ovsnet::pipeline::diff::ReadBack;
use ovsnet::pipeline::{FlowSet, Pipeline, desired_flows, diff, installed_from_stats};
use tokio_util::codec::Decoder;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Relaxed) + l.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            if new >= l.size() {
                let now = LIVE.fetch_add(new - l.size(), Relaxed) + (new - l.size());
                PEAK.fetch_max(now, Relaxed);
            } else {
                LIVE.fetch_sub(l.size() - new, Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static A: Counting = Counting;

const N: usize = 10_000;

fn uuid(table: u32, i: usize) -> String {
    format!("{table:08x}-0000-4000-8000-{i:012x}")
}

/// The `monitor_cond` reply for obr0 with N endpoints (patch ports with
/// attach's external_ids, as the agent benchmark makes them), with the
/// columns the agent monitors and default-valued ones left out, as
/// ovsdb-server does in `update2`.
fn snapshot_json() -> String {
    use std::fmt::Write as _;
    let mut s = String::from("{\"Bridge\":{\"");
    s += &uuid(1, 0);
    s += "\":{\"initial\":{\"name\":\"obr0\",\"ports\":[\"set\",[";
    for i in 0..=N {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "[\"uuid\",\"{}\"]", uuid(2, i));
    }
    s += "]]}}},\"Port\":{";
    for i in 0..=N {
        let name = if i == N { "obr0".to_owned() } else { format!("ep{i}") };
        let _ = write!(
            s,
            "{}\"{}\":{{\"initial\":{{\"name\":\"{name}\",\"interfaces\":[\"uuid\",\"{}\"]}}}}",
            if i > 0 { "," } else { "" },
            uuid(2, i),
            uuid(3, i)
        );
    }
    s += "},\"Interface\":{";
    for i in 0..N {
        let ip = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(10, 0, 0, 2)) + i as u32);
        let o = ip.octets();
        let _ = write!(
            s,
            "\"{}\":{{\"initial\":{{\"name\":\"ep{i}\",\"type\":\"patch\",\"options\":[\"map\",[[\"peer\",\"none{i}\"]]],\"ofport\":{},\
             \"external_ids\":[\"map\",[[\"ovsnet-bridge\",\"obr0\"],[\"ovsnet-ip\",\"{ip}/16\"],[\"ovsnet-mac\",\"0a:58:{:02x}:{:02x}:{:02x}:{:02x}\"]]]}}}},",
            uuid(3, i),
            i + 1,
            o[0],
            o[1],
            o[2],
            o[3]
        );
    }
    let _ = write!(
        s,
        "\"{}\":{{\"initial\":{{\"name\":\"obr0\",\"type\":\"internal\",\"ofport\":65534,\"mac_in_use\":\"aa:bb:cc:dd:ee:ff\"}}}}}}}}",
        uuid(3, N)
    );
    s
}

fn mb(b: usize) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// Live heap now, and the peak since the last call (which resets it).
fn step(what: &str, base: usize) -> usize {
    let live = LIVE.load(Relaxed);
    let peak = PEAK.swap(live, Relaxed);
    eprintln!(
        "{what:<48} live {:7.2} MB   peak {:7.2} MB",
        mb(live.saturating_sub(base)),
        mb(peak.saturating_sub(base))
    );
    live.saturating_sub(base)
}

/// The flows as the switch gives them back (flow stats).
fn as_stats(flows: &FlowSet) -> Vec<FlowStats> {
    flows
        .to_flow_mods()
        .into_iter()
        .map(|fm| FlowStats {
            table_id: fm.table_id,
            duration_sec: 0,
            duration_nsec: 0,
            priority: fm.priority,
            idle_timeout: 0,
            hard_timeout: 0,
            flags: 0,
            cookie: fm.cookie,
            packet_count: 0,
            byte_count: 0,
            r#match: fm.r#match,
            instructions: fm.instructions,
        })
        .collect()
}

#[test]
fn agent_state_for_10000_endpoints() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ovsdb-schemas/vswitch.ovsschema");
    let schema = Arc::new(DatabaseSchema::parse(&std::fs::read_to_string(path).expect("schema")).expect("parse"));
    let pipeline = Pipeline::builtin().expect("pipeline");
    let opts = StateOptions { bridge: "obr0".into(), ..StateOptions::default() };
    let text = snapshot_json();
    // The reply as it comes off the socket: one JSON-RPC frame.
    let wire = format!("{{\"id\":3,\"result\":{text},\"error\":null}}");
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    eprintln!("snapshot JSON text: {:.2} MB", mb(text.len()));

    // For comparison, the reader before: the reply as a `serde_json::Value`
    // tree, then the rows built from it.
    let value: serde_json::Value = serde_json::from_str(&text).expect("json");
    let value_bytes = step("(before) reply parsed as serde_json::Value", base);
    let reference = TableUpdates::from_update2(&value).expect("updates");
    let value_peak = PEAK.load(Relaxed) - base;
    step("(before)   + TableUpdates", base);
    drop(value);
    step("(before) TableUpdates (Value dropped)", base);

    // What the client does: the framing decoder hands over the reply with
    // its `result` still text (a slice of the frame, which it reads into
    // its buffer), and the monitor's reader parses that text straight into
    // rows.
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let mut codec = JsonCodec::default();
    let mut buf = BytesMut::from(wire.as_bytes());
    let msg = codec.decode(&mut buf).expect("frame").expect("a whole message");
    let Message::Response { result, .. } = msg else { panic!("a response") };
    step("reply framed, result left as text", base);
    let updates = TableUpdates::from_update2_slice(result.as_bytes()).expect("updates");
    let direct_peak = PEAK.load(Relaxed) - base;
    step("  + TableUpdates straight from the text", base);
    drop(result);
    drop(buf);
    let updates_bytes = step("TableUpdates (frame dropped)", base);
    assert_eq!(updates, reference, "the direct parse gives what the Value path gives");
    drop(reference);
    drop(text);
    drop(wire);
    eprintln!(
        "snapshot peak: via Value {:.2} MB, direct {:.2} MB (TableUpdates {:.2} MB, the Value alone {:.2} MB)",
        mb(value_peak),
        mb(direct_peak),
        mb(updates_bytes),
        mb(value_bytes)
    );
    // The snapshot's peak is the rows plus about the frame, not the rows
    // plus a JSON tree ten times the text.
    assert!(direct_peak < updates_bytes + (12 << 20), "direct parse peak {direct_peak}");
    let base = LIVE.load(Relaxed) - updates_bytes;
    PEAK.store(LIVE.load(Relaxed), Relaxed);
    // What the agent does with it: the rows move into the cache.
    let mut cache = Cache::new(schema);
    cache.apply_owned(updates).expect("apply");
    let cache_bytes = step("cache (rows moved from the TableUpdates)", base);

    let (state, warnings) = state_from_cache(&cache, &opts);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(state.local_endpoints.len(), N);
    step("  + pipeline state", base);
    let d = desired_flows(&pipeline, &state).expect("desired");
    drop(state);
    let desired = d.flows;
    assert_eq!(desired.len(), 4 * N + 26);
    let steady = step("  + desired flows (state dropped)", base);
    let desired_bytes = steady - cache_bytes;

    // First install: everything is added, borrowed from the desired set.
    let tables = pipeline.table_ids();
    let empty: Vec<FlowStats> = Vec::new();
    let mut rb = ReadBack::new(&desired, &tables);
    rb.add_stats(&empty);
    let first = rb.finish();
    assert_eq!(first.add.len(), desired.len());
    let mut bytes = 0;
    for m in first.messages() {
        bytes += m.len();
    }
    assert!(bytes > 0);
    drop(first);
    let install_peak = PEAK.load(Relaxed).saturating_sub(base);
    step("  + first install (changes, then messages)", base);

    // Restart: the switch's flows are read back part by part (here, parts
    // of 200 flows: an OpenFlow reply holds a few hundred) and compared
    // with the desired set as they come.
    let stats = as_stats(&desired);
    let stats_bytes = step("  + all flows as decoded flow stats (test input)", base) - steady;
    let mut rb = ReadBack::new(&desired, &tables);
    for part in stats.chunks(200) {
        rb.add_stats(part);
    }
    assert_eq!(rb.read(), desired.len());
    let verify = rb.finish();
    assert!(verify.is_empty());
    drop(verify);
    let verify_peak = PEAK.load(Relaxed).saturating_sub(base) - stats_bytes;
    drop(stats);
    step("  read-back compared (test input dropped)", base);

    // The copy the agent no longer makes, for comparison.
    let stats = as_stats(&desired);
    let installed = installed_from_stats(&stats, &tables);
    drop(stats);
    assert!(diff(&desired, &installed).is_empty());
    let second = step("  + a second flow set of the read-back (not kept)", base) - steady;
    drop(installed);
    let end = step("cache + desired", base);
    // Everything transient is gone again (a few bytes of lazily made
    // statics aside).
    assert!(end.abs_diff(steady) < 64 * 1024, "{end} vs {steady}");
    eprintln!(
        "per endpoint: cache {:.0} B, desired flows {:.0} B; over cache + desired: first install {:.2} MB, verify {:.2} MB (a second flow set: {:.2} MB)",
        cache_bytes as f64 / N as f64,
        desired_bytes as f64 / N as f64,
        mb(install_peak - steady),
        mb(verify_peak.saturating_sub(steady)),
        mb(second)
    );
    // What the agent keeps for 10,000 endpoints, and what installing or
    // verifying 40,017 flows costs on top: bounds a change that copies
    // the flows or the rows again would break.
    assert!(cache_bytes < 24 << 20, "cache {cache_bytes}");
    assert!(desired_bytes < 8 << 20, "desired {desired_bytes}");
    assert!(install_peak - steady < 2 << 20, "first install {}", install_peak - steady);
    assert!(verify_peak.saturating_sub(steady) < 2 << 20, "verify {verify_peak}");
}
