//! The per-host agent: it makes the bridge's controller point at itself,
//! serves OpenFlow 1.3 to `ovs-vswitchd`, monitors OVSDB for the endpoints
//! `ovsnet attach` recorded, and keeps the switch's flows equal to what
//! the [`crate::pipeline`] computes from them.
//!
//! - [`dbstate`]: database rows to pipeline state (pure);
//! - [`ofconn`]: one OpenFlow connection (framing, handshake, echo,
//!   flow read-back, bundles);
//! - this module: the loop that ties them, and [`Stats`] (also exported as
//!   Prometheus metrics).
//!
//! Reconcile: on every switch connection the agent reads the flows back,
//! and on every change it computes desired flows, diffs them against its
//! mirror of the switch, and sends the difference in one atomic bundle.
//! Nothing changed, nothing sent. On SIGTERM it just closes: with
//! `fail_mode=secure` the switch keeps every flow, as it does on SIGKILL.

pub mod cluster;
pub mod dbstate;
pub mod ofconn;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, UnixListener};

use crate::ovsdb::{self, Cache, Client, ConnectOptions, MonitorEvent, MonitorRequest};
use crate::pipeline::diff::{Changes, ReadBack, add_stats, changes};
use crate::pipeline::{FlowSet, Pipeline, PipelineError, desired_flows};
use crate::vswitch::controller::{ovs_rundir, set_controller};
pub use dbstate::{HostAccess, NetworkOpt, StateOptions, state_from_cache};
use ofconn::{Io, OfConn, OfError};

/// Where the agent listens for the switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl Listen {
    /// `unix:PATH` or `tcp:IP:PORT`.
    pub fn parse(s: &str) -> Result<Listen, AgentError> {
        if let Some(p) = s.strip_prefix("unix:").or_else(|| s.strip_prefix("punix:")) {
            return Ok(Listen::Unix(PathBuf::from(p)));
        }
        if let Some(a) = s.strip_prefix("tcp:").or_else(|| s.strip_prefix("ptcp:")) {
            return a.parse().map(Listen::Tcp).map_err(|_| AgentError::Config(format!("bad listen address {s:?}")));
        }
        Err(AgentError::Config(format!("bad listen address {s:?}: unix:PATH or tcp:IP:PORT")))
    }
    /// The controller target the switch connects to.
    pub fn target(&self) -> String {
        match self {
            Listen::Unix(p) => format!("unix:{}", p.display()),
            Listen::Tcp(a) => format!("tcp:{a}"),
        }
    }
}

/// The default listen socket: `<rundir>/ovsnet-<bridge>.sock`.
pub fn default_listen(bridge: &str) -> Listen {
    Listen::Unix(ovs_rundir().join(format!("ovsnet-{bridge}.sock")))
}

#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub state: StateOptions,
    pub db: String,
    pub connect: ConnectOptions,
    pub listen: Listen,
    /// Our echo interval; the connection drops after two without reply.
    pub echo_interval: Duration,
    /// Time allowed for each switch reply.
    pub switch_timeout: Duration,
    /// Print one line per reconcile on stdout.
    pub print_reconciles: bool,
    /// Cluster mode: follow the cluster database.
    pub cluster: Option<ClusterOptions>,
}

/// Cluster mode: where the cluster database is and who this host is.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The members, comma-separated (`tcp:IP:PORT,...`).
    pub remotes: String,
    pub host_name: String,
    pub underlay_ip: std::net::IpAddr,
    /// Tunnel types, in order of preference (at least one).
    pub tunnels: Vec<crate::pipeline::TunnelType>,
    pub heartbeat: Duration,
}

impl ClusterOptions {
    /// The Host row this agent registers (again, if it is removed while the
    /// agent runs).
    pub fn host_spec(&self) -> crate::cluster::HostSpec {
        crate::cluster::HostSpec {
            name: self.host_name.clone(),
            underlay_ip: self.underlay_ip,
            tunnel_types: self.tunnels.iter().map(|t| t.as_str().to_owned()).collect(),
            heartbeat_interval_ms: self.heartbeat.as_millis() as u64,
            external_ids: Default::default(),
        }
    }
}

