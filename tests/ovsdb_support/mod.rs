//! A private `ovsdb-server` for the OVSDB client tests: its own temp dir,
//! stopped by pid on drop (also when a test panics). Only `ovsdb-server`,
//! `ovsdb-tool` and `ovs-pki` are used; nothing outside the temp dir is touched.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The schema the project is built against, inside the repository.
pub fn schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ovsdb-schemas/vswitch.ovsschema")
}

/// Whether the OVS tools are here. Without them a test is skipped, except
/// under `CI=true`, where it fails.
pub fn have_ovs() -> bool {
    let ok = ["ovsdb-server", "ovsdb-tool", "ovs-pki"]
        .iter()
        .all(|b| Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()));
    if !ok && std::env::var("CI").as_deref() == Ok("true") {
        panic!("OVS tools (ovsdb-server, ovsdb-tool, ovs-pki) are missing and CI=true");
    }
    if !ok {
        eprintln!("skipping: OVS tools not installed");
    }
    ok
}

/// A free loopback TCP port (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// One `ovsdb-server` process.
pub struct Server {
    pub dir: PathBuf,
    pub name: String,
    pub db: PathBuf,
    /// `--remote` arguments (passive: `punix:`, `ptcp:`, `pssl:`).
    pub listen: Vec<String>,
    pub extra: Vec<String>,
    pid: Option<i32>,
}

impl Server {
    /// Starts a server on `db` (created beforehand) listening on `listen`.
    pub fn start(dir: &Path, name: &str, db: PathBuf, listen: Vec<String>, extra: Vec<String>) -> Server {
        let mut s = Server { dir: dir.to_owned(), name: name.to_owned(), db, listen, extra, pid: None };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let d = &self.dir;
        let n = &self.name;
        let pidfile = d.join(format!("{n}.pid"));
        let mut cmd = Command::new("ovsdb-server");
        cmd.env("OVS_RUNDIR", d)
            .env("OVS_LOGDIR", d)
            .env("OVS_DBDIR", d)
            .arg(&self.db)
            .arg(format!("--pidfile={}", pidfile.display()))
            .arg(format!("--unixctl={}", d.join(format!("{n}.ctl")).display()))
            .arg(format!("--log-file={}", d.join(format!("{n}.log")).display()))
            .arg("--detach")
            .arg("--no-chdir");
        for l in &self.listen {
            cmd.arg(format!("--remote={l}"));
        }
        cmd.args(&self.extra);
        // --detach returns once the server listens; the pidfile is written.
        run(&mut cmd);
        let pid = std::fs::read_to_string(&pidfile).expect("pidfile").trim().parse().expect("pid");
        self.pid = Some(pid);
    }

    pub fn pid(&self) -> Option<i32> {
        self.pid
    }

    /// Stops the server (SIGTERM, then waits for the process to go).
    pub fn stop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let pid = Pid::from_raw(pid);
            let _ = kill(pid, Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while kill(pid, None).is_ok() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if kill(pid, None).is_ok() {
                let _ = kill(pid, Signal::SIGKILL);
            }
        }
    }

    /// Kills the server at once (SIGKILL, no clean shutdown) and waits for
    /// the process to go.
    pub fn kill(&mut self) {
        if let Some(pid) = self.pid.take() {
            let pid = Pid::from_raw(pid);
            let _ = kill(pid, Signal::SIGKILL);
            let deadline = Instant::now() + Duration::from_secs(5);
            while alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// Stops and starts it again on the same database and sockets.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("{}.log", self.name))).unwrap_or_default()
    }
}

/// Whether a process still runs. A detached server that died is reparented
/// and may stay a zombie until its new parent reaps it: that counts as gone.
fn alive(pid: Pid) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses.
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A standalone `Open_vSwitch` database in a temp dir, served on a unix
/// socket and (optionally) loopback TCP.
pub struct Standalone {
    pub server: Server,
    pub tcp_port: Option<u16>,
    // Dropped last: after the server is gone.
    pub tmp: tempfile::TempDir,
}

