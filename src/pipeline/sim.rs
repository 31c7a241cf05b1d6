//! An in-memory flow table that answers "where does this packet go": the
//! highest-priority matching flow of each table is applied, as Open vSwitch
//! does, for the actions the pipeline uses.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::render::FlowSet;
use crate::net::Mac;
use crate::openflow::action::{Action, OFPP_IN_PORT, Subfield};
use crate::openflow::instruction::Instruction;
use crate::openflow::{Field, FlowMod, Match};

/// A packet as a set of header fields (absent fields read as zero).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packet {
    pub fields: BTreeMap<Field, u128>,
}

fn mac_u(m: Mac) -> u128 {
    m.0.iter().fold(0u128, |a, &b| (a << 8) | u128::from(b))
}

impl Packet {
    pub fn get(&self, f: Field) -> u128 {
        self.fields.get(&f).copied().unwrap_or(0)
    }
    pub fn set(&mut self, f: Field, v: u128) -> &mut Self {
        let bits = u32::from(f.def().bits).min(128);
        let mask = if bits >= 128 { u128::MAX } else { (1u128 << bits) - 1 };
        self.fields.insert(f, v & mask);
        self
    }
    pub fn mac(&self, f: Field) -> Mac {
        let v = self.get(f);
        let b = v.to_be_bytes();
        Mac([b[10], b[11], b[12], b[13], b[14], b[15]])
    }
    pub fn ip(&self, f: Field) -> Ipv4Addr {
        Ipv4Addr::from(self.get(f) as u32)
    }
    /// An IPv4 packet (ICMP) from a port.
    pub fn ipv4(in_port: u32, src_mac: Mac, dst_mac: Mac, src: Ipv4Addr, dst: Ipv4Addr) -> Packet {
        let mut p = Packet::default();
        p.set(Field::InPort, in_port.into())
            .set(Field::EthSrc, mac_u(src_mac))
            .set(Field::EthDst, mac_u(dst_mac))
            .set(Field::EthType, 0x0800)
            .set(Field::Ipv4Src, u32::from(src).into())
            .set(Field::Ipv4Dst, u32::from(dst).into())
            .set(Field::IpProto, 1)
            .set(Field::NwTtl, 64);
        p
    }
    /// An ARP request (broadcast) from a port.
    pub fn arp_request(in_port: u32, sha: Mac, spa: Ipv4Addr, tpa: Ipv4Addr) -> Packet {
        let mut p = Packet::default();
        p.set(Field::InPort, in_port.into())
            .set(Field::EthSrc, mac_u(sha))
            .set(Field::EthDst, mac_u(Mac([0xff; 6])))
            .set(Field::EthType, 0x0806)
            .set(Field::ArpOp, 1)
            .set(Field::ArpSha, mac_u(sha))
            .set(Field::ArpSpa, u32::from(spa).into())
            .set(Field::ArpTpa, u32::from(tpa).into());
        p
    }
    /// A packet arriving from a tunnel port with a tunnel id.
    pub fn from_tunnel(mut self, tunnel_ofport: u32, tun_id: u64, tun_src: Ipv4Addr) -> Packet {
        self.set(Field::InPort, tunnel_ofport.into())
            .set(Field::TunId, tun_id.into())
            .set(Field::TunSrc, u32::from(tun_src).into());
        self
    }
}

/// Where a packet went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    /// Each output: the port and the packet as it left.
    pub outputs: Vec<(u32, Packet)>,
    /// The flows hit: (table, priority, cookie).
    pub hits: Vec<(u8, u16, u64)>,
    /// Actions the simulator does not model (the result may be incomplete).
    pub unsupported: Vec<String>,
}

impl Trace {
    pub fn ports(&self) -> Vec<u32> {
        self.outputs.iter().map(|(p, _)| *p).collect()
    }
    pub fn dropped(&self) -> bool {
        self.outputs.is_empty()
    }
    pub fn hit_table(&self, table: u8) -> bool {
        self.hits.iter().any(|h| h.0 == table)
    }
}

struct Entry {
    priority: u16,
    cookie: u64,
    r#match: Match,
    instructions: Vec<Instruction>,
}

/// Flows by table, each table sorted by descending priority.
#[derive(Default)]
pub struct FlowTable {
    tables: BTreeMap<u8, Vec<Entry>>,
}

fn width_mask(bits: u32) -> u128 {
    if bits >= 128 { u128::MAX } else { (1u128 << bits) - 1 }
}

fn field_of(sf: &Subfield) -> Option<Field> {
    sf.field.field()
}

