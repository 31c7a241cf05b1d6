//! OpenFlow 1.3 messages: the header, and every message a controller
//! exchanges with Open vSwitch. Message types this codec does not decode are
//! kept as [`Message::Unknown`] with their body.

use super::action::Action;
use super::buf::{Put, Reader, len16};
use super::bundle::{BundleAdd, BundleControl, ONF_ET_BUNDLE_ADD_MESSAGE, ONF_ET_BUNDLE_CONTROL};
use super::error::{Error, Result};
use super::instruction::Instruction;
use super::multipart::{MultipartReply, MultipartRequest};
use super::oxm::{Match, ONF_EXPERIMENTER};

/// OpenFlow 1.3 wire version.
pub const OFP13_VERSION: u8 = 0x04;
/// Size of `ofp_header`.
pub const HEADER_LEN: usize = 8;

// ofp_type.
pub const OFPT_HELLO: u8 = 0;
pub const OFPT_ERROR: u8 = 1;
pub const OFPT_ECHO_REQUEST: u8 = 2;
pub const OFPT_ECHO_REPLY: u8 = 3;
pub const OFPT_EXPERIMENTER: u8 = 4;
pub const OFPT_FEATURES_REQUEST: u8 = 5;
pub const OFPT_FEATURES_REPLY: u8 = 6;
pub const OFPT_GET_CONFIG_REQUEST: u8 = 7;
pub const OFPT_GET_CONFIG_REPLY: u8 = 8;
pub const OFPT_SET_CONFIG: u8 = 9;
pub const OFPT_PACKET_IN: u8 = 10;
pub const OFPT_FLOW_REMOVED: u8 = 11;
pub const OFPT_PORT_STATUS: u8 = 12;
pub const OFPT_PACKET_OUT: u8 = 13;
pub const OFPT_FLOW_MOD: u8 = 14;
pub const OFPT_GROUP_MOD: u8 = 15;
pub const OFPT_PORT_MOD: u8 = 16;
pub const OFPT_TABLE_MOD: u8 = 17;
pub const OFPT_MULTIPART_REQUEST: u8 = 18;
pub const OFPT_MULTIPART_REPLY: u8 = 19;
pub const OFPT_BARRIER_REQUEST: u8 = 20;
pub const OFPT_BARRIER_REPLY: u8 = 21;
pub const OFPT_ROLE_REQUEST: u8 = 24;
pub const OFPT_ROLE_REPLY: u8 = 25;
pub const OFPT_GET_ASYNC_REQUEST: u8 = 26;
pub const OFPT_GET_ASYNC_REPLY: u8 = 27;
pub const OFPT_SET_ASYNC: u8 = 28;
pub const OFPT_METER_MOD: u8 = 29;

/// `OFP_NO_BUFFER`.
pub const OFP_NO_BUFFER: u32 = 0xffff_ffff;
/// `OFPG_ANY`.
pub const OFPG_ANY: u32 = 0xffff_ffff;
/// `OFPTT_ALL`.
pub const OFPTT_ALL: u8 = 0xff;
/// Default priority of a flow (what ovs-ofctl gives when none is named).
pub const OFP_DEFAULT_PRIORITY: u16 = 0x8000;

/// `ofp_header`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub msg_type: u8,
    /// Length of the whole message, header included.
    pub length: u16,
    pub xid: u32,
}

impl Header {
    /// Reads the 8-byte header (any version).
    pub fn parse(bytes: &[u8]) -> Result<Header> {
        if bytes.len() < HEADER_LEN {
            return Err(Error::Truncated { what: "ofp_header", need: HEADER_LEN, have: bytes.len() });
        }
        let mut r = Reader::new(bytes, "ofp_header");
        let h = Header { version: r.u8()?, msg_type: r.u8()?, length: r.u16()?, xid: r.u32()? };
        if (h.length as usize) < HEADER_LEN {
            return Err(Error::BadLength { what: "ofp_header", len: h.length as usize });
        }
        Ok(h)
    }
    #[inline]
    pub fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u8(self.version);
        buf.put_u8(self.msg_type);
        buf.put_u16(self.length);
        buf.put_u32(self.xid);
    }
}

/// For framing over a stream: the length of the message that starts `buf`,
/// once its first 4 bytes are there.
pub fn message_len(buf: &[u8]) -> Option<usize> {
    (buf.len() >= 4).then(|| u16::from_be_bytes([buf[2], buf[3]]) as usize)
}

/// One element of a HELLO.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HelloElement {
    /// `OFPHET_VERSIONBITMAP`: bit N of the bitmap means version N.
    VersionBitmap(Vec<u32>),
    Unknown {
        element_type: u16,
        data: Vec<u8>,
    },
}

/// OFPT_HELLO.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Hello {
    pub elements: Vec<HelloElement>,
}

impl Hello {
    /// A HELLO that offers OpenFlow 1.3 only (what ovsnet speaks).
    pub fn of13() -> Hello {
        Hello { elements: vec![HelloElement::VersionBitmap(vec![1 << OFP13_VERSION])] }
    }
    /// Versions the peer offers: from its bitmap, else every version up to
    /// the one in its header (OpenFlow 1.3 section 6.3.1).
    pub fn versions(&self, header_version: u8) -> Vec<u8> {
        for e in &self.elements {
            if let HelloElement::VersionBitmap(words) = e {
                let mut v = Vec::new();
                for (i, w) in words.iter().enumerate() {
                    for bit in 0..32 {
                        if w & (1 << bit) != 0 {
                            if let Ok(n) = u8::try_from(i * 32 + bit) {
                                v.push(n);
                            }
                        }
                    }
                }
                return v;
            }
        }
        (1..=header_version).collect()
    }
}

