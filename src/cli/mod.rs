//! The `ovsnet` command line. `anyhow` lives here and nowhere below.

use std::process::ExitCode;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{ConfigPath, Resolved, Tunnel};
use crate::net::IpNet;
use crate::ovsdb::{Client, ConnectOptions};
use crate::vswitch::Vswitch;

/// `println!` for a command's output. When standard output is closed
/// under it (`ovsnet ... | head -1`), the command stops there, quietly and
/// with the status a shell gives a tool ended by SIGPIPE (141), instead of
/// panicking as `println!` does.
macro_rules! outln {
    () => {
        $crate::cli::write_stdout(b"\n")
    };
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format!("{}\n", format_args!($($arg)*)).as_bytes())
    };
}

/// `print!` for a command's output; see [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format!($($arg)*).as_bytes())
    };
}

/// Writes bytes of a command's output. A closed standard output ends the
/// command there, quietly, with status 141 (what a shell reports for a tool
/// ended by SIGPIPE): the one place that decides so for [`outln!`] and
/// [`out!`] too.
pub fn write_stdout(bytes: &[u8]) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if out.write_all(bytes).and_then(|()| out.flush()).is_err() {
        std::process::exit(141);
    }
}

pub mod agent;
pub mod attach;
pub mod bridge;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod docs;
pub mod flows;
pub mod host;
pub mod lab;
pub mod network;
pub mod ofp;
pub mod router;
pub mod service;

/// What the flows depend on besides the database (`agent` and `flows`).
#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    /// A network with a fixed block and optionally VNI: NAME=CIDR[,vni=N].
    /// Networks not named here take their block from their endpoints'
    /// prefixes and a VNI from a hash of their name. Repeatable.
    #[arg(long = "network", value_name = "NAME=CIDR[,vni=N]")]
    pub networks: Vec<String>,

    /// Let the host reach its containers through the bridge's internal
    /// port, which has this address: IP/PREFIX[@NETWORK]. Off when absent.
    #[arg(long, value_name = "IP/PREFIX[@NETWORK]")]
    pub host_ip: Option<String>,

    /// Give no network a way out through this host. By default, in cluster
    /// mode, a network that is not --internal reaches addresses outside
    /// every network through the bridge's internal port: the host's kernel
    /// routes the packets and translates their source to its own address
    /// (nftables, table ip ovsnet). Off with --host-ip.
    #[arg(long)]
    pub no_egress: bool,
}

impl PipelineArgs {
    pub fn state_options(&self, bridge: &str) -> anyhow::Result<crate::agent::StateOptions> {
        let networks = self
            .networks
            .iter()
            .map(|n| crate::agent::NetworkOpt::parse(n).map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let host = match &self.host_ip {
            None => None,
            Some(h) => {
                let (cidr, network) = match h.split_once('@') {
                    Some((c, n)) => (c, Some(n.to_owned())),
                    None => (h.as_str(), None),
                };
                let net = crate::net::IpNet::parse_interface(cidr).with_context(|| format!("--host-ip {h}"))?;
                let std::net::IpAddr::V4(ip) = net.addr else { anyhow::bail!("--host-ip {h}: only IPv4") };
                Some(crate::agent::HostAccess { ip, prefix: net.prefix, network })
            }
        };
        let uplink = !self.no_egress && host.is_none();
        Ok(crate::agent::StateOptions { bridge: bridge.to_owned(), networks, host, uplink })
    }
}

/// Where the cluster database is: its members' remotes, comma-separated.
#[derive(Debug, Clone, Args)]
pub struct ClusterDbArg {
    /// Cluster database remotes, e.g. tcp:10.0.0.1:6650,tcp:10.0.0.2:6650,tcp:10.0.0.3:6650
    /// (default: OVSNET_CLUSTER_DB, else cluster_db in the configuration file).
    #[arg(long, value_name = "REMOTES")]
    pub cluster_db: Option<String>,
}

/// Open vSwitch control for container networking.
#[derive(Debug, Parser)]
#[command(name = "ovsnet", version, about, long_about = None, after_long_help = config_help())]
pub struct Cli {
    /// The configuration file (TOML; see `ovsnet config show`).
    /// Default: $OVSNET_CONFIG, else /etc/ovsnet/ovsnet.conf when it exists.
    #[arg(long, global = true, help_heading = "Global options", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// OVSDB remote, as OVS spells it: unix:PATH, tcp:IP:PORT, ssl:IP:PORT,
    /// or a comma-separated list of them for a clustered database.
    /// Default: OVSNET_DB, db in the configuration file, else
    /// unix:$OVS_RUNDIR/db.sock, else unix:/var/run/openvswitch/db.sock.
    #[arg(long, global = true, help_heading = "Global options", value_name = "REMOTE")]
    pub db: Option<String>,

