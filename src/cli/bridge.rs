//! `ovsnet bridge` and `ovsnet tunnel`.

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

use crate::net::IpNet;
use crate::vswitch::{Bridge, BridgeSpec, DatapathType, FailMode, Outcome, TunnelSpec, TunnelType, spec};

use super::{Format, Global};

#[derive(Debug, Subcommand)]
pub enum BridgeCommand {
    /// Create a bridge (like `ovs-vsctl add-br`), optionally with an address
    /// on its internal interface. Adding a bridge that exists with the same
    /// settings changes nothing; with other settings it fails and says what
    /// differs.
    #[command(after_help = "Examples:\n  ovsnet bridge add obr0 --cidr 172.16.42.1/24\n  \
                            ovsnet bridge add obr0 --datapath netdev --fail-mode secure --mtu 1450")]
    Add(BridgeAdd),
    /// Delete a bridge with all its ports (like `ovs-vsctl del-br`).
    Del {
        /// The bridge to delete.
        name: String,
        /// Succeed if the bridge does not exist.
        #[arg(long)]
        if_exists: bool,
    },
    /// List bridge names.
    List,
    /// Show bridges with their ports and interfaces (like `ovs-vsctl show`).
    Show {
        /// Only this bridge (default: every bridge).
        name: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct BridgeAdd {
    /// Bridge name: at most 15 bytes, no `/`, `:` or spaces.
    pub name: String,
    /// Address for the bridge's internal interface, brought up with it.
    #[arg(long, value_name = "IP/PREFIX")]
    pub cidr: Option<String>,
    /// Datapath: `system` (kernel module), `netdev` (userspace), or `auto`
    /// (system where the kernel module is loaded, else netdev).
    #[arg(long, value_enum, default_value_t = DatapathArg::Auto)]
    pub datapath: DatapathArg,
    /// What the bridge does with no controller: `secure` drops what no flow
    /// matches; `standalone` falls back to MAC learning.
    #[arg(long, value_enum)]
    pub fail_mode: Option<FailModeArg>,
    /// MTU of the bridge's internal interface (`mtu_request`).
    #[arg(long)]
    pub mtu: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DatapathArg {
    Auto,
    System,
    Netdev,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailModeArg {
    Secure,
    Standalone,
}

#[derive(Debug, Subcommand)]
pub enum TunnelCommand {
    /// Add a GRE, VXLAN or Geneve port to a bridge (like `ovs-vsctl add-port
    /// BR NAME -- set interface NAME type=gre options:remote_ip=IP`).
    #[command(after_help = "Examples:\n  ovsnet tunnel add obr0 gre0 --type gre --remote 192.0.2.2\n  \
                            ovsnet tunnel add obr0 vxlan0 --type vxlan --remote flow --key flow")]
    Add(TunnelAdd),
    /// Remove a tunnel port from a bridge.
    Del {
        /// The bridge the port is on.
        bridge: String,
        /// The tunnel port to remove.
        name: String,
        /// Succeed if the port does not exist.
        #[arg(long)]
        if_exists: bool,
    },
    /// List a bridge's tunnel ports.
    List {
        /// The bridge whose tunnel ports to list.
        bridge: String,
    },
}

#[derive(Debug, Args)]
pub struct TunnelAdd {
    /// The bridge to add the port to (it must exist).
    pub bridge: String,
    /// Port (and interface) name: at most 15 bytes.
    pub name: String,
    /// Encapsulation: gre, vxlan or geneve (the Interface's type).
    #[arg(long = "type", value_name = "gre|vxlan|geneve")]
    pub kind: String,
    /// Remote tunnel endpoint, or `flow` to let flows set it per packet (tun_dst).
    #[arg(long, value_name = "IP|flow")]
    pub remote: String,
    /// Local tunnel endpoint (default: chosen by the routing table).
    #[arg(long, value_name = "IP|flow")]
    pub local: Option<String>,
    /// GRE key (32 bits) or VXLAN/Geneve VNI (24 bits), or `flow` (tun_id).
    #[arg(long, value_name = "N|flow")]
    pub key: Option<String>,
    /// UDP destination port (VXLAN default 4789, Geneve 6081).
    #[arg(long)]
    pub dst_port: Option<u16>,
}

impl BridgeAdd {
    pub fn to_spec(&self) -> anyhow::Result<BridgeSpec> {
        let mut spec = BridgeSpec::new(&self.name)?;
        spec.datapath = match self.datapath {
            DatapathArg::Auto => None,
            DatapathArg::System => Some(DatapathType::System),
            DatapathArg::Netdev => Some(DatapathType::Netdev),
        };
        spec.fail_mode = self.fail_mode.map(|m| match m {
            FailModeArg::Secure => FailMode::Secure,
            FailModeArg::Standalone => FailMode::Standalone,
        });
        spec.mtu = self.mtu;
        spec.cidr = self.cidr.as_deref().map(IpNet::parse_interface).transpose()?;
        spec.check()?;
        Ok(spec)
    }
}

impl TunnelAdd {
    pub fn to_spec(&self) -> anyhow::Result<TunnelSpec> {
        let s = TunnelSpec {
            bridge: self.bridge.clone(),
            name: self.name.clone(),
            kind: self.kind.parse::<TunnelType>()?,
            remote: spec::parse_endpoint("remote", &self.remote)?,
            local: self.local.as_deref().map(|l| spec::parse_endpoint("local", l)).transpose()?,
            key: self.key.as_deref().map(spec::parse_key).transpose()?,
            dst_port: self.dst_port,
        };
        s.check()?;
        Ok(s)
    }
}

fn say(outcome: Outcome, what: &str) {
    let verb = match outcome {
        Outcome::Created => "created",
        Outcome::Unchanged => "unchanged",
        Outcome::Deleted => "deleted",
        Outcome::Absent => "absent",
    };
    outln!("{what}: {verb}");
}

pub async fn run_bridge(cmd: BridgeCommand, g: &Global) -> anyhow::Result<()> {
    // Check everything the user typed before touching the database.
    match cmd {
        BridgeCommand::Add(add) => {
            let spec = add.to_spec()?;
            let vs = g.vswitch().await?;
            let outcome = vs.add_bridge(&spec).await?;
            if let Some(cidr) = spec.cidr {
                super::set_bridge_address(g, &spec.name, cidr).await?;
            }
            say(outcome, &format!("bridge {}", spec.name));
        }
        BridgeCommand::Del { name, if_exists } => {
            spec::check_name("bridge", &name)?;
            let outcome = g.vswitch().await?.del_bridge(&name, if_exists).await?;
            say(outcome, &format!("bridge {name}"));
        }
        BridgeCommand::List => {
            let snap = g.vswitch().await?.snapshot().await?;
            let names: Vec<&str> = snap.bridges.iter().map(|b| b.name.as_str()).collect();
            match g.format {
                Format::Json => outln!("{}", serde_json::to_string_pretty(&names)?),
                Format::Table => names.iter().for_each(|n| outln!("{n}")),
            }
        }
        BridgeCommand::Show { name } => {
            if let Some(n) = &name {
                spec::check_name("bridge", n)?;
            }
            let snap = g.vswitch().await?.snapshot().await?;
            let bridges: Vec<&Bridge> = match &name {
                Some(n) => vec![snap.bridge(n).with_context(|| format!("bridge {n} does not exist"))?],
                None => snap.bridges.iter().collect(),
            };
            match g.format {
                Format::Json => outln!("{}", serde_json::to_string_pretty(&bridges)?),
                Format::Table => out!("{}", super::show_bridges(&bridges)),
            }
        }
    }
    Ok(())
}

pub async fn run_tunnel(cmd: TunnelCommand, g: &Global) -> anyhow::Result<()> {
    match cmd {
        TunnelCommand::Add(add) => {
            let spec = add.to_spec()?;
            let outcome = g.vswitch().await?.add_tunnel(&spec).await?;
            say(outcome, &format!("tunnel {} on {}", spec.name, spec.bridge));
        }
        TunnelCommand::Del { bridge, name, if_exists } => {
            spec::check_name("bridge", &bridge)?;
            spec::check_name("port", &name)?;
            let outcome = g.vswitch().await?.del_port(&bridge, &name, if_exists, true).await?;
            say(outcome, &format!("tunnel {name} on {bridge}"));
        }
        TunnelCommand::List { bridge } => {
            spec::check_name("bridge", &bridge)?;
            let snap = g.vswitch().await?.snapshot().await?;
            let br = snap.bridge(&bridge).with_context(|| format!("bridge {bridge} does not exist"))?;
            let tunnels: Vec<TunnelRow> = br
                .ports
                .iter()
                .flat_map(|p| &p.interfaces)
                .filter(|i| TunnelType::from_column(&i.kind).is_some())
                .map(|i| TunnelRow {
                    name: i.name.clone(),
                    kind: i.kind.clone(),
                    remote: i.options.get("remote_ip").cloned().unwrap_or_default(),
                    local: i.options.get("local_ip").cloned(),
                    key: i.options.get("key").cloned(),
                    dst_port: i.options.get("dst_port").cloned(),
                    ofport: i.ofport,
                    error: i.error.clone(),
                })
                .collect();
            match g.format {
                Format::Json => outln!("{}", serde_json::to_string_pretty(&tunnels)?),
                Format::Table => {
                    outln!(
                        "{:<15} {:<7} {:<18} {:<18} {:<10} {:<8} {:>6}",
                        "NAME",
                        "TYPE",
                        "REMOTE",
                        "LOCAL",
                        "KEY",
                        "DSTPORT",
                        "OFPORT"
                    );
                    for t in &tunnels {
                        outln!(
                            "{:<15} {:<7} {:<18} {:<18} {:<10} {:<8} {:>6}{}",
                            t.name,
                            t.kind,
                            t.remote,
                            t.local.as_deref().unwrap_or("-"),
                            t.key.as_deref().unwrap_or("-"),
                            t.dst_port.as_deref().unwrap_or("-"),
                            t.ofport.map(|o| o.to_string()).unwrap_or_else(|| "-".into()),
                            t.error.as_ref().map(|e| format!("  error: {e}")).unwrap_or_default()
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

#[derive(Debug, serde::Serialize)]
struct TunnelRow {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    remote: String,
    local: Option<String>,
    key: Option<String>,
    dst_port: Option<String>,
    ofport: Option<i64>,
    error: Option<String>,
}
