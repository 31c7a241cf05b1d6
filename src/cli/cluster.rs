//! `ovsnet cluster init|join|status|stop`: the cluster database's members.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use super::{Format, Global, one_line};
use crate::cluster::server::{self, ClusterInfo, DEFAULT_PORT_BASE, MemberSpec, RAFT_PORT_OFFSET};

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Make a Raft cluster database. When DIR holds this host's standalone
    /// database (what `cluster start` serves on a single host), it grows
    /// into the first member(s) of a cluster with every network, block and
    /// endpoint kept; other hosts then `cluster join`. Otherwise a new
    /// database is made: 1 standalone server, or 3 or 5 members on this
    /// machine.
    #[command(after_long_help = GROW_HELP)]
    Init {
        /// Members on this machine: 1, 3 or 5. Default: 1 when growing a
        /// standalone database (the others join from their hosts), else 3.
        /// A new database with 1 member is standalone.
        #[arg(long)]
        members: Option<usize>,
        /// Directory for the members' databases, sockets, pidfiles and logs
        /// (default: this host's database, db_dir).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Address the members listen on (reachable by the other hosts'
        /// members and agents when the cluster spans hosts).
        #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
        address: IpAddr,
        /// Client port of member 1 (member N: base+N-1; Raft: 100 higher).
        #[arg(long, default_value_t = DEFAULT_PORT_BASE, value_name = "PORT")]
        port_base: u16,
    },
    /// Add a member on this machine to a running cluster. When DIR holds
    /// this host's standalone database, it must be empty of networks and
    /// endpoints (a joining host brings no state of its own); it is set
    /// aside as DIR/standalone.db.
    Join {
        /// Directory for the new member's database, socket, pidfile and log
        /// (default: this host's database, db_dir).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
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
    /// Start a relay of the cluster on this machine: an ovsdb-server that
    /// keeps a copy of the database in memory from the members, serves
    /// its clients' monitors and reads itself, and forwards their writes.
    /// Point agents at relays (their --cluster-db) when there are more
    /// hosts than the members can serve (hundreds and up): the members then
    /// serve a few relays, not every host. `cluster stop --dir DIR` stops it.
    Relay {
        /// Directory for the relay's socket, pidfile and log (not a
        /// member's).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Address it serves clients on.
        #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
        address: IpAddr,
        /// Port it serves clients on.
        #[arg(long, value_name = "PORT")]
        port: u16,
        /// The members, as clients reach them: tcp:IP:PORT,tcp:IP:PORT,...
        #[arg(long, value_name = "REMOTES")]
        source: String,
    },
    /// Each member's view: up, connected to the cluster, leader, log index.
    Status {
        /// Remotes to ask (default: those recorded in --dir, else
        /// OVSNET_CLUSTER_DB, else cluster_db in the configuration file,
        /// else this host's database).
        #[arg(long, value_name = "REMOTES")]
        cluster_db: Option<String>,
        /// The directory `cluster init` or `join` recorded its members in.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Stop the members recorded in DIR (by pid; the data stays).
    Stop {
        /// The directory `cluster init` or `join` recorded its members in
        /// (default: this host's database, db_dir).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Serve the database recorded in DIR (after `stop` or a reboot); with
    /// no --dir, this host's database, created standalone when there is
    /// none yet: the single-host default that ovsnet-db.service runs.
    Start {
        /// The directory `cluster init` or `join` recorded its members in
        /// (default: this host's database, db_dir, made when absent).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

const GROW_HELP: &str = "From one host to three (this host's database grows; nothing is lost):
  host1$ ovsnet cluster init --address 10.0.0.1
  host2$ ovsnet cluster join --address 10.0.0.2 --peer tcp:10.0.0.1:6750
  host3$ ovsnet cluster join --address 10.0.0.3 --peer tcp:10.0.0.1:6750
Then on every host: cluster_db = \"tcp:10.0.0.1:6650,tcp:10.0.0.2:6650,tcp:10.0.0.3:6650\"
in /etc/ovsnet/ovsnet.conf (the members' own hosts may leave it unset: they
use their local member).";

fn print_info(info: &ClusterInfo, g: &Global) -> anyhow::Result<()> {
    match g.format {
        Format::Json => outln!(
            "{}",
            serde_json::json!({"dir": info.dir, "model": info.model, "remotes": info.tcp_remotes(),
                "local_remotes": info.unix_remotes(), "members": info.members})
        ),
        Format::Table => {
            outln!("{} database in {} ({} member(s))", info.model, info.dir.display(), info.members.len());
            for (i, m) in info.members.iter().enumerate() {
                if m.unix_only {
                    outln!(
                        "  member {}: clients unix:{} only",
                        i + 1,
                        server::member_dir(&info.dir, i + 1).join("db.sock").display()
                    );
                } else {
                    outln!("  member {}: clients {}  raft {}", i + 1, m.client_remote(), m.raft_remote());
                }
            }
            if info.tcp_remotes().is_empty() {
                outln!("remotes: {} (this host only)", info.unix_remotes());
            } else if info.members.len() == 1 && info.model == "clustered" {
                outln!("remotes: {} (this member; clients on other hosts list every member's)", info.tcp_remotes());
            } else {
                outln!("remotes: {}", info.tcp_remotes());
                outln!("export OVSNET_CLUSTER_DB={}", info.tcp_remotes());
            }
        }
    }
    Ok(())
}

/// Waits until a client finds a leader and the schema in the database.
async fn wait_ready(info: &ClusterInfo, g: &Global) -> anyhow::Result<()> {
    let db = crate::cluster::ClusterDb::connect(&info.unix_remotes(), &g.connect)
        .await
        .context("the database did not answer")?;
    db.state().await.context("the database did not answer")?;
    Ok(())
}

/// The networks and endpoints a database holds (what a user made).
async fn user_rows(info: &ClusterInfo, g: &Global) -> anyhow::Result<(usize, usize)> {
    let db = crate::cluster::ClusterDb::connect(&info.unix_remotes(), &g.connect)
        .await
        .with_context(|| format!("read this host's database in {}", info.dir.display()))?;
    let st = db.state().await?;
    Ok((st.networks.len(), st.endpoints.len()))
}

pub async fn run(cmd: ClusterCommand, g: &Global) -> anyhow::Result<()> {
    match cmd {
        ClusterCommand::Init { members, dir, address, port_base } => {
            let dir = dir.unwrap_or_else(|| g.db_dir());
            let existing = ClusterInfo::load(&dir).ok();
            if let Some(info) = existing.as_ref().filter(|i| !i.is_standalone()) {
                anyhow::bail!(
                    "{} already holds a clustered database ({} member(s) here): add members with `ovsnet cluster join` on other hosts",
                    info.dir.display(),
                    info.members.len()
                );
            }
            let info = match existing {
                Some(old) => {
                    let specs = server::members_on(address, members.unwrap_or(1), port_base)?;
                    // The contents it had are what the cluster must hold.
                    server::ensure_local(&old.dir).context("serve the standalone database")?;
                    let had = user_rows(&old, g).await?;
                    let info = server::grow(&dir, &specs).context("cluster init")?;
                    // Read once it answers: that is also the wait for it.
                    let now = user_rows(&info, g).await?;
                    anyhow::ensure!(
                        now == had,
                        "the cluster holds {} networks and {} endpoints, the standalone database held {} and {} (kept in {})",
                        now.0,
                        now.1,
                        had.0,
                        had.1,
                        info.dir.join(server::STANDALONE_KEPT).display()
                    );
                    info
                }
                None => {
                    let specs = server::members_on(address, members.unwrap_or(3), port_base)?;
                    let info = server::init(&dir, &specs).context("cluster init")?;
                    wait_ready(&info, g).await?;
                    info
                }
            };
            print_info(&info, g)
        }
        ClusterCommand::Join { dir, address, port, raft_port, peer } => {
            let dir = dir.unwrap_or_else(|| g.db_dir());
            let raft_port = match raft_port {
                Some(p) => p,
                None => port.checked_add(RAFT_PORT_OFFSET).context("--port too high for the default Raft port")?,
            };
            if let Some(old) = ClusterInfo::load(&dir).ok().filter(ClusterInfo::is_standalone) {
                server::ensure_local(&old.dir).context("serve the standalone database")?;
                let (networks, endpoints) = user_rows(&old, g).await?;
                if networks + endpoints > 0 {
                    anyhow::bail!(
                        "this host's database in {} holds {networks} network(s) and {endpoints} endpoint(s): \
                         a joining host brings no state; grow this one with `ovsnet cluster init` and join the others to it",
                        old.dir.display()
                    );
                }
                server::retire_standalone(&old.dir)?;
            }
            let m = MemberSpec { address, client_port: port, raft_port, netns: None, unix_only: false };
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
        ClusterCommand::Relay { dir, address, port, source } => {
            let spec = server::RelaySpec { address, port, source, netns: None };
            let made_dir = !dir.exists();
            let pid = server::start_relay(&dir, &spec).context("cluster relay")?;
            // Usable once it has the database from the members.
            let mut connect = g.connect.clone();
            connect.timeout = std::time::Duration::from_secs(30);
            let remote = format!("unix:{}", server::relay_socket(&dir).display());
            let usable = || async {
                let cdb = crate::cluster::ClusterDb::connect(&remote, &connect).await?;
                cdb.client().get_schema(crate::cluster::DB).await?;
                Ok::<_, anyhow::Error>(())
            };
            // It may still be fetching its copy: asked again for a while.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            let mut tried = usable().await;
            while tried.is_err() && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                tried = usable().await;
            }
            if let Err(e) = tried {
                // Nothing is left running that cannot serve, nor a
                // directory this command made.
                let _ = server::stop(&dir);
                let _ = std::fs::remove_file(dir.join("relay.json"));
                if made_dir {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                return Err(e).context(format!("the relay has no copy of the database from {}", spec.source));
            }
            match g.format {
                Format::Json => outln!(
                    "{}",
                    serde_json::json!({"relay": spec.client_remote(), "socket": remote, "pid": pid, "source": spec.source})
                ),
                Format::Table => outln!("relay of {} serving {} (pid {pid})", spec.source, spec.client_remote()),
            }
            Ok(())
        }
        ClusterCommand::Stop { dir } => {
            let n = server::stop(&dir.unwrap_or_else(|| g.db_dir()))?;
            outln!("stopped {n} member(s)");
            Ok(())
        }
        ClusterCommand::Start { dir } => {
            let info = match dir {
                Some(dir) => {
                    let info = ClusterInfo::load(&dir)?;
                    server::ensure_local(&info.dir)?
                }
                None => server::ensure_local(&g.db_dir())?,
            };
            // A database made by an older ovsnet gets this version's schema.
            let remotes = info.unix_remotes();
            let mut connect = g.connect.clone();
            connect.leader_only = false;
            connect.timeout = std::time::Duration::from_secs(30);
            let cdb = crate::cluster::ClusterDb::connect(&remotes, &connect).await?;
            if let Some((from, to)) = cdb.upgrade_schema().await.context("upgrade the database's schema")? {
                eprintln!("ovsnet: upgraded the database's schema from {from} to {to}");
            }
            print_info(&info, g)
        }
    }
}