impl FlowTable {
    pub fn new() -> Self {
        FlowTable::default()
    }
    pub fn from_set(set: &FlowSet) -> Self {
        // A set's keys are unique already: no replacement check, one sort.
        let mut t = FlowTable::new();
        for (k, v) in &set.flows {
            t.tables.entry(k.table).or_default().push(Entry {
                priority: k.priority,
                cookie: v.cookie,
                r#match: k.r#match(),
                instructions: v.instructions(),
            });
        }
        for v in t.tables.values_mut() {
            v.sort_by_key(|e| std::cmp::Reverse(e.priority));
        }
        t
    }
    pub fn add(&mut self, fm: &FlowMod) {
        let v = self.tables.entry(fm.table_id).or_default();
        v.retain(|e| !(e.priority == fm.priority && e.r#match.canonical() == fm.r#match.canonical()));
        v.push(Entry {
            priority: fm.priority,
            cookie: fm.cookie,
            r#match: fm.r#match.clone(),
            instructions: fm.instructions.clone(),
        });
        v.sort_by_key(|e| std::cmp::Reverse(e.priority));
    }

    fn matches(m: &Match, p: &Packet) -> bool {
        m.fields.iter().all(|f| {
            let Some(field) = f.field() else { return false };
            let full = width_mask(u32::from(field.def().bits));
            let mask = f.mask_u128().unwrap_or(full);
            p.get(field) & mask == f.value_u128() & mask
        })
    }

    /// Sends `pkt` through the pipeline from table 0.
    pub fn trace(&self, pkt: &Packet) -> Trace {
        let mut t = Trace::default();
        let mut p = pkt.clone();
        self.run_table(0, &mut p, &mut t, 0);
        t
    }

    fn run_table(&self, table: u8, p: &mut Packet, t: &mut Trace, depth: u32) {
        if depth > 64 {
            t.unsupported.push("too many table hops".into());
            return;
        }
        let Some(entry) = self.tables.get(&table).and_then(|v| v.iter().find(|e| Self::matches(&e.r#match, p))) else {
            return; // table miss: drop
        };
        t.hits.push((table, entry.priority, entry.cookie));
        let mut goto = None;
        for ins in &entry.instructions {
            match ins {
                Instruction::ApplyActions(acts) => {
                    for a in acts {
                        if !self.apply(a, p, t, depth) {
                            return; // dropped (its TTL ran out)
                        }
                    }
                }
                Instruction::GotoTable(n) => goto = Some(*n),
                other => t.unsupported.push(format!("{other:?}")),
            }
        }
        if let Some(n) = goto {
            self.run_table(n, p, t, depth + 1);
        }
    }

    /// Applies one action; `false` when the packet is dropped by it.
    fn apply(&self, a: &Action, p: &mut Packet, t: &mut Trace, depth: u32) -> bool {
        match a {
            Action::DecNwTtl => {
                // Open vSwitch drops a packet whose TTL would reach 0 (and
                // sends it to controllers that asked for such packets).
                let ttl = p.get(Field::NwTtl);
                if ttl <= 1 {
                    return false;
                }
                p.set(Field::NwTtl, ttl - 1);
            }
            Action::Output { port, .. } => {
                let in_port = p.get(Field::InPort) as u32;
                if *port == OFPP_IN_PORT {
                    t.outputs.push((in_port, p.clone()));
                } else if *port != in_port {
                    // Open vSwitch drops output to the input port.
                    t.outputs.push((*port, p.clone()));
                }
            }
            Action::SetField(f) | Action::RegLoad2(f) => {
                let Some(field) = f.field() else {
                    t.unsupported.push(format!("{a:?}"));
                    return true;
                };
                let full = width_mask(u32::from(field.def().bits));
                let mask = f.mask_u128().unwrap_or(full);
                let v = (p.get(field) & !mask) | (f.value_u128() & mask);
                p.set(field, v);
            }
            Action::RegLoad { dst, value } => {
                let Some(field) = field_of(dst) else {
                    t.unsupported.push(format!("{a:?}"));
                    return true;
                };
                let m = width_mask(u32::from(dst.n_bits)) << dst.ofs;
                let v = (p.get(field) & !m) | ((u128::from(*value) << dst.ofs) & m);
                p.set(field, v);
            }
            Action::RegMove { src, dst } => {
                let (Some(sf), Some(df)) = (field_of(src), field_of(dst)) else {
                    t.unsupported.push(format!("{a:?}"));
                    return true;
                };
                let bits = (p.get(sf) >> src.ofs) & width_mask(u32::from(src.n_bits));
                let m = width_mask(u32::from(dst.n_bits)) << dst.ofs;
                let v = (p.get(df) & !m) | ((bits << dst.ofs) & m);
                p.set(df, v);
            }
            Action::SetTunnel(id) => {
                p.set(Field::TunId, u128::from(*id));
            }
            Action::SetTunnel64(id) => {
                p.set(Field::TunId, u128::from(*id));
            }
            Action::ResubmitTable { table, .. } => self.run_table(*table, p, t, depth + 1),
            other => t.unsupported.push(format!("{other:?}")),
        }
        true
    }
}
