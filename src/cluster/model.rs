//! The cluster database's rows as typed values, the whole state as the
//! monitor sees it, and [`remote_view`]: what one host must know about the
//! others to forward to them. All pure.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use serde::Serialize;

use super::ipam;
use crate::net::IpNet;
use crate::ovsdb::{Cache, Datum, Row, Uuid};

/// The database name in `ovsnet.ovsschema`.
pub const DB: &str = "OVSNET";

/// The schema, built into the binary so `cluster init` needs no file.
pub const SCHEMA: &str = include_str!("../../ovsdb-schemas/ovsnet.ovsschema");

/// The `external_ids` key an Endpoint row carries, with value
/// [`COVERED_VALUE`], when it was written while its host's block covered it
/// (see [`covered_by_block`]). Other hosts' agents do not follow such rows:
/// the block's single flow already describes them.
pub const COVERED_KEY: &str = "ovsnet-covered";
/// The value of [`COVERED_KEY`] on a covered row.
pub const COVERED_VALUE: &str = "true";

pub mod table {
    pub const HOST: &str = "Host";
    pub const NETWORK: &str = "Network";
    pub const BLOCK: &str = "Block";
    pub const ENDPOINT: &str = "Endpoint";
    /// Since schema 1.1.0; a database still at 1.0.0 has none.
    pub const ROUTER: &str = "Router";
    /// Since schema 1.2.0.
    pub const SERVICE: &str = "Service";
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{table} row {uuid}: {message}")]
pub struct RowError {
    pub table: &'static str,
    pub uuid: Uuid,
    pub message: String,
}

fn display<S: serde::Serializer>(v: &IpNet, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn display_opt<S: serde::Serializer>(v: &Option<IpNet>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

/// How a network hands out addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ipam {
    /// Addresses are given by the user (or, when omitted, the lowest free
    /// one of the whole CIDR, through the database).
    Static,
    /// Each host claims a block of `block_prefix` from the CIDR.
    Pool,
    /// Each host's block follows from its underlay address.
    Fan,
}

impl Ipam {
    pub fn as_str(self) -> &'static str {
        match self {
            Ipam::Static => "static",
            Ipam::Pool => "pool",
            Ipam::Fan => "fan",
        }
    }
}

impl FromStr for Ipam {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "static" => Ok(Ipam::Static),
            "pool" => Ok(Ipam::Pool),
            "fan" => Ok(Ipam::Fan),
            other => Err(format!("unknown IPAM mode {other:?}: static, pool or fan")),
        }
    }
}

impl std::fmt::Display for Ipam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Host {
    #[serde(skip)]
    pub uuid: Uuid,
    pub name: String,
    pub underlay_ip: IpAddr,
    pub tunnel_types: BTreeSet<String>,
    /// The last probe the host's agent answered (a copy of `probe`); an
    /// agent of schema 1.2.0 or older bumped it on a timer instead.
    pub heartbeat: i64,
    /// Milliseconds between timed heartbeats, as an agent of schema 1.2.0
    /// or older promised (0: none; today's agents answer probes instead).
    pub heartbeat_interval: i64,
    /// Bumped by whoever asks the host's agent whether it is alive
    /// (`host del`); the agent answers by copying it to `heartbeat`.
    pub probe: i64,
    /// Milliseconds within which the agent promised to answer a probe (0:
    /// it answers none).
    pub probe_timeout: i64,
    pub external_ids: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Network {
    #[serde(skip)]
    pub uuid: Uuid,
    pub name: String,
    pub vni: u32,
    #[serde(serialize_with = "display")]
    pub cidr: IpNet,
    pub ipam: Ipam,
    pub mtu: Option<u32>,
    pub block_prefix: Option<u8>,
    /// Fan: the underlay network the overlay maps onto.
    #[serde(serialize_with = "display_opt")]
    pub underlay: Option<IpNet>,
    pub gateway: Option<Ipv4Addr>,
    /// No way out through the hosts (Docker's `--internal`).
    pub internal: bool,
    pub external_ids: BTreeMap<String, String>,
}

/// A host's address block in a pool or Fan network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Block {
    #[serde(skip)]
    pub uuid: Uuid,
    #[serde(skip)]
    pub network: Uuid,
    pub host: String,
    #[serde(serialize_with = "display")]
    pub cidr: IpNet,
}

