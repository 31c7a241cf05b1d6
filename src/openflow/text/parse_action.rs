//! Action text to values: every action spelling of `ovs-actions(7)` that
//! OpenFlow 1.3 can carry.

use super::lex::{num, split_action, split_top};
use super::names::{controller_reason, parse_port};
use super::nx_raw::{BD_ALGORITHMS, Controller2, DECAP_NEXT, ENCAP_TYPES, HASH_FIELDS, MP_ALGORITHMS, Raw};
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
    /// `ip_proto` of the match, for `mod_tp_src`/`mod_tp_dst`.
    pub(super) ip_proto: Option<u8>,
}

fn parse_action(tok: &str) -> Result<Vec<Action>> {
    parse_action_ctx(tok, Ctx::default())
}

pub(super) fn parse_action_ctx(tok: &str, ctx: Ctx) -> Result<Vec<Action>> {
    // `check_pkt_larger(LEN)->DST` is the one spelling with text after its parenthesis.
    if let Some(rest) = tok.trim().strip_prefix("check_pkt_larger(") {
        let (len, dst) =
            rest.split_once(")->").ok_or_else(|| Error::syntax(format!("check_pkt_larger(LEN)->DST: {tok}")))?;
        let dst = parse_subfield(dst)?;
        if dst.n_bits != 1 {
            return Err(Error::value("check_pkt_larger", "the destination must be a single bit"));
        }
        return Ok(vec![Raw::CheckPktLarger { pkt_len: num(len, "check_pkt_larger length")?, dst }.into_action()]);
    }
    let (name, arg) = split_action(tok);
    let arg_s = arg.unwrap_or("");
    let one = |a: Action| Ok(vec![a]);
    match name.to_ascii_lowercase().as_str() {
        "drop" => Ok(vec![]),
        "output" if tok.contains('(') && arg_s.trim_start().starts_with("port=") => parse_output_trunc(arg_s),
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
            // userdata, pause and meter_id need NXAST_CONTROLLER2, as ovs-ofctl writes them.
            let (mut userdata, mut pause, mut meter_id) = (None, false, None);
            if tok.contains('(') {
                for kv in split_top(arg_s, &[',']) {
                    match kv.split_once('=') {
                        Some(("max_len", v)) => max_len = num(v, "max_len")?,
                        Some(("reason", v)) => reason = controller_reason(v)?,
                        Some(("id", v)) => id = num(v, "controller id")?,
                        Some(("userdata", v)) => userdata = Some(hex_bytes(v, "userdata")?),
                        Some(("meter_id", v)) => meter_id = Some(num(v, "meter_id")?),
                        None if kv == "pause" => pause = true,
                        _ => return Err(Error::syntax(format!("controller option {kv:?}"))),
                    }
                }
            } else if let Some(a) = arg {
                max_len = num(a, "max_len")?;
            }
            if userdata.is_some() || pause || meter_id.is_some() {
                let c = Controller2 { max_len, controller_id: id, reason, userdata, pause, meter_id };
                return one(Raw::Controller2(c).into_action());
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
        "mod_vlan_pcp" => {
            // Like mod_vlan_vid: OVS pushes a tag first when the packet may have none.
            let set = set_field_action(Field::VlanPcp, arg_s)?;
            if ctx.has_vlan { one(set) } else { Ok(vec![Action::PushVlan(0x8100), set]) }
        }
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
                match parts.get(2) {
                    None => one(Action::ResubmitTable { in_port: port, table }),
                    Some(&"ct") if parts.len() == 3 => one(Raw::ResubmitCt { in_port: port, table }.into_action()),
                    Some(x) => Err(Error::syntax(format!("resubmit option {x:?}"))),
                }
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
        "enqueue" => {
            // OpenFlow 1.3 has no enqueue: ovs-ofctl writes set_queue, output, pop_queue.
            let (p, q) = arg_s
                .split_once([',', ':'])
                .ok_or_else(|| Error::syntax(format!("enqueue needs PORT,QUEUE: {tok}")))?;
            let output = Action::Output { port: parse_port(p.trim())?, max_len: OFPCML_NO_BUFFER };
            Ok(vec![Action::SetQueue(num(q.trim(), "queue")?), output, Action::PopQueue])
        }
        "mod_nw_tos" => {
            let tos: u8 = num(arg_s, "mod_nw_tos")?;
            if tos & 3 != 0 {
                return Err(Error::value("mod_nw_tos", format!("{arg_s}: the low 2 bits (ECN) must be zero")));
            }
            one(Action::SetField(OxmField::exact(Field::IpDscp, &[tos >> 2])))
        }
        "mod_nw_ecn" => {
            let ecn: u8 = num(arg_s, "mod_nw_ecn")?;
            if ecn > 3 {
                return Err(Error::value("mod_nw_ecn", format!("{arg_s} is more than 2 bits")));
            }
            one(Action::SetField(OxmField::exact(Field::IpEcn, &[ecn])))
        }
        "mod_nw_ttl" => one(Action::SetNwTtl(num(arg_s, "ttl")?)),
        "mod_tp_src" | "mod_tp_dst" => {
            let src = name.eq_ignore_ascii_case("mod_tp_src");
            let field = match (ctx.ip_proto, src) {
                (Some(6), true) => Field::TcpSrc,
                (Some(6), false) => Field::TcpDst,
                (Some(17), true) => Field::UdpSrc,
                (Some(17), false) => Field::UdpDst,
                (Some(132), true) => Field::SctpSrc,
                (Some(132), false) => Field::SctpDst,
                _ => {
                    return Err(Error::BadPrerequisite {
                        field: name.to_string(),
                        prereq: "a tcp, udp or sctp match".to_string(),
                    });
                }
            };
            one(set_field_action(field, arg_s)?)
        }
        "set_mpls_label" => one(set_field_action(Field::MplsLabel, arg_s)?),
        "set_mpls_tc" => one(set_field_action(Field::MplsTc, arg_s)?),
        "push" | "pop" => {
            let sf = parse_subfield(arg_s)?;
            one(if name.eq_ignore_ascii_case("push") { Raw::Push(sf) } else { Raw::Pop(sf) }.into_action())
        }
        "clone" => one(Raw::Clone(parse_actions(arg_s)?).into_action()),
        "multipath" => parse_multipath(arg_s),
        "bundle" => parse_bundle(arg_s, false),
        "bundle_load" => parse_bundle(arg_s, true),
        "sample" => parse_sample(arg_s),
        "encap" => match ENCAP_TYPES.iter().find(|(n, _)| *n == arg_s.trim()) {
            Some((_, t)) => one(Raw::Encap { packet_type: *t }.into_action()),
            None if arg_s.trim_start().starts_with("nsh") => Err(Error::Unsupported {
                what: "encap(nsh(...))".into(),
                why: "the codec has no NSH fields or properties",
            }),
            None => Err(Error::value("encap", arg_s.to_string())),
        },
        "decap" => {
            let t = arg_s.trim();
            if t.is_empty() {
                return one(Raw::Decap { packet_type: DECAP_NEXT }.into_action());
            }
            let inner = t
                .strip_prefix("packet_type(")
                .and_then(|x| x.strip_suffix(')'))
                .ok_or_else(|| Error::syntax(format!("decap(packet_type(ns=N,type=T)): {tok}")))?;
            let (mut ns, mut ty) = (0u32, 0u32);
            for kv in split_top(inner, &[',']) {
                match kv.split_once('=') {
                    Some(("ns", v)) => ns = num::<u16>(v, "packet_type ns")?.into(),
                    Some(("type", v)) => ty = num::<u16>(v, "packet_type type")?.into(),
                    _ => return Err(Error::syntax(format!("packet_type option {kv:?}"))),
                }
            }
            one(Raw::Decap { packet_type: (ns << 16) | ty }.into_action())
        }
        "delete_field" => Err(Error::Unsupported {
            what: "delete_field".into(),
            why: "it deletes tun_metadata fields, which the codec does not have",
        }),
        "dec_nsh_ttl" => Err(Error::Unsupported {
            what: "dec_nsh_ttl".into(),
            why: "it needs an NSH packet_type match, which the codec does not have",
        }),
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

/// `01.02.03` or `010203`: bytes in hex, dots optional.
fn hex_bytes(s: &str, what: &'static str) -> Result<Vec<u8>> {
    let digits: String = s.chars().filter(|c| *c != '.').collect();
    if digits.len() % 2 != 0 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::value(what, s.to_string()));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).map_err(|_| Error::value(what, s.to_string())))
        .collect()
}

