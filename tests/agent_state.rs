//! Database rows to pipeline state, without a database: a monitor cache
//! fed with `update2` JSON as ovsdb-server sends it.

use std::sync::Arc;

use ovsnet::agent::{HostAccess, NetworkOpt, StateOptions, state_from_cache};
use ovsnet::ovsdb::Cache;
use ovsnet::ovsdb::schema::DatabaseSchema;
use ovsnet::pipeline::{TunnelType, vni_for};
use serde_json::json;

fn cache() -> Cache {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ovsdb-schemas/vswitch.ovsschema");
    let schema = DatabaseSchema::parse(&std::fs::read_to_string(path).expect("schema")).expect("parse");
    Cache::new(Arc::new(schema))
}

fn ids(pairs: &[(&str, &str)]) -> serde_json::Value {
    json!(["map", pairs.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()])
}

const U: [&str; 10] = [
    "00000000-0000-0000-0000-000000000001",
    "00000000-0000-0000-0000-000000000002",
    "00000000-0000-0000-0000-000000000003",
    "00000000-0000-0000-0000-000000000004",
    "00000000-0000-0000-0000-000000000005",
    "00000000-0000-0000-0000-000000000006",
    "00000000-0000-0000-0000-000000000007",
    "00000000-0000-0000-0000-000000000008",
    "00000000-0000-0000-0000-000000000009",
    "00000000-0000-0000-0000-00000000000a",
];

fn uuid(i: usize) -> serde_json::Value {
    json!(["uuid", U[i]])
}

/// obr0 with its internal port, two attached endpoints (one on "blue",
/// one with a MAC set by hand), a flow-based GRE port, an endpoint of
/// another bridge, and one without an ofport yet.
fn rows() -> serde_json::Value {
    json!({
        "Bridge": {
            U[0]: {"initial": {"name": "obr0", "ports": ["set", [uuid(1), uuid(2), uuid(3), uuid(4), uuid(9)]]}},
            U[5]: {"initial": {"name": "other", "ports": ["set", []]}}
        },
        "Port": {
            U[1]: {"initial": {"name": "obr0", "interfaces": uuid(6)}},
            U[2]: {"initial": {"name": "veth-a", "interfaces": uuid(7)}},
            U[3]: {"initial": {"name": "veth-b", "interfaces": uuid(8)}},
            U[4]: {"initial": {"name": "gre0", "interfaces": ["set", [["uuid", "00000000-0000-0000-0000-0000000000aa"]]]}},
            U[9]: {"initial": {"name": "veth-c", "interfaces": ["set", [["uuid", "00000000-0000-0000-0000-0000000000bb"]]]}}
        },
        "Interface": {
            U[6]: {"initial": {"name": "obr0", "type": "internal", "ofport": 65534, "mac_in_use": "02:aa:bb:cc:dd:ee"}},
            U[7]: {"initial": {"name": "veth-a", "ofport": 1, "external_ids": ids(&[("ovsnet-bridge", "obr0"), ("ovsnet-ip", "10.5.0.2/24"), ("ovsnet-mac", "0a:58:0a:05:00:02")])}},
            U[8]: {"initial": {"name": "veth-b", "ofport": 2, "external_ids": ids(&[("ovsnet-bridge", "obr0"), ("ovsnet-ip", "10.6.0.2/16"), ("ovsnet-mac", "02:00:00:00:00:0b"), ("ovsnet-network", "blue")])}},
            "00000000-0000-0000-0000-0000000000aa": {"initial": {"name": "gre0", "type": "gre", "ofport": 7, "options": ids(&[("remote_ip", "flow"), ("key", "flow")])}},
            "00000000-0000-0000-0000-0000000000bb": {"initial": {"name": "veth-c", "ofport": -1, "external_ids": ids(&[("ovsnet-bridge", "obr0"), ("ovsnet-ip", "10.5.0.3/24")])}}
        }
    })
}