/// The `external_ids` keys of an `Endpoint` row that name it (written as
/// the Docker engine names a container's endpoint; read by whatever
/// answers names).
pub mod endpoint_keys {
    /// The container's name, as Docker shows it (no leading `/`).
    pub const CONTAINER_NAME: &str = "container-name";
    /// The container's `--network-alias`es in this network, comma-separated.
    pub const ALIASES: &str = "aliases";
}

/// The `external_ids` keys of a `Network` row that ovsnet reads.
pub mod network_keys {
    /// `off`: names not in the network get NXDOMAIN from the agent's DNS
    /// instead of being forwarded to the host's resolvers.
    pub const DNS_FORWARD: &str = "dns-forward";
}

/// Endpoints (network name, address) whose rows a writer in this process
/// holds before their port exists: the Docker driver's, between
/// `RequestAddress` and `Join` (or `ReleaseAddress`). A row with no port
/// is stale only when nobody holds it, so an agent's first look after a
/// restart leaves these alone.
#[derive(Debug, Clone, Default)]
pub struct HeldEndpoints(std::sync::Arc<std::sync::Mutex<BTreeSet<(String, IpAddr)>>>);

impl HeldEndpoints {
    fn set(&self) -> std::sync::MutexGuard<'_, BTreeSet<(String, IpAddr)>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    pub fn hold(&self, network: &str, ip: IpAddr) {
        self.set().insert((network.to_owned(), ip));
    }
    pub fn release(&self, network: &str, ip: IpAddr) {
        self.set().remove(&(network.to_owned(), ip));
    }
    pub fn holds(&self, network: &str, ip: IpAddr) -> bool {
        self.set().contains(&(network.to_owned(), ip))
    }
}

/// A distributed router: the networks on it reach each other, routed by
/// every host's flows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Router {
    #[serde(skip)]
    pub uuid: Uuid,
    pub name: String,
    #[serde(skip)]
    pub networks: BTreeSet<Uuid>,
    pub external_ids: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    #[serde(skip)]
    pub uuid: Uuid,
    #[serde(skip)]
    pub network: Uuid,
    pub host: String,
    pub ip: IpAddr,
    pub mac: String,
    pub container: String,
    pub interface: String,
    pub external_ids: BTreeMap<String, String>,
}

struct Cols<'a> {
    table: &'static str,
    uuid: Uuid,
    row: &'a Row,
}

impl<'a> Cols<'a> {
    fn err(&self, message: String) -> RowError {
        RowError { table: self.table, uuid: self.uuid, message }
    }
    fn get(&self, col: &str) -> Result<&'a Datum, RowError> {
        self.row.get(col).ok_or_else(|| self.err(format!("no column {col}")))
    }
    fn string(&self, col: &str) -> Result<String, RowError> {
        self.get(col)?.as_str().map(str::to_owned).ok_or_else(|| self.err(format!("{col} is not a string")))
    }
    fn opt_string(&self, col: &str) -> Option<String> {
        self.row.get(col).and_then(|d| d.as_str()).map(str::to_owned)
    }
    fn int(&self, col: &str) -> Result<i64, RowError> {
        self.get(col)?.as_integer().ok_or_else(|| self.err(format!("{col} is not an integer")))
    }
    fn opt_int(&self, col: &str) -> Option<i64> {
        self.row.get(col).and_then(|d| d.as_integer())
    }
    fn uuid_col(&self, col: &str) -> Result<Uuid, RowError> {
        self.get(col)?.as_uuid().ok_or_else(|| self.err(format!("{col} is not a reference")))
    }
    fn map(&self, col: &str) -> BTreeMap<String, String> {
        self.row.get(col).and_then(|d| d.as_string_map()).unwrap_or_default()
    }
    fn string_set(&self, col: &str) -> BTreeSet<String> {
        match self.row.get(col) {
            Some(d) => match d.as_set() {
                Some(atoms) => atoms.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect(),
                None => d.as_str().map(|s| BTreeSet::from([s.to_owned()])).unwrap_or_default(),
            },
            None => BTreeSet::new(),
        }
    }
    fn parse<T: FromStr>(&self, col: &str) -> Result<T, RowError>
    where
        T::Err: std::fmt::Display,
    {
        let s = self.string(col)?;
        s.parse().map_err(|e| self.err(format!("{col} {s:?}: {e}")))
    }
}

