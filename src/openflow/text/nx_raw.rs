//! Nicira actions that the codec carries as raw bodies
//! ([`Action::Nicira`]): their layouts, so the parser can build them and
//! the printer can name their parts. Layouts are those `ovs-ofctl` writes
//! (`ofp-actions.c` in Open vSwitch 3.1); `data` is everything after the
//! subtype, padding included.

use crate::openflow::action::{Action, NxmHeader, Subfield};

pub(super) const NXAST_MULTIPATH: u16 = 10;
pub(super) const NXAST_BUNDLE: u16 = 12;
pub(super) const NXAST_BUNDLE_LOAD: u16 = 13;
pub(super) const NXAST_STACK_PUSH: u16 = 27;
pub(super) const NXAST_STACK_POP: u16 = 28;
pub(super) const NXAST_SAMPLE: u16 = 29;
pub(super) const NXAST_CONTROLLER2: u16 = 37;
pub(super) const NXAST_SAMPLE2: u16 = 38;
pub(super) const NXAST_OUTPUT_TRUNC: u16 = 39;
pub(super) const NXAST_SAMPLE3: u16 = 41;
pub(super) const NXAST_CLONE: u16 = 42;
pub(super) const NXAST_RESUBMIT_TABLE_CT: u16 = 44;
pub(super) const NXAST_ENCAP: u16 = 46;
pub(super) const NXAST_DECAP: u16 = 47;
pub(super) const NXAST_CHECK_PKT_LARGER: u16 = 49;

/// `NXM_OF_IN_PORT` as a 32-bit header: the only member type of `bundle`.
const NXM_OF_IN_PORT: u32 = 0x0000_0002;

/// Hash field sets of `bundle` and `multipath` (`nx_hash_fields`).
pub(super) const HASH_FIELDS: &[&str] =
    &["eth_src", "symmetric_l4", "symmetric_l3l4", "symmetric_l3l4+udp", "nw_src", "nw_dst", "symmetric_l3"];
/// `multipath` algorithms (`nx_mp_algorithm`).
pub(super) const MP_ALGORITHMS: &[&str] = &["modulo_n", "hash_threshold", "hrw", "iter_hash"];
/// `bundle` algorithms (`nx_bd_algorithm`).
pub(super) const BD_ALGORITHMS: &[&str] = &["active_backup", "hrw"];

/// Packet types `encap` names (namespace, type).
pub(super) const ENCAP_TYPES: &[(&str, u32)] = &[("ethernet", 0), ("mpls", 0x0001_8847), ("mpls_mc", 0x0001_8848)];
/// `decap` without arguments: "use the next protocol" (ns 0, type 0xfffe).
pub(super) const DECAP_NEXT: u32 = 0xfffe;

/// `controller(...)` options that need NXAST_CONTROLLER2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Controller2 {
    pub max_len: u16,
    pub controller_id: u16,
    pub reason: u8,
    pub userdata: Option<Vec<u8>>,
    pub pause: bool,
    pub meter_id: Option<u32>,
}

/// A raw Nicira action understood by layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Raw {
    OutputTrunc {
        port: u16,
        max_len: u32,
    },
    Controller2(Controller2),
    Bundle {
        fields: u16,
        basis: u16,
        algorithm: u16,
        dst: Option<Subfield>,
        members: Vec<u16>,
    },
    Multipath {
        fields: u16,
        basis: u16,
        algorithm: u16,
        max_link: u16,
        arg: u32,
        dst: Subfield,
    },
    Push(Subfield),
    Pop(Subfield),
    Sample {
        probability: u16,
        collector_set_id: u32,
        obs_domain_id: u32,
        obs_point_id: u32,
        port: Option<u16>,
        direction: u8,
    },
    Clone(Vec<Action>),
    ResubmitCt {
        in_port: u16,
        table: u8,
    },
    Encap {
        packet_type: u32,
    },
    Decap {
        packet_type: u32,
    },
    CheckPktLarger {
        pkt_len: u16,
        dst: Subfield,
    },
}

/// Pads `data` so that the whole action (10 header bytes + data) is a multiple of 8.
fn pad(mut data: Vec<u8>) -> Vec<u8> {
    let total = (10 + data.len()).div_ceil(8) * 8;
    data.resize(total - 10, 0);
    data
}

fn put16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_be_bytes());
}
fn put32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_be_bytes());
}

