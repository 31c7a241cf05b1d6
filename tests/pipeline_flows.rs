//! The pipeline without a switch: declaration, rendering, validation,
//! diff, and packets through the in-memory flow table.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ovsnet::net::{IpNet, Mac};
use ovsnet::openflow::action::OFPP_LOCAL;
use ovsnet::openflow::text::{format_flow, parse_flow};
use ovsnet::openflow::{Field, FlowStats};
use ovsnet::pipeline::{
    BridgeLocal, FlowTable, LocalEndpoint, Packet, Pipeline, PipelineError, ROUTER_MAC, RemoteBlock, RemoteEndpoint,
    Router, State, TunnelType, desired_flows, diff, installed_from_stats, vni_for,
};

fn mac_from_ip(ip: Ipv4Addr) -> Mac {
    Mac::from_ipv4(ip)
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("ip")
}

fn net(s: &str) -> IpNet {
    IpNet::parse_network(s).expect("cidr")
}

fn ep(id: &str, network: &str, ofport: u32, addr: &str) -> LocalEndpoint {
    LocalEndpoint { id: id.into(), network: network.into(), ofport, ip: ip(addr), mac: mac_from_ip(ip(addr)) }
}

const GRE: u32 = 100;
const STATIC_MAC: Mac = Mac([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);
const HOST_MAC: Mac = Mac([0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee]);

/// Two networks (red 10.1.0.0/24, blue 10.2.0.0/24), three local
/// endpoints (one with a MAC set by hand), host access on red, a remote
/// block and a remote endpoint on red over GRE.
fn state() -> State {
    let mut s = State::default();
    s.ensure_network("red", net("10.1.0.0/24"));
    s.ensure_network("blue", net("10.2.0.0/24"));
    s.local_endpoints =
        vec![ep("a", "red", 1, "10.1.0.2"), ep("b", "red", 2, "10.1.0.3"), ep("c", "blue", 3, "10.2.0.2")];
    s.local_endpoints.push(LocalEndpoint { mac: STATIC_MAC, ..ep("d", "red", 4, "10.1.0.4") });
    s.bridge_local = Some(BridgeLocal { network: "red".into(), ip: ip("10.1.0.1"), mac: HOST_MAC });
    s.tunnel_ofports.insert(TunnelType::Gre, GRE);
    s.remote_blocks = vec![RemoteBlock {
        network: "red".into(),
        cidr: net("10.1.0.128/25"),
        tun_dst: ip("192.168.50.2"),
        tunnel: TunnelType::Gre,
    }];
    s.remote_endpoints = vec![RemoteEndpoint {
        network: "red".into(),
        ip: ip("10.1.0.77"),
        mac: Mac([0x02, 0, 0, 0, 0, 0x77]),
        tun_dst: ip("192.168.50.3"),
        tunnel: TunnelType::Gre,
    }];
    s
}

fn table() -> FlowTable {
    let p = Pipeline::builtin().expect("pipeline");
    let d = desired_flows(&p, &state()).expect("render");
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    FlowTable::from_set(&d.flows)
}

fn m(s: &str) -> Mac {
    mac_from_ip(ip(s))
}

#[test]
fn the_shipped_pipeline_declares_its_tables() {
    let p = Pipeline::builtin().expect("pipeline parses");
    let ids: Vec<u8> = p.tables.iter().map(|t| t.id).collect();
    assert_eq!(ids, vec![0, 10, 20, 21, 23, 24, 25, 28, 30, 40]);
    let names: Vec<&str> = p.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "classify",
            "port_security",
            "arp_responder",
            "dns",
            "lb",
            "lb_select",
            "router",
            "neighbor",
            "forwarding",
            "flood"
        ]
    );
    for t in &p.tables {
        assert!(!t.purpose.is_empty(), "table {} has no purpose", t.id);
        assert!(!t.templates.is_empty());
    }
    assert!(p.table(0).expect("t0").gotos.contains(&10));
}

#[test]
fn an_empty_state_is_one_miss_flow_per_table_and_the_router_drop() {
    let p = Pipeline::builtin().expect("pipeline");
    let d = desired_flows(&p, &State::default()).expect("render");
    let flows = d.flows.to_flow_mods();
    let text: Vec<String> = flows.iter().map(format_flow).collect();
    assert_eq!(flows.len(), 13, "{text:#?}");
    // Every table drops what matches nothing, but the dns and lb tables,
    // which pass what is not a query or a service's on, and the router,
    // which passes what is not for the router MAC on to forwarding.
    let misses: Vec<&String> = text.iter().filter(|t| t.contains("priority=0")).collect();
    assert_eq!(misses.len(), 10, "{text:#?}");
    assert!(
        flows
            .iter()
            .filter(|f| f.priority == 0 && ![21, 23, 25].contains(&f.table_id))
            .all(|f| f.instructions.is_empty())
    );
    // lb_select passes connections already tracked on.
    assert!(has_flow(&text, "table=24, priority=90,ct_state=+est+trk actions=goto_table:28"), "{text:#?}");
    assert!(has_flow(&text, "table=21, priority=0 actions=goto_table:23"), "{text:#?}");
    assert!(has_flow(&text, "table=25, priority=0 actions=goto_table:30"), "{text:#?}");
    assert!(has_flow(&text, "table=25, priority=60,dl_dst=0a:58:00:00:00:01 actions=drop"), "{text:#?}");
}

