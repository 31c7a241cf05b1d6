//! The private Open vSwitch used by every other test: it starts, runs a
//! netdev bridge whose ports get ofports, and leaves nothing behind.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn sandbox_runs_a_netdev_bridge_and_cleans_up() {
    let Some(sbx) = ovs() else { return };
    vsctl(&sbx, &["add-br", "obr0", "--", "set", "bridge", "obr0", "datapath_type=netdev"]);
    vsctl(&sbx, &["add-port", "obr0", "p1", "--", "set", "interface", "p1", "type=internal"]);
    wait_for(10, "ofport of p1", || {
        vsctl(&sbx, &["get", "interface", "p1", "ofport"]).trim().parse::<i64>().is_ok_and(|n| n > 0)
    });
    // The switch answers on its management socket in the sandbox directory.
    let flows = ofctl(&sbx, "dump-flows", "obr0", &[]);
    assert!(flows.contains("actions=NORMAL"), "{flows}");

    let dir = sbx.dir().to_owned();
    let ns = sbx.netns().to_owned();
    let pids = [sbx.ovsdb_pid().unwrap(), sbx.vswitchd_pid().unwrap()];
    drop(sbx);
    assert!(!dir.exists(), "sandbox directory left behind");
    assert!(!ovsnet::netns::exists(&ns), "namespace left behind");
    for pid in pids {
        assert!(!ovsnet::sandbox::process_alive(pid), "daemon {pid} still running");
    }
}

#[test]
fn sandboxes_run_side_by_side() {
    let (Some(a), Some(b)) = (ovs(), ovs()) else { return };
    for sbx in [&a, &b] {
        vsctl(sbx, &["add-br", "obr0", "--", "set", "bridge", "obr0", "datapath_type=netdev"]);
    }
    for sbx in [&a, &b] {
        assert!(ofctl(sbx, "dump-flows", "obr0", &[]).contains("actions=NORMAL"));
    }
}
