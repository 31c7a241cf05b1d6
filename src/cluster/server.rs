//! Running the cluster database: `ovsdb-server` processes on the ovsnet
//! schema, one standalone server or a 3- or 5-member Raft cluster, made
//! with `ovsdb-tool create-cluster` / `join-cluster` as OVN does it.
//!
//! Layout of a directory given to [`init`]:
//! - `ovsnet.ovsschema`: the schema the members were made from;
//! - `mN/ovsnet.db`, `mN/ovsdb-server.{pid,ctl,log}`, `mN/db.sock` for
//!   member N (1-based): its database file, daemon files and a unix
//!   socket for local clients;
//! - `cluster.json`: the members and remotes, for `status` and `stop`.
//!
//! Member N listens for clients on `tcp:ADDRESS:PORT_BASE+N-1` and for
//! its peers (Raft) on `tcp:ADDRESS:PORT_BASE+100+N-1`.
//!
//! Processes are stopped by the pids in their pidfiles, after checking
//! that the process really is an `ovsdb-server` of this directory.
//!
//! A host's own database lives in [`DEFAULT_DIR`] (the `db_dir` key):
//! [`ensure_local`] makes it a standalone database served on a unix socket
//! only, the single-host default, and [`grow`] turns that standalone
//! database into the first member of a Raft cluster, contents and all
//! (`ovsdb-tool create-cluster` takes a standalone database file as the
//! cluster's initial contents), that members on other hosts then join.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::{DB, SCHEMA};
use crate::netns;
use crate::ovsdb::{self, Client, Condition, ConnectOptions, Operation};

/// Where a host keeps its own ovsnet database (the `db_dir` key's default).
pub const DEFAULT_DIR: &str = "/var/lib/ovsnet/db";

/// The default first client port (member 1); Raft ports are 100 higher.
pub const DEFAULT_PORT_BASE: u16 = 6650;
/// How far the Raft ports lie above the client ports.
pub const RAFT_PORT_OFFSET: u16 = 100;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed: {stderr}")]
    Failed { program: String, stderr: String },
    #[error("{0}")]
    BadInput(String),
    #[error("{0} did not start within {1:?} (see its log)")]
    Timeout(String, Duration),
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
    #[error("{dir} holds no cluster made by `ovsnet cluster init` (no cluster.json)")]
    NotACluster { dir: String },
    #[error(transparent)]
    Ovsdb(#[from] ovsdb::Error),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
    let what = what.into();
    move |source| ServerError::Io { what, source }
}

/// One member to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberSpec {
    /// Address it listens on (clients and peers).
    pub address: IpAddr,
    pub client_port: u16,
    pub raft_port: u16,
    /// Network namespace to run it in (default: this one).
    pub netns: Option<String>,
    /// Serves clients on its unix socket only (the single-host default:
    /// nothing listens on the network). `address` and the ports are unused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unix_only: bool,
}

impl MemberSpec {
    /// The standalone member of a host's own database: unix socket only.
    pub fn unix_only() -> Self {
        MemberSpec {
            address: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            client_port: 0,
            raft_port: 0,
            netns: None,
            unix_only: true,
        }
    }

    pub fn client_remote(&self) -> String {
        format!("tcp:{}", join_host_port(self.address, self.client_port))
    }
    pub fn raft_remote(&self) -> String {
        format!("tcp:{}", join_host_port(self.address, self.raft_port))
    }
}

fn join_host_port(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// The members of a cluster on one address, numbered from `port_base`.
pub fn members_on(address: IpAddr, count: usize, port_base: u16) -> Result<Vec<MemberSpec>, ServerError> {
    if ![1, 3, 5].contains(&count) {
        return Err(ServerError::BadInput(format!(
            "--members {count}: use 1 (standalone), 3 or 5 (Raft needs an odd number; 3 survives one failure, 5 two)"
        )));
    }
    (0..count)
        .map(|i| {
            let i = u16::try_from(i).unwrap_or(u16::MAX);
            let client_port = port_base.checked_add(i);
            let raft_port = port_base.checked_add(RAFT_PORT_OFFSET + i);
            match (client_port, raft_port) {
                (Some(client_port), Some(raft_port)) => {
                    Ok(MemberSpec { address, client_port, raft_port, netns: None, unix_only: false })
                }
                _ => Err(ServerError::BadInput(format!("--port-base {port_base} is too high"))),
            }
        })
        .collect()
}

/// What `cluster.json` records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    pub dir: PathBuf,
    /// `standalone` or `clustered`.
    pub model: String,
    pub members: Vec<MemberSpec>,
}

