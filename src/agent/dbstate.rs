//! From the `Open_vSwitch` database (a monitor cache) to the pipeline's
//! [`State`]: pure, so it is tested with rows made by hand.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use crate::net::{IpNet, Mac};
use crate::ovsdb::Cache;
use crate::pipeline::{BridgeLocal, DEFAULT_NETWORK, LocalEndpoint, Network, Published, State, TunnelType, vni_for};
use crate::vswitch::keys;

/// A network given on the command line: `NAME=CIDR[,vni=N][,gateway=IP]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkOpt {
    pub name: String,
    pub cidr: IpNet,
    pub vni: Option<u32>,
    pub gateway: Option<Ipv4Addr>,
    /// Reaches outside through the host (the cluster's networks that are
    /// not `--internal`; never a network given on the command line).
    pub egress: bool,
}

impl NetworkOpt {
    pub fn parse(s: &str) -> Result<NetworkOpt, String> {
        let (name, rest) = s.split_once('=').ok_or_else(|| format!("{s:?}: expected NAME=CIDR[,vni=N]"))?;
        let mut parts = rest.split(',');
        let cidr = parts.next().unwrap_or_default();
        let cidr = IpNet::parse_interface(cidr).map_err(|e| format!("{s:?}: {e}"))?.network();
        if !cidr.is_ipv4() {
            return Err(format!("{s:?}: only IPv4 networks"));
        }
        let mut vni = None;
        let mut gateway = None;
        for p in parts {
            match p.split_once('=') {
                Some(("vni", v)) => {
                    let n: u32 = v.parse().map_err(|_| format!("{s:?}: bad vni {v:?}"))?;
                    if n == 0 || n > 0x00ff_ffff {
                        return Err(format!("{s:?}: vni must be 1..16777215"));
                    }
                    vni = Some(n);
                }
                Some(("gateway", g)) => {
                    let ip: Ipv4Addr = g.parse().map_err(|_| format!("{s:?}: bad gateway {g:?}"))?;
                    if !cidr.contains(IpAddr::V4(ip)) {
                        return Err(format!("{s:?}: gateway {ip} is not in {cidr}"));
                    }
                    gateway = Some(ip);
                }
                _ => return Err(format!("{s:?}: unknown option {p:?}")),
            }
        }
        if name.is_empty() {
            return Err(format!("{s:?}: empty network name"));
        }
        Ok(NetworkOpt { name: name.to_owned(), cidr, vni, gateway, egress: false })
    }
}

/// Host access through the bridge's internal port: its address (`--host-ip`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAccess {
    pub ip: Ipv4Addr,
    pub prefix: u8,
    /// The network it joins; default: the one whose block holds `ip`.
    pub network: Option<String>,
}

/// What the state depends on besides the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateOptions {
    pub bridge: String,
    pub networks: Vec<NetworkOpt>,
    pub host: Option<HostAccess>,
    /// The bridge's internal port is the way out for networks with egress
    /// (not with host access, which makes it an endpoint of one network).
    pub uplink: bool,
}

/// The `external_ids` of interfaces known before the database has them,
/// by interface name (a spare port the Docker driver has claimed).
pub type Claims = BTreeMap<String, BTreeMap<String, String>>;

/// The pipeline state of `opts.bridge`, with what was skipped and why.
pub fn state_from_cache(cache: &Cache, opts: &StateOptions) -> (State, Vec<String>) {
    state_from_cache_with(cache, opts, &Claims::new())
}

