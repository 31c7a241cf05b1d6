//! Match fields: OpenFlow 1.3 OXM, the Nicira NXM fields OVS adds, and the
//! `ofp_match` structure that carries them.
//!
//! A [`Match`] is an ordered list of [`OxmField`]s kept exactly as on the
//! wire; [`Match::canonical`] sorts it the way Open vSwitch emits fields, so
//! two matches that mean the same compare equal after a switch echoes one back.

use super::buf::{Put, Reader};
use super::error::{Error, Result};

/// OXM class of the OpenFlow basic fields.
pub const OFPXMC_OPENFLOW_BASIC: u16 = 0x8000;
/// OXM class of the OpenFlow 1.3 packet registers (`xreg`).
pub const OFPXMC_PACKET_REGS: u16 = 0x8001;
/// OXM class that carries a 32-bit experimenter id after the header.
pub const OFPXMC_EXPERIMENTER: u16 = 0xffff;
/// NXM class 0: fields from OpenFlow 1.0 (`NXM_OF_*`).
pub const NXM_OF: u16 = 0x0000;
/// NXM class 1: Nicira extension fields (`NXM_NX_*`).
pub const NXM_NX: u16 = 0x0001;
/// Experimenter id of the ONF extension fields (and bundles).
pub const ONF_EXPERIMENTER: u32 = 0x4f4e_4600;
/// Experimenter id of Nicira (actions, messages, errors).
pub const NX_VENDOR_ID: u32 = 0x0000_2320;

/// Identity of a field on the wire: class, field number and, for the
/// experimenter class, the experimenter id. The has-mask bit and the length
/// are not part of the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OxmId {
    pub class: u16,
    pub field: u8,
    pub experimenter: Option<u32>,
}

impl OxmId {
    pub const fn new(class: u16, field: u8) -> Self {
        OxmId { class, field, experimenter: None }
    }
    pub const fn exp(exp: u32, field: u8) -> Self {
        OxmId { class: OFPXMC_EXPERIMENTER, field, experimenter: Some(exp) }
    }
    /// The 32-bit header for a payload of `len` bytes (without the experimenter id).
    pub fn header(&self, has_mask: bool, len: usize) -> u32 {
        let extra = if self.experimenter.is_some() { 4 } else { 0 };
        (u32::from(self.class) << 16)
            | (u32::from(self.field & 0x7f) << 9)
            | (u32::from(has_mask) << 8)
            | ((len + extra) as u32 & 0xff)
    }
    /// Header length on the wire: 4, or 8 with an experimenter id.
    pub fn header_len(&self) -> usize {
        if self.experimenter.is_some() { 8 } else { 4 }
    }
    /// Writes the header (and experimenter id) for a payload of `len` bytes.
    pub fn emit_header(&self, buf: &mut Vec<u8>, has_mask: bool, len: usize) {
        buf.put_u32(self.header(has_mask, len));
        if let Some(e) = self.experimenter {
            buf.put_u32(e);
        }
    }
    /// Reads a header; returns the id, the has-mask bit and the payload length.
    pub(crate) fn parse_header(r: &mut Reader<'_>) -> Result<(OxmId, bool, usize)> {
        let h = r.u32()?;
        let class = (h >> 16) as u16;
        let field = ((h >> 9) & 0x7f) as u8;
        let has_mask = h & 0x100 != 0;
        let mut len = (h & 0xff) as usize;
        let mut id = OxmId::new(class, field);
        if class == OFPXMC_EXPERIMENTER {
            if len < 4 {
                return Err(Error::BadLength { what: "experimenter OXM", len });
            }
            id.experimenter = Some(r.u32()?);
            len -= 4;
        }
        Ok((id, has_mask, len))
    }
    /// The known field with this id, if any.
    pub fn field(&self) -> Option<Field> {
        Field::by_id(*self)
    }
}

/// One match field (or the value of a `set_field`), exactly as on the wire.
/// When `has_mask` is set, `payload` is the value followed by the mask.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OxmField {
    pub id: OxmId,
    pub has_mask: bool,
    pub payload: Vec<u8>,
}