fn has_flow(text: &[String], needle: &str) -> bool {
    text.iter().any(|t| t.contains(needle))
}

#[test]
fn each_endpoint_costs_four_flows() {
    let p = Pipeline::builtin().expect("pipeline");
    let mut s = State::default();
    s.ensure_network("default", net("10.0.0.0/16"));
    let base = desired_flows(&p, &s).expect("render").flows.len();
    for i in 0..50u32 {
        let a = Ipv4Addr::from(u32::from(ip("10.0.1.0")) + i);
        s.local_endpoints.push(LocalEndpoint {
            id: format!("p{i}"),
            network: "default".into(),
            ofport: i + 1,
            ip: a,
            mac: mac_from_ip(a),
        });
    }
    let d = desired_flows(&p, &s).expect("render");
    assert_eq!(d.flows.len(), base + 50 * ovsnet::pipeline::FLOWS_PER_ENDPOINT + 1, "and one broadcast chunk");
    assert_eq!(d.per_kind.get("endpoint"), Some(&200));
    // Per table: classify 1, port security 2, ARP 0, forwarding 1.
    let per = d.flows.per_table();
    assert_eq!(per[&0], 50 + 1);
    assert_eq!(per[&10], 100 + 1);
    assert_eq!(per[&20], 1 + 1, "one ARP flow for the whole network");
    assert_eq!(per[&30], 50 + 2);
    assert_eq!(per[&40], 1 + 1);
}

#[test]
fn dns_queries_to_the_gateway_go_up_through_the_ports_meter() {
    let p = Pipeline::builtin().expect("pipeline");
    let mut s = State::default();
    s.ensure_network("blue", net("10.0.0.0/24"));
    s.networks[0].gateway = Some(ip("10.0.0.1"));
    for (i, a) in ["10.0.0.2", "10.0.0.3"].iter().enumerate() {
        s.local_endpoints.push(LocalEndpoint {
            id: format!("p{i}"),
            network: "blue".into(),
            ofport: 7 + i as u32,
            ip: ip(a),
            mac: mac_from_ip(ip(a)),
        });
    }
    let off = desired_flows(&p, &s).expect("render");
    assert_eq!(off.per_kind.get("dns_punt"), None, "no DNS flows unless the agent answers DNS");
    assert!(ovsnet::pipeline::dns_meters(&s).is_empty());
    s.dns = true;
    let d = desired_flows(&p, &s).expect("render");
    assert_eq!(d.per_kind.get("dns_punt"), Some(&4), "UDP and TCP per port");
    assert_eq!(d.flows.len(), off.flows.len() + 4);
    assert_eq!(ovsnet::pipeline::dns_meters(&s), vec![7, 8]);
    let text: Vec<String> = d.flows.to_flow_mods().iter().map(format_flow).collect();
    assert!(
        has_flow(
            &text,
            "table=21, priority=100,udp,in_port=7,nw_dst=10.0.0.1,tp_dst=53 actions=meter:7,CONTROLLER:65535"
        ),
        "{text:#?}"
    );
    assert!(has_flow(&text, "priority=100,tcp,in_port=8,nw_dst=10.0.0.1,tp_dst=53 actions=meter:8,"), "{text:#?}");
    // Only the dns table may send to the controller.
    let bad = Pipeline::parse(&ovsnet::pipeline::decl::PIPELINE_TEXT.replace("controller = yes\n", "")).expect("parse");
    assert!(matches!(desired_flows(&bad, &s), Err(ovsnet::pipeline::PipelineError::Violation { .. })));
}

#[test]
fn rendering_the_rich_state_gives_the_expected_flows() {
    let p = Pipeline::builtin().expect("pipeline");
    let d = desired_flows(&p, &state()).expect("render");
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    // 5 local endpoints (4 + host) x 4, static MAC ARP and neighbor for d,
    // host and the remote endpoint (3 x 2), per network: ARP + broadcast +
    // one flood chunk + neighbor (4 x 2), tunnel classify (2), remote block
    // 1, remote endpoint 1, misses 10, the router's drop and lb_select's
    // two passes.
    assert_eq!(d.flows.len(), 20 + 6 + 8 + 2 + 1 + 1 + 13);
    let text: Vec<String> = d.flows.to_flow_mods().iter().map(format_flow).collect();
    let red = vni_for("red");
    let has = |needle: &str| text.iter().any(|t| t.contains(needle));
    assert!(
        has(&format!("priority=100,in_port=LOCAL actions=load:{red:#x}->NXM_NX_REG6[],goto_table:10")),
        "{text:#?}"
    );
    assert!(has("set_field:192.168.50.2->tun_dst"), "{text:#?}");
    assert!(
        has(&format!(
            "priority=95,reg6={red:#x},dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=load:0->NXM_NX_REG5[],resubmit(,40)"
        )),
        "{text:#?}"
    );
    assert!(has("table=40, priority=100,reg5=0") || has("reg5=0"), "{text:#?}");
    assert!(has("actions=output:1,output:2,output:4,LOCAL"), "{text:#?}");
    // Every flow carries ovsnet's cookie tag.
    assert!(d.flows.flows.values().all(|v| v.cookie & ovsnet::pipeline::COOKIE_MASK == ovsnet::pipeline::COOKIE_TAG));
}

