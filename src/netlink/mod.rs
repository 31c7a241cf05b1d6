//! Links, addresses and routes through rtnetlink, in any network namespace.
//!
//! A [`Netlink`] is bound to one network namespace: the one its sockets
//! were opened in. [`Netlink::open_in`] opens them with the calling thread
//! briefly inside the namespace ([`netns::with`]), then hands the netlink
//! socket to the runtime. Besides the rtnetlink
//! socket it keeps a datagram socket for ethtool ioctls and an
//! `AF_PACKET` socket for gratuitous ARP, both opened in that namespace,
//! so every operation acts there, whichever thread runs it.
//!
//! [`nat`] writes the nftables table of egress NAT through netlink
//! (libnftnl builds the messages), in the calling thread's namespace.
//!
//! Errors name the operation and the interface:
//! `veth ovs1a2b3c4d: already exists (EEXIST)`.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};

use futures_util::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use rtnetlink::{LinkMessageBuilder, LinkUnspec, RouteMessageBuilder};

use crate::netns::{self, NetnsError};

pub mod arp;
mod ethtool;
pub mod nat;

/// The longest interface name Linux accepts (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("open netlink socket: {0}")]
    Socket(#[source] std::io::Error),
    #[error("netlink needs a tokio runtime")]
    NoRuntime,
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// The kernel refused a request.
    #[error("{op} {name}: {}", errno_text(*errno))]
    Kernel { op: &'static str, name: String, errno: i32 },
    /// Something other than a kernel refusal (a malformed reply, a closed
    /// connection).
    #[error("{op} {name}: {message}")]
    Protocol { op: &'static str, name: String, message: String },
    #[error("link {0}: no such interface")]
    NoSuchLink(String),
    #[error("interface name {0:?}: must be 1-15 bytes, no '/', ':', whitespace or NUL")]
    BadName(String),
}

impl NetlinkError {
    /// The errno of a kernel refusal.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// "already exists (EEXIST)": a short reason and the errno's name.
fn errno_text(errno: i32) -> String {
    let e = nix::errno::Errno::from_raw(errno);
    let reason = match e {
        nix::errno::Errno::EEXIST => "already exists",
        nix::errno::Errno::ENODEV => "no such device",
        nix::errno::Errno::ENOENT => "not found",
        nix::errno::Errno::EINVAL => "invalid argument",
        nix::errno::Errno::EBUSY => "busy",
        nix::errno::Errno::EPERM => "not permitted",
        other => other.desc(),
    };
    format!("{reason} ({e:?})")
}

fn map_err(op: &'static str, name: &str) -> impl FnOnce(rtnetlink::Error) -> NetlinkError + use<> {
    let name = name.to_owned();
    move |e| match e {
        rtnetlink::Error::NetlinkError(msg) if msg.raw_code() != 0 => {
            NetlinkError::Kernel { op, name, errno: msg.raw_code().abs() }
        }
        other => NetlinkError::Protocol { op, name, message: other.to_string() },
    }
}

fn io_err(op: &'static str, name: &str) -> impl FnOnce(std::io::Error) -> NetlinkError + use<> {
    let name = name.to_owned();
    move |e| match e.raw_os_error() {
        Some(errno) => NetlinkError::Kernel { op, name, errno },
        None => NetlinkError::Protocol { op, name, message: e.to_string() },
    }
}

/// Checks an interface name as the kernel would (`dev_valid_name`).
pub fn validate_ifname(name: &str) -> Result<(), NetlinkError> {
    let ok = !name.is_empty()
        && name.len() <= IFNAME_MAX
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b != b'/' && b != b':' && b != 0 && !b.is_ascii_whitespace());
    if ok { Ok(()) } else { Err(NetlinkError::BadName(name.to_owned())) }
}

/// A link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mtu: u32,
    /// The hardware address (Ethernet links).
    pub mac: Option<[u8; 6]>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// The link kind (`veth`, `tun`, ...), when it has one.
    pub kind: Option<String>,
    /// `IFLA_LINK`: for a veth, its peer's index (in the peer's namespace).
    pub peer_index: Option<u32>,
}

impl Link {
    fn from_message(msg: &LinkMessage) -> Self {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            mtu: 0,
            mac: None,
            up: msg.header.flags.contains(LinkFlags::Up),
            kind: None,
            peer_index: None,
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name = n.clone(),
                LinkAttribute::Mtu(m) => link.mtu = *m,
                LinkAttribute::Address(a) => link.mac = <[u8; 6]>::try_from(a.as_slice()).ok(),
                LinkAttribute::Link(i) => link.peer_index = Some(*i),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        if let LinkInfo::Kind(k) = info {
                            link.kind = Some(k.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }
}

/// One end of a veth pair to create.
#[derive(Debug, Clone, Default)]
pub struct VethEnd<'a> {
    pub name: String,
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    /// Create this end directly in another namespace (default: the
    /// handle's own).
    pub netns: Option<BorrowedFd<'a>>,
    /// Create it up (the link comes up with the pair's carrier only once
    /// the other end is up too).
    pub up: bool,
    /// Create it promiscuous.
    pub promisc: bool,
}

impl VethEnd<'_> {
    pub fn named(name: impl Into<String>) -> Self {
        VethEnd { name: name.into(), ..Default::default() }
    }
}

/// Changes to apply to a link in one `RTM_NEWLINK` request.
#[derive(Debug, Clone, Default)]
pub struct LinkChange<'a> {
    pub name: Option<String>,
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    pub up: Option<bool>,
    /// Move the link into this namespace.
    pub netns: Option<BorrowedFd<'a>>,
}