    /// Private key for ssl: remotes (PEM), as OVS's tools take it.
    #[arg(short = 'p', long, global = true, help_heading = "Global options", value_name = "FILE")]
    pub private_key: Option<PathBuf>,

    /// Certificate for the private key (PEM).
    #[arg(short = 'c', long, global = true, help_heading = "Global options", value_name = "FILE")]
    pub certificate: Option<PathBuf>,

    /// CA certificate that signed the server's certificate (PEM).
    #[arg(short = 'C', long, global = true, help_heading = "Global options", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,

    /// This host's ovsnet database: where `cluster start` serves the
    /// standalone single-host database and `cluster init`/`join` keep this
    /// host's cluster member. Commands use it when no cluster database is
    /// configured. Default: OVSNET_DB_DIR, db_dir in the configuration
    /// file, else /var/lib/ovsnet/db.
    #[arg(long, global = true, help_heading = "Global options", value_name = "DIR")]
    pub db_dir: Option<PathBuf>,

    /// Give up on the database after this many seconds.
    #[arg(
        short = 't',
        long,
        global = true,
        help_heading = "Global options",
        default_value_t = 10,
        value_name = "SECS"
    )]
    pub timeout: u64,

    /// Do not wait for ovs-vswitchd to apply a change (like ovs-vsctl --no-wait).
    #[arg(long, global = true, help_heading = "Global options")]
    pub no_wait: bool,

    /// Network namespace where ovs-vswitchd runs, for commands that touch its
    /// interfaces (default: this one).
    #[arg(long, global = true, help_heading = "Global options", value_name = "NAME")]
    pub netns: Option<String>,

    /// Output format.
    #[arg(long, global = true, help_heading = "Global options", value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// More logging (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, help_heading = "Global options", action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, delete, list and show bridges.
    #[command(subcommand)]
    Bridge(bridge::BridgeCommand),
    /// Add, delete and list GRE, VXLAN and Geneve tunnel ports.
    #[command(subcommand)]
    Tunnel(bridge::TunnelCommand),
    /// The configuration: every key's value and where it came from.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Start a private Open vSwitch, build obr0 with an address, a GRE and a
    /// VXLAN port with ovsnet's own commands, show it, and clean up.
    Demo(demo::DemoArgs),
    /// Attach a container to a bridge with a static IP (veth, address, routes, port).
    Attach(attach::AttachArgs),
    /// Detach a container's interface from a bridge.
    Detach(attach::DetachArgs),
    /// List attachments recorded in OVSDB, and whether each container is alive.
    Attachments(attach::ListArgs),
    /// Remove the ports of containers that are gone or restarted.
    Gc(attach::GcArgs),
    /// Encode and decode OpenFlow 1.3 messages (debugging aids, like ovs-ofctl's).
    #[command(subcommand)]
    Ofp(ofp::OfpCommand),
    /// Run the cluster database: init, join, status, stop, start.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Networks in the cluster database: create, list, show, del.
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Distributed routers: networks on one router reach each other through
    /// their gateways, routed by every host's flows: create, add, del, list, show.
    #[command(subcommand)]
    Router(router::RouterCommand),
    /// Load-balanced service addresses: connections to a VIP spread over
    /// the containers with a name or alias, by every host's flows, and
    /// the service's name in DNS: create, del, list, show.
    #[command(subcommand)]
    Service(service::ServiceCommand),
    /// Hosts in the cluster database: list, show, del (forget a host gone for good).
    #[command(subcommand)]
    Host(host::HostCommand),
    /// A multi-host lab on this machine: hosts and containers in namespaces.
    #[command(subcommand)]
    Lab(lab::LabCommand),
    /// Run the OpenFlow agent that programs a bridge's flows per container.
    Agent(agent::AgentArgs),
    /// Print a bridge's flows (desired, installed, or the difference) in ovs-ofctl syntax.
    Flows(flows::FlowsArgs),
    /// Print a shell completion script (bash, zsh, fish, ...).
    Completion(docs::CompletionArgs),
    /// Print the manual page, or write one per command into a directory.
    Man(docs::ManArgs),
}

