//! Carrying out attach, detach, list and gc: the I/O edge of [`super`].
//!
//! An attach is a sequence of steps, each with its undo:
//! 1. resolve the container to an open namespace (nothing to undo);
//! 2. read what OVSDB knows (bridge, MTU, who holds the IP, this
//!    container's existing port) in one read-only transaction;
//! 3. create the veth pair, the peer directly inside the container's
//!    namespace with its final name, MAC and MTU (undo: delete the host end,
//!    which takes the peer with it), and bring the host end up;
//! 4. configure the container side: tx checksum, up, address, routes
//!    (undone by 3's undo);
//! 5. one OVSDB transaction: guards that step 2 still holds, removal of a
//!    restarted container's stale port, the new Port and Interface (undo:
//!    remove the port);
//! 6. wait for `ovs-vswitchd` to give the interface an OpenFlow port;
//! 7. bring the container's `lo` up, and send a gratuitous ARP from the
//!    container side when the MAC is not the one derived from the IP (best
//!    effort: the attachment works without it).
//!
//! A single [`Attacher::attach`] overlaps 4 with 5 and 6: the commit and
//! the wait for the ofport are sent together, and the container side is
//! configured while `ovs-vswitchd` adds the port (most of an attach is
//! that wait). [`Attacher::attach_many`] runs 1-4 per request, then 5 and
//! 6 once for a whole chunk, then 7 per request.
//!
//! A failure at any step runs the undos of the steps done, in reverse.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::time::Duration;

use super::*;
use crate::container::{ContainerRef, Identity, Resolver};
use crate::netlink::{Netlink, VethEnd};
use crate::ovsdb::{Client, OpResult};
use crate::vswitch::DB;

/// The steps of an attach, for failure injection in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The container's namespace is open.
    Resolved,
    /// OVSDB was read.
    Read,
    /// The veth pair exists.
    VethCreated,
    /// The host end is up.
    HostUp,
    /// The container side is configured.
    ContainerConfigured,
    /// The port is in OVSDB.
    Committed,
    /// `ovs-vswitchd` assigned the ofport.
    Ofport,
}

#[derive(Debug, Clone)]
pub struct AttacherOptions {
    /// Network namespace `ovs-vswitchd` runs in (where host ends go).
    /// Default: the caller's.
    pub switch_netns: Option<String>,
    /// Docker Engine socket; default `DOCKER_HOST` or the standard one.
    pub docker_host: Option<String>,
    /// How long `ovs-vswitchd` may take to assign an ofport.
    pub ofport_timeout: Duration,
    /// Check every transaction against the Open_vSwitch schema compiled
    /// into ovsnet before sending it, and refuse one that would need
    /// normalizing. The server judges every operation anyway; the check
    /// refuses a malformed one before anything is sent, and proves (in
    /// tests, where it is on) that the operations need no schema at run
    /// time. Parsing the schema costs about 0.6 ms, a tenth of a single
    /// attach, so the one-shot commands turn it off.
    pub check_operations: bool,
}

impl Default for AttacherOptions {
    fn default() -> Self {
        AttacherOptions {
            switch_netns: None,
            docker_host: None,
            ofport_timeout: Duration::from_secs(10),
            check_operations: true,
        }
    }
}

/// What an attach changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// A new attachment.
    Created,
    /// Already attached exactly so: nothing changed.
    Unchanged,
    /// The container had restarted: its stale ports were replaced.
    Replugged { stale: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AttachReport {
    pub attachment: Attachment,
    pub change: Change,
}

/// Whether the container of an attachment is still there.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    Alive,
    /// Running again, but in a new namespace: this port is stale.
    Restarted,
    Gone,
    /// Could not tell (Docker unreachable, ...): never treated as gone.
    Unknown(String),
}

type Hook = Box<dyn Fn(Step) -> bool + Send + Sync>;

/// Attaches containers to bridges: one OVSDB connection, one netlink
/// handle in the switch's namespace, one Docker connection, reused for
/// every command (a batch pays for them once).
pub struct Attacher {
    client: Client,
    host: Netlink,
    resolver: Resolver,
    opts: AttacherOptions,
    hook: Option<Hook>,
    /// When this attacher was made (the debug timing log counts from here).
    started: std::time::Instant,
}

impl std::fmt::Debug for Attacher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attacher").field("opts", &self.opts).finish_non_exhaustive()
    }
}

/// An attachment made up to its OVSDB commit (steps 1 to 5).
struct Prepared {
    req: AttachRequest,
    resolved: crate::container::Resolved,
    host_name: String,
    mac: Mac,
    ids: BTreeMap<String, String>,
    /// The guards: this container's stale ports and the IP's holders as read.
    seen_mine: Vec<String>,
    seen_holders: Vec<String>,
    stale: Vec<Attachment>,
    /// Netlink in the container's namespace and its interface.
    inside: Option<(Netlink, crate::netlink::Link)>,
    /// The MTU both ends get.
    mtu: u32,
    /// Whether the container side must fill its own checksums (userspace
    /// datapath without TSO).
    tx_csum_off: bool,
    undo: Undo,
}

