//! The lab: N simulated hosts on this machine, each a named network
//! namespace with its own Open vSwitch (userspace datapath), an underlay
//! network between them, optionally the cluster database, and M containers
//! per host (namespaces too) attached with addresses.
//!
//! Names: hosts are `NAME-h1`.., containers `NAME-h1-c1`.., the underlay
//! switch `NAME-ul` (a Linux bridge `ul0` joining one veth per host), with
//! `NAME` = `ovsnet` by default, so `ip netns exec ovsnet-h1-c1 ping ...`
//! works on what the lab built.
//!
//! Each host: `eth0` (its underlay veth) on the netdev bridge `br-phy`,
//! whose internal interface holds the host's underlay address
//! (172.30.0.N/16), and `obr0` for containers. In the classic mode `obr0`
//! is a NORMAL (flood and learn) bridge with a static tunnel to every other
//! host; the tunnel ports are `protected` (OVS forwards nothing from one
//! protected port to another), which is the split horizon that keeps a
//! full mesh from looping broadcasts. Container addresses follow the Fan
//! rule: host 172.30.0.N serves 10.0.N.0/24 of the overlay 10.0.0.0/8.
//!
//! With Docker (`lab up --docker`, agent mode), each host also runs a
//! private Docker engine in its namespace (its own data and exec roots
//! under the host's directory, `--bridge=none --iptables=false`, and a
//! private mount namespace whose `/run/docker/plugins` holds that host's
//! agent's plugin socket), with the `mini:latest` image and the Docker
//! network `blue` ([`DOCKER_NETWORK`], driver and IPAM `ovsnet`, pool
//! addresses from [`DOCKER_SUBNET`]) created on every host, so
//! `docker run --network blue` on two hosts reach each other over the
//! tunnels.
//!
//! Everything the lab makes is written to `STATE/NAME/lab.json` *before*
//! it is made, so `lab down` removes exactly that, also after a crash
//! midway, and nothing else.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::attach::{AttachRequest, Attacher, AttacherOptions};
use crate::cluster::server::{self, MemberSpec};
use crate::cluster::{ClusterDb, Ipam, NetworkSpec, ipam};
use crate::container::ContainerRef;
use crate::net::IpNet;
use crate::netlink::{Netlink, VethEnd};
use crate::netns;
use crate::ovsdb::{Client, ConnectOptions};
use crate::sandbox::{OvsSandbox, SandboxOptions};
use crate::vswitch::Vswitch;
use crate::vswitch::spec::{BridgeSpec, DatapathType, FlowOr, TunnelSpec, TunnelType};
use crate::vswitch::txn::PortSpec;

pub mod probe;

/// Where lab records live by default.
pub const DEFAULT_STATE_ROOT: &str = "/run/ovsnet/lab";
/// The lab's underlay and overlay (Fan: a /8 overlay over a /16 underlay).
pub const UNDERLAY: &str = "172.30.0.0/16";
pub const OVERLAY: &str = "10.0.0.0/8";
/// The network the lab creates in its cluster database.
pub const LAB_NETWORK: &str = "lab";
/// The container bridge on every host.
pub const BRIDGE: &str = "obr0";
/// The Docker network `lab up --docker` creates on every host.
pub const DOCKER_NETWORK: &str = "blue";
pub const DOCKER_SUBNET: &str = "192.168.0.0/16";
/// The outside namespace's address on the underlay: the hosts' default
/// gateway with `--outside`.
pub const OUTSIDE_UNDERLAY_IP: Ipv4Addr = Ipv4Addr::new(172, 30, 255, 254);
/// An address outside every network and the underlay, held by the outside
/// namespace (a documentation range, TEST-NET-3, that exists only there).
pub const OUTSIDE_SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("{0}")]
    BadInput(String),
    #[error("lab {0} already exists (see `ovsnet lab status`); `ovsnet lab down` first")]
    Exists(String),
    #[error("no lab {name} (no record in {dir})")]
    NotFound { name: String, dir: String },
    #[error("namespace {0} already exists and is not the lab's; choose another --name")]
    NetnsTaken(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{step}: {message}")]
    Step { step: String, message: String },
}

fn step<E: std::fmt::Display>(what: impl Into<String>) -> impl FnOnce(E) -> LabError {
    let step = what.into();
    move |e| LabError::Step { step, message: e.to_string() }
}

