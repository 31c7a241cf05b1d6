//! The way out and the way in, the host's side. Networks with egress
//! leave through the bridge's internal port into the host's kernel, which
//! routes them and translates their source to its own address; ports
//! published on the host's addresses are translated there to a
//! container's. What the kernel must hold follows from the desired state
//! ([`host_nat`], pure): an on-link route per network block through the
//! bridge port (so that replies, and the kernel's reverse-path check, find
//! the containers), forwarding on, and the `ovsnet` nftables table
//! (masquerade per block, a translation per published port, nothing routed
//! from the bridge back into it). It is made equal when that set changes,
//! and left as it is when the agent stops (a restart must not cut
//! connections: conntrack holds them in the kernel).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use crate::netlink::{Netlink, NetlinkError, nat};
use crate::pipeline::State;

/// What the host's kernel is to hold for the containers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostNat {
    /// The blocks (address, prefix) of the networks that leave through
    /// the host.
    pub blocks: BTreeSet<(Ipv4Addr, u8)>,
    /// The published ports' translations, in the order of their endpoints.
    pub published: Vec<nat::Dnat>,
}

/// The blocks (address, prefix) of the networks that leave through the
/// host: none without an uplink.
pub fn egress_blocks(state: &State) -> BTreeSet<(Ipv4Addr, u8)> {
    if state.uplink.is_none() {
        return BTreeSet::new();
    }
    state
        .networks
        .iter()
        .filter(|n| n.egress)
        .flat_map(|n| n.cidrs.iter().map(|c| c.network()))
        .filter_map(|c| match c.addr {
            IpAddr::V4(a) => Some((a, c.prefix)),
            IpAddr::V6(_) => None,
        })
        .collect()
}

/// What the host's kernel is to hold, with what was left out and why: a
/// published port of a network with no way out (its replies could not
/// leave), or one that collides with a port an endpoint earlier in the
/// order published first.
pub fn host_nat(state: &State) -> (HostNat, Vec<String>) {
    let mut warnings = Vec::new();
    let mut published: Vec<nat::Dnat> = Vec::new();
    for p in &state.published {
        let out = state.uplink.is_some() && state.network(&p.network).is_some_and(|n| n.egress);
        if !out {
            warnings.push(format!("{}: {} not published: network {} has no way out", p.endpoint, p.port, p.network));
        } else if let Some(first) = published.iter().find(|d| d.port.collides(&p.port)) {
            warnings.push(format!(
                "{}: {} not published: {} already takes it for {}",
                p.endpoint, p.port, first.port, first.to
            ));
        } else {
            published.push(nat::Dnat { port: p.port, to: p.ip });
        }
    }
    (HostNat { blocks: egress_blocks(state), published }, warnings)
}

#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Nat(#[from] nat::NatError),
    #[error("the bridge's internal port {0} is not there")]
    NoPort(String),
    #[error("{0}")]
    Netns(String),
}

/// What this host's kernel was last given.
#[derive(Debug)]
pub struct HostEgress {
    bridge: String,
    /// The namespace ovs-vswitchd (and so the bridge's port) is in.
    netns: Option<String>,
    applied: Option<HostNat>,
}

impl HostEgress {
    pub fn new(bridge: &str, netns: Option<String>) -> Self {
        HostEgress { bridge: bridge.to_owned(), netns, applied: None }
    }

