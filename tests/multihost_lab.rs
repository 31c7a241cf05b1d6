//! The lab in agent mode against real Open vSwitch: 3 hosts, each with
//! its own OVS whose `obr0` (fail_mode=secure) is programmed by an
//! `ovsnet agent` following the cluster database; containers on every
//! host reach each other over flow-based VXLAN, GRE and Geneve ports.

#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use ovsnet::lab::{self, LabOptions, LabRecord, probe};
use ovsnet::vswitch::spec::TunnelType;

/// A lab taken down on drop (also when a test panics).
struct Lab {
    rec: Option<LabRecord>,
    root: PathBuf,
    name: String,
    _tmp: tempfile::TempDir,
}

impl Lab {
    fn up(hosts: usize, containers: usize, tunnel: TunnelType) -> Option<Lab> {
        if let Err(e) = ovsnet::sandbox::ovs_installed() {
            assert!(!common::strict(), "CI=true and Open vSwitch is missing: {e}");
            eprintln!("skipping: {e}");
            return None;
        }
        let tmp = tempfile::tempdir().unwrap();
        let name = common::unique_name("mh");
        let opts = LabOptions {
            name: name.clone(),
            hosts,
            containers,
            tunnel,
            cluster_members: if hosts >= 3 { 3 } else { 1 },
            state_root: tmp.path().to_owned(),
            agents: true,
            agent_exe: Some(PathBuf::from(env!("CARGO_BIN_EXE_ovsnet"))),
            docker: false,
            outside: false,
        };
        let mut lab = Lab { rec: None, root: tmp.path().to_owned(), name, _tmp: tmp };
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        lab.rec = Some(rt.block_on(lab::up(&opts)).expect("lab up"));
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

fn agent_log(rec: &LabRecord) -> String {
    rec.hosts
        .iter()
        .map(|h| format!("--- {}\n{}", h.name, std::fs::read_to_string(h.dir.join("agent.log")).unwrap_or_default()))
        .collect()
}

fn check_all_pairs(lab: &Lab, tcp: bool) {
    let rec = lab.rec();
    let m = lab::reachability(rec, Duration::from_secs(5)).unwrap();
    assert!(m.all_reachable(), "unreachable pairs: {:?}\n{}", m.unreachable_pairs(), agent_log(rec));
    if !tcp {
        return;
    }
    for (i, a) in rec.containers.iter().enumerate() {
        for b in rec.containers.iter().filter(|b| b.host != a.host) {
            let src = ovsnet::netns::open(&a.netns).unwrap();
            let dst = ovsnet::netns::open(&b.netns).unwrap();
            let payload: Vec<u8> = (0..200_000u32).map(|x| (x % 251) as u8).collect();
            let ok = probe::tcp_echo(&src, &dst, b.ip, 5100 + i as u16, &payload, Duration::from_secs(10)).unwrap();
            assert!(ok, "TCP {} -> {} ({})", a.name, b.name, b.ip);
        }
    }
}

#[test]
fn agents_three_hosts_over_vxlan_ping_and_tcp_all_pairs() {
    let Some(lab) = Lab::up(3, 2, TunnelType::Vxlan) else { return };
    let rec = lab.rec();
    assert!(rec.agents);
    assert!(rec.hosts.iter().all(|h| lab::agent_pid(&h.dir).is_some()), "{}", agent_log(rec));
    check_all_pairs(&lab, true);
}

#[test]
fn agents_three_hosts_over_gre_ping_and_tcp_all_pairs() {
    let Some(lab) = Lab::up(3, 1, TunnelType::Gre) else { return };
    check_all_pairs(&lab, true);
}

#[test]
fn agents_three_hosts_over_geneve_ping() {
    let Some(lab) = Lab::up(3, 1, TunnelType::Geneve) else { return };
    check_all_pairs(&lab, false);
}

#[test]
fn down_stops_the_agents() {
    let Some(mut lab) = Lab::up(2, 1, TunnelType::Vxlan) else { return };
    let pids: Vec<i32> = lab.rec().hosts.iter().map(|h| lab::agent_pid(&h.dir).unwrap()).collect();
    let report = lab::down(&lab.root, &lab.name).unwrap();
    lab.rec = None;
    // 2 hosts x (ovsdb-server, ovs-vswitchd, agent) + 1 cluster member.
    assert_eq!(report.processes, 7, "{report:?}");
    assert!(pids.iter().all(|&p| !ovsnet::sandbox::process_alive(p)), "agents left running");
}

#[test]
fn a_killed_agent_leaves_its_containers_connected() {
    let Some(lab) = Lab::up(2, 1, TunnelType::Vxlan) else { return };
    let rec = lab.rec();
    let h1 = &rec.hosts[0];
    let pid = lab::agent_pid(&h1.dir).unwrap();
    ovsnet::process::kill_pid(pid);
    assert!(!ovsnet::sandbox::process_alive(pid));
    // fail_mode=secure keeps the flows the agent installed: both ways
    // across the tunnel still work, for ICMP and TCP.
    check_all_pairs(&lab, true);
}