/// How to build a lab.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// Prefix of every namespace, and the record's name.
    pub name: String,
    pub hosts: usize,
    pub containers: usize,
    pub tunnel: TunnelType,
    /// Members of the cluster database (0: none; 1, 3 or 5), run inside the
    /// first hosts' namespaces on their underlay addresses.
    pub cluster_members: usize,
    pub state_root: PathBuf,
    /// Agent mode: `obr0` is `fail_mode=secure`, programmed by one
    /// `ovsnet agent` per host following the cluster database (needs
    /// `cluster_members` > 0). Off: the classic NORMAL full mesh.
    pub agents: bool,
    /// The `ovsnet` executable the agents run (default: this one).
    pub agent_exe: Option<PathBuf>,
    /// A private Docker engine per host, with the network
    /// [`DOCKER_NETWORK`] on the agents' driver (needs `agents`).
    pub docker: bool,
    /// An "outside" namespace on the underlay, standing in for the
    /// internet: it holds [`OUTSIDE_SERVER`], an address outside every
    /// network, and every host's default route goes through it.
    pub outside: bool,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            name: "ovsnet".into(),
            hosts: 2,
            containers: 1,
            tunnel: TunnelType::Vxlan,
            cluster_members: 0,
            state_root: PathBuf::from(DEFAULT_STATE_ROOT),
            agents: false,
            agent_exe: None,
            docker: false,
            outside: false,
        }
    }
}

/// Something the lab made (recorded before it is made).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Item {
    Netns(String),
    /// A private OVS (pidfiles `ovsdb-server.pid`, `ovs-vswitchd.pid`).
    Sandbox(PathBuf),
    /// Cluster database members (`cluster.json`).
    Cluster(PathBuf),
    /// An `ovsnet agent` started for a host: its pid in `DIR/agent.pid`
    /// (written once started), its log in `DIR/agent.log`.
    Agent(PathBuf),
    /// A private Docker engine (its directory: `dockerd.pid`, data, exec
    /// root, `docker.sock`).
    Docker(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabHost {
    pub name: String,
    pub netns: String,
    pub underlay_ip: Ipv4Addr,
    /// Its private OVS's directory (`OVS_RUNDIR`: `db.sock`, `*.mgmt`).
    pub dir: PathBuf,
}

impl LabHost {
    /// Where its Docker engine lives (with `--docker`).
    pub fn docker_dir(&self) -> PathBuf {
        self.dir.join("docker")
    }

    /// `DOCKER_HOST` for its engine.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.docker_dir().join("docker.sock").display())
    }

    /// The directory its engine sees as `/run/docker/plugins`.
    pub fn plugins_dir(&self) -> PathBuf {
        self.dir.join("plugins")
    }

    /// Its agent's Docker plugin socket.
    pub fn plugin_socket(&self) -> PathBuf {
        self.plugins_dir().join("ovsnet.sock")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabContainer {
    pub name: String,
    pub netns: String,
    pub host: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
}

/// What a lab is, as `lab.json` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabRecord {
    pub name: String,
    pub dir: PathBuf,
    pub tunnel: String,
    pub hosts: Vec<LabHost>,
    pub containers: Vec<LabContainer>,
    /// The cluster database's remotes for clients on this machine.
    pub cluster_db: Option<String>,
    /// Whether the hosts run agents (else: classic NORMAL bridges).
    #[serde(default)]
    pub agents: bool,
    /// Whether each host runs a Docker engine.
    #[serde(default)]
    pub docker: bool,
    /// The outside namespace (`--outside`), holding [`OUTSIDE_SERVER`].
    #[serde(default)]
    pub outside: Option<String>,
    /// Made so far, in order.
    pub created: Vec<Item>,
    /// Whether `up` finished.
    pub complete: bool,
}

impl LabRecord {
    fn path(dir: &Path) -> PathBuf {
        dir.join("lab.json")
    }

    /// Writes the record (atomically: a new file renamed over the old).
    fn save(&self) -> Result<(), LabError> {
        let text = serde_json::to_string_pretty(self).map_err(step("encode lab.json"))?;
        let tmp = self.dir.join("lab.json.tmp");
        std::fs::write(&tmp, text).map_err(|source| LabError::Io { what: "write lab.json".into(), source })?;
        std::fs::rename(&tmp, Self::path(&self.dir))
            .map_err(|source| LabError::Io { what: "write lab.json".into(), source })
    }

    /// Records an item, then returns (the caller makes it next).
    fn will_make(&mut self, item: Item) -> Result<(), LabError> {
        self.created.push(item);
        self.save()
    }

    pub fn load(state_root: &Path, name: &str) -> Result<Self, LabError> {
        let dir = state_root.join(name);
        let text = std::fs::read_to_string(Self::path(&dir))
            .map_err(|_| LabError::NotFound { name: name.to_owned(), dir: dir.display().to_string() })?;
        serde_json::from_str(&text).map_err(step(format!("read {}", Self::path(&dir).display())))
    }

    pub fn host(&self, name: &str) -> Option<&LabHost> {
        self.hosts.iter().find(|h| h.name == name)
    }
}

fn check_options(o: &LabOptions) -> Result<(), LabError> {
    netns::validate_name(&o.name).map_err(|e| LabError::BadInput(e.to_string()))?;
    if o.name.len() > 40 {
        return Err(LabError::BadInput("--name: at most 40 characters".into()));
    }
    if !(1..=250).contains(&o.hosts) {
        return Err(LabError::BadInput(format!("--hosts {}: 1 to 250", o.hosts)));
    }
    if o.containers > 250 {
        return Err(LabError::BadInput(format!("--containers {}: at most 250 per host", o.containers)));
    }
    if ![0, 1, 3, 5].contains(&o.cluster_members) {
        return Err(LabError::BadInput(format!("--cluster-members {}: 0 (none), 1, 3 or 5", o.cluster_members)));
    }
    if o.docker && !o.agents {
        return Err(LabError::BadInput("--docker needs agent mode (the driver is the agent's), not --classic".into()));
    }
    if o.agents && o.cluster_members == 0 {
        return Err(LabError::BadInput("agent mode needs the cluster database (--cluster-members 1, 3 or 5)".into()));
    }
    if o.cluster_members > o.hosts {
        return Err(LabError::BadInput(format!(
            "--cluster-members {} needs at least as many hosts (members run on the hosts)",
            o.cluster_members
        )));
    }
    Ok(())
}

/// The underlay address of host `i` (1-based).
pub fn underlay_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(172, 30, (i / 256) as u8, (i % 256) as u8)
}

