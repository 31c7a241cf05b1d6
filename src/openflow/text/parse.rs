//! Text to values.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::openflow::action::*;
use crate::openflow::error::{Error, Result};
use crate::openflow::instruction::Instruction;
use crate::openflow::message::{
    FlowMod, OFPFF_CHECK_OVERLAP, OFPFF_NO_BYT_COUNTS, OFPFF_NO_PKT_COUNTS, OFPFF_RESET_COUNTS, OFPFF_SEND_FLOW_REM,
};
use crate::openflow::oxm::{Field, Fmt, Match, OxmField, be_to_u128, u128_to_be};

/// Parses a flow in `ovs-ofctl add-flow` syntax into an OpenFlow 1.3
/// FLOW_MOD (ADD). Fields come out in Open vSwitch's order, so the encoding
/// equals what ovs-ofctl sends.
pub fn parse_flow(s: &str) -> Result<FlowMod> {
    let s = s.trim();
    let (head, acts) = match find_actions(s) {
        Some(i) => (&s[..i], Some(&s[i + "actions=".len()..])),
        None => (s, None),
    };
    let mut fm = FlowMod::default();
    let mut mb = MatchBuilder::default();
    for tok in split_top(head, &[',', ' ', '\t']) {
        let (k, v) = match tok.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (tok.trim(), None),
        };
        match (k, v) {
            ("priority", Some(v)) => fm.priority = num(v, "priority")?,
            ("table", Some(v)) => fm.table_id = num(v, "table")?,
            ("idle_timeout", Some(v)) => fm.idle_timeout = num(v, "idle_timeout")?,
            ("hard_timeout", Some(v)) => fm.hard_timeout = num(v, "hard_timeout")?,
            ("cookie", Some(v)) => {
                let (c, m) = split_mask(v);
                fm.cookie = num(c, "cookie")?;
                if let Some(m) = m {
                    fm.cookie_mask = num(m, "cookie mask")?;
                }
            }
            ("out_port", Some(v)) => fm.out_port = parse_port(v)?,
            ("out_group", Some(v)) => fm.out_group = num(v, "out_group")?,
            ("send_flow_rem", None) => fm.flags |= OFPFF_SEND_FLOW_REM,
            ("check_overlap", None) => fm.flags |= OFPFF_CHECK_OVERLAP,
            ("reset_counts", None) => fm.flags |= OFPFF_RESET_COUNTS,
            ("no_packet_counts", None) => fm.flags |= OFPFF_NO_PKT_COUNTS,
            ("no_byte_counts", None) => fm.flags |= OFPFF_NO_BYT_COUNTS,
            (k, None) => mb.protocol(k)?,
            (k, Some(v)) => mb.field(k, v)?,
        }
    }
    fm.r#match = mb.build()?;
    if let Some(a) = acts {
        let has_vlan = fm.r#match.get(Field::VlanVid).is_some_and(|f| f.value_u128() & 0x1000 != 0);
        fm.instructions = parse_instructions(a, Ctx { has_vlan })?;
    }
    Ok(fm)
}

/// Parses only a match (`ip,nw_dst=10.0.0.0/24`).
pub fn parse_match(s: &str) -> Result<Match> {
    let mut mb = MatchBuilder::default();
    for tok in split_top(s, &[',', ' ', '\t']) {
        match tok.split_once('=') {
            Some((k, v)) => mb.field(k.trim(), v.trim())?,
            None => mb.protocol(tok.trim())?,
        }
    }
    mb.build()
}

/// Position of the `actions=` keyword (it must come last).
fn find_actions(s: &str) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = s[i..].find("actions=") {
        let at = i + p;
        if at == 0 || matches!(s.as_bytes()[at - 1], b',' | b' ' | b'\t') {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

/// Splits at separators outside parentheses and brackets, dropping empties.
fn split_top<'a>(s: &'a str, seps: &[char]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            c if depth == 0 && seps.contains(&c) => {
                if !s[start..i].trim().is_empty() {
                    out.push(s[start..i].trim());
                }
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if !s[start..].trim().is_empty() {
        out.push(s[start..].trim());
    }
    out
}

fn split_mask(v: &str) -> (&str, Option<&str>) {
    match v.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (v, None),
    }
}

/// Parses a decimal or `0x` hexadecimal number into any integer type.
fn num<T: TryFrom<u128>>(s: &str, what: &'static str) -> Result<T> {
    let v = parse_u128(s).ok_or_else(|| Error::value(what, format!("{s:?} is not a number")))?;
    T::try_from(v).map_err(|_| Error::value(what, format!("{s} is out of range")))
}

fn parse_u128(s: &str) -> Option<u128> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u128::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

/// Parses an OpenFlow port: a number or a reserved name.
pub(crate) fn parse_port(s: &str) -> Result<u32> {
    Ok(match s.to_ascii_uppercase().as_str() {
        "IN_PORT" => OFPP_IN_PORT,
        "TABLE" => OFPP_TABLE,
        "NORMAL" => OFPP_NORMAL,
        "FLOOD" => OFPP_FLOOD,
        "ALL" => OFPP_ALL,
        "CONTROLLER" => OFPP_CONTROLLER,
        "LOCAL" => OFPP_LOCAL,
        "ANY" | "NONE" => OFPP_ANY,
        _ => {
            let p: u32 = num(s, "port")?;
            // OpenFlow 1.0 style 16-bit reserved ports map to 1.1+ ones, as in OVS.
            if (0xff00..=0xffff).contains(&p) { p + 0xffff_0000 } else { p }
        }
    })
}

fn parse_eth(s: &str) -> Result<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(Error::value("Ethernet address", s.to_string()));
    }
    let mut out = [0u8; 6];
    for (o, p) in out.iter_mut().zip(parts) {
        *o = u8::from_str_radix(p, 16).map_err(|_| Error::value("Ethernet address", s.to_string()))?;
    }
    Ok(out)
}

