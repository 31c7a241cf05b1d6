//! DNS answered by the agent, pure: the queries the `dns` table (21)
//! sends up from a network's gateway address, port 53 (UDP or TCP), and
//! the frames that answer them.
//!
//! A query is answered from the names of the querying container's
//! network ([`NetworkNames`]): each endpoint's container name and aliases,
//! the same with `.NETWORK` appended, the network's services, and PTR
//! records for endpoint addresses. Other names go to the host's resolvers
//! ([`Resolution::Forward`]; the agent does the I/O and frames the answer
//! with [`Pending::reply`]) or get NXDOMAIN where the network does not
//! forward. DNS messages are decoded and built with `hickory-proto`.
//!
//! TCP is answered without a connection table: a SYN gets a SYN-ACK whose
//! sequence number is derived from the client's, a segment holding one
//! whole query gets the answer with FIN in one segment, and a FIN is
//! acknowledged. Queries split over several segments are not answered
//! (the client times out; no resolver sends one that small query split).

use std::collections::HashMap;
use std::net::Ipv4Addr;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::state::fnv1a;

/// The TTL of every answer from the cluster's names: short, so that a
/// name that changes is not held long by a client's cache.
pub const TTL: u32 = 5;

const ETH_LEN: usize = 14;
const ETH_TYPE_IPV4: u16 = 0x0800;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const DNS_PORT: u16 = 53;

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;

/// The names one network's containers can ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkNames {
    pub network: String,
    /// Whether names not in the network go to the host's resolvers
    /// (otherwise NXDOMAIN).
    pub forward: bool,
    /// Lower-case name (no trailing dot) to addresses, in the order added.
    names: HashMap<String, Vec<Ipv4Addr>>,
    /// Address to the name its PTR record gives.
    ptr: HashMap<Ipv4Addr, String>,
}

impl NetworkNames {
    pub fn new(network: &str, forward: bool) -> NetworkNames {
        NetworkNames { network: network.to_owned(), forward, ..NetworkNames::default() }
    }

    /// Adds `name` and `name.NETWORK` for `ip`. The first name given for
    /// an address is its PTR record (`name.NETWORK.`). Names that are not
    /// DNS names are skipped (false).
    pub fn add(&mut self, name: &str, ip: Ipv4Addr) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if !crate::net::is_dns_name(&name) {
            return false;
        }
        let qualified = format!("{name}.{}", self.network.to_ascii_lowercase());
        for n in [name, qualified.clone()] {
            let ips = self.names.entry(n).or_default();
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
        self.ptr.entry(ip).or_insert(qualified);
        true
    }

    /// The addresses of a name (lower-case, no trailing dot).
    pub fn lookup(&self, name: &str) -> Option<&[Ipv4Addr]> {
        self.names.get(name).map(Vec::as_slice)
    }

    /// How many names (each also counted with `.NETWORK`).
    pub fn len(&self) -> usize {
        self.names.len()
    }
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// What to do with a frame the `dns` table sent up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Send this frame back out of the port the query came in on.
    Reply(Vec<u8>),
    /// Ask the host's resolvers, then frame their answer with
    /// [`Pending::reply`].
    Forward(Pending),
    /// Nothing to send (not a query, a TCP segment needing no answer).
    Ignore,
}

/// The transport a query came by, and what its answer's frame needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Udp,
    /// The client's segment: its sequence and acknowledgement numbers,
    /// and whether it carried a FIN.
    Tcp {
        seq: u32,
        ack: u32,
        fin: bool,
        payload_len: u32,
    },
}

/// The addresses of a query's frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ends {
    eth_src: [u8; 6],
    eth_dst: [u8; 6],
    ip_src: Ipv4Addr,
    ip_dst: Ipv4Addr,
    port_src: u16,
}

/// A query the agent forwards to the host's resolvers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The DNS message to send upstream, as the container sent it.
    pub query: Vec<u8>,
    ends: Ends,
    transport: Transport,
}

impl Pending {
    /// The frame that carries `answer` (the resolver's DNS message) to
    /// the container.
    pub fn reply(&self, answer: &[u8]) -> Vec<u8> {
        reply_frame(&self.ends, self.transport, answer)
    }

