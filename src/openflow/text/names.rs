//! Names shared by the parser and the printer: reserved ports, protocol
//! shorthands, flag bits and the register arrays. Each exists once, so a
//! name the parser accepts is the name the printer writes.

use crate::openflow::action::*;
use crate::openflow::error::{Error, Result};
use crate::openflow::oxm::Field;

use super::lex::num;

/// Reserved OpenFlow 1.3 ports by name; printing uses the first name of a number.
pub(super) const PORTS: &[(&str, u32)] = &[
    ("IN_PORT", OFPP_IN_PORT),
    ("TABLE", OFPP_TABLE),
    ("NORMAL", OFPP_NORMAL),
    ("FLOOD", OFPP_FLOOD),
    ("ALL", OFPP_ALL),
    ("CONTROLLER", OFPP_CONTROLLER),
    ("LOCAL", OFPP_LOCAL),
    ("ANY", OFPP_ANY),
    ("NONE", OFPP_ANY),
];

/// Parses an OpenFlow port: a number or a reserved name (any case).
pub(crate) fn parse_port(s: &str) -> Result<u32> {
    let up = s.trim().to_ascii_uppercase();
    if let Some((_, p)) = PORTS.iter().find(|(n, _)| *n == up) {
        return Ok(*p);
    }
    let p: u32 = num(s, "port")?;
    // OpenFlow 1.0 style 16-bit reserved ports map to 1.1+ ones, as in OVS.
    Ok(if (0xff00..=0xffff).contains(&p) { p + 0xffff_0000 } else { p })
}

/// Port number as ovs-ofctl prints it.
pub(crate) fn port_name(p: u32) -> String {
    PORTS.iter().find(|(_, n)| *n == p).map_or_else(|| p.to_string(), |(name, _)| (*name).to_string())
}

/// 16-bit (OpenFlow 1.0) port to the 32-bit numbering used for names.
pub(super) fn port16(p: u16) -> u32 {
    if p >= 0xff00 { u32::from(p) + 0xffff_0000 } else { u32::from(p) }
}

/// Protocol shorthands: name, eth_type and, for the L4 ones, ip_proto.
/// The printer picks the first entry that matches a flow.
pub(super) const PROTOCOLS: &[(&str, u16, Option<u8>)] = &[
    ("icmp", 0x0800, Some(1)),
    ("tcp", 0x0800, Some(6)),
    ("udp", 0x0800, Some(17)),
    ("sctp", 0x0800, Some(132)),
    ("icmp6", 0x86dd, Some(58)),
    ("tcp6", 0x86dd, Some(6)),
    ("udp6", 0x86dd, Some(17)),
    ("sctp6", 0x86dd, Some(132)),
    ("ip", 0x0800, None),
    ("ipv6", 0x86dd, None),
    ("arp", 0x0806, None),
    ("rarp", 0x8035, None),
    ("mpls", 0x8847, None),
    ("mplsm", 0x8848, None),
];

/// `reg0`..`reg15`: the 32-bit Nicira registers.
pub(super) const REGS: [Field; 16] = [
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

/// `xreg0`..`xreg7`: the 64-bit OpenFlow 1.3 packet registers.
pub(super) const XREGS: [Field; 8] =
    [Field::Xreg0, Field::Xreg1, Field::Xreg2, Field::Xreg3, Field::Xreg4, Field::Xreg5, Field::Xreg6, Field::Xreg7];

/// The index of a register spelling (`reg3` -> 3 for `prefix` "reg").
pub(super) fn reg_index(name: &str, prefix: &str, count: usize) -> Option<usize> {
    let n: usize = name.strip_prefix(prefix)?.parse().ok()?;
    (n < count).then_some(n)
}

/// `ct_state` flag names and bits.
pub(crate) const CT_STATE_FLAGS: &[(&str, u128)] = &[
    ("new", 0x01),
    ("est", 0x02),
    ("rel", 0x04),
    ("rpl", 0x08),
    ("inv", 0x10),
    ("trk", 0x20),
    ("snat", 0x40),
    ("dnat", 0x80),
];
/// `tcp_flags` flag names and bits.
pub(crate) const TCP_FLAGS: &[(&str, u128)] = &[
    ("fin", 0x001),
    ("syn", 0x002),
    ("rst", 0x004),
    ("psh", 0x008),
    ("ack", 0x010),
    ("urg", 0x020),
    ("ece", 0x040),
    ("cwr", 0x080),
    ("ns", 0x100),
];
/// `tun_flags` flag names and bits.
pub(crate) const TUN_FLAGS: &[(&str, u128)] = &[("oam", 0x1)];

/// Names of `controller(reason=...)`, by reason code.
pub(super) const CONTROLLER_REASONS: &[&str] =
    &["no_match", "action", "invalid_ttl", "action_set", "group", "packet_out"];

pub(super) fn controller_reason(s: &str) -> Result<u8> {
    CONTROLLER_REASONS
        .iter()
        .position(|n| *n == s)
        .map(|i| i as u8)
        .ok_or_else(|| Error::value("controller reason", s.to_string()))
}

pub(super) fn reason_name(r: u8) -> String {
    CONTROLLER_REASONS.get(usize::from(r)).map_or_else(|| r.to_string(), |n| (*n).to_string())
}
