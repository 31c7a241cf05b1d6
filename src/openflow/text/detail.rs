//! The detail lines `ovs-ofctl ofp-print` prints under a message's first
//! line: ports, switch features, groups, meters, statistics, async
//! configuration, packet summaries and hex dumps. Pure text, no I/O.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::openflow::action::OFPP_ANY;
use crate::openflow::message::*;
use crate::openflow::multipart::{GroupDesc, GroupStats, MeterConfig, MeterStats, PortStats, TableStats};

use super::flow::duration;
use super::names::port_name;
use super::print_action::format_actions;

/// Names bits as `ofp_print_bit_names` does: named bits in order, then the
/// rest in hex; `0` when no bit is set.
fn bit_names(bits: u32, name: impl Fn(u32) -> Option<&'static str>) -> String {
    if bits == 0 {
        return "0".into();
    }
    let mut v: Vec<String> = Vec::new();
    let mut rest = bits;
    for i in 0..32 {
        let bit = 1u32 << i;
        if bits & bit != 0 {
            if let Some(n) = name(bit) {
                v.push(n.into());
                rest &= !bit;
            }
        }
    }
    if rest != 0 {
        v.push(format!("{rest:#x}"));
    }
    v.join(" ")
}

fn port_config_name(bit: u32) -> Option<&'static str> {
    Some(match bit {
        0x1 => "PORT_DOWN",
        0x2 => "NO_STP",
        0x4 => "NO_RECV",
        0x8 => "NO_RECV_STP",
        0x10 => "NO_FLOOD",
        0x20 => "NO_FWD",
        0x40 => "NO_PACKET_IN",
        _ => return None,
    })
}

/// OpenFlow 1.1+ port config bits OVS keeps (`OFPPC11_ALL`).
const OFPPC11_ALL: u32 = 0x65;
/// OpenFlow 1.1+ port state bits OVS keeps (`OFPPS11_ALL`).
const OFPPS11_ALL: u32 = 0x7;

fn port_state_name(bit: u32) -> Option<&'static str> {
    Some(match bit {
        0x1 => "LINK_DOWN",
        0x2 => "BLOCKED",
        0x4 => "LIVE",
        _ => return None,
    })
}

fn feature_name(bit: u32) -> Option<&'static str> {
    const NAMES: [&str; 16] = [
        "10MB-HD",
        "10MB-FD",
        "100MB-HD",
        "100MB-FD",
        "1GB-HD",
        "1GB-FD",
        "10GB-FD",
        "40GB-FD",
        "100GB-FD",
        "1TB-FD",
        "OTHER",
        "COPPER",
        "FIBER",
        "AUTO_NEG",
        "AUTO_PAUSE",
        "AUTO_PAUSE_ASYM",
    ];
    NAMES.get(bit.trailing_zeros() as usize).copied()
}

/// `ofputil_phy_port_format`: one port and its indented detail lines.
pub(super) fn phy_port(s: &mut String, p: &Port) {
    // The name ends at the first unprintable byte, as OVS cuts it.
    let name: String = p.name.0.iter().take(15).take_while(|b| (0x20..0x7f).contains(*b)).map(|&b| b as char).collect();
    let _ = writeln!(s, " {}({name}): addr:{}", port_name(p.port_no), mac(&p.hw_addr));
    let _ = writeln!(s, "     config:     {}", bit_names(p.config & OFPPC11_ALL, port_config_name));
    let _ = writeln!(s, "     state:      {}", bit_names(p.state & OFPPS11_ALL, port_state_name));
    for (label, f) in [
        ("current:    ", p.curr),
        ("advertised: ", p.advertised),
        ("supported:  ", p.supported),
        ("peer:       ", p.peer),
    ] {
        let f = f & 0xffff;
        if f != 0 {
            let _ = writeln!(s, "     {label}{}", bit_names(f, feature_name));
        }
    }
    let _ = writeln!(s, "     speed: {} Mbps now, {} Mbps max", p.curr_speed / 1000, p.max_speed / 1000);
}

