//! The cluster database against real `ovsdb-server`: the schema, networks,
//! atomic allocation, races between hosts, the monitor, and a 3-member Raft
//! cluster that keeps working with one member killed.

#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ovsnet::cluster::server::{self, ClusterInfo, MemberSpec};
use ovsnet::cluster::{ClusterDb, ClusterError, EndpointSpec, HostSpec, Ipam, NetworkSpec, OwnRow};
use ovsnet::net::IpNet;
use ovsnet::ovsdb::ConnectOptions;

/// Cluster members in a namespace of their own (its own loopback, so
/// parallel tests never collide on ports), stopped and removed on drop.
struct Fixture {
    dir: PathBuf,
    ns: String,
    info: ClusterInfo,
}

impl Fixture {
    fn start(members: usize) -> Option<Fixture> {
        if let Err(e) = ovsnet::sandbox::ovs_installed() {
            assert!(!common::strict(), "CI=true and Open vSwitch is missing: {e}");
            eprintln!("skipping: {e}");
            return None;
        }
        let ns = common::unique_name("ovsnet-cdb-");
        ovsnet::netns::create(&ns).expect("namespace");
        let dir = std::env::temp_dir().join(common::unique_name("ovsnet-cdb-"));
        // Drop cleans up from here, whatever fails below.
        let mut f = Fixture {
            dir: dir.clone(),
            ns: ns.clone(),
            info: ClusterInfo { dir: dir.clone(), model: String::new(), members: vec![] },
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let nl = ovsnet::netlink::Netlink::open_netns(&ns).unwrap();
            nl.lo_up().await.unwrap();
        });
        let mut specs = server::members_on("127.0.0.1".parse().unwrap(), members, 6650).unwrap();
        for s in &mut specs {
            s.netns = Some(ns.clone());
        }
        f.info = server::init(&dir, &specs).expect("cluster init");
        Some(f)
    }

    fn remotes(&self) -> String {
        self.info.unix_remotes()
    }

    fn member(&self, n: usize) -> &MemberSpec {
        &self.info.members[n - 1]
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = server::stop(&self.dir);
        let _ = ovsnet::netns::delete(&self.ns);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

async fn connect(f: &Fixture) -> ClusterDb {
    let mut o = ConnectOptions::default();
    o.timeout = Duration::from_secs(30);
    o.request_timeout = Some(Duration::from_secs(5));
    ClusterDb::connect(&f.remotes(), &o).await.expect("connect to the cluster")
}

fn net(s: &str) -> IpNet {
    IpNet::parse_network(s).unwrap()
}

fn spec(name: &str, cidr: &str, ipam: Ipam) -> NetworkSpec {
    NetworkSpec {
        name: name.into(),
        cidr: net(cidr),
        vni: None,
        ipam,
        mtu: None,
        block_prefix: None,
        underlay: (ipam == Ipam::Fan).then(|| net("172.30.0.0/16")),
        gateway: None,
        internal: false,
        dns_forward: true,
    }
}

fn host(name: &str, ip: &str) -> HostSpec {
    HostSpec {
        name: name.into(),
        underlay_ip: ip.parse().unwrap(),
        tunnel_types: ["vxlan".to_owned(), "gre".to_owned()].into(),
        probe_timeout_ms: 1000,
        external_ids: Default::default(),
    }
}

fn ep(network: &str, host: &str, ip: &str, container: &str) -> EndpointSpec {
    EndpointSpec {
        network: network.into(),
        host: host.into(),
        ip: ip.parse().unwrap(),
        mac: None,
        container: container.into(),
        interface: "eth1".into(),
        external_ids: Default::default(),
    }
}

#[test]
fn schema_is_accepted_by_ovsdb_tool() {
    if ovsnet::sandbox::ovs_installed().is_err() {
        assert!(!common::strict());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let schema = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ovsdb-schemas/ovsnet.ovsschema");
    let out = std::process::Command::new("ovsdb-tool")
        .arg("create")
        .arg(dir.path().join("x.db"))
        .arg(&schema)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = std::process::Command::new("ovsdb-tool").arg("schema-version").arg(&schema).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), "1.3.0");
    // The built-in copy is the file.
    assert_eq!(std::fs::read_to_string(&schema).unwrap(), ovsnet::cluster::SCHEMA);
}

