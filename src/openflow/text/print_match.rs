//! Matches to text: the field list of a flow as `ovs-ofctl dump-flows`
//! prints it, and field values as `set_field` writes them.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::names::{CT_STATE_FLAGS, PROTOCOLS, REGS, TCP_FLAGS, TUN_FLAGS, XREGS, port_name};
use crate::openflow::message::OFP_DEFAULT_PRIORITY;
use crate::openflow::oxm::{Field, Fmt, Match, OxmField, be_to_u128};

/// Value and mask of a field in the match (mask all ones when exact).
fn get(m: &Match, f: Field) -> Option<(u128, u128)> {
    m.get(f).map(|x| {
        let full = if x.value().len() >= 16 { u128::MAX } else { (1u128 << (x.value().len() * 8)) - 1 };
        (x.value_u128(), x.mask_u128().unwrap_or(full))
    })
}

pub(super) fn hex0(v: u128) -> String {
    if v == 0 { "0".into() } else { format!("{v:#x}") }
}

fn put_u32m(s: &mut String, name: &str, m: &Match, f: Field) {
    if let Some((v, k)) = get(m, f) {
        let _ = write!(s, "{name}={}", hex0(v));
        if k != u128::from(u32::MAX) && k != u128::from(u64::MAX) {
            let _ = write!(s, "/{}", hex0(k));
        }
        s.push(',');
    }
}

fn put_be16m(s: &mut String, name: &str, m: &Match, f: Field) {
    if let Some((v, k)) = get(m, f) {
        if k == 0xffff || k == 0xff {
            let _ = write!(s, "{name}={v},");
        } else {
            let _ = write!(s, "{name}={v:#x}/{k:#x},");
        }
    }
}

fn fmt_ipv4_masked(v: u128, k: u128) -> String {
    let a = Ipv4Addr::from(v as u32);
    let k = k as u32;
    if k == u32::MAX {
        a.to_string()
    } else if k.leading_ones() + k.trailing_zeros() == 32 {
        format!("{a}/{}", k.leading_ones())
    } else {
        format!("{a}/{}", Ipv4Addr::from(k))
    }
}

fn fmt_ipv6_masked(v: u128, k: u128) -> String {
    let a = Ipv6Addr::from(v);
    if k == u128::MAX {
        a.to_string()
    } else if k.leading_ones() + k.trailing_zeros() == 128 {
        format!("{a}/{}", k.leading_ones())
    } else {
        format!("{a}/{}", Ipv6Addr::from(k))
    }
}

pub(super) fn fmt_eth(v: u128) -> String {
    let b = (v as u64).to_be_bytes();
    format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[2], b[3], b[4], b[5], b[6], b[7])
}

fn put_ip(s: &mut String, name: &str, m: &Match, f: Field) {
    if let Some((v, k)) = get(m, f) {
        let t = if f.def().fmt == Fmt::Ipv6 { fmt_ipv6_masked(v, k) } else { fmt_ipv4_masked(v, k) };
        let _ = write!(s, "{name}={t},");
    }
}

fn put_eth(s: &mut String, name: &str, m: &Match, f: Field) {
    if let Some((v, k)) = get(m, f) {
        let _ = write!(s, "{name}={}", fmt_eth(v));
        if k != 0xffff_ffff_ffff {
            let _ = write!(s, "/{}", fmt_eth(k));
        }
        s.push(',');
    }
}

fn flags_masked(table: &[(&str, u128)], v: u128, k: u128, max: u128) -> String {
    if k & max == max {
        let names: Vec<&str> = table.iter().filter(|(_, b)| v & b != 0).map(|(n, _)| *n).collect();
        return if names.is_empty() { "0".into() } else { names.join("|") };
    }
    let mut out = String::new();
    for (n, b) in table {
        if k & b != 0 {
            out.push(if v & b != 0 { '+' } else { '-' });
            out.push_str(n);
        }
    }
    out
}

/// A match in `ovs-ofctl dump-flows` words (without priority).
pub fn format_match(m: &Match) -> String {
    let mut s = String::new();
    format_match_into(&mut s, m, None);
    s
}

