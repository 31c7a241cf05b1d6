//! `ovsnet bridge` and `ovsnet tunnel` against real Open vSwitch: parity
//! with ovs-vsctl, idempotence, conflicts, deletion, and bad input that
//! leaves the database untouched.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

fn ovsnet(sbx: &OvsSandbox, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ovsnet"))
        .arg("--db")
        .arg(sbx.db_remote())
        .arg("--netns")
        .arg(sbx.netns())
        .args(args)
        .output()
        .expect("run ovsnet")
}

fn ok(sbx: &OvsSandbox, args: &[&str]) -> String {
    let out = ovsnet(sbx, args);
    assert!(out.status.success(), "ovsnet {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command that must fail: one line on stderr, non-zero exit.
fn fails(sbx: &OvsSandbox, args: &[&str]) -> String {
    let out = ovsnet(sbx, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "ovsnet {args:?} should fail");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line expected: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// `next_cfg` rises with every write ovs-vsctl or ovsnet makes.
fn next_cfg(sbx: &OvsSandbox) -> String {
    vsctl(sbx, &["get", "Open_vSwitch", ".", "next_cfg"]).trim().to_owned()
}

/// Everything about bridges, ports and interfaces that either tool sets,
/// with references replaced by names, so two databases compare equal.
fn config(sbx: &OvsSandbox) -> Value {
    let list = |table: &str, cols: &str| -> Vec<BTreeMap<String, Value>> {
        let text = vsctl(sbx, &["--format=json", "--data=json", &format!("--columns={cols}"), "list", table]);
        let v: Value = serde_json::from_str(&text).expect("ovs-vsctl json");
        let heads: Vec<String> =
            v["headings"].as_array().unwrap().iter().map(|h| h.as_str().unwrap().to_owned()).collect();
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| heads.iter().cloned().zip(row.as_array().unwrap().iter().cloned()).collect())
            .collect()
    };
    let ifaces = list("Interface", "_uuid,name,type,options,mtu_request");
    let ports = list("Port", "_uuid,name,interfaces");
    let bridges = list("Bridge", "_uuid,name,ports,datapath_type,fail_mode");
    let name_of = |rows: &[BTreeMap<String, Value>], uuid: &Value| -> String {
        rows.iter().find(|r| r["_uuid"] == *uuid).map(|r| r["name"].as_str().unwrap().to_owned()).unwrap_or_default()
    };
    let refs = |rows: &[BTreeMap<String, Value>], v: &Value| -> Vec<String> {
        let mut names: Vec<String> = match v[0].as_str() {
            Some("uuid") => vec![name_of(rows, v)],
            _ => v[1].as_array().unwrap().iter().map(|u| name_of(rows, u)).collect(),
        };
        names.sort();
        names
    };
    let mut out = BTreeMap::new();
    for b in &bridges {
        let mut ports_out = BTreeMap::new();
        for pname in refs(&ports, &b["ports"]) {
            let p = ports.iter().find(|p| p["name"] == pname.as_str()).unwrap();
            let mut ifs = BTreeMap::new();
            for iname in refs(&ifaces, &p["interfaces"]) {
                let i = ifaces.iter().find(|i| i["name"] == iname.as_str()).unwrap();
                ifs.insert(
                    iname,
                    serde_json::json!({
                        "type": i["type"], "options": i["options"], "mtu_request": i["mtu_request"]
                    }),
                );
            }
            ports_out.insert(pname, serde_json::json!(ifs));
        }
        out.insert(
            b["name"].as_str().unwrap().to_owned(),
            serde_json::json!({
                "datapath_type": b["datapath_type"], "fail_mode": b["fail_mode"], "ports": ports_out
            }),
        );
    }
    serde_json::json!(out)
}

/// Every interface has an ofport and no error: ovs-vswitchd took it.
fn assert_switch_accepted(sbx: &OvsSandbox) {
    let text = vsctl(sbx, &["--format=json", "--data=json", "--columns=name,ofport,error", "list", "Interface"]);
    let v: Value = serde_json::from_str(&text).unwrap();
    for row in v["data"].as_array().unwrap() {
        let (name, ofport, error) = (&row[0], &row[1], &row[2]);
        assert!(ofport.as_i64().is_some_and(|n| n > 0), "interface {name} has no ofport: {ofport}");
        assert_eq!(error, &serde_json::json!(["set", []]), "interface {name} has an error");
    }
}

#[test]
fn same_database_as_ovs_vsctl() {
    let (Some(a), Some(b)) = (ovs(), ovs()) else { return };
    vsctl(
        &a,
        &[
            "add-br",
            "obr0",
            "--",
            "set",
            "bridge",
            "obr0",
            "datapath_type=netdev",
            "fail_mode=secure",
            "--",
            "set",
            "interface",
            "obr0",
            "mtu_request=1450",
        ],
    );
    vsctl(
        &a,
        &[
            "add-port",
            "obr0",
            "gre0",
            "--",
            "set",
            "interface",
            "gre0",
            "type=gre",
            "options:remote_ip=192.0.2.2",
            "options:key=5",
        ],
    );
    vsctl(
        &a,
        &[
            "add-port",
            "obr0",
            "vxlan0",
            "--",
            "set",
            "interface",
            "vxlan0",
            "type=vxlan",
            "options:remote_ip=flow",
            "options:key=flow",
            "options:dst_port=4790",
        ],
    );
    vsctl(
        &a,
        &[
            "add-port",
            "obr0",
            "gnv0",
            "--",
            "set",
            "interface",
            "gnv0",
            "type=geneve",
            "options:remote_ip=192.0.2.3",
            "options:local_ip=192.0.2.1",
        ],
    );
    vsctl(&a, &["add-br", "obr1", "--", "set", "bridge", "obr1", "datapath_type=netdev"]);

    ok(&b, &["bridge", "add", "obr0", "--datapath", "netdev", "--fail-mode", "secure", "--mtu", "1450"]);
    ok(&b, &["tunnel", "add", "obr0", "gre0", "--type", "gre", "--remote", "192.0.2.2", "--key", "5"]);
    ok(
        &b,
        &[
            "tunnel",
            "add",
            "obr0",
            "vxlan0",
            "--type",
            "vxlan",
            "--remote",
            "flow",
            "--key",
            "flow",
            "--dst-port",
            "4790",
        ],
    );
    ok(&b, &["tunnel", "add", "obr0", "gnv0", "--type", "geneve", "--remote", "192.0.2.3", "--local", "192.0.2.1"]);
    ok(&b, &["bridge", "add", "obr1", "--datapath", "netdev"]);

    assert_eq!(config(&a), config(&b));
    assert_switch_accepted(&b);

    // Deleting gives the same result too.
    vsctl(&a, &["del-port", "obr0", "gre0"]);
    vsctl(&a, &["del-br", "obr1"]);
    ok(&b, &["tunnel", "del", "obr0", "gre0"]);
    ok(&b, &["bridge", "del", "obr1"]);
    assert_eq!(config(&a), config(&b));
}

#[test]
fn bridge_address_and_listing() {
    let Some(sbx) = ovs() else { return };
    ok(&sbx, &["bridge", "add", "obr0", "--datapath", "netdev", "--cidr", "172.16.42.1/24"]);
    // The address is on the internal interface, in the switch's namespace, and it is up.
    let addr = Command::new("ip")
        .args(["netns", "exec", sbx.netns(), "ip", "-o", "addr", "show", "dev", "obr0"])
        .output()
        .unwrap();
    let addr = String::from_utf8_lossy(&addr.stdout);
    assert!(addr.contains("172.16.42.1/24"), "{addr}");
    let link =
        Command::new("ip").args(["netns", "exec", sbx.netns(), "ip", "-o", "link", "show", "obr0"]).output().unwrap();
    assert!(String::from_utf8_lossy(&link.stdout).contains(",UP"), "obr0 is not up");
    // Again: unchanged, and the address is not an error.
    assert!(ok(&sbx, &["bridge", "add", "obr0", "--cidr", "172.16.42.1/24"]).contains("unchanged"));

    ok(&sbx, &["tunnel", "add", "obr0", "vx0", "--type", "vxlan", "--remote", "flow", "--key", "flow"]);
    assert_eq!(ok(&sbx, &["bridge", "list"]).trim(), "obr0");
    let show = ok(&sbx, &["bridge", "show", "obr0"]);
    assert!(show.contains("Bridge obr0") && show.contains("vx0") && show.contains("remote_ip=flow"), "{show}");
    let json: Value = serde_json::from_str(&ok(&sbx, &["--format", "json", "bridge", "show"])).unwrap();
    assert_eq!(json[0]["name"], "obr0");
    assert_eq!(json[0]["datapath_type"], "netdev");
    let tunnels: Value = serde_json::from_str(&ok(&sbx, &["--format", "json", "tunnel", "list", "obr0"])).unwrap();
    assert_eq!(tunnels.as_array().unwrap().len(), 1);
    assert_eq!(tunnels[0]["type"], "vxlan");
    assert_eq!(tunnels[0]["key"], "flow");
    assert!(tunnels[0]["ofport"].as_i64().unwrap() > 0);
}

#[test]
fn idempotent_and_conflicts_named() {
    let Some(sbx) = ovs() else { return };
    ok(&sbx, &["bridge", "add", "obr0", "--datapath", "netdev", "--fail-mode", "secure"]);
    ok(&sbx, &["tunnel", "add", "obr0", "gre0", "--type", "gre", "--remote", "192.0.2.2"]);
    let before = next_cfg(&sbx);
    let snapshot = config(&sbx);

    // The same again: success, no write at all.
    assert!(
        ok(&sbx, &["bridge", "add", "obr0", "--datapath", "netdev", "--fail-mode", "secure"]).contains("unchanged")
    );
    assert!(
        ok(&sbx, &["tunnel", "add", "obr0", "gre0", "--type", "gre", "--remote", "192.0.2.2"]).contains("unchanged")
    );
    assert_eq!(next_cfg(&sbx), before);

    // Other settings: refused, naming what differs.
    let e = fails(&sbx, &["bridge", "add", "obr0", "--fail-mode", "standalone"]);
    assert!(e.contains("fail_mode is secure, not standalone"), "{e}");
    let e = fails(&sbx, &["bridge", "add", "obr0", "--datapath", "system"]);
    assert!(e.contains("datapath is netdev, not system"), "{e}");
    let e = fails(&sbx, &["tunnel", "add", "obr0", "gre0", "--type", "gre", "--remote", "192.0.2.9"]);
    assert!(e.contains("options:remote_ip is 192.0.2.2, not 192.0.2.9"), "{e}");
    let e = fails(&sbx, &["tunnel", "add", "obr0", "gre0", "--type", "vxlan", "--remote", "192.0.2.2"]);
    assert!(e.contains("type is gre, not vxlan"), "{e}");
    let e = fails(&sbx, &["tunnel", "add", "nobr", "t1", "--type", "gre", "--remote", "192.0.2.2"]);
    assert!(e.contains("bridge nobr does not exist"), "{e}");
    assert_eq!(next_cfg(&sbx), before);
    assert_eq!(config(&sbx), snapshot);

    // Deleting what is absent fails unless --if-exists.
    let e = fails(&sbx, &["bridge", "del", "nobr"]);
    assert!(e.contains("bridge nobr does not exist"), "{e}");
    assert!(ok(&sbx, &["bridge", "del", "nobr", "--if-exists"]).contains("absent"));
    let e = fails(&sbx, &["tunnel", "del", "obr0", "nope"]);
    assert!(e.contains("port nope on bridge obr0 does not exist"), "{e}");
    assert!(ok(&sbx, &["tunnel", "del", "obr0", "nope", "--if-exists"]).contains("absent"));
    let e = fails(&sbx, &["tunnel", "del", "obr0", "obr0"]);
    assert!(e.contains("bridge's own port"), "{e}");
    assert_eq!(next_cfg(&sbx), before);

    ok(&sbx, &["tunnel", "del", "obr0", "gre0"]);
    ok(&sbx, &["bridge", "del", "obr0"]);
    assert_eq!(vsctl(&sbx, &["list-br"]).trim(), "");
}

#[test]
fn bad_input_writes_nothing() {
    let Some(sbx) = ovs() else { return };
    ok(&sbx, &["bridge", "add", "obr0", "--datapath", "netdev"]);
    let before = next_cfg(&sbx);
    let cases: &[(&[&str], &str)] = &[
        (&["bridge", "add", "a234567890123456"], "bad bridge name \"a234567890123456\": 16 bytes, at most 15"),
        (&["bridge", "add", "a/b"], "bad bridge name \"a/b\""),
        (&["bridge", "add", "a b"], "bad bridge name \"a b\""),
        (&["bridge", "add", "obr1", "--cidr", "172.16.42.1/33"], "bad prefix length"),
        (&["bridge", "add", "obr1", "--cidr", "172.16.300.1/24"], "bad address"),
        (&["bridge", "add", "obr1", "--cidr", "172.16.42.1"], "expected IP/PREFIX"),
        (&["bridge", "add", "obr1", "--mtu", "20"], "bad MTU 20"),
        (&["tunnel", "add", "obr0", "t0", "--type", "ipsec", "--remote", "192.0.2.2"], "unknown tunnel type \"ipsec\""),
        (
            &["tunnel", "add", "obr0", "t0", "--type", "vxlan", "--remote", "192.0.2.2", "--key", "16777216"],
            "key 16777216 out of range for vxlan",
        ),
        (
            &["tunnel", "add", "obr0", "t0", "--type", "gre", "--remote", "192.0.2.2", "--key", "4294967296"],
            "out of range for gre",
        ),
        (&["tunnel", "add", "obr0", "t0", "--type", "gre", "--remote", "nowhere"], "bad remote \"nowhere\""),
        (
            &["tunnel", "add", "obr0", "t0", "--type", "gre", "--remote", "192.0.2.2", "--local", "fd00::1"],
            "different address families",
        ),
        (&["tunnel", "add", "obr0", "t0 x", "--type", "gre", "--remote", "192.0.2.2"], "bad port name"),
        (&["tunnel", "add", "obr0", "obr0", "--type", "gre", "--remote", "192.0.2.2"], "port obr0 on obr0"),
    ];
    for (args, expect) in cases {
        let e = fails(&sbx, args);
        assert!(e.contains(expect), "ovsnet {args:?}: expected {expect:?} in {e:?}");
    }
    assert_eq!(next_cfg(&sbx), before);
    assert_eq!(vsctl(&sbx, &["list-br"]).trim(), "obr0");
    assert_eq!(vsctl(&sbx, &["list-ports", "obr0"]).trim(), "");
}

#[test]
fn unreachable_or_wrong_database() {
    let Some(sbx) = ovs() else { return };
    let run = |db: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_ovsnet"))
            .args(["--db", db, "--timeout", "2", "bridge", "add", "obr0"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let e = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(e.trim_end().lines().count(), 1, "{e}");
        e
    };
    let missing = sbx.dir().join("nothing.sock");
    let e = run(&format!("unix:{}", missing.display()));
    assert!(e.contains("cannot connect") && e.contains("nothing.sock"), "{e}");
    let e = run("tcp:127.0.0.1:1");
    assert!(e.contains("cannot connect") && e.contains("127.0.0.1:1"), "{e}");
    let e = run("bogus:thing");
    assert!(e.contains("bad remote"), "{e}");
    // Something that is not an OVSDB server: ovs-vswitchd's control socket.
    let e = run(&format!("unix:{}", sbx.dir().join("ovs-vswitchd.ctl").display()));
    assert!(!e.is_empty());
}

#[test]
fn server_rejection_is_one_line_and_writes_nothing() {
    // A backup server (replicating from an active one that is not there) is
    // read-only: it refuses every write transaction.
    if let Err(e) = ovsnet::sandbox::ovs_installed() {
        assert!(!strict(), "{e}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("conf.db");
    let sock = dir.path().join("db.sock");
    let st =
        Command::new("ovsdb-tool").arg("create").arg(&db).arg(ovsnet::sandbox::SYSTEM_VSWITCH_SCHEMA).status().unwrap();
    assert!(st.success());
    let txn = r#"["Open_vSwitch",{"op":"insert","table":"Open_vSwitch","row":{}}]"#;
    assert!(Command::new("ovsdb-tool").arg("transact").arg(&db).arg(txn).status().unwrap().success());
    let pidfile = dir.path().join("ovsdb.pid");
    let st = Command::new("ovsdb-server")
        .arg(&db)
        .arg(format!("--remote=punix:{}", sock.display()))
        .arg(format!("--sync-from=unix:{}", dir.path().join("no-active.sock").display()))
        .arg(format!("--pidfile={}", pidfile.display()))
        .arg(format!("--unixctl={}", dir.path().join("ovsdb.ctl").display()))
        .arg(format!("--log-file={}", dir.path().join("ovsdb.log").display()))
        .args(["--detach", "--no-chdir"])
        .env("OVS_RUNDIR", dir.path())
        .status()
        .unwrap();
    assert!(st.success());
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    struct Kill(i32);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0), nix::sys::signal::Signal::SIGKILL);
        }
    }
    let _kill = Kill(pid);
    let out = Command::new(env!("CARGO_BIN_EXE_ovsnet"))
        .args([
            "--db",
            &format!("unix:{}", sock.display()),
            "--timeout",
            "5",
            "bridge",
            "add",
            "obr0",
            "--datapath",
            "netdev",
        ])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a read-only server accepted a write");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(e.contains("transaction failed"), "{e}");
    let listed = Command::new("ovs-vsctl")
        .args([&format!("--db=unix:{}", sock.display()), "--no-wait", "list-br"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&listed.stdout).trim(), "");
}