fn create_netns(rec: &mut LabRecord, name: &str) -> Result<(), LabError> {
    if netns::exists(name) {
        return Err(LabError::NetnsTaken(name.to_owned()));
    }
    rec.will_make(Item::Netns(name.to_owned()))?;
    netns::create(name).map_err(step(format!("create namespace {name}")))
}

/// Builds a lab. On failure, what was made stays recorded: call [`down`].
pub async fn up(opts: &LabOptions) -> Result<LabRecord, LabError> {
    up_with_progress(opts, |_| {}).await
}

/// [`up`], telling `progress` what it is about to do at each step (a host's
/// switch, the tunnels, the cluster, each container, the agents, the wait
/// for reachability): for a progress line on a terminal.
pub async fn up_with_progress(opts: &LabOptions, mut progress: impl FnMut(&str)) -> Result<LabRecord, LabError> {
    check_options(opts)?;
    crate::sandbox::ovs_installed().map_err(|e| LabError::BadInput(e.to_string()))?;
    if opts.docker {
        crate::sandbox::docker::docker_installed().map_err(|e| LabError::BadInput(e.to_string()))?;
    }
    let dir = opts.state_root.join(&opts.name);
    if LabRecord::path(&dir).exists() {
        return Err(LabError::Exists(opts.name.clone()));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|source| LabError::Io { what: format!("create {}", dir.display()), source })?;
    let mut rec = LabRecord {
        name: opts.name.clone(),
        dir: dir.clone(),
        tunnel: opts.tunnel.as_str().to_owned(),
        hosts: (1..=opts.hosts)
            .map(|i| LabHost {
                name: format!("h{i}"),
                netns: format!("{}-h{i}", opts.name),
                underlay_ip: underlay_ip(i),
                dir: dir.join(format!("h{i}")),
            })
            .collect(),
        containers: Vec::new(),
        cluster_db: None,
        agents: opts.agents,
        docker: opts.docker,
        outside: None,
        created: Vec::new(),
        complete: false,
    };
    rec.save()?;

    // The underlay switch.
    let ul = format!("{}-ul", opts.name);
    create_netns(&mut rec, &ul)?;
    let ul_nl = Netlink::open_netns(&ul).map_err(step("underlay netlink"))?;
    let ul0 = ul_nl.create_bridge("ul0").await.map_err(step("underlay bridge ul0"))?;

    let mut switches = Vec::new();
    for h in rec.hosts.clone() {
        progress(&format!("{}: namespace, Open vSwitch, underlay {}", h.name, h.underlay_ip));
        create_host(&mut rec, &h, &ul_nl, &ul0, opts.agents).await?;
        let client = Client::connect(&format!("unix:{}", h.dir.join("db.sock").display()), &ConnectOptions::default())
            .await
            .map_err(step(format!("{}: database", h.name)))?;
        switches.push(client);
    }
    progress(&format!("{} tunnels", opts.tunnel.as_str()));
    // Agent mode: the flow-based tunnel port the agent uses (it adds the
    // same port, idempotently), made before the containers are attached
    // so that their MTU leaves room for the encapsulation.
    for (i, _) in rec.hosts.iter().enumerate().filter(|_| opts.agents) {
        let vs = Vswitch::new(switches[i].clone()).with_wait(Some(Duration::from_secs(10)));
        let spec = TunnelSpec {
            bridge: BRIDGE.into(),
            name: format!("ovsnet-{}", opts.tunnel.as_str()),
            kind: opts.tunnel,
            remote: FlowOr::Flow,
            local: None,
            key: Some(FlowOr::Flow),
            dst_port: None,
        };
        vs.add_tunnel(&spec).await.map_err(step(format!("tunnel {}", spec.name)))?;
    }
    // Classic: a full mesh of static tunnels, split-horizon. A host's
    // tunnels are protected from the moment they exist (one transaction,
    // applied before it returns): a mesh that is unprotected for a moment
    // loops the first broadcast and teaches the switches wrong ports.
    for (i, h) in rec.hosts.iter().enumerate().filter(|_| !opts.agents) {
        let vs = Vswitch::new(switches[i].clone()).with_wait(Some(Duration::from_secs(10)));
        let mut ports = Vec::new();
        for other in rec.hosts.iter().filter(|o| o.name != h.name) {
            let spec = TunnelSpec {
                bridge: BRIDGE.into(),
                name: format!("{}-{}", opts.tunnel.as_str(), other.name),
                kind: opts.tunnel,
                remote: FlowOr::Value(IpAddr::V4(other.underlay_ip)),
                local: None,
                key: None,
                dst_port: None,
            };
            spec.check().map_err(step(format!("{}: tunnel {}", h.name, spec.name)))?;
            ports.push(PortSpec { protected: true, ..PortSpec::tunnel(&spec) });
        }
        vs.add_ports(BRIDGE, &ports).await.map_err(step(format!("{}: tunnels", h.name)))?;
    }

    if opts.outside {
        progress("outside: a namespace on the underlay holding an address outside every network");
        let name = format!("{}-out", opts.name);
        create_outside(&mut rec, &name, &ul_nl, &ul0).await?;
        rec.outside = Some(name);
        rec.save()?;
    }

    // The cluster database, on the first hosts' underlay addresses.
    let cdb = if opts.cluster_members > 0 {
        progress(&format!("cluster database: {} member(s)", opts.cluster_members));
        let cdir = dir.join("cluster");
        rec.will_make(Item::Cluster(cdir.clone()))?;
        let members: Vec<MemberSpec> = rec.hosts[..opts.cluster_members]
            .iter()
            .map(|h| MemberSpec {
                address: IpAddr::V4(h.underlay_ip),
                client_port: server::DEFAULT_PORT_BASE,
                raft_port: server::DEFAULT_PORT_BASE + server::RAFT_PORT_OFFSET,
                netns: Some(h.netns.clone()),
                unix_only: false,
            })
            .collect();
        let info = server::init(&cdir, &members).map_err(step("cluster database"))?;
        rec.cluster_db = Some(info.unix_remotes());
        rec.save()?;
        let copts = ConnectOptions { timeout: Duration::from_secs(30), ..Default::default() };
        let db = ClusterDb::connect(&info.unix_remotes(), &copts).await.map_err(step("cluster database"))?;
        db.create_network(&NetworkSpec {
            name: LAB_NETWORK.into(),
            cidr: net(OVERLAY),
            vni: None,
            ipam: Ipam::Fan,
            mtu: None,
            block_prefix: None,
            underlay: Some(net(UNDERLAY)),
            gateway: None,
            internal: false,
            dns_forward: true,
        })
        .await
        .map_err(step("create network lab"))?;
        for h in &rec.hosts {
            db.register_host(&crate::cluster::HostSpec {
                name: h.name.clone(),
                underlay_ip: IpAddr::V4(h.underlay_ip),
                tunnel_types: [opts.tunnel.as_str().to_owned()].into(),
                probe_timeout_ms: 0,
                external_ids: BTreeMap::from([("ovsnet-lab".to_owned(), opts.name.clone())]),
            })
            .await
            .map_err(step(format!("register {}", h.name)))?;
        }
        Some(db)
    } else {
        None
    };

    // Containers.
    for (i, h) in rec.hosts.clone().iter().enumerate() {
        progress(&format!("{}: {} container(s)", h.name, opts.containers));
        let attacher = Attacher::new(
            switches[i].clone(),
            AttacherOptions { switch_netns: Some(h.netns.clone()), ..Default::default() },
        )
        .map_err(step(format!("{}: attacher", h.name)))?;
        let block = ipam::fan_block(net(OVERLAY), net(UNDERLAY), h.underlay_ip).map_err(step("Fan"))?;
        let mut used = std::collections::BTreeSet::new();
        for c in 1..=opts.containers {
            let name = format!("{}-c{c}", h.netns);
            create_netns(&mut rec, &name)?;
            let ip = match &cdb {
                Some(db) => match db
                    .allocate_named(
                        LAB_NETWORK,
                        &h.name,
                        &format!("netns:{name}"),
                        "eth1",
                        // Its name in the network's DNS: the namespace's.
                        [(crate::cluster::endpoint_keys::CONTAINER_NAME.to_owned(), name.clone())].into(),
                    )
                    .await
                {
                    Ok(e) => match e.ip {
                        IpAddr::V4(v4) => v4,
                        IpAddr::V6(_) => return Err(LabError::BadInput("IPv6 address from an IPv4 network".into())),
                    },
                    Err(e) => return Err(step(format!("allocate an address for {name}"))(e)),
                },
                None => ipam::lowest_free_address(net(OVERLAY), block, None, &used).map_err(step("Fan"))?,
            };
            used.insert(ip);
            let prefix = net(OVERLAY).prefix;
            rec.containers.push(LabContainer {
                name: name.clone(),
                netns: name.clone(),
                host: h.name.clone(),
                ip,
                prefix,
            });
            rec.save()?;
            let reference = ContainerRef::parse(&format!("netns:{name}")).map_err(step("container"))?;
            let mut req = AttachRequest::new(BRIDGE, reference, &format!("{ip}/{prefix}")).map_err(step("attach"))?;
            req.network = cdb.as_ref().map(|_| LAB_NETWORK.to_owned());
            // With agents, the network's gateway (its first address) is
            // answered and routes: the containers' default route.
            if opts.agents {
                req.gateway = ipam::default_gateway(net(OVERLAY));
            }
            attacher.attach(&req).await.map_err(step(format!("attach {name}")))?;
        }
    }
    // Agents start once the containers are attached: an agent's first
    // look removes its host's Endpoint rows with no port.
    if opts.agents {
        let exe = match &opts.agent_exe {
            Some(p) => p.clone(),
            None => std::env::current_exe()
                .map_err(|source| LabError::Io { what: "find the ovsnet executable".into(), source })?,
        };
        let remotes = rec.cluster_db.clone().unwrap_or_default();
        progress("agents");
        for h in rec.hosts.clone() {
            start_agent(&mut rec, &h, &exe, &remotes, opts.tunnel, opts.docker)?;
        }
    }

    if opts.docker {
        for h in rec.hosts.clone() {
            progress(&format!("{}: Docker engine, network {DOCKER_NETWORK}", h.name));
            start_docker(&mut rec, &h)?;
        }
    }

    rec.complete = true;
    rec.save()?;
    if opts.agents {
        // The agents program the switches; wait (bounded) until every
        // container reaches every other.
        progress("waiting until every container reaches every other");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if reachability(&rec, Duration::from_millis(300))?.all_reachable() {
                break;
            }
        }
    }
    Ok(rec)
}