/// The configuration file, the variables and the precedence, for `--help`.
pub fn config_help() -> String {
    format!(
        "Configuration: a value comes from its flag, else its environment variable, else the \
         configuration file ({}, TOML, one key per variable below), else its default. \
         `ovsnet config show` prints each value and where it came from.\n\n{}\n\n\
         Exit status: 0 when the command did what it was asked; 1 on an error, \
         with one line on standard error naming the problem; 2 on a usage error \
         (an unknown option, a missing or malformed argument).",
        crate::config::DEFAULT_PATH,
        crate::config::env_help()
    )
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ovsnet: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error chain on one line, joined with ": ", leaving out a cause
/// whose text the message already holds (many errors print their source).
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Options every command that talks to the switch shares.
#[derive(Debug, Clone)]
pub struct Global {
    pub db: String,
    pub connect: ConnectOptions,
    pub wait: Option<Duration>,
    pub netns: Option<String>,
    pub format: Format,
    /// Every configuration key resolved: flag, environment, file, default.
    pub settings: Resolved,
    /// The configuration file, and whether it was read.
    pub config_file: ConfigPath,
    pub config_read: bool,
    /// This host's own database (in `db_dir`), when it holds one: the
    /// cluster database when none is configured.
    pub local_db: Option<crate::cluster::server::ClusterInfo>,
    /// Its members' unix sockets, the remotes commands then use.
    local_remotes: Option<String>,
}

/// Where a cluster database can be configured, for messages.
pub fn cluster_hint(g: &Global) -> String {
    format!(
        "start this host's database (`ovsnet cluster start`, or systemctl start ovsnet-db) in {}, \
         or give --cluster-db REMOTES, set OVSNET_CLUSTER_DB, or set cluster_db in {}",
        g.db_dir().display(),
        g.file_name()
    )
}

/// The bridge the agent programs when nothing says otherwise.
pub const DEFAULT_BRIDGE: &str = "obr0";

/// The `OVSNET_*` variables of this process.
fn ovsnet_env() -> std::collections::BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| {
            let k = k.into_string().ok()?;
            k.starts_with("OVSNET_").then(|| (k, v.to_string_lossy().into_owned()))
        })
        .collect()
}

