//! The parts of the `Open_vSwitch` database ovsnet reads, as typed rows:
//! the root row, bridges, ports and interfaces. Built from selected rows
//! by pure functions.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::ovsdb::{Condition, Datum, OpResult, Operation, Row, Uuid};

use super::VswitchError;

/// The database ovsnet reads and writes on every switch.
pub const DB: &str = "Open_vSwitch";

/// The `Open_vSwitch` schema this build was written against (Open vSwitch
/// 3.1's), bundled so that operations can be checked without a server.
pub const BUNDLED_SCHEMA: &str = include_str!("../../ovsdb-schemas/vswitch.ovsschema");

/// [`BUNDLED_SCHEMA`], parsed once.
pub fn bundled_schema() -> Result<&'static crate::ovsdb::DatabaseSchema, crate::ovsdb::SchemaError> {
    static SCHEMA: std::sync::OnceLock<Result<crate::ovsdb::DatabaseSchema, crate::ovsdb::SchemaError>> =
        std::sync::OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let json: serde_json::Value = serde_json::from_str(BUNDLED_SCHEMA)
                .map_err(|e| crate::ovsdb::SchemaError::new(format!("bundled Open_vSwitch schema: {e}")))?;
            crate::ovsdb::DatabaseSchema::from_json(&json)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Columns read from each table (only what ovsnet shows or compares).
pub const ROOT_COLUMNS: &[&str] = &["_uuid", "bridges", "next_cfg", "cur_cfg"];
pub const BRIDGE_COLUMNS: &[&str] =
    &["_uuid", "name", "ports", "datapath_type", "fail_mode", "controller", "external_ids"];
