//! Transactions on the `Open_vSwitch` database, built without I/O. Each
//! builder returns the whole transaction for one command, with the same
//! rows and columns `ovs-vsctl` would write, guarded by `wait` operations
//! so that a concurrent change makes it fail instead of clobbering.

use std::collections::BTreeMap;

use crate::ovsdb::{Condition, Datum, Mutation, Mutator, Operation, Row, Uuid, WaitUntil};

use super::model::Snapshot;
use super::spec::{BridgeSpec, DatapathType, TunnelSpec};

/// A port to add: one interface of the same name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PortSpec {
    pub name: String,
    /// Interface `type` ("" for a system device such as a veth end).
    pub kind: String,
    pub options: BTreeMap<String, String>,
    pub mtu_request: Option<u32>,
    /// Recorded on both the Port and the Interface row.
    pub external_ids: BTreeMap<String, String>,
    /// The Port's `protected` column: OVS forwards nothing from one
    /// protected port to another (split horizon for a mesh of tunnels).
    pub protected: bool,
}

impl PortSpec {
    pub fn tunnel(spec: &TunnelSpec) -> Self {
        PortSpec {
            name: spec.name.clone(),
            kind: spec.kind.as_str().to_owned(),
            options: spec.options(),
            ..Default::default()
        }
    }
}

