//! The systemd units in `packaging/systemd/`: the agent unit's `ExecStart`
//! line, run exactly as written against a private switch, says `READY=1`
//! on `NOTIFY_SOCKET` once the switch holds the desired flows and exits 0
//! on SIGTERM; and `systemd-analyze verify` accepts every unit.
//!
//! `OVSNET_UNIT_BINARY` names the binary that stands for `/usr/bin/ovsnet`
//! (default: the one cargo built) and `OVSNET_UNIT_DIR` the directory of
//! the units (default: `packaging/systemd`), so the same tests check an
//! installed package (`scripts/test-deb.sh`).

mod common;
mod common_agent;
mod common_attach;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common_agent::Lab;

const UNIT_BINARY: &str = "/usr/bin/ovsnet";

fn units_dir() -> PathBuf {
    match std::env::var_os("OVSNET_UNIT_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/systemd"),
    }
}

fn binary() -> String {
    std::env::var("OVSNET_UNIT_BINARY")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_ovsnet").to_owned())
}

/// The values of `key=` in the `[section]` of a unit file, in order.
fn unit_values(text: &str, section: &str, key: &str) -> Vec<String> {
    let mut in_section = false;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_section = line == format!("[{section}]");
        } else if in_section
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            out.push(v.trim().to_owned());
        }
    }
    out
}

fn agent_unit() -> String {
    std::fs::read_to_string(units_dir().join("ovsnet-agent.service")).expect("read ovsnet-agent.service")
}

/// The agent unit's `ExecStart`, split into words, with `/usr/bin/ovsnet`
/// replaced by the binary under test.
fn exec_start() -> Vec<String> {
    let lines = unit_values(&agent_unit(), "Service", "ExecStart");
    assert_eq!(lines.len(), 1, "one ExecStart line: {lines:?}");
    let line = &lines[0];
    // Split on spaces is exactly what systemd does for a line without
    // quotes, specifiers, variables or prefixes: refuse anything else.
    assert!(!line.contains(['"', '\'', '%', '$', '\\']), "ExecStart needs a real parser: {line}");
    let mut words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
    assert_eq!(words[0], UNIT_BINARY, "ExecStart runs {UNIT_BINARY}: {line}");
    words[0] = binary();
    words
}

/// A child process, killed (by its pid) if the test ends before it does.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn agent_unit_orders_and_restarts() {
    let text = agent_unit();
    let one = |s: &str, k: &str| unit_values(&text, s, k).join(" ");
    assert_eq!(one("Service", "Type"), "notify");
    assert_eq!(one("Service", "Restart"), "always");
    assert_eq!(one("Unit", "After"), "openvswitch-switch.service ovsnet-db.service");
    assert_eq!(one("Unit", "BindsTo"), "openvswitch-switch.service");
    assert_eq!(one("Unit", "Wants"), "ovsnet-db.service");
    assert_eq!(one("Unit", "Before"), "docker.service");
    assert_eq!(one("Install", "WantedBy"), "multi-user.target");
}

