//! Cluster mode, the pure part: from the cluster database's state and
//! this host's own endpoints to what the pipeline needs (networks with
//! their VNI and CIDR, remote blocks and endpoints with the tunnel to
//! reach them), and which Endpoint rows this host must publish or remove.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::cluster::{ClusterState, EndpointSpec, remote_view};
use crate::net::{IpNet, Mac};
use crate::ovsdb::{Cache, Uuid};
use crate::pipeline::{DEFAULT_NETWORK, LocalEndpoint, RemoteBlock, RemoteEndpoint, State, TunnelType};
use crate::vswitch::keys;

use super::dbstate::NetworkOpt;

/// The tunnel port of each type on a bridge in cluster mode: one port per
/// type, `remote_ip=flow`, `key=flow`.
pub fn tunnel_port_name(t: TunnelType) -> String {
    format!("ovsnet-{}", t.as_str())
}

/// The cluster's networks, as the agent's `--network` options (the VNI
/// and CIDR the cluster decided, not derived from names).
pub fn cluster_networks(cluster: &ClusterState) -> Vec<NetworkOpt> {
    cluster
        .networks
        .values()
        .filter(|n| n.cidr.is_ipv4())
        .map(|n| NetworkOpt {
            name: n.name.clone(),
            cidr: n.cidr,
            vni: Some(n.vni),
            gateway: n.gateway,
            egress: !n.internal,
        })
        .collect()
}

/// The cluster's routers, with the networks on each.
pub fn cluster_routers(cluster: &ClusterState) -> Vec<crate::pipeline::Router> {
    cluster
        .router_networks()
        .into_iter()
        .map(|(name, nets)| crate::pipeline::Router {
            name: name.to_owned(),
            networks: nets.into_iter().map(str::to_owned).collect(),
        })
        .collect()
}

/// The tunnel type to reach a host that announced `theirs`: the first of
/// ours (in order of preference) it also speaks; a host that announced
/// none is reached with our first. `None`: no common type.
pub fn pick_tunnel(ours: &[TunnelType], theirs: &BTreeSet<String>) -> Option<TunnelType> {
    if theirs.is_empty() {
        return ours.first().copied();
    }
    ours.iter().copied().find(|t| theirs.contains(t.as_str()))
}

/// Fills `state`'s remote blocks and endpoints from the cluster, as seen
/// by `this_host`, reaching each host over the first tunnel type both
/// speak. Remote entries of networks this bridge does not know, of IPv6
/// hosts or with no common tunnel type are left out and reported.
pub fn apply_remote(state: &mut State, cluster: &ClusterState, this_host: &str, tunnels: &[TunnelType]) -> Vec<String> {
    let mut warnings = Vec::new();
    let view = remote_view(cluster, this_host);
    let tunnel_to = |host: &str, warnings: &mut Vec<String>| {
        let theirs = cluster.hosts.get(host).map(|h| h.tunnel_types.clone()).unwrap_or_default();
        let t = pick_tunnel(tunnels, &theirs);
        if t.is_none() {
            warnings.push(format!("host {host}: no tunnel type in common ({theirs:?})"));
        }
        t
    };
    state.remote_blocks.clear();
    state.remote_endpoints.clear();
    for b in view.blocks {
        let IpAddr::V4(tun_dst) = b.underlay_ip else {
            warnings.push(format!("host {}: underlay {} is not IPv4", b.host, b.underlay_ip));
            continue;
        };
        if state.network(&b.network).is_none() {
            continue;
        }
        let Some(tunnel) = tunnel_to(&b.host, &mut warnings) else { continue };
        state.remote_blocks.push(RemoteBlock { network: b.network, cidr: b.cidr, tun_dst, tunnel });
    }
    for e in view.endpoints {
        let (IpAddr::V4(tun_dst), IpAddr::V4(ip)) = (e.underlay_ip, e.ip) else { continue };
        if state.network(&e.network).is_none() {
            continue;
        }
        let Ok(mac) = Mac::parse_unicast(&e.mac) else {
            warnings.push(format!("endpoint {} on {}: bad MAC {:?}", e.ip, e.host, e.mac));
            continue;
        };
        let Some(tunnel) = tunnel_to(&e.host, &mut warnings) else { continue };
        state.remote_endpoints.push(RemoteEndpoint { network: e.network, ip, mac, tun_dst, tunnel });
    }
    warnings
}