fn index_of(table: &[&str], s: &str, what: &'static str) -> Result<u16> {
    table.iter().position(|n| *n == s.trim()).map(|i| i as u16).ok_or_else(|| Error::value(what, s.to_string()))
}

/// `output(port=P,max_len=N)`: truncating output (NXAST_OUTPUT_TRUNC), or
/// output to a register with a length.
fn parse_output_trunc(s: &str) -> Result<Vec<Action>> {
    let (mut port, mut max_len) = (None, None);
    for kv in split_top(s, &[',']) {
        match kv.split_once('=') {
            Some(("port", v)) => port = Some(v.trim()),
            Some(("max_len", v)) => max_len = Some(v.trim()),
            _ => return Err(Error::syntax(format!("output option {kv:?}"))),
        }
    }
    let port = port.ok_or_else(|| Error::syntax("output(...) needs port="))?;
    if port.contains('[') {
        let max_len = max_len.map(|m| num(m, "max_len")).transpose()?.unwrap_or(0xffff);
        return Ok(vec![Action::OutputReg { src: parse_subfield(port)?, max_len }]);
    }
    let max_len = max_len.ok_or_else(|| Error::syntax("output(port=...) needs max_len="))?;
    let p = parse_port(port)?;
    let p16 = if p >= 0xffff_ff00 {
        (p & 0xffff) as u16
    } else {
        u16::try_from(p).map_err(|_| Error::value("port", port.to_string()))?
    };
    Ok(vec![Raw::OutputTrunc { port: p16, max_len: num(max_len, "max_len")? }.into_action()])
}