impl Host {
    pub fn from_row(uuid: Uuid, row: &Row) -> Result<Self, RowError> {
        let c = Cols { table: table::HOST, uuid, row };
        Ok(Host {
            uuid,
            name: c.string("name")?,
            underlay_ip: c.parse("underlay_ip")?,
            tunnel_types: c.string_set("tunnel_types"),
            heartbeat: c.opt_int("heartbeat").unwrap_or(0),
            heartbeat_interval: c.opt_int("heartbeat_interval").unwrap_or(0),
            probe: c.opt_int("probe").unwrap_or(0),
            probe_timeout: c.opt_int("probe_timeout").unwrap_or(0),
            external_ids: c.map("external_ids"),
        })
    }
}

impl Network {
    pub fn from_row(uuid: Uuid, row: &Row) -> Result<Self, RowError> {
        let c = Cols { table: table::NETWORK, uuid, row };
        let cidr_s = c.string("cidr")?;
        let cidr = IpNet::parse_network(&cidr_s).map_err(|e| c.err(e.to_string()))?;
        let underlay = match c.opt_string("underlay") {
            Some(s) => Some(IpNet::parse_network(&s).map_err(|e| c.err(e.to_string()))?),
            None => None,
        };
        let gateway = match c.opt_string("gateway") {
            Some(s) => Some(s.parse().map_err(|_| c.err(format!("gateway {s:?} is not an IPv4 address")))?),
            None => None,
        };
        Ok(Network {
            uuid,
            name: c.string("name")?,
            vni: u32::try_from(c.int("vni")?).map_err(|_| c.err("vni out of range".into()))?,
            cidr,
            ipam: c.parse("ipam")?,
            mtu: c.opt_int("mtu").and_then(|m| u32::try_from(m).ok()),
            block_prefix: c.opt_int("block_prefix").and_then(|m| u8::try_from(m).ok()),
            underlay,
            gateway,
            internal: c.row.get("internal").and_then(Datum::as_bool).unwrap_or(false),
            external_ids: c.map("external_ids"),
        })
    }

    /// The block a host serves in this network, when it follows from the
    /// network alone (Fan); pool blocks are claimed in the database.
    pub fn fan_block(&self, host_underlay: IpAddr) -> Result<Option<IpNet>, ipam::IpamError> {
        match (self.ipam, self.underlay, host_underlay) {
            (Ipam::Fan, Some(u), IpAddr::V4(h)) => ipam::fan_block(self.cidr, u, h).map(Some),
            _ => Ok(None),
        }
    }
}

impl Block {
    pub fn from_row(uuid: Uuid, row: &Row) -> Result<Self, RowError> {
        let c = Cols { table: table::BLOCK, uuid, row };
        let cidr_s = c.string("cidr")?;
        Ok(Block {
            uuid,
            network: c.uuid_col("network")?,
            host: c.string("host")?,
            cidr: IpNet::parse_network(&cidr_s).map_err(|e| c.err(e.to_string()))?,
        })
    }
}

impl Router {
    pub fn from_row(uuid: Uuid, row: &Row) -> Result<Self, RowError> {
        let c = Cols { table: table::ROUTER, uuid, row };
        let networks = match row.get("networks") {
            Some(d) => match d.as_set() {
                Some(atoms) => atoms.iter().filter_map(|a| a.as_uuid()).collect(),
                None => d.as_uuid().into_iter().collect(),
            },
            None => BTreeSet::new(),
        };
        Ok(Router { uuid, name: c.string("name")?, networks, external_ids: c.map("external_ids") })
    }
}

