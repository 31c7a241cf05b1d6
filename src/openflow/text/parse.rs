//! Flow text to values: the flow's own keywords, its match and its
//! instructions.

use super::lex::{num, split_action, split_mask, split_top};
use super::names::parse_port;
use super::parse_action::{Ctx, parse_action_ctx, parse_actions};
use super::parse_match::MatchBuilder;
use crate::openflow::action::Action;
use crate::openflow::error::Result;
use crate::openflow::instruction::Instruction;
use crate::openflow::message::{
    FlowMod, OFPFF_CHECK_OVERLAP, OFPFF_NO_BYT_COUNTS, OFPFF_NO_PKT_COUNTS, OFPFF_RESET_COUNTS, OFPFF_SEND_FLOW_REM,
};
use crate::openflow::oxm::{Field, Match};

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
        let ip_proto = fm.r#match.get(Field::IpProto).map(|f| f.value_u128() as u8);
        fm.instructions = parse_instructions(a, Ctx { has_vlan, ip_proto })?;
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

/// Parses the text after `actions=` into instructions, in the order OVS
/// requires (meter, apply, clear, write, write_metadata, goto_table).
fn parse_instructions(s: &str, mut ctx: Ctx) -> Result<Vec<Instruction>> {
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
            _ => {
                let acts = parse_action_ctx(tok, ctx)?;
                // A tag pushed or popped here is what later actions see.
                for a in &acts {
                    match a {
                        Action::PushVlan(_) => ctx.has_vlan = true,
                        Action::PopVlan => ctx.has_vlan = false,
                        _ => {}
                    }
                }
                apply.extend(acts);
            }
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