impl OxmField {
    /// An exact-match field.
    pub fn exact(field: Field, value: &[u8]) -> Self {
        OxmField { id: field.def().oxm, has_mask: false, payload: value.to_vec() }
    }
    /// A masked field; an all-ones mask becomes an exact match, as OVS does.
    pub fn masked(field: Field, value: &[u8], mask: &[u8]) -> Self {
        if mask.iter().all(|&b| b == 0xff) {
            return Self::exact(field, value);
        }
        let mut payload = Vec::with_capacity(value.len() * 2);
        payload.extend(value.iter().zip(mask).map(|(v, m)| v & m));
        payload.extend_from_slice(mask);
        OxmField { id: field.def().oxm, has_mask: true, payload }
    }
    /// The value part.
    pub fn value(&self) -> &[u8] {
        if self.has_mask { &self.payload[..self.payload.len() / 2] } else { &self.payload }
    }
    /// The mask part, if the field is masked.
    pub fn mask(&self) -> Option<&[u8]> {
        self.has_mask.then(|| &self.payload[self.payload.len() / 2..])
    }
    /// The known field, if any.
    pub fn field(&self) -> Option<Field> {
        self.id.field()
    }
    /// Bytes on the wire.
    pub fn wire_len(&self) -> usize {
        self.id.header_len() + self.payload.len()
    }
    pub fn emit(&self, buf: &mut Vec<u8>) {
        self.id.emit_header(buf, self.has_mask, self.payload.len());
        buf.extend_from_slice(&self.payload);
    }
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<OxmField> {
        let (id, has_mask, len) = OxmId::parse_header(r)?;
        let payload = r.bytes(len)?.to_vec();
        if has_mask && len % 2 != 0 {
            return Err(Error::BadLength { what: "masked OXM field", len });
        }
        if let Some(f) = id.field() {
            let want = f.def().len as usize * if has_mask { 2 } else { 1 };
            if want != len {
                return Err(Error::BadLength { what: f.def().name, len });
            }
        }
        Ok(OxmField { id, has_mask, payload })
    }
    /// The value as an unsigned integer (for fields up to 16 bytes).
    pub fn value_u128(&self) -> u128 {
        be_to_u128(self.value())
    }
    pub fn mask_u128(&self) -> Option<u128> {
        self.mask().map(be_to_u128)
    }
}

pub(crate) fn be_to_u128(b: &[u8]) -> u128 {
    b.iter().rev().take(16).rev().fold(0u128, |a, &x| (a << 8) | u128::from(x))
}

pub(crate) fn u128_to_be(v: u128, len: usize) -> Vec<u8> {
    let all = v.to_be_bytes();
    let len = len.min(16);
    all[16 - len..].to_vec()
}

/// How a field's value is written in text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fmt {
    Decimal,
    Hex,
    Eth,
    Ipv4,
    Ipv6,
    /// An OpenFlow 1.1+ port number (`LOCAL`, `CONTROLLER`, ...).
    Port,
    /// An OpenFlow 1.0 (16-bit) port number.
    Port16,
    CtState,
    TunFlags,
    TcpFlags,
    Frag,
}

/// What a field needs earlier in the match (OpenFlow 1.3 table 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prereq {
    None,
    Ipv4,
    Ipv6,
    Ip,
    Arp,
    Mpls,
    Tcp,
    Udp,
    Sctp,
    Icmpv4,
    Icmpv6,
    /// ICMPv6 neighbour solicitation or advertisement.
    Nd,
    NdSolicit,
    NdAdvert,
    /// `vlan_vid` must match a present VLAN tag.
    VlanVid,
}

/// Static facts about a known field.
#[derive(Debug)]
pub struct FieldDef {
    /// Name in ovs-ofctl syntax (`eth_src`).
    pub name: &'static str,
    /// Name used in `move`/`load` subfields when printing (`NXM_OF_ETH_SRC`).
    pub nxm_name: &'static str,
    /// Header used in a match or `set_field` in OpenFlow 1.3.
    pub oxm: OxmId,
    /// Header used in Nicira actions (`move`, `load`, `learn`); the OXM one if none.
    pub nxm: Option<OxmId>,
    /// Other OXM name (`OXM_OF_ETH_SRC`), accepted when parsing.
    pub oxm_name: &'static str,
    /// Value length in bytes.
    pub len: u8,
    /// Significant bits (e.g. 12 for `vlan_vid`... counted from the low end).
    pub bits: u16,
    pub maskable: bool,
    pub fmt: Fmt,
    pub prereq: Prereq,
    /// Position in Open vSwitch's own emission order (`nx_put_raw`).
    pub rank: u16,
}

