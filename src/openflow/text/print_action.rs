//! Actions and instructions to text, in the words ovs-ofctl prints.

use std::fmt::Write as _;
use std::net::Ipv6Addr;

use super::names::{port_name, port16, reason_name};
use super::nx_raw::{BD_ALGORITHMS, DECAP_NEXT, ENCAP_TYPES, HASH_FIELDS, MP_ALGORITHMS, Raw};
use super::print_match::{field_value, format_unknown_oxm, hex, hex0};
use crate::openflow::action::*;
use crate::openflow::instruction::Instruction;
use crate::openflow::message::OFP_DEFAULT_PRIORITY;
use crate::openflow::oxm::be_to_u128;

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
        Action::Nicira { subtype, data } if Raw::from_nicira(*subtype, data).is_some() => {
            if let Some(raw) = Raw::from_nicira(*subtype, data) {
                format_raw(s, &raw);
            }
        }
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

pub(super) fn format_action_list(s: &mut String, actions: &[Action]) {
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

pub(super) fn format_instructions(s: &mut String, ins: &[Instruction]) {
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

fn table_name(table: &[&str], i: u16) -> String {
    table.get(usize::from(i)).map_or_else(|| format!("<unknown {i}>"), |n| (*n).to_string())
}

/// The Nicira actions the codec carries raw, as ovs-ofctl prints them.
fn format_raw(s: &mut String, raw: &Raw) {
    match raw {
        Raw::OutputTrunc { port, max_len } => {
            let _ = write!(s, "output(port={},max_len={max_len})", port_name(port16(*port)));
        }
        Raw::Controller2(c) => {
            s.push_str("controller(");
            if c.reason != 1 {
                let _ = write!(s, "reason={},", reason_name(c.reason));
            }
            if c.max_len != 0xffff {
                let _ = write!(s, "max_len={},", c.max_len);
            }
            if c.controller_id != 0 {
                let _ = write!(s, "id={},", c.controller_id);
            }
            if let Some(u) = &c.userdata {
                let parts: Vec<String> = u.iter().map(|b| format!("{b:02x}")).collect();
                let _ = write!(s, "userdata={},", parts.join("."));
            }
            if c.pause {
                s.push_str("pause,");
            }
            if let Some(m) = c.meter_id {
                let _ = write!(s, "meter_id={m},");
            }
            if s.ends_with(',') {
                s.pop();
            }
            s.push(')');
        }
        Raw::Bundle { fields, basis, algorithm, dst, members } => {
            let name = if dst.is_some() { "bundle_load" } else { "bundle" };
            let _ = write!(
                s,
                "{name}({},{basis},{},ofport,",
                table_name(HASH_FIELDS, *fields),
                table_name(BD_ALGORITHMS, *algorithm)
            );
            if let Some(d) = dst {
                let _ = write!(s, "{},", subfield(d));
            }
            let m: Vec<String> = members.iter().map(u16::to_string).collect();
            let _ = write!(s, "members:{})", m.join(","));
        }
        Raw::Multipath { fields, basis, algorithm, max_link, arg, dst } => {
            let _ = write!(
                s,
                "multipath({},{basis},{},{},{arg},{})",
                table_name(HASH_FIELDS, *fields),
                table_name(MP_ALGORITHMS, *algorithm),
                u32::from(*max_link) + 1,
                subfield(dst)
            );
        }
        Raw::Push(sf) => {
            let _ = write!(s, "push:{}", subfield(sf));
        }
        Raw::Pop(sf) => {
            let _ = write!(s, "pop:{}", subfield(sf));
        }
        Raw::Sample { probability, collector_set_id, obs_domain_id, obs_point_id, port, direction } => {
            let _ = write!(
                s,
                "sample(probability={probability},collector_set_id={collector_set_id},obs_domain_id={obs_domain_id},obs_point_id={obs_point_id}"
            );
            if let Some(p) = port {
                let _ = write!(s, ",sampling_port={}", port_name(port16(*p)));
            }
            match direction {
                1 => s.push_str(",ingress"),
                2 => s.push_str(",egress"),
                _ => {}
            }
            s.push(')');
        }
        Raw::Clone(actions) => {
            s.push_str("clone(");
            format_action_list(s, actions);
            s.push(')');
        }
        Raw::ResubmitCt { in_port, table } => {
            let p = port16(*in_port);
            let port = if p == OFPP_IN_PORT { String::new() } else { port_name(p) };
            let table = if *table == 0xff { String::new() } else { table.to_string() };
            let _ = write!(s, "resubmit({port},{table},ct)");
        }
        Raw::Encap { packet_type } => match ENCAP_TYPES.iter().find(|(_, t)| t == packet_type) {
            Some((n, _)) => {
                let _ = write!(s, "encap({n})");
            }
            None => {
                let _ = write!(s, "encap(packet_type(ns={},type={:#x}))", packet_type >> 16, packet_type & 0xffff);
            }
        },
        Raw::Decap { packet_type } => {
            if *packet_type == DECAP_NEXT {
                s.push_str("decap()");
            } else {
                let _ = write!(s, "decap(packet_type(ns={},type={:#x}))", packet_type >> 16, packet_type & 0xffff);
            }
        }
        Raw::CheckPktLarger { pkt_len, dst } => {
            let _ = write!(s, "check_pkt_larger({pkt_len})->{}", subfield(dst));
        }
    }
}
