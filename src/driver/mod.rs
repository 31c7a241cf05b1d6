//! The Docker network and IPAM driver: `docker network create -d ovsnet
//! --ipam-driver ovsnet`, `docker run --network NAME`. The engine's calls
//! ([`protocol`], pure) are answered by [`Driver`] over the plugin socket
//! ([`server`], *I/O*). The driver keeps no state of its own: networks,
//! addresses and which Docker endpoint holds which address are rows of the
//! cluster database (this host's own on a single host), and ports are rows
//! of `Open_vSwitch` that the agent programs like any other.
//!
//! How the engine's objects map onto ovsnet's:
//! - a Docker network is the ovsnet network of the same name, or, with
//!   `-o network=NAME`, of that name; each host that made it records its
//!   own Docker network ID in the network's `external_ids`
//!   (`docker-network:HOST`), and `docker network rm` on the last such
//!   host deletes the ovsnet network when the driver made it and it holds
//!   no endpoints;
//! - an IPAM pool is a network's CIDR (the pool ID is the CIDR), an address
//!   is an `Endpoint` row of this host, allocated as `attach --network`
//!   allocates (the host's block for pool and Fan networks), and
//!   `CreateEndpoint` writes the Docker endpoint ID into its `container`;
//! - `CreateEndpoint` claims a spare port ([`spare`]) for the endpoint
//!   with its address, MAC and network, so that the agent installs its
//!   flows while the engine goes on to `Join`; `Join` answers once they
//!   are in. Without a spare, `Join` makes a veth pair in the switch's
//!   namespace and plugs one end into the bridge with the same
//!   `external_ids`. Either way the engine moves the other end into the
//!   container. The claims between the two calls are the driver's only
//!   memory: an agent started in between finds none and claims or plugs
//!   at `Join`.

pub mod protocol;
pub mod server;
pub mod spare;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde_json::{Value, json};

use crate::cluster::{ClusterDb, ClusterError, Ipam, Network, NetworkSpec};
use crate::net::{IpNet, Mac, PublishedPort};
use crate::netlink::{LinkChange, Netlink, VethEnd};
use crate::ovsdb::{Client, Condition, ConnectOptions, Datum, Function, Mutation, Mutator, Operation};
use crate::vswitch::{PortSpec, Vswitch, keys};
use protocol::{
    AddressReply, Call, CreateEndpoint, CreateNetwork, EndpointRef, EndpointReply, ExternalConnectivity, InterfaceName,
    InterfaceReply, Join, JoinReply, PoolReply, RequestAddress, RequestPool,
};

/// Where Docker looks for the plugin.
pub const DEFAULT_SOCKET: &str = "/run/docker/plugins/ovsnet.sock";

/// The `container` of an Endpoint row IPAM allocated before the engine
/// named the endpoint.
const PENDING: &str = "docker-pending";

/// The `external_ids` key marking a network the driver made (only such a
/// network goes with the last `docker network rm`; one made with `ovsnet
/// network create` stays).
const MADE_BY_DOCKER: &str = "docker-made";

/// The engine's option for `docker network create --internal`.
const INTERNAL_OPTION: &str = "com.docker.network.internal";

/// The `external_ids` key of a network under which a host records its
/// Docker network ID.
fn network_key(host: &str) -> String {
    format!("docker-network:{host}")
}

/// What the driver needs to know of its host.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    pub bridge: String,
    pub host: String,
    /// The `Open_vSwitch` database.
    pub db: String,
    /// The cluster database.
    pub cluster_db: String,
    pub connect: ConnectOptions,
    /// The ports whose flows the switch holds, as the agent tells them:
    /// `Join` answers once its port is among them (or after
    /// [`PROGRAMMED_WAIT`], so that a switch that is away never hangs
    /// `docker run`).
    pub programmed: Option<tokio::sync::watch::Receiver<std::collections::BTreeSet<String>>>,
    /// The Docker engine's API socket (to learn a network's name).
    pub docker_socket: Option<std::path::PathBuf>,
    /// The agent in this process, told a claimed spare port's
    /// `external_ids` (by interface name) before the switch's database
    /// has them: its flows go in before the database change, whose pass
    /// over every port `ovs-vswitchd` then makes off the `Join` path.
    pub claims: Option<tokio::sync::watch::Sender<BTreeMap<String, BTreeMap<String, String>>>>,
    /// The endpoints whose rows this driver wrote and whose port is not
    /// in the database yet (from `RequestAddress` to `Join` or
    /// `ReleaseAddress`), shared with the agent in this process so that
    /// its first look after a start does not take them for stale.
    pub held: crate::cluster::HeldEndpoints,
}

/// How long `Join` waits for the agent to install the endpoint's flows.
pub const PROGRAMMED_WAIT: Duration = Duration::from_secs(5);

/// Answers the engine's calls.
pub struct Driver {
    opts: DriverOptions,
    cluster: ClusterDb,
    vswitch: Vswitch,
    netlink: Netlink,
    ports: PortBatch,
    client: Client,
    spares: std::sync::Arc<spare::Spares>,
    /// Spares claimed at `CreateEndpoint`, by Docker endpoint, until the
    /// endpoint's `Join` (or `DeleteEndpoint`) takes them.
    claimed: std::sync::Mutex<BTreeMap<String, EndpointPort>>,
    /// Whether container ends need tx checksum offload off (a `netdev`
    /// bridge without userspace TSO), once the switch has been read.
    tx_checksum_off: tokio::sync::OnceCell<bool>,
}