    /// The frame of a SERVFAIL for the query (no resolver answered).
    pub fn servfail(&self) -> Vec<u8> {
        let m = Message::from_vec(&self.query).ok();
        let id = m.as_ref().map_or(0, Message::id);
        let mut r = Message::error_msg(id, OpCode::Query, ResponseCode::ServFail);
        if let Some(q) = m.as_ref().and_then(|m| m.queries().first()) {
            r.add_query(q.clone());
        }
        self.reply(&r.to_vec().unwrap_or_default())
    }
}

/// The query's frame, parsed: who sent it, by which transport, and its
/// DNS bytes (a TCP query without its 2-byte length).
struct Parsed<'a> {
    ends: Ends,
    transport: Transport,
    flags: u8,
    dns: &'a [u8],
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}
fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn ip_at(b: &[u8], at: usize) -> Option<Ipv4Addr> {
    Some(Ipv4Addr::from(be32(b, at)?))
}

/// Ethernet + IPv4 + UDP or TCP to port 53; None for anything else.
fn parse(frame: &[u8]) -> Option<Parsed<'_>> {
    if be16(frame, 12)? != ETH_TYPE_IPV4 {
        return None;
    }
    let ip = frame.get(ETH_LEN..)?;
    let vihl = *ip.first()?;
    let ihl = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || ihl < 20 {
        return None;
    }
    let total = usize::from(be16(ip, 2)?);
    if total < ihl || total > ip.len() {
        return None;
    }
    // Fragments are not queries this answers.
    if be16(ip, 6)? & 0x3fff != 0 {
        return None;
    }
    let proto = ip[9];
    let l4 = &ip[ihl..total];
    let ends = Ends {
        eth_dst: frame[0..6].try_into().ok()?,
        eth_src: frame[6..12].try_into().ok()?,
        ip_src: ip_at(ip, 12)?,
        ip_dst: ip_at(ip, 16)?,
        port_src: be16(l4, 0)?,
    };
    if be16(l4, 2)? != DNS_PORT {
        return None;
    }
    match proto {
        IPPROTO_UDP => {
            let len = usize::from(be16(l4, 4)?);
            if len < 8 || len > l4.len() {
                return None;
            }
            Some(Parsed { ends, transport: Transport::Udp, flags: 0, dns: &l4[8..len] })
        }
        IPPROTO_TCP => {
            let off = usize::from(*l4.get(12)? >> 4) * 4;
            if off < 20 || off > l4.len() {
                return None;
            }
            let flags = l4[13];
            let payload = &l4[off..];
            let transport = Transport::Tcp {
                seq: be32(l4, 4)?,
                ack: be32(l4, 8)?,
                fin: flags & TCP_FIN != 0,
                payload_len: payload.len() as u32,
            };
            Some(Parsed { ends, transport, flags, dns: payload })
        }
        _ => None,
    }
}

/// What a query's answer is: a message, or a question for the host's
/// resolvers.
enum Answer {
    Message(Vec<u8>),
    Forward,
    None,
}

/// Handles one frame of the `dns` table. `turn` rotates the order of a
/// name's addresses (round robin): the caller passes a counter.
pub fn handle(frame: &[u8], names: &NetworkNames, turn: usize) -> Resolution {
    let Some(p) = parse(frame) else { return Resolution::Ignore };
    match p.transport {
        Transport::Udp => match answer(p.dns, names, turn) {
            Answer::Message(m) => Resolution::Reply(reply_frame(&p.ends, p.transport, &m)),
            Answer::Forward => {
                Resolution::Forward(Pending { query: p.dns.to_vec(), ends: p.ends, transport: p.transport })
            }
            Answer::None => Resolution::Ignore,
        },
        Transport::Tcp { seq, ack, fin, payload_len } => {
            if p.flags & TCP_RST != 0 {
                return Resolution::Ignore;
            }
            if p.flags & TCP_SYN != 0 {
                if p.flags & TCP_ACK != 0 {
                    return Resolution::Ignore;
                }
                let isn = (fnv1a(
                    &[&u32::from(p.ends.ip_src).to_be_bytes()[..], &p.ends.port_src.to_be_bytes(), &seq.to_be_bytes()]
                        .concat(),
                ) as u32)
                    | 1;
                return Resolution::Reply(tcp_frame(&p.ends, isn, seq.wrapping_add(1), TCP_SYN | TCP_ACK, &[]));
            }
            if payload_len == 0 {
                // Our FIN is acknowledged by the client's FIN's own ACK.
                return if fin {
                    Resolution::Reply(tcp_frame(&p.ends, ack, seq.wrapping_add(1), TCP_ACK, &[]))
                } else {
                    Resolution::Ignore
                };
            }
            // One whole query: its 2-byte length and the message.
            let whole = be16(p.dns, 0).is_some_and(|n| usize::from(n) == p.dns.len() - 2);
            if !whole {
                return Resolution::Ignore;
            }
            let transport = Transport::Tcp { seq, ack, fin, payload_len };
            match answer(&p.dns[2..], names, turn) {
                Answer::Message(m) => Resolution::Reply(reply_frame(&p.ends, transport, &m)),
                Answer::Forward => Resolution::Forward(Pending { query: p.dns[2..].to_vec(), ends: p.ends, transport }),
                Answer::None => Resolution::Ignore,
            }
        }
    }
}

