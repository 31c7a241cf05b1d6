//! The `ovsnet cluster` and `ovsnet network` commands, and `ovsnet attach
//! --network` with the cluster database, through the binary, against real
//! `ovsdb-server` and Open vSwitch. The cluster runs in a namespace of the
//! test's own (its own loopback: no port collides with parallel tests),
//! and every command runs inside it.

#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::{OvsSandbox, vsctl};

struct Env {
    ns: String,
    dir: PathBuf,
}

impl Env {
    fn new() -> Option<Env> {
        if let Err(e) = ovsnet::sandbox::ovs_installed() {
            assert!(!common::strict(), "CI=true and Open vSwitch is missing: {e}");
            eprintln!("skipping: {e}");
            return None;
        }
        let ns = common::unique_name("ovsnet-ncli-");
        ovsnet::netns::create(&ns).unwrap();
        let env = Env { ns: ns.clone(), dir: std::env::temp_dir().join(common::unique_name("ovsnet-ncli-")) };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async { ovsnet::netlink::Netlink::open_netns(&ns).unwrap().lo_up().await.unwrap() });
        Some(env)
    }

    /// Runs `ovsnet ARGS` inside the test's namespace.
    fn run(&self, args: &[&str]) -> Output {
        let ns = ovsnet::netns::open(&self.ns).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ovsnet"));
        cmd.args(args).env_remove("OVSNET_CLUSTER_DB").env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
        ovsnet::netns::command_in(&mut cmd, &ns);
        cmd.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "ovsnet {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "ovsnet {args:?} should fail: {}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = ovsnet::cluster::server::stop(&self.dir);
        let _ = ovsnet::netns::delete(&self.ns);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const R: &str = "tcp:127.0.0.1:6650";

fn switch() -> OvsSandbox {
    let sbx = common::ovs().unwrap();
    vsctl(&sbx, &["add-br", "obr0", "--", "set", "bridge", "obr0", "datapath_type=netdev"]);
    sbx
}

struct NsGuard(String);
impl Drop for NsGuard {
    fn drop(&mut self) {
        let _ = ovsnet::netns::delete(&self.0);
    }
}

fn container() -> NsGuard {
    let n = common::unique_name("ovsnet-ncli-c");
    ovsnet::netns::create(&n).unwrap();
    NsGuard(n)
}

#[test]
fn cluster_and_network_commands() {
    let Some(env) = Env::new() else { return };
    let dir = env.dir.display().to_string();
    let out = env.ok(&["cluster", "init", "--members", "1", "--dir", &dir]);
    assert!(out.contains(&format!("remotes: {R}")), "{out}");
    // `init` on a standalone database grows it (tests/local_db.rs); a bad
    // member count is refused before anything is touched.
    let err = env.fails(&["cluster", "init", "--members", "2", "--dir", &dir]);
    assert!(err.contains("--members 2"), "{err}");
    assert!(env.fails(&["cluster", "init", "--members", "2", "--dir", "/nonexistent/x"]).contains("--members 2"));

    let out = env.ok(&["network", "create", "blue", "--cidr", "10.20.0.0/16", "--ipam", "pool", "--cluster-db", R]);
    assert_eq!(out.trim(), "created network blue vni 1 10.20.0.0/16 ipam pool");
    let err = env.fails(&["network", "create", "red", "--cidr", "10.21.0.0/16", "--vni", "1", "--cluster-db", R]);
    assert!(err.contains("VNI 1 is already used by network blue"), "{err}");
    let err = env.fails(&["network", "create", "red", "--cidr", "10.21.0.1/16", "--cluster-db", R]);
    assert!(err.contains("host bits"), "{err}");
    env.ok(&[
        "network",
        "create",
        "fan",
        "--cidr",
        "10.0.0.0/8",
        "--ipam",
        "fan",
        "--underlay",
        "172.30.0.0/16",
        "--cluster-db",
        R,
    ]);
    let out = env.ok(&["network", "list", "--cluster-db", R]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[1].starts_with("blue") && lines[1].contains("blocks /24"), "{out}");
    assert!(lines[2].starts_with("fan") && lines[2].contains("underlay 172.30.0.0/16"), "{out}");
    let json = env.ok(&["--format", "json", "network", "list", "--cluster-db", R]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[1]["vni"], 2);

    let out = env.ok(&["cluster", "status", "--dir", &dir]);
    assert!(out.contains("1 of 1 member(s) up and connected"), "{out}");
    assert!(out.contains("standalone"), "{out}");
    env.ok(&["network", "del", "fan", "--cluster-db", R]);
    assert!(env.fails(&["network", "show", "fan", "--cluster-db", R]).contains("no network fan"));
    env.ok(&["network", "del", "fan", "--if-exists", "--cluster-db", R]);
    assert_eq!(env.ok(&["cluster", "stop", "--dir", &dir]).trim(), "stopped 1 member(s)");
}

#[test]
fn attach_allocates_from_the_cluster_and_two_hosts_racing_for_one_ip_leave_one_winner() {
    let Some(env) = Env::new() else { return };
    let dir = env.dir.display().to_string();
    env.ok(&["cluster", "init", "--members", "1", "--dir", &dir]);
    env.ok(&[
        "network",
        "create",
        "blue",
        "--cidr",
        "10.30.0.0/16",
        "--ipam",
        "pool",
        "--block-prefix",
        "26",
        "--cluster-db",
        R,
    ]);
    let (h1, h2) = (switch(), switch());
    let attach = |sbx: &OvsSandbox, host: &str, c: &str, ip: Option<&str>| {
        let c = format!("netns:{c}");
        let mut args = vec![
            "--db",
            sbx.db_remote().leak(),
            "--netns",
            sbx.netns(),
            "attach",
            "obr0",
            c.as_str().to_owned().leak(),
        ];
        if let Some(ip) = ip {
            args.push(ip);
        }
        args.extend(["--network", "blue", "--cluster-db", R, "--host-name", host]);
        env.run(&args.iter().map(|s| &**s).collect::<Vec<_>>())
    };
    // No address given: allocated from each host's block.
    let (c1, c2) = (container(), container());
    let out = attach(&h1, "h1", &c1.0, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    // The gateway, 10.30.0.1, is never handed out.
    assert!(text.contains(" 10.30.0.2/16 ") && text.contains("network blue, host h1"), "{text}");
    let out = attach(&h2, "h2", &c2.0, None);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(" 10.30.0.65/16 "),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let show = env.ok(&["network", "show", "blue", "--cluster-db", R]);
    assert!(show.contains("block 10.30.0.0/26 on h1") && show.contains("block 10.30.0.64/26 on h2"), "{show}");
    assert!(show.contains("2 endpoint(s)"), "{show}");

    // The same address from two hosts at the same moment, several times.
    for round in 0..5 {
        let ip = format!("10.30.5.{}/16", round + 10);
        let (a, b) = (container(), container());
        let (ra, rb) = std::thread::scope(|s| {
            let ta = s.spawn(|| attach(&h1, "h1", &a.0, Some(&ip)));
            let tb = s.spawn(|| attach(&h2, "h2", &b.0, Some(&ip)));
            (ta.join().unwrap(), tb.join().unwrap())
        });
        assert!(ra.status.success() != rb.status.success(), "round {round}: exactly one must win");
        let (loser_out, loser_sw) = if ra.status.success() { (&rb, &h2) } else { (&ra, &h1) };
        let err = String::from_utf8_lossy(&loser_out.stderr);
        assert!(err.contains(&format!("{} is already in use in network blue", &ip[..ip.len() - 3])), "{err}");
        // The loser left no port behind.
        let ports = vsctl(loser_sw, &["list-ports", "obr0"]);
        assert!(
            !ports.lines().any(|p| vsctl(loser_sw, &["get", "port", p, "external_ids:ovsnet-ip"]).contains(&ip)),
            "{ports}"
        );
    }
    let show = env.ok(&["network", "show", "blue", "--cluster-db", R]);
    assert!(show.contains("7 endpoint(s)"), "{show}");
    // A network with endpoints cannot be deleted.
    let err = env.fails(&["network", "del", "blue", "--cluster-db", R]);
    assert!(err.contains("network blue still has 7 endpoint(s)"), "{err}");
}

#[test]
fn detach_and_gc_with_the_cluster_db_remove_this_hosts_endpoint_rows() {
    let Some(env) = Env::new() else { return };
    let dir = env.dir.display().to_string();
    env.ok(&["cluster", "init", "--members", "1", "--dir", &dir]);
    env.ok(&[
        "network",
        "create",
        "blue",
        "--cidr",
        "10.31.0.0/16",
        "--ipam",
        "pool",
        "--block-prefix",
        "24",
        "--cluster-db",
        R,
    ]);
    let (h1, h2) = (switch(), switch());
    let on = |sbx: &OvsSandbox, args: &[&str]| {
        let mut all = vec!["--db".to_owned(), sbx.db_remote(), "--netns".to_owned(), sbx.netns().to_owned()];
        all.extend(args.iter().map(|s| (*s).to_owned()));
        env.run(&all.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let ok = |out: Output| {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let (c1, c2, c3) = (container(), container(), container());
    let cref = |c: &NsGuard| format!("netns:{}", c.0);
    for (sbx, host, c) in [(&h1, "h1", &c1), (&h1, "h1", &c2), (&h2, "h2", &c3)] {
        ok(on(sbx, &["attach", "obr0", &cref(c), "--network", "blue", "--cluster-db", R, "--host-name", host]));
    }
    let show = env.ok(&["network", "show", "blue", "--cluster-db", R]);
    assert!(show.contains("3 endpoint(s)") && show.contains("10.31.0.2 ") && show.contains("10.31.0.3 "), "{show}");

    // detach: the port, then its row; h2's row stays.
    let out = ok(on(&h1, &["detach", "obr0", &cref(&c1), "--cluster-db", R, "--host-name", "h1"]));
    assert!(out.contains("detached") && out.contains("10.31.0.2/16"), "{out}");
    let show = env.ok(&["network", "show", "blue", "--cluster-db", R]);
    assert!(show.contains("2 endpoint(s)") && !show.contains("10.31.0.2 "), "{show}");

    // gc: the container is gone, so are its port and its row.
    drop(c2);
    let out = ok(on(&h1, &["gc", "obr0", "--cluster-db", R, "--host-name", "h1"]));
    assert!(out.contains("removed") && out.contains("10.31.0.3/16"), "{out}");
    let show = env.ok(&["network", "show", "blue", "--cluster-db", R]);
    assert!(show.contains("1 endpoint(s)") && show.contains("on h2"), "{show}");

    // A detach naming another host removes the port but no row of h2's.
    let out = ok(on(&h2, &["detach", "obr0", &cref(&c3), "--cluster-db", R, "--host-name", "h9"]));
    assert!(out.contains("detached"), "{out}");
    let show = env.ok(&["network", "show", "blue", "--cluster-db", R]);
    assert!(show.contains("1 endpoint(s)"), "{show}");
}
