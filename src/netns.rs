//! Named network namespaces (`/run/netns/NAME`), kept the way `ip netns`
//! keeps them, so `ip netns exec NAME ...` works on what ovsnet made.
//!
//! A namespace outlives the thread that made it through a bind mount of
//! `/proc/thread-self/ns/net` onto `/run/netns/NAME`. Entering a namespace
//! (`setns`) changes the calling *thread*, so it is only ever done for a
//! synchronous call that returns the thread to its own namespace before
//! anything else runs on it ([`with`]), on a std thread made for the
//! purpose ([`run_in`], for long blocking work), or in a child process
//! between fork and exec.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

/// Where named namespaces live, as with `ip netns`.
pub const NETNS_RUN_DIR: &str = "/run/netns";

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("bad namespace name {0:?}: use 1-64 characters of [A-Za-z0-9_.-]")]
    BadName(String),
    #[error("network namespace {0} already exists")]
    Exists(String),
    #[error("network namespace {0} does not exist")]
    NotFound(String),
    #[error("network namespace {name}: {op}: {source}")]
    Sys {
        name: String,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("thread in network namespace panicked")]
    ThreadPanicked,
}

fn sys(name: &str, op: &'static str) -> impl FnOnce(nix::Error) -> NetnsError + use<> {
    let name = name.to_owned();
    move |e| NetnsError::Sys { name, op, source: std::io::Error::from(e) }
}

fn io(name: &str, op: &'static str) -> impl FnOnce(std::io::Error) -> NetnsError + use<> {
    let name = name.to_owned();
    move |source| NetnsError::Sys { name, op, source }
}

/// Checks a namespace name: it becomes a file name under `/run/netns`.
pub fn validate_name(name: &str) -> Result<(), NetnsError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok { Ok(()) } else { Err(NetnsError::BadName(name.to_owned())) }
}

/// The path of a named namespace.
pub fn path_of(name: &str) -> PathBuf {
    Path::new(NETNS_RUN_DIR).join(name)
}

/// Whether a named namespace exists.
pub fn exists(name: &str) -> bool {
    validate_name(name).is_ok() && path_of(name).exists()
}

/// Lists named namespaces.
pub fn list() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(NETNS_RUN_DIR) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect();
    names.sort();
    names
}

/// Makes `/run/netns` a shared mount point, as `ip netns add` does, so
/// that namespaces mounted there show in every mount namespace.
fn prepare_run_dir() -> Result<(), NetnsError> {
    let dir = NETNS_RUN_DIR;
    std::fs::create_dir_all(dir).map_err(io(dir, "create /run/netns"))?;
    let shared = || mount(None::<&str>, dir, None::<&str>, MsFlags::MS_SHARED | MsFlags::MS_REC, None::<&str>);
    match shared() {
        Ok(()) => Ok(()),
        Err(nix::Error::EINVAL) => {
            // Not a mount point yet: bind it onto itself, then share it.
            mount(Some(dir), dir, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                .map_err(sys(dir, "bind /run/netns"))?;
            shared().map_err(sys(dir, "share /run/netns"))
        }
        Err(e) => Err(sys(dir, "share /run/netns")(e)),
    }
}

/// Creates a named network namespace with only `lo` in it (down, as
/// `ip netns add` leaves it).
pub fn create(name: &str) -> Result<(), NetnsError> {
    validate_name(name)?;
    prepare_run_dir()?;
    let path = path_of(name);
    // create_new: refuse to reuse a name, as `ip netns add` does.
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(NetnsError::Exists(name.to_owned()));
        }
        Err(e) => return Err(io(name, "create mount point")(e)),
    }
    let owned = name.to_owned();
    let target = path.clone();
    let result = std::thread::spawn(move || -> Result<(), NetnsError> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(sys(&owned, "unshare"))?;
        mount(Some("/proc/thread-self/ns/net"), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(sys(&owned, "bind mount"))
    })
    .join()
    .map_err(|_| NetnsError::ThreadPanicked)
    .and_then(|r| r);
    if result.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    result
}

/// Deletes a named namespace. Processes still inside keep it alive until
/// they exit, as with `ip netns delete`.
pub fn delete(name: &str) -> Result<(), NetnsError> {
    validate_name(name)?;
    let path = path_of(name);
    if !path.exists() {
        return Err(NetnsError::NotFound(name.to_owned()));
    }
    match umount2(&path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(sys(name, "unmount")(e)),
    }
    std::fs::remove_file(&path).map_err(io(name, "remove mount point"))
}

/// Opens a namespace file (a named one, a `/proc/PID/ns/net`, or any bind
/// mount of one).
pub fn open_path(path: &Path) -> Result<OwnedFd, NetnsError> {
    let shown = path.display().to_string();
    File::open(path).map(OwnedFd::from).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            NetnsError::NotFound(shown.clone())
        } else {
            io(&shown, "open")(e)
        }
    })
}

/// Opens a named namespace.
pub fn open(name: &str) -> Result<OwnedFd, NetnsError> {
    validate_name(name)?;
    open_path(&path_of(name))
}

/// Runs the synchronous `f` on the calling thread inside the namespace
/// `ns`, then puts the thread back into its own namespace (also when `f`
/// panics). Nothing else can run on the thread meanwhile, so this is safe
/// on a tokio worker too, and it costs two `setns` calls instead of a
/// thread: what opening sockets in a container's namespace needs. A thread
/// that cannot go back aborts the process rather than go on in the wrong
/// namespace. For long blocking work use [`run_in`].
pub fn with<F, R>(ns: impl AsFd, f: F) -> Result<R, NetnsError>
where
    F: FnOnce() -> R,
{
    let home = open_path(Path::new("/proc/thread-self/ns/net"))?;
    setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(sys("(fd)", "setns"))?;
    /// Returns the thread to `0` when dropped.
    struct Home(OwnedFd);
    impl Drop for Home {
        fn drop(&mut self) {
            if let Err(e) = setns(self.0.as_fd(), CloneFlags::CLONE_NEWNET) {
                eprintln!("ovsnet: cannot return a thread to its network namespace ({e}); aborting");
                std::process::abort();
            }
        }
    }
    let _home = Home(home);
    Ok(f())
}

/// Runs `f` on a fresh thread inside the namespace `ns`, and returns its
/// result. The caller's thread never changes namespace.
pub fn run_in<F, R>(ns: &OwnedFd, f: F) -> Result<R, NetnsError>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(sys("(fd)", "setns"))?;
                Ok(f())
            })
            .join()
            .map_err(|_| NetnsError::ThreadPanicked)?
    })
}

/// Makes `cmd` start inside the namespace `ns` (setns between fork and exec).
/// `ns` must stay open until the command is spawned.
pub fn command_in(cmd: &mut Command, ns: &OwnedFd) {
    let raw = ns.as_raw_fd();
    // SAFETY: setns is async-signal-safe; the closure touches nothing but
    // the raw fd, which the caller keeps open until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            let fd = std::os::fd::BorrowedFd::borrow_raw(raw);
            setns(fd, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(validate_name("ovsnet-h1-c1").is_ok());
        assert!(validate_name("a.b_c").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", &"x".repeat(65)] {
            assert!(matches!(validate_name(bad), Err(NetnsError::BadName(_))), "{bad:?}");
        }
    }
}
