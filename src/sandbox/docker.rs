//! A private Docker engine for tests and benchmarks: Debian's `dockerd`
//! with its own data root, exec root and socket, no bridge and no
//! iptables rules (it must not touch the machine's own network), and a
//! tiny image `mini:latest` imported from the static busybox.
//!
//! `dockerd` starts `containerd` as its child and each container gets a
//! `containerd-shim` that is re-parented away from both; stopping the
//! engine stops them by pid: first the containers (through the engine),
//! then `dockerd` (which stops its `containerd`), then any process whose
//! command line still names this engine's directory.
//!
//! Test plumbing (import, run, restart) goes through the `docker` CLI
//! pointed at the private socket; the product itself never runs it.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{SandboxError, find_program, process_alive, unique_name};

/// The image [`DockerEngine::import_mini_image`] makes.
pub const MINI_IMAGE: &str = "mini:latest";

/// Where Debian's `busybox-static` puts the binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// Whether `dockerd`, `docker` and a static busybox are installed.
pub fn docker_installed() -> Result<(), SandboxError> {
    for program in ["dockerd", "docker", "containerd"] {
        if find_program(program).is_none() {
            return Err(SandboxError::Missing(program));
        }
    }
    if !Path::new(BUSYBOX).exists() {
        return Err(SandboxError::Missing("busybox (busybox-static)"));
    }
    Ok(())
}

/// Where a private engine runs.
#[derive(Debug, Clone, Default)]
pub struct DockerOptions {
    /// The network namespace (a simulated host's: the driver's veths and
    /// the switch's ports live there). Entered like `nsenter --net`, which
    /// keeps `/sys` and the cgroup mounts as they are.
    pub netns: Option<String>,
    /// A directory the engine sees as `/run/docker/plugins` (a private
    /// mount namespace), so that its plugins are the test's own.
    pub plugins: Option<PathBuf>,
    /// Where the engine keeps its data, exec root, socket and log (default:
    /// a new directory under the temporary directory). Short: containerd's
    /// socket, under `exec/`, must fit in a unix socket address.
    pub dir: Option<PathBuf>,
    /// Docker's default bridge (`docker0`) with its NAT (`iptables`), for
    /// comparisons: only with a namespace of the engine's own, where its
    /// rules stay.
    pub bridge_nat: bool,
}

/// The pid file of an engine in `dir`.
fn pidfile(dir: &Path) -> PathBuf {
    dir.join("dockerd.pid")
}

/// Stops an engine left running by [`DockerEngine::detach`] in `dir`: its
/// containers' processes, `dockerd`, then whatever still names the
/// directory (containerd, shims), then its mounts. Returns how many
/// processes it stopped; an engine already gone is not an error.
pub fn stop_detached(dir: &Path) -> usize {
    let mut stopped = 0;
    // Containers first: one whose init ignores SIGTERM would hold the
    // engine's shutdown for its stop timeout, and outlive its engine and
    // shim (reparented to init). They go by their cgroup.
    for pid in container_processes(dir) {
        crate::process::kill_pid(pid);
        stopped += 1;
    }
    let pid = std::fs::read_to_string(pidfile(dir)).ok().and_then(|t| t.trim().parse::<i32>().ok());
    if let Some(pid) = pid
        && processes_mentioning(dir).contains(&pid)
    {
        crate::process::stop_pid(pid);
        stopped += 1;
    }
    for stray in processes_mentioning(dir) {
        crate::process::stop_pid(stray);
        stopped += 1;
    }
    // Any started meanwhile.
    for pid in container_processes(dir) {
        crate::process::kill_pid(pid);
        stopped += 1;
    }
    unmount_under(dir);
    stopped
}

