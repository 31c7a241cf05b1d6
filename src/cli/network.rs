//! `ovsnet network create|list|show|del`: networks in the cluster database.

use std::net::Ipv4Addr;

use anyhow::Context;
use clap::Subcommand;

use super::cluster::ClusterDbArg;
use super::{Format, Global};
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
        /// An address never handed out (a router's).
        #[arg(long, value_name = "IP")]
        gateway: Option<Ipv4Addr>,
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
        NetworkCommand::Create { name, cidr, vni, ipam, mtu, block_prefix, underlay, gateway, db } => {
            let spec = NetworkSpec {
                name,
                cidr: IpNet::parse_network(&cidr)?,
                vni,
                ipam: ipam.parse().map_err(anyhow::Error::msg)?,
                mtu,
                block_prefix,
                underlay: underlay.as_deref().map(IpNet::parse_network).transpose()?,
                gateway,
            };
            spec.check()?;
            let cdb = ClusterDb::connect(&db.cluster_db, &g.connect).await?;
            let n = cdb.create_network(&spec).await?;
            match g.format {
                Format::Json => println!("{}", serde_json::to_string(&n)?),
                Format::Table => println!("created network {} vni {} {} ipam {}", n.name, n.vni, n.cidr, n.ipam),
            }
            Ok(())
        }
        NetworkCommand::List { db } => {
            let cdb = ClusterDb::connect(&db.cluster_db, &g.connect).await?;
            let nets = cdb.networks().await?;
            match g.format {
                Format::Json => println!("{}", serde_json::to_string(&nets)?),
                Format::Table => {
                    println!("{HEADER}");
                    for n in &nets {
                        println!("{}", line(n));
                    }
                }
            }
            Ok(())
        }
        NetworkCommand::Show { name, db } => {
            let cdb = ClusterDb::connect(&db.cluster_db, &g.connect).await?;
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
                Format::Json => println!(
                    "{}",
                    serde_json::json!({"network": n, "blocks": blocks.iter().map(|(h, b)| serde_json::json!({"host": h, "cidr": b})).collect::<Vec<_>>(), "endpoints": eps})
                ),
                Format::Table => {
                    println!("{HEADER}\n{}", line(n));
                    if let Some(gw) = n.gateway {
                        println!("gateway {gw}");
                    }
                    for (h, b) in &blocks {
                        println!("block {b} on {h}");
                    }
                    println!("{} endpoint(s)", eps.len());
                    for e in eps {
                        println!(
                            "  {:<16} {} on {} ({} {})",
                            e.ip.to_string(),
                            e.mac,
                            e.host,
                            e.container,
                            e.interface
                        );
                    }
                }
            }
            Ok(())
        }
        NetworkCommand::Del { name, if_exists, db } => {
            let cdb = ClusterDb::connect(&db.cluster_db, &g.connect).await?;
            match cdb.delete_network(&name).await {
                Ok(()) => println!("deleted network {name}"),
                Err(crate::cluster::ClusterError::NoNetwork(_)) if if_exists => {}
                Err(e) => return Err(e).context(format!("network del {name}")),
            }
            Ok(())
        }
    }
}

/// This host's name in the cluster: `--host-name`, else the system's.
pub(super) fn host_name(given: Option<&str>) -> anyhow::Result<String> {
    match given {
        Some(h) => Ok(h.to_owned()),
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .context("no --host-name and no system host name"),
    }
}

/// `ovsnet attach BRIDGE CONTAINER [IP] --network NAME --cluster-db REMOTES`:
/// the address is allocated in the cluster (or the given one published),
/// then the container is attached; if the attach fails, the endpoint is
/// removed again, so a failure leaves nothing behind.
pub async fn attach_in_cluster(
    args: &super::attach::AttachArgs,
    remotes: &str,
    network: &str,
    g: &Global,
) -> anyhow::Result<()> {
    use crate::cluster::{ClusterError, EndpointSpec};
    let (Some(bridge), Some(container)) = (&args.bridge, &args.container) else {
        anyhow::bail!("attach needs BRIDGE CONTAINER");
    };
    let host = host_name(args.host_name.as_deref())?;
    let cdb = ClusterDb::connect(remotes, &g.connect).await?;
    let net = cdb.network(network).await?;
    // Check everything local before writing to the cluster.
    let probe_ip = match &args.ip {
        Some(ip) => ip.clone(),
        None => format!("{}/{}", net.cidr.addr, net.cidr.prefix),
    };
    super::attach::request(bridge, container, &probe_ip, &args.opts).or_else(|e| match &args.ip {
        Some(_) => Err(e),
        // The network address itself is refused as a container address;
        // only the names and options matter here.
        None => Ok(super::attach::request(bridge, container, "192.0.2.1/24", &args.opts)?),
    })?;
    let (endpoint, published) = match &args.ip {
        Some(ip) => {
            let ((addr, _), _) = crate::attach::parse_ip_gateway(ip)?;
            let spec = EndpointSpec {
                network: network.to_owned(),
                host: host.clone(),
                ip: addr.into(),
                mac: args.opts.mac.clone(),
                container: container.clone(),
                interface: args.opts.ifname.clone(),
                external_ids: Default::default(),
            };
            match cdb.publish_endpoint(&spec).await {
                Ok(e) => (e, true),
                // Attaching again what is already attached here is fine.
                Err(ClusterError::IpInUse { host: h, container: c, .. }) if h == host && c == *container => {
                    let state = cdb.state().await?;
                    let e = state
                        .endpoints
                        .into_iter()
                        .find(|e| e.ip == std::net::IpAddr::V4(addr) && e.network == net.uuid);
                    (e.context("endpoint vanished")?, false)
                }
                Err(e) => return Err(e.into()),
            }
        }
        None => (cdb.allocate_ip(network, &host, container, &args.opts.ifname).await?, true),
    };
    let ip_arg = match &args.ip {
        Some(ip) => ip.clone(),
        None => match net.gateway {
            Some(gw) => format!("{}/{}@{gw}", endpoint.ip, net.cidr.prefix),
            None => format!("{}/{}", endpoint.ip, net.cidr.prefix),
        },
    };
    let mut opts = args.opts.clone();
    if opts.mtu.is_none() {
        opts.mtu = net.mtu;
    }
    let attached = async {
        let req = super::attach::request(bridge, container, &ip_arg, &opts)?;
        let attacher = super::attach::attacher(g).await?;
        Ok::<_, anyhow::Error>(attacher.attach(&req).await?)
    }
    .await;
    match attached {
        Ok(report) => {
            match g.format {
                Format::Json => println!("{}", serde_json::to_string(&report)?),
                Format::Table => println!("{} (network {network}, host {host})", super::attach::describe(&report)),
            }
            Ok(())
        }
        Err(e) => {
            if published {
                let _ = cdb.remove_endpoint(network, endpoint.ip).await;
            }
            Err(e)
        }
    }
}