/// The port an endpoint got: a spare claimed (at `CreateEndpoint`, or at
/// `Join` when none was), or a new one.
#[derive(Debug, Clone)]
struct EndpointPort {
    host_end: String,
    /// The end the engine moves into the container.
    peer: String,
    ids: BTreeMap<String, String>,
    /// The claim's database write waits until the flows are in.
    deferred: bool,
    gateway: Option<Ipv4Addr>,
}

type PortDone = tokio::sync::oneshot::Sender<Result<crate::vswitch::Outcome, crate::vswitch::VswitchError>>;

/// The ports that `Join`s arriving together add, in one OVSDB transaction:
/// while one transaction is out, the ports queued behind it wait and go
/// in the next, together (so `ovs-vswitchd` also reconfigures the bridge
/// once for them). A transaction that fails is done again port by port,
/// so that a bad port fails only its own `Join`.
#[derive(Clone)]
struct PortBatch {
    tx: tokio::sync::mpsc::UnboundedSender<(PortSpec, PortDone)>,
}

impl PortBatch {
    fn spawn(vswitch: Vswitch, bridge: String) -> PortBatch {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(PortSpec, PortDone)>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                }
                let specs: Vec<PortSpec> = batch.iter().map(|(p, _)| p.clone()).collect();
                tracing::info!(ports = specs.len(), "driver ports added together");
                match vswitch.add_ports(&bridge, &specs).await {
                    Ok(outcome) => {
                        for (_, done) in batch {
                            let _ = done.send(Ok(outcome));
                        }
                    }
                    Err(e) if batch.len() == 1 => {
                        if let Some((_, done)) = batch.pop() {
                            let _ = done.send(Err(e));
                        }
                    }
                    Err(_) => {
                        for (port, done) in batch {
                            let _ = done.send(vswitch.add_ports(&bridge, &[port]).await);
                        }
                    }
                }
            }
        });
        PortBatch { tx }
    }

    /// Adds one port, with whatever other ports are queued.
    async fn add(&self, port: PortSpec) -> Result<crate::vswitch::Outcome, DriverError> {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.tx.send((port, done)).map_err(|_| refused("the port batch has stopped"))?;
        Ok(wait.await.map_err(|_| refused("the port batch has stopped"))??)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Vswitch(#[from] crate::vswitch::VswitchError),
    #[error(transparent)]
    Netlink(#[from] crate::netlink::NetlinkError),
    #[error(transparent)]
    Ovsdb(#[from] crate::ovsdb::Error),
    #[error("{0}")]
    Refused(String),
}

fn refused(m: impl Into<String>) -> DriverError {
    DriverError::Refused(m.into())
}

/// The name of a network made by `docker network create` without `-o
/// network=NAME`, until the engine's own name is known.
fn provisional_name(network_id: &str) -> String {
    format!("docker-{}", network_id.chars().take(12).collect::<String>())
}

/// Renames a provisional network to the name the engine gave it, once the
/// engine answers for it (10 s at most). A name another ovsnet network has
/// already leaves the provisional one.
async fn adopt_docker_name(cluster: ClusterDb, docker: crate::container::Resolver, network_id: String) {
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        match docker.network_name(&network_id).await {
            Ok(Some(name)) => {
                let old = provisional_name(&network_id);
                match cluster.rename_network(&old, &name).await {
                    Ok(_) => tracing::info!("network {old} is now {name}, as Docker names it"),
                    Err(e) => tracing::warn!("network {old} keeps its name: {name}: {e}"),
                }
                return;
            }
            Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => {
                tracing::warn!("the name of Docker network {network_id}: {e}");
                return;
            }
        }
    }
}

/// Where one `Join`'s time went, in microseconds: reading the endpoint's
/// network and row, making the veth and adding the port (together),
/// plugging again after a failed attempt's leftovers (0 when there were
/// none), and waiting until the agent reports the flows
/// in the switch (which includes `ovs-vswitchd` adding the port and
/// assigning its ofport).
#[derive(Debug, Default, Clone, Copy)]
struct JoinStages {
    lookup_us: u64,
    plug_us: u64,
    cleanup_us: u64,
    flows_us: u64,
}

/// The two ends of an endpoint's veth: on the bridge, and for the engine
/// to move into the container (15 characters at most).
fn veth_names(endpoint_id: &str) -> (String, String) {
    let short: String = endpoint_id.chars().take(11).collect();
    (format!("ovd{short}"), format!("ovc{short}"))
}

impl Driver {
    pub async fn connect(opts: DriverOptions) -> Result<Driver, DriverError> {
        let cluster = ClusterDb::connect(&opts.cluster_db, &opts.connect).await?;
        let client = Client::connect(&opts.db, &opts.connect).await?;
        // No wait for ovs-vswitchd to apply the port: Join waits for the
        // agent's flows, which need its ofport anyway.
        let vswitch = Vswitch::new(client.clone()).with_wait(None);
        let netlink = Netlink::open_without_packet()?;
        let ports = PortBatch::spawn(vswitch.clone(), opts.bridge.clone());
        let spares = spare::Spares::start(client.clone(), opts.bridge.clone())?;
        Ok(Driver {
            opts,
            cluster,
            vswitch,
            netlink,
            ports,
            client,
            spares,
            claimed: Default::default(),
            tx_checksum_off: Default::default(),
        })
    }

    /// Whether the container end of a veth must have tx checksum offload
    /// off: on the userspace datapath without userspace TSO, nothing fills
    /// in a checksum left to offload and TCP does not connect
    /// (docs/ATTACH.md). Read from the switch once; while it cannot be
    /// read, off (it works everywhere).
    async fn needs_tx_checksum_off(&self) -> bool {
        let read = self
            .tx_checksum_off
            .get_or_try_init(|| async {
                let ops = vec![
                    Operation::select("Bridge", vec![Condition::eq("name", self.opts.bridge.as_str())])
                        .columns(["datapath_type"]),
                    Operation::select("Open_vSwitch", vec![]).columns(["other_config"]),
                ];
                let r = self.client.transact(crate::vswitch::DB, ops).await.map_err(|_| ())?;
                let rows = |i: usize| r.get(i).and_then(|x| x.rows.as_deref()).unwrap_or(&[]);
                let bridge = rows(0).first().ok_or(())?;
                let netdev = bridge.get("datapath_type").and_then(Datum::as_str) == Some("netdev");
                let tso = rows(1)
                    .first()
                    .and_then(|row| row.get("other_config"))
                    .and_then(Datum::as_string_map)
                    .is_some_and(|m| m.get("userspace-tso-enable").is_some_and(|v| v == "true"));
                Ok::<bool, ()>(netdev && !tso)
            })
            .await;
        read.copied().unwrap_or(true)
    }

    fn claimed(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, EndpointPort>> {
        self.claimed.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The `external_ids` of an endpoint's port: what the agent programs
    /// it by.
    fn port_ids(&self, net: &Network, ip: IpAddr, mac: Mac, endpoint_id: &str) -> BTreeMap<String, String> {
        let mut ids = BTreeMap::new();
        ids.insert(keys::IP.to_owned(), format!("{ip}/{}", net.cidr.prefix));
        ids.insert(keys::MAC.to_owned(), mac.to_string());
        ids.insert(keys::NETWORK.to_owned(), net.name.clone());
        ids.insert(keys::CONTAINER.to_owned(), endpoint_id.to_owned());
        ids.insert(keys::BRIDGE.to_owned(), self.opts.bridge.clone());
        if let Some(g) = net.gateway {
            ids.insert(keys::GATEWAY.to_owned(), g.to_string());
        }
        ids
    }

    async fn network_by_cidr(&self, cidr: IpNet) -> Result<Option<Network>, DriverError> {
        Ok(self.cluster.networks().await?.into_iter().find(|n| n.cidr == cidr))
    }

    /// The ovsnet network this host's Docker network ID names.
    async fn network_of(&self, network_id: &str) -> Result<Network, DriverError> {
        let key = network_key(&self.opts.host);
        self.cluster
            .networks()
            .await?
            .into_iter()
            .find(|n| n.external_ids.get(&key).map(String::as_str) == Some(network_id))
            .ok_or_else(|| refused(format!("no ovsnet network is known for Docker network {network_id}")))
    }

    fn pool_cidr(pool_id: &str) -> Result<IpNet, DriverError> {
        IpNet::parse_network(pool_id).map_err(|e| refused(format!("bad pool {pool_id:?}: {e}")))
    }

    async fn request_pool(&self, r: RequestPool) -> Result<Value, DriverError> {
        if r.v6 {
            return Err(refused("ovsnet IPAM: IPv6 pools are not supported yet"));
        }
        let Some(pool) = r.pool else {
            return Err(refused("ovsnet IPAM needs a subnet: docker network create --subnet CIDR"));
        };
        if r.sub_pool.is_some_and(|s| s != pool) {
            return Err(refused("ovsnet IPAM: --ip-range is not supported (the host's block is the range)"));
        }
        // A pool that overlaps another network's is refused here, before
        // the engine goes on.
        if let Some(other) =
            self.cluster.networks().await?.into_iter().find(|n| n.cidr != pool && n.cidr.overlaps(&pool))
        {
            return Err(refused(format!("subnet {pool} overlaps ovsnet network {} ({})", other.name, other.cidr)));
        }
        Ok(serde_json::to_value(PoolReply { pool_id: pool.to_string(), pool: pool.to_string(), data: BTreeMap::new() })
            .unwrap_or_default())
    }

    async fn request_address(&self, r: RequestAddress) -> Result<Value, DriverError> {
        let cidr = Self::pool_cidr(&r.pool_id)?;
        let reply = |ip: IpAddr| {
            serde_json::to_value(AddressReply { address: format!("{ip}/{}", cidr.prefix), data: BTreeMap::new() })
                .unwrap_or_default()
        };
        let net = self.network_by_cidr(cidr).await?;
        if r.gateway {
            // Asked before the network exists (`network create`): the one
            // given, the network's, or the first address.
            let gw = match (r.address, net.as_ref().and_then(|n| n.gateway)) {
                (Some(a), _) => a,
                (None, Some(g)) => IpAddr::V4(g),
                (None, None) => IpAddr::V4(
                    crate::cluster::ipam::default_gateway(cidr)
                        .ok_or_else(|| refused(format!("{cidr} has no host address")))?,
                ),
            };
            if !cidr.contains(gw) {
                return Err(refused(format!("gateway {gw} is outside {cidr}")));
            }
            return Ok(reply(gw));
        }
        let net = net.ok_or_else(|| refused(format!("no ovsnet network has the subnet {cidr}")))?;
        if let Some(ip) = r.address {
            self.opts.held.hold(&net.name, ip);
        }
        let e = match r.address {
            Some(ip) => {
                let spec = crate::cluster::EndpointSpec {
                    network: net.name.clone(),
                    host: self.opts.host.clone(),
                    ip,
                    mac: None,
                    container: PENDING.to_owned(),
                    interface: String::new(),
                    external_ids: BTreeMap::new(),
                };
                self.cluster.publish_endpoint(&spec).await?
            }
            None => self.cluster.allocate_ip(&net.name, &self.opts.host, PENDING, "").await?,
        };
        self.opts.held.hold(&net.name, e.ip);
        Ok(reply(e.ip))
    }

    async fn release_address(&self, pool_id: &str, ip: IpAddr) -> Result<Value, DriverError> {
        let cidr = Self::pool_cidr(pool_id)?;
        if let Some(net) = self.network_by_cidr(cidr).await? {
            self.cluster.remove_host_endpoint(&net.name, &self.opts.host, ip).await?;
            self.opts.held.release(&net.name, ip);
        }
        Ok(json!({}))
    }

    async fn create_network(&self, c: CreateNetwork) -> Result<Value, DriverError> {
        if c.has_ipv6 {
            return Err(refused("ovsnet: IPv6 subnets are not supported yet"));
        }
        let [pool] = c.ipv4.as_slice() else {
            return Err(refused(format!("ovsnet networks have one IPv4 subnet; {} given", c.ipv4.len())));
        };
        let opt = |k: &str| c.generic.get(k).map(String::as_str);
        let known = ["network", "vni", "ipam", "mtu", "block_prefix", "underlay"];
        if let Some(k) = c.generic.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(refused(format!("unknown option -o {k} (ovsnet takes: {})", known.join(", "))));
        }
        // The engine does not tell a driver the network's name: `-o
        // network=NAME` names it; without, a network of the same subnet
        // is joined, else one is made under a name from the Docker ID.
        let existing = self.cluster.networks().await?;
        let name = match opt("network") {
            Some(n) => n.to_owned(),
            None => match existing.iter().find(|n| n.cidr == pool.pool) {
                Some(n) => n.name.clone(),
                None => provisional_name(&c.network_id),
            },
        };
        let num = |k: &str| -> Result<Option<u32>, DriverError> {
            opt(k).map(|v| v.parse::<u32>().map_err(|_| refused(format!("-o {k}={v}: not a number")))).transpose()
        };
        let ipam = match opt("ipam") {
            None => None,
            Some(v) => Some(v.parse::<Ipam>().map_err(|e| refused(format!("-o ipam={v}: {e}")))?),
        };
        let gateway = match pool.gateway.map(|g| g.addr) {
            Some(IpAddr::V4(g)) => Some(g),
            Some(IpAddr::V6(_)) => return Err(refused("an IPv6 gateway on an IPv4 subnet")),
            None => crate::cluster::ipam::default_gateway(pool.pool),
        };
        let net = match existing.iter().find(|n| n.name == name) {
            Some(n) => {
                // Joining a network another host made: the settings given must be its own.
                let vni = num("vni")?;
                let mismatch = [
                    (n.cidr != pool.pool).then(|| format!("subnet {} (it has {})", pool.pool, n.cidr)),
                    vni.filter(|v| *v != n.vni).map(|v| format!("vni {v} (it has {})", n.vni)),
                    ipam.filter(|i| *i != n.ipam).map(|i| format!("ipam {i} (it has {})", n.ipam)),
                ];
                if let Some(m) = mismatch.into_iter().flatten().next() {
                    return Err(refused(format!("ovsnet network {name} exists with other settings: {m}")));
                }
                n.clone()
            }
            None => {
                if let Some(o) = existing.iter().find(|n| n.cidr.overlaps(&pool.pool)) {
                    return Err(refused(format!(
                        "subnet {} overlaps ovsnet network {} ({})",
                        pool.pool, o.name, o.cidr
                    )));
                }
                let spec = NetworkSpec {
                    name: name.clone(),
                    cidr: pool.pool,
                    vni: num("vni")?,
                    ipam: ipam.unwrap_or(Ipam::Pool),
                    mtu: num("mtu")?,
                    block_prefix: num("block_prefix")?
                        .map(|p| u8::try_from(p).map_err(|_| refused("-o block_prefix: 0..32")))
                        .transpose()?,
                    underlay: opt("underlay")
                        .map(|u| IpNet::parse_network(u).map_err(|e| refused(format!("-o underlay={u}: {e}"))))
                        .transpose()?,
                    gateway,
                    internal: c.options.get(INTERNAL_OPTION).and_then(Value::as_bool).unwrap_or(false),
                    dns_forward: true,
                };
                let net = self.cluster.create_network(&spec).await?;
                self.cluster.set_network_external_id(&net.name, MADE_BY_DOCKER, Some("true")).await?;
                net
            }
        };
        self.cluster.set_network_external_id(&net.name, &network_key(&self.opts.host), Some(&c.network_id)).await?;
        if net.name == provisional_name(&c.network_id) {
            // The engine stores the network, with its name, once this
            // call is answered: the ovsnet network takes that name then.
            if let Some(socket) = &self.opts.docker_socket {
                tokio::spawn(adopt_docker_name(
                    self.cluster.clone(),
                    crate::container::Resolver::with_docker_host(format!("unix://{}", socket.display())),
                    c.network_id.clone(),
                ));
            }
        }
        Ok(json!({}))
    }

    async fn delete_network(&self, network_id: &str) -> Result<Value, DriverError> {
        let net = match self.network_of(network_id).await {
            Ok(n) => n,
            // Not known (deleted already, or never made): nothing to do.
            Err(DriverError::Refused(_)) => return Ok(json!({})),
            Err(e) => return Err(e),
        };
        self.cluster.set_network_external_id(&net.name, &network_key(&self.opts.host), None).await?;
        let others =
            net.external_ids.keys().any(|k| k.starts_with("docker-network:") && *k != network_key(&self.opts.host));
        if !others && net.external_ids.contains_key(MADE_BY_DOCKER) {
            // The last host lets go; a network with endpoints stays.
            match self.cluster.delete_network(&net.name).await {
                Ok(()) | Err(ClusterError::NoNetwork(_)) => {}
                Err(e) => tracing::info!("network {} stays: {e}", net.name),
            }
        }
        Ok(json!({}))
    }

    async fn create_endpoint(&self, c: CreateEndpoint) -> Result<Value, DriverError> {
        let net = self.network_of(&c.endpoint.network_id).await?;
        let Some(addr) = c.address else {
            return Err(refused("no IPv4 address for the endpoint: use --ipam-driver ovsnet"));
        };
        // A MAC the engine chose (`--mac-address`) replaces the derived one,
        // so that port security expects it.
        let chosen = c.mac.map(|m| m.to_string());
        let written = self
            .cluster
            .set_endpoint_container(&net, &self.opts.host, addr.addr, &c.endpoint.endpoint_id, chosen.as_deref())
            .await?;
        let row = match written {
            Some(row) => row,
            None => {
                // An address from another IPAM driver: published here.
                self.opts.held.hold(&net.name, addr.addr);
                let spec = crate::cluster::EndpointSpec {
                    network: net.name.clone(),
                    host: self.opts.host.clone(),
                    ip: addr.addr,
                    mac: c.mac.map(|m| m.to_string()),
                    container: c.endpoint.endpoint_id.clone(),
                    interface: String::new(),
                    external_ids: BTreeMap::new(),
                };
                self.cluster.publish_endpoint(&spec).await?
            }
        };
        // A spare for it now, so that its flows go in before its Join.
        if let Ok(mac) = row.mac.parse::<Mac>() {
            let ids = self.port_ids(&net, row.ip, mac, &c.endpoint.endpoint_id);
            if let Some(claim) = self.claim_spare(&ids, mac, &net).await {
                let replaced = self.claimed().insert(c.endpoint.endpoint_id.clone(), claim);
                if let Some(old) = replaced {
                    // The engine made the endpoint again: its first claim goes.
                    if let Err(e) = self.unclaim(&old).await {
                        tracing::warn!("the port {} of an endpoint made again: {e}", old.host_end);
                    }
                }
            }
        }
        // The MAC ovsnet derives from the address, unless the engine chose one.
        let reply = match (c.mac, addr.addr) {
            (None, IpAddr::V4(v4)) => EndpointReply {
                interface: Some(InterfaceReply { address: String::new(), mac_address: Mac::from_ipv4(v4).to_string() }),
            },
            _ => EndpointReply::default(),
        };
        Ok(serde_json::to_value(reply).unwrap_or_default())
    }

    /// This host's endpoint row of a Docker endpoint, with its network.
    async fn endpoint_row(&self, e: &EndpointRef) -> Result<(Network, crate::cluster::Endpoint), DriverError> {
        let net = self.network_of(&e.network_id).await?;
        let rows = self.cluster.host_endpoints_of(&self.opts.host, &e.endpoint_id).await?;
        let row = rows
            .into_iter()
            .find(|r| r.network == net.uuid)
            .ok_or_else(|| refused(format!("endpoint {} has no address in network {}", e.endpoint_id, net.name)))?;
        Ok((net, row))
    }

    async fn join(&self, j: Join) -> Result<Value, DriverError> {
        let start = std::time::Instant::now();
        let reply = self.join_inner(j).await;
        // The spare it took is made again now that it is done.
        self.spares.refill();
        let took = start.elapsed();
        metrics::histogram!("ovsnet_driver_join_seconds").record(took.as_secs_f64());
        tracing::info!(took_us = took.as_micros() as u64, ok = reply.is_ok(), "driver join");
        reply
    }

    async fn join_inner(&self, j: Join) -> Result<Value, DriverError> {
        // Where a Join's time goes, logged with it.
        let mut stages = JoinStages::default();
        let mut lap = std::time::Instant::now();
        let mut stage = |into: &mut u64| {
            *into = lap.elapsed().as_micros() as u64;
            lap = std::time::Instant::now();
        };
        let claimed = self.claimed().remove(&j.endpoint.endpoint_id);
        let EndpointPort { host_end, peer: container_end, ids, deferred, gateway } = match claimed {
            // Claimed at CreateEndpoint: its flows are on their way.
            Some(claim) => claim,
            None => {
                let (net, row) = self.endpoint_row(&j.endpoint).await?;
                stage(&mut stages.lookup_us);
                let mac: Mac = row.mac.parse().map_err(|e| refused(format!("endpoint MAC {:?}: {e}", row.mac)))?;
                let ids = self.port_ids(&net, row.ip, mac, &j.endpoint.endpoint_id);
                match self.claim_spare(&ids, mac, &net).await {
                    Some(claim) => {
                        stage(&mut stages.plug_us);
                        claim
                    }
                    None => {
                        let (host_end, peer) = veth_names(&j.endpoint.endpoint_id);
                        self.plug(&(host_end.clone(), peer.clone()), ids.clone(), mac, net.mtu, &mut stages).await?;
                        EndpointPort { host_end, peer, ids, deferred: false, gateway: net.gateway }
                    }
                }
            }
        };
        // Before the engine moves it into the container: TCP must work on
        // the userspace datapath.
        if self.needs_tx_checksum_off().await {
            self.netlink.set_tx_checksum(&container_end, false)?;
        }
        // The container's first packet must find its flows.
        if let Some(rx) = &self.opts.programmed {
            let mut rx = rx.clone();
            let installed = tokio::time::timeout(PROGRAMMED_WAIT, rx.wait_for(|ports| ports.contains(&host_end))).await;
            if !matches!(installed, Ok(Ok(_))) {
                tracing::warn!("join {}: flows not installed within {PROGRAMMED_WAIT:?}; answering anyway", host_end);
            }
        }
        stage(&mut stages.flows_us);
        if deferred {
            // The flows are in: now the claim goes into the database.
            let written = self.write_claim(&host_end, &ids).await;
            self.forget_claim(&host_end);
            if let Err(e) = written {
                let _ = self.remove_port(&host_end).await;
                return Err(e);
            }
            stage(&mut stages.cleanup_us);
        }
        // The port has the endpoint in the database now: no longer held.
        if let (Some(net), Some(ip)) = (ids.get(keys::NETWORK), ids.get(keys::IP)) {
            if let Some(ip) = ip.split('/').next().and_then(|ip| ip.parse().ok()) {
                self.opts.held.release(net, ip);
            }
        }
        tracing::info!(
            lookup_us = stages.lookup_us,
            plug_us = stages.plug_us,
            cleanup_us = stages.cleanup_us,
            flows_us = stages.flows_us,
            "driver join stages"
        );
        let reply = JoinReply {
            interface_name: InterfaceName { src_name: container_end, dst_prefix: "eth".into() },
            gateway: gateway.map(|g| g.to_string()).unwrap_or_default(),
            static_routes: Vec::new(),
            disable_gateway_service: true,
        };
        Ok(serde_json::to_value(reply).unwrap_or_default())
    }

    /// Claims a spare port for an endpoint ([`spare`]): its container end
    /// gets the MAC and MTU, the port the endpoint's `external_ids`.
    /// `None`: no spare was ready, or the claim failed (the spare is then
    /// removed). With the agent in this process the `external_ids` go to
    /// it first, and the database write is left to the caller once the
    /// flows are in (`deferred`).
    async fn claim_spare(&self, ids: &BTreeMap<String, String>, mac: Mac, net: &Network) -> Option<EndpointPort> {
        let mtu = net.mtu;
        let host_end = self.spares.take().await?;
        let peer = spare::container_end(&host_end)?;
        let claimed: Result<bool, DriverError> = async {
            let link = self.netlink.link(&peer).await?;
            self.netlink.change_link(&link, &LinkChange { mac: Some(mac.0), mtu, ..Default::default() }).await?;
            if mtu.is_some() {
                let link = self.netlink.link(&host_end).await?;
                self.netlink.change_link(&link, &LinkChange { mtu, ..Default::default() }).await?;
            }
            match &self.opts.claims {
                Some(tx) => {
                    tx.send_modify(|m| {
                        m.insert(host_end.clone(), ids.clone());
                    });
                    Ok(true)
                }
                None => self.write_claim(&host_end, ids).await.map(|()| false),
            }
        }
        .await;
        match claimed {
            Ok(deferred) => Some(EndpointPort { host_end, peer, ids: ids.clone(), deferred, gateway: net.gateway }),
            Err(e) => {
                tracing::warn!("claiming spare port {host_end}: {e}; plugging a new port");
                let _ = self.remove_port(&host_end).await;
                None
            }
        }
    }

    /// Lets go of a claim no `Join` took: the agent forgets it and the
    /// port goes (its container end has the endpoint's MAC by now).
    async fn unclaim(&self, claim: &EndpointPort) -> Result<(), DriverError> {
        self.forget_claim(&claim.host_end);
        self.remove_port(&claim.host_end).await
    }

    /// Tells the agent in this process to forget a claim (its port now
    /// has the ids in the database, or goes).
    fn forget_claim(&self, host_end: &str) {
        if let Some(tx) = &self.opts.claims {
            tx.send_if_modified(|m| m.remove(host_end).is_some());
        }
    }

    /// Writes a claim: the spare's port gets the endpoint's `external_ids`,
    /// if it is still a spare.
    async fn write_claim(&self, host_end: &str, ids: &BTreeMap<String, String>) -> Result<(), DriverError> {
        let r = self.client.transact(crate::vswitch::DB, spare::claim_ops(host_end, ids)).await?;
        match r.first().and_then(|r| r.count) {
            Some(1) => Ok(()),
            _ => Err(refused(format!("spare port {host_end} is no longer a spare"))),
        }
    }

    /// Plugs a new veth and port for an endpoint (no spare was ready).
    async fn plug(
        &self,
        ends: &(String, String),
        ids: BTreeMap<String, String>,
        mac: Mac,
        mtu: Option<u32>,
        stages: &mut JoinStages,
    ) -> Result<(), DriverError> {
        let mut lap = std::time::Instant::now();
        let mut stage = |into: &mut u64| {
            *into = lap.elapsed().as_micros() as u64;
            lap = std::time::Instant::now();
        };
        let (host_end, container_end) = (ends.0.clone(), ends.1.clone());
        let port = PortSpec { name: host_end.clone(), external_ids: ids, ..PortSpec::default() };
        let veth = (
            VethEnd { name: host_end.clone(), mtu, up: true, ..VethEnd::named(host_end.clone()) },
            VethEnd { name: container_end.clone(), mac: Some(mac.0), mtu, ..VethEnd::named(container_end.clone()) },
        );
        // The link first, then the port: a port added before its link
        // exists costs ovs-vswitchd a failed open and a second pass once
        // the link appears (measured: the flows stage went from 8 to 23 ms
        // at p50 when the two went together).
        let plugged: Result<(), DriverError> = async {
            self.netlink.create_veth(&veth.0, &veth.1).await?;
            if let Err(e) = self.ports.add(port.clone()).await {
                let _ = self.netlink.delete_link_by_name(&host_end).await;
                return Err(e);
            }
            Ok(())
        }
        .await;
        stage(&mut stages.plug_us);
        if let Err(first) = plugged {
            // A join retried after a failure meets its own leftovers (the
            // link exists, or a port of that name with other ids): they
            // go, and the plug is done again.
            tracing::info!(port = host_end, "join: plugging again after: {first}");
            self.remove_port(&host_end).await?;
            self.netlink.create_veth(&veth.0, &veth.1).await?;
            if let Err(e) = self.vswitch.add_ports(&self.opts.bridge, &[port]).await {
                let _ = self.netlink.delete_link_by_name(&host_end).await;
                return Err(e.into());
            }
            stage(&mut stages.cleanup_us);
        }
        Ok(())
    }

    /// Removes an endpoint's port and veth, if they are there.
    async fn remove_port(&self, host_end: &str) -> Result<(), DriverError> {
        self.vswitch.del_port(&self.opts.bridge, host_end, true, false).await?;
        self.netlink.delete_link_by_name(host_end).await?;
        Ok(())
    }

    async fn delete_endpoint(&self, e: &EndpointRef) -> Result<Value, DriverError> {
        // Made and deleted without a Join (the engine gave up between).
        let claimed = self.claimed().remove(&e.endpoint_id);
        if let Some(claim) = claimed {
            self.unclaim(&claim).await?;
            return Ok(json!({}));
        }
        // The endpoint's port: a spare it claimed, or one named after it.
        let mine = Condition::new(
            "external_ids",
            Function::Includes,
            Datum::map([(keys::CONTAINER, e.endpoint_id.as_str()), (keys::BRIDGE, self.opts.bridge.as_str())]),
        );
        let r = self
            .client
            .transact(crate::vswitch::DB, vec![Operation::select("Interface", vec![mine]).columns(["name"])])
            .await?;
        let mut names: Vec<String> = r
            .first()
            .and_then(|r| r.rows.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|row| row.get("name").and_then(Datum::as_str).map(str::to_owned))
            .collect();
        if names.is_empty() {
            names.push(veth_names(&e.endpoint_id).0);
        }
        for name in names {
            self.remove_port(&name).await?;
        }
        Ok(json!({}))
    }

    /// The interfaces of the bridge's attachments (`endpoint`: only that
    /// endpoint's): name and `external_ids`.
    async fn attachment_interfaces(
        &self,
        endpoint: Option<&str>,
    ) -> Result<Vec<(String, BTreeMap<String, String>)>, DriverError> {
        let mut pairs = vec![(keys::BRIDGE, self.opts.bridge.as_str())];
        if let Some(e) = endpoint {
            pairs.push((keys::CONTAINER, e));
        }
        let cond = Condition::new("external_ids", Function::Includes, Datum::map(pairs));
        let r = self
            .client
            .transact(
                crate::vswitch::DB,
                vec![Operation::select("Interface", vec![cond]).columns(["name", "external_ids"])],
            )
            .await?;
        Ok(r.first()
            .and_then(|r| r.rows.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|row| {
                let name = row.get("name").and_then(Datum::as_str)?.to_owned();
                let ids = row.get("external_ids").and_then(Datum::as_string_map)?;
                Some((name, ids))
            })
            .collect())
    }

    /// Sets (or with `None`, removes) the ports an endpoint's interface
    /// publishes: the agent has the host's kernel follow.
    async fn set_published(&self, iface: &str, published: Option<&str>) -> Result<(), DriverError> {
        let name = Condition::eq("name", iface);
        let mut mutations = vec![Mutation::new("external_ids", Mutator::Delete, Datum::set([keys::PUBLISH]))];
        if let Some(p) = published {
            mutations.push(Mutation::new("external_ids", Mutator::Insert, Datum::map([(keys::PUBLISH, p)])));
        }
        let ops = ["Interface", "Port"]
            .into_iter()
            .map(|table| Operation::mutate(table, vec![name.clone()], mutations.clone()))
            .collect();
        self.client.transact(crate::vswitch::DB, ops).await?;
        Ok(())
    }

    /// `docker run -p`: the endpoint's interface records the ports to
    /// publish, unless another endpoint on the bridge publishes one of them
    /// or the network has no way out.
    async fn program_external(&self, c: &ExternalConnectivity) -> Result<Value, DriverError> {
        let wanted = protocol::published_ports(&c.options).map_err(refused)?;
        if wanted.is_empty() {
            return Ok(json!({}));
        }
        PublishedPort::check_together(&wanted).map_err(refused)?;
        let net = self.network_of(&c.endpoint.network_id).await?;
        if net.internal {
            return Err(refused(format!(
                "network {} is internal (no way out): ports cannot be published on it",
                net.name
            )));
        }
        let ifaces = self.attachment_interfaces(None).await?;
        let mine =
            ifaces.iter().find(|(_, ids)| ids.get(keys::CONTAINER) == Some(&c.endpoint.endpoint_id)).ok_or_else(
                || refused(format!("endpoint {} has no port on {}", c.endpoint.endpoint_id, self.opts.bridge)),
            )?;
        for (name, ids) in ifaces.iter().filter(|(name, _)| *name != mine.0) {
            let theirs = ids.get(keys::PUBLISH).and_then(|p| PublishedPort::parse_list(p).ok()).unwrap_or_default();
            for p in &wanted {
                if let Some(q) = theirs.iter().find(|q| q.collides(p)) {
                    let holder = ids.get(keys::IP).map(String::as_str).unwrap_or("?");
                    return Err(refused(format!(
                        "host port {p} is already published by the endpoint {holder} on {} ({q}, port {name})",
                        self.opts.bridge
                    )));
                }
            }
        }
        self.set_published(&mine.0, Some(&PublishedPort::join(&wanted))).await?;
        tracing::info!(port = mine.0, published = PublishedPort::join(&wanted), "driver: ports published");
        Ok(json!({}))
    }

    /// The endpoint's ports are published no more.
    async fn revoke_external(&self, e: &EndpointRef) -> Result<Value, DriverError> {
        // Called at every stop: one row read, not the bridge's.
        let ifaces = self.attachment_interfaces(Some(&e.endpoint_id)).await?;
        let mine = ifaces.iter().find(|(_, ids)| ids.contains_key(keys::PUBLISH));
        if let Some((name, _)) = mine {
            self.set_published(name, None).await?;
        }
        Ok(json!({}))
    }

    async fn dispatch(&self, call: Call) -> Result<Value, DriverError> {
        match call {
            Call::Activate => Ok(protocol::activate_reply()),
            Call::NetworkCapabilities => Ok(protocol::network_capabilities_reply()),
            Call::IpamCapabilities => Ok(protocol::ipam_capabilities_reply()),
            Call::DefaultAddressSpaces => Ok(protocol::default_address_spaces_reply()),
            Call::RequestPool(r) => self.request_pool(r).await,
            Call::ReleasePool { .. } => Ok(json!({})),
            Call::RequestAddress(r) => self.request_address(r).await,
            Call::ReleaseAddress { pool_id, address } => self.release_address(&pool_id, address).await,
            Call::CreateNetwork(c) => self.create_network(c).await,
            Call::DeleteNetwork { network_id } => self.delete_network(&network_id).await,
            Call::CreateEndpoint(c) => self.create_endpoint(c).await,
            Call::EndpointOperInfo(_) => Ok(json!({ "Value": {} })),
            Call::DeleteEndpoint(e) => self.delete_endpoint(&e).await,
            Call::Join(j) => self.join(j).await,
            // The engine moves the interface back out of the container
            // after Leave; it goes with DeleteEndpoint.
            Call::Leave(_) => Ok(json!({})),
            Call::DiscoverNew | Call::DiscoverDelete => Ok(json!({})),
            Call::ProgramExternalConnectivity(c) => self.program_external(&c).await,
            Call::RevokeExternalConnectivity(e) => self.revoke_external(&e).await,
        }
    }
}

impl server::Handler for Driver {
    async fn handle(&self, call: Call) -> Result<Value, String> {
        self.dispatch(call).await.map_err(|e| e.to_string().replace('\n', " "))
    }
}
