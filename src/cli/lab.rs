//! `ovsnet lab up|down|status`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;

use super::{Format, Global};
use crate::lab::{self, LabOptions, LabRecord};
use crate::vswitch::spec::TunnelType;

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Build N hosts (namespaces with their own Open vSwitch), an underlay,
    /// tunnels, and M containers per host with addresses.
    Up {
        /// Simulated hosts: each a network namespace with its own
        /// ovsdb-server and ovs-vswitchd, on one underlay switch.
        #[arg(long, default_value_t = 2, value_name = "N")]
        hosts: usize,
        /// Encapsulation between the hosts.
        #[arg(long, default_value = "vxlan", value_parser = ["vxlan", "gre", "geneve"])]
        tunnel: String,
        /// Containers (network namespaces) per host, each attached with an
        /// address.
        #[arg(long, default_value_t = 1, value_name = "M")]
        containers: usize,
        /// Run the cluster database on the first hosts (1, 3, 5; 0 only
        /// with --classic); container addresses are allocated through it.
        /// Default: 3 for 3 hosts or more, else 1 (0 with --classic).
        #[arg(long)]
        cluster_members: Option<usize>,
        /// The classic mode: NORMAL bridges and a full mesh of static
        /// tunnels, no agents (default: an `ovsnet agent` per host
        /// following the cluster database).
        #[arg(long)]
        classic: bool,
        /// Also run a private Docker engine on each host (in its
        /// namespace, with its own data and plugin directory) and create
        /// the Docker network `blue` (driver and IPAM ovsnet,
        /// 192.168.0.0/16) on every host: `docker run --network blue` on
        /// two hosts reach each other over the tunnels. Each host's
        /// DOCKER_HOST is printed.
        #[arg(long, conflicts_with = "classic")]
        docker: bool,
        /// Also an "outside" namespace on the underlay standing in for the
        /// internet: it holds 203.0.113.10, an address outside every
        /// network, and is every host's default gateway, so containers
        /// reach it through their host's egress NAT
        /// (`ip netns exec NAME-out ...` runs a server there).
        #[arg(long)]
        outside: bool,
        #[command(flatten)]
        which: Which,
    },
    /// Remove everything the lab made (also after a crash midway), and nothing else.
    Down {
        #[command(flatten)]
        which: Which,
    },
    /// Hosts, containers, endpoints, and an all-pairs reachability matrix.
    Status {
        /// Skip the reachability matrix.
        #[arg(long)]
        no_ping: bool,
        /// Per-probe timeout in milliseconds.
        #[arg(long, default_value_t = 1000)]
        ping_timeout_ms: u64,
        #[command(flatten)]
        which: Which,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct Which {
    /// Lab name: the prefix of its namespaces.
    #[arg(long, default_value = "ovsnet")]
    pub name: String,
    /// Where lab records are kept.
    #[arg(long, default_value = lab::DEFAULT_STATE_ROOT, value_name = "DIR")]
    pub state_dir: PathBuf,
}

fn print_record(rec: &LabRecord) {
    if rec.agents {
        outln!("lab {} ({} tunnels, one ovsnet agent per host following the cluster database)", rec.name, rec.tunnel);
    } else {
        outln!("lab {} ({} tunnels, classic NORMAL bridges with split-horizon full mesh)", rec.name, rec.tunnel);
    }
    outln!("{:<6} {:<20} {:<14} {:<16} OVS (OVS_RUNDIR)", "HOST", "NAMESPACE", "UNDERLAY", "AGENT");
    for h in &rec.hosts {
        let agent = match (rec.agents, lab::agent_pid(&h.dir)) {
            (false, _) => "-".to_owned(),
            (true, Some(pid)) => format!("running ({pid})"),
            (true, None) => "NOT RUNNING".to_owned(),
        };
        outln!("{:<6} {:<20} {:<14} {:<16} {}", h.name, h.netns, h.underlay_ip.to_string(), agent, h.dir.display());
    }
    if rec.docker {
        outln!("{:<6} DOCKER_HOST (network {} on every host)", "HOST", lab::DOCKER_NETWORK);
        for h in &rec.hosts {
            outln!("{:<6} {}", h.name, h.docker_host());
        }
    }
    outln!("{:<24} {:<6} ADDRESS", "CONTAINER (namespace)", "HOST");
    for c in &rec.containers {
        outln!("{:<24} {:<6} {}/{}", c.netns, c.host, c.ip, c.prefix);
    }
    if let Some(db) = &rec.cluster_db {
        outln!("cluster database: {db}");
    }
    if !rec.complete {
        outln!("INCOMPLETE: `lab up` did not finish; `ovsnet lab down --name {}` removes what it made", rec.name);
    }
}

pub async fn run(cmd: LabCommand, g: &Global) -> anyhow::Result<()> {
    match cmd {
        LabCommand::Up { hosts, tunnel, containers, cluster_members, classic, docker, outside, which } => {
            let tunnel = TunnelType::from_column(&tunnel).ok_or_else(|| anyhow::anyhow!("bad tunnel type {tunnel}"))?;
            let cluster_members = cluster_members.unwrap_or(match (classic, hosts) {
                (true, _) => 0,
                (false, h) if h >= 3 => 3,
                (false, _) => 1,
            });
            let opts = LabOptions {
                name: which.name.clone(),
                hosts,
                containers,
                tunnel,
                cluster_members,
                state_root: which.state_dir.clone(),
                agents: !classic,
                agent_exe: None,
                docker,
                outside,
            };
            // On a terminal, one line says what `up` is doing.
            let bar = std::io::stderr().is_terminal().then(|| {
                let bar = indicatif::ProgressBar::new_spinner();
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            });
            let up = lab::up_with_progress(&opts, |step| {
                if let Some(b) = &bar {
                    b.set_message(format!("lab up {}: {step}", opts.name));
                }
            })
            .await;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            match up {
                Ok(rec) => {
                    match g.format {
                        Format::Json => outln!("{}", serde_json::to_string(&rec)?),
                        Format::Table => {
                            print_record(&rec);
                            if let Some(c) = rec.containers.get(1).or(rec.containers.first()) {
                                outln!("try: ip netns exec {} ping {}", rec.containers[0].netns, c.ip);
                            }
                            if rec.docker
                                && let Some(h) = rec.hosts.first()
                            {
                                outln!(
                                    "try: DOCKER_HOST={} docker run --rm --network {} {} ip -o addr show eth0",
                                    h.docker_host(),
                                    lab::DOCKER_NETWORK,
                                    crate::sandbox::docker::MINI_IMAGE
                                );
                            }
                        }
                    }
                    Ok(())
                }
                // Refused before anything was made (an existing lab of
                // that name is not ours to take down).
                Err(e @ (lab::LabError::Exists(_) | lab::LabError::BadInput(_))) => Err(e.into()),
                Err(e) => {
                    // Leave nothing half-built behind.
                    let cleaned = lab::down(&which.state_dir, &which.name);
                    let note = match cleaned {
                        Ok(_) => "removed what it had made".to_owned(),
                        Err(d) => format!("cleanup: {d}"),
                    };
                    Err(anyhow::anyhow!("lab up: {e} ({note})"))
                }
            }
        }
        LabCommand::Down { which } => {
            let r = lab::down(&which.state_dir, &which.name)?;
            match g.format {
                Format::Json => outln!("{}", serde_json::to_string(&r)?),
                Format::Table => outln!(
                    "lab {} removed: {} namespace(s), {} process(es)",
                    which.name,
                    r.namespaces.len(),
                    r.processes
                ),
            }
            Ok(())
        }
        LabCommand::Status { no_ping, ping_timeout_ms, which } => {
            let rec = LabRecord::load(&which.state_dir, &which.name)?;
            let endpoints = match &rec.cluster_db {
                Some(db) => {
                    let cdb = crate::cluster::ClusterDb::connect(db, &g.connect).await?;
                    Some(cdb.state().await?.endpoints)
                }
                None => None,
            };
            let matrix = if no_ping {
                None
            } else {
                let rec2 = rec.clone();
                Some(
                    tokio::task::spawn_blocking(move || {
                        lab::reachability(&rec2, Duration::from_millis(ping_timeout_ms))
                    })
                    .await??,
                )
            };
            match g.format {
                Format::Json => {
                    outln!("{}", serde_json::json!({"lab": rec, "endpoints": endpoints, "reachability": matrix}))
                }
                Format::Table => {
                    print_record(&rec);
                    if let Some(eps) = &endpoints {
                        outln!("{} endpoint(s) in the cluster database", eps.len());
                        for e in eps {
                            outln!("  {:<12} {} on {} ({})", e.ip.to_string(), e.mac, e.host, e.container);
                        }
                    }
                    if let Some(m) = &matrix {
                        outln!("reachability (ICMP echo, ms; from row to column):");
                        let short: Vec<String> = m
                            .containers
                            .iter()
                            .map(|c| c.trim_start_matches(&format!("{}-", rec.name)).to_owned())
                            .collect();
                        out!("{:<8}", "");
                        for s in &short {
                            out!("{s:>8}");
                        }
                        outln!();
                        for (i, row) in m.rtt_ms.iter().enumerate() {
                            out!("{:<8}", short[i]);
                            for (j, r) in row.iter().enumerate() {
                                let cell = match (i == j, r) {
                                    (true, _) => "-".to_owned(),
                                    (false, Some(ms)) => format!("{ms:.2}"),
                                    (false, None) => "FAIL".to_owned(),
                                };
                                out!("{cell:>8}");
                            }
                            outln!();
                        }
                        if m.all_reachable() {
                            outln!("all {} pairs reachable", m.containers.len() * m.containers.len().saturating_sub(1));
                        }
                    }
                }
            }
            // Text or JSON, a pair that cannot reach the other is a failure.
            if let Some(m) = &matrix
                && !m.all_reachable()
            {
                anyhow::bail!("unreachable: {:?}", m.unreachable_pairs());
            }
            Ok(())
        }
    }
}