/// `--tunnel` values, in order, each once.
fn tunnel_flags(names: &[String]) -> anyhow::Result<Option<Vec<Tunnel>>> {
    if names.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for n in names {
        for t in Tunnel::parse_list(n).map_err(|e| anyhow::anyhow!("--tunnel {n}: {e}"))? {
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    Ok(Some(out))
}

/// The configuration keys the command line sets: the global flags and
/// those of the command.
fn flags_of(cli: &Cli) -> anyhow::Result<crate::config::Config> {
    let mut f = crate::config::Config {
        db: cli.db.clone(),
        db_dir: cli.db_dir.clone(),
        private_key: cli.private_key.clone(),
        certificate: cli.certificate.clone(),
        ca_cert: cli.ca_cert.clone(),
        ..crate::config::Config::default()
    };
    match &cli.command {
        Command::Attach(a) => {
            f.cluster_db = a.cluster_db.clone();
            f.host_name = a.host_name.clone();
        }
        Command::Detach(attach::DetachArgs { cluster, .. }) | Command::Gc(attach::GcArgs { cluster, .. }) => {
            f.cluster_db = cluster.cluster_db.clone();
            f.host_name = cluster.host_name.clone();
        }
        Command::Network(cmd) => f.cluster_db = cmd.cluster_db_arg().cluster_db.clone(),
        Command::Router(cmd) => f.cluster_db = cmd.cluster_db_arg().cluster_db.clone(),
        Command::Service(cmd) => f.cluster_db = cmd.cluster_db_arg().cluster_db.clone(),
        Command::Host(cmd) => f.cluster_db = cmd.cluster_db_arg().cluster_db.clone(),
        Command::Cluster(cluster::ClusterCommand::Status { cluster_db, .. }) => f.cluster_db = cluster_db.clone(),
        Command::Agent(a) => {
            f.cluster_db = a.cluster_db.clone();
            f.host_name = a.host_name.clone();
            f.underlay_ip = a.underlay_ip;
            f.tunnel = tunnel_flags(&a.tunnels)?;
            f.bridge = a.bridge.clone();
            f.docker_plugin = a.docker_plugin.clone();
        }
        _ => {}
    }
    Ok(f)
}

/// What a key is when nothing sets it.
fn defaults() -> crate::config::Config {
    crate::config::Config {
        db: Some(default_db()),
        tunnel: Some(vec![Tunnel::Vxlan]),
        bridge: Some(DEFAULT_BRIDGE.to_owned()),
        db_dir: Some(PathBuf::from(crate::cluster::server::DEFAULT_DIR)),
        ..crate::config::Config::default()
    }
}

impl Global {
    fn from_cli(cli: &Cli) -> anyhow::Result<Self> {
        let env = ovsnet_env();
        let config_file = crate::config::config_path(cli.config.as_deref(), &env);
        let text = crate::config::read_file(&config_file)?;
        let file = text.as_deref().map(|text| crate::config::FileText { path: &config_file.path, text });
        let settings = crate::config::resolve(&flags_of(cli)?, &env, file, &defaults())?;
        // No cluster database configured: this host's own, when it has one.
        let local_db = match settings.cluster_db.get() {
            Some(_) => None,
            None => settings.db_dir.get().and_then(|d| {
                d.join("cluster.json")
                    .exists()
                    .then(|| crate::cluster::server::ClusterInfo::load(d))
                    .transpose()
                    .ok()
                    .flatten()
            }),
        };
        let local_remotes = local_db.as_ref().map(|i| i.unix_remotes());
        let connect = ConnectOptions {
            // A member on this host may follow: it forwards writes to the
            // leader (every transaction is checked there), as ovn-controller
            // uses its local member.
            leader_only: local_db.is_none(),
            private_key: settings.private_key.value.clone(),
            certificate: settings.certificate.value.clone(),
            ca_cert: settings.ca_cert.value.clone(),
            timeout: Duration::from_secs(cli.timeout),
            // A one-shot command reports an unreachable database at once.
            fail_fast: true,
            ..ConnectOptions::default()
        };
        Ok(Global {
            db: settings.db.value.clone().unwrap_or_else(default_db),
            connect,
            wait: (!cli.no_wait).then_some(Duration::from_secs(cli.timeout.max(1))),
            netns: cli.netns.clone(),
            format: cli.format,
            settings,
            config_read: text.is_some(),
            config_file,
            local_db,
            local_remotes,
        })
    }

    /// Where the configuration file says a key is set, for messages.
    fn file_name(&self) -> String {
        self.config_file.path.display().to_string()
    }

    /// The cluster database: the one configured, else this host's own
    /// (in `db_dir`) when it holds one.
    pub fn cluster_db(&self) -> Option<&str> {
        self.settings.cluster_db.get().map(String::as_str).or(self.local_remotes.as_deref())
    }

    /// The cluster database, or the one-line error that there is none.
    pub fn require_cluster_db(&self) -> anyhow::Result<&str> {
        self.cluster_db().ok_or_else(|| {
            anyhow::anyhow!("no cluster database is configured and this host serves none: {}", cluster_hint(self))
        })
    }

    /// This host's database directory (the `db_dir` key).
    pub fn db_dir(&self) -> PathBuf {
        self.settings.db_dir.value.clone().unwrap_or_else(|| PathBuf::from(crate::cluster::server::DEFAULT_DIR))
    }

    /// This host's name in the cluster: configured, else the system's.
    pub fn host_name(&self) -> anyhow::Result<String> {
        Ok(crate::cluster::host::local_host_name(self.settings.host_name.get().map(String::as_str))?)
    }

    /// Where an underlay address can be configured, for messages.
    pub fn underlay_hint(&self) -> String {
        format!("give --underlay-ip IP, set OVSNET_UNDERLAY_IP, or set underlay_ip in {}", self.file_name())
    }

    /// The tunnel types, in order of preference.
    pub fn tunnels(&self) -> Vec<Tunnel> {
        self.settings.tunnel.value.clone().unwrap_or_else(|| vec![Tunnel::Vxlan])
    }

    /// The bridge the agent programs.
    pub fn bridge(&self) -> String {
        self.settings.bridge.value.clone().unwrap_or_else(|| DEFAULT_BRIDGE.to_owned())
    }

    pub async fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::connect(&self.db, &self.connect).await?)
    }

    pub async fn vswitch(&self) -> anyhow::Result<Vswitch> {
        Ok(Vswitch::new(self.client().await?).with_wait(self.wait))
    }
}