/// Negotiates the version after receiving the peer's HELLO: OpenFlow 1.3 if
/// the peer offers it, else the HELLO_FAILED/INCOMPATIBLE error to send back.
pub fn negotiate(header: &Header, hello: &Hello) -> std::result::Result<u8, ErrorMsg> {
    if hello.versions(header.version).contains(&OFP13_VERSION) {
        Ok(OFP13_VERSION)
    } else {
        Err(ErrorMsg::Standard {
            err_type: OFPET_HELLO_FAILED,
            code: OFPHFC_INCOMPATIBLE,
            data: format!("We support version 0x04, peer supports {:?}", hello.versions(header.version)).into_bytes(),
        })
    }
}

pub const OFPET_HELLO_FAILED: u16 = 0;
pub const OFPHFC_INCOMPATIBLE: u16 = 0;
pub const OFPET_EXPERIMENTER: u16 = 0xffff;
/// `NXET_VENDOR`: Open vSwitch's Nicira error extension (pre-1.2 style).
pub const NXET_VENDOR: u16 = 0xb0c2;

/// OFPT_ERROR.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorMsg {
    /// A standard error: type, code, and (usually) the start of the offending message.
    Standard { err_type: u16, code: u16, data: Vec<u8> },
    /// `OFPET_EXPERIMENTER` (how OVS reports its own errors in OpenFlow 1.2+).
    Experimenter { exp_type: u16, experimenter: u32, data: Vec<u8> },
    /// `NXET_VENDOR` / `NXVC_VENDOR_ERROR`: the Nicira extension.
    Nicira { vendor: u32, nx_type: u16, nx_code: u16, data: Vec<u8> },
}

/// OFPT_FEATURES_REPLY.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FeaturesReply {
    pub datapath_id: u64,
    pub n_buffers: u32,
    pub n_tables: u8,
    pub auxiliary_id: u8,
    pub capabilities: u32,
    pub reserved: u32,
}

/// Body of GET_CONFIG_REPLY and SET_CONFIG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SwitchConfig {
    pub flags: u16,
    pub miss_send_len: u16,
}

/// OFPT_PACKET_IN.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PacketIn {
    pub buffer_id: u32,
    pub total_len: u16,
    pub reason: u8,
    pub table_id: u8,
    pub cookie: u64,
    pub r#match: Match,
    pub data: Vec<u8>,
}

/// OFPT_FLOW_REMOVED.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowRemoved {
    pub cookie: u64,
    pub priority: u16,
    pub reason: u8,
    pub table_id: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub packet_count: u64,
    pub byte_count: u64,
    pub r#match: Match,
}

/// A fixed-size, NUL-padded text field (port name, switch description),
/// kept as the bytes before the first NUL so that no byte is lost or
/// invented, whatever the peer sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct FixedStr(pub Vec<u8>);

impl FixedStr {
    /// The text, with invalid UTF-8 replaced.
    pub fn to_str_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }
}

impl From<&str> for FixedStr {
    fn from(s: &str) -> Self {
        FixedStr(s.as_bytes().to_vec())
    }
}

impl std::fmt::Display for FixedStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_str_lossy())
    }
}

/// `ofp_port` (64 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Port {
    pub port_no: u32,
    pub hw_addr: [u8; 6],
    pub name: FixedStr,
    pub config: u32,
    pub state: u32,
    pub curr: u32,
    pub advertised: u32,
    pub supported: u32,
    pub peer: u32,
    pub curr_speed: u32,
    pub max_speed: u32,
}

impl Port {
    pub const LEN: usize = 64;
    pub fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u32(self.port_no);
        buf.put_zeros(4);
        buf.extend_from_slice(&self.hw_addr);
        buf.put_zeros(2);
        buf.put_string(&self.name.0, 16);
        for v in [
            self.config,
            self.state,
            self.curr,
            self.advertised,
            self.supported,
            self.peer,
            self.curr_speed,
            self.max_speed,
        ] {
            buf.put_u32(v);
        }
    }
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Port> {
        let port_no = r.u32()?;
        r.skip(4)?;
        let hw_addr = r.array()?;
        r.skip(2)?;
        Ok(Port {
            port_no,
            hw_addr,
            name: r.string(16)?,
            config: r.u32()?,
            state: r.u32()?,
            curr: r.u32()?,
            advertised: r.u32()?,
            supported: r.u32()?,
            peer: r.u32()?,
            curr_speed: r.u32()?,
            max_speed: r.u32()?,
        })
    }
}

/// OFPT_PORT_STATUS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortStatus {
    /// OFPPR_ADD 0, OFPPR_DELETE 1, OFPPR_MODIFY 2.
    pub reason: u8,
    pub desc: Port,
}

/// OFPT_PACKET_OUT.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PacketOut {
    pub buffer_id: u32,
    pub in_port: u32,
    pub actions: Vec<Action>,
    pub data: Vec<u8>,
}

// ofp_flow_mod_command.
pub const OFPFC_ADD: u8 = 0;
pub const OFPFC_MODIFY: u8 = 1;
pub const OFPFC_MODIFY_STRICT: u8 = 2;
pub const OFPFC_DELETE: u8 = 3;
pub const OFPFC_DELETE_STRICT: u8 = 4;

