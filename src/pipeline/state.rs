//! What the flows are computed from: the bridge's networks, its local
//! endpoints, remote address blocks and endpoints, and its tunnel ports.
//! Plain data, built by the agent from OVSDB (or by hand in tests).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::net::{IpNet, Mac};

/// A network: an isolated L2/L3 segment identified on the wire by its VNI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub name: String,
    /// The VNI (24 bits), also the value of reg6 inside the bridge.
    pub vni: u32,
    /// Address blocks answered by the ARP responder (usually one).
    pub cidrs: Vec<IpNet>,
    /// The address the router answers in this network (ARP, ping) and
    /// routes from.
    pub gateway: Option<Ipv4Addr>,
    /// Whether the network reaches addresses outside every network through
    /// the host ([`State::uplink`]); an `--internal` network does not.
    pub egress: bool,
}

/// The bridge's internal port as the way out: packets for addresses
/// outside the packet's routed networks go to the host's kernel, which
/// routes them and translates their source (egress NAT), and the replies
/// come back through the same port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uplink {
    /// The internal port's MAC (`mac_in_use`).
    pub mac: Mac,
}

/// A distributed router: every host routes between its networks itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Router {
    pub name: String,
    /// Network names.
    pub networks: Vec<String>,
}

/// The MAC of every network's gateway, on every host: one router MAC, as
/// the ARP responder gives it and routed packets carry as their source.
/// It is the MAC derived from 0.0.0.1, an address no endpoint has.
pub const ROUTER_MAC: Mac = Mac([0x0a, 0x58, 0x00, 0x00, 0x00, 0x01]);

/// A container interface on this bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalEndpoint {
    /// Owner identity for the cookie (the port name).
    pub id: String,
    pub network: String,
    pub ofport: u32,
    pub ip: Ipv4Addr,
    pub mac: Mac,
}

/// The bridge's internal port as a member of one network (host access).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeLocal {
    pub network: String,
    pub ip: Ipv4Addr,
    pub mac: Mac,
}

/// Flow-based tunnel types: the ones ovsnet manages on bridges.
pub use crate::vswitch::TunnelType;

/// Another host's address block of a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteBlock {
    pub network: String,
    pub cidr: IpNet,
    pub tun_dst: Ipv4Addr,
    pub tunnel: TunnelType,
}

/// An endpoint on another host, given one by one (static addressing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEndpoint {
    pub network: String,
    pub ip: Ipv4Addr,
    pub mac: Mac,
    pub tun_dst: Ipv4Addr,
    pub tunnel: TunnelType,
}

/// Everything the desired flows depend on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub bridge_local: Option<BridgeLocal>,
    pub networks: Vec<Network>,
    pub local_endpoints: Vec<LocalEndpoint>,
    pub remote_blocks: Vec<RemoteBlock>,
    pub remote_endpoints: Vec<RemoteEndpoint>,
    /// ofport of the bridge's flow-based tunnel port of each type.
    pub tunnel_ofports: BTreeMap<TunnelType, u32>,
    pub routers: Vec<Router>,
    /// The way out, when the agent does egress (never with host access:
    /// the internal port is then an endpoint of one network).
    pub uplink: Option<Uplink>,
    /// The ports local endpoints publish on the host's addresses: the
    /// host's kernel translates them (no flows depend on them).
    pub published: Vec<Published>,
    /// Whether the agent answers DNS at each network's gateway (the `dns`
    /// table sends queries up to it).
    pub dns: bool,
    /// Load-balanced service addresses of the networks.
    pub services: Vec<Service>,
}

/// A service address: connections to `vip:port` in its network go to one
/// of `backends` (the same port), through the select group `group_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub network: String,
    pub vip: Ipv4Addr,
    pub port: u16,
    pub protocol: crate::net::Transport,
    pub group_id: u32,
    /// The endpoints the backends name now (sorted, no duplicates).
    pub backends: Vec<Ipv4Addr>,
}

/// A port a local endpoint publishes on the host's addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The endpoint's port name.
    pub endpoint: String,
    pub network: String,
    pub ip: Ipv4Addr,
    pub port: crate::net::PublishedPort,
}

/// The network name used when an attachment names none.
pub const DEFAULT_NETWORK: &str = "default";

/// A stable VNI for a network name: FNV-1a folded to 24 bits, never 0.
pub fn vni_for(name: &str) -> u32 {
    let h = fnv1a(name.as_bytes());
    let v = ((h >> 24) ^ h) as u32 & 0x00ff_ffff;
    if v == 0 { 1 } else { v }
}

/// FNV-1a, 64 bits.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Whether `mac` is the one derived from `ip` (0a:58:a.b.c.d).
pub fn mac_is_derived(ip: Ipv4Addr, mac: Mac) -> bool {
    Mac::from_ipv4(ip) == mac
}

impl State {
    pub fn network(&self, name: &str) -> Option<&Network> {
        self.networks.iter().find(|n| n.name == name)
    }

    /// Adds the network if missing (VNI from the name), and `cidr` to it.
    pub fn ensure_network(&mut self, name: &str, cidr: IpNet) {
        match self.networks.iter_mut().find(|n| n.name == name) {
            Some(n) => {
                if !n.cidrs.contains(&cidr) {
                    n.cidrs.push(cidr);
                }
            }
            None => self.networks.push(Network {
                name: name.to_owned(),
                vni: vni_for(name),
                cidrs: vec![cidr],
                gateway: None,
                egress: false,
            }),
        }
    }
}
