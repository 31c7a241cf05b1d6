//! MULTIPART requests and replies (OpenFlow 1.3 section 7.3.5).

use super::buf::{Put, Reader, len16};
use super::error::{Error, Result};
use super::instruction::Instruction;
use super::message::{Bucket, FixedStr, MeterBand, Port};
use super::oxm::Match;

pub const OFPMP_DESC: u16 = 0;
pub const OFPMP_FLOW: u16 = 1;
pub const OFPMP_AGGREGATE: u16 = 2;
pub const OFPMP_TABLE: u16 = 3;
pub const OFPMP_PORT_STATS: u16 = 4;
pub const OFPMP_QUEUE: u16 = 5;
pub const OFPMP_GROUP: u16 = 6;
pub const OFPMP_GROUP_DESC: u16 = 7;
pub const OFPMP_GROUP_FEATURES: u16 = 8;
pub const OFPMP_METER: u16 = 9;
pub const OFPMP_METER_CONFIG: u16 = 10;
pub const OFPMP_METER_FEATURES: u16 = 11;
pub const OFPMP_TABLE_FEATURES: u16 = 12;
pub const OFPMP_PORT_DESC: u16 = 13;

/// `OFPMPF_REQ_MORE` / `OFPMPF_REPLY_MORE`.
pub const OFPMPF_MORE: u16 = 1;

/// Body of a flow or aggregate stats request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowStatsRequest {
    pub table_id: u8,
    pub out_port: u32,
    pub out_group: u32,
    pub cookie: u64,
    pub cookie_mask: u64,
    pub r#match: Match,
}