// ofp_flow_mod_flags.
pub const OFPFF_SEND_FLOW_REM: u16 = 1;
pub const OFPFF_CHECK_OVERLAP: u16 = 2;
pub const OFPFF_RESET_COUNTS: u16 = 4;
pub const OFPFF_NO_PKT_COUNTS: u16 = 8;
pub const OFPFF_NO_BYT_COUNTS: u16 = 16;

/// OFPT_FLOW_MOD.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowMod {
    pub cookie: u64,
    pub cookie_mask: u64,
    pub table_id: u8,
    pub command: u8,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub priority: u16,
    pub buffer_id: u32,
    pub out_port: u32,
    pub out_group: u32,
    pub flags: u16,
    pub r#match: Match,
    pub instructions: Vec<Instruction>,
}

impl Default for FlowMod {
    /// An ADD to table 0 at the default priority, as ovs-ofctl builds it.
    fn default() -> Self {
        FlowMod {
            cookie: 0,
            cookie_mask: 0,
            table_id: 0,
            command: OFPFC_ADD,
            idle_timeout: 0,
            hard_timeout: 0,
            priority: OFP_DEFAULT_PRIORITY,
            buffer_id: OFP_NO_BUFFER,
            out_port: super::action::OFPP_ANY,
            out_group: OFPG_ANY,
            flags: 0,
            r#match: Match::default(),
            instructions: Vec::new(),
        }
    }
}

/// Bytes of `ofp_flow_mod` before its match (header included).
const FLOW_MOD_FIXED_LEN: usize = HEADER_LEN + 40;

/// The fields of `ofp_flow_mod` between the header and the match: one
/// layout for [`FlowMod`] and [`EncodedFlowMod`].
#[derive(Clone, Copy)]
struct FlowModFixed {
    cookie: u64,
    cookie_mask: u64,
    table_id: u8,
    command: u8,
    idle_timeout: u16,
    hard_timeout: u16,
    priority: u16,
    buffer_id: u32,
    out_port: u32,
    out_group: u32,
    flags: u16,
}

impl FlowModFixed {
    /// Laid out on the stack and appended at once: this runs for every
    /// flow an agent installs.
    #[inline]
    fn emit(&self, buf: &mut Vec<u8>) {
        let mut b = [0u8; FLOW_MOD_FIXED_LEN - HEADER_LEN];
        b[0..8].copy_from_slice(&self.cookie.to_be_bytes());
        b[8..16].copy_from_slice(&self.cookie_mask.to_be_bytes());
        b[16] = self.table_id;
        b[17] = self.command;
        b[18..20].copy_from_slice(&self.idle_timeout.to_be_bytes());
        b[20..22].copy_from_slice(&self.hard_timeout.to_be_bytes());
        b[22..24].copy_from_slice(&self.priority.to_be_bytes());
        b[24..28].copy_from_slice(&self.buffer_id.to_be_bytes());
        b[28..32].copy_from_slice(&self.out_port.to_be_bytes());
        b[32..36].copy_from_slice(&self.out_group.to_be_bytes());
        b[36..38].copy_from_slice(&self.flags.to_be_bytes());
        // 38..40: padding.
        buf.extend_from_slice(&b);
    }
}

impl FlowMod {
    fn fixed(&self) -> FlowModFixed {
        FlowModFixed {
            cookie: self.cookie,
            cookie_mask: self.cookie_mask,
            table_id: self.table_id,
            command: self.command,
            idle_timeout: self.idle_timeout,
            hard_timeout: self.hard_timeout,
            priority: self.priority,
            buffer_id: self.buffer_id,
            out_port: self.out_port,
            out_group: self.out_group,
            flags: self.flags,
        }
    }
    pub(crate) fn emit_body(&self, buf: &mut Vec<u8>) {
        self.fixed().emit(buf);
        self.r#match.emit(buf);
        Instruction::emit_list(&self.instructions, buf);
    }
    fn parse_body(r: &mut Reader<'_>) -> Result<FlowMod> {
        let mut fm = FlowMod {
            cookie: r.u64()?,
            cookie_mask: r.u64()?,
            table_id: r.u8()?,
            command: r.u8()?,
            idle_timeout: r.u16()?,
            hard_timeout: r.u16()?,
            priority: r.u16()?,
            buffer_id: r.u32()?,
            out_port: r.u32()?,
            out_group: r.u32()?,
            flags: r.u16()?,
            ..FlowMod::default()
        };
        r.skip(2)?;
        fm.r#match = Match::parse(r)?;
        fm.instructions = Instruction::parse_list(r.rest())?;
        Ok(fm)
    }
}

/// A FLOW_MOD whose match fields and instructions are already encoded,
/// as a flow table keeps them: written straight from those bytes, with
/// every other field as [`FlowMod::default`] has it (no timeouts, no
/// buffer, any out port and group, no flags). This is the path that
/// installs tens of thousands of flows: nothing is decoded or allocated
/// but the message itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodedFlowMod<'a> {
    pub cookie: u64,
    pub table_id: u8,
    pub command: u8,
    pub priority: u16,
    /// The match's OXM fields as on the wire (no `ofp_match` header, no
    /// padding).
    pub match_fields: &'a [u8],
    /// The instruction list as on the wire.
    pub instructions: &'a [u8],
}

