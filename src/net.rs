//! Addresses as users type them: `IP/PREFIX` (an interface address: host
//! bits allowed) and network CIDRs (host bits must be zero).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    #[error("bad address {0:?}: expected an IPv4 or IPv6 address")]
    BadIp(String),
    #[error("bad address {0:?}: expected IP/PREFIX, for example 172.16.42.1/24")]
    NoPrefix(String),
    #[error("bad prefix length in {0:?}: at most {1} for this address family")]
    BadPrefix(String, u8),
    #[error("bad CIDR {0:?}: host bits are set (did you mean {1}?)")]
    HostBits(String, IpNet),
    #[error("bad MAC address {0:?}: expected six hex bytes like 0a:58:ac:10:2a:0a")]
    BadMac(String),
    #[error("bad MAC address {0}: multicast addresses cannot be given to an interface")]
    MulticastMac(String),
    #[error(
        "bad published port {0:?}: {1} (expected [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp], for example 8080:80)"
    )]
    BadPublish(String, &'static str),
    #[error("bad service address {0:?}: {1} (expected IP:PORT[/tcp|/udp], for example 10.0.0.200:80)")]
    BadServiceAddr(String, &'static str),
    #[error("bad protocol {0:?}: expected tcp or udp")]
    BadTransport(String),
}

/// An address with a prefix length, as on an interface (`172.16.42.1/24`),
/// or a network (`172.16.42.0/24`, see [`IpNet::parse_network`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, AddrError> {
        let max = max_prefix(addr);
        if prefix > max {
            return Err(AddrError::BadPrefix(format!("{addr}/{prefix}"), max));
        }
        Ok(IpNet { addr, prefix })
    }

    /// Parses `IP/PREFIX` where the address may have host bits set.
    pub fn parse_interface(s: &str) -> Result<Self, AddrError> {
        let (ip, prefix) = s.split_once('/').ok_or_else(|| AddrError::NoPrefix(s.to_owned()))?;
        let addr = IpAddr::from_str(ip).map_err(|_| AddrError::BadIp(s.to_owned()))?;
        let max = max_prefix(addr);
        let prefix = match prefix.parse::<u8>() {
            Ok(p) if p <= max && !prefix.starts_with('+') => p,
            _ => return Err(AddrError::BadPrefix(s.to_owned(), max)),
        };
        Ok(IpNet { addr, prefix })
    }

    /// Parses a network CIDR: host bits must be zero.
    pub fn parse_network(s: &str) -> Result<Self, AddrError> {
        let net = Self::parse_interface(s)?;
        if net.network().addr != net.addr {
            return Err(AddrError::HostBits(s.to_owned(), net.network()));
        }
        Ok(net)
    }

    /// The network this address lies in (host bits cleared).
    pub fn network(&self) -> IpNet {
        let addr = match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & v4_mask(self.prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & v6_mask(self.prefix))),
        };
        IpNet { addr, prefix: self.prefix }
    }

    /// Whether the two networks share an address (one holds the other).
    pub fn overlaps(&self, other: &IpNet) -> bool {
        self.contains(other.network().addr) || other.contains(self.network().addr)
    }

    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                u32::from(n) & v4_mask(self.prefix) == u32::from(a) & v4_mask(self.prefix)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                u128::from(n) & v6_mask(self.prefix) == u128::from(a) & v6_mask(self.prefix)
            }
            _ => false,
        }
    }

    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

/// Whether `s` can be a DNS name (a container name, an alias): labels of
/// 1-63 letters, digits, `-` and `_`, 253 characters at most, no label
/// starting or ending with `-`.
pub fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

pub fn v4_mask(prefix: u8) -> u32 {
    if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix.min(32))) }
}

pub fn v6_mask(prefix: u8) -> u128 {
    if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix.min(128))) }
}

/// Parses an IP address, naming it in the error.
pub fn parse_ip(s: &str) -> Result<IpAddr, AddrError> {
    IpAddr::from_str(s).map_err(|_| AddrError::BadIp(s.to_owned()))
}