#[test]
fn ping_between_endpoints_of_one_network() {
    let t = table();
    let tr = t.trace(&Packet::ipv4(1, m("10.1.0.2"), m("10.1.0.3"), ip("10.1.0.2"), ip("10.1.0.3")));
    assert_eq!(tr.ports(), vec![2], "{tr:?}");
    let back = t.trace(&Packet::ipv4(2, m("10.1.0.3"), m("10.1.0.2"), ip("10.1.0.3"), ip("10.1.0.2")));
    assert_eq!(back.ports(), vec![1]);
    // To the endpoint with a MAC set by hand.
    assert_eq!(t.trace(&Packet::ipv4(1, m("10.1.0.2"), STATIC_MAC, ip("10.1.0.2"), ip("10.1.0.4"))).ports(), vec![4]);
    // To the host, through the bridge's internal port.
    assert_eq!(
        t.trace(&Packet::ipv4(1, m("10.1.0.2"), HOST_MAC, ip("10.1.0.2"), ip("10.1.0.1"))).ports(),
        vec![OFPP_LOCAL]
    );
    // From the host.
    assert_eq!(
        t.trace(&Packet::ipv4(OFPP_LOCAL, HOST_MAC, m("10.1.0.2"), ip("10.1.0.1"), ip("10.1.0.2"))).ports(),
        vec![1]
    );
}

#[test]
fn networks_are_isolated() {
    let t = table();
    // c (blue) to a (red), with a's right MAC and IP: dropped.
    let tr = t.trace(&Packet::ipv4(3, m("10.2.0.2"), m("10.1.0.2"), ip("10.2.0.2"), ip("10.1.0.2")));
    assert!(tr.dropped(), "{tr:?}");
    // a to c: dropped.
    assert!(t.trace(&Packet::ipv4(1, m("10.1.0.2"), m("10.2.0.2"), ip("10.1.0.2"), ip("10.2.0.2"))).dropped());
    // c asking ARP for a red address gets no answer (blue's block only).
    assert!(t.trace(&Packet::arp_request(3, m("10.2.0.2"), ip("10.2.0.2"), ip("10.1.0.2"))).dropped());
    // Broadcast from blue reaches no red port.
    let bc = t.trace(&Packet::ipv4(3, m("10.2.0.2"), Mac([0xff; 6]), ip("10.2.0.2"), ip("10.2.0.255")));
    assert!(bc.dropped(), "c is blue's only port: {bc:?}");
}

#[test]
fn arp_is_answered_by_flows_with_the_derived_mac() {
    let t = table();
    let tr = t.trace(&Packet::arp_request(1, m("10.1.0.2"), ip("10.1.0.2"), ip("10.1.0.3")));
    assert_eq!(tr.ports(), vec![1], "answered back on the asking port: {tr:?}");
    let r = &tr.outputs[0].1;
    assert_eq!(r.get(Field::ArpOp), 2);
    assert_eq!(r.mac(Field::EthSrc), m("10.1.0.3"));
    assert_eq!(r.mac(Field::EthDst), m("10.1.0.2"));
    assert_eq!(r.mac(Field::ArpSha), m("10.1.0.3"));
    assert_eq!(r.mac(Field::ArpTha), m("10.1.0.2"));
    assert_eq!(r.ip(Field::ArpSpa), ip("10.1.0.3"));
    assert_eq!(r.ip(Field::ArpTpa), ip("10.1.0.2"));
    assert!(tr.hit_table(20));
    // A MAC set by hand is answered by its own flow.
    let tr = t.trace(&Packet::arp_request(1, m("10.1.0.2"), ip("10.1.0.2"), ip("10.1.0.4")));
    assert_eq!(tr.outputs[0].1.mac(Field::ArpSha), STATIC_MAC);
    assert_eq!(tr.outputs[0].1.mac(Field::EthSrc), STATIC_MAC);
    // So is the host's address, with the bridge's MAC.
    let tr = t.trace(&Packet::arp_request(2, m("10.1.0.3"), ip("10.1.0.3"), ip("10.1.0.1")));
    assert_eq!(tr.outputs[0].1.mac(Field::ArpSha), HOST_MAC);
    // And the host asking for a container.
    let tr = t.trace(&Packet::arp_request(OFPP_LOCAL, HOST_MAC, ip("10.1.0.1"), ip("10.1.0.2")));
    assert_eq!(tr.ports(), vec![OFPP_LOCAL]);
    assert_eq!(tr.outputs[0].1.mac(Field::ArpSha), m("10.1.0.2"));
}

