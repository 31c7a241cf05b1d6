//! The per-host agent: it makes the bridge's controller point at itself,
//! serves OpenFlow 1.3 to `ovs-vswitchd`, monitors OVSDB for the endpoints
//! `ovsnet attach` recorded, and keeps the switch's flows equal to what
//! the [`crate::pipeline`] computes from them.
//!
//! - [`dbstate`]: database rows to pipeline state (pure);
//! - [`reconcile`]: desired and installed flows, and what to send on each
//!   event (pure);
//! - [`ofconn`]: one OpenFlow connection (handshake, echo, flow
//!   read-back, bundles) over the codec's framing
//!   ([`crate::openflow::stream`]);
//! - [`cluster`] (pure) and [`publish`]: cluster mode, and this host's
//!   endpoints in the cluster database, and the answers to probes of its
//!   liveness;
//! - [`dns`]: DNS at each network's gateway (packet-ins of the `dns`
//!   table answered with packet-outs; other names asked of the host's
//!   resolvers);
//! - this module: the loop that dispatches events to them, and [`Stats`]
//!   (also exported as Prometheus metrics).
//!
//! Reconcile: on every switch connection the agent reads the flows back,
//! and on every change it computes desired flows, diffs them against its
//! mirror of the switch, and sends the difference in one atomic bundle.
//! Nothing changed, nothing sent. On SIGTERM it just closes: with
//! `fail_mode=secure` the switch keeps every flow, as it does on SIGKILL.
//!
//! Under systemd (`Type=notify`, `NOTIFY_SOCKET` set) it says `READY=1`
//! once, the first time the switch holds the desired flows, so that units
//! ordered after it (Docker's) start with the network in place; `STATUS=`
//! lines follow the switch connection, and `STOPPING=1` the stop. Without
//! `NOTIFY_SOCKET` nothing is sent.

pub mod cluster;
pub mod dbstate;
pub mod dns;
pub mod egress;
pub mod ofconn;
pub mod prime;
pub mod publish;
pub mod reconcile;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, UnixListener};

use crate::ovsdb::{self, Cache, Client, ConnectOptions, MonitorEvent, MonitorRequest};
use crate::pipeline::{FlowSet, Pipeline, PipelineError, desired_flows};
use crate::vswitch::controller::{ovs_rundir, set_controller};
pub use dbstate::{Claims, HostAccess, NetworkOpt, StateOptions, state_from_cache, state_from_cache_with};
use ofconn::{Io, OfConn, OfError};
use publish::Publisher;
use reconcile::{Plan, Reconciler};

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
    /// Told, after each reconcile with the switch, the ports of the local
    /// endpoints whose flows the switch now holds (the Docker driver's
    /// `Join` waits on it before it answers).
    pub programmed: Option<tokio::sync::watch::Sender<std::collections::BTreeSet<String>>>,
    /// Interfaces whose `external_ids` the Docker driver has decided
    /// before it writes them (a claimed spare port): programmed at once,
    /// so the flows are in before the switch's database changes, and
    /// forgotten once the database has them.
    pub claims: Option<tokio::sync::watch::Receiver<Claims>>,
    /// Endpoints the Docker driver in this process holds before their
    /// port exists: the first look after a start does not take their rows
    /// for stale.
    pub held: crate::cluster::HeldEndpoints,
    /// The namespace ovs-vswitchd runs in (where the bridge's internal
    /// port, the way out, is); `None`: this one.
    pub switch_netns: Option<String>,
    /// Cluster mode: DNS answered at each network's gateway (`None`: off).
    pub dns: Option<DnsOptions>,
}

/// How the agent answers DNS.
#[derive(Debug, Clone)]
pub struct DnsOptions {
    /// Queries per second each port may send to the agent (its meter).
    pub rate: u32,
    /// Where the host's resolvers are listed (read at each forwarded query).
    pub resolv_conf: PathBuf,
}

impl Default for DnsOptions {
    fn default() -> Self {
        DnsOptions { rate: dns::DEFAULT_RATE, resolv_conf: PathBuf::from("/etc/resolv.conf") }
    }
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
    /// How soon this agent promises to answer a probe of its liveness
    /// (`host del` waits that long and a second).
    pub probe_timeout: Duration,
}