macro_rules! fields {
    ($( $v:ident = ($name:expr, $nxm_name:expr, $oxm_name:expr, $oxm:expr, $nxm:expr, $len:expr, $bits:expr, $mask:expr, $fmt:ident, $pre:ident, $rank:expr) ),* $(,)?) => {
        /// A field the codec knows by name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[allow(non_camel_case_types)]
        pub enum Field { $($v),* }
        static DEFS: &[FieldDef] = &[
            $(FieldDef { name: $name, nxm_name: $nxm_name, oxm_name: $oxm_name, oxm: $oxm, nxm: $nxm,
                len: $len, bits: $bits, maskable: $mask, fmt: Fmt::$fmt, prereq: Prereq::$pre, rank: $rank }),*
        ];
        impl Field {
            /// Every known field.
            pub const ALL: &'static [Field] = &[$(Field::$v),*];
        }
    };
}

const fn b(f: u8) -> OxmId {
    OxmId::new(OFPXMC_OPENFLOW_BASIC, f)
}
const fn of(f: u8) -> Option<OxmId> {
    Some(OxmId::new(NXM_OF, f))
}
const fn nx(f: u8) -> OxmId {
    OxmId::new(NXM_NX, f)
}
const fn nxo(f: u8) -> Option<OxmId> {
    Some(OxmId::new(NXM_NX, f))
}
const fn xr(f: u8) -> OxmId {
    OxmId::new(OFPXMC_PACKET_REGS, f)
}