fn header(sf: &Subfield) -> u32 {
    sf.field.header
}

impl Raw {
    /// The action on the wire.
    pub(super) fn into_action(self) -> Action {
        let mut d = Vec::new();
        let subtype = match self {
            Raw::OutputTrunc { port, max_len } => {
                put16(&mut d, port);
                put32(&mut d, max_len);
                NXAST_OUTPUT_TRUNC
            }
            Raw::Controller2(c) => {
                d.resize(6, 0);
                let mut prop = |ty: u16, val: &[u8]| {
                    put16(&mut d, ty);
                    put16(&mut d, (4 + val.len()) as u16);
                    d.extend_from_slice(val);
                    d.resize(6 + (d.len() - 6).div_ceil(8) * 8, 0);
                };
                // The 16-bit properties carry two pad bytes inside their length.
                if c.max_len != 0xffff {
                    let [a, b] = c.max_len.to_be_bytes();
                    prop(0, &[a, b, 0, 0]);
                }
                if c.controller_id != 0 {
                    let [a, b] = c.controller_id.to_be_bytes();
                    prop(1, &[a, b, 0, 0]);
                }
                if c.reason != 1 {
                    prop(2, &[c.reason]);
                }
                if let Some(u) = &c.userdata {
                    prop(3, u);
                }
                if c.pause {
                    prop(4, &[]);
                }
                if let Some(m) = c.meter_id {
                    prop(5, &m.to_be_bytes());
                }
                NXAST_CONTROLLER2
            }
            Raw::Bundle { fields, basis, algorithm, dst, members } => {
                put16(&mut d, algorithm);
                put16(&mut d, fields);
                put16(&mut d, basis);
                put32(&mut d, NXM_OF_IN_PORT);
                put16(&mut d, members.len() as u16);
                put16(&mut d, dst.map_or(0, |s| s.ofs_nbits()));
                put32(&mut d, dst.as_ref().map_or(0, header));
                put32(&mut d, 0);
                for m in &members {
                    put16(&mut d, *m);
                }
                if dst.is_some() { NXAST_BUNDLE_LOAD } else { NXAST_BUNDLE }
            }
            Raw::Multipath { fields, basis, algorithm, max_link, arg, dst } => {
                put16(&mut d, fields);
                put16(&mut d, basis);
                put16(&mut d, 0);
                put16(&mut d, algorithm);
                put16(&mut d, max_link);
                put32(&mut d, arg);
                put16(&mut d, 0);
                put16(&mut d, dst.ofs_nbits());
                put32(&mut d, header(&dst));
                NXAST_MULTIPATH
            }
            Raw::Push(sf) | Raw::Pop(sf) => {
                put16(&mut d, sf.ofs);
                put32(&mut d, header(&sf));
                put16(&mut d, sf.n_bits);
                if matches!(self, Raw::Push(_)) { NXAST_STACK_PUSH } else { NXAST_STACK_POP }
            }
            Raw::Sample { probability, collector_set_id, obs_domain_id, obs_point_id, port, direction } => {
                put16(&mut d, probability);
                put32(&mut d, collector_set_id);
                put32(&mut d, obs_domain_id);
                put32(&mut d, obs_point_id);
                if direction != 0 {
                    put16(&mut d, port.unwrap_or(0xffff));
                    d.push(direction);
                    NXAST_SAMPLE3
                } else if let Some(p) = port {
                    put16(&mut d, p);
                    NXAST_SAMPLE2
                } else {
                    NXAST_SAMPLE
                }
            }
            Raw::Clone(actions) => {
                d.resize(6, 0);
                Action::emit_list(&actions, &mut d);
                NXAST_CLONE
            }
            Raw::ResubmitCt { in_port, table } => {
                put16(&mut d, in_port);
                d.push(table);
                NXAST_RESUBMIT_TABLE_CT
            }
            Raw::Encap { packet_type } => {
                put16(&mut d, 0);
                put32(&mut d, packet_type);
                NXAST_ENCAP
            }
            Raw::Decap { packet_type } => {
                put16(&mut d, 0);
                put32(&mut d, packet_type);
                NXAST_DECAP
            }
            Raw::CheckPktLarger { pkt_len, dst } => {
                put16(&mut d, pkt_len);
                put16(&mut d, dst.ofs);
                put32(&mut d, header(&dst));
                NXAST_CHECK_PKT_LARGER
            }
        };
        Action::Nicira { subtype, data: pad(d) }
    }

