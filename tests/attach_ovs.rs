//! `ovsnet attach` against a real Open vSwitch (userspace datapath), with
//! namespaces as containers.

mod common;
mod common_attach;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{OvsSandbox, vsctl, wait_for};
use common_attach::{Ns, NsProcess, rt};
use ovsnet::attach::{AttachError, AttachRequest, Attacher, AttacherOptions, Change, Liveness, Step};
use ovsnet::container::ContainerRef;
use ovsnet::ovsdb::{Client, ConnectOptions};

const BR: &str = "obr0";

fn switch() -> Option<OvsSandbox> {
    let sbx = common::ovs()?;
    vsctl(&sbx, &["add-br", BR, "--", "set", "bridge", BR, "datapath_type=netdev"]);
    Some(sbx)
}

async fn attacher(sbx: &OvsSandbox) -> Attacher {
    let client = Client::connect(&sbx.db_remote(), &ConnectOptions::default()).await.expect("connect");
    Attacher::new(
        client,
        AttacherOptions {
            switch_netns: Some(sbx.netns().to_owned()),
            docker_host: Some("unix:///nonexistent/docker.sock".into()),
            ofport_timeout: Duration::from_secs(10),
            check_operations: true,
        },
    )
    .expect("attacher")
}

fn req(container: ContainerRef, ip: &str) -> AttachRequest {
    AttachRequest::new(BR, container, ip).expect("request")
}

/// Link names in a namespace (the `ip` oracle).
fn links(ns: &str) -> Vec<String> {
    let out = Command::new("ip").args(["-n", ns, "-o", "link", "show"]).output().expect("ip link");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .collect()
}

