//! Static-IP attachment of containers to an Open vSwitch bridge.
//!
//! This module holds the pure parts: what an attachment is, how it is
//! spelled in `external_ids`, the deterministic host-side interface name,
//! the MAC derived from the IP, and the OVSDB operations of each command.
//! [`engine`] carries them out (netlink, OVSDB, Docker), step by step
//! with explicit rollback.
//!
//! The truth lives in OVSDB: every attachment is one `Port` and one
//! `Interface` row whose `external_ids` say who they belong to. Nothing is
//! kept in a local file.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::container::NetnsId;
use crate::net::{AddrError, IpNet, Mac, PublishedPort};
use crate::ovsdb::{Condition, Datum, Function, Mutation, Mutator, Operation, Row, Uuid, WaitUntil};
use crate::vswitch::Interface;
use crate::vswitch::txn::PortSpec;

pub mod engine;

pub use engine::{AttachReport, Attacher, AttacherOptions, Change, Liveness, Step};

pub use crate::vswitch::keys;

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error(transparent)]
    Addr(#[from] AddrError),
    #[error("{0}")]
    BadInput(String),
    #[error("bridge {0} does not exist")]
    NoBridge(String),
    #[error(
        "{ip} is already attached on {bridge} to container {holder} ({port}); detach it or run `ovsnet gc {bridge}`"
    )]
    IpInUse { ip: Ipv4Addr, bridge: String, holder: String, port: String },
    #[error("host port {port} is already published on {bridge} by {holder} ({taken}); detach it first")]
    PortPublished { port: PublishedPort, taken: PublishedPort, holder: String, bridge: String },
    #[error("container {container} already has {ifname} on {bridge} with {existing}; detach it first to change it")]
    Conflict { container: String, ifname: String, bridge: String, existing: String },
    #[error("no attachment of {container} ({ifname}) on {bridge}")]
    NotAttached { container: String, ifname: String, bridge: String },
    #[error(transparent)]
    Container(#[from] crate::container::ContainerError),
    #[error(transparent)]
    Netlink(#[from] crate::netlink::NetlinkError),
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
    #[error("database: {0}")]
    Ovsdb(#[from] crate::ovsdb::Error),
    #[error("ovs-vswitchd did not give {port} an OpenFlow port within {secs} s (is it running?)")]
    NoOfport { port: String, secs: u64 },
    #[error("ovs-vswitchd could not add {port}: {error}")]
    InterfaceError { port: String, error: String },
    #[error("unexpected database reply: {0}")]
    Reply(String),
    /// A failure injected by a test hook (see [`engine::Attacher::set_step_hook`]).
    #[error("injected failure after step {0:?}")]
    Injected(Step),
}

/// A route to add inside the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Route {
    pub dest: Ipv4Addr,
    pub prefix: u8,
    /// `None`: on-link through the attached interface.
    pub gateway: Option<Ipv4Addr>,
}

/// What `ovsnet attach` is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachRequest {
    pub bridge: String,
    pub container: crate::container::ContainerRef,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    pub ifname: String,
    /// Default: [`Mac::from_ipv4`].
    pub mac: Option<Mac>,
    /// Default: the bridge's, less the encapsulation overhead when the
    /// bridge carries tunnels.
    pub mtu: Option<u32>,
    pub routes: Vec<Route>,
    pub network: Option<String>,
    /// Ports published on the host's addresses ([`keys::PUBLISH`]).
    pub published: Vec<PublishedPort>,
}

/// Checks ports to publish together: no two take the same host port, and
/// none is on a loopback address (the kernel would not route it out).
pub fn check_published(published: &[PublishedPort]) -> Result<(), AttachError> {
    PublishedPort::check_together(published).map_err(AttachError::BadInput)
}

/// The default interface name inside the container.
pub const DEFAULT_IFNAME: &str = "eth1";