pub const PORT_COLUMNS: &[&str] = &["_uuid", "name", "interfaces", "external_ids", "protected"];
pub const INTERFACE_COLUMNS: &[&str] =
    &["_uuid", "name", "type", "options", "ofport", "error", "mtu", "mtu_request", "mac_in_use", "external_ids"];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interface {
    #[serde(skip)]
    pub uuid: Uuid,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub options: BTreeMap<String, String>,
    pub ofport: Option<i64>,
    pub error: Option<String>,
    pub mtu: Option<i64>,
    pub mtu_request: Option<i64>,
    pub mac_in_use: Option<String>,
    pub external_ids: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Port {
    #[serde(skip)]
    pub uuid: Uuid,
    pub name: String,
    pub interfaces: Vec<Interface>,
    pub external_ids: BTreeMap<String, String>,
    pub protected: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bridge {
    #[serde(skip)]
    pub uuid: Uuid,
    pub name: String,
    pub datapath_type: String,
    pub fail_mode: Option<String>,
    pub controllers: usize,
    pub ports: Vec<Port>,
    pub external_ids: BTreeMap<String, String>,
}

impl Bridge {
    pub fn port(&self, name: &str) -> Option<&Port> {
        self.ports.iter().find(|p| p.name == name)
    }

    /// The bridge's own internal interface (same name as the bridge).
    pub fn local_interface(&self) -> Option<&Interface> {
        self.port(&self.name).and_then(|p| p.interfaces.iter().find(|i| i.name == self.name))
    }
}

/// What ovsnet knows of the switch's configuration at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub root: Uuid,
    pub next_cfg: i64,
    pub cur_cfg: i64,
    /// Sorted by name.
    pub bridges: Vec<Bridge>,
}

impl Snapshot {
    /// The read-only operations whose results [`Snapshot::from_results`] takes.
    pub fn read_ops() -> Vec<Operation> {
        vec![
            Operation::select("Open_vSwitch", vec![]).columns(ROOT_COLUMNS.iter().copied()),
            Operation::select("Bridge", vec![]).columns(BRIDGE_COLUMNS.iter().copied()),
            Operation::select("Port", vec![]).columns(PORT_COLUMNS.iter().copied()),
            Operation::select("Interface", vec![]).columns(INTERFACE_COLUMNS.iter().copied()),
        ]
    }

    /// Builds the snapshot from the replies to [`Snapshot::read_ops`].
    pub fn from_results(results: &[OpResult]) -> Result<Self, VswitchError> {
        let rows = |i: usize| -> &[Row] { results.get(i).and_then(|r| r.rows.as_deref()).unwrap_or(&[]) };
        Self::from_rows(rows(0), rows(1), rows(2), rows(3))
    }

    /// Operations reading only the rows these names concern: the root
    /// row, the named bridges, and the ports, interfaces and bridges named
    /// like each port. The cost does not grow with the switch's size.
    /// Take the results with [`Snapshot::from_named_results`].
    pub fn read_named_ops(bridges: &[&str], ports: &[&str]) -> Vec<Operation> {
        let named = |table: &str, cols: &[&str], name: &str| {
            Operation::select(table, vec![Condition::eq("name", name)]).columns(cols.iter().copied())
        };
        let mut ops = vec![Operation::select("Open_vSwitch", vec![]).columns(ROOT_COLUMNS.iter().copied())];
        ops.extend(bridges.iter().chain(ports).map(|n| named("Bridge", BRIDGE_COLUMNS, n)));
        ops.extend(ports.iter().map(|n| named("Port", PORT_COLUMNS, n)));
        ops.extend(ports.iter().map(|n| named("Interface", INTERFACE_COLUMNS, n)));
        ops
    }

    /// A partial snapshot from the replies to [`Snapshot::read_named_ops`]:
    /// bridges list only the ports that were read.
    pub fn from_named_results(results: &[OpResult], bridges: usize, ports: usize) -> Result<Self, VswitchError> {
        let gather = |range: std::ops::Range<usize>| -> Vec<Row> {
            let mut seen = std::collections::HashSet::new();
            results[range.start.min(results.len())..range.end.min(results.len())]
                .iter()
                .flat_map(|r| r.rows.iter().flatten())
                .filter(|r| uuid_of(r).is_some_and(|u| seen.insert(u)))
                .cloned()
                .collect()
        };
        let root = gather(0..1);
        let b = gather(1..1 + bridges + ports);
        let p = gather(1 + bridges + ports..1 + bridges + 2 * ports);
        let i = gather(1 + bridges + 2 * ports..1 + bridges + 3 * ports);
        Self::from_rows(&root, &b, &p, &i)
    }

    fn from_rows(
        root: &[Row],
        bridge_rows: &[Row],
        port_rows: &[Row],
        iface_rows: &[Row],
    ) -> Result<Self, VswitchError> {
        let root_row = root.first().ok_or(VswitchError::NotInitialized)?;
        let interfaces: HashMap<Uuid, Interface> =
            iface_rows.iter().filter_map(|r| interface_from_row(r).map(|i| (i.uuid, i))).collect();
        let ports: HashMap<Uuid, Port> = port_rows
            .iter()
            .filter_map(|r| {
                let uuid = uuid_of(r)?;
                let mut ifaces: Vec<Interface> =
                    set_uuids(r, "interfaces").iter().filter_map(|u| interfaces.get(u).cloned()).collect();
                ifaces.sort_by(|a, b| a.name.cmp(&b.name));
                let mut port = Port::from_row(r)?;
                port.interfaces = ifaces;
                Some((uuid, port))
            })
            .collect();
        let root_bridges = set_uuids(root_row, "bridges");
        let mut bridges: Vec<Bridge> = bridge_rows
            .iter()
            .filter_map(|r| {
                let uuid = uuid_of(r)?;
                // Only bridges the root row refers to are part of the
                // configuration (others are garbage awaiting collection).
                if !root_bridges.contains(&uuid) {
                    return None;
                }
                let mut ports: Vec<Port> = set_uuids(r, "ports").iter().filter_map(|u| ports.get(u).cloned()).collect();
                ports.sort_by(|a, b| a.name.cmp(&b.name));
                Some(Bridge {
                    uuid,
                    name: string(r, "name"),
                    datapath_type: string(r, "datapath_type"),
                    fail_mode: optional_string(r, "fail_mode"),
                    controllers: set_uuids(r, "controller").len(),
                    ports,
                    external_ids: map(r, "external_ids"),
                })
            })
            .collect();
        bridges.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Snapshot {
            root: uuid_of(root_row).ok_or(VswitchError::NotInitialized)?,
            next_cfg: integer(root_row, "next_cfg").unwrap_or(0),
            cur_cfg: integer(root_row, "cur_cfg").unwrap_or(0),
            bridges,
        })
    }

    pub fn bridge(&self, name: &str) -> Option<&Bridge> {
        self.bridges.iter().find(|b| b.name == name)
    }

    /// The bridge holding a port of this name, and the port.
    pub fn find_port(&self, name: &str) -> Option<(&Bridge, &Port)> {
        self.bridges.iter().find_map(|b| b.port(name).map(|p| (b, p)))
    }

    /// The bridge, port and interface holding an interface of this name.
    pub fn find_interface(&self, name: &str) -> Option<(&Bridge, &Port, &Interface)> {
        self.bridges
            .iter()
            .find_map(|b| b.ports.iter().find_map(|p| p.interfaces.iter().find(|i| i.name == name).map(|i| (b, p, i))))
    }
}