/// An rtnetlink connection bound to one network namespace.
#[derive(Debug)]
pub struct Netlink {
    handle: rtnetlink::Handle,
    connection: tokio::task::JoinHandle<()>,
    ctl: OwnedFd,
    /// For gratuitous ARPs; absent unless asked for, because closing a
    /// packet socket waits for an RCU grace period in the kernel
    /// (`synchronize_net` in `packet_release`): 10-20 ms measured on a
    /// loaded 2-core machine, more than the rest of an attach.
    packet: Option<OwnedFd>,
    /// `/proc/sys/net/ipv6/conf` opened in the handle's namespace (absent
    /// when the kernel has no IPv6). `/proc/sys/net` shows the namespace of
    /// the thread that looks a path up; names looked up *under* this
    /// directory stay in the namespace it was opened in, also for
    /// interfaces made later, so no thread has to enter it again.
    ipv6_conf: Option<OwnedFd>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// The sockets a [`Netlink`] needs, opened in the calling thread's namespace.
fn open_sockets(with_packet: bool) -> Result<Sockets, NetlinkError> {
    let nl = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_ROUTE).map_err(NetlinkError::Socket)?;
    let ctl = ethtool::open_control_socket().map_err(NetlinkError::Socket)?;
    let packet = match with_packet {
        true => Some(arp::open_packet_socket().map_err(NetlinkError::Socket)?),
        false => None,
    };
    let ipv6_conf = match std::fs::File::open("/proc/sys/net/ipv6/conf") {
        Ok(dir) => Some(OwnedFd::from(dir)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(NetlinkError::Socket(e)),
    };
    Ok(Sockets { nl, ctl, packet, ipv6_conf })
}

/// What [`open_sockets`] opens in one namespace.
struct Sockets {
    nl: netlink_sys::Socket,
    ctl: OwnedFd,
    packet: Option<OwnedFd>,
    ipv6_conf: Option<OwnedFd>,
}

impl Netlink {
    /// Opens a connection in the calling thread's namespace. Needs a
    /// tokio runtime (the connection task is spawned on it).
    pub fn open() -> Result<Self, NetlinkError> {
        Self::from_sockets(open_sockets(true)?)
    }

