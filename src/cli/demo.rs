//! `ovsnet demo`: a private Open vSwitch with an `obr0` bridge, an address,
//! a GRE and a VXLAN port, made with ovsnet's own commands and shown.

use clap::Args;

use crate::net::IpNet;
use crate::sandbox::{OvsSandbox, SandboxOptions};
use crate::vswitch::{BridgeSpec, DatapathType, FlowOr, TunnelSpec, TunnelType, Vswitch};

use super::{Format, Global};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Leave the private OVS running (its directory and namespace are
    /// printed) instead of removing it at the end.
    #[arg(long)]
    pub keep: bool,
}

pub async fn run(args: DemoArgs, g: &Global) -> anyhow::Result<()> {
    let opts = SandboxOptions { keep_dir: args.keep, ..Default::default() };
    let sandbox = tokio::task::spawn_blocking(move || OvsSandbox::start(opts)).await??;
    outln!("private Open vSwitch: database {} , ovs-vswitchd in namespace {}", sandbox.db_remote(), sandbox.netns());

    let local = Global { db: sandbox.db_remote(), netns: Some(sandbox.netns().to_owned()), ..g.clone() };
    let vs: Vswitch = local.vswitch().await?;

    let mut bridge = BridgeSpec::new("obr0")?;
    bridge.datapath = Some(DatapathType::Netdev);
    bridge.cidr = Some(IpNet::parse_interface("172.16.42.1/24")?);
    outln!("$ ovsnet bridge add obr0 --datapath netdev --cidr 172.16.42.1/24");
    vs.add_bridge(&bridge).await?;
    super::set_bridge_address(&local, "obr0", IpNet::parse_interface("172.16.42.1/24")?).await?;

    for (name, kind, remote, key) in [
        ("gre0", TunnelType::Gre, FlowOr::Value("192.0.2.2".parse()?), None),
        ("vxlan0", TunnelType::Vxlan, FlowOr::Flow, Some(FlowOr::Flow)),
    ] {
        let spec =
            TunnelSpec { bridge: "obr0".into(), name: name.into(), kind, remote, local: None, key, dst_port: None };
        outln!(
            "$ ovsnet tunnel add obr0 {name} --type {kind} --remote {remote}{}",
            key.map(|k| format!(" --key {k}")).unwrap_or_default()
        );
        vs.add_tunnel(&spec).await?;
    }
    outln!("$ ovsnet bridge show");
    let snap = vs.snapshot().await?;
    let bridges: Vec<_> = snap.bridges.iter().collect();
    match g.format {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&bridges)?),
        Format::Table => out!("{}", super::show_bridges(&bridges)),
    }
    if args.keep {
        outln!(
            "kept: try `ovsnet --db {} bridge show`; stop it with the pids in {}/*.pid",
            sandbox.db_remote(),
            sandbox.dir().display()
        );
        std::mem::forget(sandbox);
    } else {
        tokio::task::spawn_blocking(move || drop(sandbox)).await?;
        outln!("private Open vSwitch stopped and removed");
    }
    Ok(())
}