/// The interfaces of bridge `bridge`'s ports, read from a monitor cache of
/// the `Bridge`, `Port` and `Interface` tables (`None`: no such bridge).
pub fn bridge_interfaces(cache: &crate::ovsdb::Cache, bridge: &str) -> Option<Vec<Interface>> {
    let (_, row) = cache.table("Bridge").find(|(_, r)| r.get("name").and_then(Datum::as_str) == Some(bridge))?;
    Some(
        set_uuids(row, "ports")
            .iter()
            .filter_map(|p| cache.row("Port", p))
            .flat_map(Port::interface_uuids)
            .filter_map(|i| cache.row("Interface", &i).map(|r| Interface::from_cached(i, r)))
            .collect(),
    )
}

fn uuid_of(row: &Row) -> Option<Uuid> {
    row.get("_uuid").and_then(Datum::as_uuid)
}

fn string(row: &Row, col: &str) -> String {
    row.get(col).and_then(Datum::as_str).unwrap_or_default().to_owned()
}

/// An optional column (a set of zero or one string).
fn optional_string(row: &Row, col: &str) -> Option<String> {
    row.get(col).and_then(Datum::as_str).map(str::to_owned)
}

fn integer(row: &Row, col: &str) -> Option<i64> {
    row.get(col).and_then(Datum::as_integer)
}

fn set_uuids(row: &Row, col: &str) -> Vec<Uuid> {
    row.get(col).map(Datum::uuids).unwrap_or_default()
}

fn map(row: &Row, col: &str) -> BTreeMap<String, String> {
    row.get(col).and_then(Datum::as_string_map).unwrap_or_default()
}

impl Interface {
    /// Reads an `Interface` row (`None` without a `_uuid`). Columns not
    /// selected read as empty.
    pub fn from_row(r: &Row) -> Option<Interface> {
        interface_from_row(r)
    }

    /// Reads a row whose UUID is known apart (a monitor cache keeps rows
    /// by UUID, without a `_uuid` column).
    pub fn from_cached(uuid: Uuid, r: &Row) -> Interface {
        interface_with_uuid(uuid, r)
    }

    /// The OpenFlow port number, when ovs-vswitchd has given a usable one
    /// (not -1 for a failed interface, not a reserved port).
    pub fn usable_ofport(&self) -> Option<u32> {
        self.ofport.filter(|&p| p > 0 && p < 0xff00).and_then(|p| u32::try_from(p).ok())
    }
}

impl Port {
    /// Reads a `Port` row without resolving its interfaces (`None` without
    /// a `_uuid`).
    pub fn from_row(r: &Row) -> Option<Port> {
        Some(Port {
            uuid: uuid_of(r)?,
            name: string(r, "name"),
            interfaces: Vec::new(),
            external_ids: map(r, "external_ids"),
            protected: r.get("protected").and_then(Datum::as_bool).unwrap_or(false),
        })
    }

    /// The `interfaces` column of a `Port` row.
    pub fn interface_uuids(r: &Row) -> Vec<Uuid> {
        set_uuids(r, "interfaces")
    }
}

fn interface_from_row(r: &Row) -> Option<Interface> {
    Some(interface_with_uuid(uuid_of(r)?, r))
}

fn interface_with_uuid(uuid: Uuid, r: &Row) -> Interface {
    Interface {
        uuid,
        name: string(r, "name"),
        kind: string(r, "type"),
        options: map(r, "options"),
        ofport: integer(r, "ofport"),
        error: optional_string(r, "error"),
        mtu: integer(r, "mtu"),
        mtu_request: integer(r, "mtu_request"),
        mac_in_use: optional_string(r, "mac_in_use"),
        external_ids: map(r, "external_ids"),
    }
}