/// Port descriptions sorted as OVS sorts them (by 16-bit port number).
pub(super) fn phy_ports(s: &mut String, ports: &[Port]) {
    let key = |p: &Port| -> u16 {
        if p.port_no >= 0xffff_ff00 { (p.port_no - 0xffff_0000) as u16 } else { p.port_no as u16 }
    };
    let mut v: Vec<&Port> = ports.iter().collect();
    v.sort_by_key(|p| key(p));
    for p in v {
        phy_port(s, p);
    }
}

pub(super) fn mac(a: &[u8; 6]) -> String {
    a.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

pub(super) fn port_status(s: &mut String, ps: &PortStatus) {
    match ps.reason {
        0 => s.push_str(" ADD:"),
        1 => s.push_str(" DEL:"),
        2 => s.push_str(" MOD:"),
        _ => {}
    }
    phy_port(s, &ps.desc);
}

pub(super) fn port_mod(s: &mut String, pm: &PortMod) {
    let _ = writeln!(s, " port: {}: addr:{}", port_name(pm.port_no), mac(&pm.hw_addr));
    let _ = writeln!(s, "     config: {}", bit_names(pm.config & OFPPC11_ALL, port_config_name));
    let _ = writeln!(s, "     mask:   {}", bit_names(pm.mask & OFPPC11_ALL, port_config_name));
    let adv = pm.advertise & 0xffff;
    if adv != 0 {
        let _ = writeln!(s, "     advertise: {}", bit_names(adv, feature_name));
    } else {
        s.push_str("     advertise: UNCHANGED\n");
    }
}

fn capability_name(bit: u32) -> Option<&'static str> {
    Some(match bit {
        0x1 => "FLOW_STATS",
        0x2 => "TABLE_STATS",
        0x4 => "PORT_STATS",
        0x10 => "GROUP_STATS",
        0x20 => "IP_REASM",
        0x40 => "QUEUE_STATS",
        0x80 => "ARP_MATCH_IP",
        0x8 => "STP",
        0x100 => "PORT_BLOCKED",
        0x200 => "BUNDLES",
        0x400 => "FLOW_MONITORING",
        _ => return None,
    })
}

pub(super) fn features_reply(s: &mut String, f: &FeaturesReply) {
    let _ = write!(s, " dpid:{:016x}\nn_tables:{}, n_buffers:{}", f.datapath_id, f.n_tables, f.n_buffers);
    if f.auxiliary_id != 0 {
        let _ = write!(s, ", auxiliary_id:{}", f.auxiliary_id);
    }
    // OpenFlow 1.3 keeps the common bits and PORT_BLOCKED; its GROUP_STATS
    // bit (3) is OVS's bit 4.
    let mut caps = f.capabilities & (0x67 | 0x100);
    if f.capabilities & 0x8 != 0 {
        caps |= 0x10;
    }
    let _ = writeln!(s, "\ncapabilities: {}", bit_names(caps, capability_name));
}

/// `ofputil_format_group` for group ids.
pub(super) fn group_name(g: u32) -> String {
    match g {
        0xffff_fffc => "ALL".into(),
        0xffff_ffff => "ANY".into(),
        g => g.to_string(),
    }
}

fn group(s: &mut String, group_id: u32, group_type: u8, buckets: &[Bucket]) {
    const TYPES: [&str; 5] = ["all", "select", "indirect", "ff", "unknown"];
    let _ = write!(s, "group_id={group_id},type={}", TYPES[usize::from(group_type.min(4))]);
    s.push(',');
    for b in buckets {
        s.push_str("bucket=");
        let default_weight = if group_type == 1 { 1 } else { 0 };
        if b.weight != default_weight {
            let _ = write!(s, "weight:{},", b.weight);
        }
        if b.watch_port != OFPP_ANY {
            let _ = write!(s, "watch_port:{},", port_name(b.watch_port));
        }
        if b.watch_group != 0xffff_ffff {
            let _ = write!(s, "watch_group:{},", b.watch_group);
        }
        let _ = write!(s, "actions={},", format_actions(&b.actions));
    }
    if s.ends_with(',') {
        s.pop();
    }
}

pub(super) fn group_mod(s: &mut String, g: &GroupMod) {
    s.push_str("\n ");
    match g.command {
        0 => s.push_str("ADD"),
        1 => s.push_str("MOD"),
        2 => s.push_str("DEL"),
        c => {
            let _ = write!(s, "cmd:{c}");
        }
    }
    s.push(' ');
    group(s, g.group_id, g.group_type, &g.buckets);
}

