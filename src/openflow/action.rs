//! Actions: every OpenFlow 1.3 action and the Nicira extension actions that
//! Open vSwitch offers. Unknown action types, unknown Nicira subtypes and
//! other experimenters' actions are kept as raw bytes.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::buf::{Put, Reader};
use super::error::{Error, Result};
use super::oxm::{Field, NX_VENDOR_ID, OFPXMC_EXPERIMENTER, OxmField};

// OpenFlow 1.3 action types (ofp_action_type).
pub const OFPAT_OUTPUT: u16 = 0;
pub const OFPAT_COPY_TTL_OUT: u16 = 11;
pub const OFPAT_COPY_TTL_IN: u16 = 12;
pub const OFPAT_SET_MPLS_TTL: u16 = 15;
pub const OFPAT_DEC_MPLS_TTL: u16 = 16;
pub const OFPAT_PUSH_VLAN: u16 = 17;
pub const OFPAT_POP_VLAN: u16 = 18;
pub const OFPAT_PUSH_MPLS: u16 = 19;
pub const OFPAT_POP_MPLS: u16 = 20;
pub const OFPAT_SET_QUEUE: u16 = 21;
pub const OFPAT_GROUP: u16 = 22;
pub const OFPAT_SET_NW_TTL: u16 = 23;
pub const OFPAT_DEC_NW_TTL: u16 = 24;
pub const OFPAT_SET_FIELD: u16 = 25;
pub const OFPAT_PUSH_PBB: u16 = 26;
pub const OFPAT_POP_PBB: u16 = 27;
pub const OFPAT_EXPERIMENTER: u16 = 0xffff;

// Nicira action subtypes (NXAST_*).
pub const NXAST_RESUBMIT: u16 = 1;
pub const NXAST_SET_TUNNEL: u16 = 2;
pub const NXAST_POP_QUEUE: u16 = 5;
pub const NXAST_REG_MOVE: u16 = 6;
pub const NXAST_REG_LOAD: u16 = 7;
pub const NXAST_NOTE: u16 = 8;
pub const NXAST_SET_TUNNEL64: u16 = 9;
pub const NXAST_RESUBMIT_TABLE: u16 = 14;
pub const NXAST_OUTPUT_REG: u16 = 15;
pub const NXAST_LEARN: u16 = 16;
pub const NXAST_EXIT: u16 = 17;
pub const NXAST_FIN_TIMEOUT: u16 = 19;
pub const NXAST_CONTROLLER: u16 = 20;
pub const NXAST_DEC_TTL_CNT_IDS: u16 = 21;
pub const NXAST_REG_LOAD2: u16 = 33;
pub const NXAST_CONJUNCTION: u16 = 34;
pub const NXAST_CT: u16 = 35;
pub const NXAST_NAT: u16 = 36;
pub const NXAST_CT_CLEAR: u16 = 43;

// Reserved port numbers (ofp_port_no).
pub const OFPP_MAX: u32 = 0xffff_ff00;
pub const OFPP_IN_PORT: u32 = 0xffff_fff8;
pub const OFPP_TABLE: u32 = 0xffff_fff9;
pub const OFPP_NORMAL: u32 = 0xffff_fffa;
pub const OFPP_FLOOD: u32 = 0xffff_fffb;
pub const OFPP_ALL: u32 = 0xffff_fffc;
pub const OFPP_CONTROLLER: u32 = 0xffff_fffd;
pub const OFPP_LOCAL: u32 = 0xffff_fffe;
pub const OFPP_ANY: u32 = 0xffff_ffff;
/// `max_len` meaning "send the whole packet, do not buffer".
pub const OFPCML_NO_BUFFER: u16 = 0xffff;

/// A field reference in a Nicira action: the NXM/OXM header as it appears on
/// the wire (32 bits, plus an experimenter id for the experimenter class).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NxmHeader {
    pub header: u32,
    pub experimenter: Option<u32>,
}

