//! Reachability probes run inside a network namespace: an ICMP echo over a
//! raw socket and a TCP round trip, both with sockets opened on a thread
//! that entered the namespace (no `ping`, no `ip netns exec`).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn, sockopt};
use nix::sys::time::TimeVal;

use crate::netns::{self, NetnsError};

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("{0}: {1}")]
    Sys(&'static str, std::io::Error),
}

fn sys(what: &'static str) -> impl FnOnce(nix::Error) -> ProbeError {
    move |e| ProbeError::Sys(what, std::io::Error::from(e))
}

/// The Internet checksum (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = match chunk {
            [a, b] => u16::from_be_bytes([*a, *b]),
            [a] => u16::from_be_bytes([*a, 0]),
            _ => 0,
        };
        sum += u32::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP echo request (type 8) with a payload.
pub fn echo_request(id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![8, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(payload);
    let c = checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// Whether `packet` (an IPv4 packet as a raw socket delivers it) is the
/// echo reply from `from` to our request `id`/`seq`.
pub fn is_echo_reply(packet: &[u8], from: Ipv4Addr, id: u16, seq: u16) -> bool {
    let Some(&vihl) = packet.first() else { return false };
    let ihl = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || packet.len() < ihl + 8 || ihl < 20 {
        return false;
    }
    let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let icmp = &packet[ihl..];
    src == from && icmp[0] == 0 && icmp[4..6] == id.to_be_bytes() && icmp[6..8] == seq.to_be_bytes()
}

/// Sends ICMP echo requests from inside namespace `ns` to `dst` (one
/// every 200 ms) until a reply comes or `timeout` passes; returns the
/// round-trip time of the first reply, or `None`.
pub fn ping(ns: &OwnedFd, dst: Ipv4Addr, timeout: Duration) -> Result<Option<Duration>, ProbeError> {
    ping_every(ns, dst, Duration::from_millis(200), timeout)
}

/// Like [`ping`], with a request every `interval` (for measuring how soon
/// an address becomes reachable: a few milliseconds).
pub fn ping_every(
    ns: &OwnedFd,
    dst: Ipv4Addr,
    interval: Duration,
    timeout: Duration,
) -> Result<Option<Duration>, ProbeError> {
    netns::run_in(ns, move || ping_here(dst, interval, timeout))?
}

fn ping_here(dst: Ipv4Addr, interval: Duration, timeout: Duration) -> Result<Option<Duration>, ProbeError> {
    let fd = socket::socket(AddressFamily::Inet, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::Icmp)
        .map_err(sys("raw ICMP socket"))?;
    // Wake up at least once per interval to send the next request.
    let wait_us = interval.as_micros().clamp(500, 50_000) as i64;
    socket::setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::new(0, wait_us)).map_err(sys("SO_RCVTIMEO"))?;
    let id = (std::process::id() as u16) ^ (dst.octets()[3] as u16) << 8;
    let to = SockaddrIn::from(SocketAddrV4::new(dst, 0));
    let start = Instant::now();
    let mut seq: u16 = 0;
    let mut sent_at = start;
    let mut buf = [0u8; 1500];
    loop {
        if seq == 0 || sent_at.elapsed() >= interval {
            seq = seq.wrapping_add(1);
            sent_at = Instant::now();
            let req = echo_request(id, seq, b"ovsnet lab probe");
            // A send can fail while neighbours resolve; keep trying.
            let _ = socket::sendto(fd.as_raw_fd(), &req, &to, MsgFlags::empty());
        }
        match socket::recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(n) => {
                // Any of our requests answered counts.
                let data = &buf[..n];
                if (1..=seq).any(|s| is_echo_reply(data, dst, id, s)) {
                    return Ok(Some(start.elapsed()));
                }
            }
            Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(sys("recv")(e)),
        }
        if start.elapsed() >= timeout {
            return Ok(None);
        }
    }
}

/// A TCP round trip: listens on `dst:port` inside `dst_ns`, connects from
/// `src_ns`, sends `payload` and reads it back echoed. Returns whether the
/// bytes came back intact within `timeout`.
pub fn tcp_echo(
    src_ns: &OwnedFd,
    dst_ns: &OwnedFd,
    dst: Ipv4Addr,
    port: u16,
    payload: &[u8],
    timeout: Duration,
) -> Result<bool, ProbeError> {
    let listener = netns::run_in(dst_ns, || TcpListener::bind(SocketAddrV4::new(dst, port)))?
        .map_err(|e| ProbeError::Sys("bind", e))?;
    listener.set_nonblocking(true).map_err(|e| ProbeError::Sys("listener", e))?;
    let deadline = Instant::now() + timeout;
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = loop {
            match listener.accept() {
                Ok(c) => break c,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(e),
            }
        };
        s.set_nonblocking(false)?;
        s.set_read_timeout(Some(timeout))?;
        let mut buf = vec![0u8; 65536];
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            s.write_all(&buf[..n])?;
        }
    });
    let payload_owned = payload.to_vec();
    let client = netns::run_in(src_ns, move || -> std::io::Result<bool> {
        let mut s = TcpStream::connect_timeout(&SocketAddrV4::new(dst, port).into(), timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.write_all(&payload_owned)?;
        let mut back = vec![0u8; payload_owned.len()];
        s.read_exact(&mut back)?;
        Ok(back == payload_owned)
    })?;
    let ok = client.unwrap_or(false);
    // The server ends when the client's socket closes (or times out).
    let _ = server.join();
    Ok(ok)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn echo_request_checksums_to_zero() {
        let p = echo_request(0x1234, 7, b"abc");
        assert_eq!(&p[..2], &[8, 0]);
        assert_eq!(checksum(&p), 0);
    }

    #[test]
    fn replies_are_matched_by_source_id_and_seq() {
        let mut reply = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 1, 2, 10, 0, 2, 2];
        reply.extend_from_slice(&[0, 0, 0, 0, 0x12, 0x34, 0, 7]);
        let from = Ipv4Addr::new(10, 0, 1, 2);
        assert!(is_echo_reply(&reply, from, 0x1234, 7));
        assert!(!is_echo_reply(&reply, from, 0x1234, 8));
        assert!(!is_echo_reply(&reply, Ipv4Addr::new(10, 0, 1, 3), 0x1234, 7));
        assert!(!is_echo_reply(&reply[..10], from, 0x1234, 7));
        assert!(!is_echo_reply(&[], from, 0x1234, 7));
    }
}