#[test]
fn networks_vnis_and_referential_integrity() {
    let Some(f) = Fixture::start(1) else { return };
    rt().block_on(async {
        let db = connect(&f).await;
        let a = db.create_network(&spec("a", "10.1.0.0/16", Ipam::Static)).await.unwrap();
        let b = db.create_network(&spec("b", "10.2.0.0/16", Ipam::Pool)).await.unwrap();
        assert_eq!((a.vni, b.vni), (1, 2), "lowest free VNIs");
        assert_eq!(b.block_prefix, Some(24));
        assert!(matches!(
            db.create_network(&spec("a", "10.3.0.0/16", Ipam::Static)).await,
            Err(ClusterError::NetworkExists(_))
        ));
        let mut c = spec("c", "10.3.0.0/16", Ipam::Static);
        c.vni = Some(2);
        match db.create_network(&c).await {
            Err(ClusterError::VniInUse { vni: 2, holder }) => assert_eq!(holder, "b"),
            other => panic!("{other:?}"),
        }
        let fan_without_underlay = NetworkSpec { underlay: None, ..spec("f", "10.0.0.0/8", Ipam::Fan) };
        assert!(matches!(db.create_network(&fan_without_underlay).await, Err(ClusterError::BadInput(_))));
        let names: Vec<String> = db.networks().await.unwrap().into_iter().map(|n| n.name).collect();
        assert_eq!(names, ["a", "b"]);

        db.publish_endpoint(&ep("a", "h1", "10.1.0.5", "c1")).await.unwrap();
        match db.delete_network("a").await {
            Err(ClusterError::NetworkInUse { name, endpoints: 1 }) => assert_eq!(name, "a"),
            other => panic!("delete with an endpoint: {other:?}"),
        }
        assert!(matches!(
            db.publish_endpoint(&ep("a", "h1", "10.9.0.5", "c2")).await,
            Err(ClusterError::OutsideNetwork { .. })
        ));
        assert!(db.remove_endpoint("a", "10.1.0.5".parse().unwrap()).await.unwrap());
        db.delete_network("a").await.unwrap();
        assert!(matches!(db.network("a").await, Err(ClusterError::NoNetwork(_))));
        // A freed VNI is reused.
        assert_eq!(db.create_network(&spec("d", "10.4.0.0/16", Ipam::Static)).await.unwrap().vni, 1);
    });
}