/// The agent's pid file and log in a host's directory.
pub fn agent_pidfile(host_dir: &Path) -> PathBuf {
    host_dir.join("agent.pid")
}

/// The pid of a host's agent, if it runs.
pub fn agent_pid(host_dir: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(agent_pidfile(host_dir)).ok()?.trim().parse().ok()?;
    server::owned_process(pid, host_dir).then_some(pid)
}

/// Starts a host's Docker engine (recorded first) once its agent serves
/// the plugin, imports the image and creates (or, on the hosts after the
/// first, joins) the network [`DOCKER_NETWORK`].
fn start_docker(rec: &mut LabRecord, h: &LabHost) -> Result<(), LabError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::os::unix::net::UnixStream::connect(h.plugin_socket()).is_err() {
        if std::time::Instant::now() > deadline {
            return Err(LabError::Step {
                step: format!("{}: Docker plugin", h.name),
                message: format!("the agent did not serve {} within 30 s", h.plugin_socket().display()),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    rec.will_make(Item::Docker(h.docker_dir()))?;
    let engine = crate::sandbox::docker::DockerEngine::start_with(&crate::sandbox::docker::DockerOptions {
        netns: Some(h.netns.clone()),
        plugins: Some(h.plugins_dir()),
        dir: Some(h.docker_dir()),
        bridge_nat: false,
    })
    .map_err(step(format!("{}: Docker engine", h.name)))?;
    engine.import_mini_image().map_err(step(format!("{}: image", h.name)))?;
    engine
        .run_cli(&[
            "network",
            "create",
            "-d",
            "ovsnet",
            "--ipam-driver",
            "ovsnet",
            "--subnet",
            DOCKER_SUBNET,
            "-o",
            &format!("network={DOCKER_NETWORK}"),
            DOCKER_NETWORK,
        ])
        .map_err(step(format!("{}: docker network create {DOCKER_NETWORK}", h.name)))?;
    // The engine runs on after this command; `lab down` stops it.
    engine.detach();
    Ok(())
}

/// Starts `ovsnet agent` for a host (recorded first, pid file after).
/// With `docker`, in the host's namespace (the driver makes the veths
/// there), serving the plugin to the host's engine and following it.
pub fn start_agent(
    rec: &mut LabRecord,
    h: &LabHost,
    exe: &Path,
    remotes: &str,
    tunnel: TunnelType,
    docker: bool,
) -> Result<i32, LabError> {
    if !rec.created.contains(&Item::Agent(h.dir.clone())) {
        rec.will_make(Item::Agent(h.dir.clone()))?;
    }
    let log = std::fs::File::create(h.dir.join("agent.log"))
        .map_err(|source| LabError::Io { what: format!("{}: agent log", h.name), source })?;
    let err = log.try_clone().map_err(|source| LabError::Io { what: "agent log".into(), source })?;
    // The host's resolvers, as the agent forwards names not in a network
    // to them: the outside's address with `--outside` (whatever answers
    // DNS there), none without (nothing leaves the lab).
    let resolv_conf = h.dir.join("resolv.conf");
    let servers = match rec.outside {
        Some(_) => format!("nameserver {OUTSIDE_SERVER}\n"),
        None => String::new(),
    };
    std::fs::write(&resolv_conf, format!("# the lab's resolvers (ovsnet agent --resolv-conf)\n{servers}"))
        .map_err(|source| LabError::Io { what: format!("{}: resolv.conf", h.name), source })?;
    let mut cmd = std::process::Command::new(exe);
    let ns = match docker {
        true => {
            cmd.env("DOCKER_HOST", h.docker_host());
            Some(netns::open(&h.netns).map_err(step(format!("{}: open the namespace", h.name)))?)
        }
        false => None,
    };
    match &ns {
        Some(ns) => {
            netns::command_in(&mut cmd, ns);
        }
        // Outside the host's namespace: told where its switch (and the
        // bridge's internal port, the way out) is.
        None => {
            cmd.args(["--netns", &h.netns]);
        }
    }
    let child = cmd
        .arg("--db")
        .arg(format!("unix:{}", h.dir.join("db.sock").display()))
        .args(["-v", "agent", "--bridge", BRIDGE])
        .arg("--listen")
        .arg(format!("unix:{}", h.dir.join("ovsnet-obr0.sock").display()))
        .args(["--cluster-db", remotes, "--host-name", &h.name])
        .arg("--underlay-ip")
        .arg(h.underlay_ip.to_string())
        .args(["--tunnel", tunnel.as_str()])
        .arg("--resolv-conf")
        .arg(&resolv_conf)
        .args(
            docker
                .then(|| [std::ffi::OsString::from("--docker-plugin"), h.plugin_socket().into_os_string()])
                .into_iter()
                .flatten(),
        )
        .env("OVS_RUNDIR", &h.dir)
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .map_err(|source| LabError::Io { what: format!("{}: start the agent", h.name), source })?;
    let pid = child.id() as i32;
    // The agent outlives this command; `lab down` stops it by pid. A
    // thread reaps it if it exits while we still run.
    std::thread::spawn(move || {
        let mut child = child;
        let _ = child.wait();
    });
    std::fs::write(agent_pidfile(&h.dir), format!("{pid}\n"))
        .map_err(|source| LabError::Io { what: format!("{}: agent pid file", h.name), source })?;
    Ok(pid)
}

fn net(s: &str) -> IpNet {
    // The lab's constants are valid CIDRs; a test checks it.
    IpNet::parse_network(s).unwrap_or(IpNet { addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED), prefix: 0 })
}

/// The outside namespace: `eth0` on the underlay switch with
/// [`OUTSIDE_UNDERLAY_IP`], [`OUTSIDE_SERVER`] on its loopback, and every
/// host's default route through it.
async fn create_outside(
    rec: &mut LabRecord,
    name: &str,
    ul_nl: &Netlink,
    ul0: &crate::netlink::Link,
) -> Result<(), LabError> {
    create_netns(rec, name)?;
    let ns = netns::open(name).map_err(step("open the outside namespace"))?;
    ul_nl
        .create_veth(
            &VethEnd::named("out"),
            &VethEnd { name: "eth0".into(), netns: Some(std::os::fd::AsFd::as_fd(&ns)), ..Default::default() },
        )
        .await
        .map_err(step("outside: underlay veth"))?;
    let port = ul_nl.link("out").await.map_err(step("find out"))?;
    ul_nl.set_bridge_port(&port, ul0).await.map_err(step("outside: underlay port"))?;
    ul_nl.set_up(&port).await.map_err(step("outside: port up"))?;
    let nl = Netlink::open_in(&ns).map_err(step("outside netlink"))?;
    nl.lo_up().await.map_err(step("outside: lo up"))?;
    let lo = nl.link("lo").await.map_err(step("outside: lo"))?;
    nl.add_address(&lo, IpAddr::V4(OUTSIDE_SERVER), 32).await.map_err(step("outside: server address"))?;
    let eth0 = nl.link("eth0").await.map_err(step("outside: eth0"))?;
    nl.add_address(&eth0, IpAddr::V4(OUTSIDE_UNDERLAY_IP), net(UNDERLAY).prefix)
        .await
        .map_err(step("outside: underlay address"))?;
    nl.set_up(&eth0).await.map_err(step("outside: eth0 up"))?;
    // The userspace datapath forwards what a veth left to checksum
    // offload as it is: the outside's TCP replies would arrive broken.
    nl.set_tx_checksum("eth0", false).map_err(step("outside: eth0 tx checksum off"))?;
    for h in &rec.hosts {
        let host_nl = Netlink::open_netns(&h.netns).map_err(step("host netlink"))?;
        let phy = host_nl.link("br-phy").await.map_err(step(format!("{}: br-phy", h.name)))?;
        host_nl
            .add_default_route(&phy, OUTSIDE_UNDERLAY_IP)
            .await
            .map_err(step(format!("{}: default route", h.name)))?;
    }
    Ok(())
}

async fn create_host(
    rec: &mut LabRecord,
    h: &LabHost,
    ul_nl: &Netlink,
    ul0: &crate::netlink::Link,
    secure: bool,
) -> Result<(), LabError> {
    if netns::exists(&h.netns) {
        return Err(LabError::NetnsTaken(h.netns.clone()));
    }
    rec.will_make(Item::Netns(h.netns.clone()))?;
    rec.will_make(Item::Sandbox(h.dir.clone()))?;
    let sandbox = OvsSandbox::start(SandboxOptions {
        dir: Some(h.dir.clone()),
        netns: Some(h.netns.clone()),
        keep_dir: true,
        other_config: Vec::new(),
    })
    .map_err(step(format!("{}: Open vSwitch", h.name)))?;
    // The daemons outlive this command; `lab down` stops them by pid.
    std::mem::forget(sandbox);

    // Underlay: ul0 <-> hN (underlay side) / eth0 (host side).
    let host_ns = netns::open(&h.netns).map_err(step("open host namespace"))?;
    ul_nl
        .create_veth(
            &VethEnd::named(h.name.clone()),
            &VethEnd { name: "eth0".into(), netns: Some(std::os::fd::AsFd::as_fd(&host_ns)), ..Default::default() },
        )
        .await
        .map_err(step(format!("{}: underlay veth", h.name)))?;
    let port = ul_nl.link(&h.name).await.map_err(step(format!("find {}", h.name)))?;
    ul_nl.set_bridge_port(&port, ul0).await.map_err(step(format!("{}: underlay port", h.name)))?;
    let host_nl = Netlink::open_in(&host_ns).map_err(step("host netlink"))?;
    host_nl.lo_up().await.map_err(step("lo up"))?;
    let eth0 = host_nl.link("eth0").await.map_err(step("eth0"))?;
    host_nl.set_up(&eth0).await.map_err(step("eth0 up"))?;

    let client = Client::connect(&format!("unix:{}", h.dir.join("db.sock").display()), &ConnectOptions::default())
        .await
        .map_err(step(format!("{}: database", h.name)))?;
    let vs = Vswitch::new(client).with_wait(Some(Duration::from_secs(10)));
    let mut phy = BridgeSpec::new("br-phy").map_err(step("br-phy"))?;
    phy.datapath = Some(DatapathType::Netdev);
    vs.add_bridge(&phy).await.map_err(step(format!("{}: br-phy", h.name)))?;
    vs.add_ports("br-phy", &[PortSpec { name: "eth0".into(), ..Default::default() }])
        .await
        .map_err(step(format!("{}: eth0 on br-phy", h.name)))?;
    let cidr = IpNet { addr: IpAddr::V4(h.underlay_ip), prefix: net(UNDERLAY).prefix };
    crate::vswitch::address::set_interface_address(Some(&h.netns), "br-phy", cidr)
        .await
        .map_err(step(format!("{}: underlay address", h.name)))?;
    let mut obr = BridgeSpec::new(BRIDGE).map_err(step("obr0"))?;
    obr.datapath = Some(DatapathType::Netdev);
    if secure {
        obr.fail_mode = Some(crate::vswitch::spec::FailMode::Secure);
    }
    vs.add_bridge(&obr).await.map_err(step(format!("{}: obr0", h.name)))?;
    Ok(())
}

/// What `down` removed.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct DownReport {
    pub namespaces: Vec<String>,
    pub processes: usize,
}

/// Removes everything the lab `name` recorded, in reverse order, and its
/// record. Things already gone are skipped.
pub fn down(state_root: &Path, name: &str) -> Result<DownReport, LabError> {
    let rec = LabRecord::load(state_root, name)?;
    let mut report = DownReport::default();
    for item in rec.created.iter().rev() {
        match item {
            Item::Agent(dir) => {
                if let Some(pid) = agent_pid(dir) {
                    server::stop_pid(pid);
                    report.processes += 1;
                }
            }
            Item::Docker(dir) => {
                report.processes += crate::sandbox::docker::stop_detached(dir);
            }
            Item::Cluster(dir) => {
                if let Ok(n) = server::stop(dir) {
                    report.processes += n;
                }
            }
            Item::Sandbox(dir) => {
                for pidfile in ["ovs-vswitchd.pid", "ovsdb-server.pid"] {
                    let pid =
                        std::fs::read_to_string(dir.join(pidfile)).ok().and_then(|t| t.trim().parse::<i32>().ok());
                    if let Some(pid) = pid
                        && server::owned_process(pid, dir)
                    {
                        server::stop_pid(pid);
                        report.processes += 1;
                    }
                }
            }
            Item::Netns(ns) => {
                if netns::exists(ns) && netns::delete(ns).is_ok() {
                    report.namespaces.push(ns.clone());
                }
            }
        }
    }
    std::fs::remove_dir_all(&rec.dir)
        .map_err(|source| LabError::Io { what: format!("remove {}", rec.dir.display()), source })?;
    Ok(report)
}

/// Whether each container reaches each other one (ICMP echo).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reachability {
    pub containers: Vec<String>,
    /// `rtt_ms[i][j]`: from container i to j; `None` unreachable (and the
    /// diagonal).
    pub rtt_ms: Vec<Vec<Option<f64>>>,
}

