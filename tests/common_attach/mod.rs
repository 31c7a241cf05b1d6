//! Test support for attach, netlink and Docker tests: one private Docker
//! engine per test binary, namespace guards, and a fake "container" (a
//! process holding its own network namespace).
#![allow(dead_code, unused_imports)]

use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use ovsnet::netns;
pub use ovsnet::sandbox::docker::{DockerEngine, MINI_IMAGE, docker_installed};
pub use ovsnet::sandbox::unique_name;

/// Whether this run must not skip anything (CI sets `CI=true`).
pub fn strict() -> bool {
    std::env::var("CI").map(|v| v == "true" || v == "1").unwrap_or(false)
}

static ENGINE: OnceLock<Mutex<Option<DockerEngine>>> = OnceLock::new();

extern "C" fn stop_engine_at_exit() {
    if let Some(lock) = ENGINE.get() {
        let mut guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        // Dropping stops dockerd, containerd, shims; removes the directory.
        drop(guard.take());
    }
}

/// The Docker engine shared by every test of this binary (started once,
/// with `mini:latest` imported; stopped when the test binary exits), or
/// `None` (skip) where Docker is missing and this is not CI.
/// Returns its `DOCKER_HOST` value.
pub fn docker() -> Option<String> {
    if let Err(e) = docker_installed() {
        if strict() {
            panic!("CI=true and Docker is missing: {e}");
        }
        eprintln!("skipping: {e}");
        return None;
    }
    let lock = ENGINE.get_or_init(|| {
        let engine = DockerEngine::start().expect("start a private dockerd");
        engine.import_mini_image().expect("import mini:latest");
        // SAFETY: registering a plain extern "C" function.
        unsafe { libc::atexit(stop_engine_at_exit) };
        Mutex::new(Some(engine))
    });
    let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
    guard.as_ref().map(|e| e.host())
}

/// Runs `f` with the shared engine.
pub fn with_engine<R>(f: impl FnOnce(&DockerEngine) -> R) -> R {
    let lock = ENGINE.get().expect("docker() first");
    let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
    f(guard.as_ref().expect("engine running"))
}

/// A Docker container removed on drop.
pub struct Container {
    pub name: String,
    pub id: String,
}

impl Container {
    pub fn sleeper(prefix: &str) -> Container {
        let name = unique_name(prefix);
        let id = with_engine(|e| e.run_sleeper(&name)).expect("docker run");
        Container { name, id }
    }
    pub fn pid(&self) -> i32 {
        with_engine(|e| e.container_pid(&self.name)).expect("docker inspect")
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = with_engine(|e| e.remove(&[&self.name]));
    }
}

/// A named namespace deleted on drop.
pub struct Ns(pub String);

impl Ns {
    pub fn new(prefix: &str) -> Ns {
        let name = unique_name(prefix);
        netns::create(&name).expect("create namespace");
        Ns(name)
    }
    pub fn fd(&self) -> OwnedFd {
        netns::open(&self.0).expect("open namespace")
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = netns::delete(&self.0);
    }
}

/// A process in a fresh network namespace of its own (`unshare -n sleep`),
/// the simplest "container": its namespace dies with it. Killed on drop.
pub struct NsProcess(pub Child);

impl NsProcess {
    pub fn start() -> NsProcess {
        let child = Command::new("unshare")
            .args(["-n", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare -n sleep");
        let p = NsProcess(child);
        // unshare execs sleep after unsharing: wait until the namespace differs.
        let me = std::fs::read_link("/proc/self/ns/net").ok();
        let path = format!("/proc/{}/ns/net", p.pid());
        let start = std::time::Instant::now();
        while std::fs::read_link(&path).ok() == me {
            assert!(start.elapsed().as_secs() < 10, "unshare did not make a namespace");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        p
    }
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for NsProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}