#[test]
fn spoofing_gets_nothing_through() {
    let t = table();
    // Own IP, another MAC.
    assert!(
        t.trace(&Packet::ipv4(1, Mac([2, 9, 9, 9, 9, 9]), m("10.1.0.3"), ip("10.1.0.2"), ip("10.1.0.3"))).dropped()
    );
    // Own MAC, another IP (b's).
    assert!(t.trace(&Packet::ipv4(1, m("10.1.0.2"), m("10.1.0.3"), ip("10.1.0.9"), ip("10.1.0.3"))).dropped());
    // ARP claiming b's address.
    assert!(t.trace(&Packet::arp_request(1, m("10.1.0.2"), ip("10.1.0.3"), ip("10.1.0.4"))).dropped());
    // ARP with someone else's sender MAC.
    let mut p = Packet::arp_request(1, m("10.1.0.2"), ip("10.1.0.2"), ip("10.1.0.3"));
    p.set(Field::ArpSha, 0x0a58_0a01_0003);
    assert!(t.trace(&p).dropped());
    // A port with no endpoint.
    assert!(t.trace(&Packet::ipv4(9, m("10.1.0.2"), m("10.1.0.3"), ip("10.1.0.2"), ip("10.1.0.3"))).dropped());
    // IPv6 and other ethertypes.
    let mut v6 = Packet::ipv4(1, m("10.1.0.2"), m("10.1.0.3"), ip("10.1.0.2"), ip("10.1.0.3"));
    v6.set(Field::EthType, 0x86dd);
    assert!(t.trace(&v6).dropped());
}

#[test]
fn remote_blocks_and_endpoints_go_over_the_tunnel() {
    let t = table();
    let red = u128::from(vni_for("red"));
    let tr = t.trace(&Packet::ipv4(1, m("10.1.0.2"), m("10.1.0.200"), ip("10.1.0.2"), ip("10.1.0.200")));
    assert_eq!(tr.ports(), vec![GRE], "{tr:?}");
    let out = &tr.outputs[0].1;
    assert_eq!(out.ip(Field::TunDst), ip("192.168.50.2"));
    assert_eq!(out.get(Field::TunId), red);
    // A remote endpoint with its own MAC.
    let tr = t.trace(&Packet::ipv4(1, m("10.1.0.2"), Mac([2, 0, 0, 0, 0, 0x77]), ip("10.1.0.2"), ip("10.1.0.77")));
    assert_eq!(tr.ports(), vec![GRE]);
    assert_eq!(tr.outputs[0].1.ip(Field::TunDst), ip("192.168.50.3"));
    // From the tunnel, for a local endpoint of the tun_id's network.
    let inbound = Packet::ipv4(0, m("10.1.0.200"), m("10.1.0.2"), ip("10.1.0.200"), ip("10.1.0.2")).from_tunnel(
        GRE,
        vni_for("red").into(),
        ip("192.168.50.2"),
    );
    assert_eq!(t.trace(&inbound).ports(), vec![1]);
    // With blue's tun_id it cannot reach a red endpoint.
    let wrong = Packet::ipv4(0, m("10.1.0.200"), m("10.1.0.2"), ip("10.1.0.200"), ip("10.1.0.2")).from_tunnel(
        GRE,
        vni_for("blue").into(),
        ip("192.168.50.2"),
    );
    assert!(t.trace(&wrong).dropped());
    // Never back out of the tunnel it came from.
    let hairpin = Packet::ipv4(0, m("10.1.0.200"), m("10.1.0.201"), ip("10.1.0.200"), ip("10.1.0.201")).from_tunnel(
        GRE,
        vni_for("red").into(),
        ip("192.168.50.2"),
    );
    assert!(t.trace(&hairpin).dropped());
}

#[test]
fn broadcast_stays_within_the_network() {
    let t = table();
    let tr = t.trace(&Packet::ipv4(1, m("10.1.0.2"), Mac([0xff; 6]), ip("10.1.0.2"), ip("10.1.0.255")));
    let mut ports = tr.ports();
    ports.sort_unstable();
    assert_eq!(ports, vec![2, 4, OFPP_LOCAL], "not back to 1, not to blue's 3, not to the tunnel");
    // Unknown unicast is dropped.
    assert!(
        t.trace(&Packet::ipv4(1, m("10.1.0.2"), Mac([2, 1, 2, 3, 4, 5]), ip("10.1.0.2"), ip("10.1.0.3"))).dropped()
    );
}