    /// Makes the kernel hold `want`, when it differs from what it was last
    /// given (the first time: always, so that the table a previous run
    /// left is brought up to date). `warnings` (what [`host_nat`] left
    /// out) are logged when it does.
    pub async fn sync(&mut self, want: HostNat, warnings: &[String]) -> Result<(), EgressError> {
        if self.applied.as_ref() == Some(&want) {
            return Ok(());
        }
        for w in warnings {
            tracing::warn!("{w}");
        }
        if want == HostNat::default() && self.applied.is_none() {
            // Nothing to give and nothing given by this run: a table an
            // earlier run left is taken away.
            match &self.netns {
                None => nat::remove()?,
                Some(ns) => nat::remove_in(self.open_netns(ns)?)?,
            }
            self.applied = Some(want);
            return Ok(());
        }
        let nl = match &self.netns {
            Some(ns) => Netlink::open_netns_without_packet(ns)?,
            None => Netlink::open_without_packet()?,
        };
        let port = nl.link_by_name(&self.bridge).await?.ok_or_else(|| EgressError::NoPort(self.bridge.clone()))?;
        nl.set_up(&port).await?;
        for &(addr, prefix) in &want.blocks {
            nl.replace_link_route(&port, addr, prefix).await?;
        }
        let gone = self.applied.iter().flat_map(|a| a.blocks.iter()).filter(|b| !want.blocks.contains(b));
        for &(addr, prefix) in gone {
            nl.delete_link_route(&port, addr, prefix).await?;
        }
        let egress = nat::Egress {
            bridge: self.bridge.clone(),
            sources: want.blocks.iter().copied().collect(),
            published: want.published.clone(),
        };
        let forward = !egress.sources.is_empty();
        match &self.netns {
            None => {
                if forward {
                    nat::set_ip_forward(true)?;
                }
                nat::apply(&egress)?;
            }
            Some(ns) => {
                let fd = self.open_netns(ns)?;
                if forward {
                    nat::set_ip_forward_in(&fd, true)?;
                }
                nat::apply_in(&fd, &egress)?;
            }
        }
        tracing::info!(
            blocks = want.blocks.len(),
            published = want.published.len(),
            "egress and published ports through {} set up in the host's kernel",
            self.bridge
        );
        self.applied = Some(want);
        Ok(())
    }

    fn open_netns(&self, ns: &str) -> Result<std::os::fd::OwnedFd, EgressError> {
        crate::netns::open(ns).map_err(|e| EgressError::Netns(e.to_string()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::net::{IpNet, Mac, PublishedPort};
    use crate::pipeline::{Network, Published, Uplink};

    fn net(name: &str, cidr: &str, egress: bool) -> Network {
        Network { name: name.into(), vni: 1, cidrs: vec![IpNet::parse_network(cidr).unwrap()], gateway: None, egress }
    }

    #[test]
    fn only_networks_with_egress_and_only_with_an_uplink() {
        let mut s = State {
            networks: vec![net("out", "10.40.0.0/16", true), net("inside", "10.41.0.0/16", false)],
            ..State::default()
        };
        assert!(egress_blocks(&s).is_empty(), "no uplink: no way out");
        s.uplink = Some(Uplink { mac: Mac([2, 0, 0, 0, 0, 1]) });
        assert_eq!(egress_blocks(&s), BTreeSet::from([("10.40.0.0".parse().unwrap(), 16)]));
    }

    #[test]
    fn published_ports_need_a_way_out_and_the_first_keeps_a_port() {
        let mut s = State {
            networks: vec![net("out", "10.40.0.0/16", true), net("inside", "10.41.0.0/16", false)],
            ..State::default()
        };
        let publish = |endpoint: &str, network: &str, ip: &str, port: &str| Published {
            endpoint: endpoint.into(),
            network: network.into(),
            ip: ip.parse().unwrap(),
            port: port.parse().unwrap(),
        };
        s.published = vec![
            publish("ovsa", "out", "10.40.0.5", "8080:80"),
            publish("ovsa", "out", "10.40.0.5", "5353:53/udp"),
            publish("ovsb", "out", "10.40.0.6", "192.0.2.1:8080:80"),
            publish("ovsb", "out", "10.40.0.6", "192.0.2.1:8081:80"),
            publish("ovsc", "inside", "10.41.0.7", "9090:90"),
        ];
        let (nat, warnings) = host_nat(&s);
        assert!(nat.published.is_empty(), "no uplink: nothing published");
        assert_eq!(warnings.len(), 5);

        s.uplink = Some(Uplink { mac: Mac([2, 0, 0, 0, 0, 1]) });
        let (nat, warnings) = host_nat(&s);
        let shown: Vec<String> = nat.published.iter().map(|d| format!("{} {}", d.port, d.to)).collect();
        assert_eq!(shown, ["8080:80/tcp 10.40.0.5", "5353:53/udp 10.40.0.5", "192.0.2.1:8081:80/tcp 10.40.0.6"]);
        assert_eq!(
            warnings,
            [
                "ovsb: 192.0.2.1:8080:80/tcp not published: 8080:80/tcp already takes it for 10.40.0.5",
                "ovsc: 9090:90/tcp not published: network inside has no way out",
            ]
        );
        let p: PublishedPort = "8080:80".parse().unwrap();
        assert_eq!(nat.published[0].port, p);
    }
}
