//! The way out, the host's side: networks with egress leave through the
//! bridge's internal port into the host's kernel, which routes them and
//! translates their source to its own address. What the kernel must hold
//! follows from the desired state ([`egress_blocks`], pure): an on-link
//! route per network block through the bridge port (so that replies, and
//! the kernel's reverse-path check, find the containers), forwarding on,
//! and the `ovsnet` nftables table (masquerade per block, nothing routed
//! from the bridge back into it). It is made equal when that set changes,
//! and left as it is when the agent stops (a restart must not cut
//! connections: conntrack holds them in the kernel).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use crate::netlink::{Netlink, NetlinkError, nat};
use crate::pipeline::State;

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
    applied: Option<BTreeSet<(Ipv4Addr, u8)>>,
}

impl HostEgress {
    pub fn new(bridge: &str, netns: Option<String>) -> Self {
        HostEgress { bridge: bridge.to_owned(), netns, applied: None }
    }

    /// Makes the kernel hold what `blocks` call for, when they differ from
    /// what it was last given (the first time: always, so that the table
    /// a previous run left is brought up to date).
    pub async fn sync(&mut self, blocks: BTreeSet<(Ipv4Addr, u8)>) -> Result<(), EgressError> {
        if self.applied.as_ref() == Some(&blocks) {
            return Ok(());
        }
        if blocks.is_empty() && self.applied.is_none() {
            // Nothing to give and nothing given by this run: a table an
            // earlier run left is taken away.
            self.in_netns(nat::remove)??;
            self.applied = Some(blocks);
            return Ok(());
        }
        let nl = match &self.netns {
            Some(ns) => Netlink::open_netns_without_packet(ns)?,
            None => Netlink::open_without_packet()?,
        };
        let port = nl.link_by_name(&self.bridge).await?.ok_or_else(|| EgressError::NoPort(self.bridge.clone()))?;
        nl.set_up(&port).await?;
        for &(addr, prefix) in &blocks {
            nl.replace_link_route(&port, addr, prefix).await?;
        }
        for &(addr, prefix) in self.applied.iter().flatten().filter(|b| !blocks.contains(b)) {
            nl.delete_link_route(&port, addr, prefix).await?;
        }
        let egress = nat::Egress { bridge: self.bridge.clone(), sources: blocks.iter().copied().collect() };
        self.in_netns(move || -> Result<(), nat::NatError> {
            if !egress.sources.is_empty() {
                nat::set_ip_forward(true)?;
            }
            nat::apply(&egress)
        })??;
        tracing::info!(blocks = blocks.len(), "egress through {} set up in the host's kernel", self.bridge);
        self.applied = Some(blocks);
        Ok(())
    }

    /// Runs `f` in the switch's namespace (or here).
    fn in_netns<R: Send>(&self, f: impl FnOnce() -> R + Send) -> Result<R, EgressError> {
        match &self.netns {
            None => Ok(f()),
            Some(ns) => {
                let fd = crate::netns::open(ns).map_err(|e| EgressError::Netns(e.to_string()))?;
                crate::netns::run_in(&fd, f).map_err(|e| EgressError::Netns(e.to_string()))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::net::{IpNet, Mac};
    use crate::pipeline::{Network, Uplink};

    #[test]
    fn only_networks_with_egress_and_only_with_an_uplink() {
        let mut s = State::default();
        let net = |name: &str, cidr: &str, egress: bool| Network {
            name: name.into(),
            vni: 1,
            cidrs: vec![IpNet::parse_network(cidr).unwrap()],
            gateway: None,
            egress,
        };
        s.networks = vec![net("out", "10.40.0.0/16", true), net("inside", "10.41.0.0/16", false)];
        assert!(egress_blocks(&s).is_empty(), "no uplink: no way out");
        s.uplink = Some(Uplink { mac: Mac([2, 0, 0, 0, 0, 1]) });
        assert_eq!(egress_blocks(&s), BTreeSet::from([("10.40.0.0".parse().unwrap(), 16)]));
    }
}