impl NxmHeader {
    /// The header Open vSwitch writes for `field` in Nicira actions.
    pub fn of(field: Field) -> NxmHeader {
        let id = field.nxm_id();
        NxmHeader { header: id.header(false, field.def().len as usize), experimenter: id.experimenter }
    }
    /// The header used for a field in an OpenFlow 1.3 `set_field`/match.
    pub fn of_oxm(field: Field) -> NxmHeader {
        let id = field.def().oxm;
        NxmHeader { header: id.header(false, field.def().len as usize), experimenter: id.experimenter }
    }
    pub fn field(&self) -> Option<Field> {
        let class = (self.header >> 16) as u16;
        let f = ((self.header >> 9) & 0x7f) as u8;
        let mut id = super::oxm::OxmId::new(class, f);
        id.experimenter = self.experimenter;
        id.field()
    }
    pub fn wire_len(&self) -> usize {
        if self.experimenter.is_some() { 8 } else { 4 }
    }
    pub fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u32(self.header);
        if let Some(e) = self.experimenter {
            buf.put_u32(e);
        }
    }
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<NxmHeader> {
        let header = r.u32()?;
        let experimenter = if (header >> 16) as u16 == OFPXMC_EXPERIMENTER { Some(r.u32()?) } else { None };
        Ok(NxmHeader { header, experimenter })
    }
}

/// Bits `ofs .. ofs + n_bits` of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subfield {
    pub field: NxmHeader,
    pub ofs: u16,
    pub n_bits: u16,
}

impl Subfield {
    /// The whole of `field`.
    pub fn whole(field: Field) -> Subfield {
        Subfield { field: NxmHeader::of(field), ofs: 0, n_bits: field.width_bits() }
    }
    /// `(ofs << 6) | (n_bits - 1)`, the Nicira packing.
    pub fn ofs_nbits(&self) -> u16 {
        (self.ofs << 6) | (self.n_bits.saturating_sub(1) & 0x3f)
    }
    pub fn from_ofs_nbits(field: NxmHeader, v: u16) -> Subfield {
        Subfield { field, ofs: v >> 6, n_bits: (v & 0x3f) + 1 }
    }
}

impl Field {
    /// Width in bits used by subfield syntax (`[]` means this many bits):
    /// Open vSwitch's field width, the significant bits (6 for `ip_dscp`,
    /// 1 for `tun_flags`), and 12 for `vlan_vid` (the OXM's 13th bit,
    /// OFPVID_PRESENT, is not part of the field).
    pub fn width_bits(self) -> u16 {
        match self {
            Field::VlanVid => 12,
            _ => self.def().bits,
        }
    }
}

/// `ct` action (NXAST_CT).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ct {
    /// NX_CT_F_COMMIT (1), NX_CT_F_FORCE (2).
    pub flags: u16,
    /// Field the zone comes from; `None` for an immediate zone.
    pub zone_src: Option<NxmHeader>,
    /// The immediate zone, or the `ofs_nbits` of `zone_src`.
    pub zone: u16,
    /// Table to recirculate to; 255 for none.
    pub recirc_table: u8,
    pub alg: u16,
    /// Nested actions (`exec(...)` and `nat`).
    pub actions: Vec<Action>,
}

pub const NX_CT_F_COMMIT: u16 = 1;
pub const NX_CT_F_FORCE: u16 = 2;
pub const NX_CT_RECIRC_NONE: u8 = 0xff;

/// `nat` inside `ct` (NXAST_NAT).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Nat {
    /// NX_NAT_F_SRC 1, DST 2, PERSISTENT 4, PROTO_HASH 8, PROTO_RANDOM 16.
    pub flags: u16,
    pub ipv4_min: Option<Ipv4Addr>,
    pub ipv4_max: Option<Ipv4Addr>,
    pub ipv6_min: Option<Ipv6Addr>,
    pub ipv6_max: Option<Ipv6Addr>,
    pub proto_min: Option<u16>,
    pub proto_max: Option<u16>,
}

pub const NX_NAT_F_SRC: u16 = 1;
pub const NX_NAT_F_DST: u16 = 2;
pub const NX_NAT_F_PERSISTENT: u16 = 4;
pub const NX_NAT_F_PROTO_HASH: u16 = 8;
pub const NX_NAT_F_PROTO_RANDOM: u16 = 16;

/// `learn` action (NXAST_LEARN).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Learn {
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub priority: u16,
    pub cookie: u64,
    pub flags: u16,
    pub table_id: u8,
    pub fin_idle_timeout: u16,
    pub fin_hard_timeout: u16,
    pub specs: Vec<LearnSpec>,
}