/// What this host must change in the cluster database so that its
/// Endpoint rows are exactly its local endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointSync {
    /// Local endpoints the cluster does not list (in a cluster network).
    pub publish: Vec<EndpointSpec>,
    /// This host's rows with no local endpoint: (network, address).
    pub remove: Vec<(String, IpAddr)>,
}

/// Compares this host's local endpoints with its Endpoint rows. Local
/// endpoints of networks the cluster does not have are not published.
pub fn endpoint_sync(local: &[LocalEndpoint], cluster: &ClusterState, this_host: &str) -> EndpointSync {
    let mut sync = EndpointSync::default();
    let ours: Vec<(&str, IpAddr, &str, bool)> = cluster
        .endpoints
        .iter()
        .filter(|e| e.host == this_host)
        .filter_map(|e| {
            cluster.network_by_uuid(e.network).map(|n| (n.name.as_str(), e.ip, e.mac.as_str(), e.interface.is_empty()))
        })
        .collect();
    for l in local {
        if !cluster.networks.contains_key(&l.network) {
            continue;
        }
        let mac = l.mac.to_string();
        let listed =
            ours.iter().any(|(n, ip, m, _)| *n == l.network && *ip == IpAddr::V4(l.ip) && m.eq_ignore_ascii_case(&mac));
        if !listed {
            sync.publish.push(EndpointSpec {
                network: l.network.clone(),
                host: this_host.to_owned(),
                ip: IpAddr::V4(l.ip),
                mac: Some(mac),
                container: l.id.clone(),
                interface: l.id.clone(),
                external_ids: Default::default(),
            });
        }
    }
    // The Docker driver's rows (no interface name) are the driver's to
    // remove (ReleaseAddress, DeleteEndpoint): between RequestAddress and
    // Join they have no port yet, also after the agent restarts.
    for (n, ip, _, driver) in ours {
        let present = local.iter().any(|l| l.network == n && IpAddr::V4(l.ip) == ip);
        if !present && !driver {
            sync.remove.push((n.to_owned(), ip));
        }
    }
    sync
}

/// A local endpoint as the cluster knows it: (network, address).
pub type EndpointKey = (String, IpAddr);

/// The endpoints whose port exists on `bridge` now, as `ovsnet attach`
/// recorded them in the `Interface` rows' `external_ids` (with or without
/// an ofport yet: a port that exists has not been detached).
pub fn recorded_endpoints(cache: &Cache, bridge: &str) -> BTreeSet<EndpointKey> {
    let Some(ifaces) = crate::vswitch::model::bridge_interfaces(cache, bridge) else {
        return BTreeSet::new();
    };
    ifaces
        .iter()
        .filter_map(|iface| {
            let ids = &iface.external_ids;
            if ids.get(keys::BRIDGE).is_some_and(|b| b != bridge) {
                return None;
            }
            let ip = IpNet::parse_interface(ids.get(keys::IP)?).ok()?.addr;
            let network = ids.get(keys::NETWORK).cloned().unwrap_or_else(|| DEFAULT_NETWORK.to_owned());
            Some((network, ip))
        })
        .collect()
}

/// This host's Endpoint rows for `key` (normally one; the UUID names the
/// row, so a later one for the same address is a different row).
pub fn host_rows(cluster: &ClusterState, this_host: &str, key: &EndpointKey) -> Vec<Uuid> {
    cluster
        .endpoints
        .iter()
        .filter(|e| e.host == this_host && e.ip == key.1)
        .filter(|e| cluster.network_by_uuid(e.network).is_some_and(|n| n.name == key.0))
        .map(|e| e.uuid)
        .collect()
}

