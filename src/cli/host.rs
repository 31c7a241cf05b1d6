//! `ovsnet host list|show|del`: the hosts the cluster database knows, and
//! forgetting one that is gone for good.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use serde::Serialize;

use super::{ClusterDbArg, Format, Global};
use crate::cluster::host::{GoneCheck, forget_host};
use crate::cluster::{ClusterDb, ClusterError, ClusterState, Endpoint, Host, Ipam};

#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// List hosts: underlay address, tunnels, liveness (how fast its agent
    /// promised to answer a probe, and the last probe answered), blocks and
    /// endpoints (also hosts that only have rows left, without a Host row).
    List {
        #[command(flatten)]
        db: ClusterDbArg,
    },
    /// Show a host, its address blocks and its endpoints.
    Show {
        /// The host's name, as its agent registered it (`--host-name`).
        name: String,
        #[command(flatten)]
        db: ClusterDbArg,
    },
    /// Forget a host that is gone for good: its endpoints, its blocks and
    /// its Host row, in one transaction; every other host's agent then drops
    /// its flows towards it. The host's agent is asked first (a probe
    /// written to its Host row), and the removal is refused if it answers
    /// within the time it promised and a second.
    Del {
        /// The host's name, as its agent registered it (`--host-name`).
        name: String,
        /// Remove without asking the host's agent (a live agent sees its
        /// row go, registers its host again, and republishes its
        /// endpoints).
        #[arg(long)]
        force: bool,
        /// A host the cluster does not know is not an error.
        #[arg(long)]
        if_exists: bool,
        #[command(flatten)]
        db: ClusterDbArg,
    },
}

impl HostCommand {
    /// The `--cluster-db` of the command (the configuration resolves it).
    pub fn cluster_db_arg(&self) -> &ClusterDbArg {
        match self {
            HostCommand::List { db, .. } => db,
            HostCommand::Show { db, .. } => db,
            HostCommand::Del { db, .. } => db,
        }
    }
}

/// One line of `host list`: what the cluster holds of a host.
#[derive(Debug, Serialize)]
struct HostSummary<'a> {
    name: &'a str,
    /// `None`: rows name the host but it has no Host row.
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a Host>,
    blocks: Vec<BlockOf<'a>>,
    endpoints: usize,
}

#[derive(Debug, Serialize)]
struct BlockOf<'a> {
    network: &'a str,
    cidr: String,
}

/// Every host the state names, by name: Host rows, and the hosts of Block
/// and Endpoint rows.
fn summaries(state: &ClusterState) -> BTreeMap<&str, HostSummary<'_>> {
    fn slot<'a, 'm>(out: &'m mut BTreeMap<&'a str, HostSummary<'a>>, name: &'a str) -> &'m mut HostSummary<'a> {
        out.entry(name).or_insert_with(|| HostSummary { name, host: None, blocks: Vec::new(), endpoints: 0 })
    }
    let mut out = BTreeMap::new();
    for h in state.hosts.values() {
        slot(&mut out, &h.name).host = Some(h);
    }
    for b in &state.blocks {
        let network = state.network_by_uuid(b.network).map_or("?", |n| n.name.as_str());
        slot(&mut out, &b.host).blocks.push(BlockOf { network, cidr: b.cidr.to_string() });
    }
    // Fan blocks are not rows: they follow from each host's underlay address.
    for n in state.networks.values().filter(|n| n.ipam == Ipam::Fan) {
        for h in state.hosts.values() {
            if let Some(b) = state.host_block(n, h) {
                slot(&mut out, &h.name).blocks.push(BlockOf { network: &n.name, cidr: b.to_string() });
            }
        }
    }
    for e in &state.endpoints {
        slot(&mut out, &e.host).endpoints += 1;
    }
    out
}

fn liveness(h: Option<&Host>) -> String {
    match h {
        None => "no Host row".to_owned(),
        Some(h) if h.probe_timeout > 0 => format!("answers in {} #{}", secs(h.probe_timeout), h.heartbeat),
        Some(h) if h.heartbeat_interval > 0 => format!("#{} every {}", h.heartbeat, secs(h.heartbeat_interval)),
        Some(_) => "none".to_owned(),
    }
}

fn secs(ms: i64) -> String {
    format!("{}s", Duration::from_millis(ms.max(0) as u64).as_secs_f64())
}