/// A chunk of a batch after steps 1-6: the lines already answered, and
/// the plugged ones with their commit errors.
#[derive(Default)]
struct PreparedChunk {
    done: Vec<(usize, Result<AttachReport, AttachError>)>,
    items: Vec<Prepared>,
    errors: Vec<Option<AttachError>>,
    idx: Vec<usize>,
}

impl PreparedChunk {
    /// What is left to settle once the answered lines are taken.
    fn rest(self) -> CommittedChunk {
        CommittedChunk { items: self.items, errors: self.errors, idx: self.idx }
    }
}

/// The plugged lines of a chunk, waiting for their ofports.
struct CommittedChunk {
    items: Vec<Prepared>,
    errors: Vec<Option<AttachError>>,
    idx: Vec<usize>,
}

enum Staged {
    /// Nothing to do (already attached exactly so).
    Done(Box<AttachReport>),
    Plugged(Box<Prepared>),
}

/// What to undo if a later step fails.
#[derive(Default)]
struct Undo {
    veth: Option<crate::netlink::Link>,
    port: Option<Uuid>,
}

impl Attacher {
    pub fn new(client: Client, opts: AttacherOptions) -> Result<Self, AttachError> {
        let host = Self::open_switch_netlink(&opts)?;
        let resolver = Self::resolver_for(&opts);
        Ok(Self::from_parts(client, host, resolver, opts))
    }

    /// Netlink in the namespace the host ends go to (`ovs-vswitchd`'s).
    pub fn open_switch_netlink(opts: &AttacherOptions) -> Result<Netlink, AttachError> {
        Ok(match &opts.switch_netns {
            // The host side never sends frames: no packet socket.
            Some(ns) => Netlink::open_netns_without_packet(ns)?,
            None => Netlink::open_without_packet()?,
        })
    }

    /// The container resolver `opts` asks for.
    pub fn resolver_for(opts: &AttacherOptions) -> Resolver {
        match &opts.docker_host {
            Some(h) => Resolver::with_docker_host(h.clone()),
            None => Resolver::new(),
        }
    }

    /// An attacher from parts made separately: a command opens netlink and
    /// resolves its container while the OVSDB connection is being made
    /// (see [`Attacher::attach_resolved`]).
    pub fn from_parts(client: Client, host: Netlink, resolver: Resolver, opts: AttacherOptions) -> Self {
        Attacher { client, host, resolver, opts, hook: None, started: std::time::Instant::now() }
    }