impl AttachRequest {
    /// A request with the defaults (`eth1`, MAC from IP, bridge MTU).
    pub fn new(bridge: &str, container: crate::container::ContainerRef, ip_gw: &str) -> Result<Self, AttachError> {
        let (net, gateway) = parse_ip_gateway(ip_gw)?;
        let req = AttachRequest {
            bridge: bridge.to_owned(),
            container,
            ip: net.0,
            prefix: net.1,
            gateway,
            ifname: DEFAULT_IFNAME.to_owned(),
            mac: None,
            mtu: None,
            routes: Vec::new(),
            network: None,
            published: Vec::new(),
        };
        req.check()?;
        Ok(req)
    }

    /// Checks everything that can be checked without touching the system.
    pub fn check(&self) -> Result<(), AttachError> {
        check_options(&self.bridge, &self.ifname, self.mtu, self.mac, self.network.as_deref())?;
        if self.prefix > 32 {
            return Err(AttachError::BadInput(format!("bad prefix length /{}", self.prefix)));
        }
        if self.ip.is_unspecified() || self.ip.is_multicast() || self.ip.is_broadcast() || self.ip.is_loopback() {
            return Err(AttachError::BadInput(format!("{} cannot be given to a container", self.ip)));
        }
        check_published(&self.published)?;
        if let Some(gw) = self.gateway {
            let net = IpNet::new(self.ip.into(), self.prefix)?;
            if !net.contains(gw.into()) || gw == self.ip {
                return Err(AttachError::BadInput(format!(
                    "gateway {gw} is not another address of {}/{}",
                    self.ip, self.prefix
                )));
            }
        }
        Ok(())
    }

    /// The MAC the container side gets.
    pub fn effective_mac(&self) -> Mac {
        self.mac.unwrap_or_else(|| Mac::from_ipv4(self.ip))
    }

    /// The address with its prefix, as given to the container.
    pub fn address(&self) -> IpNet {
        IpNet { addr: self.ip.into(), prefix: self.prefix }
    }

    pub fn cidr(&self) -> String {
        self.address().to_string()
    }
}

/// Checks the parts of an attachment that do not depend on its address:
/// for callers that learn the address later (a cluster allocates it).
pub fn check_options(
    bridge: &str,
    ifname: &str,
    mtu: Option<u32>,
    mac: Option<Mac>,
    network: Option<&str>,
) -> Result<(), AttachError> {
    crate::vswitch::spec::check_name("bridge", bridge).map_err(|e| AttachError::BadInput(e.to_string()))?;
    crate::netlink::validate_ifname(ifname).map_err(|_| {
        AttachError::BadInput(format!("bad interface name {ifname:?}: 1-15 bytes, no '/', ':' or spaces"))
    })?;
    if let Some(mtu) = mtu {
        crate::vswitch::spec::check_mtu(mtu).map_err(|e| AttachError::BadInput(e.to_string()))?;
    }
    if let Some(mac) = mac
        && !mac.is_unicast()
    {
        return Err(AttachError::BadInput(format!("bad MAC address {mac}: not unicast")));
    }
    if let Some(n) = network
        && (n.is_empty() || n.len() > 64 || n.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return Err(AttachError::BadInput(format!("bad network name {n:?}")));
    }
    Ok(())
}

/// Parses `IP/PREFIX[@GATEWAY]` (IPv4).
pub fn parse_ip_gateway(s: &str) -> Result<((Ipv4Addr, u8), Option<Ipv4Addr>), AttachError> {
    let (cidr, gw) = match s.split_once('@') {
        Some((c, g)) => (c, Some(g)),
        None => (s, None),
    };
    let net = IpNet::parse_interface(cidr)?;
    let std::net::IpAddr::V4(ip) = net.addr else {
        return Err(AttachError::BadInput(format!("{s}: only IPv4 addresses can be attached")));
    };
    let gateway = match gw {
        Some(g) => {
            Some(g.parse::<Ipv4Addr>().map_err(|_| AttachError::BadInput(format!("bad gateway {g:?} in {s:?}")))?)
        }
        None => None,
    };
    Ok(((ip, net.prefix), gateway))
}