    /// [`Netlink::open`] without the packet socket (no gratuitous ARP).
    pub fn open_without_packet() -> Result<Self, NetlinkError> {
        Self::from_sockets(open_sockets(false)?)
    }

    /// Opens a connection inside the namespace `ns`; the sockets are made
    /// with the calling thread briefly inside it.
    pub fn open_in(ns: &OwnedFd) -> Result<Self, NetlinkError> {
        Self::from_sockets(netns::with(ns, || open_sockets(true))??)
    }

    /// [`Netlink::open_in`] without the packet socket (no gratuitous ARP).
    pub fn open_in_without_packet(ns: &OwnedFd) -> Result<Self, NetlinkError> {
        Self::from_sockets(netns::with(ns, || open_sockets(false))??)
    }

    /// Opens a connection inside the named namespace (`/run/netns/NAME`).
    pub fn open_netns(name: &str) -> Result<Self, NetlinkError> {
        let ns = netns::open(name)?;
        Self::open_in(&ns)
    }

    /// [`Netlink::open_netns`] without the packet socket (no gratuitous ARP).
    pub fn open_netns_without_packet(name: &str) -> Result<Self, NetlinkError> {
        let ns = netns::open(name)?;
        Self::open_in_without_packet(&ns)
    }

    fn from_sockets(sockets: Sockets) -> Result<Self, NetlinkError> {
        let Sockets { nl, ctl, packet, ipv6_conf } = sockets;
        let rt = tokio::runtime::Handle::try_current().map_err(|_| NetlinkError::NoRuntime)?;
        nl.set_non_blocking(true).map_err(NetlinkError::Socket)?;
        // TokioSocket::from_raw_fd registers the fd with the reactor of the
        // current runtime; entering it makes that explicit.
        let _guard = rt.enter();
        // SAFETY: the fd is a netlink socket we own and give away here.
        let socket = unsafe { netlink_sys::TokioSocket::from_raw_fd(nl.into_raw_fd()) };
        let (connection, handle, _) = rtnetlink::from_socket(socket);
        let connection = rt.spawn(connection);
        Ok(Netlink { handle, connection, ctl, packet, ipv6_conf })
    }

    /// All links of the namespace.
    pub async fn links(&self) -> Result<Vec<Link>, NetlinkError> {
        let mut stream = self.handle.link().get().execute();
        let mut out = Vec::new();
        while let Some(msg) = stream.try_next().await.map_err(map_err("list links", "*"))? {
            out.push(Link::from_message(&msg));
        }
        Ok(out)
    }

    /// A link by name, or `None` when there is none.
    pub async fn link_by_name(&self, name: &str) -> Result<Option<Link>, NetlinkError> {
        validate_ifname(name)?;
        let mut stream = self.handle.link().get().match_name(name).execute();
        match stream.try_next().await {
            Ok(msg) => Ok(msg.map(|m| Link::from_message(&m))),
            Err(e) => not_found_is_none(map_err("get link", name)(e)),
        }
    }

    /// A link by index, or `None` when there is none.
    pub async fn link_by_index(&self, index: u32) -> Result<Option<Link>, NetlinkError> {
        let mut stream = self.handle.link().get().match_index(index).execute();
        match stream.try_next().await {
            Ok(msg) => Ok(msg.map(|m| Link::from_message(&m))),
            Err(e) => not_found_is_none(map_err("get link", &format!("#{index}"))(e)),
        }
    }

    /// A link by name, which must exist.
    pub async fn link(&self, name: &str) -> Result<Link, NetlinkError> {
        self.link_by_name(name).await?.ok_or_else(|| NetlinkError::NoSuchLink(name.to_owned()))
    }

