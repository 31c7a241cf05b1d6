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