/// `net.ipv6.conf.IFNAME.disable_ipv6` in a namespace (the sysctl oracle).
fn ipv6_disabled(ns: &str, ifname: &str) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "sysctl", "-n", &format!("net.ipv6.conf.{ifname}.disable_ipv6")])
        .output()
        .expect("sysctl");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn addresses6(ns: &str, ifname: &str) -> String {
    let out = Command::new("ip").args(["-n", ns, "-6", "-o", "addr", "show", "dev", ifname]).output().expect("ip addr");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn addresses(ns: &str) -> String {
    let out = Command::new("ip").args(["-n", ns, "-4", "-o", "addr", "show"]).output().expect("ip addr");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ports(sbx: &OvsSandbox) -> Vec<String> {
    vsctl(sbx, &["list-ports", BR]).lines().map(str::to_owned).collect()
}

/// Links the switch namespace has without any attachment.
fn host_links_clean(sbx: &OvsSandbox) -> bool {
    links(sbx.netns()).iter().all(|l| l == "lo" || l == "ovs-netdev" || l == BR)
}

fn ping(from: &str, to: &str) -> bool {
    Command::new("ip")
        .args(["netns", "exec", from, "ping", "-c", "1", "-W", "1", to])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn ns_fd(name: &str) -> std::os::fd::OwnedFd {
    ovsnet::netns::open(name).expect("open ns")
}

#[test]
fn two_containers_ping_and_tcp_on_the_userspace_datapath() {
    let Some(sbx) = switch() else { return };
    let c1 = Ns::new("at1");
    let c2 = Ns::new("at2");
    let rt = rt();
    let (r1, r2) = rt.block_on(async {
        let a = attacher(&sbx).await;
        let r1 = a.attach(&req(ContainerRef::Netns(c1.0.clone()), "10.91.0.2/24")).await.expect("attach c1");
        let r2 = a.attach(&req(ContainerRef::Netns(c2.0.clone()), "10.91.0.3/24")).await.expect("attach c2");
        (r1, r2)
    });
    assert_eq!(r1.change, Change::Created);
    assert!(r1.attachment.ofport.is_some_and(|p| p > 0));
    assert_eq!(r1.attachment.mac.map(|m| m.to_string()).as_deref(), Some("0a:58:0a:5b:00:02"));
    assert_eq!(ports(&sbx).len(), 2);
    // external_ids recorded on the Interface row too.
    let ids = vsctl(&sbx, &["get", "Interface", &r2.attachment.port, "external_ids:ovsnet-ip"]);
    assert_eq!(ids.trim(), "\"10.91.0.3/24\"");
    assert!(addresses(&c1.0).contains("10.91.0.2/24"));
    // IPv6 is off on both ends of the veth (no link-local address, no
    // multicast chatter flooded by the bridge).
    assert_eq!(ipv6_disabled(&c1.0, "eth1"), "1");
    assert_eq!(ipv6_disabled(sbx.netns(), &r1.attachment.port), "1");
    assert_eq!(addresses6(&c1.0, "eth1"), "", "no IPv6 address in the container");
    wait_for(10, "ping c1 -> c2", || ping(&c1.0, "10.91.0.3"));
    // The host end was made up before IPv6 was off on it; it had no
    // carrier then, so it never got an address (checked once traffic flowed).
    assert_eq!(addresses6(sbx.netns(), &r1.attachment.port), "", "no IPv6 address on the host end");

    // TCP: a megabyte each way between the two namespaces.
    let listener =
        ovsnet::netns::run_in(&ns_fd(&c2.0), || TcpListener::bind("10.91.0.3:5201")).expect("ns").expect("listen");
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut buf = vec![0u8; 1 << 20];
        s.read_exact(&mut buf).expect("server read");
        s.write_all(&buf).expect("server write");
        buf
    });
    let mut stream = ovsnet::netns::run_in(&ns_fd(&c1.0), || {
        TcpStream::connect_timeout(&"10.91.0.3:5201".parse().expect("addr"), Duration::from_secs(5))
    })
    .expect("ns")
    .expect("TCP connect through obr0 (checksum offload handled?)");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let data: Vec<u8> = (0..1u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    stream.write_all(&data).expect("client write");
    let mut back = vec![0u8; data.len()];
    stream.read_exact(&mut back).expect("client read");
    assert_eq!(back, data);
    assert_eq!(server.join().expect("server"), data);
}

#[test]
fn attach_is_idempotent_and_ip_unique() {
    let Some(sbx) = switch() else { return };
    let c1 = Ns::new("ai1");
    let c2 = Ns::new("ai2");
    rt().block_on(async {
        let a = attacher(&sbx).await;
        let r = req(ContainerRef::Netns(c1.0.clone()), "10.92.0.2/24@10.92.0.1");
        let first = a.attach(&r).await.expect("attach");
        let again = a.attach(&r).await.expect("attach again");
        assert_eq!(again.change, Change::Unchanged);
        assert_eq!(again.attachment.port, first.attachment.port);
        assert_eq!(again.attachment.ofport, first.attachment.ofport);
        assert_eq!(ports(&sbx), vec![first.attachment.port.clone()]);

        // Same IP for another container: refused, nothing changes.
        let before = (links(sbx.netns()), links(&c2.0));
        let err = a.attach(&req(ContainerRef::Netns(c2.0.clone()), "10.92.0.2/24")).await.expect_err("IP in use");
        assert!(matches!(err, AttachError::IpInUse { .. }), "{err}");
        assert_eq!((links(sbx.netns()), links(&c2.0)), before);
        assert_eq!(ports(&sbx).len(), 1);

        // Same container, other address on the same interface: a conflict.
        let err = a.attach(&req(ContainerRef::Netns(c1.0.clone()), "10.92.0.9/24")).await.expect_err("conflict");
        assert!(matches!(err, AttachError::Conflict { .. }), "{err}");

        // The list shows it alive, detach removes it, --if-exists is quiet.
        let list = a.attachments(Some(BR)).await.expect("list");
        assert_eq!(list.len(), 1);
        assert_eq!(a.liveness(&list[0]).await, Liveness::Alive);
        let removed = a.detach(BR, &format!("netns:{}", c1.0), "eth1", false).await.expect("detach");
        assert_eq!(removed.len(), 1);
        assert!(ports(&sbx).is_empty());
        assert!(host_links_clean(&sbx));
        assert_eq!(links(&c1.0), vec!["lo"]);
        assert!(a.detach(BR, &format!("netns:{}", c1.0), "eth1", true).await.expect("if-exists").is_empty());
        assert!(matches!(
            a.detach(BR, &format!("netns:{}", c1.0), "eth1", false).await,
            Err(AttachError::NotAttached { .. })
        ));
    });
}

#[test]
fn two_hundred_cycles_leave_nothing() {
    let Some(sbx) = switch() else { return };
    let c = NsProcess::start();
    let reference = ContainerRef::Pid(c.pid());
    let cns = format!("/proc/{}/ns/net", c.pid());
    rt().block_on(async {
        let a = attacher(&sbx).await;
        for i in 0..200u32 {
            let ip = format!("10.93.{}.{}/16", i / 200, 2 + i % 200);
            let r = a.attach(&req(reference.clone(), &ip)).await.expect("attach");
            assert_eq!(r.change, Change::Created, "cycle {i}");
            let removed = a.detach(BR, &reference.to_string(), "eth1", false).await.expect("detach");
            assert_eq!(removed.len(), 1);
        }
    });
    assert!(ports(&sbx).is_empty());
    assert!(host_links_clean(&sbx), "{:?}", links(sbx.netns()));
    let inside = Command::new("nsenter")
        .args(["--net=".to_owned() + &cns, "ip".into(), "-o".into(), "link".into()])
        .output()
        .expect("nsenter");
    let text = String::from_utf8_lossy(&inside.stdout);
    assert_eq!(text.lines().count(), 1, "only lo left in the container: {text}");
    let ifaces = vsctl(&sbx, &["--columns=name", "find", "Interface", "external_ids:ovsnet-bridge=obr0"]);
    assert!(ifaces.trim().is_empty(), "{ifaces}");
}

/// Everything a failed attach might leave behind, compared before/after.
fn residue(sbx: &OvsSandbox, container_ns: &str) -> (Vec<String>, Vec<String>, Vec<String>, String) {
    (ports(sbx), links(sbx.netns()), links(container_ns), addresses(container_ns))
}

#[test]
fn each_injected_failure_leaves_nothing() {
    let Some(sbx) = switch() else { return };
    let c = Ns::new("af");
    let steps = [
        Step::Resolved,
        Step::Read,
        Step::VethCreated,
        Step::ContainerConfigured,
        Step::HostUp,
        Step::Committed,
        Step::Ofport,
    ];
    rt().block_on(async {
        let before = residue(&sbx, &c.0);
        for step in steps {
            let mut a = attacher(&sbx).await;
            a.set_step_hook(move |s| s != step);
            let err =
                a.attach(&req(ContainerRef::Netns(c.0.clone()), "10.94.0.2/24@10.94.0.1")).await.expect_err("injected");
            assert!(matches!(err, AttachError::Injected(s) if s == step), "{err}");
            assert_eq!(residue(&sbx, &c.0), before, "after a failure at {step:?}");
        }
        // And with no failure it works, so the hook is what failed it.
        let a = attacher(&sbx).await;
        a.attach(&req(ContainerRef::Netns(c.0.clone()), "10.94.0.2/24@10.94.0.1")).await.expect("attach");
    });
}

#[test]
fn real_failures_leave_nothing() {
    let Some(sbx) = switch() else { return };
    rt().block_on(async {
        // 1. The name is taken inside the container.
        let c = Ns::new("ar");
        Command::new("ip")
            .args(["-n", &c.0, "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p"])
            .status()
            .expect("ip link add");
        let before = residue(&sbx, &c.0);
        let a = attacher(&sbx).await;
        let err = a.attach(&req(ContainerRef::Netns(c.0.clone()), "10.95.0.2/24")).await.expect_err("eth1 taken");
        assert!(err.to_string().contains("EEXIST"), "{err}");
        assert_eq!(residue(&sbx, &c.0), before);

        // 2. The container dies midway (after its side is configured).
        let mut p = NsProcess::start();
        let pid = p.pid();
        let killed = Arc::new(AtomicBool::new(false));
        let mut a = attacher(&sbx).await;
        {
            let killed = killed.clone();
            a.set_step_hook(move |s| {
                if s == Step::ContainerConfigured && !killed.swap(true, Ordering::SeqCst) {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::SIGKILL);
                    // Wait until it is really gone (reaped or zombie).
                    let start = std::time::Instant::now();
                    while std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok() && start.elapsed().as_secs() < 5 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                true
            });
        }
        let before_ports = ports(&sbx);
        let err = a.attach(&req(ContainerRef::Pid(pid), "10.95.0.3/24")).await.expect_err("container died");
        assert!(err.to_string().contains("went away"), "{err}");
        assert_eq!(ports(&sbx), before_ports);
        assert!(host_links_clean(&sbx), "{:?}", links(sbx.netns()));
        p.kill();

        // 3. OVSDB rejects the transaction: another port claims the IP
        //    between the read and the commit (the guard catches it).
        let c3 = Ns::new("ar");
        let before = residue(&sbx, &c3.0);
        let db = sbx.db_remote();
        let mut a = attacher(&sbx).await;
        a.set_step_hook(move |s| {
            if s == Step::HostUp {
                let ok = Command::new("ovs-vsctl")
                    .args([
                        &format!("--db={db}"),
                        "add-port",
                        BR,
                        "intruder0",
                        "--",
                        "set",
                        "Interface",
                        "intruder0",
                        "type=internal",
                        "--",
                        "set",
                        "Port",
                        "intruder0",
                        "external_ids:ovsnet-bridge=obr0",
                        "external_ids:ovsnet-addr=10.95.0.4",
                    ])
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(ok, "vsctl add-port intruder0");
            }
            true
        });
        let err = a.attach(&req(ContainerRef::Netns(c3.0.clone()), "10.95.0.4/24")).await.expect_err("guard");
        assert!(matches!(&err, AttachError::IpInUse { port, .. } if port == "intruder0"), "{err}");
        let (p3, h3, l3, a3) = residue(&sbx, &c3.0);
        assert_eq!(p3, vec!["intruder0".to_string()]);
        assert_eq!((l3, a3), (before.2, before.3));
        assert!(h3.iter().all(|l| l == "lo" || l == "ovs-netdev" || l == BR || l == "intruder0"), "{h3:?}");
    });
}

fn stat_ino(path: &str) -> u64 {
    std::fs::metadata(path).expect("stat").ino()
}

#[test]
fn restarted_container_is_replugged_and_gc_clears_the_dead() {
    let Some(sbx) = switch() else { return };
    let name1 = common::unique_name("rs");
    let name2 = common::unique_name("rs");
    ovsnet::netns::create(&name1).expect("ns1");
    ovsnet::netns::create(&name2).expect("ns2");
    let c1 = Ns(name1.clone());
    let c2 = Ns(name2.clone());
    rt().block_on(async {
        let a = attacher(&sbx).await;
        let r1 = a.attach(&req(ContainerRef::Netns(name1.clone()), "10.96.0.2/24")).await.expect("c1");
        a.attach(&req(ContainerRef::Netns(name2.clone()), "10.96.0.3/24")).await.expect("c2");
        let old_ino = stat_ino(&format!("/run/netns/{name1}"));

        // c1 "restarts": its namespace dies and a new one takes its name.
        ovsnet::netns::delete(&name1).expect("kill c1");
        ovsnet::netns::create(&name1).expect("new c1");
        assert_ne!(stat_ino(&format!("/run/netns/{name1}")), old_ino);
        // c2 dies for good.
        ovsnet::netns::delete(&name2).expect("kill c2");

        let list = a.attachments(Some(BR)).await.expect("list");
        let states: Vec<Liveness> = {
            let mut v = Vec::new();
            for x in &list {
                v.push(a.liveness(x).await);
            }
            v
        };
        assert_eq!(states, vec![Liveness::Restarted, Liveness::Gone]);

        let again = a.attach(&req(ContainerRef::Netns(name1.clone()), "10.96.0.2/24")).await.expect("re-plug");
        assert_eq!(again.change, Change::Replugged { stale: vec![r1.attachment.port.clone()] });
        assert_ne!(again.attachment.port, r1.attachment.port);
        assert!(addresses(&name1).contains("10.96.0.2/24"));
        assert_eq!(ports(&sbx).len(), 2, "the new c1 port and the dead c2 port");

        let removed = a.gc(Some(BR)).await.expect("gc");
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].ip.to_string(), "10.96.0.3/24");
        assert_eq!(ports(&sbx), vec![again.attachment.port.clone()]);
        assert!(a.gc(Some(BR)).await.expect("gc again").is_empty());
    });
    drop(c1);
    drop(c2);
}

