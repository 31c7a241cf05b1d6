//! The agent across failures: kill -9 under a continuous ping, restarts of
//! ovs-vswitchd and ovsdb-server, a clean restart with nothing changed,
//! flows someone else added, and incremental changes.

mod common;
mod common_agent;
mod common_attach;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use common::{ofctl, wait_for};
use common_agent::{BR, ChildAgent, InProcessAgent, Lab, ping};

/// A free loopback TCP port (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn scrape(port: u16) -> String {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return String::new() };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn field(line: &str, key: &str) -> Option<u64> {
    line.split(&format!("{key}=")).nth(1)?.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

#[test]
fn kill_9_under_ping_loses_nothing_and_restart_sends_nothing() {
    let Some(mut lab) = Lab::new() else { return };
    let a = lab.attach("k9-a", "10.62.0.2/24", None);
    let _b = lab.attach("k9-b", "10.62.0.3/24", None);
    let port = free_port();
    let mut agent = ChildAgent::start(&lab, &["--metrics", &format!("127.0.0.1:{port}")]);
    let first = agent.wait_switch_reconcile();
    assert_eq!(field(&first, "sent"), Some(25), "{first}");
    wait_for(10, "ping a -> b", || ping(&a, "10.62.0.3"));
    // Metrics while it runs.
    let mut text = String::new();
    wait_for(10, "metrics", || {
        text = scrape(port);
        metric(&text, "ovsnet_agent_flows_installed") == Some(25.0)
    });
    assert_eq!(metric(&text, "ovsnet_agent_endpoints"), Some(2.0), "{text}");
    assert_eq!(metric(&text, "ovsnet_agent_flows_desired"), Some(25.0));
    assert_eq!(metric(&text, "ovsnet_agent_switch_connected"), Some(1.0));
    assert_eq!(metric(&text, "ovsnet_agent_db_connected"), Some(1.0));
    assert_eq!(metric(&text, "ovsnet_agent_flow_mods_total"), Some(25.0));
    assert!(text.contains("ovsnet_agent_reconcile_seconds"), "{text}");

    // 400 pings, 10 ms apart; the agent dies and comes back meanwhile.
    let pinger = Command::new("ip")
        .args(["netns", "exec", &a, "ping", "-q", "-i", "0.01", "-c", "400", "-W", "1", "10.62.0.3"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("ping");
    std::thread::sleep(Duration::from_millis(500));
    agent.kill9();
    assert_eq!(lab.agent_flow_count(), 25, "flows stay with no controller (fail_mode=secure)");
    std::thread::sleep(Duration::from_millis(500));
    let again = ChildAgent::start(&lab, &[]);
    let line = again.wait_switch_reconcile();
    let out = pinger.wait_with_output().expect("ping output");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("400 packets transmitted, 400 received"), "{report}");
    assert_eq!(field(&line, "sent"), Some(0), "an unchanged state sends zero flow_mods: {line}");
    assert_eq!(field(&line, "installed"), Some(25), "{line}");
}

#[test]
fn sigterm_stops_cleanly_and_leaves_the_flows() {
    let Some(mut lab) = Lab::new() else { return };
    let a = lab.attach("st-a", "10.63.0.2/24", None);
    let _b = lab.attach("st-b", "10.63.0.3/24", None);
    let mut agent = ChildAgent::start(&lab, &[]);
    agent.wait_switch_reconcile();
    let status = agent.term();
    assert!(status.success(), "{status:?}");
    assert_eq!(lab.agent_flow_count(), 25);
    assert!(ping(&a, "10.63.0.3"), "the data plane does not need the agent");
}

#[test]
fn vswitchd_restart_gets_its_flows_back_within_a_second() {
    let Some(mut lab) = Lab::new() else { return };
    let a = lab.attach("vr-a", "10.64.0.2/24", None);
    let _b = lab.attach("vr-b", "10.64.0.3/24", None);
    let agent = InProcessAgent::start(lab.options());
    agent.wait_connected();
    wait_for(10, "ping", || ping(&a, "10.64.0.3"));
    lab.sbx.kill_vswitchd();
    let connects = agent.stats.switch_connects.load(Relaxed);
    lab.sbx.start_vswitchd().expect("restart ovs-vswitchd");
    let start = Instant::now();
    wait_for(10, "flows back", || {
        std::fs::metadata(lab.sbx.mgmt_socket(BR)).is_ok()
            && agent.stats.switch_connects.load(Relaxed) > connects
            && lab.agent_flow_count() == 25
    });
    let took = start.elapsed();
    eprintln!("flows back {took:?} after ovs-vswitchd started");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    wait_for(10, "ping after restart", || ping(&a, "10.64.0.3"));
}

#[test]
fn ovsdb_restart_reconnects_and_resyncs() {
    let Some(mut lab) = Lab::new() else { return };
    let a = lab.attach("dr-a", "10.65.0.2/24", None);
    let _b = lab.attach("dr-b", "10.65.0.3/24", None);
    let agent = InProcessAgent::start(lab.options());
    agent.wait_connected();
    wait_for(10, "flows", || lab.agent_flow_count() == 25);
    lab.sbx.stop_ovsdb();
    wait_for(15, "the agent sees the database gone", || agent.stats.db_connected.load(Relaxed) == 0);
    lab.sbx.start_ovsdb().expect("restart ovsdb-server");
    wait_for(20, "the agent reconnects", || agent.stats.db_connected.load(Relaxed) == 1);
    // A change after the restart reaches the switch: the monitor is back.
    let c = lab.attach("dr-c", "10.65.0.4/24", None);
    wait_for(20, "flows for the new endpoint", || lab.agent_flow_count() == 29);
    wait_for(10, "ping new endpoint", || ping(&c, "10.65.0.2"));
    assert!(ping(&a, "10.65.0.3"));
}

#[test]
fn reconcile_removes_strangers_and_sends_only_differences() {
    let Some(mut lab) = Lab::new() else { return };
    let a = lab.attach("rc-a", "10.66.0.2/24", None);
    let _b = lab.attach("rc-b", "10.66.0.3/24", None);
    let mut agent = InProcessAgent::start(lab.options());
    agent.wait_connected();
    assert_eq!(agent.stats.flow_mods.load(Relaxed), 25);
    agent.stop().expect("stop");

    // Nothing changed: a new agent sends zero flow_mods.
    let mut agent = InProcessAgent::start(lab.options());
    agent.wait_connected();
    assert_eq!(agent.stats.flow_mods.load(Relaxed), 0);
    assert_eq!(agent.stats.noop_reconciles.load(Relaxed), 1);
    agent.stop().expect("stop");

    // Someone adds flows to the agent's tables and changes one of its own;
    // a flow in a table the agent does not use is left alone.
    ofctl(&lab.sbx, "add-flow", BR, &["table=10,priority=200,ip,actions=NORMAL"]);
    ofctl(&lab.sbx, "add-flow", BR, &["table=30,priority=100,reg6=0x1,dl_dst=02:00:00:00:00:01,actions=output:1"]);
    ofctl(&lab.sbx, "add-flow", BR, &["table=77,priority=1,actions=drop"]);
    let before = lab.dump_flows();
    let own = before
        .lines()
        .find(|l| l.contains("table=0,") && l.contains("in_port=1 "))
        .expect("classify flow for port 1")
        .to_owned();
    let cookie = own.split("cookie=").nth(1).and_then(|c| c.split(',').next()).expect("cookie");
    ofctl(&lab.sbx, "add-flow", BR, &[&format!("cookie={cookie},table=0,priority=100,in_port=1,actions=drop")]);
    assert!(!ping(&a, "10.66.0.3"), "the tampered flow breaks a");
    let agent = InProcessAgent::start(lab.options());
    agent.wait_connected();
    assert_eq!(agent.stats.flow_mods.load(Relaxed), 3, "two deletes, one add");
    let after = lab.dump_flows();
    assert!(!after.contains("actions=NORMAL"), "{after}");
    assert!(!after.contains("02:00:00:00:00:01"), "{after}");
    assert!(after.contains("table=77"), "not the agent's table: left alone");
    wait_for(10, "ping repaired", || ping(&a, "10.66.0.3"));

    // A new endpoint: only its flows and the changed broadcast flow.
    let sent = agent.stats.flow_mods.load(Relaxed);
    let c = lab.attach("rc-c", "10.66.0.4/24", None);
    wait_for(20, "flows for c", || lab.agent_flow_count() == 29);
    wait_for(5, "stats", || agent.stats.flow_mods.load(Relaxed) >= sent + 5);
    assert_eq!(agent.stats.flow_mods.load(Relaxed) - sent, 5, "4 for c, 1 flood chunk replaced");
    wait_for(10, "ping c", || ping(&c, "10.66.0.2"));
}