/// The Endpoint rows to remove because their endpoint was seen on this
/// host and its port is gone now (detached, collected by `gc`, deleted by
/// hand): every endpoint of `seen` not in `present`, mapped to this host's
/// rows for it. Endpoints never seen here are left alone, so a row that
/// `attach --cluster-db` has just written, before its port exists, stays.
pub fn vanished_endpoints(
    seen: &BTreeSet<EndpointKey>,
    present: &BTreeSet<EndpointKey>,
    cluster: &ClusterState,
    this_host: &str,
) -> Vec<(EndpointKey, Uuid)> {
    seen.difference(present)
        .flat_map(|k| host_rows(cluster, this_host, k).into_iter().map(move |u| (k.clone(), u)))
        .collect()
}

/// The names of an Endpoint row: its container name and aliases.
fn endpoint_names(e: &crate::cluster::Endpoint) -> impl Iterator<Item = &str> {
    use crate::cluster::endpoint_keys;
    e.external_ids
        .get(endpoint_keys::CONTAINER_NAME)
        .map(String::as_str)
        .into_iter()
        .chain(e.external_ids.get(endpoint_keys::ALIASES).into_iter().flat_map(|a| a.split(',')).map(str::trim))
}

/// The services of the networks this host has endpoints in (its
/// containers are the clients), each with the addresses of the endpoints
/// its backends name now (from `endpoints`, the watch of those networks'
/// rows).
pub fn cluster_services(
    cluster: &ClusterState,
    endpoints: &[crate::cluster::Endpoint],
    local: &[LocalEndpoint],
) -> Vec<crate::pipeline::Service> {
    let mut out = Vec::new();
    for s in cluster.services.values() {
        let Some(net) = cluster.networks.get(&s.network) else { continue };
        if !local.iter().any(|e| e.network == net.name) {
            continue;
        }
        let mut backends: Vec<std::net::Ipv4Addr> = endpoints
            .iter()
            .filter(|e| e.network == net.uuid)
            .filter(|e| endpoint_names(e).any(|n| s.backends.iter().any(|b| b.eq_ignore_ascii_case(n))))
            .filter_map(|e| match e.ip {
                IpAddr::V4(ip) => Some(ip),
                IpAddr::V6(_) => None,
            })
            .collect();
        backends.sort_unstable();
        backends.dedup();
        out.push(crate::pipeline::Service {
            name: s.name.clone(),
            network: s.network.clone(),
            vip: s.vip,
            port: s.port,
            protocol: s.protocol,
            group_id: s.group_id,
            backends,
        });
    }
    out
}

/// The networks (their rows' uuids) this host has local endpoints in:
/// whose endpoints' names the agent's DNS answers.
pub fn local_networks(cluster: &ClusterState, local: &[LocalEndpoint]) -> BTreeSet<Uuid> {
    cluster.networks.values().filter(|n| local.iter().any(|e| e.network == n.name)).map(|n| n.uuid).collect()
}