/// A service: connections to its virtual address (`vip:port`) in a
/// network are spread over its backends (endpoints of that network named
/// by their container name or an alias) by every host's flows, through
/// the select group `group_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    #[serde(skip)]
    pub uuid: Uuid,
    pub name: String,
    pub network: String,
    pub vip: Ipv4Addr,
    pub port: u16,
    pub protocol: crate::net::Transport,
    pub backends: Vec<String>,
    pub group_id: u32,
    pub external_ids: BTreeMap<String, String>,
}

impl Service {
    pub fn from_row(uuid: Uuid, row: &Row) -> Result<Self, RowError> {
        let c = Cols { table: table::SERVICE, uuid, row };
        let backends = match row.get("backends") {
            Some(d) => match d.as_set() {
                Some(atoms) => atoms.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect(),
                None => d.as_str().map(str::to_owned).into_iter().collect(),
            },
            None => Vec::new(),
        };
        let port = c.int("port")?;
        let group_id = c.int("group_id")?;
        Ok(Service {
            uuid,
            name: c.string("name")?,
            network: c.string("network")?,
            vip: c.parse("vip")?,
            port: u16::try_from(port).map_err(|_| c.err(format!("port {port} out of range")))?,
            protocol: c.parse("protocol")?,
            backends,
            group_id: u32::try_from(group_id).map_err(|_| c.err(format!("group_id {group_id} out of range")))?,
            external_ids: c.map("external_ids"),
        })
    }
}

impl Endpoint {
    pub fn from_row(uuid: Uuid, row: &Row) -> Result<Self, RowError> {
        let c = Cols { table: table::ENDPOINT, uuid, row };
        Ok(Endpoint {
            uuid,
            network: c.uuid_col("network")?,
            host: c.string("host")?,
            ip: c.parse("ip")?,
            mac: c.string("mac")?,
            container: c.string("container")?,
            interface: c.string("interface")?,
            external_ids: c.map("external_ids"),
        })
    }
}

/// Everything in the cluster database, typed. Rows that do not parse are
/// kept out and listed in `bad_rows` (a newer writer must not break an
/// older reader).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterState {
    pub hosts: BTreeMap<String, Host>,
    pub networks: BTreeMap<String, Network>,
    pub blocks: Vec<Block>,
    pub endpoints: Vec<Endpoint>,
    /// By name (none from a database at schema 1.0.0).
    pub routers: BTreeMap<String, Router>,
    /// By name (none from a database before schema 1.2.0).
    pub services: BTreeMap<String, Service>,
    pub bad_rows: Vec<RowError>,
}

impl ClusterState {
    /// The Endpoint rows of a names watch ([`super::ClusterDb::watch_endpoints_of`]):
    /// a `monitor_cond` snapshot leaves out columns whose value is the
    /// default, so a missing string column (the Docker driver's rows have
    /// no interface) is taken as the empty string here.
    pub fn endpoints_from_cache(cache: &Cache) -> Self {
        let mut s = ClusterState::default();
        for (uuid, row) in cache.table(table::ENDPOINT) {
            let mut row = row.clone();
            for col in ["host", "ip", "mac", "container", "interface"] {
                row.entry(col.to_owned()).or_insert_with(|| Datum::from(""));
            }
            match Endpoint::from_row(*uuid, &row) {
                Ok(e) => s.endpoints.push(e),
                Err(e) => s.bad_rows.push(e),
            }
        }
        s.endpoints.sort_by(|a, b| (&a.host, a.ip).cmp(&(&b.host, b.ip)));
        s
    }

