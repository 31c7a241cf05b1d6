//! Flows to text: `dump-flows` lines and the FLOW_MOD part of `ofp-print`.

use std::fmt::Write as _;

use super::names::port_name;
use super::print_action::format_instructions;
use super::print_match::format_match_into;
use crate::openflow::action::OFPP_ANY;
use crate::openflow::instruction::Instruction;
use crate::openflow::message::*;
use crate::openflow::multipart::FlowStats;
use crate::openflow::oxm::Match;

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

pub(super) fn format_flow_mod(s: &mut String, fm: &FlowMod) {
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