#[test]
fn a_flow_that_breaks_its_table_is_an_error() {
    let bad_match = "[table 0 classify]\nmatch = in_port\ngoto = 10\nmiss = drop\nflow endpoint = priority=100,in_port={ofport},dl_src={mac} actions=goto_table:10\n[table 10 x]\nmatch = in_port\nmiss = drop\n";
    let p = Pipeline::parse(bad_match).expect("parses");
    let err = desired_flows(&p, &state()).expect_err("dl_src is not declared for table 0");
    assert!(matches!(err, PipelineError::Violation { line: 5, .. }), "{err}");
    assert!(err.to_string().contains("may not match eth_src"), "{err}");

    let bad_goto = "[table 0 a]\nmatch = in_port\ngoto = 10\nflow pipeline = priority=0 actions=goto_table:20\n[table 10 b]\n[table 20 c]\n";
    let p = Pipeline::parse(bad_goto).expect("parses");
    let err = desired_flows(&p, &State::default()).expect_err("goto 20 undeclared");
    assert!(err.to_string().contains("may not go to table 20"), "{err}");

    let to_controller = "[table 0 a]\nflow pipeline = priority=0 actions=CONTROLLER:65535\n";
    let p = Pipeline::parse(to_controller).expect("parses");
    assert!(desired_flows(&p, &State::default()).is_err());

    // Declaration errors.
    for (text, why) in [
        ("[table 10 a]\ngoto = 5\n", "only go forward"),
        ("[table 0 a]\nmatch = no_such_field\n", "unknown field"),
        ("[table 0 a]\nflow endpoint = priority=1,tun_dst={tun_dst} actions=drop\n", "not available"),
        ("[table 0 a]\nflow mystery = priority=1 actions=drop\n", "unknown flow kind"),
        ("flow pipeline = priority=0 actions=drop\n", "must come first"),
        ("[table 0 a]\ngoto = 7\n", "undeclared"),
        ("", "no tables"),
    ] {
        let err = Pipeline::parse(text).expect_err(text);
        assert!(err.to_string().contains(why), "{text:?}: {err}");
    }
}

#[test]
fn diff_sends_nothing_for_an_unchanged_switch_and_removes_strangers() {
    let p = Pipeline::builtin().expect("pipeline");
    let desired = desired_flows(&p, &state()).expect("render").flows;
    assert!(diff(&desired, &desired).is_empty());

    // What the switch would return: flow stats of the same flows.
    let mut stats: Vec<FlowStats> = desired
        .to_flow_mods()
        .into_iter()
        .map(|f| FlowStats {
            table_id: f.table_id,
            duration_sec: 1,
            duration_nsec: 0,
            priority: f.priority,
            idle_timeout: 0,
            hard_timeout: 0,
            flags: 0,
            cookie: f.cookie,
            packet_count: 7,
            byte_count: 700,
            r#match: f.r#match,
            instructions: f.instructions,
        })
        .collect();
    let installed = installed_from_stats(&stats, &p.table_ids());
    assert!(diff(&desired, &installed).is_empty());

    // Someone else's flow in table 10, a flow in a table we do not own,
    // and one of ours with its actions changed.
    let stranger = parse_flow("table=10,priority=200,ip actions=NORMAL").expect("flow");
    let elsewhere = parse_flow("table=99,priority=1 actions=drop").expect("flow");
    for f in [stranger, elsewhere] {
        stats.push(FlowStats {
            table_id: f.table_id,
            priority: f.priority,
            cookie: 0,
            r#match: f.r#match,
            instructions: f.instructions,
            ..stats[0].clone()
        });
    }
    let changed = stats.iter_mut().find(|s| s.table_id == 30 && s.priority == 100).expect("a forwarding flow");
    changed.instructions = parse_flow("actions=output:42").expect("flow").instructions;
    let installed = installed_from_stats(&stats, &p.table_ids());
    let d = diff(&desired, &installed);
    assert_eq!(d.delete.len(), 1, "{d:?}");
    assert_eq!(d.add.len(), 1);
    let mods = d.flow_mods();
    assert_eq!((mods[0].table_id, mods[0].priority), (10, 200));
    assert_eq!(mods[0].command, ovsnet::openflow::message::OFPFC_DELETE_STRICT);
    assert_eq!((mods[1].table_id, mods[1].command), (30, ovsnet::openflow::message::OFPFC_ADD));
    // The bytes sent are the codec's encoding of the same flow_mods.
    let sent: Vec<Vec<u8>> = d.messages().collect();
    for (bytes, fm) in sent.iter().zip(&mods) {
        assert_eq!(bytes, &ovsnet::openflow::Message::FlowMod(fm.clone()).encode(0));
    }

    // Applying the diff to the mirror gives the desired set.
    let mut mirror = installed;
    ovsnet::pipeline::diff::apply(&mut mirror, &d);
    assert!(diff(&desired, &mirror).is_empty());
}