/// `CIDR[@GATEWAY]`, as `--route` takes it.
impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.dest, self.prefix)?;
        match self.gateway {
            Some(g) => write!(f, "@{g}"),
            None => Ok(()),
        }
    }
}

/// The routes recorded in [`keys::ROUTES`] (one that does not parse is
/// left out).
pub fn parse_recorded_routes(s: &str) -> Vec<Route> {
    s.split(',').filter(|r| !r.is_empty()).filter_map(|r| parse_route(r).ok()).collect()
}

/// Parses a `--route CIDR[@GATEWAY]` (IPv4; `default` is `0.0.0.0/0`).
pub fn parse_route(s: &str) -> Result<Route, AttachError> {
    let (cidr, gw) = match s.split_once('@') {
        Some((c, g)) => (c, Some(g)),
        None => (s, None),
    };
    let cidr = if cidr == "default" { "0.0.0.0/0" } else { cidr };
    let net = IpNet::parse_network(cidr)?;
    let std::net::IpAddr::V4(dest) = net.addr else {
        return Err(AttachError::BadInput(format!("route {s}: only IPv4 routes")));
    };
    let gateway = match gw {
        Some(g) => Some(
            g.parse::<Ipv4Addr>().map_err(|_| AttachError::BadInput(format!("bad gateway {g:?} in route {s:?}")))?,
        ),
        None => None,
    };
    Ok(Route { dest, prefix: net.prefix, gateway })
}

/// The host-side veth name: `ovs` + 12 hex digits of a hash of the
/// bridge, the container's identity, its interface name and its network
/// namespace. 15 bytes, the kernel's limit. The same container attached
/// the same way always gets the same name; a restarted container (new
/// namespace) gets a new one, so its stale port can be replaced in the
/// same transaction that adds the new one.
pub fn host_ifname(bridge: &str, container_id: &str, ifname: &str, netns: NetnsId) -> String {
    let mut h = Fnv1a::default();
    for part in [bridge.as_bytes(), container_id.as_bytes(), ifname.as_bytes()] {
        h.write(part);
        // A separator that cannot occur in the parts keeps ("ab","c") and
        // ("a","bc") apart.
        h.write(&[0]);
    }
    h.write(&netns.dev.to_le_bytes());
    h.write(&netns.ino.to_le_bytes());
    h.write(&netns.cookie.unwrap_or(0).to_le_bytes());
    let v = mix64(h.0) & 0xffff_ffff_ffff;
    format!("ovs{v:012x}")
}

/// FNV-1a, 64 bits: stable across Rust versions and platforms, unlike std's
/// `DefaultHasher`.
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The splitmix64 finaliser: spreads FNV's weak low bits over all 64.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One attachment as recorded in OVSDB.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Attachment {
    pub bridge: String,
    /// The port (and host-side veth) name.
    pub port: String,
    #[serde(skip)]
    pub port_uuid: Option<Uuid>,
    pub container: String,
    pub container_name: Option<String>,
    pub container_ns: Option<String>,
    pub ifname: String,
    /// The address with its prefix, `172.16.42.10/24`.
    pub ip: IpNet,
    /// `None`: the row records none (or one that does not parse).
    pub mac: Option<Mac>,
    pub mtu: Option<u32>,
    pub gateway: Option<Ipv4Addr>,
    pub network: Option<String>,
    /// The routes added inside the container, added again on a re-plug.
    pub routes: Vec<Route>,
    /// The ports published on the host's addresses.
    pub published: Vec<PublishedPort>,
    pub ofport: Option<i64>,
}

impl Attachment {
    /// Reads an attachment from a `Port` row (`None` when the port is not
    /// one of ovsnet's, or its recorded address does not parse).
    pub fn from_port_row(row: &Row) -> Option<Attachment> {
        Self::from_port(&crate::vswitch::Port::from_row(row)?)
    }