/// The answer to one DNS message from `names`.
fn answer(query: &[u8], names: &NetworkNames, turn: usize) -> Answer {
    let Ok(msg) = Message::from_vec(query) else {
        // Not even a header to answer to.
        if query.len() < 12 {
            return Answer::None;
        }
        let id = u16::from_be_bytes([query[0], query[1]]);
        return encoded(Message::error_msg(id, OpCode::Query, ResponseCode::FormErr));
    };
    if msg.message_type() != MessageType::Query {
        return Answer::None;
    }
    if msg.op_code() != OpCode::Query {
        return encoded(Message::error_msg(msg.id(), msg.op_code(), ResponseCode::NotImp));
    }
    let [q] = msg.queries() else {
        return encoded(Message::error_msg(msg.id(), OpCode::Query, ResponseCode::FormErr));
    };
    let name = q.name().to_ascii().trim_end_matches('.').to_ascii_lowercase();
    let mut records = Vec::new();
    if q.query_type() == RecordType::PTR
        && let Some(ip) = reverse_ip(&name)
    {
        match names.ptr.get(&ip).and_then(|n| Name::from_ascii(format!("{n}.")).ok()) {
            Some(target) => records.push(Record::from_rdata(q.name().clone(), TTL, RData::PTR(PTR(target)))),
            None if names.forward => return Answer::Forward,
            None => return encoded(response(&msg, q, ResponseCode::NXDomain, Vec::new())),
        }
    } else {
        match names.lookup(&name) {
            Some(ips) => {
                if matches!(q.query_type(), RecordType::A | RecordType::ANY) {
                    let k = turn % ips.len();
                    for ip in ips[k..].iter().chain(&ips[..k]) {
                        records.push(Record::from_rdata(q.name().clone(), TTL, RData::A(A(*ip))));
                    }
                }
                // Other types of a known name: no data, not an error.
            }
            None if names.forward => return Answer::Forward,
            None => return encoded(response(&msg, q, ResponseCode::NXDomain, Vec::new())),
        }
    }
    encoded(response(&msg, q, ResponseCode::NoError, records))
}

fn response(query: &Message, q: &Query, code: ResponseCode, answers: Vec<Record>) -> Message {
    let mut r = Message::new();
    r.set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_authoritative(true)
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .set_response_code(code);
    r.add_query(q.clone());
    r.add_answers(answers);
    r
}

fn encoded(m: Message) -> Answer {
    match m.to_vec() {
        Ok(b) => Answer::Message(b),
        Err(_) => Answer::None,
    }
}

/// `d.c.b.a.in-addr.arpa` to `a.b.c.d`.
fn reverse_ip(name: &str) -> Option<Ipv4Addr> {
    let rest = name.strip_suffix(".in-addr.arpa")?;
    let mut octets: Vec<u8> = rest.split('.').map(|o| o.parse().ok()).collect::<Option<_>>()?;
    if octets.len() != 4 {
        return None;
    }
    octets.reverse();
    Some(Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3]))
}