    /// Calls `hook` after each step; when it returns `false` the attach
    /// fails there (and rolls back). Tests use it to break things at a
    /// chosen point (kill the container, take a name, ...).
    pub fn set_step_hook(&mut self, hook: impl Fn(Step) -> bool + Send + Sync + 'static) {
        self.hook = Some(Box::new(hook));
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    fn step(&self, step: Step) -> Result<(), AttachError> {
        tracing::debug!(?step, since_start_us = self.started.elapsed().as_micros() as u64, "attach step done");
        match &self.hook {
            Some(h) if !h(step) => Err(AttachError::Injected(step)),
            _ => Ok(()),
        }
    }

    /// One transaction on the Open_vSwitch database. With
    /// [`AttacherOptions::check_operations`], checked first against the
    /// schema compiled into ovsnet (never the server's: fetching it, about
    /// 100 KB, costs a round trip and a parse per command).
    async fn transact(&self, ops: Vec<Operation>) -> Result<Vec<OpResult>, crate::ovsdb::Error> {
        if self.opts.check_operations {
            check_against_schema(&ops)?;
        }
        self.client.transact_unchecked(DB, ops).await
    }

    /// Attaches (or re-plugs, or confirms) a container. All or nothing.
    pub async fn attach(&self, req: &AttachRequest) -> Result<AttachReport, AttachError> {
        self.attach_with(req, None).await
    }

    /// [`Attacher::attach`] of a container already resolved (by this
    /// attacher's [`Attacher::resolver`]).
    pub async fn attach_resolved(
        &self,
        req: &AttachRequest,
        resolved: crate::container::Resolved,
    ) -> Result<AttachReport, AttachError> {
        self.attach_with(req, Some(resolved)).await
    }

    async fn attach_with(
        &self,
        req: &AttachRequest,
        resolved: Option<crate::container::Resolved>,
    ) -> Result<AttachReport, AttachError> {
        let mut item = match self.prepare(req, resolved).await? {
            Staged::Done(report) => return Ok(*report),
            Staged::Plugged(p) => *p,
        };
        // The commit and the wait for its ofport go out together (the
        // server answers them in order), and the container side is
        // configured while ovs-vswitchd adds the port.
        let names = [item.host_name.clone()];
        let ((committed, waited), inside) = tokio::join!(
            async { tokio::join!(self.commit(std::slice::from_ref(&item)), self.wait_ofports(&names)) },
            self.configure_inside(&item),
        );
        let mut failed = match inside {
            Ok(inside) => {
                item.inside = Some(inside);
                self.step(Step::ContainerConfigured).err().or_else(|| self.still_current(&item).err())
            }
            Err(e) => Some(e),
        };
        match committed {
            Ok(ports) => {
                item.undo.port = ports.first().copied().flatten();
                if let Err(e) = self.step(Step::Committed) {
                    failed.get_or_insert(e);
                }
            }
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
        let result = match failed {
            Some(e) => Err(e),
            None => {
                async {
                    let ofports = match waited {
                        // The interface was not there yet when the wait was
                        // read (a database that commits later, as a clustered
                        // one does): wait again, now that the commit is done.
                        Err(AttachError::Reply(_)) => self.wait_ofports(&names).await?,
                        other => other?,
                    };
                    self.step(Step::Ofport)?;
                    ofports.first().copied().ok_or_else(|| AttachError::Reply("no ofport in the reply".into()))
                }
                .await
            }
        };
        match result {
            Ok(ofport) => self.finish(item, ofport).await,
            Err(e) => {
                self.rollback(&req.bridge, item.undo).await;
                Err(e)
            }
        }
    }

    /// Attaches many containers, `chunk` at a time: each chunk's veths are
    /// made and configured one by one, then all its ports go into OVSDB in
    /// one transaction (so `ovs-vswitchd` reconfigures the bridge once per
    /// chunk, not once per port: its reconfiguration costs time in
    /// proportion to the ports already there), then one wait for all their
    /// ofports. While `ovs-vswitchd` works on one chunk, the next is
    /// prepared. A chunk whose transaction fails is committed port by port,
    /// so a bad line fails only itself. One result per request, in order.
    pub async fn attach_many(&self, reqs: &[AttachRequest], chunk: usize) -> Vec<Result<AttachReport, AttachError>> {
        let mut out: Vec<Option<Result<AttachReport, AttachError>>> = (0..reqs.len()).map(|_| None).collect();
        let mut pending: Option<CommittedChunk> = None;
        let mut base = 0;
        for part in reqs.chunks(chunk.max(1)) {
            let (mut committed, settled) = match pending.take() {
                Some(previous) => tokio::join!(self.prepare_chunk(part, base), self.settle_chunk(previous)),
                None => (self.prepare_chunk(part, base).await, Vec::new()),
            };
            for (i, r) in std::mem::take(&mut committed.done).into_iter().chain(settled) {
                out[i] = Some(r);
            }
            pending = Some(committed.rest());
            base += part.len();
        }
        if let Some(last) = pending {
            for (i, r) in self.settle_chunk(last).await {
                out[i] = Some(r);
            }
        }
        out.into_iter().map(|r| r.unwrap_or_else(|| Err(AttachError::Reply("attach not carried out".into())))).collect()
    }

    /// Steps 1-5 for one chunk of a batch: prepares each line, then commits
    /// the plugged ones in one transaction (one by one if that fails).
    async fn prepare_chunk(&self, part: &[AttachRequest], base: usize) -> PreparedChunk {
        let mut chunk = PreparedChunk::default();
        for (i, req) in part.iter().enumerate() {
            match self.prepare(req, None).await {
                Ok(Staged::Done(r)) => chunk.done.push((base + i, Ok(*r))),
                Ok(Staged::Plugged(p)) => {
                    let mut p = *p;
                    let inside = match self.configure_inside(&p).await {
                        Ok(inside) => {
                            p.inside = Some(inside);
                            self.step(Step::ContainerConfigured).and_then(|()| self.still_current(&p))
                        }
                        Err(e) => Err(e),
                    };
                    match inside {
                        Ok(()) => {
                            chunk.idx.push(base + i);
                            chunk.items.push(p);
                        }
                        Err(e) => {
                            self.rollback(&req.bridge, p.undo).await;
                            chunk.done.push((base + i, Err(e)));
                        }
                    }
                }
                Err(e) => chunk.done.push((base + i, Err(e))),
            }
        }
        chunk.errors = (0..chunk.items.len()).map(|_| None).collect();
        if chunk.items.is_empty() {
            return chunk;
        }
        match self.commit(&chunk.items).await {
            Ok(ports) => {
                for ((item, port), err) in chunk.items.iter_mut().zip(ports).zip(chunk.errors.iter_mut()) {
                    item.undo.port = port;
                    *err = self.step(Step::Committed).err();
                }
            }
            Err(e) => {
                tracing::debug!("batch commit of {} ports failed ({e}); committing one by one", chunk.items.len());
                for (item, err) in chunk.items.iter_mut().zip(chunk.errors.iter_mut()) {
                    match self.commit(std::slice::from_ref(item)).await {
                        Ok(ports) => {
                            item.undo.port = ports.first().copied().flatten();
                            *err = self.step(Step::Committed).err();
                        }
                        Err(e) => *err = Some(e),
                    }
                }
            }
        }
        chunk
    }

    /// Steps 6-7 for a committed chunk: one wait for all its ofports (then,
    /// if that fails, one per port to find which), finish or roll back each.
    async fn settle_chunk(&self, chunk: CommittedChunk) -> Vec<(usize, Result<AttachReport, AttachError>)> {
        let CommittedChunk { items, mut errors, idx } = chunk;
        let names: Vec<String> =
            items.iter().zip(&errors).filter(|(_, e)| e.is_none()).map(|(p, _)| p.host_name.clone()).collect();
        let mut ofports: BTreeMap<String, i64> = BTreeMap::new();
        match self.wait_ofports(&names).await {
            Ok(ports) => ofports.extend(names.iter().cloned().zip(ports)),
            Err(_) => {
                // Find out which one(s) did not get an ofport.
                for (item, err) in items.iter().zip(errors.iter_mut()) {
                    if err.is_some() {
                        continue;
                    }
                    match self.wait_ofports(std::slice::from_ref(&item.host_name)).await {
                        Ok(p) => ofports.extend(p.first().map(|p| (item.host_name.clone(), *p))),
                        Err(e) => *err = Some(e),
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(items.len());
        for ((item, err), i) in items.into_iter().zip(errors).zip(idx) {
            let bridge = item.req.bridge.clone();
            let result = match (err, ofports.get(&item.host_name)) {
                (None, Some(&ofport)) => self.finish(item, ofport).await,
                (err, _) => {
                    self.rollback(&bridge, item.undo).await;
                    Err(err.unwrap_or_else(|| AttachError::Reply("no ofport in the reply".into())))
                }
            };
            out.push((i, result));
        }
        out
    }

    /// Steps 1 to 3: the container resolved, OVSDB read, the veth made.
    /// Rolls back what it did when it fails.
    async fn prepare(
        &self,
        req: &AttachRequest,
        resolved: Option<crate::container::Resolved>,
    ) -> Result<Staged, AttachError> {
        req.check()?;
        let resolved = match resolved {
            Some(r) => r,
            None => self.resolver.resolve(&req.container).await?,
        };
        self.step(Step::Resolved)?;
        let identity = &resolved.identity;
        let host_name = host_ifname(&req.bridge, &identity.id, &req.ifname, identity.netns);

        let r = self.transact(read_ops(req, &identity.id, &host_name)).await?;
        let AttachRead { netdev, bridge_mtu, mine, holders, userspace_tso: tso, tunnels, existing_ofport, publishers } =
            AttachRead::from_results(&r).ok_or_else(|| AttachError::NoBridge(req.bridge.clone()))?;
        self.step(Step::Read)?;

        // Someone else holds the IP: refuse before anything changes.
        if let Some(h) = holders.iter().find(|h| h.container != identity.id || h.ifname != req.ifname) {
            return Err(AttachError::IpInUse {
                ip: req.ip,
                bridge: req.bridge.clone(),
                holder: format!("{} {}", h.shown_container(), h.ifname),
                port: h.port.clone(),
            });
        }

        // Another attachment publishes one of the ports: the same.
        for p in &req.published {
            let other = publishers.iter().filter(|a| a.container != identity.id || a.ifname != req.ifname);
            for a in other {
                if let Some(q) = a.published.iter().find(|q| q.collides(p)) {
                    return Err(AttachError::PortPublished {
                        port: *p,
                        taken: *q,
                        holder: format!("{} {}", a.shown_container(), a.ifname),
                        bridge: req.bridge.clone(),
                    });
                }
            }
        }

        let mac = req.effective_mac();
        let mut stale: Vec<Attachment> = Vec::new();
        for a in mine {
            if a.port != host_name {
                // Same container and interface, another namespace: it restarted.
                stale.push(a);
                continue;
            }
            let same = a.ip == req.address()
                && a.mac == Some(mac)
                && req.mtu.is_none_or(|m| a.mtu == Some(m))
                && a.gateway == req.gateway
                && a.network == req.network
                && a.routes == req.routes
                && a.published == req.published;
            if !same {
                return Err(AttachError::Conflict {
                    container: req.container.to_string(),
                    ifname: req.ifname.clone(),
                    bridge: req.bridge.clone(),
                    existing: format!("{} {}", a.ip, a.mac.map(|m| m.to_string()).unwrap_or_default()),
                });
            }
            if self.host.link_by_name(&host_name).await?.is_some() && existing_ofport.is_some_and(|p| p > 0) {
                let mut a = a;
                a.ofport = existing_ofport;
                return Ok(Staged::Done(Box::new(AttachReport { attachment: a, change: Change::Unchanged })));
            }
            // The port is recorded but its veth is gone (deleted by
            // hand): drop the port and plug again from scratch.
            if let Some(u) = a.port_uuid {
                self.transact(detach_ops(&req.bridge, &[u], "drop a port whose veth is gone")).await?;
            }
        }

        let mtu = match req.mtu {
            Some(m) => m,
            None => bridge_mtu.saturating_sub(self.tunnel_overhead(&req.bridge, &tunnels).await?).max(68),
        };
        let ids = external_ids(req, identity, mac, mtu);
        let mut item = Prepared {
            req: req.clone(),
            host_name,
            mac,
            ids,
            seen_mine: stale.iter().map(|a| a.port.clone()).collect(),
            seen_holders: holders.iter().map(|a| a.port.clone()).collect(),
            stale,
            resolved,
            inside: None,
            mtu,
            tx_csum_off: netdev && !tso,
            undo: Undo::default(),
        };
        match self.plug(&mut item).await {
            Ok(()) => Ok(Staged::Plugged(Box::new(item))),
            Err(e) => {
                self.rollback(&req.bridge, item.undo).await;
                Err(e)
            }
        }
    }

    /// Step 3: the veth pair, the host end up.
    ///
    /// Every link event in its namespace makes ovs-vswitchd reconfigure
    /// and re-read every port it has (docs/ATTACH.md), so the host end is
    /// made in the state OVS wants it in, up and promiscuous, in the one
    /// request that creates it: one event instead of three. It stays
    /// without carrier, so without IPv6 activity, until the container
    /// side comes up, by which time IPv6 is off on it.
    async fn plug(&self, item: &mut Prepared) -> Result<(), AttachError> {
        let req = &item.req;
        let host_link = self
            .host
            .create_veth(
                &VethEnd { mtu: Some(item.mtu), up: true, promisc: true, ..VethEnd::named(&item.host_name) },
                &VethEnd {
                    name: req.ifname.clone(),
                    mac: Some(item.mac.0),
                    mtu: Some(item.mtu),
                    netns: Some(item.resolved.netns.as_fd()),
                    ..Default::default()
                },
            )
            .await?;
        item.undo.veth = Some(host_link.clone());
        self.step(Step::VethCreated)?;
        // IPv4 attachments: both ends without IPv6 (as Docker leaves an
        // endpoint with no IPv6 address). Otherwise each new interface
        // sends DAD, router solicitations and MLD reports that a NORMAL
        // bridge floods to every port, and adds per-port IPv6 routes that
        // ovs-vswitchd re-reads: with a few hundred ports that makes every
        // port addition many times slower (docs/ATTACH.md).
        self.host.disable_ipv6(&item.host_name)?;
        self.step(Step::HostUp)?;
        Ok(())
    }

    /// Step 4: the container side. Returns netlink in the container's
    /// namespace and its interface, for step 7.
    async fn configure_inside(&self, item: &Prepared) -> Result<(Netlink, crate::netlink::Link), AttachError> {
        let req = &item.req;
        // A gratuitous ARP only matters when the MAC is not the one derived
        // from the IP: with the derived MAC, any neighbour's cache entry for
        // this IP is already right (a re-attach keeps the MAC). Only then
        // is the packet socket (slow to close) opened.
        let inside = match needs_garp(req) {
            true => Netlink::open_in(&item.resolved.netns)?,
            false => Netlink::open_in_without_packet(&item.resolved.netns)?,
        };
        let eth = inside.link(&req.ifname).await?;
        inside.disable_ipv6(&req.ifname)?;
        // Offload first: the interface must never carry a frame with a
        // checksum left to hardware that the userspace datapath won't fill.
        if item.tx_csum_off {
            inside.set_tx_checksum(&req.ifname, false)?;
        }
        inside.set_up(&eth).await?;
        inside.add_address(&eth, IpAddr::V4(req.ip), req.prefix).await?;
        if let Some(gw) = req.gateway {
            inside.add_default_route(&eth, gw).await?;
        }
        for r in &req.routes {
            inside.add_route(&eth, r.dest, r.prefix, r.gateway).await?;
        }
        Ok((inside, eth))
    }

    /// The open fd keeps the namespace alive even if the container died
    /// meanwhile: checked once its side is configured, and the attachment
    /// is rolled back if it is gone.
    fn still_current(&self, item: &Prepared) -> Result<(), AttachError> {
        match item.resolved.identity.still_current() {
            true => Ok(()),
            false => Err(crate::container::ContainerError::Vanished(item.req.container.to_string()).into()),
        }
    }

    /// Step 5 for several prepared attachments: one transaction holding
    /// all their guards and ports (all or none go in). Returns each one's
    /// new Port row, for its undo.
    async fn commit(&self, items: &[Prepared]) -> Result<Vec<Option<Uuid>>, AttachError> {
        let mut ops = Vec::new();
        let mut port_op = Vec::with_capacity(items.len());
        let mut addr_guards = Vec::with_capacity(items.len());
        for (n, p) in items.iter().enumerate() {
            let stale: Vec<Uuid> = p.stale.iter().filter_map(|a| a.port_uuid).collect();
            let txn = Plug {
                req: &p.req,
                container_id: &p.resolved.identity.id,
                host_end: &p.host_name,
                ids: &p.ids,
                seen_for_container: &p.seen_mine,
                seen_for_addr: &p.seen_holders,
                stale: &stale,
            }
            .tagged_ops(&n.to_string());
            let (addr_guard, port_insert) = txn.offset(ops.len());
            addr_guards.push(addr_guard);
            port_op.push(port_insert);
            ops.extend(txn.ops);
        }
        let results = match self.transact(ops).await {
            Ok(r) => r,
            // An address guard failed: someone took the address since it
            // was read (another line of the same batch, or another
            // client). Say who.
            Err(crate::ovsdb::Error::Transaction { index, .. }) if items.len() == 1 && addr_guards == [index] => {
                return Err(self.ip_holder(&items[0].req).await);
            }
            Err(e) => return Err(e.into()),
        };
        Ok(port_op.into_iter().map(|i| results.get(i).and_then(|r: &OpResult| r.uuid)).collect())
    }

    /// The error for an address found taken at commit time.
    async fn ip_holder(&self, req: &AttachRequest) -> AttachError {
        let select = Operation::select("Port", by_addr(&req.bridge, req.ip)).columns(PORT_COLUMNS);
        let r = match self.transact(vec![select]).await {
            Ok(r) => r,
            Err(e) => return e.into(),
        };
        let row = r.first().and_then(|x| x.rows.as_deref()).and_then(|rows| rows.first());
        match row.and_then(crate::vswitch::Port::from_row) {
            Some(port) => {
                let holder = match Attachment::from_port(&port) {
                    Some(h) => format!("{} {}", h.shown_container(), h.ifname),
                    None => "(a port not made by ovsnet)".to_owned(),
                };
                AttachError::IpInUse { ip: req.ip, bridge: req.bridge.clone(), holder, port: port.name }
            }
            None => AttachError::Reply(format!("the holder of {} changed while attaching; try again", req.ip)),
        }
    }

    /// Step 7 and the report. Nothing here can fail the attachment except
    /// bringing `lo` up.
    async fn finish(&self, item: Prepared, ofport: i64) -> Result<AttachReport, AttachError> {
        if let Some((inside, eth)) = &item.inside {
            // Last, because bringing `lo` up gives it addresses that taking it
            // down again would not remove.
            if let Err(e) = inside.lo_up().await {
                self.rollback(&item.req.bridge, item.undo).await;
                return Err(e.into());
            }
            if needs_garp(&item.req)
                && let Err(e) = inside.send_gratuitous_arp(eth, item.mac.0, item.req.ip)
            {
                tracing::warn!("{e}");
            }
        }
        // The stale ports' veths died with their namespace; if one is
        // still there (its old namespace kept alive), remove it.
        for a in &item.stale {
            let _ = self.host.delete_link_by_name(&a.port).await;
        }
        // The Port row as it was written, read back through the same reader
        // as any other (without a round trip).
        let written = crate::vswitch::Port {
            uuid: item.undo.port.unwrap_or(Uuid(uuid::Uuid::nil())),
            name: item.host_name.clone(),
            interfaces: Vec::new(),
            external_ids: item.ids.clone(),
            protected: false,
        };
        let mut attachment =
            Attachment::from_port(&written).ok_or_else(|| AttachError::Reply("attachment record".into()))?;
        attachment.port_uuid = item.undo.port;
        attachment.ofport = Some(ofport);
        let change = if item.stale.is_empty() {
            Change::Created
        } else {
            Change::Replugged { stale: item.stale.into_iter().map(|a| a.port).collect() }
        };
        Ok(AttachReport { attachment, change })
    }

    /// Waits (inside ovsdb-server: one `wait` operation per interface, with
    /// a timeout, all in one transaction) until `ovs-vswitchd` has set the
    /// interfaces' `ofport`s; returns them in the order of `names`.
    async fn wait_ofports(&self, names: &[String]) -> Result<Vec<i64>, AttachError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut unset = Row::new();
        unset.insert("ofport".into(), Datum::empty_set());
        let timeout_ms = self.opts.ofport_timeout.as_millis() as u64;
        let mut ops = Vec::with_capacity(names.len() * 2);
        for name in names {
            ops.push(Operation::wait(
                "Interface",
                vec![Condition::eq("name", name.as_str())],
                vec!["ofport".into()],
                WaitUntil::NotEqual,
                vec![unset.clone()],
                Some(timeout_ms),
            ));
        }
        for name in names {
            ops.push(
                Operation::select("Interface", vec![Condition::eq("name", name.as_str())])
                    .columns(["_uuid", "ofport", "error"]),
            );
        }
        let shown = || names.join(", ");
        let results = match self.transact(ops).await {
            Ok(r) => r,
            Err(crate::ovsdb::Error::Transaction { error: crate::ovsdb::ErrorTag::TimedOut, .. }) => {
                return Err(AttachError::NoOfport { port: shown(), secs: self.opts.ofport_timeout.as_secs() });
            }
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let row = results
                .get(names.len() + i)
                .and_then(|r| r.rows.as_ref())
                .and_then(|rows| rows.first())
                .and_then(crate::vswitch::Interface::from_row)
                .ok_or_else(|| AttachError::Reply(format!("interface {name} vanished")))?;
            match row.ofport {
                Some(p) if p > 0 => out.push(p),
                _ => {
                    return Err(AttachError::InterfaceError {
                        port: name.to_owned(),
                        error: row.error.unwrap_or_else(|| "no OpenFlow port".to_owned()),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn rollback(&self, bridge: &str, undo: Undo) {
        if let Some(port) = undo.port
            && let Err(e) = self.transact(detach_ops(bridge, &[port], "roll back a failed attach")).await
        {
            tracing::warn!("rollback: remove port: {e}");
        }
        if let Some(link) = undo.veth
            && let Err(e) = self.host.delete_link_by_name(&link.name).await
        {
            tracing::warn!("rollback: delete veth {}: {e}", link.name);
        }
    }

    /// The encapsulation overhead to leave room for: the largest of the
    /// tunnels on `bridge` (0 without tunnels).
    async fn tunnel_overhead(&self, bridge: &str, tunnels: &[(Uuid, String)]) -> Result<u32, AttachError> {
        if tunnels.is_empty() {
            return Ok(0);
        }
        let mut ops = vec![Operation::select("Bridge", vec![Condition::eq("name", bridge)]).columns(["ports"])];
        for (uuid, _) in tunnels {
            ops.push(
                Operation::select("Port", vec![Condition::new("interfaces", Function::Includes, Datum::from(*uuid))])
                    .columns(["_uuid"]),
            );
        }
        let r = self.transact(ops).await?;
        let ports: Vec<Uuid> = r
            .first()
            .and_then(|x| x.rows.as_ref())
            .and_then(|rows| rows.first())
            .and_then(|row| row.get("ports"))
            .map(Datum::uuids)
            .unwrap_or_default();
        let mut overhead = 0;
        for (i, (_, kind)) in tunnels.iter().enumerate() {
            let on_bridge = r.get(i + 1).and_then(|x| x.rows.as_ref()).is_some_and(|rows| {
                rows.iter().filter_map(|row| row.get("_uuid").and_then(Datum::as_uuid)).any(|p| ports.contains(&p))
            });
            if on_bridge && let Ok(t) = kind.parse::<crate::vswitch::TunnelType>() {
                overhead = overhead.max(t.overhead_ipv4());
            }
        }
        Ok(overhead)
    }

    /// Detaches a container's interface. With `if_exists`, detaching what
    /// is not attached is not an error. Returns what was removed.
    pub async fn detach(
        &self,
        bridge: &str,
        container: &str,
        ifname: &str,
        if_exists: bool,
    ) -> Result<Vec<Attachment>, AttachError> {
        crate::vswitch::spec::check_name("bridge", bridge).map_err(|e| AttachError::BadInput(e.to_string()))?;
        crate::netlink::validate_ifname(ifname)?;
        let reference = ContainerRef::parse(container)?;
        // The container may be gone: then match what was recorded, by ID
        // (pid:, netns:, paths, full Docker IDs) or by Docker name.
        let id = match self.resolver.resolve(&reference).await {
            Ok(r) => r.identity.id,
            Err(
                crate::container::ContainerError::NoSuchContainer(_)
                | crate::container::ContainerError::NotRunning(_)
                | crate::container::ContainerError::NoSuchProcess(_)
                | crate::container::ContainerError::NoSuchNamespace(_),
            ) => container.to_owned(),
            Err(e) => return Err(e.into()),
        };
        let by_name = vec![Condition::new(
            "external_ids",
            Function::Includes,
            Datum::map([
                (keys::BRIDGE.to_owned(), bridge.to_owned()),
                (keys::CONTAINER_NAME.to_owned(), container.to_owned()),
                (keys::IFNAME.to_owned(), ifname.to_owned()),
            ]),
        )];
        let r = self
            .transact(vec![
                Operation::select("Bridge", vec![Condition::eq("name", bridge)]).columns(["_uuid"]),
                Operation::select("Port", by_container(bridge, &id, ifname)).columns(PORT_COLUMNS),
                Operation::select("Port", by_name).columns(PORT_COLUMNS),
            ])
            .await?;
        if r.first().and_then(|x| x.rows.as_ref()).is_none_or(|rows| rows.is_empty()) {
            return Err(AttachError::NoBridge(bridge.to_owned()));
        }
        let mut found: Vec<Attachment> = Vec::new();
        for i in [1, 2] {
            for row in r.get(i).and_then(|x| x.rows.as_deref()).unwrap_or(&[]) {
                if let Some(a) = Attachment::from_port_row(row)
                    && !found.iter().any(|f| f.port == a.port)
                {
                    found.push(a);
                }
            }
        }
        if found.is_empty() {
            if if_exists {
                return Ok(found);
            }
            return Err(AttachError::NotAttached {
                container: container.to_owned(),
                ifname: ifname.to_owned(),
                bridge: bridge.to_owned(),
            });
        }
        self.remove(&found, "detach").await?;
        Ok(found)
    }

    /// Removes attachments: their ports (one transaction) and host veths.
    async fn remove(&self, attachments: &[Attachment], why: &str) -> Result<(), AttachError> {
        let mut by_bridge: BTreeMap<&str, Vec<Uuid>> = BTreeMap::new();
        for a in attachments {
            if let Some(u) = a.port_uuid {
                by_bridge.entry(a.bridge.as_str()).or_default().push(u);
            }
        }
        let mut ops = Vec::new();
        for (bridge, uuids) in &by_bridge {
            ops.extend(detach_ops(bridge, uuids, why));
        }
        if !ops.is_empty() {
            self.transact(ops).await?;
        }
        for a in attachments {
            // Deleting the host end takes the container end with it.
            self.host.delete_link_by_name(&a.port).await?;
        }
        Ok(())
    }

    /// The attachments recorded in OVSDB (on `bridge`, or everywhere), with
    /// their ofports.
    pub async fn attachments(&self, bridge: Option<&str>) -> Result<Vec<Attachment>, AttachError> {
        let cond = match bridge {
            Some(b) => by_bridge(b),
            None => vec![],
        };
        let r = self
            .transact(vec![
                Operation::select("Port", cond.clone()).columns(PORT_COLUMNS),
                Operation::select("Interface", cond).columns(["_uuid", "name", "ofport"]),
            ])
            .await?;
        let ofports: BTreeMap<String, i64> = r
            .get(1)
            .and_then(|x| x.rows.as_deref())
            .unwrap_or(&[])
            .iter()
            .filter_map(crate::vswitch::Interface::from_row)
            .filter_map(|i| Some((i.name, i.ofport?)))
            .collect();
        let mut out: Vec<Attachment> = r
            .first()
            .and_then(|x| x.rows.as_deref())
            .unwrap_or(&[])
            .iter()
            .filter_map(Attachment::from_port_row)
            .map(|mut a| {
                a.ofport = ofports.get(&a.port).copied();
                a
            })
            .collect();
        out.sort_by(|a, b| (&a.bridge, &a.ip, &a.port).cmp(&(&b.bridge, &b.ip, &b.port)));
        Ok(out)
    }

    /// Whether an attachment's container is still there, in the same namespace.
    pub async fn liveness(&self, a: &Attachment) -> Liveness {
        let Some(reference) = a.reference() else {
            return Liveness::Unknown(format!("unreadable container {:?}", a.container));
        };
        match self.resolver.current_netns(&reference).await {
            Ok(None) => Liveness::Gone,
            Ok(Some(ns)) if Some(ns) == a.netns_id() => Liveness::Alive,
            Ok(Some(_)) => Liveness::Restarted,
            Err(e) => Liveness::Unknown(e.to_string()),
        }
    }

    /// Removes the ports whose container is gone or restarted (a new
    /// namespace). Attachments whose state cannot be told are kept.
    pub async fn gc(&self, bridge: Option<&str>) -> Result<Vec<Attachment>, AttachError> {
        let mut dead = Vec::new();
        for a in self.attachments(bridge).await? {
            match self.liveness(&a).await {
                Liveness::Gone | Liveness::Restarted => dead.push(a),
                Liveness::Alive => {}
                Liveness::Unknown(why) => tracing::warn!("keeping {}: cannot tell: {why}", a.port),
            }
        }
        if !dead.is_empty() {
            self.remove(&dead, "gc").await?;
        }
        Ok(dead)
    }

    /// The identity a reference resolves to now (for callers that want to
    /// report it).
    pub async fn identify(&self, reference: &ContainerRef) -> Result<Identity, AttachError> {
        Ok(self.resolver.resolve(reference).await?.identity)
    }
}

/// Whether an attach announces its address with a gratuitous ARP: only
/// when its MAC is not the one derived from the IP.
fn needs_garp(req: &AttachRequest) -> bool {
    req.mac.is_some_and(|m| m != Mac::from_ipv4(req.ip))
}

/// Checks operations against the bundled schema: they must fit it, and be
/// sent as they are (no empty set where the column is a map, which the
/// server would refuse and normalizing would fix).
fn check_against_schema(ops: &[Operation]) -> Result<(), crate::ovsdb::SchemaError> {
    let schema = crate::vswitch::bundled_schema()?;
    schema.check_operations(ops)?;
    let mut normalized = ops.to_vec();
    schema.normalize_operations(&mut normalized);
    match normalized.iter().zip(ops).position(|(n, o)| n != o) {
        None => Ok(()),
        Some(i) => Err(crate::ovsdb::SchemaError::new(format!(
            "operation {i} ({}) needs normalizing against the schema: give map columns empty maps",
            ops[i].op_name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_checked_and_must_need_no_normalizing() {
        let req = AttachRequest::new("obr0", ContainerRef::Netns("c1".into()), "10.0.0.2/24").expect("request");
        assert_eq!(check_against_schema(&read_ops(&req, "netns:c1", "ovs0123456789ab")), Ok(()));

        // A map column given an empty set: the server would refuse it.
        let mut row = Row::new();
        row.insert("external_ids".into(), Datum::empty_set());
        let bad = vec![Operation::update("Port", vec![Condition::eq("name", "p1")], row)];
        let err = check_against_schema(&bad).expect_err("needs normalizing");
        assert!(err.to_string().contains("operation 0 (update) needs normalizing"), "{err}");

        // A column the schema does not have.
        let mut row = Row::new();
        row.insert("no_such_column".into(), Datum::from("x"));
        let bad = vec![Operation::update("Port", vec![Condition::eq("name", "p1")], row)];
        assert!(check_against_schema(&bad).is_err());
    }
}