impl ClusterInfo {
    /// Remotes for clients on the network: `tcp:A,tcp:B,tcp:C` (empty
    /// when every member serves its unix socket only).
    pub fn tcp_remotes(&self) -> String {
        self.members.iter().filter(|m| !m.unix_only).map(MemberSpec::client_remote).collect::<Vec<_>>().join(",")
    }

    /// Whether this is a standalone database (not a Raft cluster).
    pub fn is_standalone(&self) -> bool {
        self.model == "standalone"
    }

    /// Remotes for clients on this machine (any namespace): the members'
    /// unix sockets.
    pub fn unix_remotes(&self) -> String {
        (1..=self.members.len())
            .map(|n| format!("unix:{}", member_dir(&self.dir, n).join("db.sock").display()))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn load(dir: &Path) -> Result<Self, ServerError> {
        let text = std::fs::read_to_string(dir.join("cluster.json"))
            .map_err(|_| ServerError::NotACluster { dir: dir.display().to_string() })?;
        serde_json::from_str(&text).map_err(|e| ServerError::BadInput(format!("{}/cluster.json: {e}", dir.display())))
    }

    fn save(&self) -> Result<(), ServerError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| ServerError::BadInput(e.to_string()))?;
        std::fs::write(self.dir.join("cluster.json"), text).map_err(io_err("write cluster.json"))
    }
}

/// Member N's directory (1-based).
pub fn member_dir(dir: &Path, n: usize) -> PathBuf {
    dir.join(format!("m{n}"))
}

fn run_tool(cmd: &mut Command) -> Result<(), ServerError> {
    crate::process::run_tool(cmd).map_err(|e| match e {
        crate::process::ToolError::Spawn { program, source } => {
            ServerError::Io { what: format!("run {program} (is Open vSwitch installed?)"), source }
        }
        crate::process::ToolError::Failed { program, stderr, .. } => ServerError::Failed { program, stderr },
    })
}

