//! `ovsnet agent`: run the per-host OpenFlow agent for a bridge.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::{Global, PipelineArgs, cluster_hint};
use crate::agent::{self, AgentOptions, Listen};

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The bridge to program (default: OVSNET_BRIDGE, bridge in the
    /// configuration file, else obr0).
    #[arg(long, value_name = "BRIDGE")]
    pub bridge: Option<String>,

    /// Where to listen for the switch: unix:PATH or tcp:IP:PORT.
    /// Default: unix:$OVS_RUNDIR/ovsnet-BRIDGE.sock (nothing on the network).
    #[arg(long, value_name = "unix:PATH|tcp:IP:PORT")]
    pub listen: Option<String>,

    /// Serve Prometheus metrics over HTTP at this address (IP:PORT).
    #[arg(long, value_name = "IP:PORT")]
    pub metrics: Option<SocketAddr>,

    /// Seconds of silence from the switch before we send an echo request;
    /// two intervals without a reply drop the connection.
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub echo_interval: u64,

    /// Do not print a line per reconcile.
    #[arg(long, short)]
    pub quiet: bool,

    #[command(flatten)]
    pub pipeline: PipelineArgs,

    /// Cluster mode: the cluster database members (comma-separated
    /// tcp:IP:PORT or unix:PATH). Registers this host, publishes its
    /// endpoints and follows every other host's. Default:
    /// OVSNET_CLUSTER_DB, else cluster_db in the configuration file, else
    /// this host's own database (db_dir) when it holds one. With none, the
    /// agent programs this host's containers alone.
    #[arg(long, value_name = "REMOTES")]
    pub cluster_db: Option<String>,

    /// Cluster mode: this host's name in the cluster database (default:
    /// OVSNET_HOST_NAME, host_name in the configuration file, else the
    /// system's host name).
    #[arg(long, value_name = "NAME")]
    pub host_name: Option<String>,

    /// Cluster mode: the address other hosts send tunnel packets to
    /// (default: OVSNET_UNDERLAY_IP, else underlay_ip in the configuration
    /// file, else the address the kernel uses to reach the first tcp: or
    /// ssl: cluster member).
    #[arg(long, value_name = "IP")]
    pub underlay_ip: Option<std::net::IpAddr>,

    /// Cluster mode: tunnel types in order of preference (vxlan, gre,
    /// geneve); one flow-based port each. Repeatable. Default:
    /// OVSNET_TUNNEL (comma-separated), tunnel in the configuration file, else vxlan.
    #[arg(long = "tunnel", value_name = "TYPE")]
    pub tunnels: Vec<String>,

    /// Cluster mode: serve Docker's network and IPAM driver protocols on
    /// this socket (`docker network create -d ovsnet --ipam-driver ovsnet`);
    /// Docker finds it at /run/docker/plugins/ovsnet.sock, which the
    /// packaged configuration file sets. Default: OVSNET_DOCKER_PLUGIN,
    /// docker_plugin in the configuration file, else off.
    #[arg(long, value_name = "PATH")]
    pub docker_plugin: Option<std::path::PathBuf>,

    /// Do not follow the Docker engine's events. By default the agent
    /// plugs containers attached with `ovsnet attach` again when Docker
    /// starts them again, removes them when Docker destroys them, and
    /// records the names of the driver's endpoints; with no engine it
    /// waits for one (DOCKER_HOST, default /var/run/docker.sock).
    #[arg(long)]
    pub no_docker_events: bool,

    /// Cluster mode: the seconds this agent promises to answer a probe of
    /// its liveness in. `ovsnet host del` writes a probe to this host's row
    /// and refuses to remove the host if the agent answers within this and
    /// a second. Between probes nothing is written.
    #[arg(long, default_value_t = 2, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub probe_timeout: u64,

    /// Cluster mode: do not answer DNS at the networks' gateways. By
    /// default a container asks its gateway (UDP or TCP, port 53) for the
    /// names of its network's endpoints (container names, aliases,
    /// NAME.NETWORK) and services, on every host, and for other names,
    /// which the agent asks of the host's resolvers.
    #[arg(long)]
    pub no_dns: bool,

    /// Cluster mode: DNS queries per second each container port may send
    /// to the agent; more are dropped by the port's meter in the switch,
    /// so a container that floods slows only itself.
    #[arg(long, default_value_t = agent::dns::DEFAULT_RATE, value_name = "QUERIES",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub dns_rate: u32,

    /// Cluster mode: the file listing the host's resolvers (nameserver
    /// lines), asked for names not in a network.
    #[arg(long, default_value = "/etc/resolv.conf", value_name = "PATH")]
    pub resolv_conf: std::path::PathBuf,
}