#[test]
fn allocation_follows_the_ipam_mode() {
    let Some(f) = Fixture::start(1) else { return };
    rt().block_on(async {
        let db = connect(&f).await;
        db.register_host(&host("h1", "172.30.0.28")).await.unwrap();
        db.register_host(&host("h2", "172.30.0.29")).await.unwrap();
        db.create_network(&spec("fan", "250.0.0.0/8", Ipam::Fan)).await.unwrap();
        db.create_network(&spec("pool", "10.7.0.0/16", Ipam::Pool)).await.unwrap();
        let mut st = spec("st", "192.168.50.0/24", Ipam::Static);
        st.gateway = Some("192.168.50.1".parse().unwrap());
        db.create_network(&st).await.unwrap();

        // Fan: host 172.30.0.28 serves 250.0.28.0/24.
        let e = db.allocate_ip("fan", "h1", "c1", "eth1").await.unwrap();
        assert_eq!(e.ip.to_string(), "250.0.28.1");
        assert_eq!(e.mac, "0a:58:fa:00:1c:01");
        assert_eq!(db.allocate_ip("fan", "h2", "c1", "eth1").await.unwrap().ip.to_string(), "250.0.29.1");
        // Pool: first free blocks, one per host, kept; the network's
        // gateway (its first address, by default) is never handed out.
        assert_eq!(db.allocate_ip("pool", "h1", "c1", "eth1").await.unwrap().ip.to_string(), "10.7.0.2");
        assert_eq!(db.allocate_ip("pool", "h2", "c1", "eth1").await.unwrap().ip.to_string(), "10.7.1.1");
        assert_eq!(db.allocate_ip("pool", "h1", "c2", "eth1").await.unwrap().ip.to_string(), "10.7.0.3");
        // Static: the whole CIDR, skipping the gateway.
        assert_eq!(db.allocate_ip("st", "h2", "c9", "eth1").await.unwrap().ip.to_string(), "192.168.50.2");

        let state = db.state().await.unwrap();
        assert_eq!(state.endpoints.len(), 6);
        let view = ovsnet::cluster::remote_view(&state, "h1");
        let blocks: Vec<String> = view.blocks.iter().map(|b| format!("{} {} {}", b.host, b.network, b.cidr)).collect();
        assert_eq!(blocks, ["h2 fan 250.0.29.0/24", "h2 pool 10.7.1.0/24"]);
        let eps: Vec<String> = view.endpoints.iter().map(|e| format!("{} {}", e.host, e.ip)).collect();
        assert_eq!(eps, ["h2 192.168.50.2"]);
        assert!(matches!(db.allocate_ip("fan", "nobody", "c", "eth1").await, Err(ClusterError::NoHost(_))));
    });
}

#[test]
fn two_hosts_attaching_the_same_ip_at_once_exactly_one_wins() {
    let Some(f) = Fixture::start(1) else { return };
    rt().block_on(async {
        let a = connect(&f).await;
        let b = connect(&f).await;
        a.create_network(&spec("n", "10.8.0.0/16", Ipam::Static)).await.unwrap();
        for round in 0..20 {
            let ip = format!("10.8.1.{}", round + 1);
            let (ea, eb) = (ep("n", "h1", &ip, "ca"), ep("n", "h2", &ip, "cb"));
            let (ra, rb) = tokio::join!(a.publish_endpoint(&ea), b.publish_endpoint(&eb));
            assert!(ra.is_ok() != rb.is_ok(), "round {round}: exactly one must win: {ra:?} {rb:?}");
            let err = ra.err().or(rb.err()).unwrap();
            match &err {
                ClusterError::IpInUse { ip: got, network, .. } => {
                    assert_eq!(got.to_string(), ip);
                    assert_eq!(network, "n");
                }
                other => panic!("{other:?}"),
            }
            assert!(err.to_string().contains("already in use"), "{err}");
        }
        // The losers left nothing behind: one row per address.
        let state = a.state().await.unwrap();
        assert_eq!(state.endpoints.len(), 20);
    });
}

#[test]
fn concurrent_allocations_never_collide() {
    let Some(f) = Fixture::start(1) else { return };
    rt().block_on(async {
        let a = connect(&f).await;
        let b = connect(&f).await;
        a.register_host(&host("h1", "172.30.0.1")).await.unwrap();
        a.register_host(&host("h2", "172.30.0.2")).await.unwrap();
        a.create_network(&spec("st", "10.9.0.0/24", Ipam::Static)).await.unwrap();
        a.create_network(&spec("pool", "10.10.0.0/16", Ipam::Pool)).await.unwrap();
        let run = |db: ClusterDb, h: &'static str, net: &'static str| async move {
            let mut got = Vec::new();
            for i in 0..15 {
                got.push(db.allocate_ip(net, h, &format!("{h}-c{i}"), "eth1").await.unwrap().ip);
            }
            got
        };
        // Same static network from two hosts: the index settles every race.
        let (x, y) = tokio::join!(run(a.clone(), "h1", "st"), run(b.clone(), "h2", "st"));
        let all: BTreeSet<IpAddr> = x.iter().chain(&y).copied().collect();
        assert_eq!(all.len(), 30, "duplicate addresses: {x:?} {y:?}");
        // Pool: both hosts claim a block at the same moment; they differ.
        let (x, y) = tokio::join!(run(a.clone(), "h1", "pool"), run(b.clone(), "h2", "pool"));
        let bx: BTreeSet<String> = x.iter().map(|i| i.to_string().rsplit_once('.').unwrap().0.to_owned()).collect();
        let by: BTreeSet<String> = y.iter().map(|i| i.to_string().rsplit_once('.').unwrap().0.to_owned()).collect();
        assert_eq!(bx.len(), 1);
        assert_eq!(by.len(), 1);
        assert_ne!(bx, by, "two hosts got the same block");
    });
}

