//! A bridge's OpenFlow controller: the transaction that points it at a
//! controller with `fail_mode=secure`, and where Open vSwitch keeps its
//! sockets ([`ovs_rundir`]). The operations are built here without being
//! sent ([`read_ops`], [`is_set`], [`set_ops`]); [`set_controller`] sends
//! them.

use std::path::PathBuf;

use super::{DB, VswitchError};
use crate::ovsdb::{Client, Condition, Datum, OpResult, Operation, Row, Uuid};

/// The OVS run directory: `$OVS_RUNDIR`, else the packaged one.
pub fn ovs_rundir() -> PathBuf {
    std::env::var_os("OVS_RUNDIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/run/openvswitch"))
}

/// Reads the bridge's controllers and fail mode.
pub fn read_ops(bridge: &str) -> Vec<Operation> {
    vec![Operation::select("Bridge", vec![Condition::eq("name", bridge)]).columns(["_uuid", "controller", "fail_mode"])]
}

/// What [`read_ops`] found: the bridge's controller rows, and whether its
/// fail mode is `secure`; `None` when the bridge does not exist.
pub fn bridge_controllers(results: &[OpResult]) -> Option<(Vec<Uuid>, bool)> {
    let rows = results.first().and_then(|r| r.rows.as_ref())?;
    let row = rows.first()?;
    let current = row.get("controller").map(Datum::uuids).unwrap_or_default();
    let secure = row.get("fail_mode").and_then(Datum::as_str) == Some("secure");
    Some((current, secure))
}

/// Reads one controller's target.
pub fn target_ops(controller: Uuid) -> Vec<Operation> {
    vec![Operation::select("Controller", vec![Condition::uuid(controller)]).columns(["target"])]
}

/// Whether [`target_ops`] found `target`.
pub fn is_set(results: &[OpResult], target: &str) -> bool {
    let rows = results.first().and_then(|r| r.rows.as_deref()).unwrap_or_default();
    rows.first().and_then(|r| r.get("target")).and_then(Datum::as_str) == Some(target)
}

/// One new Controller row with `target` as the bridge's only controller,
/// and `fail_mode=secure`.
pub fn set_ops(bridge: &str, target: &str) -> Vec<Operation> {
    let mut ctl = Row::new();
    ctl.insert("target".into(), Datum::from(target));
    // A local socket: retry every second at most (the default backs off
    // to 8 s), so a restarted agent is back in control quickly.
    ctl.insert("max_backoff".into(), Datum::from(1000i64));
    let mut br = Row::new();
    br.insert("controller".into(), Datum::named_uuid("ovsnet_ctl"));
    br.insert("fail_mode".into(), Datum::from("secure"));
    vec![
        Operation::insert("Controller", ctl).uuid_name("ovsnet_ctl"),
        Operation::update("Bridge", vec![Condition::eq("name", bridge)], br),
        Operation::comment(&format!("ovsnet agent: controller of {bridge} is {target}")),
    ]
}

/// Points the bridge's controller at `target` with `fail_mode=secure`
/// (one transaction; nothing is written when it already is so).
pub async fn set_controller(client: &Client, bridge: &str, target: &str) -> Result<(), VswitchError> {
    let found = client.transact(DB, read_ops(bridge)).await?;
    let Some((current, secure)) = bridge_controllers(&found) else {
        return Err(VswitchError::NotFound(format!("bridge {bridge}")));
    };
    if secure && current.len() == 1 {
        let t = client.transact(DB, target_ops(current[0])).await?;
        if is_set(&t, target) {
            return Ok(());
        }
    }
    client.transact(DB, set_ops(bridge, target)).await?;
    Ok(())
}