impl Standalone {
    pub fn start(tcp: bool) -> Standalone {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = tmp.path();
        let db = d.join("conf.db");
        run(Command::new("ovsdb-tool").arg("create").arg(&db).arg(schema_path()));
        let mut listen = vec![format!("punix:{}", d.join("db.sock").display())];
        let tcp_port = tcp.then(free_port);
        if let Some(p) = tcp_port {
            listen.push(format!("ptcp:{p}:127.0.0.1"));
        }
        // Also listen where the database says (Manager rows), as OVS does;
        // tests use that to set the server's inactivity probe.
        listen.push("db:Open_vSwitch,Open_vSwitch,manager_options".into());
        let server = Server::start(d, "ovsdb", db, listen, vec![]);
        Standalone { server, tcp_port, tmp }
    }

    pub fn unix(&self) -> String {
        format!("unix:{}", self.tmp.path().join("db.sock").display())
    }

    pub fn tcp(&self) -> String {
        format!("tcp:127.0.0.1:{}", self.tcp_port.expect("started with tcp"))
    }
}

/// Keys and certificates from `ovs-pki`: one CA that signs the server and
/// the client, and an unrelated second CA.
pub struct Pki {
    pub ca: PathBuf,
    pub other_ca: PathBuf,
    pub server_key: PathBuf,
    pub server_cert: PathBuf,
    pub client_key: PathBuf,
    pub client_cert: PathBuf,
}

impl Pki {
    pub fn create(dir: &Path) -> Pki {
        let pki = dir.join("pki");
        let log = dir.join("pki.log");
        let ovs_pki = |args: &[&str]| {
            let mut c = Command::new("ovs-pki");
            c.current_dir(dir).arg(format!("--dir={}", pki.display())).arg(format!("--log={}", log.display()));
            c.args(args);
            run(&mut c);
        };
        ovs_pki(&["init"]);
        ovs_pki(&["req+sign", "server", "controller"]);
        ovs_pki(&["req+sign", "client", "controller"]);
        Pki {
            ca: pki.join("controllerca/cacert.pem"),
            other_ca: pki.join("switchca/cacert.pem"),
            server_key: dir.join("server-privkey.pem"),
            server_cert: dir.join("server-cert.pem"),
            client_key: dir.join("client-privkey.pem"),
            client_cert: dir.join("client-cert.pem"),
        }
    }
}

/// A 3-member Raft cluster of `Open_vSwitch` on loopback.
pub struct Cluster {
    pub servers: Vec<Server>,
    pub client_ports: Vec<u16>,
    pub tmp: tempfile::TempDir,
}

impl Cluster {
    pub fn start(n: usize) -> Cluster {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = tmp.path();
        // Ports bound and released one by one can repeat: take distinct ones.
        let mut ports: Vec<u16> = Vec::new();
        while ports.len() < 2 * n {
            let p = free_port();
            if !ports.contains(&p) {
                ports.push(p);
            }
        }
        let client_ports = ports.split_off(n);
        let raft = ports;
        let mut servers = Vec::new();
        for i in 0..n {
            let db = d.join(format!("s{i}.db"));
            let local = format!("tcp:127.0.0.1:{}", raft[i]);
            if i == 0 {
                run(Command::new("ovsdb-tool").arg("create-cluster").arg(&db).arg(schema_path()).arg(&local));
            } else {
                run(Command::new("ovsdb-tool")
                    .arg("join-cluster")
                    .arg(&db)
                    .arg("Open_vSwitch")
                    .arg(&local)
                    .arg(format!("tcp:127.0.0.1:{}", raft[0])));
            }
            let listen = vec![format!("ptcp:{}:127.0.0.1", client_ports[i])];
            servers.push(Server::start(d, &format!("s{i}"), db, listen, vec![]));
        }
        Cluster { servers, client_ports, tmp }
    }

    pub fn remote(&self, i: usize) -> String {
        format!("tcp:127.0.0.1:{}", self.client_ports[i])
    }

    pub fn remotes(&self) -> String {
        (0..self.servers.len()).map(|i| self.remote(i)).collect::<Vec<_>>().join(",")
    }

    /// Which member a `tcp:127.0.0.1:PORT` remote is.
    pub fn index_of(&self, remote: &str) -> Option<usize> {
        self.client_ports.iter().position(|p| remote.ends_with(&format!(":{p}")))
    }
}