impl AgentOptions {
    pub fn new(bridge: &str, db: &str) -> Self {
        AgentOptions {
            state: StateOptions { bridge: bridge.to_owned(), ..StateOptions::default() },
            db: db.to_owned(),
            connect: ConnectOptions::default(),
            listen: default_listen(bridge),
            echo_interval: Duration::from_secs(5),
            switch_timeout: Duration::from_secs(30),
            print_reconciles: false,
            cluster: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Config(String),
    #[error("listen on {what}: {source}")]
    Listen { what: String, source: std::io::Error },
    #[error(transparent)]
    Ovsdb(#[from] ovsdb::Error),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Switch(#[from] OfError),
    #[error("metrics: {0}")]
    Metrics(String),
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error(transparent)]
    Vswitch(#[from] crate::vswitch::VswitchError),
}

/// Counters and gauges of a running agent (exported as metrics too).
#[derive(Debug, Default)]
pub struct Stats {
    pub endpoints: AtomicU64,
    pub flows_desired: AtomicU64,
    pub flows_installed: AtomicU64,
    /// flow_mods sent since start.
    pub flow_mods: AtomicU64,
    /// flow_mods sent by the last reconcile that ran with a switch.
    pub last_flow_mods: AtomicU64,
    pub bundles: AtomicU64,
    pub reconciles: AtomicU64,
    /// Switch connections completed (handshake and read-back).
    pub switch_connects: AtomicU64,
    pub switch_connected: AtomicU64,
    pub db_connected: AtomicU64,
    pub packet_ins: AtomicU64,
    pub port_status: AtomicU64,
    pub last_reconcile_us: AtomicU64,
    /// Reconciles that found nothing to send, with a switch.
    pub noop_reconciles: AtomicU64,
}

impl Stats {
    fn export(&self) {
        metrics::gauge!("ovsnet_agent_endpoints").set(self.endpoints.load(Relaxed) as f64);
        metrics::gauge!("ovsnet_agent_flows_desired").set(self.flows_desired.load(Relaxed) as f64);
        metrics::gauge!("ovsnet_agent_flows_installed").set(self.flows_installed.load(Relaxed) as f64);
        metrics::gauge!("ovsnet_agent_switch_connected").set(self.switch_connected.load(Relaxed) as f64);
        metrics::gauge!("ovsnet_agent_db_connected").set(self.db_connected.load(Relaxed) as f64);
        metrics::counter!("ovsnet_agent_flow_mods_total").absolute(self.flow_mods.load(Relaxed));
        metrics::counter!("ovsnet_agent_bundles_total").absolute(self.bundles.load(Relaxed));
        metrics::counter!("ovsnet_agent_packet_ins_total").absolute(self.packet_ins.load(Relaxed));
        metrics::counter!("ovsnet_agent_switch_connects_total").absolute(self.switch_connects.load(Relaxed));
    }
}

/// Serves Prometheus metrics on `addr` (the process-wide recorder).
pub fn install_metrics(addr: SocketAddr) -> Result<(), AgentError> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| AgentError::Metrics(e.to_string()))
}

enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl Listener {
    async fn bind(l: &Listen) -> Result<Listener, AgentError> {
        let err = |source| AgentError::Listen { what: l.target(), source };
        match l {
            Listen::Unix(p) => {
                // A socket file left by a previous run (SIGKILL) is stale.
                if std::os::unix::net::UnixStream::connect(p).is_err() {
                    let _ = std::fs::remove_file(p);
                }
                Ok(Listener::Unix(UnixListener::bind(p).map_err(err)?))
            }
            Listen::Tcp(a) => Ok(Listener::Tcp(TcpListener::bind(a).await.map_err(err)?)),
        }
    }
    async fn accept(&self) -> std::io::Result<Box<dyn Io>> {
        Ok(match self {
            Listener::Unix(l) => Box::new(l.accept().await?.0),
            Listener::Tcp(l) => {
                let s = l.accept().await?.0;
                let _ = s.set_nodelay(true);
                Box::new(s)
            }
        })
    }
}

/// Cluster mode at start: the tunnel ports (one per type, flow-based),
/// the Host row, and a watch of the cluster database.
async fn join_cluster(
    client: &Client,
    bridge: &str,
    connect: &ConnectOptions,
    c: &ClusterOptions,
) -> Result<(ClusterLink, crate::cluster::ClusterWatch), AgentError> {
    use crate::vswitch::{FlowOr, TunnelSpec, Vswitch};
    if c.tunnels.is_empty() {
        return Err(AgentError::Config("cluster mode needs at least one tunnel type".into()));
    }
    let vs = Vswitch::new(client.clone());
    for t in &c.tunnels {
        let spec = TunnelSpec {
            bridge: bridge.to_owned(),
            name: cluster::tunnel_port_name(*t),
            kind: *t,
            remote: FlowOr::Flow,
            local: None,
            key: Some(FlowOr::Flow),
            dst_port: None,
        };
        vs.add_tunnel(&spec).await?;
    }
    let mut connect = connect.clone();
    connect.request_timeout.get_or_insert(Duration::from_secs(10));
    let db = crate::cluster::ClusterDb::connect(&c.remotes, &connect).await?;
    db.register_host(&c.host_spec()).await?;
    let watch = db.watch_for_host(&c.host_name).await?;
    let link = ClusterLink {
        db,
        opts: c.clone(),
        state: watch.state(),
        published: Default::default(),
        seen: Default::default(),
        stale_removed: false,
    };
    Ok((link, watch))
}

fn monitor_requests() -> Vec<(&'static str, MonitorRequest)> {
    vec![
        ("Bridge", MonitorRequest::columns(["name", "ports"])),
        ("Port", MonitorRequest::columns(["interfaces"])),
        ("Interface", MonitorRequest::columns(["name", "type", "options", "ofport", "external_ids", "mac_in_use"])),
    ]
}

/// The desired flows of a bridge now, read once from the database.
pub async fn desired_now(client: &Client, opts: &StateOptions) -> Result<(FlowSet, Vec<String>), AgentError> {
    let schema = client.get_schema(crate::vswitch::DB).await?;
    let reqs = monitor_requests();
    let refs: Vec<(&str, MonitorRequest)> = reqs.iter().map(|(t, r)| (*t, r.clone())).collect();
    let mut mon = client.monitor_cond(crate::vswitch::DB, &refs).await?;
    let mut cache = Cache::new(schema);
    cache.apply_owned(std::mem::take(&mut mon.initial)).map_err(ovsdb::Error::from)?;
    let _ = mon.cancel().await;
    let (state, mut warnings) = state_from_cache(&cache, opts);
    let d = desired_flows(&Pipeline::builtin()?, &state)?;
    warnings.extend(d.warnings);
    Ok((d.flows, warnings))
}

/// Gives memory freed after big transient work (a full read-back, a first
/// install, the initial database snapshot) back to the system.
fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The same flows, copied on this thread. Many flows are rendered on
/// worker threads, so their bytes sit in those threads' malloc arenas among
/// the rendering's garbage and keep its pages resident; a copy packs them
/// into this thread's heap and lets those arenas be given back (measured:
/// about 5 MB less resident at 10,000 endpoints, for a few milliseconds).
fn packed(flows: FlowSet) -> FlowSet {
    if flows.len() < 4096 {
        return flows;
    }
    FlowSet { flows: flows.flows.iter().map(|(k, v)| (k.clone(), v.clone())).collect() }
}

/// The process's resident memory now and at its highest (`VmRSS`,
/// `VmHWM`, in KiB), on Linux.
pub fn resident_memory_kb() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = |key: &str| -> Option<u64> {
        status.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
    };
    Some((kb("VmRSS:")?, kb("VmHWM:")?))
}

