//! The Docker network and IPAM driver against a real private `dockerd`:
//! the agent serves the plugin socket, the engine (in the switch's
//! namespace, with a plugin directory of its own) discovers it, and
//! `docker network create -d ovsnet`, `docker run --network`, `docker rm`
//! and `docker network rm` work on this host's own database with flows
//! the agent programs.

#![allow(clippy::unwrap_used)]

mod common;
mod common_agent;
mod common_attach;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::wait_for;
use common_agent::Lab;
use ovsnet::sandbox::docker::{DockerEngine, DockerOptions, MINI_IMAGE};

struct Host {
    lab: Lab,
    tmp: tempfile::TempDir,
}

impl Host {
    fn new() -> Option<Host> {
        if let Err(e) = ovsnet::sandbox::docker::docker_installed() {
            assert!(!common::strict(), "CI=true and Docker is missing: {e}");
            eprintln!("skipping: {e}");
            return None;
        }
        let lab = Lab::new()?;
        // Short: the plugin socket's path must fit in sockaddr_un.
        let tmp = tempfile::Builder::new().prefix("ovsnet-dd").tempdir_in("/tmp").unwrap();
        std::fs::write(tmp.path().join("ovsnet.conf"), "").unwrap();
        Some(Host { lab, tmp })
    }

    fn plugins(&self) -> PathBuf {
        self.tmp.path().join("plugins")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ovsnet"));
        common::without_ovsnet_env(&mut cmd);
        cmd.args(args)
            .env("OVSNET_CONFIG", self.tmp.path().join("ovsnet.conf"))
            .env("OVSNET_DB_DIR", self.tmp.path().join("db"))
            .env("OVSNET_DB", self.lab.sbx.db_remote())
            .env("OVSNET_HOST_NAME", "h1")
            .env("OVSNET_UNDERLAY_IP", "172.30.0.1")
            .env("OVS_RUNDIR", self.lab.sbx.dir());
        cmd
    }

