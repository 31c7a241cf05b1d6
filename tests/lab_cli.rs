//! `ovsnet lab up|status|down` through the binary.

#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

mod common;

use std::process::Command;

fn ovsnet(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ovsnet")).args(args).output().unwrap()
}

#[test]
fn lab_up_status_down() {
    if let Err(e) = ovsnet::sandbox::ovs_installed() {
        assert!(!common::strict(), "CI=true and Open vSwitch is missing: {e}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().to_str().unwrap();
    let name = common::unique_name("lc");
    struct Down(String, String);
    impl Drop for Down {
        fn drop(&mut self) {
            let _ = ovsnet::lab::down(std::path::Path::new(&self.1), &self.0);
        }
    }
    let _down = Down(name.clone(), state.to_owned());
    let out = ovsnet(&[
        "lab",
        "up",
        "--hosts",
        "2",
        "--containers",
        "1",
        "--tunnel",
        "gre",
        "--cluster-members",
        "1",
        "--name",
        &name,
        "--state-dir",
        state,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("{name}-h2-c1")) && text.contains("10.0.2.1/8"), "{text}");
    assert!(ovsnet::netns::exists(&format!("{name}-h1-c1")));
    // Up again with the same name is refused and changes nothing.
    let again = ovsnet(&["lab", "up", "--name", &name, "--state-dir", state]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert!(ovsnet::netns::exists(&format!("{name}-h1-c1")));

    let out = ovsnet(&["lab", "status", "--name", &name, "--state-dir", state]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("2 endpoint(s) in the cluster database"), "{text}");
    assert!(text.contains("all 2 pairs reachable"), "{text}");

    // A container that cannot be reached fails the status, in text and in
    // JSON alike (the matrix is printed either way).
    let c2 = format!("{name}-h2-c1");
    let down = Command::new("ip").args(["netns", "exec", &c2, "ip", "link", "set", "eth1", "down"]).status().unwrap();
    assert!(down.success());
    let out = ovsnet(&["lab", "status", "--name", &name, "--state-dir", state, "--ping-timeout-ms", "300"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unreachable"));
    let out = ovsnet(&[
        "lab",
        "status",
        "--name",
        &name,
        "--state-dir",
        state,
        "--ping-timeout-ms",
        "300",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --format json");
    assert!(v["reachability"].is_object(), "{v}");
    let up = Command::new("ip").args(["netns", "exec", &c2, "ip", "link", "set", "eth1", "up"]).status().unwrap();
    assert!(up.success());

    let out = ovsnet(&["lab", "down", "--name", &name, "--state-dir", state]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("5 namespace(s)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(ovsnet::netns::list().iter().all(|n| !n.starts_with(&format!("{name}-"))));
    let out = ovsnet(&["lab", "status", "--name", &name, "--state-dir", state]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("no lab {name}")));
}