/// The names the agent answers for, by VNI: for each network this host
/// has an endpoint in, every endpoint of that network in `endpoints` (a
/// watch of those networks' rows) by its container name and aliases
/// (`Endpoint.external_ids`), and whether the network forwards other
/// names to the host's resolvers (unless its `dns-forward` is `off`).
pub fn cluster_names(
    cluster: &ClusterState,
    endpoints: &[crate::cluster::Endpoint],
    local: &[LocalEndpoint],
) -> crate::pipeline::dns::Names {
    use crate::cluster::network_keys;
    use crate::pipeline::dns::{Names, NetworkNames};
    let mut names = Names::default();
    let mut by_uuid = std::collections::HashMap::new();
    for n in cluster.networks.values() {
        if !local.iter().any(|e| e.network == n.name) {
            continue;
        }
        let forward = n.external_ids.get(network_keys::DNS_FORWARD).map(String::as_str) != Some("off");
        names.by_vni.insert(n.vni, NetworkNames::new(&n.name, forward));
        by_uuid.insert(n.uuid, n.vni);
    }
    // Endpoints in a stable order (rows come in no particular one), so
    // that every host rotates a shared alias's addresses alike.
    let mut eps: Vec<&crate::cluster::Endpoint> =
        endpoints.iter().filter(|e| by_uuid.contains_key(&e.network)).collect();
    eps.sort_by_key(|e| e.ip);
    for e in eps {
        let (Some(vni), IpAddr::V4(ip)) = (by_uuid.get(&e.network), e.ip) else { continue };
        let Some(nn) = names.by_vni.get_mut(vni) else { continue };
        for name in endpoint_names(e) {
            nn.add(name, ip);
        }
    }
    // A service's name gives its address.
    for s in cluster.services.values() {
        if let Some(nn) = cluster.networks.get(&s.network).and_then(|n| names.by_vni.get_mut(&n.vni)) {
            nn.add(&s.name, s.vip);
        }
    }
    names
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::cluster::{Block, Ipam};
    use crate::net::IpNet;
    use crate::ovsdb::Uuid;
    use crate::pipeline::{Pipeline, desired_flows};

    fn mac_from_ip(ip: Ipv4Addr) -> Mac {
        Mac::from_ipv4(ip)
    }

    use crate::cluster::model::fixtures::{endpoint, host, network};

    fn local(id: &str, network: &str, ofport: u32, ip: &str) -> LocalEndpoint {
        let ip: Ipv4Addr = ip.parse().unwrap();
        LocalEndpoint { id: id.into(), network: network.into(), ofport, ip, mac: mac_from_ip(ip) }
    }

    /// h1 (vxlan+gre), h2 (gre only), h3 (geneve only); a Fan network, a
    /// pool network with a block on h2, a static network.
    fn cluster() -> ClusterState {
        let mut s = ClusterState::default();
        s.hosts.insert("h1".into(), host("h1", "172.30.0.1", &["vxlan", "gre"]));
        s.hosts.insert("h2".into(), host("h2", "172.30.0.2", &["gre"]));
        s.hosts.insert("h3".into(), host("h3", "172.30.0.3", &["geneve"]));
        let fan = network("fan", 100, "10.0.0.0/8", Ipam::Fan);
        let pool = network("pool", 200, "10.50.0.0/16", Ipam::Pool);
        let st = network("st", 300, "192.168.9.0/24", Ipam::Static);
        s.blocks.push(Block {
            uuid: Uuid::new_v4(),
            network: pool.uuid,
            host: "h2".into(),
            cidr: IpNet::parse_network("10.50.1.0/24").unwrap(),
        });
        s.endpoints.push(endpoint(&fan, "h1", "10.0.1.2"));
        s.endpoints.push(endpoint(&fan, "h1", "10.0.1.9"));
        s.endpoints.push(endpoint(&fan, "h2", "10.0.2.2"));
        s.endpoints.push(endpoint(&st, "h2", "192.168.9.5"));
        for n in [fan, pool, st] {
            s.networks.insert(n.name.clone(), n);
        }
        s
    }

    fn state_for(c: &ClusterState, locals: Vec<LocalEndpoint>) -> State {
        let mut st = State::default();
        for n in cluster_networks(c) {
            st.networks.push(crate::pipeline::Network {
                name: n.name,
                vni: n.vni.unwrap(),
                cidrs: vec![n.cidr],
                gateway: n.gateway,
                egress: n.egress,
            });
        }
        st.local_endpoints = locals;
        st.tunnel_ofports.insert(TunnelType::Vxlan, 50);
        st.tunnel_ofports.insert(TunnelType::Gre, 51);
        st.tunnel_ofports.insert(TunnelType::Geneve, 52);
        st
    }

    #[test]
    fn networks_come_from_the_cluster_with_their_vni() {
        let n = cluster_networks(&cluster());
        let got: Vec<String> = n.iter().map(|n| format!("{} {} {}", n.name, n.vni.unwrap(), n.cidr)).collect();
        assert_eq!(got, ["fan 100 10.0.0.0/8", "pool 200 10.50.0.0/16", "st 300 192.168.9.0/24"]);
    }

    #[test]
    fn tunnel_choice_follows_our_preference_and_their_support() {
        let ours = [TunnelType::Vxlan, TunnelType::Gre];
        assert_eq!(pick_tunnel(&ours, &["gre".to_owned(), "vxlan".to_owned()].into()), Some(TunnelType::Vxlan));
        assert_eq!(pick_tunnel(&ours, &["gre".to_owned()].into()), Some(TunnelType::Gre));
        assert_eq!(pick_tunnel(&ours, &["geneve".to_owned()].into()), None);
        assert_eq!(pick_tunnel(&ours, &BTreeSet::new()), Some(TunnelType::Vxlan));
        assert_eq!(pick_tunnel(&[], &BTreeSet::new()), None);
    }

    #[test]
    fn remote_view_becomes_blocks_and_endpoints_with_tunnels() {
        let c = cluster();
        let mut st = state_for(&c, vec![local("p1", "fan", 3, "10.0.1.2")]);
        let w = apply_remote(&mut st, &c, "h1", &[TunnelType::Vxlan, TunnelType::Gre]);
        let blocks: Vec<String> = st
            .remote_blocks
            .iter()
            .map(|b| format!("{} {} {} {}", b.network, b.cidr, b.tun_dst, b.tunnel.as_str()))
            .collect();
        // h2 speaks only GRE; h3 speaks nothing we do: left out, reported.
        assert_eq!(blocks, ["fan 10.0.2.0/24 172.30.0.2 gre", "pool 10.50.1.0/24 172.30.0.2 gre"]);
        let eps: Vec<String> =
            st.remote_endpoints.iter().map(|e| format!("{} {} {}", e.network, e.ip, e.tun_dst)).collect();
        assert_eq!(eps, ["st 192.168.9.5 172.30.0.2"]);
        assert!(w.iter().any(|w| w.contains("h3")), "{w:?}");
        // Applying twice gives the same state (no accumulation).
        let before = st.clone();
        apply_remote(&mut st, &c, "h1", &[TunnelType::Vxlan, TunnelType::Gre]);
        assert_eq!(st, before);
    }

    #[test]
    fn the_flows_send_remote_traffic_over_the_tunnel_with_the_vni() {
        let c = cluster();
        let mut st = state_for(&c, vec![local("p1", "fan", 3, "10.0.1.2")]);
        apply_remote(&mut st, &c, "h1", &[TunnelType::Geneve, TunnelType::Gre]);
        let d = desired_flows(&Pipeline::builtin().unwrap(), &st).unwrap();
        let text: Vec<String> = d.flows.to_flow_mods().iter().map(crate::openflow::text::format_flow).collect();
        let all = text.join("\n");
        // The block of h2 in the fan network: tun_dst h2, tun_id = VNI 100, out the GRE port (51).
        let hit = text.iter().find(|l| l.contains("10.0.2.0/24")).unwrap_or_else(|| panic!("no block flow in\n{all}"));
        assert!(hit.contains("172.30.0.2") && hit.contains("output:51"), "{hit}");
        // h3 (geneve) block is present too, out port 52.
        let h3 = text.iter().find(|l| l.contains("10.0.3.0/24")).unwrap_or_else(|| panic!("no h3 block in\n{all}"));
        assert!(h3.contains("172.30.0.3") && h3.contains("output:52"), "{h3}");
    }

    #[test]
    fn an_address_listed_one_by_one_resolves_before_its_flow_and_is_reached_after() {
        // 10.0.200.7 is in the Fan network but in no host's block: until
        // the cluster lists it, h1 has no flow for it; once listed, one.
        use crate::openflow::Field;
        use crate::pipeline::{FlowTable, Packet};
        let mut c = cluster();
        let fan = c.networks["fan"].clone();
        let (me, target) = ("10.0.1.2".parse::<Ipv4Addr>().unwrap(), "10.0.200.7".parse::<Ipv4Addr>().unwrap());
        let flows = |c: &ClusterState| {
            let mut st = state_for(c, vec![local("p1", "fan", 3, "10.0.1.2")]);
            apply_remote(&mut st, c, "h1", &[TunnelType::Vxlan, TunnelType::Gre]);
            FlowTable::from_set(&desired_flows(&Pipeline::builtin().unwrap(), &st).unwrap().flows)
        };
        let arp = Packet::arp_request(3, mac_from_ip(me), me, target);
        let echo = Packet::ipv4(3, mac_from_ip(me), mac_from_ip(target), me, target);

        // Before: the ARP responder answers with the derived MAC (the
        // container's neighbour entry never goes FAILED waiting for the
        // flow); the packets that follow are dropped, not flooded.
        let before = flows(&c);
        let tr = before.trace(&arp);
        assert_eq!(tr.ports(), [3], "{tr:?}");
        assert_eq!(tr.outputs[0].1.mac(Field::ArpSha), mac_from_ip(target));
        assert!(before.trace(&echo).dropped());

        // After the cluster lists it on h2: the same ARP answer, and the
        // packets go to h2 over GRE (h2's only type) with the network's VNI.
        c.endpoints.push(endpoint(&fan, "h2", "10.0.200.7"));
        let after = flows(&c);
        assert_eq!(after.trace(&arp).outputs[0].1.mac(Field::ArpSha), mac_from_ip(target));
        let tr = after.trace(&echo);
        assert_eq!(tr.ports(), [51], "{tr:?}");
        assert_eq!(tr.outputs[0].1.ip(Field::TunDst), "172.30.0.2".parse::<Ipv4Addr>().unwrap());
        assert_eq!(tr.outputs[0].1.get(Field::TunId), u128::from(fan.vni));
    }

    #[test]
    fn endpoint_sync_publishes_missing_and_removes_stale() {
        let c = cluster();
        // Local: 10.0.1.2 (listed), 10.0.1.3 (new), one in an unknown network.
        let locals = vec![
            local("p1", "fan", 3, "10.0.1.2"),
            local("p2", "fan", 4, "10.0.1.3"),
            local("p3", "nope", 5, "10.9.9.9"),
        ];
        let s = endpoint_sync(&locals, &c, "h1");
        let publish: Vec<String> =
            s.publish.iter().map(|e| format!("{} {} {}", e.network, e.ip, e.container)).collect();
        assert_eq!(publish, ["fan 10.0.1.3 p2"]);
        assert_eq!(s.remove, [("fan".to_owned(), "10.0.1.9".parse::<IpAddr>().unwrap())]);
        // Another host's rows are never touched.
        assert!(endpoint_sync(&[], &c, "h2").remove.iter().all(|(_, ip)| ip.to_string() != "10.0.1.2"));
    }

    #[test]
    fn a_local_endpoint_with_another_mac_is_published_again() {
        let c = cluster();
        let mut l = local("p1", "fan", 3, "10.0.1.2");
        l.mac = Mac([2, 0, 0, 0, 0, 1]);
        let s = endpoint_sync(&[l, local("p9", "fan", 6, "10.0.1.9")], &c, "h1");
        assert_eq!(s.publish.len(), 1);
        assert!(s.remove.is_empty());
    }

    fn key(n: &str, ip: &str) -> EndpointKey {
        (n.to_owned(), ip.parse().unwrap())
    }

    #[test]
    fn a_seen_endpoint_whose_port_is_gone_loses_its_row() {
        let c = cluster();
        let row_9 = c.endpoints.iter().find(|e| e.ip.to_string() == "10.0.1.9").unwrap().uuid;
        let seen: BTreeSet<_> = [key("fan", "10.0.1.2"), key("fan", "10.0.1.9")].into();
        let present: BTreeSet<_> = [key("fan", "10.0.1.2")].into();
        assert_eq!(vanished_endpoints(&seen, &present, &c, "h1"), [(key("fan", "10.0.1.9"), row_9)]);
        // Nothing gone: nothing to remove.
        assert!(vanished_endpoints(&seen, &seen, &c, "h1").is_empty());
    }

    #[test]
    fn a_row_whose_port_was_never_seen_here_stays() {
        // `attach --cluster-db` writes the row, then plugs the port: until
        // the agent has seen the port, the row is not its to remove.
        let c = cluster();
        let seen: BTreeSet<_> = [key("fan", "10.0.1.2")].into();
        let present = seen.clone();
        assert!(vanished_endpoints(&seen, &present, &c, "h1").is_empty());
        assert!(vanished_endpoints(&BTreeSet::new(), &BTreeSet::new(), &c, "h1").is_empty());
    }

    #[test]
    fn only_this_hosts_rows_are_removed() {
        let c = cluster();
        // h1 saw an address that h2's row holds (the container moved): not ours.
        let seen: BTreeSet<_> = [key("fan", "10.0.2.2"), key("st", "192.168.9.5")].into();
        assert!(vanished_endpoints(&seen, &BTreeSet::new(), &c, "h1").is_empty());
        // The same seen on h2 is h2's to remove; an unknown network has no rows.
        let seen: BTreeSet<_> = [key("st", "192.168.9.5"), key("nope", "192.168.9.5")].into();
        let got = vanished_endpoints(&seen, &BTreeSet::new(), &c, "h2");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, key("st", "192.168.9.5"));
    }

    #[test]
    fn a_row_published_again_is_a_new_row() {
        // The port went, the row went, the address was attached again: the
        // new row has a new UUID, so a late removal of the old one misses it.
        let mut c = cluster();
        let old = host_rows(&c, "h1", &key("fan", "10.0.1.9"));
        assert_eq!(old.len(), 1);
        let fan = c.networks["fan"].clone();
        c.endpoints.retain(|e| e.uuid != old[0]);
        c.endpoints.push(endpoint(&fan, "h1", "10.0.1.9"));
        let new = host_rows(&c, "h1", &key("fan", "10.0.1.9"));
        assert_eq!(new.len(), 1);
        assert_ne!(new, old);
    }

    #[test]
    fn recorded_endpoints_are_the_ports_that_exist_with_or_without_an_ofport() {
        let schema = crate::vswitch::bundled_schema().unwrap().clone();
        let mut cache = Cache::new(std::sync::Arc::new(schema));
        let ids = |pairs: &[(&str, &str)]| {
            serde_json::json!(["map", pairs.iter().map(|(k, v)| serde_json::json!([k, v])).collect::<Vec<_>>()])
        };
        let u = |i: u8| format!("00000000-0000-0000-0000-0000000000{i:02x}");
        let r = |i: u8| serde_json::json!(["uuid", u(i)]);
        let rows = serde_json::json!({
            "Bridge": {
                u(1): {"initial": {"name": "obr0", "ports": ["set", [r(2), r(3), r(4)]]}},
                u(9): {"initial": {"name": "other", "ports": ["set", [r(5)]]}}
            },
            "Port": {
                u(2): {"initial": {"name": "a", "interfaces": r(12)}},
                u(3): {"initial": {"name": "b", "interfaces": r(13)}},
                u(4): {"initial": {"name": "t", "interfaces": r(14)}},
                u(5): {"initial": {"name": "c", "interfaces": r(15)}}
            },
            "Interface": {
                u(12): {"initial": {"name": "a", "ofport": 1, "external_ids": ids(&[("ovsnet-bridge", "obr0"), ("ovsnet-ip", "10.0.1.2/8"), ("ovsnet-network", "fan")])}},
                u(13): {"initial": {"name": "b", "ofport": -1, "external_ids": ids(&[("ovsnet-bridge", "obr0"), ("ovsnet-ip", "10.5.0.3/24")])}},
                u(14): {"initial": {"name": "t", "type": "vxlan", "ofport": 7}},
                u(15): {"initial": {"name": "c", "ofport": 2, "external_ids": ids(&[("ovsnet-bridge", "other"), ("ovsnet-ip", "10.0.1.3/8"), ("ovsnet-network", "fan")])}}
            }
        });
        cache.apply_update2(&rows).unwrap();
        let got = recorded_endpoints(&cache, "obr0");
        assert_eq!(got, [key("default", "10.5.0.3"), key("fan", "10.0.1.2")].into());
        assert!(recorded_endpoints(&cache, "nope").is_empty());
    }
}
