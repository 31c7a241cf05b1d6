//! Messages to text, in the words of `ovs-ofctl ofp-print`.

use std::fmt::Write as _;

use super::detail;
use super::error::{error_name, experimenter_error_name};
use super::flow::{duration, format_flow_mod, format_flow_stats};
use super::names::{port_name, reason_name};
use super::print_action::format_actions;
use super::print_match::{format_match, format_match_into};
use crate::openflow::action::OFPP_ANY;
use crate::openflow::message::*;
use crate::openflow::multipart::{MultipartReplyBody, MultipartRequestBody};

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