const HEADER: &str = "NAME             UNDERLAY         TUNNELS          LIVENESS             BLOCKS ENDPOINTS";

fn line(s: &HostSummary<'_>) -> String {
    let (underlay, tunnels) = match s.host {
        Some(h) => (h.underlay_ip.to_string(), h.tunnel_types.iter().cloned().collect::<Vec<_>>().join(",")),
        None => ("-".to_owned(), "-".to_owned()),
    };
    format!(
        "{:<16} {:<16} {:<16} {:<20} {:<6} {}",
        s.name,
        underlay,
        tunnels,
        liveness(s.host),
        s.blocks.len(),
        s.endpoints
    )
}

pub async fn run(cmd: HostCommand, g: &Global) -> anyhow::Result<()> {
    match cmd {
        HostCommand::List { db: _ } => {
            let cdb = ClusterDb::connect(g.require_cluster_db()?, &g.connect).await?;
            let state = cdb.state().await?;
            let hosts = summaries(&state);
            match g.format {
                Format::Json => outln!("{}", serde_json::to_string(&hosts.values().collect::<Vec<_>>())?),
                Format::Table => {
                    outln!("{HEADER}");
                    for s in hosts.values() {
                        outln!("{}", line(s));
                    }
                }
            }
            Ok(())
        }
        HostCommand::Show { name, db: _ } => {
            let cdb = ClusterDb::connect(g.require_cluster_db()?, &g.connect).await?;
            let state = cdb.state().await?;
            let hosts = summaries(&state);
            let s = hosts.get(name.as_str()).ok_or_else(|| ClusterError::NoHost(name.clone()))?;
            let eps: Vec<&Endpoint> = state.endpoints.iter().filter(|e| e.host == name).collect();
            let net_name = |e: &Endpoint| state.network_by_uuid(e.network).map_or("?", |n| n.name.as_str());
            match g.format {
                Format::Json => {
                    let eps: Vec<_> =
                        eps.iter().map(|e| serde_json::json!({"network": net_name(e), "endpoint": e})).collect();
                    outln!("{}", serde_json::json!({"host": s, "endpoints": eps}));
                }
                Format::Table => {
                    outln!("{HEADER}\n{}", line(s));
                    for b in &s.blocks {
                        outln!("block {} in network {}", b.cidr, b.network);
                    }
                    outln!("{} endpoint(s)", eps.len());
                    for e in eps {
                        outln!(
                            "  {:<16} {} in {} ({} {})",
                            e.ip.to_string(),
                            e.mac,
                            net_name(e),
                            e.container,
                            e.interface
                        );
                    }
                }
            }
            Ok(())
        }
        HostCommand::Del { name, force, if_exists, db: _ } => {
            let cdb = ClusterDb::connect(g.require_cluster_db()?, &g.connect).await?;
            let check = if force { GoneCheck::Force } else { GoneCheck::Watch };
            let watching = |window: Duration| {
                eprintln!(
                    "ovsnet: asking {name}'s agent whether it is alive, for up to {:.1}s (--force skips this)",
                    window.as_secs_f64(),
                );
            };
            let removed = match forget_host(&cdb, &name, check, watching).await {
                Ok(r) => r,
                Err(ClusterError::NoHost(_)) if if_exists => return Ok(()),
                Err(e) => return Err(e).context(format!("host del {name}")),
            };
            match g.format {
                Format::Json => {
                    outln!("{}", serde_json::json!({"host": name, "removed": removed}))
                }
                Format::Table => outln!(
                    "removed host {name}{}: {} block(s), {} endpoint(s)",
                    if removed.host_row { "" } else { " (it had no Host row)" },
                    removed.blocks,
                    removed.endpoints
                ),
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_column_says_what_the_host_promised() {
        assert_eq!(liveness(None), "no Host row");
        let h = crate::cluster::model::fixtures::host("h1", "192.0.2.1", &["vxlan"]);
        assert_eq!(liveness(Some(&h)), "none");
        let asked = Host { probe_timeout: 2_000, heartbeat: 3, ..h.clone() };
        assert_eq!(liveness(Some(&asked)), "answers in 2s #3");
        let old = Host { heartbeat_interval: 2_500, heartbeat: 9, ..h };
        assert_eq!(liveness(Some(&old)), "#9 every 2.5s");
    }
}