/// The answer's frame: addresses and ports swapped; over TCP, the answer
/// with its length, acknowledging the query, and FIN.
fn reply_frame(e: &Ends, t: Transport, dns: &[u8]) -> Vec<u8> {
    match t {
        Transport::Udp => {
            let mut udp = Vec::with_capacity(8 + dns.len());
            udp.extend_from_slice(&DNS_PORT.to_be_bytes());
            udp.extend_from_slice(&e.port_src.to_be_bytes());
            udp.extend_from_slice(&((8 + dns.len()) as u16).to_be_bytes());
            udp.extend_from_slice(&[0, 0]);
            udp.extend_from_slice(dns);
            let c = l4_checksum(e.ip_dst, e.ip_src, IPPROTO_UDP, &udp);
            udp[6..8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
            ip_frame(e, IPPROTO_UDP, &udp)
        }
        Transport::Tcp { seq, ack, fin, payload_len } => {
            let mut data = Vec::with_capacity(2 + dns.len());
            data.extend_from_slice(&(dns.len() as u16).to_be_bytes());
            data.extend_from_slice(dns);
            let acked = seq.wrapping_add(payload_len).wrapping_add(u32::from(fin));
            tcp_frame(e, ack, acked, TCP_ACK | TCP_PSH | TCP_FIN, &data)
        }
    }
}

fn tcp_frame(e: &Ends, seq: u32, ack: u32, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut tcp = Vec::with_capacity(20 + data.len());
    tcp.extend_from_slice(&DNS_PORT.to_be_bytes());
    tcp.extend_from_slice(&e.port_src.to_be_bytes());
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&ack.to_be_bytes());
    tcp.push(5 << 4);
    tcp.push(flags);
    tcp.extend_from_slice(&0xffffu16.to_be_bytes());
    tcp.extend_from_slice(&[0, 0, 0, 0]);
    tcp.extend_from_slice(data);
    let c = l4_checksum(e.ip_dst, e.ip_src, IPPROTO_TCP, &tcp);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    ip_frame(e, IPPROTO_TCP, &tcp)
}

/// Ethernet and IPv4 headers around `l4`, from the query's destination
/// back to its source.
fn ip_frame(e: &Ends, proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_LEN + 20 + l4.len());
    f.extend_from_slice(&e.eth_src);
    f.extend_from_slice(&e.eth_dst);
    f.extend_from_slice(&ETH_TYPE_IPV4.to_be_bytes());
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&e.ip_dst.octets());
    ip[16..20].copy_from_slice(&e.ip_src.octets());
    let c = finish(sum(0, &ip));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(l4);
    f
}

/// The ones' complement sum of `b` (16-bit words) added to `acc`.
fn sum(mut acc: u32, b: &[u8]) -> u32 {
    let mut chunks = b.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn finish(mut acc: u32) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The UDP or TCP checksum, over the IPv4 pseudo-header and `l4`.
fn l4_checksum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: &[u8]) -> u16 {
    let mut acc = sum(0, &src.octets());
    acc = sum(acc, &dst.octets());
    acc += u32::from(proto);
    acc += l4.len() as u32;
    finish(sum(acc, l4))
}

