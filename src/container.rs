//! From a CONTAINER argument to an open network namespace.
//!
//! CONTAINER is one of:
//! - a Docker container name or ID, resolved through the Docker Engine API
//!   on its unix socket (`DOCKER_HOST`, default `unix:///var/run/docker.sock`;
//!   Podman's compatible socket works too), never through the docker CLI;
//! - `pid:N`: the namespace of process N (`/proc/N/ns/net`);
//! - `netns:NAME`: a named namespace (`/run/netns/NAME`);
//! - a path to a namespace file (anything with a `/` in it).
//!
//! The result carries the namespace's identity (device and inode of the
//! nsfs file): a container that restarted has a new namespace, so the same
//! name with a different inode means "re-plug".

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::netns::{self, NetnsError};

pub mod engine_api;

/// The default Docker Engine socket.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// nsfs's magic number, `NSFS_MAGIC` in `<linux/magic.h>`.
const NSFS_MAGIC: i64 = 0x6e73_6673;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("container {0}: no such container")]
    NoSuchContainer(String),
    #[error("container {0}: not running")]
    NotRunning(String),
    #[error("container {0}: no such process")]
    NoSuchProcess(String),
    #[error("container {0}: no such network namespace")]
    NoSuchNamespace(String),
    #[error("container {0}: not a network namespace file")]
    NotANamespace(String),
    #[error("container {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("docker: cannot reach {host}: {message}")]
    Unreachable { host: String, message: String },
    #[error("docker: {host}: only unix sockets are supported")]
    NotUnix { host: String },
    #[error("docker: container {name}: {message}")]
    Docker { name: String, message: String },
    #[error("container {0}: went away during the attach")]
    Vanished(String),
    #[error("container {0:?}: empty or malformed reference")]
    BadReference(String),
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

/// What a CONTAINER argument names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ContainerRef {
    Docker(String),
    Pid(u32),
    Netns(String),
    Path(PathBuf),
}

impl ContainerRef {
    /// Parses a CONTAINER argument.
    pub fn parse(s: &str) -> Result<Self, ContainerError> {
        let bad = || ContainerError::BadReference(s.to_owned());
        if let Some(pid) = s.strip_prefix("pid:") {
            let pid: u32 = pid.parse().map_err(|_| bad())?;
            if pid == 0 {
                return Err(bad());
            }
            return Ok(ContainerRef::Pid(pid));
        }
        if let Some(name) = s.strip_prefix("netns:") {
            netns::validate_name(name).map_err(|_| bad())?;
            return Ok(ContainerRef::Netns(name.to_owned()));
        }
        if s.contains('/') {
            return Ok(ContainerRef::Path(PathBuf::from(s)));
        }
        // Docker names: [a-zA-Z0-9][a-zA-Z0-9_.-]*; IDs are hex.
        let ok = s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
        if !ok {
            return Err(bad());
        }
        Ok(ContainerRef::Docker(s.to_owned()))
    }

    /// The kind as stored in `external_ids` (`docker`, `pid`, `netns`, `path`).
    pub fn kind(&self) -> &'static str {
        match self {
            ContainerRef::Docker(_) => "docker",
            ContainerRef::Pid(_) => "pid",
            ContainerRef::Netns(_) => "netns",
            ContainerRef::Path(_) => "path",
        }
    }
}

impl std::fmt::Display for ContainerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContainerRef::Docker(n) => f.write_str(n),
            ContainerRef::Pid(p) => write!(f, "pid:{p}"),
            ContainerRef::Netns(n) => write!(f, "netns:{n}"),
            ContainerRef::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A namespace's identity: the nsfs device and inode (`ls -iL
/// /proc/PID/ns/net`) and the namespace cookie (`SO_NETNS_COOKIE`, Linux
/// 5.14+). The inode alone is not enough: the kernel hands a freed inode
/// number to the next namespace, so a restarted container often gets its
/// old number back (Docker's `restart` does, here). The cookie is never
/// reused while the machine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetnsId {
    pub dev: u64,
    pub ino: u64,
    /// `None` on kernels without `SO_NETNS_COOKIE`.
    pub cookie: Option<u64>,
}

impl std::fmt::Display for NetnsId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.dev, self.ino)?;
        if let Some(c) = self.cookie {
            write!(f, ":{c}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for NetnsId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let mut parts = s.split(':');
        let dev = parts.next().ok_or(())?.parse().map_err(|_| ())?;
        let ino = parts.next().ok_or(())?.parse().map_err(|_| ())?;
        let cookie = match parts.next() {
            Some(c) => Some(c.parse().map_err(|_| ())?),
            None => None,
        };
        if parts.next().is_some() {
            return Err(());
        }
        Ok(NetnsId { dev, ino, cookie })
    }
}