/// Value and optional mask of a field, as bytes of the field's width.
fn parse_value(field: Field, s: &str) -> Result<(Vec<u8>, Option<Vec<u8>>)> {
    let d = field.def();
    let len = d.len as usize;
    let (v, m) = split_mask(s);
    let bad = || Error::value(d.name, s.to_string());
    match d.fmt {
        Fmt::Ipv4 => {
            let a: Ipv4Addr = v.parse().map_err(|_| bad())?;
            let mask = match m {
                None => None,
                Some(m) if m.contains('.') => Some(m.parse::<Ipv4Addr>().map_err(|_| bad())?.octets().to_vec()),
                Some(m) => {
                    let n: u32 = m.parse().map_err(|_| bad())?;
                    if n > 32 {
                        return Err(bad());
                    }
                    Some(prefix_mask(n as usize, 4))
                }
            };
            Ok((a.octets().to_vec(), mask))
        }
        Fmt::Ipv6 => {
            let a: Ipv6Addr = v.parse().map_err(|_| bad())?;
            let mask = match m {
                None => None,
                Some(m) if m.contains(':') => Some(m.parse::<Ipv6Addr>().map_err(|_| bad())?.octets().to_vec()),
                Some(m) => {
                    let n: usize = m.parse().map_err(|_| bad())?;
                    if n > 128 {
                        return Err(bad());
                    }
                    Some(prefix_mask(n, 16))
                }
            };
            Ok((a.octets().to_vec(), mask))
        }
        Fmt::Eth => Ok((parse_eth(v)?.to_vec(), m.map(parse_eth).transpose()?.map(|m| m.to_vec()))),
        Fmt::Port => Ok((parse_port(v)?.to_be_bytes().to_vec(), None)),
        Fmt::Port16 => {
            let p = parse_port(v)?;
            Ok(((p as u16).to_be_bytes().to_vec(), None))
        }
        Fmt::CtState | Fmt::TcpFlags | Fmt::TunFlags if v.starts_with(['+', '-']) && m.is_none() => {
            let (val, mask) = parse_flags(d.fmt, v).ok_or_else(bad)?;
            Ok((u128_to_be(val, len), Some(u128_to_be(mask, len))))
        }
        Fmt::Frag => {
            let (val, mask) = match v {
                "no" => (0, 1),
                "yes" => (1, 1),
                "first" => (1, 3),
                "later" => (3, 3),
                "not_later" => (0, 2),
                _ => return Err(bad()),
            };
            Ok((vec![val], Some(vec![mask])))
        }
        _ => {
            let val = parse_u128(v).ok_or_else(bad)?;
            if len < 16 && val >> (len * 8) != 0 {
                return Err(bad());
            }
            let mask = m.map(|m| parse_u128(m).ok_or_else(bad).map(|m| u128_to_be(m, len))).transpose()?;
            Ok((u128_to_be(val, len), mask))
        }
    }
}

fn prefix_mask(n: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            let bits = n.saturating_sub(i * 8).min(8);
            if bits == 0 { 0 } else { 0xffu8 << (8 - bits) }
        })
        .collect()
}

pub(crate) const CT_STATE_FLAGS: &[(&str, u128)] = &[
    ("new", 0x01),
    ("est", 0x02),
    ("rel", 0x04),
    ("rpl", 0x08),
    ("inv", 0x10),
    ("trk", 0x20),
    ("snat", 0x40),
    ("dnat", 0x80),
];
pub(crate) const TCP_FLAGS: &[(&str, u128)] = &[
    ("fin", 0x001),
    ("syn", 0x002),
    ("rst", 0x004),
    ("psh", 0x008),
    ("ack", 0x010),
    ("urg", 0x020),
    ("ece", 0x040),
    ("cwr", 0x080),
    ("ns", 0x100),
];
pub(crate) const TUN_FLAGS: &[(&str, u128)] = &[("oam", 0x1)];

