//! Daemons ovsnet starts (ovsdb-server, ovs-vswitchd, dockerd, agents) are
//! stopped by pid, never by name: several instances run side by side.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A helper program (ovsdb-tool, ovsdb-server --detach, ...) that failed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("run {program}: {source} (is Open vSwitch installed?)")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {stderr}")]
    Failed { program: String, status: std::process::ExitStatus, stderr: String },
}

/// Runs a helper program to completion; its stderr becomes the error.
pub fn run_tool(cmd: &mut Command) -> Result<(), ToolError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| ToolError::Spawn { program: program.clone(), source })?;
    if !out.status.success() {
        return Err(ToolError::Failed {
            program,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

/// Reads a daemon's pidfile, polling briefly: with `--detach` the daemon
/// writes it before its parent exits, so this normally succeeds at once.
pub fn read_pidfile(path: &Path, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(pid) = std::fs::read_to_string(path).ok().and_then(|t| t.trim().parse::<i32>().ok()) {
            return Some(pid);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether a process is running (a zombie awaiting its reaper is not).
pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Stops `pid`: SIGTERM, then SIGKILL after 5 s.
pub fn stop_pid(pid: i32) {
    if kill(Pid::from_raw(pid), Signal::SIGTERM).is_err() {
        return;
    }
    if !wait_gone(pid, Duration::from_secs(5)) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        wait_gone(pid, Duration::from_secs(5));
    }
}

/// Kills `pid` with SIGKILL, as a crash would.
pub fn kill_pid(pid: i32) {
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    wait_gone(pid, Duration::from_secs(5));
}

/// Waits until `pid` is gone; false if it still runs after `limit`.
pub fn wait_gone(pid: i32, limit: Duration) -> bool {
    let start = Instant::now();
    while process_alive(pid) {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}
