//! OpenFlow codec figures: FLOW_MOD (5 match fields, 8 actions) encode and
//! decode (and encode from a flow kept as bytes, as the agent installs
//! them), and a 1,000-flow flow-stats reply. Run with
//! `cargo bench --bench openflow`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

use ovsnet::openflow::message::OFPFC_ADD;
use ovsnet::openflow::text::parse_flow;
use ovsnet::openflow::{FlowStats, Message, MultipartReply};
use ovsnet::pipeline::normalize;
use ovsnet::pipeline::render::flow_mod_bytes;

const FLOW: &str = "table=10,priority=100,in_port=3,dl_src=00:11:22:33:44:55,reg0=0x1,ip,nw_dst=10.1.0.0/16,\
actions=set_field:00:00:5e:00:01:01->eth_src,set_field:02:00:00:00:00:02->eth_dst,dec_ttl,\
load:0x5->NXM_NX_REG0[],move:NXM_NX_REG1[0..15]->NXM_NX_REG2[0..15],ct(commit,zone=5),resubmit(,20),output:2";

/// CPU time of this thread, in nanoseconds: unlike wall time it does not
/// count time the scheduler gave to other processes on a busy machine.
fn thread_cpu_ns() -> u128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe {
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
    }
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

/// Prints CPU-time rates, which stay meaningful on a shared machine.
fn cpu_time_rates(msg: &Message, bytes: &[u8]) {
    const N: u32 = 1_000_000;
    let mut buf = Vec::with_capacity(512);
    let t0 = thread_cpu_ns();
    for i in 0..N {
        buf.clear();
        black_box(msg).encode_into(i, &mut buf);
        black_box(buf.len());
    }
    let enc = (thread_cpu_ns() - t0) as f64 / f64::from(N);
    let t0 = thread_cpu_ns();
    for _ in 0..N / 4 {
        black_box(Message::decode(black_box(bytes)).expect("decode"));
    }
    let dec = (thread_cpu_ns() - t0) as f64 / f64::from(N / 4);
    println!(
        "cpu-time: flow_mod encode {enc:.0} ns ({:.2} M/s per core), decode {dec:.0} ns ({:.2} M/s per core)",
        1e3 / enc,
        1e3 / dec
    );
}

fn bench(c: &mut Criterion) {
    let fm = parse_flow(FLOW).expect("flow");
    assert_eq!(fm.r#match.fields.len(), 5);
    let msg = Message::FlowMod(fm.clone());
    let bytes = msg.encode(1);
    cpu_time_rates(&msg, &bytes);

    let mut g = c.benchmark_group("flow_mod");
    g.throughput(Throughput::Elements(1));
    let mut buf = Vec::with_capacity(512);
    g.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&msg).encode_into(1, &mut buf);
            black_box(buf.len())
        })
    });
    g.bench_function("encode_alloc", |b| b.iter(|| black_box(black_box(&msg).encode(1))));
    g.bench_function("decode", |b| b.iter(|| black_box(Message::decode(black_box(&bytes)).expect("decode"))));
    g.bench_function("parse_text", |b| b.iter(|| black_box(parse_flow(black_box(FLOW)).expect("parse"))));
    // The agent's path: a flow kept as bytes (key and value), encoded
    // straight from them.
    let (key, value) = normalize(&fm);
    g.bench_function("encode_from_flow_bytes", |b| {
        b.iter(|| black_box(flow_mod_bytes(black_box(&key), Some(black_box(&value)), OFPFC_ADD)))
    });
    g.finish();

    let flows: Vec<FlowStats> = (0..1000u32)
        .map(|i| FlowStats {
            table_id: (i % 8) as u8,
            duration_sec: i,
            duration_nsec: 0,
            priority: 100,
            idle_timeout: 0,
            hard_timeout: 0,
            flags: 0,
            cookie: u64::from(i),
            packet_count: 10,
            byte_count: 1000,
            r#match: fm.r#match.clone(),
            instructions: fm.instructions.clone(),
        })
        .collect();
    // 1,000 flows do not fit one message (64 KiB): a switch sends several
    // replies flagged REPLY_MORE; so do we, and we measure all of them.
    let replies: Vec<Message> =
        MultipartReply::split_flows(flows, usize::from(u16::MAX)).into_iter().map(Message::MultipartReply).collect();
    let reply_bytes: Vec<Vec<u8>> = replies.iter().map(|m| m.try_encode(2).expect("fits")).collect();
    let mut g = c.benchmark_group("flow_stats_reply_1000");
    g.throughput(Throughput::Elements(1000));
    let mut buf = Vec::with_capacity(256 * 1024);
    g.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            for m in black_box(&replies) {
                m.encode_into(2, &mut buf);
            }
            black_box(buf.len())
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            for raw in black_box(&reply_bytes) {
                black_box(Message::decode(raw).expect("decode"));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