fn flag_table(fmt: Fmt) -> &'static [(&'static str, u128)] {
    match fmt {
        Fmt::CtState => CT_STATE_FLAGS,
        Fmt::TcpFlags => TCP_FLAGS,
        _ => TUN_FLAGS,
    }
}

/// `+trk-new` style flags.
fn parse_flags(fmt: Fmt, s: &str) -> Option<(u128, u128)> {
    let table = flag_table(fmt);
    let (mut v, mut m) = (0u128, 0u128);
    let mut rest = s;
    while !rest.is_empty() {
        let sign = rest.chars().next()?;
        if sign != '+' && sign != '-' {
            return None;
        }
        let body = &rest[1..];
        let end = body.find(['+', '-']).unwrap_or(body.len());
        let name = &body[..end];
        let (_, bit) = table.iter().find(|(n, _)| *n == name)?;
        m |= bit;
        if sign == '+' {
            v |= bit;
        }
        rest = &body[end..];
    }
    Some((v, m))
}

/// Collects fields keyed by `Field`, then emits them in OVS order.
#[derive(Default)]
struct MatchBuilder {
    fields: BTreeMap<Field, (Vec<u8>, Option<Vec<u8>>)>,
    /// `tp_src`/`tp_dst`/`icmp_*`/`nw_src` resolved once the protocol is known.
    deferred: Vec<(String, String)>,
}

impl MatchBuilder {
    fn set(&mut self, f: Field, v: Vec<u8>, m: Option<Vec<u8>>) {
        self.fields.insert(f, (v, m));
    }
    fn set_u(&mut self, f: Field, v: u128) {
        let len = f.def().len as usize;
        self.set(f, u128_to_be(v, len), None);
    }

    fn protocol(&mut self, k: &str) -> Result<()> {
        let (et, proto): (u16, Option<u8>) = match k {
            "ip" => (0x0800, None),
            "ipv6" => (0x86dd, None),
            "icmp" => (0x0800, Some(1)),
            "icmp6" => (0x86dd, Some(58)),
            "tcp" => (0x0800, Some(6)),
            "tcp6" => (0x86dd, Some(6)),
            "udp" => (0x0800, Some(17)),
            "udp6" => (0x86dd, Some(17)),
            "sctp" => (0x0800, Some(132)),
            "sctp6" => (0x86dd, Some(132)),
            "arp" => (0x0806, None),
            "rarp" => (0x8035, None),
            "mpls" => (0x8847, None),
            "mplsm" => (0x8848, None),
            _ => return Err(Error::UnknownField(k.to_string())),
        };
        self.set_u(Field::EthType, u128::from(et));
        if let Some(p) = proto {
            self.set_u(Field::IpProto, u128::from(p));
        }
        Ok(())
    }

    fn field(&mut self, k: &str, v: &str) -> Result<()> {
        match k {
            "tp_src" | "tp_dst" | "icmp_type" | "icmp_code" | "nw_src" | "nw_dst" | "nw_proto" | "ip_proto" => {
                self.deferred.push((k.to_string(), v.to_string()));
                return Ok(());
            }
            "dl_vlan" | "vlan_vid" => {
                let vid: u16 = num(v, "dl_vlan")?;
                if vid > 0xfff {
                    return Err(Error::value("dl_vlan", v.to_string()));
                }
                self.set_u(Field::VlanVid, u128::from(vid | 0x1000));
                return Ok(());
            }
            "dl_vlan_pcp" | "vlan_pcp" => {
                let pcp: u8 = num(v, "dl_vlan_pcp")?;
                if pcp > 7 {
                    return Err(Error::value("dl_vlan_pcp", v.to_string()));
                }
                self.set_u(Field::VlanPcp, u128::from(pcp));
                self.fields.entry(Field::VlanVid).or_insert((vec![0x10, 0], Some(vec![0x10, 0])));
                return Ok(());
            }
            "nw_tos" => {
                let tos: u8 = num(v, "nw_tos")?;
                if tos & 3 != 0 {
                    return Err(Error::value("nw_tos", "low 2 bits must be zero"));
                }
                self.set_u(Field::IpDscp, u128::from(tos >> 2));
                return Ok(());
            }
            _ => {}
        }
        if let Some(n) = k.strip_prefix("xreg").and_then(|n| n.parse::<usize>().ok()) {
            if n > 7 {
                return Err(Error::UnknownField(k.to_string()));
            }
            let (val, mask) = split_mask(v);
            let val: u64 = num(val, "xreg")?;
            let mask: u64 = mask.map(|m| num(m, "xreg mask")).transpose()?.unwrap_or(u64::MAX);
            let regs = [
                Field::Reg0,
                Field::Reg1,
                Field::Reg2,
                Field::Reg3,
                Field::Reg4,
                Field::Reg5,
                Field::Reg6,
                Field::Reg7,
                Field::Reg8,
                Field::Reg9,
                Field::Reg10,
                Field::Reg11,
                Field::Reg12,
                Field::Reg13,
                Field::Reg14,
                Field::Reg15,
            ];
            for (reg, shift) in [(regs[2 * n], 32), (regs[2 * n + 1], 0)] {
                let m = (mask >> shift) as u32;
                if m != 0 {
                    let vv = (val >> shift) as u32 & m;
                    let mm = (m != u32::MAX).then(|| m.to_be_bytes().to_vec());
                    self.set(reg, vv.to_be_bytes().to_vec(), mm);
                }
            }
            return Ok(());
        }
        let f = Field::by_name(k).ok_or_else(|| Error::UnknownField(k.to_string()))?;
        let f = if f == Field::InPort16 { Field::InPort } else { f };
        let (val, mask) = parse_value(f, v)?;
        if mask.is_some() && !f.def().maskable {
            return Err(Error::value(f.def().name, "field is not maskable"));
        }
        self.set(f, val, mask);
        Ok(())
    }

