//! [`ClusterDb`]: the cluster database over an [`ovsdb::Client`] (the I/O
//! edge of this module). Every write is one transaction; the schema's
//! unique indexes make the server refuse duplicates (an IP twice in a
//! network, a VNI twice, a block twice), so two hosts racing for the same
//! thing cannot both win: the loser's transaction fails as a whole and
//! leaves nothing behind. Allocations then retry with what they now see.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use tokio::sync::watch;

use super::ipam::{self, IpamError};
use super::model::{
    Block, COVERED_KEY, COVERED_VALUE, ClusterState, DB, Endpoint, Host, Ipam, Network, Router, RowError, Service,
    covered_by_block, table,
};
use crate::net::IpNet;
use crate::ovsdb::{
    self, Atom, Cache, Client, Condition, ConnectOptions, Datum, Function, MonitorRequest, Mutation, Mutator, OpResult,
    Operation, Row, Uuid, WaitUntil,
};

/// How many times an allocation retries after losing a race.
const MAX_RETRIES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cluster database: {0}")]
    Ovsdb(#[from] ovsdb::Error),
    #[error(transparent)]
    Row(#[from] RowError),
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error("no network {0} in the cluster database")]
    NoNetwork(String),
    #[error("no host {0} in the cluster database (is its agent registered?)")]
    NoHost(String),
    #[error("network {0} already exists")]
    NetworkExists(String),
    #[error("VNI {vni} is already used by network {holder}")]
    VniInUse { vni: u32, holder: String },
    #[error("network {name} still has {endpoints} endpoint(s); detach them first")]
    NetworkInUse { name: String, endpoints: usize },
    #[error("{ip} is already in use in network {network} by {container} on host {host}")]
    IpInUse { ip: IpAddr, network: String, container: String, host: String },
    #[error("{ip} is not in network {network} ({cidr})")]
    OutsideNetwork { ip: IpAddr, network: String, cidr: IpNet },
    #[error("{0}")]
    BadInput(String),
    #[error("gave up after {0} attempts: other hosts kept taking the same addresses")]
    TooManyRetries(usize),
    #[error("unexpected reply from the cluster database: {0}")]
    Reply(String),
    #[error("host {host} is alive: its agent answered (heartbeat {observed}); stop its agent first, or use --force")]
    HostAlive { host: String, observed: String },
    #[error("no router {0} in the cluster database")]
    NoRouter(String),
    #[error("router {0} already exists")]
    RouterExists(String),
    #[error("network {network} ({cidr}) overlaps network {other} ({other_cidr}) on router {router}")]
    RouterOverlap { router: String, network: String, cidr: IpNet, other: String, other_cidr: IpNet },
    #[error("{ip} is the gateway of network {network}; choose another address")]
    GatewayAddress { ip: IpAddr, network: String },
    #[error(
        "the cluster database is at schema {0}, which has no routers or services: restart its members with this \
         version of ovsnet (`ovsnet cluster start` upgrades the schema)"
    )]
    OldSchema(String),
    #[error("no service {0} in the cluster database")]
    NoService(String),
    #[error("service {0} already exists")]
    ServiceExists(String),
    #[error("{addr} is already the address of service {holder}")]
    ServiceAddrInUse { addr: crate::net::ServiceAddr, holder: String },
    #[error(
        "{ip} is the address of {container} on host {host} in network {network}; a service needs an address of its own"
    )]
    VipIsEndpoint { ip: IpAddr, network: String, container: String, host: String },
}

/// What `service create` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    pub name: String,
    pub network: String,
    pub addr: crate::net::ServiceAddr,
    /// Container names or aliases of the network's endpoints.
    pub backends: Vec<String>,
}

impl ServiceSpec {
    /// Checks what can be checked without the database.
    pub fn check(&self) -> Result<(), ClusterError> {
        check_name("service", &self.name)?;
        check_name("network", &self.network)?;
        if let Some(b) = self.backends.iter().find(|b| !crate::net::is_dns_name(b)) {
            return Err(ClusterError::BadInput(format!(
                "bad backend {b:?}: a container name or alias (letters, digits, '-', '_', '.')"
            )));
        }
        Ok(())
    }
}

/// What [`ClusterDb::remove_host`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct HostRemoval {
    /// Whether a Host row was removed (rows of a host may outlive its row).
    pub host_row: bool,
    pub blocks: u64,
    pub endpoints: u64,
}

impl HostRemoval {
    pub fn is_empty(&self) -> bool {
        !self.host_row && self.blocks == 0 && self.endpoints == 0
    }
}

/// What a host registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    pub name: String,
    pub underlay_ip: IpAddr,
    pub tunnel_types: BTreeSet<String>,
    /// Milliseconds within which the host's agent answers a probe (0: it
    /// answers none, and `host del` removes the host without asking).
    pub probe_timeout_ms: u64,
    pub external_ids: BTreeMap<String, String>,
}

/// What `network create` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSpec {
    pub name: String,
    pub cidr: IpNet,
    /// `None`: the lowest free VNI.
    pub vni: Option<u32>,
    pub ipam: Ipam,
    pub mtu: Option<u32>,
    /// Pool: the size of each host's block (default /24, or the CIDR itself
    /// if it is smaller).
    pub block_prefix: Option<u8>,
    /// Fan: the underlay network (required).
    pub underlay: Option<IpNet>,
    pub gateway: Option<Ipv4Addr>,
    /// No way out through the hosts (Docker's `--internal`).
    pub internal: bool,
    /// Names not in the network are forwarded to the hosts' resolvers by
    /// the agents' DNS (false: NXDOMAIN; `external_ids:dns-forward=off`).
    pub dns_forward: bool,
}

impl NetworkSpec {
    /// Checks what can be checked without the database.
    pub fn check(&self) -> Result<(), ClusterError> {
        let bad = |m: String| Err(ClusterError::BadInput(m));
        check_name("network", &self.name)?;
        if let Some(v) = self.vni
            && !(1..=ipam::MAX_VNI).contains(&v)
        {
            return bad(format!("VNI {v} out of range 1..={}", ipam::MAX_VNI));
        }
        if let Some(m) = self.mtu
            && !(68..=65535).contains(&m)
        {
            return bad(format!("MTU {m} out of range 68..=65535"));
        }
        if let Some(g) = self.gateway
            && !self.cidr.contains(g.into())
        {
            return bad(format!("gateway {g} is not in {}", self.cidr));
        }
        match self.ipam {
            Ipam::Static => {}
            Ipam::Pool => ipam::check_block_prefix(self.cidr, self.effective_block_prefix())?,
            Ipam::Fan => {
                let Some(u) = self.underlay else {
                    return bad("fan networks need --underlay CIDR (the hosts' network, e.g. 172.30.0.0/16)".into());
                };
                // A host address in the middle of the underlay must map.
                let probe = match u.addr {
                    IpAddr::V4(a) => Ipv4Addr::from(u32::from(a) | 1),
                    IpAddr::V6(_) => return Err(IpamError::NotIpv4(u).into()),
                };
                ipam::fan_block(self.cidr, u, probe)?;
            }
        }
        if self.ipam != Ipam::Static && !self.cidr.is_ipv4() {
            return Err(IpamError::NotIpv4(self.cidr).into());
        }
        Ok(())
    }

    fn effective_block_prefix(&self) -> u8 {
        self.block_prefix.unwrap_or(self.cidr.prefix.max(24))
    }
}

/// An endpoint to publish (its address already chosen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSpec {
    pub network: String,
    pub host: String,
    pub ip: IpAddr,
    /// Default: the MAC ovsnet derives from the address.
    pub mac: Option<String>,
    pub container: String,
    pub interface: String,
    pub external_ids: BTreeMap<String, String>,
}

/// The cluster database.
#[derive(Debug, Clone)]
pub struct ClusterDb {
    client: Client,
}

