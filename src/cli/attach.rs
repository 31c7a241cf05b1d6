//! `ovsnet attach`, `detach`, `attachments` and `gc`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser};

use super::{Format, Global};
use crate::attach::{
    AttachReport, AttachRequest, Attacher, AttacherOptions, Attachment, engine::Change, engine::Liveness, parse_route,
};
use crate::container::ContainerRef;

/// Options shared by a command-line attach and a line of a batch.
#[derive(Debug, Clone, Args)]
pub struct AttachOpts {
    /// Interface name inside the container.
    #[arg(long, default_value = crate::attach::DEFAULT_IFNAME, value_name = "NAME")]
    pub ifname: String,
    /// MAC address (default: 0a:58 followed by the IP's four bytes).
    #[arg(long, value_name = "MAC")]
    pub mac: Option<String>,
    /// MTU (default: the bridge's, less the tunnel overhead when it carries tunnels).
    #[arg(long, value_name = "N")]
    pub mtu: Option<u32>,
    /// Extra route inside the container, CIDR[@GATEWAY] (repeatable).
    #[arg(long = "route", value_name = "CIDR[@GATEWAY]")]
    pub routes: Vec<String>,
    /// The cluster network to attach into (needs a cluster database:
    /// --cluster-db, OVSNET_CLUSTER_DB or cluster_db in the configuration
    /// file). In a --batch line: the network name recorded with the attachment.
    #[arg(long, value_name = "NAME")]
    pub network: Option<String>,
    /// Publish a container port on this host's addresses (repeatable):
    /// connections to HOST_IP (default: every address of the host) and
    /// HOST_PORT reach the container's CONTAINER_PORT, as `docker run -p`.
    /// Needs --network, one that is not --internal, and the agent.
    #[arg(long = "publish", short = 'p', value_name = "[HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp]",
          value_parser = parse_published)]
    pub published: Vec<crate::net::PublishedPort>,
    /// Another name the container answers to in its network's DNS, at
    /// the network's gateway on every host (repeatable; with --network).
    /// Several containers may share an alias: its answers rotate among
    /// them.
    #[arg(long = "alias", value_name = "NAME", requires = "network")]
    pub aliases: Vec<String>,
}

fn parse_published(s: &str) -> Result<crate::net::PublishedPort, String> {
    s.parse().map_err(|e: crate::net::AddrError| e.to_string())
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Bridge to attach to.
    #[arg(required_unless_present = "batch")]
    pub bridge: Option<String>,
    /// Docker container name or ID, pid:N, netns:NAME, or a namespace file path.
    #[arg(required_unless_present = "batch")]
    pub container: Option<String>,
    /// IP/PREFIX[@GATEWAY], e.g. 172.16.42.10/24@172.16.42.1. With
    /// --network it may be omitted: the cluster allocates one.
    #[arg(value_name = "IP/PREFIX[@GATEWAY]", required_unless_present_any = ["batch", "network"])]
    pub ip: Option<String>,
    #[command(flatten)]
    pub opts: AttachOpts,
    /// Cluster database (with --network): the address is allocated there
    /// when none is given, and published as an endpoint either way; the
    /// database refuses an address another host already holds. Default:
    /// OVSNET_CLUSTER_DB, else cluster_db in the configuration file; only
    /// --network attaches into the cluster.
    #[arg(long, value_name = "REMOTES", requires = "network")]
    pub cluster_db: Option<String>,
    /// This host's name in the cluster database (default: OVSNET_HOST_NAME,
    /// host_name in the configuration file, else the system's host name).
    #[arg(long, value_name = "NAME")]
    pub host_name: Option<String>,
    /// Attach many: one "BRIDGE CONTAINER IP/PREFIX[@GATEWAY] [options]" a
    /// line from FILE (`-` for stdin), over one database connection.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["bridge", "container", "ip"])]
    pub batch: Option<PathBuf>,
    /// With --batch: lines committed to OVSDB together (ovs-vswitchd
    /// reconfigures the bridge once per commit).
    #[arg(long, value_name = "N", default_value_t = BATCH_CHUNK, requires = "batch",
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub chunk: u64,
}

/// One line of a batch file.
#[derive(Debug, Parser)]
#[command(no_binary_name = true, disable_help_flag = true)]
struct BatchLine {
    bridge: String,
    container: String,
    ip: String,
    #[command(flatten)]
    opts: AttachOpts,
}