#[test]
fn ten_thousand_endpoints_render_quickly() {
    let p = Pipeline::builtin().expect("pipeline");
    let mut s = State::default();
    s.ensure_network("default", net("10.0.0.0/16"));
    for i in 0..10_000u32 {
        let a = Ipv4Addr::from(u32::from(ip("10.0.0.2")) + i);
        s.local_endpoints.push(LocalEndpoint {
            id: format!("p{i}"),
            network: "default".into(),
            ofport: i + 1,
            ip: a,
            mac: mac_from_ip(a),
        });
    }
    let start = std::time::Instant::now();
    let d = desired_flows(&p, &s).expect("render");
    let took = start.elapsed();
    // Per endpoint 4; the network's ARP, broadcast and neighbor flows; 10
    // flood chunks; 10 misses, the router's drop and lb_select's 2 passes.
    assert_eq!(d.flows.len(), 40_000 + 3 + 10 + 13, "10 flood chunks of 1000 ports");
    assert!(took.as_secs() < 20, "took {took:?}");
    let mut seen = BTreeMap::new();
    for v in d.flows.flows.values() {
        *seen.entry(v.cookie).or_insert(0) += 1;
    }
    assert!(seen.len() > 10_000, "cookies per owner");
}

#[test]
fn a_big_network_floods_in_chunks_that_fit_a_message() {
    let p = Pipeline::builtin().expect("pipeline");
    let mut s = State::default();
    s.ensure_network("big", net("10.9.0.0/16"));
    for i in 0..2500u32 {
        let a = Ipv4Addr::from(u32::from(ip("10.9.0.2")) + i);
        s.local_endpoints.push(LocalEndpoint {
            id: format!("p{i}"),
            network: "big".into(),
            ofport: i + 1,
            ip: a,
            mac: mac_from_ip(a),
        });
    }
    let d = desired_flows(&p, &s).expect("render");
    assert_eq!(d.per_kind.get("flood_chunk"), Some(&3));
    let t = FlowTable::from_set(&d.flows);
    let tr = t.trace(&Packet::ipv4(7, m("10.9.0.8"), Mac([0xff; 6]), ip("10.9.0.8"), ip("10.9.255.255")));
    let mut ports = tr.ports();
    ports.sort_unstable();
    let want: Vec<u32> = (1..=2500).filter(|&p| p != 7).collect();
    assert_eq!(ports, want);
    for fm in d.flows.to_flow_mods() {
        assert!(ovsnet::openflow::Message::FlowMod(fm).encode(0).len() <= ovsnet::pipeline::render::MAX_FLOW_MOD);
    }
}

#[test]
fn a_flow_too_big_for_a_message_is_an_error() {
    let outputs: Vec<String> = (1..5000).map(|p| format!("output:{p}")).collect();
    let text = format!("[table 0 a]\nflow pipeline = priority=1 actions={}\n", outputs.join(","));
    let p = Pipeline::parse(&text).expect("parses");
    let err = desired_flows(&p, &State::default()).expect_err("too big");
    assert!(err.to_string().contains("bytes"), "{err}");
}

/// The rich state with gateways (red .254, blue .254) and, with `routed`,
/// red and blue on one router.
fn routed_table(routed: bool) -> FlowTable {
    let mut s = state();
    for n in &mut s.networks {
        n.gateway = Some(if n.name == "red" { ip("10.1.0.254") } else { ip("10.2.0.254") });
    }
    if routed {
        s.routers = vec![Router { name: "r1".into(), networks: vec!["red".into(), "blue".into()] }];
    }
    let p = Pipeline::builtin().expect("pipeline");
    let d = desired_flows(&p, &s).expect("render");
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    FlowTable::from_set(&d.flows)
}

#[test]
fn the_gateway_answers_arp_with_the_router_mac_and_ping() {
    let t = routed_table(false);
    let tr = t.trace(&Packet::arp_request(1, m("10.1.0.2"), ip("10.1.0.2"), ip("10.1.0.254")));
    assert_eq!(tr.ports(), vec![1], "{tr:?}");
    let r = &tr.outputs[0].1;
    assert_eq!((r.get(Field::ArpOp), r.mac(Field::EthSrc), r.mac(Field::ArpSha)), (2, ROUTER_MAC, ROUTER_MAC));
    assert_eq!((r.ip(Field::ArpSpa), r.ip(Field::ArpTpa)), (ip("10.1.0.254"), ip("10.1.0.2")));
    // blue's gateway is not red's to answer.
    assert!(t.trace(&Packet::arp_request(1, m("10.1.0.2"), ip("10.1.0.2"), ip("10.2.0.254"))).dropped());

    let mut echo = Packet::ipv4(1, m("10.1.0.2"), ROUTER_MAC, ip("10.1.0.2"), ip("10.1.0.254"));
    echo.set(Field::Icmpv4Type, 8);
    let tr = t.trace(&echo);
    assert_eq!(tr.ports(), vec![1], "{tr:?}");
    let r = &tr.outputs[0].1;
    assert_eq!((r.mac(Field::EthSrc), r.mac(Field::EthDst)), (ROUTER_MAC, m("10.1.0.2")));
    assert_eq!((r.ip(Field::Ipv4Src), r.ip(Field::Ipv4Dst)), (ip("10.1.0.254"), ip("10.1.0.2")));
    assert_eq!(r.get(Field::Icmpv4Type), 0, "an echo reply");
    // Anything else sent to the router with nowhere to go is dropped.
    let tr = t.trace(&Packet::ipv4(1, m("10.1.0.2"), ROUTER_MAC, ip("10.1.0.2"), ip("10.2.0.2")));
    assert!(tr.dropped(), "red and blue share no router: {tr:?}");
}