/// `SO_NETNS_COOKIE` from `<asm-generic/socket.h>` (libc lacks it).
const SO_NETNS_COOKIE: libc::c_int = 71;

/// The cookie of the namespace `fd` refers to: read from a socket made
/// inside it (see [`netns::with`]).
fn netns_cookie(fd: &OwnedFd) -> Option<u64> {
    netns::with(fd, || {
        use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
        use std::os::fd::AsRawFd;
        let sock = socket(AddressFamily::Unix, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None).ok()?;
        let mut cookie: u64 = 0;
        let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
        // SAFETY: the buffer is a u64 and len says so.
        let rc = unsafe {
            libc::getsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_NETNS_COOKIE,
                (&mut cookie as *mut u64).cast(),
                &mut len,
            )
        };
        (rc == 0).then_some(cookie)
    })
    .ok()
    .flatten()
}

/// Who a resolved container is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// What the user named.
    pub reference: ContainerRef,
    /// A stable key: the full Docker ID, `pid:N`, `netns:NAME`, or the path.
    pub id: String,
    /// The Docker name without its leading `/`.
    pub name: Option<String>,
    /// The process holding the namespace, when known.
    pub pid: Option<u32>,
    pub netns: NetnsId,
}

impl Identity {
    /// Whether the container still has the namespace it was resolved to
    /// (its process alive, its namespace file still the same). Cheap: one
    /// `stat`.
    pub fn still_current(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let path = match (&self.reference, self.pid) {
            (_, Some(pid)) => PathBuf::from(format!("/proc/{pid}/ns/net")),
            (ContainerRef::Netns(n), None) => netns::path_of(n),
            (ContainerRef::Path(p), None) => p.clone(),
            (_, None) => return true,
        };
        std::fs::metadata(path).is_ok_and(|m| m.dev() == self.netns.dev && m.ino() == self.netns.ino)
    }
}

/// A container resolved to an open namespace.
#[derive(Debug)]
pub struct Resolved {
    pub identity: Identity,
    pub netns: OwnedFd,
}

/// Identity of an open namespace file; refuses files that are not one.
pub fn netns_id(fd: &OwnedFd, shown: &str) -> Result<NetnsId, ContainerError> {
    let io = |source: nix::Error| ContainerError::Io { what: shown.to_owned(), source: source.into() };
    let fs = nix::sys::statfs::fstatfs(fd.as_fd()).map_err(io)?;
    if fs.filesystem_type().0 as i64 != NSFS_MAGIC {
        return Err(ContainerError::NotANamespace(shown.to_owned()));
    }
    let st = nix::sys::stat::fstat(fd.as_fd()).map_err(io)?;
    Ok(NetnsId { dev: st.st_dev, ino: st.st_ino, cookie: netns_cookie(fd) })
}

fn open_ns_file(path: &Path, shown: &str, missing: ContainerError) -> Result<(OwnedFd, NetnsId), ContainerError> {
    let fd = match std::fs::File::open(path) {
        Ok(f) => OwnedFd::from(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing),
        Err(e) => {
            return Err(ContainerError::Io { what: shown.to_owned(), source: e });
        }
    };
    let id = netns_id(&fd, shown)?;
    Ok((fd, id))
}

/// Resolves CONTAINER arguments. Docker lookups are one Engine API request
/// each (`engine_api`); an engine that refuses the API version asked for
/// is asked for its own once, and that is kept for the next lookups.
#[derive(Debug)]
pub struct Resolver {
    docker_host: String,
    api_version: std::sync::OnceLock<String>,
}

/// The engine's API socket `DOCKER_HOST` names (default
/// `/var/run/docker.sock`); `None` for a host that is not a unix socket.
pub fn docker_socket_path() -> Option<std::path::PathBuf> {
    let host =
        std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_owned());
    match host.strip_prefix("unix://") {
        Some(p) => Some(std::path::PathBuf::from(p)),
        None if host.starts_with('/') => Some(std::path::PathBuf::from(host)),
        None => None,
    }
}

impl Default for Resolver {
    fn default() -> Self {
        Self::new()
    }
}