impl EncodedFlowMod<'_> {
    /// Bytes of the whole message.
    pub fn encoded_len(&self) -> usize {
        FLOW_MOD_FIXED_LEN + Match::raw_wire_len(self.match_fields) + self.instructions.len()
    }

    /// The message with this transaction id.
    pub fn encode(&self, xid: u32) -> Vec<u8> {
        let mut buf = Vec::with_capacity(self.encoded_len());
        self.encode_into(xid, &mut buf);
        buf
    }

    /// Appends the message to `buf` (the length saturates past 65,535
    /// bytes, as [`Message::encode_into`] does).
    pub fn encode_into(&self, xid: u32, buf: &mut Vec<u8>) {
        let length = len16("message", self.encoded_len());
        Header { version: OFP13_VERSION, msg_type: OFPT_FLOW_MOD, length, xid }.emit(buf);
        FlowModFixed {
            cookie: self.cookie,
            cookie_mask: 0,
            table_id: self.table_id,
            command: self.command,
            idle_timeout: 0,
            hard_timeout: 0,
            priority: self.priority,
            buffer_id: OFP_NO_BUFFER,
            out_port: super::action::OFPP_ANY,
            out_group: OFPG_ANY,
            flags: 0,
        }
        .emit(buf);
        Match::emit_raw(self.match_fields, buf);
        buf.extend_from_slice(self.instructions);
    }
}

/// A bucket of a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bucket {
    pub weight: u16,
    pub watch_port: u32,
    pub watch_group: u32,
    pub actions: Vec<Action>,
}

impl Bucket {
    pub(crate) fn emit(&self, buf: &mut Vec<u8>) {
        let start = buf.len();
        buf.put_u16(0);
        buf.put_u16(self.weight);
        buf.put_u32(self.watch_port);
        buf.put_u32(self.watch_group);
        buf.put_zeros(4);
        Action::emit_list(&self.actions, buf);
        let len = buf.len() - start;
        buf.set_u16(start, len16("bucket", len));
    }
    pub(crate) fn parse_list(bytes: &[u8]) -> Result<Vec<Bucket>> {
        let mut r = Reader::new(bytes, "bucket");
        let mut out = Vec::new();
        while !r.is_empty() {
            let len = r.peek(2).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)?;
            if len < 16 {
                return Err(Error::BadLength { what: "bucket", len });
            }
            let mut b = Reader::new(r.bytes(len)?, "bucket");
            b.skip(2)?;
            let weight = b.u16()?;
            let watch_port = b.u32()?;
            let watch_group = b.u32()?;
            b.skip(4)?;
            out.push(Bucket { weight, watch_port, watch_group, actions: Action::parse_list(b.rest())? });
        }
        Ok(out)
    }
}

/// OFPT_GROUP_MOD.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupMod {
    /// OFPGC_ADD 0, MODIFY 1, DELETE 2.
    pub command: u16,
    /// OFPGT_ALL 0, SELECT 1, INDIRECT 2, FF 3.
    pub group_type: u8,
    pub group_id: u32,
    pub buckets: Vec<Bucket>,
}

/// OFPT_PORT_MOD.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortMod {
    pub port_no: u32,
    pub hw_addr: [u8; 6],
    pub config: u32,
    pub mask: u32,
    pub advertise: u32,
}

/// OFPT_TABLE_MOD.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableMod {
    pub table_id: u8,
    pub config: u32,
}

/// A meter band (`ofp_meter_band_*`). `data` holds the 4 bytes after
/// `burst_size` (precedence level for DSCP remark, experimenter id, padding).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MeterBand {
    /// OFPMBT_DROP 1, DSCP_REMARK 2, EXPERIMENTER 0xffff.
    pub band_type: u16,
    pub rate: u32,
    pub burst_size: u32,
    pub data: Vec<u8>,
}

impl MeterBand {
    pub(crate) fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u16(self.band_type);
        buf.put_u16(len16("meter band", 12 + self.data.len()));
        buf.put_u32(self.rate);
        buf.put_u32(self.burst_size);
        buf.extend_from_slice(&self.data);
    }
    pub(crate) fn parse_list(bytes: &[u8]) -> Result<Vec<MeterBand>> {
        let mut r = Reader::new(bytes, "meter band");
        let mut out = Vec::new();
        while !r.is_empty() {
            let band_type = r.u16()?;
            let len = r.u16()? as usize;
            if len < 12 {
                return Err(Error::BadLength { what: "meter band", len });
            }
            out.push(MeterBand { band_type, rate: r.u32()?, burst_size: r.u32()?, data: r.bytes(len - 12)?.to_vec() });
        }
        Ok(out)
    }
}

/// OFPT_METER_MOD.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MeterMod {
    /// OFPMC_ADD 0, MODIFY 1, DELETE 2.
    pub command: u16,
    /// OFPMF_KBPS 1, PKTPS 2, BURST 4, STATS 8.
    pub flags: u16,
    pub meter_id: u32,
    pub bands: Vec<MeterBand>,
}

/// ROLE_REQUEST / ROLE_REPLY body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Role {
    /// OFPCR_ROLE_NOCHANGE 0, EQUAL 1, MASTER 2, SLAVE 3.
    pub role: u32,
    pub generation_id: u64,
}

/// GET_ASYNC_REPLY / SET_ASYNC body: index 0 is for the master/equal role, 1 for slave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AsyncConfig {
    pub packet_in_mask: [u32; 2],
    pub port_status_mask: [u32; 2],
    pub flow_removed_mask: [u32; 2],
}