/// Where a learned value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LearnSrc {
    Field(Subfield),
    /// An immediate value, `ceil(n_bits / 16) * 2` bytes, big-endian.
    Immediate(Vec<u8>),
}

/// What a learn spec does with its value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LearnDst {
    Match(Subfield),
    Load(Subfield),
    Output,
}

/// One `flow_mod_spec` of a learn action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LearnSpec {
    pub n_bits: u16,
    pub src: LearnSrc,
    pub dst: LearnDst,
}

/// One action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    Output {
        port: u32,
        max_len: u16,
    },
    CopyTtlOut,
    CopyTtlIn,
    SetMplsTtl(u8),
    DecMplsTtl,
    PushVlan(u16),
    PopVlan,
    PushMpls(u16),
    PopMpls(u16),
    SetQueue(u32),
    Group(u32),
    SetNwTtl(u8),
    DecNwTtl,
    SetField(OxmField),
    PushPbb(u16),
    PopPbb,
    /// NXAST_RESUBMIT: resubmit to the current table with another in_port.
    Resubmit {
        in_port: u16,
    },
    /// NXAST_RESUBMIT_TABLE: `in_port` 0xfff8 keeps the port, table 255 keeps the table.
    ResubmitTable {
        in_port: u16,
        table: u8,
    },
    SetTunnel(u32),
    SetTunnel64(u64),
    PopQueue,
    RegMove {
        src: Subfield,
        dst: Subfield,
    },
    RegLoad {
        dst: Subfield,
        value: u64,
    },
    /// NXAST_REG_LOAD2: a `set_field` with a mask.
    RegLoad2(OxmField),
    Note(Vec<u8>),
    OutputReg {
        src: Subfield,
        max_len: u16,
    },
    Learn(Learn),
    Exit,
    FinTimeout {
        idle_timeout: u16,
        hard_timeout: u16,
    },
    Controller {
        max_len: u16,
        controller_id: u16,
        reason: u8,
    },
    DecTtlCntIds(Vec<u16>),
    Conjunction {
        id: u32,
        clause: u8,
        n_clauses: u8,
    },
    Ct(Ct),
    Nat(Nat),
    CtClear,
    /// A Nicira action this codec does not decode: its subtype and the bytes after it.
    Nicira {
        subtype: u16,
        data: Vec<u8>,
    },
    /// Another experimenter's action: the bytes after the experimenter id.
    Experimenter {
        experimenter: u32,
        data: Vec<u8>,
    },
    /// An unknown action type: the bytes after type and length.
    Unknown {
        action_type: u16,
        data: Vec<u8>,
    },
}

impl Action {
    /// `output:PORT`.
    pub fn output(port: u32) -> Action {
        Action::Output { port, max_len: 0 }
    }