#[test]
fn the_watch_follows_changes() {
    let Some(f) = Fixture::start(1) else { return };
    rt().block_on(async {
        let db = connect(&f).await;
        let mut w = db.watch().await.unwrap();
        assert!(w.state().networks.is_empty());
        db.register_host(&host("h1", "172.30.0.1")).await.unwrap();
        db.create_network(&spec("n", "10.11.0.0/16", Ipam::Static)).await.unwrap();
        db.publish_endpoint(&ep("n", "h1", "10.11.0.9", "c")).await.unwrap();
        let s = tokio::time::timeout(Duration::from_secs(5), w.wait_for(|s| s.endpoints.len() == 1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.hosts["h1"].tunnel_types.len(), 2);
        // A probe and its answer reach the host's own row watch, and no
        // host's watch: the endpoint removed after them is seen with the
        // answer not.
        let mut own = db.watch_probes("h1").await.unwrap();
        assert_eq!(own.current(), OwnRow::Present { probe: 0, heartbeat: 0 });
        assert_eq!(own.current().unanswered(), None);
        assert_eq!(db.probe_host("h1").await.unwrap(), 0);
        let asked = tokio::time::timeout(Duration::from_secs(5), own.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(asked, OwnRow::Present { probe: 1, heartbeat: 0 });
        assert_eq!(asked.unanswered(), Some(1));
        db.answer_probe("h1", 1).await.unwrap();
        let answered = tokio::time::timeout(Duration::from_secs(5), own.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(answered.unanswered(), None);
        assert_eq!(db.host("h1").await.unwrap().heartbeat, 1);
        assert!(matches!(db.probe_host("nobody").await, Err(ClusterError::NoHost(_))));
        assert!(matches!(db.answer_probe("nobody", 1).await, Err(ClusterError::NoHost(_))));
        let mut hw = db.watch_for_host("h1").await.unwrap();
        assert_eq!(hw.state().hosts["h1"].heartbeat, 0, "a host's watch follows no answers");
        db.remove_endpoint("n", "10.11.0.9".parse().unwrap()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), w.wait_for(|s| s.endpoints.is_empty())).await.unwrap().unwrap();
        let s = tokio::time::timeout(Duration::from_secs(5), hw.wait_for(|s| s.endpoints.is_empty()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.hosts["h1"].heartbeat, 0);
        assert_eq!(s.hosts["h1"].probe_timeout, 1000);
        drop(own);
        // Re-registering updates the row; a second host may not take the
        // same underlay address.
        db.register_host(&HostSpec { tunnel_types: ["geneve".to_owned()].into(), ..host("h1", "172.30.0.1") })
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), w.wait_for(|s| s.hosts["h1"].tunnel_types.contains("geneve")))
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(db.register_host(&host("h9", "172.30.0.1")).await, Err(ClusterError::BadInput(_))));
    });
}