/// MTU of `ifname` inside namespace `ns` (the `ip` oracle).
fn mtu_in(ns: &str, ifname: &str) -> u32 {
    let out = Command::new("ip").args(["-n", ns, "-o", "link", "show", ifname]).output().expect("ip link");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .skip_while(|w| *w != "mtu")
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("no mtu in {text:?}"))
}

#[test]
fn default_mtu_leaves_room_for_the_bridges_tunnels() {
    let Some(sbx) = switch() else { return };
    // A second bridge with a VXLAN tunnel: tunnels elsewhere do not count.
    vsctl(&sbx, &["add-br", "obr1", "--", "set", "bridge", "obr1", "datapath_type=netdev"]);
    let flow_tunnel = |br: &str, name: &str, kind: &str| {
        let t = format!("type={kind}");
        vsctl(
            &sbx,
            &["add-port", br, name, "--", "set", "interface", name, &t, "options:remote_ip=flow", "options:key=flow"],
        );
    };
    flow_tunnel("obr1", "vx1", "vxlan");
    let c = [Ns::new("mt0"), Ns::new("mt1"), Ns::new("mt2"), Ns::new("mt3")];
    rt().block_on(async {
        let a = attacher(&sbx).await;
        let attach = |i: usize| req(ContainerRef::Netns(c[i].0.clone()), &format!("10.93.0.{}/24", i + 2));

        // No tunnel on obr0: the bridge's MTU (1500).
        let r = a.attach(&attach(0)).await.expect("attach");
        assert_eq!(r.attachment.mtu, Some(1500));
        assert_eq!(mtu_in(&c[0].0, "eth1"), 1500);

        // GRE on obr0: 1500 - 42 (outer IPv4 20, GRE with key 8, inner Ethernet 14).
        flow_tunnel(BR, "gre0", "gre");
        let r = a.attach(&attach(1)).await.expect("attach");
        assert_eq!(r.attachment.mtu, Some(1458));
        assert_eq!(mtu_in(&c[1].0, "eth1"), 1458);

        // GRE and VXLAN on obr0: the larger overhead wins, 1500 - 50.
        flow_tunnel(BR, "vx0", "vxlan");
        let r = a.attach(&attach(2)).await.expect("attach");
        assert_eq!(r.attachment.mtu, Some(1450));
        assert_eq!(mtu_in(&c[2].0, "eth1"), 1450);

        // An explicit MTU is taken as given.
        a.detach(BR, &format!("netns:{}", c[2].0), "eth1", false).await.expect("detach");
        let mut explicit = attach(2);
        explicit.mtu = Some(1400);
        let r = a.attach(&explicit).await.expect("attach");
        assert_eq!(r.attachment.mtu, Some(1400));
        assert_eq!(mtu_in(&c[2].0, "eth1"), 1400);

        // The base is the bridge's mtu_request (jumbo here), not the bridge
        // interface's current MTU, which OVS has lowered to its smallest
        // port's (1400 now).
        vsctl(&sbx, &["set", "Interface", BR, "mtu_request=9000"]);
        let r = a.attach(&attach(3)).await.expect("attach");
        assert_eq!(r.attachment.mtu, Some(8950));
        assert_eq!(mtu_in(&c[3].0, "eth1"), 8950);
    });
}