/// OFPT_EXPERIMENTER that is not a bundle message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Experimenter {
    pub experimenter: u32,
    pub exp_type: u32,
    pub data: Vec<u8>,
}

/// Every OpenFlow 1.3 message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Message {
    Hello(Hello),
    Error(ErrorMsg),
    EchoRequest(Vec<u8>),
    EchoReply(Vec<u8>),
    Experimenter(Experimenter),
    FeaturesRequest,
    FeaturesReply(FeaturesReply),
    GetConfigRequest,
    GetConfigReply(SwitchConfig),
    SetConfig(SwitchConfig),
    PacketIn(PacketIn),
    FlowRemoved(FlowRemoved),
    PortStatus(PortStatus),
    PacketOut(PacketOut),
    FlowMod(FlowMod),
    GroupMod(GroupMod),
    PortMod(PortMod),
    TableMod(TableMod),
    MultipartRequest(MultipartRequest),
    MultipartReply(MultipartReply),
    BarrierRequest,
    BarrierReply,
    RoleRequest(Role),
    RoleReply(Role),
    GetAsyncRequest,
    GetAsyncReply(AsyncConfig),
    SetAsync(AsyncConfig),
    MeterMod(MeterMod),
    BundleControl(BundleControl),
    BundleAdd(BundleAdd),
    /// A message type this codec does not decode, with its body.
    Unknown {
        msg_type: u8,
        body: Vec<u8>,
    },
}

impl Message {
    /// The `ofp_type` of this message.
    pub fn msg_type(&self) -> u8 {
        match self {
            Message::Hello(_) => OFPT_HELLO,
            Message::Error(_) => OFPT_ERROR,
            Message::EchoRequest(_) => OFPT_ECHO_REQUEST,
            Message::EchoReply(_) => OFPT_ECHO_REPLY,
            Message::Experimenter(_) | Message::BundleControl(_) | Message::BundleAdd(_) => OFPT_EXPERIMENTER,
            Message::FeaturesRequest => OFPT_FEATURES_REQUEST,
            Message::FeaturesReply(_) => OFPT_FEATURES_REPLY,
            Message::GetConfigRequest => OFPT_GET_CONFIG_REQUEST,
            Message::GetConfigReply(_) => OFPT_GET_CONFIG_REPLY,
            Message::SetConfig(_) => OFPT_SET_CONFIG,
            Message::PacketIn(_) => OFPT_PACKET_IN,
            Message::FlowRemoved(_) => OFPT_FLOW_REMOVED,
            Message::PortStatus(_) => OFPT_PORT_STATUS,
            Message::PacketOut(_) => OFPT_PACKET_OUT,
            Message::FlowMod(_) => OFPT_FLOW_MOD,
            Message::GroupMod(_) => OFPT_GROUP_MOD,
            Message::PortMod(_) => OFPT_PORT_MOD,
            Message::TableMod(_) => OFPT_TABLE_MOD,
            Message::MultipartRequest(_) => OFPT_MULTIPART_REQUEST,
            Message::MultipartReply(_) => OFPT_MULTIPART_REPLY,
            Message::BarrierRequest => OFPT_BARRIER_REQUEST,
            Message::BarrierReply => OFPT_BARRIER_REPLY,
            Message::RoleRequest(_) => OFPT_ROLE_REQUEST,
            Message::RoleReply(_) => OFPT_ROLE_REPLY,
            Message::GetAsyncRequest => OFPT_GET_ASYNC_REQUEST,
            Message::GetAsyncReply(_) => OFPT_GET_ASYNC_REPLY,
            Message::SetAsync(_) => OFPT_SET_ASYNC,
            Message::MeterMod(_) => OFPT_METER_MOD,
            Message::Unknown { msg_type, .. } => *msg_type,
        }
    }

    /// Encodes the message with this transaction id.
    pub fn encode(&self, xid: u32) -> Vec<u8> {
        let mut buf = Vec::with_capacity(128);
        self.encode_into(xid, &mut buf);
        buf
    }

    /// Encodes the message, or fails with [`Error::BadLength`] when it does
    /// not fit the 16-bit length of `ofp_header` (65,535 bytes).
    pub fn try_encode(&self, xid: u32) -> Result<Vec<u8>> {
        let buf = self.encode(xid);
        if buf.len() > usize::from(u16::MAX) {
            return Err(Error::BadLength { what: "message (over 65535 bytes)", len: buf.len() });
        }
        Ok(buf)
    }

    /// Appends the encoded message to `buf`. A message longer than 65,535
    /// bytes cannot be framed: its length field saturates and a peer will
    /// reject it; use [`Message::try_encode`] to catch that, and split long
    /// multipart replies with [`crate::openflow::multipart::MultipartReply::split_flows`].
    pub fn encode_into(&self, xid: u32, buf: &mut Vec<u8>) {
        let start = buf.len();
        Header { version: OFP13_VERSION, msg_type: self.msg_type(), length: 0, xid }.emit(buf);
        self.emit_body(buf, xid);
        let len = buf.len() - start;
        buf.set_u16(start + 2, len16("message", len));
    }

