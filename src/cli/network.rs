//! `ovsnet network create|list|show|del`: networks in the cluster database.

use std::net::Ipv4Addr;

use anyhow::Context;
use clap::Subcommand;

use super::{ClusterDbArg, Format, Global};
use crate::cluster::{ClusterDb, Ipam, Network, NetworkSpec};
use crate::net::IpNet;

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network (its VNI is unique in the cluster).
    Create {
        /// The network's name, unique in the cluster (e.g. blue).
        name: String,
        /// The network's addresses, e.g. 10.100.0.0/16.
        #[arg(long, value_name = "CIDR")]
        cidr: String,
        /// Tunnel key (VNI), 1..16777215 (default: the lowest free one).
        #[arg(long, value_name = "N")]
        vni: Option<u32>,
        /// static: addresses given at attach (or lowest free, cluster-wide);
        /// pool: each host claims a block; fan: each host's block follows
        /// from its underlay address.
        #[arg(long, default_value = "static", value_parser = ["static", "pool", "fan"])]
        ipam: String,
        /// MTU of the network's container interfaces (default: the bridge's,
        /// less the tunnel overhead).
        #[arg(long, value_name = "N")]
        mtu: Option<u32>,
        /// Pool: prefix length of each host's block (default /24).
        #[arg(long, value_name = "N")]
        block_prefix: Option<u8>,
        /// Fan: the hosts' underlay network, e.g. 172.30.0.0/16.
        #[arg(long, value_name = "CIDR")]
        underlay: Option<String>,
        /// The network's gateway: answered by every host's flows (ARP,
        /// ping) and never handed out; containers route through it
        /// (default: the first address of the CIDR).
        #[arg(long, value_name = "IP")]
        gateway: Option<Ipv4Addr>,
        /// No way out: the network's containers reach no address outside
        /// the networks of its routers (Docker's --internal).
        #[arg(long)]
        internal: bool,
        /// Names the network's containers ask that are not in the network
        /// (its endpoints and services): on, the agents ask the hosts'
        /// resolvers and relay the answer; off, NXDOMAIN.
        #[arg(long, default_value = "on", value_parser = ["on", "off"], value_name = "on|off")]
        dns_forward: String,
        #[command(flatten)]
        db: ClusterDbArg,
    },
    /// List networks.
    List {
        #[command(flatten)]
        db: ClusterDbArg,
    },
    /// Show a network, its hosts' blocks and its endpoints.
    Show {
        /// The network to show.
        name: String,
        #[command(flatten)]
        db: ClusterDbArg,
    },
    /// Delete a network (refused while it has endpoints).
    Del {
        /// The network to delete.
        name: String,
        /// A missing network is not an error.
        #[arg(long)]
        if_exists: bool,
        #[command(flatten)]
        db: ClusterDbArg,
    },
}

impl NetworkCommand {
    /// The `--cluster-db` of the command (the configuration resolves it).
    pub fn cluster_db_arg(&self) -> &ClusterDbArg {
        match self {
            NetworkCommand::Create { db, .. } => db,
            NetworkCommand::List { db, .. } => db,
            NetworkCommand::Show { db, .. } => db,
            NetworkCommand::Del { db, .. } => db,
        }
    }
}

fn line(n: &Network) -> String {
    format!(
        "{:<16} {:<9} {:<18} {:<7} {:<6} {}",
        n.name,
        n.vni,
        n.cidr.to_string(),
        n.ipam.as_str(),
        n.mtu.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
        match n.ipam {
            Ipam::Pool => format!("blocks /{}", n.block_prefix.unwrap_or(24)),
            Ipam::Fan => format!("underlay {}", n.underlay.map(|u| u.to_string()).unwrap_or_default()),
            Ipam::Static => String::new(),
        }
    )
}

const HEADER: &str = "NAME             VNI       CIDR               IPAM    MTU    ";

