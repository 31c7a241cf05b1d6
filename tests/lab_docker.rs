//! `ovsnet lab up --docker`: two simulated hosts, each with its own Open
//! vSwitch, agent and private Docker engine; `docker run --network blue`
//! on h1 and on h2 reach each other over the tunnels, through the
//! agents' drivers and the cluster database. `lab down` leaves no engine,
//! container process or namespace.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};

use ovsnet::lab::LabRecord;
use ovsnet::sandbox::docker::MINI_IMAGE;

fn ovsnet(args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ovsnet"));
    common::without_ovsnet_env(&mut cmd);
    cmd.args(args).stdin(Stdio::null()).output().unwrap()
}

fn docker(host: &str, args: &[&str]) -> std::process::Output {
    Command::new("docker").env("DOCKER_HOST", host).args(args).stdin(Stdio::null()).output().unwrap()
}

fn docker_ok(host: &str, args: &[&str]) -> String {
    let out = docker(host, args);
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Takes the lab down on drop (also when the test fails).
struct Down<'a>(&'a str, &'a str);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = ovsnet(&["lab", "down", "--name", self.0, "--state-dir", self.1]);
    }
}

#[test]
fn lab_up_docker_gives_hosts_whose_containers_reach_each_other() {
    if let Err(e) = ovsnet::sandbox::ovs_installed().and_then(|_| ovsnet::sandbox::docker::docker_installed()) {
        assert!(!common::strict(), "CI=true and a part is missing: {e}");
        eprintln!("skipping: {e}");
        return;
    }
    // Short: each engine's containerd socket lives under the state dir.
    let tmp = tempfile::Builder::new().prefix("ovl").tempdir_in("/tmp").unwrap();
    let state = tmp.path().display().to_string();
    let name = common::unique_name("ld");
    let guard = Down(&name, &state);
    let out = ovsnet(&[
        "--format",
        "json",
        "lab",
        "up",
        "--docker",
        "--hosts",
        "2",
        "--containers",
        "0",
        "--name",
        &name,
        "--state-dir",
        &state,
    ]);
    assert!(out.status.success(), "lab up --docker: {}", String::from_utf8_lossy(&out.stderr));
    let rec: LabRecord = serde_json::from_slice(&out.stdout).unwrap();
    assert!(rec.docker && rec.complete);
    let (h1, h2) = (rec.hosts[0].docker_host(), rec.hosts[1].docker_host());

    // The network is there on both hosts, one ovsnet network in the cluster.
    for h in [&h1, &h2] {
        assert_eq!(docker_ok(h, &["network", "inspect", "-f", "{{.Driver}}", "blue"]), "ovsnet");
    }
    docker_ok(&h1, &["run", "-d", "--network", "blue", "--name", "web", MINI_IMAGE, "sleep", "600"]);
    let ip_web = docker_ok(&h1, &["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "web"]);
    assert!(ip_web.starts_with("192.168."), "{ip_web}");
    // The first packet from a new container on the other host gets through.
    for i in 0..3 {
        let out = docker(&h2, &["run", "--rm", "--network", "blue", MINI_IMAGE, "ping", "-c", "1", "-W", "2", &ip_web]);
        assert!(out.status.success(), "h2 to web on h1, run {i}: {}", String::from_utf8_lossy(&out.stdout));
    }
    docker_ok(&h2, &["run", "-d", "--network", "blue", "--name", "api", MINI_IMAGE, "sleep", "600"]);
    let ip_api = docker_ok(&h2, &["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "api"]);
    assert_ne!(ip_api, ip_web);
    let out = docker(&h1, &["exec", "web", "ping", "-c", "1", "-W", "2", &ip_api]);
    assert!(out.status.success(), "web to api: {}", String::from_utf8_lossy(&out.stdout));
    let status = ovsnet(&["--format", "json", "lab", "status", "--no-ping", "--name", &name, "--state-dir", &state]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let hosts_of: Vec<&str> = status["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ip"] == ip_web.as_str() || e["ip"] == ip_api.as_str())
        .map(|e| e["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts_of.len(), 2, "both endpoints in the cluster database: {status}");

    // Names: the driver's containers ask the network's gateway (`--dns`;
    // the engine's embedded resolver forwards what it does not know to
    // it), so a name on another host's engine resolves, and so does an
    // alias shared by containers on both hosts.
    let cluster_db = rec.cluster_db.clone().unwrap();
    let shown = ovsnet(&["--format", "json", "network", "show", "blue", "--cluster-db", &cluster_db]);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let gw = shown["network"]["gateway"].as_str().expect("the network's gateway").to_owned();
    assert!(gw.starts_with("192.168."), "{gw}");
    docker_ok(
        &h1,
        &[
            "run",
            "-d",
            "--network",
            "blue",
            "--network-alias",
            "cache",
            "--name",
            "c1",
            MINI_IMAGE,
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/etc",
        ],
    );
    docker_ok(
        &h2,
        &[
            "run",
            "-d",
            "--network",
            "blue",
            "--network-alias",
            "cache",
            "--name",
            "c2",
            MINI_IMAGE,
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/etc",
        ],
    );
    let ip_c1 = docker_ok(&h1, &["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "c1"]);
    let ip_c2 = docker_ok(&h2, &["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "c2"]);
    // Through the engine's embedded resolver (127.0.0.11), which answers
    // its own engine's containers and forwards other names to --dns; or
    // asking the gateway itself.
    let resolves_via = |server: Option<&str>, name: &str, want: &[&str]| {
        let mut args = vec!["run", "--rm", "--network", "blue", "--dns", &gw, MINI_IMAGE, "nslookup", name];
        args.extend(server);
        let out = docker(&h2, &args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        want.iter().all(|ip| text.contains(ip))
    };
    let resolves = |name: &str, want: &[&str]| resolves_via(None, name, want);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !resolves("web", &[&ip_web]) {
        assert!(std::time::Instant::now() < deadline, "web (on h1) does not resolve on h2");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    while !resolves_via(Some(&gw), "cache", &[&ip_c1, &ip_c2]) {
        assert!(std::time::Instant::now() < deadline, "the alias does not give both containers");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    // The C library's resolver, as any program in the container uses it.
    let out = docker(
        &h2,
        &["run", "--rm", "--network", "blue", "--dns", &gw, MINI_IMAGE, "ping", "-c", "1", "-W", "2", "web"],
    );
    assert!(out.status.success(), "ping web by name: {}", String::from_utf8_lossy(&out.stdout));

    // A service over the alias: connections spread over both containers.
    let out = ovsnet(&[
        "service",
        "create",
        "cachesvc",
        "--network",
        "blue",
        "--vip",
        "192.168.255.250:80",
        "--backends",
        "cache",
        "--cluster-db",
        &cluster_db,
    ]);
    assert!(out.status.success(), "service create: {}", String::from_utf8_lossy(&out.stderr));
    // Each server answers with its own /etc/hostname (the container's id).
    let id_c1 = docker_ok(&h1, &["inspect", "-f", "{{.Config.Hostname}}", "c1"]);
    let id_c2 = docker_ok(&h2, &["inspect", "-f", "{{.Config.Hostname}}", "c2"]);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let get = "printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 3 192.168.255.250 80";
        let out = docker(&h2, &["exec", "api", "sh", "-c", get]);
        let body = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or("").trim().to_owned();
        if body == id_c1 || body == id_c2 {
            seen.insert(body);
        }
    }
    assert_eq!(seen.len(), 2, "both containers behind the service answered: {seen:?}");
    assert!(resolves("cachesvc", &["192.168.255.250"]), "the service's name gives its address");

    // Down: no engine, containerd, shim or container process is left.
    let engines: Vec<_> = rec.hosts.iter().map(|h| h.docker_dir()).collect();
    drop(guard);
    for dir in engines {
        let left = ovsnet::sandbox::docker::processes_mentioning(&dir);
        assert!(left.is_empty(), "processes of {} left: {left:?}", dir.display());
    }
    assert!(!std::path::Path::new(&state).join(&name).exists(), "the lab's directory is gone");
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&netns.stdout).contains(&name), "no namespace left");
}