/// A schema version (`MAJOR.MINOR.PATCH`) as numbers, for comparing.
fn version_key(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// Names of networks and routers: 1-64 characters of `[A-Za-z0-9_.-]`.
fn check_name(what: &str, name: &str) -> Result<(), ClusterError> {
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return Err(ClusterError::BadInput(format!("bad {what} name {name:?}: 1-64 characters of [A-Za-z0-9_.-]")));
    }
    Ok(())
}

fn is_constraint(e: &ovsdb::Error) -> bool {
    matches!(e, ovsdb::Error::Transaction { error: ovsdb::ErrorTag::ConstraintViolation, .. })
}

fn is_referential(e: &ovsdb::Error) -> bool {
    matches!(e, ovsdb::Error::Transaction { error: ovsdb::ErrorTag::ReferentialIntegrityViolation, .. })
}

fn string_map(m: &BTreeMap<String, String>) -> Datum {
    Datum::map(m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

fn opt<T: Into<Atom>>(v: Option<T>) -> Datum {
    Datum::set(v.map(Into::into))
}

fn rows(results: &[OpResult], i: usize) -> Result<&[Row], ClusterError> {
    results.get(i).and_then(|r| r.rows.as_deref()).ok_or_else(|| ClusterError::Reply(format!("no rows in result {i}")))
}

/// Removes the [`COVERED_KEY`] marker from every Endpoint row of `host`.
fn unmark_host_endpoints(host: &str) -> Operation {
    Operation::mutate(
        table::ENDPOINT,
        vec![Condition::eq("host", host)],
        vec![Mutation::new("external_ids", Mutator::Delete, Datum::map([(COVERED_KEY, COVERED_VALUE)]))],
    )
}

/// The monitor condition on Endpoint for `host`: its own rows, and every
/// row without the [`COVERED_KEY`] marker. In `monitor_cond` the clauses
/// of a `where` are alternatives (a row matching any of them is sent),
/// unlike the conditions of a transaction's operations, which must all hold.
pub fn host_endpoint_condition(host: &str) -> Vec<Condition> {
    vec![
        Condition::eq("host", host),
        Condition::new("external_ids", Function::Excludes, Datum::map([(COVERED_KEY, COVERED_VALUE)])),
    ]
}

fn row_uuid(row: &Row) -> Result<Uuid, ClusterError> {
    row.get("_uuid").and_then(Datum::as_uuid).ok_or_else(|| ClusterError::Reply("row without _uuid".into()))
}

impl ClusterDb {
    pub fn new(client: Client) -> Self {
        ClusterDb { client }
    }

    /// Connects to the cluster (a comma-separated list of members). Each
    /// request is bounded by `opts.request_timeout`, or `opts.timeout`.
    pub async fn connect(remotes: &str, opts: &ConnectOptions) -> Result<Self, ClusterError> {
        let mut opts = opts.clone();
        opts.database.get_or_insert_with(|| DB.to_owned());
        // A request caught in a fail-over can go unanswered; bound every
        // request so callers see an error and retry instead of hanging.
        opts.request_timeout.get_or_insert(opts.timeout);
        // Several members: right after the leader dies, each survivor says
        // "not the leader" until the election ends (1 to 3 s). That is not
        // a dead cluster: keep trying them until the timeout.
        if remotes.contains(',') {
            opts.fail_fast = false;
        }
        Ok(ClusterDb { client: Client::connect(remotes, &opts).await? })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn transact(&self, ops: Vec<Operation>) -> Result<Vec<OpResult>, ovsdb::Error> {
        self.client.transact(DB, ops).await
    }

    /// Reads every table once.
    pub async fn state(&self) -> Result<ClusterState, ClusterError> {
        let schema = self.client.get_schema(DB).await?;
        let mut tables = vec![table::HOST, table::NETWORK, table::BLOCK, table::ENDPOINT];
        if schema.tables.contains_key(table::ROUTER) {
            tables.push(table::ROUTER);
        }
        let results = self.transact(tables.iter().map(|t| Operation::select(t, vec![])).collect()).await?;
        let mut cache = Cache::new(schema);
        let mut upd = crate::ovsdb::TableUpdates::default();
        for (i, t) in tables.iter().enumerate() {
            let mut m = BTreeMap::new();
            for row in rows(&results, i)? {
                m.insert(row_uuid(row)?, crate::ovsdb::RowUpdate::Initial(row.clone()));
            }
            upd.0.insert((*t).to_owned(), m);
        }
        cache.apply(&upd).map_err(ovsdb::Error::from)?;
        Ok(ClusterState::from_cache(&cache))
    }

    /// Registers a host, or updates its row (same name): its underlay
    /// address and tunnel types are what the other hosts will use.
    pub async fn register_host(&self, spec: &HostSpec) -> Result<Uuid, ClusterError> {
        let mut row = Row::new();
        row.insert("underlay_ip".into(), Datum::from(spec.underlay_ip.to_string()));
        row.insert("tunnel_types".into(), Datum::set(spec.tunnel_types.iter().map(String::as_str)));
        // Today's agents answer probes; none beats on a timer.
        row.insert("heartbeat_interval".into(), Datum::from(0i64));
        let schema = self.client.get_schema(DB).await?;
        if schema.tables.get(table::HOST).is_some_and(|t| t.columns.contains_key("probe_timeout")) {
            row.insert("probe_timeout".into(), Datum::from(i64::try_from(spec.probe_timeout_ms).unwrap_or(i64::MAX)));
        } else if spec.probe_timeout_ms > 0 {
            tracing::warn!(
                "the cluster database's schema {} has no probes (`ovsnet cluster upgrade` adds them): \
                 `host del` cannot tell that host {} is alive",
                schema.version.as_deref().unwrap_or("?"),
                spec.name
            );
        }
        row.insert("external_ids".into(), string_map(&spec.external_ids));
        let by_name = || vec![Condition::eq("name", spec.name.as_str())];
        let underlay = spec.underlay_ip.to_string();
        for _ in 0..MAX_RETRIES {
            let found = self
                .transact(vec![Operation::select(table::HOST, by_name()).columns(["_uuid", "underlay_ip"])])
                .await?;
            let first = rows(&found, 0)?.first();
            let existing = first.map(row_uuid).transpose()?;
            let moved = first.is_some_and(|r| r.get("underlay_ip").and_then(Datum::as_str) != Some(underlay.as_str()));
            let result = match existing {
                Some(uuid) => {
                    let mut ops = vec![Operation::update(table::HOST, vec![Condition::uuid(uuid)], row.clone())];
                    if moved {
                        // The host's Fan blocks move with its underlay
                        // address: its rows marked covered may no longer
                        // be, so every host follows them again.
                        ops.push(unmark_host_endpoints(&spec.name));
                    }
                    self.transact(ops).await.map(|_| uuid)
                }
                None => {
                    let mut new = row.clone();
                    new.insert("name".into(), Datum::from(spec.name.as_str()));
                    new.insert("heartbeat".into(), Datum::from(0i64));
                    self.transact(vec![Operation::insert(table::HOST, new)]).await.and_then(|r| {
                        r.first().and_then(|r| r.uuid).ok_or(ovsdb::Error::Protocol("insert without uuid".into()))
                    })
                }
            };
            match result {
                Ok(uuid) => return Ok(uuid),
                // Another registration of the same name (or underlay
                // address) won the race: read again.
                Err(e) if is_constraint(&e) && existing.is_none() => {
                    let again =
                        self.transact(vec![Operation::select(table::HOST, by_name()).columns(["_uuid"])]).await?;
                    if rows(&again, 0)?.is_empty() {
                        return Err(ClusterError::BadInput(format!(
                            "underlay address {} is already registered by another host",
                            spec.underlay_ip
                        )));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ClusterError::TooManyRetries(MAX_RETRIES))
    }

    /// Asks `host`'s agent whether it is alive: bumps the Host row's
    /// `probe` and returns its `heartbeat` (the last probe answered) as it
    /// was in the same transaction. A live agent answers by copying `probe`
    /// to `heartbeat` ([`answer_probe`](Self::answer_probe)), so the
    /// heartbeat moving from the value returned means the host is alive.
    pub async fn probe_host(&self, host: &str) -> Result<i64, ClusterError> {
        let by_name = || vec![Condition::eq("name", host)];
        let r = self
            .transact(vec![
                Operation::mutate(table::HOST, by_name(), vec![Mutation::new("probe", Mutator::Add, 1i64)]),
                Operation::select(table::HOST, by_name()).columns(["heartbeat"]),
            ])
            .await?;
        let row = rows(&r, 1)?.first().ok_or_else(|| ClusterError::NoHost(host.to_owned()))?;
        Ok(row.get("heartbeat").and_then(Datum::as_integer).unwrap_or(0))
    }

    /// The agent's answer to a probe: `heartbeat := probe` on its own row.
    pub async fn answer_probe(&self, host: &str, probe: i64) -> Result<(), ClusterError> {
        let row: Row = [("heartbeat".to_owned(), Datum::from(probe))].into_iter().collect();
        let r = self.transact(vec![Operation::update(table::HOST, vec![Condition::eq("name", host)], row)]).await?;
        match r.first().and_then(|r| r.count) {
            Some(0) => Err(ClusterError::NoHost(host.to_owned())),
            _ => Ok(()),
        }
    }

    /// Follows `host`'s own Host row, only its `probe` and `heartbeat`
    /// columns: what its agent needs to answer probes and to notice its
    /// row removed. Nobody else's beats or probes reach it.
    pub async fn watch_probes(&self, host: &str) -> Result<ProbeWatch, ClusterError> {
        let request = MonitorRequest::columns(["name", "probe", "heartbeat"]).where_(vec![Condition::eq("name", host)]);
        let monitor = self.client.monitor_cond_since(DB, &[(table::HOST, request)]).await?;
        let mut cache = Cache::new(self.client.get_schema(DB).await?);
        cache.apply(&monitor.initial).map_err(ovsdb::Error::from)?;
        Ok(ProbeWatch { monitor, cache })
    }

    /// Removes a host's row, its blocks and its endpoints.
    pub async fn unregister_host(&self, host: &str) -> Result<(), ClusterError> {
        self.transact(vec![
            Operation::delete(table::ENDPOINT, vec![Condition::eq("host", host)]),
            Operation::delete(table::BLOCK, vec![Condition::eq("host", host)]),
            Operation::delete(table::HOST, vec![Condition::eq("name", host)]),
        ])
        .await?;
        Ok(())
    }

    /// Forgets a host: its Endpoint rows, its Block rows and its Host row,
    /// in one transaction. With `unless_heartbeat_moved_from`, the
    /// transaction first checks that the host's heartbeat still has that
    /// value (a `wait` with no timeout), so a host whose agent came back
    /// after it was judged gone is left alone ([`ClusterError::HostAlive`]).
    /// Rows of a host without a Host row are removed too; nothing at all to
    /// remove is [`ClusterError::NoHost`], with nothing written.
    pub async fn remove_host(
        &self,
        host: &str,
        unless_heartbeat_moved_from: Option<i64>,
    ) -> Result<HostRemoval, ClusterError> {
        let by_host = || vec![Condition::eq("host", host)];
        let mut ops = Vec::with_capacity(4);
        if let Some(beat) = unless_heartbeat_moved_from {
            let row: Row = [("heartbeat".to_owned(), Datum::from(beat))].into_iter().collect();
            ops.push(Operation::wait(
                table::HOST,
                vec![Condition::eq("name", host)],
                vec!["heartbeat".to_owned()],
                ovsdb::WaitUntil::Equal,
                vec![row],
                Some(0),
            ));
        }
        let first = ops.len();
        ops.push(Operation::delete(table::ENDPOINT, by_host()));
        ops.push(Operation::delete(table::BLOCK, by_host()));
        ops.push(Operation::delete(table::HOST, vec![Condition::eq("name", host)]));
        // Nothing to remove: abort, so the answer is "no such host" and the
        // log holds no empty commit.
        let r = match self.transact(ops).await {
            Ok(r) => r,
            Err(ovsdb::Error::Transaction { index: 0, error: ovsdb::ErrorTag::TimedOut, .. })
                if unless_heartbeat_moved_from.is_some() =>
            {
                // The check failed: the heartbeat moved, or the Host row
                // went away meanwhile (then the rest is removed unchecked).
                return match self.host(host).await {
                    Err(ClusterError::NoHost(_)) => Box::pin(self.remove_host(host, None)).await,
                    Err(e) => Err(e),
                    Ok(h) => Err(ClusterError::HostAlive {
                        host: host.to_owned(),
                        observed: format!("to {} while it was being removed", h.heartbeat),
                    }),
                };
            }
            Err(e) => return Err(e.into()),
        };
        let count = |i: usize| r.get(first + i).and_then(|r| r.count).unwrap_or(0);
        let removed = HostRemoval { host_row: count(2) > 0, blocks: count(1), endpoints: count(0) };
        if removed.is_empty() {
            return Err(ClusterError::NoHost(host.to_owned()));
        }
        Ok(removed)
    }

    /// Watches `host`'s heartbeat for up to `window`: `Ok(Some(n))` with the
    /// new value as soon as it differs from `from`, `Ok(None)` if it did not
    /// move in the window. A host whose row goes away meanwhile is
    /// [`ClusterError::NoHost`].
    pub async fn heartbeat_moves(
        &self,
        host: &str,
        from: i64,
        window: std::time::Duration,
    ) -> Result<Option<i64>, ClusterError> {
        let schema = self.client.get_schema(DB).await?;
        let request = MonitorRequest::columns(["name", "heartbeat"]).where_(vec![Condition::eq("name", host)]);
        let mut monitor = self.client.monitor_cond(DB, &[(table::HOST, request)]).await?;
        let mut cache = Cache::new(schema);
        let beat = |cache: &Cache| -> Result<i64, ClusterError> {
            let (uuid, _) = cache.table(table::HOST).next().ok_or_else(|| ClusterError::NoHost(host.to_owned()))?;
            // The server leaves a column at its default out of an update2.
            cache
                .get(table::HOST, uuid, "heartbeat")
                .as_ref()
                .and_then(Datum::as_integer)
                .ok_or_else(|| ClusterError::Reply(format!("host {host} without a heartbeat")))
        };
        cache.apply(&monitor.initial).map_err(ovsdb::Error::from)?;
        let deadline = tokio::time::Instant::now() + window;
        loop {
            let now = beat(&cache)?;
            if now != from {
                return Ok(Some(now));
            }
            let ev = match tokio::time::timeout_at(deadline, monitor.next()).await {
                Err(_) => return Ok(None),
                Ok(None) => return Err(ovsdb::Error::Disconnected.into()),
                Ok(Some(ev)) => ev,
            };
            ev.apply_to(&mut cache).map_err(ovsdb::Error::from)?;
        }
    }

    /// `network create`: one insert; the name and VNI indexes refuse
    /// duplicates. Without a VNI, takes the lowest free one (retrying if
    /// another creation took it at the same moment).
    pub async fn create_network(&self, spec: &NetworkSpec) -> Result<Network, ClusterError> {
        spec.check()?;
        for _ in 0..MAX_RETRIES {
            let found = self
                .transact(vec![Operation::select(table::NETWORK, vec![]).columns(["_uuid", "name", "vni"])])
                .await?;
            let mut used = BTreeMap::new();
            for r in rows(&found, 0)? {
                let name = r.get("name").and_then(Datum::as_str).unwrap_or_default().to_owned();
                if name == spec.name {
                    return Err(ClusterError::NetworkExists(spec.name.clone()));
                }
                if let Some(v) = r.get("vni").and_then(Datum::as_integer).and_then(|v| u32::try_from(v).ok()) {
                    used.insert(v, name);
                }
            }
            let vni = match spec.vni {
                Some(v) => {
                    if let Some(holder) = used.get(&v) {
                        return Err(ClusterError::VniInUse { vni: v, holder: holder.clone() });
                    }
                    v
                }
                None => ipam::lowest_free_vni(&used.keys().copied().collect())?,
            };
            let mut row = Row::new();
            row.insert("name".into(), Datum::from(spec.name.as_str()));
            row.insert("vni".into(), Datum::from(i64::from(vni)));
            row.insert("cidr".into(), Datum::from(spec.cidr.to_string()));
            row.insert("ipam".into(), Datum::from(spec.ipam.as_str()));
            row.insert("mtu".into(), opt(spec.mtu.map(i64::from)));
            row.insert(
                "block_prefix".into(),
                opt((spec.ipam == Ipam::Pool).then(|| i64::from(spec.effective_block_prefix()))),
            );
            row.insert("underlay".into(), opt(spec.underlay.filter(|_| spec.ipam == Ipam::Fan).map(|u| u.to_string())));
            // Every network has a gateway: the one given, or its first address.
            let gateway = spec.gateway.or_else(|| ipam::default_gateway(spec.cidr));
            row.insert("gateway".into(), opt(gateway.map(|g| g.to_string())));
            if spec.internal {
                row.insert("internal".into(), Datum::from(true));
            }
            if !spec.dns_forward {
                row.insert("external_ids".into(), Datum::map([(super::network_keys::DNS_FORWARD, "off")]));
            }
            match self.transact(vec![Operation::insert(table::NETWORK, row.clone())]).await {
                Ok(r) => {
                    let uuid = r
                        .first()
                        .and_then(|r| r.uuid)
                        .ok_or_else(|| ClusterError::Reply("insert without uuid".into()))?;
                    return Ok(Network::from_row(uuid, &row)?);
                }
                Err(e) if is_constraint(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ClusterError::TooManyRetries(MAX_RETRIES))
    }

    pub async fn networks(&self) -> Result<Vec<Network>, ClusterError> {
        let r = self.transact(vec![Operation::select(table::NETWORK, vec![])]).await?;
        let mut out = rows(&r, 0)?
            .iter()
            .map(|row| Ok(Network::from_row(row_uuid(row)?, row)?))
            .collect::<Result<Vec<_>, ClusterError>>()?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub async fn network(&self, name: &str) -> Result<Network, ClusterError> {
        let r = self.transact(vec![Operation::select(table::NETWORK, vec![Condition::eq("name", name)])]).await?;
        let row = rows(&r, 0)?.first().ok_or_else(|| ClusterError::NoNetwork(name.to_owned()))?;
        Ok(Network::from_row(row_uuid(row)?, row)?)
    }

    /// `network del`: refused while endpoints refer to the network (the
    /// strong references make the server refuse it, atomically with any
    /// attach racing with the delete). The network's blocks go with it.
    pub async fn delete_network(&self, name: &str) -> Result<(), ClusterError> {
        let net = self.network(name).await?;
        let ops = vec![
            Operation::delete(table::BLOCK, vec![Condition::eq("network", net.uuid)]),
            Operation::delete(table::NETWORK, vec![Condition::uuid(net.uuid)]),
        ];
        match self.transact(ops).await {
            Ok(_) => Ok(()),
            Err(e) if is_referential(&e) => {
                let r = self
                    .transact(vec![
                        Operation::select(table::ENDPOINT, vec![Condition::eq("network", net.uuid)]).columns(["_uuid"]),
                    ])
                    .await?;
                Err(ClusterError::NetworkInUse { name: name.to_owned(), endpoints: rows(&r, 0)?.len() })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Publishes an endpoint whose address is chosen. Fails with
    /// [`ClusterError::IpInUse`] if the address is taken in that network,
    /// by whoever got there first; nothing is written then.
    pub async fn publish_endpoint(&self, spec: &EndpointSpec) -> Result<Endpoint, ClusterError> {
        let net = self.network(&spec.network).await?;
        self.insert_endpoint(&net, spec).await
    }

    async fn insert_endpoint(&self, net: &Network, spec: &EndpointSpec) -> Result<Endpoint, ClusterError> {
        if !net.cidr.contains(spec.ip) {
            return Err(ClusterError::OutsideNetwork { ip: spec.ip, network: net.name.clone(), cidr: net.cidr });
        }
        if net.gateway.is_some_and(|g| IpAddr::V4(g) == spec.ip) {
            return Err(ClusterError::GatewayAddress { ip: spec.ip, network: net.name.clone() });
        }
        let mac = match (&spec.mac, spec.ip) {
            (Some(m), _) => m.clone(),
            (None, IpAddr::V4(v4)) => crate::net::Mac(ipam::mac_for(v4)).to_string(),
            (None, IpAddr::V6(_)) => return Err(ClusterError::BadInput("an IPv6 endpoint needs a MAC".into())),
        };
        // The marker is ovsnet's to set, never the caller's.
        let mut ids = spec.external_ids.clone();
        ids.remove(COVERED_KEY);
        let check = match self.covering_block(net, &spec.host).await? {
            Some((block, check)) if covered_by_block(Some(block), spec.ip, &mac) => Some(check),
            _ => None,
        };
        let mut row = Row::new();
        row.insert("network".into(), Datum::from(net.uuid));
        row.insert("host".into(), Datum::from(spec.host.as_str()));
        row.insert("ip".into(), Datum::from(spec.ip.to_string()));
        row.insert("mac".into(), Datum::from(mac));
        row.insert("container".into(), Datum::from(spec.container.as_str()));
        row.insert("interface".into(), Datum::from(spec.interface.as_str()));
        let marked = match check {
            Some(check) => {
                // Marked only if the block is still what it was checked
                // to be when the row is committed.
                let mut marked = ids.clone();
                marked.insert(COVERED_KEY.to_owned(), COVERED_VALUE.to_owned());
                row.insert("external_ids".into(), string_map(&marked));
                match self.transact(vec![check, Operation::insert(table::ENDPOINT, row.clone())]).await {
                    // The block changed meanwhile: written unmarked.
                    Err(ovsdb::Error::Transaction { index: 0, error: ovsdb::ErrorTag::TimedOut, .. }) => None,
                    r => Some(r.map(|r| r.into_iter().skip(1).collect::<Vec<_>>())),
                }
            }
            None => None,
        };
        let result = match marked {
            Some(r) => r,
            None => {
                row.insert("external_ids".into(), string_map(&ids));
                self.transact(vec![Operation::insert(table::ENDPOINT, row.clone())]).await
            }
        };
        match result {
            Ok(r) => {
                let uuid =
                    r.first().and_then(|r| r.uuid).ok_or_else(|| ClusterError::Reply("insert without uuid".into()))?;
                Ok(Endpoint::from_row(uuid, &row)?)
            }
            Err(e) if is_constraint(&e) => {
                let holder = self.endpoint_at(net, spec.ip).await?;
                Err(ClusterError::IpInUse {
                    ip: spec.ip,
                    network: net.name.clone(),
                    container: holder.as_ref().map(|h| h.container.clone()).unwrap_or_else(|| "?".into()),
                    host: holder.map(|h| h.host).unwrap_or_else(|| "?".into()),
                })
            }
            Err(e) if is_referential(&e) => Err(ClusterError::NoNetwork(net.name.clone())),
            Err(e) => Err(e.into()),
        }
    }

    /// The block `host` has in `net` now, without claiming one, with a
    /// `wait` operation that fails its transaction unless the block is
    /// still the same then: the pool Block row, or for Fan the host's
    /// underlay address. `None`: a static network, a pool host without a
    /// block, a host with no Host row or an underlay the Fan does not map.
    async fn covering_block(&self, net: &Network, host: &str) -> Result<Option<(IpNet, Operation)>, ClusterError> {
        let same = |t: &str, conds: Vec<Condition>, col: &str, value: String| {
            let row: Row = [(col.to_owned(), Datum::from(value))].into_iter().collect();
            Operation::wait(t, conds, vec![col.to_owned()], ovsdb::WaitUntil::Equal, vec![row], Some(0))
        };
        match net.ipam {
            Ipam::Static => Ok(None),
            Ipam::Fan => {
                let r = self
                    .transact(vec![
                        Operation::select(table::HOST, vec![Condition::eq("name", host)]).columns(["underlay_ip"]),
                    ])
                    .await?;
                let Some(underlay) = rows(&r, 0)?.first().and_then(|r| r.get("underlay_ip")).and_then(Datum::as_str)
                else {
                    return Ok(None);
                };
                let Some(block) = underlay.parse().ok().and_then(|u| net.fan_block(u).ok().flatten()) else {
                    return Ok(None);
                };
                let check = same(table::HOST, vec![Condition::eq("name", host)], "underlay_ip", underlay.to_owned());
                Ok(Some((block, check)))
            }
            Ipam::Pool => {
                let by = || vec![Condition::eq("network", net.uuid), Condition::eq("host", host)];
                let r = self.transact(vec![Operation::select(table::BLOCK, by()).columns(["cidr"])]).await?;
                let cidr = rows(&r, 0)?.first().and_then(|r| r.get("cidr")).and_then(Datum::as_str).map(str::to_owned);
                let Some(block) = cidr.as_deref().and_then(|c| IpNet::parse_network(c).ok()) else {
                    return Ok(None);
                };
                Ok(cidr.map(|c| (block, same(table::BLOCK, by(), "cidr", c))))
            }
        }
    }

    async fn endpoint_at(&self, net: &Network, ip: IpAddr) -> Result<Option<Endpoint>, ClusterError> {
        let r = self
            .transact(vec![Operation::select(
                table::ENDPOINT,
                vec![Condition::eq("network", net.uuid), Condition::eq("ip", ip.to_string())],
            )])
            .await?;
        rows(&r, 0)?.first().map(|row| Ok(Endpoint::from_row(row_uuid(row)?, row)?)).transpose()
    }

    /// Sets the `container` (and, when given, the `mac`) of `host`'s
    /// endpoint holding `ip` in `net`, and returns the row as it is then,
    /// read in the same transaction (`None`: `host` holds no such row).
    pub async fn set_endpoint_container(
        &self,
        net: &Network,
        host: &str,
        ip: IpAddr,
        container: &str,
        mac: Option<&str>,
    ) -> Result<Option<Endpoint>, ClusterError> {
        let mut row = Row::new();
        row.insert("container".into(), Datum::from(container));
        if let Some(mac) = mac {
            row.insert("mac".into(), Datum::from(mac));
        }
        let the_row =
            vec![Condition::eq("network", net.uuid), Condition::eq("ip", ip.to_string()), Condition::eq("host", host)];
        let r = self
            .transact(vec![
                Operation::update(table::ENDPOINT, the_row.clone(), row),
                Operation::select(table::ENDPOINT, the_row),
            ])
            .await?;
        rows(&r, 1)?.first().map(|row| Ok(Endpoint::from_row(row_uuid(row)?, row)?)).transpose()
    }

    /// Sets the `external_ids` keys `keys` of `host`'s endpoints whose
    /// `container` is `container` to `values` (a key missing from `values`
    /// is removed). Returns how many rows it changed.
    pub async fn set_endpoint_external_ids(
        &self,
        host: &str,
        container: &str,
        keys: &[&str],
        values: &BTreeMap<String, String>,
    ) -> Result<u64, ClusterError> {
        let mut mutations = vec![Mutation::new("external_ids", Mutator::Delete, Datum::set(keys.iter().copied()))];
        if !values.is_empty() {
            mutations.push(Mutation::new(
                "external_ids",
                Mutator::Insert,
                Datum::map(values.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            ));
        }
        let r = self
            .transact(vec![Operation::mutate(
                table::ENDPOINT,
                vec![Condition::eq("host", host), Condition::eq("container", container)],
                mutations,
            )])
            .await?;
        Ok(r.first().and_then(|r| r.count).unwrap_or(0))
    }

    /// `host`'s endpoints whose `container` is `container`.
    pub async fn host_endpoints_of(&self, host: &str, container: &str) -> Result<Vec<Endpoint>, ClusterError> {
        let r = self
            .transact(vec![Operation::select(
                table::ENDPOINT,
                vec![Condition::eq("host", host), Condition::eq("container", container)],
            )])
            .await?;
        rows(&r, 0)?.iter().map(|row| Ok(Endpoint::from_row(row_uuid(row)?, row)?)).collect()
    }

    /// Renames a network (false: no network has the old name). A name
    /// another network has is refused by the database's index.
    pub async fn rename_network(&self, old: &str, new: &str) -> Result<bool, ClusterError> {
        let mut row = Row::new();
        row.insert("name".into(), Datum::from(new));
        let r = self.transact(vec![Operation::update(table::NETWORK, vec![Condition::eq("name", old)], row)]).await?;
        Ok(r.first().and_then(|r| r.count).unwrap_or(0) > 0)
    }

    /// Sets (`Some`) or removes (`None`) one `external_ids` key of a network.
    pub async fn set_network_external_id(
        &self,
        name: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), ClusterError> {
        let by_name = || vec![Condition::eq("name", name)];
        let mut mutations = vec![Mutation::new("external_ids", Mutator::Delete, Datum::set([key]))];
        if let Some(v) = value {
            mutations.push(Mutation::new("external_ids", Mutator::Insert, Datum::map([(key, v)])));
        }
        let r = self.transact(vec![Operation::mutate(table::NETWORK, by_name(), mutations)]).await?;
        match r.first().and_then(|r| r.count) {
            Some(0) => Err(ClusterError::NoNetwork(name.to_owned())),
            _ => Ok(()),
        }
    }

    /// Converts the database to the schema built into this binary when the
    /// server holds an older version (RFC 7047's `convert`, done online as
    /// `ovsdb-client convert` does; a clustered database converts through
    /// Raft). Returns the versions (from, to) when it converted.
    pub async fn upgrade_schema(&self) -> Result<Option<(String, String)>, ClusterError> {
        let ours = crate::ovsdb::DatabaseSchema::from_json(
            &serde_json::from_str(super::model::SCHEMA).map_err(|e| ClusterError::Reply(e.to_string()))?,
        )
        .map_err(|e| ClusterError::Reply(format!("the built-in schema: {e}")))?;
        let theirs = self.client.get_schema(DB).await?;
        let (from, to) = (theirs.version.clone().unwrap_or_default(), ours.version.clone().unwrap_or_default());
        if version_key(&from) >= version_key(&to) {
            return Ok(None);
        }
        let schema: serde_json::Value =
            serde_json::from_str(super::model::SCHEMA).map_err(|e| ClusterError::Reply(e.to_string()))?;
        self.client.request("convert", serde_json::json!([DB, schema])).await?;
        Ok(Some((from, to)))
    }

    /// Fails with [`ClusterError::OldSchema`] when the database has no
    /// Router table (schema 1.0.0).
    async fn check_routers(&self) -> Result<(), ClusterError> {
        let schema = self.client.get_schema(DB).await?;
        if schema.tables.contains_key(table::ROUTER) {
            Ok(())
        } else {
            Err(ClusterError::OldSchema(schema.version.clone().unwrap_or_else(|| "1.0.0".into())))
        }
    }

    /// The routers, by name, each with its networks' names (sorted).
    pub async fn routers(&self) -> Result<Vec<(Router, Vec<String>)>, ClusterError> {
        self.check_routers().await?;
        let r = self
            .transact(vec![
                Operation::select(table::ROUTER, vec![]),
                Operation::select(table::NETWORK, vec![]).columns(["_uuid", "name"]),
            ])
            .await?;
        let names: BTreeMap<Uuid, String> = rows(&r, 1)?
            .iter()
            .filter_map(|row| Some((row_uuid(row).ok()?, row.get("name")?.as_str()?.to_owned())))
            .collect();
        let mut out = Vec::new();
        for row in rows(&r, 0)? {
            let router = Router::from_row(row_uuid(row)?, row)?;
            let mut nets: Vec<String> = router.networks.iter().filter_map(|u| names.get(u).cloned()).collect();
            nets.sort();
            out.push((router, nets));
        }
        out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        Ok(out)
    }

    /// One router with its networks' names.
    pub async fn router(&self, name: &str) -> Result<(Router, Vec<String>), ClusterError> {
        self.routers()
            .await?
            .into_iter()
            .find(|(r, _)| r.name == name)
            .ok_or_else(|| ClusterError::NoRouter(name.into()))
    }

    /// Fails with [`ClusterError::OldSchema`] when the database has no
    /// Service table (before schema 1.2.0).
    async fn check_services(&self) -> Result<(), ClusterError> {
        let schema = self.client.get_schema(DB).await?;
        if schema.tables.contains_key(table::SERVICE) {
            Ok(())
        } else {
            Err(ClusterError::OldSchema(schema.version.clone().unwrap_or_else(|| "1.0.0".into())))
        }
    }

    /// The services, by name.
    pub async fn services(&self) -> Result<Vec<Service>, ClusterError> {
        self.check_services().await?;
        let r = self.transact(vec![Operation::select(table::SERVICE, vec![])]).await?;
        let mut out = rows(&r, 0)?
            .iter()
            .map(|row| Ok(Service::from_row(row_uuid(row)?, row)?))
            .collect::<Result<Vec<_>, ClusterError>>()?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// One service.
    pub async fn service(&self, name: &str) -> Result<Service, ClusterError> {
        self.services().await?.into_iter().find(|s| s.name == name).ok_or_else(|| ClusterError::NoService(name.into()))
    }

    /// `service create`: one insert, with the lowest free group id. The
    /// address must be in no other service of the network (same port and
    /// protocol) and not an endpoint's; the indexes refuse a duplicate
    /// name or address written at the same moment.
    pub async fn create_service(&self, spec: &ServiceSpec) -> Result<Service, ClusterError> {
        spec.check()?;
        self.check_services().await?;
        let net = self.network(&spec.network).await?;
        let vip = IpAddr::V4(spec.addr.ip);
        if net.gateway.map(IpAddr::V4) == Some(vip) {
            return Err(ClusterError::GatewayAddress { ip: vip, network: net.name.clone() });
        }
        for _ in 0..MAX_RETRIES {
            let r = self
                .transact(vec![
                    Operation::select(table::SERVICE, vec![]),
                    Operation::select(
                        table::ENDPOINT,
                        vec![Condition::eq("network", net.uuid), Condition::eq("ip", vip.to_string())],
                    ),
                ])
                .await?;
            let existing = rows(&r, 0)?
                .iter()
                .filter_map(|row| Service::from_row(row_uuid(row).ok()?, row).ok())
                .collect::<Vec<_>>();
            if existing.iter().any(|s| s.name == spec.name) {
                return Err(ClusterError::ServiceExists(spec.name.clone()));
            }
            if let Some(s) = existing.iter().find(|s| {
                s.network == spec.network
                    && s.vip == spec.addr.ip
                    && s.port == spec.addr.port
                    && s.protocol == spec.addr.protocol
            }) {
                return Err(ClusterError::ServiceAddrInUse { addr: spec.addr, holder: s.name.clone() });
            }
            if let Some(e) = rows(&r, 1)?.first() {
                let text = |c: &str| e.get(c).and_then(Datum::as_str).unwrap_or("?").to_owned();
                return Err(ClusterError::VipIsEndpoint {
                    ip: vip,
                    network: net.name.clone(),
                    container: text("container"),
                    host: text("host"),
                });
            }
            let used: BTreeSet<u32> = existing.iter().map(|s| s.group_id).collect();
            let group_id = (1u32..).find(|g| !used.contains(g)).unwrap_or(1);
            let mut row = Row::new();
            row.insert("name".into(), Datum::from(spec.name.as_str()));
            row.insert("network".into(), Datum::from(spec.network.as_str()));
            row.insert("vip".into(), Datum::from(spec.addr.ip.to_string()));
            row.insert("port".into(), Datum::from(i64::from(spec.addr.port)));
            row.insert("protocol".into(), Datum::from(spec.addr.protocol.name()));
            row.insert("backends".into(), Datum::set(spec.backends.iter().map(String::as_str)));
            row.insert("group_id".into(), Datum::from(i64::from(group_id)));
            match self.transact(vec![Operation::insert(table::SERVICE, row.clone())]).await {
                Ok(r) => {
                    let uuid = r
                        .first()
                        .and_then(|r| r.uuid)
                        .ok_or_else(|| ClusterError::Reply("insert without uuid".into()))?;
                    return Ok(Service::from_row(uuid, &row)?);
                }
                // Someone else wrote at the same moment: look again.
                Err(e) if is_constraint(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ClusterError::TooManyRetries(MAX_RETRIES))
    }

    /// `service del`.
    pub async fn delete_service(&self, name: &str) -> Result<(), ClusterError> {
        self.check_services().await?;
        let r = self.transact(vec![Operation::delete(table::SERVICE, vec![Condition::eq("name", name)])]).await?;
        match r.first().and_then(|r| r.count) {
            Some(0) => Err(ClusterError::NoService(name.to_owned())),
            _ => Ok(()),
        }
    }

    /// `router create`: one insert; the name index refuses a duplicate.
    pub async fn create_router(&self, name: &str) -> Result<Router, ClusterError> {
        self.check_routers().await?;
        check_name("router", name)?;
        let mut row = Row::new();
        row.insert("name".into(), Datum::from(name));
        match self.transact(vec![Operation::insert(table::ROUTER, row.clone())]).await {
            Ok(r) => {
                let uuid =
                    r.first().and_then(|r| r.uuid).ok_or_else(|| ClusterError::Reply("insert without uuid".into()))?;
                Ok(Router::from_row(uuid, &row)?)
            }
            Err(e) if is_constraint(&e) => Err(ClusterError::RouterExists(name.to_owned())),
            Err(e) => Err(e.into()),
        }
    }

    /// `router del`: the router goes; its networks stay, isolated again.
    pub async fn delete_router(&self, name: &str) -> Result<(), ClusterError> {
        self.check_routers().await?;
        let r = self.transact(vec![Operation::delete(table::ROUTER, vec![Condition::eq("name", name)])]).await?;
        match r.first().and_then(|r| r.count) {
            Some(0) => Err(ClusterError::NoRouter(name.to_owned())),
            _ => Ok(()),
        }
    }

    /// `router add`: `network` joins `router` (true: it was not on it).
    /// A network whose CIDR overlaps one already on the router is refused:
    /// the router could not tell their addresses apart. The check and the
    /// insert are one transaction, conditioned on the router's networks
    /// being what was checked.
    pub async fn router_add_network(&self, router: &str, network: &str) -> Result<bool, ClusterError> {
        for _ in 0..MAX_RETRIES {
            let (r, _) = self.router(router).await?;
            let nets = self.networks().await?;
            let net = nets.iter().find(|n| n.name == network).ok_or_else(|| ClusterError::NoNetwork(network.into()))?;
            if r.networks.contains(&net.uuid) {
                return Ok(false);
            }
            for other in nets.iter().filter(|n| r.networks.contains(&n.uuid)) {
                if other.cidr.overlaps(&net.cidr) {
                    return Err(ClusterError::RouterOverlap {
                        router: router.to_owned(),
                        network: net.name.clone(),
                        cidr: net.cidr,
                        other: other.name.clone(),
                        other_cidr: other.cidr,
                    });
                }
            }
            let mut current = Row::new();
            current.insert("networks".into(), Datum::set(r.networks.iter().map(|u| Atom::Uuid(*u))));
            let ops = vec![
                Operation::wait(
                    table::ROUTER,
                    vec![Condition::uuid(r.uuid)],
                    vec!["networks".into()],
                    WaitUntil::Equal,
                    vec![current],
                    Some(0),
                ),
                Operation::mutate(
                    table::ROUTER,
                    vec![Condition::uuid(r.uuid)],
                    vec![Mutation::new("networks", Mutator::Insert, Datum::from(net.uuid))],
                ),
            ];
            match self.transact(ops).await {
                Ok(_) => return Ok(true),
                Err(ovsdb::Error::Transaction { error: ovsdb::ErrorTag::TimedOut, .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ClusterError::TooManyRetries(MAX_RETRIES))
    }

    /// `router del ROUTER NETWORK`: `network` leaves `router` (true: it
    /// was on it).
    pub async fn router_remove_network(&self, router: &str, network: &str) -> Result<bool, ClusterError> {
        let (r, _) = self.router(router).await?;
        let net = self.network(network).await?;
        if !r.networks.contains(&net.uuid) {
            return Ok(false);
        }
        self.transact(vec![Operation::mutate(
            table::ROUTER,
            vec![Condition::uuid(r.uuid)],
            vec![Mutation::new("networks", Mutator::Delete, Datum::from(net.uuid))],
        )])
        .await?;
        Ok(true)
    }

    /// Removes the endpoint holding `ip` in `network` (false: there was none).
    pub async fn remove_endpoint(&self, network: &str, ip: IpAddr) -> Result<bool, ClusterError> {
        let net = self.network(network).await?;
        let r = self
            .transact(vec![Operation::delete(
                table::ENDPOINT,
                vec![Condition::eq("network", net.uuid), Condition::eq("ip", ip.to_string())],
            )])
            .await?;
        Ok(r.first().and_then(|r| r.count).unwrap_or(0) > 0)
    }

    /// Removes `host`'s endpoint holding `ip` in `network`, if it is
    /// `host`'s (false: there was none, or the network is not in the
    /// cluster). A row another host holds is never touched.
    pub async fn remove_host_endpoint(&self, network: &str, host: &str, ip: IpAddr) -> Result<bool, ClusterError> {
        let net = match self.network(network).await {
            Ok(n) => n,
            Err(ClusterError::NoNetwork(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        let r = self
            .transact(vec![Operation::delete(
                table::ENDPOINT,
                vec![
                    Condition::eq("network", net.uuid),
                    Condition::eq("ip", ip.to_string()),
                    Condition::eq("host", host),
                ],
            )])
            .await?;
        Ok(r.first().and_then(|r| r.count).unwrap_or(0) > 0)
    }

    /// Removes Endpoint rows by their UUID, each only while it still
    /// belongs to `host` (one transaction); returns how many went. A row
    /// already gone is not an error: the UUID names that row only, so an
    /// address published again since (a new row) is never removed.
    pub async fn remove_endpoint_rows(&self, host: &str, rows: &[Uuid]) -> Result<u64, ClusterError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let ops = rows
            .iter()
            .map(|u| Operation::delete(table::ENDPOINT, vec![Condition::uuid(*u), Condition::eq("host", host)]))
            .collect();
        let r = self.transact(ops).await?;
        Ok(r.iter().filter_map(|r| r.count).sum())
    }

    /// Removes a container's endpoints on a host (all networks); returns how many.
    pub async fn remove_container_endpoints(&self, host: &str, container: &str) -> Result<u64, ClusterError> {
        let r = self
            .transact(vec![Operation::delete(
                table::ENDPOINT,
                vec![Condition::eq("host", host), Condition::eq("container", container)],
            )])
            .await?;
        Ok(r.first().and_then(|r| r.count).unwrap_or(0))
    }

    /// The block `host` serves in `net`: its Fan block, or its pool block
    /// (claimed now, first free, if it has none yet).
    pub async fn host_block(&self, net: &Network, host: &str) -> Result<Option<IpNet>, ClusterError> {
        match net.ipam {
            Ipam::Static => Ok(None),
            Ipam::Fan => {
                let h = self.host(host).await?;
                Ok(net.fan_block(h.underlay_ip)?)
            }
            Ipam::Pool => {
                let prefix = net.block_prefix.unwrap_or(net.cidr.prefix.max(24));
                for _ in 0..MAX_RETRIES {
                    let r = self
                        .transact(vec![Operation::select(table::BLOCK, vec![Condition::eq("network", net.uuid)])])
                        .await?;
                    let blocks = rows(&r, 0)?
                        .iter()
                        .map(|row| Ok(Block::from_row(row_uuid(row)?, row)?))
                        .collect::<Result<Vec<_>, ClusterError>>()?;
                    if let Some(b) = blocks.iter().find(|b| b.host == host) {
                        return Ok(Some(b.cidr));
                    }
                    let taken: Vec<IpNet> = blocks.iter().map(|b| b.cidr).collect();
                    let cidr = ipam::first_free_block(net.cidr, prefix, &taken)?;
                    let mut row = Row::new();
                    row.insert("network".into(), Datum::from(net.uuid));
                    row.insert("host".into(), Datum::from(host));
                    row.insert("cidr".into(), Datum::from(cidr.to_string()));
                    match self.transact(vec![Operation::insert(table::BLOCK, row)]).await {
                        Ok(_) => return Ok(Some(cidr)),
                        // Another host claimed it (or this host, twice).
                        Err(e) if is_constraint(&e) => continue,
                        Err(e) if is_referential(&e) => return Err(ClusterError::NoNetwork(net.name.clone())),
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(ClusterError::TooManyRetries(MAX_RETRIES))
            }
        }
    }

    pub async fn host(&self, name: &str) -> Result<Host, ClusterError> {
        let r = self.transact(vec![Operation::select(table::HOST, vec![Condition::eq("name", name)])]).await?;
        let row = rows(&r, 0)?.first().ok_or_else(|| ClusterError::NoHost(name.to_owned()))?;
        Ok(Host::from_row(row_uuid(row)?, row)?)
    }

    /// Allocates an address for a container on `host` in `network` and
    /// publishes it, atomically: the lowest free address of the host's
    /// block (pool, Fan) or of the whole network (static). If another host
    /// takes the same address first, the unique index refuses this insert
    /// and the next free address is tried.
    pub async fn allocate_ip(
        &self,
        network: &str,
        host: &str,
        container: &str,
        interface: &str,
    ) -> Result<Endpoint, ClusterError> {
        self.allocate_named(network, host, container, interface, BTreeMap::new()).await
    }

    /// [`ClusterDb::allocate_ip`], with the row's `external_ids` (the
    /// names it answers to in the network's DNS: [`super::endpoint_keys`]).
    pub async fn allocate_named(
        &self,
        network: &str,
        host: &str,
        container: &str,
        interface: &str,
        external_ids: BTreeMap<String, String>,
    ) -> Result<Endpoint, ClusterError> {
        let net = self.network(network).await?;
        let block = self.host_block(&net, host).await?.unwrap_or(net.cidr);
        let with_services = self.client.get_schema(DB).await?.tables.contains_key(table::SERVICE);
        for _ in 0..MAX_RETRIES {
            let mut ops =
                vec![Operation::select(table::ENDPOINT, vec![Condition::eq("network", net.uuid)]).columns(["ip"])];
            // Services' addresses are never handed out either.
            if with_services {
                ops.push(
                    Operation::select(table::SERVICE, vec![Condition::eq("network", net.name.as_str())])
                        .columns(["vip"]),
                );
            }
            let r = self.transact(ops).await?;
            let mut used: BTreeSet<Ipv4Addr> = rows(&r, 0)?
                .iter()
                .filter_map(|row| row.get("ip").and_then(Datum::as_str).and_then(|s| s.parse().ok()))
                .collect();
            if with_services {
                used.extend(
                    rows(&r, 1)?
                        .iter()
                        .filter_map(|row| row.get("vip").and_then(Datum::as_str)?.parse::<Ipv4Addr>().ok()),
                );
            }
            let ip = ipam::lowest_free_address(net.cidr, block, net.gateway, &used)?;
            let spec = EndpointSpec {
                network: net.name.clone(),
                host: host.to_owned(),
                ip: IpAddr::V4(ip),
                mac: None,
                container: container.to_owned(),
                interface: interface.to_owned(),
                external_ids: external_ids.clone(),
            };
            match self.insert_endpoint(&net, &spec).await {
                Ok(e) => return Ok(e),
                Err(ClusterError::IpInUse { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ClusterError::TooManyRetries(MAX_RETRIES))
    }

    /// Follows the whole database: a [`ClusterWatch`] whose state is kept
    /// by a `monitor_cond` on every table (re-synced after a reconnect or
    /// a fail-over to another member).
    pub async fn watch(&self) -> Result<ClusterWatch, ClusterError> {
        self.watch_with(MonitorRequest::all()).await
    }

    /// Follows what `host`'s agent needs: every Host, Network and Block
    /// row, but of the Endpoint rows only `host`'s own and those without
    /// the [`COVERED_KEY`] marker ([`host_endpoint_condition`]). Other
    /// hosts' covered endpoints are described by their blocks, so
    /// [`remote_view`](super::remote_view) of this state is the same as of
    /// the whole database, while the state grows with this host's
    /// endpoints and the number of hosts, not with every endpoint.
    pub async fn watch_for_host(&self, host: &str) -> Result<ClusterWatch, ClusterError> {
        self.watch_with(MonitorRequest::all().where_(host_endpoint_condition(host))).await
    }

    /// Follows the Endpoint rows of `networks` only, every host's: what
    /// an agent's DNS answers from (the names of every endpoint of the
    /// networks its host has endpoints in). The state holds only
    /// `endpoints`. With no network, nothing is monitored.
    pub async fn watch_endpoints_of(&self, networks: &BTreeSet<Uuid>) -> Result<ClusterWatch, ClusterError> {
        let schema = self.client.get_schema(DB).await?;
        if networks.is_empty() {
            let (_tx, rx) = watch::channel(Arc::new(ClusterState::default()));
            return Ok(ClusterWatch { rx, task: tokio::spawn(std::future::pending()) });
        }
        // monitor_cond's clauses are a disjunction: a row of any of them.
        let conds = networks.iter().map(|u| Condition::eq("network", *u)).collect();
        self.watch_tables(schema, vec![(table::ENDPOINT, MonitorRequest::all().where_(conds))], true).await
    }

    /// The monitor requests of [`watch_for_host`](Self::watch_for_host),
    /// for the database's schema: what each agent asks of the cluster (a
    /// scale harness makes the same requests without keeping the state).
    pub async fn host_watch_requests(&self, host: &str) -> Result<Vec<(&'static str, MonitorRequest)>, ClusterError> {
        let schema = self.client.get_schema(DB).await?;
        Ok(watch_requests(&schema, MonitorRequest::all().where_(host_endpoint_condition(host))))
    }

    async fn watch_with(&self, endpoints: MonitorRequest) -> Result<ClusterWatch, ClusterError> {
        let schema = self.client.get_schema(DB).await?;
        let tables = watch_requests(&schema, endpoints);
        self.watch_tables(schema, tables, false).await
    }

    async fn watch_tables(
        &self,
        schema: Arc<crate::ovsdb::DatabaseSchema>,
        tables: Vec<(&str, MonitorRequest)>,
        endpoints_only: bool,
    ) -> Result<ClusterWatch, ClusterError> {
        let build = move |cache: &Cache| {
            if endpoints_only { ClusterState::endpoints_from_cache(cache) } else { ClusterState::from_cache(cache) }
        };
        let mut monitor = self.client.monitor_cond_since(DB, &tables).await?;
        let mut cache = Cache::new(schema);
        cache.apply(&monitor.initial).map_err(ovsdb::Error::from)?;
        let (tx, rx) = watch::channel(Arc::new(build(&cache)));
        let task = tokio::spawn(async move {
            while let Some(ev) = monitor.next().await {
                if let Err(e) = ev.apply_to(&mut cache) {
                    tracing::warn!("cluster monitor: {e:?}");
                }
                if tx.send(Arc::new(build(&cache))).is_err() {
                    break;
                }
            }
        });
        Ok(ClusterWatch { rx, task })
    }
}

/// A watch's monitor requests: Host (the columns flows use), Network,
/// Block, Endpoint (`endpoints`), and Router and Service where the schema
/// has them.
fn watch_requests(
    schema: &crate::ovsdb::DatabaseSchema,
    endpoints: MonitorRequest,
) -> Vec<(&'static str, MonitorRequest)> {
    // Not a host's probes and answers: nobody's flows depend on them, and
    // each would reach every host.
    let has = |c: &str| schema.tables.get(table::HOST).is_some_and(|t| t.columns.contains_key(c));
    let hosts = MonitorRequest::columns(HOST_COLUMNS_WATCHED.into_iter().filter(|c| has(c)));
    let mut tables = vec![
        (table::HOST, hosts),
        (table::NETWORK, MonitorRequest::all()),
        (table::BLOCK, MonitorRequest::all()),
        (table::ENDPOINT, endpoints),
    ];
    // A database still at schema 1.0.0 has no routers.
    if schema.tables.contains_key(table::ROUTER) {
        tables.push((table::ROUTER, MonitorRequest::all()));
    }
    if schema.tables.contains_key(table::SERVICE) {
        tables.push((table::SERVICE, MonitorRequest::all()));
    }
    tables
}

/// The Host columns a host's watch follows: all but the probes and their
/// answers (`probe`, `heartbeat`), which only the host itself and whoever
/// probes it follow, so a probe costs one notification, not one per host.
pub const HOST_COLUMNS_WATCHED: [&str; 6] =
    ["name", "underlay_ip", "tunnel_types", "heartbeat_interval", "probe_timeout", "external_ids"];

/// What [`ProbeWatch::next`] saw of the host's own row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnRow {
    /// The row, with its latest probe and the last probe answered.
    Present { probe: i64, heartbeat: i64 },
    /// No row: removed (`host del --force`) while the agent runs.
    Gone,
}

impl OwnRow {
    /// The probe to answer, if one is unanswered.
    pub fn unanswered(&self) -> Option<i64> {
        match *self {
            OwnRow::Present { probe, heartbeat } if probe != heartbeat => Some(probe),
            _ => None,
        }
    }
}

/// A host's own Host row, as [`ClusterDb::watch_probes`] follows it.
pub struct ProbeWatch {
    monitor: ovsdb::Monitor,
    cache: Cache,
}

impl ProbeWatch {
    /// The row as it is now.
    pub fn current(&self) -> OwnRow {
        let Some((uuid, _)) = self.cache.table(table::HOST).next() else { return OwnRow::Gone };
        // The server leaves a column at its default out of an update2.
        let int = |col: &str| self.cache.get(table::HOST, uuid, col).as_ref().and_then(Datum::as_integer).unwrap_or(0);
        OwnRow::Present { probe: int("probe"), heartbeat: int("heartbeat") }
    }

    /// Waits for the next change; `None` once the monitor has ended.
    pub async fn next(&mut self) -> Option<Result<OwnRow, ClusterError>> {
        let ev = self.monitor.next().await?;
        Some(
            ev.apply_to(&mut self.cache)
                .map(|()| self.current())
                .map_err(|e| ClusterError::Ovsdb(ovsdb::Error::from(e))),
        )
    }
}

/// The cluster state as a monitor keeps it; the agent awaits
/// [`ClusterWatch::changed`] and recomputes its flows from
/// [`ClusterWatch::state`].
#[derive(Debug)]
pub struct ClusterWatch {
    rx: watch::Receiver<Arc<ClusterState>>,
    task: tokio::task::JoinHandle<()>,
}

impl ClusterWatch {
    /// The current state (cheap: shared).
    pub fn state(&self) -> Arc<ClusterState> {
        self.rx.borrow().clone()
    }

    /// Waits for the next change; `Err` once the monitor has ended.
    pub async fn changed(&mut self) -> Result<Arc<ClusterState>, ClusterError> {
        self.rx.changed().await.map_err(|_| ClusterError::Ovsdb(ovsdb::Error::Disconnected))?;
        Ok(self.rx.borrow_and_update().clone())
    }

    /// Waits until `cond` holds for the state (checked at once first).
    pub async fn wait_for(
        &mut self,
        mut cond: impl FnMut(&ClusterState) -> bool,
    ) -> Result<Arc<ClusterState>, ClusterError> {
        let s = self.rx.wait_for(|s| cond(s)).await.map_err(|_| ClusterError::Ovsdb(ovsdb::Error::Disconnected))?;
        Ok(s.clone())
    }
}

impl Drop for ClusterWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