/// `multipath(fields,basis,algorithm,n_links,arg,dst)`.
fn parse_multipath(s: &str) -> Result<Vec<Action>> {
    let a = split_top(s, &[',']);
    let [fields, basis, algorithm, n_links, arg, dst] = a.as_slice() else {
        return Err(Error::syntax(format!("multipath(fields,basis,algorithm,n_links,arg,dst): {s}")));
    };
    let n_links: u32 = num(n_links, "multipath n_links")?;
    if !(1..=65536).contains(&n_links) {
        return Err(Error::value("multipath n_links", n_links.to_string()));
    }
    let dst = parse_subfield(dst)?;
    Ok(vec![
        Raw::Multipath {
            fields: index_of(HASH_FIELDS, fields, "multipath fields")?,
            basis: num(basis, "multipath basis")?,
            algorithm: index_of(MP_ALGORITHMS, algorithm, "multipath algorithm")?,
            max_link: (n_links - 1) as u16,
            arg: num(arg, "multipath arg")?,
            dst,
        }
        .into_action(),
    ])
}

/// `bundle(fields,basis,algorithm,ofport,members:P,...)` and
/// `bundle_load(fields,basis,algorithm,ofport,dst,members:P,...)`.
fn parse_bundle(s: &str, load: bool) -> Result<Vec<Action>> {
    let a = split_top(s, &[',']);
    let fixed = if load { 5 } else { 4 };
    if a.len() <= fixed {
        return Err(Error::syntax(format!("bundle needs fields,basis,algorithm,ofport,[dst,]members:...: {s}")));
    }
    if a[3] != "ofport" {
        return Err(Error::value("bundle member type", a[3].to_string()));
    }
    let dst = if load { Some(parse_subfield(a[4])?) } else { None };
    let first = a[fixed]
        .strip_prefix("members:")
        .or_else(|| a[fixed].strip_prefix("slaves:"))
        .ok_or_else(|| Error::syntax(format!("bundle needs members:...: {s}")))?;
    let members = std::iter::once(first)
        .chain(a[fixed + 1..].iter().copied())
        .map(|p| num(p, "bundle member"))
        .collect::<Result<Vec<u16>>>()?;
    Ok(vec![
        Raw::Bundle {
            fields: index_of(HASH_FIELDS, a[0], "bundle fields")?,
            basis: num(a[1], "bundle basis")?,
            algorithm: index_of(BD_ALGORITHMS, a[2], "bundle algorithm")?,
            dst,
            members,
        }
        .into_action(),
    ])
}

