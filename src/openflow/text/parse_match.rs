//! Match text to values: field names, values and masks, protocol
//! shorthands, and the fields whose meaning depends on the protocol.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::lex::{num, parse_u128, split_mask};
use super::names::{CT_STATE_FLAGS, PROTOCOLS, REGS, TCP_FLAGS, TUN_FLAGS, XREGS, parse_port, reg_index};
use crate::openflow::action::{NxmHeader, Subfield};
use crate::openflow::error::{Error, Result};
use crate::openflow::oxm::{Field, Fmt, Match, OxmField, be_to_u128, u128_to_be};

pub(super) fn parse_eth(s: &str) -> Result<[u8; 6]> {
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
pub(super) fn parse_value(field: Field, s: &str) -> Result<(Vec<u8>, Option<Vec<u8>>)> {
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
pub(super) struct MatchBuilder {
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

    pub(super) fn protocol(&mut self, k: &str) -> Result<()> {
        let (_, et, proto) =
            PROTOCOLS.iter().find(|(n, _, _)| *n == k).ok_or_else(|| Error::UnknownField(k.to_string()))?;
        let (et, proto) = (*et, *proto);
        self.set_u(Field::EthType, u128::from(et));
        if let Some(p) = proto {
            self.set_u(Field::IpProto, u128::from(p));
        }
        Ok(())
    }

    pub(super) fn field(&mut self, k: &str, v: &str) -> Result<()> {
        match k {
            "tp_src" | "tp_dst" | "icmp_type" | "icmp_code" | "nw_src" | "nw_dst" | "nw_proto" | "ip_proto" => {
                self.deferred.push((k.to_string(), v.to_string()));
                return Ok(());
            }
            // `vlan_vid` is the OXM value itself (0x1000 is the present bit); `dl_vlan` is the VID of a tag.
            "dl_vlan" => {
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
        // `xreg<n>` in a match is the pair reg<2n> (high half), reg<2n+1>, as OVS writes it.
        if let Some(n) = reg_index(k, "xreg", XREGS.len()) {
            let (val, mask) = split_mask(v);
            let val: u64 = num(val, "xreg")?;
            let mask: u64 = mask.map(|m| num(m, "xreg mask")).transpose()?.unwrap_or(u64::MAX);
            for (reg, shift) in [(REGS[2 * n], 32), (REGS[2 * n + 1], 0)] {
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

    pub(super) fn build(mut self) -> Result<Match> {
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