    fn build(mut self) -> Result<Match> {
        let et = self.fields.get(&Field::EthType).map(|(v, _)| be_to_u128(v));
        let deferred = std::mem::take(&mut self.deferred);
        // nw_proto first: tp_* depend on it.
        for (k, v) in deferred.iter().filter(|(k, _)| k == "nw_proto" || k == "ip_proto") {
            let f = if matches!(et, Some(0x0806) | Some(0x8035)) { Field::ArpOp } else { Field::IpProto };
            let _ = k;
            let (val, m) = parse_value(f, v)?;
            self.set(f, val, m);
        }
        let proto = self.fields.get(&Field::IpProto).map(|(v, _)| be_to_u128(v));
        for (k, v) in deferred.iter().filter(|(k, _)| k != "nw_proto" && k != "ip_proto") {
            let is6 = et == Some(0x86dd);
            let f = match (k.as_str(), proto) {
                ("nw_src", _) if matches!(et, Some(0x0806) | Some(0x8035)) => Field::ArpSpa,
                ("nw_dst", _) if matches!(et, Some(0x0806) | Some(0x8035)) => Field::ArpTpa,
                ("nw_src", _) => Field::Ipv4Src,
                ("nw_dst", _) => Field::Ipv4Dst,
                ("tp_src", Some(17)) => Field::UdpSrc,
                ("tp_dst", Some(17)) => Field::UdpDst,
                ("tp_src", Some(132)) => Field::SctpSrc,
                ("tp_dst", Some(132)) => Field::SctpDst,
                ("tp_src", _) => Field::TcpSrc,
                ("tp_dst", _) => Field::TcpDst,
                ("icmp_type", _) if is6 => Field::Icmpv6Type,
                ("icmp_code", _) if is6 => Field::Icmpv6Code,
                ("icmp_type", _) => Field::Icmpv4Type,
                _ => Field::Icmpv4Code,
            };
            let (val, m) = parse_value(f, v)?;
            self.set(f, val, m);
        }
        let mut m = Match::default();
        for (f, (v, mask)) in &self.fields {
            match mask {
                Some(mask) if mask.iter().all(|&b| b == 0) => {}
                Some(mask) => m.push(OxmField::masked(*f, v, mask)),
                None => m.push(OxmField::exact(*f, v)),
            }
        }
        let m = m.canonical();
        m.check_prerequisites()?;
        Ok(m)
    }
}

/// Parses the text after `actions=` into instructions, in the order OVS
/// requires (meter, apply, clear, write, write_metadata, goto_table).
fn parse_instructions(s: &str, ctx: Ctx) -> Result<Vec<Instruction>> {
    let mut meter = None;
    let mut apply = Vec::new();
    let mut clear = false;
    let mut write = None;
    let mut metadata = None;
    let mut goto = None;
    for tok in split_top(s, &[',']) {
        let (name, arg) = split_action(tok);
        match name {
            "meter" => meter = Some(num(arg.unwrap_or(""), "meter")?),
            "clear_actions" => clear = true,
            "write_actions" => write = Some(parse_actions(arg.unwrap_or(""))?),
            "write_metadata" => {
                let (v, m) = split_mask(arg.unwrap_or(""));
                let m = m.map(|m| num(m, "metadata mask")).transpose()?.unwrap_or(u64::MAX);
                metadata = Some((num(v, "metadata")?, m));
            }
            "goto_table" => goto = Some(num(arg.unwrap_or(""), "goto_table")?),
            _ => apply.extend(parse_action_ctx(tok, ctx)?),
        }
    }
    let mut out = Vec::new();
    if let Some(m) = meter {
        out.push(Instruction::Meter(m));
    }
    if !apply.is_empty() {
        out.push(Instruction::ApplyActions(apply));
    }
    if clear {
        out.push(Instruction::ClearActions);
    }
    if let Some(w) = write {
        out.push(Instruction::WriteActions(w));
    }
    if let Some((metadata, mask)) = metadata {
        out.push(Instruction::WriteMetadata { metadata, mask });
    }
    if let Some(t) = goto {
        out.push(Instruction::GotoTable(t));
    }
    Ok(out)
}