impl Resolver {
    /// A resolver using `DOCKER_HOST` (default `unix:///var/run/docker.sock`).
    pub fn new() -> Self {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_owned());
        Self::with_docker_host(host)
    }

    pub fn with_docker_host(host: impl Into<String>) -> Self {
        Resolver { docker_host: host.into(), api_version: std::sync::OnceLock::new() }
    }

    pub fn docker_host(&self) -> &str {
        &self.docker_host
    }

    /// The engine's socket path, from `DOCKER_HOST`.
    fn docker_socket(&self) -> Result<&Path, ContainerError> {
        let host = &self.docker_host;
        let path = if let Some(p) = host.strip_prefix("unix://") {
            p
        } else if host.starts_with('/') {
            host.as_str()
        } else {
            return Err(ContainerError::NotUnix { host: host.clone() });
        };
        if !Path::new(path).exists() {
            return Err(ContainerError::Unreachable { host: host.clone(), message: "no such socket".into() });
        }
        Ok(Path::new(path))
    }

    /// `GET /containers/NAME/json`. NAME was checked by [`ContainerRef::parse`]
    /// (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`), so it goes into the path as it is.
    async fn inspect(&self, name: &str) -> Result<engine_api::Inspect, ContainerError> {
        let socket = self.docker_socket()?;
        let unreachable = |e: engine_api::ApiError| ContainerError::Unreachable {
            host: self.docker_host.clone(),
            message: e.to_string(),
        };
        let version = self.api_version.get().map_or(engine_api::API_VERSION, String::as_str);
        let mut reply =
            engine_api::get(socket, &format!("/v{version}/containers/{name}/json")).await.map_err(unreachable)?;
        if reply.status == 400 && engine_api::message(&reply.body).contains("version") {
            // An engine that no longer speaks our version: use its own.
            let own = engine_api::get(socket, "/version").await.map_err(unreachable)?;
            let Some(version) = engine_api::api_version(&own.body) else {
                return Err(ContainerError::Docker {
                    name: name.to_owned(),
                    message: engine_api::message(&reply.body),
                });
            };
            let version = self.api_version.get_or_init(|| version);
            reply =
                engine_api::get(socket, &format!("/v{version}/containers/{name}/json")).await.map_err(unreachable)?;
        }
        match reply.status {
            200 => serde_json::from_slice(&reply.body).map_err(|e| ContainerError::Docker {
                name: name.to_owned(),
                message: format!("unreadable inspect reply: {e}"),
            }),
            404 => Err(ContainerError::NoSuchContainer(name.to_owned())),
            _ => Err(ContainerError::Docker { name: name.to_owned(), message: engine_api::message(&reply.body) }),
        }
    }

    /// The name of the Docker network with this ID (`GET /networks/ID`);
    /// `None` while the engine does not know it (yet).
    pub async fn network_name(&self, id: &str) -> Result<Option<String>, ContainerError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ContainerError::Docker { name: id.to_owned(), message: "bad network ID".into() });
        }
        let socket = self.docker_socket()?;
        let version = self.api_version.get().map_or(engine_api::API_VERSION, String::as_str);
        let reply = engine_api::get(socket, &format!("/v{version}/networks/{id}"))
            .await
            .map_err(|e| ContainerError::Unreachable { host: self.docker_host.clone(), message: e.to_string() })?;
        match reply.status {
            200 => {
                let v: serde_json::Value = serde_json::from_slice(&reply.body).map_err(|e| ContainerError::Docker {
                    name: id.to_owned(),
                    message: format!("unreadable network reply: {e}"),
                })?;
                Ok(v.get("Name").and_then(serde_json::Value::as_str).map(str::to_owned))
            }
            404 => Ok(None),
            _ => Err(ContainerError::Docker { name: id.to_owned(), message: engine_api::message(&reply.body) }),
        }
    }

    /// `GET /containers/ID/json` for the follower: the container's name and
    /// its networks' endpoints. `None` when the engine does not know it.
    pub async fn inspect_container(&self, id: &str) -> Result<Option<engine_api::Inspect>, ContainerError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) {
            return Err(ContainerError::Docker { name: id.to_owned(), message: "bad container ID".into() });
        }
        match self.inspect(id).await {
            Ok(i) => Ok(Some(i)),
            Err(ContainerError::NoSuchContainer(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The engine's events about these kinds of object (`container`,
    /// `network`), from now on.
    pub async fn events(&self, types: &[&str]) -> Result<engine_api::EventStream, ContainerError> {
        let socket = self.docker_socket()?;
        let version = self.api_version.get().map_or(engine_api::API_VERSION, String::as_str);
        engine_api::EventStream::open(socket, version, types)
            .await
            .map_err(|e| ContainerError::Unreachable { host: self.docker_host.clone(), message: e.to_string() })
    }

    /// Resolves a reference to an open namespace and its identity.
    pub async fn resolve(&self, reference: &ContainerRef) -> Result<Resolved, ContainerError> {
        let shown = reference.to_string();
        match reference {
            ContainerRef::Pid(pid) => {
                let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
                let (fd, id) = open_ns_file(&path, &shown, ContainerError::NoSuchProcess(shown.clone()))?;
                Ok(Resolved {
                    identity: Identity {
                        reference: reference.clone(),
                        id: shown,
                        name: None,
                        pid: Some(*pid),
                        netns: id,
                    },
                    netns: fd,
                })
            }
            ContainerRef::Netns(name) => {
                let (fd, id) =
                    open_ns_file(&netns::path_of(name), &shown, ContainerError::NoSuchNamespace(shown.clone()))?;
                Ok(Resolved {
                    identity: Identity {
                        reference: reference.clone(),
                        id: shown,
                        name: Some(name.clone()),
                        pid: None,
                        netns: id,
                    },
                    netns: fd,
                })
            }
            ContainerRef::Path(path) => {
                let (fd, id) = open_ns_file(path, &shown, ContainerError::NoSuchNamespace(shown.clone()))?;
                Ok(Resolved {
                    identity: Identity { reference: reference.clone(), id: shown, name: None, pid: None, netns: id },
                    netns: fd,
                })
            }
            ContainerRef::Docker(name) => {
                let info = self.inspect(name).await?;
                let pid = info.state.pid;
                if !info.state.running || pid <= 0 {
                    return Err(ContainerError::NotRunning(name.clone()));
                }
                let pid = u32::try_from(pid).map_err(|_| ContainerError::NotRunning(name.clone()))?;
                let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
                // The process may exit between inspect and open: then the
                // container is not running any more.
                let (fd, id) = open_ns_file(&path, name, ContainerError::NotRunning(name.clone()))?;
                let full_id = if info.id.is_empty() { name.clone() } else { info.id };
                let cname = Some(info.name.trim_start_matches('/').to_owned()).filter(|n| !n.is_empty());
                Ok(Resolved {
                    identity: Identity {
                        reference: reference.clone(),
                        id: full_id,
                        name: cname,
                        pid: Some(pid),
                        netns: id,
                    },
                    netns: fd,
                })
            }
        }
    }

    /// The current namespace of a reference, or `None` when the container
    /// is gone or stopped. Other failures (Docker unreachable) are errors:
    /// "cannot tell" must never read as "gone".
    pub async fn current_netns(&self, reference: &ContainerRef) -> Result<Option<NetnsId>, ContainerError> {
        match self.resolve(reference).await {
            Ok(r) => Ok(Some(r.identity.netns)),
            Err(
                ContainerError::NoSuchContainer(_)
                | ContainerError::NotRunning(_)
                | ContainerError::NoSuchProcess(_)
                | ContainerError::NoSuchNamespace(_),
            ) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(ContainerRef::parse("web_worker").ok(), Some(ContainerRef::Docker("web_worker".into())));
        assert_eq!(ContainerRef::parse("pid:42").ok(), Some(ContainerRef::Pid(42)));
        assert_eq!(ContainerRef::parse("netns:c1").ok(), Some(ContainerRef::Netns("c1".into())));
        assert_eq!(ContainerRef::parse("/proc/1/ns/net").ok(), Some(ContainerRef::Path("/proc/1/ns/net".into())));
        for bad in ["", "pid:", "pid:x", "pid:0", "netns:", "netns:a b", "-x", "a b", "a:b"] {
            assert!(ContainerRef::parse(bad).is_err(), "{bad:?}");
        }
        for s in ["web_worker", "pid:42", "netns:c1", "/run/netns/x"] {
            assert_eq!(ContainerRef::parse(s).map(|r| r.to_string()).ok().as_deref(), Some(s));
        }
    }

    #[test]
    fn netns_id_round_trip() {
        let id = NetnsId { dev: 4, ino: 4026532281, cookie: Some(4242) };
        assert_eq!(id.to_string(), "4:4026532281:4242");
        assert_eq!(id.to_string().parse::<NetnsId>(), Ok(id));
        let old = NetnsId { dev: 4, ino: 4026532281, cookie: None };
        assert_eq!(old.to_string().parse::<NetnsId>(), Ok(old));
        assert!("4".parse::<NetnsId>().is_err());
        assert!("4:5:6:7".parse::<NetnsId>().is_err());
    }
}
