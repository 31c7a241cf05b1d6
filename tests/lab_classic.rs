//! The lab in its classic mode against real Open vSwitch: 3 hosts, each a
//! namespace with its own OVS, containers on every host reaching each
//! other over VXLAN and GRE (ping and TCP), and `lab down` removing all of
//! it, also after a failure midway, and nothing else.

#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use ovsnet::lab::{self, LabOptions, LabRecord, probe};
use ovsnet::vswitch::spec::TunnelType;

/// A lab that is taken down on drop (also when a test panics).
struct Lab {
    rec: Option<LabRecord>,
    root: PathBuf,
    name: String,
    _tmp: tempfile::TempDir,
}

impl Lab {
    fn up(hosts: usize, containers: usize, tunnel: TunnelType, cluster_members: usize) -> Option<Lab> {
        if let Err(e) = ovsnet::sandbox::ovs_installed() {
            assert!(!common::strict(), "CI=true and Open vSwitch is missing: {e}");
            eprintln!("skipping: {e}");
            return None;
        }
        let tmp = tempfile::tempdir().unwrap();
        let name = common::unique_name("lt");
        let opts = LabOptions {
            name: name.clone(),
            hosts,
            containers,
            tunnel,
            cluster_members,
            state_root: tmp.path().to_owned(),
            ..Default::default()
        };
        let mut lab = Lab { rec: None, root: tmp.path().to_owned(), name, _tmp: tmp };
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let mut steps = Vec::new();
        lab.rec = Some(rt.block_on(lab::up_with_progress(&opts, |s| steps.push(s.to_owned()))).expect("lab up"));
        // Each step was told before it was made, in order.
        let at =
            |what: &str| steps.iter().position(|s| s.contains(what)).unwrap_or_else(|| panic!("{what}: {steps:?}"));
        assert!(at("h1: namespace") < at("tunnels") && at("tunnels") < at("container(s)"), "{steps:?}");
        assert!(steps.iter().filter(|s| s.contains("container(s)")).count() == hosts, "{steps:?}");
        Some(lab)
    }

    fn rec(&self) -> &LabRecord {
        self.rec.as_ref().unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = lab::down(&self.root, &self.name);
    }
}

fn lab_namespaces(prefix: &str) -> Vec<String> {
    ovsnet::netns::list().into_iter().filter(|n| n.starts_with(&format!("{prefix}-"))).collect()
}

/// What each host's switch knows (MAC table, tunnel neighbours, routes),
/// for the message of a failed reachability check.
fn switch_state(rec: &LabRecord) -> String {
    let mut out = String::new();
    for h in &rec.hosts {
        let ctl = h.dir.join("ovs-vswitchd.ctl");
        for args in [&["fdb/show", "obr0"][..], &["tnl/neigh/show"], &["ovs/route/show"]] {
            let o = std::process::Command::new("ovs-appctl").arg("-t").arg(&ctl).args(args).output();
            let text = match o {
                Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
                Err(e) => e.to_string(),
            };
            out += &format!("--- {} {}\n{text}", h.name, args.join(" "));
        }
    }
    out
}

/// Every tunnel port of every host is protected (split horizon), as the
/// switch's own database says.
fn assert_tunnels_protected(rec: &LabRecord, tunnel: &str) {
    for h in &rec.hosts {
        for other in rec.hosts.iter().filter(|o| o.name != h.name) {
            let port = format!("{tunnel}-{}", other.name);
            let o = std::process::Command::new("ovs-vsctl")
                .arg(format!("--db=unix:{}", h.dir.join("db.sock").display()))
                .args(["get", "Port", &port, "protected"])
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "true", "{}: {port}", h.name);
        }
    }
}

fn check_all_pairs(lab: &Lab) {
    let rec = lab.rec();
    let m = lab::reachability(rec, Duration::from_secs(5)).unwrap();
    assert!(m.all_reachable(), "unreachable pairs: {:?}\n{}", m.unreachable_pairs(), switch_state(rec));
    // TCP between containers on different hosts, each ordered pair of hosts.
    for (i, a) in rec.containers.iter().enumerate() {
        for b in rec.containers.iter().filter(|b| b.host != a.host) {
            let src = ovsnet::netns::open(&a.netns).unwrap();
            let dst = ovsnet::netns::open(&b.netns).unwrap();
            let payload: Vec<u8> = (0..200_000u32).map(|x| (x % 251) as u8).collect();
            let ok = probe::tcp_echo(&src, &dst, b.ip, 5000 + i as u16, &payload, Duration::from_secs(10)).unwrap();
            assert!(ok, "TCP {} -> {} ({})", a.name, b.name, b.ip);
        }
    }
}

#[test]
fn three_hosts_over_vxlan_ping_and_tcp_all_pairs() {
    let Some(lab) = Lab::up(3, 2, TunnelType::Vxlan, 0) else { return };
    let rec = lab.rec();
    assert_eq!(rec.hosts.len(), 3);
    assert_eq!(rec.containers.len(), 6);
    // Names a user can `ip netns exec` into; Fan addresses by host.
    assert!(ovsnet::netns::exists(&format!("{}-h2-c1", lab.name)));
    let c = rec.containers.iter().find(|c| c.name.ends_with("-h3-c2")).unwrap();
    assert_eq!(c.ip.to_string(), "10.0.3.2");
    assert_tunnels_protected(rec, "vxlan");
    check_all_pairs(&lab);
}

