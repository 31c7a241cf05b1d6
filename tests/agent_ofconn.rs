//! The agent's OpenFlow connection against a scripted switch on an
//! in-memory stream: handshake, echo both ways, multi-part flow stats,
//! bundles that commit and bundles the switch refuses.

use std::sync::Arc;
use std::time::Duration;

use ovsnet::agent::Stats;
use ovsnet::agent::ofconn::{OfConn, OfError};
use ovsnet::openflow::bundle::{OFPBCT_COMMIT_REPLY, OFPBCT_COMMIT_REQUEST, OFPBCT_OPEN_REPLY, OFPBCT_OPEN_REQUEST};
use ovsnet::openflow::message::{ErrorMsg, FeaturesReply, Hello, message_len};
use ovsnet::openflow::multipart::OFPMPF_MORE;
use ovsnet::openflow::text::parse_flow;
use ovsnet::openflow::{BundleControl, FlowStats, Header, Message, MultipartReply, MultipartReplyBody};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// The switch's end: whole messages in, messages out.
struct Switch {
    io: DuplexStream,
    buf: Vec<u8>,
}

impl Switch {
    async fn recv(&mut self) -> (Header, Message) {
        loop {
            if let Some(n) = message_len(&self.buf)
                && self.buf.len() >= n
            {
                let frame: Vec<u8> = self.buf.drain(..n).collect();
                return Message::decode(&frame).expect("decode");
            }
            let mut chunk = [0u8; 65536];
            let n = self.io.read(&mut chunk).await.expect("read");
            assert!(n > 0, "agent closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
    async fn send(&mut self, m: &Message, xid: u32) {
        self.io.write_all(&m.encode(xid)).await.expect("write");
    }
    /// The switch side of the handshake.
    async fn handshake(&mut self) {
        self.send(&Message::Hello(Hello::of13()), 100).await;
        let (_, m) = self.recv().await;
        assert!(matches!(m, Message::Hello(_)), "{m:?}");
        let (h, m) = self.recv().await;
        assert!(matches!(m, Message::FeaturesRequest), "{m:?}");
        let f = FeaturesReply {
            datapath_id: 0x42,
            n_buffers: 0,
            n_tables: 254,
            auxiliary_id: 0,
            capabilities: 0,
            reserved: 0,
        };
        self.send(&Message::FeaturesReply(f), h.xid).await;
        let (_, m) = self.recv().await;
        assert!(matches!(m, Message::SetConfig(_)), "{m:?}");
    }
}

fn flow(text: &str) -> FlowStats {
    let f = parse_flow(text).expect("flow");
    FlowStats {
        table_id: f.table_id,
        duration_sec: 0,
        duration_nsec: 0,
        priority: f.priority,
        idle_timeout: 0,
        hard_timeout: 0,
        flags: 0,
        cookie: f.cookie,
        packet_count: 0,
        byte_count: 0,
        r#match: f.r#match,
        instructions: f.instructions,
    }
}

async fn connect() -> (OfConn, Switch) {
    let (a, b) = tokio::io::duplex(1 << 20);
    let mut sw = Switch { io: b, buf: Vec::new() };
    let agent = tokio::spawn(OfConn::handshake(Box::new(a), Arc::new(Stats::default()), Duration::from_secs(5)));
    sw.handshake().await;
    let conn = agent.await.expect("join").expect("handshake");
    assert_eq!(conn.features.datapath_id, 0x42);
    (conn, sw)
}

#[tokio::test]
async fn flow_stats_in_parts_with_an_echo_in_between() {
    let (mut conn, mut sw) = connect().await;
    let switch = tokio::spawn(async move {
        let (h, m) = sw.recv().await;
        assert!(matches!(m, Message::MultipartRequest(_)), "{m:?}");
        // The switch probes while the agent waits for the reply.
        sw.send(&Message::EchoRequest(b"hi".to_vec()), 7).await;
        let part1 = MultipartReply {
            flags: OFPMPF_MORE,
            body: MultipartReplyBody::Flow(vec![flow("table=0,priority=1 actions=drop")]),
        };
        let part2 = MultipartReply {
            flags: 0,
            body: MultipartReplyBody::Flow(vec![flow("table=10,priority=5,ip actions=goto_table:30")]),
        };
        sw.send(&Message::MultipartReply(part1), h.xid).await;
        let (eh, echo) = sw.recv().await;
        assert_eq!((eh.xid, echo), (7, Message::EchoReply(b"hi".to_vec())), "echo answered while waiting");
        sw.send(&Message::MultipartReply(part2), h.xid).await;
        sw
    });
    let flows = conn.dump_flows().await.expect("dump");
    assert_eq!(flows.len(), 2);
    assert_eq!((flows[1].table_id, flows[1].priority), (10, 5));
    let mut sw = switch.await.expect("switch");
    // Our own keepalive.
    conn.probe().await.expect("probe");
    let (h, m) = sw.recv().await;
    assert_eq!(m, Message::EchoRequest(Vec::new()));
    assert_eq!(conn.echo_pending.map(|p| p.0), Some(h.xid));
    sw.send(&Message::EchoReply(Vec::new()), h.xid).await;
    let (h2, m2) = conn.recv().await.expect("echo reply");
    conn.unsolicited(&h2, m2).await.expect("handle");
    assert!(conn.echo_pending.is_none());
}

/// Serves one bundle: checks the adds' xids, optionally refuses the second add.
async fn serve_bundle(sw: &mut Switch, refuse: bool) -> usize {
    let (h, m) = sw.recv().await;
    let Message::BundleControl(open) = m else { panic!("expected bundle open, got {m:?}") };
    assert_eq!(open.ctrl_type, OFPBCT_OPEN_REQUEST);
    assert_eq!(open.flags, 3, "atomic and ordered");
    sw.send(&Message::BundleControl(BundleControl::new(open.bundle_id, OFPBCT_OPEN_REPLY, open.flags)), h.xid).await;
    let mut adds = 0;
    loop {
        let (h, m) = sw.recv().await;
        match m {
            Message::BundleAdd(add) => {
                // The codec keeps an inner xid only when it differs from the outer one.
                assert_eq!(add.inner_xid, None, "inner xid equals the bundle-add xid {}", h.xid);
                let (_, fm) = add.inner().expect("inner");
                assert!(matches!(fm, Message::FlowMod(_)));
                adds += 1;
                if refuse && adds == 2 {
                    let e = ErrorMsg::Standard { err_type: 5, code: 0, data: Vec::new() };
                    sw.send(&Message::Error(e), h.xid).await;
                }
            }
            Message::BundleControl(c) if c.ctrl_type == OFPBCT_COMMIT_REQUEST => {
                if refuse {
                    let e = ErrorMsg::Standard { err_type: 17, code: 0, data: Vec::new() };
                    sw.send(&Message::Error(e), h.xid).await;
                } else {
                    sw.send(
                        &Message::BundleControl(BundleControl::new(c.bundle_id, OFPBCT_COMMIT_REPLY, c.flags)),
                        h.xid,
                    )
                    .await;
                }
                return adds;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn mods() -> Vec<Vec<u8>> {
    [
        "table=0,priority=1 actions=drop",
        "table=10,priority=5,ip actions=goto_table:30",
        "table=30,priority=0 actions=drop",
    ]
    .iter()
    .map(|t| Message::FlowMod(parse_flow(t).expect("flow")).encode(0))
    .collect()
}

#[tokio::test]
async fn a_bundle_commits_or_fails_as_a_whole() {
    let (mut conn, mut sw) = connect().await;
    let switch = tokio::spawn(async move {
        let n = serve_bundle(&mut sw, false).await;
        (sw, n)
    });
    assert_eq!(conn.bundle(mods().into_iter()).await.expect("commit"), 3);
    let (mut sw, n) = switch.await.expect("switch");
    assert_eq!(n, 3);

    let switch = tokio::spawn(async move { serve_bundle(&mut sw, true).await });
    let err = conn.bundle(mods().into_iter()).await.expect_err("refused");
    assert!(matches!(err, OfError::Refused { .. }), "{err}");
    assert_eq!(switch.await.expect("switch"), 3);
}

#[tokio::test]
async fn a_switch_that_speaks_only_openflow_1_0_is_refused() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let mut sw = Switch { io: b, buf: Vec::new() };
    let agent = tokio::spawn(OfConn::handshake(Box::new(a), Arc::new(Stats::default()), Duration::from_secs(5)));
    // An OpenFlow 1.0 HELLO with no elements.
    sw.io.write_all(&[1, 0, 0, 8, 0, 0, 0, 1]).await.expect("write");
    let err = agent.await.expect("join").err().expect("refused");
    assert!(matches!(err, OfError::Version(_)), "{err}");
    // And a switch that hangs up.
    let (a, b) = tokio::io::duplex(1 << 16);
    drop(b);
    let err =
        OfConn::handshake(Box::new(a), Arc::new(Stats::default()), Duration::from_secs(5)).await.err().expect("closed");
    assert!(matches!(err, OfError::Closed | OfError::Io(_)), "{err}");
}