    /// Reads an attachment from a typed `Port` (`None` when the port is
    /// not one of ovsnet's, or its recorded address does not parse).
    pub fn from_port(port: &crate::vswitch::Port) -> Option<Attachment> {
        let ids = &port.external_ids;
        let get = |k: &str| ids.get(k).cloned();
        Some(Attachment {
            bridge: get(keys::BRIDGE)?,
            port: port.name.clone(),
            port_uuid: Some(port.uuid),
            container: get(keys::CONTAINER)?,
            container_name: get(keys::CONTAINER_NAME),
            container_ns: get(keys::CONTAINER_NS),
            ifname: get(keys::IFNAME)?,
            ip: IpNet::parse_interface(ids.get(keys::IP)?).ok()?,
            mac: ids.get(keys::MAC).and_then(|m| m.parse().ok()),
            mtu: get(keys::MTU).and_then(|m| m.parse().ok()),
            gateway: ids.get(keys::GATEWAY).and_then(|g| g.parse().ok()),
            network: get(keys::NETWORK),
            routes: ids.get(keys::ROUTES).map(|r| parse_recorded_routes(r)).unwrap_or_default(),
            published: ids.get(keys::PUBLISH).and_then(|p| PublishedPort::parse_list(p).ok()).unwrap_or_default(),
            ofport: None,
        })
    }

    /// What the user would name this container with.
    pub fn shown_container(&self) -> &str {
        self.container_name.as_deref().unwrap_or(&self.container)
    }

    /// The container reference to check liveness with.
    pub fn reference(&self) -> Option<crate::container::ContainerRef> {
        crate::container::ContainerRef::parse(&self.container).ok()
    }

    /// The recorded namespace identity.
    pub fn netns_id(&self) -> Option<NetnsId> {
        self.container_ns.as_deref().and_then(|s| s.parse().ok())
    }
}

/// The `external_ids` of a new attachment.
pub fn external_ids(
    req: &AttachRequest,
    identity: &crate::container::Identity,
    mac: Mac,
    mtu: u32,
) -> BTreeMap<String, String> {
    let mut ids = BTreeMap::new();
    ids.insert(keys::BRIDGE.to_owned(), req.bridge.clone());
    ids.insert(keys::CONTAINER.to_owned(), identity.id.clone());
    if let (crate::container::ContainerRef::Docker(_), Some(name)) = (&identity.reference, &identity.name) {
        ids.insert(keys::CONTAINER_NAME.to_owned(), name.clone());
    }
    ids.insert(keys::CONTAINER_NS.to_owned(), identity.netns.to_string());
    ids.insert(keys::IFNAME.to_owned(), req.ifname.clone());
    ids.insert(keys::IP.to_owned(), req.cidr());
    ids.insert(keys::ADDR.to_owned(), req.ip.to_string());
    ids.insert(keys::MAC.to_owned(), mac.to_string());
    ids.insert(keys::MTU.to_owned(), mtu.to_string());
    if let Some(gw) = req.gateway {
        ids.insert(keys::GATEWAY.to_owned(), gw.to_string());
    }
    if let Some(n) = &req.network {
        ids.insert(keys::NETWORK.to_owned(), n.clone());
    }
    if !req.routes.is_empty() {
        let routes: Vec<String> = req.routes.iter().map(Route::to_string).collect();
        ids.insert(keys::ROUTES.to_owned(), routes.join(","));
    }
    if !req.published.is_empty() {
        ids.insert(keys::PUBLISH.to_owned(), PublishedPort::join(&req.published));
    }
    ids
}

fn includes(pairs: &[(&str, &str)]) -> Condition {
    Condition::new(
        "external_ids",
        Function::Includes,
        Datum::map(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))),
    )
}

/// Ports of `bridge` attached for (container, ifname).
pub fn by_container(bridge: &str, container_id: &str, ifname: &str) -> Vec<Condition> {
    vec![includes(&[(keys::BRIDGE, bridge), (keys::CONTAINER, container_id), (keys::IFNAME, ifname)])]
}