#[test]
fn three_hosts_over_gre_ping_and_tcp_all_pairs() {
    let Some(lab) = Lab::up(3, 1, TunnelType::Gre, 0) else { return };
    check_all_pairs(&lab);
}

#[test]
fn three_hosts_over_geneve_ping() {
    let Some(lab) = Lab::up(3, 1, TunnelType::Geneve, 0) else { return };
    let m = lab::reachability(lab.rec(), Duration::from_secs(5)).unwrap();
    assert!(m.all_reachable(), "{:?}\n{}", m.unreachable_pairs(), switch_state(lab.rec()));
}

#[test]
fn down_removes_everything_and_only_that() {
    let Some(mut lab) = Lab::up(2, 2, TunnelType::Vxlan, 0) else { return };
    let name = lab.name.clone();
    let dirs: Vec<PathBuf> = lab.rec().hosts.iter().map(|h| h.dir.clone()).collect();
    let pids: Vec<i32> = dirs
        .iter()
        .flat_map(|d| {
            ["ovsdb-server.pid", "ovs-vswitchd.pid"]
                .map(|p| std::fs::read_to_string(d.join(p)).unwrap().trim().parse().unwrap())
        })
        .collect();
    assert!(pids.iter().all(|&p| ovsnet::sandbox::process_alive(p)));
    // 1 underlay + 2 hosts + 4 containers.
    assert_eq!(lab_namespaces(&name).len(), 7);
    // Someone else's namespace with the lab's prefix is left alone.
    let foreign = format!("{name}-x");
    ovsnet::netns::create(&foreign).unwrap();
    let report = lab::down(&lab.root, &name).unwrap();
    lab.rec = None;
    assert_eq!(report.namespaces.len(), 7);
    assert_eq!(report.processes, 4);
    assert_eq!(lab_namespaces(&name), std::slice::from_ref(&foreign));
    assert!(pids.iter().all(|&p| !ovsnet::sandbox::process_alive(p)), "daemons left running");
    assert!(!lab.root.join(&name).exists());
    ovsnet::netns::delete(&foreign).unwrap();
    assert!(matches!(lab::down(&lab.root, &name), Err(lab::LabError::NotFound { .. })));
}

#[test]
fn a_failed_up_is_cleaned_by_down_without_touching_what_was_there() {
    if ovsnet::sandbox::ovs_installed().is_err() {
        assert!(!common::strict());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let name = common::unique_name("lt");
    // The second host's namespace is taken: up fails there, midway.
    let taken = format!("{name}-h2");
    ovsnet::netns::create(&taken).unwrap();
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = ovsnet::netns::delete(&self.0);
        }
    }
    let _c = Cleanup(taken.clone());
    let opts = LabOptions {
        name: name.clone(),
        hosts: 3,
        containers: 1,
        state_root: tmp.path().to_owned(),
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let err = rt.block_on(lab::up(&opts)).unwrap_err();
    assert!(matches!(err, lab::LabError::NetnsTaken(ref n) if *n == taken), "{err}");
    let rec = LabRecord::load(tmp.path(), &name).unwrap();
    assert!(!rec.complete);
    let h1_dir = rec.hosts[0].dir.clone();
    let h1_vswitchd: i32 = std::fs::read_to_string(h1_dir.join("ovs-vswitchd.pid")).unwrap().trim().parse().unwrap();
    assert!(ovsnet::sandbox::process_alive(h1_vswitchd));
    let report = lab::down(tmp.path(), &name).unwrap();
    assert_eq!(report.namespaces.len(), 2, "{report:?}");
    assert_eq!(lab_namespaces(&name), std::slice::from_ref(&taken), "only the namespace that was there before remains");
    assert!(!ovsnet::sandbox::process_alive(h1_vswitchd));
}

#[test]
fn a_lab_with_a_three_member_cluster_allocates_through_it() {
    let Some(lab) = Lab::up(3, 1, TunnelType::Vxlan, 3) else { return };
    let rec = lab.rec();
    let remotes = rec.cluster_db.clone().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let mut o = ovsnet::ovsdb::ConnectOptions::default();
        o.timeout = Duration::from_secs(20);
        let db = ovsnet::cluster::ClusterDb::connect(&remotes, &o).await.unwrap();
        let state = db.state().await.unwrap();
        assert_eq!(state.hosts.len(), 3);
        let mut eps: Vec<String> = state.endpoints.iter().map(|e| format!("{} {}", e.host, e.ip)).collect();
        eps.sort();
        assert_eq!(eps, ["h1 10.0.1.1", "h2 10.0.2.1", "h3 10.0.3.1"]);
        let st = ovsnet::cluster::server::status(&remotes, &o).await.unwrap();
        assert_eq!(st.iter().filter(|m| m.leader == Some(true)).count(), 1, "{st:?}");
        // Kill one member (not the one serving this client, if it can be
        // told apart; any one will do): allocation keeps working.
        let dir = rec.dir.join("cluster");
        let victim = st.iter().position(|m| m.leader == Some(false)).unwrap() + 1;
        ovsnet::cluster::server::kill_pid(ovsnet::cluster::server::member_pid(&dir, victim).unwrap());
        let e = db.allocate_ip(lab::LAB_NETWORK, "h2", "late", "eth1").await.unwrap();
        assert_eq!(e.ip.to_string(), "10.0.2.2");
    });
    let m = lab::reachability(rec, Duration::from_secs(5)).unwrap();
    assert!(m.all_reachable(), "{:?}\n{}", m.unreachable_pairs(), switch_state(lab.rec()));
}
