//! Veth pairs across namespaces through `ovsnet::netlink`, checked with
//! the kernel's own view (a second netlink handle and `ip` as an oracle).

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::time::Duration;

use ovsnet::netlink::{LinkChange, Netlink, NetlinkError, VethEnd, arp};
use ovsnet::netns;
use ovsnet::sandbox::unique_name;

/// A namespace deleted on drop, also while a failed test unwinds.
struct Ns(String);

impl Ns {
    fn new(prefix: &str) -> Ns {
        let name = unique_name(prefix);
        netns::create(&name).expect("create namespace");
        Ns(name)
    }
    fn fd(&self) -> OwnedFd {
        netns::open(&self.0).expect("open namespace")
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = netns::delete(&self.0);
    }
}

fn ip_in(ns: &Ns, args: &[&str]) -> String {
    let out = Command::new("ip").args(["-n", &ns.0]).args(args).output().expect("run ip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

const MAC: [u8; 6] = [0x0a, 0x58, 10, 77, 0, 2];

#[test]
fn veth_created_across_namespaces_and_configured() {
    let host = Ns::new("nlh");
    let cont = Ns::new("nlc");
    rt().block_on(async {
        let h = Netlink::open_netns(&host.0).expect("netlink in host ns");
        let c = Netlink::open_netns(&cont.0).expect("netlink in container ns");
        let cfd = cont.fd();
        let host_name = unique_name("vt").replace('-', "");
        let host_end = h
            .create_veth(
                &VethEnd { mtu: Some(1400), up: true, promisc: true, ..VethEnd::named(&host_name) },
                &VethEnd {
                    name: "eth1".into(),
                    mac: Some(MAC),
                    mtu: Some(1400),
                    netns: Some(cfd.as_fd()),
                    ..Default::default()
                },
            )
            .await
            .expect("create veth");
        assert_eq!(host_end.kind.as_deref(), Some("veth"));
        assert_eq!(host_end.mtu, 1400);
        // Made up and promiscuous by the request that created it; no
        // carrier while the peer is down.
        assert!(host_end.up);
        let flags = ip_in(&host, &["link", "show", &host_name]);
        assert!(flags.contains("PROMISC") && flags.contains("NO-CARRIER"), "{flags}");

        // The peer is in the container namespace, named and addressed.
        let eth1 = c.link("eth1").await.expect("eth1 in container");
        assert_eq!(eth1.mac, Some(MAC));
        assert_eq!(eth1.mtu, 1400);
        assert!(!eth1.up);
        assert!(h.link_by_name("eth1").await.expect("lookup").is_none());

        // Configure: up, address, routes, lo up.
        c.set_up(&eth1).await.expect("eth1 up");
        c.lo_up().await.expect("lo up");
        c.add_address(&eth1, IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2)), 24).await.expect("address");
        c.add_default_route(&eth1, Ipv4Addr::new(10, 77, 0, 1)).await.expect("default route");
        c.add_route(&eth1, Ipv4Addr::new(192, 168, 50, 0), 24, Some(Ipv4Addr::new(10, 77, 0, 254)))
            .await
            .expect("route");
        let addrs = c.addresses(&eth1).await.expect("addresses");
        // The kernel may have added its IPv6 link-local address by now.
        let v4: Vec<_> = addrs.into_iter().filter(|(a, _)| a.is_ipv4()).collect();
        assert_eq!(v4, vec![(IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2)), 24)]);
        let routes = ip_in(&cont, &["-4", "route", "show"]);
        assert!(routes.contains("default via 10.77.0.1 dev eth1"), "{routes}");
        assert!(routes.contains("192.168.50.0/24 via 10.77.0.254 dev eth1"), "{routes}");
        let lo = c.link("lo").await.expect("lo");
        assert!(lo.up);

        // Transmit checksum offload: on by default for veth, then off.
        assert!(c.tx_checksum("eth1").expect("read tx csum"));
        c.set_tx_checksum("eth1", false).expect("tx off");
        assert!(!c.tx_checksum("eth1").expect("read tx csum"));
        let features = Command::new("ip").args(["netns", "exec", &cont.0, "ethtool", "-k", "eth1"]).output();
        if let Ok(out) = features {
            let text = String::from_utf8_lossy(&out.stdout);
            if out.status.success() {
                assert!(text.contains("tx-checksumming: off"), "{text}");
            }
        }

        // Deleting the host end takes the peer with it.
        h.delete_link(&host_end).await.expect("delete");
        assert!(h.link_by_name(&host_name).await.expect("lookup").is_none());
        assert!(c.link_by_name("eth1").await.expect("lookup").is_none());
        assert!(!h.delete_link_by_name(&host_name).await.expect("idempotent delete"));
    });
}