#[test]
fn networks_on_one_router_are_routed_with_the_ttl_decremented() {
    let t = routed_table(true);
    // a (red) to c (blue), through the gateway.
    let tr = t.trace(&Packet::ipv4(1, m("10.1.0.2"), ROUTER_MAC, ip("10.1.0.2"), ip("10.2.0.2")));
    assert_eq!(tr.ports(), vec![3], "{tr:?}");
    let r = &tr.outputs[0].1;
    assert_eq!((r.mac(Field::EthSrc), r.mac(Field::EthDst)), (ROUTER_MAC, m("10.2.0.2")));
    assert_eq!(r.get(Field::NwTtl), 63);
    assert_eq!(r.get(Field::Reg6), u128::from(vni_for("blue")), "in blue now");
    // And back.
    assert_eq!(t.trace(&Packet::ipv4(3, m("10.2.0.2"), ROUTER_MAC, ip("10.2.0.2"), ip("10.1.0.2"))).ports(), vec![1]);
    // To an endpoint whose MAC was set by hand: its own MAC.
    let tr = t.trace(&Packet::ipv4(3, m("10.2.0.2"), ROUTER_MAC, ip("10.2.0.2"), ip("10.1.0.4")));
    assert_eq!(tr.ports(), vec![4], "{tr:?}");
    assert_eq!(tr.outputs[0].1.mac(Field::EthDst), STATIC_MAC);
    // To red's remote block: over the tunnel, in red's VNI.
    let tr = t.trace(&Packet::ipv4(3, m("10.2.0.2"), ROUTER_MAC, ip("10.2.0.2"), ip("10.1.0.200")));
    assert_eq!(tr.ports(), vec![GRE], "{tr:?}");
    let r = &tr.outputs[0].1;
    assert_eq!((r.get(Field::TunId), r.ip(Field::TunDst)), (u128::from(vni_for("red")), ip("192.168.50.2")));
    assert_eq!(r.mac(Field::EthDst), m("10.1.0.200"));
    // A TTL that runs out: dropped.
    let mut last = Packet::ipv4(1, m("10.1.0.2"), ROUTER_MAC, ip("10.1.0.2"), ip("10.2.0.2"));
    last.set(Field::NwTtl, 1);
    assert!(t.trace(&last).dropped());
    // Outside every network on the router: dropped.
    assert!(t.trace(&Packet::ipv4(1, m("10.1.0.2"), ROUTER_MAC, ip("10.1.0.2"), ip("10.9.0.2"))).dropped());
    // Switched traffic is untouched by the router: no TTL change.
    let tr = t.trace(&Packet::ipv4(1, m("10.1.0.2"), m("10.1.0.3"), ip("10.1.0.2"), ip("10.1.0.3")));
    assert_eq!((tr.ports(), tr.outputs[0].1.get(Field::NwTtl)), (vec![2], 64));
    // Spoofing stays impossible through the router: a's packet with c's
    // address as its source never leaves a's port.
    assert!(t.trace(&Packet::ipv4(1, m("10.1.0.2"), ROUTER_MAC, ip("10.2.0.2"), ip("10.1.0.3"))).dropped());
}