    /// Writes the action (padded to 8 bytes).
    pub fn emit(&self, buf: &mut Vec<u8>) {
        let start = buf.len();
        match self {
            Action::Output { port, max_len } => {
                hdr(buf, OFPAT_OUTPUT, 16);
                buf.put_u32(*port);
                buf.put_u16(*max_len);
                buf.put_zeros(6);
            }
            Action::CopyTtlOut => simple(buf, OFPAT_COPY_TTL_OUT),
            Action::CopyTtlIn => simple(buf, OFPAT_COPY_TTL_IN),
            Action::DecMplsTtl => simple(buf, OFPAT_DEC_MPLS_TTL),
            Action::PopVlan => simple(buf, OFPAT_POP_VLAN),
            Action::DecNwTtl => simple(buf, OFPAT_DEC_NW_TTL),
            Action::PopPbb => simple(buf, OFPAT_POP_PBB),
            Action::SetMplsTtl(t) | Action::SetNwTtl(t) => {
                let ty = if matches!(self, Action::SetMplsTtl(_)) { OFPAT_SET_MPLS_TTL } else { OFPAT_SET_NW_TTL };
                hdr(buf, ty, 8);
                buf.put_u8(*t);
                buf.put_zeros(3);
            }
            Action::PushVlan(e) | Action::PushMpls(e) | Action::PopMpls(e) | Action::PushPbb(e) => {
                let ty = match self {
                    Action::PushVlan(_) => OFPAT_PUSH_VLAN,
                    Action::PushMpls(_) => OFPAT_PUSH_MPLS,
                    Action::PopMpls(_) => OFPAT_POP_MPLS,
                    _ => OFPAT_PUSH_PBB,
                };
                hdr(buf, ty, 8);
                buf.put_u16(*e);
                buf.put_zeros(2);
            }
            Action::SetQueue(q) | Action::Group(q) => {
                let ty = if matches!(self, Action::SetQueue(_)) { OFPAT_SET_QUEUE } else { OFPAT_GROUP };
                hdr(buf, ty, 8);
                buf.put_u32(*q);
            }
            Action::SetField(f) => {
                hdr(buf, OFPAT_SET_FIELD, 0);
                f.emit(buf);
                finish(buf, start);
            }
            Action::Resubmit { in_port } => {
                nx(buf, NXAST_RESUBMIT, 16);
                buf.put_u16(*in_port);
                buf.put_zeros(4);
            }
            Action::ResubmitTable { in_port, table } => {
                nx(buf, NXAST_RESUBMIT_TABLE, 16);
                buf.put_u16(*in_port);
                buf.put_u8(*table);
                buf.put_zeros(3);
            }
            Action::SetTunnel(id) => {
                nx(buf, NXAST_SET_TUNNEL, 16);
                buf.put_zeros(2);
                buf.put_u32(*id);
            }
            Action::SetTunnel64(id) => {
                nx(buf, NXAST_SET_TUNNEL64, 24);
                buf.put_zeros(6);
                buf.put_u64(*id);
            }
            Action::PopQueue => {
                nx(buf, NXAST_POP_QUEUE, 16);
                buf.put_zeros(6);
            }
            Action::RegMove { src, dst } => {
                nx(buf, NXAST_REG_MOVE, 0);
                buf.put_u16(src.n_bits);
                buf.put_u16(src.ofs);
                buf.put_u16(dst.ofs);
                src.field.emit(buf);
                dst.field.emit(buf);
                finish(buf, start);
            }
            Action::RegLoad { dst, value } => {
                nx(buf, NXAST_REG_LOAD, 24);
                buf.put_u16(dst.ofs_nbits());
                // REG_LOAD carries a 32-bit header only.
                buf.put_u32(dst.field.header);
                buf.put_u64(*value);
            }
            Action::RegLoad2(f) => {
                nx(buf, NXAST_REG_LOAD2, 0);
                f.emit(buf);
                finish(buf, start);
            }
            Action::Note(note) => {
                nx(buf, NXAST_NOTE, 0);
                buf.extend_from_slice(note);
                if buf.len() - start < 16 {
                    buf.put_zeros(16 - (buf.len() - start));
                }
                finish(buf, start);
            }
            Action::OutputReg { src, max_len } => {
                nx(buf, NXAST_OUTPUT_REG, 24);
                buf.put_u16(src.ofs_nbits());
                buf.put_u32(src.field.header);
                buf.put_u16(*max_len);
                buf.put_zeros(6);
            }
            Action::Learn(l) => {
                nx(buf, NXAST_LEARN, 0);
                buf.put_u16(l.idle_timeout);
                buf.put_u16(l.hard_timeout);
                buf.put_u16(l.priority);
                buf.put_u64(l.cookie);
                buf.put_u16(l.flags);
                buf.put_u8(l.table_id);
                buf.put_u8(0);
                buf.put_u16(l.fin_idle_timeout);
                buf.put_u16(l.fin_hard_timeout);
                for s in &l.specs {
                    s.emit(buf);
                }
                finish(buf, start);
            }
            Action::Exit => {
                nx(buf, NXAST_EXIT, 16);
                buf.put_zeros(6);
            }
            Action::FinTimeout { idle_timeout, hard_timeout } => {
                nx(buf, NXAST_FIN_TIMEOUT, 16);
                buf.put_u16(*idle_timeout);
                buf.put_u16(*hard_timeout);
                buf.put_zeros(2);
            }
            Action::Controller { max_len, controller_id, reason } => {
                nx(buf, NXAST_CONTROLLER, 16);
                buf.put_u16(*max_len);
                buf.put_u16(*controller_id);
                buf.put_u8(*reason);
                buf.put_u8(0);
            }
            Action::DecTtlCntIds(ids) => {
                nx(buf, NXAST_DEC_TTL_CNT_IDS, 0);
                buf.put_u16(super::buf::len16("cnt_ids", ids.len()));
                buf.put_zeros(4);
                for id in ids {
                    buf.put_u16(*id);
                }
                finish(buf, start);
            }
            Action::Conjunction { id, clause, n_clauses } => {
                nx(buf, NXAST_CONJUNCTION, 16);
                buf.put_u8(*clause);
                buf.put_u8(*n_clauses);
                buf.put_u32(*id);
            }
            Action::Ct(ct) => {
                nx(buf, NXAST_CT, 0);
                buf.put_u16(ct.flags);
                buf.put_u32(ct.zone_src.map_or(0, |h| h.header));
                buf.put_u16(ct.zone);
                buf.put_u8(ct.recirc_table);
                buf.put_zeros(3);
                buf.put_u16(ct.alg);
                for a in &ct.actions {
                    a.emit(buf);
                }
                finish(buf, start);
            }
            Action::Nat(n) => {
                nx(buf, NXAST_NAT, 0);
                buf.put_zeros(2);
                buf.put_u16(n.flags);
                buf.put_u16(n.range_present());
                if let Some(a) = n.ipv4_min {
                    buf.extend_from_slice(&a.octets());
                }
                if let Some(a) = n.ipv4_max {
                    buf.extend_from_slice(&a.octets());
                }
                if let Some(a) = n.ipv6_min {
                    buf.extend_from_slice(&a.octets());
                }
                if let Some(a) = n.ipv6_max {
                    buf.extend_from_slice(&a.octets());
                }
                if let Some(p) = n.proto_min {
                    buf.put_u16(p);
                }
                if let Some(p) = n.proto_max {
                    buf.put_u16(p);
                }
                finish(buf, start);
            }
            Action::CtClear => {
                nx(buf, NXAST_CT_CLEAR, 16);
                buf.put_zeros(6);
            }
            Action::Nicira { subtype, data } => {
                nx(buf, *subtype, 0);
                buf.extend_from_slice(data);
                finish_exact(buf, start);
            }
            Action::Experimenter { experimenter, data } => {
                hdr(buf, OFPAT_EXPERIMENTER, 0);
                buf.put_u32(*experimenter);
                buf.extend_from_slice(data);
                finish_exact(buf, start);
            }
            Action::Unknown { action_type, data } => {
                hdr(buf, *action_type, 0);
                buf.extend_from_slice(data);
                finish_exact(buf, start);
            }
        }
    }