/// `sample(probability=N,collector_set_id=N,obs_domain_id=N,obs_point_id=N[,sampling_port=P][,ingress|egress])`.
fn parse_sample(s: &str) -> Result<Vec<Action>> {
    let (mut probability, mut cs, mut dom, mut point, mut port, mut direction) = (None, 0, 0, 0, None, 0u8);
    for kv in split_top(s, &[',']) {
        match kv.split_once('=') {
            Some(("probability", v)) => probability = Some(num::<u16>(v, "probability")?),
            Some(("collector_set_id", v)) => cs = num(v, "collector_set_id")?,
            Some(("obs_domain_id", v)) => dom = num(v, "obs_domain_id")?,
            Some(("obs_point_id", v)) => point = num(v, "obs_point_id")?,
            Some(("sampling_port", v)) => {
                let p = parse_port(v)?;
                port = Some(if p >= 0xffff_ff00 { (p & 0xffff) as u16 } else { num(v, "sampling_port")? });
            }
            None if kv == "ingress" => direction = 1,
            None if kv == "egress" => direction = 2,
            _ => return Err(Error::syntax(format!("sample option {kv:?}"))),
        }
    }
    let probability =
        probability.filter(|p| *p != 0).ok_or_else(|| Error::value("sample", "probability must be 1 to 65535"))?;
    Ok(vec![
        Raw::Sample { probability, collector_set_id: cs, obs_domain_id: dom, obs_point_id: point, port, direction }
            .into_action(),
    ])
}

#[cfg(test)]
mod tests {
    //! Each spelling against the action bytes `ovs-ofctl -O OpenFlow13
    //! parse-flow` (Open vSwitch 3.1) writes for it, and back to text.

    use super::super::parse::parse_flow;
    use super::super::print_action::format_actions;
    use crate::openflow::action::Action;
    use crate::openflow::error::Error;
    use crate::openflow::instruction::Instruction;

    /// The apply-actions of `flow`, encoded.
    fn action_bytes(flow: &str) -> Vec<u8> {
        let fm = parse_flow(flow).unwrap_or_else(|e| panic!("{flow}: {e}"));
        let Some(Instruction::ApplyActions(a)) = fm.instructions.first() else { panic!("{flow}: no apply-actions") };
        let mut buf = Vec::new();
        Action::emit_list(a, &mut buf);
        buf
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
    }

    /// `flow` encodes to `hex` and its actions print as `printed`.
    fn check(flow: &str, hex: &str, printed: &str) {
        assert_eq!(action_bytes(flow), unhex(hex), "{flow}");
        let fm = parse_flow(flow).expect("parse");
        let Some(Instruction::ApplyActions(a)) = fm.instructions.first() else { panic!("no apply-actions") };
        assert_eq!(format_actions(a), printed, "{flow}");
        // And the bytes decode back to the same actions.
        assert_eq!(&Action::parse_list(&unhex(hex)).expect("decode"), a, "{flow}");
    }