/// `name:arg`, `name(arg)` or `name`.
fn split_action(tok: &str) -> (&str, Option<&str>) {
    let tok = tok.trim();
    let colon = tok.find(':');
    let paren = tok.find('(');
    match (colon, paren) {
        (Some(c), Some(p)) if c < p => (&tok[..c], Some(&tok[c + 1..])),
        (_, Some(p)) if tok.ends_with(')') => (&tok[..p], Some(&tok[p + 1..tok.len() - 1])),
        (Some(c), _) => (&tok[..c], Some(&tok[c + 1..])),
        _ => (tok, None),
    }
}

/// Parses a comma-separated action list.
pub fn parse_actions(s: &str) -> Result<Vec<Action>> {
    let mut out = Vec::new();
    for tok in split_top(s, &[',']) {
        out.extend(parse_action(tok)?);
    }
    Ok(out)
}

/// A subfield: `NXM_NX_REG0[0..15]`, `reg0[3]`, `eth_src[]`, `reg0`.
pub(crate) fn parse_subfield(s: &str) -> Result<Subfield> {
    let s = s.trim();
    let (name, range) = match s.find('[') {
        Some(i) if s.ends_with(']') => (&s[..i], Some(&s[i + 1..s.len() - 1])),
        _ => (s, None),
    };
    let field = Field::by_name(name).ok_or_else(|| Error::UnknownField(name.to_string()))?;
    let width = field.width_bits();
    let (ofs, n_bits) = match range {
        None | Some("") => (0, width),
        Some(r) => match r.split_once("..") {
            Some((a, b)) => {
                let a: u16 = num(a, "subfield start")?;
                let b: u16 = num(b, "subfield end")?;
                if b < a {
                    return Err(Error::value("subfield", s.to_string()));
                }
                if b - a >= width {
                    return Err(Error::value("subfield", s.to_string()));
                }
                (a, b - a + 1)
            }
            None => (num(r, "subfield bit")?, 1),
        },
    };
    if u32::from(ofs) + u32::from(n_bits) > u32::from(width) {
        return Err(Error::value("subfield", format!("{s} exceeds the {width}-bit field")));
    }
    Ok(Subfield { field: NxmHeader::of(field), ofs, n_bits })
}

fn set_field_action(field: Field, v: &str) -> Result<Action> {
    let (val, mask) = parse_value(field, v)?;
    let _ = &val;
    Ok(match mask {
        Some(m) if !m.iter().all(|&b| b == 0xff) => {
            // OpenFlow 1.3 has no masked set_field: OVS writes a contiguous
            // mask as NXAST_REG_LOAD on a subfield, any other as REG_LOAD2.
            let mu = be_to_u128(&m);
            let vu = be_to_u128(&val) & mu;
            if mu != 0
                && (mu >> mu.trailing_zeros()).count_ones() == (mu >> mu.trailing_zeros()).trailing_ones()
                && mu.count_ones() <= 64
            {
                let ofs = mu.trailing_zeros() as u16;
                let n_bits = mu.count_ones() as u16;
                Action::RegLoad {
                    dst: Subfield { field: NxmHeader::of(field), ofs, n_bits },
                    value: (vu >> ofs) as u64,
                }
            } else {
                Action::RegLoad2(OxmField::masked(field, &val, &m))
            }
        }
        _ => Action::SetField(OxmField::exact(field, &val)),
    })
}

fn controller_reason(s: &str) -> Result<u8> {
    Ok(match s {
        "no_match" => 0,
        "action" => 1,
        "invalid_ttl" => 2,
        "action_set" => 3,
        "group" => 4,
        "packet_out" => 5,
        _ => return Err(Error::value("controller reason", s.to_string())),
    })
}

/// What an action's parse needs to know about the flow's match.
#[derive(Debug, Clone, Copy, Default)]
struct Ctx {
    has_vlan: bool,
}

fn parse_action(tok: &str) -> Result<Vec<Action>> {
    parse_action_ctx(tok, Ctx::default())
}