fn string_map(m: &BTreeMap<String, String>) -> Datum {
    Datum::map(m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// Fails the transaction unless no row of `table` has this `name`.
fn wait_absent(table: &str, name: &str) -> Operation {
    Operation::wait(
        table,
        vec![Condition::eq("name", name)],
        vec!["name".to_owned()],
        WaitUntil::Equal,
        vec![],
        Some(0),
    )
}

/// Fails the transaction unless the column `col` of row `uuid` still holds
/// `value` (what the snapshot saw): ovs-vsctl's "verify".
fn wait_unchanged(table: &str, uuid: Uuid, col: &str, value: Datum) -> Operation {
    let mut row = Row::new();
    row.insert(col.to_owned(), value);
    Operation::wait(table, vec![Condition::uuid(uuid)], vec![col.to_owned()], WaitUntil::Equal, vec![row], Some(0))
}

/// Asks ovs-vswitchd to report when it has applied this transaction
/// (it copies `next_cfg` to `cur_cfg`), as ovs-vsctl does.
fn bump_next_cfg(root: Uuid) -> Operation {
    Operation::mutate("Open_vSwitch", vec![Condition::uuid(root)], vec![Mutation::new("next_cfg", Mutator::Add, 1i64)])
}

/// The insert operations for a port and its interface, guarded so that
/// the transaction fails if either name is taken; the port's named UUID is
/// `port_ref`.
pub fn insert_port(port: &PortSpec, port_ref: &str) -> Vec<Operation> {
    let mut ops = vec![wait_absent("Interface", &port.name), wait_absent("Port", &port.name)];
    ops.extend(port_rows(port, port_ref));
    ops
}

/// The two inserts of a port: its `Interface` row (named UUID
/// `{port_ref}_iface`), then its `Port` row (named UUID `port_ref`),
/// unguarded: for callers whose own guards already cover the names.
pub fn port_rows(port: &PortSpec, port_ref: &str) -> [Operation; 2] {
    let iface_ref = format!("{port_ref}_iface");
    let mut iface = Row::new();
    iface.insert("name".into(), Datum::from(port.name.as_str()));
    if !port.kind.is_empty() {
        iface.insert("type".into(), Datum::from(port.kind.as_str()));
    }
    if !port.options.is_empty() {
        iface.insert("options".into(), string_map(&port.options));
    }
    if let Some(mtu) = port.mtu_request {
        iface.insert("mtu_request".into(), Datum::from(i64::from(mtu)));
    }
    if !port.external_ids.is_empty() {
        iface.insert("external_ids".into(), string_map(&port.external_ids));
    }
    let mut prow = Row::new();
    prow.insert("name".into(), Datum::from(port.name.as_str()));
    prow.insert("interfaces".into(), Datum::named_uuid(&iface_ref));
    if !port.external_ids.is_empty() {
        prow.insert("external_ids".into(), string_map(&port.external_ids));
    }
    if port.protected {
        prow.insert("protected".into(), Datum::from(true));
    }
    [Operation::insert("Interface", iface).uuid_name(&iface_ref), Operation::insert("Port", prow).uuid_name(port_ref)]
}

/// `bridge add`: a Bridge with its internal Port and Interface, referred
/// to from the root row.
pub fn add_bridge(snap: &Snapshot, spec: &BridgeSpec, datapath: DatapathType, comment: &str) -> Vec<Operation> {
    let local =
        PortSpec { name: spec.name.clone(), kind: "internal".into(), mtu_request: spec.mtu, ..Default::default() };
    let mut ops = vec![Operation::comment(comment), wait_absent("Bridge", &spec.name)];
    ops.extend(insert_port(&local, "local_port"));
    let mut row = Row::new();
    row.insert("name".into(), Datum::from(spec.name.as_str()));
    row.insert("ports".into(), Datum::named_uuid("local_port"));
    row.insert("datapath_type".into(), Datum::from(datapath.as_str()));
    if let Some(mode) = spec.fail_mode {
        row.insert("fail_mode".into(), Datum::from(mode.as_str()));
    }
    ops.push(Operation::insert("Bridge", row).uuid_name("bridge"));
    ops.push(Operation::mutate(
        "Open_vSwitch",
        vec![Condition::uuid(snap.root)],
        vec![Mutation::new("bridges", Mutator::Insert, Datum::named_uuid("bridge"))],
    ));
    ops.push(bump_next_cfg(snap.root));
    ops
}

/// `bridge del`: drop the root row's reference; OVSDB collects the
/// bridge, its ports and their interfaces, which nothing else refers to.
pub fn del_bridge(snap: &Snapshot, bridge: Uuid, comment: &str) -> Vec<Operation> {
    vec![
        Operation::comment(comment),
        Operation::mutate(
            "Open_vSwitch",
            vec![Condition::uuid(snap.root)],
            vec![Mutation::new("bridges", Mutator::Delete, Datum::from(bridge))],
        ),
        bump_next_cfg(snap.root),
    ]
}

/// Adds ports to a bridge, in one transaction. Fails (instead of adding
/// ports nothing refers to) if the bridge went away meanwhile.
pub fn add_ports(
    snap: &Snapshot,
    bridge: Uuid,
    bridge_name: &str,
    ports: &[PortSpec],
    comment: &str,
) -> Vec<Operation> {
    let mut ops = vec![Operation::comment(comment), wait_unchanged("Bridge", bridge, "name", Datum::from(bridge_name))];
    let mut refs = Vec::with_capacity(ports.len());
    for (i, p) in ports.iter().enumerate() {
        let r = format!("port{i}");
        ops.extend(insert_port(p, &r));
        refs.push(r);
    }
    ops.push(Operation::mutate(
        "Bridge",
        vec![Condition::uuid(bridge)],
        vec![Mutation::new(
            "ports",
            Mutator::Insert,
            Datum::set(refs.iter().map(|r| crate::ovsdb::Atom::NamedUuid(r.clone()))),
        )],
    ));
    ops.push(bump_next_cfg(snap.root));
    ops
}

/// Removes ports from a bridge; each must still be on it.
pub fn del_ports(snap: &Snapshot, bridge: Uuid, ports: &[Uuid], comment: &str) -> Vec<Operation> {
    let mut ops = vec![Operation::comment(comment)];
    ops.push(Operation::mutate(
        "Bridge",
        vec![
            Condition::uuid(bridge),
            Condition::new("ports", crate::ovsdb::Function::Includes, Datum::set(ports.iter().copied())),
        ],
        vec![Mutation::new("ports", Mutator::Delete, Datum::set(ports.iter().copied()))],
    ));
    ops.push(bump_next_cfg(snap.root));
    ops
}

/// Guard: the bridge's set of ports is still what the snapshot saw.
pub fn verify_ports(bridge: Uuid, ports: &[Uuid]) -> Operation {
    wait_unchanged("Bridge", bridge, "ports", Datum::set(ports.iter().copied()))
}
