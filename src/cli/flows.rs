//! `ovsnet flows`: the flows of a bridge in ovs-ofctl syntax: what the
//! agent wants (`--desired`), what the switch has in the agent's tables
//! (`--installed`), or the difference (`--diff`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::{Global, PipelineArgs};
use crate::agent::ofconn::{Io, OfConn};
use crate::openflow::text::format_flow;
use crate::pipeline::{FlowSet, Pipeline, diff, installed_from_stats};

#[derive(Debug, Args)]
pub struct FlowsArgs {
    /// The bridge.
    pub bridge: String,
    /// The flows the agent computes from the database (the default).
    #[arg(long, group = "what")]
    pub desired: bool,
    /// The flows the switch holds in the agent's tables.
    #[arg(long, group = "what")]
    pub installed: bool,
    /// What the agent would change: `-` lines removed, `+` lines added.
    #[arg(long, group = "what")]
    pub diff: bool,
    /// The bridge's OpenFlow management socket. Default:
    /// $OVS_RUNDIR/BRIDGE.mgmt.
    #[arg(long, value_name = "PATH")]
    pub switch: Option<PathBuf>,
    /// Leave out cookies (for comparing with hand-written flows).
    #[arg(long)]
    pub no_cookies: bool,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

async fn installed(args: &FlowsArgs) -> anyhow::Result<FlowSet> {
    let path = args
        .switch
        .clone()
        .unwrap_or_else(|| crate::vswitch::controller::ovs_rundir().join(format!("{}.mgmt", args.bridge)));
    let s = tokio::net::UnixStream::connect(&path).await.with_context(|| format!("connect to {}", path.display()))?;
    let io: Box<dyn Io> = Box::new(s);
    let mut conn = OfConn::handshake(io, Default::default(), Duration::from_secs(30)).await?;
    let flows = conn.dump_flows().await?;
    Ok(installed_from_stats(&flows, &Pipeline::builtin()?.table_ids()))
}

async fn desired(args: &FlowsArgs, g: &Global) -> anyhow::Result<FlowSet> {
    let client = g.client().await?;
    let (flows, warnings) = crate::agent::desired_now(&client, &args.pipeline.state_options(&args.bridge)?).await?;
    for w in warnings {
        eprintln!("ovsnet: {w}");
    }
    Ok(flows)
}

fn text(fm: &crate::openflow::FlowMod, no_cookies: bool) -> String {
    let mut fm = fm.clone();
    if no_cookies {
        fm.cookie = 0;
    }
    let mut t = format_flow(&fm);
    // ovs-ofctl --bundle add-flows wants table= first, even for table 0.
    if !t.contains("table=") {
        t = match t.split_once(", ") {
            Some((c, rest)) if c.starts_with("cookie=") => format!("{c}, table=0, {rest}"),
            _ => format!("table=0, {t}"),
        };
    }
    t
}

/// One flow as `--format json` prints it: where it sits and its text.
fn json_flow(fm: &crate::openflow::FlowMod, no_cookies: bool) -> serde_json::Value {
    serde_json::json!({
        "table": fm.table_id,
        "priority": fm.priority,
        "cookie": if no_cookies { 0 } else { fm.cookie },
        "flow": text(fm, no_cookies),
    })
}

pub async fn run(args: FlowsArgs, g: &Global) -> anyhow::Result<()> {
    let json = matches!(g.format, super::Format::Json);
    let list = |fms: Vec<crate::openflow::FlowMod>| {
        if json {
            let v: Vec<_> = fms.iter().map(|fm| json_flow(fm, args.no_cookies)).collect();
            outln!("{}", serde_json::Value::Array(v));
        } else {
            for fm in &fms {
                outln!("{}", text(fm, args.no_cookies));
            }
        }
    };
    if args.installed {
        list(installed(&args).await?.to_flow_mods());
    } else if args.diff {
        let want = desired(&args, g).await?;
        let have = installed(&args).await?;
        let d = diff(&want, &have);
        // In diff order: removals, then each addition (a replaced flow
        // shows what it was just before it).
        let mut lines: Vec<(bool, crate::openflow::FlowMod)> = Vec::new();
        for key in &d.delete {
            let shown = have.flows.get(key).map(|v| crate::pipeline::render::flow_mod(key, v));
            lines.push((false, shown.unwrap_or_else(|| crate::pipeline::diff::delete_strict(key))));
        }
        for (key, v) in &d.add {
            if let Some(old) = have.flows.get(key) {
                lines.push((false, crate::pipeline::render::flow_mod(key, old)));
            }
            lines.push((true, crate::pipeline::render::flow_mod(key, v)));
        }
        if json {
            let side = |added: bool| -> Vec<serde_json::Value> {
                lines.iter().filter(|(a, _)| *a == added).map(|(_, fm)| json_flow(fm, args.no_cookies)).collect()
            };
            outln!("{}", serde_json::json!({"remove": side(false), "add": side(true)}));
        } else {
            for (added, fm) in &lines {
                outln!("{}{}", if *added { '+' } else { '-' }, text(fm, args.no_cookies));
            }
        }
    } else {
        list(desired(&args, g).await?.to_flow_mods());
    }
    Ok(())
}