/// Ports of `bridge` holding address `ip`.
pub fn by_addr(bridge: &str, ip: Ipv4Addr) -> Vec<Condition> {
    vec![includes(&[(keys::BRIDGE, bridge), (keys::ADDR, &ip.to_string())])]
}

/// Every port ovsnet attached on `bridge`.
pub fn by_bridge(bridge: &str) -> Vec<Condition> {
    vec![includes(&[(keys::BRIDGE, bridge)])]
}

pub const PORT_COLUMNS: [&str; 3] = ["_uuid", "name", "external_ids"];

/// Tunnel interface types whose overhead a container's MTU must leave room for.
pub const TUNNEL_TYPES: [&str; 3] = ["gre", "vxlan", "geneve"];

/// The read-only transaction run before an attach: the bridge, its
/// requested MTU (`mtu_request`; 1500 when unset), this container's
/// existing attachment, the holder of the IP, the switch's `other_config`,
/// the tunnel interfaces, and the host end's interface if it exists.
/// [`AttachRead::from_results`] takes the replies.
pub fn read_ops(req: &AttachRequest, container_id: &str, host_end: &str) -> Vec<Operation> {
    let mut ops = vec![
        Operation::select("Bridge", vec![Condition::eq("name", req.bridge.as_str())])
            .columns(["_uuid", "datapath_type"]),
        Operation::select("Interface", vec![Condition::eq("name", req.bridge.as_str())])
            .columns(["_uuid", "mtu_request"]),
        Operation::select("Port", by_container(&req.bridge, container_id, &req.ifname)).columns(PORT_COLUMNS),
        Operation::select("Port", by_addr(&req.bridge, req.ip)).columns(PORT_COLUMNS),
        Operation::select("Open_vSwitch", vec![]).columns(["other_config"]),
    ];
    for t in TUNNEL_TYPES {
        ops.push(Operation::select("Interface", vec![Condition::eq("type", t)]).columns(["_uuid", "type"]));
    }
    ops.push(Operation::select("Interface", vec![Condition::eq("name", host_end)]).columns(["_uuid", "ofport"]));
    // The bridge's attachments, for the ports they publish: read only when
    // this one publishes any.
    if !req.published.is_empty() {
        ops.push(Operation::select("Port", by_bridge(&req.bridge)).columns(PORT_COLUMNS));
    }
    ops
}

/// What [`read_ops`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachRead {
    /// The bridge's `datapath_type` is `netdev` (the userspace datapath).
    pub netdev: bool,
    /// What the bridge was asked for (`mtu_request`), 1500 when unset.
    pub bridge_mtu: u32,
    /// This container's attachments with this interface name.
    pub mine: Vec<Attachment>,
    /// The attachments holding the address.
    pub holders: Vec<Attachment>,
    /// `other_config:userspace-tso-enable=true`.
    pub userspace_tso: bool,
    /// The tunnel interfaces, by row and type.
    pub tunnels: Vec<(Uuid, String)>,
    /// The host end's ofport, when its interface exists.
    pub existing_ofport: Option<i64>,
    /// The bridge's attachments that publish ports (read only for a
    /// request that publishes any).
    pub publishers: Vec<Attachment>,
}

