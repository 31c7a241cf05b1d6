//! What the benchmarks that run labs and containers share: running
//! commands, namespaces, iperf3 streams, connection rates, a lab of the
//! `ovsnet` command's own (taken down on drop), the load and medians.
#![allow(dead_code)]

use std::net::{SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ovsnet::lab::LabRecord;

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().expect("run");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

/// A private Docker engine in namespace `ns` with its own bridge NAT (the
/// default bridge driver's), the mini image imported: Docker as the peer.
pub fn bridge_engine(ns: &str) -> ovsnet::sandbox::docker::DockerEngine {
    use ovsnet::sandbox::docker::{DockerEngine, DockerOptions};
    let opts = DockerOptions { netns: Some(ns.to_owned()), plugins: None, dir: None, bridge_nat: true };
    let engine = DockerEngine::start_with(&opts).expect("private engine with bridge NAT");
    engine.import_mini_image().expect("image");
    engine
}

pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split(' ').take(3).collect::<Vec<_>>().join(" ")
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(f64::NAN)
}

/// Where a command runs: a named namespace, or one by path (a container's).
#[derive(Clone)]
pub enum Ns {
    Named(String),
    Path(PathBuf),
}

impl Ns {
    pub fn command(&self, program: &str) -> Command {
        match self {
            Ns::Named(n) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", n, program]);
                c
            }
            Ns::Path(p) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", p.display())).arg(program);
                c
            }
        }
    }

    pub fn fd(&self) -> std::os::fd::OwnedFd {
        match self {
            Ns::Named(n) => ovsnet::netns::open(n).expect("open namespace"),
            Ns::Path(p) => ovsnet::netns::open_path(p).expect("open namespace"),
        }
    }
}

/// One iperf3 stream from `client` to `to`, the server in `server` bound
/// to `bind`: Gbit/s.
pub fn iperf(client: &Ns, server: &Ns, bind: SocketAddrV4, to: SocketAddrV4, secs: u32) -> f64 {
    run(server.command("iperf3").args([
        "-s",
        "-1",
        "-D",
        "-B",
        &bind.ip().to_string(),
        "-p",
        &bind.port().to_string(),
    ]));
    let started = Instant::now();
    // The server is up once it listens.
    while !run(server.command("ss").args(["-ltn"])).contains(&bind.to_string()) {
        assert!(started.elapsed() < Duration::from_secs(5), "iperf3 server on {bind}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = run(client.command("iperf3").args([
        "-c",
        &to.ip().to_string(),
        "-p",
        &to.port().to_string(),
        "-t",
        &secs.to_string(),
        "-J",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).expect("iperf3 JSON");
    v["end"]["sum_received"]["bits_per_second"].as_f64().expect("iperf3 result") / 1e9
}

/// New TCP connections per second from `client` to a listener in `server`
/// on `at`: connect, then close with a reset, one at a time, for `secs`.
pub fn connection_rate(client: &Ns, server: &Ns, at: SocketAddrV4, secs: u32) -> f64 {
    connection_rate_to(client, server, at, at, secs)
}

/// [`connection_rate`] to `to`, the listener bound to `bind` (a service
/// address in front of it).
pub fn connection_rate_to(client: &Ns, server: &Ns, bind: SocketAddrV4, to: SocketAddrV4, secs: u32) -> f64 {
    let at = to;
    let listener = ovsnet::netns::run_in(&server.fd(), || TcpListener::bind(bind)).expect("enter").expect("listen");
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    listener.set_nonblocking(true).expect("nonblocking");
    let acceptor = std::thread::spawn(move || {
        while !stopped.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((conn, _)) => drop(conn),
                Err(_) => std::thread::sleep(Duration::from_micros(200)),
            }
        }
    });
    let fd = client.fd();
    let (made, took) = ovsnet::netns::run_in(&fd, || {
        let start = Instant::now();
        let mut made = 0u64;
        while start.elapsed() < Duration::from_secs(u64::from(secs)) {
            if let Ok(conn) = TcpStream::connect_timeout(&at.into(), Duration::from_secs(1)) {
                // A reset, not a FIN: no TIME_WAIT to run out of ports with.
                let _ = nix::sys::socket::setsockopt(
                    &conn,
                    nix::sys::socket::sockopt::Linger,
                    &libc::linger { l_onoff: 1, l_linger: 0 },
                );
                made += 1;
            }
        }
        (made, start.elapsed())
    })
    .expect("enter");
    stop.store(true, Ordering::Relaxed);
    let _ = acceptor.join();
    made as f64 / took.as_secs_f64()
}

/// A lab brought up by `ovsnet lab up ARGS` in a state directory of its
/// own, taken down on drop.
pub struct LabRun {
    pub ovsnet: PathBuf,
    pub state: tempfile::TempDir,
    pub name: String,
    pub rec: LabRecord,
}

impl LabRun {
    pub fn up(ovsnet: &Path, name: String, args: &[&str]) -> LabRun {
        let state = tempfile::tempdir().expect("tempdir");
        run(Command::new(ovsnet)
            .arg("lab")
            .arg("up")
            .args(args)
            .args(["--name", &name])
            .arg("--state-dir")
            .arg(state.path()));
        let rec = LabRecord::load(state.path(), &name).expect("lab record");
        LabRun { ovsnet: ovsnet.to_owned(), state, name, rec }
    }
}

impl Drop for LabRun {
    fn drop(&mut self) {
        let _ = Command::new(&self.ovsnet)
            .args(["lab", "down", "--name", &self.name])
            .arg("--state-dir")
            .arg(self.state.path())
            .output();
    }
}