/// Logs the resident memory after a big step (debug level).
fn memory_step(step: &str) {
    if tracing::enabled!(tracing::Level::DEBUG)
        && let Some((rss, hwm)) = resident_memory_kb()
    {
        tracing::debug!(step, rss_kb = rss, hwm_kb = hwm, "memory");
    }
}

/// The agent's loop state.
struct Agent {
    opts: AgentOptions,
    pipeline: Pipeline,
    tables: Vec<u8>,
    cache: Cache,
    stats: Arc<Stats>,
    conn: Option<OfConn>,
    installed: FlowSet,
    /// The desired flows, when they are not simply `installed`.
    desired: Option<FlowSet>,
    /// The switch held the desired flows after the last reconcile and the
    /// database has not changed since: `installed` is the desired set.
    desired_is_installed: bool,
    endpoints: usize,
    /// Cluster mode: the database, the last state seen (kept when the
    /// database is unreachable), and what this agent published.
    cluster: Option<ClusterLink>,
}

/// Attempts to remove the rows of endpoints whose port went (about 10
/// minutes with the backoff capped at 30 s).
const REMOVE_ATTEMPTS: u32 = 25;

struct ClusterLink {
    db: crate::cluster::ClusterDb,
    opts: ClusterOptions,
    state: Arc<crate::cluster::ClusterState>,
    /// Endpoints this agent published whose row the cluster does not list
    /// yet (in flight, or refused): each is sent once. A row listed and
    /// later gone while its port is still here is published again.
    published: std::collections::BTreeSet<(String, std::net::IpAddr)>,
    /// Endpoints whose port this agent saw on the bridge (last look): one
    /// that leaves this set had its port removed, so its row goes too.
    seen: std::collections::BTreeSet<cluster::EndpointKey>,
    stale_removed: bool,
}