impl AttachRead {
    /// Decodes the replies to [`read_ops`] (the same order, kept here
    /// beside it). `None` when the bridge does not exist.
    pub fn from_results(results: &[crate::ovsdb::OpResult]) -> Option<AttachRead> {
        let rows = |i: usize| results.get(i).and_then(|x| x.rows.as_deref()).unwrap_or(&[]);
        let interfaces = |i: usize| -> Vec<Interface> { rows(i).iter().filter_map(Interface::from_row).collect() };
        let bridge = rows(0).first()?;
        let tunnels_at = 5;
        let host_end_at = tunnels_at + TUNNEL_TYPES.len();
        Some(AttachRead {
            netdev: bridge.get("datapath_type").and_then(Datum::as_str) == Some("netdev"),
            // The base is what the bridge was asked for, not the bridge
            // interface's current MTU: OVS lowers that to the smallest MTU
            // of the bridge's ports, so it would shrink with every
            // container given less (a tunnel's overhead, an explicit --mtu).
            bridge_mtu: interfaces(1)
                .first()
                .and_then(|i| i.mtu_request)
                .and_then(|m| u32::try_from(m).ok())
                .unwrap_or(1500),
            mine: rows(2).iter().filter_map(Attachment::from_port_row).collect(),
            holders: rows(3).iter().filter_map(Attachment::from_port_row).collect(),
            userspace_tso: rows(4)
                .first()
                .and_then(|row| row.get("other_config"))
                .and_then(Datum::as_string_map)
                .and_then(|m| m.get("userspace-tso-enable").cloned())
                .is_some_and(|v| v == "true"),
            tunnels: (tunnels_at..host_end_at).flat_map(interfaces).map(|i| (i.uuid, i.kind)).collect(),
            existing_ofport: interfaces(host_end_at).first().and_then(|i| i.ofport),
            publishers: rows(host_end_at + 1)
                .iter()
                .filter_map(Attachment::from_port_row)
                .filter(|a| !a.published.is_empty())
                .collect(),
        })
    }
}

fn names_rows(names: &[String]) -> Vec<Row> {
    names
        .iter()
        .map(|n| {
            let mut r = Row::new();
            r.insert("name".into(), Datum::from(n.as_str()));
            r
        })
        .collect()
}

/// The operations that plug one host end into the bridge, and where in
/// them the results a caller needs are.
#[derive(Debug, Clone)]
pub struct AttachOps {
    pub ops: Vec<Operation>,
    /// Index of the guard that nobody else holds the address: when the
    /// transaction fails there, the address was taken since it was read.
    pub addr_guard: usize,
    /// Index of the `Port` insert, whose result holds the new row's UUID.
    pub port_insert: usize,
}

impl AttachOps {
    /// These operations placed after `offset` others in one transaction.
    pub fn offset(&self, offset: usize) -> (usize, usize) {
        (offset + self.addr_guard, offset + self.port_insert)
    }
}

/// The one transaction that plugs the host end into the bridge: guards
/// that what was read still holds (nobody took the IP, this container's
/// ports are the ones seen), removal of `stale` ports, and the new
/// `Port` + `Interface` with their `external_ids`.
#[derive(Debug, Clone, Copy)]
pub struct Plug<'a> {
    pub req: &'a AttachRequest,
    pub container_id: &'a str,
    /// The host end's name (the port's and its interface's).
    pub host_end: &'a str,
    pub ids: &'a BTreeMap<String, String>,
    /// The ports of this container and interface seen by the read.
    pub seen_for_container: &'a [String],
    /// The ports holding the address seen by the read.
    pub seen_for_addr: &'a [String],
    /// Ports to remove in the same transaction (a restarted container's).
    pub stale: &'a [Uuid],
}

