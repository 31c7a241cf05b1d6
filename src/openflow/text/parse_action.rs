//! Action text to values: every action spelling of `ovs-actions(7)` that
//! OpenFlow 1.3 can carry.

use super::lex::{num, split_action, split_top};
use super::names::{controller_reason, parse_port};
use super::parse_match::{parse_subfield, parse_value};
use crate::openflow::action::*;
use crate::openflow::error::{Error, Result};
use crate::openflow::oxm::{Field, OxmField, be_to_u128, u128_to_be};

/// Parses a comma-separated action list.
pub fn parse_actions(s: &str) -> Result<Vec<Action>> {
    let mut out = Vec::new();
    for tok in split_top(s, &[',']) {
        out.extend(parse_action(tok)?);
    }
    Ok(out)
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

/// What an action's parse needs to know about the flow's match.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Ctx {
    pub(super) has_vlan: bool,
}

fn parse_action(tok: &str) -> Result<Vec<Action>> {
    parse_action_ctx(tok, Ctx::default())
}

pub(super) fn parse_action_ctx(tok: &str, ctx: Ctx) -> Result<Vec<Action>> {
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
