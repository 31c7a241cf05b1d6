//! The `ovsnet` command line. `anyhow` lives here and nowhere below.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

pub mod ofp;

/// Open vSwitch control for container networking.
#[derive(Debug, Parser)]
#[command(name = "ovsnet", version, about, long_about = None)]
pub struct Cli {
    /// OVSDB remote, as OVS spells it: unix:PATH, tcp:IP:PORT, ssl:IP:PORT,
    /// or a comma-separated list of them for a clustered database.
    /// Default: unix:$OVS_RUNDIR/db.sock, else unix:/var/run/openvswitch/db.sock.
    #[arg(long, global = true, env = "OVSNET_DB")]
    pub db: Option<String>,

    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// More logging (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
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
    /// Encode and decode OpenFlow 1.3 messages (debugging aids, like ovs-ofctl's).
    #[command(subcommand)]
    Ofp(ofp::OfpCommand),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line naming the problem: the chain joined with ": ".
            eprintln!("ovsnet: {err:#}");
            ExitCode::FAILURE
        }
    }
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
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Ofp(cmd) => ofp::run(cmd, cli.format),
    }
}