    #[test]
    fn legacy_set_field_spellings() {
        check("ip,actions=mod_nw_tos:0x20", "00190010800010010800000000000000", "set_field:8->ip_dscp");
        check("ip,actions=mod_nw_ecn:2", "00190010800012010200000000000000", "set_field:2->nw_ecn");
        check("tcp,actions=mod_tp_src:1000", "0019001080001a0203e8000000000000", "set_field:1000->tcp_src");
        check("udp,actions=mod_tp_dst:53", "00190010800020020035000000000000", "set_field:53->udp_dst");
        check("sctp,actions=mod_tp_dst:2000", "001900108000240207d0000000000000", "set_field:2000->sctp_dst");
        check("mpls,actions=set_mpls_label:5", "00190010800044040000000500000000", "set_field:5->mpls_label");
        check("mpls,actions=set_mpls_tc:3", "00190010800046010300000000000000", "set_field:3->mpls_tc");
        check("ip,actions=mod_nw_ttl:5", "0017000805000000", "mod_nw_ttl:5");
        check(
            "actions=mod_vlan_pcp:3",
            "00110008810000000019001080000e010300000000000000",
            "push_vlan:0x8100,set_field:3->vlan_pcp",
        );
    }

    #[test]
    fn legacy_spellings_refuse_bad_values() {
        assert!(matches!(parse_flow("ip,actions=mod_nw_tos:0x21"), Err(Error::BadValue { .. })));
        assert!(matches!(parse_flow("ip,actions=mod_nw_ecn:4"), Err(Error::BadValue { .. })));
        assert!(matches!(parse_flow("ip,actions=mod_tp_src:1"), Err(Error::BadPrerequisite { .. })));
    }

    #[test]
    fn enqueue_is_set_queue_output_pop_queue() {
        let want = "00150008000000020000001000000001ffff000000000000ffff0010000023200005000000000000";
        check("actions=enqueue(1,2)", want, "set_queue:2,output:1,pop_queue");
        check("actions=enqueue:1:2", want, "set_queue:2,output:1,pop_queue");
    }

    #[test]
    fn output_with_truncation() {
        check("actions=output(port=1,max_len=100)", "ffff0010000023200027000100000064", "output(port=1,max_len=100)");
    }

    #[test]
    fn controller_options_of_controller2() {
        check(
            "actions=controller(userdata=01.02.03)",
            "ffff00180000232000250000000000000003000701020300",
            "controller(userdata=01.02.03)",
        );
        check("actions=controller(pause)", "ffff00180000232000250000000000000004000400000000", "controller(pause)");
        check(
            "actions=controller(meter_id=5)",
            "ffff00180000232000250000000000000005000800000005",
            "controller(meter_id=5)",
        );
        check(
            "actions=controller(reason=invalid_ttl,max_len=200,id=3,userdata=01,pause,meter_id=7)",
            "ffff00400000232000250000000000000000000800c80000000100080003000000020005020000000003000501000000\
             00040004000000000005000800000007",
            "controller(reason=invalid_ttl,max_len=200,id=3,userdata=01,pause,meter_id=7)",
        );
    }

    #[test]
    fn bundle_and_bundle_load() {
        check(
            "actions=bundle(eth_src,0,hrw,ofport,members:4,8)",
            "ffff002800002320000c000100000000000000020002000000000000000000000004000800000000",
            "bundle(eth_src,0,hrw,ofport,members:4,8)",
        );
        check(
            "actions=bundle_load(eth_src,0,hrw,ofport,NXM_NX_REG0[],members:4,8)",
            "ffff002800002320000d000100000000000000020002001f00010004000000000004000800000000",
            "bundle_load(eth_src,0,hrw,ofport,NXM_NX_REG0[],members:4,8)",
        );
    }

