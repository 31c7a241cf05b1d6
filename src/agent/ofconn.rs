//! One OpenFlow 1.3 connection with the switch: the handshake,
//! echo, flow-stats read-back and bundles. The agent's loop owns it; while
//! waiting for a reply it still answers echo requests and counts what the
//! switch sends on its own.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio_util::codec::FramedRead;

use super::Stats;
use crate::openflow::bundle::{OFPBCT_COMMIT_REPLY, OFPBCT_COMMIT_REQUEST, OFPBCT_OPEN_REPLY, OFPBCT_OPEN_REQUEST};
use crate::openflow::message::{FeaturesReply, Hello, OFP13_VERSION, SwitchConfig, negotiate};
use crate::openflow::multipart::OFPMPF_MORE;
use crate::openflow::stream::{OfCodec, StreamError};
use crate::openflow::{BundleAdd, BundleControl, FlowStats, Header, Message, MultipartReplyBody};

/// What can go wrong on the switch connection.
#[derive(Debug, thiserror::Error)]
pub enum OfError {
    #[error("switch connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("the switch closed the connection")]
    Closed,
    #[error("no reply from the switch within {0:?}")]
    Timeout(Duration),
    #[error("bad message from the switch: {0}")]
    Decode(#[from] crate::openflow::Error),
    #[error("version negotiation failed: {0}")]
    Version(String),
    #[error("the switch refused {what}: {error}")]
    Refused { what: &'static str, error: String },
}

impl From<StreamError> for OfError {
    fn from(e: StreamError) -> OfError {
        match e {
            StreamError::Io(e) => OfError::Io(e),
            StreamError::Decode(e) => OfError::Decode(e),
            e @ StreamError::BadLength(_) => {
                OfError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
            }
            e @ StreamError::Truncated { .. } => {
                OfError::Io(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, e.to_string()))
            }
        }
    }
}

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A connected, handshaken switch.
pub struct OfConn {
    reader: FramedRead<ReadHalf<Box<dyn Io>>, OfCodec>,
    writer: WriteHalf<Box<dyn Io>>,
    next_xid: u32,
    pub features: FeaturesReply,
    /// When we last heard from the switch.
    pub last_rx: Instant,
    /// Our echo request still unanswered, and when it was sent.
    pub echo_pending: Option<(u32, Instant)>,
    stats: std::sync::Arc<Stats>,
    timeout: Duration,
}

fn refused(what: &'static str, m: &Message) -> OfError {
    OfError::Refused { what, error: crate::openflow::text::format_message(m) }
}

impl OfConn {
    /// HELLO both ways (version negotiation), FEATURES, SET_CONFIG.
    pub async fn handshake(
        io: Box<dyn Io>,
        stats: std::sync::Arc<Stats>,
        timeout: Duration,
    ) -> Result<OfConn, OfError> {
        Self::handshake_then(io, stats, timeout, || ()).await
    }

    /// [`OfConn::handshake`], calling `after_hello` once our HELLO is on
    /// its way (see `Agent::wake_switch`).
    pub async fn handshake_then(
        io: Box<dyn Io>,
        stats: std::sync::Arc<Stats>,
        timeout: Duration,
        after_hello: impl FnOnce(),
    ) -> Result<OfConn, OfError> {
        let (r, w) = tokio::io::split(io);
        let mut c = OfConn {
            reader: FramedRead::new(r, OfCodec),
            writer: w,
            next_xid: 1,
            features: FeaturesReply {
                datapath_id: 0,
                n_buffers: 0,
                n_tables: 0,
                auxiliary_id: 0,
                capabilities: 0,
                reserved: 0,
            },
            last_rx: Instant::now(),
            echo_pending: None,
            stats,
            timeout,
        };
        let xid = c.xid();
        c.send(&Message::Hello(Hello::of13()), xid).await?;
        after_hello();
        let (h, hello) = c.recv_timeout().await?;
        match hello {
            Message::Hello(hello) => {
                let v = negotiate(&h, &hello).map_err(|e| OfError::Version(format!("{e:?}")))?;
                if v != OFP13_VERSION {
                    return Err(OfError::Version(format!("negotiated version {v:#x}, need OpenFlow 1.3")));
                }
            }
            other => {
                return Err(OfError::Version(format!(
                    "expected HELLO, got {}",
                    crate::openflow::text::format_message(&other)
                )));
            }
        }
        let xid = c.xid();
        c.send(&Message::FeaturesRequest, xid).await?;
        c.features = loop {
            let (h, m) = c.recv_timeout().await?;
            match m {
                Message::FeaturesReply(f) if h.xid == xid => break f,
                Message::Error(_) if h.xid == xid => return Err(refused("FEATURES_REQUEST", &m)),
                other => c.unsolicited(&h, other).await?,
            }
        };
        let xid = c.xid();
        // Whole packets to the controller, no buffering (the pipeline
        // sends none; this is for packet-ins someone else's flows cause).
        c.send(&Message::SetConfig(SwitchConfig { flags: 0, miss_send_len: 0xffff }), xid).await?;
        Ok(c)
    }