pub(super) fn group_desc(s: &mut String, v: &[GroupDesc]) {
    for g in v {
        s.push_str("\n ");
        group(s, g.group_id, g.group_type, &g.buckets);
    }
}

pub(super) fn group_stats(s: &mut String, v: &[GroupStats]) {
    for g in v {
        let _ = write!(s, "\n group_id={},", g.group_id);
        if g.duration_sec != u32::MAX {
            let _ = write!(s, "duration={}s,", duration(g.duration_sec, g.duration_nsec));
        }
        let _ = write!(s, "ref_count={},packet_count={},byte_count={}", g.ref_count, g.packet_count, g.byte_count);
        for (i, (p, b)) in g.bucket_stats.iter().enumerate() {
            if *p != u64::MAX {
                let _ = write!(s, ",bucket{i}:packet_count={p},byte_count={b}");
            }
        }
    }
}

pub(super) fn meter_id(m: u32, sep: char) -> String {
    match m {
        0..=0xffff_0000 => format!("meter{sep}{m}"),
        0xffff_fffd => format!("meter{sep}slowpath"),
        0xffff_fffe => format!("meter{sep}controller"),
        0xffff_ffff => format!("meter{sep}all"),
        _ => format!("meter{sep}unknown"),
    }
}

fn meter_config(s: &mut String, flags: u16, id: u32, bands: &[MeterBand]) {
    let _ = write!(s, "{} ", meter_id(id, '='));
    for (bit, name) in [(1, "kbps"), (2, "pktps"), (4, "burst"), (8, "stats")] {
        if flags & bit != 0 {
            let _ = write!(s, "{name} ");
        }
    }
    let rest = flags & !0xf;
    if rest != 0 {
        let _ = write!(s, "flags:{rest:#x} ");
    }
    s.push_str("bands=");
    for b in bands {
        s.push_str("\ntype=");
        match b.band_type {
            1 => s.push_str("drop"),
            2 => s.push_str("dscp_remark"),
            t => {
                let _ = write!(s, "{t}");
            }
        }
        let _ = write!(s, " rate={}", b.rate);
        if flags & 4 != 0 {
            let _ = write!(s, " burst_size={}", b.burst_size);
        }
        if b.band_type == 2 {
            let _ = write!(s, " prec_level={}", b.data.first().copied().unwrap_or(0));
        }
    }
    s.push('\n');
}

pub(super) fn meter_mod(s: &mut String, m: &MeterMod) {
    match m.command {
        0 => s.push_str(" ADD "),
        1 => s.push_str(" MOD "),
        2 => s.push_str(" DEL "),
        c => {
            let _ = write!(s, " cmd:{c} ");
        }
    }
    meter_config(s, m.flags, m.meter_id, &m.bands);
}

pub(super) fn meter_configs(s: &mut String, v: &[MeterConfig]) {
    for m in v {
        s.push('\n');
        meter_config(s, m.flags, m.meter_id, &m.bands);
    }
}

pub(super) fn meter_stats(s: &mut String, v: &[MeterStats]) {
    for m in v {
        let _ = write!(
            s,
            "\n{} flow_count:{} packet_in_count:{} byte_in_count:{} duration:{}s bands:\n",
            meter_id(m.meter_id, ':'),
            m.flow_count,
            m.packet_in_count,
            m.byte_in_count,
            duration(m.duration_sec, m.duration_nsec)
        );
        for (i, (p, b)) in m.band_stats.iter().enumerate() {
            let _ = writeln!(s, "{i}: packet_count:{p} byte_count:{b}");
        }
    }
}

/// OpenFlow 1.3 table stats: equal runs collapse into `ditto` lines.
pub(super) fn table_stats(s: &mut String, v: &[TableStats]) {
    let same = |a: &TableStats, b: &TableStats| {
        a.active_count == b.active_count && a.lookup_count == b.lookup_count && a.matched_count == b.matched_count
    };
    let mut ditto: Option<(u8, u8)> = None;
    let finish = |s: &mut String, d: Option<(u8, u8)>| {
        if let Some((a, b)) = d {
            if a == b {
                let _ = writeln!(s, "\n  table {a}: ditto");
            } else {
                let _ = writeln!(s, "\n  tables {a}...{b}: ditto");
            }
        }
    };
    for (i, t) in v.iter().enumerate() {
        if i > 0 && same(t, &v[i - 1]) {
            ditto = Some((ditto.map_or(t.table_id, |d| d.0), t.table_id));
            continue;
        }
        finish(s, ditto.take());
        let _ = write!(
            s,
            "\n  table {}:\n    active={}, lookup={}, matched={}\n",
            t.table_id, t.active_count, t.lookup_count, t.matched_count
        );
    }
    finish(s, ditto);
}