/// Pids in the cgroups of the containers of the engine in `dir` (its data
/// root's `containers/` names them by ID).
pub fn container_processes(dir: &Path) -> Vec<i32> {
    let ids: Vec<String> = std::fs::read_dir(dir.join("root").join("containers"))
        .map(|d| d.flatten().filter_map(|e| e.file_name().to_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let ids: Vec<String> =
        ids.into_iter().filter(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).collect();
    if ids.is_empty() {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .is_ok_and(|cg| ids.iter().any(|id| cg.contains(id.as_str())))
                && process_alive(*pid)
        })
        .collect()
}

/// Makes `cmd` run in a mount namespace of its own where `plugins` is
/// bound over `/run/docker/plugins` (made, empty, when missing).
fn private_plugin_dir(cmd: &mut Command, plugins: &Path) -> Result<(), SandboxError> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    const TARGET: &str = "/run/docker/plugins";
    std::fs::create_dir_all(TARGET).map_err(io(format!("create {TARGET}")))?;
    std::fs::create_dir_all(plugins).map_err(io(format!("create {}", plugins.display())))?;
    let bad = |_| SandboxError::Io { what: "a path with a NUL byte".into(), source: std::io::Error::other("nul") };
    let source = CString::new(plugins.as_os_str().as_bytes()).map_err(bad)?;
    let target = CString::new(TARGET).map_err(bad)?;
    let root = CString::new("/").map_err(bad)?;
    // SAFETY: between fork and exec only async-signal-safe system calls
    // run, on strings made before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::unshare(libc::CLONE_NEWNS) != 0
                || libc::mount(
                    std::ptr::null(),
                    root.as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) != 0
                || libc::mount(source.as_ptr(), target.as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}

/// A running private Docker engine, stopped (with its containers,
/// `containerd` and shims) when dropped.
#[derive(Debug)]
pub struct DockerEngine {
    dir: PathBuf,
    pid: Option<i32>,
    opts: DockerOptions,
}

impl DockerEngine {
    /// Starts `dockerd` in a new directory under the temporary directory
    /// and waits until its API answers `/_ping`.
    pub fn start() -> Result<Self, SandboxError> {
        Self::start_with(&DockerOptions::default())
    }

    /// [`start`](Self::start), in a network namespace and with a plugin
    /// directory of its own, as [`DockerOptions`] say.
    pub fn start_with(opts: &DockerOptions) -> Result<Self, SandboxError> {
        docker_installed()?;
        // Short: the socket path must fit in sockaddr_un (108 bytes), and
        // containerd's socket lives further down under exec/.
        let dir = opts.dir.clone().unwrap_or_else(|| std::env::temp_dir().join(unique_name("ovsnet-dkr-")));
        std::fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
        let mut engine = DockerEngine { dir, pid: None, opts: opts.clone() };
        engine.spawn_daemon()?;
        Ok(engine)
    }

    /// Stops `dockerd` alone (SIGTERM: it stops its containers as a host
    /// shutting down would) and starts it again on the same data: what an
    /// engine restart or a reboot does to containers with a restart policy.
    pub fn restart_daemon(&mut self) -> Result<(), SandboxError> {
        if let Some(pid) = self.pid.take() {
            crate::process::stop_pid(pid);
        }
        // Its containerd (and the containers' shims) go after it; a new
        // dockerd would start its own containerd and time out on the old
        // one's socket.
        // What is left after 5 s goes as a reboot would take it.
        let exec = self.dir.join("exec");
        let start = Instant::now();
        loop {
            let left = processes_mentioning(&exec);
            if left.is_empty() {
                break;
            }
            if start.elapsed() > Duration::from_secs(5) {
                tracing::info!("dockerd restart: stopping what it left running: {left:?}");
                for pid in left {
                    crate::process::stop_pid(pid);
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.spawn_daemon()
    }

    /// What a power cut does to the engine: `dockerd`, its `containerd`,
    /// the shims and every container's processes killed with SIGKILL, and
    /// the exec root (which `/run` holds on a real host) emptied. Nothing
    /// is stopped cleanly and no driver is told. [`Self::start_daemon`]
    /// boots it again on the same data.
    pub fn crash(&mut self) {
        let containers: Vec<i32> = self
            .run_cli(&["ps", "-q"])
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|id| self.container_pid(id).ok())
            .filter(|pid| *pid > 0)
            .collect();
        if let Some(pid) = self.pid.take() {
            crate::process::kill_pid(pid);
        }
        for pid in processes_mentioning(&self.dir).into_iter().chain(containers) {
            crate::process::kill_pid(pid);
        }
        let exec = self.dir.join("exec");
        unmount_under(&exec);
        let _ = std::fs::remove_dir_all(&exec);
    }

    /// Starts `dockerd` again after [`Self::crash`] (a boot).
    pub fn start_daemon(&mut self) -> Result<(), SandboxError> {
        if self.pid.is_some() {
            return Ok(());
        }
        self.spawn_daemon()
    }

    fn spawn_daemon(&mut self) -> Result<(), SandboxError> {
        let opts = self.opts.clone();
        let engine = self;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(engine.dir.join("dockerd.log"))
            .map_err(io("open dockerd.log"))?;
        let log2 = log.try_clone().map_err(io("dup dockerd.log"))?;
        if opts.bridge_nat && opts.netns.is_none() {
            return Err(SandboxError::Io {
                what: "a private engine with Docker's bridge NAT needs a namespace of its own".into(),
                source: std::io::Error::other("no namespace"),
            });
        }
        let mut cmd = Command::new("dockerd");
        let ns = opts.netns.as_deref().map(crate::netns::open).transpose().map_err(|e| SandboxError::Io {
            what: format!("open the namespace for dockerd: {e}"),
            source: std::io::Error::other("netns"),
        })?;
        if let Some(ns) = &ns {
            crate::netns::command_in(&mut cmd, ns);
        }
        if let Some(plugins) = &opts.plugins {
            private_plugin_dir(&mut cmd, plugins)?;
        }
        let child = cmd
            .arg("--data-root")
            .arg(engine.dir.join("root"))
            .arg("--exec-root")
            .arg(engine.dir.join("exec"))
            .arg("-H")
            .arg(engine.host())
            .arg("--pidfile")
            .arg(pidfile(&engine.dir))
            .args(match opts.bridge_nat {
                false => ["--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false"],
                true => ["--iptables=true", "--ip6tables=false", "--ip-masq=true", "--userland-proxy=false"],
            })
            // Containers here run `sleep` as pid 1, which ignores SIGTERM:
            // do not wait the default 15 s for them at shutdown.
            .arg("--shutdown-timeout=1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(io("start dockerd"))?;
        drop(ns);
        engine.pid = Some(child.id() as i32);
        // The Child handle is dropped without waiting; reap it from a
        // thread so it never lingers as a zombie.
        std::thread::spawn(move || {
            let mut child = child;
            let _ = child.wait();
        });
        engine.wait_ready(Duration::from_secs(60))
    }

    /// Leaves the engine running after this value is gone (a lab's host
    /// outlives the command that built it); [`stop_detached`] stops it.
    pub fn detach(self) -> PathBuf {
        let dir = self.dir.clone();
        std::mem::forget(self);
        dir
    }

    /// The engine's directory (data root, exec root, socket, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The API socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }

    /// The value for `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// The pid of `dockerd`.
    pub fn pid(&self) -> Option<i32> {
        self.pid
    }

    fn wait_ready(&self, limit: Duration) -> Result<(), SandboxError> {
        let start = Instant::now();
        loop {
            if self.ping() {
                return Ok(());
            }
            if !self.pid.is_some_and(process_alive) {
                let log = std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                return Err(SandboxError::Io {
                    what: format!("dockerd exited: {}", tail.into_iter().rev().collect::<Vec<_>>().join(" | ")),
                    source: std::io::Error::other("dockerd exited"),
                });
            }
            if start.elapsed() > limit {
                return Err(SandboxError::Timeout("dockerd", limit));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Whether the API answers `GET /_ping` with 200.
    pub fn ping(&self) -> bool {
        let Ok(mut s) = UnixStream::connect(self.socket()) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap_or(0);
        buf[..n].starts_with(b"HTTP/1.0 200") || buf[..n].starts_with(b"HTTP/1.1 200")
    }

    /// A `docker` CLI command aimed at this engine.
    pub fn cli(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_HOST", self.host())
            // Keep the CLI's own state (contexts, config) out of $HOME.
            .env("DOCKER_CONFIG", self.dir.join("cli"));
        cmd
    }

    /// Runs the CLI with `args` and returns its trimmed stdout.
    pub fn run_cli(&self, args: &[&str]) -> Result<String, SandboxError> {
        let out = self.cli().args(args).stdin(Stdio::null()).output().map_err(io("run docker"))?;
        if !out.status.success() {
            return Err(SandboxError::Failed {
                program: format!("docker {}", args.join(" ")),
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Imports `mini:latest`: a root filesystem holding the static busybox
    /// and links for sh, sleep, ip, ping, nc (and a few more).
    pub fn import_mini_image(&self) -> Result<(), SandboxError> {
        let rootfs = self.dir.join("mini-rootfs");
        let bin = rootfs.join("bin");
        std::fs::create_dir_all(&bin).map_err(io("create rootfs"))?;
        for d in ["proc", "sys", "dev", "etc", "tmp"] {
            std::fs::create_dir_all(rootfs.join(d)).map_err(io("create rootfs"))?;
        }
        std::fs::copy(BUSYBOX, bin.join("busybox")).map_err(io("copy busybox"))?;
        for applet in
            ["sh", "sleep", "ip", "ping", "nc", "cat", "ls", "ifconfig", "arp", "true", "httpd", "wget", "nslookup"]
        {
            let link = bin.join(applet);
            if !link.exists() {
                std::os::unix::fs::symlink("busybox", &link).map_err(io("link applet"))?;
            }
        }
        let tar = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(io("run tar"))?;
        let tar_out = tar
            .stdout
            .ok_or_else(|| SandboxError::Io { what: "tar stdout".into(), source: std::io::Error::other("no pipe") })?;
        let out =
            self.cli().args(["import", "-", MINI_IMAGE]).stdin(tar_out).output().map_err(io("run docker import"))?;
        if !out.status.success() {
            return Err(SandboxError::Failed {
                program: "docker import".into(),
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        let _ = std::fs::remove_dir_all(&rootfs);
        Ok(())
    }

    /// Runs a detached `mini:latest` container with no network, named
    /// `name`, running `sleep 3600`. Returns its ID.
    pub fn run_sleeper(&self, name: &str) -> Result<String, SandboxError> {
        self.run_cli(&["run", "-d", "--net=none", "--name", name, MINI_IMAGE, "/bin/sleep", "3600"])
    }

    /// The pid of a running container's first process.
    pub fn container_pid(&self, name: &str) -> Result<i32, SandboxError> {
        let out = self.run_cli(&["inspect", "-f", "{{.State.Pid}}", name])?;
        out.parse().map_err(|_| SandboxError::Io {
            what: format!("docker inspect {name}: pid {out:?}"),
            source: std::io::Error::other("bad pid"),
        })
    }

    /// Removes containers by name or ID (force: running ones too).
    pub fn remove(&self, names: &[&str]) -> Result<(), SandboxError> {
        if names.is_empty() {
            return Ok(());
        }
        let mut args = vec!["rm", "-f"];
        args.extend_from_slice(names);
        self.run_cli(&args).map(|_| ())
    }

    /// Stops the engine and everything it started.
    pub fn stop(&mut self) {
        let Some(pid) = self.pid.take() else {
            return;
        };
        // Containers first, while the engine can still stop them cleanly.
        if let Ok(ids) = self.run_cli(&["ps", "-aq"]) {
            let ids: Vec<&str> = ids.split_whitespace().collect();
            let _ = self.remove(&ids);
        }
        super::stop_pid(pid);
        // containerd and the shims: whatever still names our directory.
        for stray in processes_mentioning(&self.dir) {
            super::stop_pid(stray);
        }
    }
}

impl Drop for DockerEngine {
    fn drop(&mut self) {
        self.stop();
        // Overlay mounts are gone once the containers are; detach any
        // left (a crashed shim) so the directory can be removed.
        unmount_under(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SandboxError {
    let what = what.into();
    move |source| SandboxError::Io { what, source }
}

/// Pids whose command line contains `dir` (containerd, shims of this engine).
pub fn processes_mentioning(dir: &Path) -> Vec<i32> {
    let needle = dir.as_os_str().as_encoded_bytes();
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == std::process::id() as i32 {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline"))
            && cmdline.windows(needle.len()).any(|w| w == needle)
            && process_alive(pid)
        {
            pids.push(pid);
        }
    }
    pids
}

/// Mount points at or below `dir`, deepest first.
/// Detaches every mount under `dir` (what a crashed shim or an engine
/// left), so that the directory can be removed.
fn unmount_under(dir: &Path) {
    for mount in mounts_under(dir) {
        let _ = nix::mount::umount2(mount.as_path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> =
        text.lines().filter_map(|l| l.split(' ').nth(4)).map(PathBuf::from).filter(|p| p.starts_with(dir)).collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    out
}