/// Creates the members' database files and starts every member. With one
/// member the database is standalone (`ovsdb-tool create`); with more,
/// member 1 creates the cluster and the others join it. Returns once every
/// server has written its pidfile; clients should then connect with all
/// remotes and let the client find the leader.
pub fn init(dir: &Path, members: &[MemberSpec]) -> Result<ClusterInfo, ServerError> {
    if members.is_empty() {
        return Err(ServerError::BadInput("a cluster needs at least one member".into()));
    }
    if dir.join("cluster.json").exists() {
        return Err(ServerError::BadInput(format!(
            "{} already holds a cluster; `ovsnet cluster stop --dir {}` and remove it first",
            dir.display(),
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(io_err(format!("create {}", dir.display())))?;
    let dir = std::fs::canonicalize(dir).map_err(io_err(format!("resolve {}", dir.display())))?;
    let schema = dir.join("ovsnet.ovsschema");
    std::fs::write(&schema, SCHEMA).map_err(io_err("write the schema"))?;
    let info = ClusterInfo {
        dir: dir.clone(),
        model: if members.len() == 1 { "standalone" } else { "clustered" }.into(),
        members: members.to_vec(),
    };
    // Recorded first, so `stop` finds whatever a failure below leaves.
    info.save()?;
    for (i, m) in members.iter().enumerate() {
        let mdir = member_dir(&dir, i + 1);
        std::fs::create_dir_all(&mdir).map_err(io_err(format!("create {}", mdir.display())))?;
        let db = mdir.join("ovsnet.db");
        if i > 0 {
            join_cluster_file(&db, m, &members[0].raft_remote())?;
        } else if members.len() == 1 {
            run_tool(Command::new("ovsdb-tool").arg("create").arg(&db).arg(&schema))?;
        } else {
            run_tool(Command::new("ovsdb-tool").arg("create-cluster").arg(&db).arg(&schema).arg(m.raft_remote()))?;
        }
    }
    for (i, m) in members.iter().enumerate() {
        start_member(&dir, i + 1, m)?;
    }
    Ok(info)
}

/// Makes `db` the database file of a member joining the cluster that
/// `peer` (a Raft remote) belongs to (`ovsdb-tool join-cluster`).
fn join_cluster_file(db: &Path, member: &MemberSpec, peer: &str) -> Result<(), ServerError> {
    run_tool(Command::new("ovsdb-tool").arg("join-cluster").arg(db).arg(DB).arg(member.raft_remote()).arg(peer))
}

/// Joins a running cluster from this machine: `peer` is the Raft remote of
/// any member (`tcp:IP:PORT`). The new member's files go in `dir`, as
/// member 1 of that directory.
pub fn join(dir: &Path, member: &MemberSpec, peer: &str) -> Result<ClusterInfo, ServerError> {
    if !peer.starts_with("tcp:") && !peer.starts_with("ssl:") {
        return Err(ServerError::BadInput(format!("bad peer {peer:?}: expected tcp:IP:RAFT_PORT")));
    }
    std::fs::create_dir_all(dir).map_err(io_err(format!("create {}", dir.display())))?;
    let dir = std::fs::canonicalize(dir).map_err(io_err(format!("resolve {}", dir.display())))?;
    if dir.join("cluster.json").exists() {
        return Err(ServerError::BadInput(format!(
            "{} already holds a database; give another --dir, or stop it and remove it first",
            dir.display()
        )));
    }
    let info = ClusterInfo { dir: dir.clone(), model: "clustered".into(), members: vec![member.clone()] };
    info.save()?;
    let mdir = member_dir(&dir, 1);
    std::fs::create_dir_all(&mdir).map_err(io_err(format!("create {}", mdir.display())))?;
    join_cluster_file(&mdir.join("ovsnet.db"), member, peer)?;
    start_member(&dir, 1, member)?;
    Ok(info)
}

/// Makes sure this host's own database in `dir` is served: when `dir`
/// holds none, a standalone one is created (unix socket only: nothing
/// listens on the network); when its members are not running, they are
/// started. Whatever `dir` holds (standalone, or this host's cluster
/// member after [`grow`] or [`join`]) is served as it is. Idempotent.
pub fn ensure_local(dir: &Path) -> Result<ClusterInfo, ServerError> {
    if !dir.join("cluster.json").exists() {
        return init(dir, &[MemberSpec::unix_only()]);
    }
    let info = ClusterInfo::load(dir)?;
    for (i, m) in info.members.iter().enumerate() {
        if member_pid(&info.dir, i + 1).is_none() {
            start_member(&info.dir, i + 1, m)?;
        }
    }
    Ok(info)
}

/// The file a standalone database is kept in after [`grow`] or [`join`]
/// replaced it: the contents as they were, for the record.
pub const STANDALONE_KEPT: &str = "standalone.db";

/// Grows the standalone database in `dir` into a Raft cluster with the
/// same contents: the server is stopped, its file becomes the initial
/// contents of a new cluster whose first member listens on `members[0]`
/// (`ovsdb-tool create-cluster DB STANDALONE LOCAL`), further members in
/// `members` join it from this directory, and all are started. Clients
/// on the unix socket reconnect to the same path. On a failure before
/// the new members start, the standalone database is put back and served
/// again.
pub fn grow(dir: &Path, members: &[MemberSpec]) -> Result<ClusterInfo, ServerError> {
    let old = ClusterInfo::load(dir)?;
    if !old.is_standalone() {
        return Err(ServerError::BadInput(format!(
            "{} already holds a clustered database ({} member(s) here); add members with `ovsnet cluster join` on other hosts",
            old.dir.display(),
            old.members.len()
        )));
    }
    let Some(first) = members.first() else {
        return Err(ServerError::BadInput("a cluster needs at least one member".into()));
    };
    if members.iter().any(|m| m.unix_only) {
        return Err(ServerError::BadInput("a cluster member must listen on an address".into()));
    }
    let dir = old.dir.clone();
    let m1 = member_dir(&dir, 1);
    let db = m1.join("ovsnet.db");
    let kept = dir.join(STANDALONE_KEPT);
    if kept.exists() {
        return Err(ServerError::BadInput(format!("{} exists: move it away first", kept.display())));
    }
    stop_member(&dir, 1);
    std::fs::rename(&db, &kept).map_err(io_err(format!("move {} aside", db.display())))?;
    let made = (|| -> Result<(), ServerError> {
        run_tool(Command::new("ovsdb-tool").arg("create-cluster").arg(&db).arg(&kept).arg(first.raft_remote()))?;
        for (i, m) in members.iter().enumerate().skip(1) {
            let mdir = member_dir(&dir, i + 1);
            std::fs::create_dir_all(&mdir).map_err(io_err(format!("create {}", mdir.display())))?;
            join_cluster_file(&mdir.join("ovsnet.db"), m, &first.raft_remote())?;
        }
        Ok(())
    })();
    if let Err(e) = made {
        // Back to the standalone database, served as before.
        let _ = std::fs::remove_file(&db);
        for i in 2..=members.len() {
            let _ = std::fs::remove_dir_all(member_dir(&dir, i));
        }
        if std::fs::rename(&kept, &db).is_ok() {
            let _ = start_member(&dir, 1, &old.members[0]);
        }
        return Err(e);
    }
    let info = ClusterInfo { dir: dir.clone(), model: "clustered".into(), members: members.to_vec() };
    info.save()?;
    for (i, m) in members.iter().enumerate() {
        start_member(&dir, i + 1, m)?;
    }
    Ok(info)
}

/// Sets aside the standalone database in `dir` so that [`join`] can put
/// a cluster member there: the server is stopped and its file kept as
/// [`STANDALONE_KEPT`]. The caller has checked that it holds nothing a
/// user made (a host joins a cluster with an empty database).
pub fn retire_standalone(dir: &Path) -> Result<(), ServerError> {
    let old = ClusterInfo::load(dir)?;
    if !old.is_standalone() {
        return Err(ServerError::BadInput(format!(
            "{} already holds a clustered database: this host is a member already",
            old.dir.display()
        )));
    }
    stop_member(&old.dir, 1);
    let db = member_dir(&old.dir, 1).join("ovsnet.db");
    std::fs::rename(&db, old.dir.join(STANDALONE_KEPT)).map_err(io_err(format!("move {} aside", db.display())))?;
    std::fs::remove_file(old.dir.join("cluster.json")).map_err(io_err("remove cluster.json"))
}

/// Starts member N (again: after [`stop_member`], its database file keeps
/// its Raft identity and it rejoins).
pub fn start_member(dir: &Path, n: usize, m: &MemberSpec) -> Result<i32, ServerError> {
    let mdir = member_dir(dir, n);
    let tcp = (!m.unix_only).then_some((m.client_port, m.address));
    serve(&mdir, mdir.join("ovsnet.db").into_os_string(), tcp, m.netns.as_deref(), &format!("member {n}"))
}

/// Starts a detached `ovsdb-server` of `database` (a file, or a relay's
/// source) whose socket, pidfile, control socket and log are in `mdir`,
/// listening on `tcp` (port, address) too; returns its pid.
fn serve(
    mdir: &Path,
    database: std::ffi::OsString,
    tcp: Option<(u16, IpAddr)>,
    netns_name: Option<&str>,
    what: &str,
) -> Result<i32, ServerError> {
    let pidfile = mdir.join("ovsdb-server.pid");
    let _ = std::fs::remove_file(&pidfile);
    let mut cmd = Command::new("ovsdb-server");
    cmd.env("OVS_RUNDIR", mdir).env("OVS_DBDIR", mdir).arg(database);
    if let Some((port, address)) = tcp {
        cmd.arg(format!("--remote=ptcp:{port}:{address}"));
    }
    cmd.arg(format!("--remote=punix:{}", mdir.join("db.sock").display()))
        .arg(format!("--pidfile={}", pidfile.display()))
        .arg(format!("--unixctl={}", mdir.join("ovsdb-server.ctl").display()))
        .arg(format!("--log-file={}", mdir.join("ovsdb-server.log").display()))
        .arg("--detach")
        .arg("--no-chdir");
    let ns = netns_name.map(netns::open).transpose()?;
    if let Some(ns) = &ns {
        netns::command_in(&mut cmd, ns);
    }
    run_tool(&mut cmd)?;
    drop(ns);
    wait_pidfile(&pidfile, what)
}

fn wait_pidfile(path: &Path, what: &str) -> Result<i32, ServerError> {
    let limit = Duration::from_secs(10);
    let start = Instant::now();
    loop {
        if let Some(pid) = std::fs::read_to_string(path).ok().and_then(|t| t.trim().parse().ok()) {
            return Ok(pid);
        }
        if start.elapsed() > limit {
            return Err(ServerError::Timeout(what.to_owned(), limit));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The pid of member N, if its pidfile names a live `ovsdb-server` of
/// this directory (a stale pidfile after a crash or reboot names some
/// other process, or none).
pub fn member_pid(dir: &Path, n: usize) -> Option<i32> {
    let mdir = member_dir(dir, n);
    let pid: i32 = std::fs::read_to_string(mdir.join("ovsdb-server.pid")).ok()?.trim().parse().ok()?;
    owned_process(pid, &mdir).then_some(pid)
}

/// Whether `pid` is a live process whose command line mentions `dir`.
pub fn owned_process(pid: i32, dir: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let needle = dir.display().to_string();
    let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    crate::sandbox::process_alive(pid) && text.contains(&needle)
}

pub use crate::process::{kill_pid, stop_pid};

/// Stops member N (false: it was not running).
pub fn stop_member(dir: &Path, n: usize) -> bool {
    match member_pid(dir, n) {
        Some(pid) => {
            stop_pid(pid);
            true
        }
        None => false,
    }
}

/// Stops every member recorded in `dir`; returns how many were running.
pub fn stop(dir: &Path) -> Result<usize, ServerError> {
    if RelaySpec::load(dir).is_ok() {
        return Ok(usize::from(stop_member(dir, 1)));
    }
    let info = ClusterInfo::load(dir)?;
    Ok((1..=info.members.len()).filter(|&n| stop_member(&info.dir, n)).count())
}

/// A relay: an `ovsdb-server` that holds a copy of the database in memory,
/// kept by a monitor on the cluster (its `source`), and serves monitors and
/// reads to its clients itself, forwarding their writes to the cluster
/// (OVS 2.16 and later). Agents pointed at relays spread the cost of
/// thousands of connections and their snapshots over more processes and
/// machines than the Raft members; the members then serve the relays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelaySpec {
    /// Address and port it serves clients on.
    pub address: IpAddr,
    pub port: u16,
    /// The cluster's members, as a client reaches them (`tcp:IP:PORT,...`).
    pub source: String,
    /// Network namespace to run it in (default: this one).
    pub netns: Option<String>,
}

impl RelaySpec {
    const FILE: &str = "relay.json";

    pub fn client_remote(&self) -> String {
        format!("tcp:{}", join_host_port(self.address, self.port))
    }

    pub fn load(dir: &Path) -> Result<Self, ServerError> {
        let text = std::fs::read_to_string(dir.join(Self::FILE))
            .map_err(|_| ServerError::NotACluster { dir: dir.display().to_string() })?;
        serde_json::from_str(&text).map_err(|e| ServerError::BadInput(format!("{}/{}: {e}", dir.display(), Self::FILE)))
    }
}

/// The unix socket of the relay recorded in `dir`.
pub fn relay_socket(dir: &Path) -> PathBuf {
    member_dir(dir, 1).join("db.sock")
}

/// Starts a relay of the cluster `spec.source` in `dir` (recorded in
/// `dir/relay.json`, so that `stop` and a later `start_relay` find it),
/// and returns its pid. Refused if `dir` holds a database member, or a
/// relay that runs.
pub fn start_relay(dir: &Path, spec: &RelaySpec) -> Result<i32, ServerError> {
    ovsdb::Remote::parse(&spec.source)?;
    if dir.join("cluster.json").exists() {
        return Err(ServerError::BadInput(format!(
            "{} holds database members (cluster.json); give a relay a directory of its own",
            dir.display()
        )));
    }
    if let Some(pid) = member_pid(dir, 1) {
        return Err(ServerError::BadInput(format!("a relay already runs in {} (pid {pid})", dir.display())));
    }
    let mdir = member_dir(dir, 1);
    std::fs::create_dir_all(&mdir).map_err(io_err(format!("create {}", mdir.display())))?;
    let json = serde_json::to_string_pretty(spec).map_err(|e| ServerError::BadInput(e.to_string()))?;
    std::fs::write(dir.join(RelaySpec::FILE), json).map_err(io_err("write relay.json"))?;
    let source = format!("relay:{DB}:{}", spec.source);
    serve(&mdir, source.into(), Some((spec.port, spec.address)), spec.netns.as_deref(), "relay")
}

/// One member as its own `_Server` database describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberStatus {
    pub remote: String,
    /// Reachable and answering.
    pub up: bool,
    pub model: Option<String>,
    pub connected: Option<bool>,
    pub leader: Option<bool>,
    /// Server ID (clustered only).
    pub sid: Option<String>,
    /// Cluster ID (clustered only).
    pub cid: Option<String>,
    /// Raft log index of the last change this member saw.
    pub index: Option<i64>,
    pub error: Option<String>,
}

/// Asks each remote, separately, about the ovsnet database in its
/// `_Server` database: whether it is up, connected to the cluster, the
/// leader, and how far its log goes.
pub async fn status(remotes: &str, opts: &ConnectOptions) -> Result<Vec<MemberStatus>, ServerError> {
    let list = ovsdb::Remote::parse(remotes)?;
    let mut out = Vec::new();
    for r in list {
        let remote = r.to_string();
        let mut o = opts.clone();
        o.leader_only = false;
        o.timeout = o.timeout.min(Duration::from_secs(2));
        let st = match member_status(&remote, &o).await {
            Ok(s) => s,
            Err(e) => MemberStatus {
                remote: remote.clone(),
                up: false,
                model: None,
                connected: None,
                leader: None,
                sid: None,
                cid: None,
                index: None,
                error: Some(e.to_string()),
            },
        };
        out.push(st);
    }
    Ok(out)
}

async fn member_status(remote: &str, opts: &ConnectOptions) -> Result<MemberStatus, ovsdb::Error> {
    let client = Client::connect(remote, opts).await?;
    let r = client
        .transact_unchecked("_Server", vec![Operation::select("Database", vec![Condition::eq("name", DB)])])
        .await?;
    let row = r.first().and_then(|r| r.rows.as_ref()).and_then(|rows| rows.first()).cloned().unwrap_or_default();
    let first_uuid = |c: &str| row.get(c).and_then(|d| d.uuids().first().map(|u| u.to_string()));
    let to_json = |c: &str| row.get(c).map(|d| d.to_json()).unwrap_or(Value::Null);
    let index = match to_json("index") {
        Value::Number(n) => n.as_i64(),
        Value::Array(a) if a.len() == 2 => a[1].as_array().and_then(|x| x.first()).and_then(Value::as_i64),
        _ => None,
    };
    Ok(MemberStatus {
        remote: remote.to_owned(),
        up: true,
        model: row.get("model").and_then(|d| d.as_str()).map(str::to_owned),
        connected: row.get("connected").and_then(|d| d.as_bool()),
        leader: row.get("leader").and_then(|d| d.as_bool()),
        sid: first_uuid("sid"),
        cid: first_uuid("cid"),
        index,
        error: None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn member_ports_follow_the_base() {
        let m = members_on("127.0.0.1".parse().unwrap(), 3, 7000).unwrap();
        let r: Vec<String> = m.iter().map(|m| format!("{} {}", m.client_remote(), m.raft_remote())).collect();
        assert_eq!(
            r,
            [
                "tcp:127.0.0.1:7000 tcp:127.0.0.1:7100",
                "tcp:127.0.0.1:7001 tcp:127.0.0.1:7101",
                "tcp:127.0.0.1:7002 tcp:127.0.0.1:7102"
            ]
        );
        assert!(members_on("127.0.0.1".parse().unwrap(), 2, 7000).is_err());
        assert!(members_on("127.0.0.1".parse().unwrap(), 5, 65500).is_err());
        let v6 = members_on("::1".parse().unwrap(), 1, 7000).unwrap();
        assert_eq!(v6[0].client_remote(), "tcp:[::1]:7000");
    }
}