pub(super) fn port_stats(s: &mut String, v: &[PortStats]) {
    let stat = |x: u64| {
        if x == u64::MAX { "?".to_string() } else { x.to_string() }
    };
    for p in v {
        let pad = if p.port_no < 10 { " " } else { "" };
        let _ = writeln!(
            s,
            "  port {pad}{}: rx pkts={}, bytes={}, drop={}, errs={}, frame={}, over={}, crc={}",
            port_name(p.port_no),
            stat(p.rx_packets),
            stat(p.rx_bytes),
            stat(p.rx_dropped),
            stat(p.rx_errors),
            stat(p.rx_frame_err),
            stat(p.rx_over_err),
            stat(p.rx_crc_err)
        );
        let _ = writeln!(
            s,
            "           tx pkts={}, bytes={}, drop={}, errs={}, coll={}",
            stat(p.tx_packets),
            stat(p.tx_bytes),
            stat(p.tx_dropped),
            stat(p.tx_errors),
            stat(p.collisions)
        );
        if p.duration_sec != u32::MAX {
            let _ = writeln!(s, "           duration={}s", duration(p.duration_sec, p.duration_nsec));
        }
    }
}

pub(super) fn async_config(s: &mut String, a: &AsyncConfig) {
    const PIN: &[&str] = &["no_match", "action", "invalid_ttl", "action_set", "group", "packet_out"];
    const PS: &[&str] = &["add", "delete", "modify"];
    const FR: &[&str] = &["idle", "hard", "delete", "group_delete", "meter_delete", "eviction"];
    for i in 0..2 {
        let _ = writeln!(s, "\n {}:", if i == 0 { "primary" } else { "secondary" });
        let rows: [(&str, u32, &[&str]); 6] = [
            ("PACKET_IN", a.packet_in_mask[i], PIN),
            ("PORT_STATUS", a.port_status_mask[i], PS),
            ("FLOW_REMOVED", a.flow_removed_mask[i], FR),
            ("ROLE_STATUS", 0, &[]),
            ("TABLE_STATUS", 0, &[]),
            ("REQUESTFORWARD", 0, &[]),
        ];
        for (name, mask, names) in rows {
            let _ = write!(s, "{name:>16}:");
            for j in 0..32 {
                if mask & (1 << j) != 0 {
                    match names.get(j) {
                        Some(n) => {
                            let _ = write!(s, " {n}");
                        }
                        None => {
                            let _ = write!(s, " {j}");
                        }
                    }
                }
            }
            if mask == 0 {
                s.push_str(" (off)");
            }
            s.push('\n');
        }
    }
}

/// `ds_put_hex_dump` with the ASCII column, offsets from 0.
pub(super) fn hex_dump(s: &mut String, data: &[u8]) {
    for (line, chunk) in data.chunks(16).enumerate() {
        let _ = write!(s, "{:08x}  ", line * 16);
        for i in 0..16 {
            match chunk.get(i) {
                Some(b) => {
                    let _ = write!(s, "{b:02x}{}", if i == 7 { '-' } else { ' ' });
                }
                None => s.push_str("   "),
            }
        }
        s.push('|');
        for i in 0..16 {
            s.push(match chunk.get(i) {
                Some(&c) if (32..127).contains(&c) => c as char,
                Some(_) => '.',
                None => ' ',
            });
        }
        s.push_str("|\n");
    }
}