fn parse_action_ctx(tok: &str, ctx: Ctx) -> Result<Vec<Action>> {
    let (name, arg) = split_action(tok);
    let arg_s = arg.unwrap_or("");
    let one = |a: Action| Ok(vec![a]);
    match name.to_ascii_lowercase().as_str() {
        "drop" => Ok(vec![]),
        "output" => {
            if arg_s.contains('[') {
                return one(Action::OutputReg { src: parse_subfield(arg_s)?, max_len: 0xffff });
            }
            one(Action::output(parse_port(arg_s)?))
        }
        "in_port" | "normal" | "flood" | "all" | "local" | "table" if arg.is_none() => {
            one(Action::output(parse_port(name)?))
        }
        "controller" => {
            let mut max_len = OFPCML_NO_BUFFER;
            let mut reason = 1u8;
            let mut id = 0u16;
            if tok.contains('(') {
                for kv in split_top(arg_s, &[',']) {
                    match kv.split_once('=') {
                        Some(("max_len", v)) => max_len = num(v, "max_len")?,
                        Some(("reason", v)) => reason = controller_reason(v)?,
                        Some(("id", v)) => id = num(v, "controller id")?,
                        _ => return Err(Error::syntax(format!("controller option {kv:?}"))),
                    }
                }
            } else if let Some(a) = arg {
                max_len = num(a, "max_len")?;
            }
            if reason == 1 && id == 0 {
                one(Action::Output { port: OFPP_CONTROLLER, max_len })
            } else {
                one(Action::Controller { max_len, controller_id: id, reason })
            }
        }
        "group" => one(Action::Group(num(arg_s, "group")?)),
        "set_queue" => one(Action::SetQueue(num(arg_s, "queue")?)),
        "pop_queue" => one(Action::PopQueue),
        "push_vlan" => one(Action::PushVlan(num(arg_s, "ethertype")?)),
        "pop_vlan" | "strip_vlan" => one(Action::PopVlan),
        "push_mpls" => one(Action::PushMpls(num(arg_s, "ethertype")?)),
        "pop_mpls" => one(Action::PopMpls(num(arg_s, "ethertype")?)),
        "push_pbb" => one(Action::PushPbb(num(arg_s, "ethertype")?)),
        "pop_pbb" => one(Action::PopPbb),
        "set_mpls_ttl" => one(Action::SetMplsTtl(num(arg_s, "ttl")?)),
        "dec_mpls_ttl" => one(Action::DecMplsTtl),
        "set_nw_ttl" => one(Action::SetNwTtl(num(arg_s, "ttl")?)),
        "copy_ttl_out" => one(Action::CopyTtlOut),
        "copy_ttl_in" => one(Action::CopyTtlIn),
        "dec_ttl" => {
            if arg.is_some() && !arg_s.is_empty() {
                let ids = split_top(arg_s, &[',', ' '])
                    .into_iter()
                    .map(|x| num(x, "controller id"))
                    .collect::<Result<Vec<u16>>>()?;
                one(Action::DecTtlCntIds(ids))
            } else {
                one(Action::DecNwTtl)
            }
        }
        "mod_dl_src" => one(set_field_action(Field::EthSrc, arg_s)?),
        "mod_dl_dst" => one(set_field_action(Field::EthDst, arg_s)?),
        "mod_nw_src" => one(set_field_action(Field::Ipv4Src, arg_s)?),
        "mod_nw_dst" => one(set_field_action(Field::Ipv4Dst, arg_s)?),
        "mod_vlan_vid" => {
            // OVS pushes a tag first when the match does not require one,
            // and sets the VID with the present bit.
            let vid: u16 = num(arg_s, "vlan vid")?;
            if vid > 0xfff {
                return Err(Error::value("mod_vlan_vid", arg_s.to_string()));
            }
            let set = Action::SetField(OxmField::exact(Field::VlanVid, &(vid | 0x1000).to_be_bytes()));
            if ctx.has_vlan { one(set) } else { Ok(vec![Action::PushVlan(0x8100), set]) }
        }
        "mod_vlan_pcp" => one(set_field_action(Field::VlanPcp, arg_s)?),
        "set_field" => {
            let (v, f) =
                arg_s.split_once("->").ok_or_else(|| Error::syntax(format!("set_field needs VALUE->FIELD: {tok}")))?;
            let field = Field::by_name(f.trim()).ok_or_else(|| Error::UnknownField(f.to_string()))?;
            one(set_field_action(field, v.trim())?)
        }
        "load" => {
            let (v, d) =
                arg_s.split_once("->").ok_or_else(|| Error::syntax(format!("load needs VALUE->DST: {tok}")))?;
            let dst = parse_subfield(d)?;
            let value: u64 = num(v, "load value")?;
            if dst.n_bits < 64 && value >> dst.n_bits != 0 {
                return Err(Error::value("load", format!("{v} does not fit in {} bits", dst.n_bits)));
            }
            one(Action::RegLoad { dst, value })
        }
        "move" => {
            let (a, b) = arg_s.split_once("->").ok_or_else(|| Error::syntax(format!("move needs SRC->DST: {tok}")))?;
            let src = parse_subfield(a)?;
            let dst = parse_subfield(b)?;
            if src.n_bits != dst.n_bits {
                return Err(Error::value("move", "source and destination widths differ"));
            }
            one(Action::RegMove { src, dst })
        }
        "resubmit" => {
            if tok.contains('(') {
                let parts: Vec<&str> = arg_s.split(',').map(str::trim).collect();
                let port = match parts.first() {
                    Some(p) if !p.is_empty() => parse_port(p)? as u16,
                    _ => OFPP_IN_PORT as u16,
                };
                let table = match parts.get(1) {
                    Some(t) if !t.is_empty() => num(t, "table")?,
                    _ => 0xff,
                };
                one(Action::ResubmitTable { in_port: port, table })
            } else {
                one(Action::ResubmitTable { in_port: parse_port(arg_s)? as u16, table: 0xff })
            }
        }
        // In OpenFlow 1.3 OVS writes both as a set_field of tun_id.
        "set_tunnel" | "set_tunnel64" => {
            let v: u64 = num(arg_s, "tunnel id")?;
            one(Action::SetField(OxmField::exact(Field::TunId, &v.to_be_bytes())))
        }
        "note" => {
            let bytes = arg_s
                .split(['.', ' '])
                .filter(|x| !x.is_empty())
                .map(|x| u8::from_str_radix(x, 16).map_err(|_| Error::value("note", arg_s.to_string())))
                .collect::<Result<Vec<u8>>>()?;
            // Pad as OVS does: the action is at least 16 bytes, a multiple of 8.
            let mut data = bytes;
            let total = crate::openflow::buf::pad8(10 + data.len()).max(16);
            data.resize(total - 10, 0);
            one(Action::Note(data))
        }
        "exit" => one(Action::Exit),
        "ct_clear" => one(Action::CtClear),
        "fin_timeout" => {
            let mut idle = 0;
            let mut hard = 0;
            for kv in split_top(arg_s, &[',']) {
                match kv.split_once('=') {
                    Some(("idle_timeout", v)) => idle = num(v, "idle_timeout")?,
                    Some(("hard_timeout", v)) => hard = num(v, "hard_timeout")?,
                    _ => return Err(Error::syntax(format!("fin_timeout option {kv:?}"))),
                }
            }
            one(Action::FinTimeout { idle_timeout: idle, hard_timeout: hard })
        }
        "conjunction" => {
            let (id, rest) =
                arg_s.split_once(',').ok_or_else(|| Error::syntax(format!("conjunction(ID,K/N): {tok}")))?;
            let (k, n) = rest.split_once('/').ok_or_else(|| Error::syntax(format!("conjunction(ID,K/N): {tok}")))?;
            let k: u8 = num(k, "clause")?;
            let n: u8 = num(n, "n_clauses")?;
            if k == 0 || k > n || !(2..=64).contains(&n) {
                return Err(Error::value("conjunction", arg_s.to_string()));
            }
            one(Action::Conjunction { id: num(id, "conjunction id")?, clause: k - 1, n_clauses: n })
        }
        "ct" => one(Action::Ct(parse_ct(arg_s)?)),
        "learn" => one(Action::Learn(parse_learn(arg_s)?)),
        _ => {
            if let Ok(p) = parse_port(name) {
                if arg.is_none() {
                    return one(Action::output(p));
                }
            }
            Err(Error::UnknownAction(tok.to_string()))
        }
    }
}