    /// Builds the state from a monitor cache of the four tables.
    pub fn from_cache(cache: &Cache) -> Self {
        let mut s = ClusterState::default();
        for (uuid, row) in cache.table(table::HOST) {
            match Host::from_row(*uuid, row) {
                Ok(h) => {
                    s.hosts.insert(h.name.clone(), h);
                }
                Err(e) => s.bad_rows.push(e),
            }
        }
        for (uuid, row) in cache.table(table::NETWORK) {
            match Network::from_row(*uuid, row) {
                Ok(n) => {
                    s.networks.insert(n.name.clone(), n);
                }
                Err(e) => s.bad_rows.push(e),
            }
        }
        for (uuid, row) in cache.table(table::BLOCK) {
            match Block::from_row(*uuid, row) {
                Ok(b) => s.blocks.push(b),
                Err(e) => s.bad_rows.push(e),
            }
        }
        for (uuid, row) in cache.table(table::ENDPOINT) {
            match Endpoint::from_row(*uuid, row) {
                Ok(e) => s.endpoints.push(e),
                Err(e) => s.bad_rows.push(e),
            }
        }
        for (uuid, row) in cache.table(table::ROUTER) {
            match Router::from_row(*uuid, row) {
                Ok(r) => {
                    s.routers.insert(r.name.clone(), r);
                }
                Err(e) => s.bad_rows.push(e),
            }
        }
        for (uuid, row) in cache.table(table::SERVICE) {
            match Service::from_row(*uuid, row) {
                Ok(v) => {
                    s.services.insert(v.name.clone(), v);
                }
                Err(e) => s.bad_rows.push(e),
            }
        }
        s.endpoints.sort_by(|a, b| (&a.host, a.ip).cmp(&(&b.host, b.ip)));
        s.blocks.sort_by(|a, b| (&a.host, a.cidr).cmp(&(&b.host, b.cidr)));
        s
    }

    pub fn network_by_uuid(&self, uuid: Uuid) -> Option<&Network> {
        self.networks.values().find(|n| n.uuid == uuid)
    }

    /// Each router with the names of its networks (those that exist), by
    /// router name.
    pub fn router_networks(&self) -> BTreeMap<&str, Vec<&str>> {
        let names: BTreeMap<Uuid, &str> = self.networks.values().map(|n| (n.uuid, n.name.as_str())).collect();
        self.routers
            .values()
            .map(|r| (r.name.as_str(), r.networks.iter().filter_map(|u| names.get(u).copied()).collect()))
            .collect()
    }

    /// The endpoints of one network.
    pub fn endpoints_of<'a>(&'a self, network: &'a Network) -> impl Iterator<Item = &'a Endpoint> + 'a {
        self.endpoints.iter().filter(move |e| e.network == network.uuid)
    }

    /// The block a host serves in a network: its claimed pool block, or
    /// its Fan block.
    pub fn host_block(&self, network: &Network, host: &Host) -> Option<IpNet> {
        match network.ipam {
            Ipam::Static => None,
            Ipam::Fan => network.fan_block(host.underlay_ip).ok().flatten(),
            Ipam::Pool => self.blocks.iter().find(|b| b.network == network.uuid && b.host == host.name).map(|b| b.cidr),
        }
    }
}

/// Whether an endpoint at `ip` with `mac` is described by its host's block
/// `block` (`None`: the host has none in that network, as in a static
/// network): an IPv4 address inside the block whose MAC is exactly the one
/// derived from it ([`ipam::mac_for`]). The same rule decides which remote
/// endpoints [`remote_view`] lists one by one and which Endpoint rows are
/// written with the [`COVERED_KEY`] marker.
pub fn covered_by_block(block: Option<IpNet>, ip: IpAddr, mac: &str) -> bool {
    match (block, ip) {
        (Some(block), IpAddr::V4(v4)) => block.contains(ip) && mac == crate::net::Mac(ipam::mac_for(v4)).to_string(),
        _ => false,
    }
}

/// Whether an Endpoint row's `external_ids` carry the [`COVERED_KEY`] marker.
pub fn is_marked_covered(external_ids: &BTreeMap<String, String>) -> bool {
    external_ids.get(COVERED_KEY).is_some_and(|v| v == COVERED_VALUE)
}

/// A remote host's whole block in one network: one flow covers every
/// address in it (MACs follow from addresses, see [`ipam::mac_for`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RemoteBlock {
    pub host: String,
    pub underlay_ip: IpAddr,
    pub network: String,
    pub vni: u32,
    #[serde(serialize_with = "display")]
    pub cidr: IpNet,
}

/// One remote endpoint that its host's block does not cover: in a static
/// network, outside the block, or with a MAC of its own.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RemoteEndpoint {
    pub host: String,
    pub underlay_ip: IpAddr,
    pub network: String,
    pub vni: u32,
    pub ip: IpAddr,
    pub mac: String,
}

