//! DNS at each network's gateway, the agent's side: the queries the
//! `dns` table sends up arrive as packet-ins; the answer
//! ([`crate::pipeline::dns::handle`], pure) goes back as a packet-out of
//! the port the query came in on. Names not in the network are asked of
//! the host's resolvers (`/etc/resolv.conf`) by a task, whose answer comes
//! back to the agent's loop to be sent (*I/O*).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::openflow::action::{Action, OFPP_CONTROLLER};
use crate::openflow::message::PacketIn;
use crate::openflow::message::PacketOut;
use crate::openflow::{Field, Message};
use crate::pipeline::dns::{Names, Pending, Resolution, handle};

/// The table the `dns` punt flows are in (`flows/pipeline.flows`).
pub const DNS_TABLE: u8 = 21;

/// How long the host's resolvers get to answer a forwarded query, each.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// The default rate of a port's queries to the agent, per second (its
/// meter's drop band).
pub const DEFAULT_RATE: u32 = 1000;

/// The host's resolvers: the `nameserver` lines of a resolv.conf.
pub fn upstreams(resolv_conf: &Path) -> Vec<SocketAddr> {
    let text = std::fs::read_to_string(resolv_conf).unwrap_or_default();
    parse_resolv_conf(&text)
}

/// The `nameserver` addresses of resolv.conf text (IPv4 and IPv6), port 53.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next()).flatten()
        })
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// A frame to send out of a port: an answer ready for a packet-out.
#[derive(Debug)]
pub struct Outgoing {
    pub port: u32,
    pub frame: Vec<u8>,
}

/// The agent's DNS: the names, the round-robin turn, and the channel
/// forwarded answers come back on.
pub struct Dns {
    pub names: Names,
    /// The network (VNI) of each local port, for a packet-in without reg6.
    pub ports: std::collections::HashMap<u32, u32>,
    /// The local endpoints the names were computed for.
    pub local: Vec<crate::pipeline::LocalEndpoint>,
    turn: usize,
    resolv_conf: std::path::PathBuf,
    /// The namespace the host's network is in (the switch's), where the
    /// resolvers are asked from; `None`: this one.
    netns: Option<String>,
    tx: mpsc::Sender<Outgoing>,
    /// Forwarded queries not answered yet (bounded: past it, SERVFAIL).
    in_flight: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// Forwarded queries waiting for the host's resolvers at once, at most.
const MAX_IN_FLIGHT: usize = 256;

impl Dns {
    pub fn new(resolv_conf: std::path::PathBuf, netns: Option<String>) -> (Dns, mpsc::Receiver<Outgoing>) {
        let (tx, rx) = mpsc::channel(MAX_IN_FLIGHT);
        let dns = Dns {
            names: Names::default(),
            ports: Default::default(),
            local: Vec::new(),
            turn: 0,
            resolv_conf,
            netns,
            tx,
            in_flight: Default::default(),
        };
        (dns, rx)
    }

    /// A packet-in of the `dns` table: the packet-out that answers it now,
    /// or none (forwarded: the answer comes back on the channel later).
    pub fn on_packet_in(&mut self, p: &PacketIn) -> Option<Message> {
        let port = p.r#match.get(Field::InPort).map(|f| f.value_u128() as u32)?;
        let vni = match p.r#match.get(Field::Reg6) {
            Some(f) => f.value_u128() as u32,
            None => *self.ports.get(&port)?,
        };
        let names = self.names.by_vni.get(&vni)?;
        self.turn = self.turn.wrapping_add(1);
        match handle(&p.data, names, self.turn) {
            Resolution::Reply(frame) => Some(packet_out(port, frame)),
            Resolution::Ignore => None,
            Resolution::Forward(pending) => {
                use std::sync::atomic::Ordering::Relaxed;
                if self.in_flight.load(Relaxed) >= MAX_IN_FLIGHT {
                    return Some(packet_out(port, pending.servfail()));
                }
                self.in_flight.fetch_add(1, Relaxed);
                let servers = upstreams(&self.resolv_conf);
                let (tx, in_flight, netns) = (self.tx.clone(), self.in_flight.clone(), self.netns.clone());
                tokio::spawn(async move {
                    let frame = match ask(&servers, netns.as_deref(), &pending).await {
                        Some(answer) => pending.reply(&answer),
                        None => pending.servfail(),
                    };
                    in_flight.fetch_sub(1, Relaxed);
                    let _ = tx.send(Outgoing { port, frame }).await;
                });
                None
            }
        }
    }
}

/// `ofp_meter_mod_command`.
pub const OFPMC_ADD: u16 = 0;
pub const OFPMC_DELETE: u16 = 2;

/// The METER_MOD for a port's DNS meter: `rate` packets per second,
/// bursts of as many, the rest dropped.
pub fn meter_mod(command: u16, meter_id: u32, rate: u32) -> Message {
    use crate::openflow::message::{MeterBand, MeterMod};
    const OFPMF_PKTPS: u16 = 2;
    const OFPMF_BURST: u16 = 4;
    const OFPMBT_DROP: u16 = 1;
    let bands = if rate == 0 {
        Vec::new()
    } else {
        // A drop band is 16 bytes: its type-specific part is 4 bytes of padding.
        vec![MeterBand { band_type: OFPMBT_DROP, rate, burst_size: rate, data: vec![0; 4] }]
    };
    Message::MeterMod(MeterMod { command, flags: OFPMF_PKTPS | OFPMF_BURST, meter_id, bands })
}

/// The PACKET_OUT that sends `frame` out of `port`.
pub fn packet_out(port: u32, frame: Vec<u8>) -> Message {
    Message::PacketOut(PacketOut {
        buffer_id: 0xffff_ffff,
        in_port: OFPP_CONTROLLER,
        actions: vec![Action::output(port)],
        data: frame,
    })
}

/// Asks each resolver in turn; the first answer with the query's id.
async fn ask(servers: &[SocketAddr], netns: Option<&str>, pending: &Pending) -> Option<Vec<u8>> {
    let id = pending.query.get(..2)?;
    for server in servers {
        let Ok(sock) = udp_socket(server.is_ipv4(), netns) else { continue };
        if sock.connect(server).await.is_err() || sock.send(&pending.query).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        let wait = async {
            loop {
                match sock.recv(&mut buf).await {
                    Ok(n) if n >= 12 && &buf[..2] == id => return Some(n),
                    Ok(_) => continue,
                    Err(_) => return None,
                }
            }
        };
        if let Ok(Some(n)) = tokio::time::timeout(UPSTREAM_TIMEOUT, wait).await {
            buf.truncate(n);
            return Some(buf);
        }
    }
    None
}

/// A UDP socket on an ephemeral port, made in `netns` when given.
fn udp_socket(v4: bool, netns: Option<&str>) -> std::io::Result<tokio::net::UdpSocket> {
    let bind: SocketAddr = if v4 { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let sock = match netns {
        None => std::net::UdpSocket::bind(bind)?,
        Some(name) => {
            let ns = crate::netns::open(name).map_err(std::io::Error::other)?;
            crate::netns::with(&ns, || std::net::UdpSocket::bind(bind)).map_err(std::io::Error::other)??
        }
    };
    sock.set_nonblocking(true)?;
    tokio::net::UdpSocket::from_std(sock)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers() {
        let t = "# comment\nsearch example.org\nnameserver 192.0.2.53\nnameserver  2001:db8::1 \nnameserver bad\noptions ndots:1\n";
        let v = parse_resolv_conf(t);
        assert_eq!(v, vec!["192.0.2.53:53".parse().unwrap(), "[2001:db8::1]:53".parse().unwrap()]);
    }
}