impl Agent {
    /// The pipeline state: the bridge's endpoints from OVSDB, and in
    /// cluster mode the cluster's networks and remote hosts.
    fn state(&self) -> (crate::pipeline::State, Vec<String>) {
        match &self.cluster {
            None => state_from_cache(&self.cache, &self.opts.state),
            Some(c) => {
                let mut so = self.opts.state.clone();
                let mut nets = cluster::cluster_networks(&c.state);
                nets.retain(|n| !so.networks.iter().any(|o| o.name == n.name));
                so.networks.extend(nets);
                let (mut st, mut w) = state_from_cache(&self.cache, &so);
                w.extend(cluster::apply_remote(&mut st, &c.state, &c.opts.host_name, &c.opts.tunnels));
                (st, w)
            }
        }
    }

    /// Cluster mode: publishes local endpoints the cluster lacks; removes
    /// this host's rows of endpoints it saw here whose port is gone now
    /// (detach, gc, deleted by hand), and once (at start) this host's rows
    /// with no port. In the background: the data plane never waits for
    /// the cluster.
    fn sync_endpoints(&mut self, local: &[crate::pipeline::LocalEndpoint]) {
        if self.cluster.is_none() {
            return;
        }
        let present = cluster::recorded_endpoints(&self.cache, &self.opts.state.bridge);
        let Some(c) = self.cluster.as_mut() else { return };
        let host = c.opts.host_name.clone();
        let sync = cluster::endpoint_sync(local, &c.state, &host);
        let mut remove = cluster::vanished_endpoints(&c.seen, &present, &c.state, &host);
        if !c.stale_removed {
            // A row whose port exists (with no ofport yet) is not stale.
            for k in sync.remove.into_iter().filter(|k| !present.contains(k)) {
                remove.extend(cluster::host_rows(&c.state, &host, &k).into_iter().map(|u| (k.clone(), u)));
            }
            c.stale_removed = true;
        }
        // Gone from here: published again if it comes back.
        for (k, _) in &remove {
            c.published.remove(k);
        }
        c.seen = present;
        let state = &c.state;
        c.published.retain(|(network, ip)| {
            !state.endpoints.iter().any(|e| {
                e.host == host && e.ip == *ip && state.network_by_uuid(e.network).is_some_and(|n| n.name == *network)
            })
        });
        let publish: Vec<_> =
            sync.publish.into_iter().filter(|e| c.published.insert((e.network.clone(), e.ip))).collect();
        if publish.is_empty() && remove.is_empty() {
            return;
        }
        let db = c.db.clone();
        tokio::spawn(async move {
            for e in publish {
                match db.publish_endpoint(&e).await {
                    Ok(_) => tracing::info!(ip = %e.ip, network = e.network, "published endpoint"),
                    Err(err) => tracing::warn!("publish {} in {}: {err}", e.ip, e.network),
                }
            }
            if remove.is_empty() {
                return;
            }
            let rows: Vec<_> = remove.iter().map(|(_, u)| *u).collect();
            let what: Vec<String> = remove.iter().map(|((n, ip), _)| format!("{ip} in {n}")).collect();
            // Removing by UUID is idempotent (a row published again is a
            // new row), so a failed attempt is retried while the database
            // is away; past that, the next start's cleanup removes them.
            let mut delay = Duration::from_secs(1);
            for attempt in 1..=REMOVE_ATTEMPTS {
                match db.remove_endpoint_rows(&host, &rows).await {
                    Ok(n) => {
                        tracing::info!(removed = n, "removed endpoints with no port here: {}", what.join(", "));
                        return;
                    }
                    Err(err) => tracing::warn!("remove endpoints {} (attempt {attempt}): {err}", what.join(", ")),
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        });
    }

    /// The desired flows, computed when the database (or the cluster)
    /// changed since they last were.
    fn ensure_desired(&mut self) -> Result<(), AgentError> {
        // The desired flows change only with the database: computed once
        // per change, so a switch that (re)connects only costs a read-back
        // and a diff. Once the switch holds them, the installed set is the
        // desired set (one copy, not two).
        if self.desired.is_none() && !self.desired_is_installed {
            let (state, warnings) = self.state();
            let d = desired_flows(&self.pipeline, &state)?;
            for w in warnings.iter().chain(&d.warnings) {
                tracing::debug!("{w}");
            }
            self.endpoints = state.local_endpoints.len();
            self.desired = Some(packed(d.flows));
            self.sync_endpoints(&state.local_endpoints);
        }
        Ok(())
    }

    /// Desired against installed; sends the difference in one bundle.
    async fn reconcile(&mut self, why: &str) -> Result<(), AgentError> {
        self.reconcile_with(why, false).await.map(|_| ())
    }

    /// [`Agent::reconcile`]; with `read_back`, the switch's flows are read
    /// first (a new connection) and compared with the desired flows part by
    /// part, so no second copy of the flows is built. Returns how many
    /// flows were read back.
    async fn reconcile_with(&mut self, why: &str, read_back: bool) -> Result<Option<usize>, AgentError> {
        let start = Instant::now();
        if read_back {
            // What a new switch connection holds is known only once read;
            // what the last one held is still what is desired.
            if self.desired_is_installed {
                self.desired = Some(std::mem::take(&mut self.installed));
                self.desired_is_installed = false;
            } else {
                self.installed = FlowSet::default();
            }
        }
        self.ensure_desired()?;
        let endpoints = self.endpoints;
        let n_desired = self.desired.as_ref().map_or(self.installed.len(), FlowSet::len);
        self.stats.endpoints.store(endpoints as u64, Relaxed);
        self.stats.flows_desired.store(n_desired as u64, Relaxed);
        self.stats.reconciles.fetch_add(1, Relaxed);
        let Some(conn) = self.conn.as_mut() else {
            self.stats.export();
            return Ok(None);
        };
        let mut read = None;
        let changes = match self.desired.as_ref() {
            Some(desired) if read_back => {
                let mut rb = ReadBack::new(desired, &self.tables);
                conn.dump_flows_each(|part| rb.add_stats(&part)).await?;
                read = Some(rb.read());
                rb.finish()
            }
            Some(desired) => changes(desired, &self.installed),
            None => Changes::default(),
        };
        let n = changes.len() as u64;
        let (n_add, n_delete) = (changes.add.len(), changes.delete.len());
        if !changes.is_empty() {
            let sent = conn.bundle(changes.messages()).await;
            drop(changes);
            if let Err(e) = sent {
                // Whatever happened, trust only what the switch says.
                tracing::warn!("bundle failed: {e}; reading the switch's flows again");
                self.stats.flow_mods.fetch_add(n, Relaxed);
                let mut installed = FlowSet::default();
                let tables = &self.tables;
                conn.dump_flows_each(|part| add_stats(&mut installed, &part, tables)).await?;
                self.installed = installed;
                return Err(e.into());
            }
            self.stats.bundles.fetch_add(1, Relaxed);
        } else {
            self.stats.noop_reconciles.fetch_add(1, Relaxed);
        }
        // The switch now holds exactly the desired flows.
        if let Some(desired) = self.desired.take() {
            self.installed = desired;
        }
        self.desired_is_installed = true;
        self.stats.flow_mods.fetch_add(n, Relaxed);
        self.stats.last_flow_mods.store(n, Relaxed);
        self.stats.flows_installed.store(self.installed.len() as u64, Relaxed);
        let took = start.elapsed();
        self.stats.last_reconcile_us.store(took.as_micros() as u64, Relaxed);
        metrics::histogram!("ovsnet_agent_reconcile_seconds").record(took.as_secs_f64());
        self.stats.export();
        if self.opts.print_reconciles {
            println!(
                "reconcile ({why}): endpoints={} desired={} installed={} sent={} (add {}, delete {}) in {:.3}s",
                endpoints,
                n_desired,
                self.installed.len(),
                n,
                n_add,
                n_delete,
                took.as_secs_f64()
            );
        }
        tracing::info!(why, sent = n, desired = n_desired, "reconciled");
        if n > 1000 && !read_back {
            release_memory();
        }
        Ok(read)
    }

    /// A new switch connection: handshake, read the flows back, reconcile.
    async fn connected(&mut self, io: Box<dyn Io>) -> Result<(), AgentError> {
        let start = Instant::now();
        let wake = self.switch_mgmt_socket();
        let mut poke = None;
        let conn = OfConn::handshake_then(io, self.stats.clone(), self.opts.switch_timeout, || {
            poke = wake_switch(wake.as_deref());
        })
        .await;
        if let Some(poke) = poke {
            close_after_hello(poke).await;
        }
        let conn = conn?;
        tracing::info!(dpid = format!("{:016x}", conn.features.datapath_id), "switch connected");
        self.conn = Some(conn);
        self.stats.switch_connected.store(1, Relaxed);
        let r = self.reconcile_with("switch connected", true).await;
        let took = start.elapsed();
        // A read-back and perhaps a first install were big transient work
        // (given back before saying ready, so the memory then is steady).
        release_memory();
        memory_step("switch connected and made equal");
        if self.opts.print_reconciles
            && let Ok(read_back) = &r
        {
            println!(
                "switch ready: read back {} flows, equal to the desired flows {:.3}s after it connected",
                read_back.unwrap_or(0),
                took.as_secs_f64()
            );
        }
        // Counted once the first reconcile is done: "connected" means
        // "connected and made equal".
        self.stats.switch_connects.fetch_add(1, Relaxed);
        r.map(|_| ())
    }

    /// The bridge's OpenFlow management socket (`RUNDIR/BRIDGE.mgmt`), if
    /// it is found: in `$OVS_RUNDIR` or the packaged run directory, or next
    /// to the database's unix socket.
    fn switch_mgmt_socket(&self) -> Option<PathBuf> {
        let name = format!("{}.mgmt", self.opts.state.bridge);
        let beside_db = self
            .opts
            .db
            .split(',')
            .find_map(|r| r.strip_prefix("unix:"))
            .and_then(|p| Path::new(p).parent().map(|d| d.join(&name)));
        std::iter::once(ovs_rundir().join(&name)).chain(beside_db).find(|p| p.exists())
    }

    fn disconnected(&mut self, why: &str) {
        if self.conn.take().is_some() {
            tracing::warn!("switch disconnected: {why}");
        }
        self.stats.switch_connected.store(0, Relaxed);
        self.stats.export();
    }
}

/// Wakes `ovs-vswitchd`'s main loop by connecting to the bridge's
/// management socket (and closing at once).
///
/// Why: OVS 3.1 does not wait on a controller connection that it opened
/// itself until the OpenFlow handshake is done (`ofservice_wait` in
/// `ofproto/connmgr.c` only waits on listening services), so our HELLO sat
/// unread until something else woke the switch, the revalidators' round
/// every 500 ms: every connection took 0.5 s before its first reply. A
/// connection to a listening socket it does wait on wakes it, and the same
/// loop reads our HELLO. Best effort: without the socket, nothing is lost
/// but that half second.
fn wake_switch(mgmt: Option<&Path>) -> Option<std::os::unix::net::UnixStream> {
    use std::io::Write;
    let path = mgmt?;
    // Our HELLO too, so that the switch sees a complete handshake and then
    // an orderly close (an end of stream during the handshake is a reset
    // to OVS, logged as a warning).
    let hello = crate::openflow::Message::Hello(crate::openflow::Hello::of13()).encode(1);
    match std::os::unix::net::UnixStream::connect(path).and_then(|mut s| s.write_all(&hello).map(|()| s)) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::debug!("wake the switch through {}: {e}", path.display());
            None
        }
    }
}