#[test]
fn veth_moved_renamed_and_readdressed() {
    let host = Ns::new("nlh");
    let cont = Ns::new("nlc");
    rt().block_on(async {
        let h = Netlink::open_netns(&host.0).expect("netlink");
        let c = Netlink::open_netns(&cont.0).expect("netlink");
        let a = unique_name("va").replace('-', "");
        let b = unique_name("vb").replace('-', "");
        h.create_veth(&VethEnd::named(&a), &VethEnd::named(&b)).await.expect("veth");
        let peer = h.link(&b).await.expect("peer");
        let cfd = cont.fd();
        h.move_to_netns(&peer, cfd.as_fd()).await.expect("move");
        assert!(h.link_by_name(&b).await.expect("lookup").is_none());
        let moved = c.link(&b).await.expect("moved peer");
        c.rename(&moved, "eth7").await.expect("rename");
        let eth7 = c.link("eth7").await.expect("renamed");
        assert_eq!(eth7.index, moved.index);
        c.set_mac(&eth7, MAC).await.expect("mac");
        c.set_mtu(&eth7, 1280).await.expect("mtu");
        c.change_link(&eth7, &LinkChange { up: Some(true), ..Default::default() }).await.expect("up");
        let eth7 = c.link("eth7").await.expect("eth7");
        assert_eq!((eth7.mac, eth7.mtu, eth7.up), (Some(MAC), 1280, true));
        let list: Vec<String> = c.links().await.expect("links").into_iter().map(|l| l.name).collect();
        assert_eq!(list, vec!["lo".to_string(), "eth7".to_string()]);
        c.set_down(&eth7).await.expect("down");
        assert!(!c.link("eth7").await.expect("eth7").up);
        c.delete_link(&eth7).await.expect("delete from container side");
        assert!(h.link_by_name(&a).await.expect("lookup").is_none());
    });
}

#[test]
fn errors_name_interface_and_errno() {
    let host = Ns::new("nlh");
    rt().block_on(async {
        let h = Netlink::open_netns(&host.0).expect("netlink");
        let a = unique_name("ve").replace('-', "");
        let b = unique_name("vf").replace('-', "");
        h.create_veth(&VethEnd::named(&a), &VethEnd::named(&b)).await.expect("veth");
        let err = h.create_veth(&VethEnd::named(&a), &VethEnd::named("other0")).await.expect_err("name taken");
        assert_eq!(err.errno(), Some(libc::EEXIST));
        assert_eq!(err.to_string(), format!("veth {a}: already exists (EEXIST)"));
        // The failed request created nothing.
        assert!(h.link_by_name("other0").await.expect("lookup").is_none());

        let bad = h.create_veth(&VethEnd::named("x".repeat(16)), &VethEnd::named("y")).await;
        assert!(matches!(bad, Err(NetlinkError::BadName(_))));
        let missing = h.link("nosuch0").await.expect_err("missing");
        assert_eq!(missing.to_string(), "link nosuch0: no such interface");
        let l = h.link(&a).await.expect("a");
        let e = h.set_mtu(&l, 10).await.expect_err("mtu too small");
        assert!(e.to_string().starts_with(&format!("set mtu {a}: ")), "{e}");
    });
}

/// Opens an ARP-receiving packet socket bound to `ifindex` in `ns`.
fn arp_listener(ns: &OwnedFd, ifindex: u32) -> OwnedFd {
    netns::run_in(ns, || {
        let proto = (arp::ETHERTYPE_ARP).to_be() as i32;
        // SAFETY: plain socket(2), checked.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto) };
        assert!(fd >= 0, "packet socket: {}", std::io::Error::last_os_error());
        // SAFETY: fd is fresh and owned here.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_ll is plain data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = arp::ETHERTYPE_ARP.to_be();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: valid address and length.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
        let tv = libc::timeval { tv_sec: 0, tv_usec: 200_000 };
        // SAFETY: valid option value.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            )
        };
        fd
    })
    .expect("run in namespace")
}