fields! {
    ConjId = ("conj_id", "NXM_NX_CONJ_ID", "", nx(37), None, 4, 32, false, Decimal, None, 5),
    InPort = ("in_port", "OXM_OF_IN_PORT", "OXM_OF_IN_PORT", b(0), None, 4, 32, false, Port, None, 10),
    InPort16 = ("in_port16", "NXM_OF_IN_PORT", "", OxmId::new(NXM_OF, 0), None, 2, 16, false, Port16, None, 11),
    InPhyPort = ("in_phy_port", "OXM_OF_IN_PHY_PORT", "OXM_OF_IN_PHY_PORT", b(1), None, 4, 32, false, Port, None, 12),
    ActsetOutput = ("actset_output", "ONFOXM_ET_ACTSET_OUTPUT", "", OxmId::exp(ONF_EXPERIMENTER, 43), None, 4, 32, false, Port, None, 13),
    EthSrc = ("eth_src", "NXM_OF_ETH_SRC", "OXM_OF_ETH_SRC", b(4), of(2), 6, 48, true, Eth, None, 20),
    EthDst = ("eth_dst", "NXM_OF_ETH_DST", "OXM_OF_ETH_DST", b(3), of(1), 6, 48, true, Eth, None, 21),
    EthType = ("eth_type", "NXM_OF_ETH_TYPE", "OXM_OF_ETH_TYPE", b(5), of(3), 2, 16, false, Hex, None, 22),
    VlanTci = ("vlan_tci", "NXM_OF_VLAN_TCI", "", OxmId::new(NXM_OF, 4), None, 2, 16, true, Hex, None, 25),
    VlanVid = ("vlan_vid", "OXM_OF_VLAN_VID", "OXM_OF_VLAN_VID", b(6), None, 2, 13, true, Decimal, None, 26),
    VlanPcp = ("vlan_pcp", "OXM_OF_VLAN_PCP", "OXM_OF_VLAN_PCP", b(7), None, 1, 3, false, Decimal, VlanVid, 27),
    MplsTc = ("mpls_tc", "OXM_OF_MPLS_TC", "OXM_OF_MPLS_TC", b(35), None, 1, 3, false, Decimal, Mpls, 30),
    MplsBos = ("mpls_bos", "OXM_OF_MPLS_BOS", "OXM_OF_MPLS_BOS", b(36), None, 1, 1, false, Decimal, Mpls, 31),
    MplsTtl = ("mpls_ttl", "NXM_NX_MPLS_TTL", "", nx(30), None, 1, 8, false, Decimal, Mpls, 32),
    MplsLabel = ("mpls_label", "OXM_OF_MPLS_LABEL", "OXM_OF_MPLS_LABEL", b(34), None, 4, 20, false, Decimal, Mpls, 33),
    Ipv4Src = ("ip_src", "NXM_OF_IP_SRC", "OXM_OF_IPV4_SRC", b(11), of(7), 4, 32, true, Ipv4, Ipv4, 40),
    Ipv4Dst = ("ip_dst", "NXM_OF_IP_DST", "OXM_OF_IPV4_DST", b(12), of(8), 4, 32, true, Ipv4, Ipv4, 41),
    Ipv6Src = ("ipv6_src", "NXM_NX_IPV6_SRC", "OXM_OF_IPV6_SRC", b(26), nxo(19), 16, 128, true, Ipv6, Ipv6, 42),
    Ipv6Dst = ("ipv6_dst", "NXM_NX_IPV6_DST", "OXM_OF_IPV6_DST", b(27), nxo(20), 16, 128, true, Ipv6, Ipv6, 43),
    IpFrag = ("ip_frag", "NXM_NX_IP_FRAG", "", nx(26), None, 1, 2, true, Frag, Ip, 44),
    IpDscp = ("ip_dscp", "OXM_OF_IP_DSCP", "OXM_OF_IP_DSCP", b(8), None, 1, 6, false, Decimal, Ip, 45),
    NwTos = ("nw_tos", "NXM_OF_IP_TOS", "", OxmId::new(NXM_OF, 5), None, 1, 8, false, Decimal, Ip, 46),
    IpEcn = ("nw_ecn", "NXM_NX_IP_ECN", "OXM_OF_IP_ECN", b(9), nxo(28), 1, 2, false, Decimal, Ip, 47),
    NwTtl = ("nw_ttl", "NXM_NX_IP_TTL", "", nx(29), None, 1, 8, false, Decimal, Ip, 48),
    Ipv6Label = ("ipv6_label", "NXM_NX_IPV6_LABEL", "OXM_OF_IPV6_FLABEL", b(28), nxo(27), 4, 20, true, Hex, Ipv6, 49),
    IpProto = ("nw_proto", "NXM_OF_IP_PROTO", "OXM_OF_IP_PROTO", b(10), of(6), 1, 8, false, Decimal, Ip, 50),
    TcpSrc = ("tcp_src", "NXM_OF_TCP_SRC", "OXM_OF_TCP_SRC", b(13), of(9), 2, 16, true, Decimal, Tcp, 51),
    TcpDst = ("tcp_dst", "NXM_OF_TCP_DST", "OXM_OF_TCP_DST", b(14), of(10), 2, 16, true, Decimal, Tcp, 52),
    TcpFlags = ("tcp_flags", "NXM_NX_TCP_FLAGS", "ONFOXM_ET_TCP_FLAGS", OxmId::exp(ONF_EXPERIMENTER, 42), nxo(34), 2, 12, true, TcpFlags, Tcp, 53),
    UdpSrc = ("udp_src", "NXM_OF_UDP_SRC", "OXM_OF_UDP_SRC", b(15), of(11), 2, 16, true, Decimal, Udp, 54),
    UdpDst = ("udp_dst", "NXM_OF_UDP_DST", "OXM_OF_UDP_DST", b(16), of(12), 2, 16, true, Decimal, Udp, 55),
    SctpSrc = ("sctp_src", "OXM_OF_SCTP_SRC", "OXM_OF_SCTP_SRC", b(17), None, 2, 16, true, Decimal, Sctp, 56),
    SctpDst = ("sctp_dst", "OXM_OF_SCTP_DST", "OXM_OF_SCTP_DST", b(18), None, 2, 16, true, Decimal, Sctp, 57),
    Icmpv4Type = ("icmp_type", "NXM_OF_ICMP_TYPE", "OXM_OF_ICMPV4_TYPE", b(19), of(13), 1, 8, false, Decimal, Icmpv4, 58),
    Icmpv4Code = ("icmp_code", "NXM_OF_ICMP_CODE", "OXM_OF_ICMPV4_CODE", b(20), of(14), 1, 8, false, Decimal, Icmpv4, 59),
    Icmpv6Type = ("icmpv6_type", "NXM_NX_ICMPV6_TYPE", "OXM_OF_ICMPV6_TYPE", b(29), nxo(21), 1, 8, false, Decimal, Icmpv6, 60),
    Icmpv6Code = ("icmpv6_code", "NXM_NX_ICMPV6_CODE", "OXM_OF_ICMPV6_CODE", b(30), nxo(22), 1, 8, false, Decimal, Icmpv6, 61),
    NdTarget = ("nd_target", "NXM_NX_ND_TARGET", "OXM_OF_IPV6_ND_TARGET", b(31), nxo(23), 16, 128, true, Ipv6, Nd, 62),
    NdSll = ("nd_sll", "NXM_NX_ND_SLL", "OXM_OF_IPV6_ND_SLL", b(32), nxo(24), 6, 48, true, Eth, NdSolicit, 63),
    NdTll = ("nd_tll", "NXM_NX_ND_TLL", "OXM_OF_IPV6_ND_TLL", b(33), nxo(25), 6, 48, true, Eth, NdAdvert, 64),
    Ipv6Exthdr = ("ipv6_exthdr", "OXM_OF_IPV6_EXTHDR", "OXM_OF_IPV6_EXTHDR", b(39), None, 2, 9, true, Hex, Ipv6, 65),
    ArpOp = ("arp_op", "NXM_OF_ARP_OP", "OXM_OF_ARP_OP", b(21), of(15), 2, 16, false, Decimal, Arp, 70),
    ArpSpa = ("arp_spa", "NXM_OF_ARP_SPA", "OXM_OF_ARP_SPA", b(22), of(16), 4, 32, true, Ipv4, Arp, 71),
    ArpTpa = ("arp_tpa", "NXM_OF_ARP_TPA", "OXM_OF_ARP_TPA", b(23), of(17), 4, 32, true, Ipv4, Arp, 72),
    ArpSha = ("arp_sha", "NXM_NX_ARP_SHA", "OXM_OF_ARP_SHA", b(24), nxo(17), 6, 48, true, Eth, Arp, 73),
    ArpTha = ("arp_tha", "NXM_NX_ARP_THA", "OXM_OF_ARP_THA", b(25), nxo(18), 6, 48, true, Eth, Arp, 74),
    TunId = ("tun_id", "NXM_NX_TUN_ID", "OXM_OF_TUNNEL_ID", b(38), nxo(16), 8, 64, true, Hex, None, 80),
    TunFlags = ("tun_flags", "NXM_NX_TUN_FLAGS", "", nx(104), None, 2, 1, true, TunFlags, None, 81),
    TunSrc = ("tun_src", "NXM_NX_TUN_IPV4_SRC", "", nx(31), None, 4, 32, true, Ipv4, None, 82),
    TunDst = ("tun_dst", "NXM_NX_TUN_IPV4_DST", "", nx(32), None, 4, 32, true, Ipv4, None, 83),
    TunIpv6Src = ("tun_ipv6_src", "NXM_NX_TUN_IPV6_SRC", "", nx(109), None, 16, 128, true, Ipv6, None, 84),
    TunIpv6Dst = ("tun_ipv6_dst", "NXM_NX_TUN_IPV6_DST", "", nx(110), None, 16, 128, true, Ipv6, None, 85),
    PbbIsid = ("pbb_isid", "OXM_OF_PBB_ISID", "OXM_OF_PBB_ISID", b(37), None, 3, 24, true, Decimal, None, 86),
    Reg0 = ("reg0", "NXM_NX_REG0", "", nx(0), None, 4, 32, true, Hex, None, 90),
    Reg1 = ("reg1", "NXM_NX_REG1", "", nx(1), None, 4, 32, true, Hex, None, 91),
    Reg2 = ("reg2", "NXM_NX_REG2", "", nx(2), None, 4, 32, true, Hex, None, 92),
    Reg3 = ("reg3", "NXM_NX_REG3", "", nx(3), None, 4, 32, true, Hex, None, 93),
    Reg4 = ("reg4", "NXM_NX_REG4", "", nx(4), None, 4, 32, true, Hex, None, 94),
    Reg5 = ("reg5", "NXM_NX_REG5", "", nx(5), None, 4, 32, true, Hex, None, 95),
    Reg6 = ("reg6", "NXM_NX_REG6", "", nx(6), None, 4, 32, true, Hex, None, 96),
    Reg7 = ("reg7", "NXM_NX_REG7", "", nx(7), None, 4, 32, true, Hex, None, 97),
    Reg8 = ("reg8", "NXM_NX_REG8", "", nx(8), None, 4, 32, true, Hex, None, 98),
    Reg9 = ("reg9", "NXM_NX_REG9", "", nx(9), None, 4, 32, true, Hex, None, 99),
    Reg10 = ("reg10", "NXM_NX_REG10", "", nx(10), None, 4, 32, true, Hex, None, 100),
    Reg11 = ("reg11", "NXM_NX_REG11", "", nx(11), None, 4, 32, true, Hex, None, 101),
    Reg12 = ("reg12", "NXM_NX_REG12", "", nx(12), None, 4, 32, true, Hex, None, 102),
    Reg13 = ("reg13", "NXM_NX_REG13", "", nx(13), None, 4, 32, true, Hex, None, 103),
    Reg14 = ("reg14", "NXM_NX_REG14", "", nx(14), None, 4, 32, true, Hex, None, 104),
    Reg15 = ("reg15", "NXM_NX_REG15", "", nx(15), None, 4, 32, true, Hex, None, 105),
    Xreg0 = ("xreg0", "OXM_OF_PKT_REG0", "", xr(0), None, 8, 64, true, Hex, None, 110),
    Xreg1 = ("xreg1", "OXM_OF_PKT_REG1", "", xr(1), None, 8, 64, true, Hex, None, 111),
    Xreg2 = ("xreg2", "OXM_OF_PKT_REG2", "", xr(2), None, 8, 64, true, Hex, None, 112),
    Xreg3 = ("xreg3", "OXM_OF_PKT_REG3", "", xr(3), None, 8, 64, true, Hex, None, 113),
    Xreg4 = ("xreg4", "OXM_OF_PKT_REG4", "", xr(4), None, 8, 64, true, Hex, None, 114),
    Xreg5 = ("xreg5", "OXM_OF_PKT_REG5", "", xr(5), None, 8, 64, true, Hex, None, 115),
    Xreg6 = ("xreg6", "OXM_OF_PKT_REG6", "", xr(6), None, 8, 64, true, Hex, None, 116),
    Xreg7 = ("xreg7", "OXM_OF_PKT_REG7", "", xr(7), None, 8, 64, true, Hex, None, 117),
    PktMark = ("pkt_mark", "NXM_NX_PKT_MARK", "", nx(33), None, 4, 32, true, Hex, None, 120),
    CtState = ("ct_state", "NXM_NX_CT_STATE", "", nx(105), None, 4, 32, true, CtState, None, 121),
    CtZone = ("ct_zone", "NXM_NX_CT_ZONE", "", nx(106), None, 2, 16, false, Hex, None, 122),
    CtMark = ("ct_mark", "NXM_NX_CT_MARK", "", nx(107), None, 4, 32, true, Hex, None, 123),
    CtLabel = ("ct_label", "NXM_NX_CT_LABEL", "", nx(108), None, 16, 128, true, Hex, None, 124),
    CtNwSrc = ("ct_nw_src", "NXM_NX_CT_NW_SRC", "", nx(120), None, 4, 32, true, Ipv4, None, 125),
    CtIpv6Src = ("ct_ipv6_src", "NXM_NX_CT_IPV6_SRC", "", nx(122), None, 16, 128, true, Ipv6, None, 126),
    CtNwDst = ("ct_nw_dst", "NXM_NX_CT_NW_DST", "", nx(121), None, 4, 32, true, Ipv4, None, 127),
    CtIpv6Dst = ("ct_ipv6_dst", "NXM_NX_CT_IPV6_DST", "", nx(123), None, 16, 128, true, Ipv6, None, 128),
    CtNwProto = ("ct_nw_proto", "NXM_NX_CT_NW_PROTO", "", nx(119), None, 1, 8, false, Decimal, None, 129),
    CtTpSrc = ("ct_tp_src", "NXM_NX_CT_TP_SRC", "", nx(124), None, 2, 16, true, Decimal, None, 130),
    CtTpDst = ("ct_tp_dst", "NXM_NX_CT_TP_DST", "", nx(125), None, 2, 16, true, Decimal, None, 131),
    Metadata = ("metadata", "OXM_OF_METADATA", "OXM_OF_METADATA", b(2), None, 8, 64, true, Hex, None, 140),
}