    /// Reads a raw body back; `None` when the subtype is not one of these or
    /// the body does not have the layout (then it prints as raw bytes).
    pub(super) fn from_nicira(subtype: u16, d: &[u8]) -> Option<Raw> {
        let u16_at = |o: usize| d.get(o..o + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
        let u32_at = |o: usize| d.get(o..o + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        let nxm = |h: u32| NxmHeader { header: h, experimenter: None };
        Some(match subtype {
            NXAST_OUTPUT_TRUNC => Raw::OutputTrunc { port: u16_at(0)?, max_len: u32_at(2)? },
            NXAST_CONTROLLER2 => {
                let mut c = Controller2 {
                    max_len: 0xffff,
                    controller_id: 0,
                    reason: 1,
                    userdata: None,
                    pause: false,
                    meter_id: None,
                };
                let mut o = 6;
                while o < d.len() {
                    let ty = u16_at(o)?;
                    let len = usize::from(u16_at(o + 2)?);
                    if len < 4 {
                        // A zero-length tail is padding; anything else is not this layout.
                        return d[o..].iter().all(|&b| b == 0).then_some(Raw::Controller2(c));
                    }
                    let val = d.get(o + 4..o + len)?;
                    match ty {
                        0 => c.max_len = u16_at(o + 4)?,
                        1 => c.controller_id = u16_at(o + 4)?,
                        2 => c.reason = *val.first()?,
                        3 => c.userdata = Some(val.to_vec()),
                        4 => c.pause = true,
                        5 => c.meter_id = Some(u32_at(o + 4)?),
                        _ => return None,
                    }
                    o += len.div_ceil(8) * 8;
                }
                Raw::Controller2(c)
            }
            NXAST_BUNDLE | NXAST_BUNDLE_LOAD => {
                let n = usize::from(u16_at(10)?);
                let members = (0..n).map(|i| u16_at(22 + 2 * i)).collect::<Option<Vec<u16>>>()?;
                let dst = if subtype == NXAST_BUNDLE_LOAD {
                    Some(Subfield::from_ofs_nbits(nxm(u32_at(14)?), u16_at(12)?))
                } else {
                    None
                };
                Raw::Bundle { algorithm: u16_at(0)?, fields: u16_at(2)?, basis: u16_at(4)?, dst, members }
            }
            NXAST_MULTIPATH => Raw::Multipath {
                fields: u16_at(0)?,
                basis: u16_at(2)?,
                algorithm: u16_at(6)?,
                max_link: u16_at(8)?,
                arg: u32_at(10)?,
                dst: Subfield::from_ofs_nbits(nxm(u32_at(18)?), u16_at(16)?),
            },
            NXAST_STACK_PUSH | NXAST_STACK_POP => {
                let sf = Subfield { field: nxm(u32_at(2)?), ofs: u16_at(0)?, n_bits: u16_at(6)? };
                if subtype == NXAST_STACK_PUSH { Raw::Push(sf) } else { Raw::Pop(sf) }
            }
            NXAST_SAMPLE | NXAST_SAMPLE2 | NXAST_SAMPLE3 => Raw::Sample {
                probability: u16_at(0)?,
                collector_set_id: u32_at(2)?,
                obs_domain_id: u32_at(6)?,
                obs_point_id: u32_at(10)?,
                port: if subtype == NXAST_SAMPLE { None } else { u16_at(14).filter(|&p| p != 0xffff) },
                direction: if subtype == NXAST_SAMPLE3 { *d.get(16)? } else { 0 },
            },
            NXAST_CLONE => Raw::Clone(Action::parse_list(d.get(6..)?).ok()?),
            NXAST_RESUBMIT_TABLE_CT => Raw::ResubmitCt { in_port: u16_at(0)?, table: *d.get(2)? },
            NXAST_ENCAP => Raw::Encap { packet_type: u32_at(2)? },
            NXAST_DECAP => Raw::Decap { packet_type: u32_at(2)? },
            NXAST_CHECK_PKT_LARGER => {
                let ofs = u16_at(2)?;
                Raw::CheckPktLarger { pkt_len: u16_at(0)?, dst: Subfield { field: nxm(u32_at(4)?), ofs, n_bits: 1 } }
            }
            _ => return None,
        })
    }
}