pub(super) fn format_match_into(s: &mut String, m: &Match, priority: Option<u16>) {
    let start = s.len();
    if let Some(p) = priority.filter(|&p| p != OFP_DEFAULT_PRIORITY) {
        let _ = write!(s, "priority={p},");
    }
    put_u32m(s, "pkt_mark", m, Field::PktMark);
    if let Some((v, _)) = get(m, Field::ConjId) {
        let _ = write!(s, "conj_id={v},");
    }
    if let Some((v, _)) = get(m, Field::ActsetOutput) {
        let _ = write!(s, "actset_output={},", port_name(v as u32));
    }
    if let Some((v, k)) = get(m, Field::CtState) {
        let _ = write!(s, "ct_state={},", flags_masked(CT_STATE_FLAGS, v, k, 0xff));
    }
    if let Some((v, k)) = get(m, Field::CtZone) {
        if k == 0xffff {
            let _ = write!(s, "ct_zone={v},");
        } else {
            let _ = write!(s, "ct_zone={v:#x}/{k:#x},");
        }
    }
    put_u32m(s, "ct_mark", m, Field::CtMark);
    if let Some((v, k)) = get(m, Field::CtLabel) {
        let _ = write!(s, "ct_label={v:#x}");
        if k != u128::MAX {
            let _ = write!(s, "/{k:#x}");
        }
        s.push(',');
    }
    put_ip(s, "ct_nw_src", m, Field::CtNwSrc);
    put_ip(s, "ct_ipv6_src", m, Field::CtIpv6Src);
    put_ip(s, "ct_nw_dst", m, Field::CtNwDst);
    put_ip(s, "ct_ipv6_dst", m, Field::CtIpv6Dst);
    if let Some((v, _)) = get(m, Field::CtNwProto) {
        let _ = write!(s, "ct_nw_proto={v},");
        put_be16m(s, "ct_tp_src", m, Field::CtTpSrc);
        put_be16m(s, "ct_tp_dst", m, Field::CtTpDst);
    }
    let dl_type = get(m, Field::EthType).map(|(v, _)| v);
    let proto = get(m, Field::IpProto).map(|(v, _)| v);
    let mut skip_type = false;
    let mut skip_proto = false;
    if let Some(t) = dl_type {
        skip_type = true;
        // An L4 shorthand (`tcp`) names both fields, an L3 one (`ip`) only the type.
        let l4 = PROTOCOLS.iter().find(|(_, et, p)| u128::from(*et) == t && p.is_some() && p.map(u128::from) == proto);
        let l3 = PROTOCOLS.iter().find(|(_, et, p)| u128::from(*et) == t && p.is_none());
        if let Some((n, _, _)) = l4 {
            skip_proto = true;
            let _ = write!(s, "{n},");
        } else if let Some((n, _, _)) = l3 {
            let _ = write!(s, "{n},");
        } else {
            skip_type = false;
        }
    }
    for (i, r) in REGS.iter().enumerate() {
        put_u32m(s, &format!("reg{i}"), m, *r);
    }
    for (i, r) in XREGS.iter().enumerate() {
        put_u32m(s, &format!("xreg{i}"), m, *r);
    }
    put_u32m(s, "tun_id", m, Field::TunId);
    put_ip(s, "tun_src", m, Field::TunSrc);
    put_ip(s, "tun_dst", m, Field::TunDst);
    put_ip(s, "tun_ipv6_src", m, Field::TunIpv6Src);
    put_ip(s, "tun_ipv6_dst", m, Field::TunIpv6Dst);
    if let Some((v, k)) = get(m, Field::TunFlags) {
        let _ = write!(s, "tun_flags={},", flags_masked(TUN_FLAGS, v, k, 0xffff));
    }
    put_u32m(s, "metadata", m, Field::Metadata);
    if let Some((v, _)) = get(m, Field::InPort) {
        let _ = write!(s, "in_port={},", port_name(v as u32));
    }
    if let Some((v, _)) = get(m, Field::InPhyPort) {
        let _ = write!(s, "in_phy_port={},", port_name(v as u32));
    }
    // VLAN: OVS folds vlan_vid/vlan_pcp into the TCI and prints dl_vlan / dl_vlan_pcp.
    if let Some((vid, vmask)) = get(m, Field::VlanVid) {
        let vmask = if vmask == 0xffff { 0x1fff } else { vmask };
        let pcp = get(m, Field::VlanPcp);
        if vmask == 0x1fff && vid & 0x1000 != 0 {
            let _ = write!(s, "dl_vlan={},", vid & 0xfff);
            if let Some((p, _)) = pcp {
                let _ = write!(s, "dl_vlan_pcp={p},");
            }
        } else if vmask == 0x1000 && vid == 0x1000 && pcp.is_some() {
            if let Some((p, _)) = pcp {
                let _ = write!(s, "dl_vlan_pcp={p},");
            }
        } else if vmask == 0x1fff && vid == 0 {
            s.push_str("vlan_tci=0x0000,");
        } else {
            let tci = vid & 0x1fff | pcp.map_or(0, |(p, _)| p << 13);
            let tmask = vmask & 0x1fff | if pcp.is_some() { 0xe000 } else { 0 };
            let _ = write!(s, "vlan_tci={tci:#06x}/{tmask:#06x},");
        }
    }
    if let Some((v, k)) = get(m, Field::VlanTci) {
        // As OVS's format_vlan_tci: a present tag with whole VID and/or PCP
        // masks reads as dl_vlan / dl_vlan_pcp.
        let (vid_mask, pcp_mask) = (k & 0x0fff, k & 0xe000);
        if v & k & 0x1000 != 0
            && (vid_mask == 0 || vid_mask == 0x0fff)
            && (pcp_mask == 0 || pcp_mask == 0xe000)
            && (vid_mask | pcp_mask) != 0
        {
            if vid_mask != 0 {
                let _ = write!(s, "dl_vlan={},", v & 0xfff);
            }
            if pcp_mask != 0 {
                let _ = write!(s, "dl_vlan_pcp={},", v >> 13);
            }
        } else if k == 0xffff {
            let _ = write!(s, "vlan_tci={v:#06x},");
        } else {
            let _ = write!(s, "vlan_tci={v:#06x}/{k:#06x},");
        }
    }
    put_eth(s, "dl_src", m, Field::EthSrc);
    put_eth(s, "dl_dst", m, Field::EthDst);
    if !skip_type {
        if let Some(t) = dl_type {
            let _ = write!(s, "dl_type={t:#06x},");
        }
    }
    match dl_type {
        Some(0x86dd) => {
            put_ip(s, "ipv6_src", m, Field::Ipv6Src);
            put_ip(s, "ipv6_dst", m, Field::Ipv6Dst);
            if let Some((v, k)) = get(m, Field::Ipv6Label) {
                if k == 0xffff_ffff {
                    let _ = write!(s, "ipv6_label={v:#07x},");
                } else {
                    let _ = write!(s, "ipv6_label={v:#07x}/{k:#07x},");
                }
            }
        }
        Some(0x0806) | Some(0x8035) => {
            put_ip(s, "arp_spa", m, Field::ArpSpa);
            put_ip(s, "arp_tpa", m, Field::ArpTpa);
        }
        _ => {
            put_ip(s, "nw_src", m, Field::Ipv4Src);
            put_ip(s, "nw_dst", m, Field::Ipv4Dst);
        }
    }
    if !skip_proto {
        if let Some(p) = proto {
            let _ = write!(s, "nw_proto={p},");
        }
        if let Some((op, _)) = get(m, Field::ArpOp) {
            let _ = write!(s, "arp_op={op},");
        }
    }
    put_eth(s, "arp_sha", m, Field::ArpSha);
    put_eth(s, "arp_tha", m, Field::ArpTha);
    if let Some((v, _)) = get(m, Field::IpDscp) {
        let _ = write!(s, "nw_tos={},", v << 2);
    }
    if let Some((v, _)) = get(m, Field::NwTos) {
        let _ = write!(s, "nw_tos={},", v & 0xfc);
    }
    if let Some((v, _)) = get(m, Field::IpEcn) {
        let _ = write!(s, "nw_ecn={v},");
    }
    if let Some((v, _)) = get(m, Field::NwTtl) {
        let _ = write!(s, "nw_ttl={v},");
    }
    for (name, f) in [
        ("mpls_label", Field::MplsLabel),
        ("mpls_tc", Field::MplsTc),
        ("mpls_ttl", Field::MplsTtl),
        ("mpls_bos", Field::MplsBos),
    ] {
        if let Some((v, _)) = get(m, f) {
            let _ = write!(s, "{name}={v},");
        }
    }
    if let Some((v, k)) = get(m, Field::IpFrag) {
        let t = match k & 3 {
            3 => match v & 3 {
                3 => "later",
                1 => "first",
                0 => "no",
                _ => "<error>",
            },
            1 => {
                if v & 1 != 0 {
                    "yes"
                } else {
                    "no"
                }
            }
            2 => {
                if v & 2 != 0 {
                    "later"
                } else {
                    "not_later"
                }
            }
            _ => "",
        };
        if !t.is_empty() {
            let _ = write!(s, "nw_frag={t},");
        }
    }
    put_be16m(s, "icmp_type", m, Field::Icmpv4Type);
    put_be16m(s, "icmp_code", m, Field::Icmpv4Code);
    put_be16m(s, "icmp_type", m, Field::Icmpv6Type);
    put_be16m(s, "icmp_code", m, Field::Icmpv6Code);
    put_ip(s, "nd_target", m, Field::NdTarget);
    put_eth(s, "nd_sll", m, Field::NdSll);
    put_eth(s, "nd_tll", m, Field::NdTll);
    for (f, g) in [(Field::TcpSrc, Field::TcpDst), (Field::UdpSrc, Field::UdpDst), (Field::SctpSrc, Field::SctpDst)] {
        put_be16m(s, "tp_src", m, f);
        put_be16m(s, "tp_dst", m, g);
    }
    if let Some((v, k)) = get(m, Field::TcpFlags) {
        let _ = write!(s, "tcp_flags={},", flags_masked(TCP_FLAGS, v, k, 0x0fff));
    }
    if let Some((v, k)) = get(m, Field::PbbIsid) {
        let _ = write!(s, "pbb_isid={v}");
        if k != 0xff_ffff {
            let _ = write!(s, "/{k:#x}");
        }
        s.push(',');
    }
    if let Some((v, k)) = get(m, Field::Ipv6Exthdr) {
        let _ = write!(s, "ipv6_exthdr={v:#x}");
        if k != 0xffff {
            let _ = write!(s, "/{k:#x}");
        }
        s.push(',');
    }
    for f in &m.fields {
        if f.field().is_none() {
            let _ = write!(s, "{},", format_unknown_oxm(f));
        }
    }
    if s.len() > start && s.ends_with(',') {
        s.pop();
    }
}

pub(super) fn format_unknown_oxm(f: &OxmField) -> String {
    let mut t = match f.id.experimenter {
        Some(e) => format!("experimenter_oxm(class={:#06x},exp={e:#x},field={}", f.id.class, f.id.field),
        None => format!("oxm(class={:#06x},field={}", f.id.class, f.id.field),
    };
    let _ = write!(t, ",value=0x{}", hex(f.value()));
    if let Some(m) = f.mask() {
        let _ = write!(t, ",mask=0x{}", hex(m));
    }
    t.push(')');
    t
}

pub(super) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A field value as ovs-ofctl writes it in `set_field`.
pub(super) fn field_value(f: Field, v: &[u8]) -> String {
    let u = be_to_u128(v);
    match f.def().fmt {
        Fmt::Eth => fmt_eth(u),
        Fmt::Ipv4 => Ipv4Addr::from(u as u32).to_string(),
        Fmt::Ipv6 => Ipv6Addr::from(u).to_string(),
        Fmt::Port | Fmt::Port16 => port_name(u as u32),
        Fmt::Decimal => u.to_string(),
        _ => hex0(u),
    }
}