#[derive(Debug, Args)]
pub struct DetachArgs {
    /// The bridge the container is attached to.
    pub bridge: String,
    /// Docker container name or ID, pid:N, netns:NAME, or a namespace file path.
    pub container: String,
    /// Interface name inside the container.
    #[arg(long, default_value = crate::attach::DEFAULT_IFNAME, value_name = "NAME")]
    pub ifname: String,
    /// Not attached is not an error.
    #[arg(long)]
    pub if_exists: bool,
    #[command(flatten)]
    pub cluster: ClusterRowArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this bridge.
    pub bridge: Option<String>,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Only this bridge.
    pub bridge: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterRowArgs,
}

/// The cluster database for `detach` and `gc`: the Endpoint rows of the
/// attachments they remove (those made in a cluster network) go too.
#[derive(Debug, Clone, Args)]
pub struct ClusterRowArgs {
    /// Cluster database: also remove the removed attachments' Endpoint
    /// rows (else this host's agent removes them once it sees the port gone).
    /// Default: OVSNET_CLUSTER_DB, else cluster_db in the configuration file.
    #[arg(long, value_name = "REMOTES")]
    pub cluster_db: Option<String>,
    /// This host's name in the cluster database (default: OVSNET_HOST_NAME,
    /// host_name in the configuration file, else the system's host name).
    #[arg(long, value_name = "NAME")]
    pub host_name: Option<String>,
}

/// After `detach` or `gc` removed `removed` (their ports are gone): removes
/// this host's Endpoint rows of those in a network, when a cluster
/// database is configured (flag, environment or file: the command line's
/// are in `g`). A failure says what remains, in one line.
async fn remove_cluster_rows(removed: &[Attachment], g: &Global) -> anyhow::Result<()> {
    let Some(remotes) = g.cluster_db() else { return Ok(()) };
    let rows = crate::endpoint::rows_of(removed);
    if rows.is_empty() {
        return Ok(());
    }
    let host = g.host_name()?;
    crate::endpoint::remove_rows(remotes, &g.connect, &host, rows).await?;
    Ok(())
}

/// `ovsnet attach BRIDGE CONTAINER [IP] --network NAME --cluster-db REMOTES`:
/// the address is allocated in the cluster (or the given one published),
/// then the container is attached; a failure leaves nothing behind.
async fn attach_in_cluster(args: &AttachArgs, remotes: &str, network: &str, g: &Global) -> anyhow::Result<()> {
    let (Some(bridge), Some(container)) = (&args.bridge, &args.container) else {
        bail!("attach needs BRIDGE CONTAINER");
    };
    let address = match &args.ip {
        Some(ip) => {
            let ((ip, prefix), gateway) = crate::attach::parse_ip_gateway(ip)?;
            Some(crate::endpoint::GivenAddress { ip, prefix, gateway })
        }
        None => None,
    };
    let req = crate::endpoint::NetworkAttach {
        network: network.to_owned(),
        host: g.host_name()?,
        bridge: bridge.clone(),
        container: ContainerRef::parse(container)?,
        address,
        ifname: args.opts.ifname.clone(),
        mac: args.opts.mac.as_deref().map(crate::net::Mac::parse_unicast).transpose()?,
        mtu: args.opts.mtu,
        routes: args.opts.routes.iter().map(|r| parse_route(r)).collect::<Result<_, _>>()?,
        published: args.opts.published.clone(),
        aliases: args.opts.aliases.clone(),
    };
    // Bad input is refused before any connection is made.
    req.check()?;
    let cluster = crate::cluster::ClusterDb::connect(remotes, &g.connect).await?;
    let attacher = attacher(g).await?;
    let r = crate::endpoint::attach_in_network(&cluster, &attacher, &req).await?;
    match g.format {
        Format::Json => outln!("{}", serde_json::to_string(&r.report)?),
        Format::Table => outln!("{} (network {}, host {})", describe(&r.report), r.network, r.host),
    }
    Ok(())
}

fn request(bridge: &str, container: &str, ip: &str, opts: &AttachOpts) -> anyhow::Result<AttachRequest> {
    let reference = ContainerRef::parse(container)?;
    let mut req = AttachRequest::new(bridge, reference, ip)?;
    req.ifname = opts.ifname.clone();
    req.mac = opts.mac.as_deref().map(crate::net::Mac::parse_unicast).transpose()?;
    req.mtu = opts.mtu;
    req.routes = opts.routes.iter().map(|r| parse_route(r)).collect::<Result<_, _>>()?;
    req.network = opts.network.clone();
    if !opts.published.is_empty() {
        bail!("--publish needs --network: a published port reaches a container through its cluster network's way out");
    }
    req.check()?;
    Ok(req)
}