    pub fn xid(&mut self) -> u32 {
        let x = self.next_xid;
        self.next_xid = self.next_xid.wrapping_add(1).max(1);
        x
    }

    pub async fn send(&mut self, m: &Message, xid: u32) -> Result<(), OfError> {
        self.writer.write_all(&m.encode(xid)).await?;
        Ok(())
    }

    /// The next message; `Closed` at EOF. Cancel-safe.
    pub async fn recv(&mut self) -> Result<(Header, Message), OfError> {
        match self.reader.next().await {
            None => Err(OfError::Closed),
            Some(Err(e)) => Err(e.into()),
            Some(Ok(m)) => {
                self.last_rx = Instant::now();
                Ok(m)
            }
        }
    }

    async fn recv_timeout(&mut self) -> Result<(Header, Message), OfError> {
        tokio::time::timeout(self.timeout, self.recv()).await.map_err(|_| OfError::Timeout(self.timeout))?
    }

    /// Handles what the switch sends on its own: echo, packet-in,
    /// port-status, errors for requests nobody waits for.
    pub async fn unsolicited(&mut self, h: &Header, m: Message) -> Result<(), OfError> {
        use std::sync::atomic::Ordering::Relaxed;
        match m {
            Message::EchoRequest(data) => self.send(&Message::EchoReply(data), h.xid).await?,
            Message::EchoReply(_) if self.echo_pending.is_some_and(|(x, _)| x == h.xid) => {
                self.echo_pending = None;
            }
            Message::PacketIn(p) => {
                self.stats.packet_ins.fetch_add(1, Relaxed);
                tracing::debug!(table = p.table_id, cookie = p.cookie, "packet-in");
            }
            Message::PortStatus(p) => {
                self.stats.port_status.fetch_add(1, Relaxed);
                tracing::debug!(port = p.desc.port_no, name = %p.desc.name, reason = p.reason, "port-status");
            }
            Message::Error(_) => {
                tracing::warn!(xid = h.xid, "switch error: {}", crate::openflow::text::format_message(&m));
            }
            _ => {}
        }
        Ok(())
    }

    /// Sends our own echo request (keepalive).
    pub async fn probe(&mut self) -> Result<(), OfError> {
        let xid = self.xid();
        self.send(&Message::EchoRequest(Vec::new()), xid).await?;
        self.echo_pending = Some((xid, Instant::now()));
        Ok(())
    }

    /// Every flow of every table (flow stats, all parts).
    pub async fn dump_flows(&mut self) -> Result<Vec<FlowStats>, OfError> {
        let mut out = Vec::new();
        self.dump_flows_each(|part| out.extend(part)).await?;
        Ok(out)
    }

    /// Every flow of every table, handed over one reply part at a time (so
    /// tens of thousands of decoded flows are never held at once).
    pub async fn dump_flows_each(&mut self, each: impl FnMut(Vec<FlowStats>)) -> Result<(), OfError> {
        self.read_flows(&super::reconcile::flow_stats_request(), each).await
    }

    /// Sends a flow-stats `request` and hands over each reply part.
    pub async fn read_flows(&mut self, request: &Message, mut each: impl FnMut(Vec<FlowStats>)) -> Result<(), OfError> {
        self.read_multipart(request, "flow stats request", |body| {
            if let MultipartReplyBody::Flow(f) = body {
                each(f);
            }
        })
        .await
    }

    /// Every meter's configuration (METER_CONFIG for all meters, all parts).
    pub async fn read_meters(&mut self) -> Result<Vec<crate::openflow::multipart::MeterConfig>, OfError> {
        use crate::openflow::{MultipartRequest, multipart::MultipartRequestBody};
        const OFPM_ALL: u32 = 0xffff_ffff;
        let request =
            Message::MultipartRequest(MultipartRequest::new(MultipartRequestBody::MeterConfig { meter_id: OFPM_ALL }));
        let mut out = Vec::new();
        self.read_multipart(&request, "meter config request", |body| {
            if let MultipartReplyBody::MeterConfig(c) = body {
                out.extend(c);
            }
        })
        .await?;
        Ok(out)
    }