/// [`state_from_cache`], where an interface named in `claims` has the
/// `external_ids` given there instead of the database's.
pub fn state_from_cache_with(cache: &Cache, opts: &StateOptions, claims: &Claims) -> (State, Vec<String>) {
    let mut warnings = Vec::new();
    let mut st = State::default();
    for n in &opts.networks {
        st.networks.push(Network {
            name: n.name.clone(),
            vni: n.vni.unwrap_or_else(|| vni_for(&n.name)),
            cidrs: vec![n.cidr],
            gateway: n.gateway,
            egress: n.egress,
        });
    }
    let Some(ifaces) = crate::vswitch::model::bridge_interfaces(cache, &opts.bridge) else {
        warnings.push(format!("bridge {} not found", opts.bridge));
        return (st, warnings);
    };
    let mut local_mac = None;
    let mut endpoints = Vec::new();
    for iface in ifaces {
        let name = iface.name.as_str();
        let ofport = iface.usable_ofport();
        if iface.kind == "internal" && name == opts.bridge {
            local_mac = iface.mac_in_use.as_deref().and_then(|m| Mac::parse_unicast(m).ok());
            continue;
        }
        if let Some(tt) = TunnelType::from_column(&iface.kind) {
            if iface.options.get("remote_ip").map(String::as_str) == Some("flow")
                && let Some(p) = ofport
            {
                st.tunnel_ofports.insert(tt, p);
            }
            continue;
        }
        let ids = claims.get(name).unwrap_or(&iface.external_ids);
        let Some(addr) = ids.get(keys::IP) else { continue };
        if ids.get(keys::BRIDGE).is_some_and(|b| *b != opts.bridge) {
            continue;
        }
        let Ok(net) = IpNet::parse_interface(addr) else {
            warnings.push(format!("{name}: bad {} {addr:?}", keys::IP));
            continue;
        };
        let IpAddr::V4(ip) = net.addr else {
            warnings.push(format!("{name}: {addr} is not IPv4"));
            continue;
        };
        let Some(ofport) = ofport else {
            warnings.push(format!("{name}: no ofport yet"));
            continue;
        };
        let mac = ids.get(keys::MAC).and_then(|m| Mac::parse_unicast(m).ok()).unwrap_or_else(|| Mac::from_ipv4(ip));
        let network = ids.get(keys::NETWORK).cloned().unwrap_or_else(|| DEFAULT_NETWORK.to_owned());
        if let Some(list) = ids.get(keys::PUBLISH) {
            match crate::net::PublishedPort::parse_list(list) {
                Ok(ports) => st.published.extend(ports.into_iter().map(|port| Published {
                    endpoint: name.to_owned(),
                    network: network.clone(),
                    ip,
                    port,
                })),
                Err(e) => warnings.push(format!("{name}: {e}")),
            }
        }
        endpoints.push((net, LocalEndpoint { id: name.to_owned(), network, ofport, ip, mac }));
    }
    endpoints.sort_by(|a, b| a.1.id.cmp(&b.1.id));
    st.published.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
    for (net, e) in endpoints {
        // A network named on the command line keeps its block; otherwise
        // the endpoints' own prefixes make it up.
        if !opts.networks.iter().any(|n| n.name == e.network) {
            st.ensure_network(&e.network, net.network());
        }
        st.local_endpoints.push(e);
    }
    if let Some(h) = &opts.host {
        let network = h.network.clone().or_else(|| {
            st.networks.iter().find(|n| n.cidrs.iter().any(|c| c.contains(IpAddr::V4(h.ip)))).map(|n| n.name.clone())
        });
        match (network, local_mac) {
            (Some(network), Some(mac)) => {
                if st.network(&network).is_none()
                    && let Ok(c) = IpNet::new(IpAddr::V4(h.ip), h.prefix)
                {
                    st.ensure_network(&network, c.network());
                }
                st.bridge_local = Some(BridgeLocal { network, ip: h.ip, mac });
            }
            (None, _) => warnings.push(format!("host address {} is in no known network", h.ip)),
            (_, None) => warnings.push(format!("the MAC of {}'s internal port is not known yet", opts.bridge)),
        }
    } else if opts.uplink {
        match local_mac {
            Some(mac) => st.uplink = Some(crate::pipeline::Uplink { mac }),
            None => warnings.push(format!("the MAC of {}'s internal port is not known yet: no egress", opts.bridge)),
        }
    }
    (st, warnings)
}