impl ClusterOptions {
    /// The Host row this agent registers (again, if it is removed while the
    /// agent runs).
    pub fn host_spec(&self) -> crate::cluster::HostSpec {
        crate::cluster::HostSpec {
            name: self.host_name.clone(),
            underlay_ip: self.underlay_ip,
            tunnel_types: self.tunnels.iter().map(|t| t.as_str().to_owned()).collect(),
            probe_timeout_ms: self.probe_timeout.as_millis() as u64,
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
            programmed: None,
            claims: None,
            held: Default::default(),
            switch_netns: None,
            dns: Some(DnsOptions::default()),
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
                let l = UnixListener::bind(p).map_err(err)?;
                // Only root (ovs-vswitchd) may connect, whatever the umask.
                std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o600)).map_err(err)?;
                Ok(Listener::Unix(l))
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
    held: crate::cluster::HeldEndpoints,
) -> Result<(ClusterView, Publisher, crate::cluster::ClusterWatch), AgentError> {
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
    let view = ClusterView { opts: c.clone(), state: watch.state(), db: db.clone() };
    let mut publisher = Publisher::new(db, c.host_spec(), held);
    if watch.state().hosts.get(&c.host_name).is_some_and(|h| h.probe_timeout > 0) {
        publisher.answer_probes().await?;
    }
    Ok((view, publisher, watch))
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

/// Cluster mode: who this host is, and the cluster database's last state
/// seen (kept when the database is unreachable).
struct ClusterView {
    opts: ClusterOptions,
    state: Arc<crate::cluster::ClusterState>,
    db: crate::cluster::ClusterDb,
}

/// The Endpoint rows of the networks this host has endpoints in, every
/// host's (what the DNS answers from), followed by a task that sends
/// each new state to the loop, tagged with its generation.
struct NamesView {
    networks: std::collections::BTreeSet<crate::ovsdb::Uuid>,
    generation: u64,
    task: Option<tokio::task::JoinHandle<()>>,
    endpoints: Arc<crate::cluster::ClusterState>,
    tx: tokio::sync::mpsc::Sender<NamesUpdate>,
}

/// A names watch's new state: (generation, state).
type NamesUpdate = (u64, Arc<crate::cluster::ClusterState>);

impl NamesView {
    /// Follows the Endpoint rows of `networks` from now on: the first
    /// snapshot is read before this returns (so the names of a network are
    /// there before its first local endpoint's flows, and its first
    /// query), then a task sends each change. The old watch's late states
    /// are ignored by their generation. A watch that fails or ends is
    /// started again after a second.
    async fn follow(
        &mut self,
        networks: std::collections::BTreeSet<crate::ovsdb::Uuid>,
        db: crate::cluster::ClusterDb,
    ) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        self.generation += 1;
        self.networks = networks.clone();
        let first = match db.watch_endpoints_of(&networks).await {
            Ok(w) => {
                self.endpoints = w.state();
                tracing::debug!(networks = ?networks, rows = self.endpoints.endpoints.len(), bad = ?self.endpoints.bad_rows, "names watch");
                Some(w)
            }
            Err(e) => {
                tracing::warn!("names of the local networks: {e}; trying again");
                None
            }
        };
        let (generation, tx) = (self.generation, self.tx.clone());
        self.task = Some(tokio::spawn(async move {
            let mut current = first;
            loop {
                let mut w = match current.take() {
                    Some(w) => w,
                    None => match db.watch_endpoints_of(&networks).await {
                        Ok(w) => {
                            if tx.send((generation, w.state())).await.is_err() {
                                return;
                            }
                            w
                        }
                        Err(e) => {
                            tracing::warn!("names of the local networks: {e}; trying again");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            continue;
                        }
                    },
                };
                while let Ok(s) = w.changed().await {
                    if tx.send((generation, s)).await.is_err() {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }));
    }
}

impl Drop for NamesView {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// What the agent's loop acts on.
enum Event {
    Stop,
    Accept(std::io::Result<Box<dyn Io>>),
    Switch(Result<(crate::openflow::Header, crate::openflow::Message), OfError>),
    Db(Option<MonitorEvent>),
    Cluster(Result<Arc<crate::cluster::ClusterState>, crate::cluster::ClusterError>),
    /// The driver's claims (`None`: the driver has gone).
    Claims(Option<Claims>),
    /// A forwarded DNS query's answer, ready to go out.
    DnsAnswer(dns::Outgoing),
    /// The names watch's new state.
    Names(NamesUpdate),
    Tick,
}

/// Why the switch's flows are reconciled.
enum Change {
    /// New desired flows.
    Desired(FlowSet),
    /// A new connection: read its flows back first.
    Connected,
}

/// The agent's loop state.
struct Agent {
    opts: AgentOptions,
    pipeline: Pipeline,
    client: Client,
    cache: Cache,
    stats: Arc<Stats>,
    conn: Option<OfConn>,
    /// Desired and installed flows.
    rec: Reconciler,
    endpoints: usize,
    cluster: Option<ClusterView>,
    /// Cluster mode: this host's endpoints in the cluster, and its
    /// answers to probes.
    publisher: Option<Publisher>,
    /// `READY=1` was sent to the service manager.
    ready_sent: bool,
    /// The ports of the local endpoints the desired flows are for.
    local_ports: std::collections::BTreeSet<String>,
    /// Where the desired flows may tunnel to, and to which of those this
    /// connection to the switch has sent a probe ([`prime`]).
    tunnel_dsts: std::collections::BTreeSet<(std::net::Ipv4Addr, u32)>,
    primed: std::collections::BTreeSet<(std::net::Ipv4Addr, u32)>,
    /// The driver's claims not yet in the database ([`AgentOptions::claims`]).
    claimed: Claims,
    /// Cluster mode with an uplink: the host's kernel side of egress.
    egress: Option<egress::HostEgress>,
    /// Cluster mode: the names answered at each network's gateway, and
    /// the watch of the rows they come from.
    dns: Option<dns::Dns>,
    names: Option<NamesView>,
    /// The meters the desired flows use (one per port that may ask DNS),
    /// and the ones this connection's switch holds.
    meters_desired: std::collections::BTreeSet<u32>,
    meters_installed: std::collections::BTreeSet<u32>,
    /// The services' select groups the desired flows use, and what this
    /// connection's switch holds (`None`: a group it had when it
    /// connected, its buckets not compared).
    groups_desired: std::collections::BTreeMap<u32, Vec<crate::openflow::message::Bucket>>,
    groups_installed: std::collections::BTreeMap<u32, Option<Vec<crate::openflow::message::Bucket>>>,
}

/// What [`Agent::start`] gives the loop.
type Started = (
    Agent,
    Listener,
    ovsdb::Monitor,
    Option<crate::cluster::ClusterWatch>,
    Option<tokio::sync::mpsc::Receiver<dns::Outgoing>>,
    Option<tokio::sync::mpsc::Receiver<NamesUpdate>>,
);

impl Agent {
    /// Connects to the database, points the bridge at us, reads the
    /// database, joins the cluster, and computes the desired flows.
    async fn start(opts: AgentOptions, stats: Arc<Stats>) -> Result<Started, AgentError> {
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
        let (cluster, publisher, watch) = match &opts.cluster {
            None => (None, None, None),
            Some(c) => {
                let (view, publisher, watch) =
                    join_cluster(&client, &opts.state.bridge, &opts.connect, c, opts.held.clone()).await?;
                (Some(view), Some(publisher), Some(watch))
            }
        };
        let (dns, dns_rx, names, names_rx) = match (&cluster, &opts.dns) {
            (Some(_), Some(d)) => {
                let (dns, rx) = dns::Dns::new(d.resolv_conf.clone(), opts.switch_netns.clone());
                let (tx, names_rx) = tokio::sync::mpsc::channel(16);
                let names = NamesView {
                    networks: Default::default(),
                    generation: 0,
                    task: None,
                    endpoints: Default::default(),
                    tx,
                };
                (Some(dns), Some(rx), Some(names), Some(names_rx))
            }
            _ => (None, None, None, None),
        };
        let mut agent = Agent {
            dns,
            names,
            meters_desired: Default::default(),
            meters_installed: Default::default(),
            groups_desired: Default::default(),
            groups_installed: Default::default(),
            rec: Reconciler::new(pipeline.table_ids(), FlowSet::default()),
            pipeline,
            opts,
            client,
            cache,
            stats,
            conn: None,
            endpoints: 0,
            cluster,
            publisher,
            ready_sent: false,
            local_ports: Default::default(),
            tunnel_dsts: Default::default(),
            primed: Default::default(),
            claimed: Claims::new(),
            egress: None,
        };
        if agent.cluster.is_some() && agent.opts.state.uplink {
            agent.egress = Some(egress::HostEgress::new(&agent.opts.state.bridge, agent.opts.switch_netns.clone()));
        }
        agent.changed("start").await?;
        release_memory();
        memory_step("desired flows computed");
        Ok((agent, listener, monitor, watch, dns_rx, names_rx))
    }

    /// The pipeline state: the bridge's endpoints from OVSDB, and in
    /// cluster mode the cluster's networks and remote hosts.
    fn state(&self) -> (crate::pipeline::State, Vec<String>) {
        match &self.cluster {
            None => state_from_cache_with(&self.cache, &self.opts.state, &self.claimed),
            Some(c) => {
                let mut so = self.opts.state.clone();
                let mut nets = cluster::cluster_networks(&c.state);
                nets.retain(|n| !so.networks.iter().any(|o| o.name == n.name));
                so.networks.extend(nets);
                let (mut st, mut w) = state_from_cache_with(&self.cache, &so, &self.claimed);
                w.extend(cluster::apply_remote(&mut st, &c.state, &c.opts.host_name, &c.opts.tunnels));
                st.routers = cluster::cluster_routers(&c.state);
                st.dns = self.dns.is_some();
                if let Some(n) = &self.names {
                    st.services = cluster::cluster_services(&c.state, &n.endpoints.endpoints, &st.local_endpoints);
                }
                (st, w)
            }
        }
    }

    /// The database or the cluster changed: the desired flows are
    /// computed again (once per change, so a switch that reconnects only
    /// costs a read-back and a diff), the local endpoints go to the
    /// publisher, and the switch is made equal.
    async fn changed(&mut self, why: &str) -> Result<(), AgentError> {
        let t0 = Instant::now();
        self.forget_landed_claims();
        let (mut state, warnings) = self.state();
        // The names (and services' backends) of the networks this host
        // has endpoints in; a network new here is read before its flows.
        if let (Some(d), Some(c), Some(n)) = (self.dns.as_mut(), self.cluster.as_ref(), self.names.as_mut()) {
            let networks = cluster::local_networks(&c.state, &state.local_endpoints);
            if networks != n.networks {
                n.follow(networks, c.db.clone()).await;
                state.services = cluster::cluster_services(&c.state, &n.endpoints.endpoints, &state.local_endpoints);
            }
            d.names = cluster::cluster_names(&c.state, &n.endpoints.endpoints, &state.local_endpoints);
            tracing::debug!(
                networks = d.names.by_vni.len(),
                names = d.names.by_vni.values().map(|n| n.len()).sum::<usize>(),
                "DNS names"
            );
            d.local = state.local_endpoints.clone();
            d.ports =
                state.local_endpoints.iter().filter_map(|e| Some((e.ofport, state.network(&e.network)?.vni))).collect();
        }
        let d = desired_flows(&self.pipeline, &state)?;
        for w in warnings.iter().chain(&d.warnings) {
            tracing::debug!("{w}");
        }
        self.endpoints = state.local_endpoints.len();
        self.local_ports = state.local_endpoints.iter().map(|e| e.id.clone()).collect();
        self.tunnel_dsts = prime::destinations(&state);
        if let (Some(p), Some(c)) = (self.publisher.as_mut(), self.cluster.as_ref()) {
            let present = cluster::recorded_endpoints(&self.cache, &self.opts.state.bridge);
            p.sync(&state.local_endpoints, present, &c.state);
        }
        self.meters_desired = crate::pipeline::dns_meters(&state).into_iter().collect();
        self.groups_desired = crate::pipeline::service_groups(&self.pipeline, &state)?;
        let (host_nat, nat_warnings) = egress::host_nat(&state);
        drop(state);
        let computed = t0.elapsed();
        self.reconcile(why, Change::Desired(packed(d.flows))).await?;
        if let Some(e) = self.egress.as_mut()
            && let Err(err) = e.sync(host_nat, &nat_warnings).await
        {
            // Tried again at the next change.
            tracing::warn!("egress through the host: {err}");
        }
        // Where a change's time goes: computing the desired flows, and
        // the switch taking the difference (the bundle and its reply).
        tracing::debug!(
            why,
            compute_us = computed.as_micros() as u64,
            switch_us = (t0.elapsed() - computed).as_micros() as u64,
            "change timing"
        );
        self.prime_tunnels().await;
        Ok(())
    }

    /// Sends a probe to each tunnel destination this connection has not
    /// probed yet ([`prime`]); one that went away is probed again if it
    /// comes back.
    async fn prime_tunnels(&mut self) {
        self.primed.retain(|d| self.tunnel_dsts.contains(d));
        let Some(conn) = self.conn.as_mut() else { return };
        for &(dst, port) in self.tunnel_dsts.difference(&self.primed) {
            let xid = conn.xid();
            if let Err(e) = conn.send(&crate::openflow::Message::PacketOut(prime::probe(dst, port)), xid).await {
                tracing::warn!("tunnel probe to {dst}: {e}");
                return;
            }
            tracing::debug!(%dst, port, "tunnel probe sent");
        }
        self.primed.clone_from(&self.tunnel_dsts);
    }

    /// Claims the database now has (or whose port is gone) are forgotten.
    fn forget_landed_claims(&mut self) {
        if self.claimed.is_empty() {
            return;
        }
        let ifaces = crate::vswitch::model::bridge_interfaces(&self.cache, &self.opts.state.bridge).unwrap_or_default();
        self.claimed.retain(|name, ids| ifaces.iter().any(|i| i.name == *name && i.external_ids != *ids));
    }

    /// New claims from the driver: programmed now.
    async fn on_claims(&mut self, claims: Claims) {
        let mut new = false;
        for (name, ids) in claims {
            if self.claimed.get(&name) != Some(&ids) {
                self.claimed.insert(name, ids);
                new = true;
            }
        }
        if new {
            self.after_change("driver claim").await;
        }
    }

    /// Tells whoever waits which endpoints' flows the switch holds.
    fn tell_programmed(&self) {
        if let Some(tx) = &self.opts.programmed {
            tx.send_if_modified(|v| {
                let changed = *v != self.local_ports;
                if changed {
                    v.clone_from(&self.local_ports);
                }
                changed
            });
        }
    }

    /// Has the reconciler compare the desired flows with the switch's and
    /// sends the difference in one bundle. Returns how many flows were
    /// read back (a new connection).
    async fn reconcile(&mut self, why: &str, change: Change) -> Result<Option<usize>, AgentError> {
        let start = Instant::now();
        let read_back = matches!(change, Change::Connected);
        let n_desired = match &change {
            Change::Desired(flows) => flows.len(),
            Change::Connected => self.rec.desired().len(),
        };
        let endpoints = self.endpoints;
        self.stats.endpoints.store(endpoints as u64, Relaxed);
        self.stats.flows_desired.store(n_desired as u64, Relaxed);
        self.stats.reconciles.fetch_add(1, Relaxed);
        if let Change::Connected = change
            && let Some(conn) = self.conn.as_mut()
        {
            self.meters_installed = conn.read_meters().await?.into_iter().map(|m| m.meter_id).collect();
            self.groups_installed = conn.read_group_ids().await?.into_iter().map(|g| (g, None)).collect();
        }
        self.add_meters().await?;
        self.add_groups().await?;
        let sent = match change {
            Change::Desired(flows) => match (self.rec.desired_changed(flows), self.conn.as_mut()) {
                (Some(plan), Some(conn)) => send_plan(conn, plan).await,
                (None, Some(_)) => {
                    // Nothing to send: the switch holds them already.
                    self.tell_programmed();
                    self.stats.export();
                    return Ok(None);
                }
                _ => {
                    self.stats.export();
                    return Ok(None);
                }
            },
            Change::Connected => {
                let Some(conn) = self.conn.as_mut() else { return Ok(None) };
                let (request, mut rb) = self.rec.switch_connected();
                conn.read_flows(&request, |part| rb.part(&part)).await?;
                send_plan(conn, rb.finish()).await
            }
        };
        if let Err(e) = sent {
            // Whatever happened, trust only what the switch says.
            tracing::warn!("bundle failed: {e}; reading the switch's flows again");
            let refused = self.rec.bundle_failed();
            self.stats.flow_mods.fetch_add(refused.flow_mods as u64, Relaxed);
            if let Some(conn) = self.conn.as_mut() {
                let rec = &mut self.rec;
                conn.read_flows(&refused.request, |part| rec.reread(&part)).await?;
            }
            return Err(e.into());
        }
        let report = self.rec.committed();
        self.remove_meters().await?;
        self.remove_groups().await?;
        self.tell_programmed();
        let n = report.sent.flow_mods as u64;
        if n > 0 {
            self.stats.bundles.fetch_add(1, Relaxed);
        } else {
            self.stats.noop_reconciles.fetch_add(1, Relaxed);
        }
        self.stats.flow_mods.fetch_add(n, Relaxed);
        self.stats.last_flow_mods.store(n, Relaxed);
        self.stats.flows_installed.store(report.installed as u64, Relaxed);
        let took = start.elapsed();
        self.stats.last_reconcile_us.store(took.as_micros() as u64, Relaxed);
        metrics::histogram!("ovsnet_agent_reconcile_seconds").record(took.as_secs_f64());
        self.stats.export();
        if self.opts.print_reconciles {
            // A closed standard output must not stop the agent.
            let _ = writeln!(
                std::io::stdout().lock(),
                "reconcile ({why}): endpoints={} desired={} installed={} sent={} (add {}, delete {}) in {:.3}s",
                endpoints,
                n_desired,
                report.installed,
                n,
                report.sent.adds,
                report.sent.deletes,
                took.as_secs_f64()
            );
        }
        tracing::info!(why, sent = n, desired = n_desired, "reconciled");
        if n > 1000 && !read_back {
            release_memory();
        }
        Ok(report.sent.read_back)
    }

    /// Adds the desired meters the switch lacks (before the flows that
    /// use them).
    async fn add_meters(&mut self) -> Result<(), OfError> {
        let (Some(conn), Some(opts)) = (self.conn.as_mut(), self.opts.dns.as_ref()) else { return Ok(()) };
        for &id in self.meters_desired.difference(&self.meters_installed) {
            conn.send_mod(dns::meter_mod(dns::OFPMC_ADD, id, opts.rate)).await?;
        }
        self.meters_installed.extend(self.meters_desired.iter().copied());
        Ok(())
    }

    /// Adds the services' groups the switch lacks and sets the buckets of
    /// those that changed (before the flows that use them).
    async fn add_groups(&mut self) -> Result<(), OfError> {
        use crate::openflow::message::GroupMod;
        const OFPGC_ADD: u16 = 0;
        const OFPGC_MODIFY: u16 = 1;
        const OFPGT_SELECT: u8 = 1;
        let Some(conn) = self.conn.as_mut() else { return Ok(()) };
        for (&id, buckets) in &self.groups_desired {
            let command = match self.groups_installed.get(&id) {
                Some(Some(b)) if b == buckets => continue,
                Some(_) => OFPGC_MODIFY,
                None => OFPGC_ADD,
            };
            let m = GroupMod { command, group_type: OFPGT_SELECT, group_id: id, buckets: buckets.clone() };
            conn.send_mod(crate::openflow::Message::GroupMod(m)).await?;
            self.groups_installed.insert(id, Some(buckets.clone()));
        }
        Ok(())
    }

    /// Deletes the groups no flow uses any more (after the flows went).
    async fn remove_groups(&mut self) -> Result<(), OfError> {
        use crate::openflow::message::GroupMod;
        const OFPGC_DELETE: u16 = 2;
        let Some(conn) = self.conn.as_mut() else { return Ok(()) };
        let stale: Vec<u32> =
            self.groups_installed.keys().filter(|g| !self.groups_desired.contains_key(g)).copied().collect();
        for id in stale {
            let m = GroupMod { command: OFPGC_DELETE, group_type: 0, group_id: id, buckets: Vec::new() };
            conn.send_mod(crate::openflow::Message::GroupMod(m)).await?;
            self.groups_installed.remove(&id);
        }
        Ok(())
    }

    /// Deletes the meters no flow uses any more (after the flows went).
    async fn remove_meters(&mut self) -> Result<(), OfError> {
        let Some(conn) = self.conn.as_mut() else { return Ok(()) };
        let stale: Vec<u32> = self.meters_installed.difference(&self.meters_desired).copied().collect();
        for id in stale {
            conn.send_mod(dns::meter_mod(dns::OFPMC_DELETE, id, 0)).await?;
            self.meters_installed.remove(&id);
        }
        Ok(())
    }

    /// A packet-in: a DNS query of the `dns` table is answered; anything
    /// else is counted.
    async fn on_packet_in(&mut self, p: &crate::openflow::message::PacketIn) {
        let answer = match self.dns.as_mut() {
            Some(d) if p.table_id == dns::DNS_TABLE => d.on_packet_in(p),
            _ => None,
        };
        if let (Some(m), Some(c)) = (answer, self.conn.as_mut()) {
            let xid = c.xid();
            if let Err(e) = c.send(&m, xid).await {
                self.disconnected(&e.to_string());
            }
        }
    }

    /// The names watch has a new state: the DNS answers from it at once
    /// (no flow depends on other hosts' names).
    async fn on_names(&mut self, (generation, endpoints): NamesUpdate) {
        let (Some(n), Some(d), Some(c)) = (self.names.as_mut(), self.dns.as_mut(), self.cluster.as_ref()) else {
            return;
        };
        tracing::debug!(generation, current = n.generation, rows = endpoints.endpoints.len(), "names change");
        if generation != n.generation {
            return;
        }
        n.endpoints = endpoints;
        d.names = cluster::cluster_names(&c.state, &n.endpoints.endpoints, &d.local);
        // Services' backends follow these rows: their groups may change.
        if c.state.services.values().any(|s| d.local.iter().any(|e| e.network == s.network)) {
            self.after_change("names change").await;
        }
    }

    /// A forwarded query's answer.
    async fn on_dns_answer(&mut self, out: dns::Outgoing) {
        if let Some(c) = self.conn.as_mut() {
            let xid = c.xid();
            if let Err(e) = c.send(&dns::packet_out(out.port, out.frame), xid).await {
                self.disconnected(&e.to_string());
            }
        }
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
        self.primed.clear();
        self.stats.switch_connected.store(1, Relaxed);
        let r = self.reconcile("switch connected", Change::Connected).await;
        if r.is_ok() {
            self.prime_tunnels().await;
        }
        let took = start.elapsed();
        // A read-back and perhaps a first install were big transient work
        // (given back before saying ready, so the memory then is steady).
        release_memory();
        memory_step("switch connected and made equal");
        if self.opts.print_reconciles
            && let Ok(read_back) = &r
        {
            let _ = writeln!(
                std::io::stdout().lock(),
                "switch ready: read back {} flows, equal to the desired flows {:.3}s after it connected",
                read_back.unwrap_or(0),
                took.as_secs_f64()
            );
        }
        // Counted once the first reconcile is done: "connected" means
        // "connected and made equal".
        self.stats.switch_connects.fetch_add(1, Relaxed);
        if r.is_ok() {
            let status =
                format!("switch holds the desired flows ({} installed)", self.stats.flows_installed.load(Relaxed));
            if self.ready_sent {
                notify(&[sd_notify::NotifyState::Status(&status)]);
            } else {
                notify(&[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status(&status)]);
                self.ready_sent = true;
            }
        }
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
            notify(&[sd_notify::NotifyState::Status(&format!("switch disconnected: {why}; waiting for it"))]);
        }
        self.rec.disconnected();
        self.meters_installed.clear();
        self.groups_installed.clear();
        self.stats.switch_connected.store(0, Relaxed);
        self.stats.export();
    }

    /// The next message from the switch (never, without one).
    async fn recv(&mut self) -> Result<(crate::openflow::Header, crate::openflow::Message), OfError> {
        match self.conn.as_mut() {
            Some(c) => c.recv().await,
            None => std::future::pending().await,
        }
    }

    async fn on_accept(&mut self, io: Box<dyn Io>) {
        self.disconnected("a new connection replaces it");
        if let Err(e) = self.connected(io).await {
            tracing::warn!("switch connection: {e}");
            self.disconnected(&e.to_string());
        }
    }

    async fn on_switch(&mut self, h: crate::openflow::Header, m: crate::openflow::Message) {
        if let crate::openflow::Message::PacketIn(p) = &m {
            self.on_packet_in(p).await;
        }
        if let Some(c) = self.conn.as_mut()
            && let Err(e) = c.unsolicited(&h, m).await
        {
            self.disconnected(&e.to_string());
        }
    }

    /// Database changes: every one already queued, then one reconcile.
    async fn on_db(&mut self, first: MonitorEvent, monitor: &mut ovsdb::Monitor) -> Result<(), AgentError> {
        let mut next = Some(first);
        let mut resynced = false;
        while let Some(ev) = next {
            match ev {
                MonitorEvent::Update(u) => self.cache.apply_owned(u).map_err(ovsdb::Error::from)?,
                MonitorEvent::Resync(u) => {
                    self.cache.clear();
                    self.cache.apply_owned(u).map_err(ovsdb::Error::from)?;
                    resynced = true;
                }
            }
            next = monitor.try_next();
        }
        self.stats.db_connected.store(1, Relaxed);
        if resynced {
            tracing::info!("database reconnected; resynced");
            // The database may have been replaced: check the controller.
            if let Err(e) = set_controller(&self.client, &self.opts.state.bridge, &self.opts.listen.target()).await {
                tracing::warn!("set controller after resync: {e}");
            }
        }
        self.after_change(if resynced { "database resync" } else { "database change" }).await;
        Ok(())
    }

    async fn on_cluster(&mut self, state: Arc<crate::cluster::ClusterState>) {
        if let Some(c) = self.cluster.as_mut() {
            c.state = state;
        }
        self.after_change("cluster change").await;
    }

    async fn after_change(&mut self, why: &str) {
        if let Err(e) = self.changed(why).await {
            tracing::warn!("reconcile: {e}");
            if matches!(e, AgentError::Switch(_)) {
                self.disconnected(&e.to_string());
            }
        }
    }

    /// Metrics, and our echo to the switch.
    async fn on_tick(&mut self) {
        self.stats.db_connected.store(u64::from(self.client.connected_remote().is_some()), Relaxed);
        self.stats.export();
        let echo = self.opts.echo_interval;
        if let Some(c) = self.conn.as_mut() {
            if let Some((_, sent)) = c.echo_pending
                && sent.elapsed() > echo * 2
            {
                self.disconnected("no echo reply");
            } else if c.echo_pending.is_none()
                && c.last_rx.elapsed() >= echo
                && let Err(e) = c.probe().await
            {
                self.disconnected(&e.to_string());
            }
        }
    }

    fn stop(mut self) {
        notify(&[sd_notify::NotifyState::Stopping]);
        if self.conn.take().is_some() {
            tracing::info!("agent stopping; the switch keeps its flows (fail_mode=secure)");
        }
        self.stats.switch_connected.store(0, Relaxed);
        if let Listen::Unix(p) = &self.opts.listen {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Tells the service manager `states` when it listens (`NOTIFY_SOCKET`);
/// a failure is logged, never fatal (the switch's flows matter, not this).
fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("notify the service manager: {e}");
    }
}

/// A plan in one bundle (nothing, when it is empty).
async fn send_plan(conn: &mut OfConn, plan: Plan<'_>) -> Result<usize, OfError> {
    if plan.is_empty() {
        return Ok(0);
    }
    conn.bundle(plan.flow_mods()).await
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
    let mut claims = opts.claims.clone();
    let (mut agent, listener, mut monitor, mut watch, mut dns_rx, mut names_rx) = Agent::start(opts, stats).await?;
    notify(&[sd_notify::NotifyState::Status(&format!("waiting for the switch on {}", agent.opts.listen.target()))]);
    let echo = agent.opts.echo_interval;
    let mut tick = tokio::time::interval(echo.min(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        let ev = tokio::select! {
            _ = &mut shutdown => Event::Stop,
            a = listener.accept() => Event::Accept(a),
            m = agent.recv() => Event::Switch(m),
            e = monitor.next() => Event::Db(e),
            c = async { match watch.as_mut() { Some(w) => w.changed().await, None => std::future::pending().await } } => Event::Cluster(c),
            k = async { match claims.as_mut() { Some(c) => c.changed().await.map(|_| c.borrow_and_update().clone()), None => std::future::pending().await } } => Event::Claims(k.ok()),
            Some(d) = async { match dns_rx.as_mut() { Some(r) => r.recv().await, None => std::future::pending().await } } => Event::DnsAnswer(d),
            Some(n) = async { match names_rx.as_mut() { Some(r) => r.recv().await, None => std::future::pending().await } } => Event::Names(n),
            _ = tick.tick() => Event::Tick,
        };
        match ev {
            Event::Stop => break,
            Event::Accept(Ok(io)) => agent.on_accept(io).await,
            Event::Accept(Err(e)) => tracing::warn!("accept: {e}"),
            Event::Switch(Ok((h, m))) => agent.on_switch(h, m).await,
            Event::Switch(Err(e)) => agent.disconnected(&e.to_string()),
            Event::Db(None) => {
                agent.stats.db_connected.store(0, Relaxed);
                return Err(AgentError::Ovsdb(ovsdb::Error::Disconnected));
            }
            Event::Db(Some(ev)) => agent.on_db(ev, &mut monitor).await?,
            Event::Cluster(Ok(state)) => agent.on_cluster(state).await,
            Event::Cluster(Err(e)) => {
                // The flows stay as computed from the last state seen.
                tracing::warn!("cluster database: {e}; keeping the last known remote state");
                watch = None;
            }
            Event::Claims(Some(c)) => agent.on_claims(c).await,
            Event::Claims(None) => claims = None,
            Event::DnsAnswer(d) => agent.on_dns_answer(d).await,
            Event::Names(n) => agent.on_names(n).await,
            Event::Tick => agent.on_tick().await,
        }
    }
    agent.stop();
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_openflow_socket_is_for_root_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ovsnet-obr0.sock");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let _l = rt.block_on(Listener::bind(&Listen::Unix(path.clone()))).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
}