fn attacher_options(g: &Global) -> AttacherOptions {
    AttacherOptions {
        switch_netns: g.netns.clone(),
        docker_host: None,
        ofport_timeout: g.wait.unwrap_or(Duration::from_secs(10)),
        // The tests run the same operations with the check on.
        check_operations: false,
    }
}

async fn attacher(g: &Global) -> anyhow::Result<Attacher> {
    let client = g.client().await?;
    Ok(Attacher::new(client, attacher_options(g))?)
}

fn describe(r: &AttachReport) -> String {
    let a = &r.attachment;
    let what = match &r.change {
        Change::Created => "attached".to_owned(),
        Change::Unchanged => "already attached".to_owned(),
        Change::Replugged { stale } => format!("re-plugged (removed stale {})", stale.join(", ")),
    };
    format!(
        "{what}: {} {} {} mac {} mtu {} on {} port {} ofport {}",
        a.shown_container(),
        a.ifname,
        a.ip,
        a.mac.map(|m| m.to_string()).unwrap_or_default(),
        a.mtu.map(|m| m.to_string()).unwrap_or_default(),
        a.bridge,
        a.port,
        a.ofport.map(|p| p.to_string()).unwrap_or_default()
    )
}

pub async fn run_attach(args: AttachArgs, g: &Global) -> anyhow::Result<()> {
    if let Some(file) = &args.batch {
        return run_batch(file, usize::try_from(args.chunk).unwrap_or(1), g).await;
    }
    // Only --network attaches into the cluster: a cluster database from
    // the environment or the file leaves a plain attach plain.
    if let Some(network) = &args.opts.network {
        return attach_in_cluster(&args, g.require_cluster_db()?, network, g).await;
    }
    // Checked by clap (required_unless_present); keep the messages anyway.
    let (Some(bridge), Some(container), Some(ip)) = (&args.bridge, &args.container, &args.ip) else {
        bail!("attach needs BRIDGE CONTAINER IP/PREFIX, or --batch FILE");
    };
    // Bad input is refused before any connection is made.
    let req = request(bridge, container, ip, &args.opts)?;
    tracing::debug!("attach: connecting");
    // While the OVSDB connection makes its first round trip, open netlink
    // and resolve the container (a Docker lookup is a round trip too).
    let opts = attacher_options(g);
    let resolver = Attacher::resolver_for(&opts);
    let (client, (host, resolved)) = tokio::join!(g.client(), async {
        // Let the connection task send its first request before this
        // synchronous work takes the thread.
        tokio::task::yield_now().await;
        (Attacher::open_switch_netlink(&opts), resolver.resolve(&req.container).await)
    });
    let attacher = Attacher::from_parts(client?, host?, resolver, opts);
    let resolved = resolved?;
    tracing::debug!("attach: connected, netlink open, container resolved");
    let report = attacher.attach_resolved(&req, resolved).await?;
    tracing::debug!("attach: done");
    match g.format {
        Format::Json => outln!("{}", serde_json::to_string(&report)?),
        Format::Table => outln!("{}", describe(&report)),
    }
    Ok(())
}

/// Attachments committed together in a batch by default: large enough that
/// `ovs-vswitchd` reconfigures the bridge rarely, small enough that a
/// progress bar moves and few veths wait unplugged.
const BATCH_CHUNK: u64 = 100;