    /// `ovsnet ARGS` in the switch's namespace, with this engine.
    fn ok_in_switch(&self, engine: &DockerEngine, args: &[&str]) -> String {
        let mut cmd = self.command(args);
        cmd.env("DOCKER_HOST", engine.host());
        let ns = ovsnet::netns::open(self.lab.sbx.netns()).unwrap();
        ovsnet::netns::command_in(&mut cmd, &ns);
        let out = cmd.stdin(Stdio::null()).output().unwrap();
        assert!(out.status.success(), "ovsnet {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap();
        assert!(out.status.success(), "ovsnet {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// This host's database and a private engine in the switch's
    /// namespace whose plugin directory is the test's, with the image.
    fn start_engine(&self) -> DockerEngine {
        self.ok(&["cluster", "start"]);
        let engine = DockerEngine::start_with(&DockerOptions {
            netns: Some(self.lab.sbx.netns().to_owned()),
            plugins: Some(self.plugins()),
            dir: None,
            bridge_nat: false,
        })
        .unwrap();
        engine.import_mini_image().unwrap();
        engine
    }

    /// The agent with the plugin, in the switch's namespace (where the
    /// engine runs and the veths are made).
    fn agent(&self, engine: &DockerEngine) -> KillOnDrop {
        let sock = self.plugins().join("ovsnet.sock");
        let mut cmd = self.command(&["agent", "--quiet", "--docker-plugin", &sock.display().to_string()]);
        cmd.env("DOCKER_HOST", engine.host());
        let ns = ovsnet::netns::open(self.lab.sbx.netns()).unwrap();
        ovsnet::netns::command_in(&mut cmd, &ns);
        let child = cmd.stdin(Stdio::null()).spawn().unwrap();
        drop(ns);
        wait_for(30, "the plugin socket", || UnixStream::connect(&sock).is_ok());
        KillOnDrop(child)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = ovsnet::cluster::server::stop(&self.tmp.path().join("db"));
    }
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One raw HTTP/1.0 POST to the plugin socket: (status line, body).
fn post(sock: &Path, path: &str, body: &str) -> (String, String) {
    let mut s = UnixStream::connect(sock).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.0\r\nHost: plugin\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.lines().next().unwrap_or_default().to_owned();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

fn docker(engine: &DockerEngine, args: &[&str]) -> std::process::Output {
    engine.cli().args(args).stdin(Stdio::null()).output().unwrap()
}

fn docker_ok(engine: &DockerEngine, args: &[&str]) -> String {
    let out = docker(engine, args);
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The bridge's ports that hold an endpoint (the driver's and attach's);
/// spare ports, plugged ahead of need, hold none.
fn endpoint_ports(host: &Host) -> Vec<String> {
    let found = common::vsctl(
        &host.lab.sbx,
        &["--bare", "--columns=name", "find", "Interface", "external_ids:ovsnet-bridge=obr0"],
    );
    found.split_whitespace().map(str::to_owned).collect()
}

/// The driver's spare ports.
fn spare_ports(host: &Host) -> Vec<String> {
    let found = common::vsctl(
        &host.lab.sbx,
        &["--bare", "--columns=name", "find", "Interface", "external_ids:ovsnet-spare=true"],
    );
    found.split_whitespace().map(str::to_owned).collect()
}

/// The veth ends in the switch's namespace that no spare port accounts
/// for (a spare is a pair: `ovpX` on the bridge and `ovqX`).
fn veths_beyond_spares(host: &Host) -> Vec<String> {
    let spares = spare_ports(host);
    let links = Command::new("ip").args(["netns", "exec", host.lab.sbx.netns(), "ip", "-o", "link"]).output().unwrap();
    String::from_utf8_lossy(&links.stdout)
        .lines()
        .filter(|l| l.contains("@if") || l.contains("@NONE"))
        .filter_map(|l| l.split(": ").nth(1).map(|n| n.split('@').next().unwrap_or(n).to_owned()))
        .filter(|n| !spares.iter().any(|s| *s == *n || s.replacen("ovp", "ovq", 1) == *n))
        .collect()
}

#[test]
fn docker_network_create_run_rm_on_ovsnet() {
    let Some(host) = Host::new() else { return };
    let mut engine = host.start_engine();
    let mut agent = host.agent(&engine);
    let sock = host.plugins().join("ovsnet.sock");

    // The protocol on the wire: the handshake, 404 for what it does not
    // implement, {"Err": ...} for a malformed body.
    let (status, body) = post(&sock, "/Plugin.Activate", "");
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, r#"{"Implements":["NetworkDriver","IpamDriver"]}"#);
    let (status, body) = post(&sock, "/NetworkDriver.AllocateNetwork", "{}");
    assert!(status.contains("404") && body.contains("\"Err\""), "{status} {body}");
    let (status, body) = post(&sock, "/NetworkDriver.CreateNetwork", "{not json");
    assert!(
        status.starts_with("HTTP/1.")
            && !status.contains("200")
            && body.starts_with(r#"{"Err":"CreateNetwork: malformed JSON"#)
    );
    assert!(!host.ok(&["network", "list"]).contains("docker-"), "a malformed call made nothing");

    docker_ok(
        &engine,
        &[
            "network",
            "create",
            "-d",
            "ovsnet",
            "--ipam-driver",
            "ovsnet",
            "--subnet",
            "10.40.0.0/16",
            "-o",
            "network=blue",
            "blue",
        ],
    );
    let list = host.ok(&["--format", "json", "network", "list"]);
    assert!(list.contains("\"name\":\"blue\"") && list.contains("10.40.0.0/16"), "{list}");

    // A subnet that overlaps it is refused, with the driver's message.
    let out = docker(
        &engine,
        &[
            "network",
            "create",
            "-d",
            "ovsnet",
            "--ipam-driver",
            "ovsnet",
            "--subnet",
            "10.40.7.0/24",
            "-o",
            "network=red",
            "red",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("overlaps ovsnet network blue"), "{err}");

    // An endpoint the engine makes and deletes without a Join (it gave up
    // between the two): the spare claimed for it at CreateEndpoint had
    // its flows installed, and both go with DeleteEndpoint.
    let net_id = docker_ok(&engine, &["network", "inspect", "-f", "{{.Id}}", "blue"]);
    let (status, body) =
        post(&sock, "/IpamDriver.RequestAddress", r#"{"PoolID":"10.40.0.0/16","Address":"10.40.8.8"}"#);
    assert!(status.contains("200") && body.contains("10.40.8.8/16"), "{status} {body}");
    let eid = "e".repeat(64);
    let (status, body) = post(
        &sock,
        "/NetworkDriver.CreateEndpoint",
        &format!(r#"{{"NetworkID":"{net_id}","EndpointID":"{eid}","Interface":{{"Address":"10.40.8.8/16"}}}}"#),
    );
    assert!(status.contains("200") && !body.contains("Err"), "{status} {body}");
    wait_for(10, "flows for an endpoint claimed at CreateEndpoint", || {
        common::ofctl(&host.lab.sbx, "dump-flows", "obr0", &[]).contains("10.40.8.8")
    });
    let (status, body) =
        post(&sock, "/NetworkDriver.DeleteEndpoint", &format!(r#"{{"NetworkID":"{net_id}","EndpointID":"{eid}"}}"#));
    assert!(status.contains("200") && !body.contains("Err"), "{status} {body}");
    wait_for(10, "no flows for the deleted endpoint", || {
        !common::ofctl(&host.lab.sbx, "dump-flows", "obr0", &[]).contains("10.40.8.8")
    });
    let (status, body) =
        post(&sock, "/IpamDriver.ReleaseAddress", r#"{"PoolID":"10.40.0.0/16","Address":"10.40.8.8"}"#);
    assert!(status.contains("200") && !body.contains("Err"), "{status} {body}");
    let ports = endpoint_ports(&host);
    assert!(ports.is_empty(), "ports left by an endpoint that never joined: {ports:?}");
    let veths = veths_beyond_spares(&host);
    assert!(veths.is_empty(), "veths left by an endpoint that never joined: {veths:?}");

    docker_ok(
        &engine,
        &["run", "-d", "--network", "blue", "--network-alias", "api", "--name", "ca", MINI_IMAGE, "sleep", "600"],
    );
    docker_ok(&engine, &["run", "-d", "--network", "blue", "--name", "cb", MINI_IMAGE, "sleep", "600"]);
    // The engine passes neither the container's name nor its aliases to
    // a driver: the agent reads them from the engine and records them.
    wait_for(10, "ca's name and alias in its Endpoint row", || {
        let show: serde_json::Value =
            serde_json::from_str(&host.ok(&["--format", "json", "network", "show", "blue"])).unwrap();
        show["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["external_ids"]["container-name"] == "ca" && e["external_ids"]["aliases"] == "api")
    });
    let ip_a = docker_ok(&engine, &["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "ca"]);
    assert!(ip_a.starts_with("10.40."), "{ip_a}");
    let show = host.ok(&["--format", "json", "network", "show", "blue"]);
    assert!(show.contains(&format!("\"ip\":\"{ip_a}\"")), "{show}");
    // The container's MAC is the one ovsnet derives, as port security wants.
    let mac_a =
        docker_ok(&engine, &["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.MacAddress}}{{end}}", "ca"]);
    let v4: std::net::Ipv4Addr = ip_a.parse().unwrap();
    assert_eq!(mac_a, ovsnet::net::Mac::from_ipv4(v4).to_string());
    // The network's gateway is the container's default route, and every
    // host's flows answer it.
    let routes = docker_ok(&engine, &["exec", "ca", "ip", "route"]);
    assert!(routes.contains("default via 10.40.0.1"), "{routes}");
    let out = docker(&engine, &["exec", "ca", "ping", "-c", "1", "-W", "2", "10.40.0.1"]);
    assert!(out.status.success(), "ca pings its gateway: {}", String::from_utf8_lossy(&out.stdout));
    // Docker's --internal reaches the ovsnet network: no way out.
    docker_ok(
        &engine,
        &[
            "network",
            "create",
            "-d",
            "ovsnet",
            "--ipam-driver",
            "ovsnet",
            "--internal",
            "--subnet",
            "10.47.0.0/24",
            "shut",
        ],
    );
    // The ovsnet network takes the engine's name once the engine has
    // stored it (just after the create returns).
    wait_for(10, "the internal network named shut, with no way out", || {
        let out = host.command(&["network", "show", "shut"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).contains("internal: no way out")
    });
    docker_ok(&engine, &["network", "rm", "shut"]);

    // Join answers once the flows are in: the first packet of a new
    // container already gets through, every time.
    for i in 0..3 {
        let out =
            docker(&engine, &["run", "--rm", "--network", "blue", MINI_IMAGE, "ping", "-c", "1", "-W", "2", &ip_a]);
        assert!(out.status.success(), "first-packet ping {i}: {}", String::from_utf8_lossy(&out.stdout));
    }

    // The driver keeps nothing in memory: an agent killed and started
    // again knows every network and endpoint.
    drop(agent);
    agent = host.agent(&engine);
    docker_ok(&engine, &["restart", "-t", "0", "cb"]);
    let out = docker(&engine, &["exec", "cb", "ping", "-c", "1", "-W", "2", &ip_a]);
    assert!(
        out.status.success(),
        "cb after docker restart and an agent restart: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // An address taken twice: refused with the driver's message, and the
    // refused container leaves no port, veth or row.
    docker_ok(
        &engine,
        &["run", "-d", "--network", "blue", "--ip", "10.40.9.9", "--name", "cfixed", MINI_IMAGE, "sleep", "600"],
    );
    let out = docker(
        &engine,
        &["run", "-d", "--network", "blue", "--ip", "10.40.9.9", "--name", "cdup", MINI_IMAGE, "sleep", "600"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("10.40.9.9 is already in use in network blue"), "{err}");
    let _ = docker(&engine, &["rm", "-f", "cdup"]);
    docker_ok(&engine, &["rm", "-f", "cfixed"]);

    // An engine restart: a container with --restart=always comes back
    // connected, and the ports are exactly those of running containers.
    docker_ok(
        &engine,
        &["run", "-d", "--network", "blue", "--restart=always", "--name", "calways", MINI_IMAGE, "sleep", "600"],
    );
    engine.restart_daemon().unwrap();
    wait_for(30, "calways running again", || {
        docker(&engine, &["inspect", "-f", "{{.State.Running}}", "calways"]).stdout.starts_with(b"true")
    });
    let ip_always =
        docker_ok(&engine, &["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "calways"]);
    let out = docker(&engine, &["exec", "calways", "ping", "-c", "1", "-W", "2", &ip_a]);
    assert!(
        out.status.success(),
        "calways ({ip_always}) after an engine restart: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let running = docker_ok(&engine, &["ps", "-q"]).lines().count();
    let ports = endpoint_ports(&host);
    assert_eq!(ports.len(), running, "ports: {ports:?}");
    docker_ok(&engine, &["rm", "-f", "calways"]);

    // docker rm -f: ports, veths and rows go.
    docker_ok(&engine, &["rm", "-f", "ca", "cb"]);
    wait_for(30, "the endpoints' rows to go", || {
        let show: serde_json::Value =
            serde_json::from_str(&host.ok(&["--format", "json", "network", "show", "blue"])).unwrap();
        show["endpoints"].as_array().is_some_and(|e| e.is_empty())
    });
    let ports = endpoint_ports(&host);
    assert!(ports.is_empty(), "stale ports: {ports:?}");

    docker_ok(&engine, &["network", "rm", "blue"]);
    assert!(!host.ok(&["network", "list"]).contains("blue"), "the last host let go: the network is gone");
    drop(agent);
}

#[test]
fn compose_up_and_down_on_an_ovsnet_network_leave_nothing() {
    let Some(host) = Host::new() else { return };
    if Command::new("docker-compose").arg("version").output().is_err() {
        assert!(!common::strict(), "CI=true and docker-compose is missing");
        eprintln!("skipping: no docker-compose");
        return;
    }
    let engine = host.start_engine();
    let _agent = host.agent(&engine);
    let file = host.tmp.path().join("compose.yml");
    std::fs::write(
        &file,
        "version: \"2.4\"\n\
         services:\n\
         \x20 web: {image: \"mini:latest\", command: sleep 600, networks: [blue]}\n\
         \x20 db: {image: \"mini:latest\", command: sleep 600, networks: [blue]}\n\
         \x20 cache: {image: \"mini:latest\", command: sleep 600, networks: [blue]}\n\
         networks:\n\
         \x20 blue:\n\
         \x20   driver: ovsnet\n\
         \x20   ipam: {driver: ovsnet, config: [{subnet: 10.41.0.0/16}]}\n",
    )
    .unwrap();
    let compose = |args: &[&str]| {
        let out = Command::new("docker-compose")
            .arg("-f")
            .arg(&file)
            .args(["-p", "ovt"])
            .args(args)
            .env("DOCKER_HOST", engine.host())
            .env("DOCKER_CONFIG", engine.dir().join("cli"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "docker-compose {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    compose(&["up", "-d"]);
    wait_for(10, "the ovsnet network ovt_blue", || host.ok(&["network", "list"]).contains("ovt_blue"));
    let ip_db =
        docker_ok(&engine, &["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "ovt_db_1"]);
    assert!(ip_db.starts_with("10.41."), "{ip_db}");
    let out = docker(&engine, &["exec", "ovt_web_1", "ping", "-c", "1", "-W", "2", &ip_db]);
    assert!(out.status.success(), "web to db: {}", String::from_utf8_lossy(&out.stdout));
    let show: serde_json::Value =
        serde_json::from_str(&host.ok(&["--format", "json", "network", "show", "ovt_blue"])).unwrap();
    assert_eq!(show["endpoints"].as_array().map(Vec::len), Some(3), "{show}");

    compose(&["down"]);
    assert!(!host.ok(&["network", "list"]).contains("ovt_blue"), "down removes the network");
    let ports = endpoint_ports(&host);
    assert!(ports.is_empty(), "stale ports: {ports:?}");
    let veths = veths_beyond_spares(&host);
    assert!(veths.is_empty(), "stale veths: {veths:?}");
}

#[test]
fn an_ovs_vswitchd_crash_while_containers_run_heals_and_docker_run_does_not_hang() {
    let Some(mut host) = Host::new() else { return };
    let engine = host.start_engine();
    let _agent = host.agent(&engine);
    docker_ok(
        &engine,
        &["network", "create", "-d", "ovsnet", "--ipam-driver", "ovsnet", "--subnet", "10.42.0.0/16", "blue"],
    );
    for name in ["ca", "cb"] {
        docker_ok(&engine, &["run", "-d", "--network", "blue", "--name", name, MINI_IMAGE, "sleep", "600"]);
    }
    let ip_a = docker_ok(&engine, &["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "ca"]);
    let ping = |from: &str| docker(&engine, &["exec", from, "ping", "-c", "1", "-W", "1", &ip_a]).status.success();
    assert!(ping("cb"));

    // ovs-vswitchd crashes and comes back: the agent programs it again.
    host.lab.sbx.kill_vswitchd();
    host.lab.sbx.start_vswitchd().unwrap();
    wait_for(30, "cb to reach ca again", || ping("cb"));

    // A docker run while the switch is away answers within the driver's
    // bounds (it never hangs), and one after it gets its first packet through.
    host.lab.sbx.kill_vswitchd();
    let t = std::time::Instant::now();
    let _ = docker(&engine, &["run", "-d", "--network", "blue", "--name", "cc", MINI_IMAGE, "sleep", "600"]);
    assert!(t.elapsed() < std::time::Duration::from_secs(30), "docker run took {:?}", t.elapsed());
    let _ = docker(&engine, &["rm", "-f", "cc"]);
    host.lab.sbx.start_vswitchd().unwrap();
    wait_for(30, "cb to reach ca after the second restart", || ping("cb"));
    let out = docker(&engine, &["run", "--rm", "--network", "blue", MINI_IMAGE, "ping", "-c", "1", "-W", "2", &ip_a]);
    assert!(out.status.success(), "first packet after the restarts: {}", String::from_utf8_lossy(&out.stdout));
    docker_ok(&engine, &["rm", "-f", "ca", "cb"]);
    docker_ok(&engine, &["network", "rm", "blue"]);

    // A network made with `ovsnet network create` and joined from Docker
    // stays when Docker lets go of it.
    host.ok(&["network", "create", "green", "--cidr", "10.43.0.0/16", "--ipam", "pool"]);
    docker_ok(
        &engine,
        &[
            "network",
            "create",
            "-d",
            "ovsnet",
            "--ipam-driver",
            "ovsnet",
            "--subnet",
            "10.43.0.0/16",
            "-o",
            "network=green",
            "green",
        ],
    );
    docker_ok(&engine, &["run", "-d", "--network", "green", "--name", "cg", MINI_IMAGE, "sleep", "600"]);
    docker_ok(&engine, &["rm", "-f", "cg"]);
    docker_ok(&engine, &["network", "rm", "green"]);
    assert!(host.ok(&["network", "list"]).contains("green"), "ovsnet's own network stays");
}

#[test]
fn agent_killed_during_20_concurrent_runs_leaves_each_connected_or_cleanly_failed() {
    let Some(host) = Host::new() else { return };
    let engine = host.start_engine();
    let agent = host.agent(&engine);
    docker_ok(
        &engine,
        &["network", "create", "-d", "ovsnet", "--ipam-driver", "ovsnet", "--subnet", "10.44.0.0/16", "blue"],
    );
    docker_ok(&engine, &["run", "-d", "--network", "blue", "--name", "anchor", MINI_IMAGE, "sleep", "600"]);
    let ip_anchor =
        docker_ok(&engine, &["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "anchor"]);

    let runs: Vec<_> = (0..20)
        .map(|i| {
            engine
                .cli()
                .args(["run", "-d", "--network", "blue", "--name", &format!("c{i}"), MINI_IMAGE, "sleep", "600"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    // Killed in the middle of them, and started again.
    std::thread::sleep(std::time::Duration::from_millis(700));
    drop(agent);
    let _agent = host.agent(&engine);
    for mut r in runs {
        let _ = r.wait();
    }

    // Every container either runs connected or is not running; nothing
    // stale: the bridge has exactly the ports of running containers and
    // the database exactly their rows.
    let mut running = Vec::new();
    for i in 0..20 {
        let name = format!("c{i}");
        let up = docker(&engine, &["inspect", "-f", "{{.State.Running}}", &name]).stdout.starts_with(b"true");
        if up {
            let ok = docker(&engine, &["exec", &name, "ping", "-c", "1", "-W", "2", &ip_anchor]).status.success();
            assert!(ok, "{name} runs but is not connected");
            running.push(name);
        }
    }
    wait_for(30, "ports and rows of running containers only", || {
        let n_ports = endpoint_ports(&host).len();
        let show: serde_json::Value =
            serde_json::from_str(&host.ok(&["--format", "json", "network", "show", "blue"])).unwrap();
        let n_rows = show["endpoints"].as_array().map_or(0, Vec::len);
        n_ports == running.len() + 1 && n_rows == running.len() + 1
    });
    eprintln!("{} of 20 ran connected; the rest failed cleanly", running.len());
    let all = docker_ok(&engine, &["ps", "-aq"]);
    let mut rm = engine.cli();
    rm.args(["rm", "-f"]).args(all.lines());
    assert!(rm.output().unwrap().status.success());
    docker_ok(&engine, &["network", "rm", "blue"]);
    let veths = veths_beyond_spares(&host);
    assert!(veths.is_empty(), "stale veths: {veths:?}");
}

#[test]
fn pipework_style_attachments_follow_their_containers_through_docker_events() {
    let Some(host) = Host::new() else { return };
    let engine = host.start_engine();
    let _agent = host.agent(&engine);
    host.ok(&["network", "create", "--cidr", "10.46.0.0/24", "green"]);
    for name in ["web", "peer"] {
        docker_ok(&engine, &["run", "-d", "--net=none", "--name", name, MINI_IMAGE, "sleep", "600"]);
    }
    host.ok_in_switch(
        &engine,
        &["attach", "--network", "green", "--route", "192.168.77.0/24@10.46.0.11", "obr0", "web", "10.46.0.10/24"],
    );
    host.ok_in_switch(&engine, &["attach", "--network", "green", "obr0", "peer", "10.46.0.11/24"]);
    let ping = |from: &str| docker(&engine, &["exec", from, "ping", "-c", "1", "-W", "2", "10.46.0.11"]);
    assert!(ping("web").status.success(), "web to peer: {}", String::from_utf8_lossy(&ping("web").stdout));

    // Docker starts the container again in a new namespace: the agent
    // plugs it again, with its address, and nobody runs ovsnet.
    let port_of = |name: &str| {
        let list: serde_json::Value =
            serde_json::from_str(&host.ok(&["--format", "json", "attachments", "obr0"])).unwrap();
        list.as_array().unwrap().iter().find(|a| a["container_name"] == name).map(|a| a["port"].clone())
    };
    assert!(port_of("web").is_some(), "web's port");
    let route = |name: &str| docker_ok(&engine, &["exec", name, "ip", "route"]);
    assert!(route("web").contains("192.168.77.0/24 via 10.46.0.11"), "{}", route("web"));
    docker_ok(&engine, &["restart", "-t", "0", "web"]);
    wait_for(15, "web plugged again after docker restart", || ping("web").status.success());
    // Its --route came back with it.
    assert!(route("web").contains("192.168.77.0/24 via 10.46.0.11"), "after restart: {}", route("web"));
    docker_ok(&engine, &["stop", "-t", "0", "web"]);
    docker_ok(&engine, &["start", "web"]);
    wait_for(15, "web plugged again after docker stop and start", || ping("web").status.success());
    // The stale port was replaced, not kept beside the new one.
    let ports = endpoint_ports(&host);
    assert_eq!(ports.len(), 2, "{ports:?}");

    // While the agent is away: a restart and a removal are caught up when
    // it comes back.
    drop(_agent);
    docker_ok(&engine, &["run", "-d", "--net=none", "--name", "late", MINI_IMAGE, "sleep", "600"]);
    host.ok_in_switch(&engine, &["attach", "--network", "green", "obr0", "late", "10.46.0.12/24"]);
    docker_ok(&engine, &["restart", "-t", "0", "peer"]);
    docker_ok(&engine, &["rm", "-f", "late"]);
    let _agent = host.agent(&engine);
    wait_for(15, "peer plugged again and late removed", || {
        port_of("late").is_none()
            && docker(&engine, &["exec", "peer", "ping", "-c", "1", "-W", "1", "10.46.0.10"]).status.success()
    });

    // Destroyed: its port, veth and Endpoint row go, without gc.
    docker_ok(&engine, &["rm", "-f", "web"]);
    wait_for(15, "web's port and row to go", || {
        let show: serde_json::Value =
            serde_json::from_str(&host.ok(&["--format", "json", "network", "show", "green"])).unwrap();
        port_of("web").is_none() && show["endpoints"].as_array().map(Vec::len) == Some(1)
    });
    let veths = veths_beyond_spares(&host);
    assert_eq!(veths.len(), 1, "one veth left (peer's): {veths:?}");
    docker_ok(&engine, &["rm", "-f", "peer"]);
    wait_for(15, "peer's row to go", || {
        let show: serde_json::Value =
            serde_json::from_str(&host.ok(&["--format", "json", "network", "show", "green"])).unwrap();
        show["endpoints"].as_array().is_some_and(|e| e.is_empty())
    });
}

#[test]
fn a_host_that_reboots_comes_back_connected_with_nothing_stale() {
    let Some(mut host) = Host::new() else { return };
    let mut engine = host.start_engine();
    let agent = host.agent(&engine);
    docker_ok(
        &engine,
        &["network", "create", "-d", "ovsnet", "--ipam-driver", "ovsnet", "--subnet", "10.47.0.0/16", "blue"],
    );
    for name in ["always1", "always2"] {
        docker_ok(
            &engine,
            &["run", "-d", "--network", "blue", "--restart=always", "--name", name, MINI_IMAGE, "sleep", "600"],
        );
    }
    docker_ok(&engine, &["run", "-d", "--network", "blue", "--name", "once", MINI_IMAGE, "sleep", "600"]);
    host.ok(&["network", "create", "--cidr", "10.48.0.0/24", "green"]);
    docker_ok(&engine, &["run", "-d", "--net=none", "--restart=always", "--name", "piped", MINI_IMAGE, "sleep", "600"]);
    host.ok_in_switch(&engine, &["attach", "--network", "green", "obr0", "piped", "10.48.0.10/24"]);

    // The power goes: the engine, its containers, the agent, the switch
    // and the database all die at once; nobody tells the driver.
    engine.crash();
    drop(agent);
    host.lab.sbx.kill_vswitchd();
    host.ok(&["cluster", "stop"]);
    wait_for(30, "the containers' veths to go with their namespaces", || veths_beyond_spares(&host).is_empty());

    // The boot, in the units' order: the switch, the database, the agent
    // (Before=docker.service), the engine.
    host.lab.sbx.start_vswitchd().unwrap();
    host.ok(&["cluster", "start"]);
    let _agent = host.agent(&engine);
    engine.start_daemon().unwrap();
    let running =
        |name: &str| docker(&engine, &["inspect", "-f", "{{.State.Running}}", name]).stdout.starts_with(b"true");
    wait_for(60, "the --restart=always containers to run again", || {
        ["always1", "always2", "piped"].iter().all(|n| running(n))
    });
    assert!(!running("once"), "a container without a restart policy stays stopped");
    let ip_of = |name: &str| {
        docker_ok(&engine, &["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name])
    };
    let ip2 = ip_of("always2");
    let out = docker(&engine, &["exec", "always1", "ping", "-c", "1", "-W", "2", &ip2]);
    assert!(out.status.success(), "always1 to always2 after the reboot: {}", String::from_utf8_lossy(&out.stdout));
    wait_for(15, "piped plugged again with its address", || {
        let out = docker(&engine, &["exec", "piped", "ip", "-o", "addr", "show", "eth1"]);
        String::from_utf8_lossy(&out.stdout).contains("10.48.0.10/24")
    });

    // Nothing stale: the bridge holds the ports of the three running
    // containers, the database their rows, and a new container starts
    // (no "already exists").
    wait_for(30, "exactly the running containers' ports and rows", || {
        let ours = endpoint_ports(&host).len();
        let rows = |net: &str| {
            let show: serde_json::Value =
                serde_json::from_str(&host.ok(&["--format", "json", "network", "show", net])).unwrap();
            show["endpoints"].as_array().map_or(0, Vec::len)
        };
        ours == 3 && rows("blue") == 2 && rows("green") == 1
    });
    let out = docker(&engine, &["run", "--rm", "--network", "blue", MINI_IMAGE, "ping", "-c", "1", "-W", "2", &ip2]);
    assert!(out.status.success(), "a new container after the reboot: {}", String::from_utf8_lossy(&out.stderr));
    docker_ok(&engine, &["rm", "-f", "always1", "always2", "once", "piped"]);
    docker_ok(&engine, &["network", "rm", "blue"]);
}

#[test]
fn mac_address_network_connect_disconnect_and_an_exhausted_pool() {
    let Some(host) = Host::new() else { return };
    let engine = host.start_engine();
    let _agent = host.agent(&engine);
    let create = |subnet: &str, name: &str, extra: &[&str]| {
        let network_opt = format!("network={name}");
        let mut args = vec!["network", "create", "-d", "ovsnet", "--ipam-driver", "ovsnet", "--subnet", subnet];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-o", &network_opt, name]);
        docker_ok(&engine, &args);
    };
    create("10.49.0.0/16", "blue", &[]);
    create("10.50.0.0/29", "tiny", &["-o", "block_prefix=29"]);
    let ip_in = |name: &str, net: &str| {
        docker_ok(
            &engine,
            &["inspect", "-f", &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"), name],
        )
    };

    // --mac-address: the container has it, the database records it, and
    // port security lets it through.
    docker_ok(&engine, &["run", "-d", "--network", "blue", "--name", "anchor", MINI_IMAGE, "sleep", "600"]);
    let ip_anchor = ip_in("anchor", "blue");
    let mac = "02:42:0a:31:00:99";
    // The engine here speaks API 1.41, where the MAC is the container's
    // (`MacAddress`); the newer CLI would ask for it per network.
    let (status, body) = post(
        &engine.socket(),
        "/v1.41/containers/create?name=own_mac",
        &format!(
            r#"{{"Image":"{MINI_IMAGE}","Cmd":["sleep","600"],"MacAddress":"{mac}","HostConfig":{{"NetworkMode":"blue"}}}}"#
        ),
    );
    assert!(status.contains("201"), "create own_mac: {status} {body}");
    docker_ok(&engine, &["start", "own_mac"]);
    let link = docker_ok(&engine, &["exec", "own_mac", "cat", "/sys/class/net/eth0/address"]);
    assert_eq!(link, mac);
    let show = host.ok(&["--format", "json", "network", "show", "blue"]);
    assert!(show.contains(&format!("\"mac\":\"{mac}\"")), "{show}");
    let out = docker(&engine, &["exec", "own_mac", "ping", "-c", "1", "-W", "2", &ip_anchor]);
    assert!(out.status.success(), "own MAC to anchor: {}", String::from_utf8_lossy(&out.stdout));

    // docker network connect and disconnect: a second interface on blue,
    // with its port and row, and then neither.
    docker_ok(&engine, &["run", "-d", "--network", "tiny", "--name", "multi", MINI_IMAGE, "sleep", "600"]);
    let ports_before = endpoint_ports(&host).len();
    docker_ok(&engine, &["network", "connect", "blue", "multi"]);
    let ip_multi = ip_in("multi", "blue");
    assert!(ip_multi.starts_with("10.49."), "{ip_multi}");
    let out = docker(&engine, &["exec", "anchor", "ping", "-c", "1", "-W", "2", &ip_multi]);
    assert!(out.status.success(), "anchor to multi's second interface: {}", String::from_utf8_lossy(&out.stdout));
    docker_ok(&engine, &["network", "disconnect", "blue", "multi"]);
    let ports = endpoint_ports(&host);
    assert_eq!(ports.len(), ports_before, "disconnect removes the port: {ports:?}");
    let show = host.ok(&["--format", "json", "network", "show", "blue"]);
    assert!(!show.contains(&format!("\"ip\":\"{ip_multi}\"")), "disconnect releases the address: {show}");

    // A pool that runs out says so, and the refused container leaves
    // nothing behind.
    let mut started = 1; // multi
    let err = loop {
        let name = format!("t{started}");
        let out = docker(&engine, &["run", "-d", "--network", "tiny", "--name", &name, MINI_IMAGE, "sleep", "600"]);
        if !out.status.success() {
            break String::from_utf8_lossy(&out.stderr).into_owned();
        }
        started += 1;
        assert!(started < 10, "a /29 never ran out");
    };
    assert!(err.contains("no free address left"), "{err}");
    let show: serde_json::Value =
        serde_json::from_str(&host.ok(&["--format", "json", "network", "show", "tiny"])).unwrap();
    assert_eq!(show["endpoints"].as_array().map(Vec::len), Some(started), "{show}");
    let all = docker_ok(&engine, &["ps", "-aq"]);
    let mut rm = engine.cli();
    rm.args(["rm", "-f"]).args(all.lines());
    assert!(rm.output().unwrap().status.success());
    for net in ["blue", "tiny"] {
        docker_ok(&engine, &["network", "rm", net]);
    }
    let ports = endpoint_ports(&host);
    assert!(ports.is_empty(), "stale ports: {ports:?}");
}

/// A named network namespace removed on drop (also when the test fails).
struct NsName(String);

impl Drop for NsName {
    fn drop(&mut self) {
        let _ = ovsnet::netns::delete(&self.0);
    }
}

/// `docker run -p` on an ovsnet network: a client outside the host (a
/// namespace on a link to the switch's) reaches the container through the
/// host's address; another container asking for the same host port gets
/// the driver's error and nothing stays of it; `docker rm` closes the port.
#[test]
fn docker_run_p_publishes_a_port_that_rm_takes_away() {
    let Some(host) = Host::new() else { return };
    let engine = host.start_engine();
    let _agent = host.agent(&engine);
    docker_ok(
        &engine,
        &["network", "create", "-d", "ovsnet", "--ipam-driver", "ovsnet", "--subnet", "10.43.0.0/16", "pub"],
    );

    // The outside: a namespace on a link to the host's (the switch's).
    let outside = NsName(common::unique_name("ddout"));
    ovsnet::netns::create(&outside.0).unwrap();
    let sw = host.lab.sbx.netns().to_owned();
    let link = common::unique_name("up");
    let link = &link[link.len().saturating_sub(12)..];
    for args in [
        vec!["-n", &sw, "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", &outside.0],
        vec!["-n", &sw, "addr", "add", "198.51.100.1/24", "dev", link],
        vec!["-n", &sw, "link", "set", link, "up"],
        vec!["-n", &outside.0, "addr", "add", "198.51.100.2/24", "dev", "eth0"],
        vec!["-n", &outside.0, "link", "set", "eth0", "up"],
        vec!["-n", &outside.0, "link", "set", "lo", "up"],
    ] {
        let out = Command::new("ip").args(&args).output().unwrap();
        assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    docker_ok(
        &engine,
        &["run", "-d", "--name", "web", "--network", "pub", "-p", "8080:80", MINI_IMAGE, "sleep", "3600"],
    );
    let ip: std::net::Ipv4Addr =
        docker_ok(&engine, &["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "web"])
            .parse()
            .unwrap();
    let pid = docker_ok(&engine, &["inspect", "-f", "{{.State.Pid}}", "web"]);
    let web = NsName(common::unique_name("ddweb"));
    let out = Command::new("ip").args(["netns", "attach", &web.0, &pid]).output().unwrap();
    assert!(out.status.success(), "ip netns attach: {}", String::from_utf8_lossy(&out.stderr));
    let service = common::tcp_echo_server(&web.0, std::net::SocketAddrV4::new(ip, 80));
    let published: std::net::SocketAddrV4 = "198.51.100.1:8080".parse().unwrap();
    let t = std::time::Duration::from_secs(1);
    let mut conn = None;
    let start = std::time::Instant::now();
    while conn.is_none() && start.elapsed() < std::time::Duration::from_secs(15) {
        conn = common::connect_from(&outside.0, published, t).ok();
    }
    let Some(mut conn) = conn else {
        let run = |args: &[&str]| {
            let out = Command::new("ip").args(["netns", "exec", &sw]).args(args).output().unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        panic!(
            "the outside did not reach the published port\n{}\n{}\n{}\n{}",
            run(&["nft", "list", "ruleset"]),
            run(&["ip", "route"]),
            common::vsctl(
                &host.lab.sbx,
                &["--columns=name,external_ids", "find", "Interface", "external_ids:ovsnet-bridge=obr0"]
            ),
            common::ofctl(&host.lab.sbx, "dump-flows", "obr0", &[]),
        );
    };
    assert!(common::echo(&mut conn, b"docker -p"), "echo through the published port");
    let peer = service.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(peer.ip().to_string(), "198.51.100.2", "the container sees the client");
    let other: std::net::SocketAddrV4 = "198.51.100.1:8081".parse().unwrap();
    assert!(common::connect_from(&outside.0, other, t).is_err(), "an unpublished port was reached");

    // The same host port for another container: the driver's error, and
    // nothing of that container stays on the bridge.
    let ports = endpoint_ports(&host);
    let out = docker(
        &engine,
        &["run", "-d", "--name", "web2", "--network", "pub", "-p", "8080:90", MINI_IMAGE, "sleep", "3600"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("8080:90/tcp is already published"), "{err}");
    wait_for(10, "the refused container's port to go", || endpoint_ports(&host) == ports);
    assert!(common::echo(&mut conn, b"still the first"), "the first keeps its port");

    // Removed: the port closes.
    docker_ok(&engine, &["rm", "-f", "web", "web2"]);
    wait_for(15, "the published port to close", || common::connect_from(&outside.0, published, t).is_err());
}
