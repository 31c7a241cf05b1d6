//! Values to text, in the words ovs-ofctl prints.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::parse::{CT_STATE_FLAGS, TCP_FLAGS, TUN_FLAGS};
use crate::openflow::action::*;
use crate::openflow::instruction::Instruction;
use crate::openflow::message::*;
use crate::openflow::multipart::{FlowStats, MultipartReplyBody, MultipartRequestBody};

use super::detail;
use crate::openflow::oxm::{Field, Fmt, Match, OxmField, be_to_u128};

/// Value and mask of a field in the match (mask all ones when exact).
fn get(m: &Match, f: Field) -> Option<(u128, u128)> {
    m.get(f).map(|x| {
        let full = if x.value().len() >= 16 { u128::MAX } else { (1u128 << (x.value().len() * 8)) - 1 };
        (x.value_u128(), x.mask_u128().unwrap_or(full))
    })
}

fn hex0(v: u128) -> String {
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

fn fmt_eth(v: u128) -> String {
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

/// Port number as ovs-ofctl prints it.
pub(crate) fn port_name(p: u32) -> String {
    match p {
        OFPP_IN_PORT => "IN_PORT".into(),
        OFPP_TABLE => "TABLE".into(),
        OFPP_NORMAL => "NORMAL".into(),
        OFPP_FLOOD => "FLOOD".into(),
        OFPP_ALL => "ALL".into(),
        OFPP_CONTROLLER => "CONTROLLER".into(),
        OFPP_LOCAL => "LOCAL".into(),
        OFPP_ANY => "ANY".into(),
        p => p.to_string(),
    }
}

/// A match in `ovs-ofctl dump-flows` words (without priority).
pub fn format_match(m: &Match) -> String {
    let mut s = String::new();
    format_match_into(&mut s, m, None);
    s
}

fn format_match_into(s: &mut String, m: &Match, priority: Option<u16>) {
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
        let name = match (t, proto) {
            (0x0800, Some(1)) => Some("icmp"),
            (0x0800, Some(6)) => Some("tcp"),
            (0x0800, Some(17)) => Some("udp"),
            (0x0800, Some(132)) => Some("sctp"),
            (0x86dd, Some(58)) => Some("icmp6"),
            (0x86dd, Some(6)) => Some("tcp6"),
            (0x86dd, Some(17)) => Some("udp6"),
            (0x86dd, Some(132)) => Some("sctp6"),
            _ => None,
        };
        if let Some(n) = name {
            skip_proto = true;
            let _ = write!(s, "{n},");
        } else {
            match t {
                0x0800 => s.push_str("ip,"),
                0x86dd => s.push_str("ipv6,"),
                0x0806 => s.push_str("arp,"),
                0x8035 => s.push_str("rarp,"),
                0x8847 => s.push_str("mpls,"),
                0x8848 => s.push_str("mplsm,"),
                _ => skip_type = false,
            }
        }
    }
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
    for (i, r) in regs.iter().enumerate() {
        put_u32m(s, &format!("reg{i}"), m, *r);
    }
    let xregs = [
        Field::Xreg0,
        Field::Xreg1,
        Field::Xreg2,
        Field::Xreg3,
        Field::Xreg4,
        Field::Xreg5,
        Field::Xreg6,
        Field::Xreg7,
    ];
    for (i, r) in xregs.iter().enumerate() {
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
        if k == 0xffff {
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

fn format_unknown_oxm(f: &OxmField) -> String {
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

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A field value as ovs-ofctl writes it in `set_field`.
fn field_value(f: Field, v: &[u8]) -> String {
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

/// `NAME[]`, `NAME[a]` or `NAME[a..b]`.
fn subfield(sf: &Subfield) -> String {
    let (name, width) = match sf.field.field() {
        Some(f) => (f.def().nxm_name.to_string(), f.width_bits()),
        None => (format!("{:#010x}", sf.field.header), 0),
    };
    if sf.ofs == 0 && sf.n_bits == width {
        format!("{name}[]")
    } else if sf.n_bits == 1 {
        format!("{name}[{}]", sf.ofs)
    } else {
        // Decoded bytes can carry any ofs/n_bits: compute without overflow.
        let end = (u32::from(sf.ofs) + u32::from(sf.n_bits)).saturating_sub(1);
        format!("{name}[{}..{end}]", sf.ofs)
    }
}

fn reason_name(r: u8) -> String {
    match r {
        0 => "no_match".into(),
        1 => "action".into(),
        2 => "invalid_ttl".into(),
        3 => "action_set".into(),
        4 => "group".into(),
        5 => "packet_out".into(),
        r => r.to_string(),
    }
}

fn format_action(s: &mut String, a: &Action) {
    match a {
        Action::Output { port, max_len } => match *port {
            OFPP_CONTROLLER => {
                let _ = write!(s, "CONTROLLER:{max_len}");
            }
            p if p < OFPP_MAX => {
                let _ = write!(s, "output:{p}");
            }
            p => s.push_str(&port_name(p)),
        },
        Action::CopyTtlOut => s.push_str("copy_ttl_out"),
        Action::CopyTtlIn => s.push_str("copy_ttl_in"),
        Action::SetMplsTtl(t) => {
            let _ = write!(s, "set_mpls_ttl({t})");
        }
        Action::DecMplsTtl => s.push_str("dec_mpls_ttl"),
        Action::PushVlan(e) => {
            let _ = write!(s, "push_vlan:{e:#06x}");
        }
        Action::PopVlan => s.push_str("pop_vlan"),
        Action::PushMpls(e) => {
            let _ = write!(s, "push_mpls:{e:#06x}");
        }
        Action::PopMpls(e) => {
            let _ = write!(s, "pop_mpls:{e:#06x}");
        }
        Action::SetQueue(q) => {
            let _ = write!(s, "set_queue:{q}");
        }
        Action::Group(g) => {
            let _ = write!(s, "group:{g}");
        }
        Action::SetNwTtl(t) => {
            let _ = write!(s, "mod_nw_ttl:{t}");
        }
        Action::DecNwTtl => s.push_str("dec_ttl"),
        Action::SetField(f) => match f.field() {
            Some(field) => {
                let v = field_value(field, f.value());
                let _ = write!(s, "set_field:{v}->{}", field.def().name);
            }
            None => {
                let _ = write!(s, "set_field:{}", format_unknown_oxm(f));
            }
        },
        Action::RegLoad2(f) => {
            let name = f.field().map_or_else(|| format_unknown_oxm(f), |x| x.def().name.to_string());
            let _ = write!(s, "set_field:{}/{}->{name}", hex0(be_to_u128(f.value())), hex0(f.mask_u128().unwrap_or(0)));
        }
        Action::PushPbb(e) => {
            let _ = write!(s, "push_pbb:{e:#06x}");
        }
        Action::PopPbb => s.push_str("pop_pbb"),
        Action::Resubmit { in_port } => {
            let _ = write!(s, "resubmit:{}", port_name(port16(*in_port)));
        }
        Action::ResubmitTable { in_port, table } => {
            let p = port16(*in_port);
            if *table == 0xff {
                let _ = write!(s, "resubmit:{}", port_name(p));
            } else if p == OFPP_IN_PORT {
                let _ = write!(s, "resubmit(,{table})");
            } else {
                let _ = write!(s, "resubmit({},{table})", port_name(p));
            }
        }
        Action::SetTunnel(id) => {
            let _ = write!(s, "set_tunnel:{}", hex0(u128::from(*id)));
        }
        Action::SetTunnel64(id) => {
            let _ = write!(s, "set_tunnel64:{}", hex0(u128::from(*id)));
        }
        Action::PopQueue => s.push_str("pop_queue"),
        Action::RegMove { src, dst } => {
            let _ = write!(s, "move:{}->{}", subfield(src), subfield(dst));
        }
        Action::RegLoad { dst, value } => {
            let _ = write!(s, "load:{}->{}", hex0(u128::from(*value)), subfield(dst));
        }
        Action::Note(n) => {
            let parts: Vec<String> = n.iter().map(|b| format!("{b:02x}")).collect();
            let _ = write!(s, "note:{}", parts.join("."));
        }
        Action::OutputReg { src, max_len } => {
            if *max_len == 0xffff {
                let _ = write!(s, "output:{}", subfield(src));
            } else {
                let _ = write!(s, "output(port={},max_len={max_len})", subfield(src));
            }
        }
        Action::Learn(l) => format_learn(s, l),
        Action::Exit => s.push_str("exit"),
        Action::FinTimeout { idle_timeout, hard_timeout } => {
            s.push_str("fin_timeout(");
            if *idle_timeout != 0 {
                let _ = write!(s, "idle_timeout={idle_timeout},");
            }
            if *hard_timeout != 0 {
                let _ = write!(s, "hard_timeout={hard_timeout},");
            }
            if s.ends_with(',') {
                s.pop();
            }
            s.push(')');
        }
        Action::Controller { max_len, controller_id, reason } => {
            if *reason == 1 && *controller_id == 0 {
                let _ = write!(s, "CONTROLLER:{max_len}");
            } else {
                s.push_str("controller(");
                if *reason != 1 {
                    let _ = write!(s, "reason={},", reason_name(*reason));
                }
                if *max_len != 0xffff {
                    let _ = write!(s, "max_len={max_len},");
                }
                if *controller_id != 0 {
                    let _ = write!(s, "id={controller_id},");
                }
                if s.ends_with(',') {
                    s.pop();
                }
                s.push(')');
            }
        }
        Action::DecTtlCntIds(ids) => {
            let v: Vec<String> = ids.iter().map(u16::to_string).collect();
            let _ = write!(s, "dec_ttl({})", v.join(","));
        }
        Action::Conjunction { id, clause, n_clauses } => {
            let _ = write!(s, "conjunction({id},{}/{n_clauses})", u16::from(*clause) + 1);
        }
        Action::Ct(ct) => {
            s.push_str("ct(");
            if ct.flags & NX_CT_F_COMMIT != 0 {
                s.push_str("commit,");
            }
            if ct.flags & NX_CT_F_FORCE != 0 {
                s.push_str("force,");
            }
            if ct.recirc_table != NX_CT_RECIRC_NONE {
                let _ = write!(s, "table={},", ct.recirc_table);
            }
            match ct.zone_src {
                Some(h) => {
                    let _ = write!(s, "zone={},", subfield(&Subfield::from_ofs_nbits(h, ct.zone)));
                }
                None if ct.zone != 0 => {
                    let _ = write!(s, "zone={},", ct.zone);
                }
                None => {}
            }
            let mut rest: &[Action] = &ct.actions;
            if let Some(Action::Nat(n)) = rest.first() {
                format_nat(s, n);
                s.push(',');
                rest = &rest[1..];
            }
            if !rest.is_empty() {
                s.push_str("exec(");
                format_action_list(s, rest);
                s.push_str("),");
            }
            match ct.alg {
                0 => {}
                21 => s.push_str("alg=ftp,"),
                69 => s.push_str("alg=tftp,"),
                a => {
                    let _ = write!(s, "alg={a},");
                }
            }
            if s.ends_with(',') {
                s.pop();
            }
            s.push(')');
        }
        Action::Nat(n) => format_nat(s, n),
        Action::CtClear => s.push_str("ct_clear"),
        Action::Nicira { subtype, data } => {
            let _ = write!(s, "nicira(subtype={subtype},data=0x{})", hex(data));
        }
        Action::Experimenter { experimenter, data } => {
            let _ = write!(s, "experimenter(id={experimenter:#x},data=0x{})", hex(data));
        }
        Action::Unknown { action_type, data } => {
            let _ = write!(s, "unknown_action(type={action_type},data=0x{})", hex(data));
        }
    }
}

/// 16-bit (OpenFlow 1.0) port to the 32-bit numbering used for names.
fn port16(p: u16) -> u32 {
    if p >= 0xff00 { u32::from(p) + 0xffff_0000 } else { u32::from(p) }
}

fn format_nat(s: &mut String, n: &Nat) {
    s.push_str("nat");
    if n.flags & (NX_NAT_F_SRC | NX_NAT_F_DST) == 0 {
        return;
    }
    s.push('(');
    s.push_str(if n.flags & NX_NAT_F_SRC != 0 { "src" } else { "dst" });
    let has_range = n.ipv4_min.is_some() || n.ipv6_min.is_some();
    if has_range {
        s.push('=');
        if let Some(a) = n.ipv4_min {
            let _ = write!(s, "{a}");
            if let Some(b) = n.ipv4_max.filter(|b| *b != a && !b.is_unspecified()) {
                let _ = write!(s, "-{b}");
            }
        } else if let Some(a) = n.ipv6_min {
            let bracket = n.proto_min.is_some();
            let fmt6 = |x: Ipv6Addr| {
                if bracket { format!("[{x}]") } else { x.to_string() }
            };
            s.push_str(&fmt6(a));
            if let Some(b) = n.ipv6_max.filter(|b| *b != a && !b.is_unspecified()) {
                let _ = write!(s, "-{}", fmt6(b));
            }
        }
        if let Some(p) = n.proto_min.filter(|p| *p != 0) {
            let _ = write!(s, ":{p}");
            if let Some(q) = n.proto_max.filter(|q| *q != 0 && *q != p) {
                let _ = write!(s, "-{q}");
            }
        }
        s.push(',');
        if n.flags & NX_NAT_F_PERSISTENT != 0 {
            s.push_str("persistent,");
        }
        if n.flags & NX_NAT_F_PROTO_HASH != 0 {
            s.push_str("hash,");
        }
        if n.flags & NX_NAT_F_PROTO_RANDOM != 0 {
            s.push_str("random,");
        }
    }
    if s.ends_with(',') {
        s.pop();
    }
    s.push(')');
}

fn format_learn(s: &mut String, l: &Learn) {
    s.push_str("learn(");
    let _ = write!(s, "table={}", l.table_id);
    if l.idle_timeout != 0 {
        let _ = write!(s, ",idle_timeout={}", l.idle_timeout);
    }
    if l.hard_timeout != 0 {
        let _ = write!(s, ",hard_timeout={}", l.hard_timeout);
    }
    if l.fin_idle_timeout != 0 {
        let _ = write!(s, ",fin_idle_timeout={}", l.fin_idle_timeout);
    }
    if l.fin_hard_timeout != 0 {
        let _ = write!(s, ",fin_hard_timeout={}", l.fin_hard_timeout);
    }
    if l.priority != OFP_DEFAULT_PRIORITY {
        let _ = write!(s, ",priority={}", l.priority);
    }
    if l.flags & 1 != 0 {
        s.push_str(",send_flow_rem");
    }
    if l.flags & 2 != 0 {
        s.push_str(",delete_learned");
    }
    if l.cookie != 0 {
        let _ = write!(s, ",cookie={:#x}", l.cookie);
    }
    for spec in &l.specs {
        s.push(',');
        let src = match &spec.src {
            LearnSrc::Field(sf) => subfield(sf),
            LearnSrc::Immediate(v) => hex0(be_to_u128(v)),
        };
        match &spec.dst {
            LearnDst::Match(d) => match &spec.src {
                LearnSrc::Field(sf) if sf == d => s.push_str(&subfield(d)),
                _ => {
                    let _ = write!(s, "{}={src}", subfield(d));
                }
            },
            LearnDst::Load(d) => {
                let _ = write!(s, "load:{src}->{}", subfield(d));
            }
            LearnDst::Output => {
                let _ = write!(s, "output:{src}");
            }
        }
    }
    s.push(')');
}

fn format_action_list(s: &mut String, actions: &[Action]) {
    for (i, a) in actions.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        format_action(s, a);
    }
}

/// An action list as ovs-ofctl prints it (`drop` when empty).
pub fn format_actions(actions: &[Action]) -> String {
    let mut s = String::new();
    if actions.is_empty() {
        s.push_str("drop");
    } else {
        format_action_list(&mut s, actions);
    }
    s
}

fn format_instructions(s: &mut String, ins: &[Instruction]) {
    s.push_str("actions=");
    let start = s.len();
    for i in ins {
        if s.len() > start {
            s.push(',');
        }
        match i {
            Instruction::Meter(m) => {
                let _ = write!(s, "meter:{m}");
            }
            Instruction::ApplyActions(a) => {
                if a.is_empty() {
                    // An empty apply-actions prints as nothing, like OVS.
                    if s.ends_with(',') {
                        s.pop();
                    }
                } else {
                    format_action_list(s, a);
                }
            }
            Instruction::ClearActions => s.push_str("clear_actions"),
            Instruction::WriteActions(a) => {
                s.push_str("write_actions(");
                format_action_list(s, a);
                s.push(')');
            }
            Instruction::WriteMetadata { metadata, mask } => {
                let _ = write!(s, "write_metadata:{}", hex0(u128::from(*metadata)));
                if *mask != u64::MAX {
                    let _ = write!(s, "/{}", hex0(u128::from(*mask)));
                }
            }
            Instruction::GotoTable(t) => {
                let _ = write!(s, "goto_table:{t}");
            }
            Instruction::Experimenter { experimenter, data } => {
                let _ = write!(s, "experimenter_instruction(id={experimenter:#x},data=0x{})", hex(data));
            }
            Instruction::Unknown { instruction_type, data } => {
                let _ = write!(s, "unknown_instruction(type={instruction_type},data=0x{})", hex(data));
            }
        }
    }
    if s.len() == start {
        s.push_str("drop");
    }
}

/// Seconds as ovs-ofctl prints a duration: no decimals when whole, 3 when
/// exact milliseconds, else as many as needed.
pub(super) fn duration(sec: u32, nsec: u32) -> String {
    if nsec == 0 {
        sec.to_string()
    } else if nsec % 1_000_000 == 0 {
        format!("{sec}.{:03}", nsec / 1_000_000)
    } else {
        format!("{sec}.{nsec:09}").trim_end_matches('0').to_string()
    }
}

/// Flow-mod flags as ovs-ofctl prints them, each followed by a space.
fn flow_flags(s: &mut String, flags: u16) {
    for (bit, name) in [
        (OFPFF_SEND_FLOW_REM, "send_flow_rem "),
        (OFPFF_CHECK_OVERLAP, "check_overlap "),
        (OFPFF_RESET_COUNTS, "reset_counts "),
        (OFPFF_NO_PKT_COUNTS, "no_packet_counts "),
        (OFPFF_NO_BYT_COUNTS, "no_byte_counts "),
    ] {
        if flags & bit != 0 {
            s.push_str(name);
        }
    }
}

/// The common part of `dump-flows` lines (`ofputil_flow_stats_format`).
#[allow(clippy::too_many_arguments)]
fn flow_line(
    s: &mut String,
    stats: Option<(&FlowStats, u64, u64)>,
    cookie: u64,
    table_id: u8,
    idle_timeout: u16,
    hard_timeout: u16,
    flags: u16,
    m: &Match,
    priority: u16,
    ins: &[Instruction],
) {
    if stats.is_some() || cookie != 0 {
        let _ = write!(s, "cookie={cookie:#x}, ");
    }
    if let Some((f, _, _)) = stats {
        let _ = write!(s, "duration={}s, ", duration(f.duration_sec, f.duration_nsec));
    }
    if stats.is_some() || table_id != 0 {
        let _ = write!(s, "table={table_id}, ");
    }
    if let Some((_, p, b)) = stats {
        let _ = write!(s, "n_packets={p}, n_bytes={b}, ");
    }
    if idle_timeout != 0 {
        let _ = write!(s, "idle_timeout={idle_timeout}, ");
    }
    if hard_timeout != 0 {
        let _ = write!(s, "hard_timeout={hard_timeout}, ");
    }
    flow_flags(s, flags);
    let before = s.len();
    format_match_into(s, m, Some(priority));
    if s.len() > before {
        s.push(' ');
    }
    format_instructions(s, ins);
}

/// A flow as `ovs-ofctl dump-flows --no-stats` prints it:
/// `cookie=0x5, table=1, idle_timeout=10, priority=7,ip,nw_dst=10.0.0.0/24 actions=goto_table:3`
/// (fields that are zero or default are left out, as ovs-ofctl does).
pub fn format_flow(fm: &FlowMod) -> String {
    let mut s = String::new();
    flow_line(
        &mut s,
        None,
        fm.cookie,
        fm.table_id,
        fm.idle_timeout,
        fm.hard_timeout,
        fm.flags,
        &fm.r#match,
        fm.priority,
        &fm.instructions,
    );
    s
}

/// A flow-stats entry as `ovs-ofctl dump-flows` prints it, statistics included
/// (ages, which OpenFlow 1.3 does not carry, are not printed).
pub fn format_flow_stats(f: &FlowStats) -> String {
    let mut s = String::new();
    flow_line(
        &mut s,
        Some((f, f.packet_count, f.byte_count)),
        f.cookie,
        f.table_id,
        f.idle_timeout,
        f.hard_timeout,
        f.flags,
        &f.r#match,
        f.priority,
        &f.instructions,
    );
    s
}

fn format_flow_mod(s: &mut String, fm: &FlowMod) {
    let cmd = match fm.command {
        OFPFC_ADD => "ADD".to_string(),
        OFPFC_MODIFY => "MOD".to_string(),
        OFPFC_MODIFY_STRICT => "MOD_STRICT".to_string(),
        OFPFC_DELETE => "DEL".to_string(),
        OFPFC_DELETE_STRICT => "DEL_STRICT".to_string(),
        c => format!("cmd:{c}"),
    };
    s.push_str(&cmd);
    if fm.table_id != 0 {
        let _ = write!(s, " table:{}", fm.table_id);
    }
    s.push(' ');
    let before = s.len();
    format_match_into(s, &fm.r#match, Some(fm.priority));
    if s.len() > before {
        s.push(' ');
    }
    // OVS reads an ADD's cookie as the new cookie, and any other command's
    // cookie and mask as a filter (printed only when the mask is set).
    if fm.command == 0 {
        if fm.cookie != 0 {
            let _ = write!(s, "cookie:{:#x} ", fm.cookie);
        }
    } else if fm.cookie_mask != 0 {
        let _ = write!(s, "cookie:{:#x}/{:#x} ", fm.cookie, fm.cookie_mask);
    }
    if fm.idle_timeout != 0 {
        let _ = write!(s, "idle:{} ", fm.idle_timeout);
    }
    if fm.hard_timeout != 0 {
        let _ = write!(s, "hard:{} ", fm.hard_timeout);
    }
    if fm.buffer_id != OFP_NO_BUFFER {
        let _ = write!(s, "buf:{:#x} ", fm.buffer_id);
    }
    if fm.out_port != OFPP_ANY {
        let _ = write!(s, "out_port:{} ", port_name(fm.out_port));
    }
    if fm.flags & OFPFF_SEND_FLOW_REM != 0 {
        s.push_str("send_flow_rem ");
    }
    if fm.flags & OFPFF_CHECK_OVERLAP != 0 {
        s.push_str("check_overlap ");
    }
    if fm.flags & OFPFF_RESET_COUNTS != 0 {
        s.push_str("reset_counts ");
    }
    if fm.flags & OFPFF_NO_PKT_COUNTS != 0 {
        s.push_str("no_packet_counts ");
    }
    if fm.flags & OFPFF_NO_BYT_COUNTS != 0 {
        s.push_str("no_byte_counts ");
    }
    format_instructions(s, &fm.instructions);
}

fn type_name(m: &Message) -> &'static str {
    match m {
        Message::Hello(_) => "OFPT_HELLO",
        Message::Error(_) => "OFPT_ERROR",
        Message::EchoRequest(_) => "OFPT_ECHO_REQUEST",
        Message::EchoReply(_) => "OFPT_ECHO_REPLY",
        Message::Experimenter(_) => "OFPT_EXPERIMENTER",
        Message::FeaturesRequest => "OFPT_FEATURES_REQUEST",
        Message::FeaturesReply(_) => "OFPT_FEATURES_REPLY",
        Message::GetConfigRequest => "OFPT_GET_CONFIG_REQUEST",
        Message::GetConfigReply(_) => "OFPT_GET_CONFIG_REPLY",
        Message::SetConfig(_) => "OFPT_SET_CONFIG",
        Message::PacketIn(_) => "OFPT_PACKET_IN",
        Message::FlowRemoved(_) => "OFPT_FLOW_REMOVED",
        Message::PortStatus(_) => "OFPT_PORT_STATUS",
        Message::PacketOut(_) => "OFPT_PACKET_OUT",
        Message::FlowMod(_) => "OFPT_FLOW_MOD",
        Message::GroupMod(_) => "OFPT_GROUP_MOD",
        Message::PortMod(_) => "OFPT_PORT_MOD",
        Message::TableMod(_) => "OFPT_TABLE_MOD",
        Message::MultipartRequest(_) => "OFPST request",
        Message::MultipartReply(_) => "OFPST reply",
        Message::BarrierRequest => "OFPT_BARRIER_REQUEST",
        Message::BarrierReply => "OFPT_BARRIER_REPLY",
        Message::RoleRequest(_) => "OFPT_ROLE_REQUEST",
        Message::RoleReply(_) => "OFPT_ROLE_REPLY",
        Message::GetAsyncRequest => "OFPT_GET_ASYNC_REQUEST",
        Message::GetAsyncReply(_) => "OFPT_GET_ASYNC_REPLY",
        Message::SetAsync(_) => "OFPT_SET_ASYNC",
        Message::MeterMod(_) => "OFPT_METER_MOD",
        Message::BundleControl(_) => "ONFT_BUNDLE_CONTROL",
        Message::BundleAdd(_) => "ONFT_BUNDLE_ADD_MESSAGE",
        Message::Unknown { .. } => "OFPT_UNKNOWN",
    }
}

fn mp_name(t: u16) -> &'static str {
    match t {
        0 => "OFPST_DESC",
        1 => "OFPST_FLOW",
        2 => "OFPST_AGGREGATE",
        3 => "OFPST_TABLE",
        4 => "OFPST_PORT",
        5 => "OFPST_QUEUE",
        6 => "OFPST_GROUP",
        7 => "OFPST_GROUP_DESC",
        8 => "OFPST_GROUP_FEATURES",
        9 => "OFPST_METER",
        10 => "OFPST_METER_CONFIG",
        11 => "OFPST_METER_FEATURES",
        12 => "OFPST_TABLE_FEATURES",
        13 => "OFPST_PORT_DESC",
        _ => "OFPST_UNKNOWN",
    }
}

/// A message in the words of `ovs-ofctl ofp-print`: the first line and the
/// detail lines, with `xid` in the header.
pub fn format_message_xid(m: &Message, xid: u32) -> String {
    format_verbose(m, xid, 2)
}

/// `verbosity` as in `ofp_to_string`: 2 is ofp-print's default; the request
/// inside an error message is printed at 1 (no echo hex dump).
fn format_verbose(m: &Message, xid: u32, verbosity: u8) -> String {
    let mut s = String::new();
    match m {
        Message::MultipartRequest(r) => {
            let _ = write!(s, "{} request (OF1.3) (xid={xid:#x}):", mp_name(r.mp_type()));
            if r.flags != 0 {
                mp_flags(&mut s, r.flags);
            }
            match &r.body {
                MultipartRequestBody::Flow(f) | MultipartRequestBody::Aggregate(f) => {
                    if f.table_id != 0xff {
                        let _ = write!(s, " table={}", f.table_id);
                    }
                    if f.out_port != OFPP_ANY {
                        let _ = write!(s, " out_port={}", port_name(f.out_port));
                    }
                    let mm = format_match(&f.r#match);
                    if !mm.is_empty() {
                        let _ = write!(s, " {mm}");
                    }
                }
                MultipartRequestBody::PortStats { port_no } => {
                    let _ = write!(s, " port_no={}", port_name(*port_no));
                }
                MultipartRequestBody::PortDesc => s.push_str(" port=ANY"),
                MultipartRequestBody::Group { group_id } => {
                    let _ = write!(s, " group_id={}", detail::group_name(*group_id));
                }
                MultipartRequestBody::GroupDesc => s.push_str(" group_id=ALL"),
                MultipartRequestBody::Meter { meter_id } | MultipartRequestBody::MeterConfig { meter_id } => {
                    let _ = write!(s, " {}", detail::meter_id(*meter_id, '='));
                }
                _ => {}
            }
        }
        Message::MultipartReply(r) => {
            let _ = write!(s, "{} reply (OF1.3) (xid={xid:#x}):", mp_name(r.mp_type()));
            if r.flags != 0 {
                mp_flags(&mut s, r.flags);
            }
            match &r.body {
                MultipartReplyBody::Desc(d) => {
                    let _ = write!(
                        s,
                        "\nManufacturer: {}\nHardware: {}\nSoftware: {}\nSerial Num: {}\nDP Description: {}",
                        d.mfr_desc, d.hw_desc, d.sw_desc, d.serial_num, d.dp_desc
                    );
                }
                MultipartReplyBody::Flow(v) => {
                    for f in v {
                        let _ = write!(s, "\n {}", format_flow_stats(f));
                    }
                }
                MultipartReplyBody::Aggregate(a) => {
                    let _ = write!(
                        s,
                        " packet_count={} byte_count={} flow_count={}",
                        a.packet_count, a.byte_count, a.flow_count
                    );
                }
                MultipartReplyBody::Table(v) => detail::table_stats(&mut s, v),
                MultipartReplyBody::PortStats(v) => {
                    let _ = writeln!(s, " {} ports", v.len());
                    if verbosity >= 1 {
                        detail::port_stats(&mut s, v);
                    }
                }
                MultipartReplyBody::PortDesc(v) => {
                    s.push('\n');
                    detail::phy_ports(&mut s, v);
                }
                MultipartReplyBody::Group(v) => detail::group_stats(&mut s, v),
                MultipartReplyBody::GroupDesc(v) => detail::group_desc(&mut s, v),
                MultipartReplyBody::Meter(v) => detail::meter_stats(&mut s, v),
                MultipartReplyBody::MeterConfig(v) => detail::meter_configs(&mut s, v),
                _ => {}
            }
        }
        _ => {
            let _ = write!(s, "{} (OF1.3) (xid={xid:#x}):", type_name(m));
            match m {
                Message::Hello(h) => {
                    let mut bits = 0u32;
                    for e in &h.elements {
                        if let HelloElement::VersionBitmap(w) = e {
                            bits |= w.first().copied().unwrap_or(0);
                        }
                    }
                    let versions: Vec<String> =
                        (0..32).filter(|i| bits & (1 << i) != 0).map(|i| format!("{i:#04x}")).collect();
                    let _ = write!(s, "\n version bitmap: {}", versions.join(", "));
                }
                Message::FlowMod(fm) => {
                    s.push(' ');
                    format_flow_mod(&mut s, fm);
                }
                Message::Error(e) => format_error(&mut s, e),
                Message::EchoRequest(d) | Message::EchoReply(d) => {
                    let _ = writeln!(s, " {} bytes of payload", d.len());
                    if verbosity > 1 {
                        detail::hex_dump(&mut s, d);
                    }
                }
                Message::PacketIn(p) => {
                    if p.table_id != 0 {
                        let _ = write!(s, " table_id={}", p.table_id);
                    }
                    if p.cookie != u64::MAX {
                        let _ = write!(s, " cookie={:#x}", p.cookie);
                    }
                    let _ = write!(
                        s,
                        " total_len={} {} (via {}) data_len={}",
                        p.total_len,
                        format_match(&p.r#match),
                        reason_name(p.reason),
                        p.data.len()
                    );
                    if p.buffer_id == OFP_NO_BUFFER {
                        s.push_str(" (unbuffered)");
                        if usize::from(p.total_len) != p.data.len() {
                            s.push_str(" (***total_len != data_len***)");
                        }
                    } else {
                        let _ = write!(s, " buffer={:#010x}", p.buffer_id);
                        if usize::from(p.total_len) < p.data.len() {
                            s.push_str(" (***total_len < data_len***)");
                        }
                    }
                    s.push('\n');
                    if verbosity > 0 {
                        if let Some(sum) = detail::packet_summary(&p.data) {
                            s.push_str(&sum);
                        }
                    }
                }
                Message::PacketOut(p) => {
                    let _ = write!(s, " in_port={} actions={}", port_name(p.in_port), format_actions(&p.actions));
                    if p.buffer_id != OFP_NO_BUFFER {
                        let _ = write!(s, " buffer={:#010x}", p.buffer_id);
                    } else {
                        let _ = write!(s, " data_len={}", p.data.len());
                        if verbosity > 0 && !p.data.is_empty() {
                            if let Some(sum) = detail::packet_summary(&p.data) {
                                s.push('\n');
                                s.push_str(&sum);
                            }
                        }
                    }
                }
                Message::FlowRemoved(f) => {
                    s.push(' ');
                    format_match_into(&mut s, &f.r#match, Some(f.priority));
                    let reason = match f.reason {
                        0 => "idle".to_string(),
                        1 => "hard".to_string(),
                        2 => "delete".to_string(),
                        3 => "group_delete".to_string(),
                        4 => "eviction".to_string(),
                        5 => "meter_delete".to_string(),
                        r => r.to_string(),
                    };
                    let _ = write!(s, " reason={reason}");
                    if f.table_id != 255 {
                        let _ = write!(s, " table_id={}", f.table_id);
                    }
                    if f.cookie != 0 {
                        let _ = write!(s, " cookie:{:#x}", f.cookie);
                    }
                    let _ = write!(s, " duration{}s idle{}", duration(f.duration_sec, f.duration_nsec), f.idle_timeout);
                    if f.hard_timeout != 0 {
                        let _ = write!(s, " hard{}", f.hard_timeout);
                    }
                    let _ = writeln!(s, " pkts{} bytes{}", f.packet_count, f.byte_count);
                }
                Message::PortStatus(p) => detail::port_status(&mut s, p),
                Message::PortMod(p) => detail::port_mod(&mut s, p),
                Message::TableMod(t) => {
                    if t.table_id == 0xff {
                        s.push_str(" table_id: ALL_TABLES");
                    } else {
                        let _ = write!(s, " table_id={}", t.table_id);
                    }
                }
                Message::GroupMod(g) => detail::group_mod(&mut s, g),
                Message::MeterMod(mm) => detail::meter_mod(&mut s, mm),
                Message::GetAsyncReply(a) | Message::SetAsync(a) => detail::async_config(&mut s, a),
                Message::RoleRequest(r) | Message::RoleReply(r) => {
                    let role = match r.role {
                        0 => "nochange",
                        1 => "equal",
                        2 => "primary",
                        3 => "secondary",
                        _ => "unknown",
                    };
                    let _ = write!(s, " role={role}");
                    if r.role != 0 && r.role != 1 {
                        let _ = write!(s, " generation_id={}", r.generation_id);
                    }
                }
                Message::SetConfig(c) | Message::GetConfigReply(c) => {
                    let frag = match c.flags & 3 {
                        0 => "normal",
                        1 => "drop",
                        2 => "reassemble",
                        _ => "nx-match",
                    };
                    let _ = write!(s, " frags={frag} miss_send_len={}", c.miss_send_len);
                }
                Message::FeaturesReply(f) => detail::features_reply(&mut s, f),
                Message::BundleControl(b) => {
                    let ty = match b.ctrl_type {
                        0 => "OPEN_REQUEST",
                        1 => "OPEN_REPLY",
                        2 => "CLOSE_REQUEST",
                        3 => "CLOSE_REPLY",
                        4 => "COMMIT_REQUEST",
                        5 => "COMMIT_REPLY",
                        6 => "DISCARD_REQUEST",
                        7 => "DISCARD_REPLY",
                        _ => "UNKNOWN",
                    };
                    let _ = write!(s, "\n bundle_id={:#x} type={ty} flags={}", b.bundle_id, bundle_flags(b.flags));
                }
                Message::BundleAdd(b) => {
                    let _ = write!(s, "\n bundle_id={:#x} flags={}", b.bundle_id, bundle_flags(b.flags));
                    if let Ok((h, inner)) = b.inner() {
                        let _ = write!(s, "\n{}", format_verbose(&inner, h.xid, verbosity));
                    }
                }
                _ => {}
            }
        }
    }
    s
}

/// `ofp_print_stats`: the multipart flags after the first line.
fn mp_flags(s: &mut String, flags: u16) {
    s.push_str(" flags=");
    let mut f = flags;
    if f & 1 != 0 {
        s.push_str("[more]");
        f &= !1;
    }
    if f != 0 {
        let _ = write!(s, "[***unknown flags {f:#06x}***]");
    }
}

/// `ofperr_msg_format`: the error's name, then the failed request as
/// ovs-ofctl decodes it (or its text, for HELLO_FAILED).
fn format_error(s: &mut String, e: &ErrorMsg) {
    let (name, data) = match e {
        ErrorMsg::Standard { err_type, code, data } => (error_name(*err_type, *code), data),
        ErrorMsg::Experimenter { exp_type, experimenter, data } => {
            (experimenter_error_name(*experimenter, *exp_type), data)
        }
        ErrorMsg::Nicira { nx_type, nx_code, data, .. } => (format!("NXET({nx_type},{nx_code})"), data),
    };
    let _ = writeln!(s, " {name}");
    if matches!(e, ErrorMsg::Standard { err_type: 0, code: 0 | 1, .. }) {
        // HELLO_FAILED carries text: printable bytes as they are.
        for &b in data {
            if (32..127).contains(&b) || b == b'\n' {
                s.push(b as char);
            } else {
                let _ = write!(s, "\\{b:03o}");
            }
        }
        return;
    }
    match Message::decode(data) {
        Ok((h, inner)) if usize::from(h.length) == data.len() => {
            s.push_str(&format_verbose(&inner, h.xid, 1));
        }
        _ if data.len() < 8 => {
            let _ = writeln!(s, "OpenFlow packet too short (only {} bytes):", data.len());
            detail::hex_dump(s, data);
        }
        _ => {
            let len = u16::from_be_bytes([data[2], data[3]]);
            if usize::from(len) > data.len() {
                let _ = writeln!(s, "(***truncated to {} bytes from {len}***)", data.len());
            }
            detail::hex_dump(s, data);
        }
    }
}

/// Open vSwitch's own error codes (NX, experimenter 0x2320) and the ONF
/// bundle errors, as OpenFlow 1.3 carries them (`ofp-errors.h`).
const EXPERIMENTER_ERRORS: &[(u32, u16, &str)] = &[
    (0x4f4e_4600, 2640, "OFPBRC_MULTIPART_REQUEST_TIMEOUT"),
    (0x4f4e_4600, 2641, "OFPBRC_MULTIPART_REPLY_TIMEOUT"),
    (0x2320, 2, "NXBRC_NXM_INVALID"),
    (0x2320, 3, "NXBRC_NXM_BAD_TYPE"),
    (0x2320, 4, "NXBRC_MUST_BE_ZERO"),
    (0x2320, 5, "NXBRC_BAD_REASON"),
    (0x2320, 9, "NXBRC_FM_BAD_EVENT"),
    (0x2320, 10, "NXBRC_UNENCODABLE_ERROR"),
    (0x4f4e_4600, 4250, "OFPBAC_BAD_SET_MASK"),
    (0x2320, 11, "NXBAC_MUST_BE_ZERO"),
    (0x2320, 15, "NXBAC_BAD_CONJUNCTION"),
    (0x2320, 39, "NXBAC_BAD_HEADER_TYPE"),
    (0x2320, 40, "NXBAC_UNKNOWN_ED_PROP"),
    (0x2320, 41, "NXBAC_BAD_ED_PROP"),
    (0x2320, 42, "NXBAC_CT_DATAPATH_SUPPORT"),
    (0x4f4e_4600, 2600, "OFPBIC_DUP_INST"),
    (0x2320, 43, "NXBMC_CT_DATAPATH_SUPPORT"),
    (0x4f4e_4600, 2360, "OFPFMFC_BAD_PRIORITY"),
    (0x2320, 12, "NXFMFC_HARDWARE"),
    (0x2320, 13, "NXFMFC_BAD_TABLE_ID"),
    (0x2320, 37, "NXFMFC_INVALID_TLV_FIELD"),
    (0x2320, 44, "NXTFFC_DUP_TABLE"),
    (0x4f4e_4600, 4443, "OFPBPC_TOO_MANY"),
    (0x4f4e_4600, 4444, "OFPBPC_DUP_TYPE"),
    (0x4f4e_4600, 4445, "OFPBPC_BAD_EXPERIMENTER"),
    (0x4f4e_4600, 4446, "OFPBPC_BAD_EXP_TYPE"),
    (0x4f4e_4600, 4447, "OFPBPC_BAD_EXP_VALUE"),
    (0x4f4e_4600, 4448, "OFPBPC_EPERM"),
    (0x4f4e_4600, 2370, "OFPACFC_INVALID"),
    (0x4f4e_4600, 2371, "OFPACFC_UNSUPPORTED"),
    (0x4f4e_4600, 2372, "OFPACFC_EPERM"),
    (0x4f4e_4600, 2300, "OFPBFC_UNKNOWN"),
    (0x4f4e_4600, 2301, "OFPBFC_EPERM"),
    (0x4f4e_4600, 2302, "OFPBFC_BAD_ID"),
    (0x4f4e_4600, 2303, "OFPBFC_BUNDLE_EXIST"),
    (0x4f4e_4600, 2304, "OFPBFC_BUNDLE_CLOSED"),
    (0x4f4e_4600, 2305, "OFPBFC_OUT_OF_BUNDLES"),
    (0x4f4e_4600, 2306, "OFPBFC_BAD_TYPE"),
    (0x4f4e_4600, 2307, "OFPBFC_BAD_FLAGS"),
    (0x4f4e_4600, 2308, "OFPBFC_MSG_BAD_LEN"),
    (0x4f4e_4600, 2309, "OFPBFC_MSG_BAD_XID"),
    (0x4f4e_4600, 2310, "OFPBFC_MSG_UNSUP"),
    (0x4f4e_4600, 2311, "OFPBFC_MSG_CONFLICT"),
    (0x4f4e_4600, 2312, "OFPBFC_MSG_TOO_MANY"),
    (0x4f4e_4600, 2313, "OFPBFC_MSG_FAILED"),
    (0x4f4e_4600, 2314, "OFPBFC_TIMEOUT"),
    (0x4f4e_4600, 2315, "OFPBFC_BUNDLE_IN_PROGRESS"),
    (0x2320, 6, "OFPMOFC_MONITOR_EXISTS"),
    (0x2320, 8, "OFPMOFC_UNKNOWN_MONITOR"),
    (0x2320, 7, "OFPMOFC_BAD_FLAGS"),
    (0x2320, 16, "NXTTMFC_BAD_COMMAND"),
    (0x2320, 17, "NXTTMFC_BAD_OPT_LEN"),
    (0x2320, 18, "NXTTMFC_BAD_FIELD_IDX"),
    (0x2320, 19, "NXTTMFC_TABLE_FULL"),
    (0x2320, 20, "NXTTMFC_ALREADY_MAPPED"),
    (0x2320, 21, "NXTTMFC_DUP_ENTRY"),
    (0x2320, 38, "NXTTMFC_INVALID_TLV_DEL"),
    (0x2320, 34, "NXR_NOT_SUPPORTED"),
    (0x2320, 35, "NXR_STALE"),
    (0x2320, 36, "NXST_NOT_CONFIGURED"),
];

fn experimenter_error_name(experimenter: u32, exp_type: u16) -> String {
    EXPERIMENTER_ERRORS
        .iter()
        .find(|(e, t, _)| *e == experimenter && *t == exp_type)
        .map_or_else(|| format!("OFPET_EXPERIMENTER({experimenter:#x},{exp_type})"), |(_, _, n)| (*n).to_string())
}

/// OpenFlow 1.3 error type prefixes and code names (section 7.4.4).
const ERROR_NAMES: &[(&str, &[&str])] = &[
    ("OFPHFC", &["INCOMPATIBLE", "EPERM"]),
    (
        "OFPBRC",
        &[
            "BAD_VERSION",
            "BAD_TYPE",
            "BAD_MULTIPART",
            "BAD_EXPERIMENTER",
            "BAD_EXP_TYPE",
            "EPERM",
            "BAD_LEN",
            "BUFFER_EMPTY",
            "BUFFER_UNKNOWN",
            "BAD_TABLE_ID",
            "IS_SLAVE",
            "BAD_PORT",
            "BAD_PACKET",
            "MULTIPART_BUFFER_OVERFLOW",
        ],
    ),
    (
        "OFPBAC",
        &[
            "BAD_TYPE",
            "BAD_LEN",
            "BAD_EXPERIMENTER",
            "BAD_EXP_TYPE",
            "BAD_OUT_PORT",
            "BAD_ARGUMENT",
            "EPERM",
            "TOO_MANY",
            "BAD_QUEUE",
            "BAD_OUT_GROUP",
            "MATCH_INCONSISTENT",
            "UNSUPPORTED_ORDER",
            "BAD_TAG",
            "BAD_SET_TYPE",
            "BAD_SET_LEN",
            "BAD_SET_ARGUMENT",
        ],
    ),
    (
        "OFPBIC",
        &[
            "UNKNOWN_INST",
            "UNSUP_INST",
            "BAD_TABLE_ID",
            "UNSUP_METADATA",
            "UNSUP_METADATA_MASK",
            "BAD_EXPERIMENTER",
            "BAD_EXP_TYPE",
            "BAD_LEN",
            "EPERM",
        ],
    ),
    (
        "OFPBMC",
        &[
            "BAD_TYPE",
            "BAD_LEN",
            "BAD_TAG",
            "BAD_DL_ADDR_MASK",
            "BAD_NW_ADDR_MASK",
            "BAD_WILDCARDS",
            "BAD_FIELD",
            "BAD_VALUE",
            "BAD_MASK",
            "BAD_PREREQ",
            "DUP_FIELD",
            "EPERM",
        ],
    ),
    (
        "OFPFMFC",
        &["UNKNOWN", "TABLE_FULL", "BAD_TABLE_ID", "OVERLAP", "EPERM", "BAD_TIMEOUT", "BAD_COMMAND", "BAD_FLAGS"],
    ),
    (
        "OFPGMFC",
        &[
            "GROUP_EXISTS",
            "INVALID_GROUP",
            "WEIGHT_UNSUPPORTED",
            "OUT_OF_GROUPS",
            "OUT_OF_BUCKETS",
            "CHAINING_UNSUPPORTED",
            "WATCH_UNSUPPORTED",
            "LOOP",
            "UNKNOWN_GROUP",
            "CHAINED_GROUP",
            "BAD_TYPE",
            "BAD_COMMAND",
            "BAD_BUCKET",
            "BAD_WATCH",
            "EPERM",
        ],
    ),
    ("OFPPMFC", &["BAD_PORT", "BAD_HW_ADDR", "BAD_CONFIG", "BAD_ADVERTISE", "EPERM"]),
    ("OFPTMFC", &["BAD_TABLE", "BAD_CONFIG", "EPERM"]),
    ("OFPQOFC", &["BAD_PORT", "BAD_QUEUE", "EPERM"]),
    ("OFPSCFC", &["BAD_FLAGS", "BAD_LEN", "EPERM"]),
    ("OFPRRFC", &["STALE", "UNSUP", "BAD_ROLE"]),
    (
        "OFPMMFC",
        &[
            "UNKNOWN",
            "METER_EXISTS",
            "INVALID_METER",
            "UNKNOWN_METER",
            "BAD_COMMAND",
            "BAD_FLAGS",
            "BAD_RATE",
            "BAD_BURST",
            "BAD_BAND",
            "BAD_BAND_VALUE",
            "OUT_OF_METERS",
            "OUT_OF_BANDS",
        ],
    ),
    ("OFPTFFC", &["BAD_TABLE", "BAD_METADATA", "BAD_TYPE", "BAD_LEN", "BAD_ARGUMENT", "EPERM"]),
];

/// The name of a standard OpenFlow 1.3 error (`OFPBRC_BAD_TYPE`), or the numbers.
pub fn error_name(err_type: u16, code: u16) -> String {
    ERROR_NAMES
        .get(usize::from(err_type))
        .and_then(|(prefix, codes)| codes.get(usize::from(code)).map(|c| format!("{prefix}_{c}")))
        .unwrap_or_else(|| format!("OFPET({err_type},{code})"))
}

fn bundle_flags(f: u16) -> String {
    if f == 0 {
        return "0".into();
    }
    let mut v = Vec::new();
    if f & 1 != 0 {
        v.push("atomic");
    }
    if f & 2 != 0 {
        v.push("ordered");
    }
    v.join(" ")
}

/// A message in the words of `ovs-ofctl ofp-print` (xid shown as 0).
pub fn format_message(m: &Message) -> String {
    format_message_xid(m, 0)
}