pub fn run(args: AgentArgs, g: &Global) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("start the async runtime")?;
    // Flag, environment, configuration file or default (resolved in `g`).
    let bridge = g.bridge();
    let mut opts = AgentOptions::new(&bridge, &g.db);
    opts.switch_netns = g.netns.clone();
    opts.connect = g.connect.clone();
    // The agent runs for ever: never give up on the database.
    opts.connect.request_timeout = None;
    opts.state = args.pipeline.state_options(&bridge)?;
    if let Some(l) = &args.listen {
        opts.listen = Listen::parse(l)?;
    }
    opts.echo_interval = Duration::from_secs(args.echo_interval.max(1));
    opts.print_reconciles = !args.quiet;
    opts.dns = (!args.no_dns).then(|| agent::DnsOptions { rate: args.dns_rate, resolv_conf: args.resolv_conf.clone() });
    if let Some(remotes) = g.cluster_db() {
        let mut tunnels = Vec::new();
        for n in g.tunnels() {
            let t = crate::pipeline::TunnelType::from_column(n.as_str())
                .ok_or_else(|| anyhow::anyhow!("tunnel {n}: use vxlan, gre or geneve"))?;
            if !tunnels.contains(&t) {
                tunnels.push(t);
            }
        }
        opts.cluster = Some(agent::ClusterOptions {
            remotes: remotes.to_owned(),
            host_name: g.host_name()?,
            // Configured, else the address the kernel would use to reach
            // the first cluster member; with this host's own database, the
            // address its member listens on, else that of the default route.
            underlay_ip: match (g.settings.underlay_ip.value, &g.local_db) {
                (Some(ip), _) => ip,
                (None, Some(local)) => {
                    let listening: Vec<std::net::IpAddr> =
                        local.members.iter().filter(|m| !m.unix_only).map(|m| m.address).collect();
                    rt.block_on(crate::cluster::host::underlay_of_this_host(&listening))
                        .map_err(|e| anyhow::anyhow!("{e}; {}", g.underlay_hint()))?
                }
                (None, None) => rt
                    .block_on(crate::cluster::host::underlay_toward(remotes))
                    .map_err(|e| anyhow::anyhow!("{e}; or {}", g.underlay_hint()))?,
            },
            tunnels,
            probe_timeout: Duration::from_secs(args.probe_timeout),
        });
    } else if g.settings.docker_plugin.get().is_some() && args.docker_plugin.is_some() {
        anyhow::bail!("--docker-plugin needs a cluster database: {}", cluster_hint(g));
    } else if args.host_name.is_some() || args.underlay_ip.is_some() || !args.tunnels.is_empty() {
        // Given on the command line without a cluster: a mistake. From the
        // environment or the file they wait for a cluster database.
        anyhow::bail!("--host-name, --underlay-ip and --tunnel need a cluster database: {}", cluster_hint(g));
    }
    rt.block_on(async {
        if let Some(addr) = args.metrics {
            agent::install_metrics(addr)?;
        }
        let stats = Arc::new(agent::Stats::default());
        if let (Some(path), Some(c)) = (g.settings.docker_plugin.get(), &opts.cluster) {
            let (tx, rx) = tokio::sync::watch::channel(Default::default());
            opts.programmed = Some(tx);
            let (claims_tx, claims_rx) = tokio::sync::watch::channel(Default::default());
            opts.claims = Some(claims_rx);
            let driver_opts = crate::driver::DriverOptions {
                bridge: bridge.clone(),
                host: c.host_name.clone(),
                db: g.db.clone(),
                cluster_db: c.remotes.clone(),
                connect: g.connect.clone(),
                programmed: Some(rx),
                docker_socket: crate::container::docker_socket_path(),
                claims: Some(claims_tx),
                held: opts.held.clone(),
            };
            let driver = crate::driver::Driver::connect(driver_opts).await.context("the Docker plugin")?;
            let listener = crate::driver::server::bind(path)?;
            tokio::spawn(crate::driver::server::serve(listener, Arc::new(driver), std::future::pending()));
        }
        if !args.no_docker_events {
            let follow_opts = crate::follow::FollowOptions {
                bridge: bridge.clone(),
                db: g.db.clone(),
                connect: opts.connect.clone(),
                attacher: crate::attach::AttacherOptions {
                    switch_netns: g.netns.clone(),
                    check_operations: false,
                    ..Default::default()
                },
                cluster: opts.cluster.as_ref().map(|c| (c.host_name.clone(), c.remotes.clone())),
            };
            let follower = crate::follow::Follower::connect(follow_opts).await.context("following Docker")?;
            tokio::spawn(follower.run());
        }
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("SIGTERM handler")?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        agent::run(opts, stats, shutdown).await.with_context(|| format!("agent for {bridge}"))
    })
}