    fn emit_body(&self, buf: &mut Vec<u8>, xid: u32) {
        match self {
            Message::Hello(h) => {
                for e in &h.elements {
                    match e {
                        HelloElement::VersionBitmap(words) => {
                            buf.put_u16(1);
                            buf.put_u16(len16("hello element", 4 + 4 * words.len()));
                            for w in words {
                                buf.put_u32(*w);
                            }
                            let start = buf.len() - 4 - 4 * words.len();
                            buf.pad8_from(start);
                        }
                        HelloElement::Unknown { element_type, data } => {
                            let start = buf.len();
                            buf.put_u16(*element_type);
                            buf.put_u16(len16("hello element", 4 + data.len()));
                            buf.extend_from_slice(data);
                            buf.pad8_from(start);
                        }
                    }
                }
            }
            Message::Error(e) => match e {
                ErrorMsg::Standard { err_type, code, data } => {
                    buf.put_u16(*err_type);
                    buf.put_u16(*code);
                    buf.extend_from_slice(data);
                }
                ErrorMsg::Experimenter { exp_type, experimenter, data } => {
                    buf.put_u16(OFPET_EXPERIMENTER);
                    buf.put_u16(*exp_type);
                    buf.put_u32(*experimenter);
                    buf.extend_from_slice(data);
                }
                ErrorMsg::Nicira { vendor, nx_type, nx_code, data } => {
                    buf.put_u16(NXET_VENDOR);
                    buf.put_u16(0);
                    buf.put_u32(*vendor);
                    buf.put_u16(*nx_type);
                    buf.put_u16(*nx_code);
                    buf.extend_from_slice(data);
                }
            },
            Message::EchoRequest(d) | Message::EchoReply(d) => buf.extend_from_slice(d),
            Message::Experimenter(e) => {
                buf.put_u32(e.experimenter);
                buf.put_u32(e.exp_type);
                buf.extend_from_slice(&e.data);
            }
            Message::FeaturesRequest
            | Message::GetConfigRequest
            | Message::BarrierRequest
            | Message::BarrierReply
            | Message::GetAsyncRequest => {}
            Message::FeaturesReply(f) => {
                buf.put_u64(f.datapath_id);
                buf.put_u32(f.n_buffers);
                buf.put_u8(f.n_tables);
                buf.put_u8(f.auxiliary_id);
                buf.put_zeros(2);
                buf.put_u32(f.capabilities);
                buf.put_u32(f.reserved);
            }
            Message::GetConfigReply(c) | Message::SetConfig(c) => {
                buf.put_u16(c.flags);
                buf.put_u16(c.miss_send_len);
            }
            Message::PacketIn(p) => {
                buf.put_u32(p.buffer_id);
                buf.put_u16(p.total_len);
                buf.put_u8(p.reason);
                buf.put_u8(p.table_id);
                buf.put_u64(p.cookie);
                p.r#match.emit(buf);
                buf.put_zeros(2);
                buf.extend_from_slice(&p.data);
            }
            Message::FlowRemoved(f) => {
                buf.put_u64(f.cookie);
                buf.put_u16(f.priority);
                buf.put_u8(f.reason);
                buf.put_u8(f.table_id);
                buf.put_u32(f.duration_sec);
                buf.put_u32(f.duration_nsec);
                buf.put_u16(f.idle_timeout);
                buf.put_u16(f.hard_timeout);
                buf.put_u64(f.packet_count);
                buf.put_u64(f.byte_count);
                f.r#match.emit(buf);
            }
            Message::PortStatus(p) => {
                buf.put_u8(p.reason);
                buf.put_zeros(7);
                p.desc.emit(buf);
            }
            Message::PacketOut(p) => {
                buf.put_u32(p.buffer_id);
                buf.put_u32(p.in_port);
                let at = buf.len();
                buf.put_u16(0);
                buf.put_zeros(6);
                let a0 = buf.len();
                Action::emit_list(&p.actions, buf);
                let alen = buf.len() - a0;
                buf.set_u16(at, len16("actions", alen));
                buf.extend_from_slice(&p.data);
            }
            Message::FlowMod(f) => f.emit_body(buf),
            Message::GroupMod(g) => {
                buf.put_u16(g.command);
                buf.put_u8(g.group_type);
                buf.put_u8(0);
                buf.put_u32(g.group_id);
                for b in &g.buckets {
                    b.emit(buf);
                }
            }
            Message::PortMod(p) => {
                buf.put_u32(p.port_no);
                buf.put_zeros(4);
                buf.extend_from_slice(&p.hw_addr);
                buf.put_zeros(2);
                buf.put_u32(p.config);
                buf.put_u32(p.mask);
                buf.put_u32(p.advertise);
                buf.put_zeros(4);
            }
            Message::TableMod(t) => {
                buf.put_u8(t.table_id);
                buf.put_zeros(3);
                buf.put_u32(t.config);
            }
            Message::MultipartRequest(m) => m.emit(buf),
            Message::MultipartReply(m) => m.emit(buf),
            Message::RoleRequest(r) | Message::RoleReply(r) => {
                buf.put_u32(r.role);
                buf.put_zeros(4);
                buf.put_u64(r.generation_id);
            }
            Message::GetAsyncReply(a) | Message::SetAsync(a) => {
                for m in [a.packet_in_mask, a.port_status_mask, a.flow_removed_mask] {
                    buf.put_u32(m[0]);
                    buf.put_u32(m[1]);
                }
            }
            Message::MeterMod(m) => {
                buf.put_u16(m.command);
                buf.put_u16(m.flags);
                buf.put_u32(m.meter_id);
                for b in &m.bands {
                    b.emit(buf);
                }
            }
            Message::BundleControl(b) => {
                buf.put_u32(ONF_EXPERIMENTER);
                buf.put_u32(ONF_ET_BUNDLE_CONTROL);
                b.emit(buf);
            }
            Message::BundleAdd(b) => {
                buf.put_u32(ONF_EXPERIMENTER);
                buf.put_u32(ONF_ET_BUNDLE_ADD_MESSAGE);
                b.emit(buf, xid);
            }
            Message::Unknown { body, .. } => buf.extend_from_slice(body),
        }
    }