async fn run_batch(file: &PathBuf, chunk: usize, g: &Global) -> anyhow::Result<()> {
    let text = if file.as_os_str() == "-" {
        let mut s = String::new();
        for line in std::io::stdin().lock().lines() {
            s.push_str(&line.context("read stdin")?);
            s.push('\n');
        }
        s
    } else {
        std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?
    };
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let attacher = attacher(g).await?;
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(lines.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} {eta}") {
            bar.set_style(style);
        }
        Some(bar)
    } else {
        None
    };
    let mut failed = 0usize;
    let stdout = std::io::stdout();
    let mut emit = |n: usize, result: Result<AttachReport, anyhow::Error>| {
        let out = match (&result, g.format) {
            (Ok(r), Format::Json) => serde_json::json!({"line": n, "ok": true, "report": r}).to_string(),
            (Err(e), Format::Json) => {
                serde_json::json!({"line": n, "ok": false, "error": format!("{e:#}")}).to_string()
            }
            (Ok(r), Format::Table) => format!("line {n}: {}", describe(r)),
            (Err(e), Format::Table) => format!("line {n}: error: {e:#}"),
        };
        if result.is_err() {
            failed += 1;
        }
        match &bar {
            Some(b) => {
                b.suspend(|| {
                    let _ = writeln!(stdout.lock(), "{out}");
                });
                b.inc(1);
            }
            None => {
                let _ = writeln!(stdout.lock(), "{out}");
            }
        }
    };
    // Lines are parsed first; the good ones are attached a chunk at a time
    // (one OVSDB commit and one ofport wait per chunk).
    let mut good: Vec<(usize, AttachRequest)> = Vec::new();
    for (n, line) in &lines {
        let parsed = BatchLine::try_parse_from(line.split_whitespace())
            .map_err(|e| anyhow::anyhow!("{}", e.to_string().lines().next().unwrap_or("bad line").trim()))
            .and_then(|p| request(&p.bridge, &p.container, &p.ip, &p.opts));
        match parsed {
            Ok(req) => good.push((*n, req)),
            Err(e) => emit(*n, Err(e)),
        }
    }
    for part in good.chunks(chunk) {
        let reqs: Vec<AttachRequest> = part.iter().map(|(_, r)| r.clone()).collect();
        let results = attacher.attach_many(&reqs, chunk).await;
        for ((n, _), result) in part.iter().zip(results) {
            emit(*n, result.map_err(anyhow::Error::from));
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if failed > 0 {
        bail!("{failed} of {} attachments failed", lines.len());
    }
    Ok(())
}

pub async fn run_detach(args: DetachArgs, g: &Global) -> anyhow::Result<()> {
    crate::netlink::validate_ifname(&args.ifname)?;
    ContainerRef::parse(&args.container)?;
    let attacher = attacher(g).await?;
    let removed = attacher.detach(&args.bridge, &args.container, &args.ifname, args.if_exists).await?;
    match g.format {
        Format::Json => outln!("{}", serde_json::to_string(&removed)?),
        Format::Table => {
            for a in &removed {
                outln!("detached: {} {} {} from {} (port {})", a.shown_container(), a.ifname, a.ip, a.bridge, a.port);
            }
        }
    }
    remove_cluster_rows(&removed, g).await
}

fn liveness_word(l: &Liveness) -> String {
    match l {
        Liveness::Alive => "alive".into(),
        Liveness::Restarted => "restarted (stale)".into(),
        Liveness::Gone => "gone".into(),
        Liveness::Unknown(why) => format!("unknown ({why})"),
    }
}

pub async fn run_list(args: ListArgs, g: &Global) -> anyhow::Result<()> {
    let attacher = attacher(g).await?;
    let list = attacher.attachments(args.bridge.as_deref()).await?;
    let mut rows: Vec<(Attachment, Liveness)> = Vec::with_capacity(list.len());
    for a in list {
        let l = attacher.liveness(&a).await;
        rows.push((a, l));
    }
    match g.format {
        Format::Json => {
            let v: Vec<serde_json::Value> = rows
                .iter()
                .map(|(a, l)| {
                    let mut v = serde_json::to_value(a).unwrap_or_default();
                    v["alive"] = serde_json::Value::Bool(matches!(l, Liveness::Alive));
                    v["state"] = serde_json::to_value(l).unwrap_or_default();
                    v
                })
                .collect();
            outln!("{}", serde_json::Value::Array(v));
        }
        Format::Table => {
            let header = ["BRIDGE", "CONTAINER", "IFNAME", "IP", "MAC", "OFPORT", "HOST VETH", "CONTAINER STATE"];
            let table: Vec<[String; 8]> = rows
                .iter()
                .map(|(a, l)| {
                    [
                        a.bridge.clone(),
                        a.shown_container().to_owned(),
                        a.ifname.clone(),
                        a.ip.to_string(),
                        a.mac.map(|m| m.to_string()).unwrap_or_default(),
                        a.ofport.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                        a.port.clone(),
                        liveness_word(l),
                    ]
                })
                .collect();
            let mut widths = header.map(str::len);
            for row in &table {
                for (w, c) in widths.iter_mut().zip(row) {
                    *w = (*w).max(c.len());
                }
            }
            let print = |cells: &[String]| {
                let line: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:w$}")).collect();
                outln!("{}", line.join("  ").trim_end());
            };
            print(&header.map(str::to_owned));
            for row in &table {
                print(row);
            }
        }
    }
    Ok(())
}

pub async fn run_gc(args: GcArgs, g: &Global) -> anyhow::Result<()> {
    let attacher = attacher(g).await?;
    let removed = attacher.gc(args.bridge.as_deref()).await?;
    match g.format {
        Format::Json => outln!("{}", serde_json::to_string(&removed)?),
        Format::Table => {
            for a in &removed {
                outln!("removed: {} {} {} on {} (port {})", a.shown_container(), a.ifname, a.ip, a.bridge, a.port);
            }
            if removed.is_empty() {
                outln!("nothing to remove");
            }
        }
    }
    remove_cluster_rows(&removed, g).await
}
