//! The `Open_vSwitch` database in OVS terms: bridges, ports, interfaces
//! and tunnels. [`spec`] checks what a user asks for, [`model`] reads the
//! database into typed rows, [`txn`] builds each command's transaction
//! (all pure); [`Vswitch`] sends them, one transaction per command, and
//! waits for `ovs-vswitchd` to apply it.

pub mod address;
pub mod controller;
pub mod keys;
pub mod model;
pub mod spec;
pub mod txn;

use std::time::{Duration, Instant};

use crate::net::AddrError;
use crate::ovsdb::{self, Client, Operation};

pub use model::{Bridge, DB, Interface, Port, Snapshot, bundled_schema};
pub use spec::{BridgeSpec, DatapathType, FailMode, FlowOr, TunnelSpec, TunnelType};
pub use txn::PortSpec;

#[derive(Debug, thiserror::Error)]
pub enum VswitchError {
    #[error("bad {kind} name {name:?}: {why}")]
    BadName { kind: &'static str, name: String, why: String },
    #[error("{0}")]
    BadValue(String),
    #[error(transparent)]
    Addr(#[from] AddrError),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{what} already exists with other settings: {}", differences.join("; "))]
    Conflict { what: String, differences: Vec<String> },
    #[error("{0}")]
    InUse(String),
    #[error("the database has no Open_vSwitch row (not an Open_vSwitch database, or not initialised)")]
    NotInitialized,
    #[error("ovs-vswitchd did not apply the change within {0:?} (is it running?)")]
    NotApplied(Duration),
    #[error("ovs-vswitchd could not set up interface {name}: {error}")]
    InterfaceError { name: String, error: String },
    #[error("{0} changed while this command ran; try again")]
    Raced(String),
    #[error(transparent)]
    Ovsdb(#[from] ovsdb::Error),
    #[error("interface {name}: {source}")]
    Netlink { name: String, source: Box<dyn std::error::Error + Send + Sync> },
}

/// Whether a command changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Unchanged,
    Deleted,
    Absent,
}

/// How long to wait for ovs-vswitchd, by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(15);

/// The switch's configuration database, through one OVSDB connection.
#[derive(Clone)]
pub struct Vswitch {
    client: Client,
    /// Wait for ovs-vswitchd to apply each change (`None`: do not wait,
    /// like `ovs-vsctl --no-wait`).
    wait: Option<Duration>,
}

impl Vswitch {
    pub fn new(client: Client) -> Self {
        Vswitch { client, wait: Some(DEFAULT_WAIT) }
    }

    /// Sets how long to wait for ovs-vswitchd (`None`: do not wait).
    pub fn with_wait(mut self, wait: Option<Duration>) -> Self {
        self.wait = wait;
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Reads bridges, ports and interfaces in one read-only transaction.
    pub async fn snapshot(&self) -> Result<Snapshot, VswitchError> {
        let results = self.client.transact(DB, Snapshot::read_ops()).await?;
        Snapshot::from_results(&results)
    }

    async fn commit(&self, ops: Vec<Operation>, what: &str) -> Result<(), VswitchError> {
        match self.client.transact(DB, ops).await {
            Ok(_) => Ok(()),
            // A failed `wait` guard: someone changed what we read.
            Err(ovsdb::Error::Transaction { error: ovsdb::ErrorTag::TimedOut, .. }) => {
                Err(VswitchError::Raced(what.to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Waits until ovs-vswitchd has applied everything up to now
    /// (`cur_cfg` reaches `next_cfg`), then reports an interface it
    /// could not set up.
    pub async fn wait_applied(&self, interfaces: &[&str]) -> Result<(), VswitchError> {
        let Some(limit) = self.wait else {
            return Ok(());
        };
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        let cfg = || Operation::select("Open_vSwitch", vec![]).columns(["next_cfg", "cur_cfg"]);
        loop {
            let results = self.client.transact(DB, vec![cfg()]).await?;
            let row = results.first().and_then(|r| r.rows.as_ref()).and_then(|rows| rows.first());
            let get = |col: &str| row.and_then(|r| r.get(col)).and_then(crate::ovsdb::Datum::as_integer).unwrap_or(0);
            if get("cur_cfg") >= get("next_cfg") {
                break;
            }
            if start.elapsed() > limit {
                return Err(VswitchError::NotApplied(limit));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
        if interfaces.is_empty() {
            return Ok(());
        }
        let ops = interfaces
            .iter()
            .map(|n| {
                Operation::select("Interface", vec![crate::ovsdb::Condition::eq("name", *n)]).columns(["name", "error"])
            })
            .collect();
        for r in self.client.transact(DB, ops).await? {
            for row in r.rows.iter().flatten() {
                if let Some(error) = row.get("error").and_then(crate::ovsdb::Datum::as_str) {
                    let name = row.get("name").and_then(crate::ovsdb::Datum::as_str).unwrap_or_default();
                    return Err(VswitchError::InterfaceError { name: name.to_owned(), error: error.to_owned() });
                }
            }
        }
        Ok(())
    }

    /// `bridge add`: creates the bridge, or accepts one that exists with
    /// the same settings; refuses one with other settings, naming them.
    pub async fn add_bridge(&self, spec: &BridgeSpec) -> Result<Outcome, VswitchError> {
        spec.check()?;
        let snap = self.snapshot().await?;
        if let Some(existing) = snap.bridge(&spec.name) {
            let differences = bridge_differences(existing, spec);
            if differences.is_empty() {
                return Ok(Outcome::Unchanged);
            }
            return Err(VswitchError::Conflict { what: format!("bridge {}", spec.name), differences });
        }
        if let Some((bridge, _)) = snap.find_port(&spec.name) {
            return Err(VswitchError::InUse(format!(
                "cannot create bridge {}: a port of that name is on bridge {}",
                spec.name, bridge.name
            )));
        }
        let datapath = spec.datapath.unwrap_or_else(DatapathType::detect);
        let comment = format!("ovsnet: bridge add {}", spec.name);
        self.commit(txn::add_bridge(&snap, spec, datapath, &comment), &format!("bridge {}", spec.name)).await?;
        self.wait_applied(&[&spec.name]).await?;
        Ok(Outcome::Created)
    }

    /// `bridge del`.
    pub async fn del_bridge(&self, name: &str, if_exists: bool) -> Result<Outcome, VswitchError> {
        spec::check_name("bridge", name)?;
        let snap = self.snapshot().await?;
        let Some(bridge) = snap.bridge(name) else {
            return if if_exists { Ok(Outcome::Absent) } else { Err(VswitchError::NotFound(format!("bridge {name}"))) };
        };
        let comment = format!("ovsnet: bridge del {name}");
        self.commit(txn::del_bridge(&snap, bridge.uuid, &comment), &format!("bridge {name}")).await?;
        self.wait_applied(&[]).await?;
        Ok(Outcome::Deleted)
    }

    /// Adds ports to an existing bridge in one transaction. A port that
    /// exists on the bridge with the same type and options is left as is;
    /// one with other settings, or on another bridge, is refused.
    pub async fn add_ports(&self, bridge: &str, ports: &[PortSpec]) -> Result<Outcome, VswitchError> {
        spec::check_name("bridge", bridge)?;
        for p in ports {
            spec::check_name("port", &p.name)?;
            if let Some(mtu) = p.mtu_request {
                spec::check_mtu(mtu)?;
            }
        }
        let names: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
        let results = self.client.transact(DB, Snapshot::read_named_ops(&[bridge], &names)).await?;
        let mut snap = Snapshot::from_named_results(&results, 1, names.len())?;
        let br = snap.bridge(bridge).ok_or_else(|| VswitchError::NotFound(format!("bridge {bridge}")))?.uuid;
        // A port that exists but on no bridge we read is on some other
        // bridge: read everything once to say which.
        let elsewhere = ports.iter().any(|p| {
            results.iter().any(|r| {
                r.rows
                    .iter()
                    .flatten()
                    .any(|row| row.get("name").and_then(crate::ovsdb::Datum::as_str) == Some(p.name.as_str()))
            }) && snap.find_port(&p.name).is_none()
                && snap.find_interface(&p.name).is_none()
                && snap.bridge(&p.name).is_none()
        });
        if elsewhere {
            snap = self.snapshot().await?;
        }
        let mut new = Vec::new();
        for p in ports {
            match snap.find_port(&p.name) {
                Some((b, existing)) if b.name == bridge => {
                    let differences = port_differences(existing, p);
                    if !differences.is_empty() {
                        return Err(VswitchError::Conflict {
                            what: format!("port {} on {bridge}", p.name),
                            differences,
                        });
                    }
                }
                Some((b, _)) => {
                    return Err(VswitchError::InUse(format!("port {} is already on bridge {}", p.name, b.name)));
                }
                None => {
                    if snap.bridge(&p.name).is_some() {
                        return Err(VswitchError::InUse(format!("{} is the name of a bridge", p.name)));
                    }
                    if let Some((b, port, _)) = snap.find_interface(&p.name) {
                        return Err(VswitchError::InUse(format!(
                            "interface {} already exists in port {} on bridge {}",
                            p.name, port.name, b.name
                        )));
                    }
                    new.push(p.clone());
                }
            }
        }
        if new.is_empty() {
            return Ok(Outcome::Unchanged);
        }
        let names: Vec<&str> = new.iter().map(|p| p.name.as_str()).collect();
        let comment = format!("ovsnet: add port {} to {bridge}", names.join(","));
        self.commit(txn::add_ports(&snap, br, bridge, &new, &comment), &format!("bridge {bridge}")).await?;
        self.wait_applied(&names).await?;
        Ok(Outcome::Created)
    }

    /// Removes a port from a bridge. `only_tunnels` refuses ports that are
    /// not tunnels (for `tunnel del`).
    pub async fn del_port(
        &self,
        bridge: &str,
        name: &str,
        if_exists: bool,
        only_tunnels: bool,
    ) -> Result<Outcome, VswitchError> {
        spec::check_name("bridge", bridge)?;
        spec::check_name("port", name)?;
        let snap = self.snapshot().await?;
        let br = snap.bridge(bridge).ok_or_else(|| VswitchError::NotFound(format!("bridge {bridge}")))?;
        let Some(port) = br.port(name) else {
            return if if_exists {
                Ok(Outcome::Absent)
            } else {
                Err(VswitchError::NotFound(format!("port {name} on bridge {bridge}")))
            };
        };
        if name == bridge {
            return Err(VswitchError::InUse(format!("port {name} is the bridge's own port; use bridge del")));
        }
        if only_tunnels {
            let kind = port.interfaces.first().map(|i| i.kind.as_str()).unwrap_or("");
            if TunnelType::from_column(kind).is_none() {
                let shown = if kind.is_empty() { "system" } else { kind };
                return Err(VswitchError::InUse(format!("port {name} on {bridge} is not a tunnel (type {shown})")));
            }
        }
        let comment = format!("ovsnet: del port {name} from {bridge}");
        let results = self.client.transact(DB, txn::del_ports(&snap, br.uuid, &[port.uuid], &comment)).await?;
        if results.get(1).and_then(|r| r.count) == Some(0) {
            return Err(VswitchError::Raced(format!("port {name}")));
        }
        self.wait_applied(&[]).await?;
        Ok(Outcome::Deleted)
    }

    /// `tunnel add`.
    pub async fn add_tunnel(&self, spec: &TunnelSpec) -> Result<Outcome, VswitchError> {
        spec.check()?;
        self.add_ports(&spec.bridge, &[PortSpec::tunnel(spec)]).await
    }
}

/// What differs between an existing bridge and what was asked for
/// (settings not asked for are not compared).
pub fn bridge_differences(existing: &Bridge, spec: &BridgeSpec) -> Vec<String> {
    let mut d = Vec::new();
    if let Some(want) = spec.datapath {
        let have = DatapathType::from_column(&existing.datapath_type);
        if have != Some(want) {
            d.push(format!("datapath is {}, not {want}", shown(&existing.datapath_type)));
        }
    }
    if let Some(want) = spec.fail_mode {
        if existing.fail_mode.as_deref() != Some(want.as_str()) {
            d.push(format!("fail_mode is {}, not {}", existing.fail_mode.as_deref().unwrap_or("unset"), want.as_str()));
        }
    }
    if let Some(want) = spec.mtu {
        let have = existing.local_interface().and_then(|i| i.mtu_request);
        if have != Some(i64::from(want)) {
            d.push(format!(
                "mtu_request is {}, not {want}",
                have.map(|m| m.to_string()).unwrap_or_else(|| "unset".into())
            ));
        }
    }
    d
}

/// What differs between an existing port and what was asked for.
pub fn port_differences(existing: &Port, spec: &PortSpec) -> Vec<String> {
    let mut d = Vec::new();
    let Some(iface) = existing.interfaces.iter().find(|i| i.name == spec.name) else {
        return vec![format!("port {} has no interface of its own name", spec.name)];
    };
    if iface.kind != spec.kind {
        d.push(format!("type is {}, not {}", shown(&iface.kind), shown(&spec.kind)));
    }
    if iface.options != spec.options {
        for (k, v) in &spec.options {
            match iface.options.get(k) {
                Some(have) if have == v => {}
                Some(have) => d.push(format!("options:{k} is {have}, not {v}")),
                None => d.push(format!("options:{k} is unset, not {v}")),
            }
        }
        for (k, have) in &iface.options {
            if !spec.options.contains_key(k) {
                d.push(format!("options:{k} is {have}, not unset"));
            }
        }
    }
    if let Some(want) = spec.mtu_request {
        if iface.mtu_request != Some(i64::from(want)) {
            d.push(format!("mtu_request differs (want {want})"));
        }
    }
    if spec.protected && !existing.protected {
        d.push("protected is false, not true".into());
    }
    d
}

fn shown(s: &str) -> &str {
    if s.is_empty() { "\"\"" } else { s }
}