impl Field {
    pub fn def(self) -> &'static FieldDef {
        &DEFS[self as usize]
    }
    /// Looks a field up by either of its wire ids.
    pub fn by_id(id: OxmId) -> Option<Field> {
        Field::ALL.iter().copied().find(|f| f.def().oxm == id || f.def().nxm == Some(id))
    }
    /// The header Nicira actions use for this field.
    pub fn nxm_id(self) -> OxmId {
        let d = self.def();
        d.nxm.unwrap_or(d.oxm)
    }
    /// Width in bits of the whole field (as the wire carries it).
    pub fn width(self) -> u16 {
        u16::from(self.def().len) * 8
    }
    /// Looks a field up by any of its text names (`eth_src`, `dl_src`,
    /// `NXM_OF_ETH_SRC`, `OXM_OF_ETH_SRC`).
    pub fn by_name(name: &str) -> Option<Field> {
        let alias = match name {
            "dl_src" => Some(Field::EthSrc),
            "dl_dst" => Some(Field::EthDst),
            "dl_type" => Some(Field::EthType),
            "nw_src" | "ipv4_src" => Some(Field::Ipv4Src),
            "nw_dst" | "ipv4_dst" => Some(Field::Ipv4Dst),
            "ip_proto" => Some(Field::IpProto),
            "ip_ecn" => Some(Field::IpEcn),
            "ip_ttl" => Some(Field::NwTtl),
            "nw_frag" => Some(Field::IpFrag),
            "tun_ipv4_src" => Some(Field::TunSrc),
            "tun_ipv4_dst" => Some(Field::TunDst),
            "tunnel_id" => Some(Field::TunId),
            "icmpv4_type" => Some(Field::Icmpv4Type),
            "icmpv4_code" => Some(Field::Icmpv4Code),
            "ipv6_flabel" => Some(Field::Ipv6Label),
            "ipv6_nd_target" => Some(Field::NdTarget),
            "ipv6_nd_sll" => Some(Field::NdSll),
            "ipv6_nd_tll" => Some(Field::NdTll),
            "in_port_oxm" => Some(Field::InPort),
            _ => None,
        };
        alias.or_else(|| {
            Field::ALL.iter().copied().find(|f| {
                let d = f.def();
                d.name == name || d.nxm_name == name || (!d.oxm_name.is_empty() && d.oxm_name == name)
            })
        })
    }
}

