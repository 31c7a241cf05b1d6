//! Rendering the templates for a [`State`] into the desired flows, and
//! checking each against its table's declaration.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use super::PipelineError;
use super::decl::{Kind, Pipeline, TableDecl, Template};
use super::state::{ROUTER_MAC, State, TunnelType, fnv1a, mac_is_derived};
use crate::net::Mac;
use crate::openflow::action::{Action, OFPP_LOCAL};
use crate::openflow::instruction::Instruction;
use crate::openflow::text::parse_flow;
use crate::openflow::{EncodedFlowMod, FlowMod, Match};

/// Local ports per broadcast flow of table [`FLOOD_TABLE`].
pub const FLOOD_CHUNK: usize = 1000;
/// The table `{flood}` resubmits to.
pub const FLOOD_TABLE: u8 = 40;
/// The largest flow_mod that still fits in a bundle-add message.
pub const MAX_FLOW_MOD: usize = 0xffff - 16;

/// The top 16 bits of every cookie ovsnet writes.
pub const COOKIE_TAG: u64 = 0x0a5e_0000_0000_0000;
/// The mask selecting [`COOKIE_TAG`].
pub const COOKIE_MASK: u64 = 0xffff_0000_0000_0000;

/// A flow's identity in a table: OpenFlow's "strict" match. The match is
/// kept as its OXM fields' wire bytes in canonical (Open vSwitch) order:
/// compact (tens of thousands of flows per bridge) and compared by bytes,
/// so encodings that decode alike but differ in form still differ only if
/// their bytes do.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    pub table: u8,
    pub priority: u16,
    match_fields: Box<[u8]>,
}

impl FlowKey {
    pub fn new(table: u8, priority: u16, m: &Match) -> FlowKey {
        let mut buf = Vec::with_capacity(64);
        for f in &m.canonical().fields {
            f.emit(&mut buf);
        }
        FlowKey { table, priority, match_fields: buf.into_boxed_slice() }
    }
    /// The key of a flow_mod's (table, priority, match).
    pub fn of(fm: &FlowMod) -> FlowKey {
        FlowKey::new(fm.table_id, fm.priority, &fm.r#match)
    }
    /// The match, decoded.
    pub fn r#match(&self) -> Match {
        Match::parse_fields(&self.match_fields).unwrap_or_default()
    }
}

/// What a flow does and who owns it (instructions as wire bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowValue {
    pub cookie: u64,
    instructions: Box<[u8]>,
}

impl FlowValue {
    pub fn new(cookie: u64, instructions: &[Instruction]) -> FlowValue {
        let mut buf = Vec::with_capacity(64);
        Instruction::emit_list(instructions, &mut buf);
        FlowValue { cookie, instructions: buf.into_boxed_slice() }
    }
    /// The instructions, decoded.
    pub fn instructions(&self) -> Vec<Instruction> {
        Instruction::parse_list(&self.instructions).unwrap_or_default()
    }
}

/// A set of flows keyed by identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowSet {
    pub flows: HashMap<FlowKey, FlowValue>,
}

impl FlowSet {
    pub fn len(&self) -> usize {
        self.flows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }
    /// Adds a flow as the switch would hold it (normalised).
    pub fn insert(&mut self, fm: &FlowMod) -> Option<FlowValue> {
        let (k, v) = normalize(fm);
        self.flows.insert(k, v)
    }
    /// The flows as ADD flow_mods, ordered by table, descending priority,
    /// then text (stable output for printing and diffing).
    pub fn to_flow_mods(&self) -> Vec<FlowMod> {
        let mut v: Vec<FlowMod> = self.flows.iter().map(|(k, v)| flow_mod(k, v)).collect();
        sort_flow_mods(&mut v);
        v
    }
    /// Count per table.
    pub fn per_table(&self) -> BTreeMap<u8, usize> {
        let mut m = BTreeMap::new();
        for k in self.flows.keys() {
            *m.entry(k.table).or_insert(0) += 1;
        }
        m
    }
}

