//! The `ovsnet` command line. `anyhow` lives here and nowhere below.

use std::process::ExitCode;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::net::IpNet;
use crate::ovsdb::{Client, ConnectOptions};
use crate::vswitch::Vswitch;

pub mod agent;
pub mod attach;
pub mod bridge;
pub mod cluster;
pub mod demo;
pub mod docs;
pub mod flows;
pub mod host;
pub mod lab;
pub mod network;
pub mod ofp;

/// Where the cluster database is: its members' remotes, comma-separated.
#[derive(Debug, Clone, Args)]
pub struct ClusterDbArg {
    /// Cluster database remotes, e.g. tcp:10.0.0.1:6650,tcp:10.0.0.2:6650,tcp:10.0.0.3:6650.
    #[arg(long, env = "OVSNET_CLUSTER_DB", value_name = "REMOTES")]
    pub cluster_db: String,
}

/// Open vSwitch control for container networking.
#[derive(Debug, Parser)]
#[command(name = "ovsnet", version, about, long_about = None)]
pub struct Cli {
    /// OVSDB remote, as OVS spells it: unix:PATH, tcp:IP:PORT, ssl:IP:PORT,
    /// or a comma-separated list of them for a clustered database.
    /// Default: unix:$OVS_RUNDIR/db.sock, else unix:/var/run/openvswitch/db.sock.
    #[arg(long, global = true, help_heading = "Global options", env = "OVSNET_DB")]
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
}

impl Global {
    fn from_cli(cli: &Cli) -> Self {
        let connect = ConnectOptions {
            private_key: cli.private_key.clone(),
            certificate: cli.certificate.clone(),
            ca_cert: cli.ca_cert.clone(),
            timeout: Duration::from_secs(cli.timeout),
            // A one-shot command reports an unreachable database at once.
            fail_fast: true,
            ..ConnectOptions::default()
        };
        Global {
            db: cli.db.clone().unwrap_or_else(default_db),
            connect,
            wait: (!cli.no_wait).then_some(Duration::from_secs(cli.timeout.max(1))),
            netns: cli.netns.clone(),
            format: cli.format,
        }
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
    match std::env::var_os("OVS_RUNDIR") {
        Some(dir) => format!("unix:{}/db.sock", PathBuf::from(dir).display()),
        None => "unix:/var/run/openvswitch/db.sock".to_owned(),
    }
}

/// Puts an address on a bridge's internal interface and brings it up.
pub async fn set_bridge_address(g: &Global, bridge: &str, cidr: IpNet) -> anyhow::Result<()> {
    crate::vswitch::address::set_interface_address(g.netns.as_deref(), bridge, cidr)
        .await
        .with_context(|| format!("address {cidr} on {bridge}"))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let g = Global::from_cli(&cli);
    match cli.command {
        Command::Ofp(cmd) => ofp::run(cmd, cli.format),
        Command::Attach(args) => block_on(attach::run_attach(args, &g)),
        Command::Detach(args) => block_on(attach::run_detach(args, &g)),
        Command::Attachments(args) => block_on(attach::run_list(args, &g)),
        Command::Gc(args) => block_on(attach::run_gc(args, &g)),
        Command::Bridge(cmd) => block_on(bridge::run_bridge(cmd, &g)),
        Command::Tunnel(cmd) => block_on(bridge::run_tunnel(cmd, &g)),
        Command::Demo(args) => block_on(demo::run(args, &g)),
        Command::Cluster(cmd) => block_on(cluster::run(cmd, &g)),
        Command::Network(cmd) => block_on(network::run(cmd, &g)),
        Command::Host(cmd) => block_on(host::run(cmd, &g)),
        Command::Lab(cmd) => block_on(lab::run(cmd, &g)),
        Command::Agent(args) => agent::run(args, &g),
        Command::Flows(args) => block_on(flows::run(args, &g)),
        Command::Completion(args) => docs::completion(&args),
        Command::Man(args) => docs::man(&args),
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