/// `ofp_match` of type OXM: an ordered list of fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Match {
    pub fields: Vec<OxmField>,
}

/// `OFPMT_OXM`.
pub const OFPMT_OXM: u16 = 1;

impl Match {
    pub fn new() -> Self {
        Match::default()
    }
    /// Bytes of the `ofp_match` on the wire, padding included.
    pub fn wire_len(&self) -> usize {
        super::buf::pad8(4 + self.fields.iter().map(OxmField::wire_len).sum::<usize>())
    }
    /// Writes `ofp_match` (type, length excluding padding, fields, padding).
    pub fn emit(&self, buf: &mut Vec<u8>) {
        let start = buf.len();
        buf.put_u16(OFPMT_OXM);
        buf.put_u16(0);
        for f in &self.fields {
            f.emit(buf);
        }
        let len = buf.len() - start;
        buf.set_u16(start + 2, super::buf::len16("match", len));
        buf.pad8_from(start);
    }
    /// Bytes on the wire, padding included, of an `ofp_match` holding
    /// these already encoded OXM fields.
    pub fn raw_wire_len(fields: &[u8]) -> usize {
        super::buf::pad8(4 + fields.len())
    }
    /// Writes `ofp_match` around already encoded OXM fields (as
    /// [`Match::emit`] lays it out).
    pub fn emit_raw(fields: &[u8], buf: &mut Vec<u8>) {
        let start = buf.len();
        buf.put_u16(OFPMT_OXM);
        buf.put_u16(super::buf::len16("match", 4 + fields.len()));
        buf.extend_from_slice(fields);
        buf.pad8_from(start);
    }
    /// Reads `ofp_match` and its padding.
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Match> {
        let ty = r.u16()?;
        let len = r.u16()? as usize;
        if ty != OFPMT_OXM {
            return Err(Error::value("match type", format!("{ty} (only OXM is supported)")));
        }
        if len < 4 {
            return Err(Error::BadLength { what: "match", len });
        }
        let body = r.bytes(len - 4)?;
        let padded = super::buf::pad8(len);
        r.skip((padded - len).min(r.remaining()))?;
        Match::parse_fields(body)
    }
    /// Reads a bare sequence of OXM fields.
    pub fn parse_fields(body: &[u8]) -> Result<Match> {
        let mut fr = Reader::new(body, "OXM field");
        let mut fields = Vec::new();
        while !fr.is_empty() {
            fields.push(OxmField::parse(&mut fr)?);
        }
        Ok(Match { fields })
    }
    /// Adds a field, keeping the list in Open vSwitch order.
    pub fn push(&mut self, f: OxmField) {
        self.fields.push(f);
    }
    /// The field with this identity, if present.
    pub fn get(&self, field: Field) -> Option<&OxmField> {
        let d = field.def();
        self.fields.iter().find(|f| f.id == d.oxm || Some(f.id) == d.nxm)
    }
    /// The same match with its fields in Open vSwitch's emission order
    /// (unknown fields last, by header). Use this before comparing matches.
    pub fn canonical(&self) -> Match {
        let mut fields = self.fields.clone();
        fields.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
        Match { fields }
    }
    /// Checks that every field's prerequisites are present in the match.
    pub fn check_prerequisites(&self) -> Result<()> {
        for f in &self.fields {
            let Some(field) = f.field() else { continue };
            let pre = field.def().prereq;
            if !self.satisfies(pre) {
                return Err(Error::BadPrerequisite {
                    field: field.def().name.to_string(),
                    prereq: prereq_text(pre).to_string(),
                });
            }
        }
        Ok(())
    }
    fn exact_u(&self, field: Field) -> Option<u128> {
        self.get(field).filter(|f| !f.has_mask).map(OxmField::value_u128)
    }
    fn satisfies(&self, p: Prereq) -> bool {
        let et = self.exact_u(Field::EthType);
        let proto = self.exact_u(Field::IpProto);
        let is4 = et == Some(0x0800);
        let is6 = et == Some(0x86dd);
        match p {
            Prereq::None => true,
            Prereq::Ipv4 => is4,
            Prereq::Ipv6 => is6,
            Prereq::Ip => is4 || is6,
            Prereq::Arp => matches!(et, Some(0x0806) | Some(0x8035)),
            Prereq::Mpls => matches!(et, Some(0x8847) | Some(0x8848)),
            Prereq::Tcp => (is4 || is6) && proto == Some(6),
            Prereq::Udp => (is4 || is6) && proto == Some(17),
            Prereq::Sctp => (is4 || is6) && proto == Some(132),
            Prereq::Icmpv4 => is4 && proto == Some(1),
            Prereq::Icmpv6 => is6 && proto == Some(58),
            Prereq::Nd | Prereq::NdSolicit | Prereq::NdAdvert => {
                let ty = self.exact_u(Field::Icmpv6Type);
                is6 && proto == Some(58)
                    && match p {
                        Prereq::NdSolicit => ty == Some(135),
                        Prereq::NdAdvert => ty == Some(136),
                        _ => matches!(ty, Some(135) | Some(136)),
                    }
            }
            Prereq::VlanVid => self.get(Field::VlanVid).is_some_and(|f| f.value_u128() & 0x1000 != 0),
        }
    }
}

fn sort_key(f: &OxmField) -> (u16, OxmId, bool, &[u8]) {
    let rank = f.field().map_or(u16::MAX, |x| x.def().rank);
    (rank, f.id, f.has_mask, &f.payload)
}

fn prereq_text(p: Prereq) -> &'static str {
    match p {
        Prereq::None => "nothing",
        Prereq::Ipv4 => "ip (eth_type=0x0800)",
        Prereq::Ipv6 => "ipv6 (eth_type=0x86dd)",
        Prereq::Ip => "ip or ipv6",
        Prereq::Arp => "arp or rarp",
        Prereq::Mpls => "mpls",
        Prereq::Tcp => "tcp or tcp6",
        Prereq::Udp => "udp or udp6",
        Prereq::Sctp => "sctp or sctp6",
        Prereq::Icmpv4 => "icmp",
        Prereq::Icmpv6 => "icmp6",
        Prereq::Nd => "icmp6 with icmp_type=135 or 136",
        Prereq::NdSolicit => "icmp6 with icmp_type=135",
        Prereq::NdAdvert => "icmp6 with icmp_type=136",
        Prereq::VlanVid => "a VLAN tag (vlan_vid with the present bit)",
    }
}