    /// Decodes one whole message (`bytes` must be exactly one message).
    /// A HELLO of any version decodes (for negotiation); any other message
    /// of a version other than 1.3 is [`Error::BadVersion`].
    pub fn decode(bytes: &[u8]) -> Result<(Header, Message)> {
        let h = Header::parse(bytes)?;
        if h.length as usize != bytes.len() {
            return Err(Error::BadLength { what: "message", len: h.length as usize });
        }
        if h.version != OFP13_VERSION && h.msg_type != OFPT_HELLO {
            return Err(Error::BadVersion(h.version));
        }
        let mut r = Reader::new(&bytes[HEADER_LEN..], "message body");
        let msg = Self::parse_body(&h, &mut r)?;
        Ok((h, msg))
    }

    fn parse_body(h: &Header, r: &mut Reader<'_>) -> Result<Message> {
        let exact = |r: &Reader<'_>, n: usize| -> Result<()> {
            if r.remaining() == n { Ok(()) } else { Err(Error::BadLength { what: "message", len: h.length as usize }) }
        };
        let m = match h.msg_type {
            OFPT_HELLO => {
                let mut elements = Vec::new();
                while r.remaining() >= 4 {
                    let ty = r.u16()?;
                    let len = r.u16()? as usize;
                    if len < 4 {
                        return Err(Error::BadLength { what: "hello element", len });
                    }
                    let body = r.bytes(len - 4)?;
                    r.skip((super::buf::pad8(len) - len).min(r.remaining()))?;
                    if ty == 1 && body.len() % 4 == 0 {
                        let words =
                            body.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect();
                        elements.push(HelloElement::VersionBitmap(words));
                    } else {
                        elements.push(HelloElement::Unknown { element_type: ty, data: body.to_vec() });
                    }
                }
                Message::Hello(Hello { elements })
            }
            OFPT_ERROR => {
                let err_type = r.u16()?;
                let code = r.u16()?;
                let e = if err_type == OFPET_EXPERIMENTER {
                    ErrorMsg::Experimenter { exp_type: code, experimenter: r.u32()?, data: r.rest().to_vec() }
                } else if err_type == NXET_VENDOR && code == 0 && r.remaining() >= 8 {
                    ErrorMsg::Nicira { vendor: r.u32()?, nx_type: r.u16()?, nx_code: r.u16()?, data: r.rest().to_vec() }
                } else {
                    ErrorMsg::Standard { err_type, code, data: r.rest().to_vec() }
                };
                Message::Error(e)
            }
            OFPT_ECHO_REQUEST => Message::EchoRequest(r.rest().to_vec()),
            OFPT_ECHO_REPLY => Message::EchoReply(r.rest().to_vec()),
            OFPT_EXPERIMENTER => {
                let experimenter = r.u32()?;
                let exp_type = r.u32()?;
                match (experimenter, exp_type) {
                    (ONF_EXPERIMENTER, ONF_ET_BUNDLE_CONTROL) => Message::BundleControl(BundleControl::parse(r)?),
                    (ONF_EXPERIMENTER, ONF_ET_BUNDLE_ADD_MESSAGE) => Message::BundleAdd(BundleAdd::parse(r, h.xid)?),
                    _ => Message::Experimenter(Experimenter { experimenter, exp_type, data: r.rest().to_vec() }),
                }
            }
            OFPT_FEATURES_REQUEST => exact(r, 0).map(|_| Message::FeaturesRequest)?,
            OFPT_FEATURES_REPLY => {
                exact(r, 24)?;
                let datapath_id = r.u64()?;
                let n_buffers = r.u32()?;
                let n_tables = r.u8()?;
                let auxiliary_id = r.u8()?;
                r.skip(2)?;
                Message::FeaturesReply(FeaturesReply {
                    datapath_id,
                    n_buffers,
                    n_tables,
                    auxiliary_id,
                    capabilities: r.u32()?,
                    reserved: r.u32()?,
                })
            }
            OFPT_GET_CONFIG_REQUEST => exact(r, 0).map(|_| Message::GetConfigRequest)?,
            OFPT_GET_CONFIG_REPLY | OFPT_SET_CONFIG => {
                exact(r, 4)?;
                let c = SwitchConfig { flags: r.u16()?, miss_send_len: r.u16()? };
                if h.msg_type == OFPT_SET_CONFIG { Message::SetConfig(c) } else { Message::GetConfigReply(c) }
            }
            OFPT_PACKET_IN => {
                let buffer_id = r.u32()?;
                let total_len = r.u16()?;
                let reason = r.u8()?;
                let table_id = r.u8()?;
                let cookie = r.u64()?;
                let m = Match::parse(r)?;
                r.skip(2)?;
                Message::PacketIn(PacketIn {
                    buffer_id,
                    total_len,
                    reason,
                    table_id,
                    cookie,
                    r#match: m,
                    data: r.rest().to_vec(),
                })
            }
            OFPT_FLOW_REMOVED => {
                let f = FlowRemoved {
                    cookie: r.u64()?,
                    priority: r.u16()?,
                    reason: r.u8()?,
                    table_id: r.u8()?,
                    duration_sec: r.u32()?,
                    duration_nsec: r.u32()?,
                    idle_timeout: r.u16()?,
                    hard_timeout: r.u16()?,
                    packet_count: r.u64()?,
                    byte_count: r.u64()?,
                    r#match: Match::parse(r)?,
                };
                exact(r, 0)?;
                Message::FlowRemoved(f)
            }
            OFPT_PORT_STATUS => {
                exact(r, 8 + Port::LEN)?;
                let reason = r.u8()?;
                r.skip(7)?;
                Message::PortStatus(PortStatus { reason, desc: Port::parse(r)? })
            }
            OFPT_PACKET_OUT => {
                let buffer_id = r.u32()?;
                let in_port = r.u32()?;
                let alen = r.u16()? as usize;
                r.skip(6)?;
                let actions = Action::parse_list(r.bytes(alen)?)?;
                Message::PacketOut(PacketOut { buffer_id, in_port, actions, data: r.rest().to_vec() })
            }
            OFPT_FLOW_MOD => Message::FlowMod(FlowMod::parse_body(r)?),
            OFPT_GROUP_MOD => {
                let command = r.u16()?;
                let group_type = r.u8()?;
                r.skip(1)?;
                let group_id = r.u32()?;
                Message::GroupMod(GroupMod { command, group_type, group_id, buckets: Bucket::parse_list(r.rest())? })
            }
            OFPT_PORT_MOD => {
                exact(r, 32)?;
                let port_no = r.u32()?;
                r.skip(4)?;
                let hw_addr = r.array()?;
                r.skip(2)?;
                Message::PortMod(PortMod { port_no, hw_addr, config: r.u32()?, mask: r.u32()?, advertise: r.u32()? })
            }
            OFPT_TABLE_MOD => {
                exact(r, 8)?;
                let table_id = r.u8()?;
                r.skip(3)?;
                Message::TableMod(TableMod { table_id, config: r.u32()? })
            }
            OFPT_MULTIPART_REQUEST => Message::MultipartRequest(MultipartRequest::parse(r)?),
            OFPT_MULTIPART_REPLY => Message::MultipartReply(MultipartReply::parse(r)?),
            OFPT_BARRIER_REQUEST => exact(r, 0).map(|_| Message::BarrierRequest)?,
            OFPT_BARRIER_REPLY => exact(r, 0).map(|_| Message::BarrierReply)?,
            OFPT_ROLE_REQUEST | OFPT_ROLE_REPLY => {
                exact(r, 16)?;
                let role = r.u32()?;
                r.skip(4)?;
                let role = Role { role, generation_id: r.u64()? };
                if h.msg_type == OFPT_ROLE_REQUEST { Message::RoleRequest(role) } else { Message::RoleReply(role) }
            }
            OFPT_GET_ASYNC_REQUEST => exact(r, 0).map(|_| Message::GetAsyncRequest)?,
            OFPT_GET_ASYNC_REPLY | OFPT_SET_ASYNC => {
                exact(r, 24)?;
                let mut v = [0u32; 6];
                for x in &mut v {
                    *x = r.u32()?;
                }
                let a = AsyncConfig {
                    packet_in_mask: [v[0], v[1]],
                    port_status_mask: [v[2], v[3]],
                    flow_removed_mask: [v[4], v[5]],
                };
                if h.msg_type == OFPT_SET_ASYNC { Message::SetAsync(a) } else { Message::GetAsyncReply(a) }
            }
            OFPT_METER_MOD => {
                let command = r.u16()?;
                let flags = r.u16()?;
                let meter_id = r.u32()?;
                Message::MeterMod(MeterMod { command, flags, meter_id, bands: MeterBand::parse_list(r.rest())? })
            }
            t => Message::Unknown { msg_type: t, body: r.rest().to_vec() },
        };
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::text::parse_flow;

