//! `ovsnet service create|del|list|show`: load-balanced service addresses
//! in the cluster database. Connections to a service's address (VIP:PORT)
//! are spread over its backends by every host's flows (a select group and
//! connection tracking); no proxy process.

use anyhow::Context;
use clap::Subcommand;

use super::{ClusterDbArg, Format, Global};
use crate::cluster::{ClusterDb, ClusterError, Service, ServiceSpec};

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Create a service: connections to --vip in --network go to one of
    /// the backends (the same port), chosen per connection; the name
    /// resolves to the VIP in the network's DNS.
    Create {
        /// The service's name, unique in the cluster (also its DNS name).
        name: String,
        /// The network the service and its backends are in.
        #[arg(long, value_name = "NETWORK")]
        network: String,
        /// The virtual address: an address no endpoint has (inside the
        /// network's CIDR, IPAM then never hands it out; or outside it,
        /// reached through the gateway), its port and protocol.
        #[arg(long, value_name = "IP:PORT[/tcp|/udp]")]
        vip: crate::net::ServiceAddr,
        /// The backends: container names or aliases of the network's
        /// endpoints, comma-separated (an alias names every container
        /// that has it; containers started later with it join).
        #[arg(long, value_name = "ALIAS|NAME,...", value_delimiter = ',', required = true)]
        backends: Vec<String>,
        /// An existing service of the same name is not an error.
        #[arg(long)]
        may_exist: bool,
        #[command(flatten)]
        db: ClusterDbArg,
    },
    /// Delete a service (established connections to its backends go on).
    Del {
        /// The service.
        name: String,
        /// A missing service is not an error.
        #[arg(long)]
        if_exists: bool,
        #[command(flatten)]
        db: ClusterDbArg,
    },
    /// List services.
    List {
        #[command(flatten)]
        db: ClusterDbArg,
    },
    /// Show a service and the endpoints its backends name now.
    Show {
        /// The service to show.
        name: String,
        #[command(flatten)]
        db: ClusterDbArg,
    },
}

impl ServiceCommand {
    /// The `--cluster-db` of the command (the configuration resolves it).
    pub fn cluster_db_arg(&self) -> &ClusterDbArg {
        match self {
            ServiceCommand::Create { db, .. }
            | ServiceCommand::Del { db, .. }
            | ServiceCommand::List { db }
            | ServiceCommand::Show { db, .. } => db,
        }
    }
}

fn line(s: &Service) -> String {
    format!(
        "{:<16} {:<12} {:<24} {}",
        s.name,
        s.network,
        format!("{}:{}/{}", s.vip, s.port, s.protocol),
        s.backends.join(",")
    )
}

const HEADER: &str = "NAME             NETWORK      VIP                      BACKENDS";

pub async fn run(cmd: ServiceCommand, g: &Global) -> anyhow::Result<()> {
    if let ServiceCommand::Create { name, network, vip, backends, .. } = &cmd {
        // Bad input is refused before any connection is made.
        ServiceSpec { name: name.clone(), network: network.clone(), addr: *vip, backends: backends.clone() }.check()?;
    }
    let cdb = ClusterDb::connect(g.require_cluster_db()?, &g.connect).await?;
    match cmd {
        ServiceCommand::Create { name, network, vip, backends, may_exist, db: _ } => {
            let spec = ServiceSpec { name: name.clone(), network, addr: vip, backends };
            match cdb.create_service(&spec).await {
                Ok(s) => match g.format {
                    Format::Json => outln!("{}", serde_json::to_string(&s)?),
                    Format::Table => outln!(
                        "created service {} at {}:{}/{} in network {}",
                        s.name,
                        s.vip,
                        s.port,
                        s.protocol,
                        s.network
                    ),
                },
                Err(ClusterError::ServiceExists(_)) if may_exist => outln!("service {name} exists (unchanged)"),
                Err(e) => return Err(e).context(format!("service create {name}")),
            }
        }
        ServiceCommand::Del { name, if_exists, db: _ } => match cdb.delete_service(&name).await {
            Ok(()) => outln!("deleted service {name}"),
            Err(ClusterError::NoService(_)) if if_exists => {}
            Err(e) => return Err(e).context(format!("service del {name}")),
        },
        ServiceCommand::List { db: _ } => {
            let services = cdb.services().await?;
            match g.format {
                Format::Json => outln!("{}", serde_json::to_string(&services)?),
                Format::Table => {
                    outln!("{HEADER}");
                    for s in &services {
                        outln!("{}", line(s));
                    }
                }
            }
        }
        ServiceCommand::Show { name, db: _ } => {
            let s = cdb.service(&name).await?;
            let state = cdb.state().await?;
            let net = state.networks.get(&s.network);
            let named = |e: &crate::cluster::Endpoint| {
                use crate::cluster::endpoint_keys::{ALIASES, CONTAINER_NAME};
                let names: Vec<&str> = e
                    .external_ids
                    .get(CONTAINER_NAME)
                    .map(String::as_str)
                    .into_iter()
                    .chain(e.external_ids.get(ALIASES).into_iter().flat_map(|a| a.split(',')))
                    .collect();
                s.backends.iter().any(|b| names.iter().any(|n| n.eq_ignore_ascii_case(b)))
            };
            let eps: Vec<&crate::cluster::Endpoint> = match net {
                Some(n) => state.endpoints_of(n).filter(|e| named(e)).collect(),
                None => Vec::new(),
            };
            match g.format {
                Format::Json => outln!("{}", serde_json::json!({"service": s, "endpoints": eps})),
                Format::Table => {
                    outln!("{HEADER}\n{}", line(&s));
                    if net.is_none() {
                        outln!("network {} does not exist: the service reaches nothing", s.network);
                    }
                    outln!("{} backend endpoint(s)", eps.len());
                    for e in eps {
                        outln!("  {:<16} on {} ({})", e.ip.to_string(), e.host, e.container);
                    }
                }
            }
        }
    }
    Ok(())
}