#[test]
fn gratuitous_arp_reaches_the_host_end() {
    let host = Ns::new("nlh");
    let cont = Ns::new("nlc");
    rt().block_on(async {
        let h = Netlink::open_netns(&host.0).expect("netlink");
        let c = Netlink::open_netns(&cont.0).expect("netlink");
        let cfd = cont.fd();
        let name = unique_name("vg").replace('-', "");
        let host_end = h
            .create_veth(
                &VethEnd::named(&name),
                &VethEnd { name: "eth1".into(), mac: Some(MAC), netns: Some(cfd.as_fd()), ..Default::default() },
            )
            .await
            .expect("veth");
        h.set_up(&host_end).await.expect("host end up");
        let eth1 = c.link("eth1").await.expect("eth1");
        c.set_up(&eth1).await.expect("eth1 up");
        let listener = arp_listener(&host.fd(), host_end.index);
        let ip = Ipv4Addr::new(10, 77, 0, 2);
        let expected = arp::gratuitous_arp(MAC, ip);
        // The link may need a moment to be able to carry frames (carrier):
        // send until the frame shows, reading between sends.
        let start = std::time::Instant::now();
        let mut buf = [0u8; 128];
        loop {
            c.send_gratuitous_arp(&eth1, MAC, ip).expect("send garp");
            // SAFETY: the buffer is valid for its length.
            let n = unsafe { libc::recv(listener.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n > 0 && buf[..n as usize] == expected[..] {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "no gratuitous ARP seen");
        }
        h.delete_link(&host_end).await.expect("delete");
    });
}

/// The source address the kernel would use towards a destination, as
/// `ip route get` reports it; no route is an error naming the address.
#[test]
fn source_address_is_the_kernels_choice() {
    let a = Ns::new("nlsa");
    let b = Ns::new("nlsb");
    rt().block_on(async {
        let na = Netlink::open_netns(&a.0).expect("netlink in a");
        let bfd = b.fd();
        let end = na
            .create_veth(
                &VethEnd { up: true, ..VethEnd::named("ul0") },
                &VethEnd { name: "ul0".into(), netns: Some(bfd.as_fd()), ..Default::default() },
            )
            .await
            .expect("veth");
        na.add_address(&end, IpAddr::V4(Ipv4Addr::new(10, 98, 0, 1)), 24).await.expect("address");
        na.add_address(&end, IpAddr::V4(Ipv4Addr::new(10, 97, 0, 1)), 24).await.expect("second address");
        let peer: IpAddr = "10.98.0.2".parse().expect("ip");
        let got = na.source_address_for(peer).await.expect("route get");
        assert_eq!(got, Some("10.98.0.1".parse().expect("ip")));
        let oracle = ip_in(&a, &["route", "get", "10.97.0.9"]);
        assert!(oracle.contains("src 10.97.0.1"), "{oracle}");
        assert_eq!(
            na.source_address_for("10.97.0.9".parse().expect("ip")).await.expect("route get"),
            Some("10.97.0.1".parse().expect("ip"))
        );
        let err = na.source_address_for("10.200.0.1".parse().expect("ip")).await.expect_err("no route");
        assert!(err.to_string().contains("10.200.0.1"), "{err}");
    });
}

/// Without a configured underlay address, the agent takes the one the
/// kernel would use towards the first cluster member.
#[test]
fn the_underlay_address_follows_the_route_to_the_first_member() {
    rt().block_on(async {
        let got = ovsnet::cluster::host::underlay_toward("unix:/run/x.sock,tcp:127.0.0.1:6641").await.expect("lookup");
        assert_eq!(got, IpAddr::V4(Ipv4Addr::LOCALHOST));
        let err = ovsnet::cluster::host::underlay_toward("unix:/run/x.sock").await.expect_err("no member to route to");
        assert!(err.to_string().contains("no tcp: or ssl: member"), "{err}");
        let err = ovsnet::cluster::host::underlay_toward("tcp:db.example:6641").await.expect_err("a name");
        assert!(err.to_string().contains("not an IP address"), "{err}");
    });
}
