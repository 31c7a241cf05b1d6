//! The pipeline declaration (`flows/pipeline.flows`): tables, what each may
//! match and go to, and the flow templates. Parsing only; rendering is in
//! [`super::render`].

use std::collections::BTreeSet;

use super::PipelineError;

/// The pipeline the agent installs, as shipped in `flows/pipeline.flows`.
pub const PIPELINE_TEXT: &str = include_str!("../../flows/pipeline.flows");

/// What a table does with a packet that matches none of its flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    Drop,
}

/// The objects a template is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Once per bridge.
    Pipeline,
    /// Per local endpoint (and the bridge's internal port with host access).
    Endpoint,
    /// Per endpoint whose MAC is not derived from its IP.
    StaticMac,
    /// Per network.
    Network,
    /// Per network and chunk of its local ports (broadcast).
    FloodChunk,
    /// Per network and flow-based tunnel port.
    Tunnel,
    /// Per remote address block.
    RemoteBlock,
    /// Per remote endpoint given one by one.
    RemoteEndpoint,
    /// Per network with a gateway address.
    Gateway,
    /// Per network and address block it reaches through a router (its
    /// own included).
    Route,
    /// Per network block whose network has a way out (the bridge's
    /// internal port to the host's kernel).
    Egress,
    /// Per local endpoint whose network has a gateway, when the agent
    /// answers DNS.
    DnsPunt,
    /// Per service address.
    Service,
    /// Per service and endpoint its backends name (also a bucket of the
    /// service's group).
    ServiceBackend,
    /// Per service, endpoint its backends name, and flow-based tunnel port.
    ServiceBackendTunnel,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "pipeline" => Kind::Pipeline,
            "endpoint" => Kind::Endpoint,
            "static_mac" => Kind::StaticMac,
            "network" => Kind::Network,
            "flood_chunk" => Kind::FloodChunk,
            "tunnel" => Kind::Tunnel,
            "remote_block" => Kind::RemoteBlock,
            "remote_endpoint" => Kind::RemoteEndpoint,
            "gateway" => Kind::Gateway,
            "route" => Kind::Route,
            "egress" => Kind::Egress,
            "dns_punt" => Kind::DnsPunt,
            "service" => Kind::Service,
            "service_backend" => Kind::ServiceBackend,
            "service_backend_tunnel" => Kind::ServiceBackendTunnel,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Kind::Pipeline => "pipeline",
            Kind::Endpoint => "endpoint",
            Kind::StaticMac => "static_mac",
            Kind::Network => "network",
            Kind::FloodChunk => "flood_chunk",
            Kind::Tunnel => "tunnel",
            Kind::RemoteBlock => "remote_block",
            Kind::RemoteEndpoint => "remote_endpoint",
            Kind::Gateway => "gateway",
            Kind::Route => "route",
            Kind::Egress => "egress",
            Kind::DnsPunt => "dns_punt",
            Kind::Service => "service",
            Kind::ServiceBackend => "service_backend",
            Kind::ServiceBackendTunnel => "service_backend_tunnel",
        }
    }
    /// The placeholders a template of this kind may use.
    pub fn placeholders(self) -> &'static [&'static str] {
        match self {
            Kind::Pipeline => &["router_mac"],
            Kind::Endpoint => &["ofport", "mac", "ip", "vni"],
            Kind::StaticMac => &["mac", "mac_hex", "ip", "vni"],
            Kind::Network => &["vni", "cidr", "flood"],
            Kind::FloodChunk => &["vni", "chunk", "outputs"],
            Kind::Tunnel => &["vni", "tunnel_ofport"],
            Kind::RemoteBlock => &["vni", "cidr", "tun_dst", "tunnel_ofport"],
            Kind::RemoteEndpoint => &["vni", "mac", "ip", "tun_dst", "tunnel_ofport"],
            Kind::Gateway => &["vni", "gateway", "router_mac", "router_mac_hex"],
            Kind::Route => &["vni", "dst_vni", "dst_cidr", "router_mac", "router_mac_hex"],
            Kind::Egress => &["vni", "cidr", "cidr_priority", "router_mac", "router_mac_hex", "uplink_mac_hex"],
            Kind::DnsPunt => &["ofport", "gateway", "meter", "vni"],
            Kind::Service => &["vni", "vip", "port", "proto", "group"],
            Kind::ServiceBackend => &["vni", "ip", "port", "proto"],
            Kind::ServiceBackendTunnel => &["vni", "ip", "port", "proto", "tunnel_ofport"],
        }
    }
}

/// One flow template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub kind: Kind,
    /// The flow in ovs-ofctl syntax with `{placeholders}`, without `table=`.
    pub text: String,
    /// Line in the pipeline file, for error messages.
    pub line: usize,
}

/// One table's declaration and templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDecl {
    pub id: u8,
    pub name: String,
    pub purpose: String,
    /// Field names (as the codec names them: `in_port`, `eth_src`, `reg6`...).
    pub matches: BTreeSet<String>,
    pub gotos: BTreeSet<u8>,
    pub miss: Miss,
    /// Whether its flows may send packets to the controller (the agent):
    /// only a table that says so (`controller = yes`) may.
    pub controller: bool,
    pub templates: Vec<Template>,
    /// Group bucket templates (`bucket KIND = ACTIONS`): the buckets of
    /// the select groups this table's flows send to, one per object.
    pub buckets: Vec<Template>,
}

