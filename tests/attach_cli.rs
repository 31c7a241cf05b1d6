//! The `ovsnet` binary: real Docker containers attached by name (as
//! `pipework obr0 web_worker 172.16.42.10/24` is used), `docker restart`
//! then attach again, batch mode, and bad input.

mod common;
mod common_attach;

use std::process::{Command, Output};

use common::{OvsSandbox, vsctl, wait_for};
use common_attach::{Container, Ns, docker, with_engine};

const BR: &str = "obr0";

fn switch() -> Option<OvsSandbox> {
    let sbx = common::ovs()?;
    vsctl(&sbx, &["add-br", BR, "--", "set", "bridge", BR, "datapath_type=netdev"]);
    Some(sbx)
}

fn ovsnet(sbx: &OvsSandbox, docker_host: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ovsnet"));
    cmd.arg("--db").arg(sbx.db_remote()).arg("--netns").arg(sbx.netns()).args(args);
    match docker_host {
        Some(h) => cmd.env("DOCKER_HOST", h),
        None => cmd.env("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
    };
    cmd.output().expect("run ovsnet")
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "ovsnet failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ports(sbx: &OvsSandbox) -> Vec<String> {
    vsctl(sbx, &["list-ports", BR]).lines().map(str::to_owned).collect()
}

fn docker_ping(c: &Container, ip: &str) -> bool {
    with_engine(|e| e.run_cli(&["exec", &c.name, "ping", "-c", "1", "-W", "1", ip])).is_ok()
}

#[test]
fn docker_containers_by_name_restart_and_replug() {
    let Some(host) = docker() else { return };
    let Some(sbx) = switch() else { return };
    let web = Container::sleeper("web_worker");
    let db = Container::sleeper("db_worker");
    let out = ok(&ovsnet(&sbx, Some(&host), &["attach", BR, &web.name, "172.16.42.10/24"]));
    assert!(out.starts_with("attached: "), "{out}");
    ok(&ovsnet(&sbx, Some(&host), &["attach", BR, &db.name, "172.16.42.11/24"]));
    // Again: nothing changes.
    let out = ok(&ovsnet(&sbx, Some(&host), &["attach", BR, &web.name, "172.16.42.10/24"]));
    assert!(out.starts_with("already attached: "), "{out}");
    assert_eq!(ports(&sbx).len(), 2);
    wait_for(10, "web pings db", || docker_ping(&web, "172.16.42.11"));

    let list = ok(&ovsnet(&sbx, Some(&host), &["--format", "json", "attachments", BR]));
    let v: serde_json::Value = serde_json::from_str(&list).expect("json");
    assert_eq!(v.as_array().map(Vec::len), Some(2));
    assert!(v.as_array().into_iter().flatten().all(|a| a["alive"] == true), "{v}");
    assert!(v.to_string().contains(&web.name));

    // docker restart: new namespace, the old veth died with the old one.
    with_engine(|e| e.run_cli(&["restart", "-t", "0", &web.name])).expect("docker restart");
    let list = ok(&ovsnet(&sbx, Some(&host), &["attachments", BR]));
    assert!(list.contains("restarted (stale)"), "{list}");
    let out = ok(&ovsnet(&sbx, Some(&host), &["attach", BR, &web.name, "172.16.42.10/24"]));
    assert!(out.starts_with("re-plugged"), "{out}");
    assert_eq!(ports(&sbx).len(), 2);
    wait_for(10, "web pings db after restart", || docker_ping(&web, "172.16.42.11"));

    // The db container goes away for good: gc removes its port.
    with_engine(|e| e.remove(&[&db.name])).expect("docker rm");
    let out = ok(&ovsnet(&sbx, Some(&host), &["gc", BR]));
    assert!(out.contains("172.16.42.11/24"), "{out}");
    assert_eq!(ports(&sbx).len(), 1);
    // Detach by name.
    ok(&ovsnet(&sbx, Some(&host), &["detach", BR, &web.name]));
    assert!(ports(&sbx).is_empty());
}

#[test]
fn batch_attaches_many_over_one_connection() {
    let Some(sbx) = switch() else { return };
    let namespaces: Vec<Ns> = (0..20).map(|_| Ns::new("bt")).collect();
    let mut text = String::from("# bridge container ip\n");
    for (i, ns) in namespaces.iter().enumerate() {
        text.push_str(&format!("{BR} netns:{} 10.97.0.{}/24 --ifname eth{}\n", ns.0, i + 2, 1 + i % 3));
    }
    text.push_str(&format!("{BR} netns:{} 10.97.0.2/24\n", namespaces[1].0)); // IP taken: fails alone
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("batch.txt");
    std::fs::write(&file, &text).expect("write");
    // Chunks of 7: three commits, the failing line in the last one.
    let out = ovsnet(&sbx, None, &["attach", "--chunk", "7", "--batch", file.to_str().expect("utf8")]);
    assert!(!out.status.success(), "one line fails, so the batch reports failure");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 21, "{stdout}");
    assert_eq!(lines.iter().filter(|l| l.contains(": attached: ")).count(), 20);
    assert!(lines[20].starts_with("line 22: error: 10.97.0.2 is already attached"), "{}", lines[20]);
    assert_eq!(ports(&sbx).len(), 20);
}

#[test]
fn bad_input_gets_one_line_and_changes_nothing() {
    let Some(sbx) = switch() else { return };
    let c = Ns::new("bad");
    let cref = format!("netns:{}", c.0);
    let long = "x".repeat(16);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["attach", BR, &cref, "10.98.0.2/33"], "prefix"),
        (vec!["attach", BR, &cref, "10.98.0.2"], "IP/PREFIX"),
        (vec!["attach", BR, &cref, "10.98.0.2/24", "--mac", "zz:zz"], "MAC"),
        (vec!["attach", BR, &cref, "10.98.0.2/24", "--mac", "01:00:5e:00:00:01"], "multicast"),
        (vec!["attach", BR, &cref, "10.98.0.2/24", "--mtu", "10"], "MTU"),
        (vec!["attach", BR, "netns:nosuch-ns-zz", "10.98.0.2/24"], "no such network namespace"),
        (vec!["attach", BR, "nosuch_container", "10.98.0.2/24"], "docker: cannot reach"),
        (vec!["attach", "nobr0", &cref, "10.98.0.2/24"], "bridge nobr0 does not exist"),
        (vec!["attach", BR, &cref, "10.98.0.2/24", "--ifname", &long], "interface name"),
        (vec!["attach", BR, &cref, "10.98.0.2/24", "--route", "10.0.0.1/8"], "host bits"),
    ];
    let links_before = Command::new("ip").args(["-n", sbx.netns(), "-o", "link"]).output().expect("ip").stdout;
    for (args, needle) in cases {
        let out = ovsnet(&sbx, None, &args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("ovsnet: "), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err} lacks {needle:?}");
    }
    assert!(ports(&sbx).is_empty());
    let links_after = Command::new("ip").args(["-n", sbx.netns(), "-o", "link"]).output().expect("ip").stdout;
    assert_eq!(links_before, links_after);
    let inside = Command::new("ip").args(["-n", &c.0, "-o", "link"]).output().expect("ip").stdout;
    assert_eq!(String::from_utf8_lossy(&inside).lines().count(), 1);
}