/// The database ovs-vsctl would use: `$OVS_RUNDIR/db.sock`, else the
/// packaged location.
pub fn default_db() -> String {
    format!("unix:{}/db.sock", crate::vswitch::controller::ovs_rundir().display())
}

/// Puts an address on a bridge's internal interface and brings it up.
pub async fn set_bridge_address(g: &Global, bridge: &str, cidr: IpNet) -> anyhow::Result<()> {
    crate::vswitch::address::set_interface_address(g.netns.as_deref(), bridge, cidr)
        .await
        .with_context(|| format!("address {cidr} on {bridge}"))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // These read no configuration: a bad file does not stop them.
    match cli.command {
        Command::Ofp(cmd) => return ofp::run(cmd, cli.format),
        Command::Completion(args) => return docs::completion(&args),
        Command::Man(args) => return docs::man(&args),
        _ => {}
    }
    // A bad configuration stops every other command before it starts anything.
    let g = Global::from_cli(&cli)?;
    match cli.command {
        Command::Ofp(_) | Command::Completion(_) | Command::Man(_) => Ok(()),
        Command::Config(cmd) => config::run(cmd, &g),
        Command::Attach(args) => block_on(attach::run_attach(args, &g)),
        Command::Detach(args) => block_on(attach::run_detach(args, &g)),
        Command::Attachments(args) => block_on(attach::run_list(args, &g)),
        Command::Gc(args) => block_on(attach::run_gc(args, &g)),
        Command::Bridge(cmd) => block_on(bridge::run_bridge(cmd, &g)),
        Command::Tunnel(cmd) => block_on(bridge::run_tunnel(cmd, &g)),
        Command::Demo(args) => block_on(demo::run(args, &g)),
        Command::Cluster(cmd) => block_on(cluster::run(cmd, &g)),
        Command::Network(cmd) => block_on(network::run(cmd, &g)),
        Command::Router(cmd) => block_on(router::run(cmd, &g)),
        Command::Service(cmd) => block_on(service::run(cmd, &g)),
        Command::Host(cmd) => block_on(host::run(cmd, &g)),
        Command::Lab(cmd) => block_on(lab::run(cmd, &g)),
        Command::Agent(args) => agent::run(args, &g),
        Command::Flows(args) => block_on(flows::run(args, &g)),
    }
}

fn block_on<F: std::future::Future<Output = anyhow::Result<()>>>(f: F) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("start the async runtime")?.block_on(f)
}

/// `bridge show` as text, in the spirit of `ovs-vsctl show`.
pub fn show_bridges(bridges: &[&crate::vswitch::Bridge]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for b in bridges {
        let _ = write!(out, "Bridge {}", b.name);
        let dp = if b.datapath_type.is_empty() { "system" } else { &b.datapath_type };
        let _ = write!(out, "  (datapath {dp}");
        if let Some(m) = &b.fail_mode {
            let _ = write!(out, ", fail_mode {m}");
        }
        if b.controllers > 0 {
            let _ = write!(out, ", {} controller(s)", b.controllers);
        }
        out.push_str(")\n");
        for p in &b.ports {
            for i in &p.interfaces {
                let kind = if i.kind.is_empty() { "system" } else { &i.kind };
                let _ = write!(out, "    Port {:<15} {:<8}", p.name, kind);
                match i.ofport {
                    Some(n) if n >= 0 => {
                        let _ = write!(out, " ofport {n:<5}");
                    }
                    _ => out.push_str(" ofport -    "),
                }
                if !i.options.is_empty() {
                    let opts: Vec<String> = i.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    let _ = write!(out, " {}", opts.join(" "));
                }
                if let Some(mtu) = i.mtu_request {
                    let _ = write!(out, " mtu_request={mtu}");
                }
                if let Some(e) = &i.error {
                    let _ = write!(out, "  error: {e}");
                }
                out.push('\n');
            }
        }
    }
    out
}