/// The whole pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    pub tables: Vec<TableDecl>,
}

impl Pipeline {
    /// The pipeline shipped with ovsnet.
    pub fn builtin() -> Result<Pipeline, PipelineError> {
        Pipeline::parse(PIPELINE_TEXT)
    }

    pub fn table(&self, id: u8) -> Option<&TableDecl> {
        self.tables.iter().find(|t| t.id == id)
    }

    /// The table ids the pipeline owns (flows there belong to ovsnet).
    pub fn table_ids(&self) -> Vec<u8> {
        self.tables.iter().map(|t| t.id).collect()
    }

    /// Parses the pipeline file format (see the file's header).
    pub fn parse(text: &str) -> Result<Pipeline, PipelineError> {
        let mut tables: Vec<TableDecl> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |why: String| PipelineError::Declaration { line, why };
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            if let Some(head) = l.strip_prefix('[') {
                let head = head.strip_suffix(']').ok_or_else(|| err("a table header ends with ']'".into()))?;
                let mut words = head.split_whitespace();
                if words.next() != Some("table") {
                    return Err(err("a header reads [table N name]".into()));
                }
                let id: u8 = words
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n < 255)
                    .ok_or_else(|| err("table number 0..254 expected".into()))?;
                let name = words.next().ok_or_else(|| err("a table needs a name".into()))?.to_owned();
                if let Some(prev) = tables.last()
                    && prev.id >= id
                {
                    return Err(err(format!("table {id} comes after table {}: keep them in order", prev.id)));
                }
                tables.push(TableDecl {
                    id,
                    name,
                    purpose: String::new(),
                    matches: BTreeSet::new(),
                    gotos: BTreeSet::new(),
                    miss: Miss::Drop,
                    controller: false,
                    templates: Vec::new(),
                    buckets: Vec::new(),
                });
                continue;
            }
            let table = tables.last_mut().ok_or_else(|| err("a [table N name] header must come first".into()))?;
            let (key, value) = l.split_once('=').ok_or_else(|| err(format!("expected KEY = VALUE, got {l:?}")))?;
            let (key, value) = (key.trim(), value.trim());
            if let Some(kind) = key.strip_prefix("flow ") {
                let kind = Kind::parse(kind.trim()).ok_or_else(|| err(format!("unknown flow kind {kind:?}")))?;
                check_placeholders(kind, value).map_err(err)?;
                table.templates.push(Template { kind, text: value.to_owned(), line });
                continue;
            }
            if let Some(kind) = key.strip_prefix("bucket ") {
                let kind = Kind::parse(kind.trim()).ok_or_else(|| err(format!("unknown bucket kind {kind:?}")))?;
                check_placeholders(kind, value).map_err(err)?;
                table.buckets.push(Template { kind, text: value.to_owned(), line });
                continue;
            }
            match key {
                "purpose" => table.purpose = value.to_owned(),
                "match" => {
                    for f in value.split_whitespace() {
                        if crate::openflow::Field::by_name(f).is_none() {
                            return Err(err(format!("unknown field {f:?}")));
                        }
                        table.matches.insert(f.to_owned());
                    }
                }
                "goto" => {
                    for t in value.split_whitespace() {
                        let t: u8 = t.parse().map_err(|_| err(format!("bad table number {t:?}")))?;
                        if t <= table.id {
                            return Err(err(format!("table {} may only go forward, not to {t}", table.id)));
                        }
                        table.gotos.insert(t);
                    }
                }
                "controller" => match value {
                    "yes" => table.controller = true,
                    "no" => table.controller = false,
                    other => return Err(err(format!("controller = yes or no, not {other:?}"))),
                },
                "miss" => match value {
                    "drop" => table.miss = Miss::Drop,
                    other => return Err(err(format!("unknown miss behaviour {other:?} (only drop)"))),
                },
                other => return Err(err(format!("unknown key {other:?}"))),
            }
        }
        // Every goto must name a declared table.
        let ids: BTreeSet<u8> = tables.iter().map(|t| t.id).collect();
        for t in &tables {
            if let Some(bad) = t.gotos.iter().find(|g| !ids.contains(g)) {
                return Err(PipelineError::Declaration {
                    line: 0,
                    why: format!("table {} goes to undeclared table {bad}", t.id),
                });
            }
        }
        if tables.is_empty() {
            return Err(PipelineError::Declaration { line: 0, why: "no tables".into() });
        }
        Ok(Pipeline { tables })
    }
}

/// Every `{name}` in `text` must be one of the kind's placeholders.
fn check_placeholders(kind: Kind, text: &str) -> Result<(), String> {
    for name in placeholders_in(text)? {
        if !kind.placeholders().contains(&name) {
            return Err(format!(
                "placeholder {{{name}}} is not available to a {} flow (it has: {})",
                kind.name(),
                kind.placeholders().join(", ")
            ));
        }
    }
    Ok(())
}

/// The placeholder names in a template.
pub fn placeholders_in(text: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let end = after.find('}').ok_or_else(|| format!("unclosed '{{' in {text:?}"))?;
        out.push(&after[..end]);
        rest = &after[end + 1..];
    }
    Ok(out)
}