/// An Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// The MAC for an IPv4 address: `0a:58:` then the address's four bytes
    /// (locally administered, unicast), as OVN-Kubernetes derives it. Stable
    /// across re-attach, and computable by anyone who knows the IP (an ARP
    /// responder, for one).
    pub fn from_ipv4(ip: Ipv4Addr) -> Self {
        let o = ip.octets();
        Mac([0x0a, 0x58, o[0], o[1], o[2], o[3]])
    }

    /// Neither multicast (group bit set) nor all zeros: an address an
    /// interface may have.
    pub fn is_unicast(&self) -> bool {
        self.0[0] & 1 == 0 && self.0 != [0; 6]
    }

    /// Parses `aa:bb:cc:dd:ee:ff` (or with `-`), refusing multicast
    /// addresses, which no interface may have.
    pub fn parse_unicast(s: &str) -> Result<Self, AddrError> {
        let mac = Self::from_str(s)?;
        if mac.0[0] & 1 == 1 {
            return Err(AddrError::MulticastMac(s.to_owned()));
        }
        Ok(mac)
    }
}

impl FromStr for Mac {
    type Err = AddrError;
    fn from_str(s: &str) -> Result<Self, AddrError> {
        let bad = || AddrError::BadMac(s.to_owned());
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(bad());
        }
        let mut out = [0u8; 6];
        for (o, p) in out.iter_mut().zip(parts) {
            if p.is_empty() || p.len() > 2 {
                return Err(bad());
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        Ok(Mac(out))
    }
}

impl From<[u8; 6]> for Mac {
    fn from(b: [u8; 6]) -> Self {
        Mac(b)
    }
}

impl From<Mac> for [u8; 6] {
    fn from(m: Mac) -> Self {
        m.0
    }
}

/// Spelled as users and `external_ids` spell it (`0a:58:ac:10:2a:0a`).
impl serde::Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Spelled `IP/PREFIX` (`172.16.42.10/24`).
impl serde::Serialize for IpNet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for IpNet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        IpNet::parse_interface(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
    }
}

/// The transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    /// The IP protocol number (6, 17).
    pub fn ip_proto(self) -> u8 {
        match self {
            Transport::Tcp => 6,
            Transport::Udp => 17,
        }
    }

    pub fn from_ip_proto(proto: u8) -> Option<Transport> {
        match proto {
            6 => Some(Transport::Tcp),
            17 => Some(Transport::Udp),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

impl FromStr for Transport {
    type Err = AddrError;
    fn from_str(s: &str) -> Result<Self, AddrError> {
        match s {
            "tcp" => Ok(Transport::Tcp),
            "udp" => Ok(Transport::Udp),
            _ => Err(AddrError::BadTransport(s.to_owned())),
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Transport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A service's virtual address as users type it: `IP:PORT[/tcp|/udp]`
/// (TCP when no protocol is given).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceAddr {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub protocol: Transport,
}

impl FromStr for ServiceAddr {
    type Err = AddrError;
    fn from_str(s: &str) -> Result<Self, AddrError> {
        let bad = |why| AddrError::BadServiceAddr(s.to_owned(), why);
        let (addr, protocol) = match s.split_once('/') {
            Some((a, p)) => (a, p.parse().map_err(|_| bad("the protocol is tcp or udp"))?),
            None => (s, Transport::Tcp),
        };
        let (ip, port) = addr.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad("not an IPv4 address"))?;
        if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback() {
            return Err(bad("not an address a container can connect to"));
        }
        let port: u16 = port.parse().map_err(|_| bad("the port is 1-65535"))?;
        if port == 0 {
            return Err(bad("the port is 1-65535"));
        }
        Ok(ServiceAddr { ip, port, protocol })
    }
}

impl fmt::Display for ServiceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.ip, self.port, self.protocol)
    }
}

/// A container's port published on its host's addresses, as `docker run
/// -p` and `attach --publish` take it: `[HOST_IP:]HOST_PORT:CONTAINER_PORT
/// [/tcp|/udp]` (TCP when no protocol is given; every address of the host
/// when no `HOST_IP` is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublishedPort {
    pub transport: Transport,
    /// `None`: every address of the host.
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
}

