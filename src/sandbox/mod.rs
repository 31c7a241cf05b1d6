//! Private Open vSwitch instances: an `ovsdb-server` and an `ovs-vswitchd`
//! (userspace datapath) in a directory of their own, with `ovs-vswitchd`
//! in a network namespace of its own. Tests, the demo and the lab use it.
//!
//! Everything is stopped by pid (from the daemons' pidfiles), never by
//! process name, so any number of instances run side by side. Dropping an
//! [`OvsSandbox`] stops both daemons and removes the namespace and the
//! directory, also while a test unwinds from a panic.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::netns::{self, NetnsError};

pub mod docker;

/// Where Debian's package installs the `Open_vSwitch` schema.
pub const SYSTEM_VSWITCH_SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("{0} not found: install Open vSwitch (apt-get install openvswitch-switch)")]
    Missing(&'static str),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {stderr}")]
    Failed { program: String, status: std::process::ExitStatus, stderr: String },
    #[error("{0} did not start within {1:?} (see its log in the sandbox directory)")]
    Timeout(&'static str, Duration),
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SandboxError {
    let what = what.into();
    move |source| SandboxError::Io { what, source }
}

/// Whether the Open vSwitch daemons and tools are installed.
pub fn ovs_installed() -> Result<(), SandboxError> {
    for program in ["ovsdb-server", "ovs-vswitchd", "ovsdb-tool"] {
        if find_program(program).is_none() {
            return Err(SandboxError::Missing(program));
        }
    }
    if !Path::new(SYSTEM_VSWITCH_SCHEMA).exists() {
        return Err(SandboxError::Missing("vswitch.ovsschema"));
    }
    Ok(())
}

/// Finds a program on `PATH` (and in the sbin directories, which a
/// non-login root shell may lack).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// How to start a sandbox.
#[derive(Debug, Clone, Default)]
pub struct SandboxOptions {
    /// Directory for the database, sockets, pidfiles and logs. Default: a
    /// new directory under the system's temporary directory, removed on drop.
    pub dir: Option<PathBuf>,
    /// Network namespace for `ovs-vswitchd`: created, and deleted on drop.
    /// Default: a unique name `ovsnet-sbx-PID-N`.
    pub netns: Option<String>,
    /// Keep the directory when dropped (for looking at logs).
    pub keep_dir: bool,
    /// `other_config` keys set in the `Open_vSwitch` row before
    /// `ovs-vswitchd` starts (for example `userspace-tso-enable=true`).
    pub other_config: Vec<(String, String)>,
}

/// A running private `ovsdb-server` + `ovs-vswitchd`.
#[derive(Debug)]
pub struct OvsSandbox {
    dir: PathBuf,
    remove_dir: bool,
    netns: String,
    ovsdb_pid: Option<i32>,
    vswitchd_pid: Option<i32>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call, for namespaces, directories
/// and interfaces made by tests running in parallel.
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}-{n}", std::process::id())
}

impl OvsSandbox {
    /// Starts `ovsdb-server`, initialises the database and starts
    /// `ovs-vswitchd` in its own network namespace. Returns once both
    /// daemons have written their pidfiles (they do so when ready).
    pub fn start(opts: SandboxOptions) -> Result<Self, SandboxError> {
        ovs_installed()?;
        let (dir, remove_dir) = match &opts.dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(io_err(format!("create {}", d.display())))?;
                (d.clone(), false)
            }
            None => {
                let d = std::env::temp_dir().join(unique_name("ovsnet-sbx-"));
                std::fs::create_dir_all(&d).map_err(io_err(format!("create {}", d.display())))?;
                (d, !opts.keep_dir)
            }
        };
        let netns = opts.netns.clone().unwrap_or_else(|| unique_name("ovsnet-sbx-"));
        netns::create(&netns)?;
        let mut sandbox = OvsSandbox { dir, remove_dir, netns, ovsdb_pid: None, vswitchd_pid: None };
        // From here on, Drop cleans up whatever a failure leaves.
        sandbox.create_database(&opts.other_config)?;
        sandbox.start_ovsdb()?;
        sandbox.start_vswitchd()?;
        Ok(sandbox)
    }

    /// The directory holding the database, sockets, pidfiles and logs
    /// (`OVS_RUNDIR` of both daemons).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The namespace `ovs-vswitchd` runs in.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// The database's unix socket.
    pub fn db_socket(&self) -> PathBuf {
        self.dir.join("db.sock")
    }

    /// The database remote, as OVS spells it (`unix:PATH`).
    pub fn db_remote(&self) -> String {
        format!("unix:{}", self.db_socket().display())
    }

    /// A bridge's OpenFlow management socket (`ovs-ofctl` talks to it).
    pub fn mgmt_socket(&self, bridge: &str) -> PathBuf {
        self.dir.join(format!("{bridge}.mgmt"))
    }

    /// The pid of `ovsdb-server`, while running.
    pub fn ovsdb_pid(&self) -> Option<i32> {
        self.ovsdb_pid
    }

    /// The pid of `ovs-vswitchd`, while running.
    pub fn vswitchd_pid(&self) -> Option<i32> {
        self.vswitchd_pid
    }

    fn db_file(&self) -> PathBuf {
        self.dir.join("conf.db")
    }

    fn create_database(&self, other_config: &[(String, String)]) -> Result<(), SandboxError> {
        let db = self.db_file();
        run_tool(Command::new("ovsdb-tool").arg("create").arg(&db).arg(SYSTEM_VSWITCH_SCHEMA))?;
        // The root row `ovs-vsctl init` would make, written before the
        // server starts, so nothing but OVS's own tools touch the file.
        let other: Vec<serde_json::Value> = other_config.iter().map(|(k, v)| serde_json::json!([k, v])).collect();
        let txn = serde_json::json!([
            "Open_vSwitch",
            {"op": "insert", "table": "Open_vSwitch",
             "row": {"other_config": ["map", other]}}
        ]);
        run_tool(Command::new("ovsdb-tool").arg("transact").arg(&db).arg(txn.to_string()))?;
        Ok(())
    }

    /// Starts `ovsdb-server` on the sandbox's database (again, after
    /// [`OvsSandbox::stop_ovsdb`]).
    pub fn start_ovsdb(&mut self) -> Result<(), SandboxError> {
        let pidfile = self.dir.join("ovsdb-server.pid");
        let _ = std::fs::remove_file(&pidfile);
        let mut cmd = Command::new("ovsdb-server");
        cmd.env("OVS_RUNDIR", &self.dir)
            .env("OVS_DBDIR", &self.dir)
            .arg(self.db_file())
            .arg(format!("--remote=punix:{}", self.db_socket().display()))
            .arg(format!("--pidfile={}", pidfile.display()))
            .arg(format!("--unixctl={}", self.dir.join("ovsdb-server.ctl").display()))
            .arg(format!("--log-file={}", self.dir.join("ovsdb-server.log").display()))
            .arg("--detach")
            .arg("--no-chdir");
        run_tool(&mut cmd)?;
        self.ovsdb_pid = Some(read_pidfile(&pidfile, "ovsdb-server")?);
        Ok(())
    }

    /// Starts `ovs-vswitchd` in the sandbox's namespace (again, after
    /// [`OvsSandbox::stop_vswitchd`]).
    pub fn start_vswitchd(&mut self) -> Result<(), SandboxError> {
        let pidfile = self.dir.join("ovs-vswitchd.pid");
        let _ = std::fs::remove_file(&pidfile);
        let ns = netns::open(&self.netns)?;
        let mut cmd = Command::new("ovs-vswitchd");
        cmd.env("OVS_RUNDIR", &self.dir)
            .arg(self.db_remote())
            .arg(format!("--pidfile={}", pidfile.display()))
            .arg(format!("--unixctl={}", self.dir.join("ovs-vswitchd.ctl").display()))
            .arg(format!("--log-file={}", self.dir.join("ovs-vswitchd.log").display()))
            // The kernel module is absent on these machines; say so once
            // in the log instead of at every bridge.
            .arg("-vnetdev_linux:file:info")
            .arg("--detach")
            .arg("--no-chdir");
        netns::command_in(&mut cmd, &ns);
        run_tool(&mut cmd)?;
        drop(ns);
        self.vswitchd_pid = Some(read_pidfile(&pidfile, "ovs-vswitchd")?);
        Ok(())
    }

    /// Stops `ovs-vswitchd` (SIGTERM, then SIGKILL after 5 s).
    pub fn stop_vswitchd(&mut self) {
        if let Some(pid) = self.vswitchd_pid.take() {
            stop_pid(pid);
        }
    }

    /// Kills `ovs-vswitchd` with SIGKILL, as a crash would.
    pub fn kill_vswitchd(&mut self) {
        if let Some(pid) = self.vswitchd_pid.take() {
            kill_pid(pid);
        }
    }

    /// Stops `ovsdb-server` (SIGTERM, then SIGKILL after 5 s).
    pub fn stop_ovsdb(&mut self) {
        if let Some(pid) = self.ovsdb_pid.take() {
            stop_pid(pid);
        }
    }
}

impl Drop for OvsSandbox {
    fn drop(&mut self) {
        self.stop_vswitchd();
        self.stop_ovsdb();
        let _ = netns::delete(&self.netns);
        if self.remove_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn run_tool(cmd: &mut Command) -> Result<(), SandboxError> {
    crate::process::run_tool(cmd).map_err(|e| match e {
        crate::process::ToolError::Spawn { program, source } => {
            SandboxError::Io { what: format!("run {program}"), source }
        }
        crate::process::ToolError::Failed { program, status, stderr } => {
            SandboxError::Failed { program, status, stderr }
        }
    })
}

fn read_pidfile(path: &Path, daemon: &'static str) -> Result<i32, SandboxError> {
    let limit = Duration::from_secs(10);
    crate::process::read_pidfile(path, limit).ok_or(SandboxError::Timeout(daemon, limit))
}

pub use crate::process::process_alive;
use crate::process::{kill_pid, stop_pid};
