//! Shared test support: private Open vSwitch instances and oracles.
//!
//! Tests that need Open vSwitch call [`ovs`]. Without OVS installed they
//! are skipped with a message, except under `CI=true`, where a missing
//! OVS fails the run.
#![allow(dead_code, unused_imports)]

use std::process::Command;

pub use ovsnet::sandbox::{OvsSandbox, SandboxOptions, unique_name};

/// Whether this run must not skip anything (CI sets `CI=true`).
pub fn strict() -> bool {
    std::env::var("CI").map(|v| v == "true" || v == "1").unwrap_or(false)
}

/// Starts a private OVS, or returns None (skip) where OVS is missing and
/// this is not CI.
pub fn ovs() -> Option<OvsSandbox> {
    ovs_with(SandboxOptions::default())
}

pub fn ovs_with(opts: SandboxOptions) -> Option<OvsSandbox> {
    if let Err(e) = ovsnet::sandbox::ovs_installed() {
        if strict() {
            panic!("CI=true and Open vSwitch is missing: {e}");
        }
        eprintln!("skipping: {e}");
        return None;
    }
    Some(OvsSandbox::start(opts).expect("start a private Open vSwitch"))
}

/// Runs `ovs-vsctl` against the sandbox (an oracle: the product never does).
pub fn vsctl(sbx: &OvsSandbox, args: &[&str]) -> String {
    let out = Command::new("ovs-vsctl")
        .arg(format!("--db={}", sbx.db_remote()))
        .arg("--timeout=10")
        .args(args)
        .output()
        .expect("run ovs-vsctl");
    assert!(out.status.success(), "ovs-vsctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `ovs-ofctl -O OpenFlow13 CMD unix:BRIDGE.mgmt ARGS...`.
pub fn ofctl(sbx: &OvsSandbox, cmd: &str, bridge: &str, args: &[&str]) -> String {
    let out = Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow13", "--no-names", cmd])
        .arg(format!("unix:{}", sbx.mgmt_socket(bridge).display()))
        .args(args)
        .output()
        .expect("run ovs-ofctl");
    assert!(out.status.success(), "ovs-ofctl {cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `cond` every 10 ms until it holds or `secs` pass.
pub fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < std::time::Duration::from_secs(secs), "timed out after {secs}s waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Clears the `OVSNET_*` variables this process has from `cmd`: the test
/// says what the command is configured with, not the machine.
pub fn without_ovsnet_env(cmd: &mut std::process::Command) -> &mut std::process::Command {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("OVSNET_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// A TCP server in `ns` on `addr`: each connection's peer address is sent
/// on the returned channel, then what the peer sends is echoed until it
/// closes. Runs until the test ends.
pub fn tcp_echo_server(ns: &str, addr: std::net::SocketAddrV4) -> std::sync::mpsc::Receiver<std::net::SocketAddr> {
    let fd = ovsnet::netns::open(ns).expect("open the namespace");
    let listener = ovsnet::netns::run_in(&fd, || std::net::TcpListener::bind(addr))
        .expect("enter the namespace")
        .unwrap_or_else(|e| panic!("listen on {addr}: {e}"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let Ok(peer) = conn.peer_addr() else { continue };
            if tx.send(peer).is_err() {
                return;
            }
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = std::io::Read::read(&mut conn, &mut buf) {
                    if n == 0 || std::io::Write::write_all(&mut conn, &buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    rx
}

/// A TCP connection from the namespace `ns` to `to`.
pub fn connect_from(
    ns: &str,
    to: std::net::SocketAddrV4,
    timeout: std::time::Duration,
) -> std::io::Result<std::net::TcpStream> {
    let fd = ovsnet::netns::open(ns).expect("open the namespace");
    ovsnet::netns::run_in(&fd, || std::net::TcpStream::connect_timeout(&to.into(), timeout))
        .expect("enter the namespace")
}

/// Sends `msg` and reads the echo back.
pub fn echo(conn: &mut std::net::TcpStream, msg: &[u8]) -> bool {
    use std::io::{Read, Write};
    if conn.set_read_timeout(Some(std::time::Duration::from_secs(5))).is_err() {
        return false;
    }
    let mut back = vec![0u8; msg.len()];
    conn.write_all(msg).is_ok() && conn.read_exact(&mut back).is_ok() && back == msg
}