impl PublishedPort {
    /// Whether the two would take the same packets: same protocol and host
    /// port, and host addresses that meet (either is every address, or
    /// they are the same).
    pub fn collides(&self, other: &PublishedPort) -> bool {
        self.transport == other.transport
            && self.host_port == other.host_port
            && match (self.host_ip, other.host_ip) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }

    /// Checks ports to publish together: no two take the same host port,
    /// and none is on a loopback address (the kernel would not route such
    /// connections to a container).
    pub fn check_together(ports: &[PublishedPort]) -> Result<(), String> {
        for (i, p) in ports.iter().enumerate() {
            if let Some(q) = ports[..i].iter().find(|q| q.collides(p)) {
                return Err(format!("published ports {q} and {p} take the same host port"));
            }
            if p.host_ip.is_some_and(|ip| ip.is_loopback()) {
                return Err(format!("published port {p}: a loopback host address cannot reach a container"));
            }
        }
        Ok(())
    }

    /// A list as recorded: comma-separated, empty parts skipped.
    pub fn parse_list(s: &str) -> Result<Vec<PublishedPort>, AddrError> {
        s.split(',').filter(|p| !p.is_empty()).map(str::parse).collect()
    }

    /// The recorded form of a list (comma-separated).
    pub fn join(ports: &[PublishedPort]) -> String {
        ports.iter().map(PublishedPort::to_string).collect::<Vec<_>>().join(",")
    }
}

impl FromStr for PublishedPort {
    type Err = AddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why| AddrError::BadPublish(s.to_owned(), why);
        let (ports, transport) = match s.rsplit_once('/') {
            Some((p, "tcp")) => (p, Transport::Tcp),
            Some((p, "udp")) => (p, Transport::Udp),
            Some(_) => return Err(bad("the protocol must be tcp or udp")),
            None => (s, Transport::Tcp),
        };
        let parts: Vec<&str> = ports.split(':').collect();
        let (host_ip, host_port, container_port) = match parts.as_slice() {
            [h, c] => (None, *h, *c),
            [ip, h, c] => {
                let ip: Ipv4Addr = ip.parse().map_err(|_| bad("the host address must be an IPv4 address"))?;
                (if ip.is_unspecified() { None } else { Some(ip) }, *h, *c)
            }
            [_] => return Err(bad("give the host port too: ovsnet does not choose one")),
            _ => return Err(bad("too many ':'")),
        };
        let port = |p: &str, what| match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(bad(what)),
            Ok(n) => Ok(n),
        };
        Ok(PublishedPort {
            transport,
            host_ip,
            host_port: port(host_port, "the host port must be 1-65535")?,
            container_port: port(container_port, "the container port must be 1-65535")?,
        })
    }
}