/// The names of every network, by VNI, as the agent keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    pub by_vni: HashMap<u32, NetworkNames>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const CLIENT_MAC: [u8; 6] = [0x0a, 0x58, 10, 0, 0, 5];
    const ROUTER: [u8; 6] = [0x0a, 0x58, 0, 0, 0, 1];
    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
    const GW: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

    fn ends() -> Ends {
        // As the container sends it: to the router MAC and the gateway.
        Ends { eth_src: ROUTER, eth_dst: CLIENT_MAC, ip_src: GW, ip_dst: CLIENT, port_src: 53 }
    }

    /// A query frame as a container sends it (built by swapping the ends
    /// of a reply frame, whose builder is tested against the checksums).
    fn query_frame(name: &str, rtype: RecordType, id: u16) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(id).set_message_type(MessageType::Query).set_op_code(OpCode::Query).set_recursion_desired(true);
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
        let dns = m.to_vec().unwrap();
        let mut f = reply_frame(&ends(), Transport::Udp, &dns);
        // Source port 40000, destination 53.
        let l4 = ETH_LEN + 20;
        f[l4..l4 + 2].copy_from_slice(&40000u16.to_be_bytes());
        f[l4 + 2..l4 + 4].copy_from_slice(&53u16.to_be_bytes());
        f
    }

    fn names() -> NetworkNames {
        let mut n = NetworkNames::new("blue", true);
        n.add("web", Ipv4Addr::new(10, 0, 0, 10));
        n.add("redis", Ipv4Addr::new(10, 0, 0, 20));
        n.add("cache", Ipv4Addr::new(10, 0, 0, 20));
        n.add("cache", Ipv4Addr::new(10, 0, 1, 20));
        n
    }

    fn reply_dns(f: &[u8]) -> Message {
        let p = parse_reply(f);
        Message::from_vec(p).unwrap()
    }

    /// The DNS bytes of a UDP reply frame, checking its headers.
    fn parse_reply(f: &[u8]) -> &[u8] {
        assert_eq!(&f[0..6], &CLIENT_MAC);
        assert_eq!(&f[6..12], &ROUTER);
        let ip = &f[ETH_LEN..];
        assert_eq!(finish(sum(0, &ip[..20])), 0, "IPv4 header checksum");
        assert_eq!(ip_at(ip, 12).unwrap(), GW);
        assert_eq!(ip_at(ip, 16).unwrap(), CLIENT);
        let l4 = &ip[20..];
        assert_eq!(l4_checksum(GW, CLIENT, ip[9], l4), 0, "L4 checksum");
        assert_eq!(be16(l4, 0), Some(53));
        assert_eq!(be16(l4, 2), Some(40000));
        &l4[8..]
    }

    fn ips(m: &Message) -> Vec<Ipv4Addr> {
        m.answers()
            .iter()
            .filter_map(|r| match r.data() {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_name_and_name_dot_network_are_answered_with_a_short_ttl() {
        for q in ["web.", "WEB.blue.", "web.blue"] {
            let Resolution::Reply(f) = handle(&query_frame(q, RecordType::A, 7), &names(), 0) else { panic!("{q}") };
            let m = reply_dns(&f);
            assert_eq!(m.id(), 7);
            assert_eq!(m.response_code(), ResponseCode::NoError);
            assert_eq!(ips(&m), vec![Ipv4Addr::new(10, 0, 0, 10)]);
            assert_eq!(m.answers()[0].ttl(), TTL);
        }
    }

    #[test]
    fn several_endpoints_with_one_alias_rotate() {
        let a = ips(&reply_dns(&match handle(&query_frame("cache.", RecordType::A, 1), &names(), 0) {
            Resolution::Reply(f) => f,
            r => panic!("{r:?}"),
        }));
        let b = ips(&reply_dns(&match handle(&query_frame("cache.", RecordType::A, 1), &names(), 1) {
            Resolution::Reply(f) => f,
            r => panic!("{r:?}"),
        }));
        assert_eq!(a, vec![Ipv4Addr::new(10, 0, 0, 20), Ipv4Addr::new(10, 0, 1, 20)]);
        assert_eq!(b, vec![Ipv4Addr::new(10, 0, 1, 20), Ipv4Addr::new(10, 0, 0, 20)]);
    }

    #[test]
    fn ptr_gives_the_first_name_with_its_network() {
        let Resolution::Reply(f) = handle(&query_frame("20.0.0.10.in-addr.arpa.", RecordType::PTR, 3), &names(), 0)
        else {
            panic!()
        };
        let m = reply_dns(&f);
        match m.answers()[0].data() {
            RData::PTR(p) => assert_eq!(p.0.to_ascii(), "redis.blue."),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_names_are_forwarded_or_refused_as_the_network_says() {
        let f = query_frame("example.org.", RecordType::A, 9);
        let Resolution::Forward(p) = handle(&f, &names(), 0) else { panic!() };
        let q = Message::from_vec(&p.query).unwrap();
        assert_eq!(q.id(), 9);
        // The resolver's answer goes back in a frame to the container.
        let mut ans = Message::new();
        ans.set_id(9).set_message_type(MessageType::Response);
        let m = reply_dns(&p.reply(&ans.to_vec().unwrap()));
        assert_eq!(m.id(), 9);
        assert_eq!(reply_dns(&p.servfail()).response_code(), ResponseCode::ServFail);

        let mut closed = names();
        closed.forward = false;
        let Resolution::Reply(f) = handle(&f, &closed, 0) else { panic!() };
        assert_eq!(reply_dns(&f).response_code(), ResponseCode::NXDomain);
    }

    #[test]
    fn aaaa_of_a_known_name_is_no_data() {
        let Resolution::Reply(f) = handle(&query_frame("web.", RecordType::AAAA, 2), &names(), 0) else { panic!() };
        let m = reply_dns(&f);
        assert_eq!(m.response_code(), ResponseCode::NoError);
        assert!(m.answers().is_empty());
    }

    #[test]
    fn garbage_is_ignored_or_refused_never_a_panic() {
        assert_eq!(handle(&[], &names(), 0), Resolution::Ignore);
        assert_eq!(handle(&[0u8; 60], &names(), 0), Resolution::Ignore);
        let mut f = query_frame("web.", RecordType::A, 2);
        // A truncated DNS message behind a header: FORMERR.
        let l4 = ETH_LEN + 20;
        f.truncate(l4 + 8 + 14);
        let len = (f.len() - ETH_LEN) as u16;
        f[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&len.to_be_bytes());
        f[l4 + 4..l4 + 6].copy_from_slice(&22u16.to_be_bytes());
        match handle(&f, &names(), 0) {
            Resolution::Reply(r) => assert_eq!(reply_dns(&r).response_code(), ResponseCode::FormErr),
            other => panic!("{other:?}"),
        }
        for cut in 0..f.len() {
            let _ = handle(&f[..cut], &names(), 0);
        }
    }

    #[test]
    fn tcp_handshake_query_and_close() {
        let e = ends();
        // The client's SYN (built with our own frame writer, ends swapped
        // back by using the reply's fields).
        let syn = client_tcp(&e, 1000, 0, TCP_SYN, &[]);
        let Resolution::Reply(synack) = handle(&syn, &names(), 0) else { panic!() };
        let t = &synack[ETH_LEN + 20..];
        assert_eq!(t[13], TCP_SYN | TCP_ACK);
        assert_eq!(be32(t, 8), Some(1001));
        let isn = be32(t, 4).unwrap();
        // The query, length-prefixed.
        let mut m = Message::new();
        m.set_id(5).set_message_type(MessageType::Query).set_op_code(OpCode::Query);
        m.add_query(Query::query(Name::from_ascii("web.").unwrap(), RecordType::A));
        let dns = m.to_vec().unwrap();
        let mut data = (dns.len() as u16).to_be_bytes().to_vec();
        data.extend_from_slice(&dns);
        let seg = client_tcp(&e, 1001, isn + 1, TCP_ACK | TCP_PSH, &data);
        let Resolution::Reply(ans) = handle(&seg, &names(), 0) else { panic!() };
        let ip = &ans[ETH_LEN..];
        let t = &ip[20..];
        assert_eq!(l4_checksum(GW, CLIENT, IPPROTO_TCP, t), 0);
        assert_eq!(t[13], TCP_ACK | TCP_PSH | TCP_FIN);
        assert_eq!(be32(t, 4), Some(isn + 1));
        assert_eq!(be32(t, 8), Some(1001 + data.len() as u32));
        let body = &t[20..];
        assert_eq!(usize::from(be16(body, 0).unwrap()), body.len() - 2);
        assert_eq!(ips(&Message::from_vec(&body[2..]).unwrap()), vec![Ipv4Addr::new(10, 0, 0, 10)]);
        // The client's FIN is acknowledged.
        let fin = client_tcp(&e, 1001 + data.len() as u32, isn + 2 + data.len() as u32, TCP_FIN | TCP_ACK, &[]);
        let Resolution::Reply(last) = handle(&fin, &names(), 0) else { panic!() };
        assert_eq!(last[ETH_LEN + 20 + 13], TCP_ACK);
        // A bare ACK needs nothing.
        assert_eq!(handle(&client_tcp(&e, 5, 6, TCP_ACK, &[]), &names(), 0), Resolution::Ignore);
    }

    /// A TCP segment from the client to port 53.
    fn client_tcp(e: &Ends, seq: u32, ack: u32, flags: u8, data: &[u8]) -> Vec<u8> {
        let mut f = tcp_frame(e, seq, ack, flags, data);
        let l4 = ETH_LEN + 20;
        f[l4..l4 + 2].copy_from_slice(&40000u16.to_be_bytes());
        f[l4 + 2..l4 + 4].copy_from_slice(&53u16.to_be_bytes());
        f
    }

    #[test]
    fn names_that_are_not_dns_names_are_skipped() {
        let mut n = NetworkNames::new("blue", true);
        assert!(!n.add("bad name", Ipv4Addr::new(10, 0, 0, 2)));
        assert!(!n.add("", Ipv4Addr::new(10, 0, 0, 2)));
        assert!(n.add("ok-1", Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(n.len(), 2);
    }
}
