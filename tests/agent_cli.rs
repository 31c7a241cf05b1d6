//! `ovsnet flows` and host access, against a real Open vSwitch.

mod common;
mod common_agent;
mod common_attach;

use std::process::Command;
use std::sync::atomic::Ordering::Relaxed;

use common::{vsctl, wait_for};
use common_agent::{BR, InProcessAgent, Lab, ns_run, ping};
use ovsnet::agent::HostAccess;

fn flows(lab: &Lab, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ovsnet"))
        .arg(format!("--db={}", lab.sbx.db_remote()))
        .args(["flows", BR])
        .arg(format!("--switch={}", lab.sbx.mgmt_socket(BR).display()))
        .args(args)
        .output()
        .expect("ovsnet flows");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn flows_desired_installed_and_diff_agree_with_ovs_ofctl() {
    let Some(mut lab) = Lab::new() else { return };
    let a = lab.attach("fl-a", "10.68.0.2/24", None);
    lab.attach("fl-b", "10.68.0.3/24", None);
    let desired = flows(&lab, &["--desired"]);
    assert_eq!(desired.lines().count(), 25, "{desired}");
    assert!(desired.lines().all(|l| l.starts_with("cookie=0xa5e") && l.contains("table=")), "{desired}");
    // Before any agent: the bridge's own NORMAL flow is all there is.
    let diff = flows(&lab, &["--diff"]);
    assert!(diff.lines().any(|l| l.starts_with("-") && l.contains("actions=NORMAL")), "{diff}");
    assert_eq!(diff.lines().filter(|l| l.starts_with('+')).count(), 25, "{diff}");
    // The same as JSON: each flow with its table, priority, cookie and text.
    let json: serde_json::Value =
        serde_json::from_str(&flows(&lab, &["--desired", "--format=json"])).expect("flows --format json");
    let listed: Vec<&str> = json.as_array().expect("array").iter().map(|f| f["flow"].as_str().expect("flow")).collect();
    assert_eq!(listed, desired.lines().collect::<Vec<_>>());
    assert!(json.as_array().expect("array").iter().all(|f| f["table"].is_u64() && f["priority"].is_u64()));
    let d: serde_json::Value =
        serde_json::from_str(&flows(&lab, &["--diff", "--format=json"])).expect("flows --diff --format json");
    assert_eq!(d["add"].as_array().map(Vec::len), Some(25), "{d}");
    assert!(
        d["remove"]
            .as_array()
            .expect("remove")
            .iter()
            .any(|f| f["flow"].as_str().is_some_and(|t| t.contains("actions=NORMAL")))
    );

    // Make the bridge the agent's first: OVS flushes a bridge's flows when
    // its fail mode changes with no controller connected.
    let ovsnet::agent::Listen::Unix(sock) = lab.listen() else { unreachable!() };
    vsctl(&lab.sbx, &["set-fail-mode", BR, "secure", "--", "set-controller", BR, &format!("unix:{}", sock.display())]);
    // ovs-ofctl accepts the desired flows as they are printed.
    let file = lab.sbx.dir().join("desired.flows");
    std::fs::write(&file, &desired).expect("write");
    let st = Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow13", "--bundle", "add-flows"])
        .arg(format!("unix:{}", lab.sbx.mgmt_socket(BR).display()))
        .arg(&file)
        .status()
        .expect("ovs-ofctl");
    assert!(st.success());
    assert_eq!(flows(&lab, &["--diff"]), "", "nothing left to change");
    assert_eq!(flows(&lab, &["--installed"]), desired, "read back as rendered");
    // The agent finds nothing to send.
    let agent = InProcessAgent::start(lab.options());
    agent.wait_connected();
    assert_eq!(agent.stats.flow_mods.load(Relaxed), 0);
    wait_for(10, "ping", || ping(&a, "10.68.0.3"));
}

#[test]
fn host_access_through_the_bridge_port_is_configurable() {
    let Some(mut lab) = Lab::new() else { return };
    let a = lab.attach("ha-a", "10.69.0.2/24", None);
    lab.attach("ha-b", "10.69.0.3/24", None);
    let host = lab.sbx.netns().to_owned();
    assert!(ns_run(&host, &["ip", "addr", "add", "10.69.0.1/24", "dev", BR]));
    assert!(ns_run(&host, &["ip", "link", "set", BR, "up"]));
    // Off: the host cannot reach its containers.
    let mut agent = InProcessAgent::start(lab.options());
    agent.wait_connected();
    wait_for(10, "ping a -> b", || ping(&a, "10.69.0.3"));
    assert!(!ping(&host, "10.69.0.2"));
    agent.stop().expect("stop");
    // On.
    let mut opts = lab.options();
    opts.state.host = Some(HostAccess { ip: "10.69.0.1".parse().expect("ip"), prefix: 24, network: None });
    let agent = InProcessAgent::start(opts);
    agent.wait_connected();
    // The bridge port as a third endpoint: 4 flows, plus its own ARP and
    // neighbor flows (its MAC is not derived from its address).
    assert_eq!(agent.stats.flow_mods.load(Relaxed), 4 + 2 + 1, "and the broadcast flow now includes LOCAL");
    wait_for(10, "host -> container", || ping(&host, "10.69.0.2"));
    assert!(ping(&a, "10.69.0.1"), "container -> host");
    let mac = vsctl(&lab.sbx, &["get", "Interface", BR, "mac_in_use"]);
    assert!(lab.dump_flows().contains(&format!("dl_src={}", mac.trim().trim_matches('"'))));
}