/// What a host must know to forward to the rest of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RemoteView {
    pub blocks: Vec<RemoteBlock>,
    pub endpoints: Vec<RemoteEndpoint>,
}

/// The remote view of `this_host`: per (host, network) blocks for pool and
/// Fan networks, and individual endpoints only where a block does not
/// describe them. A host's flow count thus grows with the number of hosts,
/// not with every endpoint in the cluster. Endpoints of hosts with no Host
/// row (no underlay address known) cannot be reached and are left out.
pub fn remote_view(state: &ClusterState, this_host: &str) -> RemoteView {
    let mut view = RemoteView::default();
    let mut host_blocks: BTreeMap<(Uuid, &str), IpNet> = BTreeMap::new();
    for network in state.networks.values() {
        if network.ipam == Ipam::Static {
            continue;
        }
        for host in state.hosts.values().filter(|h| h.name != this_host) {
            if let Some(cidr) = state.host_block(network, host) {
                host_blocks.insert((network.uuid, host.name.as_str()), cidr);
                view.blocks.push(RemoteBlock {
                    host: host.name.clone(),
                    underlay_ip: host.underlay_ip,
                    network: network.name.clone(),
                    vni: network.vni,
                    cidr,
                });
            }
        }
    }
    for e in state.endpoints.iter().filter(|e| e.host != this_host) {
        let (Some(host), Some(network)) = (state.hosts.get(&e.host), state.network_by_uuid(e.network)) else {
            continue;
        };
        let block = host_blocks.get(&(network.uuid, e.host.as_str())).copied();
        if !covered_by_block(block, e.ip, &e.mac) {
            view.endpoints.push(RemoteEndpoint {
                host: e.host.clone(),
                underlay_ip: host.underlay_ip,
                network: network.name.clone(),
                vni: network.vni,
                ip: e.ip,
                mac: e.mac.clone(),
            });
        }
    }
    view.blocks.sort();
    view.endpoints.sort();
    view
}