    /// Encodes a list of actions.
    pub fn emit_list(actions: &[Action], buf: &mut Vec<u8>) {
        for a in actions {
            a.emit(buf);
        }
    }

    /// Decodes a list of actions that fills `bytes` exactly.
    pub fn parse_list(bytes: &[u8]) -> Result<Vec<Action>> {
        let mut r = Reader::new(bytes, "action");
        let mut out = Vec::new();
        while !r.is_empty() {
            out.push(Action::parse(&mut r)?);
        }
        Ok(out)
    }

    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Action> {
        let head = r.peek(4)?;
        let ty = u16::from_be_bytes([head[0], head[1]]);
        let len = u16::from_be_bytes([head[2], head[3]]) as usize;
        // Actions are padded to 8 bytes (OpenFlow 1.3 section 7.2.5); OVS
        // rejects other lengths, and keeping them would not round-trip.
        if len < 8 || len % 8 != 0 || len > r.remaining() {
            return Err(Error::BadLength { what: "action", len });
        }
        let all = r.bytes(len)?;
        let mut b = Reader::new(&all[4..], "action");
        let fixed = |want: usize| -> Result<()> {
            if len == want { Ok(()) } else { Err(Error::BadLength { what: "action", len }) }
        };
        let a = match ty {
            OFPAT_OUTPUT => {
                fixed(16)?;
                Action::Output { port: b.u32()?, max_len: b.u16()? }
            }
            OFPAT_COPY_TTL_OUT => fixed(8).map(|_| Action::CopyTtlOut)?,
            OFPAT_COPY_TTL_IN => fixed(8).map(|_| Action::CopyTtlIn)?,
            OFPAT_DEC_MPLS_TTL => fixed(8).map(|_| Action::DecMplsTtl)?,
            OFPAT_POP_VLAN => fixed(8).map(|_| Action::PopVlan)?,
            OFPAT_DEC_NW_TTL => fixed(8).map(|_| Action::DecNwTtl)?,
            OFPAT_POP_PBB => fixed(8).map(|_| Action::PopPbb)?,
            OFPAT_SET_MPLS_TTL => {
                fixed(8)?;
                Action::SetMplsTtl(b.u8()?)
            }
            OFPAT_SET_NW_TTL => {
                fixed(8)?;
                Action::SetNwTtl(b.u8()?)
            }
            OFPAT_PUSH_VLAN => {
                fixed(8)?;
                Action::PushVlan(b.u16()?)
            }
            OFPAT_PUSH_MPLS => {
                fixed(8)?;
                Action::PushMpls(b.u16()?)
            }
            OFPAT_POP_MPLS => {
                fixed(8)?;
                Action::PopMpls(b.u16()?)
            }
            OFPAT_PUSH_PBB => {
                fixed(8)?;
                Action::PushPbb(b.u16()?)
            }
            OFPAT_SET_QUEUE => {
                fixed(8)?;
                Action::SetQueue(b.u32()?)
            }
            OFPAT_GROUP => {
                fixed(8)?;
                Action::Group(b.u32()?)
            }
            OFPAT_SET_FIELD => {
                let f = OxmField::parse(&mut b)?;
                if f.has_mask {
                    return Err(Error::value("set_field", "masked set_field in OpenFlow 1.3"));
                }
                check_pad(len, 4 + f.wire_len())?;
                Action::SetField(f)
            }
            OFPAT_EXPERIMENTER => {
                let exp = b.u32()?;
                if exp == NX_VENDOR_ID {
                    parse_nx(len, &mut b)?
                } else {
                    Action::Experimenter { experimenter: exp, data: b.rest().to_vec() }
                }
            }
            _ => Action::Unknown { action_type: ty, data: b.rest().to_vec() },
        };
        Ok(a)
    }
}