#[test]
fn endpoints_networks_tunnels_and_host_from_rows() {
    let mut c = cache();
    c.apply_update2(&rows()).expect("apply");
    let opts = StateOptions { bridge: "obr0".into(), ..Default::default() };
    let (st, warnings) = state_from_cache(&c, &opts);
    assert_eq!(st.local_endpoints.len(), 2, "{st:?}");
    let a = &st.local_endpoints[0];
    assert_eq!((a.id.as_str(), a.network.as_str(), a.ofport), ("veth-a", "default", 1));
    let b = &st.local_endpoints[1];
    assert_eq!((b.network.as_str(), b.mac), ("blue", ovsnet::net::Mac([2, 0, 0, 0, 0, 0x0b])));
    assert_eq!(st.network("blue").expect("blue").cidrs[0].to_string(), "10.6.0.0/16");
    assert_eq!(st.network("default").expect("default").vni, vni_for("default"));
    assert_eq!(st.tunnel_ofports.get(&TunnelType::Gre), Some(&7));
    assert!(st.bridge_local.is_none(), "host access is off by default");
    assert!(warnings.iter().any(|w| w.contains("veth-c") && w.contains("ofport")), "{warnings:?}");

    // Networks from the command line win; host access joins the one holding its address.
    let opts = StateOptions {
        bridge: "obr0".into(),
        networks: vec![NetworkOpt::parse("default=10.5.0.0/16,vni=42").expect("opt")],
        host: Some(HostAccess { ip: "10.5.0.1".parse().expect("ip"), prefix: 16, network: None }),
        uplink: false,
    };
    let (st, _) = state_from_cache(&c, &opts);
    let d = st.network("default").expect("default");
    assert_eq!((d.vni, d.cidrs.len(), d.cidrs[0].to_string()), (42, 1, "10.5.0.0/16".to_owned()));
    let host = st.bridge_local.expect("host access");
    assert_eq!((host.network.as_str(), host.mac), ("default", ovsnet::net::Mac([2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee])));

    // Another bridge sees none of it.
    let (st, _) = state_from_cache(&c, &StateOptions { bridge: "other".into(), ..Default::default() });
    assert!(st.local_endpoints.is_empty() && st.tunnel_ofports.is_empty());
    let (_, w) = state_from_cache(&c, &StateOptions { bridge: "nope".into(), ..Default::default() });
    assert!(w[0].contains("not found"));
}

#[test]
fn network_options_parse_or_say_why_not() {
    let n = NetworkOpt::parse("red=10.1.2.3/24").expect("ok");
    assert_eq!((n.name.as_str(), n.cidr.to_string(), n.vni), ("red", "10.1.2.0/24".to_owned(), None));
    assert_eq!(NetworkOpt::parse("red=10.1.0.0/16,vni=5").expect("ok").vni, Some(5));
    for bad in [
        "red",
        "=10.0.0.0/8",
        "red=10.0.0.0",
        "red=10.0.0.0/8,vni=0",
        "red=10.0.0.0/8,vni=16777216",
        "red=10.0.0.0/8,mtu=5",
        "red=fd00::/64",
    ] {
        assert!(NetworkOpt::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_claim_gives_an_interface_its_external_ids_before_the_database_does() {
    let mut c = cache();
    c.apply_update2(&rows()).expect("apply");
    let opts = StateOptions { bridge: "obr0".into(), ..Default::default() };
    // gre0 is a tunnel and veth-c has no ofport: a claim on veth-a only
    // changes veth-a, and a claim on a port that is not there changes nothing.
    let claim = |ip: &str| {
        [("ovsnet-bridge", "obr0"), ("ovsnet-ip", ip), ("ovsnet-network", "green")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let mut claims = ovsnet::agent::Claims::new();
    claims.insert("veth-a".into(), claim("10.7.0.9/24"));
    claims.insert("not-there".into(), claim("10.7.0.10/24"));
    let (st, _) = ovsnet::agent::state_from_cache_with(&c, &opts, &claims);
    assert_eq!(st.local_endpoints.len(), 2);
    let a = st.local_endpoints.iter().find(|e| e.id == "veth-a").expect("veth-a");
    assert_eq!((a.ip.to_string(), a.network.as_str(), a.ofport), ("10.7.0.9".to_owned(), "green", 1));
    // The MAC follows the claimed address when the claim names none.
    assert_eq!(a.mac, ovsnet::net::Mac::from_ipv4("10.7.0.9".parse().expect("ip")));
    assert!(st.local_endpoints.iter().all(|e| e.ip.to_string() != "10.7.0.10"));
}