impl serde::Serialize for PublishedPort {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for PublishedPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ip) = self.host_ip {
            write!(f, "{ip}:")?;
        }
        write!(f, "{}:{}/{}", self.host_port, self.container_port, self.transport.name())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn interface_addresses() {
        let n = IpNet::parse_interface("172.16.42.1/24").unwrap();
        assert_eq!(n.to_string(), "172.16.42.1/24");
        assert_eq!(n.network().to_string(), "172.16.42.0/24");
        assert!(n.contains("172.16.42.200".parse().unwrap()));
        assert!(!n.contains("172.16.43.1".parse().unwrap()));
        assert_eq!(IpNet::parse_interface("fd00::1/64").unwrap().network().to_string(), "fd00::/64");
    }

    #[test]
    fn bad_addresses_name_the_problem() {
        assert_eq!(IpNet::parse_interface("172.16.42.1"), Err(AddrError::NoPrefix("172.16.42.1".into())));
        assert_eq!(IpNet::parse_interface("172.16.42.1/33"), Err(AddrError::BadPrefix("172.16.42.1/33".into(), 32)));
        assert_eq!(IpNet::parse_interface("172.16.42.1/+3"), Err(AddrError::BadPrefix("172.16.42.1/+3".into(), 32)));
        assert_eq!(IpNet::parse_interface("300.1.1.1/24"), Err(AddrError::BadIp("300.1.1.1/24".into())));
        assert!(matches!(IpNet::parse_network("10.1.2.3/16"), Err(AddrError::HostBits(_, _))));
        assert_eq!(IpNet::parse_network("0.0.0.0/0").unwrap().prefix, 0);
    }

    #[test]
    fn macs() {
        assert_eq!("0a:58:AC:10:2a:0a".parse::<Mac>().unwrap().to_string(), "0a:58:ac:10:2a:0a");
        assert!("0a:58:ac:10:2a".parse::<Mac>().is_err());
        assert!("0a:58:ac:10:2a:0g".parse::<Mac>().is_err());
        assert!("0a:58:ac:10:2a:100".parse::<Mac>().is_err());
        assert!(matches!(Mac::parse_unicast("01:00:5e:00:00:01"), Err(AddrError::MulticastMac(_))));
    }

    #[test]
    fn mac_is_derived_from_ipv4() {
        assert_eq!(Mac::from_ipv4(Ipv4Addr::new(172, 16, 42, 10)).0, [0x0a, 0x58, 172, 16, 42, 10]);
        assert_eq!(Mac::from_ipv4(Ipv4Addr::new(10, 0, 0, 1)).to_string(), "0a:58:0a:00:00:01");
        assert!(Mac::from_ipv4(Ipv4Addr::new(10, 0, 0, 1)).is_unicast());
        assert!(!Mac([1, 0, 0, 0, 0, 1]).is_unicast());
        assert!(!Mac([0; 6]).is_unicast());
    }

    #[test]
    fn addresses_serialize_as_users_spell_them() {
        let net = IpNet::parse_interface("172.16.42.10/24").unwrap();
        assert_eq!(serde_json::to_string(&net).unwrap(), "\"172.16.42.10/24\"");
        assert_eq!(serde_json::from_str::<IpNet>("\"172.16.42.10/24\"").unwrap(), net);
        let mac = Mac::from_ipv4(Ipv4Addr::new(172, 16, 42, 10));
        assert_eq!(serde_json::to_string(&mac).unwrap(), "\"0a:58:ac:10:2a:0a\"");
        assert_eq!(serde_json::from_str::<Mac>("\"0a:58:ac:10:2a:0a\"").unwrap(), mac);
        assert!(serde_json::from_str::<Mac>("\"zz\"").is_err());
    }
    #[test]
    fn published_ports() {
        let p: PublishedPort = "8080:80".parse().unwrap();
        assert_eq!(p, PublishedPort { transport: Transport::Tcp, host_ip: None, host_port: 8080, container_port: 80 });
        assert_eq!(p.to_string(), "8080:80/tcp");
        let q: PublishedPort = "192.0.2.7:53:5353/udp".parse().unwrap();
        assert_eq!(q.to_string(), "192.0.2.7:53:5353/udp");
        assert_eq!("0.0.0.0:8080:80/tcp".parse::<PublishedPort>().unwrap(), p);
        for (bad, why) in [
            ("80", "give the host port"),
            ("8080:80/sctp", "tcp or udp"),
            ("0:80", "host port must be"),
            ("8080:70000", "container port must be"),
            ("host:8080:80", "IPv4"),
            ("1:2:3:4", "too many"),
        ] {
            let e = bad.parse::<PublishedPort>().unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(bad), "{bad}: {e}");
        }
        let list = PublishedPort::parse_list("8080:80/tcp,,192.0.2.7:53:5353/udp").unwrap();
        assert_eq!(list, [p, q]);
        assert_eq!(PublishedPort::join(&list), "8080:80/tcp,192.0.2.7:53:5353/udp");
        assert!(p.collides(&"192.0.2.1:8080:81".parse().unwrap()), "every address meets one");
        assert!(!p.collides(&"8080:80/udp".parse().unwrap()));
        assert!(PublishedPort::check_together(&[p, q]).is_ok());
        let e = PublishedPort::check_together(&[p, "8080:81".parse().unwrap()]).unwrap_err();
        assert!(e.contains("take the same host port"), "{e}");
        let e = PublishedPort::check_together(&["127.0.0.1:8080:80".parse().unwrap()]).unwrap_err();
        assert!(e.contains("loopback"), "{e}");
        let a: PublishedPort = "192.0.2.1:8080:80".parse().unwrap();
        assert!(!a.collides(&"192.0.2.2:8080:80".parse().unwrap()));
    }
}
