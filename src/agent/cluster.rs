//! Cluster mode, the pure part: from the cluster database's state and
//! this host's own endpoints to what the pipeline needs (networks with
//! their VNI and CIDR, remote blocks and endpoints with the tunnel to
//! reach them), and which Endpoint rows this host must publish or remove.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::attach::{format_mac, parse_mac};
use crate::cluster::{ClusterState, EndpointSpec, remote_view};
use crate::pipeline::{LocalEndpoint, RemoteBlock, RemoteEndpoint, State, TunnelType};

use super::dbstate::NetworkOpt;

/// The tunnel port of each type on a bridge in cluster mode: one port per
/// type, `remote_ip=flow`, `key=flow`.
pub fn tunnel_port_name(t: TunnelType) -> String {
    format!("ovsnet-{}", t.name())
}

/// The cluster's networks, as the agent's `--network` options (the VNI
/// and CIDR the cluster decided, not derived from names).
pub fn cluster_networks(cluster: &ClusterState) -> Vec<NetworkOpt> {
    cluster
        .networks
        .values()
        .filter(|n| n.cidr.is_ipv4())
        .map(|n| NetworkOpt { name: n.name.clone(), cidr: n.cidr, vni: Some(n.vni) })
        .collect()
}

/// The tunnel type to reach a host that announced `theirs`: the first of
/// ours (in order of preference) it also speaks; a host that announced
/// none is reached with our first. `None`: no common type.
pub fn pick_tunnel(ours: &[TunnelType], theirs: &BTreeSet<String>) -> Option<TunnelType> {
    if theirs.is_empty() {
        return ours.first().copied();
    }
    ours.iter().copied().find(|t| theirs.contains(t.name()))
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
        let Ok(mac) = parse_mac(&e.mac) else {
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
    let ours: Vec<(&str, IpAddr, &str)> = cluster
        .endpoints
        .iter()
        .filter(|e| e.host == this_host)
        .filter_map(|e| cluster.network_by_uuid(e.network).map(|n| (n.name.as_str(), e.ip, e.mac.as_str())))
        .collect();
    for l in local {
        if !cluster.networks.contains_key(&l.network) {
            continue;
        }
        let mac = format_mac(l.mac);
        let listed = ours.iter().any(|(n, ip, m)| *n == l.network && *ip == IpAddr::V4(l.ip) && m.eq_ignore_ascii_case(&mac));
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
    for (n, ip, _) in ours {
        let present = local.iter().any(|l| l.network == n && IpAddr::V4(l.ip) == ip);
        if !present {
            sync.remove.push((n.to_owned(), ip));
        }
    }
    sync
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use std::net::Ipv4Addr;

    use super::*;
    use crate::attach::mac_from_ip;
    use crate::cluster::{Block, Endpoint, Host, Ipam, Network};
    use crate::net::IpNet;
    use crate::ovsdb::Uuid;
    use crate::pipeline::{Pipeline, desired_flows};

    fn host(name: &str, ip: &str, tunnels: &[&str]) -> Host {
        Host {
            uuid: Uuid::new_v4(),
            name: name.into(),
            underlay_ip: ip.parse().unwrap(),
            tunnel_types: tunnels.iter().map(|t| (*t).to_owned()).collect(),
            heartbeat: 0,
            heartbeat_interval: 0,
            external_ids: BTreeMap::new(),
        }
    }

    fn network(name: &str, vni: u32, cidr: &str, ipam: Ipam) -> Network {
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
            external_ids: BTreeMap::new(),
        }
    }

    fn endpoint(net: &Network, host: &str, ip: &str) -> Endpoint {
        let v4: Ipv4Addr = ip.parse().unwrap();
        Endpoint {
            uuid: Uuid::new_v4(),
            network: net.uuid,
            host: host.into(),
            ip: ip.parse().unwrap(),
            mac: format_mac(mac_from_ip(v4)),
            container: format!("c-{ip}"),
            interface: "eth1".into(),
            external_ids: BTreeMap::new(),
        }
    }

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
        s.blocks.push(Block { uuid: Uuid::new_v4(), network: pool.uuid, host: "h2".into(), cidr: IpNet::parse_network("10.50.1.0/24").unwrap() });
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
            st.networks.push(crate::pipeline::Network { name: n.name, vni: n.vni.unwrap(), cidrs: vec![n.cidr] });
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
        let blocks: Vec<String> =
            st.remote_blocks.iter().map(|b| format!("{} {} {} {}", b.network, b.cidr, b.tun_dst, b.tunnel.name())).collect();
        // h2 speaks only GRE; h3 speaks nothing we do: left out, reported.
        assert_eq!(blocks, ["fan 10.0.2.0/24 172.30.0.2 gre", "pool 10.50.1.0/24 172.30.0.2 gre"]);
        let eps: Vec<String> = st.remote_endpoints.iter().map(|e| format!("{} {} {}", e.network, e.ip, e.tun_dst)).collect();
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
    fn endpoint_sync_publishes_missing_and_removes_stale() {
        let c = cluster();
        // Local: 10.0.1.2 (listed), 10.0.1.3 (new), one in an unknown network.
        let locals = vec![local("p1", "fan", 3, "10.0.1.2"), local("p2", "fan", 4, "10.0.1.3"), local("p3", "nope", 5, "10.9.9.9")];
        let s = endpoint_sync(&locals, &c, "h1");
        let publish: Vec<String> = s.publish.iter().map(|e| format!("{} {} {}", e.network, e.ip, e.container)).collect();
        assert_eq!(publish, ["fan 10.0.1.3 p2"]);
        assert_eq!(s.remove, [("fan".to_owned(), "10.0.1.9".parse::<IpAddr>().unwrap())]);
        // Another host's rows are never touched.
        assert!(endpoint_sync(&[], &c, "h2").remove.iter().all(|(_, ip)| ip.to_string() != "10.0.1.2"));
    }

    #[test]
    fn a_local_endpoint_with_another_mac_is_published_again() {
        let c = cluster();
        let mut l = local("p1", "fan", 3, "10.0.1.2");
        l.mac = [2, 0, 0, 0, 0, 1];
        let s = endpoint_sync(&[l, local("p9", "fan", 6, "10.0.1.9")], &c, "h1");
        assert_eq!(s.publish.len(), 1);
        assert!(s.remove.is_empty());
    }
}