    /// A FLOW_MOD written from encoded parts is the one [`FlowMod`]
    /// encodes, for adds and strict deletes, with and without padding.
    #[test]
    fn encoded_flow_mod_is_the_flow_mod_encoding() {
        for text in [
            "table=10,priority=50,cookie=0x2,ip,nw_dst=10.0.0.2,actions=output:1",
            "table=0,priority=100,in_port=1,dl_src=00:11:22:33:44:55,cookie=0x1,actions=goto_table:10",
            "table=3,priority=1,actions=drop",
        ] {
            let mut fm = parse_flow(text).expect("flow");
            for command in [OFPFC_ADD, OFPFC_DELETE_STRICT] {
                fm.command = command;
                if command == OFPFC_DELETE_STRICT {
                    fm.cookie = 0;
                    fm.instructions.clear();
                }
                let mut fields = Vec::new();
                for f in &fm.r#match.fields {
                    f.emit(&mut fields);
                }
                let mut instructions = Vec::new();
                Instruction::emit_list(&fm.instructions, &mut instructions);
                let e = EncodedFlowMod {
                    cookie: fm.cookie,
                    table_id: fm.table_id,
                    command,
                    priority: fm.priority,
                    match_fields: &fields,
                    instructions: &instructions,
                };
                let want = Message::FlowMod(fm.clone()).encode(7);
                assert_eq!(e.encode(7), want, "{text} command {command}");
                assert_eq!(e.encoded_len(), want.len());
            }
        }
    }
}