#[test]
fn a_three_member_cluster_survives_a_killed_member() {
    let Some(f) = Fixture::start(3) else { return };
    rt().block_on(async {
        let db = connect(&f).await;
        db.register_host(&host("h1", "172.30.0.1")).await.unwrap();
        db.create_network(&spec("n", "10.12.0.0/16", Ipam::Static)).await.unwrap();
        let mut w = db.watch().await.unwrap();

        let mut o = ConnectOptions::default();
        o.timeout = Duration::from_secs(5);
        let st = server::status(&f.remotes(), &o).await.unwrap();
        assert_eq!(st.len(), 3);
        assert!(st.iter().all(|m| m.up && m.model.as_deref() == Some("clustered")), "{st:?}");
        assert_eq!(st.iter().filter(|m| m.leader == Some(true)).count(), 1, "{st:?}");
        let cids: BTreeSet<_> = st.iter().map(|m| m.cid.clone()).collect();
        assert_eq!(cids.len(), 1, "one cluster ID");

        // Kill the leader (the worst case: the client is connected to it).
        let leader = st.iter().position(|m| m.leader == Some(true)).unwrap() + 1;
        let pid = server::member_pid(&f.dir, leader).unwrap();
        server::kill_pid(pid);
        let start = std::time::Instant::now();
        // Writes keep working with 2 of 3 (the client moves to the new leader).
        let mut published = false;
        while start.elapsed() < Duration::from_secs(30) {
            match db.publish_endpoint(&ep("n", "h1", "10.12.0.7", "after-kill")).await {
                Ok(_) => {
                    published = true;
                    break;
                }
                Err(ClusterError::IpInUse { .. }) => {
                    // A retry after a lost reply: the first attempt landed.
                    published = true;
                    break;
                }
                Err(e) => {
                    eprintln!("write after kill: {e}");
                    tokio::time::sleep(Duration::from_millis(500)).await
                }
            }
        }
        assert!(published, "no write within 30 s of killing the leader");
        eprintln!("write after killing the leader: {:?}", start.elapsed());
        tokio::time::timeout(
            Duration::from_secs(20),
            w.wait_for(|s| s.endpoints.iter().any(|e| e.container == "after-kill")),
        )
        .await
        .expect("the watch sees the write")
        .unwrap();
        // The watch resumed on the new leader from the last transaction it
        // had seen (monitor_cond_since): what it missed, not everything.
        let stats = db.client().stats();
        assert!(stats.sessions >= 2 && stats.resumed >= 1, "{stats:?}");
        assert_eq!(stats.resent, 0, "a full resend after a leader change: {stats:?}");
        let st = server::status(&f.remotes(), &o).await.unwrap();
        assert_eq!(st.iter().filter(|m| m.up).count(), 2, "{st:?}");

        // The killed member comes back and catches up.
        server::start_member(&f.dir, leader, f.member(leader)).unwrap();
        let start = std::time::Instant::now();
        loop {
            let st = server::status(&f.remotes(), &o).await.unwrap();
            if st.iter().all(|m| m.up && m.connected == Some(true)) {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "member did not rejoin: {st:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

/// The host-scoped watch: an agent follows its own Endpoint rows and the
/// rows not marked covered by their host's block, and computes from them
/// the same remote view as from the whole database.
#[test]
fn the_host_scoped_watch_holds_what_remote_view_needs() {
    use ovsnet::cluster::{ClusterState, Endpoint, is_marked_covered, remote_view};
    let Some(f) = Fixture::start(1) else { return };
    rt().block_on(async {
        let db = connect(&f).await;
        for (h, ip) in [("h1", "172.30.0.1"), ("h2", "172.30.0.2"), ("h3", "172.30.0.3")] {
            db.register_host(&host(h, ip)).await.unwrap();
        }
        db.create_network(&spec("fan", "10.0.0.0/8", Ipam::Fan)).await.unwrap();
        db.create_network(&spec("pool", "10.60.0.0/16", Ipam::Pool)).await.unwrap();
        db.create_network(&spec("st", "192.168.60.0/24", Ipam::Static)).await.unwrap();

        let marked = |e: &Endpoint| is_marked_covered(&e.external_ids);
        let mut covered = Vec::new();
        let mut uncovered = Vec::new();
        // h2: covered by its Fan block (10.0.2.0/24) and its pool block.
        covered.push(db.allocate_ip("fan", "h2", "c1", "eth1").await.unwrap());
        covered.push(db.allocate_ip("pool", "h2", "c2", "eth1").await.unwrap());
        // h2: a MAC of its own, an address outside its block, a static
        // network, and a caller trying to set the marker itself.
        uncovered.push(
            db.publish_endpoint(&EndpointSpec {
                mac: Some("02:00:00:00:00:01".into()),
                ..ep("fan", "h2", "10.0.2.50", "c3")
            })
            .await
            .unwrap(),
        );
        uncovered.push(db.publish_endpoint(&ep("fan", "h2", "10.0.9.9", "c4")).await.unwrap());
        uncovered.push(db.allocate_ip("st", "h2", "c5", "eth1").await.unwrap());
        let mut forged = ep("st", "h2", "192.168.60.77", "c6");
        forged.external_ids.insert("ovsnet-covered".into(), "true".into());
        uncovered.push(db.publish_endpoint(&forged).await.unwrap());
        // h3 has no pool block: its pool endpoint is not covered.
        uncovered.push(db.publish_endpoint(&ep("pool", "h3", "10.60.200.9", "c7")).await.unwrap());
        // h1's own rows, covered or not.
        let own_covered = db.allocate_ip("fan", "h1", "c8", "eth1").await.unwrap();
        let own_static = db.allocate_ip("st", "h1", "c9", "eth1").await.unwrap();
        assert!(covered.iter().all(marked), "{covered:#?}");
        assert!(marked(&own_covered));
        assert!(!uncovered.iter().any(marked), "{uncovered:#?}");
        assert!(!marked(&own_static));

        let full = db.state().await.unwrap();
        let stored: Vec<&Endpoint> = full.endpoints.iter().filter(|e| marked(e)).collect();
        assert_eq!(stored.len(), 3, "the marker is in the database: {stored:#?}");

        let ips = |s: &ClusterState| -> BTreeSet<String> { s.endpoints.iter().map(|e| e.ip.to_string()).collect() };
        let expect = |s: &ClusterState| -> BTreeSet<String> {
            s.endpoints.iter().filter(|e| e.host == "h1" || !marked(e)).map(|e| e.ip.to_string()).collect()
        };
        let mut w = db.watch_for_host("h1").await.unwrap();
        let scoped = w.state();
        // Own covered row (first clause only) and others' unmarked rows
        // (second clause only) both arrive: the clauses are alternatives.
        assert_eq!(ips(&scoped), expect(&full));
        assert!(ips(&scoped).contains(&own_covered.ip.to_string()));
        for e in &covered {
            assert!(!ips(&scoped).contains(&e.ip.to_string()), "{} is covered", e.ip);
        }
        assert_eq!(scoped.endpoints.len(), full.endpoints.len() - covered.len());
        let view = remote_view(&scoped, "h1");
        assert_eq!(view, remote_view(&full, "h1"));
        assert_eq!(view.endpoints.len(), uncovered.len(), "{view:#?}");

        // Updates: a new covered row of h2 is not sent, a new uncovered
        // one is (in order, so once the second is here the first would be).
        let late_covered = db.allocate_ip("fan", "h2", "c10", "eth1").await.unwrap();
        assert!(marked(&late_covered));
        let late = db.allocate_ip("st", "h2", "c11", "eth1").await.unwrap();
        let s =
            tokio::time::timeout(Duration::from_secs(5), w.wait_for(|s| s.endpoints.iter().any(|e| e.ip == late.ip)))
                .await
                .unwrap()
                .unwrap();
        assert!(!s.endpoints.iter().any(|e| e.ip == late_covered.ip));
        let full = db.state().await.unwrap();
        assert_eq!(ips(&s), expect(&full));
        assert_eq!(remote_view(&s, "h1"), remote_view(&full, "h1"));

        // h2's underlay moves: its Fan block moves with it, its rows lose
        // the marker and every host follows them again.
        db.register_host(&host("h2", "172.30.0.22")).await.unwrap();
        let s = tokio::time::timeout(
            Duration::from_secs(5),
            w.wait_for(|s| s.endpoints.iter().any(|e| e.ip == late_covered.ip)),
        )
        .await
        .unwrap()
        .unwrap();
        let full = db.state().await.unwrap();
        assert!(!full.endpoints.iter().any(|e| e.host == "h2" && marked(e)));
        assert_eq!(ips(&s), expect(&full));
        let s = tokio::time::timeout(
            Duration::from_secs(5),
            w.wait_for(|s| s.hosts["h2"].underlay_ip.to_string() == "172.30.0.22"),
        )
        .await
        .unwrap()
        .unwrap();
        let view = remote_view(&s, "h1");
        assert_eq!(view, remote_view(&full, "h1"));
        assert!(view.endpoints.iter().any(|e| e.ip == late_covered.ip), "outside h2's new block now");
        // The full watch still holds everything.
        let all = db.watch().await.unwrap();
        assert_eq!(ips(&all.state()), ips(&full));
    });
}

#[test]
fn routers_gateways_and_the_upgrade_from_schema_1_0_0() {
    let Some(f) = Fixture::start(1) else { return };
    // A database as an older ovsnet made it: schema 1.0.0, no Router table
    // (converted down with ovsdb-client as the oracle).
    let mut old: serde_json::Value = serde_json::from_str(ovsnet::cluster::SCHEMA).unwrap();
    old["version"] = "1.0.0".into();
    old["tables"].as_object_mut().unwrap().remove("Router");
    let old_file = f.dir.join("old.ovsschema");
    std::fs::write(&old_file, old.to_string()).unwrap();
    let out =
        std::process::Command::new("ovsdb-client").arg("convert").arg(f.remotes()).arg(&old_file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    rt().block_on(async {
        let db = connect(&f).await;
        // Every network has a gateway: its first address by default.
        let red = db.create_network(&spec("red", "10.8.0.0/24", Ipam::Static)).await.unwrap();
        assert_eq!(red.gateway, Some("10.8.0.1".parse().unwrap()));
        let err = db.publish_endpoint(&ep("red", "h1", "10.8.0.1", "c1")).await.unwrap_err();
        assert!(matches!(err, ClusterError::GatewayAddress { .. }), "{err}");
        assert!(err.to_string().contains("10.8.0.1 is the gateway of network red"), "{err}");
        // An old database: no routers, said plainly; the rest works.
        let err = db.create_router("r1").await.unwrap_err();
        assert!(matches!(err, ClusterError::OldSchema(ref v) if v == "1.0.0"), "{err}");
        assert!(db.state().await.unwrap().routers.is_empty());
        assert_eq!(db.upgrade_schema().await.unwrap(), Some(("1.0.0".into(), "1.3.0".into())));
    });
    rt().block_on(async {
        // A new connection sees the new schema; the rows are kept.
        let db = connect(&f).await;
        assert_eq!(db.upgrade_schema().await.unwrap(), None, "already upgraded");
        assert!(db.network("red").await.is_ok());
        db.create_router("r1").await.unwrap();
        assert!(matches!(db.create_router("r1").await, Err(ClusterError::RouterExists(_))));
        assert!(matches!(db.create_router("bad name").await, Err(ClusterError::BadInput(_))));
        db.create_network(&spec("blue", "10.9.0.0/24", Ipam::Static)).await.unwrap();
        db.create_network(&spec("wide", "10.8.0.0/16", Ipam::Static)).await.unwrap();
        assert!(db.router_add_network("r1", "red").await.unwrap());
        assert!(!db.router_add_network("r1", "red").await.unwrap(), "already on it");
        assert!(db.router_add_network("r1", "blue").await.unwrap());
        let err = db.router_add_network("r1", "wide").await.unwrap_err();
        assert!(err.to_string().contains("overlaps network red"), "{err}");
        assert!(matches!(db.router_add_network("r9", "red").await, Err(ClusterError::NoRouter(_))));
        assert!(matches!(db.router_add_network("r1", "nope").await, Err(ClusterError::NoNetwork(_))));
        let (_, nets) = db.router("r1").await.unwrap();
        assert_eq!(nets, ["blue", "red"]);
        let st = db.state().await.unwrap();
        assert_eq!(st.router_networks().get("r1").map(|v| v.len()), Some(2));
        // A deleted network leaves its routers (weak references).
        db.delete_network("blue").await.unwrap();
        assert_eq!(db.router("r1").await.unwrap().1, ["red"]);
        assert!(db.router_remove_network("r1", "red").await.unwrap());
        assert!(!db.router_remove_network("r1", "red").await.unwrap());
        db.delete_router("r1").await.unwrap();
        assert!(matches!(db.delete_router("r1").await, Err(ClusterError::NoRouter(_))));
        assert!(db.routers().await.unwrap().is_empty());
    });
}

/// A relay serves what the members serve: its clients' writes reach the
/// cluster, its monitors follow the cluster's changes, and a probe is
/// answered through it.
#[test]
fn a_relay_serves_monitors_and_forwards_writes() {
    let Some(f) = Fixture::start(3) else { return };
    rt().block_on(async {
        let relay_dir = f.dir.join("relay");
        let relay = server::RelaySpec {
            address: "127.0.0.1".parse().unwrap(),
            port: 6660,
            source: f.info.tcp_remotes(),
            netns: Some(f.ns.clone()),
        };
        let pid = server::start_relay(&relay_dir, &relay).unwrap();
        // Stopped whatever fails below.
        struct Stop(PathBuf);
        impl Drop for Stop {
            fn drop(&mut self) {
                let _ = server::stop(&self.0);
            }
        }
        let _stop = Stop(relay_dir.clone());
        let again = server::start_relay(&relay_dir, &relay).unwrap_err().to_string();
        assert!(again.contains("already runs"), "{again}");
        let member = server::start_relay(&f.dir, &relay).unwrap_err().to_string();
        assert!(member.contains("cluster.json"), "{member}");
        let bad = server::RelaySpec { source: "nowhere:1".into(), ..relay.clone() };
        assert!(server::start_relay(&f.dir.join("relay2"), &bad).is_err());
        assert!(!f.dir.join("relay2").exists(), "a refused relay left its directory");

        let mut o = ConnectOptions::default();
        o.timeout = Duration::from_secs(30);
        o.request_timeout = Some(Duration::from_secs(5));
        let via = ClusterDb::connect(&format!("unix:{}", server::relay_socket(&relay_dir).display()), &o)
            .await
            .expect("connect through the relay");
        let direct = connect(&f).await;
        via.register_host(&host("h1", "172.30.0.1")).await.unwrap();
        direct.create_network(&spec("n", "10.13.0.0/16", Ipam::Static)).await.unwrap();
        let mut w = via.watch_for_host("h1").await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), w.wait_for(|s| s.networks.contains_key("n")))
            .await
            .unwrap()
            .unwrap();
        via.publish_endpoint(&ep("n", "h1", "10.13.0.5", "c")).await.unwrap();
        let st = direct.state().await.unwrap();
        assert!(st.hosts.contains_key("h1") && st.endpoints.iter().any(|e| e.container == "c"), "{st:?}");
        tokio::time::timeout(Duration::from_secs(10), w.wait_for(|s| s.endpoints.len() == 1)).await.unwrap().unwrap();

        // host del's question, asked of the members, answered through the relay.
        let mut own = via.watch_probes("h1").await.unwrap();
        let from = direct.probe_host("h1").await.unwrap();
        let asked = loop {
            let r = tokio::time::timeout(Duration::from_secs(10), own.next()).await.unwrap().unwrap().unwrap();
            if r.unanswered().is_some() {
                break r;
            }
        };
        via.answer_probe("h1", asked.unanswered().unwrap()).await.unwrap();
        assert!(direct.heartbeat_moves("h1", from, Duration::from_secs(10)).await.unwrap().is_some());

        drop((own, w, via));
        assert_eq!(server::stop(&relay_dir).unwrap(), 1);
        assert!(!ovsnet::sandbox::process_alive(pid), "the relay still runs");
    });
}