fn parse_ct(s: &str) -> Result<Ct> {
    let mut ct = Ct { flags: 0, zone_src: None, zone: 0, recirc_table: NX_CT_RECIRC_NONE, alg: 0, actions: Vec::new() };
    for kv in split_top(s, &[',']) {
        let (k, v) = split_action(kv);
        let (k, v) = match kv.split_once('=') {
            Some((a, b)) if !a.contains('(') => (a, Some(b)),
            _ => (k, v),
        };
        match (k, v) {
            ("commit", None) => ct.flags |= NX_CT_F_COMMIT,
            ("force", None) => ct.flags |= NX_CT_F_FORCE,
            ("table", Some(t)) => ct.recirc_table = num(t, "ct table")?,
            ("zone", Some(z)) => {
                if let Ok(n) = num::<u16>(z, "zone") {
                    ct.zone = n;
                } else {
                    let sf = parse_subfield(z)?;
                    ct.zone = sf.ofs_nbits();
                    ct.zone_src = Some(sf.field);
                }
            }
            ("alg", Some(a)) => {
                ct.alg = match a {
                    "ftp" => 21,
                    "tftp" => 69,
                    _ => num(a, "alg")?,
                }
            }
            ("exec", Some(a)) => ct.actions.extend(parse_actions(a)?),
            ("nat", v) => ct.actions.push(Action::Nat(parse_nat(v.unwrap_or(""))?)),
            _ => return Err(Error::syntax(format!("ct option {kv:?}"))),
        }
    }
    Ok(ct)
}

fn parse_nat(s: &str) -> Result<Nat> {
    let mut n = Nat::default();
    for kv in split_top(s, &[',']) {
        match kv.split_once('=') {
            Some((dir @ ("src" | "dst"), range)) => {
                n.flags |= if dir == "src" { NX_NAT_F_SRC } else { NX_NAT_F_DST };
                parse_nat_range(&mut n, range)?;
            }
            None if kv == "persistent" => n.flags |= NX_NAT_F_PERSISTENT,
            None if kv == "hash" => n.flags |= NX_NAT_F_PROTO_HASH,
            None if kv == "random" => n.flags |= NX_NAT_F_PROTO_RANDOM,
            _ => return Err(Error::syntax(format!("nat option {kv:?}"))),
        }
    }
    Ok(n)
}