    #[test]
    fn multipath() {
        check(
            "actions=multipath(eth_src,50,hrw,12,0,NXM_NX_REG0[0..3])",
            "ffff002000002320000a0000003200000002000b000000000000000300010004",
            "multipath(eth_src,50,hrw,12,0,NXM_NX_REG0[0..3])",
        );
    }

    #[test]
    fn encap_and_decap() {
        check("actions=encap(ethernet)", "ffff001000002320002e000000000000", "encap(ethernet)");
        check("actions=encap(mpls)", "ffff001000002320002e000000018847", "encap(mpls)");
        check("actions=encap(mpls_mc)", "ffff001000002320002e000000018848", "encap(mpls_mc)");
        check("actions=decap", "ffff001000002320002f00000000fffe", "decap()");
        check(
            "actions=decap(packet_type(ns=0,type=0x800))",
            "ffff001000002320002f000000000800",
            "decap(packet_type(ns=0,type=0x800))",
        );
    }

    #[test]
    fn check_pkt_larger() {
        check(
            "actions=check_pkt_larger(1500)->NXM_NX_REG0[0]",
            "ffff001800002320003105dc000000010004000000000000",
            "check_pkt_larger(1500)->NXM_NX_REG0[0]",
        );
        check(
            "actions=check_pkt_larger(1500)->NXM_NX_REG0[3]",
            "ffff001800002320003105dc000300010004000000000000",
            "check_pkt_larger(1500)->NXM_NX_REG0[3]",
        );
        assert!(parse_flow("actions=check_pkt_larger(1500)->NXM_NX_REG0[0..1]").is_err());
    }

    #[test]
    fn clone_push_pop() {
        check(
            "actions=clone(output:1,output:2)",
            "ffff003000002320002a0000000000000000001000000001000000000000000000000010000000020000000000000000",
            "clone(output:1,output:2)",
        );
        check("actions=push:NXM_NX_REG0[]", "ffff001800002320001b0000000100040020000000000000", "push:NXM_NX_REG0[]");
        check(
            "actions=pop:NXM_NX_REG1[0..7]",
            "ffff001800002320001c0000000102040008000000000000",
            "pop:NXM_NX_REG1[0..7]",
        );
    }

    #[test]
    fn sample_variants() {
        let base = "probability=100,collector_set_id=1,obs_domain_id=2,obs_point_id=3";
        check(
            &format!("actions=sample({base})"),
            "ffff001800002320001d0064000000010000000200000003",
            &format!("sample({base})"),
        );
        check(
            &format!("actions=sample({base},sampling_port=5)"),
            "ffff002000002320002600640000000100000002000000030005000000000000",
            &format!("sample({base},sampling_port=5)"),
        );
        check(
            &format!("actions=sample({base},sampling_port=5,ingress)"),
            "ffff002000002320002900640000000100000002000000030005010000000000",
            &format!("sample({base},sampling_port=5,ingress)"),
        );
        check(
            &format!("actions=sample({base},egress)"),
            "ffff00200000232000290064000000010000000200000003ffff020000000000",
            &format!("sample({base},egress)"),
        );
    }

    #[test]
    fn resubmit_with_ct() {
        check("ct_state=+new+trk,ip,actions=resubmit(,5,ct)", "ffff001000002320002cfff805000000", "resubmit(,5,ct)");
        assert!(parse_flow("actions=resubmit(,5,bogus)").is_err());
    }

    #[test]
    fn refused_spellings_say_why_in_one_line() {
        for flow in ["actions=dec_nsh_ttl", "actions=delete_field:tun_metadata0", "actions=encap(nsh(md_type=1))"] {
            let e = parse_flow(flow).expect_err(flow);
            assert!(matches!(e, Error::Unsupported { .. }), "{flow}: {e:?}");
            assert!(!e.to_string().contains('\n'));
        }
    }
}