#[test]
fn agent_unit_exec_start_says_ready_when_flows_are_installed() {
    let Some(lab) = Lab::new() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    // A configuration file of the test's own: the host's does not steer
    // the test. It puts this host's database in the test's directory and
    // names the underlay address (the machine's default route is not the
    // test's to depend on).
    let db_dir = tmp.path().join("db");
    let config = tmp.path().join("ovsnet.conf");
    std::fs::write(&config, format!("db_dir = \"{}\"\nunderlay_ip = \"172.30.0.1\"\n", db_dir.display()))
        .expect("write config");
    // First the database unit, as systemd orders them: a new host's
    // standalone database.
    let _stop = StopMembers(db_dir.clone());
    let mut db_start = db_unit_line("ExecStart", &db_dir);
    db_start.splice(1..1, ["--config".to_owned(), config.display().to_string()]);
    run_words(&db_start);
    let sock_path = tmp.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind NOTIFY_SOCKET");
    sock.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");

    let words = exec_start();
    let mut cmd = Command::new(&words[0]);
    cmd.args(&words[1..]);
    common::without_ovsnet_env(&mut cmd);
    // What the unit's environment gives it, pointed at the private switch:
    // with OVS_RUNDIR set, the default database is `$OVS_RUNDIR/db.sock`
    // and the default controller socket `$OVS_RUNDIR/ovsnet-obr0.sock`.
    let mut agent = KillOnDrop(
        cmd.env("OVS_RUNDIR", lab.sbx.dir())
            .env("OVSNET_CONFIG", &config)
            .env("NOTIFY_SOCKET", &sock_path)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn the ExecStart line"),
    );
    let agent = &mut agent.0;

    let mut messages = Vec::new();
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while !messages.iter().any(|m: &String| m.lines().any(|l| l == "READY=1")) {
        if let Some(status) = agent.try_wait().expect("wait") {
            panic!("the agent exited before READY=1: {status}; messages: {messages:?}");
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no READY=1 within 30s; messages: {messages:?}");
        if let Ok(n) = sock.recv(&mut buf) {
            messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    // READY means the switch holds the desired flows: they are there now.
    let installed = lab.agent_flow_count();
    assert!(installed > 0, "READY=1 with no agent flows in the switch:\n{}", lab.dump_flows());
    // With nothing configured but the file, the agent registered this
    // host in the host's own database.
    let out = Command::new(binary())
        .args(["--config", &config.display().to_string(), "host", "list"])
        .env_remove("OVSNET_CLUSTER_DB")
        .output()
        .expect("host list");
    let hosts = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && hosts.contains("172.30.0.1"),
        "host list: {hosts}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ready = messages.iter().filter(|m| m.lines().any(|l| l == "READY=1")).count();
    assert_eq!(ready, 1, "READY=1 once: {messages:?}");

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(agent.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .expect("SIGTERM");
    let status = agent.wait().expect("wait agent");
    assert!(status.success(), "exit after SIGTERM: {status}");
    while let Ok(n) = sock.recv(&mut buf) {
        messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(messages.iter().any(|m| m.lines().any(|l| l == "STOPPING=1")), "STOPPING=1 on SIGTERM: {messages:?}");
    assert_eq!(
        messages.iter().filter(|m| m.lines().any(|l| l == "READY=1")).count(),
        1,
        "READY=1 only once: {messages:?}"
    );
}

#[test]
fn units_pass_systemd_analyze_verify() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        assert!(!common::strict(), "CI=true and systemd-analyze is missing");
        eprintln!("skipping: no systemd-analyze");
        return;
    }
    // verify wants every command to exist: copies that name the binary
    // under test. Manual pages are checked once the package installs them.
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut units = Vec::new();
    for e in std::fs::read_dir(units_dir()).expect("read packaging/systemd") {
        let path = e.expect("entry").path();
        let ours = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("ovsnet"));
        if ours && path.extension().is_some_and(|x| x == "service") {
            let text = std::fs::read_to_string(&path).expect("read unit");
            let copy = tmp.path().join(path.file_name().expect("name"));
            std::fs::write(&copy, text.replace(UNIT_BINARY, &binary())).expect("write unit");
            units.push(copy);
        }
    }
    units.sort();
    assert!(units.len() >= 2, "the agent and database units: {units:?}");
    let out = Command::new("systemd-analyze").args(["verify", "--man=no"]).args(&units).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify {units:?}:\n{stderr}");
}

/// The database unit's `key=` line in `[Service]`, its default directory
/// `/var/lib/ovsnet/db` replaced by `dir`, split into words. The commands
/// take the directory from `OVSNET_DB_DIR` (as a host would from db_dir).
fn db_unit_line(key: &str, dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(units_dir().join("ovsnet-db.service")).expect("read ovsnet-db.service");
    let lines = unit_values(&text, "Service", key);
    assert_eq!(lines.len(), 1, "one {key} line: {lines:?}");
    let line = lines[0].replace(ovsnet::cluster::server::DEFAULT_DIR, &dir.display().to_string());
    assert!(!line.contains(['"', '\'', '%', '$', '\\']), "{key} needs a real parser: {line}");
    let mut words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
    if words[0] == UNIT_BINARY {
        words[0] = binary();
    }
    words
}

fn run_words<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(words: &[S]) {
    let out = Command::new(&words[0]).args(&words[1..]).output().expect("run");
    assert!(out.status.success(), "{words:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Stops whatever member still runs in the directory, on every exit.
struct StopMembers(PathBuf);

impl Drop for StopMembers {
    fn drop(&mut self) {
        let _ = ovsnet::cluster::server::stop(&self.0);
    }
}

#[test]
fn db_unit_serves_a_new_standalone_database_and_the_same_one_again() {
    if let Err(e) = ovsnet::sandbox::ovs_installed() {
        assert!(!common::strict(), "CI=true and Open vSwitch is missing: {e}");
        eprintln!("skipping: {e}");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    let config = tmp.path().join("ovsnet.conf");
    std::fs::write(&config, format!("db_dir = \"{}\"\n", dir.display())).expect("write config");
    let _stop = StopMembers(dir.clone());
    let with_config = |mut words: Vec<String>| {
        words.splice(1..1, ["--config".to_owned(), config.display().to_string()]);
        words
    };
    let pid_of = || -> i32 {
        let pidfile = db_unit_line("PIDFile", &dir).join(" ");
        let pid = std::fs::read_to_string(&pidfile).expect("PIDFile").trim().parse().expect("pid");
        assert!(ovsnet::cluster::server::owned_process(pid, &dir), "PIDFile {pidfile} names member 1 ({pid})");
        pid
    };
    // Type=forking: ExecStart returns once the server runs, and PIDFile
    // then names it. On a new host it makes the database first.
    assert!(!dir.exists());
    run_words(&with_config(db_unit_line("ExecStart", &dir)));
    let pid = pid_of();
    let bin = binary();
    let cfg = config.display().to_string();
    run_words(&[&bin, "--config", &cfg, "network", "create", "blue", "--cidr", "10.40.0.0/16"]);
    run_words(&with_config(db_unit_line("ExecStop", &dir)));
    common::wait_for(10, "the server to stop", || !ovsnet::cluster::server::owned_process(pid, &dir));

    // Started again (a reboot): the same database, its network kept.
    run_words(&with_config(db_unit_line("ExecStart", &dir)));
    let again = pid_of();
    assert_ne!(again, pid);
    let out = Command::new(&bin).args(["--config", &cfg, "network", "list"]).output().expect("network list");
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && list.contains("blue"), "network list after a restart: {list}");
    run_words(&with_config(db_unit_line("ExecStop", &dir)));
    common::wait_for(10, "the server to stop", || !ovsnet::cluster::server::owned_process(again, &dir));
}