impl Plug<'_> {
    pub fn ops(&self) -> AttachOps {
        self.tagged_ops("")
    }

    /// [`Plug::ops`] whose named UUIDs end in `tag`, so that the operations
    /// of several attachments can share one transaction.
    pub fn tagged_ops(&self, tag: &str) -> AttachOps {
        let Plug { req, container_id, host_end, ids, seen_for_container, seen_for_addr, stale } = *self;
        // Fails the transaction unless the ports matching `cond` are still
        // the ones named `seen`.
        let unchanged = |cond: Vec<Condition>, seen: &[String]| {
            Operation::wait("Port", cond, vec!["name".into()], WaitUntil::Equal, names_rows(seen), Some(0))
        };
        let port_ref = format!("port{tag}");
        let mut ops = vec![unchanged(by_container(&req.bridge, container_id, &req.ifname), seen_for_container)];
        let addr_guard = ops.len();
        ops.push(unchanged(by_addr(&req.bridge, req.ip), seen_for_addr));
        // The host end's name is derived from the container's namespace, so
        // the guards above already cover it: no name guard of its own.
        let port = PortSpec { name: host_end.to_owned(), external_ids: ids.clone(), ..Default::default() };
        let [iface_insert, port_row] = crate::vswitch::txn::port_rows(&port, &port_ref);
        ops.push(iface_insert);
        let port_insert = ops.len();
        ops.push(port_row);
        let mut mutations = vec![Mutation::new("ports", Mutator::Insert, Datum::named_uuid(&port_ref))];
        if !stale.is_empty() {
            mutations.push(Mutation::new("ports", Mutator::Delete, Datum::set(stale.iter().copied())));
        }
        ops.push(Operation::mutate("Bridge", vec![Condition::eq("name", req.bridge.as_str())], mutations));
        ops.push(Operation::comment(&format!("ovsnet: attach {} {} {}", req.bridge, container_id, req.cidr())));
        AttachOps { ops, addr_guard, port_insert }
    }
}