/// The summary `ovs-ofctl` prints for a packet: the flow OVS extracts from
/// it (Ethernet, VLAN, ARP, IPv4 with ICMP/TCP/UDP), as `flow_format` does,
/// then the L4 checksum. `None` for what this parser does not cover.
pub(super) fn packet_summary(p: &[u8]) -> Option<String> {
    if p.len() < 14 {
        // Too short for Ethernet: OVS extracts an all-zero flow.
        return Some("vlan_tci=0x0000,dl_src=00:00:00:00:00:00,dl_dst=00:00:00:00:00:00,dl_type=0x0000\n".into());
    }
    let dst = mac(p[0..6].try_into().ok()?);
    let src = mac(p[6..12].try_into().ok()?);
    let mut ty = u16::from_be_bytes([p[12], p[13]]);
    let mut off = 14;
    let mut tci = 0u16;
    if ty == 0x8100 {
        if p.len() < 18 {
            return None;
        }
        tci = u16::from_be_bytes([p[14], p[15]]) | 0x1000;
        ty = u16::from_be_bytes([p[16], p[17]]);
        off = 18;
    }
    if ty < 0x600 {
        return None;
    }
    let l2 = format!("vlan_tci={tci:#06x},dl_src={src},dl_dst={dst}");
    let l3 = &p[off..];
    match ty {
        0x0806 => {
            if l3.len() < 28 || l3[0..2] != [0, 1] || l3[2..4] != [8, 0] || l3[4] != 6 || l3[5] != 4 {
                return Some(format!(
                    "arp,{l2},arp_spa=0.0.0.0,arp_tpa=0.0.0.0,arp_op=0,arp_sha=00:00:00:00:00:00,arp_tha=00:00:00:00:00:00\n"
                ));
            }
            let op = u16::from_be_bytes([l3[6], l3[7]]);
            let ip = |o: usize| Ipv4Addr::new(l3[o], l3[o + 1], l3[o + 2], l3[o + 3]);
            let m = |o: usize| mac(l3[o..o + 6].try_into().unwrap_or(&[0; 6]));
            Some(format!(
                "arp,{l2},arp_spa={},arp_tpa={},arp_op={op},arp_sha={},arp_tha={}\n",
                ip(14),
                ip(24),
                m(8),
                m(18)
            ))
        }
        0x0800 => {
            if l3.len() < 20 || l3[0] >> 4 != 4 {
                return None;
            }
            let ihl = usize::from(l3[0] & 0xf) * 4;
            if ihl < 20 || l3.len() < ihl {
                return None;
            }
            let tos = l3[1];
            let frag_off = u16::from_be_bytes([l3[6], l3[7]]);
            if frag_off & 0x3fff != 0 {
                return None;
            }
            let ttl = l3[8];
            let proto = l3[9];
            let srcip = Ipv4Addr::new(l3[12], l3[13], l3[14], l3[15]);
            let dstip = Ipv4Addr::new(l3[16], l3[17], l3[18], l3[19]);
            let l4 = &l3[ihl..];
            let ipf = format!(
                "{l2},nw_src={srcip},nw_dst={dstip},nw_tos={},nw_ecn={},nw_ttl={ttl},nw_frag=no",
                tos & 0xfc,
                tos & 3
            );
            let be16 = |o: usize| u16::from_be_bytes([l4[o], l4[o + 1]]);
            match proto {
                1 if l4.len() >= 4 => {
                    Some(format!("icmp,{ipf},icmp_type={},icmp_code={} icmp_csum:{:x}\n", l4[0], l4[1], be16(2)))
                }
                6 if l4.len() >= 20 => Some(format!(
                    "tcp,{ipf},tp_src={},tp_dst={},tcp_flags={} tcp_csum:{:x}\n",
                    be16(0),
                    be16(2),
                    tcp_flags(be16(12) & 0x0fff),
                    be16(16)
                )),
                17 if l4.len() >= 8 => {
                    Some(format!("udp,{ipf},tp_src={},tp_dst={} udp_csum:{:x}\n", be16(0), be16(2), be16(6)))
                }
                _ => None,
            }
        }
        0x86dd => None,
        _ => Some(format!("{l2},dl_type={ty:#06x}\n")),
    }
}

fn tcp_flags(f: u16) -> String {
    const NAMES: [&str; 12] = ["fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr", "ns", "[200]", "[400]", "[800]"];
    if f == 0 {
        return "0".into();
    }
    (0..12).filter(|i| f & (1 << i) != 0).map(|i| NAMES[i]).collect::<Vec<_>>().join("|")
}