impl Nat {
    /// NX_NAT_RANGE_* bits for the ranges present.
    pub fn range_present(&self) -> u16 {
        u16::from(self.ipv4_min.is_some())
            | u16::from(self.ipv4_max.is_some()) << 1
            | u16::from(self.ipv6_min.is_some()) << 2
            | u16::from(self.ipv6_max.is_some()) << 3
            | u16::from(self.proto_min.is_some()) << 4
            | u16::from(self.proto_max.is_some()) << 5
    }
}

impl LearnSpec {
    fn emit(&self, buf: &mut Vec<u8>) {
        let src_type: u16 = match self.src {
            LearnSrc::Field(_) => 0,
            LearnSrc::Immediate(_) => 1 << 13,
        };
        let dst_type: u16 = match self.dst {
            LearnDst::Match(_) => 0,
            LearnDst::Load(_) => 1 << 11,
            LearnDst::Output => 2 << 11,
        };
        buf.put_u16(src_type | dst_type | (self.n_bits & 0x3ff));
        match &self.src {
            LearnSrc::Field(sf) => {
                sf.field.emit(buf);
                buf.put_u16(sf.ofs);
            }
            LearnSrc::Immediate(v) => buf.extend_from_slice(v),
        }
        match &self.dst {
            LearnDst::Match(sf) | LearnDst::Load(sf) => {
                sf.field.emit(buf);
                buf.put_u16(sf.ofs);
            }
            LearnDst::Output => {}
        }
    }