impl Default for FlowStatsRequest {
    /// All flows of all tables.
    fn default() -> Self {
        FlowStatsRequest {
            table_id: super::message::OFPTT_ALL,
            out_port: super::action::OFPP_ANY,
            out_group: super::message::OFPG_ANY,
            cookie: 0,
            cookie_mask: 0,
            r#match: Match::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MultipartRequestBody {
    Desc,
    Flow(FlowStatsRequest),
    Aggregate(FlowStatsRequest),
    Table,
    PortStats {
        port_no: u32,
    },
    Queue {
        port_no: u32,
        queue_id: u32,
    },
    Group {
        group_id: u32,
    },
    GroupDesc,
    GroupFeatures,
    Meter {
        meter_id: u32,
    },
    MeterConfig {
        meter_id: u32,
    },
    MeterFeatures,
    PortDesc,
    /// Any other kind (table features, experimenter, ...), body kept raw.
    Other {
        mp_type: u16,
        body: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MultipartRequest {
    pub flags: u16,
    pub body: MultipartRequestBody,
}

/// `ofp_desc`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Desc {
    pub mfr_desc: FixedStr,
    pub hw_desc: FixedStr,
    pub sw_desc: FixedStr,
    pub serial_num: FixedStr,
    pub dp_desc: FixedStr,
}

/// `ofp_flow_stats`: one flow of a flow-stats reply.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowStats {
    pub table_id: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub priority: u16,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub flags: u16,
    pub cookie: u64,
    pub packet_count: u64,
    pub byte_count: u64,
    pub r#match: Match,
    pub instructions: Vec<Instruction>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AggregateStats {
    pub packet_count: u64,
    pub byte_count: u64,
    pub flow_count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TableStats {
    pub table_id: u8,
    pub active_count: u32,
    pub lookup_count: u64,
    pub matched_count: u64,
}

/// `ofp_port_stats` (112 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PortStats {
    pub port_no: u32,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_frame_err: u64,
    pub rx_over_err: u64,
    pub rx_crc_err: u64,
    pub collisions: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupStats {
    pub group_id: u32,
    pub ref_count: u32,
    pub packet_count: u64,
    pub byte_count: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    /// (packet_count, byte_count) per bucket.
    pub bucket_stats: Vec<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupDesc {
    pub group_type: u8,
    pub group_id: u32,
    pub buckets: Vec<Bucket>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MeterStats {
    pub meter_id: u32,
    pub flow_count: u32,
    pub packet_in_count: u64,
    pub byte_in_count: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    /// (packet_band_count, byte_band_count) per band.
    pub band_stats: Vec<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MeterConfig {
    pub flags: u16,
    pub meter_id: u32,
    pub bands: Vec<MeterBand>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MultipartReplyBody {
    Desc(Desc),
    Flow(Vec<FlowStats>),
    Aggregate(AggregateStats),
    Table(Vec<TableStats>),
    PortStats(Vec<PortStats>),
    Group(Vec<GroupStats>),
    GroupDesc(Vec<GroupDesc>),
    Meter(Vec<MeterStats>),
    MeterConfig(Vec<MeterConfig>),
    PortDesc(Vec<Port>),
    /// Any other kind, body kept raw.
    Other {
        mp_type: u16,
        body: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MultipartReply {
    pub flags: u16,
    pub body: MultipartReplyBody,
}

fn emit_fsr(f: &FlowStatsRequest, buf: &mut Vec<u8>) {
    buf.put_u8(f.table_id);
    buf.put_zeros(3);
    buf.put_u32(f.out_port);
    buf.put_u32(f.out_group);
    buf.put_zeros(4);
    buf.put_u64(f.cookie);
    buf.put_u64(f.cookie_mask);
    f.r#match.emit(buf);
}

fn parse_fsr(r: &mut Reader<'_>) -> Result<FlowStatsRequest> {
    let table_id = r.u8()?;
    r.skip(3)?;
    let out_port = r.u32()?;
    let out_group = r.u32()?;
    r.skip(4)?;
    Ok(FlowStatsRequest {
        table_id,
        out_port,
        out_group,
        cookie: r.u64()?,
        cookie_mask: r.u64()?,
        r#match: Match::parse(r)?,
    })
}

fn bad(what: &'static str, len: usize) -> Error {
    Error::BadLength { what, len }
}

impl MultipartRequest {
    pub fn new(body: MultipartRequestBody) -> Self {
        MultipartRequest { flags: 0, body }
    }
    pub fn mp_type(&self) -> u16 {
        use MultipartRequestBody as B;
        match &self.body {
            B::Desc => OFPMP_DESC,
            B::Flow(_) => OFPMP_FLOW,
            B::Aggregate(_) => OFPMP_AGGREGATE,
            B::Table => OFPMP_TABLE,
            B::PortStats { .. } => OFPMP_PORT_STATS,
            B::Queue { .. } => OFPMP_QUEUE,
            B::Group { .. } => OFPMP_GROUP,
            B::GroupDesc => OFPMP_GROUP_DESC,
            B::GroupFeatures => OFPMP_GROUP_FEATURES,
            B::Meter { .. } => OFPMP_METER,
            B::MeterConfig { .. } => OFPMP_METER_CONFIG,
            B::MeterFeatures => OFPMP_METER_FEATURES,
            B::PortDesc => OFPMP_PORT_DESC,
            B::Other { mp_type, .. } => *mp_type,
        }
    }
    pub(crate) fn emit(&self, buf: &mut Vec<u8>) {
        use MultipartRequestBody as B;
        buf.put_u16(self.mp_type());
        buf.put_u16(self.flags);
        buf.put_zeros(4);
        match &self.body {
            B::Desc | B::Table | B::GroupDesc | B::GroupFeatures | B::MeterFeatures | B::PortDesc => {}
            B::Flow(f) | B::Aggregate(f) => emit_fsr(f, buf),
            B::PortStats { port_no } => {
                buf.put_u32(*port_no);
                buf.put_zeros(4);
            }
            B::Queue { port_no, queue_id } => {
                buf.put_u32(*port_no);
                buf.put_u32(*queue_id);
            }
            B::Group { group_id: id } | B::Meter { meter_id: id } | B::MeterConfig { meter_id: id } => {
                buf.put_u32(*id);
                buf.put_zeros(4);
            }
            B::Other { body, .. } => buf.extend_from_slice(body),
        }
    }
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<MultipartRequest> {
        use MultipartRequestBody as B;
        let mp_type = r.u16()?;
        let flags = r.u16()?;
        r.skip(4)?;
        let n = r.remaining();
        let want = |k: usize| {
            if n == k { Ok(()) } else { Err(bad("multipart request", n)) }
        };
        let body = match mp_type {
            OFPMP_DESC => want(0).map(|_| B::Desc)?,
            OFPMP_TABLE => want(0).map(|_| B::Table)?,
            OFPMP_GROUP_DESC => want(0).map(|_| B::GroupDesc)?,
            OFPMP_GROUP_FEATURES => want(0).map(|_| B::GroupFeatures)?,
            OFPMP_METER_FEATURES => want(0).map(|_| B::MeterFeatures)?,
            OFPMP_PORT_DESC => want(0).map(|_| B::PortDesc)?,
            OFPMP_FLOW | OFPMP_AGGREGATE => {
                let f = parse_fsr(r)?;
                if !r.is_empty() {
                    return Err(bad("flow stats request", n));
                }
                if mp_type == OFPMP_FLOW { B::Flow(f) } else { B::Aggregate(f) }
            }
            OFPMP_PORT_STATS => {
                want(8)?;
                B::PortStats { port_no: r.u32()? }
            }
            OFPMP_QUEUE => {
                want(8)?;
                B::Queue { port_no: r.u32()?, queue_id: r.u32()? }
            }
            OFPMP_GROUP => {
                want(8)?;
                B::Group { group_id: r.u32()? }
            }
            OFPMP_METER => {
                want(8)?;
                B::Meter { meter_id: r.u32()? }
            }
            OFPMP_METER_CONFIG => {
                want(8)?;
                B::MeterConfig { meter_id: r.u32()? }
            }
            _ => B::Other { mp_type, body: r.rest().to_vec() },
        };
        Ok(MultipartRequest { flags, body })
    }
}

impl FlowStats {
    pub fn emit(&self, buf: &mut Vec<u8>) {
        let start = buf.len();
        buf.put_u16(0);
        buf.put_u8(self.table_id);
        buf.put_u8(0);
        buf.put_u32(self.duration_sec);
        buf.put_u32(self.duration_nsec);
        buf.put_u16(self.priority);
        buf.put_u16(self.idle_timeout);
        buf.put_u16(self.hard_timeout);
        buf.put_u16(self.flags);
        buf.put_zeros(4);
        buf.put_u64(self.cookie);
        buf.put_u64(self.packet_count);
        buf.put_u64(self.byte_count);
        self.r#match.emit(buf);
        Instruction::emit_list(&self.instructions, buf);
        let len = buf.len() - start;
        buf.set_u16(start, len16("flow stats", len));
    }
    fn parse(r: &mut Reader<'_>) -> Result<FlowStats> {
        let len = r.u16()? as usize;
        if len < 56 {
            return Err(bad("flow stats", len));
        }
        let mut b = Reader::new(r.bytes(len - 2)?, "flow stats");
        let table_id = b.u8()?;
        b.skip(1)?;
        let duration_sec = b.u32()?;
        let duration_nsec = b.u32()?;
        let priority = b.u16()?;
        let idle_timeout = b.u16()?;
        let hard_timeout = b.u16()?;
        let flags = b.u16()?;
        b.skip(4)?;
        let cookie = b.u64()?;
        let packet_count = b.u64()?;
        let byte_count = b.u64()?;
        let m = Match::parse(&mut b)?;
        Ok(FlowStats {
            table_id,
            duration_sec,
            duration_nsec,
            priority,
            idle_timeout,
            hard_timeout,
            flags,
            cookie,
            packet_count,
            byte_count,
            r#match: m,
            instructions: Instruction::parse_list(b.rest())?,
        })
    }
}

impl PortStats {
    const LEN: usize = 112;
    fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u32(self.port_no);
        buf.put_zeros(4);
        for v in [
            self.rx_packets,
            self.tx_packets,
            self.rx_bytes,
            self.tx_bytes,
            self.rx_dropped,
            self.tx_dropped,
            self.rx_errors,
            self.tx_errors,
            self.rx_frame_err,
            self.rx_over_err,
            self.rx_crc_err,
            self.collisions,
        ] {
            buf.put_u64(v);
        }
        buf.put_u32(self.duration_sec);
        buf.put_u32(self.duration_nsec);
    }
    fn parse(r: &mut Reader<'_>) -> Result<PortStats> {
        let port_no = r.u32()?;
        r.skip(4)?;
        Ok(PortStats {
            port_no,
            rx_packets: r.u64()?,
            tx_packets: r.u64()?,
            rx_bytes: r.u64()?,
            tx_bytes: r.u64()?,
            rx_dropped: r.u64()?,
            tx_dropped: r.u64()?,
            rx_errors: r.u64()?,
            tx_errors: r.u64()?,
            rx_frame_err: r.u64()?,
            rx_over_err: r.u64()?,
            rx_crc_err: r.u64()?,
            collisions: r.u64()?,
            duration_sec: r.u32()?,
            duration_nsec: r.u32()?,
        })
    }
}

/// Splits `r` into records whose first u16 is their length.
fn records<'a>(r: &mut Reader<'a>, what: &'static str, at: usize, min: usize) -> Result<Vec<&'a [u8]>> {
    let mut out = Vec::new();
    while !r.is_empty() {
        let head = r.peek(at + 2)?;
        let len = u16::from_be_bytes([head[at], head[at + 1]]) as usize;
        if len < min {
            return Err(bad(what, len));
        }
        out.push(r.bytes(len)?);
    }
    Ok(out)
}

impl MultipartReply {
    pub fn new(body: MultipartReplyBody) -> Self {
        MultipartReply { flags: 0, body }
    }

    /// Splits flow statistics into as many flow-stats replies as needed so
    /// that each message stays within `max_len` bytes (at most 65,535), all
    /// but the last flagged `OFPMPF_REPLY_MORE`, as a switch sends them.
    pub fn split_flows(flows: Vec<FlowStats>, max_len: usize) -> Vec<MultipartReply> {
        let max_len = max_len.min(usize::from(u16::MAX));
        // Header (8) + multipart header (8).
        let overhead = 16;
        let mut out = Vec::new();
        let mut cur: Vec<FlowStats> = Vec::new();
        let mut cur_len = overhead;
        let mut scratch = Vec::new();
        for f in flows {
            scratch.clear();
            f.emit(&mut scratch);
            if !cur.is_empty() && cur_len + scratch.len() > max_len {
                out.push(MultipartReply {
                    flags: OFPMPF_MORE,
                    body: MultipartReplyBody::Flow(std::mem::take(&mut cur)),
                });
                cur_len = overhead;
            }
            cur_len += scratch.len();
            cur.push(f);
        }
        out.push(MultipartReply::new(MultipartReplyBody::Flow(cur)));
        out
    }
    pub fn mp_type(&self) -> u16 {
        use MultipartReplyBody as B;
        match &self.body {
            B::Desc(_) => OFPMP_DESC,
            B::Flow(_) => OFPMP_FLOW,
            B::Aggregate(_) => OFPMP_AGGREGATE,
            B::Table(_) => OFPMP_TABLE,
            B::PortStats(_) => OFPMP_PORT_STATS,
            B::Group(_) => OFPMP_GROUP,
            B::GroupDesc(_) => OFPMP_GROUP_DESC,
            B::Meter(_) => OFPMP_METER,
            B::MeterConfig(_) => OFPMP_METER_CONFIG,
            B::PortDesc(_) => OFPMP_PORT_DESC,
            B::Other { mp_type, .. } => *mp_type,
        }
    }
    pub(crate) fn emit(&self, buf: &mut Vec<u8>) {
        use MultipartReplyBody as B;
        buf.put_u16(self.mp_type());
        buf.put_u16(self.flags);
        buf.put_zeros(4);
        match &self.body {
            B::Desc(d) => {
                buf.put_string(&d.mfr_desc.0, 256);
                buf.put_string(&d.hw_desc.0, 256);
                buf.put_string(&d.sw_desc.0, 256);
                buf.put_string(&d.serial_num.0, 32);
                buf.put_string(&d.dp_desc.0, 256);
            }
            B::Flow(v) => v.iter().for_each(|f| f.emit(buf)),
            B::Aggregate(a) => {
                buf.put_u64(a.packet_count);
                buf.put_u64(a.byte_count);
                buf.put_u32(a.flow_count);
                buf.put_zeros(4);
            }
            B::Table(v) => {
                for t in v {
                    buf.put_u8(t.table_id);
                    buf.put_zeros(3);
                    buf.put_u32(t.active_count);
                    buf.put_u64(t.lookup_count);
                    buf.put_u64(t.matched_count);
                }
            }
            B::PortStats(v) => v.iter().for_each(|p| p.emit(buf)),
            B::Group(v) => {
                for g in v {
                    buf.put_u16(len16("group stats", 40 + 16 * g.bucket_stats.len()));
                    buf.put_zeros(2);
                    buf.put_u32(g.group_id);
                    buf.put_u32(g.ref_count);
                    buf.put_zeros(4);
                    buf.put_u64(g.packet_count);
                    buf.put_u64(g.byte_count);
                    buf.put_u32(g.duration_sec);
                    buf.put_u32(g.duration_nsec);
                    for (p, b) in &g.bucket_stats {
                        buf.put_u64(*p);
                        buf.put_u64(*b);
                    }
                }
            }
            B::GroupDesc(v) => {
                for g in v {
                    let start = buf.len();
                    buf.put_u16(0);
                    buf.put_u8(g.group_type);
                    buf.put_u8(0);
                    buf.put_u32(g.group_id);
                    g.buckets.iter().for_each(|b| b.emit(buf));
                    let len = buf.len() - start;
                    buf.set_u16(start, len16("group desc", len));
                }
            }
            B::Meter(v) => {
                for m in v {
                    buf.put_u32(m.meter_id);
                    buf.put_u16(len16("meter stats", 40 + 16 * m.band_stats.len()));
                    buf.put_zeros(6);
                    buf.put_u32(m.flow_count);
                    buf.put_u64(m.packet_in_count);
                    buf.put_u64(m.byte_in_count);
                    buf.put_u32(m.duration_sec);
                    buf.put_u32(m.duration_nsec);
                    for (p, b) in &m.band_stats {
                        buf.put_u64(*p);
                        buf.put_u64(*b);
                    }
                }
            }
            B::MeterConfig(v) => {
                for m in v {
                    let start = buf.len();
                    buf.put_u16(0);
                    buf.put_u16(m.flags);
                    buf.put_u32(m.meter_id);
                    m.bands.iter().for_each(|b| b.emit(buf));
                    let len = buf.len() - start;
                    buf.set_u16(start, len16("meter config", len));
                }
            }
            B::PortDesc(v) => v.iter().for_each(|p| p.emit(buf)),
            B::Other { body, .. } => buf.extend_from_slice(body),
        }
    }
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<MultipartReply> {
        use MultipartReplyBody as B;
        let mp_type = r.u16()?;
        let flags = r.u16()?;
        r.skip(4)?;
        let n = r.remaining();
        let body = match mp_type {
            OFPMP_DESC => {
                if n != 1056 {
                    return Err(bad("desc reply", n));
                }
                B::Desc(Desc {
                    mfr_desc: r.string(256)?,
                    hw_desc: r.string(256)?,
                    sw_desc: r.string(256)?,
                    serial_num: r.string(32)?,
                    dp_desc: r.string(256)?,
                })
            }
            OFPMP_FLOW => {
                let mut v = Vec::new();
                while !r.is_empty() {
                    v.push(FlowStats::parse(r)?);
                }
                B::Flow(v)
            }
            OFPMP_AGGREGATE => {
                if n != 24 {
                    return Err(bad("aggregate reply", n));
                }
                B::Aggregate(AggregateStats { packet_count: r.u64()?, byte_count: r.u64()?, flow_count: r.u32()? })
            }
            OFPMP_TABLE => {
                if n % 24 != 0 {
                    return Err(bad("table stats", n));
                }
                let mut v = Vec::new();
                while !r.is_empty() {
                    let table_id = r.u8()?;
                    r.skip(3)?;
                    v.push(TableStats {
                        table_id,
                        active_count: r.u32()?,
                        lookup_count: r.u64()?,
                        matched_count: r.u64()?,
                    });
                }
                B::Table(v)
            }
            OFPMP_PORT_STATS => {
                if n % PortStats::LEN != 0 {
                    return Err(bad("port stats", n));
                }
                let mut v = Vec::new();
                while !r.is_empty() {
                    v.push(PortStats::parse(r)?);
                }
                B::PortStats(v)
            }
            OFPMP_PORT_DESC => {
                if n % Port::LEN != 0 {
                    return Err(bad("port desc", n));
                }
                let mut v = Vec::new();
                while !r.is_empty() {
                    v.push(Port::parse(r)?);
                }
                B::PortDesc(v)
            }
            OFPMP_GROUP => {
                let mut v = Vec::new();
                for rec in records(r, "group stats", 0, 40)? {
                    if (rec.len() - 40) % 16 != 0 {
                        return Err(bad("group stats", rec.len()));
                    }
                    let mut b = Reader::new(rec, "group stats");
                    b.skip(4)?;
                    let group_id = b.u32()?;
                    let ref_count = b.u32()?;
                    b.skip(4)?;
                    let mut g = GroupStats {
                        group_id,
                        ref_count,
                        packet_count: b.u64()?,
                        byte_count: b.u64()?,
                        duration_sec: b.u32()?,
                        duration_nsec: b.u32()?,
                        bucket_stats: Vec::new(),
                    };
                    while !b.is_empty() {
                        g.bucket_stats.push((b.u64()?, b.u64()?));
                    }
                    v.push(g);
                }
                B::Group(v)
            }
            OFPMP_GROUP_DESC => {
                let mut v = Vec::new();
                for rec in records(r, "group desc", 0, 8)? {
                    let mut b = Reader::new(rec, "group desc");
                    b.skip(2)?;
                    let group_type = b.u8()?;
                    b.skip(1)?;
                    let group_id = b.u32()?;
                    v.push(GroupDesc { group_type, group_id, buckets: Bucket::parse_list(b.rest())? });
                }
                B::GroupDesc(v)
            }
            OFPMP_METER => {
                let mut v = Vec::new();
                for rec in records(r, "meter stats", 4, 40)? {
                    if (rec.len() - 40) % 16 != 0 {
                        return Err(bad("meter stats", rec.len()));
                    }
                    let mut b = Reader::new(rec, "meter stats");
                    let meter_id = b.u32()?;
                    b.skip(8)?;
                    let mut m = MeterStats {
                        meter_id,
                        flow_count: b.u32()?,
                        packet_in_count: b.u64()?,
                        byte_in_count: b.u64()?,
                        duration_sec: b.u32()?,
                        duration_nsec: b.u32()?,
                        band_stats: Vec::new(),
                    };
                    while !b.is_empty() {
                        m.band_stats.push((b.u64()?, b.u64()?));
                    }
                    v.push(m);
                }
                B::Meter(v)
            }
            OFPMP_METER_CONFIG => {
                let mut v = Vec::new();
                for rec in records(r, "meter config", 0, 8)? {
                    let mut b = Reader::new(rec, "meter config");
                    b.skip(2)?;
                    let flags = b.u16()?;
                    let meter_id = b.u32()?;
                    v.push(MeterConfig { flags, meter_id, bands: MeterBand::parse_list(b.rest())? });
                }
                B::MeterConfig(v)
            }
            _ => B::Other { mp_type, body: r.rest().to_vec() },
        };
        Ok(MultipartReply { flags, body })
    }
}