#[test]
fn egress_leaves_through_the_internal_port_and_replies_find_the_most_specific_network() {
    let mut s = State::default();
    s.ensure_network("wide", net("10.0.0.0/8"));
    s.ensure_network("narrow", net("10.71.0.0/24"));
    s.ensure_network("closed", net("10.72.0.0/24"));
    for n in &mut s.networks {
        n.egress = n.name != "closed";
        n.gateway =
            n.cidrs[0].network().addr.to_string().replace(".0.0.0", ".0.0.1").replace(".0/", ".1/").parse().ok();
    }
    s.local_endpoints = vec![ep("n", "narrow", 1, "10.71.0.11"), ep("c", "closed", 2, "10.72.0.11")];
    let uplink = Mac([0x02, 0, 0, 0, 0, 0xfe]);
    s.uplink = Some(ovsnet::pipeline::Uplink { mac: uplink });
    let p = Pipeline::builtin().expect("pipeline");
    let d = desired_flows(&p, &s).expect("render");
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    let t = FlowTable::from_set(&d.flows);
    // Out: to the router MAC, for no routed network: the internal port.
    let tr = t.trace(&Packet::ipv4(1, m("10.71.0.11"), ROUTER_MAC, ip("10.71.0.11"), ip("203.0.113.10")));
    assert_eq!(tr.ports(), vec![OFPP_LOCAL], "{tr:?}");
    assert_eq!(tr.outputs[0].1.mac(Field::EthDst), uplink);
    // An --internal network has no way out.
    assert!(t.trace(&Packet::ipv4(2, m("10.72.0.11"), ROUTER_MAC, ip("10.72.0.11"), ip("203.0.113.10"))).dropped());
    // Back in from the kernel: the more specific of two nesting networks.
    let reply = Packet::ipv4(OFPP_LOCAL, uplink, m("10.71.0.11"), ip("203.0.113.10"), ip("10.71.0.11"));
    let tr = t.trace(&reply);
    assert_eq!(tr.ports(), vec![1], "{tr:?}");
    assert_eq!(tr.outputs[0].1.get(Field::Reg6), u128::from(vni_for("narrow")));
    // The kernel's ARP for a container is answered with the derived MAC.
    let tr = t.trace(&Packet::arp_request(OFPP_LOCAL, uplink, ip("172.30.0.1"), ip("10.71.0.11")));
    assert_eq!(tr.ports(), vec![OFPP_LOCAL], "{tr:?}");
    assert_eq!(tr.outputs[0].1.mac(Field::ArpSha), m("10.71.0.11"));
    // Nothing from the kernel for the closed network's containers.
    assert!(
        t.trace(&Packet::ipv4(OFPP_LOCAL, uplink, m("10.72.0.11"), ip("203.0.113.10"), ip("10.72.0.11"))).dropped()
    );
}

#[test]
fn a_service_is_two_flows_a_group_and_per_backend_its_way_back() {
    let p = Pipeline::builtin().expect("pipeline");
    let mut s = State::default();
    s.ensure_network("blue", net("10.0.0.0/16"));
    s.tunnel_ofports.insert(ovsnet::pipeline::TunnelType::Vxlan, 9);
    s.local_endpoints.push(LocalEndpoint {
        id: "p1".into(),
        network: "blue".into(),
        ofport: 1,
        ip: ip("10.0.1.2"),
        mac: mac_from_ip(ip("10.0.1.2")),
    });
    let base = desired_flows(&p, &s).expect("render").flows.len();
    s.services.push(ovsnet::pipeline::Service {
        name: "api".into(),
        network: "blue".into(),
        vip: ip("10.0.0.250"),
        port: 80,
        protocol: ovsnet::net::Transport::Tcp,
        group_id: 7,
        backends: vec![ip("10.0.1.2"), ip("10.0.2.2")],
    });
    let d = desired_flows(&p, &s).expect("render");
    assert_eq!(d.per_kind.get("service"), Some(&2), "lb and lb_select");
    assert_eq!(d.per_kind.get("service_backend"), Some(&2));
    assert_eq!(d.per_kind.get("service_backend_tunnel"), Some(&2));
    assert_eq!(d.flows.len(), base + 6);
    let text: Vec<String> = d.flows.to_flow_mods().iter().map(format_flow).collect();
    let vni = vni_for("blue");
    for needle in [
        format!(
            "table=23, priority=100,tcp,reg6={vni:#x},nw_dst=10.0.0.250,tp_dst=80 actions=ct(table=24,zone=NXM_NX_REG6[0..15],nat)"
        ),
        format!(
            "table=24, priority=100,ct_state=+new+trk,tcp,reg6={vni:#x},nw_dst=10.0.0.250,tp_dst=80 actions=group:7"
        ),
        format!(
            "table=23, priority=100,tcp,reg6={vni:#x},nw_src=10.0.2.2,tp_src=80 actions=ct(table=25,zone=NXM_NX_REG6[0..15],nat)"
        ),
        format!(
            "priority=110,tcp,tun_id={vni:#x},in_port=9,nw_src=10.0.2.2,tp_src=80 actions=load:{vni:#x}->NXM_NX_REG6[],goto_table:23"
        ),
    ] {
        assert!(has_flow(&text, &needle), "{needle}\n{text:#?}");
    }
    let groups = ovsnet::pipeline::service_groups(&p, &s).expect("groups");
    let buckets = &groups[&7];
    assert_eq!(buckets.len(), 2);
    let b = ovsnet::openflow::text::format_actions(&buckets[1].actions);
    assert_eq!(b, "ct(commit,table=28,zone=NXM_NX_REG6[0..15],nat(dst=10.0.2.2:80))");
    // A service of a network the host does not know: no flows, no group.
    s.services[0].network = "red".into();
    let d = desired_flows(&p, &s).expect("render");
    assert_eq!(d.flows.len(), base);
    assert!(ovsnet::pipeline::service_groups(&p, &s).expect("groups").is_empty());
}