/// Removes ports from a bridge (they and their interfaces are garbage
/// collected once no bridge refers to them).
pub fn detach_ops(bridge: &str, ports: &[Uuid], why: &str) -> Vec<Operation> {
    vec![
        Operation::mutate(
            "Bridge",
            vec![Condition::eq("name", bridge)],
            vec![Mutation::new("ports", Mutator::Delete, Datum::set(ports.iter().copied()))],
        ),
        Operation::comment(&format!("ovsnet: {why}")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_short_deterministic_and_distinct() {
        let ns = NetnsId { dev: 4, ino: 4026532000, cookie: Some(7) };
        let a = host_ifname("obr0", "c1", "eth1", ns);
        assert_eq!(a, host_ifname("obr0", "c1", "eth1", ns));
        assert_eq!(a.len(), 15);
        assert!(a.starts_with("ovs"));
        assert_ne!(a, host_ifname("obr0", "c1", "eth2", ns));
        assert_ne!(a, host_ifname("obr1", "c1", "eth1", ns));
        assert_ne!(a, host_ifname("obr0", "c1", "eth1", NetnsId { dev: 4, ino: 4026532000, cookie: Some(8) }));
        assert_ne!(host_ifname("obr0", "ab", "c", ns), host_ifname("obr0", "a", "bc", ns));
    }

    #[test]
    fn no_collision_over_ten_thousand_attachments() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000u64 {
            // Docker-like 64-hex IDs, sequential namespace inodes.
            let id = format!("{:064x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let name = host_ifname("obr0", &id, "eth1", NetnsId { dev: 4, ino: 4026531840 + i, cookie: Some(100 + i) });
            assert!(name.len() <= 15);
            assert!(seen.insert(name), "collision at {i}");
        }
        // Same containers, other interface: still distinct from all of the above.
        for i in 0..10_000u64 {
            let name = host_ifname("obr0", &format!("pid:{i}"), "eth2", NetnsId { dev: 4, ino: 1, cookie: None });
            assert!(seen.insert(name), "collision at eth2 {i}");
        }
    }

    #[test]
    fn parses_user_input() {
        assert_eq!(
            parse_ip_gateway("172.16.42.10/24@172.16.42.1").ok(),
            Some(((Ipv4Addr::new(172, 16, 42, 10), 24), Some(Ipv4Addr::new(172, 16, 42, 1))))
        );
        assert_eq!(parse_ip_gateway("10.0.0.2/8").ok(), Some(((Ipv4Addr::new(10, 0, 0, 2), 8), None)));
        for bad in ["10.0.0.2", "10.0.0.2/33", "10.0.0.300/24", "10.0.0.2/24@x", "fe80::1/64", ""] {
            assert!(parse_ip_gateway(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_route("192.168.0.0/16@10.0.0.1").ok(),
            Some(Route { dest: Ipv4Addr::new(192, 168, 0, 0), prefix: 16, gateway: Some(Ipv4Addr::new(10, 0, 0, 1)) })
        );
        assert_eq!(parse_route("default@10.0.0.1").map(|r| r.prefix).ok(), Some(0));
        assert!(parse_route("192.168.0.1/16").is_err(), "host bits set");
        // Recorded as --route takes them, and read back the same.
        let routes: Vec<Route> =
            ["default@10.0.0.1", "192.168.0.0/16"].iter().filter_map(|r| parse_route(r).ok()).collect();
        assert_eq!(routes.len(), 2);
        let text: Vec<String> = routes.iter().map(Route::to_string).collect();
        assert_eq!(text.join(","), "0.0.0.0/0@10.0.0.1,192.168.0.0/16");
        assert_eq!(parse_recorded_routes(&text.join(",")), routes);
        assert_eq!(
            parse_recorded_routes("bogus,10.1.0.0/16,"),
            parse_route("10.1.0.0/16").into_iter().collect::<Vec<_>>()
        );
    }

    #[test]
    fn requests_are_checked() {
        let c = crate::container::ContainerRef::Pid(1);
        assert!(AttachRequest::new("obr0", c.clone(), "10.0.0.2/24@10.0.0.1").is_ok());
        assert!(AttachRequest::new("obr0", c.clone(), "10.0.0.2/24@10.1.0.1").is_err(), "gateway off-net");
        assert!(AttachRequest::new("obr0", c.clone(), "127.0.0.2/8").is_err());
        let mut r = AttachRequest::new("obr0", c.clone(), "10.0.0.2/24").expect("ok");
        r.ifname = "a-very-long-ifname".into();
        assert!(r.check().is_err());
        r.ifname = "eth1".into();
        r.mtu = Some(10);
        assert!(r.check().is_err());
        r.mtu = Some(1400);
        r.mac = Some(Mac([1, 0, 0, 0, 0, 1]));
        assert!(r.check().is_err());
    }

    #[test]
    fn attach_transaction_shape() {
        let c = crate::container::ContainerRef::Netns("c1".into());
        let req = AttachRequest::new("obr0", c, "10.0.0.2/24").expect("ok");
        let ids = BTreeMap::from([(keys::BRIDGE.to_string(), "obr0".to_string())]);
        let txn = Plug {
            req: &req,
            container_id: "netns:c1",
            host_end: "ovs0123456789ab",
            ids: &ids,
            seen_for_container: &[],
            seen_for_addr: &[],
            stale: &[],
        }
        .ops();
        assert_eq!((txn.addr_guard, txn.port_insert), (1, 3));
        assert_eq!(txn.offset(10), (11, 13));
        let json = serde_json::Value::Array(txn.ops.iter().map(Operation::to_json).collect());
        let text = json.to_string();
        // Guards first, then inserts, then the bridge mutation.
        assert_eq!(json[0]["op"], "wait");
        assert_eq!(json[0]["until"], "==");
        assert_eq!(json[0]["rows"], serde_json::json!([]));
        assert_eq!(
            json[1]["where"][0][2],
            serde_json::json!(["map", [["ovsnet-addr", "10.0.0.2"], ["ovsnet-bridge", "obr0"]]])
        );
        assert_eq!(json[2]["op"], "insert");
        assert_eq!(json[2]["table"], "Interface");
        assert_eq!(
            json[2]["row"],
            serde_json::json!({"name": "ovs0123456789ab", "external_ids": ["map", [["ovsnet-bridge", "obr0"]]]})
        );
        assert_eq!(json[3]["table"], "Port");
        assert_eq!(json[3]["row"]["interfaces"], serde_json::json!(["named-uuid", "port_iface"]));
        assert_eq!(json[4]["mutations"][0], serde_json::json!(["ports", "insert", ["named-uuid", "port"]]));
        assert!(text.contains("ovsnet: attach obr0 netns:c1 10.0.0.2/24"));
    }
}