#[test]
fn batch_commits_together_and_a_bad_line_fails_alone() {
    let Some(sbx) = switch() else { return };
    let c = [Ns::new("bt0"), Ns::new("bt1"), Ns::new("bt2"), Ns::new("bt3")];
    rt().block_on(async {
        let a = attacher(&sbx).await;
        let r = |i: usize, ip: &str| req(ContainerRef::Netns(c[i].0.clone()), ip);
        // The last one asks for the first one's address: the chunk's one
        // transaction fails on its guard, then each is committed alone.
        let reqs = vec![r(0, "10.94.0.2/24"), r(1, "10.94.0.3/24"), r(2, "10.94.0.4/24"), r(3, "10.94.0.2/24")];
        let results = a.attach_many(&reqs, 10).await;
        assert_eq!(results.len(), 4);
        let ok: Vec<_> = results[..3].iter().map(|x| x.as_ref().expect("attached").clone()).collect();
        assert!(results[3].is_err(), "duplicate address accepted");
        let mut got = ports(&sbx);
        got.sort();
        let mut want: Vec<String> = ok.iter().map(|r| r.attachment.port.clone()).collect();
        want.sort();
        assert_eq!(got, want);
        assert!(ok.iter().all(|r| r.attachment.ofport.is_some_and(|p| p > 0)));
        // Nothing left of the failed one, inside or on the host.
        assert_eq!(links(&c[3].0), vec!["lo"]);
        assert_eq!(links(sbx.netns()).len(), 3 + 3, "lo, ovs-netdev, obr0 and three host ends");
        assert!(ping(&c[0].0, "10.94.0.4"));

        // Without a conflict the whole chunk goes in at once.
        let _ = a.detach(BR, &format!("netns:{}", c[0].0), "eth1", false).await;
        let results = a.attach_many(&[r(3, "10.94.0.5/24"), r(0, "10.94.0.2/24")], 10).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(ports(&sbx).len(), 4);
    });
}