    fn parse(r: &mut Reader<'_>, header: u16) -> Result<LearnSpec> {
        let n_bits = header & 0x3ff;
        // Reserved bits or a zero width would not survive re-encoding
        // (a zero header ends the spec list); OVS rejects both too.
        if header & 0xc000 != 0 || n_bits == 0 {
            return Err(Error::value("learn spec", format!("bad header {header:#06x}")));
        }
        let src = if header & (1 << 13) != 0 {
            let n = usize::from(n_bits).div_ceil(16) * 2;
            LearnSrc::Immediate(r.bytes(n)?.to_vec())
        } else {
            let field = NxmHeader::parse(r)?;
            let ofs = r.u16()?;
            LearnSrc::Field(Subfield { field, ofs, n_bits })
        };
        let dst = match (header >> 11) & 3 {
            0 | 1 => {
                let field = NxmHeader::parse(r)?;
                let ofs = r.u16()?;
                let sf = Subfield { field, ofs, n_bits };
                if (header >> 11) & 3 == 0 { LearnDst::Match(sf) } else { LearnDst::Load(sf) }
            }
            2 => LearnDst::Output,
            _ => return Err(Error::value("learn spec", "reserved destination type 3")),
        };
        Ok(LearnSpec { n_bits, src, dst })
    }
}

fn hdr(buf: &mut Vec<u8>, ty: u16, len: u16) {
    buf.put_u16(ty);
    buf.put_u16(len);
}

fn simple(buf: &mut Vec<u8>, ty: u16) {
    hdr(buf, ty, 8);
    buf.put_zeros(4);
}

fn nx(buf: &mut Vec<u8>, subtype: u16, len: u16) {
    hdr(buf, OFPAT_EXPERIMENTER, len);
    buf.put_u32(NX_VENDOR_ID);
    buf.put_u16(subtype);
}

/// Pads to 8 and writes the final length at `start + 2`.
fn finish(buf: &mut Vec<u8>, start: usize) {
    buf.pad8_from(start);
    let len = buf.len() - start;
    buf.set_u16(start + 2, super::buf::len16("action", len));
}

/// Writes the length without padding (raw actions keep their own bytes).
fn finish_exact(buf: &mut Vec<u8>, start: usize) {
    let len = buf.len() - start;
    buf.set_u16(start + 2, super::buf::len16("action", len));
}

fn check_pad(len: usize, used: usize) -> Result<()> {
    if super::buf::pad8(used) == len { Ok(()) } else { Err(Error::BadLength { what: "action", len }) }
}

