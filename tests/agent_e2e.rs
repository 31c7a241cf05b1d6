//! The agent against a real Open vSwitch: namespace containers attached
//! to a netdev obr0, real packets through the agent's pipeline.

mod common;
mod common_agent;
mod common_attach;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use common::{vsctl, wait_for};
use common_agent::{BR, InProcessAgent, Lab, ns_run, ping};

#[test]
fn ping_tcp_arp_by_flows_and_isolation() {
    let Some(mut lab) = Lab::new() else { return };
    let a = lab.attach("ag-a", "10.61.0.2/24", None);
    let b = lab.attach("ag-b", "10.61.0.3/24", None);
    let c = lab.attach("ag-c", "10.61.0.4/24", Some("blue"));
    let agent = InProcessAgent::start(lab.options());
    agent.wait_connected();
    // The bridge is the agent's now.
    let ctl = vsctl(&lab.sbx, &["get-controller", BR]);
    assert!(ctl.contains("ovsnet-obr0.sock"), "{ctl}");
    assert_eq!(vsctl(&lab.sbx, &["get-fail-mode", BR]).trim(), "secure");
    // The agent wakes ovs-vswitchd through the bridge's management socket
    // after its HELLO; that connection handshakes and closes in order, so
    // the switch has nothing to warn about.
    let log = std::fs::read_to_string(lab.sbx.dir().join("ovs-vswitchd.log")).unwrap_or_default();
    assert!(!log.contains("connection dropped"), "{log}");
    // 3 endpoints x 4, 2 networks x 4 (ARP, broadcast, flood chunk,
    // routing neighbor), 10 misses, the router's drop and lb_select's 2
    // passes.
    wait_for(10, "flows installed", || lab.agent_flow_count() == 12 + 8 + 13);
    assert_eq!(agent.stats.flows_installed.load(Relaxed), 33);

    wait_for(10, "ping a -> b", || ping(&a, "10.61.0.3"));
    assert!(ping(&b, "10.61.0.2"));
    // ARP answered by the responder flow; no packet-in.
    assert!(lab.packets("arp_op=1") >= 2, "{}", lab.dump_flows());
    assert_eq!(agent.stats.packet_ins.load(Relaxed), 0);
    // Blue's c shares the /24 but not the network.
    assert!(!ping(&c, "10.61.0.2"));
    assert!(!ping(&a, "10.61.0.4"));

    // TCP a -> b.
    let fd = ovsnet::netns::open(&b).expect("ns");
    let listener = ovsnet::netns::run_in(&fd, || TcpListener::bind("10.61.0.3:5301")).expect("ns").expect("bind");
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = vec![0u8; 200_000];
        s.read_exact(&mut buf).expect("read");
        s.write_all(&buf).expect("echo");
    });
    let afd = ovsnet::netns::open(&a).expect("ns");
    let mut s = ovsnet::netns::run_in(&afd, || {
        TcpStream::connect_timeout(&"10.61.0.3:5301".parse().expect("addr"), Duration::from_secs(5))
    })
    .expect("ns")
    .expect("connect");
    let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    s.write_all(&data).expect("write");
    let mut back = vec![0u8; data.len()];
    s.read_exact(&mut back).expect("read");
    assert_eq!(back, data);
    server.join().expect("server");
    assert_eq!(agent.stats.packet_ins.load(Relaxed), 0);

    // ARP claiming b's address from a's port: dropped by port security,
    // never answered.
    let drops = |lab: &Lab| lab.packets_all(&["table=10,", "priority=0 actions=drop"]);
    let spoof = ovsnet::netlink::arp::gratuitous_arp(
        ovsnet::net::Mac::from_ipv4("10.61.0.2".parse().expect("ip")).0,
        "10.61.0.3".parse().expect("ip"),
    );
    let (drops_before, answered_before) = (drops(&lab), lab.packets("arp_op=1"));
    common_agent::send_frames(&a, "eth1", &spoof, 20);
    wait_for(10, "spoofed ARP dropped in table 10", || drops(&lab) >= drops_before + 20);
    assert!(lab.packets("arp_op=1") < answered_before + 20, "{}", lab.dump_flows());

    // Spoofing: a takes another IP, then another MAC: nothing gets through.
    assert!(ns_run(&a, &["ip", "addr", "add", "10.61.0.9/24", "dev", "eth1"]));
    assert!(!ns_run(&a, &["ping", "-c", "2", "-W", "1", "-I", "10.61.0.9", "10.61.0.3"]));
    assert!(ns_run(&a, &["ip", "addr", "del", "10.61.0.9/24", "dev", "eth1"]));
    assert!(ping(&a, "10.61.0.3"), "back to its own address, it works again");
    assert!(ns_run(&a, &["ip", "link", "set", "eth1", "address", "02:00:00:00:00:99"]));
    assert!(!ns_run(&a, &["ping", "-c", "2", "-W", "1", "10.61.0.3"]));
    // Stopping the agent leaves the flows: b still reaches... itself's peers.
    let mut agent = agent;
    agent.stop().expect("clean stop");
    assert_eq!(lab.agent_flow_count(), 33);
}
