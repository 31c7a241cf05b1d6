//! `ovsnet cluster init|join|status|stop`: the cluster database's members.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use super::{Format, Global, one_line};
use crate::cluster::server::{self, ClusterInfo, DEFAULT_PORT_BASE, MemberSpec, RAFT_PORT_OFFSET};

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Create and start the cluster database: 1 standalone server, or a
    /// 3- or 5-member Raft cluster on this machine.
    Init {
        /// 1 (standalone), 3 or 5.
        #[arg(long, default_value_t = 3)]
        members: usize,
        /// Directory for the members' databases, sockets, pidfiles and logs.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Address the members listen on.
        #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
        address: IpAddr,
        /// Client port of member 1 (member N: base+N-1; Raft: 100 higher).
        #[arg(long, default_value_t = DEFAULT_PORT_BASE, value_name = "PORT")]
        port_base: u16,
    },
    /// Add a member on this machine to a running cluster.
    Join {
        /// Directory for the new member's database, socket, pidfile and log.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Address this member listens on (reachable by the other members).
        #[arg(long, value_name = "IP")]
        address: IpAddr,
        /// Client port.
        #[arg(long, default_value_t = DEFAULT_PORT_BASE, value_name = "PORT")]
        port: u16,
        /// Raft port (default: the client port + 100).
        #[arg(long, value_name = "PORT")]
        raft_port: Option<u16>,
        /// The Raft remote of a running member, e.g. tcp:10.0.0.1:6750.
        #[arg(long, value_name = "REMOTE")]
        peer: String,
    },
    /// Each member's view: up, connected to the cluster, leader, log index.
    Status {
        /// Remotes to ask (default: those recorded in --dir, else
        /// OVSNET_CLUSTER_DB, else cluster_db in the configuration file).
        #[arg(long, value_name = "REMOTES")]
        cluster_db: Option<String>,
        /// The directory `cluster init` or `join` recorded its members in.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Stop the members recorded in DIR (by pid; the data stays).
    Stop {
        /// The directory `cluster init` or `join` recorded its members in.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
    /// Start again the members recorded in DIR (after `stop` or a reboot).
    Start {
        /// The directory `cluster init` or `join` recorded its members in.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
}

fn print_info(info: &ClusterInfo, g: &Global) -> anyhow::Result<()> {
    match g.format {
        Format::Json => outln!(
            "{}",
            serde_json::json!({"dir": info.dir, "model": info.model, "remotes": info.tcp_remotes(),
                "local_remotes": info.unix_remotes(), "members": info.members})
        ),
        Format::Table => {
            outln!("{} cluster database in {} ({} member(s))", info.model, info.dir.display(), info.members.len());
            for (i, m) in info.members.iter().enumerate() {
                outln!("  member {}: clients {}  raft {}", i + 1, m.client_remote(), m.raft_remote());
            }
            outln!("remotes: {}", info.tcp_remotes());
            outln!("export OVSNET_CLUSTER_DB={}", info.tcp_remotes());
        }
    }
    Ok(())
}

pub async fn run(cmd: ClusterCommand, g: &Global) -> anyhow::Result<()> {
    match cmd {
        ClusterCommand::Init { members, dir, address, port_base } => {
            let specs = server::members_on(address, members, port_base)?;
            let info = server::init(&dir, &specs).context("cluster init")?;
            // Ready when a client finds a leader and the schema.
            let db = crate::cluster::ClusterDb::connect(&info.tcp_remotes(), &g.connect)
                .await
                .context("the new cluster did not answer")?;
            db.state().await.context("the new cluster did not answer")?;
            print_info(&info, g)
        }
        ClusterCommand::Join { dir, address, port, raft_port, peer } => {
            let raft_port = match raft_port {
                Some(p) => p,
                None => port.checked_add(RAFT_PORT_OFFSET).context("--port too high for the default Raft port")?,
            };
            let m = MemberSpec { address, client_port: port, raft_port, netns: None };
            let info = server::join(&dir, &m, &peer).context("cluster join")?;
            print_info(&info, g)
        }
        ClusterCommand::Status { cluster_db, dir } => {
            // A flag wins; --dir wins over the environment and the file.
            let remotes = match (cluster_db, dir) {
                (Some(r), _) => r,
                (None, Some(d)) => ClusterInfo::load(&d)?.tcp_remotes(),
                (None, None) => match g.require_cluster_db() {
                    Ok(r) => r.to_owned(),
                    Err(e) => anyhow::bail!("{} (or give --dir DIR)", one_line(&e)),
                },
            };
            let st = server::status(&remotes, &g.connect).await?;
            match g.format {
                Format::Json => outln!("{}", serde_json::to_string(&st)?),
                Format::Table => {
                    outln!(
                        "{:<28} {:<5} {:<11} {:<9} {:<6} {:<8} SERVER ID",
                        "MEMBER",
                        "UP",
                        "MODEL",
                        "CONNECTED",
                        "LEADER",
                        "INDEX"
                    );
                    for m in &st {
                        let b = |v: Option<bool>| v.map(|v| if v { "yes" } else { "no" }).unwrap_or("-");
                        outln!(
                            "{:<28} {:<5} {:<11} {:<9} {:<6} {:<8} {}",
                            m.remote,
                            if m.up { "yes" } else { "no" },
                            m.model.as_deref().unwrap_or("-"),
                            b(m.connected),
                            b(m.leader),
                            m.index.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
                            m.sid.as_deref().map(|s| &s[..s.len().min(8)]).unwrap_or("-")
                        );
                    }
                    let up = st.iter().filter(|m| m.up && m.connected != Some(false)).count();
                    let quorum = st.len() / 2 + 1;
                    outln!(
                        "{up} of {} member(s) up and connected: {}",
                        st.len(),
                        if up >= quorum { "the cluster has a quorum" } else { "NO QUORUM: writes will block" }
                    );
                }
            }
            Ok(())
        }
        ClusterCommand::Stop { dir } => {
            let n = server::stop(&dir)?;
            outln!("stopped {n} member(s)");
            Ok(())
        }
        ClusterCommand::Start { dir } => {
            let info = ClusterInfo::load(&dir)?;
            for (i, m) in info.members.iter().enumerate() {
                if server::member_pid(&info.dir, i + 1).is_none() {
                    server::start_member(&info.dir, i + 1, m)?;
                }
            }
            print_info(&info, g)
        }
    }
}