/// Sorts flow_mods by table, descending priority, then match (a stable
/// order for printing and diffing).
pub fn sort_flow_mods(v: &mut [FlowMod]) {
    v.sort_by_cached_key(|f| (f.table_id, std::cmp::Reverse(f.priority), f.r#match.canonical().fields));
}

/// An ADD for `key` / `value`.
pub fn flow_mod(key: &FlowKey, value: &FlowValue) -> FlowMod {
    FlowMod {
        cookie: value.cookie,
        table_id: key.table,
        priority: key.priority,
        r#match: key.r#match(),
        instructions: value.instructions(),
        ..FlowMod::default()
    }
}

/// A flow as the switch would give it back, as bytes: the match's fields
/// in canonical order, and the instructions, each encoded.
pub fn normalize(fm: &FlowMod) -> (FlowKey, FlowValue) {
    (FlowKey::of(fm), FlowValue::new(fm.cookie, &fm.instructions))
}

/// The FLOW_MOD for a key and value, as the OpenFlow encoder writes it
/// from their bytes: `command` ADD carries the cookie and instructions,
/// DELETE_STRICT neither.
pub fn encoded_flow_mod<'a>(key: &'a FlowKey, value: Option<&'a FlowValue>, command: u8) -> EncodedFlowMod<'a> {
    EncodedFlowMod {
        cookie: value.map_or(0, |v| v.cookie),
        table_id: key.table,
        command,
        priority: key.priority,
        match_fields: &key.match_fields,
        instructions: value.map_or(&[][..], |v| &v.instructions[..]),
    }
}

/// The OpenFlow 1.3 FLOW_MOD (xid 0) for a key and value
/// ([`encoded_flow_mod`], encoded).
pub fn flow_mod_bytes(key: &FlowKey, value: Option<&FlowValue>, command: u8) -> Vec<u8> {
    encoded_flow_mod(key, value, command).encode(0)
}

/// Bytes of the FLOW_MOD message for this flow.
pub fn flow_mod_len(key: &FlowKey, value: &FlowValue) -> usize {
    encoded_flow_mod(key, Some(value), crate::openflow::message::OFPFC_ADD).encoded_len()
}

/// The flows a state requires, with how many each object costs.
#[derive(Debug, Clone, Default)]
pub struct DesiredFlows {
    pub flows: FlowSet,
    /// Flows rendered per template kind.
    pub per_kind: BTreeMap<&'static str, usize>,
    /// Objects skipped, with why (a duplicate flow, a tunnel port missing...).
    pub warnings: Vec<String>,
}

/// The meter a local port's DNS queries go through: one per port, its id
/// the port's number (ofports of ordinary ports are below 0xff00, and
/// OpenFlow meter ids go up to 0xffff0000).
pub fn dns_meter(ofport: u32) -> u32 {
    ofport
}

/// The meters the desired flows use: one per local port whose queries
/// the `dns` table sends up.
pub fn dns_meters(state: &State) -> Vec<u32> {
    if !state.dns {
        return Vec::new();
    }
    let mut v: Vec<u32> = state
        .local_endpoints
        .iter()
        .filter(|e| e.ofport != OFPP_LOCAL && state.network(&e.network).is_some_and(|n| n.gateway.is_some()))
        .map(|e| dns_meter(e.ofport))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The cookie for flows owned by `owner`.
pub fn cookie_for(owner: &str) -> u64 {
    COOKIE_TAG | (fnv1a(owner.as_bytes()) & !COOKIE_MASK)
}

fn port_text(p: u32) -> String {
    if p == OFPP_LOCAL { "LOCAL".to_owned() } else { p.to_string() }
}

fn mac_hex(mac: Mac) -> String {
    let v = mac.0.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b));
    format!("{v:#x}")
}

/// One object to render templates of a kind for.
struct Obj {
    kind: Kind,
    owner: String,
    vars: Vec<(&'static str, String)>,
}

/// Substitutes `{name}` placeholders.
fn substitute(t: &Template, vars: &[(&'static str, String)]) -> Result<String, PipelineError> {
    let mut out = String::with_capacity(t.text.len() + 32);
    let mut rest = t.text.as_str();
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end =
            after.find('}').ok_or_else(|| PipelineError::Template { line: t.line, why: "unclosed '{'".into() })?;
        let name = &after[..end];
        let v = vars
            .iter()
            .find(|(k, _)| *k == name)
            .ok_or_else(|| PipelineError::Template { line: t.line, why: format!("no value for {{{name}}}") })?;
        out.push_str(&v.1);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Checks a rendered flow against its table's declaration: only declared
/// match fields (and their prerequisites), goto only to declared tables,
/// resubmit only forward to declared tables.
pub fn validate(decl: &TableDecl, fm: &FlowMod, pipeline: &Pipeline) -> Result<(), String> {
    fm.r#match.check_prerequisites().map_err(|e| e.to_string())?;
    for f in &fm.r#match.fields {
        let name = f.field().map(|x| x.def().name).unwrap_or("an unknown field");
        if !decl.matches.contains(name) {
            return Err(format!(
                "table {} ({}) may not match {name} (it may match: {})",
                decl.id,
                decl.name,
                decl.matches.iter().cloned().collect::<Vec<_>>().join(" ")
            ));
        }
    }
    for ins in &fm.instructions {
        match ins {
            Instruction::GotoTable(t) if !decl.gotos.contains(t) => {
                return Err(format!("table {} ({}) may not go to table {t}", decl.id, decl.name));
            }
            Instruction::ApplyActions(acts) | Instruction::WriteActions(acts) => {
                for a in acts {
                    check_action(decl, a, pipeline)?;
                    // NXAST_CONTROLLER2 (37): `controller(userdata=...)` and the like.
                    if (matches!(a, Action::Controller { .. }) || matches!(a, Action::Nicira { subtype: 37, .. }))
                        && !decl.controller
                    {
                        return Err(format!("table {} ({}) may not send to the controller", decl.id, decl.name));
                    }
                    if let Action::Output { port, .. } = a
                        && *port == crate::openflow::action::OFPP_CONTROLLER
                        && !decl.controller
                    {
                        return Err(format!("table {} ({}) may not send to the controller", decl.id, decl.name));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks one action of a table's flow (or group bucket): resubmit and
/// `ct(table=...)` only forward, to a declared table the table may go to.
fn check_action(decl: &TableDecl, a: &Action, pipeline: &Pipeline) -> Result<(), String> {
    let to = match a {
        Action::ResubmitTable { table, .. } => Some(*table),
        Action::Ct(ct) if ct.recirc_table != crate::openflow::action::NX_CT_RECIRC_NONE => Some(ct.recirc_table),
        _ => None,
    };
    match to {
        Some(t) if !decl.gotos.contains(&t) || pipeline.table(t).is_none() => {
            Err(format!("table {} ({}) may not resubmit to table {t}", decl.id, decl.name))
        }
        _ => Ok(()),
    }
}

/// The select group of each service (by group id): one bucket per
/// endpoint its backends name, rendered from the `bucket` templates and
/// checked against their table's declaration. A service with no backend
/// has a group with no bucket (its new connections are dropped).
pub fn service_groups(
    pipeline: &Pipeline,
    state: &State,
) -> Result<BTreeMap<u32, Vec<crate::openflow::message::Bucket>>, PipelineError> {
    let mut out = BTreeMap::new();
    for svc in &state.services {
        let Some(vni) = state.network(&svc.network).map(|n| n.vni) else { continue };
        let mut buckets = Vec::new();
        for ip in &svc.backends {
            let vars = vec![
                ("vni", vni.to_string()),
                ("ip", ip.to_string()),
                ("port", svc.port.to_string()),
                ("proto", svc.protocol.name().to_owned()),
            ];
            for decl in &pipeline.tables {
                for tpl in decl.buckets.iter().filter(|t| t.kind == Kind::ServiceBackend) {
                    let text = substitute(tpl, &vars)?;
                    let actions = crate::openflow::text::parse_actions(&text)
                        .map_err(|e| PipelineError::Template { line: tpl.line, why: format!("{text}: {e}") })?;
                    for a in &actions {
                        check_action(decl, a, pipeline).map_err(|why| PipelineError::Violation {
                            line: tpl.line,
                            flow: text.clone(),
                            why,
                        })?;
                    }
                    buckets.push(crate::openflow::message::Bucket {
                        weight: 100,
                        watch_port: crate::openflow::action::OFPP_ANY,
                        watch_group: 0xffff_ffff,
                        actions,
                    });
                }
            }
        }
        out.insert(svc.group_id, buckets);
    }
    Ok(out)
}

/// The objects of every kind in `state`, each with its placeholder values.
fn objects(state: &State, warnings: &mut Vec<String>) -> Vec<Obj> {
    let router_mac = || [("router_mac", ROUTER_MAC.to_string()), ("router_mac_hex", mac_hex(ROUTER_MAC))];
    let mut objs = vec![Obj {
        kind: Kind::Pipeline,
        owner: "pipeline".into(),
        vars: vec![("router_mac", ROUTER_MAC.to_string())],
    }];
    let vni_of = |net: &str| state.network(net).map(|n| n.vni);

    // Local endpoints, the bridge's own port first.
    let mut locals: Vec<(String, String, u32, std::net::Ipv4Addr, Mac)> = Vec::new();
    if let Some(b) = &state.bridge_local {
        locals.push(("bridge-local".into(), b.network.clone(), OFPP_LOCAL, b.ip, b.mac));
    }
    for e in &state.local_endpoints {
        locals.push((format!("endpoint:{}", e.id), e.network.clone(), e.ofport, e.ip, e.mac));
    }
    let mut flood: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for (owner, net, ofport, ip, mac) in &locals {
        let Some(vni) = vni_of(net) else {
            warnings.push(format!("{owner}: network {net} is unknown; no flows"));
            continue;
        };
        let vars = vec![
            ("ofport", port_text(*ofport)),
            ("mac", mac.to_string()),
            ("mac_hex", mac_hex(*mac)),
            ("ip", ip.to_string()),
            ("vni", vni.to_string()),
        ];
        if !mac_is_derived(*ip, *mac) {
            objs.push(Obj { kind: Kind::StaticMac, owner: owner.clone(), vars: vars.clone() });
        }
        if let Some(gw) = state.network(net).and_then(|n| n.gateway).filter(|_| state.dns && *ofport != OFPP_LOCAL) {
            objs.push(Obj {
                kind: Kind::DnsPunt,
                owner: owner.clone(),
                vars: vec![
                    ("ofport", ofport.to_string()),
                    ("gateway", gw.to_string()),
                    ("meter", dns_meter(*ofport).to_string()),
                    ("vni", vni.to_string()),
                ],
            });
        }
        objs.push(Obj { kind: Kind::Endpoint, owner: owner.clone(), vars });
        flood.entry(net.as_str()).or_default().push(*ofport);
    }

    for n in &state.networks {
        let mut ports = flood.get(n.name.as_str()).cloned().unwrap_or_default();
        ports.sort_unstable();
        ports.dedup();
        let owner = format!("network:{}", n.name);
        // One flow can hold only so many outputs (64 KiB per message): the
        // ports go in chunks, each a flow of table 40 picked by reg5.
        let chunks: Vec<&[u32]> = ports.chunks(FLOOD_CHUNK).collect();
        let flood_text = if chunks.is_empty() {
            "drop".to_owned()
        } else {
            (0..chunks.len())
                .map(|i| format!("load:{i:#x}->NXM_NX_REG5[],resubmit(,{FLOOD_TABLE})"))
                .collect::<Vec<_>>()
                .join(",")
        };
        for (i, chunk) in chunks.iter().enumerate() {
            let outputs = chunk.iter().map(|p| format!("output:{}", port_text(*p))).collect::<Vec<_>>().join(",");
            objs.push(Obj {
                kind: Kind::FloodChunk,
                owner: format!("{owner}/flood:{i}"),
                vars: vec![("vni", n.vni.to_string()), ("chunk", i.to_string()), ("outputs", outputs)],
            });
        }
        for cidr in &n.cidrs {
            let cidr = cidr.network();
            if !cidr.is_ipv4() {
                warnings.push(format!("{owner}: {cidr} is not IPv4; skipped"));
                continue;
            }
            objs.push(Obj {
                kind: Kind::Network,
                owner: owner.clone(),
                vars: vec![("vni", n.vni.to_string()), ("cidr", cidr.to_string()), ("flood", flood_text.clone())],
            });
        }
        if n.cidrs.is_empty() {
            warnings.push(format!("{owner}: no address block; no ARP responder or broadcast flow"));
        }
        if let (true, Some(up)) = (n.egress, &state.uplink) {
            for cidr in n.cidrs.iter().map(|c| c.network()).filter(|c| c.is_ipv4()) {
                let mut vars = vec![
                    ("vni", n.vni.to_string()),
                    ("cidr", cidr.to_string()),
                    // Nesting blocks: the more specific takes the replies.
                    ("cidr_priority", (50 + u32::from(cidr.prefix)).to_string()),
                    ("uplink_mac_hex", mac_hex(up.mac)),
                ];
                vars.extend(router_mac());
                objs.push(Obj { kind: Kind::Egress, owner: format!("{owner}/egress"), vars });
            }
        }
        if let Some(gw) = n.gateway {
            let mut vars = vec![("vni", n.vni.to_string()), ("gateway", gw.to_string())];
            vars.extend(router_mac());
            objs.push(Obj { kind: Kind::Gateway, owner: format!("{owner}/gateway"), vars });
        }
        for (tt, ofport) in &state.tunnel_ofports {
            objs.push(Obj {
                kind: Kind::Tunnel,
                owner: format!("{owner}/tunnel:{}", tt.as_str()),
                vars: vec![("vni", n.vni.to_string()), ("tunnel_ofport", ofport.to_string())],
            });
        }
    }

    // Routes: each network on a router reaches every network on it (its
    // own too: a packet sent to the gateway for an address of its own
    // network). A pair on two routers is routed once.
    let mut pairs: std::collections::BTreeSet<(&str, &str)> = std::collections::BTreeSet::new();
    for r in &state.routers {
        for from in &r.networks {
            for to in &r.networks {
                pairs.insert((from, to));
            }
        }
    }
    for (from, to) in pairs {
        let (Some(src), Some(dst)) = (state.network(from), state.network(to)) else {
            warnings.push(format!("route {from} -> {to}: network unknown here; no flows"));
            continue;
        };
        for cidr in dst.cidrs.iter().map(|c| c.network()).filter(|c| c.is_ipv4()) {
            let mut vars =
                vec![("vni", src.vni.to_string()), ("dst_vni", dst.vni.to_string()), ("dst_cidr", cidr.to_string())];
            vars.extend(router_mac());
            objs.push(Obj { kind: Kind::Route, owner: format!("route:{from}:{to}"), vars });
        }
    }

    for svc in &state.services {
        let owner = format!("service:{}", svc.name);
        let Some(vni) = vni_of(&svc.network) else {
            warnings.push(format!("{owner}: network {} is unknown here; no flows", svc.network));
            continue;
        };
        let base =
            vec![("vni", vni.to_string()), ("port", svc.port.to_string()), ("proto", svc.protocol.name().to_owned())];
        let mut vars = base.clone();
        vars.extend([("vip", svc.vip.to_string()), ("group", svc.group_id.to_string())]);
        objs.push(Obj { kind: Kind::Service, owner: owner.clone(), vars });
        for ip in &svc.backends {
            let mut vars = base.clone();
            vars.push(("ip", ip.to_string()));
            let backend = format!("{owner}/backend:{ip}");
            for (tt, ofport) in &state.tunnel_ofports {
                let mut vars = vars.clone();
                vars.push(("tunnel_ofport", ofport.to_string()));
                objs.push(Obj { kind: Kind::ServiceBackendTunnel, owner: format!("{backend}/{}", tt.as_str()), vars });
            }
            objs.push(Obj { kind: Kind::ServiceBackend, owner: backend, vars });
        }
    }

    let tunnel = |tt: TunnelType, owner: &str, warnings: &mut Vec<String>| {
        let p = state.tunnel_ofports.get(&tt).copied();
        if p.is_none() {
            warnings.push(format!("{owner}: the bridge has no flow-based {} tunnel port; no flows", tt.as_str()));
        }
        p
    };
    for b in &state.remote_blocks {
        let owner = format!("remote-block:{}:{}", b.network, b.cidr.network());
        let Some(vni) = vni_of(&b.network) else {
            warnings.push(format!("{owner}: network {} is unknown; no flows", b.network));
            continue;
        };
        let Some(port) = tunnel(b.tunnel, &owner, warnings) else { continue };
        objs.push(Obj {
            kind: Kind::RemoteBlock,
            owner,
            vars: vec![
                ("vni", vni.to_string()),
                ("cidr", b.cidr.network().to_string()),
                ("tun_dst", b.tun_dst.to_string()),
                ("tunnel_ofport", port.to_string()),
            ],
        });
    }
    for e in &state.remote_endpoints {
        let owner = format!("remote-endpoint:{}:{}", e.network, e.ip);
        let Some(vni) = vni_of(&e.network) else {
            warnings.push(format!("{owner}: network {} is unknown; no flows", e.network));
            continue;
        };
        let Some(port) = tunnel(e.tunnel, &owner, warnings) else { continue };
        let vars = vec![
            ("vni", vni.to_string()),
            ("mac", e.mac.to_string()),
            ("mac_hex", mac_hex(e.mac)),
            ("ip", e.ip.to_string()),
            ("tun_dst", e.tun_dst.to_string()),
            ("tunnel_ofport", port.to_string()),
        ];
        if !mac_is_derived(e.ip, e.mac) {
            objs.push(Obj { kind: Kind::StaticMac, owner: owner.clone(), vars: vars.clone() });
        }
        objs.push(Obj { kind: Kind::RemoteEndpoint, owner, vars });
    }
    objs
}

/// Renders every template for every object of its kind, validates each
/// flow against its table, and collects them. A template that does not
/// parse or breaks its table's declaration is an error (the pipeline is
/// wrong); a duplicate flow from two objects is a warning (the state is).
pub fn desired_flows(pipeline: &Pipeline, state: &State) -> Result<DesiredFlows, PipelineError> {
    let mut out = DesiredFlows::default();
    let objs = objects(state, &mut out.warnings);
    // Templates by kind, in file order.
    let mut by_kind: BTreeMap<Kind, Vec<(&TableDecl, &Template)>> = BTreeMap::new();
    for t in &pipeline.tables {
        for tpl in &t.templates {
            by_kind.entry(tpl.kind).or_default().push((t, tpl));
        }
    }
    // Rendering is independent per object: split the objects over the
    // cores, then merge in object order (so the first of two conflicting
    // objects wins, whatever the split).
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    let chunk = objs.len().div_ceil(threads).max(512);
    let rendered: Vec<Result<Vec<Rendered>, PipelineError>> = if objs.len() <= chunk {
        vec![render_objects(&objs, &by_kind, pipeline)]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = objs
                .chunks(chunk)
                .map(|part| {
                    let by_kind = &by_kind;
                    scope.spawn(move || render_objects(part, by_kind, pipeline))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(PipelineError::Template { line: 0, why: "a rendering thread panicked".into() })
                    })
                })
                .collect()
        })
    };
    out.flows.flows.reserve(rendered.iter().map(|r| r.as_ref().map_or(0, Vec::len)).sum());
    for part in rendered {
        for r in part? {
            if let Some(prev) = out.flows.flows.get(&r.key) {
                if *prev != r.value {
                    out.warnings.push(format!(
                        "{}: a flow of table {} conflicts with another object's; skipped",
                        r.owner, r.key.table
                    ));
                }
                continue;
            }
            out.flows.flows.insert(r.key, r.value);
            *out.per_kind.entry(r.kind.name()).or_insert(0) += 1;
        }
    }
    Ok(out)
}

/// One rendered, validated flow.
struct Rendered {
    owner: String,
    kind: Kind,
    key: FlowKey,
    value: FlowValue,
}

fn render_objects(
    objs: &[Obj],
    by_kind: &BTreeMap<Kind, Vec<(&TableDecl, &Template)>>,
    pipeline: &Pipeline,
) -> Result<Vec<Rendered>, PipelineError> {
    let mut out = Vec::with_capacity(objs.len() * 4);
    let mut text = String::new();
    for obj in objs {
        let Some(tpls) = by_kind.get(&obj.kind) else { continue };
        let cookie = cookie_for(&obj.owner);
        for (decl, tpl) in tpls {
            let body = substitute(tpl, &obj.vars)?;
            text.clear();
            let _ = write!(text, "table={},cookie={cookie:#x},{body}", decl.id);
            let fm = parse_flow(&text)
                .map_err(|e| PipelineError::Template { line: tpl.line, why: format!("{text}: {e}") })?;
            validate(decl, &fm, pipeline).map_err(|why| PipelineError::Violation {
                line: tpl.line,
                flow: text.clone(),
                why,
            })?;
            let (key, value) = normalize(&fm);
            let len = flow_mod_len(&key, &value);
            if len > MAX_FLOW_MOD {
                return Err(PipelineError::Violation {
                    line: tpl.line,
                    flow: text.chars().take(200).collect(),
                    why: format!("the flow encodes to {len} bytes; at most {MAX_FLOW_MOD} fit in a bundle"),
                });
            }
            out.push(Rendered { owner: obj.owner.clone(), kind: obj.kind, key, value });
        }
    }
    Ok(out)
}