/// Rows made by hand, for the tests of this module and of those that read
/// the cluster's state.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod fixtures {
    use super::*;

    pub(crate) fn host(name: &str, ip: &str, tunnels: &[&str]) -> Host {
        Host {
            uuid: Uuid::new_v4(),
            name: name.into(),
            underlay_ip: ip.parse().unwrap(),
            tunnel_types: tunnels.iter().map(|t| (*t).to_owned()).collect(),
            heartbeat: 0,
            heartbeat_interval: 0,
            probe: 0,
            probe_timeout: 0,
            external_ids: BTreeMap::new(),
        }
    }

    /// A network; Pool ones take /24 blocks, Fan ones map 172.30.0.0/16.
    pub(crate) fn network(name: &str, vni: u32, cidr: &str, ipam: Ipam) -> Network {
        Network {
            uuid: Uuid::new_v4(),
            name: name.into(),
            vni,
            cidr: IpNet::parse_network(cidr).unwrap(),
            ipam,
            mtu: None,
            block_prefix: (ipam == Ipam::Pool).then_some(24),
            underlay: (ipam == Ipam::Fan).then(|| IpNet::parse_network("172.30.0.0/16").unwrap()),
            gateway: None,
            internal: false,
            external_ids: BTreeMap::new(),
        }
    }

    /// An endpoint of `net` on `host` with the MAC derived from its address.
    pub(crate) fn endpoint(net: &Network, host: &str, ip: &str) -> Endpoint {
        let v4: std::net::Ipv4Addr = ip.parse().unwrap();
        Endpoint {
            uuid: Uuid::new_v4(),
            network: net.uuid,
            host: host.into(),
            ip: ip.parse().unwrap(),
            mac: crate::net::Mac::from_ipv4(v4).to_string(),
            container: format!("c-{ip}"),
            interface: "eth1".into(),
            external_ids: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    use super::fixtures::{endpoint, network};

    pub(crate) fn host(name: &str, ip: &str) -> Host {
        super::fixtures::host(name, ip, &["vxlan"])
    }

    fn state() -> ClusterState {
        let mut s = ClusterState::default();
        for (n, ip) in [("h1", "172.30.0.1"), ("h2", "172.30.0.2"), ("h3", "172.30.0.3")] {
            s.hosts.insert(n.into(), host(n, ip));
        }
        let fan = network("fan", 1, "10.0.0.0/8", Ipam::Fan);
        let pool = network("pool", 2, "10.50.0.0/16", Ipam::Pool);
        let st = network("st", 3, "192.168.9.0/24", Ipam::Static);
        s.blocks.push(Block {
            uuid: Uuid::new_v4(),
            network: pool.uuid,
            host: "h2".into(),
            cidr: IpNet::parse_network("10.50.1.0/24").unwrap(),
        });
        s.endpoints.push(endpoint(&fan, "h2", "10.0.2.2"));
        s.endpoints.push(endpoint(&fan, "h2", "10.0.2.3"));
        // Outside its host's Fan block: listed on its own.
        s.endpoints.push(endpoint(&fan, "h3", "10.0.9.9"));
        s.endpoints.push(endpoint(&pool, "h2", "10.50.1.2"));
        s.endpoints.push(endpoint(&st, "h2", "192.168.9.5"));
        s.endpoints.push(endpoint(&st, "h1", "192.168.9.6"));
        // A host with no Host row.
        s.endpoints.push(endpoint(&st, "ghost", "192.168.9.7"));
        for n in [fan, pool, st] {
            s.networks.insert(n.name.clone(), n);
        }
        s
    }

    #[test]
    fn remote_view_lists_blocks_and_only_uncovered_endpoints() {
        let v = remote_view(&state(), "h1");
        let blocks: Vec<String> =
            v.blocks.iter().map(|b| format!("{} {} {} {}", b.host, b.network, b.vni, b.cidr)).collect();
        assert_eq!(blocks, ["h2 fan 1 10.0.2.0/24", "h2 pool 2 10.50.1.0/24", "h3 fan 1 10.0.3.0/24"]);
        let eps: Vec<String> = v.endpoints.iter().map(|e| format!("{} {} {}", e.host, e.network, e.ip)).collect();
        assert_eq!(eps, ["h2 st 192.168.9.5", "h3 fan 10.0.9.9"]);
        assert!(v.endpoints.iter().all(|e| e.underlay_ip.to_string().starts_with("172.30.0.")));
    }

    #[test]
    fn a_custom_mac_is_listed_individually() {
        let mut s = state();
        let e = s.endpoints.iter_mut().find(|e| e.ip.to_string() == "10.0.2.3").unwrap();
        e.mac = "02:00:00:00:00:01".into();
        let v = remote_view(&s, "h1");
        assert!(v.endpoints.iter().any(|e| e.ip.to_string() == "10.0.2.3" && e.mac == "02:00:00:00:00:01"));
    }

    #[test]
    fn remote_view_grows_with_hosts_not_endpoints() {
        let mut s = ClusterState::default();
        let fan = network("fan", 7, "10.0.0.0/8", Ipam::Fan);
        for h in 1..=50u32 {
            let name = format!("h{h}");
            s.hosts.insert(name.clone(), host(&name, &format!("172.30.0.{h}")));
            for c in 2..12 {
                s.endpoints.push(endpoint(&fan, &name, &format!("10.0.{h}.{c}")));
            }
        }
        s.networks.insert("fan".into(), fan);
        let v = remote_view(&s, "h1");
        assert_eq!(v.blocks.len(), 49);
        assert!(v.endpoints.is_empty());
    }

    #[test]
    fn the_marker_decision_follows_the_block_rule() {
        let net = |s: &str| Some(IpNet::parse_network(s).unwrap());
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let derived = |s: &str| crate::net::Mac(ipam::mac_for(s.parse().unwrap())).to_string();
        // Fan or pool: inside the host's block, derived MAC.
        assert!(covered_by_block(net("10.0.2.0/24"), ip("10.0.2.7"), &derived("10.0.2.7")));
        // Static network (no block), or a pool host without a block yet.
        assert!(!covered_by_block(None, ip("192.168.9.5"), &derived("192.168.9.5")));
        // Outside the block.
        assert!(!covered_by_block(net("10.0.2.0/24"), ip("10.0.9.9"), &derived("10.0.9.9")));
        // A MAC of its own, or the derived one in another spelling.
        assert!(!covered_by_block(net("10.0.2.0/24"), ip("10.0.2.7"), "02:00:00:00:00:01"));
        assert!(!covered_by_block(net("10.0.2.0/24"), ip("10.0.2.7"), &derived("10.0.2.7").to_uppercase()));
        // IPv6: never (MACs do not follow from IPv6 addresses).
        assert!(!covered_by_block(net("10.0.2.0/24"), ip("fd00::7"), "02:00:00:00:00:07"));
        assert!(is_marked_covered(&[(COVERED_KEY.to_owned(), COVERED_VALUE.to_owned())].into()));
        assert!(!is_marked_covered(&[(COVERED_KEY.to_owned(), "false".to_owned())].into()));
        assert!(!is_marked_covered(&BTreeMap::new()));
    }

    /// Marks rows the way the writer does (the block of the host at write
    /// time), then checks that dropping other hosts' marked rows leaves
    /// every host's remote view unchanged.
    #[test]
    fn remote_view_without_other_hosts_covered_rows_is_the_same() {
        let mut s = state();
        let e = s.endpoints.iter_mut().find(|e| e.ip.to_string() == "10.0.2.3").unwrap();
        e.mac = "02:00:00:00:00:01".into();
        let marks: Vec<bool> = s
            .endpoints
            .iter()
            .map(|e| {
                let (Some(h), Some(n)) = (s.hosts.get(&e.host), s.network_by_uuid(e.network)) else {
                    return false;
                };
                covered_by_block(s.host_block(n, h), e.ip, &e.mac)
            })
            .collect();
        for (e, m) in s.endpoints.iter_mut().zip(&marks) {
            if *m {
                e.external_ids.insert(COVERED_KEY.into(), COVERED_VALUE.into());
            }
        }
        assert_eq!(marks.iter().filter(|m| **m).count(), 2, "10.0.2.2 (fan) and 10.50.1.2 (pool)");
        for me in ["h1", "h2", "h3"] {
            let mut scoped = s.clone();
            scoped.endpoints.retain(|e| e.host == me || !is_marked_covered(&e.external_ids));
            assert_eq!(remote_view(&scoped, me), remote_view(&s, me), "{me}");
        }
    }

    #[test]
    fn rows_parse_and_bad_rows_are_reported() {
        let schema = std::sync::Arc::new(crate::ovsdb::DatabaseSchema::parse(SCHEMA).unwrap());
        let mut cache = Cache::new(schema);
        let upd = serde_json::json!({
            "Host": {
                "11111111-1111-1111-1111-111111111111": {"initial": {"name": "h1", "underlay_ip": "172.30.0.1",
                    "tunnel_types": ["set", ["gre", "vxlan"]], "heartbeat": 3}},
                "22222222-2222-2222-2222-222222222222": {"initial": {"name": "bad", "underlay_ip": "not-an-ip"}}
            },
            "Network": {
                "33333333-3333-3333-3333-333333333333": {"initial": {"name": "n", "vni": 5, "cidr": "10.0.0.0/8",
                    "ipam": "fan", "underlay": "172.30.0.0/16", "mtu": ["set", []]}}
            }
        });
        cache.apply_update2(&upd).unwrap();
        let s = ClusterState::from_cache(&cache);
        assert_eq!(s.hosts["h1"].tunnel_types, BTreeSet::from(["gre".to_owned(), "vxlan".to_owned()]));
        assert_eq!(s.hosts["h1"].heartbeat, 3);
        assert_eq!(s.bad_rows.len(), 1);
        let n = &s.networks["n"];
        assert_eq!((n.vni, n.ipam, n.mtu), (5, Ipam::Fan, None));
        assert_eq!(n.fan_block("172.30.0.28".parse().unwrap()).unwrap().unwrap().to_string(), "10.0.28.0/24");
    }
}