    /// The ids of every group on the switch (GROUP_DESC, all parts).
    pub async fn read_group_ids(&mut self) -> Result<Vec<u32>, OfError> {
        use crate::openflow::{MultipartRequest, multipart::MultipartRequestBody};
        let request = Message::MultipartRequest(MultipartRequest::new(MultipartRequestBody::GroupDesc));
        let mut out = Vec::new();
        self.read_multipart(&request, "group description request", |body| {
            if let MultipartReplyBody::GroupDesc(g) = body {
                out.extend(g.into_iter().map(|g| g.group_id));
            }
        })
        .await?;
        Ok(out)
    }

    /// Sends a multipart `request` and hands over each reply part's body
    /// until the last; an error reply is the switch refusing `what`.
    async fn read_multipart(
        &mut self,
        request: &Message,
        what: &'static str,
        mut each: impl FnMut(MultipartReplyBody),
    ) -> Result<(), OfError> {
        let xid = self.xid();
        self.send(request, xid).await?;
        loop {
            let (h, m) = self.recv_timeout().await?;
            if h.xid != xid {
                self.unsolicited(&h, m).await?;
                continue;
            }
            match m {
                Message::MultipartReply(r) => {
                    let more = r.flags & OFPMPF_MORE != 0;
                    each(r.body);
                    if !more {
                        return Ok(());
                    }
                }
                Message::Error(_) => return Err(refused(what, &m)),
                other => self.unsolicited(&h, other).await?,
            }
        }
    }

    /// Sends a METER_MOD or GROUP_MOD (a refusal arrives later, and is
    /// logged).
    pub async fn send_mod(&mut self, m: Message) -> Result<(), OfError> {
        let xid = self.xid();
        self.send(&m, xid).await
    }

    /// Applies `mods` in one ONF bundle (atomic, ordered): open, add each,
    /// commit. Fails, with nothing applied, if the switch refuses any.
    /// `mods` are encoded FLOW_MOD messages (any xid: it is rewritten).
    ///
    /// The open, the adds and the commit go out together, without waiting
    /// for the open's reply: the switch handles a connection's messages in
    /// order, so one round trip (one turn of ovs-vswitchd's main loop)
    /// replaces two. A refused open makes the commit fail too, so the
    /// commit's answer still ends the exchange.
    pub async fn bundle(&mut self, mods: impl Iterator<Item = Vec<u8>>) -> Result<usize, OfError> {
        let bundle_id = self.xid();
        let flags = crate::openflow::bundle::OFPBF_ATOMIC | crate::openflow::bundle::OFPBF_ORDERED;
        let open_xid = self.xid();
        let mut buf = Vec::with_capacity(64 * 1024);
        Message::BundleControl(BundleControl::new(bundle_id, OFPBCT_OPEN_REQUEST, flags))
            .encode_into(open_xid, &mut buf);
        // The inner xid of each add equals the add's.
        let mut n = 0;
        for fm in mods {
            let xid = self.xid();
            let add = BundleAdd { bundle_id, flags, message: fm, inner_xid: None, properties: Vec::new() };
            Message::BundleAdd(add).encode_into(xid, &mut buf);
            n += 1;
            if buf.len() > 1 << 20 {
                self.writer.write_all(&buf).await?;
                buf.clear();
            }
        }
        let commit_xid = self.xid();
        Message::BundleControl(BundleControl::new(bundle_id, OFPBCT_COMMIT_REQUEST, flags))
            .encode_into(commit_xid, &mut buf);
        self.writer.write_all(&buf).await?;
        let mut failed: Option<OfError> = None;
        loop {
            let (h, m) = self.recv_timeout().await?;
            let ours = h.xid >= open_xid && h.xid <= commit_xid;
            match m {
                Message::BundleControl(c) if h.xid == open_xid && c.ctrl_type == OFPBCT_OPEN_REPLY => {}
                Message::Error(_) if ours => {
                    let what = match h.xid {
                        x if x == open_xid => "bundle open",
                        x if x == commit_xid => "bundle commit",
                        _ => "a flow in the bundle",
                    };
                    // The first refusal is the one reported.
                    let e = failed.take().unwrap_or_else(|| refused(what, &m));
                    if h.xid == commit_xid {
                        return Err(e);
                    }
                    failed = Some(e);
                }
                Message::BundleControl(c) if h.xid == commit_xid && c.ctrl_type == OFPBCT_COMMIT_REPLY => {
                    return match failed {
                        Some(e) => Err(e),
                        None => Ok(n),
                    };
                }
                other => self.unsolicited(&h, other).await?,
            }
        }
    }
}