/// Closes the connection [`wake_switch`] made in an orderly way: our side
/// is shut down first and what the switch sent is read until it closes its
/// side (at most 200 ms), so it sees an end of stream (logged at debug
/// level), never a reset.
async fn close_after_hello(poke: std::os::unix::net::UnixStream) {
    use tokio::io::AsyncReadExt;
    let Ok(()) = poke.set_nonblocking(true) else { return };
    let _ = poke.shutdown(std::net::Shutdown::Write);
    let Ok(mut poke) = tokio::net::UnixStream::from_std(poke) else { return };
    let drain = async {
        let mut buf = [0u8; 512];
        while poke.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    };
    let _ = tokio::time::timeout(Duration::from_millis(200), drain).await;
}

/// Runs the agent until `shutdown` completes.
pub async fn run(
    opts: AgentOptions,
    stats: Arc<Stats>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    let pipeline = Pipeline::builtin()?;
    let listener = Listener::bind(&opts.listen).await?;
    let client = Client::connect(&opts.db, &opts.connect).await?;
    stats.db_connected.store(1, Relaxed);
    set_controller(&client, &opts.state.bridge, &opts.listen.target()).await?;
    let schema = client.get_schema(crate::vswitch::DB).await?;
    let reqs = monitor_requests();
    let mut monitor = client.monitor_cond(crate::vswitch::DB, &reqs).await?;
    let mut cache = Cache::new(schema);
    // The snapshot's rows become the cache's (no second copy).
    cache.apply_owned(std::mem::take(&mut monitor.initial)).map_err(ovsdb::Error::from)?;
    memory_step("initial database snapshot in the cache");

    let (link, mut watch) = match &opts.cluster {
        None => (None, None),
        Some(c) => {
            let (link, watch) = join_cluster(&client, &opts.state.bridge, &opts.connect, c).await?;
            (Some(link), Some(watch))
        }
    };
    let mut agent = Agent {
        cluster: link,
        tables: pipeline.table_ids(),
        pipeline,
        opts,
        cache,
        stats,
        conn: None,
        installed: FlowSet::default(),
        desired: None,
        desired_is_installed: false,
        endpoints: 0,
    };
    agent.reconcile("start").await?;
    release_memory();
    memory_step("desired flows computed");
    let echo = agent.opts.echo_interval;
    let mut tick = tokio::time::interval(echo.min(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heartbeat = Instant::now();
    tokio::pin!(shutdown);
    loop {
        enum Ev {
            Stop,
            Accept(std::io::Result<Box<dyn Io>>),
            Switch(Result<(crate::openflow::Header, crate::openflow::Message), OfError>),
            Db(Option<MonitorEvent>),
            Cluster(Result<Arc<crate::cluster::ClusterState>, crate::cluster::ClusterError>),
            Tick,
        }
        let ev = tokio::select! {
            _ = &mut shutdown => Ev::Stop,
            a = listener.accept() => Ev::Accept(a),
            m = async { match agent.conn.as_mut() { Some(c) => c.recv().await, None => std::future::pending().await } } => Ev::Switch(m),
            e = monitor.next() => Ev::Db(e),
            c = async { match watch.as_mut() { Some(w) => w.changed().await, None => std::future::pending().await } } => Ev::Cluster(c),
            _ = tick.tick() => Ev::Tick,
        };
        match ev {
            Ev::Stop => break,
            Ev::Accept(Ok(io)) => {
                agent.disconnected("a new connection replaces it");
                if let Err(e) = agent.connected(io).await {
                    tracing::warn!("switch connection: {e}");
                    agent.disconnected(&e.to_string());
                }
            }
            Ev::Accept(Err(e)) => tracing::warn!("accept: {e}"),
            Ev::Switch(Ok((h, m))) => {
                if let Some(c) = agent.conn.as_mut()
                    && let Err(e) = c.unsolicited(&h, m).await
                {
                    agent.disconnected(&e.to_string());
                }
            }
            Ev::Switch(Err(e)) => agent.disconnected(&e.to_string()),
            Ev::Db(None) => {
                agent.stats.db_connected.store(0, Relaxed);
                return Err(AgentError::Ovsdb(ovsdb::Error::Disconnected));
            }
            Ev::Db(Some(ev)) => {
                // Take every change already queued, then reconcile once.
                let mut next = Some(ev);
                let mut resynced = false;
                while let Some(ev) = next {
                    match ev {
                        MonitorEvent::Update(u) => agent.cache.apply_owned(u).map_err(ovsdb::Error::from)?,
                        MonitorEvent::Resync(u) => {
                            agent.cache.clear();
                            agent.cache.apply_owned(u).map_err(ovsdb::Error::from)?;
                            resynced = true;
                        }
                    }
                    next = monitor.try_next();
                }
                agent.stats.db_connected.store(1, Relaxed);
                if agent.desired_is_installed {
                    // The mirror of the switch stays; the desired set is recomputed.
                    agent.desired_is_installed = false;
                }
                agent.desired = None;
                if resynced {
                    tracing::info!("database reconnected; resynced");
                    // The database may have been replaced: check the controller.
                    if let Err(e) = set_controller(&client, &agent.opts.state.bridge, &agent.opts.listen.target()).await
                    {
                        tracing::warn!("set controller after resync: {e}");
                    }
                }
                let why = if resynced { "database resync" } else { "database change" };
                if let Err(e) = agent.reconcile(why).await {
                    tracing::warn!("reconcile: {e}");
                    if matches!(e, AgentError::Switch(_)) {
                        agent.disconnected(&e.to_string());
                    }
                }
            }
            Ev::Cluster(Ok(state)) => {
                if let Some(c) = agent.cluster.as_mut() {
                    c.state = state;
                }
                agent.desired_is_installed = false;
                agent.desired = None;
                if let Err(e) = agent.reconcile("cluster change").await {
                    tracing::warn!("reconcile: {e}");
                    if matches!(e, AgentError::Switch(_)) {
                        agent.disconnected(&e.to_string());
                    }
                }
            }
            Ev::Cluster(Err(e)) => {
                // The flows stay as computed from the last state seen.
                tracing::warn!("cluster database: {e}; keeping the last known remote state");
                watch = None;
            }
            Ev::Tick => {
                if let Some(c) = agent.cluster.as_ref()
                    && last_heartbeat.elapsed() >= c.opts.heartbeat
                {
                    last_heartbeat = Instant::now();
                    let db = c.db.clone();
                    let spec = c.opts.host_spec();
                    tokio::spawn(async move {
                        match db.heartbeat(&spec.name).await {
                            Ok(()) => {}
                            // Removed (`ovsnet host del --force`) while this
                            // agent runs: register again; the endpoints
                            // removed with it are published again by the
                            // reconcile their removal caused.
                            Err(crate::cluster::ClusterError::NoHost(_)) => match db.register_host(&spec).await {
                                Ok(_) => tracing::info!(
                                    "host {} was removed from the cluster; registered it again",
                                    spec.name
                                ),
                                Err(e) => tracing::warn!("register host again: {e}"),
                            },
                            Err(e) => tracing::warn!("heartbeat: {e}"),
                        }
                    });
                }
                agent.stats.db_connected.store(u64::from(client.connected_remote().is_some()), Relaxed);
                agent.stats.export();
                if let Some(c) = agent.conn.as_mut() {
                    if let Some((_, sent)) = c.echo_pending
                        && sent.elapsed() > echo * 2
                    {
                        agent.disconnected("no echo reply");
                    } else if c.echo_pending.is_none() && c.last_rx.elapsed() >= echo {
                        if let Err(e) = c.probe().await {
                            agent.disconnected(&e.to_string());
                        }
                    }
                }
            }
        }
    }
    if agent.conn.take().is_some() {
        tracing::info!("agent stopping; the switch keeps its flows (fail_mode=secure)");
    }
    agent.stats.switch_connected.store(0, Relaxed);
    if let Listen::Unix(p) = &agent.opts.listen {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}
