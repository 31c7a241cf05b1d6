//! `ovsnet router create|add|del|list|show`: distributed routers in the
//! cluster database. Networks on one router reach each other, routed by
//! every host's own flows; networks on no shared router stay isolated.

use anyhow::Context;
use clap::Subcommand;

use super::{ClusterDbArg, Format, Global};
use crate::cluster::{ClusterDb, ClusterError};

#[derive(Debug, Subcommand)]
pub enum RouterCommand {
    /// Create a router (its networks reach each other once added).
    Create {
        /// The router's name, unique in the cluster (e.g. r1).
        name: String,
        /// An existing router is not an error.
        #[arg(long)]
        may_exist: bool,
        #[command(flatten)]
        db: ClusterDbArg,
    },
    /// Put a network on a router: it reaches every other network on it
    /// (refused if its CIDR overlaps one already there).
    Add {
        /// The router.
        name: String,
        /// The network to route.
        network: String,
        #[command(flatten)]
        db: ClusterDbArg,
    },
    /// Take a network off a router; with no network, delete the router
    /// (its networks stay, isolated again).
    Del {
        /// The router.
        name: String,
        /// The network to take off (none: the whole router goes).
        network: Option<String>,
        /// A missing router (or network not on it) is not an error.
        #[arg(long)]
        if_exists: bool,
        #[command(flatten)]
        db: ClusterDbArg,
    },
    /// List routers and their networks.
    List {
        #[command(flatten)]
        db: ClusterDbArg,
    },
    /// Show a router: its networks, their CIDRs and gateways.
    Show {
        /// The router to show.
        name: String,
        #[command(flatten)]
        db: ClusterDbArg,
    },
}

impl RouterCommand {
    /// The `--cluster-db` of the command (the configuration resolves it).
    pub fn cluster_db_arg(&self) -> &ClusterDbArg {
        match self {
            RouterCommand::Create { db, .. }
            | RouterCommand::Add { db, .. }
            | RouterCommand::Del { db, .. }
            | RouterCommand::List { db }
            | RouterCommand::Show { db, .. } => db,
        }
    }
}

pub async fn run(cmd: RouterCommand, g: &Global) -> anyhow::Result<()> {
    let cdb = ClusterDb::connect(g.require_cluster_db()?, &g.connect).await?;
    match cmd {
        RouterCommand::Create { name, may_exist, db: _ } => match cdb.create_router(&name).await {
            Ok(_) => outln!("created router {name}"),
            Err(ClusterError::RouterExists(_)) if may_exist => outln!("router {name} exists (unchanged)"),
            Err(e) => return Err(e).context(format!("router create {name}")),
        },
        RouterCommand::Add { name, network, db: _ } => {
            if cdb.router_add_network(&name, &network).await.with_context(|| format!("router add {name} {network}"))? {
                outln!("network {network} is on router {name}");
            } else {
                outln!("network {network} is on router {name} (unchanged)");
            }
        }
        RouterCommand::Del { name, network: Some(network), if_exists, db: _ } => {
            match cdb.router_remove_network(&name, &network).await {
                Ok(true) => outln!("network {network} is off router {name}"),
                Ok(false) if if_exists => {}
                Ok(false) => anyhow::bail!("router del {name} {network}: network {network} is not on router {name}"),
                Err(ClusterError::NoRouter(_) | ClusterError::NoNetwork(_)) if if_exists => {}
                Err(e) => return Err(e).context(format!("router del {name} {network}")),
            }
        }
        RouterCommand::Del { name, network: None, if_exists, db: _ } => match cdb.delete_router(&name).await {
            Ok(()) => outln!("deleted router {name}"),
            Err(ClusterError::NoRouter(_)) if if_exists => {}
            Err(e) => return Err(e).context(format!("router del {name}")),
        },
        RouterCommand::List { db: _ } => {
            let routers = cdb.routers().await?;
            match g.format {
                Format::Json => {
                    let v: Vec<_> =
                        routers.iter().map(|(r, nets)| serde_json::json!({"name": r.name, "networks": nets})).collect();
                    outln!("{}", serde_json::to_string(&v)?);
                }
                Format::Table => {
                    outln!("{:<16} NETWORKS", "NAME");
                    for (r, nets) in &routers {
                        outln!("{:<16} {}", r.name, nets.join(","));
                    }
                }
            }
        }
        RouterCommand::Show { name, db: _ } => {
            let (r, nets) = cdb.router(&name).await?;
            let all = cdb.networks().await?;
            let on: Vec<_> = all.iter().filter(|n| nets.contains(&n.name)).collect();
            match g.format {
                Format::Json => outln!(
                    "{}",
                    serde_json::json!({"name": r.name, "networks": on.iter().map(|n| serde_json::json!({
                        "name": n.name, "cidr": n.cidr.to_string(), "gateway": n.gateway, "vni": n.vni,
                    })).collect::<Vec<_>>()})
                ),
                Format::Table => {
                    outln!("router {}", r.name);
                    for n in on {
                        let gw = n.gateway.map_or_else(|| "no gateway".to_owned(), |g| format!("gateway {g}"));
                        outln!("  {:<16} {:<18} {gw}", n.name, n.cidr.to_string());
                    }
                }
            }
        }
    }
    Ok(())
}