    /// Creates a veth pair. Each end may get its MAC and MTU at creation,
    /// and the peer may be created directly inside another namespace (one
    /// request: nothing to undo if it fails). Returns the local end.
    pub async fn create_veth(&self, local: &VethEnd<'_>, peer: &VethEnd<'_>) -> Result<Link, NetlinkError> {
        validate_ifname(&local.name)?;
        validate_ifname(&peer.name)?;
        let mut peer_msg = LinkMessageBuilder::<LinkUnspec>::default().name(peer.name.clone());
        if let Some(mac) = peer.mac {
            peer_msg = peer_msg.address(mac.to_vec());
        }
        if let Some(mtu) = peer.mtu {
            peer_msg = peer_msg.mtu(mtu);
        }
        if let Some(ns) = peer.netns {
            peer_msg = peer_msg.setns_by_fd(ns.as_raw_fd());
        }
        if peer.up {
            peer_msg = peer_msg.up();
        }
        if peer.promisc {
            peer_msg = peer_msg.promiscuous(true);
        }
        let mut msg = LinkMessageBuilder::<rtnetlink::LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(local.name.clone())
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg.build())));
        if let Some(mac) = local.mac {
            msg = msg.address(mac.to_vec());
        }
        if let Some(mtu) = local.mtu {
            msg = msg.mtu(mtu);
        }
        if let Some(ns) = local.netns {
            msg = msg.setns_by_fd(ns.as_raw_fd());
        }
        if local.up {
            msg = msg.up();
        }
        if local.promisc {
            msg = msg.promiscuous(true);
        }
        self.handle.link().add(msg.build()).execute().await.map_err(map_err("veth", &local.name))?;
        if local.netns.is_some() {
            // Created elsewhere: it cannot be looked up from here.
            return Ok(Link {
                index: 0,
                name: local.name.clone(),
                mtu: local.mtu.unwrap_or(0),
                mac: local.mac,
                up: local.up,
                kind: Some("veth".into()),
                peer_index: None,
            });
        }
        self.link(&local.name).await
    }

    /// Creates a Linux bridge (the lab's underlay switch) and returns it.
    pub async fn create_bridge(&self, name: &str) -> Result<Link, NetlinkError> {
        validate_ifname(name)?;
        self.handle
            .link()
            .add(rtnetlink::LinkBridge::new(name).build())
            .execute()
            .await
            .map_err(map_err("bridge", name))?;
        self.link(name).await
    }

    /// Makes `link` a port of the Linux bridge `bridge` and sets it up.
    pub async fn set_bridge_port(&self, link: &Link, bridge: &Link) -> Result<(), NetlinkError> {
        self.handle
            .link()
            .change(LinkUnspec::new_with_index(link.index).controller(bridge.index).up().build())
            .execute()
            .await
            .map_err(map_err("bridge port", &link.name))
    }

    /// Applies several changes to a link in one request.
    pub async fn change_link(&self, link: &Link, change: &LinkChange<'_>) -> Result<(), NetlinkError> {
        let mut msg = LinkUnspec::new_with_index(link.index);
        let mut op = "set link";
        if let Some(name) = &change.name {
            validate_ifname(name)?;
            msg = msg.name(name.clone());
            op = "rename";
        }
        if let Some(mac) = change.mac {
            msg = msg.address(mac.to_vec());
            op = "set mac";
        }
        if let Some(mtu) = change.mtu {
            msg = msg.mtu(mtu);
            op = "set mtu";
        }
        match change.up {
            Some(true) => msg = msg.up(),
            Some(false) => msg = msg.down(),
            None => {}
        }
        if let Some(ns) = change.netns {
            msg = msg.setns_by_fd(ns.as_raw_fd());
            op = "move";
        }
        self.handle.link().change(msg.build()).execute().await.map_err(map_err(op, &link.name))
    }

    /// Moves a link into the namespace `ns` (it arrives down there).
    pub async fn move_to_netns(&self, link: &Link, ns: BorrowedFd<'_>) -> Result<(), NetlinkError> {
        self.change_link(link, &LinkChange { netns: Some(ns), ..Default::default() }).await
    }

    /// Renames a link (it must be down).
    pub async fn rename(&self, link: &Link, name: &str) -> Result<(), NetlinkError> {
        self.change_link(link, &LinkChange { name: Some(name.to_owned()), ..Default::default() }).await
    }

    pub async fn set_mac(&self, link: &Link, mac: [u8; 6]) -> Result<(), NetlinkError> {
        self.change_link(link, &LinkChange { mac: Some(mac), ..Default::default() }).await
    }

    pub async fn set_mtu(&self, link: &Link, mtu: u32) -> Result<(), NetlinkError> {
        self.change_link(link, &LinkChange { mtu: Some(mtu), ..Default::default() }).await
    }

    pub async fn set_up(&self, link: &Link) -> Result<(), NetlinkError> {
        self.change_link(link, &LinkChange { up: Some(true), ..Default::default() }).await
    }

    pub async fn set_down(&self, link: &Link) -> Result<(), NetlinkError> {
        self.change_link(link, &LinkChange { up: Some(false), ..Default::default() }).await
    }

    /// Brings the loopback interface up.
    pub async fn lo_up(&self) -> Result<(), NetlinkError> {
        // lo is always index 1 in every namespace; naming it avoids a lookup.
        let lo = Link { index: 1, name: "lo".into(), mtu: 0, mac: None, up: false, kind: None, peer_index: None };
        self.set_up(&lo).await
    }

    /// Deletes a link (a veth's peer goes with it).
    pub async fn delete_link(&self, link: &Link) -> Result<(), NetlinkError> {
        self.handle.link().del(link.index).execute().await.map_err(map_err("delete link", &link.name))
    }

    /// Deletes a link by name; `Ok(false)` when there was none.
    pub async fn delete_link_by_name(&self, name: &str) -> Result<bool, NetlinkError> {
        match self.link_by_name(name).await? {
            Some(link) => match self.delete_link(&link).await {
                Ok(()) => Ok(true),
                // Gone in between (its peer's namespace died, or another
                // process deleted it): the goal is reached.
                Err(e) if e.errno() == Some(libc::ENODEV) => Ok(false),
                Err(e) => Err(e),
            },
            None => Ok(false),
        }
    }

    /// Adds an address to a link.
    pub async fn add_address(&self, link: &Link, ip: IpAddr, prefix: u8) -> Result<(), NetlinkError> {
        self.handle
            .address()
            .add(link.index, ip, prefix)
            .execute()
            .await
            .map_err(map_err("add address", &format!("{} {ip}/{prefix}", link.name)))
    }

    /// The addresses on a link, with their prefix lengths.
    pub async fn addresses(&self, link: &Link) -> Result<Vec<(IpAddr, u8)>, NetlinkError> {
        let mut stream = self.handle.address().get().set_link_index_filter(link.index).execute();
        let mut out = Vec::new();
        while let Some(msg) = stream.try_next().await.map_err(map_err("list addresses", &link.name))? {
            out.extend(address_of(&msg));
        }
        Ok(out)
    }

    /// Adds an IPv4 route `dest/prefix` out of `link`, through `gateway`
    /// when given (else on-link).
    pub async fn add_route(
        &self,
        link: &Link,
        dest: Ipv4Addr,
        prefix: u8,
        gateway: Option<Ipv4Addr>,
    ) -> Result<(), NetlinkError> {
        let mut route =
            RouteMessageBuilder::<Ipv4Addr>::new().destination_prefix(dest, prefix).output_interface(link.index);
        if let Some(gw) = gateway {
            route = route.gateway(gw);
        }
        let shown = match gateway {
            Some(gw) => format!("{dest}/{prefix} via {gw} dev {}", link.name),
            None => format!("{dest}/{prefix} dev {}", link.name),
        };
        self.handle.route().add(route.build()).execute().await.map_err(map_err("add route", &shown))
    }

    /// Makes `dest/prefix` an on-link route out of `link`, replacing any
    /// route to the same destination (`ip route replace`): idempotent.
    pub async fn replace_link_route(&self, link: &Link, dest: Ipv4Addr, prefix: u8) -> Result<(), NetlinkError> {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(dest, prefix)
            .output_interface(link.index)
            .build();
        let shown = format!("{dest}/{prefix} dev {}", link.name);
        self.handle.route().add(route).replace().execute().await.map_err(map_err("replace route", &shown))
    }

    /// Removes the on-link route `dest/prefix` out of `link`; one that is
    /// not there is not an error (`false`).
    pub async fn delete_link_route(&self, link: &Link, dest: Ipv4Addr, prefix: u8) -> Result<bool, NetlinkError> {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(dest, prefix)
            .output_interface(link.index)
            .build();
        let shown = format!("{dest}/{prefix} dev {}", link.name);
        match self.handle.route().del(route).execute().await.map_err(map_err("delete route", &shown)) {
            Ok(()) => Ok(true),
            Err(NetlinkError::Kernel { errno, .. }) if errno == libc::ESRCH || errno == libc::ENOENT => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The source address the kernel would use to reach `dest` (the
    /// `RTM_GETROUTE` lookup `ip route get DEST` makes): `None` when the
    /// route it finds names no preferred source.
    pub async fn source_address_for(&self, dest: IpAddr) -> Result<Option<IpAddr>, NetlinkError> {
        use netlink_packet_route::route::{RouteAddress, RouteAttribute};
        let msg = match dest {
            IpAddr::V4(d) => RouteMessageBuilder::<Ipv4Addr>::new().destination_prefix(d, 32).build(),
            IpAddr::V6(d) => RouteMessageBuilder::<std::net::Ipv6Addr>::new().destination_prefix(d, 128).build(),
        };
        let shown = dest.to_string();
        let mut replies = self.handle.route().get(msg).execute();
        while let Some(route) = replies.try_next().await.map_err(map_err("route get", &shown))? {
            for attr in &route.attributes {
                if let RouteAttribute::PrefSource(a) = attr {
                    match a {
                        RouteAddress::Inet(v4) => return Ok(Some(IpAddr::V4(*v4))),
                        RouteAddress::Inet6(v6) => return Ok(Some(IpAddr::V6(*v6))),
                        _ => {}
                    }
                }
            }
        }
        Ok(None)
    }

    /// The address the kernel would give a packet sent along the IPv4
    /// default route of the main table: its preferred source, else the
    /// source for its gateway (a lookup: nothing is sent). `None` when
    /// there is no default route.
    pub async fn default_route_source(&self) -> Result<Option<IpAddr>, NetlinkError> {
        use netlink_packet_route::route::{RouteAddress, RouteAttribute};
        let mut replies = self.handle.route().get(RouteMessageBuilder::<Ipv4Addr>::new().build()).execute();
        let mut gateway = None;
        while let Some(route) = replies.try_next().await.map_err(map_err("route dump", "default"))? {
            let main =
                route.attributes.iter().any(|a| matches!(a, RouteAttribute::Table(254))) || route.header.table == 254;
            if route.header.destination_prefix_length != 0 || !main || gateway.is_some() {
                continue;
            }
            for attr in &route.attributes {
                match attr {
                    RouteAttribute::PrefSource(RouteAddress::Inet(v4)) => return Ok(Some(IpAddr::V4(*v4))),
                    RouteAttribute::Gateway(RouteAddress::Inet(v4)) => gateway = Some(*v4),
                    _ => {}
                }
            }
        }
        match gateway {
            Some(gw) => self.source_address_for(IpAddr::V4(gw)).await,
            None => Ok(None),
        }
    }

    /// Adds the default route through `gateway` out of `link`.
    pub async fn add_default_route(&self, link: &Link, gateway: Ipv4Addr) -> Result<(), NetlinkError> {
        self.add_route(link, Ipv4Addr::UNSPECIFIED, 0, Some(gateway)).await
    }

    /// Whether transmit checksum offload is on (`ethtool -k DEV` "tx-checksumming").
    pub fn tx_checksum(&self, ifname: &str) -> Result<bool, NetlinkError> {
        ethtool::tx_checksum(&self.ctl, ifname).map_err(io_err("get tx checksum", ifname))
    }

    /// Turns transmit checksum offload on or off (`ethtool -K DEV tx off`).
    pub fn set_tx_checksum(&self, ifname: &str, on: bool) -> Result<(), NetlinkError> {
        ethtool::set_tx_checksum(&self.ctl, ifname, on).map_err(io_err("set tx checksum", ifname))
    }

    /// Turns IPv6 off on one interface (`net.ipv6.conf.IFNAME.disable_ipv6`),
    /// before it is brought up: no link-local address, so no duplicate
    /// address detection, router solicitation or MLD report is ever sent,
    /// and no per-interface IPv6 route appears. A kernel without IPv6 has
    /// nothing to turn off.
    pub fn disable_ipv6(&self, ifname: &str) -> Result<(), NetlinkError> {
        use nix::fcntl::{OFlag, openat};
        use nix::sys::stat::Mode;
        validate_ifname(ifname)?;
        let Some(conf) = &self.ipv6_conf else { return Ok(()) };
        let path = format!("{ifname}/disable_ipv6");
        let fd = openat(conf, path.as_str(), OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| io_err("disable IPv6 on", ifname)(e.into()))?;
        let mut file = std::fs::File::from(fd);
        std::io::Write::write_all(&mut file, b"1").map_err(io_err("disable IPv6 on", ifname))
    }

    /// Sends a gratuitous ARP for `ip` from `mac` out of `link` (which must be up).
    pub fn send_gratuitous_arp(&self, link: &Link, mac: [u8; 6], ip: Ipv4Addr) -> Result<(), NetlinkError> {
        let frame = arp::gratuitous_arp(mac, ip);
        let Some(packet) = &self.packet else {
            return Err(NetlinkError::Socket(std::io::Error::other(
                "gratuitous arp: this connection was opened without a packet socket",
            )));
        };
        arp::send_frame(packet, link.index, &frame).map_err(io_err("gratuitous arp", &link.name))
    }
}

fn not_found_is_none(e: NetlinkError) -> Result<Option<Link>, NetlinkError> {
    match e.errno() {
        Some(libc::ENODEV) | Some(libc::ENOENT) => Ok(None),
        _ => Err(e),
    }
}

fn address_of(msg: &AddressMessage) -> Option<(IpAddr, u8)> {
    let prefix = msg.header.prefix_len;
    // IFA_LOCAL is the interface's own address on point-to-point links;
    // IFA_ADDRESS otherwise. Prefer the former when present.
    let mut addr = None;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(ip) => return Some((*ip, prefix)),
            AddressAttribute::Address(ip) => addr = Some((*ip, prefix)),
            _ => {}
        }
    }
    addr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifnames() {
        assert!(validate_ifname("eth1").is_ok());
        assert!(validate_ifname("ovs0123456789ab").is_ok());
        for bad in ["", ".", "..", "a/b", "a:b", "a b", "ovs0123456789abc"] {
            assert!(matches!(validate_ifname(bad), Err(NetlinkError::BadName(_))), "{bad:?}");
        }
    }

    #[test]
    fn errors_name_the_operation_and_interface() {
        let e = NetlinkError::Kernel { op: "veth", name: "ovs1a2b3c4d".into(), errno: libc::EEXIST };
        assert_eq!(e.to_string(), "veth ovs1a2b3c4d: already exists (EEXIST)");
    }
}
