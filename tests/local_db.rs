//! The single-host default and growing it: with no cluster database
//! configured, `cluster start` serves this host's own database (standalone,
//! unix socket only) and every command and the agent find it by
//! themselves; `cluster init` then grows that database, live endpoints and
//! all, into a Raft cluster that two more members join, and nothing is
//! lost: the same networks, blocks and endpoints, and the agent, never
//! restarted, keeps the same flows and programs new containers.
//!
//! Real parts: `ovsdb-server` members, a private Open vSwitch with a
//! netdev `obr0`, namespace containers, the `ovsnet` binary. The cluster's
//! TCP ports live in a namespace of the test's own (its own loopback).

#![allow(clippy::unwrap_used)]

mod common;
mod common_agent;
mod common_attach;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use common::wait_for;
use common_agent::{BR, Lab};
use common_attach::Ns;

/// The commands of one host, with nothing configured but what a host
/// would have: its database directory, its switch, its name and underlay.
struct Host {
    lab: Lab,
    /// Where the cluster's TCP ports live (deleted on drop), and an open
    /// handle on it that every command enters.
    _ns: Ns,
    ns_fd: std::os::fd::OwnedFd,
    tmp: tempfile::TempDir,
}

impl Host {
    fn new() -> Option<Host> {
        let lab = Lab::new()?;
        let ns = Ns::new("ovsnet-ldb-");
        common_attach::rt()
            .block_on(async { ovsnet::netlink::Netlink::open_netns(&ns.0).unwrap().lo_up().await.unwrap() });
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("ovsnet.conf"), "").unwrap();
        let ns_fd = ns.fd();
        Some(Host { lab, _ns: ns, ns_fd, tmp })
    }

    fn db_dir(&self) -> PathBuf {
        self.tmp.path().join("db")
    }

    /// `ovsnet ARGS` as this host runs it, inside the test's namespace.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ovsnet"));
        common::without_ovsnet_env(&mut cmd);
        cmd.args(args)
            .env("OVSNET_CONFIG", self.tmp.path().join("ovsnet.conf"))
            .env("OVSNET_DB_DIR", self.db_dir())
            .env("OVSNET_DB", self.lab.sbx.db_remote())
            .env("OVSNET_HOST_NAME", "h1")
            .env("OVSNET_UNDERLAY_IP", "172.30.0.1")
            .env("OVS_RUNDIR", self.lab.sbx.dir())
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
        ovsnet::netns::command_in(&mut cmd, &self.ns_fd);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "ovsnet {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--format", "json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// Attaches a new namespace container into `network`; returns it.
    fn attach(&self, network: &str, ip: Option<&str>) -> Ns {
        let c = Ns::new("ovsnet-ldbc-");
        let cref = format!("netns:{}", c.0);
        let mut args = vec!["--netns", self.lab.sbx.netns(), "attach", BR, &cref];
        args.extend(ip);
        args.extend(["--network", network]);
        self.ok(&args);
        c
    }

    /// Everything the database holds that a user made: networks with their
    /// endpoints, and the hosts' blocks.
    fn contents(&self) -> serde_json::Value {
        let networks = self.json(&["network", "list"]);
        let mut shown = Vec::new();
        for n in networks.as_array().unwrap() {
            let name = n["name"].as_str().unwrap();
            shown.push(self.json(&["network", "show", name]));
        }
        serde_json::json!({"networks": networks, "shown": shown})
    }

    /// The agent's flows in the switch, without counters and ages.
    fn flows(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .lab
            .dump_flows()
            .lines()
            .filter(|l| l.contains("cookie=0xa5e"))
            .map(|l| {
                l.split(", ")
                    .filter(|f| {
                        !["duration=", "n_packets=", "n_bytes=", "idle_age=", "hard_age="]
                            .iter()
                            .any(|p| f.trim_start().starts_with(p))
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
                    .trim()
                    .to_owned()
            })
            .collect();
        lines.sort();
        lines
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        for d in ["db", "h2", "h3"] {
            let _ = ovsnet::cluster::server::stop(&self.tmp.path().join(d));
        }
    }
}

/// `ovsnet agent` with no flags at all, as the unit runs it; killed on drop.
struct Agent {
    child: Child,
    out: Arc<Mutex<Vec<String>>>,
}

impl Agent {
    fn start(host: &Host) -> Agent {
        let mut child = host.command(&["agent"]).stdin(Stdio::null()).stdout(Stdio::piped()).spawn().unwrap();
        let out = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let o = out.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                o.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        Agent { child, out }
    }

    fn lines(&self) -> Vec<String> {
        self.out.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn still_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ip_of(show: &serde_json::Value, container: &Ns) -> String {
    let eps = show["endpoints"].as_array().unwrap();
    let e =
        eps.iter().find(|e| e["container"].as_str().is_some_and(|c| c.contains(&container.0))).unwrap_or_else(|| {
            panic!("no endpoint of {} in {show}", container.0);
        });
    e["ip"].as_str().unwrap().to_owned()
}

fn has_flow_for(flows: &[String], ip: &str) -> bool {
    flows.iter().any(|f| f.contains(&format!("={ip},")) || f.contains(&format!("={ip} ")) || f.ends_with(ip))
}

#[test]
fn one_host_with_nothing_configured_grows_into_a_three_member_cluster_and_loses_nothing() {
    let Some(host) = Host::new() else { return };

    // Nothing is served yet, and the commands say what to do.
    let err = host.run(&["network", "list"]);
    assert!(!err.status.success());
    let msg = String::from_utf8_lossy(&err.stderr);
    assert!(msg.contains("this host serves none") && msg.contains("ovsnet cluster start"), "{msg}");

    // The single-host default: what ovsnet-db.service runs.
    let out = host.ok(&["cluster", "start"]);
    assert!(out.contains("standalone database") && out.contains("(this host only)"), "{out}");
    let shown = host.ok(&["config", "show"]);
    assert!(shown.contains("this host's standalone database in"), "{shown}");

    host.ok(&["network", "create", "blue", "--cidr", "10.50.0.0/16", "--ipam", "pool", "--block-prefix", "24"]);
    host.ok(&["network", "create", "red", "--cidr", "10.51.0.0/16"]);
    host.ok(&["network", "create", "fan", "--cidr", "10.0.0.0/8", "--ipam", "fan", "--underlay", "172.30.0.0/16"]);

    // The agent, with no flags: the local database, the host name and
    // underlay address from the environment.
    let mut agent = Agent::start(&host);
    wait_for(30, "the agent to register h1", || {
        host.run(&["host", "list"]).stdout.windows(10).any(|w| w == b"172.30.0.1")
    });
    let c1 = host.attach("blue", None);
    let c2 = host.attach("red", Some("10.51.0.7/16"));
    let c3 = host.attach("fan", None);
    let before = host.contents();
    let shown = before["shown"].as_array().unwrap();
    let ips = vec![ip_of(&shown[0], &c1), ip_of(&shown[2], &c2), ip_of(&shown[1], &c3)];
    assert!(ips[0].starts_with("10.50.") && ips[1] == "10.51.0.7" && ips[2].starts_with("10."), "{ips:?}");
    wait_for(30, "the agent to program the three endpoints", || {
        let f = host.flows();
        ips.iter().all(|ip| has_flow_for(&f, ip))
    });
    let flows_before = host.flows();

    // Grow: this host's database becomes member 1 of a Raft cluster, and
    // two more members join it (from directories of their own, standing
    // in for two other hosts).
    let out = host.ok(&["cluster", "init", "--address", "127.0.0.1", "--port-base", "7650"]);
    assert!(out.contains("clustered database") && out.contains("tcp:127.0.0.1:7650"), "{out}");
    assert!(host.db_dir().join(ovsnet::cluster::server::STANDALONE_KEPT).exists(), "the standalone file is kept");
    for (dir, port) in [("h2", "7651"), ("h3", "7652")] {
        let d = host.tmp.path().join(dir).display().to_string();
        let out = host.ok(&[
            "cluster",
            "join",
            "--dir",
            &d,
            "--address",
            "127.0.0.1",
            "--port",
            port,
            "--peer",
            "tcp:127.0.0.1:7750",
        ]);
        assert!(out.contains("clustered database"), "{out}");
    }
    let all = "tcp:127.0.0.1:7650,tcp:127.0.0.1:7651,tcp:127.0.0.1:7652";
    wait_for(30, "three members connected, one leader", || {
        let st = host.json(&["cluster", "status", "--cluster-db", all]);
        let m = st.as_array().unwrap();
        m.len() == 3
            && m.iter().all(|m| m["up"] == true && m["connected"] == true && m["model"] == "clustered")
            && m.iter().filter(|m| m["leader"] == true).count() == 1
    });
    // A second `init` has nothing left to grow.
    let again = host.run(&["cluster", "init", "--address", "127.0.0.1", "--port-base", "7650"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a clustered database"));

    // Nothing lost: the same networks, blocks and endpoints, read through
    // this host's member, and through each other member as its own host
    // reads it (its db_dir, no cluster_db: its local member, a follower).
    assert_eq!(host.contents(), before, "this host's member");
    for dir in ["h2", "h3"] {
        let d = host.tmp.path().join(dir).display().to_string();
        wait_for(10, "the member to catch up", || {
            host.json(&["--db-dir", &d, "network", "list"]) == before["networks"]
        });
    }

    // The agent was never restarted: it reconnected to the same socket,
    // keeps the same flows, and programs what comes next.
    assert!(agent.still_running(), "the agent exited: {:?}", agent.lines());
    assert_eq!(host.flows(), flows_before, "the same flows after growing");
    let c4 = host.attach("blue", None);
    let shown = host.json(&["network", "show", "blue"]);
    let ip4 = ip_of(&shown, &c4);
    assert_ne!(ip4, ips[0], "a new address from the same pool");
    assert!(ip4.starts_with("10.50."), "{ip4}");
    wait_for(30, "the agent to program the new endpoint", || has_flow_for(&host.flows(), &ip4));
    let c4ref = format!("netns:{}", c4.0);
    host.ok(&["--netns", host.lab.sbx.netns(), "detach", BR, &c4ref]);
    wait_for(30, "the agent to remove it again", || host.flows() == flows_before);
    assert_eq!(host.contents(), before);
    drop((c1, c2, c3));
}

#[test]
fn a_joining_host_brings_no_state_of_its_own_and_networks_come_and_go_locally() {
    let Some(host) = Host::new() else { return };
    host.ok(&["cluster", "start"]);
    host.ok(&["network", "create", "blue", "--cidr", "10.52.0.0/16"]);
    let out =
        host.run(&["cluster", "join", "--address", "127.0.0.1", "--port", "7660", "--peer", "tcp:127.0.0.1:7760"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("holds 1 network(s) and 0 endpoint(s)") && err.contains("cluster init"), "{err}");
    // Refused before anything was touched: still standalone, still served.
    let info = ovsnet::cluster::server::ClusterInfo::load(&host.db_dir()).unwrap();
    assert!(info.is_standalone());
    assert!(host.ok(&["network", "list"]).contains("blue"));
    host.ok(&["network", "del", "blue"]);
    assert!(!host.ok(&["network", "list"]).contains("blue"));
    assert!(!Path::new(&host.db_dir().join(ovsnet::cluster::server::STANDALONE_KEPT)).exists());
}