pub async fn run(cmd: NetworkCommand, g: &Global) -> anyhow::Result<()> {
    match cmd {
        NetworkCommand::Create {
            name,
            cidr,
            vni,
            ipam,
            mtu,
            block_prefix,
            underlay,
            gateway,
            internal,
            dns_forward,
            db: _,
        } => {
            let spec = NetworkSpec {
                name,
                cidr: IpNet::parse_network(&cidr)?,
                vni,
                ipam: ipam.parse().map_err(anyhow::Error::msg)?,
                mtu,
                block_prefix,
                underlay: underlay.as_deref().map(IpNet::parse_network).transpose()?,
                gateway,
                internal,
                dns_forward: dns_forward == "on",
            };
            spec.check()?;
            let cdb = ClusterDb::connect(g.require_cluster_db()?, &g.connect).await?;
            let n = cdb.create_network(&spec).await?;
            match g.format {
                Format::Json => outln!("{}", serde_json::to_string(&n)?),
                Format::Table => outln!("created network {} vni {} {} ipam {}", n.name, n.vni, n.cidr, n.ipam),
            }
            Ok(())
        }
        NetworkCommand::List { db: _ } => {
            let cdb = ClusterDb::connect(g.require_cluster_db()?, &g.connect).await?;
            let nets = cdb.networks().await?;
            match g.format {
                Format::Json => outln!("{}", serde_json::to_string(&nets)?),
                Format::Table => {
                    outln!("{HEADER}");
                    for n in &nets {
                        outln!("{}", line(n));
                    }
                }
            }
            Ok(())
        }
        NetworkCommand::Show { name, db: _ } => {
            let cdb = ClusterDb::connect(g.require_cluster_db()?, &g.connect).await?;
            let state = cdb.state().await?;
            let n = state.networks.get(&name).ok_or_else(|| crate::cluster::ClusterError::NoNetwork(name.clone()))?;
            // Pool blocks are rows of their own; Fan blocks follow from hosts.
            let mut blocks: Vec<(String, String)> = state
                .blocks
                .iter()
                .filter(|b| b.network == n.uuid)
                .map(|b| (b.host.clone(), b.cidr.to_string()))
                .collect();
            if n.ipam == Ipam::Fan {
                blocks.extend(
                    state
                        .hosts
                        .values()
                        .filter_map(|h| state.host_block(n, h).map(|b| (h.name.clone(), b.to_string()))),
                );
            }
            let eps: Vec<_> = state.endpoints_of(n).collect();
            match g.format {
                Format::Json => outln!(
                    "{}",
                    serde_json::json!({"network": n, "blocks": blocks.iter().map(|(h, b)| serde_json::json!({"host": h, "cidr": b})).collect::<Vec<_>>(), "endpoints": eps})
                ),
                Format::Table => {
                    outln!("{HEADER}\n{}", line(n));
                    if let Some(gw) = n.gateway {
                        outln!("gateway {gw}");
                    }
                    if n.internal {
                        outln!("internal: no way out through the hosts");
                    }
                    if n.external_ids.get(crate::cluster::network_keys::DNS_FORWARD).map(String::as_str) == Some("off")
                    {
                        outln!("dns-forward: off (names not in the network get NXDOMAIN)");
                    }
                    for (router, nets) in state.router_networks() {
                        if nets.contains(&n.name.as_str()) {
                            outln!("router {router}: {}", nets.join(", "));
                        }
                    }
                    for (h, b) in &blocks {
                        outln!("block {b} on {h}");
                    }
                    outln!("{} endpoint(s)", eps.len());
                    for e in eps {
                        outln!("  {:<16} {} on {} ({} {})", e.ip.to_string(), e.mac, e.host, e.container, e.interface);
                    }
                }
            }
            Ok(())
        }
        NetworkCommand::Del { name, if_exists, db: _ } => {
            let cdb = ClusterDb::connect(g.require_cluster_db()?, &g.connect).await?;
            match cdb.delete_network(&name).await {
                Ok(()) => outln!("deleted network {name}"),
                Err(crate::cluster::ClusterError::NoNetwork(_)) if if_exists => {}
                Err(e) => return Err(e).context(format!("network del {name}")),
            }
            Ok(())
        }
    }
}