fn parse_nx(len: usize, b: &mut Reader<'_>) -> Result<Action> {
    let subtype = b.u16()?;
    let fixed = |want: usize| -> Result<()> {
        if len == want { Ok(()) } else { Err(Error::BadLength { what: "Nicira action", len }) }
    };
    let a = match subtype {
        NXAST_RESUBMIT => {
            fixed(16)?;
            Action::Resubmit { in_port: b.u16()? }
        }
        NXAST_RESUBMIT_TABLE => {
            fixed(16)?;
            Action::ResubmitTable { in_port: b.u16()?, table: b.u8()? }
        }
        NXAST_SET_TUNNEL => {
            fixed(16)?;
            b.skip(2)?;
            Action::SetTunnel(b.u32()?)
        }
        NXAST_SET_TUNNEL64 => {
            fixed(24)?;
            b.skip(6)?;
            Action::SetTunnel64(b.u64()?)
        }
        NXAST_POP_QUEUE => fixed(16).map(|_| Action::PopQueue)?,
        NXAST_EXIT => fixed(16).map(|_| Action::Exit)?,
        NXAST_CT_CLEAR => fixed(16).map(|_| Action::CtClear)?,
        NXAST_REG_MOVE => {
            let n_bits = b.u16()?;
            let src_ofs = b.u16()?;
            let dst_ofs = b.u16()?;
            let src = NxmHeader::parse(b)?;
            let dst = NxmHeader::parse(b)?;
            check_pad(len, 16 + src.wire_len() + dst.wire_len())?;
            Action::RegMove {
                src: Subfield { field: src, ofs: src_ofs, n_bits },
                dst: Subfield { field: dst, ofs: dst_ofs, n_bits },
            }
        }
        NXAST_REG_LOAD => {
            fixed(24)?;
            let ofs_nbits = b.u16()?;
            let header = b.u32()?;
            let value = b.u64()?;
            Action::RegLoad {
                dst: Subfield::from_ofs_nbits(NxmHeader { header, experimenter: None }, ofs_nbits),
                value,
            }
        }
        NXAST_REG_LOAD2 => {
            let f = OxmField::parse(b)?;
            check_pad(len, 10 + f.wire_len())?;
            Action::RegLoad2(f)
        }
        NXAST_NOTE => Action::Note(b.rest().to_vec()),
        NXAST_OUTPUT_REG => {
            fixed(24)?;
            let ofs_nbits = b.u16()?;
            let header = b.u32()?;
            let max_len = b.u16()?;
            Action::OutputReg {
                src: Subfield::from_ofs_nbits(NxmHeader { header, experimenter: None }, ofs_nbits),
                max_len,
            }
        }
        NXAST_LEARN => {
            let mut l = Learn {
                idle_timeout: b.u16()?,
                hard_timeout: b.u16()?,
                priority: b.u16()?,
                cookie: b.u64()?,
                flags: b.u16()?,
                table_id: b.u8()?,
                fin_idle_timeout: {
                    b.skip(1)?;
                    b.u16()?
                },
                fin_hard_timeout: b.u16()?,
                specs: Vec::new(),
            };
            while b.remaining() >= 2 {
                let h = b.u16()?;
                if h == 0 {
                    break;
                }
                l.specs.push(LearnSpec::parse(b, h)?);
            }
            // The rest is padding; keep only actions whose re-encoding is the same.
            let mut probe = Vec::new();
            Action::Learn(l.clone()).emit(&mut probe);
            if probe.len() != len {
                return Err(Error::BadLength { what: "learn", len });
            }
            Action::Learn(l)
        }
        NXAST_FIN_TIMEOUT => {
            fixed(16)?;
            Action::FinTimeout { idle_timeout: b.u16()?, hard_timeout: b.u16()? }
        }
        NXAST_CONTROLLER => {
            fixed(16)?;
            Action::Controller { max_len: b.u16()?, controller_id: b.u16()?, reason: b.u8()? }
        }
        NXAST_DEC_TTL_CNT_IDS => {
            let n = b.u16()? as usize;
            b.skip(4)?;
            let mut ids = Vec::with_capacity(n.min(64));
            for _ in 0..n {
                ids.push(b.u16()?);
            }
            check_pad(len, 16 + 2 * n)?;
            Action::DecTtlCntIds(ids)
        }
        NXAST_CONJUNCTION => {
            fixed(16)?;
            let clause = b.u8()?;
            let n_clauses = b.u8()?;
            Action::Conjunction { clause, n_clauses, id: b.u32()? }
        }
        NXAST_CT => {
            let flags = b.u16()?;
            let zone_src = b.u32()?;
            let zone = b.u16()?;
            let recirc_table = b.u8()?;
            b.skip(3)?;
            let alg = b.u16()?;
            let actions = Action::parse_list(b.rest())?;
            Action::Ct(Ct {
                flags,
                zone_src: (zone_src != 0).then_some(NxmHeader { header: zone_src, experimenter: None }),
                zone,
                recirc_table,
                alg,
                actions,
            })
        }
        NXAST_NAT => {
            b.skip(2)?;
            let flags = b.u16()?;
            let rp = b.u16()?;
            let mut n = Nat { flags, ..Nat::default() };
            if rp & 1 != 0 {
                n.ipv4_min = Some(Ipv4Addr::from(b.array::<4>()?));
            }
            if rp & 2 != 0 {
                n.ipv4_max = Some(Ipv4Addr::from(b.array::<4>()?));
            }
            if rp & 4 != 0 {
                n.ipv6_min = Some(Ipv6Addr::from(b.array::<16>()?));
            }
            if rp & 8 != 0 {
                n.ipv6_max = Some(Ipv6Addr::from(b.array::<16>()?));
            }
            if rp & 0x10 != 0 {
                n.proto_min = Some(b.u16()?);
            }
            if rp & 0x20 != 0 {
                n.proto_max = Some(b.u16()?);
            }
            if rp & !0x3f != 0 {
                return Err(Error::value("nat", format!("unknown range bits {rp:#x}")));
            }
            let used = len - b.remaining();
            check_pad(len, used)?;
            Action::Nat(n)
        }
        _ => Action::Nicira { subtype, data: b.rest().to_vec() },
    };
    Ok(a)
}