impl Reachability {
    pub fn all_reachable(&self) -> bool {
        self.rtt_ms.iter().enumerate().all(|(i, row)| row.iter().enumerate().all(|(j, r)| i == j || r.is_some()))
    }

    pub fn unreachable_pairs(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, row) in self.rtt_ms.iter().enumerate() {
            for (j, r) in row.iter().enumerate() {
                if i != j && r.is_none() {
                    out.push((self.containers[i].clone(), self.containers[j].clone()));
                }
            }
        }
        out
    }
}

/// Pings every container from every other (one thread per source).
pub fn reachability(rec: &LabRecord, timeout: Duration) -> Result<Reachability, LabError> {
    let cs = &rec.containers;
    let rows: Vec<Result<Vec<Option<f64>>, LabError>> = std::thread::scope(|s| {
        let handles: Vec<_> = cs
            .iter()
            .map(|src| {
                s.spawn(move || -> Result<Vec<Option<f64>>, LabError> {
                    let ns = netns::open(&src.netns).map_err(step(format!("open {}", src.netns)))?;
                    cs.iter()
                        .map(|dst| {
                            if dst.name == src.name {
                                return Ok(None);
                            }
                            probe::ping(&ns, dst.ip, timeout)
                                .map(|r| r.map(|d| d.as_secs_f64() * 1000.0))
                                .map_err(step(format!("ping from {}", src.name)))
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(LabError::BadInput("probe thread panicked".into()))))
            .collect()
    });
    Ok(Reachability {
        containers: cs.iter().map(|c| c.name.clone()).collect(),
        rtt_ms: rows.into_iter().collect::<Result<_, _>>()?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn constants_and_addresses() {
        assert_eq!(net(UNDERLAY).to_string(), UNDERLAY);
        assert_eq!(net(OVERLAY).to_string(), OVERLAY);
        assert_eq!(underlay_ip(3), Ipv4Addr::new(172, 30, 0, 3));
        assert_eq!(underlay_ip(250), Ipv4Addr::new(172, 30, 0, 250));
        let b = ipam::fan_block(net(OVERLAY), net(UNDERLAY), underlay_ip(2)).unwrap();
        assert_eq!(b.to_string(), "10.0.2.0/24");
    }

    #[test]
    fn options_are_checked() {
        let ok = LabOptions::default();
        assert!(check_options(&ok).is_ok());
        for bad in [
            LabOptions { hosts: 0, ..ok.clone() },
            LabOptions { cluster_members: 2, ..ok.clone() },
            LabOptions { cluster_members: 3, hosts: 2, ..ok.clone() },
            LabOptions { name: "a/b".into(), ..ok.clone() },
            LabOptions { containers: 300, ..ok.clone() },
        ] {
            assert!(matches!(check_options(&bad), Err(LabError::BadInput(_))), "{bad:?}");
        }
    }

    #[test]
    fn reachability_summary() {
        let r = Reachability {
            containers: vec!["a".into(), "b".into()],
            rtt_ms: vec![vec![None, Some(0.2)], vec![None, None]],
        };
        assert!(!r.all_reachable());
        assert_eq!(r.unreachable_pairs(), [("b".to_owned(), "a".to_owned())]);
    }
}