fn parse_nat_range(n: &mut Nat, s: &str) -> Result<()> {
    let bad = || Error::value("nat range", s.to_string());
    // IPv6 ranges are bracketed: [a]-[b]:p-q.
    let (addrs, ports) = if s.starts_with('[') {
        let end = s.rfind(']').ok_or_else(bad)?;
        (&s[..=end], s[end + 1..].strip_prefix(':'))
    } else {
        match s.split_once(':') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        }
    };
    let (lo, hi) = match addrs.split_once("]-[") {
        Some((a, b)) => (a, Some(b)),
        None if addrs.starts_with('[') => (addrs, None),
        None => match addrs.split_once('-') {
            Some((a, b)) => (a, Some(b)),
            None => (addrs, None),
        },
    };
    let strip = |x: &str| x.trim_matches(['[', ']']).to_string();
    if addrs.starts_with('[') {
        n.ipv6_min = Some(strip(lo).parse().map_err(|_| bad())?);
        n.ipv6_max = hi.map(|h| strip(h).parse()).transpose().map_err(|_| bad())?;
    } else {
        n.ipv4_min = Some(lo.parse().map_err(|_| bad())?);
        n.ipv4_max = hi.map(str::parse).transpose().map_err(|_| bad())?;
    }
    if let Some(p) = ports {
        let (a, b) = match p.split_once('-') {
            Some((a, b)) => (a, Some(b)),
            None => (p, None),
        };
        n.proto_min = Some(num(a, "nat port")?);
        n.proto_max = b.map(|b| num(b, "nat port")).transpose()?;
    }
    Ok(())
}

fn parse_learn(s: &str) -> Result<Learn> {
    let mut l = Learn {
        idle_timeout: 0,
        hard_timeout: 0,
        priority: crate::openflow::message::OFP_DEFAULT_PRIORITY,
        cookie: 0,
        flags: 0,
        table_id: 1,
        fin_idle_timeout: 0,
        fin_hard_timeout: 0,
        specs: Vec::new(),
    };
    for kv in split_top(s, &[',']) {
        if let Some(rest) = kv.strip_prefix("load:") {
            let (src, dst) = rest.split_once("->").ok_or_else(|| Error::syntax(format!("learn load: {kv}")))?;
            let dst = parse_subfield(dst)?;
            let src = if src.contains('[') || Field::by_name(src).is_some() {
                LearnSrc::Field(parse_subfield(src)?)
            } else {
                LearnSrc::Immediate(imm_bytes(num(src, "learn value")?, dst.n_bits))
            };
            l.specs.push(LearnSpec { n_bits: dst.n_bits, src, dst: LearnDst::Load(dst) });
            continue;
        }
        if let Some(rest) = kv.strip_prefix("output:") {
            let src = parse_subfield(rest)?;
            l.specs.push(LearnSpec { n_bits: src.n_bits, src: LearnSrc::Field(src), dst: LearnDst::Output });
            continue;
        }
        match kv.split_once('=') {
            Some(("table", v)) => l.table_id = num(v, "table")?,
            Some(("idle_timeout", v)) => l.idle_timeout = num(v, "idle_timeout")?,
            Some(("hard_timeout", v)) => l.hard_timeout = num(v, "hard_timeout")?,
            Some(("fin_idle_timeout", v)) => l.fin_idle_timeout = num(v, "fin_idle_timeout")?,
            Some(("fin_hard_timeout", v)) => l.fin_hard_timeout = num(v, "fin_hard_timeout")?,
            Some(("priority", v)) => l.priority = num(v, "priority")?,
            Some(("cookie", v)) => l.cookie = num(v, "cookie")?,
            Some((dst, src)) => {
                let dst = parse_subfield(dst)?;
                let src = if src.contains('[') || Field::by_name(src).is_some() {
                    LearnSrc::Field(parse_subfield(src)?)
                } else {
                    LearnSrc::Immediate(imm_bytes(num(src, "learn value")?, dst.n_bits))
                };
                l.specs.push(LearnSpec { n_bits: dst.n_bits, src, dst: LearnDst::Match(dst) });
            }
            None if kv == "send_flow_rem" => l.flags |= 1,
            None if kv == "delete_learned" => l.flags |= 2,
            None => {
                // `FIELD[...]`: match the packet's own value.
                let sf = parse_subfield(kv)?;
                l.specs.push(LearnSpec { n_bits: sf.n_bits, src: LearnSrc::Field(sf), dst: LearnDst::Match(sf) });
            }
        }
    }
    Ok(l)
}

fn imm_bytes(v: u128, n_bits: u16) -> Vec<u8> {
    let n = usize::from(n_bits).div_ceil(16) * 2;
    u128_to_be(v, n.min(16))
        .into_iter()
        .rev()
        .chain(std::iter::repeat(0))
        .take(n)
        .collect::<Vec<u8>>()
        .into_iter()
        .rev()
        .collect()
}
